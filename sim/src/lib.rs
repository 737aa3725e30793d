//! # sim: a deterministic simulator of totem rings, with an Extended Virtual Synchrony checker
//!
//! N [`totem_ring::Ring`]s (2 to 64), a sans-IO network emulator, crashes, restarts, pauses
//! and clean leaves, an application workload on every node, and an invariant checker fed
//! only from what each node's ring told its application. Everything is derived from one
//! `u64` seed; a failing seed is replayed exactly, event for event, with
//! `cargo xtask sim --seed S --trace` (STYLE point 17; openraft's `DerivedConfig`, str0m's
//! netem, madsim's determinism check).
//!
//! Layer map:
//!
//! ```text
//! scenario.rs    Scenario::from_seed: node count, ring timers, network, faults, workload
//! driver.rs      Sim: the driver loop over N rings + the network + the fault schedule,
//!                a safety phase then a liveness phase; RunResult
//! net.rs         Net: latency, jitter (→ reordering), uniform and Gilbert–Elliott loss,
//!                duplication, asymmetric links, partitions; netem's handle_input/poll_output
//! payload.rs     what the workload submits: (node, incarnation, counter) + checkable filler
//! trace.rs       --trace lines and the trace hash behind --check-determinism
//! invariants/    InvariantChecker + one module per EVS property, Violation
//! main.rs        the `sim` command line
//! ```
//!
//! Depends on totem-ring (with `_planted-bugs`, so the checker's own tests can prove it
//! catches known bugs), totem-proto, totem-transport (for `Dest`, `PeerAddr` and the seeded
//! `SplitMix64`) and `bytes`. No async runtime, no threads inside a run, no wall clock in
//! anything a run computes (the command line measures wall time around runs only), no
//! `HashMap` iteration: same seed, same run.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub mod driver;
pub mod invariants;
pub mod net;
pub mod payload;
pub mod scenario;
pub mod trace;

pub use driver::{RunResult, Sim};
pub use invariants::{InvariantChecker, Property, Violation};
pub use scenario::Scenario;
