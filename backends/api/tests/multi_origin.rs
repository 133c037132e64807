//! Three origins started at the same moment on one data directory (as `xtask serve` does):
//! migrations and first-run ES256 key generation must not race, and a token signed by one
//! origin must verify on the others, with one key published by all.

mod common;

use common::{temp_dir, Origin, PASSWORD};
use serde_json::Value;

const NAMES: [&str; 3] = ["origin_us", "origin_eu", "origin_ap"];

#[tokio::test(flavor = "multi_thread")]
async fn three_origins_share_db_and_es256_keys() {
    let dir = temp_dir("multi");
    let env = [("JWT_ALGORITHM", "ES256")];
    let mut origins: Vec<Origin> = NAMES.iter().map(|n| Origin::spawn(n, &dir, &env)).collect();
    for (o, n) in origins.iter_mut().zip(NAMES) {
        o.wait_ready(n);
    }
    let client = reqwest::Client::new();
    let mut sets = Vec::new();
    for (o, name) in origins.iter().zip(NAMES) {
        let r = client
            .get(format!("{}/.well-known/jwks.json", o.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["fastgate-origin"], name);
        sets.push(r.json::<Value>().await.unwrap());
    }
    assert!(sets.iter().all(|s| s == &sets[0]), "JWKS differ: {sets:?}");
    let keys = sets[0]["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["kty"], "EC");
    assert_eq!(keys[0]["alg"], "ES256");

    // Signed up on one origin, logged in on another.
    let email = format!("multi.{}@example.com", common::random_word(8));
    let signup = client.post(format!("{}/api/auth/signup", origins[0].url));
    common::sign_up(signup, &email, None).await;
    let token = common::login(&client, &origins[1].url, &email, PASSWORD).await;
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256);
    assert_eq!(header.kid.as_deref(), keys[0]["kid"].as_str());
    let claims = jsonwebtoken::dangerous::insecure_decode::<Value>(&token)
        .unwrap()
        .claims;
    for claim in ["sub", "uid", "iat", "exp", "iss", "aud"] {
        assert!(claims.get(claim).is_some(), "missing {claim} in {claims}");
    }
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        24 * 3600
    );
    for (o, name) in origins.iter().zip(NAMES) {
        let r = client
            .get(format!("{}/api/user/profile", o.url))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{name}");
        assert_eq!(r.headers()["fastgate-origin"], name);
    }
    drop(origins);
    let _ = std::fs::remove_dir_all(dir);
}
