//! Config file tests: a real corosync.conf, every error with its line, warnings.

use std::path::Path;

use super::*;

const GOOD: &str = "\
# a corosync 3 style file
totem {
    version: 2
    cluster_name: demo
    transport: udpu
    token: 1000
    interface {
        linknumber: 0
        mcastport: 5405
    }
}

nodelist {
    node {
        ring0_addr: 127.0.0.1
        name: n1
        nodeid: 1
    }
    node {
        ring0_addr: 127.0.0.2
        name: n2
        nodeid: 2
    }
    node {
        ring0_addr: 127.0.0.3
        name: n3
        nodeid: 3
    }
}

quorum {
    provider: corosync_votequorum
}

logging {
    to_stderr: yes
    debug: off
}
";

fn load(text: &str) -> Result<DaemonConfig, ConfigError> {
    DaemonConfig::from_str(Path::new("/etc/totem/totem.conf"), text)
}

fn err_at(text: &str) -> (u32, String) {
    let e = load(text).unwrap_err();
    (e.line, e.reason)
}

#[test]
fn a_corosync_conf_loads_with_effective_values() {
    let c = load(GOOD).unwrap();
    assert_eq!(c.transport, TransportKind::Udpu);
    assert_eq!(c.nodes.len(), 3);
    assert_eq!(c.nodes[1].name.as_deref(), Some("n2"));
    assert_eq!(
        c.ring_addr(NodeId(3)).unwrap().to_string(),
        "127.0.0.3:5405"
    );
    // Three nodes: token 1000 + 650 (token_coefficient), as corosync.
    let eff = c.ring.effective().unwrap();
    assert_eq!(eff.token, Duration::from_millis(1650));
    assert_eq!(c.ring.frame_len, 1472);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    assert!(
        c.flat
            .iter()
            .any(|(k, v, _)| k == "nodelist.node.2.ring0_addr" && v == "127.0.0.3")
    );
    assert!(
        c.flat
            .iter()
            .any(|(k, v, _)| k == "totem.interface.mcastport" && v == "5405")
    );
    assert!(
        c.flat
            .iter()
            .any(|(k, v, _)| k == "quorum.provider" && v == "corosync_votequorum")
    );
}

#[test]
fn the_cluster_id_follows_the_cluster_name() {
    let a = load(GOOD).unwrap();
    let b = load(&GOOD.replace("cluster_name: demo", "cluster_name: other")).unwrap();
    assert_ne!(a.cluster_id, b.cluster_id);
    let c = load(&GOOD.replace(
        "cluster_name: demo",
        "cluster_name: demo\n    cluster_id: 77",
    ))
    .unwrap();
    assert_eq!(c.cluster_id, 77);
}

#[test]
fn knet_runs_as_udpu_with_a_warning() {
    let c = load(&GOOD.replace("transport: udpu", "transport: knet")).unwrap();
    assert_eq!(c.transport, TransportKind::Udpu);
    assert!(
        c.warnings
            .iter()
            .any(|(l, w)| *l == 5 && w.contains("knet"))
    );
    // Absent transport means knet, as in corosync 3.
    let c = load(&GOOD.replace("    transport: udpu\n", "")).unwrap();
    assert!(c.warnings.iter().any(|(_, w)| w.contains("knet")));
}

#[test]
fn crypto_is_refused_never_silently_plaintext() {
    let (line, why) =
        err_at(&GOOD.replace("token: 1000", "token: 1000\n    crypto_cipher: aes256"));
    assert_eq!(line, 7);
    assert!(why.contains("not supported"), "{why}");
    assert!(
        load(&GOOD.replace(
            "token: 1000",
            "token: 1000\n    crypto_cipher: none\n    crypto_hash: none"
        ))
        .is_ok()
    );
    assert!(load(&GOOD.replace("token: 1000", "token: 1000\n    secauth: on")).is_err());
}

#[test]
fn unknown_keys_warn_and_removed_keys_are_noted() {
    let c = load(&GOOD.replace(
        "token: 1000",
        "token: 1000\n    frobnicate: 3\n    threads: 2",
    ))
    .unwrap();
    assert!(
        c.warnings
            .iter()
            .any(|(l, w)| *l == 7 && w.contains("frobnicate"))
    );
    assert!(
        c.warnings
            .iter()
            .any(|(l, w)| *l == 8 && w.contains("removed"))
    );
}

#[test]
fn wrong_values_name_file_line_and_reason() {
    assert_eq!(err_at(&GOOD.replace("token: 1000", "token: fast")).0, 6);
    assert_eq!(err_at(&GOOD.replace("version: 2", "version: 3")).0, 3);
    assert_eq!(
        err_at(&GOOD.replace("transport: udpu", "transport: carrier-pigeon")).0,
        5
    );
    assert_eq!(
        err_at(&GOOD.replace("mcastport: 5405", "mcastport: 70000")).0,
        9
    );
    // A timer below corosync's minimum, reported at its own line.
    let (line, why) = err_at(&GOOD.replace("token: 1000", "token: 1000\n    join: 5"));
    assert_eq!(line, 7);
    assert!(why.contains("join"), "{why}");
    let e = load(&GOOD.replace("token: 1000", "token: x")).unwrap_err();
    assert!(
        e.to_string().starts_with("/etc/totem/totem.conf:6: "),
        "{e}"
    );
}

#[test]
fn nodelist_errors() {
    let no_nodelist = GOOD.split("nodelist {").next().unwrap().to_owned() + "logging {\n}\n";
    assert!(err_at(&no_nodelist).1.contains("nodelist"));
    let (line, why) = err_at(&GOOD.replace("nodeid: 2", "nodeid: 1"));
    assert_eq!(line, 22);
    assert!(why.contains("duplicate nodeid 1"), "{why}");
    assert!(
        err_at(&GOOD.replace("ring0_addr: 127.0.0.2", "ring0_addr: 127.0.0.1"))
            .1
            .contains("duplicate ring0_addr")
    );
    assert_eq!(err_at(&GOOD.replace("nodeid: 3", "nodeid: 0")).0, 27);
    let (line, why) = err_at(&GOOD.replace("ring0_addr: 127.0.0.3", "ring0_addr: not an address!"));
    assert_eq!(line, 25);
    assert!(why.contains("ring0_addr"), "{why}");
    assert!(
        err_at(&GOOD.replace("ring0_addr: 127.0.0.3", "ring0_addr: fd13:213::3"))
            .1
            .contains("mix IPv4 and IPv6")
    );
    assert!(
        err_at(&GOOD.replace("        nodeid: 3\n", ""))
            .1
            .contains("without nodeid")
    );
}

#[test]
fn syntax_errors_pass_through_with_their_line() {
    let (line, _) = err_at(&GOOD.replace(
        "    node {\n        ring0_addr: 127.0.0.1",
        "    node { ring0_addr: 127.0.0.1",
    ));
    assert_eq!(line, 14);
}

#[test]
fn the_local_node_is_the_one_with_a_local_address() {
    let text = GOOD
        .replace("127.0.0.2", "10.213.255.254")
        .replace("127.0.0.3", "10.213.255.253");
    let c = load(&text).unwrap();
    // 10.213.255.x is not configured on this host; 127.0.0.1 is.
    assert_eq!(c.local_node(None).unwrap(), NodeId(1));
    // On 127.0.0.x every address is local: the node must be named.
    let c = load(GOOD).unwrap();
    assert!(c.local_node(None).unwrap_err().reason.contains("--nodeid"));
    assert_eq!(c.local_node(Some(NodeId(2))).unwrap(), NodeId(2));
    assert!(c.local_node(Some(NodeId(9))).is_err());
}

#[test]
fn fault_injection_is_off_unless_configured_and_then_loud() {
    assert_eq!(load(GOOD).unwrap().fault, FaultInjection::default());
    let c = load(&GOOD.replace(
        "token: 1000",
        "token: 1000\n    fault_injection {\n        drop_percent: 2.5\n    }",
    ))
    .unwrap();
    assert_eq!(c.fault.drop_ppm, 25_000);
    assert!(
        c.warnings
            .iter()
            .any(|(_, w)| w.contains("fault injection is ON"))
    );
    assert!(
        load(&GOOD.replace(
            "token: 1000",
            "token: 1000\n    fault_injection {\n        drop_percent: 101\n    }"
        ))
        .is_err()
    );
}

#[test]
fn uidgid_sections_grant_users_and_groups() {
    assert!(load(GOOD).unwrap().uidgid.is_empty());
    // The sections below start on the line after GOOD's last.
    let l = GOOD.lines().count() as u32;
    let text = format!(
        "{GOOD}uidgid {{\n    uid: 1000\n    gid: 100\n}}\nuidgid {{\n    uid: root\n    access: read\n}}\nuidgid {{\n    gid: 0\n    access: full\n}}\n"
    );
    let c = load(&text).unwrap();
    assert_eq!(
        c.uidgid,
        vec![
            UidGid {
                uid: Some(1000),
                gid: Some(100),
                access: Access::Full,
                line: l + 1,
            },
            UidGid {
                uid: Some(0),
                gid: None,
                access: Access::Read,
                line: l + 5,
            },
            UidGid {
                uid: None,
                gid: Some(0),
                access: Access::Full,
                line: l + 9,
            },
        ]
    );
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    let flat: Vec<(&str, &str)> = c
        .flat
        .iter()
        .filter(|(k, _, _)| k.starts_with("uidgid."))
        .map(|(k, v, _)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        flat,
        [
            ("uidgid.uid.1000", "1"),
            ("uidgid.gid.100", "1"),
            ("uidgid.uid.0", "read"),
            ("uidgid.gid.0", "1"),
        ]
    );
}

#[test]
fn uidgid_errors_name_the_line() {
    let at = |body: &str| err_at(&format!("{GOOD}uidgid {{\n{body}\n}}\n"));
    let l = GOOD.lines().count() as u32;
    // A negative or oversized uid, a name nobody has, an unknown access value.
    let (line, reason) = at("    uid: -1");
    assert_eq!(line, l + 2);
    assert!(
        reason.contains("uidgid.uid must be a user name or a number"),
        "{reason}"
    );
    let (line, reason) = at("    access: read\n    gid: 4294967296");
    assert_eq!(line, l + 3);
    assert!(reason.contains("uidgid.gid"), "{reason}");
    let (line, reason) = at("    uid: no-such-user-here");
    assert_eq!(line, l + 2);
    assert!(
        reason.contains("no user \"no-such-user-here\" in /etc/passwd"),
        "{reason}"
    );
    let (line, reason) = at("    uid: 1000\n    access: write");
    assert_eq!(line, l + 3);
    assert!(
        reason.contains("uidgid.access must be read or full, not \"write\""),
        "{reason}"
    );
    let (line, reason) = at("    access: read");
    assert_eq!(line, l + 1);
    assert!(reason.contains("without uid or gid"), "{reason}");
    let (line, reason) = at("    uid: 1\n    uid: 2");
    assert_eq!(line, l + 3);
    assert!(reason.contains("a second uid"), "{reason}");
    // The error names the file too.
    let e = load(&format!("{GOOD}uidgid {{\n    uid: x1\n}}\n")).unwrap_err();
    let prefix = format!("/etc/totem/totem.conf:{}: ", l + 2);
    assert!(e.to_string().starts_with(&prefix), "{e}");
}

#[test]
fn user_and_group_names_are_looked_up_in_passwd_format() {
    let passwd =
        "root:x:0:0:root:/root:/bin/sh\nhacluster:x:189:189::/var/lib/pacemaker:/sbin/nologin\n";
    assert_eq!(lookup_id(passwd, "hacluster"), Some(189));
    assert_eq!(lookup_id(passwd, "root"), Some(0));
    assert_eq!(lookup_id(passwd, "hacl"), None);
    assert_eq!(lookup_id("broken", "broken"), None);
}

#[test]
fn adaptive_token_retransmit_is_on_unless_turned_off() {
    assert!(load(GOOD).unwrap().ring.adaptive_token_retransmit);
    let off = GOOD.replace(
        "token: 1000",
        "token: 1000\n    adaptive_token_retransmit: off",
    );
    assert!(!load(&off).unwrap().ring.adaptive_token_retransmit);
    let bad = GOOD.replace(
        "token: 1000",
        "token: 1000\n    adaptive_token_retransmit: maybe",
    );
    let (line, why) = err_at(&bad);
    assert_eq!(line, 7, "{why}");
}

#[test]
fn window_size_defaults_to_what_the_receive_buffer_holds_unless_set() {
    use super::default_window;
    // Root: the 4 MiB request is forced (8 MiB as the kernel counts it).
    assert_eq!(default_window(1500, 8 << 20), 200);
    // Without root, capped by Linux's default rmem_max (212 992, counted twice).
    assert_eq!(default_window(1500, 425_984), 84);
    // Never below corosync's 50.
    assert_eq!(default_window(1500, 0), 50);
    assert_eq!(default_window(9000, 512 << 10), 50);
    let window = load(GOOD).unwrap().ring.window_size;
    assert!((50..=200).contains(&window), "{window}");
    let set = GOOD.replace("token: 1000", "token: 1000\n    window_size: 50");
    assert_eq!(load(&set).unwrap().ring.window_size, 50);
}
