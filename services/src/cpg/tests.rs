//! The CPG engine alone, driven by hand: the corners the end-to-end tests cannot reach on
//! purpose (operations after a joinlist, zombie members, split joinlists, bounds, forged
//! messages). Reference: corosync `exec/cpg.c`.

use alloc::vec;
use alloc::vec::Vec;

use bytes::Bytes;
use totem_proto::{Guarantee, NodeId, RingId};
use totem_ring::Delivery;

use super::wire::{
    Address, CpgEvent, CpgGuarantee, CsError, ExecMessage, IterationType, McastMessage, Member,
    Reason, Request, RequestCode, Response, ResponseBody,
};
use super::{Cpg, CpgConfig};
use crate::wire::GroupName;
use crate::{Action, ConnId, Credentials, Outbox, ServiceEngine, service_id};

fn g(s: &str) -> GroupName {
    GroupName::new(s.as_bytes()).unwrap()
}

fn m(node: u32, pid: u32) -> Member {
    Member::new(NodeId(node), pid)
}

/// An exec Mcast message to "g" from `(node, pid)`.
fn mcast_from(node: u32, pid: u32, payload: &'static [u8]) -> Bytes {
    McastMessage {
        guarantee: CpgGuarantee::Agreed,
        group: g("g"),
        sender: m(node, pid),
        payload: Bytes::from_static(payload),
    }
    .emit()
}

struct Harness {
    cpg: Cpg,
    out: Outbox,
    seq: u64,
}

impl Harness {
    fn new(config: CpgConfig) -> Self {
        Self {
            cpg: Cpg::new(NodeId(1), config),
            out: Outbox::new(service_id::CPG),
            seq: 0,
        }
    }

    fn deliver(&mut self, sender: u32, payload: Bytes) {
        let d = Delivery {
            sender: NodeId(sender),
            service: service_id::CPG,
            guarantee: Guarantee::Agreed,
            ring_id: RingId::new(NodeId(1), self.seq),
            payload,
        };
        self.cpg.on_deliver(d, &mut self.out);
    }

    /// Delivers this node's queued multicasts back to itself (a one-node ring).
    fn loop_back(&mut self) -> usize {
        let mut n = 0;
        while let Some(o) = self.out.pop_multicast() {
            self.deliver(1, o.payload);
            n += 1;
        }
        n
    }

    /// A sync round: our joinlist plus `others`' lists, then activation.
    fn round(&mut self, trans: &[u32], members: &[u32], others: &[(u32, Vec<(GroupName, u32)>)]) {
        self.seq += 4;
        let ring_id = RingId::new(NodeId(1), self.seq);
        let trans: Vec<NodeId> = trans.iter().map(|n| NodeId(*n)).collect();
        let members: Vec<NodeId> = members.iter().map(|n| NodeId(*n)).collect();
        self.cpg.sync_init(&trans, &members, ring_id, &mut self.out);
        self.cpg.sync_process(&mut self.out);
        self.loop_back();
        for (node, entries) in others {
            let jl = ExecMessage::JoinList {
                ring_id,
                entries: entries.clone(),
            };
            self.deliver(*node, jl.emit());
        }
        self.cpg.sync_activate(&mut self.out);
    }

    fn connect(&mut self, conn: u64, pid: u32) -> ConnId {
        let creds = Credentials {
            pid,
            uid: 0,
            gid: 0,
        };
        self.cpg.on_connect(ConnId(conn), creds, &mut self.out);
        ConnId(conn)
    }

    fn call(&mut self, conn: ConnId, req: &Request) -> Response {
        self.cpg.on_request(conn, req.emit(), &mut self.out);
        let mut reply = None;
        let mut rest = Vec::new();
        while let Some(a) = self.out.pop_action() {
            match a {
                Action::Reply { bytes, .. } if reply.is_none() => reply = Some(bytes),
                other => rest.push(other),
            }
        }
        for a in rest {
            match a {
                Action::Event { conn, bytes } => self.out.event(conn, bytes),
                Action::Close { conn } => self.out.close(conn),
                Action::Reply { conn, bytes } => self.out.reply(conn, bytes),
            }
        }
        Response::parse(&reply.unwrap()).unwrap()
    }

    fn events(&mut self, conn: ConnId) -> Vec<CpgEvent> {
        let mut mine = Vec::new();
        let mut keep = Vec::new();
        while let Some(a) = self.out.pop_action() {
            match a {
                Action::Event { conn: c, bytes } if c == conn => {
                    mine.push(CpgEvent::parse(&bytes).unwrap());
                }
                other => keep.push(other),
            }
        }
        for a in keep {
            if let Action::Event { conn, bytes } = a {
                self.out.event(conn, bytes);
            }
        }
        mine
    }

    fn left_and_joined(&mut self, conn: ConnId) -> (Vec<Address>, Vec<Address>) {
        let mut left = Vec::new();
        let mut joined = Vec::new();
        for e in self.events(conn) {
            if let CpgEvent::Confchg(c) = e {
                left.extend(c.left);
                joined.extend(c.joined);
            }
        }
        (left, joined)
    }
}

/// A settled one-node engine with a local member (pid 10) in "g".
fn settled_with_member() -> (Harness, ConnId) {
    let mut h = Harness::new(CpgConfig::default());
    h.round(&[1], &[1], &[]);
    let conn = h.connect(1, 10);
    assert_eq!(
        h.call(conn, &Request::Join { group: g("g") }).error,
        CsError::Ok
    );
    h.loop_back();
    h.events(conn);
    (h, conn)
}

#[test]
fn an_operation_delivered_after_its_senders_joinlist_counts_in_the_rebuild() {
    let (mut h, conn) = settled_with_member();
    h.seq += 4;
    let ring_id = RingId::new(NodeId(1), h.seq);
    let both = [NodeId(1), NodeId(2)];
    h.cpg.sync_init(&[NodeId(1)], &both, ring_id, &mut h.out);
    h.cpg.sync_process(&mut h.out);
    h.loop_back();
    let jl = ExecMessage::JoinList {
        ring_id,
        entries: vec![(g("g"), 5)],
    };
    h.deliver(2, jl.emit());
    // After its joinlist, node 2's process 5 leaves and process 6 joins.
    let leave = ExecMessage::ProcLeave {
        group: g("g"),
        pid: 5,
        reason: Reason::Leave,
    };
    h.deliver(2, leave.emit());
    let join = ExecMessage::ProcJoin {
        group: g("g"),
        pid: 6,
    };
    h.deliver(2, join.emit());
    h.cpg.sync_activate(&mut h.out);
    assert_eq!(h.cpg.members(&g("g")), vec![m(1, 10), m(2, 6)]);
    let (_, joined) = h.left_and_joined(conn);
    assert!(joined.contains(&m(2, 6).with(Reason::Join)));
}

#[test]
fn a_member_its_node_no_longer_lists_is_procdown() {
    let (mut h, conn) = settled_with_member();
    // Node 2 joins the configuration with process 5 in "g".
    h.round(&[1], &[1, 2], &[(2, vec![(g("g"), 5)])]);
    assert_eq!(
        h.left_and_joined(conn),
        (vec![], vec![m(2, 5).with(Reason::NodeUp)])
    );
    // Next configuration: node 2 stayed, but does not list process 5 any more.
    h.round(&[1, 2], &[1, 2], &[(2, vec![])]);
    assert_eq!(
        h.left_and_joined(conn),
        (vec![m(2, 5).with(Reason::ProcDown)], vec![])
    );
    // Node 2 leaves the configuration with a new member: NODEDOWN.
    h.round(&[1, 2], &[1, 2], &[(2, vec![(g("g"), 7)])]);
    h.events(conn);
    h.round(&[1], &[1], &[]);
    assert_eq!(
        h.left_and_joined(conn),
        (vec![m(2, 7).with(Reason::NodeDown)], vec![])
    );
    assert_eq!(h.cpg.members(&g("g")), vec![m(1, 10)]);
}

#[test]
fn joinlists_are_split_to_fit_the_ring_limit() {
    let mut h = Harness::new(CpgConfig {
        max_message_len: 300,
        ..CpgConfig::default()
    });
    h.round(&[1], &[1], &[]);
    let conn = h.connect(1, 10);
    let names: Vec<GroupName> = (0..10u8)
        .map(|i| GroupName::new(&[b'a' + i; 100]).unwrap())
        .collect();
    for name in &names {
        let r = h.call(
            conn,
            &Request::Join {
                group: name.clone(),
            },
        );
        assert_eq!(r.error, CsError::Ok);
    }
    h.loop_back();
    h.seq += 4;
    let ring_id = RingId::new(NodeId(1), h.seq);
    h.cpg
        .sync_init(&[NodeId(1)], &[NodeId(1)], ring_id, &mut h.out);
    h.cpg.sync_process(&mut h.out);
    let mut chunks = 0;
    while let Some(o) = h.out.pop_multicast() {
        assert!(o.payload.len() <= 300);
        chunks += 1;
        h.deliver(1, o.payload);
    }
    assert_eq!(chunks, 5, "two 105-byte entries per 300-byte message");
    h.events(conn);
    h.cpg.sync_activate(&mut h.out);
    let (left, joined) = h.left_and_joined(conn);
    assert!(left.is_empty() && joined.is_empty());
    assert_eq!(h.cpg.groups().count(), 10);
}

#[test]
fn an_aborted_round_leaves_the_view_alone_and_keeps_holding() {
    let (mut h, conn) = settled_with_member();
    h.seq += 4;
    let ring_id = RingId::new(NodeId(1), h.seq);
    h.cpg
        .sync_init(&[NodeId(1)], &[NodeId(1), NodeId(2)], ring_id, &mut h.out);
    h.cpg.sync_process(&mut h.out);
    h.loop_back();
    h.deliver(
        2,
        ExecMessage::JoinList {
            ring_id,
            entries: vec![(g("g"), 5)],
        }
        .emit(),
    );
    h.cpg.sync_abort(&mut h.out);
    assert!(!h.cpg.is_settled());
    // Held while unsettled.
    let r = h.call(conn, &Request::Leave { group: g("g") });
    assert_eq!(r.error, CsError::Ok);
    assert_eq!(h.out.multicasts_len(), 0);
    // A joinlist of the aborted round arriving late is stale.
    h.deliver(
        2,
        ExecMessage::JoinList {
            ring_id,
            entries: vec![],
        }
        .emit(),
    );
    assert_eq!(h.cpg.stats().stale_joinlists, 1);
    assert_eq!(h.cpg.members(&g("g")), vec![m(1, 10)]);
    h.round(&[1], &[1], &[]);
    assert_eq!(h.out.multicasts_len(), 1, "the held leave goes out");
    h.loop_back();
    assert!(h.cpg.members(&g("g")).is_empty());
}

#[test]
fn held_bytes_are_bounded() {
    let mut h = Harness::new(CpgConfig {
        max_held_bytes: 1000,
        ..CpgConfig::default()
    });
    // Never settled: everything is held.
    let conn = h.connect(1, 10);
    assert_eq!(
        h.call(conn, &Request::Join { group: g("g") }).error,
        CsError::Ok
    );
    let send = |h: &mut Harness, len| {
        h.call(
            conn,
            &Request::Mcast {
                guarantee: CpgGuarantee::Agreed,
                group: g("g"),
                payload: Bytes::from(vec![0; len]),
            },
        )
        .error
    };
    assert_eq!(send(&mut h, 600), CsError::Ok);
    assert_eq!(send(&mut h, 600), CsError::TryAgain);
    h.round(&[1], &[1], &[]);
    assert_eq!(h.loop_back(), 2, "join and message");
    assert_eq!(send(&mut h, 600), CsError::Ok);
}

#[test]
fn iterations_are_bounded_per_connection() {
    let mut h = Harness::new(CpgConfig {
        max_iterations_per_conn: 2,
        ..CpgConfig::default()
    });
    let conn = h.connect(1, 10);
    let init = Request::IterationInitialize {
        kind: IterationType::All,
        group: g(""),
    };
    let handles: Vec<ResponseBody> = (0..2).map(|_| h.call(conn, &init).body).collect();
    assert_eq!(
        handles,
        vec![
            ResponseBody::IterationHandle(1),
            ResponseBody::IterationHandle(2)
        ]
    );
    assert_eq!(h.call(conn, &init).error, CsError::NoResources);
    let bad = Request::IterationInitialize {
        kind: IterationType::Unknown(9),
        group: g(""),
    };
    assert_eq!(h.call(conn, &bad).error, CsError::InvalidParam);
    assert_eq!(
        h.call(conn, &Request::IterationFinalize { handle: 1 })
            .error,
        CsError::Ok
    );
    assert_eq!(h.call(conn, &init).body, ResponseBody::IterationHandle(3));
}

#[test]
fn forged_and_non_member_messages_are_dropped() {
    let (mut h, conn) = settled_with_member();
    let msg = |node, pid| mcast_from(node, pid, b"x");
    // Claims another node.
    h.deliver(2, msg(3, 5));
    assert_eq!(h.cpg.stats().bad_messages, 1);
    // Not a member of the group.
    h.deliver(2, msg(2, 5));
    assert_eq!(h.cpg.stats().mcast_not_member, 1);
    h.deliver(1, Bytes::from_static(b"\x01\x99"));
    assert_eq!(h.cpg.stats().bad_messages, 2);
    assert!(h.events(conn).is_empty());
    // A member's message is delivered, as the very buffer.
    let ok = msg(1, 10);
    h.deliver(1, ok.clone());
    match h.out.pop_action() {
        Some(Action::Event { conn: c, bytes }) => {
            assert_eq!(c, conn);
            assert_eq!(bytes.as_ptr(), ok.as_ptr());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn redundant_joins_and_leaves_change_nothing() {
    let (mut h, conn) = settled_with_member();
    h.deliver(
        1,
        ExecMessage::ProcJoin {
            group: g("g"),
            pid: 10,
        }
        .emit(),
    );
    h.deliver(
        2,
        ExecMessage::ProcLeave {
            group: g("g"),
            pid: 77,
            reason: Reason::Leave,
        }
        .emit(),
    );
    assert_eq!(h.cpg.stats().redundant_ops, 2);
    assert!(h.events(conn).is_empty());
}

#[test]
fn a_finalized_connection_gets_bad_handle_until_the_node_closes_it() {
    let (mut h, conn) = settled_with_member();
    assert_eq!(h.call(conn, &Request::Finalize).error, CsError::Ok);
    assert!(matches!(
        h.out.pop_action(),
        Some(Action::Close { conn: c }) if c == conn
    ));
    // Its groups are left with PROCDOWN.
    h.loop_back();
    assert!(h.cpg.members(&g("g")).is_empty());
    assert_eq!(h.call(conn, &Request::LocalGet).error, CsError::BadHandle);
    // Garbage too: the handle is checked first.
    h.cpg
        .on_request(conn, Bytes::from_static(b"\x09"), &mut h.out);
    let Some(Action::Reply { bytes, .. }) = h.out.pop_action() else {
        panic!("no reply");
    };
    assert_eq!(Response::parse(&bytes).unwrap().error, CsError::BadHandle);
}

/// A node alone for one configuration whose round is aborted, then merged back: the
/// other node's members are reported gone (NODEDOWN) and back (NODEUP), not as if they had
/// stayed — they delivered messages in a configuration without us. corosync 3 compares
/// with the aborted configuration only and would report nothing.
#[test]
fn a_node_away_during_an_aborted_round_is_reported_down_and_up() {
    let mut h = Harness::new(CpgConfig::default());
    let conn = h.connect(1, 10);
    h.round(&[1], &[1, 2], &[(2, vec![(g("g"), 20)])]);
    assert_eq!(
        h.call(conn, &Request::Join { group: g("g") }).error,
        CsError::Ok
    );
    h.loop_back();
    h.events(conn);
    assert_eq!(h.cpg.members(&g("g")), vec![m(1, 10), m(2, 20)]);

    // Alone (node 2 not in the transitional configuration); that round is aborted.
    h.seq += 4;
    let alone = RingId::new(NodeId(1), h.seq);
    h.cpg
        .sync_init(&[NodeId(1)], &[NodeId(1)], alone, &mut h.out);
    h.cpg.sync_abort(&mut h.out);
    // Merged back: node 2 is a member again, and not in this transitional either.
    h.round(&[1], &[1, 2], &[(2, vec![(g("g"), 20)])]);
    let events = h.events(conn);
    let confchgs: Vec<(Vec<Address>, Vec<Address>)> = events
        .into_iter()
        .filter_map(|e| match e {
            CpgEvent::Confchg(c) => Some((c.left, c.joined)),
            _ => None,
        })
        .collect();
    assert_eq!(
        confchgs,
        vec![
            (vec![m(2, 20).with(Reason::NodeDown)], vec![]),
            (vec![], vec![m(2, 20).with(Reason::NodeUp)]),
        ]
    );
    assert_eq!(h.cpg.members(&g("g")), vec![m(1, 10), m(2, 20)]);

    // A configuration change where node 2 stays: nothing to report for it.
    h.round(&[1, 2], &[1, 2], &[(2, vec![(g("g"), 20)])]);
    assert_eq!(h.left_and_joined(conn), (vec![], vec![]));
}

/// What a queued multicast's request gets back: nothing when it is taken (a sender with many
/// in flight reads no reply per message), an `McastQueued` reply with the error when not.
#[test]
fn queued_multicasts_are_answered_only_when_they_fail() {
    let (mut h, conn) = settled_with_member();
    let queued = |group: &str| Request::McastQueued {
        guarantee: CpgGuarantee::Agreed,
        group: g(group),
        payload: Bytes::from_static(b"hello"),
    };
    h.cpg.on_request(conn, queued("g").emit(), &mut h.out);
    assert_eq!(
        h.out.actions_len(),
        0,
        "no reply to a queued multicast taken"
    );
    assert_eq!(h.loop_back(), 1);
    match h.events(conn).as_slice() {
        [CpgEvent::Deliver(d)] => assert_eq!(&d.payload[..], b"hello"),
        other => panic!("{other:?}"),
    }
    // Not a member of that group: refused, and said so.
    let reply = h.call(conn, &queued("other"));
    assert_eq!(
        (reply.code, reply.error),
        (RequestCode::McastQueued, CsError::NotExist)
    );
    assert_eq!(h.out.multicasts_len(), 0);
}

/// Deliveries to one group reuse its receivers, yet follow every membership change between
/// them: a process that joins gets the next message; one that left, finalized or died does
/// not; a remote member gone by a delivered leave is no longer a sender. Each of the
/// route's invalidations (request, delivery, disconnect) is needed for one of these.
#[test]
fn deliveries_follow_membership_changes_between_messages() {
    let (mut h, a) = settled_with_member();
    let send = |h: &mut Harness, conn, text: &'static [u8]| {
        let req = Request::Mcast {
            guarantee: CpgGuarantee::Agreed,
            group: g("g"),
            payload: Bytes::from_static(text),
        };
        assert_eq!(h.call(conn, &req).error, CsError::Ok);
        h.loop_back();
    };
    let join = |h: &mut Harness, conn| {
        assert_eq!(
            h.call(conn, &Request::Join { group: g("g") }).error,
            CsError::Ok
        );
        h.loop_back();
    };
    let delivered = |h: &mut Harness, conn| {
        h.events(conn)
            .into_iter()
            .filter(|e| matches!(e, CpgEvent::Deliver(_)))
            .count()
    };
    send(&mut h, a, b"one");
    send(&mut h, a, b"two");
    assert_eq!(delivered(&mut h, a), 2);
    let b = h.connect(2, 20);
    join(&mut h, b);
    send(&mut h, a, b"three");
    assert_eq!((delivered(&mut h, a), delivered(&mut h, b)), (1, 1));
    assert_eq!(
        h.call(a, &Request::Leave { group: g("g") }).error,
        CsError::Ok
    );
    h.loop_back();
    h.events(a);
    send(&mut h, b, b"four");
    assert_eq!((delivered(&mut h, a), delivered(&mut h, b)), (0, 1));
    // A remote member, routed once, then gone by a delivered leave with no local request
    // in between: its next message is not delivered.
    let from_remote = || mcast_from(2, 30, b"remote");
    let remote_join = ExecMessage::ProcJoin {
        group: g("g"),
        pid: 30,
    };
    h.deliver(2, remote_join.emit());
    h.deliver(2, from_remote());
    assert_eq!(delivered(&mut h, b), 1);
    let leave = ExecMessage::ProcLeave {
        group: g("g"),
        pid: 30,
        reason: Reason::Leave,
    };
    h.deliver(2, leave.emit());
    h.deliver(2, from_remote());
    assert_eq!(delivered(&mut h, b), 0);
    assert_eq!(h.cpg.stats().mcast_not_member, 1);
    // A local process that finalizes gets nothing more, even from messages delivered
    // before its own leave is.
    let c = h.connect(3, 40);
    join(&mut h, c);
    send(&mut h, b, b"five");
    assert_eq!((delivered(&mut h, b), delivered(&mut h, c)), (1, 1));
    assert_eq!(h.call(c, &Request::Finalize).error, CsError::Ok);
    let from_b = mcast_from(1, 20, b"six");
    h.deliver(1, from_b.clone());
    assert_eq!((delivered(&mut h, b), delivered(&mut h, c)), (1, 0));
    // Likewise one whose process dies.
    let d = h.connect(4, 50);
    join(&mut h, d);
    h.deliver(1, from_b.clone());
    assert_eq!((delivered(&mut h, b), delivered(&mut h, d)), (1, 1));
    h.cpg.on_disconnect(d, &mut h.out);
    h.deliver(1, from_b);
    assert_eq!((delivered(&mut h, b), delivered(&mut h, d)), (1, 0));
}
