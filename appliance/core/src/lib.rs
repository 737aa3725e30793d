//! # totem-appliance: a firmware-shaped totem node (`#![no_std]` + `alloc`)
//!
//! The stack a network appliance runs to be a member of a totem ring beside Linux
//! `totemd` nodes: totem-ring (Totem SRP), services (the dispatcher with its sync protocol
//! and the CPG engine, called in-process: the application is a CPG connection of its own)
//! and transport-smoltcp (UDP over a smoltcp interface), composed in one driver loop.
//!
//! ```text
//! lib.rs       this map
//! fmt.rs       logging shim: log | defmt | nothing
//! config.rs    ApplianceConfig: the ring, transport and CPG settings, derived as totemd does
//! platform.rs  Clock and RingSeqStore: what the integrator provides
//! driver.rs    Appliance: the driver loop (turn) and the application's CPG calls
//! heap.rs      Heap<N>: a fixed-size first-fit heap for #[global_allocator], with peaks
//! ```
//!
//! Depends on the core crates only; it never touches an OS, a clock or a device of its
//! own: time comes from the integrator's [`Clock`], frames from its `smoltcp::phy::Device`,
//! memory from its global allocator, durability from its [`RingSeqStore`]. The host binary
//! (`appliance/host`, a TAP device on Linux) and the bare-metal image (`appliance/firmware`)
//! are two integrators of it.
//!
//! `unsafe` appears only in [`heap`] (an allocator cannot be written without it), each
//! block with its `// SAFETY:` argument; the rest of the crate denies it.
#![no_std]
#![deny(unsafe_code)]
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

mod config;
mod driver;
#[allow(unsafe_code)]
pub mod heap;
mod platform;

pub use config::{ApplianceConfig, DEFAULT_NETMTU, IPV4_UDP_OVERHEAD, cluster_id};
pub use driver::{APP_CONN, AppEvent, Appliance, ApplianceStats, Net, PersistError, StartError};
pub use heap::{Heap, HeapStats};
pub use platform::{Clock, RingSeqStore};

pub use transport_smoltcp::smoltcp;
/// The crates this one is built from, re-exported so an integrator uses exactly these
/// versions (and smoltcp with transport-smoltcp's features).
pub use {services, totem_proto, totem_ring, transport_smoltcp};
