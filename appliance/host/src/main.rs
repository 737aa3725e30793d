//! `totem-appliance`: the appliance core (`totem-appliance`, `#![no_std]`) on Linux, as a
//! firmware would run it. Its network is a TAP interface ([`tap::TapDevice`], the only
//! part that talks to the OS's network); its application is a CPG chat: it joins a group,
//! multicasts each line read on stdin and prints each delivery and membership change on
//! stdout in `cpg_chat`'s format (client/examples/cpg_chat.rs), so its output and a totemd
//! client's can be compared line by line.
//!
//! What this binary provides as the integrator (see the core's `platform.rs`):
//! the clock (`std::time::Instant` since start), the allocator (the core's fixed-size
//! [`Heap`] of [`HEAP_SIZE`] bytes as `#[global_allocator]`: every allocation of the
//! process, the stack's and std's alike, comes from it), the device (the TAP interface) and
//! the persistent ring seq (a file, replaced atomically).
//!
//! stdin: a line is multicast to the group; `/heap` prints the heap line instead; end of
//! input leaves the ring cleanly, prints the heap line and exits 0.
//!
//! ```text
//! node <id> pid <pid>: joined <group>; type lines, Ctrl-D to leave
//! * ring <rep>.<seq>: nodes 1,2,3
//! * <node>/<pid> joined <group> (Join)
//! * <group>: 1/4242 2/4243 3/1
//! <node/pid> <payload>
//! heap: capacity <B> used <B> peak <B> high_water <B> live <n> failures <n>
//! ```

extern crate alloc;

mod args;
mod tap;

use alloc::collections::VecDeque;
use std::io::{self, Read as _, Write as _};
use std::os::fd::AsFd as _;
use std::path::PathBuf;
use std::process::ExitCode;

use totem_appliance::services::cpg::wire::{CpgGuarantee, CsError};
use totem_appliance::services::{GroupName, cpg::wire::Confchg};
use totem_appliance::smoltcp::iface::{Config as IfaceConfig, Interface, SocketSet, SocketStorage};
use totem_appliance::smoltcp::socket::udp;
use totem_appliance::smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr};
use totem_appliance::totem_proto::NodeId;
use totem_appliance::totem_proto::time::Instant;
use totem_appliance::transport_smoltcp::{MAX_FRAME, Mode, to_smoltcp_instant};
use totem_appliance::{AppEvent, Appliance, ApplianceConfig, Clock, Heap, Net, RingSeqStore};

use crate::args::Options;
use crate::tap::TapDevice;

/// The heap: what a firmware would reserve for the stack. It must hold the working set
/// (measured: see the README) plus the largest message the ring may reassemble
/// (`max_message_len`, 1 MiB as totemd) plus what std uses in this process.
const HEAP_SIZE: usize = 4 << 20;

#[global_allocator]
static HEAP: Heap<HEAP_SIZE> = Heap::new();

/// UDP socket buffers (transport-smoltcp README: 32 datagrams / 32 KiB suggested; the
/// receive side gets more room for bursts from two busy Linux nodes).
const RX_PACKETS: usize = 64;
const RX_BYTES: usize = 64 * 1024;
const TX_PACKETS: usize = 32;
const TX_BYTES: usize = 32 * 1024;

/// Longest sleep between turns when nothing is due.
const MAX_WAIT: core::time::Duration = core::time::Duration::from_millis(500);

/// How long to keep turning after leaving the ring, so the leave message gets out.
const LEAVE_FLUSH: core::time::Duration = core::time::Duration::from_millis(100);

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let opts = match args::parse(&argv) {
        Ok(Some(o)) => o,
        Ok(None) => {
            println!("{}", args::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("totem-appliance: {e}\n\n{}", args::USAGE);
            return ExitCode::from(2);
        }
    };
    Logger::install(opts.verbose);
    match run(&opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("totem-appliance: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The integrator's clock: microseconds since the process started.
#[derive(Debug)]
struct HostClock(std::time::Instant);

impl Clock for HostClock {
    fn now(&mut self) -> Instant {
        Instant::from_micros(u64::try_from(self.0.elapsed().as_micros()).unwrap_or(u64::MAX))
    }
}

/// The integrator's ring seq store: one decimal number in a file, replaced atomically
/// (write a sibling, fsync, rename, fsync the directory) so a crash leaves the old or the
/// new value, never a torn one.
#[derive(Debug)]
struct SeqFile(PathBuf);

impl RingSeqStore for SeqFile {
    type Error = String;

    fn load(&mut self) -> Result<u64, String> {
        match std::fs::read_to_string(&self.0) {
            Ok(text) => text.trim().parse().map_err(|_| {
                format!(
                    "{} does not hold a ring seq ({:?}); remove it only if no other node runs",
                    self.0.display(),
                    text.trim()
                )
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(format!("{}: {e}", self.0.display())),
        }
    }

    fn store(&mut self, seq: u64) -> Result<(), String> {
        let write = || -> io::Result<()> {
            let dir = match self.0.parent() {
                Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                _ => PathBuf::from("."),
            };
            std::fs::create_dir_all(&dir)?;
            let tmp = self.0.with_extension("new");
            let mut f = std::fs::File::create(&tmp)?;
            writeln!(f, "{seq}")?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.0)?;
            std::fs::File::open(&dir)?.sync_all()
        };
        write().map_err(|e| format!("{}: {e}", self.0.display()))
    }
}

/// The MAC of an appliance at `addr`: locally administered (02:…), the IPv4 address after
/// it, so that nodes on one subnet never clash.
fn mac_for(addr: core::net::Ipv4Addr) -> EthernetAddress {
    let [a, b, c, d] = addr.octets();
    EthernetAddress([0x02, 0x00, a, b, c, d])
}

fn run(o: &Options) -> Result<(), String> {
    let mut clock = HostClock(std::time::Instant::now());
    let mut store = SeqFile(o.state.clone());
    let last_seq = store.load()?;

    let mut device = TapDevice::open(&o.tap).map_err(|e| e.to_string())?;
    let mut iface_cfg = IfaceConfig::new(HardwareAddress::Ethernet(mac_for(o.addr)));
    iface_cfg.random_seed = u64::from(o.node_id) ^ u64::from(std::process::id());
    let mut iface = Interface::new(iface_cfg, &mut device, to_smoltcp_instant(clock.now()));
    let mut pushed = Ok(());
    iface.update_ip_addrs(|addrs| {
        pushed = addrs.push(IpCidr::new(IpAddress::Ipv4(o.addr), o.prefix));
    });
    pushed.map_err(|_| "smoltcp has no room for the interface address".to_owned())?;

    // The socket storage lives on this function's stack for the whole run, as a firmware
    // keeps it in `static`s.
    let mut socket_storage = [SocketStorage::EMPTY; 2];
    let mut rx_meta = [udp::PacketMetadata::EMPTY; RX_PACKETS];
    let mut rx_bytes = [0u8; RX_BYTES];
    let mut tx_meta = [udp::PacketMetadata::EMPTY; TX_PACKETS];
    let mut tx_bytes = [0u8; TX_BYTES];
    let net = Net {
        iface,
        device,
        sockets: SocketSet::new(&mut socket_storage[..]),
        rx: udp::PacketBuffer::new(&mut rx_meta[..], &mut rx_bytes[..]),
        tx: udp::PacketBuffer::new(&mut tx_meta[..], &mut tx_bytes[..]),
    };

    let node = NodeId(o.node_id);
    let mode = match o.mcastaddr {
        Some(group) => Mode::Multicast(group),
        None => Mode::Unicast,
    };
    let mut config = ApplianceConfig::like_totemd(node, &o.cluster_name, &o.nodes, mode);
    config.ring.token = totem_appliance::totem_proto::time::Duration::from_millis(o.token_ms);
    config.ring.seed = u64::from(o.node_id) ^ u64::from(std::process::id());
    config.set_netmtu(o.netmtu);
    config.transport.port = o.port;
    config.app_pid = o.pid;
    let mut app = Appliance::new(&config, net, clock.now(), last_seq).map_err(|e| e.to_string())?;
    let eff = app.ring().config();
    log::info!(
        "config: node {} cluster {:?} (id {:#010x}) {} port {} token {} ms (effective {}) \
         consensus {} frame {} B (max {MAX_FRAME}) max message {} B, last ring seq {last_seq}",
        o.node_id,
        o.cluster_name,
        eff.cluster_id,
        o.mcastaddr
            .map_or_else(|| "udpu".to_owned(), |g| format!("udp {g}")),
        o.port,
        o.token_ms,
        eff.token,
        eff.consensus,
        eff.frame_len,
        eff.max_message_len,
    );

    let group =
        GroupName::new(o.group.as_bytes()).map_err(|e| format!("group name {:?}: {e}", o.group))?;
    app.join(&group)
        .map_err(|e| format!("cannot join {}: {e:?}", o.group))?;
    println!(
        "node {} pid {}: joined {}; type lines, Ctrl-D to leave",
        o.node_id, o.pid, o.group
    );

    let stdin = io::stdin();
    let mut input = Input::default();
    let mut chunk = [0u8; 64 * 1024];
    let mut outbox: VecDeque<Vec<u8>> = VecDeque::new();
    let mut leaving_since: Option<std::time::Instant> = None;
    loop {
        let deadline = app
            .turn(&mut clock, &mut store)
            .map_err(|e| e.to_string())?;
        while let Some(ev) = app.poll_event() {
            print_event(&ev);
        }
        if let Some(since) = leaving_since {
            if since.elapsed() >= LEAVE_FLUSH {
                break;
            }
        } else {
            // Lines waiting for flow control to clear, oldest first.
            while let Some(line) = outbox.front() {
                match app.mcast(&group, CpgGuarantee::Agreed, line) {
                    Err(CsError::TryAgain) => break,
                    Err(e) => {
                        eprintln!("totem-appliance: mcast failed: {e:?}");
                        outbox.pop_front();
                    }
                    Ok(()) => {
                        outbox.pop_front();
                    }
                }
            }
            if input.eof && outbox.is_empty() {
                log::info!("end of input: leaving the ring");
                app.leave(clock.now());
                leaving_since = Some(std::time::Instant::now());
            }
        }
        // Frames the application just queued must leave before the sleep.
        let wait = if outbox.is_empty() && !input.has_lines() {
            deadline.map_or(MAX_WAIT, |d| {
                let now = clock.now();
                let us = d.total_micros().saturating_sub(now.total_micros());
                core::time::Duration::from_micros(us).min(MAX_WAIT)
            })
        } else {
            core::time::Duration::ZERO
        };
        let watch = (!input.eof).then(|| stdin.as_fd());
        if app.device_mut().wait(watch, wait) {
            input.read(&stdin, &mut chunk);
        }
        while let Some(line) = input.next_line() {
            if line == b"/heap" {
                print_heap();
            } else {
                outbox.push_back(line);
            }
        }
    }
    let t = *app.transport().stats();
    let d = app.device_mut().stats();
    log::info!(
        "left: turns {} rx {} tx {} (transport sent {} received {} flushed {}; tap rx {} tx {} errors {})",
        app.stats().turns,
        app.stats().rx_datagrams,
        app.stats().tx_frames,
        t.sent,
        t.received,
        t.flushed,
        d.rx_frames,
        d.tx_frames,
        d.errors
    );
    print_heap();
    Ok(())
}

/// Lines from stdin, read without blocking the loop.
#[derive(Debug, Default)]
struct Input {
    buf: Vec<u8>,
    eof: bool,
}

impl Input {
    /// Reads what stdin has (it was reported readable, so this does not block). The buffer
    /// is larger than std's internal one, so std reads straight into it and keeps nothing
    /// back that poll(2) would not see.
    /// `chunk` is scratch space on the caller's stack, so that the heap figures are the
    /// stack's, not this binary's stdin buffer.
    fn read(&mut self, stdin: &io::Stdin, chunk: &mut [u8]) {
        match stdin.lock().read(chunk) {
            Ok(0) => self.eof = true,
            Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                eprintln!("totem-appliance: stdin: {e}");
                self.eof = true;
            }
        }
        if self.eof && !self.buf.is_empty() && !self.buf.ends_with(b"\n") {
            // The last line had no newline: it is still a line.
            self.buf.push(b'\n');
        }
    }

    fn has_lines(&self) -> bool {
        self.buf.contains(&b'\n')
    }

    fn next_line(&mut self) -> Option<Vec<u8>> {
        let end = self.buf.iter().position(|b| *b == b'\n')?;
        let mut line: Vec<u8> = self.buf.drain(..=end).collect();
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        Some(line)
    }
}

fn print_heap() {
    let s = HEAP.stats();
    println!(
        "heap: capacity {} used {} peak {} high_water {} live {} failures {}",
        s.capacity, s.used, s.peak, s.high_water, s.live, s.failures
    );
}

/// One event in cpg_chat's format.
fn print_event(ev: &AppEvent) {
    match ev {
        AppEvent::Ring { ring_id, members } => {
            let list: Vec<String> = members.iter().map(|n| n.0.to_string()).collect();
            println!(
                "* ring {}.{}: nodes {}",
                ring_id.rep.0,
                ring_id.seq,
                list.join(",")
            );
        }
        AppEvent::Deliver {
            sender, payload, ..
        } => println!(
            "<{}/{}> {}",
            sender.node.0,
            sender.pid,
            String::from_utf8_lossy(payload)
        ),
        AppEvent::Confchg(Confchg {
            group,
            members,
            left,
            joined,
        }) => {
            for a in joined {
                println!("* {}/{} joined {group} ({:?})", a.node.0, a.pid, a.reason);
            }
            for a in left {
                println!("* {}/{} left {group} ({:?})", a.node.0, a.pid, a.reason);
            }
            let list: Vec<String> = members
                .iter()
                .map(|m| format!("{}/{}", m.node.0, m.pid))
                .collect();
            println!("* {group}: {}", list.join(" "));
        }
    }
}

/// `log` to stderr: `<seconds since start> <LEVEL> <message>`.
#[derive(Debug)]
struct Logger {
    start: std::time::Instant,
    level: log::LevelFilter,
}

impl Logger {
    fn install(verbose: bool) {
        let level = if verbose {
            log::LevelFilter::Debug
        } else {
            log::LevelFilter::Info
        };
        let logger = Box::leak(Box::new(Self {
            start: std::time::Instant::now(),
            level,
        }));
        if log::set_logger(logger).is_ok() {
            log::set_max_level(level);
        }
    }
}

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= self.level
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            let _ = writeln!(
                io::stderr(),
                "{:9.3} {:<5} {}",
                self.start.elapsed().as_secs_f64(),
                record.level(),
                record.args()
            );
        }
    }

    fn flush(&self) {}
}
