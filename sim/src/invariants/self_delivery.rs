//! Self delivery: a process delivers every message it submitted, unless it fails.
//!
//! EVS94 "Self-Delivery" (COROSYNC.md §6, row 3; TOTEM-SRP.md §8.8): if p sends m and does
//! not crash, p delivers m (in the configuration it was sent in or the transitional one
//! after). The ring keeps a process's own messages in its queues across configuration
//! changes, so it holds even for a process partitioned alone or paused past the token
//! timeout.
//!
//! Exactly what is checked:
//!
//! * **in its configuration** — once any process delivered p's message m as ordered on
//!   ring r (so m was sent in r), p must deliver it before installing its next regular
//!   configuration after r: in r or in the transitional configuration that follows. The
//!   TOTEM-SRP.md §8.8 caveat (a message after a gap whose originator is not a
//!   transitional member is discarded) never applies to p's own messages, since p is in
//!   each of its transitional configurations. Checked when p moves on and when someone
//!   delivers one of p's messages on a ring p already left.
//! * **by the end** — at the end of the run (after the liveness phase, when every process
//!   had time to deliver), every message `submit` accepted from a process that is still
//!   alive has been delivered by it, whether or not it was ever sent.
//!
//! A process that crashed or left owes nothing. During the run the module counts what is
//! still owed, which the driver uses to know when the cluster has gone quiet.

use alloc::collections::BTreeMap;

use totem_proto::RingId;
use totem_ring::ConfigurationKind;

use super::{BitSet, ConfIdx, Core, MsgIdx, ProcIdx, Violation};

#[derive(Debug, Default)]
pub(crate) struct SelfDelivery {
    /// Per process: own messages not yet delivered.
    owed: Vec<usize>,
    /// Messages delivered by anyone.
    seen: BitSet,
    /// (sender, ring) → the sender's messages ordered on that ring, and who delivered each
    /// first.
    ordered: BTreeMap<(ProcIdx, RingId), Vec<(MsgIdx, ProcIdx)>>,
    /// (sender, ring) → the regular ring the sender moved on to.
    left_ring: BTreeMap<(ProcIdx, RingId), RingId>,
}

impl SelfDelivery {
    fn owed(&mut self, p: ProcIdx) -> &mut usize {
        if self.owed.len() <= p {
            self.owed.resize(p + 1, 0);
        }
        &mut self.owed[p]
    }

    pub(crate) fn on_submit(&mut self, p: ProcIdx) {
        *self.owed(p) += 1;
    }

    pub(crate) fn on_deliver(
        &mut self,
        core: &Core,
        p: ProcIdx,
        m: MsgIdx,
        ring: RingId,
        out: &mut Vec<Violation>,
    ) {
        let sender = core.sender(m);
        if sender == p {
            let o = self.owed(p);
            *o = o.saturating_sub(1);
        }
        if self.seen.contains(m) {
            return;
        }
        self.seen.insert(m);
        self.ordered.entry((sender, ring)).or_default().push((m, p));
        if sender != p
            && let Some(next) = self.left_ring.get(&(sender, ring))
            && !core.procs[sender].delivered.contains(m)
        {
            out.push(Violation::SelfNotDeliveredInRing {
                at: core.now,
                proc: core.proc(sender),
                msg: core.id(m),
                ring,
                next: *next,
                witness: core.proc(p),
            });
        }
    }

    /// `p` installs `next`: if it is a regular configuration, p leaves its previous ring
    /// and must have delivered its own messages ordered there.
    pub(crate) fn on_config(
        &mut self,
        core: &Core,
        p: ProcIdx,
        next: ConfIdx,
        out: &mut Vec<Violation>,
    ) {
        let conf = &core.confs[next];
        if conf.kind != ConfigurationKind::Regular {
            return;
        }
        let Some(old) = core.procs[p].last_regular else {
            return;
        };
        let old_ring = core.confs[old].ring_id;
        self.left_ring.insert((p, old_ring), conf.ring_id);
        for (m, witness) in self.ordered.get(&(p, old_ring)).into_iter().flatten() {
            if !core.procs[p].delivered.contains(*m) {
                out.push(Violation::SelfNotDeliveredInRing {
                    at: core.now,
                    proc: core.proc(p),
                    msg: core.id(*m),
                    ring: old_ring,
                    next: conf.ring_id,
                    witness: core.proc(*witness),
                });
            }
        }
    }

    pub(crate) fn on_end(&mut self, p: ProcIdx) {
        *self.owed(p) = 0;
    }

    /// Own messages live processes still owe.
    pub(crate) fn missing(&self, core: &Core) -> usize {
        core.live()
            .iter()
            .map(|p| self.owed.get(*p).copied().unwrap_or(0))
            .sum()
    }

    pub(crate) fn finish(&mut self, core: &Core, out: &mut Vec<Violation>) {
        for p in core.live() {
            let s = &core.procs[p];
            let msgs: Vec<_> = s
                .submitted
                .iter()
                .filter(|m| !s.delivered.contains(**m))
                .map(|m| core.id(*m))
                .collect();
            if !msgs.is_empty() {
                out.push(Violation::SelfNotDelivered {
                    at: core.now,
                    proc: s.proc,
                    msgs,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use totem_proto::Guarantee;

    use super::super::Violation;
    use super::super::test_log::Log;

    #[test]
    fn a_clean_log_passes_and_a_crashed_sender_owes_nothing() {
        let mut l = Log::new(&[1, 2]);
        let r = l.form(&[1, 2], 4);
        let m = l.submit(1, Guarantee::Agreed);
        l.deliver_all(&[1, 2], m, r);
        l.submit(2, Guarantee::Agreed);
        assert_eq!(l.c.self_missing(), 1);
        l.crash(2);
        assert_eq!(l.c.self_missing(), 0);
        l.finish();
        assert_eq!(l.kinds(), []);
    }

    #[test]
    fn moving_on_without_an_own_message_others_delivered_is_caught() {
        // 1 sends m on ring 1.4; 2 delivers it there; 1 installs ring 1.8 without it.
        let mut l = Log::new(&[1, 2]);
        let r = l.form(&[1, 2], 4);
        let m = l.submit(1, Guarantee::Agreed);
        l.deliver(2, m, r);
        l.form(&[1], 8);
        assert!(matches!(
            l.c.violations(),
            [Violation::SelfNotDeliveredInRing { msg, next, .. }] if *msg == m && next.seq == 8
        ));
        // The other order: 1 moves on first, 2 delivers afterwards.
        let mut l = Log::new(&[1, 2]);
        let r = l.form(&[1, 2], 4);
        let m = l.submit(1, Guarantee::Agreed);
        l.form(&[1], 8);
        l.deliver(2, m, r);
        assert!(matches!(
            l.c.violations(),
            [Violation::SelfNotDeliveredInRing { .. }]
        ));
    }

    #[test]
    fn a_live_process_missing_its_own_message_is_caught() {
        let mut l = Log::new(&[1, 2]);
        let r = l.form(&[1, 2], 4);
        let m = l.submit(1, Guarantee::Agreed);
        l.deliver(2, m, r);
        l.finish();
        assert!(
            matches!(l.c.violations(), [Violation::SelfNotDelivered { msgs, .. }] if msgs == &[m])
        );
    }
}
