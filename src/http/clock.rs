//! Wall-clock seconds, the unit every expiry in the edge is kept in (JWT `exp`, signature
//! windows, cache ages). One definition, so a test's idea of "now" matches the code's.

/// Seconds since the Unix epoch; 0 if the clock is before it (never on a real host).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}
