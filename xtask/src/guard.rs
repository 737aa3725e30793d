//! Cleanup that survives the death of the process that needs it: `demo`, `e2e` and `bench
//! failover` must leave no daemon, namespace or nft table behind, on success, on failure,
//! on a panic, and on Ctrl-C.
//!
//! Two layers:
//! - [`Session`] owns the running [`Cluster`] and tears it down in `Drop` (success,
//!   failure, panic: xtask unwinds).
//! - A watchdog process (`xtask __guard <tool>`) is started beside it, in its own process
//!   group so that the terminal's Ctrl-C does not reach it, reading a pipe from this
//!   process. A session that ends normally writes `done` first; if the pipe closes without
//!   it, this process died (SIGINT, SIGTERM, SIGKILL, abort) and the watchdog runs the same
//!   teardown from `cluster.json` and the naming convention. This needs no signal handler,
//!   hence no dependency (std has no signal API), and covers SIGKILL, which no handler can.
//!
//! The nodes of these tools share this process's group, so a Ctrl-C reaches them too: they
//! leave the ring on SIGINT and exit before the watchdog even looks.

use core::ops::{Deref, DerefMut};
use std::io::{Read as _, Write as _};
use std::os::unix::process::CommandExt as _;
use std::process::{Child, ChildStdin, Command, Stdio};

use crate::nodes::{self, Cluster, LAYOUTS};

/// What a session writes before it closes the pipe normally.
const DONE: &str = "done\n";

/// A running cluster that is torn down when this is dropped, or by the watchdog if this
/// process dies first.
#[derive(Debug)]
pub(crate) struct Session {
    cluster: Cluster,
    watchdog: Option<(Child, ChildStdin)>,
    /// Print the teardown report (`<tool>: cleaned up: ...`).
    pub(crate) verbose: bool,
}

impl Session {
    /// Arms the watchdog for `cluster`'s layout (a warning if it cannot start: the `Drop`
    /// still cleans up all but a killed run).
    pub(crate) fn new(cluster: Cluster) -> Self {
        let tool = cluster.layout.tool;
        let watchdog = std::env::current_exe()
            .and_then(|exe| {
                let mut child = Command::new(exe)
                    .args(["__guard", tool])
                    .stdin(Stdio::piped())
                    .process_group(0)
                    .spawn()?;
                let stdin = child
                    .stdin
                    .take()
                    .ok_or_else(|| std::io::Error::other("no pipe to the watchdog"))?;
                Ok((child, stdin))
            })
            .map_err(|e| {
                eprintln!(
                    "{tool}: warning: no cleanup watchdog ({e}): if this run is interrupted, \
                     the next `cargo xtask {tool}` removes what it leaves"
                );
            })
            .ok();
        Self {
            cluster,
            watchdog,
            verbose: false,
        }
    }
}

impl Deref for Session {
    type Target = Cluster;
    fn deref(&self) -> &Cluster {
        &self.cluster
    }
}

impl DerefMut for Session {
    fn deref_mut(&mut self) -> &mut Cluster {
        &mut self.cluster
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let report = self.cluster.down();
        if self.verbose || !report.errors.is_empty() {
            println!("{}: cleaned up: {report}", self.cluster.layout.tool);
        }
        if let Some((mut child, mut stdin)) = self.watchdog.take() {
            let _ = stdin.write_all(DONE.as_bytes());
            drop(stdin);
            let _ = child.wait();
        }
    }
}

/// `xtask __guard <tool>`: waits for the session's pipe to close and cleans up unless the
/// session said it was done.
pub(crate) fn watch(tool: &str) -> crate::Result {
    let layout = LAYOUTS
        .iter()
        .find(|l| l.tool == tool)
        .ok_or_else(|| format!("no layout for tool `{tool}`"))?;
    let mut said = String::new();
    // EOF comes when the session process ends, however it ends.
    let _ = std::io::stdin().read_to_string(&mut said);
    if said == DONE {
        return Ok(());
    }
    println!("\n{tool}: interrupted: cleaning up");
    let report = nodes::cleanup(layout);
    println!("{tool}: cleaned up: {report}");
    Ok(())
}
