//! The proxy phase's platform side: bind the body by its digest and sign the identity for
//! the origin (RFC 9421, a fresh nonce per attempt), then send to the healthiest preferred
//! backend within the failover policy's attempts, timeouts and deadline, marking failed
//! backends down for later requests. A backend whose mark expired is probed by the edge
//! (`health::probe`) before this request goes there; an unsafe request is retried only
//! when it never left, or when its `Idempotency-Key` lets the origin deduplicate it. Such a
//! retry answered 409 with `Retry-After` (its key still claimed, likely by the origin that
//! just died with the first attempt) is sent again after the wait, until the deadline.

use std::io::Read as _;
use std::time::{Duration, Instant};

use fastly::handle::BodyHandle;
use fastly::http::request::SendErrorCause;
use fastly::{Request, Response};

use fastgate::failover::{self, AttemptOutcome, BackendState, Candidate, Checked, Election, Walk};
use fastgate::identity::{self, Nonces};
use fastgate::plan::ForwardPlan;
use fastgate::problem::{Problem, ProblemKind};

use super::health::{self, Marks};
use super::platform::{problem_response, secret, SECRET_STORE};
use super::telemetry::{log_event, Trace};

/// Secret Store entries with the identity signing key and its id.
const IDENTITY_KEY: &str = "identity_signing_key";
const IDENTITY_KEY_ID: &str = "identity_key_id";

/// The identity signing key, read once per request by the sign phase.
pub(crate) struct Signer {
    key: Vec<u8>,
    key_id: String,
}

impl Signer {
    /// The key from the Secret Store; `None` (and a log line) when it is not there.
    pub fn from_secret_store() -> Option<Self> {
        let key = secret(IDENTITY_KEY).zip(secret(IDENTITY_KEY_ID));
        let Some((key, key_id)) = key else {
            log_event("identity_key_missing", SECRET_STORE);
            return None;
        };
        let key_id = String::from_utf8_lossy(&key_id).into_owned();
        Some(Signer { key, key_id })
    }
}

/// Everything the proxy phase needs, so the same request can be sent again after the
/// client has its answer (a stale-while-revalidate refresh).
pub(crate) struct Upstream<'g> {
    pub plan: ForwardPlan<'g>,
    pub identity: String,
    pub flags: String,
    pub request_id: String,
    pub signer: Signer,
}

/// Every candidate backend failed (the attempts are in the trace).
pub(crate) struct NoOriginAnswered;

impl Upstream<'_> {
    /// Signs and sends `req` (already carrying any cache-added headers) with failover;
    /// when no backend answers, the 502 problem.
    pub fn send(&self, req: Request, trace: &mut Trace) -> Response {
        self.try_send(req, trace)
            .unwrap_or_else(|NoOriginAnswered| {
                problem_response(&Problem::bad_gateway(&self.request_id, &trace.attempts))
            })
    }

    /// As [`Upstream::send`], but says when no backend answered, so a caller with another
    /// answer (a cached copy, or a 503 for a cached route) can give it instead.
    pub fn try_send(&self, req: Request, trace: &mut Trace) -> Result<Response, NoOriginAnswered> {
        let prepared = match self.prepare(req) {
            Ok(prepared) => prepared,
            Err(problem) => return Ok(problem_response(&problem)),
        };
        let failover = self.plan.failover;
        let marks = Marks::read();
        let candidates = failover::order(
            self.plan.backends,
            |b| marks.state(b),
            failover.max_attempts,
        );
        let key = prepared.req.get_header(failover::IDEMPOTENCY_KEY_HEADER);
        let deadline = Instant::now() + Duration::from_millis(failover.deadline_ms);
        let attempts = Attempts {
            upstream: self,
            marks: &marks,
            // Only where the route's origin honours the key (`idempotency_key` in the config).
            has_idempotency_key: self.plan.route.idempotency_key
                && failover::has_idempotency_key(key.map(|v| v.as_bytes())),
            deadline,
        };
        attempts.run(prepared, candidates, trace)
    }

    /// The request as the origin gets it but for the signature: headers sanitized, path
    /// and query rewritten, the identity and flags set, and the body bound by its digest.
    /// Each attempt then signs it ([`Upstream::sign`]) with a nonce of its own.
    fn prepare(&self, mut req: Request) -> Result<Prepared, Problem> {
        let plan = &self.plan;
        for name in &plan.headers.remove {
            req.remove_header(name.as_str());
        }
        for (name, value) in &plan.headers.set {
            req.set_header(*name, value.as_str());
        }
        req.set_path(&plan.path);
        match &plan.query {
            Some(q) => req.set_query_str(q),
            None => req.remove_query(),
        }
        let body = bind_body(&mut req).map_err(|e| {
            log_event("request_body_unreadable", &e.to_string());
            Problem::new(
                ProblemKind::BadRequest,
                "the request body could not be read",
                &self.request_id,
            )
        })?;
        let nonces = Nonces::random().ok_or_else(|| {
            log_event("nonce_unavailable", "no entropy for the signature nonce");
            Problem::identity_unavailable(&self.request_id)
        })?;
        req.set_header(identity::IDENTITY_HEADER, self.identity.as_str());
        req.set_header(identity::FLAGS_HEADER, self.flags.as_str());
        Ok(Prepared { req, body, nonces })
    }

    /// Signs `req` over exactly what goes upstream (read back from it), with `nonce`.
    fn sign(&self, req: &mut Request, digest: Option<&str>, nonce: &str) {
        let signed = identity::Signed {
            method: req.get_method_str(),
            path: req.get_path(),
            query: req.get_query_str(),
            identity: &self.identity,
            flags: &self.flags,
            request_id: &self.request_id,
            content_digest: digest,
        };
        let now = fastgate::http::unix_now();
        let (input, signature) =
            identity::sign(&signed, &self.signer.key, &self.signer.key_id, nonce, now);
        req.set_header(identity::SIGNATURE_INPUT_HEADER, input);
        req.set_header(identity::SIGNATURE_HEADER, signature);
    }
}

/// A request ready to send once signed.
struct Prepared {
    req: Request,
    /// Its body and the body's `Content-Digest`; `None` when it has none.
    body: Option<Bound>,
    /// One nonce per attempt.
    nonces: Nonces,
}

/// A body read whole and bound to the signature by its digest.
struct Bound {
    bytes: Vec<u8>,
    digest: String,
}

/// Reads the body into memory, puts it back for sending (and for failover copies) and sets
/// its `Content-Digest`, which the signature then covers; a client's own `Content-Digest`
/// never passes. An empty body is sent as none, with no digest. The body is bounded by the
/// route's body limit, enforced before this phase.
fn bind_body(req: &mut Request) -> std::io::Result<Option<Bound>> {
    req.remove_header(identity::CONTENT_DIGEST_HEADER);
    let Some(mut body) = req.try_take_body() else {
        return Ok(None);
    };
    let mut bytes = Vec::new();
    body.read_to_end(&mut bytes)?;
    if bytes.is_empty() {
        return Ok(None);
    }
    let digest = identity::content_digest(&bytes);
    req.set_header(identity::CONTENT_DIGEST_HEADER, digest.as_str());
    req.set_body(bytes.clone());
    Ok(Some(Bound { bytes, digest }))
}

/// The request again, for the next attempt: built in guest memory from the prepared one
/// (method, URL, headers, body), so the first attempt, which nearly always answers, costs
/// no copy through the platform; `Request::clone_with_body` would load the client
/// request's metadata and copy every header into a new host handle up front.
fn copy_for_retry(req: &Request, body: Option<&Bound>) -> Request {
    let mut copy = Request::new(req.get_method().clone(), req.get_url().clone());
    for (name, value) in req.get_headers() {
        copy.append_header(name.clone(), value.clone());
    }
    if let Some(body) = body {
        copy.set_body(body.bytes.clone());
    }
    copy
}

/// One request's walk down its candidate backends.
struct Attempts<'a, 'g> {
    upstream: &'a Upstream<'g>,
    /// The shared down-marks as this request read them.
    marks: &'a Marks,
    /// Whether the client sent an `Idempotency-Key`, so the origin deduplicates a repeat.
    has_idempotency_key: bool,
    deadline: Instant,
}

impl Attempts<'_, '_> {
    /// Tries each candidate in turn, as far as the failover policy allows. A retry copy
    /// carries the whole bound body (and its digest), so a replayed POST is the same POST.
    /// After an ambiguous failure, a keyed request's retry that meets a 409 is sent again
    /// to the same backend (it answered, so it is up) once the conflict is waited out.
    fn run(
        &self,
        prepared: Prepared,
        candidates: Vec<Candidate>,
        trace: &mut Trace,
    ) -> Result<Response, NoOriginAnswered> {
        let Prepared { req, body, nonces } = prepared;
        let method = req.get_method_str().to_owned();
        let digest = body.as_ref().map(|b| b.digest.as_str());
        let mut walk = Walk::new(candidates);
        let mut current = walk.next(|b| self.check(b, &req));
        let mut next = Some(req);
        let mut sent = 0;
        // Whether an attempt may have reached an origin that failed with it.
        let mut ambiguous = false;
        while let Some(candidate) = current.take() {
            let Some(mut attempt) = next.take() else {
                break;
            };
            if walk.has_more() || (self.has_idempotency_key && ambiguous) {
                next = Some(copy_for_retry(&attempt, body.as_ref()));
            }
            self.upstream
                .sign(&mut attempt, digest, &nonces.for_attempt(sent));
            sent += 1;
            trace.attempts.push(candidate.backend.clone());
            let (outcome, resp) = self.attempt(attempt, &candidate);
            if next.is_some() && self.waited_out_conflict(ambiguous, &candidate, resp.as_ref()) {
                current = Some(candidate);
                continue;
            }
            ambiguous |= outcome.is_ambiguous();
            let retry = failover::may_retry(&method, self.has_idempotency_key, outcome)
                && Instant::now() < self.deadline;
            if retry {
                // Probes the next backend (if due) before this answer is given up.
                if let Some(template) = next.as_ref() {
                    current = walk.next(|b| self.check(b, template));
                }
                if current.is_some() {
                    continue;
                }
            }
            let resp = resp.ok_or(NoOriginAnswered)?;
            trace.backend = Some(candidate.backend);
            return Ok(resp);
        }
        Err(NoOriginAnswered)
    }

    /// Whether `resp` is a conflict this request's own retry should wait out
    /// ([`failover::conflict_wait_ms`]); if so, waits before saying so. `thread::sleep` is
    /// WASI's `poll_oneoff` on a clock: the guest blocks in the host, it does not spin.
    fn waited_out_conflict(
        &self,
        ambiguous: bool,
        candidate: &Candidate,
        resp: Option<&Response>,
    ) -> bool {
        let Some(resp) = resp else {
            return false;
        };
        let remaining = self.deadline.saturating_duration_since(Instant::now());
        let wait_ms = failover::conflict_wait_ms(
            self.has_idempotency_key,
            ambiguous,
            resp.get_status().as_u16(),
            resp.get_header("retry-after").map(|v| v.as_bytes()),
            u64::try_from(remaining.as_millis()).unwrap_or(u64::MAX),
        );
        let Some(wait_ms) = wait_ms else {
            return false;
        };
        let (backend, id) = (&candidate.backend, &self.upstream.request_id);
        let detail = format!("{backend}: 409 to {id}, sending again in {wait_ms} ms");
        log_event("idempotency_conflict_wait", &detail);
        std::thread::sleep(Duration::from_millis(wait_ms));
        true
    }

    /// A backend due a probe, reached by this request: probed by the edge if this request
    /// wins the election, before anything of the client's is sent there.
    fn check(&self, backend: &str, template: &Request) -> Checked {
        match health::elect(backend) {
            Election::Readmitted => Checked::Alive,
            Election::Lost => Checked::Busy,
            Election::Won => {
                let plan = &self.upstream.plan;
                let remaining = self.deadline.saturating_duration_since(Instant::now());
                let remaining_ms = u64::try_from(remaining.as_millis()).unwrap_or(u64::MAX);
                let timeout_ms = failover::probe_timeout_ms(plan.attempt_timeout_ms, remaining_ms);
                let down_for = Duration::from_secs(u64::from(plan.failover.down_for_s));
                let timeout = Duration::from_millis(timeout_ms);
                let request_id = &self.upstream.request_id;
                health::probe(backend, template, request_id, timeout, down_for)
            }
        }
    }

    /// One send to one backend, with the backend's shared health updated by its outcome.
    fn attempt(&self, req: Request, candidate: &Candidate) -> (AttemptOutcome, Option<Response>) {
        let plan = &self.upstream.plan;
        let backend = candidate.backend.as_str();
        let budget = self.deadline.saturating_duration_since(Instant::now());
        let timeout = Duration::from_millis(plan.attempt_timeout_ms).min(budget);
        let (outcome, resp) = send_once(req, backend, timeout);
        if outcome.is_backend_failure() {
            let down_for = Duration::from_secs(u64::from(plan.failover.down_for_s));
            health::mark_down(backend, down_for);
        } else if candidate.state == BackendState::Down || self.marks.was_marked(backend) {
            // A long shot that answered re-admits its backend.
            health::clear_mark(backend);
        }
        (outcome, resp)
    }
}

/// One send, its outcome as failover sees it, and a log line when no answer came.
pub(crate) fn send_once(
    req: Request,
    backend: &str,
    timeout: Duration,
) -> (AttemptOutcome, Option<Response>) {
    match send_with_timeout(req, backend, timeout) {
        Ok(resp) => {
            let retry_after = resp.contains_header("retry-after");
            let status = resp.get_status().as_u16();
            (AttemptOutcome::answered(status, retry_after), Some(resp))
        }
        Err(AttemptError::Send(e)) => {
            log_event("backend_error", &format!("{backend}: {e}"));
            (classify(&e), None)
        }
        Err(AttemptError::TimedOut) => {
            let detail = format!("{backend}: no response in {timeout:?}");
            log_event("backend_timeout", &detail);
            (AttemptOutcome::Failed, None)
        }
    }
}

pub(crate) enum AttemptError {
    Send(SendErrorCause),
    TimedOut,
}

/// Sends and waits for the response headers at most `timeout`, blocked in the platform's
/// `select` (one hostcall that wakes the instance the moment the origin answers). The SDK's
/// `PendingRequest` offers no timed wait, and polling it with sleeps in between added up to
/// half a sleep's length to every response (about 1.5 ms per request under Viceroy), so
/// this goes one level down, to the request and pending-request handles.
pub(crate) fn send_with_timeout(
    mut req: Request,
    backend: &str,
    timeout: Duration,
) -> Result<Response, AttemptError> {
    // Every send is a pass: what is stored is the edge cache's decision (Core Cache, to
    // RFC 9111 and keyed with the identity), never the platform's readthrough cache.
    req.set_pass(true);
    let (req, body) = req.into_handles();
    let pending = req
        .send_async(body.unwrap_or_else(BodyHandle::new), backend)
        .map_err(AttemptError::Send)?;
    // 0 means "no timeout" to the hostcall, so the shortest wait is 1 ms; `u32::MAX` in
    // `done` means the timeout elapsed first.
    let timeout_ms = u32::try_from(timeout.as_millis())
        .unwrap_or(u32::MAX)
        .max(1);
    let handles = [pending.as_u32()];
    let mut done = u32::MAX;
    // SAFETY: `handles` and `done` outlive the call, which reads one handle and writes
    // one `u32`.
    let status = unsafe {
        fastly_sys::fastly_async_io::select(handles.as_ptr(), handles.len(), timeout_ms, &mut done)
    };
    if status.is_ok() && done == u32::MAX {
        return Err(AttemptError::TimedOut);
    }
    let (resp, body) = pending.wait().map_err(AttemptError::Send)?;
    Ok(Response::from_handles(resp, body))
}

/// Maps the platform's send error to what failover needs to know: was it ever sent?
fn classify(cause: &SendErrorCause) -> AttemptOutcome {
    match cause {
        SendErrorCause::DnsTimeout
        | SendErrorCause::DnsError { .. }
        | SendErrorCause::DestinationNotFound
        | SendErrorCause::DestinationUnavailable
        | SendErrorCause::DestinationIpUnroutable
        | SendErrorCause::ConnectionRefused
        | SendErrorCause::ConnectionLimitReached => AttemptOutcome::NotConnected,
        _ => AttemptOutcome::Failed,
    }
}
