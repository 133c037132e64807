//! `fastgate-api`: one origin process. Run several with different `--name`s to get the
//! named backends (`origin_us`, `origin_eu`, `origin_ap`) that the edge routes between.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

/// mimalloc instead of glibc malloc: the request path allocates and frees many small
/// buffers across two worker threads, where glibc's malloc/free showed up at ~8-10% of
/// the server's CPU under load.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(version, about = "fastgate origin backend")]
struct Cli {
    /// Backend name this process serves as; echoed in `Fastgate-Origin` on every response.
    #[arg(long, env = "FASTGATE_ORIGIN_NAME")]
    name: String,
    /// Address to listen on.
    #[arg(long, env = "FASTGATE_LISTEN", default_value = "127.0.0.1:7801")]
    listen: SocketAddr,
    /// Directory for the embedded SQLite database and local object storage.
    #[arg(long, env = "FASTGATE_DATA_DIR", default_value = "data")]
    data_dir: PathBuf,
    /// Database URL; defaults to `sqlite://<data-dir>/fastgate.db` (WAL, shared by all origins).
    #[arg(long, env = "DATABASE_URL")]
    database_url: Option<String>,
    /// Serve without checking the edge's signed identity (a bare origin run; local only).
    /// Same as `FASTGATE_VERIFY_EDGE_SIGNATURE=false`. With verification on (the default),
    /// `FASTGATE_IDENTITY_KEYS=kid:secret[,kid:secret...]` must be set.
    #[arg(long)]
    no_verify_edge_signature: bool,
    /// Worker threads, each running its own single-threaded runtime (default: one per core).
    #[arg(long, env = "FASTGATE_WORKERS")]
    workers: Option<usize>,
}

fn main() -> anyhow::Result<()> {
    fastgate_api::telemetry::init();
    let cli = Cli::parse();
    let no_verify = cli.no_verify_edge_signature;
    let settings =
        fastgate_api::Settings::from_lookup(cli.name, cli.data_dir, cli.database_url, |k| {
            if no_verify && k == fastgate_api::edge_signature::ENFORCE_VAR {
                return Some("false".to_owned());
            }
            std::env::var(k).ok()
        })?;
    let workers = cli.workers.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    fastgate_api::server::run(settings, cli.listen, workers)?;
    Ok(())
}
