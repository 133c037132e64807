//! The authenticate phase, in the manner of Envoy's `jwt_authn`: a declarative policy per
//! route, and JWT checks to the letter of RFC 7519 / RFC 8725 / RFC 6750.
//!
//! One request flows through the files in order, `policy → extract → jwks → verify →
//! claims`: the route's [`Policy`] says whether a token is needed; [`extract_token`] finds
//! it (`Authorization: Bearer`, else a cookie); the [`KeySource`] supplies the issuer's keys,
//! each pinned to one algorithm, so the key decides the algorithm and never the token;
//! [`verify()`] checks the token's shape and signature; and the claims are checked for what
//! they say (`exp`, `nbf`, `iss`, `aud`, `sub`) and for what the route asks (scopes, roles,
//! exact values) before they become the [`Verified`] identity. [`authenticate`] runs the
//! whole line; a refusal is an [`AuthFailure`], already shaped as RFC 6750 answers it.

mod claims;
mod crypto;
mod extract;
mod failure;
mod jwks;
mod policy;
mod verify;

#[cfg(test)]
mod fixtures;

pub use claims::Verified;
pub use extract::extract_token;
pub use failure::{AuthFailure, TokenError};
pub use jwks::{parse_jwks, JwkKey, JwksError, KeySource};
pub use policy::{AuthConfig, Issuer, JwksCache, JwksSource, Policy, RouteAuth};
pub use verify::{authenticate, remembered_ttl_s, token_digest, verify};
