//! The CPG engine: closed process groups (corosync `exec/cpg.c`, the API of `cpg.h`).
//!
//! A *member* of a group is a process, named `(node id, pid)`; the pid is the connection's
//! `SO_PEERCRED` pid the node passes to `on_connect`, never one the client claims. A
//! connection may join several groups (corosync: one per handle) and leaves them all when
//! it finalizes or disconnects.
//!
//! # State, and how it stays identical on every node
//!
//! * The **view**: every group's members cluster-wide, changed only by messages in total
//!   order (`ProcJoin`, `ProcLeave`) and by the sync round after a configuration change.
//!   Every node of one configuration applies the same messages in the same order, so the
//!   views agree between sync rounds.
//! * The **announced** set: the `(group, pid)` of this node whose last multicast operation
//!   is a join. It runs ahead of the view by the messages in flight.
//! * On each configuration change (sync, see `cpg/sync.rs`): every node multicasts its announced
//!   set as its *joinlist*; at activation every node replaces its view by the union of the
//!   joinlists of the new configuration's members and tells its clients the difference:
//!   members of nodes that left its configuration with `NODEDOWN`, members of nodes that
//!   joined with `NODEUP`, in ascending group order, removals first. Because a node's
//!   operations are delivered in the order it sent them, any join or leave it sent before
//!   its joinlist is delivered before it, and the joinlist (computed later) already
//!   reflects it; so the union is each member's true state at activation, and the same on
//!   every member whatever views they came from.
//!
//! # Client operations during sync
//!
//! corosync refuses them (`CS_ERR_TRY_AGAIN` while `sync_in_process`). Here they are
//! *accepted and held*: between `sync_init` and `sync_activate` (and before the first
//! activation) join, leave and mcast requests are validated and answered at once (a queued
//! mcast only if it fails), but their multicasts are queued in the engine and sent, in
//! order, right after `sync_activate`.
//! So every operation is delivered in a settled configuration, after the confchg that
//! tells every member who is in the group: a member never receives a message from a sender
//! its node does not yet list. A disconnect during sync is a held `ProcLeave(PROCDOWN)` too.
//! The held bytes are bounded ([`CpgConfig::max_held_bytes`]); above it mcast answers
//! `TRY_AGAIN`. Queries (membership, local node id, iteration) answer from the current view.
//!
//! # Delivery
//!
//! A multicast reaches every local connection that is a member of the group in the view
//! when it is delivered, and only if its sender is a member then (corosync drops messages
//! from unknown nodes the same way). The ring delivers it with the guarantee asked:
//! `SAFE` is safe delivery (every member has it before anyone delivers it); the others are
//! agreed.

pub mod wire;

mod sync;

use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::vec::Vec;

use bytes::Bytes;
use totem_proto::{Guarantee, NodeId, RingId, ServiceId};
use totem_ring::Delivery;

use crate::engine::{ConnId, Credentials, Outbox, ServiceEngine, SyncProgress, service_id};
use crate::wire::GroupName;
use wire::{
    Confchg, CpgEvent, CpgGuarantee, CsError, DELIVER_INITIAL_TOTEM_CONF, ExecMessage,
    IterationType, McastHead, McastRequestHead, Member, Reason, Request, RequestCode, Response,
    ResponseBody,
};

/// Limits of the CPG engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct CpgConfig {
    /// The ring's `max_message_len`: an Mcast request above it is refused with `TOO_BIG`,
    /// and joinlists are split to fit it.
    pub max_message_len: usize,
    /// Bytes of held operations (during sync) before mcast answers `TRY_AGAIN`.
    pub max_held_bytes: usize,
    /// Groups one connection may join (`TOO_MANY_GROUPS` above).
    pub max_groups_per_conn: usize,
    /// Open iterations per connection (`NO_RESOURCES` above).
    pub max_iterations_per_conn: usize,
}

impl Default for CpgConfig {
    fn default() -> Self {
        Self {
            max_message_len: 1 << 20,
            max_held_bytes: 4 << 20,
            max_groups_per_conn: 1024,
            max_iterations_per_conn: 16,
        }
    }
}

/// Counters of the CPG engine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct CpgStats {
    /// Requests that did not decode (answered with an error).
    pub bad_requests: u64,
    /// Messages from other nodes that did not decode, or lied about their sender (dropped).
    pub bad_messages: u64,
    /// Joins of a process already in the group, leaves of one not in it (ignored).
    pub redundant_ops: u64,
    /// Multicasts delivered from a process not in the group (dropped, as corosync).
    pub mcast_not_member: u64,
    /// Joinlists of another round (dropped).
    pub stale_joinlists: u64,
    /// Operations held during sync and sent after activation.
    pub held_ops: u64,
    /// Messages delivered to local members (one per receiving connection).
    pub delivered: u64,
}

/// Where a connection is in a group (corosync's `cpd_state`, per group).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JoinState {
    /// Join requested, its `ProcJoin` not delivered yet.
    Joining,
    /// A member.
    Joined,
    /// Leave requested, its `ProcLeave` not delivered yet: still receives.
    Leaving,
}

/// One iteration's snapshot: (group, node id or 0, pid or 0).
type Snapshot = VecDeque<(GroupName, u32, u32)>;

#[derive(Debug)]
struct Conn {
    pid: u32,
    flags: u32,
    groups: BTreeMap<GroupName, JoinState>,
    iterations: BTreeMap<u32, Snapshot>,
    next_iteration: u32,
}

/// An operation waiting for the end of the sync round.
#[derive(Debug)]
enum Held {
    Join(GroupName, u32),
    Leave(GroupName, u32, Reason),
    Mcast(Bytes, Guarantee),
}

/// The sync round in progress.
#[derive(Debug)]
struct Round {
    ring_id: RingId,
    members: Vec<NodeId>,
    transitional: Vec<NodeId>,
    /// Joinlists delivered for this round, by sender.
    lists: BTreeMap<NodeId, BTreeSet<(GroupName, u32)>>,
}

/// The CPG service engine.
#[derive(Debug)]
pub struct Cpg {
    node_id: NodeId,
    config: CpgConfig,
    conns: BTreeMap<ConnId, Conn>,
    /// This node's `(group, pid)` → the connection holding it, in any join state.
    local: BTreeMap<(GroupName, u32), ConnId>,
    /// This node's `(group, pid)` whose last multicast operation is a join.
    announced: BTreeSet<(GroupName, u32)>,
    /// Every group's members, cluster-wide. No empty groups.
    view: BTreeMap<GroupName, BTreeSet<Member>>,
    round: Option<Round>,
    /// A sync round completed and no new one started.
    settled: bool,
    held: VecDeque<Held>,
    held_bytes: usize,
    flow_control: bool,
    /// The last activated totem configuration.
    totem: Option<(RingId, Vec<NodeId>)>,
    /// Members of the last regular configuration a round began for (activated or not).
    last_members: Vec<NodeId>,
    /// Nodes that were out of our configuration at some point since the last activation:
    /// missing from a transitional configuration, even if the same round brings them back.
    /// Their members are reported as gone (NODEDOWN) and back (NODEUP), never as if they
    /// had stayed: they delivered messages we did not (virtual synchrony).
    departed: BTreeSet<NodeId>,
    /// Where the last delivered multicast went, reused while only multicasts happen.
    route: Option<Route>,
    stats: CpgStats,
}

/// The local receivers of one group and the last sender checked to be its member: a burst
/// of messages to a group routes with one lookup. Valid only while nothing but multicasts
/// has happened (sending or delivering one changes no membership); every other request that
/// decodes, delivery, connection change and sync step clears it ([`Cpg::reroute`]).
#[derive(Debug)]
struct Route {
    group: GroupName,
    sender: Member,
    receivers: Vec<ConnId>,
}

impl Cpg {
    /// A CPG engine for node `node_id`.
    pub fn new(node_id: NodeId, config: CpgConfig) -> Self {
        Self {
            node_id,
            config,
            conns: BTreeMap::new(),
            local: BTreeMap::new(),
            announced: BTreeSet::new(),
            view: BTreeMap::new(),
            round: None,
            settled: false,
            held: VecDeque::new(),
            held_bytes: 0,
            flow_control: false,
            totem: None,
            last_members: Vec::new(),
            route: None,
            departed: BTreeSet::new(),
            stats: CpgStats::default(),
        }
    }

    /// The members of `group`, ascending (empty if nobody is in it).
    pub fn members(&self, group: &GroupName) -> Vec<Member> {
        self.view
            .get(group)
            .map(|m| m.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Every non-empty group with its members, in group order.
    pub fn groups(&self) -> impl Iterator<Item = (&GroupName, &BTreeSet<Member>)> {
        self.view.iter()
    }

    /// Whether the last sync round completed (operations are sent, not held).
    pub fn is_settled(&self) -> bool {
        self.settled
    }

    /// Counters.
    pub fn stats(&self) -> &CpgStats {
        &self.stats
    }

    /// The last activated totem configuration: ring id and members.
    pub fn totem_configuration(&self) -> Option<(RingId, &[NodeId])> {
        self.totem.as_ref().map(|(r, m)| (*r, m.as_slice()))
    }

    // ---- client requests ----

    fn request(&mut self, conn: ConnId, bytes: Bytes, out: &mut Outbox) {
        if !self.conns.contains_key(&conn) {
            // Finalized (or never connected): corosync answers BAD_HANDLE.
            let code = wire::raw_request_code(&bytes);
            reply(out, conn, Response::error(code, CsError::BadHandle));
            return;
        }
        // The hot path: a multicast is read in place, so its buffer stays unshared and
        // becomes the exec message without a copy or an allocation.
        let code = wire::raw_request_code(&bytes);
        let parsed = if wire::is_mcast_request(&bytes) {
            self.mcast(conn, code, bytes, out)
        } else {
            Request::parse(&bytes).map(|req| self.request_parsed(conn, req, bytes, out))
        };
        if let Err(e) = parsed {
            self.stats.bad_requests += 1;
            debug!("cpg: {}: undecodable request: {}", conn, e);
            reply(
                out,
                conn,
                Response::error(code, wire::decode_error_reply(e)),
            );
        }
    }

    fn request_parsed(&mut self, conn: ConnId, req: Request, bytes: Bytes, out: &mut Outbox) {
        self.reroute();
        let code = req.code();
        let result = match req {
            Request::Initialize { flags, .. } => self.initialize(conn, flags),
            Request::Finalize => {
                self.release(conn, out);
                reply(out, conn, Response::ok(code, ResponseBody::None));
                out.close(conn);
                return;
            }
            Request::Join { group } => self.join(conn, group, out),
            Request::Leave { group } => self.leave(conn, &group, out),
            // `request` hands these to `mcast` before parsing; the same path if not.
            Request::Mcast { payload, .. } | Request::McastQueued { payload, .. } => {
                // Let go of the payload slice first, so the request buffer is unique again
                // and becomes the exec message in place.
                drop(payload);
                if let Err(e) = self.mcast(conn, code, bytes, out) {
                    answer(out, conn, code, Err(wire::decode_error_reply(e)));
                }
                return;
            }
            Request::MembershipGet { group } => Ok(ResponseBody::Members(self.members(&group))),
            Request::LocalGet => Ok(ResponseBody::LocalNode(self.node_id)),
            Request::IterationInitialize { kind, group } => {
                self.iteration_initialize(conn, kind, &group)
            }
            Request::IterationNext { handle } => self.iteration_next(conn, handle),
            Request::IterationFinalize { handle } => self
                .conns
                .get_mut(&conn)
                .and_then(|c| c.iterations.remove(&handle))
                .map(|_| ResponseBody::None)
                .ok_or(CsError::BadHandle),
            Request::FlowControlGet => Ok(ResponseBody::FlowControl(self.flow_control)),
            Request::MaxMessageSize => Ok(ResponseBody::MaxMessageSize(
                u32::try_from(wire::max_payload(self.config.max_message_len)).unwrap_or(u32::MAX),
            )),
        };
        let succeeded = result.is_ok();
        answer(out, conn, code, result);
        if code == RequestCode::Initialize && succeeded {
            self.initial_totem_confchg(conn, out);
        }
    }

    fn initialize(&mut self, conn: ConnId, flags: u32) -> Result<ResponseBody, CsError> {
        let c = self.conns.get_mut(&conn).ok_or(CsError::BadHandle)?;
        c.flags = flags;
        Ok(ResponseBody::None)
    }

    /// Model v1's `CPG_MODEL_V1_DELIVER_INITIAL_TOTEM_CONF`: the current totem
    /// configuration right after initialize, if there is one yet (else it comes with the
    /// first activation, as to every connection).
    fn initial_totem_confchg(&mut self, conn: ConnId, out: &mut Outbox) {
        let wants = self
            .conns
            .get(&conn)
            .is_some_and(|c| c.flags & DELIVER_INITIAL_TOTEM_CONF != 0);
        if let (true, Some((ring_id, members))) = (wants, &self.totem) {
            let ev = CpgEvent::TotemConfchg {
                ring_id: *ring_id,
                members: members.clone(),
            };
            out.event(conn, ev.emit());
        }
    }

    fn join(
        &mut self,
        conn: ConnId,
        group: GroupName,
        out: &mut Outbox,
    ) -> Result<ResponseBody, CsError> {
        let me = self.node_id;
        let c = self.conns.get_mut(&conn).ok_or(CsError::BadHandle)?;
        let pid = c.pid;
        match c.groups.get(&group) {
            Some(JoinState::Leaving) => return Err(CsError::Busy),
            Some(_) => return Err(CsError::Exist),
            None => {}
        }
        if c.groups.len() >= self.config.max_groups_per_conn {
            return Err(CsError::TooManyGroups);
        }
        let key = (group, pid);
        // corosync `message_handler_req_lib_cpg_join`: the same process on another
        // connection is already in the group → EXIST; its earlier leave is still in
        // flight → TRY_AGAIN.
        if self.local.contains_key(&key) {
            return Err(CsError::Exist);
        }
        let in_view = self
            .view
            .get(&key.0)
            .is_some_and(|m| m.contains(&Member::new(me, pid)));
        if in_view || self.announced.contains(&key) {
            return Err(CsError::TryAgain);
        }
        c.groups.insert(key.0.clone(), JoinState::Joining);
        self.local.insert(key.clone(), conn);
        self.send_or_hold(Held::Join(key.0, key.1), out);
        Ok(ResponseBody::None)
    }

    fn leave(
        &mut self,
        conn: ConnId,
        group: &GroupName,
        out: &mut Outbox,
    ) -> Result<ResponseBody, CsError> {
        let c = self.conns.get_mut(&conn).ok_or(CsError::BadHandle)?;
        let pid = c.pid;
        match c.groups.get_mut(group) {
            None | Some(JoinState::Leaving) => Err(CsError::NotExist),
            Some(JoinState::Joining) => Err(CsError::Busy),
            Some(state @ JoinState::Joined) => {
                *state = JoinState::Leaving;
                self.send_or_hold(Held::Leave(group.clone(), pid, Reason::Leave), out);
                Ok(ResponseBody::None)
            }
        }
    }

    /// Client `conn`'s Mcast or McastQueued (`code`) `request`: sent if it may be (the
    /// request buffer becomes the exec message in place) and answered, a queued one only
    /// when it fails. `Err` only if its head does not decode (not answered here).
    fn mcast(
        &mut self,
        conn: ConnId,
        code: RequestCode,
        request: Bytes,
        out: &mut Outbox,
    ) -> crate::wire::Result<()> {
        // The head borrows the request: decide first, then move the buffer on.
        let allowed = McastRequestHead::parse(&request)
            .map(|head| self.may_mcast(conn, head.guarantee, head.group, request.len()))?;
        let result = allowed.map(|(guarantee, pid)| {
            let msg = wire::mcast_request_into_message(request, Member::new(self.node_id, pid));
            self.send_or_hold(Held::Mcast(msg, guarantee), out);
            ResponseBody::None
        });
        if code == RequestCode::Mcast || result.is_err() {
            answer(out, conn, code, result);
        }
        Ok(())
    }

    /// Whether `conn` may multicast a `len`-byte request to `group`: the ring's guarantee
    /// and the sender's pid if so.
    fn may_mcast(
        &self,
        conn: ConnId,
        guarantee: CpgGuarantee,
        group: &[u8],
        len: usize,
    ) -> Result<(Guarantee, u32), CsError> {
        let c = self.conns.get(&conn).ok_or(CsError::BadHandle)?;
        // corosync: only a connection that joined (or is joining) the group may send.
        match c.groups.get(group) {
            Some(JoinState::Joined | JoinState::Joining) => {}
            None | Some(JoinState::Leaving) => return Err(CsError::NotExist),
        }
        let ring_guarantee = match guarantee {
            CpgGuarantee::Safe => Guarantee::Safe,
            CpgGuarantee::Unordered | CpgGuarantee::Fifo | CpgGuarantee::Agreed => {
                Guarantee::Agreed
            }
            CpgGuarantee::Unknown(_) => return Err(CsError::InvalidParam),
        };
        if len > self.config.max_message_len {
            return Err(CsError::TooBig);
        }
        if self.flow_control
            || (!self.settled && self.held_bytes + len > self.config.max_held_bytes)
        {
            return Err(CsError::TryAgain);
        }
        Ok((ring_guarantee, c.pid))
    }

    fn iteration_initialize(
        &mut self,
        conn: ConnId,
        kind: IterationType,
        group: &GroupName,
    ) -> Result<ResponseBody, CsError> {
        // corosync copies the list at initialize: later changes do not show.
        let snapshot: Snapshot = match kind {
            IterationType::NameOnly => self.view.keys().map(|g| (g.clone(), 0, 0)).collect(),
            IterationType::OneGroup => self
                .view
                .get(group)
                .into_iter()
                .flatten()
                .map(|m| (group.clone(), m.node.0, m.pid))
                .collect(),
            IterationType::All => self
                .view
                .iter()
                .flat_map(|(g, ms)| ms.iter().map(move |m| (g.clone(), m.node.0, m.pid)))
                .collect(),
            IterationType::Unknown(_) => return Err(CsError::InvalidParam),
        };
        let max = self.config.max_iterations_per_conn;
        let c = self.conns.get_mut(&conn).ok_or(CsError::BadHandle)?;
        if c.iterations.len() >= max {
            return Err(CsError::NoResources);
        }
        let mut handle = c.next_iteration;
        while c.iterations.contains_key(&handle) {
            handle = handle.wrapping_add(1);
        }
        c.next_iteration = handle.wrapping_add(1);
        c.iterations.insert(handle, snapshot);
        Ok(ResponseBody::IterationHandle(handle))
    }

    fn iteration_next(&mut self, conn: ConnId, handle: u32) -> Result<ResponseBody, CsError> {
        let it = self
            .conns
            .get_mut(&conn)
            .and_then(|c| c.iterations.get_mut(&handle))
            .ok_or(CsError::BadHandle)?;
        let (group, node, pid) = it.pop_front().ok_or(CsError::NoSections)?;
        Ok(ResponseBody::IterationItem { group, node, pid })
    }

    /// The connection goes: it leaves every group it is in (`PROCDOWN`, as corosync's
    /// `cpg_lib_exit_fn`; a finalize without leave is the same), its iterations close.
    fn release(&mut self, conn: ConnId, out: &mut Outbox) {
        let Some(c) = self.conns.remove(&conn) else {
            return;
        };
        for (group, state) in c.groups {
            let key = (group, c.pid);
            self.local.remove(&key);
            if state != JoinState::Leaving {
                self.send_or_hold(Held::Leave(key.0, key.1, Reason::ProcDown), out);
            }
        }
    }

    // ---- sending ----

    fn send_or_hold(&mut self, op: Held, out: &mut Outbox) {
        if self.settled {
            self.send(op, out);
        } else {
            self.stats.held_ops += 1;
            self.held_bytes += held_len(&op);
            self.held.push_back(op);
        }
    }

    fn send(&mut self, op: Held, out: &mut Outbox) {
        match op {
            Held::Join(group, pid) => {
                let msg = ExecMessage::ProcJoin {
                    group: group.clone(),
                    pid,
                };
                self.announced.insert((group, pid));
                out.multicast(msg.emit(), Guarantee::Agreed);
            }
            Held::Leave(group, pid, reason) => {
                let msg = ExecMessage::ProcLeave {
                    group: group.clone(),
                    pid,
                    reason,
                };
                self.announced.remove(&(group, pid));
                out.multicast(msg.emit(), Guarantee::Agreed);
            }
            Held::Mcast(bytes, guarantee) => out.multicast(bytes, guarantee),
        }
    }

    fn release_held(&mut self, out: &mut Outbox) {
        while let Some(op) = self.held.pop_front() {
            self.send(op, out);
        }
        self.held_bytes = 0;
    }

    // ---- delivered messages ----

    fn deliver(&mut self, d: Delivery, out: &mut Outbox) {
        // The hot path: a multicast is routed from its head; the delivered buffer is the
        // Deliver event, handed to every local receiver without a copy.
        let routed = match McastHead::parse_exec(&d.payload) {
            Ok(Some(head)) => Some(self.route_mcast(d.sender, head)),
            Ok(None) => None,
            Err(e) => {
                self.stats.bad_messages += 1;
                warn!("cpg: undecodable message from node {}: {}", d.sender.0, e);
                return;
            }
        };
        if let Some(routed) = routed {
            if routed {
                self.fan_out(d.payload, out);
            }
            return;
        }
        self.reroute();
        let msg = match ExecMessage::parse(&d.payload) {
            Ok(m) => m,
            Err(e) => {
                self.stats.bad_messages += 1;
                warn!("cpg: undecodable message from node {}: {}", d.sender.0, e);
                return;
            }
        };
        match msg {
            ExecMessage::ProcJoin { group, pid } => {
                self.round_apply(d.sender, &group, pid, true);
                self.proc_join(group, Member::new(d.sender, pid), Reason::Join, out);
            }
            ExecMessage::ProcLeave { group, pid, reason } => {
                self.round_apply(d.sender, &group, pid, false);
                self.proc_leave(&group, Member::new(d.sender, pid), reason, out);
            }
            ExecMessage::JoinList { ring_id, entries } => {
                self.joinlist(d.sender, ring_id, entries);
            }
            // Routed above; a message that parses fully parses its head too.
            ExecMessage::Mcast(_) => {}
        }
    }

    /// Points the route at a multicast's group, with the checks that decide whether it is
    /// delivered at all: `true` to deliver it to the route's receivers.
    fn route_mcast(&mut self, from: NodeId, head: McastHead<'_>) -> bool {
        if head.sender.node != from {
            self.stats.bad_messages += 1;
            warn!(
                "cpg: node {} sent a message claiming node {}",
                from.0, head.sender.node.0
            );
            return false;
        }
        let same_group = self
            .route
            .as_ref()
            .is_some_and(|r| r.group.as_bytes() == head.group);
        let known = same_group && self.route.as_ref().is_some_and(|r| r.sender == head.sender);
        if !known {
            if !self
                .view
                .get(head.group)
                .is_some_and(|s| s.contains(&head.sender))
            {
                self.stats.mcast_not_member += 1;
                debug!(
                    "cpg: message to {} from non-member {}:{}",
                    GroupName::new(head.group).unwrap_or_default(),
                    head.sender.node.0,
                    head.sender.pid
                );
                return false;
            }
            match &mut self.route {
                Some(r) if same_group => r.sender = head.sender,
                _ => {
                    // A member's group is in the view, so its name is a valid one.
                    let group = GroupName::new(head.group).unwrap_or_default();
                    self.route = Some(Route {
                        receivers: self.receivers(&group),
                        group,
                        sender: head.sender,
                    });
                }
            }
        }
        true
    }

    /// A routed multicast to every receiver of the route: the delivered buffer is the
    /// Deliver event, shared (the last receiver gets the buffer itself).
    fn fan_out(&mut self, payload: Bytes, out: &mut Outbox) {
        if let Some((last, others)) = self.route.as_ref().and_then(|r| r.receivers.split_last()) {
            self.stats.delivered += 1 + others.len() as u64;
            for conn in others {
                out.event(*conn, payload.clone());
            }
            out.event(*last, payload);
        }
    }

    /// Forgets the cached route: membership or connections may change.
    fn reroute(&mut self) {
        self.route = None;
    }

    /// `member` joined `group` (corosync `do_proc_join`).
    fn proc_join(&mut self, group: GroupName, member: Member, reason: Reason, out: &mut Outbox) {
        if !self.view.entry(group.clone()).or_default().insert(member) {
            self.stats.redundant_ops += 1;
            return;
        }
        self.mark_joined(&group, member);
        self.notify(
            &group,
            Confchg {
                group: group.clone(),
                members: self.members(&group),
                left: Vec::new(),
                joined: alloc::vec![member.with(reason)],
            },
            &[],
            out,
        );
    }

    /// `member` left `group` (corosync `do_proc_leave`).
    fn proc_leave(&mut self, group: &GroupName, member: Member, reason: Reason, out: &mut Outbox) {
        let removed = self.view.get_mut(group).is_some_and(|m| m.remove(&member));
        if !removed {
            self.stats.redundant_ops += 1;
            return;
        }
        if self.view.get(group).is_some_and(BTreeSet::is_empty) {
            self.view.remove(group);
        }
        // The leaver sees itself in the left list ("leave complete only when own confchg
        // arrives", cpg_leave(3)), then its connection is out of the group.
        let leaver = self.local_leaver(group, member);
        self.notify(
            group,
            Confchg {
                group: group.clone(),
                members: self.members(group),
                left: alloc::vec![member.with(reason)],
                joined: Vec::new(),
            },
            leaver.as_slice(),
            out,
        );
        if let Some(conn) = leaver {
            self.forget_membership(conn, group, member.pid);
        }
    }

    /// A local connection's membership is over: it no longer holds `(group, pid)`.
    fn forget_membership(&mut self, conn: ConnId, group: &GroupName, pid: u32) {
        self.local.remove(&(group.clone(), pid));
        if let Some(c) = self.conns.get_mut(&conn) {
            c.groups.remove(group);
        }
    }

    /// The live local connection that held `member` in `group` and is not (re)joining it.
    fn local_leaver(&self, group: &GroupName, member: Member) -> Option<ConnId> {
        if member.node != self.node_id {
            return None;
        }
        let conn = *self.local.get(&(group.clone(), member.pid))?;
        let state = self.conns.get(&conn)?.groups.get(group)?;
        (*state != JoinState::Joining).then_some(conn)
    }

    /// A local member is in the view: its connection's join is complete.
    fn mark_joined(&mut self, group: &GroupName, member: Member) {
        if member.node != self.node_id {
            return;
        }
        if let Some(conn) = self.local.get(&(group.clone(), member.pid))
            && let Some(state) = self
                .conns
                .get_mut(conn)
                .and_then(|c| c.groups.get_mut(group))
            && *state == JoinState::Joining
        {
            *state = JoinState::Joined;
        }
    }

    /// Local connections that receive `group`'s messages and confchgs: its local members
    /// whose join is complete (corosync: `JOIN_COMPLETED` or `LEAVE_STARTED`), by pid.
    fn receivers(&self, group: &GroupName) -> Vec<ConnId> {
        let Some(members) = self.view.get(group) else {
            return Vec::new();
        };
        let me = self.node_id;
        members
            .range(Member::new(me, 0)..=Member::new(me, u32::MAX))
            .filter_map(|m| {
                let conn = *self.local.get(&(group.clone(), m.pid))?;
                let state = self.conns.get(&conn)?.groups.get(group)?;
                (*state != JoinState::Joining).then_some(conn)
            })
            .collect()
    }

    /// Sends a confchg to the group's receivers, and to `also` (leavers).
    fn notify(&mut self, group: &GroupName, confchg: Confchg, also: &[ConnId], out: &mut Outbox) {
        let mut to = self.receivers(group);
        for c in also {
            if !to.contains(c) {
                to.push(*c);
            }
        }
        if to.is_empty() {
            return;
        }
        let bytes = CpgEvent::Confchg(confchg).emit();
        for conn in to {
            out.event(conn, bytes.clone());
        }
    }
}

impl ServiceEngine for Cpg {
    fn service_id(&self) -> ServiceId {
        service_id::CPG
    }

    fn name(&self) -> &'static str {
        "cpg"
    }

    fn on_connect(&mut self, conn: ConnId, creds: Credentials, _out: &mut Outbox) {
        self.reroute();
        self.conns.insert(
            conn,
            Conn {
                pid: creds.pid,
                flags: 0,
                groups: BTreeMap::new(),
                iterations: BTreeMap::new(),
                next_iteration: 1,
            },
        );
    }

    fn on_request(&mut self, conn: ConnId, request: Bytes, out: &mut Outbox) {
        self.request(conn, request, out);
    }

    fn on_disconnect(&mut self, conn: ConnId, out: &mut Outbox) {
        self.reroute();
        self.release(conn, out);
    }

    fn on_deliver(&mut self, delivery: Delivery, out: &mut Outbox) {
        self.deliver(delivery, out);
    }

    fn sync_init(
        &mut self,
        transitional: &[NodeId],
        members: &[NodeId],
        ring_id: RingId,
        _out: &mut Outbox,
    ) {
        self.reroute();
        self.begin_round(transitional, members, ring_id);
    }

    fn sync_process(&mut self, out: &mut Outbox) -> SyncProgress {
        self.reroute();
        self.send_joinlist(out);
        SyncProgress::Done
    }

    fn sync_activate(&mut self, out: &mut Outbox) {
        self.reroute();
        self.activate_round(out);
    }

    fn sync_abort(&mut self, _out: &mut Outbox) {
        self.reroute();
        self.round = None;
    }

    fn on_flow_control(&mut self, enabled: bool, _out: &mut Outbox) {
        self.flow_control = enabled;
    }

    fn backlogged(&self) -> bool {
        // `mcast` refuses once a message could overflow the hold budget: say so while
        // there is no room for the largest one.
        !self.settled && self.held_bytes + self.config.max_message_len > self.config.max_held_bytes
    }
}

/// Replies to request `code` with its result.
fn answer(
    out: &mut Outbox,
    conn: ConnId,
    code: RequestCode,
    result: Result<ResponseBody, CsError>,
) {
    let response = match result {
        Ok(body) => Response::ok(code, body),
        Err(e) => Response::error(code, e),
    };
    reply(out, conn, response);
}

fn reply(out: &mut Outbox, conn: ConnId, response: Response) {
    out.reply(conn, response.emit());
}

fn held_len(op: &Held) -> usize {
    match op {
        Held::Join(g, _) | Held::Leave(g, _, _) => 8 + g.len(),
        Held::Mcast(b, _) => b.len(),
    }
}

#[cfg(test)]
mod tests;
