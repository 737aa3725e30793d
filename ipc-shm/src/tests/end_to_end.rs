//! Client ↔ server through the real socket, memfd and eventfds, in one process (the client
//! side runs on a helper thread where it has to block).

use core::time::Duration;
use std::os::fd::{AsFd, AsRawFd};

use crate::{
    AccessPolicy, Client, ConnectError, DEFAULT_MAX_MESSAGE, Error, Permission, RefuseReason,
    SendError, Server, ServerConfig, ServerError,
};

use super::{Scratch, echo, pair, payload};

#[test]
fn request_response_round_trips() {
    let s = Scratch::new("rr");
    let mut server = s.server(s.small());
    let (conn, mut client) = pair(&mut server);
    assert_eq!(conn.peer().pid, std::process::id() as i32);
    assert_eq!(conn.permission(), Permission::FULL);
    assert_eq!(client.permission(), Permission::FULL);
    assert_eq!(client.conn_id(), conn.id());
    assert_eq!(server.connections(), 1);
    let t = std::thread::spawn(move || echo(conn, 500));
    for i in 0..500u64 {
        let req = payload(i, (i as usize * 97) % (16 << 10));
        assert_eq!(client.request(&req).unwrap(), req);
    }
    let conn = t.join().unwrap();
    assert_eq!(conn.stats().requests, 500);
    drop(conn);
    assert_eq!(server.connections(), 0);
}

#[test]
fn one_mebibyte_messages_end_to_end() {
    let s = Scratch::new("big");
    let config = ServerConfig {
        name: s.name.clone(),
        ..ServerConfig::default()
    };
    let mut server = s.server(config);
    let (conn, mut client) = pair(&mut server);
    assert_eq!(client.max_message(), DEFAULT_MAX_MESSAGE);
    let t = std::thread::spawn(move || {
        let mut conn = echo(conn, 3);
        let ev = payload(99, DEFAULT_MAX_MESSAGE);
        conn.send_event(&ev).unwrap();
        assert_eq!(
            conn.send_event(&payload(0, DEFAULT_MAX_MESSAGE + 1)),
            Err(SendError::TooLarge {
                len: DEFAULT_MAX_MESSAGE + 1,
                max: DEFAULT_MAX_MESSAGE
            })
        );
        conn
    });
    for (i, len) in [1 << 20, DEFAULT_MAX_MESSAGE, (1 << 20) + 1]
        .into_iter()
        .enumerate()
    {
        let req = payload(i as u64, len);
        assert_eq!(client.request(&req).unwrap(), req);
    }
    let ev = client
        .recv_event(Some(Duration::from_secs(5)))
        .unwrap()
        .unwrap();
    assert_eq!(ev, payload(99, DEFAULT_MAX_MESSAGE));
    assert_eq!(
        client.try_send_request(&payload(0, DEFAULT_MAX_MESSAGE + 1)),
        Err(Error::TooLarge {
            len: DEFAULT_MAX_MESSAGE + 1,
            max: DEFAULT_MAX_MESSAGE
        })
    );
    drop(t.join().unwrap());
}

#[test]
fn full_request_ring_gives_try_again_then_drains_in_order() {
    let s = Scratch::new("tryagain");
    let mut server = s.server(s.small());
    let (mut conn, mut client) = pair(&mut server);
    let mut sent = 0u64;
    loop {
        match client.try_send_request(&payload(sent, 1000)) {
            Ok(()) => sent += 1,
            Err(Error::TryAgain) => break,
            Err(e) => panic!("{e}"),
        }
    }
    // 64 KiB ring, 1008-byte records.
    assert_eq!(sent, 65);
    // The daemon answers as far as the response ring allows (one max record of room is
    // kept per request), the client reads responses, and it all drains in order.
    let mut got = 0u64;
    let mut answered = 0u64;
    while got < sent {
        conn.clear_doorbell();
        while let Some(req) = conn.try_recv_request().unwrap() {
            assert_eq!(req, payload(answered, 1000).as_slice());
            let r = req.to_vec();
            conn.send_response(&r).unwrap();
            answered += 1;
        }
        assert!(answered > got, "the daemon made progress");
        while let Some(r) = client.try_recv_response().unwrap() {
            assert_eq!(r, payload(got, 1000));
            got += 1;
        }
    }
    assert_eq!(answered, sent);
}

#[test]
fn responses_not_read_hold_back_requests_not_memory() {
    let s = Scratch::new("resphold");
    let mut server = s.server(s.small());
    let (mut conn, mut client) = pair(&mut server);
    for i in 0..15 {
        client.try_send_request(&payload(i, 4000)).unwrap();
    }
    let mut answered = 0;
    conn.clear_doorbell();
    while let Some(req) = conn.try_recv_request().unwrap() {
        let r = req.to_vec();
        conn.send_response(&r).unwrap();
        answered += 1;
    }
    // 64 KiB response ring, 4008-byte responses, one max record (16 392 bytes) kept free
    // before each request is taken: 65 536 - 13 * 4008 < 16 392.
    assert_eq!(answered, 13);
    assert!(!wait_ready(conn.doorbell_fd().as_raw_fd(), 0));
    // Reading one response rings the doorbell: the daemon may go on.
    client.try_recv_response().unwrap().unwrap();
    assert!(conn.wait(Some(Duration::from_secs(5))).unwrap());
    assert!(conn.try_recv_request().unwrap().is_some());
}

/// Is `fd` readable within `ms` milliseconds?
fn wait_ready(fd: i32, ms: i32) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    (unsafe { libc::poll(&mut p, 1, ms) }) == 1
}

#[test]
fn deferred_wake_ups_wait_for_flush_and_ring_once() {
    let s = Scratch::new("defer");
    let mut server = s.server(s.small());
    let (mut conn, mut client) = pair(&mut server);
    conn.set_deferred_wakes(true);
    let fd = client.as_raw_fd();
    assert_eq!(client.try_recv_event().unwrap(), None); // asleep: wants a wake-up
    conn.send_event(b"one").unwrap();
    conn.send_event(b"two").unwrap();
    assert!(conn.wake_pending());
    assert!(!wait_ready(fd, 0), "nothing rings before flush_wakes");
    assert_eq!(conn.stats().wakeups, 0);
    conn.flush_wakes();
    assert!(!conn.wake_pending());
    assert!(wait_ready(fd, 5000));
    assert_eq!(conn.stats().wakeups, 1);
    assert_eq!(client.try_recv_event().unwrap().unwrap(), b"one");
    assert_eq!(client.try_recv_event().unwrap().unwrap(), b"two");
    assert_eq!(client.try_recv_event().unwrap(), None);
    // Turning deferral off sends what was collected.
    conn.send_event(b"three").unwrap();
    assert!(!wait_ready(fd, 0));
    conn.set_deferred_wakes(false);
    assert!(wait_ready(fd, 5000));
    assert_eq!(client.try_recv_event().unwrap().unwrap(), b"three");
}

#[test]
fn event_fd_is_pollable_and_rearmed_by_empty_reads() {
    let s = Scratch::new("evfd");
    let mut server = s.server(s.small());
    let (mut conn, mut client) = pair(&mut server);
    let fd = client.as_raw_fd();
    assert_eq!(client.try_recv_event().unwrap(), None);
    assert!(!wait_ready(fd, 0));
    conn.send_event(b"one").unwrap();
    conn.send_event(b"two").unwrap();
    assert!(wait_ready(fd, 5000));
    assert_eq!(client.try_recv_event().unwrap().unwrap(), b"one");
    assert_eq!(client.try_recv_event().unwrap().unwrap(), b"two");
    assert_eq!(client.try_recv_event().unwrap(), None);
    assert!(
        !wait_ready(fd, 0),
        "an empty read re-arms and clears the fd"
    );
    assert_eq!(
        conn.stats().wakeups,
        1,
        "two events while asleep: one wake-up"
    );
    conn.send_event(b"three").unwrap();
    assert!(wait_ready(fd, 5000));
    assert_eq!(
        client.recv_event(Some(Duration::ZERO)).unwrap().unwrap(),
        b"three"
    );
    assert_eq!(
        client.recv_event(Some(Duration::from_millis(1))).unwrap(),
        None
    );
}

#[test]
fn daemon_going_away_wakes_a_blocked_client() {
    let s = Scratch::new("daemongone");
    let mut server = s.server(s.small());
    let (conn, mut client) = pair(&mut server);
    let t = std::thread::spawn(move || client.request(b"never answered"));
    std::thread::sleep(Duration::from_millis(20));
    drop(conn);
    assert_eq!(t.join().unwrap(), Err(Error::Disconnected));
}

#[test]
fn not_ready_server_says_try_again() {
    let s = Scratch::new("notready");
    let mut server = s.server(s.small());
    server.set_ready(false);
    let path = server.path().to_path_buf();
    let t = std::thread::spawn(move || Client::connect(path));
    let err = super::accept_one(&mut server).unwrap_err();
    assert!(matches!(
        err,
        crate::AcceptError::Refused {
            reason: RefuseReason::NotReady,
            ..
        }
    ));
    let e = t.join().unwrap().unwrap_err();
    assert_eq!(e, ConnectError::NotReady);
    assert_eq!(e.errno(), libc::EAGAIN);
    server.set_ready(true);
    let _pair = pair(&mut server);
}

#[test]
fn no_daemon_is_a_clear_connect_error() {
    let s = Scratch::new("nodaemon");
    let e = Client::connect(s.sock()).unwrap_err();
    assert_eq!(e.errno(), libc::ENOENT);
    let long = s.dir.join("x".repeat(200));
    assert_eq!(
        Client::connect(long).unwrap_err(),
        ConnectError::PathTooLong
    );
}

#[test]
fn socket_path_lifecycle() {
    let s = Scratch::new("path");
    let server = s.server(s.small());
    assert_eq!(
        Server::bind(s.sock(), s.small(), AccessPolicy::new(0)).unwrap_err(),
        ServerError::AddrInUse
    );
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(s.sock()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o666);
    }
    drop(server);
    assert!(!s.sock().exists(), "drop unlinks the socket");
    // A stale socket file (its server died without cleaning up) is replaced.
    let stale = std::os::unix::net::UnixListener::bind(s.sock()).unwrap();
    drop(stale);
    assert!(s.sock().exists());
    let mut server = s.server(s.small());
    let _pair = pair(&mut server);
}

#[test]
fn impossible_configs_are_refused() {
    let s = Scratch::new("config");
    let mut c = s.small();
    c.rings.event = 3000;
    assert!(matches!(
        Server::bind(s.sock(), c, AccessPolicy::new(0)),
        Err(ServerError::Config(crate::ConfigError::BadRingSize { .. }))
    ));
    let mut c = s.small();
    c.max_message = 64 << 10;
    assert!(matches!(
        Server::bind(s.sock(), c, AccessPolicy::new(0)),
        Err(ServerError::Config(crate::ConfigError::RingTooSmall { .. }))
    ));
    let mut c = s.small();
    c.max_connections = 0;
    assert!(Server::bind(s.sock(), c, AccessPolicy::new(0)).is_err());
}

#[test]
fn the_memfd_is_sealed_against_shrinking() {
    let fd = crate::shm::create_memfd(1 << 16).unwrap();
    // SAFETY: plain syscalls on an fd we own.
    unsafe {
        assert_eq!(libc::ftruncate(fd.as_fd().as_raw_fd(), 0), -1);
        assert_eq!(*libc::__errno_location(), libc::EPERM);
        assert_eq!(libc::ftruncate(fd.as_fd().as_raw_fd(), 1 << 20), -1);
        let seals = libc::fcntl(fd.as_raw_fd(), libc::F_GET_SEALS);
        assert_eq!(
            seals,
            libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL
        );
    }
}

#[test]
fn pipelined_requests_answer_in_order() {
    let s = Scratch::new("pipe");
    let mut server = s.server(s.small());
    let (conn, mut client) = pair(&mut server);
    let t = std::thread::spawn(move || echo(conn, 200));
    let mut next_response = 0u64;
    for i in 0..200u64 {
        loop {
            match client.try_send_request(&payload(i, 300)) {
                Ok(()) => break,
                Err(Error::TryAgain) => {
                    let r = client.recv_response(Some(Duration::from_secs(5))).unwrap();
                    assert_eq!(r, payload(next_response, 300));
                    next_response += 1;
                }
                Err(e) => panic!("{e}"),
            }
        }
    }
    while next_response < 200 {
        let r = client.recv_response(Some(Duration::from_secs(5))).unwrap();
        assert_eq!(r, payload(next_response, 300));
        next_response += 1;
    }
    drop(t.join().unwrap());
}

#[test]
fn first_messages_ring_without_a_prior_look() {
    let s = Scratch::new("first");
    let mut server = s.server(s.small());
    let (mut conn, mut client) = pair(&mut server);
    // Neither side has looked at a ring yet: both start asleep.
    assert!(!wait_ready(conn.doorbell_fd().as_raw_fd(), 0));
    client.try_send_request(b"first").unwrap();
    assert!(wait_ready(conn.doorbell_fd().as_raw_fd(), 5000));
    assert!(!wait_ready(client.as_raw_fd(), 0));
    conn.send_event(b"first event").unwrap();
    assert!(wait_ready(client.as_raw_fd(), 5000));
    assert_eq!(conn.try_recv_request().unwrap().unwrap(), b"first");
    assert_eq!(client.try_recv_event().unwrap().unwrap(), b"first event");
}

#[test]
fn pollable_fd_reports_the_daemon_going_away_after_queued_events() {
    let s = Scratch::new("evhup");
    let mut server = s.server(s.small());
    let (mut conn, mut client) = pair(&mut server);
    assert_eq!(client.try_recv_event(), Ok(None));
    conn.send_event(b"last words").unwrap();
    drop(conn);
    assert!(wait_ready(client.as_raw_fd(), 5000));
    assert_eq!(client.try_recv_event().unwrap().unwrap(), b"last words");
    assert_eq!(client.try_recv_event(), Err(Error::Disconnected));
    assert!(
        wait_ready(client.as_raw_fd(), 0),
        "stays readable: the app closes"
    );
}

/// A daemon that answers and then closes the connection (a refused session, a `leave`):
/// the client gets the answer, not `Disconnected`, even when it was already asleep and the
/// hang-up and the wake-up arrive together; the next call sees the disconnect.
#[test]
fn a_response_published_before_the_daemon_closes_is_still_received() {
    let s = Scratch::new("answer-close");
    let mut server = s.server(s.small());
    for delay_ms in [0u64, 20] {
        let (mut conn, mut client) = pair(&mut server);
        let t = std::thread::spawn(move || {
            while conn.try_recv_request().unwrap().is_none() {
                assert!(conn.wait(Some(Duration::from_secs(5))).unwrap());
            }
            // Let the client fall asleep on its sync eventfd first (second round).
            std::thread::sleep(Duration::from_millis(delay_ms));
            conn.send_response(b"refused").unwrap();
            drop(conn);
        });
        assert_eq!(client.request(b"hello").unwrap(), b"refused");
        t.join().unwrap();
        assert_eq!(client.request(b"again").unwrap_err(), Error::Disconnected);
    }
}
