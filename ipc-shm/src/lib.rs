//! # ipc-shm: shared-memory IPC between client libraries and totemd (Linux)
//!
//! A client connects to a unix socket; the daemon checks its credentials (`SO_PEERCRED`)
//! against an [`AccessPolicy`], then hands it one sealed memfd holding three single-producer
//! single-consumer rings (request, response, event) and three eventfds (`SCM_RIGHTS`). From
//! then on requests, responses and events move through shared memory, and an eventfd is
//! written only when the other side is asleep. The crate moves opaque byte records of up to
//! `max_message` bytes (default [`DEFAULT_MAX_MESSAGE`], 1 MiB + 64 KiB); it knows nothing
//! of totem's services. The design follows libqb's shared-memory IPC (corosync's) in shape,
//! not in code. README.md has the whole design; the module docs have the details.
//!
//! ## Layer map
//!
//! ```text
//!  totemd services ──► Server::accept → Connection        Client ◄── client libraries
//!                      (server.rs)   try_recv_request    (client.rs) request / try_send_request
//!                                    send_response/event             reserve_request → RequestSlot
//!                                                                    recv_event / AsRawFd (epoll)
//!        tokio.rs (feature `tokio`): AsyncServer, AsyncConnection
//!  ──────────────────────────────────────────────────────────────────────────────────────
//!  access.rs  Credentials, Permission, AccessPolicy      pure rules, no syscalls
//!  wire.rs    the welcome message on the control socket  pure encode/decode
//!  shm.rs     sealed memfd, MAP_SHARED mapping, Layout, ShmRing (RingMemory over it),
//!             the client's mirrored request data area (contiguous zero-copy slots)
//!  sys.rs     sockets, SO_PEERCRED, SCM_RIGHTS, eventfd, poll, epoll: the syscall fence
//!  ring.rs    SPSC byte ring: records, positions, wake-up flags  sans-IO, hostile-safe
//!  sync.rs    loom shim: core::sync::atomic, or loom's under --cfg loom
//!  error.rs   one error type per layer
//! ```
//!
//! **Depends on**: `libc`, `log` (one line per refused or failed connection), `tokio`
//! (optional). **Never touches** totem's protocol, services or configuration files: the
//! daemon passes an [`AccessPolicy`] and a [`ServerConfig`] in. `ring.rs` never touches a
//! file descriptor, a clock or a thread, so loom can explore it.
//!
//! ## Unsafe
//!
//! This crate is one of the few allowed `unsafe` (STYLE point 14): the syscalls in
//! `sys.rs`/`shm.rs`, and raw-pointer copies into and out of the shared mapping. Every block
//! has a `// SAFETY:` line. Shared memory is never viewed through a Rust reference except
//! the ring header's atomics and, on the client's side only, a [`RequestSlot`]: request
//! ring space the client reserved and alone may touch (see `client.rs`). Bytes the peer can
//! write are copied into private memory and validated before use, so a hostile client can
//! at worst hurt its own connection.
//!
//! ## Quick start
//!
//! ```no_run
//! use ipc_shm::{AccessPolicy, Client, Server, ServerConfig};
//! # fn main() -> Result<(), Box<dyn core::error::Error>> {
//! let mut server = Server::bind("/run/totem/ipc.sock", ServerConfig::default(),
//!                               AccessPolicy::for_current_process())?;
//! // ... in the client process:
//! let mut client = Client::connect("/run/totem/ipc.sock")?;
//! let reply = client.request(b"hello")?;
//! # let _ = (reply, &mut server);
//! # Ok(()) }
//! ```
#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
// Under loom only the ring is built (its atomics cannot live in a real mapping).
#![cfg_attr(loom, allow(dead_code, unused_imports))]

#[cfg(not(target_os = "linux"))]
compile_error!("ipc-shm needs Linux (memfd_create, eventfd, SO_PEERCRED, SCM_RIGHTS)");

extern crate alloc;

mod access;
mod error;
mod ring;
mod sync;
mod wire;

#[cfg(not(loom))]
mod client;
#[cfg(not(loom))]
mod server;
#[cfg(not(loom))]
mod shm;
#[cfg(not(loom))]
mod sys;
#[cfg(all(feature = "tokio", not(loom)))]
mod tokio;

#[cfg(all(test, not(loom)))]
mod tests;

pub use access::{AccessPolicy, Credentials, Permission};
pub use error::{
    AcceptError, ConfigError, ConnError, ConnectError, Error, OsError, RefuseReason, RingError,
    RingKind, SendError, ServerError,
};
pub use ring::{RECORD_HEADER_LEN, RING_HEADER_PAGE, record_len};

#[cfg(not(loom))]
pub use client::{CONNECT_TIMEOUT, Client, RequestSlot};
#[cfg(not(loom))]
pub use server::{ConnStats, Connection, DEFAULT_MAX_MESSAGE, RingSizes, Server, ServerConfig};
#[cfg(all(feature = "tokio", not(loom)))]
pub use tokio::{AsyncConnection, AsyncServer};
