//! Fragmentation and reassembly of totem frames over UD datagrams.
//!
//! A UD datagram carries at most one path MTU (256..=4096 bytes) while totem frames reach
//! 64 KiB (joins and commit tokens of large rings), so every datagram starts with a
//! [`FRAG_HEADER_LEN`]-byte header:
//!
//! ```text
//! 0      2    3    4          8          12         16         20
//! | magic | ver| rsv| sender   | msg id   | total len| offset   | payload…
//! ```
//!
//! all big-endian. The receiver keys partial frames by `(sender, msg id)`, accepts a fragment
//! only if it overlaps no other (an exact duplicate is ignored), and completes the frame
//! when the fragments cover `total len`. Incomplete frames are dropped after
//! [`Reassembler::new`]'s `max_age` fragments have arrived without completing them, or when
//! more than `max_partial` are open (oldest first): a lost fragment loses the frame, which
//! the ring's retransmission covers, exactly like a lost IP fragment under UDP.

use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;

/// `"IB"`: first two bytes of every datagram.
pub const FRAG_MAGIC: u16 = 0x4942;
/// Header version.
pub const FRAG_VERSION: u8 = 1;
/// Bytes of header in front of every fragment.
pub const FRAG_HEADER_LEN: usize = 20;
/// Largest frame the transport fragments (64 KiB).
pub const MAX_FRAME: usize = 65_536;

/// One parsed fragment header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FragHeader {
    /// Node id of the sender (as its own config says).
    pub sender: u32,
    /// Per-sender frame counter.
    pub msg_id: u32,
    /// Length of the whole frame.
    pub total_len: u32,
    /// Where this fragment's payload starts in the frame.
    pub offset: u32,
}

/// Why a datagram was not accepted as a fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FragError {
    /// Shorter than the header.
    Truncated,
    /// Wrong magic or version.
    BadHeader,
    /// Offset + length beyond the total, a total above [`MAX_FRAME`], or an empty fragment
    /// of a non-empty frame.
    BadRange,
    /// Overlaps a different fragment of the same frame.
    Overlap,
}

impl FragHeader {
    /// Writes the header into the front of `buf`.
    ///
    /// # Panics
    /// If `buf` is shorter than [`FRAG_HEADER_LEN`] (a caller bug: send buffers are an MTU).
    pub fn emit(&self, buf: &mut [u8]) {
        buf[0..2].copy_from_slice(&FRAG_MAGIC.to_be_bytes());
        buf[2] = FRAG_VERSION;
        buf[3] = 0;
        buf[4..8].copy_from_slice(&self.sender.to_be_bytes());
        buf[8..12].copy_from_slice(&self.msg_id.to_be_bytes());
        buf[12..16].copy_from_slice(&self.total_len.to_be_bytes());
        buf[16..20].copy_from_slice(&self.offset.to_be_bytes());
    }

    /// Parses the header of `datagram` and checks its range against the payload length.
    /// Never panics.
    ///
    /// # Errors
    /// [`FragError`].
    pub fn parse(datagram: &[u8]) -> Result<(Self, &[u8]), FragError> {
        let Some((head, payload)) = datagram.split_first_chunk::<FRAG_HEADER_LEN>() else {
            return Err(FragError::Truncated);
        };
        let be = |i: usize| u32::from_be_bytes([head[i], head[i + 1], head[i + 2], head[i + 3]]);
        if u16::from_be_bytes([head[0], head[1]]) != FRAG_MAGIC || head[2] != FRAG_VERSION {
            return Err(FragError::BadHeader);
        }
        let h = Self {
            sender: be(4),
            msg_id: be(8),
            total_len: be(12),
            offset: be(16),
        };
        let total = h.total_len as usize;
        let end = (h.offset as usize).checked_add(payload.len());
        if total > MAX_FRAME || end.is_none_or(|e| e > total) || (payload.is_empty() && total != 0)
        {
            return Err(FragError::BadRange);
        }
        Ok((h, payload))
    }
}

/// How many fragments a frame of `len` bytes takes with `mtu`-byte datagrams (at least one:
/// an empty frame still travels).
pub const fn fragments(len: usize, mtu: usize) -> usize {
    let chunk = mtu - FRAG_HEADER_LEN;
    if len == 0 { 1 } else { len.div_ceil(chunk) }
}

#[derive(Debug)]
struct Partial {
    buf: Vec<u8>,
    /// offset → length of the fragments held; never overlapping.
    have: BTreeMap<u32, u32>,
    got: usize,
    born: u64,
}

/// Reassembles frames from fragments of many senders.
#[derive(Debug)]
pub struct Reassembler {
    partial: BTreeMap<(u32, u32), Partial>,
    /// Fragments accepted so far: the clock for `max_age` (no wall clock below the driver).
    ticks: u64,
    max_age: u64,
    max_partial: usize,
    /// Partial frames dropped (aged out or evicted).
    pub dropped: u64,
}

impl Reassembler {
    /// A reassembler that drops a partial frame after `max_age` later fragments and keeps at
    /// most `max_partial` open.
    pub fn new(max_age: u64, max_partial: usize) -> Self {
        Self {
            partial: BTreeMap::new(),
            ticks: 0,
            max_age,
            max_partial: max_partial.max(1),
            dropped: 0,
        }
    }

    /// Partial frames held.
    pub fn pending(&self) -> usize {
        self.partial.len()
    }

    /// Feeds one datagram; returns the sender and the whole frame when this completed one.
    ///
    /// # Errors
    /// [`FragError`] for a datagram that is not a valid fragment (it is dropped).
    pub fn push(&mut self, datagram: &[u8]) -> Result<Option<(u32, Vec<u8>)>, FragError> {
        let (h, payload) = FragHeader::parse(datagram)?;
        self.ticks += 1;
        self.expire();
        let total = h.total_len as usize;
        if h.offset == 0 && payload.len() == total {
            // Single-fragment frame: the common case (tokens, small multicasts).
            return Ok(Some((h.sender, payload.to_vec())));
        }
        let key = (h.sender, h.msg_id);
        if !self.partial.contains_key(&key) && self.partial.len() >= self.max_partial {
            // Evict the oldest partial frame (smallest birth tick).
            if let Some(oldest) = self
                .partial
                .iter()
                .min_by_key(|(_, p)| p.born)
                .map(|(k, _)| *k)
            {
                self.partial.remove(&oldest);
                self.dropped += 1;
            }
        }
        let ticks = self.ticks;
        let p = self.partial.entry(key).or_insert_with(|| Partial {
            buf: vec![0; total],
            have: BTreeMap::new(),
            got: 0,
            born: ticks,
        });
        if p.buf.len() != total {
            // Same (sender, msg id) with a different length: the sender restarted and its
            // counter wrapped onto an old partial; start over with the new one.
            *p = Partial {
                buf: vec![0; total],
                have: BTreeMap::new(),
                got: 0,
                born: ticks,
            };
        }
        let (off, len) = (h.offset, payload.len() as u32);
        if let Some((&o, &l)) = p.have.range(..=off).next_back() {
            if o == off && l == len {
                return Ok(None); // duplicate
            }
            if o + l > off {
                return Err(FragError::Overlap);
            }
        }
        if let Some((&o, _)) = p.have.range(off + 1..).next()
            && off + len > o
        {
            return Err(FragError::Overlap);
        }
        let start = off as usize;
        p.buf[start..start + payload.len()].copy_from_slice(payload);
        p.have.insert(off, len);
        p.got += payload.len();
        if p.got == total {
            // Invariant: the entry was inserted above and fragments never overlap, so
            // covering `total` bytes means the frame is whole.
            let done = self.partial.remove(&key).map(|p| p.buf).unwrap_or_default();
            return Ok(Some((h.sender, done)));
        }
        Ok(None)
    }

    fn expire(&mut self) {
        let (now, age) = (self.ticks, self.max_age);
        let before = self.partial.len();
        self.partial.retain(|_, p| now - p.born <= age);
        self.dropped += (before - self.partial.len()) as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(sender: u32, msg_id: u32, frame: &[u8], mtu: usize) -> Vec<Vec<u8>> {
        let chunk = mtu - FRAG_HEADER_LEN;
        let mut out = Vec::new();
        let mut off = 0;
        loop {
            let end = (off + chunk).min(frame.len());
            let mut d = vec![0; FRAG_HEADER_LEN + end - off];
            FragHeader {
                sender,
                msg_id,
                total_len: frame.len() as u32,
                offset: off as u32,
            }
            .emit(&mut d);
            d[FRAG_HEADER_LEN..].copy_from_slice(&frame[off..end]);
            out.push(d);
            off = end;
            if off >= frame.len() {
                return out;
            }
        }
    }

    #[test]
    fn header_round_trips_and_rejects_bad_ranges() {
        let h = FragHeader {
            sender: 7,
            msg_id: 9,
            total_len: 10,
            offset: 6,
        };
        let mut d = [0u8; FRAG_HEADER_LEN + 4];
        h.emit(&mut d);
        assert_eq!(FragHeader::parse(&d).unwrap().0, h);
        assert_eq!(FragHeader::parse(&d[..19]), Err(FragError::Truncated));
        let mut bad = d;
        bad[0] = 0;
        assert_eq!(FragHeader::parse(&bad), Err(FragError::BadHeader));
        let mut long = [0u8; FRAG_HEADER_LEN + 5];
        h.emit(&mut long);
        assert_eq!(FragHeader::parse(&long), Err(FragError::BadRange));
    }

    #[test]
    fn a_64k_frame_over_256_byte_mtu_reassembles_in_any_order() {
        let frame: Vec<u8> = (0..MAX_FRAME).map(|i| (i * 7 % 251) as u8).collect();
        let mut frags = split(3, 1, &frame, 256);
        assert_eq!(frags.len(), fragments(frame.len(), 256));
        frags.reverse();
        frags.swap(3, 100);
        let dup = frags[5].clone();
        frags.insert(10, dup);
        let mut r = Reassembler::new(10_000, 4);
        let mut done = None;
        for f in &frags {
            if let Some(x) = r.push(f).unwrap() {
                assert!(done.is_none(), "completed twice");
                done = Some(x);
            }
        }
        assert_eq!(done, Some((3, frame)));
        assert_eq!(r.pending(), 0);
    }

    #[test]
    fn small_and_empty_frames_take_one_fragment() {
        let mut r = Reassembler::new(10, 4);
        for frame in [&b""[..], b"token"] {
            let f = split(1, 2, frame, 4096);
            assert_eq!(f.len(), 1);
            assert_eq!(r.push(&f[0]).unwrap(), Some((1, frame.to_vec())));
        }
    }

    #[test]
    fn overlapping_fragments_are_refused() {
        let frame = [1u8; 100];
        let f = split(1, 1, &frame, 60); // 40-byte chunks at 0, 40, 80
        let mut r = Reassembler::new(10, 4);
        assert_eq!(r.push(&f[0]).unwrap(), None);
        let mut evil = f[1].clone();
        evil[16..20].copy_from_slice(&30u32.to_be_bytes());
        assert_eq!(r.push(&evil), Err(FragError::Overlap));
        assert_eq!(r.push(&f[2]).unwrap(), None);
        assert_eq!(r.push(&f[1]).unwrap(), Some((1, frame.to_vec())));
    }

    #[test]
    fn a_frame_missing_a_fragment_ages_out() {
        let big = [2u8; 1000];
        let f = split(1, 1, &big, 256);
        let mut r = Reassembler::new(3, 8);
        r.push(&f[0]).unwrap();
        for i in 0..4 {
            let small = split(2, i, b"x", 256);
            r.push(&small[0]).unwrap();
        }
        assert_eq!(r.pending(), 0);
        assert_eq!(r.dropped, 1);
    }

    #[test]
    fn too_many_partials_evict_the_oldest() {
        let big = [2u8; 1000];
        let mut r = Reassembler::new(1000, 2);
        for id in 0..3 {
            r.push(&split(1, id, &big, 256)[0]).unwrap();
        }
        assert_eq!((r.pending(), r.dropped), (2, 1));
    }
}
