//! Where the token is found: RFC 6750 §2.1's `Authorization: Bearer`, else (for browsers,
//! which hold it in an HttpOnly cookie) the configured cookie. Nothing here judges the
//! token beyond its RFC 7235 `token68` shape; that is the verifier's job.

use super::TokenError;

/// Finds the bearer token: `Authorization: Bearer <token>` (scheme case-insensitive), else
/// the configured cookie. `Err` for an `Authorization: Bearer` that carries no usable token.
pub fn extract_token<'a>(
    authorization: Option<&'a str>,
    cookie_header: Option<&'a str>,
    cookie_name: Option<&str>,
) -> Result<Option<&'a str>, TokenError> {
    if let Some(value) = authorization {
        let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value.trim(), ""));
        if scheme.eq_ignore_ascii_case("bearer") {
            let token = rest.trim();
            let token68 = |b: u8| b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b);
            if token.is_empty() || !token.bytes().all(token68) {
                return Err(TokenError::Malformed("bearer credentials"));
            }
            return Ok(Some(token));
        }
    }
    let (Some(cookies), Some(name)) = (cookie_header, cookie_name) else {
        return Ok(None);
    };
    Ok(cookies
        .split(';')
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
        .filter(|v| !v.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_sources() {
        assert_eq!(
            extract_token(Some("bEaReR abc.def"), None, None),
            Ok(Some("abc.def"))
        );
        assert_eq!(extract_token(Some("Basic dXNlcg=="), None, None), Ok(None));
        assert!(extract_token(Some("Bearer "), None, None).is_err());
        assert!(extract_token(Some("Bearer a b"), None, None).is_err());
        assert_eq!(
            extract_token(None, Some("x=1; session=tok.en"), Some("session")),
            Ok(Some("tok.en"))
        );
        assert_eq!(extract_token(None, Some("x=1"), Some("session")), Ok(None));
    }
}
