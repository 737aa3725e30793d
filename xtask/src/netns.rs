//! Network namespaces, a bridge and nftables for the test clusters (`--netns`, root only):
//! each node gets a namespace with one veth on a shared bridge, and faults are nft tables
//! inside the receiving node's namespace, so nothing on the host's own network changes.
//!
//! ```text
//!  root namespace:   <bridge> ── <veth>1 ── <veth>2 ── ...     (no address: layer 2 only)
//!  namespace <ns>1:  eth0 10.213.S.1/24, lo, route 224.0.0.0/4 dev eth0
//!  namespace <ns>2:  eth0 10.213.S.2/24, ...
//! ```
//!
//! The namespaces have no default route, so nothing they send can leave the bridge. Each
//! tool has its own names and subnet `S` (see `nodes::Layout`), so `cargo xtask cluster`,
//! `e2e` and `bench failover` can run side by side, and none clashes with transport-udp's
//! `totem-udp-*` test namespaces. Every command is `ip` or `nft` run here; a failure names
//! the command and its stderr.

use core::net::Ipv4Addr;
use std::process::{Command, Stdio};

/// Whether this process runs with effective uid 0 (namespaces, bridges and nft need it).
pub(crate) fn is_root() -> bool {
    // `Uid:` in /proc/self/status lists real, effective, saved and filesystem uid.
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            == Some("0")
    })
}

/// Runs `program args`, quietly; `Err` names the command and carries its stderr.
pub(crate) fn sh(program: &str, args: &[&str]) -> crate::Result<String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run `{program}`: {e} (is it installed?)"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`{program} {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Checks that `ip` and `nft` exist, naming the Debian packages otherwise.
pub(crate) fn check_tools() -> crate::Result {
    for (tool, package) in [("ip", "iproute2"), ("nft", "nftables")] {
        if sh(tool, &["--version"]).is_err() && sh(tool, &["-V"]).is_err() {
            return Err(format!(
                "`{tool}` is missing: install it with `apt-get install -y {package}`"
            ));
        }
    }
    Ok(())
}

/// Whether this machine lets us create a network namespace (root in an unprivileged
/// container may not): creates and deletes `probe`; `Err` says why not.
pub(crate) fn can_create(probe: &str) -> crate::Result {
    let _ = sh("ip", &["netns", "del", probe]);
    sh("ip", &["netns", "add", probe])?;
    sh("ip", &["netns", "del", probe]).map(drop)
}

/// Namespace names, as `ip netns list` prints them (first word of each line).
pub(crate) fn namespaces() -> Vec<String> {
    sh("ip", &["netns", "list"])
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

/// Names of the links in the root namespace (`ip -o link show`, `@peer` suffix removed).
pub(crate) fn links() -> Vec<String> {
    sh("ip", &["-o", "link", "show"])
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|name| name.split('@').next().unwrap_or(name).to_owned())
        .collect()
}

/// Creates the bridge (up, multicast snooping off so that multicast floods to every port
/// without an IGMP querier).
pub(crate) fn add_bridge(bridge: &str) -> crate::Result {
    sh(
        "ip",
        &[
            "link",
            "add",
            bridge,
            "type",
            "bridge",
            "mcast_snooping",
            "0",
        ],
    )?;
    sh("ip", &["link", "set", bridge, "up"])?;
    Ok(())
}

/// Creates namespace `ns` with `eth0` = `addr/24` on `bridge` through the root-side veth
/// `veth`.
pub(crate) fn add_node(ns: &str, veth: &str, bridge: &str, addr: Ipv4Addr) -> crate::Result {
    sh("ip", &["netns", "add", ns])?;
    sh(
        "ip",
        &[
            "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns,
        ],
    )?;
    sh("ip", &["link", "set", veth, "master", bridge, "up"])?;
    let cidr = format!("{addr}/24");
    sh("ip", &["-n", ns, "addr", "add", &cidr, "dev", "eth0"])?;
    sh("ip", &["-n", ns, "link", "set", "eth0", "up"])?;
    sh("ip", &["-n", ns, "link", "set", "lo", "up"])?;
    // No default route on purpose; multicast needs none (IP_MULTICAST_IF picks eth0) but an
    // explicit route keeps tools that look one up happy.
    sh(
        "ip",
        &["-n", ns, "route", "add", "224.0.0.0/4", "dev", "eth0"],
    )?;
    Ok(())
}

/// Deletes namespace `ns` (its veth pair goes with it). Processes still inside keep the
/// namespace alive, so end them first.
pub(crate) fn del_namespace(ns: &str) -> crate::Result {
    sh("ip", &["netns", "del", ns]).map(drop)
}

/// Deletes a link of the root namespace (the bridge, a leftover veth).
pub(crate) fn del_link(name: &str) -> crate::Result {
    sh("ip", &["link", "del", name]).map(drop)
}

/// nft table names: one per kind of fault, so each can be removed on its own.
pub(crate) const PARTITION_TABLE: &str = "totem_partition";
pub(crate) const LOSS_TABLE: &str = "totem_loss";

/// Replaces table `inet <table>` in `ns` by one input chain holding `rule`.
pub(crate) fn set_input_rule(ns: &str, table: &str, rule: &str) -> crate::Result {
    del_table(ns, table);
    let script = format!(
        "table inet {table} {{\n  chain input {{\n    type filter hook input priority 0; policy accept;\n    {rule}\n  }}\n}}\n"
    );
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns, "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run `ip netns exec {ns} nft`: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        use std::io::Write as _;
        stdin
            .write_all(script.as_bytes())
            .map_err(|e| format!("nft in {ns}: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("nft in {ns}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "nft in {ns} refused `{rule}` ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Removes table `inet <table>` from `ns` if it is there; whether it was.
pub(crate) fn del_table(ns: &str, table: &str) -> bool {
    sh(
        "ip",
        &["netns", "exec", ns, "nft", "delete", "table", "inet", table],
    )
    .is_ok()
}

/// `ip saddr { a, b } drop`: what a node on one side of a partition drops.
pub(crate) fn drop_from_rule(addrs: &[Ipv4Addr]) -> String {
    let list: Vec<String> = addrs.iter().map(ToString::to_string).collect();
    format!("ip saddr {{ {} }} drop", list.join(", "))
}

/// Random loss of `percent` % of the UDP datagrams arriving on `eth0`.
pub(crate) fn loss_rule(percent: u8) -> String {
    format!("iifname \"eth0\" meta l4proto udp numgen random mod 100 < {percent} drop")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_read_as_nft_expects() {
        assert_eq!(
            drop_from_rule(&[Ipv4Addr::new(10, 213, 0, 3), Ipv4Addr::new(10, 213, 0, 4)]),
            "ip saddr { 10.213.0.3, 10.213.0.4 } drop"
        );
        assert_eq!(
            loss_rule(30),
            "iifname \"eth0\" meta l4proto udp numgen random mod 100 < 30 drop"
        );
    }
}
