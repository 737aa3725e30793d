//! transport-smoltcp end to end: smoltcp interfaces on an in-memory Ethernet switch, each
//! driving a `totem_ring::Ring`. They form one ring, deliver in one total order, survive a
//! dropped interface and its return; frames on the wire are the totem frames byte for byte,
//! one UDP payload each, fragmented and reassembled above the MTU. Deterministic: simulated
//! time, FIFO queues, no threads, no hashing.

extern crate alloc;

mod smoltcp {
    pub(crate) mod cluster;
    pub(crate) mod switch;
}

use alloc::vec::Vec;

use bytes::Bytes;
use smoltcp::cluster::{Cluster, GROUP, buffer, ip, nodelist, transport};
use smoltcp::switch::{Port, Switch};
use totem_proto::NodeId;
use totem_proto::time::{Duration, Instant};
use totem_transport::{Dest, PeerAddr, Transport, TransportError};
use transport_smoltcp::smoltcp::wire::{
    EthernetFrame, EthernetProtocol, IpProtocol, Ipv4Packet, UdpPacket,
};
use transport_smoltcp::{MAX_FRAME, Mode, SmoltcpTransport};

const MODES: [Mode; 2] = [Mode::Multicast(GROUP), Mode::Unicast];

fn payload(node: usize, i: usize) -> Vec<u8> {
    alloc::format!("n{node}-m{i}").into_bytes()
}

/// Every node in `idx` delivered the same sequence (total order, Totem TOCS'95 §2).
fn assert_same_order(c: &Cluster, idx: &[usize]) -> Vec<Bytes> {
    let first = c.nodes[idx[0]].payloads();
    for i in idx {
        assert_eq!(c.nodes[*i].payloads(), first, "node {} disagrees", i + 1);
    }
    first
}

fn submit_round(c: &mut Cluster, idx: &[usize], per_node: usize, tag: usize) {
    for i in 0..per_node {
        for n in idx {
            let p = payload(*n + 1, tag * 1000 + i);
            c.submit(*n, &p);
        }
    }
}

#[test]
fn three_nodes_form_one_ring_and_deliver_in_total_order() {
    for mode in MODES {
        let mut c = Cluster::new(3, mode);
        assert!(
            c.run_until(Duration::from_secs(5), |c| c.converged(&[0, 1, 2])),
            "{mode:?}: no ring of three"
        );
        submit_round(&mut c, &[0, 1, 2], 20, 0);
        assert!(c.run_until(Duration::from_secs(5), |c| {
            c.nodes.iter().all(|n| n.delivered.len() == 60)
        }));
        let order = assert_same_order(&c, &[0, 1, 2]);
        // Each sender's messages in its own submission order (FIFO within the total order).
        for n in 1..=3 {
            let mine: Vec<_> = order
                .iter()
                .filter(|p| p.starts_with(alloc::format!("n{n}-").as_bytes()))
                .cloned()
                .collect();
            let want: Vec<_> = (0..20).map(|i| Bytes::from(payload(n, i))).collect();
            assert_eq!(mine, want);
        }
        for n in &c.nodes {
            assert_eq!(n.transport.stats().flushed, 0);
            assert_eq!(n.transport.stats().truncated, 0);
        }
        assert_eq!(c.switch.overflow(), 0);
    }
}

#[test]
fn a_dropped_interface_leaves_a_ring_of_two_and_its_return_one_of_three() {
    for mode in MODES {
        drop_and_return(mode);
    }
}

#[test]
fn the_same_run_twice_gives_the_same_trace() {
    for mode in MODES {
        assert_eq!(drop_and_return(mode), drop_and_return(mode), "{mode:?}");
    }
}

#[test]
fn five_nodes_form_one_ring_and_deliver_in_total_order() {
    let mut c = Cluster::new(5, Mode::Multicast(GROUP));
    let all = [0, 1, 2, 3, 4];
    assert!(c.run_until(Duration::from_secs(5), |c| c.converged(&all)));
    submit_round(&mut c, &all, 10, 0);
    assert!(c.run_until(Duration::from_secs(5), |c| {
        c.nodes.iter().all(|n| n.delivered.len() == 50)
    }));
    assert_same_order(&c, &all);
}

/// What a run leaves behind, for the determinism check: simulated end time, every node's
/// ring id and delivered sequence, the transports' counters.
type Trace = (
    u64,
    Vec<(totem_proto::RingId, Vec<Bytes>)>,
    Vec<transport_smoltcp::Stats>,
);

/// Ring of three; node 3's port goes down (1 and 2 re-form) and comes back (all three again),
/// with messages in each configuration and their total order checked.
fn drop_and_return(mode: Mode) -> Trace {
    {
        let mut c = Cluster::new(3, mode);
        assert!(c.run_until(Duration::from_secs(5), |c| c.converged(&[0, 1, 2])));
        submit_round(&mut c, &[0, 1, 2], 5, 0);
        c.run_for(Duration::from_millis(500));

        // Pull node 3's cable: 1 and 2 detect the token loss and re-form (§4: membership).
        c.switch.set_up(2, false);
        assert!(
            c.run_until(Duration::from_secs(10), |c| c.converged(&[0, 1])),
            "{mode:?}: no ring of two"
        );
        assert!(c.run_until(Duration::from_secs(5), |c| c.converged(&[2])));
        let before: Vec<usize> = c.nodes.iter().map(|n| n.delivered.len()).collect();
        submit_round(&mut c, &[0, 1], 5, 1);
        assert!(c.run_until(Duration::from_secs(5), |c| {
            c.nodes[0].delivered.len() == before[0] + 10
                && c.nodes[1].delivered.len() == before[1] + 10
        }));
        assert_same_order(&c, &[0, 1]);

        // Plug it back: the merge detect brings all three into one ring again.
        c.switch.set_up(2, true);
        assert!(
            c.run_until(Duration::from_secs(10), |c| c.converged(&[0, 1, 2])),
            "{mode:?}: no ring of three after the return"
        );
        let before: Vec<usize> = c.nodes.iter().map(|n| n.delivered.len()).collect();
        submit_round(&mut c, &[0, 1, 2], 5, 2);
        assert!(c.run_until(Duration::from_secs(5), |c| {
            c.nodes
                .iter()
                .zip(&before)
                .all(|(n, b)| n.delivered.len() == b + 15)
        }));
        let tails: Vec<Vec<Bytes>> = c
            .nodes
            .iter()
            .zip(&before)
            .map(|(n, b)| n.payloads()[*b..].to_vec())
            .collect();
        assert_eq!(tails[0], tails[1]);
        assert_eq!(tails[0], tails[2]);
        (
            c.now.total_micros(),
            c.nodes
                .iter()
                .map(|n| (n.ring.ring_id(), n.payloads()))
                .collect(),
            c.nodes.iter().map(|n| *n.transport.stats()).collect(),
        )
    }
}

/// Three bare transports on a switch whose neighbours all know each other: every node
/// sends a greeting to every other and the network runs 3.5 s (smoltcp sends at most one ARP
/// request per second per interface).
fn warm(mode: Mode) -> (Switch, Vec<SmoltcpTransport<'static, Port>>, Instant) {
    let switch = Switch::new();
    let list = nodelist(3);
    let mut ts: Vec<_> = (1..=3)
        .map(|id| transport(&switch, id, list, mode, buffer(8, 64 * 1024)))
        .collect();
    let mut now = Instant::ZERO;
    for (i, t) in ts.iter_mut().enumerate() {
        for to in 1..=3u32 {
            if to as usize != i + 1 {
                t.send(Dest::Node(NodeId(to)), b"hello").unwrap();
            }
        }
    }
    let mut buf = [0u8; 64];
    for _ in 0..3500 {
        now += Duration::from_millis(1);
        for t in &mut ts {
            t.poll(now);
            while t.recv(&mut buf).unwrap().is_some() {}
        }
    }
    for t in &ts {
        assert_eq!(t.stats().received, 2, "warm-up greetings lost");
    }
    (switch, ts, now)
}

/// Sends `frame` from node 1 and returns (UDP payloads seen on the wire from port 0 after
/// reassembling IPv4 fragments, what node 2 received).
fn send_and_capture(mode: Mode, dest: Dest, frame: &[u8]) -> (Vec<Vec<u8>>, Vec<u8>) {
    let (switch, mut ts, now) = warm(mode);
    switch.start_capture();
    // udpu fan-out of an oversized frame: the second copy waits for the fragmenter.
    while let Err(e) = ts[0].send(dest, frame) {
        assert_eq!(e, TransportError::WouldBlock);
        ts[0].poll(now);
    }
    ts[0].poll(now);
    let wire = switch.take_capture();
    let mut buf = alloc::vec![0u8; 65_536];
    ts[1].poll(now);
    let meta = ts[1]
        .recv(&mut buf)
        .unwrap()
        .expect("node 2 received nothing");
    assert_eq!(meta.from, PeerAddr::Node(NodeId(1)));
    assert!(!meta.truncated);
    let got = buf[..meta.len].to_vec();
    assert_eq!(ts[1].recv(&mut buf).unwrap(), None);

    // Reassemble by hand from the capture: UDP/IPv4 frames of node 1 (port 0).
    let mut payloads = Vec::new();
    let mut partial: Vec<u8> = Vec::new();
    for (port, eth) in wire {
        if port != 0 {
            continue;
        }
        let eth = EthernetFrame::new_checked(&eth[..]).unwrap();
        if eth.ethertype() != EthernetProtocol::Ipv4 {
            continue;
        }
        let ipp = Ipv4Packet::new_checked(eth.payload()).unwrap();
        if ipp.next_header() != IpProtocol::Udp {
            continue;
        }
        let off = usize::from(ipp.frag_offset());
        assert_eq!(off, partial.len(), "fragments in order on this switch");
        partial.extend_from_slice(ipp.payload());
        if !ipp.more_frags() {
            let udp = UdpPacket::new_checked(&partial[..]).unwrap();
            assert_eq!(udp.src_port(), 5405);
            assert_eq!(udp.dst_port(), 5405);
            payloads.push(udp.payload().to_vec());
            partial.clear();
        }
    }
    (payloads, got)
}

#[test]
fn a_frame_on_the_wire_is_exactly_one_udp_payload_as_over_transport_udp() {
    // A real ring frame (the first thing a node multicasts is a join), then sizes around the
    // MTU and a 13 000-byte frame like a large ring's commit token, and the maximum.
    let mut ring = totem_ring::Ring::new(
        &totem_ring::Config::new(NodeId(1), 0x5a17),
        Instant::ZERO,
        0,
    )
    .unwrap();
    let join = ring
        .poll_transmit()
        .expect("a new ring multicasts a join")
        .frame;
    assert!(totem_proto::Frame::parse(&join).is_ok());
    let big = |n: usize| (0..n).map(|i| (i * 7 + i / 251) as u8).collect::<Vec<u8>>();
    let frames = [
        join.to_vec(),
        big(1472),
        big(1473),
        big(13_000),
        big(MAX_FRAME),
    ];
    for mode in MODES {
        for frame in &frames {
            for dest in [Dest::Multicast, Dest::Node(NodeId(2))] {
                let (wire, got) = send_and_capture(mode, dest, frame);
                let copies = match (mode, dest) {
                    (Mode::Unicast, Dest::Multicast) => 2,
                    _ => 1,
                };
                assert_eq!(wire.len(), copies, "{mode:?} {dest:?} {}", frame.len());
                for w in &wire {
                    assert!(
                        w == frame,
                        "{mode:?} {dest:?}: payload differs from the frame"
                    );
                }
                assert!(got == *frame, "{mode:?} {dest:?}: received frame differs");
            }
        }
    }
}

#[test]
fn too_large_and_unknown_node_are_refused() {
    let switch = Switch::new();
    let list = nodelist(3);
    let mut t = transport(
        &switch,
        1,
        list,
        Mode::Multicast(GROUP),
        buffer(8, 32 * 1024),
    );
    assert_eq!(t.max_datagram(), MAX_FRAME);
    assert_eq!(MAX_FRAME, 16_356, "the documented limit");
    let frame = alloc::vec![0u8; MAX_FRAME + 1];
    assert_eq!(
        t.send(Dest::Multicast, &frame),
        Err(TransportError::TooLarge {
            len: MAX_FRAME + 1,
            max: MAX_FRAME
        })
    );
    assert_eq!(
        t.send(Dest::Node(NodeId(9)), b"x"),
        Err(TransportError::UnknownNode(NodeId(9)))
    );
    let mut buf = [0u8; 16];
    assert_eq!(t.recv(&mut buf), Ok(None));
}

#[test]
fn the_group_is_joined_with_an_igmp_report() {
    let switch = Switch::new();
    switch.start_capture();
    let mut t = transport(
        &switch,
        1,
        nodelist(2),
        Mode::Multicast(GROUP),
        buffer(8, 32 * 1024),
    );
    t.poll(Instant::ZERO);
    let wire = switch.take_capture();
    let igmp = wire.iter().any(|(_, eth)| {
        let eth = EthernetFrame::new_checked(&eth[..]).unwrap();
        let ipp = Ipv4Packet::new_checked(eth.payload()).unwrap();
        ipp.next_header() == IpProtocol::Igmp && ipp.dst_addr() == GROUP
    });
    assert!(igmp, "no IGMP membership report for {GROUP}");
}

#[test]
fn udpu_fan_out_resumes_after_back_pressure_without_duplicates() {
    let switch = Switch::new();
    let list = nodelist(3);
    // Room for exactly one datagram: the second copy of the fan-out must wait.
    let mut t1 = transport(&switch, 1, list, Mode::Unicast, buffer(1, MAX_FRAME));
    let mut t2 = transport(&switch, 2, list, Mode::Unicast, buffer(8, 32 * 1024));
    let mut t3 = transport(&switch, 3, list, Mode::Unicast, buffer(8, 32 * 1024));
    let mut now = Instant::ZERO;
    let frame = b"fan-out frame";
    assert_eq!(
        t1.send(Dest::Multicast, frame),
        Err(TransportError::WouldBlock)
    );
    let mut tries = 0;
    loop {
        now += Duration::from_millis(1);
        for t in [&mut t1, &mut t2, &mut t3] {
            t.poll(now);
        }
        match t1.send(Dest::Multicast, frame) {
            Ok(()) => break,
            Err(TransportError::WouldBlock) => tries += 1,
            Err(e) => panic!("{e}"),
        }
        assert!(tries < 100);
    }
    // smoltcp sends one ARP request per second per interface: node 3 resolves a second
    // after node 2.
    for _ in 0..1500 {
        now += Duration::from_millis(1);
        for t in [&mut t1, &mut t2, &mut t3] {
            t.poll(now);
        }
    }
    let mut buf = [0u8; 64];
    for t in [&mut t2, &mut t3] {
        let meta = t.recv(&mut buf).unwrap().unwrap();
        assert_eq!(&buf[..meta.len], frame);
        assert_eq!(meta.from, PeerAddr::Node(NodeId(1)));
        assert_eq!(t.recv(&mut buf).unwrap(), None, "delivered twice");
    }
    assert_eq!(t1.stats().sent, 2);
    assert!(t1.stats().would_block >= 1);
}

#[test]
fn a_send_queue_stuck_on_an_unreachable_neighbour_is_flushed() {
    let switch = Switch::new();
    let list = nodelist(3);
    let mut t1 = transport(&switch, 1, list, Mode::Unicast, buffer(8, 32 * 1024));
    let mut t2 = transport(&switch, 2, list, Mode::Unicast, buffer(8, 32 * 1024));
    // Node 3 never existed on the wire: ARP for 10.0.0.3 goes unanswered forever.
    let mut now = Instant::ZERO;
    t1.send(Dest::Node(NodeId(3)), b"to nobody").unwrap();
    t1.send(Dest::Node(NodeId(2)), b"to two").unwrap();
    let mut buf = [0u8; 64];
    let mut got = None;
    for _ in 0..4000 {
        now += Duration::from_millis(1);
        t1.poll(now);
        t2.poll(now);
        if let Some(meta) = t2.recv(&mut buf).unwrap() {
            got = Some(buf[..meta.len].to_vec());
            break;
        }
    }
    // The stuck head was flushed after the default 2.5 s stall timeout (and "to two" with it,
    // datagram loss the ring would retransmit); what is sent afterwards gets through.
    assert_eq!(t1.stats().flushed, 1);
    if got.is_none() {
        t1.send(Dest::Node(NodeId(2)), b"after flush").unwrap();
        for _ in 0..10 {
            now += Duration::from_millis(1);
            t1.poll(now);
            t2.poll(now);
        }
        let meta = t2.recv(&mut buf).unwrap().unwrap();
        got = Some(buf[..meta.len].to_vec());
    }
    assert_eq!(got.as_deref(), Some(&b"after flush"[..]));
    let _ = ip(3);
}

#[test]
fn oversized_frames_wait_for_the_fragmenter_and_arrive_whole_in_order() {
    let (_switch, mut ts, now) = warm(Mode::Multicast(GROUP));
    let a: Vec<u8> = (0..13_000).map(|i| (i % 253) as u8).collect();
    let b: Vec<u8> = (0..9_000).map(|i| (i % 251) as u8 ^ 0x5a).collect();
    ts[0].send(Dest::Multicast, &a).unwrap();
    // Queued behind `a` it would overwrite `a`'s unsent fragments in smoltcp's one
    // fragmenter: refused until `a` is out.
    assert_eq!(
        ts[0].send(Dest::Multicast, &b),
        Err(TransportError::WouldBlock)
    );
    assert_eq!(ts[0].stats().fragmenter_busy, 1);
    // A frame that fits one Ethernet frame is not held back.
    ts[0].send(Dest::Multicast, b"small").unwrap();
    ts[0].poll(now);
    ts[0].send(Dest::Multicast, &b).unwrap();
    ts[0].poll(now);
    let mut buf = alloc::vec![0u8; 65_536];
    for t in &mut ts[1..] {
        t.poll(now);
        let mut got = Vec::new();
        while let Some(meta) = t.recv(&mut buf).unwrap() {
            got.push(buf[..meta.len].to_vec());
        }
        // Datagram semantics: the small frame may overtake `a`'s trailing fragments (here it
        // does); `a` and `b` keep their order and arrive whole.
        let lens: Vec<usize> = got.iter().map(Vec::len).collect();
        assert_eq!(lens, [5, 13_000, 9_000]);
        assert!(got[0] == b"small" && got[1] == a && got[2] == b);
    }
}

#[test]
fn a_datagram_longer_than_the_buffer_is_cut_and_flagged() {
    let (_switch, mut ts, now) = warm(Mode::Unicast);
    ts[0].send(Dest::Node(NodeId(2)), b"0123456789").unwrap();
    ts[0].send(Dest::Node(NodeId(2)), b"next").unwrap();
    ts[0].poll(now);
    ts[1].poll(now);
    let mut small = [0u8; 4];
    let meta = ts[1].recv(&mut small).unwrap().unwrap();
    assert_eq!((meta.len, meta.truncated, &small), (4, true, b"0123"));
    // The rest of that datagram is gone; the next call returns the next datagram.
    let meta = ts[1].recv(&mut small).unwrap().unwrap();
    assert_eq!((meta.len, meta.truncated, &small), (4, false, b"next"));
    assert_eq!(ts[1].stats().truncated, 1);
}
