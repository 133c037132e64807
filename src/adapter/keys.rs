//! Keys for the authenticate phase: HS256 secrets from the Secret Store, an issuer's JWKS
//! cached across requests in the platform cache (shared by every instance on the POP;
//! see [`jwks_cache`] for how one request at a time fetches it), and the memory of good
//! asymmetric signatures.

mod jwks_cache;

use std::time::Duration;

use fastly::cache::core::{self as cache, CacheKey};

use fastgate::auth::{Issuer, JwkKey, JwksCache, JwksError, KeySource};

use self::jwks_cache::{JwksStore, KeySet};
use super::platform::secret;

/// Keys for the auth phase. A stale set stands in while one request refreshes it, up to
/// `max_stale_s`; an unknown `kid` forces a refetch at most once per `refresh_interval_s`.
pub struct PlatformKeys<'a> {
    settings: &'a JwksCache,
    /// The key set this request was given, and whose: a request verifies one token, so
    /// the set is read (and parsed) once, and its freshness is what a remembered
    /// signature may not outlive.
    memo: Option<(String, KeySet)>,
}

impl<'a> PlatformKeys<'a> {
    pub fn new(settings: &'a JwksCache) -> Self {
        PlatformKeys {
            settings,
            memo: None,
        }
    }

    fn memo_for(&self, issuer: &Issuer) -> Option<&KeySet> {
        self.memo
            .as_ref()
            .filter(|(iss, _)| *iss == issuer.iss)
            .map(|(_, set)| set)
    }

    fn keep(&mut self, issuer: &Issuer, set: KeySet) -> Vec<JwkKey> {
        let keys = set.keys.clone();
        self.memo = Some((issuer.iss.clone(), set));
        keys
    }
}

impl KeySource for PlatformKeys<'_> {
    fn hs256_secret(&mut self, secret_name: &str) -> Option<Vec<u8>> {
        secret(secret_name)
    }

    fn jwks(&mut self, issuer: &Issuer, refresh: bool) -> Result<Option<Vec<JwkKey>>, JwksError> {
        let store = JwksStore::new(issuer, self.settings);
        if refresh {
            let seen = self.memo_for(issuer).map(|set| set.generation.clone());
            let newer = store.refresh_for_unknown_kid(seen.as_deref());
            return Ok(newer.map(|set| self.keep(issuer, set)));
        }
        if let Some(set) = self.memo_for(issuer) {
            return Ok(Some(set.keys.clone()));
        }
        let set = store.current()?;
        Ok(Some(self.keep(issuer, set)))
    }

    fn jwks_fresh_for_s(&mut self, issuer: &Issuer) -> u64 {
        // No set seen (cannot happen after a signature check): vouch for nothing.
        self.memo_for(issuer).map_or(0, |set| set.fresh_for_s)
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
