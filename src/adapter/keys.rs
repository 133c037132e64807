//! Keys for the authenticate phase: HS256 secrets from the Secret Store, and JWKS from the
//! issuer's backends cached across requests in the platform cache.

use std::time::Duration;

use fastly::cache::core::{self as cache, CacheKey};
use fastly::http::StatusCode;
use fastly::{Request, SecretStore};

use fastgate::auth::{Issuer, JwkKey, JwksCache, JwksError, KeySource};

use super::platform::secret;
use super::proxy::send_with_timeout;
use super::telemetry::log_event;

/// Time limit for one JWKS fetch attempt.
const JWKS_TIMEOUT: Duration = Duration::from_secs(5);

/// Keys for the auth phase: HS256 secrets from the Secret Store; JWKS from the issuer's
/// backends, cached across requests in the platform cache (every request is a fresh
/// Wasm instance). A stale set stands in while the source is down, up to `max_stale_s`;
/// an unknown `kid` forces a refetch at most once per `refresh_interval_s`.
pub struct PlatformKeys<'a> {
    pub secrets: Option<&'a SecretStore>,
    pub cache: &'a JwksCache,
    pub memo: Option<Vec<JwkKey>>,
}

impl KeySource for PlatformKeys<'_> {
    fn hs256_secret(&mut self, secret_name: &str) -> Option<Vec<u8>> {
        secret(self.secrets?, secret_name)
    }

    fn jwks(&mut self, issuer: &Issuer, refresh: bool) -> Result<Option<Vec<JwkKey>>, JwksError> {
        if refresh {
            let marker = CacheKey::from(format!("fastgate/jwks-refresh/v1/{}", issuer.iss));
            if matches!(cache::lookup(marker.clone()).execute(), Ok(Some(_))) {
                return Ok(None); // refreshed recently: the unknown kid stays unknown
            }
            let interval = Duration::from_secs(u64::from(self.cache.refresh_interval_s));
            let _ = cache::insert(marker, interval)
                .execute()
                .map(|b| b.finish());
            return Ok(self.fetch_and_store(issuer).ok());
        }
        if let Some(keys) = &self.memo {
            return Ok(Some(keys.clone()));
        }
        let key = jwks_key(issuer);
        let cached = match cache::lookup(key).execute() {
            Ok(Some(found)) if found.is_usable() => found
                .to_stream()
                .ok()
                .map(|body| (body.into_bytes(), found.is_stale())),
            _ => None,
        };
        let keys = match cached {
            Some((bytes, false)) => fastgate::auth::parse_jwks(&bytes)?,
            Some((bytes, true)) => match self.fetch_and_store(issuer) {
                Ok(fresh) => fresh,
                Err(e) => {
                    log_event("jwks_stale_in_use", &e.to_string());
                    fastgate::auth::parse_jwks(&bytes)?
                }
            },
            None => self.fetch_and_store(issuer)?,
        };
        self.memo = Some(keys.clone());
        Ok(Some(keys))
    }

    fn signature_known_good(&mut self, digest: &[u8; 32]) -> bool {
        matches!(
            cache::lookup(signature_key(digest)).execute(),
            Ok(Some(found)) if found.is_usable() && !found.is_stale()
        )
    }

    fn remember_good_signature(&mut self, digest: &[u8; 32], ttl_s: u64) {
        let _ = cache::insert(signature_key(digest), Duration::from_secs(ttl_s))
            .execute()
            .map(|body| body.finish());
    }
}

/// Where a good signature is remembered: the token's digest, never the token.
fn signature_key(digest: &[u8; 32]) -> CacheKey {
    CacheKey::from(format!(
        "fastgate/jwt-signature/v1/{}",
        fastgate::cache::key_hex(digest)
    ))
}

fn jwks_key(issuer: &Issuer) -> CacheKey {
    CacheKey::from(format!("fastgate/jwks/v1/{}", issuer.iss))
}

impl PlatformKeys<'_> {
    fn fetch_and_store(&mut self, issuer: &Issuer) -> Result<Vec<JwkKey>, JwksError> {
        let source = issuer
            .jwks
            .as_ref()
            .ok_or_else(|| JwksError("issuer has no JWKS source".into()))?;
        let mut last = String::from("no backend");
        for backend in &source.backends {
            let mut req = Request::get(format!("http://jwks.internal{}", source.path));
            req.set_pass(true);
            match send_with_timeout(req, backend, JWKS_TIMEOUT) {
                Ok(resp) if resp.get_status() == StatusCode::OK => {
                    let bytes = resp.into_body_bytes();
                    match fastgate::auth::parse_jwks(&bytes) {
                        Ok(keys) => {
                            self.store(issuer, &bytes);
                            log_event("jwks_fetched", backend);
                            self.memo = Some(keys.clone());
                            return Ok(keys);
                        }
                        Err(e) => last = format!("{backend}: {e}"),
                    }
                }
                Ok(resp) => last = format!("{backend}: status {}", resp.get_status()),
                Err(_) => last = format!("{backend}: unreachable"),
            }
        }
        log_event("jwks_fetch_failed", &last);
        Err(JwksError(last))
    }

    fn store(&self, issuer: &Issuer, bytes: &[u8]) {
        let ttl = Duration::from_secs(u64::from(self.cache.ttl_s));
        let stale = Duration::from_secs(u64::from(self.cache.max_stale_s));
        if let Ok(mut body) = cache::insert(jwks_key(issuer), ttl)
            .stale_while_revalidate(stale)
            .known_length(bytes.len() as u64)
            .execute()
        {
            use std::io::Write;
            let _ = body.write_all(bytes);
            let _ = body.finish();
        }
    }
}
