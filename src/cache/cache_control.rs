//! `Cache-Control` (RFC 9111 §5.2), read tolerantly: it comes from clients and origins alike,
//! so garbage is skipped rather than refused, and whatever is ambiguous reads as the
//! conservative value.

/// RFC 9111 §1.2.2: a delta-seconds value too large to represent is taken as 2^31.
pub const DELTA_SECONDS_CAP: u64 = 2_147_483_648;

/// The Cache-Control directives that matter here (RFC 9111 §5.2). Delta-seconds values are
/// capped at 2^31 (§1.2.2); an invalid or missing argument reads as 0 (the conservative
/// reading for every delta directive here), and of a directive repeated the first
/// occurrence counts (§4.2.1).
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
    /// §5.2.2.3: store only if the status's caching rules are understood (then `no-store`
    /// does not apply).
    pub must_understand: bool,
    pub max_age: Option<u64>,
    pub s_maxage: Option<u64>,
    /// RFC 5861 §3.
    pub stale_while_revalidate: Option<u64>,
    /// RFC 5861 §4.
    pub stale_if_error: Option<u64>,
}

/// RFC 9111 §1.2.2 delta-seconds: ASCII digits, saturating at 2^31. `None` when malformed.
/// Also reads the `Age` header, which has the same grammar.
pub(crate) fn delta_seconds(s: &str) -> Option<u64> {
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
    if slot.is_none() {
        *slot = Some(arg.and_then(delta_seconds).unwrap_or(0));
    }
}

/// Calls `f(name, argument)` for each directive of a Cache-Control value: comma-separated,
/// OWS-trimmed, with an optional token or quoted-string argument (quotes removed, escapes
/// left as they are: no argument we read may contain one). Never panics; garbage is skipped.
pub(super) fn each_directive(value: &str, mut f: impl FnMut(&str, Option<&str>)) {
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
            } else if is("must-understand") {
                self.must_understand = true;
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

#[cfg(test)]
mod tests {
    use super::*;

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
        // Invalid and missing values read as 0, the first of repeated ones counts; overflow
        // caps at 2^31.
        assert_eq!(CacheControl::parse("max-age=abc").max_age, Some(0));
        assert_eq!(CacheControl::parse("max-age").max_age, Some(0));
        assert_eq!(CacheControl::parse("max-age=-5").max_age, Some(0));
        assert_eq!(
            CacheControl::parse("max-age=10, max-age=20").max_age,
            Some(10)
        );
        assert!(CacheControl::parse("must-understand, no-store").must_understand);
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
}
