//! Fuzz-lite (STYLE point 16, ring ii): on the stable toolchain, a seeded SplitMix64 mutates
//! the golden frames and packs (bit flips, byte sets, truncation, extension, splices between
//! vectors, edits aimed at length and count fields) and generates random buffers, and holds
//! every input to the property the cargo-fuzz targets check (`src/fuzzing.rs`, the same
//! file): decoders never panic, and whatever parses round-trips byte for byte.
//!
//! Deterministic: a failure reproduces with the same seed; the panic message names the
//! iteration and the input. For a longer local run, `FUZZ_LITE_SEED=<u64>` picks another
//! seed and `FUZZ_LITE_SCALE=<n>` multiplies the iteration counts.

mod common;

use core::panic::AssertUnwindSafe;
use std::panic::catch_unwind;

use common::fuzzing::{check_frame, check_pack, fuzz_frame, fuzz_pack};
use common::{SplitMix64, all_frames, all_packs};
use totem_proto::HEADER_LEN;

const DEFAULT_SEED: u64 = 0x746f_7465_6d5f_6675;
const FRAME_ITERATIONS: usize = 150_000;
const PACK_ITERATIONS: usize = 60_000;
const RANDOM_ITERATIONS: usize = 40_000;

/// A property: `check_frame` or `check_pack`, returning whether the input was accepted.
type Check = fn(&[u8]) -> bool;

/// A length, count or code field of a vector: offset and width in bytes.
type FieldAt = (usize, usize);

/// The fields of a frame worth aiming at: version, type, flags, and the body's counts.
fn frame_fields(frame: &[u8]) -> Vec<FieldAt> {
    let b = HEADER_LEN;
    let mut f = vec![(2, 1), (3, 1), (8, 4), (12, 2)];
    let body: Vec<FieldAt> = match frame[3] {
        0 => vec![(b + 48, 1), (b + 49, 1)],
        1 => vec![(b + 24, 4), (b + 28, 1)],
        3 => vec![(b + 8, 1), (b + 9, 1), (b + 10, 2), (b + 12, 2)],
        4 => vec![(b + 20, 1), (b + 21, 2), (b + 23, 2)],
        _ => vec![(b, 4)],
    };
    f.extend(body);
    f
}

/// The fields of a pack: its count and each record's kind, len and (First) total.
fn pack_fields(pack: &[u8]) -> Vec<FieldAt> {
    let mut f = vec![(0, 2)];
    let mut at = 2;
    while at + 5 <= pack.len() {
        f.extend_from_slice(&[(at + 2, 1), (at + 3, 2)]);
        let len = usize::from(u16::from_be_bytes([pack[at + 3], pack[at + 4]]));
        let header = if pack[at + 2] == 1 {
            f.push((at + 5, 4));
            9
        } else {
            5
        };
        at += header + len;
    }
    f
}

/// A value for a field of `width` bytes: boundaries, off-by-ones and random.
fn interesting(rng: &mut SplitMix64, width: usize, current: u64) -> u64 {
    let max = if width >= 8 {
        u64::MAX
    } else {
        (1u64 << (8 * width)) - 1
    };
    let v = match rng.below(12) {
        0 => 0,
        1 => 1,
        2 => 2,
        3 => current.wrapping_add(1),
        4 => current.wrapping_sub(1),
        5 => max,
        6 => max >> 1,
        7 => [30, 31, 383, 384, 385][rng.below(5)],
        8 => current.wrapping_add(rng.below(8) as u64),
        9 => current.wrapping_sub(rng.below(8) as u64),
        10 => 7,
        _ => rng.next_u64(),
    };
    v & max
}

fn read_be(b: &[u8]) -> u64 {
    b.iter().fold(0, |acc, &x| (acc << 8) | u64::from(x))
}

fn write_be(b: &mut [u8], v: u64) {
    let n = b.len();
    for (i, x) in b.iter_mut().enumerate() {
        *x = (v >> (8 * (n - 1 - i))) as u8;
    }
}

/// One to four mutations of `base` (one half of the time, so many inputs stay close enough
/// to valid to reach the deep checks), drawing splices from `corpus`.
fn mutate(rng: &mut SplitMix64, base: &[u8], fields: &[FieldAt], corpus: &[Vec<u8>]) -> Vec<u8> {
    let mut b = base.to_vec();
    let rounds = if rng.one_in(2) { 1 } else { 2 + rng.below(3) };
    for _ in 0..rounds {
        match rng.below(10) {
            // Bit flip.
            0 | 1 if !b.is_empty() => {
                let i = rng.below(b.len());
                b[i] ^= 1 << rng.below(8);
            }
            // Byte set.
            2 if !b.is_empty() => {
                let i = rng.below(b.len());
                b[i] = [0, 1, 2, 0x7f, 0x80, 0xff, rng.byte()][rng.below(7)];
            }
            // Truncation.
            3 => {
                let len = rng.below(b.len() + 1);
                b.truncate(len);
            }
            // Extension, with zeros or noise.
            4 => {
                let n = 1 + rng.below(40);
                let zeros = rng.one_in(2);
                for _ in 0..n {
                    b.push(if zeros { 0 } else { rng.byte() });
                }
            }
            // Splice: our head, another vector's tail.
            5 => {
                let other = &corpus[rng.below(corpus.len())];
                let cut = rng.below(b.len() + 1);
                let from = rng.below(other.len() + 1);
                b.truncate(cut);
                b.extend_from_slice(&other[from..]);
            }
            // Another vector's header (or head) over our body.
            6 => {
                let other = &corpus[rng.below(corpus.len())];
                let n = HEADER_LEN.min(other.len()).min(b.len());
                b[..n].copy_from_slice(&other[..n]);
            }
            // Delete or duplicate a range.
            7 if b.len() > 2 => {
                let start = rng.below(b.len());
                let end = (start + 1 + rng.below(16)).min(b.len());
                if rng.one_in(2) {
                    b.drain(start..end);
                } else {
                    let dup = b[start..end].to_vec();
                    b.splice(start..start, dup);
                }
            }
            // A length, count or code field.
            _ => {
                let (at, width) = fields[rng.below(fields.len())];
                if at + width <= b.len() {
                    let cur = read_be(&b[at..at + width]);
                    write_be(&mut b[at..at + width], interesting(rng, width, cur));
                }
            }
        }
    }
    b
}

/// A random buffer: pure noise, or noise behind a valid header so the body decoders see it.
fn random_frame(rng: &mut SplitMix64) -> Vec<u8> {
    let len = rng.below(96);
    let mut b = vec![0; len];
    rng.fill(&mut b);
    if len >= HEADER_LEN && !rng.one_in(4) {
        b[..4].copy_from_slice(&[0x54, 0x4d, 1, rng.below(6) as u8]);
        b[12] = 0;
        b[13] = [0, 1, 2][rng.below(3)];
        if b[8..12] == [0; 4] {
            b[11] = 1;
        }
    }
    b
}

/// A random pack: a small count and records of plausible kinds and lengths.
fn random_pack(rng: &mut SplitMix64) -> Vec<u8> {
    let count = rng.below(5);
    let mut b = (count as u16).to_be_bytes().to_vec();
    for _ in 0..count {
        let kind = [0u8, 0, 1, 2, 3, rng.byte()][rng.below(6)];
        let len = rng.below(24);
        b.extend_from_slice(&(rng.below(3) as u16).to_be_bytes());
        b.push(kind);
        b.extend_from_slice(&(len as u16).to_be_bytes());
        if kind == 1 {
            b.extend_from_slice(&((len + rng.below(16)) as u32).to_be_bytes());
        }
        for _ in 0..len {
            b.push(rng.byte());
        }
    }
    if rng.one_in(8) {
        b.truncate(rng.below(b.len() + 1));
    }
    b
}

/// Wraps `payload` into the `mcast_agreed` frame, so packs also go through `check_frame`.
fn in_mcast(template: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut f = template[..HEADER_LEN + 29].to_vec();
    f[HEADER_LEN + 24..HEADER_LEN + 28].copy_from_slice(&(payload.len() as u32).to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// Runs `check` on `input`; a panic is re-raised naming the iteration and the input.
fn run(what: &str, seed: u64, i: usize, input: &[u8], check: Check) -> bool {
    match catch_unwind(AssertUnwindSafe(|| check(input))) {
        Ok(accepted) => accepted,
        Err(e) => {
            let msg = e
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| e.downcast_ref::<&str>().copied())
                .unwrap_or("?");
            panic!(
                "{what} iteration {i} (FUZZ_LITE_SEED={seed}): {msg}\ninput ({} bytes): {input:02x?}",
                input.len()
            );
        }
    }
}

#[test]
fn mutated_golden_frames_and_packs_never_panic_and_round_trip() {
    let env = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    let seed = env("FUZZ_LITE_SEED").unwrap_or(DEFAULT_SEED);
    let scale = env("FUZZ_LITE_SCALE").unwrap_or(1).max(1) as usize;
    let (frame_iterations, pack_iterations, random_iterations) = (
        FRAME_ITERATIONS * scale,
        PACK_ITERATIONS * scale,
        RANDOM_ITERATIONS * scale,
    );
    let mut rng = SplitMix64(seed);
    let frames: Vec<Vec<u8>> = all_frames().into_iter().map(|(_, f)| f).collect();
    let packs: Vec<Vec<u8>> = all_packs().into_iter().map(|(_, p)| p).collect();
    let corpus: Vec<Vec<u8>> = frames.iter().chain(&packs).cloned().collect();
    let frame_fields: Vec<Vec<FieldAt>> = frames.iter().map(|f| frame_fields(f)).collect();
    let pack_fields: Vec<Vec<FieldAt>> = packs.iter().map(|p| pack_fields(p)).collect();
    let mcast = common::vector("mcast_agreed");

    // The unmutated vectors satisfy the property, and the entry points do not panic.
    for f in &frames {
        assert!(check_frame(f));
        fuzz_frame(f);
    }
    for p in &packs {
        assert!(check_pack(p));
        fuzz_pack(p);
    }

    let (mut frame_ok, mut pack_ok, mut random_ok) = (0usize, 0usize, 0usize);
    for i in 0..frame_iterations {
        let k = rng.below(frames.len());
        let input = mutate(&mut rng, &frames[k], &frame_fields[k], &corpus);
        frame_ok += usize::from(run("frame", seed, i, &input, check_frame));
    }
    for i in 0..pack_iterations {
        let k = rng.below(packs.len());
        let input = mutate(&mut rng, &packs[k], &pack_fields[k], &corpus);
        let accepted = run("pack", seed, i, &input, check_pack);
        pack_ok += usize::from(accepted);
        if i % 4 == 0 {
            // Same bytes as an MCAST payload: the frame accepts it, and checks it as a pack.
            assert!(run(
                "pack in mcast",
                seed,
                i,
                &in_mcast(&mcast, &input),
                check_frame
            ));
        }
    }
    for i in 0..random_iterations {
        let (input, check): (Vec<u8>, Check) = if i % 2 == 0 {
            (random_frame(&mut rng), check_frame)
        } else {
            (random_pack(&mut rng), check_pack)
        };
        random_ok += usize::from(run("random", seed, i, &input, check));
    }

    let total = frame_iterations + pack_iterations + random_iterations;
    println!(
        "fuzz-lite: {total} iterations (FUZZ_LITE_SEED={seed}); accepted: \
         {frame_ok}/{frame_iterations} mutated frames, {pack_ok}/{pack_iterations} mutated packs, \
         {random_ok}/{random_iterations} random buffers"
    );
    assert!(total >= 100_000);
    // Mutations that never get past the decoders would test nothing beyond the first check.
    assert!(
        frame_ok > frame_iterations / 10,
        "only {frame_ok} mutated frames accepted"
    );
    assert!(
        pack_ok > pack_iterations / 10,
        "only {pack_ok} mutated packs accepted"
    );
    assert!(random_ok > 0, "no random buffer accepted");
}

#[test]
fn the_pack_property_covers_a_4gib_total_without_allocating_it() {
    // A First record of 8 bytes announcing a u32::MAX-byte message.
    let mut p = vec![0, 1, 0, 3, 1, 0, 8];
    p.extend_from_slice(&u32::MAX.to_be_bytes());
    p.extend_from_slice(b"abcdefgh");
    assert!(check_pack(&p));
}

#[test]
fn a_tiny_middle_only_frame_is_the_one_pack_no_writer_makes() {
    use common::fuzzing::repack;
    use totem_proto::{Pack, Record};
    // One Middle record of one byte: 8 bytes, below PackWriter's 12-byte minimum buffer.
    let p = [0, 1, 0, 3, 2, 0, 1, 0xaa];
    let records: Vec<Record<'_>> = Pack::new_checked(&p).unwrap().records().collect();
    assert_eq!(repack(&records, p.len()), None);
    assert!(
        check_pack(&p),
        "valid, checked for everything but the re-pack"
    );
}

#[test]
fn empty_and_tiny_inputs_are_rejected_without_panicking() {
    for len in 0..=HEADER_LEN + 2 {
        for fill in [0u8, 0xff] {
            let b = vec![fill; len];
            assert!(!check_frame(&b));
            let _ = check_pack(&b);
        }
    }
}
