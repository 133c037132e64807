//! The `Fastgate-Identity` codec: base64url (no padding) of the compact JSON of the claims
//! the edge verified. The origin reads these claims instead of re-parsing the caller's
//! token, so it must read back exactly what the edge wrote.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::Serialize;
use serde_json::{Map, Value};

/// The value for an anonymous request: `{}` encoded.
pub const ANONYMOUS_IDENTITY: &str = "e30";

/// The verified claims that matter to the origin, in the order they are written. Empty
/// `scopes`/`roles` and an absent `uid` are left out, to keep the header short.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Claims<'a> {
    pub sub: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<&'a str>,
    pub iss: &'a str,
    pub exp: u64,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    pub scopes: &'a [String],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    pub roles: &'a [String],
}

impl Claims<'_> {
    /// The `Fastgate-Identity` value for these claims.
    #[inline]
    pub fn encode(&self) -> String {
        // Serializing plain strings and numbers cannot fail; were it to, anonymous is the
        // safe reading.
        let json = serde_json::to_vec(self).unwrap_or_else(|_| b"{}".to_vec());
        URL_SAFE_NO_PAD.encode(json)
    }
}

/// Why a `Fastgate-Identity` value could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("not base64url without padding")]
    Base64,
    #[error("not a JSON object")]
    NotObject,
    #[error("sub/uid is not a string")]
    NotString,
}

/// The caller as the edge asserted it, read back at the origin.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EdgeIdentity {
    /// `sub`; `None` (or empty) for an anonymous request.
    pub sub: Option<String>,
    pub uid: Option<String>,
    /// All claims as sent (`iss`, `exp`, `scopes`, `roles`, ...).
    pub claims: Map<String, Value>,
}

impl EdgeIdentity {
    /// Decodes a `Fastgate-Identity` value: base64url without padding of a JSON object whose
    /// `sub` and `uid`, when present, are strings.
    #[inline]
    pub fn decode(value: &str) -> Result<Self, IdentityError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(value)
            .map_err(|_| IdentityError::Base64)?;
        let Ok(Value::Object(claims)) = serde_json::from_slice::<Value>(&bytes) else {
            return Err(IdentityError::NotObject);
        };
        let string = |name: &str| match claims.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(IdentityError::NotString),
        };
        Ok(Self {
            sub: string("sub")?,
            uid: string("uid")?,
            claims,
        })
    }

    /// The subject, if this identity names one (a non-empty `sub`).
    pub fn subject(&self) -> Option<&str> {
        self.sub.as_deref().filter(|s| !s.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims<'a>(scopes: &'a [String], roles: &'a [String]) -> Claims<'a> {
        Claims {
            sub: "a@b.c",
            uid: Some("u"),
            iss: "i",
            exp: 5,
            scopes,
            roles,
        }
    }

    #[test]
    fn encodes_compact_json_and_leaves_empties_out() {
        let roles = ["admin".to_owned()];
        let value = claims(&[], &roles).encode();
        let json = URL_SAFE_NO_PAD.decode(&value).unwrap();
        assert_eq!(
            String::from_utf8(json).unwrap(),
            r#"{"sub":"a@b.c","uid":"u","iss":"i","exp":5,"roles":["admin"]}"#
        );
        let scopes = ["read".to_owned()];
        let all = Claims {
            uid: None,
            ..claims(&scopes, &roles)
        };
        let json = URL_SAFE_NO_PAD.decode(all.encode()).unwrap();
        assert_eq!(
            String::from_utf8(json).unwrap(),
            r#"{"sub":"a@b.c","iss":"i","exp":5,"scopes":["read"],"roles":["admin"]}"#
        );
        assert_eq!(URL_SAFE_NO_PAD.encode("{}"), ANONYMOUS_IDENTITY);
    }

    #[test]
    fn decodes_what_the_edge_encodes() {
        let roles = ["admin".to_owned()];
        let id = EdgeIdentity::decode(&claims(&[], &roles).encode()).unwrap();
        assert_eq!(id.subject(), Some("a@b.c"));
        assert_eq!(id.uid.as_deref(), Some("u"));
        assert_eq!(id.claims["iss"], "i");
        assert_eq!(id.claims["exp"], 5);
        assert_eq!(id.claims["roles"], serde_json::json!(["admin"]));
        let anon = EdgeIdentity::decode(ANONYMOUS_IDENTITY).unwrap();
        assert_eq!(anon, EdgeIdentity::default());
        assert_eq!(anon.subject(), None);
        let empty_sub = EdgeIdentity::decode(&URL_SAFE_NO_PAD.encode(r#"{"sub":""}"#)).unwrap();
        assert_eq!(empty_sub.subject(), None);
    }

    #[test]
    fn refuses_what_is_not_an_object_with_string_ids() {
        let b64 = |s: &str| URL_SAFE_NO_PAD.encode(s);
        assert_eq!(
            EdgeIdentity::decode("not base64!"),
            Err(IdentityError::Base64)
        );
        assert_eq!(EdgeIdentity::decode("e30="), Err(IdentityError::Base64));
        assert_eq!(
            EdgeIdentity::decode(&b64("[1]")),
            Err(IdentityError::NotObject)
        );
        assert_eq!(
            EdgeIdentity::decode(&b64(r#"{"sub":1}"#)),
            Err(IdentityError::NotString)
        );
        assert_eq!(
            EdgeIdentity::decode(&b64(r#"{"uid":[]}"#)),
            Err(IdentityError::NotString)
        );
        assert!(EdgeIdentity::decode(&b64(r#"{"sub":null}"#)).is_ok());
    }
}
