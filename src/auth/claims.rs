//! What a verified token says, checked before it is believed (RFC 7519 §4.1, with a leeway
//! for clock skew): `exp` (required), `nbf`, `iss` (exact), `aud` (must contain ours) and
//! `sub` (required: it is the identity we forward). Then what the route asks of it: its
//! scopes, roles and exact claim values.

use serde_json::Value;

use super::{AuthFailure, Issuer, RouteAuth, TokenError};

/// What the edge verified about the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub sub: String,
    pub iss: String,
    pub exp: u64,
    pub uid: Option<String>,
    pub scopes: Vec<String>,
    pub roles: Vec<String>,
    pub claims: serde_json::Map<String, Value>,
}

/// Checks a signature-verified payload against its issuer at `now`, with `leeway` seconds
/// of clock skew either way.
pub(super) fn check_claims(
    payload: Value,
    issuer: &Issuer,
    leeway: u64,
    now: u64,
) -> Result<Verified, TokenError> {
    let exp = check_time(&payload, leeway, now)?;
    let iss = text(&payload, "iss").unwrap_or_default().to_owned();
    if iss != issuer.iss {
        return Err(TokenError::WrongIssuer);
    }
    if !names_audience(payload.get("aud"), &issuer.audience) {
        return Err(TokenError::WrongAudience);
    }
    let sub = text(&payload, "sub")
        .filter(|s| !s.is_empty())
        .ok_or(TokenError::MissingClaim("sub"))?
        .to_owned();
    let mut scopes = string_list(payload.get("scope"));
    scopes.extend(string_list(payload.get("scp")));
    scopes.extend(string_list(payload.get("scopes")));
    let roles = string_list(payload.get("roles"));
    let uid = text(&payload, "uid").map(str::to_owned);
    let Value::Object(claims) = payload else {
        return Err(TokenError::Malformed("payload"));
    };
    Ok(Verified {
        sub,
        iss,
        exp,
        uid,
        scopes,
        roles,
        claims,
    })
}

/// `exp` (required) and `nbf` (if present) against `now`; returns `exp`.
fn check_time(payload: &Value, leeway: u64, now: u64) -> Result<u64, TokenError> {
    let exp = numeric(payload, "exp")?.ok_or(TokenError::MissingClaim("exp"))?;
    if now > exp.saturating_add(leeway) {
        return Err(TokenError::Expired);
    }
    if let Some(nbf) = numeric(payload, "nbf")? {
        if now.saturating_add(leeway) < nbf {
            return Err(TokenError::NotYetValid);
        }
    }
    Ok(exp)
}

/// A NumericDate claim: seconds, fractional ones truncated.
fn numeric(payload: &Value, name: &'static str) -> Result<Option<u64>, TokenError> {
    match payload.get(name) {
        None => Ok(None),
        Some(v) => v
            .as_u64()
            .or_else(|| v.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
            .map(Some)
            .ok_or(TokenError::Malformed("numeric date")),
    }
}

fn text<'a>(payload: &'a Value, name: &str) -> Option<&'a str> {
    payload.get(name).and_then(Value::as_str)
}

/// `aud` is one string or an array of them (RFC 7519 §4.1.3); ours must be among them.
fn names_audience(aud: Option<&Value>, ours: &str) -> bool {
    match aud {
        Some(Value::String(a)) => a == ours,
        Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(ours)),
        _ => false,
    }
}

/// A space-separated string (OAuth's `scope`) or an array of strings.
fn string_list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => s.split_whitespace().map(str::to_owned).collect(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

/// The route's demands on a verified caller: every scope and role it lists, and the exact
/// value of every claim it names. A shortfall is 403 `insufficient_scope`, naming the
/// route's scopes.
pub(super) fn check_route(route: &RouteAuth, verified: &Verified) -> Result<(), AuthFailure> {
    let scopes_ok = route.scopes.iter().all(|s| verified.scopes.contains(s));
    let roles_ok = route.roles.iter().all(|r| verified.roles.contains(r));
    let claims_ok = route
        .claims
        .iter()
        .all(|(k, v)| verified.claims.get(k) == Some(v));
    if scopes_ok && roles_ok && claims_ok {
        Ok(())
    } else {
        Err(AuthFailure::Forbidden {
            scope: route.scopes.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::auth::fixtures::*;
    use crate::auth::TokenError;
    use serde_json::{json, Value};

    #[test]
    fn time_issuer_and_audience_are_enforced_with_leeway() {
        let mut ks = keys(vec![]);
        let with = |k: &str, v: Value| {
            let mut c = claims();
            c[k] = v;
            hs(&c)
        };
        assert_eq!(
            check(&with("exp", json!(NOW - 31)), &mut ks),
            invalid(TokenError::Expired)
        );
        assert!(
            check(&with("exp", json!(NOW - 29)), &mut ks).is_ok(),
            "inside the leeway"
        );
        assert_eq!(
            check(&with("nbf", json!(NOW + 31)), &mut ks),
            invalid(TokenError::NotYetValid)
        );
        assert!(check(&with("nbf", json!(NOW + 29)), &mut ks).is_ok());
        assert_eq!(
            check(&with("iss", json!("iss-2")), &mut ks),
            invalid(TokenError::WrongIssuer)
        );
        assert_eq!(
            check(&with("aud", json!("aud-2")), &mut ks),
            invalid(TokenError::WrongAudience)
        );
        assert!(check(&with("aud", json!(["x", "aud-1"])), &mut ks).is_ok());
        assert_eq!(
            check(&with("exp", json!("soon")), &mut ks),
            invalid(TokenError::Malformed("numeric date"))
        );
        let mut c = claims();
        c.as_object_mut().unwrap().remove("exp");
        assert_eq!(
            check(&hs(&c), &mut ks),
            invalid(TokenError::MissingClaim("exp"))
        );
        let mut c = claims();
        c.as_object_mut().unwrap().remove("sub");
        assert_eq!(
            check(&hs(&c), &mut ks),
            invalid(TokenError::MissingClaim("sub"))
        );
    }
}
