//! The release in force for one request, read from the KV Store (`fastgate::release`).
//!
//! - The active pointer is read at most every `config::RECHECK` per instance, like the
//!   Config Store: a switch reaches every instance within a second, and a request never
//!   pays a KV read for it otherwise.
//! - A release is loaded once per instance and kept ([`Release`]): a published release
//!   never changes (the ops endpoint refuses to republish a name with other content, and
//!   every value it refers to is content-addressed), so a request reads one pointer value
//!   and then only immutable data. That is what makes the switch atomic.
//! - A release that fails its checks (`check_release`) is refused: one log line naming
//!   the field, once per release across instances (a Core Cache marker), and the last
//!   good release stays in force: this instance's, else the POP's (a Core Cache entry every
//!   instance refreshes when it first serves a release), else none (the embedded config).
//! - `preview-<name>.<domain>` selects a release by name instead of the pointer. When the
//!   Secret Store holds `release_preview_key`, the request must present it.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use fastly::cache::core::{self as cache, CacheKey};
use fastly::kv_store::KVStore;

use fastgate::config::RECHECK;
use fastgate::problem::{Problem, ProblemKind};
use fastgate::release::{
    check_release, config_key, parse_active, preview_name, release_key, secret_matches, Manifest,
    ReleaseError, ACTIVE_KEY, PREVIEW_KEY_HEADER, PREVIEW_KEY_SECRET, STORE,
};
use fastgate::request_id;

use super::headers::ClientHeaders;
use super::platform::{problem_response, secret};
use super::telemetry::log_event_once;
use super::Early;

/// A release that passed its checks.
pub(crate) struct Release {
    pub manifest: Manifest,
    /// The config's text, when the release has one.
    pub config: Option<String>,
}

/// Which release answers this request.
pub(crate) struct Selected {
    pub release: Option<Rc<Release>>,
    /// Chosen by a preview host: kept out of shared caches, never indexed.
    pub preview: bool,
}

/// Releases one instance keeps (the active one, the last good, a few previews).
const KEPT: usize = 4;
/// How long the POP remembers its last good release.
const LAST_GOOD_TTL: Duration = Duration::from_secs(30 * 86_400);

#[derive(Default)]
struct State {
    /// When the pointer was read, and the name it held (`None`: no release active).
    pointer: Option<(Instant, Option<String>)>,
    kept: Vec<Rc<Release>>,
    last_good: Option<Rc<Release>>,
    /// Names refused by this instance (not read again until the pointer changes).
    refused: Vec<String>,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State::default());
}

/// The release for this request: a preview by host, else the active one.
pub(crate) fn select(headers: &ClientHeaders) -> Result<Selected, Early> {
    if let Some(name) = preview_name(headers.get("host")) {
        return preview(headers, &name).map(|release| Selected {
            release: Some(release),
            preview: true,
        });
    }
    Ok(Selected {
        release: active(),
        preview: false,
    })
}

/// The release a preview host names, when the preview key (if one is set) admits it.
fn preview(headers: &ClientHeaders, name: &str) -> Result<Rc<Release>, Early> {
    let refuse = |kind, detail: String| {
        Early::from(problem_response(&Problem::new(
            kind,
            detail,
            &request_id::generate(),
        )))
    };
    if let Some(key) = secret(PREVIEW_KEY_SECRET) {
        let presented = headers.value(PREVIEW_KEY_HEADER).map(|v| v.as_bytes());
        if !presented.is_some_and(|p| secret_matches(p, &key)) {
            let detail = "a preview needs the `Fastgate-Preview-Key` header".to_owned();
            return Err(refuse(ProblemKind::Unauthorized, detail));
        }
    }
    load(name).map_err(|e| match e {
        ReleaseError::Missing(_) => refuse(
            ProblemKind::NotFound,
            format!("no release `{name}` is published"),
        ),
        other => refuse(ProblemKind::UnprocessableContent, other.to_string()),
    })
}

/// The active release, or the last good one when the active one is refused.
fn active() -> Option<Rc<Release>> {
    let name = pointer()?;
    if STATE.with_borrow(|s| s.refused.contains(&name)) {
        return last_good();
    }
    match load(&name) {
        Ok(release) => {
            let known = STATE.with_borrow(|s| {
                s.last_good
                    .as_ref()
                    .is_some_and(|good| Rc::ptr_eq(good, &release))
            });
            if !known {
                remember_good(&release);
            }
            Some(release)
        }
        Err(e) => {
            refuse(&name, &e);
            last_good()
        }
    }
}

/// The pointer's release name, read at most every [`RECHECK`].
fn pointer() -> Option<String> {
    let now = Instant::now();
    let recent = STATE.with_borrow(|s| {
        s.pointer
            .as_ref()
            .filter(|(at, _)| now.saturating_duration_since(*at) < RECHECK)
            .map(|(_, name)| name.clone())
    });
    if let Some(name) = recent {
        return name;
    }
    let name = match read(ACTIVE_KEY) {
        Ok(Some(value)) => parse_active(&value)
            .map_err(|e| log_event_once("release_refused", "pointer", &e.to_string()))
            .ok(),
        _ => None,
    };
    set_pointer(name.clone());
    name
}

/// Records what the pointer holds now (also after the ops endpoint flipped it).
pub(crate) fn set_pointer(name: Option<String>) {
    STATE.with_borrow_mut(|s| {
        s.pointer = Some((Instant::now(), name));
        s.refused.clear();
    });
}

/// The release `name` as this instance keeps it, without reading the store.
fn kept(name: &str) -> Option<Rc<Release>> {
    STATE.with_borrow(|s| {
        s.kept
            .iter()
            .find(|r| r.manifest.name == name)
            .map(Rc::clone)
    })
}

/// Release `name` from the store, checked, and kept for later requests.
pub(crate) fn load(name: &str) -> Result<Rc<Release>, ReleaseError> {
    if let Some(kept) = kept(name) {
        return Ok(kept);
    }
    let key = release_key(name);
    let bytes = read(&key)?.ok_or(ReleaseError::Missing(key))?;
    let manifest = Manifest::parse(&bytes)?;
    if manifest.name != name {
        return Err(ReleaseError::NameMismatch {
            key: name.to_owned(),
            name: manifest.name,
        });
    }
    let config_bytes = match &manifest.config {
        Some(hash) => read(&config_key(hash))?,
        None => None,
    };
    let config = check_release(&manifest, config_bytes.as_deref())?;
    let release = Rc::new(Release { manifest, config });
    STATE.with_borrow_mut(|s| {
        if s.kept.len() >= KEPT {
            s.kept.remove(0);
        }
        s.kept.push(Rc::clone(&release));
    });
    Ok(release)
}

/// One KV read; `Ok(None)` when the key is absent. A store that is not configured reads
/// as empty: no release has ever been published there.
pub(crate) fn read(key: &str) -> Result<Option<Vec<u8>>, ReleaseError> {
    let Ok(Some(store)) = KVStore::open(STORE) else {
        return Ok(None);
    };
    match store.lookup(key) {
        Ok(mut found) => Ok(Some(found.take_body_bytes())),
        Err(fastly::kv_store::KVStoreError::ItemNotFound) => Ok(None),
        Err(e) => Err(ReleaseError::Store(format!("reading `{key}`: {e}"))),
    }
}

/// Logs why `name` is refused (once per release and reason, across instances) and stops
/// this instance from reading it again until the pointer changes.
fn refuse(name: &str, e: &ReleaseError) {
    log_event_once(
        "release_refused",
        name,
        &format!("release `{name}` refused: {e}"),
    );
    STATE.with_borrow_mut(|s| {
        if s.refused.len() < KEPT {
            s.refused.push(name.to_owned());
        }
    });
}

fn last_good_key() -> CacheKey {
    CacheKey::from_static(b"fastgate/release/v1/last-good")
}

/// Remembers `release` as good here and for the POP.
fn remember_good(release: &Rc<Release>) {
    STATE.with_borrow_mut(|s| s.last_good = Some(Rc::clone(release)));
    let name = release.manifest.name.as_bytes();
    let _ = cache::insert(last_good_key(), LAST_GOOD_TTL)
        .known_length(name.len() as u64)
        .execute()
        .map(|mut body| {
            let _ = std::io::Write::write_all(&mut body, name);
            body.finish()
        });
}

/// The last release that passed its checks: this instance's, else the POP's.
fn last_good() -> Option<Rc<Release>> {
    if let Some(good) = STATE.with_borrow(|s| s.last_good.clone()) {
        return Some(good);
    }
    let found = cache::lookup(last_good_key()).execute().ok().flatten()?;
    let name = found.to_stream().ok()?.into_string();
    let release = load(name.trim()).ok()?;
    STATE.with_borrow_mut(|s| s.last_good = Some(Rc::clone(&release)));
    Some(release)
}
