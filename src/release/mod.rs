//! Releases: what the edge serves, versioned as a whole. A **release** is one gateway config
//! plus one front-end build (a directory of static files), published to a Fastly KV Store so
//! that neither is bound by the Config Store's 8,000-character values:
//!
//! - every file, and every precompressed variant of it, is stored under its content hash
//!   (`files/<sha256>`), so identical files are shared by every release that has them and a
//!   published key never changes meaning;
//! - the config is stored by hash too (`configs/<sha256>`);
//! - a small [`Manifest`] (`releases/<name>`) names the config hash and maps each path to its
//!   file hash, content type, size and encodings;
//! - the active release is **one pointer** ([`ACTIVE_KEY`], whose value is a release name).
//!   Everything a manifest refers to is written before the manifest, and the manifest before
//!   the pointer, so flipping the pointer is atomic: a request reads one manifest and sees
//!   one release, never a mix. Rolling back is the same flip;
//! - any published release can be previewed by host (`preview-<name>.<domain>`): the adapter
//!   picks the manifest by name instead of through the pointer.
//!
//! This module is the platform-free half, tested natively:
//! 1. `manifest`: the manifest's schema, its bounded parsing and the KV key names;
//! 2. `limits`: the Fastly KV Store limits a release must fit, for the publishing commands
//!    (and `cargo xtask config check`) to check before anything is uploaded;
//! 3. `negotiate`: which precompressed variant an `Accept-Encoding` asks for;
//! 4. `static_files`: how a request for a path is answered from a manifest (which stored
//!    file, which headers, 304, 404), without reading any bytes;
//! 5. `error`: [`ReleaseError`], whose message names what is wrong.
//!
//! Nothing here panics on any input: manifests and request headers are both untrusted.

mod check;
mod error;
mod limits;
mod manifest;
mod negotiate;
mod ops;
mod preview;
mod settings;
mod static_files;

pub use check::check_release;
pub use error::ReleaseError;
pub use limits::{
    check_limits, is_valid_kv_key, KV_MAX_KEY_BYTES, KV_MAX_VALUE_BYTES, MAX_FILES,
    MAX_MANIFEST_BYTES, MAX_PATH_BYTES,
};
pub use manifest::{
    config_key, file_key, is_valid_hash, is_valid_release_name, parse_active, release_key, Coding,
    Encoded, FileEntry, Manifest, ACTIVE_KEY,
};
pub use negotiate::{negotiate, Negotiated, MAX_ACCEPT_ENCODING_ENTRIES};
pub use ops::{
    bearer, check_put, is_ops_path, parse_request, secret_matches, sha256_hex, OpsRefusal,
    OpsRequest, StoreKey, LIST_PAGE, NO_RELEASE, OPS_KEY_SECRET, OPS_PREFIX, PREVIEW_KEY_HEADER,
    PREVIEW_KEY_SECRET, RELEASE_HEADER, STORE,
};
pub use preview::{preview_name, PREVIEW_LABEL_PREFIX};
pub use settings::{CacheControlRule, StaticSettings};
pub use static_files::{
    answer, is_hashed_asset, PathPattern, StaticAnswer, StaticPolicy, StaticRequest, ALLOW,
    IMMUTABLE,
};
