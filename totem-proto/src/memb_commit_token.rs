//! The commit token: installs a new ring. The representative creates it once the gather
//! phase reaches consensus; it travels the new ring twice, each member filling in its entry
//! on the first rotation (Totem TOCS'95 commit phase; corosync `struct memb_commit_token`).
//!
//! ```text
//!  0          12         20  21        23      25
//!  +----------+----------+---+---------+-------+------------------------------+
//!  | ring id  |token seq |ver|memb idx |n      | n x member entry             |
//!  +----------+----------+---+---------+-------+------------------------------+
//!  member entry (33 B): node id (4) | old ring id (12) | aru (8) | high delivered (8) | rcvd (1)
//! ```
//!
//! * `ring id` is the **new** ring's id; its representative is the first member.
//! * `ver` is the wire version the new ring runs: the highest version every member's join
//!   declared supporting.
//! * `memb idx` counts the entries filled so far (0..=n).
//! * Members are strictly ascending by node id, which is also the ring order (corosync sorts
//!   the same way). Each entry carries what the member had on its old ring, so recovery
//!   knows which old-ring messages to re-broadcast and up to where.
//! * A 384-member commit token is 12.7 KiB: it relies on the transport carrying frames
//!   beyond one MTU, as joins do.
//!
//! Body of a frame of type [`crate::MessageType::MembCommitToken`]; big-endian.

use heapless::Vec;

use crate::error::{DecodeError, Result};
use crate::field::{self, Field};
use crate::{MAX_NODES, NodeId, RingId, Seq, WIRE_VERSION_MAX, WIRE_VERSION_MIN};

mod fields {
    use super::Field;
    pub(super) const RING_ID: usize = 0;
    pub(super) const TOKEN_SEQ: Field = 12..20;
    pub(super) const WIRE_VERSION: usize = 20;
    pub(super) const MEMB_INDEX: Field = 21..23;
    pub(super) const COUNT: Field = 23..25;
    pub(super) const MEMBERS: usize = 25;

    // Offsets inside one member entry.
    pub(super) const M_NODE: Field = 0..4;
    pub(super) const M_OLD_RING: usize = 4;
    pub(super) const M_ARU: Field = 16..24;
    pub(super) const M_HIGH_DELIVERED: Field = 24..32;
    pub(super) const M_RECEIVED: usize = 32;
}

/// Bytes of a commit token before its member entries.
pub const FIXED_LEN: usize = fields::MEMBERS;

/// Bytes of one member entry.
pub const MEMBER_LEN: usize = 33;

/// One member of the new ring and what it brings from its old ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct CommitMember {
    /// The member.
    pub node: NodeId,
    /// The ring it comes from.
    pub old_ring_id: RingId,
    /// Its all-received-up-to on the old ring.
    pub aru: Seq,
    /// The highest old-ring seq it delivered.
    pub high_delivered: Seq,
    /// Whether it has filled in this entry (first rotation).
    pub received: bool,
}

/// A view of a commit token body.
#[derive(Debug, Clone)]
pub struct MembCommitToken<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> MembCommitToken<T> {
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

    /// Checks that no accessor will panic: the fixed part and the declared member entries
    /// fit, and there are at most [`MAX_NODES`] of them.
    ///
    /// # Errors
    /// [`DecodeError::Truncated`] or [`DecodeError::TooManyEntries`].
    pub fn check_len(&self) -> Result<()> {
        let b = self.buffer.as_ref();
        field::need(b, FIXED_LEN)?;
        if self.count() > MAX_NODES {
            return Err(DecodeError::TooManyEntries {
                field: "members",
                max: MAX_NODES,
            });
        }
        field::need(b, self.end())
    }

    fn end(&self) -> usize {
        FIXED_LEN + self.count() * MEMBER_LEN
    }

    /// Full validation: lengths, no trailing bytes, a supported ring version, at least one
    /// member, ascending non-zero member ids with the first one the representative, a fill
    /// index within the list, and flag bytes of 0 or 1.
    ///
    /// # Errors
    /// The first problem found.
    pub fn check(&self) -> Result<()> {
        self.check_len()?;
        let len = self.buffer.as_ref().len();
        if len > self.end() {
            return Err(DecodeError::TrailingBytes(len - self.end()));
        }
        let version = self.wire_version();
        if !(WIRE_VERSION_MIN..=WIRE_VERSION_MAX).contains(&version) {
            return Err(DecodeError::UnsupportedVersion(version));
        }
        let count = self.count();
        if count == 0 {
            return Err(DecodeError::InvalidValue {
                field: "members.len",
                value: 0,
            });
        }
        if self.memb_index() > count {
            let value = self.memb_index() as u64;
            return Err(DecodeError::InvalidValue {
                field: "memb_index",
                value,
            });
        }
        if self.ring_id().rep != self.member_node(0) {
            let value = self.ring_id().rep.0.into();
            return Err(DecodeError::InvalidValue {
                field: "ring_id.rep",
                value,
            });
        }
        let mut prev = 0u32;
        for i in 0..count {
            let node = self.member_node(i).0;
            if node <= prev {
                return Err(DecodeError::InvalidValue {
                    field: "members.node",
                    value: node.into(),
                });
            }
            prev = node;
            let at = FIXED_LEN + i * MEMBER_LEN;
            let b = self.buffer.as_ref();
            field::check_node("members.old_ring_id.rep", field::get_u32(b, at + 4..at + 8))?;
            let rcvd = b[at + fields::M_RECEIVED];
            if rcvd > 1 {
                return Err(DecodeError::InvalidValue {
                    field: "members.received",
                    value: rcvd.into(),
                });
            }
        }
        Ok(())
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The new ring's id.
    pub fn ring_id(&self) -> RingId {
        field::get_ring_id(self.buffer.as_ref(), fields::RING_ID)
    }

    /// The commit token's visit counter.
    pub fn token_seq(&self) -> u64 {
        field::get_u64(self.buffer.as_ref(), fields::TOKEN_SEQ)
    }

    /// The wire version the new ring runs.
    pub fn wire_version(&self) -> u8 {
        self.buffer.as_ref()[fields::WIRE_VERSION]
    }

    /// Number of entries filled in so far.
    pub fn memb_index(&self) -> usize {
        field::get_u16(self.buffer.as_ref(), fields::MEMB_INDEX).into()
    }

    /// Number of members.
    pub fn count(&self) -> usize {
        field::get_u16(self.buffer.as_ref(), fields::COUNT).into()
    }

    fn member_node(&self, i: usize) -> NodeId {
        let at = FIXED_LEN + i * MEMBER_LEN;
        let f = fields::M_NODE;
        NodeId(field::get_u32(
            self.buffer.as_ref(),
            at + f.start..at + f.end,
        ))
    }

    /// Member entry `i`.
    ///
    /// # Panics
    /// If `i >= count()`.
    pub fn member(&self, i: usize) -> CommitMember {
        let at = FIXED_LEN + i * MEMBER_LEN;
        let b = self.buffer.as_ref();
        let (aru, hd) = (fields::M_ARU, fields::M_HIGH_DELIVERED);
        CommitMember {
            node: self.member_node(i),
            old_ring_id: field::get_ring_id(b, at + fields::M_OLD_RING),
            aru: field::get_u64(b, at + aru.start..at + aru.end),
            high_delivered: field::get_u64(b, at + hd.start..at + hd.end),
            received: b[at + fields::M_RECEIVED] == 1,
        }
    }

    /// The member entries in ring order.
    pub fn members(&self) -> impl ExactSizeIterator<Item = CommitMember> + '_ {
        (0..self.count()).map(|i| self.member(i))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> MembCommitToken<T> {
    /// Sets the new ring's id.
    pub fn set_ring_id(&mut self, v: RingId) {
        field::set_ring_id(self.buffer.as_mut(), fields::RING_ID, v);
    }

    /// Sets the visit counter.
    pub fn set_token_seq(&mut self, v: u64) {
        field::set_u64(self.buffer.as_mut(), fields::TOKEN_SEQ, v);
    }

    /// Sets the ring's wire version.
    pub fn set_wire_version(&mut self, v: u8) {
        self.buffer.as_mut()[fields::WIRE_VERSION] = v;
    }

    /// Sets the fill index.
    pub fn set_memb_index(&mut self, v: u16) {
        field::set_u16(self.buffer.as_mut(), fields::MEMB_INDEX, v);
    }

    /// Sets the number of members.
    pub fn set_count(&mut self, v: u16) {
        field::set_u16(self.buffer.as_mut(), fields::COUNT, v);
    }

    /// Writes member entry `i` (a member filling in its entry changes the token in place).
    ///
    /// # Panics
    /// If the buffer has no room for entry `i`.
    pub fn set_member(&mut self, i: usize, m: &CommitMember) {
        let at = FIXED_LEN + i * MEMBER_LEN;
        let b = self.buffer.as_mut();
        let (node, aru, hd) = (fields::M_NODE, fields::M_ARU, fields::M_HIGH_DELIVERED);
        field::set_u32(b, at + node.start..at + node.end, m.node.0);
        field::set_ring_id(b, at + fields::M_OLD_RING, m.old_ring_id);
        field::set_u64(b, at + aru.start..at + aru.end, m.aru);
        field::set_u64(b, at + hd.start..at + hd.end, m.high_delivered);
        b[at + fields::M_RECEIVED] = u8::from(m.received);
    }
}

/// The meaning of a commit token.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct MembCommitTokenRepr {
    /// The new ring's id.
    pub ring_id: RingId,
    /// Visit counter.
    pub token_seq: u64,
    /// Wire version the new ring runs.
    pub wire_version: u8,
    /// Entries filled in so far.
    pub memb_index: u16,
    /// Members in ring order (ascending ids). Note the size: 384 entries of 48 bytes; a
    /// firmware build short of stack can work on the view instead.
    pub members: Vec<CommitMember, MAX_NODES>,
}

impl MembCommitTokenRepr {
    /// Parses a fully validated commit token.
    ///
    /// # Errors
    /// As [`MembCommitToken::check`].
    pub fn parse<T: AsRef<[u8]> + ?Sized>(v: &MembCommitToken<&T>) -> Result<Self> {
        v.check()?;
        Ok(Self {
            ring_id: v.ring_id(),
            token_seq: v.token_seq(),
            wire_version: v.wire_version(),
            // check() bounded memb_index by the member count, itself at most MAX_NODES.
            memb_index: v.memb_index() as u16,
            // check_len bounded the count by MAX_NODES, the capacity.
            members: v.members().take(MAX_NODES).collect(),
        })
    }

    /// Bytes the body takes.
    pub fn buffer_len(&self) -> usize {
        FIXED_LEN + self.members.len() * MEMBER_LEN
    }

    /// Writes the body.
    ///
    /// # Panics
    /// If the buffer is shorter than [`buffer_len`](Self::buffer_len).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, v: &mut MembCommitToken<T>) {
        v.set_ring_id(self.ring_id);
        v.set_token_seq(self.token_seq);
        v.set_wire_version(self.wire_version);
        v.set_memb_index(self.memb_index);
        // At most MAX_NODES (384) members: fits in a u16.
        v.set_count(self.members.len() as u16);
        for (i, m) in self.members.iter().enumerate() {
            v.set_member(i, m);
        }
    }
}
