//! The local control socket: `totemctl status` and friends talk to the daemon over a Unix
//! stream socket in its state directory (`totemd.sock`), one request line, a text answer,
//! then the daemon closes the connection. (The shared-memory IPC of the services issue will
//! carry these requests later; there is to be one socket per daemon in the end.)
//!
//! Answers are plain text meant for people *and* scripts: the first line of `status` is
//! exactly `node <id>: ring <rep>.<seq> members <id>,<id>,...` (decimal, ascending), which
//! `cargo xtask cluster status` prints as it is.

use core::time::Duration;
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

/// The control socket of a daemon whose state directory is `state_dir`.
pub fn socket_path(state_dir: &Path) -> PathBuf {
    state_dir.join("totemd.sock")
}

/// Requests the daemon understands.
pub const REQUESTS: &[(&str, &str)] = &[
    (
        "status",
        "node id, ring id, state, members, transport and counters",
    ),
    (
        "reload",
        "re-read the configuration file; apply what can change live (like SIGHUP)",
    ),
    ("leave", "leave the ring cleanly and exit (like SIGTERM)"),
];

/// Sends `request` to the daemon at `socket` and returns its answer.
///
/// # Errors
/// The daemon is not running (no socket, connection refused) or does not answer within
/// `timeout`.
pub fn query(socket: &Path, request: &str, timeout: Duration) -> io::Result<String> {
    let mut s = UnixStream::connect(socket)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    s.write_all(request.as_bytes())?;
    s.write_all(b"\n")?;
    let mut out = String::new();
    let mut r = BufReader::new(s);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            break;
        }
        out.push_str(&line);
    }
    Ok(out)
}
