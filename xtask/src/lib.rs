//! Developer tooling shared by `cargo xtask` and the end-to-end tests: installing the
//! tools the edge needs ([`tools`]), building artefacts ([`build`]) and running the whole
//! stack of origins plus Viceroy as supervised child processes ([`stack`]).

pub mod bench;
pub mod build;
pub mod cachetests;
pub mod fuzz;
pub mod package;
pub mod release;
pub mod stack;
pub mod tools;
pub mod web;

use std::path::PathBuf;

/// The workspace root (the directory holding `fastly.toml`).
///
/// Found at run time: cargo sets `CARGO_MANIFEST_DIR` for `cargo run` and `cargo test`, and
/// the workspace is the nearest directory above it whose `Cargo.toml` declares
/// `[workspace]`. The compile-time value is only a fallback: a binary reused from a shared
/// target directory would otherwise build and serve the checkout it was first built in.
pub fn workspace_root() -> PathBuf {
    let start = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    start
        .ancestors()
        .find(|dir| {
            std::fs::read_to_string(dir.join("Cargo.toml"))
                .is_ok_and(|manifest| manifest.lines().any(|l| l.trim() == "[workspace]"))
        })
        .map(PathBuf::from)
        .unwrap_or(start)
}

/// `cargo xtask config check <file>`: parses and validates a gateway config with the edge's
/// own code. Returns a summary (its first line unchanged since before releases, as
/// scripts parse it), or an error naming the file and the field at fault.
/// The hash is the edge's own (`Config::hash`, taken over the file's bytes as written),
/// so it is the one the edge reports in `Fastgate-Config` once this file is pushed as is.
///
/// The lines after the first check the platform limits the config meets on its way to the
/// edge ([`config_limits`]); a config over the KV Store's value limit is an error, since
/// no release could carry it.
pub fn config_check(file: &std::path::Path) -> anyhow::Result<String> {
    let text =
        std::fs::read_to_string(file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let config = fastgate::config::Config::parse(&text)
        .map_err(|e| anyhow::anyhow!("{}: invalid: {e}", file.display()))?;
    let summary = format!(
        "{}: ok (version {}, hash {}, {} routes, {} backends)",
        file.display(),
        config.version,
        config.hash,
        config.routes.len(),
        config.backends.len()
    );
    let limits = config_limits(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    Ok(format!("{summary}\n{limits}"))
}

/// The Config Store's limit on one value, in characters: it binds only the legacy
/// override (`fastgate_config`, key `config`), not a release.
pub const CONFIG_STORE_MAX_CHARS: usize = 8_000;

/// The platform limits a config meets, one line each: its size against the KV Store's
/// value limit (an error when over), against the legacy Config Store override's, its
/// `configs/<sha256>` key's length, and the active pointer's size (the longest release
/// name, 63 bytes, as a KV value).
pub fn config_limits(text: &str) -> anyhow::Result<String> {
    use fastgate::release::{config_key, sha256_hex, KV_MAX_KEY_BYTES, KV_MAX_VALUE_BYTES};
    let bytes = text.len() as u64;
    anyhow::ensure!(
        bytes <= KV_MAX_VALUE_BYTES,
        "the config is {bytes} bytes, over the KV Store's value limit of {KV_MAX_VALUE_BYTES}: \
         no release can carry it"
    );
    let chars = text.chars().count();
    let legacy = if chars <= CONFIG_STORE_MAX_CHARS {
        "fits"
    } else {
        "does not fit: publish it as a release (`cargo xtask release publish NAME --config FILE`)"
    };
    let key = config_key(&sha256_hex(text.as_bytes()));
    let key_fits = if key.len() <= KV_MAX_KEY_BYTES {
        "fits"
    } else {
        "TOO LONG"
    };
    let longest_name = 63;
    let pointer_fits = if longest_name <= KV_MAX_VALUE_BYTES {
        "fits"
    } else {
        "TOO LARGE"
    };
    Ok(format!(
        "  release store (KV) value: {bytes} of {KV_MAX_VALUE_BYTES} bytes: fits\n\
         \x20 legacy Config Store override (fastgate_config/config): {chars} of \
         {CONFIG_STORE_MAX_CHARS} characters: {legacy}\n\
         \x20 KV key {key}: {} of {KV_MAX_KEY_BYTES} bytes: {key_fits}\n\
         \x20 active pointer: a release name is at most {longest_name} bytes: {pointer_fits} a KV value",
        key.len()
    ))
}

/// `cargo xtask surrogate-key <template> [subject]`: the surrogate key the edge tags (and a
/// write purges) for a template such as `summaries:{sub}`; `{sub}` renders as the subject's
/// hash, exactly as the edge renders it, so ops can purge one user's cached objects.
pub fn surrogate_key(template: &str, subject: Option<&str>) -> anyhow::Result<String> {
    let templates = [template];
    fastgate::cache::validate_templates(&templates, true)
        .map_err(|e| anyhow::anyhow!("{}", e.reason))?;
    fastgate::cache::surrogate_keys(&templates, subject)
        .pop()
        .ok_or_else(|| anyhow::anyhow!("`{template}` needs a subject: add the user's `sub`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_check_accepts_the_default_and_names_the_bad_field() {
        let ok = config_check(&workspace_root().join("config/default.json")).unwrap();
        assert!(ok.contains(": ok (version"), "{ok}");
        let lines: Vec<&str> = ok.lines().collect();
        assert_eq!(lines.len(), 5, "{ok}");
        assert!(lines[1].contains("of 25000000 bytes: fits"), "{ok}");
        assert!(lines[2].contains("legacy Config Store"), "{ok}");
        assert!(
            lines[3].contains("KV key configs/") && lines[3].ends_with("fits"),
            "{ok}"
        );
        assert!(lines[4].contains("63 bytes"), "{ok}");
        let dir =
            std::env::temp_dir().join(format!("fastgate-config-check-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bad = dir.join("bad.json");
        let mut v: serde_json::Value = serde_json::from_str(fastgate::config::EMBEDDED).unwrap();
        v["geo"]["continents"]["EU"][0] = "origin_mars".into();
        std::fs::write(&bad, v.to_string()).unwrap();
        let err = config_check(&bad).unwrap_err().to_string();
        assert!(
            err.contains("geo.continents.EU[0]") && err.contains("origin_mars"),
            "{err}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn config_limits_say_whether_the_legacy_override_fits() {
        let small = config_limits("{}").unwrap();
        assert!(small.contains("2 of 8000 characters: fits"), "{small}");
        let big = format!("{{\"x\":\"{}\"}}", "é".repeat(8_000));
        let lines = config_limits(&big).unwrap();
        assert!(
            lines.contains("8008 of 8000 characters: does not fit"),
            "{lines}"
        );
        assert!(lines.contains("16008 of 25000000 bytes: fits"), "{lines}");
    }

    #[test]
    fn config_check_prints_the_hash_the_edge_reports() {
        use fastgate::config::{load, Config};
        let printed = |file: &std::path::Path| {
            let line = config_check(file).unwrap();
            let hash = line.split("hash ").nth(1).unwrap().split(',').next();
            hash.unwrap().to_owned()
        };
        // The shipped file, pretty-printed, against the edge's minified embedded copy.
        let default = workspace_root().join("config/default.json");
        assert_eq!(printed(&default), Config::embedded().unwrap().hash);
        // A pretty-printed override file, against the edge loading it as pushed.
        let dir = std::env::temp_dir().join(format!("fastgate-config-hash-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut v: serde_json::Value = serde_json::from_str(fastgate::config::EMBEDDED).unwrap();
        v["version"] = "ops-7".into();
        let pretty = serde_json::to_string_pretty(&v).unwrap();
        let file = dir.join("override.json");
        std::fs::write(&file, &pretty).unwrap();
        let edge = load(Some(&pretty), None).unwrap().config.hash;
        assert_eq!(printed(&file), edge);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
