//! The codec every service format in this crate is built from: the wire version byte, the
//! one [`DecodeError`], a rustls-style `Reader` that never reads past its buffer, the
//! `enum_with_unknown!` code-point generator, and [`GroupName`] (a CPG group name, also
//! used by the sync messages' logs).
//!
//! Conventions shared by every format here (CPG requests, replies, events, CPG's messages
//! between nodes, the sync protocol's messages):
//!
//! * byte 0 is [`WIRE_VERSION`], byte 1 the message's code point;
//! * integers are big-endian (network order, as totem-proto);
//! * a list is a `u32` count followed by its entries, and a decoder checks that the count
//!   fits in the bytes left *before* it allocates, so a forged count cannot make it
//!   allocate more than the message's own size;
//! * a decoder consumes the whole buffer or fails with [`DecodeError::TrailingBytes`], so
//!   `emit(parse(b)) == b` for every `b` that parses (the fuzz-lite tests check it);
//! * nothing here panics on any input.

use core::fmt;

use totem_proto::{NodeId, RingId};

/// The version byte every message of this crate starts with.
pub const WIRE_VERSION: u8 = 1;

/// Longest CPG group name, in bytes (corosync `CPG_MAX_NAME_LENGTH`).
pub const MAX_NAME_LEN: usize = 128;

/// Why bytes are not a valid message. One precise variant per way they can be wrong, so a
/// log line tells a truncated request from a newer client's.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DecodeError {
    /// The buffer ends before the message does.
    Truncated {
        /// Bytes the message needs (at least).
        need: usize,
        /// Bytes the buffer has.
        have: usize,
    },
    /// A version byte this build does not speak.
    UnsupportedVersion(u8),
    /// A code point this build does not know.
    UnknownCode(u8),
    /// A group name longer than [`MAX_NAME_LEN`].
    NameTooLong {
        /// The length announced.
        len: usize,
    },
    /// A list whose count cannot fit in the bytes left.
    TooManyEntries {
        /// The list.
        field: &'static str,
        /// The count announced.
        count: u32,
    },
    /// A field holds a value that is never valid (node id 0, non-zero reserved bytes, ...).
    InvalidValue {
        /// The field.
        field: &'static str,
        /// The value found, widened to `u64`.
        value: u64,
    },
    /// Bytes left over after the message ended.
    TrailingBytes(usize),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Truncated { need, have } => {
                write!(f, "truncated: need {need} bytes, have {have}")
            }
            Self::UnsupportedVersion(v) => {
                write!(
                    f,
                    "unsupported version {v} (this build speaks {WIRE_VERSION})"
                )
            }
            Self::UnknownCode(c) => write!(f, "unknown code point {c:#04x}"),
            Self::NameTooLong { len } => {
                write!(f, "group name of {len} bytes (max {MAX_NAME_LEN})")
            }
            Self::TooManyEntries { field, count } => {
                write!(f, "{field}: {count} entries cannot fit in the message")
            }
            Self::InvalidValue { field, value } => write!(f, "invalid {field}: {value}"),
            Self::TrailingBytes(n) => write!(f, "{n} trailing bytes after the message"),
        }
    }
}

impl core::error::Error for DecodeError {}

/// Shorthand for decode results.
pub type Result<T> = core::result::Result<T, DecodeError>;

// The code-point generator is totem-proto's, shared by every layer's wire format.
pub(crate) use totem_proto::enum_with_unknown;

/// A CPG group name: 0 to [`MAX_NAME_LEN`] arbitrary bytes (corosync's `struct cpg_name`).
/// Ordered bytewise, which is the order every list of groups is reported in.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct GroupName(heapless::Vec<u8, MAX_NAME_LEN>);

impl GroupName {
    /// A group name.
    ///
    /// # Errors
    /// [`DecodeError::NameTooLong`] above [`MAX_NAME_LEN`] bytes.
    pub fn new(name: &[u8]) -> Result<Self> {
        heapless::Vec::from_slice(name)
            .map(Self)
            .map_err(|_| DecodeError::NameTooLong { len: name.len() })
    }

    /// The name's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Length in bytes (at most [`MAX_NAME_LEN`]).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the name is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Bytes it takes on the wire: a length byte, then the name.
    pub(crate) fn wire_len(&self) -> usize {
        1 + self.len()
    }
}

/// Names order, compare and hash as their bytes, so a map keyed by names is searched with
/// a borrowed `&[u8]` (a name read in place, not copied).
impl core::borrow::Borrow<[u8]> for GroupName {
    fn borrow(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for GroupName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", self)
    }
}

impl fmt::Display for GroupName {
    /// Printable ASCII as is, anything else as `\xNN` (corosync-cpgtool escapes the same way).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in self.as_bytes() {
            if b.is_ascii_graphic() || b == b' ' {
                write!(f, "{}", char::from(b))?;
            } else {
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}

/// Reads fields from a byte slice, front to back, never past its end.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bytes consumed so far: where the next field starts.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The next `len` bytes, or `Truncated` naming the total length needed.
    pub(crate) fn take(&mut self, len: usize) -> Result<&'a [u8]> {
        let end = self.pos.saturating_add(len);
        let bytes = self.buf.get(self.pos..end).ok_or(DecodeError::Truncated {
            need: end,
            have: self.buf.len(),
        })?;
        self.pos = end;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// The version byte, checked.
    pub(crate) fn version(&mut self) -> Result<()> {
        match self.u8()? {
            WIRE_VERSION => Ok(()),
            v => Err(DecodeError::UnsupportedVersion(v)),
        }
    }

    /// A node id, which is never 0 on the wire.
    pub(crate) fn node_id(&mut self, field: &'static str) -> Result<NodeId> {
        match self.u32()? {
            0 => Err(DecodeError::InvalidValue { field, value: 0 }),
            id => Ok(NodeId(id)),
        }
    }

    /// A ring id: representative `u32` (non-zero), then seq `u64` (totem-proto's order).
    pub(crate) fn ring_id(&mut self) -> Result<RingId> {
        let rep = self.node_id("ring_id.rep")?;
        let seq = self.u64()?;
        Ok(RingId::new(rep, seq))
    }

    /// A group name of `len` bytes (the length byte was read by the caller, because some
    /// layouts keep it apart from the name).
    pub(crate) fn name_of(&mut self, len: u8) -> Result<GroupName> {
        GroupName::new(self.name_bytes_of(len)?)
    }

    /// [`Reader::name_of`], borrowed.
    pub(crate) fn name_bytes_of(&mut self, len: u8) -> Result<&'a [u8]> {
        let len = usize::from(len);
        if len > MAX_NAME_LEN {
            return Err(DecodeError::NameTooLong { len });
        }
        self.take(len)
    }

    /// A length-prefixed group name.
    pub(crate) fn name(&mut self) -> Result<GroupName> {
        let len = self.u8()?;
        self.name_of(len)
    }

    /// A list count whose entries take at least `min_entry` bytes each: refused before
    /// anything is allocated if the bytes left cannot hold that many.
    pub(crate) fn count(&mut self, field: &'static str, min_entry: usize) -> Result<usize> {
        let count = self.u32()?;
        let n = usize::try_from(count).map_err(|_| DecodeError::TooManyEntries { field, count })?;
        if n.saturating_mul(min_entry) > self.remaining() {
            return Err(DecodeError::TooManyEntries { field, count });
        }
        Ok(n)
    }

    /// Reserved bytes, which must be zero (so that every message that parses round-trips).
    pub(crate) fn reserved(&mut self, len: usize, field: &'static str) -> Result<()> {
        let bytes = self.take(len)?;
        match bytes.iter().position(|b| *b != 0) {
            None => Ok(()),
            Some(i) => Err(DecodeError::InvalidValue {
                field,
                value: u64::from(bytes[i]),
            }),
        }
    }

    /// The end of the message: nothing may follow.
    pub(crate) fn finish(self) -> Result<()> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(DecodeError::TrailingBytes(n)),
        }
    }
}

/// Writes `name` with its length byte.
pub(crate) fn put_name(out: &mut alloc::vec::Vec<u8>, name: &GroupName) {
    // A GroupName holds at most MAX_NAME_LEN (128) bytes, so its length fits a u8.
    out.push(name.len() as u8);
    out.extend_from_slice(name.as_bytes());
}

/// Writes a ring id: representative, then seq.
pub(crate) fn put_ring_id(out: &mut alloc::vec::Vec<u8>, ring_id: RingId) {
    out.extend_from_slice(&ring_id.rep.0.to_be_bytes());
    out.extend_from_slice(&ring_id.seq.to_be_bytes());
}

/// Writes a list count. Lists are built from in-memory collections, whose length on any
/// target this crate builds for fits in a `u32` long before it fits in memory as entries.
pub(crate) fn put_count(out: &mut alloc::vec::Vec<u8>, n: usize) {
    out.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_be_bytes());
}

/// A tiny deterministic PRNG (SplitMix64) for the fuzz-lite tests.
#[cfg(test)]
pub(crate) struct TestRng(pub(crate) u64);

#[cfg(test)]
impl TestRng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % (n as u64)) as usize
    }

    /// Mutates `buf` a little: flip bytes, truncate, extend, or splice random bytes.
    pub(crate) fn mutate(&mut self, buf: &mut alloc::vec::Vec<u8>) {
        for _ in 0..1 + self.below(4) {
            match self.below(5) {
                0 | 1 if !buf.is_empty() => {
                    let i = self.below(buf.len());
                    buf[i] = self.next() as u8;
                }
                2 if !buf.is_empty() => {
                    let n = self.below(buf.len());
                    buf.truncate(n);
                }
                3 => {
                    for _ in 0..self.below(8) {
                        buf.push(self.next() as u8);
                    }
                }
                _ if buf.len() > 2 => {
                    // Small values in the first bytes hit the known code points often.
                    let i = self.below(buf.len().min(16));
                    buf[i] = self.below(6) as u8;
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_names_are_bounded_and_print_escaped() {
        assert!(GroupName::new(&[b'a'; MAX_NAME_LEN]).is_ok());
        assert_eq!(
            GroupName::new(&[b'a'; MAX_NAME_LEN + 1]),
            Err(DecodeError::NameTooLong { len: 129 })
        );
        let n = GroupName::new(b"ab\x00c").unwrap();
        assert_eq!(alloc::format!("{n}"), "ab\\x00c");
        assert_eq!(alloc::format!("{n:?}"), "\"ab\\x00c\"");
    }

    #[test]
    fn the_reader_never_reads_past_the_end() {
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(r.u16(), Ok(0x0102));
        assert_eq!(r.u32(), Err(DecodeError::Truncated { need: 6, have: 3 }));
        assert_eq!(r.u8(), Ok(3));
        assert_eq!(r.finish(), Ok(()));
        let mut r = Reader::new(&[0, 0, 0, 0, 9]);
        assert_eq!(
            r.node_id("x"),
            Err(DecodeError::InvalidValue {
                field: "x",
                value: 0
            })
        );
        assert_eq!(
            Reader::new(&[0, 0]).finish(),
            Err(DecodeError::TrailingBytes(2))
        );
    }

    #[test]
    fn a_forged_count_is_refused_before_allocation() {
        let mut r = Reader::new(&[0xff, 0xff, 0xff, 0xff, 1, 2, 3]);
        assert_eq!(
            r.count("list", 4),
            Err(DecodeError::TooManyEntries {
                field: "list",
                count: u32::MAX
            })
        );
        let mut r = Reader::new(&[0, 0, 0, 1, 1, 2, 3, 4]);
        assert_eq!(r.count("list", 4), Ok(1));
    }
}
