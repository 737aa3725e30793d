//! `cargo xtask sim ...`: the deterministic simulator (`sim/`), built in release and given
//! the arguments as they are (`--seeds N [--nodes A..B] [--start S]`, `--seed S [--trace]`,
//! `--check-determinism --seed S`). Its last line is `sim: N seeds, V violations`.

use crate::cmd::Cmd;

/// Seeds the bounded CI run covers (release build, 2..16 nodes).
pub(crate) const CI_SEEDS: &str = "300";

/// Runs the simulator binary with `args`.
pub(crate) fn run(args: &[String]) -> crate::Result {
    Cmd::cargo()
        .args(["run", "--release", "-q", "-p", "sim", "--bin", "sim", "--"])
        .args(args)
        .run()
}

/// The CI step: a bounded run of seeds, then one determinism check.
pub(crate) fn ci() -> crate::Result {
    run(&["--seeds".into(), CI_SEEDS.into()])?;
    run(&["--check-determinism".into(), "--seed".into(), "7".into()])
}
