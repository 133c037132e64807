//! Reading a front-end build directory into manifest entries and the bytes to store.
//!
//! Every regular file is published (dotfiles too: `/.well-known/...` must be servable),
//! at `/` + its path relative to the directory with `/` separators. A symbolic link is
//! followed when it stays inside the directory, and refused when it leads out of it: a
//! build directory that links to `~/.ssh` must not publish it. Paths the edge could
//! never be asked for (see `Manifest::validate`) are refused before anything is read.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use anyhow::{anyhow, bail, Context, Result};
use fastgate::release::{sha256_hex, FileEntry, Manifest};

use super::content::{content_type, variants};

/// A front-end build as read from disk.
#[derive(Debug, Default)]
pub struct WebBuild {
    /// URL path → manifest entry.
    pub files: BTreeMap<String, FileEntry>,
    /// Content hash → bytes, for every identity file and variant.
    pub blobs: BTreeMap<String, Vec<u8>>,
}

impl WebBuild {
    /// Identity bytes, over every file.
    pub fn identity_bytes(&self) -> u64 {
        self.files.values().map(|f| f.size).sum()
    }

    /// Precompressed variants, over every file.
    pub fn variant_count(&self) -> usize {
        self.files.values().map(|f| f.encodings.len()).sum()
    }
}

/// Reads every file under `dir` (see the module doc), hashing it and building its
/// variants on all cores: brotli at quality 11 is the slow part of a publish.
pub fn read_web_dir(dir: &Path) -> Result<WebBuild> {
    let items = collect(dir)?;
    for (url, disk) in &items {
        check_url_path(url).with_context(|| format!("{}", disk.display()))?;
    }
    let mut build = WebBuild::default();
    for (url, entry, blobs) in read_all(&items)? {
        build.files.insert(url, entry);
        build.blobs.extend(blobs);
    }
    Ok(build)
}

/// Whether the edge could serve `url`, by `Manifest::validate`'s own rules.
fn check_url_path(url: &str) -> Result<()> {
    let probe = FileEntry {
        hash: sha256_hex(b""),
        content_type: "application/octet-stream".into(),
        size: 0,
        encodings: Vec::new(),
    };
    let manifest = Manifest {
        name: "path-check".into(),
        config: None,
        created: 0,
        files: [(url.to_owned(), probe)].into(),
    };
    manifest.validate().map_err(|e| anyhow!("{e}"))
}

/// `(URL path, real path)` of every regular file under `dir`, sorted by URL path.
pub fn collect(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let root = dir
        .canonicalize()
        .with_context(|| format!("{}: cannot open the web directory", dir.display()))?;
    if !root.is_dir() {
        bail!("{}: not a directory", dir.display());
    }
    let mut out = Vec::new();
    walk(&root, &root, "", &mut vec![root.clone()], &mut out)?;
    out.sort();
    Ok(out)
}

/// One directory level of [`collect`]; `chain` is the real paths of the directories
/// being walked, so that a link back to one of them is a loop, refused.
fn walk(
    root: &Path,
    dir: &Path,
    prefix: &str,
    chain: &mut Vec<PathBuf>,
    out: &mut Vec<(String, PathBuf)>,
) -> Result<()> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
        let path = entry.path();
        let name = entry.file_name();
        let name = name
            .to_str()
            .ok_or_else(|| anyhow!("{}: the file name is not UTF-8", path.display()))?;
        let url = format!("{prefix}/{}", fastgate::path::encode_segment(name));
        let real = if entry.file_type()?.is_symlink() {
            let real = path
                .canonicalize()
                .with_context(|| format!("{}: a broken symbolic link", path.display()))?;
            if !real.starts_with(root) {
                bail!(
                    "{}: a symbolic link to {}, outside the web directory",
                    path.display(),
                    real.display()
                );
            }
            real
        } else {
            path.clone()
        };
        let meta = std::fs::metadata(&real).with_context(|| format!("{}", path.display()))?;
        if meta.is_dir() {
            if chain.contains(&real) {
                bail!("{}: a symbolic link loop", path.display());
            }
            chain.push(real.clone());
            walk(root, &real, &url, chain, out)?;
            chain.pop();
        } else if meta.is_file() {
            out.push((url, real));
        } else {
            bail!("{}: neither a regular file nor a directory", path.display());
        }
    }
    Ok(())
}

/// One file's manifest entry and the `(hash, bytes)` it needs stored.
type ReadFile = (String, FileEntry, Vec<(String, Vec<u8>)>);

/// [`read_file`] for every item, on as many threads as there are cores; the result is in
/// `items` order, and the first error (in that order) wins.
fn read_all(items: &[(String, PathBuf)]) -> Result<Vec<ReadFile>> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(items.len())
        .max(1);
    let next = AtomicUsize::new(0);
    let done: Mutex<Vec<(usize, Result<ReadFile>)>> = Mutex::new(Vec::with_capacity(items.len()));
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((url, disk)) = items.get(i) else {
                    return;
                };
                let result = read_file(url, disk);
                done.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((i, result));
            });
        }
    });
    let mut done = done.into_inner().unwrap_or_else(|e| e.into_inner());
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

/// Reads, hashes and precompresses one file.
fn read_file(url: &str, disk: &Path) -> Result<ReadFile> {
    let bytes = std::fs::read(disk).with_context(|| format!("reading {}", disk.display()))?;
    let content_type = content_type(disk);
    let built = variants(&bytes, &content_type).with_context(|| format!("{}", disk.display()))?;
    let hash = sha256_hex(&bytes);
    let entry = FileEntry {
        hash: hash.clone(),
        content_type,
        size: bytes.len() as u64,
        encodings: built.iter().map(|v| v.entry.clone()).collect(),
    };
    let mut blobs = vec![(hash, bytes)];
    blobs.extend(built.into_iter().map(|v| (v.entry.hash, v.bytes)));
    Ok((url.to_owned(), entry, blobs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use fastgate::release::Coding;

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "fastgate-web-{name}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_build_becomes_entries_with_hashes_types_and_variants() {
        let dir = temp("build");
        let html = "<!doctype html><title>x</title>\n".repeat(40);
        std::fs::create_dir_all(dir.join("assets")).unwrap();
        std::fs::create_dir_all(dir.join(".well-known")).unwrap();
        std::fs::write(dir.join("index.html"), &html).unwrap();
        std::fs::write(dir.join("assets/logo.png"), [0x89, b'P', b'N', b'G']).unwrap();
        std::fs::write(dir.join(".well-known/security.txt"), "Contact: x\n").unwrap();
        let build = read_web_dir(&dir).unwrap();
        let paths: Vec<&str> = build.files.keys().map(String::as_str).collect();
        assert_eq!(
            paths,
            [
                "/.well-known/security.txt",
                "/assets/logo.png",
                "/index.html"
            ]
        );
        let index = &build.files["/index.html"];
        assert_eq!(index.hash, sha256_hex(html.as_bytes()));
        assert_eq!(index.size, html.len() as u64);
        assert_eq!(index.content_type, "text/html; charset=utf-8");
        let codings: Vec<Coding> = index.encodings.iter().map(|e| e.coding).collect();
        assert_eq!(codings, [Coding::Br, Coding::Gzip]);
        for e in &index.encodings {
            assert_eq!(sha256_hex(&build.blobs[&e.hash]), e.hash);
            assert!(e.size < index.size);
        }
        let logo = &build.files["/assets/logo.png"];
        assert_eq!(logo.content_type, "image/png");
        assert!(logo.encodings.is_empty(), "small and binary: no variant");
        assert_eq!(build.blobs.len(), 5);
        assert_eq!(build.variant_count(), 2);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn paths_the_edge_cannot_serve_are_refused_naming_the_file() {
        for bad in ["a\\b.html", "tab\t.txt"] {
            let dir = temp("bad");
            std::fs::write(dir.join(bad), "x").unwrap();
            let e = format!("{:#}", read_web_dir(&dir).unwrap_err());
            assert!(e.contains(bad), "{bad:?}: {e}");
            assert!(e.contains("invalid"), "{bad:?}: {e}");
            std::fs::remove_dir_all(dir).unwrap();
        }
    }

    #[test]
    fn names_are_published_as_their_requests_spell_them() {
        let dir = temp("spelling");
        for name in ["a b?.html", "café#1.txt", "x(1)+y.txt"] {
            std::fs::write(dir.join(name), "x").unwrap();
        }
        let build = read_web_dir(&dir).unwrap();
        let paths: Vec<&str> = build.files.keys().map(String::as_str).collect();
        assert_eq!(
            paths,
            ["/a%20b%3F.html", "/caf%C3%A9%231.txt", "/x(1)+y.txt"]
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn non_utf8_names_are_refused() {
        use std::os::unix::ffi::OsStrExt;
        let dir = temp("utf8");
        let name = std::ffi::OsStr::from_bytes(b"bad-\xff.html");
        std::fs::write(dir.join(name), "x").unwrap();
        let e = format!("{:#}", read_web_dir(&dir).unwrap_err());
        assert!(e.contains("not UTF-8"), "{e}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn links_inside_are_followed_and_links_outside_refused() {
        let dir = temp("links");
        let outside = temp("outside");
        std::fs::write(outside.join("secret"), "s").unwrap();
        std::fs::write(dir.join("a.txt"), "a").unwrap();
        std::os::unix::fs::symlink(dir.join("a.txt"), dir.join("b.txt")).unwrap();
        let build = read_web_dir(&dir).unwrap();
        assert_eq!(build.files["/a.txt"].hash, build.files["/b.txt"].hash);
        std::os::unix::fs::symlink(&dir, dir.join("loop")).unwrap();
        let e = format!("{:#}", read_web_dir(&dir).unwrap_err());
        assert!(e.contains("loop"), "{e}");
        std::fs::remove_file(dir.join("loop")).unwrap();
        std::os::unix::fs::symlink(outside.join("secret"), dir.join("leak")).unwrap();
        let e = format!("{:#}", read_web_dir(&dir).unwrap_err());
        assert!(e.contains("outside the web directory"), "{e}");
        std::fs::remove_dir_all(dir).unwrap();
        std::fs::remove_dir_all(outside).unwrap();
    }
}
