//! The ring over a real `MAP_SHARED` memfd mapping, one thread: record format, wrap-around,
//! full/empty, wake-up flags, and every [`RingError`] a hostile peer can provoke.

use alloc::vec::Vec;

use crate::error::RingError;
use crate::ring::{Consumer, Producer, PushError, RingMemory, record_len};
use crate::shm::{Layout, Rings, ShmRing, create_memfd};

use super::payload;

pub(crate) fn ring(cap: usize, max: usize) -> (Producer<ShmRing>, Consumer<ShmRing>) {
    let layout = Layout { caps: [cap; 3] };
    layout.validate(max).unwrap();
    let fd = create_memfd(layout.total()).unwrap();
    let rings = Rings::map(&fd, &layout).unwrap();
    (
        Producer::new(rings.request.clone(), max),
        Consumer::new(rings.request, max),
    )
}

#[test]
fn record_len_pads_to_eight() {
    assert_eq!(record_len(0), Some(8));
    assert_eq!(record_len(1), Some(16));
    assert_eq!(record_len(8), Some(16));
    assert_eq!(record_len(9), Some(24));
    assert_eq!(record_len(usize::MAX), None);
}

#[test]
fn golden_record_bytes() {
    let (mut p, mut c) = ring(4096, 1024);
    assert_eq!(p.try_push(b"abc"), Ok(false));
    assert_eq!(p.try_push(b""), Ok(false));
    let mut raw = [0u8; 24];
    p.memory().read(0, &mut raw);
    assert_eq!(&raw[..11], b"\x03\x00\x00\x00\x00\x00\x00\x00abc");
    assert_eq!(&raw[16..24], b"\x00\x00\x00\x00\x01\x00\x00\x00");
    assert_eq!(
        p.memory()
            .header()
            .raw_head()
            .load(core::sync::atomic::Ordering::Relaxed),
        24
    );
    let mut out = Vec::new();
    assert_eq!(c.try_pop(&mut out), Ok(Some(false)));
    assert_eq!(out, b"abc");
    assert_eq!(c.try_pop(&mut out), Ok(Some(false)));
    assert!(out.is_empty());
    assert_eq!(c.try_pop(&mut out), Ok(None));
}

#[test]
fn wraps_around_many_times_with_straddling_payloads() {
    let (mut p, mut c) = ring(4096, 1000);
    let mut out = Vec::new();
    let mut sent = 0u64;
    let mut got = 0u64;
    // Lengths chosen so records straddle the end of the data area at many offsets.
    for round in 0..2000u64 {
        let len = ((round * 37) % 1000) as usize;
        loop {
            match p.try_push(&payload(sent, len)) {
                Ok(_) => {
                    sent += 1;
                    break;
                }
                Err(PushError::Full) => {
                    assert_eq!(c.try_pop(&mut out), Ok(Some(false)));
                    let want = ((got * 37) % 1000) as usize;
                    assert_eq!(out, payload(got, want));
                    got += 1;
                }
                Err(e) => panic!("{e:?}"),
            }
        }
    }
    while c.try_pop(&mut out).unwrap().is_some() {
        let want = ((got * 37) % 1000) as usize;
        assert_eq!(out, payload(got, want));
        got += 1;
    }
    assert_eq!(got, sent);
    assert!(c.position() > 100 * 4096, "the ring wrapped many times");
}

#[test]
fn a_max_record_fits_an_exactly_sized_ring() {
    let max = 4096 - 8;
    let (mut p, mut c) = ring(4096, max);
    let mut out = Vec::new();
    for i in 0..5 {
        // Start at a different offset each time so the max record wraps.
        p.try_push(&payload(i, 8 * i as usize)).unwrap();
        c.try_pop(&mut out).unwrap().unwrap();
        let big = payload(100 + i, max);
        p.try_push(&big).unwrap();
        assert_eq!(p.try_push(b""), Err(PushError::Full));
        c.try_pop(&mut out).unwrap().unwrap();
        assert_eq!(out, big);
    }
    assert_eq!(p.try_push(&payload(0, max + 1)), Err(PushError::TooLarge));
}

#[test]
fn wake_flags_are_set_by_arm_and_cleared_by_the_waker() {
    let (mut p, mut c) = ring(4096, 2000);
    let mut out = Vec::new();
    // Reader sleeps: arm on an empty ring says "sleep"; the next push says "wake it".
    assert_eq!(c.arm(), Ok(false));
    assert_eq!(p.try_push(b"x"), Ok(true));
    assert_eq!(p.try_push(b"y"), Ok(false), "one wake-up per sleep");
    // Arm with data present: do not sleep.
    assert_eq!(c.arm(), Ok(true));
    c.try_pop(&mut out).unwrap();
    c.try_pop(&mut out).unwrap();
    // Writer sleeps for space: fill, arm, then a pop says "wake it".
    p.try_push(&[0; 2000]).unwrap();
    p.try_push(&[0; 2000]).unwrap();
    p.try_push(&[0; 2000]).unwrap_err();
    assert_eq!(p.arm(2000), Ok(false));
    assert_eq!(c.try_pop(&mut out), Ok(Some(true)));
    assert_eq!(p.arm(2000), Ok(true), "space is there now");
    assert_eq!(p.backlog(), 2008);
}

fn hostile_head(head: u64) -> Result<Option<bool>, RingError> {
    let (_p, mut c) = ring(4096, 1024);
    c.memory()
        .header()
        .raw_head()
        .store(head, core::sync::atomic::Ordering::Relaxed);
    c.try_pop(&mut Vec::new())
}

#[test]
fn hostile_head_values_are_rejected() {
    for head in [u64::MAX, u64::MAX - 7, 4096 + 8, 3, 12] {
        assert!(
            matches!(hostile_head(head), Err(RingError::HeadOutOfRange { .. })),
            "head {head}"
        );
    }
    // A head a full ring ahead is legal (and then the header is checked).
    assert!(!matches!(
        hostile_head(4096),
        Err(RingError::HeadOutOfRange { .. })
    ));
}

/// Write a record header by hand and publish `head`.
fn forge(c: &Consumer<ShmRing>, len: u32, seq: u32, head: u64) {
    let mut h = [0u8; 8];
    h[..4].copy_from_slice(&len.to_le_bytes());
    h[4..].copy_from_slice(&seq.to_le_bytes());
    c.memory().write(0, &h);
    c.memory()
        .header()
        .raw_head()
        .store(head, core::sync::atomic::Ordering::Release);
}

#[test]
fn hostile_record_headers_are_rejected() {
    let mut out = Vec::new();
    let (_p, mut c) = ring(4096, 1024);
    forge(&c, u32::MAX, 0, 16);
    assert_eq!(
        c.try_pop(&mut out),
        Err(RingError::RecordTooLarge {
            len: u32::MAX,
            max: 1024
        })
    );
    let (_p, mut c) = ring(4096, 1024);
    forge(&c, 1000, 0, 16);
    assert_eq!(
        c.try_pop(&mut out),
        Err(RingError::RecordBeyondHead {
            need: 1008,
            available: 16
        })
    );
    let (_p, mut c) = ring(4096, 1024);
    forge(&c, 4, 7, 16);
    assert_eq!(
        c.try_pop(&mut out),
        Err(RingError::BadSequence {
            expected: 0,
            found: 7
        })
    );
    // Nothing was consumed by any failed pop.
    assert_eq!(c.position(), 0);
}

#[test]
fn hostile_tail_values_are_rejected() {
    let (mut p, c) = ring(4096, 1024);
    p.try_push(b"0123456789").unwrap(); // head = 24
    let tail = c.memory().header().raw_tail();
    for bad in [32, 4, u64::MAX] {
        tail.store(bad, core::sync::atomic::Ordering::Relaxed);
        assert!(
            matches!(p.available(), Err(RingError::TailOutOfRange { .. })),
            "tail {bad}"
        );
    }
    // Going backwards after a valid advance is rejected too.
    tail.store(24, core::sync::atomic::Ordering::Relaxed);
    assert_eq!(p.available(), Ok(4096));
    tail.store(0, core::sync::atomic::Ordering::Relaxed);
    assert!(matches!(
        p.available(),
        Err(RingError::TailOutOfRange { previous: 24, .. })
    ));
}

/// The producer reads the consumer's tail only when the room it last saw is used up, and
/// validates it then: a push never trusts a value it did not check.
#[test]
fn the_tail_is_read_when_the_room_seen_runs_out() {
    let (mut p, c) = ring(4096, 1024);
    let tail = c.memory().header().raw_tail();
    // A bad tail is not looked at while the room seen at start (all of it) lasts.
    tail.store(u64::MAX, core::sync::atomic::Ordering::Relaxed);
    for _ in 0..4 {
        p.try_push(&[7; 1000]).unwrap(); // 1008 bytes each
    }
    assert_eq!(p.free_cached(), 4096 - 4 * 1008);
    assert!(matches!(
        p.try_push(&[7; 1000]),
        Err(PushError::Corrupt(RingError::TailOutOfRange { .. }))
    ));
    // An honest tail frees the room again.
    let (mut p, mut c) = ring(4096, 1024);
    for _ in 0..4 {
        p.try_push(&[7; 1000]).unwrap();
    }
    assert_eq!(p.try_push(&[7; 1000]), Err(PushError::Full));
    c.try_pop(&mut Vec::new()).unwrap();
    assert!(p.try_push(&[7; 1000]).is_ok());
}

/// The consumer takes the records up to the head it last read before it reads the head
/// again, and rejects a head that moves backwards.
#[test]
fn the_head_is_read_when_the_records_seen_are_taken() {
    let (mut p, mut c) = ring(4096, 1024);
    let mut out = Vec::new();
    p.try_push(b"one").unwrap();
    p.try_push(b"two").unwrap();
    let mem = c.memory().clone();
    let head = mem.header().raw_head();
    assert_eq!(c.try_pop(&mut out), Ok(Some(false)));
    assert_eq!(out, b"one");
    // Rewound by a hostile producer: the record seen is still taken, then the rewind
    // is caught.
    head.store(0, core::sync::atomic::Ordering::Relaxed);
    assert_eq!(c.try_pop(&mut out), Ok(Some(false)));
    assert_eq!(out, b"two");
    assert!(matches!(
        c.try_pop(&mut out),
        Err(RingError::HeadOutOfRange { head: 0, .. })
    ));
}

#[test]
fn garbage_wake_flags_only_cause_spurious_wakeups() {
    let (mut p, mut c) = ring(4096, 1024);
    let mem = c.memory().clone();
    let h = mem.header();
    h.raw_reader_waiting()
        .store(0xdead_beef, core::sync::atomic::Ordering::Relaxed);
    h.raw_writer_waiting()
        .store(u32::MAX, core::sync::atomic::Ordering::Relaxed);
    assert_eq!(p.try_push(b"a"), Ok(true));
    assert_eq!(c.try_pop(&mut Vec::new()), Ok(Some(true)));
}
