//! A cluster of totemd processes on this machine, as `cluster`, `demo`, `e2e` and `bench
//! failover` run it: configuration files, processes, status queries, faults and teardown.
//!
//! A [`Cluster`] lives in one directory ([`Layout::dir`], e.g. `target/cluster/`):
//!
//! ```text
//! target/cluster/cluster.json   what runs: mode, transport, nodes, PIDs, namespaces, faults
//! target/cluster/n<id>/         one per node: totem.conf, log (stdout+stderr), pid,
//!                               totemd.sock (control socket), ringid_<id> (ring seq)
//! ```
//!
//! Two modes: *netns* (root: one network namespace per node on a bridge, addresses
//! `10.213.S.<id>`, see `netns.rs`) and *loopback* (no root: `127.0.0.<id>`, udpu only, as
//! loopback has no multicast). Every later invocation finds the cluster again through
//! `cluster.json`; teardown also sweeps what the naming convention says could be left over
//! from a run that crashed before recording it (namespaces `<prefix><id>`, the bridge, and
//! any process whose command line names a file under the cluster's directory).
//!
//! Status comes from the daemon's control service (one request, then a text answer whose
//! first line is `node <id>: ring <rep>.<seq> members <ids>`), asked through `totemctl`
//! (the service rides the daemon's shared-memory IPC); a stopped (SIGSTOP) daemon is
//! reported `unreachable` after [`QUERY_TIMEOUT`].

use alloc::collections::BTreeMap;
use core::fmt;
use core::net::Ipv4Addr;
use core::time::Duration;
use std::fs;
use std::io::{Read as _, Write as _};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Instant;

use crate::json::Json;
use crate::netns;

/// How long a status query waits for an answer before calling the node `unreachable`.
pub(crate) const QUERY_TIMEOUT: Duration = Duration::from_millis(800);

/// How long teardown waits after SIGTERM before it sends SIGKILL.
pub(crate) const GRACE: Duration = Duration::from_secs(5);

/// The largest `--nodes`: plenty for one machine, and keeps interface names short.
pub(crate) const MAX_NODES: u32 = 32;

/// Where a tool keeps its cluster and what it calls things, so that tools never clash.
#[derive(Debug)]
pub(crate) struct Layout {
    /// The tool, as in messages and `xtask __guard <tool>`.
    pub(crate) tool: &'static str,
    /// The cluster's directory, relative to the workspace root.
    pub(crate) dir: &'static str,
    /// Namespace of node `id` is `<netns_prefix><id>`.
    pub(crate) netns_prefix: &'static str,
    /// The bridge in the root namespace.
    pub(crate) bridge: &'static str,
    /// Root-side veth of node `id` is `<veth_prefix><id>` (at most 15 characters in all).
    pub(crate) veth_prefix: &'static str,
    /// Nodes get 10.213.`subnet`.`id` in netns mode.
    pub(crate) subnet: u8,
    /// `mcastport`; distinct per tool so that loopback clusters of two tools can coexist.
    pub(crate) port: u16,
    /// `cluster_name`; distinct per tool so that stray frames are dropped as foreign.
    pub(crate) cluster_name: &'static str,
}

/// `cargo xtask cluster`.
pub(crate) const CLUSTER: Layout = Layout {
    tool: "cluster",
    dir: "target/cluster",
    netns_prefix: "totem-n",
    bridge: "totem-br0",
    veth_prefix: "totem-v",
    subnet: 0,
    port: 5405,
    cluster_name: "xtask-cluster",
};

/// `cargo xtask demo` (loopback only).
pub(crate) const DEMO: Layout = Layout {
    tool: "demo",
    dir: "target/demo",
    netns_prefix: "totem-demo-n",
    bridge: "totem-demo-br",
    veth_prefix: "totem-demo-v",
    subnet: 3,
    port: 5425,
    cluster_name: "xtask-demo",
};

/// `cargo xtask e2e`.
pub(crate) const E2E: Layout = Layout {
    tool: "e2e",
    dir: "target/e2e",
    netns_prefix: "totem-e2e-n",
    bridge: "totem-e2e-br",
    veth_prefix: "totem-e2e-v",
    subnet: 1,
    port: 5435,
    cluster_name: "xtask-e2e",
};

/// `cargo xtask bench failover`.
pub(crate) const BENCH: Layout = Layout {
    tool: "bench",
    dir: "target/bench-failover",
    netns_prefix: "totem-bf-n",
    bridge: "totem-bf-br",
    veth_prefix: "totem-bf-v",
    subnet: 2,
    port: 5445,
    cluster_name: "xtask-bench",
};

/// `cargo xtask bench cpg`.
pub(crate) const BENCH_CPG: Layout = Layout {
    tool: "bench-cpg",
    dir: "target/bench-cpg",
    netns_prefix: "totem-bc-n",
    bridge: "totem-bc-br",
    veth_prefix: "totem-bc-v",
    subnet: 4,
    port: 5455,
    cluster_name: "xtask-bench-cpg",
};

/// `cargo xtask appliance`: two totemd nodes and the appliance (node 3, on a TAP).
pub(crate) const APPLIANCE: Layout = Layout {
    tool: "appliance",
    dir: "target/appliance-e2e",
    netns_prefix: "totem-ap-n",
    bridge: "totem-ap-br",
    veth_prefix: "totem-ap-v",
    subnet: 5,
    port: 5465,
    cluster_name: "xtask-appliance",
};

/// Every layout (the guard process finds its layout by tool name).
pub(crate) const LAYOUTS: &[&Layout] = &[&CLUSTER, &DEMO, &E2E, &BENCH, &BENCH_CPG, &APPLIANCE];

impl Layout {
    /// The absolute directory.
    pub(crate) fn root(&self) -> PathBuf {
        crate::cmd::root_path(self.dir)
    }

    pub(crate) fn state_file(&self) -> PathBuf {
        self.root().join("cluster.json")
    }

    pub(crate) fn netns(&self, id: u32) -> String {
        format!("{}{id}", self.netns_prefix)
    }

    fn veth(&self, id: u32) -> String {
        format!("{}{id}", self.veth_prefix)
    }

    /// Whether `name` is one of this layout's namespace names.
    fn is_our_netns(&self, name: &str) -> bool {
        name.strip_prefix(self.netns_prefix)
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    }

    /// Whether `name` is this layout's bridge or one of its veths.
    fn is_our_link(&self, name: &str) -> bool {
        name == self.bridge
            || name
                .strip_prefix(self.veth_prefix)
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    }
}

/// The ring transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    /// UDP multicast (needs netns: loopback has no multicast).
    Udp,
    /// UDP unicast to every node.
    Udpu,
}

impl Transport {
    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "udp" => Some(Self::Udp),
            "udpu" => Some(Self::Udpu),
            _ => None,
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Udp => "udp",
            Self::Udpu => "udpu",
        })
    }
}

/// A ring as a node reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ring {
    pub(crate) rep: u32,
    pub(crate) seq: u64,
    /// Ascending.
    pub(crate) members: Vec<u32>,
}

impl fmt::Display for Ring {
    /// `1.12` (the ring id as `status` prints it).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.rep, self.seq)
    }
}

impl Ring {
    /// Parses the first line of a `status` answer for node `id`:
    /// `node <id>: ring <rep>.<seq> members <id>,<id>,...`.
    pub(crate) fn parse_status(id: u32, line: &str) -> Option<Self> {
        let rest = line.strip_prefix(&format!("node {id}: ring "))?;
        let (ring, members) = rest.split_once(" members ")?;
        let (rep, seq) = ring.split_once('.')?;
        let mut members: Vec<u32> = if members.trim().is_empty() {
            Vec::new()
        } else {
            members
                .trim()
                .split(',')
                .map(str::parse)
                .collect::<Result<_, _>>()
                .ok()?
        };
        members.sort_unstable();
        Some(Self {
            rep: rep.parse().ok()?,
            seq: seq.parse().ok()?,
            members,
        })
    }
}

/// What a node is doing, from the outside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NodeStatus {
    /// No process (never started, exited, killed).
    Down,
    /// The process lives but did not answer (stopped, busy, or a malformed answer).
    Unreachable,
    /// Its answer: the first line as printed, the ring parsed from it, and whether its
    /// `state:` line says OPERATIONAL (true when there is no such line).
    Up {
        line: String,
        ring: Ring,
        operational: bool,
    },
}

impl NodeStatus {
    /// `node <id>: ring ...`, `node <id>: down` or `node <id>: unreachable`.
    pub(crate) fn line(&self, id: u32) -> String {
        match self {
            Self::Down => format!("node {id}: down"),
            Self::Unreachable => format!("node {id}: unreachable"),
            Self::Up { line, .. } => line.clone(),
        }
    }
}

/// `1,2,3`.
pub(crate) fn id_list(ids: &[u32]) -> String {
    ids.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Which daemon a node runs (the failover bench also runs corosync in the same places).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Program {
    Totemd,
    Corosync,
}

impl Program {
    fn name(self) -> &'static str {
        match self {
            Self::Totemd => "totemd",
            Self::Corosync => "corosync",
        }
    }
}

/// One node of a [`Cluster`].
#[derive(Debug)]
pub(crate) struct Node {
    pub(crate) id: u32,
    pub(crate) addr: Ipv4Addr,
    /// Its namespace (netns mode).
    pub(crate) netns: Option<String>,
    pub(crate) program: Program,
    /// The process last started for it (it may have exited since).
    pub(crate) pid: Option<u32>,
    /// The process, when this invocation started it (reaped on exit, exit status kept).
    child: Option<Child>,
    /// Exit status of `child`, once reaped.
    pub(crate) exit: Option<ExitStatus>,
}

/// A cluster: where it lives, how it runs, and its nodes.
#[derive(Debug)]
pub(crate) struct Cluster {
    pub(crate) layout: &'static Layout,
    /// Netns mode (else loopback).
    pub(crate) netns: bool,
    pub(crate) transport: Transport,
    /// `token` in ms; `None`: totemd's default.
    pub(crate) token: Option<u32>,
    pub(crate) nodes: Vec<Node>,
    /// The two sides of the current partition.
    pub(crate) partition: Option<[Vec<u32>; 2]>,
    /// Input loss in % per node.
    pub(crate) loss: BTreeMap<u32, u8>,
    /// Start each node in its own process group so that it outlives this process and a
    /// Ctrl-C in this terminal (`cluster up`). Tools that clean up after themselves leave
    /// it off: a Ctrl-C then reaches the nodes too, which leave the ring on SIGINT.
    pub(crate) detach: bool,
    /// Whether the bridge was created by this cluster.
    bridge: bool,
    /// Extra `key: value` lines for every node's `totem { }` (`--totem`; kept in the written
    /// configs, which a restarted node reads again, not in the state file).
    pub(crate) totem_extra: Vec<(String, String)>,
}

/// `Err` of a wait: what was expected and the last status of every node concerned.
pub(crate) type WaitError = String;

impl Cluster {
    /// A cluster of `count` nodes, not created yet ([`Cluster::create`]).
    pub(crate) fn new(
        layout: &'static Layout,
        netns: bool,
        transport: Transport,
        token: Option<u32>,
        count: u32,
    ) -> Self {
        let nodes = (1..=count)
            .map(|id| Node {
                id,
                addr: node_addr(layout, netns, id),
                netns: netns.then(|| layout.netns(id)),
                program: Program::Totemd,
                pid: None,
                child: None,
                exit: None,
            })
            .collect();
        Self {
            layout,
            netns,
            transport,
            token,
            nodes,
            partition: None,
            loss: BTreeMap::new(),
            detach: false,
            bridge: false,
            totem_extra: Vec::new(),
        }
    }

    /// The node ids, ascending.
    pub(crate) fn ids(&self) -> Vec<u32> {
        self.nodes.iter().map(|n| n.id).collect()
    }

    pub(crate) fn node(&self, id: u32) -> Option<&Node> {
        self.nodes.iter().find(|n| n.id == id)
    }

    fn node_mut(&mut self, id: u32) -> crate::Result<&mut Node> {
        self.nodes
            .iter_mut()
            .find(|n| n.id == id)
            .ok_or_else(|| format!("node {id} is not in the cluster"))
    }

    pub(crate) fn node_dir(&self, id: u32) -> PathBuf {
        self.layout.root().join(format!("n{id}"))
    }

    /// The daemon's control socket.
    pub(crate) fn socket(&self, id: u32) -> PathBuf {
        self.node_dir(id).join("totemd.sock")
    }

    pub(crate) fn config_path(&self, id: u32) -> PathBuf {
        self.node_dir(id).join("totem.conf")
    }

    pub(crate) fn log_path(&self, id: u32) -> PathBuf {
        self.node_dir(id).join("log")
    }

    /// One line describing where the nodes run.
    pub(crate) fn describe(&self) -> String {
        let n = self.nodes.len();
        let token = self
            .token
            .map_or_else(|| "default token".to_owned(), |t| format!("token {t} ms"));
        let last = self.nodes.last().map_or(0, |n| n.id);
        if self.netns {
            format!(
                "{n} nodes, {}, {token}, network namespaces {}1..{} on bridge {} \
                 (10.213.{}.1-{last}, port {})",
                self.transport,
                self.layout.netns_prefix,
                self.layout.netns(last),
                self.layout.bridge,
                self.layout.subnet,
                self.layout.port
            )
        } else {
            format!(
                "{n} nodes, {}, {token}, on 127.0.0.1-{last} port {} (no namespaces)",
                self.transport, self.layout.port
            )
        }
    }

    /// Creates the directory (emptied first), the configuration files and, in netns mode,
    /// the bridge and namespaces; records the state. On error, call [`Cluster::down`].
    pub(crate) fn create(&mut self) -> crate::Result {
        let root = self.layout.root();
        // Emptied rather than removed: the directory itself may be all this user can write.
        if let Ok(entries) = fs::read_dir(&root) {
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    fs::remove_dir_all(&path)
                } else {
                    fs::remove_file(&path)
                }
                .map_err(|e| format!("cannot empty {}: {e}", root.display()))?;
            }
        }
        for node in &self.nodes {
            let dir = self.node_dir(node.id);
            fs::create_dir_all(&dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            let conf = self.config_path(node.id);
            fs::write(&conf, self.totem_conf(node.id))
                .map_err(|e| format!("cannot write {}: {e}", conf.display()))?;
        }
        self.save()?;
        if self.netns {
            netns::check_tools()?;
            netns::add_bridge(self.layout.bridge)?;
            self.bridge = true;
            self.save()?;
            for node in &self.nodes {
                netns::add_node(
                    &self.layout.netns(node.id),
                    &self.layout.veth(node.id),
                    self.layout.bridge,
                    node.addr,
                )?;
            }
        }
        Ok(())
    }

    /// totemd's configuration for node `id` (all nodes share it but for `state_dir`).
    pub(crate) fn totem_conf(&self, id: u32) -> String {
        let mut c = format!(
            "# Written by cargo xtask {} (xtask/src/nodes.rs): node {id}.\n\
             totem {{\n    version: 2\n    cluster_name: {}\n    transport: {}\n",
            self.layout.tool, self.layout.cluster_name, self.transport
        );
        if let Some(token) = self.token {
            c += &format!("    token: {token}\n");
        }
        for (k, v) in &self.totem_extra {
            c += &format!("    {k}: {v}\n");
        }
        c += &format!(
            "    interface {{\n        mcastport: {}\n",
            self.layout.port
        );
        if self.transport == Transport::Udp {
            c += &format!("        mcastaddr: {}\n", mcast_group(self.layout));
        }
        c += "    }\n}\nnodelist {\n";
        for node in &self.nodes {
            c += &format!(
                "    node {{\n        ring0_addr: {}\n        nodeid: {}\n    }}\n",
                node.addr, node.id
            );
        }
        c += &format!(
            "}}\nsystem {{\n    state_dir: {}\n}}\nlogging {{\n    to_stderr: yes\n}}\n",
            self.node_dir(id).display()
        );
        c
    }

    /// Starts totemd for node `id`; returns its PID.
    pub(crate) fn start(&mut self, id: u32) -> crate::Result<u32> {
        let argv = vec![
            crate::cmd::root_path("target/release/totemd")
                .display()
                .to_string(),
            "-f".to_owned(),
            self.config_path(id).display().to_string(),
            "--nodeid".to_owned(),
            id.to_string(),
        ];
        self.spawn(id, Program::Totemd, &argv)
    }

    /// Starts `argv` as node `id` (in its namespace in netns mode), output appended to its
    /// log; records the PID in `n<id>/pid` and the state file.
    pub(crate) fn spawn(
        &mut self,
        id: u32,
        program: Program,
        argv: &[String],
    ) -> crate::Result<u32> {
        if self.alive(id) {
            let pid = self.node(id).and_then(|n| n.pid).unwrap_or(0);
            return Err(format!("node {id} is already running (pid {pid})"));
        }
        let log_path = self.log_path(id);
        let mut log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| format!("cannot open {}: {e}", log_path.display()))?;
        // Restarts append: a header line tells the runs apart.
        let _ = writeln!(
            log,
            "--- xtask: starting {}: {}",
            program.name(),
            argv.join(" ")
        );
        let log2 = log
            .try_clone()
            .map_err(|e| format!("{}: {e}", log_path.display()))?;
        let netns = self.node(id).and_then(|n| n.netns.clone());
        let mut cmd = match &netns {
            Some(ns) => {
                // `ip netns exec` execs the command in place: the PID is the daemon's.
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).args(argv);
                c
            }
            None => {
                let mut c = Command::new(&argv[0]);
                c.args(&argv[1..]);
                c
            }
        };
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            .current_dir(self.node_dir(id));
        if self.detach {
            cmd.process_group(0);
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start node {id} (`{}`): {e}", argv.join(" ")))?;
        let pid = child.id();
        let pid_file = self.node_dir(id).join("pid");
        let node = self.node_mut(id)?;
        node.pid = Some(pid);
        node.program = program;
        node.child = Some(child);
        node.exit = None;
        fs::write(&pid_file, format!("{pid}\n"))
            .map_err(|e| format!("cannot write {}: {e}", pid_file.display()))?;
        self.save()?;
        Ok(pid)
    }

    /// Whether node `id`'s process runs (a stopped one counts as running).
    pub(crate) fn alive(&mut self, id: u32) -> bool {
        let root = self.layout.root();
        let Ok(node) = self.node_mut(id) else {
            return false;
        };
        if let Some(child) = &mut node.child {
            match child.try_wait() {
                Ok(None) => return true,
                Ok(Some(status)) => {
                    node.exit = Some(status);
                    node.child = None;
                    return false;
                }
                Err(_) => {}
            }
        }
        node.pid.is_some_and(|pid| process_is_ours(pid, &root))
    }

    /// Whether any of its processes runs or any of its namespaces exists.
    pub(crate) fn anything_left(&mut self) -> bool {
        let namespaces = netns::namespaces();
        self.ids().into_iter().any(|id| {
            self.alive(id)
                || self
                    .node(id)
                    .and_then(|n| n.netns.as_ref())
                    .is_some_and(|ns| namespaces.contains(ns))
        })
    }

    /// Sends `signal` (`KILL`, `TERM`, `STOP`, `CONT`, ...) to node `id`'s process.
    pub(crate) fn signal(&mut self, id: u32, signal: &str) -> crate::Result<u32> {
        if !self.alive(id) {
            return Err(format!("node {id} is not running"));
        }
        let pid = self
            .node(id)
            .and_then(|n| n.pid)
            .ok_or_else(|| format!("node {id} has no process"))?;
        send_signal(pid, signal)?;
        Ok(pid)
    }

    /// Waits until node `id`'s process has exited; `false` if it still runs after `timeout`.
    pub(crate) fn wait_gone(&mut self, id: u32, timeout: Duration) -> bool {
        let start = Instant::now();
        while self.alive(id) {
            if start.elapsed() > timeout {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        true
    }

    /// Asks node `id` for its status.
    pub(crate) fn query(&mut self, id: u32) -> NodeStatus {
        if !self.alive(id) {
            return NodeStatus::Down;
        }
        match query_socket(&self.socket(id), "status", QUERY_TIMEOUT) {
            Ok(answer) => {
                let line = answer.lines().next().unwrap_or("").to_owned();
                let operational = answer
                    .lines()
                    .find_map(|l| l.strip_prefix("state: "))
                    .is_none_or(|state| state.trim().eq_ignore_ascii_case("operational"));
                match Ring::parse_status(id, &line) {
                    Some(ring) => NodeStatus::Up {
                        line,
                        ring,
                        operational,
                    },
                    None => NodeStatus::Unreachable,
                }
            }
            Err(_) => NodeStatus::Unreachable,
        }
    }

    /// Every node's status, in id order.
    pub(crate) fn statuses(&mut self) -> Vec<(u32, NodeStatus)> {
        self.ids()
            .into_iter()
            .map(|id| (id, self.query(id)))
            .collect()
    }

    /// Waits until each of `groups` is one ring of exactly its members (every member
    /// reports the same ring id and that member list), polling every `poll`. Nodes in no
    /// group are not looked at. Returns each group's ring.
    ///
    /// # Errors
    /// Not so after `timeout`: the expectation and the last status of each node concerned.
    pub(crate) fn wait_rings(
        &mut self,
        groups: &[&[u32]],
        timeout: Duration,
        poll: Duration,
    ) -> Result<Vec<Ring>, WaitError> {
        let start = Instant::now();
        loop {
            let mut rings = Vec::new();
            let mut last = Vec::new();
            for group in groups {
                let mut expect: Vec<u32> = group.to_vec();
                expect.sort_unstable();
                let mut agreed: Option<Ring> = None;
                let mut ok = true;
                for &id in &expect {
                    let status = self.query(id);
                    if status == NodeStatus::Down {
                        // It will not come back by itself: say why now rather than at the
                        // deadline.
                        let exit = self
                            .node(id)
                            .and_then(|n| n.exit)
                            .map_or_else(String::new, |s| format!(" ({s})"));
                        return Err(format!(
                            "node {id} is down{exit}; the end of {}:\n{}",
                            self.log_path(id).display(),
                            indent(&log_tail(self, id, 8))
                        ));
                    }
                    last.push(status.line(id));
                    // Only an OPERATIONAL node's first line is a ring it is in: while a new
                    // ring forms (COMMIT, RECOVERY) totemd shows the new ring id beside the
                    // old member list.
                    match &status {
                        NodeStatus::Up {
                            ring: r,
                            operational: true,
                            ..
                        } if r.members == expect && agreed.as_ref().is_none_or(|a| a == r) => {
                            agreed = Some(r.clone());
                        }
                        _ => ok = false,
                    }
                }
                match agreed {
                    Some(ring) if ok => rings.push(ring),
                    _ => {}
                }
            }
            if rings.len() == groups.len() {
                return Ok(rings);
            }
            if start.elapsed() > timeout {
                let want: Vec<String> = groups.iter().map(|g| id_list(g)).collect();
                return Err(format!(
                    "no ring of {{{}}} within {:.0} s; last status:\n    {}",
                    want.join("} and {"),
                    timeout.as_secs_f64(),
                    last.join("\n    ")
                ));
            }
            std::thread::sleep(poll);
        }
    }

    /// Cuts the cluster in two: every node of `a` drops what comes from `b` and the other
    /// way round (an nft table in each node's namespace). Replaces any earlier partition.
    pub(crate) fn set_partition(&mut self, a: &[u32], b: &[u32]) -> crate::Result {
        self.need_netns("partition")?;
        self.heal()?;
        for (side, other) in [(a, b), (b, a)] {
            let from: Vec<Ipv4Addr> = other
                .iter()
                .filter_map(|id| self.node(*id).map(|n| n.addr))
                .collect();
            let rule = netns::drop_from_rule(&from);
            for id in side {
                netns::set_input_rule(&self.layout.netns(*id), netns::PARTITION_TABLE, &rule)?;
            }
        }
        self.partition = Some([a.to_vec(), b.to_vec()]);
        self.save()
    }

    /// Removes the partition tables; whether there was a partition.
    pub(crate) fn heal(&mut self) -> crate::Result<bool> {
        self.need_netns("heal")?;
        let mut removed = false;
        for id in self.ids() {
            removed |= netns::del_table(&self.layout.netns(id), netns::PARTITION_TABLE);
        }
        let had = self.partition.take().is_some();
        self.save()?;
        Ok(had || removed)
    }

    /// Drops `percent` % of node `id`'s incoming datagrams (0: none, table removed).
    pub(crate) fn set_loss(&mut self, id: u32, percent: u8) -> crate::Result {
        self.need_netns("loss")?;
        let ns = self.layout.netns(id);
        if percent == 0 {
            netns::del_table(&ns, netns::LOSS_TABLE);
            self.loss.remove(&id);
        } else {
            netns::set_input_rule(&ns, netns::LOSS_TABLE, &netns::loss_rule(percent))?;
            self.loss.insert(id, percent);
        }
        self.save()
    }

    fn need_netns(&self, what: &str) -> crate::Result {
        if self.netns {
            Ok(())
        } else {
            Err(format!(
                "{what} needs a cluster in network namespaces (`cluster up --netns`, as root): \
                 faults are nftables rules inside each node's namespace, and this cluster runs \
                 on 127.0.0.x"
            ))
        }
    }

    /// Ends every process of the cluster (SIGTERM, SIGKILL after [`GRACE`]), removes its
    /// nft tables, namespaces and bridge and the state file, then sweeps what the naming
    /// convention says could be left over. Never fails: what could not be removed is in the
    /// report.
    pub(crate) fn down(&mut self) -> Report {
        let mut report = Report::default();
        let mut pids = Vec::new();
        for id in self.ids() {
            if self.alive(id) {
                pids.extend(self.node(id).and_then(|n| n.pid));
            }
        }
        stop_processes(&pids, &self.layout.root(), &mut report);
        for id in self.ids() {
            // Reap what this invocation started, so nothing stays a zombie.
            self.alive(id);
        }
        if self.netns {
            for id in self.ids() {
                let ns = self.layout.netns(id);
                for table in [netns::PARTITION_TABLE, netns::LOSS_TABLE] {
                    if netns::namespaces().contains(&ns) && netns::del_table(&ns, table) {
                        report.tables += 1;
                    }
                }
            }
        }
        self.partition = None;
        self.loss.clear();
        sweep(self.layout, &mut report);
        report
    }

    /// Writes `cluster.json`.
    pub(crate) fn save(&self) -> crate::Result {
        let nodes = self
            .nodes
            .iter()
            .map(|n| {
                Json::object([
                    ("id", Json::Int(n.id.into())),
                    ("addr", Json::Str(n.addr.to_string())),
                    ("netns", n.netns.clone().map_or(Json::Null, Json::Str)),
                    ("dir", Json::Str(self.node_dir(n.id).display().to_string())),
                    ("socket", Json::Str(self.socket(n.id).display().to_string())),
                    ("program", Json::Str(n.program.name().into())),
                    ("pid", n.pid.map_or(Json::Null, |p| Json::Int(p.into()))),
                    (
                        "loss_percent",
                        Json::Int(self.loss.get(&n.id).copied().unwrap_or(0).into()),
                    ),
                ])
            })
            .collect();
        let ids = |g: &[u32]| Json::Array(g.iter().map(|&i| Json::Int(i.into())).collect());
        let state = Json::object([
            ("tool", Json::Str(self.layout.tool.into())),
            (
                "mode",
                Json::Str(if self.netns { "netns" } else { "loopback" }.into()),
            ),
            ("transport", Json::Str(self.transport.to_string())),
            (
                "token_ms",
                self.token.map_or(Json::Null, |t| Json::Int(t.into())),
            ),
            ("port", Json::Int(self.layout.port.into())),
            ("cluster_name", Json::Str(self.layout.cluster_name.into())),
            (
                "bridge",
                if self.bridge {
                    Json::Str(self.layout.bridge.into())
                } else {
                    Json::Null
                },
            ),
            ("detached", Json::Bool(self.detach)),
            (
                "partition",
                self.partition
                    .as_ref()
                    .map_or(Json::Null, |[a, b]| Json::Array(vec![ids(a), ids(b)])),
            ),
            ("nodes", Json::Array(nodes)),
        ]);
        let path = self.layout.state_file();
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        let tmp = path.with_extension("json.tmp");
        fs::write(&tmp, format!("{state:#}\n"))
            .and_then(|()| fs::rename(&tmp, &path))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
    }

    /// Reads `cluster.json`; `Ok(None)` when there is none.
    pub(crate) fn load(layout: &'static Layout) -> crate::Result<Option<Self>> {
        let path = layout.state_file();
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        let bad = |what: &str| {
            format!(
                "{}: {what} (remove it, or run `cargo xtask {} down`)",
                path.display(),
                layout.tool
            )
        };
        let state = Json::parse(&text).map_err(|e| bad(&e))?;
        let netns = match state.get("mode").as_str() {
            Some("netns") => true,
            Some("loopback") => false,
            _ => return Err(bad("no valid `mode`")),
        };
        let transport = state
            .get("transport")
            .as_str()
            .and_then(Transport::parse)
            .ok_or_else(|| bad("no valid `transport`"))?;
        let token = state
            .get("token_ms")
            .as_int()
            .and_then(|t| u32::try_from(t).ok());
        let mut cluster = Self::new(layout, netns, transport, token, 0);
        cluster.detach = state.get("detached") == &Json::Bool(true);
        cluster.bridge = state.get("bridge").as_str().is_some();
        let u32_of = |v: &Json| v.as_int().and_then(|n| u32::try_from(n).ok());
        for n in state.get("nodes").as_array() {
            let id = u32_of(n.get("id")).ok_or_else(|| bad("a node without `id`"))?;
            let addr = n
                .get("addr")
                .as_str()
                .and_then(|a| a.parse().ok())
                .ok_or_else(|| bad("a node without `addr`"))?;
            let program = match n.get("program").as_str() {
                Some("corosync") => Program::Corosync,
                _ => Program::Totemd,
            };
            if let Some(loss) = n
                .get("loss_percent")
                .as_int()
                .and_then(|l| u8::try_from(l).ok())
                && loss > 0
            {
                cluster.loss.insert(id, loss);
            }
            cluster.nodes.push(Node {
                id,
                addr,
                netns: n.get("netns").as_str().map(str::to_owned),
                program,
                pid: u32_of(n.get("pid")),
                child: None,
                exit: None,
            });
        }
        if let [a, b] = state.get("partition").as_array() {
            let ids = |g: &Json| g.as_array().iter().filter_map(u32_of).collect::<Vec<_>>();
            cluster.partition = Some([ids(a), ids(b)]);
        }
        Ok(Some(cluster))
    }
}

/// Node `id`'s ring address.
fn node_addr(layout: &Layout, netns: bool, id: u32) -> Ipv4Addr {
    // `id` ≤ MAX_NODES, so it fits the last octet.
    let last = u8::try_from(id).unwrap_or(u8::MAX);
    if netns {
        Ipv4Addr::new(10, 213, layout.subnet, last)
    } else {
        Ipv4Addr::new(127, 0, 0, last)
    }
}

/// The multicast group of a layout's `udp` clusters.
pub(crate) fn mcast_group(layout: &Layout) -> Ipv4Addr {
    Ipv4Addr::new(239, 213, layout.subnet, 1)
}

/// Sends `request` on a daemon's control socket and returns the whole answer.
pub(crate) fn query_socket(
    socket: &Path,
    request: &str,
    timeout: Duration,
) -> std::io::Result<String> {
    // The daemon's control service travels over its shared-memory IPC (a session hello,
    // then text requests): `totemctl` speaks it, and xtask stays free of dependencies.
    let totemctl = crate::cmd::root_path("target/release/totemctl");
    let mut child = Command::new(&totemctl)
        .arg("-s")
        .arg(socket)
        .arg(request)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            let mut out = String::new();
            if let Some(mut o) = child.stdout.take() {
                o.read_to_string(&mut out)?;
            }
            if status.success() {
                return Ok(out);
            }
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                e.read_to_string(&mut err)?;
            }
            return Err(std::io::Error::other(format!(
                "totemctl {request}: {}",
                err.trim()
            )));
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "totemctl did not answer",
            ));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Sends `signal` to `pid` through the shell's `kill` builtin (a fresh Debian has no
/// procps, and std has no `kill(2)`).
pub(crate) fn send_signal(pid: u32, signal: &str) -> crate::Result {
    send_signal_to(&pid.to_string(), signal)
}

/// `kill -s <signal> -- <target>` (a PID, or `-<pgid>` for a process group).
fn send_signal_to(target: &str, signal: &str) -> crate::Result {
    let status = Command::new("sh")
        .args(["-c", "kill -s \"$0\" -- \"$1\"", signal, target])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run sh to send SIG{signal}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("cannot send SIG{signal} to {target}"))
    }
}

/// Sends `signal` to every process of group `pgid` (a group this process created).
pub(crate) fn send_signal_group(pgid: u32, signal: &str) -> crate::Result {
    send_signal_to(&format!("-{pgid}"), signal)
}

/// Whether `pid` is a live (not zombie) process whose command line names a file under
/// `root`: the check that keeps a recycled PID from being signalled.
pub(crate) fn process_is_ours(pid: u32, root: &Path) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // `pid (comm) S ...`: the state follows the last `)` (comm may hold spaces or parens).
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next());
    if matches!(state, Some('Z' | 'X') | None) {
        return false;
    }
    cmdline(pid).is_some_and(|args| names_file_under(&args, root))
}

/// A process's arguments.
fn cmdline(pid: u32) -> Option<Vec<String>> {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(
        raw.split(|&b| b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect(),
    )
}

/// Whether one of `args` is a path under `root` (a node's config file).
fn names_file_under(args: &[String], root: &Path) -> bool {
    let prefix = format!("{}/", root.display());
    args.iter().any(|a| a.starts_with(&prefix))
}

/// PIDs of daemons (totemd, corosync, or `ip netns exec` about to become one) whose command
/// line names a file under `root`, found by scanning /proc: leftovers of a run whose state
/// was lost.
fn stray_processes(root: &Path) -> Vec<u32> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let me = std::process::id();
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me)
        .filter(|&pid| {
            cmdline(pid).is_some_and(|args| {
                let exe = args
                    .first()
                    .map_or("", |a| a.rsplit('/').next().unwrap_or(a));
                matches!(
                    exe,
                    "totemd" | "corosync" | "totem-appliance" | "cpg_demo" | "ip"
                ) && names_file_under(&args, root)
            }) && process_is_ours(pid, root)
        })
        .collect()
}

/// What teardown did.
#[derive(Debug, Default)]
pub(crate) struct Report {
    /// Processes that exited after SIGTERM.
    pub(crate) terminated: usize,
    /// Processes that needed SIGKILL.
    pub(crate) killed: usize,
    pub(crate) namespaces: usize,
    pub(crate) links: usize,
    pub(crate) tables: usize,
    /// What could not be removed.
    pub(crate) errors: Vec<String>,
}

impl Report {
    pub(crate) fn nothing(&self) -> bool {
        self.terminated + self.killed + self.namespaces + self.links + self.tables == 0
            && self.errors.is_empty()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.nothing() {
            return f.write_str("nothing to clean up");
        }
        let mut parts = Vec::new();
        if self.terminated + self.killed > 0 {
            parts.push(format!(
                "stopped {} process(es) ({} on SIGTERM, {} by SIGKILL)",
                self.terminated + self.killed,
                self.terminated,
                self.killed
            ));
        }
        if self.tables > 0 {
            parts.push(format!("removed {} nft table(s)", self.tables));
        }
        if self.namespaces > 0 {
            parts.push(format!("removed {} namespace(s)", self.namespaces));
        }
        if self.links > 0 {
            parts.push(format!("removed {} link(s)", self.links));
        }
        f.write_str(&parts.join(", "))?;
        for e in &self.errors {
            write!(f, "\n  could not clean up: {e}")?;
        }
        Ok(())
    }
}

/// SIGTERM (and SIGCONT, so a paused process can act on it) to each of `pids`; SIGKILL to
/// those still there after [`GRACE`].
fn stop_processes(pids: &[u32], root: &Path, report: &mut Report) {
    let live: Vec<u32> = pids
        .iter()
        .copied()
        .filter(|&p| process_is_ours(p, root))
        .collect();
    for &pid in &live {
        let _ = send_signal(pid, "TERM");
        let _ = send_signal(pid, "CONT");
    }
    let start = Instant::now();
    while live.iter().any(|&p| process_is_ours(p, root)) && start.elapsed() < GRACE {
        std::thread::sleep(Duration::from_millis(20));
    }
    for &pid in &live {
        if process_is_ours(pid, root) {
            let _ = send_signal(pid, "KILL");
            report.killed += 1;
        } else {
            report.terminated += 1;
        }
    }
    let start = Instant::now();
    while live.iter().any(|&p| process_is_ours(p, root)) && start.elapsed() < GRACE {
        std::thread::sleep(Duration::from_millis(20));
    }
    for &pid in &live {
        if process_is_ours(pid, root) {
            report.errors.push(format!("pid {pid} survives SIGKILL"));
        }
    }
}

/// Removes everything of `layout` that its naming convention identifies: stray daemons,
/// namespaces `<prefix><id>`, the bridge and veths, the state file and control sockets.
pub(crate) fn sweep(layout: &Layout, report: &mut Report) {
    let root = layout.root();
    stop_processes(&stray_processes(&root), &root, report);
    let root_user = netns::is_root();
    for ns in netns::namespaces() {
        if layout.is_our_netns(&ns) {
            if !root_user {
                report
                    .errors
                    .push(format!("namespace {ns} (removing it needs root)"));
                continue;
            }
            match netns::del_namespace(&ns) {
                Ok(()) => report.namespaces += 1,
                Err(e) => report.errors.push(e),
            }
        }
    }
    for link in netns::links() {
        if layout.is_our_link(&link) {
            if !root_user {
                report
                    .errors
                    .push(format!("link {link} (removing it needs root)"));
                continue;
            }
            // A veth may already be gone with its namespace's end.
            match netns::del_link(&link) {
                Ok(()) => report.links += 1,
                Err(e) if netns::links().contains(&link) => report.errors.push(e),
                Err(_) => {}
            }
        }
    }
    let _ = fs::remove_file(layout.state_file());
    if let Ok(dir) = fs::read_dir(&root) {
        for entry in dir.flatten() {
            let _ = fs::remove_file(entry.path().join("totemd.sock"));
        }
    }
}

/// Tears down whatever `layout` has running: the recorded cluster if any, then leftovers.
pub(crate) fn cleanup(layout: &'static Layout) -> Report {
    match Cluster::load(layout) {
        Ok(Some(mut cluster)) => cluster.down(),
        Ok(None) => {
            let mut report = Report::default();
            sweep(layout, &mut report);
            report
        }
        Err(e) => {
            let mut report = Report::default();
            report.errors.push(e);
            sweep(layout, &mut report);
            report
        }
    }
}

/// `text` with every line indented by four spaces.
pub(crate) fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The last `lines` lines of node `id`'s log, for failure messages.
pub(crate) fn log_tail(cluster: &Cluster, id: u32, lines: usize) -> String {
    let text = fs::read_to_string(cluster.log_path(id)).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A `--totem KEY=VALUE` argument of `cmd`, as `(KEY, VALUE)` for [`Cluster::totem_extra`].
pub(crate) fn totem_option(cmd: &str, v: &str) -> Result<(String, String), String> {
    v.split_once('=')
        .filter(|(k, val)| !k.is_empty() && !val.is_empty())
        .map(|(k, val)| (k.to_owned(), val.to_owned()))
        .ok_or_else(|| format!("{cmd}: --totem wants KEY=VALUE, got `{v}`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_lines() {
        let ring = Ring::parse_status(2, "node 2: ring 1.12 members 3,1,2").unwrap();
        assert_eq!(
            (ring.rep, ring.seq, ring.members.clone()),
            (1, 12, vec![1, 2, 3])
        );
        assert_eq!(ring.to_string(), "1.12");
        assert_eq!(Ring::parse_status(1, "node 2: ring 1.12 members 1"), None);
        assert_eq!(Ring::parse_status(1, "node 1: ring 1 members 1"), None);
        assert_eq!(Ring::parse_status(1, "node 1: ring 1.x members 1"), None);
    }

    #[test]
    fn names_stay_within_linux_limits_and_apart() {
        for layout in LAYOUTS {
            // IFNAMSIZ is 16 with the terminating NUL.
            assert!(layout.veth(MAX_NODES).len() <= 15, "{}", layout.tool);
            assert!(layout.bridge.len() <= 15, "{}", layout.tool);
            for other in LAYOUTS {
                if !core::ptr::eq(*layout, *other) {
                    assert!(!layout.is_our_netns(&other.netns(1)));
                    assert!(!layout.is_our_link(other.bridge));
                    assert!(!layout.is_our_link(&other.veth(1)));
                    assert_ne!(layout.port, other.port);
                    assert_ne!(layout.subnet, other.subnet);
                }
            }
            assert!(!layout.is_our_netns("totem-udp-1"));
        }
        assert!(CLUSTER.is_our_netns("totem-n12"));
        assert!(!CLUSTER.is_our_netns("totem-n"));
    }

    #[test]
    fn configs_name_every_node_and_the_group() {
        let c = Cluster::new(&E2E, true, Transport::Udp, Some(1000), 3);
        let conf = c.totem_conf(2);
        for want in [
            "transport: udp",
            "token: 1000",
            "mcastaddr: 239.213.1.1",
            "mcastport: 5435",
            "ring0_addr: 10.213.1.3",
            "nodeid: 3",
        ] {
            assert!(conf.contains(want), "{want} in\n{conf}");
        }
        let c = Cluster::new(&CLUSTER, false, Transport::Udpu, None, 2);
        let conf = c.totem_conf(1);
        assert!(conf.contains("ring0_addr: 127.0.0.2") && !conf.contains("token:"));
        assert!(!conf.contains("mcastaddr"));
    }
}
