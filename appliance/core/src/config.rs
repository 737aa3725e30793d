//! [`ApplianceConfig`]: everything the appliance runs with, built the way totemd builds its
//! own from `corosync.conf`, so that an appliance and `totemd` nodes agree on the ring.
//!
//! What must match between every node of one ring, and where totemd takes it from
//! (node/src/config/mod.rs):
//!
//! | what | totemd | here |
//! | --- | --- | --- |
//! | cluster id in every frame | FNV-1a of `totem.cluster_name` (or `cluster_id`) | [`cluster_id`] of the same name |
//! | token timeout | `token` + (nodes − 2) × `token_coefficient` (650 ms) | the same [`totem_ring::Config`] fields, `nodelist_len` = node-list length |
//! | frame size | `netmtu` (1500) − 28 = 1472 | [`ApplianceConfig::set_netmtu`], 1500 by default |
//! | crypto | none (`crypto_cipher`/`crypto_hash: none`, `secauth: off`) | none: frames are plaintext |
//! | transport | `udp` (multicast group, `mcastport`) or `udpu` | [`Mode`] and [`transport_smoltcp::Config::port`] |
//! | largest message | 1 MiB (`max_message_len`) | the same default; a smaller value makes the ring drop larger messages from others |
//!
//! The other timers (join, consensus, merge, hold, ...) are derived from those exactly as
//! totemd derives them, because both use `totem_ring::Config`'s defaults.

use core::net::Ipv4Addr;

use services::cpg::CpgConfig;
use totem_proto::NodeId;
use transport_smoltcp::Mode;

/// IPv4 + UDP headers: what `netmtu` loses before a totem frame (totemd uses the same).
pub const IPV4_UDP_OVERHEAD: usize = 28;

/// The default `netmtu`, corosync's and totemd's.
pub const DEFAULT_NETMTU: usize = 1500;

/// The cluster id totemd derives from `totem.cluster_name`: 32-bit FNV-1a of its bytes.
pub const fn cluster_id(cluster_name: &str) -> u32 {
    let bytes = cluster_name.as_bytes();
    let mut hash: u32 = 0x811c_9dc5;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u32;
        hash = hash.wrapping_mul(0x0100_0193);
        i += 1;
    }
    hash
}

/// The appliance's configuration: the ring's, the transport's, the CPG engine's, and the
/// pid the in-process application shows to the CPG group.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ApplianceConfig<'n> {
    /// The ring (`totem {}` of corosync.conf).
    pub ring: totem_ring::Config,
    /// The transport: node list, port, multicast or unicast.
    pub transport: transport_smoltcp::Config<'n>,
    /// CPG limits (`max_message_len` follows the ring's).
    pub cpg: CpgConfig,
    /// The application's CPG process id: members of a group are `(node id, pid)`, and a
    /// firmware has one application, so any fixed non-zero number does (default 1).
    pub app_pid: u32,
}

impl<'n> ApplianceConfig<'n> {
    /// What totemd would run with for `node_id` of a cluster named `cluster_name` whose
    /// `nodelist {}` is `nodelist` and whose transport is `mode`, on `mcastport` 5405:
    /// corosync's defaults, the token scaled by the node count, frames of `netmtu` 1500.
    pub fn like_totemd(
        node_id: NodeId,
        cluster_name: &str,
        nodelist: &'n [(NodeId, Ipv4Addr)],
        mode: Mode,
    ) -> Self {
        let mut ring = totem_ring::Config::new(node_id, cluster_id(cluster_name));
        ring.nodelist_len = nodelist.len();
        ring.frame_len = DEFAULT_NETMTU - IPV4_UDP_OVERHEAD;
        let cpg = CpgConfig {
            max_message_len: ring.max_message_len,
            ..CpgConfig::default()
        };
        Self {
            ring,
            transport: transport_smoltcp::Config::new(node_id, nodelist, mode),
            cpg,
            app_pid: 1,
        }
    }

    /// Sets the frame size from an IPv4 `netmtu`, as totemd does (`netmtu − 28`).
    pub fn set_netmtu(&mut self, netmtu: usize) {
        self.ring.frame_len = netmtu.saturating_sub(IPV4_UDP_OVERHEAD);
    }

    /// Sets the largest message, for the ring and the CPG engine together; the send queue
    /// is made to hold at least one such message.
    pub fn set_max_message_len(&mut self, len: usize) {
        self.ring.max_message_len = len;
        self.cpg.max_message_len = len;
        self.ring.send_queue_bytes = self.ring.send_queue_bytes.max(len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_id_is_fnv1a_as_totemd_computes_it() {
        // FNV-1a 32 reference values.
        assert_eq!(cluster_id(""), 0x811c_9dc5);
        assert_eq!(cluster_id("a"), 0xe40c_292c);
        assert_eq!(cluster_id("foobar"), 0xbf9c_f968);
    }

    #[test]
    fn like_totemd_derives_the_same_timers() {
        let nodes = [
            (NodeId(1), Ipv4Addr::new(10, 0, 0, 1)),
            (NodeId(2), Ipv4Addr::new(10, 0, 0, 2)),
            (NodeId(3), Ipv4Addr::new(10, 0, 0, 3)),
        ];
        let mut c = ApplianceConfig::like_totemd(NodeId(3), "x", &nodes, Mode::Unicast);
        c.ring.token = totem_proto::time::Duration::from_millis(1000);
        let e = c.ring.effective().unwrap();
        // 1000 + (3 − 2) × 650, as totemd's `token: 1000` with three nodes.
        assert_eq!(e.token, totem_proto::time::Duration::from_millis(1650));
        assert_eq!(e.frame_len, 1472);
        c.set_max_message_len(64 * 1024);
        assert_eq!(c.cpg.max_message_len, 64 * 1024);
    }
}
