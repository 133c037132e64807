//! The route table: which configured route a request belongs to. First match wins, so
//! specific routes go before broad ones, as in Envoy's route lists.

use serde::Deserialize;

/// How a route matches a path.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum PathMatch {
    /// The path equals this exactly.
    Exact(String),
    /// The path starts with this.
    Prefix(String),
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Stable identifier used in logs and metrics.
    pub id: String,
    /// Allowed methods; empty means any method.
    #[serde(default)]
    pub methods: Vec<String>,
    pub path: PathMatch,
    /// Overrides the geo map's backend list for this route.
    #[serde(default)]
    pub backends: Option<Vec<String>>,
}

impl Route {
    /// Checks the route's own fields; returns the sub-field at fault and why.
    pub(crate) fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.id.is_empty() {
            return Err(("id", "must not be empty".into()));
        }
        let pattern = match &self.path {
            PathMatch::Exact(p) | PathMatch::Prefix(p) => p,
        };
        if !pattern.starts_with('/') {
            return Err(("path", format!("`{pattern}` must start with `/`")));
        }
        for m in &self.methods {
            if m.is_empty() || !m.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(("methods", format!("`{m}` is not an upper-case HTTP method")));
            }
        }
        Ok(())
    }

    fn path_matches(&self, path: &str) -> bool {
        match &self.path {
            PathMatch::Exact(p) => path == p,
            PathMatch::Prefix(p) => path.starts_with(p.as_str()),
        }
    }

    fn method_matches(&self, method: &str) -> bool {
        self.methods.is_empty() || self.methods.iter().any(|m| m == method)
    }
}

/// Why no route was chosen. A path that exists for other methods is a 405, not a 404.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoRoute {
    NotFound,
    MethodNotAllowed,
}

/// Returns the first route matching `method` and `path`.
pub fn match_route<'a>(routes: &'a [Route], method: &str, path: &str) -> Result<&'a Route, NoRoute> {
    let mut path_seen = false;
    for route in routes {
        if route.path_matches(path) {
            if route.method_matches(method) {
                return Ok(route);
            }
            path_seen = true;
        }
    }
    Err(if path_seen {
        NoRoute::MethodNotAllowed
    } else {
        NoRoute::NotFound
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn first_match_wins_and_methods_filter() {
        let c = Config::embedded().unwrap();
        assert_eq!(match_route(&c.routes, "GET", "/health").unwrap().id, "health");
        assert_eq!(match_route(&c.routes, "POST", "/api/process").unwrap().id, "api");
        assert_eq!(
            match_route(&c.routes, "POST", "/health").unwrap_err(),
            NoRoute::MethodNotAllowed
        );
        assert_eq!(
            match_route(&c.routes, "GET", "/nowhere").unwrap_err(),
            NoRoute::NotFound
        );
        // `/healthz` must not ride on the exact `/health` route.
        assert_eq!(
            match_route(&c.routes, "GET", "/healthz").unwrap_err(),
            NoRoute::NotFound
        );
    }
}
