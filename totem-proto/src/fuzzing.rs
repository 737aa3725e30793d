//! Fuzz properties, shared by the cargo-fuzz targets in `fuzz/` and the stable fuzz-lite test
//! (`tests/fuzz_lite.rs`), so both hold the crate to the same contract (quinn's and rustls'
//! `#[cfg(fuzzing)] pub mod fuzzing`).
//!
//! Compiled into the crate only under `--cfg fuzzing` (which cargo-fuzz sets). fuzz-lite
//! runs on stable without that cfg, so `tests/common/mod.rs` compiles this very file as its
//! child module (`#[path]`) after importing the names used below through `super::` (in the
//! library, `super` is the crate root and those are its re-exports). One copy of the
//! property, two harnesses; only the public API is used, so the second build also proves
//! nothing private is needed to check it.
//!
//! The properties:
//!
//! * **Frames** ([`fuzz_frame`]): [`Frame::parse`] never panics; every view's accessors never
//!   panic after `new_checked` (the smoltcp contract), whatever the bytes; and a frame that
//!   parses round-trips (rustls' `emit(parse(b)) == b`): its header and body `Repr`, emitted
//!   again through [`emit_frame`], give back exactly the input. Every field is in a `Repr`,
//!   so a frame that parses but does not round-trip is a decoder bug (two encodings of one
//!   meaning, or a byte nobody checks). An MCAST payload is checked again as a packed frame,
//!   or, when encapsulated, as a frame.
//! * **Packs** ([`fuzz_pack`]): [`Pack::new_checked`] never panics, and a pack that parses
//!   is what a [`PackWriter`] makes of its records: re-packing them gives back exactly the
//!   input. The single exception is stated at [`repack`].
//!
//! Panicking is how a fuzz property reports a violation, hence the `allow` below.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

// `super::alloc`: the library's root has `extern crate alloc` under `fuzzing`; so does
// tests/common.
use super::alloc::vec;
use super::alloc::vec::Vec;

use super::header::Flags;
use super::pack::{FIRST_RECORD_HEADER_LEN, PACK_HEADER_LEN, RECORD_HEADER_LEN};
use super::{
    Body, DecodeError, EmitBody, Frame, FrameHead, HEADER_LEN, Header, HeaderRepr, Mcast,
    McastRepr, MembCommitToken, MembCommitTokenRepr, MembJoin, MembJoinRepr, MergeDetect,
    MergeDetectRepr, OrfToken, OrfTokenRepr, Pack, PackWriter, Progress, Record, RecordKind,
    TokenHoldCancel, TokenHoldCancelRepr, emit_frame,
};

/// The smallest buffer [`PackWriter::new`] accepts: a pack header and a `First` record of
/// one byte.
pub const WRITER_MIN_BUF: usize = PACK_HEADER_LEN + FIRST_RECORD_HEADER_LEN + 1;

/// A `First` record's message is materialised for re-packing up to this length; above it the
/// property re-packs a shorter message and writes the parsed total in (see [`repack`]), so a
/// fuzzed 4 GiB total costs no 4 GiB allocation (libFuzzer's malloc limit would flag it).
pub const REPACK_MAX_MESSAGE: usize = 1 << 21;

/// The cargo-fuzz `frame` target: [`check_frame`] with the verdict dropped.
pub fn fuzz_frame(data: &[u8]) {
    let _ = check_frame(data);
}

/// The cargo-fuzz `pack` target: [`check_pack`] with the verdict dropped.
pub fn fuzz_pack(data: &[u8]) {
    let _ = check_pack(data);
}

/// Checks the frame property on `data` (see the module docs) and returns whether `data` is a
/// valid frame.
///
/// # Panics
/// When the property is violated: that is the finding.
pub fn check_frame(data: &[u8]) -> bool {
    // The views' panic contract holds on any bytes, wherever a body may start.
    exercise_views(data);
    if let Some(body) = data.get(HEADER_LEN..) {
        exercise_views(body);
    }
    let Ok(frame) = Frame::parse(data) else {
        return false;
    };
    let out = reemit_frame(&frame);
    assert_eq!(
        out, data,
        "a frame that parses does not round-trip: {frame:?}"
    );
    if let Body::Mcast(m) = &frame.body {
        if frame.header.flags.contains(Flags::ENCAPSULATED) {
            let _ = check_frame(m.payload());
        } else {
            let _ = check_pack(m.payload());
        }
    }
    true
}

/// Emits a parsed frame again, from its header and body `Repr`s, into a buffer of exactly
/// the frame's length.
///
/// # Panics
/// If a body that [`Frame::parse`] accepted is refused by its `Repr::parse`, or the `Repr`
/// by [`emit_frame`]: validation must agree between the layers.
pub fn reemit_frame(frame: &Frame<'_>) -> Vec<u8> {
    let h = frame.header;
    let head = FrameHead {
        version: h.version,
        cluster_id: h.cluster_id,
        sender: h.sender,
        flags: h.flags,
    };
    let out = match &frame.body {
        Body::OrfToken(v) => emit_vec(&head, &ok(OrfTokenRepr::parse(v))),
        Body::Mcast(v) => emit_vec(&head, &ok(McastRepr::parse(v))),
        Body::MergeDetect(v) => emit_vec(&head, &ok(MergeDetectRepr::parse(v))),
        Body::MembJoin(v) => emit_vec(&head, &ok(MembJoinRepr::parse(v))),
        Body::MembCommitToken(v) => emit_vec(&head, &ok(MembCommitTokenRepr::parse(v))),
        Body::TokenHoldCancel(v) => emit_vec(&head, &ok(TokenHoldCancelRepr::parse(v))),
    };
    // The header Repr round-trips on its own as well.
    let reparsed = HeaderRepr::parse(&Header::new_unchecked(&out[..]));
    assert_eq!(reparsed, Ok(h), "the emitted header parses differently");
    out
}

fn ok<T>(r: Result<T, DecodeError>) -> T {
    r.unwrap_or_else(|e| panic!("Frame::parse accepted a body that Repr::parse rejects: {e}"))
}

fn emit_vec<B: EmitBody>(head: &FrameHead, body: &B) -> Vec<u8> {
    let mut buf = vec![0; HEADER_LEN + body.body_len()];
    let n = emit_frame(head, body, &mut buf)
        .unwrap_or_else(|e| panic!("emit_frame refused a Repr parsed from a valid frame: {e}"));
    assert_eq!(
        n,
        buf.len(),
        "emit_frame wrote another length than header + body_len()"
    );
    buf
}

/// Wraps `bytes` in every view through `new_checked` and, where that succeeds, reads every
/// accessor; runs every `Repr::parse` on unchecked views. Asserts nothing but "no panic".
fn exercise_views(bytes: &[u8]) {
    if let Ok(h) = Header::new_checked(bytes) {
        let _ = (
            h.magic(),
            h.version(),
            h.msg_type(),
            h.cluster_id(),
            h.sender(),
            h.flags(),
        );
        let _ = h.payload().len();
    }
    let _ = HeaderRepr::parse(&Header::new_unchecked(bytes));
    if let Ok(v) = OrfToken::new_checked(bytes) {
        let _ = (
            v.ring_id(),
            v.token_seq(),
            v.seq(),
            v.aru(),
            v.aru_id(),
            v.backlog(),
        );
        let _ = (v.fcc(), v.retrans_flg());
        let _ = v.rtr_list().count();
    }
    let _ = OrfTokenRepr::parse(&OrfToken::new_unchecked(bytes));
    if let Ok(v) = Mcast::new_checked(bytes) {
        let _ = (
            v.ring_id(),
            v.seq(),
            v.originator(),
            v.payload_len(),
            v.guarantee(),
        );
        let _ = v.payload().len();
    }
    let _ = McastRepr::parse(&Mcast::new_unchecked(bytes));
    if let Ok(v) = MembJoin::new_checked(bytes) {
        let _ = (v.ring_seq(), v.version_min(), v.version_max());
        let (procs, fails) = (v.proc_list(), v.fail_list());
        let _ = (procs.to_vec(), fails.to_vec(), procs.len() + fails.len());
        if let Some(id) = procs.iter().last() {
            let _ = (procs.contains(id), fails.contains(id));
        }
    }
    let _ = MembJoinRepr::parse(&MembJoin::new_unchecked(bytes));
    if let Ok(v) = MembCommitToken::new_checked(bytes) {
        let _ = (v.ring_id(), v.token_seq(), v.wire_version(), v.memb_index());
        let _ = v.members().count();
    }
    let _ = MembCommitTokenRepr::parse(&MembCommitToken::new_unchecked(bytes));
    if let Ok(v) = MergeDetect::new_checked(bytes) {
        let _ = v.ring_id();
    }
    let _ = MergeDetectRepr::parse(&MergeDetect::new_unchecked(bytes));
    if let Ok(v) = TokenHoldCancel::new_checked(bytes) {
        let _ = v.ring_id();
    }
    let _ = TokenHoldCancelRepr::parse(&TokenHoldCancel::new_unchecked(bytes));
}

/// Checks the pack property on `data` (see the module docs) and returns whether `data` is a
/// valid packed frame.
///
/// # Panics
/// When the property is violated: that is the finding.
pub fn check_pack(data: &[u8]) -> bool {
    let Ok(pack) = Pack::new_checked(data) else {
        return false;
    };
    assert_eq!(pack.as_bytes(), data);
    let records: Vec<Record<'_>> = pack.records().collect();
    assert_eq!(
        records.len(),
        pack.count(),
        "records() lost records of a valid pack"
    );
    let used: usize = records.iter().map(Record::wire_len).sum();
    assert_eq!(
        PACK_HEADER_LEN + used,
        data.len(),
        "records do not cover the pack"
    );
    if let Some(out) = repack(&records, data.len()) {
        assert_eq!(
            out, data,
            "a pack that parses is not what PackWriter makes of its records"
        );
    }
    true
}

/// Packs `records` again with a [`PackWriter`], as a sender would have produced them, into a
/// frame of `frame_len` bytes (the length of the frame they were parsed from; a writer
/// fills its frame when it ends it with a fragment).
///
/// `None` in the one case no writer can produce: a frame whose last record is a fragment
/// (`First`/`Middle`) and that is shorter than [`WRITER_MIN_BUF`] — a `Middle` record of 1 to
/// 4 bytes alone in its frame, which only an MTU below any real one would make.
///
/// # Panics
/// If the writer refuses a record the parser accepted.
pub fn repack(records: &[Record<'_>], frame_len: usize) -> Option<Vec<u8>> {
    let last = records.last().map(|r| r.kind);
    let ends_in_fragment = matches!(last, Some(RecordKind::First | RecordKind::Middle));
    let buf_len = if ends_in_fragment {
        frame_len
    } else {
        frame_len.max(WRITER_MIN_BUF)
    };
    if buf_len < WRITER_MIN_BUF {
        return None;
    }
    let mut buf = vec![0; buf_len];
    // The patch for a First record whose total is above REPACK_MAX_MESSAGE: (offset, total).
    let mut total_patch = None;
    let mut w = PackWriter::new(&mut buf).expect("buf_len >= WRITER_MIN_BUF");
    for (i, r) in records.iter().enumerate() {
        match r.kind {
            RecordKind::Whole => {
                assert!(w.push(r.service, r.data), "Whole record {i} refused");
            }
            RecordKind::Last => {
                // The tail of a message whose head went out in earlier frames.
                let msg = [&[0xee][..], r.data].concat();
                let progress = w.push_part(r.service, &msg, &mut 1, 0);
                assert_eq!(progress, Progress::Complete, "Last record {i}");
            }
            RecordKind::Middle => {
                let msg = [&[0xee][..], r.data, &[0xee]].concat();
                let progress = w.push_part(r.service, &msg, &mut 1, 0);
                assert_eq!(progress, Progress::Partial, "Middle record {i}");
            }
            RecordKind::First => {
                let total = r.total_len.expect("a parsed First record has a total") as usize;
                let msg_len = if total <= REPACK_MAX_MESSAGE {
                    total
                } else {
                    // Any length that cannot go whole in the record's place gives the same
                    // bytes but for the total, written in below from the parsed record.
                    let at = PACK_HEADER_LEN
                        + records[..i].iter().map(Record::wire_len).sum::<usize>()
                        + RECORD_HEADER_LEN;
                    total_patch = Some((at, total as u32));
                    r.data.len() + FIRST_RECORD_HEADER_LEN - RECORD_HEADER_LEN + 1
                };
                let mut msg = vec![0xee; msg_len];
                msg[..r.data.len()].copy_from_slice(r.data);
                let progress = w.push_part(r.service, &msg, &mut 0, 0);
                assert_eq!(progress, Progress::Partial, "First record {i}");
            }
            RecordKind::Unknown(k) => panic!("a parsed pack holds a record of kind {k}"),
        }
    }
    let n = w.finish();
    buf.truncate(n);
    if let Some((at, total)) = total_patch {
        buf[at..at + 4].copy_from_slice(&total.to_be_bytes());
    }
    Some(buf)
}
