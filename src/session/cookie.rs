//! The session's two cookies. The session itself: `__Host-fastgate_session` (`Secure`,
//! `Path=/`, no `Domain`: only this exact origin over a secure scheme can set or read it,
//! so a sibling subdomain cannot plant one), `HttpOnly` (no script reads it) and
//! `SameSite=Lax` (not sent on cross-site subrequests or form posts). Browsers treat
//! `http://localhost` and loopback addresses as secure, so local runs get the same cookie;
//! only a plain-HTTP, non-loopback host falls back to `fastgate_session` without `Secure`.
//! The CSRF cookie `fastgate_csrf` is readable by our pages, which echo it in
//! `X-CSRF-Token`; it lives and dies with the session.

/// The session cookie where the scheme allows the `__Host-` prefix.
pub const SECURE_NAME: &str = "__Host-fastgate_session";
/// The session cookie over plain HTTP to a non-loopback host.
pub const PLAIN_NAME: &str = "fastgate_session";
/// The readable double-submit cookie.
pub const CSRF_COOKIE: &str = "fastgate_csrf";
/// The header a page echoes the CSRF cookie in.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The longest session: a working day, whatever the token's own lifetime.
pub const MAX_SESSION_S: u64 = 8 * 3600;

/// Whether cookies for this request may be `Secure` (and so `__Host-`): TLS, or a host that
/// browsers treat as a secure context over plain HTTP (`localhost`, loopback addresses).
pub fn secure_scheme(tls: bool, host: Option<&str>) -> bool {
    if tls {
        return true;
    }
    let Some(host) = host else { return false };
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    let name = name.to_ascii_lowercase();
    name == "localhost"
        || name.ends_with(".localhost")
        || name == "::1"
        || name
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The first value of cookie `name` in a `Cookie` header.
pub fn find_cookie<'a>(cookie_header: Option<&'a str>, name: &str) -> Option<&'a str> {
    cookie_header?
        .split(';')
        .take(64)
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().trim_matches('"'))
        .filter(|v| !v.is_empty())
}

/// The session cookie's value for this scheme: only the `__Host-` one where it is possible,
/// so a plain cookie planted over HTTP is never read on a secure origin.
pub fn session_cookie(cookie_header: Option<&str>, secure: bool) -> Option<&str> {
    find_cookie(cookie_header, if secure { SECURE_NAME } else { PLAIN_NAME })
}

/// `Set-Cookie` values starting a session of `max_age_s` seconds.
pub fn set_cookies(sealed: &str, csrf: &str, max_age_s: u64, secure: bool) -> [String; 2] {
    let (name, flag) = if secure {
        (SECURE_NAME, "; Secure")
    } else {
        (PLAIN_NAME, "")
    };
    [
        format!("{name}={sealed}; Path=/; Max-Age={max_age_s}; HttpOnly; SameSite=Lax{flag}"),
        format!("{CSRF_COOKIE}={csrf}; Path=/; Max-Age={max_age_s}; SameSite=Lax{flag}"),
    ]
}

/// `Set-Cookie` values ending the session, whichever name it had.
pub fn clear_cookies(secure: bool) -> [String; 2] {
    let flag = if secure { "; Secure" } else { "" };
    let name = if secure { SECURE_NAME } else { PLAIN_NAME };
    [
        format!("{name}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax{flag}"),
        format!("{CSRF_COOKIE}=; Path=/; Max-Age=0; SameSite=Lax{flag}"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secure_where_browsers_allow_it() {
        assert!(secure_scheme(true, Some("app.example.com")));
        for host in [
            "localhost",
            "localhost:7676",
            "127.0.0.1:7676",
            "[::1]:80",
            "a.localhost",
        ] {
            assert!(secure_scheme(false, Some(host)), "{host}");
        }
        for host in ["app.example.com", "10.0.0.1", "localhost.evil.com"] {
            assert!(!secure_scheme(false, Some(host)), "{host}");
        }
        assert!(!secure_scheme(false, None));
    }

    #[test]
    fn cookies_have_every_attribute() {
        let [session, csrf] = set_cookies("v1.k.x", "c1", 600, true);
        assert_eq!(
            session,
            "__Host-fastgate_session=v1.k.x; Path=/; Max-Age=600; HttpOnly; SameSite=Lax; Secure"
        );
        assert!(!csrf.contains("HttpOnly") && csrf.contains("Secure"));
        let [plain, _] = set_cookies("v", "c", 1, false);
        assert!(plain.starts_with("fastgate_session=") && !plain.contains("Secure"));
        assert!(clear_cookies(true)[0].contains("Max-Age=0"));
    }

    #[test]
    fn the_secure_origin_reads_only_the_host_cookie() {
        let header = Some("fastgate_session=planted; __Host-fastgate_session=real");
        assert_eq!(session_cookie(header, true), Some("real"));
        assert_eq!(session_cookie(header, false), Some("planted"));
        assert_eq!(session_cookie(Some("a=b"), true), None);
        assert_eq!(
            find_cookie(Some("x=; fastgate_csrf=t"), CSRF_COOKIE),
            Some("t")
        );
    }
}
