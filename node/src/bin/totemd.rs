//! `totemd`: the totem executive. Reads a corosync.conf-style file, joins the ring over the
//! configured transport, and serves its services (CPG) and control requests to local
//! clients on one IPC socket, `<state_dir>/totemd.sock`, until SIGTERM or `leave`.
//!
//! ```text
//! totemd [-f CONFIG] [--nodeid N]
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use node::config::{DEFAULT_PATH, DaemonConfig, FaultInjection, TransportKind};
use node::link::{Faulty, Link};
use node::{clock::Clock, control, daemon, logging, persist};
use totem_proto::NodeId;
use totem_transport::fault::Faults;
use totem_transport::{FaultConfig, FaultInjector};
use transport_udp::{UdpConfig, UdpMulticast, UdpUnicast};

const USAGE: &str = "usage: totemd [-f CONFIG] [--nodeid N]
  -f CONFIG     configuration file (default /etc/totem/totem.conf)
  --nodeid N    this node's id, when several nodelist addresses are local (e.g. 127.0.0.x)
  -h, --help    this message
  -v, --version the version";

struct Args {
    config: PathBuf,
    nodeid: Option<NodeId>,
}

fn parse_args() -> Result<Option<Args>, String> {
    let mut args = Args {
        config: PathBuf::from(DEFAULT_PATH),
        nodeid: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "-f" | "--config" => args.config = PathBuf::from(it.next().ok_or("-f needs a file")?),
            "--nodeid" | "-n" => {
                let v = it.next().ok_or("--nodeid needs a number")?;
                let n: u32 = v
                    .parse()
                    .map_err(|_| format!("--nodeid: not a node id: {v:?}"))?;
                if n == 0 {
                    return Err("--nodeid 0 is reserved".into());
                }
                args.nodeid = Some(NodeId(n));
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(None);
            }
            "-v" | "--version" => {
                println!("totemd {}", env!("CARGO_PKG_VERSION"));
                return Ok(None);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Some(args))
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(Some(a)) => a,
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("totemd: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("totemd: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<(), String> {
    let cfg = DaemonConfig::load(&args.config).map_err(|e| e.to_string())?;
    logging::init(&cfg.logging).map_err(|e| format!("logging: {e}"))?;
    for (line, w) in &cfg.warnings {
        tracing::warn!("{}:{line}: {w}", cfg.path.display());
    }
    let me = cfg.local_node(args.nodeid).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(&cfg.state_dir)
        .map_err(|e| format!("state directory {}: {e}", cfg.state_dir.display()))?;
    let seq_path = persist::ring_seq_path(&cfg.state_dir, me);
    let last_seq = persist::load_ring_seq(&seq_path).map_err(|e| format!("ring seq: {e}"))?;
    let mut ring_cfg = cfg.ring.clone();
    ring_cfg.node_id = me;
    ring_cfg.seed = u64::from(me.0) ^ std::process::id() as u64;
    let eff = ring_cfg
        .effective()
        .map_err(|e| format!("{}: {e}", cfg.path.display()))?;
    tracing::info!(
        "totem: token {} token_retransmit {} hold {} join {} consensus {} merge {} window {} max_messages {}",
        eff.token,
        eff.token_retransmit,
        eff.hold,
        eff.join,
        eff.consensus,
        eff.merge,
        eff.window_size,
        eff.max_messages
    );

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async move {
        let clock = Clock::new();
        let ring =
            totem_ring::Ring::new(&ring_cfg, clock.now(), last_seq).map_err(|e| e.to_string())?;
        let nodelist = cfg
            .nodes
            .iter()
            .map(|n| {
                (
                    n.id,
                    core::net::SocketAddr::new(n.addr, cfg.interface.mcastport),
                )
            })
            .collect();
        let mut ucfg = UdpConfig::new(me, nodelist);
        ucfg.port = cfg.interface.mcastport;
        ucfg.ttl = cfg.interface.ttl;
        ucfg.block_unlisted = cfg.block_unlisted_ips;
        let opts = daemon::Options {
            node: me,
            transport_name: cfg.transport.to_string(),
            ring_seq_path: seq_path,
            socket: control::socket_path(&cfg.state_dir),
            config: cfg.clone(),
        };
        let fault = cfg.fault;
        match cfg.transport {
            TransportKind::Udpu => {
                let t = UdpUnicast::new(&ucfg).map_err(|e| format!("transport udpu: {e}"))?;
                report_buffers(t.buffer_sizes());
                drive(ring, t, fault, clock, opts).await
            }
            TransportKind::Udp => {
                ucfg.mcast_addr = Some(
                    cfg.interface
                        .mcastaddr
                        .unwrap_or_else(|| derived_group(&cfg)),
                );
                let t = UdpMulticast::new(&ucfg).map_err(|e| format!("transport udp: {e}"))?;
                report_buffers(t.buffer_sizes());
                drive(ring, t, fault, clock, opts).await
            }
            TransportKind::Ib => run_ib(&cfg, me, ring, fault, clock, opts).await,
        }
    })
}

/// `transport: ib` in a totemd built with feature `ib`: the real verbs provider.
#[cfg(feature = "ib")]
async fn run_ib(
    cfg: &DaemonConfig,
    me: NodeId,
    ring: totem_ring::Ring,
    fault: FaultInjection,
    clock: Clock,
    opts: daemon::Options,
) -> Result<(), String> {
    let peers: Vec<_> = cfg
        .nodes
        .iter()
        .filter_map(|n| n.ib_addr.map(|a| (n.id, a)))
        .collect();
    let link = node::ib::IbLink::open(&cfg.ib, me, &peers)?;
    // Peers without an `ib_addr` learn this one from its first datagram; a cold cluster
    // needs it in their configuration (see transport-ib's README).
    tracing::info!("transport ib: local address {}", link.local_addr());
    drive(ring, link, fault, clock, opts).await
}

/// `transport: ib` in a totemd built without feature `ib`: a clear refusal.
#[cfg(not(feature = "ib"))]
async fn run_ib(
    _: &DaemonConfig,
    _: NodeId,
    _: totem_ring::Ring,
    _: FaultInjection,
    _: Clock,
    _: daemon::Options,
) -> Result<(), String> {
    Err(
        "transport ib: this totemd was built without InfiniBand support \
         (rebuild with `cargo build -p node --features ib`)"
            .into(),
    )
}

fn report_buffers((send, recv): (usize, usize)) {
    tracing::info!(
        "socket buffers: send {} KiB, receive {} KiB",
        send / 1024,
        recv / 1024
    );
}

/// The multicast group when `mcastaddr` is not set: derived from the cluster id, as
/// corosync derives it from the cluster name (239.192.x.y for IPv4, ff15::x:y for IPv6).
fn derived_group(cfg: &DaemonConfig) -> core::net::IpAddr {
    let [_, _, a, b] = cfg.cluster_id.to_be_bytes();
    if cfg.nodes.first().is_some_and(|n| n.addr.is_ipv6()) {
        core::net::IpAddr::V6(core::net::Ipv6Addr::new(
            0xff15,
            0,
            0,
            0,
            0,
            0,
            u16::from(a),
            u16::from(b),
        ))
    } else {
        core::net::IpAddr::V4(core::net::Ipv4Addr::new(239, 192, a, b))
    }
}

/// Runs the daemon over `t`, wrapped in the fault injector when the configuration asks.
async fn drive<T: Link>(
    ring: totem_ring::Ring,
    t: T,
    fault: FaultInjection,
    clock: Clock,
    opts: daemon::Options,
) -> Result<(), String> {
    if fault == FaultInjection::default() {
        return run_daemon(ring, t, clock, opts).await;
    }
    tracing::warn!(
        "fault injection ON (experiments only): drop {} ppm, duplicate {} ppm, delay {} + jitter {}",
        fault.drop_ppm,
        fault.duplicate_ppm,
        fault.delay,
        fault.jitter
    );
    let faults = Faults {
        drop_ppm: fault.drop_ppm,
        duplicate_ppm: fault.duplicate_ppm,
        delay: fault.delay,
        jitter: fault.jitter,
        ..Faults::default()
    };
    let config = FaultConfig {
        recv: faults,
        ..FaultConfig::default()
    };
    let seed = u64::from(opts.node.0) ^ u64::from(std::process::id());
    run_daemon(
        ring,
        Faulty(FaultInjector::new(t, config, seed)),
        clock,
        opts,
    )
    .await
}

async fn run_daemon<T: Link>(
    ring: totem_ring::Ring,
    t: T,
    clock: Clock,
    opts: daemon::Options,
) -> Result<(), String> {
    daemon::Daemon::new(ring, t, clock, opts)
        .map_err(|e| e.to_string())?
        .run()
        .await
        .map_err(|e| e.to_string())
}
