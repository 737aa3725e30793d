//! `cargo xtask`: the project's only CI entry point (STYLE point 19, rust-analyzer's pattern).
//!
//! ```text
//! main.rs       argument parsing, usage, dispatch, exit codes
//! workspace.rs  the shared facts: workspace root, CORE_CRATES, target dirs, lean commands
//! cmd.rs        running a command: echo it, time it, fail with a clear message
//! appliance.rs  `cargo xtask appliance`: the appliance example checked, sized, run with totemd
//! ci.rs         `cargo xtask ci`: the CI_STEPS table, tool pre-flight, step timing summary
//! nostd.rs      `cargo xtask nostd`: the no_std proof (STYLE "no_std: how to prove it")
//! tidy.rs       `cargo xtask tidy`: `//!` on every file, no HashMap in core crates
//! fuzz.rs       `cargo xtask fuzz`: each cargo-fuzz target for a bounded time (nightly)
//! bench.rs      `cargo xtask bench`: the release benchmarks
//! cluster.rs    `cargo xtask cluster`: run and break a totemd cluster on this machine
//! nodes.rs      a cluster of daemons: configs, processes, status, faults, teardown
//! netns.rs      network namespaces, the bridge and nftables for `--netns` clusters
//! guard.rs      teardown that also happens on panic and Ctrl-C (a watchdog process)
//! json.rs       the little JSON that `cluster.json` needs
//! demo.rs       `cargo xtask demo`: three nodes form, lose and regain a ring, with CPG traffic
//! demo_cpg.rs   the demo's CPG traffic: cpg_demo per node, messages/s, cross-node order check
//! e2e.rs        `cargo xtask e2e`: end-to-end tests of totemd (a CI step)
//! failover.rs   `cargo xtask bench failover`: failover times, totem vs corosync
//! bench_cpg.rs  `cargo xtask bench cpg`: CPG throughput/latency, totem vs corosync
//! ```
//!
//! std only, no dependencies: arguments are parsed by hand and every task is a plain
//! `std::process::Command`, so the first thing a fresh CI machine builds is tiny.
//!
//! Exit codes: 0 success, 1 a task failed (its last line is `xtask <task>: <why>`), 2 a usage
//! error (unknown task or argument).

extern crate alloc;

mod appliance;
mod bench;
mod bench_cpg;
mod ci;
mod cluster;
mod cmd;
mod demo;
mod demo_cpg;
mod e2e;
mod failover;
mod fuzz;
mod guard;
mod json;
mod netns;
mod nodes;
mod nostd;
mod sim;
mod tidy;
mod workspace;

use std::process::ExitCode;

/// The result of a task: `Err` carries the message printed before exiting with status 1.
pub(crate) type Result<T = ()> = core::result::Result<T, String>;

const USAGE: &str = "\
usage: cargo xtask <task> [options]

tasks:
  ci [--list] [--skip <step>]...
        everything CI checks, in order, stopping at the first failure:
        fmt, clippy, lean (per core crate), ib, loom, sim, e2e, demo, appliance, test, nostd,
        doc, tidy.
        --list         print the steps and exit
        --skip <step>  leave a step out (repeatable), e.g. while another crate is mid-edit
  nostd [--self-test]
        the no_std proof: build and run nostd-check (debug and release), the std canary,
        defmt compile checks, bare-metal builds, lean tests of each core crate.
        --self-test    run only the canary: pass only if `extern crate std;` makes the
                       check fail with E0152 (duplicate lang item `panic_impl`)
  tidy
        every .rs file starts with a `//!` doc; no HashMap/HashSet in core crates
  fuzz proto [--seconds <N>]
        run every `cargo fuzz list` target for N seconds each (default 60);
        needs cargo-fuzz and a nightly toolchain
  sim [--seeds N [--nodes A..B] [--start S] | --seed S [--trace] | --check-determinism --seed S]
        the deterministic simulator with its EVS invariant checker (release build);
        ends with `sim: N seeds, V violations`; a failing seed prints REPRODUCE WITH
  bench proto|ring
        cargo bench -p totem-proto --bench proto, or -p totem-ring --bench ring (release)
  bench failover [--nodes N] [--transport udp|udpu] [--token MS] [--runs R]
        time from SIGKILL / SIGTERM of one node, and from healing a 2|1 partition, to the
        new membership (status polled every 10 ms), R runs (default 5) at token 3000 and
        1000 (or MS only), beside corosync 3 in the same namespaces if it is installed
  bench cpg [--nodes N] [--netns] [--transport udp|udpu] [--sizes B,B...] [--senders one|all]
            [--seconds S] [--rate N] [--safe] [--loss PCT] [--compare-corosync] [--sync]
            [--totem KEY=VALUE]...
        cpgbench on every node of an N-node cluster (default 3; udp multicast in namespaces
        with --netns, else udpu on 127.0.0.x), one line per size: the minimum over nodes;
        totem sends queued multicasts (no round trip per message) unless --sync;
        --totem adds an option to totem's totem { } (e.g. adaptive_token_retransmit=off);
        --compare-corosync runs corosync 3 and a C twin of cpgbench on libcpg the same way
        (installs corosync and libcpg-dev with apt-get if missing, except under CI)
  cluster up [--nodes N] [--transport udp|udpu] [--netns] [--token MS] [--totem KEY=VALUE]...
        build totemd/totemctl (release), start N nodes (default 3, udpu) and wait for one
        ring: each node in its own network namespace on a bridge, 10.213.0.<id>
        (--netns, root), or on 127.0.0.<id> (udpu only); state in target/cluster/;
        --totem adds an option to every node's totem { } (e.g. window_size=100)
  cluster status
        one line per node: `node <id>: ring <rep>.<seq> members <ids>`, `down` or
        `unreachable`
  cluster kill|stop|start|pause|resume <id>
        SIGKILL | SIGTERM (clean leave) | start again | SIGSTOP | SIGCONT
  cluster partition <ids> <ids> | heal | loss <id> <percent>
        drop traffic between two groups (e.g. `1,2 3`) | undo it | drop a share of what
        node <id> receives (0 clears it); nftables in the namespaces: --netns only
  cluster exec <id> -- CMD...
        run CMD as a client of node <id> (its namespace, TOTEM_SOCKET, totemctl on PATH)
  cluster down
        stop the nodes (SIGTERM, SIGKILL after 5 s), remove namespaces, bridge and nft
        tables, also what a crashed earlier run left behind
  demo
        three nodes on 127.0.0.1-3 (no root): form a ring, kill one, restart it, one leaves
  e2e
        end-to-end tests: 3-node clusters over udp and udpu in namespaces (root; else
        SKIP) and udpu on 127.0.0.x, then configuration errors; ends with
        `e2e: N scenarios, F failed`
  appliance [--e2e-only]
        the appliance example (appliance/, its own workspace): fmt, clippy, tests, defmt
        check, the bare-metal code size, then (root) two totemd nodes and the appliance on
        a TAP device form one ring and agree on a CPG group's order; without root: SKIP
        --e2e-only     only the end-to-end test
  help, --help, -h
        this message
";

/// A parsed command line.
#[derive(Debug)]
enum Task {
    Help,
    Ci(ci::Options),
    Nostd { self_test: bool },
    Tidy,
    Fuzz { group: String, seconds: u64 },
    Bench { group: String },
    Failover(failover::Options),
    BenchCpg(bench_cpg::Options),
    Sim { args: Vec<String> },
    Cluster(cluster::Sub),
    Demo,
    E2e,
    Appliance(appliance::Options),
    // `__guard <tool>`: the cleanup watchdog of `guard.rs` (not for people).
    Guard { tool: String },
}

impl Task {
    /// The task's name, which prefixes its final error line (`xtask ci: step fmt FAILED`).
    fn name(&self) -> &'static str {
        match self {
            Self::Help => "help",
            Self::Ci(_) => "ci",
            Self::Nostd { .. } => "nostd",
            Self::Tidy => "tidy",
            Self::Fuzz { .. } => "fuzz",
            Self::Bench { .. } | Self::Failover(_) | Self::BenchCpg(_) => "bench",
            Self::Sim { .. } => "sim",
            Self::Cluster(_) => "cluster",
            Self::Demo => "demo",
            Self::E2e => "e2e",
            Self::Appliance(_) => "appliance",
            Self::Guard { .. } => "__guard",
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let task = match parse(&args) {
        Ok(task) => task,
        Err(msg) => {
            eprintln!("xtask: {msg}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let name = task.name();
    let result = match task {
        Task::Help => {
            print!("{USAGE}");
            Ok(())
        }
        Task::Ci(options) => ci::run(&options),
        Task::Nostd { self_test } => nostd::run(nostd::Options {
            self_test_only: self_test,
            lean_tests: true,
        }),
        Task::Tidy => tidy::run(),
        Task::Fuzz { group, seconds } => fuzz::run(&group, seconds),
        Task::Bench { group } => bench::run(&group),
        Task::Failover(options) => failover::run(&options),
        Task::BenchCpg(options) => bench_cpg::run(&options),
        Task::Sim { args } => sim::run(&args),
        Task::Demo => demo::run(),
        Task::E2e => e2e::run(),
        Task::Appliance(options) => appliance::run(options),
        Task::Guard { tool } => guard::watch(&tool),
        Task::Cluster(sub) => {
            return match cluster::run(sub) {
                Ok(code) => code,
                Err(cluster::Error::Input(msg)) => {
                    eprintln!("xtask cluster: {msg}");
                    ExitCode::from(2)
                }
                Err(cluster::Error::Failed(msg)) => {
                    eprintln!("xtask cluster: {msg}");
                    ExitCode::FAILURE
                }
            };
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("xtask {name}: {msg}");
            ExitCode::FAILURE
        }
    }
}

/// Parses the arguments after `cargo xtask`; `Err` is a usage error (exit status 2).
fn parse(args: &[String]) -> core::result::Result<Task, String> {
    let Some((task, rest)) = args.split_first() else {
        return Err("no task given".into());
    };
    if task == "sim" {
        // The simulator parses its own arguments (and answers --help itself).
        return Ok(Task::Sim {
            args: rest.to_vec(),
        });
    }
    if task == "cluster" {
        // `cluster exec <id> -- CMD...` passes CMD's own flags (`--help` too) through.
        let own = rest.iter().take_while(|a| *a != "--");
        if own.clone().any(|a| a == "--help" || a == "-h") {
            return Ok(Task::Help);
        }
        return cluster::parse(rest).map(Task::Cluster);
    }
    if task == "__guard" {
        return match rest {
            [tool] => Ok(Task::Guard { tool: tool.clone() }),
            _ => Err("__guard: give the tool".into()),
        };
    }
    if rest.iter().any(|a| a == "--help" || a == "-h") {
        return Ok(Task::Help);
    }
    let mut rest = rest.iter().map(String::as_str);
    let task = match task.as_str() {
        "help" | "--help" | "-h" => Task::Help,
        "ci" => {
            let mut options = ci::Options::default();
            while let Some(arg) = rest.next() {
                match arg {
                    "--list" => options.list = true,
                    "--skip" => {
                        let step = value(&mut rest, "ci", "--skip")?;
                        if !ci::CI_STEPS.iter().any(|s| s.name == step) {
                            return Err(format!(
                                "ci: unknown step `{step}` for --skip (steps: {})",
                                ci::step_names()
                            ));
                        }
                        options.skip.push(step.to_owned());
                    }
                    other => return Err(unknown("ci", other)),
                }
            }
            Task::Ci(options)
        }
        "nostd" => {
            let mut self_test = false;
            for arg in rest.by_ref() {
                match arg {
                    "--self-test" => self_test = true,
                    other => return Err(unknown("nostd", other)),
                }
            }
            Task::Nostd { self_test }
        }
        "tidy" => {
            if let Some(other) = rest.next() {
                return Err(unknown("tidy", other));
            }
            Task::Tidy
        }
        "fuzz" => {
            let group = group(&mut rest, "fuzz", fuzz::GROUPS)?;
            let mut seconds = fuzz::DEFAULT_SECONDS;
            while let Some(arg) = rest.next() {
                match arg {
                    "--seconds" => {
                        let n = value(&mut rest, "fuzz", "--seconds")?;
                        seconds = match n.parse::<u64>() {
                            Ok(s) if s > 0 => s,
                            _ => {
                                return Err(format!(
                                    "fuzz: --seconds wants a positive whole number, got `{n}`"
                                ));
                            }
                        };
                    }
                    other => return Err(unknown("fuzz", other)),
                }
            }
            Task::Fuzz { group, seconds }
        }
        "bench" if args.get(1).is_some_and(|g| g == "failover") => {
            rest.next();
            Task::Failover(failover::parse(&mut rest)?)
        }
        "bench" if args.get(1).is_some_and(|g| g == "cpg") => {
            rest.next();
            Task::BenchCpg(bench_cpg::parse(&mut rest)?)
        }
        "demo" | "e2e" => {
            if let Some(other) = rest.next() {
                return Err(unknown(task, other));
            }
            if task == "demo" {
                Task::Demo
            } else {
                Task::E2e
            }
        }
        "appliance" => {
            let mut options = appliance::Options { e2e_only: false };
            for arg in rest.by_ref() {
                match arg {
                    "--e2e-only" => options.e2e_only = true,
                    other => return Err(unknown("appliance", other)),
                }
            }
            Task::Appliance(options)
        }
        "bench" => {
            let group = group(&mut rest, "bench", bench::GROUPS)?;
            if let Some(other) = rest.next() {
                return Err(unknown("bench", other));
            }
            Task::Bench { group }
        }
        other => return Err(format!("unknown task `{other}`")),
    };
    Ok(task)
}

/// The value following `flag`, or a usage error naming both.
fn value<'a>(
    rest: &mut impl Iterator<Item = &'a str>,
    task: &str,
    flag: &str,
) -> core::result::Result<&'a str, String> {
    rest.next()
        .filter(|v| !v.starts_with("--"))
        .ok_or_else(|| format!("{task}: {flag} needs a value"))
}

/// The positional group name (`proto`) of `fuzz`/`bench`, checked against `known`.
fn group<'a>(
    rest: &mut impl Iterator<Item = &'a str>,
    task: &str,
    known: &[&str],
) -> core::result::Result<String, String> {
    match rest.next() {
        Some(g) if known.contains(&g) => Ok(g.to_owned()),
        Some(g) => Err(format!(
            "{task}: unknown group `{g}` (known: {})",
            known.join(", ")
        )),
        None => Err(format!(
            "{task}: which group? (known: {})",
            known.join(", ")
        )),
    }
}

fn unknown(task: &str, arg: &str) -> String {
    format!("{task}: unknown argument `{arg}`")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(line: &str) -> core::result::Result<Task, String> {
        let args: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
        parse(&args)
    }

    #[test]
    fn parses_every_task() {
        assert!(matches!(parse_str("ci"), Ok(Task::Ci(o)) if !o.list && o.skip.is_empty()));
        assert!(
            matches!(parse_str("ci --skip doc --list"), Ok(Task::Ci(o)) if o.list && o.skip == ["doc"])
        );
        assert!(matches!(
            parse_str("nostd --self-test"),
            Ok(Task::Nostd { self_test: true })
        ));
        assert!(matches!(parse_str("tidy"), Ok(Task::Tidy)));
        assert!(matches!(
            parse_str("fuzz proto --seconds 5"),
            Ok(Task::Fuzz { seconds: 5, .. })
        ));
        assert!(matches!(parse_str("bench proto"), Ok(Task::Bench { .. })));
        assert!(matches!(parse_str("nostd --help"), Ok(Task::Help)));
    }

    #[test]
    fn rejects_what_it_does_not_know() {
        assert!(parse_str("").is_err());
        assert!(parse_str("frobnicate").is_err());
        assert!(parse_str("nostd --selftest").is_err());
        assert!(parse_str("ci --skip nonsense").is_err());
        assert!(parse_str("ci --skip").is_err());
        assert!(parse_str("fuzz proto --seconds 0").is_err());
        assert!(parse_str("fuzz proto --seconds").is_err());
        assert!(parse_str("fuzz ring").is_err());
        assert!(parse_str("bench").is_err());
        assert!(parse_str("demo now").is_err());
        assert!(parse_str("cluster").is_err());
        assert!(parse_str("cluster up --frobnicate").is_err());
        assert!(parse_str("bench failover --nodes 1").is_err());
    }

    #[test]
    fn parses_the_cluster_tools() {
        assert!(matches!(parse_str("cluster status"), Ok(Task::Cluster(_))));
        assert!(matches!(parse_str("cluster --help"), Ok(Task::Help)));
        assert!(matches!(parse_str("cluster up --help"), Ok(Task::Help)));
        assert!(matches!(
            parse_str("cluster exec 1 -- totemctl --help"),
            Ok(Task::Cluster(cluster::Sub::Exec { .. }))
        ));
        assert!(matches!(parse_str("demo"), Ok(Task::Demo)));
        assert!(matches!(parse_str("e2e"), Ok(Task::E2e)));
        assert!(matches!(
            parse_str("appliance --e2e-only"),
            Ok(Task::Appliance(appliance::Options { e2e_only: true }))
        ));
        assert!(matches!(
            parse_str("bench failover --nodes 3 --transport udp --token 1000"),
            Ok(Task::Failover(_))
        ));
        assert!(matches!(
            parse_str("bench cpg --nodes 3 --netns --sizes 64,1024 --compare-corosync"),
            Ok(Task::BenchCpg(_))
        ));
    }
}
