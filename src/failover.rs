//! Failover policy: which backends to try, in what order, and whether a failed attempt may
//! be retried on the next one.
//!
//! The rule for retries follows RFC 9110 §9.2.2: an idempotent request may be repeated after
//! any failure; a non-idempotent one (POST, PATCH) only when it provably never reached the
//! origin, i.e. the connection was never established. A 502/503/504 answer counts as a
//! failure for idempotent methods only.
//!
//! A 503 that carries `Retry-After` is an origin shedding load on purpose (its argon2
//! queue is full, say): it is alive and said when to come back. An idempotent request may
//! still try the next backend, but the backend is not marked down, or one burst of logins
//! would send every client of that origin elsewhere for `down_for_s`.

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

    /// True when the backend should be marked down for later requests.
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

/// Whether the next backend may be tried after `outcome`.
pub fn may_retry(method: &str, outcome: AttemptOutcome) -> bool {
    match outcome {
        AttemptOutcome::Answered(status) => matches!(status, 502..=504) && is_idempotent(method),
        AttemptOutcome::Shedding => is_idempotent(method),
        AttemptOutcome::NotConnected => true,
        AttemptOutcome::Failed => is_idempotent(method),
    }
}

/// Orders the candidates: backends believed healthy keep their preference order; backends
/// marked down go last, so they are tried only when every healthy one has failed (better a
/// long shot than a certain 502). At most `max_attempts` are returned.
pub fn order(
    preferred: &[String],
    mut is_down: impl FnMut(&str) -> bool,
    max_attempts: u8,
) -> Vec<String> {
    let (up, down): (Vec<&String>, Vec<&String>) = preferred.iter().partition(|b| !is_down(b));
    up.into_iter()
        .chain(down)
        .take(usize::from(max_attempts))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn post_is_retried_only_when_never_sent() {
        assert!(may_retry("POST", AttemptOutcome::NotConnected));
        assert!(!may_retry("POST", AttemptOutcome::Failed));
        assert!(!may_retry("POST", AttemptOutcome::Answered(503)));
        assert!(!may_retry("PATCH", AttemptOutcome::Failed));
        assert!(may_retry("GET", AttemptOutcome::Failed));
        assert!(may_retry("PUT", AttemptOutcome::Answered(502)));
        assert!(!may_retry("GET", AttemptOutcome::Answered(500)));
        assert!(!may_retry("GET", AttemptOutcome::Answered(404)));
    }

    #[test]
    fn down_backends_go_last_and_attempts_are_bounded() {
        let list: Vec<String> = ["eu", "us", "ap"].map(String::from).to_vec();
        assert_eq!(order(&list, |b| b == "eu", 3), ["us", "ap", "eu"]);
        assert_eq!(order(&list, |_| false, 2), ["eu", "us"]);
        assert_eq!(order(&list, |_| true, 3), ["eu", "us", "ap"]);
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
        assert!(!may_retry("POST", shedding));
        assert!(may_retry("GET", shedding));
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
