//! What totemd puts in cmap and what cmap writes mean to it: the configuration file under
//! corosync's key names, the effective ring values under `runtime.config.totem.`, the
//! statistics and members under `runtime.`, and the [`NodePolicy`] that decides which
//! client writes take effect live (the `totem.*` timers), which need a restart, and which
//! values the ring would refuse.
//!
//! The key namespace is documented in README.md ("cmap keys"); in short:
//!
//! | prefix | from | client writes |
//! | --- | --- | --- |
//! | `totem.`, `nodelist.`, `quorum.`, `logging.`, `system.`, `uidgid.`, `resources.`, `nozzle.` | the file (re-read by `reload`) | [`LIVE_TOTEM_KEYS`] apply at once; the rest refused |
//! | `runtime.config.totem.` | the ring's effective values | read-only |
//! | `runtime.members.`, `runtime.totem.`, `runtime.connections.`, `runtime.ipc.`, `runtime.services.` | the daemon, on change and once a second | read-only |
//! | `internal_configuration.`, `nodelist.local_node_pos`, `config.` | the daemon | read-only |
//! | anything else | clients | free |

use core::fmt::Write as _;

use objdb::{Db, Value};
use services::cmap::{Refusal, WritePolicy};
use services::cpg::wire::CsError;
use totem_proto::NodeId;
use totem_proto::time::Duration;
use totem_ring::{Effective, Stats};

use crate::config::DaemonConfig;

/// The `totem.*` keys a client (or `reload`) may change on a running node: the ring's
/// timers and flow-control values, as `Ring::reconfigure` accepts them (corosync lets the
/// same ones change at run time). Deleting one reverts it to its default.
pub const LIVE_TOTEM_KEYS: &[&str] = &[
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
];

/// Sections of the configuration file: their keys are the file's, re-read by `reload`.
pub const FILE_SECTIONS: &[&str] = &[
    "totem.",
    "nodelist.",
    "quorum.",
    "logging.",
    "system.",
    "uidgid.",
    "resources.",
    "nozzle.",
];

/// Prefixes (and keys) clients may never write.
const READ_ONLY: &[(&str, bool)] = &[
    ("runtime.", true),
    ("internal_configuration.", true),
    ("config.", true),
    ("nodelist.local_node_pos", false),
];

/// File keys stored as `u32` (corosync types them so); the others are strings.
const U32_KEYS: &[&str] = &[
    "totem.token",
    "totem.token_coefficient",
    "totem.token_retransmits_before_loss_const",
    "totem.token_retransmit",
    "totem.hold",
    "totem.join",
    "totem.send_join",
    "totem.consensus",
    "totem.merge",
    "totem.downcheck",
    "totem.fail_recv_const",
    "totem.seqno_unchanged_const",
    "totem.window_size",
    "totem.max_messages",
    "totem.miss_count_const",
    "totem.netmtu",
    "totem.cluster_id",
    "totem.token_warning",
    "totem.max_network_delay",
    "totem.heartbeat_failures_allowed",
    "totem.knet_mtu",
    "totem.nodeid",
    "totem.interface.0.mcastport",
    "totem.interface.0.ttl",
    "quorum.expected_votes",
    "quorum.votes",
];

/// The cmap name of a configuration item: link 0's `interface` keys carry the link number
/// (`totem.interface.0.mcastport`), as corosync names them.
fn cmap_key(flat: &str) -> String {
    match flat.strip_prefix("totem.interface.") {
        Some(rest) => format!("totem.interface.0.{rest}"),
        None => flat.to_owned(),
    }
}

/// The typed value of a configuration item.
fn typed(key: &str, text: &str) -> Value {
    let number = |t: &str| t.parse::<u64>().ok();
    if U32_KEYS.contains(&key)
        || (key.starts_with("nodelist.node.")
            && (key.ends_with(".nodeid") || key.ends_with(".quorum_votes")))
    {
        if let Some(n) = number(text).and_then(|n| u32::try_from(n).ok()) {
            return Value::U32(n);
        }
    } else if key == "totem.config_version" {
        if let Some(n) = number(text) {
            return Value::U64(n);
        }
    } else if key.starts_with("uidgid.") && text == "1" {
        return Value::U8(1);
    }
    Value::String(text.to_owned())
}

/// The configuration file's items, as cmap keys and values, in file order.
pub fn file_entries(cfg: &DaemonConfig) -> Vec<(String, Value)> {
    cfg.flat
        .iter()
        .map(|(k, v, _)| {
            let key = cmap_key(k);
            let value = typed(&key, v);
            (key, value)
        })
        .collect()
}

/// Fills a fresh database: read-only rules, the file's keys, the node's position in the
/// nodelist, the engines, and the ring's effective values. Items whose names cmap cannot
/// hold are skipped with a warning each (returned).
pub fn load(db: &mut Db, cfg: &DaemonConfig, node: NodeId, eff: &Effective) -> Vec<String> {
    let mut warnings = Vec::new();
    for (key, prefix) in READ_ONLY {
        // Constant, valid names.
        let _ = db.set_read_only(key, *prefix, true);
    }
    for (key, value) in file_entries(cfg) {
        if let Err(e) = db.set_internal(&key, value) {
            warnings.push(format!("configuration item {key:?} is not in cmap: {e}"));
        }
    }
    if let Some(pos) = cfg.nodes.iter().position(|n| n.id == node) {
        set(db, "nodelist.local_node_pos", Value::U32(pos as u32));
    }
    for (i, (name, ver)) in [("corosync_cpg", 0u32), ("corosync_cmap", 0)]
        .into_iter()
        .enumerate()
    {
        set(
            db,
            &format!("internal_configuration.service.{i}.name"),
            Value::String(name.into()),
        );
        set(
            db,
            &format!("internal_configuration.service.{i}.ver"),
            Value::U32(ver),
        );
    }
    set(db, "config.reload_in_progress", Value::U8(0));
    publish_effective(db, eff);
    warnings
}

/// Replaces the file's keys by those of `cfg` (a reload): keys no longer in the file are
/// deleted, changed ones modified, the others untouched (so trackers see exactly what the
/// edit changed). With `keep_nodelist` the running nodelist stays (it needs a restart).
/// `config.reload_in_progress` is 1 meanwhile, as corosync's.
pub fn reload(db: &mut Db, cfg: &DaemonConfig, keep_nodelist: bool) {
    set(db, "config.reload_in_progress", Value::U8(1));
    let fresh: Vec<(String, Value)> = file_entries(cfg)
        .into_iter()
        .filter(|(k, _)| !(keep_nodelist && k.starts_with("nodelist.")))
        .collect();
    let stale: Vec<String> = FILE_SECTIONS
        .iter()
        .filter(|p| !(keep_nodelist && **p == "nodelist."))
        .flat_map(|p| {
            db.iter_prefix(p)
                .map(|(k, _)| k.to_owned())
                .collect::<Vec<_>>()
        })
        .filter(|k| k != "nodelist.local_node_pos" && !fresh.iter().any(|(f, _)| f == k))
        .collect();
    for k in stale {
        db.delete_internal(&k);
    }
    for (k, v) in fresh {
        // Names were checked when the daemon started; a new bad one is skipped.
        let _ = db.set_internal(&k, v);
    }
    set(db, "config.reload_in_progress", Value::U8(0));
}

/// Publishes the ring's effective values under `runtime.config.totem.` (times in
/// milliseconds, as corosync's).
pub fn publish_effective(db: &mut Db, e: &Effective) {
    let ms = |d: Duration| Value::U32(u32::try_from(d.total_millis()).unwrap_or(u32::MAX));
    let entries = [
        ("token", ms(e.token)),
        ("token_coefficient", ms(e.token_coefficient)),
        (
            "token_retransmits_before_loss_const",
            Value::U32(e.token_retransmits_before_loss_const),
        ),
        ("token_retransmit", ms(e.token_retransmit)),
        ("hold", ms(e.hold)),
        ("join", ms(e.join)),
        ("send_join", ms(e.send_join)),
        ("consensus", ms(e.consensus)),
        ("merge", ms(e.merge)),
        ("downcheck", ms(e.downcheck)),
        ("fail_recv_const", Value::U32(e.fail_recv_const)),
        ("seqno_unchanged_const", Value::U32(e.seqno_unchanged_const)),
        ("window_size", Value::U32(e.window_size)),
        ("max_messages", Value::U32(e.max_messages)),
        ("miss_count_const", Value::U32(e.miss_count_const)),
        (
            "cancel_token_hold_on_retransmit",
            Value::U8(u8::from(e.cancel_token_hold_on_retransmit)),
        ),
        ("accelerated", Value::U8(u8::from(e.accelerated))),
        ("fast_fail", Value::U8(u8::from(e.fast_fail))),
        (
            "adaptive_token_retransmit",
            Value::U8(u8::from(e.adaptive_token_retransmit)),
        ),
        (
            "max_message_len",
            Value::U32(u32::try_from(e.max_message_len).unwrap_or(u32::MAX)),
        ),
        (
            "frame_len",
            Value::U32(u32::try_from(e.frame_len).unwrap_or(u32::MAX)),
        ),
        ("cluster_id", Value::U32(e.cluster_id)),
        ("nodeid", Value::U32(e.node_id.0)),
    ];
    for (k, v) in entries {
        set(db, &format!("runtime.config.totem.{k}"), v);
    }
}

/// The ring configuration the database asks for: `base` (the running configuration, for
/// what cannot change live) with every [`LIVE_TOTEM_KEYS`] value taken from `totem.*`, or
/// its default when the key is absent. `pending` overrides one key's value (`None`:
/// deleted) for checking a write before it happens.
///
/// # Errors
/// Why a value does not fit its key (the ring's own rules are checked by the caller).
pub fn ring_config(
    base: &totem_ring::Config,
    db: &Db,
    pending: Option<(&str, Option<&Value>)>,
) -> Result<totem_ring::Config, String> {
    let defaults = totem_ring::Config::new(base.node_id, base.cluster_id);
    let mut c = base.clone();
    for name in LIVE_TOTEM_KEYS {
        let key = format!("totem.{name}");
        let value = match pending {
            Some((k, v)) if k == key => v,
            _ => db.get(&key),
        };
        let num = |v: &Value| -> Result<u64, String> {
            match (v.as_integer(), v.as_str()) {
                (Some(n), _) => u64::try_from(n).ok(),
                (None, Some(s)) => s.trim().parse().ok(),
                _ => None,
            }
            .ok_or_else(|| format!("{key} takes a whole number, not {v} ({})", v.value_type()))
        };
        let count = |v: &Value| -> Result<u32, String> {
            u32::try_from(num(v)?).map_err(|_| format!("{key}: {v} is too large"))
        };
        let ms = |v: &Value| num(v).map(Duration::from_millis);
        match (*name, value) {
            ("token", v) => c.token = v.map_or(Ok(defaults.token), ms)?,
            ("token_coefficient", v) => {
                c.token_coefficient = v.map_or(Ok(defaults.token_coefficient), ms)?;
            }
            ("token_retransmits_before_loss_const", v) => {
                c.token_retransmits_before_loss_const =
                    v.map_or(Ok(defaults.token_retransmits_before_loss_const), count)?;
            }
            ("token_retransmit", v) => c.token_retransmit = v.map(ms).transpose()?,
            ("hold", v) => c.hold = v.map(ms).transpose()?,
            ("join", v) => c.join = v.map_or(Ok(defaults.join), ms)?,
            ("send_join", v) => c.send_join = v.map_or(Ok(defaults.send_join), ms)?,
            ("consensus", v) => c.consensus = v.map(ms).transpose()?,
            ("merge", v) => c.merge = v.map_or(Ok(defaults.merge), ms)?,
            ("downcheck", v) => c.downcheck = v.map_or(Ok(defaults.downcheck), ms)?,
            ("fail_recv_const", v) => {
                c.fail_recv_const = v.map_or(Ok(defaults.fail_recv_const), count)?;
            }
            ("seqno_unchanged_const", v) => {
                c.seqno_unchanged_const = v.map_or(Ok(defaults.seqno_unchanged_const), count)?;
            }
            ("window_size", v) => c.window_size = v.map_or(Ok(defaults.window_size), count)?,
            ("max_messages", v) => c.max_messages = v.map_or(Ok(defaults.max_messages), count)?,
            ("miss_count_const", v) => {
                c.miss_count_const = v.map_or(Ok(defaults.miss_count_const), count)?;
            }
            ("cancel_token_hold_on_retransmit", v) => {
                c.cancel_token_hold_on_retransmit = match v {
                    None => defaults.cancel_token_hold_on_retransmit,
                    Some(v) => yes_no(v)
                        .ok_or_else(|| format!("{key} takes yes or no (str) or 0 or 1, not {v}"))?,
                };
            }
            _ => {}
        }
    }
    Ok(c)
}

fn yes_no(v: &Value) -> Option<bool> {
    match (v.as_integer(), v.as_str()) {
        (Some(0), _) => Some(false),
        (Some(1), _) => Some(true),
        (_, Some("yes" | "on" | "true" | "1")) => Some(true),
        (_, Some("no" | "off" | "false" | "0")) => Some(false),
        _ => None,
    }
}

/// totemd's [`WritePolicy`]: live `totem.*` keys are checked against the ring's rules
/// (so a write the ring would refuse is refused before it lands); the other keys of the
/// configuration file are refused with the way to change them; other keys are free.
#[derive(Debug, Clone)]
pub struct NodePolicy {
    /// The ring configuration the node runs with (node id, frame size, ...: what cannot
    /// change live).
    pub base: totem_ring::Config,
}

impl WritePolicy for NodePolicy {
    fn check(&self, db: &Db, key: &str, new: Option<&Value>) -> Result<(), Refusal> {
        if let Some(name) = key.strip_prefix("totem.") {
            if !LIVE_TOTEM_KEYS.contains(&name) {
                return Err(Refusal::new(
                    CsError::NotSupported,
                    format!(
                        "{key} cannot change while the node runs: edit the configuration file and restart the node (live: totem.{})",
                        LIVE_TOTEM_KEYS.join(", totem.")
                    ),
                ));
            }
            let cfg = ring_config(&self.base, db, Some((key, new)))
                .map_err(|e| Refusal::new(CsError::InvalidParam, e))?;
            return cfg
                .effective()
                .map(drop)
                .map_err(|e| Refusal::new(CsError::InvalidParam, e.to_string()));
        }
        if let Some(section) = FILE_SECTIONS.iter().find(|p| key.starts_with(**p)) {
            let how = if *section == "nodelist." {
                "edit the nodelist in the configuration file; adding or removing a node needs a restart of every node"
            } else {
                "edit the configuration file and run `totemctl reload` (README: which keys reload live)"
            };
            return Err(Refusal::new(
                CsError::NotSupported,
                format!("{key} comes from the configuration file: {how}"),
            ));
        }
        Ok(())
    }
}

/// Sets an owner key whose name is known to be valid (constant or built from numbers).
fn set(db: &mut Db, key: &str, value: Value) {
    if let Err(e) = db.set_internal(key, value) {
        tracing::warn!("cmap: cannot set {key}: {e}");
    }
}

/// The node's members, as corosync's `runtime.members.<id>.*`: `status` joined or left,
/// `ip` as `r(0) ip(<addr>)`, `join_count` (times it joined while this node watched) and
/// `config_version` (0: not implemented). Members that left keep their keys with status
/// `left`.
pub fn publish_members(db: &mut Db, cfg: &DaemonConfig, members: &[NodeId]) {
    let known: Vec<u32> = db
        .iter_prefix("runtime.members.")
        .filter_map(|(k, _)| {
            k["runtime.members.".len()..]
                .split('.')
                .next()?
                .parse()
                .ok()
        })
        .collect();
    for id in known {
        if !members.contains(&NodeId(id)) {
            set(
                db,
                &format!("runtime.members.{id}.status"),
                Value::String("left".into()),
            );
        }
    }
    for m in members {
        let p = format!("runtime.members.{}", m.0);
        let status = format!("{p}.status");
        let joined = db.get(&status).and_then(Value::as_str) == Some("joined");
        if !joined {
            let count = db
                .get(&format!("{p}.join_count"))
                .and_then(Value::as_integer)
                .unwrap_or(0);
            set(
                db,
                &format!("{p}.join_count"),
                Value::U32(u32::try_from(count + 1).unwrap_or(u32::MAX)),
            );
        }
        if let Some(n) = cfg.node(*m) {
            set(
                db,
                &format!("{p}.ip"),
                Value::String(format!("r(0) ip({})", n.addr)),
            );
        }
        set(db, &format!("{p}.config_version"), Value::U64(0));
        set(db, &status, Value::String("joined".into()));
    }
    let mut list = String::new();
    for m in members {
        let _ = write!(list, "{}{}", if list.is_empty() { "" } else { " " }, m.0);
    }
    set(db, "runtime.totem.members", Value::String(list));
}

/// Counters the daemon publishes once a second (only the ones that changed notify).
#[derive(Debug, Clone, Default)]
pub struct Runtime {
    /// The ring id (`rep.seq`, decimal).
    pub ring_id: String,
    /// The ring's state.
    pub state: String,
    /// Frames sent, datagrams received, sends that would block, send errors.
    pub frames: [u64; 4],
    /// Datagrams that arrived truncated.
    pub rx_truncated: u64,
    /// IPC: active connections, accepted, refused, requests, events, events that waited,
    /// events dropped, slow clients disconnected.
    pub ipc: [u64; 8],
    /// Services synchronised; sync rounds completed.
    pub synchronized: bool,
    /// Sync rounds completed.
    pub sync_completed: u64,
}

/// Publishes the ring's counters (`runtime.totem.pg.mrp.srp.*`, corosync 2's names for the
/// ones it has) and the daemon's own (`runtime.totem.*`, `runtime.connections.*`,
/// `runtime.ipc.*`, `runtime.services.*`).
pub fn publish_stats(db: &mut Db, s: &Stats, r: &Runtime) {
    let srp: [(&str, u64); 43] = [
        ("orf_token_tx", s.orf_token_tx),
        ("orf_token_rx", s.orf_token_rx),
        ("orf_token_duplicate", s.orf_token_duplicate),
        ("token_retransmits", s.token_retransmits),
        ("memb_merge_detect_tx", s.memb_merge_detect_tx),
        ("memb_merge_detect_rx", s.memb_merge_detect_rx),
        ("memb_join_tx", s.memb_join_tx),
        ("memb_join_rx", s.memb_join_rx),
        ("mcast_tx", s.mcast_tx),
        ("mcast_retx", s.mcast_retx),
        ("mcast_rx", s.mcast_rx),
        ("mcast_stored", s.mcast_stored),
        ("memb_commit_token_tx", s.memb_commit_token_tx),
        ("memb_commit_token_rx", s.memb_commit_token_rx),
        ("token_hold_cancel_tx", s.token_hold_cancel_tx),
        ("token_hold_cancel_rx", s.token_hold_cancel_rx),
        ("operational_entered", s.operational_entered),
        ("operational_token_lost", s.operational_token_lost),
        ("gather_entered", s.gather_entered),
        ("gather_token_lost", s.gather_token_lost),
        ("commit_entered", s.commit_entered),
        ("commit_token_lost", s.commit_token_lost),
        ("recovery_entered", s.recovery_entered),
        ("recovery_token_lost", s.recovery_token_lost),
        ("consensus_timeouts", s.consensus_timeouts),
        (
            "rx_msg_dropped",
            s.rx_malformed
                + s.rx_other_cluster
                + s.rx_stale
                + s.mcast_duplicate
                + s.mcast_out_of_window
                + r.rx_truncated,
        ),
        ("delivered", s.delivered),
        ("delivered_safe", s.delivered_safe),
        ("rtr_requested", s.rtr_requested),
        ("failed_to_recv", s.failed_to_recv),
        ("recovery_retransmits", s.recovery_retransmits),
        ("bad_pack", s.bad_pack),
        ("fragments_discarded", s.fragments_discarded),
        ("submit_backpressure", s.submit_backpressure),
        ("submit_too_large", s.submit_too_large),
        ("rx_own", s.rx_own),
        ("rx_malformed", s.rx_malformed),
        ("rx_other_cluster", s.rx_other_cluster),
        ("rx_stale", s.rx_stale),
        ("mcast_duplicate", s.mcast_duplicate),
        ("mcast_out_of_window", s.mcast_out_of_window),
        ("rx_truncated", r.rx_truncated),
        ("token_rotations", s.orf_token_rx),
    ];
    for (k, v) in srp {
        set(db, &format!("runtime.totem.pg.mrp.srp.{k}"), Value::U64(v));
    }
    let dropped = [
        ("malformed", s.rx_malformed),
        ("other_cluster", s.rx_other_cluster),
        ("stale", s.rx_stale),
        ("duplicate", s.mcast_duplicate),
        ("out_of_window", s.mcast_out_of_window),
        ("truncated", r.rx_truncated),
    ];
    for (k, v) in dropped {
        set(db, &format!("runtime.totem.dropped.{k}"), Value::U64(v));
    }
    for (k, v) in ["tx", "rx", "would_block", "errors"]
        .into_iter()
        .zip(r.frames)
    {
        set(db, &format!("runtime.totem.frames.{k}"), Value::U64(v));
    }
    set(
        db,
        "runtime.totem.ring_id",
        Value::String(r.ring_id.clone()),
    );
    set(db, "runtime.totem.state", Value::String(r.state.clone()));
    let [
        active,
        accepted,
        refused,
        requests,
        events,
        full,
        dropped,
        slow,
    ] = r.ipc;
    for (k, v) in [
        ("runtime.connections.active", active),
        (
            "runtime.connections.closed",
            accepted.saturating_sub(active),
        ),
        ("runtime.connections.accepted", accepted),
        ("runtime.connections.refused", refused),
        ("runtime.ipc.requests", requests),
        ("runtime.ipc.events", events),
        ("runtime.ipc.events_full", full),
        ("runtime.ipc.events_dropped", dropped),
        ("runtime.ipc.slow_clients", slow),
        ("runtime.services.sync_completed", r.sync_completed),
    ] {
        set(db, k, Value::U64(v));
    }
    set(
        db,
        "runtime.services.synchronized",
        Value::U8(u8::from(r.synchronized)),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn config(extra_totem: &str) -> DaemonConfig {
        let text = format!(
            "totem {{\n version: 2\n cluster_name: c\n transport: udpu\n{extra_totem}\n interface {{\n  mcastport: 5405\n }}\n}}\nnodelist {{\n node {{\n  ring0_addr: 127.0.0.1\n  nodeid: 1\n }}\n node {{\n  ring0_addr: 127.0.0.2\n  nodeid: 2\n }}\n node {{\n  ring0_addr: 127.0.0.3\n  nodeid: 3\n }}\n}}\nuidgid {{\n uid: 1000\n}}\n"
        );
        DaemonConfig::from_str(Path::new("t.conf"), &text).unwrap()
    }

    fn loaded(cfg: &DaemonConfig) -> (Db, totem_ring::Config) {
        let mut base = cfg.ring.clone();
        base.node_id = NodeId(1);
        let eff = base.effective().unwrap();
        let mut db = Db::new();
        let warnings = load(&mut db, cfg, NodeId(1), &eff);
        assert!(warnings.is_empty(), "{warnings:?}");
        (db, base)
    }

    #[test]
    fn the_file_and_the_effective_values_land_under_corosyncs_names() {
        let (db, _) = loaded(&config(""));
        let get = |k: &str| db.get(k).cloned();
        assert_eq!(get("runtime.config.totem.token"), Some(Value::U32(3650)));
        assert_eq!(
            get("runtime.config.totem.consensus"),
            Some(Value::U32(4380))
        );
        assert_eq!(
            get("runtime.config.totem.token_retransmit"),
            Some(Value::U32(869))
        );
        assert_eq!(get("totem.cluster_name"), Some(Value::String("c".into())));
        assert_eq!(get("totem.interface.0.mcastport"), Some(Value::U32(5405)));
        assert_eq!(get("nodelist.node.2.nodeid"), Some(Value::U32(3)));
        assert_eq!(
            get("nodelist.node.1.ring0_addr"),
            Some(Value::String("127.0.0.2".into()))
        );
        assert_eq!(get("nodelist.local_node_pos"), Some(Value::U32(0)));
        assert_eq!(get("uidgid.uid.1000"), Some(Value::U8(1)));
        assert!(db.is_read_only("runtime.config.totem.token"));
        assert!(!db.is_read_only("totem.token"));
    }

    #[test]
    fn the_policy_applies_live_keys_checks_them_and_refuses_the_rest() {
        let (db, base) = loaded(&config(""));
        let p = NodePolicy { base: base.clone() };
        assert_eq!(p.check(&db, "totem.token", Some(&Value::U32(5000))), Ok(()));
        assert_eq!(p.check(&db, "totem.token", None), Ok(()));
        let r = p
            .check(
                &db,
                "totem.token_retransmits_before_loss_const",
                Some(&Value::U32(0)),
            )
            .unwrap_err();
        assert_eq!(r.error, CsError::InvalidParam);
        assert!(r.reason.contains("at least 1"), "{}", r.reason);
        // The ring's 30 ms minimum applies to the scaled token: 10 + 650 is fine, and a
        // token_retransmit of 10 ms is not.
        assert_eq!(p.check(&db, "totem.token", Some(&Value::U32(10))), Ok(()));
        let r = p
            .check(&db, "totem.token_retransmit", Some(&Value::U32(10)))
            .unwrap_err();
        assert!(r.reason.contains("token_retransmit"), "{}", r.reason);
        let r = p
            .check(&db, "totem.token", Some(&Value::String("abc".into())))
            .unwrap_err();
        assert!(r.reason.contains("whole number"), "{}", r.reason);
        let r = p
            .check(&db, "totem.netmtu", Some(&Value::U32(9000)))
            .unwrap_err();
        assert_eq!(r.error, CsError::NotSupported);
        assert!(r.reason.contains("restart"));
        let r = p
            .check(
                &db,
                "nodelist.node.3.ring0_addr",
                Some(&Value::String("x".into())),
            )
            .unwrap_err();
        assert!(r.reason.contains("restart"));
        assert!(p.check(&db, "logging.debug", None).is_err());
        assert_eq!(p.check(&db, "test.anything", Some(&Value::U8(1))), Ok(()));

        // The ring configuration follows the database: set, and deleted → default.
        let mut db = db;
        db.set("totem.token", Value::U32(5000)).unwrap();
        let c = ring_config(&base, &db, None).unwrap();
        let e = c.effective().unwrap();
        assert_eq!(
            (e.token.total_millis(), e.consensus.total_millis()),
            (5650, 6780)
        );
        db.delete("totem.token").unwrap();
        let c = ring_config(&base, &db, None).unwrap();
        assert_eq!(c.effective().unwrap().token.total_millis(), 3650);
    }

    #[test]
    fn reload_changes_only_what_the_file_changed() {
        let (mut db, _) = loaded(&config(" token: 1000"));
        let t = db.track("", objdb::TrackFlags::ALL_PREFIX).unwrap();
        reload(&mut db, &config(" token: 2000"), false);
        let changes: Vec<String> = core::iter::from_fn(|| db.poll(t))
            .filter_map(|n| match n {
                objdb::Notice::Change(c) => Some(format!("{} {}", c.kind.name(), c.key)),
                objdb::Notice::Lost(_) => None,
            })
            .collect();
        assert_eq!(
            changes,
            [
                "modify config.reload_in_progress",
                "modify totem.token",
                "modify config.reload_in_progress"
            ]
        );
        reload(&mut db, &config(""), false);
        assert_eq!(db.get("totem.token"), None);
    }

    #[test]
    fn members_join_leave_and_count() {
        let cfg = config("");
        let mut db = Db::new();
        publish_members(&mut db, &cfg, &[NodeId(1), NodeId(2)]);
        publish_members(&mut db, &cfg, &[NodeId(1)]);
        publish_members(&mut db, &cfg, &[NodeId(1), NodeId(2), NodeId(3)]);
        let s = |db: &Db, k: &str| db.get(k).cloned();
        assert_eq!(s(&db, "runtime.members.2.join_count"), Some(Value::U32(2)));
        assert_eq!(s(&db, "runtime.members.1.join_count"), Some(Value::U32(1)));
        assert_eq!(
            s(&db, "runtime.members.3.ip"),
            Some(Value::String("r(0) ip(127.0.0.3)".into()))
        );
        publish_members(&mut db, &cfg, &[NodeId(1), NodeId(3)]);
        assert_eq!(
            s(&db, "runtime.members.2.status"),
            Some(Value::String("left".into()))
        );
        assert_eq!(
            s(&db, "runtime.totem.members"),
            Some(Value::String("1 3".into()))
        );
    }
}
