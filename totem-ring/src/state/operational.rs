//! The operational rules: regular messages and the ORF token (Totem TOCS'95 ordering
//! protocol; corosync `message_handler_mcast`, `message_handler_orf_token`). The same token
//! rules run in RECOVERY on the recovery queue, where only old-ring messages are sent.

use alloc::vec::Vec;

use bytes::Bytes;
use totem_proto::{
    Flags, Guarantee, Mcast, McastRepr, NodeId, OrfToken, OrfTokenRepr, RTR_MAX, RingId, Seq,
    TokenHoldCancelRepr,
};
use totem_transport::Dest;

use crate::ring::{Ring, State};
use crate::sortq::{Insert, SortQueue, Stored};
use crate::timer::Timer;

impl Ring {
    /// The queue the token rules work on: recovery's during RECOVERY, else the regular one.
    fn active_queue(&mut self) -> &mut SortQueue {
        if self.state == State::Recovery {
            &mut self.recovery
        } else {
            &mut self.regular
        }
    }

    /// A late frame of an older ring of ours from one of our members: not a sign of another
    /// ring (which would start a gather), just a straggler (corosync re-gathers here; its
    /// `ignore_join_under_operational` applies the same test to joins, commit cfbb021e).
    pub(crate) fn is_stale(&self, sender: NodeId, ring_seq: u64) -> bool {
        ring_seq < self.ring_id.seq && self.memb.contains(&sender)
    }

    /// A processor we do not know showed signs of life (foreign message, merge detect):
    /// gather with it (Totem TOCS'95 membership; corosync `memb_state_gather_enter` from
    /// `message_handler_mcast` "foreign message").
    pub(crate) fn foreign_sender(&mut self, sender: NodeId, reason: &'static str) {
        match self.state {
            State::Operational => {
                self.proc_set.insert(sender);
                self.gather_enter(reason);
            }
            State::Gather => {
                if self.proc_set.insert(sender) {
                    self.gather_enter(reason);
                }
            }
            State::Commit | State::Recovery | State::Left => {}
        }
    }

    // corosync exec/totemsrp.c: message_handler_mcast
    pub(crate) fn on_mcast(
        &mut self,
        bytes: &[u8],
        sender: NodeId,
        encapsulated: bool,
        v: &Mcast<&[u8]>,
    ) {
        self.stats.mcast_rx += 1;
        let ring = v.ring_id();
        if ring != self.ring_id {
            if self.is_stale(sender, ring.seq) {
                self.stats.rx_stale += 1;
            } else {
                self.foreign_sender(sender, "foreign message");
            }
            return;
        }
        // Which queue: encapsulated old-ring messages belong to recovery, and only there;
        // plain messages to the regular queue while operational or gathering (a gathering
        // node still collects its old ring's messages for recovery).
        let recovery = match (self.state, encapsulated) {
            (State::Recovery, true) => true,
            (State::Operational | State::Gather, false) => false,
            _ => return,
        };
        let frame = Bytes::copy_from_slice(bytes);
        let payload = mcast_payload(&frame);
        let stored = Stored {
            frame,
            originator: v.originator(),
            guarantee: v.guarantee(),
            payload,
        };
        let seq = v.seq();
        self.store(recovery, seq, stored);
        if self.state == State::Operational {
            if self.cfg.adaptive_token_retransmit
                && seq > self.last_forwarded_seq
                && self.timers.is_armed(Timer::TokenRetransmit)
            {
                // A message newer than the token this node forwarded was sent by a later
                // holder: the successor has the token, nothing to resend (corosync cancels
                // the retransmit timer on any message, `cancel_token_retransmit_timeout`).
                // Only with the adaptive timeout: the default path stays the one the
                // simulator's 10 000-seed runs verified.
                self.timers.stop(Timer::TokenRetransmit);
            }
            self.deliver_agreed(self.high_seq_received);
        }
    }

    /// Stores an ordered message and advances the aru.
    fn store(&mut self, recovery: bool, seq: Seq, msg: Stored) {
        if recovery {
            // The old-ring message inside goes into the old ring's queue at once (corosync
            // does this when recovery ends), so the recovery queue can release what every
            // member holds and its window never blocks a long recovery.
            self.recover_old_message(&msg.payload);
        }
        let origin = msg.originator;
        let q = if recovery {
            &mut self.recovery
        } else {
            &mut self.regular
        };
        match q.insert(seq, msg) {
            Insert::Stored => {
                if !recovery
                    && self.state == State::Operational
                    && self.last_origin.is_none_or(|(s, _)| s < seq)
                {
                    self.last_origin = Some((seq, origin));
                }
                self.stats.mcast_stored += 1;
                self.high_seq_received = self.high_seq_received.max(seq);
                self.update_aru();
            }
            Insert::Duplicate => self.stats.mcast_duplicate += 1,
            Insert::OutOfWindow => self.stats.mcast_out_of_window += 1,
        }
    }

    /// Advances `aru` over consecutive stored messages (corosync `update_aru`).
    pub(crate) fn update_aru(&mut self) {
        let (mut aru, high) = (self.aru, self.high_seq_received);
        let q = if self.state == State::Recovery {
            &self.recovery
        } else {
            &self.regular
        };
        while aru < high && q.contains(aru + 1) {
            aru += 1;
        }
        self.aru = aru;
    }

    /// Delivers regular-queue messages in order from `high_delivered + 1` up to `end`,
    /// stopping at the first hole, and at the first safe message not yet known to be
    /// received by every member (Totem TOCS'95 agreed and safe delivery; corosync
    /// `messages_deliver_to_app` with `skip = 0`, which has no safe delivery).
    pub(crate) fn deliver_agreed(&mut self, end: Seq) {
        let ring = self.ring_id;
        while self.high_delivered < end {
            let seq = self.high_delivered + 1;
            let Some(m) = self.regular.get(seq) else {
                break;
            };
            #[cfg(feature = "_planted-bugs")]
            let safe_blocks = m.guarantee == Guarantee::Safe
                && seq > self.stable
                && self.bug != Some(crate::PlantedBug::SafeAsAgreed);
            #[cfg(not(feature = "_planted-bugs"))]
            let safe_blocks = m.guarantee == Guarantee::Safe && seq > self.stable;
            if safe_blocks {
                break;
            }
            let (originator, guarantee, payload) = (m.originator, m.guarantee, m.payload.clone());
            self.high_delivered = seq;
            self.deliver_payload(ring, originator, guarantee, &payload);
        }
    }

    // corosync exec/totemsrp.c: message_handler_orf_token, steps as in TOTEM-SRP.md §3.2.
    pub(crate) fn on_orf_token(&mut self, v: &OrfToken<&[u8]>) {
        // Step 1: only OPERATIONAL and RECOVERY process tokens, and not after a token loss
        // until a new ring is committed (orf_token_discard).
        if !matches!(self.state, State::Operational | State::Recovery) || self.orf_token_discard {
            return;
        }
        let Ok(mut t) = OrfTokenRepr::parse(v) else {
            return;
        };
        // Step 6: another ring's token, or a duplicate / retransmitted one.
        if t.ring_id != self.ring_id {
            self.stats.rx_stale += 1;
            return;
        }
        if self.token_seq_seen.is_some_and(|seen| t.token_seq <= seen) {
            self.stats.orf_token_duplicate += 1;
            return;
        }
        self.stats.orf_token_rx += 1;
        let now = self.now;
        self.sample_rotation();

        // Step 2: idle accounting; an unchanged seq means nobody sent anything last round.
        if t.seq == self.last_seq {
            if !self.timers.is_armed(Timer::Merge) {
                self.timers.set(Timer::Merge, now + self.cfg.merge);
            }
            self.seq_unchanged = self.seq_unchanged.saturating_add(1);
        } else {
            self.timers.stop(Timer::Merge);
            self.timers.stop(Timer::Hold);
            self.seq_unchanged = 0;
        }
        self.last_seq = t.seq;

        // Step 4: hold decision (corosync token braking, §3.9): an idle token is kept for
        // `hold` instead of spinning. corosync's representative keeps it; here the node
        // that numbered the newest message does (the representative while this ring has
        // none), so a node that sends now and then finds the token at hand and sends at
        // once instead of a rotation later.
        let holder = match self.last_origin {
            Some((seq, origin)) if seq == t.seq => origin == self.me,
            _ => self.am_rep(),
        };
        let idle = self.cfg.seqno_unchanged_const;
        self.token_held =
            (holder && self.seq_unchanged > idle) || (!holder && self.seq_unchanged >= idle);
        let mut forward = !(holder && self.token_held);

        // Step 5 and §3.6: stability. A message at or below both this visit's and the
        // previous visit's aru has reached every member (two-rotation rule, TOCS'95):
        // safe messages up to there may be delivered, and delivered ones freed.
        let stable = t.aru.min(self.last_aru);
        if self.state == State::Operational {
            self.stable = self.stable.max(stable);
            self.messages_free(stable);
        } else {
            // Recovery: nothing is delivered from the recovery queue (its contents went to
            // the old ring's queue on receipt), so what every member has can go.
            let release_to = stable.min(self.aru);
            if release_to > self.last_released {
                self.recovery.release_to(release_to);
                self.last_released = release_to;
            }
        }

        // Step 8.
        let last_aru = self.last_aru;
        self.last_aru = t.aru;

        // Step 9: flow control.
        let mut allowed = self.fcc_calculate(&t);

        // Step 10: answer retransmission requests of our ring with what we hold.
        let mut retransmitted = 0u32;
        let mut keep = heapless::Vec::<_, RTR_MAX>::new();
        for e in t.rtr.iter().copied() {
            if e.ring_id != self.ring_id {
                // Requests of another ring cannot be answered here or anywhere on this
                // ring: drop them rather than carry them forever.
                continue;
            }
            let frame = if retransmitted < allowed {
                self.active_queue().get(e.seq).map(|m| m.frame.clone())
            } else {
                None
            };
            match frame {
                Some(frame) => {
                    retransmitted += 1;
                    self.stats.mcast_retx += 1;
                    self.transmit(Dest::Multicast, frame);
                }
                // Capacity: `keep` has the rtr list's own bound.
                None => drop(keep.push(e)),
            }
        }
        t.rtr = keep;
        allowed -= retransmitted;

        // Step 11: request what we miss, once it has been missing for miss_count_const
        // visits (corosync's delay avoids requesting messages still in flight).
        // Accelerated Ring: the predecessors may still be multicasting what they numbered
        // after passing the token, so only gaps up to the seq this node passed on last
        // round are certain (Babay and Amir 2016; Spread's Prot_handle_token).
        let accelerated = self.cfg.accelerated && self.state == State::Operational;
        let ring = self.ring_id;
        let to = if accelerated {
            t.seq.min(self.last_forwarded_seq)
        } else {
            t.seq
        };
        let from = self.aru + 1;
        let mut s = from;
        while s <= to && !t.rtr.is_full() {
            let q = self.active_queue();
            if !q.in_window(s) {
                break;
            }
            if !q.contains(s) && q.bump_miss(s) >= self.cfg.miss_count_const {
                let listed = t.rtr.iter().any(|e| e.ring_id == ring && e.seq == s);
                if !listed {
                    let _ = t.rtr.push(totem_proto::RtrEntry {
                        ring_id: ring,
                        seq: s,
                    });
                    self.stats.rtr_requested += 1;
                }
            }
            s += 1;
        }

        // Step 12.
        if self.cfg.cancel_token_hold_on_retransmit
            && self.token_held
            && (!t.rtr.is_empty() || retransmitted > 0)
        {
            self.token_held = false;
            forward = true;
        }

        // Step 13.
        allowed = allowed.min(self.window_room(&t));

        // Step 14: broadcast new messages (after the token, when accelerated).
        let new_from = self.transmits.len();
        let sent_new = self.broadcast_new(&mut t, allowed);

        // Step 15.
        self.fcc_token_update(&mut t, retransmitted + sent_new);

        // Step 16.
        self.token_aru_update(&mut t);

        // Step 17: failure to receive. If the aru has not moved for fail_recv_const
        // visits and we are the ones holding it back, we exclude ourselves (corosync's
        // choice; TOCS'95 has the others fail us). The token is not forwarded.
        if t.aru == last_aru && t.aru_id.is_some() {
            self.aru_count = self.aru_count.saturating_add(1);
        } else {
            self.aru_count = 0;
        }
        if self.aru_count > self.cfg.fail_recv_const && t.aru_id == Some(self.me) {
            warn!("FAILED TO RECEIVE: node {} excludes itself", self.me);
            self.stats.failed_to_recv += 1;
            self.failed_to_recv = true;
            self.fail_set.insert(self.me);
            self.aru_count = 0;
            self.gather_enter("failed to receive");
            return;
        }

        // Step 18.
        self.token_seq_seen = Some(t.token_seq);
        t.token_seq += 1;
        let mut became_operational = false;
        if self.state == State::Recovery {
            became_operational = self.recovery_token_rules(&mut t);
        }

        // Step 19: send the token (after this visit's multicasts, which are queued first).
        let members = if became_operational {
            self.memb.clone()
        } else {
            self.new_or_current()
        };
        let next = self.successor(&members);
        if let Some(frame) = self.encode(&t, Flags::NONE, self.head.version) {
            if forward {
                self.stats.orf_token_tx += 1;
                self.last_forwarded_seq = t.seq;
                self.send_token(next, frame);
                self.token_sent_at = Some(now);
                if accelerated && next != self.me && self.transmits.len() > new_from + 1 {
                    // The token overtakes this visit's new messages: the total order is
                    // unchanged (their seqs are on the token), the token's trip overlaps
                    // the data.
                    if let Some(token) = self.transmits.pop_back() {
                        self.transmits.insert(new_from, token);
                    }
                }
            } else {
                // Held: keep it for the hold timer, a hold cancel or our own new data to
                // release.
                self.last_token = Some((next, frame));
                self.held_token = Some((next, t));
                self.timers.set(Timer::Hold, now + self.cfg.hold);
            }
        }

        // Step 20: deliver after forwarding, to keep latency low.
        if self.state == State::Operational {
            self.deliver_agreed(self.high_seq_received);
        }

        // Step 21: the token is alive.
        self.timers.set(Timer::Token, now + self.cfg.token);
        if forward {
            self.timers
                .set(Timer::TokenRetransmit, now + self.token_rto());
        } else {
            self.timers.stop(Timer::TokenRetransmit);
        }
    }

    /// Members of the ring the token is circulating on: the new ring's during recovery.
    fn new_or_current(&self) -> Vec<NodeId> {
        if self.state == State::Recovery {
            self.new_memb.clone()
        } else {
            self.memb.clone()
        }
    }

    /// Frees messages every member has and this node has delivered (corosync
    /// `messages_free`); they can no longer be retransmitted.
    fn messages_free(&mut self, stable: Seq) {
        let release_to = stable.min(self.high_delivered);
        if release_to > self.last_released {
            self.regular.release_to(release_to);
            self.last_released = release_to;
        }
    }

    /// How many frames this node may send on this visit (TOTEM-SRP.md §3.7; corosync
    /// `fcc_calculate`, with saturating arithmetic and the *current* backlog in the share —
    /// corosync uses the previous one, which lags a rotation behind).
    fn fcc_calculate(&mut self, t: &OrfTokenRepr) -> u32 {
        let w = self.cfg.window_size;
        let cbl = self.backlog();
        let total = t.backlog.saturating_add(cbl).saturating_sub(self.pbl);
        // max_messages shares the window among senders; a node whose backlog is the
        // ring's only one may use the whole window on every visit (work-conserving;
        // corosync caps it at max_messages even then).
        let alone = total > 0 && total == cbl;
        let mut allowed = if alone {
            // The window counts what the others sent since our last visit: our own frames
            // of that visit are a rotation old (counting them too, a lone sender could only
            // fill the window every other visit).
            w.saturating_sub(t.fcc.saturating_sub(self.trc))
        } else {
            self.cfg.max_messages.min(w.saturating_sub(t.fcc))
        };
        if total != 0 {
            let share =
                u32::try_from(u64::from(w) * u64::from(cbl) / u64::from(total)).unwrap_or(u32::MAX);
            if share > 0 {
                allowed = allowed.min(share);
            }
        }
        allowed
    }

    /// Step 13: never let the ring's seq run more than the window ahead of what this node
    /// has released, so no member's sort queue can overflow (corosync fcc_rtr_limit; the
    /// bound that replaces its assert, issue #371).
    fn window_room(&self, t: &OrfTokenRepr) -> u32 {
        let limit = (self.last_released + u64::from(self.cfg.retransmit_window))
            .saturating_sub(u64::from(self.cfg.window_size));
        u32::try_from(limit.saturating_sub(t.seq)).unwrap_or(u32::MAX)
    }

    /// Step 16: the token's aru (TOTEM-SRP.md §3.5, corosync's exact rule).
    fn token_aru_update(&self, t: &mut OrfTokenRepr) {
        if self.aru < t.aru || t.aru_id == Some(self.me) || t.aru_id.is_none() {
            t.aru = self.aru;
            t.aru_id = if t.aru == t.seq { None } else { Some(self.me) };
        }
    }

    /// Frames waiting: recovery's retransmit queue, or the application's.
    fn backlog(&self) -> u32 {
        if self.state == State::Recovery {
            u32::try_from(self.retrans_queue.len()).unwrap_or(u32::MAX)
        } else {
            self.outq.backlog_frames()
        }
    }

    /// corosync `fcc_token_update`.
    fn fcc_token_update(&mut self, t: &mut OrfTokenRepr, sent: u32) {
        let cbl = self.backlog();
        t.fcc = t.fcc.saturating_add(sent).saturating_sub(self.trc);
        t.backlog = t.backlog.saturating_add(cbl).saturating_sub(self.pbl);
        self.trc = sent;
        self.pbl = cbl;
    }

    /// Step 14: up to `allowed` new frames, numbered from the token's seq. In RECOVERY only
    /// encapsulated old-ring messages go out; application data waits for the new ring.
    fn broadcast_new(&mut self, t: &mut OrfTokenRepr, allowed: u32) -> u32 {
        let mut sent = 0;
        while sent < allowed {
            let seq = t.seq + 1;
            let (frame, guarantee, recovery) = if self.state == State::Recovery {
                let Some((_, old)) = self.retrans_queue.pop_first() else {
                    break;
                };
                let repr = McastRepr {
                    ring_id: self.ring_id,
                    seq,
                    originator: self.me,
                    guarantee: Guarantee::Agreed,
                    payload: &old,
                };
                let Some(frame) = self.encode(&repr, Flags::ENCAPSULATED, self.head.version) else {
                    continue;
                };
                self.stats.recovery_retransmits += 1;
                (frame, Guarantee::Agreed, true)
            } else {
                let Some((frame, g)) = self.outq.next_frame(&self.head, self.ring_id, seq, self.me)
                else {
                    break;
                };
                (frame, g, false)
            };
            t.seq = seq;
            let payload = mcast_payload(&frame);
            let stored = Stored {
                frame: frame.clone(),
                originator: self.me,
                guarantee,
                payload,
            };
            self.store(recovery, seq, stored);
            self.stats.mcast_tx += 1;
            self.transmit(Dest::Multicast, frame);
            sent += 1;
        }
        sent
    }

    /// New data while the token is held: ask the holder to release it (corosync
    /// `token_hold_cancel_send`), or release it ourselves, with the new data, if we hold it.
    pub(crate) fn token_hold_cancel_send(&mut self) {
        if !self.token_held || self.state != State::Operational {
            return;
        }
        self.token_held = false;
        self.seq_unchanged = 0;
        if self.timers.is_armed(Timer::Hold) {
            self.timers.stop(Timer::Hold);
            self.release_held_token();
            return;
        }
        let repr = TokenHoldCancelRepr {
            ring_id: self.ring_id,
        };
        if let Some(frame) = self.encode(&repr, Flags::NONE, self.head.version) {
            self.stats.token_hold_cancel_tx += 1;
            self.transmit(Dest::Multicast, frame);
        }
    }

    // corosync message_handler_token_hold_cancel
    pub(crate) fn on_token_hold_cancel(&mut self, ring: RingId) {
        if ring != self.ring_id {
            return;
        }
        self.stats.token_hold_cancel_rx += 1;
        self.seq_unchanged = 0;
        if self.timers.is_armed(Timer::Hold) {
            self.timers.stop(Timer::Hold);
            self.token_held = false;
            self.release_held_token();
        }
    }

    /// The hold timer: the holder releases the idle token.
    pub(crate) fn on_hold_timeout(&mut self) {
        if matches!(self.state, State::Operational | State::Recovery) {
            self.release_held_token();
        }
    }

    /// Sends the token this node held: a release, not a resend, so the next token's
    /// arrival is a rotation sample. In OPERATIONAL the held visit is finished first with
    /// what was submitted meanwhile (steps 9 and 13–16 again): no other node has seen the
    /// token since, so this is the visit happening later.
    fn release_held_token(&mut self) {
        match self.held_token.take() {
            Some((next, t)) if self.state == State::Operational => self.send_held_token(next, t),
            _ => self.resend_last_token(),
        }
        self.token_sent_at = Some(self.now);
    }

    fn send_held_token(&mut self, next: NodeId, mut t: OrfTokenRepr) {
        let allowed = self.fcc_calculate(&t).min(self.window_room(&t));
        let sent = self.broadcast_new(&mut t, allowed);
        // The held visit's flow-control update already ran; add this part to it.
        let cbl = self.backlog();
        t.fcc = t.fcc.saturating_add(sent);
        t.backlog = t.backlog.saturating_add(cbl).saturating_sub(self.pbl);
        self.trc = self.trc.saturating_add(sent);
        self.pbl = cbl;
        self.token_aru_update(&mut t);
        if let Some(frame) = self.encode(&t, Flags::NONE, self.head.version) {
            self.stats.orf_token_tx += 1;
            self.last_forwarded_seq = t.seq;
            self.send_token(next, frame);
        }
        self.deliver_agreed(self.high_seq_received);
    }

    /// No progress since the last token was sent: send it again (corosync
    /// `timer_function_token_retransmit_timeout`). The successor drops duplicates.
    pub(crate) fn on_token_retransmit_timeout(&mut self) {
        if matches!(
            self.state,
            State::Operational | State::Commit | State::Recovery
        ) {
            if self.state != State::Commit {
                // Karn's rule: a resent token gives no rotation sample; back off (the
                // resend below arms the doubled timeout).
                self.token_sent_at = None;
                self.token_resends = self.token_resends.saturating_add(1);
            }
            self.resend_last_token();
        }
    }

    /// The token is lost (corosync `timer_function_orf_token_timeout`).
    pub(crate) fn on_token_timeout(&mut self) {
        match self.state {
            State::Operational => {
                self.stats.operational_token_lost += 1;
                self.gather_enter("token lost in OPERATIONAL");
                if self.cfg.fast_fail {
                    // The token died on the ring: someone probably crashed. Listen for who
                    // is alive (every live member answers our join within a round trip) and
                    // fail the silent ones after token_retransmit. Only here: armed for
                    // every gather (merges, joins), it made partitions fail each other in
                    // a loop (simulator: seed 67 at 32+ nodes, accelerated seeds 6406, 7944).
                    self.heard.clear();
                    self.timers
                        .set(Timer::FailSilent, self.now + self.cfg.token_retransmit);
                }
            }
            State::Gather => {
                self.stats.gather_token_lost += 1;
                self.consensus_expired();
            }
            State::Commit => {
                self.stats.commit_token_lost += 1;
                self.abandon_install();
                self.gather_enter("token lost in COMMIT");
            }
            State::Recovery => {
                self.stats.recovery_token_lost += 1;
                self.abandon_install();
                self.gather_enter("token lost in RECOVERY");
            }
            State::Left => {}
        }
    }

    /// The idle representative announces its ring so another ring in the same network
    /// notices it (corosync `memb_merge_detect_transmit`).
    pub(crate) fn on_merge_timeout(&mut self) {
        if self.state == State::Operational && self.am_rep() {
            let repr = totem_proto::MergeDetectRepr {
                ring_id: self.ring_id,
            };
            if let Some(frame) = self.encode(&repr, Flags::NONE, self.head.version) {
                self.stats.memb_merge_detect_tx += 1;
                self.transmit(Dest::Multicast, frame);
            }
        }
    }

    // corosync message_handler_memb_merge_detect
    pub(crate) fn on_merge_detect(&mut self, sender: NodeId, ring: RingId) {
        self.stats.memb_merge_detect_rx += 1;
        if ring == self.ring_id || self.is_stale(sender, ring.seq) {
            return;
        }
        self.foreign_sender(sender, "merge detect");
    }
}

/// The payload of a validated MCAST frame, as a zero-copy slice of it (a validated frame
/// has nothing after its payload).
pub(crate) fn mcast_payload(frame: &Bytes) -> Bytes {
    frame.slice((totem_proto::HEADER_LEN + totem_proto::MCAST_HEADER_LEN).min(frame.len())..)
}
