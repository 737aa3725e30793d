//! # totem-client: the client library of totemd
//!
//! What an application links to talk to the local `totemd`: the **CPG** API (closed
//! process groups, corosync's `cpg.h`) and the **cmap** API (the configuration and
//! statistics map, corosync's `cmap.h`), shaped for Rust. One connection is one
//! [`cpg::Cpg`] (or [`cmap::Cmap`]) handle; each can be used three ways:
//!
//! * **blocking**: every call waits for the daemon's reply; [`cpg::Cpg::dispatch`] (or
//!   [`cpg::Cpg::next_event`]) waits for events;
//! * **pollable fd**: [`cpg::Cpg`] is [`AsRawFd`](std::os::fd::AsRawFd) (corosync's
//!   `cpg_fd_get`): put it in your own `poll`/`epoll` loop and call
//!   `dispatch(DispatchMode::All, ..)` when it is readable;
//! * **async** (feature `tokio`): `cpg::AsyncCpg` with `async fn` calls and
//!   `next_event().await`.
//!
//! ## Layer map
//!
//! ```text
//!  application
//!  ──────────────────────────────────────────────────────────────────────────────
//!  cpg/mod.rs        Cpg: initialize, join/leave, mcast, dispatch, queries, context
//!  cpg/event.rs      Event (Deliver, Confchg, TotemConfchg), Guarantee, DispatchMode
//!  cpg/iter.rs       Iteration: groups and members, one daemon round trip per item
//!  cpg/async_cpg.rs  AsyncCpg (feature `tokio`): AsyncFd over the pollable fd
//!  cmap/mod.rs       Cmap: get/set/delete/inc/dec typed, iter by prefix, track, dispatch
//!  cmap/async_cmap.rs AsyncCmap (feature `tokio`)
//!  error.rs          Error: corosync's cs_error_t, one variant each, + connection errors
//!  socket.rs         where the daemon listens ($TOTEM_SOCKET, /var/lib/totem/totemd.sock)
//!  ──────────────────────────────────────────────────────────────────────────────
//!  services::session  the hello that opens a session for one service
//!  services::cpg::wire  CPG requests, replies and events (the daemon's own codec)
//!  services::cmap::wire cmap requests, replies and events; objdb's Value types
//!  ipc-shm            shared-memory rings + eventfds to the daemon
//! ```
//!
//! **Depends on** `ipc-shm` (the transport), `services` (only for its wire formats: the
//! engine and its sync protocol are the daemon's business, never run here), `totem-proto`
//! (node and ring ids), `bytes`, and optionally `tokio`. **Never touches** the network, the
//! ring, or a thread of its own: every call runs on the caller's thread, and nothing
//! happens between calls.
//!
//! ## Example
//!
//! ```no_run
//! use totem_client::cpg::{Cpg, DispatchMode, Event, Guarantee};
//! # fn main() -> Result<(), totem_client::Error> {
//! let mut cpg = Cpg::initialize()?;                 // $TOTEM_SOCKET or the default socket
//! cpg.join("chat")?;
//! cpg.mcast("chat", Guarantee::Agreed, b"hello")?;
//! cpg.dispatch(DispatchMode::One, |_cpg, event| match event {
//!     Event::Deliver { sender_nodeid, sender_pid, payload, .. } => {
//!         println!("{}/{sender_pid}: {}", sender_nodeid.0, String::from_utf8_lossy(&payload))
//!     }
//!     other => println!("{other:?}"),
//! })?;
//! cpg.finalize()?;
//! # Ok(()) }
//! ```
#![warn(missing_docs)]
// Fenced unsafe blocks: registering the pollable fd with tokio (`cpg/async_cpg.rs`,
// `cmap/async_cmap.rs`),
// whose safe constructor tokio deprecated as unsound. See README "Unsafe".
#![deny(unsafe_code, clippy::undocumented_unsafe_blocks)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

extern crate alloc;

pub mod cmap;
pub mod cpg;
mod error;
#[cfg(feature = "tokio")]
mod registered;
mod socket;

pub use error::Error;
pub use socket::{DEFAULT_SOCKET, SOCKET_ENV, default_socket};

/// Node and ring ids, as the daemon reports them.
pub use totem_proto::{NodeId, RingId};
