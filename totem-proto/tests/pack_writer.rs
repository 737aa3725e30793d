//! [`PackWriter`] against [`Pack`]: filling frames with small messages, fragmenting a large
//! one over MTU-sized frames and joining it again, the writer's refusals, and a mixed round
//! where a receiver must see exactly the messages that went in.

mod common;

use common::SplitMix64;
use totem_proto::pack::{FIRST_RECORD_HEADER_LEN, PACK_HEADER_LEN, RECORD_HEADER_LEN};
use totem_proto::{
    DecodeError, EmitError, Pack, PackWriter, Progress, RecordKind, ServiceId, pack_capacity,
};

/// A UDP payload on a 1500-byte MTU: 1500 − 20 (IPv4) − 8 (UDP).
const FRAME_1500: usize = 1472;

fn capacity() -> usize {
    pack_capacity(FRAME_1500).unwrap()
}

/// A message's bytes, distinct per (seed, index) so misplaced pieces show.
fn message(rng: &mut SplitMix64, len: usize) -> Vec<u8> {
    let mut m = vec![0; len];
    rng.fill(&mut m);
    m
}

/// The sender's loop: packs `msgs` in order into frames of `cap` bytes.
fn pack_all(msgs: &[(ServiceId, Vec<u8>)], cap: usize, min_first: usize) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    let mut buf = vec![0; cap];
    let mut w = PackWriter::new(&mut buf).unwrap();
    for (svc, msg) in msgs {
        let mut offset = 0;
        loop {
            match w.push_part(*svc, msg, &mut offset, min_first) {
                Progress::Complete => break,
                Progress::Partial | Progress::NoRoom => {
                    let was_empty = w.is_empty();
                    let n = w.finish();
                    assert!(!was_empty || n == 0);
                    assert!(n > 0, "NoRoom on an empty frame of {cap} bytes");
                    frames.push(buf[..n].to_vec());
                    w = PackWriter::new(&mut buf).unwrap();
                }
            }
        }
    }
    let n = w.finish();
    if n > 0 {
        frames.push(buf[..n].to_vec());
    }
    frames
}

/// The receiver: validates every frame and rejoins fragments, one chain at a time (a
/// single sender, so chains cannot interleave).
fn unpack_all(frames: &[Vec<u8>]) -> Vec<(ServiceId, Vec<u8>)> {
    let mut out = Vec::new();
    let mut chain: Option<(ServiceId, u32, Vec<u8>)> = None;
    for f in frames {
        let pack = Pack::new_checked(f).unwrap();
        for r in pack.records() {
            match r.kind {
                RecordKind::Whole => {
                    assert!(chain.is_none(), "a Whole record inside a chain");
                    out.push((r.service, r.data.to_vec()));
                }
                RecordKind::First => {
                    assert!(chain.is_none(), "a chain started inside a chain");
                    chain = Some((r.service, r.total_len.unwrap(), r.data.to_vec()));
                }
                RecordKind::Middle | RecordKind::Last => {
                    let (svc, total, data) = chain.as_mut().expect("a continuation without First");
                    assert_eq!(*svc, r.service);
                    data.extend_from_slice(r.data);
                    assert!(data.len() <= *total as usize);
                    if r.kind == RecordKind::Last {
                        let (svc, total, data) = chain.take().unwrap();
                        assert_eq!(data.len(), total as usize, "chain length is not its total");
                        out.push((svc, data));
                    }
                }
                RecordKind::Unknown(k) => panic!("kind {k}"),
            }
        }
    }
    assert!(chain.is_none(), "an unfinished chain");
    out
}

#[test]
fn small_messages_fill_a_frame_until_the_next_does_not_fit() {
    let cap = capacity();
    let mut rng = SplitMix64(1);
    let mut buf = vec![0; cap];
    let mut w = PackWriter::new(&mut buf).unwrap();
    let mut sent = Vec::new();
    loop {
        let m = message(&mut rng, 64);
        if !w.push(ServiceId(9), &m) {
            break;
        }
        sent.push(m);
    }
    let per_record = RECORD_HEADER_LEN + 64;
    assert_eq!(sent.len(), (cap - PACK_HEADER_LEN) / per_record);
    assert!(!w.fits(64));
    let left = cap - PACK_HEADER_LEN - per_record * sent.len();
    assert!(left < per_record);
    assert_eq!(w.fits(0), left >= RECORD_HEADER_LEN);
    assert_eq!(w.count(), sent.len());
    let n = w.finish();
    assert_eq!(n, PACK_HEADER_LEN + per_record * sent.len());

    let pack = Pack::new_checked(&buf[..n]).unwrap();
    assert_eq!(pack.count(), sent.len());
    for (r, m) in pack.records().zip(&sent) {
        assert_eq!(
            (r.service, r.kind, r.total_len, r.data),
            (ServiceId(9), RecordKind::Whole, None, &m[..])
        );
    }
}

#[test]
fn a_1mib_message_fragments_over_mtu_frames_and_rejoins_byte_identical() {
    let cap = capacity();
    let mut rng = SplitMix64(2);
    let msg = message(&mut rng, (1 << 20) + 17);
    let frames = pack_all(&[(ServiceId(4), msg.clone())], cap, 0);

    // First frame: one First record filling it; then Middle-only frames; then a Last.
    let first_data = cap - PACK_HEADER_LEN - FIRST_RECORD_HEADER_LEN;
    let middle_data = cap - PACK_HEADER_LEN - RECORD_HEADER_LEN;
    let middles = (msg.len() - first_data - 1) / middle_data;
    assert_eq!(frames.len(), 1 + middles + 1);
    for (i, f) in frames.iter().enumerate() {
        assert!(f.len() <= cap);
        let pack = Pack::new_checked(f).unwrap();
        assert_eq!(pack.count(), 1, "frame {i}");
        let r = pack.records().next().unwrap();
        let want = match i {
            0 => RecordKind::First,
            i if i == frames.len() - 1 => RecordKind::Last,
            _ => RecordKind::Middle,
        };
        assert_eq!(r.kind, want, "frame {i}");
        if r.kind != RecordKind::Last {
            assert_eq!(
                f.len(),
                cap,
                "a fragment that does not end the chain fills its frame"
            );
        }
    }
    assert_eq!(unpack_all(&frames), vec![(ServiceId(4), msg)]);
}

#[test]
fn a_continuation_cannot_go_into_a_nonempty_frame() {
    let msg = vec![7u8; 5000];
    let mut buf = vec![0; capacity()];
    let mut w = PackWriter::new(&mut buf).unwrap();
    assert!(w.push(ServiceId(1), b"small"));
    let mut offset = 1000;
    assert_eq!(
        w.push_part(ServiceId(2), &msg, &mut offset, 0),
        Progress::NoRoom
    );
    assert_eq!(offset, 1000, "offset moved on NoRoom");
    assert_eq!(w.count(), 1);
    // The frame is still open for whole messages.
    assert!(w.push(ServiceId(1), b"more"));
}

#[test]
fn a_frame_ended_by_a_fragment_takes_nothing_more() {
    let msg = vec![7u8; 5000];
    let mut buf = vec![0; capacity()];
    let mut w = PackWriter::new(&mut buf).unwrap();
    let mut offset = 0;
    assert_eq!(
        w.push_part(ServiceId(2), &msg, &mut offset, 0),
        Progress::Partial
    );
    assert!(!w.fits(0));
    assert!(!w.push(ServiceId(1), b""));
    let mut other = 0;
    assert_eq!(
        w.push_part(ServiceId(1), b"x", &mut other, 0),
        Progress::NoRoom
    );
    assert_eq!(
        w.push_part(ServiceId(2), &msg, &mut offset, 0),
        Progress::NoRoom
    );
    assert_eq!(w.count(), 1);
}

#[test]
fn min_first_keeps_a_nearly_full_frame_from_ending_in_a_sliver() {
    let cap = 200;
    let big = vec![1u8; 1000];
    let fill = vec![2u8; 150];
    // After `fill`, a First record has room for 200 − 2 − (5 + 150) − 9 = 34 data bytes.
    let room = cap - PACK_HEADER_LEN - (RECORD_HEADER_LEN + fill.len()) - FIRST_RECORD_HEADER_LEN;
    assert_eq!(room, 34);

    let mut buf = vec![0; cap];
    let mut w = PackWriter::new(&mut buf).unwrap();
    assert!(w.push(ServiceId(1), &fill));
    let mut offset = 0;
    assert_eq!(
        w.push_part(ServiceId(1), &big, &mut offset, room + 1),
        Progress::NoRoom
    );
    assert_eq!((offset, w.count()), (0, 1), "NoRoom wrote nothing");
    assert_eq!(
        w.push_part(ServiceId(1), &big, &mut offset, room),
        Progress::Partial
    );
    assert_eq!(offset, room);
    let n = w.finish();
    assert_eq!(n, cap);
    let rec = Pack::new_checked(&buf[..n])
        .unwrap()
        .records()
        .nth(1)
        .unwrap();
    assert_eq!(
        (rec.kind, rec.total_len, rec.data.len()),
        (RecordKind::First, Some(1000), room)
    );
}

#[test]
fn finish_of_an_empty_writer_is_0() {
    let mut buf = vec![0xee; 64];
    let w = PackWriter::new(&mut buf).unwrap();
    assert!(w.is_empty());
    assert_eq!(w.finish(), 0);
    assert!(
        buf.iter().all(|&b| b == 0xee),
        "an empty finish wrote the count"
    );
    // Also after a refusal.
    let mut buf = vec![0; 64];
    let mut w = PackWriter::new(&mut buf).unwrap();
    assert!(!w.push(ServiceId(1), &[0; 100]));
    assert_eq!(w.finish(), 0);
}

#[test]
fn a_writer_needs_room_for_one_first_record_of_one_byte() {
    let need = PACK_HEADER_LEN + FIRST_RECORD_HEADER_LEN + 1;
    assert_eq!(
        PackWriter::new(&mut vec![0; need - 1]).unwrap_err(),
        EmitError::BufferTooSmall {
            need,
            have: need - 1
        }
    );
    assert!(PackWriter::new(&mut vec![0; need]).is_ok());
}

#[test]
fn pack_capacity_leaves_room_for_encapsulation() {
    // Two frame headers and two MCAST headers (a re-broadcast old-ring frame).
    assert_eq!(pack_capacity(FRAME_1500), Some(FRAME_1500 - 2 * (14 + 29)));
    let overhead = 2 * (14 + 29) + PACK_HEADER_LEN + FIRST_RECORD_HEADER_LEN;
    assert_eq!(pack_capacity(overhead), None);
    assert_eq!(pack_capacity(0), None);
    assert!(pack_capacity(overhead + 1).is_some());
}

#[test]
fn a_mixed_round_of_small_and_large_messages_arrives_exactly_as_sent() {
    let mut rng = SplitMix64(0x7075_6e6b);
    let mut msgs = Vec::new();
    for _ in 0..600 {
        let len = match rng.below(20) {
            0 => 1500 + rng.below(200_000),
            1 => 65_535 + rng.below(3),
            2 => 0,
            _ => rng.below(300),
        };
        msgs.push((ServiceId(rng.below(4) as u16), message(&mut rng, len)));
    }
    for (cap, min_first) in [
        (capacity(), 0),
        (capacity(), 64),
        (pack_capacity(9000 - 28).unwrap(), 128),
    ] {
        let frames = pack_all(&msgs, cap, min_first);
        assert!(frames.iter().all(|f| f.len() <= cap));
        assert_eq!(
            unpack_all(&frames),
            msgs,
            "cap {cap}, min_first {min_first}"
        );
    }
}

#[test]
fn records_of_a_frame_end_at_its_last_record() {
    // A frame shorter than its count claims is truncated, never read past.
    let mut buf = vec![0; 64];
    let mut w = PackWriter::new(&mut buf).unwrap();
    assert!(w.push(ServiceId(1), b"abc"));
    assert!(w.push(ServiceId(2), b"de"));
    let n = w.finish();
    let frame = &buf[..n];
    let mut wrong_count = frame.to_vec();
    wrong_count[1] = 3;
    assert_eq!(
        Pack::new_checked(&wrong_count).unwrap_err(),
        DecodeError::Truncated {
            need: n + 2,
            have: n
        }
    );
}

#[test]
fn min_first_above_the_frame_capacity_still_starts_the_chain_in_an_empty_frame() {
    // Found by proptest: with min_first above what an empty frame holds, every fresh frame
    // answered NoRoom and a sender following the docs ("start a new frame") looped forever.
    let big = vec![3u8; 100];
    let mut buf = vec![0; 24];
    let mut w = PackWriter::new(&mut buf).unwrap();
    let mut offset = 0;
    assert_eq!(
        w.push_part(ServiceId(1), &big, &mut offset, 28),
        Progress::Partial
    );
    assert_eq!(offset, 24 - PACK_HEADER_LEN - FIRST_RECORD_HEADER_LEN);
    let frames = pack_all(&[(ServiceId(1), big.clone())], 24, 1000);
    assert_eq!(unpack_all(&frames), vec![(ServiceId(1), big)]);
}

#[test]
fn a_message_just_above_the_record_limit_is_fragmented_and_parses() {
    // 65 537 bytes cannot be one record (len is 16 bits) though the frame has room: the
    // writer fragments it with a First of 65 535, a total only 2 above its len.
    let msg = vec![5u8; u16::MAX as usize + 2];
    let frames = pack_all(&[(ServiceId(1), msg.clone())], 70_000, 0);
    assert_eq!(frames.len(), 2);
    let first = Pack::new_checked(&frames[0])
        .unwrap()
        .records()
        .next()
        .unwrap();
    assert_eq!(
        (first.kind, first.data.len(), first.total_len),
        (RecordKind::First, 65_535, Some(65_537))
    );
    assert_eq!(unpack_all(&frames), vec![(ServiceId(1), msg)]);
}
