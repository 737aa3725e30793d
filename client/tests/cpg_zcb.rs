//! Zero-copy multicasts (`Cpg::zcb_alloc` → `ZcBuffer`) against the in-process fake
//! daemon (`tests/fake`): messages written in place in shared memory arrive whole and in
//! order, 1 MiB ones wrapping the request ring, mixed with the copying calls; the limits
//! and errors; a dropped buffer sends nothing; `try_zcb_alloc` says TRY_AGAIN while the
//! daemon holds multicasts under flow control; the async form.

extern crate alloc;

mod fake;

use core::time::Duration;

use fake::FakeDaemon;
use totem_client::Error;
#[cfg(feature = "tokio")]
use totem_client::cpg::AsyncCpg;
use totem_client::cpg::{Cpg, Event, FlowControl, Guarantee};

const T: Option<Duration> = Some(Duration::from_secs(10));

/// The next delivery's guarantee and payload, skipping confchgs; fails after 10 s.
fn delivery(cpg: &mut Cpg) -> (Guarantee, bytes::Bytes) {
    loop {
        if let Event::Deliver {
            guarantee, payload, ..
        } = cpg.next_event(T).unwrap().expect("an event within 10 s")
        {
            return (guarantee, payload);
        }
    }
}

/// Message `i`: `len` bytes no other message shares.
fn message(i: u32, len: usize) -> Vec<u8> {
    let mut x = u64::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn joined(d: &FakeDaemon, group: &str) -> Cpg {
    let mut cpg = Cpg::initialize_at(d.socket()).unwrap();
    cpg.join(group).unwrap();
    match cpg.next_event(T).unwrap().unwrap() {
        Event::Confchg { .. } => {}
        other => panic!("expected the join's confchg, got {other:?}"),
    }
    cpg
}

/// A 1 MiB message written in place arrives whole (reply-awaited send); then twelve more
/// queued back to back — the fake's 4 MiB request ring holds three, so the requests wrap
/// around it again and again, each still one contiguous buffer in place — interleaved with
/// copying `mcast_queued` and `mcast` calls: every message once, intact, in the order sent.
#[test]
fn one_mebibyte_zero_copy_messages_wrap_the_ring_and_arrive_in_order() {
    let d = FakeDaemon::start();
    let mut cpg = joined(&d, "zc");
    let first = message(0, 1 << 20);
    let mut buf = cpg.zcb_alloc("zc", 1 << 20).unwrap();
    assert_eq!(buf.len(), 1 << 20);
    assert!(buf.is_in_place());
    buf.copy_from_slice(&first);
    buf.mcast(Guarantee::Safe).unwrap();
    let (g, payload) = delivery(&mut cpg);
    assert_eq!(g, Guarantee::Safe);
    assert!(payload[..] == first[..], "the 1 MiB message arrives intact");

    let mut sent = Vec::new();
    let mut got = Vec::new();
    for i in 1..=12u32 {
        let msg = message(i, (1 << 20) - (i as usize * 4099) % 8192);
        let mut buf = cpg.zcb_alloc("zc", msg.len()).unwrap();
        assert!(buf.is_in_place(), "message {i}");
        buf.copy_from_slice(&msg);
        buf.mcast_queued(Guarantee::Agreed).unwrap();
        sent.push(msg);
        if i % 4 == 0 {
            // The copying calls keep their place in the order.
            let small = message(1000 + i, 100);
            cpg.mcast_queued("zc", Guarantee::Agreed, &small).unwrap();
            sent.push(small);
            let sync = message(2000 + i, 1000);
            cpg.mcast("zc", Guarantee::Agreed, &sync).unwrap();
            sent.push(sync);
        }
        // Keep the event ring moving, as a dispatching application does.
        while let Some(ev) = cpg.try_next_event().unwrap() {
            if let Event::Deliver { payload, .. } = ev {
                got.push(payload.to_vec());
            }
        }
    }
    cpg.flush().unwrap();
    assert_eq!(cpg.queued(), 0);
    while got.len() < sent.len() {
        got.push(delivery(&mut cpg).1.to_vec());
    }
    assert_eq!(got.len(), sent.len());
    for (k, (a, b)) in got.iter().zip(&sent).enumerate() {
        assert!(
            a == b,
            "message {k} differs (len {} vs {})",
            a.len(),
            b.len()
        );
    }
}

#[test]
fn limits_errors_and_a_dropped_buffer() {
    let d = FakeDaemon::start();
    let mut cpg = joined(&d, "z");
    let max = cpg.max_message_size();
    assert!(max >= 1 << 20, "{max}");
    let long = "n".repeat(128);
    cpg.join(long.as_str()).unwrap();
    // Above the limit: a clear error, nothing allocated, the handle goes on.
    assert_eq!(
        cpg.zcb_alloc(long.as_str(), max + 1).unwrap_err(),
        Error::TooBig
    );
    assert_eq!(cpg.zcb_alloc("z", usize::MAX).unwrap_err(), Error::TooBig);
    assert_eq!(
        cpg.try_zcb_alloc("z", usize::MAX).unwrap_err(),
        Error::TooBig
    );
    assert_eq!(
        cpg.zcb_alloc("n".repeat(129).as_str(), 1).unwrap_err(),
        Error::NameTooLong
    );
    // Exactly the limit, with the longest name.
    let mut buf = cpg.zcb_alloc(long.as_str(), max).unwrap();
    buf.fill(9);
    buf.mcast(Guarantee::Agreed).unwrap();
    let (_, p) = delivery(&mut cpg);
    assert!(p.len() == max && p.iter().all(|&b| b == 9));

    // Dropped (cpg_zcb_free): nothing is sent; the next message is the next delivery.
    let mut buf = cpg.zcb_alloc("z", 1000).unwrap();
    buf.fill(0xee);
    drop(buf);
    // Truncated: only what was written goes out; an empty message is a message too.
    let mut buf = cpg.zcb_alloc("z", 4096).unwrap();
    buf[..5].copy_from_slice(b"hello");
    buf.truncate(5);
    assert_eq!((buf.len(), &buf[..]), (5, &b"hello"[..]));
    buf.mcast(Guarantee::Agreed).unwrap();
    cpg.zcb_alloc("z", 0)
        .unwrap()
        .mcast(Guarantee::Agreed)
        .unwrap();
    assert_eq!(&delivery(&mut cpg).1[..], b"hello");
    assert!(delivery(&mut cpg).1.is_empty());

    // Not a member: the reply-awaited send says so; a queued one is reported by flush,
    // and then by the next queued send, which is not sent.
    let mut buf = cpg.zcb_alloc("elsewhere", 3).unwrap();
    buf.copy_from_slice(b"abc");
    assert_eq!(buf.mcast(Guarantee::Agreed), Err(Error::NotExist));
    cpg.zcb_alloc("elsewhere", 1)
        .unwrap()
        .mcast_queued(Guarantee::Agreed)
        .unwrap();
    assert_eq!(cpg.flush(), Err(Error::NotExist));
    cpg.zcb_alloc("elsewhere", 1)
        .unwrap()
        .mcast_queued(Guarantee::Agreed)
        .unwrap();
    cpg.membership_get("z").unwrap(); // reads the queued reply
    let mut buf = cpg.zcb_alloc("z", 7).unwrap();
    buf.copy_from_slice(b"refused");
    assert_eq!(buf.mcast_queued(Guarantee::Agreed), Err(Error::NotExist));
    let mut buf = cpg.zcb_alloc("z", 5).unwrap();
    buf.copy_from_slice(b"after");
    buf.mcast_queued(Guarantee::Agreed).unwrap();
    cpg.flush().unwrap();
    assert_eq!(&delivery(&mut cpg).1[..], b"after");

    cpg.finalize().unwrap();
    assert_eq!(cpg.zcb_alloc("z", 1).unwrap_err(), Error::BadHandle);
}

/// Under flow control totemd (and the fake) holds a multicast and stops reading requests:
/// queued zero-copy messages fill the request ring and `try_zcb_alloc` says TRY_AGAIN
/// (nothing allocated); once flow control lifts, every queued one is delivered in order.
#[test]
fn try_zcb_alloc_says_try_again_while_the_ring_is_full() {
    let d = FakeDaemon::start();
    let mut cpg = joined(&d, "fc");
    d.set_flow_control(Some(true));
    let t = std::time::Instant::now();
    while cpg.flow_control_state().unwrap() != FlowControl::Enabled {
        assert!(t.elapsed() < Duration::from_secs(5));
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut sent = 0u32;
    loop {
        match cpg.try_zcb_alloc("fc", 256 << 10) {
            Ok(mut buf) => {
                buf.fill(sent as u8);
                buf[..4].copy_from_slice(&sent.to_be_bytes());
                buf.mcast_queued(Guarantee::Agreed).unwrap();
                sent += 1;
                assert!(sent < 100, "the 4 MiB request ring never filled");
            }
            Err(Error::TryAgain) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(sent >= 10, "{sent} queued before the ring filled");
    d.set_flow_control(None);
    // The waiting form waits for room instead.
    let mut buf = cpg.zcb_alloc("fc", 256 << 10).unwrap();
    buf.fill(sent as u8);
    buf[..4].copy_from_slice(&sent.to_be_bytes());
    buf.mcast_queued(Guarantee::Agreed).unwrap();
    cpg.flush().unwrap();
    for i in 0..=sent {
        let (_, p) = delivery(&mut cpg);
        assert_eq!(p.len(), 256 << 10);
        assert_eq!(u32::from_be_bytes(p[..4].try_into().unwrap()), i);
        assert!(p[4..].iter().all(|&b| b == i as u8));
    }
}

#[cfg(feature = "tokio")]
#[test]
fn the_async_form_sends_in_place_too() {
    let d = FakeDaemon::start();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut cpg = AsyncCpg::initialize_at(d.socket()).await.unwrap();
        cpg.join("az").await.unwrap();
        let msg = message(7, 1 << 20);
        let mut buf = cpg.zcb_alloc("az", msg.len()).await.unwrap();
        buf.copy_from_slice(&msg);
        buf.mcast(Guarantee::Agreed).unwrap();
        let mut buf = cpg.try_zcb_alloc("az", 2).unwrap();
        buf.copy_from_slice(b"ok");
        buf.mcast_queued(Guarantee::Agreed).unwrap();
        cpg.flush().await.unwrap();
        let mut got = Vec::new();
        while got.len() < 2 {
            if let Event::Deliver { payload, .. } = cpg.next_event().await.unwrap() {
                got.push(payload);
            }
        }
        assert!(got[0][..] == msg[..]);
        assert_eq!(&got[1][..], b"ok");
    });
}
