//! # transport-smoltcp: the `Transport` trait over smoltcp (no_std)
//!
//! Layer map: [`SmoltcpTransport`] implements [`totem_transport::Transport`] over a smoltcp
//! [`Interface`](smoltcp::iface::Interface), its [`phy::Device`](smoltcp::phy::Device) and one
//! UDP socket in a [`SocketSet`](smoltcp::iface::SocketSet). It depends on smoltcp,
//! totem-transport and totem-proto (node ids, time) only; it never touches the ring (the
//! driver moves frames between `Ring::poll_transmit` / `handle_datagram` and this transport),
//! a clock (time comes in as a `totem_proto::time::Instant` on [`SmoltcpTransport::poll`]) or
//! an allocator: the socket buffers are storage the caller passes in, and nothing is allocated
//! per packet.
//!
//! Frames are the same as over transport-udp, byte for byte: a totem frame is exactly one UDP
//! payload. Frames larger than one Ethernet MTU travel as IPv4 fragments through smoltcp's
//! `proto-ipv4-fragmentation`; this crate sizes smoltcp's fragmentation and reassembly buffers
//! for 16 KiB, so [`MAX_FRAME`] is 16 356 bytes (joins and commit tokens of large rings reach
//! about 13 KiB).
//!
//! * `src/fmt.rs`: the logging shim (`defmt`, `log` or nothing).
//! * `src/transport.rs`: [`Config`], [`Mode`], [`SmoltcpTransport`], [`SetupError`],
//!   [`Stats`].
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

#[cfg(test)]
extern crate std;

#[macro_use]
mod fmt;

mod transport;

pub use transport::{
    Config, DEFAULT_PORT, MAX_FRAME, Mode, SetupError, SmoltcpTransport, Stats, to_smoltcp_instant,
};

/// smoltcp, re-exported so a driver uses exactly the version (and features) this crate was
/// built with.
pub use smoltcp;
