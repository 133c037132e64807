//! `cargo xtask package`: the deployable Compute package, `pkg/fastgate.tar.gz`, in the
//! layout `fastly compute build` produces and `fastly compute deploy --package` reads:
//! `<name>/fastly.toml` and `<name>/bin/main.wasm`. Built here, offline and reproducibly,
//! so CI checks the artefact that ships without downloading the Fastly CLI (which builds the
//! same layout with `fastly compute build --metadata-disable`).

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;

/// What a package holds, as read back from the tarball.
#[derive(Debug)]
pub struct Contents {
    pub name: String,
    pub manifest: String,
    pub wasm: Vec<u8>,
}

/// Writes `<out_dir>/<name>.tar.gz` from the manifest and the built Wasm, where `name` is
/// the manifest's `name`; returns the package's path.
pub fn write(manifest: &Path, wasm: &Path, out_dir: &Path) -> Result<PathBuf> {
    let manifest_text = std::fs::read_to_string(manifest)
        .with_context(|| format!("reading {}", manifest.display()))?;
    let name = service_name(&manifest_text)?;
    let wasm_bytes = std::fs::read(wasm).with_context(|| format!("reading {}", wasm.display()))?;
    if !wasm_bytes.starts_with(b"\0asm") {
        bail!("{} is not a WebAssembly module", wasm.display());
    }
    std::fs::create_dir_all(out_dir)?;
    let path = out_dir.join(format!("{name}.tar.gz"));
    let file = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    let mut tar = tar::Builder::new(GzEncoder::new(file, Compression::best()));
    for (entry, bytes) in [
        (format!("{name}/fastly.toml"), manifest_text.as_bytes()),
        (format!("{name}/bin/main.wasm"), wasm_bytes.as_slice()),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        // A fixed time keeps the package byte-for-byte reproducible from the same inputs.
        header.set_mtime(0);
        header.set_cksum();
        tar.append_data(&mut header, &entry, bytes)?;
    }
    tar.into_inner()?.finish()?;
    Ok(path)
}

/// Reads a package back, checking the layout `fastly compute deploy` expects.
pub fn read(package: &Path) -> Result<Contents> {
    let file = File::open(package).with_context(|| format!("opening {}", package.display()))?;
    let mut archive = tar::Archive::new(GzDecoder::new(file));
    let (mut manifest, mut wasm, mut names) = (None, None, Vec::new());
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.to_string_lossy().into_owned();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes)?;
        match path.split_once('/') {
            Some((name, "fastly.toml")) => {
                names.push(name.to_owned());
                manifest = Some(String::from_utf8(bytes)?);
            }
            Some((name, "bin/main.wasm")) => {
                names.push(name.to_owned());
                wasm = Some(bytes);
            }
            _ => bail!("unexpected entry {path} in {}", package.display()),
        }
    }
    let (Some(manifest), Some(wasm)) = (manifest, wasm) else {
        bail!("{} lacks fastly.toml or bin/main.wasm", package.display());
    };
    let name = service_name(&manifest)?;
    if names.iter().any(|n| *n != name) {
        bail!("entries are not all under {name}/: {names:?}");
    }
    Ok(Contents {
        name,
        manifest,
        wasm,
    })
}

fn service_name(manifest: &str) -> Result<String> {
    let doc: toml::Value = toml::from_str(manifest).context("fastly.toml is not TOML")?;
    doc.get("name")
        .and_then(|n| n.as_str())
        .map(str::to_owned)
        .context("fastly.toml has no `name`")
}
