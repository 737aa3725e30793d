//! The protocol rules, one file per membership state; each is an `impl Ring` block over the
//! state defined in `ring.rs`.

mod commit;
mod gather;
mod operational;
mod recovery;
