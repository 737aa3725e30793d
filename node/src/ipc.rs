//! The daemon's side of the IPC: the ipc-shm server on `<state_dir>/totemd.sock`, one
//! [`Session`] per connection, and the bounded event backlog of clients that read slowly.
//!
//! This module moves bytes and keeps per-connection state; what a request *means* is the
//! driver loop's business (`daemon.rs`: the hello, the control requests, `Services`).
//!
//! # Sessions
//!
//! Every connection starts with the session hello (`services::session`): its first request
//! names a service, answered with a `HelloReply`. Until then it is [`Role::Hello`]; after
//! it, [`Role::Service`] (requests go to `Services`, which answers each with exactly one
//! reply and sends events) or [`Role::Control`] (text requests answered by the daemon).
//!
//! # Slow readers
//!
//! Replies never wait: ipc-shm hands the daemon a request only when one maximal response
//! fits, and engines answer synchronously. Events can: a client that does not read its
//! event ring makes `send_event` return `Full`. The event then waits in the connection's
//! [`Backlog`] (a queue of shared `Bytes`: a delivery waiting for several clients is one
//! buffer), sent in order when the client frees space (it rings the doorbell). A client
//! that stays stuck — more than [`Limits::events`] events or [`Limits::bytes`] bytes
//! waiting, or no progress for [`Limits::stall`] — is disconnected with one log line: a
//! client that never reads must not grow the daemon's memory.

use alloc::collections::{BTreeMap, VecDeque};
use core::fmt;
use core::task::{Context, Poll};
use std::io;
use std::path::Path;

use bytes::Bytes;
use ipc_shm::{
    AccessPolicy, AsyncConnection, AsyncServer, ConnError, Permission, RingSizes, SendError,
    Server, ServerConfig,
};
use services::Credentials;
use totem_proto::ServiceId;
use totem_proto::time::{Duration, Instant};
use tracing::warn;

use crate::config::{Access, UidGid};

/// Requests taken from one connection before the loop looks at the ring again (a client
/// flooding requests must not starve the token).
pub const BATCH: usize = 64;

/// When a slow reader is disconnected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Events waiting in the daemon (beyond the client's event ring).
    pub events: usize,
    /// Payload bytes waiting in the daemon.
    pub bytes: usize,
    /// Time events wait without the client taking any.
    pub stall: Duration,
}

impl Default for Limits {
    /// 8192 events or 64 MiB (on top of the 8 MiB event ring), or 10 s without progress.
    fn default() -> Self {
        Self {
            events: 8192,
            bytes: 64 << 20,
            stall: Duration::from_secs(10),
        }
    }
}

/// The ipc-shm server settings for a ring whose largest message is `max_message_len`:
/// every ring event and every CPG request (the message plus its header and group name)
/// must fit one IPC record.
pub fn server_config(max_message_len: usize) -> ServerConfig {
    // 64 KiB of room for the services' headers (a CPG header and name take < 200 bytes).
    let max_message = max_message_len.max(64 << 10) + (64 << 10);
    // Every ring holds at least one maximal record (its 8-byte header included).
    let ring = (max_message + 8).next_power_of_two().max(2 << 20);
    ServerConfig {
        name: "ipc".into(),
        max_message,
        rings: RingSizes {
            request: ring,
            response: ring,
            event: (4 * ring).max(8 << 20),
        },
        ..ServerConfig::default()
    }
}

/// The access policy of `uidgid { }` grants: root and this process's uid always; a uid or
/// gid listed several times gets the union of its grants.
pub fn policy(grants: &[UidGid]) -> AccessPolicy {
    let mut uids: BTreeMap<u32, Permission> = BTreeMap::new();
    let mut gids: BTreeMap<u32, Permission> = BTreeMap::new();
    for g in grants {
        let p = match g.access {
            Access::Full => Permission::FULL,
            Access::Read => Permission::READ,
        };
        if let Some(u) = g.uid {
            let e = uids.entry(u).or_default();
            *e = e.union(p);
        }
        if let Some(gid) = g.gid {
            let e = gids.entry(gid).or_default();
            *e = e.union(p);
        }
    }
    let mut policy = AccessPolicy::for_current_process();
    for (u, p) in uids {
        policy.allow_uid(u, p);
    }
    for (g, p) in gids {
        policy.allow_gid(g, p);
    }
    policy
}

/// What a connection is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Waiting for its hello.
    Hello,
    /// A service engine's client (CPG, ...): requests go to `Services`.
    Service(ServiceId),
    /// The daemon's control requests (`totemctl`).
    Control,
}

/// Why a slow reader was disconnected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stuck {
    /// Too many events waiting.
    Events(usize),
    /// Too many bytes waiting.
    Bytes(usize),
    /// Events waited this long without the client taking one.
    Stalled(Duration),
}

impl fmt::Display for Stuck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Events(n) => write!(f, "{n} events waiting"),
            Self::Bytes(n) => write!(f, "{} KiB of events waiting", n / 1024),
            Self::Stalled(d) => write!(
                f,
                "no event read for {:.1} s",
                d.total_millis() as f64 / 1000.0
            ),
        }
    }
}

/// Events waiting for a client's event ring to have room.
#[derive(Debug, Default)]
pub struct Backlog {
    queue: VecDeque<Bytes>,
    bytes: usize,
    /// While something waits: when the client last took an event (or the wait began).
    since: Option<Instant>,
}

/// What [`Backlog::offer`] did with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offered {
    /// Written to the client's event ring.
    Sent,
    /// The ring was full (or others wait before it): queued.
    Queued,
    /// Dropped: larger than the connection's `max_message` (a daemon bug; logged).
    TooLarge,
}

impl Backlog {
    /// Events waiting.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Nothing waits.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Payload bytes waiting.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Send `event` through `send` (the connection's `send_event`), or queue it behind the
    /// events already waiting, so the client sees them in order.
    ///
    /// # Errors
    /// The connection failed ([`SendError::Closed`]).
    pub fn offer(
        &mut self,
        event: Bytes,
        now: Instant,
        send: impl FnOnce(&[u8]) -> Result<(), SendError>,
    ) -> Result<Offered, SendError> {
        if self.queue.is_empty() {
            match send(&event) {
                Ok(()) => return Ok(Offered::Sent),
                Err(SendError::Full) => self.since = Some(now),
                Err(SendError::TooLarge { len, max }) => {
                    warn!("ipc: dropped an event of {len} bytes, above max_message {max}");
                    return Ok(Offered::TooLarge);
                }
                Err(e) => return Err(e),
            }
        }
        self.bytes += event.len();
        self.queue.push_back(event);
        Ok(Offered::Queued)
    }

    /// The client freed space: send what waits, oldest first, until its ring is full
    /// again. Returns how many were sent.
    ///
    /// # Errors
    /// The connection failed.
    pub fn resume(
        &mut self,
        now: Instant,
        mut send: impl FnMut(&[u8]) -> Result<(), SendError>,
    ) -> Result<usize, SendError> {
        let mut sent = 0;
        while let Some(ev) = self.queue.front() {
            match send(ev) {
                Ok(()) => {}
                Err(SendError::Full) => break,
                Err(SendError::TooLarge { len, max }) => {
                    warn!("ipc: dropped an event of {len} bytes, above max_message {max}");
                }
                Err(e) => return Err(e),
            }
            self.bytes -= ev.len();
            self.queue.pop_front();
            sent += 1;
        }
        if self.queue.is_empty() {
            self.since = None;
        } else if sent > 0 {
            self.since = Some(now);
        }
        Ok(sent)
    }

    /// Whether the client is stuck beyond `limits` (then disconnect it).
    pub fn stuck(&self, now: Instant, limits: &Limits) -> Option<Stuck> {
        if self.queue.len() > limits.events {
            return Some(Stuck::Events(self.queue.len()));
        }
        if self.bytes > limits.bytes {
            return Some(Stuck::Bytes(self.bytes));
        }
        let waited = now - self.since?;
        (waited > limits.stall).then_some(Stuck::Stalled(waited))
    }

    /// Forget everything (the client is gone); returns how many events were dropped.
    pub fn clear(&mut self) -> usize {
        let n = self.queue.len();
        self.queue.clear();
        self.bytes = 0;
        self.since = None;
        n
    }
}

/// IPC counters for `status`.
#[derive(Debug, Default, Clone, Copy)]
pub struct IpcStats {
    /// Connections accepted.
    pub accepted: u64,
    /// Connections refused (access, limit; one log line each from ipc-shm).
    pub refused: u64,
    /// Requests received (hellos included).
    pub requests: u64,
    /// Events written to clients' event rings.
    pub events: u64,
    /// Events that found the client's ring full and waited in the daemon.
    pub events_full: u64,
    /// Events dropped: those of disconnected slow clients, and oversized ones.
    pub events_dropped: u64,
    /// Clients disconnected for not reading their events.
    pub slow_clients: u64,
}

/// One connection.
#[derive(Debug)]
pub struct Session {
    /// The connection.
    pub conn: AsyncConnection,
    /// What it is for.
    pub role: Role,
    backlog: Backlog,
    /// Replies that found the response ring full (ipc-shm makes that impossible for one
    /// reply per request; kept for safety), sent before anything newer.
    replies: VecDeque<Bytes>,
    /// The last serve stopped at [`BATCH`]: serve again without waiting for the doorbell.
    pub more: bool,
    /// A multicast request taken while the services were busy (flow control): it is
    /// handed over, and the connection served again, once they are not. Nothing else of
    /// this connection is read meanwhile, so its requests stay in order and the memory is
    /// one request.
    pub parked: Option<Vec<u8>>,
    /// In [`Ipc`]'s list of connections to wake at the end of the pass.
    wake_noted: bool,
}

impl Session {
    /// The client's kernel credentials, as the services take them.
    pub fn credentials(&self) -> Credentials {
        let p = self.conn.get_ref().peer();
        Credentials {
            // A peer outside our pid namespace shows as pid 0.
            pid: u32::try_from(p.pid).unwrap_or(0),
            uid: p.uid,
            gid: p.gid,
        }
    }

    /// What the access policy granted.
    pub fn permission(&self) -> Permission {
        self.conn.get_ref().permission()
    }
}

/// The connections, as the loop waits on them.
#[derive(Debug)]
pub struct Waiting<'a>(&'a mut BTreeMap<u64, Session>, bool);

impl Waiting<'_> {
    /// Connections that need serving: their doorbell rang (cleared now), they stopped at
    /// [`BATCH`] last time, they hold a parked multicast and the services are no longer
    /// busy, or they failed. A connection with a parked request is not polled while the
    /// services are busy (its doorbell stays set for later). `Pending` (wakers registered on every
    /// connection's doorbell and socket) when none does: an idle daemon sleeps.
    pub fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Vec<(u64, Result<(), ConnError>)>> {
        let mut ready = Vec::new();
        for (id, s) in self.0.iter_mut() {
            if s.parked.is_some() {
                if !self.1 {
                    ready.push((*id, Ok(())));
                }
            } else if s.more {
                ready.push((*id, Ok(())));
            } else if let Poll::Ready(r) = s.conn.poll_ready(cx) {
                ready.push((*id, r));
            }
        }
        if ready.is_empty() {
            Poll::Pending
        } else {
            Poll::Ready(ready)
        }
    }
}

/// The server and its sessions.
#[derive(Debug)]
pub struct Ipc {
    server: AsyncServer,
    sessions: BTreeMap<u64, Session>,
    /// Connections dropped since the driver last asked ([`Ipc::take_dead`]), with their
    /// role: the services must hear of each at once (CPG: PROCDOWN).
    dead: Vec<(u64, Role)>,
    /// Connections with a wake-up collected since the last [`Ipc::flush_wakes`].
    to_wake: Vec<u64>,
    limits: Limits,
    /// Counters.
    pub stats: IpcStats,
}

impl Ipc {
    /// Listens on `path` (replacing a stale socket file; a live daemon's is an error).
    /// Must be called inside a tokio runtime.
    ///
    /// # Errors
    /// The socket cannot be created or registered.
    pub fn bind(path: &Path, config: ServerConfig, policy: AccessPolicy) -> io::Result<Self> {
        let server = Server::bind(path, config, policy).map_err(|e| {
            io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("IPC socket {}: {e}", path.display()),
            )
        })?;
        Ok(Self {
            server: AsyncServer::new(server)?,
            sessions: BTreeMap::new(),
            dead: Vec::new(),
            to_wake: Vec::new(),
            limits: Limits::default(),
            stats: IpcStats::default(),
        })
    }

    /// Replaces the slow-reader limits.
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// Replaces the access policy (`reload`); open connections keep theirs.
    pub fn set_policy(&mut self, policy: AccessPolicy) {
        self.server.set_policy(policy);
    }

    /// The policy in force.
    pub fn policy(&self) -> &AccessPolicy {
        self.server.get_ref().policy()
    }

    /// Open connections by role: (hello, service, control).
    pub fn counts(&self) -> (usize, usize, usize) {
        self.sessions
            .values()
            .fold((0, 0, 0), |(h, s, c), x| match x.role {
                Role::Hello => (h + 1, s, c),
                Role::Service(_) => (h, s + 1, c),
                Role::Control => (h, s, c + 1),
            })
    }

    /// What the loop waits on, borrowed apart so that one `select!` waits on both: the
    /// listener (`accept().await`, cancel-safe: nothing is lost if another branch wins) and
    /// the connections ([`Waiting::poll_ready`]).
    /// The server and the connections to wait on; `busy`: the services take no
    /// multicast now (see [`Session::parked`]).
    pub fn waiting(&mut self, busy: bool) -> (&mut AsyncServer, Waiting<'_>) {
        (&mut self.server, Waiting(&mut self.sessions, busy))
    }

    /// A new connection, waiting for its hello.
    pub fn add(&mut self, mut conn: AsyncConnection) {
        self.stats.accepted += 1;
        // What one pass of the driver loop sends a client wakes it once, at the pass's end
        // (`flush_wakes`).
        conn.set_deferred_wakes(true);
        self.sessions.insert(
            conn.get_ref().id(),
            Session {
                conn,
                role: Role::Hello,
                backlog: Backlog::default(),
                replies: VecDeque::new(),
                more: false,
                parked: None,
                wake_noted: false,
            },
        );
    }

    /// The session `id`.
    pub fn session(&mut self, id: u64) -> Option<&mut Session> {
        self.sessions.get_mut(&id)
    }

    /// Wakes every client sent something since the last call (the driver calls it at the
    /// end of each pass, after the ring's frames are out).
    pub fn flush_wakes(&mut self) {
        for id in self.to_wake.drain(..) {
            if let Some(s) = self.sessions.get_mut(&id) {
                s.wake_noted = false;
                s.conn.flush_wakes();
            }
        }
    }

    /// The next request of `id`, in a buffer of its own (so it can become a `Bytes`
    /// without a copy). `None`: nothing now, or the connection failed (then it is dead).
    pub fn recv(&mut self, id: u64) -> Option<Vec<u8>> {
        let s = self.sessions.get_mut(&id)?;
        let mut buf = Vec::new();
        match s.conn.try_recv_request_into(&mut buf) {
            Ok(true) => {
                self.stats.requests += 1;
                note_wake(&mut self.to_wake, id, s);
                Some(buf)
            }
            Ok(false) => None,
            Err(_) => {
                // ipc-shm logged the failure.
                self.drop_session(id);
                None
            }
        }
    }

    /// The client of `id` rang: send the replies and events that waited for room.
    pub fn resume(&mut self, id: u64, now: Instant) {
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        let mut failed = false;
        while let Some(r) = s.replies.front() {
            match s.conn.send_response(r) {
                Ok(()) => {
                    s.replies.pop_front();
                }
                Err(SendError::Full) => break,
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        if !failed {
            let conn = &mut s.conn;
            match s.backlog.resume(now, |b| conn.send_event(b)) {
                Ok(n) => self.stats.events += n as u64,
                Err(_) => failed = true,
            }
        }
        if failed {
            self.drop_session(id);
        } else {
            note_wake(&mut self.to_wake, id, s);
        }
    }

    /// Sends `bytes` as the reply to `id`'s current request (dropped if `id` is gone).
    pub fn reply(&mut self, id: u64, bytes: Bytes) {
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        if !s.replies.is_empty() {
            s.replies.push_back(bytes);
            return;
        }
        match s.conn.send_response(&bytes) {
            Ok(()) => {}
            Err(SendError::Full) => s.replies.push_back(bytes),
            Err(SendError::TooLarge { len, max }) => {
                // Only a control answer can be that large; say so instead.
                warn!("ipc: conn {id}: a reply of {len} bytes exceeds max_message {max}");
                let msg = format!("error: the answer ({len} bytes) exceeds the IPC limit\n");
                let _ = s.conn.send_response(msg.as_bytes());
            }
            Err(_) => {
                self.drop_session(id);
                return;
            }
        }
        note_wake(&mut self.to_wake, id, s);
    }

    /// Sends `bytes` as an event to `id`, or queues it if the client is not reading; a
    /// client stuck beyond the limits is disconnected.
    pub fn event(&mut self, id: u64, bytes: Bytes, now: Instant) {
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        let conn = &mut s.conn;
        match s.backlog.offer(bytes, now, |b| conn.send_event(b)) {
            Ok(Offered::Sent) => {
                self.stats.events += 1;
                note_wake(&mut self.to_wake, id, s);
            }
            Ok(Offered::Queued) => {
                self.stats.events_full += 1;
                if let Some(why) = s.backlog.stuck(now, &self.limits) {
                    self.drop_slow(id, why);
                }
            }
            Ok(Offered::TooLarge) => self.stats.events_dropped += 1,
            Err(_) => {
                self.drop_session(id);
            }
        }
    }

    /// Disconnects clients whose events have waited too long (called once a second).
    pub fn check_stalls(&mut self, now: Instant) {
        let stuck: Vec<(u64, Stuck)> = self
            .sessions
            .iter()
            .filter_map(|(id, s)| Some((*id, s.backlog.stuck(now, &self.limits)?)))
            .collect();
        for (id, why) in stuck {
            self.drop_slow(id, why);
        }
    }

    fn drop_slow(&mut self, id: u64, why: Stuck) {
        if let Some(s) = self.sessions.get(&id) {
            let p = s.conn.get_ref().peer();
            warn!(
                "ipc: conn {id} ({}:{} pid {}) does not read its events ({why}); disconnecting it",
                p.uid, p.gid, p.pid
            );
            self.stats.slow_clients += 1;
            self.drop_session(id);
        }
    }

    /// Closes `id` (after finalize, a refused hello, a failure). The services hear of it
    /// through [`Ipc::take_dead`]. False if it was already gone.
    pub fn drop_session(&mut self, id: u64) -> bool {
        let Some(mut s) = self.sessions.remove(&id) else {
            return false;
        };
        self.stats.events_dropped += s.backlog.clear() as u64;
        self.dead.push((id, s.role));
        true
    }

    /// Connections dropped since the last call.
    pub fn take_dead(&mut self) -> Vec<(u64, Role)> {
        core::mem::take(&mut self.dead)
    }
}

/// Notes session `id` for [`Ipc::flush_wakes`] if its last operation collected a wake-up.
fn note_wake(to_wake: &mut Vec<u64>, id: u64, s: &mut Session) {
    if !s.wake_noted && s.conn.wake_pending() {
        s.wake_noted = true;
        to_wake.push(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: u64) -> Instant {
        Instant::from_micros(s * 1_000_000)
    }

    /// A client ring with room for `room` events.
    struct Ring {
        room: usize,
        got: Vec<Bytes>,
    }

    impl Ring {
        fn send(&mut self, b: &[u8]) -> Result<(), SendError> {
            if self.room == 0 {
                return Err(SendError::Full);
            }
            self.room -= 1;
            self.got.push(Bytes::copy_from_slice(b));
            Ok(())
        }
    }

    fn ev(i: u8) -> Bytes {
        Bytes::from(vec![i; 100])
    }

    #[test]
    fn events_wait_in_order_and_go_when_the_client_reads() {
        let mut ring = Ring {
            room: 2,
            got: Vec::new(),
        };
        let mut b = Backlog::default();
        let limits = Limits::default();
        for i in 0..5 {
            let r = b.offer(ev(i), t(1), |x| ring.send(x)).unwrap();
            assert_eq!(
                r,
                if i < 2 {
                    Offered::Sent
                } else {
                    Offered::Queued
                }
            );
        }
        assert_eq!((b.len(), b.bytes()), (3, 300));
        // The client reads one: one goes, the rest keep waiting, in order.
        ring.room = 1;
        assert_eq!(b.resume(t(2), |x| ring.send(x)).unwrap(), 1);
        // A new event queues behind the waiting ones even if there were room.
        ring.room = 10;
        assert_eq!(
            b.offer(ev(5), t(2), |_| panic!("must queue")),
            Ok(Offered::Queued)
        );
        assert_eq!(b.resume(t(3), |x| ring.send(x)).unwrap(), 3);
        let order: Vec<u8> = ring.got.iter().map(|e| e[0]).collect();
        assert_eq!(order, [0, 1, 2, 3, 4, 5]);
        assert!(b.is_empty());
        assert_eq!(b.stuck(t(100), &limits), None);
    }

    #[test]
    fn a_client_that_never_reads_is_stuck_by_count_bytes_or_time() {
        let limits = Limits {
            events: 4,
            bytes: 250,
            stall: Duration::from_secs(10),
        };
        let full = |_: &[u8]| Err(SendError::Full);
        let mut b = Backlog::default();
        b.offer(ev(0), t(0), full).unwrap();
        b.offer(ev(1), t(1), full).unwrap();
        assert_eq!(b.stuck(t(5), &limits), None);
        b.offer(ev(2), t(2), full).unwrap();
        assert_eq!(b.stuck(t(5), &limits), Some(Stuck::Bytes(300)));

        let mut b = Backlog::default();
        for i in 0..5 {
            b.offer(Bytes::from_static(b"x"), t(i), full).unwrap();
        }
        assert_eq!(b.stuck(t(5), &limits), Some(Stuck::Events(5)));

        // Time counts from the last progress, not from the first wait.
        let mut b = Backlog::default();
        b.offer(ev(0), t(0), full).unwrap();
        b.offer(ev(1), t(0), full).unwrap();
        assert_eq!(b.stuck(t(10), &limits), None);
        assert!(matches!(b.stuck(t(11), &limits), Some(Stuck::Stalled(_))));
        let mut room = 1;
        let one = |_: &[u8]| {
            if room == 0 {
                return Err(SendError::Full);
            }
            room -= 1;
            Ok(())
        };
        assert_eq!(b.resume(t(11), one).unwrap(), 1);
        assert_eq!(b.stuck(t(20), &limits), None);
        assert!(b.stuck(t(22), &limits).is_some());
        assert_eq!(b.clear(), 1);
        assert_eq!(b.stuck(t(100), &limits), None);
    }

    #[test]
    fn a_closed_connection_is_an_error_and_oversized_events_are_dropped() {
        let mut b = Backlog::default();
        let closed = SendError::Closed(ConnError::Disconnected);
        assert_eq!(b.offer(ev(0), t(0), |_| Err(closed)), Err(closed));
        let big = |_: &[u8]| Err(SendError::TooLarge { len: 100, max: 10 });
        assert_eq!(b.offer(ev(0), t(0), big), Ok(Offered::TooLarge));
        assert!(b.is_empty());
    }

    #[test]
    fn grants_become_the_access_policy() {
        let grant = |uid, gid, access| UidGid {
            uid,
            gid,
            access,
            line: 1,
        };
        let p = policy(&[
            grant(Some(1000), Some(100), Access::Full),
            grant(Some(1001), None, Access::Read),
            grant(Some(1001), None, Access::Full),
            grant(Some(1002), None, Access::Read),
        ]);
        let peer = |uid, gid| ipc_shm::Credentials { pid: 1, uid, gid };
        assert_eq!(p.check(&peer(1000, 5)), Permission::FULL);
        assert_eq!(p.check(&peer(7, 100)), Permission::FULL);
        assert_eq!(p.check(&peer(1001, 5)), Permission::FULL);
        assert_eq!(p.check(&peer(1002, 5)), Permission::READ);
        assert_eq!(p.check(&peer(65534, 65534)), Permission::NONE);
        assert_eq!(p.check(&peer(0, 1)), Permission::FULL);
    }

    #[test]
    fn the_server_fits_the_rings_largest_message() {
        let c = server_config(1 << 20);
        assert_eq!(c.max_message, ipc_shm::DEFAULT_MAX_MESSAGE);
        assert_eq!(c.rings, RingSizes::default());
        let c = server_config(5 << 20);
        assert!(c.max_message > 5 << 20);
        assert!(c.rings.request >= c.max_message + 8);
        assert!(c.rings.event >= c.rings.request);
    }
}
