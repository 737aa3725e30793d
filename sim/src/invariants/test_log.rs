//! Hand-made event logs for the property modules' unit tests: a few lines build the
//! configurations, submissions and deliveries of a scenario, with `left`/`joined` and the
//! persisted ring seq filled in as a correct ring would, so each test only states what it
//! breaks.

use alloc::collections::BTreeMap;

use bytes::Bytes;
use totem_proto::time::{Duration, Instant};
use totem_proto::{Guarantee, NodeId, RingId, ServiceId};
use totem_ring::{Configuration, ConfigurationKind, Delivery, Event};

use super::{End, InvariantChecker, LivenessOutcome, Proc, Property};
use crate::payload::{self, MsgId};

/// Payload length of every test message.
pub(crate) const LEN: usize = 64;

#[derive(Debug, Default)]
pub(crate) struct Log {
    pub(crate) c: InvariantChecker,
    now: u64,
    inc: BTreeMap<u32, u32>,
    counter: BTreeMap<u32, u64>,
    /// Each node's last regular configuration: ring and members.
    regular: BTreeMap<u32, (RingId, Vec<u32>)>,
    /// Each node's last transitional members.
    trans: BTreeMap<u32, Vec<u32>>,
}

fn ids(v: &[u32]) -> Vec<NodeId> {
    v.iter().map(|n| NodeId(*n)).collect()
}

fn minus(a: &[u32], b: &[u32]) -> Vec<u32> {
    a.iter().filter(|x| !b.contains(x)).copied().collect()
}

impl Log {
    pub(crate) fn new(nodes: &[u32]) -> Self {
        let mut l = Self::default();
        for n in nodes {
            let now = l.tick();
            l.c.started(now, Proc::new(*n, 0));
        }
        l
    }

    fn tick(&mut self) -> Instant {
        self.now += 1000;
        Instant::from_micros(self.now)
    }

    pub(crate) fn proc(&self, n: u32) -> Proc {
        Proc::new(n, self.inc.get(&n).copied().unwrap_or(0))
    }

    pub(crate) fn event(&mut self, n: u32, e: &Event) {
        let now = self.tick();
        let p = self.proc(n);
        self.c.event(now, p, e);
    }

    /// A configuration event with `left`/`joined` as a correct ring computes them.
    pub(crate) fn conf(&mut self, n: u32, kind: ConfigurationKind, ring: RingId, members: &[u32]) {
        let (left, joined) = match kind {
            ConfigurationKind::Transitional => {
                let old = self
                    .regular
                    .get(&n)
                    .map(|r| r.1.clone())
                    .unwrap_or_else(|| vec![n]);
                self.trans.insert(n, members.to_vec());
                (minus(&old, members), Vec::new())
            }
            ConfigurationKind::Regular => {
                let t = self.trans.get(&n).cloned().unwrap_or_default();
                self.regular.insert(n, (ring, members.to_vec()));
                (Vec::new(), minus(members, &t))
            }
        };
        let c = Configuration {
            kind,
            ring_id: ring,
            members: ids(members),
            left: ids(&left),
            joined: ids(&joined),
        };
        self.event(n, &Event::Configuration(c));
    }

    /// Node `n` persists the ring's seq, then installs the transitional then the regular
    /// configuration of `ring`.
    pub(crate) fn install(&mut self, n: u32, ring: RingId, trans: &[u32], members: &[u32]) {
        self.begin_install(n, ring, trans);
        self.end_install(n, ring, members);
    }

    /// The first half of [`install`](Self::install): persist, then the transitional
    /// configuration (old-ring messages may be delivered before the second half).
    pub(crate) fn begin_install(&mut self, n: u32, ring: RingId, trans: &[u32]) {
        self.event(n, &Event::RingSeqUsed(ring.seq));
        self.conf(n, ConfigurationKind::Transitional, ring, trans);
    }

    /// The second half of [`install`](Self::install): the regular configuration.
    pub(crate) fn end_install(&mut self, n: u32, ring: RingId, members: &[u32]) {
        self.conf(n, ConfigurationKind::Regular, ring, members);
    }

    /// Every node of `members` installs the ring (lowest member, `seq`); each one's
    /// transitional configuration holds the members coming from its own old ring.
    pub(crate) fn form(&mut self, members: &[u32], seq: u64) -> RingId {
        let ring = RingId::new(NodeId(members.iter().copied().min().unwrap_or(1)), seq);
        let old: BTreeMap<u32, Option<RingId>> = members
            .iter()
            .map(|n| (*n, self.regular.get(n).map(|r| r.0)))
            .collect();
        for n in members {
            let trans: Vec<u32> = match old[n] {
                None => vec![*n],
                Some(o) => members
                    .iter()
                    .filter(|m| old[*m] == Some(o))
                    .copied()
                    .collect(),
            };
            self.install(*n, ring, &trans, members);
        }
        ring
    }

    pub(crate) fn submit(&mut self, n: u32, g: Guarantee) -> MsgId {
        let now = self.tick();
        let p = self.proc(n);
        let c = self.counter.entry(n).or_default();
        let id = MsgId {
            node: NodeId(n),
            incarnation: p.incarnation,
            counter: *c,
        };
        *c += 1;
        self.c.submitted(now, p, id, g, LEN);
        id
    }

    pub(crate) fn deliver_payload(&mut self, n: u32, sender: NodeId, payload: Bytes, ring: RingId) {
        let d = Delivery {
            sender,
            service: ServiceId(1),
            guarantee: Guarantee::Agreed,
            ring_id: ring,
            payload,
        };
        self.event(n, &Event::Deliver(d));
    }

    pub(crate) fn deliver_g(&mut self, n: u32, m: MsgId, ring: RingId, guarantee: Guarantee) {
        let d = Delivery {
            sender: m.node,
            service: ServiceId(1),
            guarantee,
            ring_id: ring,
            payload: payload::encode(m, LEN),
        };
        self.event(n, &Event::Deliver(d));
    }

    pub(crate) fn deliver(&mut self, n: u32, m: MsgId, ring: RingId) {
        self.deliver_g(n, m, ring, Guarantee::Agreed);
    }

    pub(crate) fn deliver_all(&mut self, nodes: &[u32], m: MsgId, ring: RingId) {
        for n in nodes {
            self.deliver(*n, m, ring);
        }
    }

    pub(crate) fn crash(&mut self, n: u32) {
        let now = self.tick();
        let p = self.proc(n);
        self.c.ended(now, p, End::Crashed);
    }

    pub(crate) fn restart(&mut self, n: u32) {
        *self.inc.entry(n).or_default() += 1;
        self.counter.insert(n, 0);
        self.regular.remove(&n);
        self.trans.remove(&n);
        let now = self.tick();
        let p = self.proc(n);
        self.c.started(now, p);
    }

    /// Ends the run without a liveness phase.
    pub(crate) fn finish(&mut self) {
        let now = self.tick();
        self.c.finish(now, &LivenessOutcome::default());
    }

    pub(crate) fn finish_live(&mut self) {
        let now = self.tick();
        let o = LivenessOutcome {
            judged: true,
            bound: Duration::from_secs(1),
            converged_after: None,
        };
        self.c.finish(now, &o);
    }

    pub(crate) fn kinds(&self) -> Vec<Property> {
        self.c.violations().iter().map(|v| v.property()).collect()
    }
}
