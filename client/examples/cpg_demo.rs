//! `cpg_demo`: steady CPG traffic with an order check, what `cargo xtask demo` runs on every
//! node. Joins GROUP (default `demo`), multicasts RATE numbered messages a second (default
//! 500, queued multicasts), and checks what it delivers:
//!
//! * every sender's numbers arrive consecutively (no loss, duplicate or reorder while both
//!   stay in the group), else an `error` line and exit status 1;
//! * a running hash of the delivery order since the group's last membership change, printed
//!   at every 100th message of each sender as `mark id=<node>/<pid>/<seq> hash=<hex>`: by
//!   virtual synchrony every member that delivers that message has seen the same messages
//!   since the same change, so the same id must carry the same hash on every node.
//!
//! Lines, one per event, flushed at once (an orchestrator reads them):
//!
//! ```text
//! joined node=<n> pid=<p> group=<g>
//! members <n>/<pid>,<n>/<pid>,...
//! mark id=<node>/<pid>/<seq> hash=<16 hex digits>
//! stats sent=<n> delivered=<n>            (every second)
//! error <what>
//! ```
//!
//! `cargo run --release -p totem-client --example cpg_demo -- [--socket PATH] [--group G]
//! [--rate N] [--seconds S]`; ends after S seconds (default: never), at Ctrl-C, or when the
//! daemon goes away (status 0 then: the demo kills daemons on purpose).

extern crate alloc;

use alloc::collections::BTreeMap;
use core::time::Duration;
use std::io::Write as _;
use std::time::Instant;

use totem_client::Error;
use totem_client::cpg::{Cpg, Event, Guarantee, Options};

/// A sender: node id and pid.
type Sender = (u32, u32);

struct Args {
    socket: Option<String>,
    group: String,
    rate: f64,
    seconds: Option<f64>,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        socket: None,
        group: "demo".into(),
        rate: 500.0,
        seconds: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{k} needs a value"));
        match k.as_str() {
            "--socket" => a.socket = Some(value()?),
            "--group" => a.group = value()?,
            "--rate" => {
                let v = value()?;
                a.rate = v
                    .parse()
                    .ok()
                    .filter(|r: &f64| *r > 0.0 && r.is_finite())
                    .ok_or_else(|| format!("--rate: not a positive number: {v:?}"))?;
            }
            "--seconds" => {
                let v = value()?;
                a.seconds = Some(
                    v.parse()
                        .ok()
                        .filter(|s: &f64| *s > 0.0 && s.is_finite())
                        .ok_or_else(|| format!("--seconds: not a positive number: {v:?}"))?,
                );
            }
            other => {
                return Err(format!(
                    "unknown argument {other:?}; usage: cpg_demo [--socket PATH] [--group G] \
                     [--rate N] [--seconds S]"
                ));
            }
        }
    }
    Ok(a)
}

/// FNV-1a over the sender and number of each delivery, in delivery order.
#[derive(Clone, Copy)]
struct OrderHash(u64);

impl OrderHash {
    const START: Self = Self(0xcbf2_9ce4_8422_2325);

    fn add(&mut self, (node, pid): Sender, seq: u64) {
        let bytes = node
            .to_be_bytes()
            .into_iter()
            .chain(pid.to_be_bytes())
            .chain(seq.to_be_bytes());
        for b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

struct Demo {
    cpg: Cpg,
    group: String,
    sent: u64,
    delivered: u64,
    hash: OrderHash,
    last_seq: BTreeMap<Sender, u64>,
    out: std::io::Stdout,
}

impl Demo {
    fn say(&mut self, line: &str) {
        let mut o = self.out.lock();
        let _ = writeln!(o, "{line}");
        let _ = o.flush();
    }

    /// Handles one event; `Err` on a broken check.
    fn on_event(&mut self, ev: Event) -> Result<(), String> {
        match ev {
            Event::Deliver {
                group,
                sender_nodeid,
                sender_pid,
                payload,
                ..
            } if group.as_bytes() == self.group.as_bytes() => {
                let seq = payload
                    .get(..8)
                    .and_then(|b| b.try_into().ok())
                    .map(u64::from_be_bytes)
                    .ok_or_else(|| format!("a {}-byte message without a number", payload.len()))?;
                let sender = (sender_nodeid.0, sender_pid);
                if let Some(last) = self.last_seq.insert(sender, seq)
                    && seq != last + 1
                {
                    return Err(format!(
                        "from {}/{}: message {seq} after {last}",
                        sender.0, sender.1
                    ));
                }
                self.delivered += 1;
                self.hash.add(sender, seq);
                if seq % 100 == 0 {
                    let line = format!(
                        "mark id={}/{}/{seq} hash={:016x}",
                        sender.0, sender.1, self.hash.0
                    );
                    self.say(&line);
                }
            }
            Event::Confchg {
                group,
                members,
                left,
                ..
            } if group.as_bytes() == self.group.as_bytes() => {
                // A new view: the hash restarts here on every member alike.
                self.hash = OrderHash::START;
                for a in left {
                    self.last_seq.remove(&(a.node.0, a.pid));
                }
                let list: Vec<String> = members
                    .iter()
                    .map(|m| format!("{}/{}", m.node.0, m.pid))
                    .collect();
                self.say(&format!("members {}", list.join(",")));
            }
            _ => {}
        }
        Ok(())
    }
}

fn main() -> std::process::ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("cpg_demo: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            let mut o = std::io::stdout().lock();
            let _ = writeln!(o, "error {e}");
            let _ = o.flush();
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    let mut options = Options::new();
    if let Some(s) = &args.socket {
        options = options.socket(s);
    }
    let mut cpg = Cpg::initialize_with(&options).map_err(|e| format!("initialize: {e}"))?;
    let me = cpg.local_get().map_err(|e| format!("local_get: {e}"))?;
    cpg.join(&args.group)
        .map_err(|e| format!("join {}: {e}", args.group))?;
    let mut d = Demo {
        cpg,
        group: args.group.clone(),
        sent: 0,
        delivered: 0,
        hash: OrderHash::START,
        last_seq: BTreeMap::new(),
        out: std::io::stdout(),
    };
    d.say(&format!(
        "joined node={} pid={} group={}",
        me.0,
        std::process::id(),
        args.group
    ));
    let interval = Duration::from_secs_f64(1.0 / args.rate);
    let start = Instant::now();
    let end = args.seconds.map(|s| start + Duration::from_secs_f64(s));
    let mut next_send = start;
    let mut next_stats = start + Duration::from_secs(1);
    loop {
        let now = Instant::now();
        if end.is_some_and(|e| now >= e) {
            break;
        }
        // Send what is due (after a stall, no burst to catch up).
        if now.saturating_duration_since(next_send) > Duration::from_secs(1) {
            next_send = now;
        }
        while next_send <= now {
            match d
                .cpg
                .mcast_queued(&d.group, Guarantee::Agreed, &d.sent.to_be_bytes())
            {
                Ok(()) => {
                    d.sent += 1;
                    next_send += interval;
                }
                Err(e) if e.is_try_again() => break,
                Err(Error::Disconnected) => return Ok(()),
                Err(e) => return Err(format!("mcast: {e}")),
            }
        }
        if now >= next_stats {
            let line = format!("stats sent={} delivered={}", d.sent, d.delivered);
            d.say(&line);
            next_stats += Duration::from_secs(1);
        }
        let wait = next_send
            .min(next_stats)
            .saturating_duration_since(Instant::now())
            .max(Duration::from_micros(200));
        match d.cpg.next_event(Some(wait)) {
            Ok(Some(ev)) => {
                d.on_event(ev)?;
                loop {
                    match d.cpg.try_next_event() {
                        Ok(Some(ev)) => d.on_event(ev)?,
                        Ok(None) => break,
                        Err(Error::Disconnected) => return Ok(()),
                        Err(e) => return Err(format!("dispatch: {e}")),
                    }
                }
            }
            Ok(None) => {}
            Err(Error::Disconnected) => return Ok(()),
            Err(e) => return Err(format!("dispatch: {e}")),
        }
    }
    let _ = d.cpg.flush();
    let _ = d.cpg.finalize();
    Ok(())
}
