//! Why a configuration was rejected: the one error [`super::load`] and
//! `cargo xtask config check` report. Every variant names the field at fault.

use super::FieldError;

/// Why a configuration was rejected.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("config is not valid JSON for the schema: {0}")]
    Syntax(String),
    #[error("`{field}` names unknown backend `{name}`")]
    UnknownBackend { field: String, name: String },
    #[error("`{field}` must list at least one backend")]
    EmptyBackendList { field: String },
    #[error("`{}` is invalid: {}", .0.field, .0.reason)]
    Invalid(#[from] FieldError),
}
