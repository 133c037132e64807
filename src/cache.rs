//! Edge caching: the pure decisions. The adapter drives Fastly's Core Cache API (which behaves
//! the same under Viceroy and on Fastly); this module says whether a request may use the
//! cache, under which key, whether a response may be stored and for how long, whether a
//! stored copy is fresh, stale-but-servable or dead, how to revalidate it, and what to put in
//! `Cache-Status`.
//!
//! - Only GET and HEAD use the cache (RFC 9111 §2). The key ([`cache_key`]) is SHA-256 over a
//!   length-prefixed encoding of the method, the rewritten path, the normalised query, the
//!   route's `vary` inputs and, for `per_user` routes, a hash of the verified subject. No
//!   client-controlled value appears in the key or in a surrogate key in the clear.
//! - Storing follows RFC 9111 §3 for a *shared* cache, conservatively: `no-store`, `private`
//!   (qualified or not), `Set-Cookie`, `Vary: *`, a `Vary` naming a header outside the key,
//!   non-heuristically-cacheable statuses, partial content and oversized bodies are never
//!   stored. A per-user partition is still physically a shared cache, so the same rules apply.
//! - Freshness is explicit only: the route's `ttl_s`, else `s-maxage` > `max-age` >
//!   `Expires` − `Date` (§4.2.1). There is no heuristic freshness (§4.2.2): an API response
//!   without freshness information is not stored.
//! - Staleness follows RFC 5861: within `stale-while-revalidate` a stale copy is served while
//!   one request revalidates; within `stale-if-error` it is served only when the origin fails.
//!   The origin's explicit prohibitions (§4.2.4: `no-cache`, `must-revalidate`,
//!   `proxy-revalidate`, and `s-maxage`, which implies `proxy-revalidate` for shared caches)
//!   always beat the route's configured windows.
//! - Revalidation is conditional (§4.3.1) when the stored response has a validator, and a 304
//!   updates the stored header fields (§4.3.4, §3.2).
//! - `Cache-Status` follows RFC 9211 with the cache name `fastgate`.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The cache's name in `Cache-Status` (RFC 9211 §2).
pub const CACHE_NAME: &str = "fastgate";
/// Default `max_object_bytes`: 1 MiB.
pub const DEFAULT_MAX_OBJECT_BYTES: u64 = 1024 * 1024;
/// The longest TTL or stale window a route may configure: a year.
pub const MAX_CONFIG_TTL_S: u32 = 31_536_000;
/// RFC 9111 §1.2.2: a delta-seconds value too large to represent is taken as 2^31.
pub const DELTA_SECONDS_CAP: u64 = 2_147_483_648;
/// Fastly's limit on one surrogate key, in bytes.
pub const MAX_SURROGATE_KEY_BYTES: usize = 1024;
/// The placeholder a surrogate-key template may use for the (hashed) subject.
pub const SUBJECT_PLACEHOLDER: &str = "{sub}";
/// Domain tag at the start of every key's hash input; bump it to invalidate every key.
const KEY_VERSION: &[u8] = b"fastgate-cache-v1\0";

// ---------------------------------------------------------------------------------------------
// Config
// ---------------------------------------------------------------------------------------------

/// Who may share a cached response.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CacheMode {
    /// One copy for everyone (RFC 9111 shared-cache rules, including §3.5 for requests that
    /// carry `Authorization`).
    Public,
    /// One copy per verified subject: the key includes a hash of the subject, so no user can
    /// ever be answered with another user's response.
    #[serde(alias = "per-user")]
    PerUser,
}

/// One `vary` input of a route: something besides the URL that selects the response.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum VaryInput {
    /// The `Fastgate-Flags` value the edge computed for this caller (written `flags`).
    Flags,
    /// A request header's value; the name is stored lower-case.
    Header(String),
}

/// A `vary` entry that is neither `flags` nor a header name we can key on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("vary input `{0}` is not `flags` or a header name")]
pub struct BadVaryInput(pub String);

impl TryFrom<String> for VaryInput {
    type Error = BadVaryInput;

    fn try_from(s: String) -> Result<Self, BadVaryInput> {
        if s == "flags" {
            Ok(VaryInput::Flags)
        } else if is_token(&s) {
            Ok(VaryInput::Header(s.to_ascii_lowercase()))
        } else {
            Err(BadVaryInput(s))
        }
    }
}

impl VaryInput {
    /// The name this input is keyed under: `flags` or the lower-case header name.
    pub fn as_str(&self) -> &str {
        match self {
            VaryInput::Flags => "flags",
            VaryInput::Header(h) => h,
        }
    }

    /// Whether a response `Vary` field name (any case) is covered by this input. The origin
    /// sees the flags as the `Fastgate-Flags` header, so that is what it would vary on.
    fn covers(&self, response_vary_name: &str) -> bool {
        match self {
            VaryInput::Flags => response_vary_name.eq_ignore_ascii_case("fastgate-flags"),
            VaryInput::Header(h) => response_vary_name.eq_ignore_ascii_case(h),
        }
    }
}

fn default_max_object_bytes() -> u64 {
    DEFAULT_MAX_OBJECT_BYTES
}

/// A route's `cache` field. Absent means the route is not cached.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CachePolicy {
    /// `"public"` or `"per_user"`.
    pub mode: CacheMode,
    /// A fixed freshness lifetime. When absent, freshness comes from the origin's headers.
    #[serde(default)]
    pub ttl_s: Option<u32>,
    /// RFC 5861 §3 window, combined with the origin's own (the larger wins).
    #[serde(default)]
    pub stale_while_revalidate_s: u32,
    /// RFC 5861 §4 window, combined with the origin's own (the larger wins).
    #[serde(default)]
    pub stale_if_error_s: u32,
    /// Surrogate-key templates attached to stored responses, e.g. `items`, `user:{sub}`.
    #[serde(default)]
    pub surrogate_keys: Vec<String>,
    /// Inputs added to the key: request header names, or `flags`.
    #[serde(default)]
    pub vary: Vec<VaryInput>,
    /// Responses larger than this are not stored.
    #[serde(default = "default_max_object_bytes")]
    pub max_object_bytes: u64,
}

impl CachePolicy {
    /// Field-level validation; returns (field, reason).
    pub fn validate(&self) -> Result<(), (String, String)> {
        for (field, value) in [
            ("ttl_s", self.ttl_s.unwrap_or(0)),
            ("stale_while_revalidate_s", self.stale_while_revalidate_s),
            ("stale_if_error_s", self.stale_if_error_s),
        ] {
            if value > MAX_CONFIG_TTL_S {
                return Err((
                    field.into(),
                    format!("{value} is more than {MAX_CONFIG_TTL_S} (a year)"),
                ));
            }
        }
        if self.max_object_bytes == 0 {
            return Err(("max_object_bytes".into(), "must be positive".into()));
        }
        validate_templates(&self.surrogate_keys, self.mode == CacheMode::PerUser)
            .map_err(|(field, reason)| (format!("surrogate_keys{field}"), reason))?;
        for (i, input) in self.vary.iter().enumerate() {
            let field = format!("vary[{i}]");
            match input.as_str() {
                "authorization" => {
                    return Err((
                        field,
                        "keying on the token would cache per token; use mode `per_user`".into(),
                    ))
                }
                "fastgate-flags" => {
                    return Err((
                        field,
                        "the edge replaces Fastgate-Flags; write `flags` to vary on its value"
                            .into(),
                    ))
                }
                _ => {}
            }
            if self.vary[..i].contains(input) {
                return Err((field, format!("`{}` is listed twice", input.as_str())));
            }
        }
        Ok(())
    }

    /// Whether a body of `len` bytes may be stored (the adapter checks the real length when the
    /// origin sent no `Content-Length`).
    pub fn admits_size(&self, len: u64) -> bool {
        len <= self.max_object_bytes
    }
}

/// Validates surrogate-key (or purge) templates; the field is `[i]`, relative to the list.
/// `{sub}` is the only placeholder, allowed only where a subject exists (`allow_subject`).
pub fn validate_templates<T: AsRef<str>>(
    templates: &[T],
    allow_subject: bool,
) -> Result<(), (String, String)> {
    for (i, t) in templates.iter().enumerate() {
        let t = t.as_ref();
        let field = format!("[{i}]");
        let has_sub = t.contains(SUBJECT_PLACEHOLDER);
        if has_sub && !allow_subject {
            return Err((
                field,
                format!("`{t}` uses {{sub}}, which needs a verified subject (cache mode `per_user`; for `purge`, an authenticated route)"),
            ));
        }
        if t.replace(SUBJECT_PLACEHOLDER, "").contains(['{', '}']) {
            return Err((field, format!("`{t}`: the only placeholder is {{sub}}")));
        }
        if render_template(t, Some("0000000000000000")).is_none() {
            return Err((
                field,
                format!(
                    "`{t}` is not a surrogate key (visible ASCII, no spaces, \
                     1..={MAX_SURROGATE_KEY_BYTES} bytes)"
                ),
            ));
        }
    }
    Ok(())
}

/// The global `cache` settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheSettings {
    /// Query parameters that never change the response (tracking): dropped from the key.
    pub drop_query_params: Vec<String>,
}

/// Marketing and click-tracking parameters: they identify a campaign, not a resource.
pub const DEFAULT_DROP_QUERY_PARAMS: [&str; 7] = [
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "gclid",
    "fbclid",
];

impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings {
            drop_query_params: DEFAULT_DROP_QUERY_PARAMS
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
        }
    }
}

impl CacheSettings {
    /// Field-level validation; returns (field, reason).
    pub fn validate(&self) -> Result<(), (String, String)> {
        for (i, name) in self.drop_query_params.iter().enumerate() {
            if name.is_empty()
                || name
                    .bytes()
                    .any(|b| matches!(b, b'&' | b'=' | b'#') || b <= b' ' || b == 0x7f)
            {
                return Err((
                    format!("drop_query_params[{i}]"),
                    format!("`{name}` is not a plain parameter name"),
                ));
            }
        }
        Ok(())
    }

    fn drops(&self, name: &str) -> bool {
        self.drop_query_params.iter().any(|d| d == name)
    }
}

/// RFC 9110 `tchar`.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

// ---------------------------------------------------------------------------------------------
// Surrogate keys
// ---------------------------------------------------------------------------------------------

/// The first 16 hex digits of SHA-256 of the subject: what `{sub}` renders as. Short (purge
/// only needs to hit the right keys; a collision merely over-purges) and never the subject.
pub fn subject_tag(subject: &str) -> String {
    let mut out = String::with_capacity(16);
    for b in &Sha256::digest(subject.as_bytes())[..8] {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// A valid Fastly surrogate key: 1..=1024 bytes of visible ASCII (no spaces: the
/// `Surrogate-Key` header is space-separated; no control characters).
pub fn is_valid_surrogate_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= MAX_SURROGATE_KEY_BYTES
        && key.bytes().all(|b| b.is_ascii_graphic())
}

fn render_template(template: &str, tag: Option<&str>) -> Option<String> {
    let key = if template.contains(SUBJECT_PLACEHOLDER) {
        template.replace(SUBJECT_PLACEHOLDER, tag?)
    } else {
        template.to_owned()
    };
    is_valid_surrogate_key(&key).then_some(key)
}

/// Renders surrogate-key (or purge) templates. `{sub}` becomes [`subject_tag`] of the subject;
/// a template needing a subject when there is none, and any key that would not be a valid
/// surrogate key, is dropped. Duplicates are removed, order kept.
pub fn surrogate_keys<T: AsRef<str>>(templates: &[T], subject: Option<&str>) -> Vec<String> {
    let needs_tag = templates
        .iter()
        .any(|t| t.as_ref().contains(SUBJECT_PLACEHOLDER));
    let tag = if needs_tag {
        subject.map(subject_tag)
    } else {
        None
    };
    let mut out: Vec<String> = Vec::with_capacity(templates.len());
    for t in templates {
        if let Some(k) = render_template(t.as_ref(), tag.as_deref()) {
            if !out.contains(&k) {
                out.push(k);
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------------------------

/// The parameter name of a raw `name=value` pair.
fn param_name(pair: &str) -> &str {
    pair.split_once('=').map_or(pair, |(n, _)| n)
}

/// The query's pairs as they enter the key: empty pairs and the settings' tracking parameters
/// dropped, then sorted by name. The sort is stable, so values of a repeated parameter keep
/// their order: `a=1&a=2` and `a=2&a=1` may mean different lists to the origin, while the
/// order of different names never matters to it. Pairs are compared raw (no percent-decoding):
/// two spellings of one query only cost a miss, never a wrong answer.
fn normalized_pairs<'q>(query: Option<&'q str>, settings: &CacheSettings) -> Vec<&'q str> {
    let mut pairs: Vec<&str> = query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty() && !settings.drops(param_name(p)))
        .collect();
    pairs.sort_by(|a, b| param_name(a).cmp(param_name(b)));
    pairs
}

/// The normalised query (see [`normalized_pairs`]); `None` when nothing is left.
pub fn normalize_query(query: Option<&str>, settings: &CacheSettings) -> Option<String> {
    let pairs = normalized_pairs(query, settings);
    (!pairs.is_empty()).then(|| pairs.join("&"))
}

/// Hashes a length-prefixed field, so `"a" + "bc"` and `"ab" + "c"` never collide.
fn hash_field(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_be_bytes());
    h.update(bytes);
}

/// Hashes an ASCII-lower-cased, length-prefixed field without allocating.
fn hash_field_lower(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_be_bytes());
    let mut buf = [0u8; 64];
    for chunk in bytes.chunks(buf.len()) {
        let out = &mut buf[..chunk.len()];
        for (o, b) in out.iter_mut().zip(chunk) {
            *o = b.to_ascii_lowercase();
        }
        h.update(&*out);
    }
}

/// Hashes an optional field: a presence tag, then the field (absent ≠ empty).
fn hash_opt(h: &mut Sha256, value: Option<&[u8]>) {
    match value {
        None => h.update([0u8]),
        Some(v) => {
            h.update([1u8]);
            hash_field(h, v);
        }
    }
}

/// The cache key (DESIGN §2 step 7): SHA-256 over a versioned, length-prefixed encoding of
///
/// - the method (case-sensitive, RFC 9110 §9.1) and the *rewritten* path, as sent to the origin;
/// - the normalised query ([`normalize_query`]; absent and empty are the same);
/// - each `vary` input in the route's order: its lower-cased name and its value (OWS-trimmed;
///   an absent header is distinct from an empty one);
/// - the partition: shared, or the SHA-256 of the verified subject for `per_user` routes. The
///   subject is hashed before it enters the key material; callers of a `per_user` route must
///   pass `Some` (see [`request_cacheability`], which bypasses the cache without credentials).
///
/// HEAD and GET have separate entries: a HEAD response has no body to serve a GET with.
/// The host is not in the key: when a service answers several hosts with different content
/// under one path, add `host` to the route's `vary`.
pub fn cache_key(
    method: &str,
    path: &str,
    query: Option<&str>,
    vary_values: &[(&str, Option<&str>)],
    per_user_subject: Option<&str>,
    settings: &CacheSettings,
) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(KEY_VERSION);
    hash_field(&mut h, method.as_bytes());
    hash_field(&mut h, path.as_bytes());
    let pairs = normalized_pairs(query, settings);
    if pairs.is_empty() {
        h.update([0u8]);
    } else {
        // The same bytes as `pairs.join("&")`, without building the string.
        h.update([1u8]);
        let len = pairs.iter().map(|p| p.len()).sum::<usize>() + pairs.len() - 1;
        h.update((len as u64).to_be_bytes());
        for (i, p) in pairs.iter().enumerate() {
            if i > 0 {
                h.update(b"&");
            }
            h.update(p.as_bytes());
        }
    }
    h.update((vary_values.len() as u64).to_be_bytes());
    for (name, value) in vary_values {
        hash_field_lower(&mut h, name.as_bytes());
        hash_opt(
            &mut h,
            value.map(|v| v.trim_matches([' ', '\t']).as_bytes()),
        );
    }
    match per_user_subject {
        None => h.update([0u8]),
        Some(subject) => {
            h.update([1u8]);
            h.update(Sha256::digest(subject.as_bytes()));
        }
    }
    h.finalize().into()
}

/// Lower-case hex of a key (for logs and for Core Cache APIs that want text).
pub fn key_hex(key: &[u8; 32]) -> String {
    let mut out = String::with_capacity(64);
    for b in key {
        let _ = write!(out, "{b:02x}");
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Cache-Control and HTTP dates
// ---------------------------------------------------------------------------------------------

/// The Cache-Control directives that matter here (RFC 9111 §5.2). Delta-seconds values are
/// capped at 2^31 (§1.2.2); an invalid or missing argument, or a directive repeated with a
/// different value, reads as 0: §4.2.1 allows treating conflicting freshness as stale, and
/// 0 is the conservative reading for every delta directive here.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheControl {
    pub no_store: bool,
    /// Plain or qualified (`no-cache="set-cookie"`): both read as "revalidate every time".
    pub no_cache: bool,
    /// Plain or qualified (`private="x"`): both read as "never store" in a shared cache.
    pub private: bool,
    pub public: bool,
    pub must_revalidate: bool,
    pub proxy_revalidate: bool,
    pub max_age: Option<u64>,
    pub s_maxage: Option<u64>,
    /// RFC 5861 §3.
    pub stale_while_revalidate: Option<u64>,
    /// RFC 5861 §4.
    pub stale_if_error: Option<u64>,
}

/// RFC 9111 §1.2.2 delta-seconds: ASCII digits, saturating at 2^31. `None` when malformed.
fn delta_seconds(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let v = s.bytes().fold(0u64, |acc, b| {
        acc.saturating_mul(10)
            .saturating_add(u64::from(b - b'0'))
            .min(DELTA_SECONDS_CAP)
    });
    Some(v)
}

/// Records a delta directive; see [`CacheControl`] for the invalid and duplicate rules.
fn set_delta(slot: &mut Option<u64>, arg: Option<&str>) {
    let v = arg.and_then(delta_seconds).unwrap_or(0);
    *slot = match *slot {
        Some(old) if old != v => Some(0),
        _ => Some(v),
    };
}

/// Calls `f(name, argument)` for each directive of a Cache-Control value: comma-separated,
/// OWS-trimmed, with an optional token or quoted-string argument (quotes removed, escapes
/// left as they are: no argument we read may contain one). Never panics; garbage is skipped.
fn each_directive(value: &str, mut f: impl FnMut(&str, Option<&str>)) {
    let b = value.as_bytes();
    let len = b.len();
    let mut i = 0;
    while i < len {
        while i < len && matches!(b[i], b',' | b' ' | b'\t') {
            i += 1;
        }
        let start = i;
        while i < len && b[i] != b',' && b[i] != b'=' {
            i += 1;
        }
        let name = value
            .get(start..i)
            .unwrap_or_default()
            .trim_matches([' ', '\t']);
        let mut arg = None;
        if i < len && b[i] == b'=' {
            i += 1;
            while i < len && matches!(b[i], b' ' | b'\t') {
                i += 1;
            }
            if i < len && b[i] == b'"' {
                i += 1;
                let s = i;
                while i < len && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                arg = value.get(s..i.min(len));
            } else {
                let s = i;
                while i < len && b[i] != b',' {
                    i += 1;
                }
                arg = value.get(s..i).map(|a| a.trim_matches([' ', '\t']));
            }
        }
        while i < len && b[i] != b',' {
            i += 1;
        }
        if !name.is_empty() {
            f(name, arg);
        }
    }
}

impl CacheControl {
    /// Parses one Cache-Control field value (tolerantly: unknown directives are ignored).
    pub fn parse(value: &str) -> CacheControl {
        let mut cc = CacheControl::default();
        cc.add(value);
        cc
    }

    /// Parses every `Cache-Control` field of a header list as one combined value (§5.2).
    pub fn from_headers<N: AsRef<str>, V: AsRef<str>>(headers: &[(N, V)]) -> CacheControl {
        let mut cc = CacheControl::default();
        for (n, v) in headers {
            if n.as_ref().eq_ignore_ascii_case("cache-control") {
                cc.add(v.as_ref());
            }
        }
        cc
    }

    /// Adds the directives of one more field value.
    pub fn add(&mut self, value: &str) {
        each_directive(value, |name, arg| {
            let is = |d: &str| name.eq_ignore_ascii_case(d);
            if is("no-store") {
                self.no_store = true;
            } else if is("no-cache") {
                self.no_cache = true;
            } else if is("private") {
                self.private = true;
            } else if is("public") {
                self.public = true;
            } else if is("must-revalidate") {
                self.must_revalidate = true;
            } else if is("proxy-revalidate") {
                self.proxy_revalidate = true;
            } else if is("max-age") {
                set_delta(&mut self.max_age, arg);
            } else if is("s-maxage") {
                set_delta(&mut self.s_maxage, arg);
            } else if is("stale-while-revalidate") {
                set_delta(&mut self.stale_while_revalidate, arg);
            } else if is("stale-if-error") {
                set_delta(&mut self.stale_if_error, arg);
            }
        });
    }
}

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];
const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const LONG_DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// Fixed-width ASCII digits.
fn digits(b: &[u8]) -> Option<u32> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0')))
}

fn month(b: &[u8]) -> Option<u32> {
    MONTHS
        .iter()
        .position(|m| m[..] == *b)
        .map(|i| i as u32 + 1)
}

/// `HH:MM:SS` → seconds of the day (a leap second 60 is accepted).
fn time_of_day(b: &[u8]) -> Option<u64> {
    if b.len() != 8 || b[2] != b':' || b[5] != b':' {
        return None;
    }
    let (h, m, s) = (digits(&b[0..2])?, digits(&b[3..5])?, digits(&b[6..8])?);
    (h < 24 && m < 60 && s <= 60).then(|| u64::from(h * 3600 + m * 60 + s))
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm), validating the day.
fn days_from_civil(year: u32, month: u32, day: u32) -> Option<i64> {
    let leap = year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400));
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&month) || day == 0 || day > month_days[month as usize - 1] {
        return None;
    }
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

/// Epoch seconds of a date and time; dates before 1970 clamp to 0 (already long past).
fn epoch(year: u32, month: u32, day: u32, tod: u64) -> Option<u64> {
    let days = days_from_civil(year, month, day)?;
    let secs = days
        .saturating_mul(86_400)
        .saturating_add(i64::try_from(tod).ok()?);
    Some(u64::try_from(secs).unwrap_or(0))
}

/// Parses an HTTP-date (RFC 9110 §5.6.7) to epoch seconds: IMF-fixdate
/// (`Sun, 06 Nov 1994 08:49:37 GMT`) and, as recipients must, the obsolete RFC 850
/// (`Sunday, 06-Nov-94 08:49:37 GMT`; two-digit years 70–99 are 19xx, the rest 20xx) and
/// asctime (`Sun Nov  6 08:49:37 1994`) forms. `None` for anything else.
pub fn parse_http_date(value: &str) -> Option<u64> {
    let v = value.trim_matches([' ', '\t']);
    let b = v.as_bytes();
    // IMF-fixdate: exactly 29 bytes.
    if b.len() == 29 && b[3] == b',' && b[4] == b' ' && v.ends_with(" GMT") {
        DAYS.iter().find(|d| v.starts_with(*d))?;
        if b[7] != b' ' || b[11] != b' ' || b[16] != b' ' {
            return None;
        }
        let day = digits(&b[5..7])?;
        let mon = month(&b[8..11])?;
        let year = digits(&b[12..16])?;
        return epoch(year, mon, day, time_of_day(&b[17..25])?);
    }
    // RFC 850: `<Weekday>, DD-Mon-YY HH:MM:SS GMT`.
    if let Some((wd, rest)) = v.split_once(", ") {
        LONG_DAYS.iter().find(|d| **d == wd)?;
        let r = rest.as_bytes();
        if r.len() != 22 || r[2] != b'-' || r[6] != b'-' || r[9] != b' ' || !rest.ends_with(" GMT")
        {
            return None;
        }
        let day = digits(&r[0..2])?;
        let mon = month(&r[3..6])?;
        let yy = digits(&r[7..9])?;
        let year = if yy >= 70 { 1900 + yy } else { 2000 + yy };
        return epoch(year, mon, day, time_of_day(&r[10..18])?);
    }
    // asctime: `Www Mmm DD HH:MM:SS YYYY`, the day space-padded.
    if b.len() == 24 && b[3] == b' ' && b[7] == b' ' && b[10] == b' ' && b[19] == b' ' {
        DAYS.iter().find(|d| v.starts_with(*d))?;
        let mon = month(&b[4..7])?;
        let day = if b[8] == b' ' {
            digits(&b[9..10])?
        } else {
            digits(&b[8..10])?
        };
        let year = digits(&b[20..24])?;
        return epoch(year, mon, day, time_of_day(&b[11..19])?);
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Request side
// ---------------------------------------------------------------------------------------------

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
    fn as_str(self) -> &'static str {
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
    Forward { fwd: Fwd, reason: &'static str },
}

impl Lookup {
    /// Whether the origin's response may be offered to [`storability`].
    pub fn may_store(&self) -> bool {
        !matches!(self, Lookup::Forward { .. })
    }
}

/// Decides how a request uses the cache (RFC 9111 §3.5, §5.2.1).
///
/// - Only GET and HEAD (§2: other methods' responses are not reusable for them here).
/// - `no-store` bypasses (§5.2.1.5); `no-cache` or `max-age=0` forces revalidation. Other
///   request directives (`max-stale`, `min-fresh`, `only-if-cached`) are ignored: §5.2.1
///   lets a cache serve within its own configured limits, and an API edge should not let a
///   client extend staleness.
/// - `per_user` without `Authorization` has no subject to partition by, so it bypasses: an
///   anonymous caller never shares an entry with anyone by accident.
/// - `public` with `Authorization` may use the cache, but only entries the origin marked as
///   shareable (§3.5), and stores only such responses (see [`storability`]).
pub fn request_cacheability(
    method: &str,
    has_authorization: bool,
    mode: CacheMode,
    request_cache_control: Option<&str>,
) -> Lookup {
    if method != "GET" && method != "HEAD" {
        return Lookup::Forward {
            fwd: Fwd::Method,
            reason: "method is not GET or HEAD",
        };
    }
    if mode == CacheMode::PerUser && !has_authorization {
        return Lookup::Forward {
            fwd: Fwd::Bypass,
            reason: "per-user route without credentials",
        };
    }
    let cc = CacheControl::parse(request_cache_control.unwrap_or_default());
    if cc.no_store {
        return Lookup::Forward {
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

/// Whether a stored entry may answer a request (§3.5): always for `per_user` (the partition
/// is the user), and in `public` mode either the request has no `Authorization` or the entry
/// is marked shareable with authorized requests.
pub fn may_serve(lookup: Lookup, entry_shareable_with_authorization: bool) -> bool {
    match lookup {
        Lookup::Use { needs_shareable } => !needs_shareable || entry_shareable_with_authorization,
        Lookup::Revalidate { .. } | Lookup::Forward { .. } => false,
    }
}

// ---------------------------------------------------------------------------------------------
// Response side
// ---------------------------------------------------------------------------------------------

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
        /// with the object and pass it to [`may_serve`].
        shareable_with_authorization: bool,
    },
}

/// Statuses cacheable by default (RFC 9110 §15.1), minus 206: this cache does not combine or
/// serve ranges, and §3.3 forbids storing partial content then.
fn is_storable_status(status: u16) -> bool {
    matches!(
        status,
        200 | 203 | 204 | 300 | 301 | 308 | 404 | 405 | 410 | 414 | 501
    )
}

/// What one pass over the response headers finds.
#[derive(Default)]
struct ResponseFacts<'h> {
    set_cookie: bool,
    vary_star: bool,
    vary_uncovered: bool,
    too_large: bool,
    validator: bool,
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
                    if v == "*" {
                        f.vary_star = true;
                    } else if !v.is_empty() && !policy.vary.iter().any(|i| i.covers(v)) {
                        f.vary_uncovered = true;
                    }
                }
            } else if is("content-length") {
                // A malformed length is ignored here; the adapter enforces the real size.
                f.too_large |= value
                    .split(',')
                    .filter_map(|v| v.trim_matches([' ', '\t']).parse::<u64>().ok())
                    .any(|len| !policy.admits_size(len));
            } else if is("etag") || is("last-modified") {
                f.validator |= !value.trim().is_empty();
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
}

/// Decides whether a response may be stored, and its freshness and stale windows
/// (RFC 9111 §3, §4.2; RFC 5861). Checks, in order (the first failing one is the reason):
///
/// 1. the status is cacheable by default (RFC 9110 §15.1; 206 excluded);
/// 2. no `no-store`, no `private` (qualified or not), no `Set-Cookie`;
/// 3. no `Vary: *`, and every `Vary` name is one of the route's vary inputs (else the key
///    could not tell variants apart);
/// 4. `Content-Length` within `max_object_bytes`;
/// 5. §3.5: a public route's request with `Authorization` stores only a response marked
///    `public`, `s-maxage` or `must-revalidate`;
/// 6. `no-cache` stores only with a validator, with a TTL of 0 (revalidate on every use);
/// 7. freshness: the route's `ttl_s`, else `s-maxage` > `max-age` > `Expires` − `Date` (an
///    invalid `Expires` is already expired, §5.3; no `Date` means now); none → not stored;
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
    if !is_storable_status(status) {
        return Storable::No("status not cacheable");
    }
    let cc = CacheControl::from_headers(response_headers);
    if cc.no_store {
        return Storable::No("no-store");
    }
    if cc.private {
        return Storable::No("private");
    }
    let facts = ResponseFacts::scan(response_headers, policy);
    if facts.set_cookie {
        return Storable::No("set-cookie");
    }
    if facts.vary_star {
        return Storable::No("vary *");
    }
    if facts.vary_uncovered {
        return Storable::No("vary names a header outside the key");
    }
    if facts.too_large {
        return Storable::No("too large");
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
    let lifetime = if cc.no_cache {
        0
    } else if let Some(ttl) = policy.ttl_s {
        u64::from(ttl)
    } else if let Some(s) = cc.s_maxage {
        s
    } else if let Some(m) = cc.max_age {
        m
    } else if let Some(expires) = facts.expires {
        match parse_http_date(expires) {
            Some(exp) => {
                let date = facts.date.and_then(parse_http_date).unwrap_or(now_s);
                exp.saturating_sub(date).min(DELTA_SECONDS_CAP)
            }
            None => 0,
        }
    } else {
        return Storable::No("no freshness information");
    };
    let (swr, sie) = if cc.must_revalidate || cc.proxy_revalidate || cc.no_cache {
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
    };
    let age = facts.age.and_then(|a| delta_seconds(a.trim())).unwrap_or(0);
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

// ---------------------------------------------------------------------------------------------
// Serving
// ---------------------------------------------------------------------------------------------

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

/// The `Age` value for a response served from the cache (§5.1), capped at 2^31 (§1.2.2).
pub fn age_header(age_s: u64) -> String {
    age_s.min(DELTA_SECONDS_CAP).to_string()
}

// ---------------------------------------------------------------------------------------------
// Revalidation
// ---------------------------------------------------------------------------------------------

fn first_header<'a, N: AsRef<str>, V: AsRef<str>>(
    headers: &'a [(N, V)],
    name: &str,
) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.as_ref().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_ref().trim_matches([' ', '\t']))
}

/// Whether two entity-tags match by the weak comparison (RFC 9110 §8.8.3.2): the same
/// opaque tag, whether or not either is marked `W/`.
fn weak_match(a: &str, b: &str) -> bool {
    fn opaque(t: &str) -> &str {
        let t = t.trim_matches([' ', '\t']);
        t.strip_prefix("W/").unwrap_or(t)
    }
    opaque(a) == opaque(b)
}

/// An entity-tag (RFC 9110 §8.8.3): optional `W/`, then a quoted string of etagc.
fn is_entity_tag(v: &str) -> bool {
    let opaque = v.strip_prefix("W/").unwrap_or(v);
    opaque.len() >= 2
        && opaque.starts_with('"')
        && opaque.ends_with('"')
        && opaque[1..opaque.len() - 1]
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x7e).contains(&b) || b >= 0x80)
}

/// The headers that make a revalidation conditional (RFC 9111 §4.3.1): `If-None-Match` from
/// a well-formed `ETag`, `If-Modified-Since` from a valid `Last-Modified` date. Both are sent
/// when both exist; the origin evaluates `If-None-Match` first (RFC 9110 §13.2.2).
pub fn conditional_headers<N: AsRef<str>, V: AsRef<str>>(
    stored_headers: &[(N, V)],
) -> Vec<(&'static str, String)> {
    let mut out = Vec::with_capacity(2);
    if let Some(etag) = first_header(stored_headers, "etag").filter(|e| is_entity_tag(e)) {
        out.push(("if-none-match", etag.to_owned()));
    }
    if let Some(lm) =
        first_header(stored_headers, "last-modified").filter(|d| parse_http_date(d).is_some())
    {
        out.push(("if-modified-since", lm.to_owned()));
    }
    out
}

/// Whether a 304 refers to the stored response (§4.3.4): when it carries an `ETag`, the stored
/// one must match it (weak comparison); else when it carries `Last-Modified`, the stored one
/// must be the same; a 304 with no validator updates our single stored response. When this is
/// false, do not merge: fetch the resource unconditionally.
pub fn not_modified_matches<N: AsRef<str>, V: AsRef<str>, M: AsRef<str>, W: AsRef<str>>(
    stored_headers: &[(N, V)],
    not_modified_headers: &[(M, W)],
) -> bool {
    if let Some(new) = first_header(not_modified_headers, "etag") {
        return first_header(stored_headers, "etag").is_some_and(|old| weak_match(old, new));
    }
    if let Some(new) = first_header(not_modified_headers, "last-modified") {
        return first_header(stored_headers, "last-modified") == Some(new);
    }
    true
}

/// Header fields a 304 never updates in the stored response: hop-by-hop ones (§3.1),
/// `Content-Length` (§3.2), ones the stored body depends on (`Content-Encoding`,
/// `Content-Range`), `Set-Cookie` (never stored in a shared cache) and `Age` (the cache
/// generates it when serving).
const NOT_UPDATED: [&str; 13] = [
    "connection",
    "proxy-connection",
    "keep-alive",
    "te",
    "transfer-encoding",
    "upgrade",
    "trailer",
    "content-length",
    "content-encoding",
    "content-range",
    "set-cookie",
    "age",
    "proxy-authenticate",
];

/// Freshens stored header fields with a 304's (RFC 9111 §4.3.4, §3.2): every field the 304
/// carries replaces all stored fields of that name, except [`NOT_UPDATED`] ones and the
/// fields its `Connection` header names. Call [`not_modified_matches`] first, and
/// [`storability`] on the result for the new freshness.
pub fn merge_304<N: AsRef<str>, V: AsRef<str>, M: AsRef<str>, W: AsRef<str>>(
    stored_headers: &[(N, V)],
    not_modified_headers: &[(M, W)],
) -> Vec<(String, String)> {
    let connection_listed = |name: &str| {
        not_modified_headers
            .iter()
            .filter(|(n, _)| n.as_ref().eq_ignore_ascii_case("connection"))
            .flat_map(|(_, v)| v.as_ref().split(','))
            .any(|c| c.trim_matches([' ', '\t']).eq_ignore_ascii_case(name))
    };
    let updates: Vec<(&str, &str)> = not_modified_headers
        .iter()
        .map(|(n, v)| (n.as_ref(), v.as_ref()))
        .filter(|(n, _)| {
            !NOT_UPDATED.iter().any(|x| n.eq_ignore_ascii_case(x)) && !connection_listed(n)
        })
        .collect();
    let mut out: Vec<(String, String)> = Vec::with_capacity(stored_headers.len() + updates.len());
    for (n, v) in stored_headers {
        let n = n.as_ref();
        if !updates.iter().any(|(u, _)| u.eq_ignore_ascii_case(n)) {
            out.push((n.to_owned(), v.as_ref().to_owned()));
        }
    }
    out.extend(
        updates
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned())),
    );
    out
}

// ---------------------------------------------------------------------------------------------
// Stored entries
// ---------------------------------------------------------------------------------------------

/// What an entry carries besides its body, kept as the Core Cache's user metadata: the
/// response head and the lifetimes [`storability`] computed, so a later lookup can classify
/// the copy with [`freshness`] without re-reading the origin's headers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredMeta {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub ttl_s: u64,
    pub swr_s: u64,
    pub sie_s: u64,
    /// May answer a request that carries `Authorization` on a public route (§3.5).
    pub shareable: bool,
}

/// Response headers that describe one exchange rather than the resource, so they are never
/// stored: hop-by-hop fields, `Age` (recomputed on every hit), and the per-request fields the
/// edge or the origin sets for one request (its id, timings, which origin answered).
const NOT_STORED: [&str; 14] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "age",
    "set-cookie",
    "x-request-id",
    "server-timing",
    "cache-status",
    "fastgate-config",
    "content-length",
];

impl StoredMeta {
    /// The entry for a response [`storability`] said yes to.
    pub fn new<N: AsRef<str>, V: AsRef<str>>(
        status: u16,
        headers: &[(N, V)],
        ttl_s: u64,
        swr_s: u64,
        sie_s: u64,
        shareable: bool,
    ) -> Self {
        let headers = headers
            .iter()
            .map(|(n, v)| (n.as_ref(), v.as_ref()))
            .filter(|(n, _)| !NOT_STORED.iter().any(|x| n.eq_ignore_ascii_case(x)))
            .map(|(n, v)| (n.to_ascii_lowercase(), v.to_owned()))
            .collect();
        StoredMeta {
            status,
            headers,
            ttl_s,
            swr_s,
            sie_s,
            shareable,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// `None` for metadata this version cannot read (then the entry is treated as a miss).
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        serde_json::from_slice(bytes).ok()
    }

    /// How long the Core Cache must keep the entry: its freshness plus the longer stale
    /// window, since both stale modes need the copy after it stops being fresh.
    pub fn stale_window_s(&self) -> u64 {
        self.swr_s.max(self.sie_s)
    }

    /// The entry after a 304 (§4.3.4): updated header fields, the new lifetimes.
    pub fn refreshed(&self, not_modified_headers: &[(&str, &str)], fresh: &StoredMeta) -> Self {
        let merged = merge_304(&self.headers, not_modified_headers);
        StoredMeta::new(
            self.status,
            &merged,
            fresh.ttl_s,
            fresh.swr_s,
            fresh.sie_s,
            fresh.shareable,
        )
    }
}

/// The `Cache-Control` a client gets for a `per_user` response: `private`, so no cache
/// between the edge and the browser shares it, and a `max-age` of what is left of its
/// freshness here. Public responses keep the origin's own field.
pub fn per_user_client_cache_control(ttl_left_s: i64) -> String {
    format!("private, max-age={}", ttl_left_s.max(0))
}

/// Whether a client's `If-None-Match` matches the stored `ETag` (weak comparison, RFC 9110
/// §13.1.2), so a hit can be answered 304 without a body.
pub fn client_not_modified(if_none_match: Option<&str>, stored_etag: Option<&str>) -> bool {
    let (Some(inm), Some(etag)) = (if_none_match, stored_etag) else {
        return false;
    };
    inm.split(',')
        .map(str::trim)
        .any(|t| t == "*" || (!t.is_empty() && weak_match(t, etag)))
}

// ---------------------------------------------------------------------------------------------
// Cache-Status (RFC 9211)
// ---------------------------------------------------------------------------------------------

/// What the cache did with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A fresh stored response answered.
    Hit,
    /// A stale response answered within stale-while-revalidate; a revalidation runs.
    StaleWhileRevalidate,
    /// The origin failed; a stale response answered within stale-if-error.
    StaleIfError,
    /// The request went to the origin. `fwd_status` is the origin's status when it differs
    /// from the one sent (e.g. a 304 turned into the stored 200).
    Forward {
        fwd: Fwd,
        stored: bool,
        fwd_status: Option<u16>,
    },
}

/// RFC 8941 integers have at most 15 digits.
const SF_INTEGER_MAX: i64 = 999_999_999_999_999;

/// Appends `; detail=` as an sf-token when it is one, else as an sf-string of its printable
/// ASCII (other characters dropped, `"` and `\` escaped).
fn push_detail(out: &mut String, detail: &str) {
    out.push_str("; detail=");
    let b = detail.as_bytes();
    let token = !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b[0] == b'*')
        && b[1..]
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~:/".contains(&c));
    if token {
        out.push_str(detail);
        return;
    }
    out.push('"');
    for c in detail.chars().filter(|c| (' '..='~').contains(c)) {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

/// The `Cache-Status` value (RFC 9211), e.g. `fastgate; hit; ttl=42`,
/// `fastgate; fwd=miss; stored; ttl=60`, `fastgate; hit; ttl=-3; fwd=stale`,
/// `fastgate; fwd=stale; ttl=-12; detail=stale-if-error`, `fastgate; fwd=bypass`.
/// `ttl` (clamped to an sf-integer) is written when a stored response is involved: hits,
/// stale serves and stored forwards. `detail` is written when given (for stale-if-error it
/// defaults to `stale-if-error`).
pub fn cache_status(outcome: Outcome, ttl_left_s: i64, detail: Option<&str>) -> String {
    let ttl = ttl_left_s.clamp(-SF_INTEGER_MAX, SF_INTEGER_MAX);
    let mut out = String::with_capacity(48);
    out.push_str(CACHE_NAME);
    match outcome {
        Outcome::Hit => {
            let _ = write!(out, "; hit; ttl={ttl}");
        }
        Outcome::StaleWhileRevalidate => {
            let _ = write!(out, "; hit; ttl={ttl}; fwd=stale");
        }
        Outcome::StaleIfError => {
            let _ = write!(out, "; fwd=stale; ttl={ttl}");
            push_detail(&mut out, detail.unwrap_or("stale-if-error"));
            return out;
        }
        Outcome::Forward {
            fwd,
            stored,
            fwd_status,
        } => {
            let _ = write!(out, "; fwd={}", fwd.as_str());
            if let Some(s) = fwd_status {
                let _ = write!(out, "; fwd-status={s}");
            }
            if stored {
                let _ = write!(out, "; stored; ttl={ttl}");
            }
        }
    }
    if let Some(d) = detail {
        push_detail(&mut out, d);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(json: &str) -> CachePolicy {
        let p: CachePolicy = serde_json::from_str(json).unwrap();
        p.validate().unwrap();
        p
    }

    fn public() -> CachePolicy {
        policy(r#"{"mode":"public"}"#)
    }

    fn key(
        path: &str,
        query: Option<&str>,
        vary: &[(&str, Option<&str>)],
        sub: Option<&str>,
    ) -> [u8; 32] {
        cache_key("GET", path, query, vary, sub, &CacheSettings::default())
    }

    fn yes(s: Storable) -> (u64, u64, u64, u64, bool) {
        match s {
            Storable::Yes {
                ttl_s,
                stale_while_revalidate_s,
                stale_if_error_s,
                initial_age_s,
                shareable_with_authorization,
            } => (
                ttl_s,
                stale_while_revalidate_s,
                stale_if_error_s,
                initial_age_s,
                shareable_with_authorization,
            ),
            Storable::No(r) => panic!("not stored: {r}"),
        }
    }

    fn store(headers: &[(&str, &str)]) -> Storable {
        storability(200, headers, &public(), false, 1_000_000)
    }

    // --- config -------------------------------------------------------------------------

    #[test]
    fn config_shapes_and_defaults() {
        let p = policy(
            r#"{"mode":"per_user","ttl_s":30,"stale_while_revalidate_s":10,
                "stale_if_error_s":300,"surrogate_keys":["items","user:{sub}"],
                "vary":["Accept-Language","flags"],"max_object_bytes":2048}"#,
        );
        assert_eq!(p.mode, CacheMode::PerUser);
        assert_eq!(p.ttl_s, Some(30));
        assert_eq!(
            p.vary,
            vec![
                VaryInput::Header("accept-language".into()),
                VaryInput::Flags
            ]
        );
        let p = public();
        assert_eq!(p.ttl_s, None);
        assert_eq!((p.stale_while_revalidate_s, p.stale_if_error_s), (0, 0));
        assert_eq!(p.max_object_bytes, 1024 * 1024);
        assert!(p.surrogate_keys.is_empty() && p.vary.is_empty());
        assert_eq!(
            serde_json::from_str::<CachePolicy>(r#"{"mode":"per-user"}"#)
                .unwrap()
                .mode,
            CacheMode::PerUser
        );
        let s: CacheSettings = serde_json::from_str("{}").unwrap();
        assert!(s.drop_query_params.contains(&"gclid".to_owned()));
        assert!(s.drop_query_params.contains(&"utm_source".to_owned()));
        s.validate().unwrap();
        let s: CacheSettings = serde_json::from_str(r#"{"drop_query_params":["ref"]}"#).unwrap();
        assert_eq!(s.drop_query_params, vec!["ref".to_owned()]);
    }

    #[test]
    fn config_errors_name_the_field() {
        for (json, field) in [
            (r#"{"mode":"public","ttl_s":99999999}"#, "ttl_s"),
            (
                r#"{"mode":"public","stale_if_error_s":99999999}"#,
                "stale_if_error_s",
            ),
            (
                r#"{"mode":"public","max_object_bytes":0}"#,
                "max_object_bytes",
            ),
            (
                r#"{"mode":"public","surrogate_keys":["user:{sub}"]}"#,
                "surrogate_keys[0]",
            ),
            (
                r#"{"mode":"per_user","surrogate_keys":["a","{user}"]}"#,
                "surrogate_keys[1]",
            ),
            (
                r#"{"mode":"per_user","surrogate_keys":["has space"]}"#,
                "surrogate_keys[0]",
            ),
            (
                r#"{"mode":"public","surrogate_keys":[""]}"#,
                "surrogate_keys[0]",
            ),
            (r#"{"mode":"public","vary":["Authorization"]}"#, "vary[0]"),
            (
                r#"{"mode":"public","vary":["x","fastgate-flags"]}"#,
                "vary[1]",
            ),
            (r#"{"mode":"public","vary":["X-A","x-a"]}"#, "vary[1]"),
        ] {
            let p: CachePolicy = serde_json::from_str(json).unwrap();
            assert_eq!(p.validate().unwrap_err().0, field, "{json}");
        }
        for bad in [
            r#"{"mode":"private"}"#,
            r#"{"mode":"public","ttl":5}"#,
            r#"{"mode":"public","vary":["bad header"]}"#,
            r#"{"mode":"public","ttl_s":-1}"#,
            r#"{}"#,
        ] {
            assert!(serde_json::from_str::<CachePolicy>(bad).is_err(), "{bad}");
        }
        let s = CacheSettings {
            drop_query_params: vec!["ok".into(), "a=b".into()],
        };
        assert_eq!(s.validate().unwrap_err().0, "drop_query_params[1]");
        assert!(serde_json::from_str::<CacheSettings>(r#"{"drop":[]}"#).is_err());
        assert_eq!(
            VaryInput::try_from("a b".to_owned())
                .unwrap_err()
                .to_string(),
            "vary input `a b` is not `flags` or a header name"
        );
        assert_eq!(
            validate_templates(&["items:{sub}"], false).unwrap_err().0,
            "[0]"
        );
        validate_templates(&["items", "user:{sub}"], true).unwrap();
    }

    // --- surrogate keys -----------------------------------------------------------------

    #[test]
    fn surrogate_keys_hash_the_subject() {
        let tag = subject_tag("alice");
        assert_eq!(tag.len(), 16);
        assert!(tag.bytes().all(|b| b.is_ascii_hexdigit()));
        let full: String = Sha256::digest(b"alice")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(tag, full[..16]);
        let keys = surrogate_keys(
            &["items", "user:{sub}", "items", "{sub}:{sub}"],
            Some("alice"),
        );
        assert_eq!(
            keys,
            vec![
                "items".to_owned(),
                format!("user:{tag}"),
                format!("{tag}:{tag}")
            ]
        );
        assert!(keys.iter().all(|k| !k.contains("alice")));
        // No subject: templates that need one are dropped.
        assert_eq!(
            surrogate_keys(&["items", "user:{sub}"], None),
            vec!["items".to_owned()]
        );
        // Invalid keys are dropped.
        let long = "k".repeat(1025);
        assert_eq!(
            surrogate_keys(&["a b", "", "tab\t", "é", long.as_str(), "ok"], None),
            vec!["ok".to_owned()]
        );
        assert!(is_valid_surrogate_key(&"k".repeat(1024)));
        assert_ne!(subject_tag("alice"), subject_tag("bob"));
        assert!(surrogate_keys::<&str>(&[], Some("x")).is_empty());
    }

    // --- keys ---------------------------------------------------------------------------

    #[test]
    fn query_normalisation() {
        let s = CacheSettings::default();
        let n = |q: &str| normalize_query(Some(q), &s);
        assert_eq!(n("b=2&a=1"), Some("a=1&b=2".into()));
        assert_eq!(
            n("utm_source=x&b=2&&gclid=z&a=1&fbclid=q"),
            Some("a=1&b=2".into())
        );
        assert_eq!(n(""), None);
        assert_eq!(n("&&"), None);
        assert_eq!(n("utm_source=news&utm_medium=mail"), None);
        assert_eq!(normalize_query(None, &s), None);
        // Same-name values keep their order; different names are sorted.
        assert_eq!(n("t=2&s=1&t=1"), Some("s=1&t=2&t=1".into()));
        // `a` and `a=` stay distinct; names compare exactly.
        assert_eq!(n("a"), Some("a".into()));
        assert_eq!(n("a="), Some("a=".into()));
        assert_eq!(n("UTM_SOURCE=x"), Some("UTM_SOURCE=x".into()));
    }

    #[test]
    fn key_ignores_tracking_and_order_but_not_values() {
        let base = key("/api/items", Some("a=1&b=2"), &[], None);
        assert_eq!(base, key("/api/items", Some("b=2&a=1"), &[], None));
        assert_eq!(
            base,
            key(
                "/api/items",
                Some("utm_campaign=spring&b=2&fbclid=x&a=1&utm_source=y"),
                &[],
                None
            )
        );
        assert_ne!(base, key("/api/items", Some("a=1&b=3"), &[], None));
        assert_ne!(base, key("/api/items", Some("a=1"), &[], None));
        assert_ne!(base, key("/api/item", Some("a=1&b=2"), &[], None));
        // An empty query is no query.
        let none = key("/api/items", None, &[], None);
        assert_eq!(none, key("/api/items", Some(""), &[], None));
        assert_eq!(none, key("/api/items", Some("utm_source=x"), &[], None));
        assert_ne!(none, base);
        // The method counts.
        let s = CacheSettings::default();
        assert_ne!(
            cache_key("HEAD", "/api/items", None, &[], None, &s),
            cache_key("GET", "/api/items", None, &[], None, &s)
        );
        // The settings' list is what is dropped.
        let custom = CacheSettings {
            drop_query_params: vec!["ref".into()],
        };
        assert_eq!(
            cache_key("GET", "/x", Some("ref=a&k=1"), &[], None, &custom),
            cache_key("GET", "/x", Some("k=1"), &[], None, &custom)
        );
        assert_ne!(
            cache_key("GET", "/x", Some("utm_source=a"), &[], None, &custom),
            cache_key("GET", "/x", None, &[], None, &custom)
        );
    }

    #[test]
    fn key_encoding_is_unambiguous() {
        // Field boundaries: path vs query, and vary name vs value.
        assert_ne!(
            key("/ab", Some("c"), &[], None),
            key("/a", Some("bc"), &[], None)
        );
        assert_ne!(
            key("/", None, &[("a", Some("bc"))], None),
            key("/", None, &[("ab", Some("c"))], None)
        );
        // Absent ≠ empty header value; vary inputs are positional pairs.
        assert_ne!(
            key("/", None, &[("x", None)], None),
            key("/", None, &[("x", Some(""))], None)
        );
        assert_ne!(
            key("/", None, &[("x", None)], None),
            key("/", None, &[], None)
        );
        // Header names are case-insensitive, values trimmed but otherwise exact.
        assert_eq!(
            key("/", None, &[("Accept-Language", Some(" de "))], None),
            key("/", None, &[("accept-language", Some("de"))], None)
        );
        assert_ne!(
            key("/", None, &[("accept-language", Some("de"))], None),
            key("/", None, &[("accept-language", Some("DE"))], None)
        );
        assert_ne!(
            key("/", None, &[("flags", Some("a=1"))], None),
            key("/", None, &[("flags", Some("a=0"))], None)
        );
        // A long vary name (beyond the lower-casing buffer) lower-cases too.
        let long_upper = "X".repeat(200);
        let long_lower = "x".repeat(200);
        assert_eq!(
            key("/", None, &[(long_upper.as_str(), Some("v"))], None),
            key("/", None, &[(long_lower.as_str(), Some("v"))], None)
        );
        assert_eq!(key_hex(&key("/", None, &[], None)).len(), 64);
    }

    #[test]
    fn per_user_keys_differ_per_subject_and_hide_it() {
        let alice = key("/api/user/profile", None, &[], Some("alice"));
        let bob = key("/api/user/profile", None, &[], Some("bob"));
        let shared = key("/api/user/profile", None, &[], None);
        assert_ne!(alice, bob);
        assert_ne!(alice, shared);
        assert_ne!(key("/api/user/profile", None, &[], Some("")), shared);
        assert_eq!(alice, key("/api/user/profile", None, &[], Some("alice")));
        let hex = key_hex(&alice);
        assert!(!hex.contains("alice"));
        assert!(!alice.windows(5).any(|w| w == b"alice"));
    }

    // --- request side -------------------------------------------------------------------

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
                Lookup::Forward {
                    fwd: Fwd::Method,
                    ..
                }
            ));
        }
        assert!(matches!(
            request_cacheability("GET", false, Public, Some("max-age=5, No-Store")),
            Lookup::Forward {
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
            Lookup::Forward {
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

    // --- Cache-Control and dates --------------------------------------------------------

    #[test]
    fn cache_control_parsing() {
        let cc = CacheControl::parse(
            r#" Public , MAX-AGE="60", s-maxage=120,stale-while-revalidate=5, private="set-cookie, x", foo=bar, stale-if-error = 30"#,
        );
        assert!(cc.public && cc.private && !cc.no_store && !cc.no_cache);
        assert_eq!(cc.max_age, Some(60));
        assert_eq!(cc.s_maxage, Some(120));
        assert_eq!(cc.stale_while_revalidate, Some(5));
        assert_eq!(cc.stale_if_error, Some(30));
        // A quoted comma does not split directives.
        let cc = CacheControl::parse(r#"no-cache="a, max-age=9", must-revalidate"#);
        assert!(cc.no_cache && cc.must_revalidate);
        assert_eq!(cc.max_age, None);
        // Invalid, missing and conflicting values read as 0; overflow caps at 2^31.
        assert_eq!(CacheControl::parse("max-age=abc").max_age, Some(0));
        assert_eq!(CacheControl::parse("max-age").max_age, Some(0));
        assert_eq!(CacheControl::parse("max-age=-5").max_age, Some(0));
        assert_eq!(
            CacheControl::parse("max-age=10, max-age=20").max_age,
            Some(0)
        );
        assert_eq!(
            CacheControl::parse("max-age=10, max-age=10").max_age,
            Some(10)
        );
        assert_eq!(
            CacheControl::parse("max-age=99999999999999999999999").max_age,
            Some(DELTA_SECONDS_CAP)
        );
        // Multiple fields combine.
        let cc = CacheControl::from_headers(&[
            ("Cache-Control", "max-age=5"),
            ("x", "no-store"),
            ("cache-control", "no-store"),
        ]);
        assert!(cc.no_store);
        assert_eq!(cc.max_age, Some(5));
        assert_eq!(CacheControl::parse(""), CacheControl::default());
        assert_eq!(CacheControl::parse(",,, ,"), CacheControl::default());
        assert!(!CacheControl::parse(r#"x="unterminated, no-store"#).no_store);
    }

    #[test]
    fn http_dates() {
        const T: u64 = 784_111_777; // 1994-11-06 08:49:37 UTC
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), Some(T));
        assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), Some(T));
        assert_eq!(parse_http_date("Sun Nov  6 08:49:37 1994"), Some(T));
        assert_eq!(parse_http_date(" Sun, 06 Nov 1994 08:49:37 GMT "), Some(T));
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(
            parse_http_date("Tue, 29 Feb 2028 23:59:59 GMT"),
            Some(1_835_481_599)
        );
        assert_eq!(parse_http_date("Wed, 31 Dec 1969 23:59:59 GMT"), Some(0));
        assert_eq!(
            parse_http_date("Monday, 01-Jan-24 00:00:00 GMT"),
            Some(1_704_067_200)
        );
        for bad in [
            "",
            "0",
            "-1",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 06 Nov 1994 24:00:00 GMT",
            "Sun, 31 Nov 1994 08:49:37 GMT",
            "Sun, 29 Feb 2027 08:49:37 GMT",
            "Xyz, 06 Nov 1994 08:49:37 GMT",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 6 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-1994 08:49:37 GMT",
            "Sun Nov 6 08:49:37 1994",
            "Sun, 06 Nov 1994 08:49:37 GMT garbage",
            "Sun, 0é Nov 1994 08:49:37 GMT",
        ] {
            assert_eq!(parse_http_date(bad), None, "{bad:?}");
        }
    }

    // --- storability --------------------------------------------------------------------

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
        for s in [
            0, 100, 201, 206, 302, 304, 307, 400, 401, 403, 429, 500, 502, 503, 999,
        ] {
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
        assert_eq!(
            store(&[("cache-control", "max-age=60"), ("vary", "Accept-Language")]),
            Storable::No("vary names a header outside the key")
        );
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
        for bad in ["-1", "ten", "1, 2", "", "1.5"] {
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

    // --- serving ------------------------------------------------------------------------

    #[test]
    fn freshness_windows() {
        assert_eq!(
            freshness(0, 60, 10, 100),
            Freshness::Fresh { ttl_left_s: 60 }
        );
        assert_eq!(
            freshness(59, 60, 10, 100),
            Freshness::Fresh { ttl_left_s: 1 }
        );
        assert_eq!(
            freshness(60, 60, 10, 100),
            Freshness::StaleServable { ttl_left_s: 0 }
        );
        assert_eq!(
            freshness(69, 60, 10, 100),
            Freshness::StaleServable { ttl_left_s: -9 }
        );
        assert_eq!(
            freshness(70, 60, 10, 100),
            Freshness::StaleIfError { ttl_left_s: -10 }
        );
        assert_eq!(
            freshness(159, 60, 10, 100),
            Freshness::StaleIfError { ttl_left_s: -99 }
        );
        assert_eq!(
            freshness(160, 60, 10, 100),
            Freshness::Expired { ttl_left_s: -100 }
        );
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

    // --- revalidation -------------------------------------------------------------------

    #[test]
    fn conditional_request_headers() {
        let lm = "Sun, 06 Nov 1994 08:49:37 GMT";
        let stored = [
            ("content-type", "application/json"),
            ("ETag", "W/\"v7\""),
            ("Last-Modified", lm),
        ];
        assert_eq!(
            conditional_headers(&stored),
            vec![
                ("if-none-match", "W/\"v7\"".to_owned()),
                ("if-modified-since", lm.to_owned())
            ]
        );
        assert!(conditional_headers::<&str, &str>(&[]).is_empty());
        // Malformed validators are not sent.
        let bad = [("etag", "v7"), ("last-modified", "yesterday")];
        assert!(conditional_headers(&bad).is_empty());
        let owned = vec![("etag".to_owned(), "\"x\"".to_owned())];
        assert_eq!(conditional_headers(&owned).len(), 1);
    }

    #[test]
    fn merging_a_304() {
        let stored = [
            ("Content-Type", "application/json"),
            ("Content-Length", "120"),
            ("Cache-Control", "max-age=60"),
            ("ETag", "\"v1\""),
            ("X-A", "1"),
            ("x-a", "2"),
            ("Date", "Sun, 06 Nov 1994 08:49:37 GMT"),
        ];
        let not_modified = [
            ("cache-control", "max-age=120"),
            ("Date", "Sun, 06 Nov 1994 09:00:00 GMT"),
            ("Content-Length", "0"),
            ("Set-Cookie", "s=1"),
            ("Age", "3"),
            ("Connection", "x-hop"),
            ("x-hop", "1"),
            ("Transfer-Encoding", "chunked"),
            ("X-A", "3"),
            ("ETag", "\"v1\""),
        ];
        assert!(not_modified_matches(&stored, &not_modified));
        let merged = merge_304(&stored, &not_modified);
        let get = |n: &str| -> Vec<&str> {
            merged
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case(n))
                .map(|(_, v)| v.as_str())
                .collect()
        };
        assert_eq!(get("cache-control"), ["max-age=120"]);
        assert_eq!(get("date"), ["Sun, 06 Nov 1994 09:00:00 GMT"]);
        assert_eq!(get("content-length"), ["120"]);
        assert_eq!(get("x-a"), ["3"]);
        assert_eq!(get("content-type"), ["application/json"]);
        assert_eq!(get("etag"), ["\"v1\""]);
        for gone in [
            "set-cookie",
            "age",
            "connection",
            "x-hop",
            "transfer-encoding",
        ] {
            assert!(get(gone).is_empty(), "{gone}");
        }
        // The merged headers give the new freshness.
        let view: Vec<(&str, &str)> = merged
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(yes(store(&view)).0, 120);
    }

    #[test]
    fn which_304_applies() {
        let stored = [("etag", "\"v1\""), ("last-modified", "A")];
        assert!(not_modified_matches(&stored, &[("ETag", "\"v1\"")]));
        assert!(not_modified_matches(&stored, &[("ETag", "W/\"v1\"")]));
        assert!(!not_modified_matches(&stored, &[("ETag", "\"v2\"")]));
        assert!(not_modified_matches(&stored, &[("Last-Modified", "A")]));
        assert!(!not_modified_matches(&stored, &[("Last-Modified", "B")]));
        assert!(not_modified_matches::<&str, &str, &str, &str>(&stored, &[]));
        assert!(!not_modified_matches(&[("x", "y")], &[("etag", "\"v1\"")]));
    }

    // --- Cache-Status -------------------------------------------------------------------

    #[test]
    fn cache_status_strings() {
        let fwd = |fwd, stored| Outcome::Forward {
            fwd,
            stored,
            fwd_status: None,
        };
        assert_eq!(
            cache_status(Outcome::Hit, 42, None),
            "fastgate; hit; ttl=42"
        );
        assert_eq!(
            cache_status(fwd(Fwd::Miss, true), 60, None),
            "fastgate; fwd=miss; stored; ttl=60"
        );
        assert_eq!(
            cache_status(fwd(Fwd::Miss, false), 60, None),
            "fastgate; fwd=miss"
        );
        assert_eq!(
            cache_status(fwd(Fwd::Miss, false), 0, Some("no freshness information")),
            "fastgate; fwd=miss; detail=\"no freshness information\""
        );
        assert_eq!(
            cache_status(fwd(Fwd::UriMiss, false), 0, Some("set-cookie")),
            "fastgate; fwd=uri-miss; detail=set-cookie"
        );
        assert_eq!(
            cache_status(Outcome::StaleWhileRevalidate, -3, None),
            "fastgate; hit; ttl=-3; fwd=stale"
        );
        assert_eq!(
            cache_status(Outcome::StaleIfError, -12, None),
            "fastgate; fwd=stale; ttl=-12; detail=stale-if-error"
        );
        assert_eq!(
            cache_status(fwd(Fwd::Bypass, false), 0, None),
            "fastgate; fwd=bypass"
        );
        assert_eq!(
            cache_status(fwd(Fwd::UriMiss, false), 0, None),
            "fastgate; fwd=uri-miss"
        );
        assert_eq!(
            cache_status(fwd(Fwd::Request, true), 30, None),
            "fastgate; fwd=request; stored; ttl=30"
        );
        assert_eq!(
            cache_status(fwd(Fwd::Method, false), 0, None),
            "fastgate; fwd=method"
        );
        assert_eq!(
            cache_status(fwd(Fwd::VaryMiss, true), 5, None),
            "fastgate; fwd=vary-miss; stored; ttl=5"
        );
        assert_eq!(
            cache_status(
                Outcome::Forward {
                    fwd: Fwd::Stale,
                    stored: true,
                    fwd_status: Some(304)
                },
                60,
                None
            ),
            "fastgate; fwd=stale; fwd-status=304; stored; ttl=60"
        );
        // Details are escaped; non-ASCII dropped; ttl clamped to an sf-integer.
        assert_eq!(
            cache_status(Outcome::Hit, i64::MIN, Some("a \"q\" \\ é\n")),
            "fastgate; hit; ttl=-999999999999999; detail=\"a \\\"q\\\" \\\\ \""
        );
        assert_eq!(
            cache_status(fwd(Fwd::Miss, false), 0, Some("")),
            "fastgate; fwd=miss; detail=\"\""
        );
    }

    // --- robustness ---------------------------------------------------------------------

    use crate::test_rng::Rng;

    impl Rng {
        fn text(&mut self) -> String {
            const PIECES: &[&[u8]] = &[
                b"max-age",
                b"s-maxage",
                b"no-store",
                b"private",
                b"no-cache",
                b"stale-if-error",
                b"=",
                b"\"",
                b"\\",
                b",",
                b" ",
                b"\t",
                b"99999999999999999999",
                b"60",
                b"-",
                b"Sun, 06 Nov 1994 08:49:37 GMT",
                b"Sunday, ",
                b"Nov",
                b"  6 ",
                b":",
                b"GMT",
                b"{sub}",
                b"&",
                b"utm_source",
                b"\xff",
                b"\xc3\xa9",
                b"\x00",
                b"W/",
            ];
            let n = (self.next() % 12) as usize;
            let raw: Vec<u8> = (0..n)
                .flat_map(|_| {
                    PIECES[(self.next() % PIECES.len() as u64) as usize]
                        .iter()
                        .copied()
                })
                .collect();
            String::from_utf8_lossy(&raw).into_owned()
        }
    }

    #[test]
    fn random_inputs_never_panic() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let settings = CacheSettings::default();
        let p = policy(
            r#"{"mode":"public","stale_while_revalidate_s":5,"vary":["x"],"max_object_bytes":50}"#,
        );
        for _ in 0..20_000 {
            let (a_owned, b_owned) = (rng.text(), rng.text());
            let (a, b) = (a_owned.as_str(), b_owned.as_str());
            let cc = CacheControl::parse(a);
            if let Some(m) = cc.max_age {
                assert!(m <= DELTA_SECONDS_CAP);
            }
            let _ = parse_http_date(a);
            let _ = parse_http_date(b);
            let headers = [
                ("cache-control", a),
                ("expires", b),
                ("date", a),
                ("age", b),
                ("vary", b),
                ("content-length", a),
                ("etag", b),
            ];
            let status = [200, 204, 206, 404, 500][(rng.next() % 5) as usize];
            let _ = storability(
                status,
                &headers,
                &p,
                rng.next().is_multiple_of(2),
                rng.next(),
            );
            let _ =
                request_cacheability(a, rng.next().is_multiple_of(2), CacheMode::Public, Some(b));
            let k = cache_key(a, b, Some(a), &[(b, Some(a))], Some(b), &settings);
            let _ = key_hex(&k);
            let _ = normalize_query(Some(b), &settings);
            for key in surrogate_keys(&[a, b], Some(a)) {
                assert!(is_valid_surrogate_key(&key), "{key:?}");
            }
            let _ = validate_templates(&[a], true);
            let _ = conditional_headers(&headers);
            let _ = not_modified_matches(&headers, &headers[..3]);
            let _ = merge_304(&headers, &headers[2..]);
            let f = freshness(rng.next(), rng.next(), rng.next(), rng.next());
            let status_value = cache_status(
                Outcome::Forward {
                    fwd: Fwd::Miss,
                    stored: rng.next().is_multiple_of(2),
                    fwd_status: Some(rng.next() as u16),
                },
                f.ttl_left_s(),
                Some(a),
            );
            assert!(
                status_value.bytes().all(|c| (b' '..=b'~').contains(&c)),
                "{status_value:?}"
            );
            let _ = age_header(rng.next());
        }
    }

    #[test]
    fn stored_entries_keep_the_resource_headers_only() {
        let meta = StoredMeta::new(
            200,
            &[
                ("Content-Type", "application/json"),
                ("ETag", "\"a\""),
                ("X-Request-Id", "r1"),
                ("Age", "4"),
                ("Connection", "close"),
                ("Content-Length", "12"),
            ],
            60,
            5,
            10,
            false,
        );
        assert_eq!(
            meta.headers,
            vec![
                ("content-type".to_owned(), "application/json".to_owned()),
                ("etag".to_owned(), "\"a\"".to_owned())
            ]
        );
        assert_eq!(meta.stale_window_s(), 10);
        assert_eq!(StoredMeta::decode(&meta.encode()), Some(meta.clone()));
        assert_eq!(StoredMeta::decode(b"not json"), None);
        let fresh = StoredMeta::new(200, &[("x", "y")], 120, 0, 0, true);
        let refreshed = meta.refreshed(
            &[("ETag", "\"a\""), ("Cache-Control", "max-age=120")],
            &fresh,
        );
        assert_eq!(refreshed.ttl_s, 120);
        assert!(refreshed.shareable);
        assert!(refreshed
            .headers
            .contains(&("cache-control".to_owned(), "max-age=120".to_owned())));
        assert!(refreshed
            .headers
            .contains(&("content-type".to_owned(), "application/json".to_owned())));
    }

    #[test]
    fn client_conditionals_and_private_answers() {
        assert!(client_not_modified(Some("\"a\""), Some("\"a\"")));
        assert!(client_not_modified(Some("W/\"a\", \"b\""), Some("\"a\"")));
        assert!(client_not_modified(Some("*"), Some("\"a\"")));
        assert!(!client_not_modified(Some("\"b\""), Some("\"a\"")));
        assert!(!client_not_modified(None, Some("\"a\"")));
        assert!(!client_not_modified(Some("\"a\""), None));
        assert_eq!(per_user_client_cache_control(42), "private, max-age=42");
        assert_eq!(per_user_client_cache_control(-3), "private, max-age=0");
    }
}
