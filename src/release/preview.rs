//! Preview by host: `preview-<name>.<any domain>` is answered by release `<name>`, published
//! or not yet active, while every other host gets the active release.
//!
//! The host is the client's to choose, so it selects nothing it could not select anyway:
//! only a valid release name (never a KV key fragment), and only when the preview key
//! admits it (see the adapter). A preview answer is kept out of every shared cache by the
//! adapter, so a preview can never be served to a client of the active release.

use super::manifest::is_valid_release_name;

/// The first host label's prefix that asks for a preview.
pub const PREVIEW_LABEL_PREFIX: &str = "preview-";

/// The release a `Host` value asks to preview, if any: its first label is
/// `preview-<name>` (any case; a port is ignored) and `<name>` is a valid release name.
pub fn preview_name(host: Option<&str>) -> Option<String> {
    let host = host?.trim();
    let label = host.split(['.', ':']).next()?;
    if label.len() <= PREVIEW_LABEL_PREFIX.len()
        || !label.is_char_boundary(PREVIEW_LABEL_PREFIX.len())
    {
        return None;
    }
    let (prefix, name) = label.split_at(PREVIEW_LABEL_PREFIX.len());
    if !prefix.eq_ignore_ascii_case(PREVIEW_LABEL_PREFIX) {
        return None;
    }
    let name = name.to_ascii_lowercase();
    is_valid_release_name(&name).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_first_label_naming_a_valid_release_previews() {
        let name = |h: &str| preview_name(Some(h));
        assert_eq!(name("preview-r2.example.com").as_deref(), Some("r2"));
        assert_eq!(name("Preview-R2.localhost:7676").as_deref(), Some("r2"));
        assert_eq!(name("preview-r2").as_deref(), Some("r2"));
        assert_eq!(name("preview-r2:7676").as_deref(), Some("r2"));
        for none in [
            "example.com",
            "preview-.example.com",
            "preview-none.example.com",
            "preview-a_b.example.com",
            "www.preview-r2.example.com",
            "previewr2.example.com",
            "préview-r2.x",
            "",
        ] {
            assert_eq!(name(none), None, "{none}");
        }
        assert_eq!(preview_name(None), None);
    }
}
