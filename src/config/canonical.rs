//! The embedded config's compact text: `config/default.json` minus the whitespace between
//! tokens, computed at compile time (every request parses the embedded config, and JSON
//! parsing time grows with the bytes scanned). Key order, escapes and number spellings are
//! kept as written.
//!
//! The input is JSON that already parsed; on anything else the output is unspecified
//! (but still a pure function of the input).

/// Where the scan is: outside strings whitespace is dropped, inside everything is kept.
#[derive(Clone, Copy)]
struct Scan {
    in_string: bool,
    escaped: bool,
}

impl Scan {
    const START: Scan = Scan {
        in_string: false,
        escaped: false,
    };

    /// Whether byte `b` belongs to the canonical text; advances past it.
    const fn keep(&mut self, b: u8) -> bool {
        if self.in_string {
            if self.escaped {
                self.escaped = false;
            } else if b == b'\\' {
                self.escaped = true;
            } else if b == b'"' {
                self.in_string = false;
            }
            return true;
        }
        match b {
            b' ' | b'\t' | b'\n' | b'\r' => false,
            b'"' => {
                self.in_string = true;
                true
            }
            _ => true,
        }
    }
}

/// The length of `json`'s canonical text.
pub(super) const fn len(json: &[u8]) -> usize {
    let (mut scan, mut n, mut i) = (Scan::START, 0, 0);
    while i < json.len() {
        if scan.keep(json[i]) {
            n += 1;
        }
        i += 1;
    }
    n
}

/// `json`'s canonical text; `N` must be [`len`] of it.
pub(super) const fn text<const N: usize>(json: &[u8]) -> [u8; N] {
    let (mut scan, mut out, mut n, mut i) = (Scan::START, [0u8; N], 0, 0);
    while i < json.len() {
        if scan.keep(json[i]) {
            out[n] = json[i];
            n += 1;
        }
        i += 1;
    }
    assert!(n == N, "N is not the canonical length");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canonical(json: &str) -> String {
        let mut scan = Scan::START;
        let bytes = json.bytes().filter(|&b| scan.keep(b)).collect();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn drops_whitespace_between_tokens_only() {
        let pretty = "{\n  \"a b\": [1, 2],\r\n\t\"c\": \"x \\\" y\\\\\" , \"d\" : null }";
        assert_eq!(
            canonical(pretty),
            r#"{"a b":[1,2],"c":"x \" y\\","d":null}"#
        );
        assert_eq!(len(pretty.as_bytes()), canonical(pretty).len());
        const T: [u8; 6] = text(b" [ 1 , \"\" ] ");
        assert_eq!(&T, br#"[1,""]"#);
    }

    #[test]
    fn keeps_the_document_and_is_idempotent() {
        let pretty = "{\n  \"b\": {\"x\": [true, \"é \\u00e9\"]},\n  \"a\": 1.5e0\n}";
        let once = canonical(pretty);
        assert_eq!(once, r#"{"b":{"x":[true,"é \u00e9"]},"a":1.5e0}"#);
        let value: serde_json::Value = serde_json::from_str(pretty).unwrap();
        assert_eq!(
            value,
            serde_json::from_str::<serde_json::Value>(&once).unwrap()
        );
        assert_eq!(canonical(&once), once);
        // serde_json's own minified output is already canonical.
        assert_eq!(canonical(&value.to_string()), value.to_string());
    }
}
