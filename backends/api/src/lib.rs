//! The origin as a library: `build` wires settings, database and routes into an axum
//! `Router`, so integration tests drive exactly what the binary serves.

pub mod db;
pub mod routes;
pub mod telemetry;

use std::path::PathBuf;

use axum::http::{HeaderName, HeaderValue};
use tower_http::set_header::SetResponseHeaderLayer;

/// The header that names which origin answered; the edge's geo routing is observable by it.
pub const ORIGIN_HEADER: HeaderName = HeaderName::from_static("fastgate-origin");

/// Everything the origin needs to start, resolved from CLI flags and the environment.
#[derive(Debug, Clone)]
pub struct Settings {
    pub name: String,
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
}

/// Shared state handed to every handler.
#[derive(Clone)]
pub struct AppState {
    pub name: String,
    pub db: db::Db,
}

/// Opens the database (running migrations) and returns the ready-to-serve router.
pub async fn build(settings: Settings) -> anyhow::Result<axum::Router> {
    let origin = HeaderValue::from_str(&settings.name)
        .map_err(|_| anyhow::anyhow!("--name must be a valid header value"))?;
    let db = db::Db::connect(&settings).await?;
    let state = AppState {
        name: settings.name,
        db,
    };
    Ok(routes::router(state).layer(SetResponseHeaderLayer::overriding(ORIGIN_HEADER, origin)))
}

/// Resolves on Ctrl-C or SIGTERM so in-flight requests finish before exit.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
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
