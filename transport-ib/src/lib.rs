//! # transport-ib: the `Transport` trait over InfiniBand verbs
//!
//! Layer map, bottom up:
//!
//! * [`verbs`]: the [`Verbs`] trait, the handful of operations of one unreliable-datagram
//!   queue pair the transport needs (post send / post receive on slots of registered
//!   memory, poll completions, build address handles, recover from the error state).
//! * [`frag`]: the 20-byte fragment header and the [`Reassembler`]: totem frames up to
//!   64 KiB over UD datagrams of one path MTU.
//! * [`transport`]: [`IbTransport`], implementing [`totem_transport::Transport`] over any
//!   [`Verbs`]: fan-out, unicast, send-queue back-pressure, receives posted ahead, QP-error
//!   recovery, peer learning.
//! * Providers: [`fake`] (in-process, deterministic, injectable faults; always built) and
//!   `real` (feature `verbs`, over the `ibverbs` crate and libibverbs).
//! * [`config`]: device / port / GID options and the peer address syntax.
//!
//! It depends on `totem-transport` and `totem-proto` (for `NodeId`) only; it never touches
//! the ring, a clock or a thread. Without feature `verbs` it needs no RDMA library.
#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

extern crate alloc;
#[cfg(feature = "verbs")]
extern crate std;

pub mod config;
pub mod fake;
pub mod frag;
#[cfg(feature = "verbs")]
pub mod real;
pub mod transport;
pub mod verbs;

pub use config::{IbOptions, parse_ib_addr};
pub use frag::{MAX_FRAME, Reassembler};
pub use transport::{IbConfig, IbStats, IbTransport};
pub use verbs::{Completion, IbAddr, Opcode, Verbs, VerbsError, WcStatus};

/// The message totemd prints (and exits non-zero with) when no RDMA device exists.
pub const NO_DEVICE_MESSAGE: &str = "transport ib: no RDMA device found";
