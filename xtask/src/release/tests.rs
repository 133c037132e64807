//! The commands end to end against a local store, and against a stand-in for the edge's
//! ops endpoint that refuses what the real one refuses (`src/adapter/ops.rs`): a manifest
//! before its values, a name republished with other bytes, a pointer to nothing, deleting
//! the active manifest. Its list answers are two keys a page, with base64 cursors, so that
//! paging and sending the cursor back verbatim are exercised.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use base64::Engine;
use fastgate::release::{
    check_put, file_key, parse_active, release_key, sha256_hex, Manifest, ReleaseError, StoreKey,
};

use super::pointer::verify_release;
use super::*;

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fastgate-release-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A web build with one shared and one per-release file, and a config whose version
/// names the release.
fn sources(dir: &Path, release: &str) -> (PathBuf, PathBuf) {
    let web = dir.join(format!("web-{release}"));
    std::fs::create_dir_all(web.join("assets")).unwrap();
    let page = format!("<!doctype html><h1>{release}</h1>\n").repeat(30);
    std::fs::write(web.join("index.html"), page).unwrap();
    std::fs::write(
        web.join("assets/shared.css"),
        "p { margin: 0 }\n".repeat(40),
    )
    .unwrap();
    let mut config: serde_json::Value = serde_json::from_str(fastgate::config::EMBEDDED).unwrap();
    config["version"] = release.into();
    let file = dir.join(format!("{release}.json"));
    std::fs::write(&file, serde_json::to_string_pretty(&config).unwrap()).unwrap();
    (file, web)
}

fn store_json(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join(STORE_FILE)).unwrap()).unwrap()
}

#[test]
fn publish_activate_rollback_list_and_gc_on_the_local_copy() {
    let dir = temp("local");
    let kv = dir.join("kv");
    let t = Target::local_only(&kv);
    let (c1, w1) = sources(&dir, "r1");
    let m1 = publish(&t, "r1", Some(&c1), Some(&w1)).unwrap();
    assert_eq!(m1.files.len(), 2);
    let bytes = std::fs::read(&c1).unwrap();
    assert_eq!(m1.config.as_deref(), Some(sha256_hex(&bytes).as_str()));
    // Again, same content: a no-op keeping the first `created`.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(publish(&t, "r1", Some(&c1), Some(&w1)).unwrap(), m1);
    // Other content under the same name: refused.
    let (c2, w2) = sources(&dir, "r2");
    let e = publish(&t, "r1", Some(&c2), Some(&w2))
        .unwrap_err()
        .to_string();
    assert!(e.contains("already published with other content"), "{e}");
    publish(&t, "r2", Some(&c2), Some(&w2)).unwrap();
    let names = |t: &Target| {
        list(t)
            .unwrap()
            .into_iter()
            .map(|i| i.name)
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&t), ["r1", "r2"]);
    assert!(list(&t).unwrap().iter().all(|i| !i.active));

    activate(&t, "r2").unwrap();
    assert!(list(&t).unwrap()[1].active);
    assert_eq!(rollback(&t).unwrap(), "r1");
    let e = rollback(&t).unwrap_err().to_string();
    assert!(e.contains("oldest"), "{e}");
    // r1 active, keep 1: r2 is the newest, r1 the active one; nothing goes.
    assert_eq!(gc(&t, Some(1)).unwrap(), GcReport::default());
    activate(&t, "r2").unwrap();
    let report = gc(&t, Some(1)).unwrap();
    assert_eq!(report.releases, ["r1"]);
    // r1's page (and its variants) and its config go; the shared stylesheet stays.
    assert_eq!(
        report
            .keys
            .iter()
            .filter(|k| k.starts_with("configs/"))
            .count(),
        1
    );
    assert!(report
        .keys
        .contains(&file_key(&m1.files["/index.html"].hash)));
    assert!(!report
        .keys
        .contains(&file_key(&m1.files["/assets/shared.css"].hash)));
    let store = store_json(&kv);
    for (key, entry) in store.as_object().unwrap() {
        let file = entry["file"].as_str().unwrap();
        assert!(Path::new(file).exists(), "{key}: {file}");
    }
    assert_eq!(names(&t), ["r2"]);
    verify_release(&mut local::LocalStore::open(&kv).unwrap(), "r2").unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn an_invalid_config_is_refused_naming_the_field_before_anything_is_stored() {
    let dir = temp("badconfig");
    let kv = dir.join("kv");
    let (config, web) = sources(&dir, "r1");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    v["geo"]["continents"]["EU"][0] = "origin_mars".into();
    std::fs::write(&config, v.to_string()).unwrap();
    let e = publish(&Target::local_only(&kv), "r1", Some(&config), Some(&web)).unwrap_err();
    let e = format!("{e:#}");
    assert!(e.contains("geo.continents.EU[0]"), "{e}");
    assert!(!kv.exists(), "nothing may be written");
    let e = publish(&Target::local_only(&kv), "Bad_Name", None, Some(&web)).unwrap_err();
    assert!(e.to_string().contains("not a valid release name"), "{e}");
    let e = publish(&Target::local_only(&kv), "r1", None, None).unwrap_err();
    assert!(e.to_string().contains("nothing to publish"), "{e}");
    let e = activate(&Target::local_only(&kv), "r9").unwrap_err();
    assert!(e.to_string().contains("not published"), "{e}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn the_edge_and_the_local_copy_both_change_and_a_refusal_spares_the_local_copy() {
    let dir = temp("edge");
    let kv = dir.join("kv");
    let edge = FakeEdge::start("k1");
    let t = Target {
        edge: Some(edge.url.clone()),
        ops_key: Some("k1".into()),
        local: Some(kv.clone()),
    };
    let (c1, w1) = sources(&dir, "r1");
    let m1 = publish(&t, "r1", Some(&c1), Some(&w1)).unwrap();
    activate(&t, "r1").unwrap();
    let on_edge = edge.keys();
    let mut local = local::LocalStore::open(&kv).unwrap();
    assert_eq!(on_edge, local.list("").unwrap());
    assert!(on_edge.len() > 5, "paging covered: {on_edge:?}");
    assert_eq!(
        list(&Target::edge_only(&edge.url, "k1")).unwrap()[0].name,
        "r1"
    );

    // The edge holds other bytes under r2: its 409 stops the publish before the local copy.
    let (c2, w2) = sources(&dir, "r2");
    let other = Manifest {
        name: "r2".into(),
        ..m1.clone()
    };
    edge.insert(&release_key("r2"), serde_json::to_vec(&other).unwrap());
    let e = publish(&t, "r2", Some(&c2), Some(&w2))
        .unwrap_err()
        .to_string();
    assert!(e.contains("already published"), "{e}");
    assert!(local.list("releases/").unwrap() == ["releases/r1"]);

    // A wrong key is refused up front, naming what is wanted.
    let wrong = Target {
        ops_key: Some("nope".into()),
        ..t.clone()
    };
    let e = format!("{:#}", list(&wrong).unwrap_err());
    assert!(e.contains("release_ops_key") && e.contains("401"), "{e}");
    drop(edge);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn without_an_edge_only_the_local_copy_changes() {
    let dir = temp("noedge");
    let kv = dir.join("kv");
    let port = crate::stack::free_port().unwrap();
    let t = Target {
        edge: Some(format!("http://127.0.0.1:{port}")),
        ops_key: Some("k".into()),
        local: Some(kv.clone()),
    };
    let (_, web) = sources(&dir, "r1");
    publish(&t, "r1", None, Some(&web)).unwrap();
    activate(&t, "r1").unwrap();
    // Two files with two variants each, the manifest and the pointer.
    assert_eq!(store_json(&kv).as_object().unwrap().len(), 8);
    let e = publish(
        &Target::edge_only(&t.edge.clone().unwrap(), "k"),
        "r2",
        None,
        Some(&web),
    );
    assert!(e.unwrap_err().to_string().contains("no edge answers"));
    std::fs::remove_dir_all(dir).unwrap();
}

/// The stand-in ops endpoint (see the module doc).
struct FakeEdge {
    url: String,
    map: Arc<Mutex<BTreeMap<String, Vec<u8>>>>,
}

impl FakeEdge {
    fn start(key: &str) -> FakeEdge {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let map = Arc::new(Mutex::new(BTreeMap::new()));
        let (shared, key) = (map.clone(), key.to_owned());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                if serve(stream, &shared, &key).is_err() {
                    return;
                }
            }
        });
        FakeEdge { url, map }
    }

    fn keys(&self) -> Vec<String> {
        self.map.lock().unwrap().keys().cloned().collect()
    }

    fn insert(&self, key: &str, value: Vec<u8>) {
        self.map.lock().unwrap().insert(key.to_owned(), value);
    }
}

type Map = Mutex<BTreeMap<String, Vec<u8>>>;

/// One request on one connection (answered with `Connection: close`).
fn serve(stream: TcpStream, map: &Map, key: &str) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (mut length, mut auth) = (0usize, String::new());
    loop {
        let mut h = String::new();
        reader.read_line(&mut h)?;
        if h.trim().is_empty() {
            break;
        }
        let (name, value) = h.split_once(':').unwrap_or(("", ""));
        match name.to_ascii_lowercase().as_str() {
            "content-length" => length = value.trim().parse().unwrap_or(0),
            "authorization" => auth = value.trim().to_owned(),
            _ => {}
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let (status, answer) = if auth != format!("Bearer {key}") {
        (401, problem("the ops key is required"))
    } else {
        answer(&mut map.lock().unwrap(), method, target, body)
    };
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        answer.len()
    )?;
    stream.write_all(&answer)
}

fn problem(detail: &str) -> Vec<u8> {
    serde_json::json!({ "detail": detail })
        .to_string()
        .into_bytes()
}

fn answer(
    map: &mut BTreeMap<String, Vec<u8>>,
    method: &str,
    target: &str,
    body: Vec<u8>,
) -> (u16, Vec<u8>) {
    let path = target.split('?').next().unwrap_or("");
    if path == OPS_PREFIX_FOR_TESTS {
        return list_page(map, target.split_once('?').map_or("", |(_, q)| q));
    }
    let key = path.strip_prefix("/__fastgate/kv/").unwrap_or("");
    let Ok(parsed) = StoreKey::parse(key) else {
        return (422, problem("bad key"));
    };
    match method {
        "GET" => map
            .get(key)
            .map_or((404, problem("absent")), |v| (200, v.clone())),
        "DELETE" => {
            let active = map.get("active").and_then(|v| parse_active(v).ok());
            if parsed == StoreKey::Release(active.unwrap_or_default()) {
                return (409, problem("release is active"));
            }
            map.remove(key);
            (204, Vec::new())
        }
        "PUT" => match put(map, &parsed, &body) {
            Ok(()) => {
                map.insert(key.to_owned(), body);
                (204, Vec::new())
            }
            Err((status, detail)) => (status, problem(&detail)),
        },
        _ => (405, problem("method")),
    }
}

const OPS_PREFIX_FOR_TESTS: &str = fastgate::release::OPS_PREFIX;

fn put(map: &BTreeMap<String, Vec<u8>>, key: &StoreKey, body: &[u8]) -> Result<(), (u16, String)> {
    check_put(key, body).map_err(|e| (422, e.to_string()))?;
    let needed = match key {
        StoreKey::Release(name) => {
            if map.get(&release_key(name)).is_some_and(|v| v != body) {
                let e = ReleaseError::Republished(name.clone());
                return Err((409, e.to_string()));
            }
            Manifest::parse(body).unwrap().references()
        }
        StoreKey::Active => vec![release_key(&parse_active(body).unwrap())],
        _ => Vec::new(),
    };
    match needed.into_iter().find(|k| !map.contains_key(k)) {
        Some(k) => Err((422, format!("`{k}` is not in the release store"))),
        None => Ok(()),
    }
}

/// Two keys a page; the cursor is the base64 of the last key given (as Viceroy's are).
fn list_page(map: &BTreeMap<String, Vec<u8>>, query: &str) -> (u16, Vec<u8>) {
    let b64 = base64::engine::general_purpose::STANDARD;
    let (mut prefix, mut after) = (String::new(), None);
    for (name, value) in query.split('&').filter_map(|p| p.split_once('=')) {
        match name {
            "prefix" => prefix = value.to_owned(),
            "cursor" => match b64.decode(value) {
                Ok(k) => after = Some(String::from_utf8(k).unwrap()),
                Err(_) => return (400, problem("cursor was not sent back verbatim")),
            },
            _ => {}
        }
    }
    let keys: Vec<&String> = map
        .keys()
        .filter(|k| k.starts_with(&prefix) && after.as_ref().is_none_or(|a| *k > a))
        .take(2)
        .collect();
    let cursor = (keys.len() == 2).then(|| b64.encode(keys[1]));
    let body = serde_json::json!({ "keys": keys, "cursor": cursor });
    (200, body.to_string().into_bytes())
}
