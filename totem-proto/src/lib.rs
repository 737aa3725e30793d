//! # totem-proto: the Totem SRP wire format
//!
//! Layer map (bottom of the stack; everything else in totem sits above it):
//!
//! ```text
//! time.rs     Instant / Duration as values (µs); nothing here reads a clock
//! types.rs    NodeId, RingId, Seq, MessageType, Guarantee, ServiceId, MAX_NODES, RTR_MAX
//! field.rs    byte ranges, big-endian accessors, the bounded Reader for lists
//! error.rs    DecodeError (one precise variant per way a frame can be wrong)
//! header.rs   the common frame header every datagram starts with
//! orf_token.rs, mcast.rs, memb_join.rs, memb_commit_token.rs, merge_detect.rs,
//! token_hold_cancel.rs      one module per message: view `Type<T>` + `TypeRepr`
//! message.rs  Frame: header + typed body, dispatched on the message type
//! pack.rs     the packing/fragmentation format above the ring (mcast payloads)
//! fuzzing.rs  the fuzz properties (`--cfg fuzzing` only; cargo-fuzz targets and fuzz-lite)
//! ```
//!
//! Depends on: `core` and `heapless` only (no alloc). Never touches a socket, a clock, an
//! allocator or a thread. `#![no_std]` unconditionally, `#![forbid(unsafe_code)]`.
//!
//! ## Conventions (smoltcp's wire contract)
//!
//! * **Byte order is big-endian (network order)** for every multi-byte field, on every
//!   platform. corosync sends host order and swaps on receipt; a fixed order is simpler and
//!   costs nothing measurable.
//! * Each message has a zero-copy view `Type<T: AsRef<[u8]>>` with `new_unchecked`,
//!   `new_checked`, `check_len`, `into_inner`, getters named after the fields and setters on
//!   `T: AsMut<[u8]>`, and a `TypeRepr` with `parse`, `buffer_len` and `emit`.
//! * **Panic contract**: after `check_len()` (which `new_checked` calls) succeeds, no
//!   accessor panics. `emit` never panics on a buffer of at least `buffer_len()` bytes.
//!   Untrusted input is parsed only through `new_checked` / `Repr::parse`, which return a
//!   precise [`DecodeError`] and never panic; a fuzz-lite test mutates golden frames to hold
//!   this to account.
//! * Node id 0 is reserved: decoders reject it wherever a node is named.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

// Tests and the fuzz properties (`fuzzing`, cargo-fuzz builds only) use owned buffers.
#[cfg(any(feature = "alloc", fuzzing, test))]
extern crate alloc;
#[cfg(test)]
extern crate std;

#[macro_use]
mod fmt;

mod field;
mod ring_only;

pub mod error;
#[cfg(fuzzing)]
pub mod fuzzing;
pub mod header;
pub mod mcast;
pub mod memb_commit_token;
pub mod memb_join;
pub mod merge_detect;
pub mod message;
pub mod node_list;
pub mod orf_token;
pub mod pack;
pub mod time;
pub mod token_hold_cancel;
pub mod types;

pub use error::{DecodeError, EmitError};
pub use header::{Flags, HEADER_LEN, Header, HeaderRepr, MAGIC};
pub use mcast::{MCAST_HEADER_LEN, Mcast, McastRepr};
pub use memb_commit_token::{CommitMember, MembCommitToken, MembCommitTokenRepr};
pub use memb_join::{MembJoin, MembJoinRepr};
pub use merge_detect::{MergeDetect, MergeDetectRepr};
pub use message::{Body, EmitBody, Frame, FrameHead, emit_frame};
pub use node_list::NodeList;
pub use orf_token::{OrfToken, OrfTokenRepr, RtrEntry};
pub use pack::{Pack, PackWriter, Progress, Record, RecordKind, pack_capacity};
pub use token_hold_cancel::{TokenHoldCancel, TokenHoldCancelRepr};

pub use types::{
    Guarantee, MAX_NODES, MessageType, NodeId, RTR_MAX, RingId, Seq, ServiceId, WIRE_VERSION_MAX,
    WIRE_VERSION_MIN,
};
