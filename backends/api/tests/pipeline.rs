//! The upload pipeline survives a dead worker: a job claimed by a worker that never
//! finishes is reclaimed after its lease expires and completes with exactly one summary,
//! even when the dead worker later "comes back" and completes too.

mod common;

use std::time::{Duration, Instant};

use common::{new_account, temp_dir, Origin};
use fastgate_api::db::Db;
use fastgate_api::Settings;
use serde_json::{json, Value};
use sqlx::Row;

async fn crashed_worker_job_completes_once(database_url: Option<String>) {
    let dir = temp_dir("crash");
    let mut env: Vec<(&str, &str)> = vec![("FASTGATE_WORKER", "0")];
    if let Some(url) = &database_url {
        env.push(("DATABASE_URL", url));
    }
    // An origin without a worker accepts the upload; the job waits in the queue.
    let api = Origin::start("origin_api", &dir, &env);
    let client = reqwest::Client::new();
    let email = format!("crash.{}@example.com", common::random_word(10));
    let token = new_account(&client, &api.url, &email).await;
    let content = "Leases expire. Workers crash sometimes! The queue remembers every job.";
    let r = client
        .post(format!("{}/api/uploads", api.url))
        .bearer_auth(&token)
        .json(&json!({"content": content}))
        .send()
        .await
        .unwrap();
    let key = common::string_field(r, 202, "key").await;

    // A worker claims the job and dies holding it.
    let settings =
        Settings::from_lookup("test".into(), dir.clone(), database_url.clone(), |_| None).unwrap();
    let db = Db::connect(&settings).await.unwrap();
    let mut dead = None;
    for _ in 0..50 {
        match db
            .claim_job("dead-worker", Duration::from_millis(1500))
            .await
            .unwrap()
        {
            Some(job) if job.object_key == key => {
                dead = Some(job);
                break;
            }
            // Leftovers of other runs on a shared PostgreSQL: let them expire for others.
            Some(_) => continue,
            None => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    let dead = dead.expect("the upload's job is claimable");
    assert_eq!(dead.attempts, 1);

    // A live worker (short lease) picks the job up only after the dead lease expires.
    let mut worker_env = vec![
        ("FASTGATE_JOB_LEASE_MS", "1000"),
        ("FASTGATE_WORKER_POLL_MS", "100"),
    ];
    if let Some(url) = &database_url {
        worker_env.push(("DATABASE_URL", url));
    }
    let worker = Origin::start("origin_worker", &dir, &worker_env);
    let started = Instant::now();
    let summaries = loop {
        let r = client
            .get(format!("{}/api/summaries", worker.url))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        let list: Vec<Value> = r.json().await.unwrap();
        if !list.is_empty() {
            break list;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "job never completed:\n{}",
            worker.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(summaries.len(), 1);
    assert_eq!(summaries[0]["key"], json!(key));
    assert_eq!(
        summaries[0]["summary"],
        json!(fastgate_api::text::summarize(content, 2))
    );

    // The dead worker wakes up and finishes late: still exactly one summary, the first one.
    db.complete_job(
        &dead,
        "dead-worker",
        content,
        "late duplicate",
        "2000-01-01T00:00:00+00:00",
    )
    .await
    .unwrap();
    let row = sqlx::query("SELECT COUNT(*), MIN(summary) FROM summaries WHERE key = $1")
        .bind(&key)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(row.try_get::<i64, _>(0).unwrap(), 1);
    assert_ne!(row.try_get::<String, _>(1).unwrap(), "late duplicate");
    let job = sqlx::query("SELECT status, attempts FROM jobs WHERE object_key = $1")
        .bind(&key)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(job.try_get::<String, _>(0).unwrap(), "done");
    assert_eq!(
        job.try_get::<i64, _>(1).unwrap(),
        2,
        "claimed by the dead worker, then once more"
    );
    drop((api, worker));
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn crashed_worker_job_completes_once_sqlite() {
    crashed_worker_job_completes_once(None).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn crashed_worker_job_completes_once_postgres() {
    match std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
    {
        Some(url) => crashed_worker_job_completes_once(Some(url)).await,
        None => {
            assert!(
                std::env::var("FASTGATE_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "FASTGATE_REQUIRE_POSTGRES=1 but TEST_DATABASE_URL is not set"
            );
            eprintln!("TEST_DATABASE_URL not set: PostgreSQL crash test not run");
        }
    }
}

/// A real process kill in the middle of the pipeline: the origin that took the upload is
/// killed at once; another origin sharing the database finishes the job.
#[tokio::test(flavor = "multi_thread")]
async fn killed_origin_job_is_finished_by_another() {
    let dir = temp_dir("kill");
    let lease = [
        ("FASTGATE_JOB_LEASE_MS", "1000"),
        ("FASTGATE_WORKER_POLL_MS", "100"),
    ];
    let mut first = Origin::start("origin_a", &dir, &lease);
    let client = reqwest::Client::new();
    let token = new_account(
        &client,
        &first.url,
        &format!("kill.{}@example.com", common::random_word(10)),
    )
    .await;
    let r = client
        .post(format!("{}/api/uploads", first.url))
        .bearer_auth(&token)
        .json(&json!({"content": "One sentence here. Another one there."}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    first.kill();
    let second = Origin::start("origin_b", &dir, &lease);
    let started = Instant::now();
    loop {
        let r = client
            .get(format!("{}/api/summaries", second.url))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        let list: Vec<Value> = r.json().await.unwrap();
        if list.len() == 1 {
            break;
        }
        assert!(list.len() < 2, "duplicate summaries: {list:?}");
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "job never completed:\n{}",
            second.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(second);
    let _ = std::fs::remove_dir_all(dir);
}
