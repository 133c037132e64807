//! The canonical email: one reading of an email value, shared by the edge's login limit and
//! the origin's account lookup.
//!
//! The edge counts login attempts per account, and the origin decides which account a login
//! names. If the two read the same value differently, every spelling the origin accepts but
//! the edge tells apart is a fresh counter for the same account (a brute-force bypass:
//! `Guess <victim@example.com>`, or the address padded with U+001C). So both sides take the
//! address out of the value here.
//!
//! How the origin reads a value (pydantic's `EmailStr` with email-validator):
//! 1. [`addr_spec`]: a display name is dropped (`Name <addr>`, `"Name" <addr>`), then Python
//!    whitespace is trimmed: [`is_py_space`], which is Unicode `White_Space` plus the
//!    information separators U+001C–U+001F that `str.isspace` counts.
//! 2. The address is split at its **last** `@`, then validated (the origin's own module).
//! 3. The account is `local@domain` with the local part exactly as sent and the domain
//!    folded by [`fold`]. email-validator keeps the local part's case too (RFC 5321 makes it
//!    case-sensitive), and the origin compares stored addresses byte for byte.
//!
//! Folding choices, and what they mean for "the same account":
//! - [`fold`] is Unicode lower-casing (`str::to_lowercase`, context-sensitive final sigma
//!   included), not IDNA: no UTS-46 mapping, no punycode, no NFC. `bücher.example` and
//!   `xn--bcher-kva.example` are different accounts at the origin, and so are the NFC and NFD
//!   spellings of one name; the Kelvin sign (U+212A) folds to `k`, so it is the same account
//!   as the ASCII spelling.
//! - [`canonical`] (the login-limit identity) folds the local part as well. It is therefore
//!   never finer than the account the origin looks up: every value the origin resolves to
//!   one account has one canonical form. It is coarser in one way only: accounts whose local
//!   parts differ only in case share a login counter, which costs nothing (a guesser gains no
//!   attempts from case) and keeps the edge's earlier "any case is one counter" behaviour.

/// The longest value the origin reads as an email, in characters (email-validator's limit).
pub const MAX_LENGTH: usize = 2048;

/// Python's `str.isspace`, as the origin trims an email: Unicode `White_Space`, plus the
/// information separators U+001C–U+001F (Unicode class B/S, which Python counts and Rust's
/// `char::is_whitespace` does not).
#[inline]
pub fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// `Name <addr>` or `"Name" <addr>` → `addr`, as pydantic reads an `EmailStr`: the value,
/// trimmed, ends with `>`, the text before the first `<` is a quoted string or only letters,
/// digits, whitespace and atext specials, and the brackets hold something. Anything else is
/// returned unchanged.
#[inline]
pub fn strip_display_name(value: &str) -> &str {
    let t = value.trim_matches(is_py_space);
    let (Some(lt), true) = (t.find('<'), t.ends_with('>')) else {
        return value;
    };
    let inner = &t[lt + 1..t.len() - 1];
    let name = t[..lt].trim_matches(is_py_space);
    let quoted = name.len() >= 2 && name.starts_with('"') && name.ends_with('"');
    let unquoted = name
        .chars()
        .all(|c| c.is_alphanumeric() || c.is_whitespace() || ".!#$%&'*+-/=?^_`{|}~".contains(c));
    if inner.is_empty() || !(quoted || unquoted) {
        return value;
    }
    inner
}

/// The address the origin validates: the display name dropped, then Python whitespace
/// trimmed (step 1 above).
#[inline]
pub fn addr_spec(value: &str) -> &str {
    strip_display_name(value).trim_matches(is_py_space)
}

/// The case folding of the origin's domains and of every part of [`canonical`]: Unicode
/// lower-casing, without IDNA or normalisation (see the module docs).
#[inline]
pub fn fold(s: &str) -> String {
    s.to_lowercase()
}

/// The canonical form of an email value: [`addr_spec`], split at the last `@`, each part
/// [`fold`]ed: `Final Guess <Victim@Example.COM>` and `\u{1c}victim@example.com` are both
/// `victim@example.com`.
///
/// `None` when the origin refuses the value before any lookup, so no account is named: a
/// CR or LF, more than [`MAX_LENGTH`] characters, no `@`, or nothing on one side of it. The
/// parts are folded separately, as the origin folds the domain alone, so a context-sensitive
/// mapping (the final sigma) sees the same neighbours on both sides.
#[inline]
pub fn canonical(value: &str) -> Option<String> {
    if value.contains(['\r', '\n']) || value.chars().nth(MAX_LENGTH).is_some() {
        return None;
    }
    let (local, domain) = addr_spec(value).rsplit_once('@')?;
    if local.is_empty() || domain.is_empty() {
        return None;
    }
    let mut out = fold(local);
    out.push('@');
    out.push_str(&fold(domain));
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_of_one_address_is_one_canonical_form() {
        let victim = Some("victim@example.com".to_owned());
        for spelling in [
            "victim@example.com",
            "Victim@Example.COM",
            "  victim@example.com\t",
            "Final Guess <victim@example.com>",
            "guess7 <victim@example.com>",
            "\"Mallory, the guesser\" <victim@example.com>",
            "\u{1c}victim@example.com\u{1f}",
            "\u{1c}\u{1d}Guess <\u{1e}victim@example.com\u{1f}>\u{a0}",
            "\u{2003}victim@EXAMPLE.com\u{3000}",
        ] {
            assert_eq!(canonical(spelling), victim, "{spelling:?}");
        }
        // A display name that is neither quoted nor plain text is not stripped.
        assert_eq!(
            canonical("a,b <victim@example.com>").as_deref(),
            Some("a,b <victim@example.com>")
        );
        assert_eq!(addr_spec("<>"), "<>");
    }

    #[test]
    fn values_the_origin_refuses_name_no_account() {
        for value in [
            "",
            "victim",
            "@example.com",
            "victim@",
            "Guess <>",
            "victim@example.com\r",
            "victim@exa\nmple.com",
        ] {
            assert_eq!(canonical(value), None, "{value:?}");
        }
        let long = format!("{}@example.com", "a".repeat(MAX_LENGTH));
        assert_eq!(canonical(&long), None);
        let just = format!("{}@example.com", "a".repeat(MAX_LENGTH - 12));
        assert_eq!(just.chars().count(), MAX_LENGTH);
        assert!(canonical(&just).is_some());
    }

    #[test]
    fn the_last_at_sign_splits_and_each_part_folds_alone() {
        assert_eq!(canonical("\"a@b\"@C.com").as_deref(), Some("\"a@b\"@c.com"));
        // The Kelvin sign folds to ASCII `k`, as the origin folds the domain.
        assert_eq!(
            canonical("v@\u{212a}.example").as_deref(),
            Some("v@k.example")
        );
        // Final sigma: the domain folds as the origin folds it alone.
        let domain = "ΟΔΟΣ.example";
        assert_eq!(
            canonical(&format!("v@{domain}")),
            Some(format!("v@{}", fold(domain)))
        );
        // No IDNA and no normalisation: distinct accounts stay distinct.
        assert_ne!(
            canonical("v@bücher.example"),
            canonical("v@xn--bcher-kva.example")
        );
        assert_ne!(
            canonical("v@b\u{fc}.example"),
            canonical("v@bu\u{308}.example")
        );
    }

    #[test]
    fn python_whitespace_includes_the_information_separators() {
        for c in [
            '\u{1c}', '\u{1d}', '\u{1e}', '\u{1f}', ' ', '\t', '\u{85}', '\u{a0}',
        ] {
            assert!(is_py_space(c), "{c:?}");
        }
        for c in ['\u{0}', '\u{1b}', '\u{200b}', 'a', '<'] {
            assert!(!is_py_space(c), "{c:?}");
        }
    }

    #[test]
    fn folding_twice_changes_nothing() {
        // `canonical` relies on folding being idempotent for every character.
        for c in (0..=0x10ffff).filter_map(char::from_u32) {
            let once = fold(&c.to_string());
            assert_eq!(fold(&once), once, "U+{:04X}", c as u32);
        }
    }
}
