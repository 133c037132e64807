//! Private stays private: the `Cache-Control` an answer leaves the edge with when it is
//! one user's, however it was produced (a hit, a miss, a bypass, an error, a 304). The
//! adapter's response filter applies [`private_cache_control`] to every answer, so no path
//! through the cache phase, or around it, can forget it.
//!
//! The rule:
//! - on a route whose cache mode is `per_user`, the answer always carries plain `private`;
//!   the origin's `public` and `s-maxage` (shared-cache permissions) are dropped, its other
//!   directives (`max-age`, `no-store`, …) kept;
//! - on any other route, an answer to a request whose credentials authenticated a user
//!   gets `private` too, unless the origin said who may share it: `public` or `s-maxage`
//!   (it meant shared caches to keep it, as RFC 9111 §3.5 allows), `no-store` (nobody
//!   keeps it), or `private` already. This covers aliases such as `/v1/user/profile`,
//!   whose own route has no cache policy but whose answer is the per-user one.

use super::cache_control::each_directive;
use crate::http::is_token;

/// The `Cache-Control` value the answer must leave with, or `None` when what it has (given
/// as all its `Cache-Control` fields joined with `,`) may stay. See the module doc.
pub fn private_cache_control(
    existing: Option<&str>,
    per_user_route: bool,
    authenticated: bool,
) -> Option<String> {
    if !per_user_route && !authenticated {
        return None;
    }
    let mut kept: Vec<String> = Vec::new();
    let (mut private, mut shared, mut no_store) = (false, false, false);
    each_directive(existing.unwrap_or_default(), |name, arg| {
        let is = |d: &str| name.eq_ignore_ascii_case(d);
        if is("private") {
            // `private="field"` only hides those fields: replaced by the plain form.
            private |= arg.is_none();
        } else if is("public") || is("s-maxage") {
            shared = true;
        } else {
            no_store |= is("no-store");
            kept.push(directive(name, arg));
        }
    });
    let may_stay = if per_user_route {
        private && !shared
    } else {
        private || shared || no_store
    };
    if may_stay {
        return None;
    }
    let mut value = String::from("private");
    for d in kept {
        value.push_str(", ");
        value.push_str(&d);
    }
    Some(value)
}

/// One directive written back: its argument bare when it is a token, else quoted (the
/// parser left any escapes in it as they were).
fn directive(name: &str, arg: Option<&str>) -> String {
    match arg {
        None => name.to_owned(),
        Some(a) if is_token(a) => format!("{name}={a}"),
        Some(a) => format!("{name}=\"{a}\""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn per_user(existing: Option<&str>) -> Option<String> {
        private_cache_control(existing, true, true)
    }

    fn authenticated(existing: Option<&str>) -> Option<String> {
        private_cache_control(existing, false, true)
    }

    /// Defect 7: a per-user answer that bypassed the cache (or an error, or a 304) kept the
    /// origin's `max-age=300` and left without `private`.
    #[test]
    fn per_user_answers_always_leave_private_with_the_origins_max_age() {
        assert_eq!(
            per_user(Some("max-age=300")).as_deref(),
            Some("private, max-age=300")
        );
        assert_eq!(per_user(None).as_deref(), Some("private"));
        assert_eq!(per_user(Some("")).as_deref(), Some("private"));
        assert_eq!(
            per_user(Some("public, max-age=60, s-maxage=600")).as_deref(),
            Some("private, max-age=60")
        );
        assert_eq!(
            per_user(Some("no-store")).as_deref(),
            Some("private, no-store")
        );
        assert_eq!(
            per_user(Some(r#"private="set-cookie", max-age=5"#)).as_deref(),
            Some("private, max-age=5")
        );
        assert_eq!(
            per_user(Some(r#"max-age=5, no-cache="a, b""#)).as_deref(),
            Some(r#"private, max-age=5, no-cache="a, b""#)
        );
        // What the cache phase already made private stays as it is.
        assert_eq!(per_user(Some("private, max-age=42")), None);
        assert_eq!(per_user(Some("PRIVATE")), None);
        // The rule holds for an anonymous request on the route too.
        assert_eq!(
            private_cache_control(Some("max-age=1"), true, false).as_deref(),
            Some("private, max-age=1")
        );
    }

    /// Defect 7 through an alias: `/v1/user/profile`'s own route has no cache policy, but
    /// its answer is the caller's own.
    #[test]
    fn authenticated_answers_are_private_unless_the_origin_said_who_may_share_them() {
        assert_eq!(
            authenticated(Some("max-age=300")).as_deref(),
            Some("private, max-age=300")
        );
        assert_eq!(authenticated(None).as_deref(), Some("private"));
        for shared in [
            "public, max-age=300",
            "s-maxage=60",
            "no-store",
            "private",
            "private, max-age=3",
        ] {
            assert_eq!(authenticated(Some(shared)), None, "{shared}");
        }
        // Nobody authenticated, not per-user: the origin's field stands.
        assert_eq!(
            private_cache_control(Some("max-age=300"), false, false),
            None
        );
        assert_eq!(private_cache_control(None, false, false), None);
    }

    #[test]
    fn garbage_never_panics_and_always_comes_out_private() {
        for junk in [",,,", "=", "\"", "max-age=\"", "a=\"\\", "é=ü, x"] {
            let out = per_user(Some(junk)).unwrap();
            assert!(out.starts_with("private"), "{junk:?} -> {out:?}");
        }
    }
}
