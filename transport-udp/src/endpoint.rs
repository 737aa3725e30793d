//! `Endpoint`: the socket-owning core that both transports wrap.
//!
//! The two transports differ only in how they are set up (which address the socket binds,
//! multicast options) and in what [`Dest::Multicast`] means: the group address for `udp`, a
//! copy to every other node for `udpu`. Both are expressed as a *fan-out list*, so the send
//! path, the receive path, the source filter and the counters live here once.
//!
//! ## Sending
//!
//! Every send, single or batched, goes through [`Endpoint::send_batch`]: each transmit
//! expands to its destinations (one, or the fan-out list), and the resulting datagrams leave
//! in chunks of up to [`BATCH`] per `sendmmsg` (Linux) or one per `sendmsg` (elsewhere, and
//! for a chunk of one).
//!
//! A `udpu` fan-out can be cut by back-pressure half way: the frame reached some nodes and
//! the socket buffer filled before the rest. The trait says `WouldBlock` means "offer the
//! same frame again", so the endpoint remembers the frame and the first destination not yet
//! served; when the caller offers that same frame as the next `Dest::Multicast`, sending
//! resumes there instead of duplicating it to the nodes that already have it. Anything else
//! offered first cancels the resumption (those nodes simply got the frame: datagram
//! semantics). A hard error on one destination of a fan-out does not stop the others; the
//! transmit then reports the first such error after every destination was tried (if
//! back-pressure cuts that fan-out later, `WouldBlock` wins and the error is only counted).
//!
//! ## Receiving
//!
//! The source address of each datagram is mapped back to a node: an exact address-and-port
//! match gives [`PeerAddr::Node`]; a node list IP with another port gives
//! [`PeerAddr::Socket`] (a node restarted with another port, a tool); an IP outside the node
//! list is dropped and counted when `block_unlisted` is on (corosync's
//! `block_unlisted_ips`), else delivered as `PeerAddr::Socket`. Dropped datagrams never end a
//! `recv`: it reads on until it has one to deliver or the queue is empty, so `Ok(None)`
//! always means the queue is empty.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;
use core::fmt;
use core::net::{IpAddr, SocketAddr};
use std::io;
use std::os::fd::{AsFd, BorrowedFd};

use socket2::{Domain, Protocol, Socket, Type};
use totem_proto::NodeId;
use totem_transport::{Dest, PeerAddr, RecvMeta, Transmit, TransportError};

use crate::config::{Plan, UdpConfig};
use crate::error::UdpError;
use crate::stats::UdpStats;
use crate::sys::{self, BATCH, Out, SourceCtl};

/// Datagrams per send system call: a `sendmmsg` batch on Linux, one `sendmsg` elsewhere.
const CHUNK: usize = if cfg!(target_os = "linux") { BATCH } else { 1 };

/// A non-blocking UDP socket of the family of `bind`, IPv6 sockets restricted to IPv6.
pub(crate) fn new_socket(bind: SocketAddr) -> Result<Socket, UdpError> {
    let socket = Socket::new(Domain::for_address(bind), Type::DGRAM, Some(Protocol::UDP))
        .map_err(UdpError::socket("socket"))?;
    if bind.is_ipv6() {
        // No IPv4-mapped traffic on an IPv6 ring: one family per ring, as corosync.
        socket
            .set_only_v6(true)
            .map_err(UdpError::socket("IPV6_V6ONLY"))?;
    }
    socket
        .set_nonblocking(true)
        .map_err(UdpError::socket("O_NONBLOCK"))?;
    Ok(socket)
}

/// Requests the configured buffer sizes and returns what the kernel granted, `(send, recv)`
/// as `getsockopt` reports them (Linux doubles the request to account for its bookkeeping,
/// and caps a plain request at `2 × wmem_max` / `2 × rmem_max`).
///
/// On Linux the `…BUFFORCE` options are tried first: they may exceed the sysctl caps but
/// need `CAP_NET_ADMIN`; without it the plain options are used (knet does the same).
pub(crate) fn set_buffers(socket: &Socket, config: &UdpConfig) -> Result<(usize, usize), UdpError> {
    if config.send_buffer > 0 {
        #[cfg(target_os = "linux")]
        let forced =
            sys::set_buffer_forced(socket.as_fd(), sys::Buffer::Send, config.send_buffer).is_ok();
        #[cfg(not(target_os = "linux"))]
        let forced = false;
        if !forced {
            socket
                .set_send_buffer_size(config.send_buffer)
                .map_err(UdpError::socket("SO_SNDBUF"))?;
        }
    }
    if config.recv_buffer > 0 {
        #[cfg(target_os = "linux")]
        let forced =
            sys::set_buffer_forced(socket.as_fd(), sys::Buffer::Recv, config.recv_buffer).is_ok();
        #[cfg(not(target_os = "linux"))]
        let forced = false;
        if !forced {
            socket
                .set_recv_buffer_size(config.recv_buffer)
                .map_err(UdpError::socket("SO_RCVBUF"))?;
        }
    }
    let send = socket
        .send_buffer_size()
        .map_err(UdpError::socket("getsockopt(SO_SNDBUF)"))?;
    let recv = socket
        .recv_buffer_size()
        .map_err(UdpError::socket("getsockopt(SO_RCVBUF)"))?;
    Ok((send, recv))
}

/// How a failed send is reported to the caller; `None` means "interrupted by a signal,
/// try the same call again".
///
/// `EAGAIN`/`EWOULDBLOCK` (socket buffer full) and `ENOBUFS` (a device or qdisc queue full,
/// which Linux reports for UDP instead of blocking) are back-pressure: nothing was sent and
/// the caller retries later. Everything else is `Io(errno)`.
pub(crate) fn map_send_error(err: &io::Error) -> Option<TransportError> {
    match err.raw_os_error() {
        Some(libc::EINTR) => None,
        Some(code)
            if code == libc::EAGAIN || code == libc::EWOULDBLOCK || code == libc::ENOBUFS =>
        {
            Some(TransportError::WouldBlock)
        }
        Some(code) => Some(TransportError::Io(code)),
        None => match err.kind() {
            io::ErrorKind::Interrupted => None,
            io::ErrorKind::WouldBlock => Some(TransportError::WouldBlock),
            _ => Some(TransportError::Io(libc::EIO)),
        },
    }
}

/// What a failed receive means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RecvFailure {
    /// Nothing queued (`EAGAIN`): `Ok(None)` to the caller.
    Empty,
    /// Interrupted by a signal: call again.
    Interrupted,
    /// A real error.
    Fail(TransportError),
}

pub(crate) fn map_recv_error(err: &io::Error) -> RecvFailure {
    match err.kind() {
        io::ErrorKind::WouldBlock => RecvFailure::Empty,
        io::ErrorKind::Interrupted => RecvFailure::Interrupted,
        _ => RecvFailure::Fail(TransportError::Io(err.raw_os_error().unwrap_or(libc::EIO))),
    }
}

/// A fan-out cut short by back-pressure: the frame and the first destination not served.
#[derive(Debug, Default)]
struct Pending {
    /// A copy of the frame (its allocation is reused for the next cut fan-out).
    frame: Vec<u8>,
    /// Index into the fan-out list to resume at; `None` when nothing is pending.
    next: Option<usize>,
}

/// The socket and everything both transports share. See the [module docs](self).
pub(crate) struct Endpoint {
    socket: Socket,
    node_id: NodeId,
    /// The address this node sends from (for udp, the socket itself binds the wildcard).
    local: SocketAddr,
    nodes: BTreeMap<NodeId, SocketAddr>,
    by_addr: BTreeMap<(IpAddr, u16), NodeId>,
    listed: BTreeSet<IpAddr>,
    /// What `Dest::Multicast` sends to: `[group]` (udp) or every other node in id order
    /// (udpu).
    fanout: Vec<SocketAddr>,
    block_unlisted: bool,
    max_datagram: usize,
    source: SourceCtl,
    buffers: (usize, usize),
    stats: UdpStats,
    pending: Pending,
    /// Runs of datagrams to one destination go as one UDP GSO send (Linux), until the
    /// kernel refuses it once.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    gso: bool,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("socket", &self.socket)
            .field("node_id", &self.node_id)
            .field("local", &self.local)
            .field("nodes", &self.nodes)
            .field("fanout", &self.fanout)
            .field("block_unlisted", &self.block_unlisted)
            .field("source_pinned", &self.source.is_pinned())
            .field("buffers", &self.buffers)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    pub(crate) fn new(
        socket: Socket,
        plan: Plan,
        fanout: Vec<SocketAddr>,
        config: &UdpConfig,
        source: SourceCtl,
        buffers: (usize, usize),
    ) -> Self {
        let listed = plan.nodes.values().map(SocketAddr::ip).collect();
        Self {
            socket,
            node_id: plan.node_id,
            local: plan.bind,
            nodes: plan.nodes,
            by_addr: plan.by_addr,
            listed,
            fanout,
            block_unlisted: config.block_unlisted,
            max_datagram: plan.max_datagram,
            source,
            buffers,
            stats: UdpStats::default(),
            pending: Pending::default(),
            gso: cfg!(target_os = "linux"),
        }
    }

    pub(crate) fn node_id(&self) -> NodeId {
        self.node_id
    }

    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.local
    }

    pub(crate) fn nodes(&self) -> &BTreeMap<NodeId, SocketAddr> {
        &self.nodes
    }

    pub(crate) fn buffer_sizes(&self) -> (usize, usize) {
        self.buffers
    }

    pub(crate) fn stats(&self) -> UdpStats {
        self.stats
    }

    pub(crate) fn max_datagram(&self) -> usize {
        self.max_datagram
    }

    pub(crate) fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }

    pub(crate) fn socket(&self) -> &Socket {
        &self.socket
    }

    /// The destinations of one transmit, after the size check.
    fn targets(&self, transmit: &Transmit<'_>) -> Result<&[SocketAddr], TransportError> {
        if transmit.frame.len() > self.max_datagram {
            return Err(TransportError::TooLarge {
                len: transmit.frame.len(),
                max: self.max_datagram,
            });
        }
        match transmit.dest {
            Dest::Multicast => Ok(&self.fanout),
            Dest::Node(id) => self
                .nodes
                .get(&id)
                .map(core::slice::from_ref)
                .ok_or(TransportError::UnknownNode(id)),
        }
    }

    /// Where to start the fan-out of `first`: past the destinations already served if it is
    /// the frame whose fan-out back-pressure cut short, else at the beginning. Any pending
    /// resumption is consumed either way.
    fn resume_at(&mut self, first: &Transmit<'_>) -> usize {
        match self.pending.next.take() {
            Some(next)
                if first.dest == Dest::Multicast
                    && next < self.fanout.len()
                    && self.pending.frame == first.frame =>
            {
                next
            }
            _ => 0,
        }
    }

    /// One system call for the front of `msgs`; how many went out.
    fn send_run(&mut self, msgs: &[Out<'_>]) -> io::Result<usize> {
        #[cfg(target_os = "linux")]
        if msgs.len() > 1 {
            let sent = sys::send_many(self.socket.as_fd(), msgs, &self.source, self.gso);
            return match sent {
                // From now on one datagram per entry (nothing was sent: same call again).
                Err(e) if self.gso && sys::gso_refused(&e) => {
                    self.gso = false;
                    sys::send_many(self.socket.as_fd(), msgs, &self.source, false)
                }
                other => other,
            };
        }
        match msgs.first() {
            Some(out) => sys::send_one(self.socket.as_fd(), out, &self.source).map(|_| 1),
            None => Ok(0),
        }
    }

    pub(crate) fn send(&mut self, dest: Dest, frame: &[u8]) -> Result<(), TransportError> {
        match self.send_batch(&[Transmit::new(dest, frame)]) {
            (_, Some(err)) => Err(err),
            _ => Ok(()),
        }
    }

    /// The trait's `send_batch` contract, with fan-out expansion and resumption (see the
    /// module docs).
    pub(crate) fn send_batch(
        &mut self,
        transmits: &[Transmit<'_>],
    ) -> (usize, Option<TransportError>) {
        let Some(first) = transmits.first() else {
            return (0, None);
        };
        // (t, k): the next datagram is transmit t's k-th destination.
        let mut t = 0;
        let mut k = self.resume_at(first);
        // A hard error on one destination of transmit t; reported once t is done.
        let mut failed: Option<TransportError> = None;
        loop {
            // Settle (t, k) on a datagram still to send, closing finished transmits.
            loop {
                let Some(transmit) = transmits.get(t) else {
                    // `failed` is always reported when its transmit closes, below.
                    return (t, None);
                };
                let count = match self.targets(transmit) {
                    Ok(targets) => targets.len(),
                    Err(err) => return (t, Some(err)),
                };
                if k < count {
                    break;
                }
                if let Some(err) = failed {
                    return (t, Some(err));
                }
                t += 1;
                k = 0;
            }

            // Fill one chunk from (t, k), across transmits, but never past transmit t once
            // one of its destinations failed (nothing after a failed transmit is attempted).
            let mut chunk = [Out::EMPTY; CHUNK];
            let mut at = [(0usize, 0usize); CHUNK];
            let (mut ft, mut fk, mut n) = (t, k, 0);
            while n < CHUNK {
                let Some(transmit) = transmits.get(ft) else {
                    break;
                };
                let Ok(targets) = self.targets(transmit) else {
                    break; // reported when (t, k) settles on it
                };
                if let Some(&to) = targets.get(fk) {
                    chunk[n] = Out {
                        to,
                        data: transmit.frame,
                    };
                    at[n] = (ft, fk);
                    n += 1;
                    fk += 1;
                } else {
                    if failed.is_some() {
                        break;
                    }
                    ft += 1;
                    fk = 0;
                }
            }
            // The settle loop guarantees (t, k) names a datagram, so n >= 1.

            let result = match self.send_run(&chunk[..n]) {
                // Nothing taken and no error: treat as back-pressure rather than spin.
                Ok(0) => Err(io::ErrorKind::WouldBlock.into()),
                other => other,
            };
            match result {
                Ok(m) => {
                    let m = m.min(n);
                    for out in &chunk[..m] {
                        self.stats.sent_datagrams += 1;
                        self.stats.sent_bytes += out.data.len() as u64;
                    }
                    (t, k) = if m < n { at[m] } else { (ft, fk) };
                }
                Err(err) => match map_send_error(&err) {
                    None => {} // interrupted: the same datagram again
                    Some(TransportError::WouldBlock) => {
                        self.stats.would_block += 1;
                        if k > 0 {
                            // Part of this fan-out went out: remember where to resume.
                            self.pending.frame.clear();
                            self.pending.frame.extend_from_slice(transmits[t].frame);
                            self.pending.next = Some(k);
                        }
                        return (t, Some(TransportError::WouldBlock));
                    }
                    Some(other) => {
                        self.stats.send_errors += 1;
                        failed.get_or_insert(other);
                        k += 1; // skip this destination, serve the others
                    }
                },
            }
        }
    }

    /// Maps a source address to what the caller sees; `None` drops it (unlisted, counted).
    fn peer(&mut self, from: Option<SocketAddr>) -> Option<PeerAddr> {
        let peer = match from {
            Some(addr) => match self.by_addr.get(&(addr.ip(), addr.port())) {
                Some(&id) => Some(PeerAddr::Node(id)),
                None if self.listed.contains(&addr.ip()) || !self.block_unlisted => {
                    Some(PeerAddr::Socket(addr))
                }
                None => None,
            },
            None if self.block_unlisted => None,
            None => Some(PeerAddr::Unknown),
        };
        if peer.is_none() {
            self.stats.dropped_unlisted += 1;
        }
        peer
    }

    /// Counts and describes a datagram handed to the caller.
    fn deliver(&mut self, len: usize, truncated: bool, from: PeerAddr) -> RecvMeta {
        self.stats.recv_datagrams += 1;
        self.stats.recv_bytes += len as u64;
        if truncated {
            self.stats.truncated += 1;
        }
        RecvMeta::new(len, from).with_truncated(truncated)
    }

    pub(crate) fn recv(&mut self, buf: &mut [u8]) -> Result<Option<RecvMeta>, TransportError> {
        loop {
            match sys::recv_one(self.socket.as_fd(), buf) {
                Ok(got) => {
                    if let Some(from) = self.peer(got.from) {
                        return Ok(Some(self.deliver(got.len, got.truncated, from)));
                    }
                }
                Err(err) => match map_recv_error(&err) {
                    RecvFailure::Empty => return Ok(None),
                    RecvFailure::Interrupted => {}
                    RecvFailure::Fail(e) => {
                        self.stats.recv_errors += 1;
                        return Err(e);
                    }
                },
            }
        }
    }

    /// `recvmmsg` in chunks of up to [`BATCH`]; dropped (unlisted) datagrams leave no hole:
    /// later ones are moved down so `bufs[..n]` / `metas[..n]` stay contiguous.
    #[cfg(target_os = "linux")]
    pub(crate) fn recv_batch(
        &mut self,
        bufs: &mut [&mut [u8]],
        metas: &mut [RecvMeta],
    ) -> (usize, Option<TransportError>) {
        let want = bufs.len().min(metas.len());
        let mut filled = 0;
        let mut got = [sys::Received::default(); BATCH];
        while filled < want {
            let asked = (want - filled).min(BATCH);
            let n = match sys::recv_many(
                self.socket.as_fd(),
                &mut bufs[filled..filled + asked],
                &mut got,
            ) {
                Ok(n) => n,
                Err(err) => match map_recv_error(&err) {
                    RecvFailure::Empty => break,
                    RecvFailure::Interrupted => continue,
                    RecvFailure::Fail(e) => {
                        self.stats.recv_errors += 1;
                        return (filled, Some(e));
                    }
                },
            };
            let mut keep = filled;
            for (i, datagram) in got[..n].iter().enumerate() {
                let Some(from) = self.peer(datagram.from) else {
                    continue;
                };
                let slot = filled + i;
                let (mut len, mut truncated) = (datagram.len, datagram.truncated);
                if keep != slot {
                    // An earlier datagram of this chunk was dropped: move this one down. A
                    // shorter buffer there cuts it, and says so.
                    let (head, tail) = bufs.split_at_mut(slot);
                    let dst = &mut head[keep];
                    let fit = len.min(dst.len());
                    dst[..fit].copy_from_slice(&tail[0][..fit]);
                    truncated |= fit < len;
                    len = fit;
                }
                metas[keep] = self.deliver(len, truncated, from);
                keep += 1;
            }
            filled = keep;
            if n < asked {
                break; // the queue ran dry
            }
        }
        (filled, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_pressure_errnos_map_to_would_block_and_the_rest_to_io() {
        let map = |code| map_send_error(&io::Error::from_raw_os_error(code));
        assert_eq!(map(libc::EAGAIN), Some(TransportError::WouldBlock));
        assert_eq!(map(libc::EWOULDBLOCK), Some(TransportError::WouldBlock));
        assert_eq!(map(libc::ENOBUFS), Some(TransportError::WouldBlock));
        assert_eq!(map(libc::EINTR), None);
        assert_eq!(
            map(libc::ENETUNREACH),
            Some(TransportError::Io(libc::ENETUNREACH))
        );
        assert_eq!(
            map(libc::EMSGSIZE),
            Some(TransportError::Io(libc::EMSGSIZE))
        );
        assert_eq!(
            map_send_error(&io::ErrorKind::WouldBlock.into()),
            Some(TransportError::WouldBlock)
        );
        assert_eq!(
            map_send_error(&io::Error::other("no errno")),
            Some(TransportError::Io(libc::EIO))
        );

        let recv = |code| map_recv_error(&io::Error::from_raw_os_error(code));
        assert_eq!(recv(libc::EAGAIN), RecvFailure::Empty);
        assert_eq!(recv(libc::EINTR), RecvFailure::Interrupted);
        assert_eq!(
            recv(libc::EBADF),
            RecvFailure::Fail(TransportError::Io(libc::EBADF))
        );
    }
}
