//! An in-process fake totemd for the client tests: an `ipc_shm::Server` in the test process
//! whose connections go, after the session hello, to a `services::Services` with the CPG
//! engine, driven by one real `totem_ring::Ring` (a one-node ring forms by itself). One
//! thread runs the driver loop node/ runs: ring timers → ring events to the services →
//! their multicasts to the ring → replies and events to the clients; then `poll(2)` on the
//! listener, every connection's doorbell and socket, until the ring's next deadline.
//!
//! Knobs a test may turn: flow control forced on or off, a distinct pid per connection
//! (so one test process can hold several members of one group), a refused hello, and
//! `stop()` (the daemon goes away: clients see `Disconnected`).
#![allow(dead_code, unreachable_pub)]

use alloc::collections::{BTreeMap, VecDeque};
use alloc::sync::Arc;
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use core::time::Duration as StdDuration;
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use bytes::Bytes;
use ipc_shm::{AccessPolicy, Connection, RingSizes, Server, ServerConfig};
use services::cpg::wire::{CsError, is_mcast_request};
use services::cpg::{Cpg, CpgConfig};
use services::session::{Hello, HelloReply};
use services::{Action, ConnId, Credentials, Services, service_id};
use totem_proto::NodeId;
use totem_proto::time::{Duration, Instant};
use totem_ring::{Config, Ring};

/// The fake's node id.
pub const NODE_ID: u32 = 1;

/// How the fake behaves.
#[derive(Debug, Clone)]
pub struct FakeConfig {
    /// The ring's (and so CPG's) largest message; room for a 1 MiB CPG payload by default.
    pub max_message_len: usize,
    /// Give each connection its own pid (1 000 000 + connection id) instead of the peer's.
    pub pid_per_connection: bool,
    /// Answer every hello with this error.
    pub refuse_hello: Option<CsError>,
    /// Hold a multicast that arrives under flow control until it lifts, as totemd does
    /// (default); `false` answers TRY_AGAIN, as corosync does.
    pub hold_mcasts: bool,
}

impl Default for FakeConfig {
    fn default() -> Self {
        Self {
            max_message_len: (2 << 20) + 4096,
            pid_per_connection: false,
            refuse_hello: None,
            hold_mcasts: true,
        }
    }
}

/// Flow control: follow the ring's queue, or forced.
const FLOW_AUTO: u8 = 0;
const FLOW_ON: u8 = 1;
const FLOW_OFF: u8 = 2;

/// A running fake daemon; dropping it stops it.
#[derive(Debug)]
pub struct FakeDaemon {
    dir: PathBuf,
    path: PathBuf,
    stop: Arc<AtomicBool>,
    flow: Arc<AtomicU8>,
    thread: Option<JoinHandle<()>>,
}

static NEXT: AtomicU64 = AtomicU64::new(0);

impl FakeDaemon {
    pub fn start() -> Self {
        Self::start_with(FakeConfig::default())
    }

    /// Starts the daemon and waits until its ring is formed and synchronised.
    pub fn start_with(config: FakeConfig) -> Self {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("totem-client-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("totemd.sock");
        let ipc_max = config.max_message_len + (64 << 10);
        let ring_size = (ipc_max + 4096).next_power_of_two();
        let server = Server::bind(
            &path,
            ServerConfig {
                name: "fake totemd".into(),
                rings: RingSizes {
                    request: ring_size,
                    response: ring_size,
                    event: (8 << 20).max(2 * ring_size),
                },
                max_message: ipc_max,
                ..ServerConfig::default()
            },
            AccessPolicy::for_current_process(),
        )
        .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flow = Arc::new(AtomicU8::new(FLOW_AUTO));
        let ready = Arc::new(AtomicBool::new(false));
        let thread = {
            let (stop, flow, ready) = (stop.clone(), flow.clone(), ready.clone());
            std::thread::Builder::new()
                .name("fake-totemd".into())
                .spawn(move || Driver::new(server, config, ready).run(&stop, &flow))
                .unwrap()
        };
        let t = std::time::Instant::now();
        while !ready.load(Ordering::Acquire) {
            assert!(
                t.elapsed() < StdDuration::from_secs(20),
                "fake ring did not form"
            );
            std::thread::sleep(StdDuration::from_millis(5));
        }
        Self {
            dir,
            path,
            stop,
            flow,
            thread: Some(thread),
        }
    }

    pub fn socket(&self) -> &Path {
        &self.path
    }

    /// Forces flow control on (`Some(true)`), off, or back to the ring's queue (`None`).
    pub fn set_flow_control(&self, forced: Option<bool>) {
        let v = match forced {
            None => FLOW_AUTO,
            Some(true) => FLOW_ON,
            Some(false) => FLOW_OFF,
        };
        self.flow.store(v, Ordering::Release);
    }

    /// Stops the daemon: its connections close, its socket goes.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

impl Drop for FakeDaemon {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

struct Conn {
    c: Connection,
    /// The session hello was accepted: requests go to CPG.
    session: bool,
    /// Events the client's ring could not take yet.
    events: VecDeque<Bytes>,
    /// Close after the queued events (finalize, refused hello).
    closing: bool,
    /// A multicast taken under flow control, handed over when it lifts (totemd's rule).
    parked: Option<Vec<u8>>,
}

struct Driver {
    server: Server,
    config: FakeConfig,
    ready: Arc<AtomicBool>,
    ring: Ring,
    services: Services,
    conns: BTreeMap<u64, Conn>,
    epoch: std::time::Instant,
    send_queue: usize,
}

fn ring_config(max_message_len: usize) -> Config {
    let mut c = Config::new(NodeId(NODE_ID), 0xfa4e);
    // Short timers: a singleton ring forms in well under a second.
    c.token = Duration::from_millis(200);
    c.join = Duration::from_millis(30);
    c.merge = Duration::from_millis(50);
    c.token_coefficient = Duration::ZERO;
    c.max_message_len = max_message_len;
    c.send_queue_bytes = 4 * max_message_len;
    c
}

impl Driver {
    fn new(server: Server, config: FakeConfig, ready: Arc<AtomicBool>) -> Self {
        let epoch = std::time::Instant::now();
        let rc = ring_config(config.max_message_len);
        let ring = Ring::new(&rc, Instant::ZERO, 0).unwrap();
        let mut services = Services::new(NodeId(NODE_ID));
        services
            .add_engine(Box::new(Cpg::new(
                NodeId(NODE_ID),
                CpgConfig {
                    max_message_len: config.max_message_len,
                    ..CpgConfig::default()
                },
            )))
            .unwrap();
        Self {
            server,
            config,
            ready,
            ring,
            services,
            conns: BTreeMap::new(),
            epoch,
            send_queue: rc.send_queue_bytes,
        }
    }

    fn now(&self) -> Instant {
        Instant::from_micros(self.epoch.elapsed().as_micros() as u64)
    }

    fn run(mut self, stop: &AtomicBool, flow: &AtomicU8) {
        let mut buf = Vec::new();
        while !stop.load(Ordering::Acquire) {
            let now = self.now();
            if self.ring.poll_timeout().is_some_and(|t| t <= now) {
                self.ring.handle_timeout(now);
            }
            self.drain(flow);
            // Held multicasts go on once flow control lifts.
            if !self.services.busy() {
                let held: Vec<u64> = self
                    .conns
                    .iter()
                    .filter(|(_, c)| c.parked.is_some())
                    .map(|(id, _)| *id)
                    .collect();
                for id in held {
                    self.requests(id, &mut buf);
                    self.drain(flow);
                }
            }
            if self.services.is_synchronized() {
                self.ready.store(true, Ordering::Release);
            }
            // Sleep until the ring's deadline, a client, or 20 ms (to see `stop`).
            let mut wait = self.ring.poll_timeout().map_or(20_000, |t| {
                t.total_micros()
                    .saturating_sub(self.now().total_micros())
                    .min(20_000)
            });
            if self.conns.values().any(|c| c.parked.is_some()) {
                wait = wait.min(1_000);
            }
            let ids: Vec<u64> = self.conns.keys().copied().collect();
            let mut fds = vec![libc::pollfd {
                fd: self.server.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            }];
            for id in &ids {
                let c = &self.conns[id].c;
                for fd in [c.doorbell_fd(), c.socket_fd()] {
                    fds.push(libc::pollfd {
                        fd: fd.as_raw_fd(),
                        events: libc::POLLIN,
                        revents: 0,
                    });
                }
            }
            // SAFETY: `fds` is a valid array of pollfd for the duration of the call.
            unsafe {
                libc::poll(
                    fds.as_mut_ptr(),
                    fds.len() as libc::nfds_t,
                    wait.div_ceil(1000) as i32,
                )
            };
            if fds[0].revents != 0 {
                loop {
                    match self.server.accept() {
                        Ok(Some(c)) => {
                            self.conns.insert(
                                c.id(),
                                Conn {
                                    c,
                                    session: false,
                                    events: VecDeque::new(),
                                    closing: false,
                                    parked: None,
                                },
                            );
                        }
                        Ok(None) => break,
                        Err(_) => {}
                    }
                }
            }
            for (i, id) in ids.iter().enumerate() {
                let (door, sock) = (fds[1 + 2 * i].revents, fds[2 + 2 * i].revents);
                if sock != 0
                    && self
                        .conns
                        .get_mut(id)
                        .is_some_and(|c| c.c.check_peer().is_err())
                {
                    self.drop_conn(*id);
                    continue;
                }
                if door != 0 {
                    self.conns[id].c.clear_doorbell();
                    self.requests(*id, &mut buf);
                }
                self.flush_events(*id);
            }
        }
        // Dropping the connections (and the server) tells every client.
    }

    fn requests(&mut self, id: u64, buf: &mut Vec<u8>) {
        loop {
            let busy = self.services.busy();
            let Some(conn) = self.conns.get_mut(&id) else {
                return;
            };
            if let Some(held) = conn.parked.take() {
                if busy {
                    conn.parked = Some(held);
                    return;
                }
                *buf = held;
            } else {
                match conn.c.try_recv_request_into(buf) {
                    Ok(true) => {}
                    Ok(false) => return,
                    Err(_) => {
                        self.drop_conn(id);
                        return;
                    }
                }
                // A CPG multicast (version, code) under flow control waits.
                if conn.session && self.config.hold_mcasts && busy && is_mcast_request(buf) {
                    conn.parked = Some(core::mem::take(buf));
                    return;
                }
            }
            if conn.session {
                // Hand the buffer over: unique, so CPG turns it into the message in place.
                let bytes = Bytes::from(core::mem::take(buf));
                self.services.handle_request(ConnId(id), bytes);
                // Its reply goes out before the next request is taken, as in totemd:
                // ipc-shm hands a request out only when a response fits.
                self.actions();
                continue;
            }
            let error = match (Hello::decode(buf), self.config.refuse_hello) {
                (_, Some(e)) => e,
                (Ok(h), None) if h.service == service_id::CPG => CsError::Ok,
                (Ok(_), None) => CsError::NotExist,
                (Err(_), None) => CsError::MessageError,
            };
            let _ = conn.c.send_response(&HelloReply { error }.encode());
            if error == CsError::Ok {
                conn.session = true;
                let peer = conn.c.peer();
                let pid = if self.config.pid_per_connection {
                    1_000_000 + id as u32
                } else {
                    peer.pid as u32
                };
                let creds = Credentials {
                    pid,
                    uid: peer.uid,
                    gid: peer.gid,
                };
                self.services
                    .handle_connect(service_id::CPG, ConnId(id), creds)
                    .unwrap();
            } else {
                conn.closing = true;
            }
        }
    }

    /// node/'s loop body: ring events → services → ring, actions → clients, until nothing
    /// moves; the ring's frames go nowhere (a singleton ring sends its token to itself).
    fn drain(&mut self, flow: &AtomicU8) {
        loop {
            let mut moved = false;
            while let Some(ev) = self.ring.poll_event() {
                moved = true;
                self.services.handle_ring_event(ev);
            }
            let ring = &mut self.ring;
            let f = self
                .services
                .flush_multicasts(|service, payload, g| ring.offer(service, payload, g));
            moved |= f.submitted > 0;
            let on = match flow.load(Ordering::Acquire) {
                FLOW_ON => true,
                FLOW_OFF => false,
                _ => self.ring.queued_bytes() > self.send_queue * 3 / 4,
            };
            self.services.set_flow_control(on);
            moved |= self.actions();
            if !moved {
                break;
            }
        }
        while self.ring.poll_transmit().is_some() {}
        let ids: Vec<u64> = self.conns.keys().copied().collect();
        for id in ids {
            self.flush_events(id);
        }
    }

    /// The services' replies, events and closes to the connections; whether there were any.
    fn actions(&mut self) -> bool {
        let mut any = false;
        while let Some(a) = self.services.poll_action() {
            any = true;
            match a {
                Action::Reply { conn, bytes } => {
                    if let Some(c) = self.conns.get_mut(&conn.0) {
                        c.c.send_response(&bytes)
                            .expect("one response per request always fits");
                    }
                }
                Action::Event { conn, bytes } => {
                    if let Some(c) = self.conns.get_mut(&conn.0) {
                        c.events.push_back(bytes);
                    }
                }
                Action::Close { conn } => {
                    if let Some(c) = self.conns.get_mut(&conn.0) {
                        c.closing = true;
                    }
                }
            }
        }
        any
    }

    fn flush_events(&mut self, id: u64) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        while let Some(ev) = c.events.front() {
            match c.c.send_event(ev) {
                Ok(()) => {
                    c.events.pop_front();
                }
                Err(ipc_shm::SendError::Full) => return,
                Err(_) => {
                    c.events.clear();
                    break;
                }
            }
        }
        if c.closing {
            self.drop_conn(id);
        }
    }

    fn drop_conn(&mut self, id: u64) {
        if let Some(c) = self.conns.remove(&id)
            && c.session
        {
            self.services.handle_disconnect(ConnId(id));
        }
    }
}

/// Polls `fd` for readability for up to `ms` milliseconds; whether it became readable.
pub fn readable(fd: impl AsFd, ms: i32) -> bool {
    let mut p = libc::pollfd {
        fd: fd.as_fd().as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd for the duration of the call.
    unsafe { libc::poll(&mut p, 1, ms) > 0 }
}
