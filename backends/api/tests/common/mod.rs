//! Test harness: starts real `fastgate-api` processes on ephemeral ports and talks HTTP to
//! them, and compares JSON with placeholders for values that differ on every run.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A running origin process; killed when dropped.
pub struct Origin {
    pub url: String,
    pub data_dir: PathBuf,
    child: Child,
    log: PathBuf,
}

pub fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fastgate-api-{tag}-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

impl Origin {
    /// Starts an origin on `127.0.0.1:0` with `data_dir`, waits until it listens.
    pub fn start(name: &str, data_dir: &Path, env: &[(&str, &str)]) -> Origin {
        let mut origin = Self::spawn(name, data_dir, env);
        origin.wait_ready(name);
        origin
    }

    /// Starts the process without waiting (to start several at the same moment).
    pub fn spawn(name: &str, data_dir: &Path, env: &[(&str, &str)]) -> Origin {
        Self::spawn_with_args(name, data_dir, env, &[])
    }

    /// As `spawn`, with extra command-line arguments.
    pub fn spawn_with_args(
        name: &str,
        data_dir: &Path,
        env: &[(&str, &str)],
        args: &[&str],
    ) -> Origin {
        let log = data_dir.join(format!("{name}-{}.log", uuid::Uuid::new_v4()));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_fastgate-api"));
        cmd.args(["--name", name, "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(args)
            .env("RUST_LOG", "info,sqlx=warn")
            .env_remove("DATABASE_URL")
            .env_remove("FEATURE_NEW_SCHEMA")
            .env_remove("JWT_ALGORITHM")
            .env_remove("JWT_ACCEPT")
            .env_remove("JWT_SECRET")
            // A bare origin unless a test turns the edge-signature check on (with keys).
            .env("FASTGATE_VERIFY_EDGE_SIGNATURE", "false")
            .env_remove("FASTGATE_IDENTITY_KEYS")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn fastgate-api");
        Origin {
            url: String::new(),
            data_dir: data_dir.to_path_buf(),
            child,
            log,
        }
    }

    /// Waits until the process logs its listening address.
    pub fn wait_ready(&mut self, name: &str) {
        let origin = self;
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let text = std::fs::read_to_string(&origin.log).unwrap_or_default();
            if let Some(addr) = text
                .lines()
                .filter(|l| l.contains("\"listening\""))
                .find_map(|l| {
                    serde_json::from_str::<Value>(l)
                        .ok()?
                        .pointer("/fields/addr")?
                        .as_str()
                        .map(str::to_owned)
                })
            {
                origin.url = format!("http://{addr}");
                return;
            }
            if let Ok(Some(status)) = origin.child.try_wait() {
                panic!("origin {name} exited with {status}:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("origin {name} did not start:\n{}", origin.log_text());
    }

    /// Waits up to `timeout` for the process to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Kills the process without a graceful shutdown (a crash, as far as the origin knows).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Compares `actual` with `expected`, where expected strings `<any>`, `<uuid>`, `<token>`,
/// `<date>`, `<datetime>` and `<upload-key>` match any value of that kind. Returns a path
/// to the first difference.
pub fn json_matches(expected: &Value, actual: &Value, path: &str) -> Result<(), String> {
    match (expected, actual) {
        (Value::String(e), a) if e.starts_with('<') && e.ends_with('>') => {
            let s = a.as_str().unwrap_or_default();
            let ok = match e.as_str() {
                "<any>" => true,
                "<uuid>" => uuid::Uuid::parse_str(s).is_ok(),
                "<token>" => s.split('.').count() == 3,
                "<date>" => s.len() == 10 && s.as_bytes()[4] == b'-',
                "<datetime>" => s.len() > 19 && s.as_bytes()[10] == b'T',
                "<upload-key>" => s
                    .strip_prefix("uploads/")
                    .is_some_and(|u| uuid::Uuid::parse_str(u).is_ok()),
                _ => e == s,
            };
            ok.then_some(())
                .ok_or_else(|| format!("{path}: {a} is not {e}"))
        }
        (Value::Object(e), Value::Object(a)) => {
            let ek: Vec<&String> = e.keys().collect();
            let ak: Vec<&String> = a.keys().collect();
            if ek != ak {
                return Err(format!("{path}: keys {ak:?} != {ek:?}"));
            }
            e.iter()
                .try_for_each(|(k, v)| json_matches(v, &a[k], &format!("{path}.{k}")))
        }
        (Value::Array(e), Value::Array(a)) => {
            if e.len() != a.len() {
                return Err(format!("{path}: {} items, expected {}", a.len(), e.len()));
            }
            e.iter()
                .zip(a)
                .enumerate()
                .try_for_each(|(i, (e, a))| json_matches(e, a, &format!("{path}[{i}]")))
        }
        (e, a) if e == a => Ok(()),
        (e, a) => Err(format!("{path}: got {a}, expected {e}")),
    }
}

/// Random lower-case letters (a word for `[a-z']+`), unique per run.
pub fn random_word(len: usize) -> String {
    uuid::Uuid::new_v4()
        .as_bytes()
        .iter()
        .chain(uuid::Uuid::new_v4().as_bytes())
        .take(len)
        .map(|b| (b'a' + b % 26) as char)
        .collect()
}

/// The password every test account signs up with.
pub const PASSWORD: &str = "correct-horse-1";

/// Checks that `r` has `status` (showing the body when not) and returns the string `field`
/// of its JSON body: an id, a key or a token the test goes on with.
pub async fn string_field(r: reqwest::Response, status: u16, field: &str) -> String {
    let got = r.status().as_u16();
    let text = r.text().await.unwrap();
    assert_eq!(got, status, "{text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    body[field]
        .as_str()
        .unwrap_or_else(|| panic!("no string {field:?} in {body}"))
        .to_owned()
}

/// Sends `request` (a sign-up, plain or signed) for `email` with [`PASSWORD`] and, when
/// given, `full_name`; expects 201 and returns the new user's id.
pub async fn sign_up(
    request: reqwest::RequestBuilder,
    email: &str,
    full_name: Option<&str>,
) -> String {
    let mut body = serde_json::json!({"email": email, "password": PASSWORD});
    if let Some(name) = full_name {
        body["full_name"] = name.into();
    }
    let r = request.json(&body).send().await.unwrap();
    string_field(r, 201, "id").await
}

/// Sends `request` (a login, plain or signed) for `email`; expects 200 and returns the
/// bearer token.
pub async fn log_in(request: reqwest::RequestBuilder, email: &str, password: &str) -> String {
    let body = serde_json::json!({"email": email, "password": password});
    let r = request.json(&body).send().await.unwrap();
    string_field(r, 200, "access_token").await
}

/// Logs in over HTTP and returns the bearer token; panics with the response when login fails.
pub async fn login(client: &reqwest::Client, base: &str, email: &str, password: &str) -> String {
    let request = client.post(format!("{base}/api/auth/login"));
    log_in(request, email, password).await
}

/// Signs `email` up at `base` (no full name) and logs in there; returns the bearer token.
pub async fn new_account(client: &reqwest::Client, base: &str, email: &str) -> String {
    sign_up(client.post(format!("{base}/api/auth/signup")), email, None).await;
    login(client, base, email, PASSWORD).await
}
