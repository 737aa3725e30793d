//! # transport-udp: the `Transport` trait over UDP sockets (std, socket2)
//!
//! Layer map: implements `totem_transport::Transport` for multicast (`transport: udp`) and
//! unicast to every node (`transport: udpu`); knows nothing of the ring's logic. Frames of
//! more than one MTU (joins and commit tokens of large rings) travel as IP fragments.
//!
//! Status: issue 5; no code yet.
#![warn(missing_docs)]
