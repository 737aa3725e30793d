//! Stress: the ring's atomics and wake-up protocol under real concurrency.
//!
//! * Two threads, one 64 KiB ring, two million variable-length records with an index and a
//!   checksum each, sleeping on eventfds exactly as the connection layer does. Both sides
//!   pause now and then so the other one must sleep on a full or empty ring; a lost wake-up
//!   shows as a 5 s poll timeout, a race on the bytes as a checksum or index mismatch.
//! * Two processes (fork) through the whole stack: requests, responses and events with
//!   checksums, across a real process boundary.

use alloc::vec::Vec;
use core::time::Duration;
use std::os::fd::{AsFd, OwnedFd};

use crate::ring::{Consumer, Producer, PushError};
use crate::shm::ShmRing;
use crate::sys;

use super::ring_shm::ring;
use super::{Scratch, fork_child, wait_child};

const RECORDS: u64 = 2_000_000;

/// Record `i`: index, filler, and a 4-byte checksum of the filler.
fn make(i: u64, buf: &mut Vec<u8>) {
    let len = if i.is_multiple_of(10_000) {
        8_000
    } else {
        ((i * 7919) % 240) as usize
    };
    buf.clear();
    buf.extend_from_slice(&i.to_le_bytes());
    let mut sum = 0u32;
    for k in 0..len {
        let b = (i as u8) ^ (k as u8).wrapping_mul(31);
        sum = sum.wrapping_mul(31).wrapping_add(u32::from(b));
        buf.push(b);
    }
    buf.extend_from_slice(&sum.to_le_bytes());
}

fn check(i: u64, rec: &[u8]) {
    assert!(rec.len() >= 12, "record {i} too short");
    let idx = u64::from_le_bytes(rec[..8].try_into().unwrap());
    assert_eq!(idx, i, "records out of order or lost");
    let body = &rec[8..rec.len() - 4];
    let mut sum = 0u32;
    for &b in body {
        sum = sum.wrapping_mul(31).wrapping_add(u32::from(b));
    }
    let want = u32::from_le_bytes(rec[rec.len() - 4..].try_into().unwrap());
    assert_eq!(sum, want, "record {i} corrupted");
}

/// Sleep on `fd`; a 5 s silence means a lost wake-up.
fn sleep_on(fd: &OwnedFd) {
    let mut fds = [sys::pollfd(fd.as_fd())];
    let n = sys::poll(&mut fds, Some(Duration::from_secs(5))).unwrap();
    assert_eq!(n, 1, "lost wake-up: slept 5 s with the other side active");
}

fn produce(mut p: Producer<ShmRing>, data_bell: &OwnedFd, space_bell: &OwnedFd) -> u64 {
    let mut buf = Vec::new();
    let mut sleeps = 0;
    for i in 0..RECORDS {
        make(i, &mut buf);
        if i % 400_000 == 200_000 {
            // Let the consumer drain the ring and fall asleep.
            std::thread::sleep(Duration::from_millis(2));
        }
        loop {
            match p.try_push(&buf) {
                Ok(wake) => {
                    if wake {
                        sys::notify(data_bell.as_fd());
                    }
                    break;
                }
                Err(PushError::Full) => {
                    sys::drain(space_bell.as_fd());
                    if !p.arm(buf.len()).unwrap() {
                        sleeps += 1;
                        sleep_on(space_bell);
                    }
                }
                Err(e) => panic!("{e:?}"),
            }
        }
    }
    sleeps
}

fn consume(mut c: Consumer<ShmRing>, data_bell: &OwnedFd, space_bell: &OwnedFd) -> u64 {
    let mut out = Vec::new();
    let mut sleeps = 0;
    let mut i = 0;
    while i < RECORDS {
        match c.try_pop(&mut out).unwrap() {
            Some(wake) => {
                if wake {
                    sys::notify(space_bell.as_fd());
                }
                check(i, &out);
                i += 1;
                if i % 400_000 == 0 {
                    // Let the producer fill the ring and fall asleep.
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
            None => {
                sys::drain(data_bell.as_fd());
                if !c.arm().unwrap() {
                    sleeps += 1;
                    sleep_on(data_bell);
                }
            }
        }
    }
    sleeps
}

#[test]
fn two_threads_two_million_records_with_checksums() {
    let (p, c) = ring(64 << 10, 8_192);
    let data_bell = sys::eventfd().unwrap();
    let space_bell = sys::eventfd().unwrap();
    let (producer_sleeps, consumer_sleeps) = std::thread::scope(|s| {
        let t = s.spawn(|| produce(p, &data_bell, &space_bell));
        let c = consume(c, &data_bell, &space_bell);
        (t.join().unwrap(), c)
    });
    assert!(producer_sleeps > 0, "the full-ring sleep path ran");
    assert!(consumer_sleeps > 0, "the empty-ring sleep path ran");
}

#[test]
fn two_processes_requests_responses_and_events() {
    const N: u32 = 20_000;
    let s = Scratch::new("procs");
    let mut server = s.server(s.small());
    let path = server.sock_path_for_test();
    let child = fork_child(move || {
        let Ok(mut c) = crate::Client::connect(&path) else {
            return 2;
        };
        let mut events = 0u32;
        let mut buf = Vec::new();
        for i in 0..N {
            let len = (i as usize * 131) % 12_000;
            let req = super::payload(u64::from(i), len);
            let Ok(resp) = c.request(&req) else {
                return 3;
            };
            // The daemon answers with the bytes reversed.
            if resp.len() != req.len() || resp.iter().rev().ne(req.iter()) {
                return 4;
            }
            while let Ok(true) = c.try_recv_event_into(&mut buf) {
                if buf != u32::to_le_bytes(events) {
                    return 5;
                }
                events += 1;
            }
        }
        // Collect the events still in flight (one per 16 requests).
        while events < N / 16 {
            match c.recv_event(Some(Duration::from_secs(5))) {
                Ok(Some(e)) if e == u32::to_le_bytes(events) => events += 1,
                _ => return 6,
            }
        }
        0
    });
    let mut conn = super::accept_one(&mut server).unwrap();
    let mut served = 0u32;
    let mut sent_events = 0u32;
    let mut req = Vec::new();
    while served < N {
        conn.clear_doorbell();
        while conn.try_recv_request_into(&mut req).unwrap() {
            req.reverse();
            conn.send_response(&req).unwrap();
            served += 1;
            if served.is_multiple_of(16) {
                conn.send_event(&sent_events.to_le_bytes()).unwrap();
                sent_events += 1;
            }
        }
        if served < N {
            assert!(
                conn.wait(Some(Duration::from_secs(5))).unwrap(),
                "client stalled"
            );
        }
    }
    assert_eq!(wait_child(child), 0);
    assert_eq!(conn.stats().requests, u64::from(N));
}

impl crate::Server {
    /// The socket path, owned (for moving into a child).
    pub(crate) fn sock_path_for_test(&self) -> std::path::PathBuf {
        self.path().to_path_buf()
    }
}
