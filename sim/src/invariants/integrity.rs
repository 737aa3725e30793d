//! Integrity: nothing is delivered that was not sent, and nothing twice.
//!
//! EVS94 "Basic Delivery" (COROSYNC.md §6, rows 1.2 and 1.3); TOCS95 per-ring sequence
//! numbers. Checked on every delivery, before any other property sees it:
//!
//! * **no creation** — the payload decodes to a [`MsgId`](crate::payload::MsgId), every byte
//!   of it matches what the workload built, that id was *accepted* by `submit` before this
//!   delivery, and the delivery names its submitter as sender;
//! * **no duplication** — a process delivers each message at most once;
//! * **one ring per message** — every process that delivers a message delivers it as ordered
//!   on the same ring (TOTEM-SRP.md §8.5: a message is delivered in the configuration it was
//!   sent in or the transitional one after it, so on one ring only).
//!
//! A delivery that fails the first two checks is not passed on: the other properties would
//! only repeat the same fault under other names.

use totem_proto::RingId;
use totem_ring::Delivery;

use super::{Core, MsgIdx, ProcIdx, Violation};
use crate::payload;

#[derive(Debug, Default)]
pub(crate) struct Integrity {
    /// The ring each delivered message was first delivered on, and by whom.
    ring_of: Vec<Option<(RingId, ProcIdx)>>,
}

impl Integrity {
    /// Checks a delivery; `Some(message)` if it is a submitted message not delivered before.
    pub(crate) fn on_deliver(
        &mut self,
        core: &Core,
        p: ProcIdx,
        d: &Delivery,
        out: &mut Vec<Violation>,
    ) -> Option<MsgIdx> {
        let at = core.now;
        let proc = core.proc(p);
        let not_submitted = |reason: String| Violation::NotSubmitted {
            at,
            proc,
            sender: d.sender,
            len: d.payload.len(),
            reason,
        };
        let id = match payload::decode(&d.payload) {
            Ok(id) => id,
            Err(e) => {
                out.push(not_submitted(e.to_string()));
                return None;
            }
        };
        let Some(m) = core.msg_idx(id) else {
            out.push(not_submitted(format!("{id} was never accepted by submit")));
            return None;
        };
        if core.msgs[m].len != d.payload.len() {
            out.push(not_submitted(format!(
                "{id} was submitted with {} bytes",
                core.msgs[m].len
            )));
            return None;
        }
        if core.procs[p].delivered.contains(m) {
            out.push(Violation::Duplicate { at, proc, msg: id });
            return None;
        }
        if id.node != d.sender {
            out.push(Violation::WrongSender {
                at,
                proc,
                msg: id,
                claimed: d.sender,
            });
        }
        if self.ring_of.len() <= m {
            self.ring_of.resize(m + 1, None);
        }
        match &self.ring_of[m] {
            None => self.ring_of[m] = Some((d.ring_id, p)),
            Some((ring, first)) if *ring != d.ring_id => out.push(Violation::TwoRings {
                at,
                msg: id,
                first: (core.proc(*first), *ring),
                second: (proc, d.ring_id),
            }),
            Some(_) => {}
        }
        Some(m)
    }
}

#[cfg(test)]
mod tests {
    use totem_proto::{Guarantee, NodeId};

    use super::super::test_log::{LEN, Log};
    use super::super::{Property, Violation};
    use crate::payload::{self, MsgId};

    #[test]
    fn a_clean_log_passes() {
        let mut l = Log::new(&[1, 2]);
        let r = l.form(&[1, 2], 4);
        let m = l.submit(1, Guarantee::Agreed);
        l.deliver_all(&[1, 2], m, r);
        assert_eq!(l.kinds(), []);
    }

    #[test]
    fn duplicates_inventions_and_damage_are_caught() {
        let mut l = Log::new(&[1, 2]);
        let r = l.form(&[1, 2], 4);
        let m = l.submit(1, Guarantee::Agreed);
        l.deliver(2, m, r);
        l.deliver(2, m, r);
        assert!(matches!(l.c.violations()[0], Violation::Duplicate { .. }));
        // Never submitted.
        let ghost = MsgId {
            node: NodeId(1),
            incarnation: 0,
            counter: 7,
        };
        l.deliver_payload(2, NodeId(1), payload::encode(ghost, 30), r);
        // Damaged on the way.
        let mut bad = payload::encode(m, LEN).to_vec();
        bad[40] ^= 0xff;
        l.deliver_payload(1, NodeId(1), bad.into(), r);
        assert_eq!(l.kinds(), [Property::Integrity; 3]);
        assert!(
            matches!(&l.c.violations()[1], Violation::NotSubmitted { reason, .. } if reason.contains("never accepted"))
        );
    }

    #[test]
    fn one_message_on_two_rings_is_caught() {
        let mut l = Log::new(&[1, 2]);
        let r1 = l.form(&[1], 4);
        let r2 = l.form(&[2], 5);
        let m = l.submit(1, Guarantee::Agreed);
        l.deliver(1, m, r1);
        l.deliver(2, m, r2);
        assert!(matches!(l.c.violations(), [Violation::TwoRings { .. }]));
    }
}
