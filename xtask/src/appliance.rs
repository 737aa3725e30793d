//! `cargo xtask appliance`: the appliance example (`appliance/`, its own workspace; issue
//! 8), checked, measured and run in one ring with two totemd nodes (a `cargo xtask ci`
//! step).
//!
//! 1. checks of the appliance workspace (into `target/appliance`): fmt, clippy (host
//!    members, and the firmware image for the bare-metal target), the core's unit tests,
//!    and the defmt build of the core (compile-checked only, STYLE point 12);
//! 2. code size: `appliance-firmware` built for `thumbv7em-none-eabihf` with the
//!    `firmware` profile (opt-level s, fat LTO), its ELF sections summed as Berkeley
//!    `size` does (text = allocated read-only sections, code and constants);
//! 3. end to end (root only; otherwise a loud SKIP): namespaces 1 and 2 run `totemd` on a
//!    bridge; namespace 3 holds the appliance: its `eth0` (the veth to the bridge, its
//!    address removed so the kernel never answers for it) and a TAP device joined by a
//!    bridge inside the namespace, the appliance's smoltcp stack owning 10.213.5.3 on the
//!    TAP.
//!
//! ```text
//!  root ns: totem-ap-br ── totem-ap-v1 ── totem-ap-v2 ── totem-ap-v3
//!  totem-ap-n1: eth0 10.213.5.1, totemd + cpg_chat       (transport udp, 239.213.5.1:5465)
//!  totem-ap-n2: eth0 10.213.5.2, totemd + cpg_chat
//!  totem-ap-n3: br0 ── eth0 (no address), tap0 ── totem-appliance (smoltcp 10.213.5.3)
//! ```
//!
//! The three form one ring (totemctl status on 1 and 2 and the appliance's own ring line
//! agree on ring id and members 1,2,3); a CPG group spanning the two `cpg_chat` clients
//! and the appliance's application carries 20 messages from each, and all three print the
//! same 60 deliveries in the same order; the appliance prints its heap's peak; then it is
//! killed (SIGKILL) and the two totemd nodes form a new ring without it, which their
//! clients see as a NODEDOWN. Everything is torn down at the end (and by the guard
//! process if this one dies).

use core::time::Duration;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Instant;

use crate::cluster::build_daemons;
use crate::cmd::{Cmd, root_path};
use crate::guard::Session;
use crate::netns;
use crate::nodes::{self, APPLIANCE, Cluster, NodeStatus, Ring, Transport};
use crate::workspace::BARE_METAL_TARGET;

/// The appliance workspace's manifest and target dir.
const MANIFEST: &str = "appliance/Cargo.toml";
const TARGET_DIR: &str = "target/appliance";

/// The appliance's node id (the last of three).
const APPLIANCE_ID: u32 = 3;
/// Token timeout of the cluster, as `cargo xtask e2e` uses.
const TOKEN_MS: u32 = 1000;
/// The CPG group the test runs in.
const GROUP: &str = "appliance-e2e";
/// Messages each of the three members multicasts.
const PER_SENDER: usize = 20;
/// The TAP interface and the bridge inside the appliance's namespace.
const TAP: &str = "tap0";
const INNER_BRIDGE: &str = "br0";
/// Deadline of each wait (generous: "eventually", never a timing assertion).
const WAIT: Duration = Duration::from_secs(20);

/// What to run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Options {
    /// `--e2e-only`: skip the checks and the size build.
    pub(crate) e2e_only: bool,
}

/// Runs the checks, the size report and the end-to-end test.
pub(crate) fn run(options: Options) -> crate::Result {
    if !options.e2e_only {
        checks()?;
        code_size()?;
    }
    e2e()
}

fn cargo(sub: &str) -> Cmd {
    Cmd::cargo().args([sub, "--manifest-path", MANIFEST, "--target-dir", TARGET_DIR])
}

fn checks() -> crate::Result {
    // The members only: `--all` would also check the main workspace's crates, which this
    // workspace reaches through path dependencies (and which `ci`'s fmt step checks).
    Cmd::cargo()
        .args(["fmt", "--manifest-path", MANIFEST])
        .args(["-p", "totem-appliance", "-p", "totem-appliance-host"])
        .args(["-p", "appliance-firmware", "--", "--check"])
        .run()?;
    cargo("clippy")
        .args(["--all-targets", "--", "-D", "warnings"])
        .run()?;
    cargo("test").args(["-p", "totem-appliance"]).run()?;
    if crate::nostd::target_installed(BARE_METAL_TARGET) {
        cargo("clippy")
            .args([
                "-p",
                "appliance-firmware",
                "--target",
                BARE_METAL_TARGET,
                "--",
                "-D",
                "warnings",
            ])
            .run()?;
        cargo("check")
            .args([
                "-p",
                "totem-appliance",
                "--features",
                "defmt",
                "--target",
                BARE_METAL_TARGET,
            ])
            .env("DEFMT_LOG", "trace")
            .run()?;
    } else {
        println!(
            "WARNING: {BARE_METAL_TARGET} not installed: firmware clippy and defmt check skipped"
        );
    }
    Ok(())
}

/// Builds the bare-metal image and prints its sizes.
fn code_size() -> crate::Result {
    if !crate::nostd::target_installed(BARE_METAL_TARGET) {
        println!("WARNING: {BARE_METAL_TARGET} not installed: code size not measured");
        return Ok(());
    }
    cargo("build")
        .args([
            "-p",
            "appliance-firmware",
            "--target",
            BARE_METAL_TARGET,
            "--profile",
            "firmware",
        ])
        .run()?;
    let elf = root_path(&format!(
        "{TARGET_DIR}/{BARE_METAL_TARGET}/firmware/appliance-firmware"
    ));
    let bytes = fs::read(&elf).map_err(|e| format!("{}: {e}", elf.display()))?;
    let s = elf_sizes(&bytes).map_err(|e| format!("{}: {e}", elf.display()))?;
    println!(
        "appliance: code size ({BARE_METAL_TARGET}, profile firmware: opt-level s, fat LTO, \
         no logging): text {} B ({:.1} KiB), data {} B, bss {} B (the heap array is bss)",
        s.text,
        s.text as f64 / 1024.0,
        s.data,
        s.bss
    );
    Ok(())
}

/// Berkeley `size` figures of an ELF file.
#[derive(Debug, Default, PartialEq, Eq)]
struct Sizes {
    /// Allocated, not writable: code and read-only data.
    text: u64,
    /// Allocated, writable, with contents.
    data: u64,
    /// Allocated, writable, without contents (`SHT_NOBITS`).
    bss: u64,
}

/// Sums the section sizes of a 32- or 64-bit little-endian ELF as `size` (Berkeley
/// format) does.
fn elf_sizes(elf: &[u8]) -> crate::Result<Sizes> {
    const SHF_WRITE: u64 = 1;
    const SHF_ALLOC: u64 = 2;
    const SHT_NOBITS: u32 = 8;
    let int = |at: usize, len: usize| -> crate::Result<u64> {
        let b = elf
            .get(at..at + len)
            .ok_or_else(|| format!("truncated at byte {at}"))?;
        Ok(b.iter().rev().fold(0, |acc, x| (acc << 8) | u64::from(*x)))
    };
    if elf.get(..4) != Some(b"\x7fELF".as_slice()) || elf.get(5) != Some(&1) {
        return Err("not a little-endian ELF file".into());
    }
    let wide = match elf.get(4) {
        Some(1) => false,
        Some(2) => true,
        _ => return Err("unknown ELF class".into()),
    };
    let word = if wide { 8 } else { 4 };
    let (shoff, shentsize, shnum) = if wide {
        (int(0x28, 8)?, int(0x3a, 2)?, int(0x3c, 2)?)
    } else {
        (int(0x20, 4)?, int(0x2e, 2)?, int(0x30, 2)?)
    };
    let mut sizes = Sizes::default();
    for i in 0..shnum {
        let at = usize::try_from(shoff + i * shentsize).map_err(|e| e.to_string())?;
        let kind = int(at + 4, 4)?;
        let flags = int(at + 8, word)?;
        // sh_size follows sh_flags, sh_addr and sh_offset.
        let size = int(at + 8 + 3 * word, word)?;
        if flags & SHF_ALLOC == 0 {
            continue;
        }
        if flags & SHF_WRITE == 0 {
            sizes.text += size;
        } else if kind == u64::from(SHT_NOBITS) {
            sizes.bss += size;
        } else {
            sizes.data += size;
        }
    }
    Ok(sizes)
}

/// A process this test started and must end: killed (by its own PID, through its
/// `Child`) and reaped when dropped.
#[derive(Debug)]
struct Proc {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    out: PathBuf,
}

impl Proc {
    /// Starts `argv` in namespace `ns` with a piped stdin, stdout to `out` and stderr to
    /// `err`.
    fn start(name: &str, ns: &str, argv: &[String], out: &Path, err: &Path) -> crate::Result<Self> {
        let file = |p: &Path| fs::File::create(p).map_err(|e| format!("{}: {e}", p.display()));
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns])
            .args(argv)
            .stdin(Stdio::piped())
            .stdout(file(out)?)
            .stderr(file(err)?)
            .spawn()
            .map_err(|e| format!("cannot start {name} (`{}`): {e}", argv.join(" ")))?;
        let stdin = child.stdin.take();
        Ok(Self {
            name: name.to_owned(),
            child,
            stdin,
            out: out.to_owned(),
        })
    }

    fn send_line(&mut self, line: &str) -> crate::Result {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| format!("{}: stdin closed", self.name))?;
        writeln!(stdin, "{line}").map_err(|e| format!("{}: cannot write stdin: {e}", self.name))
    }

    fn output(&self) -> String {
        fs::read_to_string(&self.out).unwrap_or_default()
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL and reap.
    fn kill(&mut self) {
        self.stdin = None;
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

fn e2e() -> crate::Result {
    if !netns::is_root() {
        println!(
            "\nappliance e2e: SKIP: NOT TESTED: the appliance end-to-end test needs root \
             (network namespaces, bridges, a TAP device); run `cargo xtask appliance` as root"
        );
        return Ok(());
    }
    if let Err(e) = netns::check_tools().and_then(|()| netns::can_create(&APPLIANCE.netns(0))) {
        println!("\nappliance e2e: SKIP: NOT TESTED: root, but no network namespaces here: {e}");
        return Ok(());
    }
    if !Path::new("/dev/net/tun").exists() {
        println!("\nappliance e2e: SKIP: NOT TESTED: /dev/net/tun is missing (no tun module)");
        return Ok(());
    }
    cargo("build")
        .args(["--release", "-p", "totem-appliance-host"])
        .run()?;
    build_daemons()?;
    Cmd::cargo()
        .args([
            "build",
            "--release",
            "-p",
            "totem-client",
            "--example",
            "cpg_chat",
        ])
        .run()?;
    let leftovers = nodes::cleanup(&APPLIANCE);
    if !leftovers.nothing() {
        println!("appliance e2e: leftovers of an earlier run: {leftovers}");
    }
    let started = Instant::now();
    let mut session = Session::new(Cluster::new(
        &APPLIANCE,
        true,
        Transport::Udp,
        Some(TOKEN_MS),
        3,
    ));
    session.verbose = true;
    let result = scenario(&mut session);
    let took = started.elapsed();
    match &result {
        Ok(()) => println!(
            "appliance e2e: ok in {:.1} s (2 totemd + 1 appliance, one ring, CPG order, kill)",
            took.as_secs_f64()
        ),
        Err(e) => {
            println!("appliance e2e: FAILED after {:.1} s", took.as_secs_f64());
            println!("{}", nodes::indent(e));
            for id in [1, 2, APPLIANCE_ID] {
                let log = session.log_path(id);
                println!(
                    "the end of {}:\n{}",
                    log.display(),
                    nodes::indent(&nodes::log_tail(&session, id, 10))
                );
            }
        }
    }
    // Dropping the session stops the daemons and removes namespaces, bridge and TAP.
    drop(session);
    result.map_err(|_| "appliance e2e failed (see above)".to_owned())
}

/// The whole scenario; the processes it starts end with it (their `Drop`).
fn scenario(s: &mut Session) -> crate::Result {
    s.create()?;
    let ns3 = APPLIANCE.netns(APPLIANCE_ID);
    plug_tap(&ns3)?;
    s.start(1)?;
    s.start(2)?;
    let mut appliance = start_appliance(s)?;

    // One ring of three: both totemd nodes and the appliance report the same ring.
    let ring = wait_for(WAIT, "one ring of 1,2,3 on all three", || {
        let ring = totemd_ring(s, &[1, 2, 3])?;
        let line = format!("* ring {ring}: nodes 1,2,3");
        appliance
            .output()
            .lines()
            .any(|l| l == line)
            .then_some(ring)
    })
    .map_err(|e| with_output(e, &[&appliance]))?;
    println!("appliance e2e: one ring {ring} of 1,2,3 (totemd 1, 2 and the appliance)");

    // The group: a cpg_chat client on each totemd node, the appliance's application.
    let chat = root_path("target/release/examples/cpg_chat")
        .display()
        .to_string();
    let mut chats = Vec::new();
    for id in [1, 2] {
        let dir = s.node_dir(id);
        let argv = vec![
            "env".to_owned(),
            format!("TOTEM_SOCKET={}", s.socket(id).display()),
            chat.clone(),
            GROUP.to_owned(),
        ];
        chats.push(Proc::start(
            &format!("cpg_chat on node {id}"),
            &APPLIANCE.netns(id),
            &argv,
            &dir.join("chat.out"),
            &dir.join("chat.err"),
        )?);
    }
    let member_line = |p: &Proc| {
        p.output()
            .lines()
            .rfind(|l| l.starts_with(&format!("* {GROUP}: ")))
            .map(str::to_owned)
    };
    wait_for(WAIT, "the group to have three members everywhere", || {
        let all = [&chats[0], &chats[1], &appliance];
        all.iter()
            .all(|p| member_line(p).is_some_and(|l| l.split(' ').count() == 5))
            .then_some(())
    })
    .map_err(|e| with_output(e, &[&chats[0], &chats[1], &appliance]))?;
    println!(
        "appliance e2e: group {GROUP}: {}",
        member_line(&appliance).unwrap_or_default()
    );

    // 20 messages from each member, the three senders concurrently. cpg_chat reads one
    // stdin line per wake-up of its poll loop (lines that arrive together wait in its
    // buffer), so each client gets its next line once its previous one came back.
    for i in 0..PER_SENDER {
        chats[0].send_line(&format!("n1-{i:02}"))?;
        chats[1].send_line(&format!("n2-{i:02}"))?;
        appliance.send_line(&format!("ap-{i:02}"))?;
        wait_for(WAIT, "the clients' own messages to come back", || {
            (0..2)
                .all(|c| {
                    let line = format!("> n{}-{i:02}", c + 1);
                    chats[c].output().lines().any(|l| l.ends_with(&line))
                })
                .then_some(())
        })
        .map_err(|e| with_output(e, &[&chats[0], &chats[1]]))?;
    }
    let total = 3 * PER_SENDER;
    let deliveries = |p: &Proc| -> Vec<String> {
        p.output()
            .lines()
            .filter(|l| l.starts_with('<'))
            .map(str::to_owned)
            .collect()
    };
    wait_for(WAIT, "every member to deliver all 60 messages", || {
        [&chats[0], &chats[1], &appliance]
            .iter()
            .all(|p| deliveries(p).len() >= total)
            .then_some(())
    })
    .map_err(|e| with_output(e, &[&chats[0], &chats[1], &appliance]))?;
    let seen = [
        deliveries(&chats[0]),
        deliveries(&chats[1]),
        deliveries(&appliance),
    ];
    check_order(&seen)?;
    println!(
        "appliance e2e: {total} messages (20 from each member) delivered in the same order on \
         all three, order hash {:016x}",
        fnv64(&seen[2].join("\n"))
    );

    // The heap's peak, as the appliance reports it.
    appliance.send_line("/heap")?;
    let heap = wait_for(Duration::from_secs(5), "the appliance's heap line", || {
        appliance
            .output()
            .lines()
            .find(|l| l.starts_with("heap: "))
            .map(str::to_owned)
    })?;
    println!("appliance e2e: appliance {heap} (after forming the ring and {total} messages)");

    // Kill the appliance: the totemd nodes form a ring of two.
    appliance.kill();
    let killed = Instant::now();
    let rings = s.wait_rings(
        &[&[1, 2]],
        Duration::from_secs(30),
        Duration::from_millis(20),
    )?;
    if rings[0].seq <= ring.seq {
        return Err(format!(
            "ring {} after the kill is not newer than ring {ring}",
            rings[0]
        ));
    }
    println!(
        "appliance e2e: appliance killed: totemd 1 and 2 formed ring {} of 1,2 after {:.1} s",
        rings[0],
        killed.elapsed().as_secs_f64()
    );
    let nodedown = format!("* {APPLIANCE_ID}/1 left {GROUP} (NodeDown)");
    wait_for(
        WAIT,
        "both clients to see the appliance leave the group",
        || {
            chats
                .iter()
                .all(|c| c.output().lines().any(|l| l == nodedown))
                .then_some(())
        },
    )
    .map_err(|e| with_output(e, &[&chats[0], &chats[1]]))?;
    for c in &mut chats {
        if !c.alive() {
            return Err(format!("{} exited early:\n{}", c.name, c.output()));
        }
    }
    Ok(())
}

/// Turns namespace `ns`'s `eth0` into a plain bridge port and puts a TAP device beside it:
/// the appliance's smoltcp stack, not the namespace's kernel, owns the node's address.
fn plug_tap(ns: &str) -> crate::Result {
    let ip = |args: &[&str]| {
        let mut all = vec!["-n", ns];
        all.extend_from_slice(args);
        netns::sh("ip", &all).map(drop)
    };
    ip(&["addr", "flush", "dev", "eth0"])?;
    ip(&[
        "link",
        "add",
        INNER_BRIDGE,
        "type",
        "bridge",
        "mcast_snooping",
        "0",
    ])?;
    ip(&["link", "set", "eth0", "master", INNER_BRIDGE])?;
    ip(&["tuntap", "add", "dev", TAP, "mode", "tap"])?;
    ip(&["link", "set", TAP, "master", INNER_BRIDGE])?;
    ip(&["link", "set", TAP, "up"])?;
    ip(&["link", "set", INNER_BRIDGE, "up"])
}

/// Starts the appliance as node 3 with the cluster's own settings (the same values
/// `Cluster::totem_conf` writes for the totemd nodes).
fn start_appliance(s: &Session) -> crate::Result<Proc> {
    let bin = root_path(&format!("{TARGET_DIR}/release/totem-appliance"));
    let dir = s.node_dir(APPLIANCE_ID);
    let addr = |id: u32| s.node(id).map(|n| n.addr.to_string()).unwrap_or_default();
    let mut argv = vec![
        bin.display().to_string(),
        "--tap".into(),
        TAP.into(),
        "--nodeid".into(),
        APPLIANCE_ID.to_string(),
        "--addr".into(),
        format!("{}/24", addr(APPLIANCE_ID)),
        "--cluster-name".into(),
        APPLIANCE.cluster_name.into(),
        // A file under the cluster's directory: teardown recognises the process by it.
        "--state".into(),
        dir.join("ringseq").display().to_string(),
        "--mcastaddr".into(),
        nodes::mcast_group(&APPLIANCE).to_string(),
        "--mcastport".into(),
        APPLIANCE.port.to_string(),
        "--token".into(),
        TOKEN_MS.to_string(),
        "--group".into(),
        GROUP.into(),
    ];
    for id in s.ids() {
        argv.push("--node".into());
        argv.push(format!("{id}={}", addr(id)));
    }
    Proc::start(
        "the appliance",
        &APPLIANCE.netns(APPLIANCE_ID),
        &argv,
        &dir.join("out"),
        &s.log_path(APPLIANCE_ID),
    )
}

/// The ring totemd nodes 1 and 2 both report, operational, if its members are `members`.
fn totemd_ring(s: &mut Session, members: &[u32]) -> Option<Ring> {
    let mut agreed: Option<Ring> = None;
    for id in [1, 2] {
        match s.query(id) {
            NodeStatus::Up {
                ring,
                operational: true,
                ..
            } if ring.members == members && agreed.as_ref().is_none_or(|a| *a == ring) => {
                agreed = Some(ring);
            }
            _ => return None,
        }
    }
    agreed
}

/// Polls `f` every 5 ms until it gives a value; `Err` names `what` after `timeout`.
fn wait_for<T>(
    timeout: Duration,
    what: &str,
    mut f: impl FnMut() -> Option<T>,
) -> crate::Result<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        if start.elapsed() > timeout {
            return Err(format!("no {what} within {} s", timeout.as_secs()));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `e` followed by the last lines of each process's output.
fn with_output(e: String, procs: &[&Proc]) -> String {
    let mut e = e;
    for p in procs {
        let out = p.output();
        let lines: Vec<&str> = out.lines().collect();
        let tail = lines[lines.len().saturating_sub(8)..].join("\n");
        e += &format!(
            "\n{} printed (last lines):\n{}",
            p.name,
            nodes::indent(&tail)
        );
    }
    e
}

/// The three delivery lists are one list: the same messages in the same order, each of
/// the expected messages exactly once.
fn check_order(seen: &[Vec<String>; 3]) -> crate::Result {
    let names = ["cpg_chat on node 1", "cpg_chat on node 2", "the appliance"];
    for (i, list) in seen.iter().enumerate().skip(1) {
        if let Some(at) =
            (0..list.len().max(seen[0].len())).find(|k| list.get(*k) != seen[0].get(*k))
        {
            return Err(format!(
                "{} and {} differ at delivery {at}: {:?} vs {:?}",
                names[0],
                names[i],
                seen[0].get(at),
                list.get(at)
            ));
        }
    }
    let mut texts: Vec<&str> = seen[0]
        .iter()
        .filter_map(|l| l.split_once("> ").map(|(_, t)| t))
        .collect();
    texts.sort_unstable();
    let mut want: Vec<String> = ["n1", "n2", "ap"]
        .iter()
        .flat_map(|p| (0..PER_SENDER).map(move |i| format!("{p}-{i:02}")))
        .collect();
    want.sort_unstable();
    if texts != want {
        return Err(format!(
            "the deliveries are not the {} messages sent, each once: {texts:?}",
            want.len()
        ));
    }
    Ok(())
}

/// FNV-1a 64 of `text`: a short name for a delivery order.
fn fnv64(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_of_a_tiny_elf32() {
        // An ELF32 header with 3 section headers at offset 52: .text (AX), .data (WA),
        // .bss (WA, NOBITS).
        let mut elf = vec![0u8; 52 + 3 * 40];
        elf[..6].copy_from_slice(b"\x7fELF\x01\x01");
        elf[0x20..0x24].copy_from_slice(&52u32.to_le_bytes());
        elf[0x2e..0x30].copy_from_slice(&40u16.to_le_bytes());
        elf[0x30..0x32].copy_from_slice(&3u16.to_le_bytes());
        for (i, (kind, flags, size)) in [(1u32, 6u32, 100u32), (1, 3, 20), (8, 3, 7)]
            .into_iter()
            .enumerate()
        {
            let at = 52 + i * 40;
            elf[at + 4..at + 8].copy_from_slice(&kind.to_le_bytes());
            elf[at + 8..at + 12].copy_from_slice(&flags.to_le_bytes());
            elf[at + 20..at + 24].copy_from_slice(&size.to_le_bytes());
        }
        assert_eq!(
            elf_sizes(&elf),
            Ok(Sizes {
                text: 100,
                data: 20,
                bss: 7
            })
        );
        assert!(elf_sizes(b"nope").is_err());
        assert!(elf_sizes(&elf[..60]).is_err());
    }

    #[test]
    fn order_check_catches_a_swap() {
        let list: Vec<String> = ["n1", "n2", "ap"]
            .iter()
            .flat_map(|p| (0..PER_SENDER).map(move |i| format!("<1/1> {p}-{i:02}")))
            .collect();
        let mut swapped = list.clone();
        swapped.swap(3, 4);
        assert!(check_order(&[list.clone(), list.clone(), list.clone()]).is_ok());
        assert!(check_order(&[list.clone(), list.clone(), swapped]).is_err());
        assert!(check_order(&[list.clone(), list.clone(), list[1..].to_vec()]).is_err());
    }
}
