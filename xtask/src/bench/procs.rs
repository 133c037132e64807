//! Server processes for the benchmark, each in its own process group so that one signal
//! reaches a server and every worker it forked (uvicorn's `--workers` children), and a
//! sampler of each group's resident memory.
//!
//! Dropping a [`Server`] sends SIGTERM to its group, waits briefly, then SIGKILLs whatever
//! is left and waits until the group is empty: nothing outlives the benchmark, also on an
//! error or Ctrl-C (the caller turns Ctrl-C into an early return, which drops the guards;
//! [`stop_flag`] is how it learns of the Ctrl-C).

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::http;

/// The process-wide Ctrl-C flag every benchmark polls (the handler can be set only once).
pub fn stop_flag() -> Result<Arc<AtomicBool>> {
    static STOP: std::sync::OnceLock<Arc<AtomicBool>> = std::sync::OnceLock::new();
    if let Some(stop) = STOP.get() {
        return Ok(stop.clone());
    }
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))?;
    Ok(STOP.get_or_init(|| stop).clone())
}

/// A running server under test. Kill it by dropping it.
pub struct Server {
    pub name: &'static str,
    pub addr: SocketAddr,
    child: Child,
    log: PathBuf,
}

impl Server {
    /// Spawns `cmd` as the leader of a new process group, output to `log`.
    pub fn spawn(
        name: &'static str,
        mut cmd: Command,
        addr: SocketAddr,
        log: PathBuf,
    ) -> Result<Server> {
        let out = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        cmd.stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .process_group(0);
        let child = cmd
            .spawn()
            .with_context(|| format!("could not start {name}: {cmd:?}"))?;
        Ok(Server {
            name,
            addr,
            child,
            log,
        })
    }

    /// The group leader's pid (also the process group id).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Polls `GET /health` until it answers 200, the server dies, `stop` is set, or time
    /// runs out.
    pub fn wait_ready(&mut self, stop: &AtomicBool, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if stop.load(Ordering::SeqCst) {
                bail!("interrupted");
            }
            if let Some(status) = self.child.try_wait()? {
                bail!("{} exited with {status}{}", self.name, self.log_tail());
            }
            if let Ok(resp) = http::request(self.addr, "GET", "/health", None, None) {
                if resp.status == 200 {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "{} not ready on {}{}",
                    self.name,
                    self.addr,
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Fails (with the log's tail) when the server has exited.
    pub fn check_alive(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("{} exited with {status}{}", self.name, self.log_tail());
        }
        Ok(())
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = &lines[lines.len().saturating_sub(20)..];
        format!("\n--- {} ---\n{}", self.log.display(), tail.join("\n"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let pgid = self.child.id();
        signal_group(pgid, "TERM");
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) && group_members(pgid).is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // Whatever ignored SIGTERM, the leader or a worker it left behind.
        signal_group(pgid, "KILL");
        let _ = self.child.kill();
        let _ = self.child.wait();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !group_members(pgid).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// `kill -<sig> -- -<pgid>`: std can only signal its own children, and only with SIGKILL.
fn signal_group(pgid: u32, sig: &str) {
    let _ = Command::new("kill")
        .args([format!("-{sig}"), "--".into(), format!("-{pgid}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// The fields of `/proc/<pid>/stat` the benchmark uses.
#[derive(Debug, Clone, Copy)]
struct Stat {
    ppid: u32,
    pgrp: u32,
    zombie: bool,
    /// utime + stime, in clock ticks.
    cpu_ticks: u64,
    /// stime alone: time in the kernel on the process's behalf.
    sys_ticks: u64,
}

fn stat(pid: u32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields = stat_fields(&text)?;
    let num = |i: usize| fields.get(i)?.parse::<u64>().ok();
    Some(Stat {
        zombie: *fields.first()? == "Z",
        ppid: num(1)? as u32,
        pgrp: num(2)? as u32,
        cpu_ticks: num(11)? + num(12)?,
        sys_ticks: num(12)?,
    })
}

/// The fields of a `/proc/<pid>/stat` line after `pid (comm)`, from `state` on; comm may
/// hold spaces and parentheses, so the split starts after the last `)`.
fn stat_fields(text: &str) -> Option<Vec<&str>> {
    Some(text[text.rfind(')')? + 1..].split_whitespace().collect())
}

/// CPU time, split into total and the part spent in the kernel.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuTime {
    /// user + system seconds.
    pub total_s: f64,
    /// system seconds.
    pub kernel_s: f64,
}

impl std::ops::Sub for CpuTime {
    type Output = CpuTime;
    fn sub(self, earlier: CpuTime) -> CpuTime {
        CpuTime {
            total_s: self.total_s - earlier.total_s,
            kernel_s: self.kernel_s - earlier.kernel_s,
        }
    }
}

/// CPU time of this process's children that have exited and been waited for (`cutime` and
/// `cstime` in `/proc/self/stat`): the difference across one load-generator run is that
/// run's own cost, which it pays on the same cores as the server.
pub fn reaped_children_cpu() -> CpuTime {
    let text = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields = stat_fields(&text).unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let (user, system) = (ticks(13), ticks(14));
    CpuTime {
        total_s: (user + system) / USER_HZ,
        kernel_s: system / USER_HZ,
    }
}

/// Clock ticks per second in `/proc/<pid>/stat` (USER_HZ, 100 on every Linux ABI).
const USER_HZ: f64 = 100.0;

/// CPU time spent so far by `root`'s tree.
pub fn tree_cpu(root: u32) -> CpuTime {
    let table = proc_table();
    let members = tree(root, &table);
    let sum = |f: fn(&Stat) -> u64| -> f64 {
        members
            .iter()
            .filter_map(|p| table.get(p).map(f))
            .sum::<u64>() as f64
            / USER_HZ
    };
    CpuTime {
        total_s: sum(|s| s.cpu_ticks),
        kernel_s: sum(|s| s.sys_ticks),
    }
}

fn proc_table() -> HashMap<u32, Stat> {
    all_pids()
        .into_iter()
        .filter_map(|p| stat(p).map(|s| (p, s)))
        .collect()
}

fn all_pids() -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// Live (non-zombie) processes in group `pgid`.
fn group_members(pgid: u32) -> Vec<u32> {
    all_pids()
        .into_iter()
        .filter(|&p| matches!(stat(p), Some(s) if s.pgrp == pgid && !s.zombie))
        .collect()
}

/// `root`, its descendants, and anything else in its process group.
fn tree(root: u32, table: &HashMap<u32, Stat>) -> HashSet<u32> {
    let mut set: HashSet<u32> = table
        .iter()
        .filter(|(_, s)| s.pgrp == root)
        .map(|(pid, _)| *pid)
        .collect();
    set.insert(root);
    loop {
        let before = set.len();
        for (pid, s) in table {
            if set.contains(&s.ppid) {
                set.insert(*pid);
            }
        }
        if set.len() == before {
            return set;
        }
    }
}

fn vm_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Summed VmRSS (KiB) and process count of each root's tree.
fn sample(roots: &[u32]) -> Vec<(u64, usize)> {
    let table = proc_table();
    roots
        .iter()
        .map(|&root| {
            let procs = tree(root, &table);
            (procs.iter().map(|&p| vm_rss_kib(p)).sum(), procs.len())
        })
        .collect()
}

#[derive(Debug, Clone, Default)]
struct Peaks {
    /// Peak since the last [`RssSampler::reset_window`], per root (KiB).
    window: Vec<u64>,
    /// Peak over the whole run, per root (KiB).
    overall: Vec<u64>,
    /// Most processes seen in each tree.
    procs: Vec<usize>,
}

/// Polls the summed VmRSS of each server's process tree every 100 ms on a thread.
pub struct RssSampler {
    stop: Arc<AtomicBool>,
    peaks: Arc<Mutex<Peaks>>,
    handle: Option<JoinHandle<()>>,
}

impl RssSampler {
    pub fn start(roots: Vec<u32>) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let peaks = Arc::new(Mutex::new(Peaks {
            window: vec![0; roots.len()],
            overall: vec![0; roots.len()],
            procs: vec![0; roots.len()],
        }));
        let handle = {
            let (stop, peaks) = (stop.clone(), peaks.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let now = sample(&roots);
                    if let Ok(mut p) = peaks.lock() {
                        for (i, (kib, n)) in now.into_iter().enumerate() {
                            p.window[i] = p.window[i].max(kib);
                            p.overall[i] = p.overall[i].max(kib);
                            p.procs[i] = p.procs[i].max(n);
                        }
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            })
        };
        RssSampler {
            stop,
            peaks,
            handle: Some(handle),
        }
    }

    fn peaks(&self) -> Peaks {
        self.peaks.lock().map(|p| p.clone()).unwrap_or_default()
    }

    pub fn reset_window(&self) {
        if let Ok(mut p) = self.peaks.lock() {
            p.window.iter_mut().for_each(|v| *v = 0);
        }
    }

    /// Peak KiB per root since the last reset.
    pub fn window(&self) -> Vec<u64> {
        self.peaks().window
    }

    /// Peak KiB per root over the whole run.
    pub fn overall(&self) -> Vec<u64> {
        self.peaks().overall
    }

    /// Most processes seen per root's tree.
    pub fn procs(&self) -> Vec<usize> {
        self.peaks().procs
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// A scratch directory removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(prefix: &str) -> Result<Scratch> {
        let dir = std::env::temp_dir().join(format!("{prefix}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_takes_descendants_and_group() {
        // pid -> (ppid, pgrp)
        let table: HashMap<u32, Stat> = [
            (10, (1, 10)),
            (11, (10, 10)),
            (12, (11, 10)),
            (13, (1, 10)), // orphaned worker, still in the group
            (20, (1, 20)),
        ]
        .into_iter()
        .map(|(pid, (ppid, pgrp))| {
            let s = Stat {
                ppid,
                pgrp,
                zombie: false,
                cpu_ticks: 1,
                sys_ticks: 0,
            };
            (pid, s)
        })
        .collect();
        let mut got: Vec<u32> = tree(10, &table).into_iter().collect();
        got.sort();
        assert_eq!(got, vec![10, 11, 12, 13]);
    }

    #[test]
    fn own_stat_parses() {
        let me = stat(std::process::id()).expect("own stat");
        assert!(me.ppid > 0);
        assert!(!me.zombie);
        let spin = std::time::Instant::now();
        while spin.elapsed() < Duration::from_millis(50) {
            std::hint::black_box(0);
        }
        let cpu = tree_cpu(std::process::id());
        assert!(cpu.total_s > 0.0 && cpu.kernel_s <= cpu.total_s);
        assert!(vm_rss_kib(std::process::id()) > 0);
    }
}
