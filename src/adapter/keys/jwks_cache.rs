//! An issuer's JWKS in the platform cache, fetched by one request at a time.
//!
//! - **A missing set** is looked up in a Core Cache transaction: the first request holds
//!   the obligation and fetches; concurrent ones wait for its insert and use it.
//! - **A stale set** (inside `max_stale_s`, kept as the entry's stale-while-revalidate
//!   window) answers at once; the one request the transaction obliges refreshes it, while
//!   every other request keeps using the stale set. When the fetch fails, that request
//!   uses the stale set too.
//! - **An unknown `kid`** refreshes through a transaction on a marker that lives
//!   `refresh_interval_s`: the request holding its obligation fetches and stores the set,
//!   then inserts the marker, so requests that waited on it read the new set, and later
//!   ones within the interval read what is cached (a set newer than their own, if any).
//! - **A failed fetch** is not tried again for `refresh_interval_s` (the same budget as an
//!   unknown `kid`): the stale set stands in meanwhile, or, with none, the edge answers 503
//!   at once instead of holding every request for 3 × 5 s.
//!
//! Each entry carries the set's generation (a digest of its bytes) as user metadata, so a
//! request can tell a newer set from the one it has without parsing it, and the set's
//! remaining freshness comes with it: a remembered signature may not outlive it.

use std::io::{Read, Write};
use std::time::Duration;

use fastly::cache::core::{self as cache, CacheKey, Found, Transaction};
use fastly::http::StatusCode;
use fastly::Request;
use sha2::{Digest, Sha256};

use fastgate::auth::{parse_jwks, Issuer, JwkKey, JwksCache, JwksError};

use crate::adapter::proxy::send_with_timeout;
use crate::adapter::telemetry::log_event;

/// Time limit for one JWKS fetch attempt.
const JWKS_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest JWKS document read: a set of a few dozen RSA keys is well under this.
const MAX_JWKS_BYTES: u64 = 256 * 1024;

/// A key set as this request got it.
pub(super) struct KeySet {
    pub keys: Vec<JwkKey>,
    /// A digest of the document: tells a newer set from this one.
    pub generation: String,
    /// Seconds of freshness left: the whole `ttl_s` when just fetched, 0 when stale.
    pub fresh_for_s: u64,
}

/// A fetched document, parsed.
struct Fetched {
    bytes: Vec<u8>,
    keys: Vec<JwkKey>,
}

/// One issuer's JWKS entry and the settings it is kept by.
pub(super) struct JwksStore<'a> {
    issuer: &'a Issuer,
    settings: &'a JwksCache,
}

impl<'a> JwksStore<'a> {
    pub(super) fn new(issuer: &'a Issuer, settings: &'a JwksCache) -> Self {
        JwksStore { issuer, settings }
    }

    /// The set in force: cached (fresh, or stale while one request refreshes it), or
    /// fetched by the one request the cache obliges while the others wait for it.
    pub(super) fn current(&self) -> Result<KeySet, JwksError> {
        let tx = match Transaction::lookup(self.key("jwks")).execute() {
            Ok(tx) => tx,
            Err(e) => {
                // The cache is an optimisation: without it, fetch (nothing to store into).
                log_event("cache_error", &format!("jwks lookup: {e:?}"));
                return self.fetch().map(|f| self.fresh(f));
            }
        };
        match (tx.found(), tx.must_insert_or_update()) {
            // Fresh; or stale while another request refreshes it.
            (Some(found), false) => read(&found),
            (Some(found), true) => self.refresh_stale(tx, &found),
            (None, true) => self.fill(tx),
            // No copy and no obligation: fetch once more, unless one just failed.
            (None, false) => {
                self.unless_backing_off()?;
                let fetched = self.fetched_or_back_off()?;
                self.store(&fetched.bytes);
                Ok(self.fresh(fetched))
            }
        }
    }

    /// An unknown `kid` met: at most one fetch per `refresh_interval_s`, by the request
    /// holding the marker's obligation. Any other request gets the cached set if it is
    /// newer than the one it has (`seen`), else `None`: the `kid` stays unknown.
    pub(super) fn refresh_for_unknown_kid(&self, seen: Option<&str>) -> Option<KeySet> {
        let marker = match Transaction::lookup(self.key("jwks-refresh")).execute() {
            Ok(tx) => tx,
            Err(e) => {
                log_event("cache_error", &format!("jwks refresh marker: {e:?}"));
                return None;
            }
        };
        if !marker.must_insert_or_update() {
            // Refreshed within the interval, perhaps just now while this request waited.
            return self.cached_newer_than(seen);
        }
        let fetched = self.fetch();
        if let Ok(f) = &fetched {
            self.store(&f.bytes);
        }
        // After the store: the requests waiting on the marker wake to the new set.
        let interval = Duration::from_secs(u64::from(self.settings.refresh_interval_s).max(1));
        if let Ok(body) = marker.insert(interval).execute() {
            let _ = body.finish();
        }
        fetched.ok().map(|f| self.fresh(f))
    }

    /// Holding the obligation on a stale entry: refresh it, or keep using it when the
    /// source is down (the entry's stale window is `max_stale_s`).
    fn refresh_stale(&self, tx: Transaction, found: &Found) -> Result<KeySet, JwksError> {
        let stale = read(found);
        if stale.is_ok() && self.backing_off() {
            let _ = tx.cancel_insert_or_update();
            return stale;
        }
        match self.fetch() {
            Ok(fetched) => {
                self.insert(tx, &fetched.bytes);
                Ok(self.fresh(fetched))
            }
            Err(e) => {
                self.back_off();
                let _ = tx.cancel_insert_or_update();
                log_event("jwks_stale_in_use", &e.to_string());
                stale.map_err(|_| e)
            }
        }
    }

    /// Holding the obligation on a missing entry: fetch it for every request waiting.
    fn fill(&self, tx: Transaction) -> Result<KeySet, JwksError> {
        if let Err(e) = self.unless_backing_off() {
            let _ = tx.cancel_insert_or_update();
            return Err(e);
        }
        match self.fetched_or_back_off() {
            Ok(fetched) => {
                self.insert(tx, &fetched.bytes);
                Ok(self.fresh(fetched))
            }
            Err(e) => {
                // The back-off mark is in place before the next waiter takes the obligation.
                let _ = tx.cancel_insert_or_update();
                Err(e)
            }
        }
    }

    /// The cached set when its generation differs from `seen`.
    fn cached_newer_than(&self, seen: Option<&str>) -> Option<KeySet> {
        let found = cache::lookup(self.key("jwks"))
            .execute()
            .ok()
            .flatten()
            .filter(Found::is_usable)?;
        let generation = String::from_utf8(found.user_metadata().to_vec()).ok()?;
        if seen == Some(generation.as_str()) {
            return None;
        }
        read(&found).ok()
    }

    fn fresh(&self, fetched: Fetched) -> KeySet {
        KeySet {
            generation: generation_of(&fetched.bytes),
            keys: fetched.keys,
            fresh_for_s: u64::from(self.settings.ttl_s),
        }
    }

    /// Fetches the set; on failure, marks the source as backing off first.
    fn fetched_or_back_off(&self) -> Result<Fetched, JwksError> {
        self.fetch().inspect_err(|_| self.back_off())
    }

    /// Tries the issuer's backends in order; the first good set wins.
    fn fetch(&self) -> Result<Fetched, JwksError> {
        let source = self
            .issuer
            .jwks
            .as_ref()
            .ok_or_else(|| JwksError("issuer has no JWKS source".into()))?;
        let mut last = String::from("no backend");
        for backend in &source.backends {
            let req = Request::get(format!("http://jwks.internal{}", source.path));
            let outcome = match send_with_timeout(req, backend, JWKS_TIMEOUT) {
                Ok(resp) if resp.get_status() == StatusCode::OK => read_body(resp)
                    .and_then(|bytes| parse_jwks(&bytes).map(|keys| Fetched { bytes, keys })),
                Ok(resp) => Err(JwksError(format!("status {}", resp.get_status()))),
                Err(_) => Err(JwksError("unreachable".into())),
            };
            match outcome {
                Ok(fetched) => {
                    log_event("jwks_fetched", backend);
                    return Ok(fetched);
                }
                Err(e) => last = format!("{backend}: {}", e.0),
            }
        }
        log_event("jwks_fetch_failed", &last);
        Err(JwksError(last))
    }

    /// Fills the entry this request is obliged to.
    fn insert(&self, tx: Transaction, bytes: &[u8]) {
        let body = tx
            .insert(self.ttl())
            .stale_while_revalidate(self.max_stale())
            .user_metadata(generation_of(bytes).into_bytes().into())
            .known_length(bytes.len() as u64)
            .execute();
        write_entry("jwks insert", body, bytes);
    }

    /// Replaces the entry outside a transaction on it (an unknown `kid`'s refresh).
    fn store(&self, bytes: &[u8]) {
        let body = cache::insert(self.key("jwks"), self.ttl())
            .stale_while_revalidate(self.max_stale())
            .user_metadata(generation_of(bytes).into_bytes().into())
            .known_length(bytes.len() as u64)
            .execute();
        write_entry("jwks store", body, bytes);
    }

    /// Whether a fetch failed within the last `refresh_interval_s`.
    fn backing_off(&self) -> bool {
        matches!(
            cache::lookup(self.key("jwks-failed")).execute(),
            Ok(Some(found)) if found.is_usable() && !found.is_stale()
        )
    }

    fn unless_backing_off(&self) -> Result<(), JwksError> {
        if self.backing_off() {
            return Err(JwksError(
                "the JWKS source failed recently; not retried yet".into(),
            ));
        }
        Ok(())
    }

    fn back_off(&self) {
        let interval = Duration::from_secs(u64::from(self.settings.refresh_interval_s).max(1));
        if let Ok(body) = cache::insert(self.key("jwks-failed"), interval).execute() {
            let _ = body.finish();
        }
    }

    fn key(&self, what: &str) -> CacheKey {
        CacheKey::from(format!("fastgate/{what}/v1/{}", self.issuer.iss))
    }

    fn ttl(&self) -> Duration {
        Duration::from_secs(u64::from(self.settings.ttl_s))
    }

    fn max_stale(&self) -> Duration {
        Duration::from_secs(u64::from(self.settings.max_stale_s))
    }
}

/// A cached set, with what is left of its freshness (0 when stale).
fn read(found: &Found) -> Result<KeySet, JwksError> {
    let bytes = found
        .to_stream()
        .map_err(|e| JwksError(format!("reading the cached set: {e:?}")))?
        .into_bytes();
    let keys = parse_jwks(&bytes)?;
    let generation = String::from_utf8(found.user_metadata().to_vec())
        .ok()
        .filter(|g| !g.is_empty())
        .unwrap_or_else(|| generation_of(&bytes));
    Ok(KeySet {
        keys,
        generation,
        fresh_for_s: if found.is_stale() {
            0
        } else {
            found.remaining_ttl().as_secs()
        },
    })
}

/// The body of a JWKS answer, at most [`MAX_JWKS_BYTES`].
fn read_body(mut resp: fastly::Response) -> Result<Vec<u8>, JwksError> {
    let mut bytes = Vec::new();
    resp.take_body()
        .take(MAX_JWKS_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| JwksError(format!("reading: {e}")))?;
    if bytes.len() as u64 > MAX_JWKS_BYTES {
        return Err(JwksError(format!("larger than {MAX_JWKS_BYTES} bytes")));
    }
    Ok(bytes)
}

/// Writes a new entry's bytes; a failure is logged (the set is fetched again next time).
fn write_entry(
    what: &str,
    body: Result<fastly::http::body::StreamingBody, cache::CacheError>,
    bytes: &[u8],
) {
    let written = body.map_err(|e| format!("{e:?}")).and_then(|mut body| {
        body.write_all(bytes)
            .and_then(|()| body.finish())
            .map_err(|e| e.to_string())
    });
    if let Err(e) = written {
        log_event("cache_error", &format!("{what}: {e}"));
    }
}

/// The first 8 bytes of SHA-256 of the document, in hex.
fn generation_of(bytes: &[u8]) -> String {
    fastgate::cache::key_hex(&Sha256::digest(bytes).into())[..16].to_owned()
}
