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

use fastly::cache::core::{CacheKey, Found, Transaction, TransactionLookupBuilder};
use fastly::http::{HeaderName, StatusCode};
use fastly::{Request, Response};

use fastgate::cache::{
    self, CacheMode, CacheOutcome, CachePolicy, Freshness, Fwd, Lookup, StoredMeta,
};
use fastgate::http::unix_now;
use fastgate::identity;
use fastgate::plan::CacheRequest;
use fastgate::problem::{Problem, ProblemKind};

use super::headers::ClientHeaders;
use super::platform::problem_response;
use super::proxy::{NoOriginAnswered, Upstream};
use super::telemetry::{log_event, micros, write_log, LogLine, Trace};

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
pub(crate) struct Cached<'g> {
    pub response: Response,
    /// The `Cache-Status` field value.
    pub status: String,
    /// Work to do after the response is sent.
    pub revalidation: Option<Revalidation<'g>>,
}

impl Cached<'_> {
    /// An answer with nothing left to do after it is sent.
    fn now(response: Response, status: String) -> Self {
        Cached {
            response,
            status,
            revalidation: None,
        }
    }
}

/// A request of a cached route, with all it needs to reach the origin: what the cache
/// phase works on, and what a deferred refresh keeps after the answer is sent.
pub(crate) struct CachedRequest<'g> {
    pub req: Request,
    pub policy: &'g CachePolicy,
    pub creq: CacheRequest,
    pub upstream: Upstream<'g>,
    /// The client's fields as sent (read once: [`ClientHeaders`]).
    pub headers: &'g ClientHeaders,
}

/// A stale entry this request is obliged to refresh, after the client has its answer.
pub(crate) struct Revalidation<'g> {
    tx: Transaction,
    meta: StoredMeta,
    request: CachedRequest<'g>,
}

/// Answers a request of a cached route: from the cache when a usable copy exists, else from
/// the origin (storing the answer when allowed).
pub(crate) fn through_cache<'g>(request: CachedRequest<'g>, trace: &mut Trace) -> Cached<'g> {
    let lookup = request.creq.lookup;
    if let Lookup::Bypass { fwd, reason } = lookup {
        let response = request.upstream.send(request.req, trace);
        let status = forwarded_status(fwd, &response, false, 0, Some(reason));
        return Cached::now(response, status);
    }
    let started = Instant::now();
    let tx = lookup_headers(
        Transaction::lookup(CacheKey::from(request.creq.key.to_vec())),
        request.headers,
        &request.upstream,
    )
    .execute();
    trace.timings.cache = Some(micros(started));
    let tx = match tx {
        Ok(tx) => tx,
        Err(e) => {
            // The cache is an optimisation: when it fails, the origin still answers.
            log_event("cache_error", &format!("lookup: {e:?}"));
            let response = request.upstream.send(request.req, trace);
            let status = forwarded_status(Fwd::Miss, &response, false, 0, Some("cache error"));
            return Cached::now(response, status);
        }
    };
    let found = tx.found();
    let entry = found
        .as_ref()
        .and_then(|f| Some((f, StoredMeta::decode(&f.user_metadata())?)));
    match entry {
        Some((found, meta)) => serve_found(FoundEntry { tx, found, meta }, request, trace),
        None => {
            let route = RouteCache {
                policy: request.policy,
                creq: &request.creq,
                upstream: &request.upstream,
                headers: request.headers,
            };
            if request_directives(request.headers).only_if_cached {
                return not_cached(Some(tx), &request);
            }
            miss(tx, request.req, route, trace)
        }
    }
}

/// The request's own `Cache-Control` directives (RFC 9111 §5.2.1).
fn request_directives(headers: &ClientHeaders) -> cache::RequestDirectives {
    cache::RequestDirectives::parse(headers.get("cache-control"))
}

/// `only-if-cached` without a copy that may answer: 504, and the origin is never asked
/// (§5.2.1.7). Any obligation to fill the entry goes to a waiting request.
fn not_cached<'g>(tx: Option<Transaction>, request: &CachedRequest<'_>) -> Cached<'g> {
    if let Some(tx) = tx {
        let _ = tx.cancel_insert_or_update();
    }
    let detail = "only-if-cached, and no stored response may answer";
    let p = Problem::new(
        ProblemKind::GatewayTimeout,
        detail,
        &request.upstream.request_id,
    );
    // Neither a hit nor forwarded (RFC 9211): only the reason.
    let status = format!("{}; detail=only-if-cached", cache::CACHE_NAME);
    Cached::now(problem_response(&p), status)
}

/// The request's headers as the origin will see them (the client's, minus what the edge
/// strips, plus what it sets): a stored variant is chosen by the values of the fields its
/// response's `Vary` named (RFC 9111 §4.1), and a client must not pick another caller's
/// variant by sending a field the edge replaces.
fn lookup_headers(
    mut lookup: TransactionLookupBuilder,
    headers: &ClientHeaders,
    upstream: &Upstream<'_>,
) -> TransactionLookupBuilder {
    let edits = &upstream.plan.headers;
    let mut names: Vec<&HeaderName> = headers.iter().map(|(n, _)| n).collect();
    names.sort_unstable_by_key(|n| n.as_str());
    names.dedup();
    for name in names {
        // The sanitizer's list already names every client field the edge owns
        // (`Fastgate-*`, forwarding, hop-by-hop); what it sets replaces the client's.
        let stripped = edits.remove.iter().any(|r| name.as_str() == r)
            || edits
                .set
                .iter()
                .any(|(n, _)| name.as_str().eq_ignore_ascii_case(n));
        if !stripped {
            lookup = lookup.header_values(name, headers.all(name.as_str()));
        }
    }
    for (name, value) in &edits.set {
        lookup = lookup.header(*name, value.as_str());
    }
    lookup.header(identity::FLAGS_HEADER, upstream.flags.as_str())
}

/// The fields a response's `Vary` names, for the entry's vary rule (`*` is never stored).
fn vary_names(headers: &[(String, String)]) -> Vec<HeaderName> {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("vary"))
        .flat_map(|(_, v)| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().to_ascii_lowercase().as_bytes()).ok())
        .collect()
}

/// An entry the lookup found, with the transaction that may hold the update obligation.
struct FoundEntry<'f> {
    tx: Transaction,
    found: &'f Found,
    meta: StoredMeta,
}

/// Answers from a found entry: fresh, stale within stale-while-revalidate (refreshed
/// after the answer), or revalidated with the origin first.
fn serve_found<'g>(
    entry: FoundEntry<'_>,
    request: CachedRequest<'g>,
    trace: &mut Trace,
) -> Cached<'g> {
    let FoundEntry { tx, found, meta } = entry;
    let policy = request.policy;
    let asks = request_directives(request.headers);
    let stale = StaleEntry::of(found, &meta, &asks);
    let (age, freshness) = (stale.age, stale.freshness);
    let servable = cache::may_serve(request.creq.lookup, meta.shareable);
    let obliged = tx.must_insert_or_update();
    let client = ClientFacts::of(request.headers, request.req.get_method_str());
    match freshness {
        Freshness::Fresh { ttl_left_s } if servable => {
            if obliged {
                let _ = tx.cancel_insert_or_update();
            }
            let ttl_left = i64::try_from(ttl_left_s).unwrap_or(i64::MAX);
            let response = answer_from(found, &meta, age, &client, policy, ttl_left);
            let status = cache::cache_status(CacheOutcome::Hit, ttl_left, None);
            Cached::now(response, status)
        }
        Freshness::StaleServable { ttl_left_s } if servable => {
            let response = answer_from(found, &meta, age, &client, policy, ttl_left_s);
            let outcome = CacheOutcome::StaleWhileRevalidate;
            let status = cache::cache_status(outcome, ttl_left_s, None);
            let revalidation = obliged.then(|| Revalidation { tx, meta, request });
            Cached {
                response,
                status,
                revalidation,
            }
        }
        _ if asks.only_if_cached => not_cached(obliged.then_some(tx), &request),
        _ => {
            // Stale beyond serving (or not servable to this request): ask the origin,
            // conditionally when this request may update the entry.
            let tx = obliged.then_some(tx);
            let CachedRequest {
                req,
                creq,
                upstream,
                headers,
                ..
            } = request;
            let route = RouteCache {
                policy,
                creq: &creq,
                upstream: &upstream,
                headers,
            };
            revalidate(tx, req, stale, route, trace)
        }
    }
}

/// A miss. Holding the obligation, this request fills the entry for every waiter.
fn miss<'g>(
    tx: Transaction,
    mut req: Request,
    route: RouteCache<'_, '_>,
    trace: &mut Trace,
) -> Cached<'g> {
    let fwd = match route.creq.lookup {
        Lookup::Revalidate { .. } => Fwd::Request,
        _ => Fwd::Miss,
    };
    let client = ClientFacts::of(route.headers, req.get_method_str());
    for name in CLIENT_CONDITIONALS {
        req.remove_header(name);
    }
    let obliged = tx.must_insert_or_update();
    let Ok(response) = route.upstream.try_send(req, trace) else {
        // Every backend failed and nothing is cached to fall back on.
        drop(tx);
        let p = Problem::origin_unavailable(&route.upstream.request_id);
        let response = problem_response(&p).with_header("retry-after", "5");
        let outcome = CacheOutcome::Forwarded {
            fwd,
            stored: false,
            fwd_status: None,
        };
        let status = cache::cache_status(outcome, 0, Some("origin unavailable"));
        return Cached::now(response, status);
    };
    let tx = obliged.then_some(tx);
    store_forwarded(tx, response, route, &client, fwd)
}

impl Revalidation<'_> {
    /// Refreshes the stale entry (conditionally where it has a validator) and logs one line
    /// for it; runs after the client's response has been sent.
    pub(crate) fn run(self, log_endpoint: Option<&str>) {
        let started = Instant::now();
        let Revalidation { tx, meta, request } = self;
        let CachedRequest {
            req,
            policy,
            creq,
            upstream,
            headers,
        } = request;
        let method = req.get_method_str().to_owned();
        let mut trace = Trace::default();
        let (status, code) = match tx.found() {
            Some(found) => {
                let entry = StaleEntry::of(&found, &meta, &request_directives(headers));
                let route = RouteCache {
                    policy,
                    creq: &creq,
                    upstream: &upstream,
                    headers,
                };
                let cached = revalidate(Some(tx), req, entry, route, &mut trace);
                (cached.status, cached.response.get_status().as_u16())
            }
            None => (String::from("entry gone"), 0),
        };
        trace.timings.total = micros(started);
        let line = LogLine {
            event: Some("revalidate"),
            route: Some(&upstream.plan.route.id),
            cache: status,
            status: code,
            ..LogLine::new(&upstream.request_id, method, &trace)
        };
        write_log(
            log_endpoint,
            &serde_json::to_string(&line).unwrap_or_default(),
        );
    }
}

/// Sends the request upstream on behalf of a stale entry. With the obligation (`tx`), the
/// request carries the entry's validators, a matching 304 freshens the entry in place and
/// a full answer replaces it. A failed origin is answered with the stale copy while it is
/// inside its stale-if-error window.
fn revalidate<'g>(
    tx: Option<Transaction>,
    mut req: Request,
    entry: StaleEntry<'_>,
    route: RouteCache<'_, '_>,
    trace: &mut Trace,
) -> Cached<'g> {
    let client = ClientFacts::of(route.headers, req.get_method_str());
    for name in CLIENT_CONDITIONALS {
        req.remove_header(name);
    }
    let conditional = tx.is_some();
    let unconditional = conditional.then(|| req.clone_without_body());
    if conditional {
        for (name, value) in cache::conditional_headers(&entry.meta.headers) {
            req.set_header(name, value);
        }
    }
    let mut answer = route.upstream.try_send(req, trace);
    let mut code = answer.as_ref().map_or(502, |r| r.get_status().as_u16());
    if let (true, 304, Ok(response)) = (conditional, code, &answer) {
        let headers = header_pairs(response);
        if cache::not_modified_matches(&entry.meta.headers, &headers) {
            return refresh_in_place(tx, &headers, &entry, route.policy, route.creq, &client);
        }
        // A 304 for another representation than the stored one validates nothing, and the
        // client asked for the resource, not a 304: fetch it whole (RFC 9111 §4.3.4).
        if let Some(again) = unconditional {
            answer = route.upstream.try_send(again, trace);
            code = answer.as_ref().map_or(502, |r| r.get_status().as_u16());
        }
    }
    let disconnected = answer.is_err();
    if let Some(stale) = stale_on_error(code, disconnected, &entry, &route, &client) {
        if let Some(tx) = tx {
            let _ = tx.cancel_insert_or_update();
        }
        return stale;
    }
    let response = answer.unwrap_or_else(|NoOriginAnswered| {
        problem_response(&Problem::bad_gateway(
            &route.upstream.request_id,
            &trace.attempts,
        ))
    });
    store_forwarded(tx, response, route, &client, Fwd::Stale)
}

/// RFC 5861 §4: no answer at all (counted as 502), or one of these statuses, lets a copy
/// inside its stale-if-error window answer instead; and when no origin answered at all (the
/// edge is disconnected), any copy still held may, unless the origin forbade stale use
/// (RFC 9111 §4.2.4). Only to a caller who may see it (§3.5).
fn stale_on_error<'g>(
    code: u16,
    disconnected: bool,
    entry: &StaleEntry<'_>,
    route: &RouteCache<'_, '_>,
    client: &ClientFacts,
) -> Option<Cached<'g>> {
    let meta = entry.meta;
    let origin_failed = matches!(code, 500 | 502 | 503 | 504);
    let within_error_window = entry.age < meta.ttl_s.saturating_add(meta.sie_s);
    let offline = disconnected && cache::stale_allowed_when_disconnected(&meta.headers);
    let shareable =
        route.policy.mode == CacheMode::PerUser || !client.had_authorization || meta.shareable;
    if !(((origin_failed && within_error_window) || offline) && shareable) {
        return None;
    }
    let ttl_left = entry.freshness.ttl_left_s();
    let response = answer_from(entry.found, meta, entry.age, client, route.policy, ttl_left);
    let detail = match disconnected {
        true => "no origin answered".to_owned(),
        false => format!("origin answered {code}"),
    };
    let status = cache::cache_status(CacheOutcome::StaleIfError, ttl_left, Some(&detail));
    Some(Cached::now(response, status))
}

/// A 304 that matches the stored entry: merge its headers into the entry and, holding the
/// obligation, freshen the entry in place (no body re-sent); answer from it either way.
fn refresh_in_place<'g>(
    tx: Option<Transaction>,
    headers: &[(String, String)],
    entry: &StaleEntry<'_>,
    policy: &CachePolicy,
    creq: &CacheRequest,
    client: &ClientFacts,
) -> Cached<'g> {
    let meta = entry.meta;
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
    let now = unix_now();
    let verdict = cache::storability(
        meta.status,
        &merged_refs,
        policy,
        client.had_authorization,
        now,
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
            let updated = update_entry(tx, &refreshed, creq);
            (refreshed, updated)
        }
        (_, tx) => {
            if let Some(tx) = tx {
                let _ = tx.cancel_insert_or_update();
            }
            (merged, false)
        }
    };
    let ttl_left = i64::try_from(refreshed.ttl_s).unwrap_or(i64::MAX);
    let response = answer_from(entry.found, &refreshed, 0, client, policy, ttl_left);
    let outcome = CacheOutcome::Forwarded {
        fwd: Fwd::Stale,
        stored,
        fwd_status: Some(304),
    };
    Cached::now(response, cache::cache_status(outcome, ttl_left, None))
}

/// Freshens the entry in place with `refreshed` (a matching 304: no body re-sent); whether
/// the platform took it.
fn update_entry(tx: Transaction, refreshed: &StoredMeta, creq: &CacheRequest) -> bool {
    let vary = vary_names(&refreshed.headers);
    let mut update = tx.update(Duration::from_secs(refreshed.ttl_s));
    if !vary.is_empty() {
        // (An empty list makes the platform refuse the write.)
        update = update.vary_by(&vary);
    }
    let updated = update
        .age(Duration::ZERO)
        .stale_while_revalidate(Duration::from_secs(refreshed.stale_window_s()))
        .surrogate_keys(creq.surrogate_keys.iter().map(String::as_str))
        .user_metadata(refreshed.encode().into())
        .execute();
    if let Err(e) = &updated {
        log_event("cache_error", &format!("update: {e:?}"));
    }
    updated.is_ok()
}

/// [`store`]s an origin's answer and says so: the `Cache-Status` of a forwarded request,
/// and a stored `per_user` answer leaves `private`.
fn store_forwarded<'g>(
    tx: Option<Transaction>,
    response: Response,
    route: RouteCache<'_, '_>,
    client: &ClientFacts,
    fwd: Fwd,
) -> Cached<'g> {
    let policy = route.policy;
    let (mut response, stored) = store(tx, response, policy, route.creq, client);
    let (ttl_left, detail) = match &stored {
        Ok(ttl) => (i64::try_from(*ttl).unwrap_or(i64::MAX), None),
        Err(reason) => (0, Some(*reason)),
    };
    if stored.is_ok() {
        client_cache_control(&mut response, policy, ttl_left);
    }
    let status = forwarded_status(fwd, &response, stored.is_ok(), ttl_left, detail);
    Cached::now(response, status)
}

/// A stored entry that may not be served as it is, as the lookup found it.
struct StaleEntry<'a> {
    found: &'a Found,
    meta: &'a StoredMeta,
    age: u64,
    freshness: Freshness,
}

impl<'a> StaleEntry<'a> {
    /// The entry as found now: its age and which freshness window that puts it in, as this
    /// request's own directives judge it (`max-age`, `min-fresh`).
    fn of(found: &'a Found, meta: &'a StoredMeta, asks: &cache::RequestDirectives) -> Self {
        let age = found.age().as_secs();
        let freshness = cache::freshness(age, meta.ttl_s, meta.swr_s, meta.sie_s);
        let freshness = asks.judge(age, freshness);
        StaleEntry {
            found,
            meta,
            age,
            freshness,
        }
    }
}

/// The route's side of a cache decision: its policy, this request's cache plan, and how to
/// reach the origin.
#[derive(Clone, Copy)]
struct RouteCache<'a, 'g> {
    policy: &'a CachePolicy,
    creq: &'a CacheRequest,
    upstream: &'a Upstream<'g>,
    headers: &'a ClientHeaders,
}

/// What the answer depends on from the request, kept once the request itself is sent.
struct ClientFacts {
    is_head: bool,
    had_authorization: bool,
    if_none_match: Option<String>,
    if_modified_since: Option<String>,
}

impl ClientFacts {
    fn of(headers: &ClientHeaders, method: &str) -> Self {
        ClientFacts {
            is_head: method == "HEAD",
            had_authorization: headers.contains("authorization"),
            if_none_match: headers.get("if-none-match").map(str::to_owned),
            if_modified_since: headers.get("if-modified-since").map(str::to_owned),
        }
    }
}

/// A response rebuilt from a stored entry, aged `age` seconds. A client whose conditional
/// the entry satisfies (`If-None-Match`, else `If-Modified-Since`) gets 304 without a body.
fn answer_from(
    found: &Found,
    meta: &StoredMeta,
    age: u64,
    client: &ClientFacts,
    policy: &CachePolicy,
    ttl_left: i64,
) -> Response {
    let not_modified = meta.not_modified_for(
        client.if_none_match.as_deref(),
        client.if_modified_since.as_deref(),
    );
    let status = if not_modified { 304 } else { meta.status };
    let mut response =
        Response::from_status(StatusCode::from_u16(status).unwrap_or(StatusCode::OK));
    for (name, value) in &meta.headers {
        response.append_header(name.as_str(), value.as_str());
    }
    response.set_header("age", cache::age_header(age));
    client_cache_control(&mut response, policy, ttl_left);
    if not_modified {
        return response;
    }
    if client.is_head {
        // The entry is GET's: a HEAD gets its length, without the body.
        if let Some(length) = found.known_length() {
            response.set_header("content-length", length.to_string());
        }
        return response;
    }
    if let Some(body) = &meta.body {
        response.set_body(body.as_str());
        return response;
    }
    // Read whole (entries are bounded by `max_object_bytes`), so the answer carries the
    // stored body's `Content-Length` instead of being streamed chunked.
    match found
        .to_stream()
        .map(|body| read_stored(body, found.known_length()))
    {
        Ok(Ok(bytes)) => response.set_body(bytes),
        Ok(Err(e)) => log_event("cache_error", &format!("read body: {e}")),
        Err(e) => log_event("cache_error", &format!("read body: {e:?}")),
    }
    response
}

/// A stored body, read in as few hostcalls as its known length allows: into a buffer of
/// that size, stopping at that length instead of probing for the end.
fn read_stored(body: fastly::Body, known: Option<u64>) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let Some(len) = known else {
        return Ok(body.into_bytes());
    };
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    body.take(len).read_to_end(&mut bytes)?;
    Ok(bytes)
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
    if client.is_head {
        // HEAD reads GET's entry, but its answer has no body to fill it with.
        let _ = tx.cancel_insert_or_update();
        return (response, Err("a HEAD answer is not stored"));
    }
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
    let body = response.take_body_bytes();
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
    )
    .with_inline_body(&body);
    let per_user = policy.mode == CacheMode::PerUser;
    let inserted = insert_entry(tx, &meta, initial_age_s, creq, per_user, &body);
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

/// Inserts a new entry: its lifetimes, vary rule, surrogate keys and metadata, then its
/// body, known length first so waiters can stream it.
fn insert_entry(
    tx: Transaction,
    meta: &StoredMeta,
    initial_age_s: u64,
    creq: &CacheRequest,
    per_user: bool,
    body: &[u8],
) -> Result<(), String> {
    use std::io::Write;
    let vary = vary_names(&meta.headers);
    let mut insert = tx.insert(Duration::from_secs(meta.ttl_s));
    if !vary.is_empty() {
        // (An empty list makes the platform refuse the write.)
        insert = insert.vary_by(&vary);
    }
    let mut sink = insert
        .initial_age(Duration::from_secs(initial_age_s))
        .stale_while_revalidate(Duration::from_secs(meta.stale_window_s()))
        .surrogate_keys(creq.surrogate_keys.iter().map(String::as_str))
        .user_metadata(meta.encode().into())
        .sensitive_data(per_user)
        .known_length(body.len() as u64)
        .execute()
        .map_err(|e| format!("insert: {e}"))?;
    sink.write_all(body)
        .and_then(|()| sink.finish())
        .map_err(|e| format!("writing the body: {e}"))
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
        CacheOutcome::Forwarded {
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
