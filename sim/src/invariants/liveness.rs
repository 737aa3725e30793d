//! Liveness: once the faults stop, every live process ends up in one ring with every other
//! live process, and messages submitted there reach everyone.
//!
//! Not an EVS safety property — EVS94 asks only that a process that does not crash
//! eventually installs a configuration (2.5) — but the one that makes the ring useful, as
//! TOTEM-SRP.md §8.11 and COROSYNC.md §6 row L state it: if the network is stable and the
//! processes respond in time, a ring with all connected processes forms within roughly
//! `consensus + token` plus two commit-token rotations. The simulator's liveness phase
//! removes every fault, restarts every crashed node, and allows a bound derived from the
//! timers (`scenario.rs`: 20 × (token + consensus)).
//!
//! Exactly what is checked at the end of a judged run:
//!
//! * **convergence** — every live process's last configuration is regular, all with the
//!   same ring id, and its members are exactly the live nodes;
//! * **delivery everywhere** — every probe of the last round (messages each live node
//!   submits once the cluster converged, see
//!   [`InvariantChecker::expect_everywhere`](super::InvariantChecker::expect_everywhere);
//!   a new round starts each time the cluster converges on another ring) was delivered by
//!   every live process;
//! * **quiet** — no live process still owes a delivery of its own messages.
//!
//! Messages submitted *before* convergence are not required everywhere: a message delivered
//! in a partition is, by EVS, never delivered on the other side. Their sender must still
//! deliver them (`self_delivery.rs`), and the members of the final ring agree on what they
//! delivered in it once they all install a next configuration (`virtual_synchrony.rs`) —
//! and on the probes, which come after everything else in the total order, here.

use totem_proto::RingId;
use totem_proto::time::Duration;
use totem_ring::ConfigurationKind;

use super::{BitSet, Core, MsgIdx, Violation};

/// What the driver measured in the liveness phase (the deadline: convergence within
/// `bound` of the end of the faults, then everything delivered within `bound` of
/// convergence).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LivenessOutcome {
    /// Whether the run had a liveness phase to judge (unit tests and runs stopped early
    /// have none).
    pub judged: bool,
    /// The time allowed.
    pub bound: Duration,
    /// Time from the end of the faults to the first convergence, if it happened.
    pub converged_after: Option<Duration>,
}

#[derive(Debug, Default)]
pub(crate) struct Liveness {
    probes: Vec<MsgIdx>,
    is_probe: BitSet,
}

impl Liveness {
    pub(crate) fn expect_everywhere(&mut self, _core: &Core, m: MsgIdx) {
        if !self.is_probe.contains(m) {
            self.is_probe.insert(m);
            self.probes.push(m);
        }
    }

    pub(crate) fn new_round(&mut self) {
        self.probes.clear();
        self.is_probe = BitSet::default();
    }

    /// Probe deliveries still missing at live processes.
    pub(crate) fn missing(&self, core: &Core) -> usize {
        let live = core.live();
        self.probes
            .iter()
            .map(|m| {
                live.iter()
                    .filter(|p| !core.procs[**p].delivered.contains(*m))
                    .count()
            })
            .sum()
    }

    /// Judges the run; returns whether it ended quiet (always, for a run not judged).
    pub(crate) fn finish(
        &mut self,
        core: &Core,
        outcome: &LivenessOutcome,
        own_missing: usize,
        out: &mut Vec<Violation>,
    ) -> bool {
        if !outcome.judged {
            return true;
        }
        let live = core.live();
        let probes = self.missing(core);
        let quiet = own_missing == 0 && probes == 0;
        if !quiet {
            out.push(Violation::NotQuiet {
                at: core.now,
                own: own_missing,
                probes,
            });
        }
        if converged(core).is_none() {
            let states = live
                .iter()
                .map(|p| {
                    (
                        core.proc(*p),
                        core.procs[*p].last_conf.map(|c| core.confs[c].clone()),
                    )
                })
                .collect();
            out.push(Violation::NotConverged {
                at: core.now,
                bound: outcome.bound,
                states,
            });
        }
        for m in &self.probes {
            let missing: Vec<_> = live
                .iter()
                .filter(|p| !core.procs[**p].delivered.contains(*m))
                .map(|p| core.proc(*p))
                .collect();
            if !missing.is_empty() {
                out.push(Violation::NotDeliveredEverywhere {
                    at: core.now,
                    msg: core.id(*m),
                    missing,
                });
            }
        }
        quiet
    }
}

/// The ring all live processes are in, if they all last installed the same regular
/// configuration and its members are exactly the live nodes.
pub(crate) fn converged(core: &Core) -> Option<RingId> {
    let live = core.live();
    let mut ring = None;
    let mut nodes: Vec<_> = live.iter().map(|p| core.proc(*p).node).collect();
    nodes.sort();
    for p in &live {
        let c = &core.confs[core.procs[*p].last_conf?];
        if c.kind != ConfigurationKind::Regular || c.members != nodes {
            return None;
        }
        match ring {
            None => ring = Some(c.ring_id),
            Some(r) if r != c.ring_id => return None,
            Some(_) => {}
        }
    }
    ring
}

#[cfg(test)]
mod tests {
    use totem_proto::Guarantee;

    use super::super::Violation;
    use super::super::test_log::Log;

    #[test]
    fn a_converged_cluster_with_probes_everywhere_passes() {
        let mut l = Log::new(&[1, 2, 3]);
        l.form(&[1, 2], 4);
        l.form(&[3], 4);
        assert_eq!(l.c.converged(), None);
        let r = l.form(&[1, 2, 3], 8);
        assert_eq!(l.c.converged(), Some(r));
        let m = l.submit(3, Guarantee::Safe);
        l.c.expect_everywhere(m);
        assert_eq!(l.c.probes_missing(), 3);
        for n in 1..=3 {
            l.deliver_g(n, m, r, Guarantee::Safe);
        }
        assert_eq!(l.c.probes_missing(), 0);
        l.finish_live();
        assert_eq!(l.kinds(), []);
    }

    #[test]
    fn a_split_cluster_and_a_missing_probe_are_caught() {
        let mut l = Log::new(&[1, 2, 3]);
        let r = l.form(&[1, 2], 4);
        l.form(&[3], 4);
        let m = l.submit(1, Guarantee::Agreed);
        l.c.expect_everywhere(m);
        l.deliver_all(&[1, 2], m, r);
        l.finish_live();
        let v = l.c.violations();
        // 3 is not in the probe's ring: the run is not quiet, not converged, and 3 misses it.
        assert!(matches!(
            &v[0],
            Violation::NotQuiet {
                own: 0,
                probes: 1,
                ..
            }
        ));
        assert!(matches!(&v[1], Violation::NotConverged { states, .. } if states.len() == 3));
        assert!(
            matches!(&v[2], Violation::NotDeliveredEverywhere { missing, .. } if missing.len() == 1)
        );
    }
}
