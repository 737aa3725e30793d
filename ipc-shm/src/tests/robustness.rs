//! What a hostile, dying or lazy client can do to the daemon: nothing beyond its own
//! connection. Each case checks the daemon's view (the error, one log line, resources
//! freed) and, where it can, the client's (it sees the disconnect).

use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;
use core::time::Duration;
use std::os::fd::{AsFd, AsRawFd};

use crate::error::RingError;
use crate::ring::RingMemory;
use crate::{
    AcceptError, AccessPolicy, Client, ConnError, ConnectError, Error, Permission, RefuseReason,
    RingKind, SendError, Server,
};

use super::{
    Scratch, accept_one, await_signal, fork_child, log_lines, pair, pipe, signal, wait_child,
};

/// Wait (bounded) until the connection reports a failure through `wait` + `check_peer`.
fn wait_for_disconnect(conn: &mut crate::Connection) -> ConnError {
    for _ in 0..100 {
        if let Err(e) = conn.wait(Some(Duration::from_millis(50))) {
            return e;
        }
    }
    panic!("client death not noticed within 5 s");
}

fn one_line(name: &str, needle: &str) -> String {
    let lines = log_lines(name);
    assert_eq!(lines.len(), 1, "exactly one log line, got {lines:?}");
    assert!(lines[0].contains(needle), "{:?} lacks {needle:?}", lines[0]);
    lines[0].clone()
}

#[test]
fn client_killed_mid_write_is_a_clean_disconnect() {
    let s = Scratch::new("midwrite");
    let mut server = s.server(s.small());
    let path = server.sock_path_for_test();
    let (rx, tx) = pipe();
    let child = fork_child(move || {
        let Ok(mut c) = Client::connect(&path) else {
            return 2;
        };
        // Half a record: header and some payload copied, head never published.
        let (req, _, _) = c.rings_for_test();
        req.memory()
            .write(0, &[100, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4]);
        signal(tx.as_fd());
        loop {
            // SAFETY: pause just sleeps until the SIGKILL.
            unsafe { libc::pause() };
        }
    });
    let mut conn = accept_one(&mut server).unwrap();
    assert!(await_signal(rx.as_fd()));
    assert_eq!(
        conn.try_recv_request(),
        Ok(None),
        "an unpublished record is invisible"
    );
    // SAFETY: kills our own child.
    unsafe { libc::kill(child, libc::SIGKILL) };
    assert_eq!(wait_child(child), 128 + libc::SIGKILL);
    assert_eq!(wait_for_disconnect(&mut conn), ConnError::Disconnected);
    assert_eq!(conn.try_recv_request(), Err(ConnError::Disconnected));
    assert_eq!(
        conn.send_event(b"x"),
        Err(SendError::Closed(ConnError::Disconnected))
    );
    one_line(&s.name, "client disconnected");
    assert_eq!(server.connections(), 1);
    drop(conn);
    assert_eq!(server.connections(), 0);
}

#[test]
fn client_killed_after_publishing_a_lie_is_disconnected() {
    let s = Scratch::new("lie");
    let mut server = s.server(s.small());
    let path = server.sock_path_for_test();
    let (rx, tx) = pipe();
    let child = fork_child(move || {
        let Ok(mut c) = Client::connect(&path) else {
            return 2;
        };
        // A header announcing 1000 bytes, but only 16 bytes published.
        let (req, _, _) = c.rings_for_test();
        req.memory().write(0, &[0xe8, 3, 0, 0, 0, 0, 0, 0]);
        req.memory()
            .header()
            .raw_head()
            .store(16, Ordering::Release);
        signal(tx.as_fd());
        // The daemon must hang up on us.
        match c.recv_response(Some(Duration::from_secs(5))) {
            Err(Error::Disconnected) => 0,
            _ => 3,
        }
    });
    let mut conn = accept_one(&mut server).unwrap();
    assert!(await_signal(rx.as_fd()));
    let e = conn.try_recv_request().unwrap_err();
    assert_eq!(
        e,
        ConnError::Corrupt {
            ring: RingKind::Request,
            error: RingError::RecordBeyondHead {
                need: 1008,
                available: 16
            }
        }
    );
    assert_eq!(wait_child(child), 0, "the client saw the disconnect");
    assert_eq!(conn.try_recv_request(), Err(e), "the first error sticks");
    one_line(&s.name, "corrupt request ring: record needs 1008 bytes");
}

/// Corrupt something from the client side, then check the daemon's reaction.
///
/// The daemon reads a client-written position when it needs it: the head when the records
/// it saw are taken, the tail when the room it saw is used up. So after a request, responses
/// and then events are pushed until the daemon has had to look.
fn garbage_case(tag: &str, corrupt: impl FnOnce(&mut Client), expect: ConnError, log: &str) {
    let s = Scratch::new(tag);
    let mut server = s.server(s.small());
    let (mut conn, mut client) = pair(&mut server);
    corrupt(&mut client);
    client.ring_doorbell_for_test();
    assert!(conn.wait(Some(Duration::from_secs(5))).unwrap());
    let until_closed = |push: &mut dyn FnMut() -> Result<(), SendError>| {
        for _ in 0..1_000_000 {
            match push() {
                Err(SendError::Closed(e)) => return Some(e),
                // An honest client's ring is full now: the daemon looked and found it fine.
                Err(SendError::Full) => return None,
                Ok(()) => {}
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
        None
    };
    let got = match conn.try_recv_request() {
        Err(e) => e,
        Ok(_) => until_closed(&mut || conn.send_response(b"r"))
            .or_else(|| until_closed(&mut || conn.send_event(b"e")))
            .unwrap_or_else(|| panic!("not detected")),
    };
    assert_eq!(got, expect);
    one_line(&s.name, log);
    // The client learns at its next blocking call (after any response that made it).
    loop {
        match client.recv_response(Some(Duration::from_secs(5))) {
            Ok(_) => continue,
            Err(e) => {
                assert_eq!(e, Error::Disconnected);
                break;
            }
        }
    }
    drop(conn);
    assert_eq!(server.connections(), 0);
}

#[test]
fn garbage_request_head_disconnects() {
    garbage_case(
        "gh",
        |c| {
            let (req, _, _) = c.rings_for_test();
            req.memory()
                .header()
                .raw_head()
                .store(u64::MAX - 7, Ordering::Release);
        },
        ConnError::Corrupt {
            ring: RingKind::Request,
            error: RingError::HeadOutOfRange {
                head: u64::MAX - 7,
                tail: 0,
                capacity: 64 << 10,
            },
        },
        "corrupt request ring: head",
    );
}

#[test]
fn record_length_beyond_the_ring_disconnects() {
    garbage_case(
        "glen",
        |c| {
            let (req, _, _) = c.rings_for_test();
            req.memory().write(0, &[0, 0, 0, 0x10, 0, 0, 0, 0]);
            req.memory()
                .header()
                .raw_head()
                .store(64, Ordering::Release);
        },
        ConnError::Corrupt {
            ring: RingKind::Request,
            error: RingError::RecordTooLarge {
                len: 0x1000_0000,
                max: 16 << 10,
            },
        },
        "record length 268435456 exceeds max_message 16384",
    );
}

#[test]
fn garbage_response_tail_disconnects() {
    garbage_case(
        "gt",
        |c| {
            let (_, resp, _) = c.rings_for_test();
            resp.memory()
                .header()
                .raw_tail()
                .store(1 << 40, Ordering::Release);
        },
        ConnError::Corrupt {
            ring: RingKind::Response,
            error: RingError::TailOutOfRange {
                tail: 1 << 40,
                previous: 0,
                // Found once the 64 KiB ring (`small`) was filled.
                head: 65536,
            },
        },
        "corrupt response ring: tail",
    );
}

#[test]
fn garbage_event_tail_disconnects() {
    garbage_case(
        "ge",
        |c| {
            let (_, _, ev) = c.rings_for_test();
            ev.memory().header().raw_tail().store(3, Ordering::Release);
        },
        ConnError::Corrupt {
            ring: RingKind::Event,
            error: RingError::TailOutOfRange {
                tail: 3,
                previous: 0,
                // Found once the 64 KiB ring (`small`) was filled.
                head: 65536,
            },
        },
        "corrupt event ring: tail",
    );
}

#[test]
fn bytes_on_the_control_socket_disconnect() {
    let s = Scratch::new("sockgarbage");
    let mut server = s.server(s.small());
    let (mut conn, client) = pair(&mut server);
    // SAFETY: writes 3 bytes from a live buffer to the client's socket.
    let n = unsafe {
        libc::send(
            client.socket_for_test().as_raw_fd(),
            b"bad".as_ptr().cast(),
            3,
            0,
        )
    };
    assert_eq!(n, 3);
    assert_eq!(wait_for_disconnect(&mut conn), ConnError::Protocol);
    one_line(&s.name, "client wrote on the control socket; disconnecting");
}

#[test]
fn a_client_that_never_reads_events_gets_full_and_memory_stays_bounded() {
    let s = Scratch::new("lazy");
    let mut server = s.server(s.small());
    let (mut conn, mut client) = pair(&mut server);
    let ev = [7u8; 4000];
    let mut queued = 0;
    loop {
        match conn.send_event(&ev) {
            Ok(()) => queued += 1,
            Err(SendError::Full) => break,
            Err(e) => panic!("{e}"),
        }
    }
    // 64 KiB event ring, 4008-byte records: 16 fit, then Full, again and again.
    assert_eq!(queued, 16);
    for _ in 0..1000 {
        assert_eq!(conn.send_event(&ev), Err(SendError::Full));
    }
    assert!(conn.event_backlog() <= 64 << 10);
    assert_eq!(conn.stats().events_full, 1001);
    assert_eq!(conn.check_peer(), Ok(()), "the daemon keeps the client");
    assert!(
        log_lines(&s.name).is_empty(),
        "Full is the daemon's call, not a log line"
    );
    // Once the client reads, the doorbell rings and events flow again.
    assert!(client.try_recv_event().unwrap().is_some());
    assert!(conn.wait(Some(Duration::from_secs(5))).unwrap());
    conn.send_event(&ev).unwrap();
}

#[test]
fn connection_flood_is_bounded_by_max_connections() {
    let s = Scratch::new("flood");
    let mut config = s.small();
    config.max_connections = 4;
    let mut server = s.server(config);
    let mut pairs: Vec<_> = (0..4).map(|_| pair(&mut server)).collect();
    assert_eq!(server.connections(), 4);
    let path = server.sock_path_for_test();
    let t = std::thread::spawn(move || Client::connect(path));
    assert!(matches!(
        accept_one(&mut server),
        Err(AcceptError::Refused {
            reason: RefuseReason::TooManyConnections { max: 4 },
            ..
        })
    ));
    let e = t.join().unwrap().unwrap_err();
    assert_eq!(e, ConnectError::TooManyConnections);
    assert_eq!(e.errno(), libc::EMFILE);
    one_line(&s.name, "too many connections (max_connections 4)");
    // A slot frees when the daemon drops a connection.
    pairs.pop();
    let _again = pair(&mut server);
    assert_eq!(server.connections(), 4);
}

/// Connect from a child that dropped to uid/gid 65534 (nobody); exit code 0 if the result
/// is `want`.
fn as_nobody(
    server: &mut Server,
    want: Result<Permission, ConnectError>,
) -> Result<crate::Connection, AcceptError> {
    let path = server.sock_path_for_test();
    let child = fork_child(move || {
        // SAFETY: plain credential syscalls in the child; order matters (groups and gid
        // before giving up root with setuid).
        let ok = unsafe {
            libc::setgroups(0, core::ptr::null()) == 0
                && libc::setgid(65534) == 0
                && libc::setuid(65534) == 0
        };
        if !ok {
            return 10;
        }
        let got = Client::connect(&path).map(|c| c.permission());
        if got == want { 0 } else { 11 }
    });
    let r = accept_one(server);
    assert_eq!(
        wait_child(child),
        0,
        "child saw the expected connect result"
    );
    r
}

#[test]
fn unprivileged_uid_is_denied_then_allowed_read_only() {
    let s = Scratch::new("perm");
    let mut server = s.server(s.small());
    let err = as_nobody(&mut server, Err(ConnectError::AccessDenied)).unwrap_err();
    let AcceptError::Refused { peer, reason } = err else {
        panic!("{err:?}");
    };
    assert_eq!(reason, RefuseReason::AccessDenied);
    assert_eq!((peer.uid, peer.gid), (65534, 65534));
    let line = one_line(&s.name, "Denied connection attempt from 65534:65534 (pid ");
    assert!(line.starts_with("WARN"));
    // As corosync's `uidgid { uid: 65534 }`, but read-only.
    let mut policy = AccessPolicy::for_current_process();
    policy.allow_uid(65534, Permission::READ);
    server.set_policy(policy);
    let conn = as_nobody(&mut server, Ok(Permission::READ)).unwrap();
    assert_eq!(conn.permission(), Permission::READ);
    assert_eq!(conn.peer().uid, 65534);
    // And by group.
    let mut policy = AccessPolicy::for_current_process();
    policy.allow_gid(65534, Permission::FULL);
    server.set_policy(policy);
    let conn = as_nobody(&mut server, Ok(Permission::FULL)).unwrap();
    assert_eq!(conn.permission(), Permission::FULL);
}
