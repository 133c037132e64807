//! A stored copy's state as it ages. Staleness follows RFC 5861: within
//! `stale-while-revalidate` a stale copy is served while one request revalidates; within
//! `stale-if-error` it is served only when the origin fails; past both it is a miss.

use super::cache_control::{CacheControl, DELTA_SECONDS_CAP};
use super::targeted::cdn_cache_control;

/// A stored response's state at a given age.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// `age < ttl`: serve it.
    Fresh { ttl_left_s: u64 },
    /// Stale, within `stale-while-revalidate`: serve it and revalidate in the background.
    StaleServable { ttl_left_s: i64 },
    /// Stale beyond `stale-while-revalidate` but within `stale-if-error`: revalidate first;
    /// serve it only if the origin fails.
    StaleIfError { ttl_left_s: i64 },
    /// Past every window: a miss (revalidate conditionally if it has a validator).
    Expired { ttl_left_s: i64 },
}

impl Freshness {
    /// Seconds of freshness left; negative once stale (RFC 9211 `ttl`).
    pub fn ttl_left_s(&self) -> i64 {
        match *self {
            Freshness::Fresh { ttl_left_s } => i64::try_from(ttl_left_s).unwrap_or(i64::MAX),
            Freshness::StaleServable { ttl_left_s }
            | Freshness::StaleIfError { ttl_left_s }
            | Freshness::Expired { ttl_left_s } => ttl_left_s,
        }
    }
}

/// Classifies a stored response of current age `age_s` (§4.2: fresh while
/// `ttl > age`; RFC 5861 windows counted from the moment it went stale, end exclusive).
pub fn freshness(age_s: u64, ttl_s: u64, swr_s: u64, sie_s: u64) -> Freshness {
    if age_s < ttl_s {
        return Freshness::Fresh {
            ttl_left_s: ttl_s - age_s,
        };
    }
    let stale_for = age_s - ttl_s;
    let ttl_left_s = -i64::try_from(stale_for).unwrap_or(i64::MAX);
    if stale_for < swr_s {
        Freshness::StaleServable { ttl_left_s }
    } else if stale_for < sie_s {
        Freshness::StaleIfError { ttl_left_s }
    } else {
        Freshness::Expired { ttl_left_s }
    }
}

/// Whether a stored response may be served stale when no origin can be reached at all
/// (RFC 9111 §4.2.4: a disconnected cache may, unless the origin forbade it with
/// `must-revalidate`, `proxy-revalidate`, `no-cache` or `s-maxage`, which implies
/// `proxy-revalidate` for a shared cache, §5.2.2.10). `headers` are the stored ones.
pub fn stale_allowed_when_disconnected<N: AsRef<str>, V: AsRef<str>>(headers: &[(N, V)]) -> bool {
    let cc = cdn_cache_control(headers).unwrap_or_else(|| CacheControl::from_headers(headers));
    !(cc.must_revalidate || cc.proxy_revalidate || cc.no_cache || cc.s_maxage.is_some())
}

/// The `Age` value for a response served from the cache (§5.1), capped at 2^31 (§1.2.2).
pub fn age_header(age_s: u64) -> String {
    age_s.min(DELTA_SECONDS_CAP).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_disconnected_cache_serves_stale_unless_forbidden() {
        assert!(stale_allowed_when_disconnected(&[(
            "cache-control",
            "max-age=10"
        )]));
        assert!(stale_allowed_when_disconnected::<&str, &str>(&[]));
        for forbidding in [
            "must-revalidate",
            "proxy-revalidate",
            "no-cache",
            "s-maxage=5",
        ] {
            let h = [("cache-control", format!("max-age=10, {forbidding}"))];
            assert!(!stale_allowed_when_disconnected(&h), "{forbidding}");
        }
        let cdn = [
            ("cache-control", "max-age=10"),
            ("cdn-cache-control", "must-revalidate"),
        ];
        assert!(!stale_allowed_when_disconnected(&cdn));
    }

    #[test]
    fn freshness_windows() {
        use Freshness::*;
        // (age, ttl, swr, sie) → the window it falls in.
        let cases = [
            (0, Fresh { ttl_left_s: 60 }),
            (59, Fresh { ttl_left_s: 1 }),
            (60, StaleServable { ttl_left_s: 0 }),
            (69, StaleServable { ttl_left_s: -9 }),
            (70, StaleIfError { ttl_left_s: -10 }),
            (159, StaleIfError { ttl_left_s: -99 }),
            (160, Expired { ttl_left_s: -100 }),
        ];
        for (age, want) in cases {
            assert_eq!(freshness(age, 60, 10, 100), want, "age {age}");
        }
        // swr longer than sie: the sie window adds nothing.
        assert_eq!(
            freshness(80, 60, 100, 10),
            Freshness::StaleServable { ttl_left_s: -20 }
        );
        assert_eq!(freshness(0, 0, 0, 0), Freshness::Expired { ttl_left_s: 0 });
        assert_eq!(freshness(u64::MAX, 0, 0, 0).ttl_left_s(), -i64::MAX);
        assert_eq!(freshness(0, u64::MAX, 0, 0).ttl_left_s(), i64::MAX);
        assert_eq!(age_header(0), "0");
        assert_eq!(age_header(42), "42");
        assert_eq!(age_header(u64::MAX), "2147483648");
    }
}
