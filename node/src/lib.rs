//! # node: the totem executive (`totemd`)
//!
//! Layer map: the only crate that composes ring, transports, services and IPC for Linux,
//! around a tokio driver loop.
//!
//! Status: issue 5; no code yet.
#![warn(missing_docs)]
