//! `cpgbench`: CPG throughput, latency and order, measured the way COROSYNC.md §3.3
//! measured corosync: one client per node joins a group; one node (or all) multicasts
//! AGREED (or SAFE) messages of a given size as fast as flow control allows (or at a fixed
//! `--rate`) for S seconds per size — on `TRY_AGAIN` it dispatches, waits ≤ 1 ms for the
//! fd and retries; every member counts what it delivers and checks each sender's
//! sequence. One line per run and member:
//!
//! ```text
//! cpg size=<B> msgs_s=<n> MB_s=<x> p50_us=<a> p99_us=<b> order=ok|FAILED
//! ```
//!
//! `msgs_s` counts every data message this member delivered (all senders) over the run,
//! from the moment every sender's START is delivered to the moment every sender's END is
//! delivered (the same two points of the total order on every member). Latency is a
//! sender's own round trip, submit → own delivery (`-` on a receive-only member).
//! `order=ok` means: each sender's stream complete and in order, sizes right, all own
//! messages delivered, and with `--verify` also bodies intact and the running hash of the
//! delivery order equal on every member (exchanged in the group at the end of each run).
//!
//! Layout: `main.rs` (options, the run loop), `msg.rs` (the header and hashes), `check.rs`
//! (the receiver's checks and percentiles). Exit status 0 if every run was `order=ok`, 1
//! otherwise, 2 for a usage error.

extern crate alloc;

mod check;
mod msg;

use alloc::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use core::time::Duration;

use check::{Checker, percentile};
use msg::{HEADER_LEN, Header, Kind};
use totem_client::Error;
use totem_client::cpg::{Cpg, Event, Guarantee, Options};

const USAGE: &str = "\
usage: cpgbench [options]
  --socket PATH         totemd's socket (default: $TOTEM_SOCKET, else /var/lib/totem/totemd.sock)
  --group NAME          the group (default cpgbench)
  --sizes B[,B...]      message sizes in bytes, one run each (default 64,1024,16384,65536;
                        at least 40); --size is the same
  --seconds S           length of each run (default 5)
  --guarantee agreed|safe   (default agreed); --safe is the same as --guarantee safe
  --rate N              send N messages/s (per sender) instead of as fast as possible
  --receive-only        do not send: count, check and report only
  --sync                one round trip per message (Cpg::mcast, corosync's cpg_mcast_joined)
                        instead of queued multicasts (Cpg::mcast_queued, the default)
  --zero-copy           write each message straight into shared memory (Cpg::try_zcb_alloc,
                        ZcBuffer::mcast_queued, or ZcBuffer::mcast with --sync) instead of
                        handing the library a slice it copies
  --members M           wait until the group has M members before the first run (default 1)
  --senders K           how many members send (default 1): each run starts when K STARTs
                        are delivered and ends when K ENDs are
  --verify              check bodies, and compare the delivery-order hash across members
  --hash-file PATH      append `run=<r> size=<B> hash=<hex> delivered=<n>` per run
  --timeout S           give up a run S seconds after it should have ended (default 60)
Every member of a multi-node run needs the same --sizes, --seconds, --members and --senders.
";

/// Command-line options.
#[derive(Debug, Clone)]
struct Args {
    socket: Option<PathBuf>,
    group: String,
    sizes: Vec<usize>,
    seconds: f64,
    guarantee: Guarantee,
    rate: Option<f64>,
    receive_only: bool,
    sync: bool,
    zero_copy: bool,
    members: usize,
    senders: usize,
    verify: bool,
    hash_file: Option<PathBuf>,
    timeout: f64,
}

impl Default for Args {
    fn default() -> Self {
        Self {
            socket: None,
            group: "cpgbench".into(),
            sizes: vec![64, 1024, 16384, 65536],
            seconds: 5.0,
            guarantee: Guarantee::Agreed,
            rate: None,
            receive_only: false,
            sync: false,
            zero_copy: false,
            members: 1,
            senders: 1,
            verify: false,
            hash_file: None,
            timeout: 60.0,
        }
    }
}

fn parse(args: &[String]) -> Result<Args, String> {
    let mut a = Args::default();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        let positive = |name: &str, v: &str| -> Result<f64, String> {
            match v.parse::<f64>() {
                Ok(x) if x > 0.0 && x.is_finite() => Ok(x),
                _ => Err(format!("{name} wants a positive number, got `{v}`")),
            }
        };
        let count = |name: &str, v: &str| -> Result<usize, String> {
            match v.parse::<usize>() {
                Ok(x) if x > 0 => Ok(x),
                _ => Err(format!("{name} wants a positive whole number, got `{v}`")),
            }
        };
        match arg.as_str() {
            "--socket" => a.socket = Some(value("--socket")?.into()),
            "--group" => a.group = value("--group")?,
            "--sizes" | "--size" => {
                let v = value("--sizes")?;
                a.sizes = v
                    .split(',')
                    .map(|s| match s.trim().parse::<usize>() {
                        Ok(n) if n >= HEADER_LEN => Ok(n),
                        _ => Err(format!(
                            "--sizes: `{s}` is not a size of at least {HEADER_LEN} bytes"
                        )),
                    })
                    .collect::<Result<_, _>>()?;
            }
            "--seconds" => a.seconds = positive("--seconds", &value("--seconds")?)?,
            "--guarantee" => {
                a.guarantee = match value("--guarantee")?.as_str() {
                    "agreed" => Guarantee::Agreed,
                    "safe" => Guarantee::Safe,
                    other => return Err(format!("--guarantee is agreed or safe, not `{other}`")),
                }
            }
            "--safe" => a.guarantee = Guarantee::Safe,
            "--rate" => a.rate = Some(positive("--rate", &value("--rate")?)?),
            "--receive-only" => a.receive_only = true,
            "--sync" => a.sync = true,
            "--zero-copy" => a.zero_copy = true,
            "--members" => a.members = count("--members", &value("--members")?)?,
            "--senders" => a.senders = count("--senders", &value("--senders")?)?,
            "--verify" => a.verify = true,
            "--hash-file" => a.hash_file = Some(value("--hash-file")?.into()),
            "--timeout" => a.timeout = positive("--timeout", &value("--timeout")?)?,
            "--help" | "-h" => return Err(String::new()),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    if a.senders > a.members {
        a.members = a.senders;
    }
    Ok(a)
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let args = match parse(&argv) {
        Ok(a) => a,
        Err(msg) if msg.is_empty() => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(msg) => {
            eprintln!("cpgbench: {msg}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match Bench::new(args).and_then(|mut b| b.run()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("cpgbench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// What this member saw of one run.
#[derive(Debug, Default)]
struct Run {
    /// Senders whose START was delivered.
    started: BTreeSet<(u32, u32)>,
    /// When the last START was delivered.
    t_start: Option<Instant>,
    /// Senders whose END was delivered, with the data count they announced.
    ended: BTreeMap<(u32, u32), u64>,
    /// When the last END was delivered.
    t_end: Option<Instant>,
    /// Data messages delivered (all senders).
    delivered: u64,
    /// Own data messages delivered.
    own_delivered: u64,
    /// Own round trips, µs.
    latencies: Vec<u64>,
    /// The delivery hash and count at the last END.
    hash_at_end: u64,
    delivered_at_end: u64,
    /// Members' REPORTs: (hash, delivered).
    reports: BTreeMap<(u32, u32), (u64, u64)>,
}

struct Bench {
    args: Args,
    cpg: Cpg,
    me: (u32, u32),
    epoch: Instant,
    checker: Checker,
    runs: BTreeMap<u32, Run>,
    /// The group's members now.
    members: BTreeSet<(u32, u32)>,
    /// Own messages sent (all kinds): the next `seq`.
    seq: u64,
}

/// Why a run could not finish (other errors are the library's).
type BenchResult<T> = Result<T, String>;

fn lib(e: Error) -> String {
    format!("{e}")
}

impl Bench {
    fn new(args: Args) -> BenchResult<Self> {
        let mut options = Options::new();
        if let Some(s) = &args.socket {
            options = options.socket(s);
        }
        let mut cpg = Cpg::initialize_with(&options).map_err(|e| {
            let path = args
                .socket
                .clone()
                .unwrap_or_else(totem_client::default_socket);
            format!("cannot open a CPG session at {}: {e}", path.display())
        })?;
        let node = cpg.local_get().map_err(lib)?;
        let max = cpg.max_message_size();
        if let Some(&too_big) = args.sizes.iter().find(|&&s| s > max) {
            return Err(format!(
                "size {too_big} is above the daemon's largest message ({max} bytes)"
            ));
        }
        let verify = args.verify;
        Ok(Self {
            args,
            cpg,
            me: (node.0, std::process::id()),
            epoch: Instant::now(),
            checker: Checker::new(verify),
            runs: BTreeMap::new(),
            members: BTreeSet::new(),
            seq: 0,
        })
    }

    /// `at` in nanoseconds since the epoch (the time stamps messages carry).
    fn ns_at(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
    }

    fn run(&mut self) -> BenchResult<bool> {
        let group = self.args.group.clone();
        self.cpg.join(&group).map_err(lib)?;
        let deadline = Instant::now() + Duration::from_secs_f64(self.args.timeout);
        let want = self.args.members;
        self.wait_for(deadline, "the group to have --members members", |b| {
            b.members.len() >= want
        })?;
        let at_start = self.members.clone();
        eprintln!(
            "cpgbench: node {} pid {}: {} members in `{group}`, {} sender(s){}",
            self.me.0,
            self.me.1,
            at_start.len(),
            self.args.senders,
            if self.args.receive_only {
                ", receiving only"
            } else {
                ""
            }
        );
        let mut all_ok = true;
        let sizes = self.args.sizes.clone();
        for (i, &size) in sizes.iter().enumerate() {
            let run = u32::try_from(i + 1).unwrap_or(u32::MAX);
            all_ok &= self.one_run(run, size, &at_start)?;
        }
        // Let the others finish reading before this member's leave shows.
        let _ = self.cpg.finalize();
        Ok(all_ok)
    }

    /// Runs `run` with messages of `size` bytes; whether it was `order=ok`.
    fn one_run(
        &mut self,
        run: u32,
        size: usize,
        at_start: &BTreeSet<(u32, u32)>,
    ) -> BenchResult<bool> {
        let sending = !self.args.receive_only;
        let length = Duration::from_secs_f64(self.args.seconds);
        let patience = Duration::from_secs_f64(self.args.timeout);
        let errors_before = self.checker.errors;
        if sending {
            self.send_control(Kind::Start, run, size, 0, 0)?;
        }
        self.wait_for(Instant::now() + patience, "every sender's START", |b| {
            b.run_state(run).t_start.is_some()
        })?;
        let mut sent = 0;
        if sending {
            let t_start = self.run_state(run).t_start.unwrap_or_else(Instant::now);
            sent = self.send_data(run, size, t_start + length)?;
            self.send_control(Kind::End, run, size, sent, 0)?;
        }
        self.wait_for(
            Instant::now() + length + patience,
            "every sender's END",
            |b| b.run_state(run).t_end.is_some(),
        )?;
        let (hash, delivered) = {
            let r = self.run_state(run);
            (r.hash_at_end, r.delivered_at_end)
        };
        let mut same_everywhere = true;
        if self.args.verify {
            self.send_control(Kind::Report, run, size, hash, delivered)?;
            let expected: BTreeSet<(u32, u32)> = at_start.clone();
            self.wait_for(Instant::now() + patience, "every member's REPORT", |b| {
                let members = b.members.clone();
                let r = b.run_state(run);
                expected
                    .iter()
                    .all(|m| r.reports.contains_key(m) || !members.contains(m))
            })?;
            for (m, &(h, n)) in &self.run_state(run).reports {
                if (h, n) != (hash, delivered) {
                    same_everywhere = false;
                    eprintln!(
                        "cpgbench: ORDER: run {run}: member {}/{} delivered {n} messages, hash \
                         {h:016x}; here {delivered}, {hash:016x}",
                        m.0, m.1
                    );
                }
            }
        }
        let errors_now = self.checker.errors;
        let r = self.run_state(run);
        let elapsed = match (r.t_start, r.t_end) {
            (Some(a), Some(b)) => b.saturating_duration_since(a).as_secs_f64(),
            _ => 0.0,
        };
        let own_complete = !sending || r.own_delivered == sent;
        if !own_complete {
            eprintln!(
                "cpgbench: ORDER: run {run}: sent {sent} messages, {} delivered back",
                r.own_delivered
            );
        }
        let ok = errors_now == errors_before && same_everywhere && own_complete;
        let msgs_s = if elapsed > 0.0 {
            r.delivered as f64 / elapsed
        } else {
            0.0
        };
        let mut lat = r.latencies.clone();
        lat.sort_unstable();
        let p = |q| percentile(&lat, q).map_or_else(|| "-".to_owned(), |v| v.to_string());
        println!(
            "cpg size={size} msgs_s={:.0} MB_s={:.2} p50_us={} p99_us={} order={}",
            msgs_s,
            msgs_s * size as f64 / 1e6,
            p(50),
            p(99),
            if ok { "ok" } else { "FAILED" }
        );
        let _ = std::io::stdout().flush();
        eprintln!(
            "cpgbench: run {run} size={size} delivered={} hash={hash:016x} elapsed={elapsed:.3}s \
             sent={sent}",
            r.delivered
        );
        if let Some(path) = &self.args.hash_file {
            let line = format!("run={run} size={size} hash={hash:016x} delivered={delivered}\n");
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .and_then(|mut f| f.write_all(line.as_bytes()))
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
        Ok(ok)
    }

    fn run_state(&mut self, run: u32) -> &mut Run {
        self.runs.entry(run).or_default()
    }

    /// Sends data messages until `end`; how many.
    fn send_data(&mut self, run: u32, size: usize, end: Instant) -> BenchResult<u64> {
        let body = msg::body(run, size);
        let body_hash = msg::body_hash(&body);
        let mut sent = 0u64;
        let interval = self.args.rate.map(|r| Duration::from_secs_f64(1.0 / r));
        let mut next_at = Instant::now();
        let mut since_drain = 0u32;
        let mut last_drain = Instant::now();
        loop {
            let now = Instant::now();
            if now >= end {
                return Ok(sent);
            }
            if let Some(interval) = interval {
                if now < next_at {
                    // Paced: handle events until the next slot.
                    self.pump(Some(next_at.min(end) - now))?;
                    continue;
                }
                next_at += interval;
                // Far behind (a stall): do not catch up with a burst.
                if now > next_at + Duration::from_secs(1) {
                    next_at = now + interval;
                }
            }
            let header = Header {
                kind: Kind::Data,
                run,
                size: size as u32,
                seq: self.seq,
                a: self.ns_at(now),
                b: body_hash,
            }
            .encode();
            self.send(&[&header, &body])?;
            sent += 1;
            since_drain += 1;
            // Throughput mode: read events every 16 sends or 1 ms, so the event ring
            // never fills and latencies stay honest. One clock read per message (`now`,
            // taken before the send): the C twin does the same.
            if interval.is_none()
                && (since_drain >= 16 || now - last_drain >= Duration::from_millis(1))
            {
                self.pump(None)?;
                since_drain = 0;
                last_drain = now;
            }
        }
    }

    fn send_control(
        &mut self,
        kind: Kind,
        run: u32,
        size: usize,
        a: u64,
        b: u64,
    ) -> BenchResult<()> {
        let header = Header {
            kind,
            run,
            size: size as u32,
            seq: self.seq,
            a,
            b,
        }
        .encode();
        self.send(&[&header])
    }

    /// One multicast, whatever flow control says: on TRY_AGAIN, dispatch, wait ≤ 1 ms for
    /// an event, retry (corosync's method in COROSYNC.md §3.3). Queued (no round trip)
    /// unless `--sync`; written in place in shared memory with `--zero-copy`.
    fn send(&mut self, parts: &[&[u8]]) -> BenchResult<()> {
        let group = self.args.group.clone();
        let (sync, guarantee) = (self.args.sync, self.args.guarantee);
        loop {
            let r = if self.args.zero_copy {
                let len = parts.iter().map(|p| p.len()).sum();
                self.cpg.try_zcb_alloc(&group, len).and_then(|mut buf| {
                    let mut at = 0;
                    for p in parts {
                        buf[at..at + p.len()].copy_from_slice(p);
                        at += p.len();
                    }
                    if sync {
                        buf.mcast(guarantee)
                    } else {
                        buf.mcast_queued(guarantee)
                    }
                })
            } else if sync {
                self.cpg.mcast_vectored(&group, guarantee, parts)
            } else {
                self.cpg.mcast_queued_vectored(&group, guarantee, parts)
            };
            match r {
                Ok(()) => {
                    self.seq += 1;
                    return Ok(());
                }
                Err(Error::TryAgain) => self.pump(Some(Duration::from_millis(1)))?,
                Err(e) => return Err(format!("mcast: {e}")),
            }
        }
    }

    /// Waits up to `wait` (`None`: not at all) for an event, then handles every queued one.
    fn pump(&mut self, wait: Option<Duration>) -> BenchResult<()> {
        if let Some(w) = wait
            && let Some(ev) = self.cpg.next_event(Some(w)).map_err(lib)?
        {
            self.on_event(ev);
        }
        while let Some(ev) = self.cpg.try_next_event().map_err(lib)? {
            self.on_event(ev);
        }
        Ok(())
    }

    /// Handles events until `done`, or fails at `deadline` saying what was awaited.
    fn wait_for(
        &mut self,
        deadline: Instant,
        what: &str,
        done: impl Fn(&mut Self) -> bool,
    ) -> BenchResult<()> {
        while !done(self) {
            let now = Instant::now();
            if now >= deadline {
                return Err(format!("gave up waiting for {what}"));
            }
            self.pump(Some((deadline - now).min(Duration::from_millis(100))))?;
        }
        Ok(())
    }

    fn on_event(&mut self, ev: Event) {
        match ev {
            Event::Deliver {
                group,
                sender_nodeid,
                sender_pid,
                payload,
                ..
            } if group.as_bytes() == self.args.group.as_bytes() => {
                let sender = (sender_nodeid.0, sender_pid);
                let Some(h) = Header::decode(&payload) else {
                    self.checker.on_foreign(sender, payload.len());
                    return;
                };
                self.checker.on_message(sender, &h, &payload);
                // One clock read per delivered message (the C twin does the same).
                let now = Instant::now();
                let now_ns = self.ns_at(now);
                let (senders, me) = (self.args.senders, self.me);
                let hash = self.checker.hash;
                let r = self.run_state(h.run);
                match h.kind {
                    Kind::Start => {
                        r.started.insert(sender);
                        if r.started.len() == senders && r.t_start.is_none() {
                            r.t_start = Some(now);
                        }
                    }
                    Kind::Data => {
                        r.delivered += 1;
                        if sender == me {
                            r.own_delivered += 1;
                            r.latencies.push(now_ns.saturating_sub(h.a) / 1000);
                        }
                    }
                    Kind::End => {
                        r.ended.insert(sender, h.a);
                        if r.ended.len() == senders && r.t_end.is_none() {
                            r.t_end = Some(now);
                            r.hash_at_end = hash;
                            r.delivered_at_end = r.delivered;
                        }
                    }
                    Kind::Report => {
                        r.reports.insert(sender, (h.a, h.b));
                    }
                }
            }
            Event::Confchg { group, members, .. }
                if group.as_bytes() == self.args.group.as_bytes() =>
            {
                self.members = members.iter().map(|m| (m.node.0, m.pid)).collect();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(line: &str) -> Result<Args, String> {
        parse(
            &line
                .split_whitespace()
                .map(str::to_owned)
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn parses_options() {
        let a =
            p("--sizes 64,4096 --seconds 0.5 --safe --rate 100 --members 3 --senders 2 --verify")
                .unwrap();
        assert_eq!(a.sizes, vec![64, 4096]);
        assert_eq!(
            (a.seconds, a.guarantee, a.rate),
            (0.5, Guarantee::Safe, Some(100.0))
        );
        assert_eq!((a.members, a.senders, a.verify), (3, 2, true));
        assert!(!a.sync, "queued multicasts by default");
        assert!(p("--sync").unwrap().sync);
        assert!(!a.zero_copy, "the copying calls by default");
        assert!(p("--zero-copy --sync").unwrap().zero_copy);
        assert_eq!(p("--senders 3").unwrap().members, 3, "senders are members");
        for bad in [
            "--sizes 10",
            "--seconds 0",
            "--rate",
            "--guarantee fifo",
            "--what",
        ] {
            assert!(p(bad).is_err(), "{bad}");
        }
        assert_eq!(p("--help").unwrap_err(), "");
    }
}
