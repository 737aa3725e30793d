//! Byte ranges and big-endian accessors shared by the message views, and the bounded
//! [`Reader`] used for variable-length lists (rustls' `codec::Reader` shape).
//!
//! The accessors index the buffer directly: they are only called behind a view's
//! `check_len` contract, so an out-of-range index here is a bug in this crate (and the
//! fuzz-lite test would find it), never a reaction to input.

use crate::error::{DecodeError, Result};

/// A fixed field: a byte range inside its structure.
pub(crate) type Field = core::ops::Range<usize>;

#[inline]
pub(crate) fn get_u16(b: &[u8], f: Field) -> u16 {
    u16::from_be_bytes(array(&b[f]))
}

#[inline]
pub(crate) fn get_u32(b: &[u8], f: Field) -> u32 {
    u32::from_be_bytes(array(&b[f]))
}

#[inline]
pub(crate) fn get_u64(b: &[u8], f: Field) -> u64 {
    u64::from_be_bytes(array(&b[f]))
}

/// The first `N` bytes of `b` as an array (one bounds check, then a plain load).
///
/// # Panics
/// If `b` is shorter than `N` (a bug: fields are ranges of exactly their size).
#[inline]
#[allow(clippy::panic)] // Reached only through a bug in this crate's field tables.
fn array<const N: usize>(b: &[u8]) -> [u8; N] {
    match b.first_chunk::<N>() {
        Some(a) => *a,
        None => panic!("field shorter than its type"),
    }
}

pub(crate) fn set_u16(b: &mut [u8], f: Field, v: u16) {
    b[f].copy_from_slice(&v.to_be_bytes());
}

pub(crate) fn set_u32(b: &mut [u8], f: Field, v: u32) {
    b[f].copy_from_slice(&v.to_be_bytes());
}

pub(crate) fn set_u64(b: &mut [u8], f: Field, v: u64) {
    b[f].copy_from_slice(&v.to_be_bytes());
}

/// Reads a ring id (rep `u32`, seq `u64`) at `at`.
pub(crate) fn get_ring_id(b: &[u8], at: usize) -> crate::RingId {
    crate::RingId {
        rep: crate::NodeId(get_u32(b, at..at + 4)),
        seq: get_u64(b, at + 4..at + 12),
    }
}

/// Writes a ring id at `at`.
pub(crate) fn set_ring_id(b: &mut [u8], at: usize, id: crate::RingId) {
    set_u32(b, at..at + 4, id.rep.0);
    set_u64(b, at + 4..at + 12, id.seq);
}

/// `Err(Truncated)` unless `buf` holds at least `need` bytes.
pub(crate) fn need(buf: &[u8], need: usize) -> Result<()> {
    if buf.len() < need {
        Err(DecodeError::Truncated {
            need,
            have: buf.len(),
        })
    } else {
        Ok(())
    }
}

/// `Err(InvalidValue)` for node id 0, which is reserved.
pub(crate) fn check_node(field: &'static str, id: u32) -> Result<()> {
    if id == 0 {
        Err(DecodeError::InvalidValue { field, value: 0 })
    } else {
        Ok(())
    }
}

/// A cursor over untrusted bytes that can only fail with a [`DecodeError`], never panic.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// The next `len` bytes, or `Truncated` naming the total needed.
    pub(crate) fn take(&mut self, len: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(len).ok_or(DecodeError::Truncated {
            need: usize::MAX,
            have: self.buf.len(),
        })?;
        let bytes = self.buf.get(self.pos..end).ok_or(DecodeError::Truncated {
            need: end,
            have: self.buf.len(),
        })?;
        self.pos = end;
        Ok(bytes)
    }

    pub(crate) fn take_array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8> {
        Ok(self.take_array::<1>()?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_be_bytes(self.take_array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(self.take_array()?))
    }

    /// Bytes not yet consumed.
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// `Err(TrailingBytes)` unless everything was consumed.
    pub(crate) fn finish(&self) -> Result<()> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(DecodeError::TrailingBytes(n)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_reads_big_endian_and_stops_at_the_end() {
        let mut r = Reader::new(&[0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07]);
        assert_eq!(r.u8(), Ok(0x01));
        assert_eq!(r.u16(), Ok(0x0203));
        assert_eq!(r.u32(), Ok(0x0405_0607));
        assert_eq!(r.remaining(), 0);
        assert_eq!(r.finish(), Ok(()));
        assert_eq!(r.u8(), Err(DecodeError::Truncated { need: 8, have: 7 }));
    }

    #[test]
    fn reader_failed_take_names_the_total_needed_and_consumes_nothing() {
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(r.take(2), Ok(&[1, 2][..]));
        assert_eq!(r.take(2), Err(DecodeError::Truncated { need: 4, have: 3 }));
        assert_eq!(r.take_array::<1>(), Ok([3]));
    }

    #[test]
    fn reader_take_of_a_huge_length_does_not_overflow() {
        let mut r = Reader::new(&[1, 2]);
        let _ = r.u8();
        assert_eq!(
            r.take(usize::MAX),
            Err(DecodeError::Truncated {
                need: usize::MAX,
                have: 2
            })
        );
        assert_eq!(r.remaining(), 1);
    }

    #[test]
    fn reader_finish_counts_trailing_bytes() {
        let mut r = Reader::new(&[0; 5]);
        let _ = r.u16();
        assert_eq!(r.finish(), Err(DecodeError::TrailingBytes(3)));
    }

    #[test]
    fn need_and_check_node() {
        assert_eq!(need(&[0; 3], 3), Ok(()));
        assert_eq!(
            need(&[0; 3], 4),
            Err(DecodeError::Truncated { need: 4, have: 3 })
        );
        assert_eq!(check_node("x", 1), Ok(()));
        assert_eq!(
            check_node("x", 0),
            Err(DecodeError::InvalidValue {
                field: "x",
                value: 0
            })
        );
    }

    #[test]
    fn fixed_fields_are_big_endian() {
        let mut b = [0u8; 14];
        set_u16(&mut b, 0..2, 0x0102);
        set_u32(&mut b, 2..6, 0x0304_0506);
        set_u64(&mut b, 6..14, 0x0708_090a_0b0c_0d0e);
        assert_eq!(b, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]);
        assert_eq!(
            (get_u16(&b, 0..2), get_u32(&b, 2..6)),
            (0x0102, 0x0304_0506)
        );
        assert_eq!(get_u64(&b, 6..14), 0x0708_090a_0b0c_0d0e);
        let id = crate::RingId::new(crate::NodeId(0x0102_0304), 0x0506_0708_090a_0b0c);
        let mut r = [0u8; 13];
        set_ring_id(&mut r, 1, id);
        assert_eq!(r, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        assert_eq!(get_ring_id(&r, 1), id);
    }
}
