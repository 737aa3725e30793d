//! Property tests: `parse(emit(x)) == x` for every `Repr` over arbitrary valid values
//! (sorted, unique, non-zero id lists of any length up to `MAX_NODES`, rtr lists up to
//! `RTR_MAX`, random payloads), for whole frames through `emit_frame` and `Frame::parse`,
//! and for the pack format through `PackWriter` and `Pack::records`.
//!
//! Every emit goes into a buffer pre-filled with noise, so a byte `emit` forgets to write
//! cannot hide behind zeros.

mod common;

use common::fuzzing::{check_frame, check_pack, repack};
use proptest::collection::{btree_set, vec};
use proptest::prelude::*;
use totem_proto::orf_token::RtrEntry;
use totem_proto::{
    Body, CommitMember, EmitBody, Flags, Frame, FrameHead, Guarantee, HEADER_LEN, MAX_NODES, Mcast,
    McastRepr, MembCommitToken, MembCommitTokenRepr, MembJoin, MembJoinRepr, MergeDetect,
    MergeDetectRepr, MessageType, NodeId, OrfToken, OrfTokenRepr, Pack, PackWriter, Progress,
    RTR_MAX, RecordKind, RingId, ServiceId, TokenHoldCancel, TokenHoldCancelRepr, WIRE_VERSION_MAX,
    WIRE_VERSION_MIN, emit_frame,
};

const NOISE: u8 = 0x5a;

fn node() -> impl Strategy<Value = NodeId> {
    (1..=u32::MAX).prop_map(NodeId)
}

fn ring_id() -> impl Strategy<Value = RingId> {
    (node(), any::<u64>()).prop_map(|(rep, seq)| RingId::new(rep, seq))
}

/// A strictly ascending list of non-zero ids, of any length up to `max`. Small ids half of
/// the time, so lists also sit densely next to each other.
fn id_list(max: usize) -> impl Strategy<Value = heapless::Vec<NodeId, MAX_NODES>> {
    let ids = prop_oneof![1..=u32::MAX, 1..=2 * MAX_NODES as u32];
    btree_set(ids, 0..=max).prop_map(|s| s.into_iter().map(NodeId).collect())
}

fn orf_token() -> impl Strategy<Value = OrfTokenRepr> {
    let rtr = vec((ring_id(), any::<u64>()), 0..=RTR_MAX);
    (
        ring_id(),
        any::<[u64; 3]>(),
        proptest::option::of(node()),
        any::<[u32; 2]>(),
        any::<bool>(),
        rtr,
    )
        .prop_map(
            |(ring_id, [token_seq, seq, aru], aru_id, [backlog, fcc], retrans_flg, rtr)| {
                OrfTokenRepr {
                    ring_id,
                    token_seq,
                    seq,
                    aru,
                    aru_id,
                    backlog,
                    fcc,
                    retrans_flg,
                    rtr: rtr
                        .into_iter()
                        .map(|(ring_id, seq)| RtrEntry { ring_id, seq })
                        .collect(),
                }
            },
        )
}

/// MCAST fields and an owned payload (the `Repr` borrows it).
fn mcast() -> impl Strategy<Value = (RingId, u64, NodeId, Guarantee, Vec<u8>)> {
    let guarantee = prop_oneof![Just(Guarantee::Agreed), Just(Guarantee::Safe)];
    (
        ring_id(),
        any::<u64>(),
        node(),
        guarantee,
        vec(any::<u8>(), 0..2048),
    )
}

fn join() -> impl Strategy<Value = MembJoinRepr> {
    let versions = (1..=u8::MAX).prop_flat_map(|min| (Just(min), min..=u8::MAX));
    (
        any::<u64>(),
        versions,
        id_list(MAX_NODES),
        id_list(MAX_NODES),
    )
        .prop_map(
            |(ring_seq, (version_min, version_max), proc_list, fail_list)| MembJoinRepr {
                ring_seq,
                version_min,
                version_max,
                proc_list,
                fail_list,
            },
        )
}

fn commit_token() -> impl Strategy<Value = MembCommitTokenRepr> {
    let entry = (ring_id(), any::<u64>(), any::<u64>(), any::<bool>());
    (id_list(MAX_NODES), vec(entry, MAX_NODES))
        .prop_filter("a ring has a member", |(ids, _)| !ids.is_empty())
        .prop_flat_map(|(ids, entries)| {
            let n = ids.len();
            let members: heapless::Vec<CommitMember, MAX_NODES> = ids
                .iter()
                .zip(entries)
                .map(
                    |(&node, (old_ring_id, aru, high_delivered, received))| CommitMember {
                        node,
                        old_ring_id,
                        aru,
                        high_delivered,
                        received,
                    },
                )
                .collect();
            let rep = members[0].node;
            (
                Just(members),
                any::<u64>(),
                WIRE_VERSION_MIN..=WIRE_VERSION_MAX,
                0..=n as u16,
                any::<u64>(),
            )
                .prop_map(
                    move |(members, token_seq, wire_version, memb_index, seq)| {
                        MembCommitTokenRepr {
                            ring_id: RingId::new(rep, seq),
                            token_seq,
                            wire_version,
                            memb_index,
                            members,
                        }
                    },
                )
        })
}

fn frame_head(flags: Flags) -> impl Strategy<Value = FrameHead> {
    (any::<u32>(), node()).prop_map(move |(cluster_id, sender)| FrameHead {
        version: 1,
        cluster_id,
        sender,
        flags,
    })
}

/// Emits `body` as a whole frame into a noisy buffer, parses it back, and checks the header,
/// the dispatch, that `get` finds an equal `Repr`, and the fuzz property on the bytes.
fn frame_round_trip<B: EmitBody + PartialEq + core::fmt::Debug>(
    head: FrameHead,
    body: &B,
    get: impl Fn(&Body<'_>) -> Option<B>,
) -> Result<(), TestCaseError> {
    let mut buf = vec![NOISE; HEADER_LEN + body.body_len() + 3];
    let n = emit_frame(&head, body, &mut buf).unwrap();
    prop_assert_eq!(n, HEADER_LEN + body.body_len());
    let frame = Frame::parse(&buf[..n]).unwrap();
    prop_assert_eq!(frame.header.msg_type, B::MSG_TYPE);
    prop_assert_eq!(
        (
            frame.header.version,
            frame.header.cluster_id,
            frame.header.sender,
            frame.header.flags
        ),
        (head.version, head.cluster_id, head.sender, head.flags)
    );
    let got = get(&frame.body);
    prop_assert_eq!(got.as_ref(), Some(body));
    prop_assert!(check_frame(&buf[..n]));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn orf_token_repr_round_trips(repr in orf_token()) {
        let mut buf = vec![NOISE; repr.buffer_len()];
        repr.emit(&mut OrfToken::new_unchecked(&mut buf[..]));
        let parsed = OrfTokenRepr::parse(&OrfToken::new_checked(&buf[..]).unwrap()).unwrap();
        prop_assert_eq!(parsed, repr);
    }

    #[test]
    fn mcast_repr_round_trips((ring_id, seq, originator, guarantee, payload) in mcast()) {
        let repr = McastRepr { ring_id, seq, originator, guarantee, payload: &payload };
        let mut buf = vec![NOISE; repr.buffer_len()];
        repr.emit(&mut Mcast::new_unchecked(&mut buf[..]));
        let parsed = McastRepr::parse(&Mcast::new_checked(&buf[..]).unwrap()).unwrap();
        prop_assert_eq!(parsed, repr);
    }

    #[test]
    fn memb_join_repr_round_trips(repr in join()) {
        let mut buf = vec![NOISE; repr.buffer_len()];
        repr.emit(&mut MembJoin::new_unchecked(&mut buf[..]));
        let parsed = MembJoinRepr::parse(&MembJoin::new_checked(&buf[..]).unwrap()).unwrap();
        prop_assert_eq!(parsed, repr);
    }

    #[test]
    fn memb_commit_token_repr_round_trips(repr in commit_token()) {
        let mut buf = vec![NOISE; repr.buffer_len()];
        repr.emit(&mut MembCommitToken::new_unchecked(&mut buf[..]));
        let view = MembCommitToken::new_checked(&buf[..]).unwrap();
        prop_assert_eq!(MembCommitTokenRepr::parse(&view).unwrap(), repr);
    }

    #[test]
    fn merge_detect_and_hold_cancel_reprs_round_trip(ring_id in ring_id()) {
        let md = MergeDetectRepr { ring_id };
        let mut buf = vec![NOISE; md.buffer_len()];
        md.emit(&mut MergeDetect::new_unchecked(&mut buf[..]));
        prop_assert_eq!(MergeDetectRepr::parse(&MergeDetect::new_checked(&buf[..]).unwrap()), Ok(md));
        let thc = TokenHoldCancelRepr { ring_id };
        let mut buf = vec![NOISE; thc.buffer_len()];
        thc.emit(&mut TokenHoldCancel::new_unchecked(&mut buf[..]));
        let view = TokenHoldCancel::new_checked(&buf[..]).unwrap();
        prop_assert_eq!(TokenHoldCancelRepr::parse(&view), Ok(thc));
    }

    #[test]
    fn orf_token_frames_round_trip(head in frame_head(Flags::NONE), repr in orf_token()) {
        frame_round_trip(head, &repr, |b| match b {
            Body::OrfToken(v) => OrfTokenRepr::parse(v).ok(),
            _ => None,
        })?;
    }

    #[test]
    fn mcast_frames_round_trip(
        encapsulated in any::<bool>(),
        head in frame_head(Flags::NONE),
        (ring_id, seq, originator, guarantee, payload) in mcast(),
    ) {
        let flags = if encapsulated { Flags::ENCAPSULATED } else { Flags::NONE };
        let head = FrameHead { flags, ..head };
        let repr = McastRepr { ring_id, seq, originator, guarantee, payload: &payload };
        // McastRepr borrows, so compare it field by field through the view.
        let mut buf = vec![NOISE; HEADER_LEN + repr.buffer_len()];
        let n = emit_frame(&head, &repr, &mut buf).unwrap();
        let frame = Frame::parse(&buf[..n]).unwrap();
        prop_assert_eq!(frame.header.msg_type, MessageType::Mcast);
        prop_assert_eq!(frame.header.flags, flags);
        let Body::Mcast(v) = &frame.body else { return Err(TestCaseError::fail("not MCAST")) };
        prop_assert_eq!(McastRepr::parse(v).unwrap(), repr);
        // An encapsulated random payload is no frame; check_frame must say so, not panic.
        prop_assert!(check_frame(&buf[..n]));
    }

    #[test]
    fn memb_join_frames_round_trip(
        leave in any::<bool>(),
        head in frame_head(Flags::NONE),
        repr in join(),
    ) {
        let head = FrameHead { flags: if leave { Flags::LEAVE } else { Flags::NONE }, ..head };
        frame_round_trip(head, &repr, |b| match b {
            Body::MembJoin(v) => MembJoinRepr::parse(v).ok(),
            _ => None,
        })?;
    }

    #[test]
    fn memb_commit_token_frames_round_trip(head in frame_head(Flags::NONE), repr in commit_token()) {
        frame_round_trip(head, &repr, |b| match b {
            Body::MembCommitToken(v) => MembCommitTokenRepr::parse(v).ok(),
            _ => None,
        })?;
    }

    #[test]
    fn ring_id_only_frames_round_trip(head in frame_head(Flags::NONE), ring_id in ring_id()) {
        frame_round_trip(head, &MergeDetectRepr { ring_id }, |b| match b {
            Body::MergeDetect(v) => MergeDetectRepr::parse(v).ok(),
            _ => None,
        })?;
        frame_round_trip(head, &TokenHoldCancelRepr { ring_id }, |b| match b {
            Body::TokenHoldCancel(v) => TokenHoldCancelRepr::parse(v).ok(),
            _ => None,
        })?;
    }

    /// Random messages (mostly small, some many frames long) packed into frames of a random
    /// capacity: every frame parses, re-packs to itself, and the records rejoin into exactly
    /// the messages that went in.
    #[test]
    fn packed_messages_round_trip(
        msgs in vec((0..4u16, prop_oneof![
            4 => vec(any::<u8>(), 0..200),
            1 => vec(any::<u8>(), 200..5000),
        ]), 1..40),
        cap in 12..1500usize,
        min_first in 0..64usize,
    ) {
        let msgs: Vec<(ServiceId, Vec<u8>)> =
            msgs.into_iter().map(|(s, m)| (ServiceId(s), m)).collect();
        let mut frames = Vec::new();
        let mut buf = vec![NOISE; cap];
        let mut w = PackWriter::new(&mut buf).unwrap();
        for (svc, msg) in &msgs {
            let mut offset = 0;
            while w.push_part(*svc, msg, &mut offset, min_first) != Progress::Complete {
                let n = w.finish();
                prop_assert!(n > 0, "no progress on an empty frame");
                frames.push(buf[..n].to_vec());
                buf.fill(NOISE);
                w = PackWriter::new(&mut buf).unwrap();
            }
        }
        let n = w.finish();
        if n > 0 {
            frames.push(buf[..n].to_vec());
        }

        let mut got: Vec<(ServiceId, Vec<u8>)> = Vec::new();
        let mut chain: Option<(ServiceId, usize, Vec<u8>)> = None;
        for f in &frames {
            prop_assert!(f.len() <= cap);
            prop_assert!(check_pack(f));
            let records: Vec<_> = Pack::new_checked(f).unwrap().records().collect();
            let repacked = repack(&records, f.len());
            prop_assert_eq!(repacked.as_ref(), Some(f));
            for r in records {
                match r.kind {
                    RecordKind::Whole => got.push((r.service, r.data.to_vec())),
                    RecordKind::First => {
                        prop_assert!(chain.is_none());
                        chain = Some((r.service, r.total_len.unwrap() as usize, r.data.to_vec()));
                    }
                    _ => {
                        let (svc, total, mut data) = chain.take().unwrap();
                        prop_assert_eq!(svc, r.service);
                        data.extend_from_slice(r.data);
                        if r.kind == RecordKind::Last {
                            prop_assert_eq!(data.len(), total);
                            got.push((svc, data));
                        } else {
                            chain = Some((svc, total, data));
                        }
                    }
                }
            }
        }
        prop_assert!(chain.is_none());
        prop_assert_eq!(got, msgs);
    }
}
