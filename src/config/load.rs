//! Choosing and building the config in force for one request, and the config's hash:
//! FNV-1a 64 of the config file's bytes as written, so the edge (`Fastgate-Config`) and
//! `cargo xtask config check FILE` report the same hash for the same file. The embedded
//! config's hash is taken at compile time over `config/default.json` as written (not over
//! the compact copy the binary parses); an override's costs one pass over its bytes.

use super::model::{Config, ConfigFile};
use super::{ConfigError, DEFAULT_FILE, EMBEDDED};
use crate::flags;
use crate::route::{self, Route};

/// Where the active config came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Embedded,
    Override,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Embedded => "embedded",
            Source::Override => "override",
        }
    }
}

/// The config in force for a request, and why.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub source: Source,
    /// Set when an override existed but was rejected; the adapter logs it.
    pub rejected_override: Option<ConfigError>,
    /// Set when a flags override existed but was rejected.
    pub rejected_flags: Option<ConfigError>,
}

/// Chooses the config: a valid override wins; an invalid one is reported and the embedded
/// default is used instead, so a bad push degrades to "no change", never to errors.
///
/// `flags_json` (the Config Store's `flags` entry) then overrides individual flags, all or
/// nothing, so ops can flip a flag without pushing a whole config.
pub fn load(override_json: Option<&str>, flags_json: Option<&str>) -> Result<Loaded, ConfigError> {
    let mut rejected_override = None;
    let mut chosen = None;
    if let Some(json) = override_json.filter(|j| !j.trim().is_empty()) {
        match Config::parse(json) {
            Ok(config) => chosen = Some((config, Source::Override)),
            Err(e) => rejected_override = Some(e),
        }
    }
    let (mut config, source) = match chosen {
        Some(c) => c,
        None => (Config::embedded()?, Source::Embedded),
    };
    let rejected_flags = flags_json.and_then(|json| {
        flags::apply_overrides(&mut config.flags, json)
            .err()
            .map(ConfigError::from)
    });
    Ok(Loaded {
        config,
        source,
        rejected_override,
        rejected_flags,
    })
}

/// The embedded config's hash, computed at compile time.
const EMBEDDED_HASH: u64 = hash(DEFAULT_FILE);

impl Config {
    /// Parses and validates a JSON config, however it is formatted.
    pub fn parse(json: &str) -> Result<Self, ConfigError> {
        let file = read(json)?;
        let routes = route::compile_table(&file.routes)?;
        file.validate(&routes)?;
        file.compile(routes, hex(hash(json.as_bytes())))
    }

    /// The embedded default, parsed without re-running the cross-field validation: the
    /// text is fixed at build time and `embedded_default_passes_full_validation` checks
    /// exactly that text, so per request only parsing and route compilation remain (which
    /// still fail loudly, naming the field). An override from the Config Store is always
    /// validated in full ([`load`]).
    pub fn embedded() -> Result<Self, ConfigError> {
        let file = read(EMBEDDED)?;
        let routes = route::compile_table(&file.routes)?;
        file.compile(routes, hex(EMBEDDED_HASH))
    }
}

fn read(json: &str) -> Result<ConfigFile, ConfigError> {
    serde_json::from_str(json).map_err(|e| ConfigError::Syntax(e.to_string()))
}

impl ConfigFile {
    /// Moves the compiled route table and the rest into the [`Config`].
    fn compile(self, routes: Vec<Route>, hash: String) -> Result<Config, ConfigError> {
        self.limits.validate().map_err(|e| e.under("limits"))?;
        let static_policy = self.static_files.compile().map_err(|e| e.under("static"))?;
        Ok(Config {
            version: self.version,
            hash,
            backends: self.backends,
            geo: self.geo,
            routes,
            failover: self.failover,
            auth: self.auth,
            flags: self.flags,
            cors: self.cors,
            rate_limiter: self.rate_limiter,
            cache: self.cache,
            log_endpoint: self.log_endpoint,
            limits: self.limits,
            static_policy,
        })
    }
}

/// FNV-1a 64: a cheap fingerprint of the bytes, not a security boundary (nothing trusts it).
const fn hash(bytes: &[u8]) -> u64 {
    let (mut h, mut i) = (0xcbf2_9ce4_8422_2325_u64, 0);
    while i < bytes.len() {
        h ^= bytes[i] as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    h
}

fn hex(hash: u64) -> String {
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flags::FlagSpec;

    /// The file as written, pretty-printed as it is in the repository.
    const FILE: &str = include_str!("../../config/default.json");

    #[test]
    fn embedded_default_passes_full_validation() {
        let full = Config::parse(EMBEDDED).expect("embedded config must validate");
        let fast = Config::embedded().unwrap();
        // The embedded config's hash is the file's as written (what ops check and push).
        assert_eq!(Config::parse(FILE).unwrap().hash, fast.hash);
        assert_eq!(full.routes.len(), fast.routes.len());
        // The minified text is the file's content.
        let file: serde_json::Value = serde_json::from_str(FILE).unwrap();
        assert_eq!(
            file,
            serde_json::from_str::<serde_json::Value>(EMBEDDED).unwrap()
        );
    }

    #[test]
    fn embedded_default_is_valid_and_has_the_three_origins() {
        let c = Config::embedded().expect("embedded config must validate");
        let names: Vec<_> = c.backends.keys().map(String::as_str).collect();
        assert_eq!(names, ["origin_ap", "origin_eu", "origin_us"]);
        assert!(!c.routes.is_empty());
    }

    #[test]
    fn one_hash_for_one_file() {
        // The embedded text is the file minified; its hash is the file's as written.
        let file: serde_json::Value = serde_json::from_str(FILE).unwrap();
        assert!(EMBEDDED.len() < FILE.len() && !EMBEDDED.contains('\n'));
        assert_eq!(
            file,
            serde_json::from_str::<serde_json::Value>(EMBEDDED).unwrap()
        );
        assert_eq!(EMBEDDED_HASH, hash(FILE.as_bytes()));
        // The file as written (what `cargo xtask config check` reads) hashes as embedded.
        let embedded = Config::embedded().unwrap().hash;
        assert_eq!(Config::parse(FILE).unwrap().hash, embedded);
        assert_eq!(embedded.len(), 16);
        // An override hashes as the file it was pushed from, byte for byte.
        let mut v = file;
        v["version"] = "ops-2".into();
        let pretty_text = serde_json::to_string_pretty(&v).unwrap();
        let pretty = load(Some(&pretty_text), None).unwrap();
        assert_eq!(pretty.source, Source::Override);
        assert_eq!(
            Config::parse(&pretty_text).unwrap().hash,
            pretty.config.hash
        );
        assert_ne!(pretty.config.hash, embedded);
    }

    #[test]
    fn an_invalid_override_falls_back_to_the_embedded_config() {
        let loaded = load(Some(r#"{"version":"x"}"#), None).unwrap();
        assert_eq!(loaded.source, Source::Embedded);
        assert!(loaded
            .rejected_override
            .unwrap()
            .to_string()
            .contains("missing field"));
        let mut v: serde_json::Value = serde_json::from_str(EMBEDDED).unwrap();
        v["version"] = "ops-2".into();
        let loaded = load(Some(&v.to_string()), None).unwrap();
        assert_eq!(loaded.source, Source::Override);
        assert_eq!(loaded.config.version, "ops-2");
        assert_ne!(loaded.config.hash, Config::embedded().unwrap().hash);
        assert_eq!(load(None, None).unwrap().source, Source::Embedded);
        let flipped = load(None, Some(r#"{"new_schema": {"enabled": true}}"#)).unwrap();
        assert_eq!(flipped.config.flags["new_schema"], FlagSpec::Switch(true));
        let bad = load(None, Some(r#"{"new_shcema": {"enabled": true}}"#)).unwrap();
        assert!(bad
            .rejected_flags
            .unwrap()
            .to_string()
            .contains("flags.new_shcema"));
    }

    #[test]
    fn malformed_json_is_a_syntax_error() {
        assert!(matches!(
            Config::parse("{not json"),
            Err(ConfigError::Syntax(_))
        ));
    }
}
