//! Structured-field strings (RFC 8941 §3.3.3), for the values the edge writes itself
//! (`RateLimit` policy names, `Cache-Status` details). Writing only; the edge never parses
//! a client's structured field with this.

/// `s` as an sf-string: printable ASCII kept, `"` and `\` escaped, and any other character
/// replaced by `_` (a string may hold nothing else, and a dropped character could merge
/// two distinct names into one).
pub fn sf_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => out.push('_'),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_replaces() {
        assert_eq!(sf_string("api"), "\"api\"");
        assert_eq!(sf_string("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(sf_string("é\n"), "\"__\"");
    }
}
