//! The run's trace: one line per input, output, event, submission and fault, printed with
//! `--trace` and hashed for `--check-determinism` (madsim's `MADSIM_TEST_CHECK_DETERMINISM`,
//! openraft's `cmp a.log b.log`: run a seed twice, compare).
//!
//! The hash covers every line and every frame's full bytes, so two runs with equal hashes
//! fed every ring the same datagrams at the same microseconds and got the same outputs.
//! It is FNV-1a (64-bit): not a cryptographic hash, but stable across platforms and Rust
//! versions, unlike `std`'s `DefaultHasher`, and it needs no dependency.
//!
//! Formatting costs time, so the driver asks [`Tracer::on`] before building a line.

use core::fmt::{self, Write as _};
use std::io::Write as _;

use totem_proto::{Body, Frame};
use totem_ring::{ConfigurationKind, Event};

use crate::invariants::Nodes;
use crate::payload;

/// FNV-1a, 64 bits.
#[derive(Debug, Clone, Copy)]
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    /// Adds `bytes`.
    pub fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }

    /// The hash so far.
    pub fn finish(&self) -> u64 {
        self.0
    }
}

/// Where trace lines go.
#[derive(Debug, Default)]
pub struct Tracer {
    print: bool,
    hash: Option<Fnv>,
    line: String,
}

impl Tracer {
    /// A tracer that prints (`print`) and/or hashes (`hash`) lines; neither makes it free.
    pub fn new(print: bool, hash: bool) -> Self {
        Self {
            print,
            hash: hash.then(Fnv::default),
            line: String::new(),
        }
    }

    /// Whether lines are wanted at all.
    pub fn on(&self) -> bool {
        self.print || self.hash.is_some()
    }

    /// Records one line, and the full bytes of the frame it is about, if any.
    pub fn line(&mut self, args: fmt::Arguments<'_>, frame: Option<&[u8]>) {
        if !self.on() {
            return;
        }
        self.line.clear();
        let _ = self.line.write_fmt(args);
        if self.print {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{}", self.line);
        }
        if let Some(h) = &mut self.hash {
            h.write(self.line.as_bytes());
            h.write(b"\n");
            if let Some(f) = frame {
                h.write(f);
            }
        }
    }

    /// The hash of every line so far (0 when not hashing).
    pub fn hash(&self) -> u64 {
        self.hash.map_or(0, |h| h.finish())
    }
}

/// The frame's type and key fields, for a trace line.
#[derive(Debug)]
pub struct FrameSummary<'a>(pub &'a [u8]);

impl fmt::Display for FrameSummary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let frame = match Frame::parse(self.0) {
            Ok(fr) => fr,
            Err(e) => return write!(f, "undecodable {}B ({e})", self.0.len()),
        };
        match frame.body {
            Body::OrfToken(v) => {
                write!(
                    f,
                    "token ring={} tseq={} seq={} aru={} aru_id={} fcc={} backlog={} retrans={} rtr=[",
                    v.ring_id(),
                    v.token_seq(),
                    v.seq(),
                    v.aru(),
                    v.aru_id().map_or(0, |n| n.0),
                    v.fcc(),
                    v.backlog(),
                    v.retrans_flg(),
                )?;
                for (i, e) in v.rtr_list().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{}", e.seq)?;
                }
                f.write_str("]")
            }
            Body::Mcast(v) => {
                let encap = if frame
                    .header
                    .flags
                    .contains(totem_proto::Flags::ENCAPSULATED)
                {
                    " encap"
                } else {
                    ""
                };
                write!(
                    f,
                    "mcast ring={} seq={} orig={} {:?}{encap} {}B",
                    v.ring_id(),
                    v.seq(),
                    v.originator(),
                    v.guarantee(),
                    self.0.len()
                )
            }
            Body::MembJoin(v) => {
                let kind = if frame.header.flags.contains(totem_proto::Flags::LEAVE) {
                    "leave"
                } else {
                    "join"
                };
                let procs: Vec<_> = v.proc_list().iter().collect();
                let fails: Vec<_> = v.fail_list().iter().collect();
                write!(
                    f,
                    "{kind} ring_seq={} proc={} fail={}",
                    v.ring_seq(),
                    Nodes(&procs),
                    Nodes(&fails)
                )
            }
            Body::MembCommitToken(v) => {
                let members: Vec<_> = v.members().map(|m| m.node).collect();
                write!(
                    f,
                    "commit ring={} tseq={} idx={} memb={}",
                    v.ring_id(),
                    v.token_seq(),
                    v.memb_index(),
                    Nodes(&members)
                )
            }
            Body::MergeDetect(v) => write!(f, "merge-detect ring={}", v.ring_id()),
            Body::TokenHoldCancel(v) => write!(f, "hold-cancel ring={}", v.ring_id()),
        }
    }
}

/// A ring event, for a trace line.
#[derive(Debug)]
pub struct EventSummary<'a>(pub &'a Event);

impl fmt::Display for EventSummary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Event::Deliver(d) => {
                match payload::decode(&d.payload) {
                    Ok(id) => write!(f, "deliver {id}")?,
                    Err(e) => write!(f, "deliver ??? ({e})")?,
                }
                write!(
                    f,
                    " from n{} {:?} ring={} {}B",
                    d.sender,
                    d.guarantee,
                    d.ring_id,
                    d.payload.len()
                )
            }
            Event::Configuration(c) => {
                let k = match c.kind {
                    ConfigurationKind::Transitional => "TRANSITIONAL",
                    ConfigurationKind::Regular => "REGULAR",
                };
                write!(
                    f,
                    "{k} ring={} members={} left={} joined={}",
                    c.ring_id,
                    Nodes(&c.members),
                    Nodes(&c.left),
                    Nodes(&c.joined)
                )
            }
            Event::RingSeqUsed(s) => write!(f, "persist ring seq {s:#x}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_matches_the_reference_and_the_tracer_hashes_lines_and_frames() {
        // FNV-1a 64 of "a" (reference value from the FNV authors' test suite).
        let mut h = Fnv::default();
        h.write(b"a");
        assert_eq!(h.finish(), 0xaf63_dc4c_8601_ec8c);
        let mut a = Tracer::new(false, true);
        let mut b = Tracer::new(false, true);
        a.line(format_args!("x {}", 1), Some(b"frame"));
        b.line(format_args!("x {}", 1), Some(b"framf"));
        assert_ne!(a.hash(), b.hash());
        assert_eq!(Tracer::new(false, false).hash(), 0);
        assert!(FrameSummary(b"junk").to_string().starts_with("undecodable"));
    }
}
