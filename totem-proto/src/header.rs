//! The common frame header that starts every totem datagram.
//!
//! ```text
//!  0      2   3   4          8          12     14
//!  +------+---+---+----------+----------+------+---------------
//!  |magic |ver|typ|cluster id| sender   |flags | body (per type)
//!  +------+---+---+----------+----------+------+---------------
//! ```
//!
//! * `magic` is `0x544D` ("TM"); corosync's is `0xC070`, so a corosync datagram on the same
//!   group is rejected as [`DecodeError::BadMagic`] at the first two bytes.
//! * `version` is the wire version this frame is encoded in (see [`crate::WIRE_VERSION_MAX`]).
//! * `cluster id` lets two clusters share a network: a ring drops frames of another id
//!   before looking further (corosync derives the same separation from `cluster_name`).
//! * `sender` is the node that transmitted *this* datagram (not necessarily the originator of
//!   the message inside it). Never 0.
//! * `flags`: [`Flags::ENCAPSULATED`] on an old-ring message re-broadcast during recovery;
//!   [`Flags::LEAVE`] on a join that announces a clean departure. Other bits are rejected.
//!
//! All fields big-endian. Panic contract as in the crate docs.

use crate::error::{DecodeError, Result};
use crate::field::{self, Field};
use crate::{MessageType, NodeId, WIRE_VERSION_MAX, WIRE_VERSION_MIN};

/// Totem's magic number, the first two bytes of every frame.
pub const MAGIC: u16 = 0x544D;

mod fields {
    use super::Field;
    pub(super) const MAGIC: Field = 0..2;
    pub(super) const VERSION: usize = 2;
    pub(super) const TYPE: usize = 3;
    pub(super) const CLUSTER: Field = 4..8;
    pub(super) const SENDER: Field = 8..12;
    pub(super) const FLAGS: Field = 12..14;
}

/// Bytes of the frame header.
pub const HEADER_LEN: usize = 14;

/// Header flag bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Flags(pub u16);

impl Flags {
    /// No flag set.
    pub const NONE: Self = Self(0);
    /// The body is an old-ring frame re-broadcast during recovery (corosync's
    /// `encapsulated = MESSAGE_ENCAPSULATED`). Valid on MCAST only.
    pub const ENCAPSULATED: Self = Self(1 << 0);
    /// A join announcing that the sender leaves the ring (corosync sends a join with node id
    /// 0 instead). Valid on MEMB_JOIN only.
    pub const LEAVE: Self = Self(1 << 1);
    /// Every bit this wire version defines.
    pub const KNOWN: Self = Self(Self::ENCAPSULATED.0 | Self::LEAVE.0);

    /// Whether every bit of `other` is set.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// `self` with the bits of `other` added.
    #[must_use]
    pub const fn with(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }
}

/// A view of the frame header over a whole frame (header plus body).
#[derive(Debug, Clone)]
pub struct Header<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Header<T> {
    /// Wraps a buffer without checking its length.
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps a buffer after [`check_len`](Self::check_len).
    ///
    /// # Errors
    /// [`DecodeError::Truncated`] if the buffer is shorter than [`HEADER_LEN`].
    pub fn new_checked(buffer: T) -> Result<Self> {
        let h = Self::new_unchecked(buffer);
        h.check_len()?;
        Ok(h)
    }

    /// Checks that no accessor will panic.
    ///
    /// # Errors
    /// [`DecodeError::Truncated`] if the buffer is shorter than [`HEADER_LEN`].
    pub fn check_len(&self) -> Result<()> {
        field::need(self.buffer.as_ref(), HEADER_LEN)
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The magic number.
    pub fn magic(&self) -> u16 {
        field::get_u16(self.buffer.as_ref(), fields::MAGIC)
    }

    /// The wire version the frame is encoded in.
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[fields::VERSION]
    }

    /// The message type.
    pub fn msg_type(&self) -> MessageType {
        MessageType::from(self.buffer.as_ref()[fields::TYPE])
    }

    /// The cluster id.
    pub fn cluster_id(&self) -> u32 {
        field::get_u32(self.buffer.as_ref(), fields::CLUSTER)
    }

    /// The node that transmitted this datagram.
    pub fn sender(&self) -> NodeId {
        NodeId(field::get_u32(self.buffer.as_ref(), fields::SENDER))
    }

    /// The flags.
    pub fn flags(&self) -> Flags {
        Flags(field::get_u16(self.buffer.as_ref(), fields::FLAGS))
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Header<&'a T> {
    /// The message body after the header, borrowed from the buffer.
    pub fn payload(&self) -> &'a [u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Header<T> {
    /// Sets the magic number.
    pub fn set_magic(&mut self, v: u16) {
        field::set_u16(self.buffer.as_mut(), fields::MAGIC, v);
    }

    /// Sets the wire version.
    pub fn set_version(&mut self, v: u8) {
        self.buffer.as_mut()[fields::VERSION] = v;
    }

    /// Sets the message type.
    pub fn set_msg_type(&mut self, v: MessageType) {
        self.buffer.as_mut()[fields::TYPE] = v.into();
    }

    /// Sets the cluster id.
    pub fn set_cluster_id(&mut self, v: u32) {
        field::set_u32(self.buffer.as_mut(), fields::CLUSTER, v);
    }

    /// Sets the sender.
    pub fn set_sender(&mut self, v: NodeId) {
        field::set_u32(self.buffer.as_mut(), fields::SENDER, v.0);
    }

    /// Sets the flags.
    pub fn set_flags(&mut self, v: Flags) {
        field::set_u16(self.buffer.as_mut(), fields::FLAGS, v.0);
    }

    /// The message body after the header, mutable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[HEADER_LEN..]
    }
}

/// The meaning of a frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct HeaderRepr {
    /// Wire version the frame is encoded in.
    pub version: u8,
    /// Message type. Never `Unknown` after a successful parse.
    pub msg_type: MessageType,
    /// Cluster id.
    pub cluster_id: u32,
    /// Node that transmitted this datagram.
    pub sender: NodeId,
    /// Flags.
    pub flags: Flags,
}

impl HeaderRepr {
    /// Parses and validates a header: magic, supported version, known type and flags,
    /// non-zero sender. Which flags suit which type is checked by [`crate::Frame`].
    ///
    /// # Errors
    /// The first of the problems above that the header has.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(h: &Header<&T>) -> Result<Self> {
        h.check_len()?;
        if h.magic() != MAGIC {
            return Err(DecodeError::BadMagic(h.magic()));
        }
        let version = h.version();
        if !(WIRE_VERSION_MIN..=WIRE_VERSION_MAX).contains(&version) {
            return Err(DecodeError::UnsupportedVersion(version));
        }
        let msg_type = h.msg_type();
        if let MessageType::Unknown(t) = msg_type {
            return Err(DecodeError::UnknownType(t));
        }
        let flags = h.flags();
        if flags.0 & !Flags::KNOWN.0 != 0 {
            return Err(DecodeError::UnknownFlags(flags.0));
        }
        field::check_node("sender", h.sender().0)?;
        Ok(Self {
            version,
            msg_type,
            cluster_id: h.cluster_id(),
            sender: h.sender(),
            flags,
        })
    }

    /// Bytes the header takes.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header (magic included) into the first [`HEADER_LEN`] bytes.
    ///
    /// # Panics
    /// If the buffer is shorter than [`HEADER_LEN`].
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, h: &mut Header<T>) {
        h.set_magic(MAGIC);
        h.set_version(self.version);
        h.set_msg_type(self.msg_type);
        h.set_cluster_id(self.cluster_id);
        h.set_sender(self.sender);
        h.set_flags(self.flags);
    }
}
