//! [`UdpUnicast`]: corosync's `transport: udpu`, unicast UDP to every node list member.
//!
//! One socket bound to this node's address and port. [`Dest::Node`] is one datagram to that
//! node; [`Dest::Multicast`] is a copy to every *other* node in node-id order, sent with
//! `sendmmsg` on Linux (one system call for up to 32 copies). Because every datagram leaves
//! from the bound socket, a peer sees this node's configured address *and port* as the
//! source, which is what lets it map the datagram back to a node id even when several nodes
//! share an IP with different ports (tests on 127.0.0.1, containers).
//!
//! [`Dest::Node`]: totem_transport::Dest::Node
//! [`Dest::Multicast`]: totem_transport::Dest::Multicast

use alloc::vec::Vec;
use core::net::SocketAddr;

use crate::config::UdpConfig;
use crate::endpoint::{Endpoint, new_socket, set_buffers};
use crate::error::UdpError;
use crate::sys::SourceCtl;

/// `transport: udpu`: unicast UDP, multicast emulated by a copy to every other node.
///
/// Implements [`Transport`](totem_transport::Transport) (with `sendmmsg` / `recvmmsg` batch
/// calls on Linux), [`AsFd`](std::os::fd::AsFd) and [`AsRawFd`](std::os::fd::AsRawFd) for
/// readiness polling. See the [crate docs](crate) for the behaviour shared with
/// [`UdpMulticast`](crate::UdpMulticast).
///
/// ```
/// use std::collections::BTreeMap;
/// use totem_proto::NodeId;
/// use totem_transport::{Dest, Transport};
/// use transport_udp::{UdpConfig, UdpUnicast};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let held = [std::net::UdpSocket::bind("127.0.0.1:0")?, std::net::UdpSocket::bind("127.0.0.1:0")?];
/// # let (a, b) = (held[0].local_addr()?, held[1].local_addr()?);
/// # drop(held); // two distinct free ports
/// let nodes = BTreeMap::from([(NodeId(1), a), (NodeId(2), b)]);
/// let mut one = UdpUnicast::new(&UdpConfig::new(NodeId(1), nodes.clone()))?;
/// let mut two = UdpUnicast::new(&UdpConfig::new(NodeId(2), nodes))?;
///
/// one.send(Dest::Multicast, b"join")?; // to node 2, the only other node
/// let mut buf = vec![0u8; two.max_datagram()];
/// let meta = loop {
///     if let Some(meta) = two.recv(&mut buf)? { break meta; }
/// };
/// assert_eq!(&buf[..meta.len], b"join");
/// assert_eq!(meta.from.node(), Some(NodeId(1)));
/// # Ok(()) }
/// ```
pub struct UdpUnicast {
    ep: Endpoint,
}

impl UdpUnicast {
    /// Binds this node's address and port (or [`UdpConfig::bind_addr`] with the node's
    /// port) and sets the socket up: non-blocking, requested buffer sizes.
    ///
    /// # Errors
    ///
    /// Configuration errors (see [`UdpError`]) before any socket exists; then
    /// [`UdpError::NotLocal`], [`UdpError::AddressInUse`], [`UdpError::Bind`] or
    /// [`UdpError::Socket`] with the OS error.
    pub fn new(config: &UdpConfig) -> Result<Self, UdpError> {
        let plan = config.plan()?;
        let socket = new_socket(plan.bind)?;
        let buffers = set_buffers(&socket, config)?;
        socket
            .bind(&plan.bind.into())
            .map_err(|e| UdpError::from_bind(plan.bind, e))?;
        let fanout: Vec<SocketAddr> = plan
            .nodes
            .iter()
            .filter(|&(&id, _)| id != plan.node_id)
            .map(|(_, &addr)| addr)
            .collect();
        // The socket is bound to the node's own address, so the kernel already sends from
        // it: no source pinning needed.
        let ep = Endpoint::new(socket, plan, fanout, config, SourceCtl::NONE, buffers);
        Ok(Self { ep })
    }
}

crate::common_api!(UdpUnicast);
