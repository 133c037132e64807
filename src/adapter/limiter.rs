//! The limit phase's counters. The policy (keys, windows, verdicts, headers) is the
//! library's `ratelimit`; this file only counts, on one of two platform stores.
//!
//! - `core_cache` (the default, and the only one that limits under Viceroy, whose ERL is a
//!   stub): a fixed window holds `limit` numbered slots; a request claims the first free one
//!   through a Core Cache *transaction*, so two concurrent requests can never claim the same
//!   slot (the second waits for the first's insert, then moves on). Exact, O(log n) lookups.
//! - `erl`: Fastly Edge Rate Limiting, for production scale (averaged rates, not exact).

use std::net::IpAddr;
use std::time::Duration;

use fastly::cache::core::{self as cache, CacheKey, Transaction};
use fastly::erl::{Penaltybox, RateCounter, RateWindow, ERL};
use fastly::Request;

use fastgate::config::Limiter;
use fastgate::ratelimit::{self, LimitKey, RateLimitSpec, Verdict};

use super::headers::ClientHeaders;

/// Counts this request against `spec` and returns the verdict.
pub fn check(
    spec: &RateLimitSpec,
    store: Limiter,
    route_id: &str,
    subject: Option<&str>,
    ip: Option<IpAddr>,
    headers: &ClientHeaders,
    req: &mut Request,
) -> Verdict {
    let now_ms = now_ms();
    let header_value = match &spec.key {
        LimitKey::Header(name) => headers.get(name.as_str()).map(str::to_owned),
        LimitKey::Login => Some(login_key(ip, req)),
        LimitKey::Subject | LimitKey::Ip => None,
    };
    let Some(key) = ratelimit::key(spec, route_id, subject, ip, header_value.as_deref()) else {
        return ratelimit::decide(spec, 1, now_ms, None);
    };
    match store {
        Limiter::CoreCache => core_cache(spec, &key, now_ms),
        Limiter::Erl => erl(spec, &key, now_ms),
    }
}

/// The login key of the request's body. The email is in the body: at most
/// [`ratelimit::MAX_LOGIN_BODY`] + 1 bytes are read, as a prefix the body keeps for the
/// origin, so a body over the cap is never held whole and nothing is consumed. The byte past
/// the cap tells a body over it (keyed on the client alone) from one exactly at it.
fn login_key(ip: Option<IpAddr>, req: &mut Request) -> String {
    match req
        .get_body_mut()
        .try_get_prefix_mut(ratelimit::MAX_LOGIN_BODY + 1)
    {
        Ok(prefix) => ratelimit::login_key(ip, &prefix),
        // An unreadable body names no account.
        Err(_) => ratelimit::login_key(ip, &[]),
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or_default()
}

fn key_of(s: &str) -> CacheKey {
    CacheKey::from(format!("fastgate/ratelimit/v1/{s}"))
}

fn core_cache(spec: &RateLimitSpec, key: &str, now_ms: u64) -> Verdict {
    let penalty_key = key_of(&ratelimit::penalty_key(key));
    let penalty_until = cache::lookup(penalty_key.clone())
        .execute()
        .ok()
        .flatten()
        .and_then(|found| found.to_stream().ok())
        .and_then(|body| body.into_string().parse::<u64>().ok());
    if penalty_until.is_some_and(|until| until > now_ms) {
        return ratelimit::decide(spec, spec.limit.saturating_add(1), now_ms, penalty_until);
    }
    let (start, reset) = ratelimit::window(now_ms, spec.window_s);
    let base = ratelimit::counter_key(key, start);
    // Slots outlive their window slightly so a straggler never sees an empty past window.
    let ttl = Duration::from_millis(reset.saturating_sub(now_ms) + 1000);
    let count = claim_slot(&base, spec.limit, ttl);
    let verdict = ratelimit::decide(spec, count, now_ms, None);
    if let Some(until) = verdict.start_penalty_until_ms {
        let ttl = Duration::from_millis(until.saturating_sub(now_ms).max(1));
        write(penalty_key, ttl, until.to_string().as_bytes());
    }
    verdict
}

/// Claims the first free slot of the window; returns the request's count (1-based), or
/// `limit + 1` when every slot is taken.
fn claim_slot(base: &str, limit: u32, ttl: Duration) -> u32 {
    let slot = |i: u32| key_of(&format!("{base}/{i}"));
    let taken = |i: u32| matches!(cache::lookup(slot(i)).execute(), Ok(Some(_)));
    // Slots fill in order, so the first free one can be found by binary search.
    let (mut lo, mut hi) = (0u32, limit);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if taken(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    let mut i = lo;
    while i < limit {
        match Transaction::lookup(slot(i)).execute() {
            Ok(tx) if tx.found().is_none() && tx.must_insert() => {
                if let Ok(body) = tx.insert(ttl).execute() {
                    let _ = body.finish();
                }
                return i + 1;
            }
            Ok(_) => i += 1,
            // The cache is unavailable: fail open rather than refuse every request.
            Err(_) => return 1,
        }
    }
    limit.saturating_add(1)
}

fn write(key: CacheKey, ttl: Duration, bytes: &[u8]) {
    if let Ok(mut body) = cache::insert(key, ttl).execute() {
        use std::io::Write;
        let _ = body.write_all(bytes);
        let _ = body.finish();
    }
}

fn erl(spec: &RateLimitSpec, key: &str, now_ms: u64) -> Verdict {
    let limiter = ERL::open(
        RateCounter::open("fastgate_rate_counter"),
        Penaltybox::open("fastgate_penalty_box"),
    );
    let window = match spec.window_s {
        1 => RateWindow::OneSec,
        10 => RateWindow::TenSecs,
        _ => RateWindow::SixtySecs,
    };
    // ERL limits an average rate (requests per second over the window).
    let rps = spec.limit.div_ceil(spec.window_s.max(1)).max(1);
    // ERL's penalty box holds entries for 1 to 60 minutes.
    let penalty = Duration::from_secs(u64::from(spec.penalty_s.unwrap_or(60)).clamp(60, 3600));
    let blocked = limiter
        .check_rate(key, 1, window, rps, penalty)
        .unwrap_or(false);
    let count = if blocked {
        spec.limit.saturating_add(1)
    } else {
        1
    };
    ratelimit::decide(spec, count, now_ms, None)
}
