//! [`Appliance`]: the ring, the service dispatcher with the CPG engine, and the smoltcp
//! transport, composed in one driver loop (STYLE point 11: read `now` once, feed the
//! inputs, drain the outputs, report the next deadline).
//!
//! The in-process application is one CPG connection of the dispatcher, [`APP_CONN`], fed
//! with encoded CPG requests exactly as totemd feeds an IPC client's: so the engine, its
//! sync protocol and its wire formats are the ones a Linux node runs, byte for byte, and
//! the other nodes see the appliance's application as an ordinary CPG process
//! `(node id, app_pid)`.
//!
//! # One turn ([`Appliance::turn`])
//!
//! 1. `now` from the integrator's [`Clock`], once;
//! 2. `transport.poll(now)`: device → sockets; frames that waited for socket room go out;
//! 3. every received datagram to the ring, tokens last (messages already received must be
//!    seen before the token that would otherwise request them again, as totemd and
//!    corosync's `totemnet_recv_flush` do); the ring's deadline, if it passed;
//! 4. the ring's events in order: `RingSeqUsed` stored through the integrator's
//!    [`RingSeqStore`] *before* any frame of that ring leaves, configurations and
//!    deliveries to the dispatcher; the dispatcher's multicasts to the ring, its actions
//!    for the application to [`AppEvent`]s;
//! 5. the ring's frames to the transport, `transport.poll(now)` again: sockets → device;
//! 6. the next deadline: the earlier of the ring's and the transport's.
//!
//! The integrator sleeps until that deadline or until the device has a frame (an
//! interrupt), whichever comes first, then turns again. Application calls
//! ([`Appliance::join`], [`Appliance::mcast`], ...) may come between turns; turn once after
//! them before sleeping, so their frames leave.

use alloc::collections::VecDeque;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use bytes::Bytes;
use services::cpg::Cpg;
use services::cpg::wire::{
    Confchg, CpgEvent, CpgGuarantee, CsError, Member, Request, Response, ResponseBody,
};
use services::{Action, ConnId, Credentials, GroupName, Services, service_id};
use totem_proto::time::{Duration, Instant};
use totem_proto::{MessageType, NodeId, RingId};
use totem_ring::{ConfigurationKind, Event, Ring, Transmit};
use totem_transport::{PeerAddr, Transport, TransportError};
use transport_smoltcp::smoltcp::iface::{Interface, SocketSet};
use transport_smoltcp::smoltcp::phy::Device;
use transport_smoltcp::smoltcp::socket::udp;
use transport_smoltcp::{MAX_FRAME, SmoltcpTransport};

use crate::config::ApplianceConfig;
use crate::platform::{Clock, RingSeqStore};

/// The dispatcher connection of the in-process application.
pub const APP_CONN: ConnId = ConnId(1);

/// When frames wait for room in the socket, turn again this soon even if nothing else is
/// due (smoltcp frees room as the device takes frames).
const RETRY_SEND: Duration = Duration::from_millis(1);

/// The smoltcp parts an integrator builds for its network device: the interface (with this
/// node's node-list address), the device, a socket set with one free slot, and the UDP
/// socket's receive and send buffers (each at least one [`MAX_FRAME`] datagram; see
/// transport-smoltcp's README for sizing). All storage is the integrator's: `static`s on a
/// microcontroller, `main`'s stack on a host.
pub struct Net<'a, D: Device> {
    /// The interface, created for `device`.
    pub iface: Interface,
    /// The network device.
    pub device: D,
    /// Sockets (one slot is taken here).
    pub sockets: SocketSet<'a>,
    /// The UDP socket's receive buffer.
    pub rx: udp::PacketBuffer<'a>,
    /// The UDP socket's send buffer.
    pub tx: udp::PacketBuffer<'a>,
}

impl<D: Device> fmt::Debug for Net<'_, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Net").finish_non_exhaustive()
    }
}

/// Why [`Appliance::new`] refused to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum StartError {
    /// The ring configuration is invalid.
    Ring(totem_ring::ConfigError),
    /// The transport refused its configuration or buffers.
    Transport(transport_smoltcp::SetupError),
    /// Frames of `frame_len` cannot cross this smoltcp build (`max` is [`MAX_FRAME`]).
    FrameTooLarge {
        /// The configured frame size.
        frame_len: usize,
        /// The largest the transport carries.
        max: usize,
    },
    /// The CPG engine refused the application's session.
    Cpg(CsError),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ring(e) => write!(f, "ring configuration: {e}"),
            Self::Transport(e) => write!(f, "transport: {e}"),
            Self::FrameTooLarge { frame_len, max } => write!(
                f,
                "frame_len {frame_len} is above what this smoltcp build carries ({max})"
            ),
            Self::Cpg(e) => write!(f, "CPG session refused: {e:?}"),
        }
    }
}

impl core::error::Error for StartError {}

/// Why [`Appliance::turn`] failed: the ring seq could not be persisted. Fatal: a node that
/// cannot persist its ring seq may reuse a ring id after a restart, so it must stop (totemd
/// exits the same way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PersistError<E> {
    /// The ring seq that was to be stored.
    pub seq: u64,
    /// The store's error.
    pub error: E,
}

impl<E: fmt::Debug> fmt::Display for PersistError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot persist ring seq {}: {:?}", self.seq, self.error)
    }
}

impl<E: fmt::Debug> core::error::Error for PersistError<E> {}

/// What the application learns, in the order it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppEvent {
    /// The ring installed a new regular configuration.
    Ring {
        /// Its ring id.
        ring_id: RingId,
        /// Its members, ascending.
        members: Vec<NodeId>,
    },
    /// A message to a group the application joined, in the ring's total order.
    Deliver {
        /// The group.
        group: GroupName,
        /// The sending process.
        sender: Member,
        /// The message.
        payload: Bytes,
    },
    /// A group the application joined changed members.
    Confchg(Confchg),
}

/// Counters of the driver loop (the ring, dispatcher and transport keep their own).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct ApplianceStats {
    /// Turns run.
    pub turns: u64,
    /// Datagrams handed to the ring.
    pub rx_datagrams: u64,
    /// Datagrams that did not fit the receive buffer (cut; the ring drops them).
    pub rx_truncated: u64,
    /// Receive errors of the transport.
    pub rx_errors: u64,
    /// Frames handed to the transport.
    pub tx_frames: u64,
    /// Frames the transport refused for good (too large, unknown node).
    pub tx_errors: u64,
    /// Events for the application that did not decode (a bug; dropped).
    pub bad_events: u64,
}

/// A totem node for a firmware: ring + CPG + smoltcp transport, driven by [`turn`].
///
/// [`turn`]: Self::turn
pub struct Appliance<'a, D: Device> {
    ring: Ring,
    services: Services,
    transport: SmoltcpTransport<'a, D>,
    /// Frames the transport pushed back on, oldest first.
    pending: VecDeque<Transmit>,
    /// One received datagram (allocated once: [`MAX_FRAME`] bytes).
    rx_buf: Vec<u8>,
    /// The token held back until the other datagrams of this turn are in, and its length.
    token: Option<(PeerAddr, usize)>,
    token_buf: Vec<u8>,
    /// The reply to the application's last request.
    reply: Option<Bytes>,
    events: VecDeque<AppEvent>,
    /// Ring queue bytes above which CPG answers mcast with `TRY_AGAIN`.
    flow_threshold: usize,
    stats: ApplianceStats,
}

impl<D: Device> fmt::Debug for Appliance<'_, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Appliance")
            .field("node", &self.ring.node_id())
            .field("state", &self.ring.state())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl<'a, D: Device> Appliance<'a, D> {
    /// Starts a node at `now`: the ring (in gather, looking for peers), the dispatcher with
    /// the CPG engine, the transport over `net`, and the application's CPG session.
    /// `last_ring_seq` is what the integrator's [`RingSeqStore`] loaded (0 on first boot).
    ///
    /// # Errors
    /// [`StartError`] for an invalid ring configuration, a transport that refuses its
    /// configuration or buffers, or frames too large for smoltcp.
    pub fn new(
        config: &ApplianceConfig<'a>,
        net: Net<'a, D>,
        now: Instant,
        last_ring_seq: u64,
    ) -> Result<Self, StartError> {
        let ring = Ring::new(&config.ring, now, last_ring_seq).map_err(StartError::Ring)?;
        let frame_len = ring.config().frame_len;
        if frame_len > MAX_FRAME {
            return Err(StartError::FrameTooLarge {
                frame_len,
                max: MAX_FRAME,
            });
        }
        let transport = SmoltcpTransport::new(
            &config.transport,
            net.iface,
            net.device,
            net.sockets,
            net.rx,
            net.tx,
        )
        .map_err(StartError::Transport)?;
        let node = config.ring.node_id;
        let mut services = Services::new(node);
        // A fresh dispatcher has no engine and CPG's id is not the reserved one: cannot fail.
        let _ = services.add_engine(alloc::boxed::Box::new(Cpg::new(node, config.cpg)));
        let creds = Credentials {
            pid: config.app_pid,
            uid: 0,
            gid: 0,
        };
        // CPG is registered and APP_CONN unused: cannot fail either.
        let _ = services.handle_connect(service_id::CPG, APP_CONN, creds);
        let flow_threshold = ring.config().send_queue_bytes / 2;
        let mut me = Self {
            ring,
            services,
            transport,
            pending: VecDeque::new(),
            rx_buf: vec![0; MAX_FRAME],
            token: None,
            token_buf: vec![0; MAX_FRAME],
            reply: None,
            events: VecDeque::new(),
            flow_threshold,
            stats: ApplianceStats::default(),
        };
        me.request(&Request::Initialize {
            flags: 0,
            pid: config.app_pid,
        })
        .map_err(StartError::Cpg)?;
        info!(
            "appliance: node {} started, cluster id {}, frame {} bytes",
            node.0, config.ring.cluster_id, frame_len
        );
        Ok(me)
    }

    // ---- getters ----

    /// The ring (state, members, ring id, statistics).
    pub fn ring(&self) -> &Ring {
        &self.ring
    }

    /// The dispatcher (sync state, statistics).
    pub fn services(&self) -> &Services {
        &self.services
    }

    /// The transport (its statistics, the smoltcp interface).
    pub fn transport(&self) -> &SmoltcpTransport<'a, D> {
        &self.transport
    }

    /// The network device, e.g. to wait for its next frame.
    pub fn device_mut(&mut self) -> &mut D {
        self.transport.device_mut()
    }

    /// The driver loop's counters.
    pub fn stats(&self) -> &ApplianceStats {
        &self.stats
    }

    /// The members of `group` as this node's CPG view has them.
    pub fn members(&self, group: &GroupName) -> Vec<Member> {
        self.services
            .engine::<Cpg>(service_id::CPG)
            .map(|cpg| cpg.members(group))
            .unwrap_or_default()
    }

    // ---- the driver loop ----

    /// One turn of the driver loop (see the module doc); returns when to turn again at the
    /// latest (`None`: only when the device has a frame).
    ///
    /// # Errors
    /// The ring seq could not be stored: stop the node (see [`PersistError`]).
    pub fn turn<C: Clock, S: RingSeqStore>(
        &mut self,
        clock: &mut C,
        store: &mut S,
    ) -> Result<Option<Instant>, PersistError<S::Error>> {
        let now = clock.now();
        self.stats.turns += 1;
        self.transport.poll(now);
        self.send_pending();
        self.receive(now);
        if self.ring.poll_timeout().is_some_and(|t| t <= now) {
            self.ring.handle_timeout(now);
        }
        self.drain(store)?;
        self.transport.poll(now);
        let mut next = earliest(self.ring.poll_timeout(), self.transport.poll_at(now));
        if !self.pending.is_empty() {
            next = earliest(next, Some(now + RETRY_SEND));
        }
        Ok(next)
    }

    /// Feeds every waiting datagram to the ring, the last token after the rest.
    fn receive(&mut self, now: Instant) {
        loop {
            let meta = match self.transport.recv(&mut self.rx_buf) {
                Ok(Some(meta)) => meta,
                Ok(None) => break,
                Err(e) => {
                    self.stats.rx_errors += 1;
                    warn!("appliance: receive error: {}", e);
                    break;
                }
            };
            self.stats.rx_datagrams += 1;
            if meta.truncated {
                self.stats.rx_truncated += 1;
            }
            let frame = &self.rx_buf[..meta.len];
            // Byte 3 of the common header is the message type (totem-proto `Header`).
            let is_token = frame
                .get(3)
                .is_some_and(|t| MessageType::from(*t) == MessageType::OrfToken);
            if is_token {
                // A second token in one turn: the first goes in now, in arrival order.
                if let Some((from, len)) = self.token.take() {
                    self.ring.handle_datagram(now, from, &self.token_buf[..len]);
                }
                self.token_buf[..meta.len].copy_from_slice(frame);
                self.token = Some((meta.from, meta.len));
            } else {
                self.ring.handle_datagram(now, meta.from, frame);
            }
        }
        if let Some((from, len)) = self.token.take() {
            self.ring.handle_datagram(now, from, &self.token_buf[..len]);
        }
    }

    /// The ring's events (persisted, to the dispatcher, to the application), then its
    /// frames.
    fn drain<S: RingSeqStore>(&mut self, store: &mut S) -> Result<(), PersistError<S::Error>> {
        while let Some(event) = self.ring.poll_event() {
            match &event {
                Event::RingSeqUsed(seq) => {
                    store
                        .store(*seq)
                        .map_err(|error| PersistError { seq: *seq, error })?;
                }
                Event::Configuration(c) if c.kind == ConfigurationKind::Regular => {
                    info!(
                        "appliance: ring {}.{} with {} members",
                        c.ring_id.rep.0,
                        c.ring_id.seq,
                        c.members.len()
                    );
                    self.events.push_back(AppEvent::Ring {
                        ring_id: c.ring_id,
                        members: c.members.clone(),
                    });
                }
                Event::Configuration(_) | Event::Deliver(_) => {}
            }
            self.services.handle_ring_event(event);
        }
        self.settle();
        while let Some(t) = self.ring.poll_transmit() {
            self.pending.push_back(t);
        }
        self.send_pending();
        Ok(())
    }

    /// The dispatcher's multicasts to the ring, flow control from the ring's queue, its
    /// actions for the application.
    fn settle(&mut self) {
        let ring = &mut self.ring;
        self.services
            .flush_multicasts(|service, payload, g| ring.offer(service, payload, g));
        self.services
            .set_flow_control(self.ring.queued_bytes() > self.flow_threshold);
        while let Some(action) = self.services.poll_action() {
            match action {
                Action::Reply { conn, bytes } if conn == APP_CONN => self.reply = Some(bytes),
                Action::Event { conn, bytes } if conn == APP_CONN => self.on_cpg_event(&bytes),
                // Only the application is connected; it never finalizes.
                _ => {}
            }
        }
    }

    fn on_cpg_event(&mut self, bytes: &Bytes) {
        match CpgEvent::parse(bytes) {
            Ok(CpgEvent::Deliver(m)) => self.events.push_back(AppEvent::Deliver {
                group: m.group,
                sender: m.sender,
                payload: m.payload,
            }),
            Ok(CpgEvent::Confchg(c)) => self.events.push_back(AppEvent::Confchg(c)),
            // Asked for with DELIVER_INITIAL_TOTEM_CONF only; AppEvent::Ring says the same.
            Ok(CpgEvent::TotemConfchg { .. }) => {}
            Err(e) => {
                self.stats.bad_events += 1;
                error!("appliance: undecodable CPG event: {}", e);
            }
        }
    }

    /// Hands waiting frames to the transport until it pushes back.
    fn send_pending(&mut self) {
        while let Some(t) = self.pending.front() {
            match self.transport.send(t.dest, &t.frame) {
                Ok(()) => self.stats.tx_frames += 1,
                Err(TransportError::WouldBlock) => return,
                Err(e) => {
                    self.stats.tx_errors += 1;
                    warn!("appliance: send failed: {}", e);
                }
            }
            self.pending.pop_front();
        }
    }

    // ---- the application's CPG calls ----

    /// The next thing the application should know.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<AppEvent> {
        self.events.pop_front()
    }

    /// Joins `group`; the confchg that lists the application follows as an event.
    ///
    /// # Errors
    /// CPG's answer: `Exist` when already a member, `TooManyGroups`, ...
    pub fn join(&mut self, group: &GroupName) -> Result<(), CsError> {
        self.request(&Request::Join {
            group: group.clone(),
        })
        .map(drop)
    }

    /// Leaves `group`.
    ///
    /// # Errors
    /// CPG's answer: `NotExist` when not a member.
    pub fn leave_group(&mut self, group: &GroupName) -> Result<(), CsError> {
        self.request(&Request::Leave {
            group: group.clone(),
        })
        .map(drop)
    }

    /// Multicasts `payload` to `group` (which the application must have joined), delivered
    /// to every member in total order, this node included.
    ///
    /// # Errors
    /// `TryAgain` under flow control (turn, then retry), `TooBig` above the largest
    /// message, `NotExist` when not a member.
    pub fn mcast(
        &mut self,
        group: &GroupName,
        guarantee: CpgGuarantee,
        payload: &[u8],
    ) -> Result<(), CsError> {
        self.request(&Request::Mcast {
            guarantee,
            group: group.clone(),
            payload: Bytes::copy_from_slice(payload),
        })
        .map(drop)
    }

    /// Leaves the ring cleanly (the others form a new ring at once, without a token
    /// timeout). The node is inert afterwards; turn a few more times so the leave gets out.
    pub fn leave(&mut self, now: Instant) {
        self.ring.leave(now);
        while let Some(t) = self.ring.poll_transmit() {
            self.pending.push_back(t);
        }
        self.send_pending();
        self.transport.poll(now);
    }

    /// Sends one request on the application's connection and returns the reply's body.
    fn request(&mut self, request: &Request) -> Result<ResponseBody, CsError> {
        self.reply = None;
        self.services.handle_request(APP_CONN, request.emit());
        self.settle();
        // The engine answers every request at once, before it returns.
        let bytes = self.reply.take().ok_or(CsError::Library)?;
        let response = Response::parse(&bytes).map_err(|_| CsError::Library)?;
        if response.error == CsError::Ok {
            Ok(response.body)
        } else {
            Err(response.error)
        }
    }
}

/// The earlier of two optional deadlines.
fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
