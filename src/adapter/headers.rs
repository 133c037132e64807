//! The client's header fields, read from the platform once per request.
//!
//! The SDK reads a field from the host the first time each name is asked for, present or
//! not: every phase that asks for a field the client did not send (`Cache-Control`,
//! `Cookie`, `If-None-Match`, `Content-Length` on a GET…) costs a hostcall. The planning
//! phases read every field anyway, so the adapter keeps that one read and answers every
//! later question from guest memory. The snapshot is the client's request as sent; what
//! the edge changes before forwarding is applied to the [`Request`] itself.

use fastly::http::{HeaderName, HeaderValue};
use fastly::Request;

/// Every field line the client sent, in order.
pub(crate) struct ClientHeaders {
    fields: Vec<(HeaderName, HeaderValue)>,
}

impl ClientHeaders {
    /// One read of the client's fields: their names, then each present name's values.
    pub fn of(req: &Request) -> Self {
        let fields = req
            .get_headers()
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        ClientHeaders { fields }
    }

    /// Every field line, in the order sent.
    pub fn iter(&self) -> impl Iterator<Item = (&HeaderName, &HeaderValue)> {
        self.fields.iter().map(|(n, v)| (n, v))
    }

    /// Every value of `name` (any case), in the order sent.
    pub fn all<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s HeaderValue> + 's {
        self.fields
            .iter()
            .filter(move |(n, _)| n.as_str().eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// The first value of `name`, as sent (bytes that may not be text).
    pub fn value(&self, name: &str) -> Option<&HeaderValue> {
        self.fields
            .iter()
            .find(|(n, _)| n.as_str().eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// The first value of `name` when it is text: a value that is not UTF-8 reads as
    /// absent, as everywhere the edge reads a field as text.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.value(name)
            .and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
    }

    pub fn contains(&self, name: &str) -> bool {
        self.value(name).is_some()
    }
}
