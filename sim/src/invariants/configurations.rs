//! Configurations: every process installs a consistent sequence of configurations that all
//! their members agree on, each regular one preceded by its transitional one.
//!
//! EVS94 "Delivery of Configuration Changes" (COROSYNC.md §6, rows 2.1–2.4; TOTEM-SRP.md
//! §8.1–8.5); TOCS95 membership: ring ids are unique and grow (the creator's seq is above
//! every seq it has seen, corosync persists it and adds 1 at boot), members come from the
//! one commit token of the ring, and recovery installs the transitional configuration
//! before the regular one. Exactly what is checked, per configuration event of process p
//! on node n:
//!
//! * **self-inclusion (2.1)**: n is a member;
//! * **persisted first**: the ring seq was announced with `Event::RingSeqUsed` before the
//!   configuration (the driver persists those; a restart must never reuse a ring id), and
//!   the persisted seq never goes down;
//! * **transitional precedes regular (2.3)**: a regular configuration comes right after a
//!   transitional configuration of the same ring id, and a transitional configuration never
//!   follows another one; the transitional members are a subset of the new regular
//!   configuration and of p's previous regular configuration (of {n} for p's first);
//!   `left` = old − transitional and `joined` = new − transitional;
//! * **increasing ring ids (8.1)**: each regular ring id of node n is above the previous
//!   one, across restarts;
//! * **agreement (2.4)**: every process that installs regular ring r lists the same
//!   members; every process that installs the transitional configuration of new ring r
//!   coming from the same old ring lists the same members; a process named in p's
//!   transitional configuration that installed the new ring came from p's old ring, and no
//!   process from another old ring is named;
//! * **deliveries fall in a configuration (2.2)**: a message is delivered only after a
//!   configuration is installed, tagged with the configuration's ring in the regular part
//!   and with the old regular ring in the transitional part (TOTEM-SRP.md §8.5: delivered
//!   in the configuration it was sent in or in the transitional one after it).

use alloc::collections::BTreeMap;

use totem_proto::{NodeId, RingId};
use totem_ring::{Configuration, ConfigurationKind};

use super::{ConfIdx, ConfName, ConfRule, Core, MsgIdx, ProcIdx, Violation};

/// One process's transitional configuration into a new ring.
#[derive(Debug, Clone)]
struct Move {
    proc: ProcIdx,
    /// The regular ring it came from (`None`: its first configuration).
    old: Option<RingId>,
    members: Vec<NodeId>,
}

#[derive(Debug, Default)]
pub(crate) struct Configurations {
    /// Per node (all incarnations): the highest ring seq persisted.
    persisted: BTreeMap<NodeId, u64>,
    /// Per node (all incarnations): the last regular ring installed.
    last_ring: BTreeMap<NodeId, RingId>,
    /// Regular ring → the first process that installed it and its members.
    regular: BTreeMap<RingId, (ProcIdx, Vec<NodeId>)>,
    /// New ring → every transitional configuration into it.
    moves: BTreeMap<RingId, Vec<Move>>,
}

fn minus(a: &[NodeId], b: &[NodeId]) -> Vec<NodeId> {
    a.iter().filter(|x| !b.contains(x)).copied().collect()
}

fn subset(a: &[NodeId], b: &[NodeId]) -> bool {
    a.iter().all(|x| b.contains(x))
}

fn same_set(a: &[NodeId], b: &[NodeId]) -> bool {
    subset(a, b) && subset(b, a)
}

impl Configurations {
    pub(crate) fn on_ring_seq(
        &mut self,
        core: &Core,
        p: ProcIdx,
        seq: u64,
        out: &mut Vec<Violation>,
    ) {
        let proc = core.proc(p);
        let slot = self.persisted.entry(proc.node).or_insert(0);
        if seq < *slot {
            out.push(Violation::Configuration {
                at: core.now,
                proc,
                conf: ConfName {
                    kind: ConfigurationKind::Regular,
                    ring_id: RingId::new(proc.node, seq),
                    members: Vec::new(),
                },
                rule: ConfRule::RingSeqWentBack {
                    persisted: *slot,
                    now: seq,
                },
            });
        }
        *slot = (*slot).max(seq);
    }

    pub(crate) fn on_config(
        &mut self,
        core: &Core,
        p: ProcIdx,
        ci: ConfIdx,
        c: &Configuration,
        out: &mut Vec<Violation>,
    ) {
        let proc = core.proc(p);
        let node = proc.node;
        let conf = &core.confs[ci];
        let mut fail = |rule: ConfRule| {
            out.push(Violation::Configuration {
                at: core.now,
                proc,
                conf: conf.clone(),
                rule,
            });
        };
        if !c.members.contains(&node) {
            fail(ConfRule::SelfInclusion);
        }
        let persisted = self.persisted.get(&node).copied().unwrap_or(0);
        if c.ring_id.seq > persisted {
            fail(ConfRule::RingSeqNotPersisted { persisted });
        }
        let prev = core.procs[p].last_conf.map(|i| &core.confs[i]);
        let old_regular = core.procs[p].last_regular.map(|i| &core.confs[i]);
        match c.kind {
            ConfigurationKind::Transitional => {
                if prev.is_some_and(|x| x.kind == ConfigurationKind::Transitional) {
                    fail(ConfRule::DoubleTransitional);
                }
                let old_members = old_regular.map_or_else(|| vec![node], |r| r.members.clone());
                if !subset(&c.members, &old_members) {
                    fail(ConfRule::TransitionalNotSubset {
                        of: old_members.clone(),
                    });
                }
                let left = minus(&old_members, &c.members);
                if !same_set(&left, &c.left) {
                    fail(ConfRule::LeftJoined {
                        expected: left,
                        got: c.left.clone(),
                    });
                }
                let mine = Move {
                    proc: p,
                    old: old_regular.map(|r| r.ring_id),
                    members: c.members.clone(),
                };
                let moves = self.moves.entry(c.ring_id).or_default();
                for other in moves.iter() {
                    let other_proc = core.proc(other.proc);
                    let same_old = mine.old.is_some() && mine.old == other.old;
                    let bad = if same_old {
                        !same_set(&mine.members, &other.members)
                    } else {
                        mine.members.contains(&other_proc.node) || other.members.contains(&node)
                    };
                    if bad {
                        fail(ConfRule::TransitionalMovers {
                            other: other_proc,
                            other_old: other.old,
                        });
                    }
                }
                moves.push(mine);
            }
            ConfigurationKind::Regular => {
                let trans = match prev {
                    Some(t)
                        if t.kind == ConfigurationKind::Transitional && t.ring_id == c.ring_id =>
                    {
                        Some(t)
                    }
                    _ => {
                        fail(ConfRule::MissingTransitional {
                            previous: prev.cloned(),
                        });
                        None
                    }
                };
                let trans_members = trans.map(|t| t.members.clone()).unwrap_or_default();
                if trans.is_some() && !subset(&trans_members, &c.members) {
                    fail(ConfRule::TransitionalNotSubset {
                        of: c.members.clone(),
                    });
                }
                if trans.is_some() {
                    let joined = minus(&c.members, &trans_members);
                    if !same_set(&joined, &c.joined) {
                        fail(ConfRule::LeftJoined {
                            expected: joined,
                            got: c.joined.clone(),
                        });
                    }
                }
                if let Some(previous) = self.last_ring.get(&node).copied()
                    && c.ring_id <= previous
                {
                    fail(ConfRule::RingNotIncreasing { previous });
                }
                self.last_ring.insert(node, c.ring_id);
                match self.regular.get(&c.ring_id) {
                    None => {
                        self.regular.insert(c.ring_id, (p, c.members.clone()));
                    }
                    Some((q, members)) if members != &c.members => fail(ConfRule::Agreement {
                        other: core.proc(*q),
                        other_members: members.clone(),
                    }),
                    Some(_) => {}
                }
            }
        }
    }

    pub(crate) fn on_deliver(
        &mut self,
        core: &Core,
        p: ProcIdx,
        m: MsgIdx,
        ring: RingId,
        out: &mut Vec<Violation>,
    ) {
        let s = &core.procs[p];
        let expected = match s.last_conf {
            None => None,
            // Regular part: the configuration's own ring; transitional part: the old one.
            Some(c) if core.confs[c].kind == ConfigurationKind::Regular => {
                Some(core.confs[c].ring_id)
            }
            Some(_) => s.last_regular.map(|r| core.confs[r].ring_id),
        };
        if expected != Some(ring) {
            out.push(Violation::WrongRing {
                at: core.now,
                proc: s.proc,
                msg: core.id(m),
                ring,
                expected,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use totem_proto::{Guarantee, NodeId, RingId};
    use totem_ring::{Configuration, ConfigurationKind, Event};

    use super::super::test_log::Log;
    use super::super::{ConfRule, Property, Violation};

    fn rules(l: &Log) -> Vec<ConfRule> {
        l.c.violations()
            .iter()
            .filter_map(|v| match v {
                Violation::Configuration { rule, .. } => Some(rule.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_clean_log_of_splits_merges_and_restarts_passes() {
        let mut l = Log::new(&[1, 2, 3, 4]);
        l.form(&[1, 2, 3, 4], 4);
        l.form(&[1, 2], 8);
        l.form(&[3, 4], 8);
        l.crash(4);
        l.restart(4);
        l.form(&[4], 9);
        l.form(&[1, 2, 3, 4], 16);
        l.finish();
        assert_eq!(l.kinds(), []);
    }

    #[test]
    fn a_regular_configuration_without_its_transitional_one_is_caught() {
        let mut l = Log::new(&[1]);
        l.event(1, &Event::RingSeqUsed(4));
        l.conf(
            1,
            ConfigurationKind::Regular,
            RingId::new(NodeId(1), 4),
            &[1],
        );
        assert!(matches!(
            rules(&l)[..],
            [ConfRule::MissingTransitional { previous: None }]
        ));
    }

    #[test]
    fn members_disagreeing_on_a_ring_are_caught() {
        let mut l = Log::new(&[1, 2, 3]);
        let r = RingId::new(NodeId(1), 4);
        l.install(1, r, &[1], &[1, 2]);
        l.install(2, r, &[2], &[1, 2, 3]);
        assert!(
            rules(&l)
                .iter()
                .any(|x| matches!(x, ConfRule::Agreement { .. }))
        );
    }

    #[test]
    fn self_exclusion_unpersisted_and_decreasing_rings_are_caught() {
        let mut l = Log::new(&[1, 2]);
        l.form(&[1, 2], 8);
        let c = Configuration {
            kind: ConfigurationKind::Transitional,
            ring_id: RingId::new(NodeId(2), 12),
            members: vec![NodeId(2)],
            left: vec![NodeId(1)],
            joined: vec![],
        };
        l.event(1, &Event::Configuration(c));
        let r = rules(&l);
        assert!(r.contains(&ConfRule::SelfInclusion));
        assert!(
            r.iter()
                .any(|x| matches!(x, ConfRule::RingSeqNotPersisted { .. }))
        );
        let mut l = Log::new(&[1]);
        l.form(&[1], 8);
        l.install(1, RingId::new(NodeId(1), 6), &[1], &[1]);
        assert!(
            rules(&l)
                .iter()
                .any(|x| matches!(x, ConfRule::RingNotIncreasing { .. }))
        );
    }

    #[test]
    fn transitional_members_from_another_old_ring_are_caught() {
        let mut l = Log::new(&[1, 2, 3]);
        l.form(&[1, 2], 4);
        l.form(&[3], 4);
        // 1 claims 3 moves with it from ring 1.4, but 3 came from 3.4.
        let r = RingId::new(NodeId(1), 8);
        l.install(3, r, &[3], &[1, 2, 3]);
        l.install(1, r, &[1, 2, 3], &[1, 2, 3]);
        assert!(
            rules(&l)
                .iter()
                .any(|x| matches!(x, ConfRule::TransitionalMovers { .. }))
        );
    }

    #[test]
    fn a_delivery_outside_its_configuration_is_caught() {
        let mut l = Log::new(&[1, 2]);
        let m = l.submit(1, Guarantee::Agreed);
        l.deliver(1, m, RingId::new(NodeId(1), 4));
        let r = l.form(&[1, 2], 8);
        l.deliver(2, m, RingId::new(NodeId(1), 4));
        let _ = r;
        assert_eq!(
            l.kinds(),
            [Property::Configurations, Property::Configurations]
        );
        assert!(matches!(
            l.c.violations()[0],
            Violation::WrongRing { expected: None, .. }
        ));
    }
}
