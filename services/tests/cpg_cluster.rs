//! End to end: every CPG call through `Services` on three real rings over an in-memory
//! network (see `driver/`), each test named after what it checks. Reference: corosync 3.1.7
//! `cpg.h` / cpg_*(3) for the API, `exec/cpg.c` and `exec/sync.c` for the semantics.

extern crate alloc;

mod driver;

use bytes::Bytes;
use driver::Cluster;
use services::cpg::wire::{
    Address, Confchg, CpgEvent, CpgGuarantee, CsError, DELIVER_INITIAL_TOTEM_CONF, IterationType,
    McastMessage, Member, Reason, Request, RequestCode, ResponseBody,
};
use services::{ConnId, GroupName};
use totem_proto::NodeId;
use totem_proto::time::Duration;

fn g(s: &str) -> GroupName {
    GroupName::new(s.as_bytes()).unwrap()
}

fn m(node: u32, pid: u32) -> Member {
    Member::new(NodeId(node), pid)
}

fn a(node: u32, pid: u32, reason: Reason) -> Address {
    m(node, pid).with(reason)
}

fn confchgs(events: &[CpgEvent]) -> Vec<Confchg> {
    events
        .iter()
        .filter_map(|e| match e {
            CpgEvent::Confchg(c) => Some(c.clone()),
            _ => None,
        })
        .collect()
}

fn delivered(events: &[CpgEvent]) -> Vec<McastMessage> {
    events
        .iter()
        .filter_map(|e| match e {
            CpgEvent::Deliver(d) => Some(d.clone()),
            _ => None,
        })
        .collect()
}

fn ok(c: &mut Cluster, conn: ConnId, req: Request) -> ResponseBody {
    let r = c.call(conn, &req);
    assert_eq!(r.error, CsError::Ok, "{req:?}");
    r.body
}

fn err(c: &mut Cluster, conn: ConnId, req: Request) -> CsError {
    c.call(conn, &req).error
}

fn join(c: &mut Cluster, conn: ConnId, group: &str) {
    ok(c, conn, Request::Join { group: g(group) });
}

fn mcast(c: &mut Cluster, conn: ConnId, group: &str, guarantee: CpgGuarantee, payload: &[u8]) {
    ok(
        c,
        conn,
        Request::Mcast {
            guarantee,
            group: g(group),
            payload: Bytes::copy_from_slice(payload),
        },
    );
}

fn membership(c: &mut Cluster, conn: ConnId, group: &str) -> Vec<Member> {
    match ok(c, conn, Request::MembershipGet { group: g(group) }) {
        ResponseBody::Members(m) => m,
        other => panic!("{other:?}"),
    }
}

/// Three nodes, a client on each (pids 100, 200, 300), all joined to "g".
fn three_members() -> (Cluster, [ConnId; 3]) {
    let mut c = Cluster::new(3);
    let conns = [c.connect(1, 100), c.connect(2, 200), c.connect(3, 300)];
    for conn in conns {
        join(&mut c, conn, "g");
        c.run_for(Duration::from_millis(50));
    }
    c.run_for(Duration::from_millis(200));
    for conn in conns {
        c.take_events(conn);
    }
    (c, conns)
}

#[test]
fn joins_on_two_nodes_give_the_same_confchg_sequence_everywhere() {
    let mut c = Cluster::new(3);
    let watcher = c.connect(3, 300);
    join(&mut c, watcher, "g");
    c.run_for(Duration::from_millis(200));
    let first = confchgs(&c.take_events(watcher));
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].joined, vec![a(3, 300, Reason::Join)]);
    assert_eq!(first[0].members, vec![m(3, 300)]);

    // Two joins at the same moment on two nodes: one total order decides.
    let one = c.connect(1, 100);
    let two = c.connect(2, 200);
    join(&mut c, one, "g");
    join(&mut c, two, "g");
    c.run_for(Duration::from_millis(300));

    let seen = confchgs(&c.take_events(watcher));
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(seen.iter().all(|cc| cc.joined[0].reason == Reason::Join));
    assert_eq!(seen[1].members, vec![m(1, 100), m(2, 200), m(3, 300)]);
    // Each joiner's confchgs are the tail of the watcher's sequence from its own join on.
    for conn in [one, two] {
        let mine = confchgs(&c.take_events(conn));
        let me = c.clients[&conn].pid;
        let from = seen
            .iter()
            .position(|cc| cc.joined.iter().any(|j| j.pid == me))
            .unwrap();
        assert_eq!(mine, seen[from..].to_vec());
    }
    for (node, conn) in [(1, one), (2, two), (3, watcher)] {
        assert_eq!(
            membership(&mut c, conn, "g"),
            vec![m(1, 100), m(2, 200), m(3, 300)],
            "node {node}"
        );
    }
}

#[test]
fn agreed_and_safe_messages_reach_every_member_in_one_order() {
    let (mut c, conns) = three_members();
    // A process in another group hears nothing of "g".
    let outsider = c.connect(1, 111);
    join(&mut c, outsider, "other");
    c.run_for(Duration::from_millis(100));
    c.take_events(outsider);

    for i in 0..30u32 {
        let sender = conns[(i % 3) as usize];
        let guarantee = if i % 2 == 0 {
            CpgGuarantee::Agreed
        } else {
            CpgGuarantee::Safe
        };
        mcast(&mut c, sender, "g", guarantee, format!("m{i}").as_bytes());
    }
    c.run_for(Duration::from_secs(1));

    let first = delivered(&c.take_events(conns[0]));
    assert_eq!(first.len(), 30);
    for conn in &conns[1..] {
        assert_eq!(delivered(&c.take_events(*conn)), first);
    }
    // Sender node id and pid are the sending connection's; each sender's messages in the
    // order it sent them; the guarantee is the one asked.
    for (sender_idx, (node, pid)) in [(1, 100), (2, 200), (3, 300)].into_iter().enumerate() {
        let mine: Vec<Vec<u8>> = first
            .iter()
            .filter(|d| d.sender == m(node, pid))
            .map(|d| d.payload.to_vec())
            .collect();
        let expect: Vec<Vec<u8>> = (0..30u32)
            .filter(|i| (*i % 3) as usize == sender_idx)
            .map(|i| format!("m{i}").into_bytes())
            .collect();
        assert_eq!(mine, expect);
    }
    assert!(first.iter().all(|d| d.group == g("g")));
    let safe = first
        .iter()
        .filter(|d| d.guarantee == CpgGuarantee::Safe)
        .count();
    assert_eq!(safe, 15);
    assert!(c.take_events(outsider).is_empty());
}

#[test]
fn a_safe_message_caught_by_a_failure_is_delivered_to_the_survivors() {
    let (mut c, conns) = three_members();
    // Node 3 is cut off as node 1 sends: the message cannot be known to every member of
    // the old configuration, so it is delivered only once the ring has excluded node 3
    // (in the transitional configuration, where the sender is still a group member).
    c.partition(&[&[1, 2], &[3]]);
    mcast(&mut c, conns[0], "g", CpgGuarantee::Safe, b"safe");
    c.run_for(Duration::from_millis(50));
    assert!(delivered(&c.clients[&conns[0]].events).is_empty());
    assert!(delivered(&c.clients[&conns[1]].events).is_empty());
    c.run_until_synced(&[&[1, 2], &[3]]);
    for conn in &conns[..2] {
        let d = delivered(&c.take_events(*conn));
        assert_eq!(d.len(), 1);
        assert_eq!(&d[0].payload[..], b"safe");
    }
}

#[test]
fn leave_is_seen_as_leave_by_everyone_including_the_leaver() {
    let (mut c, conns) = three_members();
    ok(&mut c, conns[1], Request::Leave { group: g("g") });
    // Until its own confchg arrives the leave is in progress.
    assert_eq!(
        err(&mut c, conns[1], Request::Leave { group: g("g") }),
        CsError::NotExist
    );
    c.run_for(Duration::from_millis(200));
    for conn in conns {
        let cc = confchgs(&c.take_events(conn));
        assert_eq!(cc.len(), 1);
        assert_eq!(cc[0].left, vec![a(2, 200, Reason::Leave)]);
        assert_eq!(cc[0].members, vec![m(1, 100), m(3, 300)]);
    }
    // Out of the group: no sending, no receiving.
    assert_eq!(
        err(
            &mut c,
            conns[1],
            Request::Mcast {
                guarantee: CpgGuarantee::Agreed,
                group: g("g"),
                payload: Bytes::from_static(b"x"),
            }
        ),
        CsError::NotExist
    );
    mcast(&mut c, conns[0], "g", CpgGuarantee::Agreed, b"after");
    c.run_for(Duration::from_millis(200));
    assert!(c.take_events(conns[1]).is_empty());
    assert_eq!(delivered(&c.take_events(conns[2])).len(), 1);
    // And it may join again.
    join(&mut c, conns[1], "g");
    c.run_for(Duration::from_millis(200));
    let cc = confchgs(&c.take_events(conns[1]));
    assert_eq!(cc[0].joined, vec![a(2, 200, Reason::Join)]);
}

#[test]
fn a_client_that_dies_is_procdown_everywhere() {
    let (mut c, conns) = three_members();
    c.disconnect(conns[1]);
    c.run_for(Duration::from_millis(200));
    for conn in [conns[0], conns[2]] {
        let cc = confchgs(&c.take_events(conn));
        assert_eq!(cc.len(), 1);
        assert_eq!(cc[0].left, vec![a(2, 200, Reason::ProcDown)]);
        assert_eq!(cc[0].members, vec![m(1, 100), m(3, 300)]);
    }
    for node in 1..=3 {
        assert_eq!(c.cpg(node).members(&g("g")), vec![m(1, 100), m(3, 300)]);
    }
    // The same process may come back on a new connection.
    let again = c.connect(2, 200);
    join(&mut c, again, "g");
    c.run_for(Duration::from_millis(200));
    assert_eq!(c.cpg(1).members(&g("g")).len(), 3);
}

#[test]
fn finalize_leaves_every_group_and_closes_the_connection() {
    let (mut c, conns) = three_members();
    join(&mut c, conns[1], "h");
    c.run_for(Duration::from_millis(200));
    ok(&mut c, conns[1], Request::Finalize);
    assert!(c.clients[&conns[1]].closed);
    c.run_for(Duration::from_millis(200));
    let cc = confchgs(&c.take_events(conns[0]));
    assert_eq!(cc.last().unwrap().left, vec![a(2, 200, Reason::ProcDown)]);
    for node in 1..=3 {
        assert!(c.cpg(node).members(&g("h")).is_empty());
        assert_eq!(c.cpg(node).members(&g("g")).len(), 2);
    }
}

#[test]
fn a_crashed_node_is_nodedown_for_its_members_everywhere() {
    let (mut c, conns) = three_members();
    let second = c.connect(3, 301);
    join(&mut c, second, "g");
    c.run_for(Duration::from_millis(200));
    for conn in conns {
        c.take_events(conn);
    }
    c.crash(3);
    c.run_until_synced(&[&[1, 2]]);
    for conn in &conns[..2] {
        let events = c.take_events(*conn);
        let cc = confchgs(&events);
        assert_eq!(cc.len(), 1, "{cc:?}");
        assert_eq!(
            cc[0].left,
            vec![a(3, 300, Reason::NodeDown), a(3, 301, Reason::NodeDown)]
        );
        assert_eq!(cc[0].members, vec![m(1, 100), m(2, 200)]);
        // The totem confchg names the new ring's members.
        assert!(events.iter().any(|e| matches!(
            e,
            CpgEvent::TotemConfchg { members, .. } if members == &vec![NodeId(1), NodeId(2)]
        )));
    }
}

#[test]
fn a_partition_diverges_and_the_merge_rebuilds_one_membership() {
    let (mut c, conns) = three_members();
    c.partition(&[&[1, 2], &[3]]);
    c.run_until_synced(&[&[1, 2], &[3]]);
    for conn in &conns[..2] {
        let cc = confchgs(&c.take_events(*conn));
        assert_eq!(cc.len(), 1);
        assert_eq!(cc[0].left, vec![a(3, 300, Reason::NodeDown)]);
    }
    let cc = confchgs(&c.take_events(conns[2]));
    assert_eq!(cc.len(), 1);
    assert_eq!(
        cc[0].left,
        vec![a(1, 100, Reason::NodeDown), a(2, 200, Reason::NodeDown)]
    );

    // Each side changes while apart: node 2's client leaves, a new one joins on node 3.
    ok(&mut c, conns[1], Request::Leave { group: g("g") });
    let late = c.connect(3, 333);
    join(&mut c, late, "g");
    c.run_for(Duration::from_millis(300));
    assert_eq!(c.cpg(1).members(&g("g")), vec![m(1, 100)]);
    assert_eq!(c.cpg(3).members(&g("g")), vec![m(3, 300), m(3, 333)]);
    for conn in [conns[0], conns[1], conns[2], late] {
        c.take_events(conn);
    }

    c.heal();
    c.run_until_synced(&[&[1, 2, 3]]);
    let want = vec![m(1, 100), m(3, 300), m(3, 333)];
    for (node, conn) in [(1, conns[0]), (3, conns[2]), (3, late)] {
        assert_eq!(membership(&mut c, conn, "g"), want, "node {node}");
    }
    for node in 1..=3 {
        assert_eq!(c.cpg(node).members(&g("g")), want, "node {node}");
    }
    // Node 1's member sees node 3's members come up; node 3's see node 1's.
    let cc = confchgs(&c.take_events(conns[0]));
    assert_eq!(cc.len(), 1);
    assert_eq!(
        cc[0].joined,
        vec![a(3, 300, Reason::NodeUp), a(3, 333, Reason::NodeUp)]
    );
    for conn in [conns[2], late] {
        let cc = confchgs(&c.take_events(conn));
        assert_eq!(cc.len(), 1);
        assert_eq!(cc[0].joined, vec![a(1, 100, Reason::NodeUp)]);
        assert_eq!(cc[0].members, want);
    }
    assert!(confchgs(&c.take_events(conns[1])).is_empty());
    // And the merged group works as one.
    mcast(&mut c, late, "g", CpgGuarantee::Safe, b"together");
    c.run_for(Duration::from_millis(500));
    for conn in [conns[0], conns[2], late] {
        let d = delivered(&c.take_events(conn));
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].sender, m(3, 333));
    }
}

#[test]
fn requests_during_sync_are_answered_and_sent_after_activation() {
    let (mut c, conns) = three_members();
    c.crash(3);
    // Step until node 1 is inside a sync round for the new configuration.
    while c.nodes[&1].services.is_synchronized()
        || c.nodes[&1].services.ring_id().is_none()
        || c.cpg(1).is_settled()
        || c.nodes[&1].ring.members().len() != 2
    {
        assert!(c.step());
    }
    let submitted = c.nodes[&1].submitted.len();
    let fresh = c.connect(1, 101);
    join(&mut c, fresh, "g");
    mcast(&mut c, conns[0], "g", CpgGuarantee::Agreed, b"held");
    assert_eq!(
        c.nodes[&1].submitted.len(),
        submitted,
        "nothing sent during sync"
    );
    c.run_until_synced(&[&[1, 2]]);
    // The member sees the node go down, the totem change, then the join, then the message.
    let events = c.take_events(conns[0]);
    let order: Vec<&str> = events
        .iter()
        .map(|e| match e {
            CpgEvent::Confchg(cc) if cc.left.iter().any(|l| l.reason == Reason::NodeDown) => {
                "nodedown"
            }
            CpgEvent::Confchg(cc) if cc.joined.iter().any(|j| j.reason == Reason::Join) => "join",
            CpgEvent::TotemConfchg { .. } => "totem",
            CpgEvent::Deliver(_) => "deliver",
            _ => "other",
        })
        .collect();
    assert_eq!(order, ["nodedown", "totem", "join", "deliver"]);
    assert_eq!(delivered(&c.take_events(fresh)).len(), 1);
}

#[test]
fn membership_local_get_and_iteration_report_the_groups() {
    let (mut c, conns) = three_members();
    join(&mut c, conns[0], "alpha");
    c.run_for(Duration::from_millis(200));
    assert_eq!(
        membership(&mut c, conns[2], "g"),
        vec![m(1, 100), m(2, 200), m(3, 300)]
    );
    assert!(membership(&mut c, conns[2], "nobody").is_empty());
    for (node, conn) in [(1, conns[0]), (2, conns[1]), (3, conns[2])] {
        assert_eq!(
            ok(&mut c, conn, Request::LocalGet),
            ResponseBody::LocalNode(NodeId(node))
        );
    }

    let walk = |c: &mut Cluster, kind, group: &str| {
        let ResponseBody::IterationHandle(handle) = ok(
            c,
            conns[1],
            Request::IterationInitialize {
                kind,
                group: g(group),
            },
        ) else {
            panic!("no handle");
        };
        let mut items = Vec::new();
        loop {
            let r = c.call(conns[1], &Request::IterationNext { handle });
            match r.body {
                ResponseBody::IterationItem { group, node, pid } => items.push((group, node, pid)),
                _ => {
                    assert_eq!(r.error, CsError::NoSections);
                    break;
                }
            }
        }
        ok(c, conns[1], Request::IterationFinalize { handle });
        assert_eq!(
            err(c, conns[1], Request::IterationNext { handle }),
            CsError::BadHandle
        );
        items
    };
    assert_eq!(
        walk(&mut c, IterationType::NameOnly, ""),
        vec![(g("alpha"), 0, 0), (g("g"), 0, 0)]
    );
    assert_eq!(
        walk(&mut c, IterationType::OneGroup, "alpha"),
        vec![(g("alpha"), 1, 100)]
    );
    assert_eq!(
        walk(&mut c, IterationType::All, ""),
        vec![
            (g("alpha"), 1, 100),
            (g("g"), 1, 100),
            (g("g"), 2, 200),
            (g("g"), 3, 300)
        ]
    );
    assert_eq!(
        ok(&mut c, conns[0], Request::MaxMessageSize),
        ResponseBody::MaxMessageSize((driver::MAX_MESSAGE - 12 - 128) as u32)
    );
}

#[test]
fn flow_control_is_reported_and_refuses_mcast() {
    let (mut c, conns) = three_members();
    assert_eq!(
        ok(&mut c, conns[0], Request::FlowControlGet),
        ResponseBody::FlowControl(false)
    );
    c.nodes.get_mut(&1).unwrap().flow_override = Some(true);
    c.drain(1);
    assert_eq!(
        ok(&mut c, conns[0], Request::FlowControlGet),
        ResponseBody::FlowControl(true)
    );
    let r = c.call(
        conns[0],
        &Request::Mcast {
            guarantee: CpgGuarantee::Agreed,
            group: g("g"),
            payload: Bytes::from_static(b"x"),
        },
    );
    assert_eq!(r.error, CsError::TryAgain);
    c.nodes.get_mut(&1).unwrap().flow_override = None;
    c.drain(1);
    mcast(&mut c, conns[0], "g", CpgGuarantee::Agreed, b"x");
}

#[test]
fn the_initial_totem_configuration_comes_with_initialize_when_asked() {
    let mut c = Cluster::new(3);
    let conn = c.connect_raw(2, 42);
    ok(
        &mut c,
        conn,
        Request::Initialize {
            flags: DELIVER_INITIAL_TOTEM_CONF,
            pid: 42,
        },
    );
    let events = c.take_events(conn);
    assert!(matches!(
        &events[..],
        [CpgEvent::TotemConfchg { members, .. }] if members.len() == 3
    ));
    let plain = c.connect(2, 43);
    assert!(c.take_events(plain).is_empty());
}

#[test]
fn a_large_message_travels_without_copies_in_the_engine() {
    let (mut c, conns) = three_members();
    let payload: Vec<u8> = (0..(1 << 20) + 512).map(|i| (i % 251) as u8).collect();
    let request = Request::Mcast {
        guarantee: CpgGuarantee::Safe,
        group: g("g"),
        payload: Bytes::from(payload.clone()),
    }
    .emit();
    let at = request.as_ptr() as usize;
    let before = c.nodes[&1].submitted.len();
    let r = c.call_raw(conns[0], request);
    assert_eq!(r.error, CsError::Ok);
    // The request buffer itself went to the ring (rewritten in place).
    assert_eq!(c.nodes[&1].submitted[before].0, at);
    c.run_for(Duration::from_secs(3));
    for conn in conns {
        let d = delivered(&c.clients[&conn].events);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].payload.len(), payload.len());
        assert!(d[0].payload == payload[..]);
        // The event handed to the client is the buffer the ring delivered.
        let node = c.clients[&conn].node;
        let raw = c.clients[&conn].raw_events.last().unwrap();
        assert_eq!(
            c.nodes[&node].delivered.last().unwrap(),
            &(raw.as_ptr() as usize, raw.len())
        );
    }
}

#[test]
fn errors_are_replies_never_panics() {
    let (mut c, conns) = three_members();
    let loner = c.connect(1, 150);
    let not_joined = Request::Mcast {
        guarantee: CpgGuarantee::Agreed,
        group: g("g"),
        payload: Bytes::from_static(b"x"),
    };
    assert_eq!(err(&mut c, loner, not_joined), CsError::NotExist);
    assert_eq!(
        err(&mut c, loner, Request::Leave { group: g("g") }),
        CsError::NotExist
    );
    // Double join, and the same process on a second connection.
    assert_eq!(
        err(&mut c, conns[0], Request::Join { group: g("g") }),
        CsError::Exist
    );
    let twin = c.connect(1, 100);
    assert_eq!(
        err(&mut c, twin, Request::Join { group: g("g") }),
        CsError::Exist
    );
    // A join still in flight cannot be left yet.
    join(&mut c, loner, "busy");
    assert_eq!(
        err(&mut c, loner, Request::Leave { group: g("busy") }),
        CsError::Busy
    );
    // A name of 129 bytes.
    let mut long = vec![1u8, u8::from(RequestCode::Join), 129];
    long.extend_from_slice(&[b'n'; 129]);
    let r = c.call_raw(loner, Bytes::from(long));
    assert_eq!((r.code, r.error), (RequestCode::Join, CsError::NameTooLong));
    // Unknown guarantee and iteration type.
    let r = c.call(
        conns[0],
        &Request::Mcast {
            guarantee: CpgGuarantee::Unknown(9),
            group: g("g"),
            payload: Bytes::new(),
        },
    );
    assert_eq!(r.error, CsError::InvalidParam);
    // Garbage.
    for (bytes, want) in [
        (&[][..], CsError::MessageError),
        (&[7, 0][..], CsError::Version),
        (&[1, 200][..], CsError::NotSupported),
        (&[1, 2, 5, b'a'][..], CsError::MessageError),
        (&[1, 1, 0, 0][..], CsError::MessageError),
    ] {
        let r = c.call_raw(loner, Bytes::copy_from_slice(bytes));
        assert_eq!(r.error, want, "{bytes:?}");
    }
    // Random short requests, mostly of known codes (never Finalize, which would end the
    // connection): each gets exactly one reply.
    let mut seed = 0x1234_5678_u64;
    for _ in 0..2000 {
        let len = (seed % 24) as usize;
        let mut bytes: Vec<u8> = (0..len)
            .map(|_| {
                seed = seed
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                (seed >> 56) as u8 % 16
            })
            .collect();
        if let Some(v) = bytes.first_mut() {
            *v = 1;
        }
        if bytes.get(1) == Some(&u8::from(RequestCode::Finalize)) {
            bytes[1] = u8::from(RequestCode::LocalGet);
        }
        let node = c.clients[&loner].node;
        c.nodes
            .get_mut(&node)
            .unwrap()
            .services
            .handle_request(loner, Bytes::from(bytes));
        c.drain(node);
        assert_eq!(c.clients.get_mut(&loner).unwrap().replies.len(), 1);
        c.clients.get_mut(&loner).unwrap().replies.clear();
    }
    // After finalize the node closes the connection; a request that still arrives is
    // counted and dropped.
    ok(&mut c, twin, Request::Finalize);
    let stats = c.nodes[&1].services.stats().unknown_conn;
    c.nodes
        .get_mut(&1)
        .unwrap()
        .services
        .handle_request(twin, Request::LocalGet.emit());
    assert_eq!(c.nodes[&1].services.stats().unknown_conn, stats + 1);
    // The cluster is unharmed.
    c.run_for(Duration::from_millis(300));
    assert_eq!(c.cpg(2).members(&g("g")).len(), 3);
}
