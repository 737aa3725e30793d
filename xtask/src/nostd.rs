//! `cargo xtask nostd`: the proof that the core crates are no_std (STYLE "no_std: features,
//! and how to prove it"), in the order STYLE lists it:
//!
//! 1. build `nostd-check/` (its own workspace: a `#![no_std] #![no_main]` binary with its own
//!    `#[panic_handler]`) debug and release into `target/nostd`, run both, require exit 0;
//! 2. the canary: the same build with feature `canary-std` (`extern crate std;`) must fail
//!    with E0152, duplicate lang item `panic_impl` — proof that step 1 *can* fail;
//! 3. `DEFMT_LOG=trace cargo check -p <core crate> --no-default-features --features defmt`
//!    (compile-checked, not linked: a defmt link needs a global logger and linker script);
//! 4. `cargo build --target thumbv7em-none-eabihf -p <core crate>`: a sysroot without std,
//!    and 32-bit `usize`; skipped with a WARNING if the target is not installed;
//! 5. `cargo test -p <core crate> --no-default-features` — only when run standalone:
//!    `cargo xtask ci` runs these (plus lean clippy) in its own `lean` step before
//!    calling this, and does not run them twice.
//!
//! `--self-test` runs step 2 alone.

use crate::cmd::{Cmd, root_path};
use crate::workspace::{
    BARE_METAL_TARGET, CORE_CRATES, NOSTD_CHECK_DIR, NOSTD_TARGET_DIR, has_feature, lean_test,
};

/// Core crates that do not declare a `defmt` feature *yet* (doc-only stubs): step 3 skips
/// them with a warning. STYLE's feature plan wants `defmt` on every core crate, so a crate
/// not listed here that lacks the feature fails the step. Remove a crate once it has the
/// feature (step 3 prints a note when it notices).
const DEFMT_FEATURE_PENDING: &[&str] = &[];

/// What to run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Options {
    /// `--self-test`: only the canary.
    pub(crate) self_test_only: bool,
    /// Step 5 (lean tests); `cargo xtask ci` turns it off because its `lean` step ran them.
    pub(crate) lean_tests: bool,
}

/// Runs the proof; `Err` names the first failing part.
pub(crate) fn run(options: Options) -> crate::Result {
    if options.self_test_only {
        heading("canary self-test");
        return canary();
    }
    heading("1/5 build and run nostd-check (debug, release)");
    build_and_run()?;
    heading("2/5 canary: std in the graph must be rejected");
    canary()?;
    heading("3/5 defmt compile checks");
    defmt_checks()?;
    heading(&format!("4/5 bare-metal builds ({BARE_METAL_TARGET})"));
    bare_metal_builds()?;
    heading("5/5 lean tests");
    if options.lean_tests {
        for krate in CORE_CRATES {
            lean_test(krate).run()?;
        }
    } else {
        println!("skipped here: `cargo xtask ci` ran them in its `lean` step");
    }
    println!("nostd: ok");
    Ok(())
}

fn heading(what: &str) {
    println!("\n--- nostd {what}");
}

fn nostd_build() -> Cmd {
    Cmd::cargo().args([
        "build",
        "--manifest-path",
        &format!("{NOSTD_CHECK_DIR}/Cargo.toml"),
        "--target-dir",
        NOSTD_TARGET_DIR,
    ])
}

fn build_and_run() -> crate::Result {
    for profile in ["debug", "release"] {
        let mut build = nostd_build();
        if profile == "release" {
            build = build.arg("--release");
        }
        build.run()?;
        let bin = format!("{NOSTD_TARGET_DIR}/{profile}/nostd-check");
        Cmd::new(root_path(&bin).to_string_lossy())
            .shown_as(bin)
            .run()?;
    }
    Ok(())
}

/// The self-test: with `extern crate std;` the binary must not build, and for the right
/// reason (std's `panic_impl` colliding with ours), or the check proves nothing.
fn canary() -> crate::Result {
    let cmd = nostd_build()
        .args(["--features", "canary-std"])
        .env("CARGO_TERM_COLOR", "never");
    println!("$ {cmd}");
    println!("  (expected to fail with error[E0152]: duplicate lang item `panic_impl`)");
    let out = cmd.output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        return Err(
            "canary: nostd-check built with `extern crate std;`: the no_std check \
                    cannot fail, so it proves nothing"
                .into(),
        );
    }
    if !(stderr.contains("E0152") && stderr.contains("panic_impl")) {
        eprintln!("{stderr}");
        return Err(
            "canary: the build failed, but not with E0152 duplicate lang item \
                    `panic_impl` (see the output above)"
                .into(),
        );
    }
    for line in stderr
        .lines()
        .filter(|l| l.contains("E0152") || l.contains("lang item"))
    {
        println!("  canary| {}", line.trim());
    }
    println!("canary: ok: a std crate in the graph is rejected");
    Ok(())
}

fn defmt_checks() -> crate::Result {
    for krate in CORE_CRATES {
        let pending = DEFMT_FEATURE_PENDING.contains(krate);
        if !has_feature(krate, "defmt")? {
            if pending {
                println!(
                    "WARNING: {krate} has no `defmt` feature yet: defmt check skipped \
                     (xtask/src/nostd.rs DEFMT_FEATURE_PENDING)"
                );
                continue;
            }
            return Err(format!(
                "{krate} declares no `defmt` feature (STYLE no_std feature plan: every core \
                 crate has one)"
            ));
        }
        if pending {
            println!(
                "NOTE: {krate} has a `defmt` feature now: remove it from DEFMT_FEATURE_PENDING \
                 in xtask/src/nostd.rs"
            );
        }
        Cmd::cargo()
            .args([
                "check",
                "-p",
                krate,
                "--no-default-features",
                "--features",
                "defmt",
            ])
            .env("DEFMT_LOG", "trace")
            .run()?;
    }
    Ok(())
}

fn bare_metal_builds() -> crate::Result {
    if !target_installed(BARE_METAL_TARGET) {
        println!("WARNING: {BARE_METAL_TARGET} not installed: bare-metal build skipped");
        return Ok(());
    }
    for krate in CORE_CRATES {
        Cmd::cargo()
            .args(["build", "--target", BARE_METAL_TARGET, "-p", krate])
            .run()?;
    }
    Ok(())
}

/// `rustup target list --installed` names `target`; without rustup, whether the active
/// sysroot has a library directory for it.
pub(crate) fn target_installed(target: &str) -> bool {
    if let Ok(out) = Cmd::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        && out.status.success()
    {
        return String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| l.trim() == target);
    }
    Cmd::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .is_some_and(|out| {
            let sysroot = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            std::path::Path::new(&sysroot)
                .join("lib/rustlib")
                .join(target)
                .is_dir()
        })
}
