//! The blocking CPG API against the in-process fake daemon (`tests/fake`): every call, the
//! events, the errors (TRY_AGAIN included), a 1 MiB message, and the pollable fd.

extern crate alloc;

mod fake;

use core::time::Duration;

use fake::{FakeConfig, FakeDaemon, NODE_ID, readable};
use totem_client::Error;
use totem_client::NodeId;
use totem_client::cpg::{
    Cpg, DispatchMode, Event, FlowControl, GroupName, Guarantee, Member, Options, Reason,
};

const T: Option<Duration> = Some(Duration::from_secs(10));

fn me() -> Member {
    Member::new(NodeId(NODE_ID), std::process::id())
}

/// The next event, failing the test after 10 s.
fn next(cpg: &mut Cpg) -> Event {
    cpg.next_event(T).unwrap().expect("an event within 10 s")
}

/// A confchg's group, members, and left and joined lists with reasons.
type Confchg = (
    GroupName,
    Vec<Member>,
    Vec<(Member, Reason)>,
    Vec<(Member, Reason)>,
);

fn confchg(ev: Event) -> Confchg {
    match ev {
        Event::Confchg {
            group,
            members,
            left,
            joined,
        } => (
            group,
            members,
            left.iter().map(|a| (a.member(), a.reason)).collect(),
            joined.iter().map(|a| (a.member(), a.reason)).collect(),
        ),
        other => panic!("expected a confchg, got {other:?}"),
    }
}

fn deliver(ev: Event) -> (GroupName, NodeId, u32, Guarantee, bytes::Bytes) {
    match ev {
        Event::Deliver {
            group,
            sender_nodeid,
            sender_pid,
            guarantee,
            payload,
        } => (group, sender_nodeid, sender_pid, guarantee, payload),
        other => panic!("expected a delivery, got {other:?}"),
    }
}

fn name(s: &str) -> GroupName {
    GroupName::new(s.as_bytes()).unwrap()
}

#[test]
fn queries_answer_and_finalize_ends_the_handle() {
    let d = FakeDaemon::start();
    let mut cpg = Cpg::initialize_at(d.socket()).unwrap();
    assert_eq!(cpg.local_get().unwrap(), NodeId(NODE_ID));
    assert_eq!(cpg.flow_control_state().unwrap(), FlowControl::Disabled);
    // The fake's ring takes 2 MiB + 4 KiB: CPG's limit is that less its header and a name.
    let max = cpg.max_message_size();
    assert!(max >= 1 << 20, "{max}");
    assert!(cpg.membership_get("nobody").unwrap().is_empty());
    assert_eq!(cpg.iter_groups().unwrap().count(), 0);
    cpg.finalize().unwrap();
    assert!(cpg.is_finalized());
    assert_eq!(
        cpg.local_get(),
        Ok(NodeId(NODE_ID)),
        "cached, no round trip"
    );
    assert_eq!(cpg.join("g"), Err(Error::BadHandle));
    assert_eq!(cpg.try_next_event(), Err(Error::BadHandle));
    assert_eq!(
        cpg.dispatch(DispatchMode::All, |_, _| {}),
        Err(Error::BadHandle)
    );
    assert_eq!(
        cpg.mcast_queued("g", Guarantee::Agreed, b"late"),
        Err(Error::BadHandle)
    );
    assert_eq!(cpg.flush(), Ok(()), "nothing was left queued");
    assert_eq!(cpg.finalize(), Err(Error::BadHandle));
    assert_eq!(Error::BadHandle.code(), 9);
}

#[test]
fn join_mcast_leave_with_events_in_order() {
    let d = FakeDaemon::start();
    let mut cpg = Cpg::initialize_at(d.socket()).unwrap();
    cpg.join("alpha").unwrap();
    let (group, members, left, joined) = confchg(next(&mut cpg));
    assert_eq!(group, name("alpha"));
    assert_eq!(members, vec![me()]);
    assert!(left.is_empty());
    assert_eq!(joined, vec![(me(), Reason::Join)]);
    assert_eq!(cpg.membership_get("alpha").unwrap(), vec![me()]);
    assert_eq!(cpg.join("alpha"), Err(Error::Exist));

    cpg.mcast("alpha", Guarantee::Agreed, b"one").unwrap();
    cpg.mcast_vectored(b"alpha", Guarantee::Safe, &[b"tw", b"o"])
        .unwrap();
    let (g, node, pid, guarantee, payload) = deliver(next(&mut cpg));
    assert_eq!(
        (g, node, pid, guarantee),
        (
            name("alpha"),
            NodeId(NODE_ID),
            std::process::id(),
            Guarantee::Agreed
        )
    );
    assert_eq!(&payload[..], b"one");
    let (_, _, _, guarantee, payload) = deliver(next(&mut cpg));
    assert_eq!((guarantee, &payload[..]), (Guarantee::Safe, &b"two"[..]));

    // Not a member: NOT_EXIST, client-side name check: NAME_TOO_LONG.
    assert_eq!(
        cpg.mcast("beta", Guarantee::Agreed, b"x"),
        Err(Error::NotExist)
    );
    let long = vec![b'n'; 129];
    assert_eq!(cpg.join(&long), Err(Error::NameTooLong));
    assert_eq!(
        cpg.mcast(&long, Guarantee::Agreed, b"x"),
        Err(Error::NameTooLong)
    );
    assert_eq!(cpg.leave("beta"), Err(Error::NotExist));

    cpg.leave("alpha").unwrap();
    let (group, members, left, joined) = confchg(next(&mut cpg));
    assert_eq!(group, name("alpha"));
    assert!(members.is_empty());
    assert_eq!(left, vec![(me(), Reason::Leave)]);
    assert!(joined.is_empty());
    assert_eq!(
        cpg.mcast("alpha", Guarantee::Agreed, b"x"),
        Err(Error::NotExist)
    );
    assert_eq!(cpg.try_next_event(), Ok(None));
}

#[test]
fn several_members_see_each_other_join_send_and_die() {
    let d = FakeDaemon::start_with(FakeConfig {
        pid_per_connection: true,
        ..FakeConfig::default()
    });
    let mut a = Cpg::initialize_at(d.socket()).unwrap();
    let mut b = Cpg::initialize_at(d.socket()).unwrap();
    a.join("room").unwrap();
    let (_, members, _, _) = confchg(next(&mut a));
    let ma = members[0];
    b.join("room").unwrap();
    let (_, members, _, joined) = confchg(next(&mut a));
    assert_eq!(members.len(), 2);
    let mb = joined[0].0;
    assert_eq!(joined, vec![(mb, Reason::Join)]);
    assert_eq!(
        confchg(next(&mut b)).1,
        members,
        "the joiner sees the same list"
    );

    // Iterations: names, one group, everything.
    b.join("other").unwrap();
    confchg(next(&mut b));
    let groups: Vec<GroupName> = a.iter_groups().unwrap().map(Result::unwrap).collect();
    assert_eq!(groups, vec![name("other"), name("room")]);
    let room: Vec<Member> = a
        .iter_members("room")
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(room, members);
    let all = a
        .iter_all()
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    assert_eq!(
        all,
        vec![(name("other"), mb), (name("room"), ma), (name("room"), mb)]
    );
    // An iteration dropped early is finalized: many in a row do not run out.
    for _ in 0..40 {
        let mut it = a.iter_all().unwrap();
        assert!(it.next().is_some());
    }

    b.mcast("room", Guarantee::Agreed, b"from b").unwrap();
    let (_, node, pid, _, payload) = deliver(next(&mut a));
    assert_eq!((Member::new(node, pid), &payload[..]), (mb, &b"from b"[..]));
    deliver(next(&mut b));

    // b's process "dies" (its handle is dropped without finalize): PROCDOWN.
    drop(b);
    let (_, members, left, _) = confchg(next(&mut a));
    assert_eq!(members, vec![ma]);
    assert_eq!(left, vec![(mb, Reason::ProcDown)]);
}

#[test]
fn try_again_under_flow_control_then_accepted() {
    // A daemon that answers TRY_AGAIN under flow control, as corosync does (totemd holds
    // the multicast instead).
    let d = FakeDaemon::start_with(FakeConfig {
        hold_mcasts: false,
        ..FakeConfig::default()
    });
    let mut cpg = Cpg::initialize_at(d.socket()).unwrap();
    cpg.join("fc").unwrap();
    confchg(next(&mut cpg));
    d.set_flow_control(Some(true));
    // The flag reaches the engine on the daemon's next loop turn.
    let t = std::time::Instant::now();
    while cpg.flow_control_state().unwrap() != FlowControl::Enabled {
        assert!(t.elapsed() < Duration::from_secs(5));
        std::thread::sleep(Duration::from_millis(1));
    }
    let e = cpg.mcast("fc", Guarantee::Agreed, b"x").unwrap_err();
    assert_eq!(e, Error::TryAgain);
    assert!(e.is_try_again());
    assert_eq!(e.code(), 6);
    d.set_flow_control(None);
    // corosync's method: dispatch, wait ≤ 1 ms, retry.
    let mut tries = 0;
    loop {
        tries += 1;
        match cpg.mcast("fc", Guarantee::Agreed, b"x") {
            Ok(()) => break,
            Err(Error::TryAgain) => {
                assert!(tries < 10_000);
                cpg.next_event(Some(Duration::from_millis(1))).unwrap();
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(&deliver(next(&mut cpg)).4[..], b"x");
}

#[test]
fn a_one_mebibyte_message_arrives_whole_and_too_big_is_refused() {
    let d = FakeDaemon::start();
    let mut cpg = Cpg::initialize_at(d.socket()).unwrap();
    cpg.join("big").unwrap();
    confchg(next(&mut cpg));
    let msg: Vec<u8> = (0..1u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    cpg.mcast("big", Guarantee::Safe, &msg).unwrap();
    let (_, _, _, _, payload) = deliver(next(&mut cpg));
    assert_eq!(payload.len(), 1 << 20);
    assert!(payload[..] == msg[..]);
    let too_big = vec![0u8; cpg.max_message_size() + 1];
    assert_eq!(
        cpg.mcast("big", Guarantee::Agreed, &too_big),
        Err(Error::TooBig)
    );
    // Exactly the limit is fine.
    let max = vec![7u8; cpg.max_message_size()];
    cpg.mcast("big", Guarantee::Agreed, &max).unwrap();
    assert_eq!(deliver(next(&mut cpg)).4.len(), max.len());
}

#[test]
fn the_pollable_fd_wakes_on_an_event_and_rearms() {
    let d = FakeDaemon::start();
    let mut cpg = Cpg::initialize_at(d.socket()).unwrap();
    cpg.join("poll").unwrap();
    assert!(readable(&cpg, 10_000), "the confchg makes the fd readable");
    assert_eq!(cpg.dispatch(DispatchMode::All, |_, _| {}).unwrap(), 1);
    // Drained: the fd is quiet.
    assert!(!readable(&cpg, 50));
    cpg.mcast("poll", Guarantee::Agreed, b"wake").unwrap();
    assert!(readable(&cpg, 10_000), "a delivery makes it readable again");
    let mut got = Vec::new();
    cpg.dispatch(DispatchMode::All, |_, ev| got.push(ev))
        .unwrap();
    assert_eq!(got.len(), 1);
    assert!(!readable(&cpg, 50));
}

#[test]
fn dispatch_modes_behave_like_corosyncs() {
    let d = FakeDaemon::start();
    let mut cpg = Cpg::initialize_at(d.socket()).unwrap();
    assert_eq!(
        cpg.dispatch(DispatchMode::OneNonblocking, |_, _| {}),
        Err(Error::TryAgain)
    );
    assert_eq!(cpg.dispatch(DispatchMode::All, |_, _| {}), Ok(0));
    cpg.join("d").unwrap();
    // One: waits for the confchg.
    assert_eq!(
        cpg.dispatch(DispatchMode::One, |_, ev| {
            confchg(ev);
        }),
        Ok(1)
    );
    for i in 0..3u8 {
        cpg.mcast("d", Guarantee::Agreed, &[i]).unwrap();
    }
    assert_eq!(
        cpg.dispatch(DispatchMode::One, |_, ev| assert_eq!(
            &deliver(ev).4[..],
            [0]
        )),
        Ok(1)
    );
    // Blocking: until the handler finalizes; the handler may call the API.
    let mut seen = Vec::new();
    let n = cpg
        .dispatch(DispatchMode::Blocking, |cpg, ev| {
            let p = deliver(ev).4;
            seen.push(p[0]);
            if p[0] == 2 {
                cpg.finalize().unwrap();
            }
        })
        .unwrap();
    assert_eq!((n, seen), (2, vec![1, 2]));
}

#[test]
fn context_round_trips() {
    let d = FakeDaemon::start();
    let mut cpg = Cpg::initialize_at(d.socket()).unwrap();
    assert!(cpg.context::<u32>().is_none());
    assert!(cpg.set_context(41u32).is_none());
    *cpg.context_mut::<u32>().unwrap() += 1;
    assert_eq!(cpg.context::<u32>(), Some(&42));
    assert!(
        cpg.context::<String>().is_none(),
        "another type is not found"
    );
    let old = cpg.set_context(String::from("x")).unwrap();
    assert_eq!(old.downcast_ref::<u32>(), Some(&42));
    assert_eq!(
        cpg.take_context()
            .unwrap()
            .downcast_ref::<String>()
            .unwrap(),
        "x"
    );
    assert!(cpg.take_context().is_none());
}

#[test]
fn initial_totem_confchg_comes_first_when_asked() {
    let d = FakeDaemon::start();
    let mut cpg = Cpg::initialize_with(
        &Options::new()
            .socket(d.socket())
            .initial_totem_confchg(true),
    )
    .unwrap();
    match next(&mut cpg) {
        Event::TotemConfchg { ring_id, members } => {
            assert_eq!(members, vec![NodeId(NODE_ID)]);
            assert_eq!(ring_id.rep, NodeId(NODE_ID));
        }
        other => panic!("{other:?}"),
    }
    let mut plain = Cpg::initialize_at(d.socket()).unwrap();
    assert_eq!(plain.next_event(Some(Duration::from_millis(100))), Ok(None));
}

#[test]
fn connection_errors_are_reported() {
    // No daemon.
    let missing = std::env::temp_dir().join("totem-client-no-such-daemon.sock");
    let e = Cpg::initialize_at(&missing).unwrap_err();
    assert!(
        matches!(e, Error::Connect(ipc_shm::ConnectError::Os(_))),
        "{e:?}"
    );
    assert_eq!(e.code(), 2);

    // A daemon that refuses the session.
    let d = FakeDaemon::start_with(FakeConfig {
        refuse_hello: Some(services::cpg::wire::CsError::TryAgain),
        ..FakeConfig::default()
    });
    assert_eq!(Cpg::initialize_at(d.socket()).unwrap_err(), Error::TryAgain);
    drop(d);

    // The daemon goes away under a live handle.
    let mut d = FakeDaemon::start();
    let mut cpg = Cpg::initialize_at(d.socket()).unwrap();
    cpg.join("g").unwrap();
    d.stop();
    let t = std::time::Instant::now();
    let err = loop {
        match cpg.next_event(Some(Duration::from_secs(10))) {
            Ok(_) => assert!(t.elapsed() < Duration::from_secs(10)),
            Err(e) => break e,
        }
    };
    assert_eq!(err, Error::Disconnected);
    assert_eq!(
        cpg.mcast("g", Guarantee::Agreed, b"x"),
        Err(Error::Disconnected)
    );
}

#[test]
fn default_socket_follows_the_environment() {
    // Only read here: other tests pass explicit paths.
    let p = totem_client::default_socket();
    match std::env::var_os(totem_client::SOCKET_ENV) {
        Some(v) if !v.is_empty() => assert_eq!(p, std::path::PathBuf::from(v)),
        _ => assert_eq!(p, std::path::PathBuf::from(totem_client::DEFAULT_SOCKET)),
    }
}

/// Queued multicasts: no round trip each, delivered once each in the order queued,
/// interleaved correctly with a synchronous call; a refused one is reported by `flush`
/// (and the next `mcast_queued`), never lost silently.
#[test]
fn queued_mcasts_keep_order_and_report_errors() {
    let d = FakeDaemon::start();
    let mut cpg = Cpg::initialize_at(d.socket()).unwrap();
    cpg.join("q").unwrap();
    confchg(next(&mut cpg));
    let mut sent = Vec::new();
    for i in 0..500u32 {
        let msg = i.to_be_bytes();
        loop {
            match cpg.mcast_queued("q", Guarantee::Agreed, &msg) {
                Ok(()) => break,
                Err(Error::TryAgain) => {
                    cpg.next_event(Some(Duration::from_millis(1))).unwrap();
                }
                Err(e) => panic!("{e}"),
            }
        }
        sent.push(msg.to_vec());
        if i == 250 {
            // A call with a reply of its own, between queued ones.
            assert_eq!(cpg.local_get().unwrap(), NodeId(NODE_ID));
            cpg.mcast("q", Guarantee::Safe, b"sync").unwrap();
            sent.push(b"sync".to_vec());
        }
    }
    cpg.flush().unwrap();
    assert_eq!(cpg.queued(), 0);
    let mut got = Vec::new();
    while got.len() < sent.len() {
        got.push(deliver(next(&mut cpg)).4.to_vec());
    }
    assert_eq!(got, sent);

    // A queued multicast to a group this handle never joined: refused by the daemon,
    // reported by flush.
    cpg.mcast_queued("not-joined", Guarantee::Agreed, b"x")
        .unwrap();
    assert_eq!(cpg.flush(), Err(Error::NotExist));
    assert_eq!(cpg.flush(), Ok(()), "reported once");
    // And by the next mcast_queued, which then does not queue its own message.
    cpg.mcast_queued("not-joined", Guarantee::Agreed, b"x")
        .unwrap();
    // A call with a reply reads the queued replies first (local_get would not: it is
    // answered from the handle after the first time).
    cpg.membership_get("q").unwrap();
    assert_eq!(
        cpg.mcast_queued("q", Guarantee::Agreed, b"after"),
        Err(Error::NotExist)
    );
    cpg.mcast_queued("q", Guarantee::Agreed, b"after").unwrap();
    cpg.flush().unwrap();
    assert_eq!(&deliver(next(&mut cpg)).4[..], b"after");
}
