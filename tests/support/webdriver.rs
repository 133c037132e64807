//! A minimal W3C WebDriver client for a real headless Chromium: `chromedriver` (Debian's
//! `chromium-driver`) as a child process on a free port, one session with a fresh profile,
//! and the few commands a test needs, over `reqwest::blocking`. `scripts/chromium-up.sh`
//! installs both packages.
//!
//! Without `chromedriver`, [`Browser::start_or_skip`] prints a SKIP notice and returns
//! `None`, unless `FASTGATE_REQUIRE_BROWSER` is set (as CI sets it): then it panics.
//!
//! Failures explain themselves: a timed-out [`Browser::wait_until`] names the page's URL,
//! shows the start of its text and saves a screenshot; a test that panics while the
//! browser is open gets a screenshot (`failure-*.png`) and the browser log on stderr.
//!
//! The browser log comes from chromedriver's `POST /session/{id}/se/log` (`{"type":
//! "browser"}`, enabled by `goog:loggingPrefs`), which hands out each entry once:
//! [`Browser::browser_log`] keeps them all.

use std::cell::{Cell, RefCell};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The key W3C WebDriver uses for an element reference in JSON.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
/// Debian's Chromium launcher.
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// Set (to anything but empty or `0`) to fail instead of skipping when chromedriver is
/// missing.
pub const REQUIRE_ENV: &str = "FASTGATE_REQUIRE_BROWSER";

/// Keys for [`Browser::press`] (the WebDriver code points).
pub mod keys {
    pub const TAB: &str = "\u{E004}";
    pub const ENTER: &str = "\u{E007}";
    pub const SHIFT: &str = "\u{E008}";
}

/// An element of the current page (a WebDriver element reference).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element(String);

impl Element {
    /// As an argument of [`Browser::execute`].
    pub fn to_json(&self) -> Value {
        json!({ ELEMENT_KEY: self.0 })
    }
}

/// One entry of the browser's log (console messages, failed loads, CSP reports, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// `SEVERE`, `WARNING`, `INFO`, `DEBUG`.
    pub level: String,
    /// `network`, `console-api`, `javascript`, `security`, ...
    pub source: String,
    pub message: String,
}

impl std::fmt::Display for LogEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{} {}] {}", self.level, self.source, self.message)
    }
}

/// `chromedriver`, if installed: on `PATH` or at `/usr/bin/chromedriver`.
pub fn chromedriver() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("chromedriver"))
            .find(|p| p.is_file())
    });
    on_path.or_else(|| {
        let p = PathBuf::from("/usr/bin/chromedriver");
        p.is_file().then_some(p)
    })
}

/// Whether [`REQUIRE_ENV`] is set (to anything but empty or `0`).
pub fn browser_required() -> bool {
    std::env::var_os(REQUIRE_ENV).is_some_and(|v| !v.is_empty() && v != "0")
}

/// A headless Chromium session driven through chromedriver. Dropping it ends the session
/// and kills chromedriver.
pub struct Browser {
    driver: Child,
    endpoint: String,
    session: String,
    http: reqwest::blocking::Client,
    profile: PathBuf,
    artifacts: PathBuf,
    log: RefCell<Vec<LogEntry>>,
    shots: Cell<u32>,
}

impl Browser {
    /// Starts a browser whose screenshots go to `artifacts`, or, when chromedriver is not
    /// installed, says loudly that `test` is skipped and returns `None` (panics instead
    /// when [`REQUIRE_ENV`] is set).
    pub fn start_or_skip(test: &str, artifacts: &Path) -> Option<Browser> {
        match chromedriver() {
            Some(driver) => Some(Browser::start(&driver, artifacts)),
            None if browser_required() => panic!(
                "{test}: chromedriver is not installed and {REQUIRE_ENV} is set: \
                 run `bash scripts/chromium-up.sh` (Debian packages chromium, chromium-driver)"
            ),
            None => {
                // Straight to stderr: libtest captures `eprintln!` of a passing test.
                use std::io::Write;
                let _ = writeln!(
                    std::io::stderr(),
                    "\n==================== SKIPPED: {test} ====================\n\
                     chromedriver is not installed, so the real-browser test did not run.\n\
                     Install it with `bash scripts/chromium-up.sh` (Debian packages chromium,\n\
                     chromium-driver); set {REQUIRE_ENV}=1 to make this a failure.\n\
                     =========================================================\n"
                );
                None
            }
        }
    }

    /// Starts `driver` on a free port and opens a session in headless Chromium.
    pub fn start(driver: &Path, artifacts: &Path) -> Browser {
        std::fs::create_dir_all(artifacts)
            .unwrap_or_else(|e| panic!("creating {}: {e}", artifacts.display()));
        // Failure shots of an earlier run would pass for this one's.
        for entry in std::fs::read_dir(artifacts).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let stale = ["failure-", "timeout-", "find-"]
                .iter()
                .any(|p| name.starts_with(p));
            if stale && name.ends_with(".png") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        let port = xtask::stack::free_port().expect("a free port for chromedriver");
        let log_file = std::fs::File::create(artifacts.join("chromedriver.log"))
            .expect("creating chromedriver.log");
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("chromedriver.log"))
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", driver.display()));
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(90))
            .no_proxy()
            .build()
            .expect("building the WebDriver client");
        let profile =
            std::env::temp_dir().join(format!("fastgate-chromium-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&profile);
        std::fs::create_dir_all(&profile).expect("creating the browser profile directory");
        let mut browser = Browser {
            driver: child,
            endpoint: format!("http://127.0.0.1:{port}"),
            session: String::new(),
            http,
            profile,
            artifacts: artifacts.to_owned(),
            log: RefCell::new(Vec::new()),
            shots: Cell::new(0),
        };
        browser.wait_for_driver();
        browser.session = browser.new_session();
        browser
    }

    fn wait_for_driver(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = self
                .http
                .get(format!("{}/status", self.endpoint))
                .send()
                .ok()
                .and_then(|r| r.json::<Value>().ok())
                .is_some_and(|v| v["value"]["ready"] == true);
            if ready {
                return;
            }
            if let Ok(Some(status)) = self.driver.try_wait() {
                panic!(
                    "chromedriver exited ({status}); see {}",
                    self.artifacts.join("chromedriver.log").display()
                );
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not become ready in 20 s; see {}",
                self.artifacts.join("chromedriver.log").display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn new_session(&self) -> String {
        let args = [
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--window-size=1280,900".to_owned(),
            "--no-first-run".to_owned(),
            "--no-default-browser-check".to_owned(),
            format!("--user-data-dir={}", self.profile.display()),
        ];
        let mut options = json!({ "args": args });
        if Path::new(CHROMIUM).is_file() {
            options["binary"] = CHROMIUM.into();
        }
        let caps = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "pageLoadStrategy": "normal",
                    "timeouts": { "pageLoad": 30_000, "script": 30_000, "implicit": 0 },
                    "goog:chromeOptions": options,
                    "goog:loggingPrefs": { "browser": "ALL" },
                }
            }
        });
        let value = self
            .raw("POST", "/session", Some(caps))
            .unwrap_or_else(|e| panic!("creating a Chromium session: {e}"));
        value["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no sessionId in {value}"))
            .to_owned()
    }

    /// One WebDriver command; the answer's `value`, or the WebDriver error as text.
    fn raw(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let url = format!("{}{path}", self.endpoint);
        let req = match method {
            "GET" => self.http.get(&url),
            "DELETE" => self.http.delete(&url),
            _ => self
                .http
                .post(&url)
                .json(&body.unwrap_or_else(|| json!({}))),
        };
        let resp = req.send().map_err(|e| format!("{method} {path}: {e}"))?;
        let status = resp.status();
        let mut v: Value = resp
            .json()
            .map_err(|e| format!("{method} {path}: HTTP {status}, unreadable answer: {e}"))?;
        let value = v["value"].take();
        if status.is_success() {
            Ok(value)
        } else {
            Err(format!(
                "{method} {path}: {} ({})",
                value["error"].as_str().unwrap_or("error"),
                value["message"]
                    .as_str()
                    .unwrap_or_default()
                    .lines()
                    .next()
                    .unwrap_or_default()
            ))
        }
    }

    /// A command on this session that must succeed.
    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let path = format!("/session/{}{path}", self.session);
        self.raw(method, &path, body)
            .unwrap_or_else(|e| panic!("WebDriver: {e}"))
    }

    /// Opens `url` and waits for the page to load.
    pub fn navigate(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url })));
    }

    /// Reloads the current page.
    pub fn refresh(&self) {
        self.cmd("POST", "/refresh", None);
    }

    pub fn current_url(&self) -> String {
        self.cmd("GET", "/url", None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The first element matching `css`, or `None`.
    pub fn try_find(&self, css: &str) -> Option<Element> {
        let path = format!("/session/{}/elements", self.session);
        let found = self
            .raw(
                "POST",
                &path,
                Some(json!({ "using": "css selector", "value": css })),
            )
            .unwrap_or_else(|e| panic!("WebDriver: finding {css:?}: {e}"));
        found
            .as_array()
            .and_then(|all| all.first())
            .and_then(|el| el[ELEMENT_KEY].as_str())
            .map(|id| Element(id.to_owned()))
    }

    /// The first element matching `css`; panics (with the page's URL) when there is none.
    pub fn find(&self, css: &str) -> Element {
        self.try_find(css).unwrap_or_else(|| {
            panic!(
                "no element matches {css:?} on {} (screenshot: {})",
                self.current_url(),
                self.failure_shot("find").display()
            )
        })
    }

    pub fn click(&self, el: &Element) {
        self.cmd("POST", &format!("/element/{}/click", el.0), None);
    }

    /// Types `text` into `el` (focusing it first).
    pub fn send_keys(&self, el: &Element, text: &str) {
        self.cmd(
            "POST",
            &format!("/element/{}/value", el.0),
            Some(json!({ "text": text })),
        );
    }

    /// Empties an input or textarea.
    pub fn clear(&self, el: &Element) {
        self.cmd("POST", &format!("/element/{}/clear", el.0), None);
    }

    /// The element's rendered text.
    pub fn text(&self, el: &Element) -> String {
        self.cmd("GET", &format!("/element/{}/text", el.0), None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The element's attribute `name`, or `None` when it has none.
    pub fn attribute(&self, el: &Element, name: &str) -> Option<String> {
        self.cmd("GET", &format!("/element/{}/attribute/{name}", el.0), None)
            .as_str()
            .map(str::to_owned)
    }

    /// Presses keys on whatever has the focus, as a person at the keyboard would: each
    /// character (or [`keys`] code point) down, then up.
    pub fn press(&self, text: &str) {
        let mut actions = Vec::new();
        for c in text.chars() {
            actions.push(json!({ "type": "keyDown", "value": c.to_string() }));
            actions.push(json!({ "type": "keyUp", "value": c.to_string() }));
        }
        self.cmd(
            "POST",
            "/actions",
            Some(json!({ "actions": [{ "type": "key", "id": "keyboard", "actions": actions }] })),
        );
        self.cmd("DELETE", "/actions", None);
    }

    /// Runs `script` (a function body: `return ...`; arguments are `arguments[i]`) in the
    /// page and returns what it returned.
    pub fn execute(&self, script: &str, args: Vec<Value>) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
    }

    /// Runs `script` (a function body) that must call `arguments[arguments.length - 1]`
    /// with its result, and returns that result.
    pub fn execute_async(&self, script: &str, args: Vec<Value>) -> Value {
        self.cmd(
            "POST",
            "/execute/async",
            Some(json!({ "script": script, "args": args })),
        )
    }

    /// Polls `check` (every 100 ms) until it returns `Some`, for at most `timeout`. On
    /// timeout, panics naming `what`, the page's URL and the start of its text, with a
    /// screenshot.
    pub fn wait_until<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut(&Browser) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(done) = check(self) {
                return done;
            }
            if Instant::now() >= deadline {
                let shot = self.failure_shot("timeout");
                let text = self
                    .raw(
                        "POST",
                        &format!("/session/{}/execute/sync", self.session),
                        Some(json!({
                            "script": "return document.body ? document.body.innerText : ''",
                            "args": []
                        })),
                    )
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                let text: String = text.chars().take(1500).collect();
                panic!(
                    "timed out after {timeout:?} waiting for {what}\n  page: {}\n  screenshot: {}\n  \
                     page text:\n{text}\n  browser log:\n{}",
                    self.current_url(),
                    shot.display(),
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until the JavaScript expression `expr` is truthy; returns its value.
    pub fn wait_for_js(&self, what: &str, timeout: Duration, expr: &str) -> Value {
        let script = format!("return ({expr});");
        self.wait_until(what, timeout, |b| {
            let v = b.execute(&script, Vec::new());
            let truthy = match &v {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64().is_some_and(|n| n != 0.0),
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            truthy.then_some(v)
        })
    }

    /// Saves a PNG of the viewport at `path`.
    pub fn screenshot(&self, path: &Path) {
        let png = self.cmd("GET", "/screenshot", None);
        let bytes = base64_decode(png.as_str().unwrap_or_default())
            .unwrap_or_else(|| panic!("the screenshot was not base64"));
        assert!(bytes.starts_with(b"\x89PNG"), "the screenshot is not a PNG");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(path, bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }

    /// Saves a PNG of the whole page at `path`: the window is made as tall as the page for
    /// the shot, then restored.
    pub fn screenshot_full_page(&self, path: &Path) {
        let rect = self.cmd("GET", "/window/rect", None);
        let sizes = self.execute(
            "return [window.outerHeight - window.innerHeight, \
             Math.ceil(document.documentElement.scrollHeight)]",
            Vec::new(),
        );
        let chrome = sizes[0].as_i64().unwrap_or(0).max(0);
        let page = sizes[1].as_i64().unwrap_or(900).clamp(100, 8_000);
        let height = rect["height"].as_i64().unwrap_or(900);
        if page + chrome > height {
            self.cmd(
                "POST",
                "/window/rect",
                Some(json!({ "width": rect["width"], "height": page + chrome })),
            );
        }
        self.screenshot(path);
        if page + chrome > height {
            self.cmd(
                "POST",
                "/window/rect",
                Some(json!({ "width": rect["width"], "height": height })),
            );
        }
    }

    /// A screenshot in the artifacts directory, best effort: its path.
    fn failure_shot(&self, kind: &str) -> PathBuf {
        let n = self.shots.get() + 1;
        self.shots.set(n);
        let path = self.artifacts.join(format!("{kind}-{n}.png"));
        let taken = self
            .raw(
                "GET",
                &format!("/session/{}/screenshot", self.session),
                None,
            )
            .ok()
            .and_then(|v| v.as_str().and_then(base64_decode))
            .is_some_and(|png| std::fs::write(&path, png).is_ok());
        if taken {
            path
        } else {
            PathBuf::from("(no screenshot could be taken)")
        }
    }

    /// Every browser log entry since the session started (chromedriver hands each out
    /// once; they are kept here).
    pub fn browser_log(&self) -> Vec<LogEntry> {
        self.drain_log()
            .unwrap_or_else(|e| panic!("WebDriver: reading the browser log: {e}"));
        self.log.borrow().clone()
    }

    /// Moves the entries chromedriver has not handed out yet into `self.log`.
    fn drain_log(&self) -> Result<(), String> {
        let path = format!("/session/{}/se/log", self.session);
        let fresh = self.raw("POST", &path, Some(json!({ "type": "browser" })))?;
        let mut log = self.log.borrow_mut();
        for e in fresh.as_array().into_iter().flatten() {
            log.push(LogEntry {
                level: e["level"].as_str().unwrap_or_default().to_owned(),
                source: e["source"].as_str().unwrap_or_default().to_owned(),
                message: e["message"].as_str().unwrap_or_default().to_owned(),
            });
        }
        Ok(())
    }

    /// The whole log so far, one indented line per entry (best effort).
    fn log_text(&self) -> String {
        let _ = self.drain_log();
        let log = self.log.borrow();
        if log.is_empty() {
            return "    (empty)".to_owned();
        }
        log.iter()
            .map(|e| format!("    {e}"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if std::thread::panicking() && !self.session.is_empty() {
            let url = self
                .raw("GET", &format!("/session/{}/url", self.session), None)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            let shot = self.failure_shot("failure");
            eprintln!(
                "browser at failure: {url}\n  screenshot: {}\n  browser log:\n{}",
                shot.display(),
                self.log_text()
            );
        }
        if !self.session.is_empty() {
            let _ = self.raw("DELETE", &format!("/session/{}", self.session), None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Standard base64 (with or without padding), as WebDriver sends screenshots.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' | b'\n' | b'\r' => continue,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}
