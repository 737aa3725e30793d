//! cmap end to end, with real daemons (127.0.0.x, udpu): `totemctl cmap` on a three-node
//! cluster with corosync's default timers (the derived token 3650 ms, live `totem.token`
//! writes and their refusals, a tracker seeing a member leave), the client library's
//! blocking and async forms, a read-only user refused on write, and malformed requests
//! answered with errors while the daemon keeps running.

extern crate alloc;

mod common;

use core::time::Duration;
use std::io::BufRead as _;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;

use common::{Cluster, eventually, session, totemctl};
use services::cmap::wire::{Request, Response, ResponseBody};
use services::cpg::wire::CsError;
use services::service_id;
use totem_client::cmap::{Cmap, Event, TrackFlags, Value};

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `totemctl -s <socket of node id> cmap <args>`, as root.
fn cmap(cluster: &Cluster, id: u32, args: &[&str]) -> Output {
    let sock = cluster.socket(id);
    let mut all = vec!["-s", sock.to_str().unwrap(), "cmap"];
    all.extend_from_slice(args);
    totemctl(&all, None)
}

/// `totemctl cmap get KEY` must print exactly `line`.
fn assert_get(cluster: &Cluster, id: u32, key: &str, line: &str) {
    let out = cmap(cluster, id, &["get", key]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stdout, format!("{line}\n"));
}

/// The daemon's count of cmap trackers (its own `totem.*` tracker included).
fn trackers(cluster: &Cluster, id: u32) -> usize {
    let status = cluster.control(id, "status");
    let line = status
        .lines()
        .find(|l| l.starts_with("cmap: "))
        .unwrap_or_else(|| panic!("no cmap line in {status}"));
    line.split(" trackers ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// Three nodes with no timers in the file: `runtime.config.totem.token` is the derived
/// 3650 ms; a `totem.token` write reconfigures the ring and its delete reverts it; writes
/// that need a restart or break the ring's rules are refused with the reason; and
/// `totemctl cmap track runtime.members.` sees node 3 leave.
#[test]
fn three_nodes_show_the_derived_token_apply_live_writes_and_track_members() {
    let cluster = Cluster::start_default_timers("cmap3", 3, 25521, "");
    for id in 1..=3 {
        assert_get(
            &cluster,
            id,
            "runtime.config.totem.token",
            "runtime.config.totem.token (u32) = 3650",
        );
    }
    let out = cmap(&cluster, 1, &["list", "runtime.config.totem."]);
    let (list, _) = text(&out);
    assert!(
        list.contains("runtime.config.totem.consensus (u32) = 4380\n"),
        "{list}"
    );
    assert!(
        list.contains("runtime.config.totem.token_retransmit (u32) = 869\n"),
        "{list}"
    );
    // Key order, and the file's keys under corosync's names.
    let keys: Vec<&str> = list.lines().map(|l| l.split(' ').next().unwrap()).collect();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(keys, sorted);
    assert_get(
        &cluster,
        1,
        "totem.interface.0.mcastport",
        "totem.interface.0.mcastport (u32) = 25521",
    );
    assert_get(
        &cluster,
        2,
        "nodelist.local_node_pos",
        "nodelist.local_node_pos (u32) = 1",
    );
    assert_get(
        &cluster,
        1,
        "runtime.members.3.status",
        "runtime.members.3.status (str) = joined",
    );

    // A live write: the ring takes it (token 5000 + 650 for the third node), consensus
    // follows; deleting the key reverts to the default.
    let out = cmap(&cluster, 1, &["set", "totem.token", "u32", "5000"]);
    assert!(out.status.success(), "{:?}", text(&out));
    assert_get(
        &cluster,
        1,
        "runtime.config.totem.token",
        "runtime.config.totem.token (u32) = 5650",
    );
    assert_get(
        &cluster,
        1,
        "runtime.config.totem.consensus",
        "runtime.config.totem.consensus (u32) = 6780",
    );
    // Only on that node, as corosync.
    assert_get(
        &cluster,
        2,
        "runtime.config.totem.token",
        "runtime.config.totem.token (u32) = 3650",
    );
    assert!(
        cluster
            .log(1)
            .contains("cmap: totem.token changed: token 5650ms"),
        "{}",
        cluster.log(1)
    );
    let out = cmap(&cluster, 1, &["del", "totem.token"]);
    assert!(out.status.success(), "{:?}", text(&out));
    assert_get(
        &cluster,
        1,
        "runtime.config.totem.token",
        "runtime.config.totem.token (u32) = 3650",
    );

    // Refusals, each with its code and reason.
    for (args, code, why) in [
        (
            &["set", "totem.netmtu", "u32", "9000"][..],
            "CS_ERR_NOT_SUPPORTED",
            "restart",
        ),
        (
            &[
                "set",
                "totem.token_retransmits_before_loss_const",
                "u32",
                "0",
            ][..],
            "CS_ERR_INVALID_PARAM",
            "at least 1",
        ),
        (
            &["set", "totem.join", "str", "soon"][..],
            "CS_ERR_INVALID_PARAM",
            "whole number",
        ),
        (
            &["set", "runtime.config.totem.token", "u32", "1"][..],
            "CS_ERR_ACCESS",
            "read-only",
        ),
        (
            &["set", "nodelist.node.0.nodeid", "u32", "9"][..],
            "CS_ERR_NOT_SUPPORTED",
            "nodelist",
        ),
        (&["get", "no.such.key"][..], "CS_ERR_NOT_EXIST", "no key"),
        (&["del", "no.such.key"][..], "CS_ERR_NOT_EXIST", "no key"),
    ] {
        let out = cmap(&cluster, 1, args);
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains(code) && stderr.contains(why),
            "{args:?}: {stderr}"
        );
    }
    let out = cmap(&cluster, 1, &["set", "test.key", "u32", "abc"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(text(&out).1, "abc is not valid u32 type value\n");

    // A tracker on node 1 sees node 3 leave.
    let sock = cluster.socket(1);
    let mut track = Command::new(common::TOTEMCTL)
        .args([
            "-s",
            sock.to_str().unwrap(),
            "cmap",
            "track",
            "runtime.members.",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stdout = track.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    eventually("the tracker is registered", || {
        (trackers(&cluster, 1) == 2).then_some(())
    });
    assert_eq!(cluster.control(3, "leave"), "leaving\n");
    let want = "modify> runtime.members.3.status (str) = left";
    let mut seen = Vec::new();
    eventually(&format!("{want:?} from the tracker"), || {
        while let Ok(line) = rx.try_recv() {
            seen.push(line);
        }
        seen.iter().any(|l| l == want).then_some(())
    });
    track.kill().unwrap();
    track.wait().unwrap();
    assert_get(
        &cluster,
        1,
        "runtime.members.3.status",
        "runtime.members.3.status (str) = left",
    );
    assert_get(
        &cluster,
        1,
        "runtime.totem.members",
        "runtime.totem.members (str) = 1 2",
    );
}

/// The client library against a real daemon, blocking and async: typed get/set, inc,
/// iteration by prefix, and tracking with events (own writes and the daemon's).
#[test]
fn the_client_library_reads_writes_iterates_and_tracks() {
    let cluster = Cluster::start("cmaplib", 1, 25531, "");
    let sock = cluster.socket(1);
    let mut c = Cmap::initialize_at(&sock).unwrap();
    assert_eq!(c.get_as::<u32>("runtime.config.totem.token").unwrap(), 500);
    assert_eq!(
        c.get_as::<String>("totem.cluster_name").unwrap(),
        cluster.dir.file_name().unwrap().to_string_lossy()
    );
    assert!(matches!(
        c.get_as::<u64>("runtime.config.totem.token"),
        Err(totem_client::Error::InvalidParam)
    ));
    let t = c.track_add("app.", TrackFlags::ALL_PREFIX).unwrap();
    c.set("app.counter", 7u64).unwrap();
    assert_eq!(c.inc("app.counter").unwrap(), Value::U64(8));
    c.set("app.name", "hello").unwrap();
    c.delete("app.name").unwrap();
    let mut events = Vec::new();
    while events.len() < 4 {
        match c.next_event(Some(Duration::from_secs(10))).unwrap() {
            Some(Event::Changed {
                track, kind, key, ..
            }) => {
                assert_eq!(track, t);
                events.push(format!("{} {key}", kind.name()));
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        events,
        [
            "create app.counter",
            "modify app.counter",
            "create app.name",
            "delete app.name"
        ]
    );
    // Iteration pages through every runtime key, in order, as list does.
    let all: Vec<String> = c.iter("runtime.").map(|r| r.unwrap().0).collect();
    assert!(all.len() > 60, "{}", all.len());
    assert!(all.windows(2).all(|w| w[0] < w[1]));
    assert!(
        all.iter()
            .any(|k| k == "runtime.totem.pg.mrp.srp.orf_token_rx")
    );
    let err = c.set("runtime.connections.active", 1u64).unwrap_err();
    assert_eq!(err, totem_client::Error::Access);
    assert!(c.last_error_reason().contains("read-only"));
    assert!(matches!(c.get("x"), Err(totem_client::Error::NameTooLong)));

    // The async form: a tracker sees the statistics the daemon publishes once a second.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut a = totem_client::cmap::AsyncCmap::initialize_at(sock.clone())
            .await
            .unwrap();
        a.track_add("runtime.ipc.requests", TrackFlags::ALL)
            .await
            .unwrap();
        let ev = tokio::time::timeout(Duration::from_secs(10), a.next_event())
            .await
            .unwrap()
            .unwrap();
        assert!(
            matches!(ev, Event::Changed { ref key, .. } if key == "runtime.ipc.requests"),
            "{ev:?}"
        );
        a.set("app.async", Value::Double(0.5)).await.unwrap();
        assert_eq!(a.get("app.async").await.unwrap(), Value::Double(0.5));
        a.finalize().await.unwrap();
    });
    c.finalize().unwrap();
    assert_eq!(c.get("app.counter"), Err(totem_client::Error::BadHandle));
}

/// A user with `access: read` may read and list through cmap but every write is refused
/// with CS_ERR_ACCESS; root writes.
#[test]
fn a_read_only_user_reads_but_cannot_write() {
    const NOBODY: u32 = 65534;
    let cluster = Cluster::start(
        "cmapro",
        1,
        25491,
        &format!("uidgid {{\n    uid: {NOBODY}\n    access: read\n}}\n"),
    );
    for dir in [cluster.dir.clone(), cluster.node(1).dir.clone()] {
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
    }
    let sock = cluster.socket(1);
    let s = sock.to_str().unwrap();
    let out = totemctl(
        &["-s", s, "cmap", "get", "runtime.config.totem.token"],
        Some(NOBODY),
    );
    assert!(out.status.success(), "{:?}", text(&out));
    assert_eq!(text(&out).0, "runtime.config.totem.token (u32) = 500\n");
    let out = totemctl(&["-s", s, "cmap", "list", "totem."], Some(NOBODY));
    assert!(out.status.success() && text(&out).0.contains("totem.token (u32) = 500\n"));
    for args in [
        &["set", "test.key", "u32", "1"][..],
        &["del", "totem.token"][..],
        &["set", "totem.token", "u32", "600"][..],
    ] {
        let mut all = vec!["-s", s, "cmap"];
        all.extend_from_slice(args);
        let out = totemctl(&all, Some(NOBODY));
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains("CS_ERR_ACCESS") && stderr.contains("read access"),
            "{stderr}"
        );
    }
    let out = totemctl(&["-s", s, "cmap", "set", "test.key", "u32", "1"], None);
    assert!(out.status.success(), "{:?}", text(&out));
    let out = totemctl(&["-s", s, "cmap", "get", "test.key"], Some(NOBODY));
    assert_eq!(text(&out).0, "test.key (u32) = 1\n");
}

/// Malformed cmap requests on a raw session: each gets an error reply, the session and
/// the daemon go on.
#[test]
fn malformed_requests_get_errors_and_the_daemon_stays_up() {
    let mut cluster = Cluster::start("cmapbad", 1, 25501, "");
    let (mut c, error) = session(&cluster.socket(1), service_id::CMAP);
    assert_eq!(error, CsError::Ok);
    let huge_key = [&[1u8, 1, 255][..], &[b'a'; 255][..]].concat();
    for garbage in [
        &b""[..],
        b"\x01",
        b"\x09\x01",
        b"\x01\x77",
        b"\x01\x01\xff",
        b"\x01\x02\x03a.b\x06\x00\x00\x00\x02\x00\x00",
        b"\x01\x02\x03a.b\x0c\xff\xff\xff\xff",
        b"\x01\x07\x00\x03a.b",
        b"\x01\x01\x03\xff\xfe\xfd",
        &huge_key,
        &[0xffu8; 300],
    ] {
        let raw = c.request(garbage).unwrap();
        let r = Response::parse(&raw).unwrap();
        assert_ne!(r.error, CsError::Ok, "{garbage:?}");
    }
    // Still answering, with good requests.
    let raw = c
        .request(
            &Request::Get {
                key: "runtime.config.totem.token".into(),
            }
            .emit()
            .unwrap(),
        )
        .unwrap();
    assert_eq!(
        Response::parse(&raw).unwrap().body,
        ResponseBody::Value(Value::U32(500))
    );
    assert!(cluster.alive(1));
    let status = cluster.control(1, "status");
    assert!(status.starts_with("node 1: ring "), "{status}");
    // Bad command lines never reach the daemon.
    for args in [
        &["cmap"][..],
        &["cmap", "frob"][..],
        &["cmap", "set", "a.b", "u99", "1"][..],
    ] {
        let sock = cluster.socket(1);
        let mut all = vec!["-s", sock.to_str().unwrap()];
        all.extend_from_slice(args);
        let out = totemctl(&all, None);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
    assert!(cluster.alive(1));
}
