//! Platform reads every phase may need: the config (the release's, the legacy ops override
//! in the Config Store, or the embedded one), Secret Store entries, the client's request as plain facts (raw URI,
//! headers read as bytes, geolocation), and the problem+json response.
//!
//! No client byte may reach an SDK call that panics on it (a panic is a bare 500): headers
//! are read as bytes ([`header`]), and the URI is read raw and checked to be one the SDK
//! can parse before anything asks the SDK for the request's `Url`.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::rc::Rc;
use std::time::Instant;

use fastly::http::{StatusCode, Url};
use fastly::{ConfigStore, Request, Response, SecretStore};

use fastgate::config::{self, InstanceCache, RECHECK};
use fastgate::geo::ClientGeo;
use fastgate::plan::{Gateway, RequestFacts};
use fastgate::problem::{self, Problem};
use fastgate::request_id;

use super::headers::ClientHeaders;
use super::release::Release;
use super::telemetry::{log_event, log_event_once};
use super::Early;

/// Config Store and key that hold an ops override of the embedded config.
const CONFIG_STORE: &str = "fastgate_config";
const CONFIG_KEY: &str = "config";
/// Config Store key with flag overrides (`{"new_schema": {"enabled": true}}`).
const FLAGS_KEY: &str = "flags";
/// Secret Store with the JWT HMAC keys and the identity signing key.
pub(crate) const SECRET_STORE: &str = "fastgate_secrets";

/// The gateway for this request and its `Fastgate-Config` value.
pub(crate) struct Loaded {
    pub gateway: Gateway,
    pub header: String,
}

/// The Config Store's `config` and `flags` entries, and when they were read (shared, not
/// copied, by the requests that use them until the next read).
type StoreEntries = (Instant, Option<Rc<str>>, Option<Rc<str>>);

thread_local! {
    /// A reused sandbox serves several requests (`main`): the Config Store is read at most
    /// every `config::RECHECK`, and a config's text parsed and validated again only when
    /// the text in force (the release's or the store's) or the flags changed.
    static COMPILED: RefCell<InstanceCache<Loaded>> = const { RefCell::new(InstanceCache::new()) };
    static STORE_ENTRIES: RefCell<Option<StoreEntries>> = const { RefCell::new(None) };
}

/// Loads the config in force: the release's, else the Config Store override (legacy),
/// else the embedded one. A rejected override is logged once and the embedded config
/// answers; an embedded config that fails is a build defect (unit tests validate it), so
/// the client gets a 500 problem. Flag overrides from the Config Store apply to any of them.
pub(crate) fn load_gateway(release: Option<&Release>) -> Result<Rc<Loaded>, Early> {
    let now = Instant::now();
    let (store_config, flags) = store_entries(now);
    let from_release = release.and_then(|r| r.config.as_deref());
    let config = from_release.or(store_config.as_deref());
    COMPILED.with_borrow_mut(|cache| {
        cache.get_or_compile(config, flags.as_deref(), now, |c, f| {
            compile(c, f, from_release.is_some())
        })
    })
}

/// The Config Store's entries, read at most every [`RECHECK`].
fn store_entries(now: Instant) -> (Option<Rc<str>>, Option<Rc<str>>) {
    let recent = STORE_ENTRIES.with_borrow(|kept| {
        kept.as_ref()
            .filter(|(at, _, _)| now.saturating_duration_since(*at) < RECHECK)
            .map(|(_, c, f)| (c.clone(), f.clone()))
    });
    if let Some(entries) = recent {
        return entries;
    }
    let store = ConfigStore::try_open(CONFIG_STORE).ok();
    let entry = |key: &str| {
        let value = store.as_ref().and_then(|s| s.try_get(key).ok().flatten());
        value.map(Rc::<str>::from)
    };
    let (config, flags) = (entry(CONFIG_KEY), entry(FLAGS_KEY));
    STORE_ENTRIES.with_borrow_mut(|kept| *kept = Some((now, config.clone(), flags.clone())));
    (config, flags)
}

/// Parses and validates the config the release or the store's entries select.
fn compile(
    config_json: Option<&str>,
    flags_json: Option<&str>,
    from_release: bool,
) -> Result<Loaded, Early> {
    let loaded = config::load(config_json, flags_json).map_err(|e| {
        log_event("config_invalid", &e.to_string());
        Early::from(problem_response(
            &Problem::internal(&request_id::generate()),
        ))
    })?;
    if let Some(e) = &loaded.rejected_override {
        log_event_once("config_override_rejected", "config", &e.to_string());
    }
    if let Some(e) = &loaded.rejected_flags {
        log_event_once("flags_override_rejected", "flags", &e.to_string());
    }
    let source = match loaded.source {
        config::Source::Override if from_release => "release",
        other => other.as_str(),
    };
    let header = format!(
        "{}; hash={}; source={source}",
        loaded.config.version, loaded.config.hash,
    );
    Ok(Loaded {
        gateway: Gateway::new(loaded.config),
        header,
    })
}

/// The request as the planning phases see it. `raw_uri` is the target as sent ([`raw_uri`]);
/// when it could not be read there is no fallback: the path is left empty, which the
/// planning phases refuse with 400.
pub(crate) fn request_facts<'r>(
    req: &'r Request,
    headers: &'r ClientHeaders,
    raw_uri: Option<&'r str>,
    client_ip: Option<IpAddr>,
    geo: &ClientGeo,
) -> RequestFacts<'r> {
    let (path, query) = raw_uri.map_or(("", None), fastgate::path::split_target);
    RequestFacts {
        method: req.get_method_str(),
        path,
        query,
        headers: headers
            .iter()
            .map(|(n, v)| (n.as_str(), std::str::from_utf8(v.as_bytes()).unwrap_or("")))
            .collect(),
        client_ip,
        tls: super::client::tls(req),
        geo: geo.clone(),
    }
}

/// The first read's buffer: enough for nearly every request URI.
const FIRST_URI_READ: usize = 4096;
/// A sanity ceiling on what the adapter copies out of the platform, far above any target a
/// config may allow (`limits.max_uri_bytes`, which the library applies to what was read:
/// 414) and above what platforms accept at all (Viceroy's `http::Uri` holds 64 KiB).
const MAX_URI_READ: usize = 1024 * 1024;

/// The request URI exactly as the client sent it, read whole: the buffer grows to the
/// length the hostcall reports. `Request::get_path` comes from a parsed `Url`, which has
/// already resolved `..` segments; routing on that would let `/v1/../admin` reach a route
/// the client never named, so there is no fallback to it: `None` (a URI that is not UTF-8,
/// over [`MAX_URI_READ`], or refused by the platform) is refused by the planning phases.
///
/// The URI must also be one the SDK itself can parse: the proxy phase sets the path through
/// the SDK's `Url`, which panics on a URI it cannot parse (`Host: x:99999`, `Host: xn--`).
pub(crate) fn raw_uri(req: &Request) -> Option<String> {
    let (handle, _) = req.as_handles();
    let mut len = FIRST_URI_READ;
    // At most two reads: the hostcall reports the length it needs when the buffer is short.
    for _ in 0..2 {
        match uri_get(handle.as_u32(), len) {
            UriRead::Read(bytes) => {
                let uri = String::from_utf8(bytes).ok()?;
                return Url::parse(&uri).is_ok().then_some(uri);
            }
            UriRead::Needs(needed) if needed > len && needed <= MAX_URI_READ => len = needed,
            UriRead::Needs(_) | UriRead::Failed => return None,
        }
    }
    None
}

/// One `uri_get` hostcall's outcome.
enum UriRead {
    Read(Vec<u8>),
    /// The buffer was too short; the URI needs this many bytes.
    Needs(usize),
    Failed,
}

/// `FastlyStatus::BUFLEN` (`fastly-shared`, not a dependency of ours): the buffer is short.
const BUFLEN: i32 = 4;

fn uri_get(handle: u32, len: usize) -> UriRead {
    let mut buf = vec![0u8; len];
    let mut written = 0usize;
    // SAFETY: `uri_get` writes at most `buf.len()` bytes into `buf` and reports how many in
    // `written` (or, with BUFLEN, how many it needs); the handle is the live client
    // request's.
    let status = unsafe {
        fastly_sys::fastly_http_req::uri_get(handle, buf.as_mut_ptr(), buf.len(), &mut written)
    };
    if status.is_ok() && written <= buf.len() {
        buf.truncate(written);
        UriRead::Read(buf)
    } else if status.code == BUFLEN {
        UriRead::Needs(written)
    } else {
        UriRead::Failed
    }
}

/// A Secret Store entry as read (`None`: absent), and when.
type ReadSecret = (Instant, Option<Vec<u8>>);

thread_local! {
    /// Secret Store entries this instance read, by name.
    static SECRETS: RefCell<BTreeMap<String, ReadSecret>> = const { RefCell::new(BTreeMap::new()) };
}

/// A Secret Store entry's plaintext. A reused instance keeps what it read for at most
/// `config::RECHECK`, as it does the config, so a rotated key is picked up within a second
/// (the origin accepts the old and the new key while a rotation is under way) and the store
/// is not opened and read on every request.
pub(crate) fn secret(name: &str) -> Option<Vec<u8>> {
    let now = Instant::now();
    let kept = SECRETS.with_borrow(|kept| {
        kept.get(name)
            .filter(|(read_at, _)| now.saturating_duration_since(*read_at) < RECHECK)
            .map(|(_, value)| value.clone())
    });
    if let Some(value) = kept {
        return value;
    }
    let value = SecretStore::open(SECRET_STORE)
        .ok()
        .and_then(|store| store.try_get(name).ok().flatten())
        .map(|s| s.plaintext().to_vec());
    SECRETS.with_borrow_mut(|kept| kept.insert(name.to_owned(), (now, value.clone())));
    value
}

/// An edge error as RFC 9457 problem+json, never stored by any cache, with the header
/// fields the problem carries (`Allow` on a 405).
pub(crate) fn problem_response(p: &Problem) -> Response {
    let mut resp =
        Response::from_status(StatusCode::from_u16(p.status).unwrap_or(StatusCode::BAD_GATEWAY))
            .with_header("content-type", problem::CONTENT_TYPE)
            .with_header("cache-control", "no-store")
            .with_body(p.to_json());
    for (name, value) in &p.headers {
        resp.set_header(*name, value.as_str());
    }
    resp
}

/// Adds `tokens` to `Vary` without dropping what the origin already varies on.
pub(crate) fn append_vary(resp: &mut Response, tokens: &str) {
    let existing = resp
        .get_header("vary")
        .and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
        .unwrap_or_default()
        .to_owned();
    let mut merged: Vec<String> = existing
        .split(',')
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .collect();
    for token in tokens.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        if !merged.iter().any(|m| m.eq_ignore_ascii_case(token)) {
            merged.push(token.to_owned());
        }
    }
    resp.set_header("vary", merged.join(", "));
}
