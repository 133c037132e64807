//! The request lifecycle as named phases over one context, in the spirit of Pingora's
//! `ProxyHttp`: `classify` → `sanitize` → `select backend`. Later phases (cors, auth,
//! limit, rewrite, cache) slot in between without changing the adapter.
//!
//! Nothing here touches the platform: the adapter (`main.rs`) gathers [`RequestFacts`],
//! asks for a [`Decision`], and carries it out.

use crate::config::Config;
use crate::geo::{self, ClientGeo, GeoLevel};
use crate::problem::{Problem, ProblemKind};
use crate::request_id;
use crate::route::{self, NoRoute};
use crate::sanitize::{self, HeaderEdits};
use std::net::IpAddr;

/// What the adapter tells the gateway about an inbound request.
#[derive(Debug, Clone, Default)]
pub struct RequestFacts<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub header_names: Vec<&'a str>,
    pub connection_header: Option<&'a str>,
    pub request_id: Option<&'a str>,
    pub host: Option<&'a str>,
    pub client_ip: Option<IpAddr>,
    pub tls: bool,
    pub geo: ClientGeo,
}

/// Everything the adapter needs to forward a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    pub route_id: String,
    /// Backends to try, most preferred first.
    pub backends: Vec<String>,
    pub geo_level: GeoLevel,
    pub headers: HeaderEdits,
}

/// The outcome of the request phases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Forward(Forward),
    Respond(Problem),
}

/// The per-request context every phase reads and extends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub request_id: String,
    pub decision: Decision,
}

/// The gateway: a validated config plus the phase logic.
#[derive(Debug, Clone)]
pub struct Gateway {
    config: Config,
}

impl Gateway {
    pub fn new(config: Config) -> Self {
        Self { config }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Runs the request phases and returns what to do.
    pub fn plan(&self, req: &RequestFacts<'_>) -> Plan {
        let request_id = request_id::resolve(req.request_id);
        let decision = self.decide(req, &request_id);
        Plan {
            request_id,
            decision,
        }
    }

    fn decide(&self, req: &RequestFacts<'_>, request_id: &str) -> Decision {
        // classify
        let route = match route::match_route(&self.config.routes, req.method, req.path) {
            Ok(route) => route,
            Err(NoRoute::NotFound) => {
                return Decision::Respond(Problem::new(
                    ProblemKind::NotFound,
                    "no route matches this path",
                    request_id,
                ))
            }
            Err(NoRoute::MethodNotAllowed) => {
                return Decision::Respond(Problem::new(
                    ProblemKind::MethodNotAllowed,
                    format!("{} is not allowed on this path", req.method),
                    request_id,
                ))
            }
        };
        // sanitize
        let mut headers = sanitize::sanitize(
            req.header_names.iter().copied(),
            req.connection_header,
            &sanitize::Connection {
                client_ip: req.client_ip,
                tls: req.tls,
                host: req.host,
            },
        );
        headers
            .set
            .push((request_id::HEADER, request_id.to_owned()));
        // select backend
        let (backends, geo_level) = match &route.backends {
            Some(list) => (list.as_slice(), GeoLevel::Default),
            None => geo::select_backends(&self.config.geo, &req.geo),
        };
        Decision::Forward(Forward {
            route_id: route.id.clone(),
            backends: backends.to_vec(),
            geo_level,
            headers,
        })
    }
}

/// The answer when the edge itself is broken (never the client's fault).
pub fn internal_error(request_id: &str) -> Problem {
    Problem::new(
        ProblemKind::Internal,
        "the edge configuration failed to load",
        request_id,
    )
}

/// Builds the 502 answer when every candidate backend failed.
pub fn bad_gateway(request_id: &str, tried: &[String]) -> Problem {
    Problem::new(
        ProblemKind::BadGateway,
        format!("no origin answered (tried {})", tried.join(", ")),
        request_id,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts<'a>(method: &'a str, path: &'a str, country: &str, continent: &str) -> RequestFacts<'a> {
        RequestFacts {
            method,
            path,
            header_names: vec!["X-Forwarded-For", "Accept"],
            client_ip: Some("127.0.0.2".parse().unwrap()),
            geo: ClientGeo {
                country: Some(country.into()),
                continent: Some(continent.into()),
            },
            ..Default::default()
        }
    }

    #[test]
    fn forwards_to_the_geo_choice_with_sanitized_headers() {
        let gw = Gateway::new(Config::embedded().unwrap());
        let plan = gw.plan(&facts("GET", "/health", "DE", "EU"));
        let Decision::Forward(f) = plan.decision else {
            panic!("expected forward")
        };
        assert_eq!(f.route_id, "health");
        assert_eq!(f.backends[0], "origin_eu");
        assert!(f.headers.remove.contains(&"x-forwarded-for".to_string()));
        assert!(f
            .headers
            .set
            .contains(&("x-forwarded-for", "127.0.0.2".to_string())));
        assert!(f
            .headers
            .set
            .contains(&("x-request-id", plan.request_id.clone())));
    }

    #[test]
    fn unknown_route_is_a_404_problem_carrying_the_request_id() {
        let gw = Gateway::new(Config::embedded().unwrap());
        let mut req = facts("GET", "/nope", "US", "NA");
        req.request_id = Some("req-1");
        let plan = gw.plan(&req);
        assert_eq!(plan.request_id, "req-1");
        match plan.decision {
            Decision::Respond(p) => {
                assert_eq!(p.status, 404);
                assert!(p.instance.ends_with("req-1"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
