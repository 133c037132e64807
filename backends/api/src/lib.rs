//! The origin as a library: `build` wires settings, database, keys, storage, the worker and
//! routes into an axum `Router`, so integration tests drive exactly what the binary serves.

pub mod auth;
pub mod batch;
pub mod chore;
pub mod clock;
pub mod config;
pub mod db;
pub mod edge_signature;
pub mod email;
pub mod error;
pub mod flags;
pub mod http;
pub mod json;
pub mod payloads;
pub mod pipeline;
pub mod repo;
pub mod search;
pub mod server;
pub mod telemetry;
pub mod text;
pub mod users;
pub mod validation;

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use axum::http::{HeaderName, HeaderValue};
use tokio::sync::Notify;

pub use config::Settings;

/// The header that names which origin answered; the edge's geo routing is observable by it.
pub const ORIGIN_HEADER: HeaderName = HeaderName::from_static("fastgate-origin");

/// Entries kept in each per-process memo (payloads, users rows) before it is cleared.
const CACHE_CAPACITY: usize = 10_000;

/// Shared state handed to every handler: one reference count per request, not one per
/// field, because axum clones the state into every call and each `Arc` clone is an atomic
/// write on a cache line both worker threads touch.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What every handler reads, behind [`AppState`].
pub struct Shared {
    pub name: Arc<str>,
    pub db: db::Db,
    pub tokens: Arc<auth::Tokens>,
    pub dummy_hash: Arc<str>,
    pub blobs: pipeline::storage::Blobs,
    pub new_schema_default: bool,
    /// Wakes this process's worker when it enqueues a job.
    pub wake: Arc<Notify>,
    /// The reference's `_kv`.
    pub payloads: payloads::PayloadCache,
    /// The `users` lookups, read through a per-process memo (see [`users`]).
    pub users: users::Users,
    /// The reference's `api_call` metric.
    pub api_calls: Arc<AtomicU64>,
    /// `Idempotency-Key` records, in the database (see [`http::idempotency`]).
    pub idempotency: http::idempotency::IdempotencyStore,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("--name must be a valid header value")]
    Name,
    #[error(transparent)]
    Db(#[from] db::DbError),
    #[error("JWT keys: {0}")]
    Keys(#[from] auth::keys::KeyError),
    #[error("object storage: {0}")]
    Storage(#[from] pipeline::storage::StorageError),
    #[error("password hashing: {0}")]
    Password(#[from] auth::password::PasswordError),
    /// The blocking task that loads (or generates) the JWT keys panicked or was cancelled.
    #[error("JWT key loading task: {0}")]
    KeysTask(#[source] tokio::task::JoinError),
    #[error(
        "{keys} is not set, but the edge signature is enforced ({enforce} defaults to true): \
         set {keys}=kid:secret[,kid:secret...] to the edge's shared key(s), or run a bare \
         origin with {enforce}=false (or --no-verify-edge-signature)",
        keys = edge_signature::KEYS_VAR,
        enforce = edge_signature::ENFORCE_VAR
    )]
    EdgeKeys,
}

/// The whole origin as one service: the request context around the liveness shortcut
/// around the router (edge-signature check, CORS, routes).
pub type App = telemetry::RequestContext<http::health_check::HealthCheck<axum::Router>>;

/// Opens the database (running migrations), loads keys, starts the worker (unless disabled)
/// and returns the ready-to-serve app.
pub async fn build(settings: Settings) -> Result<App, BuildError> {
    let origin = HeaderValue::from_str(&settings.name).map_err(|_| BuildError::Name)?;
    let edge = &settings.edge_signature;
    let verifier = match (edge.enforce, &edge.keys) {
        (true, Some(keys)) => Some(edge_signature::Verifier::new(keys.clone())),
        (true, None) => return Err(BuildError::EdgeKeys),
        (false, _) => None,
    };
    let state = shared_state(&settings).await?;
    if settings.worker_enabled {
        start_worker(&settings, &state);
    }
    if state.tokens.uses_key_ring() {
        tokio::spawn(auth::rotation::watch(
            state.tokens.clone(),
            auth::rotation::POLL,
        ));
    }
    // The used nonces live in the database, shared by every origin process on it.
    let gate = verifier.map(|verifier| {
        Arc::new(edge_signature::Gate {
            verifier,
            nonces: edge_signature::NonceStore::new(state.db.pool.clone()),
        })
    });
    let mut router = http::router(state, &settings.allowed_origins);
    match gate {
        // Outside every other layer (CORS included): nothing answers before the check.
        Some(gate) => {
            tracing::info!(kids = ?edge.keys.as_ref().map(|k| k.kids().collect::<Vec<_>>()),
                "edge signature enforced");
            router = router.layer(axum::middleware::from_fn_with_state(
                gate,
                edge_signature::enforce,
            ));
        }
        None => tracing::warn!(
            "edge signature NOT enforced ({}=false): Fastgate-Identity is ignored and any \
             client can reach this origin directly; for local runs only",
            edge_signature::ENFORCE_VAR
        ),
    }
    Ok(tower::ServiceBuilder::new()
        .layer(telemetry::RequestContextLayer::new(origin))
        .layer(http::health_check::HealthCheckLayer)
        .service(router))
}

/// Opens the database (running migrations), loads the JWT keys and object storage, and
/// gathers what every handler reads.
async fn shared_state(settings: &Settings) -> Result<AppState, BuildError> {
    let db = db::Db::connect(settings).await?;
    let tokens = {
        let jwt = settings.jwt.clone();
        tokio::task::spawn_blocking(move || auth::Tokens::new(jwt))
            .await
            .map_err(BuildError::KeysTask)??
    };
    let blobs =
        pipeline::storage::Blobs::open(&settings.data_dir, settings.object_store_url.as_deref())?;
    Ok(AppState(Arc::new(Shared {
        name: Arc::from(settings.name.as_str()),
        db: db.clone(),
        idempotency: http::idempotency::IdempotencyStore::new(
            &db,
            settings.idempotency_ttl,
            &settings.name,
        ),
        tokens: Arc::new(tokens),
        dummy_hash: auth::password::dummy_hash().await?,
        blobs,
        new_schema_default: settings.new_schema_default,
        wake: Arc::new(Notify::new()),
        payloads: payloads::PayloadCache::new(CACHE_CAPACITY),
        users: users::Users::new(db, CACHE_CAPACITY),
        api_calls: Arc::new(AtomicU64::new(0)),
    })))
}

/// Spawns this process's upload worker, woken by the handlers that enqueue jobs.
fn start_worker(settings: &Settings, state: &AppState) {
    let worker = pipeline::worker::Worker {
        db: state.db.clone(),
        blobs: state.blobs.clone(),
        owner: format!(
            "{}-{}-{}",
            settings.name,
            std::process::id(),
            uuid::Uuid::new_v4()
        ),
        lease: settings.job_lease,
        poll: settings.worker_poll,
        wake: state.wake.clone(),
    };
    tokio::spawn(worker.run());
}

/// Resolves on Ctrl-C or SIGTERM so in-flight requests finish before exit.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
