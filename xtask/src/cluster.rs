//! `cargo xtask cluster`: run a totemd cluster on this machine and break it by hand.
//!
//! ```text
//! up [--nodes N] [--transport udp|udpu] [--netns] [--token MS]
//! status | kill|stop|start|pause|resume <id> | partition <ids> <ids> | heal
//! loss <id> <percent> | exec <id> -- CMD... | down
//! ```
//!
//! Each subcommand is one invocation: `up` records the cluster in
//! `target/cluster/cluster.json` (see `nodes.rs`) and leaves the daemons running in their own
//! process groups; later subcommands read that file. `status` prints exactly one line per
//! node, the daemon's own first status line (`node <id>: ring <rep>.<seq> members <ids>`)
//! or `node <id>: down` / `node <id>: unreachable`.
//!
//! Exit codes: 0 done; 1 the operation failed (no common ring, a signal to a dead node, a
//! fault on a loopback cluster); 2 bad input (usage, unknown node id, no cluster up).

use core::time::Duration;
use std::process::{Command, ExitCode};
use std::time::Instant;

use crate::cmd::Cmd;
use crate::nodes::{self, CLUSTER, Cluster, MAX_NODES, Ring, Transport, id_list, totem_option};
use crate::{netns, unknown, value};

/// How long `up` (and `start`'s callers) wait for one ring.
pub(crate) const FORM_TIMEOUT: Duration = Duration::from_secs(60);

/// A parsed `cargo xtask cluster` command line.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Sub {
    Up {
        nodes: u32,
        transport: Transport,
        netns: bool,
        token: Option<u32>,
        /// Extra `totem { }` options (`--totem KEY=VALUE`).
        totem: Vec<(String, String)>,
    },
    Status,
    /// `kill`, `stop`, `pause`, `resume`.
    Signal {
        action: Action,
        id: u32,
    },
    Start {
        id: u32,
    },
    Partition {
        a: Vec<u32>,
        b: Vec<u32>,
    },
    Heal,
    Loss {
        id: u32,
        percent: u8,
    },
    Exec {
        id: u32,
        argv: Vec<String>,
    },
    Down,
}

/// A signal subcommand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    Kill,
    Stop,
    Pause,
    Resume,
}

impl Action {
    fn signal(self) -> &'static str {
        match self {
            Self::Kill => "KILL",
            Self::Stop => "TERM",
            Self::Pause => "STOP",
            Self::Resume => "CONT",
        }
    }

    fn done(self) -> &'static str {
        match self {
            Self::Kill => "killed",
            Self::Stop => "stopped",
            Self::Pause => "paused",
            Self::Resume => "resumed",
        }
    }
}

/// Why a subcommand did not succeed.
#[derive(Debug)]
pub(crate) enum Error {
    /// Bad input (exit status 2).
    Input(String),
    /// The operation failed (exit status 1).
    Failed(String),
}

impl From<String> for Error {
    fn from(msg: String) -> Self {
        Self::Failed(msg)
    }
}

/// Parses the arguments after `cargo xtask cluster`; `Err` is a usage error.
pub(crate) fn parse(args: &[String]) -> Result<Sub, String> {
    let Some((sub, rest)) = args.split_first() else {
        return Err(
            "cluster: which subcommand? (up, status, kill, stop, start, pause, resume, \
                    partition, heal, loss, exec, down)"
                .into(),
        );
    };
    let mut it = rest.iter().map(String::as_str);
    let id = |it: &mut dyn Iterator<Item = &str>| -> Result<u32, String> {
        let v = it
            .next()
            .ok_or_else(|| format!("cluster {sub}: which node? (a node id such as 1)"))?;
        parse_id(v)
    };
    let parsed = match sub.as_str() {
        "up" => {
            let (mut nodes, mut transport, mut netns, mut token) =
                (3, Transport::Udpu, false, None);
            let mut totem = Vec::new();
            while let Some(arg) = it.next() {
                match arg {
                    "--nodes" => {
                        let v = value(&mut it, "cluster up", "--nodes")?;
                        nodes = match v.parse::<u32>() {
                            Ok(n) if (1..=MAX_NODES).contains(&n) => n,
                            _ => {
                                return Err(format!(
                                    "cluster up: --nodes wants 1 to {MAX_NODES}, got `{v}`"
                                ));
                            }
                        };
                    }
                    "--transport" => {
                        let v = value(&mut it, "cluster up", "--transport")?;
                        transport = Transport::parse(v).ok_or_else(|| {
                            format!("cluster up: --transport is udp or udpu, not `{v}`")
                        })?;
                    }
                    "--netns" => netns = true,
                    "--token" => {
                        token = Some(parse_token(value(&mut it, "cluster up", "--token")?)?)
                    }
                    "--totem" => {
                        let v = value(&mut it, "cluster up", "--totem")?;
                        totem.push(totem_option("cluster up", v)?);
                    }
                    other => return Err(unknown("cluster up", other)),
                }
            }
            Sub::Up {
                nodes,
                transport,
                netns,
                token,
                totem,
            }
        }
        "status" => Sub::Status,
        "heal" => Sub::Heal,
        "down" => Sub::Down,
        "kill" | "stop" | "pause" | "resume" => {
            let action = match sub.as_str() {
                "kill" => Action::Kill,
                "stop" => Action::Stop,
                "pause" => Action::Pause,
                _ => Action::Resume,
            };
            Sub::Signal {
                action,
                id: id(&mut it)?,
            }
        }
        "start" => Sub::Start { id: id(&mut it)? },
        "partition" => {
            let (Some(a), Some(b)) = (it.next(), it.next()) else {
                return Err("cluster partition: give two groups, e.g. `partition 1,2 3`".into());
            };
            let (a, b) = (parse_ids(a)?, parse_ids(b)?);
            if let Some(both) = a.iter().find(|i| b.contains(i)) {
                return Err(format!(
                    "cluster partition: node {both} cannot be on both sides"
                ));
            }
            Sub::Partition { a, b }
        }
        "loss" => {
            let id = id(&mut it)?;
            let v = it
                .next()
                .ok_or("cluster loss: give a percentage, e.g. `loss 2 30` (0 clears it)")?;
            let percent = match v.trim_end_matches('%').parse::<u8>() {
                Ok(p) if p <= 100 => p,
                _ => return Err(format!("cluster loss: percent is 0 to 100, not `{v}`")),
            };
            Sub::Loss { id, percent }
        }
        "exec" => {
            let id = id(&mut it)?;
            match it.next() {
                Some("--") => {}
                Some(other) => {
                    return Err(format!(
                        "cluster exec: expected `--` before the command, got `{other}`"
                    ));
                }
                None => return Err("cluster exec: give a command after `--`".into()),
            }
            let argv: Vec<String> = it.by_ref().map(str::to_owned).collect();
            if argv.is_empty() {
                return Err("cluster exec: give a command after `--`".into());
            }
            return Ok(Sub::Exec { id, argv });
        }
        other => return Err(format!("cluster: unknown subcommand `{other}`")),
    };
    if let Some(extra) = it.next() {
        return Err(unknown(&format!("cluster {sub}"), extra));
    }
    Ok(parsed)
}

fn parse_id(v: &str) -> Result<u32, String> {
    match v.parse::<u32>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("cluster: `{v}` is not a node id (1, 2, ...)")),
    }
}

/// `1,2` → [1, 2] (sorted, no duplicates).
fn parse_ids(v: &str) -> Result<Vec<u32>, String> {
    let mut ids = v.split(',').map(parse_id).collect::<Result<Vec<_>, _>>()?;
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}

/// A `--token` value in milliseconds.
pub(crate) fn parse_token(v: &str) -> Result<u32, String> {
    match v.parse::<u32>() {
        Ok(t) if (10..=600_000).contains(&t) => Ok(t),
        _ => Err(format!(
            "--token wants milliseconds (10 to 600000), got `{v}`"
        )),
    }
}

/// Runs a subcommand; the exit status on success (that of the command, for `exec`).
pub(crate) fn run(sub: Sub) -> Result<ExitCode, Error> {
    if let Sub::Up {
        nodes,
        transport,
        netns,
        token,
        totem,
    } = sub
    {
        return up(nodes, transport, netns, token, totem).map(|()| ExitCode::SUCCESS);
    }
    if sub == Sub::Down {
        let report = nodes::cleanup(&CLUSTER);
        println!("cluster: down: {report}");
        return if report.errors.is_empty() {
            Ok(ExitCode::SUCCESS)
        } else {
            Err(Error::Failed(
                "some things could not be removed (see above)".into(),
            ))
        };
    }
    let mut cluster = Cluster::load(&CLUSTER)?.ok_or_else(|| {
        Error::Input(format!(
            "no cluster is up ({} not found): start one with `cargo xtask cluster up --nodes 3`",
            CLUSTER.state_file().display()
        ))
    })?;
    let known = |cluster: &Cluster, id: u32| -> Result<(), Error> {
        if cluster.node(id).is_some() {
            Ok(())
        } else {
            Err(Error::Input(format!(
                "node {id} is not in the cluster (nodes {})",
                id_list(&cluster.ids())
            )))
        }
    };
    match sub {
        Sub::Up { .. } | Sub::Down => unreachable!("handled above"),
        Sub::Status => {
            for (id, status) in cluster.statuses() {
                println!("{}", status.line(id));
            }
        }
        Sub::Signal { action, id } => {
            known(&cluster, id)?;
            let pid = cluster.signal(id, action.signal()).map_err(|e| {
                Error::Failed(format!("{e} (`cargo xtask cluster start {id}` starts it)"))
            })?;
            let what = match action {
                Action::Stop if !cluster.wait_gone(id, nodes::GRACE) => {
                    return Err(Error::Failed(format!(
                        "node {id} (pid {pid}) still runs {} s after SIGTERM",
                        nodes::GRACE.as_secs()
                    )));
                }
                Action::Stop => ": it left the ring and exited",
                Action::Kill => {
                    cluster.wait_gone(id, Duration::from_secs(2));
                    ""
                }
                Action::Pause => ": `cluster resume` continues it",
                Action::Resume => "",
            };
            println!(
                "cluster: node {id} {} (SIG{}, pid {pid}){what}",
                action.done(),
                action.signal()
            );
        }
        Sub::Start { id } => {
            known(&cluster, id)?;
            if let Some(ns) = cluster.node(id).and_then(|n| n.netns.clone())
                && !netns::namespaces().contains(&ns)
            {
                return Err(Error::Failed(format!(
                    "namespace {ns} is gone: `cargo xtask cluster down` and `up` again"
                )));
            }
            cluster.detach = true;
            let pid = cluster.start(id)?;
            // A daemon that cannot start (port taken, bad config) exits at once: say so.
            std::thread::sleep(Duration::from_millis(300));
            if !cluster.alive(id) {
                return Err(Error::Failed(format!(
                    "node {id} exited right after starting; the end of {}:\n{}",
                    cluster.log_path(id).display(),
                    nodes::indent(&nodes::log_tail(&cluster, id, 8))
                )));
            }
            println!(
                "cluster: node {id} started (pid {pid}); `cargo xtask cluster status` shows it join"
            );
        }
        Sub::Partition { a, b } => {
            for &id in a.iter().chain(&b) {
                known(&cluster, id)?;
            }
            cluster.set_partition(&a, &b)?;
            println!(
                "cluster: partitioned {} | {} (each side drops the other's datagrams)",
                id_list(&a),
                id_list(&b)
            );
        }
        Sub::Heal => {
            let before = cluster.partition.clone();
            if cluster.heal()? {
                match before {
                    Some([a, b]) => println!(
                        "cluster: healed (partition {} | {} removed)",
                        id_list(&a),
                        id_list(&b)
                    ),
                    None => println!("cluster: healed"),
                }
            } else {
                println!("cluster: no partition to heal");
            }
        }
        Sub::Loss { id, percent } => {
            known(&cluster, id)?;
            cluster.set_loss(id, percent)?;
            if percent == 0 {
                println!("cluster: node {id} loss cleared");
            } else {
                println!("cluster: node {id} drops {percent}% of the datagrams it receives");
            }
        }
        Sub::Exec { id, argv } => {
            known(&cluster, id)?;
            return exec(&cluster, id, &argv);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Builds totemd and totemctl (release).
pub(crate) fn build_daemons() -> crate::Result {
    Cmd::cargo()
        .args([
            "build",
            "--release",
            "-p",
            "node",
            "--bin",
            "totemd",
            "--bin",
            "totemctl",
        ])
        .run()
}

/// Starts every node of a created cluster and waits for one ring of all of them; the ring
/// and how long it took.
///
/// # Errors
/// A node could not start, or no common ring within [`FORM_TIMEOUT`].
pub(crate) fn start_all(cluster: &mut Cluster) -> crate::Result<(Ring, Duration)> {
    let start = Instant::now();
    for id in cluster.ids() {
        cluster.start(id)?;
    }
    let ids = cluster.ids();
    let rings = cluster.wait_rings(&[&ids], FORM_TIMEOUT, Duration::from_millis(20))?;
    Ok((rings[0].clone(), start.elapsed()))
}

fn up(
    count: u32,
    transport: Transport,
    netns: bool,
    token: Option<u32>,
    totem: Vec<(String, String)>,
) -> Result<(), Error> {
    if transport == Transport::Udp && !netns {
        return Err(Error::Input(
            "--transport udp needs --netns: udp is multicast, and loopback has no multicast, so \
             each node needs its own network namespace and interface (as root); on 127.0.0.x \
             use --transport udpu"
                .into(),
        ));
    }
    if netns && !netns::is_root() {
        return Err(Error::Input(
            "--netns needs root (it creates network namespaces, a bridge and nftables rules); \
             without root leave it out for a udpu cluster on 127.0.0.x"
                .into(),
        ));
    }
    if let Some(mut running) = Cluster::load(&CLUSTER)?
        && running.anything_left()
    {
        return Err(Error::Input(format!(
            "a cluster is already up ({}: {}): `cargo xtask cluster down` first",
            CLUSTER.state_file().display(),
            running.describe()
        )));
    }
    // What is left is a record of processes and namespaces that are gone (a reboot):
    // the cleanup below removes it.
    let leftovers = nodes::cleanup(&CLUSTER);
    if !leftovers.nothing() {
        println!("cluster: leftovers of an earlier run: {leftovers}");
    }
    build_daemons()?;
    let mut cluster = Cluster::new(&CLUSTER, netns, transport, token, count);
    cluster.detach = true;
    cluster.totem_extra = totem;
    println!("cluster: {}", cluster.describe());
    if let Err(e) = cluster.create() {
        let report = cluster.down();
        return Err(Error::Failed(format!("{e}\n(undone: {report})")));
    }
    match start_all(&mut cluster) {
        Ok((ring, took)) => {
            println!(
                "cluster: nodes {} formed ring {ring} in {:.1} s",
                id_list(&ring.members),
                took.as_secs_f64()
            );
            println!(
                "cluster: state in {}, logs in {}/n<id>/log; `cargo xtask cluster down` ends it",
                CLUSTER.state_file().display(),
                CLUSTER.root().display()
            );
            Ok(())
        }
        Err(e) => Err(Error::Failed(format!(
            "the nodes did not form one ring: {e}\n(the cluster is still up for a look: \
             `cargo xtask cluster status`, then `cargo xtask cluster down`)"
        ))),
    }
}

/// Runs `argv` as a client of node `id`: in its namespace, with `TOTEM_SOCKET` set and
/// `target/release` (totemctl) first on `PATH`.
fn exec(cluster: &Cluster, id: u32, argv: &[String]) -> Result<ExitCode, Error> {
    let mut cmd = match cluster.node(id).and_then(|n| n.netns.clone()) {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", &ns]).args(argv);
            c
        }
        None => {
            let mut c = Command::new(&argv[0]);
            c.args(&argv[1..]);
            c
        }
    };
    let bin = crate::cmd::root_path("target/release");
    let path = std::env::var("PATH").unwrap_or_default();
    cmd.env("TOTEM_SOCKET", cluster.socket(id))
        .env("TOTEM_NODEID", id.to_string())
        .env("PATH", format!("{}:{path}", bin.display()));
    let status = cmd
        .status()
        .map_err(|e| Error::Failed(format!("cannot run `{}`: {e}", argv.join(" "))))?;
    let code = status.code().unwrap_or_else(|| {
        use std::os::unix::process::ExitStatusExt as _;
        128 + status.signal().unwrap_or(0)
    });
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(line: &str) -> Result<Sub, String> {
        let args: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
        parse(&args)
    }

    #[test]
    fn parses_every_subcommand() {
        assert_eq!(
            p("up --nodes 5 --transport udp --netns --token 1000 --totem window_size=100"),
            Ok(Sub::Up {
                nodes: 5,
                transport: Transport::Udp,
                netns: true,
                token: Some(1000),
                totem: vec![("window_size".into(), "100".into())],
            })
        );
        assert_eq!(
            p("up"),
            Ok(Sub::Up {
                nodes: 3,
                transport: Transport::Udpu,
                netns: false,
                token: None,
                totem: Vec::new(),
            })
        );
        assert_eq!(
            p("kill 3"),
            Ok(Sub::Signal {
                action: Action::Kill,
                id: 3
            })
        );
        assert_eq!(
            p("partition 2,1 3"),
            Ok(Sub::Partition {
                a: vec![1, 2],
                b: vec![3]
            })
        );
        assert_eq!(p("loss 2 30"), Ok(Sub::Loss { id: 2, percent: 30 }));
        assert_eq!(
            p("exec 1 -- totemctl status --help"),
            Ok(Sub::Exec {
                id: 1,
                argv: vec!["totemctl".into(), "status".into(), "--help".into()]
            })
        );
        assert_eq!(p("down"), Ok(Sub::Down));
    }

    #[test]
    fn rejects_bad_input() {
        for bad in [
            "",
            "frobnicate",
            "up --nodes 0",
            "up --nodes",
            "up --transport tcp",
            "up --token 5",
            "kill",
            "kill x",
            "kill 0",
            "status now",
            "partition 1,2",
            "partition 1,2 2,3",
            "loss 1 101",
            "exec 1 totemctl",
            "exec 1 --",
        ] {
            assert!(p(bad).is_err(), "{bad}");
        }
    }
}
