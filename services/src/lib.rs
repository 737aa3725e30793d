//! # services: the service-engine trait and the engines
//!
//! Layer map: pure engine logic over `alloc`; delivered totem messages in, replies and
//! multicasts out. Never touches the network or IPC directly: node/ wires it.
//!
//! Status: issue 6; no code yet.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
