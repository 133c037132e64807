//! HTTP caching metadata on the origin's reads, which the edge cache relies on: strong
//! ETags that agree across origin processes, 304 for a matching `If-None-Match`, and the
//! `Cache-Control` each resource chooses (`no-store` for a summaries list about to change).

mod common;

use common::{temp_dir, Origin, PASSWORD};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn reads_carry_validators_and_honour_if_none_match() {
    let dir = temp_dir("validators");
    let a = Origin::start("origin_us", &dir, &[]);
    let b = Origin::start("origin_eu", &dir, &[]);
    let client = reqwest::Client::new();
    let email = format!("etag.{}@example.com", common::random_word(8));
    let signup = client.post(format!("{}/api/auth/signup", a.url));
    let id = common::sign_up(signup, &email, Some("Etag User")).await;
    let token = common::login(&client, &a.url, &email, PASSWORD).await;

    let get = |base: &str, path: &str, inm: Option<&str>| {
        let mut req = client.get(format!("{base}{path}")).bearer_auth(&token);
        if let Some(tag) = inm {
            req = req.header("if-none-match", tag);
        }
        req.send()
    };
    for (path, cache_control) in [
        ("/api/user/profile".to_owned(), "max-age=300"),
        (format!("/api/user/{id}"), "public, max-age=300"),
        ("/api/summaries".to_owned(), "max-age=300"),
    ] {
        let r = get(&a.url, &path, None).await.unwrap();
        assert_eq!(r.status().as_u16(), 200, "{path}");
        assert_eq!(r.headers()["cache-control"], cache_control, "{path}");
        let tag = r.headers()["etag"].to_str().unwrap().to_owned();
        assert!(tag.starts_with('"') && tag.ends_with('"'), "{path}: {tag}");
        // Another origin process tags the same representation the same way.
        let other = get(&b.url, &path, None).await.unwrap();
        assert_eq!(other.headers()["etag"].to_str().unwrap(), tag, "{path}");
        let r = get(&b.url, &path, Some(&tag)).await.unwrap();
        assert_eq!(r.status().as_u16(), 304, "{path}");
        assert_eq!(r.headers()["etag"].to_str().unwrap(), tag);
        assert!(r.bytes().await.unwrap().is_empty());
        let r = get(&a.url, &path, Some("\"something-else\""))
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{path}");
    }
    let user = get(&a.url, &format!("/api/user/{id}"), None).await.unwrap();
    assert_eq!(user.headers()["vary"], "fastgate-flags");
    // Liveness is never cacheable metadata. It is answered ahead of the router, yet still
    // echoes the edge's request id and names the origin, for GET and HEAD alike.
    for method in [reqwest::Method::GET, reqwest::Method::HEAD] {
        let health = client
            .request(method.clone(), format!("{}/health", a.url))
            .header("x-request-id", "probe-42")
            .send()
            .await
            .unwrap();
        assert_eq!(health.status().as_u16(), 200, "{method}");
        assert!(health.headers().get("etag").is_none());
        assert_eq!(health.headers()["x-request-id"], "probe-42");
        assert_eq!(health.headers()["fastgate-origin"], "origin_us");
        assert_eq!(health.headers()["content-type"], "application/json");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_summaries_list_with_a_queued_upload_is_not_storable() {
    let dir = temp_dir("validators-queued");
    // No worker: the upload stays queued, so the list is about to change.
    let o = Origin::start("origin_us", &dir, &[("FASTGATE_WORKER", "0")]);
    let client = reqwest::Client::new();
    let email = format!("queued.{}@example.com", common::random_word(8));
    let token = common::new_account(&client, &o.url, &email).await;
    let summaries = || {
        client
            .get(format!("{}/api/summaries", o.url))
            .bearer_auth(&token)
            .send()
    };
    assert_eq!(
        summaries().await.unwrap().headers()["cache-control"],
        "max-age=300"
    );
    let r = client
        .post(format!("{}/api/uploads", o.url))
        .bearer_auth(&token)
        .json(&json!({"content": "A queued document. It waits for a worker."}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let r = summaries().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
}

/// Regression (issue 14, defect 8): a tagged read over 1 MiB (a user row with a 1.1 MB
/// `full_name`) was answered with a bare 500. It goes out whole and untagged, and a
/// conditional request cannot turn it into a 304; a small row is still tagged.
#[tokio::test(flavor = "multi_thread")]
async fn a_read_over_a_mebibyte_passes_through_untagged() {
    let dir = temp_dir("validators-large");
    let o = Origin::start("origin_us", &dir, &[]);
    let client = reqwest::Client::new();
    let email = format!("large.{}@example.com", common::random_word(8));
    let name = "N".repeat(1_100_000);
    let signup = client.post(format!("{}/api/auth/signup", o.url));
    let id = common::sign_up(signup, &email, Some(&name)).await;
    let token = common::login(&client, &o.url, &email, PASSWORD).await;
    for inm in [None, Some("*")] {
        let mut req = client
            .get(format!("{}/api/user/{id}", o.url))
            .bearer_auth(&token);
        if let Some(tag) = inm {
            req = req.header("if-none-match", tag);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200, "{inm:?}");
        assert!(r.headers().get("etag").is_none(), "{inm:?}");
        assert_eq!(r.headers()["cache-control"], "public, max-age=300");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["full_name"].as_str().map(str::len), Some(name.len()));
        assert_eq!(body["id"], id.as_str());
    }
    let r = client
        .get(format!("{}/api/user/profile", o.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("etag").is_some());
}
