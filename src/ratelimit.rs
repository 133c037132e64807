//! Rate-limit policy: the pure parts. The counters live in the adapter (Fastly ERL in
//! production, a fixed-window counter on the Core Cache locally); this module says what to
//! count under which key, whether a count is over the limit, and what to tell the client.
//!
//! - Windows are fixed and aligned to the epoch ([`window`]), so every POP and every Wasm
//!   instance agrees on where a window starts without sharing any state.
//! - A limit counts per **group** ([`RateLimitSpec::group`], the route id unless the config
//!   names one): an alias such as `/v1/auth/login` names the group of the route it rewrites
//!   to, so both paths share one counter and one penalty box. The config refuses a group
//!   whose routes disagree on the limit (a group is one counter).
//! - Keys ([`key`]) are cache-safe: everything a client controls (subject, header value, email)
//!   is SHA-256-hashed to hex, and prefixed with the group and the window length, so two
//!   groups or two window sizes never share a counter.
//! - The client is its IPv4 address or its IPv6 **/64** ([`client_net`]): one subscriber
//!   gets a whole /64 and picks any address in it, so a /128 key would let one client mint
//!   unlimited counters. An IPv4-mapped IPv6 address counts as the IPv4 it maps.
//! - A subject-, header- or login-keyed spec **falls back to the client IP** when its source is
//!   absent (an anonymous request, a missing header, a body without an email): omitting the
//!   header must never be a way around the limit. The fallback is keyed as `ip`, so it shares
//!   the counter of an IP-keyed limit on the same group and window but never a subject's.
//!   [`key`] is `None` only when there is no IP either; the caller then admits the request
//!   (fail open: limiting everyone under one shared key would be an outage).
//! - The login key ([`login_key`], in `login.rs`) reads the body's email the way the origin
//!   does and counts the account's canonical email (the contract crate's), so no spelling of
//!   one account gets a fresh counter.
//! - Over the limit, an optional penalty box refuses the key for `penalty_s` seconds, counted
//!   from the first refused request and not extended by further ones.
//! - Response headers follow draft-ietf-httpapi-ratelimit-headers-08+, naming the group:
//!   `RateLimit-Policy: "api";q=10;w=1` and `RateLimit: "api";r=3;t=1`, plus `Retry-After`
//!   when refused.

mod login;

use std::fmt::{self, Write as _};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::config::FieldError;
use crate::http::{is_token, sf_string};

/// The window lengths a spec may use, in seconds (those Fastly ERL supports).
pub const WINDOWS_S: [u32; 3] = [1, 10, 60];
/// The longest penalty a spec may ask for: a day.
pub const MAX_PENALTY_S: u32 = 86_400;
/// The longest group name (it is part of every counter key).
pub const MAX_GROUP_LEN: usize = 64;

pub use login::{body_email, login_key, MAX_LOGIN_BODY};

/// What identifies "one client" for a limit.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum LimitKey {
    /// The verified token subject (falls back to the IP when anonymous).
    Subject,
    /// The client IP.
    Ip,
    /// A request header's value, name stored lower-case (falls back to the IP when absent).
    Header(String),
    /// Brute-force protection: the client + SHA-256 of the canonical email in the JSON body
    /// (see [`login_key`]).
    Login,
}

/// A `key` string that is none of `subject`, `ip`, `login`, `header:<name>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rate-limit key `{0}` is not `subject`, `ip`, `login` or `header:<name>`")]
pub struct BadLimitKey(pub String);

impl TryFrom<String> for LimitKey {
    type Error = BadLimitKey;

    fn try_from(s: String) -> Result<Self, BadLimitKey> {
        match s.as_str() {
            "subject" => Ok(LimitKey::Subject),
            "ip" => Ok(LimitKey::Ip),
            "login" => Ok(LimitKey::Login),
            other => match other.strip_prefix("header:") {
                Some(name) if is_token(name) => Ok(LimitKey::Header(name.to_ascii_lowercase())),
                _ => Err(BadLimitKey(s)),
            },
        }
    }
}

/// A route's rate limit as written in the config.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSpec {
    /// `"subject"`, `"ip"`, `"header:<name>"` or `"login"`.
    pub key: LimitKey,
    /// Requests admitted per window (> 0).
    pub limit: u32,
    /// Window length in seconds: 1, 10 or 60.
    pub window_s: u32,
    /// Once over the limit, refuse the key for this long (1..=86400 s).
    #[serde(default)]
    pub penalty_s: Option<u32>,
    /// The counter this route counts against, shared by every route naming it (an alias
    /// names its target's group); absent: the route's id. `[A-Za-z0-9_.-]`, at most 64.
    #[serde(default)]
    pub group: Option<String>,
}

impl RateLimitSpec {
    /// The group this spec counts against on the route `route_id`.
    pub fn group<'a>(&'a self, route_id: &'a str) -> &'a str {
        self.group.as_deref().unwrap_or(route_id)
    }

    /// True when two routes' specs may share a group: everything but the group's name
    /// agrees, so the one counter has one meaning.
    pub fn same_limit(&self, other: &RateLimitSpec) -> bool {
        (&self.key, self.limit, self.window_s, self.penalty_s)
            == (&other.key, other.limit, other.window_s, other.penalty_s)
    }

    /// Field-level validation, the field relative to the spec.
    pub fn validate(&self) -> Result<(), FieldError> {
        if let Some(group) = &self.group {
            if !is_group_name(group) {
                return Err(FieldError::new(
                    "group",
                    format!("`{group}`: 1 to {MAX_GROUP_LEN} of `A-Z a-z 0-9 _ . -`"),
                ));
            }
        }
        if self.limit == 0 {
            return Err(FieldError::new("limit", "must be positive"));
        }
        if !WINDOWS_S.contains(&self.window_s) {
            return Err(FieldError::new(
                "window_s",
                format!("{} is not one of 1, 10, 60", self.window_s),
            ));
        }
        match self.penalty_s {
            Some(0) => Err(FieldError::new(
                "penalty_s",
                "must be positive (omit it for no penalty box)",
            )),
            Some(p) if p > MAX_PENALTY_S => Err(FieldError::new(
                "penalty_s",
                format!("at most {MAX_PENALTY_S} (a day)"),
            )),
            _ => Ok(()),
        }
    }
}

/// Lower-case hex of SHA-256, written into `out`.
fn push_sha256_hex(out: &mut String, data: &[u8]) {
    for b in Sha256::digest(data) {
        let _ = write!(out, "{b:02x}");
    }
}

/// A name that can appear in a counter key as it is (and in a header, quoted).
fn is_group_name(s: &str) -> bool {
    (1..=MAX_GROUP_LEN).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// The client a limit counts: an IPv4 address, or an IPv6 address's /64 network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientNet {
    V4(Ipv4Addr),
    /// The network: the low 64 bits are zero.
    V6Net64(Ipv6Addr),
}

/// The client as a limit sees it (see the module docs): IPv4 as is, IPv4-mapped IPv6
/// (`::ffff:a.b.c.d`) as its IPv4, any other IPv6 address as its /64.
pub fn client_net(ip: IpAddr) -> ClientNet {
    match ip {
        IpAddr::V4(v4) => ClientNet::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => ClientNet::V4(v4),
            None => ClientNet::V6Net64(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
        },
    }
}

/// `198.51.100.7`, or `2001:db8:1:2::/64`.
impl fmt::Display for ClientNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientNet::V4(v4) => write!(f, "{v4}"),
            ClientNet::V6Net64(net) => write!(f, "{net}/64"),
        }
    }
}

/// The counter key for one client of one group's limit:
/// `rl:<group>:<window_s>:<sub|ip|hdr|login>:<sha256 hex>`, the group being
/// [`RateLimitSpec::group`] on the route `route_id`, and an `ip` client its [`client_net`].
///
/// `header_value` is the configured header's value for a `header:<name>` spec, and the output
/// of [`login_key`] for a `login` spec; it is ignored otherwise. A group (a route id) made of
/// anything but `[A-Za-z0-9_.-]` is itself hashed, so the key stays unambiguous and printable.
pub fn key(
    spec: &RateLimitSpec,
    route_id: &str,
    subject: Option<&str>,
    ip: Option<IpAddr>,
    header_value: Option<&str>,
) -> Option<String> {
    let primary = match &spec.key {
        LimitKey::Subject => subject.map(|s| ("sub", s)),
        LimitKey::Ip => None,
        LimitKey::Header(_) => header_value.map(|v| ("hdr", v)),
        LimitKey::Login => header_value.map(|v| ("login", v)),
    }
    .filter(|(_, v)| !v.is_empty());
    let mut ip_text = String::new();
    let (kind, material) = match primary {
        Some(p) => p,
        None => {
            let _ = write!(ip_text, "{}", client_net(ip?));
            ("ip", ip_text.as_str())
        }
    };
    let group = spec.group(route_id);
    let mut out = String::with_capacity(3 + group.len().min(64) + 8 + 6 + 64);
    out.push_str("rl:");
    if is_group_name(group) {
        out.push_str(group);
    } else {
        out.push('~');
        push_sha256_hex(&mut out, group.as_bytes());
    }
    let _ = write!(out, ":{}:{kind}:", spec.window_s);
    push_sha256_hex(&mut out, material.as_bytes());
    Some(out)
}

/// The key of one window's counter: `<key>:<window_start_ms>`.
pub fn counter_key(key: &str, window_start_ms: u64) -> String {
    format!("{key}:{window_start_ms}")
}

/// The key of the penalty-box entry, which holds the `penalty_until_ms` deadline.
pub fn penalty_key(key: &str) -> String {
    format!("{key}:penalty")
}

/// The fixed window containing `now_ms`: `(window_start_ms, reset_ms)`, both epoch
/// milliseconds, `reset_ms` being when the next window starts. A `window_s` of 0 (never valid)
/// is treated as 1.
pub fn window(now_ms: u64, window_s: u32) -> (u64, u64) {
    let w = u64::from(window_s.max(1)) * 1000;
    let start = now_ms - now_ms % w;
    (start, start.saturating_add(w))
}

/// Whole seconds from `now_ms` until `until_ms`, rounded up, at least 1.
fn secs_until(now_ms: u64, until_ms: u64) -> u32 {
    let ms = until_ms.saturating_sub(now_ms);
    u32::try_from(ms.div_ceil(1000)).unwrap_or(u32::MAX).max(1)
}

/// What to do with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub allowed: bool,
    /// Requests left in this window after this one.
    pub remaining: u32,
    /// Seconds until the quota is available again (`t=` of `RateLimit`): the window's end, or
    /// when refused, the same as `retry_after_s`.
    pub reset_s: u32,
    /// `Retry-After` when refused.
    pub retry_after_s: Option<u32>,
    /// When set, the adapter stores this deadline under [`penalty_key`] (TTL `penalty_s`).
    pub start_penalty_until_ms: Option<u64>,
}

/// Decides one request. `count` includes this request (the adapter increments first);
/// `penalty_until_ms` is the key's stored penalty deadline, if any.
///
/// Refused requests report the honest wait: in the penalty box, until it ends; over the
/// limit, until the window resets, or the penalty's end if that is later (a penalty shorter
/// than the rest of the window does not let the client in earlier).
pub fn decide(
    spec: &RateLimitSpec,
    count: u32,
    now_ms: u64,
    penalty_until_ms: Option<u64>,
) -> Verdict {
    if let Some(until) = penalty_until_ms.filter(|&u| u > now_ms) {
        let wait = secs_until(now_ms, until);
        return Verdict {
            allowed: false,
            remaining: 0,
            reset_s: wait,
            retry_after_s: Some(wait),
            start_penalty_until_ms: None,
        };
    }
    let (_, reset_ms) = window(now_ms, spec.window_s);
    let reset_s = secs_until(now_ms, reset_ms);
    if count <= spec.limit {
        return Verdict {
            allowed: true,
            remaining: spec.limit - count,
            reset_s,
            retry_after_s: None,
            start_penalty_until_ms: None,
        };
    }
    let penalty = spec
        .penalty_s
        .filter(|&p| p > 0)
        .map(|p| now_ms.saturating_add(u64::from(p) * 1000));
    let wait = match penalty {
        Some(until) => secs_until(now_ms, until).max(reset_s),
        None => reset_s,
    };
    Verdict {
        allowed: false,
        remaining: 0,
        reset_s: wait,
        retry_after_s: Some(wait),
        start_penalty_until_ms: penalty,
    }
}

pub const RATELIMIT_POLICY: &str = "RateLimit-Policy";
pub const RATELIMIT: &str = "RateLimit";
pub const RETRY_AFTER: &str = "Retry-After";

/// The response headers for `verdict` on the route `route_id`; the policy they name is the
/// limit's group ([`RateLimitSpec::group`]), which aliases share.
pub fn headers(
    spec: &RateLimitSpec,
    route_id: &str,
    verdict: &Verdict,
) -> Vec<(&'static str, String)> {
    let name = sf_string(spec.group(route_id));
    let mut out = Vec::with_capacity(3);
    out.push((
        RATELIMIT_POLICY,
        format!("{name};q={};w={}", spec.limit, spec.window_s),
    ));
    out.push((
        RATELIMIT,
        format!("{name};r={};t={}", verdict.remaining, verdict.reset_s),
    ));
    if !verdict.allowed {
        let s = verdict.retry_after_s.unwrap_or(verdict.reset_s).max(1);
        out.push((RETRY_AFTER, s.to_string()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(key: &str, limit: u32, window_s: u32, penalty_s: Option<u32>) -> RateLimitSpec {
        RateLimitSpec {
            key: LimitKey::try_from(key.to_owned()).unwrap(),
            limit,
            window_s,
            penalty_s,
            group: None,
        }
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    fn sha_hex(s: &str) -> String {
        let mut out = String::new();
        push_sha256_hex(&mut out, s.as_bytes());
        out
    }

    #[test]
    fn parses_config_json() {
        let s: RateLimitSpec = serde_json::from_str(
            r#"{"key": "header:X-Api-Key", "limit": 10, "window_s": 1, "penalty_s": 30}"#,
        )
        .unwrap();
        assert_eq!(s.key, LimitKey::Header("x-api-key".into()));
        assert_eq!(s.penalty_s, Some(30));
        s.validate().unwrap();
        let s: RateLimitSpec =
            serde_json::from_str(r#"{"key": "login", "limit": 5, "window_s": 60}"#).unwrap();
        assert_eq!((s.key, s.penalty_s), (LimitKey::Login, None));
        for bad in [
            r#"{"key": "user", "limit": 1, "window_s": 1}"#,
            r#"{"key": "header:", "limit": 1, "window_s": 1}"#,
            r#"{"key": "header:a b", "limit": 1, "window_s": 1}"#,
            r#"{"key": "ip", "limit": 1, "window_s": 1, "burst": 2}"#,
            r#"{"key": "ip", "limit": -1, "window_s": 1}"#,
        ] {
            assert!(serde_json::from_str::<RateLimitSpec>(bad).is_err(), "{bad}");
        }
        let e =
            serde_json::from_str::<RateLimitSpec>(r#"{"key": "user", "limit": 1, "window_s": 1}"#)
                .unwrap_err()
                .to_string();
        assert!(e.contains("`user`"), "{e}");
    }

    #[test]
    fn validate_names_the_field() {
        assert_eq!(
            spec("ip", 0, 1, None).validate().unwrap_err().field,
            "limit"
        );
        for w in [0, 2, 30, 3600] {
            assert_eq!(
                spec("ip", 1, w, None).validate().unwrap_err().field,
                "window_s"
            );
        }
        for w in WINDOWS_S {
            spec("ip", 1, w, Some(1)).validate().unwrap();
        }
        assert_eq!(
            spec("ip", 1, 1, Some(0)).validate().unwrap_err().field,
            "penalty_s"
        );
        assert_eq!(
            spec("ip", 1, 1, Some(86_401)).validate().unwrap_err().field,
            "penalty_s"
        );
    }

    #[test]
    fn fixed_windows_align_to_the_epoch() {
        assert_eq!(window(0, 1), (0, 1000));
        assert_eq!(window(999, 1), (0, 1000));
        assert_eq!(window(1000, 1), (1000, 2000));
        assert_eq!(
            window(1_700_000_012_345, 10),
            (1_700_000_010_000, 1_700_000_020_000)
        );
        assert_eq!(
            window(1_700_000_012_345, 60),
            (1_699_999_980_000, 1_700_000_040_000)
        );
        assert_eq!(window(5_500, 0), (5_000, 6_000));
        assert_eq!(window(u64::MAX, 60).1, u64::MAX);
    }

    #[test]
    fn admits_up_to_the_limit_then_refuses_until_the_window_resets() {
        let s = spec("ip", 10, 10, None);
        let now = 1_700_000_012_345; // window 1_700_000_010_000 .. 020_000
        let v = decide(&s, 1, now, None);
        assert_eq!(
            v,
            Verdict {
                allowed: true,
                remaining: 9,
                reset_s: 8,
                retry_after_s: None,
                start_penalty_until_ms: None
            }
        );
        let v = decide(&s, 10, now, None);
        assert!(v.allowed);
        assert_eq!(v.remaining, 0);
        let v = decide(&s, 11, now, None);
        assert_eq!(
            v,
            Verdict {
                allowed: false,
                remaining: 0,
                reset_s: 8,
                retry_after_s: Some(8),
                start_penalty_until_ms: None
            }
        );
        // A count of 0 (the adapter's counter failed) admits.
        assert!(decide(&s, 0, now, None).allowed);
        // Exactly at a window start the whole window is ahead.
        assert_eq!(decide(&s, 1, 1_700_000_010_000, None).reset_s, 10);
        // One millisecond before the end still says 1 s, never 0.
        assert_eq!(
            decide(&s, 11, 1_700_000_019_999, None).retry_after_s,
            Some(1)
        );
    }

    #[test]
    fn fifty_rapid_requests_over_ten_per_second() {
        let s = spec("ip", 10, 1, None);
        let now = 1_700_000_000_100;
        let refused = (1..=50)
            .filter(|&n| !decide(&s, n, now, None).allowed)
            .count();
        assert_eq!(refused, 40);
        // The next window's first request (count restarts at 1) is admitted again.
        assert!(decide(&s, 1, now + 1000, None).allowed);
    }

    #[test]
    fn penalty_box_refuses_for_its_duration() {
        let s = spec("login", 5, 1, Some(30));
        let now = 1_700_000_000_500;
        let v = decide(&s, 6, now, None);
        assert!(!v.allowed);
        assert_eq!(v.start_penalty_until_ms, Some(now + 30_000));
        assert_eq!(v.retry_after_s, Some(30));
        assert_eq!(v.reset_s, 30);
        // Ten seconds later, in a fresh window with a low count: still in the box.
        let v = decide(&s, 1, now + 10_000, Some(now + 30_000));
        assert!(!v.allowed);
        assert_eq!(v.retry_after_s, Some(20));
        assert_eq!(v.start_penalty_until_ms, None, "the box is not extended");
        // After it ends, admitted again.
        assert!(decide(&s, 1, now + 30_000, Some(now + 30_000)).allowed);
        // A penalty shorter than the window's remainder reports the window's end.
        let s = spec("ip", 5, 60, Some(2));
        let v = decide(&s, 6, 1_699_999_980_000 + 1_000, None);
        assert_eq!(v.retry_after_s, Some(59));
        assert_eq!(v.reset_s, 59);
        // A stale deadline is ignored.
        assert!(decide(&s, 1, 5_000, Some(4_000)).allowed);
    }

    #[test]
    fn header_formats() {
        let s = spec("ip", 10, 1, None);
        let v = decide(&s, 3, 1_700_000_000_250, None);
        assert_eq!(
            headers(&s, "api", &v),
            vec![
                (RATELIMIT_POLICY, "\"api\";q=10;w=1".to_owned()),
                (RATELIMIT, "\"api\";r=7;t=1".to_owned()),
            ]
        );
        let v = decide(&s, 11, 1_700_000_000_250, None);
        assert_eq!(
            headers(&s, "api", &v),
            vec![
                (RATELIMIT_POLICY, "\"api\";q=10;w=1".to_owned()),
                (RATELIMIT, "\"api\";r=0;t=1".to_owned()),
                (RETRY_AFTER, "1".to_owned()),
            ]
        );
        let h = headers(&s, "a\"b\\c\né", &v);
        assert_eq!(h[0].1, r#""a\"b\\c__";q=10;w=1"#);
    }

    #[test]
    fn keys_hash_user_input_and_separate_routes_windows_and_kinds() {
        let s = spec("subject", 10, 60, None);
        let k = key(
            &s,
            "api",
            Some("alice@example.com"),
            ip("203.0.113.9"),
            None,
        )
        .unwrap();
        assert_eq!(k, format!("rl:api:60:sub:{}", sha_hex("alice@example.com")));
        assert!(!k.contains("alice"));
        // Anonymous: falls back to the IP.
        let k = key(&s, "api", None, ip("203.0.113.9"), None).unwrap();
        assert_eq!(k, format!("rl:api:60:ip:{}", sha_hex("203.0.113.9")));
        assert_eq!(
            key(&s, "api", Some(""), ip("203.0.113.9"), None).unwrap(),
            k
        );
        assert_eq!(key(&s, "api", None, None, None), None);
        // A subject that looks like an IP never shares the IP's counter.
        assert_ne!(
            key(&s, "api", Some("203.0.113.9"), ip("203.0.113.9"), None),
            Some(k.clone())
        );
        // IP keys ignore the subject.
        let s_ip = spec("ip", 10, 60, None);
        assert_eq!(
            key(&s_ip, "api", Some("alice"), ip("203.0.113.9"), None).unwrap(),
            k
        );
        // Routes and windows never share counters.
        assert_ne!(
            key(&s_ip, "other", None, ip("203.0.113.9"), None).unwrap(),
            k
        );
        let s10 = spec("ip", 10, 10, None);
        assert_ne!(key(&s10, "api", None, ip("203.0.113.9"), None).unwrap(), k);
        // Header keys, with the IP fallback when the header is missing.
        let s_h = spec("header:x-api-key", 10, 1, None);
        let k = key(&s_h, "api", None, ip("::1"), Some("secret-key")).unwrap();
        assert_eq!(k, format!("rl:api:1:hdr:{}", sha_hex("secret-key")));
        assert!(!k.contains("secret"));
        let k = key(&s_h, "api", None, ip("::1"), None).unwrap();
        assert_eq!(k, format!("rl:api:1:ip:{}", sha_hex("::/64")));
        // A hostile route id is hashed, not spliced in.
        let k = key(&s_ip, "a:b\nc", None, ip("::1"), None).unwrap();
        assert!(
            k.starts_with(&format!("rl:~{}:60:ip:", sha_hex("a:b\nc"))),
            "{k}"
        );
        assert!(k.bytes().all(|b| b.is_ascii_graphic()));
        assert_eq!(counter_key("rl:x", 1000), "rl:x:1000");
        assert_eq!(penalty_key("rl:x"), "rl:x:penalty");
    }

    #[test]
    fn login_key_hashes_the_lower_cased_email_and_never_contains_it() {
        let ip1 = ip("198.51.100.7");
        let a = login_key(
            ip1,
            br#"{"email": "Alice@Example.COM ", "password": "hunter2"}"#,
        );
        assert_eq!(a, format!("198.51.100.7|{}", sha_hex("alice@example.com")));
        assert!(!a.to_lowercase().contains("alice"));
        assert!(!a.contains("hunter2"));
        let b = login_key(ip1, br#"{"password": "x", "email": "alice@example.com"}"#);
        assert_eq!(a, b, "case and field order do not matter");
        assert_ne!(
            a,
            login_key(ip("198.51.100.8"), br#"{"email": "alice@example.com"}"#)
        );
        assert_ne!(a, login_key(ip1, br#"{"email": "bob@example.com"}"#));
        // Garbage shares one per-IP bucket.
        for body in [
            &b""[..],
            b"not json",
            br#"{"email": 5}"#,
            br#"["email"]"#,
            br#"{"email": ""}"#,
        ] {
            assert_eq!(login_key(ip1, body), "198.51.100.7|-");
        }
        let big = format!(
            r#"{{"email": "alice@example.com", "pad": "{}"}}"#,
            "x".repeat(MAX_LOGIN_BODY)
        );
        assert_eq!(login_key(ip1, big.as_bytes()), "198.51.100.7|-");
        assert_eq!(login_key(None, b""), "-|-");
        // Through key(): the final counter key holds neither email nor its plain hash.
        let s = spec("login", 5, 60, Some(300));
        let k = key(&s, "login", None, ip1, Some(&a)).unwrap();
        assert_eq!(k, format!("rl:login:60:login:{}", sha_hex(&a)));
        assert!(!k.contains("alice"));
        // No body material: the IP fallback.
        let k = key(&s, "login", None, ip1, None).unwrap();
        assert!(k.starts_with("rl:login:60:ip:"));
    }

    /// Issue 14, defect 2: every spelling the origin resolves to the victim's account is
    /// the victim's one counter (the old key hashed the trimmed, lower-cased raw value).
    #[test]
    fn login_key_is_one_counter_for_every_spelling_of_the_account() {
        let ip1 = ip("198.51.100.7");
        let victim = login_key(ip1, br#"{"email": "victim@example.com", "password": "x"}"#);
        assert_eq!(
            victim,
            format!("198.51.100.7|{}", sha_hex("victim@example.com"))
        );
        let mut bodies: Vec<String> = (1..=8)
            .map(|n| format!(r#"{{"email": "guess{n} <victim@example.com>", "password": "p{n}"}}"#))
            .collect();
        bodies.extend(
            [
                r#"{"email": "Final Guess <victim@example.com>", "password": "right"}"#,
                r#"{"email": "\u001cvictim@example.com", "password": "x"}"#,
                r#"{"email": "victim@example.com\u001f\u001e\u001d", "password": "x"}"#,
                r#"{"email": "\u001c\u001cGuess <victim@example.com>\u001c", "password": "x"}"#,
                r#"{"email": "\"Quoted, Name\" <Victim@EXAMPLE.com>", "password": "x"}"#,
                r#"{"email": "\u0076ictim\u0040example.com", "password": "x"}"#,
                r#"{"email": "\u2003victim@example.com\u00a0", "password": "x"}"#,
                r#"{"email": "nobody@example.com", "password": "x", "email": "victim@example.com"}"#,
                r#"{"email": "victim@example.com", "password": "x", "pad": NaN}"#,
                r#"{"email": "victim@example.com", "password": "x", "pad": "\udfff"}"#,
                r#"{"email": "victim@example.com", "password": "x", "pad": 1e400}"#,
            ]
            .map(str::to_owned),
        );
        for body in &bodies {
            assert_eq!(login_key(ip1, body.as_bytes()), victim, "{body}");
        }
        // The counter key, through key(): one for all of them, on either login path.
        let s = RateLimitSpec {
            group: Some("login".into()),
            ..spec("login", 5, 60, Some(300))
        };
        let k = key(&s, "v1-login", None, ip1, Some(&victim)).unwrap();
        let plain = spec("login", 5, 60, Some(300));
        assert_eq!(k, key(&plain, "login", None, ip1, Some(&victim)).unwrap());
        // Another account, or the same one from another client, is another counter.
        assert_ne!(
            login_key(ip1, br#"{"email": "guess <other@example.com>"}"#),
            victim
        );
        assert_ne!(
            login_key(ip("198.51.100.8"), br#"{"email": "victim@example.com"}"#),
            victim
        );
        // A body naming no account (the origin refuses it) is the client's one counter.
        for body in [
            &br#"{"email": "Guess <>"}"#[..],
            br#"{"email": "victim@example.com" "#,
            br#"{"email": "victim@example.com\r"}"#,
        ] {
            assert_eq!(login_key(ip1, body), "198.51.100.7|-");
        }
    }

    #[test]
    fn ipv6_clients_count_per_64_and_mapped_ipv4_as_ipv4() {
        let net = |s: &str| client_net(s.parse().unwrap());
        let home = net("2001:db8:1:2::1");
        assert_eq!(home.to_string(), "2001:db8:1:2::/64");
        for same in [
            "2001:db8:1:2::2",
            "2001:db8:1:2:ffff:ffff:ffff:ffff",
            "2001:db8:1:2:1234:5678:9abc:def0",
        ] {
            assert_eq!(net(same), home, "{same}");
        }
        assert_ne!(net("2001:db8:1:3::1"), home);
        assert_eq!(net("::ffff:198.51.100.7"), net("198.51.100.7"));
        assert_eq!(net("198.51.100.7").to_string(), "198.51.100.7");
        assert_eq!(net("::1").to_string(), "::/64");
        // Every kind of key, and the login key, counts the /64.
        let (a, b) = (ip("2001:db8:1:2::1"), ip("2001:db8:1:2:aaaa::99"));
        for kind in ["ip", "subject", "header:x-k", "login"] {
            let s = spec(kind, 10, 1, None);
            assert_eq!(key(&s, "api", None, a, None), key(&s, "api", None, b, None));
            assert_ne!(
                key(&s, "api", None, a, None),
                key(&s, "api", None, ip("2001:db8:1:3::1"), None)
            );
        }
        let body = br#"{"email": "victim@example.com"}"#;
        assert_eq!(login_key(a, body), login_key(b, body));
        assert_eq!(
            login_key(ip("::ffff:198.51.100.7"), body),
            login_key(ip("198.51.100.7"), body)
        );
    }

    #[test]
    fn a_group_is_one_counter_one_penalty_box_and_one_policy_name() {
        let api = spec("subject", 50, 1, None);
        let alias = RateLimitSpec {
            group: Some("api".into()),
            ..api.clone()
        };
        assert_eq!(api.group("api"), "api");
        assert_eq!(alias.group("v1-compat"), "api");
        let k = key(&api, "api", Some("alice"), None, None).unwrap();
        assert_eq!(
            key(&alias, "v1-compat", Some("alice"), None, None).unwrap(),
            k
        );
        assert_eq!(
            penalty_key(&k),
            penalty_key(&key(&alias, "v1-compat", Some("alice"), None, None).unwrap())
        );
        // Without the group, the alias would have counted on its own.
        assert_ne!(
            key(&api, "v1-compat", Some("alice"), None, None).unwrap(),
            k
        );
        let v = decide(&alias, 51, 1_700_000_000_250, None);
        assert_eq!(headers(&alias, "v1-compat", &v)[0].1, "\"api\";q=50;w=1");
        assert_eq!(headers(&alias, "v1-compat", &v)[1].1, "\"api\";r=0;t=1");
        assert!(api.same_limit(&alias));
        assert!(!api.same_limit(&spec("subject", 10, 1, None)));
        assert!(!api.same_limit(&spec("ip", 50, 1, None)));
        // Group names are checked like keys: printable, short, unambiguous.
        let named = |g: &str| RateLimitSpec {
            group: Some(g.into()),
            ..api.clone()
        };
        named("login.v2_x-1").validate().unwrap();
        for bad in ["", "a:b", "a b", "é", &"g".repeat(MAX_GROUP_LEN + 1)] {
            assert_eq!(named(bad).validate().unwrap_err().field, "group", "{bad:?}");
        }
        let parsed: RateLimitSpec = serde_json::from_str(
            r#"{"key": "login", "limit": 5, "window_s": 60, "penalty_s": 300, "group": "login"}"#,
        )
        .unwrap();
        assert_eq!(parsed.group.as_deref(), Some("login"));
    }

    use crate::test_rng::Rng;

    impl Rng {
        fn bytes(&mut self) -> Vec<u8> {
            const PIECES: &[&[u8]] = &[
                b"{",
                b"}",
                b"\"email\"",
                b":",
                b"\"",
                b"a@b.c",
                b"\\u0000",
                b",",
                b"[",
                b"]",
                b"header:",
                b"x-k",
                b" ",
                b"\xff",
                b"\xc3\xa9",
                b"null",
                b"1e999",
                b"login",
            ];
            let n = (self.next() % 10) as usize;
            (0..n)
                .flat_map(|_| {
                    PIECES[(self.next() % PIECES.len() as u64) as usize]
                        .iter()
                        .copied()
                })
                .collect()
        }
    }

    #[test]
    fn random_inputs_never_panic() {
        let mut rng = Rng(0xD1B5_4A32_D192_ED03);
        for _ in 0..20_000 {
            let raw = rng.bytes();
            let text = String::from_utf8_lossy(&raw).into_owned();
            let _ = LimitKey::try_from(text.clone());
            let _ = serde_json::from_slice::<RateLimitSpec>(&raw);
            let body_ip = if rng.next().is_multiple_of(2) {
                Some(IpAddr::from([10, 0, 0, (rng.next() % 256) as u8]))
            } else {
                None
            };
            let lk = login_key(body_ip, &raw);
            assert!(!lk.contains("a@b.c"), "{lk}");
            let s = RateLimitSpec {
                key: [
                    LimitKey::Subject,
                    LimitKey::Ip,
                    LimitKey::Login,
                    LimitKey::Header("x".into()),
                ][(rng.next() % 4) as usize]
                    .clone(),
                limit: (rng.next() % 3) as u32,
                window_s: (rng.next() % 70) as u32,
                penalty_s: [None, Some(0), Some(1), Some(u32::MAX)][(rng.next() % 4) as usize],
                group: [None, Some(text.clone())][(rng.next() % 2) as usize].clone(),
            };
            let _ = s.validate();
            let _ = key(&s, &text, Some(&text), body_ip, Some(&lk));
            let now = rng.next();
            let v = decide(&s, (rng.next() % 5) as u32, now, Some(rng.next()));
            for (_, value) in headers(&s, &text, &v) {
                assert!(
                    value.bytes().all(|b| (b' '..=b'~').contains(&b)),
                    "{value:?}"
                );
            }
        }
    }
}
