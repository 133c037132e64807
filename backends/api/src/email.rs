//! `EmailStr` as pydantic + email-validator (with `check_deliverability=False`) accept it,
//! for ASCII addresses, with their exact reasons, since those reach clients in 422 bodies.
//!
//! Which address a value names (display name, Python whitespace, the domain's case folding)
//! is the contract crate's [`fastgate_wire::email`], so the edge's login limit counts the
//! account this module resolves, whatever the spelling. This module only validates.

use fastgate_wire::email::{addr_spec, fold, MAX_LENGTH as MAX_EMAIL_LENGTH};

const ATEXT_SPECIALS: &str = "_!#$%&'*+-/=?^`{|}~";
/// IANA special-use names email-validator refuses (their subdomains too).
const SPECIAL_USE: &[&str] = &["arpa", "invalid", "local", "localhost", "onion", "test"];

/// Returns the normalised address (domain lower-cased) or email-validator's reason.
pub fn validate(value: &str) -> Result<String, String> {
    if value.chars().count() > MAX_EMAIL_LENGTH {
        return Err(format!(
            "Length must not exceed {MAX_EMAIL_LENGTH} characters"
        ));
    }
    if value.contains('\r') || value.contains('\n') {
        return Err("Carriage return and line feed characters are not allowed".into());
    }
    let email = addr_spec(value);
    let Some((local, domain)) = email.rsplit_once('@') else {
        return Err("An email address must have an @-sign.".into());
    };
    if local.is_empty() {
        return Err("There must be something before the @-sign.".into());
    }
    if domain.is_empty() {
        return Err("There must be something after the @-sign.".into());
    }
    check_local(local)?;
    let domain = check_domain(domain)?;
    Ok(format!("{local}@{domain}"))
}

fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || ATEXT_SPECIALS.contains(c) || !c.is_ascii()
}

/// email-validator's `safe_character_display`.
fn display(c: char) -> String {
    match c {
        '\\' => "\"\\\"".into(),
        ' ' => "SPACE".into(),
        '\'' => "\"'\"".into(),
        c if c.is_control() || c.is_whitespace() => format!("U+{:04X}", c as u32),
        c => format!("'{c}'"),
    }
}

fn bad_chars(s: &str, ok: impl Fn(char) -> bool) -> Option<String> {
    let mut bad: Vec<String> = s.chars().filter(|c| !ok(*c)).map(display).collect();
    if bad.is_empty() {
        return None;
    }
    bad.sort();
    bad.dedup();
    Some(bad.join(", "))
}

fn too_many(n: usize, limit: usize) -> String {
    let diff = n - limit;
    format!(
        "({diff} character{} too many)",
        if diff == 1 { "" } else { "s" }
    )
}

fn check_dots(label: &str, start: &str, end: &str, hostname: bool) -> Result<(), String> {
    if label.ends_with('.') {
        return Err(end.replace("{}", "period"));
    }
    if label.starts_with('.') {
        return Err(start.replace("{}", "period"));
    }
    if label.contains("..") {
        return Err("An email address cannot have two periods in a row.".into());
    }
    if hostname {
        if label.ends_with('-') {
            return Err(end.replace("{}", "hyphen"));
        }
        if label.starts_with('-') {
            return Err(start.replace("{}", "hyphen"));
        }
        if label.contains(".-") || label.contains("-.") {
            return Err(
                "An email address cannot have a period and a hyphen next to each other.".into(),
            );
        }
    }
    Ok(())
}

fn check_local(local: &str) -> Result<(), String> {
    let n = local.chars().count();
    if n > 64 {
        return Err(format!(
            "The email address is too long before the @-sign {}.",
            too_many(n, 64)
        ));
    }
    if let Some(bad) = bad_chars(local, |c| is_atext(c) || c == '.') {
        return Err(format!(
            "The email address contains invalid characters before the @-sign: {bad}."
        ));
    }
    check_dots(
        local,
        "An email address cannot start with a {}.",
        "An email address cannot have a {} immediately before the @-sign.",
        false,
    )
}

fn check_domain(domain: &str) -> Result<String, String> {
    let n = domain.chars().count();
    if n > 255 {
        return Err(format!(
            "The email address is too long after the @-sign {}.",
            too_many(n, 255)
        ));
    }
    if let Some(bad) = bad_chars(domain, |c| {
        c.is_ascii_alphanumeric() || c == '-' || c == '.' || !c.is_ascii()
    }) {
        return Err(format!(
            "The part after the @-sign contains invalid characters: {bad}."
        ));
    }
    check_dots(
        domain,
        "An email address cannot have a {} immediately after the @-sign.",
        "An email address cannot end with a {}.",
        true,
    )?;
    let domain = fold(domain);
    if domain.split('.').any(|label| label.chars().count() > 63) {
        return Err("After the @-sign, periods cannot be separated by so many characters (63 characters limit).".into());
    }
    if !domain.contains('.') {
        return Err("The part after the @-sign is not valid. It should have a period.".into());
    }
    if !domain
        .chars()
        .last()
        .is_some_and(|c| c.is_ascii_alphabetic())
    {
        return Err(
            "The part after the @-sign is not valid. It is not within a valid top-level domain."
                .into(),
        );
    }
    if SPECIAL_USE
        .iter()
        .any(|d| domain == *d || domain.ends_with(&format!(".{d}")))
    {
        return Err("The part after the @-sign is a special-use or reserved name that cannot be used with email.".into());
    }
    Ok(domain)
}

#[cfg(test)]
mod tests {
    use super::validate;
    use fastgate_wire::email::canonical;

    #[test]
    fn reasons_match_email_validator() {
        assert_eq!(validate("A.B@EXAMPLE.COM").unwrap(), "A.B@example.com");
        assert_eq!(validate("Zed <z@q.com>").unwrap(), "z@q.com");
        assert_eq!(
            validate("x").unwrap_err(),
            "An email address must have an @-sign."
        );
        assert_eq!(
            validate("a@").unwrap_err(),
            "There must be something after the @-sign."
        );
        assert_eq!(
            validate("@b.com").unwrap_err(),
            "There must be something before the @-sign."
        );
        assert_eq!(
            validate("a@b").unwrap_err(),
            "The part after the @-sign is not valid. It should have a period."
        );
        assert_eq!(
            validate("a b@c.com").unwrap_err(),
            "The email address contains invalid characters before the @-sign: SPACE."
        );
        assert_eq!(
            validate("a@b.test").unwrap_err(),
            "The part after the @-sign is a special-use or reserved name that cannot be used with email."
        );
    }

    /// The edge keys login attempts on `canonical`: every spelling this module resolves to
    /// one account must have one canonical form, the account's own.
    #[test]
    fn every_spelling_of_an_account_has_the_accounts_canonical_form() {
        let spellings = [
            "victim@example.com",
            "victim@EXAMPLE.com",
            "Final Guess <victim@example.com>",
            "guess1 <victim@example.com>",
            "\"Some One\" <victim@Example.Com>",
            "\u{1c}victim@example.com",
            "victim@example.com\u{1f}\u{1e}",
            "\u{1d} Guess <\u{1c}victim@example.com\u{1f}> ",
            "\u{2003}victim@example.com\u{3000}",
        ];
        for value in spellings {
            assert_eq!(
                validate(value).as_deref(),
                Ok("victim@example.com"),
                "{value:?}"
            );
            assert_eq!(
                canonical(value).as_deref(),
                Some("victim@example.com"),
                "{value:?}"
            );
        }
        // The domain folds by Unicode lower-case on both sides: the Kelvin sign is `k`.
        assert_eq!(
            validate("v@\u{212a}.example.com").as_deref(),
            Ok("v@k.example.com")
        );
        assert_eq!(
            canonical("v@\u{212a}.example.com").as_deref(),
            Some("v@k.example.com")
        );
        // The local part keeps its case (a different account), and the canonical form of
        // the stored address is the canonical form of the value it came from.
        for value in [
            "A.B@EXAMPLE.COM",
            "Zed <Z@Q.com>",
            "\u{1c}Mixed.Case@Sub.Example.org",
        ] {
            let stored = validate(value).unwrap();
            assert_eq!(canonical(&stored), canonical(value), "{value:?}");
            let (local, _) = stored.rsplit_once('@').unwrap();
            assert!(local.chars().any(char::is_uppercase), "{stored}");
        }
        // Values refused before any lookup have no canonical form (the edge keys them on
        // the client IP alone).
        for value in ["victim", "@example.com", "victim@", "victim@example.com\n"] {
            assert!(validate(value).is_err());
            assert_eq!(canonical(value), None, "{value:?}");
        }
    }
}
