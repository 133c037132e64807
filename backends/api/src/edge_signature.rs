//! The origin's side of DESIGN §4 "Identity to the origin": every request except the
//! exempt paths must carry the edge's RFC 9421 HTTP Message Signature (`hmac-sha256`, a
//! `keyid`, `created`/`expires`) over the method, path, query, `Fastgate-Identity`,
//! `Fastgate-Flags` and `X-Request-Id`. The check runs as a layer on the whole router, so it
//! comes before every handler, the 404/405 fallbacks and the CORS preflight answer.
//!
//! The wire contract, as the edge must produce it:
//!
//! ```text
//! Fastgate-Identity: <base64url, no padding, of the compact JSON claims; `e30` ({}) when anonymous>
//! Fastgate-Flags: <name=value,...; may be empty>
//! X-Request-Id: <request id>
//! Signature-Input: fastgate=("@method" "@path" "@query" "fastgate-identity" "fastgate-flags" "x-request-id");created=<unix s>;expires=<unix s>;keyid="<kid>";alg="hmac-sha256"
//! Signature: fastgate=:<standard base64, padded, of HMAC-SHA256(secret, signature base)>:
//! ```
//!
//! The signature base is built by [`signature_base`]. Keys come from `FASTGATE_IDENTITY_KEYS`
//! (`kid:secret,kid:secret`; several for rotation). `FASTGATE_VERIFY_EDGE_SIGNATURE=false` (or
//! `--no-verify-edge-signature`) turns enforcement off for a bare origin run; then
//! `Fastgate-Identity` is ignored entirely and only the bearer token counts.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use sha2::Sha256;

use crate::flags::FLAGS_HEADER;
use crate::http::models::DetailOut;
use crate::telemetry::REQUEST_ID;

/// Env var switching enforcement (default on). `false`/`0`/`off`/`no` turns it off.
pub const ENFORCE_VAR: &str = "FASTGATE_VERIFY_EDGE_SIGNATURE";
/// Env var holding the shared keys: `kid1:secret1,kid2:secret2`.
pub const KEYS_VAR: &str = "FASTGATE_IDENTITY_KEYS";

pub const IDENTITY_HEADER: HeaderName = HeaderName::from_static("fastgate-identity");
pub const SIGNATURE_INPUT_HEADER: HeaderName = HeaderName::from_static("signature-input");
pub const SIGNATURE_HEADER: HeaderName = HeaderName::from_static("signature");

/// The signature label the edge uses in `Signature-Input` and `Signature`.
pub const LABEL: &str = "fastgate";
/// The only algorithm accepted (when `alg` is given at all).
pub const ALG: &str = "hmac-sha256";
/// The covered components, exactly and in this order.
pub const COVERED: [&str; 6] = [
    "@method",
    "@path",
    "@query",
    "fastgate-identity",
    "fastgate-flags",
    "x-request-id",
];
/// Paths answered without a signature (probes and the public key set).
pub const EXEMPT_PATHS: [&str; 3] = ["/health", "/ready", "/.well-known/jwks.json"];
/// Allowed clock difference between edge and origin, in seconds.
pub const CLOCK_SKEW_SECS: u64 = 5;
/// Longest accepted `expires - created`, in seconds.
pub const MAX_WINDOW_SECS: u64 = 60;

/// The one body every rejection gets; the precise reason only goes to the log.
pub const REJECTION_DETAIL: &str = "Missing or invalid edge signature";

type HmacSha256 = Hmac<Sha256>;

/// Why `FASTGATE_IDENTITY_KEYS` could not be read. Never carries a secret.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeysError {
    #[error("no keys given (expected kid:secret[,kid:secret...])")]
    Empty,
    #[error("entry {0} is not kid:secret with a non-empty kid and secret")]
    Entry(usize),
    #[error("entry {0}: a kid may only hold printable ASCII without '\"', '\\\\', ',' or ':'")]
    KidChars(usize),
    #[error("key id {0:?} is listed twice")]
    DuplicateKid(String),
}

/// The shared HMAC keys by key id. `Debug` shows the ids only.
#[derive(Clone)]
pub struct IdentityKeys(Arc<[(String, Box<[u8]>)]>);

impl std::fmt::Debug for IdentityKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityKeys")
            .field("kids", &self.kids().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl IdentityKeys {
    /// Parses `kid1:secret1,kid2:secret2`. Whitespace around entries is ignored; a secret is
    /// everything after the first `:` (UTF-8, used as raw key bytes).
    pub fn parse(spec: &str) -> Result<Self, KeysError> {
        let mut keys: Vec<(String, Box<[u8]>)> = Vec::new();
        for (i, entry) in spec.split(',').map(str::trim).enumerate() {
            if entry.is_empty() {
                continue;
            }
            let (kid, secret) = entry
                .split_once(':')
                .map(|(k, s)| (k.trim(), s.trim()))
                .filter(|(k, s)| !k.is_empty() && !s.is_empty())
                .ok_or(KeysError::Entry(i + 1))?;
            if !kid
                .bytes()
                .all(|b| (0x20..=0x7e).contains(&b) && !b"\"\\,:".contains(&b))
            {
                return Err(KeysError::KidChars(i + 1));
            }
            if keys.iter().any(|(k, _)| k == kid) {
                return Err(KeysError::DuplicateKid(kid.to_owned()));
            }
            if secret.len() < 32 {
                tracing::warn!(kid, "edge identity key is shorter than 32 bytes");
            }
            keys.push((kid.to_owned(), secret.as_bytes().into()));
        }
        if keys.is_empty() {
            return Err(KeysError::Empty);
        }
        Ok(Self(keys.into()))
    }

    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_str())
    }

    fn get(&self, kid: &str) -> Option<&[u8]> {
        self.0.iter().find(|(k, _)| k == kid).map(|(_, s)| &**s)
    }
}

/// Why a request's edge signature was refused. Logged; the client only sees
/// [`REJECTION_DETAIL`].
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("missing header {0}")]
    MissingHeader(HeaderName),
    #[error("header {0} is repeated")]
    RepeatedHeader(HeaderName),
    #[error("header {0} is not visible ASCII")]
    HeaderNotAscii(HeaderName),
    #[error("no `fastgate` member in {0}")]
    MissingLabel(HeaderName),
    #[error("`fastgate` member appears more than once in {0}")]
    RepeatedLabel(HeaderName),
    #[error("malformed Signature-Input: {0}")]
    MalformedInput(&'static str),
    #[error("malformed Signature: {0}")]
    MalformedSignature(&'static str),
    #[error("covered components are not exactly {COVERED:?}")]
    CoveredComponents,
    #[error("algorithm {0:?} is not hmac-sha256")]
    Algorithm(String),
    #[error("unknown keyid {0:?}")]
    UnknownKeyId(String),
    #[error("created {created} is in the future (now {now})")]
    CreatedInFuture { created: u64, now: u64 },
    #[error("expired at {expires} (now {now})")]
    Expired { expires: u64, now: u64 },
    #[error("validity window created={created} expires={expires} is empty or longer than 60 s")]
    Window { created: u64, expires: u64 },
    #[error("signature does not match")]
    Mismatch,
    #[error("Fastgate-Identity is not base64url of a JSON object: {0}")]
    Identity(&'static str),
}

/// The verified caller as the edge asserted it. Put in the request's extensions by
/// [`enforce`] only after the signature checked out.
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
    pub fn decode(value: &str) -> Result<Self, SignatureError> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(value)
            .map_err(|_| SignatureError::Identity("not base64url without padding"))?;
        let Ok(Value::Object(claims)) = serde_json::from_slice::<Value>(&bytes) else {
            return Err(SignatureError::Identity("not a JSON object"));
        };
        let string = |name: &str| match claims.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(SignatureError::Identity("sub/uid is not a string")),
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

/// The parsed `fastgate` member of `Signature-Input`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureParams {
    pub covered: Vec<String>,
    pub created: u64,
    pub expires: u64,
    pub keyid: String,
    pub alg: Option<String>,
    /// The member's value after `fastgate=`, verbatim: the `@signature-params` line's value.
    pub raw: String,
}

/// The RFC 9421 §2.5 signature base the edge signs and the origin recomputes. Lines are
/// joined with `\n`, with no trailing newline:
///
/// ```text
/// "@method": GET
/// "@path": /api/user/profile
/// "@query": ?a=1&b=two
/// "fastgate-identity": eyJzdWIiOiJhQGIuYyIsInVpZCI6InUxIn0
/// "fastgate-flags": new_schema=1
/// "x-request-id": req-1
/// "@signature-params": ("@method" "@path" "@query" "fastgate-identity" "fastgate-flags" "x-request-id");created=1700000000;expires=1700000030;keyid="k1";alg="hmac-sha256"
/// ```
///
/// - `method`: the request method as sent (upper-case for the standard methods).
/// - `path`: the request target's path as received, not decoded or normalised, without
///   the query (`/` when empty).
/// - `query`: the raw query without `?`; `None` (no `?` at all) and `Some("")` (a bare
///   `?`) both give the line `"@query": ?` (RFC 9421 §2.2.7).
/// - `identity`, `flags`, `request_id`: the header values as sent (an empty `Fastgate-Flags`
///   gives `"fastgate-flags": ` with the space after the colon kept).
/// - `signature_params`: the `Signature-Input` member value after `fastgate=`, byte for
///   byte as sent.
///
/// With secret `secret-one` the base above has the signature
/// `fastgate=:t3Y/J4cQqrYkRKtICgIWArjLu2HRMx8wGoIHEi5U0wI=:` (a unit test pins it).
pub fn signature_base(
    method: &str,
    path: &str,
    query: Option<&str>,
    identity: &str,
    flags: &str,
    request_id: &str,
    signature_params: &str,
) -> String {
    let path = if path.is_empty() { "/" } else { path };
    let query = query.unwrap_or("");
    format!(
        "\"@method\": {method}\n\"@path\": {path}\n\"@query\": ?{query}\n\
         \"fastgate-identity\": {identity}\n\"fastgate-flags\": {flags}\n\
         \"x-request-id\": {request_id}\n\"@signature-params\": {signature_params}"
    )
}

/// Checks edge signatures against a key set.
#[derive(Debug, Clone)]
pub struct Verifier {
    keys: IdentityKeys,
}

impl Verifier {
    pub fn new(keys: IdentityKeys) -> Self {
        Self { keys }
    }

    /// Verifies the request's signature at unix time `now` and returns the identity it
    /// vouches for.
    pub fn verify(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        now: u64,
    ) -> Result<EdgeIdentity, SignatureError> {
        let input = dictionary_header(headers, SIGNATURE_INPUT_HEADER)?;
        let signature = dictionary_header(headers, SIGNATURE_HEADER)?;
        let params = parse_signature_input(&input)?;
        let mac = parse_signature(&signature)?;

        if params.covered.iter().map(String::as_str).ne(COVERED) {
            return Err(SignatureError::CoveredComponents);
        }
        if let Some(alg) = params.alg.as_deref().filter(|a| *a != ALG) {
            return Err(SignatureError::Algorithm(alg.to_owned()));
        }
        let key = self
            .keys
            .get(&params.keyid)
            .ok_or_else(|| SignatureError::UnknownKeyId(params.keyid.clone()))?;
        let (created, expires) = (params.created, params.expires);
        if expires <= created || expires - created > MAX_WINDOW_SECS {
            return Err(SignatureError::Window { created, expires });
        }
        if created > now.saturating_add(CLOCK_SKEW_SECS) {
            return Err(SignatureError::CreatedInFuture { created, now });
        }
        if now > expires.saturating_add(CLOCK_SKEW_SECS) {
            return Err(SignatureError::Expired { expires, now });
        }

        let identity = single_header(headers, IDENTITY_HEADER)?;
        let flags = single_header(headers, HeaderName::from_static(FLAGS_HEADER))?;
        let request_id = single_header(headers, REQUEST_ID)?;
        let base = signature_base(
            method.as_str(),
            uri.path(),
            uri.query(),
            identity,
            flags,
            request_id,
            &params.raw,
        );
        let mut hmac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
        hmac.update(base.as_bytes());
        hmac.verify_slice(&mac)
            .map_err(|_| SignatureError::Mismatch)?;

        EdgeIdentity::decode(identity)
    }
}

/// The value of a covered header, which must occur exactly once.
fn single_header(headers: &HeaderMap, name: HeaderName) -> Result<&str, SignatureError> {
    let mut values = headers.get_all(&name).iter();
    let value = values
        .next()
        .ok_or_else(|| SignatureError::MissingHeader(name.clone()))?;
    if values.next().is_some() {
        return Err(SignatureError::RepeatedHeader(name));
    }
    value
        .to_str()
        .map_err(|_| SignatureError::HeaderNotAscii(name))
}

/// A structured-field dictionary header; several field lines combine with `, ` (RFC 8941).
fn dictionary_header(headers: &HeaderMap, name: HeaderName) -> Result<String, SignatureError> {
    let values = headers
        .get_all(&name)
        .iter()
        .map(|v| v.to_str())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| SignatureError::HeaderNotAscii(name.clone()))?;
    if values.is_empty() {
        return Err(SignatureError::MissingHeader(name));
    }
    Ok(values.join(", "))
}

/// The raw value of the dictionary member `fastgate` (after `fastgate=`, without the
/// surrounding whitespace). Members are split at top-level commas, outside strings, byte
/// sequences and inner lists.
fn member(
    dict: &str,
    header: HeaderName,
    malformed: SignatureError,
) -> Result<&str, SignatureError> {
    let mut found = None;
    for raw in split_members(dict).ok_or(malformed.clone())? {
        let raw = raw.trim_matches([' ', '\t']);
        let (key, value) = raw.split_once('=').unwrap_or((raw, ""));
        if !is_key(key) {
            return Err(malformed);
        }
        if key == LABEL {
            if found.is_some() {
                return Err(SignatureError::RepeatedLabel(header));
            }
            found = Some(value);
        }
    }
    found.ok_or(SignatureError::MissingLabel(header))
}

fn split_members(dict: &str) -> Option<Vec<&str>> {
    let bytes = dict.as_bytes();
    let (mut members, mut start, mut i) = (Vec::new(), 0, 0);
    let (mut depth, mut in_string, mut in_bytes) = (0u32, false, false);
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            match b {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
        } else if in_bytes {
            in_bytes = b != b':';
        } else {
            match b {
                b'"' => in_string = true,
                b':' => in_bytes = true,
                b'(' => depth += 1,
                b')' => depth = depth.checked_sub(1)?,
                b',' if depth == 0 => {
                    members.push(&dict[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        i += 1;
    }
    if in_string || in_bytes || depth != 0 {
        return None;
    }
    members.push(&dict[start..]);
    Some(members)
}

/// An RFC 8941 key: `( lcalpha / "*" ) *( lcalpha / DIGIT / "_" / "-" / "." / "*" )`.
fn is_key(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_lowercase() || c == b'*')
        && b.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"_-.*".contains(&c))
}

/// Parses the `fastgate` member of a `Signature-Input` dictionary: an inner list of
/// strings followed by the parameters `created`, `expires`, `keyid` (required) and `alg`
/// (optional), each at most once; anything else is refused.
pub fn parse_signature_input(header: &str) -> Result<SignatureParams, SignatureError> {
    use SignatureError::MalformedInput as M;
    let raw = member(
        header,
        SIGNATURE_INPUT_HEADER,
        M("not a structured dictionary"),
    )?;
    let mut p = Cursor::new(raw);
    if !p.eat(b'(') {
        return Err(M("value is not an inner list"));
    }
    let mut covered = Vec::new();
    loop {
        p.skip_spaces();
        if p.eat(b')') {
            break;
        }
        if !covered.is_empty() && !p.prev_was_space() {
            return Err(M("inner list items must be separated by spaces"));
        }
        covered.push(p.string().ok_or(M("inner list item is not a string"))?);
        if p.peek() == Some(b';') {
            return Err(M("component parameters are not supported"));
        }
    }
    let (mut created, mut expires, mut keyid, mut alg) = (None, None, None, None);
    while !p.done() {
        if !p.eat(b';') {
            return Err(M("trailing characters"));
        }
        p.skip_spaces();
        let name = p.key().ok_or(M("bad parameter name"))?;
        if !p.eat(b'=') {
            return Err(M("parameter without a value"));
        }
        let dup = match name {
            "created" => created
                .replace(p.integer().ok_or(M("created is not an integer"))?)
                .is_some(),
            "expires" => expires
                .replace(p.integer().ok_or(M("expires is not an integer"))?)
                .is_some(),
            "keyid" => keyid
                .replace(p.string().ok_or(M("keyid is not a string"))?)
                .is_some(),
            "alg" => alg
                .replace(p.string().ok_or(M("alg is not a string"))?)
                .is_some(),
            _ => return Err(M("unsupported parameter")),
        };
        if dup {
            return Err(M("repeated parameter"));
        }
    }
    Ok(SignatureParams {
        covered,
        created: created.ok_or(M("created is missing"))?,
        expires: expires.ok_or(M("expires is missing"))?,
        keyid: keyid.ok_or(M("keyid is missing"))?,
        alg,
        raw: raw.to_owned(),
    })
}

/// Parses the `fastgate` member of a `Signature` dictionary: a byte sequence
/// `:<standard base64>:` without parameters.
pub fn parse_signature(header: &str) -> Result<Vec<u8>, SignatureError> {
    use SignatureError::MalformedSignature as M;
    let raw = member(header, SIGNATURE_HEADER, M("not a structured dictionary"))?;
    let b64 = raw
        .strip_prefix(':')
        .and_then(|r| r.strip_suffix(':'))
        .filter(|b| !b.contains(':'))
        .ok_or(M("value is not a byte sequence"))?;
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| M("not standard base64"))
}

/// A tiny cursor over the ASCII of one structured-field member.
struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn new(s: &'a str) -> Self {
        Self {
            s: s.as_bytes(),
            i: 0,
        }
    }

    fn done(&self) -> bool {
        self.i >= self.s.len()
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn prev_was_space(&self) -> bool {
        self.i > 0 && self.s[self.i - 1] == b' '
    }

    fn eat(&mut self, b: u8) -> bool {
        let hit = self.peek() == Some(b);
        self.i += usize::from(hit);
        hit
    }

    fn skip_spaces(&mut self) {
        while self.eat(b' ') {}
    }

    /// `sf-string`: `"` then printable ASCII, with `\"` and `\\` escapes, then `"`.
    fn string(&mut self) -> Option<String> {
        if !self.eat(b'"') {
            return None;
        }
        let mut out = String::new();
        loop {
            let b = self.peek()?;
            self.i += 1;
            match b {
                b'"' => return Some(out),
                b'\\' => {
                    let e = self.peek().filter(|e| matches!(e, b'"' | b'\\'))?;
                    self.i += 1;
                    out.push(char::from(e));
                }
                0x20..=0x7e => out.push(char::from(b)),
                _ => return None,
            }
        }
    }

    /// A non-negative `sf-integer` (at most 15 digits).
    fn integer(&mut self) -> Option<u64> {
        let start = self.i;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.i += 1;
        }
        let digits = std::str::from_utf8(&self.s[start..self.i]).ok()?;
        if digits.is_empty() || digits.len() > 15 {
            return None;
        }
        digits.parse().ok()
    }

    fn key(&mut self) -> Option<&'a str> {
        let start = self.i;
        while self
            .peek()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-.*".contains(&b))
        {
            self.i += 1;
        }
        let key = std::str::from_utf8(&self.s[start..self.i]).ok()?;
        is_key(key).then_some(key)
    }
}

/// Current unix time in seconds.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The 401 every refused request gets.
pub fn rejection() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(DetailOut {
            detail: REJECTION_DETAIL.into(),
        }),
    )
        .into_response()
}

/// The middleware: exempt paths pass (with any `Fastgate-Identity`/`Fastgate-Flags`
/// removed, since nothing vouches for them); every other request needs a valid signature,
/// and its [`EdgeIdentity`] is then put in the request's extensions for `current_user`.
pub async fn enforce(
    State(verifier): State<Arc<Verifier>>,
    mut req: Request,
    next: Next,
) -> Response {
    if EXEMPT_PATHS.contains(&req.uri().path()) {
        let headers = req.headers_mut();
        headers.remove(IDENTITY_HEADER);
        headers.remove(FLAGS_HEADER);
        return next.run(req).await;
    }
    match verifier.verify(req.method(), req.uri(), req.headers(), unix_now()) {
        Ok(identity) => {
            req.extensions_mut().insert(identity);
            next.run(req).await
        }
        Err(reason) => {
            let request_id = req
                .headers()
                .get(REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            tracing::warn!(
                %reason,
                request_id,
                method = %req.method(),
                path = %req.uri().path(),
                "edge signature rejected"
            );
            rejection()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    const NOW: u64 = 1_700_000_000;
    const PARAMS: &str = r#"("@method" "@path" "@query" "fastgate-identity" "fastgate-flags" "x-request-id");created=1700000000;expires=1700000030;keyid="k1";alg="hmac-sha256""#;

    fn b64url(json: &str) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    }

    fn keys() -> IdentityKeys {
        IdentityKeys::parse("k1:secret-one, k2:secret-two").unwrap()
    }

    fn verifier() -> Verifier {
        Verifier::new(keys())
    }

    /// A request as the edge would forward it, signed with `kid`'s secret.
    struct Req {
        method: Method,
        uri: Uri,
        headers: HeaderMap,
    }

    fn params(created: u64, expires: u64, kid: &str, alg: Option<&str>) -> String {
        let mut p = format!(
            r#"("@method" "@path" "@query" "fastgate-identity" "fastgate-flags" "x-request-id");created={created};expires={expires};keyid="{kid}""#
        );
        if let Some(a) = alg {
            p.push_str(&format!(r#";alg="{a}""#));
        }
        p
    }

    fn sign(method: &str, uri: &str, identity: &str, secret: &str, params: &str) -> Req {
        let uri: Uri = uri.parse().unwrap();
        let base = signature_base(
            method,
            uri.path(),
            uri.query(),
            identity,
            "new_schema=1",
            "req-1",
            params,
        );
        let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(base.as_bytes());
        let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        let mut headers = HeaderMap::new();
        let mut put = |k: &'static str, v: String| {
            headers.insert(k, HeaderValue::from_str(&v).unwrap());
        };
        put("fastgate-identity", identity.to_owned());
        put("fastgate-flags", "new_schema=1".into());
        put("x-request-id", "req-1".into());
        put("signature-input", format!("fastgate={params}"));
        put("signature", format!("fastgate=:{sig}:"));
        Req {
            method: method.parse().unwrap(),
            uri,
            headers,
        }
    }

    fn good() -> Req {
        sign(
            "GET",
            "/api/user/profile?a=1&b=two",
            &b64url(r#"{"sub":"a@b.c","uid":"u1"}"#),
            "secret-one",
            &params(NOW, NOW + 30, "k1", Some(ALG)),
        )
    }

    fn check(r: &Req, now: u64) -> Result<EdgeIdentity, SignatureError> {
        verifier().verify(&r.method, &r.uri, &r.headers, now)
    }

    #[test]
    fn base_and_mac_match_the_documented_vector() {
        let identity = b64url(r#"{"sub":"a@b.c","uid":"u1"}"#);
        assert_eq!(identity, "eyJzdWIiOiJhQGIuYyIsInVpZCI6InUxIn0");
        let base = signature_base(
            "GET",
            "/api/user/profile",
            Some("a=1&b=two"),
            &identity,
            "new_schema=1",
            "req-1",
            PARAMS,
        );
        assert_eq!(
            base,
            format!(
                "\"@method\": GET\n\"@path\": /api/user/profile\n\"@query\": ?a=1&b=two\n\
                 \"fastgate-identity\": {identity}\n\"fastgate-flags\": new_schema=1\n\
                 \"x-request-id\": req-1\n\"@signature-params\": {PARAMS}"
            )
        );
        let r = good();
        assert_eq!(
            r.headers["signature"],
            "fastgate=:t3Y/J4cQqrYkRKtICgIWArjLu2HRMx8wGoIHEi5U0wI=:"
        );
        assert_eq!(r.headers["signature-input"], format!("fastgate={PARAMS}"));
        // No query and an empty query both give a bare "?"; an empty flags value keeps its space.
        let b = signature_base("POST", "/x", None, "e30", "", "r", "()");
        assert!(b.contains("\"@query\": ?\n"));
        assert!(b.contains("\"fastgate-flags\": \n"));
        assert_eq!(
            b,
            signature_base("POST", "/x", Some(""), "e30", "", "r", "()")
        );
    }

    #[test]
    fn good_signature_yields_the_identity() {
        let id = check(&good(), NOW).unwrap();
        assert_eq!(id.subject(), Some("a@b.c"));
        assert_eq!(id.uid.as_deref(), Some("u1"));
        // Within the skew on both ends, and `alg` may be left out.
        assert!(check(&good(), NOW - CLOCK_SKEW_SECS).is_ok());
        assert!(check(&good(), NOW + 30 + CLOCK_SKEW_SECS).is_ok());
        let r = sign(
            "GET",
            "/p",
            "e30",
            "secret-one",
            &params(NOW, NOW + 60, "k1", None),
        );
        let anon = check(&r, NOW).unwrap();
        assert_eq!((anon.subject(), anon.claims.len()), (None, 0));
    }

    #[test]
    fn key_rotation_accepts_every_listed_key() {
        let r = sign(
            "GET",
            "/p",
            "e30",
            "secret-two",
            &params(NOW, NOW + 10, "k2", Some(ALG)),
        );
        assert!(check(&r, NOW).is_ok());
        // A kid paired with the other key's secret does not verify.
        let r = sign(
            "GET",
            "/p",
            "e30",
            "secret-two",
            &params(NOW, NOW + 10, "k1", Some(ALG)),
        );
        assert_eq!(check(&r, NOW), Err(SignatureError::Mismatch));
        // After k1 is retired, its signatures stop passing.
        let only_k2 = Verifier::new(IdentityKeys::parse("k2:secret-two").unwrap());
        let r = good();
        assert_eq!(
            only_k2.verify(&r.method, &r.uri, &r.headers, NOW),
            Err(SignatureError::UnknownKeyId("k1".into()))
        );
    }

    #[test]
    fn tampered_identity_is_refused() {
        let mut r = good();
        r.headers.insert(
            IDENTITY_HEADER,
            HeaderValue::from_str(&b64url(r#"{"sub":"admin@b.c","uid":"u1"}"#)).unwrap(),
        );
        assert_eq!(check(&r, NOW), Err(SignatureError::Mismatch));
        let mut r = good();
        r.headers
            .insert(FLAGS_HEADER, HeaderValue::from_static("new_schema=0"));
        assert_eq!(check(&r, NOW), Err(SignatureError::Mismatch));
        let mut r = good();
        r.headers
            .insert(REQUEST_ID, HeaderValue::from_static("req-2"));
        assert_eq!(check(&r, NOW), Err(SignatureError::Mismatch));
    }

    #[test]
    fn tampered_method_path_or_query_is_refused() {
        for (method, uri) in [
            ("POST", "/api/user/profile?a=1&b=two"),
            ("GET", "/api/user/other?a=1&b=two"),
            ("GET", "/api/user/profile/?a=1&b=two"),
            ("GET", "/api/user/%70rofile?a=1&b=two"),
            ("GET", "/api/user/profile?a=1&b=three"),
            ("GET", "/api/user/profile"),
            ("GET", "/api/user/profile?"),
        ] {
            let mut r = good();
            r.method = method.parse().unwrap();
            r.uri = uri.parse().unwrap();
            assert_eq!(
                check(&r, NOW),
                Err(SignatureError::Mismatch),
                "{method} {uri}"
            );
        }
        // A signed bare "?" equals a signed absent query.
        let r = sign(
            "GET",
            "/p",
            "e30",
            "secret-one",
            &params(NOW, NOW + 10, "k1", None),
        );
        let mut with_q = sign(
            "GET",
            "/p?",
            "e30",
            "secret-one",
            &params(NOW, NOW + 10, "k1", None),
        );
        with_q.headers = r.headers.clone();
        assert!(check(&with_q, NOW).is_ok());
    }

    #[test]
    fn time_window_is_enforced() {
        assert_eq!(
            check(&good(), NOW + 30 + CLOCK_SKEW_SECS + 1),
            Err(SignatureError::Expired {
                expires: NOW + 30,
                now: NOW + 36
            })
        );
        assert_eq!(
            check(&good(), NOW - CLOCK_SKEW_SECS - 1),
            Err(SignatureError::CreatedInFuture {
                created: NOW,
                now: NOW - 6
            })
        );
        for (created, expires) in [(NOW, NOW + 61), (NOW, NOW), (NOW, NOW - 1)] {
            let r = sign(
                "GET",
                "/p",
                "e30",
                "secret-one",
                &params(created, expires, "k1", None),
            );
            assert_eq!(
                check(&r, NOW),
                Err(SignatureError::Window { created, expires })
            );
        }
        let r = sign(
            "GET",
            "/p",
            "e30",
            "secret-one",
            &params(NOW, NOW + 60, "k1", None),
        );
        assert!(check(&r, NOW).is_ok());
    }

    #[test]
    fn unknown_keyid_and_wrong_alg_are_refused() {
        let r = sign(
            "GET",
            "/p",
            "e30",
            "secret-one",
            &params(NOW, NOW + 10, "k9", None),
        );
        assert_eq!(
            check(&r, NOW),
            Err(SignatureError::UnknownKeyId("k9".into()))
        );
        for alg in ["hmac-sha512", "HMAC-SHA256", "ed25519", ""] {
            let r = sign(
                "GET",
                "/p",
                "e30",
                "secret-one",
                &params(NOW, NOW + 10, "k1", Some(alg)),
            );
            assert_eq!(check(&r, NOW), Err(SignatureError::Algorithm(alg.into())));
        }
    }

    #[test]
    fn missing_or_repeated_headers_are_refused() {
        for name in [
            "fastgate-identity",
            "fastgate-flags",
            "x-request-id",
            "signature",
            "signature-input",
        ] {
            let mut r = good();
            r.headers.remove(name);
            assert_eq!(
                check(&r, NOW),
                Err(SignatureError::MissingHeader(HeaderName::from_static(name))),
                "{name}"
            );
        }
        let mut r = good();
        r.headers
            .append(IDENTITY_HEADER, HeaderValue::from_static("e30"));
        assert_eq!(
            check(&r, NOW),
            Err(SignatureError::RepeatedHeader(IDENTITY_HEADER))
        );
        // Another signature alongside ours is fine (a dictionary over several lines).
        let mut r = good();
        r.headers.append(
            SIGNATURE_INPUT_HEADER,
            HeaderValue::from_static(r#"other=("@method");created=1"#),
        );
        r.headers
            .append(SIGNATURE_HEADER, HeaderValue::from_static("other=:AAAA:"));
        assert!(check(&r, NOW).is_ok());
    }

    #[test]
    fn malformed_signature_input_is_refused() {
        let bad = [
            "",
            "fastgate",
            "other=(\"@method\");created=1",
            r#"fastgate="@method";created=1700000000;expires=1700000030;keyid="k1""#,
            r#"fastgate=("@method" "@path" "@query" "fastgate-identity" "fastgate-flags" "x-request-id";created=1700000000;expires=1700000030;keyid="k1""#,
            r#"fastgate=("@method" "@path" "@query" "fastgate-identity" "fastgate-flags" "x-request-id");created=1700000000;expires=1700000030"#,
            r#"fastgate=("@method" "@path" "@query" "fastgate-identity" "fastgate-flags" "x-request-id");created=-1;expires=1700000030;keyid="k1""#,
            r#"fastgate=("@method" "@path" "@query" "fastgate-identity" "fastgate-flags" "x-request-id");created=1700000000;expires=1700000030;keyid=k1"#,
            r#"fastgate=("@method" "@path" "@query" "fastgate-identity" "fastgate-flags" "x-request-id");created=1700000000;created=1700000000;expires=1700000030;keyid="k1""#,
            r#"fastgate=("@method" "@path" "@query" "fastgate-identity" "fastgate-flags" "x-request-id");created=1700000000;expires=1700000030;keyid="k1";nonce="x""#,
            r#"fastgate=("@method" "@path" "@query" "fastgate-identity" "fastgate-flags" "x-request-id");created=1700000000;expires=1700000030;keyid="k1" junk"#,
            r#"fastgate=("@method""@path" "@query" "fastgate-identity" "fastgate-flags" "x-request-id");created=1700000000;expires=1700000030;keyid="k1""#,
            r#"fastgate=("@method" "@path";req "@query" "fastgate-identity" "fastgate-flags" "x-request-id");created=1700000000;expires=1700000030;keyid="k1""#,
            r#"fastgate=("@method" "@path" "@query" "fastgate-identity" "fastgate-flags" "x-request-id");created=1.5;expires=1700000030;keyid="k1""#,
            r#"fastgate=("@method" "@path" "@query" "fastgate-identity" "fastgate-flags" "x-request-id");created=1700000000;expires=1700000030;keyid="k1", fastgate=("@method");created=1"#,
            r#"Fastgate=("@method" "@path" "@query" "fastgate-identity" "fastgate-flags" "x-request-id");created=1700000000;expires=1700000030;keyid="k1""#,
        ];
        for input in bad {
            let mut r = good();
            r.headers.insert(
                SIGNATURE_INPUT_HEADER,
                HeaderValue::from_str(input).unwrap(),
            );
            let err = check(&r, NOW).unwrap_err();
            assert!(
                matches!(
                    err,
                    SignatureError::MalformedInput(_)
                        | SignatureError::MissingLabel(_)
                        | SignatureError::RepeatedLabel(_)
                ),
                "{input:?}: {err:?}"
            );
        }
        // Other covered components (fewer, more, another order) are refused.
        for covered in [
            r#"("@method" "@path" "@query" "fastgate-identity" "fastgate-flags")"#,
            r#"("@method" "@path" "@query" "fastgate-identity" "fastgate-flags" "x-request-id" "@authority")"#,
            r#"("@path" "@method" "@query" "fastgate-identity" "fastgate-flags" "x-request-id")"#,
            r#"()"#,
        ] {
            let p = format!(r#"{covered};created={NOW};expires={};keyid="k1""#, NOW + 10);
            let r = sign("GET", "/p", "e30", "secret-one", &p);
            assert_eq!(
                check(&r, NOW),
                Err(SignatureError::CoveredComponents),
                "{covered}"
            );
        }
        // Parameters may come in any order; the base uses them verbatim.
        let p = format!(
            r#"("@method" "@path" "@query" "fastgate-identity" "fastgate-flags" "x-request-id");keyid="k1";alg="hmac-sha256";expires={};created={NOW}"#,
            NOW + 10
        );
        assert!(check(&sign("GET", "/p", "e30", "secret-one", &p), NOW).is_ok());
    }

    #[test]
    fn malformed_signature_is_refused() {
        for sig in [
            "fastgate=t3Y/J4cQqrYkRKtICgIWArjLu2HRMx8wGoIHEi5U0wI=",
            "fastgate=:t3Y_J4cQqrYkRKtICgIWArjLu2HRMx8wGoIHEi5U0wI=:",
            "fastgate=:t3Y/J4cQqrYkRKtICgIWArjLu2HRMx8wGoIHEi5U0wI=:;x=1",
            "fastgate=:t3Y/J4cQqrYkRKtICgIWArjLu2HRMx8wGoIHEi5U0wI=",
            "other=:t3Y/J4cQqrYkRKtICgIWArjLu2HRMx8wGoIHEi5U0wI=:",
        ] {
            let mut r = good();
            r.headers
                .insert(SIGNATURE_HEADER, HeaderValue::from_str(sig).unwrap());
            let err = check(&r, NOW).unwrap_err();
            assert!(
                matches!(
                    err,
                    SignatureError::MalformedSignature(_) | SignatureError::MissingLabel(_)
                ),
                "{sig:?}: {err:?}"
            );
        }
        // Well-formed but wrong, or truncated: a mismatch.
        for sig in ["fastgate=:AAAA:", "fastgate=::"] {
            let mut r = good();
            r.headers
                .insert(SIGNATURE_HEADER, HeaderValue::from_str(sig).unwrap());
            assert_eq!(check(&r, NOW), Err(SignatureError::Mismatch), "{sig}");
        }
    }

    #[test]
    fn signed_but_malformed_identity_is_refused() {
        for identity in [
            "not base64!",
            &b64url("[1]"),
            &b64url(r#"{"sub":1}"#),
            "e30=",
        ] {
            let r = sign(
                "GET",
                "/p",
                identity,
                "secret-one",
                &params(NOW, NOW + 10, "k1", None),
            );
            assert!(
                matches!(check(&r, NOW), Err(SignatureError::Identity(_))),
                "{identity}"
            );
        }
    }

    #[test]
    fn keys_parse_strictly_and_never_print_secrets() {
        let k = IdentityKeys::parse(" k1:a:b , k2:c ").unwrap();
        assert_eq!(k.get("k1"), Some(&b"a:b"[..]));
        assert_eq!(k.kids().collect::<Vec<_>>(), ["k1", "k2"]);
        assert!(!format!("{k:?}").contains("a:b"));
        assert_eq!(IdentityKeys::parse("").unwrap_err(), KeysError::Empty);
        assert_eq!(IdentityKeys::parse(" , ").unwrap_err(), KeysError::Empty);
        assert_eq!(IdentityKeys::parse("k1").unwrap_err(), KeysError::Entry(1));
        assert_eq!(
            IdentityKeys::parse("k1:x,:y").unwrap_err(),
            KeysError::Entry(2)
        );
        assert_eq!(IdentityKeys::parse("k1:").unwrap_err(), KeysError::Entry(1));
        assert_eq!(
            IdentityKeys::parse("k\"1:x").unwrap_err(),
            KeysError::KidChars(1)
        );
        assert_eq!(
            IdentityKeys::parse("k1:x,k1:y").unwrap_err(),
            KeysError::DuplicateKid("k1".into())
        );
    }
}
