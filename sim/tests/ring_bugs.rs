//! Protocol bugs the simulator found in totem-ring, each as the smallest scenario that shows
//! it. A test for a bug not fixed yet is `#[ignore]`d (with the reason) so `cargo test`
//! stays green; run those with `cargo test -p sim --test ring_bugs -- --ignored`. Fixed
//! bugs keep their test, un-ignored, as a regression test.

use sim::driver::{RunOptions, Sim};
use sim::net::LossModel;
use sim::scenario::{Fault, Scenario};
use totem_proto::NodeId;
use totem_proto::time::Duration;

/// A calm three-node cluster: no loss, no faults but the ones a test adds.
fn calm(seed: u64) -> Scenario {
    let mut sc = Scenario::from_seed(seed, 3..=3);
    sc.net.loss = LossModel::None;
    sc.net.dup_ppm = 0;
    sc.faults.clear();
    sc.starts = vec![Duration::ZERO; 3];
    sc.safety = Duration::from_secs(8);
    sc
}

/// FAILED TO RECEIVE must end in a singleton ring even when the node cannot reach
/// consensus with anyone (TOTEM-SRP.md §4.4 step 2; corosync `memb_consensus_agreed`:
/// "Both nodes agreed on our failure. We don't care how many proc list items left because
/// we will create single ring anyway").
///
/// The link n1 → n3 goes down. n3's successor on the ring is n1, so n1 (the first holder)
/// answers every retransmission request of n3 and strikes it off the token, and none of
/// those retransmissions reaches n3: n3's aru stops and, after `fail_recv_const` visits,
/// n3 excludes itself (`fail = {3}`). It cannot hear n1's joins either, so its consensus
/// timeouts add 1, then 2 to its fail set: `proc \ fail` is empty, `consensus_agreed()`
/// (which wants a non-empty set) never holds, no singleton ring forms, and n3 gathers
/// forever — also after the link is back, because the operational nodes ignore joins that
/// fail them and n3 ignores merge detects from nodes already in its proc set.
#[test]
fn failed_to_receive_without_consensus_still_forms_a_singleton_ring() {
    let mut sc = calm(7);
    sc.fail_recv_const = 20;
    sc.faults = vec![(
        Duration::from_secs(2),
        Fault::LinkDown(NodeId(1), NodeId(3)),
    )];
    let r = Sim::run(sc, RunOptions::default());
    assert!(
        r.violations.is_empty(),
        "{}\n{}",
        r.violations[0],
        r.context.join("\n")
    );
}
