//! The proof an unsafe request authenticated by the session cookie must carry that it comes
//! from our own pages, not from a form or script on another site that the browser attached
//! the cookie to:
//!
//! 1. where it is from: `Sec-Fetch-Site: same-origin` (every current browser sends it);
//!    without it, an `Origin` equal to the request's own scheme and host. `same-site` is
//!    refused too: a sibling subdomain is not this application. Neither field at all: refused
//!    (browsers send `Origin` on every unsafe request);
//! 2. the double-submit token: `X-CSRF-Token` equal to the token sealed in the session (the
//!    readable cookie is only how the page learns it), compared in constant time.
//!
//! Safe methods pass: they change nothing (RFC 9110 §9.2.1), and the edge never turns a GET
//! into a write. A bearer-token request never gets here: no browser attaches one by itself.

use crate::release::secret_matches;

/// What the check reads.
#[derive(Debug, Clone, Copy)]
pub struct CsrfFacts<'a> {
    pub method: &'a str,
    pub sec_fetch_site: Option<&'a str>,
    pub origin: Option<&'a str>,
    pub host: Option<&'a str>,
    pub tls: bool,
    pub token: Option<&'a [u8]>,
    /// The token sealed in the session.
    pub expected: &'a str,
}

/// Why a session request was refused (403).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CsrfFailure {
    #[error("a cross-site request cannot use the session (Sec-Fetch-Site / Origin)")]
    CrossSite,
    #[error("the request does not say where it comes from (no Origin)")]
    NoOrigin,
    #[error("the X-CSRF-Token header is missing or does not match the session")]
    Token,
}

/// Whether a session-authenticated request may proceed; see the module doc.
pub fn check_csrf(f: &CsrfFacts<'_>) -> Result<(), CsrfFailure> {
    if matches!(f.method, "GET" | "HEAD" | "OPTIONS") {
        return Ok(());
    }
    check_origin(f.sec_fetch_site, f.origin, f.host, f.tls)?;
    let token = f.token.map(<[u8]>::trim_ascii).unwrap_or_default();
    if f.expected.is_empty() || !secret_matches(token, f.expected.as_bytes()) {
        return Err(CsrfFailure::Token);
    }
    Ok(())
}

/// The first half of the proof: the request says it comes from this origin.
pub fn check_origin(
    sec_fetch_site: Option<&str>,
    origin: Option<&str>,
    host: Option<&str>,
    tls: bool,
) -> Result<(), CsrfFailure> {
    match (sec_fetch_site, origin) {
        (Some(site), _) if site.trim().eq_ignore_ascii_case("same-origin") => Ok(()),
        (Some(_), _) => Err(CsrfFailure::CrossSite),
        (None, Some(origin)) if same_origin(origin, host, tls) => Ok(()),
        (None, Some(_)) => Err(CsrfFailure::CrossSite),
        (None, None) => Err(CsrfFailure::NoOrigin),
    }
}

/// Whether `origin` (`scheme://host[:port]`) names this request's own origin.
fn same_origin(origin: &str, host: Option<&str>, tls: bool) -> bool {
    let Some(host) = host else { return false };
    let scheme = if tls { "https://" } else { "http://" };
    origin
        .trim()
        .strip_prefix(scheme)
        .is_some_and(|rest| rest.eq_ignore_ascii_case(host.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts<'a>(site: Option<&'a str>, origin: Option<&'a str>, token: &'a str) -> CsrfFacts<'a> {
        CsrfFacts {
            method: "POST",
            sec_fetch_site: site,
            origin,
            host: Some("127.0.0.1:7676"),
            tls: false,
            token: Some(token.as_bytes()),
            expected: "t0k3n",
        }
    }

    #[test]
    fn same_origin_pages_with_the_token_pass() {
        assert_eq!(
            check_csrf(&facts(Some("same-origin"), None, "t0k3n")),
            Ok(())
        );
        let own = Some("http://127.0.0.1:7676");
        assert_eq!(check_csrf(&facts(None, own, "t0k3n")), Ok(()));
        let get = CsrfFacts {
            method: "GET",
            ..facts(Some("cross-site"), None, "")
        };
        assert_eq!(check_csrf(&get), Ok(()));
    }

    #[test]
    fn cross_site_or_tokenless_requests_are_refused() {
        use CsrfFailure::*;
        for site in ["cross-site", "same-site", "none"] {
            assert_eq!(
                check_csrf(&facts(Some(site), None, "t0k3n")),
                Err(CrossSite)
            );
        }
        for origin in [
            "https://evil.example",
            "null",
            "http://127.0.0.1:7677",
            "https://127.0.0.1:7676",
        ] {
            assert_eq!(
                check_csrf(&facts(None, Some(origin), "t0k3n")),
                Err(CrossSite),
                "{origin}"
            );
        }
        assert_eq!(check_csrf(&facts(None, None, "t0k3n")), Err(NoOrigin));
        assert_eq!(
            check_csrf(&facts(Some("same-origin"), None, "wrong")),
            Err(Token)
        );
        let missing = CsrfFacts {
            token: None,
            ..facts(Some("same-origin"), None, "")
        };
        assert_eq!(check_csrf(&missing), Err(Token));
    }
}
