//! Settings: the CLI flags the process was started with plus the environment variables the
//! reference app reads (`JWT_SECRET`, `FEATURE_NEW_SCHEMA`, `ALLOWED_ORIGINS`) and the port's
//! own knobs. Read once at start so a bad value fails the boot, not a request.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::edge_signature::{IdentityKeys, ENFORCE_VAR, KEYS_VAR};

/// Seconds a stored `Idempotency-Key` answer is kept and replayed.
pub const IDEMPOTENCY_TTL_VAR: &str = "FASTGATE_IDEMPOTENCY_TTL_S";

/// The reference's development secret; production sets `JWT_SECRET`.
pub const DEV_JWT_SECRET: &str = "dev-only-secret-change-me";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningAlg {
    Hs256,
    Es256,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{var}: {reason}")]
    Invalid { var: &'static str, reason: String },
}

#[derive(Debug, Clone)]
pub struct JwtSettings {
    /// Algorithm new tokens are signed with (`JWT_ALGORITHM`, default HS256).
    pub signing: SigningAlg,
    /// Algorithms accepted on verification (`JWT_ACCEPT`, default: the signing one).
    pub accept: Vec<SigningAlg>,
    pub secret: String,
    pub issuer: String,
    pub audience: String,
    pub ttl: Duration,
    /// Directory of ES256 PEM keys (`JWT_KEYS_DIR`, default `<data-dir>/jwt-keys`).
    pub keys_dir: PathBuf,
}

/// Verification of the edge's signed identity: the `edge_signature` module, described in
/// the README's "Identity to the origin".
#[derive(Debug, Clone)]
pub struct EdgeSignatureSettings {
    /// `FASTGATE_VERIFY_EDGE_SIGNATURE` (default `true`; `false` for a bare origin run,
    /// as does the `--no-verify-edge-signature` flag).
    pub enforce: bool,
    /// `FASTGATE_IDENTITY_KEYS=kid:secret[,kid:secret...]`; required while `enforce` is on
    /// (checked by `build`, so the process refuses to start without them).
    pub keys: Option<IdentityKeys>,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub name: String,
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    pub jwt: JwtSettings,
    /// `FEATURE_NEW_SCHEMA=true`: the v2 user shape when the edge sends no flag.
    pub new_schema_default: bool,
    pub allowed_origins: Vec<String>,
    /// `OBJECT_STORE_URL` (e.g. `s3://bucket` with the `s3` feature); default: a local dir.
    pub object_store_url: Option<String>,
    /// How long a claimed job stays owned before another worker may take it
    /// (`FASTGATE_JOB_LEASE_MS`).
    pub job_lease: Duration,
    /// Idle poll interval of the worker (`FASTGATE_WORKER_POLL_MS`).
    pub worker_poll: Duration,
    /// `FASTGATE_WORKER=0` runs an origin without a worker (tests of the crash path).
    pub worker_enabled: bool,
    pub edge_signature: EdgeSignatureSettings,
    /// How long a stored `Idempotency-Key` answer is replayed (`FASTGATE_IDEMPOTENCY_TTL_S`,
    /// default 24 h, at least 1 s): see [`crate::http::idempotency`].
    pub idempotency_ttl: Duration,
}

impl Settings {
    /// Settings for `name`/`data_dir`/`database_url`, everything else from the environment.
    pub fn from_env(
        name: String,
        data_dir: PathBuf,
        database_url: Option<String>,
    ) -> Result<Self, ConfigError> {
        Self::from_lookup(name, data_dir, database_url, |k| std::env::var(k).ok())
    }

    /// As `from_env`, with an injectable lookup so tests need not mutate the process env.
    pub fn from_lookup(
        name: String,
        data_dir: PathBuf,
        database_url: Option<String>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            name,
            database_url: database_url.filter(|u| !u.is_empty()),
            jwt: JwtSettings::from_lookup(&env, &data_dir)?,
            new_schema_default: env("FEATURE_NEW_SCHEMA").as_deref() == Some("true"),
            allowed_origins: env("ALLOWED_ORIGINS")
                .unwrap_or_else(|| "http://localhost:4321".to_owned())
                .split(',')
                .map(str::to_owned)
                .collect(),
            object_store_url: env("OBJECT_STORE_URL").filter(|u| !u.is_empty()),
            job_lease: millis(&env, "FASTGATE_JOB_LEASE_MS", 30_000)?,
            worker_poll: millis(&env, "FASTGATE_WORKER_POLL_MS", 500)?,
            worker_enabled: env("FASTGATE_WORKER").as_deref() != Some("0"),
            edge_signature: EdgeSignatureSettings::from_lookup(&env)?,
            idempotency_ttl: positive_secs(&env, IDEMPOTENCY_TTL_VAR, 24 * 3600)?,
            data_dir,
        })
    }
}

impl JwtSettings {
    /// The `JWT_*` variables; keys default to a directory under `data_dir`.
    fn from_lookup(
        env: &impl Fn(&str) -> Option<String>,
        data_dir: &Path,
    ) -> Result<Self, ConfigError> {
        let signing = match env("JWT_ALGORITHM") {
            Some(a) => parse_alg("JWT_ALGORITHM", &a)?,
            None => SigningAlg::Hs256,
        };
        let accept = match env("JWT_ACCEPT") {
            Some(list) => list
                .split(',')
                .filter(|s| !s.trim().is_empty())
                .map(|a| parse_alg("JWT_ACCEPT", a))
                .collect::<Result<Vec<_>, _>>()?,
            None => vec![signing],
        };
        Ok(Self {
            signing,
            accept,
            secret: env("JWT_SECRET").unwrap_or_else(|| DEV_JWT_SECRET.to_owned()),
            issuer: env("JWT_ISSUER").unwrap_or_else(|| "fastgate-origin".to_owned()),
            audience: env("JWT_AUDIENCE").unwrap_or_else(|| "fastgate".to_owned()),
            ttl: Duration::from_secs(24 * 3600),
            keys_dir: env("JWT_KEYS_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| data_dir.join("jwt-keys")),
        })
    }
}

impl EdgeSignatureSettings {
    /// The switch and the shared keys; whether keys are required is `build`'s call.
    fn from_lookup(env: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Ok(Self {
            enforce: match env(ENFORCE_VAR) {
                None => true,
                Some(v) => parse_switch(ENFORCE_VAR, &v)?,
            },
            keys: env(KEYS_VAR)
                .filter(|v| !v.trim().is_empty())
                .map(|v| IdentityKeys::parse(&v))
                .transpose()
                .map_err(|e| ConfigError::Invalid {
                    var: KEYS_VAR,
                    reason: e.to_string(),
                })?,
        })
    }
}

fn parse_alg(var: &'static str, s: &str) -> Result<SigningAlg, ConfigError> {
    match s.trim().to_ascii_uppercase().as_str() {
        "HS256" => Ok(SigningAlg::Hs256),
        "ES256" => Ok(SigningAlg::Es256),
        other => Err(ConfigError::Invalid {
            var,
            reason: format!("unsupported algorithm {other:?}"),
        }),
    }
}

fn parse_switch(var: &'static str, s: &str) -> Result<bool, ConfigError> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "on" | "yes" => Ok(true),
        "0" | "false" | "off" | "no" => Ok(false),
        other => Err(ConfigError::Invalid {
            var,
            reason: format!("expected true or false, got {other:?}"),
        }),
    }
}

fn millis(
    env: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    default: u64,
) -> Result<Duration, ConfigError> {
    match env(var) {
        None => Ok(Duration::from_millis(default)),
        Some(v) => v
            .trim()
            .parse::<u64>()
            .map(Duration::from_millis)
            .map_err(|e| ConfigError::Invalid {
                var,
                reason: e.to_string(),
            }),
    }
}

/// A whole number of seconds, at least one.
fn positive_secs(
    env: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    default: u64,
) -> Result<Duration, ConfigError> {
    let Some(v) = env(var) else {
        return Ok(Duration::from_secs(default));
    };
    match v.trim().parse::<u64>() {
        Ok(0) => Err(ConfigError::Invalid {
            var,
            reason: "must be at least 1".to_owned(),
        }),
        Ok(secs) => Ok(Duration::from_secs(secs)),
        Err(e) => Err(ConfigError::Invalid {
            var,
            reason: e.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        Settings::from_lookup("t".into(), PathBuf::from("d"), None, |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn edge_signature_switch_and_keys() {
        let s = load(&[]).unwrap().edge_signature;
        assert!(s.enforce && s.keys.is_none());
        let s = load(&[(ENFORCE_VAR, "false")]).unwrap().edge_signature;
        assert!(!s.enforce);
        let s = load(&[(KEYS_VAR, "a:x,b:y")]).unwrap().edge_signature;
        assert_eq!(s.keys.unwrap().kids().collect::<Vec<_>>(), ["a", "b"]);
        assert!(load(&[(ENFORCE_VAR, "maybe")]).is_err());
        let e = load(&[(KEYS_VAR, "a")]).unwrap_err().to_string();
        assert!(e.starts_with(KEYS_VAR), "{e}");
    }

    #[test]
    fn idempotency_ttl_defaults_to_a_day() {
        assert_eq!(
            load(&[]).unwrap().idempotency_ttl,
            Duration::from_secs(86_400)
        );
        let s = load(&[(IDEMPOTENCY_TTL_VAR, "60")]).unwrap();
        assert_eq!(s.idempotency_ttl, Duration::from_secs(60));
        for bad in ["0", "-1", "1h"] {
            let e = load(&[(IDEMPOTENCY_TTL_VAR, bad)]).unwrap_err().to_string();
            assert!(e.starts_with(IDEMPOTENCY_TTL_VAR), "{e}");
        }
    }
}
