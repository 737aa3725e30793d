//! The daemon's driver loop: one tokio task around the sans-IO ring (STYLE point 11's five
//! lines — read `now`, feed one input, drain the ring's outputs, sleep until the next
//! deadline or datagram).
//!
//! Inputs: datagrams (the transport's socket, registered with tokio's `AsyncFd`), the
//! ring's deadline, control-socket requests, SIGTERM/SIGINT (leave cleanly) and SIGHUP
//! (reload). Outputs: frames (sent in batches; what the socket will not take waits for
//! writability, nothing is dropped here), events (the ring seq is persisted *before* the
//! frames that follow go out; membership changes are logged as one line each).

use alloc::collections::VecDeque;
use core::fmt::Write as _;
use std::io;
use std::path::PathBuf;

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncBufReadExt, AsyncReadExt as _, AsyncWriteExt, BufReader};
use tokio::net::UnixListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, oneshot};
use totem_proto::{MessageType, NodeId};
use totem_ring::{ConfigurationKind, Event, Ring, Transmit};
use totem_transport::{RecvMeta, TransportError};
use tracing::{debug, error, info, warn};

use crate::clock::Clock;
use crate::link::Link;
use crate::persist;

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
}

/// A control request and where to send the answer.
type Request = (String, oneshot::Sender<String>);

/// What the daemon runs with, besides the ring and the transport.
#[derive(Debug)]
pub struct Options {
    /// This node.
    pub node: NodeId,
    /// Transport name for `status`.
    pub transport_name: String,
    /// File holding the last ring seq.
    pub ring_seq_path: PathBuf,
    /// The control socket to create.
    pub control_socket: PathBuf,
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
    stats: DaemonStats,
    /// (time, token visits) one second apart, for the rotation rate.
    token_rate: (totem_proto::time::Instant, u64, f64),
    last_members: Vec<NodeId>,
    /// Retransmissions counted at the last one-second tick.
    last_retx: u64,
    extra_status: Box<dyn Fn() -> String + Send>,
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
    /// A daemon around `ring` and `transport`. Must be called inside a tokio runtime.
    ///
    /// # Errors
    /// The transport's socket cannot be registered with tokio.
    pub fn new(ring: Ring, transport: T, clock: Clock, opts: Options) -> io::Result<Self> {
        Ok(Self {
            ring,
            transport: Some(transport),
            clock,
            opts,
            pending: VecDeque::new(),
            stats: DaemonStats::default(),
            token_rate: (totem_proto::time::Instant::ZERO, 0, 0.0),
            last_members: Vec::new(),
            last_retx: 0,
            extra_status: Box::new(String::new),
        })
    }

    /// Adds transport-specific lines to `status` (socket buffer sizes, counters).
    pub fn set_extra_status(&mut self, f: impl Fn() -> String + Send + 'static) {
        self.extra_status = Box::new(f);
    }

    /// Runs until SIGTERM/SIGINT or a `leave` request, then leaves the ring cleanly.
    ///
    /// # Errors
    /// The control socket cannot be created, the ring seq cannot be persisted, or the
    /// transport fails for good.
    pub async fn run(mut self) -> io::Result<()> {
        let (tx, mut requests) = mpsc::channel::<Request>(16);
        let _ = std::fs::remove_file(&self.opts.control_socket);
        let listener = UnixListener::bind(&self.opts.control_socket).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("control socket {}: {e}", self.opts.control_socket.display()),
            )
        })?;
        tokio::spawn(serve_control(listener, tx));
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
        info!(
            "node {} started, transport {}",
            self.opts.node, self.opts.transport_name
        );
        loop {
            self.drain(io.get_mut())?;
            let deadline = match (self.ring.poll_timeout(), io.get_ref().poll_at()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
            .map(|t| self.clock.to_tokio(t));
            let want_write = !self.pending.is_empty();
            // Readiness is cleared as soon as it is seen, and the socket is then read (or
            // written) until it would block: data arriving meanwhile raises a new event.
            let (mut readable, mut writable) = (false, false);
            tokio::select! {
                biased;
                _ = sigterm.recv() => break,
                _ = sigint.recv() => break,
                _ = sighup.recv() => {
                    let report = self.reload();
                    info!("SIGHUP: {}", report.trim_end().replace('\n', "; "));
                }
                ready = io.readable() => {
                    ready?.clear_ready();
                    readable = true;
                }
                ready = io.writable(), if want_write => {
                    ready?.clear_ready();
                    writable = true;
                }
                () = sleep_until(deadline) => {
                    let now = self.clock.now();
                    io.get_mut().set_now(now);
                    // Held-back datagrams (fault injection) may be due now.
                    readable = io.get_ref().poll_at().is_some();
                    self.ring.handle_timeout(now);
                }
                Some((req, reply)) = requests.recv() => {
                    if req.trim() == "leave" {
                        let _ = reply.send("leaving\n".into());
                        break;
                    }
                    let _ = reply.send(self.answer(&req));
                }
                _ = tick.tick() => self.sample_rate(),
            }
            if readable {
                self.receive(io.get_mut(), &mut bufs)?;
            }
            if writable {
                self.flush(io.get_mut());
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
        let _ = std::fs::remove_file(&self.opts.control_socket);
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

    /// Handles the ring's events, then sends its frames.
    fn drain(&mut self, t: &mut T) -> io::Result<()> {
        while let Some(ev) = self.ring.poll_event() {
            match ev {
                Event::RingSeqUsed(seq) => {
                    // Durable before any frame of that ring goes out.
                    persist::store_ring_seq(&self.opts.ring_seq_path, seq).map_err(|e| {
                        error!(
                            "cannot persist ring seq {seq} to {}: {e}",
                            self.opts.ring_seq_path.display()
                        );
                        e
                    })?;
                }
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
                    self.last_members = c.members;
                }
                Event::Configuration(c) => debug!(
                    "transitional configuration {}: {}",
                    c.ring_id,
                    list(&c.members)
                ),
                Event::Deliver(_) => {}
            }
        }
        while let Some(tx) = self.ring.poll_transmit() {
            self.pending.push_back(tx);
        }
        self.flush(t);
        Ok(())
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

    /// The answer to a control request.
    fn answer(&mut self, req: &str) -> String {
        match req.trim() {
            "status" => self.status(),
            "reload" => self.reload(),
            other => format!("error: unknown request {other:?} (known: status, reload, leave)\n"),
        }
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
                let nodes_changed = restart[0].1;
                let mut kept = new;
                if nodes_changed {
                    kept.nodes.clone_from(&self.opts.config.nodes);
                }
                self.opts.config = kept;
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
        out.push_str(&(self.extra_status)());
        out
    }
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

/// Accepts control connections: one request line each, answered by the driver loop.
async fn serve_control(listener: UnixListener, tx: mpsc::Sender<Request>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let tx = tx.clone();
        tokio::spawn(async move {
            let (rd, mut wr) = stream.into_split();
            let mut line = String::new();
            let mut rd = BufReader::new(rd).take(4096);
            if rd.read_line(&mut line).await.is_err() {
                return;
            }
            let (reply_tx, reply_rx) = oneshot::channel();
            if tx.send((line, reply_tx)).await.is_err() {
                return;
            }
            if let Ok(answer) = reply_rx.await {
                let _ = wr.write_all(answer.as_bytes()).await;
            }
        });
    }
}
