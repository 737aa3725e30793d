//! The messages cpgbench instances exchange in their group, and the hashes they check.
//!
//! Every message starts with the same 40-byte header (big-endian); a data message's body
//! fills it up to the run's size. The xtask's C twin (`xtask/src/bench_cpg.rs`, written
//! for corosync's libcpg) uses the same layout and hashes, so the two benchmarks run the
//! same protocol.
//!
//! ```text
//!  0 magic u32 "CPGB" | 4 kind u8 | 5 0 0 0 | 8 run u32 | 12 size u32 | 16 seq u64
//! 24 a u64 | 32 b u64 | 40 body (data messages only)
//!
//! kind   1 START   a = 0              b = 0
//!        2 DATA    a = send time, ns  b = hash of the body
//!        3 END     a = data sent      b = 0
//!        4 REPORT  a = delivery hash  b = data delivered in the run
//! ```
//!
//! `seq` counts every message a process sends (all kinds, from 0), so a receiver can check
//! each sender's stream for loss, duplication and reordering.

/// "CPGB".
pub(crate) const MAGIC: u32 = 0x4350_4742;

/// Bytes of the header, and so the smallest message size.
pub(crate) const HEADER_LEN: usize = 40;

/// What a message is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A sender is ready for the run.
    Start = 1,
    /// A measured message.
    Data = 2,
    /// A sender's last message of the run.
    End = 3,
    /// A member's delivery hash at the end of the run (`--verify`).
    Report = 4,
}

/// A decoded header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) kind: Kind,
    pub(crate) run: u32,
    pub(crate) size: u32,
    pub(crate) seq: u64,
    pub(crate) a: u64,
    pub(crate) b: u64,
}

impl Header {
    pub(crate) fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0..4].copy_from_slice(&MAGIC.to_be_bytes());
        out[4] = self.kind as u8;
        out[8..12].copy_from_slice(&self.run.to_be_bytes());
        out[12..16].copy_from_slice(&self.size.to_be_bytes());
        out[16..24].copy_from_slice(&self.seq.to_be_bytes());
        out[24..32].copy_from_slice(&self.a.to_be_bytes());
        out[32..40].copy_from_slice(&self.b.to_be_bytes());
        out
    }

    /// The header of `msg`, if it is a cpgbench message.
    pub(crate) fn decode(msg: &[u8]) -> Option<Self> {
        let h: &[u8; HEADER_LEN] = msg.get(..HEADER_LEN)?.try_into().ok()?;
        let u32_at = |i: usize| u32::from_be_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
        let u64_at = |i: usize| (u64::from(u32_at(i)) << 32) | u64::from(u32_at(i + 4));
        if u32_at(0) != MAGIC {
            return None;
        }
        let kind = match h[4] {
            1 => Kind::Start,
            2 => Kind::Data,
            3 => Kind::End,
            4 => Kind::Report,
            _ => return None,
        };
        Some(Self {
            kind,
            run: u32_at(8),
            size: u32_at(12),
            seq: u64_at(16),
            a: u64_at(24),
            b: u64_at(32),
        })
    }
}

/// FNV-1a's prime, used word-wise: `h = (h ^ x) * P`.
const PRIME: u64 = 0x0000_0100_0000_01b3;
/// FNV-1a's offset basis: the starting value of every hash.
pub(crate) const HASH_START: u64 = 0xcbf2_9ce4_8422_2325;

/// One step of the word-wise hash.
pub(crate) fn mix(h: u64, x: u64) -> u64 {
    (h ^ x).wrapping_mul(PRIME)
}

/// The running delivery hash after one more message: who sent it, its number and kind.
/// Equal on two members exactly when they delivered the same messages in the same order.
pub(crate) fn mix_delivery(h: u64, nodeid: u32, pid: u32, h2: &Header) -> u64 {
    let h = mix(h, (u64::from(nodeid) << 32) | u64::from(pid));
    let h = mix(h, h2.seq);
    mix(h, (u64::from(h2.run) << 8) | h2.kind as u64)
}

/// Hash of a data message's body: 8-byte little-endian words, then the tail bytes.
pub(crate) fn body_hash(body: &[u8]) -> u64 {
    let mut h = mix(HASH_START, body.len() as u64);
    let mut words = body.chunks_exact(8);
    for w in &mut words {
        let mut b = [0u8; 8];
        b.copy_from_slice(w);
        h = mix(h, u64::from_le_bytes(b));
    }
    for &b in words.remainder() {
        h = mix(h, u64::from(b));
    }
    h
}

/// The body of run `run`'s data messages of `size` bytes (header excluded): a pattern that
/// differs per run and per byte, so a misplaced or stale body fails its hash.
pub(crate) fn body(run: u32, size: usize) -> Vec<u8> {
    (0..size.saturating_sub(HEADER_LEN))
        .map(|i| {
            (i as u32)
                .wrapping_mul(31)
                .wrapping_add(run.wrapping_mul(7)) as u8
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip_and_foreign_bytes_do_not_decode() {
        let h = Header {
            kind: Kind::Report,
            run: 3,
            size: 1024,
            seq: u64::MAX - 1,
            a: 0x0102_0304_0506_0708,
            b: 9,
        };
        assert_eq!(Header::decode(&h.encode()), Some(h));
        let mut bad = h.encode();
        bad[0] = 0;
        assert_eq!(Header::decode(&bad), None);
        let mut bad = h.encode();
        bad[4] = 9;
        assert_eq!(Header::decode(&bad), None);
        assert_eq!(Header::decode(&h.encode()[..39]), None);
    }

    #[test]
    fn hashes_see_order_and_content() {
        let m = |seq| Header {
            kind: Kind::Data,
            run: 1,
            size: 64,
            seq,
            a: 0,
            b: 0,
        };
        let ab = mix_delivery(mix_delivery(HASH_START, 1, 10, &m(0)), 2, 20, &m(0));
        let ba = mix_delivery(mix_delivery(HASH_START, 2, 20, &m(0)), 1, 10, &m(0));
        assert_ne!(ab, ba);
        let b = body(1, 100);
        let mut c = b.clone();
        c[59] ^= 1;
        assert_ne!(body_hash(&b), body_hash(&c));
        assert_ne!(body_hash(&body(1, 100)), body_hash(&body(2, 100)));
        assert_eq!(body(1, 40).len(), 0);
    }
}
