//! The single-producer single-consumer byte ring that lives in shared memory.
//!
//! Sans-IO: this module never touches a file descriptor. It moves records through a
//! [`RingMemory`] and tells its caller, by return value, when the other side is asleep and
//! must be woken; the connection layer ([`crate::server`], [`crate::client`]) turns that
//! into an eventfd write. That is what lets the same code run under loom
//! (`ring/loom_tests.rs`) and over a real `MAP_SHARED` mapping.
//!
//! ## Layout
//!
//! A ring is a 4096-byte header page followed by `capacity` data bytes (a power of two).
//! The header page holds, at fixed offsets ([`RingHeader`], `repr(C)`):
//!
//! | offset | field | written by |
//! | ---: | --- | --- |
//! | 0 | `head: u64`, bytes ever published | producer |
//! | 128 | `writer_waiting: u32`, producer sleeps until space | producer sets, consumer clears |
//! | 256 | `tail: u64`, bytes ever consumed | consumer |
//! | 384 | `reader_waiting: u32`, consumer sleeps until data | consumer sets, producer clears |
//!
//! Each field sits 128 bytes from the next, so no two share a cache line (or the
//! adjacent-line prefetch pair): a position is written once per record (or batch) by its
//! side, a flag only when a side goes to sleep or is woken, and each side reads the other's
//! flag after every record, which then costs no transfer of the line the other side keeps
//! writing. `head` and `tail` only grow (2^64 bytes never wrap in
//! practice); a byte position maps to data offset `pos & (capacity - 1)`.
//!
//! ## Records
//!
//! Each record is an 8-byte header, the payload, and zero to seven bytes of padding so the
//! next header is 8-byte aligned (a header therefore never straddles the end of the data
//! area; a payload may, and is copied in two parts):
//!
//! ```text
//!  0        4        8                       8+len     record_len(len)
//!  +--------+--------+-----------------------+---------+
//!  | len u32| seq u32|  payload (len bytes)  | padding |
//!  +--------+--------+-----------------------+---------+
//!  little-endian      opaque to this crate
//! ```
//!
//! `seq` numbers the records of one ring from 0 (wrapping); the reader checks it, which
//! catches a producer that rewinds or skips. Records are never chunked: every ring must hold
//! one record of `max_message` bytes ([`record_len`]), checked when the server is configured.
//!
//! ## Protocol (why each ordering)
//!
//! * Producer: copy the record into `data`, then `head.store(Release)`: a consumer that
//!   `Acquire`-loads the new head sees the bytes. A record may also be *reserved*
//!   ([`Producer::try_reserve`]): the space is checked free, the caller writes the payload
//!   in place (the zero-copy send of [`crate::RequestSlot`]), and [`Producer::commit`]
//!   writes the record header and publishes it exactly as a push does. Until the commit
//!   nothing is visible: `head` has not moved, so the consumer never looks at those bytes,
//!   and dropping the reservation publishes nothing.
//! * Consumer: copy the record out into private memory, then `tail.store(Release)`: a
//!   producer that `Acquire`-loads the tail may overwrite those bytes.
//! * Sleeping without lost wake-ups is the store-buffering (Dekker) pattern. The consumer
//!   about to sleep stores `reader_waiting = 1`, issues `fence(SeqCst)`, and re-loads `head`;
//!   the producer stores `head`, issues `fence(SeqCst)`, and loads `reader_waiting`. With a
//!   fence on each side at least one of them sees the other's store: either the consumer
//!   sees the data and does not sleep, or the producer sees the flag and wakes it. Space
//!   works the same way with `writer_waiting` and `tail`. (SeqCst *fences*, not SeqCst
//!   loads and stores: loom models the former exactly and the latter only as AcqRel.)
//! * Whoever wakes the other side clears the flag with a `swap`, so a burst of records costs
//!   one wake-up; a spurious wake-up (both clear it) is harmless because sleepers re-check.
//! * Each side reads the other's position only when it needs it: the consumer takes the
//!   records up to the head it last read before it reads `head` again, the producer fills
//!   the room it last saw before it reads `tail` again. The cache line the other side
//!   writes then crosses between cores once per batch instead of once per record. A stale
//!   position is always a safe one: it shows less data or less room than there is. `arm`
//!   always reads afresh, so the sleeping protocol above is unchanged.
//!
//! ## Hostile peers
//!
//! Each side keeps its own position (`head` for the producer, `tail` for the consumer) in
//! private memory and never reads it back from the shared header. Everything it reads from
//! the other side — the other position, the record header — is validated before use
//! ([`RingError`]); payload bytes are copied out before they are handed on, so a client
//! rewriting them concurrently can change what the daemon reads but not where it reads.
//! After validation every copy stays inside `data`: offsets are masked with
//! `capacity - 1`, and lengths are at most `capacity`.

use alloc::vec::Vec;
use core::mem::MaybeUninit;

use crate::error::RingError;
use crate::sync::{AtomicU32, AtomicU64, Ordering, fence};

#[cfg(all(test, loom))]
mod loom_tests;

/// Bytes of the per-record header (`len: u32`, `seq: u32`).
pub const RECORD_HEADER_LEN: usize = 8;

/// Records start at multiples of this.
const RECORD_ALIGN: usize = 8;

/// Bytes reserved for each ring's header (positions and wake-up flags) in the shared mapping.
pub const RING_HEADER_PAGE: usize = 4096;

/// Bytes a record with a `payload_len`-byte payload occupies in a ring: header, payload,
/// padding to 8. `None` if that overflows `usize`.
pub const fn record_len(payload_len: usize) -> Option<usize> {
    match payload_len.checked_add(RECORD_HEADER_LEN + RECORD_ALIGN - 1) {
        Some(n) => Some(n & !(RECORD_ALIGN - 1)),
        None => None,
    }
}

/// The shared control block of one ring (see the module doc for the layout).
#[repr(C, align(128))]
#[derive(Debug)]
pub(crate) struct RingHeader {
    head: AtomicU64,
    _head_pad: [u8; 120],
    writer_waiting: AtomicU32,
    _writer_pad: [u8; 124],
    tail: AtomicU64,
    _tail_pad: [u8; 120],
    reader_waiting: AtomicU32,
    _reader_pad: [u8; 124],
}

#[cfg(not(loom))]
const _: () = {
    assert!(size_of::<RingHeader>() == 512);
    assert!(core::mem::offset_of!(RingHeader, writer_waiting) == 128);
    assert!(core::mem::offset_of!(RingHeader, tail) == 256);
    assert!(core::mem::offset_of!(RingHeader, reader_waiting) == 384);
    assert!(size_of::<RingHeader>() <= RING_HEADER_PAGE);
};

impl RingHeader {
    /// A zeroed header, for rings in private memory (loom models, tests).
    #[cfg(loom)]
    pub(crate) fn new() -> Self {
        Self {
            head: AtomicU64::new(0),
            _head_pad: [0; 120],
            writer_waiting: AtomicU32::new(0),
            _writer_pad: [0; 124],
            tail: AtomicU64::new(0),
            _tail_pad: [0; 120],
            reader_waiting: AtomicU32::new(0),
            _reader_pad: [0; 124],
        }
    }
}

/// Mark a fresh ring's reader as asleep, so the producer's first record rings its
/// eventfd. The daemon does this for all three rings before handing them out: nobody has to
/// "look once" before the first wait (a client may poll its event fd first thing, the
/// daemon may wait on the doorbell right after accept).
#[cfg(not(loom))]
pub(crate) fn start_asleep<M: RingMemory>(mem: &M) {
    mem.header().reader_waiting.store(1, Ordering::Relaxed);
}

/// Where a ring's header and data live: a shared mapping in production, private memory
/// under loom.
///
/// Implementations copy bytes with raw-pointer copies (or loom cells), never through
/// references to the shared data, because the other process may write it concurrently.
pub(crate) trait RingMemory {
    /// The control block.
    fn header(&self) -> &RingHeader;
    /// Data bytes; a power of two and a multiple of 8.
    fn capacity(&self) -> usize;
    /// Copy `src` to `data[off..off + src.len()]`.
    ///
    /// # Panics
    /// If that range is not inside the data area; the ring never asks for one (bug).
    fn write(&self, off: usize, src: &[u8]);
    /// Copy `data[off..off + dst.len()]` into `dst`.
    ///
    /// # Panics
    /// As [`RingMemory::write`].
    fn read(&self, off: usize, dst: &mut [u8]);
    /// Copy `data[off..off + dst.len()]` into `dst`, which may be uninitialised (so a record
    /// copied into a fresh `Vec` is written once, not zeroed first); all of `dst` is
    /// initialised afterwards.
    ///
    /// # Panics
    /// As [`RingMemory::write`].
    fn read_uninit(&self, off: usize, dst: &mut [MaybeUninit<u8>]);
}

/// Copy `src` into the ring at byte position `pos`, wrapping at the end of the data area.
/// Callers guarantee `src.len() <= capacity`.
fn copy_in<M: RingMemory>(mem: &M, pos: u64, src: &[u8]) {
    let cap = mem.capacity();
    // Masking keeps the offset < cap whatever `pos` is; cap is a power of two.
    let off = (pos & (cap as u64 - 1)) as usize;
    let first = src.len().min(cap - off);
    mem.write(off, &src[..first]);
    if first < src.len() {
        mem.write(0, &src[first..]);
    }
}

/// Write the first `r.len()` bytes of `payload` into the reserved record `r` (wrapping): a
/// reservation filled from a private buffer rather than in place.
pub(crate) fn write_payload<M: RingMemory>(mem: &M, r: &Reservation, payload: &[u8]) {
    copy_in(mem, r.payload_pos(), &payload[..r.len().min(payload.len())]);
}

/// [`copy_out`] into uninitialised memory; all of `dst` is initialised afterwards.
fn copy_out_uninit<M: RingMemory>(mem: &M, pos: u64, dst: &mut [MaybeUninit<u8>]) {
    let cap = mem.capacity();
    let off = (pos & (cap as u64 - 1)) as usize;
    let first = dst.len().min(cap - off);
    let (a, b) = dst.split_at_mut(first);
    mem.read_uninit(off, a);
    if !b.is_empty() {
        mem.read_uninit(0, b);
    }
}

/// Why [`Producer::try_push`] did not queue a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PushError {
    /// Not enough free space now (nothing written; see [`Producer::arm`]).
    Full,
    /// The payload exceeds the ring's `max_payload`.
    TooLarge,
    /// The consumer's `tail` is impossible.
    Corrupt(RingError),
}

/// A record reserved by [`Producer::try_reserve`] and not yet published: `len` payload
/// bytes starting at byte position [`Reservation::payload_pos`], all inside free space.
///
/// Nothing is published until [`Producer::commit`]; dropping it is the cancel (the space
/// stays free, the next record is written over it). Valid only until the producer writes
/// anything else: the connection layer ties it to a `&mut` borrow of its producer.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "nothing is published until the reservation is committed"]
pub(crate) struct Reservation {
    /// The producer's `head` when reserved: where the record header goes.
    head: u64,
    /// Payload bytes; only ever lowered after reserving ([`Reservation::truncate`]).
    len: usize,
}

impl Reservation {
    /// Byte position of the first payload byte (offset `pos & (capacity - 1)`); 8-aligned.
    pub(crate) fn payload_pos(&self) -> u64 {
        self.head + RECORD_HEADER_LEN as u64
    }

    /// Payload bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Publish only the first `len` bytes (no-op if `len` is not smaller).
    pub(crate) fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }
}

/// The writing side of a ring. Owns the true `head`.
#[derive(Debug)]
pub(crate) struct Producer<M> {
    mem: M,
    /// Bytes published; the only copy that is trusted.
    head: u64,
    /// The last validated `tail`: the consumer may only move it forward, up to `head`.
    tail: u64,
    /// Sequence number of the next record.
    seq: u32,
    max_payload: usize,
}

impl<M: RingMemory> Producer<M> {
    /// A producer on a fresh (all-zero) ring.
    ///
    /// `max_payload` must satisfy `record_len(max_payload) <= capacity` (checked by the
    /// server's config; the client takes it from the server).
    pub(crate) fn new(mem: M, max_payload: usize) -> Self {
        Self {
            mem,
            head: 0,
            tail: 0,
            seq: 0,
            max_payload,
        }
    }

    /// Load and validate the consumer's `tail`.
    fn load_tail(&mut self) -> Result<u64, RingError> {
        let tail = self.mem.header().tail.load(Ordering::Acquire);
        if tail < self.tail || tail > self.head || !tail.is_multiple_of(RECORD_ALIGN as u64) {
            return Err(RingError::TailOutOfRange {
                tail,
                previous: self.tail,
                head: self.head,
            });
        }
        self.tail = tail;
        Ok(tail)
    }

    /// Free bytes now, after validating `tail`.
    fn free(&mut self) -> Result<usize, RingError> {
        let tail = self.load_tail()?;
        // tail <= head <= tail + cap holds: head only grows by checked free space.
        Ok(self.mem.capacity() - (self.head - tail) as usize)
    }

    /// Free bytes as of the last look at `tail` (there may be more now, never less).
    pub(crate) fn free_cached(&self) -> usize {
        // tail <= head <= tail + cap: head only grows by checked free space.
        self.mem.capacity() - (self.head - self.tail) as usize
    }

    /// The consumer's tail as last read and validated, for tests.
    #[cfg(test)]
    pub(crate) fn tail_seen(&self) -> u64 {
        self.tail
    }

    /// Bytes published and not yet consumed, as of the last look at `tail` (which
    /// [`Producer::available`] refreshes).
    pub(crate) fn backlog(&self) -> usize {
        (self.head - self.tail) as usize
    }

    /// Append one record. `Ok(true)`: the consumer was asleep, wake it.
    pub(crate) fn try_push(&mut self, payload: &[u8]) -> Result<bool, PushError> {
        let r = self.try_reserve(payload.len())?;
        copy_in(&self.mem, r.payload_pos(), payload);
        Ok(self.commit(r))
    }

    /// Reserve room for one record of `len` payload bytes without publishing anything: the
    /// caller writes the payload at [`Reservation::payload_pos`] (wrapping at the end of the
    /// data area, or contiguously in a mirrored mapping), then calls [`Producer::commit`].
    ///
    /// # Errors
    /// As [`Producer::try_push`]: `Full` (nothing reserved; see [`Producer::arm`]),
    /// `TooLarge`, `Corrupt`.
    pub(crate) fn try_reserve(&mut self, len: usize) -> Result<Reservation, PushError> {
        if len > self.max_payload {
            return Err(PushError::TooLarge);
        }
        // max_payload fits the ring, so this neither overflows nor exceeds capacity.
        let need = record_len(len).ok_or(PushError::TooLarge)?;
        // The consumer's tail is re-read (a cache line it writes) only when the room last
        // seen is not enough.
        if self.free_cached() < need && self.free().map_err(PushError::Corrupt)? < need {
            return Err(PushError::Full);
        }
        Ok(Reservation {
            head: self.head,
            len,
        })
    }

    /// Publish a reserved record whose payload the caller has written: write its header,
    /// move `head` past it (Release), and say whether the consumer must be woken.
    ///
    /// `r` must come from this producer's latest [`Producer::try_reserve`], with nothing
    /// pushed since (the connection layer's borrow guarantees it; checked in debug builds).
    pub(crate) fn commit(&mut self, r: Reservation) -> bool {
        debug_assert_eq!(r.head, self.head, "stale reservation (bug)");
        // r.len <= max_payload, whose record fits the ring (checked by try_reserve).
        let need = record_len(r.len).unwrap_or(usize::MAX);
        let mut header = [0u8; RECORD_HEADER_LEN];
        // r.len <= max_payload <= capacity < 2^32 (ring sizes are capped at 1 GiB).
        header[..4].copy_from_slice(&(r.len as u32).to_le_bytes());
        header[4..].copy_from_slice(&self.seq.to_le_bytes());
        copy_in(&self.mem, self.head, &header);
        self.head += need as u64;
        self.seq = self.seq.wrapping_add(1);
        let h = self.mem.header();
        // Release: the record bytes are visible to whoever Acquire-loads this head.
        h.head.store(self.head, Ordering::Release);
        // Dekker with Consumer::arm (module doc): after this fence either we see the
        // consumer's flag or it sees our head.
        fence(Ordering::SeqCst);
        h.reader_waiting.load(Ordering::Relaxed) != 0
            && h.reader_waiting.swap(0, Ordering::Relaxed) != 0
    }

    /// About to wait for room for a `payload_len`-byte record: set `writer_waiting` and look
    /// again. `Ok(true)`: the room is already there (flag cleared, do not sleep). `Ok(false)`:
    /// sleep; the consumer will wake us after it frees anything.
    pub(crate) fn arm(&mut self, payload_len: usize) -> Result<bool, RingError> {
        let need = record_len(payload_len).unwrap_or(usize::MAX);
        let h = self.mem.header();
        h.writer_waiting.store(1, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        if self.free()? >= need {
            self.mem.header().writer_waiting.store(0, Ordering::Relaxed);
            Ok(true)
        } else {
            Ok(false)
        }
    }

    /// Free bytes, re-reading the consumer's tail.
    pub(crate) fn available(&mut self) -> Result<usize, RingError> {
        self.free()
    }

    /// The memory (the connection layer writes reserved payloads through it; tests play a
    /// hostile peer with it).
    pub(crate) fn memory(&self) -> &M {
        &self.mem
    }
}

/// The reading side of a ring. Owns the true `tail`.
#[derive(Debug)]
pub(crate) struct Consumer<M> {
    mem: M,
    /// Bytes consumed; the only copy that is trusted.
    tail: u64,
    /// The last validated `head`: records up to it are taken without re-reading `head`
    /// (a cache line the producer writes).
    head: u64,
    /// Sequence number the next record must carry.
    seq: u32,
    max_payload: usize,
}

impl<M: RingMemory> Consumer<M> {
    /// A consumer on a fresh (all-zero) ring; `max_payload` as for [`Producer::new`].
    pub(crate) fn new(mem: M, max_payload: usize) -> Self {
        Self {
            mem,
            tail: 0,
            head: 0,
            seq: 0,
            max_payload,
        }
    }

    /// Load and validate the producer's `head`, and remember it.
    fn load_head(&mut self) -> Result<u64, RingError> {
        let head = self.mem.header().head.load(Ordering::Acquire);
        let cap = self.mem.capacity() as u64;
        // Never behind a head seen before: a producer only publishes forward.
        if head < self.head
            || head < self.tail
            || head - self.tail > cap
            || !head.is_multiple_of(RECORD_ALIGN as u64)
        {
            return Err(RingError::HeadOutOfRange {
                head,
                tail: self.tail,
                capacity: cap,
            });
        }
        self.head = head;
        Ok(head)
    }

    /// Take the next record into `out` (cleared first). `Ok(None)`: the ring is empty.
    /// `Ok(Some(true))`: a record was taken and the producer was waiting for space, wake it.
    pub(crate) fn try_pop(&mut self, out: &mut Vec<u8>) -> Result<Option<bool>, RingError> {
        let head = if self.head != self.tail {
            // Published before and validated then; the Acquire load that saw it made its
            // records visible.
            self.head
        } else {
            self.load_head()?
        };
        if head == self.tail {
            return Ok(None);
        }
        let available = head - self.tail;
        let mut header = [0u8; RECORD_HEADER_LEN];
        // Records start 8-aligned in a data area of a multiple of 8: a header never wraps.
        let cap = self.mem.capacity() as u64;
        self.mem.read((self.tail & (cap - 1)) as usize, &mut header);
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
        let seq = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        if seq != self.seq {
            return Err(RingError::BadSequence {
                expected: self.seq,
                found: seq,
            });
        }
        if len as usize > self.max_payload {
            return Err(RingError::RecordTooLarge {
                len,
                max: u32::try_from(self.max_payload).unwrap_or(u32::MAX),
            });
        }
        // len <= max_payload, whose record fits the ring: no overflow, need <= capacity.
        let need = record_len(len as usize).unwrap_or(usize::MAX) as u64;
        if need > available {
            return Err(RingError::RecordBeyondHead { need, available });
        }
        out.clear();
        out.reserve(len as usize);
        let spare = out.spare_capacity_mut();
        copy_out_uninit(
            &self.mem,
            self.tail + RECORD_HEADER_LEN as u64,
            // reserve() made room for at least len bytes.
            &mut spare[..len as usize],
        );
        // SAFETY: copy_out_uninit initialised the first `len` spare bytes (RingMemory's
        // contract), and `len <= capacity` after the reserve above.
        unsafe { out.set_len(len as usize) };
        self.tail += need;
        self.seq = self.seq.wrapping_add(1);
        let h = self.mem.header();
        // Release: our copy-out happens before the producer may reuse the bytes.
        h.tail.store(self.tail, Ordering::Release);
        // Dekker with Producer::arm.
        fence(Ordering::SeqCst);
        Ok(Some(
            h.writer_waiting.load(Ordering::Relaxed) != 0
                && h.writer_waiting.swap(0, Ordering::Relaxed) != 0,
        ))
    }

    /// Whether a record is published and not yet taken.
    pub(crate) fn has_data(&mut self) -> Result<bool, RingError> {
        Ok(self.load_head()? != self.tail)
    }

    /// About to wait for data: set `reader_waiting` and look again. `Ok(true)`: data is
    /// already there (flag cleared, do not sleep). `Ok(false)`: sleep; the producer wakes us.
    pub(crate) fn arm(&mut self) -> Result<bool, RingError> {
        let h = self.mem.header();
        h.reader_waiting.store(1, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        if self.load_head()? != self.tail {
            self.mem.header().reader_waiting.store(0, Ordering::Relaxed);
            Ok(true)
        } else {
            Ok(false)
        }
    }

    /// The memory, for tests that play a hostile peer.
    #[cfg(test)]
    pub(crate) fn memory(&self) -> &M {
        &self.mem
    }

    /// Our private read position, for tests.
    #[cfg(test)]
    pub(crate) fn position(&self) -> u64 {
        self.tail
    }
}

/// Test access to the raw header fields (a hostile peer writes them directly).
#[cfg(all(test, not(loom)))]
impl RingHeader {
    pub(crate) fn raw_head(&self) -> &AtomicU64 {
        &self.head
    }
    pub(crate) fn raw_tail(&self) -> &AtomicU64 {
        &self.tail
    }
    pub(crate) fn raw_reader_waiting(&self) -> &AtomicU32 {
        &self.reader_waiting
    }
    pub(crate) fn raw_writer_waiting(&self) -> &AtomicU32 {
        &self.writer_waiting
    }
}
