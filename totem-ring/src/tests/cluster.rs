//! The in-memory cluster driver used by the protocol tests.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;

use bytes::Bytes;
use totem_proto::time::{Duration, Instant};
use totem_proto::{Guarantee, NodeId, ServiceId};

use crate::{Config, ConfigurationKind, Dest, Event, PeerAddr, Ring};

/// A delivered message as the tests see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Got {
    pub(crate) sender: NodeId,
    pub(crate) payload: Bytes,
    pub(crate) guarantee: Guarantee,
}

pub(crate) struct Cluster {
    pub(crate) now: Instant,
    pub(crate) rings: BTreeMap<NodeId, Ring>,
    /// In flight: (arrival, sequence for a stable order) → (to, from, frame).
    wire: BTreeMap<(Instant, u64), (NodeId, NodeId, Bytes)>,
    next_id: u64,
    pub(crate) latency: Duration,
    /// Directed links that are down.
    cut: BTreeSet<(NodeId, NodeId)>,
    pub(crate) delivered: BTreeMap<NodeId, Vec<Got>>,
    pub(crate) configs: BTreeMap<NodeId, Vec<crate::Configuration>>,
    pub(crate) ring_seqs: BTreeMap<NodeId, u64>,
    /// Drop every MCAST frame with this seq on this ring seq on its way to this node.
    pub(crate) black_hole: Option<(NodeId, u64, u64)>,
    /// Drop the next ORF token on its way to this node.
    pub(crate) drop_token_to: Option<NodeId>,
}

pub(crate) fn config(id: u32) -> Config {
    let mut c = Config::new(NodeId(id), 0x7e57);
    // Short timers in simulated time: the tests are about order, not about seconds.
    c.token = Duration::from_millis(200);
    c.join = Duration::from_millis(30);
    c.merge = Duration::from_millis(50);
    c.token_coefficient = Duration::ZERO;
    c
}

impl Cluster {
    pub(crate) fn new(n: u32) -> Self {
        Self::with(n, |_| {})
    }

    /// A cluster whose every node's config passes through `tweak`.
    pub(crate) fn with(n: u32, tweak: impl Fn(&mut Config)) -> Self {
        let mut c = Self {
            now: Instant::ZERO,
            rings: BTreeMap::new(),
            wire: BTreeMap::new(),
            next_id: 0,
            latency: Duration::from_micros(100),
            cut: BTreeSet::new(),
            delivered: BTreeMap::new(),
            configs: BTreeMap::new(),
            ring_seqs: BTreeMap::new(),
            black_hole: None,
            drop_token_to: None,
        };
        for id in 1..=n {
            let mut cfg = config(id);
            tweak(&mut cfg);
            c.add(cfg);
        }
        c
    }

    pub(crate) fn add(&mut self, cfg: Config) {
        let id = cfg.node_id;
        let last = self.ring_seqs.get(&id).copied().unwrap_or(0);
        let ring = Ring::new(&cfg, self.now, last).unwrap();
        self.rings.insert(id, ring);
        self.drain(id);
    }

    /// Node `id` leaves cleanly; its leave goes on the wire.
    pub(crate) fn leave(&mut self, id: u32) {
        let now = self.now;
        if let Some(r) = self.rings.get_mut(&NodeId(id)) {
            r.leave(now);
        }
        self.drain(NodeId(id));
    }

    pub(crate) fn crash(&mut self, id: u32) {
        self.rings.remove(&NodeId(id));
    }

    pub(crate) fn ids(&self) -> Vec<NodeId> {
        self.rings.keys().copied().collect()
    }

    pub(crate) fn set_link(&mut self, a: u32, b: u32, up: bool) {
        for pair in [(NodeId(a), NodeId(b)), (NodeId(b), NodeId(a))] {
            if up {
                self.cut.remove(&pair);
            } else {
                self.cut.insert(pair);
            }
        }
    }

    /// Splits the nodes into groups that cannot reach each other.
    pub(crate) fn partition(&mut self, groups: &[&[u32]]) {
        self.cut.clear();
        for (i, g) in groups.iter().enumerate() {
            for (j, h) in groups.iter().enumerate() {
                if i != j {
                    for a in g.iter() {
                        for b in h.iter() {
                            self.cut.insert((NodeId(*a), NodeId(*b)));
                        }
                    }
                }
            }
        }
    }

    pub(crate) fn heal(&mut self) {
        self.cut.clear();
    }

    fn send(&mut self, from: NodeId, to: NodeId, frame: Bytes) {
        if self.cut.contains(&(from, to)) || from == to {
            return;
        }
        if let Some((victim, ring_seq, seq)) = self.black_hole
            && victim == to
            && let Ok(totem_proto::Frame {
                body: totem_proto::Body::Mcast(m),
                ..
            }) = totem_proto::Frame::parse(&frame)
            && m.ring_id().seq == ring_seq
            && m.seq() == seq
        {
            return;
        }
        if self.drop_token_to == Some(to)
            && let Ok(totem_proto::Frame {
                body: totem_proto::Body::OrfToken(_),
                ..
            }) = totem_proto::Frame::parse(&frame)
        {
            self.drop_token_to = None;
            return;
        }
        self.next_id += 1;
        self.wire
            .insert((self.now + self.latency, self.next_id), (to, from, frame));
    }

    pub(crate) fn drain(&mut self, id: NodeId) {
        let Some(ring) = self.rings.get_mut(&id) else {
            return;
        };
        let mut out = Vec::new();
        while let Some(ev) = ring.poll_event() {
            match ev {
                Event::Deliver(d) => self.delivered.entry(id).or_default().push(Got {
                    sender: d.sender,
                    payload: d.payload,
                    guarantee: d.guarantee,
                }),
                Event::Configuration(c) => self.configs.entry(id).or_default().push(c),
                Event::RingSeqUsed(s) => {
                    self.ring_seqs.insert(id, s);
                }
            }
        }
        while let Some(t) = ring.poll_transmit() {
            out.push(t);
        }
        let peers = self.ids();
        for t in out {
            match t.dest {
                Dest::Multicast => {
                    for p in &peers {
                        self.send(id, *p, t.frame.clone());
                    }
                }
                Dest::Node(to) => self.send(id, to, t.frame),
            }
        }
    }

    /// Advances to the next event (a datagram or a timer); false if nothing is pending.
    pub(crate) fn step(&mut self) -> bool {
        let next_wire = self.wire.keys().next().map(|k| k.0);
        let next_timer = self
            .rings
            .iter()
            .filter_map(|(id, r)| r.poll_timeout().map(|t| (t, *id)))
            .min();
        match (next_wire, next_timer) {
            (Some(w), Some((t, _))) if w <= t => self.deliver_one(),
            (Some(_), None) => self.deliver_one(),
            (_, Some((t, id))) => {
                self.now = self.now.max(t);
                if let Some(r) = self.rings.get_mut(&id) {
                    r.handle_timeout(self.now);
                }
                self.drain(id);
            }
            (None, None) => return false,
        }
        true
    }

    fn deliver_one(&mut self) {
        let Some(((at, _), (to, from, frame))) = self.wire.pop_first() else {
            return;
        };
        self.now = self.now.max(at);
        if let Some(r) = self.rings.get_mut(&to) {
            r.handle_datagram(self.now, PeerAddr::Node(from), &frame);
            self.drain(to);
        }
    }

    /// Runs for `d` of simulated time.
    pub(crate) fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        while self.next_event().is_some_and(|t| t <= end) {
            self.step();
        }
        self.now = end;
    }

    fn next_event(&self) -> Option<Instant> {
        let w = self.wire.keys().next().map(|k| k.0);
        let t = self.rings.values().filter_map(Ring::poll_timeout).min();
        match (w, t) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub(crate) fn submit(&mut self, id: u32, payload: &[u8], g: Guarantee) {
        let r = self.rings.get_mut(&NodeId(id)).unwrap();
        r.submit(ServiceId(1), Bytes::copy_from_slice(payload), g)
            .unwrap();
        self.drain(NodeId(id));
    }

    /// Every live node operational in one ring with exactly `members`.
    pub(crate) fn converged(&self, members: &[u32]) -> bool {
        let want: Vec<NodeId> = members.iter().map(|m| NodeId(*m)).collect();
        let mut ring_ids = BTreeSet::new();
        for id in &want {
            let Some(r) = self.rings.get(id) else {
                return false;
            };
            if r.state() != crate::State::Operational || r.members() != want.as_slice() {
                return false;
            }
            ring_ids.insert(r.ring_id());
        }
        ring_ids.len() == 1
    }

    pub(crate) fn last_regular(&self, id: u32) -> Option<&crate::Configuration> {
        self.configs
            .get(&NodeId(id))?
            .iter()
            .rev()
            .find(|c| c.kind == ConfigurationKind::Regular)
    }

    pub(crate) fn payloads(&self, id: u32) -> Vec<Bytes> {
        self.delivered
            .get(&NodeId(id))
            .map(|v| v.iter().map(|g| g.payload.clone()).collect())
            .unwrap_or_default()
    }
}
