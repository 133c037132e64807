//! The login limit's key: which account a login body names, read the way the origin reads it.
//!
//! A brute-force limit per account only holds if the edge and the origin agree on the
//! account. Two readings must match:
//! - **the body**: the origin decodes it with CPython's `json.loads` rules
//!   (`backends/api/src/json.rs`), where the last duplicate key wins, `NaN`/`Infinity`,
//!   huge numbers and lone surrogates (`\ud800`, read as U+FFFD) are accepted, and nesting
//!   is deep. `serde_json` refuses several of those, and a body the edge cannot read would
//!   get its own counter while the origin still checks the password. [`body_email`] is
//!   therefore a small scanner of CPython's grammar that is *at least as lenient* as the
//!   origin: for every body the origin accepts it finds the same top-level `email` string,
//!   and what it makes of a body the origin refuses does not matter (no password is
//!   checked). It is linear in the body and allocates only the strings it decodes.
//! - **the address**: [`fastgate_wire::email::canonical`], the contract crate's reading of a
//!   display name, Python whitespace and case, which the origin's validation uses too.
//!
//! A body with no account in it (too large, not JSON, no string `email`, an email the origin
//! refuses) is keyed on the client alone (`<net>|-`): one counter per client for all such
//! bodies, never one per spelling.

use std::fmt::Write as _;
use std::net::IpAddr;

use fastgate_wire::email;

use super::{client_net, push_sha256_hex};

/// Login bodies up to this size are read for the email: the edge's default request body
/// limit, so every login body the origin can receive through a default route is read. A
/// larger one (a route whose body limit is raised) is keyed on the client alone.
pub const MAX_LOGIN_BODY: usize = 1024 * 1024;

/// The login limit's key material: `<client net>|<sha256 hex of the canonical email>`, or
/// `<client net>|-` when the body names no account (see the module docs). The raw email
/// never appears. Pass the result to [`super::key`] as `header_value` for a `login` spec.
pub fn login_key(ip: Option<IpAddr>, body: &[u8]) -> String {
    let email = (body.len() <= MAX_LOGIN_BODY)
        .then(|| body_email(body))
        .flatten()
        .and_then(|e| email::canonical(&e));
    let mut out = String::with_capacity(48 + 64);
    match ip {
        Some(ip) => {
            let _ = write!(out, "{}", client_net(ip));
        }
        None => out.push('-'),
    }
    out.push('|');
    match email {
        Some(e) => push_sha256_hex(&mut out, e.as_bytes()),
        None => out.push('-'),
    }
    out
}

/// The top-level `email` member of a JSON object body, when it is a string (the last one,
/// as in a Python dict); `None` for a body the origin would refuse or that has no string
/// `email`.
pub fn body_email(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    if text.starts_with('\u{feff}') {
        return None; // CPython refuses a BOM ("Unexpected UTF-8 BOM").
    }
    let mut s = Scanner {
        b: text.as_bytes(),
        text,
        i: 0,
    };
    s.ws();
    s.eat(b'{')?;
    let mut email = None;
    s.ws();
    if s.peek() == Some(b'}') {
        s.i += 1;
    } else {
        loop {
            s.eat(b'"')?;
            let is_email = s.string()? == "email";
            s.ws();
            s.eat(b':')?;
            s.ws();
            if is_email {
                // A later non-string `email` replaces an earlier string, as in a dict.
                email = match s.peek() {
                    Some(b'"') => {
                        s.i += 1;
                        Some(s.string()?)
                    }
                    _ => {
                        s.skip_value()?;
                        None
                    }
                };
            } else {
                s.skip_value()?;
            }
            s.ws();
            match s.next()? {
                b',' => s.ws(),
                b'}' => break,
                _ => return None,
            }
        }
    }
    s.ws();
    (s.i == s.b.len()).then_some(email).flatten()
}

/// A cursor over the body's bytes. Every step moves forward, so the scan is linear.
struct Scanner<'a> {
    b: &'a [u8],
    text: &'a str,
    i: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }

    fn eat(&mut self, want: u8) -> Option<()> {
        (self.next()? == want).then_some(())
    }

    /// JSON whitespace, as CPython skips it: space, tab, LF, CR.
    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    /// Skips one value without building it: a string, a nested array or object (brackets
    /// counted, strings stepped over), or a scalar token (a number, `true`, `NaN`, ...) up
    /// to the next delimiter. Lenient on purpose: only the origin decides validity.
    fn skip_value(&mut self) -> Option<()> {
        let mut depth = 0usize;
        loop {
            match self.peek()? {
                b'"' => {
                    self.i += 1;
                    self.skip_string()?;
                    if depth == 0 {
                        return Some(());
                    }
                }
                b'{' | b'[' => {
                    depth += 1;
                    self.i += 1;
                }
                b'}' | b']' if depth > 0 => {
                    depth -= 1;
                    self.i += 1;
                    if depth == 0 {
                        return Some(());
                    }
                }
                b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r' if depth == 0 => return Some(()),
                _ => self.i += 1,
            }
        }
    }

    /// Steps over a string's body (just past its opening quote) without decoding it.
    fn skip_string(&mut self) -> Option<()> {
        loop {
            match self.next()? {
                b'"' => return Some(()),
                b'\\' => {
                    self.next()?;
                }
                _ => {}
            }
        }
    }

    /// Decodes a string (just past its opening quote) as CPython's strict `scanstring`
    /// does, and as the origin keeps it: escapes decoded, a `\uD8xx\uDCxx` pair joined, a
    /// lone surrogate read as U+FFFD, a raw control character refused.
    fn string(&mut self) -> Option<String> {
        let mut out = String::new();
        loop {
            let start = self.i;
            while let Some(c) = self.peek() {
                if c == b'"' || c == b'\\' || c < 0x20 {
                    break;
                }
                self.i += 1;
            }
            // The run stops at ASCII bytes only, so both ends are character boundaries.
            out.push_str(self.text.get(start..self.i)?);
            match self.next()? {
                b'"' => return Some(out),
                b'\\' => out.push(self.escape()?),
                _ => return None,
            }
        }
    }

    /// One escape, just past its backslash.
    fn escape(&mut self) -> Option<char> {
        Some(match self.next()? {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let hi = self.hex4(self.i)?;
                self.i += 4;
                let mut code = hi;
                if (0xd800..0xdc00).contains(&hi) && self.b.get(self.i..self.i + 2) == Some(b"\\u")
                {
                    if let Some(lo) = self
                        .hex4(self.i + 2)
                        .filter(|lo| (0xdc00..0xe000).contains(lo))
                    {
                        code = 0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00);
                        self.i += 6;
                    }
                }
                char::from_u32(code).unwrap_or('\u{fffd}')
            }
            _ => return None,
        })
    }

    /// Four hex digits at `at`, without moving.
    fn hex4(&self, at: usize) -> Option<u32> {
        let digits = self.b.get(at..at + 4)?;
        digits
            .iter()
            .try_fold(0u32, |v, &d| Some(v * 16 + char::from(d).to_digit(16)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email(body: &str) -> Option<String> {
        body_email(body.as_bytes())
    }

    #[test]
    fn reads_the_top_level_email_as_cpython_does() {
        let victim = Some("victim@example.com".to_owned());
        for body in [
            r#"{"email": "victim@example.com", "password": "x"}"#,
            r#" {"password":"x","email":"victim@example.com"} "#,
            "\t\r\n{\"email\"\n:\r\"victim@example.com\"\t}\n",
            r#"{"email": "victim\u0040example.com"}"#,
            r#"{"\u0065mail": "victim@example.com"}"#,
            r#"{"email": "attacker@example.com", "email": "victim@example.com"}"#,
            r#"{"email": 5, "email": "victim@example.com"}"#,
            // What CPython accepts and serde_json refuses: the same account.
            r#"{"email": "victim@example.com", "n": NaN, "i": -Infinity, "j": Infinity}"#,
            r#"{"email": "victim@example.com", "big": 1e999, "int": 123456789012345678901234567890}"#,
            r#"{"email": "victim@example.com", "s": "\ud800"}"#,
            r#"{"nested": {"email": "other@example.com", "a": [1, {"b": "]}"}]}, "email": "victim@example.com"}"#,
            r#"{"e": "\"quoted\\", "email": "victim@example.com", "z": []}"#,
        ] {
            assert_eq!(email(body), victim, "{body}");
        }
        let deep = format!(
            r#"{{"pad": {}1{}, "email": "victim@example.com"}}"#,
            "[".repeat(5000),
            "]".repeat(5000)
        );
        assert_eq!(email(&deep), victim);
    }

    /// Why not `serde_json`: it keeps the last duplicate as CPython does, but refuses
    /// bodies the origin reads, and each refusal would have been a fresh counter.
    #[test]
    fn serde_json_keeps_the_last_duplicate_but_refuses_what_the_origin_reads() {
        let dup = r#"{"email": "nobody@example.com", "email": "victim@example.com"}"#;
        let v: serde_json::Value = serde_json::from_str(dup).unwrap();
        assert_eq!(v["email"], "victim@example.com");
        assert_eq!(email(dup).as_deref(), Some("victim@example.com"));
        for body in [
            r#"{"email": "victim@example.com", "x": NaN}"#,
            r#"{"email": "victim@example.com", "x": -Infinity}"#,
            r#"{"email": "victim@example.com", "x": 1e999}"#,
            r#"{"email": "victim@example.com", "x": "\udc00"}"#,
        ] {
            assert!(
                serde_json::from_str::<serde_json::Value>(body).is_err(),
                "{body}"
            );
            assert_eq!(email(body).as_deref(), Some("victim@example.com"), "{body}");
        }
    }

    #[test]
    fn decodes_escapes_and_surrogates_as_the_origin_keeps_them() {
        assert_eq!(
            email(r#"{"email": "a\"\\\/\b\f\n\r\t"}"#).unwrap(),
            "a\"\\/\u{8}\u{c}\n\r\t"
        );
        assert_eq!(email(r#"{"email": "\ud83d\ude00"}"#).unwrap(), "😀");
        assert_eq!(email(r#"{"email": "\ud83dx"}"#).unwrap(), "\u{fffd}x");
        assert_eq!(
            email(r#"{"email": "\ude00\ud83d"}"#).unwrap(),
            "\u{fffd}\u{fffd}"
        );
        assert_eq!(email(r#"{"email": "\ud83d\u0041"}"#).unwrap(), "\u{fffd}A");
        assert_eq!(
            email(r#"{"email": "\u001cv@e.com"}"#).unwrap(),
            "\u{1c}v@e.com"
        );
        assert_eq!(email(r#"{"email": "é\u00e9"}"#).unwrap(), "éé");
    }

    #[test]
    fn no_account_when_the_origin_refuses_the_body_or_names_none() {
        for body in [
            "",
            "null",
            "[]",
            r#"["email", "victim@example.com"]"#,
            "{}",
            r#"{"email": null}"#,
            r#"{"email": "victim@example.com", "email": 5}"#,
            r#"{"email": "victim@example.com", "email": ["x"]}"#,
            r#"{"Email": "victim@example.com"}"#,
            r#"{"user": {"email": "victim@example.com"}}"#,
            r#"{"email": "victim@example.com"} x"#,
            r#"{"email": "victim@example.com",}"#,
            r#"{"email": "victim@example.com""#,
            r#"{"email": "victim@example.com"#,
            r#"{'email': 'victim@example.com'}"#,
            "{\"email\": \"victim@example.com\u{1}\"}",
            r#"{"email": "\q"}"#,
            r#"{"email": "\u12"}"#,
            "\u{feff}{\"email\": \"victim@example.com\"}",
        ] {
            assert_eq!(email(body), None, "{body:?}");
        }
        assert_eq!(body_email(b"{\"email\": \"v\xff@example.com\"}"), None);
    }
}
