//! The Wasm adapter: turns a `fastly::Request` into the library's `RequestFacts`, runs the
//! gateway's phases and carries out each decision with platform calls. It decides nothing
//! that a native test could check instead; the submodules hold the platform plumbing:
//! [`keys`] (Secret Store, cached JWKS), [`health`] (shared down-marks), [`forward`] (signed
//! sends with failover), [`limiter`] (rate-limit counters) and [`telemetry`] (logs, timings).

mod cache;
mod forward;
mod health;
mod keys;
mod limiter;
mod telemetry;

use std::time::Instant;

use fastly::geo::geo_lookup;
use fastly::http::StatusCode;
use fastly::{ConfigStore, Request, Response, SecretStore};

use fastgate::config::{self, Loaded};
use fastgate::gateway::{self, Decision, Gateway, RequestFacts};
use fastgate::geo::ClientGeo;
use fastgate::identity;
use fastgate::problem::{self, Problem};
use fastgate::ratelimit;
use fastgate::request_id;

use forward::Upstream;
use keys::PlatformKeys;
use telemetry::{log_event, micros, write_log, LogLine};

/// Config Store and key that hold an ops override of the embedded config.
const CONFIG_STORE: &str = "fastgate_config";
const CONFIG_KEY: &str = "config";
/// Config Store key with flag overrides (`{"new_schema": {"enabled": true}}`).
const FLAGS_KEY: &str = "flags";
/// Secret Store with the JWT HMAC keys and the identity signing key.
pub(crate) const SECRET_STORE: &str = "fastgate_secrets";

/// Answers the client's request, then does what may wait until the client has its answer
/// (refreshing a stale cache entry).
pub fn serve(req: Request) {
    let (response, after) = handle(req);
    response.send_to_client();
    if let Some((revalidation, log_endpoint)) = after {
        revalidation.run(log_endpoint.as_deref());
    }
}

type After = Option<(cache::Revalidation, Option<String>)>;

fn handle(mut req: Request) -> (Response, After) {
    let started = Instant::now();
    let loaded = match load_config() {
        Ok(loaded) => loaded,
        Err(e) => {
            // Unit tests validate the embedded config, so this is a build defect.
            log_event("config_invalid", &e.to_string());
            let p = gateway::internal_error(&request_id::generate());
            return (problem_response(&p), None);
        }
    };
    if let Some(e) = &loaded.rejected_override {
        log_event("config_override_rejected", &e.to_string());
    }
    if let Some(e) = &loaded.rejected_flags {
        log_event("flags_override_rejected", &e.to_string());
    }
    let config_header = format!(
        "{}; hash={}; source={}",
        loaded.config.version,
        loaded.config.hash,
        loaded.source.as_str()
    );
    let gateway = Gateway::new(loaded.config);
    let client_ip = req.get_client_ip_addr();
    let geo = client_ip
        .and_then(geo_lookup)
        .map(|g| ClientGeo {
            country: Some(g.country_code().to_ascii_uppercase()),
            continent: Some(g.continent().as_code().to_owned()),
        })
        .unwrap_or_default();
    let raw_uri = raw_uri(&req);
    let (raw_path, raw_query) = match &raw_uri {
        Some(uri) => fastgate::path::split_target(uri),
        None => (req.get_path(), req.get_query_str()),
    };
    let plan = {
        let facts = RequestFacts {
            method: req.get_method_str(),
            path: raw_path,
            query: raw_query,
            headers: req
                .get_headers()
                .map(|(n, v)| (n.as_str(), v.to_str().unwrap_or("")))
                .collect(),
            client_ip,
            tls: req.get_tls_protocol_bytes().is_some(),
            geo: geo.clone(),
        };
        gateway.plan(&facts)
    };
    let mut log = LogLine {
        client_ip,
        country: geo.country.as_deref(),
        continent: geo.continent.as_deref(),
        route: plan.route_id.as_deref(),
        ..LogLine::new(&plan.request_id, req.get_method_str().to_owned())
    };
    let mut cache_status = None;
    let mut after = None;
    let mut resp = match plan.decision {
        Decision::Respond(p) => problem_response(&p),
        Decision::Preflight(headers) => {
            let mut resp = Response::from_status(StatusCode::NO_CONTENT);
            for (name, value) in headers {
                resp.set_header(name, value);
            }
            resp
        }
        Decision::Redirect { status, location } => Response::from_status(
            StatusCode::from_u16(status).unwrap_or(StatusCode::PERMANENT_REDIRECT),
        )
        .with_header("location", location),
        Decision::Forward(forward) => {
            let mut forward = *forward;
            log.geo_level = Some(forward.geo_level.as_str());
            let secrets = SecretStore::open(SECRET_STORE).ok();
            let mut keys = PlatformKeys {
                secrets: secrets.as_ref(),
                cache: &gateway.config().auth.jwks,
                memo: None,
            };
            let auth_started = Instant::now();
            let verified = gateway.authenticate(
                &forward,
                req.get_header_str("authorization"),
                req.get_header_str("cookie"),
                &mut keys,
                unix_now(),
            );
            log.timings_us.auth = Some(micros(auth_started));
            match verified {
                Err(failure) => {
                    log.auth = Some(failure.detail());
                    let (p, challenge) = gateway::auth_problem(&failure, &plan.request_id);
                    let mut resp = problem_response(&p);
                    if let Some(value) = challenge {
                        resp.set_header("www-authenticate", value);
                    }
                    resp
                }
                Ok(verified) => {
                    let subject = verified.as_ref().map(|v| v.sub.as_str());
                    let limit = forward.rate_limit.as_ref().map(|spec| {
                        limiter::check(
                            spec,
                            gateway.config().rate_limiter,
                            &forward.route_id,
                            subject,
                            client_ip,
                            &mut req,
                        )
                    });
                    match limit {
                        Some((spec, verdict)) if !verdict.allowed => {
                            let retry = verdict.retry_after_s.unwrap_or(verdict.reset_s);
                            let p = gateway::rate_limited(&plan.request_id, retry);
                            let mut resp = problem_response(&p);
                            for (name, value) in
                                ratelimit::headers(&spec, &forward.route_id, &verdict)
                            {
                                resp.set_header(name, value);
                            }
                            resp
                        }
                        limit => {
                            let flags = gateway.flags(subject, client_ip, &geo);
                            let method = req.get_method_str().to_owned();
                            let creq = gateway.cache_request(
                                &forward,
                                &method,
                                |name| req.get_header_str(name),
                                subject,
                                &flags,
                            );
                            // Moved, not cloned: sending upstream does not read it.
                            let policy = forward.cache.take();
                            let purge = std::mem::take(&mut forward.purge);
                            let route_id = forward.route_id.clone();
                            let upstream = Upstream {
                                forward,
                                identity: identity::identity_header(verified.as_ref()),
                                flags,
                                request_id: plan.request_id.clone(),
                            };
                            let origin_started = Instant::now();
                            let mut resp = match (creq, policy) {
                                (Some(creq), Some(policy)) => {
                                    let cached = cache::through_cache(
                                        req, &policy, creq, upstream, &mut log,
                                    );
                                    cache_status = Some(cached.status);
                                    after = cached
                                        .revalidation
                                        .map(|r| (r, gateway.config().log_endpoint.clone()));
                                    cached.response
                                }
                                _ => upstream.send(req, &mut log),
                            };
                            if log.backend.is_some() {
                                log.timings_us.origin = Some(micros(origin_started));
                            }
                            let status = resp.get_status().as_u16();
                            cache::purge(&gateway.purge_keys(&purge, &method, status, subject));
                            if let Some((spec, verdict)) = limit {
                                for (name, value) in ratelimit::headers(&spec, &route_id, &verdict)
                                {
                                    resp.set_header(name, value);
                                }
                            }
                            resp
                        }
                    }
                }
            }
        }
    };
    for (name, value) in &plan.cors_headers {
        if name.eq_ignore_ascii_case("vary") {
            append_vary(&mut resp, value);
        } else {
            resp.set_header(*name, value.as_str());
        }
    }
    let cache_status =
        cache_status.unwrap_or_else(|| format!("{}; fwd=bypass", fastgate::cache::CACHE_NAME));
    resp.set_header("cache-status", cache_status.as_str());
    log.cache = cache_status;
    log.status = resp.get_status().as_u16();
    log.bytes = resp.get_content_length().map(|n| n as u64);
    log.timings_us.total = micros(started);
    resp.set_header("server-timing", log.timings_us.server_timing());
    resp.set_header(request_id::HEADER, &plan.request_id);
    resp.set_header("fastgate-config", config_header);
    let line = serde_json::to_string(&log).unwrap_or_default();
    write_log(gateway.config().log_endpoint.as_deref(), &line);
    (resp, after)
}

/// The request target exactly as the client sent it. `Request::get_path` comes from a
/// parsed `Url`, which has already resolved `..` segments; routing on that would let
/// `/v1/../admin` reach a route the client never named. The raw URI lets the library
/// refuse traversal instead of silently reinterpreting it.
fn raw_uri(req: &Request) -> Option<String> {
    let (handle, _) = req.as_handles();
    let mut buf = vec![0u8; 8192];
    let mut written = 0usize;
    // SAFETY: `uri_get` writes at most `buf.len()` bytes into `buf` and reports how
    // many in `written`; the handle is the live client request's.
    let status = unsafe {
        fastly_sys::fastly_http_req::uri_get(
            handle.as_u32(),
            buf.as_mut_ptr(),
            buf.len(),
            &mut written,
        )
    };
    if !status.is_ok() || written > buf.len() {
        return None;
    }
    buf.truncate(written);
    String::from_utf8(buf).ok()
}

fn load_config() -> Result<Loaded, config::ConfigError> {
    let store = ConfigStore::try_open(CONFIG_STORE).ok();
    let entry = |key: &str| store.as_ref().and_then(|s| s.try_get(key).ok().flatten());
    config::load(entry(CONFIG_KEY).as_deref(), entry(FLAGS_KEY).as_deref())
}

pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

pub(crate) fn secret(store: &SecretStore, name: &str) -> Option<Vec<u8>> {
    store
        .try_get(name)
        .ok()
        .flatten()
        .map(|s| s.plaintext().to_vec())
}

pub(crate) fn problem_response(p: &Problem) -> Response {
    Response::from_status(StatusCode::from_u16(p.status).unwrap_or(StatusCode::BAD_GATEWAY))
        .with_header("content-type", problem::CONTENT_TYPE)
        .with_header("cache-control", "no-store")
        .with_body(p.to_json())
}

/// Adds `tokens` to `Vary` without dropping what the origin already varies on.
fn append_vary(resp: &mut Response, tokens: &str) {
    let existing = resp.get_header_str("vary").unwrap_or_default().to_owned();
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
