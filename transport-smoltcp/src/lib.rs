//! # transport-smoltcp: the `Transport` trait over smoltcp (no_std)
//!
//! Layer map: implements `totem_transport::Transport` over a smoltcp `Interface` and UDP
//! socket; the same frames as transport-udp, byte for byte. Frames larger than one MTU use
//! smoltcp's `proto-ipv4-fragmentation`.
//!
//! Status: issue 8; no code yet.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
