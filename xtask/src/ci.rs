//! `cargo xtask ci`: everything CI checks, in the order of [`CI_STEPS`], stopping at the
//! first failure.
//!
//! Each step echoes its commands and their wall time; the end prints a table of step times
//! (also on failure, followed by `xtask ci: step <name> FAILED`). Before anything runs, a
//! pre-flight checks that the tools the steps need (rustfmt, clippy) are installed and names
//! the `rustup` command that installs a missing one.
//!
//! Everything builds into the workspace's one `target/`, except nostd-check
//! (`target/nostd`, see `nostd.rs`). No step runs `--all-features` (STYLE: `defmt` and `log`
//! are mutually exclusive, so feature sets are explicit lists).

use std::time::Instant;

use crate::cmd::{Cmd, human};
use crate::workspace::{CORE_CRATES, NOSTD_CHECK_DIR, NOSTD_TARGET_DIR, lean_clippy, lean_test};
use crate::{nostd, tidy};

/// One step of the pipeline.
#[derive(Debug)]
pub(crate) struct Step {
    /// Name in the log, the summary table and `--skip`.
    pub(crate) name: &'static str,
    /// One line for `--list`.
    pub(crate) about: &'static str,
    /// What it does; `Err` fails the run.
    run: fn() -> crate::Result,
}

/// The CI pipeline, in order. To add a step, write a `fn` below and add a line here at the
/// place it should run; `--skip`, `--list` and the summary table pick it up. `e2e` runs
/// before `test` for the reason below (its own last line is `e2e: N scenarios, F failed`).
///
/// `lean` runs before `test` (STYLE point 19 lists it after) so that the last test-runner
/// summary in the log is the whole workspace's, not a doc-only crate's `0 passed`: CI reads
/// the closing lines of test runners to tell whether any test ran. For the same reason a
/// step added after `test` should end on a summary with real counts.
pub(crate) const CI_STEPS: &[Step] = &[
    Step {
        name: "fmt",
        about: "cargo fmt --check (workspace, nostd-check, fuzz if present)",
        run: fmt,
    },
    Step {
        name: "clippy",
        about: "cargo clippy --workspace --all-targets -D warnings, and nostd-check",
        run: clippy,
    },
    Step {
        name: "lean",
        about: "per core crate: cargo test and clippy with --no-default-features",
        run: lean,
    },
    Step {
        name: "ib",
        about: "transport-ib's real ibverbs provider and totemd with feature ib build, are clippy-clean, and totemd says \"no RDMA device found\"",
        run: ib,
    },
    Step {
        name: "loom",
        about: "ipc-shm's shared-memory ring under loom (bounded, release, target/loom)",
        run: loom,
    },
    Step {
        name: "sim",
        about: "cargo xtask sim --seeds 300 (release) and a determinism check",
        run: crate::sim::ci,
    },
    Step {
        name: "e2e",
        about: "cargo xtask e2e: real totemd clusters (namespaces if root), config errors",
        run: crate::e2e::run,
    },
    Step {
        name: "demo",
        about: "cargo xtask demo: the README's first command (3 nodes, CPG traffic, kill, restart, leave)",
        run: crate::demo::run,
    },
    Step {
        name: "appliance",
        about: "cargo xtask appliance: appliance/ checks, code size, 2 totemd + appliance (root)",
        run: appliance,
    },
    Step {
        name: "test",
        about: "doctests + cargo nextest run --workspace (or cargo test --workspace)",
        run: test,
    },
    Step {
        name: "nostd",
        about: "cargo xtask nostd (its lean tests ran in the `lean` step)",
        run: nostd,
    },
    Step {
        name: "doc",
        about: "RUSTDOCFLAGS=-Dwarnings cargo doc --workspace --no-deps",
        run: doc,
    },
    Step {
        name: "tidy",
        about: "cargo xtask tidy: //! docs everywhere, no HashMap in core crates",
        run: tidy,
    },
];

/// Command-line options of `cargo xtask ci`.
#[derive(Debug, Default)]
pub(crate) struct Options {
    /// Print the steps and exit.
    pub(crate) list: bool,
    /// Steps to leave out.
    pub(crate) skip: Vec<String>,
}

/// The step names, comma-separated (for messages).
pub(crate) fn step_names() -> String {
    CI_STEPS
        .iter()
        .map(|s| s.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// How a step ended, for the summary table.
#[derive(Debug)]
enum Outcome {
    Ok,
    Failed,
    Skipped,
    NotRun,
}

/// Runs the pipeline.
pub(crate) fn run(options: &Options) -> crate::Result {
    if options.list {
        for step in CI_STEPS {
            println!("{:<8} {}", step.name, step.about);
        }
        return Ok(());
    }
    preflight()?;

    let started = Instant::now();
    let mut results = Vec::new();
    let mut failed = None;
    for step in CI_STEPS {
        if failed.is_some() {
            results.push((step.name, Outcome::NotRun, None));
            continue;
        }
        if options.skip.iter().any(|s| s == step.name) {
            println!("\n=== xtask ci: step {} SKIPPED (--skip)", step.name);
            results.push((step.name, Outcome::Skipped, None));
            continue;
        }
        println!("\n=== xtask ci: step {}: {}", step.name, step.about);
        let t = Instant::now();
        let result = (step.run)();
        let took = t.elapsed();
        match result {
            Ok(()) => {
                println!("=== xtask ci: step {} ok in {}", step.name, human(took));
                results.push((step.name, Outcome::Ok, Some(took)));
            }
            Err(msg) => {
                eprintln!("xtask ci: step {}: {msg}", step.name);
                results.push((step.name, Outcome::Failed, Some(took)));
                failed = Some(step.name);
            }
        }
    }

    println!("\nxtask ci: summary");
    println!("  {:<8} {:>9}  result", "step", "time");
    for (name, outcome, took) in &results {
        let time = took.map_or_else(|| "-".to_owned(), human);
        let outcome = match outcome {
            Outcome::Ok => "ok",
            Outcome::Failed => "FAILED",
            Outcome::Skipped => "skipped",
            Outcome::NotRun => "not run",
        };
        println!("  {name:<8} {time:>9}  {outcome}");
    }
    println!("  {:<8} {:>9}", "total", human(started.elapsed()));
    match failed {
        Some(name) => Err(format!("step {name} FAILED")),
        None => {
            println!("xtask ci: all steps ok");
            Ok(())
        }
    }
}

/// Checks that the tools the steps need exist, naming the install command of each missing
/// one, before a long run fails half-way.
fn preflight() -> crate::Result {
    let tools = [
        ("fmt", "rustfmt", "rustup component add rustfmt"),
        ("clippy", "clippy", "rustup component add clippy"),
    ];
    let mut missing = Vec::new();
    for (subcommand, tool, install) in tools {
        if !Cmd::cargo().args([subcommand, "--version"]).succeeds() {
            missing.push(format!(
                "  missing tool: {tool} (`cargo {subcommand}`); install it with `{install}`"
            ));
        }
    }
    if missing.is_empty() {
        if nextest_installed() {
            println!("xtask ci: using cargo-nextest for the workspace tests");
        } else {
            println!(
                "xtask ci: cargo-nextest not installed (`cargo install cargo-nextest --locked`): \
                 falling back to `cargo test --workspace`"
            );
        }
        Ok(())
    } else {
        Err(format!(
            "required tools are missing:\n{}",
            missing.join("\n")
        ))
    }
}

fn nextest_installed() -> bool {
    Cmd::cargo().args(["nextest", "--version"]).succeeds()
}

fn nostd_manifest() -> String {
    format!("{NOSTD_CHECK_DIR}/Cargo.toml")
}

fn fmt() -> crate::Result {
    Cmd::cargo().args(["fmt", "--all", "--check"]).run()?;
    Cmd::cargo()
        .args([
            "fmt",
            "--manifest-path",
            &nostd_manifest(),
            "--all",
            "--check",
        ])
        .run()?;
    // fuzz/ is its own (nightly) workspace; its formatting is still checked on stable.
    if crate::cmd::root_path("fuzz/Cargo.toml").is_file() {
        Cmd::cargo()
            .args([
                "fmt",
                "--manifest-path",
                "fuzz/Cargo.toml",
                "--all",
                "--check",
            ])
            .run()?;
    }
    Ok(())
}

fn clippy() -> crate::Result {
    Cmd::cargo()
        .args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ])
        .run()?;
    Cmd::cargo()
        .args([
            "clippy",
            "--manifest-path",
            &nostd_manifest(),
            "--target-dir",
            NOSTD_TARGET_DIR,
            "--",
            "-D",
            "warnings",
        ])
        .run()
}

fn test() -> crate::Result {
    if nextest_installed() {
        // nextest does not run doctests; they go first so that nextest's summary (the real
        // count) closes the step.
        Cmd::cargo().args(["test", "--workspace", "--doc"]).run()?;
        Cmd::cargo().args(["nextest", "run", "--workspace"]).run()
    } else {
        Cmd::cargo().args(["test", "--workspace"]).run()
    }
}

fn lean() -> crate::Result {
    for krate in CORE_CRATES {
        lean_test(krate).run()?;
        lean_clippy(krate).run()?;
    }
    Ok(())
}

fn nostd() -> crate::Result {
    nostd::run(nostd::Options {
        self_test_only: false,
        lean_tests: false,
    })
}

/// The real InfiniBand provider, and totemd with feature `ib`, compile against rdma-core
/// (`.ci/run` installs its build dependencies); no RDMA hardware is needed to build or
/// lint them, and totemd's refusal without a device is checked.
fn ib() -> crate::Result {
    Cmd::cargo()
        .args([
            "clippy",
            "-p",
            "transport-ib",
            "--features",
            "verbs",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ])
        .run()?;
    Cmd::cargo()
        .args([
            "clippy",
            "-p",
            "node",
            "--features",
            "ib",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ])
        .run()?;
    // totemd built with InfiniBand support, on this machine without RDMA, must refuse
    // `transport: ib` with "transport ib: no RDMA device found" and a non-zero exit.
    Cmd::cargo()
        .args([
            "test",
            "-p",
            "node",
            "--features",
            "ib",
            "--test",
            "transport_ib",
        ])
        .run()
}

/// The shared-memory ring's atomics under loom: every interleaving up to two preemptions
/// (STYLE point 14), in its own target dir so the cfg does not rebuild the workspace.
fn loom() -> crate::Result {
    Cmd::cargo()
        .args([
            "test",
            "-p",
            "ipc-shm",
            "--release",
            "--lib",
            "--target-dir",
            "target/loom",
            "--",
            "loom",
        ])
        .env("RUSTFLAGS", "--cfg loom")
        .env("LOOM_MAX_PREEMPTIONS", "2")
        .run()
}

fn doc() -> crate::Result {
    Cmd::cargo()
        .args(["doc", "--workspace", "--no-deps"])
        .env("RUSTDOCFLAGS", "-Dwarnings")
        .run()
}

fn appliance() -> crate::Result {
    crate::appliance::run(crate::appliance::Options { e2e_only: false })
}

fn tidy() -> crate::Result {
    tidy::run()
}
