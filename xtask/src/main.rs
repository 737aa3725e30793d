//! `cargo xtask`: the project's only CI entry point (STYLE point 19, rust-analyzer's pattern).
//!
//! ```text
//! main.rs       argument parsing, usage, dispatch, exit codes
//! workspace.rs  the shared facts: workspace root, CORE_CRATES, target dirs, lean commands
//! cmd.rs        running a command: echo it, time it, fail with a clear message
//! ci.rs         `cargo xtask ci`: the CI_STEPS table, tool pre-flight, step timing summary
//! nostd.rs      `cargo xtask nostd`: the no_std proof (STYLE "no_std: how to prove it")
//! tidy.rs       `cargo xtask tidy`: `//!` on every file, no HashMap in core crates
//! fuzz.rs       `cargo xtask fuzz`: each cargo-fuzz target for a bounded time (nightly)
//! bench.rs      `cargo xtask bench`: the release benchmarks
//! ```
//!
//! std only, no dependencies: arguments are parsed by hand and every task is a plain
//! `std::process::Command`, so the first thing a fresh CI machine builds is tiny.
//!
//! Exit codes: 0 success, 1 a task failed (its last line is `xtask <task>: <why>`), 2 a usage
//! error (unknown task or argument).

mod bench;
mod ci;
mod cmd;
mod fuzz;
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
        fmt, clippy, lean (per core crate), test, nostd, doc, tidy.
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
    Sim { args: Vec<String> },
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
            Self::Bench { .. } => "bench",
            Self::Sim { .. } => "sim",
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
        Task::Sim { args } => sim::run(&args),
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
    }
}
