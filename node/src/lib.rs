//! # node: the totem executive (`totemd`)
//!
//! Layer map: the only crate that composes ring, transports, services and IPC for Linux,
//! around a tokio driver loop. Services (CPG) and the shared-memory IPC (ipc-shm) are
//! served on one socket per daemon, `<state_dir>/totemd.sock`; README.md has the protocol. Binaries: `totemd` (the daemon), `totemctl` (its CLI).
//!
//! ```text
//! config/    corosync.conf-style file → typed settings (+ cmap-style flat keys)
//! clock.rs   tokio's clock ↔ the ring's Instant (the one conversion point)
//! cmap.rs    what totemd keeps in cmap (file keys, runtime.*) and which writes apply live
//! persist.rs the last ring seq in the state directory (atomic, fsynced)
//! daemon.rs  the driver loop: ring + services, socket readiness, deadlines, signals,
//!            IPC sessions (hello, CPG, control requests)
//! ipc.rs     the ipc-shm server: sessions, access policy, slow-reader backlog
//! link.rs    what the daemon needs of a transport (fd, time for fault injection)
//! ib.rs      `transport: ib` over the real verbs provider (feature `ib`)
//! control.rs the control service (`totemctl status|reload|leave|cpg`), client side
//! cmapctl.rs `totemctl cmap list|get|set|del|track` (through totem-client's cmap API)
//! logging.rs tracing + the `log` bridge for the core crates
//! ```
#![warn(missing_docs)]

extern crate alloc;

pub mod clock;
pub mod cmap;
pub mod cmapctl;
pub mod config;
pub mod control;
pub mod daemon;
#[cfg(feature = "ib")]
pub mod ib;
pub mod ipc;
pub mod link;
pub mod logging;
pub mod persist;
