//! `cpgbench` (the binary) against the fake daemon: the one-line-per-run output, `--verify`
//! across two members (sender + `--receive-only`, same delivery hash), `--zero-copy` runs,
//! paced latency runs, and a run that must fail (a foreign message in the group).

extern crate alloc;

mod fake;

use core::time::Duration;
use std::process::{Command, Output, Stdio};

use fake::{FakeConfig, FakeDaemon};
use totem_client::cpg::{Cpg, Event, Guarantee};

fn cpgbench(d: &FakeDaemon, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cpgbench"));
    c.arg("--socket")
        .arg(d.socket())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// The `cpg size=...` lines, each as (size, msgs_s, p50, order).
fn lines(out: &Output) -> Vec<(usize, f64, String, String)> {
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            assert_eq!(f.len(), 7, "{l}");
            assert_eq!(f[0], "cpg");
            let val = |i: usize, key: &str| {
                f[i].strip_prefix(key)
                    .unwrap_or_else(|| panic!("{key} in {l}"))
                    .to_owned()
            };
            val(3, "MB_s=").parse::<f64>().unwrap();
            val(5, "p99_us=");
            (
                val(1, "size=").parse().unwrap(),
                val(2, "msgs_s=").parse().unwrap(),
                val(4, "p50_us="),
                val(6, "order="),
            )
        })
        .collect()
}

fn show(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn one_line_per_size_and_order_ok() {
    let d = FakeDaemon::start();
    let out = cpgbench(&d, &["--sizes", "64,4096", "--seconds", "0.5", "--verify"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let l = lines(&out);
    assert_eq!(l.len(), 2, "{}", show(&out));
    for (i, size) in [64, 4096].into_iter().enumerate() {
        assert_eq!(l[i].0, size);
        assert!(l[i].1 > 0.0, "{}", show(&out));
        assert!(
            l[i].2.parse::<u64>().is_ok(),
            "a sender reports its latency"
        );
        assert_eq!(l[i].3, "ok");
    }
}

/// `--zero-copy` (messages written in place through `try_zcb_alloc`), queued and `--sync`,
/// up to 1 MiB: the same line, bodies verified intact.
#[test]
fn zero_copy_runs_verify_ok() {
    let d = FakeDaemon::start();
    for extra in [&[][..], &["--sync"][..]] {
        let mut args = vec!["--sizes", "4096,1048576", "--seconds", "0.5", "--verify"];
        args.push("--zero-copy");
        args.extend_from_slice(extra);
        let out = cpgbench(&d, &args).output().unwrap();
        assert!(out.status.success(), "{extra:?}: {}", show(&out));
        let l = lines(&out);
        assert_eq!(l.len(), 2, "{}", show(&out));
        for (i, size) in [4096, 1 << 20].into_iter().enumerate() {
            assert_eq!((l[i].0, l[i].3.as_str()), (size, "ok"), "{}", show(&out));
            assert!(l[i].1 > 0.0, "{}", show(&out));
        }
    }
}

#[test]
fn verify_across_a_sender_and_a_receiver_agrees() {
    let d = FakeDaemon::start();
    let dir = std::env::temp_dir().join(format!("cpgbench-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (ha, hb) = (dir.join("a.hashes"), dir.join("b.hashes"));
    let common = [
        "--sizes",
        "100,1000",
        "--seconds",
        "0.5",
        "--members",
        "2",
        "--verify",
    ];
    let rx = cpgbench(&d, &common)
        .args(["--receive-only", "--hash-file"])
        .arg(&hb)
        .spawn()
        .unwrap();
    let tx = cpgbench(&d, &common)
        .arg("--hash-file")
        .arg(&ha)
        .spawn()
        .unwrap();
    let (tx, rx) = (
        tx.wait_with_output().unwrap(),
        rx.wait_with_output().unwrap(),
    );
    assert!(tx.status.success(), "{}", show(&tx));
    assert!(rx.status.success(), "{}", show(&rx));
    let (lt, lr) = (lines(&tx), lines(&rx));
    assert_eq!(lt.len(), 2);
    assert_eq!(lr.len(), 2);
    assert!(
        lr.iter().all(|l| l.2 == "-" && l.3 == "ok"),
        "{}",
        show(&rx)
    );
    let (a, b) = (
        std::fs::read_to_string(&ha).unwrap(),
        std::fs::read_to_string(&hb).unwrap(),
    );
    assert_eq!(a.lines().count(), 2);
    assert_eq!(
        a, b,
        "both members delivered the same messages in the same order"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn paced_safe_runs_report_latency() {
    let d = FakeDaemon::start();
    let out = cpgbench(
        &d,
        &[
            "--sizes",
            "64",
            "--seconds",
            "0.5",
            "--rate",
            "200",
            "--safe",
        ],
    )
    .output()
    .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let l = lines(&out);
    assert_eq!(l[0].3, "ok");
    // 200/s for 0.5 s: about 100 messages, delivered over about 0.5 s.
    assert!(l[0].1 > 50.0 && l[0].1 < 400.0, "{}", show(&out));
    assert!(l[0].2.parse::<u64>().is_ok());
}

#[test]
fn a_foreign_message_in_the_group_fails_the_run() {
    let d = FakeDaemon::start_with(FakeConfig::default());
    let bench = cpgbench(
        &d,
        &[
            "--sizes",
            "64",
            "--seconds",
            "1",
            "--members",
            "2",
            "--verify",
            "--timeout",
            "20",
        ],
    )
    .spawn()
    .unwrap();
    // This test process is the second member: it waits for the run to start, then sends
    // something that is not a cpgbench message, and leaves.
    let mut intruder = Cpg::initialize_at(d.socket()).unwrap();
    intruder.join("cpgbench").unwrap();
    loop {
        match intruder.next_event(Some(Duration::from_secs(20))).unwrap() {
            Some(Event::Deliver { .. }) => break,
            Some(_) => {}
            None => panic!("cpgbench never sent"),
        }
    }
    intruder
        .mcast("cpgbench", Guarantee::Agreed, b"garbage")
        .unwrap();
    intruder.finalize().unwrap();
    let out = bench.wait_with_output().unwrap();
    assert!(!out.status.success(), "{}", show(&out));
    let l = lines(&out);
    assert_eq!(l[0].3, "FAILED", "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not cpgbench's"));
}

#[test]
fn usage_errors_exit_2() {
    let out = Command::new(env!("CARGO_BIN_EXE_cpgbench"))
        .args(["--sizes", "8"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let help = Command::new(env!("CARGO_BIN_EXE_cpgbench"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("--receive-only"));
}
