//! `cargo xtask e2e`: end-to-end tests of the real daemons (a `cargo xtask ci` step).
//!
//! Three groups of cluster scenarios, 3 nodes at `token: 1000` each:
//! - `netns udp`, `netns udpu`: one network namespace per node on a bridge (root only;
//!   without root each scenario prints `SKIP (needs root)`);
//! - `loopback udpu`: 127.0.0.1-3, no root (no partition: faults need namespaces).
//!
//! Scenarios, in order (each first makes sure all three are in one ring, restarting the
//! cluster if an earlier failure left it otherwise):
//! form one ring (and `totemctl status` through `TOTEM_SOCKET` agrees); `totemctl cmap get
//! runtime.config.totem.token` shows the derived 1650 ms on every node, and a `totem.token`
//! write on node 1 changes node 1's ring only, its delete restores corosync's default
//! (3000 + 650 ms, as in corosync: a deleted key is an unset one); kill -9 one node,
//! the other two form a new ring; restart it, all three again with a higher ring seq;
//! pause one node beyond the token timeout (the others form a ring without it) and resume
//! it; partition 2|1 and heal; SIGTERM: the node leaves, exits 0, the others re-form.
//!
//! Then configuration errors: totemd must exit non-zero at once with a message naming the
//! problem (missing nodelist, duplicate nodeid, bad address, address not on this host,
//! unknown transport). They run in a network namespace holding only `lo` when one can be
//! had (`unshare`), so that resolving the bad address cannot send a DNS query anywhere.
//!
//! Checks read the nodes' `status` answers (the first line, and `state: OPERATIONAL`, see
//! `nodes::Cluster::wait_rings`) and exit statuses, with generous deadlines ("eventually,
//! within a minute"): no timing assertions. One line per scenario with `ok`/`FAILED` and its time,
//! then `e2e: N scenarios, F failed` (skipped ones are not counted; a line before the summary
//! says how many were skipped). Everything is torn down at the end, on failure, on a panic
//! and on Ctrl-C (`guard.rs`).

use core::time::Duration;
use std::fs;
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::cluster::{FORM_TIMEOUT, build_daemons, start_all};
use crate::guard::Session;
use crate::netns;
use crate::nodes::{self, Cluster, E2E, Ring, Transport, id_list};

/// Token timeout of every cluster scenario.
const TOKEN_MS: u32 = 1000;
/// How often waits poll the nodes.
const POLL: Duration = Duration::from_millis(20);
/// How long the pause scenario keeps a node stopped before it looks for the others' ring;
/// the node then stays stopped until they have formed one without it, which takes longer
/// than the token timeout (1650 ms with three nodes at `token: 1000`).
const PAUSE: Duration = Duration::from_secs(1);

/// One cluster scenario: its name and body.
type Scenario = (&'static str, fn(&mut Session) -> crate::Result<String>);

const SCENARIOS: &[Scenario] = &[
    ("form one ring", form),
    (
        "cmap: the derived token everywhere, a live write on one node",
        cmap,
    ),
    ("kill -9 one node, the other two form a new ring", kill),
    (
        "restart it, all three again with a higher ring seq",
        restart,
    ),
    ("pause one node beyond the token timeout, resume it", pause),
    ("partition 2|1 and heal", partition),
    ("SIGTERM: the node leaves and exits 0", leave),
];

/// Scenario names that need network namespaces whatever the group.
const NETNS_ONLY: &[&str] = &["partition 2|1 and heal"];

/// Tally of the run.
#[derive(Debug, Default)]
struct Tally {
    ran: usize,
    failed: Vec<String>,
    skipped: usize,
}

impl Tally {
    fn record(&mut self, group: &str, name: &str, took: Duration, result: crate::Result<String>) {
        self.ran += 1;
        let secs = took.as_secs_f64();
        match result {
            Ok(note) if note.is_empty() => println!("e2e: {group}: {name}: ok ({secs:.1} s)"),
            Ok(note) => println!("e2e: {group}: {name}: ok ({secs:.1} s): {note}"),
            Err(e) => {
                println!("e2e: {group}: {name}: FAILED ({secs:.1} s)");
                println!("{}", nodes::indent(&e));
                self.failed.push(format!("{group}: {name}"));
            }
        }
    }

    fn skip(&mut self, group: &str, name: &str, why: &str) {
        self.skipped += 1;
        println!("e2e: {group}: {name}: SKIP ({why})");
    }
}

/// Runs every scenario; `Err` when one failed.
pub(crate) fn run() -> crate::Result {
    let started = Instant::now();
    let leftovers = nodes::cleanup(&E2E);
    if !leftovers.nothing() {
        println!("e2e: leftovers of an earlier run: {leftovers}");
    }
    build_daemons()?;
    let mut tally = Tally::default();
    // Root in a container without CAP_NET_ADMIN cannot make namespaces either: say so
    // plainly on every line rather than fail each scenario.
    let namespaces = if netns::is_root() {
        netns::check_tools()
            .and_then(|()| netns::can_create(&E2E.netns(0)))
            .map_err(|e| format!("root, but no network namespaces here: {e}"))
    } else {
        Err("needs root".to_owned())
    };
    for transport in [Transport::Udp, Transport::Udpu] {
        let group = format!("netns {transport}");
        match &namespaces {
            Ok(()) => cluster_group(&mut tally, &group, true, transport),
            Err(why) => {
                for (name, _) in SCENARIOS {
                    tally.skip(&group, name, why);
                }
            }
        }
    }
    cluster_group(&mut tally, "loopback udpu", false, Transport::Udpu);
    config_group(&mut tally);

    if tally.skipped > 0 {
        println!("e2e: {} scenarios skipped", tally.skipped);
    }
    println!("e2e: finished in {}", crate::cmd::human(started.elapsed()));
    println!(
        "e2e: {} scenarios, {} failed",
        tally.ran,
        tally.failed.len()
    );
    if tally.failed.is_empty() {
        Ok(())
    } else {
        Err(format!("failed: {}", tally.failed.join("; ")))
    }
}

/// The cluster scenarios on one fresh cluster.
fn cluster_group(tally: &mut Tally, group: &str, netns: bool, transport: Transport) {
    let mut session = Session::new(Cluster::new(&E2E, netns, transport, Some(TOKEN_MS), 3));
    if let Err(e) = session.create() {
        for (name, _) in SCENARIOS {
            tally.record(
                group,
                name,
                Duration::ZERO,
                Err(format!("cannot create the cluster: {e}")),
            );
        }
        return;
    }
    for (name, scenario) in SCENARIOS {
        if !netns && NETNS_ONLY.contains(name) {
            tally.skip(group, name, "needs network namespaces");
            continue;
        }
        let t = Instant::now();
        let result = scenario(&mut session).map_err(|e| {
            // The next scenario may start the cluster afresh, and with it the logs: keep
            // their ends in the report.
            let mut e = e;
            for id in session.ids() {
                let log = session.log_path(id).display().to_string();
                if e.contains(&log) {
                    continue;
                }
                e += &format!(
                    "\nthe end of {log}:\n{}",
                    nodes::indent(&nodes::log_tail(&session, id, 6))
                );
            }
            e
        });
        tally.record(group, name, t.elapsed(), result);
    }
    // Dropping the session tears the cluster down before the next group starts.
}

fn wait(s: &mut Session, groups: &[&[u32]]) -> crate::Result<Vec<Ring>> {
    s.wait_rings(groups, FORM_TIMEOUT, POLL)
}

/// Makes sure all nodes run in one ring, restarting the whole cluster if needed.
fn all_in_one_ring(s: &mut Session) -> crate::Result<Ring> {
    let ids = s.ids();
    let all_alive = ids.clone().into_iter().all(|id| s.alive(id));
    if all_alive
        && s.partition.is_none()
        && s.loss.is_empty()
        && let Ok(rings) = s.wait_rings(&[&ids], Duration::from_secs(10), POLL)
    {
        return Ok(rings[0].clone());
    }
    // An earlier scenario failed and left the cluster otherwise: start over.
    s.down();
    s.create()?;
    Ok(start_all(s)?.0)
}

/// `ring` is newer than `before`.
fn higher(ring: &Ring, before: &Ring) -> crate::Result {
    if ring.seq > before.seq {
        Ok(())
    } else {
        Err(format!(
            "ring {ring} of {} is not newer than ring {before}",
            id_list(&ring.members)
        ))
    }
}

fn form(s: &mut Session) -> crate::Result<String> {
    let (ring, took) = start_all(s)?;
    // A client in node 1's place (its namespace, TOTEM_SOCKET) sees the same first line.
    let direct = s.query(1).line(1);
    let via_totemctl = client_status(s, 1)?;
    if via_totemctl.lines().next() != Some(direct.as_str()) {
        return Err(format!(
            "`totemctl status` with TOTEM_SOCKET printed\n{via_totemctl}\nbut the socket said\n{direct}"
        ));
    }
    Ok(format!("ring {ring} in {:.1} s", took.as_secs_f64()))
}

fn cmap(s: &mut Session) -> crate::Result<String> {
    all_in_one_ring(s)?;
    let key = "runtime.config.totem.token";
    let line = |ms: u32| format!("{key} (u32) = {ms}\n");
    // token 1000 + 650 for the third node (corosync's token_coefficient).
    let derived = TOKEN_MS + 650;
    for id in 1..=3 {
        let got = totemctl(s, id, &["cmap", "get", key])?;
        if got != line(derived) {
            return Err(format!(
                "node {id}: `totemctl cmap get {key}` printed {got:?}"
            ));
        }
    }
    totemctl(s, 1, &["cmap", "set", "totem.token", "u32", "1200"])?;
    let (one, two) = (
        totemctl(s, 1, &["cmap", "get", key])?,
        totemctl(s, 2, &["cmap", "get", key])?,
    );
    totemctl(s, 1, &["cmap", "del", "totem.token"])?;
    let back = totemctl(s, 1, &["cmap", "get", key])?;
    // The file's value again, for the scenarios that follow.
    totemctl(
        s,
        1,
        &["cmap", "set", "totem.token", "u32", &TOKEN_MS.to_string()],
    )?;
    // A deleted key is an unset one (as in corosync): the default 3000 ms, + 650.
    let default = 3000 + 650;
    if one != line(1850) || two != line(derived) || back != line(default) {
        return Err(format!(
            "after set totem.token 1200 on node 1: node 1 {one:?}, node 2 {two:?}; after del: {back:?}"
        ));
    }
    Ok(format!(
        "{derived} ms everywhere; 1850 on node 1 after a write, {default} after its delete"
    ))
}

/// `totemctl <args>` run as `cluster exec <id> -- totemctl <args>` would run it; its stdout.
fn totemctl(s: &Session, id: u32, args: &[&str]) -> crate::Result<String> {
    let totemctl = crate::cmd::root_path("target/release/totemctl");
    let mut cmd = match s.node(id).and_then(|n| n.netns.clone()) {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", &ns]).arg(&totemctl);
            c
        }
        None => Command::new(&totemctl),
    };
    let out = cmd
        .args(args)
        .env("TOTEM_SOCKET", s.socket(id))
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run totemctl: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "node {id}: totemctl {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `totemctl status` run as `cluster exec <id> -- totemctl status` would run it.
fn client_status(s: &Session, id: u32) -> crate::Result<String> {
    totemctl(s, id, &["status"])
}

fn kill(s: &mut Session) -> crate::Result<String> {
    let before = all_in_one_ring(s)?;
    let t = Instant::now();
    s.signal(3, "KILL")?;
    let ring = wait(s, &[&[1, 2]])?.remove(0);
    higher(&ring, &before)?;
    Ok(format!(
        "ring {ring} after {:.1} s",
        t.elapsed().as_secs_f64()
    ))
}

fn restart(s: &mut Session) -> crate::Result<String> {
    if s.alive(3) || !s.alive(1) || !s.alive(2) {
        // The kill scenario failed: get to its end state first.
        all_in_one_ring(s)?;
        s.signal(3, "KILL")?;
    }
    let before = wait(s, &[&[1, 2]])?.remove(0);
    let t = Instant::now();
    s.start(3)?;
    let ring = wait(s, &[&[1, 2, 3]])?.remove(0);
    higher(&ring, &before)?;
    Ok(format!(
        "ring {ring} after {:.1} s",
        t.elapsed().as_secs_f64()
    ))
}

fn pause(s: &mut Session) -> crate::Result<String> {
    let before = all_in_one_ring(s)?;
    s.signal(3, "STOP")?;
    std::thread::sleep(PAUSE);
    let without = match wait(s, &[&[1, 2]]) {
        Ok(mut r) => r.remove(0),
        Err(e) => {
            let _ = s.signal(3, "CONT");
            return Err(format!("while node 3 was stopped: {e}"));
        }
    };
    if s.query(3) != nodes::NodeStatus::Unreachable {
        let _ = s.signal(3, "CONT");
        return Err("node 3 answered status while stopped".into());
    }
    let t = Instant::now();
    s.signal(3, "CONT")?;
    let ring = wait(s, &[&[1, 2, 3]])?.remove(0);
    higher(&without, &before)?;
    higher(&ring, &without)?;
    Ok(format!(
        "1,2 formed ring {without}; after resume all in ring {ring} in {:.1} s",
        t.elapsed().as_secs_f64()
    ))
}

fn partition(s: &mut Session) -> crate::Result<String> {
    let before = all_in_one_ring(s)?;
    s.set_partition(&[1, 2], &[3])?;
    let sides = wait(s, &[&[1, 2], &[3]])?;
    let t = Instant::now();
    s.heal()?;
    let ring = wait(s, &[&[1, 2, 3]])?.remove(0);
    higher(&sides[0], &before)?;
    higher(&ring, &sides[0])?;
    higher(&ring, &sides[1])?;
    Ok(format!(
        "sides in rings {} and {}; healed into ring {ring} in {:.1} s",
        sides[0],
        sides[1],
        t.elapsed().as_secs_f64()
    ))
}

fn leave(s: &mut Session) -> crate::Result<String> {
    let before = all_in_one_ring(s)?;
    let t = Instant::now();
    s.signal(3, "TERM")?;
    let ring = wait(s, &[&[1, 2]])?.remove(0);
    let took = t.elapsed();
    higher(&ring, &before)?;
    if !s.wait_gone(3, Duration::from_secs(10)) {
        return Err("node 3 still runs 10 s after SIGTERM".into());
    }
    match s.node(3).and_then(|n| n.exit) {
        Some(status) if status.success() => {}
        Some(status) => return Err(format!("node 3 left but exited with {status}")),
        None => return Err("node 3's exit status was not seen".into()),
    }
    Ok(format!("ring {ring} after {:.2} s", took.as_secs_f64()))
}

/// A configuration test: name, what to change in a valid 3-node configuration, whether
/// totemd is told `--nodeid 1`, and words its message must contain.
struct ConfigCase {
    name: &'static str,
    edit: fn(&str) -> String,
    nodeid: bool,
    /// Resolving a name may query DNS: run only where no packet can leave.
    needs_isolation: bool,
    words: &'static [&'static str],
}

const CONFIG_CASES: &[ConfigCase] = &[
    ConfigCase {
        name: "missing nodelist",
        edit: |c| {
            let start = c.find("nodelist {").unwrap_or(c.len());
            let end = c.find("system {").unwrap_or(c.len());
            format!("{}{}", &c[..start], &c[end..])
        },
        nodeid: true,
        needs_isolation: false,
        words: &["nodelist"],
    },
    ConfigCase {
        name: "duplicate nodeid",
        edit: |c| c.replace("nodeid: 3", "nodeid: 2"),
        nodeid: true,
        needs_isolation: false,
        words: &["duplicate nodeid", "2"],
    },
    ConfigCase {
        name: "bad address",
        edit: |c| c.replace("ring0_addr: 127.0.0.3", "ring0_addr: 127.0.0.300"),
        nodeid: true,
        needs_isolation: true,
        words: &["ring0_addr", "127.0.0.300"],
    },
    ConfigCase {
        name: "address not on this host",
        edit: |c| c.replace("ring0_addr: 127.0.0.", "ring0_addr: 10.213.77."),
        nodeid: false,
        needs_isolation: false,
        words: &["no nodelist address is local"],
    },
    ConfigCase {
        name: "unknown transport",
        edit: |c| c.replace("transport: udpu", "transport: tcp"),
        nodeid: true,
        needs_isolation: false,
        words: &["unknown transport", "tcp"],
    },
];

/// How to run a command in a network namespace of its own that has only `lo` (up: in a
/// namespace whose `lo` is down, Linux lets a socket bind any address, which would make
/// every node look local), if this machine allows it.
fn isolation() -> Option<Vec<&'static str>> {
    const LO_UP: &str = "ip link set lo up && exec \"$0\" \"$@\"";
    let candidates: [&[&'static str]; 2] = [
        &["unshare", "--net", "sh", "-c", LO_UP],
        &[
            "unshare",
            "--user",
            "--map-root-user",
            "--net",
            "sh",
            "-c",
            LO_UP,
        ],
    ];
    candidates.into_iter().find_map(|prefix| {
        let ok = Command::new(prefix[0])
            .args(&prefix[1..])
            .arg("true")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| prefix.to_vec())
    })
}

fn config_group(tally: &mut Tally) {
    let dir = E2E.root().join("config");
    let base = Cluster::new(&E2E, false, Transport::Udpu, Some(TOKEN_MS), 3).totem_conf(1);
    // The state directory of the valid configuration, inside the test directory.
    let base = base.replace(
        &E2E.root().join("n1").display().to_string(),
        &dir.join("state").display().to_string(),
    );
    let isolation = isolation();
    for case in CONFIG_CASES {
        let group = "config";
        if case.needs_isolation && isolation.is_none() {
            tally.skip(
                group,
                case.name,
                "needs root or user namespaces: resolving it could send a DNS query",
            );
            continue;
        }
        let t = Instant::now();
        let result = config_case(case, &dir, &base, isolation.as_deref());
        tally.record(group, case.name, t.elapsed(), result);
    }
}

fn config_case(
    case: &ConfigCase,
    dir: &std::path::Path,
    base: &str,
    isolation: Option<&[&str]>,
) -> crate::Result<String> {
    fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let path = dir.join(format!("{}.conf", case.name.replace(' ', "-")));
    fs::write(&path, (case.edit)(base)).map_err(|e| format!("{}: {e}", path.display()))?;
    let totemd = crate::cmd::root_path("target/release/totemd");
    let mut argv: Vec<String> = isolation
        .unwrap_or_default()
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    argv.push(totemd.display().to_string());
    argv.extend(["-f".to_owned(), path.display().to_string()]);
    if case.nodeid {
        argv.extend(["--nodeid".to_owned(), "1".to_owned()]);
    }
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run `{}`: {e}", argv.join(" ")))?;
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break status;
        }
        if start.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "totemd still runs after 10 s with {}",
                path.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        use std::io::Read as _;
        let _ = pipe.read_to_string(&mut stderr);
    }
    // The message names the file; the directory only makes the line long.
    let message = stderr
        .trim()
        .lines()
        .last()
        .unwrap_or("")
        .replace(&format!("{}/", dir.display()), "");
    if status.success() {
        return Err(format!("totemd exited 0 with {}", path.display()));
    }
    let lower = message.to_lowercase();
    let missing: Vec<&str> = case
        .words
        .iter()
        .copied()
        .filter(|w| !lower.contains(&w.to_lowercase()))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "totemd's message lacks {missing:?}: {message:?} ({status})"
        ));
    }
    Ok(format!("{status}: {message}"))
}
