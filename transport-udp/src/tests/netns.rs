//! `Lab`: two network namespaces joined by a veth pair, for tests that need a real link
//! (multicast with loopback off, IP fragmentation at MTU 1500, a qdisc that holds packets).
//!
//! Names are unique per process and lab (`totem-udp-<pid>-<n>a` / `…b`); the interfaces
//! inside are `tu0` (in a) and `tu1` (in b). Addresses are only 10.213.1.0/24 and
//! fd13:213::/64, and nothing leaves the two namespaces: no default route is added (which
//! also proves that multicast needs none once `IP_MULTICAST_IF` is set). Dropping the `Lab`
//! deletes both namespaces, which deletes the veth pair with them, on success and on
//! failure alike; namespaces left by a killed earlier run (whose pid is gone) are removed
//! when the next lab is built.
//!
//! Endpoints are created by a thread that first enters the namespace (`setns`): a socket
//! belongs to the namespace it was created in for its whole life, so the test thread can
//! then use sockets of both namespaces side by side.

use core::sync::atomic::{AtomicUsize, Ordering};
use core::time::Duration;
use std::fs::File;
use std::os::fd::AsFd;
use std::process::Command;
use std::thread;
use std::time::Instant;

use totem_transport::{RecvMeta, Transport};

use crate::sys;

const PREFIX: &str = "totem-udp-";

/// The two namespaces of a test; deleted on drop.
#[derive(Debug)]
pub(crate) struct Lab {
    pub(crate) a: String,
    pub(crate) b: String,
}

/// Runs `ip` with `args`; the error is its stderr.
pub(crate) fn ip(args: &[&str]) -> Result<(), String> {
    run("ip", args)
}

/// Runs `tc` inside namespace `ns` (`ip netns exec ns tc …`).
pub(crate) fn tc(ns: &str, args: &[&str]) -> Result<(), String> {
    let mut all = vec!["netns", "exec", ns, "tc"];
    all.extend_from_slice(args);
    run("ip", &all)
}

fn run(program: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn is_root() -> bool {
    // The effective uid is the second field of the "Uid:" line.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|uid| uid == "0"))
        })
        .unwrap_or(false)
}

/// Deletes `totem-udp-<pid>-…` namespaces whose process no longer exists.
fn remove_stale() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(pid) = name.strip_prefix(PREFIX).and_then(|r| r.split('-').next()) else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = ip(&["netns", "del", name]);
        }
    }
}

impl Lab {
    /// Builds the namespaces, the veth pair and the addresses: `a` gets `10.213.1.1/24` and
    /// `fd13:213::1/64`, `b` gets `.2` and `::2` plus `extra_b` (host numbers under the
    /// same prefixes, e.g. `3` for `10.213.1.3` and `fd13:213::3`). `None` (after printing
    /// `SKIP: …`) when not root or when this host refuses network namespaces.
    pub(crate) fn new(extra_b: &[u8]) -> Option<Self> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        if !is_root() {
            println!("SKIP: needs root (network namespaces)");
            return None;
        }
        remove_stale();
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let lab = Self {
            a: format!("{PREFIX}{pid}-{n}a"),
            b: format!("{PREFIX}{pid}-{n}b"),
        };
        // Created before anything can fail, so Drop cleans up whatever exists.
        if let Err(e) = ip(&["netns", "add", &lab.a]).and_then(|()| ip(&["netns", "add", &lab.b])) {
            println!("SKIP: cannot create network namespaces: {e}");
            return None;
        }
        let (a, b) = (lab.a.as_str(), lab.b.as_str());
        let mut steps: Vec<Vec<String>> = vec![
            words(&[
                "-n", a, "link", "add", "tu0", "type", "veth", "peer", "name", "tu1", "netns", b,
            ]),
            words(&["-n", a, "addr", "add", "10.213.1.1/24", "dev", "tu0"]),
            words(&[
                "-n",
                a,
                "addr",
                "add",
                "fd13:213::1/64",
                "dev",
                "tu0",
                "nodad",
            ]),
            words(&["-n", b, "addr", "add", "10.213.1.2/24", "dev", "tu1"]),
            words(&[
                "-n",
                b,
                "addr",
                "add",
                "fd13:213::2/64",
                "dev",
                "tu1",
                "nodad",
            ]),
        ];
        for host in extra_b {
            let v4 = format!("10.213.1.{host}/24");
            let v6 = format!("fd13:213::{host}/64");
            steps.push(words(&["-n", b, "addr", "add", &v4, "dev", "tu1"]));
            steps.push(words(&["-n", b, "addr", "add", &v6, "dev", "tu1", "nodad"]));
        }
        for (ns, dev) in [(a, "tu0"), (b, "tu1")] {
            steps.push(words(&["-n", ns, "link", "set", dev, "up"]));
            steps.push(words(&["-n", ns, "link", "set", "lo", "up"]));
        }
        for step in &steps {
            let args: Vec<&str> = step.iter().map(String::as_str).collect();
            // Root could add namespaces, so a failure here is a real problem: fail the test
            // (Drop still removes the namespaces).
            if let Err(e) = ip(&args) {
                panic!("lab setup failed: {e}");
            }
        }
        lab.wait_until_ready();
        Some(lab)
    }

    /// Waits (at most 2 s) until IPv6 has installed its `ff00::/8` route on both veth ends.
    ///
    /// A veth end becomes usable only once the kernel's link watcher has seen both ends up;
    /// IPv6 then adds the multicast route, and until it is there a receiver drops incoming
    /// multicast as `Ip6InNoRoutes` (seen here: the first datagrams of a test sent within
    /// ~50 ms of `link set up` were lost). The route comes last, so it is the signal that both
    /// families are ready.
    fn wait_until_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(2);
        for (ns, dev) in [(&self.a, "tu0"), (&self.b, "tu1")] {
            let want = format!("ff00::/8 dev {dev}");
            loop {
                let routes = Command::new("ip")
                    .args(["-n", ns, "-6", "route", "show", "table", "local"])
                    .output()
                    .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                    .unwrap_or_default();
                if routes.contains(&want) {
                    break;
                }
                assert!(Instant::now() < deadline, "{ns}: {dev} never became ready");
                thread::sleep(Duration::from_millis(5));
            }
        }
    }

    /// Runs `f` on a thread inside namespace `ns` and returns its result (sockets created by
    /// `f` stay in that namespace).
    pub(crate) fn run_in<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/var/run/netns/{ns}");
        thread::spawn(move || {
            let file = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
            sys::enter_netns(file.as_fd()).unwrap_or_else(|e| panic!("setns {path}: {e}"));
            f()
        })
        .join()
        .unwrap_or_else(|_| panic!("thread in {ns} panicked"))
    }
}

fn words(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| String::from(*s)).collect()
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in [&self.a, &self.b] {
            if let Err(e) = ip(&["netns", "del", ns]) {
                eprintln!("warning: could not delete namespace {ns}: {e}");
            }
        }
    }
}

/// Polls `t` until a datagram arrives or 2 s pass (a bound, not a timing assertion).
pub(crate) fn recv_wait(t: &mut impl Transport, buf: &mut [u8]) -> Option<RecvMeta> {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        if let Some(meta) = t.recv(buf).expect("recv") {
            return Some(meta);
        }
        if Instant::now() > deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(1));
    }
}
