//! Whether a release may be put in force: its manifest parses (see `Manifest::parse`), and
//! the config it names is the one stored under its hash and validates as the edge loads
//! every config. The edge runs this before serving a release, the ops endpoint before
//! flipping the pointer, and `cargo xtask release` before uploading; all three refuse with
//! the same message, which names the config field at fault.

use super::error::ReleaseError;
use super::manifest::{config_key, Manifest};
use super::ops::sha256_hex;
use crate::config::Config;

/// Checks `manifest` with the bytes stored at its config key (`None`: not stored), and
/// returns the config's text when it has one.
pub fn check_release(
    manifest: &Manifest,
    config: Option<&[u8]>,
) -> Result<Option<String>, ReleaseError> {
    let Some(hash) = &manifest.config else {
        return Ok(None);
    };
    let key = config_key(hash);
    let bytes = config.ok_or_else(|| ReleaseError::Missing(key.clone()))?;
    if sha256_hex(bytes) != *hash {
        return Err(ReleaseError::HashMismatch(key));
    }
    let refuse = |reason: String| ReleaseError::Config {
        release: manifest.name.clone(),
        reason,
    };
    let text = std::str::from_utf8(bytes).map_err(|_| refuse("it is not UTF-8".into()))?;
    Config::parse(text).map_err(|e| refuse(e.to_string()))?;
    Ok(Some(text.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::EMBEDDED;

    fn manifest(config: Option<&str>) -> Manifest {
        Manifest {
            name: "r1".into(),
            config: config.map(|c| sha256_hex(c.as_bytes())),
            created: 1,
            files: Default::default(),
        }
    }

    #[test]
    fn a_release_without_config_keeps_the_edge_config() {
        assert_eq!(check_release(&manifest(None), None), Ok(None));
    }

    #[test]
    fn the_stored_config_must_be_the_named_one_and_valid() {
        let m = manifest(Some(EMBEDDED));
        assert_eq!(
            check_release(&m, Some(EMBEDDED.as_bytes()))
                .unwrap()
                .as_deref(),
            Some(EMBEDDED)
        );
        assert!(matches!(
            check_release(&m, None),
            Err(ReleaseError::Missing(_))
        ));
        assert!(matches!(
            check_release(&m, Some(b"{}")),
            Err(ReleaseError::HashMismatch(_))
        ));
        let broken = EMBEDDED.replace("\"max_attempts\":3", "\"max_attempts\":0");
        let e = check_release(&manifest(Some(&broken)), Some(broken.as_bytes())).unwrap_err();
        assert!(e.to_string().contains("release `r1`"), "{e}");
        assert!(e.to_string().contains("`failover`"), "{e}");
    }
}
