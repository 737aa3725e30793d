//! `cargo xtask bench cpg`: CPG throughput and latency on a real cluster, totem against
//! corosync 3 in the same places with the same method (COROSYNC.md §3.3).
//!
//! ```text
//! bench cpg [--nodes N] [--netns] [--transport udp|udpu] [--sizes B,B...] [--senders one|all]
//!           [--seconds S] [--rate N] [--safe] [--loss PCT] [--compare-corosync]
//! ```
//!
//! An N-node cluster (default 3) in network namespaces (`--netns`, root: udp multicast by
//! default) or on 127.0.0.x (udpu), laid out by `nodes.rs` under `target/bench-cpg/`
//! (layout `BENCH_CPG`), torn down by a `guard::Session` however the run ends. On every
//! node one `cpgbench --verify` (`client/src/bin/cpgbench`) joins one group; node 1 sends
//! (`--senders one`) or every node does (`all`), the others run `--receive-only`; each
//! size is one run of `--seconds` (default 5). Every member prints one line per run; the
//! figure of a size is the **minimum over nodes** of `msgs_s` (and `MB_s`), latency is the
//! senders' worst p50/p99, order is ok only if every member said so and every member's
//! delivery hash (`--hash-file`) is the same.
//!
//! `--compare-corosync` then stops totemd and runs corosync 3 (`start_corosync` of
//! `failover.rs`: same nodes, addresses, port, transport and timers, `crypto_cipher:
//! none`, `sched_rr: no`) in the same namespaces with a C twin of cpgbench on libcpg
//! (`bench_cpg.c`, written to `target/ccpgbench/` and compiled with `cc -lcpg` at run
//! time: same protocol, checks and output line), and prints both figures and the ratio
//! totem/corosync on one line per size. corosync and its CPG headers come from Debian
//! (`apt-get install -y corosync libcpg-dev`), installed here when missing — never under
//! CI; without the headers the C file declares the few libcpg calls itself and links
//! `libcpg.so.4`.
//!
//! `--loss PCT` drops that share of the datagrams the last node receives (nftables, both
//! daemons alike). Wall-clock figures on a shared machine: compare within one run.

use core::fmt::Write as _;
use core::time::Duration;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use crate::cluster::{build_daemons, start_all};
use crate::cmd::Cmd;
use crate::failover::{corosync_version, joined_member, remove_shm, start_corosync};
use crate::guard::Session;
use crate::nodes::{self, BENCH_CPG, Cluster, MAX_NODES, Transport, totem_option};
use crate::{netns, unknown, value};

/// The C twin of cpgbench, compiled against corosync's libcpg at run time.
const C_SOURCE: &str = include_str!("bench_cpg.c");

/// Extra time a node's benchmark may take beyond its runs before it is killed.
const SLACK: Duration = Duration::from_secs(120);

/// Which nodes send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Senders {
    /// Node 1 sends, the others receive.
    One,
    /// Every node sends.
    All,
}

/// `cargo xtask bench cpg` options.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) nodes: u32,
    pub(crate) netns: bool,
    pub(crate) transport: Option<Transport>,
    pub(crate) sizes: Vec<usize>,
    pub(crate) senders: Senders,
    pub(crate) seconds: f64,
    pub(crate) rate: Option<f64>,
    pub(crate) safe: bool,
    pub(crate) loss: u8,
    pub(crate) compare_corosync: bool,
    /// totem's cpgbench with one IPC round trip per message (`--sync`), as libcpg does,
    /// instead of queued multicasts.
    pub(crate) sync: bool,
    /// Extra `totem { }` options for totem's nodes (`--totem KEY=VALUE`).
    pub(crate) totem: Vec<(String, String)>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            nodes: 3,
            netns: false,
            transport: None,
            sizes: vec![64, 1024, 16384, 65536],
            senders: Senders::One,
            seconds: 5.0,
            rate: None,
            safe: false,
            loss: 0,
            compare_corosync: false,
            sync: false,
            totem: Vec::new(),
        }
    }
}

impl Options {
    /// udp (multicast) in namespaces, udpu on loopback, unless given.
    fn transport(&self) -> Transport {
        self.transport.unwrap_or(if self.netns {
            Transport::Udp
        } else {
            Transport::Udpu
        })
    }
}

/// Parses the arguments after `bench cpg`.
pub(crate) fn parse<'a>(rest: &mut impl Iterator<Item = &'a str>) -> Result<Options, String> {
    let mut o = Options::default();
    let t = "bench cpg";
    while let Some(arg) = rest.next() {
        match arg {
            "--nodes" => {
                let v = value(rest, t, "--nodes")?;
                o.nodes = match v.parse::<u32>() {
                    Ok(n) if (1..=MAX_NODES).contains(&n) => n,
                    _ => return Err(format!("{t}: --nodes wants 1 to {MAX_NODES}, got `{v}`")),
                };
            }
            "--netns" => o.netns = true,
            "--transport" => {
                let v = value(rest, t, "--transport")?;
                o.transport = Some(
                    Transport::parse(v)
                        .ok_or_else(|| format!("{t}: --transport is udp or udpu, not `{v}`"))?,
                );
            }
            "--sizes" => {
                let v = value(rest, t, "--sizes")?;
                o.sizes = v
                    .split(',')
                    .map(|s| match s.parse::<usize>() {
                        Ok(n) if (40..=1 << 20).contains(&n) => Ok(n),
                        _ => Err(format!("{t}: --sizes: `{s}` is not 40 to 1048576 bytes")),
                    })
                    .collect::<Result<_, _>>()?;
            }
            "--senders" => {
                o.senders = match value(rest, t, "--senders")? {
                    "one" => Senders::One,
                    "all" => Senders::All,
                    v => return Err(format!("{t}: --senders is one or all, not `{v}`")),
                };
            }
            "--seconds" => {
                let v = value(rest, t, "--seconds")?;
                o.seconds = match v.parse::<f64>() {
                    Ok(s) if s > 0.0 && s <= 600.0 => s,
                    _ => return Err(format!("{t}: --seconds wants 0 to 600, got `{v}`")),
                };
            }
            "--rate" => {
                let v = value(rest, t, "--rate")?;
                o.rate = match v.parse::<f64>() {
                    Ok(r) if r > 0.0 => Some(r),
                    _ => return Err(format!("{t}: --rate wants messages per second, got `{v}`")),
                };
            }
            "--safe" => o.safe = true,
            "--loss" => {
                let v = value(rest, t, "--loss")?;
                o.loss = match v.trim_end_matches('%').parse::<u8>() {
                    Ok(p) if p < 100 => p,
                    _ => return Err(format!("{t}: --loss is a percentage below 100, not `{v}`")),
                };
            }
            "--compare-corosync" => o.compare_corosync = true,
            "--sync" => o.sync = true,
            "--totem" => {
                let v = value(rest, t, "--totem")?;
                o.totem.push(totem_option(t, v)?);
            }
            other => return Err(unknown(t, other)),
        }
    }
    if o.transport() == Transport::Udp && !o.netns {
        return Err(format!(
            "{t}: --transport udp needs --netns (loopback has no multicast)"
        ));
    }
    if (o.loss > 0 || o.compare_corosync) && !o.netns {
        return Err(format!(
            "{t}: --loss and --compare-corosync need --netns (nftables and one corosync per \
             namespace)"
        ));
    }
    Ok(o)
}

/// One `cpg size=...` line of one node.
#[derive(Debug, Clone, PartialEq)]
struct Line {
    size: usize,
    msgs_s: f64,
    mb_s: f64,
    p50: Option<u64>,
    p99: Option<u64>,
    ok: bool,
}

impl Line {
    /// `cpg size=<B> msgs_s=<n> MB_s=<x> p50_us=<a> p99_us=<b> order=ok|FAILED`.
    fn parse(line: &str) -> Option<Self> {
        let mut f = line.strip_prefix("cpg ")?.split(' ');
        let mut field = |key: &str| f.next()?.strip_prefix(key).map(str::to_owned);
        let size = field("size=")?.parse().ok()?;
        let msgs_s = field("msgs_s=")?.parse().ok()?;
        let mb_s = field("MB_s=")?.parse().ok()?;
        let p50 = field("p50_us=")?.parse().ok();
        let p99 = field("p99_us=")?.parse().ok();
        let ok = match field("order=")?.as_str() {
            "ok" => true,
            "FAILED" => false,
            _ => return None,
        };
        Some(Self {
            size,
            msgs_s,
            mb_s,
            p50,
            p99,
            ok,
        })
    }
}

/// A size's figure over all nodes.
#[derive(Debug, Clone, PartialEq)]
struct Figure {
    msgs_s: f64,
    mb_s: f64,
    p50: Option<u64>,
    p99: Option<u64>,
    ok: bool,
}

impl Figure {
    /// Minimum throughput over nodes, the senders' worst latency, order ok everywhere and
    /// the same hash everywhere (`hashes_agree`). `None` if a node has no line for `size`.
    fn of(per_node: &[Vec<Line>], size: usize, hashes_agree: bool) -> Option<Self> {
        let lines: Vec<&Line> = per_node
            .iter()
            .map(|lines| lines.iter().find(|l| l.size == size))
            .collect::<Option<_>>()?;
        Some(Self {
            msgs_s: lines.iter().map(|l| l.msgs_s).fold(f64::INFINITY, f64::min),
            mb_s: lines.iter().map(|l| l.mb_s).fold(f64::INFINITY, f64::min),
            p50: lines.iter().filter_map(|l| l.p50).max(),
            p99: lines.iter().filter_map(|l| l.p99).max(),
            ok: hashes_agree && lines.iter().all(|l| l.ok),
        })
    }

    fn show(&self) -> String {
        let us = |v: Option<u64>| v.map_or_else(|| "-".to_owned(), |v| v.to_string());
        format!(
            "msgs_s={:.0} MB_s={:.2} p50_us={} p99_us={} order={}",
            self.msgs_s,
            self.mb_s,
            us(self.p50),
            us(self.p99),
            if self.ok { "ok" } else { "FAILED" }
        )
    }
}

/// What one daemon's benchmark produced: the figure of each size, or why there is none.
type Results = Result<Vec<(usize, Option<Figure>)>, String>;

/// Runs the bench.
pub(crate) fn run(o: &Options) -> crate::Result {
    if o.netns {
        if !netns::is_root() {
            return Err("--netns needs root (namespaces, a bridge, nftables)".into());
        }
        netns::check_tools()?;
    }
    let transport = o.transport();
    let corosync = if o.compare_corosync {
        prepare_corosync()
    } else {
        Err("not asked (--compare-corosync)".into())
    };
    let leftovers = nodes::cleanup(&BENCH_CPG);
    if !leftovers.nothing() {
        println!("bench: leftovers of an earlier run: {leftovers}");
    }
    build_daemons()?;
    Cmd::cargo()
        .args([
            "build",
            "--release",
            "-p",
            "totem-client",
            "--bin",
            "cpgbench",
        ])
        .run()?;
    let senders = match o.senders {
        Senders::One => "one",
        Senders::All => "all",
    };
    println!(
        "bench cpg: {} nodes, {transport}{}, sizes {}, {} s each, senders {senders}, {}{}{}; \
         figure = minimum over nodes",
        o.nodes,
        if o.netns {
            " in network namespaces"
        } else {
            " on 127.0.0.x"
        },
        o.sizes
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(","),
        o.seconds,
        if o.safe { "SAFE" } else { "AGREED" },
        o.rate
            .map_or_else(String::new, |r| format!(", {r} msg/s per sender")),
        if o.loss > 0 {
            format!(", {}% input loss at node {}", o.loss, o.nodes)
        } else {
            String::new()
        }
    );
    match &corosync {
        Ok((version, _)) => println!("bench: reference: {version}, same namespaces and timers"),
        Err(why) if o.compare_corosync => println!("bench: corosync not run: {why}"),
        Err(_) => {}
    }
    let mut cluster = Cluster::new(&BENCH_CPG, o.netns, transport, None, o.nodes);
    cluster.totem_extra.clone_from(&o.totem);
    let mut session = Session::new(cluster);
    session.create()?;
    let totem = measure(&mut session, o, Daemon::Totem);
    let reference = match &corosync {
        Ok((_, bin)) => Some(measure(&mut session, o, Daemon::Corosync(bin.clone()))),
        Err(_) => None,
    };
    drop(session);

    println!();
    let mut failed = Vec::new();
    for &size in &o.sizes {
        let pick = |r: &Results| -> Result<Option<Figure>, String> {
            r.as_ref()
                .map(|v| {
                    v.iter()
                        .find(|(s, _)| *s == size)
                        .and_then(|(_, f)| f.clone())
                })
                .map_err(Clone::clone)
        };
        let t = pick(&totem);
        let mut line = format!("cpg size={size} senders={senders}: totem ");
        match &t {
            Ok(Some(f)) => {
                line += &f.show();
                if !f.ok {
                    failed.push(format!("size {size}: order FAILED"));
                }
            }
            Ok(None) => {
                line += "no result";
                failed.push(format!("size {size}: no result"));
            }
            Err(e) => {
                line += "not measured (see above)";
                if failed.is_empty() {
                    failed.push(e.clone());
                }
            }
        }
        if let Some(c) = &reference {
            line += " | corosync ";
            match pick(c) {
                Ok(Some(f)) => {
                    line += &f.show();
                    if let Ok(Some(t)) = &t
                        && f.msgs_s > 0.0
                    {
                        let _ = write!(line, " | ratio totem/corosync {:.2}", t.msgs_s / f.msgs_s);
                    }
                }
                Ok(None) => line += "no result",
                Err(_) => line += "not measured (see above)",
            }
        }
        println!("{line}");
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("totem: {}", failed.join("; ")))
    }
}

/// Which daemon a measurement runs.
#[derive(Debug, Clone)]
enum Daemon {
    Totem,
    /// corosync, with the compiled C benchmark.
    Corosync(PathBuf),
}

impl Daemon {
    fn name(&self) -> &'static str {
        match self {
            Self::Totem => "totem",
            Self::Corosync(_) => "corosync",
        }
    }
}

/// Starts the daemon on every node, runs the benchmark, stops the daemon.
fn measure(s: &mut Session, o: &Options, daemon: Daemon) -> Results {
    let name = daemon.name();
    let ids = s.ids();
    let mut corosync_pids = Vec::new();
    let started = match &daemon {
        Daemon::Totem => start_all(s)
            .map(|(ring, took)| {
                println!(
                    "bench: totem: ring {ring} of {} nodes in {:.1} s",
                    ids.len(),
                    took.as_secs_f64()
                );
            })
            .map_err(|e| format!("the nodes did not form one ring: {e}")),
        Daemon::Corosync(_) => (|| {
            for &id in &ids {
                corosync_pids.push(start_corosync(s, id)?);
            }
            wait_corosync(s, &ids)
        })(),
    };
    let result = started.and_then(|()| {
        if o.loss > 0 {
            s.set_loss(o.nodes, o.loss)?;
        }
        // Let the new configuration settle (sync, the first token rotations).
        std::thread::sleep(Duration::from_secs(1));
        run_clients(s, o, &daemon)
    });
    // Stop the daemons (the loss table stays for the next daemon: same conditions).
    for id in s.ids() {
        if s.alive(id) {
            let _ = s.signal(id, "TERM");
        }
    }
    for id in s.ids() {
        if !s.wait_gone(id, nodes::GRACE) {
            let _ = s.signal(id, "KILL");
            s.wait_gone(id, nodes::GRACE);
        }
    }
    remove_shm(&corosync_pids);
    if let Err(e) = &result {
        println!("bench: {name}: {e}");
    }
    result
}

/// Waits until corosync on every node lists every node as joined (`runtime.members`).
fn wait_corosync(s: &Cluster, ids: &[u32]) -> crate::Result {
    let deadline = Instant::now() + Duration::from_secs(60);
    let start = Instant::now();
    loop {
        let all = ids.iter().all(|&id| {
            let Some(ns) = s.node(id).and_then(|n| n.netns.clone()) else {
                return false;
            };
            let out = Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    &ns,
                    "corosync-cmapctl",
                    "-b",
                    "runtime.members",
                ])
                .stdin(Stdio::null())
                .stderr(Stdio::null())
                .output();
            out.is_ok_and(|out| {
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .filter_map(joined_member)
                    .count()
                    == ids.len()
            })
        });
        if all {
            println!(
                "bench: corosync: {} nodes joined in {:.1} s",
                ids.len(),
                start.elapsed().as_secs_f64()
            );
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "corosync: not every node joined within 60 s; see {}",
                s.log_path(1).display()
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Runs one benchmark client per node, all at once; each size's figure.
fn run_clients(s: &Cluster, o: &Options, daemon: &Daemon) -> Results {
    let name = daemon.name();
    let ids = s.ids();
    let n = ids.len();
    let senders = match o.senders {
        Senders::One => 1,
        Senders::All => n,
    };
    let sizes = o
        .sizes
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let program = match daemon {
        Daemon::Totem => crate::cmd::root_path("target/release/cpgbench"),
        Daemon::Corosync(bin) => bin.clone(),
    };
    let mut children: Vec<(u32, Child, PathBuf)> = Vec::new();
    for (i, &id) in ids.iter().enumerate() {
        let hashes = s.node_dir(id).join(format!("{name}.hashes"));
        let _ = fs::remove_file(&hashes);
        let mut argv: Vec<String> = vec![
            program.display().to_string(),
            "--group".into(),
            "xtask-bench".into(),
            "--sizes".into(),
            sizes.clone(),
            "--seconds".into(),
            o.seconds.to_string(),
            "--members".into(),
            n.to_string(),
            "--senders".into(),
            senders.to_string(),
            "--verify".into(),
            "--hash-file".into(),
            hashes.display().to_string(),
        ];
        if let Daemon::Totem = daemon {
            argv.push("--socket".into());
            argv.push(s.socket(id).display().to_string());
            if o.sync {
                argv.push("--sync".into());
            }
        }
        if o.senders == Senders::One && i > 0 {
            argv.push("--receive-only".into());
        }
        if let Some(r) = o.rate {
            argv.extend(["--rate".into(), r.to_string()]);
        }
        if o.safe {
            argv.push("--safe".into());
        }
        let mut cmd = match s.node(id).and_then(|n| n.netns.clone()) {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", &ns]).args(&argv);
                c
            }
            None => {
                let mut c = Command::new(&argv[0]);
                c.args(&argv[1..]);
                c
            }
        };
        let log = s.node_dir(id).join(format!("{name}-bench.log"));
        let err = fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(err))
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", argv.join(" ")))?;
        children.push((id, child, hashes));
    }
    let budget = Duration::from_secs_f64(o.seconds * o.sizes.len() as f64) + SLACK;
    let deadline = Instant::now() + budget;
    let mut per_node = Vec::new();
    let mut hash_files = Vec::new();
    let mut problems = Vec::new();
    for (id, mut child, hashes) in children {
        loop {
            match child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                _ => {
                    let _ = child.kill();
                    problems.push(format!("node {id}: killed after {} s", budget.as_secs()));
                    break;
                }
            }
        }
        let out = child
            .wait_with_output()
            .map_err(|e| format!("node {id}: {e}"))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        for l in stdout.lines() {
            println!("bench: {name} node {id}: {l}");
        }
        if !out.status.success() {
            let log = s.node_dir(id).join(format!("{name}-bench.log"));
            let tail = fs::read_to_string(&log).unwrap_or_default();
            let tail: Vec<&str> = tail.lines().rev().take(4).collect();
            problems.push(format!(
                "node {id}: {} ({})",
                out.status,
                tail.into_iter().rev().collect::<Vec<_>>().join(" / ")
            ));
        }
        per_node.push(stdout.lines().filter_map(Line::parse).collect::<Vec<_>>());
        hash_files.push(fs::read_to_string(&hashes).unwrap_or_default());
    }
    for p in &problems {
        println!("bench: {name}: {p}");
    }
    let hashes_agree = hash_files.windows(2).all(|w| w[0] == w[1]);
    if !hashes_agree {
        println!("bench: {name}: the nodes' delivery hashes differ:");
        for (id, h) in ids.iter().zip(&hash_files) {
            println!("  node {id}: {}", h.trim().replace('\n', "; "));
        }
    }
    if per_node.iter().all(Vec::is_empty) {
        return Err(problems.join("; "));
    }
    Ok(o.sizes
        .iter()
        .map(|&size| (size, Figure::of(&per_node, size, hashes_agree)))
        .collect())
}

/// corosync's version and the compiled C benchmark, installing what is missing (never
/// under CI); `Err` says why corosync cannot be compared.
fn prepare_corosync() -> Result<(String, PathBuf), String> {
    let header = Path::new("/usr/include/corosync/cpg.h");
    let have_lib = Path::new("/usr/lib/x86_64-linux-gnu/libcpg.so.4").exists()
        || Path::new("/usr/lib/libcpg.so.4").exists()
        || ldconfig_has("libcpg.so.4");
    if corosync_version().is_err() || !header.exists() || !have_lib {
        if std::env::var_os("CI").is_some() {
            return Err("corosync or libcpg-dev missing, and CI never installs packages".into());
        }
        println!(
            "bench: corosync's CPG library or headers are missing: installing them with \
             `apt-get install -y corosync libcpg-dev`"
        );
        let install = || {
            Command::new("apt-get")
                .args(["install", "-y", "corosync", "libcpg-dev"])
                .env("DEBIAN_FRONTEND", "noninteractive")
                .stdin(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        if !install() {
            let _ = Command::new("apt-get")
                .arg("update")
                .stdin(Stdio::null())
                .status();
            if !install() {
                println!("bench: apt-get could not install them");
            }
        }
    }
    let version = corosync_version()?;
    // Not under the cluster's directory: `Cluster::create` empties that.
    let dir = crate::cmd::root_path("target/ccpgbench");
    fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let src = dir.join("ccpgbench.c");
    let bin = dir.join("ccpgbench");
    fs::write(&src, C_SOURCE).map_err(|e| format!("{}: {e}", src.display()))?;
    let (defines, lib): (&[&str], &str) = if header.exists() {
        (&[], "-lcpg")
    } else {
        println!("bench: no corosync/cpg.h: the C benchmark declares libcpg's calls itself");
        (&["-DTOTEM_NO_CPG_H"], "-l:libcpg.so.4")
    };
    let out = Command::new("cc")
        .args(["-O2", "-Wall", "-o"])
        .arg(&bin)
        .arg(&src)
        .args(defines)
        .arg(lib)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run cc: {e} (apt-get install -y gcc)"))?;
    if !out.status.success() {
        return Err(format!(
            "cc could not build {}: {}",
            src.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok((version, bin))
}

fn ldconfig_has(lib: &str) -> bool {
    Command::new("ldconfig")
        .arg("-p")
        .stdin(Stdio::null())
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(lib))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(line: &str) -> Result<Options, String> {
        parse(&mut line.split_whitespace())
    }

    #[test]
    fn parses_options() {
        let o = p("--nodes 3 --netns --sizes 64,1024 --senders all --loss 1 --compare-corosync")
            .unwrap();
        assert_eq!(o.nodes, 3);
        assert_eq!(o.transport(), Transport::Udp);
        assert_eq!(o.sizes, vec![64, 1024]);
        assert_eq!(
            (o.senders, o.loss, o.compare_corosync),
            (Senders::All, 1, true)
        );
        assert_eq!(p("").unwrap().transport(), Transport::Udpu);
        assert_eq!(
            p("--netns --transport udpu").unwrap().transport(),
            Transport::Udpu
        );
        for bad in [
            "--nodes 0",
            "--transport udp",
            "--sizes 8",
            "--senders two",
            "--loss 5",
            "--compare-corosync",
            "--netns --loss 100",
            "--seconds 0",
            "--fast",
        ] {
            assert!(p(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn reads_lines_and_takes_the_minimum_over_nodes() {
        let a = Line::parse("cpg size=64 msgs_s=30000 MB_s=1.92 p50_us=300 p99_us=900 order=ok")
            .unwrap();
        let b =
            Line::parse("cpg size=64 msgs_s=29000 MB_s=1.86 p50_us=- p99_us=- order=ok").unwrap();
        assert_eq!((b.p50, b.ok), (None, true));
        assert!(Line::parse("cpg size=64 msgs_s=1 MB_s=1 p50_us=1 p99_us=1 order=maybe").is_none());
        assert!(Line::parse("cpgbench: run 1").is_none());
        let f = Figure::of(&[vec![a.clone()], vec![b]], 64, true).unwrap();
        assert_eq!(
            f.show(),
            "msgs_s=29000 MB_s=1.86 p50_us=300 p99_us=900 order=ok"
        );
        assert!(!Figure::of(&[vec![a.clone()]], 64, false).unwrap().ok);
        assert!(Figure::of(&[vec![a], vec![]], 64, true).is_none());
    }

    #[test]
    fn the_c_twin_speaks_the_same_line() {
        assert!(
            C_SOURCE.contains("cpg size=%u msgs_s=%.0f MB_s=%.2f p50_us=%s p99_us=%s order=%s\\n")
        );
        assert!(C_SOURCE.contains("#define MAGIC 0x43504742u"));
    }
}
