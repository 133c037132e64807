//! What the adapter tells the planning phases about an inbound request: plain values, so
//! the phases run (and are tested) natively.

use std::net::IpAddr;

use crate::geo::ClientGeo;

/// The inbound request as the planning phases see it.
#[derive(Debug, Clone, Default)]
pub struct RequestFacts<'a> {
    pub method: &'a str,
    /// The raw path, as received. Empty when the adapter could not read the request target
    /// as sent (no request target is empty: origin-form starts with `/`); there is no
    /// fallback to the platform's own path, which has `..` already resolved, so such a
    /// request is refused with 400.
    pub path: &'a str,
    /// The raw query, without `?`.
    pub query: Option<&'a str>,
    /// Inbound headers (name, value); values that are not UTF-8 appear as "".
    pub headers: Vec<(&'a str, &'a str)>,
    pub client_ip: Option<IpAddr>,
    pub tls: bool,
    pub geo: ClientGeo,
}

impl<'a> RequestFacts<'a> {
    /// The first value of a header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }

    /// A CORS preflight (RFC: Fetch §3.2.2) is routed as the request it announces.
    pub(crate) fn announced_method(&self) -> Option<&'a str> {
        let announced = self.header("access-control-request-method");
        let preflight = self.method == "OPTIONS" && self.header("origin").is_some();
        announced.filter(|_| preflight)
    }
}
