//! The Wasm adapter: turns a `fastly::Request` into the library's `RequestFacts`, runs the
//! gateway's phases and carries out the decision (send with failover, redirect, respond,
//! log). It decides nothing that a native test could check instead.

#[cfg(target_arch = "wasm32")]
#[path = "adapter/limiter.rs"]
mod limiter;

#[cfg(target_arch = "wasm32")]
mod edge {
    use std::time::{Duration, Instant};

    use fastly::cache::core::{self as cache, CacheKey, Transaction};
    use fastly::experimental::{BackendExt, BackendHealth};
    use fastly::geo::geo_lookup;
    use fastly::http::request::SendErrorCause;
    use fastly::http::StatusCode;
    use fastly::{Backend, ConfigStore, Request, Response, SecretStore};

    use fastgate::auth::{Issuer, JwkKey, JwksCache, JwksError, KeySource};
    use fastgate::config::{self, Loaded};
    use fastgate::failover::{self, Outcome};
    use fastgate::gateway::{self, Decision, Forward, Gateway, RequestFacts};
    use fastgate::geo::ClientGeo;
    use fastgate::identity;
    use fastgate::problem::{self, Problem};
    use fastgate::ratelimit;
    use fastgate::request_id;

    use crate::limiter;

    /// Config Store and key that hold an ops override of the embedded config.
    const CONFIG_STORE: &str = "fastgate_config";
    const CONFIG_KEY: &str = "config";
    /// Config Store key with flag overrides (`{"new_schema": {"enabled": true}}`).
    const FLAGS_KEY: &str = "flags";
    /// How long one half-open probe has to finish before another request may probe.
    const PROBE_WINDOW: Duration = Duration::from_secs(5);
    /// How long a down-mark lingers (stale) after it expires, so a probe can be elected.
    const MARK_LINGER: Duration = Duration::from_secs(3600);
    /// Secret Store with the JWT HMAC keys and the identity signing key.
    const SECRET_STORE: &str = "fastgate_secrets";
    const IDENTITY_KEY: &str = "identity_signing_key";
    const IDENTITY_KEY_ID: &str = "identity_key_id";
    /// Time limit for one JWKS fetch attempt.
    const JWKS_TIMEOUT: Duration = Duration::from_secs(5);

    pub fn handle(mut req: Request) -> Response {
        let started = Instant::now();
        let loaded = match load_config() {
            Ok(loaded) => loaded,
            Err(e) => {
                // Unit tests validate the embedded config, so this is a build defect.
                log_event("config_invalid", &e.to_string());
                let p = gateway::internal_error(&request_id::generate());
                return problem_response(&p);
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
            request_id: &plan.request_id,
            method: req.get_method_str().to_owned(),
            client_ip,
            country: geo.country.as_deref(),
            continent: geo.continent.as_deref(),
            route: plan.route_id.as_deref(),
            geo_level: None,
            backend: None,
            attempts: Vec::new(),
            auth: None,
            cache: "bypass",
            status: 0,
            bytes: None,
            timings_us: Timings::default(),
        };
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
                let forward = *forward;
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
                                let identity = identity::identity_header(verified.as_ref());
                                let flags = gateway.flags(subject, client_ip, &geo);
                                let route_id = forward.route_id.clone();
                                let origin_started = Instant::now();
                                let mut resp = forward_with_failover(
                                    req,
                                    forward,
                                    &identity,
                                    &flags,
                                    secrets.as_ref(),
                                    &plan.request_id,
                                    &mut log,
                                );
                                log.timings_us.origin = Some(micros(origin_started));
                                if let Some((spec, verdict)) = limit {
                                    for (name, value) in
                                        ratelimit::headers(&spec, &route_id, &verdict)
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
        log.status = resp.get_status().as_u16();
        log.bytes = resp.get_content_length().map(|n| n as u64);
        log.timings_us.total = micros(started);
        resp.set_header("server-timing", log.timings_us.server_timing());
        resp.set_header(request_id::HEADER, &plan.request_id);
        resp.set_header("fastgate-config", config_header);
        let line = serde_json::to_string(&log).unwrap_or_default();
        write_log(gateway.config().log_endpoint.as_deref(), &line);
        resp
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

    /// Sends to the healthiest preferred backend, moving down the list as far as the
    /// failover policy allows, and marks failed backends down for later requests.
    fn forward_with_failover(
        mut req: Request,
        forward: Forward,
        identity: &str,
        flags: &str,
        secrets: Option<&SecretStore>,
        request_id: &str,
        log: &mut LogLine<'_>,
    ) -> Response {
        for name in &forward.headers.remove {
            req.remove_header(name.as_str());
        }
        for (name, value) in &forward.headers.set {
            req.set_header(*name, value.as_str());
        }
        req.set_path(&forward.path);
        match &forward.query {
            Some(q) => req.set_query_str(q),
            None => req.remove_query(),
        }
        // Sign exactly what goes upstream: read the path and query back from the request.
        let key =
            secrets.and_then(|s| Some((secret(s, IDENTITY_KEY)?, secret(s, IDENTITY_KEY_ID)?)));
        let Some((key, key_id)) = key else {
            log_event("identity_key_missing", SECRET_STORE);
            return problem_response(&gateway::identity_unavailable(request_id));
        };
        let key_id = String::from_utf8_lossy(&key_id).into_owned();
        let signed = identity::Signed {
            method: req.get_method_str(),
            path: req.get_path(),
            query: req.get_query_str(),
            identity,
            flags,
            request_id,
        };
        let (input, signature) = identity::sign(&signed, &key, &key_id, unix_now());
        req.set_header(identity::IDENTITY_HEADER, identity);
        req.set_header(identity::FLAGS_HEADER, flags);
        req.set_header(identity::SIGNATURE_INPUT_HEADER, input);
        req.set_header(identity::SIGNATURE_HEADER, signature);
        let method = req.get_method_str().to_owned();
        let deadline = Instant::now() + Duration::from_millis(forward.failover.deadline_ms);
        let mut probes = Vec::new();
        let candidates = failover::order(
            &forward.backends,
            |b| match health(b) {
                Health::Up => false,
                Health::Down => true,
                Health::Probe => {
                    probes.push(b.to_owned());
                    false
                }
            },
            forward.failover.max_attempts,
        );
        let down_for = Duration::from_secs(u64::from(forward.failover.down_for_s));
        let mut pending = Some(req);
        for (i, backend) in candidates.iter().enumerate() {
            let last = i + 1 == candidates.len();
            // Every attempt but the last sends a copy, keeping the body for the next one.
            let attempt = match (last, pending.as_mut()) {
                (false, Some(req)) => req.clone_with_body(),
                (true, Some(_)) => pending.take().expect("checked by the match"),
                (_, None) => break,
            };
            log.attempts.push(backend.clone());
            let budget = deadline.saturating_duration_since(Instant::now());
            let timeout = Duration::from_millis(forward.attempt_timeout_ms).min(budget);
            let (outcome, resp) = match send_with_timeout(attempt, backend, timeout) {
                Ok(resp) => (Outcome::Answered(resp.get_status().as_u16()), Some(resp)),
                Err(AttemptError::Send(e)) => {
                    log_event("backend_error", &format!("{backend}: {}", e.root_cause()));
                    (classify(e.root_cause()), None)
                }
                Err(AttemptError::TimedOut) => {
                    log_event(
                        "backend_timeout",
                        &format!("{backend}: no response in {timeout:?}"),
                    );
                    (Outcome::Failed, None)
                }
            };
            if outcome.is_backend_failure() {
                mark_down(backend, down_for);
            } else if probes.contains(backend) || was_marked(backend) {
                clear_mark(backend);
            }
            let retry = !last && failover::may_retry(&method, outcome) && Instant::now() < deadline;
            match resp {
                _ if retry => continue,
                Some(resp) => {
                    log.backend = Some(backend.clone());
                    return resp;
                }
                None => break,
            }
        }
        problem_response(&gateway::bad_gateway(request_id, &log.attempts))
    }

    fn unix_now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default()
    }

    fn secret(store: &SecretStore, name: &str) -> Option<Vec<u8>> {
        store
            .try_get(name)
            .ok()
            .flatten()
            .map(|s| s.plaintext().to_vec())
    }

    /// Keys for the auth phase: HS256 secrets from the Secret Store; JWKS from the issuer's
    /// backends, cached across requests in the platform cache (every request is a fresh
    /// Wasm instance). A stale set stands in while the source is down, up to `max_stale_s`;
    /// an unknown `kid` forces a refetch at most once per `refresh_interval_s`.
    struct PlatformKeys<'a> {
        secrets: Option<&'a SecretStore>,
        cache: &'a JwksCache,
        memo: Option<Vec<JwkKey>>,
    }

    impl KeySource for PlatformKeys<'_> {
        fn hs256_secret(&mut self, secret_name: &str) -> Option<Vec<u8>> {
            secret(self.secrets?, secret_name)
        }

        fn jwks(
            &mut self,
            issuer: &Issuer,
            refresh: bool,
        ) -> Result<Option<Vec<JwkKey>>, JwksError> {
            if refresh {
                let marker = CacheKey::from(format!("fastgate/jwks-refresh/v1/{}", issuer.iss));
                if matches!(cache::lookup(marker.clone()).execute(), Ok(Some(_))) {
                    return Ok(None); // refreshed recently: the unknown kid stays unknown
                }
                let interval = Duration::from_secs(u64::from(self.cache.refresh_interval_s));
                let _ = cache::insert(marker, interval)
                    .execute()
                    .map(|b| b.finish());
                return Ok(self.fetch_and_store(issuer).ok());
            }
            if let Some(keys) = &self.memo {
                return Ok(Some(keys.clone()));
            }
            let key = jwks_key(issuer);
            let cached = match cache::lookup(key).execute() {
                Ok(Some(found)) if found.is_usable() => found
                    .to_stream()
                    .ok()
                    .map(|body| (body.into_bytes(), found.is_stale())),
                _ => None,
            };
            let keys = match cached {
                Some((bytes, false)) => fastgate::auth::parse_jwks(&bytes)?,
                Some((bytes, true)) => match self.fetch_and_store(issuer) {
                    Ok(fresh) => fresh,
                    Err(e) => {
                        log_event("jwks_stale_in_use", &e.to_string());
                        fastgate::auth::parse_jwks(&bytes)?
                    }
                },
                None => self.fetch_and_store(issuer)?,
            };
            self.memo = Some(keys.clone());
            Ok(Some(keys))
        }
    }

    fn jwks_key(issuer: &Issuer) -> CacheKey {
        CacheKey::from(format!("fastgate/jwks/v1/{}", issuer.iss))
    }

    impl PlatformKeys<'_> {
        fn fetch_and_store(&mut self, issuer: &Issuer) -> Result<Vec<JwkKey>, JwksError> {
            let source = issuer
                .jwks
                .as_ref()
                .ok_or_else(|| JwksError("issuer has no JWKS source".into()))?;
            let mut last = String::from("no backend");
            for backend in &source.backends {
                let mut req = Request::get(format!("http://jwks.internal{}", source.path));
                req.set_pass(true);
                match send_with_timeout(req, backend, JWKS_TIMEOUT) {
                    Ok(resp) if resp.get_status() == StatusCode::OK => {
                        let bytes = resp.into_body_bytes();
                        match fastgate::auth::parse_jwks(&bytes) {
                            Ok(keys) => {
                                self.store(issuer, &bytes);
                                log_event("jwks_fetched", backend);
                                self.memo = Some(keys.clone());
                                return Ok(keys);
                            }
                            Err(e) => last = format!("{backend}: {e}"),
                        }
                    }
                    Ok(resp) => last = format!("{backend}: status {}", resp.get_status()),
                    Err(_) => last = format!("{backend}: unreachable"),
                }
            }
            log_event("jwks_fetch_failed", &last);
            Err(JwksError(last))
        }

        fn store(&self, issuer: &Issuer, bytes: &[u8]) {
            let ttl = Duration::from_secs(u64::from(self.cache.ttl_s));
            let stale = Duration::from_secs(u64::from(self.cache.max_stale_s));
            if let Ok(mut body) = cache::insert(jwks_key(issuer), ttl)
                .stale_while_revalidate(stale)
                .known_length(bytes.len() as u64)
                .execute()
            {
                use std::io::Write;
                let _ = body.write_all(bytes);
                let _ = body.finish();
            }
        }
    }

    enum AttemptError {
        Send(fastly::http::request::SendError),
        TimedOut,
    }

    /// Sends and waits for the response headers at most `timeout`. The SDK has no timed
    /// wait, so poll with a short, growing sleep (the sleep costs no CPU time); an abandoned
    /// request is dropped, which cancels it.
    fn send_with_timeout(
        req: Request,
        backend: &str,
        timeout: Duration,
    ) -> Result<Response, AttemptError> {
        use fastly::http::request::PollResult;
        let started = Instant::now();
        let mut pending = req.send_async(backend).map_err(AttemptError::Send)?;
        let mut nap = Duration::from_micros(250);
        loop {
            match pending.poll() {
                PollResult::Done(result) => return result.map_err(AttemptError::Send),
                PollResult::Pending(p) => pending = p,
            }
            if started.elapsed() >= timeout {
                return Err(AttemptError::TimedOut);
            }
            std::thread::sleep(nap);
            nap = (nap * 2).min(Duration::from_millis(5));
        }
    }

    /// Maps the platform's send error to what failover needs to know: was it ever sent?
    fn classify(cause: &SendErrorCause) -> Outcome {
        match cause {
            SendErrorCause::DnsTimeout
            | SendErrorCause::DnsError { .. }
            | SendErrorCause::DestinationNotFound
            | SendErrorCause::DestinationUnavailable
            | SendErrorCause::DestinationIpUnroutable
            | SendErrorCause::ConnectionRefused
            | SendErrorCause::ConnectionLimitReached => Outcome::NotConnected,
            _ => Outcome::Failed,
        }
    }

    enum Health {
        Up,
        Down,
        /// The down-mark expired and this request was elected to try the backend.
        Probe,
    }

    fn health_key(backend: &str) -> CacheKey {
        CacheKey::from(format!("fastgate/health/v1/{backend}"))
    }

    fn health_surrogate(backend: &str) -> String {
        format!("fastgate-health-{backend}")
    }

    /// Reads the shared down-mark. Every request is a fresh Wasm instance, so the mark
    /// lives in the platform cache. An expired (stale) mark elects exactly one request, the
    /// one the cache hands the update obligation to, as the half-open probe.
    fn health(backend: &str) -> Health {
        if let Ok(b) = Backend::from_name(backend) {
            if matches!(b.is_healthy(), Ok(BackendHealth::Unhealthy)) {
                return Health::Down;
            }
        }
        let Ok(tx) = Transaction::lookup(health_key(backend)).execute() else {
            return Health::Up;
        };
        match tx.found() {
            None => {
                let _ = tx.cancel_insert_or_update();
                Health::Up
            }
            Some(found) if !found.is_stale() => Health::Down,
            Some(_) if tx.must_insert_or_update() => {
                // Hold the mark for the probe's duration so others keep skipping.
                let _ = tx
                    .insert(PROBE_WINDOW)
                    .stale_while_revalidate(MARK_LINGER)
                    .surrogate_keys([health_surrogate(backend).as_str()])
                    .execute()
                    .map(|body| body.finish());
                Health::Probe
            }
            Some(_) => Health::Down,
        }
    }

    fn was_marked(backend: &str) -> bool {
        matches!(cache::lookup(health_key(backend)).execute(), Ok(Some(_)))
    }

    fn mark_down(backend: &str, down_for: Duration) {
        let _ = cache::insert(health_key(backend), down_for)
            .stale_while_revalidate(MARK_LINGER)
            .surrogate_keys([health_surrogate(backend).as_str()])
            .execute()
            .map(|body| body.finish());
        log_event("backend_marked_down", backend);
    }

    fn clear_mark(backend: &str) {
        let _ = fastly::http::purge::purge_surrogate_key(&health_surrogate(backend));
        log_event("backend_readmitted", backend);
    }

    fn problem_response(p: &Problem) -> Response {
        Response::from_status(StatusCode::from_u16(p.status).unwrap_or(StatusCode::BAD_GATEWAY))
            .with_header("content-type", problem::CONTENT_TYPE)
            .with_header("cache-control", "no-store")
            .with_body(p.to_json())
    }

    /// Writes one log line to the configured Fastly log endpoint, or to stdout.
    fn write_log(endpoint: Option<&str>, line: &str) {
        use std::io::Write;
        match endpoint.and_then(|name| fastly::log::Endpoint::try_from_name(name).ok()) {
            Some(mut endpoint) => {
                let _ = writeln!(endpoint, "{line}");
            }
            None => println!("{line}"),
        }
    }

    fn log_event(event: &str, detail: &str) {
        let line = serde_json::json!({ "event": event, "detail": detail });
        println!("{line}");
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

    fn micros(since: Instant) -> u64 {
        u64::try_from(since.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    /// Phase durations, in microseconds; absent when the phase did not run.
    #[derive(Default, serde::Serialize)]
    struct Timings {
        auth: Option<u64>,
        origin: Option<u64>,
        total: u64,
    }

    impl Timings {
        /// `Server-Timing` (W3C): milliseconds with microsecond precision.
        fn server_timing(&self) -> String {
            let mut parts = Vec::with_capacity(3);
            for (name, us) in [("auth", self.auth), ("origin", self.origin)] {
                if let Some(us) = us {
                    parts.push(format!("{name};dur={:.3}", us as f64 / 1000.0));
                }
            }
            parts.push(format!("edge;dur={:.3}", self.total as f64 / 1000.0));
            parts.join(", ")
        }
    }

    /// One JSON line per request on stdout (Viceroy prints it; on Fastly, stdout is the
    /// service's log stream). Never a token or a secret.
    #[derive(serde::Serialize)]
    struct LogLine<'a> {
        request_id: &'a str,
        method: String,
        client_ip: Option<std::net::IpAddr>,
        country: Option<&'a str>,
        continent: Option<&'a str>,
        route: Option<&'a str>,
        geo_level: Option<&'static str>,
        backend: Option<String>,
        attempts: Vec<String>,
        /// Why authentication failed (the problem detail; never the token).
        auth: Option<String>,
        /// RFC 9211 cache outcome.
        cache: &'static str,
        status: u16,
        /// Response body size, when known.
        bytes: Option<u64>,
        timings_us: Timings,
    }
}

#[cfg(target_arch = "wasm32")]
#[fastly::main]
fn main(req: fastly::Request) -> Result<fastly::Response, fastly::Error> {
    Ok(edge::handle(req))
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!(
        "fastgate's edge binary runs on Fastly Compute: build it with \
         `cargo build --release --target wasm32-wasip1` and run it with `cargo xtask serve`."
    );
    std::process::exit(2);
}
