//! Tokens the edge will verify: an ES256 key with its JWK (for a JWKS the test serves)
//! and HS256 tokens signed with the stack's shared key.

/// An ES256 signing key for tests, with its public JWK.
pub struct EcKey {
    pub kid: String,
    pub pem: String,
    pub jwk: serde_json::Value,
}

impl EcKey {
    pub fn generate(kid: &str) -> EcKey {
        use p256::pkcs8::EncodePrivateKey;
        let secret = p256::SecretKey::random(&mut rand_core::OsRng);
        let pem = secret.to_pkcs8_pem(Default::default()).unwrap().to_string();
        let mut jwk: serde_json::Value =
            serde_json::from_str(&secret.public_key().to_jwk_string()).unwrap();
        jwk["kid"] = kid.into();
        jwk["use"] = "sig".into();
        jwk["alg"] = "ES256".into();
        EcKey {
            kid: kid.to_owned(),
            pem,
            jwk,
        }
    }

    pub fn sign(&self, claims: &serde_json::Value) -> String {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        let key = jsonwebtoken::EncodingKey::from_ec_pem(self.pem.as_bytes()).unwrap();
        jsonwebtoken::encode(&header, claims, &key).unwrap()
    }
}

/// A JWKS document listing these keys.
pub fn jwks_document(keys: &[&EcKey]) -> String {
    serde_json::json!({ "keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() })
        .to_string()
}

/// An HS256 token signed with `secret`.
pub fn hs256(secret: &str, claims: &serde_json::Value) -> String {
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes());
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}
