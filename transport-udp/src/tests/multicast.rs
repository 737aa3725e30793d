//! `transport: udp` over a veth pair between two network namespaces (IPv4 and IPv6), and
//! `udpu` fan-out under real back-pressure from a token-bucket qdisc.
//!
//! Multicast needs a real link: with `IP_MULTICAST_LOOP` off, two endpoints on one host
//! never hear each other. The namespaces have no default route and no multicast route,
//! so delivery also proves that `IP_MULTICAST_IF` from the bind address makes one
//! unnecessary. The veth MTU is 1500, so the 60 000-byte and maximum-size frames really are
//! fragmented and reassembled by IP.

use alloc::collections::BTreeMap;
use core::net::SocketAddr;
use core::time::Duration;
use std::thread;
use std::time::Instant;

use totem_proto::NodeId;
use totem_transport::{Dest, PeerAddr, Transmit, Transport, TransportError};

use super::netns::{Lab, recv_wait, tc};
use crate::{UdpConfig, UdpMulticast, UdpUnicast};

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// Node 1 in namespace a, node 2 in namespace b, both in `group`.
fn multicast_pair(lab: &Lab, one: &str, two: &str, group: &str) -> (UdpMulticast, UdpMulticast) {
    let nodes = BTreeMap::from([(NodeId(1), sa(one)), (NodeId(2), sa(two))]);
    let mut c1 = UdpConfig::new(NodeId(1), nodes);
    c1.mcast_addr = Some(group.parse().unwrap());
    let mut c2 = c1.clone();
    c2.node_id = NodeId(2);
    let one = Lab::run_in(&lab.a, move || UdpMulticast::new(&c1).expect("node 1"));
    let two = Lab::run_in(&lab.b, move || UdpMulticast::new(&c2).expect("node 2"));
    (one, two)
}

fn exercise(one: &mut UdpMulticast, two: &mut UdpMulticast) {
    let mut buf = vec![0u8; 70_000];

    one.send(Dest::Multicast, b"join from 1").unwrap();
    let meta = recv_wait(two, &mut buf).expect("multicast from node 1 reaches node 2");
    assert_eq!(&buf[..meta.len], b"join from 1");
    // The source is pinned to node 1's address and the group port: mapped to the node.
    assert_eq!(meta.from, PeerAddr::Node(NodeId(1)));
    // Loopback is off: the sender does not get its own multicast back (it would have been
    // queued synchronously during the send).
    assert_eq!(one.recv(&mut buf).unwrap(), None);

    // The token is unicast on the same socket.
    two.send(Dest::Node(NodeId(1)), b"token").unwrap();
    let meta = recv_wait(one, &mut buf).expect("token from node 2 reaches node 1");
    assert_eq!(&buf[..meta.len], b"token");
    assert_eq!(meta.from, PeerAddr::Node(NodeId(2)));

    // Far above the 1500-byte MTU: IP fragments, reassembled before recv sees them.
    for len in [60_000, one.max_datagram()] {
        let frame: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        one.send(Dest::Multicast, &frame).unwrap();
        let meta = recv_wait(two, &mut buf).expect("big multicast frame arrives");
        assert_eq!((meta.len, meta.truncated), (len, false));
        assert!(
            buf[..len] == frame[..],
            "frame of {len} bytes arrives intact"
        );
    }
    let too_big = vec![0u8; one.max_datagram() + 1];
    assert!(matches!(
        one.send(Dest::Multicast, &too_big),
        Err(TransportError::TooLarge { .. })
    ));

    let (s1, s2) = (one.stats(), two.stats());
    assert_eq!((s1.sent_datagrams, s1.recv_datagrams), (3, 1));
    assert_eq!((s2.sent_datagrams, s2.recv_datagrams), (1, 3));
    assert_eq!(s2.dropped_unlisted + s2.truncated + s2.recv_errors, 0);
}

#[test]
fn multicast_ipv4_reaches_the_other_namespace_and_the_token_is_unicast() {
    let Some(lab) = Lab::new(&[]) else { return };
    let (mut one, mut two) =
        multicast_pair(&lab, "10.213.1.1:5405", "10.213.1.2:5405", "239.213.0.1");
    assert_eq!(one.group(), sa("239.213.0.1:5405"));
    exercise(&mut one, &mut two);
}

#[test]
fn multicast_ipv6_reaches_the_other_namespace_and_the_token_is_unicast() {
    let Some(lab) = Lab::new(&[]) else { return };
    let (mut one, mut two) = multicast_pair(
        &lab,
        "[fd13:213::1]:5405",
        "[fd13:213::2]:5405",
        "ff15::213",
    );
    assert_eq!(one.max_datagram(), 65_527);
    exercise(&mut one, &mut two);
}

#[test]
fn multicast_refuses_an_address_that_is_not_on_this_host() {
    let Some(lab) = Lab::new(&[]) else { return };
    // 10.213.1.2 exists only in namespace b.
    let nodes = BTreeMap::from([
        (NodeId(1), sa("10.213.1.1:5405")),
        (NodeId(2), sa("10.213.1.2:5405")),
    ]);
    let mut config = UdpConfig::new(NodeId(2), nodes);
    config.mcast_addr = Some("239.213.0.1".parse().unwrap());
    let result = Lab::run_in(&lab.a, move || UdpMulticast::new(&config).map(drop));
    assert!(
        matches!(result, Err(crate::UdpError::NotLocal { addr, .. }) if addr == sa("10.213.1.2:5405")),
        "{result:?}"
    );
}

fn tagged(tag: u32) -> Vec<u8> {
    let mut frame = vec![0xa5u8; 4000];
    frame[..4].copy_from_slice(&tag.to_be_bytes());
    frame
}

#[test]
fn udpu_fan_out_under_back_pressure_reaches_every_node_exactly_once() {
    let Some(lab) = Lab::new(&[3]) else { return };
    // A token bucket on node 1's link holds packets in its queue, where they stay charged to
    // the sender's socket buffer: the buffer fills and sends fail with EAGAIN. The queue
    // limit (4 MB) is far above the buffer, so the qdisc itself never drops (a qdisc drop
    // would be silent: Linux hides ENOBUFS from UDP senders without IP_RECVERR).
    if let Err(e) = tc(
        &lab.a,
        &[
            "qdisc", "add", "dev", "tu0", "root", "tbf", "rate", "40mbit", "burst", "16kb",
            "limit", "4mb",
        ],
    ) {
        println!("SKIP: no tbf qdisc: {e}");
        return;
    }
    let nodes = BTreeMap::from([
        (NodeId(1), sa("10.213.1.1:5405")),
        (NodeId(2), sa("10.213.1.2:5405")),
        (NodeId(3), sa("10.213.1.3:5405")),
    ]);
    let mut c1 = UdpConfig::new(NodeId(1), nodes);
    c1.send_buffer = 32 << 10;
    let (mut c2, mut c3) = (c1.clone(), c1.clone());
    c2.node_id = NodeId(2);
    c3.node_id = NodeId(3);
    let mut one = Lab::run_in(&lab.a, move || UdpUnicast::new(&c1).expect("node 1"));
    let mut two = Lab::run_in(&lab.b, move || UdpUnicast::new(&c2).expect("node 2"));
    let mut three = Lab::run_in(&lab.b, move || UdpUnicast::new(&c3).expect("node 3"));

    const FRAMES: u32 = 48;
    let deadline = Instant::now() + Duration::from_secs(5);
    let pause = || {
        assert!(Instant::now() < deadline, "back-pressure never cleared");
        thread::sleep(Duration::from_micros(200));
    };
    // Half one send at a time, retrying the same frame on WouldBlock as the trait asks...
    for tag in 0..FRAMES / 2 {
        let frame = tagged(tag);
        loop {
            match one.send(Dest::Multicast, &frame) {
                Ok(()) => break,
                Err(TransportError::WouldBlock) => pause(),
                Err(e) => panic!("send: {e}"),
            }
        }
    }
    // ...and half in batches, resuming at the transmit that was pushed back.
    let frames: Vec<Vec<u8>> = (FRAMES / 2..FRAMES).map(tagged).collect();
    let transmits: Vec<Transmit<'_>> = frames
        .iter()
        .map(|f| Transmit::new(Dest::Multicast, f))
        .collect();
    let mut next = 0;
    while next < transmits.len() {
        let (sent, err) = one.send_batch(&transmits[next..]);
        next += sent;
        match err {
            None => {}
            Some(TransportError::WouldBlock) => pause(),
            Some(e) => panic!("send_batch: {e}"),
        }
    }

    let stats = one.stats();
    println!("udpu under back-pressure: {stats:?}");
    assert!(stats.would_block > 0, "the qdisc should have pushed back");
    // Exactly one datagram per frame and node: a fan-out cut by WouldBlock resumed where it
    // stopped instead of sending the first copies again.
    assert_eq!(stats.sent_datagrams, u64::from(FRAMES) * 2);
    assert_eq!(stats.send_errors, 0);

    for (node, t) in [(2, &mut two), (3, &mut three)] {
        let mut tags = Vec::new();
        let mut buf = vec![0u8; 65_536];
        while tags.len() < FRAMES as usize {
            let meta = recv_wait(t, &mut buf)
                .unwrap_or_else(|| panic!("node {node} got only {} frames", tags.len()));
            assert_eq!((meta.len, meta.from), (4000, PeerAddr::Node(NodeId(1))));
            tags.push(u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]));
        }
        tags.sort_unstable();
        assert_eq!(
            tags,
            (0..FRAMES).collect::<Vec<_>>(),
            "node {node}: each frame once"
        );
        thread::sleep(Duration::from_millis(20));
        assert_eq!(t.recv(&mut buf).unwrap(), None, "node {node}: no duplicate");
    }
}
