//! [`UdpStats`]: what a UDP transport has done since it was built.
//!
//! Plain monotone counters, read with `stats()`; node/ publishes them under `runtime.` in
//! cmap (corosync keeps the equivalent in `stats.knet.*`).

/// Counters of one UDP transport. Every field only grows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UdpStats {
    /// Datagrams handed to the kernel. A `udpu` multicast counts once per receiving node.
    pub sent_datagrams: u64,
    /// Payload bytes of those datagrams.
    pub sent_bytes: u64,
    /// Datagrams delivered to the caller (after the unlisted-source filter).
    pub recv_datagrams: u64,
    /// Payload bytes delivered to the caller (after truncation).
    pub recv_bytes: u64,
    /// Sends refused with [`TransportError::WouldBlock`](totem_transport::TransportError)
    /// (`EAGAIN` or `ENOBUFS`): back-pressure, nothing lost.
    pub would_block: u64,
    /// Sends that failed with another OS error (reported as `TransportError::Io`). In a
    /// `udpu` fan-out each failing destination counts.
    pub send_errors: u64,
    /// Receives that failed with an OS error.
    pub recv_errors: u64,
    /// Datagrams dropped because their source IP is not in the node list
    /// (`block_unlisted`).
    pub dropped_unlisted: u64,
    /// Datagrams delivered truncated because the caller's buffer was too short.
    pub truncated: u64,
}
