//! The packing and fragmentation format above the ring: what an MCAST payload holds.
//!
//! Many small application messages share one frame (one token visit can carry hundreds of
//! 64-byte messages in a few frames), and one large message (1 MiB and more) is split over
//! a chain of frames and joined again on delivery. The ring orders frames; this format says
//! what is inside them (corosync's totempg layer, redrawn).
//!
//! ```text
//!  0      2
//!  +------+----------+----------+-----
//!  |count | record 0 | record 1 | ...           (exactly `count` records, nothing after)
//!  +------+----------+----------+-----
//!  record: service (2) | kind (1) | len (2) | [total (4), kind = First only] | data (len)
//! ```
//!
//! * `service` names the service engine the message is for ([`ServiceId`]).
//! * `kind` is [`RecordKind`]: `Whole` (a complete message), or a fragment: `First` (which
//!   also carries the message's total length, so the receiver can check and reserve it once),
//!   `Middle`, `Last`.
//! * A `First` or `Middle` record holds at least one byte, and a `First` record's total is
//!   more than would have fitted whole in the record's place (its `len` + 4, up to
//!   [`MAX_RECORD_DATA`]): the writer fragments only what does not fit, so every valid frame
//!   has one encoding and re-packing its records reproduces it.
//! * A fragment chain belongs to one sender and its frames follow each other in that sender's
//!   order, so only two positions can hold fragments: a frame may *end* with a `First` or
//!   `Middle` record and *begin* with a `Middle` or `Last` record. Anything else is rejected
//!   as [`DecodeError::MisplacedFragment`]. Reassembly (one buffer per sender, discarded when
//!   the sender leaves the configuration) lives in totem-ring.
//!
//! [`PackWriter`] fills a frame; [`Pack`] reads one. Neither allocates.

use crate::ServiceId;
use crate::error::{DecodeError, EmitError, Result};
use crate::field::{self, Reader};
use crate::header::HEADER_LEN;
use crate::mcast::MCAST_HEADER_LEN;
use crate::types::enum_with_unknown;

/// Bytes of the record count at the start of a packed frame.
pub const PACK_HEADER_LEN: usize = 2;
/// Bytes of a record header (service, kind, len).
pub const RECORD_HEADER_LEN: usize = 5;
/// Bytes of a `First` record header (with the total length).
pub const FIRST_RECORD_HEADER_LEN: usize = RECORD_HEADER_LEN + 4;
/// Most data one record can hold (the `len` field is 16 bits).
pub const MAX_RECORD_DATA: usize = u16::MAX as usize;

/// Room for the packed payload in a frame of `frame_len` bytes (the largest datagram the
/// transport sends without fragmenting, after its own overhead such as encryption).
///
/// Room is left for the frame to be *encapsulated* once more during recovery — an old-ring
/// frame re-broadcast inside a new MCAST must still fit (corosync reduces its MTU by two
/// MCAST headers for the same reason, commit ee8b8993). `None` if the frame is too small to
/// carry even one byte of data.
pub const fn pack_capacity(frame_len: usize) -> Option<usize> {
    let overhead = 2 * (HEADER_LEN + MCAST_HEADER_LEN) + PACK_HEADER_LEN + FIRST_RECORD_HEADER_LEN;
    if frame_len <= overhead {
        None
    } else {
        Some(frame_len - 2 * (HEADER_LEN + MCAST_HEADER_LEN))
    }
}

enum_with_unknown! {
    /// What a record holds.
    pub enum RecordKind(u8) {
        /// A complete message.
        Whole = 0,
        /// The first piece of a fragmented message (carries the total length).
        First = 1,
        /// A piece in the middle.
        Middle = 2,
        /// The final piece.
        Last = 3,
    }
}

/// One record of a packed frame, borrowing its data from the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Record<'a> {
    /// The service the message is for.
    pub service: ServiceId,
    /// Whole message or which fragment.
    pub kind: RecordKind,
    /// For `First`: the whole message's length.
    pub total_len: Option<u32>,
    /// The bytes.
    pub data: &'a [u8],
}

impl Record<'_> {
    /// Bytes the record takes in a frame.
    pub fn wire_len(&self) -> usize {
        let header = if self.kind == RecordKind::First {
            FIRST_RECORD_HEADER_LEN
        } else {
            RECORD_HEADER_LEN
        };
        header + self.data.len()
    }
}

/// Reads one record header and data; no position rules.
fn read_record<'a>(r: &mut Reader<'a>) -> Result<Record<'a>> {
    let service = ServiceId(r.u16()?);
    let kind = RecordKind::from(r.u8()?);
    let len = usize::from(r.u16()?);
    // A First or Middle fragment carries data: an empty one moves its chain nowhere, and
    // PackWriter never writes one (only canonical frames parse, so parse/emit round-trip).
    if matches!(kind, RecordKind::First | RecordKind::Middle) && len == 0 {
        return Err(DecodeError::InvalidValue {
            field: "record.len",
            value: 0,
        });
    }
    let total_len = match kind {
        RecordKind::First => {
            let total = r.u32()?;
            // A First record must really start a longer message, and one that could not
            // have gone whole in the place the record takes (a Whole record is 4 header bytes
            // shorter): PackWriter fragments only what does not fit whole.
            let t = total as usize;
            let fits_whole =
                t <= len + (FIRST_RECORD_HEADER_LEN - RECORD_HEADER_LEN) && t <= MAX_RECORD_DATA;
            if t <= len || fits_whole {
                return Err(DecodeError::InvalidValue {
                    field: "record.total_len",
                    value: total.into(),
                });
            }
            Some(total)
        }
        RecordKind::Unknown(k) => {
            return Err(DecodeError::InvalidValue {
                field: "record.kind",
                value: k.into(),
            });
        }
        _ => None,
    };
    Ok(Record {
        service,
        kind,
        total_len,
        data: r.take(len)?,
    })
}

/// A validated packed frame.
#[derive(Debug, Clone, Copy)]
pub struct Pack<'a> {
    bytes: &'a [u8],
}

impl<'a> Pack<'a> {
    /// Validates a packed frame: the count, every record, fragment positions, and that
    /// nothing follows the last record.
    ///
    /// # Errors
    /// The first problem found; never panics.
    pub fn new_checked(bytes: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(bytes);
        let count = r.u16()?;
        if count == 0 {
            return Err(DecodeError::InvalidValue {
                field: "pack.count",
                value: 0,
            });
        }
        for index in 0..count {
            let rec = read_record(&mut r)?;
            let first = index == 0;
            let last = index + 1 == count;
            let ok = match rec.kind {
                RecordKind::Whole => true,
                RecordKind::First => last,
                RecordKind::Middle => first && last,
                RecordKind::Last => first,
                RecordKind::Unknown(_) => false,
            };
            if !ok {
                return Err(DecodeError::MisplacedFragment { index });
            }
        }
        r.finish()?;
        Ok(Self { bytes })
    }

    /// Number of records.
    pub fn count(&self) -> usize {
        field::get_u16(self.bytes, 0..2).into()
    }

    /// The records in order.
    pub fn records(&self) -> Records<'a> {
        Records {
            reader: Reader::new(self.bytes.get(PACK_HEADER_LEN..).unwrap_or(&[])),
        }
    }

    /// The frame's bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }
}

/// Iterator over the records of a validated [`Pack`].
#[derive(Debug)]
pub struct Records<'a> {
    reader: Reader<'a>,
}

impl<'a> Iterator for Records<'a> {
    type Item = Record<'a>;

    fn next(&mut self) -> Option<Record<'a>> {
        if self.reader.remaining() == 0 {
            return None;
        }
        // Pack::new_checked validated every record, so this cannot fail; on a bug it ends
        // the iteration rather than panicking.
        read_record(&mut self.reader).ok()
    }
}

/// How far [`PackWriter::push_part`] got with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Progress {
    /// The rest of the message is in the frame.
    Complete,
    /// Part of it is in the frame; the frame is closed and the rest goes in the next one.
    Partial,
    /// Nothing could be written (no room, or the frame is closed): start a new frame.
    NoRoom,
}

/// Fills one packed frame with whole messages and fragments. Never allocates.
#[derive(Debug)]
pub struct PackWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
    count: u16,
    /// Set once a First or Middle record ends the frame.
    closed: bool,
}

impl<'a> PackWriter<'a> {
    /// A writer over `buf` (normally `pack_capacity(frame_len)` bytes).
    ///
    /// # Errors
    /// [`EmitError::BufferTooSmall`] if `buf` cannot hold one record of one byte.
    pub fn new(buf: &'a mut [u8]) -> core::result::Result<Self, EmitError> {
        let need = PACK_HEADER_LEN + FIRST_RECORD_HEADER_LEN + 1;
        if buf.len() < need {
            return Err(EmitError::BufferTooSmall {
                need,
                have: buf.len(),
            });
        }
        Ok(Self {
            buf,
            len: PACK_HEADER_LEN,
            count: 0,
            closed: false,
        })
    }

    /// Whether no record was written yet.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Records written so far.
    pub fn count(&self) -> usize {
        self.count.into()
    }

    /// Whether a whole message of `len` bytes would fit.
    pub fn fits(&self, len: usize) -> bool {
        !self.closed
            && self.count < u16::MAX
            && len <= MAX_RECORD_DATA
            && self.len + RECORD_HEADER_LEN + len <= self.buf.len()
    }

    fn put_record(
        &mut self,
        service: ServiceId,
        kind: RecordKind,
        total: Option<u32>,
        data: &[u8],
    ) {
        // Callers checked that the record fits and that data.len() <= MAX_RECORD_DATA.
        let b = &mut *self.buf;
        let mut at = self.len;
        field::set_u16(b, at..at + 2, service.0);
        b[at + 2] = kind.into();
        field::set_u16(b, at + 3..at + 5, data.len() as u16);
        at += RECORD_HEADER_LEN;
        if let Some(total) = total {
            field::set_u32(b, at..at + 4, total);
            at += 4;
        }
        b[at..at + data.len()].copy_from_slice(data);
        self.len = at + data.len();
        self.count += 1;
    }

    /// Appends a whole message if it fits; `false` (nothing written) otherwise.
    pub fn push(&mut self, service: ServiceId, msg: &[u8]) -> bool {
        if !self.fits(msg.len()) {
            return false;
        }
        self.put_record(service, RecordKind::Whole, None, msg);
        true
    }

    /// Appends as much of `msg[*offset..]` as fits, as a whole record or the right kind of
    /// fragment, and advances `offset`. Start with `*offset == 0`; call again on fresh frames
    /// while it returns [`Progress::Partial`].
    ///
    /// A continuation (`*offset > 0`) can only start a frame; a new message that does not fit
    /// whole starts a chain only when at least `min_first` data bytes fit, so a nearly full
    /// frame is closed rather than ending in a sliver (the caller's choice of trade-off); an
    /// empty frame takes the chain's start whatever `min_first` is.
    /// Messages above 4 GiB cannot be described (`total` is 32 bits) and return `NoRoom`.
    pub fn push_part(
        &mut self,
        service: ServiceId,
        msg: &[u8],
        offset: &mut usize,
        min_first: usize,
    ) -> Progress {
        let Ok(total) = u32::try_from(msg.len()) else {
            return Progress::NoRoom;
        };
        let Some(rest) = msg.get(*offset..) else {
            return Progress::NoRoom;
        };
        if self.closed || self.count == u16::MAX {
            return Progress::NoRoom;
        }
        if *offset == 0 {
            if self.push(service, msg) {
                *offset = msg.len();
                return Progress::Complete;
            }
            let room = self
                .buf
                .len()
                .saturating_sub(self.len + FIRST_RECORD_HEADER_LEN);
            let take = room.min(MAX_RECORD_DATA).min(msg.len());
            // A First record must leave something for later records (total > len).
            // `min_first` spares a nearly full frame a sliver; an empty frame has nothing to
            // spare, and refusing there would leave the caller nowhere to go (a new frame
            // would refuse the same way, forever).
            let min = if self.is_empty() { 1 } else { min_first.max(1) };
            if take < min || take >= msg.len() {
                return Progress::NoRoom;
            }
            self.put_record(service, RecordKind::First, Some(total), &msg[..take]);
            self.closed = true;
            *offset = take;
            return Progress::Partial;
        }
        if !self.is_empty() {
            return Progress::NoRoom;
        }
        let room = self.buf.len().saturating_sub(self.len + RECORD_HEADER_LEN);
        let take = room.min(MAX_RECORD_DATA).min(rest.len());
        if take == rest.len() {
            self.put_record(service, RecordKind::Last, None, rest);
            *offset = msg.len();
            Progress::Complete
        } else if take == 0 {
            Progress::NoRoom
        } else {
            self.put_record(service, RecordKind::Middle, None, &rest[..take]);
            self.closed = true;
            *offset += take;
            Progress::Partial
        }
    }

    /// Writes the record count and returns the frame's length (0 if nothing was written:
    /// an empty frame is not valid and must not be sent).
    pub fn finish(self) -> usize {
        if self.count == 0 {
            return 0;
        }
        field::set_u16(self.buf, 0..2, self.count);
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_wire_len_counts_the_total_field_of_first_records_only() {
        let rec = |kind| Record {
            service: ServiceId(1),
            kind,
            total_len: None,
            data: &[0; 10],
        };
        assert_eq!(rec(RecordKind::Whole).wire_len(), 15);
        assert_eq!(rec(RecordKind::Middle).wire_len(), 15);
        assert_eq!(rec(RecordKind::Last).wire_len(), 15);
        assert_eq!(rec(RecordKind::First).wire_len(), 19);
    }

    #[test]
    fn record_kinds_round_trip_through_their_code_points() {
        for v in 0..=u8::MAX {
            assert_eq!(u8::from(RecordKind::from(v)), v);
        }
        assert_eq!(RecordKind::from(3), RecordKind::Last);
        assert_eq!(RecordKind::from(4), RecordKind::Unknown(4));
    }

    #[test]
    fn records_of_a_validated_pack_match_its_count() {
        let mut buf = [0u8; 64];
        let mut w = PackWriter::new(&mut buf).unwrap();
        assert!(w.push(ServiceId(1), b"a"));
        assert!(w.push(ServiceId(2), b""));
        let n = w.finish();
        let pack = Pack::new_checked(&buf[..n]).unwrap();
        assert_eq!(pack.count(), 2);
        assert_eq!(pack.records().count(), 2);
    }
}
