//! The daemon's side: [`Server`] (listener, access control, connection set-up) and
//! [`Connection`] (one client's rings, doorbells and liveness).
//!
//! ## Driving a connection
//!
//! Everything is non-blocking. A connection has two fds to watch:
//! [`Connection::doorbell_fd`] (the client rang: a request arrived, or it freed response or
//! event space) and [`Connection::socket_fd`] (readable or hung up: call
//! [`Connection::check_peer`]). The loop that never loses a wake-up is:
//!
//! ```text
//! on doorbell readable:
//!     conn.clear_doorbell()                     // first: later rings re-arm the fd
//!     while let Some(req) = conn.try_recv_request()? { handle; conn.send_response(..)? }
//!     retry queued events with conn.send_event(..) until Full or done
//! on socket readable/hang-up:
//!     conn.check_peer()?                        // Err(Disconnected): drop the connection
//! ```
//!
//! `try_recv_request` returning `Ok(None)` and `send_*` returning [`SendError::Full`] leave
//! a flag in shared memory so that the client rings the doorbell when that changes; because
//! the doorbell is cleared *before* looking, a ring that arrives meanwhile keeps the fd
//! readable. A new connection starts with its flags set ("asleep"), so the first request
//! rings the doorbell even if the daemon never looked before waiting. [`Connection::wait`] is that loop's blocking half for simple daemons and
//! tests; the `tokio` feature wraps it in [`crate::AsyncConnection`].
//!
//! ## Failure handling
//!
//! The first error a connection meets (client gone, a corrupt ring, bytes on the control
//! socket) is logged in one line, shuts the socket down (the client sees the disconnect at
//! once) and is returned by every later call. Dropping the [`Connection`] frees everything:
//! the mapping, four fds, the connection slot.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering};
use core::time::Duration;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use crate::access::{AccessPolicy, Credentials, Permission};
use crate::error::{
    AcceptError, ConfigError, ConnError, OsError, RefuseReason, RingKind, SendError, ServerError,
};
use crate::ring::{Consumer, Producer, PushError, record_len, start_asleep};
use crate::shm::{Layout, Rings, ShmRing, create_memfd};
use crate::sys;
use crate::wire::{self, Welcome};

/// Default `max_message`: 1 MiB of payload (corosync's IPC and totem message limit) plus
/// 64 KiB for the services' own headers.
pub const DEFAULT_MAX_MESSAGE: usize = (1 << 20) + (64 << 10);

/// Capacity of each ring of a connection, in bytes (powers of two, 4 KiB ..= 1 GiB, each
/// at least one `max_message` record). Memory is committed as the rings are used, so a
/// connection costs at most the sum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingSizes {
    /// Client → daemon requests.
    pub request: usize,
    /// Daemon → client responses.
    pub response: usize,
    /// Daemon → client events: the buffer a slow client gets before [`SendError::Full`].
    pub event: usize,
}

impl Default for RingSizes {
    /// 2 MiB, 2 MiB, 8 MiB.
    fn default() -> Self {
        Self {
            request: 2 << 20,
            response: 2 << 20,
            event: 8 << 20,
        }
    }
}

/// How the [`Server`] is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Prefix of every log line (e.g. `"totemd ipc"`).
    pub name: String,
    /// File mode of the socket (default `0o666`: the socket is not the access control,
    /// [`AccessPolicy`] is).
    pub socket_mode: u32,
    /// Connections open at once; the next one is refused with
    /// [`RefuseReason::TooManyConnections`]. Each costs the daemon four fds.
    pub max_connections: usize,
    /// Ring capacities of each connection.
    pub rings: RingSizes,
    /// Largest payload of one request, response or event.
    pub max_message: usize,
    /// `listen(2)` backlog.
    pub backlog: i32,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            name: String::from("ipc"),
            socket_mode: 0o666,
            max_connections: 256,
            rings: RingSizes::default(),
            max_message: DEFAULT_MAX_MESSAGE,
            backlog: 128,
        }
    }
}

impl ServerConfig {
    /// The shared-memory layout, checked.
    fn layout(&self) -> Result<Layout, ConfigError> {
        let layout = Layout {
            caps: [self.rings.request, self.rings.response, self.rings.event],
        };
        layout.validate(self.max_message)?;
        if self.max_connections == 0 {
            return Err(ConfigError::NoConnections);
        }
        Ok(layout)
    }
}

/// The daemon's listening socket. Pollable: the listener fd ([`AsFd`]) is readable when a
/// connection waits; then call [`Server::accept`] until `Ok(None)`.
#[derive(Debug)]
pub struct Server {
    listener: OwnedFd,
    path: PathBuf,
    /// `(st_dev, st_ino)` of our socket file, so drop never unlinks a successor's.
    file_id: (u64, u64),
    config: ServerConfig,
    layout: Layout,
    policy: AccessPolicy,
    ready: bool,
    next_id: u64,
    live: Arc<AtomicUsize>,
    name: Arc<str>,
}

impl Server {
    /// Listen on `path` (a stale socket file from a dead server is replaced).
    ///
    /// # Errors
    /// [`ServerError::Config`] for an impossible config, [`ServerError::AddrInUse`] when a
    /// live server owns the path, [`ServerError::PathTooLong`], or the failing syscall.
    pub fn bind(
        path: impl AsRef<Path>,
        config: ServerConfig,
        policy: AccessPolicy,
    ) -> Result<Self, ServerError> {
        let path = path.as_ref();
        let layout = config.layout().map_err(ServerError::Config)?;
        let (listener, file_id) = sys::bind_listen(path, config.socket_mode, config.backlog)
            .map_err(|e| match e {
                sys::BindError::PathTooLong => ServerError::PathTooLong {
                    len: path.as_os_str().len(),
                },
                sys::BindError::AddrInUse => ServerError::AddrInUse,
                sys::BindError::Os(e) => ServerError::Os(e),
            })?;
        let name: Arc<str> = Arc::from(config.name.as_str());
        Ok(Self {
            listener,
            path: path.to_path_buf(),
            file_id,
            config,
            layout,
            policy,
            ready: true,
            next_id: 1,
            live: Arc::new(AtomicUsize::new(0)),
            name,
        })
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The configuration in force.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// The access policy in force.
    pub fn policy(&self) -> &AccessPolicy {
        &self.policy
    }

    /// Replace the access policy (e.g. after a `uidgid` config change). Applies to
    /// connections accepted from now on; open ones keep their [`Permission`].
    pub fn set_policy(&mut self, policy: AccessPolicy) {
        self.policy = policy;
    }

    /// While not ready, connections are refused with [`RefuseReason::NotReady`] (the client
    /// sees `EAGAIN`, corosync's behaviour before the daemon has a ring). Default: ready.
    pub fn set_ready(&mut self, ready: bool) {
        self.ready = ready;
    }

    /// Connections accepted and not yet dropped.
    pub fn connections(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }

    /// Accept one waiting connection: read its credentials, check the policy and the
    /// connection limit, create its shared memory and eventfds and send them.
    ///
    /// `Ok(None)`: nobody is waiting.
    ///
    /// # Errors
    /// [`AcceptError::Refused`] after telling the client why (one log line), or
    /// [`AcceptError::Os`]. Either way only that attempt failed: call again.
    pub fn accept(&mut self) -> Result<Option<Connection>, AcceptError> {
        let Some(sock) = sys::accept(self.listener.as_fd()).map_err(AcceptError::Os)? else {
            return Ok(None);
        };
        let peer = sys::peer_cred(sock.as_fd()).map_err(AcceptError::Os)?;
        let name = &self.name;
        let refuse = |reason: RefuseReason| {
            let code = match reason {
                RefuseReason::AccessDenied => wire::reason::ACCESS_DENIED,
                RefuseReason::TooManyConnections { .. } => wire::reason::TOO_MANY,
                RefuseReason::NotReady => wire::reason::NOT_READY,
                RefuseReason::OutOfResources(_) => wire::reason::RESOURCES,
            };
            let msg = Welcome::Refused {
                reason: code,
                errno: reason.errno(),
            }
            .encode();
            // Best effort: a peer that is already gone needs no explanation.
            let _ = sys::send_with_fds(sock.as_fd(), &msg, &[]);
            match reason {
                RefuseReason::AccessDenied => log::warn!(
                    "{name}: Denied connection attempt from {}:{} (pid {})",
                    peer.uid,
                    peer.gid,
                    peer.pid
                ),
                _ => log::warn!(
                    "{name}: refused connection from {}:{} (pid {}): {reason}",
                    peer.uid,
                    peer.gid,
                    peer.pid
                ),
            }
            AcceptError::Refused { peer, reason }
        };
        if !self.ready {
            return Err(refuse(RefuseReason::NotReady));
        }
        let permission = self.policy.check(&peer);
        if permission.is_none() {
            return Err(refuse(RefuseReason::AccessDenied));
        }
        let max = self.config.max_connections;
        if self.live.load(Ordering::Relaxed) >= max {
            return Err(refuse(RefuseReason::TooManyConnections { max }));
        }
        let res = match Resources::new(&self.layout) {
            Ok(r) => r,
            Err(e) => return Err(refuse(RefuseReason::OutOfResources(e))),
        };
        let id = self.next_id;
        let welcome = Welcome::Accepted(wire::Accepted {
            conn_id: id,
            permission,
            // Layout::validate capped every ring at 1 GiB and max_message below that.
            caps: self.layout.caps.map(|c| c as u32),
            max_message: self.config.max_message as u32,
        })
        .encode();
        sys::send_with_fds(
            sock.as_fd(),
            &welcome,
            &[
                res.memfd.as_fd(),
                res.doorbell.as_fd(),
                res.client_sync.as_fd(),
                res.client_event.as_fd(),
            ],
        )
        .map_err(AcceptError::Os)?;
        // The client has its copy of the memfd; ours is only needed for the mapping, which
        // stays valid after close. One fd less per connection.
        drop(res.memfd);
        self.next_id += 1;
        self.live.fetch_add(1, Ordering::Relaxed);
        log::debug!(
            "{name}: conn {id} accepted from {}:{} (pid {}), permission {:?}",
            peer.uid,
            peer.gid,
            peer.pid,
            permission
        );
        let max_message = self.config.max_message;
        Ok(Some(Connection {
            id,
            peer,
            permission,
            socket: sock,
            doorbell: res.doorbell,
            client_sync: res.client_sync,
            client_event: res.client_event,
            requests: Consumer::new(res.rings.request, max_message),
            responses: Producer::new(res.rings.response, max_message),
            events: Producer::new(res.rings.event, max_message),
            buf: Vec::new(),
            max_message,
            closed: None,
            stats: ConnStats::default(),
            live: Arc::clone(&self.live),
            name: Arc::clone(&self.name),
            defer_wakes: false,
            pending_wakes: 0,
        }))
    }
}

impl AsFd for Server {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.listener.as_fd()
    }
}

impl AsRawFd for Server {
    fn as_raw_fd(&self) -> RawFd {
        self.listener.as_raw_fd()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Unlink only our own socket file, never one a newer server bound meanwhile.
        if sys::file_id(&self.path).ok() == Some(self.file_id) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// What one connection needs before the client is told about it.
struct Resources {
    memfd: OwnedFd,
    rings: Rings,
    doorbell: OwnedFd,
    client_sync: OwnedFd,
    client_event: OwnedFd,
}

impl Resources {
    fn new(layout: &Layout) -> Result<Self, OsError> {
        let memfd = create_memfd(layout.total())?;
        let rings = Rings::map(&memfd, layout)?;
        // Both readers start asleep; the fds are sent after this (sendmsg orders it).
        start_asleep(&rings.request);
        start_asleep(&rings.response);
        start_asleep(&rings.event);
        Ok(Self {
            memfd,
            rings,
            doorbell: sys::eventfd()?,
            client_sync: sys::eventfd()?,
            client_event: sys::eventfd()?,
        })
    }
}

/// Counters of one connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnStats {
    /// Requests received.
    pub requests: u64,
    /// Responses queued.
    pub responses: u64,
    /// Events queued.
    pub events: u64,
    /// `send_event` calls that found the event ring full.
    pub events_full: u64,
    /// Wake-ups sent to the client (eventfd writes).
    pub wakeups: u64,
}

/// One client, on the daemon's side. See the module doc for how to drive it.
#[derive(Debug)]
pub struct Connection {
    id: u64,
    peer: Credentials,
    permission: Permission,
    socket: OwnedFd,
    /// Rung by the client; we read it.
    doorbell: OwnedFd,
    /// We ring it: response data, or request space.
    client_sync: OwnedFd,
    /// We ring it: event data.
    client_event: OwnedFd,
    requests: Consumer<ShmRing>,
    responses: Producer<ShmRing>,
    events: Producer<ShmRing>,
    /// Private copy of the last request (never a view of shared memory).
    buf: Vec<u8>,
    max_message: usize,
    closed: Option<ConnError>,
    stats: ConnStats,
    live: Arc<AtomicUsize>,
    name: Arc<str>,
    /// Wake-ups are collected for [`Connection::flush_wakes`] instead of sent at once.
    defer_wakes: bool,
    /// Collected wake-ups: bit 0 the response fd, bit 1 the event fd.
    pending_wakes: u8,
}

/// Private buffers above this are released when the request ring runs empty.
const KEEP_BUF: usize = 64 << 10;

impl Connection {
    /// The connection's id, unique per [`Server`] (also told to the client).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The client's credentials at connect time.
    pub fn peer(&self) -> Credentials {
        self.peer
    }

    /// What the access policy granted this client.
    pub fn permission(&self) -> Permission {
        self.permission
    }

    /// Largest payload in either direction.
    pub fn max_message(&self) -> usize {
        self.max_message
    }

    /// Counters.
    pub fn stats(&self) -> ConnStats {
        self.stats
    }

    /// Event bytes queued and not yet read by the client, for the daemon's own bound on
    /// slow readers. Reads the client's position afresh (a send reads it only when the
    /// room it saw last is used up); a corrupt one finishes the connection and counts as
    /// nothing queued.
    pub fn event_backlog(&mut self) -> usize {
        match self.events.available() {
            Ok(_) => self.events.backlog(),
            Err(error) => {
                self.fail(ConnError::Corrupt {
                    ring: RingKind::Event,
                    error,
                });
                0
            }
        }
    }

    /// The first error this connection met, if it is finished.
    pub fn closed(&self) -> Option<ConnError> {
        self.closed
    }

    /// Readable when the client rang (new request, or space freed in the response or event
    /// ring). Call [`Connection::clear_doorbell`] before processing.
    pub fn doorbell_fd(&self) -> BorrowedFd<'_> {
        self.doorbell.as_fd()
    }

    /// Readable or hung up when the client is gone; call [`Connection::check_peer`].
    pub fn socket_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }

    /// Reset the doorbell. Call it *before* looking at the rings, never after.
    pub fn clear_doorbell(&self) {
        sys::drain(self.doorbell.as_fd());
    }

    /// Record the first failure: one log line, shut the socket down so the client notices.
    fn fail(&mut self, e: ConnError) -> ConnError {
        if let Some(first) = self.closed {
            return first;
        }
        self.closed = Some(e);
        sys::shutdown(self.socket.as_fd());
        let (name, id, p) = (&self.name, self.id, self.peer);
        match e {
            ConnError::Disconnected => log::info!(
                "{name}: conn {id} ({}:{} pid {}): client disconnected",
                p.uid,
                p.gid,
                p.pid
            ),
            _ => log::warn!(
                "{name}: conn {id} ({}:{} pid {}): {e}; disconnecting",
                p.uid,
                p.gid,
                p.pid
            ),
        }
        e
    }

    fn check_open(&self) -> Result<(), ConnError> {
        match self.closed {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Is the client still there? Call it when [`Connection::socket_fd`] polls readable.
    ///
    /// # Errors
    /// [`ConnError::Disconnected`] when it closed its socket (exit or crash),
    /// [`ConnError::Protocol`] when it wrote on it.
    pub fn check_peer(&mut self) -> Result<(), ConnError> {
        self.check_open()?;
        match sys::peek(self.socket.as_fd()) {
            Ok(sys::Peek::Quiet) => Ok(()),
            Ok(sys::Peek::Closed) => Err(self.fail(ConnError::Disconnected)),
            Ok(sys::Peek::Data) => Err(self.fail(ConnError::Protocol)),
            Err(e) => Err(self.fail(ConnError::Os(e))),
        }
    }

    /// Take the next request into `out`. `Ok(false)`: nothing to do now, and the doorbell
    /// is armed.
    fn recv_into(&mut self, out: &mut Vec<u8>) -> Result<bool, ConnError> {
        self.check_open()?;
        // Flow control: take a request only when its response is sure to fit, so a client
        // that never reads its responses stalls itself (its request ring fills and it gets
        // TryAgain), never the daemon.
        let room = record_len(self.max_message).unwrap_or(usize::MAX);
        // The room last seen first: re-reading the client's tail costs a cache line.
        let free = if self.responses.free_cached() >= room {
            Ok(room)
        } else {
            self.responses.available().map_err(|error| {
                self.fail(ConnError::Corrupt {
                    ring: RingKind::Response,
                    error,
                })
            })
        };
        if free? < room {
            match self.responses.arm(self.max_message) {
                Ok(true) => {}
                Ok(false) => return Ok(false),
                Err(error) => {
                    return Err(self.fail(ConnError::Corrupt {
                        ring: RingKind::Response,
                        error,
                    }));
                }
            }
        }
        let corrupt = |error| ConnError::Corrupt {
            ring: RingKind::Request,
            error,
        };
        for _ in 0..2 {
            match self.requests.try_pop(out) {
                Ok(Some(wake)) => {
                    if wake {
                        self.wake(WakeTarget::Sync);
                    }
                    self.stats.requests += 1;
                    return Ok(true);
                }
                Ok(None) => {
                    match self.requests.arm() {
                        // Data arrived while arming: look once more.
                        Ok(true) => continue,
                        Ok(false) => return Ok(false),
                        Err(e) => return Err(self.fail(corrupt(e))),
                    }
                }
                Err(e) => return Err(self.fail(corrupt(e))),
            }
        }
        Ok(false)
    }

    /// The next request, copied into a private buffer (the client cannot change it while
    /// the daemon parses it). `Ok(None)`: none now; the doorbell rings when one arrives (or
    /// when the client frees response space, if that was what held it back).
    ///
    /// # Errors
    /// [`ConnError::Corrupt`] if the client broke a ring (logged, connection finished), or
    /// the error that finished the connection earlier.
    pub fn try_recv_request(&mut self) -> Result<Option<&[u8]>, ConnError> {
        Ok(self.recv_buffered()?.then_some(self.buf.as_slice()))
    }

    /// Take the next request into the connection's own buffer; `Ok(true)`: it is in
    /// [`Connection::buffered`].
    pub(crate) fn recv_buffered(&mut self) -> Result<bool, ConnError> {
        let mut buf = core::mem::take(&mut self.buf);
        let got = self.recv_into(&mut buf);
        // Idle with a big buffer (after a large request): give the memory back, so a
        // connection holds at most 64 KiB of private buffer while it waits.
        if got == Ok(false) && buf.capacity() > KEEP_BUF {
            buf = Vec::new();
        }
        self.buf = buf;
        got
    }

    /// The request [`Connection::recv_buffered`] took.
    #[cfg(feature = "tokio")]
    pub(crate) fn buffered(&self) -> &[u8] {
        &self.buf
    }

    /// As [`Connection::try_recv_request`], into the caller's buffer (cleared first), so
    /// the request can outlive the next call. `Ok(false)`: none now.
    ///
    /// # Errors
    /// As [`Connection::try_recv_request`].
    pub fn try_recv_request_into(&mut self, out: &mut Vec<u8>) -> Result<bool, ConnError> {
        self.recv_into(out)
    }

    /// Collects wake-ups instead of sending each at once; [`Connection::flush_wakes`]
    /// sends them. A daemon that answers many requests or sends many events in one pass
    /// then wakes the client once, when the pass ends, instead of once per message (on a
    /// busy core each wake-up can let the client preempt the daemon to read one record).
    pub fn set_deferred_wakes(&mut self, on: bool) {
        self.defer_wakes = on;
        if !on {
            self.flush_wakes();
        }
    }

    /// Whether a collected wake-up waits for [`Connection::flush_wakes`].
    pub fn wake_pending(&self) -> bool {
        self.pending_wakes != 0
    }

    /// Sends the collected wake-ups (at most one per client fd).
    pub fn flush_wakes(&mut self) {
        let pending = core::mem::take(&mut self.pending_wakes);
        if pending & 1 != 0 {
            self.notify(WakeTarget::Sync);
        }
        if pending & 2 != 0 {
            self.notify(WakeTarget::Event);
        }
    }

    fn wake(&mut self, target: WakeTarget) {
        if self.defer_wakes {
            self.pending_wakes |= match target {
                WakeTarget::Sync => 1,
                WakeTarget::Event => 2,
            };
            return;
        }
        self.notify(target);
    }

    fn notify(&mut self, target: WakeTarget) {
        let fd = match target {
            WakeTarget::Sync => self.client_sync.as_fd(),
            WakeTarget::Event => self.client_event.as_fd(),
        };
        sys::notify(fd);
        self.stats.wakeups += 1;
    }

    fn push(&mut self, kind: RingKind, data: &[u8]) -> Result<(), SendError> {
        if let Some(e) = self.closed {
            return Err(SendError::Closed(e));
        }
        let ring = match kind {
            RingKind::Event => &mut self.events,
            _ => &mut self.responses,
        };
        let mut result = ring.try_push(data);
        if result == Err(PushError::Full) {
            // Ask to be rung when space frees; it may already have.
            result = match ring.arm(data.len()) {
                Ok(true) => ring.try_push(data),
                Ok(false) => Err(PushError::Full),
                Err(e) => Err(PushError::Corrupt(e)),
            };
        }
        match result {
            Ok(wake) => {
                let target = match kind {
                    RingKind::Event => {
                        self.stats.events += 1;
                        WakeTarget::Event
                    }
                    _ => {
                        self.stats.responses += 1;
                        WakeTarget::Sync
                    }
                };
                if wake {
                    self.wake(target);
                }
                Ok(())
            }
            Err(PushError::Full) => {
                if kind == RingKind::Event {
                    self.stats.events_full += 1;
                }
                Err(SendError::Full)
            }
            Err(PushError::TooLarge) => Err(SendError::TooLarge {
                len: data.len(),
                max: self.max_message,
            }),
            Err(PushError::Corrupt(error)) => Err(SendError::Closed(
                self.fail(ConnError::Corrupt { ring: kind, error }),
            )),
        }
    }

    /// Queue the response to the oldest unanswered request. One response per request always
    /// fits (requests are only handed out when it does); more can meet
    /// [`SendError::Full`].
    ///
    /// # Errors
    /// [`SendError::Full`], [`SendError::TooLarge`], or [`SendError::Closed`].
    pub fn send_response(&mut self, data: &[u8]) -> Result<(), SendError> {
        self.push(RingKind::Response, data)
    }

    /// Queue an asynchronous event (dispatch) for the client.
    ///
    /// # Errors
    /// [`SendError::Full`] when the client is not reading its events: nothing is queued,
    /// memory stays bounded by the event ring, and the doorbell rings once the client reads.
    /// The daemon decides what to do (keep its own bounded queue, or drop the client).
    /// Also [`SendError::TooLarge`] / [`SendError::Closed`].
    pub fn send_event(&mut self, data: &[u8]) -> Result<(), SendError> {
        self.push(RingKind::Event, data)
    }

    /// Block until the doorbell rings or the client goes away, at most `timeout` (`None`:
    /// forever). Clears the doorbell. `Ok(false)`: timed out.
    ///
    /// # Errors
    /// As [`Connection::check_peer`].
    pub fn wait(&mut self, timeout: Option<Duration>) -> Result<bool, ConnError> {
        self.check_open()?;
        let mut fds = [
            sys::pollfd(self.doorbell.as_fd()),
            sys::pollfd(self.socket.as_fd()),
        ];
        let n = sys::poll(&mut fds, timeout).map_err(|e| self.fail(ConnError::Os(e)))?;
        if n == 0 {
            return Ok(false);
        }
        if fds[1].revents != 0 {
            self.check_peer()?;
        }
        if fds[0].revents != 0 {
            self.clear_doorbell();
        }
        Ok(true)
    }
}

#[derive(Debug, Clone, Copy)]
enum WakeTarget {
    Sync,
    Event,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.live.fetch_sub(1, Ordering::Relaxed);
    }
}
