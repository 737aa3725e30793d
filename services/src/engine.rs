//! The service-engine trait and what an engine hands back: [`Action`]s for its clients and
//! multicasts for the ring, both through an [`Outbox`].
//!
//! An engine is pure logic (corosync's `struct corosync_service_engine` without the
//! function pointers into the executive): it never touches a socket, the IPC or a clock.
//! Everything it learns comes in through the trait's methods, in the order the dispatcher
//! ([`crate::Services`]) calls them, and everything it wants done leaves through the
//! `Outbox` passed to each call.

use alloc::collections::VecDeque;
use core::any::Any;
use core::fmt;

use bytes::Bytes;
use totem_proto::{Guarantee, NodeId, RingId, ServiceId};
use totem_ring::Delivery;

/// The service ids of the engines, numbered as corosync's `enum corosync_service_types`
/// (`include/corosync/ipc_*.h`) so logs and tools line up, plus the one id this crate
/// reserves for the sync protocol itself.
pub mod service_id {
    use totem_proto::ServiceId;

    /// cfg: administration (`corosync-cfgtool`).
    pub const CFG: ServiceId = ServiceId(7);
    /// CPG: closed process groups.
    pub const CPG: ServiceId = ServiceId(8);
    /// cmap: the configuration and statistics map.
    pub const CMAP: ServiceId = ServiceId(9);
    /// quorum.
    pub const QUORUM: ServiceId = ServiceId(10);
    /// votequorum.
    pub const VOTEQUORUM: ServiceId = ServiceId(13);
    /// The sync protocol's own messages (service lists and barriers). corosync sends them
    /// in a separate totempg group ("sync"); here they travel under this reserved id, which
    /// no engine may use.
    pub const SYNC: ServiceId = ServiceId(0xffff);
}

/// A client connection, as numbered by the node (unique among live connections of all
/// services; never reused while the engine may still know it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ConnId(pub u64);

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn#{}", self.0)
    }
}

/// Who is at the other end of a connection, as the kernel says (`SO_PEERCRED`), not as the
/// client claims. CPG names a process by `(node id, pid)` with this pid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Credentials {
    /// Process id.
    pub pid: u32,
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

/// Something the node must do for a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send `bytes` as the response to the connection's current request (corosync's
    /// `ipc_response_send`). Every request gets exactly one, in request order.
    Reply {
        /// The connection.
        conn: ConnId,
        /// The encoded response.
        bytes: Bytes,
    },
    /// Queue `bytes` on the connection's event (dispatch) channel (`ipc_dispatch_send`):
    /// an asynchronous callback such as a CPG delivery or confchg.
    Event {
        /// The connection.
        conn: ConnId,
        /// The encoded event. For a CPG delivery, the very buffer the ring delivered.
        bytes: Bytes,
    },
    /// Close the connection (after finalize). The node calls
    /// [`Services::handle_disconnect`](crate::Services::handle_disconnect) once it is closed.
    Close {
        /// The connection.
        conn: ConnId,
    },
}

#[cfg(feature = "defmt")]
impl defmt::Format for Action {
    fn format(&self, f: defmt::Formatter<'_>) {
        match self {
            Self::Reply { conn, bytes } => {
                defmt::write!(f, "Reply {{ conn: {}, len: {} }}", conn, bytes.len())
            }
            Self::Event { conn, bytes } => {
                defmt::write!(f, "Event {{ conn: {}, len: {} }}", conn, bytes.len())
            }
            Self::Close { conn } => defmt::write!(f, "Close {{ conn: {} }}", conn),
        }
    }
}

/// A message an engine wants multicast: the node submits it to the ring under `service`
/// with `guarantee` (`Ring::submit`), in the order the engines produced them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The engine's service id.
    pub service: ServiceId,
    /// The message (shared, never copied on its way to the ring).
    pub payload: Bytes,
    /// Agreed or safe.
    pub guarantee: Guarantee,
}

#[cfg(feature = "defmt")]
impl defmt::Format for Outgoing {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(
            f,
            "Outgoing {{ service: {}, len: {}, guarantee: {} }}",
            self.service,
            self.payload.len(),
            self.guarantee
        )
    }
}

/// Where an engine puts what it wants done. One per dispatcher, lent to each engine call
/// with the engine's service id set, so an engine cannot multicast under another's id.
#[derive(Debug)]
pub struct Outbox {
    service: ServiceId,
    actions: VecDeque<Action>,
    multicasts: VecDeque<Outgoing>,
}

impl Outbox {
    /// An empty outbox for the engine `service` (the dispatcher owns the real one; engine
    /// unit tests make their own).
    pub fn new(service: ServiceId) -> Self {
        Self {
            service,
            actions: VecDeque::new(),
            multicasts: VecDeque::new(),
        }
    }

    /// The service the multicasts are tagged with.
    pub fn service(&self) -> ServiceId {
        self.service
    }

    pub(crate) fn set_service(&mut self, service: ServiceId) {
        self.service = service;
    }

    /// Multicast `payload` to every node's instance of this engine, in total order.
    pub fn multicast(&mut self, payload: Bytes, guarantee: Guarantee) {
        self.multicasts.push_back(Outgoing {
            service: self.service,
            payload,
            guarantee,
        });
    }

    /// Respond to the connection's current request.
    pub fn reply(&mut self, conn: ConnId, bytes: Bytes) {
        self.actions.push_back(Action::Reply { conn, bytes });
    }

    /// Queue an event (callback) for the connection.
    pub fn event(&mut self, conn: ConnId, bytes: Bytes) {
        self.actions.push_back(Action::Event { conn, bytes });
    }

    /// Ask the node to close the connection.
    pub fn close(&mut self, conn: ConnId) {
        self.actions.push_back(Action::Close { conn });
    }

    /// The oldest client action.
    pub fn pop_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The oldest multicast.
    pub fn pop_multicast(&mut self) -> Option<Outgoing> {
        self.multicasts.pop_front()
    }

    /// Puts back a multicast [`Outbox::pop_multicast`] took, as the oldest again.
    pub fn unpop_multicast(&mut self, m: Outgoing) {
        self.multicasts.push_front(m);
    }

    /// The oldest multicast, left in place.
    pub fn peek_multicast(&self) -> Option<&Outgoing> {
        self.multicasts.front()
    }

    /// Multicasts waiting for the ring.
    pub fn multicasts_len(&self) -> usize {
        self.multicasts.len()
    }

    /// Client actions waiting for the node.
    pub fn actions_len(&self) -> usize {
        self.actions.len()
    }
}

/// What [`ServiceEngine::sync_process`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SyncProgress {
    /// This engine's part of the synchronisation is sent (corosync's `sync_process`
    /// returning 0): the dispatcher multicasts its barrier for the engine.
    Done,
    /// Not yet (corosync's -1): call again after the next delivery.
    Pending,
}

/// One service engine: its messages in total order, its clients' requests, and its part
/// in the synchronisation after each configuration change (corosync `exec/sync.c`).
///
/// # Call order
/// The dispatcher guarantees, per engine:
///
/// * `on_connect` before any `on_request` of a connection, `on_disconnect` once at the end
///   (also after the engine asked to close it); nothing for that connection after;
/// * `on_deliver` for every message of this engine's service id, in the ring's total order
///   and at every node in the same order, whatever the sync state;
/// * after each regular configuration: `sync_init` once; later, when all engines before it
///   in service-id order are activated, `sync_process` until it returns
///   [`SyncProgress::Done`] (again after each delivery while it is `Pending`); then,
///   when every member's barrier for this engine is delivered, `sync_activate`. Each
///   `sync_init` is followed by exactly one `sync_activate` or one `sync_abort` (a newer
///   configuration arrived first), and `sync_activate` happens at the same point of the
///   total order on every member of the configuration.
///
/// An engine must refuse, queue or otherwise make safe any client operation that needs a
/// settled membership between `sync_init` and `sync_activate` (and before the first
/// activation). What CPG does is in the [`crate::cpg`] docs.
pub trait ServiceEngine: Any + fmt::Debug {
    /// The engine's service id: its messages on the ring and its IPC service.
    fn service_id(&self) -> ServiceId;

    /// A short name for logs ("cpg").
    fn name(&self) -> &'static str;

    /// A client connected to this service.
    fn on_connect(&mut self, conn: ConnId, creds: Credentials, out: &mut Outbox);

    /// A request from a client, as the bytes it sent (untrusted: decode errors are answered,
    /// never a panic). Every request is answered with exactly one [`Action::Reply`].
    fn on_request(&mut self, conn: ConnId, request: Bytes, out: &mut Outbox);

    /// The connection is gone (closed, or the client process died): its state goes, and
    /// whatever it held cluster-wide is released at once (CPG: it leaves its groups).
    fn on_disconnect(&mut self, conn: ConnId, out: &mut Outbox);

    /// A message of this service, in total order.
    fn on_deliver(&mut self, delivery: Delivery, out: &mut Outbox);

    /// A new regular configuration: `transitional` are the members that came from this
    /// node's previous configuration (corosync's trans list, ∩ `members`), `members` the new
    /// configuration's members, both ascending.
    fn sync_init(
        &mut self,
        transitional: &[NodeId],
        members: &[NodeId],
        ring_id: RingId,
        out: &mut Outbox,
    );

    /// Do (more of) this engine's synchronisation: typically multicast this node's part of
    /// the replicated state. Called until it returns [`SyncProgress::Done`].
    fn sync_process(&mut self, out: &mut Outbox) -> SyncProgress;

    /// Every member finished `sync_process` and all their sync messages are delivered:
    /// install the synchronised state and tell the clients.
    fn sync_activate(&mut self, out: &mut Outbox);

    /// The synchronisation begun by the last `sync_init` will not complete: a newer
    /// configuration arrived. Drop its partial state; a `sync_init` follows.
    fn sync_abort(&mut self, out: &mut Outbox);

    /// The ring's send queue crossed the node's threshold (`true`) or drained below it
    /// (`false`). Engines that report flow control to clients (CPG) keep it.
    fn on_flow_control(&mut self, enabled: bool, out: &mut Outbox) {
        let _ = (enabled, out);
    }

    /// Whether the engine would refuse a client's next multicast for lack of room (CPG:
    /// holding messages during a sync with its hold budget spent). While any engine says
    /// so, or flow control is on, the node takes no multicast request from clients: they
    /// wait in order in the clients' request rings instead of failing with TRY_AGAIN
    /// ([`crate::Services::busy`]).
    fn backlogged(&self) -> bool {
        false
    }
}
