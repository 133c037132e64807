//! The config an instance keeps between the requests it serves.
//!
//! A Compute instance may serve several requests in turn (reusable sandboxes). Parsing and
//! validating the config is the largest single piece of per-request work when done every
//! time (tens of µs natively, several times that in Wasm), yet its inputs rarely change:
//! the embedded text is fixed at build time and the Config Store's entries change when ops
//! push. So the compiled value is kept, keyed by the exact text it was compiled from. The
//! store itself is read again at most every [`RECHECK`]: reading a config of several KB out
//! of it costs more than everything else the request does before its cache lookup, and the
//! platform's own propagation of a push takes seconds, so a push still takes effect within
//! a second of reaching the POP.

use std::rc::Rc;
use std::time::{Duration, Instant};

/// How long a kept config is used without reading the store again.
pub const RECHECK: Duration = Duration::from_secs(1);

/// The Config Store's `config` and `flags` entries, as read.
type Source = (Option<String>, Option<String>);

/// One compiled value, reused while the text it came from is unchanged.
pub struct InstanceCache<T> {
    slot: Option<(Source, Rc<T>)>,
    /// When the store's text was last read and compared.
    checked_at: Option<Instant>,
}

impl<T> Default for InstanceCache<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> InstanceCache<T> {
    pub const fn new() -> Self {
        InstanceCache {
            slot: None,
            checked_at: None,
        }
    }

    /// The kept value, when the store was read less than [`RECHECK`] before `now`; `None`
    /// means: read the store and call [`get_or_compile`](Self::get_or_compile).
    pub fn recent(&self, now: Instant) -> Option<Rc<T>> {
        let checked_at = self.checked_at?;
        let (_, value) = self.slot.as_ref()?;
        (now.saturating_duration_since(checked_at) < RECHECK).then(|| Rc::clone(value))
    }

    /// The value for `config` and `flags` (the store's entries as read at `now`): the
    /// kept one when both texts are the same, else what `compile` makes of them, which is
    /// then kept. An error is not kept, so the next request tries again.
    pub fn get_or_compile<E>(
        &mut self,
        config: Option<&str>,
        flags: Option<&str>,
        now: Instant,
        compile: impl FnOnce(Option<&str>, Option<&str>) -> Result<T, E>,
    ) -> Result<Rc<T>, E> {
        self.checked_at = Some(now);
        if let Some(((c, f), value)) = &self.slot {
            if c.as_deref() == config && f.as_deref() == flags {
                return Ok(Rc::clone(value));
            }
        }
        let value = Rc::new(compile(config, flags)?);
        let source = (config.map(str::to_owned), flags.map(str::to_owned));
        self.slot = Some((source, Rc::clone(&value)));
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiles_once_per_text_and_again_when_it_changes() {
        let mut cache = InstanceCache::new();
        let mut compiled = 0;
        let mut get = |c: Option<&str>, f: Option<&str>| {
            cache
                .get_or_compile(c, f, Instant::now(), |c, f| {
                    compiled += 1;
                    Ok::<_, ()>(format!("{c:?}/{f:?}"))
                })
                .unwrap()
        };
        assert_eq!(*get(None, None), "None/None");
        assert_eq!(*get(None, None), "None/None");
        assert_eq!(*get(Some("a"), None), r#"Some("a")/None"#);
        assert_eq!(*get(Some("a"), Some("f")), r#"Some("a")/Some("f")"#);
        assert_eq!(*get(Some("a"), Some("f")), r#"Some("a")/Some("f")"#);
        assert_eq!(*get(None, None), "None/None");
        assert_eq!(compiled, 4);
    }

    #[test]
    fn an_error_is_not_kept() {
        let mut cache = InstanceCache::<u8>::new();
        assert!(cache
            .get_or_compile(None, None, Instant::now(), |_, _| Err("bad"))
            .is_err());
        assert_eq!(
            *cache
                .get_or_compile(None, None, Instant::now(), |_, _| Ok::<_, &str>(7))
                .unwrap(),
            7
        );
        // A later failure for other text leaves the kept value in place for its own text.
        assert!(cache
            .get_or_compile(Some("x"), None, Instant::now(), |_, _| Err("bad"))
            .is_err());
        assert_eq!(
            *cache
                .get_or_compile(None, None, Instant::now(), |_, _| Err("unused"))
                .unwrap(),
            7
        );
    }

    #[test]
    fn the_store_is_read_again_once_the_recheck_interval_has_passed() {
        let mut cache = InstanceCache::<u8>::new();
        let t0 = Instant::now();
        assert!(cache.recent(t0).is_none(), "nothing kept yet");
        cache
            .get_or_compile(None, None, t0, |_, _| Ok::<_, ()>(1))
            .unwrap();
        assert_eq!(cache.recent(t0 + RECHECK / 2).as_deref(), Some(&1));
        assert!(cache.recent(t0 + RECHECK).is_none());
        // Reading it again (same text) restarts the interval without compiling.
        let later = t0 + RECHECK * 3;
        let kept = cache
            .get_or_compile(None, None, later, |_, _| Err(()))
            .unwrap();
        assert_eq!(*kept, 1);
        assert_eq!(cache.recent(later).as_deref(), Some(&1));
    }
}
