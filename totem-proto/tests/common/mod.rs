//! Shared test helpers: the hex-vector parser, the golden vectors (`tests/vectors/*.hex`),
//! the `Repr`s and frame heads they encode, the two programmatic 384-entry frames, and a
//! seeded PRNG.
//!
//! The vectors were written from the layout diagrams in `src/*.rs`, not from the crate's
//! `emit`, so they check the encoder against the documented format.
// Each test crate uses its own subset of these helpers.
#![allow(dead_code)]

/// The fuzz properties, the same file the library compiles under `--cfg fuzzing`.
/// Its items are `pub` for the fuzz crate; here they are only reachable in this crate.
#[allow(unreachable_pub)]
#[path = "../../src/fuzzing.rs"]
pub(crate) mod fuzzing;

// What src/fuzzing.rs names through `super::` (the library's root re-exports them).
extern crate alloc;
use totem_proto::{
    Body, DecodeError, EmitBody, Frame, HEADER_LEN, Header, Mcast, MembCommitToken, MembJoin,
    MergeDetect, OrfToken, Pack, PackWriter, Progress, Record, RecordKind, TokenHoldCancel,
    emit_frame, header, pack,
};

use totem_proto::memb_commit_token;
use totem_proto::orf_token::RtrEntry;
use totem_proto::{
    CommitMember, Flags, FrameHead, Guarantee, HeaderRepr, MAX_NODES, McastRepr,
    MembCommitTokenRepr, MembJoinRepr, MergeDetectRepr, MessageType, NodeId, OrfTokenRepr, RTR_MAX,
    RingId, TokenHoldCancelRepr,
};

/// Parses a hex vector: `#` starts a comment that runs to the end of the line; whitespace is
/// ignored; everything else is pairs of hex digits.
///
/// # Panics
/// On a character that is not a hex digit, or an odd number of digits (a broken vector).
pub(crate) fn hex(text: &str) -> Vec<u8> {
    let mut digits = Vec::new();
    for line in text.lines() {
        let code = line.split('#').next().unwrap_or("");
        for c in code.chars().filter(|c| !c.is_whitespace()) {
            let d = c
                .to_digit(16)
                .unwrap_or_else(|| panic!("not a hex digit: {c:?} in {line:?}"));
            digits.push(d as u8);
        }
    }
    assert!(digits.len() % 2 == 0, "odd number of hex digits");
    digits.chunks(2).map(|p| (p[0] << 4) | p[1]).collect()
}

/// Every vector file, by name (without `.hex`).
pub(crate) const VECTORS: &[(&str, &str)] = &[
    ("header", include_str!("../vectors/header.hex")),
    (
        "orf_token_rtr0",
        include_str!("../vectors/orf_token_rtr0.hex"),
    ),
    (
        "orf_token_rtr1",
        include_str!("../vectors/orf_token_rtr1.hex"),
    ),
    (
        "orf_token_rtr30",
        include_str!("../vectors/orf_token_rtr30.hex"),
    ),
    ("mcast_agreed", include_str!("../vectors/mcast_agreed.hex")),
    ("mcast_safe", include_str!("../vectors/mcast_safe.hex")),
    (
        "mcast_encapsulated",
        include_str!("../vectors/mcast_encapsulated.hex"),
    ),
    ("memb_join", include_str!("../vectors/memb_join.hex")),
    (
        "memb_join_leave",
        include_str!("../vectors/memb_join_leave.hex"),
    ),
    (
        "memb_join_empty_fail",
        include_str!("../vectors/memb_join_empty_fail.hex"),
    ),
    (
        "memb_join_384_prefix",
        include_str!("../vectors/memb_join_384_prefix.hex"),
    ),
    (
        "memb_commit_token_3",
        include_str!("../vectors/memb_commit_token_3.hex"),
    ),
    (
        "memb_commit_token_384_prefix",
        include_str!("../vectors/memb_commit_token_384_prefix.hex"),
    ),
    ("merge_detect", include_str!("../vectors/merge_detect.hex")),
    (
        "token_hold_cancel",
        include_str!("../vectors/token_hold_cancel.hex"),
    ),
    ("pack_whole3", include_str!("../vectors/pack_whole3.hex")),
    (
        "pack_ends_first",
        include_str!("../vectors/pack_ends_first.hex"),
    ),
    (
        "pack_middle_only",
        include_str!("../vectors/pack_middle_only.hex"),
    ),
    (
        "pack_last_then_whole",
        include_str!("../vectors/pack_last_then_whole.hex"),
    ),
];

/// The bytes of vector `name`.
///
/// # Panics
/// If there is no such vector.
pub(crate) fn vector(name: &str) -> Vec<u8> {
    let (_, text) = VECTORS
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no vector {name}"));
    hex(text)
}

/// Names of the vectors that are whole frames (header and body).
pub(crate) const FRAME_VECTORS: &[&str] = &[
    "orf_token_rtr0",
    "orf_token_rtr1",
    "orf_token_rtr30",
    "mcast_agreed",
    "mcast_safe",
    "mcast_encapsulated",
    "memb_join",
    "memb_join_leave",
    "memb_join_empty_fail",
    "memb_commit_token_3",
    "merge_detect",
    "token_hold_cancel",
];

/// Names of the vectors that are packed payloads.
pub(crate) const PACK_VECTORS: &[&str] = &[
    "pack_whole3",
    "pack_ends_first",
    "pack_middle_only",
    "pack_last_then_whole",
];

/// Every whole frame: the frame vectors and the two programmatic 384-entry frames.
pub(crate) fn all_frames() -> Vec<(&'static str, Vec<u8>)> {
    let mut v: Vec<_> = FRAME_VECTORS.iter().map(|n| (*n, vector(n))).collect();
    v.push(("memb_join_384", join_384_bytes()));
    v.push(("memb_commit_token_384", commit_384_bytes()));
    v
}

/// Every packed-payload vector.
pub(crate) fn all_packs() -> Vec<(&'static str, Vec<u8>)> {
    PACK_VECTORS.iter().map(|n| (*n, vector(n))).collect()
}

/// The cluster id in every vector's header.
pub(crate) const CLUSTER: u32 = 0x7465_6d31;

/// A frame head as in the vectors: version 1, [`CLUSTER`].
pub(crate) fn head(sender: u32, flags: Flags) -> FrameHead {
    FrameHead {
        version: 1,
        cluster_id: CLUSTER,
        sender: NodeId(sender),
        flags,
    }
}

/// The header `Frame::parse` reports for a frame emitted with `head` and a body of `ty`.
pub(crate) fn header_of(head: FrameHead, ty: MessageType) -> HeaderRepr {
    HeaderRepr {
        version: head.version,
        msg_type: ty,
        cluster_id: head.cluster_id,
        sender: head.sender,
        flags: head.flags,
    }
}

/// Ring 1.100, the "current" ring of most vectors.
pub(crate) const RING: RingId = RingId {
    seq: 0x100,
    rep: NodeId(1),
};

pub(crate) fn ids(list: &[u32]) -> heapless::Vec<NodeId, MAX_NODES> {
    list.iter().map(|&i| NodeId(i)).collect()
}

// ---- ORF tokens -----------------------------------------------------------------------

fn orf(aru_id: Option<u32>, retrans_flg: bool, rtr: &[RtrEntry]) -> OrfTokenRepr {
    OrfTokenRepr {
        ring_id: RING,
        token_seq: 0x1001,
        seq: 0x2002,
        aru: 0x1ff0,
        aru_id: aru_id.map(NodeId),
        backlog: 17,
        fcc: 34,
        retrans_flg,
        rtr: rtr.iter().copied().collect(),
    }
}

pub(crate) fn orf_token_rtr0() -> OrfTokenRepr {
    orf(Some(3), false, &[])
}

pub(crate) fn orf_token_rtr1() -> OrfTokenRepr {
    orf(
        None,
        true,
        &[RtrEntry {
            ring_id: RingId::new(NodeId(1), 0xff),
            seq: 0x1ff5,
        }],
    )
}

/// Entry `i` of `orf_token_rtr30.hex`.
pub(crate) fn rtr30_entry(i: usize) -> RtrEntry {
    RtrEntry {
        ring_id: RING,
        seq: 0x1ff1 + i as u64,
    }
}

pub(crate) fn orf_token_rtr30() -> OrfTokenRepr {
    let rtr: Vec<RtrEntry> = (0..RTR_MAX).map(rtr30_entry).collect();
    orf(Some(2), false, &rtr)
}

// ---- MCAST ------------------------------------------------------------------------------

pub(crate) fn mcast_agreed() -> McastRepr<'static> {
    McastRepr {
        ring_id: RING,
        seq: 0x2001,
        originator: NodeId(2),
        guarantee: Guarantee::Agreed,
        payload: b"hello",
    }
}

/// The packed payload of `mcast_safe.hex`: one Whole record, service 7, "abc".
pub(crate) const MCAST_SAFE_PAYLOAD: &[u8] = &[0, 1, 0, 7, 0, 0, 3, b'a', b'b', b'c'];

pub(crate) fn mcast_safe() -> McastRepr<'static> {
    McastRepr {
        ring_id: RING,
        seq: 0x2002,
        originator: NodeId(2),
        guarantee: Guarantee::Safe,
        payload: MCAST_SAFE_PAYLOAD,
    }
}

/// Encapsulates the whole `mcast_agreed.hex` frame (leaked: a test lives that long anyway).
pub(crate) fn mcast_encapsulated() -> McastRepr<'static> {
    McastRepr {
        ring_id: RingId::new(NodeId(1), 0x104),
        seq: 1,
        originator: NodeId(2),
        guarantee: Guarantee::Agreed,
        payload: vector("mcast_agreed").leak(),
    }
}

// ---- joins ------------------------------------------------------------------------------

pub(crate) fn memb_join() -> MembJoinRepr {
    MembJoinRepr {
        ring_seq: 0x100,
        version_min: 1,
        version_max: 2,
        proc_list: ids(&[1, 2, 3, 5]),
        fail_list: ids(&[5]),
    }
}

pub(crate) fn memb_join_leave() -> MembJoinRepr {
    MembJoinRepr {
        ring_seq: 0x100,
        version_min: 1,
        version_max: 1,
        proc_list: ids(&[1, 2]),
        fail_list: ids(&[3]),
    }
}

pub(crate) fn memb_join_empty_fail() -> MembJoinRepr {
    MembJoinRepr {
        ring_seq: 0x104,
        version_min: 1,
        version_max: 1,
        proc_list: ids(&[1, 2, 3]),
        fail_list: ids(&[]),
    }
}

/// Proc id `i` of the 384-entry join: ascending, spread over three bytes.
pub(crate) fn join_384_proc(i: usize) -> u32 {
    0x10 + i as u32 * 0x0001_0101
}

/// The 384-entry join: a full proc list, the last two procs failed.
pub(crate) fn join_384() -> MembJoinRepr {
    let procs: Vec<u32> = (0..MAX_NODES).map(join_384_proc).collect();
    MembJoinRepr {
        ring_seq: 0x200,
        version_min: 1,
        version_max: 1,
        proc_list: ids(&procs),
        fail_list: ids(&procs[MAX_NODES - 2..]),
    }
}

/// `memb_join_384_prefix.hex` followed by the ids, encoded here by hand (big-endian u32s).
pub(crate) fn join_384_bytes() -> Vec<u8> {
    let mut b = vector("memb_join_384_prefix");
    let procs = (0..MAX_NODES).map(join_384_proc);
    let fails = (MAX_NODES - 2..MAX_NODES).map(join_384_proc);
    for id in procs.chain(fails) {
        b.extend_from_slice(&id.to_be_bytes());
    }
    b
}

pub(crate) fn join_384_head() -> FrameHead {
    head(0x101, Flags::NONE)
}

// ---- commit tokens ----------------------------------------------------------------------

fn member(node: u32, old: RingId, aru: u64, high_delivered: u64, received: bool) -> CommitMember {
    CommitMember {
        node: NodeId(node),
        old_ring_id: old,
        aru,
        high_delivered,
        received,
    }
}

pub(crate) fn memb_commit_token_3() -> MembCommitTokenRepr {
    let members = [
        member(1, RING, 0x2002, 0x2001, true),
        member(2, RING, 0x1ff0, 0x1ff0, true),
        member(5, RingId::new(NodeId(5), 0xf8), 0x30, 0x2f, false),
    ];
    MembCommitTokenRepr {
        ring_id: RingId::new(NodeId(1), 0x104),
        token_seq: 2,
        wire_version: 1,
        memb_index: 2,
        members: members.into_iter().collect(),
    }
}

/// Member `i` of the 384-member commit token; the first 200 have filled in their entry.
pub(crate) fn commit_384_member(i: usize) -> CommitMember {
    let k = i as u32 % 4;
    member(
        7 + 5 * i as u32,
        RingId::new(NodeId(7 + k), 0x2f0 + u64::from(k)),
        0x1000 + 3 * i as u64,
        0x1000 + 2 * i as u64,
        i < 200,
    )
}

pub(crate) fn commit_384() -> MembCommitTokenRepr {
    MembCommitTokenRepr {
        ring_id: RingId::new(NodeId(7), 0x300),
        token_seq: 1,
        wire_version: 1,
        memb_index: 200,
        members: (0..MAX_NODES).map(commit_384_member).collect(),
    }
}

/// `memb_commit_token_384_prefix.hex` followed by the member entries, encoded here by hand.
pub(crate) fn commit_384_bytes() -> Vec<u8> {
    let mut b = vector("memb_commit_token_384_prefix");
    for i in 0..MAX_NODES {
        let m = commit_384_member(i);
        let start = b.len();
        b.extend_from_slice(&m.node.0.to_be_bytes());
        b.extend_from_slice(&m.old_ring_id.rep.0.to_be_bytes());
        b.extend_from_slice(&m.old_ring_id.seq.to_be_bytes());
        b.extend_from_slice(&m.aru.to_be_bytes());
        b.extend_from_slice(&m.high_delivered.to_be_bytes());
        b.push(u8::from(m.received));
        assert_eq!(b.len() - start, memb_commit_token::MEMBER_LEN);
    }
    b
}

pub(crate) fn commit_384_head() -> FrameHead {
    head(7, Flags::NONE)
}

// ---- ring-id-only messages --------------------------------------------------------------

pub(crate) fn merge_detect() -> MergeDetectRepr {
    MergeDetectRepr { ring_id: RING }
}

pub(crate) fn token_hold_cancel() -> TokenHoldCancelRepr {
    TokenHoldCancelRepr { ring_id: RING }
}

// ---- PRNG -------------------------------------------------------------------------------

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, seeded, good enough to drive mutations.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix64(pub u64);

impl SplitMix64 {
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform-enough in `0..n` (`n > 0`).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub(crate) fn byte(&mut self) -> u8 {
        self.next_u64() as u8
    }

    /// `true` with probability `1 / n`.
    pub(crate) fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    pub(crate) fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            *b = self.byte();
        }
    }
}
