//! Request methods (RFC 9110 §9), read the same way by the edge and the origin. A method is
//! a case-sensitive token: `get` is not `GET` but an unknown method, and a proxy that signs
//! one spelling while forwarding another makes the edge and the origin disagree about the
//! request. So the edge forwards only the methods it knows, spelled exactly as RFC 9110
//! spells them, and refuses the rest before any other work; the origin refuses a signed
//! request with any other method, and treats every method but the safe ones as a write
//! (its nonce may be used once: [`crate::nonce`]).
//!
//! `CONNECT` (a tunnel) and `TRACE` (it reflects the request, credentials included) are
//! known but never forwarded: the edge answers 501 as for any method it does not implement.

/// The methods the edge forwards, in the order an `Allow` field lists them.
pub const FORWARDED: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// Whether the edge forwards `method` at all (exact, case-sensitive match).
#[inline]
pub fn is_forwarded(method: &str) -> bool {
    FORWARDED.contains(&method)
}

/// A safe method (RFC 9110 §9.2.1): a request with it changes nothing, so it may be sent
/// again (a failover retry, a revalidation). Every other method, an unknown or
/// extension one included, is treated as a write.
#[inline]
pub fn is_safe(method: &str) -> bool {
    matches!(method, "GET" | "HEAD" | "OPTIONS" | "TRACE")
}

/// The `Allow` field value (RFC 9110 §10.2.1) for the methods `allows` accepts, in the
/// order of [`FORWARDED`].
pub fn allow_value(allows: impl Fn(&str) -> bool) -> String {
    let allowed: Vec<&str> = FORWARDED.into_iter().filter(|m| allows(m)).collect();
    allowed.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_rfc_spelling_of_a_forwarded_method_is_forwarded() {
        for m in FORWARDED {
            assert!(is_forwarded(m), "{m}");
            assert!(!is_forwarded(&m.to_ascii_lowercase()), "{m}");
        }
        for m in [
            "get", "Get", "CONNECT", "TRACE", "PROPFIND", "", "GET ", "G\u{0}T",
        ] {
            assert!(!is_forwarded(m), "{m:?}");
        }
    }

    #[test]
    fn allow_lists_methods_in_a_fixed_order() {
        assert_eq!(allow_value(|m| matches!(m, "HEAD" | "GET")), "GET, HEAD");
        assert_eq!(allow_value(|m| m == "POST"), "POST");
        assert_eq!(allow_value(|_| false), "");
    }
}
