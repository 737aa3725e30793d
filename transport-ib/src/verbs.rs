//! The [`Verbs`] trait: the few InfiniBand verbs operations the transport logic needs, and
//! the values that cross it ([`IbAddr`], [`Completion`], [`VerbsError`]).
//!
//! It is shaped after one unreliable-datagram (UD) queue pair with its two completion queues
//! and two pools of registered memory, as libibverbs exposes them: `ibv_post_send` /
//! `ibv_post_recv` name a buffer by a work-request id, `ibv_poll_cq` hands back completions
//! carrying that id. Here the work-request id *is* the slot index in the provider's
//! registered pool, so the transport never holds a pointer into registered memory and the
//! trait needs no `unsafe`. Two providers implement it: [`crate::fake::FakeVerbs`] (in
//! process, with faults) and, behind feature `verbs`, `crate::real::IbVerbs` over `ibverbs`.

use alloc::vec::Vec;
use core::fmt;

/// Where one UD queue pair can be reached: what an address handle is built from, plus the
/// remote queue pair number and Q_Key a UD send names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct IbAddr {
    /// Port GID (RoCE and routed IB need it; the GRH is built from it).
    pub gid: [u8; 16],
    /// Port LID (IB fabrics; 0 on RoCE).
    pub lid: u16,
    /// Queue pair number (24 bits).
    pub qpn: u32,
}

impl IbAddr {
    /// The 64-bit handle reported as `PeerAddr::Other` for an address that maps to no node:
    /// LID in the upper bits, QPN in the lower 24.
    pub const fn handle(&self) -> u64 {
        ((self.lid as u64) << 24) | (self.qpn as u64 & 0x00ff_ffff)
    }
}

impl fmt::Display for IbAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, pair) in self.gid.chunks(2).enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{:02x}{:02x}", pair[0], pair[1])?;
        }
        write!(f, "/lid {}/qpn {:#x}", self.lid, self.qpn)
    }
}

/// Which queue a completion belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Opcode {
    /// A posted send finished (the slot is free again).
    Send,
    /// A posted receive was filled (or flushed).
    Recv,
}

/// `ibv_wc_status`, reduced to what the transport acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WcStatus {
    /// `IBV_WC_SUCCESS`.
    Success,
    /// `IBV_WC_WR_FLUSH_ERR`: the QP went to the error state before this request ran; the
    /// request never executed.
    Flushed,
    /// Any other status (the raw code, for diagnostics). Puts the QP in the error state.
    Error(u32),
}

/// One work completion (`ibv_wc`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Completion {
    /// Send or receive.
    pub opcode: Opcode,
    /// The slot index in the send or receive pool (the work-request id).
    pub slot: u32,
    /// How it went.
    pub status: WcStatus,
    /// Bytes received (payload only: the provider strips the 40-byte GRH). Unused for sends.
    pub byte_len: u32,
    /// Source of a received datagram (`src_qp`, `slid`, and the GRH's source GID).
    pub src: IbAddr,
}

/// What a provider call can fail with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VerbsError {
    /// The work queue is full (`ENOMEM` from `ibv_post_*`).
    QueueFull,
    /// The queue pair is in the error state; [`Verbs::recover`] must run first.
    QpError,
    /// The slot index is out of the pool, or already posted.
    BadSlot(u32),
    /// No RDMA device (`ENOSYS` / `ENODEV` from `ibv_get_device_list`).
    NoDevice,
    /// Any other errno-like failure.
    Io(i32),
}

impl fmt::Display for VerbsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::QueueFull => f.write_str("work queue full"),
            Self::QpError => f.write_str("queue pair in error state"),
            Self::BadSlot(s) => write!(f, "bad buffer slot {s}"),
            Self::NoDevice => f.write_str("no RDMA device found"),
            Self::Io(e) => write!(f, "verbs error {e}"),
        }
    }
}

impl core::error::Error for VerbsError {}

/// The operations of one UD queue pair that the transport logic needs.
///
/// The provider owns two pools of registered memory: `send_slots()` buffers of
/// `mtu()` bytes and `recv_slots()` buffers of `mtu()` bytes (plus the 40-byte GRH it keeps to
/// itself). At most `send_slots()` sends and `recv_slots()` receives are outstanding, which
/// is what sizes the work queues.
pub trait Verbs {
    /// A provider's address handle (`ibv_ah`).
    type Ah;

    /// This queue pair's own address, to hand to peers.
    fn local_addr(&self) -> IbAddr;
    /// Largest UD payload: the path MTU (256..=4096). The GRH does not count against it.
    fn mtu(&self) -> usize;
    /// Number of send buffers (the send queue depth).
    fn send_slots(&self) -> usize;
    /// Number of receive buffers (the receive queue depth).
    fn recv_slots(&self) -> usize;

    /// Builds an address handle for `peer` (`ibv_create_ah`).
    ///
    /// # Errors
    /// A provider failure.
    fn create_ah(&mut self, peer: &IbAddr) -> Result<Self::Ah, VerbsError>;
    /// The registered send buffer of `slot`, `mtu()` bytes, for the caller to fill.
    fn send_buf(&mut self, slot: u32) -> &mut [u8];
    /// Posts the first `len` bytes of send buffer `slot` to `peer` through `ah`.
    ///
    /// # Errors
    /// [`VerbsError::QueueFull`], [`VerbsError::QpError`], [`VerbsError::BadSlot`].
    fn post_send(
        &mut self,
        slot: u32,
        len: usize,
        ah: &Self::Ah,
        peer: &IbAddr,
    ) -> Result<(), VerbsError>;
    /// Posts receive buffer `slot`.
    ///
    /// # Errors
    /// As [`post_send`](Self::post_send).
    fn post_recv(&mut self, slot: u32) -> Result<(), VerbsError>;
    /// The payload of receive buffer `slot` (after the GRH), `mtu()` bytes.
    fn recv_buf(&self, slot: u32) -> &[u8];
    /// Appends the waiting completions of both queues to `out` (`ibv_poll_cq`).
    ///
    /// # Errors
    /// A provider failure.
    fn poll(&mut self, out: &mut Vec<Completion>) -> Result<(), VerbsError>;
    /// Brings a queue pair in the error state back to ready-to-send
    /// (RESET → INIT → RTR → RTS, keeping its QPN). Every outstanding request has been or
    /// will be completed as [`WcStatus::Flushed`] before this returns.
    ///
    /// # Errors
    /// A provider failure; the transport then reports `Io` and tries again on the next call.
    fn recover(&mut self) -> Result<(), VerbsError>;
}
