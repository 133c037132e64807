//! Settings: the CLI flags the process was started with plus the environment variables the
//! reference app reads (`JWT_SECRET`, `FEATURE_NEW_SCHEMA`, `ALLOWED_ORIGINS`) and the port's
//! own knobs. Read once at start so a bad value fails the boot, not a request.

use std::path::PathBuf;
use std::time::Duration;

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
        let jwt = JwtSettings {
            signing,
            accept,
            secret: env("JWT_SECRET").unwrap_or_else(|| DEV_JWT_SECRET.to_owned()),
            issuer: env("JWT_ISSUER").unwrap_or_else(|| "fastgate-origin".to_owned()),
            audience: env("JWT_AUDIENCE").unwrap_or_else(|| "fastgate".to_owned()),
            ttl: Duration::from_secs(24 * 3600),
            keys_dir: env("JWT_KEYS_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| data_dir.join("jwt-keys")),
        };
        Ok(Self {
            name,
            database_url: database_url.filter(|u| !u.is_empty()),
            jwt,
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
            data_dir,
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
