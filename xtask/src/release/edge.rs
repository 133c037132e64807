//! The running edge's ops endpoint (protocol: `fastgate::release` `ops.rs`): how a
//! release reaches the store Viceroy holds in memory without restarting it, exactly as a
//! KV write reaches a POP in production.

use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use fastgate::release::OPS_PREFIX;
use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::StatusCode;

use super::kv::Kv;

/// The ops endpoint of one edge.
pub struct EdgeStore {
    base: String,
    key: Option<String>,
    client: Client,
}

/// One list answer.
#[derive(serde::Deserialize)]
struct ListPage {
    keys: Vec<String>,
    cursor: Option<String>,
}

impl EdgeStore {
    /// Connects to the edge at `base` (`http://127.0.0.1:7676`): `None` when nothing
    /// listens there, an error when something answers but not as an ops endpoint that
    /// takes `key`.
    pub fn connect(base: &str, key: Option<&str>) -> Result<Option<EdgeStore>> {
        let client = Client::builder()
            // The edge is local (or named explicitly): a proxy from the environment
            // would only get in the way.
            .no_proxy()
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(300))
            .build()
            .context("building the HTTP client")?;
        let store = EdgeStore {
            base: base.trim_end_matches('/').to_owned(),
            key: key.map(str::to_owned),
            client,
        };
        let probe = store.auth(store.client.get(store.list_url("releases/", None)));
        let response = match probe.send() {
            Ok(r) => r,
            Err(e) if e.is_connect() => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("{}: no answer", store.base)),
        };
        match response.status() {
            s if s.is_success() => Ok(Some(store)),
            StatusCode::NOT_FOUND => bail!(
                "{} has no release ops endpoint ({OPS_PREFIX} is 404): its Secret Store lacks \
                 `release_ops_key`. Restart `cargo xtask serve` (it adds the key), or stop \
                 it to change only the local copy",
                store.base
            ),
            StatusCode::UNAUTHORIZED => {
                Err(store.refusal("GET", OPS_PREFIX, response).context(format!(
                    "the edge wants its `release_ops_key` (read from .fastgate/secrets.json, or \
                     set {})",
                    super::OPS_KEY_ENV
                )))
            }
            _ => Err(store.refusal("GET", OPS_PREFIX, response)),
        }
    }

    fn auth(&self, request: RequestBuilder) -> RequestBuilder {
        match &self.key {
            Some(key) => request.bearer_auth(key),
            None => request,
        }
    }

    fn key_url(&self, key: &str) -> String {
        format!("{}{OPS_PREFIX}/{key}", self.base)
    }

    fn list_url(&self, prefix: &str, cursor: Option<&str>) -> String {
        let mut url = format!("{}{OPS_PREFIX}?prefix={prefix}", self.base);
        if let Some(cursor) = cursor {
            url.push_str("&cursor=");
            url.push_str(&query_value(cursor));
        }
        url
    }

    /// An error naming the request and carrying the edge's `detail` (problem+json), or
    /// the start of its body.
    fn refusal(&self, method: &str, key: &str, response: Response) -> anyhow::Error {
        let status = response.status();
        let body = response.text().unwrap_or_default();
        let detail = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("detail").and_then(|d| d.as_str()).map(str::to_owned))
            .unwrap_or_else(|| body.chars().take(300).collect());
        anyhow!(
            "{} refused {method} `{key}` ({status}): {detail}",
            self.base
        )
    }
}

/// A cursor as the query value the edge reads back verbatim: the edge does not
/// percent-decode, so only what would otherwise break the URL is escaped (a list cursor
/// is base64, which needs none).
fn query_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if c.is_ascii_graphic() && !matches!(c, '#' | '&' | '"' | '<' | '>' | '`') {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

impl Kv for EdgeStore {
    fn describe(&self) -> String {
        format!("the edge at {}", self.base)
    }

    fn list(&mut self, prefix: &str) -> Result<Vec<String>> {
        let mut keys = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let url = self.list_url(prefix, cursor.as_deref());
            let response = self.auth(self.client.get(&url)).send()?;
            if !response.status().is_success() {
                return Err(self.refusal("GET", &format!("?prefix={prefix}"), response));
            }
            let page: ListPage = response
                .json()
                .with_context(|| format!("{url}: not a list answer"))?;
            keys.extend(page.keys);
            match page.cursor {
                Some(next) if Some(&next) != cursor.as_ref() => cursor = Some(next),
                _ => return Ok(keys),
            }
        }
    }

    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>> {
        let response = self.auth(self.client.get(self.key_url(key))).send()?;
        match response.status() {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => Ok(Some(response.bytes()?.to_vec())),
            _ => Err(self.refusal("GET", key, response)),
        }
    }

    fn put_all(&mut self, entries: &[(String, Vec<u8>)]) -> Result<()> {
        for (key, bytes) in entries {
            let request = self.client.put(self.key_url(key)).body(bytes.clone());
            let response = self
                .auth(request)
                .send()
                .with_context(|| format!("{}: PUT `{key}`", self.base))?;
            if !response.status().is_success() {
                return Err(self.refusal("PUT", key, response));
            }
        }
        Ok(())
    }

    fn delete(&mut self, key: &str) -> Result<()> {
        let response = self.auth(self.client.delete(self.key_url(key))).send()?;
        match response.status() {
            s if s.is_success() || s == StatusCode::NOT_FOUND => Ok(()),
            _ => Err(self.refusal("DELETE", key, response)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_are_sent_back_as_received() {
        assert_eq!(query_value("ZmlsZXMvYWJj+/=="), "ZmlsZXMvYWJj+/==");
        assert_eq!(query_value("a%b"), "a%b");
        assert_eq!(query_value("a#b&c d"), "a%23b%26c%20d");
    }

    #[test]
    fn nothing_listening_is_no_edge() {
        let port = crate::stack::free_port().unwrap();
        let edge = EdgeStore::connect(&format!("http://127.0.0.1:{port}"), None).unwrap();
        assert!(edge.is_none());
    }
}
