//! The membership join (and leave): "these are the processors I think belong in the next
//! ring, and these I have given up on" (Totem TOCS'95 membership protocol; corosync
//! `struct memb_join`).
//!
//! ```text
//!  0          8    9    10      12      14
//!  +----------+----+----+-------+-------+------------------+------------------+
//!  | ring seq |vmin|vmax|n proc |n fail | n proc x node id | n fail x node id |
//!  +----------+----+----+-------+-------+------------------+------------------+
//! ```
//!
//! * `ring seq` is the sender's current ring sequence; a new ring's seq exceeds every one
//!   its members announced, so ring ids never repeat.
//! * `vmin..=vmax` is the range of wire versions the sender supports. The representative
//!   picks the highest version common to all members for the new ring and writes it into
//!   the commit token, so a ring of old and new nodes keeps working during a rolling upgrade.
//!   Joins themselves are encoded at the sender's `vmin`, which every peer that could share a
//!   ring with it can decode.
//! * The lists are strictly ascending and free of id 0 (see [`crate::node_list`]), each at
//!   most [`MAX_NODES`] long. A 384-member join is 3 KiB: larger than one Ethernet MTU, so
//!   transports must carry frames beyond the MTU (IP fragmentation for UDP).
//! * A **leave** is a join with the header flag [`crate::header::Flags::LEAVE`]: the proc
//!   list without the sender, the fail list with it.
//!
//! Body of a frame of type [`crate::MessageType::MembJoin`]; big-endian.

use heapless::Vec;

use crate::error::{DecodeError, Result};
use crate::field::{self, Field};
use crate::node_list::{self, NODE_ID_LEN, NodeList};
use crate::{MAX_NODES, NodeId};

mod fields {
    use super::Field;
    pub(super) const RING_SEQ: Field = 0..8;
    pub(super) const VERSION_MIN: usize = 8;
    pub(super) const VERSION_MAX: usize = 9;
    pub(super) const PROC_COUNT: Field = 10..12;
    pub(super) const FAIL_COUNT: Field = 12..14;
    pub(super) const LISTS: usize = 14;
}

/// Bytes of a join before its lists.
pub const FIXED_LEN: usize = fields::LISTS;

/// A view of a join body.
#[derive(Debug, Clone)]
pub struct MembJoin<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> MembJoin<T> {
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

    /// Checks that no accessor will panic: the fixed part and both declared lists fit, and
    /// neither list is longer than [`MAX_NODES`].
    ///
    /// # Errors
    /// [`DecodeError::Truncated`] or [`DecodeError::TooManyEntries`].
    pub fn check_len(&self) -> Result<()> {
        let b = self.buffer.as_ref();
        field::need(b, FIXED_LEN)?;
        if self.proc_count() > MAX_NODES {
            return Err(DecodeError::TooManyEntries {
                field: "proc_list",
                max: MAX_NODES,
            });
        }
        if self.fail_count() > MAX_NODES {
            return Err(DecodeError::TooManyEntries {
                field: "fail_list",
                max: MAX_NODES,
            });
        }
        field::need(b, self.end())
    }

    fn end(&self) -> usize {
        FIXED_LEN + (self.proc_count() + self.fail_count()) * NODE_ID_LEN
    }

    /// Full validation: lengths, no trailing bytes, a sane version range, sorted lists.
    ///
    /// # Errors
    /// The first problem found.
    pub fn check(&self) -> Result<()> {
        self.check_len()?;
        let len = self.buffer.as_ref().len();
        if len > self.end() {
            return Err(DecodeError::TrailingBytes(len - self.end()));
        }
        let (min, max) = (self.version_min(), self.version_max());
        if min == 0 || min > max {
            return Err(DecodeError::BadVersionRange { min, max });
        }
        self.proc_list().check("proc_list")?;
        self.fail_list().check("fail_list")
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The sender's current ring seq.
    pub fn ring_seq(&self) -> u64 {
        field::get_u64(self.buffer.as_ref(), fields::RING_SEQ)
    }

    /// Oldest wire version the sender supports.
    pub fn version_min(&self) -> u8 {
        self.buffer.as_ref()[fields::VERSION_MIN]
    }

    /// Newest wire version the sender supports.
    pub fn version_max(&self) -> u8 {
        self.buffer.as_ref()[fields::VERSION_MAX]
    }

    /// Declared length of the proc list.
    pub fn proc_count(&self) -> usize {
        field::get_u16(self.buffer.as_ref(), fields::PROC_COUNT).into()
    }

    /// Declared length of the fail list.
    pub fn fail_count(&self) -> usize {
        field::get_u16(self.buffer.as_ref(), fields::FAIL_COUNT).into()
    }

    /// The proc list: every processor the sender thinks belongs in the next ring.
    pub fn proc_list(&self) -> NodeList<'_> {
        let end = FIXED_LEN + self.proc_count() * NODE_ID_LEN;
        NodeList::new_unchecked(&self.buffer.as_ref()[FIXED_LEN..end])
    }

    /// The fail list: processors the sender has given up on.
    pub fn fail_list(&self) -> NodeList<'_> {
        let start = FIXED_LEN + self.proc_count() * NODE_ID_LEN;
        NodeList::new_unchecked(&self.buffer.as_ref()[start..self.end()])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> MembJoin<T> {
    /// Sets the ring seq.
    pub fn set_ring_seq(&mut self, v: u64) {
        field::set_u64(self.buffer.as_mut(), fields::RING_SEQ, v);
    }

    /// Sets the supported version range.
    pub fn set_versions(&mut self, min: u8, max: u8) {
        let b = self.buffer.as_mut();
        b[fields::VERSION_MIN] = min;
        b[fields::VERSION_MAX] = max;
    }

    /// Writes both lists and their counts.
    ///
    /// # Panics
    /// If the buffer is too short, or a list is longer than `u16::MAX`.
    pub fn set_lists(&mut self, procs: &[NodeId], fails: &[NodeId]) {
        #[allow(clippy::expect_used)]
        let count = |l: &[NodeId]| u16::try_from(l.len()).expect("list longer than u16::MAX");
        let (np, nf) = (count(procs), count(fails));
        let b = self.buffer.as_mut();
        field::set_u16(b, fields::PROC_COUNT, np);
        field::set_u16(b, fields::FAIL_COUNT, nf);
        let at = node_list::emit_ids(b, FIXED_LEN, procs);
        node_list::emit_ids(b, at, fails);
    }
}

/// The meaning of a join.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct MembJoinRepr {
    /// The sender's current ring seq.
    pub ring_seq: u64,
    /// Oldest wire version the sender supports.
    pub version_min: u8,
    /// Newest wire version the sender supports.
    pub version_max: u8,
    /// Processors the sender thinks belong in the next ring (ascending).
    pub proc_list: Vec<NodeId, MAX_NODES>,
    /// Processors the sender gave up on (ascending).
    pub fail_list: Vec<NodeId, MAX_NODES>,
}

impl MembJoinRepr {
    /// Parses a fully validated join.
    ///
    /// # Errors
    /// As [`MembJoin::check`].
    pub fn parse<T: AsRef<[u8]> + ?Sized>(v: &MembJoin<&T>) -> Result<Self> {
        v.check()?;
        Ok(Self {
            ring_seq: v.ring_seq(),
            version_min: v.version_min(),
            version_max: v.version_max(),
            proc_list: v.proc_list().to_vec(),
            fail_list: v.fail_list().to_vec(),
        })
    }

    /// Bytes the body takes.
    pub fn buffer_len(&self) -> usize {
        FIXED_LEN + (self.proc_list.len() + self.fail_list.len()) * NODE_ID_LEN
    }

    /// Writes the body. Lists must be strictly ascending
    /// ([`crate::node_list::is_wire_sorted`]) for receivers to accept it.
    ///
    /// # Panics
    /// If the buffer is shorter than [`buffer_len`](Self::buffer_len).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, v: &mut MembJoin<T>) {
        v.set_ring_seq(self.ring_seq);
        v.set_versions(self.version_min, self.version_max);
        v.set_lists(&self.proc_list, &self.fail_list);
    }
}
