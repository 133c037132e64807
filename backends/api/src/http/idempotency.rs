//! `Idempotency-Key` (draft-ietf-httpapi-idempotency-key-header) for the POSTs that have a
//! side effect: `/api/process` and `/api/uploads`. A client that did not get an answer
//! (a timeout, a dropped connection, the edge failing over to another origin) may send the
//! same request again with the same key, and gets the first answer back instead of a second
//! item or upload.
//!
//! Why in the database: several origin processes share one database, and a retry may land on
//! any of them, so the record of a key is an `idempotency_keys` row, not process memory.
//! Why the insert is the lock: a request may run its handler only if its own `INSERT` took
//! the `(user, key)` row (an `ON CONFLICT` upsert that only takes over an expired row or a
//! dead process's claim), one atomic statement on both engines; two processes racing with one key cannot both win, as
//! a read-then-write could.
//!
//! Per the draft, for a key the caller already used:
//! - same request (same fingerprint: method, path and body), answered → the stored answer
//!   again, with `Idempotency-Replayed: true`, and nothing runs;
//! - same request, still running → 409, with `Retry-After: 1`;
//! - another request under the same key → 422;
//! - an expired row counts as absent (and is purged from time to time).
//!
//! A claim is owned by the process that took it. Each process beats its row in
//! `origin_heartbeats` every [`HEARTBEAT_EVERY`] (on a thread and a connection of its own),
//! and a claim whose owner has not beaten for [`OWNER_STALE_AFTER`] belongs to a process
//! that died with the request: the same request again takes it over at once. Without this, a
//! process killed mid-request held its keys for the whole [`IN_PROGRESS_LEASE`], and every
//! retry (the edge's own, after failing over) got 409 although other origins were up. The
//! lease stays as the backstop (a claim without an owner, from before owners, waits for it).
//! The takeover is a condition of the same upsert (a subquery on the heartbeats), so it
//! stays one atomic statement. What this cannot tell apart: a process frozen for longer
//! than the bound (stopped, swapped out; on SQLite, also every process while one holds the
//! write lock that long) that then finishes its request; and a process that died after its
//! handler's write but before the answer was recorded. Both run the request a second time,
//! as the lease's end always did, only sooner.
//!
//! Keys are scoped to the authenticated subject (the `sub` uploads are filed under), so one
//! user can neither collide with nor read another's answers. Without the header, or without
//! a valid caller (the handler then answers its own 401), nothing here happens.
//!
//! Only answers that the same request would get again are stored: 2xx, and 4xx other than
//! the transient ones (408, 409, 425, 429). A 5xx or a panic deletes the row, so the
//! client may retry. The handler and the recording of its answer run detached from the
//! connection, so a client that hangs up cannot leave a side effect unrecorded.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request, State};
use axum::http::header::{GetAll, CONTENT_TYPE, LOCATION, RETRY_AFTER};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::RequestExt;
use sfv::visitor::ParameterVisitor;
use sfv::{BareItemFromInput, KeyRef, Parser};
use sha2::{Digest, Sha256};
use sqlx::any::AnyConnectOptions;
use sqlx::{AnyConnection, AnyPool, ConnectOptions, Row};
use tracing::Instrument;

use crate::auth::Caller;
use crate::chore::Chore;
use crate::db::{Db, Engine};
use crate::error::ApiError;
use crate::AppState;

/// The request header (an sf-string item; a bare token is accepted too).
pub const IDEMPOTENCY_KEY: HeaderName =
    HeaderName::from_static(fastgate_wire::IDEMPOTENCY_KEY_HEADER);
/// Set to `true` on an answer replayed from the store rather than produced now.
pub const IDEMPOTENCY_REPLAYED: HeaderName =
    HeaderName::from_static(fastgate_wire::IDEMPOTENCY_REPLAYED_HEADER);
/// The longest key accepted, in characters (all ASCII).
pub const MAX_KEY_LEN: usize = 255;
/// How long a claim may stay in progress before another request may take the key over: the
/// handler's bound, not the TTL. The backstop: a dead owner's claim is taken over after
/// [`OWNER_STALE_AFTER`], and only a claim without an owner waits for this.
pub const IN_PROGRESS_LEASE: Duration = Duration::from_secs(300);
/// How often a process stores its heartbeat.
pub const HEARTBEAT_EVERY: Duration = Duration::from_millis(500);
/// How long a process may go without a heartbeat before its claims count as a dead
/// process's and may be taken over. Four missed beats: a live process does not get there
/// from a slow statement or a busy moment (its beats run on a thread and a connection of
/// their own), while a client retrying after its origin was killed waits about this long,
/// not the [`IN_PROGRESS_LEASE`]. Judged on the database's clock, which also stamps the
/// beats, so no two hosts' clocks are compared. Too short, and a live process's request
/// runs twice; too long, and writes fail for that long after a crash (the edge waits for
/// the takeover only until its deadline).
pub const OWNER_STALE_AFTER: Duration = Duration::from_secs(2);
/// The `Retry-After` (seconds) of the 409 for a key in progress: about when a live owner's
/// request has finished (it is then replayed), or a dead owner's claim can be taken over.
pub const IN_PROGRESS_RETRY_AFTER_SECS: u64 = 1;
/// A process claims only while its own last beat is younger than this, beating inline
/// first otherwise (at start, or when its heartbeat thread lags): a claim it takes must
/// not look dead to the others the moment it is taken.
const OWN_BEAT_MAX_AGE: Duration = Duration::from_millis(1_000);
/// Heartbeat rows older than this are deleted with the expired keys (a stale row and no
/// row mean the same; they are kept a while to tell which process held a key).
pub const HEARTBEAT_FORGET: Duration = Duration::from_secs(600);
/// How often (seconds) one process deletes expired rows.
const PURGE_EVERY_SECS: u64 = 60;
/// Claim attempts when the row vanishes (released or purged) between the insert and the read.
const CLAIM_ATTEMPTS: usize = 3;

/// The OpenAPI description of the request header.
pub const KEY_DOC: &str =
    "Makes the POST safe to retry (draft-ietf-httpapi-idempotency-key-header): \
    a quoted string (`\"8e03978e-40d5-43e8-bc93-6894a57f9324\"`) or a bare token of visible \
    ASCII, at most 255 characters, scoped to the caller. The same request again with the same \
    key gets the stored answer (marked `Idempotency-Replayed: true`) without running again; \
    answers are kept for `FASTGATE_IDEMPOTENCY_TTL_S` (24 h by default).";
/// The OpenAPI description of the 409.
pub const IN_PROGRESS_DOC: &str =
    "The first request with this `Idempotency-Key` has not finished yet; `Retry-After` \
    says when to send it again";
/// The OpenAPI description of the 422: validation, or a reused key.
pub const UNPROCESSABLE_DOC: &str = "Validation error (`{\"detail\": [...]}`), or an \
    `Idempotency-Key` already used for a different request (`{\"detail\": \"...\"}`)";

/// The 409 detail: the first request with the key is still running.
pub const IN_PROGRESS_DETAIL: &str =
    "A request with this Idempotency-Key is still being processed; retry later";
/// The 422 detail: the key was used for a different request.
pub const MISMATCH_DETAIL: &str = "This Idempotency-Key was already used for a different request";

const IN_PROGRESS: &str = "in_progress";
const COMPLETED: &str = "completed";

/// Why an `Idempotency-Key` header was refused (400, with [`KeyError::detail`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.detail())]
pub enum KeyError {
    Repeated,
    Syntax,
    Parameters,
    Empty,
    TooLong,
}

impl KeyError {
    /// The `{"detail": ...}` text, which names the header.
    pub const fn detail(self) -> &'static str {
        match self {
            Self::Repeated => "Invalid Idempotency-Key header: sent more than once",
            Self::Syntax => {
                "Invalid Idempotency-Key header: not a quoted string or a token of visible ASCII"
            }
            Self::Parameters => "Invalid Idempotency-Key header: parameters are not allowed",
            Self::Empty => "Invalid Idempotency-Key header: empty",
            Self::TooLong => "Invalid Idempotency-Key header: longer than 255 characters",
        }
    }
}

impl From<KeyError> for ApiError {
    fn from(e: KeyError) -> Self {
        ApiError::http(StatusCode::BAD_REQUEST, e.detail())
    }
}

/// The key the request carries, if any. The draft's form is an sf-string
/// (`"8e03978e-..."`), read with `sfv`; a value that does not start with a quote is taken
/// as a bare key of visible ASCII (what many clients send), without `"` or `\` so that it
/// cannot be a broken string. `"abc"` and `abc` are the same key.
pub fn parse_key(values: GetAll<'_, HeaderValue>) -> Result<Option<String>, KeyError> {
    let mut values = values.iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(KeyError::Repeated);
    }
    let text = value.to_str().map_err(|_| KeyError::Syntax)?.trim();
    let key = if text.starts_with('"') {
        Parser::new(text)
            .parse_item_with_visitor(KeyVisitor)
            .map_err(|_| KeyError::Syntax)??
    } else if text
        .bytes()
        .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
    {
        text.to_owned()
    } else {
        return Err(KeyError::Syntax);
    };
    match key.len() {
        0 => Err(KeyError::Empty),
        n if n > MAX_KEY_LEN => Err(KeyError::TooLong),
        _ => Ok(Some(key)),
    }
}

/// Takes the item's string, and refuses any other type or a parameter. sfv's parse error
/// (syntax) and ours (meaning) are kept apart: ours is the inner `Result`.
struct KeyVisitor;

impl<'de> sfv::visitor::ItemVisitor<'de> for KeyVisitor {
    type Out = Result<String, KeyError>;
    type Error = std::convert::Infallible;

    fn bare_item(
        self,
        item: BareItemFromInput<'de>,
    ) -> Result<impl ParameterVisitor<'de, Out = Self::Out>, Self::Error> {
        let key = match item {
            BareItemFromInput::String(s) => Ok(s.as_str().to_owned()),
            _ => Err(KeyError::Syntax),
        };
        Ok(NoParameters(Some(key)))
    }
}

/// Keeps the key unless a parameter follows it.
struct NoParameters(Option<Result<String, KeyError>>);

impl<'de> ParameterVisitor<'de> for NoParameters {
    type Out = Result<String, KeyError>;
    type Error = std::convert::Infallible;

    fn parameter(&mut self, _: &'de KeyRef, _: BareItemFromInput<'de>) -> Result<(), Self::Error> {
        self.0 = Some(Err(KeyError::Parameters));
        Ok(())
    }

    fn finish(self) -> Result<Self::Out, Self::Error> {
        Ok(self.0.unwrap_or(Err(KeyError::Syntax)))
    }
}

/// Hex SHA-256 of the method, the path and the body: what "the same request" means. The
/// newlines keep the parts apart (neither a method nor a path contains one).
pub fn fingerprint(method: &Method, path: &str, body: &[u8]) -> String {
    let mut hash = Sha256::new();
    hash.update(method.as_str().as_bytes());
    hash.update(b"\n");
    hash.update(path.as_bytes());
    hash.update(b"\n");
    hash.update(body);
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// An answer as stored, and as replayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: StatusCode,
    pub content_type: Option<HeaderValue>,
    pub location: Option<HeaderValue>,
    pub body: Bytes,
}

/// A key this request owns: it alone runs the handler, then completes or releases it.
#[derive(Debug, Clone)]
pub struct Claim {
    user: String,
    key: String,
    /// Tells this claim from a later one that took the key over after the lease.
    token: String,
}

/// What the store says about a request's key.
#[derive(Debug)]
pub enum Begin {
    /// The key is ours: run the handler.
    Claimed(Claim),
    /// Answered before: send this again.
    Replay(StoredResponse),
    /// The first request with this key has not finished.
    InProgress,
    /// The key was used for another request.
    Mismatch,
}

/// The `idempotency_keys` table, shared by every origin process on the database, and this
/// process's heartbeat, which keeps its claims its own.
#[derive(Debug, Clone)]
pub struct IdempotencyStore {
    pool: AnyPool,
    ttl: Duration,
    /// This process's purge of expired keys and old heartbeats.
    purges: Chore,
    sql: Arc<Statements>,
    /// Dropped with the last clone of the store, which stops the heartbeat thread.
    heartbeat: Arc<Heartbeat>,
}

/// The statements that read the database's clock, written for its engine.
#[derive(Debug)]
struct Statements {
    claim: String,
    beat: String,
    forget: String,
}

impl Statements {
    fn new(engine: Engine) -> Self {
        // Unix milliseconds by the database's clock, read once in each statement below.
        let now = match engine {
            Engine::Sqlite => "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)",
            Engine::Postgres => "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
        };
        Self {
            // Takes the row if there is none, if the one there has expired, or if it is the
            // same request in progress for an owner whose heartbeat is stale (or gone).
            claim: format!(
                "INSERT INTO idempotency_keys \
                 (user_id, key, fingerprint, state, claim_token, owner, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (user_id, key) DO UPDATE SET fingerprint = excluded.fingerprint, \
                 state = excluded.state, claim_token = excluded.claim_token, \
                 owner = excluded.owner, status = NULL, content_type = NULL, location = NULL, \
                 body = NULL, created_at = excluded.created_at, expires_at = excluded.expires_at \
                 WHERE idempotency_keys.expires_at <= $7 \
                 OR (idempotency_keys.state = $4 AND idempotency_keys.fingerprint = $3 \
                 AND idempotency_keys.owner IS NOT NULL AND NOT EXISTS (SELECT 1 \
                 FROM origin_heartbeats WHERE origin_heartbeats.owner = idempotency_keys.owner \
                 AND origin_heartbeats.seen_at > {now} - $9))"
            ),
            beat: format!(
                "INSERT INTO origin_heartbeats (owner, seen_at) VALUES ($1, {now}) \
                 ON CONFLICT (owner) DO UPDATE SET seen_at = excluded.seen_at"
            ),
            forget: format!("DELETE FROM origin_heartbeats WHERE seen_at < {now} - $1"),
        }
    }
}

/// This process's identity as the owner of claims, and when it last proved alive.
#[derive(Debug)]
struct Heartbeat {
    /// `<name>-<pid>-<uuid>`: new at every start, and readable in the table.
    owner: String,
    started: Instant,
    /// When the last stored beat was sent, in milliseconds since `started` (`u64::MAX`:
    /// never). Taken before the statement, so the age it gives is never too young.
    last_ms: AtomicU64,
}

impl Heartbeat {
    fn new(name: &str) -> Self {
        Self {
            owner: format!("{name}-{}-{}", std::process::id(), uuid::Uuid::new_v4()),
            started: Instant::now(),
            last_ms: AtomicU64::new(u64::MAX),
        }
    }

    fn stored(&self, sent: Instant) {
        let ms = sent.saturating_duration_since(self.started).as_millis();
        self.last_ms
            .store(u64::try_from(ms).unwrap_or(u64::MAX - 1), Ordering::Relaxed);
    }

    /// Whether the last stored beat is recent enough to claim on.
    fn fresh(&self) -> bool {
        let last = self.last_ms.load(Ordering::Relaxed);
        let now = self.started.elapsed().as_millis();
        last != u64::MAX && now.saturating_sub(u128::from(last)) < OWN_BEAT_MAX_AGE.as_millis()
    }

    /// Stores a beat on `conn`, and records it.
    async fn beat<'c, E>(&self, sql: &Statements, conn: E) -> Result<(), sqlx::Error>
    where
        E: sqlx::Executor<'c, Database = sqlx::Any>,
    {
        let sent = Instant::now();
        sqlx::query(&sql.beat)
            .bind(&self.owner)
            .execute(conn)
            .await?;
        self.stored(sent);
        Ok(())
    }
}

/// Beats every [`HEARTBEAT_EVERY`] on a thread, a runtime and a connection of its own,
/// until the store is dropped: neither busy runtimes nor a pool whose connections are all
/// taken can make a live process look dead. A thread that cannot start leaves every claim
/// to beat inline first (see [`OWN_BEAT_MAX_AGE`]).
fn spawn_heartbeat(options: AnyConnectOptions, sql: Arc<Statements>, beat: Weak<Heartbeat>) {
    let spawned = std::thread::Builder::new()
        .name("idempotency-heartbeat".into())
        .spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime.block_on(beat_until_dropped(&options, &sql, &beat)),
                Err(error) => tracing::error!(%error, "no runtime for the heartbeat"),
            }
        });
    if let Err(error) = spawned {
        tracing::error!(%error, "no heartbeat thread; claims beat inline");
    }
}

async fn beat_until_dropped(options: &AnyConnectOptions, sql: &Statements, beat: &Weak<Heartbeat>) {
    let mut conn = None;
    let mut ticks = tokio::time::interval(HEARTBEAT_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(heartbeat) = beat.upgrade() else {
            return;
        };
        let once = beat_once(&mut conn, options, sql, &heartbeat);
        // A statement stuck longer than the bound is no beat; the connection is replaced.
        let failed = match tokio::time::timeout(OWNER_STALE_AFTER, once).await {
            Ok(Ok(())) => None,
            Ok(Err(error)) => Some(error.to_string()),
            Err(_) => Some(format!("no answer in {OWNER_STALE_AFTER:?}")),
        };
        if let Some(error) = failed {
            tracing::warn!(%error, owner = %heartbeat.owner, "idempotency heartbeat failed");
            conn = None;
        }
    }
}

/// One beat, connecting first if needed.
async fn beat_once(
    conn: &mut Option<AnyConnection>,
    options: &AnyConnectOptions,
    sql: &Statements,
    heartbeat: &Heartbeat,
) -> Result<(), sqlx::Error> {
    let conn = match conn {
        Some(conn) => conn,
        None => conn.insert(options.connect().await?),
    };
    heartbeat.beat(sql, conn).await
}

/// Seconds since the epoch, as stored.
pub fn unix_now() -> i64 {
    i64::try_from(fastgate_wire::unix_now()).unwrap_or(i64::MAX)
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl IdempotencyStore {
    /// The store of the origin process `name` on `db`; starts its heartbeat thread.
    pub fn new(db: &Db, ttl: Duration, name: &str) -> Self {
        let sql = Arc::new(Statements::new(db.engine));
        let heartbeat = Arc::new(Heartbeat::new(name));
        let options = (*db.pool.connect_options()).clone();
        spawn_heartbeat(options, sql.clone(), Arc::downgrade(&heartbeat));
        Self {
            pool: db.pool.clone(),
            ttl,
            purges: Chore::every(PURGE_EVERY_SECS),
            sql,
            heartbeat,
        }
    }

    /// The owner this process's claims carry (`idempotency_keys.owner`).
    pub fn owner(&self) -> &str {
        &self.heartbeat.owner
    }

    /// Claims `key` for `user`, or says why not. A row that vanishes between the failed
    /// insert and the read (released, purged) is claimed again, a bounded number of times.
    pub async fn begin(
        &self,
        user: &str,
        key: &str,
        fingerprint: &str,
        now: i64,
    ) -> Result<Begin, sqlx::Error> {
        self.maybe_purge(now);
        if !self.heartbeat.fresh() {
            self.heartbeat.beat(&self.sql, &self.pool).await?;
        }
        for _ in 0..CLAIM_ATTEMPTS {
            if let Some(claim) = self.try_claim(user, key, fingerprint, now).await? {
                return Ok(Begin::Claimed(claim));
            }
            if let Some(found) = self.existing(user, key, fingerprint, now).await? {
                return Ok(found);
            }
        }
        Ok(Begin::InProgress)
    }

    /// The insert that is the lock: it takes the row if there is none, if the one there has
    /// expired, or if it is this request in progress for a dead owner (the `WHERE` of the
    /// upsert, see [`Statements`]), and affects no row otherwise.
    async fn try_claim(
        &self,
        user: &str,
        key: &str,
        fingerprint: &str,
        now: i64,
    ) -> Result<Option<Claim>, sqlx::Error> {
        let token = uuid::Uuid::new_v4().to_string();
        let lease = secs(IN_PROGRESS_LEASE.min(self.ttl));
        let done = sqlx::query(&self.sql.claim)
            .bind(user)
            .bind(key)
            .bind(fingerprint)
            .bind(IN_PROGRESS)
            .bind(&token)
            .bind(&self.heartbeat.owner)
            .bind(now)
            .bind(now.saturating_add(lease))
            .bind(millis(OWNER_STALE_AFTER))
            .execute(&self.pool)
            .await?;
        Ok((done.rows_affected() == 1).then(|| Claim {
            user: user.to_owned(),
            key: key.to_owned(),
            token,
        }))
    }

    /// The live row that kept the claim out, read as the answer to give; `None` when there
    /// is none (any more) and the claim should be tried again.
    async fn existing(
        &self,
        user: &str,
        key: &str,
        fingerprint: &str,
        now: i64,
    ) -> Result<Option<Begin>, sqlx::Error> {
        let row = sqlx::query(
            "SELECT fingerprint, state, status, content_type, location, body \
             FROM idempotency_keys WHERE user_id = $1 AND key = $2 AND expires_at > $3",
        )
        .bind(user)
        .bind(key)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        if row.try_get::<String, _>(0)? != fingerprint {
            return Ok(Some(Begin::Mismatch));
        }
        if row.try_get::<String, _>(1)? != COMPLETED {
            return Ok(Some(Begin::InProgress));
        }
        let status = row.try_get::<Option<i64>, _>(2)?.unwrap_or_default();
        let header = |i: usize| -> Result<Option<HeaderValue>, sqlx::Error> {
            let text: Option<String> = row.try_get(i)?;
            Ok(text.and_then(|t| HeaderValue::from_str(&t).ok()))
        };
        Ok(Some(Begin::Replay(StoredResponse {
            status: u16::try_from(status)
                .ok()
                .and_then(|s| StatusCode::from_u16(s).ok())
                .ok_or_else(|| sqlx::Error::Decode("stored status out of range".into()))?,
            content_type: header(3)?,
            location: header(4)?,
            body: Bytes::from(row.try_get::<Option<Vec<u8>>, _>(5)?.unwrap_or_default()),
        })))
    }

    /// Stores the claim's answer and keeps it for the TTL; a claim that was taken over
    /// (its lease ran out) changes nothing.
    pub async fn complete(
        &self,
        claim: &Claim,
        response: &StoredResponse,
        now: i64,
    ) -> Result<(), sqlx::Error> {
        let text =
            |v: &Option<HeaderValue>| v.as_ref().and_then(|v| v.to_str().ok()).map(str::to_owned);
        sqlx::query(
            "UPDATE idempotency_keys SET state = $1, status = $2, content_type = $3, \
             location = $4, body = $5, expires_at = $6 \
             WHERE user_id = $7 AND key = $8 AND claim_token = $9",
        )
        .bind(COMPLETED)
        .bind(i64::from(response.status.as_u16()))
        .bind(text(&response.content_type))
        .bind(text(&response.location))
        .bind(response.body.to_vec())
        .bind(now.saturating_add(secs(self.ttl)))
        .bind(&claim.user)
        .bind(&claim.key)
        .bind(&claim.token)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Gives the key up (the handler failed): the client may try again.
    pub async fn release(&self, claim: &Claim) -> Result<(), sqlx::Error> {
        sqlx::query(
            "DELETE FROM idempotency_keys WHERE user_id = $1 AND key = $2 AND claim_token = $3",
        )
        .bind(&claim.user)
        .bind(&claim.key)
        .bind(&claim.token)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Deletes the rows that expired by `now`, and the heartbeats older than
    /// [`HEARTBEAT_FORGET`]; returns how many keys.
    pub async fn purge(&self, now: i64) -> Result<u64, sqlx::Error> {
        let done = sqlx::query("DELETE FROM idempotency_keys WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        sqlx::query(&self.sql.forget)
            .bind(millis(HEARTBEAT_FORGET))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// Purges in the background when this process has not for [`PURGE_EVERY_SECS`]; the
    /// compare-and-swap elects one request to do it.
    fn maybe_purge(&self, now: i64) {
        if !self.purges.elect(u64::try_from(now).unwrap_or(0)) {
            return;
        }
        let store = self.clone();
        tokio::spawn(async move {
            if let Err(error) = store.purge(unix_now()).await {
                tracing::warn!(%error, "purging expired idempotency keys failed");
            }
        });
    }
}

/// The middleware around the idempotent POSTs: without a key (or a valid caller) the
/// request goes straight through; with one, the store decides whether the handler runs.
pub async fn idempotent(State(st): State<AppState>, mut req: Request, next: Next) -> Response {
    let key = match parse_key(req.headers().get_all(IDEMPOTENCY_KEY)) {
        Ok(Some(key)) => key,
        Ok(None) => return next.run(req).await,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let Ok(caller) = req.extract_parts::<Caller>().await;
    let Ok(user) = caller.user(&st.tokens) else {
        return next.run(req).await;
    };
    let (parts, body) = req.into_parts();
    // The same bound (axum's default body limit) and rejection as the handler's extractor.
    let body = match Bytes::from_request(Request::new(body), &()).await {
        Ok(body) => body,
        Err(rejection) => return rejection.into_response(),
    };
    let print = fingerprint(&parts.method, parts.uri.path(), &body);
    let store = st.idempotency.clone();
    let claim = match store.begin(&user.sub, &key, &print, unix_now()).await {
        Ok(Begin::Claimed(claim)) => claim,
        Ok(Begin::Replay(stored)) => return replay(stored),
        Ok(Begin::InProgress) => return in_progress(),
        Ok(Begin::Mismatch) => {
            return ApiError::http(StatusCode::UNPROCESSABLE_ENTITY, MISMATCH_DETAIL)
                .into_response()
        }
        Err(e) => return ApiError::from(e).into_response(),
    };
    let mut req = Request::from_parts(parts, Body::from(body));
    req.extensions_mut().insert(Effect::of(&user.sub, &key));
    let run = run_claimed(store, claim, next, req).in_current_span();
    tokio::spawn(run)
        .await
        .unwrap_or_else(|e| ApiError::Internal(e.to_string()).into_response())
}

/// What a keyed request's write is recorded under, with the write itself (for
/// `POST /api/process`, the `items` row's unique `effect`). The claim protects against a
/// duplicate while the first run lives; this protects against the one window the claim
/// cannot see: a first run that committed its write and died before recording its answer,
/// whose claim a retry then takes over. SHA-256 of the user and the key: bounded, and the
/// same for every process.
#[derive(Debug, Clone)]
pub struct Effect(pub String);

impl Effect {
    pub fn of(sub: &str, key: &str) -> Effect {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(format!("{sub}\n{key}").as_bytes());
        Effect(digest.iter().map(|b| format!("{b:02x}")).collect())
    }
}

/// The 409 for a key in progress, with when to try again.
fn in_progress() -> Response {
    let mut response = ApiError::http(StatusCode::CONFLICT, IN_PROGRESS_DETAIL).into_response();
    let retry_after = HeaderValue::from(IN_PROGRESS_RETRY_AFTER_SECS);
    response.headers_mut().insert(RETRY_AFTER, retry_after);
    response
}

/// Runs the handler of a claimed key and records its answer. The handler runs in a task of
/// its own so that a panic is seen (as the task's failure) and releases the key.
async fn run_claimed(store: IdempotencyStore, claim: Claim, next: Next, req: Request) -> Response {
    let handled = tokio::spawn(next.run(req).in_current_span()).await;
    let response = match handled {
        Ok(response) => response,
        Err(e) => return released(&store, &claim, e.to_string()).await,
    };
    let (parts, body) = response.into_parts();
    // The handlers' answers are small JSON documents, read whole.
    let body = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(body) => body,
        Err(e) => return released(&store, &claim, e.to_string()).await,
    };
    if storable(parts.status) {
        let stored = StoredResponse {
            status: parts.status,
            content_type: parts.headers.get(CONTENT_TYPE).cloned(),
            location: parts.headers.get(LOCATION).cloned(),
            body: body.clone(),
        };
        // On failure the row stays in progress until its lease ends: the client has its
        // answer, and a retry after the lease runs again (there is no record to replay).
        if let Err(error) = store.complete(&claim, &stored, unix_now()).await {
            tracing::error!(%error, "storing an idempotent answer failed");
        }
    } else if let Err(error) = store.release(&claim).await {
        tracing::error!(%error, "releasing an idempotency key failed");
    }
    Response::from_parts(parts, Body::from(body))
}

/// Releases the key after the handler failed, and answers 500.
async fn released(store: &IdempotencyStore, claim: &Claim, cause: String) -> Response {
    if let Err(error) = store.release(claim).await {
        tracing::error!(%error, "releasing an idempotency key failed");
    }
    ApiError::Internal(cause).into_response()
}

/// Whether the same request would get this answer again: 2xx, and the 4xx that are not
/// about the moment (timeouts, conflicts, too early, rate limits).
pub fn storable(status: StatusCode) -> bool {
    status.is_success()
        || (status.is_client_error() && !matches!(status.as_u16(), 408 | 409 | 425 | 429))
}

/// The stored answer again, marked as such.
fn replay(stored: StoredResponse) -> Response {
    let mut response = (stored.status, stored.body).into_response();
    let headers = response.headers_mut();
    headers.remove(CONTENT_TYPE);
    if let Some(v) = stored.content_type {
        headers.insert(CONTENT_TYPE, v);
    }
    if let Some(v) = stored.location {
        headers.insert(LOCATION, v);
    }
    headers.insert(IDEMPOTENCY_REPLAYED, HeaderValue::from_static("true"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderMap;

    fn key(values: &[&str]) -> Result<Option<String>, KeyError> {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(IDEMPOTENCY_KEY, HeaderValue::from_str(v).unwrap());
        }
        parse_key(headers.get_all(IDEMPOTENCY_KEY))
    }

    #[test]
    fn keys_as_strings_or_bare() {
        let uuid = "8e03978e-40d5-43e8-bc93-6894a57f9324";
        assert_eq!(key(&[]), Ok(None));
        assert_eq!(key(&[&format!("\"{uuid}\"")]), Ok(Some(uuid.into())));
        assert_eq!(key(&[uuid]), Ok(Some(uuid.into())));
        assert_eq!(key(&[r#""a \"b\" \\c""#]), Ok(Some(r#"a "b" \c"#.into())));
        assert_eq!(key(&["  \"x\"  "]), Ok(Some("x".into())));
        let longest = "k".repeat(MAX_KEY_LEN);
        assert_eq!(key(&[&longest]), Ok(Some(longest.clone())));
        assert_eq!(key(&[&format!("\"{longest}\"")]), Ok(Some(longest)));
    }

    #[test]
    fn malformed_keys() {
        let long = "k".repeat(MAX_KEY_LEN + 1);
        for (values, want) in [
            (vec!["a", "a"], KeyError::Repeated),
            (vec!["\"unterminated"], KeyError::Syntax),
            (vec!["a b"], KeyError::Syntax),
            (vec!["a\"b"], KeyError::Syntax),
            (vec!["\"a\" \"b\""], KeyError::Syntax),
            (vec!["\"a\";p=1"], KeyError::Parameters),
            (vec!["\"\""], KeyError::Empty),
            (vec![""], KeyError::Empty),
            (vec![long.as_str()], KeyError::TooLong),
        ] {
            assert_eq!(key(&values), Err(want), "{values:?}");
            assert_eq!(want.to_string(), want.detail());
        }
        let mut headers = HeaderMap::new();
        let latin1 = HeaderValue::from_bytes(b"caf\xe9").unwrap();
        headers.insert(IDEMPOTENCY_KEY, latin1);
        assert_eq!(
            parse_key(headers.get_all(IDEMPOTENCY_KEY)),
            Err(KeyError::Syntax)
        );
    }

    #[test]
    fn fingerprint_covers_method_path_and_body() {
        let a = fingerprint(&Method::POST, "/api/uploads", b"{}");
        assert_eq!(a.len(), 64);
        assert_eq!(a, fingerprint(&Method::POST, "/api/uploads", b"{}"));
        assert_ne!(a, fingerprint(&Method::POST, "/api/process", b"{}"));
        assert_ne!(a, fingerprint(&Method::PUT, "/api/uploads", b"{}"));
        assert_ne!(a, fingerprint(&Method::POST, "/api/uploads", b"{} "));
    }

    #[test]
    fn what_is_stored() {
        for ok in [200, 201, 202, 400, 401, 404, 413, 422] {
            assert!(storable(StatusCode::from_u16(ok).unwrap()), "{ok}");
        }
        for not in [301, 408, 409, 425, 429, 500, 503] {
            assert!(!storable(StatusCode::from_u16(not).unwrap()), "{not}");
        }
    }
}
