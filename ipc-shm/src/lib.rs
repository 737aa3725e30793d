//! # ipc-shm: shared-memory IPC between client libraries and totemd
//!
//! Layer map: Linux only; the one place besides the transports where `unsafe` is allowed.
//!
//! Status: issue 6; no code yet.
#![warn(missing_docs)]
