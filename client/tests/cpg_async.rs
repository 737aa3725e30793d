//! `AsyncCpg` (feature `tokio`) against the fake daemon: calls, `next_event().await` woken
//! by the reactor, the poll form, and forwarding of the blocking-only calls.
#![cfg(feature = "tokio")]

extern crate alloc;

mod fake;

use core::future::poll_fn;
use core::time::Duration;

use fake::{FakeDaemon, NODE_ID};
use totem_client::cpg::{AsyncCpg, Event, FlowControl, Guarantee, Member, Reason};
use totem_client::{Error, NodeId};

async fn next(cpg: &mut AsyncCpg) -> Event {
    tokio::time::timeout(Duration::from_secs(10), cpg.next_event())
        .await
        .expect("an event within 10 s")
        .unwrap()
}

#[tokio::test(flavor = "current_thread")]
async fn async_calls_and_events() {
    let d = FakeDaemon::start();
    let mut cpg = AsyncCpg::initialize_at(d.socket()).await.unwrap();
    let me = Member::new(NodeId(NODE_ID), std::process::id());
    assert_eq!(cpg.local_get().await.unwrap(), NodeId(NODE_ID));
    assert_eq!(
        cpg.flow_control_state().await.unwrap(),
        FlowControl::Disabled
    );
    assert!(cpg.max_message_size() >= 1 << 20);
    cpg.join("async").await.unwrap();
    match next(&mut cpg).await {
        Event::Confchg {
            members, joined, ..
        } => {
            assert_eq!(members, vec![me]);
            assert_eq!(joined[0].reason, Reason::Join);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(cpg.membership_get("async").await.unwrap(), vec![me]);

    // Nothing queued: the wait is a real one, woken by the reactor when the daemon
    // delivers (the send happens on another task while this one sleeps).
    assert!(cpg.try_next_event().unwrap().is_none());
    let sleeper = tokio::time::timeout(Duration::from_millis(100), cpg.next_event()).await;
    assert!(sleeper.is_err(), "no event yet");
    for i in 0..50u8 {
        cpg.mcast_vectored("async", Guarantee::Agreed, &[b"m", &[i]])
            .await
            .unwrap();
    }
    for i in 0..50u8 {
        match next(&mut cpg).await {
            Event::Deliver {
                payload,
                sender_pid,
                ..
            } => {
                assert_eq!(&payload[..], &[b'm', i]);
                assert_eq!(sender_pid, std::process::id());
            }
            other => panic!("{other:?}"),
        }
    }
    // The poll form.
    cpg.mcast("async", Guarantee::Safe, b"polled")
        .await
        .unwrap();
    let ev = poll_fn(|cx| cpg.poll_next_event(cx)).await.unwrap();
    assert!(matches!(
        ev,
        Event::Deliver {
            guarantee: Guarantee::Safe,
            ..
        }
    ));

    // Forwarded blocking-side calls.
    assert!(cpg.set_context(7u8).is_none());
    *cpg.context_mut::<u8>().unwrap() += 1;
    assert_eq!(cpg.context::<u8>(), Some(&8));
    assert_eq!(cpg.iter_groups().unwrap().count(), 1);
    assert_eq!(cpg.iter_members("async").unwrap().count(), 1);
    assert_eq!(cpg.iter_all().unwrap().count(), 1);

    cpg.leave("async").await.unwrap();
    assert!(matches!(next(&mut cpg).await, Event::Confchg { .. }));
    cpg.finalize().await.unwrap();
    assert_eq!(cpg.join("async").await, Err(Error::BadHandle));
    let plain = cpg.into_inner();
    assert!(plain.is_finalized());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_sleeping_on_events_is_woken_by_another_handle() {
    let d = FakeDaemon::start_with(fake::FakeConfig {
        pid_per_connection: true,
        ..fake::FakeConfig::default()
    });
    let mut rx = AsyncCpg::initialize_at(d.socket()).await.unwrap();
    rx.join("wake").await.unwrap();
    assert!(matches!(next(&mut rx).await, Event::Confchg { .. }));
    let path = d.socket().to_path_buf();
    let waiter = tokio::spawn(async move {
        let mut got = Vec::new();
        while got.len() < 3 {
            if let Event::Deliver { payload, .. } = next(&mut rx).await {
                got.push(payload);
            }
        }
        got
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut tx = AsyncCpg::initialize_at(path).await.unwrap();
    tx.join("wake").await.unwrap();
    for m in [&b"a"[..], b"b", b"c"] {
        tx.mcast("wake", Guarantee::Agreed, m).await.unwrap();
    }
    let got = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, vec![&b"a"[..], b"b", b"c"]);
}
