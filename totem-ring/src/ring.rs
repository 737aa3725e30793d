//! [`Ring`]: one processor's Totem SRP state machine, sans-IO.
//!
//! This file holds the struct, the public API and the plumbing every state shares (sending,
//! the token, delivery, timers). The protocol rules live in `state/`: the operational token
//! and message rules in `operational.rs`, the membership protocol in `gather.rs` and
//! `commit.rs`, recovery and the installation of a new configuration in `recovery.rs`.

use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use bytes::Bytes;
use totem_proto::time::{Duration, Instant};
use totem_proto::{
    Body, EmitBody, Flags, Frame, FrameHead, Guarantee, NodeId, OrfTokenRepr, RingId, Seq,
    ServiceId, WIRE_VERSION_MAX, WIRE_VERSION_MIN, emit_frame, pack_capacity,
};
use totem_transport::rng::SplitMix64;
use totem_transport::{Dest, PeerAddr};

use crate::config::{Config, ConfigError, Effective};
use crate::event::{Delivery, Event, Transmit};
use crate::outq::OutQueue;
use crate::reasm::Reassembly;
use crate::sortq::SortQueue;
use crate::stats::Stats;
use crate::timer::{Timer, TimerTable};

/// The membership protocol's states (Totem TOCS'95; corosync `memb_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum State {
    /// Normal operation: the token circulates, messages are ordered and delivered.
    Operational,
    /// Looking for the members of the next ring (joins, consensus).
    Gather,
    /// The commit token is installing a new ring.
    Commit,
    /// Old-ring messages are exchanged among the members that move together.
    Recovery,
    /// This node left the ring ([`Ring::leave`]); it ignores all input.
    Left,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Operational => "OPERATIONAL",
            Self::Gather => "GATHER",
            Self::Commit => "COMMIT",
            Self::Recovery => "RECOVERY",
            Self::Left => "LEFT",
        })
    }
}

/// Why [`Ring::submit`] refused a message. Nothing was queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SubmitError {
    /// The send queue is full (`send_queue_bytes`): try again after the ring has sent
    /// some of it. The ring never buffers without bound.
    Backpressure,
    /// The message is larger than `max_message_len`.
    TooLarge {
        /// The largest message accepted.
        max: usize,
    },
    /// The node has left the ring.
    Closed,
}

/// A message [`Ring::offer`] did not queue, handed back with the reason: the caller keeps
/// it for later without having had to clone it first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// Why.
    pub error: SubmitError,
    /// The message, as offered.
    pub payload: Bytes,
}

impl fmt::Display for SubmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Backpressure => f.write_str("send queue full, try again later"),
            Self::TooLarge { max } => write!(f, "message larger than the maximum of {max} bytes"),
            Self::Closed => f.write_str("the node has left the ring"),
        }
    }
}

impl core::error::Error for SubmitError {}

/// What this node had on its old ring, saved once when a new ring is first committed and
/// kept across failed attempts until one reaches operational (corosync
/// `old_ring_state_save`; TOTEM-SRP.md §9 on issue #445).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct OldRing {
    pub(crate) saved: bool,
    pub(crate) ring_id: RingId,
    pub(crate) aru: Seq,
    pub(crate) high_seq_received: Seq,
    pub(crate) last_released: Seq,
}

/// One processor's Totem SRP state machine: ordering, membership and Extended Virtual
/// Synchrony, without I/O.
///
/// # Method groups
/// * getters: [`node_id`](Self::node_id), [`state`](Self::state),
///   [`ring_id`](Self::ring_id), [`members`](Self::members), [`config`](Self::config),
///   [`stats`](Self::stats);
/// * inputs: [`handle_datagram`](Self::handle_datagram),
///   [`handle_timeout`](Self::handle_timeout);
/// * mutators: [`submit`](Self::submit), [`leave`](Self::leave);
/// * outputs: [`poll_event`](Self::poll_event), [`poll_transmit`](Self::poll_transmit),
///   [`poll_timeout`](Self::poll_timeout).
///
/// # Driving it
/// `now` is a monotonic [`Instant`] the driver reads once per input. After every input or
/// mutator, drain [`poll_event`](Self::poll_event) (persisting [`Event::RingSeqUsed`] before
/// anything is sent), then [`poll_transmit`](Self::poll_transmit), each until `None`; then
/// sleep until [`poll_timeout`](Self::poll_timeout) or the next datagram. Calling
/// `handle_timeout` early is a no-op. Feed every datagram already received before a
/// token (corosync's `totemnet_recv_flush`) so that messages waiting in the socket are not
/// requested again.
#[derive(Debug)]
pub struct Ring {
    pub(crate) cfg: Effective,
    pub(crate) me: NodeId,
    pub(crate) head: FrameHead,
    pub(crate) state: State,
    pub(crate) timers: TimerTable,
    pub(crate) rng: SplitMix64,
    pub(crate) transmits: VecDeque<Transmit>,
    pub(crate) events: VecDeque<Event>,
    pub(crate) stats: Stats,
    pub(crate) now: Instant,

    // The ring.
    /// This node's current ring id (`my_ring_id`): the new ring's from commit on.
    pub(crate) ring_id: RingId,
    /// Highest ring seq seen anywhere (`token_ring_id_seq`).
    pub(crate) highest_ring_seq: u64,
    /// Members of the current regular configuration (`my_memb_list`), ascending.
    pub(crate) memb: Vec<NodeId>,
    /// The ring id of that configuration (`ring_id` moves ahead during commit).
    pub(crate) memb_ring_id: RingId,
    /// Wire versions each peer announced in its joins.
    pub(crate) versions: BTreeMap<NodeId, (u8, u8)>,

    // Membership (gather).
    pub(crate) proc_set: BTreeSet<NodeId>,
    pub(crate) fail_set: BTreeSet<NodeId>,
    pub(crate) consensus_set: BTreeSet<NodeId>,
    /// Nodes that announced a clean leave.
    pub(crate) leavers: BTreeSet<NodeId>,
    pub(crate) failed_to_recv: bool,
    /// Processors heard from since this gather began (`fast_fail`).
    pub(crate) heard: BTreeSet<NodeId>,

    // Commit and recovery.
    pub(crate) new_memb: Vec<NodeId>,
    pub(crate) old: OldRing,
    pub(crate) trans_memb: Vec<NodeId>,
    pub(crate) deliver_memb: Vec<NodeId>,
    /// Highest old-ring seq any transitional member delivered: up to here the old regular
    /// configuration completed delivery, safe messages included.
    pub(crate) old_delivered_bound: Seq,
    pub(crate) originated_orf_token: bool,
    /// Old-ring frames to re-broadcast in RECOVERY, by old-ring seq (corosync
    /// `retrans_message_queue`).
    pub(crate) retrans_queue: BTreeMap<Seq, Bytes>,
    pub(crate) set_retrans_flg: bool,
    pub(crate) retrans_flg_count: u32,
    pub(crate) install_seq: Seq,
    pub(crate) received_flg: bool,
    pub(crate) rotation_counter: u32,

    // Ordering on the current ring.
    pub(crate) regular: SortQueue,
    pub(crate) recovery: SortQueue,
    pub(crate) aru: Seq,
    pub(crate) high_seq_received: Seq,
    pub(crate) high_delivered: Seq,
    pub(crate) last_released: Seq,
    /// Highest seq known received by every member (two-rotation aru): safe up to here.
    pub(crate) stable: Seq,
    pub(crate) token_seq_seen: Option<u64>,
    pub(crate) last_aru: Seq,
    pub(crate) aru_count: u32,
    pub(crate) last_seq: Seq,
    pub(crate) seq_unchanged: u32,
    pub(crate) token_held: bool,
    /// Seq and originator of the newest message of this ring's regular queue: the node
    /// that numbered the token's seq holds the idle token.
    pub(crate) last_origin: Option<(Seq, NodeId)>,
    /// The idle token this node holds, as it stood after this node's visit: released
    /// with whatever was submitted meanwhile.
    pub(crate) held_token: Option<(NodeId, OrfTokenRepr)>,
    pub(crate) orf_token_discard: bool,
    pub(crate) trc: u32,
    pub(crate) pbl: u32,
    /// The token's seq when this node last forwarded it (Accelerated Ring: gaps above it
    /// may still be in flight and are not requested yet).
    pub(crate) last_forwarded_seq: Seq,
    /// The last token sent (ORF or commit), for `token_retransmit` and `hold`.
    pub(crate) last_token: Option<(NodeId, Bytes)>,
    /// When this node last forwarded the ORF token (not a resend): the rotation sample
    /// taken when the next token arrives (Karn's rule: never from a resent token).
    pub(crate) token_sent_at: Option<Instant>,
    /// Smoothed rotation time as this node sees it (send → next token), for the adaptive
    /// token retransmit.
    pub(crate) rotation: Option<Duration>,
    /// Resends of the current token (the adaptive timeout doubles with each).
    pub(crate) token_resends: u32,
    /// A token this node sent itself (singleton ring), processed on the next timeout.
    pub(crate) self_token: Option<Bytes>,

    // Application side.
    pub(crate) outq: OutQueue,
    pub(crate) reasm: Reassembly,

    #[cfg(feature = "_planted-bugs")]
    pub(crate) bug: Option<crate::PlantedBug>,
}

impl Ring {
    /// A ring for this node, starting at `now`. `last_ring_seq` is the highest ring seq the
    /// node persisted before (0 on first start): every ring it forms from now on has a
    /// larger one, so a restarted node never reuses a ring id (corosync PR #495).
    ///
    /// The node starts in gather, looking for peers; alone, it forms a singleton ring.
    ///
    /// # Errors
    /// A [`ConfigError`] for an invalid configuration.
    pub fn new(config: &Config, now: Instant, last_ring_seq: u64) -> Result<Self, ConfigError> {
        let cfg = config.effective()?;
        let me = cfg.node_id;
        // Config::effective checked that the frame has room for data.
        let capacity = pack_capacity(cfg.frame_len).unwrap_or(0);
        let ring_id = RingId::new(me, last_ring_seq.saturating_add(1));
        let mut ring = Self {
            head: FrameHead {
                version: WIRE_VERSION_MAX,
                cluster_id: cfg.cluster_id,
                sender: me,
                flags: Flags::NONE,
            },
            me,
            state: State::Gather,
            timers: TimerTable::default(),
            rng: SplitMix64::new(cfg.seed),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
            now,
            ring_id,
            highest_ring_seq: ring_id.seq,
            memb: vec![me],
            memb_ring_id: ring_id,
            versions: BTreeMap::new(),
            proc_set: BTreeSet::new(),
            fail_set: BTreeSet::new(),
            consensus_set: BTreeSet::new(),
            leavers: BTreeSet::new(),
            failed_to_recv: false,
            heard: BTreeSet::new(),
            new_memb: Vec::new(),
            old: OldRing {
                ring_id,
                ..OldRing::default()
            },
            trans_memb: Vec::new(),
            deliver_memb: Vec::new(),
            old_delivered_bound: 0,
            originated_orf_token: false,
            retrans_queue: BTreeMap::new(),
            set_retrans_flg: false,
            retrans_flg_count: 0,
            install_seq: 0,
            received_flg: true,
            rotation_counter: 0,
            regular: SortQueue::new(1, cfg.retransmit_window),
            recovery: SortQueue::new(1, cfg.retransmit_window),
            aru: 0,
            high_seq_received: 0,
            high_delivered: 0,
            last_released: 0,
            stable: 0,
            token_seq_seen: None,
            last_aru: 0,
            aru_count: 0,
            last_seq: 0,
            seq_unchanged: 0,
            token_held: false,
            last_origin: None,
            held_token: None,
            orf_token_discard: true,
            trc: 0,
            pbl: 0,
            last_forwarded_seq: 0,
            last_token: None,
            token_sent_at: None,
            rotation: None,
            token_resends: 0,
            self_token: None,
            outq: OutQueue::new(capacity),
            reasm: Reassembly::new(cfg.max_message_len),
            #[cfg(feature = "_planted-bugs")]
            bug: None,
            cfg,
        };
        ring.events.push_back(Event::RingSeqUsed(ring_id.seq));
        ring.gather_enter("startup");
        Ok(ring)
    }

    // ---- getters ----

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.me
    }

    /// The membership state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The ring id this node works with: the ring being installed from COMMIT on, so it
    /// can differ from [`installed_ring_id`](Self::installed_ring_id) while a new ring forms.
    pub fn ring_id(&self) -> RingId {
        self.ring_id
    }

    /// The ring id of the current regular configuration — the one [`members`](Self::members)
    /// belongs to.
    pub fn installed_ring_id(&self) -> RingId {
        self.memb_ring_id
    }

    /// Members of the current regular configuration, ascending.
    pub fn members(&self) -> &[NodeId] {
        &self.memb
    }

    /// Every value the ring runs with (derived timers resolved).
    pub fn config(&self) -> &Effective {
        &self.cfg
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Bytes of application data queued but not yet sent.
    pub fn queued_bytes(&self) -> usize {
        self.outq.bytes()
    }

    /// Messages ordered but not yet released (kept for retransmission or delivery).
    pub fn window_used(&self) -> usize {
        self.regular.stored() + self.recovery.stored()
    }

    // ---- inputs ----

    /// A datagram arrived. Anything that does not decode, belongs to another cluster or
    /// comes from this node is counted and dropped; nothing here panics on input.
    pub fn handle_datagram(&mut self, now: Instant, from: PeerAddr, bytes: &[u8]) {
        self.now = now;
        if self.state == State::Left {
            return;
        }
        let frame = match Frame::parse(bytes) {
            Ok(f) => f,
            Err(e) => {
                self.stats.rx_malformed += 1;
                debug!("dropping malformed datagram from {}: {}", from, e);
                return;
            }
        };
        if frame.header.cluster_id != self.cfg.cluster_id {
            self.stats.rx_other_cluster += 1;
            return;
        }
        if frame.header.sender == self.me {
            self.stats.rx_own += 1;
            return;
        }
        self.handle_frame(bytes, frame);
    }

    /// Dispatches a validated frame of our cluster.
    pub(crate) fn handle_frame(&mut self, bytes: &[u8], frame: Frame<'_>) {
        let sender = frame.header.sender;
        if self.state == State::Gather {
            self.heard.insert(sender);
        }
        match frame.body {
            Body::OrfToken(v) => self.on_orf_token(&v),
            Body::Mcast(v) => {
                let encapsulated = frame.header.flags.contains(Flags::ENCAPSULATED);
                self.on_mcast(bytes, sender, encapsulated, &v);
            }
            Body::MembJoin(v) => {
                let leave = frame.header.flags.contains(Flags::LEAVE);
                self.on_join(sender, leave, &v);
            }
            Body::MembCommitToken(v) => self.on_commit_token(&v),
            Body::MergeDetect(v) => self.on_merge_detect(sender, v.ring_id()),
            Body::TokenHoldCancel(v) => self.on_token_hold_cancel(v.ring_id()),
        }
    }

    /// A deadline may have passed. Each expired timer fires once per call; one re-armed
    /// for `now` fires on the next call (so a singleton ring cannot spin inside one call).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        if self.state == State::Left {
            return;
        }
        // Fire each timer that had expired on entry at most once: a handler that re-arms a
        // timer for `now` leaves it to the next call.
        for t in self.timers.expired(now) {
            if self.timers.is_expired(t, now) {
                self.timers.stop(t);
                self.on_timer(t);
            }
        }
    }

    fn on_timer(&mut self, t: Timer) {
        match t {
            Timer::Token => self.on_token_timeout(),
            Timer::TokenRetransmit => self.on_token_retransmit_timeout(),
            Timer::Hold => self.on_hold_timeout(),
            Timer::Join => self.on_join_timeout(),
            Timer::Consensus => self.on_consensus_timeout(),
            Timer::Merge => self.on_merge_timeout(),
            Timer::SendJoin => self.send_join(),
            Timer::FailSilent => self.on_fail_silent_timeout(),
            Timer::SelfToken => {
                if let Some(bytes) = self.self_token.take() {
                    // Our own frame: it decoded when we built it.
                    if let Ok(frame) = Frame::parse(&bytes) {
                        self.handle_frame(&bytes, frame);
                    }
                }
            }
        }
    }

    // ---- mutators ----

    /// Queues an application message for `service`, to be ordered and delivered to every
    /// member (this node included) with `guarantee`.
    ///
    /// # Errors
    /// [`SubmitError::Backpressure`] when the send queue is full,
    /// [`SubmitError::TooLarge`] above `max_message_len`, [`SubmitError::Closed`] after
    /// [`leave`](Self::leave). Nothing is queued on error.
    pub fn submit(
        &mut self,
        service: ServiceId,
        payload: Bytes,
        guarantee: Guarantee,
    ) -> Result<(), SubmitError> {
        self.offer(service, payload, guarantee).map_err(|r| r.error)
    }

    /// [`submit`](Self::submit) that hands a refused message back.
    ///
    /// # Errors
    /// As [`submit`](Self::submit), with the message.
    pub fn offer(
        &mut self,
        service: ServiceId,
        payload: Bytes,
        guarantee: Guarantee,
    ) -> Result<(), Refused> {
        let refuse = |error, payload| Err(Refused { error, payload });
        if self.state == State::Left {
            return refuse(SubmitError::Closed, payload);
        }
        if payload.len() > self.cfg.max_message_len {
            self.stats.submit_too_large += 1;
            let max = self.cfg.max_message_len;
            return refuse(SubmitError::TooLarge { max }, payload);
        }
        if self.outq.bytes() + payload.len() > self.cfg.send_queue_bytes {
            self.stats.submit_backpressure += 1;
            return refuse(SubmitError::Backpressure, payload);
        }
        // An unknown guarantee cannot be honoured; treat it as the stronger one.
        let guarantee = if guarantee == Guarantee::Agreed {
            Guarantee::Agreed
        } else {
            Guarantee::Safe
        };
        self.outq.push(service, guarantee, payload);
        self.token_hold_cancel_send();
        Ok(())
    }

    /// Leaves the ring cleanly: broadcasts a leave so the others form a new ring at once,
    /// without waiting for a token timeout (corosync `memb_leave_message_send`). The ring
    /// is inert afterwards.
    pub fn leave(&mut self, now: Instant) {
        self.now = now;
        if self.state == State::Left {
            return;
        }
        let procs: Vec<NodeId> = self
            .memb
            .iter()
            .chain(self.proc_set.iter())
            .copied()
            .filter(|n| *n != self.me)
            .collect();
        let mut fails: Vec<NodeId> = self.fail_set.iter().copied().collect();
        fails.push(self.me);
        // Sent twice: a lost leave costs the others a token timeout.
        for _ in 0..2 {
            self.send_join_frame(&procs, &fails, true);
        }
        self.state = State::Left;
        self.timers = TimerTable::default();
        self.self_token = None;
    }

    /// Applies new timer and flow-control values at run time (corosync lets `totem.token`
    /// and friends change live the same way). Timers already running keep their deadline;
    /// the next one armed uses the new value.
    ///
    /// What defines the node and its buffers cannot change live: `node_id`, `cluster_id`,
    /// `frame_len`, `max_message_len`, `send_queue_bytes`, `retransmit_window` and `seed`
    /// must be unchanged.
    ///
    /// # Errors
    /// A [`ConfigError`] for an invalid configuration, or one naming the first option that
    /// needs a restart; nothing is applied then.
    pub fn reconfigure(&mut self, config: &Config) -> Result<(), ConfigError> {
        let new = config.effective()?;
        let old = &self.cfg;
        let fixed: [(&'static str, bool); 6] = [
            ("nodeid", new.node_id == old.node_id),
            ("cluster_id", new.cluster_id == old.cluster_id),
            ("netmtu", new.frame_len == old.frame_len),
            (
                "max_message_len",
                new.max_message_len == old.max_message_len,
            ),
            (
                "send_queue_bytes",
                new.send_queue_bytes == old.send_queue_bytes,
            ),
            (
                "retransmit_window",
                new.retransmit_window == old.retransmit_window,
            ),
        ];
        if let Some((option, _)) = fixed.iter().find(|(_, same)| !same) {
            return Err(ConfigError {
                option,
                reason: "cannot change while running; restart the node",
            });
        }
        self.cfg = Effective {
            seed: self.cfg.seed,
            ..new
        };
        Ok(())
    }

    /// Plants a known protocol bug (simulator checker tests only).
    #[cfg(feature = "_planted-bugs")]
    pub fn plant_bug(&mut self, bug: crate::PlantedBug) {
        self.bug = Some(bug);
    }

    // ---- outputs ----

    /// The next event for the layers above.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The next frame to send.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) should be called next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    // ---- shared plumbing ----

    pub(crate) fn am_rep(&self) -> bool {
        self.ring_id.rep == self.me
    }

    /// Encodes `body` with this node's header and `flags`.
    pub(crate) fn encode<B: EmitBody>(&self, body: &B, flags: Flags, version: u8) -> Option<Bytes> {
        let mut buf = vec![0u8; totem_proto::HEADER_LEN + body.body_len()];
        let head = FrameHead {
            flags,
            version,
            ..self.head
        };
        match emit_frame(&head, body, &mut buf) {
            Ok(_) => Some(Bytes::from(buf)),
            Err(e) => {
                // Our own bodies are built valid; a failure is a bug, logged not fatal.
                warn!("cannot encode a frame: {}", e);
                None
            }
        }
    }

    pub(crate) fn transmit(&mut self, dest: Dest, frame: Bytes) {
        self.transmits.push_back(Transmit { dest, frame });
    }

    /// Sends a token (ORF or commit) to `to` and keeps it for retransmission; a token to
    /// this node itself is handed back through the `SelfToken` timer.
    pub(crate) fn send_token(&mut self, to: NodeId, frame: Bytes) {
        self.last_token = Some((to, frame.clone()));
        if to == self.me {
            self.self_token = Some(frame);
            self.timers.set(Timer::SelfToken, self.now);
        } else {
            self.transmit(Dest::Node(to), frame);
        }
        self.timers
            .set(Timer::TokenRetransmit, self.now + self.token_rto());
    }

    /// Resends the last token sent (token retransmission, hold release).
    pub(crate) fn resend_last_token(&mut self) {
        if let Some((to, frame)) = self.last_token.clone() {
            self.stats.token_retransmits += 1;
            self.send_token(to, frame);
        }
    }

    /// How long to wait for a sign that the successor has the ORF token before sending it
    /// again: `token_retransmit` (corosync), or with `adaptive_token_retransmit` about two
    /// measured rotations plus 1 ms, at least 2 ms, doubled per resend (TCP's backoff),
    /// never above `token_retransmit`.
    pub(crate) fn token_rto(&self) -> Duration {
        let max = self.cfg.token_retransmit;
        // Only for the ORF token of an installed ring: recovery rotations carry the old
        // ring's messages and are much longer than the operational ones measured.
        let Some(rotation) = self
            .rotation
            .filter(|_| self.cfg.adaptive_token_retransmit && self.state == State::Operational)
        else {
            return max;
        };
        let base =
            Duration::from_micros((rotation.total_micros().saturating_mul(2) + 1000).max(2000));
        let rto = base.saturating_mul(1u64 << self.token_resends.min(16));
        if rto < max { rto } else { max }
    }

    /// A new ORF token arrived: the time since this node last forwarded one is a rotation
    /// (smoothed as TCP's SRTT, gain 1/8).
    pub(crate) fn sample_rotation(&mut self) {
        self.token_resends = 0;
        let Some(sent) = self.token_sent_at.take() else {
            return;
        };
        let sample = self.now.saturating_duration_since(sent).total_micros();
        let smoothed = match self.rotation {
            None => sample,
            Some(r) => {
                let r = r.total_micros();
                r - r / 8 + sample / 8
            }
        };
        self.rotation = Some(Duration::from_micros(smoothed));
    }

    /// The successor of this node in ring order among `members`.
    pub(crate) fn successor(&self, members: &[NodeId]) -> NodeId {
        let pos = members.iter().position(|n| *n == self.me);
        match pos {
            Some(i) => members[(i + 1) % members.len()],
            None => self.me,
        }
    }

    /// The wire versions every member of `members` supports: the ring runs at the highest.
    pub(crate) fn common_version(&self, members: &[NodeId]) -> u8 {
        let mut lo = WIRE_VERSION_MIN;
        let mut hi = WIRE_VERSION_MAX;
        for n in members {
            if let Some((a, b)) = self.versions.get(n) {
                lo = lo.max(*a);
                hi = hi.min(*b);
            }
        }
        // No common version cannot happen among members that decoded each other's joins
        // (joins travel at each sender's minimum); fall back to the floor.
        if lo <= hi { hi } else { lo }
    }

    /// Delivers the packed payload of one ordered message to the application.
    pub(crate) fn deliver_payload(
        &mut self,
        ring_id: RingId,
        originator: NodeId,
        guarantee: Guarantee,
        payload: &Bytes,
    ) {
        let events = &mut self.events;
        let stats = &mut self.stats;
        let guarantee = if guarantee == Guarantee::Safe {
            Guarantee::Safe
        } else {
            Guarantee::Agreed
        };
        #[cfg(feature = "_planted-bugs")]
        let copies = if self.bug == Some(crate::PlantedBug::DuplicateDelivery) {
            2
        } else {
            1
        };
        #[cfg(not(feature = "_planted-bugs"))]
        let copies = 1;
        let r = self.reasm.unpack(originator, payload, |service, payload| {
            stats.delivered += 1;
            if guarantee == Guarantee::Safe {
                stats.delivered_safe += 1;
            }
            let d = Delivery {
                sender: originator,
                service,
                guarantee,
                ring_id,
                payload,
            };
            for _ in 1..copies {
                events.push_back(Event::Deliver(d.clone()));
            }
            events.push_back(Event::Deliver(d));
        });
        self.stats.bad_pack += u64::from(r.bad_pack);
        self.stats.fragments_discarded += u64::from(r.discarded);
    }
}
