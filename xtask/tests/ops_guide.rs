//! The ops guide's commands, run: every `cargo xtask` line in `docs/OPERATIONS.md` names a
//! real subcommand, and the ones that need no network (config check, surrogate keys,
//! package) are executed here through the real `xtask` binary.

use std::path::PathBuf;
use std::process::{Command, Output};

fn root() -> PathBuf {
    xtask::workspace_root()
}

fn xtask(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("running xtask")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The `cargo xtask ...` commands in the guide's code blocks, split into words.
fn guide_commands() -> Vec<Vec<String>> {
    let guide = std::fs::read_to_string(root().join("docs/OPERATIONS.md")).unwrap();
    let mut in_block = false;
    let mut commands = Vec::new();
    for line in guide.lines() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
            continue;
        }
        if !in_block {
            continue;
        }
        let Some(rest) = line.trim_start().strip_prefix("cargo xtask ") else {
            continue;
        };
        let command = rest.split('#').next().unwrap_or_default();
        commands.push(
            command
                .split_whitespace()
                .map(|w| w.trim_matches('\'').to_owned())
                .collect(),
        );
    }
    commands
}

fn guide_command(name: &str) -> Vec<String> {
    guide_commands()
        .into_iter()
        .find(|c| c[0] == name)
        .unwrap_or_else(|| panic!("the guide shows no `cargo xtask {name}`"))
}

#[test]
fn every_guide_command_names_a_real_subcommand() {
    let commands = guide_commands();
    for needed in [
        "config",
        "surrogate-key",
        "package",
        "serve",
        "test",
        "bench",
    ] {
        guide_command(needed);
    }
    let usage = text(&xtask(&["no-such-command"]));
    for command in &commands {
        assert!(
            usage.contains(&command[0]),
            "`cargo xtask {}` is not in the usage: {usage}",
            command.join(" ")
        );
    }
}

#[test]
fn config_check_accepts_the_shipped_config_and_names_the_field_of_a_broken_one() {
    let command = guide_command("config");
    assert_eq!(command[..2], ["config", "check"]);
    let dir = std::env::temp_dir().join(format!("fastgate-ops-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // As the guide says: start from the shipped config, then edit.
    let good = dir.join(&command[2]);
    std::fs::copy(root().join("config/default.json"), &good).unwrap();
    let out = xtask(&["config", "check", good.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains(": ok (version"), "{}", text(&out));
    // The hash it prints is the one the edge reports for its embedded copy.
    let edge_hash = fastgate::config::Config::embedded().unwrap().hash;
    assert!(
        text(&out).contains(&format!("hash {edge_hash},")),
        "{}",
        text(&out)
    );

    // The guide's backend example, done in the wrong order: the geo map names a backend
    // the config does not declare yet.
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&good).unwrap()).unwrap();
    config["geo"]["continents"]["SA"][0] = "origin_sa".into();
    let bad = dir.join("bad-config.json");
    std::fs::write(&bad, config.to_string()).unwrap();
    let out = xtask(&["config", "check", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(text(&out).contains("geo.continents.SA"), "{}", text(&out));

    // Done in the right order it passes.
    config["backends"]["origin_sa"] = serde_json::json!({"region": "sa"});
    std::fs::write(&bad, config.to_string()).unwrap();
    let out = xtask(&["config", "check", bad.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn surrogate_key_renders_the_key_the_edge_tags() {
    let command = guide_command("surrogate-key");
    let args: Vec<&str> = command.iter().map(String::as_str).collect();
    let out = xtask(&args);
    assert!(out.status.success(), "{}", text(&out));
    let expected = format!("summaries:{}", fastgate::cache::subject_tag(args[2]));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), expected);
    let out = xtask(&["surrogate-key", "summaries:{sub}"]);
    assert!(!out.status.success(), "a {{sub}} template needs a subject");
}

fn built_wasm() -> PathBuf {
    match std::env::var_os("FASTGATE_WASM") {
        Some(path) => PathBuf::from(path),
        // Outside `cargo xtask test`: build into a separate target dir, like tests/support.
        None => xtask::build::edge_wasm(&root(), &root().join("target/e2e")).unwrap(),
    }
}

#[test]
fn the_package_builds_with_the_layout_fastly_deploys() {
    assert_eq!(guide_command("package"), ["package"]);
    let wasm = built_wasm();
    let out_dir = std::env::temp_dir().join(format!("fastgate-pkg-{}", std::process::id()));
    let path = xtask::package::write(&root().join("fastly.toml"), &wasm, &out_dir).unwrap();
    assert_eq!(path, out_dir.join("fastgate.tar.gz"));
    let contents = xtask::package::read(&path).unwrap();
    assert_eq!(contents.name, "fastgate");
    assert_eq!(contents.wasm, std::fs::read(&wasm).unwrap());
    let manifest: toml::Value = toml::from_str(&contents.manifest).unwrap();
    let setup = &manifest["setup"];
    for backend in ["origin_us", "origin_eu", "origin_ap"] {
        assert!(
            setup["backends"].get(backend).is_some(),
            "[setup] lacks {backend}"
        );
    }
    assert!(setup["config_stores"].get("fastgate_config").is_some());
    assert!(setup["secret_stores"].get("fastgate_secrets").is_some());
    // Reproducible: the same inputs give the same bytes.
    let first = std::fs::read(&path).unwrap();
    xtask::package::write(&root().join("fastly.toml"), &wasm, &out_dir).unwrap();
    assert_eq!(first, std::fs::read(&path).unwrap());
    // The binary's `package` writes the same package into pkg/.
    let out = xtask(&["package", "--wasm", wasm.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        std::fs::read(root().join("pkg/fastgate.tar.gz")).unwrap(),
        first
    );
    let _ = std::fs::remove_dir_all(out_dir);
}
