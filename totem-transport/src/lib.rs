//! # totem-transport: the one `Transport` trait
//!
//! The contract between the Totem ring's drivers and whatever carries datagrams, kept in a
//! crate of its own so that neither side depends on the other (embassy keeps `Driver` in
//! `embassy-net-driver` for the same reason):
//!
//! ```text
//!  node/ driver, firmware main loop, sim ──► totem-ring (sans-IO, never sees a transport)
//!        │ moves frames between the ring and a Transport
//!        ▼
//!  totem-transport   Transport trait, Dest / PeerAddr / RecvMeta / Transmit, TransportError
//!        ▲           + loopback (in-memory network) + fault (FaultInjector middleware) + rng
//!        │ implement it
//!  transport-udp | transport-ib | transport-smoltcp | test doubles
//! ```
//!
//! Module map:
//!
//! ```text
//! transport.rs  the trait and the values crossing it
//! error.rs      TransportError: back-pressure, per-datagram and transport failures
//! rng.rs        SplitMix64, the seeded no_std PRNG (reusable by anyone below node/)
//! loopback.rs   LoopbackHub / LoopbackTransport: deterministic in-memory network for tests
//! fault.rs      FaultInjector<T>: seeded drop / duplicate / delay / reorder / corrupt
//! ```
//!
//! **May depend on it**: totem's drivers (node/, the firmware example, the simulator) and
//! every transport crate. **It depends on**: `core`, `alloc` and `totem-proto` (for
//! [`NodeId`](totem_proto::NodeId) and the time values). **It never touches** a socket, a
//! clock, a thread or an allocator choice: time comes in as a
//! [`totem_proto::time::Instant`] value, and the only I/O is whatever the wrapped transport
//! does. `#![no_std]` unconditionally, `#![forbid(unsafe_code)]`.
//!
//! ## Design choices
//!
//! * **Poll-style and non-blocking, no `async`.** `send` returns at once with `Ok`, or
//!   [`TransportError::WouldBlock`] as back-pressure; `recv` returns `Ok(None)` when nothing
//!   waits. The driver decides how to wait (epoll, tokio readiness, an interrupt), so one
//!   trait serves Linux, InfiniBand and a microcontroller, and the trait is dyn-compatible.
//! * **Peers are node ids.** The ring says [`Dest::Multicast`] or [`Dest::Node`]; each
//!   transport maps ids to its own addresses. What a transport reports about a sender is a
//!   [`PeerAddr`], for diagnostics and anti-spoof checks; the authoritative sender is the
//!   node id in the totem frame header.
//! * **Batches like quinn-udp.** [`Transport::send_batch`] / [`Transport::recv_batch`] with
//!   per-datagram [`Transmit`] / [`RecvMeta`] have looping defaults, so a transport gets
//!   them for free and a Linux one can override them with `sendmmsg` / `recvmmsg`.
//! * **Errors are one small `Copy` enum**, grouped by what the caller does next (retry,
//!   skip this datagram, give up), with `Display` and `core::error::Error`.
//! * **Middleware wraps any transport** (smoltcp's `phy` pattern): [`FaultInjector`] today;
//!   a pcap writer or tracer would be another `Transport` wrapping a `Transport`.
//! * **Determinism**: [`rng::SplitMix64`] from an explicit seed, integer probabilities in
//!   parts per million, `BTreeMap` everywhere, so a seed replays a run bit for bit.
//! * `alloc` is used by the loopback network and the fault injector (owned copies of held
//!   datagrams); the trait itself allocates nothing.
//! * Every public type implements `Debug`; the value types (everything but the stateful
//!   handles `LoopbackHub`, `LoopbackTransport` and `FaultInjector`, whose queues of byte
//!   buffers have no useful one-line form) also derive `defmt::Format` under `defmt`.
//!
//! ## Example: a driver turn over a faulty in-memory network
//!
//! ```
//! use totem_proto::{NodeId, time::{Duration, Instant}};
//! use totem_transport::{Dest, Transport};
//! use totem_transport::fault::{FaultConfig, FaultInjector, Faults};
//! use totem_transport::loopback::{LoopbackConfig, LoopbackHub};
//!
//! let hub = LoopbackHub::new(LoopbackConfig::default());
//! let a = hub.attach(NodeId(1)).unwrap();
//! let mut b = hub.attach(NodeId(2)).unwrap();
//!
//! // Node 1's outgoing datagrams arrive 2 ms late.
//! let faults = Faults { delay: Duration::from_millis(2), ..Faults::default() };
//! let config = FaultConfig { send: faults, ..FaultConfig::default() };
//! let mut a = FaultInjector::new(a, config, 3053);
//!
//! a.set_now(Instant::from_millis(100));
//! a.send(Dest::Multicast, b"frame").unwrap();
//! let mut buf = [0u8; 1500];
//! assert_eq!(b.recv(&mut buf).unwrap(), None);
//!
//! // The driver sleeps until the injector's deadline, then polls again.
//! let due = a.poll_at().unwrap();
//! assert_eq!(due, Instant::from_millis(102));
//! a.set_now(due);
//! let meta = b.recv(&mut buf).unwrap().unwrap();
//! assert_eq!(&buf[..meta.len], b"frame");
//! assert_eq!(meta.from.node(), Some(NodeId(1)));
//! ```
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

extern crate alloc;
#[cfg(test)]
extern crate std;

// First, so its macros are visible in every module below.
#[macro_use]
mod fmt;

mod error;
pub mod fault;
pub mod loopback;
pub mod rng;
mod transport;

pub use error::TransportError;
pub use fault::{FaultConfig, FaultInjector, FaultStats};
pub use transport::{
    Dest, MAX_UDP_PAYLOAD_V4, MAX_UDP_PAYLOAD_V6, PeerAddr, RecvMeta, Transmit, Transport,
};
