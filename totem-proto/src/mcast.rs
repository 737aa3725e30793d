//! The regular message (MCAST): application data placed in the ring's total order.
//!
//! ```text
//!  0          12     20          24          28  29
//!  +----------+------+-----------+-----------+---+---------------------+
//!  | ring id  | seq  | originator|payload len|gua| payload             |
//!  +----------+------+-----------+-----------+---+---------------------+
//! ```
//!
//! * `seq` is the message's position in the ring's total order, taken from the token.
//! * `originator` is the node whose message this is. The header's `sender` is who
//!   transmitted the datagram: the same node, except for a retransmission, which any member
//!   holding the message may send (Totem TOCS'95: any processor answers an rtr request).
//! * `gua` is the [`Guarantee`] asked for (agreed or safe).
//! * With the header flag [`crate::header::Flags::ENCAPSULATED`] the payload is a complete
//!   old-ring frame (header and MCAST) re-broadcast during recovery: the new ring orders it,
//!   the receivers deliver the inner message (corosync `memb_state_recovery_enter`).
//!
//! Body of a frame of type [`crate::MessageType::Mcast`]; big-endian.

use crate::error::{DecodeError, Result};
use crate::field::{self, Field};
use crate::{Guarantee, NodeId, RingId, Seq};

mod fields {
    use super::Field;
    pub(super) const RING_ID: usize = 0;
    pub(super) const SEQ: Field = 12..20;
    pub(super) const ORIGINATOR: Field = 20..24;
    pub(super) const PAYLOAD_LEN: Field = 24..28;
    pub(super) const GUARANTEE: usize = 28;
    pub(super) const PAYLOAD: usize = 29;
}

/// Bytes of the MCAST body before its payload.
pub const MCAST_HEADER_LEN: usize = fields::PAYLOAD;

/// A view of an MCAST body.
#[derive(Debug, Clone)]
pub struct Mcast<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Mcast<T> {
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

    /// Checks that no accessor will panic: the fixed part and the declared payload fit.
    ///
    /// # Errors
    /// [`DecodeError::Truncated`].
    pub fn check_len(&self) -> Result<()> {
        let b = self.buffer.as_ref();
        field::need(b, MCAST_HEADER_LEN)?;
        let len = usize::try_from(self.payload_len()).unwrap_or(usize::MAX);
        field::need(b, MCAST_HEADER_LEN.saturating_add(len))
    }

    /// Full validation: lengths, no trailing bytes, known guarantee, valid node ids.
    ///
    /// # Errors
    /// The first problem found.
    pub fn check(&self) -> Result<()> {
        self.check_len()?;
        let b = self.buffer.as_ref();
        let end = MCAST_HEADER_LEN + self.payload_len() as usize;
        if b.len() > end {
            return Err(DecodeError::TrailingBytes(b.len() - end));
        }
        field::check_node("ring_id.rep", self.ring_id().rep.0)?;
        field::check_node("originator", self.originator().0)?;
        if let Guarantee::Unknown(g) = self.guarantee() {
            return Err(DecodeError::InvalidValue {
                field: "guarantee",
                value: g.into(),
            });
        }
        Ok(())
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The ring the message was ordered on.
    pub fn ring_id(&self) -> RingId {
        field::get_ring_id(self.buffer.as_ref(), fields::RING_ID)
    }

    /// The message's position in the total order.
    pub fn seq(&self) -> Seq {
        field::get_u64(self.buffer.as_ref(), fields::SEQ)
    }

    /// The node whose message this is.
    pub fn originator(&self) -> NodeId {
        NodeId(field::get_u32(self.buffer.as_ref(), fields::ORIGINATOR))
    }

    /// Declared payload length.
    pub fn payload_len(&self) -> u32 {
        field::get_u32(self.buffer.as_ref(), fields::PAYLOAD_LEN)
    }

    /// The delivery guarantee asked for.
    pub fn guarantee(&self) -> Guarantee {
        Guarantee::from(self.buffer.as_ref()[fields::GUARANTEE])
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Mcast<&'a T> {
    /// The payload, borrowed from the buffer.
    pub fn payload(&self) -> &'a [u8] {
        let b = self.buffer.as_ref();
        &b[MCAST_HEADER_LEN..MCAST_HEADER_LEN + self.payload_len() as usize]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Mcast<T> {
    /// Sets the ring id.
    pub fn set_ring_id(&mut self, v: RingId) {
        field::set_ring_id(self.buffer.as_mut(), fields::RING_ID, v);
    }

    /// Sets the seq.
    pub fn set_seq(&mut self, v: Seq) {
        field::set_u64(self.buffer.as_mut(), fields::SEQ, v);
    }

    /// Sets the originator.
    pub fn set_originator(&mut self, v: NodeId) {
        field::set_u32(self.buffer.as_mut(), fields::ORIGINATOR, v.0);
    }

    /// Sets the declared payload length.
    pub fn set_payload_len(&mut self, v: u32) {
        field::set_u32(self.buffer.as_mut(), fields::PAYLOAD_LEN, v);
    }

    /// Sets the guarantee.
    pub fn set_guarantee(&mut self, v: Guarantee) {
        self.buffer.as_mut()[fields::GUARANTEE] = v.into();
    }

    /// The payload area after the fixed part, to write into.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[MCAST_HEADER_LEN..]
    }
}

/// The meaning of an MCAST body, borrowing its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct McastRepr<'a> {
    /// Ring the message was ordered on.
    pub ring_id: RingId,
    /// Position in the total order.
    pub seq: Seq,
    /// Node whose message this is.
    pub originator: NodeId,
    /// Delivery guarantee.
    pub guarantee: Guarantee,
    /// Application payload (a packed frame, see [`crate::pack`]; or an old-ring frame when
    /// encapsulated).
    pub payload: &'a [u8],
}

impl<'a> McastRepr<'a> {
    /// Parses a fully validated MCAST body.
    ///
    /// # Errors
    /// As [`Mcast::check`].
    pub fn parse<T: AsRef<[u8]> + ?Sized>(v: &Mcast<&'a T>) -> Result<Self> {
        v.check()?;
        Ok(Self {
            ring_id: v.ring_id(),
            seq: v.seq(),
            originator: v.originator(),
            guarantee: v.guarantee(),
            payload: v.payload(),
        })
    }

    /// Bytes the body takes, payload included.
    pub fn buffer_len(&self) -> usize {
        MCAST_HEADER_LEN + self.payload.len()
    }

    /// Writes the body, copying the payload.
    ///
    /// # Panics
    /// If the buffer is shorter than [`buffer_len`](Self::buffer_len), or the payload is
    /// 4 GiB or more (never: frames are bounded by the MTU).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, v: &mut Mcast<T>) {
        v.set_ring_id(self.ring_id);
        v.set_seq(self.seq);
        v.set_originator(self.originator);
        v.set_guarantee(self.guarantee);
        let len = self.payload.len();
        #[allow(clippy::expect_used)]
        v.set_payload_len(u32::try_from(len).expect("payloads are bounded by the frame size"));
        v.payload_mut()[..len].copy_from_slice(self.payload);
    }
}
