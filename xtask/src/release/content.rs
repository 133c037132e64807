//! What a published file is served as: its content type, and its precompressed variants.
//!
//! Variants are built once, at publish time, at the highest settings (brotli 11, gzip 9):
//! the edge then only picks one per request (`fastgate::release::negotiate`) and never
//! spends its 50 ms of CPU compressing. Both encoders are deterministic (gzip's header
//! carries no time or name here), so the same file always gives the same variant bytes,
//! hence the same `files/<sha256>` key, and republishing an unchanged file uploads nothing.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use fastgate::release::{sha256_hex, Coding, Encoded};

/// Files smaller than this are not precompressed: the saving would not pay for a second
/// KV lookup's worth of bookkeeping, and tiny inputs rarely shrink.
pub const MIN_COMPRESS_BYTES: usize = 256;
/// Brotli quality and window: the maximum, since this runs once per file and version.
const BROTLI_QUALITY: i32 = 11;
const BROTLI_LGWIN: i32 = 22;

/// The `Content-Type` a file is served with, by extension. Text types say `charset=utf-8`
/// (browsers otherwise guess, and a guess can turn a script into mojibake); JavaScript is
/// `text/javascript` (RFC 9239) whatever the extension; unknown types are
/// `application/octet-stream`, so that nothing is ever sniffed as HTML.
pub fn content_type(path: &Path) -> String {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let essence = match ext.as_str() {
        "js" | "mjs" | "cjs" => "text/javascript".to_owned(),
        "map" => "application/json".to_owned(),
        _ => mime_guess::from_ext(&ext)
            .first_raw()
            .unwrap_or("application/octet-stream")
            .to_owned(),
    };
    let charset = matches!(
        ext.as_str(),
        "html"
            | "htm"
            | "css"
            | "js"
            | "mjs"
            | "cjs"
            | "json"
            | "map"
            | "svg"
            | "txt"
            | "xml"
            | "webmanifest"
    );
    if charset {
        format!("{essence}; charset=utf-8")
    } else {
        essence
    }
}

/// Whether a content type is worth precompressing: text, and the structured text and
/// code formats (JSON, SVG, XML, Wasm, web manifests, source maps). Images, fonts and
/// archives are compressed already.
pub fn is_compressible(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    essence.starts_with("text/")
        || essence.ends_with("+json")
        || essence.ends_with("+xml")
        || matches!(
            essence,
            "application/json"
                | "application/javascript"
                | "application/xml"
                | "application/wasm"
                | "image/svg+xml"
        )
}

/// One stored variant: its manifest entry and its bytes.
pub struct Variant {
    pub entry: Encoded,
    pub bytes: Vec<u8>,
}

/// The brotli and gzip variants of `bytes`, each kept only when strictly smaller than
/// the identity bytes (a variant that does not shrink is pure cost: a second KV value and
/// a `Vary` that splits caches for nothing).
pub fn variants(bytes: &[u8], content_type: &str) -> Result<Vec<Variant>> {
    if bytes.len() < MIN_COMPRESS_BYTES || !is_compressible(content_type) {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for (coding, encoded) in [(Coding::Br, brotli(bytes)?), (Coding::Gzip, gzip(bytes)?)] {
        if encoded.len() < bytes.len() {
            out.push(Variant {
                entry: Encoded {
                    coding,
                    hash: sha256_hex(&encoded),
                    size: encoded.len() as u64,
                },
                bytes: encoded,
            });
        }
    }
    Ok(out)
}

fn brotli(bytes: &[u8]) -> Result<Vec<u8>> {
    let params = brotli::enc::BrotliEncoderParams {
        quality: BROTLI_QUALITY,
        lgwin: BROTLI_LGWIN,
        size_hint: bytes.len(),
        ..Default::default()
    };
    let mut out = Vec::new();
    brotli::BrotliCompress(&mut &bytes[..], &mut out, &params).context("brotli compression")?;
    Ok(out)
}

fn gzip(bytes: &[u8]) -> Result<Vec<u8>> {
    // `GzEncoder::new` writes mtime 0 and no file name: the output depends on the input only.
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).context("gzip compression")?;
    encoder.finish().context("gzip compression")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn content_types_by_extension() {
        let ct = |p: &str| content_type(Path::new(p));
        assert_eq!(ct("index.html"), "text/html; charset=utf-8");
        assert_eq!(ct("a/app.3f2a9c1b.JS"), "text/javascript; charset=utf-8");
        assert_eq!(ct("m.mjs"), "text/javascript; charset=utf-8");
        assert_eq!(ct("s.css"), "text/css; charset=utf-8");
        assert_eq!(ct("d.json"), "application/json; charset=utf-8");
        assert_eq!(ct("app.js.map"), "application/json; charset=utf-8");
        assert_eq!(ct("i.svg"), "image/svg+xml; charset=utf-8");
        assert_eq!(
            ct("site.webmanifest"),
            "application/manifest+json; charset=utf-8"
        );
        assert_eq!(ct("logo.png"), "image/png");
        assert_eq!(ct("m.wasm"), "application/wasm");
        assert_eq!(ct("f.woff2"), "font/woff2");
        assert_eq!(ct("LICENSE"), "application/octet-stream");
        assert_eq!(ct("x.unknownext"), "application/octet-stream");
    }

    #[test]
    fn compressible_types() {
        for ct in [
            "text/html; charset=utf-8",
            "text/javascript",
            "application/json; charset=utf-8",
            "image/svg+xml",
            "application/wasm",
            "application/manifest+json",
            "application/xml",
        ] {
            assert!(is_compressible(ct), "{ct}");
        }
        for ct in ["image/png", "font/woff2", "application/octet-stream"] {
            assert!(!is_compressible(ct), "{ct}");
        }
    }

    #[test]
    fn variants_decode_to_the_original_and_are_deterministic() {
        let text = "body { color: red; }\n".repeat(100);
        let vs = variants(text.as_bytes(), "text/css").unwrap();
        assert_eq!(vs.len(), 2);
        assert_eq!(vs[0].entry.coding, Coding::Br);
        assert_eq!(vs[1].entry.coding, Coding::Gzip);
        let mut br = Vec::new();
        brotli::Decompressor::new(&vs[0].bytes[..], 4096)
            .read_to_end(&mut br)
            .unwrap();
        assert_eq!(br, text.as_bytes());
        let mut gz = Vec::new();
        flate2::read::GzDecoder::new(&vs[1].bytes[..])
            .read_to_end(&mut gz)
            .unwrap();
        assert_eq!(gz, text.as_bytes());
        for v in &vs {
            assert_eq!(v.entry.hash, sha256_hex(&v.bytes));
            assert_eq!(v.entry.size, v.bytes.len() as u64);
        }
        let again = variants(text.as_bytes(), "text/css").unwrap();
        assert_eq!(again[1].bytes, vs[1].bytes, "gzip must not embed a time");
    }

    #[test]
    fn small_incompressible_or_growing_inputs_get_no_variant() {
        assert!(variants(b"tiny", "text/plain").unwrap().is_empty());
        let big = vec![7u8; 4096];
        assert!(variants(&big, "image/png").unwrap().is_empty());
        // Random bytes do not shrink: neither variant is kept.
        let mut noise = Vec::with_capacity(4096);
        let mut x: u32 = 0x9e37_79b9;
        for _ in 0..4096 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            noise.push(x as u8);
        }
        assert!(variants(&noise, "text/plain").unwrap().is_empty());
    }
}
