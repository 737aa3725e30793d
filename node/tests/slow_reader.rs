//! A client that joins a CPG group and never reads its events is disconnected once its
//! backlog passes the daemon's bound, with PROCDOWN for the others; the daemon goes on.
//!
//! The daemon runs in this process (`node::daemon::Daemon` on its own thread, as `totemd`
//! builds it) so the test can lower the backlog limits (`Daemon::set_ipc_limits`); the
//! stuck client is a child process (its own pid: CPG members are `(node, pid)`).

extern crate alloc;

mod common;

use core::time::Duration;

use common::{CpgClient, PATIENCE, child_line, eventually, spawn_child};
use node::clock::Clock;
use node::config::DaemonConfig;
use node::daemon::{Daemon, Options};
use node::ipc::Limits;
use services::cpg::wire::{CpgEvent, CpgGuarantee, Member, Reason};
use totem_proto::NodeId;
use transport_udp::{UdpConfig, UdpUnicast};

#[test]
fn a_client_that_never_reads_is_disconnected_and_others_carry_on() {
    let dir = std::env::temp_dir().join(format!("totem-node-slow-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("totem.conf");
    let text = format!(
        "totem {{\n version: 2\n cluster_name: slow\n transport: udpu\n token: 500\n join: 30\n interface {{\n  mcastport: 25541\n }}\n}}\nnodelist {{\n node {{\n  ring0_addr: 127.0.0.1\n  nodeid: 1\n }}\n}}\nsystem {{\n state_dir: {}\n}}\n",
        dir.display()
    );
    std::fs::write(&path, text).unwrap();
    let cfg = DaemonConfig::load(&path).unwrap();
    let socket = node::control::socket_path(&dir);
    let daemon = {
        let socket = socket.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let me = NodeId(1);
                let clock = Clock::new();
                let mut ring_cfg = cfg.ring.clone();
                ring_cfg.node_id = me;
                let ring = totem_ring::Ring::new(&ring_cfg, clock.now(), 0).unwrap();
                let addr = core::net::SocketAddr::new(cfg.nodes[0].addr, 25541);
                let mut ucfg = UdpConfig::new(me, [(me, addr)].into_iter().collect());
                ucfg.port = 25541;
                let t = UdpUnicast::new(&ucfg).unwrap();
                let opts = Options {
                    node: me,
                    transport_name: "udpu".into(),
                    ring_seq_path: node::persist::ring_seq_path(&cfg.state_dir, me),
                    socket,
                    config: cfg,
                };
                let mut d = Daemon::new(ring, t, clock, opts).unwrap();
                // The client's event ring (8 MiB) plus at most 1 MiB waiting in the daemon.
                d.set_ipc_limits(Limits {
                    events: 100_000,
                    bytes: 1 << 20,
                    stall: totem_proto::time::Duration::from_secs(60),
                });
                d.run().await.unwrap();
            });
        })
    };
    let status = || node::control::query(&socket, "status", Duration::from_secs(5)).ok();
    eventually("the daemon serves", || {
        status().filter(|s| s.contains("services: synchronized yes"))
    });

    let mut stuck = spawn_child("child_helper", "stuck", &socket, None);
    let pid: u32 = child_line(&mut stuck, "joined ")["joined ".len()..]
        .parse()
        .unwrap();
    let mut sender = CpgClient::connect(&socket);
    sender.join("g");
    let me = Member::new(NodeId(1), std::process::id());
    let them = Member::new(NodeId(1), pid);
    let both = if me < them { [me, them] } else { [them, me] };
    sender.wait_for("both in the group", |e| match e {
        CpgEvent::Confchg(c) if c.members == both => Some(()),
        _ => None,
    });

    // 16 KiB messages until the daemon gives up on the stuck client (about 9 MiB); the
    // sender reads its own copies as it goes, so it is never the one stuck.
    let payload = vec![7u8; 16 << 10];
    let mut sent = 0u32;
    let mut left = None;
    let start = std::time::Instant::now();
    while left.is_none() {
        assert!(
            start.elapsed() < PATIENCE * 2,
            "still connected after {sent} messages"
        );
        sender.mcast("g", CpgGuarantee::Agreed, &payload);
        sent += 1;
        while let Some(raw) = sender.client.try_recv_event().unwrap() {
            if let CpgEvent::Confchg(c) = CpgEvent::parse(&bytes::Bytes::from(raw)).unwrap() {
                left = Some(c);
            }
        }
    }
    let c = left.unwrap();
    assert_eq!(c.members, [me]);
    assert_eq!(c.left.len(), 1);
    assert_eq!(
        (c.left[0].member(), c.left[0].reason),
        (them, Reason::ProcDown)
    );
    // About the ring plus the bound, not everything sent: nothing grew without limit.
    assert!(sent > 500, "{sent}");
    let s = status().unwrap();
    assert!(s.contains(" slow-clients 1 mcasts-held "), "{s}");
    // The stuck child sees its connection closed.
    let _ = stuck.kill();
    let _ = stuck.wait();

    assert_eq!(
        node::control::query(&socket, "leave", Duration::from_secs(5)).unwrap(),
        "leaving\n"
    );
    daemon.join().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Not a test: the helper children (see `common::child_main`).
#[test]
fn child_helper() {
    common::child_main();
}
