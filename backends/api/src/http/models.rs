//! Request and response bodies. Requests are validated by hand with pydantic's rules
//! (see `validation`); responses are structs so keys come out in the reference's order.

use serde::Serialize;
use utoipa::ToSchema;

/// Lives with the error type (it is FastAPI's error shape); re-exported here with the other
/// bodies for the OpenAPI `responses` lists.
pub use crate::error::DetailOut;
use crate::json::Value;
use crate::validation::{BodyInput, ErrorItem, ModelValidator};

#[derive(Debug, ToSchema)]
pub struct SignupIn {
    /// A valid email address (normalised: domain lower-cased).
    pub email: String,
    #[schema(min_length = 8, max_length = 128)]
    pub password: String,
    pub full_name: Option<String>,
}

impl SignupIn {
    pub fn validate(body: &BodyInput) -> Result<Self, Vec<ErrorItem>> {
        let mut v = ModelValidator::new(body)?;
        let email = v.email("email");
        let password = v.string("password", Some(8), Some(128));
        let full_name = v.optional_string("full_name");
        v.finish()?;
        Ok(Self {
            email: email.unwrap_or_default(),
            password: password.unwrap_or_default(),
            full_name,
        })
    }
}

#[derive(Debug, ToSchema)]
pub struct LoginIn {
    pub email: String,
    pub password: String,
}

impl LoginIn {
    pub fn validate(body: &BodyInput) -> Result<Self, Vec<ErrorItem>> {
        let mut v = ModelValidator::new(body)?;
        let email = v.email("email");
        let password = v.string("password", None, None);
        v.finish()?;
        Ok(Self {
            email: email.unwrap_or_default(),
            password: password.unwrap_or_default(),
        })
    }
}

#[derive(Debug, ToSchema)]
pub struct ProcessIn {
    #[schema(min_length = 1, max_length = 128)]
    pub id: String,
    #[schema(value_type = Object)]
    pub payload: Value,
}

impl ProcessIn {
    pub fn validate(body: &BodyInput) -> Result<Self, Vec<ErrorItem>> {
        let mut v = ModelValidator::new(body)?;
        let id = v.string("id", Some(1), Some(128));
        let payload = v.dict_or_empty("payload");
        v.finish()?;
        Ok(Self {
            id: id.unwrap_or_default(),
            payload,
        })
    }

    /// `model_dump_json()`: what the reference stores in `items`.
    pub fn dump_json(&self) -> String {
        Value::Object(vec![
            ("id".into(), Value::String(self.id.clone())),
            ("payload".into(), self.payload.clone()),
        ])
        .to_compact()
    }
}

#[derive(Debug, ToSchema)]
pub struct UploadIn {
    #[schema(min_length = 1)]
    pub content: String,
}

impl UploadIn {
    pub fn validate(body: &BodyInput) -> Result<Self, Vec<ErrorItem>> {
        let mut v = ModelValidator::new(body)?;
        let content = v.string("content", Some(1), None);
        v.finish()?;
        Ok(Self {
            content: content.unwrap_or_default(),
        })
    }
}

#[derive(Debug, ToSchema)]
pub struct QueryIn {
    #[schema(min_length = 1, max_length = 2000)]
    pub query: String,
}

impl QueryIn {
    pub fn validate(body: &BodyInput) -> Result<Self, Vec<ErrorItem>> {
        let mut v = ModelValidator::new(body)?;
        let query = v.string("query", Some(1), Some(2000));
        v.finish()?;
        Ok(Self {
            query: query.unwrap_or_default(),
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SignupOut {
    pub id: String,
    pub email: String,
    pub full_name: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenOut {
    pub access_token: String,
    pub token_type: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProfileOut {
    pub email: String,
    pub joined: String,
}

/// `/api/user/{id}` without the `new_schema` flag.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserV1 {
    pub id: String,
    pub email: String,
    pub full_name: Option<String>,
    pub joined: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Contact {
    pub email: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Name {
    pub first: String,
    pub last: String,
}

/// `/api/user/{id}` with the `new_schema` flag on.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserV2 {
    pub id: String,
    pub contact: Contact,
    pub name: Name,
    pub joined_at: String,
    pub schema: u8,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StatusOut {
    pub status: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UploadOut {
    pub status: &'static str,
    pub key: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SummaryOut {
    pub key: String,
    pub summary: String,
    pub created_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AnswerOut {
    pub answer: String,
    pub sources: usize,
}
