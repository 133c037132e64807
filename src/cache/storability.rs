//! May the origin's response be stored, and for how long? RFC 9111 §3 for a *shared* cache,
//! conservatively: `no-store`, `private` (qualified or not), `Set-Cookie`, `Vary: *`,
//! partial content, 304s and oversized bodies are never stored, and a status that is not heuristically cacheable is stored only when the
//! origin gave it an explicit lifetime. A per-user partition is still physically a
//! shared cache, so the same rules apply.
//!
//! Freshness: the route's `ttl_s`, else `s-maxage` > `max-age` > `Expires` − `Date`
//! (§4.2.1), else, for a status cacheable by default that has `Last-Modified`, a heuristic
//! tenth of its age (§4.2.2). An API response with none of these is not stored. The origin's explicit prohibitions on stale use
//! (§4.2.4) always beat the route's configured windows.

use super::cache_control::{delta_seconds, CacheControl, DELTA_SECONDS_CAP};
use super::policy::{CacheMode, CachePolicy};
use super::targeted::cdn_cache_control;
use crate::http::parse_http_date;

/// Whether and how long to store a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storable {
    /// Not stored, and why (for `Cache-Status: ...; detail=` and the log).
    No(&'static str),
    Yes {
        /// Freshness lifetime (§4.2.1), counted from the response's generation.
        ttl_s: u64,
        stale_while_revalidate_s: u64,
        stale_if_error_s: u64,
        /// The response's age on arrival (`Age`, §4.2.3); may exceed `ttl_s` (stored stale).
        initial_age_s: u64,
        /// May answer a public route's requests that carry `Authorization` (§3.5). Store it
        /// with the object and pass it to [`may_serve`](super::may_serve).
        shareable_with_authorization: bool,
    },
}

/// How a status may be stored (RFC 9111 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StatusRule {
    /// Cacheable by default (RFC 9110 §15.1): the route's `ttl_s` may give its lifetime.
    ByDefault,
    /// Any other final status: stored only with the origin's own explicit lifetime
    /// (`s-maxage`, `max-age` or `Expires`), never with the route's `ttl_s` (a route's TTL
    /// must not keep a 500 the origin did not mean to be kept).
    Explicit,
    Never,
}

/// 206 is never stored: this cache does not combine or serve ranges, and §3.3 forbids
/// storing partial content then; a 304 is merged into the entry it validates, never stored
/// as one. Statuses outside 200–599 are not final HTTP statuses.
fn status_rule(status: u16) -> StatusRule {
    match status {
        200 | 203 | 204 | 300 | 301 | 308 | 404 | 405 | 410 | 414 | 501 => StatusRule::ByDefault,
        206 | 304 => StatusRule::Never,
        200..=599 => StatusRule::Explicit,
        _ => StatusRule::Never,
    }
}

/// What one pass over the response headers finds.
#[derive(Default)]
struct ResponseFacts<'h> {
    set_cookie: bool,
    vary_star: bool,
    too_large: bool,
    validator: bool,
    last_modified: Option<&'h str>,
    expires: Option<&'h str>,
    date: Option<&'h str>,
    age: Option<&'h str>,
}

impl<'h> ResponseFacts<'h> {
    fn scan(headers: &[(&'h str, &'h str)], policy: &CachePolicy) -> Self {
        let mut f = ResponseFacts::default();
        for &(name, value) in headers {
            let is = |n: &str| name.eq_ignore_ascii_case(n);
            if is("set-cookie") {
                f.set_cookie = true;
            } else if is("vary") {
                for v in value.split(',').map(|v| v.trim_matches([' ', '\t'])) {
                    // Any other name becomes the entry's vary rule (its secondary key).
                    f.vary_star |= v == "*";
                }
            } else if is("content-length") {
                // A malformed length is ignored here; the adapter enforces the real size.
                f.too_large |= value
                    .split(',')
                    .filter_map(|v| v.trim_matches([' ', '\t']).parse::<u64>().ok())
                    .any(|len| !policy.admits_size(len));
            } else if is("etag") || is("last-modified") {
                f.validator |= !value.trim().is_empty();
                if is("last-modified") {
                    f.last_modified = f.last_modified.or(Some(value));
                }
            } else if is("expires") {
                f.expires = f.expires.or(Some(value));
            } else if is("date") {
                f.date = f.date.or(Some(value));
            } else if is("age") {
                f.age = f.age.or(Some(value));
            }
        }
        f
    }

    /// The first header-level reason not to store (checks 2–4 of [`storability`], after
    /// `Cache-Control`'s own).
    fn refusal(&self) -> Option<&'static str> {
        if self.set_cookie {
            Some("set-cookie")
        } else if self.vary_star {
            Some("vary *")
        } else if self.too_large {
            Some("too large")
        } else {
            None
        }
    }
}

/// The freshness lifetime (check 7 of [`storability`]); `None` when the response has none.
fn freshness_lifetime(
    rule: StatusRule,
    cc: &CacheControl,
    policy: &CachePolicy,
    facts: &ResponseFacts,
    now_s: u64,
) -> Option<u64> {
    if cc.no_cache {
        return Some(0);
    }
    if let Some(ttl) = policy.ttl_s.filter(|_| rule == StatusRule::ByDefault) {
        return Some(u64::from(ttl));
    }
    if let Some(s) = cc.s_maxage.or(cc.max_age) {
        return Some(s);
    }
    let date = || facts.date.and_then(parse_http_date).unwrap_or(now_s);
    if let Some(expires) = facts.expires {
        return Some(match parse_http_date(expires) {
            Some(exp) => exp.saturating_sub(date()).min(DELTA_SECONDS_CAP),
            None => 0,
        });
    }
    // §4.2.2: a status cacheable by default may be given a heuristic lifetime: a tenth of
    // the time since `Last-Modified` (the common choice), at most a day.
    let modified = facts.last_modified.and_then(parse_http_date)?;
    (rule == StatusRule::ByDefault)
        .then(|| (date().saturating_sub(modified) / 10).min(HEURISTIC_CAP_S))
}

/// The longest heuristic lifetime (§4.2.2).
const HEURISTIC_CAP_S: u64 = 86_400;

/// The stale-while-revalidate and stale-if-error windows (see [`storability`]).
fn stale_windows(cc: &CacheControl, policy: &CachePolicy) -> (u64, u64) {
    if cc.must_revalidate || cc.proxy_revalidate || cc.no_cache {
        (0, 0)
    } else if cc.s_maxage.is_some() {
        (
            cc.stale_while_revalidate.unwrap_or(0),
            cc.stale_if_error.unwrap_or(0),
        )
    } else {
        (
            cc.stale_while_revalidate
                .unwrap_or(0)
                .max(u64::from(policy.stale_while_revalidate_s)),
            cc.stale_if_error
                .unwrap_or(0)
                .max(u64::from(policy.stale_if_error_s)),
        )
    }
}

/// Checks 1 and 2 of [`storability`]: the status and the directives that forbid storing.
/// §5.2.2.3: `must-understand` stores only a status whose rules this cache knows (those
/// cacheable by default), and then overrides `no-store`.
fn prohibited(rule: StatusRule, cc: &CacheControl) -> Option<&'static str> {
    if rule == StatusRule::Never {
        Some("status not cacheable")
    } else if cc.must_understand && rule != StatusRule::ByDefault {
        Some("must-understand")
    } else if cc.no_store && !cc.must_understand {
        Some("no-store")
    } else if cc.private {
        Some("private")
    } else {
        None
    }
}

/// Decides whether a response may be stored, and its freshness and stale windows
/// (RFC 9111 §3, §4.2; RFC 5861). The directives are the response's `CDN-Cache-Control`
/// when it has a valid one (RFC 9213; `Expires` is then ignored too), else its
/// `Cache-Control`. Checks, in order (the first failing one is the reason):
///
/// 1. the status is final and not 206 or 304; one not cacheable by default (RFC 9110
///    §15.1) needs the origin's explicit lifetime (check 7 without the route's `ttl_s`);
/// 2. no `no-store`, no `private` (qualified or not), no `Set-Cookie`;
/// 3. no `Vary: *` (any other `Vary` becomes the entry's secondary key in the adapter);
/// 4. `Content-Length` within `max_object_bytes`;
/// 5. §3.5: a public route's request with `Authorization` stores only a response marked
///    `public`, `s-maxage` or `must-revalidate`;
/// 6. `no-cache` stores only with a validator, with a TTL of 0 (revalidate on every use);
/// 7. freshness: the route's `ttl_s`, else `s-maxage` > `max-age` > `Expires` − `Date` (an
///    invalid `Expires` is already expired, §5.3; no `Date` means now), else for a status
///    cacheable by default a heuristic tenth of `Date` − `Last-Modified` (§4.2.2, at most a
///    day); none → not stored;
/// 8. an object already past its freshness and stale windows on arrival is stored only when
///    it has a validator (it can still be revalidated with a conditional request).
///
/// Stale windows are the larger of the route's and the response's (RFC 5861), except:
/// `must-revalidate`, `proxy-revalidate` and `no-cache` allow no stale use at all (§4.2.4),
/// and `s-maxage` implies `proxy-revalidate` for a shared cache (§5.2.2.10), so only the
/// origin's own explicit `stale-*` directives apply then.
///
/// The initial age is the `Age` header (§5.1; malformed ones are ignored). The apparent age
/// from `Date` is not added: edge and origins are one service, `Date` has one-second
/// resolution, and a skewed origin clock would silently shorten every TTL.
pub fn storability(
    status: u16,
    response_headers: &[(&str, &str)],
    policy: &CachePolicy,
    request_had_authorization: bool,
    now_s: u64,
) -> Storable {
    let rule = status_rule(status);
    // RFC 9213: a valid `CDN-Cache-Control` replaces `Cache-Control` and `Expires` here.
    let cdn = cdn_cache_control(response_headers);
    let cc = cdn.unwrap_or_else(|| CacheControl::from_headers(response_headers));
    if let Some(reason) = prohibited(rule, &cc) {
        return Storable::No(reason);
    }
    let mut facts = ResponseFacts::scan(response_headers, policy);
    if cdn.is_some() {
        facts.expires = None;
    }
    if let Some(reason) = facts.refusal() {
        return Storable::No(reason);
    }
    let shareable = policy.mode == CacheMode::PerUser
        || cc.public
        || cc.s_maxage.is_some()
        || cc.must_revalidate;
    if policy.mode == CacheMode::Public && request_had_authorization && !shareable {
        return Storable::No("authorization without public");
    }
    if cc.no_cache && !facts.validator {
        return Storable::No("no-cache without validator");
    }
    let Some(lifetime) = freshness_lifetime(rule, &cc, policy, &facts, now_s) else {
        let reason = match rule {
            StatusRule::Explicit => "status not cacheable",
            _ => "no freshness information",
        };
        return Storable::No(reason);
    };
    let (swr, sie) = stale_windows(&cc, policy);
    // §5.1: of an `Age` list (or several lines), the first value counts.
    let first_age = facts.age.and_then(|a| a.split(',').next());
    let age = first_age.and_then(|a| delta_seconds(a.trim())).unwrap_or(0);
    if age >= lifetime.saturating_add(swr.max(sie)) && !facts.validator {
        return Storable::No("stale on arrival");
    }
    Storable::Yes {
        ttl_s: lifetime,
        stale_while_revalidate_s: swr,
        stale_if_error_s: sie,
        initial_age_s: age,
        shareable_with_authorization: shareable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::freshness::{freshness, Freshness};
    use crate::cache::tests::{policy, public, store, yes};

    #[test]
    fn s_maxage_beats_max_age_beats_expires() {
        let date = "Sun, 06 Nov 1994 08:49:37 GMT";
        let expires = "Sun, 06 Nov 1994 08:59:37 GMT";
        let h = [
            ("cache-control", "max-age=60, s-maxage=120"),
            ("date", date),
            ("expires", expires),
        ];
        assert_eq!(yes(store(&h)).0, 120);
        let h = [
            ("cache-control", "max-age=60"),
            ("date", date),
            ("expires", expires),
        ];
        assert_eq!(yes(store(&h)).0, 60);
        let h = [("date", date), ("expires", expires)];
        assert_eq!(yes(store(&h)).0, 600);
        // The route's fixed TTL beats them all.
        let p = policy(r#"{"mode":"public","ttl_s":5}"#);
        let h = [("cache-control", "s-maxage=120")];
        assert_eq!(yes(storability(200, &h, &p, false, 0)).0, 5);
        // ... and makes a header-less response storable.
        assert_eq!(yes(storability(200, &[], &p, false, 0)).0, 5);
    }

    #[test]
    fn expires_date_math() {
        let now = parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        // No Date: counted from now.
        let h = [("Expires", "Sun, 06 Nov 1994 08:50:37 GMT")];
        assert_eq!(yes(storability(200, &h, &public(), false, now)).0, 60);
        // Date from the origin's clock, not ours.
        let h = [
            ("Expires", "Sun, 06 Nov 1994 08:50:37 GMT"),
            ("Date", "Sun, 06 Nov 1994 08:50:07 GMT"),
        ];
        assert_eq!(yes(storability(200, &h, &public(), false, now)).0, 30);
        // Expires in the past, or invalid ("0"): already expired, not worth storing...
        for exp in ["Sun, 06 Nov 1994 08:00:00 GMT", "0", "garbage"] {
            let h = [("Expires", exp), ("Date", "Sun, 06 Nov 1994 08:49:37 GMT")];
            assert_eq!(
                storability(200, &h, &public(), false, now),
                Storable::No("stale on arrival"),
                "{exp}"
            );
        }
        // ... unless it can be revalidated, or served stale.
        let h = [("Expires", "0"), ("ETag", "\"v1\"")];
        assert_eq!(yes(storability(200, &h, &public(), false, now)).0, 0);
        let p = policy(r#"{"mode":"public","stale_if_error_s":60}"#);
        let h = [("Expires", "0")];
        assert_eq!(
            yes(storability(200, &h, &p, false, now)),
            (0, 0, 60, 0, false)
        );
        // An invalid Date falls back to now.
        let h = [
            ("Expires", "Sun, 06 Nov 1994 08:50:37 GMT"),
            ("Date", "yesterday"),
        ];
        assert_eq!(yes(storability(200, &h, &public(), false, now)).0, 60);
    }

    #[test]
    fn private_no_store_set_cookie_never_stored() {
        let p = policy(r#"{"mode":"per_user","ttl_s":60}"#);
        for (h, reason) in [
            (vec![("cache-control", "no-store, max-age=60")], "no-store"),
            (vec![("Cache-Control", "max-age=60, PRIVATE")], "private"),
            (
                vec![("cache-control", r#"private="x-secret", max-age=60"#)],
                "private",
            ),
            (
                vec![
                    ("cache-control", "public, max-age=60"),
                    ("Set-Cookie", "s=1"),
                ],
                "set-cookie",
            ),
            (
                vec![
                    ("cache-control", "max-age=60"),
                    ("cache-control", "no-store"),
                ],
                "no-store",
            ),
        ] {
            assert_eq!(store(&h), Storable::No(reason));
            // Not with a fixed TTL, not per user either.
            assert_eq!(storability(200, &h, &p, true, 0), Storable::No(reason));
        }
    }

    #[test]
    fn status_vary_and_size_rules() {
        let ok = [("cache-control", "max-age=60")];
        for s in [200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501] {
            assert!(matches!(
                storability(s, &ok, &public(), false, 0),
                Storable::Yes { .. }
            ));
        }
        // Any other final status only with the origin's explicit lifetime (RFC 9111 §3):
        // `max-age`, `s-maxage` or `Expires`, never the route's `ttl_s`.
        let fixed = CachePolicy {
            ttl_s: Some(300),
            ..public()
        };
        for s in [201, 299, 302, 307, 400, 401, 403, 429, 500, 502, 503, 599] {
            let got = storability(s, &ok, &public(), false, 0);
            assert!(
                matches!(got, Storable::Yes { ttl_s: 60, .. }),
                "{s}: {got:?}"
            );
            let got = storability(s, &ok, &fixed, false, 0);
            assert!(
                matches!(got, Storable::Yes { ttl_s: 60, .. }),
                "{s}: {got:?}"
            );
            assert_eq!(
                storability(s, &[], &fixed, false, 0),
                Storable::No("status not cacheable"),
                "{s}"
            );
        }
        for s in [0, 100, 199, 206, 304, 600, 999] {
            assert_eq!(
                storability(s, &ok, &public(), false, 0),
                Storable::No("status not cacheable"),
                "{s}"
            );
        }
        assert_eq!(
            store(&[("cache-control", "max-age=60"), ("vary", "accept, *")]),
            Storable::No("vary *")
        );
        // Any other `Vary` is the entry's secondary key (RFC 9111 §4.1), kept by the adapter.
        assert!(matches!(
            store(&[("cache-control", "max-age=60"), ("vary", "Accept-Language")]),
            Storable::Yes { .. }
        ));
        let p = policy(r#"{"mode":"public","vary":["accept-language","flags"]}"#);
        let h = [
            ("cache-control", "max-age=60"),
            ("Vary", "Accept-Language, Fastgate-Flags"),
            ("vary", ""),
        ];
        assert!(matches!(
            storability(200, &h, &p, false, 0),
            Storable::Yes { .. }
        ));
        let p = policy(r#"{"mode":"public","max_object_bytes":100}"#);
        let h = |len| [("cache-control", "max-age=60"), ("content-length", len)];
        assert!(matches!(
            storability(200, &h("100"), &p, false, 0),
            Storable::Yes { .. }
        ));
        assert_eq!(
            storability(200, &h("101"), &p, false, 0),
            Storable::No("too large")
        );
        // Malformed lengths are left to the adapter's body check.
        assert!(matches!(
            storability(200, &h("lots"), &p, false, 0),
            Storable::Yes { .. }
        ));
        assert!(p.admits_size(100) && !p.admits_size(101));
        assert_eq!(store(&[]), Storable::No("no freshness information"));
        assert_eq!(
            store(&[("cache-control", "public")]),
            Storable::No("no freshness information")
        );
    }

    #[test]
    fn authorization_rule_in_public_mode() {
        let p = public();
        let plain = [("cache-control", "max-age=60")];
        assert_eq!(
            storability(200, &plain, &p, true, 0),
            Storable::No("authorization without public")
        );
        // Without Authorization it stores, but is not shareable with authorized requests.
        assert!(!yes(storability(200, &plain, &p, false, 0)).4);
        for cc in [
            "public, max-age=60",
            "s-maxage=60",
            "max-age=60, must-revalidate",
        ] {
            let h = [("cache-control", cc)];
            let got = yes(storability(200, &h, &p, true, 0));
            assert!(got.4, "{cc}");
        }
        // A fixed TTL does not lift §3.5.
        let fixed = policy(r#"{"mode":"public","ttl_s":60}"#);
        assert_eq!(
            storability(200, &[], &fixed, true, 0),
            Storable::No("authorization without public")
        );
        // Per-user: the partition is the user; Authorization is expected.
        let pu = policy(r#"{"mode":"per_user","ttl_s":60}"#);
        assert_eq!(
            yes(storability(200, &[], &pu, true, 0)),
            (60, 0, 0, 0, true)
        );
    }

    #[test]
    fn no_cache_needs_a_validator_and_stores_with_ttl_zero() {
        assert_eq!(
            store(&[("cache-control", "no-cache, max-age=60")]),
            Storable::No("no-cache without validator")
        );
        let p = policy(r#"{"mode":"public","ttl_s":60,"stale_if_error_s":60}"#);
        for v in [
            ("etag", "\"abc\""),
            ("Last-Modified", "Sun, 06 Nov 1994 08:49:37 GMT"),
        ] {
            let h = [("cache-control", "no-cache"), v];
            assert_eq!(yes(storability(200, &h, &p, false, 0)), (0, 0, 0, 0, false));
        }
        let h = [("cache-control", "no-cache"), ("etag", " ")];
        assert_eq!(
            storability(200, &h, &p, false, 0),
            Storable::No("no-cache without validator")
        );
    }

    #[test]
    fn stale_windows() {
        let p = policy(r#"{"mode":"public","stale_while_revalidate_s":30,"stale_if_error_s":300}"#);
        let w = |cc: &str| {
            let s = yes(storability(200, &[("cache-control", cc)], &p, false, 0));
            (s.1, s.2)
        };
        // The larger of route and response.
        assert_eq!(w("max-age=60"), (30, 300));
        assert_eq!(
            w("max-age=60, stale-while-revalidate=90, stale-if-error=10"),
            (90, 300)
        );
        // Explicit prohibitions win over the route.
        assert_eq!(w("max-age=60, must-revalidate, stale-if-error=99"), (0, 0));
        assert_eq!(w("max-age=60, proxy-revalidate"), (0, 0));
        // s-maxage implies proxy-revalidate: only the origin's own stale-* apply.
        assert_eq!(w("s-maxage=60"), (0, 0));
        assert_eq!(w("s-maxage=60, stale-while-revalidate=5"), (5, 0));
    }

    #[test]
    fn initial_age() {
        let h = |age| [("cache-control", "max-age=60"), ("age", age)];
        assert_eq!(yes(store(&h("10"))).3, 10);
        assert_eq!(yes(store(&h(" 7 "))).3, 7);
        assert_eq!(yes(store(&h("7, 0"))).3, 7, "the first of a list counts");
        for bad in ["-1", "ten", "", "1.5"] {
            assert_eq!(yes(store(&h(bad))).3, 0, "{bad:?}");
        }
        // Older than its lifetime and windows, no validator: not worth storing.
        assert_eq!(store(&h("60")), Storable::No("stale on arrival"));
        // Within a stale window: stored already stale.
        let p = policy(r#"{"mode":"public","stale_if_error_s":100}"#);
        let s = yes(storability(200, &h("90"), &p, false, 0));
        assert_eq!((s.0, s.3), (60, 90));
        assert!(matches!(
            freshness(s.3, s.0, s.1, s.2),
            Freshness::StaleIfError { ttl_left_s: -30 }
        ));
        // With a validator: kept for conditional revalidation.
        let h = [
            ("cache-control", "max-age=60"),
            ("age", "999"),
            ("etag", "\"e\""),
        ];
        assert_eq!(yes(store(&h)).3, 999);
    }

    #[test]
    fn cdn_cache_control_replaces_cache_control_and_expires() {
        let now = 1_000_000;
        let future = "Thu, 01 Jan 2099 00:00:00 GMT";
        // A long CDN lifetime beats a short or forbidding Cache-Control …
        for cc in ["max-age=1", "no-store", "private"] {
            let h = [("cache-control", cc), ("cdn-cache-control", "max-age=3600")];
            assert_eq!(
                yes(storability(200, &h, &public(), false, now)).0,
                3600,
                "{cc}"
            );
        }
        // … and its own refusals beat a permissive one, `Expires` included.
        for cdn in ["private", "no-store"] {
            let h = [
                ("cache-control", "max-age=10000"),
                ("expires", future),
                ("cdn-cache-control", cdn),
            ];
            assert!(matches!(
                storability(200, &h, &public(), false, now),
                Storable::No(_)
            ));
        }
        let h = [("cdn-cache-control", "max-age=0"), ("expires", future)];
        assert_eq!(
            storability(200, &h, &public(), false, now),
            Storable::No("stale on arrival")
        );
        // An invalid one is ignored: Cache-Control decides.
        let h = [
            ("cache-control", "no-store"),
            ("cdn-cache-control", "max-age=\"1\""),
        ];
        assert_eq!(
            storability(200, &h, &public(), false, now),
            Storable::No("no-store")
        );
    }

    #[test]
    fn heuristic_freshness_is_a_tenth_of_the_last_modified_age() {
        let date = "Sun, 06 Nov 1994 08:49:37 GMT";
        let day_before = "Sat, 05 Nov 1994 08:49:37 GMT";
        let h = [("Date", date), ("Last-Modified", day_before)];
        assert_eq!(yes(storability(200, &h, &public(), false, 0)).0, 8_640);
        // Only for statuses cacheable by default, and at most a day.
        assert_eq!(
            storability(500, &h, &public(), false, 0),
            Storable::No("status not cacheable")
        );
        let long_ago = [
            ("Date", date),
            ("Last-Modified", "Sat, 01 Jan 1980 00:00:00 GMT"),
        ];
        assert_eq!(
            yes(storability(404, &long_ago, &public(), false, 0)).0,
            86_400
        );
        // Explicit freshness, and an invalid Last-Modified, leave no room for it.
        let explicit = [
            ("Last-Modified", day_before),
            ("cache-control", "max-age=5"),
        ];
        assert_eq!(yes(storability(200, &explicit, &public(), false, 0)).0, 5);
        assert_eq!(
            storability(200, &[("Last-Modified", "yesterday")], &public(), false, 0),
            Storable::No("no freshness information")
        );
    }

    #[test]
    fn must_understand_stores_only_known_statuses_and_overrides_no_store() {
        let h = [("cache-control", "max-age=60, no-store, must-understand")];
        assert_eq!(yes(storability(200, &h, &public(), false, 0)).0, 60);
        for status in [299, 500, 599] {
            assert_eq!(
                storability(status, &h, &public(), false, 0),
                Storable::No("must-understand"),
                "{status}"
            );
        }
        let plain = [("cache-control", "max-age=60, no-store")];
        assert_eq!(
            storability(200, &plain, &public(), false, 0),
            Storable::No("no-store")
        );
    }
}
