//! Unit tests of the dispatcher on a stand-in ring (`loopback.rs`); the end-to-end tests on
//! real rings are in `services/tests/`.

mod dispatcher;
pub(crate) mod loopback;
