//! # totem-ring: Totem SRP as a sans-IO state machine
//!
//! The Totem single-ring ordering and membership protocol (Amir, Moser, Melliar-Smith,
//! Agarwal, Ciarfella, ACM TOCS 1995) with Extended Virtual Synchrony (Moser, Amir,
//! Melliar-Smith, Agarwal, ICDCS 1994), following corosync 3's `totemsrp.c` where the paper
//! leaves choices open, and fixing what corosync's history shows broken (TOTEM-SRP.md §9).
//!
//! Layer map:
//!
//! ```text
//! ring.rs        Ring: the public API (handle_*/submit/poll_*), shared plumbing
//! state/         the protocol rules per state: operational, gather, commit, recovery
//! config.rs      corosync's totem {} options, defaults, derived values, validation
//! timer.rs       the timer table (token, token_retransmit, hold, join, consensus, merge)
//! sortq.rs       the sort queue: ordered messages by seq in a bounded window
//! outq.rs        send side of packing: queued application messages → MCAST frames
//! reasm.rs       receive side: frames → application messages (fragments joined)
//! event.rs       Transmit / Event / Configuration / Delivery
//! stats.rs       counters
//! ```
//!
//! Depends on: `totem-proto` (wire format), `totem-transport` (only for `Dest`, `PeerAddr`
//! and its seeded PRNG), `bytes`, `heapless`, `alloc`. It never touches a socket, a clock or
//! a thread: time comes in as [`totem_proto::time::Instant`], datagrams through
//! [`Ring::handle_datagram`], and everything leaves through [`Ring::poll_transmit`] and
//! [`Ring::poll_event`]. Same inputs, same outputs — which is what makes the simulator and
//! replay by seed possible. `#![no_std]` + `alloc`, `#![forbid(unsafe_code)]`.
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

mod config;
mod event;
mod outq;
mod reasm;
mod ring;
mod sortq;
mod state;
mod stats;
mod timer;

#[cfg(test)]
mod tests;

pub use config::{
    Config, ConfigError, Effective, MAX_RETRANSMIT_WINDOW, MINIMUM_HOLD, MINIMUM_TIMEOUT,
};
pub use event::{Configuration, ConfigurationKind, Delivery, Event, Transmit};
pub use ring::{Refused, Ring, State, SubmitError};
pub use stats::Stats;
pub use totem_transport::{Dest, PeerAddr};

/// Known protocol bugs the simulator's tests plant, one at a time, to show its invariant
/// checker catches each (feature `_planted-bugs`; never in a real build).
#[cfg(feature = "_planted-bugs")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlantedBug {
    /// Deliver safe messages as soon as they are in order, like agreed ones.
    SafeAsAgreed,
    /// Install the regular configuration without the transitional one before it.
    SkipTransitional,
    /// Drop the old-ring messages recovered from other members.
    DropRecovered,
    /// Deliver every message twice.
    DuplicateDelivery,
}
