//! Releases end to end (issue #18): `xtask::release` publishes and switches releases
//! through a running edge's ops endpoint, as `cargo xtask release` does against
//! `cargo xtask serve`, and real HTTP checks what the edge serves.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fastgate::release::{sha256_hex, Coding, Manifest};
use support::{client_from, header, wait_for_release, EchoServer, StackBuilder};
use xtask::release::{self as rel, Target};
use xtask::stack::Stack;

/// Every ISO 3166-1 alpha-2 code: a geo map no Config Store value can hold.
const ISO_COUNTRIES: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG \
BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX \
CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN \
GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI \
KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ \
MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR \
PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC \
TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT \
ZA ZM ZW";

fn scratch(name: &str) -> PathBuf {
    support::scratch("releases", name)
}

/// A front-end build whose page names its release and links its own hashed asset.
fn web_build(dir: &Path, release: &str) -> String {
    let script = format!("console.log({release:?});\n{}", "// padding\n".repeat(60));
    let asset = format!("app.{}.js", &sha256_hex(script.as_bytes())[..10]);
    let page = format!(
        "<!doctype html><html><head><title>{release}</title>\
         <script type=\"module\" src=\"/assets/{asset}\"></script></head>\
         <body data-release=\"{release}\">{}</body></html>\n",
        "<p>fastgate</p>".repeat(40)
    );
    std::fs::create_dir_all(dir.join("assets")).unwrap();
    std::fs::create_dir_all(dir.join("about")).unwrap();
    std::fs::write(dir.join("index.html"), &page).unwrap();
    std::fs::write(dir.join("about/index.html"), &page).unwrap();
    std::fs::write(dir.join("assets").join(&asset), script).unwrap();
    std::fs::write(dir.join("logo.png"), [0x89, b'P', b'N', b'G', 0, 1, 2, 3]).unwrap();
    std::fs::write(dir.join("404.html"), format!("<p>{release}: not here</p>")).unwrap();
    format!("/assets/{asset}")
}

/// A stack with an echo origin and the release store the test publishes into.
fn stack() -> (Stack, Target, EchoServer) {
    let echo = EchoServer::start();
    let (stack, spec) = StackBuilder::new(echo.everywhere()).start_with_spec();
    let target = Target {
        edge: Some(stack.edge_url()),
        ops_key: Some(spec.secrets.ops_key.clone()),
        local: None,
    };
    (stack, target, echo)
}

fn publish(t: &Target, name: &str, config: Option<&Path>, web: Option<&Path>) -> Manifest {
    rel::publish(t, name, config, web).unwrap_or_else(|e| panic!("publishing {name}: {e:#}"))
}

#[test]
fn a_config_over_the_config_store_limit_is_published_activated_and_served() {
    let (stack, t, _echo) = stack();
    let base = stack.edge_url();
    let dir = scratch("big");
    let mut config: serde_json::Value = serde_json::from_str(fastgate::config::EMBEDDED).unwrap();
    let all = serde_json::json!(["origin_eu", "origin_us", "origin_ap"]);
    for code in ISO_COUNTRIES.split_whitespace() {
        config["geo"]["countries"][code] = all.clone();
    }
    config["version"] = "every-country-1".into();
    let text = serde_json::to_string_pretty(&config).unwrap();
    assert!(text.len() > 8_000, "{} characters", text.len());
    let file = dir.join("config.json");
    std::fs::write(&file, &text).unwrap();
    let checked = xtask::config_check(&file).unwrap();

    publish(&t, "every-country", Some(&file), None);
    rel::activate(&t, "every-country").unwrap();
    wait_for_release(&base, None, "every-country");

    let resp = client_from(1).get(format!("{base}/health")).send().unwrap();
    assert_eq!(resp.status(), 200);
    let config_header = header(&resp, "fastgate-config");
    assert!(
        config_header.starts_with("every-country-1; hash="),
        "{config_header}"
    );
    assert!(config_header.ends_with("source=release"), "{config_header}");
    // `cargo xtask config check` reports the hash the edge reports.
    let hash = config_header
        .split("hash=")
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap();
    assert!(checked.contains(hash), "{checked} vs {config_header}");
    let listed = rel::list(&t).unwrap();
    assert!(listed.iter().any(|r| r.name == "every-country" && r.active));
}

#[test]
fn static_files_negotiate_encodings_stay_immutable_and_revalidate() {
    let (stack, t, _echo) = stack();
    let base = stack.edge_url();
    let web = scratch("static");
    let asset = web_build(&web, "s1");
    let manifest = publish(&t, "s1", None, Some(&web));
    rel::activate(&t, "s1").unwrap();
    wait_for_release(&base, None, "s1");
    let client = client_from(1);
    let get = |path: &str, accept: &str| {
        client
            .get(format!("{base}{path}"))
            .header("accept-encoding", accept)
            .send()
            .unwrap()
    };
    let page = &manifest.files["/index.html"];
    for (accept, coding) in [
        ("gzip, deflate, br", Some(Coding::Br)),
        ("gzip", Some(Coding::Gzip)),
        ("br;q=0, gzip;q=0.5", Some(Coding::Gzip)),
        ("identity", None),
    ] {
        let resp = get("/", accept);
        assert_eq!(resp.status(), 200, "{accept}");
        assert_eq!(header(&resp, "vary"), "Accept-Encoding");
        assert_eq!(header(&resp, "fastgate-release"), "s1");
        let encoding = header(&resp, "content-encoding");
        assert_eq!(encoding, coding.map_or("", Coding::token), "{accept}");
        let want = coding.map_or(page.hash.clone(), |c| {
            let e = page.encodings.iter().find(|e| e.coding == c).unwrap();
            e.hash.clone()
        });
        assert_eq!(sha256_hex(&resp.bytes().unwrap()), want, "{accept}");
    }
    // HTML revalidates: a short TTL, an ETag, and 304 for it.
    let html = get("/about/", "br");
    let cache_control = header(&html, "cache-control");
    assert!(cache_control.contains("max-age=0"), "{cache_control}");
    assert_eq!(header(&html, "content-type"), "text/html; charset=utf-8");
    let csp = header(&html, "content-security-policy");
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"));
    assert_eq!(header(&html, "x-content-type-options"), "nosniff");
    let etag = header(&html, "etag");
    let again = client
        .get(format!("{base}/about/"))
        .header("accept-encoding", "br")
        .header("if-none-match", &etag)
        .send()
        .unwrap();
    assert_eq!(again.status(), 304);
    assert_eq!(header(&again, "etag"), etag);
    // Hashed assets are immutable; a missing one is a 404 problem, never HTML.
    let js = get(&asset, "gzip");
    assert_eq!(js.status(), 200);
    assert_eq!(
        header(&js, "cache-control"),
        "public, max-age=31536000, immutable"
    );
    for missing in ["/assets/app.0123456789.js", "/logo.jpg", "/nope/"] {
        let resp = get(missing, "gzip");
        assert_eq!(resp.status(), 404, "{missing}");
        assert_eq!(header(&resp, "content-type"), "application/problem+json");
    }
    // A person following a dead link gets the release's 404 page; a script never does.
    let page = |path: &str| {
        client
            .get(format!("{base}{path}"))
            .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
            .send()
            .unwrap()
    };
    let dead = page("/no/such/page");
    assert_eq!(dead.status(), 404);
    assert_eq!(header(&dead, "content-type"), "text/html; charset=utf-8");
    assert_eq!(dead.text().unwrap(), "<p>s1: not here</p>");
    for path in ["/assets/app.0123456789.js", "/styles.css"] {
        assert_eq!(
            header(&page(path), "content-type"),
            "application/problem+json"
        );
    }
    let head = client.head(format!("{base}/logo.png")).send().unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(header(&head, "content-length"), "8");
}

/// One reader's tally: responses per release, and anything wrong.
#[derive(Default)]
struct Tally {
    per_release: BTreeMap<String, usize>,
    failures: Vec<String>,
}

/// Reads `/health` and `/` until `stop`, checking each page links only its own assets.
fn read_until(base: &str, assets: &BTreeMap<String, String>, stop: &AtomicBool) -> Tally {
    let client = client_from(1);
    let mut tally = Tally::default();
    let mut n = 0usize;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let path = if n.is_multiple_of(2) { "/health" } else { "/" };
        let resp = match client.get(format!("{base}{path}")).send() {
            Ok(resp) => resp,
            Err(e) => {
                tally.failures.push(format!("{path}: {e}"));
                continue;
            }
        };
        let status = resp.status().as_u16();
        let release = header(&resp, "fastgate-release");
        let body = resp.text().unwrap_or_default();
        if status != 200 {
            tally.failures.push(format!("{path}: {status} {body}"));
        } else if path == "/" {
            let linked = assets.get(&release).map(|a| body.contains(a.as_str()));
            let names_itself = body.contains(&format!("data-release=\"{release}\""));
            if linked != Some(true) || !names_itself {
                tally
                    .failures
                    .push(format!("{release} served a page of another release"));
            }
        }
        *tally.per_release.entry(release).or_default() += 1;
    }
    tally
}

#[test]
fn publish_activate_and_roll_back_under_load_fail_no_request() {
    let (stack, t, _echo) = stack();
    let base = stack.edge_url();
    let mut assets = BTreeMap::new();
    let (web1, web2) = (scratch("load-1"), scratch("load-2"));
    assets.insert("r1".to_owned(), web_build(&web1, "r1"));
    assets.insert("r2".to_owned(), web_build(&web2, "r2"));
    publish(&t, "r1", None, Some(&web1));
    rel::activate(&t, "r1").unwrap();
    wait_for_release(&base, None, "r1");

    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let (base, assets, stop) = (base.clone(), assets.clone(), Arc::clone(&stop));
            std::thread::spawn(move || read_until(&base, &assets, &stop))
        })
        .collect();
    let started = Instant::now();
    let at = |s: u64| {
        let wait = Duration::from_secs(s).saturating_sub(started.elapsed());
        std::thread::sleep(wait);
    };
    at(3);
    publish(&t, "r2", None, Some(&web2));
    at(6);
    rel::activate(&t, "r2").unwrap();
    at(11);
    rel::activate(&t, "r1").unwrap(); // the rollback
    at(16);
    rel::activate(&t, "r2").unwrap();
    at(21);
    stop.store(true, Ordering::Relaxed);
    let mut total = Tally::default();
    for reader in readers {
        let tally = reader.join().unwrap();
        total.failures.extend(tally.failures);
        for (release, n) in tally.per_release {
            *total.per_release.entry(release).or_default() += n;
        }
    }
    let served: usize = total.per_release.values().sum();
    println!("{served} requests over 21 s: {:?}", total.per_release);
    assert!(
        total.failures.is_empty(),
        "{:?}",
        &total.failures[..total.failures.len().min(5)]
    );
    assert_eq!(
        total.per_release.keys().collect::<Vec<_>>(),
        ["r1", "r2"],
        "every response names one release"
    );
    assert!(
        total.per_release.values().all(|n| *n > 20),
        "{:?}",
        total.per_release
    );
}

#[test]
fn a_preview_host_serves_an_unreleased_release_to_it_alone() {
    let (stack, t, _echo) = stack();
    let base = stack.edge_url();
    let (web1, web2) = (scratch("preview-1"), scratch("preview-2"));
    web_build(&web1, "p1");
    let asset2 = web_build(&web2, "p2");
    publish(&t, "p1", None, Some(&web1));
    rel::activate(&t, "p1").unwrap();
    publish(&t, "p2", None, Some(&web2));
    wait_for_release(&base, None, "p1");
    let client = client_from(1);
    let get = |host: &str, path: &str| {
        client
            .get(format!("{base}{path}"))
            .header("host", host)
            .send()
            .unwrap()
    };
    let preview = get("preview-p2.fastgate.localhost", "/");
    assert_eq!(preview.status(), 200);
    assert_eq!(header(&preview, "fastgate-release"), "p2");
    assert_eq!(header(&preview, "cache-control"), "no-store");
    assert_eq!(header(&preview, "x-robots-tag"), "noindex");
    assert!(preview.text().unwrap().contains(&asset2));
    assert_eq!(get("preview-p2.fastgate.localhost", &asset2).status(), 200);
    // Everyone else still gets the active release, which does not have p2's asset.
    let everyone = get("app.fastgate.localhost", "/");
    assert_eq!(header(&everyone, "fastgate-release"), "p1");
    assert!(everyone.text().unwrap().contains("data-release=\"p1\""));
    assert_eq!(get("app.fastgate.localhost", &asset2).status(), 404);
    // A preview of nothing published is a 404, not the active release.
    let unknown = get("preview-nope.fastgate.localhost", "/");
    assert_eq!(unknown.status(), 404);
}

/// Log lines of the edge that mention `needle`.
fn log_lines(stack: &Stack, needle: &str) -> Vec<String> {
    stack
        .edge_log()
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_owned)
        .collect()
}

#[test]
fn an_invalid_release_is_refused_once_and_the_previous_stays_active() {
    let (stack, t, _echo) = stack();
    let base = stack.edge_url();
    let web = scratch("invalid-web");
    web_build(&web, "good");
    publish(&t, "good", None, Some(&web));
    rel::activate(&t, "good").unwrap();
    wait_for_release(&base, None, "good");

    let dir = scratch("invalid");
    let broken = support::config_with(|v| v["failover"]["max_attempts"] = 0.into());
    std::fs::write(dir.join("broken.json"), &broken).unwrap();
    for _ in 0..3 {
        let e = rel::publish(&t, "broken", Some(&dir.join("broken.json")), None).unwrap_err();
        assert!(format!("{e:#}").contains("failover"), "{e:#}");
    }
    assert!(rel::activate(&t, "broken").is_err());
    let client = client_from(1);
    for _ in 0..20 {
        let resp = client.get(format!("{base}/health")).send().unwrap();
        assert_eq!(header(&resp, "fastgate-release"), "good");
    }
    let lines = log_lines(&stack, "failover");
    assert_eq!(lines.len(), 1, "{lines:?}");
}

#[test]
fn a_broken_active_release_in_the_store_is_refused_with_one_line() {
    // Written straight into the store, as a raw `fastly kv-store-entry create` could: the
    // edge itself refuses it and keeps its embedded config.
    let dir = scratch("raw-store");
    let broken = support::config_with(|v| v["failover"]["down_for_s"] = 0.into());
    let hash = sha256_hex(broken.as_bytes());
    let manifest = serde_json::json!({"name": "raw", "config": hash, "created": 1});
    let store = serde_json::json!({
        "active": {"data": "raw"},
        "releases/raw": {"data": manifest.to_string()},
        format!("configs/{hash}"): {"data": broken},
    });
    let file = dir.join("store.json");
    std::fs::write(&file, store.to_string()).unwrap();
    let echo = EchoServer::start();
    let stack = StackBuilder::new(echo.everywhere()).kv_store(file).start();
    let base = stack.edge_url();
    let served = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (base, served) = (base.clone(), Arc::clone(&served));
            std::thread::spawn(move || {
                let client = client_from(1);
                for _ in 0..25 {
                    let resp = client.get(format!("{base}/health")).send().unwrap();
                    assert_eq!(resp.status(), 200);
                    assert_eq!(header(&resp, "fastgate-release"), "none");
                    let config = header(&resp, "fastgate-config");
                    assert!(config.ends_with("source=embedded"), "{config}");
                    served.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(served.load(Ordering::Relaxed), 100);
    let lines = log_lines(&stack, "release `raw` refused");
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("failover"), "{lines:?}");
}

#[test]
fn the_ops_endpoint_admits_only_its_key_and_only_writes_that_prove_themselves() {
    let (stack, t, _echo) = stack();
    let base = stack.edge_url();
    let key = t.ops_key.clone().unwrap();
    let client = client_from(1);
    let url = |k: &str| format!("{base}/__fastgate/kv/{k}");
    let put = |k: &str, auth: &str, body: Vec<u8>| {
        client
            .put(url(k))
            .header("authorization", auth)
            .body(body)
            .send()
            .unwrap()
    };
    let bearer = format!("Bearer {key}");
    // No key, a wrong key, a key of another length: 401, nothing stored.
    let file = b"hello".to_vec();
    let file_key = format!("files/{}", sha256_hex(&file));
    for auth in [
        "",
        "Bearer nope",
        &format!("Bearer {key}x"),
        &format!("Basic {key}"),
    ] {
        assert_eq!(put(&file_key, auth, file.clone()).status(), 401, "{auth}");
    }
    let get = client.get(url(&file_key)).header("authorization", &bearer);
    assert_eq!(get.send().unwrap().status(), 404);
    // Writes are bound to their keys.
    let other = format!("files/{}", sha256_hex(b"other"));
    let refused = put(&other, &bearer, file.clone());
    assert_eq!(refused.status(), 422);
    assert!(refused.text().unwrap().contains("do not hash to its name"));
    assert_eq!(put(&file_key, &bearer, file.clone()).status(), 204);
    assert_eq!(put("configs/x;y", &bearer, file.clone()).status(), 400);
    let manifest = |name: &str, path: &str| {
        serde_json::json!({"name": name, "created": 1, "files": {path: {
            "hash": sha256_hex(&file), "content_type": "text/plain", "size": 5}}})
        .to_string()
        .into_bytes()
    };
    let missing = serde_json::json!({"name": "m1", "created": 1, "files": {"/x.txt": {
        "hash": sha256_hex(b"never stored"), "content_type": "text/plain", "size": 12}}});
    let refused = put("releases/m1", &bearer, missing.to_string().into_bytes());
    assert_eq!(
        refused.status(),
        422,
        "a manifest may only refer to stored values"
    );
    assert_eq!(
        put("releases/m1", &bearer, manifest("m2", "/x.txt")).status(),
        422
    );
    assert_eq!(
        put("releases/m1", &bearer, manifest("m1", "/x.txt")).status(),
        204
    );
    assert_eq!(
        put("releases/m1", &bearer, manifest("m1", "/x.txt")).status(),
        204
    );
    assert_eq!(
        put("releases/m1", &bearer, manifest("m1", "/y.txt")).status(),
        409
    );
    assert_eq!(put("active", &bearer, b"nope".to_vec()).status(), 422);
    assert_eq!(put("active", &bearer, b"m1".to_vec()).status(), 204);
    let delete = client
        .delete(url("releases/m1"))
        .header("authorization", &bearer);
    assert_eq!(
        delete.send().unwrap().status(),
        409,
        "the active manifest stays"
    );
    let served = client.get(format!("{base}/x.txt")).send().unwrap();
    assert_eq!(header(&served, "fastgate-release"), "m1");
    assert_eq!(served.text().unwrap(), "hello");
}

#[test]
fn without_an_ops_key_the_ops_endpoint_does_not_exist() {
    let dir = scratch("no-ops");
    let file = dir.join("store.json");
    std::fs::write(&file, "{}").unwrap();
    let echo = EchoServer::start();
    let mut builder = StackBuilder::new(echo.everywhere()).kv_store(file);
    builder = builder.without_ops_key();
    let stack = builder.start();
    let resp = client_from(1)
        .put(format!("{}/__fastgate/kv/active", stack.edge_url()))
        .header("authorization", "Bearer ")
        .body("x")
        .send()
        .unwrap();
    assert_eq!(resp.status(), 404);
}

#[test]
fn with_a_preview_key_set_a_preview_host_asks_for_it() {
    let echo = EchoServer::start();
    let builder = StackBuilder::new(echo.everywhere()).preview_key("pk-0123456789");
    let (stack, spec) = builder.start_with_spec();
    let t = Target {
        edge: Some(stack.edge_url()),
        ops_key: Some(spec.secrets.ops_key.clone()),
        local: None,
    };
    let base = stack.edge_url();
    let web = scratch("preview-key");
    web_build(&web, "k1");
    publish(&t, "k1", None, Some(&web));
    let client = client_from(1);
    let get = |key: Option<&str>| {
        let mut req = client
            .get(format!("{base}/"))
            .header("host", "preview-k1.example.com");
        if let Some(key) = key {
            req = req.header("fastgate-preview-key", key);
        }
        req.send().unwrap()
    };
    for wrong in [None, Some("pk-012345678"), Some("pk-0123456789x"), Some("")] {
        let resp = get(wrong);
        assert_eq!(resp.status(), 401, "{wrong:?}");
        assert_eq!(header(&resp, "fastgate-release"), "none");
    }
    let admitted = get(Some("pk-0123456789"));
    assert_eq!(admitted.status(), 200);
    assert_eq!(header(&admitted, "fastgate-release"), "k1");
}
