//! totem-proto without std: one frame of every message type is encoded with `emit_frame`,
//! decoded with `Frame::parse` and its Repr, and compared with what went in; a packed frame
//! with a fragment goes through `PackWriter` and `Pack`.

use totem_proto::orf_token::RtrEntry;
use totem_proto::{
    Body, CommitMember, EmitBody, Flags, Frame, FrameHead, Guarantee, McastRepr,
    MembCommitTokenRepr, MembJoinRepr, MergeDetectRepr, NodeId, OrfTokenRepr, Pack, PackWriter,
    Progress, RecordKind, RingId, ServiceId, TokenHoldCancelRepr, emit_frame,
};

use crate::ensure;

const HEAD: FrameHead = FrameHead {
    version: 1,
    cluster_id: 0x7465_6d31,
    sender: NodeId(3),
    flags: Flags::NONE,
};

/// Encodes `body` and parses it back.
fn encode<'a, B: EmitBody>(
    body: &B,
    flags: Flags,
    buf: &'a mut [u8],
) -> Result<Frame<'a>, &'static str> {
    let head = FrameHead { flags, ..HEAD };
    let n = emit_frame(&head, body, buf).map_err(|_| "emit_frame failed")?;
    let frame = Frame::parse(&buf[..n]).map_err(|_| "Frame::parse failed")?;
    ensure(
        frame.header.sender == HEAD.sender && frame.header.flags == flags,
        "header round-trip",
    )?;
    Ok(frame)
}

pub(crate) fn scenario() -> Result<(), &'static str> {
    let ring = RingId::new(NodeId(1), 42);
    let mut buf = [0u8; 2048];

    let mut token = OrfTokenRepr {
        ring_id: ring,
        token_seq: 9,
        seq: 120,
        aru: 118,
        aru_id: Some(NodeId(2)),
        backlog: 4,
        fcc: 17,
        retrans_flg: false,
        rtr: heapless::Vec::new(),
    };
    token
        .rtr
        .push(RtrEntry {
            ring_id: ring,
            seq: 119,
        })
        .map_err(|_| "rtr push")?;
    let Body::OrfToken(v) = encode(&token, Flags::NONE, &mut buf)?.body else {
        return Err("token type");
    };
    ensure(
        OrfTokenRepr::parse(&v).ok() == Some(token),
        "ORF token round-trip",
    )?;

    let payload = [7u8; 100];
    let mcast = McastRepr {
        ring_id: ring,
        seq: 120,
        originator: NodeId(3),
        guarantee: Guarantee::Safe,
        payload: &payload,
    };
    let Body::Mcast(v) = encode(&mcast, Flags::ENCAPSULATED, &mut buf)?.body else {
        return Err("mcast type");
    };
    ensure(McastRepr::parse(&v).ok() == Some(mcast), "MCAST round-trip")?;

    let mut join = MembJoinRepr {
        ring_seq: 42,
        version_min: 1,
        version_max: 1,
        proc_list: heapless::Vec::new(),
        fail_list: heapless::Vec::new(),
    };
    for n in [1, 2, 4] {
        join.proc_list.push(NodeId(n)).map_err(|_| "proc push")?;
    }
    join.fail_list.push(NodeId(3)).map_err(|_| "fail push")?;
    let Body::MembJoin(v) = encode(&join, Flags::LEAVE, &mut buf)?.body else {
        return Err("join type");
    };
    ensure(
        MembJoinRepr::parse(&v).ok() == Some(join),
        "join round-trip",
    )?;

    let mut commit = MembCommitTokenRepr {
        ring_id: RingId::new(NodeId(1), 46),
        token_seq: 3,
        wire_version: 1,
        memb_index: 2,
        members: heapless::Vec::new(),
    };
    for n in [1, 2] {
        let m = CommitMember {
            node: NodeId(n),
            old_ring_id: ring,
            aru: 118,
            high_delivered: 117,
            received: n == 1,
        };
        commit.members.push(m).map_err(|_| "member push")?;
    }
    let Body::MembCommitToken(v) = encode(&commit, Flags::NONE, &mut buf)?.body else {
        return Err("commit type");
    };
    ensure(
        MembCommitTokenRepr::parse(&v).ok() == Some(commit),
        "commit token round-trip",
    )?;

    let md = MergeDetectRepr { ring_id: ring };
    let Body::MergeDetect(v) = encode(&md, Flags::NONE, &mut buf)?.body else {
        return Err("merge type");
    };
    ensure(
        MergeDetectRepr::parse(&v).ok() == Some(md),
        "merge detect round-trip",
    )?;

    let thc = TokenHoldCancelRepr { ring_id: ring };
    let Body::TokenHoldCancel(v) = encode(&thc, Flags::NONE, &mut buf)?.body else {
        return Err("hold cancel type");
    };
    ensure(
        TokenHoldCancelRepr::parse(&v).ok() == Some(thc),
        "token hold cancel round-trip",
    )?;

    // Packing: two small messages and the start of a large one in one frame.
    let big = [9u8; 3000];
    let mut pack = [0u8; 1000];
    let mut w = PackWriter::new(&mut pack).map_err(|_| "PackWriter::new")?;
    ensure(
        w.push(ServiceId(1), b"one") && w.push(ServiceId(2), b"two"),
        "pack whole",
    )?;
    let mut offset = 0;
    ensure(
        w.push_part(ServiceId(3), &big, &mut offset, 64) == Progress::Partial,
        "pack fragment",
    )?;
    let len = w.finish();
    let p = Pack::new_checked(&pack[..len]).map_err(|_| "Pack::new_checked")?;
    let mut kinds = p.records().map(|r| (r.service, r.kind));
    ensure(
        kinds.next() == Some((ServiceId(1), RecordKind::Whole)),
        "record 0",
    )?;
    ensure(
        kinds.next() == Some((ServiceId(2), RecordKind::Whole)),
        "record 1",
    )?;
    ensure(
        kinds.next() == Some((ServiceId(3), RecordKind::First)),
        "record 2",
    )?;
    ensure(
        kinds.next().is_none() && offset > 0 && offset < big.len(),
        "record count",
    )?;
    Ok(())
}
