//! # services: the service-engine trait, the sync protocol, and the engines
//!
//! Service engines as in corosync's executive — CPG and cmap today; votequorum, SAM and cfg
//! later — behind one sans-IO trait, and the dispatcher that runs them over a
//! `totem_ring::Ring`.
//!
//! Layer map:
//!
//! ```text
//! services.rs    Services: routes deliveries and client connections to engines, runs the
//!                sync protocol after each configuration, queues actions (the node's API)
//! sync.rs        the sync protocol's own messages (service list, barrier)
//! session.rs     the IPC session envelope: a client's hello names its service
//! engine.rs      the ServiceEngine trait, Outbox, Action, ConnId, Credentials, service ids
//! cpg/           the CPG engine
//!   mod.rs         connections, requests, group view, deliveries
//!   sync.rs        joinlists out, the view rebuilt from them at activation
//!   wire.rs        CPG requests, replies, events and node-to-node messages
//! cmap/          the cmap engine: the objdb database served to local clients (node-local,
//!   mod.rs         nothing on the ring), the WritePolicy hook, change events
//!   wire.rs        cmap requests, replies and events
//! wire.rs        the codec the formats share: DecodeError, Reader, GroupName, code points
//! fmt.rs         logging shim (defmt | log | nothing)
//! ```
//!
//! Depends on: `objdb` (cmap's database), `totem-proto` (node ids, ring ids, service ids, guarantees), `totem-ring`
//! (its `Event`, `Delivery`, `Configuration` and `SubmitError` types: the values it hands
//! its driver), `bytes`, `heapless`, `alloc`. It never touches the network, the IPC, a clock
//! or a thread: ring events and client requests come in through
//! [`Services`]' `handle_*` methods; multicasts leave through
//! [`Services::flush_multicasts`] and client replies and events through
//! [`Services::poll_action`]. node/ wires it to the ring and to the IPC; a firmware build
//! does the same with its own loop. `#![no_std]` + `alloc`, `#![forbid(unsafe_code)]`.
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

#[macro_use]
mod fmt;

pub mod cmap;
pub mod cpg;
mod engine;
mod services;
pub mod session;
pub mod sync;
pub mod wire;

#[cfg(test)]
mod tests;

pub use engine::{
    Action, ConnId, Credentials, Outbox, Outgoing, ServiceEngine, SyncProgress, service_id,
};
pub use services::{AddEngineError, ConnectError, Flushed, Services, Stats};
pub use wire::{DecodeError, GroupName, MAX_NAME_LEN};
