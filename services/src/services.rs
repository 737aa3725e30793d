//! [`Services`]: the dispatcher (corosync's executive minus the I/O). It owns the engines,
//! routes ring deliveries and client connections to them, runs the sync protocol after
//! every configuration change, and queues what the engines want done for the node.
//!
//! # The sync protocol (corosync `exec/sync.c`)
//!
//! On a **transitional** configuration: abort the round in progress, if any (every engine
//! that got `sync_init` and no `sync_activate` gets `sync_abort`), and remember the
//! transitional members. On the **regular** configuration that follows:
//!
//! 1. *service build*: multicast `ServiceList { ring_id, my engines }` and call `sync_init`
//!    on every engine, in service-id order, with `transitional ∩ members`, `members` and
//!    the ring id;
//! 2. when every member's service list is delivered, the round's services are the union of
//!    them in ascending order (a service this node lacks is run as a no-op, so nodes with
//!    different engine sets still agree on the barriers, as corosync's dummy entries);
//! 3. for each service in turn: call `sync_process` until it returns `Done` (again after
//!    every delivery while it is `Pending`), then multicast `Barrier { ring_id, service }`;
//!    when every member's barrier for it is delivered, call `sync_activate`; next service;
//! 4. after the last one the node is synchronised ("Completed service synchronization,
//!    ready to provide service.").
//!
//! Why it is consistent: the ring delivers every member's messages of one configuration in
//! one total order and each sender's in the order sent, so every sync message a member
//! multicast before its barrier is delivered before that barrier, everywhere; and a service
//! is activated at the delivery of the last barrier, the same point of the total order on
//! every member. Sync messages carry their ring id: one queued on a ring and delivered on a
//! later one is stale and dropped.

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;
use core::any::Any;
use core::fmt;

use bytes::Bytes;
use totem_proto::{Guarantee, NodeId, RingId, ServiceId};
use totem_ring::{Configuration, ConfigurationKind, Delivery, Event, Refused, SubmitError};

use crate::engine::{
    Action, ConnId, Credentials, Outbox, Outgoing, ServiceEngine, SyncProgress, service_id,
};
use crate::sync::SyncMessage;

/// Counters of the dispatcher (what node/ publishes under `runtime.services.`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Stats {
    /// Deliveries for a service id no engine here has (dropped).
    pub unknown_service: u64,
    /// Sync messages that did not decode (dropped).
    pub sync_undecodable: u64,
    /// Sync messages of another round, or out of place in this one (dropped).
    pub sync_stale: u64,
    /// Sync rounds started (regular configurations).
    pub sync_started: u64,
    /// Sync rounds completed.
    pub sync_completed: u64,
    /// Sync rounds aborted by a newer configuration.
    pub sync_aborted: u64,
    /// Multicasts the ring refused as too large (dropped; an engine bug).
    pub multicast_too_large: u64,
    /// Requests or disconnects for a connection the dispatcher does not know (dropped).
    pub unknown_conn: u64,
}

/// Why [`Services::add_engine`] refused an engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum AddEngineError {
    /// Another engine has this service id.
    Duplicate(ServiceId),
    /// The id is [`service_id::SYNC`], reserved for the sync protocol.
    Reserved(ServiceId),
}

impl fmt::Display for AddEngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Duplicate(s) => write!(f, "service id {} is already taken", s.0),
            Self::Reserved(s) => write!(f, "service id {} is reserved for sync", s.0),
        }
    }
}

impl core::error::Error for AddEngineError {}

/// Why [`Services::handle_connect`] refused a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ConnectError {
    /// No engine has this service id: the node should close the connection.
    UnknownService(ServiceId),
    /// The connection id is already in use (a node bug).
    DuplicateConn(ConnId),
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownService(s) => write!(f, "no service with id {}", s.0),
            Self::DuplicateConn(c) => write!(f, "{c} is already connected"),
        }
    }
}

impl core::error::Error for ConnectError {}

/// What one [`Services::flush_multicasts`] call did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Flushed {
    /// Multicasts the ring accepted.
    pub submitted: usize,
    /// Multicasts still waiting (the ring pushed back or is closed).
    pub pending: usize,
}

/// Where a sync round is.
#[derive(Debug)]
enum Phase {
    /// Waiting for every member's service list.
    ServiceBuild {
        heard: BTreeSet<NodeId>,
        services: BTreeSet<ServiceId>,
    },
    /// Running `services[idx]`: its `sync_process`, then the barrier.
    Process {
        services: Vec<ServiceId>,
        idx: usize,
        barrier_sent: bool,
        barriers: BTreeSet<NodeId>,
    },
}

/// One synchronisation after a regular configuration.
#[derive(Debug)]
struct Round {
    ring_id: RingId,
    members: Vec<NodeId>,
    /// Engines that got `sync_init` and neither `sync_activate` nor `sync_abort` yet.
    inited: BTreeSet<ServiceId>,
    phase: Phase,
}

/// The service dispatcher: several [`ServiceEngine`]s behind one sans-IO interface.
///
/// # Method groups
/// * setup: [`new`](Self::new), [`add_engine`](Self::add_engine);
/// * getters: [`node_id`](Self::node_id), [`engine`](Self::engine),
///   [`is_synchronized`](Self::is_synchronized), [`ring_id`](Self::ring_id),
///   [`stats`](Self::stats), [`pending_multicasts`](Self::pending_multicasts);
/// * inputs: [`handle_ring_event`](Self::handle_ring_event) (or its two halves
///   [`handle_delivery`](Self::handle_delivery) and
///   [`handle_configuration`](Self::handle_configuration)),
///   [`handle_connect`](Self::handle_connect), [`handle_request`](Self::handle_request),
///   [`handle_disconnect`](Self::handle_disconnect),
///   [`set_flow_control`](Self::set_flow_control);
/// * outputs: [`flush_multicasts`](Self::flush_multicasts) (to the ring) and
///   [`poll_action`](Self::poll_action) (to the clients).
///
/// # Driving it
/// Feed every ring event in the order `Ring::poll_event` returns them. After any input,
/// call `flush_multicasts` with the ring's `offer`, then `poll_action` until `None` and
/// carry each action out. A multicast the ring pushes back on stays queued, in order, for
/// the next `flush_multicasts` (call it again once the ring has sent some of its queue);
/// while any is queued, engines see flow control as enabled.
#[derive(Debug)]
pub struct Services {
    node_id: NodeId,
    engines: BTreeMap<ServiceId, Box<dyn ServiceEngine>>,
    conns: BTreeMap<ConnId, ServiceId>,
    out: Outbox,
    /// Members of the last transitional configuration, until the regular one uses them.
    transitional: Option<Vec<NodeId>>,
    round: Option<Round>,
    /// Ring id of the last completed round, cleared by a configuration change.
    synchronized: Option<RingId>,
    /// Flow control as the node asked for it, and as the engines were last told.
    flow_requested: bool,
    flow_told: bool,
    stats: Stats,
}

impl Services {
    /// A dispatcher with no engines, for node `node_id`.
    pub fn new(node_id: NodeId) -> Self {
        Self {
            node_id,
            engines: BTreeMap::new(),
            conns: BTreeMap::new(),
            out: Outbox::new(service_id::SYNC),
            transitional: None,
            round: None,
            synchronized: None,
            flow_requested: false,
            flow_told: false,
            stats: Stats::default(),
        }
    }

    /// Adds an engine. Add them all before the first ring event: an engine added during a
    /// sync round takes part from the next one.
    ///
    /// # Errors
    /// [`AddEngineError`] for a service id already taken or reserved.
    pub fn add_engine(&mut self, engine: Box<dyn ServiceEngine>) -> Result<(), AddEngineError> {
        let id = engine.service_id();
        if id == service_id::SYNC {
            return Err(AddEngineError::Reserved(id));
        }
        if self.engines.contains_key(&id) {
            return Err(AddEngineError::Duplicate(id));
        }
        self.engines.insert(id, engine);
        Ok(())
    }

    // ---- getters ----

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// The engine with service id `id`, if it is a `T`.
    pub fn engine<T: ServiceEngine>(&self, id: ServiceId) -> Option<&T> {
        let engine: &dyn Any = self.engines.get(&id)?.as_ref();
        engine.downcast_ref::<T>()
    }

    /// Runs `f` on the engine with service id `id`, if it is a `T`, with the outbox that
    /// engine's calls use (tagged with its id): how the node changes an engine's state
    /// from outside a ring event or a request (cmap: publishing statistics) and lets the
    /// engine tell its clients. Carry the actions out afterwards as after any input.
    pub fn with_engine<T: ServiceEngine, R>(
        &mut self,
        id: ServiceId,
        f: impl FnOnce(&mut T, &mut Outbox) -> R,
    ) -> Option<R> {
        let engine: &mut dyn Any = self.engines.get_mut(&id)?.as_mut();
        let engine = engine.downcast_mut::<T>()?;
        self.out.set_service(id);
        Some(f(engine, &mut self.out))
    }

    /// Whether the last configuration's sync round completed (and no change came since):
    /// the node provides service.
    pub fn is_synchronized(&self) -> bool {
        self.synchronized.is_some()
    }

    /// The ring id of the configuration being synchronised, or of the last one completed.
    pub fn ring_id(&self) -> Option<RingId> {
        self.round.as_ref().map(|r| r.ring_id).or(self.synchronized)
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Multicasts waiting to be submitted to the ring.
    pub fn pending_multicasts(&self) -> usize {
        self.out.multicasts_len()
    }

    // ---- inputs ----

    /// An event from the ring, as `Ring::poll_event` returned it. `RingSeqUsed` is the
    /// node's business and ignored here.
    pub fn handle_ring_event(&mut self, event: Event) {
        match event {
            Event::Deliver(d) => self.handle_delivery(d),
            Event::Configuration(c) => self.handle_configuration(&c),
            Event::RingSeqUsed(_) => {}
        }
    }

    /// A message in total order: to its engine, or to the sync protocol.
    pub fn handle_delivery(&mut self, delivery: Delivery) {
        if delivery.service == service_id::SYNC {
            self.on_sync_message(delivery.sender, &delivery.payload);
        } else if let Some(engine) = self.engines.get_mut(&delivery.service) {
            self.out.set_service(delivery.service);
            engine.on_deliver(delivery, &mut self.out);
        } else {
            self.stats.unknown_service += 1;
            debug!(
                "services: dropped a message for unknown service {} from node {}",
                delivery.service.0, delivery.sender.0
            );
        }
        // An engine whose sync_process is pending may be waiting for exactly this.
        self.step();
    }

    /// A configuration change.
    pub fn handle_configuration(&mut self, config: &Configuration) {
        // A change of configuration means the previous one's state is not settled any more.
        self.synchronized = None;
        match config.kind {
            ConfigurationKind::Transitional => {
                self.abort_round();
                self.transitional = Some(config.members.clone());
            }
            ConfigurationKind::Regular => {
                // The ring always announces a transitional configuration first; if one is
                // missing, the round in progress still cannot go on.
                self.abort_round();
                let trans: Vec<NodeId> = self
                    .transitional
                    .take()
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|n| config.members.binary_search(n).is_ok())
                    .collect();
                self.start_round(&trans, &config.members, config.ring_id);
            }
        }
    }

    /// A client connected to `service`, with the kernel's credentials for it.
    ///
    /// # Errors
    /// [`ConnectError`] for an unknown service or a connection id in use; nothing changed.
    pub fn handle_connect(
        &mut self,
        service: ServiceId,
        conn: ConnId,
        creds: Credentials,
    ) -> Result<(), ConnectError> {
        if self.conns.contains_key(&conn) {
            return Err(ConnectError::DuplicateConn(conn));
        }
        let engine = self
            .engines
            .get_mut(&service)
            .ok_or(ConnectError::UnknownService(service))?;
        self.conns.insert(conn, service);
        self.out.set_service(service);
        engine.on_connect(conn, creds, &mut self.out);
        Ok(())
    }

    /// A request from a connected client (its bytes, untrusted).
    pub fn handle_request(&mut self, conn: ConnId, request: Bytes) {
        let Some(engine) = self.conns.get(&conn).and_then(|s| self.engines.get_mut(s)) else {
            self.stats.unknown_conn += 1;
            warn!("services: request on unknown {}", conn);
            return;
        };
        self.out.set_service(engine.service_id());
        engine.on_request(conn, request, &mut self.out);
    }

    /// The connection closed, or its process died: the engine releases what it held.
    pub fn handle_disconnect(&mut self, conn: ConnId) {
        let Some(service) = self.conns.remove(&conn) else {
            self.stats.unknown_conn += 1;
            return;
        };
        if let Some(engine) = self.engines.get_mut(&service) {
            self.out.set_service(service);
            engine.on_disconnect(conn, &mut self.out);
        }
    }

    /// The node's view of the ring's send queue: `true` when it is above the node's
    /// threshold. Engines see flow control enabled while this is set or while multicasts
    /// the ring pushed back on are queued here.
    pub fn set_flow_control(&mut self, enabled: bool) {
        self.flow_requested = enabled;
        self.update_flow_control();
    }

    /// Whether client multicasts should wait before they are handed to the engines: flow
    /// control is on (the node's ring queue is over its threshold, or multicasts the ring
    /// pushed back on wait here) or an engine is
    /// [`backlogged`](ServiceEngine::backlogged). A node that stops taking multicast
    /// requests meanwhile keeps them in order and in bounded memory (the clients' request
    /// rings) where TRY_AGAIN would make a pipelining client reorder or lose them.
    pub fn busy(&self) -> bool {
        self.flow_told || self.engines.iter().any(|(_, e)| e.backlogged())
    }

    // ---- outputs ----

    /// Submits queued multicasts, oldest first, through `offer` (the ring's
    /// [`offer`](totem_ring::Ring::offer)), until it pushes back. A message refused as too
    /// large is dropped and counted (an engine bug: engines check sizes against the ring's
    /// limit before queuing).
    pub fn flush_multicasts(
        &mut self,
        mut offer: impl FnMut(ServiceId, Bytes, Guarantee) -> Result<(), Refused>,
    ) -> Flushed {
        let mut flushed = Flushed::default();
        // Each message moves to the ring (a clone would cost a unique buffer a shared
        // header: an allocation per message); a refused one comes back to the front.
        while let Some(m) = self.out.pop_multicast() {
            let (service, guarantee) = (m.service, m.guarantee);
            match offer(service, m.payload, guarantee) {
                Ok(()) => flushed.submitted += 1,
                Err(Refused {
                    error: SubmitError::TooLarge { max },
                    payload,
                }) => {
                    self.stats.multicast_too_large += 1;
                    error!(
                        "services: service {} multicast {} bytes, above the ring's {}; dropped",
                        service.0,
                        payload.len(),
                        max
                    );
                }
                Err(Refused { payload, .. }) => {
                    self.out.unpop_multicast(Outgoing {
                        service,
                        payload,
                        guarantee,
                    });
                    break;
                }
            }
        }
        flushed.pending = self.out.multicasts_len();
        self.update_flow_control();
        flushed
    }

    /// The next thing to do for a client.
    #[must_use]
    pub fn poll_action(&mut self) -> Option<Action> {
        self.out.pop_action()
    }

    // ---- the sync protocol ----

    fn start_round(&mut self, transitional: &[NodeId], members: &[NodeId], ring_id: RingId) {
        self.stats.sync_started += 1;
        debug!(
            "services: sync for ring {} with {} members ({} from our configuration)",
            ring_id,
            members.len(),
            transitional.len()
        );
        let mine: Vec<ServiceId> = self.engines.keys().copied().collect();
        self.out.set_service(service_id::SYNC);
        self.out.multicast(
            SyncMessage::ServiceList {
                ring_id,
                services: mine.clone(),
            }
            .emit(),
            Guarantee::Agreed,
        );
        for (id, engine) in &mut self.engines {
            self.out.set_service(*id);
            engine.sync_init(transitional, members, ring_id, &mut self.out);
        }
        self.round = Some(Round {
            ring_id,
            members: members.to_vec(),
            inited: mine.into_iter().collect(),
            phase: Phase::ServiceBuild {
                heard: BTreeSet::new(),
                services: BTreeSet::new(),
            },
        });
    }

    fn abort_round(&mut self) {
        let Some(round) = self.round.take() else {
            return;
        };
        self.stats.sync_aborted += 1;
        debug!("services: sync for ring {} aborted", round.ring_id);
        for id in round.inited {
            if let Some(engine) = self.engines.get_mut(&id) {
                self.out.set_service(id);
                engine.sync_abort(&mut self.out);
            }
        }
    }

    fn on_sync_message(&mut self, sender: NodeId, payload: &[u8]) {
        let msg = match SyncMessage::parse(payload) {
            Ok(m) => m,
            Err(e) => {
                self.stats.sync_undecodable += 1;
                warn!(
                    "services: undecodable sync message from node {}: {}",
                    sender.0, e
                );
                return;
            }
        };
        let Some(round) = self.round.as_mut() else {
            self.stats.sync_stale += 1;
            return;
        };
        if msg.ring_id() != round.ring_id || round.members.binary_search(&sender).is_err() {
            // corosync: "barrier for old ring - discarding".
            self.stats.sync_stale += 1;
            return;
        }
        match (msg, &mut round.phase) {
            (
                SyncMessage::ServiceList {
                    services: theirs, ..
                },
                Phase::ServiceBuild { heard, services },
            ) => {
                heard.insert(sender);
                services.extend(theirs);
                if heard.len() == round.members.len() {
                    // Every member's list is in: the union, ascending, is the round's
                    // service order (corosync sorts by service id too).
                    let services = core::mem::take(services).into_iter().collect();
                    round.phase = Phase::Process {
                        services,
                        idx: 0,
                        barrier_sent: false,
                        barriers: BTreeSet::new(),
                    };
                    self.step();
                }
            }
            (
                SyncMessage::Barrier { service, .. },
                Phase::Process {
                    services,
                    idx,
                    barriers,
                    ..
                },
            ) if services.get(*idx) == Some(&service) => {
                barriers.insert(sender);
                if barriers.len() == round.members.len() {
                    self.activate_current();
                }
            }
            _ => {
                // A service list after the build, or a barrier for another service: cannot
                // happen among correct members of one ring (barriers follow the total
                // order), so it is counted, not trusted.
                self.stats.sync_stale += 1;
            }
        }
    }

    /// Every member's barrier for the current service is in: activate it, move on.
    fn activate_current(&mut self) {
        let Some(Round {
            phase:
                Phase::Process {
                    services,
                    idx,
                    barrier_sent,
                    barriers,
                },
            inited,
            ..
        }) = self.round.as_mut()
        else {
            return;
        };
        if let Some(&service) = services.get(*idx) {
            inited.remove(&service);
            if let Some(engine) = self.engines.get_mut(&service) {
                self.out.set_service(service);
                engine.sync_activate(&mut self.out);
            }
        }
        *idx += 1;
        *barrier_sent = false;
        barriers.clear();
        self.step();
    }

    /// Runs the current service's `sync_process` if its barrier is not sent yet, and ends
    /// the round once every service is activated.
    fn step(&mut self) {
        let Some(round) = self.round.as_mut() else {
            return;
        };
        let Phase::Process {
            services,
            idx,
            barrier_sent,
            ..
        } = &mut round.phase
        else {
            return;
        };
        if *barrier_sent {
            return;
        }
        let Some(&service) = services.get(*idx) else {
            // Past the last service: the round is complete.
            let ring_id = round.ring_id;
            self.round = None;
            self.synchronized = Some(ring_id);
            self.stats.sync_completed += 1;
            info!(
                "services: ring {}: Completed service synchronization, ready to provide service.",
                ring_id
            );
            return;
        };
        let progress = match self.engines.get_mut(&service) {
            Some(engine) => {
                self.out.set_service(service);
                engine.sync_process(&mut self.out)
            }
            // A service another member runs and this node does not: nothing to do but
            // take part in its barrier.
            None => SyncProgress::Done,
        };
        if progress == SyncProgress::Done {
            *barrier_sent = true;
            self.out.set_service(service_id::SYNC);
            self.out.multicast(
                SyncMessage::Barrier {
                    ring_id: round.ring_id,
                    service,
                }
                .emit(),
                Guarantee::Agreed,
            );
        }
    }

    fn update_flow_control(&mut self) {
        let enabled = self.flow_requested || self.out.multicasts_len() > 0;
        if enabled != self.flow_told {
            self.flow_told = enabled;
            for (id, engine) in &mut self.engines {
                self.out.set_service(*id);
                engine.on_flow_control(enabled, &mut self.out);
            }
        }
    }
}
