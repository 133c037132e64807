//! The release store's ops endpoint (`fastgate::release` `ops.rs` has the protocol and why
//! it exists): what `cargo xtask release` writes through, so a switch under Viceroy is as
//! live as on Fastly. Answered before any routing; off (a plain 404) unless the Secret
//! Store holds `release_ops_key`.

use std::io::Read;

use fastly::http::StatusCode;
use fastly::kv_store::{KVStore, KVStoreError};
use fastly::{Request, Response};

use fastgate::problem::{Problem, ProblemKind};
use fastgate::release::{
    bearer, check_put, is_ops_path, parse_request, secret_matches, Manifest, OpsRefusal,
    OpsRequest, ReleaseError, StoreKey, KV_MAX_VALUE_BYTES, LIST_PAGE, OPS_KEY_SECRET, STORE,
};
use fastgate::request_id;

use super::headers::ClientHeaders;
use super::platform::{problem_response, secret};
use super::release;
use super::telemetry::log_event_once;

/// The answer when `req` is for the ops endpoint; `None` for every other request.
pub(crate) fn handle(
    req: &mut Request,
    headers: &ClientHeaders,
    uri: Option<&str>,
) -> Option<Response> {
    let (path, query) = fastgate::path::split_target(uri?);
    if !is_ops_path(path) {
        return None;
    }
    let id = request_id::generate();
    let refuse = |kind, detail: String| problem_response(&Problem::new(kind, detail, &id));
    let Some(key) = secret(OPS_KEY_SECRET) else {
        return Some(refuse(
            ProblemKind::NotFound,
            "no route matches this path".into(),
        ));
    };
    let presented = bearer(headers.value("authorization").map(|v| v.as_bytes()));
    if !presented.is_some_and(|p| secret_matches(p, &key)) {
        let resp = refuse(ProblemKind::Unauthorized, "the ops key is required".into());
        return Some(resp.with_header("www-authenticate", "Bearer realm=\"fastgate-ops\""));
    }
    let op = match parse_request(req.get_method_str(), path, query) {
        Ok(op) => op,
        Err(OpsRefusal::Method(m)) => {
            let p = Problem::method_not_allowed(&m, "GET, PUT, DELETE".into(), &id);
            return Some(problem_response(&p));
        }
        Err(e) => return Some(refuse(ProblemKind::BadRequest, e.to_string())),
    };
    let Ok(Some(store)) = KVStore::open(STORE) else {
        let detail = format!("the KV Store `{STORE}` is not linked to this service");
        return Some(refuse(ProblemKind::Unavailable, detail));
    };
    Some(run(&store, op, req, &id).unwrap_or_else(|e| refusal(&e, &id)))
}

/// One ops request against the store.
fn run(
    store: &KVStore,
    op: OpsRequest,
    req: &mut Request,
    id: &str,
) -> Result<Response, ReleaseError> {
    match op {
        OpsRequest::List { prefix, cursor } => list(store, &prefix, cursor.as_deref()),
        OpsRequest::Get(key) => match release::read(&key.as_key())? {
            Some(bytes) => Ok(Response::from_status(StatusCode::OK)
                .with_header("content-type", "application/octet-stream")
                .with_header("cache-control", "no-store")
                .with_body(bytes)),
            None => {
                let detail = format!("`{}` is not in the release store", key.as_key());
                Ok(problem_response(&Problem::new(
                    ProblemKind::NotFound,
                    detail,
                    id,
                )))
            }
        },
        OpsRequest::Put(key) => {
            let body = read_body(req)?;
            put(store, &key, body)?;
            Ok(Response::from_status(StatusCode::NO_CONTENT))
        }
        OpsRequest::Delete(key) => {
            refuse_deleting_active(&key)?;
            match store.delete(&key.as_key()) {
                Ok(()) | Err(KVStoreError::ItemNotFound) => {}
                Err(e) => return Err(ReleaseError::Store(e.to_string())),
            }
            Ok(Response::from_status(StatusCode::NO_CONTENT))
        }
    }
}

/// One page of keys under `prefix`.
fn list(store: &KVStore, prefix: &str, cursor: Option<&str>) -> Result<Response, ReleaseError> {
    let mut builder = store.build_list().limit(LIST_PAGE);
    if !prefix.is_empty() {
        builder = builder.prefix(prefix);
    }
    if let Some(cursor) = cursor {
        builder = builder.cursor(cursor);
    }
    let page = builder
        .execute()
        .map_err(|e| ReleaseError::Store(e.to_string()))?;
    let body = serde_json::json!({
        "keys": page.keys(),
        "cursor": page.next_cursor().filter(|c| !c.is_empty()),
    });
    Ok(Response::from_status(StatusCode::OK)
        .with_header("content-type", "application/json")
        .with_header("cache-control", "no-store")
        .with_body(body.to_string()))
}

/// The request body, refused past the KV Store's value limit.
fn read_body(req: &mut Request) -> Result<Vec<u8>, ReleaseError> {
    let mut body = Vec::new();
    req.take_body()
        .take(KV_MAX_VALUE_BYTES + 1)
        .read_to_end(&mut body)
        .map_err(|e| ReleaseError::Store(format!("reading the request body: {e}")))?;
    if body.len() as u64 > KV_MAX_VALUE_BYTES {
        return Err(ReleaseError::TooLarge {
            what: "the value".into(),
            size: body.len() as u64,
            limit: KV_MAX_VALUE_BYTES,
        });
    }
    Ok(body)
}

/// Stores `body` at `key` once it proved what it claims to be (see `check_put`), and what
/// needs the store: a manifest's references are stored and its name is new (or its
/// content the same), and the pointer's release passes its checks.
fn put(store: &KVStore, key: &StoreKey, body: Vec<u8>) -> Result<(), ReleaseError> {
    check_put(key, &body)?;
    let mut activated = None;
    match key {
        StoreKey::Config(_) => check_config(&body)?,
        StoreKey::Release(name) => check_manifest(name, &body)?,
        StoreKey::Active => {
            let name = fastgate::release::parse_active(&body)?;
            release::load(&name).inspect_err(|e| {
                let line = format!("release `{name}` refused: {e}");
                log_event_once("release_refused", &name, &line);
            })?;
            activated = Some(name);
        }
        StoreKey::File(_) => {}
    }
    store
        .insert(&key.as_key(), body)
        .map_err(|e| ReleaseError::Store(e.to_string()))?;
    if activated.is_some() {
        release::set_pointer(activated);
    }
    Ok(())
}

/// A config is stored only if it loads: the refusal (and its one log line) names the field.
fn check_config(body: &[u8]) -> Result<(), ReleaseError> {
    let text = std::str::from_utf8(body).unwrap_or("");
    fastgate::config::Config::parse(text)
        .map(drop)
        .map_err(|e| {
            let reason = e.to_string();
            log_event_once(
                "config_refused",
                "config",
                &format!("config refused: {reason}"),
            );
            ReleaseError::Config {
                release: "(being published)".into(),
                reason,
            }
        })
}

/// A manifest is stored once, after everything it refers to.
fn check_manifest(name: &str, body: &[u8]) -> Result<(), ReleaseError> {
    let key = fastgate::release::release_key(name);
    if let Some(existing) = release::read(&key)? {
        if existing != body {
            return Err(ReleaseError::Republished(name.to_owned()));
        }
    }
    let manifest = Manifest::parse(body)?;
    for reference in manifest.references() {
        if release::read(&reference)?.is_none() {
            return Err(ReleaseError::Missing(reference));
        }
    }
    Ok(())
}

/// The active release's manifest stays while the pointer names it.
fn refuse_deleting_active(key: &StoreKey) -> Result<(), ReleaseError> {
    let StoreKey::Release(name) = key else {
        return Ok(());
    };
    let active = release::read(fastgate::release::ACTIVE_KEY)?
        .and_then(|v| fastgate::release::parse_active(&v).ok());
    match active {
        Some(active) if active == *name => Err(ReleaseError::Active(name.clone())),
        _ => Ok(()),
    }
}

/// A refused ops request as problem+json whose detail names what is wrong.
fn refusal(e: &ReleaseError, id: &str) -> Response {
    let kind = match e {
        ReleaseError::Republished(_) | ReleaseError::Active(_) => ProblemKind::Conflict,
        ReleaseError::TooLarge { .. } => ProblemKind::ContentTooLarge,
        ReleaseError::Store(_) => ProblemKind::Unavailable,
        _ => ProblemKind::UnprocessableContent,
    };
    problem_response(&Problem::new(kind, e.to_string(), id))
}
