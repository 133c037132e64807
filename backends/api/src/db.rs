//! Database access through `sqlx::Any`, so every query is written once for both engines.
//! SQLite (WAL, one file shared by every origin process) is the embedded default; a
//! `postgres://` `DATABASE_URL` selects PostgreSQL. Queries use `$n` placeholders, which
//! both drivers understand, and portable SQL (`ON CONFLICT`, `RETURNING`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, ConnectOptions, Executor};
use std::str::FromStr;

use crate::config::Settings;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("unsupported DATABASE_URL scheme (want sqlite:// or postgres://): {0}")]
    Scheme(String),
    #[error("preparing the data directory {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

#[derive(Clone, Debug)]
pub struct Db {
    pub pool: AnyPool,
    pub engine: Engine,
    /// Group-commit writer for `items` (see [`crate::batch`]).
    pub items: crate::batch::ItemWriter,
}

impl Db {
    /// Connects and brings the schema up to date; safe when several processes start together.
    pub async fn connect(settings: &Settings) -> Result<Self, DbError> {
        sqlx::any::install_default_drivers();
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| DbError::Io { path, source }
        };
        let url = match &settings.database_url {
            Some(url) => url.clone(),
            None => {
                std::fs::create_dir_all(&settings.data_dir).map_err(io(&settings.data_dir))?;
                format!(
                    "sqlite://{}/fastgate.db?mode=rwc",
                    settings.data_dir.display()
                )
            }
        };
        let engine = if url.starts_with("sqlite:") {
            Engine::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Engine::Postgres
        } else {
            return Err(DbError::Scheme(
                url.split(':').next().unwrap_or_default().to_owned(),
            ));
        };
        let options = AnyConnectOptions::from_str(&url)?.disable_statement_logging();
        let pool = AnyPoolOptions::new()
            .max_connections(if engine == Engine::Sqlite { 8 } else { 16 })
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if engine == Engine::Sqlite {
                        // busy_timeout first: switching to WAL needs a lock another process may hold.
                        conn.execute("PRAGMA busy_timeout = 10000").await?;
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        let items = crate::batch::ItemWriter::spawn(pool.clone());
        let db = Self {
            pool,
            engine,
            items,
        };
        let lock = match engine {
            Engine::Sqlite => Some(sqlite_lock_path(&url, &settings.data_dir)),
            Engine::Postgres => None,
        };
        db.migrate(lock.as_deref()).await?;
        Ok(db)
    }

    /// Runs migrations. SQLite has no advisory lock, so origins starting together serialise
    /// on a lock file beside the database; PostgreSQL's migrator takes `pg_advisory_lock`.
    /// A lost race that still fails (e.g. `SQLITE_BUSY`) is retried: applied steps are skipped.
    async fn migrate(&self, lock_path: Option<&Path>) -> Result<(), DbError> {
        let _guard = match lock_path {
            Some(path) => Some(lock_file(path.to_path_buf()).await?),
            None => None,
        };
        let migrator = match self.engine {
            Engine::Sqlite => &SQLITE_MIGRATIONS,
            Engine::Postgres => &POSTGRES_MIGRATIONS,
        };
        let mut attempt = 0;
        loop {
            match migrator.run(&self.pool).await {
                Ok(()) => return Ok(()),
                Err(e) if attempt < 5 => {
                    attempt += 1;
                    tracing::warn!(error = %e, attempt, "migration attempt failed; retrying");
                    tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// True when a trivial query round-trips; backs `/ready`.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }
}

/// True when a statement failed only because of a UNIQUE constraint (e.g. a duplicate
/// email at sign-up).
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

fn sqlite_lock_path(url: &str, data_dir: &Path) -> PathBuf {
    let file = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:")
        .split('?')
        .next()
        .unwrap_or_default();
    if file.is_empty() || file == ":memory:" {
        data_dir.join(".fastgate-migrate.lock")
    } else {
        PathBuf::from(format!("{file}.migrate.lock"))
    }
}

/// Takes an exclusive advisory lock on `path`; released when the returned file drops.
async fn lock_file(path: PathBuf) -> Result<std::fs::File, DbError> {
    tokio::task::spawn_blocking(move || {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)?;
        file.lock()?;
        Ok::<_, std::io::Error>(file)
    })
    .await
    .map_err(|e| DbError::Io {
        path: PathBuf::from("migrate.lock"),
        source: std::io::Error::other(e),
    })?
    .map_err(|source| DbError::Io {
        path: PathBuf::from("migrate.lock"),
        source,
    })
}
