//! CPG's part of the sync protocol (corosync `cpg_sync_init` / `cpg_sync_process` /
//! `cpg_sync_activate` / `cpg_sync_abort`): joinlists out, the view rebuilt from them.
//!
//! * `sync_init`: a round begins; operations are held from now until activation.
//! * `sync_process`: multicast this node's joinlist — its announced `(group, pid)` set,
//!   split to fit the ring's message limit, at least one message even when empty — and
//!   report done. The dispatcher's barrier that follows is what waits: each member's
//!   joinlist precedes its barrier in the total order, so when every member's barrier is
//!   delivered, every joinlist is.
//! * `sync_activate`: the new view is the union of the members' joinlists. The difference
//!   with the old view is told to local members in two passes, each in ascending group
//!   order, as corosync's `downlist_inform_clients` then `joinlist_inform_clients`:
//!   removals (`NODEDOWN` for members of nodes not in our transitional configuration —
//!   corosync's downlist, computed locally from the transitional configuration as corosync
//!   3 does, whose `DOWNLIST` message is only logged; unlike corosync, a node missing from
//!   *any* transitional configuration since the last completed round counts, so a node
//!   that went and came back within aborted rounds is reported gone and back — and
//!   `PROCDOWN` for members
//!   of nodes that stayed but no longer list them, corosync's zombie removal), then
//!   additions (`NODEUP` for members of nodes that joined, `JOIN` otherwise). Then every
//!   connection gets the totem confchg (ring id, members) and the held operations go out.
//! * `sync_abort`: the round's joinlists are dropped; the view stays as it was.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;

use totem_proto::{Guarantee, NodeId, RingId};

use super::wire::{Address, Confchg, CpgEvent, ExecMessage, Member, Reason};
use super::{Cpg, Round};
use crate::engine::{ConnId, Outbox};
use crate::wire::GroupName;

impl Cpg {
    pub(super) fn begin_round(
        &mut self,
        transitional: &[NodeId],
        members: &[NodeId],
        ring_id: RingId,
    ) {
        self.settled = false;
        // Every node of the previous configuration that did not come with us went away,
        // even if a round that was then aborted never told the clients (a paused node:
        // alone, then merged back before its own round completed). Unlike corosync 3,
        // whose downlist only compares with the previous configuration, this is carried
        // until a round completes.
        let me = self.node_id;
        for n in core::mem::take(&mut self.last_members) {
            if n != me && transitional.binary_search(&n).is_err() {
                self.departed.insert(n);
            }
        }
        self.last_members = members.to_vec();
        self.round = Some(Round {
            ring_id,
            members: members.to_vec(),
            transitional: transitional.to_vec(),
            lists: BTreeMap::new(),
        });
    }

    /// Multicasts this node's joinlist for the round (corosync `cpg_exec_send_joinlist`).
    pub(super) fn send_joinlist(&mut self, out: &mut Outbox) {
        let Some(round) = &self.round else {
            return;
        };
        let budget = self
            .config
            .max_message_len
            .saturating_sub(ExecMessage::JOINLIST_HEADER_LEN);
        let mut chunk = Vec::new();
        let mut used = 0;
        for (group, pid) in &self.announced {
            let len = ExecMessage::joinlist_entry_len(group);
            if !chunk.is_empty() && used + len > budget {
                let entries = core::mem::take(&mut chunk);
                let msg = ExecMessage::JoinList {
                    ring_id: round.ring_id,
                    entries,
                };
                out.multicast(msg.emit(), Guarantee::Agreed);
                used = 0;
            }
            chunk.push((group.clone(), *pid));
            used += len;
        }
        let msg = ExecMessage::JoinList {
            ring_id: round.ring_id,
            entries: chunk,
        };
        out.multicast(msg.emit(), Guarantee::Agreed);
    }

    /// A joinlist was delivered (corosync `message_handler_req_exec_cpg_joinlist`).
    pub(super) fn joinlist(
        &mut self,
        sender: NodeId,
        ring_id: RingId,
        entries: Vec<(GroupName, u32)>,
    ) {
        match &mut self.round {
            Some(r) if r.ring_id == ring_id && r.members.binary_search(&sender).is_ok() => {
                r.lists.entry(sender).or_default().extend(entries);
            }
            _ => {
                // Queued on an earlier ring and delivered on this one, or after an abort.
                self.stats.stale_joinlists += 1;
            }
        }
    }

    /// A join or leave delivered during the round, after its sender's joinlist: the list
    /// predates it, so it is applied to the list too. Engines that hold their operations
    /// during sync (this one does) never cause this; it keeps the rebuild correct without
    /// relying on that.
    pub(super) fn round_apply(&mut self, sender: NodeId, group: &GroupName, pid: u32, join: bool) {
        let Some(list) = self.round.as_mut().and_then(|r| r.lists.get_mut(&sender)) else {
            return;
        };
        if join {
            list.insert((group.clone(), pid));
        } else {
            list.remove(&(group.clone(), pid));
        }
    }

    /// Installs the round's view (corosync `cpg_sync_activate`).
    pub(super) fn activate_round(&mut self, out: &mut Outbox) {
        let Some(round) = self.round.take() else {
            return;
        };
        let me = self.node_id;
        // Nodes that came with us from our previous configuration (and us), and stayed
        // with us through every configuration since the last activation.
        let departed = core::mem::take(&mut self.departed);
        let stayed = |n: NodeId| {
            n == me || (round.transitional.binary_search(&n).is_ok() && !departed.contains(&n))
        };

        let mut next: BTreeMap<GroupName, BTreeSet<Member>> = BTreeMap::new();
        for (node, list) in &round.lists {
            for (group, pid) in list {
                next.entry(group.clone())
                    .or_default()
                    .insert(Member::new(*node, *pid));
            }
        }
        for node in &round.members {
            if !round.lists.contains_key(node) {
                // Every member running CPG multicasts a joinlist before its barrier; one
                // without (a node that does not run CPG, during a rolling upgrade) has no
                // members to report. Keep whatever we knew of it.
                debug!(
                    "cpg: no joinlist from node {} in ring {}",
                    node.0, round.ring_id
                );
                for (group, members) in &self.view {
                    for m in members.iter().filter(|m| m.node == *node) {
                        next.entry(group.clone()).or_default().insert(*m);
                    }
                }
            }
        }

        let mut removals: Vec<(GroupName, Vec<Address>)> = Vec::new();
        let mut additions: Vec<(GroupName, Vec<Address>)> = Vec::new();
        let empty = BTreeSet::new();
        let names: BTreeSet<&GroupName> = self.view.keys().chain(next.keys()).collect();
        for group in names {
            let old = self.view.get(group).unwrap_or(&empty);
            let new = next.get(group).unwrap_or(&empty);
            // A member of a node that went away and came back is reported gone and back.
            let left: Vec<Address> = old
                .iter()
                .filter(|m| !new.contains(m) || !stayed(m.node))
                .map(|m| {
                    m.with(if stayed(m.node) {
                        Reason::ProcDown
                    } else {
                        Reason::NodeDown
                    })
                })
                .collect();
            let joined: Vec<Address> = new
                .iter()
                .filter(|m| !old.contains(m) || !stayed(m.node))
                .map(|m| {
                    m.with(if stayed(m.node) {
                        Reason::Join
                    } else {
                        Reason::NodeUp
                    })
                })
                .collect();
            if !left.is_empty() {
                removals.push((group.clone(), left));
            }
            if !joined.is_empty() {
                additions.push((group.clone(), joined));
            }
        }

        for (group, left) in removals {
            let leavers: Vec<(ConnId, u32)> = left
                .iter()
                .filter_map(|a| Some((self.local_leaver(&group, a.member())?, a.pid)))
                .collect();
            let conns: Vec<ConnId> = leavers.iter().map(|(c, _)| *c).collect();
            if let Some(set) = self.view.get_mut(&group) {
                for a in &left {
                    set.remove(&a.member());
                }
                if set.is_empty() {
                    self.view.remove(&group);
                }
            }
            let confchg = Confchg {
                group: group.clone(),
                members: self.members(&group),
                left: left.clone(),
                joined: Vec::new(),
            };
            self.notify(&group, confchg, &conns, out);
            for (conn, pid) in leavers {
                self.forget_membership(conn, &group, pid);
            }
        }
        for (group, joined) in additions {
            let set = self.view.entry(group.clone()).or_default();
            for a in &joined {
                set.insert(a.member());
            }
            for a in &joined {
                self.mark_joined(&group, a.member());
            }
            let confchg = Confchg {
                group: group.clone(),
                members: self.members(&group),
                left: Vec::new(),
                joined,
            };
            self.notify(&group, confchg, &[], out);
        }

        // corosync `notify_lib_totem_membership`: every connection.
        let ev = CpgEvent::TotemConfchg {
            ring_id: round.ring_id,
            members: round.members.clone(),
        }
        .emit();
        for conn in self.conns.keys() {
            out.event(*conn, ev.clone());
        }
        self.totem = Some((round.ring_id, round.members));
        self.settled = true;
        self.release_held(out);
    }
}
