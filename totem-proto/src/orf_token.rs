//! The ORF token (ordering, reliability, flow control): the one token that circulates the
//! ring in the operational and recovery states (Totem TOCS'95; corosync `struct orf_token`).
//!
//! ```text
//!  0          12         20     28     36      40      44   48  49  50
//!  +----------+----------+------+------+-------+-------+----+---+---+------------------+
//!  | ring id  |token seq | seq  | aru  |aru id |backlog|fcc |rf |n  | n x rtr entry    |
//!  +----------+----------+------+------+-------+-------+----+---+---+------------------+
//!  rtr entry (20 B): ring id (12) | seq (8)
//! ```
//!
//! * `token_seq` counts visits; a holder drops a token whose `token_seq` is not above the
//!   last it saw (duplicate or retransmitted token).
//! * `seq` is the highest message seq assigned on the ring; `aru`/`aru_id` the lower bound
//!   of every member's all-received-up-to and who last set it (`aru_id` 0 = nobody: `aru`
//!   equalled `seq` when it was set — corosync's `aru_addr == 0` encoding).
//! * `backlog` and `fcc` carry flow control; `rf` (retransmit flag, 0 or 1) is used in
//!   recovery only; the rtr list holds at most [`RTR_MAX`] retransmission requests.
//!
//! Body of a frame of type [`crate::MessageType::OrfToken`]; big-endian.

use heapless::Vec;

use crate::error::{DecodeError, Result};
use crate::field::{self, Field};
use crate::{NodeId, RTR_MAX, RingId, Seq};

mod fields {
    use super::Field;
    pub(super) const RING_ID: usize = 0;
    pub(super) const TOKEN_SEQ: Field = 12..20;
    pub(super) const SEQ: Field = 20..28;
    pub(super) const ARU: Field = 28..36;
    pub(super) const ARU_ID: Field = 36..40;
    pub(super) const BACKLOG: Field = 40..44;
    pub(super) const FCC: Field = 44..48;
    pub(super) const RETRANS_FLG: usize = 48;
    pub(super) const RTR_COUNT: usize = 49;
    pub(super) const RTR: usize = 50;
}

/// Bytes of the token before its rtr list.
pub const FIXED_LEN: usize = fields::RTR;

/// Bytes of one rtr entry.
pub const RTR_ENTRY_LEN: usize = 20;

/// Bytes of the largest token (a full rtr list).
pub const MAX_LEN: usize = FIXED_LEN + RTR_MAX * RTR_ENTRY_LEN;

/// One retransmission request: "I miss message `seq` of ring `ring_id`".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct RtrEntry {
    /// Ring the message was sent on (the old ring during recovery).
    pub ring_id: RingId,
    /// The missing message.
    pub seq: Seq,
}

/// A view of an ORF token body.
#[derive(Debug, Clone)]
pub struct OrfToken<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> OrfToken<T> {
    /// Wraps a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps a buffer after [`check_len`](Self::check_len).
    ///
    /// # Errors
    /// As [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Self> {
        let v = Self::new_unchecked(buffer);
        v.check_len()?;
        Ok(v)
    }

    /// Checks that no accessor will panic: the fixed part and the declared rtr list fit.
    ///
    /// # Errors
    /// [`DecodeError::Truncated`], or [`DecodeError::TooManyEntries`] for a list above
    /// [`RTR_MAX`].
    pub fn check_len(&self) -> Result<()> {
        let b = self.buffer.as_ref();
        field::need(b, FIXED_LEN)?;
        let n = usize::from(b[fields::RTR_COUNT]);
        if n > RTR_MAX {
            return Err(DecodeError::TooManyEntries {
                field: "rtr_list",
                max: RTR_MAX,
            });
        }
        field::need(b, FIXED_LEN + n * RTR_ENTRY_LEN)
    }

    /// Full validation beyond lengths: no trailing bytes, a valid retransmit flag and ring
    /// representatives. What [`OrfTokenRepr::parse`] requires.
    ///
    /// # Errors
    /// The first problem found.
    pub fn check(&self) -> Result<()> {
        self.check_len()?;
        let b = self.buffer.as_ref();
        let end = FIXED_LEN + self.rtr_count() * RTR_ENTRY_LEN;
        if b.len() > end {
            return Err(DecodeError::TrailingBytes(b.len() - end));
        }
        field::check_node("ring_id.rep", self.ring_id().rep.0)?;
        let rf = b[fields::RETRANS_FLG];
        if rf > 1 {
            return Err(DecodeError::InvalidValue {
                field: "retrans_flg",
                value: rf.into(),
            });
        }
        for e in self.rtr_list() {
            field::check_node("rtr.ring_id.rep", e.ring_id.rep.0)?;
        }
        Ok(())
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The ring this token belongs to.
    pub fn ring_id(&self) -> RingId {
        field::get_ring_id(self.buffer.as_ref(), fields::RING_ID)
    }

    /// The visit counter.
    pub fn token_seq(&self) -> u64 {
        field::get_u64(self.buffer.as_ref(), fields::TOKEN_SEQ)
    }

    /// Highest message seq assigned on this ring.
    pub fn seq(&self) -> Seq {
        field::get_u64(self.buffer.as_ref(), fields::SEQ)
    }

    /// Lower bound of every member's all-received-up-to.
    pub fn aru(&self) -> Seq {
        field::get_u64(self.buffer.as_ref(), fields::ARU)
    }

    /// Who last set `aru`; `None` when it equalled `seq` at the time.
    pub fn aru_id(&self) -> Option<NodeId> {
        match field::get_u32(self.buffer.as_ref(), fields::ARU_ID) {
            0 => None,
            id => Some(NodeId(id)),
        }
    }

    /// Messages queued but not yet sent, summed over the ring.
    pub fn backlog(&self) -> u32 {
        field::get_u32(self.buffer.as_ref(), fields::BACKLOG)
    }

    /// Messages broadcast during the last full rotation (flow-control count).
    pub fn fcc(&self) -> u32 {
        field::get_u32(self.buffer.as_ref(), fields::FCC)
    }

    /// The raw retransmit flag byte (0 or 1 in a valid token).
    pub fn retrans_flg(&self) -> u8 {
        self.buffer.as_ref()[fields::RETRANS_FLG]
    }

    /// Number of rtr entries.
    pub fn rtr_count(&self) -> usize {
        usize::from(self.buffer.as_ref()[fields::RTR_COUNT])
    }

    /// Entry `i` of the rtr list.
    ///
    /// # Panics
    /// If `i >= rtr_count()`.
    pub fn rtr_entry(&self, i: usize) -> RtrEntry {
        let at = FIXED_LEN + i * RTR_ENTRY_LEN;
        let b = self.buffer.as_ref();
        RtrEntry {
            ring_id: field::get_ring_id(b, at),
            seq: field::get_u64(b, at + RingId::LEN..at + RTR_ENTRY_LEN),
        }
    }

    /// The rtr list.
    pub fn rtr_list(&self) -> impl ExactSizeIterator<Item = RtrEntry> + '_ {
        (0..self.rtr_count()).map(|i| self.rtr_entry(i))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> OrfToken<T> {
    /// Sets the ring id.
    pub fn set_ring_id(&mut self, v: RingId) {
        field::set_ring_id(self.buffer.as_mut(), fields::RING_ID, v);
    }

    /// Sets the visit counter.
    pub fn set_token_seq(&mut self, v: u64) {
        field::set_u64(self.buffer.as_mut(), fields::TOKEN_SEQ, v);
    }

    /// Sets the highest assigned seq.
    pub fn set_seq(&mut self, v: Seq) {
        field::set_u64(self.buffer.as_mut(), fields::SEQ, v);
    }

    /// Sets the aru.
    pub fn set_aru(&mut self, v: Seq) {
        field::set_u64(self.buffer.as_mut(), fields::ARU, v);
    }

    /// Sets who set the aru.
    pub fn set_aru_id(&mut self, v: Option<NodeId>) {
        field::set_u32(self.buffer.as_mut(), fields::ARU_ID, v.map_or(0, |n| n.0));
    }

    /// Sets the backlog.
    pub fn set_backlog(&mut self, v: u32) {
        field::set_u32(self.buffer.as_mut(), fields::BACKLOG, v);
    }

    /// Sets the flow-control count.
    pub fn set_fcc(&mut self, v: u32) {
        field::set_u32(self.buffer.as_mut(), fields::FCC, v);
    }

    /// Sets the retransmit flag.
    pub fn set_retrans_flg(&mut self, v: bool) {
        self.buffer.as_mut()[fields::RETRANS_FLG] = u8::from(v);
    }

    /// Sets the number of rtr entries (the entries themselves with
    /// [`set_rtr_entry`](Self::set_rtr_entry)).
    pub fn set_rtr_count(&mut self, n: u8) {
        self.buffer.as_mut()[fields::RTR_COUNT] = n;
    }

    /// Writes entry `i` of the rtr list.
    ///
    /// # Panics
    /// If the buffer has no room for entry `i`.
    pub fn set_rtr_entry(&mut self, i: usize, e: RtrEntry) {
        let at = FIXED_LEN + i * RTR_ENTRY_LEN;
        let b = self.buffer.as_mut();
        field::set_ring_id(b, at, e.ring_id);
        field::set_u64(b, at + RingId::LEN..at + RTR_ENTRY_LEN, e.seq);
    }
}

/// The meaning of an ORF token.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct OrfTokenRepr {
    /// Ring the token belongs to.
    pub ring_id: RingId,
    /// Visit counter.
    pub token_seq: u64,
    /// Highest assigned message seq.
    pub seq: Seq,
    /// Ring-wide all-received-up-to lower bound.
    pub aru: Seq,
    /// Who set `aru`, `None` if it equalled `seq` then.
    pub aru_id: Option<NodeId>,
    /// Ring-wide backlog.
    pub backlog: u32,
    /// Flow-control count.
    pub fcc: u32,
    /// Recovery: someone still has old-ring messages to re-broadcast.
    pub retrans_flg: bool,
    /// Retransmission requests.
    pub rtr: Vec<RtrEntry, RTR_MAX>,
}

impl OrfTokenRepr {
    /// Parses a fully validated token.
    ///
    /// # Errors
    /// As [`OrfToken::check`].
    pub fn parse<T: AsRef<[u8]> + ?Sized>(v: &OrfToken<&T>) -> Result<Self> {
        v.check()?;
        let mut rtr = Vec::new();
        for e in v.rtr_list() {
            // check_len bounded the list by RTR_MAX, the capacity of `rtr`.
            rtr.push(e).map_err(|_| DecodeError::TooManyEntries {
                field: "rtr_list",
                max: RTR_MAX,
            })?;
        }
        Ok(Self {
            ring_id: v.ring_id(),
            token_seq: v.token_seq(),
            seq: v.seq(),
            aru: v.aru(),
            aru_id: v.aru_id(),
            backlog: v.backlog(),
            fcc: v.fcc(),
            retrans_flg: v.retrans_flg() == 1,
            rtr,
        })
    }

    /// Bytes the body takes.
    pub fn buffer_len(&self) -> usize {
        FIXED_LEN + self.rtr.len() * RTR_ENTRY_LEN
    }

    /// Writes the body.
    ///
    /// # Panics
    /// If the buffer is shorter than [`buffer_len`](Self::buffer_len).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, v: &mut OrfToken<T>) {
        v.set_ring_id(self.ring_id);
        v.set_token_seq(self.token_seq);
        v.set_seq(self.seq);
        v.set_aru(self.aru);
        v.set_aru_id(self.aru_id);
        v.set_backlog(self.backlog);
        v.set_fcc(self.fcc);
        v.set_retrans_flg(self.retrans_flg);
        // The Vec's capacity (RTR_MAX = 30) fits in a u8.
        v.set_rtr_count(self.rtr.len() as u8);
        for (i, e) in self.rtr.iter().enumerate() {
            v.set_rtr_entry(i, *e);
        }
    }
}
