//! `cargo run --release -p ipc-shm --example bench`: one daemon process and one client
//! process (fork) on this machine, default ring sizes.
//!
//! Measures 64-byte request/response round trips (blocking `request`), pipelined 64-byte
//! requests, 1 MiB requests answered with an 8-byte ack, 1 MiB echo round trips, and a
//! stream of 1 MiB events. Wall-clock figures, indicative only.

use core::time::Duration;
use std::os::fd::AsFd;
use std::time::Instant;

use ipc_shm::{AccessPolicy, Client, Error, SendError, Server, ServerConfig};

const MIB: usize = 1 << 20;

fn serve(server: &mut Server) {
    let mut conn = loop {
        if let Some(c) = server.accept().unwrap() {
            break c;
        }
        let mut p = libc::pollfd {
            fd: std::os::fd::AsRawFd::as_raw_fd(&server.as_fd()),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        unsafe { libc::poll(&mut p, 1, 1000) };
    };
    let mut req = Vec::new();
    let ev = vec![0x5a; MIB];
    loop {
        conn.clear_doorbell();
        while conn.try_recv_request_into(&mut req).unwrap() {
            match req[0] {
                // Echo.
                0 => conn.send_response(&req).unwrap(),
                // Ack.
                1 => conn.send_response(&[0; 8]).unwrap(),
                // Stream N 1 MiB events, then answer.
                _ => {
                    let n = u32::from_le_bytes(req[1..5].try_into().unwrap());
                    let mut sent = 0;
                    while sent < n {
                        match conn.send_event(&ev) {
                            Ok(()) => sent += 1,
                            Err(SendError::Full) => {
                                conn.wait(None).unwrap();
                            }
                            Err(e) => panic!("{e}"),
                        }
                    }
                    conn.send_response(&[0; 8]).unwrap();
                }
            }
        }
        if conn.wait(None).is_err() {
            return;
        }
    }
}

fn rate(what: &str, n: u64, bytes_each: usize, t: Duration) {
    let per_s = n as f64 / t.as_secs_f64();
    let mbs = per_s * bytes_each as f64 / 1e6;
    println!(
        "{what:<44} {per_s:>12.0} /s  {:>8.2} us each  {mbs:>9.1} MB/s",
        1e6 / per_s
    );
}

fn client(path: &std::path::Path) {
    let mut c = Client::connect(path).unwrap();
    let small = [0u8; 64];
    // Warm up the pages of the rings.
    for _ in 0..2000 {
        c.request(&small).unwrap();
    }
    let n = 200_000;
    let t = Instant::now();
    for _ in 0..n {
        c.request(&small).unwrap();
    }
    rate("64 B request/response round trips", n, 64, t.elapsed());

    let n = 1_000_000u64;
    let t = Instant::now();
    let (mut sent, mut got) = (0, 0);
    while got < n {
        while sent < n {
            match c.try_send_request(&small) {
                Ok(()) => sent += 1,
                Err(Error::TryAgain) => break,
                Err(e) => panic!("{e}"),
            }
        }
        c.recv_response(None).unwrap();
        got += 1;
        while c.try_recv_response().unwrap().is_some() {
            got += 1;
        }
    }
    rate(
        "64 B requests, pipelined (try_send_request)",
        n,
        64,
        t.elapsed(),
    );

    let mut big = vec![1u8; MIB];
    big[0] = 1;
    let n = 2000;
    let t = Instant::now();
    for _ in 0..n {
        c.request(&big).unwrap();
    }
    rate("1 MiB requests, 8 B ack", n, MIB, t.elapsed());

    big[0] = 0;
    let n = 1000;
    let t = Instant::now();
    for _ in 0..n {
        assert_eq!(c.request(&big).unwrap().len(), MIB);
    }
    rate(
        "1 MiB echo round trips (1 MiB each way)",
        n,
        MIB,
        t.elapsed(),
    );

    let n: u32 = 4000;
    let mut req = vec![2u8; 5];
    req[1..5].copy_from_slice(&n.to_le_bytes());
    let mut buf = Vec::new();
    let t = Instant::now();
    c.send_request(&req, None).unwrap();
    let mut got = 0;
    while got < n {
        if c.try_recv_event_into(&mut buf).unwrap() {
            got += 1;
        } else {
            // Sleep on the event fd (what a dispatch loop does).
            let mut p = libc::pollfd {
                fd: std::os::fd::AsRawFd::as_raw_fd(&c),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            unsafe { libc::poll(&mut p, 1, 5000) };
        }
    }
    c.recv_response(None).unwrap();
    rate(
        "1 MiB events streamed daemon -> client",
        u64::from(n),
        MIB,
        t.elapsed(),
    );
}

fn main() {
    let dir = std::env::temp_dir().join(format!("ipc-shm-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("s");
    let server = Server::bind(
        &path,
        ServerConfig::default(),
        AccessPolicy::for_current_process(),
    )
    .unwrap();
    // SAFETY: no threads exist yet; the child only runs the client and exits.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        client(&path);
        // SAFETY: leave without running the parent's destructors (the socket file).
        unsafe { libc::_exit(0) };
    }
    let mut server = server;
    serve(&mut server);
    let mut status = 0;
    // SAFETY: waits for our child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    std::fs::remove_dir_all(&dir).unwrap();
}
