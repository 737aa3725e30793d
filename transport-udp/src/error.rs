//! [`UdpError`]: why a UDP transport could not be built from its configuration.
//!
//! Only construction fails with this type; once built, a transport reports per-call
//! conditions as the shared [`TransportError`](totem_transport::TransportError). Each
//! variant names the address (and node) at fault and, for system-call failures, carries the
//! OS error as its [`source`](core::error::Error::source), so one log line is enough to fix
//! the configuration.

use core::fmt;
use core::net::{IpAddr, SocketAddr};
use std::io;

use totem_proto::NodeId;

/// Which configured address a [`UdpError::FamilyMismatch`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrRole {
    /// A node list entry.
    Node(NodeId),
    /// [`UdpConfig::bind_addr`](crate::UdpConfig::bind_addr).
    Bind,
    /// [`UdpConfig::mcast_addr`](crate::UdpConfig::mcast_addr).
    Group,
}

impl fmt::Display for AddrRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Node(id) => write!(f, "node {id}'s address"),
            Self::Bind => f.write_str("the bind address"),
            Self::Group => f.write_str("the multicast group"),
        }
    }
}

/// Why [`UdpUnicast::new`](crate::UdpUnicast::new) or
/// [`UdpMulticast::new`](crate::UdpMulticast::new) failed.
///
/// Configuration mistakes are found before any socket exists; socket failures carry the OS
/// error. `#[non_exhaustive]`: new checks may add variants.
#[non_exhaustive]
#[derive(Debug)]
pub enum UdpError {
    /// Node id 0 (as `node_id` or in the node list); totem reserves it for "no node".
    InvalidNodeId,
    /// This node's id has no entry in the node list, so it has no address to bind.
    NodeNotInNodelist(NodeId),
    /// [`UdpConfig::port`](crate::UdpConfig::port) is 0.
    InvalidPort,
    /// Addresses of different IP families in one ring: every node, the bind address and the
    /// multicast group must all be IPv4 or all IPv6 (corosync's `ip_version`).
    FamilyMismatch {
        /// Which address is of the other family.
        role: AddrRole,
        /// That address.
        addr: IpAddr,
        /// This node's address, whose family the ring uses.
        expected: IpAddr,
    },
    /// A node list address that cannot name one host: unspecified, multicast or broadcast.
    UnusableNodeAddress {
        /// The node.
        node: NodeId,
        /// Its address.
        addr: SocketAddr,
    },
    /// Two nodes share one address and port, so a datagram's source could not be mapped back
    /// to a node.
    DuplicateAddress {
        /// The shared address.
        addr: SocketAddr,
        /// The node listed first (lower id).
        first: NodeId,
        /// The node listed second.
        second: NodeId,
    },
    /// `transport: udp` without [`UdpConfig::mcast_addr`](crate::UdpConfig::mcast_addr).
    MissingMulticastGroup,
    /// [`UdpConfig::mcast_addr`](crate::UdpConfig::mcast_addr) is not a multicast address.
    NotMulticast(IpAddr),
    /// `transport: udp`: a node list entry names a port other than the group port. Every
    /// node of a multicast ring listens on the one group port (give 0 or that port).
    PortMismatch {
        /// The node.
        node: NodeId,
        /// Its configured address.
        addr: SocketAddr,
        /// The group port it should use.
        port: u16,
    },
    /// [`UdpConfig::ttl`](crate::UdpConfig::ttl) above 255.
    InvalidTtl(u32),
    /// The bind address is not an address of this host (`EADDRNOTAVAIL`; for IPv6 also an
    /// address still in duplicate address detection).
    NotLocal {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: io::Error,
    },
    /// Another socket already has this address and port (`EADDRINUSE`).
    AddressInUse {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: io::Error,
    },
    /// `bind` failed for another reason (`EACCES` for a privileged port, …).
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: io::Error,
    },
    /// Creating or configuring the socket failed.
    Socket {
        /// The call or option that failed (`"socket"`, `"SO_RCVBUF"`, `"IP_MULTICAST_IF"`, …).
        op: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// Joining the multicast group on the bind address's interface failed.
    MulticastJoin {
        /// The group.
        group: IpAddr,
        /// The address whose interface was asked to join.
        interface: IpAddr,
        /// The OS error.
        source: io::Error,
    },
    /// No interface carries the IPv6 bind address (IPv6 multicast options need the interface
    /// index).
    NoInterface(IpAddr),
}

impl fmt::Display for UdpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidNodeId => f.write_str("node id 0 is reserved and cannot be configured"),
            Self::NodeNotInNodelist(id) => {
                write!(f, "this node's id {id} is missing from the node list")
            }
            Self::InvalidPort => f.write_str("port 0 is not a usable totem port"),
            Self::FamilyMismatch {
                role,
                addr,
                expected,
            } => write!(
                f,
                "{role} {addr} is not of the same IP family as this node's address {expected}"
            ),
            Self::UnusableNodeAddress { node, addr } => write!(
                f,
                "node {node}'s address {addr} is unspecified, multicast or broadcast"
            ),
            Self::DuplicateAddress {
                addr,
                first,
                second,
            } => write!(f, "nodes {first} and {second} share the address {addr}"),
            Self::MissingMulticastGroup => {
                f.write_str("transport udp needs a multicast group (mcastaddr)")
            }
            Self::NotMulticast(addr) => write!(f, "mcastaddr {addr} is not a multicast address"),
            Self::PortMismatch { node, addr, port } => write!(
                f,
                "node {node}'s address {addr} must use the multicast port {port}"
            ),
            Self::InvalidTtl(ttl) => write!(f, "multicast ttl {ttl} is above 255"),
            Self::NotLocal { addr, source } => {
                write!(f, "{addr} is not an address of this host: {source}")
            }
            Self::AddressInUse { addr, source } => {
                write!(f, "{addr} is already in use: {source}")
            }
            Self::Bind { addr, source } => write!(f, "cannot bind {addr}: {source}"),
            Self::Socket { op, source } => write!(f, "socket setup failed at {op}: {source}"),
            Self::MulticastJoin {
                group,
                interface,
                source,
            } => write!(
                f,
                "cannot join multicast group {group} on the interface of {interface}: {source}"
            ),
            Self::NoInterface(addr) => write!(f, "no network interface carries {addr}"),
        }
    }
}

impl core::error::Error for UdpError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::NotLocal { source, .. }
            | Self::AddressInUse { source, .. }
            | Self::Bind { source, .. }
            | Self::Socket { source, .. }
            | Self::MulticastJoin { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl UdpError {
    /// `bind(addr)` failed with `source`: sorted into the three bind variants.
    pub(crate) fn from_bind(addr: SocketAddr, source: io::Error) -> Self {
        match source.raw_os_error() {
            Some(libc::EADDRNOTAVAIL) => Self::NotLocal { addr, source },
            Some(libc::EADDRINUSE) => Self::AddressInUse { addr, source },
            _ => Self::Bind { addr, source },
        }
    }

    /// A socket call or option `op` failed.
    pub(crate) fn socket(op: &'static str) -> impl FnOnce(io::Error) -> Self {
        move |source| Self::Socket { op, source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::error::Error as _;

    #[test]
    fn bind_errors_are_sorted_by_errno() {
        let addr: SocketAddr = "10.213.99.99:5405".parse().unwrap();
        let e = UdpError::from_bind(addr, io::Error::from_raw_os_error(libc::EADDRNOTAVAIL));
        assert!(matches!(e, UdpError::NotLocal { .. }));
        assert!(
            e.to_string()
                .starts_with("10.213.99.99:5405 is not an address of this host")
        );
        assert!(e.source().is_some());
        let e = UdpError::from_bind(addr, io::Error::from_raw_os_error(libc::EADDRINUSE));
        assert!(matches!(e, UdpError::AddressInUse { .. }));
        let e = UdpError::from_bind(addr, io::Error::from_raw_os_error(libc::EACCES));
        assert!(matches!(e, UdpError::Bind { .. }));
    }

    #[test]
    fn display_names_the_culprit() {
        let e = UdpError::FamilyMismatch {
            role: AddrRole::Node(NodeId(3)),
            addr: "fd13:213::3".parse().unwrap(),
            expected: "127.0.0.1".parse().unwrap(),
        };
        assert_eq!(
            e.to_string(),
            "node 3's address fd13:213::3 is not of the same IP family as this node's address \
             127.0.0.1"
        );
        assert_eq!(
            UdpError::NodeNotInNodelist(NodeId(4)).to_string(),
            "this node's id 4 is missing from the node list"
        );
        assert!(UdpError::InvalidTtl(300).source().is_none());
    }
}
