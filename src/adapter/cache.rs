//! The cache phase's platform side, on Fastly's Core Cache transactions (the same API
//! under Viceroy and on Fastly). The library decides (key, storability, freshness,
//! `Cache-Status`); this module performs:
//!
//! - **collapsing**: a transactional lookup of a missing key makes the first request the
//!   one obliged to fill it; concurrent lookups of that key wait for its insert and are
//!   answered from it, so N simultaneous misses cost one origin fetch;
//! - **stale-while-revalidate**: a stale copy inside the window is answered at once, and the
//!   one request holding the update obligation revalidates it *after* the client has its
//!   answer ([`Revalidation`], run by the adapter once the response is sent);
//! - **stale-if-error**: when the origin fails (every backend, or a 500/502/503/504) a copy
//!   inside the window is answered instead, marked `fwd=stale`;
//! - **conditional revalidation**: the stored `ETag`/`Last-Modified` go upstream, and a
//!   304 freshens the entry in place (`Transaction::update`) instead of re-sending the body;
//! - **purge**: [`purge`] removes the surrogate keys a successful write names.

use std::time::{Duration, Instant};

use fastly::cache::core::{CacheKey, Found, Transaction};
use fastly::http::StatusCode;
use fastly::{Request, Response};

use fastgate::cache::{self, CacheMode, CachePolicy, Freshness, Fwd, Lookup, Outcome, StoredMeta};
use fastgate::gateway::{self, CacheRequest};

use super::forward::{NoOriginAnswered, Upstream};
use super::telemetry::{log_event, micros, write_log, LogLine};
use super::{problem_response, unix_now};

/// Conditional request headers a client may send. On a request that can fill the cache
/// they are replaced by the cache's own validators (or dropped): a 304 meant for the
/// client's copy cannot be stored.
const CLIENT_CONDITIONALS: [&str; 4] = [
    "if-none-match",
    "if-modified-since",
    "if-match",
    "if-unmodified-since",
];

/// What the cache phase answered.
pub(crate) struct Cached {
    pub response: Response,
    /// The `Cache-Status` field value.
    pub status: String,
    /// Work to do after the response is sent.
    pub revalidation: Option<Revalidation>,
}

/// A stale entry this request is obliged to refresh, after the client has its answer.
pub(crate) struct Revalidation {
    tx: Transaction,
    req: Request,
    meta: StoredMeta,
    policy: CachePolicy,
    creq: CacheRequest,
    upstream: Upstream,
}

/// Answers a request of a cached route: from the cache when a usable copy exists, else from
/// the origin (storing the answer when allowed). `upstream` sends to the origin.
pub(crate) fn through_cache(
    mut req: Request,
    policy: &CachePolicy,
    creq: CacheRequest,
    upstream: Upstream,
    log: &mut LogLine<'_>,
) -> Cached {
    if let Lookup::Forward { fwd, reason } = creq.lookup {
        let response = upstream.send(req, log);
        let status = forwarded_status(fwd, &response, false, 0, Some(reason));
        return Cached {
            response,
            status,
            revalidation: None,
        };
    }
    let started = Instant::now();
    let tx = Transaction::lookup(CacheKey::from(creq.key.to_vec())).execute();
    log.timings_us.cache = Some(micros(started));
    let tx = match tx {
        Ok(tx) => tx,
        Err(e) => {
            // The cache is an optimisation: when it fails, the origin still answers.
            log_event("cache_error", &format!("lookup: {e:?}"));
            let response = upstream.send(req, log);
            let status = forwarded_status(Fwd::Miss, &response, false, 0, Some("cache error"));
            return Cached {
                response,
                status,
                revalidation: None,
            };
        }
    };
    let found = tx.found();
    let entry = found
        .as_ref()
        .and_then(|f| Some((f, StoredMeta::decode(&f.user_metadata())?)));
    let obliged = tx.must_insert_or_update();
    let Some((found, meta)) = entry else {
        // A miss. Holding the obligation, this request fills the entry for every waiter.
        let fwd = match creq.lookup {
            Lookup::Revalidate { .. } => Fwd::Request,
            _ => Fwd::Miss,
        };
        let client = ClientFacts::of(&req);
        for name in CLIENT_CONDITIONALS {
            req.remove_header(name);
        }
        let Ok(response) = upstream.try_send(req, log) else {
            // Every backend failed and nothing is cached to fall back on.
            drop(tx);
            let p = gateway::origin_unavailable(&upstream.request_id);
            let response = problem_response(&p).with_header("retry-after", "5");
            let status = cache::cache_status(
                Outcome::Forward {
                    fwd,
                    stored: false,
                    fwd_status: None,
                },
                0,
                Some("origin unavailable"),
            );
            return Cached {
                response,
                status,
                revalidation: None,
            };
        };
        let tx = obliged.then_some(tx);
        let (response, status) = store_forwarded(tx, response, policy, &creq, &client, fwd);
        return Cached {
            response,
            status,
            revalidation: None,
        };
    };
    let age = found.age().as_secs();
    let freshness = cache::freshness(age, meta.ttl_s, meta.swr_s, meta.sie_s);
    let servable = cache::may_serve(creq.lookup, meta.shareable);
    match freshness {
        Freshness::Fresh { ttl_left_s } if servable => {
            if obliged {
                let _ = tx.cancel_insert_or_update();
            }
            let ttl_left = i64::try_from(ttl_left_s).unwrap_or(i64::MAX);
            let response = answer_from(found, &meta, age, &ClientFacts::of(&req), policy, ttl_left);
            Cached {
                response,
                status: cache::cache_status(Outcome::Hit, ttl_left, None),
                revalidation: None,
            }
        }
        Freshness::StaleServable { ttl_left_s } if servable => {
            let response = answer_from(
                found,
                &meta,
                age,
                &ClientFacts::of(&req),
                policy,
                ttl_left_s,
            );
            let revalidation = obliged.then(|| Revalidation {
                tx,
                req,
                meta,
                policy: policy.clone(),
                creq,
                upstream,
            });
            Cached {
                response,
                status: cache::cache_status(Outcome::StaleWhileRevalidate, ttl_left_s, None),
                revalidation,
            }
        }
        _ => {
            // Stale beyond serving (or not servable to this request): ask the origin,
            // conditionally when this request may update the entry.
            let tx = obliged.then_some(tx);
            let entry = StaleEntry {
                found,
                meta: &meta,
                age,
                freshness,
            };
            let route = RouteCache {
                policy,
                creq: &creq,
                upstream: &upstream,
            };
            let response = revalidate(tx, req, entry, route, log);
            Cached {
                response: response.0,
                status: response.1,
                revalidation: None,
            }
        }
    }
}

impl Revalidation {
    /// Refreshes the stale entry (conditionally where it has a validator) and logs one line
    /// for it; runs after the client's response has been sent.
    pub(crate) fn run(self, log_endpoint: Option<&str>) {
        let started = Instant::now();
        let Revalidation {
            tx,
            req,
            meta,
            policy,
            creq,
            upstream,
        } = self;
        let method = req.get_method_str().to_owned();
        let mut log = LogLine::new(&upstream.request_id, method);
        log.route = Some(&upstream.forward.route_id);
        let found = tx.found();
        let (status, code) = match found {
            Some(found) => {
                let age = found.age().as_secs();
                let freshness = cache::freshness(age, meta.ttl_s, meta.swr_s, meta.sie_s);
                let entry = StaleEntry {
                    found: &found,
                    meta: &meta,
                    age,
                    freshness,
                };
                let route = RouteCache {
                    policy: &policy,
                    creq: &creq,
                    upstream: &upstream,
                };
                let (resp, status) = revalidate(Some(tx), req, entry, route, &mut log);
                (status, resp.get_status().as_u16())
            }
            None => (String::from("entry gone"), 0),
        };
        log.event = Some("revalidate");
        log.cache = status;
        log.status = code;
        log.timings_us.total = micros(started);
        write_log(
            log_endpoint,
            &serde_json::to_string(&log).unwrap_or_default(),
        );
    }
}

/// Sends the request upstream on behalf of a stale entry. With the obligation (`tx`), the
/// request carries the entry's validators, a matching 304 freshens the entry in place and
/// a full answer replaces it. A failed origin is answered with the stale copy while it is
/// inside its stale-if-error window.
fn revalidate(
    tx: Option<Transaction>,
    mut req: Request,
    entry: StaleEntry<'_>,
    route: RouteCache<'_>,
    log: &mut LogLine<'_>,
) -> (Response, String) {
    let StaleEntry {
        found,
        meta,
        age,
        freshness,
    } = entry;
    let RouteCache {
        policy,
        creq,
        upstream,
    } = route;
    let client = ClientFacts::of(&req);
    for name in CLIENT_CONDITIONALS {
        req.remove_header(name);
    }
    let conditional = tx.is_some();
    if conditional {
        for (name, value) in cache::conditional_headers(&meta.headers) {
            req.set_header(name, value);
        }
    }
    let answer = upstream.try_send(req, log);
    let code = answer.as_ref().map_or(502, |r| r.get_status().as_u16());
    if let (true, 304, Ok(response)) = (conditional, code, &answer) {
        let headers = header_pairs(response);
        if cache::not_modified_matches(&meta.headers, &headers) {
            let refs: Vec<(&str, &str)> = headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            let merged = meta.refreshed(&refs, meta);
            let merged_refs: Vec<(&str, &str)> = merged
                .headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            let verdict = cache::storability(
                meta.status,
                &merged_refs,
                policy,
                client.had_authorization,
                unix_now(),
            );
            let (refreshed, stored) = match (verdict, tx) {
                (
                    cache::Storable::Yes {
                        ttl_s,
                        stale_while_revalidate_s,
                        stale_if_error_s,
                        shareable_with_authorization,
                        ..
                    },
                    Some(tx),
                ) => {
                    let refreshed = StoredMeta {
                        ttl_s,
                        swr_s: stale_while_revalidate_s,
                        sie_s: stale_if_error_s,
                        shareable: shareable_with_authorization,
                        ..merged
                    };
                    let updated = tx
                        .update(Duration::from_secs(ttl_s))
                        .age(Duration::ZERO)
                        .stale_while_revalidate(Duration::from_secs(refreshed.stale_window_s()))
                        .surrogate_keys(creq.surrogate_keys.iter().map(String::as_str))
                        .user_metadata(refreshed.encode().into())
                        .execute();
                    if let Err(e) = &updated {
                        log_event("cache_error", &format!("update: {e:?}"));
                    }
                    (refreshed, updated.is_ok())
                }
                (_, tx) => {
                    if let Some(tx) = tx {
                        let _ = tx.cancel_insert_or_update();
                    }
                    (merged, false)
                }
            };
            let ttl_left = i64::try_from(refreshed.ttl_s).unwrap_or(i64::MAX);
            let response = answer_from(found, &refreshed, 0, &client, policy, ttl_left);
            let status = cache::cache_status(
                Outcome::Forward {
                    fwd: Fwd::Stale,
                    stored,
                    fwd_status: Some(304),
                },
                ttl_left,
                None,
            );
            return (response, status);
        }
    }
    // RFC 5861 §4: no answer at all (counted as 502), or one of these statuses, lets a
    // copy inside its stale-if-error window answer instead.
    let origin_failed = matches!(code, 500 | 502 | 503 | 504);
    let within_error_window = age < meta.ttl_s.saturating_add(meta.sie_s);
    let shareable =
        policy.mode == CacheMode::PerUser || !client.had_authorization || meta.shareable;
    if origin_failed && within_error_window && shareable {
        if let Some(tx) = tx {
            let _ = tx.cancel_insert_or_update();
        }
        let ttl_left = freshness.ttl_left_s();
        let response = answer_from(found, meta, age, &client, policy, ttl_left);
        let detail = format!("origin answered {code}");
        return (
            response,
            cache::cache_status(Outcome::StaleIfError, ttl_left, Some(&detail)),
        );
    }
    let response = answer.unwrap_or_else(|NoOriginAnswered| {
        problem_response(&gateway::bad_gateway(&upstream.request_id, &log.attempts))
    });
    store_forwarded(tx, response, policy, creq, &client, Fwd::Stale)
}

/// [`store`]s an origin's answer and says so: the `Cache-Status` of a forwarded request,
/// and a stored `per_user` answer leaves `private`.
fn store_forwarded(
    tx: Option<Transaction>,
    response: Response,
    policy: &CachePolicy,
    creq: &CacheRequest,
    client: &ClientFacts,
    fwd: Fwd,
) -> (Response, String) {
    let (mut response, stored) = store(tx, response, policy, creq, client);
    let (ttl_left, detail) = match &stored {
        Ok(ttl) => (i64::try_from(*ttl).unwrap_or(i64::MAX), None),
        Err(reason) => (0, Some(*reason)),
    };
    if stored.is_ok() {
        client_cache_control(&mut response, policy, ttl_left);
    }
    let status = forwarded_status(fwd, &response, stored.is_ok(), ttl_left, detail);
    (response, status)
}

/// A stored entry that may not be served as it is, as the lookup found it.
struct StaleEntry<'a> {
    found: &'a Found,
    meta: &'a StoredMeta,
    age: u64,
    freshness: Freshness,
}

/// The route's side of a cache decision: its policy, this request's cache plan, and how to
/// reach the origin.
struct RouteCache<'a> {
    policy: &'a CachePolicy,
    creq: &'a CacheRequest,
    upstream: &'a Upstream,
}

/// What the answer depends on from the request, kept once the request itself is sent.
struct ClientFacts {
    is_head: bool,
    had_authorization: bool,
    if_none_match: Option<String>,
}

impl ClientFacts {
    fn of(req: &Request) -> Self {
        ClientFacts {
            is_head: req.get_method_str() == "HEAD",
            had_authorization: req.contains_header("authorization"),
            if_none_match: req.get_header_str("if-none-match").map(str::to_owned),
        }
    }
}

/// A response rebuilt from a stored entry, aged `age` seconds. A client whose
/// `If-None-Match` matches the stored `ETag` gets 304 without a body.
fn answer_from(
    found: &Found,
    meta: &StoredMeta,
    age: u64,
    client: &ClientFacts,
    policy: &CachePolicy,
    ttl_left: i64,
) -> Response {
    let stored_etag = meta
        .headers
        .iter()
        .find(|(n, _)| n == "etag")
        .map(|(_, v)| v.as_str());
    let not_modified = (200..300).contains(&meta.status)
        && cache::client_not_modified(client.if_none_match.as_deref(), stored_etag);
    let status = if not_modified { 304 } else { meta.status };
    let mut response =
        Response::from_status(StatusCode::from_u16(status).unwrap_or(StatusCode::OK));
    for (name, value) in &meta.headers {
        response.append_header(name.as_str(), value.as_str());
    }
    response.set_header("age", cache::age_header(age));
    client_cache_control(&mut response, policy, ttl_left);
    if !not_modified && !client.is_head {
        match found.to_stream() {
            Ok(body) => response.set_body(body),
            Err(e) => log_event("cache_error", &format!("read body: {e:?}")),
        }
    }
    response
}

/// Stores `response` under the transaction's key when [`cache::storability`] allows and
/// this request holds the obligation (`tx`); otherwise releases the obligation so a waiting
/// request can take it. Returns the response (its body re-attached) and the stored TTL, or
/// why it was not stored.
fn store(
    tx: Option<Transaction>,
    mut response: Response,
    policy: &CachePolicy,
    creq: &CacheRequest,
    client: &ClientFacts,
) -> (Response, Result<u64, &'static str>) {
    let Some(tx) = tx else {
        return (response, Err("no cache obligation"));
    };
    let status = response.get_status().as_u16();
    let headers = header_pairs(&response);
    let refs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let verdict = cache::storability(status, &refs, policy, client.had_authorization, unix_now());
    let cache::Storable::Yes {
        ttl_s,
        stale_while_revalidate_s,
        stale_if_error_s,
        initial_age_s,
        shareable_with_authorization,
    } = verdict
    else {
        let _ = tx.cancel_insert_or_update();
        let cache::Storable::No(reason) = verdict else {
            unreachable!("matched Yes above")
        };
        return (response, Err(reason));
    };
    let body = if client.is_head {
        Vec::new()
    } else {
        response.take_body_bytes()
    };
    if !policy.admits_size(body.len() as u64) {
        let _ = tx.cancel_insert_or_update();
        response.set_body(body);
        return (response, Err("too large"));
    }
    let meta = StoredMeta::new(
        status,
        &refs,
        ttl_s,
        stale_while_revalidate_s,
        stale_if_error_s,
        shareable_with_authorization,
    );
    let inserted = tx
        .insert(Duration::from_secs(ttl_s))
        .initial_age(Duration::from_secs(initial_age_s))
        .stale_while_revalidate(Duration::from_secs(meta.stale_window_s()))
        .surrogate_keys(creq.surrogate_keys.iter().map(String::as_str))
        .user_metadata(meta.encode().into())
        .known_length(body.len() as u64)
        .sensitive_data(policy.mode == CacheMode::PerUser)
        .execute()
        .map_err(|e| format!("insert: {e}"))
        .and_then(|mut sink| {
            use std::io::Write;
            sink.write_all(&body)
                .and_then(|()| sink.finish())
                .map_err(|e| format!("writing the body: {e}"))
        });
    response.set_body(body);
    response.remove_header("age");
    if initial_age_s > 0 {
        response.set_header("age", cache::age_header(initial_age_s));
    }
    match inserted {
        Ok(()) => (response, Ok(ttl_s.saturating_sub(initial_age_s))),
        Err(e) => {
            log_event("cache_error", &e);
            (response, Err("insert failed"))
        }
    }
}

/// Purges the surrogate keys a successful write names, before its response returns, so a
/// read that follows the write is never answered from a copy that predates it.
pub(crate) fn purge(keys: &[String]) {
    for key in keys {
        if let Err(e) = fastly::http::purge::purge_surrogate_key(key) {
            log_event("purge_failed", &format!("{key}: {e}"));
        }
    }
}

/// `per_user` answers leave the edge `private` (see [`cache::per_user_client_cache_control`]).
fn client_cache_control(response: &mut Response, policy: &CachePolicy, ttl_left: i64) {
    if policy.mode == CacheMode::PerUser {
        response.set_header(
            "cache-control",
            cache::per_user_client_cache_control(ttl_left),
        );
    }
}

fn forwarded_status(
    fwd: Fwd,
    response: &Response,
    stored: bool,
    ttl_left: i64,
    detail: Option<&str>,
) -> String {
    cache::cache_status(
        Outcome::Forward {
            fwd,
            stored,
            fwd_status: Some(response.get_status().as_u16()),
        },
        ttl_left,
        detail,
    )
}

fn header_pairs(response: &Response) -> Vec<(String, String)> {
    response
        .get_headers()
        .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect()
}
