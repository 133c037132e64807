use super::*;
use crate::cache;
use crate::geo::ClientGeo;

fn facts<'a>(method: &'a str, path: &'a str, country: &str, continent: &str) -> RequestFacts<'a> {
    RequestFacts {
        method,
        path,
        headers: vec![("X-Forwarded-For", "6.6.6.6"), ("Accept", "*/*")],
        client_ip: Some("127.0.0.2".parse().unwrap()),
        geo: ClientGeo {
            country: Some(country.into()),
            continent: Some(continent.into()),
        },
        ..Default::default()
    }
}

fn forward(plan: Plan<'_>) -> ForwardPlan<'_> {
    match plan.next {
        Ok(f) => f,
        Err(other) => panic!("expected forward, got {other:?}"),
    }
}

#[test]
fn forwards_to_the_geo_choice_with_sanitized_headers() {
    let gw = Gateway::new(Config::embedded().unwrap());
    let plan = gw.plan(&facts("GET", "/health", "DE", "EU"));
    let id = plan.ctx.request_id.clone();
    let f = forward(plan);
    assert_eq!(f.route.id, "health");
    assert_eq!(f.backends[0], "origin_eu");
    assert!(f.headers.remove.contains(&"x-forwarded-for".to_string()));
    assert!(f
        .headers
        .set
        .contains(&("x-forwarded-for", "127.0.0.2".to_string())));
    assert!(f.headers.set.contains(&("x-request-id", id)));
}

#[test]
fn v1_paths_are_rewritten_to_api() {
    let gw = Gateway::new(Config::embedded().unwrap());
    let mut req = facts("GET", "/v1/user/profile", "US", "NA");
    req.query = Some("a=1");
    let f = forward(gw.plan(&req));
    assert_eq!(
        (f.path.as_str(), f.query.as_deref()),
        ("/api/user/profile", Some("a=1"))
    );
}

#[test]
fn traversal_is_a_400_and_unknown_route_a_404_with_the_request_id() {
    let gw = Gateway::new(Config::embedded().unwrap());
    let plan = gw.plan(&facts("GET", "/api/%2e%2e/etc/passwd", "US", "NA"));
    assert!(matches!(plan.next, Err(Early::Problem(ref p)) if p.status == 400));
    let mut req = facts("POST", "/nope", "US", "NA");
    req.headers.push(("X-Request-Id", "req-1"));
    let plan = gw.plan(&req);
    assert_eq!(plan.ctx.request_id, "req-1");
    match plan.next {
        Err(Early::Problem(p)) => {
            assert_eq!(p.status, 404);
            assert!(p.instance.ends_with("req-1"));
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn trailing_slash_redirects_keep_the_query() {
    let gw = Gateway::new(Config::embedded().unwrap());
    let mut req = facts("GET", "/api/summaries/", "US", "NA");
    req.query = Some("page=2");
    let plan = gw.plan(&req);
    assert_eq!(
        plan.next.unwrap_err(),
        Early::Redirect {
            status: 308,
            location: "/api/summaries?page=2".into()
        }
    );
}

#[test]
fn cache_keys_partition_per_user_and_vary_on_flags() {
    let gw = Gateway::new(Config::embedded().unwrap());
    let no_header = |_: &str| None;
    let profile = forward(gw.plan(&facts("GET", "/api/user/profile", "US", "NA")));
    let a = gw
        .cache_request(&profile, "GET", no_header, Some("a@example.com"), "")
        .unwrap();
    let b = gw
        .cache_request(&profile, "GET", no_header, Some("b@example.com"), "")
        .unwrap();
    assert_ne!(a.key, b.key, "per-user entries never share a key");
    assert!(matches!(a.lookup, cache::Lookup::Use { .. }));
    assert_eq!(
        a.surrogate_keys,
        vec![
            format!("user:{}", cache::subject_tag("a@example.com")),
            cache::uri_tag(&profile.path)
        ]
    );
    let anonymous = gw
        .cache_request(&profile, "GET", no_header, None, "")
        .unwrap();
    assert!(matches!(anonymous.lookup, cache::Lookup::Bypass { .. }));

    let by_id = forward(gw.plan(&facts(
        "GET",
        "/api/user/7c9e6679-7425-40de-944b-e07fc1f90ae7",
        "US",
        "NA",
    )));
    let bearer = |n: &str| (n == "authorization").then_some("Bearer x");
    let one = gw
        .cache_request(&by_id, "GET", bearer, Some("a@example.com"), "new_schema=0")
        .unwrap();
    let other_reader = gw
        .cache_request(&by_id, "GET", bearer, Some("b@example.com"), "new_schema=0")
        .unwrap();
    let other_flags = gw
        .cache_request(&by_id, "GET", bearer, Some("a@example.com"), "new_schema=1")
        .unwrap();
    assert_eq!(one.key, other_reader.key, "a public route shares one copy");
    assert_ne!(one.key, other_flags.key, "…per flag value");
    assert_eq!(
        one.lookup,
        cache::Lookup::Use {
            needs_shareable: true
        }
    );
    let health = forward(gw.plan(&facts("GET", "/health", "US", "NA")));
    assert!(gw
        .cache_request(&health, "GET", no_header, None, "")
        .is_none());
}

#[test]
fn only_successful_writes_purge() {
    let gw = Gateway::new(Config::embedded().unwrap());
    let uploads = forward(gw.plan(&facts("POST", "/api/uploads", "US", "NA")));
    let tag = cache::subject_tag("a@example.com");
    let path = uploads.path.as_str();
    // Nothing is ever stored for /api/uploads: only the route's own templates.
    assert_eq!(
        gw.purge_keys(uploads.route, "POST", 202, path, Some("a@example.com")),
        vec![format!("summaries:{tag}")]
    );
    assert!(gw
        .purge_keys(uploads.route, "POST", 422, path, Some("a@example.com"))
        .is_empty());
    assert!(gw
        .purge_keys(uploads.route, "GET", 200, path, Some("a@example.com"))
        .is_empty());
    // Any unsafe method answered without an error invalidates a path a cached route serves
    // (RFC 9111 §4.4); only a 2xx purges the route's templates too.
    let summaries = "/api/summaries";
    let own = cache::uri_tag(summaries);
    for method in ["PUT", "DELETE", "PATCH", "M-SEARCH"] {
        let keys = gw.purge_keys(uploads.route, method, 303, summaries, None);
        assert_eq!(keys, vec![own.clone()], "{method}");
    }
    assert_eq!(
        gw.purge_keys(uploads.route, "POST", 201, summaries, Some("a@example.com")),
        vec![format!("summaries:{tag}"), own.clone()]
    );
    for safe in ["HEAD", "OPTIONS"] {
        assert!(gw
            .purge_keys(uploads.route, safe, 200, summaries, None)
            .is_empty());
    }
    let v1 = forward(gw.plan(&facts("POST", "/v1/uploads", "US", "NA")));
    assert_eq!(v1.path, "/api/uploads");
    assert_eq!(v1.route.purge, uploads.route.purge);
}

fn problem(plan: Plan<'_>) -> crate::problem::Problem {
    match plan.next {
        Err(Early::Problem(p)) => p,
        other => panic!("expected a problem, got {other:?}"),
    }
}

#[test]
fn only_forwarded_methods_spelled_as_rfc_9110_spells_them_get_past_the_edge() {
    let gw = Gateway::new(Config::embedded().unwrap());
    for m in ["get", "Get", "gEt", "TRACE", "CONNECT", "PROPFIND", "BREW"] {
        let p = problem(gw.plan(&facts(m, "/api/user/profile", "US", "NA")));
        assert_eq!(p.status, 501, "{m}");
        assert!(p.headers.is_empty(), "{m}");
    }
    let f = forward(gw.plan(&facts("GET", "/api/user/profile", "US", "NA")));
    assert_eq!(f.route.id, "user-profile");
}

#[test]
fn a_405_says_which_methods_the_path_allows() {
    let gw = Gateway::new(Config::embedded().unwrap());
    let p = problem(gw.plan(&facts("DELETE", "/health", "US", "NA")));
    assert_eq!(p.status, 405);
    assert_eq!(p.headers, vec![("allow", "GET, HEAD".to_owned())]);
    let p = problem(gw.plan(&facts("PUT", "/openapi.json", "US", "NA")));
    assert_eq!(p.headers, vec![("allow", "GET, HEAD".to_owned())]);
}

#[test]
fn a_target_that_cannot_be_read_whole_is_refused_never_guessed() {
    let gw = Gateway::new(Config::embedded().unwrap());
    let max = gw.config().limits.max_uri_bytes;
    // The adapter could not read it (the path is then empty): refused, not guessed.
    let p = problem(gw.plan(&facts("GET", "", "US", "NA")));
    assert_eq!(p.status, 400);
    assert!(p.detail.contains("could not be read"), "{}", p.detail);

    // Read whole: a long query is fine up to the limit, and 414 past it.
    let pad = "a".repeat(max - "/health?p=".len());
    let query = format!("p={pad}");
    let mut req = facts("GET", "/health", "US", "NA");
    req.query = Some(&query);
    assert_eq!(forward(gw.plan(&req)).route.id, "health");
    let longer = format!("{query}b");
    req.query = Some(&longer);
    assert_eq!(problem(gw.plan(&req)).status, 414);

    // A traversal behind a long query is still a traversal.
    let query = format!("pad={}", "a".repeat(9 * 1024));
    for path in [
        "/api/auth/../user/profile",
        "/api/auth/%2e%2e/user/profile",
        "/api/auth/..\\user/profile",
        "/api/auth/..%5Cuser/profile",
        "/api/auth/..%2Fuser/profile",
    ] {
        let mut req = facts("GET", path, "US", "NA");
        req.query = Some(&query);
        assert_eq!(problem(gw.plan(&req)).status, 400, "{path}");
    }
}

#[test]
fn a_route_body_limit_overrides_the_config_default() {
    let mut v: serde_json::Value = serde_json::from_str(crate::config::EMBEDDED).unwrap();
    v["limits"] = serde_json::json!({"max_body_bytes": 2048});
    let uploads = v["routes"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|r| r["id"] == "uploads")
        .unwrap();
    uploads["max_body_bytes"] = 4096.into();
    let gw = Gateway::new(Config::parse(&v.to_string()).unwrap());
    let uploads = forward(gw.plan(&facts("POST", "/api/uploads", "US", "NA")));
    assert_eq!(gw.max_body_bytes(uploads.route), 4096);
    let login = forward(gw.plan(&facts("POST", "/api/auth/login", "US", "NA")));
    assert_eq!(gw.max_body_bytes(login.route), 2048);
    let embedded = Gateway::new(Config::embedded().unwrap());
    let login = forward(embedded.plan(&facts("POST", "/api/auth/login", "US", "NA")));
    assert_eq!(embedded.max_body_bytes(login.route), 1024 * 1024);
}
