//! Everything a run does, derived from one seed (openraft's `DerivedConfig::from_seed`): the
//! node count, the ring's timers and limits, the network, the fault schedule of the safety
//! phase and the application workload.
//!
//! Ranges are chosen to be realistic in simulated time and to reach the protocol's corners:
//! token timeouts of 200–1000 ms (at least 5/4 of the slowest idle rotation) with
//! corosync's derived retransmit, hold and consensus timers; loss from none to 30 % (uniform
//! or in Gilbert–Elliott bursts); jitter up to three latencies (so frames and tokens
//! overtake each other); sometimes a small retransmit window,
//! a small send queue (back-pressure), small frames (more fragments) or a low
//! `fail_recv_const` (the FAILED TO RECEIVE path); partitions, crashes with and without
//! restarts, process pauses longer and shorter than the token timeout, clean leaves,
//! asymmetric links and loss bursts, overlapping as they come.
//!
//! Every field is public: a test may take a seed's scenario and change it (plant a bug,
//! shorten it) and still replay it exactly.

use core::fmt;

use totem_proto::NodeId;
use totem_proto::time::Duration;
use totem_ring::{Config, PlantedBug};
use totem_transport::rng::SplitMix64;

use crate::invariants::Nodes;
use crate::net::{LinkParams, LossModel};

/// The cluster id every simulated ring uses.
pub const CLUSTER_ID: u32 = 0x5133;

/// Most deliveries per second (messages × nodes) the whole cluster's workload causes:
/// 1500 messages a second at 16 nodes, 375 at 64.
pub const MAX_DELIVERY_RATE: u64 = 24_000;

/// The largest message the workload submits (and the rings accept).
pub const MAX_MESSAGE: usize = 128 * 1024;

/// A fault (or its end) the safety phase applies at a given time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Split the network into these groups (nodes in none form one more group).
    Partition(Vec<Vec<NodeId>>),
    /// Merge every partition.
    Heal,
    /// Drop the node's ring: no goodbye; datagrams to it are lost.
    Crash(NodeId),
    /// Start a crashed or departed node again (a new incarnation with the persisted seq).
    Restart(NodeId),
    /// Stop feeding the node for this long; then everything queued arrives at once and its
    /// timers fire late.
    Pause(NodeId, Duration),
    /// `Ring::leave`, then the process stops.
    Leave(NodeId),
    /// The direction `a → b` stops carrying datagrams.
    LinkDown(NodeId, NodeId),
    /// The direction `a → b` carries datagrams again.
    LinkUp(NodeId, NodeId),
    /// Every link switches to this loss model.
    Loss(LossModel),
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Partition(groups) => {
                f.write_str("partition")?;
                for g in groups {
                    write!(f, " {}", Nodes(g))?;
                }
                Ok(())
            }
            Self::Heal => f.write_str("heal"),
            Self::Crash(n) => write!(f, "crash n{n}"),
            Self::Restart(n) => write!(f, "restart n{n}"),
            Self::Pause(n, d) => write!(f, "pause n{n} for {d}"),
            Self::Leave(n) => write!(f, "leave n{n}"),
            Self::LinkDown(a, b) => write!(f, "link n{a}->n{b} down"),
            Self::LinkUp(a, b) => write!(f, "link n{a}->n{b} up"),
            Self::Loss(l) => write!(f, "loss {}", LossDisplay(l)),
        }
    }
}

/// Displays a loss model compactly.
#[derive(Debug)]
pub struct LossDisplay<'a>(pub &'a LossModel);

impl fmt::Display for LossDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pct = |ppm: u32| ppm as f64 / 10_000.0;
        match self.0 {
            LossModel::None => f.write_str("none"),
            LossModel::Uniform { ppm } => write!(f, "uniform {:.1}%", pct(*ppm)),
            m @ LossModel::GilbertElliott { loss_bad, .. } => {
                write!(
                    f,
                    "bursty {:.1}% (bad state {:.0}%)",
                    pct(m.mean_ppm()),
                    pct(*loss_bad)
                )
            }
        }
    }
}

/// The network of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetPlan {
    /// Typical one-way latency; each link gets 0.5–1.5 × this.
    pub latency: Duration,
    /// Jitter on every link.
    pub jitter: Duration,
    /// Loss model of every link in the safety phase.
    pub loss: LossModel,
    /// Duplication chance in the safety phase.
    pub dup_ppm: u32,
}

/// What the application on each node submits in the safety phase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    /// Mean time between submissions on one node (uniform on 0..2 × this).
    pub interval: Duration,
    /// Share of messages submitted as safe.
    pub safe_ppm: u32,
    /// Chance that a submission is a burst of 5–40 messages.
    pub burst_ppm: u32,
    /// Chance of a 1.5–4 KiB message (a few fragments).
    pub medium_ppm: u32,
    /// Chance of a 10–80 KiB message (tens of fragments).
    pub large_ppm: u32,
    /// Offered load, in percent of the ring's estimated capacity (`interval` comes from it).
    pub load_pct: u32,
}

/// What bounds a ring's throughput, for sizing the workload.
#[derive(Debug, Clone, Copy)]
struct Capacity {
    token: Duration,
    latency: Duration,
    jitter: Duration,
    loss: u32,
    window_size: u32,
    max_messages: u32,
    frame_len: usize,
}

/// The mean per-node submission interval that offers `w.load_pct` % of what the ring can
/// carry. A ring has no infinite capacity: an offered load above it only grows the send
/// queues until back-pressure, and the liveness phase would then spend its bound draining
/// them. The estimate: one rotation costs a hop per node (latency + mean jitter), plus a
/// `token_retransmit` for every lost token hop; each rotation carries `window_size` frames
/// ring-wide and `max_messages` per node.
fn offered_interval(n: usize, w: &Workload, c: Capacity) -> Duration {
    let n64 = n as u64;
    let hop = c.latency.total_micros() + c.jitter.total_micros() / 2 + 20;
    let token_retransmit = c.token.total_micros() * 10 / 42;
    let rotation = n64 * hop + n64 * u64::from(c.loss) * token_retransmit / 1_000_000 + 100;
    let frame = (c.frame_len as u64).saturating_sub(120).max(64);
    let ring_bytes_per_s = u64::from(c.window_size) * frame * 1_000_000 / rotation;
    let node_bytes_per_s = u64::from(c.max_messages) * frame * 1_000_000 / rotation;
    let per_node = (ring_bytes_per_s / n64).min(node_bytes_per_s);
    let (m, l) = (u64::from(w.medium_ppm), u64::from(w.large_ppm));
    // Mean message size of `spec()` plus its record header.
    let mean = ((1_000_000 - m - l) * 164 + m * 2800 + l * 46_000) / 1_000_000 + 8;
    // What a run costs is its deliveries (messages × nodes), so they are capped too:
    // beyond a few hundred messages a second, more traffic finds nothing new.
    let msgs_per_s = (per_node * u64::from(w.load_pct) / 100 / mean)
        .min(MAX_DELIVERY_RATE / (n64 * n64))
        .max(1);
    // A burst of 5–40 messages counts as its mean of 22.5.
    let per_submission = 1_000_000 + u64::from(w.burst_ppm) * 215 / 10;
    Duration::from_micros((per_submission / msgs_per_s).max(500))
}

/// One run, fully determined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scenario {
    /// The seed it came from.
    pub seed: u64,
    /// Nodes, with ids `1..=nodes`.
    pub nodes: usize,
    /// Token loss timeout (`token`); retransmit, hold and consensus are derived from it.
    pub token: Duration,
    /// Join re-broadcast period.
    pub join: Duration,
    /// Idle merge-detect period.
    pub merge: Duration,
    /// Random delay before each join.
    pub send_join: Duration,
    /// Frames per rotation, ring-wide.
    pub window_size: u32,
    /// Frames per token visit.
    pub max_messages: u32,
    /// Sort-queue window.
    pub retransmit_window: u32,
    /// Visits before FAILED TO RECEIVE.
    pub fail_recv_const: u32,
    /// Largest frame.
    pub frame_len: usize,
    /// Send queue bound (back-pressure).
    pub send_queue_bytes: usize,
    /// The network.
    pub net: NetPlan,
    /// The application workload.
    pub workload: Workload,
    /// Length of the safety phase.
    pub safety: Duration,
    /// When each node starts (index = node id − 1).
    pub starts: Vec<Duration>,
    /// The fault schedule, sorted by time.
    pub faults: Vec<(Duration, Fault)>,
    /// Probes each live node submits once the cluster converged in the liveness phase.
    pub probes_per_node: usize,
    /// A protocol bug to plant in every ring (checker tests only).
    pub bug: Option<PlantedBug>,
    /// Run every ring as an Accelerated Ring (`--accelerated`).
    pub accelerated: bool,
    /// Fail silent members after `token_retransmit` in gather (the ring's default; off =
    /// corosync's wait for consensus, `--no-fast-fail`).
    pub fast_fail: bool,
    /// Resend a lost token after about two measured rotations (`adaptive_token_retransmit`,
    /// the ring's default; off = corosync's fixed `token_retransmit`, `--no-adaptive-rto`).
    pub adaptive_rto: bool,
}

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// A uniform value in `lo..=hi`.
fn between(rng: &mut SplitMix64, lo: u64, hi: u64) -> u64 {
    lo + rng.below(hi.saturating_sub(lo) + 1)
}

/// `d` scaled by `num / den`.
fn scale(d: Duration, num: u64, den: u64) -> Duration {
    Duration::from_micros(d.total_micros() * num / den.max(1))
}

fn pick<T: Copy>(rng: &mut SplitMix64, items: &[T]) -> T {
    items[rng.below(items.len() as u64) as usize]
}

impl Scenario {
    /// The scenario of `seed`, with a node count in `nodes` (inclusive).
    pub fn from_seed(seed: u64, nodes: core::ops::RangeInclusive<usize>) -> Self {
        let mut rng = SplitMix64::new(seed ^ 0x7073_696d_5eed_0001);
        let (lo, hi) = (*nodes.start(), *nodes.end().max(nodes.start()));
        let n = between(&mut rng, lo.max(1) as u64, hi.max(1) as u64) as usize;

        let token = ms(between(&mut rng, 200, 1000));
        let join = ms(between(&mut rng, 30, 50));
        let merge = ms(between(&mut rng, 100, 300));
        let send_join = if n >= 8 && rng.chance_ppm(300_000) {
            ms(between(&mut rng, 5, 40))
        } else {
            Duration::ZERO
        };
        let window_size = if rng.chance_ppm(250_000) {
            between(&mut rng, 10, 100) as u32
        } else {
            50
        };
        let max_messages = if rng.chance_ppm(250_000) {
            between(&mut rng, 3, 30) as u32
        } else {
            17
        };
        let min_window = 2 * window_size.max(max_messages);
        let retransmit_window = if rng.chance_ppm(150_000) {
            between(&mut rng, u64::from(min_window.max(100)), 1000) as u32
        } else {
            16_384
        };
        let fail_recv_const = if rng.chance_ppm(200_000) {
            between(&mut rng, 10, 200) as u32
        } else {
            2500
        };
        let frame_len = if rng.chance_ppm(200_000) {
            pick(&mut rng, &[576, 1200, 4000, 8972])
        } else {
            1472
        };
        let send_queue_bytes = if rng.chance_ppm(300_000) {
            between(&mut rng, MAX_MESSAGE as u64, 1 << 20) as usize
        } else {
            5 << 20
        };

        let latency = Duration::from_micros(between(&mut rng, 50, 2000));
        let jitter = if rng.chance_ppm(300_000) {
            Duration::ZERO
        } else {
            Duration::from_micros(rng.below(3 * latency.total_micros() + 1))
        };
        // The token must be able to go round: corosync scales `token` with the node count
        // (`token_coefficient`, 650 ms per node beyond two) so that a rotation fits in it
        // many times over. The scenario disables that scaling to keep the timers tight,
        // so at 32+ nodes with slow, jittery links a drawn token could be no longer than
        // an idle rotation (seed 156 at 32..64: 60 nodes, token 220 ms, rotations of
        // 209 ± 8 ms): every node then declares the token lost every few rotations with
        // no fault at all, and no ring lasts — a misconfiguration, not a property of the
        // protocol the liveness check could judge. So the token is at least 5/4 of the
        // slowest possible idle rotation (every hop at 1.5 × latency plus full jitter,
        // `link`). At 2–16 nodes that floor stays below the 200 ms minimum draw, so their
        // scenarios are unchanged; 22 of the first 500 seeds at 32..64 get a longer token.
        let slowest_rotation = (latency.total_micros() * 3 / 2 + jitter.total_micros()) * n as u64;
        let token = token.max(Duration::from_micros(slowest_rotation * 5 / 4));
        let loss = match rng.below(100) {
            0..30 => LossModel::None,
            30..65 => LossModel::Uniform {
                ppm: between(&mut rng, 1_000, 300_000) as u32,
            },
            _ => bursty(&mut rng),
        };
        let dup_ppm = if rng.chance_ppm(300_000) {
            between(&mut rng, 1_000, 50_000) as u32
        } else {
            0
        };

        let mut workload = Workload {
            interval: Duration::ZERO,
            safe_ppm: rng.below(600_000) as u32,
            burst_ppm: rng.below(50_000) as u32,
            medium_ppm: between(&mut rng, 50_000, 150_000) as u32,
            large_ppm: between(&mut rng, 5_000, 20_000) as u32,
            load_pct: between(&mut rng, 5, 40) as u32,
        };
        workload.interval = offered_interval(
            n,
            &workload,
            Capacity {
                token,
                latency,
                jitter,
                loss: loss.mean_ppm(),
                window_size,
                max_messages,
                frame_len,
            },
        );
        let safety = ms(between(&mut rng, 5_000, 20_000));
        let staggered = rng.chance_ppm(500_000);
        let starts = (0..n)
            .map(|_| {
                if staggered {
                    Duration::from_micros(rng.below(2 * token.total_micros()))
                } else {
                    Duration::ZERO
                }
            })
            .collect();

        let mut sc = Self {
            seed,
            nodes: n,
            token,
            join,
            merge,
            send_join,
            window_size,
            max_messages,
            retransmit_window,
            fail_recv_const,
            frame_len,
            send_queue_bytes,
            net: NetPlan {
                latency,
                jitter,
                loss,
                dup_ppm,
            },
            workload,
            safety,
            starts,
            faults: Vec::new(),
            probes_per_node: 4,
            bug: None,
            accelerated: false,
            fast_fail: true,
            adaptive_rto: true,
        };
        sc.faults = sc.fault_schedule(&mut rng);
        sc
    }

    /// The token timeout as a simulated duration.
    pub fn token(&self) -> Duration {
        self.token
    }

    /// Consensus, as the ring derives it (corosync: 1.2 × token).
    pub fn consensus(&self) -> Duration {
        self.ring_config(NodeId(1), 0)
            .effective()
            .map_or_else(|_| scale(self.token(), 12, 10), |e| e.consensus)
    }

    /// How long the liveness phase may take to converge and deliver the probes:
    /// 20 × (token + consensus).
    pub fn liveness_bound(&self) -> Duration {
        (self.token() + self.consensus()).saturating_mul(20)
    }

    fn fault_schedule(&self, rng: &mut SplitMix64) -> Vec<(Duration, Fault)> {
        let n = self.nodes;
        let unit = self.token() + self.consensus();
        let calm = rng.chance_ppm(100_000);
        let count = if calm {
            0
        } else {
            rng.below(4 + n.min(12) as u64 / 2) + 1
        };
        let first = ms(1000).total_micros();
        let last = self
            .safety
            .total_micros()
            .saturating_sub(1_000_000)
            .max(first + 1);
        let mut faults = Vec::new();
        let mut alive: Vec<bool> = vec![true; n];
        let some = |rng: &mut SplitMix64| NodeId(rng.below(n as u64) as u32 + 1);
        for _ in 0..count {
            let at = Duration::from_micros(between(rng, first, last));
            let span =
                |rng: &mut SplitMix64, lo: u64, hi: u64| scale(unit, between(rng, lo, hi), 100);
            match rng.below(100) {
                0..25 if n >= 2 => {
                    let k = if n >= 3 && rng.chance_ppm(300_000) {
                        3
                    } else {
                        2
                    };
                    let mut groups = vec![Vec::new(); k];
                    for i in 0..n {
                        groups[rng.below(k as u64) as usize].push(NodeId(i as u32 + 1));
                    }
                    groups.retain(|g| !g.is_empty());
                    faults.push((at, Fault::Partition(groups)));
                    faults.push((at + span(rng, 20, 300), Fault::Heal));
                }
                25..45 => {
                    let v = some(rng);
                    if alive.iter().filter(|a| **a).count() > 1 && alive[v.0 as usize - 1] {
                        faults.push((at, Fault::Crash(v)));
                        if rng.chance_ppm(600_000) {
                            faults.push((at + span(rng, 5, 400), Fault::Restart(v)));
                        } else {
                            alive[v.0 as usize - 1] = false;
                        }
                    }
                }
                45..60 => {
                    let v = some(rng);
                    let token = self.token();
                    let d = if rng.chance_ppm(700_000) {
                        scale(token, between(rng, 110, 300), 100)
                    } else {
                        scale(token, between(rng, 20, 90), 100)
                    };
                    faults.push((at, Fault::Pause(v, d)));
                }
                60..70 => {
                    let v = some(rng);
                    if alive.iter().filter(|a| **a).count() > 1 && alive[v.0 as usize - 1] {
                        faults.push((at, Fault::Leave(v)));
                        if rng.chance_ppm(500_000) {
                            faults.push((at + span(rng, 5, 300), Fault::Restart(v)));
                        } else {
                            alive[v.0 as usize - 1] = false;
                        }
                    }
                }
                70..85 if n >= 2 => {
                    let a = some(rng);
                    // Any other node: a is skipped by shifting the draw past it.
                    let mut b = NodeId(rng.below(n as u64 - 1) as u32 + 1);
                    if b >= a {
                        b = NodeId(b.0 + 1);
                    }
                    faults.push((at, Fault::LinkDown(a, b)));
                    faults.push((at + span(rng, 20, 300), Fault::LinkUp(a, b)));
                }
                _ => {
                    let burst = if rng.chance_ppm(500_000) {
                        bursty(rng)
                    } else {
                        LossModel::Uniform {
                            ppm: between(rng, 50_000, 300_000) as u32,
                        }
                    };
                    faults.push((at, Fault::Loss(burst)));
                    faults.push((at + span(rng, 10, 200), Fault::Loss(self.net.loss)));
                }
            }
        }
        // Stable by time; ties keep generation order, so a heal never precedes its split.
        faults.sort_by_key(|f| f.0);
        faults
    }

    /// The ring configuration of `node`'s incarnation `incarnation`.
    pub fn ring_config(&self, node: NodeId, incarnation: u32) -> Config {
        let mut c = Config::new(node, CLUSTER_ID);
        c.seed = self.seed
            ^ (u64::from(node.0) << 32)
            ^ u64::from(incarnation).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        c.token = self.token();
        c.token_coefficient = Duration::ZERO;
        c.join = self.join;
        c.merge = self.merge;
        c.send_join = self.send_join;
        c.window_size = self.window_size;
        c.max_messages = self.max_messages;
        c.retransmit_window = self.retransmit_window;
        c.fail_recv_const = self.fail_recv_const;
        c.frame_len = self.frame_len;
        c.max_message_len = MAX_MESSAGE;
        c.send_queue_bytes = self.send_queue_bytes;
        c.accelerated = self.accelerated;
        c.fast_fail = self.fast_fail;
        c.adaptive_token_retransmit = self.adaptive_rto;
        c
    }

    /// The parameters of link `from → to` (0.5–1.5 × the plan's latency, from `rng`).
    pub fn link(&self, rng: &mut SplitMix64) -> LinkParams {
        LinkParams {
            latency: scale(self.net.latency, between(rng, 50, 150), 100),
            jitter: self.net.jitter,
            loss: self.net.loss,
            dup_ppm: self.net.dup_ppm,
        }
    }

    /// One line describing the run.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "seed {}: {} nodes, token {} (consensus {}), join {}, merge {}, window {}/{}, rtr window {}, \
             fail_recv {}, frame {}, send queue {} KiB; net {}±{} loss {} dup {:.1}%; \
             workload {}% load, every {} ({:.0}% safe); safety {}",
            self.seed,
            self.nodes,
            self.token(),
            self.consensus(),
            self.join,
            self.merge,
            self.window_size,
            self.max_messages,
            self.retransmit_window,
            self.fail_recv_const,
            self.frame_len,
            self.send_queue_bytes / 1024,
            self.net.latency,
            self.net.jitter,
            LossDisplay(&self.net.loss),
            self.net.dup_ppm as f64 / 10_000.0,
            self.workload.load_pct,
            self.workload.interval,
            self.workload.safe_ppm as f64 / 10_000.0,
            self.safety,
        );
        if let Some(b) = self.bug {
            s.push_str(&format!("; planted bug {b:?}"));
        }
        if self.accelerated {
            s.push_str("; accelerated ring");
        }
        if !self.fast_fail {
            s.push_str("; no fast fail");
        }
        if !self.adaptive_rto {
            s.push_str("; no adaptive token retransmit");
        }
        s.push_str(&format!("; {} faults", self.faults.len()));
        s
    }
}

/// A Gilbert–Elliott model whose long-run loss is at most 30 %.
fn bursty(rng: &mut SplitMix64) -> LossModel {
    let enter_bad = between(rng, 5_000, 50_000);
    let leave_bad = between(rng, 100_000, 500_000);
    let loss_good = rng.below(20_000);
    // mean = (good × leave + bad × enter) / (enter + leave) ≤ 30 %.
    let cap = (300_000 * (enter_bad + leave_bad)).saturating_sub(loss_good * leave_bad) / enter_bad;
    let loss_bad = between(rng, 300_000, 900_000).min(cap).min(1_000_000);
    LossModel::GilbertElliott {
        enter_bad: enter_bad as u32,
        leave_bad: leave_bad as u32,
        loss_good: loss_good as u32,
        loss_bad: loss_bad as u32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_scenario_and_valid_ring_configs() {
        for seed in 0..200 {
            let a = Scenario::from_seed(seed, 2..=16);
            assert_eq!(a, Scenario::from_seed(seed, 2..=16));
            assert!((2..=16).contains(&a.nodes));
            assert!(a.faults.windows(2).all(|w| w[0].0 <= w[1].0));
            for (_, f) in &a.faults {
                if let Fault::LinkDown(x, y) = f {
                    assert_ne!(x, y);
                    assert!(y.0 >= 1 && y.0 as usize <= a.nodes);
                }
            }
            for n in 1..=a.nodes as u32 {
                a.ring_config(NodeId(n), 0).effective().unwrap();
            }
            assert!(a.net.loss.mean_ppm() <= 300_000, "{:?}", a.net.loss);
        }
    }
}
