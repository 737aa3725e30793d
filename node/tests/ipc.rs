//! totemd's IPC end to end, with real daemons (127.0.0.x, udpu) and raw ipc-shm clients
//! speaking the session hello and the CPG wire format: a three-node CPG group (JOIN
//! confchgs, AGREED and SAFE messages in one order everywhere, a killed member's PROCDOWN),
//! `totemctl cpg` and `status`, sessions refused or broken in every way a client can, and
//! the `uidgid` access policy for a real unprivileged user (uid 65534) with `reload`.
//!
//! Each test starts its own daemons on its own port; helper children (a CPG member to kill,
//! a client running as uid 65534) are this test binary run again with `CHILD_ENV` set.

extern crate alloc;

mod common;

use common::{Cluster, CpgClient, child_line, eventually, session, spawn_child, totemctl};
use services::cpg::wire::{CpgEvent, CpgGuarantee, CsError, Member, Reason, Request};
use services::session::{CONTROL, HelloReply};
use totem_proto::{NodeId, ServiceId};

/// The pid every in-process client has (members are `(node, pid)`).
fn me() -> u32 {
    std::process::id()
}

fn member(node: u32, pid: u32) -> Member {
    Member::new(NodeId(node), pid)
}

/// A confchg list entry: node id, pid, reason.
type Listed = (u32, u32, Reason);

/// Waits on `c` for the confchg of `group` whose member list is `members`; returns the
/// (left, joined) lists as `(node, pid, reason)`.
fn confchg(c: &mut CpgClient, group: &str, members: &[Member]) -> (Vec<Listed>, Vec<Listed>) {
    c.wait_for(&format!("confchg of {group} to {members:?}"), |e| match e {
        CpgEvent::Confchg(cc)
            if cc.group.as_bytes() == group.as_bytes() && cc.members == members =>
        {
            let l = |v: &[services::cpg::wire::Address]| {
                v.iter()
                    .map(|a| (a.node.0, a.pid, a.reason))
                    .collect::<Vec<_>>()
            };
            Some((l(&cc.left), l(&cc.joined)))
        }
        _ => None,
    })
}

/// Three nodes, a client on each: join, confchgs, AGREED and SAFE messages in one total
/// order on every node with the right senders; `totemctl cpg` and `status`; then a member
/// process is killed and the others see it leave with PROCDOWN.
#[test]
fn three_nodes_cpg_group_order_listing_and_procdown() {
    let cluster = Cluster::start("cpg3", 3, 25431, "");
    let mut clients: Vec<CpgClient> = (1..=3)
        .map(|id| CpgClient::connect(&cluster.socket(id)))
        .collect();
    for c in &mut clients {
        c.join("g");
    }
    let all = [member(1, me()), member(2, me()), member(3, me())];
    for c in &mut clients {
        // Every client ends up seeing all three (joins may arrive in one or several
        // confchgs, each with reason JOIN).
        confchg(c, "g", &all);
    }

    // Interleaved senders and guarantees.
    let plan: [(usize, CpgGuarantee); 6] = [
        (0, CpgGuarantee::Agreed),
        (1, CpgGuarantee::Safe),
        (2, CpgGuarantee::Agreed),
        (2, CpgGuarantee::Safe),
        (0, CpgGuarantee::Safe),
        (1, CpgGuarantee::Agreed),
    ];
    let mut sent = Vec::new();
    for round in 0..5u32 {
        for (k, (who, g)) in plan.iter().enumerate() {
            let payload = format!("m{round}.{k} from {}", who + 1).into_bytes();
            clients[*who].mcast("g", *g, &payload);
            sent.push(payload);
        }
    }
    let mut orders = Vec::new();
    for c in &mut clients {
        let mut got = Vec::new();
        while got.len() < sent.len() {
            let d = c.wait_for("a delivery", |e| match e {
                CpgEvent::Deliver(m) => Some(m.clone()),
                _ => None,
            });
            assert_eq!(d.group.as_bytes(), b"g");
            let text = String::from_utf8(d.payload.to_vec()).unwrap();
            // The sender is who the payload says, as the kernel saw it (node, pid).
            let from: u32 = text.rsplit(' ').next().unwrap().parse().unwrap();
            assert_eq!(d.sender, member(from, me()), "{text}");
            let k: usize = text[text.find('.').unwrap() + 1..text.find(' ').unwrap()]
                .parse()
                .unwrap();
            assert_eq!(d.guarantee, plan[k].1, "{text}");
            got.push(text);
        }
        orders.push(got);
    }
    assert_eq!(orders[0], orders[1]);
    assert_eq!(orders[0], orders[2]);
    // Each sender's own messages in the order it sent them.
    for who in 1..=3 {
        let mine: Vec<&String> = orders[0]
            .iter()
            .filter(|t| t.ends_with(&format!("from {who}")))
            .collect();
        let expected: Vec<String> = sent
            .iter()
            .map(|p| String::from_utf8(p.clone()).unwrap())
            .filter(|t| t.ends_with(&format!("from {who}")))
            .collect();
        assert_eq!(mine, expected.iter().collect::<Vec<_>>());
    }

    // totemctl: the group, sorted; status's first line as scripts parse it.
    let sock = cluster.socket(1);
    let sock = sock.to_str().unwrap();
    let out = totemctl(&["-s", sock, "cpg"], None);
    assert!(out.status.success(), "{out:?}");
    let p = me();
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("group g\n  node 1 pid {p}\n  node 2 pid {p}\n  node 3 pid {p}\n")
    );
    let out = totemctl(&["-s", sock, "status"], None);
    assert!(out.status.success(), "{out:?}");
    let status = String::from_utf8(out.stdout).unwrap();
    let first = status.lines().next().unwrap();
    let (head, members) = first.split_once(" members ").unwrap();
    assert_eq!(members, "1,2,3", "{first}");
    let ring = head.strip_prefix("node 1: ring ").unwrap();
    let (rep, seq) = ring.split_once('.').unwrap();
    assert!(
        rep.parse::<u32>().is_ok() && seq.parse::<u64>().is_ok(),
        "{first}"
    );
    assert!(status.contains("\nservices: synchronized yes cpg groups 1 members 3\n"));
    assert!(status.contains("\nipc: connections "), "{status}");

    // A member process on node 2 is killed: the others see PROCDOWN.
    let mut child = spawn_child("child_helper", "member", &cluster.socket(2), None);
    let line = child_line(&mut child, "joined ");
    let pid: u32 = line["joined ".len()..].parse().unwrap();
    assert_eq!(pid, child.id());
    let mut with_child = all.to_vec();
    with_child.push(member(2, pid));
    with_child.sort();
    for c in &mut clients {
        let (_, joined) = confchg(c, "g", &with_child);
        assert_eq!(joined, [(2, pid, Reason::Join)]);
    }
    child.kill().unwrap();
    child.wait().unwrap();
    for c in &mut clients {
        let (left, _) = confchg(c, "g", &all);
        assert_eq!(left, [(2, pid, Reason::ProcDown)]);
    }
    assert!(
        cluster.log(2).contains("of service 8 closed"),
        "{}",
        cluster.log(2)
    );
}

/// Sessions: an unknown service, a garbage hello, garbage after a good hello, a finalized
/// session, bad control requests. Each is refused or answered with an error, and the
/// daemon goes on serving.
#[test]
fn broken_sessions_get_errors_and_the_daemon_keeps_running() {
    let mut cluster = Cluster::start("sessions", 1, 25441, "");
    let sock = cluster.socket(1);

    // Unknown service: NotExist, then the daemon closes the connection.
    let (mut c, error) = session(&sock, ServiceId(4242));
    assert_eq!(error, CsError::NotExist);
    assert_eq!(
        c.request(b"anything").unwrap_err(),
        ipc_shm::Error::Disconnected
    );

    // Not a hello at all: MessageError, closed.
    let mut c = ipc_shm::Client::connect(&sock).unwrap();
    let reply = c.request(b"GET / HTTP/1.0\r\n").unwrap();
    assert_eq!(
        HelloReply::decode(&reply).unwrap().error,
        CsError::MessageError
    );
    assert_eq!(c.request(b"x").unwrap_err(), ipc_shm::Error::Disconnected);

    // A CPG session that sends garbage: an error reply each time, the session stays.
    let mut cpg = CpgClient::connect(&sock);
    for garbage in [
        &b""[..],
        b"\x01",
        b"\x07\x00",
        b"\x01\x02\xff",
        &[0xffu8; 300],
    ] {
        let raw = cpg.client.request(garbage).unwrap();
        let r = services::cpg::wire::Response::parse(&raw).unwrap();
        assert_ne!(r.error, CsError::Ok, "{garbage:?}");
    }
    let r = cpg.call(&Request::LocalGet);
    assert_eq!(r.error, CsError::Ok);
    assert_eq!(
        r.body,
        services::cpg::wire::ResponseBody::LocalNode(NodeId(1))
    );
    // Finalize: answered, then the daemon closes the session.
    assert_eq!(cpg.call(&Request::Finalize).error, CsError::Ok);
    eventually("finalized session closed", || {
        cpg.client.check_connection().is_err().then_some(())
    });

    // Control: not text, an unknown request, a huge one.
    let (mut ctl, error) = session(&sock, CONTROL);
    assert_eq!(error, CsError::Ok);
    for bad in [&b"\xff\xfe"[..], b"frobnicate", &[b'a'; 100_000]] {
        let answer = ctl.request(bad).unwrap();
        assert!(answer.starts_with(b"error:"), "{bad:.10?}");
    }
    // The same session goes on answering, and so does the daemon.
    let status = String::from_utf8(ctl.request(b"status").unwrap()).unwrap();
    assert!(status.starts_with("node 1: ring "), "{status}");
    assert!(status.lines().next().unwrap().ends_with(" members 1"));
    assert!(cluster.alive(1));
    let out = totemctl(&["-s", sock.to_str().unwrap(), "cpg"], None);
    assert!(out.status.success());
    assert_eq!(out.stdout, b"");

    // leave: answered, then the daemon exits and removes its socket.
    assert_eq!(ctl.request(b"leave").unwrap(), b"leaving\n");
    eventually("the daemon exits after leave", || {
        (!cluster.alive(1)).then_some(())
    });
    assert!(!sock.exists());
}

/// The access policy: uid 65534 is refused until a `uidgid { access: read }` section and a
/// reload let it in read-only (status yes, reload no, CPG no); root always gets in.
#[test]
fn uidgid_sections_decide_who_may_connect_and_reload_applies_them() {
    const NOBODY: u32 = 65534;
    let mut cluster = Cluster::start("access", 1, 25451, "");
    let sock = cluster.socket(1);
    let s = sock.to_str().unwrap();
    // The scratch directory must be reachable for the unprivileged user.
    for dir in [cluster.dir.clone(), cluster.node(1).dir.clone()] {
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
    }

    let out = totemctl(&["-s", s, "status"], Some(NOBODY));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("access denied"), "{err}");
    let log = cluster.log(1);
    assert!(
        log.contains(&format!("Denied connection attempt from {NOBODY}:{NOBODY}")),
        "{log}"
    );

    // Grant read access and reload (as root).
    cluster.rewrite_config(
        1,
        &format!("uidgid {{\n    uid: {NOBODY}\n    access: read\n}}\n"),
    );
    let out = totemctl(&["-s", s, "reload"], None);
    let answer = String::from_utf8(out.stdout).unwrap();
    assert!(answer.contains("applied: uidgid (1 sections)"), "{answer}");

    let out = totemctl(&["-s", s, "status"], Some(NOBODY));
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .starts_with("node 1: ring ")
    );
    let out = totemctl(&["-s", s, "reload"], Some(NOBODY));
    assert!(!out.status.success());
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .contains("needs full access")
    );
    // CPG needs full access: the hello is refused with ACCESS.
    let mut child = spawn_child("child_helper", "hello-cpg", &sock, Some(NOBODY));
    let line = child_line(&mut child, "hello ");
    assert_eq!(line, "hello Access");
    assert!(child.wait().unwrap().success());

    // Full access by gid: CPG is allowed.
    cluster.rewrite_config(1, &format!("uidgid {{\n    gid: {NOBODY}\n}}\n"));
    let out = totemctl(&["-s", s, "reload"], None);
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .contains("applied: uidgid")
    );
    let mut child = spawn_child("child_helper", "hello-cpg", &sock, Some(NOBODY));
    let line = child_line(&mut child, "hello ");
    assert_eq!(line, "hello Ok");
    assert!(child.wait().unwrap().success());
    assert!(cluster.alive(1));
}

/// Not a test: the helper children above (this binary run again with `CHILD_ENV` set;
/// see `common::child_main`).
#[test]
fn child_helper() {
    common::child_main();
}

/// Multicasts sent back to back without waiting for replies (what
/// `totem_client::cpg::Cpg::mcast_queued` does) push the ring over its flow-control
/// threshold: totemd then holds the next multicast instead of answering TRY_AGAIN, so every
/// reply is OK, nothing is lost, and both members deliver every message once, in the order
/// sent. `status` counts the held multicasts.
#[test]
fn pipelined_mcasts_under_flow_control_are_held_not_refused() {
    const N: u32 = 48;
    const SIZE: usize = 256 << 10;
    let cluster = Cluster::start("pipeline", 2, 25461, "");
    cluster.wait_ring(&[1, 2]);
    let mut a = CpgClient::connect(&cluster.socket(1));
    let mut b = CpgClient::connect(&cluster.socket(2));
    a.join("p");
    b.join("p");
    let both = [member(1, me()), member(2, me())];
    confchg(&mut a, "p", &both);
    confchg(&mut b, "p", &both);

    let group = services::GroupName::new(b"p").unwrap();
    let mut delivered: [Vec<u32>; 2] = [Vec::new(), Vec::new()];
    let take = |c: &mut CpgClient, into: &mut Vec<u32>| {
        while let Some(raw) = c.client.try_recv_event().unwrap() {
            if let CpgEvent::Deliver(m) = CpgEvent::parse(&bytes::Bytes::from(raw)).unwrap() {
                assert_eq!(m.payload.len(), SIZE);
                into.push(u32::from_be_bytes(m.payload[..4].try_into().unwrap()));
            }
        }
    };
    for i in 0..N {
        let mut payload = vec![0u8; SIZE];
        payload[..4].copy_from_slice(&i.to_be_bytes());
        let req = Request::Mcast {
            guarantee: CpgGuarantee::Agreed,
            group: group.clone(),
            payload: bytes::Bytes::from(payload),
        };
        // No reply read here: requests queue up in the ring, as a pipelining client's do.
        a.client
            .send_request(&req.emit(), Some(common::PATIENCE))
            .unwrap();
        // Keep the event rings moving, as a real application's dispatch would.
        let [da, db] = &mut delivered;
        take(&mut a, da);
        take(&mut b, db);
    }
    for i in 0..N {
        let reply = services::cpg::wire::Response::parse(
            &a.client.recv_response(Some(common::PATIENCE)).unwrap(),
        )
        .unwrap();
        assert_eq!(reply.error, CsError::Ok, "reply {i}");
    }
    eventually("every message delivered on both nodes", || {
        let [da, db] = &mut delivered;
        take(&mut a, da);
        take(&mut b, db);
        (da.len() >= N as usize && db.len() >= N as usize).then_some(())
    });
    let want: Vec<u32> = (0..N).collect();
    assert_eq!(delivered[0], want, "node 1: once each, in order");
    assert_eq!(delivered[1], want, "node 2: once each, in order");
    let status = cluster.control(1, "status");
    let held: u64 = status
        .split("mcasts-held ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no mcasts-held in status:\n{status}"));
    assert!(
        held > 0,
        "12 MiB sent back to back must cross the 2.5 MiB flow-control threshold:\n{status}"
    );
}

/// A CPG payload of exactly 1 MiB goes through totemd whole, to another node, and the
/// daemon says 1 MiB or more is its largest (`cpg_max_atomic_msgsize_get`).
#[test]
fn a_one_mebibyte_cpg_message_crosses_the_ring_whole() {
    let cluster = Cluster::start("mib", 2, 25481, "");
    let mut a = CpgClient::connect(&cluster.socket(1));
    let mut b = CpgClient::connect(&cluster.socket(2));
    let max = a.call(&Request::MaxMessageSize);
    match max.body {
        services::cpg::wire::ResponseBody::MaxMessageSize(n) => {
            assert!(n >= 1 << 20, "largest payload {n}");
        }
        other => panic!("{other:?}"),
    }
    a.join("big");
    b.join("big");
    let both = [member(1, me()), member(2, me())];
    confchg(&mut a, "big", &both);
    confchg(&mut b, "big", &both);
    let payload: Vec<u8> = (0..1u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    a.mcast("big", CpgGuarantee::Safe, &payload);
    for c in [&mut a, &mut b] {
        let d = c.wait_for("the 1 MiB delivery", |e| match e {
            CpgEvent::Deliver(m) => Some(m.clone()),
            _ => None,
        });
        assert_eq!(d.payload.len(), 1 << 20);
        assert!(d.payload[..] == payload[..], "the payload arrives intact");
        assert_eq!(d.sender, member(1, me()));
    }
}

/// Zero-copy multicasts (issue 6, `Cpg::zcb_alloc`) through real daemons: a 1 MiB message
/// written in place in the client's shared memory is delivered intact on both nodes; then
/// six more back to back, queued: each request is half of totemd's 2 MiB request ring, so
/// they wrap it, each still one contiguous buffer in place. Both nodes deliver all seven,
/// intact, in the order sent.
#[test]
fn zero_copy_mebibyte_messages_cross_the_ring_whole_and_wrap_the_request_ring() {
    use totem_client::cpg::{Cpg, Event, Guarantee};

    const N: usize = 7;
    let cluster = Cluster::start("zcb", 2, 25511, "");
    let mut a = Cpg::initialize_at(cluster.socket(1)).unwrap();
    let mut b = Cpg::initialize_at(cluster.socket(2)).unwrap();
    assert!(a.max_message_size() >= 1 << 20);
    a.join("zc").unwrap();
    b.join("zc").unwrap();
    let message = |i: usize| -> Vec<u8> {
        (0..1u32 << 20)
            .map(|k| ((k ^ i as u32).wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect()
    };
    // Deliveries so far, per client; `both`: its last confchg listed both members.
    let take = |c: &mut Cpg, into: &mut Vec<bytes::Bytes>, both: &mut bool| {
        while let Some(ev) = c.try_next_event().unwrap() {
            match ev {
                Event::Deliver { payload, .. } => into.push(payload),
                Event::Confchg { members, .. } => *both = members.len() == 2,
                _ => {}
            }
        }
    };
    let (mut got_a, mut got_b) = (Vec::new(), Vec::new());
    let (mut both_a, mut both_b) = (false, false);
    eventually("both members in the group", || {
        take(&mut a, &mut got_a, &mut both_a);
        take(&mut b, &mut got_b, &mut both_b);
        (both_a && both_b).then_some(())
    });
    for i in 0..N {
        let want = message(i);
        // Waits for room in the request ring (reading queued failures meanwhile).
        let mut buf = a.zcb_alloc("zc", 1 << 20).unwrap();
        assert!(buf.is_in_place(), "message {i} is written in shared memory");
        buf.copy_from_slice(&want);
        if i == 0 {
            buf.mcast(Guarantee::Safe).unwrap();
        } else {
            buf.mcast_queued(Guarantee::Agreed).unwrap();
        }
        take(&mut a, &mut got_a, &mut both_a);
        take(&mut b, &mut got_b, &mut both_b);
    }
    a.flush().unwrap();
    eventually("every message delivered on both nodes", || {
        take(&mut a, &mut got_a, &mut both_a);
        take(&mut b, &mut got_b, &mut both_b);
        (got_a.len() >= N && got_b.len() >= N).then_some(())
    });
    for (node, got) in [(1, &got_a), (2, &got_b)] {
        assert_eq!(got.len(), N, "node {node}: each message once");
        for (i, p) in got.iter().enumerate() {
            assert!(
                p[..] == message(i)[..],
                "node {node}: message {i} intact, in order"
            );
        }
    }
}
