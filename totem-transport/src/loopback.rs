//! An in-memory network: a [`LoopbackHub`] and the [`LoopbackTransport`] endpoints attached
//! to it, for unit tests of anything that drives a [`Transport`] without sockets or threads.
//!
//! Behaviour, chosen to look like UDP on one LAN and nothing more clever:
//!
//! * **Delivery is synchronous and deterministic.** `send` places the datagram in the
//!   receivers' queues before it returns; endpoints are visited in node-id order (a
//!   `BTreeMap`), so the same calls always produce the same queues.
//! * **Multicast** reaches every other attached endpoint whose link from the sender is up.
//!   Whether the sender also receives its own multicast is the hub option
//!   [`LoopbackConfig::multicast_loop`], **off by default**: a sender does not hear itself,
//!   so a ring that needs its own frames must keep them from its send path and cannot lean
//!   on the network by accident. Note that corosync's transports all loop back (totemudp
//!   sets `IP_MULTICAST_LOOP`, totemknet gives the local node a loopback link, totemudpu
//!   sends to every member including itself); set the option to model them, and to test that
//!   a driver tolerates receiving its own frames.
//! * **Unicast** to a node reaches that node only; unicast to oneself always arrives (as a
//!   datagram to one's own address does).
//! * **Bounded queues.** Each endpoint holds at most [`LoopbackConfig::queue_capacity`]
//!   datagrams. A datagram arriving at a full queue is dropped and counted in
//!   [`LoopbackStats::queue_overflow`], as a full socket receive buffer drops and counts in
//!   `RcvbufErrors`. The sender is not told: that is what UDP does, and what the ring's
//!   retransmission exists for.
//! * **Links** can be cut per direction or by partition, so tests can split and merge rings.
//!   A datagram over a cut link is dropped and counted in [`LoopbackStats::link_down`] at the
//!   would-be receiver. A node's link to itself is never cut.
//! * **Known nodes.** A node becomes known when it first attaches and stays known after it
//!   detaches (a static node list). Unicast to a known node without an endpoint is lost and
//!   counted in the sender's [`LoopbackStats::unreachable`]; unicast to a node never seen is
//!   [`TransportError::UnknownNode`].
//!
//! Single-threaded by design: the hub is an `Rc<RefCell<..>>` shared by its endpoints, which
//! fits the ring's one-thread-per-node driver and keeps the crate free of `Arc` (small MCUs
//! lack atomic CAS). No `RefCell` borrow outlives one method call, so the borrows never clash.

use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::fmt;

use totem_proto::NodeId;

use crate::{Dest, MAX_UDP_PAYLOAD_V4, PeerAddr, RecvMeta, Transport, TransportError};

/// Settings of a [`LoopbackHub`], fixed when it is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LoopbackConfig {
    /// Largest frame an endpoint accepts. Default [`MAX_UDP_PAYLOAD_V4`] (65 507), UDP's limit
    /// over IPv4, so tests see the same `TooLarge` boundary as production.
    pub max_datagram: usize,
    /// Datagrams each endpoint's receive queue holds before it drops. Default 1024.
    pub queue_capacity: usize,
    /// Whether a multicast also lands in the sender's own queue. Default `false` (see the
    /// [module docs](self) for why).
    pub multicast_loop: bool,
}

impl Default for LoopbackConfig {
    fn default() -> Self {
        Self {
            max_datagram: MAX_UDP_PAYLOAD_V4,
            queue_capacity: 1024,
            multicast_loop: false,
        }
    }
}

/// Counters of one node on a [`LoopbackHub`]. Cumulative over the node's whole life on the
/// hub, across detach and re-attach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LoopbackStats {
    /// Frames this node's `send` accepted (a multicast counts once).
    pub sent: u64,
    /// Datagrams this node's `recv` handed out.
    pub received: u64,
    /// Of those, datagrams longer than the buffer they were read into.
    pub truncated: u64,
    /// Datagrams for this node dropped because its queue was full.
    pub queue_overflow: u64,
    /// Datagrams for this node dropped because the link from their sender was cut.
    pub link_down: u64,
    /// Unicasts from this node to a known node that had no endpoint attached.
    pub unreachable: u64,
}

/// Why [`LoopbackHub::attach`] refused.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum AttachError {
    /// Node id 0 is reserved (see [`NodeId`]).
    InvalidNode,
    /// An endpoint with this id is already attached; drop or detach it first.
    InUse(NodeId),
}

impl fmt::Display for AttachError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidNode => f.write_str("node id 0 is reserved"),
            Self::InUse(node) => write!(f, "node {node} is already attached to the hub"),
        }
    }
}

impl core::error::Error for AttachError {}

/// A datagram in a queue: the payload is shared, so a multicast to N endpoints is one
/// allocation, not N.
#[derive(Debug)]
struct Queued {
    from: NodeId,
    data: Rc<[u8]>,
}

/// Everything the hub knows about one node id.
#[derive(Debug, Default)]
struct Port {
    /// `Some(generation)` while an endpoint is attached. A detached-then-reattached node gets
    /// a new generation, so a stale endpoint object can tell it has been closed.
    attached: Option<u64>,
    queue: VecDeque<Queued>,
    stats: LoopbackStats,
}

#[derive(Debug)]
struct HubState {
    config: LoopbackConfig,
    ports: BTreeMap<NodeId, Port>,
    /// Cut directed links `(from, to)`. A set of the exceptions rather than a matrix of
    /// links, because a healthy network (the common case) is then an empty set.
    cut: BTreeSet<(NodeId, NodeId)>,
    next_generation: u64,
}

impl Default for HubState {
    fn default() -> Self {
        Self::new(LoopbackConfig::default())
    }
}

impl HubState {
    fn new(config: LoopbackConfig) -> Self {
        Self {
            config,
            ports: BTreeMap::new(),
            cut: BTreeSet::new(),
            next_generation: 1,
        }
    }

    fn link_up(&self, from: NodeId, to: NodeId) -> bool {
        from == to || !self.cut.contains(&(from, to))
    }

    /// Queues `data` for `to` if the link is up and there is room; counts the drop otherwise.
    /// `to` must be an attached port.
    fn deliver(&mut self, from: NodeId, to: NodeId, data: &Rc<[u8]>) {
        let up = self.link_up(from, to);
        let capacity = self.config.queue_capacity;
        let Some(port) = self.ports.get_mut(&to) else {
            return;
        };
        if !up {
            port.stats.link_down += 1;
            trace!("loopback: {} -> {} dropped, link down", from, to);
        } else if port.queue.len() >= capacity {
            port.stats.queue_overflow += 1;
            trace!("loopback: {} -> {} dropped, queue full", from, to);
        } else {
            port.queue.push_back(Queued {
                from,
                data: Rc::clone(data),
            });
        }
    }

    /// The port of an endpoint still attached with `generation`, or `Closed`.
    fn port_mut(&mut self, node: NodeId, generation: u64) -> Result<&mut Port, TransportError> {
        match self.ports.get_mut(&node) {
            Some(port) if port.attached == Some(generation) => Ok(port),
            _ => Err(TransportError::Closed),
        }
    }
}

/// An in-memory network that [`LoopbackTransport`] endpoints attach to. See the
/// [module docs](self) for the delivery rules.
///
/// Cloning the hub clones the handle, not the network: every clone controls the same links
/// and sees the same endpoints. Methods take `&self` so a test can cut links while endpoints
/// are borrowed elsewhere.
#[derive(Debug, Clone, Default)]
pub struct LoopbackHub {
    state: Rc<RefCell<HubState>>,
}

impl LoopbackHub {
    /// An empty network with `config`.
    pub fn new(config: LoopbackConfig) -> Self {
        Self {
            state: Rc::new(RefCell::new(HubState::new(config))),
        }
    }

    /// The hub's settings.
    pub fn config(&self) -> LoopbackConfig {
        self.state.borrow().config
    }

    /// Attaches an endpoint for `node`; the node becomes known to the hub for good.
    ///
    /// Re-attaching a node that was detached (or whose endpoint was dropped) models a restart:
    /// the new endpoint starts with an empty queue, the old object (if still around) is closed.
    ///
    /// # Errors
    ///
    /// [`AttachError::InvalidNode`] for node 0, [`AttachError::InUse`] if an endpoint for
    /// `node` is attached already.
    pub fn attach(&self, node: NodeId) -> Result<LoopbackTransport, AttachError> {
        if !node.is_valid() {
            return Err(AttachError::InvalidNode);
        }
        let mut state = self.state.borrow_mut();
        let generation = state.next_generation;
        let port = state.ports.entry(node).or_default();
        if port.attached.is_some() {
            return Err(AttachError::InUse(node));
        }
        port.attached = Some(generation);
        port.queue.clear();
        state.next_generation += 1;
        Ok(LoopbackTransport {
            hub: Rc::clone(&self.state),
            node,
            generation,
        })
    }

    /// Detaches `node`'s endpoint, as if the process crashed: its queued datagrams are
    /// discarded and the endpoint object returns [`TransportError::Closed`] from then on.
    /// Returns whether an endpoint was attached.
    pub fn detach(&self, node: NodeId) -> bool {
        let mut state = self.state.borrow_mut();
        match state.ports.get_mut(&node) {
            Some(port) if port.attached.is_some() => {
                port.attached = None;
                port.queue.clear();
                true
            }
            _ => false,
        }
    }

    /// Whether an endpoint for `node` is attached.
    pub fn is_attached(&self, node: NodeId) -> bool {
        self.state
            .borrow()
            .ports
            .get(&node)
            .is_some_and(|p| p.attached.is_some())
    }

    /// Brings the link between `a` and `b` up or down, in both directions.
    pub fn set_link(&self, a: NodeId, b: NodeId, up: bool) {
        self.set_link_directed(a, b, up);
        self.set_link_directed(b, a, up);
    }

    /// Brings the one-way link `from` → `to` up or down, for asymmetric faults (a node that
    /// hears the ring but is not heard, the case corosync's `fail_recv_const` exists for).
    /// A node's link to itself cannot be cut; such a call is ignored.
    pub fn set_link_directed(&self, from: NodeId, to: NodeId, up: bool) {
        if from == to {
            return;
        }
        let mut state = self.state.borrow_mut();
        if up {
            state.cut.remove(&(from, to));
        } else {
            state.cut.insert((from, to));
        }
    }

    /// Whether a datagram from `from` would currently reach `to` (ignoring queue space).
    pub fn link_up(&self, from: NodeId, to: NodeId) -> bool {
        self.state.borrow().link_up(from, to)
    }

    /// Splits the network: heals every link, then cuts every link between nodes of different
    /// groups in both directions. Links of nodes named in no group are left up, and a node
    /// named in two groups ends up cut from both.
    pub fn partition(&self, groups: &[&[NodeId]]) {
        self.heal();
        for (i, group) in groups.iter().enumerate() {
            for other in &groups[i + 1..] {
                for &a in *group {
                    for &b in *other {
                        self.set_link(a, b, false);
                    }
                }
            }
        }
    }

    /// Brings every link up.
    pub fn heal(&self) {
        self.state.borrow_mut().cut.clear();
    }

    /// `node`'s counters, if the node is known to the hub.
    pub fn stats(&self, node: NodeId) -> Option<LoopbackStats> {
        self.state.borrow().ports.get(&node).map(|p| p.stats)
    }

    /// Datagrams waiting in `node`'s queue (0 for an unknown or detached node).
    pub fn pending(&self, node: NodeId) -> usize {
        self.state
            .borrow()
            .ports
            .get(&node)
            .map_or(0, |p| p.queue.len())
    }
}

/// One node's endpoint on a [`LoopbackHub`], created by [`LoopbackHub::attach`].
///
/// Receives report the sender as [`PeerAddr::Node`]: the hub knows the mapping exactly.
/// Dropping the endpoint detaches it.
#[derive(Debug)]
pub struct LoopbackTransport {
    hub: Rc<RefCell<HubState>>,
    node: NodeId,
    generation: u64,
}

impl LoopbackTransport {
    /// The node id this endpoint was attached with.
    pub fn node(&self) -> NodeId {
        self.node
    }

    /// This node's counters.
    pub fn stats(&self) -> LoopbackStats {
        self.hub
            .borrow()
            .ports
            .get(&self.node)
            .map(|p| p.stats)
            .unwrap_or_default()
    }

    /// Datagrams waiting to be received (0 once closed).
    pub fn pending(&self) -> usize {
        let state = self.hub.borrow();
        match state.ports.get(&self.node) {
            Some(port) if port.attached == Some(self.generation) => port.queue.len(),
            _ => 0,
        }
    }
}

impl Transport for LoopbackTransport {
    fn max_datagram(&self) -> usize {
        self.hub.borrow().config.max_datagram
    }

    fn send(&mut self, dest: Dest, frame: &[u8]) -> Result<(), TransportError> {
        let mut state = self.hub.borrow_mut();
        // Closed is checked first: a crashed node's send must not reach anyone.
        state.port_mut(self.node, self.generation)?;
        let max = state.config.max_datagram;
        if frame.len() > max {
            return Err(TransportError::TooLarge {
                len: frame.len(),
                max,
            });
        }
        let data: Rc<[u8]> = Rc::from(frame);
        match dest {
            Dest::Multicast => {
                // Collected first because delivering needs the map mutably; node-id order
                // makes the overflow pattern under load reproducible.
                let include_self = state.config.multicast_loop;
                let targets: Vec<NodeId> = state
                    .ports
                    .iter()
                    .filter(|(id, port)| {
                        port.attached.is_some() && (include_self || **id != self.node)
                    })
                    .map(|(id, _)| *id)
                    .collect();
                for to in targets {
                    state.deliver(self.node, to, &data);
                }
            }
            Dest::Node(to) => match state.ports.get(&to) {
                None => return Err(TransportError::UnknownNode(to)),
                Some(port) if port.attached.is_none() => {
                    // Known but down: UDP would send into the void without an error.
                    state
                        .port_mut(self.node, self.generation)?
                        .stats
                        .unreachable += 1;
                    trace!("loopback: {} -> {} unreachable, no endpoint", self.node, to);
                }
                Some(_) => state.deliver(self.node, to, &data),
            },
        }
        state.port_mut(self.node, self.generation)?.stats.sent += 1;
        Ok(())
    }

    fn recv(&mut self, buf: &mut [u8]) -> Result<Option<RecvMeta>, TransportError> {
        let mut state = self.hub.borrow_mut();
        let port = state.port_mut(self.node, self.generation)?;
        let Some(Queued { from, data }) = port.queue.pop_front() else {
            return Ok(None);
        };
        // Copy what fits and discard the rest, as recvmsg does with MSG_TRUNC semantics.
        let len = data.len().min(buf.len());
        buf[..len].copy_from_slice(&data[..len]);
        let truncated = len < data.len();
        port.stats.received += 1;
        if truncated {
            port.stats.truncated += 1;
        }
        Ok(Some(
            RecvMeta::new(len, PeerAddr::Node(from)).with_truncated(truncated),
        ))
    }
}

impl Drop for LoopbackTransport {
    fn drop(&mut self) {
        // Only if still ours: after a detach and re-attach the port belongs to a newer
        // endpoint, which a stale object being dropped must not disconnect.
        let mut state = self.hub.borrow_mut();
        if let Some(port) = state.ports.get_mut(&self.node)
            && port.attached == Some(self.generation)
        {
            port.attached = None;
            port.queue.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Transmit;
    use alloc::vec;

    const A: NodeId = NodeId(1);
    const B: NodeId = NodeId(2);
    const C: NodeId = NodeId(3);

    fn recv_all(t: &mut LoopbackTransport) -> Vec<(PeerAddr, Vec<u8>)> {
        let mut out = Vec::new();
        let mut buf = [0u8; 64];
        while let Some(meta) = t.recv(&mut buf).unwrap() {
            out.push((meta.from, buf[..meta.len].to_vec()));
        }
        out
    }

    fn three(config: LoopbackConfig) -> (LoopbackHub, [LoopbackTransport; 3]) {
        let hub = LoopbackHub::new(config);
        let eps = [
            hub.attach(A).unwrap(),
            hub.attach(B).unwrap(),
            hub.attach(C).unwrap(),
        ];
        (hub, eps)
    }

    #[test]
    fn multicast_reaches_every_other_endpoint_but_not_the_sender() {
        let (_hub, [mut a, mut b, mut c]) = three(LoopbackConfig::default());
        a.send(Dest::Multicast, b"hello").unwrap();
        assert_eq!(
            recv_all(&mut b),
            vec![(PeerAddr::Node(A), b"hello".to_vec())]
        );
        assert_eq!(
            recv_all(&mut c),
            vec![(PeerAddr::Node(A), b"hello".to_vec())]
        );
        assert!(recv_all(&mut a).is_empty());
        assert_eq!(a.stats().sent, 1);
        assert_eq!(b.stats().received, 1);
    }

    #[test]
    fn multicast_loop_option_delivers_to_the_sender_too() {
        let config = LoopbackConfig {
            multicast_loop: true,
            ..LoopbackConfig::default()
        };
        let (_hub, [mut a, mut b, _c]) = three(config);
        a.send(Dest::Multicast, b"m").unwrap();
        assert_eq!(recv_all(&mut a), vec![(PeerAddr::Node(A), b"m".to_vec())]);
        assert_eq!(recv_all(&mut b).len(), 1);
    }

    #[test]
    fn unicast_reaches_only_its_destination_in_send_order() {
        let (_hub, [mut a, mut b, mut c]) = three(LoopbackConfig::default());
        a.send(Dest::Node(B), b"1").unwrap();
        c.send(Dest::Node(B), b"2").unwrap();
        a.send(Dest::Node(A), b"self").unwrap();
        assert_eq!(
            recv_all(&mut b),
            vec![
                (PeerAddr::Node(A), b"1".to_vec()),
                (PeerAddr::Node(C), b"2".to_vec())
            ]
        );
        assert!(recv_all(&mut c).is_empty());
        assert_eq!(
            recv_all(&mut a),
            vec![(PeerAddr::Node(A), b"self".to_vec())]
        );
    }

    #[test]
    fn unknown_and_unreachable_nodes() {
        let (hub, [mut a, b, _c]) = three(LoopbackConfig::default());
        assert_eq!(
            a.send(Dest::Node(NodeId(9)), b"x"),
            Err(TransportError::UnknownNode(NodeId(9)))
        );
        assert_eq!(
            a.send(Dest::Node(NodeId(0)), b"x"),
            Err(TransportError::UnknownNode(NodeId(0)))
        );
        // A known node that went away: the send "succeeds" and is counted, as UDP would.
        drop(b);
        assert!(!hub.is_attached(B));
        a.send(Dest::Node(B), b"x").unwrap();
        assert_eq!(a.stats().unreachable, 1);
        assert_eq!(a.stats().sent, 1);
    }

    #[test]
    fn partition_cuts_between_groups_and_heal_restores() {
        let (hub, [mut a, mut b, mut c]) = three(LoopbackConfig::default());
        hub.partition(&[&[A, B], &[C]]);
        assert!(hub.link_up(A, B) && !hub.link_up(A, C) && !hub.link_up(C, B));
        a.send(Dest::Multicast, b"ab").unwrap();
        c.send(Dest::Multicast, b"c").unwrap();
        assert_eq!(recv_all(&mut b), vec![(PeerAddr::Node(A), b"ab".to_vec())]);
        assert!(recv_all(&mut c).is_empty());
        assert!(recv_all(&mut a).is_empty());
        assert_eq!(c.stats().link_down, 1);
        assert_eq!(b.stats().link_down, 1);
        hub.heal();
        c.send(Dest::Multicast, b"c2").unwrap();
        assert_eq!(recv_all(&mut a), vec![(PeerAddr::Node(C), b"c2".to_vec())]);
    }

    #[test]
    fn directed_link_cut_is_one_way() {
        let (hub, [mut a, mut b, _c]) = three(LoopbackConfig::default());
        hub.set_link_directed(A, B, false);
        a.send(Dest::Node(B), b"lost").unwrap();
        b.send(Dest::Node(A), b"heard").unwrap();
        assert!(recv_all(&mut b).is_empty());
        assert_eq!(
            recv_all(&mut a),
            vec![(PeerAddr::Node(B), b"heard".to_vec())]
        );
        // Self-links cannot be cut.
        hub.set_link(A, A, false);
        assert!(hub.link_up(A, A));
        hub.set_link(A, B, true);
        assert!(hub.link_up(A, B));
    }

    #[test]
    fn full_queue_drops_and_counts_without_telling_the_sender() {
        let config = LoopbackConfig {
            queue_capacity: 2,
            ..LoopbackConfig::default()
        };
        let (hub, [mut a, mut b, _c]) = three(config);
        for i in 0..5u8 {
            a.send(Dest::Node(B), &[i]).unwrap();
        }
        assert_eq!(hub.pending(B), 2);
        assert_eq!(b.stats().queue_overflow, 3);
        // The oldest datagrams were kept (tail drop, like a socket buffer).
        let got: Vec<Vec<u8>> = recv_all(&mut b).into_iter().map(|(_, d)| d).collect();
        assert_eq!(got, vec![vec![0], vec![1]]);
        // Room again after draining.
        a.send(Dest::Node(B), b"again").unwrap();
        assert_eq!(b.pending(), 1);
    }

    #[test]
    fn too_large_is_refused_at_the_configured_maximum() {
        let config = LoopbackConfig {
            max_datagram: 4,
            ..LoopbackConfig::default()
        };
        let (_hub, [mut a, _b, _c]) = three(config);
        assert_eq!(a.max_datagram(), 4);
        a.send(Dest::Multicast, &[0; 4]).unwrap();
        assert_eq!(
            a.send(Dest::Multicast, &[0; 5]),
            Err(TransportError::TooLarge { len: 5, max: 4 })
        );
        assert_eq!(LoopbackHub::default().config().max_datagram, 65_507);
    }

    #[test]
    fn small_and_empty_buffers_truncate_without_panicking() {
        let (_hub, [mut a, mut b, _c]) = three(LoopbackConfig::default());
        a.send(Dest::Node(B), b"abcdef").unwrap();
        a.send(Dest::Node(B), b"xyz").unwrap();
        a.send(Dest::Node(B), b"").unwrap();
        let meta = b.recv(&mut []).unwrap().unwrap();
        assert_eq!((meta.len, meta.truncated), (0, true));
        let mut two = [0u8; 2];
        let meta = b.recv(&mut two).unwrap().unwrap();
        assert_eq!((meta.len, meta.truncated, two), (2, true, *b"xy"));
        // An empty datagram into an empty buffer is whole, not truncated.
        let meta = b.recv(&mut []).unwrap().unwrap();
        assert_eq!((meta.len, meta.truncated), (0, false));
        assert_eq!(b.stats().truncated, 2);
        assert_eq!(b.recv(&mut two), Ok(None));
    }

    #[test]
    fn attach_rules_detach_and_restart() {
        let hub = LoopbackHub::default();
        assert_eq!(hub.attach(NodeId(0)).unwrap_err(), AttachError::InvalidNode);
        let mut a = hub.attach(A).unwrap();
        let mut b = hub.attach(B).unwrap();
        assert_eq!(hub.attach(A).unwrap_err(), AttachError::InUse(A));
        b.send(Dest::Node(A), b"before crash").unwrap();
        assert!(hub.detach(A));
        assert!(!hub.detach(A));
        assert_eq!(a.send(Dest::Multicast, b"x"), Err(TransportError::Closed));
        assert_eq!(a.recv(&mut [0; 8]), Err(TransportError::Closed));
        assert_eq!(a.pending(), 0);
        // Restart: a fresh endpoint with an empty queue; dropping the stale object leaves it.
        let mut a2 = hub.attach(A).unwrap();
        drop(a);
        assert!(hub.is_attached(A));
        b.send(Dest::Node(A), b"after").unwrap();
        assert_eq!(
            recv_all(&mut a2),
            vec![(PeerAddr::Node(B), b"after".to_vec())]
        );
        assert_eq!(a2.node(), A);
        assert_eq!(hub.stats(A).unwrap().received, 1);
        assert_eq!(hub.stats(NodeId(9)), None);
    }

    #[test]
    fn batch_defaults_work_over_loopback() {
        let (_hub, [mut a, mut b, _c]) = three(LoopbackConfig::default());
        let frames = [
            Transmit::new(Dest::Node(B), b"1"),
            Transmit::new(Dest::Multicast, b"2"),
        ];
        assert_eq!(a.send_batch(&frames), (2, None));
        let (mut x, mut y, mut z) = ([0u8; 4], [0u8; 4], [0u8; 4]);
        let mut bufs: [&mut [u8]; 3] = [&mut x, &mut y, &mut z];
        let mut metas = [RecvMeta::default(); 3];
        assert_eq!(b.recv_batch(&mut bufs, &mut metas), (2, None));
        assert_eq!((&bufs[0][..1], &bufs[1][..1]), (&b"1"[..], &b"2"[..]));
    }

    #[test]
    fn same_calls_same_queues() {
        // Determinism: two hubs driven identically end in identical states.
        let run = || {
            let config = LoopbackConfig {
                queue_capacity: 3,
                ..LoopbackConfig::default()
            };
            let (hub, [mut a, mut b, mut c]) = three(config);
            hub.set_link(B, C, false);
            for i in 0..6u8 {
                a.send(Dest::Multicast, &[i]).unwrap();
                c.send(Dest::Multicast, &[100 + i]).unwrap();
            }
            (
                recv_all(&mut a),
                recv_all(&mut b),
                recv_all(&mut c),
                hub.stats(B),
            )
        };
        assert_eq!(run(), run());
    }
}
