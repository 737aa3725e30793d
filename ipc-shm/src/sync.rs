//! The loom shim: the only place the ring's atomics come from (STYLE point 14).
//!
//! Normal builds use `core::sync::atomic`; `RUSTFLAGS="--cfg loom"` swaps in loom's
//! model-checked types, so the ring's protocol in [`crate::ring`] is exactly the code loom
//! explores (tokio's `src/loom` does the same). Under loom only the ring and this shim are
//! compiled: loom's atomics are not plain memory and cannot live in a shared mapping.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};
