//! totemd's configuration: a corosync.conf-style file (`totem {}`, `nodelist {}`,
//! `quorum {}`, `logging {}`, `system {}`) read into typed settings.
//!
//! `uidgid { uid: N  gid: N }` sections (several allowed) say who besides root and the
//! daemon's own user may use the IPC socket, as corosync's; `access: read` in a section is
//! our extension for read-only access (see [`UidGid`]).
//!
//! Rules (corosync 3's where it has them): unknown keys are warned about, never fatal; a
//! wrong value is an error naming the file, the line and the reason; `transport: knet` (the
//! default) runs as udpu with a warning until redundant links exist; any crypto other than
//! `none` is refused until encryption exists — never silently plaintext. Every accepted item
//! is also kept as a flat `section.key` list under corosync's cmap names
//! (`totem.token`, `nodelist.node.0.ring0_addr`), ready for the cmap database.

mod parse;

use alloc::collections::BTreeSet;
use alloc::fmt;
use core::net::{IpAddr, SocketAddr};
use std::net::ToSocketAddrs;
use std::path::{Path, PathBuf};

use totem_proto::NodeId;
use totem_proto::time::Duration;

pub use parse::{Item, Section, SyntaxError, parse};

/// Where totemd looks when `-f` is not given.
pub const DEFAULT_PATH: &str = "/etc/totem/totem.conf";

/// corosync's `mcastport` default.
pub const DEFAULT_PORT: u16 = 5405;

/// A configuration error: file, line (0 when the whole file is concerned) and reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file.
    pub file: PathBuf,
    /// 1-based line, 0 if not about one line.
    pub line: u32,
    /// What is wrong, and how to fix it where that is not obvious.
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.reason)
        } else {
            write!(f, "{}:{}: {}", self.file.display(), self.line, self.reason)
        }
    }
}

impl core::error::Error for ConfigError {}

/// The ring transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    /// UDP multicast (`udp`).
    Udp,
    /// UDP unicast to every node (`udpu`).
    Udpu,
    /// InfiniBand verbs (`ib`).
    Ib,
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Udp => "udp",
            Self::Udpu => "udpu",
            Self::Ib => "ib",
        })
    }
}

/// One `nodelist { node { } }` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeEntry {
    /// `nodeid`.
    pub id: NodeId,
    /// `ring0_addr`, resolved.
    pub addr: IpAddr,
    /// `name`, if given.
    pub name: Option<String>,
    /// `ib_addr` (transport ib): the node's InfiniBand address as it prints it at start-up,
    /// `<gid>/lid <n>/qpn <n>`. Optional: peers are also learned from their traffic.
    pub ib_addr: Option<transport_ib::IbAddr>,
    /// Line of the `node {`.
    pub line: u32,
}

/// The `totem { interface { } }` settings of link 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// `mcastaddr` (udp only; derived from the cluster name when absent).
    pub mcastaddr: Option<IpAddr>,
    /// `mcastport`.
    pub mcastport: u16,
    /// `ttl` (udp only).
    pub ttl: u32,
    /// `bindnetaddr`, if given (informational: the node's own ring0_addr is bound).
    pub bindnetaddr: Option<IpAddr>,
}

/// Experimental fault injection on the ring's transport (`totem { fault_injection { } }`):
/// for experiments only, off by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FaultInjection {
    /// Receive-side drop probability, parts per million.
    pub drop_ppm: u32,
    /// Receive-side duplication probability, parts per million.
    pub duplicate_ppm: u32,
    /// Receive-side delay.
    pub delay: Duration,
    /// Receive-side jitter added to the delay.
    pub jitter: Duration,
}

/// `logging {}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logging {
    /// `to_stderr` (default yes).
    pub to_stderr: bool,
    /// `to_logfile` (default no).
    pub to_logfile: bool,
    /// `logfile`.
    pub logfile: Option<PathBuf>,
    /// `debug`: off, on or trace.
    pub debug: DebugLevel,
    /// `timestamp`: on/hires (default) or off.
    pub timestamp: bool,
}

/// `logging { debug: }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DebugLevel {
    /// Info and above.
    Off,
    /// Debug and above.
    On,
    /// Everything.
    Trace,
}

/// What a `uidgid { }` section grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Everything (corosync's only kind): `access: full`, the default.
    Full,
    /// Read-only (`access: read`, our extension): status and listings, no changes.
    Read,
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Full => "full",
            Self::Read => "read",
        })
    }
}

/// One `uidgid { }` section: a user and/or a group allowed to connect to the IPC socket.
///
/// ```text
/// uidgid {
///     uid: 1000          # a number, or a name from /etc/passwd (corosync takes names)
///     gid: haclient      # a number, or a name from /etc/group
///     access: read       # our extension: read or full (default full)
/// }
/// ```
/// Root (uid 0 or gid 0) and the daemon's own uid always have full access. A peer gets the
/// union of what its uid and its gid are granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UidGid {
    /// The user granted, if any.
    pub uid: Option<u32>,
    /// The group granted, if any.
    pub gid: Option<u32>,
    /// What they may do.
    pub access: Access,
    /// Line of the `uidgid {`.
    pub line: u32,
}

/// The whole configuration.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// The file it came from.
    pub path: PathBuf,
    /// `totem.cluster_name`.
    pub cluster_name: String,
    /// Cluster id written in every frame: a hash of the cluster name (corosync derives its
    /// multicast address from the name the same way), or `totem.cluster_id`.
    pub cluster_id: u32,
    /// The transport.
    pub transport: TransportKind,
    /// `totem.netmtu` (default 1500).
    pub netmtu: usize,
    /// Ring options (the node id is filled in once the local node is known).
    pub ring: totem_ring::Config,
    /// Link 0.
    pub interface: Interface,
    /// Nodes, in file order.
    pub nodes: Vec<NodeEntry>,
    /// `totem.ib_device`, `ib_port`, `ib_gid_index` (transport ib).
    pub ib: transport_ib::IbOptions,
    /// `totem.block_unlisted_ips` (default yes).
    pub block_unlisted_ips: bool,
    /// Fault injection (experiments only).
    pub fault: FaultInjection,
    /// `logging {}`.
    pub logging: Logging,
    /// `system.state_dir` (default `/var/lib/totem`).
    pub state_dir: PathBuf,
    /// `uidgid { }` sections, in file order.
    pub uidgid: Vec<UidGid>,
    /// Every accepted item under its cmap key, in file order: (key, value, line).
    pub flat: Vec<(String, String, u32)>,
    /// Warnings (unknown keys, knet downgraded to udpu, ...), each with its line.
    pub warnings: Vec<(u32, String)>,
}

impl DaemonConfig {
    /// Reads and checks the file at `path`.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the file, the line and the reason.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read(path).map_err(|e| ConfigError {
            file: path.to_owned(),
            line: 0,
            reason: format!("cannot read: {e}"),
        })?;
        let text = String::from_utf8(text).map_err(|_| ConfigError {
            file: path.to_owned(),
            line: 0,
            reason: "not UTF-8 text".into(),
        })?;
        Self::from_str(path, &text)
    }

    /// Checks configuration text as if read from `path`.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the file, the line and the reason.
    pub fn from_str(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let top = parse(text).map_err(|e| ConfigError {
            file: path.to_owned(),
            line: e.line,
            reason: e.reason,
        })?;
        Builder::new(path).build(&top)
    }

    /// The entry of node `id`.
    pub fn node(&self, id: NodeId) -> Option<&NodeEntry> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// The address and port node `id` uses on the ring.
    pub fn ring_addr(&self, id: NodeId) -> Option<SocketAddr> {
        self.node(id)
            .map(|n| SocketAddr::new(n.addr, self.interface.mcastport))
    }

    /// Which node this is: `explicit` if given, else the one node whose address is local
    /// (it can be bound).
    ///
    /// # Errors
    /// When none or several nodelist addresses are local, or `explicit` is not listed.
    pub fn local_node(&self, explicit: Option<NodeId>) -> Result<NodeId, ConfigError> {
        let err = |reason: String| ConfigError {
            file: self.path.clone(),
            line: 0,
            reason,
        };
        if let Some(id) = explicit {
            return match self.node(id) {
                Some(_) => Ok(id),
                None => Err(err(format!(
                    "node {id} (from the command line) is not in the nodelist"
                ))),
            };
        }
        let local: Vec<NodeId> = self
            .nodes
            .iter()
            .filter(|n| std::net::UdpSocket::bind(SocketAddr::new(n.addr, 0)).is_ok())
            .map(|n| n.id)
            .collect();
        match local.as_slice() {
            [one] => Ok(*one),
            [] => Err(err("no nodelist address is local to this host (\"No valid name found for local host\"); pass --nodeid".into())),
            many => Err(err(format!(
                "{} nodelist addresses are local to this host (nodes {}); pass --nodeid to choose",
                many.len(),
                many.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
            ))),
        }
    }
}

/// Builds a [`DaemonConfig`] from the parsed tree, collecting warnings.
struct Builder {
    path: PathBuf,
    warnings: Vec<(u32, String)>,
    flat: Vec<(String, String, u32)>,
}

/// The largest CPG payload totemd carries: 1 MiB, as corosync's `cpg_max_atomic_msgsize`
/// is about (corosync fragments above its IPC buffer; totem carries it whole).
pub const CPG_MAX_PAYLOAD: usize = 1 << 20;

/// Keys of `totem {}` this build knows (corosync 3's plus ours), beyond the ring timers.
const TOTEM_KEYS: &[&str] = &[
    "version",
    "cluster_name",
    "cluster_id",
    "transport",
    "token",
    "token_coefficient",
    "token_retransmits_before_loss_const",
    "token_retransmit",
    "hold",
    "join",
    "send_join",
    "consensus",
    "merge",
    "downcheck",
    "fail_recv_const",
    "seqno_unchanged_const",
    "window_size",
    "max_messages",
    "miss_count_const",
    "cancel_token_hold_on_retransmit",
    "netmtu",
    "ib_device",
    "ib_port",
    "ib_gid_index",
    "adaptive_token_retransmit",
    "crypto_cipher",
    "crypto_hash",
    "crypto_model",
    "secauth",
    "keyfile",
    "key",
    "ip_version",
    "block_unlisted_ips",
    "accelerated",
    "token_warning",
    "max_network_delay",
    "heartbeat_failures_allowed",
    "clear_node_high_bit",
    "config_version",
    "link_mode",
    "knet_mtu",
    "knet_pmtud_interval",
    "knet_compression_model",
    "knet_compression_threshold",
    "knet_compression_level",
    "ip_dscp",
    "nodeid",
];

/// Keys corosync 3 removed: accepted with a warning that they do nothing.
const REMOVED_KEYS: &[&str] = &[
    "threads",
    "rrp_mode",
    "vsftype",
    "rrp_problem_count_timeout",
];

impl Builder {
    fn new(path: &Path) -> Self {
        Self {
            path: path.to_owned(),
            warnings: Vec::new(),
            flat: Vec::new(),
        }
    }

    fn err(&self, line: u32, reason: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.path.clone(),
            line,
            reason: reason.into(),
        }
    }

    fn warn(&mut self, line: u32, what: impl Into<String>) {
        self.warnings.push((line, what.into()));
    }

    fn build(mut self, top: &Section) -> Result<DaemonConfig, ConfigError> {
        for item in &top.items {
            match item {
                Item::Pair { key, line, .. } => {
                    self.warn(
                        *line,
                        format!("top-level key '{key}' outside any section is ignored"),
                    );
                }
                Item::Section(s) => match s.name.as_str() {
                    "totem" | "nodelist" | "quorum" | "logging" | "system" | "uidgid"
                    | "resources" | "nozzle" => {}
                    other => self.warn(s.line, format!("unknown section '{other}' is ignored")),
                },
            }
        }
        let totem = self
            .one_section(top, "totem")?
            .ok_or_else(|| self.err(0, "no totem { } section"))?;
        let nodes = self.nodelist(top)?;
        let (logging, state_dir) = self.logging_and_system(top)?;
        for s in top.sections("quorum") {
            self.flatten("quorum", s);
        }
        let uidgid = self.uidgid(top)?;
        let mut cfg = self.totem(totem, nodes, logging, state_dir)?;
        cfg.uidgid = uidgid;
        cfg.flat = core::mem::take(&mut self.flat);
        cfg.warnings = core::mem::take(&mut self.warnings);
        Ok(cfg)
    }

    /// At most one section called `name`.
    fn one_section<'a>(
        &self,
        top: &'a Section,
        name: &'a str,
    ) -> Result<Option<&'a Section>, ConfigError> {
        let mut it = top.sections(name);
        let first = it.next();
        if let Some(second) = it.next() {
            return Err(self.err(
                second.line,
                format!("a second '{name}' section; merge it into the first"),
            ));
        }
        Ok(first)
    }

    /// Records a whole section's pairs under `prefix` for cmap.
    fn flatten(&mut self, prefix: &str, s: &Section) {
        for item in &s.items {
            match item {
                Item::Pair { key, value, line } => {
                    self.flat
                        .push((format!("{prefix}.{key}"), value.clone(), *line))
                }
                Item::Section(sub) => {
                    let p = format!("{prefix}.{}", sub.name);
                    self.flatten(&p, sub);
                }
            }
        }
    }

    fn nodelist(&mut self, top: &Section) -> Result<Vec<NodeEntry>, ConfigError> {
        let Some(list) = self.one_section(top, "nodelist")? else {
            return Err(self.err(
                0,
                "no nodelist { } section: list every node with ring0_addr and nodeid",
            ));
        };
        let mut nodes: Vec<NodeEntry> = Vec::new();
        let mut seen_addr = BTreeSet::new();
        for (i, node) in list.sections("node").enumerate() {
            let (mut id, mut addr, mut name, mut ib_addr) = (None, None, None, None);
            for (key, value, line) in node.pairs() {
                self.flat
                    .push((format!("nodelist.node.{i}.{key}"), value.to_owned(), line));
                match key {
                    "nodeid" => {
                        let n: u32 = value.parse().map_err(|_| {
                            self.err(
                                line,
                                format!(
                                    "nodeid must be a number from 1 to 4294967295, not {value:?}"
                                ),
                            )
                        })?;
                        if n == 0 {
                            return Err(self.err(line, "nodeid 0 is reserved"));
                        }
                        id = Some((NodeId(n), line));
                    }
                    "ring0_addr" => {
                        addr = Some((resolve(value).map_err(|r| self.err(line, r))?, line))
                    }
                    "name" => name = Some(value.to_owned()),
                    "ib_addr" => {
                        ib_addr = Some(transport_ib::parse_ib_addr(value).ok_or_else(|| {
                            self.err(
                                line,
                                format!(
                                    "ib_addr {value:?} is not an InfiniBand address \
                                     (<gid as 8 groups of 4 hex digits>/lid <n>/qpn <n>)"
                                ),
                            )
                        })?)
                    }
                    k if k.starts_with("ring") && k.ends_with("_addr") => {
                        self.warn(line, format!("{k}: only link 0 is supported yet; ignored"));
                    }
                    other => self.warn(
                        line,
                        format!("unknown key nodelist.node.{other} is ignored"),
                    ),
                }
            }
            let (id, id_line) = id.ok_or_else(|| self.err(node.line, "node without nodeid"))?;
            let (addr, addr_line) =
                addr.ok_or_else(|| self.err(node.line, "node without ring0_addr"))?;
            if let Some(other) = nodes.iter().find(|n| n.id == id) {
                return Err(self.err(
                    id_line,
                    format!(
                        "duplicate nodeid {id} (the node at line {} has it too)",
                        other.line
                    ),
                ));
            }
            if !seen_addr.insert(addr) {
                return Err(self.err(addr_line, format!("duplicate ring0_addr {addr}")));
            }
            nodes.push(NodeEntry {
                id,
                addr,
                name,
                ib_addr,
                line: node.line,
            });
        }
        for item in &list.items {
            match item {
                Item::Pair { key, line, .. } => {
                    self.warn(*line, format!("unknown key nodelist.{key} is ignored"))
                }
                Item::Section(s) if s.name != "node" => {
                    self.warn(s.line, format!("unknown section nodelist.{}", s.name))
                }
                Item::Section(_) => {}
            }
        }
        if nodes.is_empty() {
            return Err(self.err(list.line, "the nodelist has no node { } entries"));
        }
        if nodes.len() > totem_proto::MAX_NODES {
            return Err(self.err(
                list.line,
                format!(
                    "{} nodes: at most {} are supported",
                    nodes.len(),
                    totem_proto::MAX_NODES
                ),
            ));
        }
        let v4 = nodes.iter().filter(|n| n.addr.is_ipv4()).count();
        if v4 != 0 && v4 != nodes.len() {
            return Err(self.err(
                list.line,
                "nodes mix IPv4 and IPv6 ring0_addr: use one family per link",
            ));
        }
        Ok(nodes)
    }

    fn logging_and_system(&mut self, top: &Section) -> Result<(Logging, PathBuf), ConfigError> {
        let mut logging = Logging {
            to_stderr: true,
            to_logfile: false,
            logfile: None,
            debug: DebugLevel::Off,
            timestamp: true,
        };
        if let Some(s) = self.one_section(top, "logging")? {
            self.flatten("logging", s);
            for (key, value, line) in s.pairs() {
                match key {
                    "to_stderr" => logging.to_stderr = self.yes_no(line, key, value)?,
                    "to_logfile" => logging.to_logfile = self.yes_no(line, key, value)?,
                    "logfile" => logging.logfile = Some(PathBuf::from(value)),
                    "timestamp" => logging.timestamp = matches!(value, "on" | "hires" | "yes"),
                    "debug" => {
                        logging.debug = match value {
                            "off" => DebugLevel::Off,
                            "on" => DebugLevel::On,
                            "trace" => DebugLevel::Trace,
                            _ => {
                                return Err(self.err(
                                    line,
                                    format!(
                                        "logging.debug must be off, on or trace, not {value:?}"
                                    ),
                                ));
                            }
                        }
                    }
                    "to_syslog" | "syslog_facility" | "syslog_priority" | "logfile_priority"
                    | "fileline" | "function_name" | "blackbox" => {}
                    other => self.warn(line, format!("unknown key logging.{other} is ignored")),
                }
            }
            if logging.to_logfile && logging.logfile.is_none() {
                return Err(self.err(s.line, "to_logfile: yes needs a logfile"));
            }
        }
        let mut state_dir = PathBuf::from("/var/lib/totem");
        if let Some(s) = self.one_section(top, "system")? {
            self.flatten("system", s);
            for (key, value, line) in s.pairs() {
                match key {
                    "state_dir" => state_dir = PathBuf::from(value),
                    "qb_ipc_type"
                    | "sched_rr"
                    | "priority"
                    | "move_to_root_cgroup"
                    | "allow_knet_handle_fallback" => {}
                    other => self.warn(line, format!("unknown key system.{other} is ignored")),
                }
            }
        }
        Ok((logging, state_dir))
    }

    /// Every `uidgid { }` section (corosync `coroparse.c`, `MAIN_CP_CB_DATA_STATE_UIDGID`),
    /// recorded for cmap as corosync does: `uidgid.uid.<uid>` / `uidgid.gid.<gid>`.
    fn uidgid(&mut self, top: &Section) -> Result<Vec<UidGid>, ConfigError> {
        let mut out = Vec::new();
        for s in top.sections("uidgid") {
            let mut grant = UidGid {
                uid: None,
                gid: None,
                access: Access::Full,
                line: s.line,
            };
            for item in &s.items {
                if let Item::Section(sub) = item {
                    self.warn(
                        sub.line,
                        format!("unknown section uidgid.{} is ignored", sub.name),
                    );
                }
            }
            for (key, value, line) in s.pairs() {
                match key {
                    "uid" | "gid" => {
                        let slot = if key == "uid" {
                            &mut grant.uid
                        } else {
                            &mut grant.gid
                        };
                        if slot.is_some() {
                            return Err(self.err(
                                line,
                                format!("a second {key} in one uidgid section: use one section per {key}"),
                            ));
                        }
                        let id = if key == "uid" {
                            user_id(value)
                        } else {
                            group_id(value)
                        }
                        .map_err(|r| self.err(line, r))?;
                        *slot = Some(id);
                    }
                    "access" => {
                        grant.access = match value {
                            "full" | "rw" | "read-write" => Access::Full,
                            "read" | "ro" | "read-only" => Access::Read,
                            _ => {
                                return Err(self.err(
                                    line,
                                    format!("uidgid.access must be read or full, not {value:?}"),
                                ));
                            }
                        };
                    }
                    other => self.warn(line, format!("unknown key uidgid.{other} is ignored")),
                }
            }
            if grant.uid.is_none() && grant.gid.is_none() {
                return Err(self.err(s.line, "uidgid section without uid or gid"));
            }
            for (what, id) in [("uid", grant.uid), ("gid", grant.gid)] {
                if let Some(id) = id {
                    let value = match grant.access {
                        Access::Full => "1".to_owned(),
                        Access::Read => "read".to_owned(),
                    };
                    self.flat
                        .push((format!("uidgid.{what}.{id}"), value, s.line));
                }
            }
            out.push(grant);
        }
        Ok(out)
    }

    fn yes_no(&self, line: u32, key: &str, value: &str) -> Result<bool, ConfigError> {
        match value {
            "yes" | "on" | "true" | "1" => Ok(true),
            "no" | "off" | "false" | "0" => Ok(false),
            _ => Err(self.err(line, format!("{key} must be yes or no, not {value:?}"))),
        }
    }

    fn number(&self, line: u32, key: &str, value: &str) -> Result<u64, ConfigError> {
        value
            .parse()
            .map_err(|_| self.err(line, format!("{key} must be a whole number, not {value:?}")))
    }

    fn millis(&self, line: u32, key: &str, value: &str) -> Result<Duration, ConfigError> {
        Ok(Duration::from_millis(self.number(line, key, value)?))
    }

    fn count(&self, line: u32, key: &str, value: &str) -> Result<u32, ConfigError> {
        let n = self.number(line, key, value)?;
        u32::try_from(n).map_err(|_| self.err(line, format!("{key} is too large: {n}")))
    }

    fn totem(
        &mut self,
        s: &Section,
        nodes: Vec<NodeEntry>,
        logging: Logging,
        state_dir: PathBuf,
    ) -> Result<DaemonConfig, ConfigError> {
        self.flatten("totem", s);
        let mut ring = totem_ring::Config::new(NodeId(1), 0);
        ring.nodelist_len = nodes.len();
        // Room for a CPG payload of exactly 1 MiB with its header and a 128-byte group name.
        ring.max_message_len = CPG_MAX_PAYLOAD + 4096;
        let mut cluster_name = String::new();
        let mut cluster_id = None;
        let mut transport = (TransportKind::Udpu, 0u32, true);
        let mut netmtu = 1500usize;
        let mut block = true;
        let mut ib = transport_ib::IbOptions::default();
        let mut version_seen = false;
        let mut lines = alloc::collections::BTreeMap::new();
        for (key, value, line) in s.pairs() {
            lines.insert(key.to_owned(), line);
            match key {
                "version" => {
                    version_seen = true;
                    if value != "2" {
                        return Err(self.err(
                            line,
                            format!("totem.version must be 2 (corosync's format), not {value:?}"),
                        ));
                    }
                }
                "cluster_name" => cluster_name = value.to_owned(),
                "cluster_id" => cluster_id = Some(self.count(line, key, value)?),
                "transport" => {
                    transport = match value {
                        "udp" => (TransportKind::Udp, line, false),
                        "udpu" => (TransportKind::Udpu, line, false),
                        "ib" | "iba" => (TransportKind::Ib, line, false),
                        "knet" => (TransportKind::Udpu, line, true),
                        _ => {
                            return Err(self.err(
                                line,
                                format!("unknown transport {value:?}: use udp, udpu, knet or ib"),
                            ));
                        }
                    }
                }
                "token" => ring.token = self.millis(line, key, value)?,
                "token_coefficient" => ring.token_coefficient = self.millis(line, key, value)?,
                "token_retransmits_before_loss_const" => {
                    ring.token_retransmits_before_loss_const = self.count(line, key, value)?
                }
                "token_retransmit" => ring.token_retransmit = Some(self.millis(line, key, value)?),
                "hold" => ring.hold = Some(self.millis(line, key, value)?),
                "join" => ring.join = self.millis(line, key, value)?,
                "send_join" => ring.send_join = self.millis(line, key, value)?,
                "consensus" => ring.consensus = Some(self.millis(line, key, value)?),
                "merge" => ring.merge = self.millis(line, key, value)?,
                "downcheck" => ring.downcheck = self.millis(line, key, value)?,
                "fail_recv_const" => ring.fail_recv_const = self.count(line, key, value)?,
                "seqno_unchanged_const" => {
                    ring.seqno_unchanged_const = self.count(line, key, value)?
                }
                "window_size" => ring.window_size = self.count(line, key, value)?,
                "max_messages" => ring.max_messages = self.count(line, key, value)?,
                "miss_count_const" => ring.miss_count_const = self.count(line, key, value)?,
                "cancel_token_hold_on_retransmit" => {
                    ring.cancel_token_hold_on_retransmit = self.yes_no(line, key, value)?
                }
                "accelerated" => ring.accelerated = self.yes_no(line, key, value)?,
                "adaptive_token_retransmit" => {
                    ring.adaptive_token_retransmit = self.yes_no(line, key, value)?
                }
                "netmtu" => {
                    let n = self.number(line, key, value)?;
                    netmtu = usize::try_from(n)
                        .ok()
                        .filter(|n| (576..=65_535).contains(n))
                        .ok_or_else(|| {
                            self.err(line, format!("netmtu must be 576 to 65535, not {n}"))
                        })?;
                }
                "block_unlisted_ips" => block = self.yes_no(line, key, value)?,
                "ib_device" => ib.device = Some(value.to_owned()),
                "ib_port" => {
                    let n = self.number(line, key, value)?;
                    ib.port = u8::try_from(n).ok().filter(|p| *p >= 1).ok_or_else(|| {
                        self.err(line, format!("ib_port must be 1 to 255, not {n}"))
                    })?;
                }
                "ib_gid_index" => {
                    let n = self.number(line, key, value)?;
                    ib.gid_index = u8::try_from(n).map_err(|_| {
                        self.err(line, format!("ib_gid_index must be 0 to 255, not {n}"))
                    })?;
                }
                "crypto_cipher" | "crypto_hash" => {
                    if value != "none" {
                        return Err(self.err(line, format!(
                            "{key}: {value} is not supported yet (ring encryption is not implemented); \
                             set it to none explicitly to run unencrypted"
                        )));
                    }
                }
                "secauth" => {
                    if self.yes_no(line, key, value)? {
                        return Err(self.err(
                            line,
                            "secauth: on is not supported yet (ring encryption is not implemented)",
                        ));
                    }
                }
                k if REMOVED_KEYS.contains(&k) => self.warn(
                    line,
                    format!("totem.{k} was removed in corosync 3 and is ignored"),
                ),
                k if TOTEM_KEYS.contains(&k) => {}
                other => self.warn(line, format!("unknown key totem.{other} is ignored")),
            }
        }
        if !version_seen {
            self.warn(s.line, "totem.version is missing; assuming 2");
        }
        if transport.2 {
            let line = transport.1.max(s.line);
            self.warn(
                line,
                "transport knet (corosync 3's default) runs as udpu until redundant links exist",
            );
        }
        let interface = self.interface(s)?;
        let fault = self.fault(s)?;
        // IPv4 + UDP headers take 28 bytes, IPv6 48.
        let ip_overhead = if nodes.first().is_some_and(|n| n.addr.is_ipv6()) {
            48
        } else {
            28
        };
        ring.frame_len = netmtu - ip_overhead;
        if !lines.contains_key("window_size") && transport.0 != TransportKind::Ib {
            ring.window_size = default_window(netmtu, receive_buffer_granted());
        }
        let cluster_id = cluster_id.unwrap_or_else(|| fnv1a(cluster_name.as_bytes()));
        ring.cluster_id = cluster_id;
        // Validate the ring options now (with a stand-in node id), naming the option's line.
        if let Err(e) = ring.effective() {
            let line = lines.get(e.option).copied().unwrap_or(s.line);
            return Err(self.err(line, e.to_string()));
        }
        if transport.0 == TransportKind::Udp
            && interface.mcastaddr.is_some_and(|a| !a.is_multicast())
        {
            return Err(self.err(s.line, "interface.mcastaddr is not a multicast address"));
        }
        Ok(DaemonConfig {
            path: self.path.clone(),
            cluster_name,
            cluster_id,
            transport: transport.0,
            netmtu,
            ring,
            interface,
            nodes,
            ib,
            block_unlisted_ips: block,
            fault,
            logging,
            state_dir,
            uidgid: Vec::new(),
            flat: Vec::new(),
            warnings: Vec::new(),
        })
    }

    fn interface(&mut self, totem: &Section) -> Result<Interface, ConfigError> {
        let mut i = Interface {
            mcastaddr: None,
            mcastport: DEFAULT_PORT,
            ttl: 1,
            bindnetaddr: None,
        };
        let mut count = 0;
        for s in totem.sections("interface") {
            count += 1;
            if count > 1 {
                self.warn(
                    s.line,
                    "only link 0 is supported yet; this interface section is ignored",
                );
                continue;
            }
            for (key, value, line) in s.pairs() {
                match key {
                    "mcastaddr" => {
                        i.mcastaddr = Some(value.parse().map_err(|_| {
                            self.err(line, format!("mcastaddr: not an IP address: {value:?}"))
                        })?)
                    }
                    "mcastport" => {
                        let p = self.number(line, key, value)?;
                        i.mcastport =
                            u16::try_from(p).ok().filter(|p| *p > 0).ok_or_else(|| {
                                self.err(line, format!("mcastport must be 1 to 65535, not {p}"))
                            })?;
                    }
                    "ttl" => {
                        let t = self.count(line, key, value)?;
                        if t > 255 {
                            return Err(self.err(line, "ttl must be 0 to 255"));
                        }
                        i.ttl = t;
                    }
                    "bindnetaddr" => i.bindnetaddr = value.parse().ok(),
                    "linknumber" | "ringnumber" => {
                        if value != "0" {
                            return Err(self.err(
                                line,
                                format!("{key} {value}: only link 0 is supported yet"),
                            ));
                        }
                    }
                    "broadcast"
                    | "knet_link_priority"
                    | "knet_ping_interval"
                    | "knet_ping_timeout"
                    | "knet_ping_precision"
                    | "knet_pong_count"
                    | "knet_transport" => {
                        self.warn(
                            line,
                            format!("interface.{key} applies to knet only and is ignored"),
                        );
                    }
                    other => self.warn(
                        line,
                        format!("unknown key totem.interface.{other} is ignored"),
                    ),
                }
            }
        }
        Ok(i)
    }

    fn fault(&mut self, totem: &Section) -> Result<FaultInjection, ConfigError> {
        let mut f = FaultInjection::default();
        for s in totem.sections("fault_injection") {
            self.warn(
                s.line,
                "fault injection is ON: for experiments only, never in production",
            );
            for (key, value, line) in s.pairs() {
                let ppm = |b: &Self| -> Result<u32, ConfigError> {
                    let pct: f64 = value.parse().map_err(|_| {
                        b.err(line, format!("{key} must be a percentage, not {value:?}"))
                    })?;
                    if !(0.0..=100.0).contains(&pct) {
                        return Err(b.err(line, format!("{key} must be 0 to 100, not {pct}")));
                    }
                    Ok((pct * 10_000.0).round() as u32)
                };
                match key {
                    "drop_percent" => f.drop_ppm = ppm(self)?,
                    "duplicate_percent" => f.duplicate_ppm = ppm(self)?,
                    "delay" => f.delay = self.millis(line, key, value)?,
                    "jitter" => f.jitter = self.millis(line, key, value)?,
                    other => self.warn(
                        line,
                        format!("unknown key fault_injection.{other} is ignored"),
                    ),
                }
            }
        }
        Ok(f)
    }
}

/// A literal IP address, or a host name resolved now.
fn resolve(value: &str) -> Result<IpAddr, String> {
    if let Ok(ip) = value.parse::<IpAddr>() {
        return Ok(ip);
    }
    // Something that is meant as an address but is not a valid one (127.0.0.300, fd13::x::1)
    // is an error here, not a host name to look up in DNS.
    if value.chars().all(|c| c.is_ascii_digit() || c == '.') || value.contains(':') {
        return Err(format!("ring0_addr {value:?} is not a valid IP address"));
    }
    match (value, 0).to_socket_addrs() {
        Ok(mut addrs) => addrs
            .next()
            .map(|a| a.ip())
            .ok_or_else(|| format!("{value:?} resolves to no address")),
        Err(e) => Err(format!(
            "ring0_addr {value:?} is neither an IP address nor a resolvable name: {e}"
        )),
    }
}

/// A `uid:` value: a number, or a user name looked up in `/etc/passwd`.
fn user_id(value: &str) -> Result<u32, String> {
    id_from("uid", "user", value, "/etc/passwd")
}

/// A `gid:` value: a number, or a group name looked up in `/etc/group`.
fn group_id(value: &str) -> Result<u32, String> {
    id_from("gid", "group", value, "/etc/group")
}

/// A numeric id, or `name`'s id in `file` (`name:x:id:...`, the format both files share).
/// Only the files are read, not NSS (LDAP, sssd): use numbers for such accounts.
fn id_from(key: &str, what: &str, value: &str, file: &str) -> Result<u32, String> {
    if value.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '+') {
        return value.parse().map_err(|_| {
            format!(
                "uidgid.{key} must be a {what} name or a number from 0 to 4294967295, not {value:?}"
            )
        });
    }
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("uidgid.{key}: cannot read {file} to look up {value:?}: {e}"))?;
    lookup_id(&text, value).ok_or_else(|| {
        format!(
            "uidgid.{key}: no {what} {value:?} in {file} (give the number for users outside {file})"
        )
    })
}

/// The id of `name` in passwd/group-format `text`.
fn lookup_id(text: &str, name: &str) -> Option<u32> {
    text.lines().find_map(|l| {
        let mut f = l.split(':');
        (f.next()? == name).then_some(())?;
        f.nth(1)?.parse().ok()
    })
}

/// 32-bit FNV-1a: the cluster id derived from the cluster name (stable across builds).
fn fnv1a(bytes: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in bytes {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

#[cfg(test)]
mod tests;

/// totemd's `window_size` when the file sets none (corosync's is 50): the frames a rotation may
/// carry. corosync bounds it by what the kernel receive buffer holds (its advice: at most
/// 256 000 / netmtu, the buffers of its day); totemd asks for 4 MiB buffers (and forces them as
/// root), so its window is what half the buffer it gets holds at a frame's kernel cost
/// (`netmtu` plus about 1 KiB of socket-buffer overhead), between 50 and 200.
pub(crate) fn default_window(netmtu: usize, receive_buffer: usize) -> u32 {
    let frames = receive_buffer / 2 / (netmtu + 1024).max(1);
    u32::try_from(frames).unwrap_or(u32::MAX).clamp(50, 200)
}

/// The receive buffer the UDP transport will get for its 4 MiB request, as the kernel
/// accounts it (twice the request): all of it as root (`SO_RCVBUFFORCE`), else at most
/// `net.core.rmem_max`.
fn receive_buffer_granted() -> usize {
    let asked = transport_udp::DEFAULT_BUFFER_SIZE;
    let root = std::fs::metadata("/proc/self").is_ok_and(|m| {
        use std::os::unix::fs::MetadataExt;
        m.uid() == 0
    });
    let cap = if root {
        asked
    } else {
        std::fs::read_to_string("/proc/sys/net/core/rmem_max")
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .map_or(asked, |max| max.min(asked))
    };
    2 * cap
}
