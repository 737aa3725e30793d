//! The zero-copy request path: reserve / commit on the ring (golden bytes, cancel,
//! truncation, limits, a seeded model check with records that wrap), the client's mirrored
//! request ring (each byte visible twice, so a wrapping record is contiguous), and
//! [`crate::RequestSlot`] end to end: 1 MiB slots that wrap, in place; dropped slots;
//! `TryAgain`; the bounce-buffer fallback without a mirror; `wait_request_room`.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::time::Duration;

use crate::ring::{Consumer, Producer, PushError, Reservation, RingMemory, write_payload};
use crate::shm::{Layout, NO_MIRROR, Rings, ShmRing, create_memfd};
use crate::{Client, DEFAULT_MAX_MESSAGE, Error, ServerConfig};

use super::ring_shm::ring;
use super::{Rng, Scratch, echo, pair, payload};

/// A producer over a mirrored ring (as the client maps its request ring) and a consumer over
/// a plain one (as the daemon maps it), on the same memfd.
fn mirrored_ring(cap: usize, max: usize) -> (Producer<ShmRing>, Consumer<ShmRing>) {
    let layout = Layout { caps: [cap; 3] };
    layout.validate(max).unwrap();
    let fd = create_memfd(layout.total()).unwrap();
    let client = Rings::map_mirrored(&fd, &layout).unwrap();
    assert!(client.request.is_mirrored(), "4 KiB pages: always mirrored");
    let daemon = Rings::map(&fd, &layout).unwrap();
    (
        Producer::new(client.request, max),
        Consumer::new(daemon.request, max),
    )
}

/// Write `bytes` into the reservation in place when the memory offers it contiguously (the
/// mirror always does), else through the wrapping copy. Returns whether it was in place.
fn fill(p: &Producer<ShmRing>, r: &Reservation, bytes: &[u8]) -> bool {
    let mem = p.memory();
    let off = (r.payload_pos() & (mem.capacity() as u64 - 1)) as usize;
    assert!(bytes.len() <= r.len());
    match mem.contiguous(off, bytes.len()) {
        Some(dst) => {
            // SAFETY: `contiguous` gave a run of `bytes.len()` bytes of the live mapping
            // (`p` keeps it alive); they are inside the reserved free space, which no one
            // else touches in this single-threaded test; `bytes` is private memory.
            unsafe {
                core::ptr::copy_nonoverlapping(bytes.as_ptr(), dst.as_ptr(), bytes.len());
            }
            true
        }
        None => {
            write_payload(mem, r, bytes);
            false
        }
    }
}

#[test]
fn reserve_and_commit_write_the_same_bytes_as_push() {
    let (mut p, mut c) = ring(4096, 1024);
    let r = p.try_reserve(3).unwrap();
    assert_eq!(r.payload_pos(), 8);
    write_payload(p.memory(), &r, b"abc");
    assert!(!p.commit(r), "the consumer never slept");
    p.try_push(b"").unwrap();
    let mut raw = [0u8; 24];
    p.memory().read(0, &mut raw);
    assert_eq!(&raw[..11], b"\x03\x00\x00\x00\x00\x00\x00\x00abc");
    assert_eq!(&raw[16..24], b"\x00\x00\x00\x00\x01\x00\x00\x00");
    let mut out = Vec::new();
    assert_eq!(c.try_pop(&mut out), Ok(Some(false)));
    assert_eq!(out, b"abc");
    assert_eq!(c.try_pop(&mut out), Ok(Some(false)));
    assert!(out.is_empty());
}

#[test]
fn a_dropped_reservation_publishes_nothing() {
    let (mut p, mut c) = ring(4096, 1024);
    let r = p.try_reserve(100).unwrap();
    write_payload(p.memory(), &r, &[0xee; 100]);
    drop(r);
    let mut out = Vec::new();
    assert_eq!(c.try_pop(&mut out), Ok(None), "nothing published");
    assert_eq!(p.backlog(), 0);
    // The same space is handed out again, and the sequence number was not used up.
    let r = p.try_reserve(5).unwrap();
    assert_eq!(r.payload_pos(), 8);
    write_payload(p.memory(), &r, b"hello");
    p.commit(r);
    assert_eq!(c.try_pop(&mut out), Ok(Some(false)));
    assert_eq!(out, b"hello");
}

#[test]
fn a_truncated_reservation_publishes_its_prefix_and_frees_the_rest() {
    let (mut p, mut c) = ring(4096, 1024);
    let mut r = p.try_reserve(1000).unwrap();
    write_payload(p.memory(), &r, &payload(1, 1000));
    r.truncate(10);
    r.truncate(2000); // never grows
    assert_eq!(r.len(), 10);
    p.commit(r);
    assert_eq!(p.backlog(), 24, "header + 10 bytes + padding, not 1008");
    let mut out = Vec::new();
    c.try_pop(&mut out).unwrap().unwrap();
    assert_eq!(out, payload(1, 1000)[..10]);
}

#[test]
fn reservations_meet_the_same_limits_as_push() {
    let (mut p, _c) = ring(4096, 2000);
    assert_eq!(p.try_reserve(2001), Err(PushError::TooLarge));
    assert_eq!(p.try_reserve(usize::MAX), Err(PushError::TooLarge));
    let r = p.try_reserve(2000).unwrap();
    p.commit(r);
    let r = p.try_reserve(2000).unwrap();
    p.commit(r);
    // 2 × 2008 used: 80 bytes left, so a 72-byte payload fits and a 73-byte one does not.
    assert_eq!(p.try_reserve(73), Err(PushError::Full));
    assert!(p.try_reserve(72).is_ok());
}

#[test]
fn the_mirror_shows_every_byte_at_both_addresses() {
    let (p, c) = mirrored_ring(4096, 1024);
    let mem = p.memory();
    // 8 bytes from offset 4092: four at the end of the data area, four at its start.
    let dst = mem
        .contiguous(4092, 8)
        .expect("mirrored: a wrapping run is contiguous");
    // SAFETY: `contiguous` returned 8 bytes of the live mirror; nothing else uses the ring.
    unsafe { core::ptr::copy_nonoverlapping(b"ABCDEFGH".as_ptr(), dst.as_ptr(), 8) };
    let (mut end, mut start) = ([0u8; 4], [0u8; 4]);
    // The daemon's unmirrored view of the same memfd sees them in two places.
    c.memory().read(4092, &mut end);
    c.memory().read(0, &mut start);
    assert_eq!((&end, &start), (b"ABCD", b"EFGH"));
    assert!(
        mem.contiguous(4096, 1).is_none(),
        "offsets stay below capacity"
    );
    assert!(
        mem.contiguous(0, 4097).is_none(),
        "runs stay within one capacity"
    );
    // Without a mirror a wrapping run is not contiguous.
    let (plain, _) = ring(4096, 1024);
    assert!(plain.memory().contiguous(4092, 8).is_none());
    assert!(plain.memory().contiguous(4088, 8).is_some());
}

/// The property: any interleaving of reserve-and-commit (in place, possibly truncated),
/// reserve-and-drop, push and pop delivers exactly the committed and pushed records, in
/// order, intact — over a mirrored ring where every reservation is written in place
/// however it straddles the end, and over a plain one through the wrapping copy.
#[test]
fn seeded_reserve_commit_matches_a_model() {
    for mirrored in [true, false] {
        let (mut p, mut c) = if mirrored {
            mirrored_ring(4096, 1000)
        } else {
            ring(4096, 1000)
        };
        let mut rng = Rng(0x5eed_0000 + u64::from(mirrored));
        let mut model: VecDeque<Vec<u8>> = VecDeque::new();
        let (mut n, mut wrapped, mut out) = (0u64, 0u32, Vec::new());
        for _ in 0..100_000 {
            let len = match rng.below(4) {
                0 => rng.below(16) as usize,
                _ => rng.below(1001) as usize,
            };
            match rng.below(8) {
                0..=3 => match p.try_reserve(len) {
                    Ok(mut r) => {
                        let cap = p.memory().capacity() as u64;
                        let off = r.payload_pos() % cap;
                        if off + len as u64 > cap {
                            wrapped += 1;
                        }
                        let keep = if rng.below(4) == 0 {
                            rng.below(len as u64 + 1) as usize
                        } else {
                            len
                        };
                        let bytes = payload(n, len);
                        let in_place = fill(&p, &r, &bytes);
                        if mirrored {
                            assert!(in_place, "a mirrored ring is always contiguous");
                        }
                        r.truncate(keep);
                        p.commit(r);
                        model.push_back(bytes[..keep].to_vec());
                        n += 1;
                    }
                    Err(PushError::Full) => {}
                    Err(e) => panic!("{e:?}"),
                },
                4 => {
                    if let Ok(r) = p.try_reserve(len) {
                        fill(&p, &r, &alloc::vec![0xee; len]);
                        // Dropped: never published.
                    }
                }
                5 => {
                    let bytes = payload(n, len);
                    if p.try_push(&bytes).is_ok() {
                        model.push_back(bytes);
                        n += 1;
                    }
                }
                _ => match c.try_pop(&mut out).unwrap() {
                    Some(_) => assert_eq!(out, model.pop_front().unwrap()),
                    None => assert!(model.is_empty()),
                },
            }
        }
        while c.try_pop(&mut out).unwrap().is_some() {
            assert_eq!(out, model.pop_front().unwrap());
        }
        assert!(model.is_empty());
        assert!(
            wrapped > 300,
            "only {wrapped} reservations straddled the end"
        );
    }
}

/// 1 MiB requests through the default 2 MiB request ring: every second one wraps, and each
/// is written in place (the mirror) and arrives intact.
#[test]
fn one_mebibyte_slots_wrap_in_place_and_arrive_intact() {
    let s = Scratch::new("zc-big");
    let mut server = s.server(ServerConfig {
        name: s.name.clone(),
        ..ServerConfig::default()
    });
    let (conn, mut client) = pair(&mut server);
    let t = std::thread::spawn(move || echo(conn, 6));
    for i in 0..6u64 {
        let len = if i == 5 { DEFAULT_MAX_MESSAGE } else { 1 << 20 };
        let want = payload(i, len);
        let mut slot = client.reserve_request(len, None).unwrap();
        assert!(slot.is_in_place(), "request {i}");
        assert_eq!(slot.len(), len);
        slot.copy_from_slice(&want);
        let client = slot.commit();
        assert_eq!(client.recv_response(None).unwrap(), want, "request {i}");
    }
    assert_eq!(
        client
            .try_reserve_request(DEFAULT_MAX_MESSAGE + 1)
            .unwrap_err(),
        Error::TooLarge {
            len: DEFAULT_MAX_MESSAGE + 1,
            max: DEFAULT_MAX_MESSAGE
        }
    );
    let conn = t.join().unwrap();
    assert_eq!(conn.stats().requests, 6);
}

#[test]
fn a_dropped_slot_sends_nothing_and_a_full_ring_says_try_again() {
    let s = Scratch::new("zc-drop");
    let mut server = s.server(s.small());
    let (mut conn, mut client) = pair(&mut server);
    let mut slot = client.try_reserve_request(1000).unwrap();
    slot.fill(0xee);
    drop(slot);
    assert_eq!(
        conn.try_recv_request().unwrap(),
        None,
        "nothing was published"
    );
    // Fill the 64 KiB ring with 16 KiB slots: three fit, the fourth is TryAgain.
    for i in 0..3 {
        let mut slot = client.try_reserve_request(16 << 10).unwrap();
        slot.copy_from_slice(&payload(i, 16 << 10));
        slot.commit();
    }
    assert_eq!(
        client.try_reserve_request(16 << 10).unwrap_err(),
        Error::TryAgain
    );
    for i in 0..3 {
        assert_eq!(
            conn.try_recv_request().unwrap().unwrap(),
            payload(i, 16 << 10)
        );
        conn.send_response(b"ok").unwrap();
    }
    assert!(client.try_reserve_request(16 << 10).is_ok());
}

/// Without a mirror (kernels with pages above 4 KiB), a slot that would wrap is a private
/// buffer copied in at commit; the others are still in place. Every request arrives intact.
#[test]
fn without_a_mirror_a_wrapping_slot_falls_back_to_a_copy() {
    let s = Scratch::new("zc-nomirror");
    let mut server = s.server(s.small());
    let path = server.path().to_path_buf();
    let t = std::thread::spawn(move || {
        NO_MIRROR.with(|m| m.set(true));
        Client::connect(path)
    });
    let conn = super::accept_one(&mut server).unwrap();
    let mut client = t.join().unwrap().unwrap();
    let t = std::thread::spawn(move || echo(conn, 40));
    let (mut in_place, mut bounced) = (0, 0);
    for i in 0..40u64 {
        let len = 5000 + (i as usize * 1237) % 9000;
        let want = payload(i, len);
        let mut slot = client.reserve_request(len + 10, None).unwrap();
        if slot.is_in_place() {
            in_place += 1;
        } else {
            bounced += 1;
        }
        slot[..len].copy_from_slice(&want);
        slot.truncate(len);
        assert_eq!(slot.len(), len);
        let client = slot.commit();
        assert_eq!(client.recv_response(None).unwrap(), want, "request {i}");
    }
    assert!(
        in_place > 0 && bounced > 0,
        "{in_place} in place, {bounced} bounced"
    );
    t.join().unwrap();
}

/// `wait_request_room` returns when a response is there to read (the client must read it
/// for the daemon to go on), when room is there, and times out otherwise.
#[test]
fn wait_request_room_wakes_for_room_or_a_response() {
    let s = Scratch::new("zc-wait");
    let mut server = s.server(s.small());
    let (mut conn, mut client) = pair(&mut server);
    // 8 KiB + 3 × 16 KiB queued: 8160 bytes left, less than one 16 KiB record.
    client.try_send_request(&payload(0, 8 << 10)).unwrap();
    for i in 1..4 {
        client.try_send_request(&payload(i, 16 << 10)).unwrap();
    }
    let short = Some(Duration::from_millis(20));
    assert_eq!(
        client.wait_request_room(16 << 10, short),
        Err(Error::TimedOut)
    );
    // The daemon takes the 8 KiB request (not enough room yet) and answers it.
    assert_eq!(conn.try_recv_request().unwrap().unwrap().len(), 8 << 10);
    conn.send_response(b"r0").unwrap();
    assert_eq!(client.wait_request_room(16 << 10, short), Ok(false));
    assert_eq!(client.try_recv_response().unwrap().unwrap(), b"r0");
    // The daemon takes the next one: now there is room.
    conn.try_recv_request().unwrap().unwrap();
    assert_eq!(client.wait_request_room(16 << 10, short), Ok(true));
    // From another thread, the wait is woken by the daemon freeing room.
    let t = std::thread::spawn(move || {
        let mut slot = client.reserve_request(16 << 10, None).unwrap();
        slot.fill(1);
        slot.commit();
        let mut slot = client
            .reserve_request(16 << 10, Some(Duration::from_secs(10)))
            .unwrap();
        slot.fill(2);
        slot.commit();
        client
    });
    std::thread::sleep(Duration::from_millis(50));
    conn.clear_doorbell();
    conn.try_recv_request().unwrap().unwrap();
    let _client = t.join().unwrap();
}
