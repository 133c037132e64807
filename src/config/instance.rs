//! The config an instance keeps between the requests it serves.
//!
//! A Compute instance may serve several requests in turn (reusable sandboxes). Parsing and
//! validating the config is the largest single piece of per-request work when done every
//! time (tens of µs natively, several times that in Wasm), yet its inputs rarely change:
//! the embedded text is fixed at build time and the Config Store's entries change when ops
//! push. So the compiled value is kept, keyed by the exact text it was compiled from; each
//! request still reads the store and compares, so a push takes effect on the next request.

use std::rc::Rc;

/// The Config Store's `config` and `flags` entries, as read.
type Source = (Option<String>, Option<String>);

/// One compiled value, reused while the text it came from is unchanged.
pub struct InstanceCache<T> {
    slot: Option<(Source, Rc<T>)>,
}

impl<T> Default for InstanceCache<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> InstanceCache<T> {
    pub const fn new() -> Self {
        InstanceCache { slot: None }
    }

    /// The value for `config` and `flags` (the store's entries as read this request): the
    /// kept one when both texts are the same, else what `compile` makes of them, which is
    /// then kept. An error is not kept, so the next request tries again.
    pub fn get_or_compile<E>(
        &mut self,
        config: Option<&str>,
        flags: Option<&str>,
        compile: impl FnOnce(Option<&str>, Option<&str>) -> Result<T, E>,
    ) -> Result<Rc<T>, E> {
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
                .get_or_compile(c, f, |c, f| {
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
        assert!(cache.get_or_compile(None, None, |_, _| Err("bad")).is_err());
        assert_eq!(
            *cache
                .get_or_compile(None, None, |_, _| Ok::<_, &str>(7))
                .unwrap(),
            7
        );
        // A later failure for other text leaves the kept value in place for its own text.
        assert!(cache
            .get_or_compile(Some("x"), None, |_, _| Err("bad"))
            .is_err());
        assert_eq!(
            *cache
                .get_or_compile(None, None, |_, _| Err("unused"))
                .unwrap(),
            7
        );
    }
}
