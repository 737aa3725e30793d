//! `cargo xtask bench proto|ring`: the release benchmarks, one group per bench target.
//!
//! Benchmarks measure wall time, so they never run in `cargo xtask ci` (STYLE point 16:
//! no timed assertions); they are run by hand, on a quiet machine. `bench failover` (real
//! daemons, corosync as the reference) is not a cargo bench: it lives in `failover.rs`.

use crate::cmd::Cmd;

/// Groups `cargo xtask bench` accepts, each `(group, package, bench target)`.
const BENCHES: &[(&str, &str, &str)] = &[
    ("proto", "totem-proto", "proto"),
    ("ring", "totem-ring", "ring"),
];

/// The group names (for argument checking). `cpg` is not a cargo bench: it runs daemons
/// (`bench_cpg.rs`, parsed with its options in `main.rs`).
pub(crate) const GROUPS: &[&str] = &["proto", "ring", "cpg"];

/// `cargo bench -p <package> --bench <target>` (cargo benches build with the release
/// profile).
pub(crate) fn run(group: &str) -> crate::Result {
    if group == "cpg" {
        return crate::bench_cpg::run(&crate::bench_cpg::Options::default());
    }
    let Some((_, package, bench)) = BENCHES.iter().find(|(g, _, _)| *g == group) else {
        return Err(format!("unknown group `{group}`"));
    };
    Cmd::cargo()
        .args(["bench", "-p", package, "--bench", bench])
        .run()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_group_has_a_bench() {
        for group in GROUPS.iter().filter(|g| **g != "cpg") {
            assert!(BENCHES.iter().any(|(g, _, _)| g == group), "{group}");
        }
    }
}
