//! What every receiver checks: each sender's messages arrive numbered 0, 1, 2, ... with
//! nothing missing, doubled or reordered; bodies match their hash (`--verify`); and a
//! running hash of the whole delivery order, which members compare at the end of each run
//! (`--verify`: equal hashes ⇔ same messages in the same order, EVS agreed order).

use alloc::collections::BTreeMap;

use crate::msg::{self, HASH_START, Header, Kind};

/// The checks of one process, over its whole life in the group.
#[derive(Debug)]
pub(crate) struct Checker {
    /// Next expected `seq` per sender `(nodeid, pid)`.
    next_seq: BTreeMap<(u32, u32), u64>,
    /// The running hash of every message delivered so far.
    pub(crate) hash: u64,
    /// Problems found so far (each run compares before/after).
    pub(crate) errors: u64,
    verify_bodies: bool,
}

impl Checker {
    pub(crate) fn new(verify_bodies: bool) -> Self {
        Self {
            next_seq: BTreeMap::new(),
            hash: HASH_START,
            errors: 0,
            verify_bodies,
        }
    }

    /// One delivered cpgbench message from `sender`. Problems are counted and the first
    /// few are described on stderr.
    pub(crate) fn on_message(&mut self, sender: (u32, u32), h: &Header, msg: &[u8]) {
        self.hash = msg::mix_delivery(self.hash, sender.0, sender.1, h);
        let expected = self
            .next_seq
            .insert(sender, h.seq.wrapping_add(1))
            .unwrap_or(0);
        if h.seq != expected {
            self.fail(format_args!(
                "sender {}/{}: message {} delivered when {} was due",
                sender.0, sender.1, h.seq, expected
            ));
        }
        if h.kind == Kind::Data {
            if msg.len() != h.size as usize {
                self.fail(format_args!(
                    "sender {}/{}: message {} has {} bytes, run size {}",
                    sender.0,
                    sender.1,
                    h.seq,
                    msg.len(),
                    h.size
                ));
            } else if self.verify_bodies && msg::body_hash(&msg[msg::HEADER_LEN..]) != h.b {
                self.fail(format_args!(
                    "sender {}/{}: message {}: body does not match its hash",
                    sender.0, sender.1, h.seq
                ));
            }
        }
    }

    /// A message in the group that is not cpgbench's.
    pub(crate) fn on_foreign(&mut self, sender: (u32, u32), len: usize) {
        self.fail(format_args!(
            "sender {}/{}: a {len}-byte message that is not cpgbench's",
            sender.0, sender.1
        ));
    }

    fn fail(&mut self, what: core::fmt::Arguments<'_>) {
        self.errors += 1;
        if self.errors <= 10 {
            eprintln!("cpgbench: ORDER: {what}");
        }
    }
}

/// The `p`-th percentile (0..=100) of `sorted`, nearest-rank.
pub(crate) fn percentile(sorted: &[u64], p: u32) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (sorted.len() * p as usize).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(seq: u64, body: &[u8]) -> (Header, Vec<u8>) {
        let h = Header {
            kind: Kind::Data,
            run: 1,
            size: (msg::HEADER_LEN + body.len()) as u32,
            seq,
            a: 0,
            b: msg::body_hash(body),
        };
        let mut m = h.encode().to_vec();
        m.extend_from_slice(body);
        (h, m)
    }

    #[test]
    fn a_clean_stream_passes() {
        let mut c = Checker::new(true);
        for seq in 0..5 {
            let (h, m) = data(seq, b"abcdefghij");
            c.on_message((1, 10), &h, &m);
            c.on_message((2, 20), &h, &m);
        }
        assert_eq!(c.errors, 0);
    }

    #[test]
    fn gaps_duplicates_reorders_and_bad_bodies_are_caught() {
        for seqs in [&[0u64, 2][..], &[0, 1, 1], &[1, 0], &[5]] {
            let mut c = Checker::new(false);
            for &s in seqs {
                let (h, m) = data(s, b"x");
                c.on_message((1, 1), &h, &m);
            }
            assert!(c.errors > 0, "{seqs:?}");
        }
        let mut c = Checker::new(true);
        let (h, mut m) = data(0, b"body!");
        *m.last_mut().unwrap() ^= 0xff;
        c.on_message((1, 1), &h, &m);
        assert_eq!(c.errors, 1);
        // Without --verify the body is not looked at, the length still is.
        let mut c = Checker::new(false);
        c.on_message((1, 1), &h, &m);
        assert_eq!(c.errors, 0);
        c.on_message((1, 1), &data(1, b"x").0, &m);
        assert_eq!(c.errors, 1);
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50), Some(50));
        assert_eq!(percentile(&v, 99), Some(99));
        assert_eq!(percentile(&[7], 99), Some(7));
        assert_eq!(percentile(&[], 50), None);
    }
}
