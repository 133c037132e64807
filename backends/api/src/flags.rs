//! Feature flags from the edge's `Fastgate-Flags` header: a comma-separated list of
//! `name=value` or bare `name` (meaning on). The origin's env default applies when the
//! header does not mention a flag.
//!
//! With edge-signature enforcement on (the default) the header is covered by the edge's
//! signature: an unsigned request never reaches a handler, and the exempt paths get it
//! removed. With enforcement off (a bare origin run) it is read as sent.

use axum::http::HeaderMap;

pub use fastgate_wire::FLAGS_HEADER;

/// The value of flag `name` in the request's flags header, if it is set there.
pub fn flag(headers: &HeaderMap, name: &str) -> Option<bool> {
    headers
        .get_all(FLAGS_HEADER)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|item| {
            let (key, value) = match item.split_once('=') {
                Some((k, v)) => (k.trim(), Some(v.trim())),
                None => (item.trim(), None),
            };
            (key == name).then(|| parse_bool(value))
        })
        .next_back()
        .flatten()
}

fn parse_bool(value: Option<&str>) -> Option<bool> {
    match value.map(str::to_ascii_lowercase).as_deref() {
        None | Some("1" | "true" | "on" | "yes") => Some(true),
        Some("0" | "false" | "off" | "no") => Some(false),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(v: &str) -> HeaderMap {
        let mut m = HeaderMap::new();
        m.insert(FLAGS_HEADER, v.parse().unwrap());
        m
    }

    #[test]
    fn parses_lists_and_bare_names() {
        assert_eq!(flag(&h("new_schema=1,other=0"), "new_schema"), Some(true));
        assert_eq!(flag(&h("other=1, new_schema=0"), "new_schema"), Some(false));
        assert_eq!(flag(&h("new_schema"), "new_schema"), Some(true));
        assert_eq!(flag(&h("new_schema_x=1"), "new_schema"), None);
        assert_eq!(flag(&HeaderMap::new(), "new_schema"), None);
    }
}
