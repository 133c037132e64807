//! `publish`: read a release from disk, check all of it, then upload what each store
//! lacks (content, then the manifest) and print the production equivalent.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use fastgate::config::Config;
use fastgate::release::{
    check_limits, config_key, file_key, is_hashed_asset, is_valid_release_name, release_key,
    sha256_hex, Manifest, ReleaseError,
};

use super::kv::{self, Kv};
use super::{fastly, now, open, web, Dest, Stores};

/// A release read from disk, ready to upload.
struct Prepared {
    manifest: Manifest,
    /// Every value the manifest refers to, by key.
    values: BTreeMap<String, Vec<u8>>,
}

/// `cargo xtask release publish NAME [--config FILE] [--web DIR]`: checks everything
/// (name, config, paths, limits) before uploading anything, then uploads what each store
/// lacks, then the manifest. Publishing the same content under the same name again is a
/// no-op; other content under a published name is refused. Returns the manifest stored.
pub fn publish<'a>(
    to: impl Into<Dest<'a>>,
    name: &str,
    config: Option<&Path>,
    web: Option<&Path>,
) -> Result<Manifest> {
    let to = to.into();
    let mut release = match prepare(name, config, web) {
        Ok(release) => release,
        Err(e) => return Err(edge_refusal(to, config).unwrap_or(e)),
    };
    let mut stores = open(to)?;
    adopt_existing(&mut stores, &mut release.manifest)?;
    let manifest_bytes = serde_json::to_vec(&release.manifest)?;
    print_summary(
        &release.manifest,
        release.values.values().map(|v| v.len() as u64).sum(),
    );
    for kv in stores.0.iter_mut() {
        upload(kv.as_mut(), &release, &manifest_bytes)?;
    }
    if !to.is_production() {
        print_production(&to.staging(), &release, &manifest_bytes)?;
    }
    Ok(release.manifest)
}

fn prepare(name: &str, config: Option<&Path>, web: Option<&Path>) -> Result<Prepared> {
    if !is_valid_release_name(name) {
        bail!("{}", ReleaseError::BadName(name.to_owned()));
    }
    if config.is_none() && web.is_none() {
        bail!("nothing to publish: give --config FILE and/or --web DIR");
    }
    let mut values = BTreeMap::new();
    let mut config_hash = None;
    if let Some(file) = config {
        let (hash, bytes) = read_config(file)?;
        values.insert(config_key(&hash), bytes);
        config_hash = Some(hash);
    }
    let build = match web {
        Some(dir) => web::read_web_dir(dir)?,
        None => web::WebBuild::default(),
    };
    values.extend(build.blobs.into_iter().map(|(h, b)| (file_key(&h), b)));
    let manifest = Manifest {
        name: name.to_owned(),
        config: config_hash.clone(),
        created: now(),
        files: build.files,
    };
    manifest
        .validate()
        .map_err(|e| anyhow!("release `{name}`: {e}"))?;
    let config_len = config_hash.map_or(0, |h| values[&config_key(&h)].len());
    check_limits(&manifest, config_len).map_err(|e| anyhow!("release `{name}`: {e}"))?;
    Ok(Prepared { manifest, values })
}

/// Reads a config file as written (its bytes are what is stored and hashed) and
/// validates it with the edge's own parser; prints both of its hashes.
fn read_config(file: &Path) -> Result<(String, Vec<u8>)> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let text = std::str::from_utf8(&bytes)
        .with_context(|| format!("{}: the config is not UTF-8", file.display()))?;
    let config = Config::parse(text).map_err(|e| anyhow!("{}: invalid: {e}", file.display()))?;
    let sha = sha256_hex(&bytes);
    println!(
        "xtask: config {}: version {}, hash {} (as the edge reports it), stored as {}",
        file.display(),
        config.version,
        config.hash,
        config_key(&sha)
    );
    Ok((sha, bytes))
}

/// A release is checked before anything is stored anywhere. When its config is invalid and a
/// live edge is a destination, the config alone is offered to the edge, which refuses it
/// with the same message (naming the field) and logs the refusal once: the one line ops look
/// for in the edge's output, as for a raw store write. `None`: nothing to add.
fn edge_refusal(to: Dest, config: Option<&Path>) -> Option<anyhow::Error> {
    let (Dest::Stack(t), Some(file)) = (to, config) else {
        return None;
    };
    let bytes = std::fs::read(file).ok()?;
    Config::parse(&String::from_utf8_lossy(&bytes)).err()?;
    let mut edge = super::edge::EdgeStore::connect(t.edge.as_deref()?, t.ops_key.as_deref())
        .ok()
        .flatten()?;
    let entry = [(config_key(&sha256_hex(&bytes)), bytes)];
    edge.put_all(&entry)
        .err()
        .map(|e| e.context(format!("{}: invalid", file.display())))
}

/// Refuses a name already published with other content in any store; with the same
/// content, takes the stored `created` so that the manifest's bytes are the same.
fn adopt_existing(stores: &mut Stores, manifest: &mut Manifest) -> Result<()> {
    let key = release_key(&manifest.name);
    for kv in stores.0.iter_mut() {
        let Some(bytes) = kv.get(&key)? else {
            continue;
        };
        let existing = Manifest::parse(&bytes)
            .map_err(|e| anyhow!("{}: `{key}` is unreadable: {e}", kv.describe()))?;
        let blank = |m: &Manifest| Manifest {
            created: 0,
            ..m.clone()
        };
        if blank(&existing) != blank(manifest) {
            let refusal = ReleaseError::Republished(manifest.name.clone());
            bail!("{refusal} (in {})", kv.describe());
        }
        manifest.created = existing.created;
    }
    Ok(())
}

/// Uploads to one store what it lacks: the content first, then the manifest. Within the
/// content, `configs/` sorts (and so goes) before `files/`: the edge validates a config
/// when it is stored, so a refusal comes before the bulk of the upload, not after it.
fn upload(kv: &mut dyn Kv, release: &Prepared, manifest_bytes: &[u8]) -> Result<()> {
    let stored = kv::stored_content(kv)?;
    let missing: Vec<(String, Vec<u8>)> = release
        .values
        .iter()
        .filter(|(k, _)| !stored.contains(*k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !missing.is_empty() {
        kv.put_all(&missing)?;
    }
    let key = release_key(&release.manifest.name);
    let fresh = kv.get(&key)?.is_none();
    if fresh {
        kv.put_all(&[(key.clone(), manifest_bytes.to_vec())])?;
    }
    let new_bytes: usize = missing.iter().map(|(_, v)| v.len()).sum();
    println!(
        "xtask: {}: {} values uploaded ({new_bytes} bytes), {} already stored; {key} {}",
        kv.describe(),
        missing.len(),
        release.values.len() - missing.len(),
        if fresh {
            "written"
        } else {
            "already there (no-op)"
        },
    );
    Ok(())
}

fn print_summary(manifest: &Manifest, stored_bytes: u64) {
    let files = &manifest.files;
    let identity: u64 = files.values().map(|f| f.size).sum();
    let count = |token: &str| {
        let coding = |e: &&fastgate::release::Encoded| e.coding.token() == token;
        files
            .values()
            .map(|f| f.encodings.iter().filter(coding).count())
            .sum::<usize>()
    };
    let hashed = files.keys().filter(|p| is_hashed_asset(p)).count();
    println!(
        "xtask: release {}: {} files, {identity} bytes; {} br + {} gzip variants; {hashed} \
         hashed assets (served immutable); {stored_bytes} bytes to store in all; config: {}",
        manifest.name,
        files.len(),
        count("br"),
        count("gzip"),
        manifest
            .config
            .as_deref()
            .map_or("the edge's embedded one".to_owned(), config_key),
    );
}

/// Stages the batch files and prints the production commands that store this release.
fn print_production(staging: &Path, release: &Prepared, manifest_bytes: &[u8]) -> Result<()> {
    let name = &release.manifest.name;
    let dir = staging.join(name);
    let _ = std::fs::remove_dir_all(&dir);
    let content: Vec<(String, Vec<u8>)> = release.values.clone().into_iter().collect();
    let mut batches = fastly::write_batches(&dir, "content", &content)?;
    let manifest = [(release_key(name), manifest_bytes.to_vec())];
    batches.extend(fastly::write_batches(&dir, "manifest", &manifest)?);
    println!("Production (Fastly CLI 16.x, FASTLY_API_TOKEN set; `--fastly` runs these for you):");
    let mut lines = vec![fastly::store_id_command()];
    lines.extend(batches.iter().map(|b| fastly::batch_command(b)));
    fastly::print_lines(&lines);
    println!("Then, to make it live:");
    fastly::print_lines(&[fastly::activate_command(name)]);
    Ok(())
}
