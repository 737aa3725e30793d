//! A deterministic network emulator in netem's shape (str0m `crates/netem`): frames go in with
//! [`Net::handle_input`], come out when due with [`Net::poll_output`], and
//! [`Net::poll_timeout`] says when the next one is due. Nothing here reads a clock or spawns
//! anything; every random choice comes from one [`SplitMix64`] seeded from the run seed, so
//! the same inputs give the same deliveries, byte for byte and microsecond for microsecond.
//!
//! What it models, per directed link `a → b`:
//!
//! * **latency + jitter**: each copy arrives after `latency + U[0, jitter]`; copies whose
//!   delays differ overtake each other, which is where **reordering** comes from;
//! * **loss**: none, uniform, or bursty **Gilbert–Elliott** (a two-state Markov chain per
//!   link, stepped once per datagram: good state loses `loss_good`, bad state `loss_bad`);
//! * **duplication**: a second, independently delayed copy;
//! * **asymmetric links**: `a → b` can be down while `b → a` is up;
//! * **partitions**: nodes in different groups cannot reach each other; merging is healing.
//!
//! A multicast is one copy per other node, each with its own fate — independent loss per
//! receiver, as on a real LAN, which is what exercises the ring's retransmissions. Faults
//! apply when a frame is sent; a frame already in flight when a partition starts still
//! arrives (it was on the wire). Whether the receiver is alive is the driver's business:
//! the network delivers to addresses, not to processes.

use alloc::collections::BinaryHeap;
use core::cmp::{Ordering, Reverse};

use bytes::Bytes;
use totem_proto::NodeId;
use totem_proto::time::{Duration, Instant};
use totem_transport::Dest;
use totem_transport::rng::SplitMix64;

/// How a link loses datagrams. Probabilities in parts per million.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LossModel {
    /// Never.
    None,
    /// Each datagram independently.
    Uniform {
        /// Chance of loss.
        ppm: u32,
    },
    /// Bursty loss (Gilbert 1960, Elliott 1963): a good and a bad state.
    GilbertElliott {
        /// Chance per datagram of moving from good to bad.
        enter_bad: u32,
        /// Chance per datagram of moving from bad to good.
        leave_bad: u32,
        /// Loss in the good state.
        loss_good: u32,
        /// Loss in the bad state.
        loss_bad: u32,
    },
}

impl LossModel {
    /// The long-run loss rate in ppm (the stationary mix of the two states).
    pub fn mean_ppm(&self) -> u32 {
        match *self {
            Self::None => 0,
            Self::Uniform { ppm } => ppm,
            Self::GilbertElliott {
                enter_bad,
                leave_bad,
                loss_good,
                loss_bad,
            } => {
                let (p, r) = (u64::from(enter_bad), u64::from(leave_bad));
                if p + r == 0 {
                    return loss_good;
                }
                ((u64::from(loss_good) * r + u64::from(loss_bad) * p) / (p + r)) as u32
            }
        }
    }
}

/// The behaviour of one directed link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkParams {
    /// Fixed part of the delay.
    pub latency: Duration,
    /// Largest extra delay, drawn uniformly per copy.
    pub jitter: Duration,
    /// Loss model.
    pub loss: LossModel,
    /// Chance that a datagram is duplicated.
    pub dup_ppm: u32,
}

#[derive(Debug, Clone)]
struct Link {
    params: LinkParams,
    /// Administratively up (asymmetric link faults switch one direction).
    up: bool,
    /// Gilbert–Elliott state.
    bad: bool,
}

/// A datagram leaving the network.
#[derive(Debug, Clone)]
pub struct Datagram {
    /// Sender.
    pub from: NodeId,
    /// Receiver.
    pub to: NodeId,
    /// The frame, shared with every other copy (never copied).
    pub frame: Bytes,
}

#[derive(Debug)]
struct InFlight {
    at: Instant,
    /// Tie-break among datagrams due at the same instant: the order they were sent in.
    order: u64,
    dgram: Datagram,
}

impl PartialEq for InFlight {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.order) == (other.at, other.order)
    }
}
impl Eq for InFlight {}
impl PartialOrd for InFlight {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for InFlight {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.order).cmp(&(other.at, other.order))
    }
}

/// Counters of what the network did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetStats {
    /// Copies offered (one per receiver of a multicast).
    pub offered: u64,
    /// Copies lost to the loss model.
    pub lost: u64,
    /// Copies dropped by a partition or a down link.
    pub cut: u64,
    /// Extra copies made by duplication.
    pub duplicated: u64,
    /// Copies handed out by `poll_output`.
    pub delivered: u64,
}

/// The emulated network of `n` nodes with ids `1..=n`.
#[derive(Debug)]
pub struct Net {
    n: usize,
    /// `links[from * n + to]`, 0-based indices.
    links: Vec<Link>,
    /// Partition group of each node; equal groups can talk.
    group: Vec<u32>,
    queue: BinaryHeap<Reverse<InFlight>>,
    order: u64,
    rng: SplitMix64,
    /// What happened so far.
    pub stats: NetStats,
}

impl Net {
    /// A network of `n` nodes whose link `from → to` behaves as `params(from, to)`.
    pub fn new(
        n: usize,
        rng: SplitMix64,
        mut params: impl FnMut(NodeId, NodeId) -> LinkParams,
    ) -> Self {
        let mut links = Vec::with_capacity(n * n);
        for from in 0..n {
            for to in 0..n {
                let p = params(node(from), node(to));
                links.push(Link {
                    params: p,
                    up: true,
                    bad: false,
                });
            }
        }
        Self {
            n,
            links,
            group: vec![0; n],
            queue: BinaryHeap::new(),
            order: 0,
            rng,
            stats: NetStats::default(),
        }
    }

    fn link(&mut self, from: NodeId, to: NodeId) -> &mut Link {
        let i = index(from) * self.n + index(to);
        &mut self.links[i]
    }

    /// A frame `from` sends to `dest` at `now`: a multicast becomes one copy per other node.
    pub fn handle_input(&mut self, now: Instant, from: NodeId, dest: Dest, frame: Bytes) {
        match dest {
            Dest::Multicast => {
                for to in 0..self.n {
                    let to = node(to);
                    if to != from {
                        self.send_one(now, from, to, frame.clone());
                    }
                }
            }
            Dest::Node(to) if to != from && index(to) < self.n => {
                self.send_one(now, from, to, frame)
            }
            // A frame to itself or to no node of this network goes nowhere.
            Dest::Node(_) => {}
        }
    }

    fn send_one(&mut self, now: Instant, from: NodeId, to: NodeId, frame: Bytes) {
        self.stats.offered += 1;
        if self.group[index(from)] != self.group[index(to)] || !self.link(from, to).up {
            self.stats.cut += 1;
            return;
        }
        if self.lose(from, to) {
            self.stats.lost += 1;
            return;
        }
        let params = self.link(from, to).params;
        let copies = if self.rng.chance_ppm(params.dup_ppm) {
            self.stats.duplicated += 1;
            2
        } else {
            1
        };
        for _ in 0..copies {
            let jitter = self.rng.below(params.jitter.total_micros() + 1);
            let at = now + params.latency + Duration::from_micros(jitter);
            self.order += 1;
            let dgram = Datagram {
                from,
                to,
                frame: frame.clone(),
            };
            self.queue.push(Reverse(InFlight {
                at,
                order: self.order,
                dgram,
            }));
        }
    }

    /// Steps the link's loss model once and says whether this datagram is lost.
    fn lose(&mut self, from: NodeId, to: NodeId) -> bool {
        let i = index(from) * self.n + index(to);
        let link = &mut self.links[i];
        match link.params.loss {
            LossModel::None => false,
            LossModel::Uniform { ppm } => self.rng.chance_ppm(ppm),
            LossModel::GilbertElliott {
                enter_bad,
                leave_bad,
                loss_good,
                loss_bad,
            } => {
                let flip = if link.bad { leave_bad } else { enter_bad };
                if self.rng.chance_ppm(flip) {
                    link.bad = !link.bad;
                }
                let p = if link.bad { loss_bad } else { loss_good };
                self.rng.chance_ppm(p)
            }
        }
    }

    /// When the next datagram is due.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.queue.peek().map(|Reverse(f)| f.at)
    }

    /// The next datagram due at or before `now`, in arrival order.
    #[must_use]
    pub fn poll_output(&mut self, now: Instant) -> Option<Datagram> {
        if self.poll_timeout()? > now {
            return None;
        }
        let Reverse(f) = self.queue.pop()?;
        self.stats.delivered += 1;
        Some(f.dgram)
    }

    /// Datagrams in flight.
    pub fn in_flight(&self) -> usize {
        self.queue.len()
    }

    /// Splits the nodes into `groups` that cannot reach each other; nodes in no group form
    /// one more group together.
    pub fn partition(&mut self, groups: &[Vec<NodeId>]) {
        let rest = groups.len() as u32 + 1;
        self.group.iter_mut().for_each(|g| *g = rest);
        for (gi, g) in groups.iter().enumerate() {
            for n in g {
                if index(*n) < self.n {
                    self.group[index(*n)] = gi as u32 + 1;
                }
            }
        }
    }

    /// Merges every partition back into one network.
    pub fn heal(&mut self) {
        self.group.iter_mut().for_each(|g| *g = 0);
    }

    /// Switches the direction `from → to` on or off (an asymmetric link fault).
    pub fn set_link_up(&mut self, from: NodeId, to: NodeId, up: bool) {
        if index(from) < self.n && index(to) < self.n {
            self.link(from, to).up = up;
        }
    }

    /// Replaces the loss model of every link.
    pub fn set_loss(&mut self, loss: LossModel) {
        for l in &mut self.links {
            l.params.loss = loss;
            l.bad = false;
        }
    }

    /// Replaces the duplication chance of every link.
    pub fn set_dup(&mut self, dup_ppm: u32) {
        for l in &mut self.links {
            l.params.dup_ppm = dup_ppm;
        }
    }

    /// Removes every fault: one group, all links up, no loss, no duplication (latency and
    /// jitter, which are not faults, stay).
    pub fn calm(&mut self) {
        self.heal();
        for l in &mut self.links {
            l.up = true;
            l.bad = false;
            l.params.loss = LossModel::None;
            l.params.dup_ppm = 0;
        }
    }
}

/// Node id of a 0-based index.
pub(crate) fn node(i: usize) -> NodeId {
    NodeId(i as u32 + 1)
}

/// 0-based index of a node id (ids start at 1).
pub(crate) fn index(n: NodeId) -> usize {
    (n.0 as usize).wrapping_sub(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(n: usize, loss: LossModel, jitter: u64, dup: u32) -> Net {
        Net::new(n, SplitMix64::new(1), |_, _| LinkParams {
            latency: Duration::from_micros(100),
            jitter: Duration::from_micros(jitter),
            loss,
            dup_ppm: dup,
        })
    }

    fn drain(net: &mut Net) -> Vec<(Instant, Datagram)> {
        let mut out = Vec::new();
        while let Some(t) = net.poll_timeout() {
            while let Some(d) = net.poll_output(t) {
                out.push((t, d));
            }
        }
        out
    }

    #[test]
    fn multicast_is_one_copy_per_other_node_after_the_latency() {
        let mut n = net(4, LossModel::None, 0, 0);
        n.handle_input(
            Instant::ZERO,
            NodeId(2),
            Dest::Multicast,
            Bytes::from_static(b"x"),
        );
        let out = drain(&mut n);
        let to: Vec<u32> = out.iter().map(|(_, d)| d.to.0).collect();
        assert_eq!(to, [1, 3, 4]);
        assert!(
            out.iter()
                .all(|(t, d)| *t == Instant::from_micros(100) && d.from == NodeId(2))
        );
    }

    #[test]
    fn partitions_and_asymmetric_links_cut_only_what_they_should() {
        let mut n = net(3, LossModel::None, 0, 0);
        n.partition(&[vec![NodeId(1)], vec![NodeId(2), NodeId(3)]]);
        n.handle_input(Instant::ZERO, NodeId(2), Dest::Multicast, Bytes::new());
        assert_eq!(
            drain(&mut n)
                .iter()
                .map(|(_, d)| d.to.0)
                .collect::<Vec<_>>(),
            [3]
        );
        n.heal();
        n.set_link_up(NodeId(1), NodeId(2), false);
        n.handle_input(
            Instant::ZERO,
            NodeId(1),
            Dest::Node(NodeId(2)),
            Bytes::new(),
        );
        n.handle_input(
            Instant::ZERO,
            NodeId(2),
            Dest::Node(NodeId(1)),
            Bytes::new(),
        );
        let out = drain(&mut n);
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].1.from, out[0].1.to), (NodeId(2), NodeId(1)));
    }

    #[test]
    fn loss_duplication_and_jitter_match_their_settings_and_the_seed() {
        let ge = LossModel::GilbertElliott {
            enter_bad: 20_000,
            leave_bad: 200_000,
            loss_good: 10_000,
            loss_bad: 500_000,
        };
        let run = || {
            let mut n = net(2, ge, 1000, 50_000);
            for i in 0..20_000u64 {
                n.handle_input(
                    Instant::from_micros(i * 10),
                    NodeId(1),
                    Dest::Node(NodeId(2)),
                    Bytes::new(),
                );
            }
            let out = drain(&mut n);
            (
                n.stats,
                out.iter()
                    .map(|(t, _)| t.total_micros())
                    .collect::<Vec<_>>(),
            )
        };
        let (stats, times) = run();
        assert_eq!(run().1, times, "same seed, same arrivals");
        // Mean loss of this chain: (1% × 10 + 50% × 1) / 11 ≈ 5.5 %.
        assert_eq!(ge.mean_ppm(), 54_545);
        let lost = stats.lost as f64 / stats.offered as f64;
        assert!((0.035..0.08).contains(&lost), "{lost}");
        assert!(
            (700..1300).contains(&stats.duplicated),
            "{}",
            stats.duplicated
        );
        // Jitter above the sending gap reorders.
        assert!(
            times.windows(2).all(|w| w[0] <= w[1]),
            "output is in arrival order"
        );
        assert_eq!(stats.delivered as usize, times.len());
    }
}
