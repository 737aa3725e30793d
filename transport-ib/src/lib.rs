//! # transport-ib: the `Transport` trait over InfiniBand verbs
//!
//! Layer map: transport logic written against a small verbs trait, with a real provider over
//! `ibverbs` (feature `verbs`) and a fake in-process provider for tests. Large frames are
//! split by the transport itself (IB UD datagrams are limited to the path MTU).
//!
//! Status: issue 9; no code yet.
#![warn(missing_docs)]
