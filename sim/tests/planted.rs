//! The checker's own proof (STYLE point 17, openraft #1802: "no test that cannot fail"):
//! plant each known protocol bug in every ring, search a few seeds for a run that shows it,
//! and require that the first violation the checker reports names the right property —
//! and that the same scenario without the bug reports nothing.
//!
//! | planted bug          | expected property                    |
//! |----------------------|--------------------------------------|
//! | `SafeAsAgreed`       | safe delivery (EVS94 7.1)            |
//! | `SkipTransitional`   | configurations (EVS94 2.3)           |
//! | `DropRecovered`      | virtual synchrony or agreed order    |
//! | `DuplicateDelivery`  | integrity (EVS94 1.3)                |
//!
//! Runs are short (a few seconds of simulated time, 3–5 nodes, no liveness phase) and stop
//! at their first violation, so the search stays well under a second per seed in a debug
//! build.

use sim::driver::{RunOptions, RunResult, Sim};
use sim::{Property, Scenario};
use totem_proto::time::Duration;
use totem_ring::PlantedBug;

/// Seeds tried per bug before the test gives up.
const SEARCH: u64 = 60;

fn scenario(seed: u64, bug: Option<PlantedBug>) -> Scenario {
    let mut sc = Scenario::from_seed(seed, 3..=5);
    sc.safety = Duration::from_secs(5);
    sc.bug = bug;
    sc
}

fn run(sc: Scenario) -> RunResult {
    let opts = RunOptions {
        stop_at_first_violation: true,
        liveness: false,
        ..RunOptions::default()
    };
    Sim::run(sc, opts)
}

/// The first seed whose run with `bug` reports a violation; its first violation must be one
/// of `expected`, and the same scenario without the bug must be clean.
fn caught(bug: PlantedBug, expected: &[Property]) -> u64 {
    for seed in 0..SEARCH {
        let r = run(scenario(seed, Some(bug)));
        let Some(first) = r.violations.first() else {
            continue;
        };
        assert!(
            expected.contains(&first.property()),
            "{bug:?}, seed {seed}: the first violation is not {expected:?}: {first}"
        );
        let control = run(scenario(seed, None));
        assert!(
            control.violations.is_empty(),
            "seed {seed} without {bug:?} is not clean: {}",
            control.violations[0]
        );
        println!("{bug:?}: seed {seed} (3..=5 nodes): {first}");
        return seed;
    }
    panic!("no seed in 0..{SEARCH} shows {bug:?}: the checker misses it");
}

#[test]
fn safe_as_agreed_breaks_safe_delivery() {
    caught(PlantedBug::SafeAsAgreed, &[Property::SafeDelivery]);
}

#[test]
fn skip_transitional_breaks_configurations() {
    caught(PlantedBug::SkipTransitional, &[Property::Configurations]);
}

#[test]
fn drop_recovered_breaks_virtual_synchrony() {
    caught(
        PlantedBug::DropRecovered,
        &[Property::VirtualSynchrony, Property::AgreedOrder],
    );
}

#[test]
fn duplicate_delivery_breaks_integrity() {
    caught(PlantedBug::DuplicateDelivery, &[Property::Integrity]);
}
