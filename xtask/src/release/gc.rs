//! What `cargo xtask release gc` deletes, computed without touching a store.
//!
//! Releases are dropped oldest first (by `created`, then name), never the active one;
//! then every content-hashed key (`files/*`, `configs/*`) that no remaining manifest
//! refers to goes. Manifests are deleted before the values they referred to, so a
//! manifest never names a missing value, even if gc stops halfway.
//!
//! Not safe to run while a publish is uploading: its files are stored before its
//! manifest, so for a moment nothing refers to them. The edge then refuses that
//! manifest (a referenced key is missing) and the publish fails cleanly; run it again.

use std::collections::BTreeSet;

use fastgate::release::Manifest;

/// The releases to delete to keep the `keep` newest (and always `active`); none when
/// `keep` is `None`. `releases` is `(name, created)`.
pub fn releases_to_drop(
    releases: &[(String, u64)],
    active: Option<&str>,
    keep: Option<usize>,
) -> Vec<String> {
    let Some(keep) = keep else {
        return Vec::new();
    };
    let mut newest_first: Vec<&(String, u64)> = releases.iter().collect();
    newest_first.sort_by(|a, b| (b.1, &b.0).cmp(&(a.1, &a.0)));
    let mut drop: Vec<String> = newest_first
        .into_iter()
        .skip(keep)
        .filter(|(name, _)| Some(name.as_str()) != active)
        .map(|(name, _)| name.clone())
        .collect();
    drop.sort();
    drop
}

/// Every key the manifests refer to.
pub fn referenced<'a>(manifests: impl IntoIterator<Item = &'a Manifest>) -> BTreeSet<String> {
    manifests
        .into_iter()
        .flat_map(Manifest::references)
        .collect()
}

/// The content-hashed keys nothing refers to.
pub fn unreferenced(stored: &BTreeSet<String>, referenced: &BTreeSet<String>) -> Vec<String> {
    stored.difference(referenced).cloned().collect()
}

/// `secs` (Unix time) as RFC 3339 UTC, `2026-05-01T12:00:00Z` (civil-from-days, H. Hinnant).
pub fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use fastgate::release::{config_key, file_key, Coding, Encoded, FileEntry};

    fn h(c: char) -> String {
        c.to_string().repeat(64)
    }

    fn manifest(name: &str, config: char, files: &[char]) -> Manifest {
        let files = files
            .iter()
            .map(|c| {
                let entry = FileEntry {
                    hash: h(*c),
                    content_type: "text/plain".into(),
                    size: 1,
                    encodings: vec![Encoded {
                        coding: Coding::Br,
                        hash: format!("{c}{}", "e".repeat(63)),
                        size: 1,
                    }],
                };
                (format!("/{c}"), entry)
            })
            .collect();
        Manifest {
            name: name.into(),
            config: Some(h(config)),
            created: 0,
            files,
        }
    }

    #[test]
    fn keep_n_drops_the_oldest_but_never_the_active_one() {
        let rs: Vec<(String, u64)> = [("r1", 10), ("r2", 20), ("r3", 30), ("r4", 30)]
            .iter()
            .map(|(n, c)| (n.to_string(), *c))
            .collect();
        assert!(releases_to_drop(&rs, Some("r4"), None).is_empty());
        assert_eq!(releases_to_drop(&rs, Some("r4"), Some(2)), ["r1", "r2"]);
        assert_eq!(releases_to_drop(&rs, Some("r1"), Some(2)), ["r2"]);
        assert_eq!(releases_to_drop(&rs, None, Some(0)).len(), 4);
        assert_eq!(
            releases_to_drop(&rs, Some("r2"), Some(0)),
            ["r1", "r3", "r4"]
        );
    }

    #[test]
    fn keys_no_remaining_manifest_refers_to_are_unreferenced() {
        let a = manifest("a", '1', &['a', 'b']);
        let b = manifest("b", '2', &['b', 'c']);
        let refs = referenced([&a, &b]);
        assert!(refs.contains(&config_key(&h('1'))) && refs.contains(&file_key(&h('c'))));
        assert!(refs.contains(&file_key(&a.files["/a"].encodings[0].hash)));
        let mut stored: BTreeSet<String> = refs.clone();
        stored.insert(file_key(&h('d')));
        stored.insert(config_key(&h('3')));
        assert_eq!(
            unreferenced(&stored, &refs),
            [config_key(&h('3')), file_key(&h('d'))]
        );
        // Dropping `a` frees its own config and its own file, not the shared one.
        let after = referenced([&b]);
        let freed = unreferenced(&refs, &after);
        assert!(freed.contains(&config_key(&h('1'))));
        assert!(freed.contains(&file_key(&h('a'))));
        assert!(!freed.contains(&file_key(&h('b'))));
    }

    #[test]
    fn utc_formatting() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc(1_767_225_599), "2025-12-31T23:59:59Z");
        assert_eq!(utc(4_107_542_400), "2100-03-01T00:00:00Z");
    }
}
