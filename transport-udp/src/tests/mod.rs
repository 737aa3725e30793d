//! In-crate tests that need crate internals: the multicast and back-pressure tests inside
//! network namespaces (they enter a namespace with `sys::enter_netns`, the one piece of
//! unsafe a test needs, kept in `sys.rs`). The loopback tests of the public API are in
//! `tests/udpu.rs`.

mod multicast;
mod netns;
