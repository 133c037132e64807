//! Why a request was refused, already shaped as RFC 6750 §3 answers it: the status, the
//! `WWW-Authenticate` challenge and the problem `detail`. The texts never echo the token.

/// Why a token was refused. The `Display` text is the RFC 6750 `error_description`: short,
/// and never echoing the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("token too large")]
    TooLarge,
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    #[error("unsupported algorithm")]
    UnsupportedAlgorithm,
    #[error("unsupported critical header")]
    UnknownCrit,
    #[error("unknown key id")]
    UnknownKid,
    #[error("invalid signature")]
    BadSignature,
    #[error("token expired")]
    Expired,
    #[error("token not yet valid")]
    NotYetValid,
    #[error("untrusted issuer")]
    WrongIssuer,
    #[error("wrong audience")]
    WrongAudience,
    #[error("missing claim: {0}")]
    MissingClaim(&'static str),
}

/// A refused request, already shaped as RFC 6750 wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthFailure {
    /// No token where one is required: 401, `WWW-Authenticate: Bearer realm=...`.
    Missing,
    /// 401 with `error="invalid_token"`.
    Invalid(TokenError),
    /// 403 with `error="insufficient_scope"`.
    Forbidden { scope: Vec<String> },
    /// The keys could not be obtained (JWKS unreachable past its stale limit): 503.
    KeysUnavailable(String),
}

const REALM: &str = "fastgate";

impl AuthFailure {
    pub fn status(&self) -> u16 {
        match self {
            AuthFailure::Missing | AuthFailure::Invalid(_) => 401,
            AuthFailure::Forbidden { .. } => 403,
            AuthFailure::KeysUnavailable(_) => 503,
        }
    }

    /// The `WWW-Authenticate` value (RFC 6750 §3), if any.
    pub fn www_authenticate(&self) -> Option<String> {
        match self {
            AuthFailure::Missing => Some(format!("Bearer realm=\"{REALM}\"")),
            AuthFailure::Invalid(e) => Some(format!(
                "Bearer realm=\"{REALM}\", error=\"invalid_token\", error_description=\"{e}\""
            )),
            AuthFailure::Forbidden { scope } => Some(format!(
                "Bearer realm=\"{REALM}\", error=\"insufficient_scope\", scope=\"{}\"",
                scope.join(" ")
            )),
            AuthFailure::KeysUnavailable(_) => None,
        }
    }

    /// The problem `detail`: FastAPI's message where FastAPI has one, so clients reading
    /// `detail` keep working.
    pub fn detail(&self) -> String {
        match self {
            AuthFailure::Missing => "Not authenticated".into(),
            AuthFailure::Invalid(_) => "Invalid token".into(),
            AuthFailure::Forbidden { .. } => "Not enough permissions".into(),
            AuthFailure::KeysUnavailable(why) => format!("token keys unavailable: {why}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_follow_rfc_6750() {
        assert_eq!(
            AuthFailure::Missing.www_authenticate().unwrap(),
            r#"Bearer realm="fastgate""#
        );
        let e = AuthFailure::Invalid(TokenError::Expired)
            .www_authenticate()
            .unwrap();
        assert!(
            e.contains(r#"error="invalid_token", error_description="token expired""#),
            "{e}"
        );
    }
}
