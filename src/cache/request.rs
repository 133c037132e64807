//! The request side: may this request use the cache, and may a stored entry answer it? A
//! client can ask for freshness (`no-cache`) or opt out (`no-store`), but never for more
//! staleness than the route allows, and credentials decide which entries it may see.

use super::cache_control::{delta_seconds, each_directive, CacheControl};
use super::freshness::Freshness;
use super::policy::CacheMode;

/// RFC 9211 `fwd` values: why a request went forward to the origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fwd {
    /// The cache was configured not to handle this request (route not cacheable, `no-store`).
    Bypass,
    /// The method's semantics require forwarding (anything but GET/HEAD).
    Method,
    /// Nothing was stored under the key.
    UriMiss,
    /// Something was stored under the URL but a vary input did not match.
    VaryMiss,
    /// Something was stored but could not be used (e.g. expired, not shareable).
    Miss,
    /// The request asked for a fresh response (`no-cache`, `max-age=0`).
    Request,
    /// A stored response was stale and went forward for revalidation.
    Stale,
}

impl Fwd {
    /// The token RFC 9211 writes for it.
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Fwd::Bypass => "bypass",
            Fwd::Method => "method",
            Fwd::UriMiss => "uri-miss",
            Fwd::VaryMiss => "vary-miss",
            Fwd::Miss => "miss",
            Fwd::Request => "request",
            Fwd::Stale => "stale",
        }
    }
}

/// How a request may use the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// Look up; serve a usable hit; store what a miss brings back.
    /// `needs_shareable`: a public route received `Authorization`, so only a stored response
    /// with `shareable_with_authorization` may answer it (RFC 9111 §3.5); any other entry is
    /// a miss.
    Use { needs_shareable: bool },
    /// The client asked for a fresh response (`no-cache` or `max-age=0`, §5.2.1.4/§5.2.1.1):
    /// never answer from the cache without revalidating, but a conditional request from the
    /// stored validator is fine, and the response may be stored (`fwd=request`).
    Revalidate { needs_shareable: bool },
    /// Do not look up or store.
    Bypass { fwd: Fwd, reason: &'static str },
}

impl Lookup {
    /// Whether the origin's response may be offered to
    /// [`storability`](super::storability()).
    pub fn may_store(&self) -> bool {
        !matches!(self, Lookup::Bypass { .. })
    }
}

/// Decides how a request uses the cache (RFC 9111 §3.5, §5.2.1).
///
/// - Only GET and HEAD (§2: other methods' responses are not reusable for them here).
/// - `no-store` bypasses (§5.2.1.5); `no-cache` or `max-age=0` forces revalidation. The
///   other directives apply to a found copy ([`RequestDirectives`]).
/// - `per_user` without `Authorization` has no subject to partition by, so it bypasses: an
///   anonymous caller never shares an entry with anyone by accident.
/// - `public` with `Authorization` may use the cache, but only entries the origin marked as
///   shareable (§3.5), and stores only such responses (see
///   [`storability`](super::storability())).
pub fn request_cacheability(
    method: &str,
    has_authorization: bool,
    mode: CacheMode,
    request_cache_control: Option<&str>,
) -> Lookup {
    if method != "GET" && method != "HEAD" {
        return Lookup::Bypass {
            fwd: Fwd::Method,
            reason: "method is not GET or HEAD",
        };
    }
    if mode == CacheMode::PerUser && !has_authorization {
        return Lookup::Bypass {
            fwd: Fwd::Bypass,
            reason: "per-user route without credentials",
        };
    }
    let cc = CacheControl::parse(request_cache_control.unwrap_or_default());
    if cc.no_store {
        return Lookup::Bypass {
            fwd: Fwd::Bypass,
            reason: "request no-store",
        };
    }
    let needs_shareable = mode == CacheMode::Public && has_authorization;
    if cc.no_cache || cc.max_age == Some(0) {
        Lookup::Revalidate { needs_shareable }
    } else {
        Lookup::Use { needs_shareable }
    }
}

/// What a request's own directives ask of a stored copy (RFC 9111 §5.2.1): `max-age` (no
/// older than that), `min-fresh` (still fresh for at least that long), `only-if-cached` (the
/// origin must not be asked: 504 without a copy). They only make the cache stricter.
/// `max-stale` is not honoured: it permits serving staler copies (§5.2.1.2, a cache MAY),
/// and an API edge keeps to the route's and the origin's stale windows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestDirectives {
    pub max_age: Option<u64>,
    pub min_fresh: Option<u64>,
    pub only_if_cached: bool,
}

impl RequestDirectives {
    /// Reads a request's `Cache-Control` (tolerantly; a malformed argument reads as 0, the
    /// strictest value).
    pub fn parse(value: Option<&str>) -> Self {
        let mut d = RequestDirectives::default();
        each_directive(value.unwrap_or_default(), |name, arg| {
            let delta = || Some(arg.and_then(delta_seconds).unwrap_or(0));
            if name.eq_ignore_ascii_case("max-age") && d.max_age.is_none() {
                d.max_age = delta();
            } else if name.eq_ignore_ascii_case("min-fresh") && d.min_fresh.is_none() {
                d.min_fresh = delta();
            } else if name.eq_ignore_ascii_case("only-if-cached") {
                d.only_if_cached = true;
            }
        });
        d
    }

    /// The copy's state for this request: one older than the request's `max-age`, or with
    /// less freshness left than its `min-fresh`, may not be served as it is (it is
    /// revalidated, like an expired one).
    pub fn judge(&self, age_s: u64, freshness: Freshness) -> Freshness {
        let servable = matches!(
            freshness,
            Freshness::Fresh { .. } | Freshness::StaleServable { .. }
        );
        let ttl_left_s = freshness.ttl_left_s();
        let too_old = self.max_age.is_some_and(|max| age_s > max);
        let too_close = self
            .min_fresh
            .is_some_and(|min| ttl_left_s < i64::try_from(min).unwrap_or(i64::MAX));
        if servable && (too_old || too_close) {
            Freshness::Expired { ttl_left_s }
        } else {
            freshness
        }
    }
}

/// Whether a stored entry may answer a request (§3.5): always for `per_user` (the partition
/// is the user), and in `public` mode either the request has no `Authorization` or the entry
/// is marked shareable with authorized requests.
pub fn may_serve(lookup: Lookup, entry_shareable_with_authorization: bool) -> bool {
    match lookup {
        Lookup::Use { needs_shareable } => !needs_shareable || entry_shareable_with_authorization,
        Lookup::Revalidate { .. } | Lookup::Bypass { .. } => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_side_rules() {
        use CacheMode::*;
        let use_ = |n| Lookup::Use { needs_shareable: n };
        assert_eq!(
            request_cacheability("GET", false, Public, None),
            use_(false)
        );
        assert_eq!(
            request_cacheability("HEAD", false, Public, None),
            use_(false)
        );
        for m in ["POST", "PUT", "PATCH", "DELETE", "OPTIONS", "get"] {
            assert!(matches!(
                request_cacheability(m, false, Public, None),
                Lookup::Bypass {
                    fwd: Fwd::Method,
                    ..
                }
            ));
        }
        assert!(matches!(
            request_cacheability("GET", false, Public, Some("max-age=5, No-Store")),
            Lookup::Bypass {
                fwd: Fwd::Bypass,
                ..
            }
        ));
        assert_eq!(
            request_cacheability("GET", false, Public, Some("no-cache")),
            Lookup::Revalidate {
                needs_shareable: false
            }
        );
        assert_eq!(
            request_cacheability("GET", true, Public, Some("max-age=0")),
            Lookup::Revalidate {
                needs_shareable: true
            }
        );
        assert_eq!(
            request_cacheability("GET", false, Public, Some("max-age=10, max-stale")),
            use_(false)
        );
        // Public + Authorization: only shareable entries.
        let l = request_cacheability("GET", true, Public, None);
        assert_eq!(l, use_(true));
        assert!(!may_serve(l, false));
        assert!(may_serve(l, true));
        assert!(may_serve(use_(false), false));
        // Per-user needs credentials; with them every entry (its own partition) serves.
        assert!(matches!(
            request_cacheability("GET", false, PerUser, None),
            Lookup::Bypass {
                fwd: Fwd::Bypass,
                ..
            }
        ));
        let l = request_cacheability("GET", true, PerUser, None);
        assert_eq!(l, use_(false));
        assert!(may_serve(l, false));
        assert!(!may_serve(
            Lookup::Revalidate {
                needs_shareable: false
            },
            true
        ));
        assert!(l.may_store());
        assert!(!request_cacheability("POST", true, PerUser, None).may_store());
    }

    #[test]
    fn request_directives_only_make_the_cache_stricter() {
        let d = RequestDirectives::parse(Some("max-age=60, min-fresh=10, only-if-cached"));
        assert_eq!(
            d,
            RequestDirectives {
                max_age: Some(60),
                min_fresh: Some(10),
                only_if_cached: true
            }
        );
        assert_eq!(RequestDirectives::parse(None), RequestDirectives::default());
        assert_eq!(RequestDirectives::parse(Some("max-age=x")).max_age, Some(0));
        let fresh = |left| Freshness::Fresh { ttl_left_s: left };
        let expired = |left| Freshness::Expired { ttl_left_s: left };
        let max_age = RequestDirectives::parse(Some("max-age=60"));
        assert_eq!(max_age.judge(30, fresh(100)), fresh(100));
        assert_eq!(max_age.judge(61, fresh(100)), expired(100));
        let stale = Freshness::StaleServable { ttl_left_s: -5 };
        assert_eq!(max_age.judge(90, stale), expired(-5));
        let min_fresh = RequestDirectives::parse(Some("min-fresh=20"));
        assert_eq!(min_fresh.judge(0, fresh(30)), fresh(30));
        assert_eq!(min_fresh.judge(0, fresh(10)), expired(10));
        assert_eq!(min_fresh.judge(0, stale), expired(-5));
        // max-stale never extends what is served.
        let max_stale = RequestDirectives::parse(Some("max-stale=3600"));
        let beyond = Freshness::StaleIfError { ttl_left_s: -100 };
        assert_eq!(max_stale.judge(500, beyond), beyond);
        assert_eq!(max_stale, RequestDirectives::default());
    }
}
