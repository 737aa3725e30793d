//! `cargo xtask bench proto`: ns per parse and per emit of the hot frames, as a plain timed
//! loop. Each case runs for about 300 ms after a warm-up and prints one line; compare the
//! figures as ratios within one run (the machines are shared and noisy).
//!
//! Cases: an ORF token with a full 30-entry rtr list (the largest token), and packed MCAST
//! frames full of 64 B and 1 KiB application messages at MTU 1500 and 9000 (frame = MTU −
//! 28 bytes of IPv4 and UDP headers).

use core::hint::black_box;
use core::time::Duration;
use std::time::Instant;

use totem_proto::orf_token::RtrEntry;
use totem_proto::{
    Body, Flags, Frame, FrameHead, Guarantee, McastRepr, NodeId, OrfTokenRepr, Pack, PackWriter,
    RingId, ServiceId, emit_frame, pack_capacity,
};

/// Runs `f` repeatedly for about `budget` and returns ns per call.
fn time_ns(budget: Duration, mut f: impl FnMut()) -> f64 {
    for _ in 0..1000 {
        f();
    }
    let mut iters = 0u64;
    let start = Instant::now();
    let mut batch = 1000u64;
    while start.elapsed() < budget {
        for _ in 0..batch {
            f();
        }
        iters += batch;
        batch = batch.saturating_mul(2).min(1 << 20);
    }
    start.elapsed().as_nanos() as f64 / iters as f64
}

fn head() -> FrameHead {
    FrameHead {
        version: 1,
        cluster_id: 0x7465_6d31,
        sender: NodeId(3),
        flags: Flags::NONE,
    }
}

fn token_case(budget: Duration) {
    let ring = RingId::new(NodeId(1), 42);
    let mut repr = OrfTokenRepr {
        ring_id: ring,
        token_seq: 1_000_000,
        seq: 5_000_000,
        aru: 4_999_000,
        aru_id: Some(NodeId(2)),
        backlog: 120,
        fcc: 50,
        retrans_flg: false,
        rtr: heapless::Vec::new(),
    };
    for i in 0..30 {
        // The capacity is RTR_MAX = 30.
        repr.rtr
            .push(RtrEntry {
                ring_id: ring,
                seq: 4_999_001 + i,
            })
            .ok();
    }
    let mut buf = [0u8; 1024];
    let emit = time_ns(budget, || {
        black_box(emit_frame(black_box(&head()), black_box(&repr), &mut buf).ok());
    });
    let len = emit_frame(&head(), &repr, &mut buf).unwrap_or(0);
    let frame = &buf[..len];
    let parse = time_ns(budget, || {
        if let Ok(Frame {
            body: Body::OrfToken(v),
            ..
        }) = Frame::parse(black_box(frame))
        {
            black_box(OrfTokenRepr::parse(&v).ok());
        }
    });
    println!("proto token rtr=30 bytes={len} emit_ns={emit:.0} parse_ns={parse:.0}");
}

fn mcast(payload: &[u8]) -> McastRepr<'_> {
    McastRepr {
        ring_id: RingId::new(NodeId(1), 42),
        seq: 7,
        originator: NodeId(3),
        guarantee: Guarantee::Agreed,
        payload,
    }
}

/// Packs copies of `msg` into `pack` until it is full; returns (bytes, messages).
fn fill(pack: &mut [u8], msg: &[u8]) -> (usize, usize) {
    let Ok(mut w) = PackWriter::new(pack) else {
        return (0, 0);
    };
    while w.push(ServiceId(1), black_box(msg)) {}
    let count = w.count();
    (w.finish(), count)
}

fn pack_case(budget: Duration, msg_len: usize, mtu: usize) {
    let frame_len = mtu - 28;
    let cap = pack_capacity(frame_len).unwrap_or(0);
    let msg = vec![0xA5u8; msg_len];
    let mut pack = vec![0u8; cap];
    let mut frame = vec![0u8; frame_len];
    // Emit: pack messages until the frame is full, then wrap the pack in an MCAST frame.
    let emit = time_ns(budget, || {
        let (n, _) = fill(&mut pack, &msg);
        black_box(emit_frame(&head(), &mcast(&pack[..n]), &mut frame).ok());
    });
    let (n, per_frame) = fill(&mut pack, &msg);
    let Ok(used) = emit_frame(&head(), &mcast(&pack[..n]), &mut frame) else {
        println!("proto pack msg={msg_len} mtu={mtu} FAILED to emit");
        return;
    };
    let wire = &frame[..used];
    // Parse: validate the frame and the pack, then walk every record.
    let parse = time_ns(budget, || {
        if let Ok(Frame {
            body: Body::Mcast(v),
            ..
        }) = Frame::parse(black_box(wire))
            && let Ok(p) = Pack::new_checked(v.payload())
        {
            for r in p.records() {
                black_box(r.data);
            }
        }
    });
    let n = per_frame.max(1) as f64;
    println!(
        "proto pack msg={msg_len} mtu={mtu} msgs_per_frame={per_frame} frame_bytes={used} \
         emit_ns_per_frame={emit:.0} parse_ns_per_frame={parse:.0} \
         emit_ns_per_msg={:.1} parse_ns_per_msg={:.1}",
        emit / n,
        parse / n
    );
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is accepted.
    let budget = Duration::from_millis(300);
    println!(
        "# totem-proto bench: release build, one thread, {} ms per case",
        budget.as_millis()
    );
    token_case(budget);
    for mtu in [1500, 9000] {
        for msg in [64, 1024] {
            pack_case(budget, msg, mtu);
        }
    }
}
