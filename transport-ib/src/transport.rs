//! [`IbTransport`]: the totem [`Transport`] over any [`Verbs`] provider.
//!
//! What it does on top of the raw queue pair:
//!
//! * **Fragmentation**: frames up to [`IbConfig::max_frame`] (64 KiB) are cut into
//!   `mtu`-sized UD datagrams with a [`FragHeader`] and reassembled on the other side.
//! * **Fan-out**: `Dest::Multicast` is one UD send per peer (address handle per peer);
//!   `Dest::Node` one send to that peer. The sender's own copy is never sent.
//! * **Send-queue depth is back-pressure**: a frame is accepted whole into a one-frame
//!   backlog and posted as send slots free up; while any of it is still unposted, `send`
//!   returns `WouldBlock` and nothing of the new frame is taken (never a silent drop).
//! * **Receives posted ahead**: every receive slot is posted at start and re-posted as soon
//!   as its datagram is copied out. When the caller stops reading (the ready queue holds
//!   [`IbConfig::ready_limit`] frames), received completions are left unprocessed, so their
//!   slots stay unposted and the receive queue drains: back-pressure onto the fabric
//!   instead of unbounded memory.
//! * **QP-error recovery**: a completion with an error status or a post refused with
//!   `QpError` marks the queue pair broken; the next call drains the flushed completions,
//!   runs [`Verbs::recover`], re-posts every free receive slot and re-posts the sends that
//!   were flushed (they never executed, so this does not duplicate; the receiver drops exact
//!   duplicate fragments anyway and the ring drops duplicate frames).
//! * **Peer learning**: a datagram whose fragment header names a configured node but whose
//!   source address differs from the stored one (the peer restarted with a new QPN) updates
//!   the peer's address and address handle.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::rc::Rc;
use alloc::vec::Vec;

use totem_proto::NodeId;
use totem_transport::{Dest, PeerAddr, RecvMeta, Transport, TransportError};

use crate::frag::{FRAG_HEADER_LEN, FragHeader, MAX_FRAME, Reassembler};
use crate::verbs::{Completion, IbAddr, Opcode, Verbs, VerbsError, WcStatus};

/// Tunables of the transport logic (not of the device: see [`crate::config::IbOptions`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IbConfig {
    /// Largest frame `send` accepts; at most [`MAX_FRAME`].
    pub max_frame: usize,
    /// Completed frames held for `recv` before receive completions are left unprocessed.
    pub ready_limit: usize,
    /// A partial frame is dropped after this many later fragments.
    pub reassembly_max_age: u64,
    /// At most this many partial frames are held.
    pub max_partial: usize,
    /// Update a configured peer's address from the source of its datagrams.
    pub learn_peers: bool,
}

impl Default for IbConfig {
    fn default() -> Self {
        Self {
            max_frame: MAX_FRAME,
            ready_limit: 256,
            reassembly_max_age: 4096,
            max_partial: 64,
            learn_peers: true,
        }
    }
}

/// Counters, for logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IbStats {
    /// Frames accepted by `send` (a multicast counts once).
    pub frames_sent: u64,
    /// Datagrams posted.
    pub fragments_sent: u64,
    /// Frames handed out by `recv`.
    pub frames_received: u64,
    /// Datagrams received successfully.
    pub fragments_received: u64,
    /// `send` calls answered with `WouldBlock`.
    pub would_block: u64,
    /// Times the queue pair was found in the error state.
    pub qp_errors: u64,
    /// Successful recoveries.
    pub recoveries: u64,
    /// Flushed sends posted again after a recovery.
    pub resent: u64,
    /// Datagrams that were not valid fragments (or came from nobody we know and were kept
    /// anyway: see `from_unknown`).
    pub bad_datagrams: u64,
    /// Frames whose fragment header names a node not in the peer table.
    pub from_unknown: u64,
    /// Completions naming a slot out of range or in the wrong state.
    pub bad_completions: u64,
    /// Peer addresses learned from received datagrams.
    pub peers_learned: u64,
}

#[derive(Debug)]
struct Peer<Ah> {
    addr: IbAddr,
    ah: Ah,
}

/// One datagram waiting for (or occupying) a send slot.
#[derive(Debug, Clone)]
struct Out {
    dest: NodeId,
    msg_id: u32,
    offset: usize,
    frame: Rc<[u8]>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RecvSlot {
    /// Posted to the receive queue.
    Posted,
    /// Filled; its completion waits in `held` for room in `ready`.
    Held,
    /// Not posted (flushed, or a post failed); posted again by `replenish`.
    Free,
}

/// The totem transport over a [`Verbs`] provider. See the module documentation.
#[derive(Debug)]
pub struct IbTransport<V: Verbs> {
    node: NodeId,
    cfg: IbConfig,
    peers: BTreeMap<NodeId, Peer<V::Ah>>,
    /// Address handles of replaced peers, kept until no send is in flight: a send still
    /// names its AH until it completes.
    retired: Vec<V::Ah>,
    free_send: Vec<u32>,
    in_flight: BTreeMap<u32, Out>,
    backlog: VecDeque<Out>,
    recv_slots: Vec<RecvSlot>,
    held: VecDeque<Completion>,
    ready: VecDeque<(Vec<u8>, PeerAddr)>,
    reasm: Reassembler,
    next_msg: u32,
    broken: bool,
    scratch: Vec<Completion>,
    stats: IbStats,
    /// Last, so it drops after the address handles in `peers` and `retired` (an AH must be
    /// destroyed before the protection domain it was created from).
    verbs: V,
}

fn map_err(e: VerbsError) -> TransportError {
    match e {
        VerbsError::QueueFull => TransportError::WouldBlock,
        VerbsError::NoDevice => TransportError::Closed,
        VerbsError::QpError => TransportError::Io(5), // EIO
        VerbsError::BadSlot(_) => TransportError::Io(22), // EINVAL
        VerbsError::Io(code) => TransportError::Io(code),
    }
}

impl<V: Verbs> IbTransport<V> {
    /// A transport for node `node` over `verbs`; posts every receive slot.
    ///
    /// # Errors
    /// An MTU too small for the fragment header, or a provider failure posting receives.
    pub fn new(verbs: V, node: NodeId, cfg: IbConfig) -> Result<Self, VerbsError> {
        if verbs.mtu() <= FRAG_HEADER_LEN || verbs.send_slots() == 0 || verbs.recv_slots() == 0 {
            return Err(VerbsError::Io(22));
        }
        let cfg = IbConfig {
            max_frame: cfg.max_frame.min(MAX_FRAME),
            ..cfg
        };
        let sends = verbs.send_slots() as u32;
        let recvs = verbs.recv_slots();
        let mut t = Self {
            node,
            cfg,
            peers: BTreeMap::new(),
            retired: Vec::new(),
            // Popped from the back: slot 0 is used first.
            free_send: (0..sends).rev().collect(),
            in_flight: BTreeMap::new(),
            backlog: VecDeque::new(),
            recv_slots: alloc::vec![RecvSlot::Free; recvs],
            held: VecDeque::new(),
            ready: VecDeque::new(),
            reasm: Reassembler::new(cfg.reassembly_max_age, cfg.max_partial),
            next_msg: 0,
            broken: false,
            scratch: Vec::new(),
            stats: IbStats::default(),
            verbs,
        };
        t.replenish();
        if t.broken {
            return Err(VerbsError::QpError);
        }
        Ok(t)
    }

    /// This node's queue-pair address, for the peers' configuration.
    pub fn local_addr(&self) -> IbAddr {
        self.verbs.local_addr()
    }

    /// Adds (or replaces) the address of `node`. Adding this node's own id is a no-op.
    ///
    /// # Errors
    /// The provider could not build an address handle.
    pub fn add_peer(&mut self, node: NodeId, addr: IbAddr) -> Result<(), VerbsError> {
        if node == self.node {
            return Ok(());
        }
        let ah = self.verbs.create_ah(&addr)?;
        self.replace_peer(node, Peer { addr, ah });
        Ok(())
    }

    /// Forgets `node`.
    pub fn remove_peer(&mut self, node: NodeId) {
        if let Some(old) = self.peers.remove(&node) {
            self.retired.push(old.ah);
        }
    }

    fn replace_peer(&mut self, node: NodeId, peer: Peer<V::Ah>) {
        if let Some(old) = self.peers.insert(node, peer) {
            self.retired.push(old.ah);
        }
    }

    /// The address stored for `node`.
    pub fn peer_addr(&self, node: NodeId) -> Option<IbAddr> {
        self.peers.get(&node).map(|p| p.addr)
    }

    /// Counters.
    pub fn stats(&self) -> &IbStats {
        &self.stats
    }

    /// The provider (tests reach the fake through it).
    pub fn verbs(&self) -> &V {
        &self.verbs
    }

    /// The provider, mutably.
    pub fn verbs_mut(&mut self) -> &mut V {
        &mut self.verbs
    }

    /// Whether `send` would take a frame now (no unposted backlog).
    pub fn is_writable(&self) -> bool {
        self.backlog.is_empty() && !self.broken
    }

    /// Whether the queue pair is waiting for recovery.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Frames ready for `recv`.
    pub fn ready(&self) -> usize {
        self.ready.len()
    }

    /// Makes progress without sending or receiving: polls completions, recovers a broken
    /// queue pair, re-posts receives, posts backlog. `send` and `recv` call it first; a
    /// driver calls it when the completion channel fires.
    ///
    /// # Errors
    /// A provider failure while polling or recovering (retried on the next call).
    pub fn progress(&mut self) -> Result<(), TransportError> {
        self.poll_completions()?;
        if self.broken {
            // Drain what the error flushed before resetting the QP.
            self.poll_completions()?;
            self.verbs.recover().map_err(map_err)?;
            self.broken = false;
            self.stats.recoveries += 1;
            // Flushed sends never executed: post them again ahead of the backlog.
            let resend: Vec<Out> = core::mem::take(&mut self.in_flight).into_values().collect();
            self.stats.resent += resend.len() as u64;
            self.free_send = (0..self.verbs.send_slots() as u32).rev().collect();
            for out in resend.into_iter().rev() {
                self.backlog.push_front(out);
            }
            for s in &mut self.recv_slots {
                if *s == RecvSlot::Posted {
                    *s = RecvSlot::Free;
                }
            }
        }
        if self.in_flight.is_empty() {
            self.retired.clear();
        }
        self.drain_held();
        self.replenish();
        self.flush();
        Ok(())
    }

    fn poll_completions(&mut self) -> Result<(), TransportError> {
        let mut got = core::mem::take(&mut self.scratch);
        got.clear();
        let res = self.verbs.poll(&mut got);
        for c in got.drain(..) {
            self.on_completion(c);
        }
        self.scratch = got;
        res.map_err(map_err)
    }

    fn on_completion(&mut self, c: Completion) {
        if let WcStatus::Error(_) = c.status {
            if !self.broken {
                self.stats.qp_errors += 1;
            }
            self.broken = true;
        }
        match c.opcode {
            Opcode::Send => {
                let Some(out) = self.in_flight.remove(&c.slot) else {
                    self.stats.bad_completions += 1;
                    return;
                };
                self.free_send.push(c.slot);
                if c.status != WcStatus::Success {
                    // Never executed (flushed) or failed: post it again after recovery.
                    self.stats.resent += 1;
                    self.backlog.push_front(out);
                }
            }
            Opcode::Recv => {
                let idx = c.slot as usize;
                if self.recv_slots.get(idx) != Some(&RecvSlot::Posted) {
                    self.stats.bad_completions += 1;
                    return;
                }
                if c.status == WcStatus::Success {
                    self.recv_slots[idx] = RecvSlot::Held;
                    self.held.push_back(c);
                } else {
                    self.recv_slots[idx] = RecvSlot::Free;
                }
            }
        }
    }

    /// Turns held receive completions into frames while `ready` has room.
    fn drain_held(&mut self) {
        while self.ready.len() < self.cfg.ready_limit {
            let Some(c) = self.held.pop_front() else {
                return;
            };
            let buf = self.verbs.recv_buf(c.slot);
            let len = (c.byte_len as usize).min(buf.len());
            self.stats.fragments_received += 1;
            match self.reasm.push(&buf[..len]) {
                Ok(Some((sender, frame))) => {
                    let from = self.identify(NodeId(sender), c.src);
                    self.ready.push_back((frame, from));
                }
                Ok(None) => {}
                Err(_) => self.stats.bad_datagrams += 1,
            }
            self.recv_slots[c.slot as usize] = RecvSlot::Free;
        }
    }

    /// Maps a frame's claimed sender and its link-level source to a `PeerAddr`, learning a
    /// restarted peer's new QPN.
    fn identify(&mut self, sender: NodeId, src: IbAddr) -> PeerAddr {
        let Some(peer) = self.peers.get(&sender) else {
            self.stats.from_unknown += 1;
            return PeerAddr::Other(src.handle());
        };
        if peer.addr == src {
            return PeerAddr::Node(sender);
        }
        if self.cfg.learn_peers
            && src.qpn != 0
            && let Ok(ah) = self.verbs.create_ah(&src)
        {
            self.replace_peer(sender, Peer { addr: src, ah });
            self.stats.peers_learned += 1;
            return PeerAddr::Node(sender);
        }
        PeerAddr::Other(src.handle())
    }

    fn replenish(&mut self) {
        if self.broken {
            return;
        }
        for idx in 0..self.recv_slots.len() {
            if self.recv_slots[idx] != RecvSlot::Free {
                continue;
            }
            match self.verbs.post_recv(idx as u32) {
                Ok(()) => self.recv_slots[idx] = RecvSlot::Posted,
                Err(VerbsError::QpError) => {
                    self.mark_broken();
                    return;
                }
                // The provider says it is posted already (our view drifted after a bogus
                // completion): believe it, so the slot is not retried forever.
                Err(VerbsError::BadSlot(_)) => {
                    self.stats.bad_completions += 1;
                    self.recv_slots[idx] = RecvSlot::Posted;
                }
                // Full or failing: try again on the next call.
                Err(_) => return,
            }
        }
    }

    fn mark_broken(&mut self) {
        if !self.broken {
            self.stats.qp_errors += 1;
        }
        self.broken = true;
    }

    /// Posts backlog datagrams while send slots are free.
    fn flush(&mut self) {
        let mtu = self.verbs.mtu();
        let chunk = mtu - FRAG_HEADER_LEN;
        while !self.broken {
            let Some(out) = self.backlog.front() else {
                return;
            };
            let Some(&slot) = self.free_send.last() else {
                return;
            };
            let Some(peer) = self.peers.get(&out.dest) else {
                // The peer was removed after the frame was accepted: nothing to send to.
                self.backlog.pop_front();
                continue;
            };
            let end = (out.offset + chunk).min(out.frame.len());
            let len = FRAG_HEADER_LEN + end - out.offset;
            let buf = self.verbs.send_buf(slot);
            FragHeader {
                sender: self.node.0,
                msg_id: out.msg_id,
                total_len: out.frame.len() as u32,
                offset: out.offset as u32,
            }
            .emit(buf);
            buf[FRAG_HEADER_LEN..len].copy_from_slice(&out.frame[out.offset..end]);
            match self.verbs.post_send(slot, len, &peer.ah, &peer.addr) {
                Ok(()) => {
                    self.free_send.pop();
                    self.stats.fragments_sent += 1;
                    if let Some(out) = self.backlog.pop_front() {
                        self.in_flight.insert(slot, out);
                    }
                }
                Err(VerbsError::QpError) => self.mark_broken(),
                // Full (the provider's queue is smaller than its pool) or refused: later.
                Err(_) => return,
            }
        }
    }
}

impl<V: Verbs> Transport for IbTransport<V> {
    fn max_datagram(&self) -> usize {
        self.cfg.max_frame
    }

    fn send(&mut self, dest: Dest, frame: &[u8]) -> Result<(), TransportError> {
        if frame.len() > self.cfg.max_frame {
            return Err(TransportError::TooLarge {
                len: frame.len(),
                max: self.cfg.max_frame,
            });
        }
        if let Dest::Node(id) = dest
            && id != self.node
            && !self.peers.contains_key(&id)
        {
            return Err(TransportError::UnknownNode(id));
        }
        self.progress()?;
        if !self.backlog.is_empty() || self.broken {
            self.stats.would_block += 1;
            return Err(TransportError::WouldBlock);
        }
        let dests: Vec<NodeId> = match dest {
            Dest::Multicast => self.peers.keys().copied().collect(),
            Dest::Node(id) if id == self.node => {
                // To ourselves: no wire, straight to the ready queue.
                self.ready
                    .push_back((frame.to_vec(), PeerAddr::Node(self.node)));
                self.stats.frames_sent += 1;
                return Ok(());
            }
            Dest::Node(id) => alloc::vec![id],
        };
        self.next_msg = self.next_msg.wrapping_add(1);
        let msg_id = self.next_msg;
        let shared: Rc<[u8]> = Rc::from(frame);
        let chunk = self.verbs.mtu() - FRAG_HEADER_LEN;
        for d in dests {
            let mut offset = 0;
            loop {
                self.backlog.push_back(Out {
                    dest: d,
                    msg_id,
                    offset,
                    frame: Rc::clone(&shared),
                });
                offset += chunk;
                if offset >= shared.len() {
                    break;
                }
            }
        }
        self.stats.frames_sent += 1;
        self.flush();
        Ok(())
    }

    fn recv(&mut self, buf: &mut [u8]) -> Result<Option<RecvMeta>, TransportError> {
        if self.ready.is_empty() {
            self.progress()?;
        }
        let Some((frame, from)) = self.ready.pop_front() else {
            return Ok(None);
        };
        // Room in `ready` again: let held completions in and re-post their slots.
        self.drain_held();
        self.replenish();
        self.stats.frames_received += 1;
        let len = frame.len().min(buf.len());
        buf[..len].copy_from_slice(&frame[..len]);
        Ok(Some(
            RecvMeta::new(len, from).with_truncated(len < frame.len()),
        ))
    }
}
