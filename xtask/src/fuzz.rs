//! `cargo xtask fuzz proto [--seconds N]`: every cargo-fuzz target, N seconds each.
//!
//! The targets live in `fuzz/`, its own workspace (cargo-fuzz needs nightly and
//! `-Zsanitizer`); their names come from `cargo fuzz list`, so adding a target needs no
//! change here. All of them fuzz totem-proto's decoders today, so the `proto` group runs them
//! all; a later group (e.g. `ring`) would filter the list by a name prefix.
//!
//! Not part of `cargo xtask ci` (CI is stable-only and time-boxed); the stable
//! "fuzz-lite" unit tests (STYLE point 16) cover the same properties there.

use crate::cmd::{Cmd, root_path};

/// Groups `cargo xtask fuzz` accepts.
pub(crate) const GROUPS: &[&str] = &["proto"];

/// Seconds per target when `--seconds` is not given.
pub(crate) const DEFAULT_SECONDS: u64 = 60;

const FUZZ_DIR: &str = "fuzz";

/// Runs each target of `group` for `seconds`; fails naming whatever is missing.
pub(crate) fn run(group: &str, seconds: u64) -> crate::Result {
    let mut missing = Vec::new();
    if !root_path(&format!("{FUZZ_DIR}/Cargo.toml")).is_file() {
        missing.push(format!(
            "the fuzz workspace: {FUZZ_DIR}/Cargo.toml does not exist yet"
        ));
    }
    if !Cmd::rustup_cargo().args(["fuzz", "--version"]).succeeds() {
        missing.push("cargo-fuzz: install it with `cargo install cargo-fuzz --locked`".into());
    }
    if !Cmd::rustup_cargo()
        .args(["+nightly", "--version"])
        .succeeds()
    {
        missing.push(
            "a nightly toolchain (cargo-fuzz needs -Zsanitizer): install it with \
             `rustup toolchain install nightly --profile minimal`"
                .into(),
        );
    }
    if !missing.is_empty() {
        return Err(format!(
            "cannot run `fuzz {group}`, missing:\n  {}",
            missing.join("\n  ")
        ));
    }

    let list = Cmd::rustup_cargo()
        .args(["+nightly", "fuzz", "list"])
        .dir(FUZZ_DIR);
    println!("$ {list}");
    let out = list.output()?;
    if !out.status.success() {
        eprintln!("{}", String::from_utf8_lossy(&out.stderr));
        return Err(format!("`{list}` failed ({})", out.status));
    }
    let targets: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    if targets.is_empty() {
        return Err("`cargo fuzz list` names no target".into());
    }
    println!(
        "fuzz {group}: {} target(s), {seconds}s each: {}",
        targets.len(),
        targets.join(", ")
    );
    for target in &targets {
        Cmd::rustup_cargo()
            .args(["+nightly", "fuzz", "run", target, "--"])
            .arg(format!("-max_total_time={seconds}"))
            .dir(FUZZ_DIR)
            .run()?;
    }
    println!("fuzz {group}: ok");
    Ok(())
}
