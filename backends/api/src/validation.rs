//! Pydantic v2 validation errors, reproduced field by field, so that a FastAPI client gets
//! the same 422 `{"detail":[{"type","loc","msg","input","ctx"}]}` from this origin.

use serde::Serialize;

use crate::email;
use crate::json::Value;

/// One step of a `loc` path: `"body"`, a field name, or a character offset.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Loc {
    Key(String),
    Index(usize),
}

impl From<&str> for Loc {
    fn from(s: &str) -> Self {
        Loc::Key(s.to_owned())
    }
}

/// One entry of FastAPI's 422 `detail` list, with keys in pydantic's order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorItem {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub loc: Vec<Loc>,
    pub msg: String,
    pub input: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ctx: Option<Value>,
}

impl ErrorItem {
    pub fn new(kind: &'static str, loc: Vec<Loc>, msg: impl Into<String>, input: Value) -> Self {
        Self {
            kind,
            loc,
            msg: msg.into(),
            input,
            ctx: None,
        }
    }

    pub fn with_ctx(mut self, key: &str, value: Value) -> Self {
        self.ctx = Some(Value::Object(vec![(key.to_owned(), value)]));
        self
    }
}

/// What FastAPI hands to the model: nothing, a decoded JSON document, or (for a non-JSON
/// content type) the raw body text.
#[derive(Debug, Clone)]
pub enum BodyInput {
    Missing,
    Json(Value),
    Raw(String),
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// Walks a request body's fields in model order, collecting every error like pydantic does
/// (it never stops at the first one).
pub struct ModelValidator<'a> {
    /// The body: always a JSON object.
    input: &'a Value,
    errors: Vec<ErrorItem>,
}

impl<'a> ModelValidator<'a> {
    /// Fails with the model-level error when the body is absent or not a JSON object.
    pub fn new(body: &'a BodyInput) -> Result<Self, Vec<ErrorItem>> {
        match body {
            BodyInput::Missing => Err(vec![ErrorItem::new(
                "missing",
                vec!["body".into()],
                "Field required",
                Value::Null,
            )]),
            BodyInput::Json(v @ Value::Object(_)) => Ok(Self {
                input: v,
                errors: Vec::new(),
            }),
            BodyInput::Json(other) => Err(vec![not_a_model(other.clone())]),
            BodyInput::Raw(text) => Err(vec![not_a_model(Value::String(text.clone()))]),
        }
    }

    fn lookup(&self, name: &str) -> Option<&'a Value> {
        self.input.get(name)
    }

    fn loc(name: &str) -> Vec<Loc> {
        vec!["body".into(), name.into()]
    }

    fn missing(&mut self, name: &str) {
        self.errors.push(ErrorItem::new(
            "missing",
            Self::loc(name),
            "Field required",
            self.input.clone(),
        ));
    }

    /// `str = Field(min_length, max_length)`, required.
    pub fn string(&mut self, name: &str, min: Option<usize>, max: Option<usize>) -> Option<String> {
        match self.lookup(name) {
            None => {
                self.missing(name);
                None
            }
            Some(v) => self.check_string(name, v, min, max),
        }
    }

    /// `str | None = None`.
    pub fn optional_string(&mut self, name: &str) -> Option<String> {
        match self.lookup(name) {
            None | Some(Value::Null) => None,
            Some(v) => self.check_string(name, v, None, None),
        }
    }

    fn check_string(
        &mut self,
        name: &str,
        v: &Value,
        min: Option<usize>,
        max: Option<usize>,
    ) -> Option<String> {
        let Value::String(s) = v else {
            self.errors.push(ErrorItem::new(
                "string_type",
                Self::loc(name),
                "Input should be a valid string",
                v.clone(),
            ));
            return None;
        };
        let len = s.chars().count();
        // (type, bound, ctx key, limit) of the first length bound the string breaks.
        let too_short = min
            .filter(|m| len < *m)
            .map(|m| ("string_too_short", "at least", "min_length", m));
        let too_long = max
            .filter(|m| len > *m)
            .map(|m| ("string_too_long", "at most", "max_length", m));
        if let Some((kind, bound, ctx, limit)) = too_short.or(too_long) {
            self.errors.push(
                ErrorItem::new(
                    kind,
                    Self::loc(name),
                    format!(
                        "String should have {bound} {limit} character{}",
                        plural(limit)
                    ),
                    v.clone(),
                )
                .with_ctx(ctx, Value::Number(limit.to_string())),
            );
            return None;
        }
        Some(s.clone())
    }

    /// `EmailStr`: a string, then email-validator's checks; yields the normalised address.
    pub fn email(&mut self, name: &str) -> Option<String> {
        let raw = self.string(name, None, None)?;
        match email::validate(&raw) {
            Ok(normalized) => Some(normalized),
            Err(reason) => {
                self.errors.push(
                    ErrorItem::new(
                        "value_error",
                        Self::loc(name),
                        format!("value is not a valid email address: {reason}"),
                        Value::String(raw),
                    )
                    .with_ctx("reason", Value::String(reason)),
                );
                None
            }
        }
    }

    /// `dict = {}`: any JSON object, defaulting to empty.
    pub fn dict_or_empty(&mut self, name: &str) -> Value {
        match self.lookup(name) {
            None => Value::Object(Vec::new()),
            Some(v @ Value::Object(_)) => v.clone(),
            Some(v) => {
                self.errors.push(ErrorItem::new(
                    "dict_type",
                    Self::loc(name),
                    "Input should be a valid dictionary",
                    v.clone(),
                ));
                Value::Object(Vec::new())
            }
        }
    }

    /// Ends validation: `Err` with every collected error, or `Ok` when the model is valid.
    pub fn finish(self) -> Result<(), Vec<ErrorItem>> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(self.errors)
        }
    }
}

fn not_a_model(input: Value) -> ErrorItem {
    ErrorItem::new(
        "model_attributes_type",
        vec!["body".into()],
        "Input should be a valid dictionary or object to extract fields from",
        input,
    )
}

/// A `uuid.UUID` path parameter; pydantic-core uses the `uuid` crate, so its messages match.
pub fn path_uuid(name: &str, raw: &str) -> Result<uuid::Uuid, Vec<ErrorItem>> {
    uuid::Uuid::parse_str(raw).map_err(|e| {
        let error = e.to_string();
        vec![ErrorItem::new(
            "uuid_parsing",
            vec!["path".into(), name.into()],
            format!("Input should be a valid UUID, {error}"),
            Value::String(raw.to_owned()),
        )
        .with_ctx("error", Value::String(error))]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json;

    fn errors(body: &str) -> String {
        let input = BodyInput::Json(json::parse(body).unwrap());
        let mut v = match ModelValidator::new(&input) {
            Ok(v) => v,
            Err(e) => return serde_json::to_string(&e).unwrap(),
        };
        v.email("email");
        v.string("password", Some(8), Some(128));
        v.optional_string("full_name");
        serde_json::to_string(&v.finish().unwrap_err()).unwrap()
    }

    #[test]
    fn matches_pydantic_output() {
        assert_eq!(
            errors(r#"{"email":"x","password":"short","full_name":5}"#),
            r#"[{"type":"value_error","loc":["body","email"],"msg":"value is not a valid email address: An email address must have an @-sign.","input":"x","ctx":{"reason":"An email address must have an @-sign."}},{"type":"string_too_short","loc":["body","password"],"msg":"String should have at least 8 characters","input":"short","ctx":{"min_length":8}},{"type":"string_type","loc":["body","full_name"],"msg":"Input should be a valid string","input":5}]"#
        );
        assert_eq!(
            errors("{}"),
            r#"[{"type":"missing","loc":["body","email"],"msg":"Field required","input":{}},{"type":"missing","loc":["body","password"],"msg":"Field required","input":{}}]"#
        );
        assert_eq!(
            errors("[1]"),
            r#"[{"type":"model_attributes_type","loc":["body"],"msg":"Input should be a valid dictionary or object to extract fields from","input":[1]}]"#
        );
    }
}
