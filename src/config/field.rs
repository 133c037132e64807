//! The one error type every part of the config validates into. A config error must name the
//! field (`routes[3].cache.ttl_s`), so each part reports the field relative to itself and
//! its caller prefixes it with [`FieldError::under`] as the error bubbles up.

/// A config field that failed validation, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct FieldError {
    /// The field's path, e.g. `routes[3].cache.ttl_s`.
    pub field: String,
    pub reason: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The same error, seen from the parent: `prefix` joined to the field with `.` (or
    /// directly when the field is an index, `[2]`, or empty).
    pub fn under(self, prefix: &str) -> Self {
        let field = if self.field.is_empty() {
            prefix.to_owned()
        } else if self.field.starts_with('[') {
            format!("{prefix}{}", self.field)
        } else {
            format!("{prefix}.{}", self.field)
        };
        Self { field, ..self }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_compose() {
        let e = FieldError::new("ttl_s", "too long")
            .under("cache")
            .under("routes[3]");
        assert_eq!(e.field, "routes[3].cache.ttl_s");
        assert_eq!(
            FieldError::new("[1]", "x").under("origins").field,
            "origins[1]"
        );
        assert_eq!(FieldError::new("", "x").under("vary").field, "vary");
        assert_eq!(e.to_string(), "routes[3].cache.ttl_s: too long");
    }
}
