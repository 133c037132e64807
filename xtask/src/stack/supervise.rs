//! Restart policy for the stack's children, and the signals `cargo xtask serve` obeys.
//!
//! A child that dies is restarted after a delay that doubles with each quick death (100 ms
//! up to 5 s), so a crash loop (a port taken, a broken binary) costs a few lines of log per
//! second rather than a spinning CPU, while a one-off crash is repaired at once. A child
//! that stayed up for [`STABLE_AFTER`] counts as healthy again: its next death starts over
//! at 100 ms.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};

/// The first restart delay.
pub const INITIAL_DELAY: Duration = Duration::from_millis(100);
/// The longest restart delay.
pub const MAX_DELAY: Duration = Duration::from_secs(5);
/// A child that ran this long before dying gets the initial delay again.
pub const STABLE_AFTER: Duration = Duration::from_secs(10);

/// Exponential backoff between restarts of one child.
#[derive(Debug, Clone)]
pub struct Backoff {
    delay: Duration,
    /// Restarts so far, for the log.
    pub restarts: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            delay: INITIAL_DELAY,
            restarts: 0,
        }
    }
}

impl Backoff {
    /// The wait before restarting a child that died after running for `uptime`; each
    /// call counts one restart.
    pub fn next_delay(&mut self, uptime: Duration) -> Duration {
        if uptime >= STABLE_AFTER {
            self.delay = INITIAL_DELAY;
        }
        let delay = self.delay;
        self.delay = (self.delay * 2).min(MAX_DELAY);
        self.restarts += 1;
        delay
    }
}

static STOP: AtomicBool = AtomicBool::new(false);
static ROLLING_RESTART: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(signal: nix::libc::c_int) {
    // Only atomic stores: nothing else is async-signal-safe.
    if signal == nix::libc::SIGHUP {
        ROLLING_RESTART.store(true, Ordering::SeqCst);
    } else {
        STOP.store(true, Ordering::SeqCst);
    }
}

/// Routes SIGINT and SIGTERM to "stop everything" and SIGHUP to "rolling restart of the
/// origins". Not `ctrlc`: its termination feature takes SIGHUP for a stop as well.
pub fn install_signal_handlers() -> Result<()> {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let action = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: the handler only stores to atomics.
        unsafe { sigaction(signal, &action) }.with_context(|| format!("installing {signal}"))?;
    }
    Ok(())
}

/// True once SIGINT or SIGTERM arrived.
pub fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// True when SIGHUP is pending (without consuming it).
pub fn rolling_restart_pending() -> bool {
    ROLLING_RESTART.load(Ordering::SeqCst)
}

/// Consumes a pending SIGHUP: true when one arrived since the last call.
pub fn take_rolling_restart() -> bool {
    ROLLING_RESTART.swap(false, Ordering::SeqCst)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap_and_resets_after_a_stable_run() {
        let mut b = Backoff::default();
        let quick = Duration::from_millis(50);
        let delays: Vec<u128> = (0..8).map(|_| b.next_delay(quick).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        assert_eq!(b.next_delay(STABLE_AFTER), INITIAL_DELAY);
        assert_eq!(b.next_delay(quick), INITIAL_DELAY * 2);
        assert_eq!(b.restarts, 10);
    }
}
