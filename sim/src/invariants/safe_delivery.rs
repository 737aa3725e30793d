//! Safe delivery: a message delivered as safe in a regular configuration reaches every member
//! of that configuration that does not fail.
//!
//! EVS94 "Safe Delivery" (COROSYNC.md §6, row 7.1; TOTEM-SRP.md §8.10): if a process
//! delivers safe message m in regular configuration c, every process q that installed c
//! delivers m — in c or in the transitional configuration that follows c at q — unless q
//! fails. TOCS95 provides it by delivering a safe message only once the token's aru has
//! covered it on two consecutive visits (every member holds it), and recovery delivers what
//! every member holds.
//!
//! Exactly what is checked, with "fails" meaning "the process crashed or left" (a paused
//! process has not failed: EVS has no pauses, only crashes, and a paused Totem process keeps
//! every message it received):
//!
//! * when p delivers m with `Guarantee::Safe` while in the regular part of configuration c
//!   (after installing regular c, before its next configuration event), m becomes an
//!   obligation of c;
//! * when a process q that installed c installs its *next regular* configuration, the
//!   messages it delivered since installing c (in c and in the transitional configuration
//!   in between) must include every obligation of c, those already known and those that
//!   appear later; a process still in c (or its transitional configuration) at the end of
//!   the run is held to the same at the end;
//! * a process that crashes or leaves before either point owes nothing.
//!
//! Also: a message submitted as safe is never delivered as agreed (the guarantee is the
//! sender's request; an agreed message packed with safe ones may be delivered as safe).

use alloc::collections::BTreeMap;

use totem_proto::{Guarantee, RingId};

use super::{BitSet, ConfIdx, Core, MsgIdx, ProcIdx, Violation};
use totem_ring::ConfigurationKind;

#[derive(Debug, Default)]
struct Ring {
    /// Safe messages delivered in this regular configuration, with their first deliverer.
    obligations: Vec<(MsgIdx, ProcIdx)>,
    /// Processes that moved on to another regular configuration: what they delivered since
    /// installing this one (sorted), and where they went.
    closed: Vec<(ProcIdx, Vec<MsgIdx>, RingId)>,
}

#[derive(Debug, Default)]
pub(crate) struct SafeDelivery {
    /// Per process: messages delivered since its last regular configuration.
    since_regular: Vec<Vec<MsgIdx>>,
    rings: BTreeMap<RingId, Ring>,
    /// Messages that already are an obligation.
    obligated: BitSet,
}

impl SafeDelivery {
    fn since(&mut self, p: ProcIdx) -> &mut Vec<MsgIdx> {
        if self.since_regular.len() <= p {
            self.since_regular.resize_with(p + 1, Vec::new);
        }
        &mut self.since_regular[p]
    }

    pub(crate) fn on_deliver(
        &mut self,
        core: &Core,
        p: ProcIdx,
        m: MsgIdx,
        guarantee: Guarantee,
        out: &mut Vec<Violation>,
    ) {
        self.since(p).push(m);
        let at = core.now;
        if core.msgs[m].guarantee == Guarantee::Safe && guarantee != Guarantee::Safe {
            out.push(Violation::Downgraded {
                at,
                proc: core.proc(p),
                msg: core.id(m),
            });
        }
        if guarantee != Guarantee::Safe {
            return;
        }
        let Some(c) = core.in_regular(p) else { return };
        // One obligation per message: its first safe delivery in a regular configuration
        // (a message is ordered on one ring only, `integrity.rs`).
        if self.obligated.contains(m) {
            return;
        }
        self.obligated.insert(m);
        let ring_id = core.confs[c].ring_id;
        let ring = self.rings.entry(ring_id).or_default();
        ring.obligations.push((m, p));
        for (q, set, next) in &ring.closed {
            if set.binary_search(&m).is_err() {
                out.push(Violation::SafeNotDelivered {
                    at,
                    ring: ring_id,
                    msg: core.id(m),
                    deliverer: core.proc(p),
                    member: core.proc(*q),
                    next: Some(*next),
                });
            }
        }
    }

    pub(crate) fn on_config(
        &mut self,
        core: &Core,
        p: ProcIdx,
        next: ConfIdx,
        out: &mut Vec<Violation>,
    ) {
        if core.confs[next].kind != ConfigurationKind::Regular {
            return;
        }
        let mut set = core::mem::take(self.since(p));
        let Some(old) = core.procs[p].last_regular else {
            return;
        };
        set.sort_unstable();
        let old_ring = core.confs[old].ring_id;
        let next_ring = core.confs[next].ring_id;
        let ring = self.rings.entry(old_ring).or_default();
        check(core, old_ring, ring, p, &set, Some(next_ring), out);
        ring.closed.push((p, set, next_ring));
    }

    pub(crate) fn on_end(&mut self, p: ProcIdx) {
        self.since(p).clear();
    }

    /// Live processes still in a configuration owe its obligations at the end of the run.
    pub(crate) fn finish(&mut self, core: &Core, out: &mut Vec<Violation>) {
        for p in core.live() {
            let Some(c) = core.procs[p].last_regular else {
                continue;
            };
            let ring_id = core.confs[c].ring_id;
            let mut set = self.since(p).clone();
            set.sort_unstable();
            if let Some(ring) = self.rings.get(&ring_id) {
                check(core, ring_id, ring, p, &set, None, out);
            }
        }
    }
}

fn check(
    core: &Core,
    ring_id: RingId,
    ring: &Ring,
    q: ProcIdx,
    set: &[MsgIdx],
    next: Option<RingId>,
    out: &mut Vec<Violation>,
) {
    for (m, p) in &ring.obligations {
        if set.binary_search(m).is_err() {
            out.push(Violation::SafeNotDelivered {
                at: core.now,
                ring: ring_id,
                msg: core.id(*m),
                deliverer: core.proc(*p),
                member: core.proc(q),
                next,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use totem_proto::{Guarantee, NodeId, RingId};

    use super::super::test_log::Log;
    use super::super::{Property, Violation};

    #[test]
    fn a_clean_log_passes() {
        let mut l = Log::new(&[1, 2, 3]);
        let r = l.form(&[1, 2, 3], 4);
        let m = l.submit(1, Guarantee::Safe);
        l.deliver_g(1, m, r, Guarantee::Safe);
        l.deliver_g(2, m, r, Guarantee::Safe);
        // 3 crashes before delivering it: it owes nothing.
        l.crash(3);
        let r8 = RingId::new(NodeId(1), 8);
        l.install(1, r8, &[1, 2], &[1, 2]);
        l.install(2, r8, &[1, 2], &[1, 2]);
        l.finish();
        assert_eq!(l.kinds(), []);
    }

    #[test]
    fn a_member_that_moves_on_without_the_safe_message_is_caught() {
        let mut l = Log::new(&[1, 2, 3]);
        let r = l.form(&[1, 2, 3], 4);
        let m = l.submit(1, Guarantee::Safe);
        // 3 is partitioned off and forms its own ring without ever delivering m…
        l.form(&[3], 8);
        // …then 1 delivers m as safe in the old configuration: 3 was a member.
        l.deliver_g(1, m, r, Guarantee::Safe);
        assert!(matches!(
            l.c.violations(),
            [Violation::SafeNotDelivered { member, next: Some(_), .. }] if member.node == NodeId(3)
        ));
    }

    #[test]
    fn a_member_still_in_the_configuration_at_the_end_is_held_to_it() {
        let mut l = Log::new(&[1, 2]);
        let r = l.form(&[1, 2], 4);
        let m = l.submit(2, Guarantee::Safe);
        l.deliver_g(2, m, r, Guarantee::Safe);
        l.finish();
        assert!(matches!(
            l.c.violations(),
            [Violation::SafeNotDelivered { next: None, .. }]
        ));
    }

    #[test]
    fn a_safe_message_delivered_as_agreed_is_caught() {
        let mut l = Log::new(&[1]);
        let r = l.form(&[1], 4);
        let m = l.submit(1, Guarantee::Safe);
        l.deliver_g(1, m, r, Guarantee::Agreed);
        assert_eq!(l.kinds(), [Property::SafeDelivery]);
    }
}
