//! The dispatcher and its sync protocol, with toy engines on the loopback ring.
//! Reference: corosync `exec/sync.c` (service build, barrier, abort).

use alloc::boxed::Box;
use alloc::rc::Rc;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::RefCell;

use bytes::Bytes;
use totem_proto::{Guarantee, NodeId, RingId, ServiceId};
use totem_ring::{Delivery, Refused, SubmitError};

use super::loopback::Loopback;
use crate::sync::SyncMessage;
use crate::{
    AddEngineError, ConnId, ConnectError, Credentials, Outbox, ServiceEngine, Services,
    SyncProgress, service_id,
};

type Log = Rc<RefCell<Vec<(u16, &'static str)>>>;

/// Multicasts one sync message in `sync_process` and reports done only once its own is
/// delivered: the "must wait for its own sync messages" shape.
#[derive(Debug)]
struct Toy {
    id: ServiceId,
    me: NodeId,
    log: Log,
    sent: bool,
    seen_own: bool,
}

impl Toy {
    fn new(id: u16, me: u32, log: &Log) -> Box<Self> {
        Box::new(Self {
            id: ServiceId(id),
            me: NodeId(me),
            log: log.clone(),
            sent: false,
            seen_own: false,
        })
    }

    fn note(&self, what: &'static str) {
        self.log.borrow_mut().push((self.id.0, what));
    }
}

impl ServiceEngine for Toy {
    fn service_id(&self) -> ServiceId {
        self.id
    }
    fn name(&self) -> &'static str {
        "toy"
    }
    fn on_connect(&mut self, _: ConnId, _: Credentials, _: &mut Outbox) {
        self.note("connect");
    }
    fn on_request(&mut self, conn: ConnId, request: Bytes, out: &mut Outbox) {
        out.reply(conn, request);
    }
    fn on_disconnect(&mut self, _: ConnId, _: &mut Outbox) {
        self.note("disconnect");
    }
    fn on_deliver(&mut self, d: Delivery, _: &mut Outbox) {
        if d.sender == self.me && &d.payload[..] == b"sync" {
            self.seen_own = true;
        }
    }
    fn sync_init(&mut self, _: &[NodeId], _: &[NodeId], _: RingId, _: &mut Outbox) {
        self.sent = false;
        self.seen_own = false;
        self.note("init");
    }
    fn sync_process(&mut self, out: &mut Outbox) -> SyncProgress {
        if !self.sent {
            self.sent = true;
            out.multicast(Bytes::from_static(b"sync"), Guarantee::Agreed);
            self.note("process");
        }
        if self.seen_own {
            SyncProgress::Done
        } else {
            SyncProgress::Pending
        }
    }
    fn sync_activate(&mut self, _: &mut Outbox) {
        self.note("activate");
    }
    fn sync_abort(&mut self, _: &mut Outbox) {
        self.note("abort");
    }
    fn on_flow_control(&mut self, enabled: bool, _: &mut Outbox) {
        self.note(if enabled { "flow on" } else { "flow off" });
    }
}

fn node(id: u32, engines: &[u16]) -> (Services, Log) {
    let log = Log::default();
    let mut s = Services::new(NodeId(id));
    for e in engines {
        s.add_engine(Toy::new(*e, id, &log)).unwrap();
    }
    (s, log)
}

#[test]
fn a_round_runs_each_service_to_its_barrier_in_service_order() {
    let (a, log_a) = node(1, &[20, 10]);
    let (b, log_b) = node(2, &[10, 20]);
    let mut lb = Loopback::new(vec![a, b]);
    lb.configure(&[&[1, 2]]);
    lb.run();
    let expect = vec![
        (10, "init"),
        (20, "init"),
        (10, "process"),
        (10, "activate"),
        (20, "process"),
        (20, "activate"),
    ];
    assert_eq!(*log_a.borrow(), expect);
    assert_eq!(*log_b.borrow(), expect);
    for id in [1, 2] {
        let s = lb.services(id);
        assert!(s.is_synchronized());
        assert_eq!(s.stats().sync_completed, 1);
        assert_eq!(s.ring_id().map(|r| r.rep), Some(NodeId(1)));
    }
}

#[test]
fn a_newer_configuration_aborts_every_engine_not_yet_activated() {
    let (a, log_a) = node(1, &[10, 20]);
    let (b, _) = node(2, &[10, 20]);
    let mut lb = Loopback::new(vec![a, b]);
    lb.configure(&[&[1, 2]]);
    // The service lists only: process of 10 has begun, nothing activated.
    lb.deliver(2);
    assert!(!lb.services(1).is_synchronized());
    lb.configure(&[&[1, 2]]);
    lb.run();
    let log = log_a.borrow();
    assert_eq!(
        log[..5],
        [
            (10, "init"),
            (20, "init"),
            (10, "process"),
            (10, "abort"),
            (20, "abort")
        ]
    );
    assert_eq!(log.last(), Some(&(20, "activate")));
    let s = lb.services(1);
    assert_eq!(s.stats().sync_aborted, 1);
    assert_eq!(s.stats().sync_completed, 1);
}

#[test]
fn a_service_only_some_nodes_run_is_a_no_op_on_the_others() {
    let (a, log_a) = node(1, &[10, 20]);
    let (b, log_b) = node(2, &[10]);
    let mut lb = Loopback::new(vec![a, b]);
    lb.configure(&[&[1, 2]]);
    lb.run();
    assert!(lb.services(1).is_synchronized());
    assert!(lb.services(2).is_synchronized());
    assert_eq!(log_a.borrow().last(), Some(&(20, "activate")));
    assert_eq!(log_b.borrow().last(), Some(&(10, "activate")));
}

#[test]
fn a_node_without_engines_synchronises_at_once() {
    let (a, _) = node(1, &[]);
    let mut lb = Loopback::new(vec![a]);
    lb.configure(&[&[1]]);
    lb.run();
    assert!(lb.services(1).is_synchronized());
}

#[test]
fn unknown_services_and_foreign_sync_messages_are_counted_and_dropped() {
    let (a, _) = node(1, &[10]);
    let mut lb = Loopback::new(vec![a]);
    lb.configure(&[&[1]]);
    lb.run();
    let s = lb.services(1);
    let d = |service, payload: Bytes| Delivery {
        sender: NodeId(1),
        service,
        guarantee: Guarantee::Agreed,
        ring_id: RingId::new(NodeId(1), 4),
        payload,
    };
    s.handle_delivery(d(ServiceId(77), Bytes::from_static(b"?")));
    assert_eq!(s.stats().unknown_service, 1);
    s.handle_delivery(d(service_id::SYNC, Bytes::from_static(b"\x01\x09")));
    assert_eq!(s.stats().sync_undecodable, 1);
    let stale = SyncMessage::Barrier {
        ring_id: RingId::new(NodeId(1), 999),
        service: ServiceId(10),
    };
    s.handle_delivery(d(service_id::SYNC, stale.emit()));
    assert_eq!(s.stats().sync_stale, 1);
    assert!(s.is_synchronized());
}

#[test]
fn engines_and_connections_are_checked_when_added() {
    let (mut s, log) = node(1, &[10]);
    assert_eq!(
        s.add_engine(Toy::new(10, 1, &log)),
        Err(AddEngineError::Duplicate(ServiceId(10)))
    );
    assert_eq!(
        s.add_engine(Toy::new(0xffff, 1, &log)),
        Err(AddEngineError::Reserved(service_id::SYNC))
    );
    let creds = Credentials::default();
    assert_eq!(
        s.handle_connect(ServiceId(11), ConnId(1), creds),
        Err(ConnectError::UnknownService(ServiceId(11)))
    );
    s.handle_connect(ServiceId(10), ConnId(1), creds).unwrap();
    assert_eq!(
        s.handle_connect(ServiceId(10), ConnId(1), creds),
        Err(ConnectError::DuplicateConn(ConnId(1)))
    );
    s.handle_request(ConnId(1), Bytes::from_static(b"echo"));
    assert_eq!(
        s.poll_action(),
        Some(crate::Action::Reply {
            conn: ConnId(1),
            bytes: Bytes::from_static(b"echo")
        })
    );
    s.handle_request(ConnId(2), Bytes::new());
    s.handle_disconnect(ConnId(1));
    s.handle_disconnect(ConnId(1));
    assert_eq!(s.stats().unknown_conn, 2);
    assert_eq!(*log.borrow(), [(10, "connect"), (10, "disconnect")]);
}

#[test]
fn pushed_back_multicasts_stay_in_order_and_turn_flow_control_on() {
    let (mut s, log) = node(1, &[10]);
    s.handle_configuration(&totem_ring::Configuration {
        kind: totem_ring::ConfigurationKind::Regular,
        ring_id: RingId::new(NodeId(1), 4),
        members: vec![NodeId(1)],
        left: Vec::new(),
        joined: Vec::new(),
    });
    // Queued: the service list.
    let mut taken = Vec::new();
    let f = s.flush_multicasts(|_, payload, _| {
        Err(Refused {
            error: SubmitError::Backpressure,
            payload,
        })
    });
    assert_eq!((f.submitted, f.pending), (0, 1));
    assert_eq!(log.borrow().last(), Some(&(10, "flow on")));
    let f = s.flush_multicasts(|service, payload, _| {
        taken.push((service, payload));
        Ok(())
    });
    assert_eq!((f.submitted, f.pending), (1, 0));
    assert_eq!(taken[0].0, service_id::SYNC);
    assert_eq!(log.borrow().last(), Some(&(10, "flow off")));
    // The node's own threshold.
    s.set_flow_control(true);
    assert_eq!(log.borrow().last(), Some(&(10, "flow on")));
    // Too large: dropped and counted, not stuck at the head.
    s.handle_configuration(&totem_ring::Configuration {
        kind: totem_ring::ConfigurationKind::Regular,
        ring_id: RingId::new(NodeId(1), 8),
        members: vec![NodeId(1)],
        left: Vec::new(),
        joined: Vec::new(),
    });
    let f = s.flush_multicasts(|_, payload, _| {
        Err(Refused {
            error: SubmitError::TooLarge { max: 1 },
            payload,
        })
    });
    assert_eq!(f.pending, 0);
    assert_eq!(s.stats().multicast_too_large, 1);
}
