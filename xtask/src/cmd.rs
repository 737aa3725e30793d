//! Running commands the way CI logs want them: echoed before they run (`$ cargo ...`, with
//! any environment overrides and the directory if not the root), timed, and turned into a
//! one-line error naming the command when they fail.

use core::fmt;
use core::time::Duration;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Instant;

use crate::workspace;

/// A command to run, by default in the workspace root.
#[derive(Debug, Clone)]
pub(crate) struct Cmd {
    /// What to execute.
    program: String,
    /// How to show `program` in the echo (`cargo` rather than the toolchain's full path).
    shown: String,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    /// Working directory relative to the workspace root (`None`: the root).
    dir: Option<String>,
}

impl Cmd {
    /// `program` with no arguments.
    pub(crate) fn new(program: impl Into<String>) -> Self {
        let program = program.into();
        Self {
            shown: program.clone(),
            program,
            args: Vec::new(),
            envs: Vec::new(),
            dir: None,
        }
    }

    /// The cargo that runs this xtask (`$CARGO`, so `cargo +toolchain xtask` stays on that
    /// toolchain), shown as `cargo`.
    pub(crate) fn cargo() -> Self {
        let mut cmd = Self::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        "cargo".clone_into(&mut cmd.shown);
        cmd
    }

    /// The `cargo` found on `PATH`: rustup's proxy, needed for `cargo +nightly`.
    pub(crate) fn rustup_cargo() -> Self {
        Self::new("cargo")
    }

    /// Shows the program as `shown` in the echo (e.g. a path relative to the root).
    pub(crate) fn shown_as(mut self, shown: impl Into<String>) -> Self {
        self.shown = shown.into();
        self
    }

    pub(crate) fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub(crate) fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub(crate) fn env(mut self, key: &str, value: &str) -> Self {
        self.envs.push((key.into(), value.into()));
        self
    }

    /// Runs in `dir`, relative to the workspace root.
    pub(crate) fn dir(mut self, dir: &str) -> Self {
        self.dir = Some(dir.into());
        self
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args);
        cmd.envs(self.envs.iter().map(|(k, v)| (k, v)));
        let root = workspace::root();
        cmd.current_dir(match &self.dir {
            Some(dir) => root.join(dir),
            None => root,
        });
        cmd
    }

    /// Echoes, runs with inherited stdio, prints the wall time; `Err` unless it exits 0.
    pub(crate) fn run(&self) -> crate::Result {
        println!("$ {self}");
        let start = Instant::now();
        let status = self
            .command()
            .status()
            .map_err(|e| format!("cannot start `{self}`: {e}"))?;
        let took = start.elapsed();
        if status.success() {
            println!("  ok in {}", human(took));
            Ok(())
        } else {
            println!("  FAILED ({status}) after {}", human(took));
            Err(format!("`{self}` failed ({status})"))
        }
    }

    /// Runs silently and captures stdout and stderr (probes, and output to be inspected).
    pub(crate) fn output(&self) -> crate::Result<Output> {
        self.command()
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot start `{self}`: {e}"))
    }

    /// Whether the command can be started and exits 0 (a quiet probe: `cargo fmt --version`).
    pub(crate) fn succeeds(&self) -> bool {
        self.output().is_ok_and(|out| out.status.success())
    }
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(dir) = &self.dir {
            write!(f, "(cd {dir} && ")?;
        }
        for (k, v) in &self.envs {
            write!(f, "{k}={v} ")?;
        }
        f.write_str(&self.shown)?;
        for arg in &self.args {
            if arg.is_empty() || arg.contains([' ', '"', '\'', '$']) {
                write!(f, " '{arg}'")?;
            } else {
                write!(f, " {arg}")?;
            }
        }
        if self.dir.is_some() {
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// A path under the workspace root (for binaries the tasks build and then run).
pub(crate) fn root_path(relative: &str) -> PathBuf {
    workspace::root().join(relative)
}

/// Wall time for humans: `0.4s`, `12.3s`, `3m 07s`.
pub(crate) fn human(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 60.0 {
        format!("{secs:.1}s")
    } else {
        let whole = d.as_secs();
        format!("{}m {:02}s", whole / 60, whole % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_shows_env_dir_and_quotes() {
        let cmd = Cmd::cargo()
            .args(["check", "-p", "x"])
            .env("DEFMT_LOG", "trace")
            .dir("fuzz")
            .arg("a b");
        assert_eq!(
            cmd.to_string(),
            "(cd fuzz && DEFMT_LOG=trace cargo check -p x 'a b')"
        );
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(human(Duration::from_millis(400)), "0.4s");
        assert_eq!(human(Duration::from_secs(187)), "3m 07s");
    }
}
