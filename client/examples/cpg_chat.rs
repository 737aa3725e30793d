//! `cargo run -p totem-client --example cpg_chat [GROUP]`: a chat over CPG. Joins GROUP
//! (default `chat`), prints every delivery and membership change, and multicasts each line
//! typed on stdin. One thread, one `poll(2)` over stdin and the handle's pollable fd (what
//! an application with its own event loop does). Ctrl-D leaves.
//!
//! Against a cluster: `cargo xtask cluster exec 1 -- target/debug/examples/cpg_chat`.

use std::io::Read as _;
use std::os::fd::AsRawFd as _;

use totem_client::cpg::{Cpg, DispatchMode, Event, Guarantee};

fn main() -> Result<(), Box<dyn core::error::Error>> {
    let group = std::env::args().nth(1).unwrap_or_else(|| "chat".to_owned());
    let mut cpg = Cpg::initialize()?;
    let me = cpg.local_get()?;
    cpg.join(&group)?;
    println!(
        "node {} pid {}: joined {group}; type lines, Ctrl-D to leave",
        me.0,
        std::process::id()
    );
    // Raw reads, not a BufReader: poll(2) only sees what is still in the pipe, so lines
    // that arrived together must all be taken from one read.
    let mut stdin = std::io::stdin().lock();
    let mut pending: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 64 << 10];
    loop {
        let mut fds = [
            libc::pollfd {
                fd: 0,
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: cpg.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: two valid pollfd entries, for the duration of the call.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if n < 0 {
            continue; // EINTR
        }
        if fds[1].revents != 0 {
            cpg.dispatch(DispatchMode::All, |_, ev| print_event(&ev))?;
        }
        if fds[0].revents != 0 {
            let n = stdin.read(&mut chunk)?;
            if n == 0 {
                if !pending.is_empty() {
                    send(&mut cpg, &group, &pending)?;
                }
                break;
            }
            pending.extend_from_slice(&chunk[..n]);
            while let Some(end) = pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = pending.drain(..=end).collect();
                send(&mut cpg, &group, &line[..end])?;
            }
        }
    }
    cpg.finalize()?;
    Ok(())
}

/// Multicasts `line`; under flow control, dispatches and tries again.
fn send(cpg: &mut Cpg, group: &str, line: &[u8]) -> Result<(), totem_client::Error> {
    loop {
        match cpg.mcast(group, Guarantee::Agreed, line) {
            Err(e) if e.is_try_again() => {
                if let Some(ev) = cpg.next_event(Some(core::time::Duration::from_millis(1)))? {
                    print_event(&ev);
                }
            }
            other => return other,
        }
    }
}

fn print_event(ev: &Event) {
    match ev {
        Event::Deliver {
            sender_nodeid,
            sender_pid,
            payload,
            ..
        } => {
            println!(
                "<{}/{sender_pid}> {}",
                sender_nodeid.0,
                String::from_utf8_lossy(payload)
            );
        }
        Event::Confchg {
            group,
            members,
            left,
            joined,
        } => {
            for a in joined {
                println!("* {}/{} joined {group} ({:?})", a.node.0, a.pid, a.reason);
            }
            for a in left {
                println!("* {}/{} left {group} ({:?})", a.node.0, a.pid, a.reason);
            }
            let list: Vec<String> = members
                .iter()
                .map(|m| format!("{}/{}", m.node.0, m.pid))
                .collect();
            println!("* {group}: {}", list.join(" "));
        }
        Event::TotemConfchg { ring_id, members } => {
            let list: Vec<String> = members.iter().map(|n| n.0.to_string()).collect();
            println!(
                "* ring {}.{}: nodes {}",
                ring_id.rep.0,
                ring_id.seq,
                list.join(",")
            );
        }
        other => println!("* {other:?}"),
    }
}
