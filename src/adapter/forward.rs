//! The forward phase's platform side: sign the identity for the origin (RFC 9421), then
//! send to the healthiest preferred backend within the failover policy's attempts, timeouts
//! and deadline, marking failed backends down for later requests.

use std::time::{Duration, Instant};

use fastly::http::request::SendErrorCause;
use fastly::{Request, Response, SecretStore};

use fastgate::failover::{self, Outcome};
use fastgate::gateway::{self, Forward};
use fastgate::identity;

use super::health::{self, Health};
use super::telemetry::{log_event, LogLine};
use super::{problem_response, secret, unix_now, SECRET_STORE};

/// Secret Store entries with the identity signing key and its id.
const IDENTITY_KEY: &str = "identity_signing_key";
const IDENTITY_KEY_ID: &str = "identity_key_id";

/// Everything the forward phase needs, owned, so the same request can be sent again after
/// the client has its answer (a stale-while-revalidate refresh).
pub(crate) struct Upstream {
    pub forward: Forward,
    pub identity: String,
    pub flags: String,
    pub request_id: String,
}

/// Every candidate backend failed (the attempts are in the log line).
pub(crate) struct NoOriginAnswered;

impl Upstream {
    /// Signs and sends `req` (already carrying any cache-added headers) with failover;
    /// when no backend answers, the 502 problem.
    pub fn send(&self, req: Request, log: &mut LogLine<'_>) -> Response {
        self.try_send(req, log).unwrap_or_else(|NoOriginAnswered| {
            problem_response(&gateway::bad_gateway(&self.request_id, &log.attempts))
        })
    }

    /// As [`Upstream::send`], but says when no backend answered, so a caller with another
    /// answer (a cached copy, or a 503 for a cached route) can give it instead.
    pub fn try_send(
        &self,
        req: Request,
        log: &mut LogLine<'_>,
    ) -> Result<Response, NoOriginAnswered> {
        let secrets = SecretStore::open(SECRET_STORE).ok();
        forward_with_failover(
            req,
            &self.forward,
            &self.identity,
            &self.flags,
            secrets.as_ref(),
            &self.request_id,
            log,
        )
    }
}

/// Sends to the healthiest preferred backend, moving down the list as far as the
/// failover policy allows, and marks failed backends down for later requests.
fn forward_with_failover(
    mut req: Request,
    forward: &Forward,
    identity: &str,
    flags: &str,
    secrets: Option<&SecretStore>,
    request_id: &str,
    log: &mut LogLine<'_>,
) -> Result<Response, NoOriginAnswered> {
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
    let key = secrets.and_then(|s| Some((secret(s, IDENTITY_KEY)?, secret(s, IDENTITY_KEY_ID)?)));
    let Some((key, key_id)) = key else {
        log_event("identity_key_missing", SECRET_STORE);
        return Ok(problem_response(&gateway::identity_unavailable(request_id)));
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
        |b| match health::health(b) {
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
            health::mark_down(backend, down_for);
        } else if probes.contains(backend) || health::was_marked(backend) {
            health::clear_mark(backend);
        }
        let retry = !last && failover::may_retry(&method, outcome) && Instant::now() < deadline;
        match resp {
            _ if retry => continue,
            Some(resp) => {
                log.backend = Some(backend.clone());
                return Ok(resp);
            }
            None => break,
        }
    }
    Err(NoOriginAnswered)
}

pub(crate) enum AttemptError {
    Send(fastly::http::request::SendError),
    TimedOut,
}

/// Sends and waits for the response headers at most `timeout`. The SDK has no timed
/// wait, so poll with a short, growing sleep (the sleep costs no CPU time); an abandoned
/// request is dropped, which cancels it.
pub(crate) fn send_with_timeout(
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
