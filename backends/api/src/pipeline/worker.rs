//! The summarisation worker: a tokio task in each origin process. It polls the job queue
//! (woken early when this process enqueues), claims one job at a time under a lease, and
//! stores the result through `Db::complete_job`.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::db::Db;
use crate::pipeline::queue::Job;
use crate::pipeline::storage::Blobs;
use crate::text;

/// Sentences kept by the summary, as in the reference.
const SUMMARY_SENTENCES: usize = 2;

#[derive(Clone)]
pub struct Worker {
    pub db: Db,
    pub blobs: Blobs,
    pub owner: String,
    pub lease: Duration,
    pub poll: Duration,
    pub wake: Arc<Notify>,
}

#[derive(Debug, thiserror::Error)]
enum JobError {
    #[error("reading the upload: {0}")]
    Read(#[from] object_store::Error),
    #[error("storing the result: {0}")]
    Store(#[from] sqlx::Error),
}

impl Worker {
    /// Runs forever; spawn it.
    pub async fn run(self) {
        tracing::info!(owner = %self.owner, lease_ms = self.lease.as_millis() as u64, "worker started");
        loop {
            match self.db.claim_job(&self.owner, self.lease).await {
                Ok(Some(job)) => self.handle(job).await,
                Ok(None) => {
                    let _ = tokio::time::timeout(self.poll, self.wake.notified()).await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "claiming a job failed");
                    tokio::time::sleep(self.poll).await;
                }
            }
        }
    }

    async fn handle(&self, job: Job) {
        match self.process(&job).await {
            Ok(()) => {
                tracing::info!(job = job.id, key = %job.object_key, attempt = job.attempts, "job done")
            }
            Err(e) => {
                tracing::warn!(job = job.id, error = %e, attempt = job.attempts, "job failed");
                let backoff = self.poll * 2u32.saturating_pow(job.attempts.clamp(0, 10) as u32);
                if let Err(e) = self
                    .db
                    .fail_job(&job, &self.owner, &e.to_string(), backoff)
                    .await
                {
                    tracing::warn!(job = job.id, error = %e, "releasing a failed job");
                }
            }
        }
    }

    async fn process(&self, job: &Job) -> Result<(), JobError> {
        let bytes = self.blobs.get(&job.object_key).await?;
        let content = String::from_utf8_lossy(&bytes).into_owned();
        let summary = {
            let content = content.clone();
            tokio::task::spawn_blocking(move || text::summarize(&content, SUMMARY_SENTENCES))
                .await
                .unwrap_or_default()
        };
        self.db
            .complete_job(
                job,
                &self.owner,
                &content,
                &summary,
                &crate::clock::iso_now(),
            )
            .await?;
        Ok(())
    }
}
