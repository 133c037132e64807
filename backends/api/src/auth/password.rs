//! argon2id password hashes (PHC strings). Hashing is deliberately slow (19 MiB, two
//! passes), so it runs on the blocking pool, never on the async workers that serve other
//! requests, and no more hashes run at once than the machine has cores ([`Limiter`]):
//! each runtime's blocking pool would otherwise start up to 512 of them, so a burst of
//! sign-ups or logins could take every core and gigabytes of memory. A request that finds
//! the hashers busy waits a little, in a bounded queue, and is then answered 503 with
//! `Retry-After` ([`PasswordError::Busy`]).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Requests that may wait for a hasher, per core: enough to ride out a burst of real users,
/// few enough that a flood is refused at once instead of piling up bodies in memory.
const QUEUE_PER_CORE: usize = 8;
/// The longest a request waits for a hasher before it is refused. Well under the edge's
/// attempt timeout, so the client hears 503 rather than a timeout.
const MAX_WAIT: Duration = Duration::from_secs(3);
/// The `Retry-After` (seconds) of a refusal: a queue's worth of hashes drains in about that.
pub const RETRY_AFTER_S: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("hashing: {0}")]
    Hash(String),
    #[error("hashing task: {0}")]
    Join(#[from] tokio::task::JoinError),
    /// Every hasher was busy and the queue full, or the wait ran out.
    #[error("every password hasher is busy")]
    Busy,
}

/// Bounds concurrent hashing: `permits` hashes run, up to `max_waiting` requests wait for
/// one, each for at most `max_wait`. A permit moves into the blocking task and is released
/// when the hash ends, not when the request does, so clients that disconnect mid-hash
/// cannot start more hashes than there are permits.
#[derive(Debug)]
pub struct Limiter {
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_waiting: usize,
    max_wait: Duration,
}

impl Limiter {
    pub fn new(permits: usize, max_waiting: usize, max_wait: Duration) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(permits.max(1))),
            waiting: AtomicUsize::new(0),
            max_waiting,
            max_wait,
        }
    }

    /// Runs `work` on the blocking pool once a permit is free, or fails with `Busy`.
    pub async fn run<T, F>(&self, work: F) -> Result<T, PasswordError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let permit = self.acquire().await?;
        Ok(tokio::task::spawn_blocking(move || {
            let _held = permit;
            work()
        })
        .await?)
    }

    async fn acquire(&self) -> Result<OwnedSemaphorePermit, PasswordError> {
        if let Ok(permit) = Arc::clone(&self.permits).try_acquire_owned() {
            return Ok(permit);
        }
        let _slot = QueueSlot::take(self).ok_or(PasswordError::Busy)?;
        let wait = Arc::clone(&self.permits).acquire_owned();
        match tokio::time::timeout(self.max_wait, wait).await {
            Ok(Ok(permit)) => Ok(permit),
            // Timed out, or (never: the semaphore is not closed) closed.
            _ => Err(PasswordError::Busy),
        }
    }
}

/// One place in the wait queue, given back when dropped (also when the request is).
struct QueueSlot<'a>(&'a AtomicUsize);

impl<'a> QueueSlot<'a> {
    fn take(limiter: &'a Limiter) -> Option<Self> {
        limiter
            .waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limiter.max_waiting).then_some(n + 1)
            })
            .ok()
            .map(|_| Self(&limiter.waiting))
    }
}

impl Drop for QueueSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The process's limiter: one permit per core, shared by every worker thread's runtime.
fn limiter() -> &'static Limiter {
    static LIMITER: OnceLock<Limiter> = OnceLock::new();
    LIMITER.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        Limiter::new(cores, cores * QUEUE_PER_CORE, MAX_WAIT)
    })
}

/// Hashes with argon2id (crate defaults: 19 MiB, t=2, p=1) and a random salt.
pub async fn hash(password: String) -> Result<String, PasswordError> {
    limiter().run(move || hash_blocking(&password)).await?
}

fn hash_blocking(password: &str) -> Result<String, PasswordError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// Checks `password` against a stored PHC string; a malformed hash never matches.
pub async fn verify(password: String, phc: Arc<str>) -> Result<bool, PasswordError> {
    limiter()
        .run(move || {
            PasswordHash::new(&phc)
                .map(|parsed| {
                    Argon2::default()
                        .verify_password(password.as_bytes(), &parsed)
                        .is_ok()
                })
                .unwrap_or(false)
        })
        .await
}

/// A hash of a random password, verified against when the email is unknown so that a
/// login costs the same whether or not the account exists.
pub async fn dummy_hash() -> Result<Arc<str>, PasswordError> {
    let random = SaltString::generate(&mut OsRng).to_string();
    Ok(Arc::from(hash(random).await?))
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Instant;

    use super::*;

    #[tokio::test]
    async fn round_trip() {
        let h: Arc<str> = Arc::from(hash("correct horse".into()).await.unwrap());
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("correct horse".into(), h.clone()).await.unwrap());
        assert!(!verify("wrong".into(), h).await.unwrap());
        assert!(!verify("x".into(), Arc::from("not a hash")).await.unwrap());
    }

    /// Starts a job on `limiter` that holds its permit until `release` is sent to.
    fn hold(limiter: &Arc<Limiter>) -> (mpsc::Sender<()>, tokio::task::JoinHandle<bool>) {
        let (release, held) = mpsc::channel::<()>();
        let l = Arc::clone(limiter);
        let job = tokio::spawn(async move { l.run(move || held.recv().is_ok()).await.unwrap() });
        (release, job)
    }

    async fn until(cond: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !cond() {
            assert!(Instant::now() < deadline, "condition never held");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// One permit, one queue place: the second job waits and then runs, a third finds the
    /// queue full and is refused at once, and a waiter whose wait runs out is refused too.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn limiter_bounds_running_and_waiting_work() {
        let limiter = Arc::new(Limiter::new(1, 1, Duration::from_secs(30)));
        let (release, first) = hold(&limiter);
        until(|| limiter.permits.available_permits() == 0).await;
        let l = Arc::clone(&limiter);
        let second = tokio::spawn(async move { l.run(|| 2).await });
        until(|| limiter.waiting.load(Ordering::Acquire) == 1).await;
        let started = Instant::now();
        assert!(matches!(limiter.run(|| 3).await, Err(PasswordError::Busy)));
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "refused at once"
        );
        release.send(()).unwrap();
        assert!(first.await.unwrap());
        assert_eq!(second.await.unwrap().unwrap(), 2);
        assert_eq!(limiter.waiting.load(Ordering::Acquire), 0);
        assert_eq!(limiter.permits.available_permits(), 1);

        let short = Arc::new(Limiter::new(1, 4, Duration::from_millis(50)));
        let (release, first) = hold(&short);
        until(|| short.permits.available_permits() == 0).await;
        assert!(matches!(short.run(|| ()).await, Err(PasswordError::Busy)));
        assert_eq!(
            short.waiting.load(Ordering::Acquire),
            0,
            "the slot came back"
        );
        release.send(()).unwrap();
        assert!(first.await.unwrap());
    }

    /// A request dropped mid-hash (a client that went away) does not free its permit until
    /// the hash itself ends, so disconnecting cannot start more hashes than there are cores.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dropped_request_keeps_its_permit_until_the_work_ends() {
        let limiter = Arc::new(Limiter::new(1, 0, Duration::from_secs(30)));
        let (release, job) = hold(&limiter);
        until(|| limiter.permits.available_permits() == 0).await;
        job.abort();
        let _ = job.await;
        assert_eq!(limiter.permits.available_permits(), 0);
        assert!(matches!(limiter.run(|| ()).await, Err(PasswordError::Busy)));
        release.send(()).unwrap();
        until(|| limiter.permits.available_permits() == 1).await;
        assert!(limiter.run(|| ()).await.is_ok());
    }
}
