//! Limits on every route: a route that can reach one of the origin's expensive handlers
//! (an argon2 hash per login or signup, a search, an upload, a job) must carry a rate limit,
//! or say in `unlimited_routes` why it does not. An alias added without one (`/v1/*` was)
//! is then a config error naming the route, not an open door.
//!
//! How the check knows what a route reaches: the config lists the handlers in
//! `expensive_paths` as `"<METHOD> <path>"` (origin paths; absent: [`DEFAULT`]). For each
//! route and handler it asks the route table itself: is there a request this route would be
//! chosen for, whose path the route's rewrite turns into the handler's path?
//! - The request is probed with the route's own `Host` and header predicates, so an earlier
//!   route takes it only when it would take every such request (first match wins).
//! - Client paths are found by undoing a prefix rewrite (`strip_prefix`/`add_prefix`):
//!   `/api/query` is probed as `/v1/query` for the `v1-compat` route, then the rewrite must
//!   give `/api/query` back.
//! - A route that redirects never reaches the origin. A route whose rewrite uses a regex
//!   cannot be undone, so it is assumed to reach every handler its methods allow.

use std::collections::BTreeMap;

use crate::config::FieldError;
use crate::route::{match_route, Route, RouteInput, RouteSpec};
use crate::{http, path};

/// The origin's handlers whose every call costs real work.
pub(crate) const DEFAULT: [&str; 5] = [
    "POST /api/auth/login",
    "POST /api/auth/signup",
    "POST /api/query",
    "POST /api/uploads",
    "POST /api/process",
];

/// One expensive handler: a method and an origin path.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Expensive<'a> {
    text: &'a str,
    method: &'a str,
    path: &'a str,
}

/// `"<METHOD> <path>"`: an upper-case method token, one space, a normalised absolute path.
fn parse(text: &str) -> Option<Expensive<'_>> {
    let (method, path) = text.split_once(' ')?;
    let method_ok = http::is_token(method) && !method.bytes().any(|b| b.is_ascii_lowercase());
    (method_ok && path::is_safe_target(path)).then_some(Expensive { text, method, path })
}

/// Checks every route against `expensive` (absent: [`DEFAULT`]) and `unlimited` (route id →
/// reason); `table` is `specs` compiled. The error names the first route at fault.
pub(super) fn check(
    specs: &[RouteSpec],
    table: &[Route],
    expensive: Option<&[String]>,
    unlimited: &BTreeMap<String, String>,
) -> Result<(), FieldError> {
    let listed: Vec<&str> = match expensive {
        Some(list) => list.iter().map(String::as_str).collect(),
        None => DEFAULT.to_vec(),
    };
    let mut handlers = Vec::with_capacity(listed.len());
    for (i, text) in listed.into_iter().enumerate() {
        handlers.push(parse(text).ok_or_else(|| {
            FieldError::new(
                format!("expensive_paths[{i}]"),
                format!("`{text}` is not `<METHOD> <path>` (e.g. `POST /api/query`)"),
            )
        })?);
    }
    check_opt_outs(specs, unlimited)?;
    for (i, (spec, route)) in specs.iter().zip(table).enumerate() {
        if spec.rate_limit.is_some() || unlimited.contains_key(&spec.id) {
            continue;
        }
        if let Some(h) = handlers.iter().find(|h| reaches(table, spec, route, h)) {
            return Err(FieldError::new(
                format!("routes[{i}].rate_limit"),
                format!(
                    "route `{}` reaches `{}` at the origin without a rate limit: add one, or \
                     name the route in `unlimited_routes` with the reason",
                    spec.id, h.text
                ),
            ));
        }
    }
    Ok(())
}

/// Every opt-out names a route without a limit, and gives a reason.
fn check_opt_outs(
    specs: &[RouteSpec],
    unlimited: &BTreeMap<String, String>,
) -> Result<(), FieldError> {
    for (id, reason) in unlimited {
        let field = format!("unlimited_routes.{id}");
        match specs.iter().find(|s| s.id == *id) {
            None => return Err(FieldError::new(field, "no route has this id")),
            Some(s) if s.rate_limit.is_some() => {
                return Err(FieldError::new(
                    field,
                    "the route has a rate limit; an opt-out would be ignored",
                ))
            }
            Some(_) if reason.trim().is_empty() => {
                return Err(FieldError::new(field, "say why the route is unlimited"))
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// Whether some request routed to `route` reaches the handler `h` at the origin (a
/// redirect or a static route reaches none).
fn reaches(table: &[Route], spec: &RouteSpec, route: &Route, h: &Expensive<'_>) -> bool {
    if spec.redirect.is_some()
        || spec.static_files
        || !(spec.methods.is_empty() || spec.methods.iter().any(|m| m == h.method))
    {
        return false;
    }
    let Some(rewrite) = &spec.rewrite else {
        return chosen(table, spec, route, h.method, h.path);
    };
    if rewrite.regex.is_some() {
        return true;
    }
    client_paths(
        rewrite.strip_prefix.as_deref(),
        rewrite.add_prefix.as_deref(),
        h.path,
    )
    .into_iter()
    .chain([h.path.to_owned()])
    .any(|client| {
        chosen(table, spec, route, h.method, &client)
            && route
                .rewrite
                .as_ref()
                .and_then(|rw| rw.apply(&client, None).ok())
                .is_some_and(|(origin, _)| origin == h.path)
    })
}

/// The client paths a `strip_prefix`/`add_prefix` rewrite could turn into `origin`.
fn client_paths(strip: Option<&str>, add: Option<&str>, origin: &str) -> Vec<String> {
    let rest = match add {
        Some(add) => match origin.strip_prefix(add) {
            Some("") => "/",
            Some(rest) if rest.starts_with('/') => rest,
            _ => return Vec::new(),
        },
        None => origin,
    };
    match strip {
        Some(strip) if rest == "/" => vec![strip.to_owned(), format!("{strip}/")],
        Some(strip) => vec![format!("{strip}{rest}")],
        None => vec![rest.to_owned()],
    }
}

/// Whether the table sends `method path`, with `spec`'s host and headers, to `route`.
fn chosen(table: &[Route], spec: &RouteSpec, route: &Route, method: &str, path: &str) -> bool {
    // Most probes miss the route itself: no need to ask the whole table then.
    if !(route.path_matches(path) && route.method_matches(method)) {
        return false;
    }
    let headers: Vec<(&str, &str)> = spec
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let input = RouteInput {
        method,
        path,
        host: spec.host.as_deref(),
        headers: &headers,
    };
    match_route(table, &input).is_ok_and(|r| std::ptr::eq(r, route))
}

#[cfg(test)]
mod tests {
    use super::super::super::{Config, ConfigError, EMBEDDED};
    use serde_json::{json, Value};

    fn with(edit: impl FnOnce(&mut Value)) -> Result<Config, ConfigError> {
        let mut v: Value = serde_json::from_str(EMBEDDED).unwrap();
        edit(&mut v);
        Config::parse(&v.to_string())
    }

    fn route<'v>(v: &'v mut Value, id: &str) -> &'v mut serde_json::Map<String, Value> {
        v["routes"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|r| r["id"] == id)
            .unwrap()
            .as_object_mut()
            .unwrap()
    }

    fn field(e: ConfigError) -> String {
        match e {
            ConfigError::Invalid(f) => format!("{}: {}", f.field, f.reason),
            other => panic!("{other}"),
        }
    }

    /// Issue 14, defect 3: `/v1/*` had no limit and nothing noticed.
    #[test]
    fn a_route_reaching_an_expensive_handler_without_a_limit_is_refused() {
        for (id, reaches) in [
            ("v1-compat", "POST /api/query"),
            ("api", "POST /api/query"),
            ("signup", "POST /api/auth/signup"),
            ("v1-signup", "POST /api/auth/signup"),
            ("login", "POST /api/auth/login"),
            ("v1-login", "POST /api/auth/login"),
            ("session-login", "POST /api/auth/login"),
            ("uploads", "POST /api/uploads"),
            ("v1-uploads", "POST /api/uploads"),
        ] {
            let e = field(
                with(|v| {
                    route(v, id).remove("rate_limit");
                })
                .unwrap_err(),
            );
            assert!(
                e.contains(".rate_limit: route `") && e.contains(reaches),
                "{id}: {e}"
            );
            assert!(e.contains(&format!("`{id}`")), "{e}");
        }
        // Routes that cannot reach one stay free: their paths, methods or a redirect.
        with(|v| {
            for id in ["user-profile", "user-by-id", "summaries"] {
                route(v, id).remove("rate_limit");
            }
        })
        .unwrap();
    }

    #[test]
    fn earlier_routes_take_the_expensive_requests_of_a_broad_route() {
        // `auth` (any method on /api/auth/) only sees what `login` and `signup` leave it.
        with(|_| {}).unwrap();
        // Without the signup route, it reaches signup.
        let e = field(
            with(|v| {
                let routes = v["routes"].as_array_mut().unwrap();
                routes.retain(|r| r["id"] != "signup");
            })
            .unwrap_err(),
        );
        assert!(e.contains("`auth` reaches `POST /api/auth/signup`"), "{e}");
        // A route limited to other methods never does: POST goes on to `api`, limited.
        with(|v| {
            let routes = v["routes"].as_array_mut().unwrap();
            routes.retain(|r| r["id"] != "signup");
            route(v, "auth").insert("methods".into(), json!(["GET", "HEAD"]));
        })
        .unwrap();
        // A route with a host predicate is probed with its own host: not exempt.
        let e = field(
            with(|v| {
                let routes = v["routes"].as_array_mut().unwrap();
                routes.insert(
                    0,
                    json!({"id": "partner", "host": "partner.example",
                           "path": {"prefix": "/p/"},
                           "rewrite": {"strip_prefix": "/p", "add_prefix": "/api"}}),
                );
            })
            .unwrap_err(),
        );
        assert!(e.starts_with("routes[0].rate_limit"), "{e}");
        assert!(
            e.contains("`partner` reaches `POST /api/auth/login`"),
            "{e}"
        );
        // ... and in front of a catch-all, it takes only its host's requests.
        let e = field(
            with(|v| {
                route(v, "api").remove("rate_limit");
                let routes = v["routes"].as_array_mut().unwrap();
                routes.insert(
                    0,
                    json!({"id": "partner-api", "host": "partner.example",
                           "path": {"prefix": "/api/"},
                           "rate_limit": {"key": "ip", "limit": 5, "window_s": 1}}),
                );
            })
            .unwrap_err(),
        );
        assert!(e.contains("`api` reaches `POST /api/query`"), "{e}");
    }

    #[test]
    fn rewrites_are_undone_and_redirects_and_regexes_handled() {
        // A prefix rewrite onto the exact handler path.
        let add = |r: Value| {
            move |v: &mut Value| {
                v["routes"].as_array_mut().unwrap().insert(0, r);
            }
        };
        let e = field(
            with(add(
                json!({"id": "legacy-search", "path": {"exact": "/search"},
                             "rewrite": {"strip_prefix": "/search", "add_prefix": "/api/query"}}),
            ))
            .unwrap_err(),
        );
        assert!(
            e.contains("`legacy-search` reaches `POST /api/query`"),
            "{e}"
        );
        // A rewrite elsewhere, or a redirect, reaches nothing.
        with(add(json!({"id": "elsewhere", "path": {"prefix": "/x/"},
                        "rewrite": {"strip_prefix": "/x", "add_prefix": "/api/user"}})))
        .unwrap();
        with(add(json!({"id": "moved", "path": {"prefix": "/old/"},
                        "rewrite": {"strip_prefix": "/old", "add_prefix": "/api"},
                        "redirect": {"status": 308}, "auth": {"policy": "public"}})))
        .unwrap();
        // A regex rewrite cannot be undone: assumed to reach them.
        let e = field(
            with(add(
                json!({"id": "re", "methods": ["POST"], "path": {"exact": "/r"},
                            "rewrite": {"regex": {"pattern": "^/r$", "replace": "/api/ping"}}}),
            ))
            .unwrap_err(),
        );
        assert!(e.contains("`re` reaches"), "{e}");
        with(add(
            json!({"id": "re", "methods": ["GET"], "path": {"exact": "/r"},
                        "rewrite": {"regex": {"pattern": "^/r$", "replace": "/api/ping"}}}),
        ))
        .unwrap();
    }

    #[test]
    fn opt_outs_are_explicit_and_reasoned() {
        let unlimited = |reason: &str| {
            let reason = reason.to_owned();
            move |v: &mut Value| {
                route(v, "v1-compat").remove("rate_limit");
                v["unlimited_routes"] = json!({"v1-compat": reason});
            }
        };
        with(unlimited("internal clients only, limited upstream")).unwrap();
        let e = field(with(unlimited(" ")).unwrap_err());
        assert!(e.starts_with("unlimited_routes.v1-compat: say why"), "{e}");
        let e = field(with(|v| v["unlimited_routes"] = json!({"nope": "x"})).unwrap_err());
        assert!(e.starts_with("unlimited_routes.nope: no route"), "{e}");
        let e = field(with(|v| v["unlimited_routes"] = json!({"api": "x"})).unwrap_err());
        assert!(
            e.starts_with("unlimited_routes.api: the route has a rate limit"),
            "{e}"
        );
        // The list itself: the default, another list, or none at all.
        with(|v| {
            route(v, "v1-compat").remove("rate_limit");
            v["expensive_paths"] = json!([]);
        })
        .unwrap();
        with(|v| {
            route(v, "v1-compat").remove("rate_limit");
            v["expensive_paths"] = json!(["POST /api/auth/login"]);
        })
        .unwrap();
        for bad in [
            "/api/query",
            "post /api/query",
            "POST api/query",
            "POST /a/../b",
            "POST  /x",
        ] {
            let e = field(
                with(|v| v["expensive_paths"] = json!(["POST /api/query", bad])).unwrap_err(),
            );
            assert!(e.starts_with("expensive_paths[1]: "), "{bad}: {e}");
        }
    }

    #[test]
    fn the_default_file_lists_the_default_handlers() {
        let v: Value = serde_json::from_str(EMBEDDED).unwrap();
        assert_eq!(v["expensive_paths"], json!(super::DEFAULT));
    }
}
