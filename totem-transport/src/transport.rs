//! The [`Transport`] trait and the values that cross it: [`Dest`] and [`Transmit`] going out,
//! [`RecvMeta`] and [`PeerAddr`] coming in.
//!
//! The shapes follow quinn-udp (`Transmit`, `RecvMeta`, batch calls that `sendmmsg` /
//! `recvmmsg` can implement natively) cut down to what a Totem ring needs: it addresses peers
//! by node id, sends whole frames, and reads whole datagrams into buffers it owns.

use alloc::boxed::Box;
use core::fmt;
use core::net::SocketAddr;

use totem_proto::NodeId;

use crate::TransportError;

/// Largest UDP payload over IPv4: 65 535 minus the 20-byte IP and 8-byte UDP headers.
/// Frames up to this size reach the peer through IP fragmentation.
pub const MAX_UDP_PAYLOAD_V4: usize = 65_507;

/// Largest UDP payload over IPv6 without jumbograms: the 16-bit payload length (which, unlike
/// IPv4's, excludes the fixed 40-byte header) minus the 8-byte UDP header.
pub const MAX_UDP_PAYLOAD_V6: usize = 65_527;

/// Where a frame goes.
///
/// The ring names peers only by node id; mapping an id to an IP address, an InfiniBand
/// address handle or a MAC is each transport's own business (its node list), so the ring
/// never sees an address type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Dest {
    /// Every node of the cluster: a real multicast group, or a unicast fan-out to every
    /// configured node where the network has no multicast (corosync's `udpu`).
    Multicast,
    /// One node (the token, a join reply, a retransmission answer).
    Node(NodeId),
}

impl fmt::Display for Dest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Multicast => f.write_str("multicast"),
            Self::Node(node) => write!(f, "node {node}"),
        }
    }
}

/// Who a datagram came from, as far as the transport can tell.
///
/// **The authoritative sender is the node id in the totem frame header**, which the ring
/// reads and checks itself. A `PeerAddr` is what the link layer saw: use it for diagnostics
/// ("frames claiming to be node 3 arrive from 10.0.0.9") and anti-spoof checks (a transport
/// that knows the id ↔ address mapping can compare the two), never as the identity.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PeerAddr {
    /// The transport cannot say (the default, e.g. a pipe or a capture replay).
    #[default]
    Unknown,
    /// The transport mapped the source address back to a configured node.
    Node(NodeId),
    /// An IPv4 or IPv6 socket address (UDP, smoltcp).
    Socket(SocketAddr),
    /// A transport-specific handle that fits in 64 bits (an InfiniBand LID and QPN, an
    /// index into the transport's own peer table).
    Other(u64),
}

impl PeerAddr {
    /// The node id, when the transport mapped the source to one.
    pub const fn node(&self) -> Option<NodeId> {
        match self {
            Self::Node(node) => Some(*node),
            _ => None,
        }
    }
}

impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unknown => f.write_str("unknown"),
            Self::Node(node) => write!(f, "node {node}"),
            Self::Socket(addr) => fmt::Display::fmt(addr, f),
            Self::Other(handle) => write!(f, "peer {handle:#x}"),
        }
    }
}

/// What [`Transport::recv`] learned about one datagram besides its bytes.
///
/// `#[non_exhaustive]` so fields can be added (a destination address, ECN bits, as
/// quinn-udp's `RecvMeta` carries) without breaking every transport: build it with
/// [`RecvMeta::new`] and [`RecvMeta::with_truncated`].
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RecvMeta {
    /// Bytes written to the front of the caller's buffer. Never more than the buffer's length.
    pub len: usize,
    /// Where it came from, as far as the transport knows (see [`PeerAddr`]).
    pub from: PeerAddr,
    /// The datagram was longer than the buffer: only the first `len` bytes were kept and the
    /// rest is gone (`MSG_TRUNC`). A truncated totem frame fails to decode; the flag lets the
    /// driver count it as a buffer-size problem rather than as a malformed frame.
    pub truncated: bool,
}

impl RecvMeta {
    /// `len` bytes from `from`, not truncated.
    pub const fn new(len: usize, from: PeerAddr) -> Self {
        Self {
            len,
            from,
            truncated: false,
        }
    }

    /// The same metadata with the truncation flag set to `truncated`.
    #[must_use]
    pub const fn with_truncated(mut self, truncated: bool) -> Self {
        self.truncated = truncated;
        self
    }
}

/// One outgoing datagram of a [`Transport::send_batch`] call.
///
/// `#[non_exhaustive]` for the same reason as [`RecvMeta`] (a GSO segment size could join
/// it); build it with [`Transmit::new`].
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Transmit<'a> {
    /// Where it goes.
    pub dest: Dest,
    /// The whole frame, sent as one datagram.
    pub frame: &'a [u8],
}

impl<'a> Transmit<'a> {
    /// `frame` to `dest`.
    pub const fn new(dest: Dest, frame: &'a [u8]) -> Self {
        Self { dest, frame }
    }
}

/// A datagram transport as the ring sees it: non-blocking, poll-style, no `async`, no clock.
///
/// Every call returns at once. "Not now" is a value, never a wait: `send` reports
/// back-pressure as [`TransportError::WouldBlock`], `recv` reports an empty queue as
/// `Ok(None)`. How the driver learns that it is worth calling again (epoll readiness, a tokio
/// `AsyncFd`, an interrupt, polling on every loop turn) is outside the trait, which is what
/// lets the same ring code run over Linux sockets, InfiniBand queue pairs and smoltcp on a
/// microcontroller.
///
/// Datagram semantics: each `send` is one datagram, delivered whole or not at all, possibly
/// duplicated or reordered; the ring's protocol tolerates all of that. A transport must not
/// split a frame into several datagrams the receiver would see separately; if its medium has
/// a small MTU it fragments and reassembles underneath (see the crate README).
///
/// The trait is dyn-compatible (`Box<dyn Transport>` implements it), and `&mut T` implements
/// it for any transport `T`, so middleware can wrap a borrowed transport.
pub trait Transport {
    /// Largest frame [`send`](Self::send) accepts, in bytes. Constant for the transport's
    /// lifetime; the ring sizes its packing from it.
    fn max_datagram(&self) -> usize;

    /// Sends `frame` as one datagram to `dest`.
    ///
    /// `Ok(())` means the transport took the frame (it may still be lost on the way: datagram
    /// semantics). The frame is copied or sent before returning; the caller may reuse it.
    ///
    /// # Errors
    ///
    /// * [`TransportError::WouldBlock`]: nothing was sent; offer the same frame again later.
    ///   Implementations must not drop a frame silently to avoid reporting back-pressure.
    /// * [`TransportError::TooLarge`] if `frame.len() > self.max_datagram()`.
    /// * [`TransportError::UnknownNode`] if `dest` names a node without an address.
    /// * [`TransportError::Io`], [`TransportError::Closed`] for failures of the transport.
    fn send(&mut self, dest: Dest, frame: &[u8]) -> Result<(), TransportError>;

    /// Takes the next received datagram, if any, copying it into the front of `buf`.
    ///
    /// Returns `Ok(None)` when nothing is waiting. A datagram longer than `buf` is truncated
    /// and reported with [`RecvMeta::truncated`]; it is never left half-read, so the next call
    /// returns the next datagram. A zero-length `buf` is valid (every datagram truncates).
    ///
    /// # Errors
    ///
    /// [`TransportError::Io`] or [`TransportError::Closed`]; never `WouldBlock`.
    fn recv(&mut self, buf: &mut [u8]) -> Result<Option<RecvMeta>, TransportError>;

    /// Sends `transmits` in order, stopping at the first failure (as `sendmmsg` does).
    ///
    /// Returns how many were sent, counted from the front, and the error that stopped the
    /// batch, if any: `(n, Some(e))` means `transmits[..n]` went out and `transmits[n]` failed
    /// with `e` (retry it on `WouldBlock`, skip it on a per-datagram error); nothing after it
    /// was attempted. The default calls [`send`](Self::send) once per datagram; transports
    /// with a batched system call override it.
    fn send_batch(&mut self, transmits: &[Transmit<'_>]) -> (usize, Option<TransportError>) {
        for (sent, transmit) in transmits.iter().enumerate() {
            if let Err(err) = self.send(transmit.dest, transmit.frame) {
                return (sent, Some(err));
            }
        }
        (transmits.len(), None)
    }

    /// Receives up to `min(bufs.len(), metas.len())` datagrams, one per buffer, in order (as
    /// `recvmmsg` does).
    ///
    /// Returns how many were received, and the error that ended the batch, if any: `bufs[..n]`
    /// and `metas[..n]` are filled either way, so datagrams read before an error are never
    /// lost. `(0, None)` means nothing was waiting. The default calls [`recv`](Self::recv)
    /// once per buffer.
    fn recv_batch(
        &mut self,
        bufs: &mut [&mut [u8]],
        metas: &mut [RecvMeta],
    ) -> (usize, Option<TransportError>) {
        let mut received = 0;
        for (buf, meta) in bufs.iter_mut().zip(metas.iter_mut()) {
            match self.recv(buf) {
                Ok(Some(got)) => {
                    *meta = got;
                    received += 1;
                }
                Ok(None) => break,
                Err(err) => return (received, Some(err)),
            }
        }
        (received, None)
    }
}

// Forwarding impls, every method included, so a transport that overrides the batch calls
// keeps its fast path when reached through a reference or a box.
macro_rules! forward_transport {
    () => {
        fn max_datagram(&self) -> usize {
            (**self).max_datagram()
        }
        fn send(&mut self, dest: Dest, frame: &[u8]) -> Result<(), TransportError> {
            (**self).send(dest, frame)
        }
        fn recv(&mut self, buf: &mut [u8]) -> Result<Option<RecvMeta>, TransportError> {
            (**self).recv(buf)
        }
        fn send_batch(&mut self, transmits: &[Transmit<'_>]) -> (usize, Option<TransportError>) {
            (**self).send_batch(transmits)
        }
        fn recv_batch(
            &mut self,
            bufs: &mut [&mut [u8]],
            metas: &mut [RecvMeta],
        ) -> (usize, Option<TransportError>) {
            (**self).recv_batch(bufs, metas)
        }
    };
}

impl<T: Transport + ?Sized> Transport for &mut T {
    forward_transport!();
}

impl<T: Transport + ?Sized> Transport for Box<T> {
    forward_transport!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::VecDeque;
    use alloc::string::ToString;
    use alloc::vec::Vec;
    use core::net::{Ipv4Addr, SocketAddrV4};

    /// A transport that takes `accept` sends then pushes back, and replays a fixed inbox,
    /// failing once after `fail_after` datagrams: enough to pin down the batch defaults.
    struct Scripted {
        accept: usize,
        sent: Vec<(Dest, Vec<u8>)>,
        inbox: VecDeque<Vec<u8>>,
        fail_after: Option<usize>,
        received: usize,
    }

    impl Scripted {
        fn new(accept: usize, inbox: &[&[u8]]) -> Self {
            Self {
                accept,
                sent: Vec::new(),
                inbox: inbox.iter().map(|d| d.to_vec()).collect(),
                fail_after: None,
                received: 0,
            }
        }
    }

    impl Transport for Scripted {
        fn max_datagram(&self) -> usize {
            8
        }
        fn send(&mut self, dest: Dest, frame: &[u8]) -> Result<(), TransportError> {
            if frame.len() > 8 {
                return Err(TransportError::TooLarge {
                    len: frame.len(),
                    max: 8,
                });
            }
            if self.sent.len() == self.accept {
                return Err(TransportError::WouldBlock);
            }
            self.sent.push((dest, frame.to_vec()));
            Ok(())
        }
        fn recv(&mut self, buf: &mut [u8]) -> Result<Option<RecvMeta>, TransportError> {
            if self.fail_after == Some(self.received) {
                self.fail_after = None;
                return Err(TransportError::Io(5));
            }
            let Some(data) = self.inbox.pop_front() else {
                return Ok(None);
            };
            self.received += 1;
            let len = data.len().min(buf.len());
            buf[..len].copy_from_slice(&data[..len]);
            Ok(Some(
                RecvMeta::new(len, PeerAddr::Other(1)).with_truncated(len < data.len()),
            ))
        }
    }

    #[test]
    fn send_batch_stops_at_back_pressure_and_says_where() {
        let mut t = Scripted::new(2, &[]);
        let frames = [
            Transmit::new(Dest::Multicast, b"a"),
            Transmit::new(Dest::Node(NodeId(2)), b"b"),
            Transmit::new(Dest::Node(NodeId(3)), b"c"),
        ];
        assert_eq!(t.send_batch(&frames), (2, Some(TransportError::WouldBlock)));
        assert_eq!(
            t.sent,
            [
                (Dest::Multicast, b"a".to_vec()),
                (Dest::Node(NodeId(2)), b"b".to_vec())
            ]
        );
        // The caller retries from the failed one; with room again the rest goes through.
        t.accept = 3;
        assert_eq!(t.send_batch(&frames[2..]), (1, None));
        assert_eq!(t.send_batch(&[]), (0, None));
    }

    #[test]
    fn send_batch_reports_a_per_datagram_error_at_its_index() {
        let mut t = Scripted::new(10, &[]);
        let big = [0u8; 9];
        let frames = [
            Transmit::new(Dest::Multicast, b"ok"),
            Transmit::new(Dest::Multicast, &big),
        ];
        assert_eq!(
            t.send_batch(&frames),
            (1, Some(TransportError::TooLarge { len: 9, max: 8 }))
        );
    }

    #[test]
    fn recv_batch_fills_in_order_and_keeps_what_came_before_an_error() {
        let mut t = Scripted::new(0, &[b"one", b"two", b"three"]);
        t.fail_after = Some(2);
        let (mut a, mut b, mut c) = ([0u8; 8], [0u8; 8], [0u8; 8]);
        let mut bufs: [&mut [u8]; 3] = [&mut a, &mut b, &mut c];
        let mut metas = [RecvMeta::default(); 3];
        assert_eq!(
            t.recv_batch(&mut bufs, &mut metas),
            (2, Some(TransportError::Io(5)))
        );
        assert_eq!(&bufs[0][..metas[0].len], b"one");
        assert_eq!(&bufs[1][..metas[1].len], b"two");
        // The error was one-off: the next batch picks up the remaining datagram, then stops.
        assert_eq!(t.recv_batch(&mut bufs, &mut metas), (1, None));
        assert_eq!(&bufs[0][..metas[0].len], b"three");
        assert_eq!(t.recv_batch(&mut bufs, &mut metas), (0, None));
    }

    #[test]
    fn recv_batch_is_bounded_by_the_shorter_slice() {
        let mut t = Scripted::new(0, &[b"1", b"2", b"3"]);
        let (mut a, mut b) = ([0u8; 4], [0u8; 4]);
        let mut bufs: [&mut [u8]; 2] = [&mut a, &mut b];
        let mut metas = [RecvMeta::default(); 1];
        assert_eq!(t.recv_batch(&mut bufs, &mut metas), (1, None));
        assert_eq!(t.inbox.len(), 2);
    }

    #[test]
    fn references_and_boxes_are_transports_too() {
        fn drive(t: &mut dyn Transport) -> Result<(), TransportError> {
            t.send(Dest::Multicast, b"x")
        }
        let mut inner = Scripted::new(5, &[b"hi"]);
        {
            let mut by_ref = &mut inner;
            assert_eq!(by_ref.max_datagram(), 8);
            drive(&mut by_ref).unwrap();
        }
        let mut boxed: Box<dyn Transport> = Box::new(inner);
        drive(&mut *boxed).unwrap();
        let mut buf = [0u8; 1];
        let meta = boxed.recv(&mut buf).unwrap().unwrap();
        assert_eq!(
            (meta.len, meta.truncated, meta.from),
            (1, true, PeerAddr::Other(1))
        );
    }

    #[test]
    fn peer_addr_and_dest_display() {
        let sock = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 9), 5405));
        assert_eq!(PeerAddr::Socket(sock).to_string(), "10.0.0.9:5405");
        assert_eq!(PeerAddr::Node(NodeId(3)).to_string(), "node 3");
        assert_eq!(PeerAddr::Other(0x2a).to_string(), "peer 0x2a");
        assert_eq!(PeerAddr::default().to_string(), "unknown");
        assert_eq!(PeerAddr::Node(NodeId(3)).node(), Some(NodeId(3)));
        assert_eq!(PeerAddr::Socket(sock).node(), None);
        assert_eq!(Dest::Multicast.to_string(), "multicast");
        assert_eq!(Dest::Node(NodeId(4)).to_string(), "node 4");
    }
}
