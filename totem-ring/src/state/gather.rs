//! The gather phase of the membership protocol: join messages with proc and fail sets,
//! consensus, and the growth of the fail set (Totem TOCS'95 membership protocol; corosync
//! `memb_state_gather_enter`, `memb_join_process`; TOTEM-SRP.md §4.2–4.4).

use alloc::collections::BTreeSet;
use alloc::vec::Vec;

use totem_proto::{
    Flags, MAX_NODES, MembJoin, MembJoinRepr, NodeId, NodeList, WIRE_VERSION_MAX, WIRE_VERSION_MIN,
};
use totem_transport::Dest;

use crate::ring::{Ring, State};
use crate::timer::Timer;

impl Ring {
    /// Enters (or re-enters) GATHER: announce our sets and wait for consensus.
    pub(crate) fn gather_enter(&mut self, reason: &'static str) {
        if self.state != State::Gather {
            info!(
                "node {}: entering GATHER from {} ({})",
                self.me, self.state, reason
            );
        }
        let now = self.now;
        self.orf_token_discard = true;
        self.originated_orf_token = false;
        self.self_token = None;
        self.proc_set.insert(self.me);
        self.state = State::Gather;
        self.stats.gather_entered += 1;
        // Every change of our sets restarts the agreement on them.
        self.consensus_set.clear();
        self.consensus_set.insert(self.me);
        self.timers.set(Timer::Join, now + self.cfg.join);
        self.timers.set(Timer::Consensus, now + self.cfg.consensus);
        for t in [
            Timer::TokenRetransmit,
            Timer::Token,
            Timer::Merge,
            Timer::Hold,
            Timer::SelfToken,
        ] {
            self.timers.stop(t);
        }
        // Last, because sending may find consensus at once and move on to COMMIT.
        if self.cfg.send_join.total_micros() > 0 {
            // corosync sleeps a random 0..send_join here; we wait on a timer instead, so
            // large rings do not answer a change with a simultaneous storm of joins.
            let jitter = self.rng.below(self.cfg.send_join.total_micros());
            self.timers.set(
                Timer::SendJoin,
                now + totem_proto::time::Duration::from_micros(jitter),
            );
        } else {
            self.send_join();
        }
    }

    /// A ring being installed (COMMIT or RECOVERY) is given up: restore the old ring's
    /// state and start the membership afresh.
    ///
    /// The fail set is cleared (keeping clean leavers, and ourselves after a failure to
    /// receive). corosync keeps it; then a member that was still recovering when its
    /// group's new ring was interrupted re-gathers with the old round's fail set — which
    /// names a whole other partition — its group adopts it, that partition fails it back
    /// ("it failed me, so I fail it"), and the two halves split again on every merge
    /// attempt. The simulator found that livelock under steady traffic. A fresh round
    /// fails the silent ones again after `consensus`; safety does not depend on it.
    pub(crate) fn abandon_install(&mut self) {
        if self.state == State::Recovery {
            self.old_ring_restore();
        }
        self.fail_set.clear();
        self.fail_set.extend(self.leavers.iter().copied());
        if self.failed_to_recv {
            self.fail_set.insert(self.me);
        }
    }

    /// Broadcasts our join (corosync `memb_join_message_send`).
    pub(crate) fn send_join(&mut self) {
        if self.state != State::Gather {
            return;
        }
        let procs: Vec<NodeId> = self.proc_set.iter().copied().collect();
        let fails: Vec<NodeId> = self.fail_set.iter().copied().collect();
        self.send_join_frame(&procs, &fails, false);
        // corosync hears its own join (multicast loops back) and processes it like any
        // other; we drop our own frames, so we apply it here: a node whose sets everyone
        // else already confirmed — or that is alone — proceeds to commit.
        self.check_consensus();
    }

    /// With consensus on our sets, the representative (or a node that excluded itself)
    /// creates the commit token (corosync `memb_join_process` step 2).
    fn check_consensus(&mut self) {
        if self.state != State::Gather || !self.consensus_agreed() {
            return;
        }
        if self.failed_to_recv {
            // We excluded ourselves: form a singleton ring.
            self.failed_to_recv = false;
            self.proc_set.clear();
            self.proc_set.insert(self.me);
            self.fail_set.clear();
            self.commit_token_create();
        } else if self.lowest_in_config() == Some(self.me) {
            self.commit_token_create();
        }
    }

    /// Builds and broadcasts a join (or a leave) with these sets.
    pub(crate) fn send_join_frame(&mut self, procs: &[NodeId], fails: &[NodeId], leave: bool) {
        let mut repr = MembJoinRepr {
            ring_seq: self.ring_id.seq,
            version_min: WIRE_VERSION_MIN,
            version_max: WIRE_VERSION_MAX,
            proc_list: heapless::Vec::new(),
            fail_list: heapless::Vec::new(),
        };
        // Sets are BTreeSets (ascending, unique) as the wire requires; beyond MAX_NODES the
        // cluster is over corosync's limit and the extra ids are left out.
        let sorted = |list: &[NodeId], out: &mut heapless::Vec<NodeId, MAX_NODES>| {
            let set: BTreeSet<NodeId> = list.iter().copied().collect();
            for n in set.into_iter().take(MAX_NODES) {
                let _ = out.push(n);
            }
        };
        sorted(procs, &mut repr.proc_list);
        sorted(fails, &mut repr.fail_list);
        let flags = if leave { Flags::LEAVE } else { Flags::NONE };
        // Joins travel at our oldest version, which every possible peer can read.
        if let Some(frame) = self.encode(&repr, flags, WIRE_VERSION_MIN) {
            self.stats.memb_join_tx += 1;
            self.transmit(Dest::Multicast, frame);
        }
    }

    /// `fast_fail`: processors that have sent nothing since the gather began are failed
    /// now rather than after `consensus`.
    pub(crate) fn on_fail_silent_timeout(&mut self) {
        if self.state != State::Gather {
            return;
        }
        let silent: Vec<NodeId> = self
            .proc_set
            .iter()
            .filter(|n| **n != self.me && !self.fail_set.contains(n) && !self.heard.contains(n))
            .copied()
            .collect();
        if !silent.is_empty() {
            self.fail_set.extend(silent);
            self.gather_enter("silent since the gather began");
        }
    }

    pub(crate) fn on_join_timeout(&mut self) {
        if self.state == State::Gather {
            self.send_join();
            self.timers.set(Timer::Join, self.now + self.cfg.join);
        }
    }

    pub(crate) fn on_consensus_timeout(&mut self) {
        if self.state == State::Gather {
            self.stats.consensus_timeouts += 1;
            self.consensus_expired();
        }
    }

    /// Consensus (or token) timer expired in GATHER (corosync
    /// `memb_state_consensus_timeout_expired`): with consensus, wait one token timeout for
    /// the representative's commit token; without, fail everyone who did not confirm.
    pub(crate) fn consensus_expired(&mut self) {
        if self.consensus_agreed() {
            self.consensus_set.clear();
            self.consensus_set.insert(self.me);
            self.timers.set(Timer::Token, self.now + self.cfg.token);
        } else {
            let silent: Vec<NodeId> = self
                .proc_set
                .iter()
                .filter(|n| !self.consensus_set.contains(n))
                .copied()
                .collect();
            self.fail_set.extend(silent);
            self.gather_enter("consensus timeout");
        }
    }

    /// Every processor in proc \ fail has confirmed our exact sets.
    ///
    /// After a failure to receive, an empty proc \ fail counts as agreed: this node forms
    /// its singleton ring whoever else it gave up on (corosync `memb_consensus_agreed`:
    /// "we will create single ring anyway"). Without that rule such a node, unable to hear
    /// the others, fails them all and then waits in GATHER forever (found by the simulator,
    /// seed 1547).
    pub(crate) fn consensus_agreed(&self) -> bool {
        let mut live = self.proc_set.difference(&self.fail_set).peekable();
        let any = live.peek().is_some();
        live.all(|n| self.consensus_set.contains(n)) && (any || self.failed_to_recv)
    }

    /// The lowest id in proc \ fail: the representative of the next ring.
    fn lowest_in_config(&self) -> Option<NodeId> {
        self.proc_set.difference(&self.fail_set).next().copied()
    }

    /// Whether a join from `sender`, who is not in our ring, fails one of our ring's members.
    /// An operational node ignores such a join (ours; corosync's
    /// `ignore_join_under_operational` only ignores a join that fails the receiver).
    ///
    /// Processing it cannot bring the sender in: it moves our whole ring to GATHER, where
    /// each member the sender failed fails it back on hearing its join ("it failed me, so I
    /// fail it") and the rest of us adopt that from our ring's members, so the next ring
    /// forms without the sender — which then gathers on with our members still in its fail
    /// set, and its next join starts the round again. Timed exactly (no jitter, no loss),
    /// that never ends (simulator seed 15 at 32..64 nodes, 59 nodes: n17 failed every
    /// member of the others' ring but n1, whose own "fail n17" had reached it just before
    /// n17 formed a singleton and reset its sets; each of n17's joins made n1, operational,
    /// gather the other 57 again, every 193 ms, forever). Ignored, the sender's consensus
    /// timeout ends its round, its fail set is cleared when its ring forms, and a merge
    /// detect or its next fresh join merges it with us. If the member it failed is really
    /// gone, our token loss says so within `token`. A member of our ring gathering (its
    /// fail set is ours to adopt, corosync cfbb021e) and a leave are still processed.
    fn fails_a_member_from_outside(&self, sender: NodeId, fails: NodeList<'_>) -> bool {
        !self.memb.contains(&sender) && fails.iter().any(|n| self.memb.contains(&n))
    }

    // corosync message_handler_memb_join
    pub(crate) fn on_join(&mut self, sender: NodeId, leave: bool, v: &MembJoin<&[u8]>) {
        self.stats.memb_join_rx += 1;
        let ring_seq = v.ring_seq();
        self.highest_ring_seq = self.highest_ring_seq.max(ring_seq);
        self.versions
            .insert(sender, (v.version_min(), v.version_max()));
        let (procs, fails) = (v.proc_list(), v.fail_list());
        if !leave {
            // A node that left and now sends an ordinary join has restarted: it is no
            // longer a leaver. corosync's leave list only names "left" apart from
            // "failed" in its log and is cleared with the next ring; ours also keeps the
            // leaver in the fail set when an install is abandoned (`abandon_install`), so
            // it must not outlive the leave. Otherwise members that keep abandoning their
            // recovery (the last of them in ring order, when the restarted node's joins
            // break each new ring just as it forms) fail the restarted node on every
            // round, it fails them back ("it failed me, so I fail it"), their ring
            // adopts that fail set, and the node stays a singleton for good (simulator
            // seed 899).
            self.leavers.remove(&sender);
        }
        match self.state {
            State::Operational => {
                // ignore_join_under_operational: a join that fails us, or a stale one from
                // a member of our ring (commit cfbb021e: endless re-gathers otherwise).
                if fails.contains(self.me) || self.is_stale(sender, ring_seq) {
                    return;
                }
                if !leave && self.fails_a_member_from_outside(sender, fails) {
                    return;
                }
            }
            State::Gather => {}
            State::Commit | State::Recovery => {
                // Only a new-ring member that restarted the membership moves us back.
                if !(self.new_memb.contains(&sender) && ring_seq >= self.ring_id.seq) {
                    return;
                }
                self.abandon_install();
            }
            State::Left => return,
        }
        if leave {
            // The leaver names itself last in its fail set; remember it left on purpose.
            self.leavers.insert(sender);
        }
        let entered_in = self.state;
        self.memb_join_process(sender, leave, procs, fails);
        // A join that did not already restart the gather still moves an operational,
        // committing or recovering node to GATHER (corosync step 6).
        if entered_in != State::Gather && self.state == entered_in {
            self.gather_enter("join");
        }
    }

    // corosync memb_join_process (TOTEM-SRP.md §4.4)
    fn memb_join_process(
        &mut self,
        sender: NodeId,
        leave: bool,
        procs: NodeList<'_>,
        fails: NodeList<'_>,
    ) {
        let same = |list: NodeList<'_>, set: &BTreeSet<NodeId>| {
            list.len() == set.len() && list.iter().zip(set.iter()).all(|(a, b)| a == *b)
        };
        if same(procs, &self.proc_set) && same(fails, &self.fail_set) {
            // Step 2: the sender agrees with us. A leave is never counted as agreement.
            if !leave {
                self.consensus_set.insert(sender);
            }
            self.check_consensus();
            return;
        }
        // Step 3: nothing new to us.
        let subset =
            |list: NodeList<'_>, set: &BTreeSet<NodeId>| list.iter().all(|n| set.contains(&n));
        if subset(procs, &self.proc_set) && subset(fails, &self.fail_set) {
            return;
        }
        // Step 4: we gave up on the sender.
        if self.fail_set.contains(&sender) {
            return;
        }
        // Step 5: adopt what the sender knows.
        let before = (self.proc_set.len(), self.fail_set.len());
        for n in procs.iter() {
            if self.proc_set.len() >= MAX_NODES && !self.proc_set.contains(&n) {
                warn!("more than {} processors: ignoring node {}", MAX_NODES, n);
                continue;
            }
            self.proc_set.insert(n);
        }
        if fails.contains(self.me) {
            // It failed us, so we fail it: partitions stay symmetric.
            self.fail_set.insert(sender);
        } else if self.memb.contains(&sender) {
            // Fail sets are adopted only from members of our own ring (commit cfbb021e).
            self.fail_set.extend(fails.iter());
        }
        // Re-gather only when our sets grew. corosync re-enters GATHER on every such join,
        // which restarts the consensus timer: two nodes whose fail sets differ for good
        // (each from another ring, so neither adopts the other's) then answer each other's
        // joins forever and consensus never times out — a livelock the simulator found.
        // Sets only grow, so this bounds the restarts.
        if (self.proc_set.len(), self.fail_set.len()) != before {
            self.gather_enter("join with new information");
        }
    }
}
