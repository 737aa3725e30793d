//! Facts about the workspace that more than one task needs, each stated once.
//!
//! [`CORE_CRATES`] is the single list of no_std crates: `cargo xtask ci` tests and lints
//! each of them lean, `cargo xtask nostd` proves each of them no_std, `cargo xtask tidy`
//! keeps `HashMap` out of each of them. Adding a core crate is one line here (plus, once it
//! has code, a path dependency and a scenario in `nostd-check/`).

use std::path::{Path, PathBuf};

use crate::cmd::Cmd;

/// The `#![no_std]` crates (DESIGN.md "The layers"; STYLE "Feature plan"), bottom up.
pub(crate) const CORE_CRATES: &[&str] = &[
    "totem-proto",
    "totem-transport",
    "totem-ring",
    "objdb",
    "services",
    "transport-smoltcp",
];

/// The no_std proof binary's own workspace, relative to the root.
pub(crate) const NOSTD_CHECK_DIR: &str = "nostd-check";

/// Target dir of the nostd-check build (STYLE): separate, because its `panic = "abort"`
/// profile and its no-default-features graph would otherwise evict the workspace's
/// artifacts on every CI run. Everything else uses the workspace's default `target/`.
pub(crate) const NOSTD_TARGET_DIR: &str = "target/nostd";

/// The bare-metal target every core crate must build for: no std in its sysroot (so a
/// dependency that links std fails), and 32-bit (so `usize` assumptions fail).
pub(crate) const BARE_METAL_TARGET: &str = "thumbv7em-none-eabihf";

/// The workspace root: xtask lives one level below it.
pub(crate) fn root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .unwrap_or(manifest_dir) // xtask/ always has a parent: the workspace root
        .to_path_buf()
}

/// `cargo test -p <krate> --no-default-features`: the lean configuration under a test
/// harness (STYLE: `cargo test --workspace` unifies features, so it never tests this).
pub(crate) fn lean_test(krate: &str) -> Cmd {
    Cmd::cargo().args(["test", "-p", krate, "--no-default-features"])
}

/// `cargo clippy -p <krate> --all-targets --no-default-features -- -D warnings`.
pub(crate) fn lean_clippy(krate: &str) -> Cmd {
    Cmd::cargo().args([
        "clippy",
        "-p",
        krate,
        "--all-targets",
        "--no-default-features",
        "--",
        "-D",
        "warnings",
    ])
}

/// Whether the crate in directory `krate` declares the Cargo feature `feature`.
///
/// A line scan of its `[features]` table, which is all `Cargo.toml` files here need: the
/// table is written one `name = [...]` per line (STYLE point 18).
pub(crate) fn has_feature(krate: &str, feature: &str) -> crate::Result<bool> {
    let path = root().join(krate).join("Cargo.toml");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(declares_feature(&text, feature))
}

fn declares_feature(manifest: &str, feature: &str) -> bool {
    let mut in_features = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_features = line == "[features]";
        } else if in_features
            && let Some((name, _)) = line.split_once('=')
            && name.trim().trim_matches('"') == feature
        {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_features_only_in_the_features_table() {
        let manifest = "[package]\ndefmt = 1\n[features]\ndefault = []\n\"defmt\" = [\"dep:defmt\"]\n[dependencies]\nlog = \"0.4\"\n";
        assert!(declares_feature(manifest, "defmt"));
        assert!(declares_feature(manifest, "default"));
        assert!(!declares_feature(manifest, "log"));
        assert!(!declares_feature("[package]\nname = \"x\"\n", "defmt"));
    }

    #[test]
    fn core_crates_exist_and_are_listed_once() {
        for (i, krate) in CORE_CRATES.iter().enumerate() {
            assert!(!CORE_CRATES[..i].contains(krate), "{krate} listed twice");
            assert!(root().join(krate).is_dir(), "{krate}/ missing");
        }
    }
}
