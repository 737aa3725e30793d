//! The commit phase: the representative's commit token travels the new ring twice — each
//! member fills in what it had on its old ring on the first rotation and enters RECOVERY on
//! the second (Totem TOCS'95 membership protocol; corosync
//! `memb_state_commit_token_create`, `memb_state_commit_enter`,
//! `message_handler_memb_commit_token`; TOTEM-SRP.md §4.5).

use alloc::vec::Vec;

use totem_proto::{
    CommitMember, Flags, MembCommitToken, MembCommitTokenRepr, NodeId, RingId, WIRE_VERSION_MIN,
};

use crate::event::Event;
use crate::ring::{Ring, State};
use crate::timer::Timer;

impl Ring {
    /// The representative creates the commit token for proc \ fail and commits itself.
    pub(crate) fn commit_token_create(&mut self) {
        let members: Vec<NodeId> = self.proc_set.difference(&self.fail_set).copied().collect();
        // The new seq is above every seq seen anywhere (corosync adds 4), so ring ids are
        // never reused (Totem TOCS'95 ring id uniqueness).
        let seq = self.highest_ring_seq.max(self.ring_id.seq) + 4;
        let ring_id = RingId::new(self.me, seq);
        let mut repr = MembCommitTokenRepr {
            ring_id,
            token_seq: 0,
            wire_version: self.common_version(&members),
            memb_index: 0,
            members: heapless::Vec::new(),
        };
        for n in &members {
            // Entries are placeholders until their member fills them in.
            let placeholder = CommitMember {
                node: *n,
                old_ring_id: RingId::new(*n, 0),
                aru: 0,
                high_delivered: 0,
                received: false,
            };
            // proc_set is bounded by MAX_NODES, the capacity.
            let _ = repr.members.push(placeholder);
        }
        self.commit_enter(repr);
    }

    /// Enters COMMIT with `token` (at the creator and at each member on the first
    /// rotation): save the old ring's state, fill in our entry, forward.
    fn commit_enter(&mut self, mut token: MembCommitTokenRepr) {
        // Saved once, kept across failed attempts until a ring becomes operational: a
        // second save after a failed recovery would lose the old ring's state (#445).
        if !self.old.saved {
            self.old.saved = true;
            self.old.ring_id = self.ring_id;
            self.old.aru = self.aru;
            self.old.high_seq_received = self.high_seq_received;
            self.old.last_released = self.last_released;
        }
        let idx = usize::from(token.memb_index);
        let Some(entry) = token.members.get_mut(idx) else {
            return;
        };
        *entry = CommitMember {
            node: self.me,
            old_ring_id: self.old.ring_id,
            aru: self.old.aru,
            high_delivered: self.high_delivered,
            received: self.old.aru == self.old.high_seq_received,
        };
        // Members of the same old ring with a lower aru than the best among them have
        // something to receive (corosync memb_state_commit_token_update).
        let old = self.old.ring_id;
        let high_aru = token.members[..=idx]
            .iter()
            .filter(|m| m.old_ring_id == old)
            .map(|m| m.aru)
            .max();
        if let Some(high) = high_aru {
            for m in token.members[..=idx]
                .iter_mut()
                .filter(|m| m.old_ring_id == old)
            {
                if m.aru < high {
                    m.received = false;
                }
            }
        }
        token.memb_index += 1;
        self.new_memb = token.members.iter().map(|m| m.node).collect();
        self.timers.stop(Timer::Join);
        self.timers.stop(Timer::Consensus);
        self.timers.stop(Timer::SendJoin);
        self.ring_id = token.ring_id;
        self.highest_ring_seq = self.highest_ring_seq.max(token.ring_id.seq);
        // Persist before the token goes on (TOTEM-SRP.md §11).
        self.events.push_back(Event::RingSeqUsed(token.ring_id.seq));
        self.head.version = token.wire_version;
        self.state = State::Commit;
        self.stats.commit_entered += 1;
        self.trc = 0;
        self.pbl = 0;
        self.timers.set(Timer::Token, self.now + self.cfg.token);
        self.commit_token_send(&mut token);
    }

    /// Sends the commit token on to the next member of the new ring.
    fn commit_token_send(&mut self, token: &mut MembCommitTokenRepr) {
        token.token_seq += 1;
        let n = token.members.len().max(1);
        let to = token.members[usize::from(token.memb_index) % n].node;
        if let Some(frame) = self.encode(&*token, Flags::NONE, WIRE_VERSION_MIN) {
            self.stats.memb_commit_token_tx += 1;
            self.send_token(to, frame);
        }
    }

    // corosync message_handler_memb_commit_token
    pub(crate) fn on_commit_token(&mut self, v: &MembCommitToken<&[u8]>) {
        self.stats.memb_commit_token_rx += 1;
        let Ok(mut token) = MembCommitTokenRepr::parse(v) else {
            return;
        };
        let n = token.members.len();
        let idx = usize::from(token.memb_index);
        match self.state {
            State::Gather => {
                // First rotation: join if it is exactly the membership we agreed on, newer
                // than our ring, and our entry is the one to fill.
                let agreed = token
                    .members
                    .iter()
                    .map(|m| m.node)
                    .eq(self.proc_set.difference(&self.fail_set).copied());
                let ours = token.members.get(idx).is_some_and(|m| m.node == self.me);
                if agreed && ours && token.ring_id.seq > self.ring_id.seq {
                    self.commit_enter(token);
                }
            }
            State::Commit => {
                // Second rotation: every entry is filled in; recover, then pass it on.
                if token.ring_id == self.ring_id && idx == n {
                    self.recovery_enter(&token);
                    self.commit_token_send_recovery(&mut token);
                }
            }
            State::Recovery => {
                // Third visit at the representative: start the ring with a fresh ORF token,
                // once only (duplicates corrupted corosync's token, commit 4ee84c51).
                if token.ring_id == self.ring_id
                    && idx == n
                    && self.am_rep()
                    && !self.originated_orf_token
                {
                    self.originated_orf_token = true;
                    self.orf_token_send_initial();
                }
            }
            State::Operational | State::Left => {}
        }
    }

    /// Forwards the completed commit token unchanged but for its visit counter.
    fn commit_token_send_recovery(&mut self, token: &mut MembCommitTokenRepr) {
        token.token_seq += 1;
        let to = self.successor(&self.new_memb.clone());
        if let Some(frame) = self.encode(&*token, Flags::NONE, WIRE_VERSION_MIN) {
            self.stats.memb_commit_token_tx += 1;
            self.send_token(to, frame);
        }
    }
}
