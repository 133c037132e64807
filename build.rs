//! Embeds `config/default.json` minified: every request parses the embedded config (each runs
//! in a fresh Wasm instance), and JSON parsing time grows with the bytes scanned, so the
//! indentation that makes the file readable would be paid on every request.

use std::path::PathBuf;

fn main() {
    let source = PathBuf::from("config/default.json");
    println!("cargo:rerun-if-changed={}", source.display());
    let text = std::fs::read_to_string(&source).expect("reading config/default.json");
    // The edge's own validation runs in the unit tests; here only well-formed JSON matters.
    let value: serde_json::Value =
        serde_json::from_str(&text).expect("config/default.json is not valid JSON");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    std::fs::write(out.join("default.min.json"), value.to_string())
        .expect("writing the minified config");
}
