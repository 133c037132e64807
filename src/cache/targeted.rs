//! `CDN-Cache-Control` (RFC 9213): cache directives aimed at CDNs only. The edge is one, so
//! when an origin sends a valid `CDN-Cache-Control` it decides freshness and storage
//! instead of `Cache-Control` and `Expires` (§2.1); those still reach the client, whose
//! caches they are for.
//!
//! Unlike `Cache-Control`, the field is a Structured Field dictionary (RFC 9651), parsed
//! with `sfv`. A value that is not a valid dictionary, or whose known directive has the
//! wrong type (`max-age="60"`), is ignored as a whole (§2.1), and the response's
//! `Cache-Control` applies as if it were absent.

use sfv::{BareItem, Dictionary, ListEntry, Parser};

use super::cache_control::{CacheControl, DELTA_SECONDS_CAP};

/// The field's name.
pub const CDN_CACHE_CONTROL: &str = "CDN-Cache-Control";

/// The directives of the response's `CDN-Cache-Control`, combined over all its field lines;
/// `None` when it has none, or when the value is invalid (then it is ignored).
pub fn cdn_cache_control<N: AsRef<str>, V: AsRef<str>>(headers: &[(N, V)]) -> Option<CacheControl> {
    let lines: Vec<&str> = headers
        .iter()
        .filter(|(n, _)| n.as_ref().eq_ignore_ascii_case(CDN_CACHE_CONTROL))
        .map(|(_, v)| v.as_ref())
        .collect();
    if lines.is_empty() {
        return None;
    }
    // Field lines of a dictionary combine with `,` (RFC 9651 §4.2).
    let dict: Dictionary = Parser::new(&lines.join(", ")).parse_dictionary().ok()?;
    let mut cc = CacheControl::default();
    for (key, entry) in &dict {
        apply(&mut cc, key.as_str(), entry)?;
    }
    Some(cc)
}

/// Records one directive; `None` when a known one has the wrong type.
fn apply(cc: &mut CacheControl, name: &str, entry: &ListEntry) -> Option<()> {
    let ListEntry::Item(item) = entry else {
        return known(name).is_none().then_some(());
    };
    let value = &item.bare_item;
    match known(name) {
        Some(Kind::Delta(slot)) => *slot(cc) = Some(delta(value)?),
        Some(Kind::Flag(slot)) => *slot(cc) = flag(value)?,
        None => {}
    }
    Some(())
}

/// How a known directive is typed, and where it goes.
enum Kind {
    Delta(fn(&mut CacheControl) -> &mut Option<u64>),
    Flag(fn(&mut CacheControl) -> &mut bool),
}

fn known(name: &str) -> Option<Kind> {
    Some(match name {
        "max-age" => Kind::Delta(|c| &mut c.max_age),
        "s-maxage" => Kind::Delta(|c| &mut c.s_maxage),
        "stale-while-revalidate" => Kind::Delta(|c| &mut c.stale_while_revalidate),
        "stale-if-error" => Kind::Delta(|c| &mut c.stale_if_error),
        "no-store" => Kind::Flag(|c| &mut c.no_store),
        "no-cache" => Kind::Flag(|c| &mut c.no_cache),
        "private" => Kind::Flag(|c| &mut c.private),
        "public" => Kind::Flag(|c| &mut c.public),
        "must-revalidate" => Kind::Flag(|c| &mut c.must_revalidate),
        "proxy-revalidate" => Kind::Flag(|c| &mut c.proxy_revalidate),
        "must-understand" => Kind::Flag(|c| &mut c.must_understand),
        _ => return None,
    })
}

/// A delta-seconds directive is a non-negative Integer, capped at 2^31 (RFC 9111 §1.2.2).
fn delta(value: &BareItem) -> Option<u64> {
    let n = i64::from(value.as_integer()?);
    u64::try_from(n).ok().map(|n| n.min(DELTA_SECONDS_CAP))
}

/// A flag is a Boolean (a bare key is `true`); `no-cache` and `private` may also carry a
/// String of field names, which a shared cache reads as the plain directive.
fn flag(value: &BareItem) -> Option<bool> {
    match value {
        BareItem::Boolean(b) => Some(*b),
        BareItem::String(_) => Some(true),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cdn(value: &str) -> Option<CacheControl> {
        cdn_cache_control(&[("CDN-Cache-Control", value)])
    }

    #[test]
    fn directives_are_read_as_a_dictionary() {
        let cc = cdn("max-age=3600, stale-if-error=60, foobar").unwrap();
        assert_eq!((cc.max_age, cc.stale_if_error), (Some(3600), Some(60)));
        assert!(cdn("no-store").unwrap().no_store);
        assert!(cdn("private").unwrap().private);
        assert!(cdn("no-cache=\"set-cookie\"").unwrap().no_cache);
        assert_eq!(
            cdn("max-age=99999999999").unwrap().max_age,
            Some(DELTA_SECONDS_CAP)
        );
        assert_eq!(cdn_cache_control::<&str, &str>(&[]), None);
        // Two field lines are one dictionary.
        let two = [
            ("cdn-cache-control", "max-age=10"),
            ("CDN-Cache-Control", "public"),
        ];
        let cc = cdn_cache_control(&two).unwrap();
        assert!(cc.public && cc.max_age == Some(10));
    }

    #[test]
    fn an_invalid_value_is_ignored_whole() {
        for bad in [
            "max-age=10000, &&&&&",
            "max-age=\"10000\"",
            "max-age=-1",
            "max-age=1.5",
            "no-store=3",
            "max-age =100",
            "MaX-aGe=3600",
            "max-age=(1 2)",
        ] {
            assert_eq!(cdn(bad), None, "{bad:?}");
        }
    }
}
