//! Golden bytes, smoltcp's quartet per message: `test_deconstruct` reads every field through
//! the view, `test_construct` writes every field through the setters, `test_parse` and
//! `test_emit` go through the `Repr`. Each frame vector is also dispatched by `Frame::parse`
//! and produced byte for byte by `emit_frame`.
//!
//! Emit and construct buffers are pre-filled with `0xa5`, so a field nobody writes shows up.

mod common;

use common::*;
use totem_proto::orf_token::RtrEntry;
use totem_proto::{
    Body, Flags, Frame, HEADER_LEN, Header, HeaderRepr, MAGIC, Mcast, McastRepr, MembCommitToken,
    MembCommitTokenRepr, MembJoin, MembJoinRepr, MergeDetect, MergeDetectRepr, MessageType, NodeId,
    OrfToken, OrfTokenRepr, RingId, TokenHoldCancel, TokenHoldCancelRepr, emit_frame,
};

const FILL: u8 = 0xa5;

/// The frame vector's body.
fn body(frame: &[u8]) -> &[u8] {
    &frame[HEADER_LEN..]
}

/// A frame-sized buffer whose header was written through the header setters.
fn constructed_header(len: usize, ty: MessageType, sender: u32, flags: Flags) -> Vec<u8> {
    let mut buf = vec![FILL; len];
    let mut h = Header::new_unchecked(&mut buf[..]);
    h.set_magic(MAGIC);
    h.set_version(1);
    h.set_msg_type(ty);
    h.set_cluster_id(CLUSTER);
    h.set_sender(NodeId(sender));
    h.set_flags(flags);
    buf
}

/// `test_parse`, `test_emit`, `test_frame_parse_dispatches` and `test_emit_frame` for one
/// frame vector, from its bytes, head, `Repr`, view and `Body` variant.
macro_rules! repr_tests {
    (
        bytes: $bytes:expr,head: $head:expr,repr: $repr:expr,view: $view:ident,
        repr_ty: $repr_ty:ident,variant: $variant:ident $(,)?
    ) => {
        #[test]
        fn test_parse() {
            let bytes = $bytes;
            let view = $view::new_checked(super::body(&bytes)).unwrap();
            assert_eq!($repr_ty::parse(&view).unwrap(), $repr);
        }

        #[test]
        fn test_emit() {
            let (bytes, repr) = ($bytes, $repr);
            assert_eq!(repr.buffer_len(), bytes.len() - HEADER_LEN);
            let mut buf = vec![super::FILL; repr.buffer_len()];
            repr.emit(&mut $view::new_unchecked(&mut buf[..]));
            assert_eq!(buf, super::body(&bytes));
        }

        #[test]
        fn test_frame_parse_dispatches() {
            let bytes = $bytes;
            let frame = Frame::parse(&bytes).unwrap();
            assert_eq!(frame.header, header_of($head, MessageType::$variant));
            let Body::$variant(view) = &frame.body else {
                panic!("dispatched to {:?}", frame.body);
            };
            assert_eq!($repr_ty::parse(view).unwrap(), $repr);
        }

        #[test]
        fn test_emit_frame() {
            let (bytes, repr) = ($bytes, $repr);
            let mut buf = vec![super::FILL; bytes.len() + 9];
            let n = emit_frame(&$head, &repr, &mut buf).unwrap();
            assert_eq!(&buf[..n], &bytes[..]);
            assert!(
                buf[n..].iter().all(|&b| b == super::FILL),
                "wrote past the frame"
            );
        }
    };
}

mod header {
    use super::*;

    fn repr() -> HeaderRepr {
        HeaderRepr {
            version: 1,
            msg_type: MessageType::MembJoin,
            cluster_id: CLUSTER,
            sender: NodeId(3),
            flags: Flags::LEAVE,
        }
    }

    #[test]
    fn test_deconstruct() {
        let bytes = vector("header");
        let h = Header::new_checked(&bytes[..]).unwrap();
        assert_eq!(h.magic(), 0x544d);
        assert_eq!(h.version(), 1);
        assert_eq!(h.msg_type(), MessageType::MembJoin);
        assert_eq!(h.cluster_id(), 0x7465_6d31);
        assert_eq!(h.sender(), NodeId(3));
        assert_eq!(h.flags(), Flags::LEAVE);
        assert!(h.payload().is_empty());
    }

    #[test]
    fn test_construct() {
        let buf = constructed_header(HEADER_LEN, MessageType::MembJoin, 3, Flags::LEAVE);
        assert_eq!(buf, vector("header"));
    }

    #[test]
    fn test_parse() {
        let bytes = vector("header");
        assert_eq!(
            HeaderRepr::parse(&Header::new_checked(&bytes[..]).unwrap()),
            Ok(repr())
        );
    }

    #[test]
    fn test_emit() {
        let mut buf = vec![FILL; repr().buffer_len()];
        repr().emit(&mut Header::new_unchecked(&mut buf[..]));
        assert_eq!(buf, vector("header"));
    }

    #[test]
    fn test_header_alone_is_a_truncated_frame() {
        let bytes = vector("header");
        // The join body's fixed part is 14 bytes; `have` counts body bytes.
        assert_eq!(
            Frame::parse(&bytes).unwrap_err(),
            totem_proto::DecodeError::Truncated { need: 14, have: 0 }
        );
    }

    #[test]
    fn test_payload_is_the_body() {
        let bytes = vector("merge_detect");
        let h = Header::new_checked(&bytes[..]).unwrap();
        assert_eq!(h.payload(), body(&bytes));
    }
}

/// Reads every field of an ORF token view and checks it against `repr`.
fn deconstruct_orf(bytes: &[u8], repr: &OrfTokenRepr) {
    let v = OrfToken::new_checked(body(bytes)).unwrap();
    assert_eq!(v.ring_id(), RingId::new(NodeId(1), 0x100));
    assert_eq!(v.token_seq(), 0x1001);
    assert_eq!(v.seq(), 0x2002);
    assert_eq!(v.aru(), 0x1ff0);
    assert_eq!(v.aru_id(), repr.aru_id);
    assert_eq!(v.backlog(), 17);
    assert_eq!(v.fcc(), 34);
    assert_eq!(v.retrans_flg(), u8::from(repr.retrans_flg));
    assert_eq!(v.rtr_count(), repr.rtr.len());
    for (i, e) in repr.rtr.iter().enumerate() {
        assert_eq!(v.rtr_entry(i), *e, "rtr[{i}]");
    }
    assert!(v.rtr_list().eq(repr.rtr.iter().copied()));
}

/// Writes every field of an ORF token through the setters.
fn construct_orf(sender: u32, repr: &OrfTokenRepr) -> Vec<u8> {
    let len = HEADER_LEN + 50 + 20 * repr.rtr.len();
    let mut buf = constructed_header(len, MessageType::OrfToken, sender, Flags::NONE);
    let mut v = OrfToken::new_unchecked(&mut buf[HEADER_LEN..]);
    v.set_ring_id(RingId::new(NodeId(1), 0x100));
    v.set_token_seq(0x1001);
    v.set_seq(0x2002);
    v.set_aru(0x1ff0);
    v.set_aru_id(repr.aru_id);
    v.set_backlog(17);
    v.set_fcc(34);
    v.set_retrans_flg(repr.retrans_flg);
    v.set_rtr_count(repr.rtr.len() as u8);
    for (i, e) in repr.rtr.iter().enumerate() {
        v.set_rtr_entry(i, *e);
    }
    buf
}

mod orf_token_rtr0 {
    use super::*;

    #[test]
    fn test_deconstruct() {
        let bytes = vector("orf_token_rtr0");
        deconstruct_orf(&bytes, &orf_token_rtr0());
        let v = OrfToken::new_checked(body(&bytes)).unwrap();
        assert_eq!(v.aru_id(), Some(NodeId(3)));
        assert_eq!(v.retrans_flg(), 0);
        assert_eq!(v.rtr_list().len(), 0);
    }

    #[test]
    fn test_construct() {
        assert_eq!(
            construct_orf(1, &orf_token_rtr0()),
            vector("orf_token_rtr0")
        );
    }

    repr_tests! {
        bytes: vector("orf_token_rtr0"), head: head(1, Flags::NONE), repr: orf_token_rtr0(),
        view: OrfToken, repr_ty: OrfTokenRepr, variant: OrfToken,
    }
}

mod orf_token_rtr1 {
    use super::*;

    #[test]
    fn test_deconstruct() {
        let bytes = vector("orf_token_rtr1");
        deconstruct_orf(&bytes, &orf_token_rtr1());
        let v = OrfToken::new_checked(body(&bytes)).unwrap();
        assert_eq!(v.aru_id(), None, "aru id 0 on the wire");
        assert_eq!(v.retrans_flg(), 1);
        assert_eq!(
            v.rtr_entry(0),
            RtrEntry {
                ring_id: RingId::new(NodeId(1), 0xff),
                seq: 0x1ff5
            }
        );
    }

    #[test]
    fn test_construct() {
        assert_eq!(
            construct_orf(2, &orf_token_rtr1()),
            vector("orf_token_rtr1")
        );
    }

    repr_tests! {
        bytes: vector("orf_token_rtr1"), head: head(2, Flags::NONE), repr: orf_token_rtr1(),
        view: OrfToken, repr_ty: OrfTokenRepr, variant: OrfToken,
    }
}

mod orf_token_rtr30 {
    use super::*;

    #[test]
    fn test_deconstruct() {
        let bytes = vector("orf_token_rtr30");
        deconstruct_orf(&bytes, &orf_token_rtr30());
        let v = OrfToken::new_checked(body(&bytes)).unwrap();
        assert_eq!(v.rtr_count(), 30);
        assert_eq!(v.rtr_entry(29), rtr30_entry(29));
        assert_eq!(body(&bytes).len(), totem_proto::orf_token::MAX_LEN);
    }

    #[test]
    fn test_construct() {
        assert_eq!(
            construct_orf(3, &orf_token_rtr30()),
            vector("orf_token_rtr30")
        );
    }

    repr_tests! {
        bytes: vector("orf_token_rtr30"), head: head(3, Flags::NONE), repr: orf_token_rtr30(),
        view: OrfToken, repr_ty: OrfTokenRepr, variant: OrfToken,
    }
}

/// Writes an MCAST frame through the setters.
fn construct_mcast(sender: u32, flags: Flags, repr: &McastRepr<'_>) -> Vec<u8> {
    let len = HEADER_LEN + 29 + repr.payload.len();
    let mut buf = constructed_header(len, MessageType::Mcast, sender, flags);
    let mut v = Mcast::new_unchecked(&mut buf[HEADER_LEN..]);
    v.set_ring_id(repr.ring_id);
    v.set_seq(repr.seq);
    v.set_originator(repr.originator);
    v.set_payload_len(repr.payload.len() as u32);
    v.set_guarantee(repr.guarantee);
    v.payload_mut().copy_from_slice(repr.payload);
    buf
}

mod mcast_agreed {
    use super::*;
    use totem_proto::Guarantee;

    #[test]
    fn test_deconstruct() {
        let bytes = vector("mcast_agreed");
        let v = Mcast::new_checked(body(&bytes)).unwrap();
        assert_eq!(v.ring_id(), RingId::new(NodeId(1), 0x100));
        assert_eq!(v.seq(), 0x2001);
        assert_eq!(v.originator(), NodeId(2));
        assert_eq!(v.payload_len(), 5);
        assert_eq!(v.guarantee(), Guarantee::Agreed);
        assert_eq!(v.payload(), b"hello");
    }

    #[test]
    fn test_construct() {
        assert_eq!(
            construct_mcast(2, Flags::NONE, &mcast_agreed()),
            vector("mcast_agreed")
        );
    }

    repr_tests! {
        bytes: vector("mcast_agreed"), head: head(2, Flags::NONE), repr: mcast_agreed(),
        view: Mcast, repr_ty: McastRepr, variant: Mcast,
    }
}

mod mcast_safe {
    use super::*;
    use totem_proto::{Guarantee, Pack, RecordKind, ServiceId};

    #[test]
    fn test_deconstruct() {
        let bytes = vector("mcast_safe");
        let h = Header::new_checked(&bytes[..]).unwrap();
        let v = Mcast::new_checked(body(&bytes)).unwrap();
        // A retransmission: the datagram's sender is not the message's originator.
        assert_eq!(h.sender(), NodeId(3));
        assert_eq!(v.originator(), NodeId(2));
        assert_eq!(v.seq(), 0x2002);
        assert_eq!(v.guarantee(), Guarantee::Safe);
        assert_eq!(v.payload(), MCAST_SAFE_PAYLOAD);
    }

    #[test]
    fn test_construct() {
        assert_eq!(
            construct_mcast(3, Flags::NONE, &mcast_safe()),
            vector("mcast_safe")
        );
    }

    #[test]
    fn test_payload_is_a_pack() {
        let bytes = vector("mcast_safe");
        let v = Mcast::new_checked(body(&bytes)).unwrap();
        let pack = Pack::new_checked(v.payload()).unwrap();
        let rec = pack.records().next().unwrap();
        assert_eq!(
            (rec.service, rec.kind, rec.data),
            (ServiceId(7), RecordKind::Whole, &b"abc"[..])
        );
    }

    repr_tests! {
        bytes: vector("mcast_safe"), head: head(3, Flags::NONE), repr: mcast_safe(),
        view: Mcast, repr_ty: McastRepr, variant: Mcast,
    }
}

mod mcast_encapsulated {
    use super::*;

    #[test]
    fn test_deconstruct() {
        let bytes = vector("mcast_encapsulated");
        let h = Header::new_checked(&bytes[..]).unwrap();
        assert_eq!(h.flags(), Flags::ENCAPSULATED);
        let v = Mcast::new_checked(body(&bytes)).unwrap();
        assert_eq!(v.ring_id(), RingId::new(NodeId(1), 0x104));
        assert_eq!(v.seq(), 1);
        assert_eq!(v.payload_len(), 48);
        assert_eq!(v.payload(), vector("mcast_agreed"));
    }

    #[test]
    fn test_construct() {
        let built = construct_mcast(2, Flags::ENCAPSULATED, &mcast_encapsulated());
        assert_eq!(built, vector("mcast_encapsulated"));
    }

    #[test]
    fn test_inner_frame_parses_as_the_old_ring_message() {
        let bytes = vector("mcast_encapsulated");
        let outer = Frame::parse(&bytes).unwrap();
        let Body::Mcast(v) = outer.body else {
            panic!("not an MCAST")
        };
        let inner = Frame::parse(v.payload()).unwrap();
        assert_eq!(
            inner.header,
            header_of(head(2, Flags::NONE), MessageType::Mcast)
        );
        let Body::Mcast(iv) = inner.body else {
            panic!("inner is not an MCAST")
        };
        assert_eq!(McastRepr::parse(&iv).unwrap(), mcast_agreed());
    }

    repr_tests! {
        bytes: vector("mcast_encapsulated"), head: head(2, Flags::ENCAPSULATED),
        repr: mcast_encapsulated(), view: Mcast, repr_ty: McastRepr, variant: Mcast,
    }
}

/// Reads every field of a join view and checks it against `repr`.
fn deconstruct_join(bytes: &[u8], repr: &MembJoinRepr) {
    let v = MembJoin::new_checked(body(bytes)).unwrap();
    assert_eq!(v.ring_seq(), repr.ring_seq);
    assert_eq!(
        (v.version_min(), v.version_max()),
        (repr.version_min, repr.version_max)
    );
    assert_eq!(v.proc_count(), repr.proc_list.len());
    assert_eq!(v.fail_count(), repr.fail_list.len());
    assert!(v.proc_list().iter().eq(repr.proc_list.iter().copied()));
    assert!(v.fail_list().iter().eq(repr.fail_list.iter().copied()));
    for (i, id) in repr.proc_list.iter().enumerate() {
        assert_eq!(v.proc_list().get(i), *id);
        assert!(v.proc_list().contains(*id));
        assert!(
            !v.proc_list().contains(NodeId(id.0 + 1)) || repr.proc_list.contains(&NodeId(id.0 + 1))
        );
    }
    assert_eq!(v.fail_list().is_empty(), repr.fail_list.is_empty());
}

/// Writes a join frame through the setters.
fn construct_join(sender: u32, flags: Flags, repr: &MembJoinRepr) -> Vec<u8> {
    let len = HEADER_LEN + 14 + 4 * (repr.proc_list.len() + repr.fail_list.len());
    let mut buf = constructed_header(len, MessageType::MembJoin, sender, flags);
    let mut v = MembJoin::new_unchecked(&mut buf[HEADER_LEN..]);
    v.set_ring_seq(repr.ring_seq);
    v.set_versions(repr.version_min, repr.version_max);
    v.set_lists(&repr.proc_list, &repr.fail_list);
    buf
}

mod memb_join {
    use super::*;

    #[test]
    fn test_deconstruct() {
        let bytes = vector("memb_join");
        deconstruct_join(&bytes, &memb_join());
        let v = MembJoin::new_checked(body(&bytes)).unwrap();
        assert_eq!(v.ring_seq(), 0x100);
        assert_eq!((v.version_min(), v.version_max()), (1, 2));
        assert_eq!(v.proc_list().to_vec(), ids(&[1, 2, 3, 5]));
        assert_eq!(v.fail_list().to_vec(), ids(&[5]));
        assert!(!v.proc_list().contains(NodeId(4)));
    }

    #[test]
    fn test_construct() {
        assert_eq!(
            construct_join(2, Flags::NONE, &memb_join()),
            vector("memb_join")
        );
    }

    repr_tests! {
        bytes: vector("memb_join"), head: head(2, Flags::NONE), repr: memb_join(),
        view: MembJoin, repr_ty: MembJoinRepr, variant: MembJoin,
    }
}

mod memb_join_leave {
    use super::*;

    #[test]
    fn test_deconstruct() {
        let bytes = vector("memb_join_leave");
        deconstruct_join(&bytes, &memb_join_leave());
        let h = Header::new_checked(&bytes[..]).unwrap();
        let v = MembJoin::new_checked(body(&bytes)).unwrap();
        // A leave: the LEAVE flag, the sender out of the proc list and in the fail list.
        assert_eq!(h.flags(), Flags::LEAVE);
        assert!(!v.proc_list().contains(h.sender()));
        assert!(v.fail_list().contains(h.sender()));
    }

    #[test]
    fn test_construct() {
        let built = construct_join(3, Flags::LEAVE, &memb_join_leave());
        assert_eq!(built, vector("memb_join_leave"));
    }

    repr_tests! {
        bytes: vector("memb_join_leave"), head: head(3, Flags::LEAVE), repr: memb_join_leave(),
        view: MembJoin, repr_ty: MembJoinRepr, variant: MembJoin,
    }
}

mod memb_join_empty_fail {
    use super::*;

    #[test]
    fn test_deconstruct() {
        let bytes = vector("memb_join_empty_fail");
        deconstruct_join(&bytes, &memb_join_empty_fail());
        let v = MembJoin::new_checked(body(&bytes)).unwrap();
        assert_eq!(v.fail_count(), 0);
        assert!(v.fail_list().is_empty());
        assert_eq!(v.fail_list().len(), 0);
    }

    #[test]
    fn test_construct() {
        let built = construct_join(1, Flags::NONE, &memb_join_empty_fail());
        assert_eq!(built, vector("memb_join_empty_fail"));
    }

    repr_tests! {
        bytes: vector("memb_join_empty_fail"), head: head(1, Flags::NONE),
        repr: memb_join_empty_fail(), view: MembJoin, repr_ty: MembJoinRepr, variant: MembJoin,
    }
}

mod memb_join_384 {
    use super::*;
    use totem_proto::MAX_NODES;

    #[test]
    fn test_deconstruct() {
        let bytes = join_384_bytes();
        assert_eq!(bytes.len(), HEADER_LEN + 14 + 4 * (MAX_NODES + 2));
        deconstruct_join(&bytes, &join_384());
        let v = MembJoin::new_checked(body(&bytes)).unwrap();
        assert_eq!(v.proc_count(), MAX_NODES);
        assert_eq!(v.proc_list().get(383), NodeId(join_384_proc(383)));
        assert!(v.fail_list().contains(NodeId(join_384_proc(382))));
        assert!(!v.fail_list().contains(NodeId(join_384_proc(0))));
    }

    #[test]
    fn test_construct() {
        assert_eq!(
            construct_join(0x101, Flags::NONE, &join_384()),
            join_384_bytes()
        );
    }

    repr_tests! {
        bytes: join_384_bytes(), head: join_384_head(), repr: join_384(),
        view: MembJoin, repr_ty: MembJoinRepr, variant: MembJoin,
    }
}

/// Reads every field of a commit token view and checks it against `repr`.
fn deconstruct_commit(bytes: &[u8], repr: &MembCommitTokenRepr) {
    let v = MembCommitToken::new_checked(body(bytes)).unwrap();
    assert_eq!(v.ring_id(), repr.ring_id);
    assert_eq!(v.token_seq(), repr.token_seq);
    assert_eq!(v.wire_version(), repr.wire_version);
    assert_eq!(v.memb_index(), usize::from(repr.memb_index));
    assert_eq!(v.count(), repr.members.len());
    for (i, m) in repr.members.iter().enumerate() {
        assert_eq!(v.member(i), *m, "member[{i}]");
    }
    assert!(v.members().eq(repr.members.iter().copied()));
}

/// Writes a commit token frame through the setters.
fn construct_commit(sender: u32, repr: &MembCommitTokenRepr) -> Vec<u8> {
    let len = HEADER_LEN + 25 + 33 * repr.members.len();
    let mut buf = constructed_header(len, MessageType::MembCommitToken, sender, Flags::NONE);
    let mut v = MembCommitToken::new_unchecked(&mut buf[HEADER_LEN..]);
    v.set_ring_id(repr.ring_id);
    v.set_token_seq(repr.token_seq);
    v.set_wire_version(repr.wire_version);
    v.set_memb_index(repr.memb_index);
    v.set_count(repr.members.len() as u16);
    for (i, m) in repr.members.iter().enumerate() {
        v.set_member(i, m);
    }
    buf
}

mod memb_commit_token_3 {
    use super::*;
    use totem_proto::CommitMember;

    #[test]
    fn test_deconstruct() {
        let bytes = vector("memb_commit_token_3");
        deconstruct_commit(&bytes, &memb_commit_token_3());
        let v = MembCommitToken::new_checked(body(&bytes)).unwrap();
        assert_eq!(v.ring_id(), RingId::new(NodeId(1), 0x104));
        assert_eq!(
            (v.token_seq(), v.wire_version(), v.memb_index(), v.count()),
            (2, 1, 2, 3)
        );
        assert_eq!(
            v.member(2),
            CommitMember {
                node: NodeId(5),
                old_ring_id: RingId::new(NodeId(5), 0xf8),
                aru: 0x30,
                high_delivered: 0x2f,
                received: false,
            }
        );
    }

    #[test]
    fn test_construct() {
        assert_eq!(
            construct_commit(2, &memb_commit_token_3()),
            vector("memb_commit_token_3")
        );
    }

    repr_tests! {
        bytes: vector("memb_commit_token_3"), head: head(2, Flags::NONE),
        repr: memb_commit_token_3(), view: MembCommitToken, repr_ty: MembCommitTokenRepr,
        variant: MembCommitToken,
    }
}

mod memb_commit_token_384 {
    use super::*;
    use totem_proto::MAX_NODES;

    #[test]
    fn test_deconstruct() {
        let bytes = commit_384_bytes();
        assert_eq!(bytes.len(), HEADER_LEN + 25 + 33 * MAX_NODES);
        deconstruct_commit(&bytes, &commit_384());
        let v = MembCommitToken::new_checked(body(&bytes)).unwrap();
        assert_eq!(v.count(), MAX_NODES);
        assert_eq!(v.member(0).node, v.ring_id().rep);
        assert!(v.member(199).received && !v.member(200).received);
    }

    #[test]
    fn test_construct() {
        assert_eq!(construct_commit(7, &commit_384()), commit_384_bytes());
    }

    repr_tests! {
        bytes: commit_384_bytes(), head: commit_384_head(), repr: commit_384(),
        view: MembCommitToken, repr_ty: MembCommitTokenRepr, variant: MembCommitToken,
    }
}

mod merge_detect {
    use super::*;

    #[test]
    fn test_deconstruct() {
        let bytes = vector("merge_detect");
        assert_eq!(body(&bytes).len(), totem_proto::merge_detect::BODY_LEN);
        let v = MergeDetect::new_checked(body(&bytes)).unwrap();
        assert_eq!(v.ring_id(), RingId::new(NodeId(1), 0x100));
        assert_eq!(v.into_inner(), body(&bytes));
    }

    #[test]
    fn test_construct() {
        let mut buf = constructed_header(HEADER_LEN + 12, MessageType::MergeDetect, 1, Flags::NONE);
        MergeDetect::new_unchecked(&mut buf[HEADER_LEN..]).set_ring_id(RING);
        assert_eq!(buf, vector("merge_detect"));
    }

    repr_tests! {
        bytes: vector("merge_detect"), head: head(1, Flags::NONE), repr: merge_detect(),
        view: MergeDetect, repr_ty: MergeDetectRepr, variant: MergeDetect,
    }
}

mod token_hold_cancel {
    use super::*;

    #[test]
    fn test_deconstruct() {
        let bytes = vector("token_hold_cancel");
        assert_eq!(body(&bytes).len(), totem_proto::token_hold_cancel::BODY_LEN);
        let v = TokenHoldCancel::new_checked(body(&bytes)).unwrap();
        assert_eq!(v.ring_id(), RingId::new(NodeId(1), 0x100));
    }

    #[test]
    fn test_construct() {
        let len = HEADER_LEN + 12;
        let mut buf = constructed_header(len, MessageType::TokenHoldCancel, 3, Flags::NONE);
        TokenHoldCancel::new_unchecked(&mut buf[HEADER_LEN..]).set_ring_id(RING);
        assert_eq!(buf, vector("token_hold_cancel"));
    }

    repr_tests! {
        bytes: vector("token_hold_cancel"), head: head(3, Flags::NONE), repr: token_hold_cancel(),
        view: TokenHoldCancel, repr_ty: TokenHoldCancelRepr, variant: TokenHoldCancel,
    }
}

/// The four pack vectors. A pack has no `Repr`: `test_parse` compares the `Record`s,
/// `test_construct` builds the frame from the application messages the way a sender does,
/// and `test_emit` re-packs the expected records (the fuzz property's `repack`).
mod pack {
    use totem_proto::{Pack, PackWriter, Progress, Record, RecordKind, ServiceId};

    use super::common::{PACK_VECTORS, fuzzing, vector};

    /// The 32-byte message that pack_ends_first, pack_middle_only and pack_last_then_whole
    /// carry in three fragments.
    fn long_msg() -> Vec<u8> {
        (0..32).collect()
    }

    fn whole(service: u16, data: &[u8]) -> Record<'_> {
        Record {
            service: ServiceId(service),
            kind: RecordKind::Whole,
            total_len: None,
            data,
        }
    }

    fn frag(service: u16, kind: RecordKind, total: Option<u32>, data: &[u8]) -> Record<'_> {
        Record {
            service: ServiceId(service),
            kind,
            total_len: total,
            data,
        }
    }

    fn expected(name: &str, msg: &'static [u8]) -> Vec<Record<'static>> {
        match name {
            "pack_whole3" => vec![whole(1, b"hello"), whole(2, b""), whole(0x102, b"abc")],
            "pack_ends_first" => {
                vec![
                    whole(1, b"hi"),
                    frag(3, RecordKind::First, Some(32), &msg[..8]),
                ]
            }
            "pack_middle_only" => vec![frag(3, RecordKind::Middle, None, &msg[8..24])],
            "pack_last_then_whole" => vec![
                frag(3, RecordKind::Last, None, &msg[24..]),
                whole(1, b"abc"),
                whole(4, b"wxyz"),
            ],
            _ => unreachable!("no pack vector {name}"),
        }
    }

    fn msg() -> &'static [u8] {
        long_msg().leak()
    }

    #[test]
    fn test_deconstruct() {
        for name in PACK_VECTORS {
            let bytes = vector(name);
            let pack = Pack::new_checked(&bytes).unwrap();
            let want = expected(name, msg());
            assert_eq!(pack.count(), want.len(), "{name}");
            assert_eq!(
                u16::from_be_bytes([bytes[0], bytes[1]]) as usize,
                want.len()
            );
            assert_eq!(pack.as_bytes(), &bytes[..]);
            let kinds: Vec<RecordKind> = pack.records().map(|r| r.kind).collect();
            assert_eq!(
                kinds,
                want.iter().map(|r| r.kind).collect::<Vec<_>>(),
                "{name}"
            );
            let len: usize = pack.records().map(|r| r.wire_len()).sum();
            assert_eq!(2 + len, bytes.len(), "{name}: records cover the frame");
        }
    }

    #[test]
    fn test_construct() {
        let msg = long_msg();
        let svc = ServiceId(3);

        let mut buf = vec![super::FILL; vector("pack_whole3").len()];
        let mut w = PackWriter::new(&mut buf).unwrap();
        assert!(w.push(ServiceId(1), b"hello"));
        assert!(w.push(ServiceId(2), b""));
        assert!(w.push(ServiceId(0x102), b"abc"));
        let n = w.finish();
        assert_eq!(&buf[..n], vector("pack_whole3"));

        // The 32-byte message over three frames sized so each fragment is as in the vectors.
        let mut offset = 0;
        let mut buf = vec![super::FILL; vector("pack_ends_first").len()];
        let mut w = PackWriter::new(&mut buf).unwrap();
        assert!(w.push(ServiceId(1), b"hi"));
        assert_eq!(w.push_part(svc, &msg, &mut offset, 1), Progress::Partial);
        assert_eq!(offset, 8);
        let n = w.finish();
        assert_eq!(&buf[..n], vector("pack_ends_first"));

        let mut buf = vec![super::FILL; vector("pack_middle_only").len()];
        let mut w = PackWriter::new(&mut buf).unwrap();
        assert_eq!(w.push_part(svc, &msg, &mut offset, 1), Progress::Partial);
        assert_eq!(offset, 24);
        let n = w.finish();
        assert_eq!(&buf[..n], vector("pack_middle_only"));

        let mut buf = vec![super::FILL; vector("pack_last_then_whole").len()];
        let mut w = PackWriter::new(&mut buf).unwrap();
        assert_eq!(w.push_part(svc, &msg, &mut offset, 1), Progress::Complete);
        assert_eq!(offset, 32);
        assert!(w.push(ServiceId(1), b"abc"));
        assert!(w.push(ServiceId(4), b"wxyz"));
        let n = w.finish();
        assert_eq!(&buf[..n], vector("pack_last_then_whole"));
    }

    #[test]
    fn test_parse() {
        for name in PACK_VECTORS {
            let bytes = vector(name);
            let records: Vec<Record<'_>> = Pack::new_checked(&bytes).unwrap().records().collect();
            assert_eq!(records, expected(name, msg()), "{name}");
        }
    }

    #[test]
    fn test_emit() {
        for name in PACK_VECTORS {
            let bytes = vector(name);
            let out = fuzzing::repack(&expected(name, msg()), bytes.len()).unwrap();
            assert_eq!(out, bytes, "{name}");
        }
    }

    #[test]
    fn test_fragments_of_the_three_vectors_rejoin_into_the_message() {
        let mut joined = Vec::new();
        let mut total = None;
        for name in [
            "pack_ends_first",
            "pack_middle_only",
            "pack_last_then_whole",
        ] {
            let bytes = vector(name);
            for r in Pack::new_checked(&bytes).unwrap().records() {
                match r.kind {
                    RecordKind::First => {
                        total = r.total_len;
                        joined.extend_from_slice(r.data);
                    }
                    RecordKind::Middle | RecordKind::Last => joined.extend_from_slice(r.data),
                    _ => {}
                }
            }
        }
        assert_eq!(total, Some(32));
        assert_eq!(joined, long_msg());
    }
}
