//! Loopback tests of the public API (no root needed): `udpu` between endpoints on
//! 127.0.0.1/2/3, batches, big frames, truncation, the unlisted-source filter, buffer
//! reporting and configuration errors.
//!
//! Linux routes all of 127.0.0.0/8 to `lo`, so 127.0.0.2 and 127.0.0.3 are bindable without
//! configuration. Ports are taken from the kernel's ephemeral range (bind port 0, read it,
//! release it) so parallel test runs on one machine do not collide.
//!
//! Two things the loopback cannot show, and where they are covered instead:
//! * IP fragmentation: `lo` has a 65 536-byte MTU, so even the largest datagram crosses it
//!   whole. The namespace tests (`src/tests/multicast.rs`) send 60 000-byte and maximum-size
//!   frames over a veth with MTU 1500.
//! * `WouldBlock`: `lo` (like veth) releases a datagram's socket-buffer charge as soon as
//!   it is handed over, so the send buffer never fills. The namespace test puts a token-bucket
//!   qdisc on the link to make it fill; the errno mapping is unit-tested in `endpoint.rs`.

extern crate alloc;

use alloc::collections::BTreeMap;
use core::net::{IpAddr, SocketAddr};
use core::time::Duration;
use std::net::UdpSocket;
use std::os::fd::AsRawFd;
use std::thread;
use std::time::Instant;

use totem_proto::NodeId;
use totem_transport::{Dest, PeerAddr, RecvMeta, Transmit, Transport, TransportError};
use transport_udp::{AddrRole, UdpConfig, UdpError, UdpMulticast, UdpUnicast};

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// A port the kernel just handed out as free on every address in `ips`.
fn free_port(ips: &[&str]) -> u16 {
    for _ in 0..50 {
        let first = UdpSocket::bind((ips[0], 0)).unwrap();
        let port = first.local_addr().unwrap().port();
        let others: Result<Vec<_>, _> = ips[1..]
            .iter()
            .map(|ip| UdpSocket::bind((*ip, port)))
            .collect();
        if others.is_ok() {
            return port;
        }
    }
    panic!("no common free port on {ips:?}");
}

/// `n` distinct ports free on `ip` (held together while chosen, so they differ).
fn free_ports(ip: &str, n: usize) -> Vec<u16> {
    let held: Vec<UdpSocket> = (0..n).map(|_| UdpSocket::bind((ip, 0)).unwrap()).collect();
    held.iter()
        .map(|s| s.local_addr().unwrap().port())
        .collect()
}

fn config(id: u32, nodes: &BTreeMap<NodeId, SocketAddr>) -> UdpConfig {
    UdpConfig::new(NodeId(id), nodes.clone())
}

/// Node `i + 1` at `addrs[i]`, one transport each.
fn cluster(addrs: &[SocketAddr]) -> (BTreeMap<NodeId, SocketAddr>, Vec<UdpUnicast>) {
    let nodes: BTreeMap<NodeId, SocketAddr> = addrs
        .iter()
        .enumerate()
        .map(|(i, a)| (NodeId(i as u32 + 1), *a))
        .collect();
    let transports = nodes
        .keys()
        .map(|id| UdpUnicast::new(&config(id.0, &nodes)).expect("endpoint"))
        .collect();
    (nodes, transports)
}

/// Polls until a datagram arrives or 2 s pass (a bound, not a timing assertion).
fn recv_wait(t: &mut impl Transport, buf: &mut [u8]) -> Option<RecvMeta> {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        if let Some(meta) = t.recv(buf).expect("recv") {
            return Some(meta);
        }
        if Instant::now() > deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(1));
    }
}

/// What arrives within a short quiet period after everything expected was read.
fn settle(t: &mut impl Transport) -> Option<RecvMeta> {
    thread::sleep(Duration::from_millis(20));
    let mut buf = [0u8; 16];
    t.recv(&mut buf).unwrap()
}

#[test]
fn multicast_fan_out_reaches_each_other_node_once_and_unicast_reaches_one() {
    let port = free_port(&["127.0.0.1", "127.0.0.2", "127.0.0.3"]);
    let addrs = ["127.0.0.1", "127.0.0.2", "127.0.0.3"]
        .map(|ip| SocketAddr::new(ip.parse().unwrap(), port));
    let (_, mut ts) = cluster(&addrs);
    let mut buf = vec![0u8; 65_536];

    ts[0].send(Dest::Multicast, b"mcast").unwrap();
    for (i, t) in ts.iter_mut().enumerate().skip(1) {
        let meta = recv_wait(t, &mut buf).unwrap_or_else(|| panic!("node {} missed it", i + 1));
        assert_eq!(&buf[..meta.len], b"mcast");
        assert_eq!(meta.from, PeerAddr::Node(NodeId(1)));
        assert_eq!(settle(t), None, "exactly once");
    }
    assert_eq!(
        settle(&mut ts[0]),
        None,
        "the sender is not in its own fan-out"
    );

    ts[1].send(Dest::Node(NodeId(3)), b"token").unwrap();
    let meta = recv_wait(&mut ts[2], &mut buf).unwrap();
    assert_eq!(
        (&buf[..meta.len], meta.from),
        (&b"token"[..], PeerAddr::Node(NodeId(2)))
    );
    assert_eq!(settle(&mut ts[0]), None);

    // A node may address itself (the datagram loops through the kernel).
    ts[0].send(Dest::Node(NodeId(1)), b"self").unwrap();
    let meta = recv_wait(&mut ts[0], &mut buf).unwrap();
    assert_eq!(meta.from, PeerAddr::Node(NodeId(1)));

    assert_eq!(
        ts[0].send(Dest::Node(NodeId(9)), b"x"),
        Err(TransportError::UnknownNode(NodeId(9)))
    );
    let s = ts[0].stats();
    assert_eq!((s.sent_datagrams, s.sent_bytes), (3, 14));
}

#[test]
fn nodes_sharing_an_address_are_told_apart_by_port() {
    let addrs: Vec<SocketAddr> = free_ports("127.0.0.1", 3)
        .into_iter()
        .map(|port| SocketAddr::new([127, 0, 0, 1].into(), port))
        .collect();
    let (_, mut ts) = cluster(&addrs);
    let mut buf = [0u8; 64];
    ts[2].send(Dest::Multicast, b"from 3").unwrap();
    for t in &mut ts[..2] {
        let meta = recv_wait(t, &mut buf).unwrap();
        assert_eq!(meta.from, PeerAddr::Node(NodeId(3)));
    }
    assert_eq!(ts[0].local_addr(), addrs[0]);
}

#[test]
fn frames_up_to_the_maximum_arrive_whole_and_larger_ones_are_refused() {
    let (_, mut ts) = cluster(&[
        SocketAddr::new([127, 0, 0, 1].into(), free_port(&["127.0.0.1"])),
        SocketAddr::new([127, 0, 0, 2].into(), free_port(&["127.0.0.2"])),
    ]);
    assert_eq!(ts[0].max_datagram(), 65_507);
    let mut buf = vec![0u8; 65_536];
    for len in [60_000, 65_507] {
        let frame: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
        ts[0].send(Dest::Node(NodeId(2)), &frame).unwrap();
        let meta = recv_wait(&mut ts[1], &mut buf).unwrap();
        assert_eq!((meta.len, meta.truncated), (len, false));
        assert!(buf[..len] == frame[..]);
    }
    let big = vec![0u8; 65_508];
    assert_eq!(
        ts[0].send(Dest::Multicast, &big),
        Err(TransportError::TooLarge {
            len: 65_508,
            max: 65_507
        })
    );
}

#[test]
fn truncation_is_reported_and_the_next_datagram_is_intact() {
    let (_, mut ts) = cluster(&[
        SocketAddr::new([127, 0, 0, 1].into(), free_port(&["127.0.0.1"])),
        SocketAddr::new([127, 0, 0, 2].into(), free_port(&["127.0.0.2"])),
    ]);
    ts[0].send(Dest::Node(NodeId(2)), b"0123456789").unwrap();
    ts[0].send(Dest::Node(NodeId(2)), b"abc").unwrap();
    ts[0].send(Dest::Node(NodeId(2)), b"xyz").unwrap();
    let mut small = [0u8; 4];
    let meta = recv_wait(&mut ts[1], &mut small).unwrap();
    assert_eq!(
        (meta.len, meta.truncated, &small[..]),
        (4, true, &b"0123"[..])
    );
    let meta = recv_wait(&mut ts[1], &mut small).unwrap();
    assert_eq!(
        (meta.len, meta.truncated, &small[..3]),
        (3, false, &b"abc"[..])
    );
    // A zero-length buffer is valid: every datagram truncates.
    let meta = recv_wait(&mut ts[1], &mut []).unwrap();
    assert_eq!((meta.len, meta.truncated), (0, true));
    let s = ts[1].stats();
    assert_eq!((s.truncated, s.recv_datagrams, s.recv_bytes), (2, 3, 7));
}

#[test]
fn unlisted_sources_are_dropped_and_counted_unless_allowed() {
    let nodes = BTreeMap::from([
        (
            NodeId(1),
            SocketAddr::new([127, 0, 0, 1].into(), free_port(&["127.0.0.1"])),
        ),
        (
            NodeId(2),
            SocketAddr::new([127, 0, 0, 2].into(), free_port(&["127.0.0.2"])),
        ),
    ]);
    let stranger = UdpSocket::bind("127.0.0.9:0").unwrap();
    let listed_ip_other_port = UdpSocket::bind("127.0.0.2:0").unwrap();
    let mut buf = [0u8; 64];

    let mut blocked = UdpUnicast::new(&config(1, &nodes)).unwrap();
    stranger.send_to(b"intruder", blocked.local_addr()).unwrap();
    listed_ip_other_port
        .send_to(b"tool", blocked.local_addr())
        .unwrap();
    // The stranger's datagram is skipped inside recv; the listed IP's comes out.
    let meta = recv_wait(&mut blocked, &mut buf).unwrap();
    assert_eq!(&buf[..meta.len], b"tool");
    assert_eq!(
        meta.from,
        PeerAddr::Socket(listed_ip_other_port.local_addr().unwrap())
    );
    assert_eq!(settle(&mut blocked), None);
    let s = blocked.stats();
    assert_eq!((s.dropped_unlisted, s.recv_datagrams), (1, 1));
    drop(blocked);

    let mut open_config = config(1, &nodes);
    open_config.block_unlisted = false;
    let mut open = UdpUnicast::new(&open_config).unwrap();
    stranger.send_to(b"stranger", open.local_addr()).unwrap();
    let meta = recv_wait(&mut open, &mut buf).unwrap();
    assert_eq!(&buf[..meta.len], b"stranger");
    assert_eq!(meta.from, PeerAddr::Socket(stranger.local_addr().unwrap()));
    assert_eq!(open.stats().dropped_unlisted, 0);
}

#[test]
fn batches_move_many_datagrams() {
    let (_, mut ts) = cluster(&[
        SocketAddr::new([127, 0, 0, 1].into(), free_port(&["127.0.0.1"])),
        SocketAddr::new([127, 0, 0, 2].into(), free_port(&["127.0.0.2"])),
        SocketAddr::new([127, 0, 0, 3].into(), free_port(&["127.0.0.3"])),
    ]);
    // 300 transmits: multicast (2 datagrams each) and unicast to node 2, in turn.
    let frames: Vec<Vec<u8>> = (0u32..300).map(|i| i.to_be_bytes().repeat(50)).collect();
    let transmits: Vec<Transmit<'_>> = frames
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let dest = if i % 2 == 0 {
                Dest::Multicast
            } else {
                Dest::Node(NodeId(2))
            };
            Transmit::new(dest, f)
        })
        .collect();
    assert_eq!(ts[0].send_batch(&transmits), (300, None));
    assert_eq!(ts[0].stats().sent_datagrams, 450);

    // Node 2 gets all 300 in order (one sender, one loopback path), in batches.
    let mut storage = vec![vec![0u8; 2048]; 64];
    let mut metas = [RecvMeta::default(); 64];
    let mut got: Vec<u32> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(2);
    while got.len() < 300 && Instant::now() < deadline {
        let mut bufs: Vec<&mut [u8]> = storage.iter_mut().map(|b| &mut b[..]).collect();
        let (n, err) = ts[1].recv_batch(&mut bufs, &mut metas);
        assert_eq!(err, None);
        for (buf, meta) in bufs.iter().zip(&metas).take(n) {
            assert_eq!((meta.len, meta.from), (200, PeerAddr::Node(NodeId(1))));
            got.push(u32::from_be_bytes(buf[..4].try_into().unwrap()));
        }
        if n == 0 {
            thread::sleep(Duration::from_millis(1));
        }
    }
    assert_eq!(got, (0..300).collect::<Vec<_>>());
    // Node 3 gets the 150 multicasts.
    let mut buf = [0u8; 256];
    let mut count = 0;
    while recv_wait(&mut ts[2], &mut buf).is_some() {
        count += 1;
        if count == 150 {
            break;
        }
    }
    assert_eq!(count, 150);
    assert_eq!(settle(&mut ts[2]), None);
}

#[test]
fn runs_of_equal_frames_keep_their_datagram_boundaries() {
    // Linux sends runs of equal-length datagrams to one destination as one segmented
    // (UDP GSO) send; each must still arrive as the datagram it was, in order.
    let (_, mut ts) = cluster(&[
        SocketAddr::new([127, 0, 0, 1].into(), free_port(&["127.0.0.1"])),
        SocketAddr::new([127, 0, 0, 2].into(), free_port(&["127.0.0.2"])),
    ]);
    let mut lens: Vec<usize> = Vec::new();
    lens.extend([1400; 40]); // a run cut by the 65 000-byte bound
    lens.push(700); // a shorter last segment
    lens.extend([1400; 10]);
    lens.extend([300, 1400, 1400, 9, 9, 9, 1]); // shorter, then longer again
    lens.extend([64; 70]); // a run longer than one batch
    let frames: Vec<Vec<u8>> = lens
        .iter()
        .enumerate()
        .map(|(i, &len)| (0..len).map(|k| (i * 7 + k) as u8).collect())
        .collect();
    let transmits: Vec<Transmit<'_>> = frames
        .iter()
        .map(|f| Transmit::new(Dest::Node(NodeId(2)), f))
        .collect();
    let mut sent = 0;
    let deadline = Instant::now() + Duration::from_secs(2);
    while sent < transmits.len() && Instant::now() < deadline {
        let (n, err) = ts[0].send_batch(&transmits[sent..]);
        assert!(
            matches!(err, None | Some(TransportError::WouldBlock)),
            "{err:?}"
        );
        sent += n;
    }
    assert_eq!(sent, frames.len());

    let mut storage = vec![vec![0u8; 2048]; 64];
    let mut metas = [RecvMeta::default(); 64];
    let mut got: Vec<Vec<u8>> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(2);
    while got.len() < frames.len() && Instant::now() < deadline {
        let mut bufs: Vec<&mut [u8]> = storage.iter_mut().map(|b| &mut b[..]).collect();
        let (n, err) = ts[1].recv_batch(&mut bufs, &mut metas);
        assert_eq!(err, None);
        for (buf, meta) in bufs.iter().zip(&metas).take(n) {
            assert_eq!(meta.from, PeerAddr::Node(NodeId(1)));
            got.push(buf[..meta.len].to_vec());
        }
        if n == 0 {
            thread::sleep(Duration::from_millis(1));
        }
    }
    assert_eq!(got.len(), frames.len());
    for (i, (g, f)) in got.iter().zip(&frames).enumerate() {
        assert_eq!(g, f, "datagram {i}");
    }
    assert_eq!(ts[0].stats().sent_datagrams, frames.len() as u64);
}

#[test]
fn send_batch_stops_at_an_invalid_transmit_and_says_where() {
    let (_, mut ts) = cluster(&[
        SocketAddr::new([127, 0, 0, 1].into(), free_port(&["127.0.0.1"])),
        SocketAddr::new([127, 0, 0, 2].into(), free_port(&["127.0.0.2"])),
    ]);
    let transmits = [
        Transmit::new(Dest::Node(NodeId(2)), b"a"),
        Transmit::new(Dest::Multicast, b"b"),
        Transmit::new(Dest::Node(NodeId(7)), b"c"),
        Transmit::new(Dest::Node(NodeId(2)), b"d"),
    ];
    assert_eq!(
        ts[0].send_batch(&transmits),
        (2, Some(TransportError::UnknownNode(NodeId(7))))
    );
    let mut buf = [0u8; 8];
    for want in [b"a", b"b"] {
        let meta = recv_wait(&mut ts[1], &mut buf).unwrap();
        assert_eq!(&buf[..meta.len], want);
    }
    assert_eq!(
        settle(&mut ts[1]),
        None,
        "nothing after the failed transmit was sent"
    );
    assert_eq!(ts[0].send_batch(&[]), (0, None));
}

#[test]
fn recv_batch_closes_the_gap_left_by_a_dropped_datagram() {
    let (_, mut ts) = cluster(&[
        SocketAddr::new([127, 0, 0, 1].into(), free_port(&["127.0.0.1"])),
        SocketAddr::new([127, 0, 0, 2].into(), free_port(&["127.0.0.2"])),
    ]);
    let stranger = UdpSocket::bind("127.0.0.9:0").unwrap();
    let to = ts[1].local_addr();
    ts[0].send(Dest::Node(NodeId(2)), b"first").unwrap();
    stranger.send_to(b"intruder!", to).unwrap();
    ts[0].send(Dest::Node(NodeId(2)), b"second").unwrap();
    thread::sleep(Duration::from_millis(20));

    let mut storage = [[0u8; 32]; 4];
    let mut bufs: Vec<&mut [u8]> = storage.iter_mut().map(|b| &mut b[..]).collect();
    let mut metas = [RecvMeta::default(); 4];
    let (n, err) = ts[1].recv_batch(&mut bufs, &mut metas);
    assert_eq!((n, err), (2, None));
    assert_eq!(&bufs[0][..metas[0].len], b"first");
    assert_eq!(&bufs[1][..metas[1].len], b"second");
    assert_eq!(ts[1].stats().dropped_unlisted, 1);
    assert_eq!(ts[1].recv_batch(&mut bufs, &mut metas), (0, None));
}

#[test]
fn udpu_over_ipv6_loopback() {
    if UdpSocket::bind("[::1]:0").is_err() {
        println!("SKIP: no IPv6 loopback");
        return;
    }
    let [p1, p2] = free_ports("::1", 2)[..] else {
        unreachable!()
    };
    let (_, mut ts) = cluster(&[sa(&format!("[::1]:{p1}")), sa(&format!("[::1]:{p2}"))]);
    assert_eq!(ts[0].max_datagram(), 65_527);
    let frame = vec![7u8; 65_527];
    ts[0].send(Dest::Multicast, &frame).unwrap();
    let mut buf = vec![0u8; 65_536];
    let meta = recv_wait(&mut ts[1], &mut buf).unwrap();
    assert_eq!((meta.len, meta.from), (65_527, PeerAddr::Node(NodeId(1))));
}

#[test]
fn buffer_sizes_are_set_and_reported() {
    let nodes = BTreeMap::from([(
        NodeId(1),
        SocketAddr::new([127, 0, 0, 1].into(), free_port(&["127.0.0.1"])),
    )]);
    let t = UdpUnicast::new(&config(1, &nodes)).unwrap();
    let (send, recv) = t.buffer_sizes();
    println!("default request 4 MiB each: granted send {send} B, receive {recv} B");
    assert!(send > 0 && recv > 0);

    // Below every cap, Linux grants twice the request (the doubling covers its bookkeeping).
    let mut small = config(1, &nodes);
    (small.send_buffer, small.recv_buffer) = (64 << 10, 96 << 10);
    drop(t);
    let t = UdpUnicast::new(&small).unwrap();
    assert_eq!(t.buffer_sizes(), (128 << 10, 192 << 10));

    let mut untouched = config(1, &nodes);
    (untouched.send_buffer, untouched.recv_buffer) = (0, 0);
    drop(t);
    let t = UdpUnicast::new(&untouched).unwrap();
    println!("kernel defaults: {:?}", t.buffer_sizes());
}

#[test]
fn the_socket_is_exposed_for_readiness_polling() {
    let addr = SocketAddr::new([127, 0, 0, 1].into(), free_port(&["127.0.0.1"]));
    let t = UdpUnicast::new(&config(1, &BTreeMap::from([(NodeId(1), addr)]))).unwrap();
    assert!(t.as_raw_fd() >= 0);
    let sock = socket2::SockRef::from(&t);
    assert_eq!(sock.local_addr().unwrap().as_socket(), Some(addr));
    assert!(sock.nonblocking().unwrap_or(true));
}

#[test]
fn bad_configurations_give_precise_errors() {
    let here = SocketAddr::new([127, 0, 0, 1].into(), free_port(&["127.0.0.1"]));
    // An address that is on no interface of this host (nothing is sent: bind fails).
    let nowhere = sa("10.213.99.99:5405");
    let nodes = BTreeMap::from([(NodeId(1), nowhere), (NodeId(2), here)]);
    match UdpUnicast::new(&config(1, &nodes)) {
        Err(UdpError::NotLocal { addr, source }) => {
            assert_eq!(addr, nowhere);
            assert_eq!(source.raw_os_error(), Some(libc::EADDRNOTAVAIL));
        }
        other => panic!("{other:?}"),
    }

    let nodes = BTreeMap::from([(NodeId(2), here)]);
    assert!(matches!(
        UdpUnicast::new(&config(1, &nodes)),
        Err(UdpError::NodeNotInNodelist(NodeId(1)))
    ));

    let nodes = BTreeMap::from([(NodeId(1), here), (NodeId(2), sa("[::1]:5405"))]);
    match UdpUnicast::new(&config(1, &nodes)) {
        Err(
            e @ UdpError::FamilyMismatch {
                role: AddrRole::Node(NodeId(2)),
                ..
            },
        ) => {
            assert_eq!(
                e.to_string(),
                "node 2's address ::1 is not of the same IP family as this node's address 127.0.0.1"
            );
        }
        other => panic!("{other:?}"),
    }

    let nodes = BTreeMap::from([(NodeId(1), here)]);
    let _holder = UdpUnicast::new(&config(1, &nodes)).unwrap();
    assert!(matches!(
        UdpUnicast::new(&config(1, &nodes)),
        Err(UdpError::AddressInUse { addr, .. }) if addr == here
    ));

    // Multicast-only checks, all before any socket exists.
    let group_port = here.port();
    let nodes = BTreeMap::from([(NodeId(1), SocketAddr::new(here.ip(), 0))]);
    let mut c = config(1, &nodes);
    c.port = group_port;
    assert!(matches!(
        UdpMulticast::new(&c),
        Err(UdpError::MissingMulticastGroup)
    ));
    c.mcast_addr = Some("10.213.0.1".parse().unwrap());
    assert!(matches!(
        UdpMulticast::new(&c),
        Err(UdpError::NotMulticast(_))
    ));
    c.mcast_addr = Some("ff15::213".parse().unwrap());
    assert!(matches!(
        UdpMulticast::new(&c),
        Err(UdpError::FamilyMismatch {
            role: AddrRole::Group,
            ..
        })
    ));
    c.mcast_addr = Some("239.213.0.1".parse().unwrap());
    c.ttl = 256;
    assert!(matches!(
        UdpMulticast::new(&c),
        Err(UdpError::InvalidTtl(256))
    ));
    c.ttl = 1;
    c.nodelist.insert(NodeId(2), sa("127.0.0.2:6000"));
    assert!(matches!(
        UdpMulticast::new(&c),
        Err(UdpError::PortMismatch { node: NodeId(2), port, .. }) if port == group_port
    ));
    // And the non-local check for udp, whose socket binds the wildcard.
    c.nodelist = BTreeMap::from([(
        NodeId(1),
        SocketAddr::new(IpAddr::from([10, 213, 99, 99]), 0),
    )]);
    assert!(matches!(
        UdpMulticast::new(&c),
        Err(UdpError::NotLocal { .. })
    ));
}
