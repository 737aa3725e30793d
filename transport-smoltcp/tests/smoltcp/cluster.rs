//! N nodes, each a `totem_ring::Ring` over its own smoltcp interface and `SmoltcpTransport`,
//! plugged into one in-memory `Switch`, driven by a plain loop in simulated time: the
//! firmware driver loop of the README, once per node per step.

use alloc::boxed::Box;
use alloc::collections::{BTreeSet, VecDeque};
use alloc::vec::Vec;

use bytes::Bytes;
use totem_proto::time::{Duration, Instant};
use totem_proto::{Guarantee, NodeId, ServiceId};
use totem_ring::{Config as RingConfig, Event, Ring, State, Transmit};
use totem_transport::{Transport, TransportError};
use transport_smoltcp::smoltcp::iface::{
    Config as IfaceConfig, Interface, SocketSet, SocketStorage,
};
use transport_smoltcp::smoltcp::socket::udp;
use transport_smoltcp::smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr};
use transport_smoltcp::{Config, Mode, SmoltcpTransport, to_smoltcp_instant};

use super::switch::{Port, Switch};

pub(crate) const GROUP: core::net::Ipv4Addr = core::net::Ipv4Addr::new(239, 192, 0, 1);

pub(crate) fn ip(id: u32) -> core::net::Ipv4Addr {
    core::net::Ipv4Addr::new(10, 0, 0, u8::try_from(id).unwrap())
}

pub(crate) fn mac(id: u32) -> EthernetAddress {
    EthernetAddress([0x02, 0, 0, 0, 0, u8::try_from(id).unwrap()])
}

fn leak<T>(v: Vec<T>) -> &'static mut [T] {
    Box::leak(v.into_boxed_slice())
}

/// UDP socket buffers of `packets` datagrams and `bytes` payload bytes, leaked: the test
/// stands in for firmware `static`s.
pub(crate) fn buffer(packets: usize, bytes: usize) -> udp::PacketBuffer<'static> {
    let meta = leak((0..packets).map(|_| udp::PacketMetadata::EMPTY).collect());
    udp::PacketBuffer::new(meta, leak(alloc::vec![0u8; bytes]))
}

/// One node's smoltcp transport on `switch`, with default-sized buffers.
pub(crate) fn transport(
    switch: &Switch,
    id: u32,
    nodelist: &'static [(NodeId, core::net::Ipv4Addr)],
    mode: Mode,
    tx: udp::PacketBuffer<'static>,
) -> SmoltcpTransport<'static, Port> {
    let mut device = switch.port(mac(id));
    let mut cfg = IfaceConfig::new(HardwareAddress::Ethernet(mac(id)));
    cfg.random_seed = u64::from(id);
    let mut iface = Interface::new(cfg, &mut device, to_smoltcp_instant(Instant::ZERO));
    iface.update_ip_addrs(|a| {
        a.push(IpCidr::new(IpAddress::Ipv4(ip(id)), 24)).unwrap();
    });
    let sockets = SocketSet::new(leak(
        (0..2).map(|_| SocketStorage::EMPTY).collect::<Vec<_>>(),
    ));
    let config = Config::new(NodeId(id), nodelist, mode);
    SmoltcpTransport::new(&config, iface, device, sockets, buffer(64, 64 * 1024), tx).unwrap()
}

pub(crate) fn nodelist(n: u32) -> &'static [(NodeId, core::net::Ipv4Addr)] {
    leak((1..=n).map(|id| (NodeId(id), ip(id))).collect())
}

pub(crate) struct Node {
    pub(crate) ring: Ring,
    pub(crate) transport: SmoltcpTransport<'static, Port>,
    pending: VecDeque<Transmit>,
    pub(crate) delivered: Vec<(NodeId, Bytes)>,
    buf: Vec<u8>,
}

pub(crate) struct Cluster {
    pub(crate) switch: Switch,
    pub(crate) nodes: Vec<Node>,
    pub(crate) now: Instant,
}

/// Simulated time per step while anything is in flight: the "link latency".
const STEP: Duration = Duration::from_micros(200);

impl Cluster {
    pub(crate) fn new(n: u32, mode: Mode) -> Self {
        let switch = Switch::new();
        let list = nodelist(n);
        let nodes = (1..=n)
            .map(|id| {
                let mut cfg = RingConfig::new(NodeId(id), 0x5a17);
                // Short timers in simulated time, as totem-ring's own cluster tests.
                cfg.token = Duration::from_millis(200);
                cfg.join = Duration::from_millis(30);
                cfg.merge = Duration::from_millis(50);
                cfg.token_coefficient = Duration::ZERO;
                Node {
                    ring: Ring::new(&cfg, Instant::ZERO, 0).unwrap(),
                    transport: transport(&switch, id, list, mode, buffer(64, 64 * 1024)),
                    pending: VecDeque::new(),
                    delivered: Vec::new(),
                    buf: alloc::vec![0u8; 65_536],
                }
            })
            .collect();
        Self {
            switch,
            nodes,
            now: Instant::ZERO,
        }
    }

    /// One turn of the driver loop for every node, then time moves on.
    pub(crate) fn step(&mut self) {
        let now = self.now;
        for node in &mut self.nodes {
            node.turn(now);
        }
        let busy = self.switch.busy() || self.nodes.iter().any(|n| !n.pending.is_empty());
        let mut next = now + STEP;
        if !busy {
            // Idle: jump to the earliest deadline (a ring timer, an ARP/IGMP retry).
            let deadline = self
                .nodes
                .iter_mut()
                .filter_map(|n| {
                    let t = n.transport.poll_at(now);
                    match (n.ring.poll_timeout(), t) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    }
                })
                .min();
            if let Some(d) = deadline {
                next = next.max(d);
            }
        }
        self.now = next;
    }

    pub(crate) fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.step();
        }
    }

    /// Runs until `pred` holds, for at most `limit` of simulated time; returns whether it did.
    pub(crate) fn run_until(&mut self, limit: Duration, pred: impl Fn(&Self) -> bool) -> bool {
        let end = self.now + limit;
        while self.now < end {
            if pred(self) {
                return true;
            }
            self.step();
        }
        pred(self)
    }

    /// The nodes at `idx` (0-based) operational in one ring of exactly those nodes.
    pub(crate) fn converged(&self, idx: &[usize]) -> bool {
        let want: Vec<NodeId> = idx.iter().map(|i| self.nodes[*i].ring.node_id()).collect();
        let mut ring_ids = BTreeSet::new();
        for i in idx {
            let r = &self.nodes[*i].ring;
            if r.state() != State::Operational || r.members() != want.as_slice() {
                return false;
            }
            ring_ids.insert(r.ring_id());
        }
        ring_ids.len() == 1
    }

    pub(crate) fn submit(&mut self, idx: usize, payload: &[u8]) {
        let node = &mut self.nodes[idx];
        node.ring
            .submit(
                ServiceId(1),
                Bytes::copy_from_slice(payload),
                Guarantee::Agreed,
            )
            .unwrap();
        node.turn(self.now);
    }
}

impl Node {
    /// The five lines of every driver loop (STYLE.md point 11), for one node.
    fn turn(&mut self, now: Instant) {
        self.transport.poll(now);
        while let Some(meta) = self.transport.recv(&mut self.buf).unwrap() {
            assert!(!meta.truncated);
            self.ring
                .handle_datagram(now, meta.from, &self.buf[..meta.len]);
        }
        if self.ring.poll_timeout().is_some_and(|t| t <= now) {
            self.ring.handle_timeout(now);
        }
        while let Some(ev) = self.ring.poll_event() {
            if let Event::Deliver(d) = ev {
                self.delivered.push((d.sender, d.payload));
            }
        }
        while let Some(t) = self.ring.poll_transmit() {
            self.pending.push_back(t);
        }
        while let Some(t) = self.pending.front() {
            match self.transport.send(t.dest, &t.frame) {
                Err(TransportError::WouldBlock) => break,
                Ok(()) => {
                    self.pending.pop_front();
                }
                Err(e) => panic!("send: {e}"),
            }
        }
        self.transport.poll(now);
    }

    /// Payloads delivered, in delivery order.
    pub(crate) fn payloads(&self) -> Vec<Bytes> {
        self.delivered.iter().map(|(_, p)| p.clone()).collect()
    }
}
