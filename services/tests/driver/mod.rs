//! An in-memory cluster for the end-to-end tests: real `totem_ring::Ring`s over a simulated
//! network (a `BTreeMap` wire ordered by arrival time, one fixed latency, links that can be
//! cut), a `Services` with the CPG engine on every node, and fake client connections that
//! keep their replies and events. Time is simulated: the clock jumps to the next datagram
//! or timer, so seconds of protocol time cost milliseconds.
//!
//! Each node is driven the way node/ drives one: every ring event goes to the services,
//! then the services' multicasts go to the ring, then the actions to the clients, until
//! nothing moves; then the ring's frames go on the wire.
#![allow(dead_code, unreachable_pub)]

use alloc::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::Bytes;
use services::cpg::wire::{CpgEvent, Request, Response};
use services::cpg::{Cpg, CpgConfig};
use services::{Action, ConnId, Credentials, Services, service_id};
use totem_proto::NodeId;
use totem_proto::time::{Duration, Instant};
use totem_ring::{Config, Dest, Event, PeerAddr, Ring};

/// Largest ring message in these tests: room for a 2 MiB CPG message.
pub const MAX_MESSAGE: usize = (2 << 20) + 4096;

/// A fake client connection.
#[derive(Debug, Default)]
pub struct Client {
    pub node: u32,
    pub pid: u32,
    pub replies: VecDeque<Bytes>,
    pub events: Vec<CpgEvent>,
    /// Raw event buffers (to check zero copy).
    pub raw_events: Vec<Bytes>,
    pub closed: bool,
}

pub struct Node {
    pub ring: Ring,
    pub services: Services,
    /// Addresses of the payloads submitted to the ring, in order.
    pub submitted: Vec<(usize, usize)>,
    /// Addresses of the CPG payloads the ring delivered.
    pub delivered: Vec<(usize, usize)>,
    /// Force flow control on, whatever the ring's queue.
    pub flow_override: Option<bool>,
}

pub struct Cluster {
    pub now: Instant,
    pub nodes: BTreeMap<u32, Node>,
    wire: BTreeMap<(Instant, u64), (u32, u32, Bytes)>,
    next_id: u64,
    latency: Duration,
    cut: BTreeSet<(u32, u32)>,
    pub clients: BTreeMap<ConnId, Client>,
    next_conn: u64,
}

pub fn ring_config(id: u32) -> Config {
    let mut c = Config::new(NodeId(id), 0xc96);
    // Short timers in simulated time: these tests are about order, not seconds.
    c.token = Duration::from_millis(200);
    c.join = Duration::from_millis(30);
    c.merge = Duration::from_millis(50);
    c.token_coefficient = Duration::ZERO;
    c.max_message_len = MAX_MESSAGE;
    c.send_queue_bytes = 4 * MAX_MESSAGE;
    c
}

impl Cluster {
    /// `n` nodes, run until they form one ring and synchronise.
    pub fn new(n: u32) -> Self {
        let mut c = Self {
            now: Instant::ZERO,
            nodes: BTreeMap::new(),
            wire: BTreeMap::new(),
            next_id: 0,
            latency: Duration::from_micros(100),
            cut: BTreeSet::new(),
            clients: BTreeMap::new(),
            next_conn: 1,
        };
        for id in 1..=n {
            c.start(id);
        }
        let all: Vec<u32> = (1..=n).collect();
        c.run_until_synced(&[&all]);
        c
    }

    /// Starts (or restarts) node `id`.
    pub fn start(&mut self, id: u32) {
        let ring = Ring::new(&ring_config(id), self.now, 0).unwrap();
        let mut services = Services::new(NodeId(id));
        let cfg = CpgConfig {
            max_message_len: MAX_MESSAGE,
            ..CpgConfig::default()
        };
        services
            .add_engine(Box::new(Cpg::new(NodeId(id), cfg)))
            .unwrap();
        self.nodes.insert(
            id,
            Node {
                ring,
                services,
                submitted: Vec::new(),
                delivered: Vec::new(),
                flow_override: None,
            },
        );
        self.drain(id);
    }

    /// Node `id` dies: its ring, services and clients are gone.
    pub fn crash(&mut self, id: u32) {
        self.nodes.remove(&id);
        for c in self.clients.values_mut() {
            if c.node == id {
                c.closed = true;
            }
        }
    }

    pub fn cpg(&self, id: u32) -> &Cpg {
        self.nodes[&id]
            .services
            .engine::<Cpg>(service_id::CPG)
            .unwrap()
    }

    pub fn partition(&mut self, groups: &[&[u32]]) {
        self.cut.clear();
        for (i, g) in groups.iter().enumerate() {
            for (j, h) in groups.iter().enumerate() {
                if i != j {
                    for a in g.iter() {
                        for b in h.iter() {
                            self.cut.insert((*a, *b));
                        }
                    }
                }
            }
        }
    }

    pub fn heal(&mut self) {
        self.cut.clear();
    }

    // ---- clients ----

    /// A new CPG connection on `node` for process `pid`, initialized.
    pub fn connect(&mut self, node: u32, pid: u32) -> ConnId {
        let conn = self.connect_raw(node, pid);
        let r = self.call(conn, &Request::Initialize { flags: 0, pid });
        assert_eq!(r.error, services::cpg::wire::CsError::Ok);
        conn
    }

    /// A new CPG connection, not initialized.
    pub fn connect_raw(&mut self, node: u32, pid: u32) -> ConnId {
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        self.clients.insert(
            conn,
            Client {
                node,
                pid,
                ..Client::default()
            },
        );
        let creds = Credentials {
            pid,
            uid: 0,
            gid: 0,
        };
        let n = self.nodes.get_mut(&node).unwrap();
        n.services
            .handle_connect(service_id::CPG, conn, creds)
            .unwrap();
        self.drain(node);
        conn
    }

    /// Sends a request and returns its reply (which comes at once: engines never block).
    pub fn call(&mut self, conn: ConnId, req: &Request) -> Response {
        self.call_raw(conn, req.emit())
    }

    pub fn call_raw(&mut self, conn: ConnId, bytes: Bytes) -> Response {
        let node = self.clients[&conn].node;
        let n = self.nodes.get_mut(&node).unwrap();
        n.services.handle_request(conn, bytes);
        self.drain(node);
        let raw = self.clients.get_mut(&conn).unwrap().replies.pop_front();
        Response::parse(&raw.expect("every request gets a reply")).unwrap()
    }

    /// The client process dies: the node sees its connection close.
    pub fn disconnect(&mut self, conn: ConnId) {
        let node = self.clients[&conn].node;
        self.clients.get_mut(&conn).unwrap().closed = true;
        if let Some(n) = self.nodes.get_mut(&node) {
            n.services.handle_disconnect(conn);
            self.drain(node);
        }
    }

    pub fn take_events(&mut self, conn: ConnId) -> Vec<CpgEvent> {
        core::mem::take(&mut self.clients.get_mut(&conn).unwrap().events)
    }

    // ---- driving ----

    /// Runs node `id`'s loop until nothing moves (events → services → ring, actions →
    /// clients), then puts its frames on the wire.
    pub fn drain(&mut self, id: u32) {
        let Some(node) = self.nodes.get_mut(&id) else {
            return;
        };
        loop {
            let mut moved = false;
            while let Some(ev) = node.ring.poll_event() {
                moved = true;
                if let Event::Deliver(d) = &ev
                    && d.service == service_id::CPG
                {
                    node.delivered
                        .push((d.payload.as_ptr() as usize, d.payload.len()));
                }
                node.services.handle_ring_event(ev);
            }
            let ring = &mut node.ring;
            let submitted = &mut node.submitted;
            let flushed = node.services.flush_multicasts(|service, payload, g| {
                let at = (payload.as_ptr() as usize, payload.len());
                ring.offer(service, payload, g)?;
                submitted.push(at);
                Ok(())
            });
            moved |= flushed.submitted > 0;
            // node/'s rule: flow control above 3/4 of the ring's send queue.
            let high = node.ring.queued_bytes() > 3 * MAX_MESSAGE;
            node.services
                .set_flow_control(node.flow_override.unwrap_or(high));
            while let Some(action) = node.services.poll_action() {
                moved = true;
                match action {
                    Action::Reply { conn, bytes } => {
                        self.clients
                            .get_mut(&conn)
                            .unwrap()
                            .replies
                            .push_back(bytes);
                    }
                    Action::Event { conn, bytes } => {
                        let c = self.clients.get_mut(&conn).unwrap();
                        assert!(!c.closed, "an event for a closed connection");
                        c.events.push(CpgEvent::parse(&bytes).unwrap());
                        c.raw_events.push(bytes);
                    }
                    Action::Close { conn } => {
                        self.clients.get_mut(&conn).unwrap().closed = true;
                        node.services.handle_disconnect(conn);
                    }
                }
            }
            if !moved {
                break;
            }
        }
        let mut out = Vec::new();
        while let Some(t) = node.ring.poll_transmit() {
            out.push(t);
        }
        let peers: Vec<u32> = self.nodes.keys().copied().collect();
        for t in out {
            match t.dest {
                Dest::Multicast => {
                    for p in &peers {
                        self.send(id, *p, t.frame.clone());
                    }
                }
                Dest::Node(to) => self.send(id, to.0, t.frame),
            }
        }
    }

    fn send(&mut self, from: u32, to: u32, frame: Bytes) {
        if from == to || self.cut.contains(&(from, to)) {
            return;
        }
        self.next_id += 1;
        self.wire
            .insert((self.now + self.latency, self.next_id), (to, from, frame));
    }

    fn next_event(&self) -> Option<Instant> {
        let w = self.wire.keys().next().map(|k| k.0);
        let t = self
            .nodes
            .values()
            .filter_map(|n| n.ring.poll_timeout())
            .min();
        match (w, t) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// One datagram or one timer.
    pub fn step(&mut self) -> bool {
        let w = self.wire.keys().next().map(|k| k.0);
        let t = self
            .nodes
            .iter()
            .filter_map(|(id, n)| n.ring.poll_timeout().map(|t| (t, *id)))
            .min();
        match (w, t) {
            (Some(w), Some((t, _))) if w <= t => self.deliver_one(),
            (Some(_), None) => self.deliver_one(),
            (_, Some((t, id))) => {
                self.now = self.now.max(t);
                let now = self.now;
                if let Some(n) = self.nodes.get_mut(&id) {
                    n.ring.handle_timeout(now);
                }
                self.drain(id);
            }
            (None, None) => return false,
        }
        true
    }

    fn deliver_one(&mut self) {
        let Some(((at, _), (to, from, frame))) = self.wire.pop_first() else {
            return;
        };
        self.now = self.now.max(at);
        let now = self.now;
        if let Some(n) = self.nodes.get_mut(&to) {
            n.ring
                .handle_datagram(now, PeerAddr::Node(NodeId(from)), &frame);
            self.drain(to);
        }
    }

    /// Runs `d` of simulated time.
    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        while self.next_event().is_some_and(|t| t <= end) {
            self.step();
        }
        self.now = end;
    }

    /// Runs until every group of nodes is one synchronised configuration with exactly its
    /// members (at most 20 s of simulated time), then a little more so the messages sent at
    /// activation are delivered.
    pub fn run_until_synced(&mut self, groups: &[&[u32]]) {
        let deadline = self.now + Duration::from_secs(20);
        while !self.synced(groups) {
            assert!(
                self.now < deadline,
                "no sync within 20 s: {}",
                self.describe()
            );
            if !self.step() {
                break;
            }
        }
        assert!(self.synced(groups), "{}", self.describe());
        self.run_for(Duration::from_millis(300));
    }

    fn synced(&self, groups: &[&[u32]]) -> bool {
        groups.iter().all(|g| {
            let want: Vec<NodeId> = g.iter().map(|i| NodeId(*i)).collect();
            let mut rings = BTreeSet::new();
            g.iter().all(|id| {
                let Some(n) = self.nodes.get(id) else {
                    return false;
                };
                let cpg = n.services.engine::<Cpg>(service_id::CPG).unwrap();
                rings.insert(n.services.ring_id());
                n.services.is_synchronized()
                    && cpg.totem_configuration().map(|(_, m)| m.to_vec()) == Some(want.clone())
            }) && rings.len() == 1
        })
    }

    pub fn describe(&self) -> String {
        let mut s = String::new();
        for (id, n) in &self.nodes {
            s += &format!(
                "\n node {id}: {:?} ring {:?} members {:?} synced {} ring_id {:?}",
                n.ring.state(),
                n.ring.ring_id(),
                n.ring.members(),
                n.services.is_synchronized(),
                n.services.ring_id()
            );
        }
        s
    }
}
