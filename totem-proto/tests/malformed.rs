//! Malformed input: each way a frame or pack can be wrong, asserting the exact
//! [`DecodeError`] variant, and the ways `emit_frame` refuses to write.
//!
//! Every case starts from a golden vector and changes one thing, so the error can only come
//! from that change. Offsets below are frame offsets: `B + n` is byte `n` of the body.

mod common;

use common::*;
use totem_proto::{
    Body, CommitMember, DecodeError, EmitError, Flags, Frame, HEADER_LEN, MAX_NODES,
    MembCommitToken, MembCommitTokenRepr, MembJoin, MembJoinRepr, NodeId, OrfToken, OrfTokenRepr,
    Pack, RTR_MAX, RingId, emit_frame,
};

/// Where the body starts in a frame.
const B: usize = HEADER_LEN;

fn err(frame: &[u8]) -> DecodeError {
    match Frame::parse(frame) {
        Ok(f) => panic!("accepted: {f:?}"),
        Err(e) => e,
    }
}

fn pack_err(pack: &[u8]) -> DecodeError {
    match Pack::new_checked(pack) {
        Ok(p) => panic!("accepted: {p:?}"),
        Err(e) => e,
    }
}

/// `bytes` with `new` written at `at`.
fn patched(bytes: &[u8], at: usize, new: &[u8]) -> Vec<u8> {
    let mut b = bytes.to_vec();
    b[at..at + new.len()].copy_from_slice(new);
    b
}

fn invalid(field: &'static str, value: u64) -> DecodeError {
    DecodeError::InvalidValue { field, value }
}

/// Bytes of a body's fixed part, by the message type byte.
fn fixed_body_len(frame: &[u8]) -> usize {
    match frame[3] {
        0 => 50,
        1 => 29,
        2 | 5 => 12,
        3 => 14,
        4 => 25,
        t => panic!("type {t}"),
    }
}

// ---- truncation -------------------------------------------------------------------------

#[test]
fn every_truncation_of_every_frame_is_truncated_with_exact_need() {
    for (name, frame) in all_frames() {
        let fixed = fixed_body_len(&frame);
        for len in 0..frame.len() {
            let want = if len < HEADER_LEN {
                DecodeError::Truncated {
                    need: HEADER_LEN,
                    have: len,
                }
            } else {
                // `need`/`have` count body bytes: first the fixed part, then all of it.
                let have = len - HEADER_LEN;
                let need = if have < fixed {
                    fixed
                } else {
                    frame.len() - HEADER_LEN
                };
                DecodeError::Truncated { need, have }
            };
            assert_eq!(err(&frame[..len]), want, "{name} cut to {len}");
        }
    }
}

#[test]
fn every_truncation_of_every_pack_is_truncated() {
    for (name, pack) in all_packs() {
        for len in 0..pack.len() {
            match pack_err(&pack[..len]) {
                DecodeError::Truncated { need, have } => {
                    assert_eq!(have, len, "{name} cut to {len}");
                    assert!(
                        need > len && need <= pack.len(),
                        "{name} cut to {len}: need {need}"
                    );
                }
                e => panic!("{name} cut to {len}: {e:?}"),
            }
        }
    }
}

#[test]
fn truncated_views_fail_check_len_and_repr_parse_without_panicking() {
    let frame = vector("orf_token_rtr30");
    let body = &frame[B..];
    for len in 0..body.len() {
        let cut = &body[..len];
        assert!(OrfToken::new_checked(cut).is_err());
        assert!(OrfTokenRepr::parse(&OrfToken::new_unchecked(cut)).is_err());
    }
    let frame = commit_384_bytes();
    let body = &frame[B..];
    for len in (0..body.len()).step_by(7) {
        let cut = &body[..len];
        assert!(MembCommitToken::new_checked(cut).is_err());
        assert!(MembCommitTokenRepr::parse(&MembCommitToken::new_unchecked(cut)).is_err());
    }
}

// ---- header -----------------------------------------------------------------------------

#[test]
fn bad_magic_is_rejected_with_the_magic_found() {
    let frame = vector("merge_detect");
    assert_eq!(
        err(&patched(&frame, 0, &[0xc0, 0x70])),
        DecodeError::BadMagic(0xc070)
    );
    assert_eq!(
        err(&patched(&frame, 0, &[0x4d, 0x54])),
        DecodeError::BadMagic(0x4d54)
    );
    assert_eq!(err(&patched(&frame, 0, &[0, 0])), DecodeError::BadMagic(0));
}

#[test]
fn a_corosync_datagram_is_bad_magic_at_the_first_two_bytes() {
    // Whatever follows corosync's 0xC070 (its header is host-order), the magic decides.
    let mut dgram = vec![0xc0, 0x70];
    dgram.extend_from_slice(&[0xff; 60]);
    assert_eq!(err(&dgram), DecodeError::BadMagic(0xc070));
}

#[test]
fn wire_versions_0_and_2_are_unsupported() {
    for frame in [vector("orf_token_rtr0"), vector("memb_join")] {
        assert_eq!(
            err(&patched(&frame, 2, &[0])),
            DecodeError::UnsupportedVersion(0)
        );
        assert_eq!(
            err(&patched(&frame, 2, &[2])),
            DecodeError::UnsupportedVersion(2)
        );
        assert_eq!(
            err(&patched(&frame, 2, &[255])),
            DecodeError::UnsupportedVersion(255)
        );
    }
}

#[test]
fn unknown_message_types_are_rejected() {
    let frame = vector("merge_detect");
    assert_eq!(err(&patched(&frame, 3, &[6])), DecodeError::UnknownType(6));
    assert_eq!(
        err(&patched(&frame, 3, &[255])),
        DecodeError::UnknownType(255)
    );
}

#[test]
fn unknown_flag_bits_are_rejected() {
    let frame = vector("mcast_agreed");
    for flags in [0x0004u16, 0x0100, 0x8000, 0xffff, 0x0007] {
        let bad = patched(&frame, 12, &flags.to_be_bytes());
        assert_eq!(
            err(&bad),
            DecodeError::UnknownFlags(flags),
            "flags {flags:#x}"
        );
    }
}

#[test]
fn encapsulated_is_only_valid_on_mcast() {
    for name in [
        "orf_token_rtr0",
        "memb_join",
        "memb_commit_token_3",
        "merge_detect",
        "token_hold_cancel",
    ] {
        let bad = patched(&vector(name), 12, &[0, 1]);
        assert_eq!(err(&bad), invalid("flags", 1), "{name}");
    }
    let both = patched(&vector("mcast_agreed"), 12, &[0, 3]);
    assert_eq!(err(&both), invalid("flags", 3));
}

#[test]
fn leave_is_only_valid_on_joins() {
    for name in [
        "orf_token_rtr0",
        "mcast_agreed",
        "memb_commit_token_3",
        "merge_detect",
        "token_hold_cancel",
    ] {
        let bad = patched(&vector(name), 12, &[0, 2]);
        assert_eq!(err(&bad), invalid("flags", 2), "{name}");
    }
}

#[test]
fn sender_zero_is_rejected() {
    let bad = patched(&vector("token_hold_cancel"), 8, &[0; 4]);
    assert_eq!(err(&bad), invalid("sender", 0));
}

// ---- ORF token --------------------------------------------------------------------------

#[test]
fn rtr_count_31_is_too_many() {
    let bad = patched(&vector("orf_token_rtr30"), B + 49, &[31]);
    let want = DecodeError::TooManyEntries {
        field: "rtr_list",
        max: RTR_MAX,
    };
    assert_eq!(err(&bad), want);
    // Also when the entries are not there: the count is checked before the length.
    let bad = patched(&vector("orf_token_rtr0"), B + 49, &[255]);
    assert_eq!(err(&bad), want);
    assert_eq!(OrfToken::new_checked(&bad[B..]).unwrap_err(), want);
}

#[test]
fn retrans_flg_2_is_invalid() {
    let bad = patched(&vector("orf_token_rtr1"), B + 48, &[2]);
    assert_eq!(err(&bad), invalid("retrans_flg", 2));
}

#[test]
fn token_ring_rep_zero_is_invalid() {
    let bad = patched(&vector("orf_token_rtr1"), B, &[0; 4]);
    assert_eq!(err(&bad), invalid("ring_id.rep", 0));
    let bad = patched(&vector("orf_token_rtr1"), B + 50, &[0; 4]);
    assert_eq!(err(&bad), invalid("rtr.ring_id.rep", 0));
}

// ---- MCAST ------------------------------------------------------------------------------

#[test]
fn guarantee_7_is_invalid() {
    let bad = patched(&vector("mcast_safe"), B + 28, &[7]);
    assert_eq!(err(&bad), invalid("guarantee", 7));
}

#[test]
fn mcast_originator_zero_is_invalid() {
    let bad = patched(&vector("mcast_safe"), B + 20, &[0; 4]);
    assert_eq!(err(&bad), invalid("originator", 0));
}

#[test]
fn mcast_payload_len_beyond_the_frame_is_truncated() {
    let frame = vector("mcast_agreed");
    let bad = patched(&frame, B + 24, &u32::MAX.to_be_bytes());
    let have = frame.len() - B;
    // need saturates instead of overflowing on 32-bit targets.
    let need = 29 + u32::MAX as usize;
    assert_eq!(err(&bad), DecodeError::Truncated { need, have });
    let bad = patched(&frame, B + 24, &6u32.to_be_bytes());
    assert_eq!(err(&bad), DecodeError::Truncated { need: 35, have });
}

// ---- joins ------------------------------------------------------------------------------

#[test]
fn proc_count_385_is_too_many() {
    let frame = join_384_bytes();
    let bad = patched(&frame, B + 10, &385u16.to_be_bytes());
    let want = DecodeError::TooManyEntries {
        field: "proc_list",
        max: MAX_NODES,
    };
    assert_eq!(err(&bad), want);
    let bad = patched(&vector("memb_join"), B + 10, &u16::MAX.to_be_bytes());
    assert_eq!(err(&bad), want);
    assert_eq!(MembJoin::new_checked(&bad[B..]).unwrap_err(), want);
}

#[test]
fn fail_count_385_is_too_many() {
    let bad = patched(&vector("memb_join"), B + 12, &385u16.to_be_bytes());
    let want = DecodeError::TooManyEntries {
        field: "fail_list",
        max: MAX_NODES,
    };
    assert_eq!(err(&bad), want);
}

#[test]
fn join_version_range_must_be_nonempty_and_start_above_0() {
    let frame = vector("memb_join");
    let bad = patched(&frame, B + 8, &[3, 2]);
    assert_eq!(err(&bad), DecodeError::BadVersionRange { min: 3, max: 2 });
    let bad = patched(&frame, B + 8, &[0, 2]);
    assert_eq!(err(&bad), DecodeError::BadVersionRange { min: 0, max: 2 });
    let bad = patched(&frame, B + 8, &[0, 0]);
    assert_eq!(err(&bad), DecodeError::BadVersionRange { min: 0, max: 0 });
    // A range reaching past this build is fine: it is the peer's, not ours.
    assert!(Frame::parse(&patched(&frame, B + 8, &[1, 255])).is_ok());
}

/// `memb_join.hex`: proc [1, 2, 3, 5] at B+14.., fail [5] at B+30.
#[test]
fn join_lists_must_be_strictly_ascending_without_zero() {
    let frame = vector("memb_join");
    let proc_at = |i: usize| B + 14 + 4 * i;
    // Unsorted: 3 before 2.
    let bad = patched(&frame, proc_at(1), &3u32.to_be_bytes());
    let bad = patched(&bad, proc_at(2), &2u32.to_be_bytes());
    assert_eq!(err(&bad), invalid("proc_list", 2));
    // Duplicate.
    let bad = patched(&frame, proc_at(2), &2u32.to_be_bytes());
    assert_eq!(err(&bad), invalid("proc_list", 2));
    // Zero, first or later.
    assert_eq!(
        err(&patched(&frame, proc_at(0), &[0; 4])),
        invalid("proc_list", 0)
    );
    assert_eq!(
        err(&patched(&frame, proc_at(3), &[0; 4])),
        invalid("proc_list", 0)
    );
    // The fail list, likewise.
    assert_eq!(
        err(&patched(&frame, B + 30, &[0; 4])),
        invalid("fail_list", 0)
    );
    let two_fails = {
        let mut f = patched(&frame, B + 12, &2u16.to_be_bytes());
        f.extend_from_slice(&4u32.to_be_bytes());
        f
    };
    assert_eq!(err(&two_fails), invalid("fail_list", 4));
}

#[test]
fn join_lists_are_checked_to_the_last_of_384_entries() {
    let frame = join_384_bytes();
    let last_proc = B + 14 + 4 * 383;
    let bad = patched(&frame, last_proc, &join_384_proc(382).to_be_bytes());
    assert_eq!(
        err(&bad),
        invalid("proc_list", u64::from(join_384_proc(382)))
    );
}

// ---- commit tokens ----------------------------------------------------------------------

/// Offset of member `i`'s entry in a commit token frame.
fn member_at(i: usize) -> usize {
    B + 25 + 33 * i
}

#[test]
fn commit_count_385_is_too_many_and_0_is_invalid() {
    let frame = commit_384_bytes();
    let bad = patched(&frame, B + 23, &385u16.to_be_bytes());
    assert_eq!(
        err(&bad),
        DecodeError::TooManyEntries {
            field: "members",
            max: MAX_NODES
        }
    );
    let bad = patched(
        &vector("memb_commit_token_3"),
        B + 23,
        &u16::MAX.to_be_bytes(),
    );
    assert_eq!(
        err(&bad),
        DecodeError::TooManyEntries {
            field: "members",
            max: MAX_NODES
        }
    );

    // Count 0 with no entries (memb index 0 too, so only the count is wrong).
    let mut empty = vector("memb_commit_token_3")[..B + 25].to_vec();
    empty[B + 21..B + 25].copy_from_slice(&[0, 0, 0, 0]);
    assert_eq!(err(&empty), invalid("members.len", 0));
}

#[test]
fn memb_index_above_count_is_invalid() {
    let frame = vector("memb_commit_token_3");
    assert!(
        Frame::parse(&patched(&frame, B + 21, &3u16.to_be_bytes())).is_ok(),
        "3 of 3"
    );
    let bad = patched(&frame, B + 21, &4u16.to_be_bytes());
    assert_eq!(err(&bad), invalid("memb_index", 4));
}

#[test]
fn commit_ring_version_must_be_supported() {
    let frame = vector("memb_commit_token_3");
    assert_eq!(
        err(&patched(&frame, B + 20, &[0])),
        DecodeError::UnsupportedVersion(0)
    );
    assert_eq!(
        err(&patched(&frame, B + 20, &[2])),
        DecodeError::UnsupportedVersion(2)
    );
}

#[test]
fn commit_rep_must_be_the_first_member() {
    let frame = vector("memb_commit_token_3");
    let bad = patched(&frame, B, &2u32.to_be_bytes());
    assert_eq!(err(&bad), invalid("ring_id.rep", 2));
    // Rep 0 with first member 0: the same rule catches it, so does the node-0 rule.
    let bad = patched(&patched(&frame, B, &[0; 4]), member_at(0), &[0; 4]);
    assert_eq!(err(&bad), invalid("members.node", 0));
}

#[test]
fn commit_members_must_be_strictly_ascending() {
    let frame = vector("memb_commit_token_3");
    // Members are 1, 2, 5: make the third 2 (duplicate), then 1 (descending).
    let bad = patched(&frame, member_at(2), &2u32.to_be_bytes());
    assert_eq!(err(&bad), invalid("members.node", 2));
    let bad = patched(&frame, member_at(2), &1u32.to_be_bytes());
    assert_eq!(err(&bad), invalid("members.node", 1));
    let bad = patched(&frame, member_at(1), &[0; 4]);
    assert_eq!(err(&bad), invalid("members.node", 0));
}

#[test]
fn commit_member_old_ring_rep_zero_is_invalid() {
    let bad = patched(&vector("memb_commit_token_3"), member_at(1) + 4, &[0; 4]);
    assert_eq!(err(&bad), invalid("members.old_ring_id.rep", 0));
}

#[test]
fn commit_received_flag_2_is_invalid() {
    let bad = patched(&vector("memb_commit_token_3"), member_at(2) + 32, &[2]);
    assert_eq!(err(&bad), invalid("members.received", 2));
    let bad = patched(&commit_384_bytes(), member_at(383) + 32, &[0xff]);
    assert_eq!(err(&bad), invalid("members.received", 255));
}

// ---- ring-id-only messages --------------------------------------------------------------

#[test]
fn merge_detect_and_hold_cancel_rep_zero_is_invalid() {
    for name in ["merge_detect", "token_hold_cancel"] {
        let bad = patched(&vector(name), B, &[0; 4]);
        assert_eq!(err(&bad), invalid("ring_id.rep", 0), "{name}");
    }
}

// ---- trailing bytes ---------------------------------------------------------------------

#[test]
fn trailing_bytes_after_every_message_type_are_rejected() {
    for (name, frame) in all_frames() {
        for extra in [1usize, 3, 33] {
            let mut long = frame.clone();
            long.extend(core::iter::repeat_n(0u8, extra));
            assert_eq!(
                err(&long),
                DecodeError::TrailingBytes(extra),
                "{name} + {extra}"
            );
        }
    }
}

// ---- packs ------------------------------------------------------------------------------

#[test]
fn pack_count_0_is_invalid() {
    assert_eq!(pack_err(&[0, 0]), invalid("pack.count", 0));
    let mut p = vector("pack_whole3");
    p[..2].copy_from_slice(&[0, 0]);
    assert_eq!(pack_err(&p), invalid("pack.count", 0));
}

/// A record: service, kind, data (and the total for `First`).
fn record(service: u16, kind: u8, total: Option<u32>, data: &[u8]) -> Vec<u8> {
    let mut r = service.to_be_bytes().to_vec();
    r.push(kind);
    r.extend_from_slice(&(data.len() as u16).to_be_bytes());
    if let Some(t) = total {
        r.extend_from_slice(&t.to_be_bytes());
    }
    r.extend_from_slice(data);
    r
}

fn pack_of(records: &[Vec<u8>]) -> Vec<u8> {
    let mut p = (records.len() as u16).to_be_bytes().to_vec();
    for r in records {
        p.extend_from_slice(r);
    }
    p
}

#[test]
fn first_must_be_the_last_record() {
    let first = record(3, 1, Some(100), b"abcdefgh");
    let whole = record(1, 0, None, b"x");
    assert!(Pack::new_checked(&pack_of(&[whole.clone(), first.clone()])).is_ok());
    let bad = pack_of(&[first.clone(), whole.clone()]);
    assert_eq!(pack_err(&bad), DecodeError::MisplacedFragment { index: 0 });
    let bad = pack_of(&[whole.clone(), first, whole]);
    assert_eq!(pack_err(&bad), DecodeError::MisplacedFragment { index: 1 });
}

#[test]
fn last_must_be_the_first_record() {
    let last = record(3, 3, None, b"tail");
    let whole = record(1, 0, None, b"x");
    assert!(Pack::new_checked(&pack_of(&[last.clone(), whole.clone()])).is_ok());
    let bad = pack_of(&[whole, last]);
    assert_eq!(pack_err(&bad), DecodeError::MisplacedFragment { index: 1 });
}

#[test]
fn middle_must_be_alone_in_its_frame() {
    let middle = record(3, 2, None, b"middle");
    let whole = record(1, 0, None, b"x");
    assert!(Pack::new_checked(&pack_of(core::slice::from_ref(&middle))).is_ok());
    let bad = pack_of(&[middle.clone(), whole.clone()]);
    assert_eq!(pack_err(&bad), DecodeError::MisplacedFragment { index: 0 });
    let bad = pack_of(&[whole, middle]);
    assert_eq!(pack_err(&bad), DecodeError::MisplacedFragment { index: 1 });
}

#[test]
fn first_total_must_exceed_its_data() {
    for total in [0u32, 7, 8] {
        let bad = pack_of(&[record(3, 1, Some(total), b"abcdefgh")]);
        assert_eq!(
            pack_err(&bad),
            invalid("record.total_len", total.into()),
            "total {total}"
        );
    }
}

#[test]
fn first_total_must_not_fit_whole_in_the_records_place() {
    // A Whole record is 4 bytes shorter than a First: a total of up to len + 4 would have
    // gone whole, and PackWriter would have sent it so. One encoding per frame.
    for total in 9u32..=12 {
        let bad = pack_of(&[record(3, 1, Some(total), b"abcdefgh")]);
        assert_eq!(
            pack_err(&bad),
            invalid("record.total_len", total.into()),
            "total {total}"
        );
    }
    assert!(Pack::new_checked(&pack_of(&[record(3, 1, Some(13), b"abcdefgh")])).is_ok());
    // Unless the total is above what one record can hold at all.
    let max = vec![0u8; u16::MAX as usize];
    assert!(Pack::new_checked(&pack_of(&[record(3, 1, Some(65_536), &max)])).is_ok());
    let bad = pack_of(&[record(3, 1, Some(65_535), &max[1..])]);
    assert_eq!(pack_err(&bad), invalid("record.total_len", 65_535));
}

#[test]
fn empty_first_and_middle_fragments_are_invalid() {
    assert_eq!(
        pack_err(&pack_of(&[record(3, 1, Some(100), b"")])),
        invalid("record.len", 0)
    );
    assert_eq!(
        pack_err(&pack_of(&[record(3, 2, None, b"")])),
        invalid("record.len", 0)
    );
    // An empty Whole message is a message; an empty Last ends a chain exactly on a frame
    // boundary. Both stay valid.
    assert!(Pack::new_checked(&pack_of(&[record(3, 0, None, b"")])).is_ok());
    assert!(Pack::new_checked(&pack_of(&[record(3, 3, None, b"")])).is_ok());
}

#[test]
fn unknown_record_kind_is_invalid() {
    for kind in [4u8, 0xff] {
        let bad = pack_of(&[record(1, kind, None, b"x")]);
        assert_eq!(pack_err(&bad), invalid("record.kind", kind.into()));
    }
}

#[test]
fn trailing_bytes_after_the_last_record_are_rejected() {
    for (name, pack) in all_packs() {
        let mut long = pack.clone();
        long.push(0);
        assert_eq!(pack_err(&long), DecodeError::TrailingBytes(1), "{name}");
        long.extend_from_slice(&[0; 4]);
        assert_eq!(pack_err(&long), DecodeError::TrailingBytes(5), "{name}");
    }
}

// ---- emit_frame -------------------------------------------------------------------------

#[test]
fn emit_frame_into_a_short_buffer_is_buffer_too_small_and_writes_nothing() {
    let cases: Vec<(Vec<u8>, Result<usize, EmitError>)> = vec![
        {
            let mut buf = vec![0xee; 63];
            let r = emit_frame(&head(1, Flags::NONE), &orf_token_rtr0(), &mut buf);
            (buf, r)
        },
        {
            let mut buf = vec![0xee; 10];
            let r = emit_frame(&head(2, Flags::NONE), &mcast_agreed(), &mut buf);
            (buf, r)
        },
        {
            let mut buf = vec![0xee; 0];
            let r = emit_frame(&head(1, Flags::NONE), &merge_detect(), &mut buf);
            (buf, r)
        },
    ];
    let want = [(64, 63), (48, 10), (26, 0)];
    for ((buf, r), (need, have)) in cases.into_iter().zip(want) {
        assert_eq!(r, Err(EmitError::BufferTooSmall { need, have }));
        assert!(
            buf.iter().all(|&b| b == 0xee),
            "wrote into a buffer it refused"
        );
    }
    for (name, frame) in all_frames() {
        let parsed = Frame::parse(&frame).unwrap();
        let need = frame.len();
        let head = totem_proto::FrameHead {
            version: parsed.header.version,
            cluster_id: parsed.header.cluster_id,
            sender: parsed.header.sender,
            flags: parsed.header.flags,
        };
        let mut buf = vec![0; need - 1];
        let r = match &parsed.body {
            Body::OrfToken(v) => emit_frame(&head, &OrfTokenRepr::parse(v).unwrap(), &mut buf),
            Body::MembJoin(v) => emit_frame(&head, &MembJoinRepr::parse(v).unwrap(), &mut buf),
            Body::MembCommitToken(v) => {
                emit_frame(&head, &MembCommitTokenRepr::parse(v).unwrap(), &mut buf)
            }
            _ => continue,
        };
        assert_eq!(
            r,
            Err(EmitError::BufferTooSmall {
                need,
                have: need - 1
            }),
            "{name}"
        );
    }
}

#[test]
fn emit_frame_refuses_join_lists_receivers_would_reject() {
    let mut buf = [0u8; 256];
    let h = head(2, Flags::NONE);
    let mut unsorted = memb_join();
    unsorted.proc_list = ids(&[1, 3, 2]);
    assert_eq!(
        emit_frame(&h, &unsorted, &mut buf),
        Err(EmitError::InvalidList("proc_list"))
    );
    let mut dup = memb_join();
    dup.proc_list = ids(&[1, 2, 2]);
    assert_eq!(
        emit_frame(&h, &dup, &mut buf),
        Err(EmitError::InvalidList("proc_list"))
    );
    let mut zero = memb_join();
    zero.proc_list = ids(&[0, 1]);
    assert_eq!(
        emit_frame(&h, &zero, &mut buf),
        Err(EmitError::InvalidList("proc_list"))
    );
    let mut fail = memb_join();
    fail.fail_list = ids(&[5, 4]);
    assert_eq!(
        emit_frame(&h, &fail, &mut buf),
        Err(EmitError::InvalidList("fail_list"))
    );
    // The list is checked before the buffer.
    assert_eq!(
        emit_frame(&h, &unsorted, &mut [0u8; 1]),
        Err(EmitError::InvalidList("proc_list"))
    );
}

#[test]
fn emit_frame_refuses_commit_members_receivers_would_reject() {
    let mut buf = [0u8; 256];
    let h = head(2, Flags::NONE);
    let mut unsorted = memb_commit_token_3();
    unsorted.members.swap(1, 2);
    assert_eq!(
        emit_frame(&h, &unsorted, &mut buf),
        Err(EmitError::InvalidList("members"))
    );
    let mut not_rep = memb_commit_token_3();
    not_rep.ring_id.rep = NodeId(2);
    assert_eq!(
        emit_frame(&h, &not_rep, &mut buf),
        Err(EmitError::InvalidList("members"))
    );
    let mut empty = memb_commit_token_3();
    empty.members.clear();
    assert_eq!(
        emit_frame(&h, &empty, &mut buf),
        Err(EmitError::InvalidList("members"))
    );
    // Rep 0 heading a member 0: consistent with itself, but node 0 is reserved.
    let mut zero = memb_commit_token_3();
    zero.ring_id = RingId::new(NodeId(0), 0x104);
    zero.members[0] = CommitMember {
        node: NodeId(0),
        ..zero.members[0]
    };
    assert_eq!(
        emit_frame(&h, &zero, &mut buf),
        Err(EmitError::InvalidList("members"))
    );
}
