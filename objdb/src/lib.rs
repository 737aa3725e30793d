//! # objdb: the configuration and statistics database
//!
//! Layer map: `alloc` only; used by the cmap service engine and node/. Typed values, dotted
//! keys, prefix iteration in key order, change tracking.
//!
//! Status: issue 7; no code yet.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
