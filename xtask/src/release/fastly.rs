//! Production: the release store on Fastly, through the Fastly CLI 16.x
//! (`fastly kv-store-entry ...`), and the same commands printed for ops to run by hand.
//!
//! Binary values go through the CLI's batch input (`create --file`, new-line separated
//! `{"key": ..., "value": <base64>}`): `--value` takes text only. Batches are cut at
//! [`MAX_BATCH_BYTES`] (a value bigger than that gets a batch of its own), since the batch
//! API's request limit is not documented. A batch is an upsert with no order inside it,
//! so the content (files and config) goes in batches before the manifest's, and the
//! pointer last (`create --key active --value NAME`, which overwrites by default).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use base64::Engine;
use fastgate::release::{ACTIVE_KEY, STORE};

use super::kv::Kv;

/// The most NDJSON one batch file holds, unless a single value is bigger.
pub const MAX_BATCH_BYTES: usize = 8 * 1024 * 1024;

/// How ops set `$STORE_ID`, the store's id, from its name. `kv-store list --json` has
/// spelt the fields `Name`/`StoreID` and `name`/`id` across CLI versions: both are read.
pub fn store_id_command() -> String {
    format!(
        "STORE_ID=\"$(fastly kv-store list --json | jq -r '.. | objects | \
         select((.Name // .name) == \"{STORE}\") | (.StoreID // .id)')\""
    )
}

/// Uploads one batch file.
pub fn batch_command(file: &Path) -> String {
    format!(
        "fastly kv-store-entry create --store-id=\"$STORE_ID\" --file={}",
        shell_word(&file.display().to_string())
    )
}

/// Flips the active-release pointer.
pub fn activate_command(name: &str) -> String {
    format!(
        "fastly kv-store-entry create --store-id=\"$STORE_ID\" --key={ACTIVE_KEY} --value={name}"
    )
}

/// `s` as one shell word (single-quoted unless plainly safe).
fn shell_word(s: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+=:,@".contains(c);
    if !s.is_empty() && s.chars().all(plain) {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Writes `entries` as batch files `<dir>/<stem>-NNN.ndjson` (see [`MAX_BATCH_BYTES`])
/// and returns their paths, in order.
pub fn write_batches(
    dir: &Path,
    stem: &str,
    entries: &[(String, Vec<u8>)],
) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut files = Vec::new();
    let mut current: Vec<u8> = Vec::new();
    let flush = |current: &mut Vec<u8>, files: &mut Vec<PathBuf>| -> Result<()> {
        if current.is_empty() {
            return Ok(());
        }
        let path = dir.join(format!("{stem}-{:03}.ndjson", files.len() + 1));
        std::fs::write(&path, &*current).with_context(|| format!("writing {}", path.display()))?;
        files.push(path);
        current.clear();
        Ok(())
    };
    for (key, bytes) in entries {
        let value = base64::engine::general_purpose::STANDARD.encode(bytes);
        let line = serde_json::json!({ "key": key, "value": value }).to_string();
        if !current.is_empty() && current.len() + line.len() + 1 > MAX_BATCH_BYTES {
            flush(&mut current, &mut files)?;
        }
        current.extend_from_slice(line.as_bytes());
        current.push(b'\n');
    }
    flush(&mut current, &mut files)?;
    Ok(files)
}

/// The id of the store named `name` in `kv-store list --json` output (any of the shapes
/// the CLI has printed: a list, or `{"Data": [...]}`; `name`/`id` or `Name`/`StoreID`).
pub fn find_store_id(json: &str, name: &str) -> Option<String> {
    fn walk(v: &serde_json::Value, name: &str) -> Option<String> {
        match v {
            serde_json::Value::Object(o) => {
                let n = o.get("name").or_else(|| o.get("Name"));
                if n.and_then(|n| n.as_str()) == Some(name) {
                    let id = o.get("id").or_else(|| o.get("StoreID"));
                    return id.and_then(|i| i.as_str()).map(str::to_owned);
                }
                o.values().find_map(|v| walk(v, name))
            }
            serde_json::Value::Array(a) => a.iter().find_map(|v| walk(v, name)),
            _ => None,
        }
    }
    walk(&serde_json::from_str(json).ok()?, name)
}

/// The keys of `kv-store-entry list --json` output (a list, or `{"Data": [...]}`).
pub fn parse_key_list(json: &str) -> Result<Vec<String>> {
    let v: serde_json::Value =
        serde_json::from_str(json).context("`kv-store-entry list --json` printed no JSON")?;
    let list = v
        .as_array()
        .or_else(|| v.get("Data").or_else(|| v.get("data"))?.as_array());
    let Some(list) = list else {
        bail!("`kv-store-entry list --json` printed an unexpected shape: {json:.200}");
    };
    Ok(list
        .iter()
        .filter_map(|k| k.as_str().map(str::to_owned))
        .collect())
}

/// Fails unless `FASTLY_API_TOKEN` is set: checked before installing or running the CLI,
/// which would otherwise start an interactive login.
pub fn require_token() -> Result<()> {
    if std::env::var_os("FASTLY_API_TOKEN").is_none_or(|t| t.is_empty()) {
        bail!(
            "--fastly needs FASTLY_API_TOKEN in the environment (an API token with Engineer \
             permissions on the service)"
        );
    }
    Ok(())
}

/// The production release store, through the Fastly CLI.
pub struct FastlyStore {
    bin: PathBuf,
    store_id: String,
    staging: PathBuf,
    uploads: usize,
}

impl FastlyStore {
    /// Resolves the store id by name; needs `FASTLY_API_TOKEN`. Batch files are written
    /// under `staging` (emptied first).
    pub fn open(bin: &Path, staging: &Path) -> Result<FastlyStore> {
        require_token()?;
        let mut store = FastlyStore {
            bin: bin.to_owned(),
            store_id: String::new(),
            staging: staging.to_owned(),
            uploads: 0,
        };
        let listed = store.capture(&["kv-store", "list", "--json"])?;
        store.store_id = find_store_id(&String::from_utf8_lossy(&listed), STORE).with_context(|| {
            format!(
                "the Fastly account has no KV Store named `{STORE}`: create it with \
                 `fastly kv-store create --name={STORE}` and link it to the service \
                 (`fastly resource-link create --resource-id=<its id> --version=latest --autoclone`)"
            )
        })?;
        let _ = std::fs::remove_dir_all(&store.staging);
        println!("xtask: production KV Store `{STORE}`: {}", store.store_id);
        Ok(store)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args).arg("--non-interactive");
        cmd
    }

    /// Runs the CLI quietly and returns its standard output (the value or JSON asked for).
    fn capture(&self, args: &[&str]) -> Result<Vec<u8>> {
        let mut cmd = self.command(args);
        cmd.arg("--quiet");
        let out = cmd
            .output()
            .with_context(|| format!("could not start {cmd:?}"))?;
        if !out.status.success() {
            bail!(
                "`fastly {}` failed ({}): {}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(out.stdout)
    }

    /// Runs the CLI in the foreground, echoing the command line as ops would type it.
    fn run(&self, args: &[String], shown: &str) -> Result<()> {
        println!("xtask: $ {shown}");
        let mut cmd = self.command(&args.iter().map(String::as_str).collect::<Vec<_>>());
        crate::tools::run(&mut cmd)
    }

    fn store_flag(&self) -> String {
        format!("--store-id={}", self.store_id)
    }
}

impl Kv for FastlyStore {
    fn describe(&self) -> String {
        format!("the production KV Store {} ({STORE})", self.store_id)
    }

    fn list(&mut self, prefix: &str) -> Result<Vec<String>> {
        let store = self.store_flag();
        let prefix_flag = format!("--prefix={prefix}");
        let mut args = vec!["kv-store-entry", "list", &store, "--json"];
        if !prefix.is_empty() {
            args.push(&prefix_flag);
        }
        let out = self.capture(&args)?;
        let keys = parse_key_list(&String::from_utf8_lossy(&out))?;
        Ok(keys.into_iter().filter(|k| k.starts_with(prefix)).collect())
    }

    /// `get` prints the value's bytes as they are; a failure is "absent" only when the
    /// key is not listed (so an auth or network failure is not taken for absence).
    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>> {
        let store = self.store_flag();
        let key_flag = format!("--key={key}");
        match self.capture(&["kv-store-entry", "get", &store, &key_flag]) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if self.list(key)?.iter().any(|k| k == key) => Err(e),
            Err(_) => Ok(None),
        }
    }

    fn put_all(&mut self, entries: &[(String, Vec<u8>)]) -> Result<()> {
        if let [(key, value)] = entries {
            if key == ACTIVE_KEY {
                let name = String::from_utf8_lossy(value).into_owned();
                let args = [
                    "kv-store-entry",
                    "create",
                    &self.store_flag(),
                    "--key=active",
                ]
                .map(str::to_owned);
                let mut args = args.to_vec();
                args.push(format!("--value={name}"));
                return self.run(&args, &activate_command(&name));
            }
        }
        self.uploads += 1;
        let files = write_batches(&self.staging, &format!("upload-{}", self.uploads), entries)?;
        for file in files {
            let args = [
                "kv-store-entry".to_owned(),
                "create".to_owned(),
                self.store_flag(),
                format!("--file={}", file.display()),
            ];
            self.run(&args, &batch_command(&file))?;
        }
        Ok(())
    }

    fn delete(&mut self, key: &str) -> Result<()> {
        let args = [
            "kv-store-entry".to_owned(),
            "delete".to_owned(),
            self.store_flag(),
            format!("--key={key}"),
        ];
        let shown = format!("fastly kv-store-entry delete --store-id=\"$STORE_ID\" --key={key}");
        self.run(&args, &shown)
    }
}

/// Prints commands indented, one a line, as a block ops can copy.
pub fn print_lines(lines: &[String]) {
    for line in lines {
        println!("  {line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_store_id_is_found_in_either_json_shape() {
        let new = r#"{"Data":[{"name":"other","id":"a1"},{"name":"fastgate_releases","id":"b2"}],"Meta":{}}"#;
        assert_eq!(find_store_id(new, STORE).as_deref(), Some("b2"));
        let old = r#"[{"Name":"fastgate_releases","StoreID":"c3","CreatedAt":null}]"#;
        assert_eq!(find_store_id(old, STORE).as_deref(), Some("c3"));
        assert_eq!(find_store_id("[]", STORE), None);
        assert_eq!(find_store_id("not json", STORE), None);
    }

    #[test]
    fn key_lists_parse() {
        assert_eq!(parse_key_list(r#"["a","b"]"#).unwrap(), ["a", "b"]);
        assert_eq!(parse_key_list(r#"{"Data":["x"]}"#).unwrap(), ["x"]);
        assert!(parse_key_list("{}").is_err());
    }

    #[test]
    fn batches_hold_base64_values_and_are_cut_at_the_limit() {
        let dir = std::env::temp_dir().join(format!("fastgate-batches-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let big = vec![0xffu8; MAX_BATCH_BYTES / 2];
        let entries = vec![
            ("files/a".to_owned(), b"\x00\x01bin".to_vec()),
            ("files/b".to_owned(), big.clone()),
            ("files/c".to_owned(), big),
        ];
        let files = write_batches(&dir, "content", &entries).unwrap();
        assert_eq!(files.len(), 2, "{files:?}");
        assert!(files[0].ends_with("content-001.ndjson"));
        let first = std::fs::read_to_string(&files[0]).unwrap();
        let line: serde_json::Value = serde_json::from_str(first.lines().next().unwrap()).unwrap();
        assert_eq!(line["key"], "files/a");
        let value = base64::engine::general_purpose::STANDARD
            .decode(line["value"].as_str().unwrap())
            .unwrap();
        assert_eq!(value, b"\x00\x01bin");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn printed_commands() {
        assert_eq!(
            batch_command(Path::new("/w/.fastgate/kv/batches/r1/content-001.ndjson")),
            "fastly kv-store-entry create --store-id=\"$STORE_ID\" \
             --file=/w/.fastgate/kv/batches/r1/content-001.ndjson"
        );
        assert_eq!(
            batch_command(Path::new("/a b/x.ndjson")),
            "fastly kv-store-entry create --store-id=\"$STORE_ID\" --file='/a b/x.ndjson'"
        );
        assert_eq!(
            activate_command("r2"),
            "fastly kv-store-entry create --store-id=\"$STORE_ID\" --key=active --value=r2"
        );
        assert!(store_id_command().contains("fastly kv-store list --json"));
    }
}
