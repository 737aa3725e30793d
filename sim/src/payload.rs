//! The application payloads the simulated workload submits, and their decoding by the
//! invariant checker.
//!
//! Every payload names its message: `(sender node, incarnation, per-sender counter)`, a
//! [`MsgId`]. The checker identifies each delivery by decoding it, never by asking the ring,
//! so a delivery the ring made up, corrupted, truncated or joined from the wrong fragments is
//! caught as such (Integrity, Moser et al. 1994, "Basic Delivery": no creation).
//!
//! ```text
//!  0        4        8        12               20       24
//!  +--------+--------+--------+----------------+--------+----------------------
//!  | "TSIM" |  node  |  inc   |    counter     |  len   | filler (len - 24 bytes)
//!  +--------+--------+--------+----------------+--------+----------------------
//! ```
//!
//! All integers big-endian; `len` is the whole payload's length. Filler byte `i` is
//! `s + i + i / 256 (mod 256)` with `s` derived from the id: its period (64 KiB) is far above
//! the fragment size, so a message joined from shifted, repeated or foreign fragments does
//! not decode.

use core::fmt;

use bytes::Bytes;
use totem_proto::NodeId;

/// Bytes of the payload header; the smallest payload.
pub const HEADER_LEN: usize = 24;

const MAGIC: [u8; 4] = *b"TSIM";

/// The identity of one submitted message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MsgId {
    /// The submitting node.
    pub node: NodeId,
    /// The node's incarnation (0 on first start, +1 per restart).
    pub incarnation: u32,
    /// Accepted submissions of this incarnation before this one.
    pub counter: u64,
}

impl fmt::Display for MsgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}:{}", self.node, self.incarnation, self.counter)
    }
}

/// Why a delivered payload is not one the workload submitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadError {
    /// Shorter than the header.
    Short(usize),
    /// The magic is wrong.
    BadMagic,
    /// The length field disagrees with the payload's length.
    Length {
        /// The length the header announces.
        announced: usize,
        /// The payload's length.
        actual: usize,
    },
    /// A filler byte differs (corrupted, or joined from wrong fragments).
    Filler {
        /// Offset of the first wrong byte.
        at: usize,
    },
}

impl fmt::Display for PayloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Short(n) => write!(f, "{n} bytes, shorter than the {HEADER_LEN}-byte header"),
            Self::BadMagic => f.write_str("bad magic"),
            Self::Length { announced, actual } => {
                write!(
                    f,
                    "header announces {announced} bytes, payload has {actual}"
                )
            }
            Self::Filler { at } => write!(f, "content differs from the submitted one at byte {at}"),
        }
    }
}

/// The filler's per-message starting byte.
fn filler_seed(id: MsgId) -> u8 {
    let x = u64::from(id.node.0).wrapping_mul(0x9e37_79b9)
        ^ u64::from(id.incarnation).wrapping_mul(0x85eb_ca6b)
        ^ id.counter.wrapping_mul(0xc2b2_ae35);
    (x ^ (x >> 29)) as u8
}

/// `RAMP[k] = k mod 256`: any 256-byte run of the filler is a slice of it.
const RAMP: [u8; 512] = {
    let mut r = [0u8; 512];
    let mut k = 0;
    while k < 512 {
        r[k] = k as u8;
        k += 1;
    }
    r
};

/// Filler byte `i` is `seed + i + i / 256 (mod 256)`: within each aligned 256-byte block the
/// bytes count up by one, so a block is a slice of [`RAMP`] and is built or checked with
/// one `memcpy`/`memcmp` (the checker reads every delivered byte of every process).
fn filler_blocks(seed: u8, len: usize) -> impl Iterator<Item = (usize, &'static [u8])> {
    let mut i = HEADER_LEN;
    core::iter::from_fn(move || {
        if i >= len {
            return None;
        }
        let block = i >> 8;
        let end = ((block + 1) << 8).min(len);
        let first = (usize::from(seed) + i + block) & 255;
        let at = i;
        i = end;
        Some((at, &RAMP[first..first + (end - at)]))
    })
}

/// The payload of message `id`, `len` bytes long (at least [`HEADER_LEN`]).
pub fn encode(id: MsgId, len: usize) -> Bytes {
    let len = len.max(HEADER_LEN);
    let mut buf = Vec::with_capacity(len);
    buf.extend_from_slice(&MAGIC);
    buf.extend_from_slice(&id.node.0.to_be_bytes());
    buf.extend_from_slice(&id.incarnation.to_be_bytes());
    buf.extend_from_slice(&id.counter.to_be_bytes());
    // Payloads are at most max_message_len, far below 4 GiB.
    buf.extend_from_slice(&(len as u32).to_be_bytes());
    for (_, block) in filler_blocks(filler_seed(id), len) {
        buf.extend_from_slice(block);
    }
    Bytes::from(buf)
}

/// The id of a payload made by [`encode`], after checking every byte of it.
///
/// # Errors
/// A [`PayloadError`] saying what is wrong.
pub fn decode(payload: &[u8]) -> Result<MsgId, PayloadError> {
    if payload.len() < HEADER_LEN {
        return Err(PayloadError::Short(payload.len()));
    }
    if payload[..4] != MAGIC {
        return Err(PayloadError::BadMagic);
    }
    let u32_at = |at: usize| {
        u32::from_be_bytes([
            payload[at],
            payload[at + 1],
            payload[at + 2],
            payload[at + 3],
        ])
    };
    let mut counter = [0u8; 8];
    counter.copy_from_slice(&payload[12..20]);
    let id = MsgId {
        node: NodeId(u32_at(4)),
        incarnation: u32_at(8),
        counter: u64::from_be_bytes(counter),
    };
    let announced = u32_at(20) as usize;
    if announced != payload.len() {
        return Err(PayloadError::Length {
            announced,
            actual: payload.len(),
        });
    }
    for (at, block) in filler_blocks(filler_seed(id), payload.len()) {
        let got = &payload[at..at + block.len()];
        if got != block {
            let k = got.iter().zip(block).position(|(a, b)| a != b).unwrap_or(0);
            return Err(PayloadError::Filler { at: at + k });
        }
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_damage() {
        let id = MsgId {
            node: NodeId(7),
            incarnation: 2,
            counter: 99,
        };
        for len in [0, HEADER_LEN, 100, 70_000] {
            let p = encode(id, len);
            assert_eq!(p.len(), len.max(HEADER_LEN));
            assert_eq!(decode(&p), Ok(id));
        }
        let p = encode(id, 3000);
        assert_eq!(
            decode(&p[..2999]),
            Err(PayloadError::Length {
                announced: 3000,
                actual: 2999
            })
        );
        let mut bad = p.to_vec();
        bad[1500] ^= 1;
        assert_eq!(decode(&bad), Err(PayloadError::Filler { at: 1500 }));
        // A fragment shifted by one frame's worth does not fit the pattern.
        let mut shifted = p.to_vec();
        shifted.copy_within(HEADER_LEN + 1400..3000, HEADER_LEN);
        assert!(matches!(decode(&shifted), Err(PayloadError::Filler { .. })));
        assert_eq!(decode(b"short"), Err(PayloadError::Short(5)));
        let mut magic = p.to_vec();
        magic[0] = b'X';
        assert_eq!(decode(&magic), Err(PayloadError::BadMagic));
    }
}
