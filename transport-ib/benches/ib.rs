//! Throughput of the transport logic over the fake provider: one core, three nodes, node 1
//! multicasting frames that nodes 2 and 3 read back. Reports frames per second per core
//! (each frame is sent once and received twice), for a small frame (one datagram each way)
//! and a 16 KiB frame (5 datagrams of a 4096-byte MTU per peer).
//!
//! `cargo bench -p transport-ib` (a plain timed loop, no criterion). The fake's own cost
//! (a `Vec` per datagram, a `BTreeMap` wire) is included, so real hardware's figure for the
//! logic alone is higher.

use std::time::Instant;

use totem_proto::NodeId;
use totem_transport::{Dest, Transport, TransportError};
use transport_ib::fake::{FakeFabric, FakeVerbs};
use transport_ib::{IbConfig, IbTransport};

fn nodes(fabric: &FakeFabric) -> Vec<IbTransport<FakeVerbs>> {
    let mut ts: Vec<_> = (1..=3u32)
        .map(|id| {
            let v = fabric.create_qp(id as u16, 4096, 128, 256);
            IbTransport::new(v, NodeId(id), IbConfig::default()).expect("fake never fails")
        })
        .collect();
    let addrs: Vec<_> = ts.iter().map(IbTransport::local_addr).collect();
    for t in &mut ts {
        for (i, a) in addrs.iter().enumerate() {
            t.add_peer(NodeId(i as u32 + 1), *a)
                .expect("fake never fails");
        }
    }
    ts
}

fn run(len: usize, frames: u64) -> f64 {
    let fabric = FakeFabric::new(7);
    let mut ts = nodes(&fabric);
    let frame = vec![0x5au8; len];
    let mut buf = vec![0u8; 65_536];
    let (mut sent, mut got) = (0u64, 0u64);
    let start = Instant::now();
    while got < 2 * frames {
        if sent < frames {
            match ts[0].send(Dest::Multicast, &frame) {
                Ok(()) => sent += 1,
                Err(TransportError::WouldBlock) => {}
                Err(e) => panic!("{e}"),
            }
        }
        fabric.advance_to(fabric.now() + 1);
        for t in &mut ts[1..] {
            while let Some(m) = t.recv(&mut buf).expect("fake never fails") {
                assert_eq!(m.len, len);
                got += 1;
            }
        }
        ts[0].progress().expect("fake never fails");
    }
    frames as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    for (len, n) in [(100, 200_000), (16_384, 20_000)] {
        let rate = run(len, n);
        println!("ib over fake: {len:>6}-byte multicast to 2 peers: {rate:>10.0} frames/s/core");
    }
}
