//! The gateway's typed configuration.
//!
//! An embedded default (`config/default.json`) makes `fastly compute serve` work out of the
//! box; ops may override it through a Config Store entry. Either way it goes through
//! [`Config::parse`], which rejects unknown fields and dangling backend names *at load*,
//! naming the offending field ([`FieldError`]), so a bad config never turns into a storm of
//! 500s. `model.rs` is the shape, `validate.rs` the cross-field checks, `load.rs` the
//! choice between embedded and override (and the config's hash), `canonical.rs` the
//! embedded copy's compact form, and `instance.rs` the compiled config an instance keeps
//! between the requests it serves.

mod canonical;
mod error;
mod field;
mod instance;
mod limits;
mod load;
mod model;
mod validate;

pub use crate::geo::GeoMap;
pub use error::ConfigError;
pub use field::FieldError;
pub use instance::{InstanceCache, RECHECK};
pub use limits::Limits;
pub use load::{load, Loaded, Source};
pub use model::{Backend, Config, Failover, Limiter};

/// `config/default.json` as written (only read at compile time).
const DEFAULT_FILE: &[u8] = include_bytes!("../../config/default.json");
const EMBEDDED_LEN: usize = canonical::len(DEFAULT_FILE);
const EMBEDDED_BYTES: &[u8; EMBEDDED_LEN] = &canonical::text(DEFAULT_FILE);

/// The configuration compiled into the Wasm binary: `config/default.json` minified at
/// compile time (parsing it is per-request work, and JSON parsing time grows with the bytes
/// scanned; see [`Config::embedded`]).
pub const EMBEDDED: &str = match std::str::from_utf8(EMBEDDED_BYTES) {
    Ok(text) => text,
    Err(_) => panic!("config/default.json is not UTF-8"),
};
