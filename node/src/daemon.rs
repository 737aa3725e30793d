//! The daemon's driver loop: one tokio task around the sans-IO ring and the sans-IO
//! services (STYLE point 11's five lines — read `now`, feed one input, drain the outputs,
//! sleep until the next deadline, datagram or client).
//!
//! Inputs: datagrams (the transport's socket, registered with tokio's `AsyncFd`), the
//! ring's deadline, IPC connections and requests (the ipc-shm server on
//! `<state_dir>/totemd.sock`: see `ipc.rs`), SIGTERM/SIGINT (leave cleanly) and SIGHUP
//! (reload), and a one-second tick (rates, slow IPC readers). Outputs: frames (sent in
//! batches; what the socket will not take waits for writability, nothing is dropped here),
//! replies and events to IPC clients.
//!
//! The drain, after every input: ring events in order — `RingSeqUsed` persisted *before*
//! anything else (no frame of that ring goes out before it is durable), configurations
//! logged (one line each), then every event handed to [`Services`]; then the services'
//! multicasts submitted to the ring, flow control set from the ring's queue, and the
//! services' actions carried out (replies, events, closes); connections that died meanwhile
//! are reported to the services at once (CPG: PROCDOWN); last, the ring's frames go out.

use alloc::collections::VecDeque;
use core::fmt::Write as _;
use core::future::poll_fn;
use std::io;
use std::path::PathBuf;

use bytes::Bytes;
use ipc_shm::{AcceptError, AsyncConnection, ConnError};
use objdb::{Notice, TrackFlags, TrackId};
use services::cmap::{Cmap, CmapConfig};
use services::cpg::wire::CsError;
use services::cpg::{Cpg, CpgConfig};
use services::session::{CONTROL, Hello, HelloReply};
use services::{Action, ConnId, ConnectError, Outbox, Services, service_id};
use tokio::io::unix::AsyncFd;
use tokio::signal::unix::{SignalKind, signal};
use totem_proto::{MessageType, NodeId};
use totem_ring::{ConfigurationKind, Event, Ring, Transmit};
use totem_transport::{RecvMeta, TransportError};
use tracing::{debug, error, info, warn};

use crate::clock::Clock;
use crate::control;
use crate::ipc::{self, Ipc, Role};
use crate::link::Link;
use crate::persist;

/// Up to this many ring events are handed to the services before the ring's frames are
/// sent (latency); more go after (the token must not wait behind a visit's deliveries).
const FEW_EVENTS: usize = 8;
/// ... and at most this many bytes delivered.
const FEW_BYTES: usize = 4096;
/// Datagrams taken from the socket per wake-up.
const RECV_BATCH: usize = 32;
/// Bytes per receive buffer: the largest UDP datagram.
const RECV_BUF: usize = 65_536;
/// Retransmissions per second from which the log reports a retransmit storm.
const RETRANSMIT_STORM: u64 = 200;

/// Counters the daemon keeps besides the ring's.
#[derive(Debug, Default, Clone)]
pub struct DaemonStats {
    /// Frames handed to the transport.
    pub tx_frames: u64,
    /// Datagrams read from the transport.
    pub rx_datagrams: u64,
    /// Datagrams that arrived truncated (larger than the receive buffer).
    pub rx_truncated: u64,
    /// Times the socket refused a frame for now (it was sent later).
    pub tx_would_block: u64,
    /// Frames the transport rejected for good (too large, unknown node, I/O error).
    pub tx_errors: u64,
    /// Client multicasts held back under flow control (taken later, never refused).
    pub mcasts_parked: u64,
}

/// What woke the loop.
enum Wake {
    /// Leave the ring and exit (SIGTERM, SIGINT).
    Stop,
    /// SIGHUP.
    Reload,
    /// The transport's socket (readable, writable).
    Socket { readable: bool, writable: bool },
    /// The ring's (or the link's) deadline.
    Deadline,
    /// A new IPC connection, or a failed attempt.
    Accepted(Result<Box<AsyncConnection>, AcceptError>),
    /// IPC connections to serve.
    Clients(Vec<(u64, Result<(), ConnError>)>),
    /// The pause after a failed accept is over.
    AcceptAgain,
    /// The one-second tick.
    Tick,
}

/// What the daemon runs with, besides the ring and the transport.
#[derive(Debug)]
pub struct Options {
    /// This node.
    pub node: NodeId,
    /// Transport name for `status`.
    pub transport_name: String,
    /// File holding the last ring seq.
    pub ring_seq_path: PathBuf,
    /// The IPC socket to create (`<state_dir>/totemd.sock`).
    pub socket: PathBuf,
    /// The configuration as loaded, for `reload` (SIGHUP) to compare against.
    pub config: crate::config::DaemonConfig,
}

/// The running daemon.
pub struct Daemon<T: Link> {
    ring: Ring,
    transport: Option<T>,
    clock: Clock,
    opts: Options,
    pending: VecDeque<Transmit>,
    /// The ring's events between taking them and handing them to the services (kept for
    /// its allocation).
    events: Vec<Event>,
    stats: DaemonStats,
    /// (time, token visits) one second apart, for the rotation rate.
    token_rate: (totem_proto::time::Instant, u64, f64),
    last_members: Vec<NodeId>,
    /// Retransmissions counted at the last one-second tick.
    last_retx: u64,
    extra_status: Box<dyn Fn() -> String + Send>,
    services: Services,
    ipc: Ipc,
    /// Ring queue bytes above which the services see flow control.
    flow_threshold: usize,
    /// A `leave` request was answered: leave the ring and exit.
    leaving: bool,
    /// The daemon's own cmap tracker of `totem.*`: writes to the live keys reconfigure
    /// the ring (`cmap.rs`).
    cmap_totem: Option<TrackId>,
}

impl<T: Link> core::fmt::Debug for Daemon<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Daemon")
            .field("node", &self.opts.node)
            .field("state", &self.ring.state())
            .finish_non_exhaustive()
    }
}

impl<T: Link> Daemon<T> {
    /// A daemon around `ring` and `transport`, with the CPG service, listening on
    /// `opts.socket`. Must be called inside a tokio runtime.
    ///
    /// # Errors
    /// The IPC socket cannot be created (another daemon owns it, a bad path).
    pub fn new(ring: Ring, transport: T, clock: Clock, opts: Options) -> io::Result<Self> {
        let node = opts.node;
        let max_message_len = ring.config().max_message_len;
        let mut services = Services::new(node);
        let cpg = Cpg::new(
            node,
            CpgConfig {
                max_message_len,
                ..CpgConfig::default()
            },
        );
        services
            .add_engine(Box::new(cpg))
            .map_err(|e| io::Error::other(e.to_string()))?;
        // cmap: the configuration file and the ring's effective values, and a tracker of
        // `totem.*` for the live writes. No client is connected yet: nothing to notify.
        let mut cmap = Cmap::new(CmapConfig::default());
        cmap.set_policy(Box::new(crate::cmap::NodePolicy {
            base: ring_base(&opts.config, &ring),
        }));
        let (warnings, cmap_totem) = cmap.update(&mut Outbox::new(service_id::CMAP), |db| {
            let w = crate::cmap::load(db, &opts.config, node, ring.config());
            (w, db.track("totem.", TrackFlags::ALL_PREFIX).ok())
        });
        for w in warnings {
            warn!("{w}");
        }
        services
            .add_engine(Box::new(cmap))
            .map_err(|e| io::Error::other(e.to_string()))?;
        let ipc = Ipc::bind(
            &opts.socket,
            ipc::server_config(max_message_len),
            ipc::policy(&opts.config.uidgid),
        )?;
        // Flow control (CPG answers mcast with TRY_AGAIN) once half the ring's send queue
        // is taken: the other half absorbs what clients already sent.
        let flow_threshold = ring.config().send_queue_bytes / 2;
        Ok(Self {
            ring,
            transport: Some(transport),
            clock,
            opts,
            pending: VecDeque::new(),
            events: Vec::new(),
            stats: DaemonStats::default(),
            token_rate: (totem_proto::time::Instant::ZERO, 0, 0.0),
            last_members: Vec::new(),
            last_retx: 0,
            extra_status: Box::new(String::new),
            services,
            ipc,
            flow_threshold,
            leaving: false,
            cmap_totem,
        })
    }

    /// Adds transport-specific lines to `status` (socket buffer sizes, counters).
    pub fn set_extra_status(&mut self, f: impl Fn() -> String + Send + 'static) {
        self.extra_status = Box::new(f);
    }

    /// Replaces the limits on IPC clients that do not read their events.
    pub fn set_ipc_limits(&mut self, limits: ipc::Limits) {
        self.ipc.set_limits(limits);
    }

    /// Runs until SIGTERM/SIGINT or a `leave` request, then leaves the ring cleanly.
    ///
    /// # Errors
    /// The ring seq cannot be persisted, or the transport fails for good.
    pub async fn run(mut self) -> io::Result<()> {
        let mut sigterm = signal(SignalKind::terminate())?;
        let mut sigint = signal(SignalKind::interrupt())?;
        let mut sighup = signal(SignalKind::hangup())?;
        let mut bufs = vec![vec![0u8; RECV_BUF]; RECV_BATCH];
        let mut tick = tokio::time::interval(core::time::Duration::from_secs(1));
        let transport = self
            .transport
            .take()
            .ok_or_else(|| io::Error::other("daemon already ran"))?;
        // `AsyncFd::new` is deprecated for lacking I/O safety: the fd must stay open while
        // registered. It does here — the AsyncFd owns the transport that owns the socket.
        #[allow(deprecated)]
        let mut io = AsyncFd::new(transport)?;
        // After a failed accept (EMFILE, ...) the listener stays readable: pause accepting
        // a moment instead of spinning on it.
        let mut accept_after: Option<tokio::time::Instant> = None;
        info!(
            "node {} started, transport {}, IPC on {}",
            self.opts.node,
            self.opts.transport_name,
            self.opts.socket.display()
        );
        while !self.leaving {
            self.drain(io.get_mut())?;
            let deadline = match (self.ring.poll_timeout(), io.get_ref().poll_at()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
            .map(|t| self.clock.to_tokio(t));
            let want_write = !self.pending.is_empty();
            if accept_after.is_some_and(|t| tokio::time::Instant::now() >= t) {
                accept_after = None;
            }
            let (server, mut clients) = self.ipc.waiting(self.services.busy());
            // Readiness is cleared as soon as it is seen, and the socket is then read (or
            // written) until it would block: data arriving meanwhile raises a new event.
            // Client readiness likewise: a connection's doorbell is cleared before its
            // requests are read (ipc-shm's rule), and one stopped at BATCH is served again
            // on the next turn without waiting. Not `biased`: under load the ring's socket
            // and the clients are both ready on most turns, and neither may starve the other
            // (tokio starts at a random branch).
            let wake = tokio::select! {
                _ = sigterm.recv() => Wake::Stop,
                _ = sigint.recv() => Wake::Stop,
                _ = sighup.recv() => Wake::Reload,
                ready = io.readable() => {
                    ready?.clear_ready();
                    Wake::Socket { readable: true, writable: false }
                }
                ready = io.writable(), if want_write => {
                    ready?.clear_ready();
                    Wake::Socket { readable: false, writable: true }
                }
                () = sleep_until(deadline) => Wake::Deadline,
                ready = poll_fn(|cx| clients.poll_ready(cx)) => Wake::Clients(ready),
                conn = server.accept(), if accept_after.is_none() => Wake::Accepted(conn.map(Box::new)),
                () = sleep_until(accept_after) => Wake::AcceptAgain,
                _ = tick.tick() => Wake::Tick,
            };
            match wake {
                Wake::Stop => break,
                Wake::Reload => {
                    let report = self.reload();
                    info!("SIGHUP: {}", report.trim_end().replace('\n', "; "));
                }
                Wake::Socket { readable, writable } => {
                    if readable {
                        io.get_mut().on_readable();
                        self.receive(io.get_mut(), &mut bufs)?;
                    }
                    if writable {
                        self.flush(io.get_mut());
                    }
                }
                Wake::Deadline => {
                    let now = self.clock.now();
                    io.get_mut().set_now(now);
                    self.ring.handle_timeout(now);
                    // Held-back datagrams (fault injection) may be due now.
                    if io.get_ref().poll_at().is_some() {
                        self.receive(io.get_mut(), &mut bufs)?;
                    }
                }
                Wake::Accepted(Ok(conn)) => self.ipc.add(*conn),
                Wake::Accepted(Err(AcceptError::Refused { .. })) => self.ipc.stats.refused += 1,
                Wake::Accepted(Err(AcceptError::Os(e)))
                    if [libc::EMFILE, libc::ENFILE, libc::ENOBUFS, libc::ENOMEM]
                        .contains(&e.errno) =>
                {
                    warn!("IPC accept failed: {e}; accepting again in 100 ms");
                    accept_after =
                        Some(tokio::time::Instant::now() + core::time::Duration::from_millis(100));
                }
                // The peer went away before its welcome, and the like: that attempt only.
                Wake::Accepted(Err(e)) => debug!("IPC accept failed: {e}"),
                Wake::Clients(clients) => {
                    for (id, ready) in clients {
                        self.serve(id, ready);
                    }
                }
                Wake::AcceptAgain => accept_after = None,
                Wake::Tick => {
                    self.sample_rate();
                    self.publish_runtime();
                    self.ipc.check_stalls(self.clock.now());
                    self.settle();
                }
            }
        }
        info!("node {} leaving the ring", self.opts.node);
        self.ring.leave(self.clock.now());
        self.drain(io.get_mut())?;
        // Give the leave a moment to get out if the socket was busy.
        for _ in 0..50 {
            if self.pending.is_empty() {
                break;
            }
            tokio::time::sleep(core::time::Duration::from_millis(2)).await;
            self.flush(io.get_mut());
        }
        // Dropping the IPC server closes every connection (clients see Disconnected) and
        // unlinks the socket file.
        Ok(())
    }

    /// Reads every datagram waiting (in batches) and feeds them to the ring, tokens last:
    /// messages already in the socket must be seen before the token that would otherwise
    /// request them again (corosync `totemnet_recv_flush`). Returns how many were read.
    fn receive(&mut self, t: &mut T, bufs: &mut [Vec<u8>]) -> io::Result<usize> {
        let mut total = 0;
        loop {
            let mut metas = [RecvMeta::default(); RECV_BATCH];
            let (n, err) = {
                let mut slices: Vec<&mut [u8]> = bufs.iter_mut().map(Vec::as_mut_slice).collect();
                t.recv_batch(&mut slices, &mut metas)
            };
            if let Some(e) = err {
                warn!("receive error: {e}");
            }
            let now = self.clock.now();
            t.set_now(now);
            let is_token = |b: &[u8]| {
                b.get(3)
                    .is_some_and(|t| MessageType::from(*t) == MessageType::OrfToken)
            };
            for pass in [false, true] {
                for (buf, meta) in bufs.iter().zip(metas.iter()).take(n) {
                    let frame = &buf[..meta.len];
                    if is_token(frame) == pass {
                        if meta.truncated {
                            self.stats.rx_truncated += 1;
                        }
                        self.ring.handle_datagram(now, meta.from, frame);
                    }
                }
            }
            self.stats.rx_datagrams += n as u64;
            total += n;
            // Outputs go out between batches so a burst cannot hold frames back.
            self.drain(t)?;
            if n < RECV_BATCH || err.is_some() {
                return Ok(total);
            }
        }
    }

    /// Takes the ring's events (persisting a new ring seq at once), sends the ring's frames,
    /// then hands the events to the services (log lines, deliveries to the clients),
    /// settles them, and sends what they multicast.
    ///
    /// On a busy ring the frames go out before the deliveries are worked off: the token
    /// would otherwise wait at every node behind the delivery of the visit's messages to
    /// the clients (and behind the clients themselves, when a woken client takes the
    /// core), which stretches every rotation. A handful of small events go first instead.
    fn drain(&mut self, t: &mut T) -> io::Result<()> {
        let mut events = core::mem::take(&mut self.events);
        while let Some(ev) = self.ring.poll_event() {
            if let Event::RingSeqUsed(seq) = &ev {
                // Durable before any frame of that ring goes out.
                persist::store_ring_seq(&self.opts.ring_seq_path, *seq).map_err(|e| {
                    error!(
                        "cannot persist ring seq {seq} to {}: {e}",
                        self.opts.ring_seq_path.display()
                    );
                    e
                })?;
            }
            events.push(ev);
        }
        // A few events (a quiet ring) are handed over first: the client's delivery then
        // does not wait behind the send system calls, which on a veth path run the
        // receivers' network stack too.
        let few = events.len() <= FEW_EVENTS
            && events
                .iter()
                .map(|e| match e {
                    Event::Deliver(d) => d.payload.len(),
                    _ => 0,
                })
                .sum::<usize>()
                <= FEW_BYTES;
        if !few {
            self.send_ring_output(t);
        }
        for ev in events.drain(..) {
            match &ev {
                Event::Configuration(c) if c.kind == ConfigurationKind::Regular => {
                    // Joined and left against what this daemon saw last (at the first ring
                    // the node itself has joined), ring ids in decimal as `status` prints.
                    let joined: Vec<NodeId> = c
                        .members
                        .iter()
                        .filter(|n| !self.last_members.contains(n))
                        .copied()
                        .collect();
                    let left: Vec<NodeId> = self
                        .last_members
                        .iter()
                        .filter(|n| !c.members.contains(n))
                        .copied()
                        .collect();
                    info!(
                        "A new membership (ring {}.{}) was formed. Members joined: {}, left: {}",
                        c.ring_id.rep,
                        c.ring_id.seq,
                        list(&joined),
                        list(&left)
                    );
                    self.last_members.clone_from(&c.members);
                    let members = c.members.clone();
                    self.publish_members(&members);
                }
                Event::Configuration(c) => debug!(
                    "transitional configuration {}: {}",
                    c.ring_id,
                    list(&c.members)
                ),
                Event::RingSeqUsed(_) | Event::Deliver(_) => {}
            }
            // Services logs "Completed service synchronization" itself.
            self.services.handle_ring_event(ev);
        }
        self.events = events;
        self.settle();
        // Everything this pass had for the clients is in their rings: wake each once
        // (before the send when the pass was small, after it when it was large).
        if few {
            self.ipc.flush_wakes();
        }
        self.send_ring_output(t);
        self.ipc.flush_wakes();
        Ok(())
    }

    /// Moves the ring's frames to the pending queue and sends what the socket takes.
    fn send_ring_output(&mut self, t: &mut T) {
        while let Some(tx) = self.ring.poll_transmit() {
            self.pending.push_back(tx);
        }
        self.flush(t);
    }

    /// After any input to the services: their multicasts to the ring, flow control from
    /// the ring's queue, their actions to the clients, and every connection that died
    /// meanwhile to the services (which may produce more of all three).
    fn settle(&mut self) {
        self.apply_cmap_totem();
        loop {
            let ring = &mut self.ring;
            self.services
                .flush_multicasts(|service, payload, g| ring.offer(service, payload, g));
            self.services
                .set_flow_control(self.ring.queued_bytes() > self.flow_threshold);
            // Read the clock once, and only for events (a pass of replies needs none).
            let mut now = None;
            while let Some(action) = self.services.poll_action() {
                match action {
                    Action::Reply { conn, bytes } => self.ipc.reply(conn.0, bytes),
                    Action::Event { conn, bytes } => {
                        let at = *now.get_or_insert_with(|| self.clock.now());
                        self.ipc.event(conn.0, bytes, at);
                    }
                    // Reported to the services below, through take_dead.
                    Action::Close { conn } => {
                        self.ipc.drop_session(conn.0);
                    }
                }
            }
            let dead = self.ipc.take_dead();
            if dead.is_empty() {
                return;
            }
            for (id, role) in dead {
                if let Role::Service(_) = role {
                    self.services.handle_disconnect(ConnId(id));
                }
            }
        }
    }

    /// Serves IPC connection `id`: its doorbell rang (or it failed).
    fn serve(&mut self, id: u64, ready: Result<(), ConnError>) {
        if let Err(e) = ready {
            // Gone: its services hear of it now. ipc-shm logs every connection's end at
            // info; totemd lowers that to debug (`logging.rs`: status polls would flood
            // the log) and says it here for service clients only.
            if let Some(s) = self.ipc.session(id)
                && let Role::Service(service) = s.role
            {
                let c = s.credentials();
                info!(
                    "ipc: conn {id} ({}:{} pid {}) of service {} closed: {e}",
                    c.uid, c.gid, c.pid, service.0
                );
            }
            self.ipc.drop_session(id);
            self.settle();
            return;
        }
        // The client may have freed room for replies and events that waited.
        self.ipc.resume(id, self.clock.now());
        for _ in 0..ipc::BATCH {
            let parked = self.ipc.session(id).and_then(|s| s.parked.take());
            let Some(request) = parked.or_else(|| self.ipc.recv(id)) else {
                if let Some(s) = self.ipc.session(id) {
                    s.more = false;
                }
                self.settle();
                return;
            };
            let Some(role) = self.ipc.session(id).map(|s| s.role) else {
                break;
            };
            match role {
                Role::Hello => self.hello(id, &request),
                // Under flow control a multicast waits here instead of failing with
                // TRY_AGAIN (corosync's answer): a waiting call returns once it was taken,
                // and a client with several queued keeps their order.
                Role::Service(service)
                    if service == service_id::CPG
                        && services::cpg::wire::is_mcast_request(&request)
                        && self.services.busy() =>
                {
                    if let Some(s) = self.ipc.session(id) {
                        s.parked = Some(request);
                        s.more = false;
                    }
                    self.stats.mcasts_parked += 1;
                    self.settle();
                    return;
                }
                Role::Service(_) => self
                    .services
                    .handle_request(ConnId(id), Bytes::from(request)),
                Role::Control => {
                    let answer = self.control(id, &request);
                    self.ipc.reply(id, Bytes::from(answer));
                }
            }
            // The reply goes out before the next request is taken (ipc-shm hands out a
            // request only when its response fits).
            self.settle();
        }
        if let Some(s) = self.ipc.session(id) {
            s.more = true;
        }
    }

    /// A connection's first request: the session hello.
    fn hello(&mut self, id: u64, request: &[u8]) {
        let Some(session) = self.ipc.session(id) else {
            return;
        };
        let (creds, permission) = (session.credentials(), session.permission());
        let answer = |error| Bytes::copy_from_slice(&HelloReply { error }.encode());
        let service = match Hello::decode(request) {
            Ok(h) => h.service,
            Err(e) => {
                warn!(
                    "ipc: conn {id} (pid {}): not a session hello: {e}",
                    creds.pid
                );
                self.ipc.reply(id, answer(CsError::MessageError));
                self.ipc.drop_session(id);
                return;
            }
        };
        if service == CONTROL {
            session.role = Role::Control;
            self.ipc.reply(id, answer(CsError::Ok));
            return;
        }
        if !permission.write && service != service_id::CMAP {
            // CPG does not split reads from writes: read-only grants are for the control
            // service and cmap (whose connections stay read-only) only.
            debug!(
                "ipc: conn {id} (uid {}): service {} needs full access",
                creds.uid, service.0
            );
            self.ipc.reply(id, answer(CsError::Access));
            self.ipc.drop_session(id);
            return;
        }
        match self.services.handle_connect(service, ConnId(id), creds) {
            Ok(()) => {
                session.role = Role::Service(service);
                if service == service_id::CMAP && permission.write {
                    self.services
                        .with_engine::<Cmap, _>(service, |c, _| c.grant_write(ConnId(id)));
                }
                // The hello's reply comes first; whatever the engine queued on connect
                // goes out at the next settle.
                self.ipc.reply(id, answer(CsError::Ok));
            }
            Err(e) => {
                let error = match e {
                    ConnectError::UnknownService(_) => CsError::NotExist,
                    _ => CsError::Library,
                };
                debug!("ipc: conn {id} (pid {}): {e}", creds.pid);
                self.ipc.reply(id, answer(error));
                self.ipc.drop_session(id);
            }
        }
    }

    /// A control request on connection `id`; returns the answer.
    fn control(&mut self, id: u64, request: &[u8]) -> String {
        let Ok(text) = core::str::from_utf8(request) else {
            return "error: a control request is one line of UTF-8 text\n".into();
        };
        let req = text.trim();
        let write = self.ipc.session(id).is_some_and(|s| s.permission().write);
        if control::needs_write(req) && !write {
            return format!("error: {req:?} needs full access (this user has read access)\n");
        }
        if req == "leave" {
            self.leaving = true;
            return "leaving\n".into();
        }
        self.answer(req)
    }

    /// Sends what is pending; false when the socket pushed back (wait for writability).
    fn flush(&mut self, t: &mut T) -> bool {
        while !self.pending.is_empty() {
            let batch: Vec<totem_transport::Transmit<'_>> = self
                .pending
                .iter()
                .take(64)
                .map(|t| totem_transport::Transmit::new(t.dest, &t.frame))
                .collect();
            let len = batch.len();
            let (sent, err) = t.send_batch(&batch);
            drop(batch);
            self.stats.tx_frames += sent as u64;
            self.pending.drain(..sent);
            match err {
                None if sent == len => {}
                None => return true,
                Some(TransportError::WouldBlock) => {
                    self.stats.tx_would_block += 1;
                    return false;
                }
                Some(e) => {
                    // A frame the transport refuses for good (too large, unknown node):
                    // count it, say so, and go on with the rest.
                    self.stats.tx_errors += 1;
                    warn!("send failed: {e}");
                    self.pending.pop_front();
                }
            }
        }
        true
    }

    fn sample_rate(&mut self) {
        let now = self.clock.now();
        let visits = self.ring.stats().orf_token_rx;
        let (then, before, _) = self.token_rate;
        let secs = (now - then).total_micros() as f64 / 1e6;
        if secs > 0.0 {
            self.token_rate = (now, visits, (visits - before) as f64 / secs);
        }
        // A retransmit storm (corosync's "Retransmit List" floods, issues #330, #725):
        // one line per second while it lasts.
        let retx = self.ring.stats().mcast_retx;
        let recent = retx - self.last_retx;
        self.last_retx = retx;
        if recent >= RETRANSMIT_STORM {
            warn!(
                "retransmit storm: {recent} messages retransmitted in the last second (loss or a slow node on the ring)"
            );
        }
    }

    /// The answer to a control request (`leave` is handled by the caller).
    fn answer(&mut self, req: &str) -> String {
        match req {
            "status" => self.status(),
            "reload" => self.reload(),
            "cpg" => self.cpg_groups(),
            other => {
                let known: Vec<&str> = control::REQUESTS.iter().map(|(r, _)| *r).collect();
                let shown: String = other.chars().take(64).collect();
                format!(
                    "error: unknown request {shown:?} (known: {})\n",
                    known.join(", ")
                )
            }
        }
    }

    /// `totemctl cpg`: every group, sorted, with its members sorted by node id and pid
    /// (corosync-cpgtool's content, one item per line for scripts).
    fn cpg_groups(&self) -> String {
        let Some(cpg) = self.services.engine::<Cpg>(service_id::CPG) else {
            return "error: this daemon runs no CPG service\n".into();
        };
        let mut out = String::new();
        for (group, members) in cpg.groups() {
            let _ = writeln!(out, "group {group}");
            for m in members {
                let _ = writeln!(out, "  node {} pid {}", m.node, m.pid);
            }
        }
        out
    }

    /// Re-reads the configuration file and applies what can change live: the ring's timers
    /// and flow control (as corosync applies `totem.token` and friends). Everything else is
    /// reported as needing a restart. Returns a report, one line per finding.
    fn reload(&mut self) -> String {
        let path = self.opts.config.path.clone();
        let new = match crate::config::DaemonConfig::load(&path) {
            Ok(c) => c,
            Err(e) => return format!("error: reload failed, nothing changed: {e}\n"),
        };
        let mut out = String::new();
        for (line, w) in &new.warnings {
            let _ = writeln!(out, "warning: {}:{line}: {w}", path.display());
        }
        let old = &self.opts.config;
        let old_uidgid = old.uidgid.clone();
        let restart = [
            ("nodelist", old.nodes != new.nodes),
            ("transport", old.transport != new.transport),
            ("interface", old.interface != new.interface),
            ("cluster_name", old.cluster_id != new.cluster_id),
            ("state_dir", old.state_dir != new.state_dir),
        ];
        for (what, changed) in restart {
            if changed {
                let _ = writeln!(
                    out,
                    "{what} changed: needs a restart of this node (not applied)"
                );
            }
        }
        let mut ring_cfg = new.ring.clone();
        ring_cfg.node_id = self.opts.node;
        ring_cfg.seed = self.ring.config().seed;
        let before = self.ring.config().clone();
        match self.ring.reconfigure(&ring_cfg) {
            Ok(()) => {
                let after = self.ring.config();
                if *after == before {
                    let _ = writeln!(out, "totem timers unchanged");
                } else {
                    let _ = writeln!(
                        out,
                        "applied: token {} token_retransmit {} hold {} join {} consensus {} merge {} window {} max_messages {}",
                        after.token,
                        after.token_retransmit,
                        after.hold,
                        after.join,
                        after.consensus,
                        after.merge,
                        after.window_size,
                        after.max_messages
                    );
                }
                if old_uidgid == new.uidgid {
                    let _ = writeln!(out, "uidgid unchanged");
                } else {
                    self.ipc.set_policy(ipc::policy(&new.uidgid));
                    let _ = writeln!(
                        out,
                        "applied: uidgid ({} sections) for new connections",
                        new.uidgid.len()
                    );
                }
                let nodes_changed = restart[0].1;
                let mut kept = new;
                if nodes_changed {
                    kept.nodes.clone_from(&self.opts.config.nodes);
                }
                self.opts.config = kept;
                // cmap: the file's keys as re-read (the running nodelist stays if it
                // changed), then the ring's effective values.
                let cfg = &self.opts.config;
                let eff = self.ring.config();
                self.services
                    .with_engine::<Cmap, _>(service_id::CMAP, |c, out| {
                        c.update(out, |db| {
                            crate::cmap::reload(db, cfg, nodes_changed);
                            crate::cmap::publish_effective(db, eff);
                        });
                    });
                let _ = writeln!(out, "cmap: configuration keys re-read");
            }
            Err(e) => {
                let _ = writeln!(out, "error: {e}; nothing applied");
            }
        }
        out
    }

    /// `totemctl status`.
    fn status(&self) -> String {
        let r = &self.ring;
        let s = r.stats();
        let members: Vec<String> = r.members().iter().map(ToString::to_string).collect();
        let mut out = String::new();
        let installed = r.installed_ring_id();
        let _ = writeln!(
            out,
            "node {}: ring {}.{} members {}",
            r.node_id(),
            installed.rep,
            installed.seq,
            members.join(",")
        );
        let _ = writeln!(out, "state: {}", r.state());
        if r.ring_id() != installed {
            let _ = writeln!(out, "forming: ring {}.{}", r.ring_id().rep, r.ring_id().seq);
        }
        let _ = writeln!(out, "transport: {}", self.opts.transport_name);
        let _ = writeln!(
            out,
            "messages sent: {} retransmitted: {} delivered: {}",
            s.mcast_tx, s.mcast_retx, s.delivered
        );
        let _ = writeln!(
            out,
            "token visits: {} ({:.1}/s) retransmits: {}",
            s.orf_token_rx, self.token_rate.2, s.token_retransmits
        );
        let _ = writeln!(
            out,
            "dropped: malformed {} other-cluster {} stale {} duplicate {} out-of-window {} truncated {}",
            s.rx_malformed,
            s.rx_other_cluster,
            s.rx_stale,
            s.mcast_duplicate,
            s.mcast_out_of_window,
            self.stats.rx_truncated
        );
        let _ = writeln!(
            out,
            "membership: gather {} commit {} recovery {} operational {} token-lost {}",
            s.gather_entered,
            s.commit_entered,
            s.recovery_entered,
            s.operational_entered,
            s.operational_token_lost
                + s.gather_token_lost
                + s.commit_token_lost
                + s.recovery_token_lost
        );
        let _ = writeln!(
            out,
            "frames: tx {} rx {} would-block {} errors {}",
            self.stats.tx_frames,
            self.stats.rx_datagrams,
            self.stats.tx_would_block,
            self.stats.tx_errors
        );
        let (hello, service, ctl) = self.ipc.counts();
        let i = &self.ipc.stats;
        let _ = writeln!(
            out,
            "ipc: connections {} (service {service}, control {ctl}, hello {hello}) accepted {} refused {}",
            hello + service + ctl,
            i.accepted,
            i.refused
        );
        let _ = writeln!(
            out,
            "ipc: requests {} events {} full {} dropped {} slow-clients {} mcasts-held {}",
            i.requests,
            i.events,
            i.events_full,
            i.events_dropped,
            i.slow_clients,
            self.stats.mcasts_parked
        );
        let (groups, members) = self
            .services
            .engine::<Cpg>(service_id::CPG)
            .map_or((0, 0), |c| {
                c.groups()
                    .fold((0, 0), |(g, m), (_, v)| (g + 1, m + v.len()))
            });
        let _ = writeln!(
            out,
            "services: synchronized {} cpg groups {groups} members {members}",
            if self.services.is_synchronized() {
                "yes"
            } else {
                "no"
            }
        );
        if let Some(c) = self.services.engine::<Cmap>(service_id::CMAP) {
            let _ = writeln!(
                out,
                "cmap: keys {} trackers {} connections {}",
                c.db().len(),
                c.db().trackers(),
                c.connections()
            );
        }
        out.push_str(&(self.extra_status)());
        out
    }

    /// Applies client writes to the live `totem.*` keys (seen by the daemon's own
    /// tracker): the ring is reconfigured from the database, as `reload` does from the
    /// file, and `runtime.config.totem.*` follows. The engine's [`crate::cmap::NodePolicy`]
    /// checked each write against the ring's rules before it landed, so the ring accepts
    /// it; should it not, the ring keeps its values and the log says why.
    fn apply_cmap_totem(&mut self) {
        let Some(track) = self.cmap_totem else {
            return;
        };
        let (config, ring) = (&self.opts.config, &self.ring);
        let Some(Some((keys, wanted))) =
            self.services
                .with_engine::<Cmap, _>(service_id::CMAP, |c, out| {
                    c.update(out, |db| {
                        // The common case, on every settle: nothing changed, nothing done.
                        if db.pending(track) == 0 {
                            return None;
                        }
                        let mut keys = Vec::new();
                        while let Some(n) = db.poll(track) {
                            match n {
                                Notice::Change(ch) => keys.push(ch.key),
                                Notice::Lost(_) => keys.push("(more)".into()),
                            }
                        }
                        let base = ring_base(config, ring);
                        Some((keys, crate::cmap::ring_config(&base, db, None)))
                    })
                })
        else {
            return;
        };
        let before = self.ring.config().clone();
        let applied = wanted.and_then(|cfg| self.ring.reconfigure(&cfg).map_err(|e| e.to_string()));
        match applied {
            Ok(()) if *self.ring.config() != before => {
                let e = self.ring.config();
                info!(
                    "cmap: {} changed: token {} token_retransmit {} hold {} join {} consensus {} merge {} window {} max_messages {}",
                    keys.join(", "),
                    e.token,
                    e.token_retransmit,
                    e.hold,
                    e.join,
                    e.consensus,
                    e.merge,
                    e.window_size,
                    e.max_messages
                );
            }
            Ok(()) => {}
            Err(e) => warn!("cmap: {} changed but not applied: {e}", keys.join(", ")),
        }
        let eff = self.ring.config();
        self.services
            .with_engine::<Cmap, _>(service_id::CMAP, |c, out| {
                c.update(out, |db| crate::cmap::publish_effective(db, eff));
            });
    }

    /// `runtime.members.*` after a regular configuration.
    fn publish_members(&mut self, members: &[NodeId]) {
        let cfg = &self.opts.config;
        self.services
            .with_engine::<Cmap, _>(service_id::CMAP, |c, out| {
                c.update(out, |db| crate::cmap::publish_members(db, cfg, members));
            });
    }

    /// The counters under `runtime.`, once a second (the tick): only those that changed
    /// notify trackers.
    fn publish_runtime(&mut self) {
        let r = &self.ring;
        let installed = r.installed_ring_id();
        let (hello, service, ctl) = self.ipc.counts();
        let i = &self.ipc.stats;
        let rt = crate::cmap::Runtime {
            ring_id: format!("{}.{}", installed.rep, installed.seq),
            state: r.state().to_string(),
            frames: [
                self.stats.tx_frames,
                self.stats.rx_datagrams,
                self.stats.tx_would_block,
                self.stats.tx_errors,
            ],
            rx_truncated: self.stats.rx_truncated,
            ipc: [
                (hello + service + ctl) as u64,
                i.accepted,
                i.refused,
                i.requests,
                i.events,
                i.events_full,
                i.events_dropped,
                i.slow_clients,
            ],
            synchronized: self.services.is_synchronized(),
            sync_completed: self.services.stats().sync_completed,
        };
        let stats = r.stats();
        self.services
            .with_engine::<Cmap, _>(service_id::CMAP, |c, out| {
                c.update(out, |db| crate::cmap::publish_stats(db, stats, &rt));
            });
    }
}

/// The ring configuration the node runs with, as `reload` and cmap rebuild it: the file's,
/// with this node's id and the ring's seed.
fn ring_base(config: &crate::config::DaemonConfig, ring: &Ring) -> totem_ring::Config {
    let mut c = config.ring.clone();
    c.node_id = ring.node_id();
    c.seed = ring.config().seed;
    c
}

/// Waits until `deadline`, or forever without one.
async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(t) => tokio::time::sleep_until(t).await,
        None => core::future::pending().await,
    }
}

/// `1, 3` or `none`.
fn list(ids: &[NodeId]) -> String {
    if ids.is_empty() {
        "none".into()
    } else {
        ids.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}
