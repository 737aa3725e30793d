//! A test harness for real totemd processes: a cluster of N daemons on 127.0.0.x (udpu,
//! short timers) in a scratch directory, raw IPC clients for the control and CPG services
//! (ipc-shm's `Client` and `services::cpg::wire`, as a client library would use them), and
//! `totemctl` runs. Every wait is "until this holds, at most N seconds"; nothing asserts a
//! duration.
#![allow(dead_code)]

use alloc::collections::VecDeque;
use core::time::Duration;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Instant;

use bytes::Bytes;
use ipc_shm::Client;
use services::GroupName;
use services::cpg::wire::{CpgEvent, CpgGuarantee, CsError, Request, Response};
use services::service_id;
use services::session::{Hello, HelloReply};
use totem_proto::ServiceId;

/// How long any wait in these tests may take before it fails.
pub(crate) const PATIENCE: Duration = Duration::from_secs(10);

/// `totemd` and `totemctl`, as cargo built them for this test.
pub(crate) const TOTEMD: &str = env!("CARGO_BIN_EXE_totemd");
pub(crate) const TOTEMCTL: &str = env!("CARGO_BIN_EXE_totemctl");

/// Polls `f` until it returns `Some`, at most [`PATIENCE`]; panics with `what` after that.
pub(crate) fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "not within {PATIENCE:?}: {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One daemon.
#[derive(Debug)]
pub(crate) struct Node {
    pub(crate) id: u32,
    pub(crate) dir: PathBuf,
    child: Option<Child>,
}

/// N daemons in one scratch directory; killed (and the directory removed) on drop.
#[derive(Debug)]
pub(crate) struct Cluster {
    pub(crate) dir: PathBuf,
    pub(crate) nodes: Vec<Node>,
    port: u16,
    extra: String,
    /// The `totem { }` timer lines (the short test timers, or none: corosync's defaults).
    timers: &'static str,
}

impl Cluster {
    /// Starts `n` nodes on 127.0.0.1..=n, port `port` (distinct per test), with `extra`
    /// appended to every node's configuration, and waits until they form one ring and
    /// synchronise their services.
    pub(crate) fn start(name: &str, n: u32, port: u16, extra: &str) -> Self {
        Self::start_timers(name, n, port, extra, "    token: 500\n    join: 30\n")
    }

    /// As [`Cluster::start`] with corosync's default timers (token 3000 ms, scaled by the
    /// nodelist: 3650 ms for three nodes).
    pub(crate) fn start_default_timers(name: &str, n: u32, port: u16, extra: &str) -> Self {
        Self::start_timers(name, n, port, extra, "")
    }

    fn start_timers(name: &str, n: u32, port: u16, extra: &str, timers: &'static str) -> Self {
        let dir = std::env::temp_dir().join(format!("totem-node-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let mut c = Self {
            dir,
            nodes: Vec::new(),
            port,
            extra: extra.to_owned(),
            timers,
        };
        for id in 1..=n {
            let node_dir = c.dir.join(format!("n{id}"));
            fs::create_dir_all(&node_dir).unwrap();
            c.nodes.push(Node {
                id,
                dir: node_dir,
                child: None,
            });
        }
        for id in 1..=n {
            c.write_config(id);
            c.spawn(id);
        }
        c.wait_ring(&(1..=n).collect::<Vec<_>>());
        c
    }

    /// Rewrites node `id`'s configuration with `extra` instead of the cluster's.
    pub(crate) fn rewrite_config(&mut self, id: u32, extra: &str) {
        extra.clone_into(&mut self.extra);
        self.write_config(id);
    }

    fn write_config(&self, id: u32) {
        let n = self.nodes.len() as u32;
        let mut text = format!(
            "totem {{\n    version: 2\n    cluster_name: {}\n    transport: udpu\n{}    interface {{\n        mcastport: {}\n    }}\n}}\nnodelist {{\n",
            self.dir.file_name().unwrap().to_string_lossy(),
            self.timers,
            self.port
        );
        for i in 1..=n {
            text += &format!(
                "    node {{\n        ring0_addr: 127.0.0.{i}\n        nodeid: {i}\n    }}\n"
            );
        }
        text += &format!(
            "}}\nsystem {{\n    state_dir: {}\n}}\nlogging {{\n    to_stderr: yes\n}}\n{}",
            self.node(id).dir.display(),
            self.extra
        );
        fs::write(self.config(id), text).unwrap();
    }

    fn spawn(&mut self, id: u32) {
        let log = fs::File::create(self.node(id).dir.join("log")).unwrap();
        let child = Command::new(TOTEMD)
            .arg("-f")
            .arg(self.config(id))
            .args(["--nodeid", &id.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.nodes[id as usize - 1].child = Some(child);
    }

    pub(crate) fn node(&self, id: u32) -> &Node {
        &self.nodes[id as usize - 1]
    }

    pub(crate) fn config(&self, id: u32) -> PathBuf {
        self.node(id).dir.join("totem.conf")
    }

    /// Node `id`'s IPC socket.
    pub(crate) fn socket(&self, id: u32) -> PathBuf {
        self.node(id).dir.join("totemd.sock")
    }

    /// Node `id`'s log so far.
    pub(crate) fn log(&self, id: u32) -> String {
        fs::read_to_string(self.node(id).dir.join("log")).unwrap_or_default()
    }

    /// Whether node `id`'s process still runs.
    pub(crate) fn alive(&mut self, id: u32) -> bool {
        let child = self.nodes[id as usize - 1].child.as_mut().unwrap();
        child.try_wait().unwrap().is_none()
    }

    /// A control request to node `id`, through the library call `totemctl` uses.
    pub(crate) fn control(&self, id: u32, request: &str) -> String {
        node::control::query(&self.socket(id), request, Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("node {id}: {request}: {e}\n{}", self.log(id)))
    }

    /// Waits until every node of `ids` is OPERATIONAL in one ring of exactly `ids`, with
    /// its services synchronised.
    pub(crate) fn wait_ring(&self, ids: &[u32]) {
        let members = ids
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",");
        eventually(&format!("one ring of {members}"), || {
            let mut ring = None;
            for &id in ids {
                let s = node::control::query(&self.socket(id), "status", Duration::from_secs(2))
                    .ok()?;
                let first = s.lines().next()?;
                let rest = first.strip_prefix(&format!("node {id}: ring "))?;
                let (rid, m) = rest.split_once(" members ")?;
                if m != members
                    || !s.contains("\nstate: OPERATIONAL\n")
                    || !s.contains("services: synchronized yes")
                    || ring.get_or_insert_with(|| rid.to_owned()) != rid
                {
                    return None;
                }
            }
            Some(())
        });
    }
}

impl Cluster {
    /// Sends `signal` (SIGSTOP, SIGCONT, SIGKILL, ...) to node `id`'s daemon; after
    /// SIGKILL the process is reaped.
    pub(crate) fn signal(&mut self, id: u32, signal: i32) {
        let child = self.nodes[id as usize - 1]
            .child
            .as_mut()
            .expect("the node runs");
        let pid = i32::try_from(child.id()).expect("a pid fits an i32");
        // SAFETY: kill(2) on our own child's pid; it has not been reaped (we hold it).
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(rc, 0, "kill({pid}, {signal})");
        if signal == libc::SIGKILL {
            let _ = child.wait();
            self.nodes[id as usize - 1].child = None;
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            if let Some(mut c) = n.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        if !std::thread::panicking() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// `totemctl <args>`, optionally as another user (uid = gid = `as_user`).
pub(crate) fn totemctl(args: &[&str], as_user: Option<u32>) -> Output {
    let mut cmd = Command::new(TOTEMCTL);
    cmd.args(args)
        .env_remove("TOTEM_SOCKET")
        .stdin(Stdio::null());
    if let Some(u) = as_user {
        std::os::unix::process::CommandExt::uid(&mut cmd, u);
        std::os::unix::process::CommandExt::gid(&mut cmd, u);
    }
    cmd.output().unwrap()
}

/// Connects to `socket` and opens a session for `service`; returns the client and the
/// daemon's answer.
pub(crate) fn session(socket: &Path, service: ServiceId) -> (Client, CsError) {
    let mut client = Client::connect(socket).unwrap();
    let reply = client.request(&Hello { service }.encode()).unwrap();
    (client, HelloReply::decode(&reply).unwrap().error)
}

/// A raw CPG client: ipc-shm plus the CPG wire format, no client library.
#[derive(Debug)]
pub(crate) struct CpgClient {
    pub(crate) client: Client,
    /// Events received while waiting for something else.
    pub(crate) events: VecDeque<CpgEvent>,
}

impl CpgClient {
    /// Connects, says hello to CPG and initializes.
    pub(crate) fn connect(socket: &Path) -> Self {
        let (client, error) = session(socket, service_id::CPG);
        assert_eq!(error, CsError::Ok);
        let mut c = Self {
            client,
            events: VecDeque::new(),
        };
        let r = c.call(&Request::Initialize {
            flags: 0,
            pid: std::process::id(),
        });
        assert_eq!(r.error, CsError::Ok);
        c
    }

    /// One request and its reply.
    pub(crate) fn call(&mut self, req: &Request) -> Response {
        let raw = self.client.request(&req.emit()).unwrap();
        Response::parse(&raw).unwrap()
    }

    pub(crate) fn join(&mut self, group: &str) {
        let r = self.call(&Request::Join {
            group: GroupName::new(group.as_bytes()).unwrap(),
        });
        assert_eq!(r.error, CsError::Ok);
    }

    /// Multicasts `payload` to `group`, retrying while the daemon says TRY_AGAIN.
    pub(crate) fn mcast(&mut self, group: &str, guarantee: CpgGuarantee, payload: &[u8]) {
        let req = Request::Mcast {
            guarantee,
            group: GroupName::new(group.as_bytes()).unwrap(),
            payload: Bytes::copy_from_slice(payload),
        };
        eventually("mcast accepted", || match self.call(&req).error {
            CsError::Ok => Some(()),
            CsError::TryAgain => None,
            e => panic!("mcast: {e:?}"),
        });
    }

    /// The next event (queued first, then from the daemon), waiting up to PATIENCE.
    pub(crate) fn next(&mut self) -> CpgEvent {
        if let Some(e) = self.events.pop_front() {
            return e;
        }
        let raw = self
            .client
            .recv_event(Some(PATIENCE))
            .unwrap()
            .expect("an event");
        CpgEvent::parse(&Bytes::from(raw)).unwrap()
    }

    /// Waits for the first event `f` accepts; the others are kept, in order.
    pub(crate) fn wait_for<T>(
        &mut self,
        what: &str,
        mut f: impl FnMut(&CpgEvent) -> Option<T>,
    ) -> T {
        if let Some(i) = self.events.iter().position(|e| f(e).is_some()) {
            let e = self.events.remove(i).unwrap();
            return f(&e).unwrap();
        }
        let start = Instant::now();
        loop {
            let left = PATIENCE.saturating_sub(start.elapsed());
            let raw = self
                .client
                .recv_event(Some(left))
                .unwrap()
                .unwrap_or_else(|| {
                    panic!("not within {PATIENCE:?}: {what}; got {:?}", self.events)
                });
            let e = CpgEvent::parse(&Bytes::from(raw)).unwrap();
            if let Some(v) = f(&e) {
                return v;
            }
            self.events.push_back(e);
        }
    }
}

/// Whether the env asks this test binary to act as a helper child (see `child_main`).
pub(crate) const CHILD_ENV: &str = "TOTEM_NODE_TEST_CHILD";

/// Runs this test binary again as a helper: only the test named `helper` runs, with
/// `CHILD_ENV=<mode>:<socket>`, optionally as another user.
pub(crate) fn spawn_child(helper: &str, mode: &str, socket: &Path, as_user: Option<u32>) -> Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", helper, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, format!("{mode}:{}", socket.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if let Some(u) = as_user {
        std::os::unix::process::CommandExt::uid(&mut cmd, u);
        std::os::unix::process::CommandExt::gid(&mut cmd, u);
    }
    cmd.spawn().unwrap()
}

/// `child`'s first stdout line that holds `prefix`, from `prefix` on (libtest prints
/// `test child_helper ... ` before it); panics with everything it printed, and how it
/// ended, if none does.
pub(crate) fn child_line(child: &mut Child, prefix: &str) -> String {
    use std::io::BufRead as _;
    let mut seen = Vec::new();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    while let Some(line) = lines.next() {
        let line = line.unwrap();
        if let Some(i) = line.find(prefix) {
            // Keep reading what it prints after, so it never dies of a closed pipe.
            std::thread::spawn(move || lines.for_each(drop));
            return line[i..].to_owned();
        }
        seen.push(line);
    }
    panic!(
        "child printed no {prefix:?} line: {seen:?}, {:?}",
        child.wait()
    );
}

/// The helper children's side (each test file's `child_helper` test calls it): with
/// `CHILD_ENV=<mode>:<socket>` set, act as `mode` and return true; else return false.
///
/// * `member`: join group `g`, print `joined <pid>`, wait to be killed;
/// * `stuck`: the same, and never read an event;
/// * `hello-cpg`: open a CPG session and print `hello <answer>` (or the connect error).
pub(crate) fn child_main() -> bool {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return false;
    };
    let (mode, socket) = spec.split_once(':').unwrap();
    let socket = Path::new(socket);
    match mode {
        "member" | "stuck" => {
            let mut c = CpgClient::connect(socket);
            c.join("g");
            println!("joined {}", std::process::id());
            // Killed by the parent (or disconnected by the daemon); never outlive the
            // parent by much if it dies first. A `member` would read its events here; the
            // tests only need it to be there.
            std::thread::sleep(PATIENCE * 3);
        }
        "hello-cpg" => match Client::connect(socket) {
            Ok(_) => {
                let (_, error) = session(socket, service_id::CPG);
                println!("hello {error:?}");
            }
            Err(e) => println!("connect {e}"),
        },
        other => panic!("unknown child mode {other}"),
    }
    true
}
