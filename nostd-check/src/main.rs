//! nostd-check: proof, on the host, that the core crates are no_std and *run* without std
//! (STYLE "no_std: features, and how to prove it"; serde's `test_suite/no_std`).
//!
//! This binary is `#![no_std]` and `#![no_main]` and brings its own `#[panic_handler]`
//! (`rt.rs`). If any crate in its dependency graph links std, std's `panic_impl` lang item
//! collides with ours and rustc refuses to build it (error[E0152]), naming the crate that
//! pulled std in. `cargo xtask nostd` builds it debug and release, runs both and requires
//! exit status 0; `cargo xtask nostd --self-test` builds it with the `canary-std` feature
//! (`extern crate std;` below) and requires exactly that E0152 failure.
//!
//! The body runs [`SCENARIOS`], each a function exercising one core crate's real code and
//! returning `Err(what)` on the first mismatch; any failure makes the exit status 1, a
//! panic aborts (status 134). To cover a new core crate: add
//! it to `Cargo.toml` with `default-features = false`, write `fn ring_scenario()` below and
//! list it in [`SCENARIOS`].
#![no_std]
#![no_main]

extern crate alloc;
#[cfg(feature = "canary-std")]
extern crate std;

#[macro_use]
mod rt;
mod messages;
mod objdb;
mod ring;
mod services;

use alloc::format;
use alloc::vec::Vec;
use core::ffi::{c_char, c_int};

use totem_proto::time::{Duration, Instant};
use totem_proto::{Guarantee, MessageType, NodeId, RingId};
use totem_transport::fault::Faults;
use totem_transport::loopback::{LoopbackConfig, LoopbackHub};
use totem_transport::rng::PPM;
use totem_transport::{
    Dest, FaultConfig, FaultInjector, FaultStats, PeerAddr, Transport, TransportError,
};

/// A named check of one crate: `Err` says what did not match.
type Scenario = (&'static str, fn() -> Result<(), &'static str>);

/// Every scenario, in the order they run (bottom of the stack first).
const SCENARIOS: &[Scenario] = &[
    ("proto", proto_scenario),
    ("messages", messages::scenario),
    ("transport", transport_scenario),
    ("ring", ring::scenario),
    ("objdb", objdb::scenario),
    ("services", services::scenario),
];

/// Called by libc's start code (`crt1.o`), as C's `main` is.
#[unsafe(no_mangle)]
extern "C" fn main(_argc: c_int, _argv: *const *const c_char) -> c_int {
    outln!(
        "nostd-check: no_std, no_main, panic=abort; {} scenarios",
        SCENARIOS.len()
    );
    let mut failed = 0_usize;
    for (name, scenario) in SCENARIOS {
        match scenario() {
            Ok(()) => outln!("nostd-check: {name}: ok"),
            Err(what) => {
                outln!("nostd-check: {name}: FAILED: {what}");
                failed += 1;
            }
        }
    }
    outln!(
        "nostd-check: arena peak {} of {} bytes",
        rt::arena_peak(),
        rt::ARENA_SIZE
    );
    if failed == 0 {
        outln!("nostd-check: all scenarios ok");
        0
    } else {
        outln!("nostd-check: {failed} scenario(s) FAILED");
        1
    }
}

/// `Err(what)` unless `holds`.
pub(crate) fn ensure(holds: bool, what: &'static str) -> Result<(), &'static str> {
    if holds { Ok(()) } else { Err(what) }
}

/// totem-proto: time arithmetic, code points, ring id order, and `Display` through `alloc`
/// (which also exercises the allocator). The messages themselves: `messages.rs`.
fn proto_scenario() -> Result<(), &'static str> {
    // Time is a value; arithmetic saturates instead of wrapping or panicking.
    let start = Instant::from_millis(1_500);
    let later = start + Duration::from_millis(250);
    ensure(
        later == Instant::from_micros(1_750_000),
        "Instant + Duration",
    )?;
    ensure(
        later - start == Duration::from_micros(250_000),
        "Instant - Instant",
    )?;
    ensure(
        start - later == Duration::ZERO,
        "Instant - later Instant saturates at zero",
    )?;
    let end = Instant::from_micros(u64::MAX);
    ensure(
        end + Duration::from_secs(1) == end,
        "Instant + Duration saturates",
    )?;
    let mut t = Instant::ZERO;
    t += Duration::from_secs(2).saturating_mul(3);
    ensure(t.total_millis() == 6_000, "AddAssign and saturating_mul")?;
    ensure(
        Duration::from_secs(u64::MAX).total_micros() == u64::MAX,
        "Duration::from_secs saturates",
    )?;
    ensure(
        format!("{}", Instant::from_micros(1_500_000)) == "1.500000s",
        "Instant Display",
    )?;
    ensure(
        format!("{}", Duration::from_millis(650)) == "650ms",
        "Duration Display",
    )?;

    // Code points: every byte round-trips, the known ones decode to their variants.
    for v in 0..=u8::MAX {
        ensure(
            u8::from(MessageType::from(v)) == v,
            "MessageType round-trip",
        )?;
        ensure(u8::from(Guarantee::from(v)) == v, "Guarantee round-trip")?;
    }
    let known = [
        (0, MessageType::OrfToken),
        (1, MessageType::Mcast),
        (2, MessageType::MergeDetect),
        (3, MessageType::MembJoin),
        (4, MessageType::MembCommitToken),
        (5, MessageType::TokenHoldCancel),
        (6, MessageType::Unknown(6)),
        (255, MessageType::Unknown(255)),
    ];
    for (code, ty) in known {
        ensure(MessageType::from(code) == ty, "MessageType code points")?;
    }
    ensure(
        Guarantee::from(0) == Guarantee::Agreed && Guarantee::from(1) == Guarantee::Safe,
        "Guarantee code points",
    )?;

    // Ring ids: newer seq first, then the representative breaks ties.
    let mut rings = [
        RingId::new(NodeId(2), 8),
        RingId::new(NodeId(5), 7),
        RingId::new(NodeId(1), 8),
    ];
    rings.sort_unstable();
    ensure(
        rings
            == [
                RingId::new(NodeId(5), 7),
                RingId::new(NodeId(1), 8),
                RingId::new(NodeId(2), 8),
            ],
        "RingId order (seq, then rep)",
    )?;
    ensure(
        format!("{}", RingId::new(NodeId(1), 0x1f)) == "1.1f",
        "RingId Display",
    )?;
    ensure(
        !NodeId(0).is_valid() && NodeId(7).is_valid(),
        "NodeId 0 is reserved",
    )?;
    Ok(())
}

/// totem-transport: frames through the in-memory loopback network, then through a seeded
/// `FaultInjector` on the receive side.
fn transport_scenario() -> Result<(), &'static str> {
    loopback_delivery()?;
    // Same seed, same faults: the whole run reproduces from its seed (STYLE point 9).
    let (got, stats) = faulty_run(0x5eed)?;
    let (again, stats_again) = faulty_run(0x5eed)?;
    ensure(
        got == again && stats == stats_again,
        "FaultInjector same seed, same run",
    )?;
    ensure(
        stats.recv.dropped > 0 && stats.recv.duplicated > 0 && stats.recv.delayed > 0,
        "FaultInjector injected drops, duplicates and delays",
    )?;
    // Integrity: with corruption off, everything that arrives was sent (at most twice),
    // and what is missing is exactly what was dropped.
    let mut seen = [0_u8; FAULTY_FRAMES as usize];
    for frame in &got {
        let index = frame_index(frame).ok_or("FaultInjector delivered a frame never sent")?;
        let count = seen
            .get_mut(index as usize)
            .ok_or("FaultInjector delivered a frame never sent")?;
        *count += 1;
        ensure(*count <= 2, "FaultInjector delivered a frame three times")?;
    }
    ensure(
        u64::try_from(got.len()).ok()
            == Some(u64::from(FAULTY_FRAMES) - stats.recv.dropped + stats.recv.duplicated),
        "FaultInjector: received = sent - dropped + duplicated",
    )?;
    outln!(
        "nostd-check: transport: faulty link: {FAULTY_FRAMES} sent, {} dropped, {} duplicated, \
         {} delayed, {} received",
        stats.recv.dropped,
        stats.recv.duplicated,
        stats.recv.delayed,
        got.len()
    );
    Ok(())
}

/// Loopback delivery rules: multicast reaches every other attached node in order, unicast
/// only its target, partitions cut links, bad sends are refused with precise errors.
fn loopback_delivery() -> Result<(), &'static str> {
    const A: NodeId = NodeId(1);
    const B: NodeId = NodeId(2);
    const C: NodeId = NodeId(3);
    let hub = LoopbackHub::new(LoopbackConfig::default());
    let attach = |node| hub.attach(node).map_err(|_| "LoopbackHub::attach");
    let (mut a, mut b, mut c) = (attach(A)?, attach(B)?, attach(C)?);
    ensure(
        hub.attach(B).is_err(),
        "LoopbackHub refuses a second endpoint",
    )?;

    for i in 0..10 {
        a.send(Dest::Multicast, &frame(i))
            .map_err(|_| "loopback multicast send")?;
    }
    a.send(Dest::Node(C), &frame(10))
        .map_err(|_| "loopback unicast send")?;
    let mut expect_b = [[0_u8; 8]; 10];
    for (i, f) in (0..).zip(expect_b.iter_mut()) {
        *f = frame(i);
    }
    ensure(
        drain(&mut b, A)? == expect_b.map(|f| f.to_vec()).as_slice(),
        "loopback multicast: all frames, in order, from the sender",
    )?;
    let got_c = drain(&mut c, A)?;
    ensure(
        got_c.len() == 11 && got_c.last().map(Vec::as_slice) == Some(&frame(10)[..]),
        "loopback: C gets the multicasts and its unicast",
    )?;
    ensure(
        drain(&mut a, A)?.is_empty(),
        "loopback: no multicast to oneself",
    )?;

    hub.partition(&[&[A], &[B, C]]);
    a.send(Dest::Multicast, &frame(11))
        .map_err(|_| "loopback send while partitioned")?;
    ensure(
        hub.pending(B) == 0 && hub.pending(C) == 0,
        "loopback partition cuts links",
    )?;
    hub.heal();
    a.send(Dest::Multicast, &frame(12))
        .map_err(|_| "loopback send after heal")?;
    ensure(
        hub.pending(B) == 1 && hub.pending(C) == 1,
        "loopback heal restores links",
    )?;

    ensure(
        a.send(Dest::Node(NodeId(9)), b"x") == Err(TransportError::UnknownNode(NodeId(9))),
        "loopback: unicast to an unknown node is refused",
    )?;
    let too_big = alloc::vec![0_u8; a.max_datagram() + 1];
    ensure(
        matches!(
            a.send(Dest::Multicast, &too_big),
            Err(TransportError::TooLarge { .. })
        ),
        "loopback: a frame above max_datagram is refused",
    )?;
    Ok(())
}

/// Frames node 1 sends through the faulty link.
const FAULTY_FRAMES: u32 = 300;

/// Sends [`FAULTY_FRAMES`] from node 1 to node 2, whose receive side drops, duplicates,
/// delays and reorders (no corruption, so integrity can be checked), and returns what node 2
/// received, in order, with the injector's counters.
fn faulty_run(seed: u64) -> Result<(Vec<Vec<u8>>, FaultStats), &'static str> {
    let hub = LoopbackHub::new(LoopbackConfig::default());
    let mut a = hub.attach(NodeId(1)).map_err(|_| "LoopbackHub::attach")?;
    let b = hub.attach(NodeId(2)).map_err(|_| "LoopbackHub::attach")?;
    let recv = Faults {
        drop_ppm: PPM / 5,
        duplicate_ppm: PPM / 10,
        reorder_ppm: PPM / 20,
        jitter: Duration::from_micros(500),
        reorder_hold: Duration::from_millis(2),
        ..Faults::default()
    };
    let config = FaultConfig {
        recv,
        ..FaultConfig::default()
    };
    let mut b = FaultInjector::new(b, config, seed);

    let mut got = Vec::new();
    let mut now = Instant::ZERO;
    let mut buf = [0_u8; 64];
    for i in 0..FAULTY_FRAMES {
        a.send(Dest::Node(NodeId(2)), &frame(i))
            .map_err(|_| "faulty run: send")?;
        // A datagram every 100 µs, read as it comes; held ones come out once due.
        now += Duration::from_micros(100);
        b.set_now(now);
        while let Some(meta) = b.recv(&mut buf).map_err(|_| "faulty run: recv")? {
            got.push(buf.get(..meta.len).ok_or("faulty run: length")?.to_vec());
        }
    }
    // Drain what is still held, in bounded steps.
    for _ in 0..FAULTY_FRAMES {
        let Some(due) = b.poll_at() else { break };
        now = now.max(due);
        b.set_now(now);
        while let Some(meta) = b.recv(&mut buf).map_err(|_| "faulty run: recv")? {
            got.push(buf.get(..meta.len).ok_or("faulty run: length")?.to_vec());
        }
    }
    ensure(
        b.held() == (0, 0),
        "faulty run: everything held was released",
    )?;
    Ok((got, b.stats()))
}

/// Frame `i`: its index and the index's complement, big-endian, so a frame that was not
/// sent (or was damaged) is recognised.
fn frame(i: u32) -> [u8; 8] {
    let mut f = [0_u8; 8];
    let (index, check) = f.split_at_mut(4);
    index.copy_from_slice(&i.to_be_bytes());
    check.copy_from_slice(&(!i).to_be_bytes());
    f
}

/// The index of a well-formed [`frame`] below [`FAULTY_FRAMES`].
fn frame_index(f: &[u8]) -> Option<u32> {
    let f: [u8; 8] = f.try_into().ok()?;
    let i = u32::from_be_bytes([f[0], f[1], f[2], f[3]]);
    (f == frame(i) && i < FAULTY_FRAMES).then_some(i)
}

/// Everything waiting for `t`, checking each came from `from`.
fn drain(t: &mut impl Transport, from: NodeId) -> Result<Vec<Vec<u8>>, &'static str> {
    let mut out = Vec::new();
    let mut buf = [0_u8; 64];
    while let Some(meta) = t.recv(&mut buf).map_err(|_| "loopback recv")? {
        ensure(
            meta.from == PeerAddr::Node(from),
            "loopback reports the sender",
        )?;
        ensure(!meta.truncated, "loopback: not truncated")?;
        out.push(buf.get(..meta.len).ok_or("loopback length")?.to_vec());
    }
    Ok(out)
}
