//! The request id that ties the client's answer, the edge's log line and the origin's logs
//! together. A valid inbound `X-Request-Id` is reused (so a client or an upstream proxy can
//! trace its own id through us); anything else is replaced by a fresh random id.

pub const HEADER: &str = fastgate_wire::REQUEST_ID_HEADER;

/// Longest inbound id we accept; longer ones are replaced, not truncated.
const MAX_LEN: usize = 128;

/// Reuses `inbound` when it is short and made of safe characters, otherwise generates one.
pub fn resolve(inbound: Option<&str>) -> String {
    match inbound {
        Some(id) if is_valid(id) => id.to_owned(),
        _ => generate(),
    }
}

fn is_valid(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// 128 random bits, hex encoded.
pub fn generate() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // No entropy source is a platform fault; fall back to a time-derived id rather
        // than failing the user's request over a log correlation id.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        bytes = nanos.to_le_bytes();
    }
    let mut out = String::with_capacity(32);
    for b in bytes {
        out.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        out.push(char::from(b"0123456789abcdef"[usize::from(b & 0xf)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_valid_and_replaces_invalid_ids() {
        assert_eq!(resolve(Some("abc-123_x.y:z")), "abc-123_x.y:z");
        for bad in ["", "has space", "new\nline", &"x".repeat(129), "é"] {
            let id = resolve(Some(bad));
            assert_ne!(id, bad);
            assert_eq!(id.len(), 32);
        }
        assert_ne!(resolve(None), resolve(None));
    }
}
