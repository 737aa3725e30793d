//! Protocol tests on an in-memory cluster (quinn's `Pair`, raft-rs's `Network`): N rings, a
//! network with a fixed latency and switchable links, and a clock that jumps to the next
//! event. Deterministic; no wall-clock time anywhere. The full fault model (loss, jitter,
//! partitions, crashes) and the EVS invariant checker live in the simulator (`sim/`).

mod cluster;
mod ring;
