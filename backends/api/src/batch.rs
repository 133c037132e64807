//! Group commit for `POST /api/process`'s `items` inserts.
//!
//! Every insert is handed to one writer task per process. The task takes whatever inserts
//! are waiting (up to [`MAX_BATCH`]) and writes them with a single multi-row `INSERT`,
//! which the database commits as one transaction: one commit (one WAL append, one lock
//! round) for the whole batch instead of one per request. Each caller is answered only
//! after the statement holding its row has committed, so a 200 still means the row is
//! durable, exactly as with one autocommitted `INSERT` per request. While a batch commits,
//! the next requests queue up, so batches grow with load and stay at one row when idle
//! (no added wait: nothing ever holds a request back to fill a batch).
//!
//! If a batch fails, its rows are retried one statement each, so each caller gets the
//! outcome (and the error) of its own row, never one caused by a neighbour.

use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool};
use tokio::sync::{mpsc, oneshot};

/// Most rows written by one statement (well under every engine's bind-parameter limit).
/// Also bounds the distinct statements a connection caches (one per batch size), keeping
/// them under sqlx's default statement-cache capacity (100).
pub const MAX_BATCH: usize = 64;

/// Requests waiting for the writer; beyond this, callers wait to enqueue (back-pressure).
const QUEUE: usize = 4096;

struct Pending {
    data: String,
    /// The keyed request's effect (see `http::idempotency::Effect`): a second row with the
    /// same one is not inserted.
    effect: Option<String>,
    done: oneshot::Sender<Result<(), sqlx::Error>>,
}

/// The handle requests use; cheap to clone. The writer task ends when every handle is gone.
#[derive(Clone, Debug)]
pub struct ItemWriter {
    tx: mpsc::Sender<Pending>,
}

impl ItemWriter {
    /// Starts the writer task on the current tokio runtime.
    pub fn spawn(pool: AnyPool) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(pool, rx));
        Self { tx }
    }

    /// Inserts one `items` row (none when a row with the same `effect` exists); returns
    /// once it is committed.
    pub async fn insert(&self, data: String, effect: Option<String>) -> Result<(), sqlx::Error> {
        let (done, answer) = oneshot::channel();
        self.tx
            .send(Pending { data, effect, done })
            .await
            .map_err(|_| sqlx::Error::PoolClosed)?;
        answer.await.map_err(|_| sqlx::Error::PoolClosed)?
    }
}

/// The writer keeps one pooled connection between batches: as this process's only writer
/// to `items`, its SQLite page cache stays valid from one commit to the next (a connection
/// that another one wrote behind must drop and re-read its cache). It is given back to the
/// pool after any error, and a fresh one is taken for the next batch.
async fn run(pool: AnyPool, mut rx: mpsc::Receiver<Pending>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut slot: Option<PoolConnection<Any>> = None;
    // Waits for at least one request, then takes every one already queued.
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let batched = batch.len() > 1 && {
            let r = match writer_conn(&pool, &mut slot).await {
                Ok(conn) => insert_many(conn, &batch).await,
                Err(e) => Err(e),
            };
            if let Err(e) = &r {
                slot = None;
                tracing::warn!(error = %e, rows = batch.len(),
                    "batched insert failed; retrying its rows one by one");
            }
            r.is_ok()
        };
        for p in batch.drain(..) {
            let r = if batched {
                Ok(())
            } else {
                let r = match writer_conn(&pool, &mut slot).await {
                    Ok(conn) => insert_one(conn, &p.data, p.effect.as_deref()).await,
                    Err(e) => Err(e),
                };
                if r.is_err() {
                    slot = None;
                }
                r
            };
            let _ = p.done.send(r);
        }
    }
}

/// The writer's connection, taken from the pool when it has none (at start, or after an
/// error gave the previous one back).
async fn writer_conn<'a>(
    pool: &AnyPool,
    slot: &'a mut Option<PoolConnection<Any>>,
) -> Result<&'a mut AnyConnection, sqlx::Error> {
    if slot.is_none() {
        *slot = Some(pool.acquire().await?);
    }
    slot.as_deref_mut().ok_or(sqlx::Error::PoolClosed)
}

async fn insert_one(
    conn: &mut AnyConnection,
    data: &str,
    effect: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(&insert_sql(1))
        .bind(data)
        .bind(effect)
        .execute(conn)
        .await?;
    Ok(())
}

/// One statement, hence one transaction, for every row of the batch.
async fn insert_many(conn: &mut AnyConnection, batch: &[Pending]) -> Result<(), sqlx::Error> {
    let sql = insert_sql(batch.len());
    let mut q = sqlx::query(&sql);
    for p in batch {
        q = q.bind(p.data.as_str()).bind(p.effect.as_deref());
    }
    q.execute(conn).await?;
    Ok(())
}

/// `INSERT INTO items (data, effect) VALUES ($1,$2),($3,$4),... ON CONFLICT DO NOTHING`;
/// rows keep the batch's (arrival) order. The only constraint a row can break is the
/// effect's uniqueness: a keyed write already made.
fn insert_sql(rows: usize) -> String {
    let mut sql = String::with_capacity(64 + rows * 10);
    sql.push_str("INSERT INTO items (data, effect) VALUES ");
    for i in 1..=rows {
        if i > 1 {
            sql.push(',');
        }
        sql.push_str(&format!("(${},${})", 2 * i - 1, 2 * i));
    }
    sql.push_str(" ON CONFLICT DO NOTHING");
    sql
}

#[cfg(test)]
mod tests {
    #[test]
    fn insert_sql_numbers_every_row() {
        assert_eq!(
            super::insert_sql(3),
            "INSERT INTO items (data, effect) VALUES ($1,$2),($3,$4),($5,$6) ON CONFLICT DO NOTHING"
        );
    }
}
