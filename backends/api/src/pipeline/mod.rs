//! The upload pipeline: object storage for content, a durable job queue in the database, and
//! a worker in every origin process that claims jobs under a lease and stores results
//! idempotently, so a crashed worker's job is finished by another after its lease expires.

pub mod queue;
pub mod storage;
pub mod worker;
