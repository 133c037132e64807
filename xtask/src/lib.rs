//! Developer tooling shared by `cargo xtask` and the end-to-end tests: installing the
//! tools the edge needs ([`tools`]), building artefacts ([`build`]) and running the whole
//! stack of origins plus Viceroy as supervised child processes ([`stack`]).

pub mod bench;
pub mod build;
pub mod cachetests;
pub mod fuzz;
pub mod package;
pub mod stack;
pub mod tools;

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
/// own code. Returns a one-line summary, or an error naming the file and the field at fault.
/// The hash is the edge's own (`Config::hash`, taken over the file's bytes as written),
/// so it is the one the edge reports in `Fastgate-Config` once this file is pushed as is.
pub fn config_check(file: &std::path::Path) -> anyhow::Result<String> {
    let text =
        std::fs::read_to_string(file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let config = fastgate::config::Config::parse(&text)
        .map_err(|e| anyhow::anyhow!("{}: invalid: {e}", file.display()))?;
    Ok(format!(
        "{}: ok (version {}, hash {}, {} routes, {} backends)",
        file.display(),
        config.version,
        config.hash,
        config.routes.len(),
        config.backends.len()
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
