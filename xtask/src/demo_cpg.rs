//! The CPG part of `cargo xtask demo`: `cpg_demo` (client/examples) on every node sends
//! numbered messages through the client library and checks what it delivers; this module
//! starts one per node, reads their lines, compares the order checkpoints across nodes, and
//! prints one line a second: messages/s delivered on each node and how many checkpoints
//! agreed. A checkpoint is `mark id=<message> hash=<order hash since the last view change>`:
//! every node that delivers that message must print the same hash (virtual synchrony).

use alloc::collections::BTreeMap;
use core::time::Duration;
use std::io::BufRead as _;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::Instant;

use crate::cmd::{Cmd, root_path};
use crate::nodes::Cluster;

/// Messages a second each node's client sends.
pub(crate) const RATE: u32 = 500;

/// The clients and what they reported.
pub(crate) struct Traffic {
    clients: BTreeMap<u32, Child>,
    tx: Sender<(u32, String)>,
    rx: Receiver<(u32, String)>,
    /// Checkpoint id → (hash, first node that printed it).
    marks: BTreeMap<String, (String, u32)>,
    /// Checkpoints seen on at least two nodes, all agreeing.
    agreed: u64,
    /// Last `delivered=` per node, and when it came.
    delivered: BTreeMap<u32, (u64, Instant)>,
    /// Per node: the delivered count and time of the last line printed.
    shown: BTreeMap<u32, (u64, Instant)>,
    errors: Vec<String>,
}

/// Builds the client (release, like the daemons).
pub(crate) fn build() -> crate::Result {
    Cmd::cargo()
        .args([
            "build",
            "--release",
            "-p",
            "totem-client",
            "--example",
            "cpg_demo",
        ])
        .run()
}

impl Traffic {
    pub(crate) fn new() -> Self {
        let (tx, rx) = channel();
        Self {
            clients: BTreeMap::new(),
            tx,
            rx,
            marks: BTreeMap::new(),
            agreed: 0,
            delivered: BTreeMap::new(),
            shown: BTreeMap::new(),
            errors: Vec::new(),
        }
    }

    /// Starts node `id`'s client against its daemon (which must be up).
    pub(crate) fn start(&mut self, cluster: &Cluster, id: u32) -> crate::Result {
        let bin = root_path("target/release/examples/cpg_demo");
        let err = std::fs::File::create(cluster.node_dir(id).join("cpg_demo.err"))
            .map_err(|e| format!("node {id}: cpg_demo.err: {e}"))?;
        let mut child = Command::new(&bin)
            .arg("--socket")
            .arg(cluster.socket(id))
            .args(["--rate", &RATE.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| format!("node {id}: cpg_demo without stdout"))?;
        let tx = self.tx.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send((id, line)).is_err() {
                    break;
                }
            }
        });
        self.delivered.remove(&id);
        self.shown.remove(&id);
        self.clients.insert(id, child);
        Ok(())
    }

    /// Forgets node `id`'s client (its daemon was killed or left: it exits by itself).
    pub(crate) fn lost(&mut self, id: u32) {
        if let Some(mut c) = self.clients.remove(&id) {
            // It exits when its daemon goes; reap it (or end it, if it did not).
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            if c.try_wait().ok().flatten().is_none() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        self.delivered.remove(&id);
        self.shown.remove(&id);
    }

    /// Reads the clients' lines for `d`, printing a traffic line every second.
    pub(crate) fn run_for(&mut self, d: Duration) -> crate::Result {
        let end = Instant::now() + d;
        let mut next_line = Instant::now() + Duration::from_secs(1);
        loop {
            let now = Instant::now();
            if now >= end {
                break;
            }
            match self.rx.recv_timeout(next_line.min(end) - now) {
                Ok((id, line)) => self.on_line(id, &line),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if Instant::now() >= next_line {
                self.print();
                next_line += Duration::from_secs(1);
            }
        }
        self.check()
    }

    /// Handles what arrived meanwhile (while the demo waited for a ring).
    pub(crate) fn drain(&mut self) -> crate::Result {
        while let Ok((id, line)) = self.rx.try_recv() {
            self.on_line(id, &line);
        }
        self.check()
    }

    fn on_line(&mut self, id: u32, line: &str) {
        if let Some(rest) = line.strip_prefix("mark ") {
            let mut id_s = None;
            let mut hash = None;
            for kv in rest.split(' ') {
                match kv.split_once('=') {
                    Some(("id", v)) => id_s = Some(v.to_owned()),
                    Some(("hash", v)) => hash = Some(v.to_owned()),
                    _ => {}
                }
            }
            let (Some(mid), Some(hash)) = (id_s, hash) else {
                self.errors.push(format!("node {id}: bad line {line:?}"));
                return;
            };
            match self.marks.get(&mid) {
                None => {
                    self.marks.insert(mid, (hash, id));
                }
                Some((h, _)) if *h == hash => self.agreed += 1,
                Some((h, first)) => self.errors.push(format!(
                    "ORDER MISMATCH at message {mid}: node {first} hash {h}, node {id} hash {hash}"
                )),
            }
        } else if let Some(rest) = line.strip_prefix("stats ") {
            if let Some(n) = rest
                .split(' ')
                .find_map(|kv| kv.strip_prefix("delivered="))
                .and_then(|v| v.parse().ok())
            {
                self.delivered.insert(id, (n, Instant::now()));
            }
        } else if let Some(e) = line.strip_prefix("error ") {
            self.errors.push(format!("node {id}: {e}"));
        }
    }

    fn print(&mut self) {
        let mut parts = Vec::new();
        for (&id, &(n, at)) in &self.delivered {
            let rate = match self.shown.get(&id) {
                Some(&(n0, t0)) if at > t0 => (n - n0) as f64 / (at - t0).as_secs_f64(),
                _ => continue,
            };
            parts.push(format!("node {id} {rate:.0}"));
        }
        for (&id, &v) in &self.delivered {
            self.shown.insert(id, v);
        }
        if parts.is_empty() {
            return;
        }
        println!(
            "demo: cpg messages/s delivered: {}; order {} ({} checkpoints agree across nodes)",
            parts.join(", "),
            if self.errors.is_empty() {
                "ok"
            } else {
                "FAILED"
            },
            self.agreed
        );
    }

    fn check(&self) -> crate::Result {
        match self.errors.first() {
            None => Ok(()),
            Some(e) => Err(format!(
                "cpg traffic check failed: {e}{}",
                if self.errors.len() > 1 {
                    format!(" (and {} more)", self.errors.len() - 1)
                } else {
                    String::new()
                }
            )),
        }
    }

    /// Checkpoints that agreed so far.
    pub(crate) fn agreed(&self) -> u64 {
        self.agreed
    }

    /// Ends every client still running.
    pub(crate) fn stop(&mut self) {
        for (_, mut c) in core::mem::take(&mut self.clients) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        self.stop();
    }
}
