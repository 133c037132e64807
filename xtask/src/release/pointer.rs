//! `activate` and `rollback`: the one pointer flip, after checking that the release
//! loads in every store.

use anyhow::{anyhow, bail, Context, Result};
use fastgate::config::Config;
use fastgate::release::{
    config_key, is_valid_release_name, parse_active, release_key, Manifest, ReleaseError,
    ACTIVE_KEY,
};

use super::inventory::infos;
use super::kv::{self, Kv};
use super::{fastly, open, Dest, Stores};

/// `cargo xtask release activate NAME`: checks that the release loads in every store
/// (its manifest parses, its config validates with the edge's parser, every value it
/// refers to is stored) before flipping the pointer in any of them.
pub fn activate<'a>(to: impl Into<Dest<'a>>, name: &str) -> Result<()> {
    let to = to.into();
    let mut stores = open(to)?;
    activate_in(&mut stores, name)?;
    if !to.is_production() {
        println!("Production (with $STORE_ID set as `publish` printed):");
        fastly::print_lines(&[fastly::activate_command(name)]);
    }
    Ok(())
}

fn activate_in(stores: &mut Stores, name: &str) -> Result<()> {
    if !is_valid_release_name(name) {
        bail!("{}", ReleaseError::BadName(name.to_owned()));
    }
    let previous = active_of(stores.primary())?;
    for kv in stores.0.iter_mut() {
        verify_release(kv.as_mut(), name)?;
    }
    for kv in stores.0.iter_mut() {
        kv.put_all(&[(ACTIVE_KEY.to_owned(), name.as_bytes().to_vec())])
            .with_context(|| format!("{}: activating `{name}`", kv.describe()))?;
    }
    println!(
        "xtask: active release: {name} (was: {})",
        previous.as_deref().unwrap_or("none")
    );
    Ok(())
}

/// Whether `name` would load in `kv` (see [`activate`]).
pub(super) fn verify_release(kv: &mut dyn Kv, name: &str) -> Result<Manifest> {
    let key = release_key(name);
    let where_ = kv.describe();
    let bytes = kv
        .get(&key)?
        .ok_or_else(|| anyhow!("release `{name}` is not published in {where_}"))?;
    let manifest = Manifest::parse(&bytes).map_err(|e| anyhow!("{where_}: `{key}`: {e}"))?;
    if manifest.name != name {
        bail!("{where_}: `{key}` names itself `{}`", manifest.name);
    }
    if let Some(hash) = &manifest.config {
        let bytes = kv.get(&config_key(hash))?.ok_or_else(|| {
            anyhow!(
                "release `{name}`: `{}` is not in {where_}",
                config_key(hash)
            )
        })?;
        let invalid = |reason: String| ReleaseError::Config {
            release: name.to_owned(),
            reason,
        };
        let text = std::str::from_utf8(&bytes).map_err(|e| invalid(e.to_string()))?;
        Config::parse(text).map_err(|e| invalid(e.to_string()))?;
    }
    let stored = kv::stored_content(kv)?;
    if let Some(missing) = manifest
        .references()
        .into_iter()
        .find(|k| !stored.contains(k))
    {
        bail!("release `{name}`: `{missing}` is not in {where_}");
    }
    Ok(manifest)
}

/// The active release's name; `None` when there is no pointer or it is unreadable (a
/// broken pointer must not stop ops from setting a good one).
pub(super) fn active_of(kv: &mut dyn Kv) -> Result<Option<String>> {
    let Some(bytes) = kv.get(ACTIVE_KEY)? else {
        return Ok(None);
    };
    match parse_active(&bytes) {
        Ok(name) => Ok(Some(name)),
        Err(e) => {
            eprintln!(
                "xtask: {}: the `{ACTIVE_KEY}` pointer is invalid: {e}",
                kv.describe()
            );
            Ok(None)
        }
    }
}

/// `cargo xtask release rollback`: activates the release published just before the
/// active one, in publication order (`created`, then name). No history is kept: the
/// store itself says what came before, so rollback works the same from any machine and
/// for production. Rolling back twice goes two releases back; to return, `activate` the
/// newer one by name. Returns the release now active.
pub fn rollback<'a>(to: impl Into<Dest<'a>>) -> Result<String> {
    let to = to.into();
    let mut stores = open(to)?;
    let infos = infos(stores.primary())?;
    let active = infos
        .iter()
        .position(|i| i.active)
        .ok_or_else(|| anyhow!("no release is active: nothing to roll back from"))?;
    let Some(previous) = active.checked_sub(1).map(|i| infos[i].name.clone()) else {
        bail!(
            "`{}` is the oldest release published: nothing to roll back to",
            infos[active].name
        );
    };
    activate_in(&mut stores, &previous)?;
    if !to.is_production() {
        println!("Production (with $STORE_ID set as `publish` printed):");
        fastly::print_lines(&[fastly::activate_command(&previous)]);
    }
    Ok(previous)
}
