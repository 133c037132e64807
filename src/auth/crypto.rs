//! The signature checks behind `jsonwebtoken`: a verify-only `CryptoProvider` with exactly
//! the algorithms the auth policy accepts (HS256, ES256, RS256).
//!
//! The crate's own `rust_crypto` provider links a signer and a verifier for every JWS
//! algorithm: RSA private-key arithmetic, P-384, Ed25519, RSASSA-PSS. The edge only ever
//! verifies, and only three algorithms, so the Wasm carries none of the rest (every byte is
//! cold-start time). Natively (tests, benches, xtask) signing is delegated to `rust_crypto`
//! so fixtures can mint tokens; verification is this module's on every target, so the
//! tests exercise the code the edge runs. An algorithm outside the three has no verifier
//! here: pinned twice, by the policy and by what is linked at all.

use hmac::{Hmac, Mac};
use jsonwebtoken::crypto::{CryptoProvider, JwkUtils, JwtSigner, JwtVerifier};
use jsonwebtoken::errors::{Error, ErrorKind};
use jsonwebtoken::jwk::ThumbprintHash;
use jsonwebtoken::signature::{self, Verifier};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, DecodingKeyKind, EncodingKey};
use p256::ecdsa::{Signature as P256Signature, VerifyingKey as P256Key};
use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::{BigUint, Pkcs1v15Sign, RsaPublicKey};
use sha2::{Digest, Sha256, Sha384, Sha512};

static PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: signer,
    verifier_factory: verifier,
    jwk_utils: JwkUtils {
        extract_rsa_public_key_components: |_| {
            Err(ErrorKind::InvalidRsaKey("private keys are not read at the edge".into()).into())
        },
        extract_ec_public_key_coordinates: |_, _| Err(ErrorKind::InvalidEcdsaKey.into()),
        compute_digest: thumbprint_digest,
    },
};

/// Makes this the process's provider. Idempotent; if another was installed first (a native
/// process that signed before it verified), that one stays, and the policy's algorithm pin
/// still holds.
pub(crate) fn install() {
    let _ = PROVIDER.install_default();
}

fn verifier(alg: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>, Error> {
    match (alg, key.family()) {
        (Algorithm::HS256, AlgorithmFamily::Hmac) => {
            let mac = Hmac::<Sha256>::new_from_slice(key.try_get_hmac_secret()?)
                .map_err(|_| ErrorKind::InvalidKeyFormat)?;
            Ok(Box::new(Hs256(mac)))
        }
        (Algorithm::ES256, AlgorithmFamily::Ec) => {
            let key =
                P256Key::from_sec1_bytes(key.as_bytes()).map_err(|_| ErrorKind::InvalidEcdsaKey)?;
            Ok(Box::new(Es256(key)))
        }
        (Algorithm::RS256, AlgorithmFamily::Rsa) => {
            let key = match key.kind() {
                DecodingKeyKind::SecretOrDer(der) => RsaPublicKey::from_pkcs1_der(der)
                    .map_err(|e| ErrorKind::InvalidRsaKey(e.to_string()))?,
                DecodingKeyKind::RsaModulusExponent { n, e } => {
                    RsaPublicKey::new(BigUint::from_bytes_be(n), BigUint::from_bytes_be(e))
                        .map_err(|e| ErrorKind::InvalidRsaKey(e.to_string()))?
                }
            };
            Ok(Box::new(Rs256(key)))
        }
        _ => Err(ErrorKind::InvalidAlgorithm.into()),
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn signer(alg: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>, Error> {
    (jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.signer_factory)(alg, key)
}

#[cfg(target_arch = "wasm32")]
fn signer(_: &Algorithm, _: &EncodingKey) -> Result<Box<dyn JwtSigner>, Error> {
    Err(ErrorKind::InvalidAlgorithm.into())
}

fn thumbprint_digest(data: &[u8], hash: ThumbprintHash) -> Vec<u8> {
    match hash {
        ThumbprintHash::SHA256 => Sha256::digest(data).to_vec(),
        ThumbprintHash::SHA384 => Sha384::digest(data).to_vec(),
        ThumbprintHash::SHA512 => Sha512::digest(data).to_vec(),
    }
}

/// HMAC with SHA-256; the tag is compared in constant time (`verify_slice`).
struct Hs256(Hmac<Sha256>);

impl Verifier<Vec<u8>> for Hs256 {
    fn verify(&self, msg: &[u8], tag: &Vec<u8>) -> Result<(), signature::Error> {
        let mut mac = self.0.clone();
        mac.update(msg);
        mac.verify_slice(tag).map_err(|_| signature::Error::new())
    }
}

impl JwtVerifier for Hs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::HS256
    }
}

/// ECDSA P-256 with SHA-256; the JWS signature is the raw `r || s` (64 bytes).
struct Es256(P256Key);

impl Verifier<Vec<u8>> for Es256 {
    fn verify(&self, msg: &[u8], sig: &Vec<u8>) -> Result<(), signature::Error> {
        let sig = P256Signature::from_slice(sig)?;
        self.0.verify(msg, &sig)
    }
}

impl JwtVerifier for Es256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::ES256
    }
}

/// RSASSA-PKCS1-v1_5 with SHA-256. `RsaPublicKey::new` bounds the modulus (≤ 4096 bits)
/// and the exponent, so a hostile JWKS cannot make one check arbitrarily slow.
struct Rs256(RsaPublicKey);

impl Verifier<Vec<u8>> for Rs256 {
    fn verify(&self, msg: &[u8], sig: &Vec<u8>) -> Result<(), signature::Error> {
        let digest = Sha256::digest(msg);
        self.0
            .verify(Pkcs1v15Sign::new::<Sha256>(), &digest, sig)
            .map_err(signature::Error::from_source)
    }
}

impl JwtVerifier for Rs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::RS256
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::fixtures::{claims, ec_key, es, hs, SECRET};
    use jsonwebtoken::{encode, EncodingKey, Header};
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::traits::PublicKeyParts;

    /// The signing input and the signature bytes of a compact JWS.
    fn split(token: &str) -> (&str, Vec<u8>) {
        use base64::Engine;
        let (input, sig) = token.rsplit_once('.').unwrap();
        let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(sig)
            .unwrap();
        (input, sig)
    }

    /// This provider's own verifier (not whichever provider the test process installed).
    fn check(alg: Algorithm, key: &DecodingKey, token: &str) -> bool {
        let (input, sig) = split(token);
        let verifier = verifier(&alg, key).unwrap();
        verifier.verify(input.as_bytes(), &sig).is_ok()
    }

    fn ec_decoding(key: &crate::auth::fixtures::EcKey) -> DecodingKey {
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(key.jwk.clone()).unwrap();
        DecodingKey::from_jwk(&jwk).unwrap()
    }

    fn tampered(token: &str) -> String {
        let (rest, sig) = token.rsplit_once('.').unwrap();
        let flip = if sig.starts_with('A') { "B" } else { "A" };
        format!("{rest}.{flip}{}", &sig[1..])
    }

    #[test]
    fn hs256_verifies_and_refuses_a_forgery() {
        let token = hs(&claims());
        let key = DecodingKey::from_secret(SECRET);
        assert!(check(Algorithm::HS256, &key, &token));
        assert!(!check(Algorithm::HS256, &key, &tampered(&token)));
        assert!(!check(
            Algorithm::HS256,
            &DecodingKey::from_secret(b"other"),
            &token
        ));
    }

    #[test]
    fn es256_verifies_and_refuses_a_forgery() {
        let key = ec_key("k1");
        let token = es(&key, "k1", &claims());
        let decoding = ec_decoding(&key);
        assert!(check(Algorithm::ES256, &decoding, &token));
        assert!(!check(Algorithm::ES256, &decoding, &tampered(&token)));
    }

    #[test]
    fn rs256_verifies_and_refuses_a_forgery() {
        let private = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 2048).unwrap();
        let der = private.to_pkcs1_der().unwrap();
        let token = encode(
            &Header::new(Algorithm::RS256),
            &claims(),
            &EncodingKey::from_rsa_der(der.as_bytes()),
        )
        .unwrap();
        let public = private.to_public_key();
        let key = DecodingKey::from_rsa_raw_components(
            &public.n().to_bytes_be(),
            &public.e().to_bytes_be(),
        );
        assert!(check(Algorithm::RS256, &key, &token));
        assert!(!check(Algorithm::RS256, &key, &tampered(&token)));
    }

    #[test]
    fn only_the_three_algorithms_have_a_verifier() {
        let hmac = DecodingKey::from_secret(SECRET);
        for alg in [
            Algorithm::HS384,
            Algorithm::HS512,
            Algorithm::ES384,
            Algorithm::PS256,
        ] {
            assert!(verifier(&alg, &hmac).is_err(), "{alg:?}");
        }
        // A key of the wrong family for the algorithm has none either (no HS256-with-a-
        // public-key confusion).
        let key = ec_key("k1");
        let ec = ec_decoding(&key);
        assert!(verifier(&Algorithm::HS256, &ec).is_err());
        assert!(verifier(&Algorithm::RS256, &ec).is_err());
        assert!(verifier(&Algorithm::ES256, &hmac).is_err());
    }
}
