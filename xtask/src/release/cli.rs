//! `cargo xtask release <publish|activate|rollback|list|gc> ...`: argument parsing and
//! output; the work is in the parent module.
//!
//! - `publish NAME [--config FILE] [--web DIR] [--edge URL] [--fastly]`
//! - `activate NAME [--edge URL] [--fastly]`
//! - `rollback [--edge URL] [--fastly]`: activate the release published before the active one
//! - `list [--edge URL] [--fastly]`
//! - `gc [--keep N] [--edge URL] [--fastly]`
//!
//! Without `--fastly`: the running edge (`--edge`, default `http://127.0.0.1:7676`) and the
//! local copy `.fastgate/kv/`. With `--fastly`: production only, through the pinned
//! Fastly CLI (needs `FASTLY_API_TOKEN`).

use std::path::{Path, PathBuf};

use super::{gc::utc, Dest, Production, Target};
use anyhow::{bail, Context, Result};

pub const USAGE: &str = "usage: cargo xtask release \
publish NAME [--config FILE] [--web DIR] | activate NAME | rollback | list | gc [--keep N] \
(each also [--edge URL] [--fastly])";

/// Parsed arguments.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Args {
    pub command: String,
    pub name: Option<String>,
    pub config: Option<PathBuf>,
    pub web: Option<PathBuf>,
    pub edge: Option<String>,
    pub keep: Option<usize>,
    pub fastly: bool,
}

/// Reads `args` (after `release`); `--flag value` and `--flag=value` both work.
pub fn parse(args: &[String]) -> Result<Args> {
    let Some((command, rest)) = args.split_first() else {
        bail!("{USAGE}");
    };
    let mut out = Args {
        command: command.clone(),
        ..Args::default()
    };
    let mut it = rest.iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_owned())),
            _ => (arg.as_str(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .with_context(|| format!("{flag} needs a value\n{USAGE}"))
        };
        match flag {
            "--config" => out.config = Some(PathBuf::from(value()?)),
            "--web" => out.web = Some(PathBuf::from(value()?)),
            "--edge" => out.edge = Some(value()?),
            "--keep" => out.keep = Some(value()?.parse().context("--keep takes a count")?),
            "--fastly" => out.fastly = true,
            _ if flag.starts_with("--") => bail!("unknown flag {flag}\n{USAGE}"),
            _ if out.name.is_none() => out.name = Some(arg.clone()),
            _ => bail!("unexpected argument `{arg}`\n{USAGE}"),
        }
    }
    check_shape(&out)?;
    Ok(out)
}

/// Which flags each command takes.
fn check_shape(a: &Args) -> Result<()> {
    let named = matches!(a.command.as_str(), "publish" | "activate");
    let known = named || matches!(a.command.as_str(), "rollback" | "list" | "gc");
    if !known {
        bail!("unknown release command `{}`\n{USAGE}", a.command);
    }
    if named != a.name.is_some() {
        bail!("{USAGE}");
    }
    if a.command != "publish" && (a.config.is_some() || a.web.is_some()) {
        bail!("--config and --web are for `publish`\n{USAGE}");
    }
    if a.command != "gc" && a.keep.is_some() {
        bail!("--keep is for `gc`\n{USAGE}");
    }
    Ok(())
}

/// Runs `cargo xtask release ...` for the checkout at `root`; `fastly_cli` installs (if
/// need be) and returns the pinned Fastly CLI, only called for `--fastly`.
pub fn run(
    root: &Path,
    args: &[String],
    fastly_cli: impl FnOnce() -> Result<PathBuf>,
) -> Result<()> {
    let a = parse(args)?;
    let mut target = Target::local_default(root);
    if let Some(edge) = &a.edge {
        target.edge = Some(edge.clone());
    }
    let production;
    let dest: Dest = if a.fastly {
        super::fastly::require_token()?;
        production = Production {
            fastly: fastly_cli()?,
            staging: root.join(super::LOCAL_DIR).join("batches"),
        };
        (&production).into()
    } else {
        (&target).into()
    };
    let name = a.name.as_deref().unwrap_or_default();
    if let Some(web) = &a.web {
        build_if_ours(root, web)?;
    }
    match a.command.as_str() {
        "publish" => super::publish(dest, name, a.config.as_deref(), a.web.as_deref()).map(drop),
        "activate" => super::activate(dest, name),
        "rollback" => super::rollback(dest).map(drop),
        "list" => super::list(dest).map(|infos| print!("{}", table(&infos))),
        "gc" => {
            super::gc(dest, a.keep)?;
            if !a.fastly {
                let keep = a.keep.map_or(String::new(), |n| format!(" --keep {n}"));
                println!("Production: cargo xtask release gc{keep} --fastly (it reads the production store)");
            }
            Ok(())
        }
        _ => unreachable!("check_shape knows the commands"),
    }
}

/// The `list` table: name, created (UTC), config (first 16 hex of its SHA-256, or
/// `embedded`), files, and `*` on the active release.
/// `--web web/dist`: the project's own front end is built first when its sources changed,
/// so a stale build is never published.
fn build_if_ours(root: &Path, web: &Path) -> Result<()> {
    let ours = root.join("web/dist");
    let same = |p: &Path| p.canonicalize().ok();
    if web == Path::new("web/dist") || (same(web).is_some() && same(web) == same(&ours)) {
        let (dist, _) = crate::web::ensure_built(root)?;
        crate::web::check_js_budget(&dist)?;
    }
    Ok(())
}

pub fn table(infos: &[super::ReleaseInfo]) -> String {
    if infos.is_empty() {
        return "no release published\n".into();
    }
    let width = infos.iter().map(|i| i.name.len()).max().unwrap_or(0).max(4);
    let mut out = format!(
        "  {:<width$}  {:<20}  {:<16}  {:>5}\n",
        "NAME", "CREATED (UTC)", "CONFIG", "FILES"
    );
    for i in infos {
        let config = i
            .config
            .as_deref()
            .map_or("embedded", |h| h.get(..16).unwrap_or(h));
        out.push_str(&format!(
            "{} {:<width$}  {:<20}  {:<16}  {:>5}\n",
            if i.active { "*" } else { " " },
            i.name,
            utc(i.created),
            config,
            i.files
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn commands_and_flags_parse() {
        let a = parse(&args(
            "publish r1 --config c.json --web=dist --edge http://x:1",
        ))
        .unwrap();
        assert_eq!(a.name.as_deref(), Some("r1"));
        assert_eq!(a.config, Some(PathBuf::from("c.json")));
        assert_eq!(a.web, Some(PathBuf::from("dist")));
        assert_eq!(a.edge.as_deref(), Some("http://x:1"));
        assert!(!a.fastly);
        let a = parse(&args("gc --keep 3 --fastly")).unwrap();
        assert_eq!((a.keep, a.fastly), (Some(3), true));
        assert!(parse(&args("rollback")).is_ok());
        assert!(parse(&args("list")).is_ok());
    }

    #[test]
    fn misuse_is_refused() {
        for bad in [
            "",
            "publish",
            "activate",
            "list r1",
            "activate r1 --web d",
            "list --keep 2",
            "gc --keep x",
            "publish r1 --config",
            "publish r1 r2",
            "frobnicate",
            "list --bogus",
        ] {
            assert!(parse(&args(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_table_marks_the_active_release() {
        let info = |name: &str, active| super::super::ReleaseInfo {
            name: name.into(),
            created: 1_767_225_599,
            config: Some("ab".repeat(32)),
            files: 3,
            bytes: 10,
            active,
        };
        let t = table(&[info("r1", false), info("r2", true)]);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[1].starts_with("  r1"), "{t}");
        assert!(lines[2].starts_with("* r2"), "{t}");
        assert!(lines[2].contains("2025-12-31T23:59:59Z"), "{t}");
        assert!(lines[2].contains(&"ab".repeat(8)), "{t}");
        assert_eq!(table(&[]), "no release published\n");
    }
}
