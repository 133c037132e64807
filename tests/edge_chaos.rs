//! Chaos: mixed reads and writes through the edge from one region (Germany, whose origin is
//! `origin_eu`) while that origin is killed with SIGKILL and restarted, then every origin,
//! then, on the PostgreSQL run, the database. Every request is judged by the worst state of
//! the world it overlapped:
//!
//! - no read fails while any origin is up;
//! - cached reads are served while every origin is down;
//! - with `Idempotency-Key`, no write fails while any origin is up, and a client that
//!   retries a failed one with the same key gets it stored exactly once;
//! - without the key, every accepted write is stored exactly once, and none twice.

mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{client_from, config_with, sign_up, three_origins, StackBuilder};
use xtask::stack::{Stack, StackSpec};

/// 127.0.0.2: Germany in `fastly.toml`'s geolocation, so `origin_eu` answers first.
const REGION: u8 = 2;
const ORIGINS: [&str; 3] = ["origin_us", "origin_eu", "origin_ap"];

/// The state of the world, worst last: a request is judged by the worst it overlapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum World {
    AllUp,
    SomeDown,
    DatabaseRestarting,
    AllDown,
}

/// When the world changed, as the orchestrating thread saw it.
struct Timeline(Mutex<Vec<(Instant, World)>>);

impl Timeline {
    fn set(&self, world: World) {
        self.0.lock().unwrap().push((Instant::now(), world));
    }

    /// The worst state in force at any moment of `[from, to]`.
    fn worst(&self, from: Instant, to: Instant) -> World {
        let changes = self.0.lock().unwrap();
        let at_start = changes.iter().rev().find(|(t, _)| *t <= from);
        let during = changes.iter().filter(|(t, _)| *t > from && *t <= to);
        at_start
            .into_iter()
            .chain(during)
            .map(|(_, w)| *w)
            .max()
            .unwrap_or(World::AllUp)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    UncachedRead,
    CachedRead,
    KeyedWrite,
    PlainWrite,
}

/// One request's outcome (`status` 0: no answer at all).
struct Outcome {
    kind: Kind,
    world: World,
    status: u16,
    id: Option<String>,
}

struct Load {
    base: String,
    token: String,
    user_id: String,
    timeline: Arc<Timeline>,
    outcomes: Mutex<Vec<Outcome>>,
    stop: AtomicBool,
    next_id: AtomicUsize,
}

impl Load {
    fn send(&self, kind: Kind, req: reqwest::blocking::RequestBuilder, id: Option<&str>) -> u16 {
        let started = Instant::now();
        let status = req.send().map_or(0, |r| r.status().as_u16());
        let world = self.timeline.worst(started, Instant::now());
        let id = id.map(str::to_owned);
        let outcome = Outcome {
            kind,
            world,
            status,
            id,
        };
        self.outcomes.lock().unwrap().push(outcome);
        status
    }

    fn run(&self, kind: Kind) {
        let client = client_from(REGION);
        while !self.stop.load(Ordering::SeqCst) {
            match kind {
                Kind::UncachedRead => {
                    let req = client
                        .get(format!("{}/api/user/profile", self.base))
                        .header("cache-control", "no-store");
                    self.send(kind, req.bearer_auth(&self.token), None);
                }
                Kind::CachedRead => {
                    let req = client.get(format!("{}/api/user/{}", self.base, self.user_id));
                    self.send(kind, req.bearer_auth(&self.token), None);
                }
                Kind::KeyedWrite => self.keyed_write(&client),
                Kind::PlainWrite => {
                    let id = self.new_id("plain");
                    self.send(kind, self.process(&client, &id), Some(&id));
                }
            }
            std::thread::sleep(Duration::from_millis(15));
        }
    }

    /// One write with its own key, retried with the same key until it is accepted (as a
    /// client following the draft would), for at most a minute.
    fn keyed_write(&self, client: &reqwest::blocking::Client) {
        let id = self.new_id("keyed");
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let req = self.process(client, &id).header("idempotency-key", &id);
            if (200..300).contains(&self.send(Kind::KeyedWrite, req, Some(&id))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn process(
        &self,
        client: &reqwest::blocking::Client,
        id: &str,
    ) -> reqwest::blocking::RequestBuilder {
        client
            .post(format!("{}/api/process", self.base))
            .bearer_auth(&self.token)
            .json(&json!({"id": id, "payload": {"chaos": true}}))
    }

    fn new_id(&self, what: &str) -> String {
        let n = self.next_id.fetch_add(1, Ordering::SeqCst);
        format!("chaos-{what}-{}-{n}", std::process::id())
    }
}

/// No rate limits (the load comes from one address) and so no expensive handler to guard.
fn config() -> String {
    config_with(|v| {
        for route in v["routes"].as_array_mut().unwrap() {
            route.as_object_mut().unwrap().remove("rate_limit");
        }
        v["expensive_paths"] = json!([]);
    })
}

/// The PostgreSQL database of this run, fresh, when the suite runs on PostgreSQL.
fn postgres() -> Option<String> {
    if std::env::var("TEST_DATABASE_URL").is_err() {
        assert!(
            std::env::var("FASTGATE_REQUIRE_POSTGRES").as_deref() != Ok("1"),
            "FASTGATE_REQUIRE_POSTGRES=1 but TEST_DATABASE_URL is not set"
        );
        return None;
    }
    let script = xtask::workspace_root().join("scripts/postgres-up.sh");
    let out = std::process::Command::new("bash")
        .arg(script)
        .arg("fastgate_chaos")
        .output()
        .expect("running postgres-up.sh");
    assert!(out.status.success(), "postgres-up.sh failed");
    Some(String::from_utf8(out.stdout).unwrap().trim().to_owned())
}

fn restart_postgres() {
    let status = std::process::Command::new("bash")
        .arg("-c")
        .arg("pg_ctlcluster $(ls /usr/lib/postgresql | sort -V | tail -n1) main restart")
        .status()
        .expect("restarting PostgreSQL");
    assert!(status.success(), "PostgreSQL did not restart");
}

/// The chaos itself, on the orchestrating thread.
fn unleash(stack: &mut Stack, spec: &StackSpec, timeline: &Timeline, database: bool) {
    let pause = || std::thread::sleep(Duration::from_secs(4));
    pause();
    timeline.set(World::SomeDown);
    stack.kill_origin("origin_eu").unwrap();
    pause();
    stack.restart_origin(spec, "origin_eu").unwrap();
    timeline.set(World::AllUp);
    pause();
    timeline.set(World::AllDown);
    for name in ORIGINS {
        stack.kill_origin(name).unwrap();
    }
    pause();
    // Up again one at a time: the world is "some down" once the first answers.
    for name in ORIGINS {
        stack.restart_origin(spec, name).unwrap();
        timeline.set(World::SomeDown);
    }
    timeline.set(World::AllUp);
    pause();
    if database {
        timeline.set(World::DatabaseRestarting);
        restart_postgres();
        std::thread::sleep(Duration::from_secs(2));
        timeline.set(World::AllUp);
        pause();
    }
}

/// How many times each write id is stored in the `items` table.
fn stored_ids(url: &str) -> BTreeMap<String, usize> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(url)
            .await
            .expect("opening the database");
        let rows: Vec<(String,)> = sqlx::query_as("SELECT data FROM items")
            .fetch_all(&pool)
            .await
            .expect("reading items");
        let mut counts = BTreeMap::new();
        for (data,) in rows {
            let v: Value = serde_json::from_str(&data).unwrap();
            if let Some(id) = v["id"].as_str() {
                *counts.entry(id.to_owned()).or_default() += 1;
            }
        }
        counts
    })
}

#[test]
fn the_edge_holds_through_killed_origins_and_a_database_restart() {
    let database = postgres();
    let mut builder = StackBuilder::new(three_origins()).config_override(config());
    if let Some(url) = &database {
        builder = builder.origin_env(vec![("DATABASE_URL", url.as_str())]);
    }
    let (mut stack, spec) = builder.start_with_spec();
    let base = stack.edge_url();
    let account = sign_up(&base, REGION, "chaos@example.com");
    let (token, user_id) = (account.token, account.id);
    let timeline = Arc::new(Timeline(Mutex::new(vec![(Instant::now(), World::AllUp)])));
    let load = Arc::new(Load {
        base,
        token,
        user_id,
        timeline: timeline.clone(),
        outcomes: Mutex::new(Vec::new()),
        stop: AtomicBool::new(false),
        next_id: AtomicUsize::new(0),
    });
    let kinds = [
        Kind::UncachedRead,
        Kind::CachedRead,
        Kind::KeyedWrite,
        Kind::PlainWrite,
    ];
    let workers: Vec<_> = kinds
        .into_iter()
        .map(|kind| {
            let load = load.clone();
            std::thread::spawn(move || load.run(kind))
        })
        .collect();
    unleash(&mut stack, &spec, &timeline, database.is_some());
    load.stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.join().unwrap();
    }
    let url =
        database.unwrap_or_else(|| format!("sqlite://{}/fastgate.db", spec.data_dir.display()));
    judge(&load.outcomes.lock().unwrap(), &stored_ids(&url));
}

/// The figures (printed for the note), then the assertions.
fn judge(outcomes: &[Outcome], stored: &BTreeMap<String, usize>) {
    let mut table: BTreeMap<(Kind, World), (usize, usize)> = BTreeMap::new();
    for o in outcomes {
        let cell = table.entry((o.kind, o.world)).or_default();
        cell.0 += 1;
        cell.1 += usize::from(!(200..300).contains(&o.status));
    }
    for ((kind, world), (sent, failed)) in &table {
        eprintln!("chaos: {kind:?} while {world:?}: {sent} sent, {failed} failed");
    }
    let failed = |kind: Kind, worlds: &[World]| -> Vec<u16> {
        outcomes
            .iter()
            .filter(|o| o.kind == kind && worlds.contains(&o.world))
            .filter(|o| !(200..300).contains(&o.status))
            .map(|o| o.status)
            .collect()
    };
    // While the database restarts the origins are up but their queries in flight at the
    // restart fail: those are counted above and held to "stored exactly once" below, not
    // to "never fails".
    let any_up = [World::AllUp, World::SomeDown];
    assert_eq!(
        failed(Kind::UncachedRead, &any_up),
        [0u16; 0],
        "reads failed with an origin up"
    );
    let every = [
        World::AllUp,
        World::SomeDown,
        World::DatabaseRestarting,
        World::AllDown,
    ];
    assert_eq!(
        failed(Kind::CachedRead, &every),
        [0u16; 0],
        "cached reads failed"
    );
    let cached_all_down = table
        .get(&(Kind::CachedRead, World::AllDown))
        .map_or(0, |c| c.0);
    assert!(
        cached_all_down > 10,
        "cached reads while all were down: {cached_all_down}"
    );
    assert_eq!(
        failed(Kind::KeyedWrite, &any_up),
        [0u16; 0],
        "keyed writes failed with an origin up"
    );
    judge_writes(outcomes, stored);
}

/// Exactly once for what was accepted (and for every keyed write, which its client retried
/// until accepted); never twice for anything.
fn judge_writes(outcomes: &[Outcome], stored: &BTreeMap<String, usize>) {
    let accepted: std::collections::BTreeSet<&str> = outcomes
        .iter()
        .filter(|o| matches!(o.kind, Kind::KeyedWrite | Kind::PlainWrite))
        .filter(|o| (200..300).contains(&o.status))
        .filter_map(|o| o.id.as_deref())
        .collect();
    let lost: Vec<&&str> = accepted
        .iter()
        .filter(|id| stored.get(**id).copied() != Some(1))
        .collect();
    let twice: Vec<(&String, &usize)> = stored.iter().filter(|(_, n)| **n > 1).collect();
    eprintln!(
        "chaos: {} writes accepted, {} stored, {} lost or duplicated, {} stored twice",
        accepted.len(),
        stored.len(),
        lost.len(),
        twice.len()
    );
    assert!(accepted.len() > 20, "the writers ran");
    assert!(
        lost.is_empty(),
        "accepted writes not stored exactly once: {lost:?}"
    );
    assert!(twice.is_empty(), "writes stored more than once: {twice:?}");
}
