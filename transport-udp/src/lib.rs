//! # transport-udp: the `Transport` trait over UDP sockets (std, socket2, libc)
//!
//! corosync's two UDP transports behind [`totem_transport::Transport`]:
//!
//! * [`UdpMulticast`] (`transport: udp`): `Dest::Multicast` is one datagram to an IP
//!   multicast group, `Dest::Node` a unicast datagram (the token).
//! * [`UdpUnicast`] (`transport: udpu`): `Dest::Multicast` is a copy to every other node
//!   (`sendmmsg` fan-out), `Dest::Node` one datagram.
//!
//! ## Layer map
//!
//! ```text
//!  node/ driver ── AsyncFd(transport) ──► Transport::send / recv / *_batch
//!                                          │
//!  transport-udp                           ▼
//!    unicast.rs    UdpUnicast::new   ┐  socket set-up per transport
//!    multicast.rs  UdpMulticast::new ┘
//!    endpoint.rs   Endpoint: fan-out, batching, back-pressure, source filter, counters
//!    config.rs     UdpConfig → validated Plan (ids, families, ports, duplicates)
//!    error.rs      UdpError (construction only)      stats.rs  UdpStats
//!    sys.rs        the only unsafe code: recvmsg/sendmsg, recvmmsg/sendmmsg, PKTINFO,
//!                  SO_*BUFFORCE, getifaddrs
//!                                          │
//!  kernel UDP/IP (fragmentation, multicast routing, socket buffers)
//! ```
//!
//! **Depends on**: `totem-transport` (the trait, `Dest`, `PeerAddr`, `RecvMeta`,
//! `TransportError`), `totem-proto` (`NodeId`), `socket2`, `libc`. **Never touches** the
//! ring's logic, frame contents, a clock or a thread: it moves opaque frames, and the driver
//! decides when to call it (STYLE point 10). std, Unix (Linux first).
//!
//! ## Behaviour shared by both transports
//!
//! * **Non-blocking.** `send` returns [`TransportError::WouldBlock`] when the socket buffer
//!   or a device queue is full (`EAGAIN`, `ENOBUFS`): nothing was sent, offer the same frame
//!   again. Other OS errors are `Io(errno)`; nothing is dropped silently. A `udpu` fan-out
//!   cut by back-pressure resumes where it stopped when the same frame is offered again
//!   (no duplicates to the nodes that already have it). `recv` returns `Ok(None)` when the
//!   queue is empty.
//! * **Big frames.** [`Transport::max_datagram`] is 65 507 bytes over IPv4 and 65 527 over
//!   IPv6; frames above the MTU travel as IP fragments (see the README).
//! * **Sources.** A datagram whose source address and port are a node's is reported as
//!   [`PeerAddr::Node`]; one from a node list IP but another port as [`PeerAddr::Socket`];
//!   one from an IP outside the node list is dropped and counted when
//!   [`UdpConfig::block_unlisted`] is on (the default, corosync's `block_unlisted_ips`), else
//!   delivered as `PeerAddr::Socket`. The authoritative sender stays the node id in the
//!   frame header.
//! * **Truncation** is reported in [`RecvMeta::truncated`] (`MSG_TRUNC`).
//! * **Batches.** On Linux `send_batch` / `recv_batch` use `sendmmsg` / `recvmmsg`, up to
//!   32 datagrams per system call; elsewhere sends go one `sendmsg` each and `recv_batch` is
//!   the trait's default loop.
//! * **Segmentation offload.** On Linux a run of datagrams to one destination whose lengths
//!   are equal (the last may be shorter) leaves as one `UDP_SEGMENT` send: one trip through
//!   the stack, cut by the kernel (or the NIC) into the same datagrams. A token visit's
//!   frames of one multicast are such a run. If the path refuses it once (`EIO`, `EINVAL`:
//!   no checksum offload, IPsec, an old kernel) the endpoint sends without it from then on.
//! * **Buffers** of [`UdpConfig::send_buffer`] / [`UdpConfig::recv_buffer`] (4 MiB each by
//!   default) are requested, with `SO_*BUFFORCE` when the process may exceed the sysctl
//!   caps, and what the kernel granted is reported by `buffer_sizes()`.
//! * **Readiness.** Both implement [`AsFd`](std::os::fd::AsFd) and
//!   [`AsRawFd`](std::os::fd::AsRawFd): the daemon wraps the transport in tokio's
//!   `AsyncFd` (or any epoll loop); no async runtime is needed here.
//! * **Counters** in [`UdpStats`].
//!
//! [`Transport::max_datagram`]: totem_transport::Transport::max_datagram
//! [`TransportError::WouldBlock`]: totem_transport::TransportError::WouldBlock
//! [`PeerAddr::Node`]: totem_transport::PeerAddr::Node
//! [`PeerAddr::Socket`]: totem_transport::PeerAddr::Socket
//! [`RecvMeta::truncated`]: totem_transport::RecvMeta::truncated
#![warn(missing_docs)]
// Unsafe code lives in `sys` only (STYLE point 14), and every block there says why it holds.
#![deny(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]
// Panic means bug: no unwrap/expect/panic on input outside tests (STYLE point 6).
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

#[cfg(not(unix))]
compile_error!("transport-udp needs the Unix socket API (it is written for Linux first)");

extern crate alloc;

mod config;
mod endpoint;
mod error;
mod multicast;
mod stats;
#[allow(unsafe_code)]
mod sys;
mod unicast;

#[cfg(all(test, target_os = "linux"))]
mod tests;

pub use config::{DEFAULT_BUFFER_SIZE, DEFAULT_PORT, DEFAULT_TTL, UdpConfig};
pub use error::{AddrRole, UdpError};
pub use multicast::UdpMulticast;
pub use stats::UdpStats;
pub use unicast::UdpUnicast;

/// The accessors and trait impls both transports share, forwarding to their `ep: Endpoint`.
macro_rules! common_api {
    ($ty:ident) => {
        impl $ty {
            /// This node's id.
            pub fn node_id(&self) -> ::totem_proto::NodeId {
                self.ep.node_id()
            }

            /// The address this node sends from and is known by: its node list address (or
            /// the bind address) and port. (`UdpMulticast`'s socket itself binds the
            /// wildcard address on that port.)
            pub fn local_addr(&self) -> ::core::net::SocketAddr {
                self.ep.local_addr()
            }

            /// The node list, with default ports filled in.
            pub fn nodelist(
                &self,
            ) -> &::alloc::collections::BTreeMap<::totem_proto::NodeId, ::core::net::SocketAddr>
            {
                self.ep.nodes()
            }

            /// `(send, receive)` socket buffer sizes the kernel granted, in bytes, as
            /// `getsockopt(SO_SNDBUF / SO_RCVBUF)` reports them: Linux doubles a request (for
            /// its bookkeeping) and caps it at twice `net.core.wmem_max` / `rmem_max` unless
            /// the process may force it (`CAP_NET_ADMIN`).
            pub fn buffer_sizes(&self) -> (usize, usize) {
                self.ep.buffer_sizes()
            }

            /// The counters so far.
            pub fn stats(&self) -> $crate::UdpStats {
                self.ep.stats()
            }
        }

        impl ::core::fmt::Debug for $ty {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.debug_struct(stringify!($ty))
                    .field("ep", &self.ep)
                    .finish_non_exhaustive()
            }
        }

        impl ::std::os::fd::AsFd for $ty {
            fn as_fd(&self) -> ::std::os::fd::BorrowedFd<'_> {
                self.ep.as_fd()
            }
        }

        impl ::std::os::fd::AsRawFd for $ty {
            fn as_raw_fd(&self) -> ::std::os::fd::RawFd {
                ::std::os::fd::AsRawFd::as_raw_fd(self.ep.socket())
            }
        }

        impl ::totem_transport::Transport for $ty {
            fn max_datagram(&self) -> usize {
                self.ep.max_datagram()
            }

            fn send(
                &mut self,
                dest: ::totem_transport::Dest,
                frame: &[u8],
            ) -> Result<(), ::totem_transport::TransportError> {
                self.ep.send(dest, frame)
            }

            fn recv(
                &mut self,
                buf: &mut [u8],
            ) -> Result<Option<::totem_transport::RecvMeta>, ::totem_transport::TransportError>
            {
                self.ep.recv(buf)
            }

            fn send_batch(
                &mut self,
                transmits: &[::totem_transport::Transmit<'_>],
            ) -> (usize, Option<::totem_transport::TransportError>) {
                self.ep.send_batch(transmits)
            }

            #[cfg(target_os = "linux")]
            fn recv_batch(
                &mut self,
                bufs: &mut [&mut [u8]],
                metas: &mut [::totem_transport::RecvMeta],
            ) -> (usize, Option<::totem_transport::TransportError>) {
                self.ep.recv_batch(bufs, metas)
            }
        }
    };
}
pub(crate) use common_api;
