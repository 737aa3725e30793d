//! `cargo xtask bench ring`: the ring's CPU cost, measured in simulated time on one core.
//!
//! N rings over an in-memory network (1 Gbit/s per sender, multicast serialized once as on
//! a switch, then 100 µs one-way latency, no loss) run a saturating
//! workload — every node keeps its send queue topped up with messages of one size — for two
//! simulated seconds. Printed per case: messages delivered (per node), simulated throughput,
//! and the real CPU time the whole loop took divided by the deliveries (every node's), i.e.
//! CPU ns per delivered message. Then one node crashes, and the time (simulated) and the
//! token visits until the survivors run a new ring are printed.
//!
//! Figures are wall-clock on a shared machine: compare them as ratios within one run.

extern crate alloc;

use alloc::collections::BTreeMap;
use std::time::Instant as WallClock;

use bytes::Bytes;
use totem_proto::time::{Duration, Instant};
use totem_proto::{Guarantee, NodeId, ServiceId};
use totem_ring::{Config, Dest, Event, PeerAddr, Ring, State, SubmitError};

struct Net {
    now: Instant,
    rings: BTreeMap<u32, Ring>,
    /// In flight, by arrival time (then send order).
    wire: BTreeMap<(Instant, u64), (u32, Bytes)>,
    sent: u64,
    /// When each node's link is free again (serialization at 1 Gbit/s).
    nic_free: BTreeMap<u32, Instant>,
    delivered: u64,
    latency: Duration,
}

impl Net {
    fn new(n: u32, accelerated: bool) -> Self {
        let mut net = Self {
            now: Instant::ZERO,
            rings: BTreeMap::new(),
            wire: BTreeMap::new(),
            sent: 0,
            nic_free: BTreeMap::new(),
            delivered: 0,
            latency: Duration::from_micros(100),
        };
        for id in 1..=n {
            let mut c = Config::new(NodeId(id), 1);
            c.token = Duration::from_millis(1000);
            c.token_coefficient = Duration::ZERO;
            c.join = Duration::from_millis(50);
            c.merge = Duration::from_millis(100);
            c.accelerated = accelerated;
            let ring = Ring::new(&c, net.now, 0).expect("valid config");
            net.rings.insert(id, ring);
            net.drain(id);
        }
        net
    }

    fn drain(&mut self, id: u32) {
        let peers: Vec<u32> = self.rings.keys().copied().filter(|p| *p != id).collect();
        let Some(r) = self.rings.get_mut(&id) else {
            return;
        };
        while let Some(ev) = r.poll_event() {
            if let Event::Deliver(_) = ev {
                self.delivered += 1;
            }
        }
        let nic = self.nic_free.entry(id).or_insert(Instant::ZERO);
        while let Some(t) = r.poll_transmit() {
            // 1 Gbit/s: 8 ns per byte on the sender's link, then the propagation latency.
            let start = (*nic).max(self.now);
            let done = start + Duration::from_micros(t.frame.len() as u64 * 8 / 1000);
            *nic = done;
            let at = done + self.latency;
            let targets: Vec<u32> = match t.dest {
                Dest::Multicast => peers.clone(),
                Dest::Node(to) => vec![to.0],
            };
            for p in targets {
                self.sent += 1;
                self.wire.insert((at, self.sent), (p, t.frame.clone()));
            }
        }
    }

    /// One event: the next datagram (FIFO, all with the same latency) or timer.
    fn step(&mut self) -> bool {
        let timer = self
            .rings
            .iter()
            .filter_map(|(id, r)| r.poll_timeout().map(|t| (t, *id)))
            .min();
        let wire = self.wire.keys().next().map(|k| k.0);
        match (wire, timer) {
            (Some(w), t) if t.is_none_or(|(t, _)| w <= t) => {
                let ((at, _), (to, frame)) = self.wire.pop_first().expect("first exists");
                self.now = self.now.max(at);
                if let Some(r) = self.rings.get_mut(&to) {
                    r.handle_datagram(self.now, PeerAddr::Unknown, &frame);
                    self.drain(to);
                }
            }
            (_, Some((t, id))) => {
                self.now = self.now.max(t);
                if let Some(r) = self.rings.get_mut(&id) {
                    r.handle_timeout(self.now);
                }
                self.drain(id);
            }
            _ => return false,
        }
        true
    }

    fn run_until(&mut self, end: Instant, mut each: impl FnMut(&mut Self)) {
        while self.now < end {
            each(self);
            if !self.step() {
                break;
            }
        }
    }

    fn all_operational(&self, n: usize) -> bool {
        self.rings
            .values()
            .all(|r| r.state() == State::Operational && r.members().len() == n)
    }
}

fn case(n: u32, size: usize, accelerated: bool) {
    let mut net = Net::new(n, accelerated);
    let mode = if accelerated {
        "accelerated"
    } else {
        "classic"
    };
    let settle = net.now + Duration::from_secs(5);
    net.run_until(settle, |_| {});
    if !net.all_operational(n as usize) {
        println!("ring {mode} nodes={n} msg={size} FAILED: no ring formed");
        return;
    }
    let msg = Bytes::from(vec![0x5a; size]);
    net.delivered = 0;
    let end = net.now + Duration::from_secs(2);
    let start = WallClock::now();
    net.run_until(end, |net| {
        // Keep every queue topped up: a saturating workload.
        for (id, r) in net.rings.iter_mut() {
            while r.queued_bytes() < 64 * 1024 {
                match r.submit(ServiceId(1), msg.clone(), Guarantee::Agreed) {
                    Ok(()) => {}
                    Err(SubmitError::Backpressure) => break,
                    Err(e) => panic!("node {id}: {e}"),
                }
            }
        }
    });
    let cpu = start.elapsed();
    let per_node = net.delivered / u64::from(n);
    println!(
        "ring {mode} nodes={n} msg={size} delivered_per_node={per_node} sim_msgs_s={} cpu_ns_per_delivery={:.0}",
        per_node / 2,
        cpu.as_nanos() as f64 / net.delivered.max(1) as f64
    );

    // Crash the last node; time the survivors' new ring.
    net.rings.remove(&n);
    let crashed_at = net.now;
    let visits = |net: &Net| {
        net.rings
            .values()
            .map(|r| r.stats().orf_token_rx)
            .sum::<u64>()
    };
    let before = visits(&net);
    let limit = net.now + Duration::from_secs(30);
    while !net.all_operational(n as usize - 1) && net.now < limit {
        if !net.step() {
            break;
        }
    }
    println!(
        "ring {mode} nodes={n} msg={size} reform_after_crash_sim_ms={} token_visits_meanwhile={}",
        (net.now - crashed_at).total_millis(),
        visits(&net) - before
    );
}

fn main() {
    println!(
        "# totem-ring bench: release build, one thread, in-memory network 1 Gbit/s + 100 us latency, token 1000 ms"
    );
    for n in [3, 16] {
        for size in [64, 1024] {
            for accelerated in [false, true] {
                case(n, size, accelerated);
            }
        }
    }
}
