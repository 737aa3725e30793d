//! `totemctl`: talk to the local totemd.
//!
//! ```text
//! totemctl [-s SOCKET | -f CONFIG] [-t SECONDS] status|reload|leave|cpg
//! totemctl [-s SOCKET | -f CONFIG] [-t SECONDS] cmap list|get|set|del|track ...
//! ```
//! The socket defaults to `$TOTEM_SOCKET`, else the state directory of the configuration
//! file (`-f`, default /etc/totem/totem.conf), else `/var/lib/totem/totemd.sock`. It talks
//! to the daemon as any IPC client does (ipc-shm, session hello for the control service;
//! `node::control` has the protocol) and prints the answer; exit status 1 if the answer
//! is an error or the daemon cannot be reached. `cmap` talks to the cmap service instead
//! (`node::cmapctl`: corosync-cmapctl's `key (type) = value` lines).

use core::time::Duration;
use std::path::PathBuf;
use std::process::ExitCode;

use node::config::{DEFAULT_PATH, DaemonConfig};
use node::control;

const USAGE_FMT: &str = "usage: totemctl [-s SOCKET | -f CONFIG] <request>
requests:
  status   node id, ring id, state, members, transport and counters
  reload   re-read the configuration file and apply what can change live
  leave    leave the ring cleanly and stop the daemon
  cpg      CPG groups and their members: `group <name>` then `  node <id> pid <pid>` lines
{CMAP}
options (before the request):
  -s SOCKET   the daemon's IPC socket (default: $TOTEM_SOCKET, or from the config)
  -f CONFIG   read the state directory from this configuration file
  -t SECONDS  how long to wait for the daemon (default 5)";

fn main() -> ExitCode {
    let usage = USAGE_FMT.replace("{CMAP}", node::cmapctl::USAGE);
    let usage = usage.as_str();
    let mut cmap_args: Vec<String> = Vec::new();
    let mut socket: Option<PathBuf> = std::env::var_os("TOTEM_SOCKET").map(PathBuf::from);
    let mut config: Option<PathBuf> = None;
    let mut request: Option<String> = None;
    let mut timeout = Duration::from_secs(5);
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "-s" => socket = it.next().map(PathBuf::from),
            "-f" => config = it.next().map(PathBuf::from),
            "-t" => {
                let v = it.next().unwrap_or_default();
                match v.parse::<f64>() {
                    Ok(secs) if secs > 0.0 && secs < 1e6 => timeout = Duration::from_secs_f64(secs),
                    _ => {
                        eprintln!("totemctl: -t needs a number of seconds, not {v:?}\n{usage}");
                        return ExitCode::from(2);
                    }
                }
            }
            "-h" | "--help" => {
                println!("{usage}");
                return ExitCode::SUCCESS;
            }
            r if request.is_none() && !r.starts_with('-') => {
                request = Some(r.to_owned());
                if r == "cmap" {
                    // Everything after `cmap` is its own (values may start with '-').
                    cmap_args.extend(it.by_ref());
                }
            }
            other => {
                eprintln!("totemctl: unexpected argument {other:?}\n{usage}");
                return ExitCode::from(2);
            }
        }
    }
    let Some(request) = request else {
        eprintln!("totemctl: no request given\n{usage}");
        return ExitCode::from(2);
    };
    if request != "cmap" && !control::REQUESTS.iter().any(|(r, _)| *r == request) {
        eprintln!("totemctl: unknown request {request:?}\n{usage}");
        return ExitCode::from(2);
    }
    let socket = match (socket, config) {
        (Some(s), None) => s,
        (_, Some(c)) => match DaemonConfig::load(&c) {
            Ok(cfg) => control::socket_path(&cfg.state_dir),
            Err(e) => {
                eprintln!("totemctl: {e}");
                return ExitCode::FAILURE;
            }
        },
        (None, None) => match DaemonConfig::load(std::path::Path::new(DEFAULT_PATH)) {
            Ok(cfg) => control::socket_path(&cfg.state_dir),
            Err(_) => PathBuf::from("/var/lib/totem/totemd.sock"),
        },
    };
    if request == "cmap" {
        return match node::cmapctl::run(&socket, timeout, &cmap_args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(f) => {
                eprintln!("{}", f.message);
                ExitCode::from(f.status)
            }
        };
    }
    match control::query(&socket, &request, timeout) {
        Ok(answer) => {
            print!("{answer}");
            if answer.starts_with("error:") {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("totemctl: cannot reach totemd at {}: {e}", socket.display());
            ExitCode::FAILURE
        }
    }
}
