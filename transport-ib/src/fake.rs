//! [`FakeFabric`] and [`FakeVerbs`]: an in-process, deterministic [`Verbs`] provider for
//! tests and benches, with injectable faults.
//!
//! The fabric is a shared `Rc<RefCell<..>>` (single-threaded, like totem-transport's
//! `LoopbackHub`) holding, per queue pair, its posted receive slots, its outstanding sends,
//! its completion queue and its state; plus the "wire": datagrams in flight ordered by
//! `(arrival time, sequence)`. Memory regions are the [`FakeVerbs`]' own buffers: a send
//! copies its slot onto the wire at post time; a receive is copied into the receiver's slot
//! when it polls the completion.
//!
//! Time is a plain `u64` of microseconds set by the test ([`FakeFabric::advance_to`]);
//! nothing moves on its own. A datagram arriving at a queue pair with no posted receive is
//! held on the wire (an RNR-retry fabric: back-pressure reaches the sender, whose send
//! slot stays busy) or dropped, per [`FakeFaults::rnr_hold`].
//!
//! Faults ([`FakeFaults`] plus one-shot calls): seeded loss in parts per million, latency and
//! jitter, `QueueFull` answers from `post_send`, a queue pair forced into the error state
//! ([`FakeFabric::inject_qp_error`]: everything outstanding is flushed), and arbitrary
//! completions with arbitrary bytes ([`FakeFabric::inject_completion`]) for the fuzz-lite test.

use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::rc::Rc;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::RefCell;

use totem_transport::rng::SplitMix64;

use crate::verbs::{Completion, IbAddr, Opcode, Verbs, VerbsError, WcStatus};

/// Fault and timing knobs of the fake fabric. The default is a perfect, 1 µs fabric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FakeFaults {
    /// Probability, in parts per million, that a datagram is lost on the wire.
    pub loss_ppm: u32,
    /// One-way latency in µs.
    pub latency_us: u64,
    /// Extra random latency, uniform in `0..=jitter_us` (reorders datagrams).
    pub jitter_us: u64,
    /// Hold datagrams for a queue pair without posted receives (true, RNR retry) or drop
    /// them (false, what a real UD queue pair does).
    pub rnr_hold: bool,
}

impl Default for FakeFaults {
    fn default() -> Self {
        Self {
            loss_ppm: 0,
            latency_us: 1,
            jitter_us: 0,
            rnr_hold: true,
        }
    }
}

/// Counters of the fake fabric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FakeStats {
    /// Datagrams put on the wire.
    pub posted: u64,
    /// Datagrams placed in a receive buffer.
    pub delivered: u64,
    /// Datagrams lost by `loss_ppm`.
    pub lost: u64,
    /// Datagrams dropped: no receive posted (with `rnr_hold` off), unknown or broken
    /// destination.
    pub dropped: u64,
    /// Deliveries postponed because the destination had no receive posted.
    pub rnr_waits: u64,
    /// `QueueFull` answers injected.
    pub queue_full: u64,
}

#[derive(Debug)]
struct Packet {
    src: IbAddr,
    src_slot: u32,
    dst: u32,
    data: Vec<u8>,
}

#[derive(Debug, Default)]
struct Qp {
    addr: IbAddr,
    error: bool,
    posted_recv: VecDeque<u32>,
    outstanding: BTreeSet<u32>,
    cq: VecDeque<(Completion, Vec<u8>)>,
    queue_full: u32,
}

#[derive(Debug)]
struct Fabric {
    qps: BTreeMap<u32, Qp>,
    wire: BTreeMap<(u64, u64), Packet>,
    now: u64,
    seq: u64,
    next_qpn: u32,
    rng: SplitMix64,
    faults: FakeFaults,
    stats: FakeStats,
}

/// The shared fake network. Clone it to hand to each [`FakeVerbs`].
#[derive(Debug, Clone)]
pub struct FakeFabric {
    inner: Rc<RefCell<Fabric>>,
}

impl FakeFabric {
    /// An empty fabric; every random choice comes from `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            inner: Rc::new(RefCell::new(Fabric {
                qps: BTreeMap::new(),
                wire: BTreeMap::new(),
                now: 0,
                seq: 0,
                next_qpn: 0x100,
                rng: SplitMix64::new(seed),
                faults: FakeFaults::default(),
                stats: FakeStats::default(),
            })),
        }
    }

    /// Creates a queue pair with `send_slots` and `recv_slots` buffers of `mtu` bytes; its
    /// LID is `lid` and its GID is derived from it.
    pub fn create_qp(
        &self,
        lid: u16,
        mtu: usize,
        send_slots: usize,
        recv_slots: usize,
    ) -> FakeVerbs {
        let mut f = self.inner.borrow_mut();
        let qpn = f.next_qpn;
        f.next_qpn += 1;
        let mut gid = [0u8; 16];
        gid[0] = 0xfe;
        gid[1] = 0x80;
        gid[14..16].copy_from_slice(&lid.to_be_bytes());
        let addr = IbAddr { gid, lid, qpn };
        f.qps.insert(
            qpn,
            Qp {
                addr,
                ..Qp::default()
            },
        );
        FakeVerbs {
            fabric: self.clone(),
            addr,
            mtu,
            send_bufs: vec![vec![0; mtu]; send_slots],
            recv_bufs: vec![vec![0; mtu]; recv_slots],
        }
    }

    /// Removes a queue pair (a crashed node): datagrams to it are dropped from now on.
    pub fn destroy_qp(&self, qpn: u32) {
        self.inner.borrow_mut().qps.remove(&qpn);
    }

    /// Sets the fault and timing knobs.
    pub fn set_faults(&self, faults: FakeFaults) {
        self.inner.borrow_mut().faults = faults;
    }

    /// Counters so far.
    pub fn stats(&self) -> FakeStats {
        self.inner.borrow().stats
    }

    /// The current time, µs.
    pub fn now(&self) -> u64 {
        self.inner.borrow().now
    }

    /// Arrival time of the earliest datagram in flight.
    /// Datagrams waiting for a receive to be posted are skipped: they become due again when
    /// the receiver posts one, which only its own driver can make happen.
    pub fn next_arrival(&self) -> Option<u64> {
        let f = self.inner.borrow();
        f.wire
            .iter()
            .find(|(_, p)| {
                !f.faults.rnr_hold
                    || f.qps
                        .get(&p.dst)
                        .is_none_or(|q| q.error || !q.posted_recv.is_empty())
            })
            .map(|(k, _)| k.0.max(f.now))
    }

    /// Datagrams in flight (held ones included).
    pub fn in_flight(&self) -> usize {
        self.inner.borrow().wire.len()
    }

    /// The next `n` `post_send` calls on `qpn` answer `QueueFull`.
    pub fn inject_queue_full(&self, qpn: u32, n: u32) {
        if let Some(qp) = self.inner.borrow_mut().qps.get_mut(&qpn) {
            qp.queue_full = n;
        }
    }

    /// Puts `qpn` in the error state: its first outstanding send (if any) completes with an
    /// error, every other outstanding send and every posted receive completes as flushed, and
    /// its datagrams still on the wire are withdrawn (they never left the HCA).
    pub fn inject_qp_error(&self, qpn: u32) {
        let mut f = self.inner.borrow_mut();
        let f = &mut *f;
        let Some(qp) = f.qps.get_mut(&qpn) else {
            return;
        };
        qp.error = true;
        let src = qp.addr;
        let mut first = true;
        for slot in core::mem::take(&mut qp.outstanding) {
            let status = if first {
                WcStatus::Error(12) // IBV_WC_RETRY_EXC_ERR-like
            } else {
                WcStatus::Flushed
            };
            first = false;
            qp.cq
                .push_back((completion(Opcode::Send, slot, status, 0), Vec::new()));
        }
        if first {
            // Nothing outstanding: still report the error through one flushed receive (a
            // real CQ always carries the event) — the async event the real provider reads.
            if let Some(slot) = qp.posted_recv.pop_front() {
                qp.cq.push_back((
                    completion(Opcode::Recv, slot, WcStatus::Error(12), 0),
                    Vec::new(),
                ));
            }
        }
        for slot in core::mem::take(&mut qp.posted_recv) {
            qp.cq.push_back((
                completion(Opcode::Recv, slot, WcStatus::Flushed, 0),
                Vec::new(),
            ));
        }
        f.wire.retain(|_, p| p.src != src);
    }

    /// Appends an arbitrary completion (and the bytes a receive would carry) to `qpn`'s
    /// completion queue, bypassing every check: for the fuzz-lite test.
    pub fn inject_completion(&self, qpn: u32, c: Completion, data: Vec<u8>) {
        if let Some(qp) = self.inner.borrow_mut().qps.get_mut(&qpn) {
            qp.cq.push_back((c, data));
        }
    }

    /// Puts arbitrary bytes on the wire from `src` to `dst`, as if a rogue sender posted them.
    pub fn inject_datagram(&self, src: IbAddr, dst: u32, data: Vec<u8>) {
        let mut f = self.inner.borrow_mut();
        let (now, seq) = (f.now, f.seq);
        f.seq += 1;
        f.wire.insert(
            (now, seq),
            Packet {
                src,
                src_slot: u32::MAX,
                dst,
                data,
            },
        );
    }

    /// Moves time to `now` (never backwards) and delivers every datagram due by then, in
    /// (arrival, sequence) order.
    pub fn advance_to(&self, now: u64) {
        let mut f = self.inner.borrow_mut();
        let f = &mut *f;
        f.now = f.now.max(now);
        let due: Vec<(u64, u64)> = f.wire.range(..(f.now + 1, 0)).map(|(k, _)| *k).collect();
        // Per destination, once one datagram waits for a receive, later ones wait behind it.
        let mut blocked = BTreeSet::new();
        for key in due {
            let Some(p) = f.wire.get(&key) else { continue };
            let dst = p.dst;
            if blocked.contains(&dst) {
                continue;
            }
            let has_recv = f
                .qps
                .get(&dst)
                .is_some_and(|q| !q.error && !q.posted_recv.is_empty());
            let alive = f.qps.get(&dst).is_some_and(|q| !q.error);
            if alive && !has_recv && f.faults.rnr_hold {
                f.stats.rnr_waits += 1;
                blocked.insert(dst);
                // Retry when the receiver posts again: keep it due now.
                continue;
            }
            let Some(p) = f.wire.remove(&key) else {
                continue;
            };
            // The sender's send completes once the datagram has left (UD: success even if the
            // receiver drops it).
            if let Some(sq) = f.qps.values_mut().find(|q| q.addr == p.src)
                && sq.outstanding.remove(&p.src_slot)
            {
                sq.cq.push_back((
                    completion(Opcode::Send, p.src_slot, WcStatus::Success, 0),
                    Vec::new(),
                ));
            }
            if f.rng.chance_ppm(f.faults.loss_ppm) {
                f.stats.lost += 1;
                continue;
            }
            let Some(rq) = f.qps.get_mut(&dst).filter(|q| !q.error) else {
                f.stats.dropped += 1;
                continue;
            };
            let Some(slot) = rq.posted_recv.pop_front() else {
                f.stats.dropped += 1;
                continue;
            };
            let mut c = completion(Opcode::Recv, slot, WcStatus::Success, p.data.len() as u32);
            c.src = p.src;
            rq.cq.push_back((c, p.data));
            f.stats.delivered += 1;
        }
    }
}

fn completion(opcode: Opcode, slot: u32, status: WcStatus, byte_len: u32) -> Completion {
    Completion {
        opcode,
        slot,
        status,
        byte_len,
        src: IbAddr::default(),
    }
}

/// One fake UD queue pair with its registered buffers. Made by [`FakeFabric::create_qp`].
#[derive(Debug)]
pub struct FakeVerbs {
    fabric: FakeFabric,
    addr: IbAddr,
    mtu: usize,
    send_bufs: Vec<Vec<u8>>,
    recv_bufs: Vec<Vec<u8>>,
}

/// The fake's address handle: the address it was made from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FakeAh(pub IbAddr);

impl Verbs for FakeVerbs {
    type Ah = FakeAh;

    fn local_addr(&self) -> IbAddr {
        self.addr
    }

    fn mtu(&self) -> usize {
        self.mtu
    }

    fn send_slots(&self) -> usize {
        self.send_bufs.len()
    }

    fn recv_slots(&self) -> usize {
        self.recv_bufs.len()
    }

    fn create_ah(&mut self, peer: &IbAddr) -> Result<FakeAh, VerbsError> {
        Ok(FakeAh(*peer))
    }

    fn send_buf(&mut self, slot: u32) -> &mut [u8] {
        &mut self.send_bufs[slot as usize]
    }

    fn post_send(
        &mut self,
        slot: u32,
        len: usize,
        ah: &FakeAh,
        peer: &IbAddr,
    ) -> Result<(), VerbsError> {
        let data = self
            .send_bufs
            .get(slot as usize)
            .and_then(|b| b.get(..len))
            .ok_or(VerbsError::BadSlot(slot))?
            .to_vec();
        let mut f = self.fabric.inner.borrow_mut();
        let f = &mut *f;
        let qp = f.qps.get_mut(&self.addr.qpn).ok_or(VerbsError::QpError)?;
        if qp.error {
            return Err(VerbsError::QpError);
        }
        if qp.queue_full > 0 {
            qp.queue_full -= 1;
            f.stats.queue_full += 1;
            return Err(VerbsError::QueueFull);
        }
        if !qp.outstanding.insert(slot) {
            return Err(VerbsError::BadSlot(slot));
        }
        debug_assert_eq!(ah.0, *peer);
        let jitter = match f.faults.jitter_us {
            0 => 0,
            j => f.rng.below(j + 1),
        };
        let at = f.now + f.faults.latency_us + jitter;
        let seq = f.seq;
        f.seq += 1;
        f.stats.posted += 1;
        f.wire.insert(
            (at, seq),
            Packet {
                src: self.addr,
                src_slot: slot,
                dst: peer.qpn,
                data,
            },
        );
        Ok(())
    }

    fn post_recv(&mut self, slot: u32) -> Result<(), VerbsError> {
        if slot as usize >= self.recv_bufs.len() {
            return Err(VerbsError::BadSlot(slot));
        }
        let mut f = self.fabric.inner.borrow_mut();
        let qp = f.qps.get_mut(&self.addr.qpn).ok_or(VerbsError::QpError)?;
        if qp.error {
            return Err(VerbsError::QpError);
        }
        if qp.posted_recv.contains(&slot) {
            return Err(VerbsError::BadSlot(slot));
        }
        qp.posted_recv.push_back(slot);
        Ok(())
    }

    fn recv_buf(&self, slot: u32) -> &[u8] {
        self.recv_bufs
            .get(slot as usize)
            .map_or(&[], |b| b.as_slice())
    }

    fn poll(&mut self, out: &mut Vec<Completion>) -> Result<(), VerbsError> {
        let mut f = self.fabric.inner.borrow_mut();
        let Some(qp) = f.qps.get_mut(&self.addr.qpn) else {
            return Err(VerbsError::QpError);
        };
        for (mut c, data) in qp.cq.drain(..) {
            if c.opcode == Opcode::Recv
                && let Some(buf) = self.recv_bufs.get_mut(c.slot as usize)
            {
                // DMA into the registered buffer, cut at its size as the HCA would refuse
                // (here: truncate) a datagram longer than the posted buffer.
                let n = data.len().min(buf.len());
                buf[..n].copy_from_slice(&data[..n]);
                c.byte_len = c.byte_len.min(buf.len() as u32);
            }
            out.push(c);
        }
        Ok(())
    }

    fn recover(&mut self) -> Result<(), VerbsError> {
        let mut f = self.fabric.inner.borrow_mut();
        let qp = f.qps.get_mut(&self.addr.qpn).ok_or(VerbsError::QpError)?;
        qp.error = false;
        qp.outstanding.clear();
        qp.posted_recv.clear();
        Ok(())
    }
}
