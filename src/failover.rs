//! Failover policy: which backends to try, in what order, whether a failed attempt may be
//! retried on the next one, and how a backend whose down-mark expired is re-admitted.
//!
//! The rule for retries follows RFC 9110 §9.2.2: an idempotent request may be repeated after
//! any failure; a non-idempotent one (POST, PATCH) only when it provably never reached the
//! origin, i.e. the connection was never established. A 502/503/504 answer counts as a
//! failure for idempotent methods only.
//!
//! A request that carries an `Idempotency-Key` is idempotent by contract with the origin,
//! which stores the answer under the key and replays it for a repeat with the same body
//! (and answers 409 while the first is still in flight). Such a request is therefore
//! retried like a GET: after a reset, a timeout or a 502-504, on the next backend. Without
//! the key a POST is never sent twice.
//!
//! A keyed request the edge sent again after an ambiguous failure (the origin may have
//! taken it and died) may be answered 409 with `Retry-After`: the key is claimed by a
//! request in progress, most likely this one's, on the process that just died. The origin
//! lets a dead process's claim be taken over within a couple of seconds, so the edge waits
//! (`Retry-After`, at most [`CONFLICT_WAIT_MAX_MS`]) and sends it again, the key and the
//! body unchanged, until the request's deadline; the answer is then the stored one or the
//! write itself. A 409 to a client's first attempt is a genuinely concurrent duplicate and
//! passed on unchanged.
//!
//! A 503 that carries `Retry-After` is an origin shedding load on purpose (its argon2
//! queue is full, say): it is alive and said when to come back. An idempotent request may
//! still try the next backend, but the backend is not marked down, or one burst of logins
//! would send every client of that origin elsewhere for `down_for_s`.
//!
//! Half-open: when a backend's down-mark expires, one request (the one the shared cache
//! elects) has the edge send its own `GET` to the backend's health path before any client
//! request goes there. A client's request is never the probe, so a POST never pays for
//! finding out that a backend is still dead.

use std::collections::VecDeque;

/// The request header by which a client makes an unsafe request safe to repeat.
pub use fastgate_wire::IDEMPOTENCY_KEY_HEADER;

/// The longest the edge waits before sending a keyed request again after a 409.
pub const CONFLICT_WAIT_MAX_MS: u64 = 1_000;
/// The shortest such wait, so that `Retry-After: 0` does not become a busy loop.
pub const CONFLICT_WAIT_MIN_MS: u64 = 100;
/// What must remain of the request's budget after such a wait for the attempt to be worth
/// sending; otherwise the 409 is the answer.
pub const CONFLICT_ATTEMPT_MIN_MS: u64 = 500;

/// Where the edge's half-open probe goes. The config names no health path per backend, and
/// every origin answers this one before its router, unsigned (its liveness check).
pub const PROBE_PATH: &str = "/health";

/// The longest a half-open probe may wait: a liveness answer is immediate, and the client
/// request the probe stands in front of is waiting too.
pub const PROBE_TIMEOUT_MS: u64 = 2_000;

/// How one attempt ended, as far as the platform can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The origin answered with this status.
    Answered(u16),
    /// The origin answered 503 with `Retry-After`: alive, shedding load.
    Shedding,
    /// No connection was made (refused, DNS, unroutable): the request was never sent.
    NotConnected,
    /// The attempt failed after the request may have been sent (reset, timeout, garbled
    /// response), or the platform did not say which.
    Failed,
}

impl AttemptOutcome {
    /// How an answer with `status` ends an attempt; `retry_after` is whether it carries
    /// `Retry-After`.
    pub fn answered(status: u16, retry_after: bool) -> Self {
        if status == 503 && retry_after {
            AttemptOutcome::Shedding
        } else {
            AttemptOutcome::Answered(status)
        }
    }

    /// True when the request may have reached an origin that then failed with it (reset,
    /// timeout, garbled answer): a claim of its `Idempotency-Key` may be held by that process.
    pub fn is_ambiguous(self) -> bool {
        self == AttemptOutcome::Failed
    }

    /// True when the backend should be marked down for later requests. A half-open probe
    /// that ends any other way re-admits the backend: it answered, so it is alive.
    pub fn is_backend_failure(self) -> bool {
        match self {
            AttemptOutcome::Answered(status) => matches!(status, 502..=504),
            AttemptOutcome::Shedding => false,
            AttemptOutcome::NotConnected | AttemptOutcome::Failed => true,
        }
    }
}

/// Methods RFC 9110 §9.2.2 defines as idempotent.
pub fn is_idempotent(method: &str) -> bool {
    matches!(
        method,
        "GET" | "HEAD" | "OPTIONS" | "TRACE" | "PUT" | "DELETE"
    )
}

/// Whether the request's `Idempotency-Key` value (if any) makes it one the origin
/// deduplicates. A blank value names no key, so it is not one; the origin judges the rest.
pub fn has_idempotency_key(value: Option<&[u8]>) -> bool {
    value.is_some_and(|v| v.iter().any(|b| !matches!(b, b' ' | b'\t')))
}

/// Whether the request may be sent again after it may have reached an origin: idempotent
/// by its method, or by its `Idempotency-Key`.
pub fn is_replayable(method: &str, has_idempotency_key: bool) -> bool {
    has_idempotency_key || is_idempotent(method)
}

/// Whether the next backend may be tried after `outcome`. A request that never left may
/// always move on; one that may have reached the origin only when it is replayable.
pub fn may_retry(method: &str, has_idempotency_key: bool, outcome: AttemptOutcome) -> bool {
    let replayable = is_replayable(method, has_idempotency_key);
    match outcome {
        AttemptOutcome::Answered(status) => matches!(status, 502..=504) && replayable,
        AttemptOutcome::Shedding | AttemptOutcome::Failed => replayable,
        AttemptOutcome::NotConnected => true,
    }
}

/// How long to wait before sending a keyed request again after an answer with `status` and
/// `retry_after` (the header's value), or `None` when that answer is the answer. Only a 409
/// with `Retry-After` to a retry the edge made after an ambiguous failure
/// (`ambiguous_before`) is waited out; and only when, after the wait, at least
/// [`CONFLICT_ATTEMPT_MIN_MS`] of the request's `remaining_ms` is left for the attempt.
pub fn conflict_wait_ms(
    has_idempotency_key: bool,
    ambiguous_before: bool,
    status: u16,
    retry_after: Option<&[u8]>,
    remaining_ms: u64,
) -> Option<u64> {
    if !(has_idempotency_key && ambiguous_before && status == 409) {
        return None;
    }
    let wait = retry_after_ms(retry_after?).clamp(CONFLICT_WAIT_MIN_MS, CONFLICT_WAIT_MAX_MS);
    (wait.saturating_add(CONFLICT_ATTEMPT_MIN_MS) <= remaining_ms).then_some(wait)
}

/// `Retry-After` in milliseconds: delta-seconds as such; anything else (an HTTP-date, say)
/// as the longest wait, which the caller's cap then bounds.
fn retry_after_ms(value: &[u8]) -> u64 {
    std::str::from_utf8(value)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(u64::MAX, |secs| secs.saturating_mul(1_000))
}

/// A backend's down-mark in the shared cache, when it has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkAge {
    /// Within `down_for_s` (or a probe's window): the backend is down.
    Fresh,
    /// Expired but still stored: the backend is due a half-open probe.
    Stale,
}

/// What one request believes of a backend before it sends anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendState {
    Up,
    /// Marked down (or unhealthy to the platform): tried last, as a long shot.
    Down,
    /// Its mark expired: usable once a half-open probe says it is alive.
    ProbeDue,
}

impl BackendState {
    /// The state a backend's down-mark (if any) gives it.
    pub fn of_mark(mark: Option<MarkAge>) -> Self {
        match mark {
            None => BackendState::Up,
            Some(MarkAge::Fresh) => BackendState::Down,
            Some(MarkAge::Stale) => BackendState::ProbeDue,
        }
    }
}

/// One backend a request may be sent to, with what the request believes of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub backend: String,
    pub state: BackendState,
}

/// Orders the candidates: backends not marked down keep their preference order (one due a
/// probe keeps its place, the probe decides); backends marked down go last, so they are
/// tried only when every other one has failed (better a long shot than a certain 502).
/// This holds for unsafe requests too: while its preferred backend is marked down, a POST
/// goes to the next one. At most `max_attempts` are returned.
pub fn order(
    preferred: &[String],
    mut state: impl FnMut(&str) -> BackendState,
    max_attempts: u8,
) -> Vec<Candidate> {
    let all = preferred.iter().map(|b| Candidate {
        backend: b.clone(),
        state: state(b),
    });
    let (down, usable): (Vec<Candidate>, Vec<Candidate>) =
        all.partition(|c| c.state == BackendState::Down);
    usable
        .into_iter()
        .chain(down)
        .take(usize::from(max_attempts))
        .collect()
}

/// Who probes a backend whose mark expired: decided by the shared cache's transaction on
/// the mark, so that one request per probe window does it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Election {
    /// The mark is gone: another request's probe re-admitted the backend.
    Readmitted,
    /// This request probes.
    Won,
    /// Another request is probing, or the backend was marked down again.
    Lost,
}

/// The election as the mark's transactional lookup ends: `obliged` is whether the cache
/// handed this request the obligation to update the (stale) mark.
pub fn elect(mark: Option<MarkAge>, obliged: bool) -> Election {
    match mark {
        None => Election::Readmitted,
        Some(MarkAge::Stale) if obliged => Election::Won,
        Some(_) => Election::Lost,
    }
}

/// What checking a backend due a probe found, just before a request would go there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checked {
    /// Re-admitted (by this request's probe or another's): send there.
    Alive,
    /// Another request is probing it: treat it as down (a long shot, last).
    Busy,
    /// This request's probe just failed: do not send there at all.
    Dead,
}

/// One request's walk down its candidates. A backend due a probe is checked only when the
/// request reaches it, so a request its first backend answers never pays for a probe of
/// its fallback.
#[derive(Debug)]
pub struct Walk {
    queue: VecDeque<Candidate>,
}

impl Walk {
    pub fn new(candidates: Vec<Candidate>) -> Walk {
        Walk {
            queue: candidates.into(),
        }
    }

    /// Whether candidates remain (a probe may still rule them out).
    pub fn has_more(&self) -> bool {
        !self.queue.is_empty()
    }

    /// The next backend to send to; `check` is called for each one due a probe, once.
    pub fn next(&mut self, mut check: impl FnMut(&str) -> Checked) -> Option<Candidate> {
        while let Some(candidate) = self.queue.pop_front() {
            if candidate.state != BackendState::ProbeDue {
                return Some(candidate);
            }
            match check(&candidate.backend) {
                Checked::Alive => {
                    return Some(Candidate {
                        state: BackendState::Up,
                        ..candidate
                    })
                }
                Checked::Busy => self.queue.push_back(Candidate {
                    state: BackendState::Down,
                    ..candidate
                }),
                Checked::Dead => {}
            }
        }
        None
    }
}

/// How long a half-open probe may wait: [`PROBE_TIMEOUT_MS`], but never longer than an
/// attempt may, nor than the request's remaining budget.
pub fn probe_timeout_ms(attempt_timeout_ms: u64, remaining_ms: u64) -> u64 {
    PROBE_TIMEOUT_MS.min(attempt_timeout_ms).min(remaining_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn backends(candidates: &[Candidate]) -> Vec<&str> {
        candidates.iter().map(|c| c.backend.as_str()).collect()
    }

    #[test]
    fn post_without_a_key_is_retried_only_when_never_sent() {
        assert!(may_retry("POST", false, AttemptOutcome::NotConnected));
        assert!(!may_retry("POST", false, AttemptOutcome::Failed));
        assert!(!may_retry("POST", false, AttemptOutcome::Answered(503)));
        assert!(!may_retry("PATCH", false, AttemptOutcome::Failed));
        assert!(may_retry("GET", false, AttemptOutcome::Failed));
        assert!(may_retry("PUT", false, AttemptOutcome::Answered(502)));
        assert!(!may_retry("GET", false, AttemptOutcome::Answered(500)));
        assert!(!may_retry("GET", false, AttemptOutcome::Answered(404)));
    }

    #[test]
    fn an_idempotency_key_makes_an_unsafe_request_replayable() {
        for method in ["POST", "PATCH"] {
            assert!(may_retry(method, true, AttemptOutcome::Failed), "{method}");
            assert!(may_retry(method, true, AttemptOutcome::NotConnected));
            for status in [502, 503, 504] {
                assert!(may_retry(method, true, AttemptOutcome::Answered(status)));
            }
            assert!(may_retry(method, true, AttemptOutcome::Shedding));
            // An answer the origin meant is the answer, key or not.
            for status in [200, 201, 400, 409, 422, 500] {
                assert!(!may_retry(method, true, AttemptOutcome::Answered(status)));
            }
        }
        assert!(is_replayable("POST", true));
        assert!(!is_replayable("POST", false));
        assert!(is_replayable("DELETE", false));
    }

    #[test]
    fn only_the_edges_own_retry_waits_out_a_conflict() {
        let full = 15_000;
        // A retry after an ambiguous failure, answered 409 with Retry-After: wait, capped.
        assert_eq!(
            conflict_wait_ms(true, true, 409, Some(b"1"), full),
            Some(1_000)
        );
        assert_eq!(
            conflict_wait_ms(true, true, 409, Some(b" 1 "), full),
            Some(1_000)
        );
        assert_eq!(
            conflict_wait_ms(true, true, 409, Some(b"30"), full),
            Some(1_000)
        );
        assert_eq!(
            conflict_wait_ms(true, true, 409, Some(b"0"), full),
            Some(100)
        );
        let date = b"Wed, 21 Oct 2015 07:28:00 GMT";
        assert_eq!(
            conflict_wait_ms(true, true, 409, Some(date), full),
            Some(1_000)
        );
        // The client's first attempt: a genuinely concurrent duplicate, passed on.
        assert_eq!(conflict_wait_ms(true, false, 409, Some(b"1"), full), None);
        // No key, no Retry-After, or another status: the answer is the answer.
        assert_eq!(conflict_wait_ms(false, true, 409, Some(b"1"), full), None);
        assert_eq!(conflict_wait_ms(true, true, 409, None, full), None);
        for status in [200, 202, 422, 429, 503] {
            assert_eq!(conflict_wait_ms(true, true, status, Some(b"1"), full), None);
        }
        // Not past the deadline: the wait and a worthwhile attempt must fit.
        assert_eq!(
            conflict_wait_ms(true, true, 409, Some(b"1"), 1_500),
            Some(1_000)
        );
        assert_eq!(conflict_wait_ms(true, true, 409, Some(b"1"), 1_499), None);
        assert_eq!(conflict_wait_ms(true, true, 409, Some(b"0"), 599), None);
    }

    #[test]
    fn only_a_failure_after_sending_is_ambiguous() {
        assert!(AttemptOutcome::Failed.is_ambiguous());
        assert!(!AttemptOutcome::NotConnected.is_ambiguous());
        assert!(!AttemptOutcome::Shedding.is_ambiguous());
        for status in [200, 409, 502, 503, 504] {
            assert!(!AttemptOutcome::Answered(status).is_ambiguous(), "{status}");
        }
    }

    #[test]
    fn a_blank_idempotency_key_is_no_key() {
        assert!(!has_idempotency_key(None));
        assert!(!has_idempotency_key(Some(b"")));
        assert!(!has_idempotency_key(Some(b" \t ")));
        assert!(has_idempotency_key(Some(b"8e03978e-40d5")));
        assert!(has_idempotency_key(Some(b"\"8e03978e\"")));
    }

    #[test]
    fn down_backends_go_last_and_attempts_are_bounded() {
        let list = names(&["eu", "us", "ap"]);
        let down_eu = |b: &str| {
            if b == "eu" {
                BackendState::Down
            } else {
                BackendState::Up
            }
        };
        assert_eq!(backends(&order(&list, down_eu, 3)), ["us", "ap", "eu"]);
        assert_eq!(backends(&order(&list, down_eu, 2)), ["us", "ap"]);
        assert_eq!(
            backends(&order(&list, |_| BackendState::Up, 2)),
            ["eu", "us"]
        );
        let all_down = order(&list, |_| BackendState::Down, 3);
        assert_eq!(backends(&all_down), ["eu", "us", "ap"]);
    }

    #[test]
    fn a_backend_due_a_probe_keeps_its_place() {
        let list = names(&["eu", "us", "ap"]);
        let state = |b: &str| match b {
            "eu" => BackendState::ProbeDue,
            "us" => BackendState::Down,
            _ => BackendState::Up,
        };
        let ordered = order(&list, state, 3);
        assert_eq!(backends(&ordered), ["eu", "ap", "us"]);
        assert_eq!(ordered[0].state, BackendState::ProbeDue);
        assert_eq!(ordered[2].state, BackendState::Down);
    }

    #[test]
    fn marks_and_elections() {
        assert_eq!(BackendState::of_mark(None), BackendState::Up);
        assert_eq!(
            BackendState::of_mark(Some(MarkAge::Fresh)),
            BackendState::Down
        );
        assert_eq!(
            BackendState::of_mark(Some(MarkAge::Stale)),
            BackendState::ProbeDue
        );
        assert_eq!(elect(None, true), Election::Readmitted);
        assert_eq!(elect(None, false), Election::Readmitted);
        assert_eq!(elect(Some(MarkAge::Stale), true), Election::Won);
        // Someone else holds the obligation, or already re-marked it (fresh again).
        assert_eq!(elect(Some(MarkAge::Stale), false), Election::Lost);
        assert_eq!(elect(Some(MarkAge::Fresh), false), Election::Lost);
    }

    fn walk_all(walk: &mut Walk, check: impl Fn(&str) -> Checked) -> Vec<Candidate> {
        let mut checked = Vec::new();
        let mut out = Vec::new();
        while let Some(c) = walk.next(|b| {
            checked.push(b.to_owned());
            check(b)
        }) {
            out.push(c);
        }
        let mut unique = checked.clone();
        unique.dedup();
        assert_eq!(unique, checked, "a backend is checked at most once");
        out
    }

    #[test]
    fn the_walk_sends_nothing_to_a_backend_before_its_probe() {
        let list = names(&["eu", "us", "ap"]);
        let due = |b: &str| {
            if b == "eu" {
                BackendState::ProbeDue
            } else {
                BackendState::Up
            }
        };
        // The probe re-admits it: the request goes there first, as believed up.
        let mut walk = Walk::new(order(&list, due, 3));
        let seen = walk_all(&mut walk, |_| Checked::Alive);
        assert_eq!(backends(&seen), ["eu", "us", "ap"]);
        assert_eq!(seen[0].state, BackendState::Up);
        // The probe failed: it is not tried at all.
        let mut walk = Walk::new(order(&list, due, 3));
        assert_eq!(
            backends(&walk_all(&mut walk, |_| Checked::Dead)),
            ["us", "ap"]
        );
        // Another request is probing: a long shot, after the others.
        let mut walk = Walk::new(order(&list, due, 3));
        let seen = walk_all(&mut walk, |_| Checked::Busy);
        assert_eq!(backends(&seen), ["us", "ap", "eu"]);
        assert_eq!(seen[2].state, BackendState::Down);
    }

    #[test]
    fn the_walk_checks_a_fallback_only_when_it_gets_there() {
        let list = names(&["eu", "us"]);
        let due = |b: &str| {
            if b == "us" {
                BackendState::ProbeDue
            } else {
                BackendState::Up
            }
        };
        let mut walk = Walk::new(order(&list, due, 3));
        let first = walk.next(|_| panic!("eu needs no probe"));
        assert_eq!(first.map(|c| c.backend), Some("eu".to_owned()));
        assert!(walk.has_more());
        let mut probed = Vec::new();
        let second = walk.next(|b| {
            probed.push(b.to_owned());
            Checked::Dead
        });
        assert_eq!(second, None);
        assert_eq!(probed, ["us"]);
        assert!(!walk.has_more());
    }

    #[test]
    fn probe_timeout_is_bounded_by_attempt_and_budget() {
        assert_eq!(probe_timeout_ms(10_000, 15_000), PROBE_TIMEOUT_MS);
        assert_eq!(probe_timeout_ms(400, 15_000), 400);
        assert_eq!(probe_timeout_ms(10_000, 30), 30);
    }

    #[test]
    fn failures_that_mark_a_backend_down() {
        assert!(AttemptOutcome::Answered(503).is_backend_failure());
        assert!(!AttemptOutcome::Answered(500).is_backend_failure());
        assert!(!AttemptOutcome::Answered(200).is_backend_failure());
        assert!(AttemptOutcome::Failed.is_backend_failure());
    }

    #[test]
    fn a_shedding_origin_is_not_marked_down() {
        let shedding = AttemptOutcome::answered(503, true);
        assert_eq!(shedding, AttemptOutcome::Shedding);
        assert!(!shedding.is_backend_failure());
        assert!(!may_retry("POST", false, shedding));
        assert!(may_retry("GET", false, shedding));
        assert_eq!(
            AttemptOutcome::answered(503, false),
            AttemptOutcome::Answered(503)
        );
        assert_eq!(
            AttemptOutcome::answered(502, true),
            AttemptOutcome::Answered(502)
        );
    }
}
