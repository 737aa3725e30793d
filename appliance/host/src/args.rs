//! The command line, parsed by hand (no dependency): the same facts a totemd node reads
//! from its `corosync.conf`, given as options, plus the TAP interface and the group.

use core::net::Ipv4Addr;
use std::path::PathBuf;

pub(crate) const USAGE: &str = "\
usage: totem-appliance --tap IFNAME --nodeid N --addr A.B.C.D/PREFIX
                       --node ID=A.B.C.D [--node ...] --cluster-name NAME --state FILE
                       [--mcastaddr GROUP | --udpu] [--mcastport PORT] [--token MS]
                       [--netmtu BYTES] [--group NAME] [--pid N] [--verbose]

Runs the appliance core (ring + CPG + smoltcp) on the TAP interface IFNAME. The ring
options mean what they mean in totemd's corosync.conf, with the same defaults: every
node of the ring must agree on --cluster-name, --node list, --mcastaddr/--udpu,
--mcastport, --token and --netmtu.

  --tap IFNAME        TAP interface to attach to (e.g. made by `ip tuntap add mode tap`)
  --nodeid N          this node's id; it must be in the --node list
  --addr A/P          this node's address on the TAP's network (its --node address)
  --node ID=ADDR      one node of the nodelist (repeat for each, this one included)
  --cluster-name NAME totem.cluster_name: its FNV-1a hash is the cluster id in frames
  --state FILE        where the last ring seq is kept across restarts
  --mcastaddr GROUP   transport udp: multicast group (default)  | --udpu: unicast
  --mcastport PORT    UDP port (default 5405)
  --token MS          totem.token (default 3000; scaled by the node count as totemd)
  --netmtu BYTES      totem.netmtu (default 1500)
  --group NAME        CPG group to join (default chat)
  --pid N             the application's CPG pid (default 1)
  --verbose           debug logging on stderr

stdin: each line is multicast to the group (`/heap` prints the heap line instead); end
of input leaves the ring and exits. stdout: deliveries and membership changes in
cpg_chat's format, and `heap: ...` lines.";

/// Parsed options.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) tap: String,
    pub(crate) node_id: u32,
    pub(crate) addr: Ipv4Addr,
    pub(crate) prefix: u8,
    pub(crate) nodes: Vec<(totem_appliance::totem_proto::NodeId, Ipv4Addr)>,
    pub(crate) cluster_name: String,
    pub(crate) state: PathBuf,
    /// `None`: udpu.
    pub(crate) mcastaddr: Option<Ipv4Addr>,
    pub(crate) port: u16,
    pub(crate) token_ms: u64,
    pub(crate) netmtu: usize,
    pub(crate) group: String,
    pub(crate) pid: u32,
    pub(crate) verbose: bool,
}

/// Parses the arguments (without the program name); `Ok(None)` for `--help`.
pub(crate) fn parse(argv: &[String]) -> Result<Option<Options>, String> {
    let mut tap = None;
    let mut node_id = None;
    let mut addr = None;
    let mut nodes = Vec::new();
    let mut cluster_name = None;
    let mut state = None;
    let mut mcastaddr = Some(Ipv4Addr::new(239, 192, 0, 1));
    let mut port = 5405_u16;
    let mut token_ms = 3000_u64;
    let mut netmtu = 1500_usize;
    let mut group = "chat".to_owned();
    let mut pid = 1_u32;
    let mut verbose = false;
    let mut it = argv.iter();
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .map(String::as_str)
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--help" | "-h" => return Ok(None),
            "--tap" => tap = Some(value()?.to_owned()),
            "--nodeid" => node_id = Some(number(flag, value()?)?),
            "--addr" => {
                let v = value()?;
                let (a, p) = v
                    .split_once('/')
                    .ok_or_else(|| format!("--addr {v}: expected A.B.C.D/PREFIX"))?;
                let prefix: u8 = number(flag, p)?;
                if prefix > 32 {
                    return Err(format!("--addr {v}: prefix above 32"));
                }
                addr = Some((ip(flag, a)?, prefix));
            }
            "--node" => {
                let v = value()?;
                let (id, a) = v
                    .split_once('=')
                    .ok_or_else(|| format!("--node {v}: expected ID=A.B.C.D"))?;
                let id: u32 = number(flag, id)?;
                if id == 0 {
                    return Err(format!("--node {v}: node id 0 is not valid"));
                }
                nodes.push((totem_appliance::totem_proto::NodeId(id), ip(flag, a)?));
            }
            "--cluster-name" => cluster_name = Some(value()?.to_owned()),
            "--state" => state = Some(PathBuf::from(value()?)),
            "--mcastaddr" => {
                let g = ip(flag, value()?)?;
                if !g.is_multicast() {
                    return Err(format!("--mcastaddr {g} is not a multicast address"));
                }
                mcastaddr = Some(g);
            }
            "--udpu" => mcastaddr = None,
            "--mcastport" => port = number(flag, value()?)?,
            "--token" => token_ms = number(flag, value()?)?,
            "--netmtu" => netmtu = number(flag, value()?)?,
            "--group" => group = value()?.to_owned(),
            "--pid" => pid = number(flag, value()?)?,
            "--verbose" | "-v" => verbose = true,
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    let node_id: u32 = node_id.ok_or("--nodeid is required")?;
    let (addr, prefix) = addr.ok_or("--addr is required")?;
    let mut ids: Vec<u32> = nodes.iter().map(|(n, _)| n.0).collect();
    ids.sort_unstable();
    if ids.windows(2).any(|w| w[0] == w[1]) {
        return Err("a node id appears twice in the --node list".into());
    }
    match nodes.iter().find(|(n, _)| n.0 == node_id) {
        None => return Err(format!("--nodeid {node_id} is not in the --node list")),
        Some((_, a)) if *a != addr => {
            return Err(format!(
                "--addr {addr} differs from node {node_id}'s --node address {a}"
            ));
        }
        Some(_) => {}
    }
    if port == 0 {
        return Err("--mcastport 0 is not a port".into());
    }
    if !(576..=65_535).contains(&netmtu) {
        return Err(format!("--netmtu {netmtu}: must be 576 to 65535"));
    }
    if pid == 0 {
        return Err("--pid 0 is not valid".into());
    }
    Ok(Some(Options {
        tap: tap.ok_or("--tap is required")?,
        node_id,
        addr,
        prefix,
        nodes,
        cluster_name: cluster_name.ok_or("--cluster-name is required")?,
        state: state.ok_or("--state is required")?,
        mcastaddr,
        port,
        token_ms,
        netmtu,
        group,
        pid,
        verbose,
    }))
}

fn number<T: core::str::FromStr>(flag: &str, v: &str) -> Result<T, String> {
    v.parse()
        .map_err(|_| format!("{flag} {v:?}: not a valid number"))
}

fn ip(flag: &str, v: &str) -> Result<Ipv4Addr, String> {
    v.parse()
        .map_err(|_| format!("{flag} {v:?}: not an IPv4 address"))
}
