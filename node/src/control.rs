//! The control service: `totemctl` talks to the daemon over the one IPC socket of the
//! daemon (`<state_dir>/totemd.sock`, ipc-shm), like every other client. The connection
//! opens with the session hello for [`CONTROL`]; each request after it is one line of text
//! (`status`, `reload`, `leave`, `cpg`), each answer plain text, and the connection may
//! carry any number of them.
//!
//! Answers are meant for people *and* scripts: the first line of `status` is exactly
//! `node <id>: ring <rep>.<seq> members <id>,<id>,...` (decimal, ascending), which
//! `cargo xtask cluster status` prints as it is; `cpg` prints one `group <name>` line per
//! group and under it one `  node <id> pid <pid>` line per member, both sorted (as
//! `corosync-cpgtool`). An answer that starts with `error:` is a failure.
//!
//! Access: a connection granted read-only access (`uidgid { access: read }`) may ask for
//! `status` and `cpg`; `reload` and `leave` need full access.

use core::time::Duration;
use std::io;
use std::path::{Path, PathBuf};

use ipc_shm::{Client, ConnectError};
use services::cpg::wire::CsError;
use services::session::{CONTROL, Hello, HelloReply};

/// The IPC socket of a daemon whose state directory is `state_dir`.
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
    ("cpg", "CPG groups and their members (node id, pid)"),
];

/// Whether `request` changes something (then it needs full access).
pub fn needs_write(request: &str) -> bool {
    matches!(request, "reload" | "leave")
}

/// Sends `request` to the daemon at `socket` and returns its answer.
///
/// # Errors
/// The daemon is not running (`NotFound` / `ConnectionRefused`), refuses this user
/// (`PermissionDenied`: not in its `uidgid` sections), refuses the session, or does not
/// answer within `timeout` (`TimedOut`, e.g. a stopped daemon).
pub fn query(socket: &Path, request: &str, timeout: Duration) -> io::Result<String> {
    let mut client = Client::connect_timeout(socket, timeout).map_err(connect_error)?;
    let hello = call(&mut client, &Hello { service: CONTROL }.encode(), timeout)?;
    match HelloReply::decode(&hello) {
        Ok(HelloReply { error: CsError::Ok }) => {}
        Ok(HelloReply { error }) => {
            return Err(io::Error::other(format!(
                "the daemon refused the control session: {error:?}"
            )));
        }
        Err(e) => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("not a totemd session reply: {e}"),
            ));
        }
    }
    let answer = call(&mut client, request.as_bytes(), timeout)?;
    String::from_utf8(answer)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "answer is not UTF-8 text"))
}

/// One request and its response, each step within `timeout`.
fn call(client: &mut Client, request: &[u8], timeout: Duration) -> io::Result<Vec<u8>> {
    let ipc = |e: ipc_shm::Error| match e {
        ipc_shm::Error::TimedOut => io::Error::new(io::ErrorKind::TimedOut, "no answer"),
        ipc_shm::Error::Disconnected => io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "the daemon closed the connection",
        ),
        e => io::Error::other(e.to_string()),
    };
    client.send_request(request, Some(timeout)).map_err(ipc)?;
    client.recv_response(Some(timeout)).map_err(ipc)
}

fn connect_error(e: ConnectError) -> io::Error {
    let kind = match e {
        ConnectError::AccessDenied => io::ErrorKind::PermissionDenied,
        ConnectError::TimedOut => io::ErrorKind::TimedOut,
        ConnectError::Os(_) => io::Error::from_raw_os_error(e.errno()).kind(),
        _ => io::ErrorKind::Other,
    };
    let msg = match e {
        ConnectError::AccessDenied => {
            "access denied (this user is not in the daemon's uidgid sections)".to_owned()
        }
        e => e.to_string(),
    };
    io::Error::new(kind, msg)
}
