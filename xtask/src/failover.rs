//! `cargo xtask bench failover`: how long a cluster takes to agree on a new membership
//! after a failure, totem against corosync 3 in the same places with the same timers.
//!
//! Three measurements, each over `--runs` runs (default 5) at token 3000 (the default) and
//! at token 1000 (or only `--token MS`), every other timer at its default:
//! - `kill`: SIGKILL of the last node → the survivors report one ring of just themselves;
//! - `stop`: SIGTERM (a clean leave) of the last node → the same;
//! - `heal`: the cluster split 2|1 (N-1 | 1) by nftables, both sides settled → the partition
//!   removed → all N report one ring.
//!
//! The clock starts just before the signal is sent (or the nft tables are deleted) and
//! stops at the poll that first sees the new membership on every node concerned, so each
//! figure is late by up to one poll interval:
//! - totem: a `status` request on each node's control socket (what `totemctl status`
//!   sends, without a process start) every 10 ms; a node counts once it is OPERATIONAL
//!   with the expected member list (see `nodes::Cluster::wait_rings`);
//! - corosync: `corosync-cmapctl -b runtime.members` in a loop inside each node's namespace
//!   (the loop period, printed, is the resolution: around 10-20 ms); a node counts once the
//!   members with `status = joined` are the expected ones. corosync updates
//!   `runtime.members` at its configuration change, the same moment totem's status shows.
//!
//! corosync runs one instance per network namespace (its IPC sockets are abstract, hence
//! per namespace), each with a private `/run` (its lock file `/var/run/corosync.pid` is
//! fixed) and state directory, `transport` as given (udpu or udp; corosync 3 has both),
//! `crypto_cipher: none`, and `sched_rr: no` so that neither daemon gets a real-time
//! priority the other lacks. Without root (no namespaces) only totem runs, on 127.0.0.x,
//! and `heal` is skipped. If corosync is missing or does not start, the reason is printed
//! and totem's figures still are. The machine is shared: read the figures as a comparison
//! under the same conditions, not as absolute numbers.

use alloc::collections::BTreeSet;
use core::time::Duration;
use std::fs;
use std::io::{BufRead as _, BufReader};
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Instant;

use crate::cluster::{build_daemons, parse_token, start_all};
use crate::guard::Session;
use crate::nodes::{self, BENCH, Cluster, MAX_NODES, Program, Transport, id_list};
use crate::{netns, unknown, value};

/// How often totem's status is polled.
const POLL: Duration = Duration::from_millis(10);
/// Deadline of any one wait (token 3000 with consensus takes about 8 s with corosync).
const TIMEOUT: Duration = Duration::from_secs(90);
/// Quiet time before each measured failure, once the cluster is whole again.
const SETTLE: Duration = Duration::from_millis(1000);
/// The token timeouts measured when `--token` is not given: corosync 3's default, and the
/// short setting of the e2e tests and the demo.
const TOKENS: [u32; 2] = [3000, 1000];

/// `cargo xtask bench failover` options.
#[derive(Debug)]
pub(crate) struct Options {
    pub(crate) nodes: u32,
    pub(crate) transport: Transport,
    pub(crate) token: Option<u32>,
    pub(crate) runs: u32,
}

/// Parses the arguments after `bench failover`.
pub(crate) fn parse<'a>(rest: &mut impl Iterator<Item = &'a str>) -> Result<Options, String> {
    let mut o = Options {
        nodes: 3,
        transport: Transport::Udpu,
        token: None,
        runs: 5,
    };
    while let Some(arg) = rest.next() {
        match arg {
            "--nodes" => {
                let v = value(rest, "bench failover", "--nodes")?;
                o.nodes = match v.parse::<u32>() {
                    Ok(n) if (2..=MAX_NODES).contains(&n) => n,
                    _ => {
                        return Err(format!(
                            "bench failover: --nodes wants 2 to {MAX_NODES}, got `{v}`"
                        ));
                    }
                };
            }
            "--transport" => {
                let v = value(rest, "bench failover", "--transport")?;
                o.transport = Transport::parse(v).ok_or_else(|| {
                    format!("bench failover: --transport is udp or udpu, not `{v}`")
                })?;
            }
            "--token" => {
                let v = value(rest, "bench failover", "--token")?;
                o.token = Some(parse_token(v).map_err(|e| format!("bench failover: {e}"))?);
            }
            "--runs" => {
                let v = value(rest, "bench failover", "--runs")?;
                o.runs = match v.parse::<u32>() {
                    Ok(n) if (1..=100).contains(&n) => n,
                    _ => return Err(format!("bench failover: --runs wants 1 to 100, got `{v}`")),
                };
            }
            other => return Err(unknown("bench failover", other)),
        }
    }
    Ok(o)
}

/// The three measurements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Kill,
    Stop,
    Heal,
}

impl Fault {
    const ALL: [Self; 3] = [Self::Kill, Self::Stop, Self::Heal];

    fn name(self) -> &'static str {
        match self {
            Self::Kill => "kill",
            Self::Stop => "stop",
            Self::Heal => "heal",
        }
    }
}

/// Seconds per run of one measurement of one daemon, or why there are none.
type Figures = Result<Vec<f64>, String>;

/// Runs the bench.
pub(crate) fn run(o: &Options) -> crate::Result {
    let root = netns::is_root();
    if !root && o.transport == Transport::Udp {
        return Err(
            "--transport udp needs root: multicast needs a network namespace per node".into(),
        );
    }
    if root {
        netns::check_tools()?;
    }
    let tokens: Vec<u32> = o.token.map_or_else(|| TOKENS.to_vec(), |t| vec![t]);
    let corosync = if root {
        corosync_version()
    } else {
        Err("needs root: one network namespace per corosync instance".into())
    };
    let leftovers = nodes::cleanup(&BENCH);
    if !leftovers.nothing() {
        println!("bench: leftovers of an earlier run: {leftovers}");
    }
    build_daemons()?;
    println!(
        "bench failover: {} nodes, {}, {} runs per figure, token {} ms; kill = SIGKILL, \
         stop = SIGTERM, heal = end of a {}|1 partition; new membership seen by polling \
         (totem: status every {} ms)",
        o.nodes,
        o.transport,
        o.runs,
        tokens
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" and "),
        o.nodes - 1,
        POLL.as_millis()
    );
    match &corosync {
        Ok(v) => println!("bench: reference: {v}, same namespaces and timers, sched_rr: no"),
        Err(why) => println!("bench: corosync not run: {why}"),
    }
    let mut summary = Vec::new();
    for &token in &tokens {
        let mut session = Session::new(Cluster::new(
            &BENCH,
            root,
            o.transport,
            Some(token),
            o.nodes,
        ));
        session.create()?;
        let totem = measure_totem(&mut session, o.runs)?;
        let reference = match &corosync {
            Ok(_) => measure_corosync(&mut session, o.runs),
            Err(why) => {
                let why = why.clone();
                Fault::ALL.map(|_| Err(why.clone()))
            }
        };
        drop(session);
        for (i, fault) in Fault::ALL.into_iter().enumerate() {
            summary.push(summary_line(fault, &totem[i], &reference[i], o.runs, token));
        }
    }
    println!();
    for line in summary {
        println!("{line}");
    }
    Ok(())
}

/// `failover kill: totem median 2.31 s, corosync median 7.52 s, ratio 0.31 (5 runs, token 3000)`.
fn summary_line(
    fault: Fault,
    totem: &Figures,
    corosync: &Figures,
    runs: u32,
    token: u32,
) -> String {
    let median_of = |f: &Figures| f.as_ref().ok().and_then(|v| median(v));
    let totem_part = match (totem, median_of(totem)) {
        (_, Some(m)) => format!("totem median {m:.2} s"),
        (Err(why), None) => format!("totem not measured ({why})"),
        (Ok(_), None) => "totem no runs".to_owned(),
    };
    let corosync_part = match (corosync, median_of(corosync)) {
        (_, Some(m)) => format!("corosync median {m:.2} s"),
        (Err(why), None) => format!("corosync not measured ({why})"),
        (Ok(_), None) => "corosync no runs".to_owned(),
    };
    let ratio = match (median_of(totem), median_of(corosync)) {
        (Some(t), Some(c)) if c > 0.0 => format!(", ratio {:.2}", t / c),
        _ => String::new(),
    };
    format!(
        "failover {}: {totem_part}, {corosync_part}{ratio} ({runs} runs, token {token})",
        fault.name()
    )
}

fn median(values: &[f64]) -> Option<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => Some(f64::midpoint(v[n / 2 - 1], v[n / 2])),
    }
}

fn print_runs(daemon: &str, fault: Fault, token: Option<u32>, figures: &Figures) {
    let token = token.map_or_else(String::new, |t| format!(" token {t}"));
    match figures {
        Ok(v) => println!(
            "bench: {daemon} {}{token}: {} s",
            fault.name(),
            v.iter()
                .map(|s| format!("{s:.3}"))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        Err(e) => println!("bench: {daemon} {}{token}: FAILED: {e}", fault.name()),
    }
}

/// The totem figures, in [`Fault::ALL`] order.
fn measure_totem(s: &mut Session, runs: u32) -> crate::Result<[Figures; 3]> {
    let ids = s.ids();
    let last = ids.last().copied().unwrap_or(1);
    let rest: Vec<u32> = ids[..ids.len() - 1].to_vec();
    start_all(s).map_err(|e| format!("totem: the nodes did not form one ring: {e}"))?;
    let mut out = [Ok(Vec::new()), Ok(Vec::new()), Ok(Vec::new())];
    for (i, fault) in Fault::ALL.into_iter().enumerate() {
        if fault == Fault::Heal && !s.netns {
            let why = "needs root: partitions are nftables rules in namespaces";
            println!("bench: totem heal: skipped ({why})");
            out[i] = Err(why.into());
            continue;
        }
        let mut times = Vec::new();
        for _ in 0..runs {
            match totem_run(s, fault, &ids, &rest, last) {
                Ok(t) => times.push(t),
                Err(e) => {
                    out[i] = Err(e);
                    break;
                }
            }
        }
        if out[i].is_ok() {
            out[i] = Ok(times);
        }
        print_runs("totem", fault, s.token, &out[i]);
        // Whatever happened, the next measurement starts from a whole cluster.
        restore_totem(s, &ids)?;
    }
    for id in s.ids() {
        let _ = s.signal(id, "TERM");
    }
    for id in s.ids() {
        s.wait_gone(id, nodes::GRACE);
    }
    Ok(out)
}

/// One measured totem run, from a whole cluster back to a whole cluster.
fn totem_run(
    s: &mut Session,
    fault: Fault,
    ids: &[u32],
    rest: &[u32],
    last: u32,
) -> crate::Result<f64> {
    s.wait_rings(&[ids], TIMEOUT, POLL)?;
    std::thread::sleep(SETTLE);
    let took = match fault {
        Fault::Kill | Fault::Stop => {
            let signal = if fault == Fault::Kill { "KILL" } else { "TERM" };
            let t = Instant::now();
            s.signal(last, signal)?;
            s.wait_rings(&[rest], TIMEOUT, POLL)?;
            let took = t.elapsed();
            s.wait_gone(last, nodes::GRACE);
            s.start(last)?;
            took
        }
        Fault::Heal => {
            s.set_partition(rest, &[last])?;
            s.wait_rings(&[rest, &[last]], TIMEOUT, POLL)?;
            std::thread::sleep(SETTLE);
            let t = Instant::now();
            s.heal()?;
            s.wait_rings(&[ids], TIMEOUT, POLL)?;
            t.elapsed()
        }
    };
    s.wait_rings(&[ids], TIMEOUT, POLL)?;
    Ok(took.as_secs_f64())
}

fn restore_totem(s: &mut Session, ids: &[u32]) -> crate::Result {
    if s.partition.is_some() {
        s.heal()?;
    }
    for &id in ids {
        if !s.alive(id) {
            s.start(id)?;
        }
    }
    s.wait_rings(&[ids], TIMEOUT, POLL).map(drop)
}

/// `Corosync Cluster Engine, version '3.1.7'`, or why corosync cannot be used.
pub(crate) fn corosync_version() -> Result<String, String> {
    let out = Command::new("corosync")
        .arg("-v")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                "not installed (`apt-get install -y corosync`)".to_owned()
            }
            _ => format!("`corosync -v`: {e}"),
        })?;
    let text = String::from_utf8_lossy(&out.stdout);
    let first = text.lines().next().unwrap_or("").trim().to_owned();
    if first.contains("version") {
        Ok(first.replace("Corosync Cluster Engine, version", "corosync"))
    } else {
        Err(format!("`corosync -v` printed {first:?}"))
    }
}

/// corosync's configuration for node `id` of the bench cluster: same nodes, addresses,
/// port, transport and token as totem's.
fn corosync_conf(s: &Cluster, id: u32) -> String {
    let dir = s.node_dir(id);
    let mut c = format!(
        "# Written by cargo xtask bench failover (xtask/src/failover.rs): node {id}.\n\
         totem {{\n    version: 2\n    cluster_name: {}\n    transport: {}\n",
        s.layout.cluster_name, s.transport
    );
    if let Some(token) = s.token {
        c += &format!("    token: {token}\n");
    }
    c += "    crypto_cipher: none\n    crypto_hash: none\n";
    c += &format!("    interface {{\n        mcastport: {}\n", s.layout.port);
    if s.transport == Transport::Udp {
        c += &format!("        mcastaddr: {}\n", nodes::mcast_group(s.layout));
    }
    c += "    }\n}\nnodelist {\n";
    for node in &s.nodes {
        c += &format!(
            "    node {{\n        ring0_addr: {}\n        nodeid: {}\n    }}\n",
            node.addr, node.id
        );
    }
    c += &format!(
        "}}\nsystem {{\n    state_dir: {}\n    sched_rr: no\n}}\n\
         logging {{\n    to_stderr: yes\n    to_syslog: no\n    to_logfile: no\n    \
         timestamp: hires\n    blackbox: off\n}}\n",
        dir.join("corosync-state").display()
    );
    c
}

/// Starts corosync as node `id`, in its namespace with a private `/run`.
pub(crate) fn start_corosync(s: &mut Session, id: u32) -> crate::Result<u32> {
    let dir = s.node_dir(id);
    let run = dir.join("run");
    let conf = dir.join("corosync.conf");
    fs::create_dir_all(&run).map_err(|e| format!("{}: {e}", run.display()))?;
    fs::create_dir_all(dir.join("corosync-state"))
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    fs::write(&conf, corosync_conf(s, id)).map_err(|e| format!("{}: {e}", conf.display()))?;
    // `ip netns exec` has already given the command a mount namespace of its own, so the
    // bind mount stays private to it.
    let script = format!(
        "mount --bind {} /run && exec corosync -f -c {}",
        run.display(),
        conf.display()
    );
    let argv = ["sh".to_owned(), "-c".to_owned(), script];
    s.spawn(id, Program::Corosync, &argv)
}

/// A loop of `corosync-cmapctl -b runtime.members` in one node's namespace, read by a
/// thread that sends (when read, joined node ids) per round.
struct Watcher {
    id: u32,
    child: Child,
    rx: mpsc::Receiver<(Instant, BTreeSet<u32>)>,
    /// Rounds seen and their time span, for the resolution.
    rounds: u32,
    first: Option<Instant>,
    last: Option<Instant>,
}

impl Watcher {
    fn new(ns: &str, id: u32) -> crate::Result<Self> {
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns, "sh", "-c"])
            .arg("while :; do corosync-cmapctl -b runtime.members 2>&1; echo @@; sleep 0.002; done")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            // A group of its own, so that Drop ends the loop and the cmapctl it runs. If
            // this process dies instead, the loop dies of SIGPIPE at its next line.
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot start corosync-cmapctl in {ns}: {e}"))?;
        let stdout = child.stdout.take().ok_or("no pipe from corosync-cmapctl")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut joined = BTreeSet::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line == "@@" {
                    let round = core::mem::take(&mut joined);
                    if tx.send((Instant::now(), round)).is_err() {
                        break;
                    }
                } else if let Some(id) = joined_member(&line) {
                    joined.insert(id);
                }
            }
        });
        Ok(Self {
            id,
            child,
            rx,
            rounds: 0,
            first: None,
            last: None,
        })
    }

    /// Mean time between rounds so far.
    fn period(&self) -> Option<Duration> {
        let (first, last) = (self.first?, self.last?);
        (self.rounds > 1).then(|| (last - first) / (self.rounds - 1))
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = nodes::send_signal_group(self.child.id(), "KILL");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `runtime.members.2.status (str) = joined` → 2.
pub(crate) fn joined_member(line: &str) -> Option<u32> {
    let rest = line.strip_prefix("runtime.members.")?;
    let (id, rest) = rest.split_once('.')?;
    (rest.starts_with("status") && rest.trim_end().ends_with("= joined"))
        .then(|| id.parse().ok())
        .flatten()
}

/// Waits until every watcher of a node in `groups` has seen exactly its group joined, and
/// returns when the last of them first saw it (`since` bounds what counts).
fn corosync_wait(
    watchers: &mut [Watcher],
    groups: &[&[u32]],
    since: Instant,
) -> crate::Result<Instant> {
    let want = |id: u32| -> Option<BTreeSet<u32>> {
        groups
            .iter()
            .find(|g| g.contains(&id))
            .map(|g| g.iter().copied().collect())
    };
    let mut matched: Vec<Option<Instant>> = vec![None; watchers.len()];
    let mut latest: Vec<String> = vec!["nothing yet".into(); watchers.len()];
    let deadline = Instant::now() + TIMEOUT;
    loop {
        for (i, w) in watchers.iter_mut().enumerate() {
            let Some(expect) = want(w.id) else { continue };
            while let Ok((at, joined)) = w.rx.try_recv() {
                w.rounds += 1;
                w.first.get_or_insert(at);
                w.last = Some(at);
                if at < since {
                    continue;
                }
                latest[i] = id_list(&joined.iter().copied().collect::<Vec<_>>());
                if joined == expect {
                    matched[i].get_or_insert(at);
                } else {
                    matched[i] = None;
                }
            }
        }
        let concerned: Vec<usize> = (0..watchers.len())
            .filter(|&i| want(watchers[i].id).is_some())
            .collect();
        if concerned.iter().all(|&i| matched[i].is_some()) {
            return Ok(concerned
                .iter()
                .filter_map(|&i| matched[i])
                .max()
                .unwrap_or_else(Instant::now));
        }
        if Instant::now() > deadline {
            let seen: Vec<String> = concerned
                .iter()
                .map(|&i| format!("node {} sees {}", watchers[i].id, latest[i]))
                .collect();
            let want: Vec<String> = groups.iter().map(|g| id_list(g)).collect();
            return Err(format!(
                "corosync: no membership {{{}}} within {} s ({})",
                want.join("} and {"),
                TIMEOUT.as_secs(),
                seen.join("; ")
            ));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The corosync figures, in [`Fault::ALL`] order; any failure is reported in place.
fn measure_corosync(s: &mut Session, runs: u32) -> [Figures; 3] {
    let ids = s.ids();
    let last = ids.last().copied().unwrap_or(1);
    let rest: Vec<u32> = ids[..ids.len() - 1].to_vec();
    let mut started = Vec::new();
    let result = (|| -> crate::Result<[Figures; 3]> {
        for &id in &ids {
            started.push(start_corosync(s, id)?);
        }
        let mut watchers = ids
            .iter()
            .map(|&id| Watcher::new(&s.layout.netns(id), id))
            .collect::<crate::Result<Vec<_>>>()?;
        corosync_wait(&mut watchers, &[&ids], Instant::now())
            .map_err(|e| format!("{e}; see {}", s.log_path(1).display()))?;
        let mut out = [Ok(Vec::new()), Ok(Vec::new()), Ok(Vec::new())];
        for (i, fault) in Fault::ALL.into_iter().enumerate() {
            let mut times = Vec::new();
            for _ in 0..runs {
                match corosync_run(s, &mut watchers, fault, &ids, &rest, last, &mut started) {
                    Ok(t) => times.push(t),
                    Err(e) => {
                        out[i] = Err(e);
                        break;
                    }
                }
            }
            if out[i].is_ok() {
                out[i] = Ok(times);
            }
            print_runs("corosync", fault, s.token, &out[i]);
            if s.partition.is_some() {
                s.heal()?;
            }
            for &id in &ids {
                if !s.alive(id) {
                    started.push(start_corosync(s, id)?);
                }
            }
            corosync_wait(&mut watchers, &[&ids], Instant::now())?;
        }
        let periods: Vec<u128> = watchers
            .iter()
            .filter_map(|w| w.period().map(|p| p.as_millis()))
            .collect();
        if let (Some(min), Some(max)) = (periods.iter().min(), periods.iter().max()) {
            println!(
                "bench: corosync membership polled every {min}-{max} ms per node (the \
                 resolution of its figures)"
            );
        }
        Ok(out)
    })();
    for id in s.ids() {
        let _ = s.signal(id, "TERM");
    }
    for id in s.ids() {
        if !s.wait_gone(id, nodes::GRACE) {
            let _ = s.signal(id, "KILL");
            s.wait_gone(id, nodes::GRACE);
        }
    }
    remove_shm(&started);
    result.unwrap_or_else(|e| {
        println!("bench: corosync: {e}");
        Fault::ALL.map(|_| Err(e.clone()))
    })
}

/// One measured corosync run, from a whole cluster back to a whole cluster.
fn corosync_run(
    s: &mut Session,
    watchers: &mut [Watcher],
    fault: Fault,
    ids: &[u32],
    rest: &[u32],
    last: u32,
    started: &mut Vec<u32>,
) -> crate::Result<f64> {
    corosync_wait(watchers, &[ids], Instant::now())?;
    std::thread::sleep(SETTLE);
    let took = match fault {
        Fault::Kill | Fault::Stop => {
            let signal = if fault == Fault::Kill { "KILL" } else { "TERM" };
            let t = Instant::now();
            s.signal(last, signal)?;
            let seen = corosync_wait(watchers, &[rest], t)?;
            if !s.wait_gone(last, nodes::GRACE) {
                s.signal(last, "KILL")?;
                s.wait_gone(last, nodes::GRACE);
            }
            started.push(start_corosync(s, last)?);
            seen - t
        }
        Fault::Heal => {
            s.set_partition(rest, &[last])?;
            corosync_wait(watchers, &[rest, &[last]], Instant::now())?;
            std::thread::sleep(SETTLE);
            let t = Instant::now();
            s.heal()?;
            corosync_wait(watchers, &[ids], t)? - t
        }
    };
    corosync_wait(watchers, &[ids], Instant::now())?;
    Ok(took.as_secs_f64())
}

/// Removes libqb's shared memory of the corosync processes that were started (a SIGKILLed
/// corosync cannot remove its own): entries of /dev/shm whose name holds `-<pid>-`.
pub(crate) fn remove_shm(pids: &[u32]) {
    let Ok(dir) = fs::read_dir("/dev/shm") else {
        return;
    };
    for entry in dir.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("qb-") && pids.iter().any(|p| name.contains(&format!("-{p}-"))) {
            // One directory per IPC connection (`qb-<server>-<client>-...`), or files.
            let path = entry.path();
            let _ = if path.is_dir() {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_summary_lines() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        assert_eq!(
            summary_line(Fault::Kill, &Ok(vec![2.31]), &Ok(vec![7.52]), 5, 3000),
            "failover kill: totem median 2.31 s, corosync median 7.52 s, ratio 0.31 (5 runs, token 3000)"
        );
        assert_eq!(
            summary_line(
                Fault::Heal,
                &Ok(vec![0.5]),
                &Err("not installed".into()),
                5,
                1000
            ),
            "failover heal: totem median 0.50 s, corosync not measured (not installed) (5 runs, token 1000)"
        );
    }

    #[test]
    fn reads_cmapctl_members() {
        assert_eq!(
            joined_member("runtime.members.2.status (str) = joined"),
            Some(2)
        );
        assert_eq!(joined_member("runtime.members.3.status (str) = left"), None);
        assert_eq!(
            joined_member("runtime.members.2.ip (str) = r(0) ip(10.0.0.2)"),
            None
        );
    }

    #[test]
    fn parses_options() {
        let o = parse(&mut ["--nodes", "4", "--transport", "udp", "--token", "1000"].into_iter())
            .unwrap();
        assert_eq!(
            (o.nodes, o.transport, o.token, o.runs),
            (4, Transport::Udp, Some(1000), 5)
        );
        assert!(parse(&mut ["--nodes", "1"].into_iter()).is_err());
        assert!(parse(&mut ["--runs", "0"].into_iter()).is_err());
        assert!(parse(&mut ["--fast"].into_iter()).is_err());
    }
}
