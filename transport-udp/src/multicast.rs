//! [`UdpMulticast`]: corosync's `transport: udp`, IP multicast for `Dest::Multicast` and
//! unicast for `Dest::Node` (the token, as corosync's totemudp sends it).
//!
//! The socket layout and its reasons are documented on [`UdpMulticast`] itself, where
//! rustdoc shows them.
//!
//! [`Dest::Multicast`]: totem_transport::Dest::Multicast
//! [`Dest::Node`]: totem_transport::Dest::Node

use alloc::vec;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use socket2::Socket;

use crate::config::UdpConfig;
use crate::endpoint::{Endpoint, new_socket, set_buffers};
use crate::error::{AddrRole, UdpError};
use crate::sys::{self, SourceCtl};

/// `transport: udp`: IP multicast to a group, unicast to single nodes.
///
/// Implements [`Transport`](totem_transport::Transport) (with `sendmmsg` / `recvmmsg` batch
/// calls on Linux), [`AsFd`](std::os::fd::AsFd) and [`AsRawFd`](std::os::fd::AsRawFd). See
/// [`UdpMulticast::new`] for what is checked, and the [crate docs](crate) for the behaviour
/// shared with [`UdpUnicast`](crate::UdpUnicast).
///
/// # One socket, and why it binds the wildcard
///
/// Linux delivers a multicast datagram only to sockets bound to the wildcard address or to
/// the group itself, never to one bound to a unicast address, so a single socket that must
/// receive both the group's traffic and the unicast token binds `0.0.0.0:port` (`[::]:port`).
/// corosync uses separate sockets instead (a receive socket on the group, `mcastport - 1` for
/// multicast sends, a token socket); one socket gives the driver one descriptor to poll. What
/// the wildcard would lose is restored with options:
///
/// * `IP_MULTICAST_ALL` off (Linux): otherwise a wildcard socket also receives groups that
///   *other* sockets on the host joined on the same port.
/// * The source address is pinned to the bind address on every send (`IP_PKTINFO` /
///   `IPV6_PKTINFO`, Linux), so peers see exactly the node list address and can map it back to
///   a node id, even on a host with several addresses on the interface.
/// * `IP_MULTICAST_IF` is set from the bind address (IPv4: the address; IPv6: the index of the
///   interface carrying it, found with `getifaddrs`) and the group is joined on that
///   interface. With the outgoing interface fixed, the kernel needs no route for the group:
///   in a network namespace without a default route, multicast works without
///   `ip route add 224.0.0.0/4 dev <if>`.
///
/// Whether the bind address is local is checked first by binding a throwaway socket to it,
/// so a wrong address is [`UdpError::NotLocal`] rather than a silent wildcard listener.
///
/// # Loopback off
///
/// `IP_MULTICAST_LOOP` / `IPV6_MULTICAST_LOOP` are off: a node does not receive its own
/// multicasts. The ring ignores frames from itself anyway (it delivers its own messages from
/// its send queue), so looping them back would only cost a receive per send. The consequence is
/// that two `UdpMulticast` endpoints on one host (one network namespace) cannot hear each
/// other's multicasts; test with network namespaces (see the crate README).
pub struct UdpMulticast {
    ep: Endpoint,
    group: SocketAddr,
}

impl UdpMulticast {
    /// Creates the socket, binds the wildcard address on [`UdpConfig::port`], and joins
    /// [`UdpConfig::mcast_addr`] on the interface of the bind address (this node's node list
    /// address, or [`UdpConfig::bind_addr`]).
    ///
    /// # Errors
    ///
    /// Configuration errors before any socket exists: those of [`UdpUnicast::new`] plus
    /// [`UdpError::MissingMulticastGroup`], [`UdpError::NotMulticast`],
    /// [`UdpError::FamilyMismatch`] (group vs. nodes), [`UdpError::PortMismatch`] (a node
    /// list port other than the group port) and [`UdpError::InvalidTtl`]. Then
    /// [`UdpError::NotLocal`] (the bind address is not on this host),
    /// [`UdpError::NoInterface`], [`UdpError::AddressInUse`], [`UdpError::Socket`] and
    /// [`UdpError::MulticastJoin`] with the OS error.
    ///
    /// [`UdpUnicast::new`]: crate::UdpUnicast::new
    pub fn new(config: &UdpConfig) -> Result<Self, UdpError> {
        let plan = config.plan()?;
        let group_ip = config.mcast_addr.ok_or(UdpError::MissingMulticastGroup)?;
        if !group_ip.is_multicast() {
            return Err(UdpError::NotMulticast(group_ip));
        }
        let own = plan
            .nodes
            .get(&plan.node_id)
            .map_or_else(|| plan.bind.ip(), SocketAddr::ip);
        if group_ip.is_ipv4() != own.is_ipv4() {
            return Err(UdpError::FamilyMismatch {
                role: AddrRole::Group,
                addr: group_ip,
                expected: own,
            });
        }
        let ttl = u8::try_from(config.ttl).map_err(|_| UdpError::InvalidTtl(config.ttl))?;
        // Every member listens on the group port, so that is where the token goes too.
        for (&node, &addr) in &plan.nodes {
            if addr.port() != config.port {
                return Err(UdpError::PortMismatch {
                    node,
                    addr,
                    port: config.port,
                });
            }
        }

        let bind_ip = plan.bind.ip();
        if !bind_ip.is_unspecified() {
            // Refuse a non-local address now; the real socket binds the wildcard and would
            // not notice.
            let probe = new_socket(plan.bind)?;
            probe
                .bind(&SocketAddr::new(bind_ip, 0).into())
                .map_err(|e| UdpError::from_bind(plan.bind, e))?;
        }

        let socket = new_socket(plan.bind)?;
        let buffers = set_buffers(&socket, config)?;
        let wildcard = match bind_ip {
            IpAddr::V4(_) => SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), config.port),
            IpAddr::V6(_) => SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), config.port),
        };
        let join = |source| UdpError::MulticastJoin {
            group: group_ip,
            interface: bind_ip,
            source,
        };
        match (bind_ip, group_ip) {
            (IpAddr::V4(bind), IpAddr::V4(group)) => {
                configure_v4(&socket, bind, ttl)?;
                bind_wildcard(&socket, wildcard)?;
                socket.join_multicast_v4(&group, &bind).map_err(join)?;
            }
            (IpAddr::V6(bind), IpAddr::V6(group)) => {
                let ifindex = if bind.is_unspecified() {
                    0 // the kernel picks the interface by route
                } else {
                    sys::ipv6_ifindex(&bind)
                        .map_err(UdpError::socket("getifaddrs"))?
                        .ok_or(UdpError::NoInterface(bind_ip))?
                };
                configure_v6(&socket, ifindex, ttl)?;
                bind_wildcard(&socket, wildcard)?;
                socket.join_multicast_v6(&group, ifindex).map_err(join)?;
            }
            // Families were checked above (group vs. own address, bind vs. own address).
            _ => {
                return Err(UdpError::FamilyMismatch {
                    role: AddrRole::Group,
                    addr: group_ip,
                    expected: bind_ip,
                });
            }
        }

        let source = if bind_ip.is_unspecified() {
            SourceCtl::NONE
        } else {
            pin(bind_ip)
        };
        let group = SocketAddr::new(group_ip, config.port);
        let ep = Endpoint::new(socket, plan, vec![group], config, source, buffers);
        Ok(Self { ep, group })
    }

    /// The multicast group and port `Dest::Multicast` goes to.
    pub fn group(&self) -> SocketAddr {
        self.group
    }
}

#[cfg(target_os = "linux")]
fn pin(ip: IpAddr) -> SourceCtl {
    SourceCtl::pin(ip)
}

/// Without `IP_PKTINFO` on send, the kernel picks the source address by route (the
/// interface's primary address); documented as a Linux-only guarantee.
#[cfg(not(target_os = "linux"))]
fn pin(_ip: IpAddr) -> SourceCtl {
    SourceCtl::NONE
}

fn bind_wildcard(socket: &Socket, wildcard: SocketAddr) -> Result<(), UdpError> {
    socket
        .bind(&wildcard.into())
        .map_err(|e| UdpError::from_bind(wildcard, e))
}

fn configure_v4(socket: &Socket, bind: Ipv4Addr, ttl: u8) -> Result<(), UdpError> {
    #[cfg(target_os = "linux")]
    socket
        .set_multicast_all_v4(false)
        .map_err(UdpError::socket("IP_MULTICAST_ALL"))?;
    socket
        .set_multicast_ttl_v4(u32::from(ttl))
        .map_err(UdpError::socket("IP_MULTICAST_TTL"))?;
    socket
        .set_multicast_loop_v4(false)
        .map_err(UdpError::socket("IP_MULTICAST_LOOP"))?;
    if !bind.is_unspecified() {
        socket
            .set_multicast_if_v4(&bind)
            .map_err(UdpError::socket("IP_MULTICAST_IF"))?;
    }
    Ok(())
}

fn configure_v6(socket: &Socket, ifindex: u32, hops: u8) -> Result<(), UdpError> {
    #[cfg(target_os = "linux")]
    socket
        .set_multicast_all_v6(false)
        .map_err(UdpError::socket("IPV6_MULTICAST_ALL"))?;
    socket
        .set_multicast_hops_v6(u32::from(hops))
        .map_err(UdpError::socket("IPV6_MULTICAST_HOPS"))?;
    socket
        .set_multicast_loop_v6(false)
        .map_err(UdpError::socket("IPV6_MULTICAST_LOOP"))?;
    socket
        .set_multicast_if_v6(ifindex)
        .map_err(UdpError::socket("IPV6_MULTICAST_IF"))?;
    Ok(())
}

crate::common_api!(UdpMulticast);
