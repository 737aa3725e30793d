//! [`IbTransport`] against the fake provider, without a ring: fan-out, unicast, send-queue
//! back-pressure, receive exhaustion, queue-full answers, peer learning, and the fuzz-lite
//! test of garbage completions and datagrams.

extern crate alloc;

use alloc::collections::BTreeSet;

use totem_proto::NodeId;
use totem_transport::rng::SplitMix64;
use totem_transport::{Dest, PeerAddr, Transport, TransportError};
use transport_ib::fake::{FakeFabric, FakeFaults, FakeVerbs};
use transport_ib::frag::{FRAG_HEADER_LEN, FragHeader};
use transport_ib::{Completion, IbAddr, IbConfig, IbTransport, MAX_FRAME, Opcode, WcStatus};

fn pair(
    fabric: &FakeFabric,
    n: u32,
    mtu: usize,
    sends: usize,
    recvs: usize,
    cfg: IbConfig,
) -> Vec<IbTransport<FakeVerbs>> {
    let mut ts: Vec<_> = (1..=n)
        .map(|id| {
            let v = fabric.create_qp(id as u16, mtu, sends, recvs);
            IbTransport::new(v, NodeId(id), cfg).unwrap()
        })
        .collect();
    let addrs: Vec<_> = ts.iter().map(IbTransport::local_addr).collect();
    for t in &mut ts {
        for (i, a) in addrs.iter().enumerate() {
            t.add_peer(NodeId(i as u32 + 1), *a).unwrap();
        }
    }
    ts
}

/// Advances the fabric one µs at a time, making every transport progress, `rounds` times.
fn spin(fabric: &FakeFabric, ts: &mut [IbTransport<FakeVerbs>], rounds: u32) {
    for _ in 0..rounds {
        fabric.advance_to(fabric.now() + 1);
        for t in ts.iter_mut() {
            t.progress().unwrap();
        }
    }
}

fn drain(t: &mut IbTransport<FakeVerbs>) -> Vec<(Vec<u8>, PeerAddr)> {
    let mut buf = vec![0u8; MAX_FRAME];
    let mut out = Vec::new();
    while let Some(m) = t.recv(&mut buf).unwrap() {
        out.push((buf[..m.len].to_vec(), m.from));
    }
    out
}

#[test]
fn multicast_fans_out_and_unicast_reaches_one_with_64k_frames() {
    let fabric = FakeFabric::new(1);
    let mut ts = pair(&fabric, 3, 4096, 64, 64, IbConfig::default());
    let big: Vec<u8> = (0..MAX_FRAME).map(|i| (i % 253) as u8).collect();
    let mut sent = 0;
    while sent < 1 {
        match ts[0].send(Dest::Multicast, &big) {
            Ok(()) => sent += 1,
            Err(TransportError::WouldBlock) => spin(&fabric, &mut ts, 1),
            Err(e) => panic!("{e}"),
        }
    }
    loop {
        match ts[0].send(Dest::Node(NodeId(3)), b"token") {
            Ok(()) => break,
            Err(TransportError::WouldBlock) => spin(&fabric, &mut ts, 1),
            Err(e) => panic!("{e}"),
        }
    }
    spin(&fabric, &mut ts, 50);
    assert_eq!(
        drain(&mut ts[0]),
        vec![],
        "the sender got its own multicast"
    );
    assert_eq!(
        drain(&mut ts[1]),
        vec![(big.clone(), PeerAddr::Node(NodeId(1)))]
    );
    assert_eq!(
        drain(&mut ts[2]),
        vec![
            (big, PeerAddr::Node(NodeId(1))),
            (b"token".to_vec(), PeerAddr::Node(NodeId(1)))
        ]
    );
    assert_eq!(
        ts[0].send(Dest::Multicast, &vec![0; MAX_FRAME + 1]),
        Err(TransportError::TooLarge {
            len: MAX_FRAME + 1,
            max: MAX_FRAME
        })
    );
    assert_eq!(
        ts[0].send(Dest::Node(NodeId(9)), b"x"),
        Err(TransportError::UnknownNode(NodeId(9)))
    );
}

#[test]
fn a_full_send_queue_is_would_block_and_nothing_is_lost() {
    let fabric = FakeFabric::new(2);
    // 2 send slots, 236-byte chunks: a 1000-byte frame is 5 datagrams.
    let mut ts = pair(&fabric, 2, 256, 2, 8, IbConfig::default());
    let mut accepted = Vec::new();
    let mut blocked = 0;
    let mut i = 0u8;
    while accepted.len() < 20 {
        let frame = vec![i; 1000];
        match ts[0].send(Dest::Multicast, &frame) {
            Ok(()) => {
                accepted.push(frame);
                i += 1;
            }
            Err(TransportError::WouldBlock) => {
                blocked += 1;
                spin(&fabric, &mut ts[..1], 1);
                fabric.advance_to(fabric.now() + 1);
                let got = drain(&mut ts[1]);
                for (f, _) in got {
                    assert_eq!(Some(&f), accepted.get(f[0] as usize));
                }
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(blocked > 0);
    assert!(ts[0].stats().would_block > 0);
    assert_eq!(fabric.stats().dropped + fabric.stats().lost, 0);
}

#[test]
fn an_unread_receiver_backs_up_the_fabric_instead_of_dropping() {
    let fabric = FakeFabric::new(3);
    let cfg = IbConfig {
        ready_limit: 2,
        ..IbConfig::default()
    };
    let mut ts = pair(&fabric, 2, 256, 64, 4, cfg);
    for i in 0..10u8 {
        ts[0].send(Dest::Node(NodeId(2)), &[i; 10]).unwrap();
        spin(&fabric, &mut ts, 2);
    }
    // Node 2 never read: 2 frames ready, 4 buffers held, the rest wait on the wire.
    assert_eq!(ts[1].ready(), 2);
    assert!(fabric.in_flight() > 0);
    assert!(fabric.stats().rnr_waits > 0);
    let mut got = Vec::new();
    for _ in 0..20 {
        got.extend(drain(&mut ts[1]).into_iter().map(|(f, _)| f[0]));
        spin(&fabric, &mut ts, 2);
    }
    assert_eq!(got, (0..10).collect::<Vec<u8>>());
    assert_eq!(fabric.stats().dropped, 0);
}

#[test]
fn queue_full_from_the_provider_is_retried() {
    let fabric = FakeFabric::new(4);
    let mut ts = pair(&fabric, 2, 256, 16, 16, IbConfig::default());
    fabric.inject_queue_full(ts[0].local_addr().qpn, 3);
    ts[0].send(Dest::Node(NodeId(2)), &[7; 600]).unwrap();
    assert_eq!(
        ts[0].send(Dest::Node(NodeId(2)), b"x"),
        Err(TransportError::WouldBlock)
    );
    spin(&fabric, &mut ts, 10);
    assert_eq!(
        drain(&mut ts[1]),
        vec![(vec![7; 600], PeerAddr::Node(NodeId(1)))]
    );
    assert_eq!(fabric.stats().queue_full, 3);
}

#[test]
fn a_restarted_peer_is_learned_from_its_datagrams() {
    let fabric = FakeFabric::new(5);
    let mut ts = pair(&fabric, 2, 256, 16, 16, IbConfig::default());
    // Node 2 restarts: new QP, new QPN; node 1 still has the old address.
    let old = ts[1].local_addr();
    fabric.destroy_qp(old.qpn);
    let mut t2 = IbTransport::new(
        fabric.create_qp(2, 256, 16, 16),
        NodeId(2),
        IbConfig::default(),
    )
    .unwrap();
    t2.add_peer(NodeId(1), ts[0].local_addr()).unwrap();
    ts[1] = t2;
    ts[1].send(Dest::Multicast, b"hello again").unwrap();
    spin(&fabric, &mut ts, 5);
    assert_eq!(
        drain(&mut ts[0]),
        vec![(b"hello again".to_vec(), PeerAddr::Node(NodeId(2)))]
    );
    assert_eq!(ts[0].peer_addr(NodeId(2)), Some(ts[1].local_addr()));
    assert_eq!(ts[0].stats().peers_learned, 1);
    ts[0].send(Dest::Node(NodeId(2)), b"ack").unwrap();
    spin(&fabric, &mut ts, 5);
    assert_eq!(drain(&mut ts[1]).len(), 1);
}

/// Fuzz-lite: 20k rounds of garbage — completions naming wrong slots, opcodes and
/// statuses, random byte lengths, datagrams of random bytes and of mutated valid fragments
/// — never panic the transport, and afterwards it still carries frames both ways.
#[test]
fn garbage_completions_and_datagrams_never_panic() {
    let fabric = FakeFabric::new(6);
    let mut ts = pair(&fabric, 2, 256, 8, 8, IbConfig::default());
    let mut rng = SplitMix64::new(0xf022);
    let target = ts[1].local_addr().qpn;
    let rogue = IbAddr {
        gid: [9; 16],
        lid: 99,
        qpn: 0x999,
    };
    let mut valid = vec![0u8; 200];
    FragHeader {
        sender: 1,
        msg_id: 5,
        total_len: 400,
        offset: 0,
    }
    .emit(&mut valid);
    let mut buf = vec![0u8; MAX_FRAME];
    for round in 0..20_000u32 {
        match rng.below(4) {
            0 => {
                let c = Completion {
                    opcode: if rng.below(2) == 0 {
                        Opcode::Send
                    } else {
                        Opcode::Recv
                    },
                    slot: rng.below(12) as u32,
                    status: match rng.below(8) {
                        0 => WcStatus::Flushed,
                        1 => WcStatus::Error(rng.next_u32()),
                        _ => WcStatus::Success,
                    },
                    byte_len: rng.next_u32() % 400,
                    src: if rng.below(2) == 0 {
                        rogue
                    } else {
                        ts[0].local_addr()
                    },
                };
                let mut data = vec![0u8; rng.below(300) as usize];
                rng.fill_bytes(&mut data);
                fabric.inject_completion(target, c, data);
            }
            1 => {
                let mut data = vec![0u8; rng.below(300) as usize];
                rng.fill_bytes(&mut data);
                fabric.inject_datagram(rogue, target, data);
            }
            _ => {
                let mut d = valid.clone();
                let i = rng.below(FRAG_HEADER_LEN as u64 + 4) as usize;
                d[i] ^= 1 << rng.below(8);
                d.truncate(rng.below(d.len() as u64 + 1) as usize);
                fabric.inject_datagram(ts[0].local_addr(), target, d);
            }
        }
        if round % 16 == 0 {
            fabric.advance_to(fabric.now() + 1);
            let _ = ts[1].progress();
            while let Ok(Some(_)) = ts[1].recv(&mut buf) {}
        }
    }
    // Let the garbage still queued on the wire (8 receive buffers drain it slowly) through.
    for _ in 0..10_000 {
        if fabric.in_flight() == 0 {
            break;
        }
        spin(&fabric, &mut ts, 1);
        drain(&mut ts[1]);
    }
    assert_eq!(fabric.in_flight(), 0);
    // Still a working transport both ways.
    let mut seen = BTreeSet::new();
    for _ in 0..50 {
        let _ = ts[0].send(Dest::Node(NodeId(2)), &[42; 700]);
        let _ = ts[1].send(Dest::Node(NodeId(1)), &[43; 700]);
        spin(&fabric, &mut ts, 2);
        for t in ts.iter_mut() {
            seen.extend(
                drain(t)
                    .into_iter()
                    .filter(|(f, _)| f == &vec![f[0]; 700])
                    .map(|(f, _)| f[0]),
            );
        }
    }
    assert_eq!(
        seen,
        BTreeSet::from([42, 43]),
        "{:?} {:?} inflight {}",
        ts[1].stats(),
        fabric.stats(),
        fabric.in_flight()
    );
    assert!(ts[1].stats().bad_datagrams > 0 && ts[1].stats().bad_completions > 0);
    let _ = FakeFaults::default();
}
