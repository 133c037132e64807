//! Browser sessions at the edge. The browser never holds a bearer token: signing in through
//! the edge (`POST /session/login`) trades the origin's token for a session cookie whose
//! value is that token **sealed** (XChaCha20-Poly1305 under a Secret Store key only the edge
//! holds), `HttpOnly` so no script reads it, and useless as a bearer token to anyone who
//! steals it from a log or a proxy: it is ciphertext.
//!
//! On every request the adapter opens the cookie (when no `Authorization` header is sent)
//! and verifies the token inside exactly as it verifies a bearer token, so the origin sees
//! the same signed identity either way. A request authenticated by the cookie with an
//! unsafe method must prove it comes from our own pages ([`csrf`]): `Sec-Fetch-Site` /
//! `Origin`, plus a double-submit token bound to the session (the sealed value carries it,
//! so a cookie planted by a sibling host cannot be paired with a token of the attacker's).
//!
//! - `seal`: the sealed value, its key ring (rotation: the first key seals, all open);
//! - `cookie`: names (`__Host-` where the scheme allows), attributes, lifetimes;
//! - `csrf`: the same-origin proof for unsafe methods.

mod cookie;
mod csrf;
mod seal;

pub use cookie::{
    clear_cookies, find_cookie, secure_scheme, session_cookie, set_cookies, CSRF_COOKIE,
    CSRF_HEADER, MAX_SESSION_S, PLAIN_NAME, SECURE_NAME,
};
pub use csrf::{check_csrf, check_origin, CsrfFacts, CsrfFailure};
pub use seal::{Session, SessionError, SessionKeys, SESSION_KEYS_SECRET};
