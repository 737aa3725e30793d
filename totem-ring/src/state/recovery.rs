//! Recovery and the installation of a new configuration (Totem TOCS'95 recovery; Moser et
//! al., Extended Virtual Synchrony, 1994; corosync `memb_state_recovery_enter`,
//! `memb_state_operational_enter`; TOTEM-SRP.md §5).
//!
//! Before the new ring carries new traffic, the members that move together from one old
//! ring (the transitional configuration) exchange the old-ring messages some of them miss,
//! wrapped as encapsulated messages of the new ring. When every member holds all of them,
//! each delivers the rest of the old ring's messages, the transitional configuration, the
//! messages that configuration can still guarantee, and finally the regular configuration.

use alloc::vec::Vec;

use totem_proto::{Body, Frame, MembCommitTokenRepr, NodeId, OrfTokenRepr, RingId, Seq};

use crate::event::{Configuration, ConfigurationKind, Event};
use crate::ring::{Ring, State};
use crate::sortq::Stored;
use crate::timer::Timer;

impl Ring {
    /// Enters RECOVERY from the completed commit token.
    pub(crate) fn recovery_enter(&mut self, token: &MembCommitTokenRepr) {
        self.orf_token_discard = false;
        self.recovery.reset(1);
        self.retrans_queue.clear();
        self.token_seq_seen = None;
        let old = self.old.ring_id;
        // The transitional configuration: new members that come from our old ring and
        // were members of it (corosync memb_set_and_with_ring_id).
        let trans: Vec<_> = token
            .members
            .iter()
            .filter(|m| m.old_ring_id == old && self.memb.contains(&m.node))
            .copied()
            .collect();
        self.trans_memb = trans.iter().map(|m| m.node).collect();
        self.deliver_memb = self.trans_memb.clone();
        // Up to the highest seq any transitional member delivered, the old regular
        // configuration completed delivery (safe messages were known stable there): the
        // same bound at every member, from the same token.
        self.old_delivered_bound = trans.iter().map(|m| m.high_delivered).max().unwrap_or(0);
        if trans.iter().any(|m| !m.received) {
            // Every member re-broadcasts every old message it holds above the lowest aru
            // among the transitional members; receivers drop duplicates by old seq. What
            // another member re-broadcasts first is struck off (`recover_old_message`).
            let low = trans
                .iter()
                .map(|m| m.aru)
                .min()
                .unwrap_or(0)
                .min(self.old.high_seq_received);
            for seq in low + 1..=self.old.high_seq_received {
                if let Some(m) = self.regular.get(seq) {
                    self.retrans_queue.insert(seq, m.frame.clone());
                }
            }
            self.received_flg = false;
        }
        self.aru = 0;
        self.high_seq_received = 0;
        self.install_seq = 0;
        self.last_released = 0;
        self.aru_count = 0;
        self.seq_unchanged = 0;
        self.last_seq = 0;
        self.last_origin = None;
        self.held_token = None;
        self.last_aru = 0;
        self.set_retrans_flg = false;
        self.retrans_flg_count = 0;
        self.rotation_counter = 0;
        self.state = State::Recovery;
        self.stats.recovery_entered += 1;
        self.timers.set(Timer::Token, self.now + self.cfg.token);
    }

    /// The representative starts the new ring's token (corosync `orf_token_send_initial`,
    /// a fresh token rather than the paper's converted commit token).
    pub(crate) fn orf_token_send_initial(&mut self) {
        let t = OrfTokenRepr {
            ring_id: self.ring_id,
            token_seq: 0,
            seq: 0,
            aru: 0,
            aru_id: Some(self.me),
            backlog: 0,
            fcc: 0,
            retrans_flg: !self.retrans_queue.is_empty(),
            rtr: heapless::Vec::new(),
        };
        if t.retrans_flg {
            self.set_retrans_flg = true;
        }
        let to = self.me; // The representative processes the first visit itself.
        if let Some(frame) = self.encode(&t, totem_proto::Flags::NONE, self.head.version) {
            self.send_token(to, frame);
        }
    }

    /// The end-of-recovery rules run on every token visit in RECOVERY (TOTEM-SRP.md §5.4).
    /// Returns whether the node became operational.
    pub(crate) fn recovery_token_rules(&mut self, t: &mut OrfTokenRepr) -> bool {
        if !self.retrans_queue.is_empty() {
            if !t.retrans_flg {
                t.retrans_flg = true;
                self.set_retrans_flg = true;
            }
        } else if t.retrans_flg && self.set_retrans_flg {
            t.retrans_flg = false;
            self.set_retrans_flg = false;
        }
        self.retrans_flg_count = if t.retrans_flg {
            0
        } else {
            self.retrans_flg_count + 1
        };
        // Nobody had anything left to re-broadcast for two visits: freeze the high mark.
        if self.retrans_flg_count == 2 {
            self.install_seq = t.seq;
        }
        if self.retrans_flg_count >= 2 && !self.received_flg && self.install_seq <= self.aru {
            self.received_flg = true;
            self.deliver_memb = self.trans_memb.clone();
        }
        // Then wait until the token's aru covered it on two visits: everyone has it all.
        if self.retrans_flg_count >= 3 && self.install_seq <= t.aru {
            self.rotation_counter += 1;
        } else {
            self.rotation_counter = 0;
        }
        if self.rotation_counter == 2 {
            self.operational_enter();
            self.rotation_counter = 0;
            self.retrans_flg_count = 0;
            return true;
        }
        false
    }

    /// Back to the saved old-ring state after a failed recovery (corosync
    /// `memb_recovery_state_token_loss` / `old_ring_state_restore`).
    pub(crate) fn old_ring_restore(&mut self) {
        if self.old.saved {
            self.aru = self.old.aru;
            self.high_seq_received = self.old.high_seq_received;
            self.last_released = self.old.last_released;
        }
        self.retrans_queue.clear();
        self.recovery.reset(1);
    }

    /// Installs the new ring: the exact order of TOTEM-SRP.md §5.5.
    pub(crate) fn operational_enter(&mut self) {
        // 2: the recovered old-ring messages are already in the old ring's queue
        // (`recover_old_message`, on receipt).
        let old_high = self.old.high_seq_received;

        // 3: deliver in the old regular configuration up to the first hole — and not past
        // a safe message beyond what the old configuration completed (its delivery there
        // would claim every old member received it, which nobody can know any more).
        self.deliver_old_regular(old_high);

        // 4, 5: the transitional configuration.
        let left: Vec<NodeId> = self
            .memb
            .iter()
            .filter(|n| !self.trans_memb.contains(n))
            .copied()
            .collect();
        let joined: Vec<NodeId> = self
            .new_memb
            .iter()
            .filter(|n| !self.trans_memb.contains(n))
            .copied()
            .collect();
        let skip_transitional = {
            #[cfg(feature = "_planted-bugs")]
            {
                self.bug == Some(crate::PlantedBug::SkipTransitional)
            }
            #[cfg(not(feature = "_planted-bugs"))]
            {
                false
            }
        };
        if !skip_transitional {
            self.events.push_back(Event::Configuration(Configuration {
                kind: ConfigurationKind::Transitional,
                ring_id: self.ring_id,
                members: self.trans_memb.clone(),
                left: left.clone(),
                joined: Vec::new(),
            }));
        }

        // 7: the remaining old messages, in the transitional configuration: holes skipped,
        // only from originators in it (EVS failure atomicity).
        self.deliver_old_transitional(old_high);

        // Partly joined messages cannot complete any more (senders restart them).
        let dropped = self.reasm.clear();
        self.stats.fragments_discarded += dropped as u64;
        self.outq.restart_partial();

        // 9: the regular configuration.
        self.events.push_back(Event::Configuration(Configuration {
            kind: ConfigurationKind::Regular,
            ring_id: self.ring_id,
            members: self.new_memb.clone(),
            left: Vec::new(),
            joined: joined.clone(),
        }));
        debug!(
            "node {}: a new membership ({}) was formed. Members joined: {:?} left: {:?}",
            self.me, self.ring_id, joined, left
        );

        // 10: the new ring continues from the recovery phase's seqs, all consumed.
        let base = self.aru;
        self.regular.reset(base + 1);
        self.high_seq_received = base;
        self.high_delivered = base;
        self.last_released = base;
        self.stable = base;
        self.last_aru = base;
        self.last_forwarded_seq = base;
        self.memb = self.new_memb.clone();
        self.memb_ring_id = self.ring_id;
        self.proc_set = self.memb.iter().copied().collect();
        self.fail_set.clear();
        self.consensus_set.clear();
        self.leavers.clear();
        self.state = State::Operational;
        self.stats.operational_entered += 1;
        self.received_flg = true;
        self.old.saved = false;
        self.old.ring_id = self.ring_id;
        self.recovery.reset(1);
        self.retrans_queue.clear();
    }

    /// Step 3 of installing a ring.
    fn deliver_old_regular(&mut self, end: Seq) {
        let ring = self.old.ring_id;
        while self.high_delivered < end {
            let seq = self.high_delivered + 1;
            let Some(m) = self.regular.get(seq) else {
                break;
            };
            if m.guarantee == totem_proto::Guarantee::Safe && seq > self.old_delivered_bound {
                break;
            }
            let (o, g, p) = (m.originator, m.guarantee, m.payload.clone());
            self.high_delivered = seq;
            self.deliver_payload(ring, o, g, &p);
        }
    }

    /// Step 7 of installing a ring: what is left of the old ring, in the transitional
    /// configuration. Up to the first hole everything is delivered (these messages are in
    /// order at every transitional member; they are here only because a safe message among
    /// them could not be delivered as such in the old configuration). After a hole, only
    /// messages of transitional members are delivered: one of a departed sender may depend
    /// on the missing message (corosync `messages_deliver_to_app` with `skip = 1` and its
    /// `my_deliver_memb_list` filter).
    fn deliver_old_transitional(&mut self, end: Seq) {
        let ring = self.old.ring_id;
        let mut after_hole = false;
        for seq in self.high_delivered + 1..=end {
            self.high_delivered = seq;
            let Some(m) = self.regular.get(seq) else {
                after_hole = true;
                continue;
            };
            if after_hole && !self.deliver_memb.contains(&m.originator) {
                continue;
            }
            let (o, g, p) = (m.originator, m.guarantee, m.payload.clone());
            self.deliver_payload(ring, o, g, &p);
        }
    }
}

impl Ring {
    /// Puts the old-ring message inside an encapsulated MCAST payload into the old ring's
    /// queue, unless it is there already or belongs to another ring (corosync
    /// `deliver_messages_from_recovery_to_regular`, done per message as it arrives).
    pub(crate) fn recover_old_message(&mut self, payload: &bytes::Bytes) {
        let Some((seq, (ring, stored))) = unwrap_encapsulated(payload) else {
            return;
        };
        if ring != self.old.ring_id {
            return;
        }
        // Someone re-broadcast this old message on the new ring before us: it now has a
        // seq in the new ring's order, which every member must hold before the ring is
        // installed (the end-of-recovery rules, TOTEM-SRP.md §5.4), so our own copy would
        // add nothing. corosync re-broadcasts regardless (`memb_state_recovery_enter`
        // queues every old message above the lowest aru at every member), so recovery
        // costs members × messages frames: 2 s at 41 nodes after a busy partition, 18 s at
        // 58 (simulator seeds 262, 248), long enough that a group gathering meanwhile
        // fails the recovering group by consensus timeout, then the roles swap, and two
        // halves keep forming rings without each other (seed 262).
        self.retrans_queue.remove(&seq);
        #[cfg(feature = "_planted-bugs")]
        if self.bug == Some(crate::PlantedBug::DropRecovered) {
            return;
        }
        if self.regular.insert(seq, stored) == crate::sortq::Insert::Stored {
            self.old.high_seq_received = self.old.high_seq_received.max(seq);
        }
    }
}

/// The old-ring message inside an encapsulated MCAST payload: its seq, and its ring id with
/// the stored form. `None` for anything that is not a valid plain MCAST frame.
fn unwrap_encapsulated(payload: &bytes::Bytes) -> Option<(Seq, (RingId, Stored))> {
    let frame = Frame::parse(payload).ok()?;
    let Body::Mcast(v) = frame.body else {
        return None;
    };
    if frame
        .header
        .flags
        .contains(totem_proto::Flags::ENCAPSULATED)
    {
        return None;
    }
    let inner = payload.slice_ref(v.payload());
    let stored = Stored {
        frame: payload.clone(),
        originator: v.originator(),
        guarantee: v.guarantee(),
        payload: inner,
    };
    Some((v.seq(), (v.ring_id(), stored)))
}
