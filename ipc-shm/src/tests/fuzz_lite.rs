//! Fuzz-lite (STYLE point 16 ii): a seeded PRNG plays a hostile peer 100 000 times, writing
//! random positions, record headers and flags into a real mapping, while our side keeps
//! reading or writing. The property: no panic (the bounds asserts in `ShmRing` would
//! fire on any out-of-range copy), every record handed out respects `max_message`, and a
//! side never moves past what the peer published.

use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use crate::error::RingError;
use crate::ring::{Consumer, Producer, PushError, RingMemory};
use crate::shm::ShmRing;

use super::Rng;
use super::ring_shm::ring;

const CAP: u64 = 4096;
const MAX: usize = 1024;

/// A plausible-or-not position: near the truth, aligned or not, or wild.
fn position(rng: &mut Rng, near: u64) -> u64 {
    match rng.below(4) {
        0 => near + rng.below(CAP + 64),
        1 => (near + rng.below(CAP)) & !7,
        2 => near.wrapping_sub(rng.below(64)),
        _ => rng.next(),
    }
}

/// A fresh ring again (positions and flags zero) without a new mapping.
fn reset(mem: &ShmRing) {
    let h = mem.header();
    h.raw_head().store(0, Ordering::Relaxed);
    h.raw_tail().store(0, Ordering::Relaxed);
    h.raw_reader_waiting().store(0, Ordering::Relaxed);
    h.raw_writer_waiting().store(0, Ordering::Relaxed);
}

fn scribble(rng: &mut Rng, mem: &ShmRing) {
    for _ in 0..rng.below(4) {
        let off = rng.below(CAP) as usize & !7;
        let mut h = [0u8; 8];
        let len = match rng.below(3) {
            0 => rng.below(MAX as u64 + 16) as u32,
            1 => rng.below(64) as u32,
            _ => rng.next() as u32,
        };
        let seq = if rng.below(4) == 0 {
            rng.next() as u32
        } else {
            rng.below(8) as u32
        };
        h[..4].copy_from_slice(&len.to_le_bytes());
        h[4..].copy_from_slice(&seq.to_le_bytes());
        mem.write(off, &h);
    }
}

#[test]
fn consumer_survives_a_hostile_producer() {
    let mut rng = Rng(0x5eed_0001);
    let mut out = Vec::new();
    let (mut ok, mut corrupt) = (0u32, 0u32);
    let (_p, c0): (Producer<ShmRing>, Consumer<ShmRing>) = ring(CAP as usize, MAX);
    let mem = c0.memory().clone();
    for _ in 0..50_000 {
        reset(&mem);
        let mut c = Consumer::new(mem.clone(), MAX);
        let mut seq = 0u32;
        // The consumer may take records up to any head published before (it reads the
        // head again only when those are taken).
        let mut highest = 0u64;
        for _ in 0..4 {
            let before = c.position();
            let head = if rng.below(2) == 0 {
                // An honest record (the consumer must accept it) ...
                let len = rng.below(MAX as u64 + 1) as usize;
                let mut h = [0u8; 8];
                h[..4].copy_from_slice(&(len as u32).to_le_bytes());
                h[4..].copy_from_slice(&seq.to_le_bytes());
                mem.write((before % CAP) as usize, &h);
                before + crate::record_len(len).unwrap() as u64
            } else {
                // ... or garbage.
                scribble(&mut rng, &mem);
                position(&mut rng, before)
            };
            mem.header().raw_head().store(head, Ordering::Release);
            highest = highest.max(head);
            match c.try_pop(&mut out) {
                Ok(Some(_)) => {
                    ok += 1;
                    seq += 1;
                    assert!(out.len() <= MAX);
                    assert!(c.position() <= highest && c.position() > before);
                }
                Ok(None) => assert_eq!(head, before),
                Err(_) => {
                    corrupt += 1;
                    assert_eq!(c.position(), before, "a failed pop consumes nothing");
                    break;
                }
            }
        }
    }
    assert!(
        ok > 10_000 && corrupt > 10_000,
        "both paths exercised: {ok} ok, {corrupt} corrupt"
    );
}

#[test]
fn producer_survives_a_hostile_consumer() {
    let mut rng = Rng(0x5eed_0002);
    let (mut ok, mut corrupt) = (0u32, 0u32);
    let (_p, c0): (Producer<ShmRing>, Consumer<ShmRing>) = ring(CAP as usize, MAX);
    let mem = c0.memory().clone();
    for _ in 0..50_000 {
        reset(&mem);
        let mut p = Producer::new(mem.clone(), MAX);
        let mut head = 0u64;
        let mut tail = 0u64;
        // Enough pushes that the room seen at start runs out and the tail is read.
        for _ in 0..16 {
            let t = if rng.below(3) != 0 {
                // An honest consumer: anywhere from the last tail up to head, aligned.
                (tail + rng.below(head - tail + 1)) & !7
            } else {
                position(&mut rng, tail)
            };
            mem.header().raw_tail().store(t, Ordering::Release);
            mem.header()
                .raw_writer_waiting()
                .store(rng.next() as u32, Ordering::Relaxed);
            let len = rng.below(MAX as u64 + 2) as usize;
            // The producer reads the tail only when the room it saw last is used up; an
            // honest consumer's next tail is never behind what it read.
            match p.try_push(&alloc::vec![0xa5; len]) {
                Ok(_) => {
                    ok += 1;
                    head += crate::record_len(len).unwrap() as u64;
                    let seen = p.tail_seen();
                    assert!(
                        seen <= head && head - seen <= CAP,
                        "never overwrites unconsumed bytes"
                    );
                    tail = tail.max(seen);
                }
                Err(PushError::Full) | Err(PushError::TooLarge) => {
                    tail = tail.max(p.tail_seen());
                }
                Err(PushError::Corrupt(RingError::TailOutOfRange { .. })) => {
                    corrupt += 1;
                    break;
                }
                Err(e) => panic!("unexpected {e:?}"),
            }
        }
    }
    assert!(
        ok > 10_000 && corrupt > 10_000,
        "both paths exercised: {ok} ok, {corrupt} corrupt"
    );
}
