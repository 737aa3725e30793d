//! [`UdpConfig`], shared by both transports, and its validation into a resolved `Plan`.
//!
//! The names follow corosync.conf(5): `nodelist { node { nodeid, ring0_addr } }`,
//! `totem { interface { bindnetaddr, mcastaddr, mcastport, ttl } block_unlisted_ips }`.
//! Checks that need no socket (ids, families, duplicates, ports) happen here, so a bad
//! configuration is refused before anything is bound.

use alloc::collections::BTreeMap;
use core::net::{IpAddr, SocketAddr};

use totem_proto::NodeId;
use totem_transport::{MAX_UDP_PAYLOAD_V4, MAX_UDP_PAYLOAD_V6};

use crate::error::{AddrRole, UdpError};

/// corosync's default `mcastport` (and the port udpu nodes listen on).
pub const DEFAULT_PORT: u16 = 5405;

/// Default requested size of each socket buffer: 4 MiB. A ring's token visit can put
/// `window_size` frames of up to 64 KiB on the wire at once; small default buffers (often
/// 208 KiB) drop them at the receiver. corosync's knet asks for large buffers for the same
/// reason.
pub const DEFAULT_BUFFER_SIZE: usize = 4 << 20;

/// Default multicast TTL (hop limit): 1, the local link only, as corosync.
pub const DEFAULT_TTL: u32 = 1;

/// Configuration of a [`UdpUnicast`](crate::UdpUnicast) or [`UdpMulticast`](crate::UdpMulticast).
///
/// Build it with [`UdpConfig::new`] and adjust the public fields; `#[non_exhaustive]` so new
/// options can be added without breaking callers.
///
/// ```
/// use std::collections::BTreeMap;
/// use totem_proto::NodeId;
/// use transport_udp::UdpConfig;
///
/// let nodes = BTreeMap::from([
///     (NodeId(1), "10.213.1.1:0".parse().unwrap()), // port 0: use `port` (5405)
///     (NodeId(2), "10.213.1.2:0".parse().unwrap()),
/// ]);
/// let mut config = UdpConfig::new(NodeId(1), nodes);
/// config.mcast_addr = Some("239.213.0.1".parse().unwrap());
/// assert_eq!(config.port, 5405);
/// assert_eq!(config.max_datagram(), 65_507);
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpConfig {
    /// This node's id (corosync `nodeid`). Its node list entry is the address it binds and
    /// sends from.
    pub node_id: NodeId,
    /// Every node of the cluster, this one included (`ring0_addr` per `nodeid`). A port of 0
    /// means [`port`](Self::port). All addresses must be of one IP family and distinct.
    pub nodelist: BTreeMap<NodeId, SocketAddr>,
    /// The port (corosync `mcastport`, default [`DEFAULT_PORT`]): the multicast group port
    /// for `udp`, and the port of every node list entry that gives none. Must not be 0.
    pub port: u16,
    /// Bind to this address instead of this node's node list address (corosync
    /// `bindnetaddr` once resolved to a host address). Use it when the node list holds
    /// addresses as others see them (NAT) or to bind the wildcard (`0.0.0.0` / `::`), in
    /// which case the kernel chooses source addresses and, for `udp`, the interface.
    /// Default `None`: the node list address.
    pub bind_addr: Option<IpAddr>,
    /// The multicast group (corosync `mcastaddr`), required by [`UdpMulticast`]
    /// (e.g. `239.192.x.x` or `ff15::…`); ignored by `UdpUnicast`.
    ///
    /// [`UdpMulticast`]: crate::UdpMulticast
    pub mcast_addr: Option<IpAddr>,
    /// Multicast TTL / hop limit (corosync `ttl`, default [`DEFAULT_TTL`] = 1), at most 255.
    /// Ignored by `UdpUnicast`.
    pub ttl: u32,
    /// Requested `SO_SNDBUF`, in bytes (default [`DEFAULT_BUFFER_SIZE`]); 0 keeps the
    /// kernel default. What the kernel granted is reported by `buffer_sizes()`.
    pub send_buffer: usize,
    /// Requested `SO_RCVBUF`, in bytes (default [`DEFAULT_BUFFER_SIZE`]); 0 keeps the
    /// kernel default.
    pub recv_buffer: usize,
    /// Drop (and count) datagrams whose source IP is not in the node list (corosync
    /// `block_unlisted_ips`, default on). When off they are delivered with
    /// [`PeerAddr::Socket`](totem_transport::PeerAddr::Socket).
    pub block_unlisted: bool,
}

impl UdpConfig {
    /// A configuration with every option at its default: port 5405, bind to the node list
    /// address, no multicast group, TTL 1, 4 MiB buffers, unlisted sources blocked.
    pub fn new(node_id: NodeId, nodelist: BTreeMap<NodeId, SocketAddr>) -> Self {
        Self {
            node_id,
            nodelist,
            port: DEFAULT_PORT,
            bind_addr: None,
            mcast_addr: None,
            ttl: DEFAULT_TTL,
            send_buffer: DEFAULT_BUFFER_SIZE,
            recv_buffer: DEFAULT_BUFFER_SIZE,
            block_unlisted: true,
        }
    }

    /// The largest frame the transport will carry: 65 507 bytes over IPv4, 65 527 over IPv6
    /// (decided by this node's node list address; 65 507 when it is missing). Larger than any
    /// MTU: the kernel fragments and reassembles (see the crate README).
    pub fn max_datagram(&self) -> usize {
        match self.nodelist.get(&self.node_id) {
            Some(SocketAddr::V6(_)) => MAX_UDP_PAYLOAD_V6,
            _ => MAX_UDP_PAYLOAD_V4,
        }
    }

    /// Checks everything that needs no socket and resolves default ports.
    pub(crate) fn plan(&self) -> Result<Plan, UdpError> {
        if !self.node_id.is_valid() {
            return Err(UdpError::InvalidNodeId);
        }
        if self.port == 0 {
            return Err(UdpError::InvalidPort);
        }
        let mut nodes = BTreeMap::new();
        for (&id, addr) in &self.nodelist {
            if !id.is_valid() {
                return Err(UdpError::InvalidNodeId);
            }
            let mut addr = *addr;
            if addr.port() == 0 {
                addr.set_port(self.port);
            }
            if !is_unicast(addr.ip()) {
                return Err(UdpError::UnusableNodeAddress { node: id, addr });
            }
            nodes.insert(id, addr);
        }
        let local = *nodes
            .get(&self.node_id)
            .ok_or(UdpError::NodeNotInNodelist(self.node_id))?;
        let expected = local.ip();
        let mut seen: BTreeMap<(IpAddr, u16), NodeId> = BTreeMap::new();
        for (&id, addr) in &nodes {
            if addr.is_ipv4() != local.is_ipv4() {
                return Err(UdpError::FamilyMismatch {
                    role: AddrRole::Node(id),
                    addr: addr.ip(),
                    expected,
                });
            }
            if let Some(&first) = seen.get(&(addr.ip(), addr.port())) {
                return Err(UdpError::DuplicateAddress {
                    addr: *addr,
                    first,
                    second: id,
                });
            }
            seen.insert((addr.ip(), addr.port()), id);
        }
        let bind_ip = self.bind_addr.unwrap_or(expected);
        if bind_ip.is_ipv4() != local.is_ipv4() {
            return Err(UdpError::FamilyMismatch {
                role: AddrRole::Bind,
                addr: bind_ip,
                expected,
            });
        }
        Ok(Plan {
            node_id: self.node_id,
            bind: SocketAddr::new(bind_ip, local.port()),
            nodes,
            by_addr: seen,
            max_datagram: if local.is_ipv4() {
                MAX_UDP_PAYLOAD_V4
            } else {
                MAX_UDP_PAYLOAD_V6
            },
        })
    }
}

/// Whether `ip` can name one host (not unspecified, multicast, or IPv4 broadcast).
fn is_unicast(ip: IpAddr) -> bool {
    !ip.is_unspecified() && !ip.is_multicast() && !matches!(ip, IpAddr::V4(v4) if v4.is_broadcast())
}

/// A validated configuration with ports resolved.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) node_id: NodeId,
    /// Where this node's socket binds (udpu) or sends from (udp): IP and port.
    pub(crate) bind: SocketAddr,
    /// Every node, ports resolved.
    pub(crate) nodes: BTreeMap<NodeId, SocketAddr>,
    /// The reverse map, keyed without IPv6 flow info and scope.
    pub(crate) by_addr: BTreeMap<(IpAddr, u16), NodeId>,
    pub(crate) max_datagram: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn config(nodes: &[(u32, &str)]) -> UdpConfig {
        let list = nodes.iter().map(|&(id, a)| (NodeId(id), addr(a))).collect();
        UdpConfig::new(NodeId(1), list)
    }

    #[test]
    fn default_ports_are_filled_in_and_the_bind_address_is_this_nodes() {
        let plan = config(&[(1, "10.213.1.1:0"), (2, "10.213.1.2:6000")])
            .plan()
            .unwrap();
        assert_eq!(plan.bind, addr("10.213.1.1:5405"));
        assert_eq!(plan.nodes[&NodeId(2)], addr("10.213.1.2:6000"));
        assert_eq!(
            plan.by_addr[&(addr("10.213.1.1:5405").ip(), 5405)],
            NodeId(1)
        );
        assert_eq!(plan.max_datagram, MAX_UDP_PAYLOAD_V4);
        let plan = config(&[(1, "[fd13:213::1]:0")]).plan().unwrap();
        assert_eq!(plan.max_datagram, MAX_UDP_PAYLOAD_V6);
    }

    #[test]
    fn bad_configurations_are_refused_with_the_culprit() {
        let c = config(&[(2, "10.213.1.2:0")]);
        assert!(matches!(
            c.plan(),
            Err(UdpError::NodeNotInNodelist(NodeId(1)))
        ));

        let c = config(&[(1, "10.213.1.1:0"), (2, "[fd13:213::2]:0")]);
        match c.plan() {
            Err(UdpError::FamilyMismatch {
                role: AddrRole::Node(NodeId(2)),
                addr,
                expected,
            }) => {
                assert_eq!(addr, "fd13:213::2".parse::<IpAddr>().unwrap());
                assert_eq!(expected, "10.213.1.1".parse::<IpAddr>().unwrap());
            }
            other => panic!("{other:?}"),
        }

        let mut c = config(&[(1, "10.213.1.1:0")]);
        c.bind_addr = Some("::".parse().unwrap());
        assert!(matches!(
            c.plan(),
            Err(UdpError::FamilyMismatch {
                role: AddrRole::Bind,
                ..
            })
        ));

        // Port 0 resolves to `port`, so these two collide.
        let c = config(&[(1, "10.213.1.1:0"), (2, "10.213.1.1:5405")]);
        assert!(matches!(
            c.plan(),
            Err(UdpError::DuplicateAddress {
                first: NodeId(1),
                second: NodeId(2),
                ..
            })
        ));

        for bad in ["0.0.0.0:0", "239.1.1.1:0", "255.255.255.255:0"] {
            let c = config(&[(1, "10.213.1.1:0"), (2, bad)]);
            assert!(
                matches!(
                    c.plan(),
                    Err(UdpError::UnusableNodeAddress {
                        node: NodeId(2),
                        ..
                    })
                ),
                "{bad}"
            );
        }

        let c = config(&[(1, "10.213.1.1:0"), (0, "10.213.1.2:0")]);
        assert!(matches!(c.plan(), Err(UdpError::InvalidNodeId)));
        let mut c = config(&[(1, "10.213.1.1:0")]);
        c.node_id = NodeId(0);
        assert!(matches!(c.plan(), Err(UdpError::InvalidNodeId)));
        let mut c = config(&[(1, "10.213.1.1:0")]);
        c.port = 0;
        assert!(matches!(c.plan(), Err(UdpError::InvalidPort)));
    }
}
