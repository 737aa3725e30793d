//! Totem rings over [`IbTransport`] on the fake verbs provider: membership, total order,
//! fragmentation, back-pressure and QP-error recovery, all in simulated time.
//!
//! The driver is totem-ring's `tests/cluster.rs` with the in-memory wire replaced by the
//! fake fabric: one simulated clock; at each step it advances to the earliest ring timer or
//! datagram arrival, lets the fabric deliver what is due, then pumps every node (read every
//! frame → `handle_datagram`, drain events, send transmits, keeping a `WouldBlock`ed one for
//! the next turn: back-pressure, never loss).

extern crate alloc;

use alloc::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::Bytes;
use totem_proto::time::{Duration, Instant};
use totem_proto::{Guarantee, NodeId, ServiceId};
use totem_ring::{Config, Dest, Event, Ring, State};
use totem_transport::{Transport, TransportError};
use transport_ib::fake::{FakeFabric, FakeFaults, FakeVerbs};
use transport_ib::{IbConfig, IbTransport};

struct Node {
    ring: Ring,
    t: IbTransport<FakeVerbs>,
    outbox: VecDeque<(Dest, Bytes)>,
    delivered: Vec<Bytes>,
}

struct Net {
    fabric: FakeFabric,
    nodes: BTreeMap<u32, Node>,
    now: Instant,
    would_block: u64,
}

fn ring_config(id: u32) -> Config {
    let mut c = Config::new(NodeId(id), 0x7e57);
    c.token = Duration::from_millis(200);
    c.join = Duration::from_millis(30);
    c.merge = Duration::from_millis(50);
    c.token_coefficient = Duration::ZERO;
    // Frames of several IB datagrams: every multicast exercises fragmentation.
    c.frame_len = 3000;
    c
}

impl Net {
    /// `n` nodes on one fabric with an MTU of `mtu` and the given queue depths.
    fn new(n: u32, mtu: usize, send_slots: usize, recv_slots: usize, faults: FakeFaults) -> Self {
        let fabric = FakeFabric::new(0x1b);
        fabric.set_faults(faults);
        let mut ts: BTreeMap<u32, IbTransport<FakeVerbs>> = BTreeMap::new();
        for id in 1..=n {
            let v = fabric.create_qp(id as u16, mtu, send_slots, recv_slots);
            ts.insert(
                id,
                IbTransport::new(v, NodeId(id), IbConfig::default()).unwrap(),
            );
        }
        let addrs: Vec<_> = ts.iter().map(|(id, t)| (*id, t.local_addr())).collect();
        let mut nodes = BTreeMap::new();
        for (id, mut t) in ts {
            for (peer, addr) in &addrs {
                t.add_peer(NodeId(*peer), *addr).unwrap();
            }
            let ring = Ring::new(&ring_config(id), Instant::ZERO, 0).unwrap();
            nodes.insert(
                id,
                Node {
                    ring,
                    t,
                    outbox: VecDeque::new(),
                    delivered: Vec::new(),
                },
            );
        }
        let mut net = Self {
            fabric,
            nodes,
            now: Instant::ZERO,
            would_block: 0,
        };
        let ids: Vec<u32> = net.nodes.keys().copied().collect();
        for id in ids {
            net.pump(id);
        }
        net
    }

    fn pump(&mut self, id: u32) {
        let now = self.now;
        let Some(node) = self.nodes.get_mut(&id) else {
            return;
        };
        let mut buf = vec![0u8; 65_536];
        loop {
            let mut progressed = false;
            while let Some(meta) = node.t.recv(&mut buf).unwrap() {
                assert!(!meta.truncated);
                node.ring.handle_datagram(now, meta.from, &buf[..meta.len]);
                progressed = true;
            }
            while let Some(ev) = node.ring.poll_event() {
                if let Event::Deliver(d) = ev {
                    node.delivered.push(d.payload);
                }
            }
            while let Some(tx) = node.ring.poll_transmit() {
                node.outbox.push_back((tx.dest, tx.frame));
            }
            while let Some((dest, frame)) = node.outbox.front() {
                match node.t.send(*dest, frame) {
                    Ok(()) => {
                        node.outbox.pop_front();
                        progressed = true;
                    }
                    Err(TransportError::WouldBlock) => {
                        self.would_block += 1;
                        break;
                    }
                    Err(e) => panic!("node {id}: send failed: {e}"),
                }
            }
            if !progressed {
                return;
            }
        }
    }

    fn next_event(&self) -> Option<Instant> {
        let timers = self
            .nodes
            .values()
            .filter_map(|n| n.ring.poll_timeout())
            .min();
        let wire = self.fabric.next_arrival().map(Instant::from_micros);
        match (timers, wire) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn step(&mut self) -> bool {
        let Some(next) = self.next_event() else {
            return false;
        };
        // Never stand still: a held datagram due "now" waits for the next microsecond.
        self.now = if next > self.now {
            next
        } else {
            self.now + Duration::from_micros(1)
        };
        self.fabric.advance_to(self.now.total_micros());
        let ids: Vec<u32> = self.nodes.keys().copied().collect();
        for id in ids {
            let now = self.now;
            if let Some(n) = self.nodes.get_mut(&id)
                && n.ring.poll_timeout().is_some_and(|t| t <= now)
            {
                n.ring.handle_timeout(now);
            }
            self.pump(id);
        }
        true
    }

    fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        while self.next_event().is_some_and(|t| t <= end) {
            self.step();
        }
        self.now = end;
    }

    fn converged(&self) -> bool {
        let want: Vec<NodeId> = self.nodes.keys().map(|i| NodeId(*i)).collect();
        let ids: BTreeSet<_> = self.nodes.values().map(|n| n.ring.ring_id()).collect();
        ids.len() == 1
            && self.nodes.values().all(|n| {
                n.ring.state() == State::Operational && n.ring.members() == want.as_slice()
            })
    }

    fn submit(&mut self, id: u32, payload: Vec<u8>) {
        let n = self.nodes.get_mut(&id).unwrap();
        n.ring
            .submit(ServiceId(1), Bytes::from(payload), Guarantee::Agreed)
            .unwrap();
        self.pump(id);
    }

    /// Every node delivered exactly `expected` messages, each once, in one common order.
    fn assert_total_order(&self, expected: usize) {
        let first = &self.nodes.values().next().unwrap().delivered;
        assert_eq!(first.len(), expected, "delivered count");
        let unique: BTreeSet<_> = first.iter().collect();
        assert_eq!(unique.len(), expected, "a message was delivered twice");
        for (id, n) in &self.nodes {
            assert_eq!(&n.delivered, first, "node {id} delivered another order");
        }
    }
}

/// A message of `len` bytes, unique to (node, index).
fn message(node: u32, i: u32, len: usize) -> Vec<u8> {
    let mut m = format!("n{node}-m{i}-").into_bytes();
    m.resize(len.max(m.len()), (i % 251) as u8);
    m
}

fn run_traffic(
    net: &mut Net,
    per_node: u32,
    large_every: u32,
    qp_error: Option<(u32, u32)>,
) -> usize {
    let ids: Vec<u32> = net.nodes.keys().copied().collect();
    let mut sent = 0;
    for i in 0..per_node {
        for &id in &ids {
            let len = if i % large_every == 0 { 2000 } else { 40 };
            net.submit(id, message(id, i, len));
            sent += 1;
        }
        if let Some((node, at)) = qp_error
            && i == at
        {
            let qpn = net.nodes[&node].t.local_addr().qpn;
            net.fabric.inject_qp_error(qpn);
        }
        net.run_for(Duration::from_millis(2));
    }
    net.run_for(Duration::from_secs(2));
    sent
}

#[test]
fn three_rings_form_one_ring_and_deliver_in_total_order() {
    let mut net = Net::new(3, 1024, 64, 64, FakeFaults::default());
    net.run_for(Duration::from_secs(1));
    assert!(net.converged());
    let sent = run_traffic(&mut net, 30, 5, None);
    net.assert_total_order(sent);
    for n in net.nodes.values() {
        assert!(
            n.t.stats().fragments_sent > n.t.stats().frames_sent,
            "no fragmentation"
        );
    }
}

#[test]
fn five_rings_with_loss_and_jitter_still_agree() {
    let faults = FakeFaults {
        loss_ppm: 5_000,
        latency_us: 20,
        jitter_us: 30,
        rnr_hold: true,
    };
    let mut net = Net::new(5, 512, 32, 32, faults);
    net.run_for(Duration::from_secs(2));
    assert!(net.converged());
    let sent = run_traffic(&mut net, 20, 4, None);
    net.assert_total_order(sent);
    assert!(net.fabric.stats().lost > 0);
}

#[test]
fn tiny_queues_push_back_instead_of_losing() {
    // 16 send slots and 4 receive buffers with 256-byte datagrams: a 3000-byte frame to two
    // peers needs 26 sends, so `send` must say WouldBlock, and two senders outrun one
    // receiver's 4 buffers.
    let mut net = Net::new(3, 256, 16, 4, FakeFaults::default());
    net.run_for(Duration::from_secs(1));
    assert!(net.converged());
    let sent = run_traffic(&mut net, 15, 3, None);
    net.assert_total_order(sent);
    assert!(net.would_block > 0, "send queue never filled");
    assert!(
        net.fabric.stats().rnr_waits > 0,
        "receive queue never ran dry"
    );
    assert_eq!(net.fabric.stats().dropped, 0);
    assert_eq!(net.fabric.stats().lost, 0);
}

#[test]
fn a_qp_error_on_one_node_is_recovered_without_loss_or_duplicates() {
    let mut net = Net::new(3, 512, 16, 32, FakeFaults::default());
    net.run_for(Duration::from_secs(1));
    assert!(net.converged());
    let sent = run_traffic(&mut net, 20, 4, Some((2, 7)));
    net.assert_total_order(sent);
    let t = &net.nodes[&2].t;
    assert_eq!(t.stats().recoveries, 1, "{:?}", t.stats());
    assert!(t.stats().qp_errors >= 1);
    assert!(net.converged());
}

#[test]
fn a_qp_error_while_idle_is_recovered_too() {
    let mut net = Net::new(4, 1024, 16, 16, FakeFaults::default());
    net.run_for(Duration::from_secs(1));
    assert!(net.converged());
    let qpn = net.nodes[&3].t.local_addr().qpn;
    net.fabric.inject_qp_error(qpn);
    net.run_for(Duration::from_secs(1));
    let sent = run_traffic(&mut net, 10, 3, None);
    net.assert_total_order(sent);
    assert_eq!(net.nodes[&3].t.stats().recoveries, 1);
    assert!(net.converged());
}
