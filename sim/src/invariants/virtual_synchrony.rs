//! Virtual synchrony (failure atomicity): processes that install the same two consecutive
//! configurations deliver the same set of messages between them.
//!
//! EVS94 "Failure Atomicity" (COROSYNC.md §6, row 4; TOTEM-SRP.md §8.7): if p and q both
//! install configuration c and then both install the same next configuration c', they
//! deliver the same messages in c. TOCS95 recovery provides it: the members that move
//! together exchange the old ring's messages before either installs the transitional
//! configuration, and both deliver the same remainder in it.
//!
//! Exactly what is checked: for every process and every pair of consecutive configuration
//! events (c, c') in its log, the set of messages delivered after installing c and before
//! installing c' is recorded under the key (c, c'), where a configuration is named by its
//! kind, ring id and members (two transitional configurations of one new ring, coming from
//! different old rings, have different members and so are different configurations). Every
//! process with the same key must have recorded the same set. So both steps are covered:
//! regular c → its transitional t (messages of c delivered in c), and t → the new regular
//! configuration (old-ring messages delivered in t). A process that crashes between c and c'
//! records nothing.

use alloc::collections::BTreeMap;
use alloc::collections::btree_map::Entry;

use super::{ConfIdx, Core, MsgIdx, ProcIdx, Violation};

#[derive(Debug, Default)]
pub(crate) struct VirtualSynchrony {
    /// Per process: messages delivered since its last configuration event.
    interval: Vec<Vec<MsgIdx>>,
    /// (c, c') → the first process that installed both, and its sorted set.
    seen: BTreeMap<(ConfIdx, ConfIdx), (ProcIdx, Vec<MsgIdx>)>,
}

impl VirtualSynchrony {
    fn interval(&mut self, p: ProcIdx) -> &mut Vec<MsgIdx> {
        if self.interval.len() <= p {
            self.interval.resize_with(p + 1, Vec::new);
        }
        &mut self.interval[p]
    }

    pub(crate) fn on_deliver(&mut self, p: ProcIdx, m: MsgIdx) {
        self.interval(p).push(m);
    }

    pub(crate) fn on_config(
        &mut self,
        core: &Core,
        p: ProcIdx,
        next: ConfIdx,
        out: &mut Vec<Violation>,
    ) {
        let mut set = core::mem::take(self.interval(p));
        // Deliveries before the first configuration are `configurations.rs`'s business.
        let Some(prev) = core.procs[p].last_conf else {
            return;
        };
        set.sort_unstable();
        match self.seen.entry((prev, next)) {
            Entry::Vacant(e) => {
                e.insert((p, set));
            }
            Entry::Occupied(e) => {
                let (q, other) = e.get();
                if *other != set {
                    let only = |a: &[MsgIdx], b: &[MsgIdx]| {
                        a.iter()
                            .filter(|m| b.binary_search(m).is_err())
                            .map(|m| core.id(*m))
                            .collect()
                    };
                    out.push(Violation::DifferentSets {
                        at: core.now,
                        from: core.confs[prev].clone(),
                        to: core.confs[next].clone(),
                        a: core.proc(*q),
                        b: core.proc(p),
                        only_a: only(other, &set),
                        only_b: only(&set, other),
                    });
                }
            }
        }
    }

    pub(crate) fn on_end(&mut self, p: ProcIdx) {
        self.interval(p).clear();
    }
}

#[cfg(test)]
mod tests {
    use totem_proto::{Guarantee, NodeId, RingId};

    use super::super::Violation;
    use super::super::test_log::Log;

    /// Three nodes; 3 is cut off, 1 and 2 move on together to ring 8.
    fn split(l: &mut Log, deliver_at_2: bool) {
        let r = l.form(&[1, 2, 3], 4);
        let a = l.submit(1, Guarantee::Agreed);
        // From 3, which stays behind: its own delivery of b is not at stake here.
        let b = l.submit(3, Guarantee::Agreed);
        l.deliver_all(&[1, 2, 3], a, r);
        l.deliver(1, b, r);
        let r8 = RingId::new(NodeId(1), 8);
        l.begin_install(1, r8, &[1, 2]);
        l.begin_install(2, r8, &[1, 2]);
        // Node 2 delivers b in the transitional configuration (its regular part stopped
        // before b), node 1 delivered it in the regular one: both are fine.
        if deliver_at_2 {
            l.deliver(2, b, r);
        }
        l.end_install(1, r8, &[1, 2]);
        l.end_install(2, r8, &[1, 2]);
    }

    #[test]
    fn a_clean_log_passes() {
        let mut l = Log::new(&[1, 2, 3]);
        let r = l.form(&[1, 2], 4);
        let m = l.submit(1, Guarantee::Agreed);
        l.deliver_all(&[1, 2], m, r);
        l.form(&[1, 2], 8);
        assert_eq!(l.kinds(), []);
    }

    #[test]
    fn different_sets_between_the_same_configurations_are_caught() {
        let mut l = Log::new(&[1, 2, 3]);
        split(&mut l, false);
        // 1 went regular → trans with {a, b}; 2 with {a} and nothing in trans.
        let v = l.c.violations();
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(
            matches!(&v[0], Violation::DifferentSets { only_a, only_b, .. } if only_a.len() == 1 && only_b.is_empty())
        );
    }

    #[test]
    fn delivering_in_regular_at_one_and_in_transitional_at_the_other_is_still_caught() {
        // EVS94 failure atomicity is per configuration: b in regular at 1 but in
        // transitional at 2 means the regular → trans step differs.
        let mut l = Log::new(&[1, 2, 3]);
        split(&mut l, true);
        // Both steps differ: regular → trans ({a, b} vs {a}), trans → regular ({} vs {b}).
        assert!(matches!(
            l.c.violations(),
            [
                Violation::DifferentSets { .. },
                Violation::DifferentSets { .. }
            ]
        ));
    }
}
