//! CPG membership through totemd end to end, three daemons on 127.0.0.1-3 with raw CPG
//! clients: the confchg reasons for a `leave` (LEAVE) and a re-join (JOIN), a paused daemon
//! cut off from the others and merged back (NODEDOWN on both sides, then NODEUP, with the
//! group rebuilt and messages of the partition staying in it), and a killed daemon
//! (NODEDOWN). Client death (PROCDOWN) and SAFE delivery are in `ipc.rs`.

extern crate alloc;

mod common;

use common::{Cluster, CpgClient};
use services::cpg::wire::{CpgEvent, CpgGuarantee, Member, Reason, Request};
use totem_proto::NodeId;

fn me() -> u32 {
    std::process::id()
}

fn m(node: u32) -> Member {
    Member::new(NodeId(node), me())
}

/// Confchg list entries as (node, reason).
type Listed = Vec<(u32, Reason)>;

/// The confchg of group `g` whose members are `members`: (left, joined) as (node, reason).
/// Events before it (earlier confchgs of the phase, say) are dropped.
fn confchg(c: &mut CpgClient, members: &[Member]) -> (Listed, Listed) {
    let l = |v: &[services::cpg::wire::Address]| {
        v.iter().map(|a| (a.node.0, a.reason)).collect::<Vec<_>>()
    };
    loop {
        if let CpgEvent::Confchg(cc) = c.next()
            && cc.group.as_bytes() == b"g"
            && cc.members == members
        {
            return (l(&cc.left), l(&cc.joined));
        }
    }
}

/// The next delivery's payload.
fn delivery(c: &mut CpgClient) -> Vec<u8> {
    c.wait_for("a delivery", |e| match e {
        CpgEvent::Deliver(d) => Some(d.payload.to_vec()),
        _ => None,
    })
}

#[test]
fn leave_rejoin_partition_merge_and_node_death_give_corosyncs_reasons() {
    let mut cluster = Cluster::start("cpgmemb", 3, 25471, "");
    let mut c: Vec<CpgClient> = (1..=3)
        .map(|id| CpgClient::connect(&cluster.socket(id)))
        .collect();
    for x in &mut c {
        x.join("g");
    }
    let all = [m(1), m(2), m(3)];
    for x in &mut c {
        confchg(x, &all);
    }

    // LEAVE, then JOIN again.
    let r = c[1].call(&Request::Leave {
        group: services::GroupName::new(b"g").unwrap(),
    });
    assert_eq!(r.error, services::cpg::wire::CsError::Ok);
    for i in [0, 2] {
        let (left, joined) = confchg(&mut c[i], &[m(1), m(3)]);
        assert_eq!((left, joined), (vec![(2, Reason::Leave)], vec![]));
    }
    c[1].join("g");
    for i in [0, 2] {
        let (left, joined) = confchg(&mut c[i], &all);
        assert_eq!((left, joined), (vec![], vec![(2, Reason::Join)]));
    }
    confchg(&mut c[1], &all);

    // Node 3's daemon stops longer than the token timeout (500 ms here): 1 and 2 go on
    // without it — NODEDOWN — and keep multicasting in their partition.
    cluster.signal(3, libc::SIGSTOP);
    for i in [0, 1] {
        let (left, joined) = confchg(&mut c[i], &[m(1), m(2)]);
        assert_eq!((left, joined), (vec![(3, Reason::NodeDown)], vec![]));
    }
    c[0].mcast("g", CpgGuarantee::Agreed, b"partition");
    for i in [0, 1] {
        assert_eq!(delivery(&mut c[i]), b"partition");
    }
    // It comes back: the rings merge, the group is rebuilt by the sync steps — NODEUP.
    cluster.signal(3, libc::SIGCONT);
    for i in [0, 1] {
        let (left, joined) = confchg(&mut c[i], &all);
        assert_eq!((left, joined), (vec![], vec![(3, Reason::NodeUp)]));
    }
    // Node 3's view: the others went (NODEDOWN) and came back (NODEUP), in this order.
    let (left, _) = confchg(&mut c[2], &[m(3)]);
    assert_eq!(left, vec![(1, Reason::NodeDown), (2, Reason::NodeDown)]);
    let (_, joined) = confchg(&mut c[2], &all);
    assert_eq!(joined, vec![(1, Reason::NodeUp), (2, Reason::NodeUp)]);
    // The partition's message stayed in the partition; the next one reaches all three.
    c[1].mcast("g", CpgGuarantee::Safe, b"merged");
    for x in &mut c {
        assert_eq!(delivery(x), b"merged");
    }

    // kill -9: NODEDOWN.
    cluster.signal(2, libc::SIGKILL);
    for i in [0, 2] {
        let (left, joined) = confchg(&mut c[i], &[m(1), m(3)]);
        assert_eq!((left, joined), (vec![(2, Reason::NodeDown)], vec![]));
    }
}
