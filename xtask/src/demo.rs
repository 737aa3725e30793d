//! `cargo xtask demo`: the README's first command. No root, no configuration: three totemd
//! on 127.0.0.1-3 (udpu, token 1000 ms) form a ring and run CPG traffic through the client
//! library (`cpg_demo` on every node, see `demo_cpg.rs`: messages/s and the cross-node
//! order check once a second); one node is killed (SIGKILL) and the other two form a new
//! ring while the traffic goes on; it is restarted and comes back; another leaves cleanly
//! (SIGTERM). One line per event; everything is stopped at the end, on failure and on
//! Ctrl-C (see `guard.rs`).

use core::time::Duration;
use std::time::Instant;

use crate::cluster::{FORM_TIMEOUT, build_daemons, start_all};
use crate::demo_cpg::{self, RATE, Traffic};
use crate::guard::Session;
use crate::nodes::{self, Cluster, DEMO, Transport, id_list};

/// The demo's token timeout: short, so that a failure is noticed in about two seconds.
const TOKEN_MS: u32 = 1000;

/// Runs the demo.
pub(crate) fn run() -> crate::Result {
    let leftovers = nodes::cleanup(&DEMO);
    if !leftovers.nothing() {
        println!("demo: leftovers of an earlier run: {leftovers}");
    }
    build_daemons()?;
    demo_cpg::build()?;
    let mut demo = Session::new(Cluster::new(
        &DEMO,
        false,
        Transport::Udpu,
        Some(TOKEN_MS),
        3,
    ));
    demo.verbose = true;
    println!(
        "demo: {}; logs in {}/n<id>/log",
        demo.describe(),
        DEMO.root().display()
    );
    demo.create()?;
    let (ring, took) = start_all(&mut demo)?;
    formed(&ring, took);

    let mut traffic = Traffic::new();
    for id in 1..=3 {
        traffic.start(&demo, id)?;
    }
    println!(
        "demo: cpg_demo on every node: group `demo`, {RATE} messages/s each, every delivery checked"
    );
    traffic.run_for(Duration::from_secs(3))?;

    let t = Instant::now();
    demo.signal(3, "KILL")?;
    println!("demo: node 3 killed (SIGKILL)");
    let ring = wait(&mut demo, &[1, 2])?;
    formed(&ring, t.elapsed());
    traffic.lost(3);
    traffic.drain()?;
    traffic.run_for(Duration::from_secs(2))?;

    let t = Instant::now();
    demo.start(3)?;
    println!("demo: node 3 restarted");
    let ring = wait(&mut demo, &[1, 2, 3])?;
    formed(&ring, t.elapsed());
    traffic.start(&demo, 3)?;
    traffic.drain()?;
    traffic.run_for(Duration::from_secs(2))?;

    let t = Instant::now();
    demo.signal(2, "TERM")?;
    println!("demo: node 2 asked to leave (SIGTERM)");
    let ring = wait(&mut demo, &[1, 3])?;
    formed(&ring, t.elapsed());
    traffic.lost(2);
    traffic.run_for(Duration::from_secs(2))?;
    traffic.stop();
    traffic.drain()?;
    if traffic.agreed() == 0 {
        return Err("cpg traffic: no order checkpoint was seen on two nodes".into());
    }
    println!(
        "demo: cpg order ok: {} checkpoints agreed across nodes, through the kill, restart and leave",
        traffic.agreed()
    );
    if demo.wait_gone(2, Duration::from_secs(5)) {
        let status = demo.node(2).and_then(|n| n.exit);
        println!(
            "demo: node 2 exited ({})",
            status.map_or_else(|| "status unknown".to_owned(), |s| s.to_string())
        );
    }

    println!(
        "demo: done; to break a cluster yourself: `cargo xtask cluster up --nodes 3`, \
         then `cluster status`, `cluster kill 2`, ... (`cargo xtask help`)"
    );
    Ok(())
}

fn wait(cluster: &mut Cluster, ids: &[u32]) -> crate::Result<nodes::Ring> {
    let rings = cluster.wait_rings(&[ids], FORM_TIMEOUT, Duration::from_millis(10))?;
    Ok(rings[0].clone())
}

fn formed(ring: &nodes::Ring, took: Duration) {
    println!(
        "demo: nodes {} formed ring {ring} in {:.2} s",
        id_list(&ring.members),
        took.as_secs_f64()
    );
}
