//! [`SmoltcpTransport`]: one smoltcp interface, its device and one UDP socket behind the
//! [`Transport`] trait, in corosync's two UDP modes ([`Mode::Multicast`] = `transport: udp`,
//! [`Mode::Unicast`] = `transport: udpu`).
//!
//! Two smoltcp 0.14 behaviours shape this file; both are worked around here rather than left
//! to every driver:
//!
//! * **One fragmenter per interface.** smoltcp keeps the unsent fragments of *one* oversized
//!   IPv4 packet in the interface's fragmenter and does not check that it is idle before it
//!   dispatches the next oversized packet, which would overwrite the first one's remaining
//!   fragments. [`SmoltcpTransport::send`] therefore queues a frame that needs fragmenting only
//!   when the socket's send queue is empty *and* the fragmenter is idle, and reports
//!   `WouldBlock` otherwise (frames that fit one Ethernet frame are not held back).
//! * **A UDP datagram whose neighbour never answers ARP blocks its socket.** smoltcp leaves the
//!   head datagram in the socket's send queue until the neighbour resolves, retrying every
//!   second, forever; everything queued behind it waits too. A crashed node whose ARP entry
//!   has expired (60 s) would so stall the token and the joins the survivors need to re-form
//!   the ring. [`Config::stall_timeout`] bounds that: a send queue that made no progress for
//!   that long is flushed (datagram loss, which the ring's retransmission covers) and
//!   counted in [`Stats::flushed`].

use core::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use smoltcp::iface::{Interface, SocketHandle, SocketSet};
use smoltcp::phy::{Device, Medium};
use smoltcp::socket::udp;
use smoltcp::wire::{IpAddress, IpEndpoint};
use totem_proto::NodeId;
use totem_proto::time::{Duration, Instant};
use totem_transport::{Dest, PeerAddr, RecvMeta, Transport, TransportError};

/// corosync's default `mcastport`, also the port of every node in `udpu` mode.
pub const DEFAULT_PORT: u16 = 5405;

/// Largest frame this smoltcp build carries: 16 356 bytes with this crate's features. The
/// fragmentation buffer (16 384 bytes, holding the whole IPv4 packet being fragmented) minus
/// the 20-byte IPv4 and 8-byte UDP headers; the reassembly buffer (16 384 bytes of IPv4
/// payload) would allow 16 376. Read from `smoltcp::config`, so smoltcp's
/// `SMOLTCP_FRAGMENTATION_BUFFER_SIZE` / `SMOLTCP_REASSEMBLY_BUFFER_SIZE` build-time
/// environment overrides are honoured.
pub const MAX_FRAME: usize = {
    let send = smoltcp::config::FRAGMENTATION_BUFFER_SIZE - IP_UDP_HEADERS;
    let recv = smoltcp::config::REASSEMBLY_BUFFER_SIZE - 8;
    if send < recv { send } else { recv }
};

/// Upper bound on the extra egress passes of one `poll` (see there): enough for a
/// [`MAX_FRAME`] datagram over a 576-byte IPv4 MTU (30 fragments).
const MAX_FRAGMENT_PASSES: usize = 32;

/// IPv4 header (no options, as smoltcp emits) plus UDP header.
const IP_UDP_HEADERS: usize = 20 + 8;

/// How `Dest::Multicast` travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Mode {
    /// corosync `transport: udp`: one datagram to this IPv4 group (joined with IGMP through
    /// smoltcp's `multicast` support) on [`Config::port`].
    Multicast(Ipv4Addr),
    /// corosync `transport: udpu`: one unicast copy to every *other* node of the node list.
    Unicast,
}

/// What [`SmoltcpTransport::new`] needs besides the smoltcp parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct Config<'n> {
    /// This node.
    pub node_id: NodeId,
    /// Every node of the cluster, this one included, with its IPv4 address. Borrowed so
    /// that no allocation is needed; order does not matter (fan-out goes in list order).
    pub nodelist: &'n [(NodeId, Ipv4Addr)],
    /// The UDP port of every node and of the group (default [`DEFAULT_PORT`]).
    pub port: u16,
    /// Multicast or unicast fan-out.
    pub mode: Mode,
    /// A send queue that makes no progress this long is flushed (default 2.5 s; see the
    /// module docs). It must exceed smoltcp's worst normal neighbour resolution: smoltcp
    /// sends at most one ARP request per second per interface and retries a silenced socket
    /// after one second, so a `udpu` fan-out to two unresolved nodes needs about 2 s.
    pub stall_timeout: Duration,
    /// How long smoltcp keeps an incomplete fragmented datagram (default 1 s; smoltcp's own
    /// default is 60 s, which would let a few lost fragments occupy every reassembly slot).
    pub reassembly_timeout: Duration,
}

impl<'n> Config<'n> {
    /// `node_id` in `nodelist`, [`DEFAULT_PORT`], the given mode, a 2.5 s stall timeout and
    /// a 1 s reassembly timeout.
    pub const fn new(node_id: NodeId, nodelist: &'n [(NodeId, Ipv4Addr)], mode: Mode) -> Self {
        Self {
            node_id,
            nodelist,
            port: DEFAULT_PORT,
            mode,
            stall_timeout: Duration::from_millis(2500),
            reassembly_timeout: Duration::from_secs(1),
        }
    }
}

/// Why [`SmoltcpTransport::new`] refused a configuration.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SetupError {
    /// `node_id` is not in the node list.
    NodeNotListed(NodeId),
    /// This node's node-list address is not configured on the interface.
    NotLocal(Ipv4Addr),
    /// The interface's medium is not Ethernet (the only medium this crate enables).
    NotEthernet,
    /// `Mode::Multicast` with an address outside 224.0.0.0/4.
    NotMulticast(Ipv4Addr),
    /// smoltcp's multicast group table is full (`iface-max-multicast-group-count-*`).
    GroupTableFull,
    /// Port 0, or the UDP socket could not be bound.
    Bind,
    /// The UDP socket's receive or send buffer cannot hold one [`MAX_FRAME`] datagram
    /// (the capacities of the first buffer found too small).
    BufferTooSmall {
        /// Payload bytes the buffer holds.
        payload: usize,
        /// Datagrams (metadata slots) the buffer holds.
        packets: usize,
    },
}

impl core::fmt::Display for SetupError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NodeNotListed(id) => write!(f, "node {id} is not in the node list"),
            Self::NotLocal(a) => write!(f, "{a} is not an address of the interface"),
            Self::NotEthernet => f.write_str("the interface's medium is not Ethernet"),
            Self::NotMulticast(a) => write!(f, "{a} is not an IPv4 multicast group"),
            Self::GroupTableFull => f.write_str("smoltcp's multicast group table is full"),
            Self::Bind => f.write_str("cannot bind the UDP socket (port 0?)"),
            Self::BufferTooSmall { payload, packets } => write!(
                f,
                "UDP socket buffer too small: {payload} bytes / {packets} datagrams, \
                 need at least {MAX_FRAME} bytes and 1 datagram"
            ),
        }
    }
}

impl core::error::Error for SetupError {}

/// Counters, for diagnostics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct Stats {
    /// Datagrams queued on the socket (a `udpu` fan-out counts once per copy).
    pub sent: u64,
    /// Datagrams handed to `recv`'s caller.
    pub received: u64,
    /// `send` calls answered with `WouldBlock`.
    pub would_block: u64,
    /// `WouldBlock`s because an oversized frame had to wait for the fragmenter (included in
    /// `would_block`).
    pub fragmenter_busy: u64,
    /// Send queues flushed after [`Config::stall_timeout`] without progress.
    pub flushed: u64,
    /// Received datagrams longer than the caller's buffer.
    pub truncated: u64,
}

/// A `udpu` fan-out cut short by a full send buffer: the frame (by length and FNV-1a hash,
/// since no copy is kept) and the index of the first node not yet served.
#[derive(Debug, Clone, Copy)]
struct Fanout {
    len: usize,
    hash: u64,
    next: usize,
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Converts the ring's clock to smoltcp's. `Instant` values above `i64::MAX` µs (292 000
/// years) saturate.
pub fn to_smoltcp_instant(now: Instant) -> smoltcp::time::Instant {
    smoltcp::time::Instant::from_micros(i64::try_from(now.total_micros()).unwrap_or(i64::MAX))
}

fn from_smoltcp_instant(at: smoltcp::time::Instant) -> Instant {
    Instant::from_micros(u64::try_from(at.total_micros()).unwrap_or(0))
}

/// The [`Transport`] trait over a smoltcp [`Interface`], its device `D` and one UDP socket.
///
/// It owns the interface, the device and the socket set (which borrows the caller's storage
/// for `'a`); the driver reaches them through [`iface_mut`](Self::iface_mut),
/// [`device_mut`](Self::device_mut) and [`sockets_mut`](Self::sockets_mut), e.g. to add a
/// DHCP socket of its own.
///
/// Method groups: [`new`](Self::new); getters (`node_id`, `mode`, `stats`, `nodelist`, `iface`,
/// …); the [`Transport`] calls (`send`, `recv`, `max_datagram`); and the network's clock:
/// [`poll`](Self::poll) / [`poll_at`](Self::poll_at). smoltcp does nothing by itself, so the
/// driver calls `poll(now)` on every turn of its loop (before draining `recv`, and after
/// sending) and sleeps no later than `poll_at(now)`:
///
/// ```text
/// loop {
///     let now = clock.now();
///     transport.poll(now);                                  // device ⇄ socket
///     while let Some(meta) = transport.recv(&mut buf)? {     // socket → ring
///         ring.handle_datagram(now, meta.from, &buf[..meta.len]);
///     }
///     if ring.poll_timeout().is_some_and(|t| t <= now) { ring.handle_timeout(now); }
///     while let Some(ev) = ring.poll_event() { /* deliver */ }
///     while let Some(t) = pending.front().or(ring.poll_transmit()) {  // ring → socket
///         match transport.send(t.dest, &t.frame) { Err(WouldBlock) => break, _ => … }
///     }
///     transport.poll(now);                                  // socket → device
///     sleep_until(min(ring.poll_timeout(), transport.poll_at(now)), or a device interrupt);
/// }
/// ```
pub struct SmoltcpTransport<'a, D: Device> {
    iface: Interface,
    device: D,
    sockets: SocketSet<'a>,
    handle: SocketHandle,
    node_id: NodeId,
    nodelist: &'a [(NodeId, Ipv4Addr)],
    port: u16,
    mode: Mode,
    stall_timeout: Duration,
    /// Largest UDP payload that leaves in one Ethernet frame, without fragmentation.
    unfragmented_max: usize,
    /// The ring's time at the last `poll`.
    now: Instant,
    /// Since when the send queue has been non-empty without progress.
    stalled_since: Option<Instant>,
    fanout: Option<Fanout>,
    stats: Stats,
}

impl<D: Device> core::fmt::Debug for SmoltcpTransport<'_, D> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SmoltcpTransport")
            .field("node_id", &self.node_id)
            .field("mode", &self.mode)
            .field("port", &self.port)
            .field("nodes", &self.nodelist.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl<'a, D: Device> SmoltcpTransport<'a, D> {
    /// Builds the transport: adds a UDP socket over the caller's buffers to `sockets`, binds
    /// it to `config.port` on any address, and in [`Mode::Multicast`] joins the group (the
    /// IGMP report leaves on the first [`poll`](Self::poll)).
    ///
    /// `iface` must already carry this node's node-list address (`update_ip_addrs`) and have
    /// been created for `device`. `sockets` needs one free slot. `rx` and `tx` are the UDP
    /// socket's buffers, storage the caller owns (a `static`, the stack of `main`): each must
    /// hold at least one [`MAX_FRAME`] datagram; see the README for sizing.
    ///
    /// # Errors
    ///
    /// [`SetupError`] for a node missing from the node list or its address missing from the
    /// interface, a non-Ethernet medium, a bad group, port 0 or buffers that are too small.
    pub fn new(
        config: &Config<'a>,
        mut iface: Interface,
        device: D,
        mut sockets: SocketSet<'a>,
        rx: udp::PacketBuffer<'a>,
        tx: udp::PacketBuffer<'a>,
    ) -> Result<Self, SetupError> {
        let own = config
            .nodelist
            .iter()
            .find(|(id, _)| *id == config.node_id)
            .map(|(_, a)| *a)
            .ok_or(SetupError::NodeNotListed(config.node_id))?;
        if !iface.has_ip_addr(IpAddress::Ipv4(own)) {
            return Err(SetupError::NotLocal(own));
        }
        let caps = device.capabilities();
        if caps.medium != Medium::Ethernet {
            return Err(SetupError::NotEthernet);
        }
        for buf in [&rx, &tx] {
            if buf.payload_capacity() < MAX_FRAME || buf.packet_capacity() == 0 {
                return Err(SetupError::BufferTooSmall {
                    payload: buf.payload_capacity(),
                    packets: buf.packet_capacity(),
                });
            }
        }
        if config.port == 0 {
            return Err(SetupError::Bind);
        }
        if let Mode::Multicast(group) = config.mode {
            if !group.is_multicast() {
                return Err(SetupError::NotMulticast(group));
            }
            iface
                .join_multicast_group(IpAddress::Ipv4(group))
                .map_err(|_| SetupError::GroupTableFull)?;
        }
        iface.set_reassembly_timeout(smoltcp::time::Duration::from_micros(
            config.reassembly_timeout.total_micros(),
        ));
        let mut socket = udp::Socket::new(rx, tx);
        socket.bind(config.port).map_err(|_| SetupError::Bind)?;
        let handle = sockets.add(socket);
        let unfragmented_max = caps.ip_mtu().saturating_sub(IP_UDP_HEADERS);
        debug!(
            "transport-smoltcp: node {} at {}, port {}, {} nodes",
            config.node_id.0,
            own,
            config.port,
            config.nodelist.len()
        );
        Ok(Self {
            iface,
            device,
            sockets,
            handle,
            node_id: config.node_id,
            nodelist: config.nodelist,
            port: config.port,
            mode: config.mode,
            stall_timeout: config.stall_timeout,
            unfragmented_max,
            now: Instant::ZERO,
            stalled_since: None,
            fanout: None,
            stats: Stats::default(),
        })
    }

    /// This node.
    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// Multicast or unicast fan-out.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The node list given to [`new`](Self::new).
    pub fn nodelist(&self) -> &'a [(NodeId, Ipv4Addr)] {
        self.nodelist
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The interface.
    pub fn iface(&self) -> &Interface {
        &self.iface
    }

    /// The interface, e.g. to change addresses or routes.
    pub fn iface_mut(&mut self) -> &mut Interface {
        &mut self.iface
    }

    /// The device.
    pub fn device_mut(&mut self) -> &mut D {
        &mut self.device
    }

    /// The socket set, with room for the driver's own sockets (DHCP, a management port).
    pub fn sockets_mut(&mut self) -> &mut SocketSet<'a> {
        &mut self.sockets
    }

    /// Gives the parts back (the UDP socket stays in the set under its handle).
    pub fn into_parts(self) -> (Interface, D, SocketSet<'a>, SocketHandle) {
        (self.iface, self.device, self.sockets, self.handle)
    }

    /// Moves packets between the device and the sockets (smoltcp's `Interface::poll`: ARP,
    /// IGMP, IPv4 fragmentation and reassembly, UDP), then applies the stall rule of
    /// [`Config::stall_timeout`]. Call it on every turn of the driver loop; `now` must be
    /// monotonic. Returns whether any socket's state may have changed (smoltcp's
    /// `PollResult::SocketStateChanged`), i.e. whether `recv` may have something new.
    pub fn poll(&mut self, now: Instant) -> bool {
        self.now = now;
        let before = self.socket().send_queue();
        let ts = to_smoltcp_instant(now);
        let mut changed = self.iface.poll(ts, &mut self.device, &mut self.sockets)
            == smoltcp::iface::PollResult::SocketStateChanged;
        // `Interface::poll` stops once the sockets have nothing more to send, while the
        // fragmenter releases one fragment per egress pass: push out the rest of an oversized
        // datagram now rather than one fragment per driver turn. Bounded (a device out of
        // transmit tokens makes no progress): a 16 KiB datagram is 12 fragments at 1500 bytes.
        for _ in 0..MAX_FRAGMENT_PASSES {
            if self.iface.poll_at(ts, &self.sockets) != Some(smoltcp::time::Instant::ZERO) {
                break;
            }
            changed |= self
                .iface
                .poll_egress(ts, &mut self.device, &mut self.sockets)
                == smoltcp::iface::PollResult::SocketStateChanged;
        }
        let after = self.socket().send_queue();
        if after == 0 || after < before {
            self.stalled_since = None;
        } else {
            let since = *self.stalled_since.get_or_insert(now);
            // Closing the socket also empties its receive queue: wait until the driver has
            // drained it so no received frame is thrown away with the stuck ones.
            if now.saturating_duration_since(since) >= self.stall_timeout
                && !self.socket().can_recv()
            {
                warn!(
                    "transport-smoltcp: send queue stuck for {} ms ({} bytes), flushing",
                    now.saturating_duration_since(since).total_millis(),
                    after
                );
                let port = self.port;
                let socket = self.socket_mut();
                socket.close();
                // Rebinding the port just released cannot fail: port != 0 was checked in
                // `new` and the socket is closed.
                let _ = socket.bind(port);
                self.stalled_since = None;
                self.fanout = None;
                self.stats.flushed += 1;
            }
        }
        changed
    }

    /// When to call [`poll`](Self::poll) next at the latest, in the ring's time: smoltcp's
    /// own deadline (ARP retries, IGMP reports, pending fragments: then it is `now`) or the
    /// stall deadline, whichever comes first. `None`: only when a packet arrives.
    pub fn poll_at(&mut self, now: Instant) -> Option<Instant> {
        let net = self
            .iface
            .poll_at(to_smoltcp_instant(now), &self.sockets)
            // smoltcp says "now" as time zero; report it as `now` itself.
            .map(|at| from_smoltcp_instant(at).max(now));
        let stall = self.stalled_since.map(|s| s + self.stall_timeout);
        match (net, stall) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn socket(&self) -> &udp::Socket<'a> {
        self.sockets.get::<udp::Socket<'a>>(self.handle)
    }

    fn socket_mut(&mut self) -> &mut udp::Socket<'a> {
        self.sockets.get_mut::<udp::Socket<'a>>(self.handle)
    }

    fn addr_of(&self, node: NodeId) -> Option<Ipv4Addr> {
        self.nodelist
            .iter()
            .find(|(id, _)| *id == node)
            .map(|(_, a)| *a)
    }

    /// Whether an oversized datagram may be queued now (see the module docs).
    fn fragmenter_idle(&mut self) -> bool {
        if self.socket().send_queue() != 0 {
            return false;
        }
        // With the UDP socket's queue empty, smoltcp answers "now" (time zero) only for
        // pending fragments or another socket with work; either way waiting is safe.
        self.iface
            .poll_at(to_smoltcp_instant(self.now), &self.sockets)
            != Some(smoltcp::time::Instant::ZERO)
    }

    /// Queues one datagram to `addr`, or says why not.
    fn enqueue(&mut self, addr: Ipv4Addr, frame: &[u8]) -> Result<(), TransportError> {
        if frame.len() > self.unfragmented_max && !self.fragmenter_idle() {
            self.stats.fragmenter_busy += 1;
            return Err(TransportError::WouldBlock);
        }
        let endpoint = IpEndpoint::new(IpAddress::Ipv4(addr), self.port);
        match self.socket_mut().send_slice(frame, endpoint) {
            Ok(()) => {
                self.stats.sent += 1;
                trace!(
                    "transport-smoltcp: {} bytes to {}",
                    frame.len(),
                    SocketAddrV4::new(addr, self.port)
                );
                Ok(())
            }
            Err(udp::SendError::BufferFull) => Err(TransportError::WouldBlock),
            // Unaddressable: the socket lost its binding (cannot happen after `new`, which
            // bound it and `poll` rebinds after a flush) or the address is 0.0.0.0.
            Err(udp::SendError::Unaddressable) => Err(TransportError::Io(-1)),
        }
    }

    fn fan_out(&mut self, frame: &[u8]) -> Result<(), TransportError> {
        let hash = fnv1a(frame);
        let start = match self.fanout.take() {
            Some(f) if f.len == frame.len() && f.hash == hash => f.next,
            _ => 0,
        };
        for (i, (id, addr)) in self.nodelist.iter().enumerate().skip(start) {
            if *id == self.node_id {
                continue;
            }
            if let Err(err) = self.enqueue(*addr, frame) {
                if err == TransportError::WouldBlock {
                    self.fanout = Some(Fanout {
                        len: frame.len(),
                        hash,
                        next: i,
                    });
                }
                return Err(err);
            }
        }
        Ok(())
    }
}

impl<D: Device> Transport for SmoltcpTransport<'_, D> {
    fn max_datagram(&self) -> usize {
        MAX_FRAME
    }

    fn send(&mut self, dest: Dest, frame: &[u8]) -> Result<(), TransportError> {
        if frame.len() > MAX_FRAME {
            return Err(TransportError::TooLarge {
                len: frame.len(),
                max: MAX_FRAME,
            });
        }
        let res = match (dest, self.mode) {
            (Dest::Multicast, Mode::Multicast(group)) => {
                self.fanout = None;
                self.enqueue(group, frame)
            }
            (Dest::Multicast, Mode::Unicast) => self.fan_out(frame),
            (Dest::Node(id), _) => {
                self.fanout = None;
                let addr = self.addr_of(id).ok_or(TransportError::UnknownNode(id))?;
                self.enqueue(addr, frame)
            }
        };
        if res == Err(TransportError::WouldBlock) {
            self.stats.would_block += 1;
        }
        res
    }

    fn recv(&mut self, buf: &mut [u8]) -> Result<Option<RecvMeta>, TransportError> {
        let port = self.port;
        let nodelist = self.nodelist;
        let Ok((payload, meta)) = self.socket_mut().recv() else {
            return Ok(None);
        };
        let len = payload.len().min(buf.len());
        buf[..len].copy_from_slice(&payload[..len]);
        let truncated = len < payload.len();
        let from = match meta.endpoint.addr {
            IpAddress::Ipv4(a) => match nodelist.iter().find(|(_, n)| *n == a) {
                Some((id, _)) if meta.endpoint.port == port => PeerAddr::Node(*id),
                _ => PeerAddr::Socket(SocketAddr::V4(SocketAddrV4::new(a, meta.endpoint.port))),
            },
        };
        self.stats.received += 1;
        if truncated {
            self.stats.truncated += 1;
        }
        Ok(Some(RecvMeta::new(len, from).with_truncated(truncated)))
    }
}
