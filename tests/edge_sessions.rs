//! Browser sessions at the edge (issue #19), over real origins and real Viceroy: signing
//! in through the edge, the sealed cookie, CSRF for unsafe methods, signing out, and bearer
//! clients unaffected.

mod support;

use reqwest::blocking::{Client, Response};
use support::{client_from, sign_up, three_origins, StackBuilder};

const PASSWORD: &str = "correct-horse-1";

fn cookies(resp: &Response) -> Vec<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect()
}

/// `name=value` of a `Set-Cookie` line.
fn pair(set_cookie: &str) -> (&str, &str) {
    let first = set_cookie.split(';').next().unwrap();
    first.split_once('=').unwrap()
}

/// Signs in through the edge; returns the `Cookie` header a browser would send and the
/// CSRF token its pages would read.
fn sign_in(client: &Client, base: &str, email: &str) -> (String, String, Vec<String>) {
    let resp = client
        .post(format!("{base}/session/login"))
        .header("origin", base)
        .header("sec-fetch-site", "same-origin")
        .json(&serde_json::json!({"email": email, "password": PASSWORD}))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 204, "{:?}", resp.text());
    let set = cookies(&resp);
    let session = set
        .iter()
        .find(|c| c.starts_with("__Host-fastgate_session="))
        .unwrap();
    let csrf = set
        .iter()
        .find(|c| c.starts_with("fastgate_csrf="))
        .unwrap();
    let header = format!(
        "{}={}; {}={}",
        pair(session).0,
        pair(session).1,
        pair(csrf).0,
        pair(csrf).1
    );
    (header, pair(csrf).1.to_owned(), set)
}

fn upload(client: &Client, base: &str, cookie: &str, extra: &[(&str, &str)]) -> Response {
    let mut req = client
        .post(format!("{base}/api/uploads"))
        .header("cookie", cookie)
        .json(&serde_json::json!({"content": "Sessions at the edge. They are sealed."}));
    for (name, value) in extra {
        req = req.header(*name, *value);
    }
    req.send().unwrap()
}

#[test]
fn a_session_signs_in_reads_and_writes_same_origin_and_refuses_cross_site() {
    let stack = StackBuilder::new(three_origins()).start();
    let base = stack.edge_url();
    let account = sign_up(&base, 1, "session-user@example.com");
    let client = client_from(1);
    let (cookie, csrf, set) = sign_in(&client, &base, &account.email);

    // The session cookie: HttpOnly, Secure, SameSite=Lax, bounded; the CSRF one readable.
    let session_line = &set[0];
    for attr in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/", "Max-Age="] {
        assert!(session_line.contains(attr), "{attr}: {session_line}");
    }
    assert!(!set[1].contains("HttpOnly"), "{}", set[1]);
    let sealed = pair(session_line).1;
    assert!(!sealed.contains(&account.token) && !sealed.contains("eyJ"));

    // Reads with the cookie alone see the same user as a bearer token does.
    let profile = client
        .get(format!("{base}/api/user/profile"))
        .header("cookie", &cookie)
        .send()
        .unwrap();
    assert_eq!(profile.status(), 200);
    let profile: serde_json::Value = profile.json().unwrap();
    assert_eq!(profile["email"], account.email.as_str());

    // A same-origin write from the page succeeds.
    let own = [("origin", base.as_str()), ("x-csrf-token", csrf.as_str())];
    assert_eq!(upload(&client, &base, &cookie, &own).status(), 202);
    let fetched = [
        ("sec-fetch-site", "same-origin"),
        ("x-csrf-token", csrf.as_str()),
    ];
    assert_eq!(upload(&client, &base, &cookie, &fetched).status(), 202);

    // A cross-site form post carrying the cookie is refused, as is any write without proof.
    for extra in [
        vec![
            ("origin", "https://evil.example"),
            ("sec-fetch-site", "cross-site"),
        ],
        vec![
            ("origin", "https://evil.example"),
            ("x-csrf-token", csrf.as_str()),
        ],
        vec![
            ("sec-fetch-site", "same-site"),
            ("x-csrf-token", csrf.as_str()),
        ],
        vec![("origin", base.as_str())],
        vec![("origin", base.as_str()), ("x-csrf-token", "forged")],
        vec![("x-csrf-token", csrf.as_str())],
    ] {
        let resp = upload(&client, &base, &cookie, &extra);
        assert_eq!(resp.status(), 403, "{extra:?}");
        let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
        assert_eq!(ct, "application/problem+json");
    }

    // The sealed value is no bearer token.
    let stolen = client
        .get(format!("{base}/api/user/profile"))
        .bearer_auth(sealed)
        .send()
        .unwrap();
    assert_eq!(stolen.status(), 401);

    // A bearer client is unaffected: no Origin, no CSRF token, no cookie.
    let bearer = client
        .post(format!("{base}/api/uploads"))
        .bearer_auth(&account.token)
        .json(&serde_json::json!({"content": "From a script, with a token."}))
        .send()
        .unwrap();
    assert_eq!(bearer.status(), 202);
}

#[test]
fn signing_out_ends_the_session_even_for_a_copied_cookie() {
    let stack = StackBuilder::new(three_origins()).start();
    let base = stack.edge_url();
    let account = sign_up(&base, 1, "leaving@example.com");
    let client = client_from(1);
    let (cookie, csrf, _) = sign_in(&client, &base, &account.email);
    let profile = |cookie: &str| {
        client
            .get(format!("{base}/api/user/profile"))
            .header("cookie", cookie)
            .send()
            .unwrap()
            .status()
    };
    assert_eq!(profile(&cookie), 200);
    let cross = client
        .post(format!("{base}/session/logout"))
        .header("cookie", &cookie)
        .header("origin", "https://evil.example")
        .send()
        .unwrap();
    assert_eq!(cross.status(), 403, "no cross-site sign-out");
    let out = client
        .post(format!("{base}/session/logout"))
        .header("cookie", &cookie)
        .header("origin", &base)
        .header("x-csrf-token", &csrf)
        .send()
        .unwrap();
    assert_eq!(out.status(), 204);
    let cleared = cookies(&out);
    assert!(
        cleared.iter().all(|c| c.contains("Max-Age=0")),
        "{cleared:?}"
    );
    assert_eq!(cleared.len(), 2);
    assert_eq!(
        profile(&cookie),
        401,
        "a copy of the old cookie no longer works"
    );
}

#[test]
fn session_logins_are_refused_cleanly_and_rate_limited_like_logins() {
    let stack = StackBuilder::new(three_origins()).start();
    let base = stack.edge_url();
    let account = sign_up(&base, 2, "guessed@example.com");
    let client = client_from(2);
    let attempt = |password: &str, origin: &str| {
        client
            .post(format!("{base}/session/login"))
            .header("origin", origin)
            .json(&serde_json::json!({"email": account.email, "password": password}))
            .send()
            .unwrap()
    };
    let cross = attempt(PASSWORD, "https://evil.example");
    assert_eq!(cross.status(), 403, "no login CSRF");
    let mut statuses = Vec::new();
    for _ in 0..7 {
        let resp = attempt("wrong-password", &base);
        if resp.status() == 401 {
            assert!(cookies(&resp).is_empty());
            let body: serde_json::Value = resp.json().unwrap();
            assert_eq!(body["detail"], "Incorrect email or password");
            statuses.push(401);
        } else {
            statuses.push(resp.status().as_u16());
        }
    }
    assert!(statuses.starts_with(&[401, 401, 401]), "{statuses:?}");
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    let garbage = client
        .get(format!("{base}/api/user/profile"))
        .header(
            "cookie",
            "__Host-fastgate_session=v1.k.AAAA; fastgate_csrf=x",
        )
        .send()
        .unwrap();
    assert_eq!(garbage.status(), 401);
    let cleared = cookies(&garbage);
    assert_eq!(
        cleared.len(),
        2,
        "a dead session cookie is cleared: {cleared:?}"
    );
    assert!(
        cleared.iter().all(|c| c.contains("Max-Age=0")),
        "{cleared:?}"
    );
}
