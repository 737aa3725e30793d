//! The driver: N rings, the network, the fault schedule and the workload, advanced one event
//! at a time in simulated time, every ring output fed to the invariant checker.
//!
//! Every step is STYLE point 11's driver loop, the same as node's tokio task and a firmware
//! main loop, with the clock replaced by the next pending event (str0m's `progress`, quinn's
//! `Pair::step`):
//!
//! ```text
//! now = min(next datagram arrival, min over rings of poll_timeout(), next scheduled action)
//! feed exactly one input at `now`: handle_datagram | handle_timeout | submit/leave/fault
//! drain poll_event until None   (persist RingSeqUsed first; check every event)
//! drain poll_transmit until None (into the network)
//! re-read that ring's poll_timeout()
//! ```
//!
//! Ties at one instant are broken deterministically: scheduled actions, then datagrams (in
//! the order they were sent), then timers (by node). A run has two phases (openraft's
//! fuzzer): the **safety phase** applies the scenario's faults while the workload submits;
//! the **liveness phase** removes every fault (heals, restarts every crashed or departed
//! node, resumes paused ones), stops the workload, waits for the live nodes to converge,
//! then has each submit a few probes and waits until everything is delivered and the
//! cluster is quiet — within 20 × (token + consensus) of simulated time.
//!
//! Crash = drop the `Ring` (its datagrams in flight still arrive elsewhere; datagrams to it
//! are lost); restart = `Ring::new` with the ring seq the node last persisted, as a new
//! incarnation; pause = the node gets no input until it resumes, then everything queued for
//! it arrives at once and its overdue timers fire (in a seeded order: timers first or
//! datagrams first, as a real event loop might). A clean leave is `Ring::leave`, after which
//! the process stops.

use alloc::collections::{BTreeSet, BinaryHeap, VecDeque};
use core::cmp::{Ordering, Reverse};
use core::fmt;

use bytes::Bytes;
use totem_proto::time::{Duration, Instant};
use totem_proto::{Guarantee, NodeId, RingId, ServiceId};
use totem_ring::{Event, Ring, State, SubmitError};
use totem_transport::rng::SplitMix64;
use totem_transport::{Dest, PeerAddr};

use crate::invariants::{End, InvariantChecker, LivenessOutcome, Proc, Property, Violation};
use crate::net::{Net, NetStats, index, node};
use crate::payload::{self, MsgId};
use crate::scenario::{Fault, Scenario};
use crate::trace::{EventSummary, FrameSummary, Tracer};

/// How to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunOptions {
    /// Print every input, output, event and fault (`--trace`).
    pub print_trace: bool,
    /// Hash the trace (`--check-determinism`).
    pub hash_trace: bool,
    /// Stop at the first violation (the checker's own tests search seeds this way).
    pub stop_at_first_violation: bool,
    /// Run the liveness phase after the safety phase.
    pub liveness: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            print_trace: false,
            hash_trace: false,
            stop_at_first_violation: false,
            liveness: true,
        }
    }
}

/// Counters of one run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunStats {
    /// Inputs fed (datagrams, timeouts, actions).
    pub steps: u64,
    /// Datagrams handed to a ring.
    pub datagrams: u64,
    /// Datagrams that arrived at a node that was down.
    pub to_dead: u64,
    /// Messages delivered, summed over processes.
    pub deliveries: u64,
    /// Configuration events, summed over processes.
    pub configurations: u64,
    /// Messages `submit` accepted.
    pub submitted: u64,
    /// `submit` calls refused with back-pressure.
    pub refused: u64,
    /// Faults applied.
    pub faults: u64,
    /// The network's counters.
    pub net: NetStats,
}

/// What a run found.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// The scenario that ran.
    pub scenario: Scenario,
    /// The first violations found (up to 200).
    pub violations: Vec<Violation>,
    /// How many were found in all.
    pub found: usize,
    /// How many were found per property.
    pub by_property: [(Property, usize); 7],
    /// The recent events of the nodes involved in the first violation, as it was found.
    pub context: Vec<String>,
    /// Simulated time from the end of the faults to the first convergence.
    pub reconverged_after: Option<Duration>,
    /// Simulated time at the end of the run.
    pub end: Instant,
    /// Hash of the whole trace (0 unless hashed).
    pub trace_hash: u64,
    /// Counters.
    pub stats: RunStats,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Action {
    Start(usize),
    Fault(Fault),
    /// The workload of (node, incarnation) submits.
    Submit(usize, u32),
    /// Retry messages refused with back-pressure.
    Retry(usize, u32),
    Resume(usize),
    EndSafety,
}

#[derive(Debug)]
struct Scheduled {
    at: Instant,
    order: u64,
    action: Action,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.order) == (other.at, other.order)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.order).cmp(&(other.at, other.order))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    NotStarted,
    Alive,
    Paused(Instant),
    Down,
    Left,
}

/// A message the application wants to submit.
#[derive(Debug, Clone, Copy)]
struct Spec {
    len: usize,
    guarantee: Guarantee,
    probe: bool,
}

#[derive(Debug, Default)]
struct App {
    /// The next counter (accepted submissions so far in this incarnation).
    counter: u64,
    /// Not yet accepted, in order; refused ones wait at the head.
    pending: VecDeque<Spec>,
    retry_armed: bool,
}

/// What the driver remembers of a node's recent past, for failure reports.
#[derive(Debug)]
enum Recent {
    Event(Event),
    Submitted(MsgId, Guarantee, usize),
    Note(String),
}

/// A node's recent past, for failure reports: the last messages (deliveries and
/// submissions) and, apart, the last configurations and faults, so a flood of deliveries
/// does not push the configuration changes out of the report.
#[derive(Debug, Default)]
struct History {
    next: u64,
    msgs: VecDeque<(u64, Instant, u32, Recent)>,
    other: VecDeque<(u64, Instant, u32, Recent)>,
}

impl History {
    const MSGS: usize = 24;
    const OTHER: usize = 16;

    fn push(&mut self, now: Instant, inc: u32, r: Recent) {
        let is_msg = matches!(r, Recent::Submitted(..) | Recent::Event(Event::Deliver(_)));
        let (q, cap) = if is_msg {
            (&mut self.msgs, Self::MSGS)
        } else {
            (&mut self.other, Self::OTHER)
        };
        if q.len() == cap {
            q.pop_front();
        }
        q.push_back((self.next, now, inc, r));
        self.next += 1;
    }

    /// Both kinds, in the order they happened.
    fn entries(&self) -> Vec<&(u64, Instant, u32, Recent)> {
        let mut v: Vec<_> = self.msgs.iter().chain(self.other.iter()).collect();
        v.sort_by_key(|e| e.0);
        v
    }
}

#[derive(Debug)]
struct Node {
    id: NodeId,
    inc: u32,
    ring: Option<Ring>,
    status: Status,
    /// The last `RingSeqUsed`: survives crashes (it is on disk).
    persisted: u64,
    /// Datagrams that arrived while paused.
    inbox: Vec<(NodeId, Bytes)>,
    /// The deadline this node has in the timer set.
    timer: Option<Instant>,
    app: App,
    recent: History,
    /// The ring's membership state after the last input (traced when it changes).
    state: Option<State>,
}

impl Node {
    fn proc(&self) -> Proc {
        Proc {
            node: self.id,
            incarnation: self.inc,
        }
    }

    fn remember(&mut self, now: Instant, r: Recent) {
        self.recent.push(now, self.inc, r);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Safety,
    Liveness,
}

/// Consecutive steps at one instant before the run is declared stalled.
const SAME_INSTANT_LIMIT: u64 = 200_000;
/// Steps per run before it is declared runaway.
const STEP_LIMIT: u64 = 60_000_000;

/// One simulated cluster. See the [module docs](self).
#[derive(Debug)]
pub struct Sim {
    sc: Scenario,
    opts: RunOptions,
    now: Instant,
    net: Net,
    nodes: Vec<Node>,
    actions: BinaryHeap<Reverse<Scheduled>>,
    order: u64,
    /// (deadline, node index) of every running ring's `poll_timeout`.
    timers: BTreeSet<(Instant, usize)>,
    checker: InvariantChecker,
    tracer: Tracer,
    /// Workload and pause-ordering choices.
    rng: SplitMix64,
    phase: Phase,
    stats: RunStats,
    context: Vec<String>,
    config_changed: bool,
    delivered: bool,
    same_instant: u64,
    aborted: bool,
}

impl Sim {
    /// Runs `sc` to the end and reports.
    pub fn run(sc: Scenario, opts: RunOptions) -> RunResult {
        let mut sim = Self::new(sc, opts);
        let (outcome, reconverged) = sim.run_phases();
        // A run cut short (a stall, or stopped at its first violation) has messages in
        // flight: the end-of-run checks would only report those.
        if outcome.judged {
            sim.checker.finish(sim.now, &outcome);
        }
        sim.snapshot();
        RunResult {
            violations: sim.checker.violations().to_vec(),
            found: sim.checker.found(),
            by_property: sim.checker.found_by_property(),
            context: sim.context,
            reconverged_after: reconverged,
            end: sim.now,
            trace_hash: sim.tracer.hash() ^ u64::from(sim.checker.found() as u32),
            stats: RunStats {
                net: sim.net.stats,
                ..sim.stats
            },
            scenario: sim.sc,
        }
    }

    fn new(sc: Scenario, opts: RunOptions) -> Self {
        let mut rng = SplitMix64::new(sc.seed ^ 0x6472_6976_6572_0002);
        let mut link_rng = rng.fork();
        let net_rng = rng.fork();
        let net = Net::new(sc.nodes, net_rng, |_, _| sc.link(&mut link_rng));
        let nodes = (0..sc.nodes)
            .map(|i| Node {
                id: node(i),
                inc: 0,
                ring: None,
                status: Status::NotStarted,
                persisted: 0,
                inbox: Vec::new(),
                timer: None,
                app: App::default(),
                recent: History::default(),
                state: None,
            })
            .collect();
        Self {
            opts,
            now: Instant::ZERO,
            net,
            nodes,
            actions: BinaryHeap::new(),
            order: 0,
            timers: BTreeSet::new(),
            checker: InvariantChecker::new(),
            tracer: Tracer::new(opts.print_trace, opts.hash_trace),
            rng,
            phase: Phase::Safety,
            stats: RunStats::default(),
            context: Vec::new(),
            config_changed: false,
            delivered: false,
            same_instant: 0,
            aborted: false,
            sc,
        }
    }

    fn schedule(&mut self, at: Instant, action: Action) {
        self.order += 1;
        self.actions.push(Reverse(Scheduled {
            at,
            order: self.order,
            action,
        }));
    }

    /// The safety phase, then (unless stopped) the liveness phase.
    fn run_phases(&mut self) -> (LivenessOutcome, Option<Duration>) {
        self.trace(format_args!("scenario {}", self.sc.describe()));
        for i in 0..self.sc.nodes {
            let at = Instant::ZERO + self.sc.starts[i];
            self.schedule(at, Action::Start(i));
        }
        for (at, f) in self.sc.faults.clone() {
            self.schedule(Instant::ZERO + at, Action::Fault(f));
        }
        self.schedule(Instant::ZERO + self.sc.safety, Action::EndSafety);

        while self.phase == Phase::Safety && !self.aborted {
            if !self.step(None) {
                break;
            }
        }
        if self.aborted || !self.opts.liveness {
            return (LivenessOutcome::default(), None);
        }

        let start = self.now;
        let bound = self.sc.liveness_bound();
        // However the cluster flaps, the run ends: three bounds at most.
        let hard_deadline = start + bound.saturating_mul(3);
        let token = self.sc.token();
        // The ring every live node is in now, and since when. "Converged" is read from the
        // configurations installed; nodes may already be gathering again without a word
        // (a token lost just after), so the probes are a round per converged ring: when
        // the cluster re-forms, a new round goes out and only the last round must reach
        // every live node (earlier ones may be delivered in a passing partition, as EVS
        // allows).
        let mut converged: Option<(RingId, Instant)> = None;
        let mut anchor = start;
        let mut probed: Option<RingId> = None;
        let mut settle: Option<Instant> = None;
        self.config_changed = true;
        loop {
            if self.config_changed {
                self.config_changed = false;
                let now = self.now;
                match (self.checker.converged(), converged) {
                    (Some(r), Some((c, _))) if r == c => {}
                    (Some(r), _) => {
                        converged = Some((r, now));
                        anchor = now;
                        self.trace(format_args!(
                            "{now} converged in ring {r} after {}",
                            now - start
                        ));
                    }
                    (None, Some(_)) => {
                        converged = None;
                        anchor = now;
                        settle = None;
                        self.trace(format_args!("{now} convergence lost"));
                    }
                    (None, None) => {}
                }
                if let Some((r, _)) = converged
                    && probed != Some(r)
                {
                    probed = Some(r);
                    settle = None;
                    self.checker.new_probe_round();
                    self.submit_probes();
                }
            }
            if converged.is_some() && settle.is_none() && self.delivered {
                self.delivered = false;
                if self.quiet() {
                    // Everything delivered: watch a little longer for a late reconfiguration.
                    settle = Some(self.now + token.saturating_mul(3));
                }
            }
            // Converge within the bound; then deliver everything within the bound again
            // (the backlog of a long partition drains at the ring's pace).
            let deadline = (anchor + bound).min(hard_deadline);
            let limit = settle.map_or(deadline, |s| s.min(deadline));
            if self.aborted || !self.step(Some(limit)) {
                break;
            }
        }
        let converged_after = converged.map(|(_, t)| t - start);
        let outcome = LivenessOutcome {
            judged: !self.aborted,
            bound,
            converged_after,
        };
        (outcome, converged_after)
    }

    /// Everything submitted by a live process delivered by it, the probes delivered
    /// everywhere, and no ring with data still queued.
    fn quiet(&self) -> bool {
        self.checker.probes_missing() == 0
            && self.checker.self_missing() == 0
            && self
                .nodes
                .iter()
                .all(|n| n.ring.as_ref().is_none_or(|r| r.queued_bytes() == 0))
    }

    /// The next event's time.
    fn next_time(&self) -> Option<Instant> {
        let ta = self.actions.peek().map(|Reverse(s)| s.at);
        let tn = self.net.poll_timeout();
        let tt = self.timers.first().map(|x| x.0);
        [ta, tn, tt].into_iter().flatten().min()
    }

    /// Feeds the next input, if it is due by `limit`; false when there is none.
    fn step(&mut self, limit: Option<Instant>) -> bool {
        let Some(t) = self.next_time() else {
            return false;
        };
        if limit.is_some_and(|l| t > l) {
            self.now = self.now.max(limit.unwrap_or(t));
            return false;
        }
        if t == self.now {
            self.same_instant += 1;
        } else {
            self.same_instant = 0;
        }
        self.now = self.now.max(t);
        self.stats.steps += 1;
        if self.same_instant > SAME_INSTANT_LIMIT || self.stats.steps > STEP_LIMIT {
            let detail = if self.same_instant > SAME_INSTANT_LIMIT {
                format!(
                    "{} consecutive inputs at {} without time advancing",
                    self.same_instant, self.now
                )
            } else {
                format!("more than {STEP_LIMIT} inputs in one run")
            };
            self.checker.stalled(self.now, detail);
            self.aborted = true;
            self.snapshot();
            return false;
        }

        if self.actions.peek().is_some_and(|Reverse(s)| s.at == t) {
            if let Some(Reverse(s)) = self.actions.pop() {
                self.act(s.action);
            }
        } else if self.net.poll_timeout() == Some(t) {
            if let Some(d) = self.net.poll_output(t) {
                self.datagram(index(d.to), d.from, d.frame);
            }
        } else if let Some((_, i)) = self.timers.pop_first() {
            self.nodes[i].timer = None;
            self.timeout(i);
        }

        if self.checker.found() > 0 {
            self.snapshot();
            if self.opts.stop_at_first_violation {
                self.aborted = true;
            }
        }
        true
    }

    fn trace(&mut self, args: fmt::Arguments<'_>) {
        self.tracer.line(args, None);
    }

    // ---- inputs ----

    fn datagram(&mut self, i: usize, from: NodeId, frame: Bytes) {
        let now = self.now;
        let n = &mut self.nodes[i];
        match n.status {
            Status::Alive => {
                if self.tracer.on() {
                    self.tracer.line(
                        format_args!("{now} {} in  <- n{from} {}", n.proc(), FrameSummary(&frame)),
                        Some(&frame),
                    );
                }
                self.stats.datagrams += 1;
                if let Some(r) = n.ring.as_mut() {
                    r.handle_datagram(now, PeerAddr::Node(from), &frame);
                }
                self.drain(i);
            }
            Status::Paused(_) => n.inbox.push((from, frame)),
            Status::NotStarted | Status::Down | Status::Left => {
                self.stats.to_dead += 1;
                if self.tracer.on() {
                    let to = n.id;
                    self.tracer.line(
                        format_args!("{now} n{to} (down) drops <- n{from}"),
                        Some(&frame),
                    );
                }
            }
        }
    }

    fn timeout(&mut self, i: usize) {
        let now = self.now;
        if self.tracer.on() {
            let p = self.nodes[i].proc();
            self.trace(format_args!("{now} {p} timeout"));
        }
        if let Some(r) = self.nodes[i].ring.as_mut() {
            r.handle_timeout(now);
        }
        self.drain(i);
    }

    /// Drains node `i`'s events (to the checker) and transmits (to the network) after an
    /// input, and re-files its next deadline.
    fn drain(&mut self, i: usize) {
        let now = self.now;
        let Self {
            nodes,
            checker,
            net,
            tracer,
            stats,
            config_changed,
            delivered,
            timers,
            ..
        } = self;
        let n = &mut nodes[i];
        let proc = n.proc();
        let Some(ring) = n.ring.as_mut() else { return };
        while let Some(ev) = ring.poll_event() {
            match &ev {
                // On disk before anything that follows is sent (the ring's contract).
                Event::RingSeqUsed(s) => n.persisted = *s,
                Event::Configuration(_) => {
                    *config_changed = true;
                    stats.configurations += 1;
                }
                Event::Deliver(_) => {
                    *delivered = true;
                    stats.deliveries += 1;
                }
            }
            if tracer.on() {
                tracer.line(format_args!("{now} {proc} ev  {}", EventSummary(&ev)), None);
            }
            checker.event(now, proc, &ev);
            n.recent.push(now, proc.incarnation, Recent::Event(ev));
        }
        let state = ring.state();
        if n.state != Some(state) {
            if tracer.on() {
                let was = n.state.map_or_else(|| "-".to_string(), |s| s.to_string());
                tracer.line(
                    format_args!(
                        "{now} {proc} state {was} -> {state} ring={}",
                        ring.ring_id()
                    ),
                    None,
                );
            }
            n.state = Some(state);
        }
        while let Some(tx) = ring.poll_transmit() {
            if tracer.on() {
                let dest = match tx.dest {
                    Dest::Multicast => "all".to_string(),
                    Dest::Node(d) => format!("n{d}"),
                };
                tracer.line(
                    format_args!("{now} {proc} out -> {dest} {}", FrameSummary(&tx.frame)),
                    Some(&tx.frame),
                );
            }
            net.handle_input(now, proc.node, tx.dest, tx.frame);
        }
        let next = if n.status == Status::Alive {
            ring.poll_timeout()
        } else {
            None
        };
        if next != n.timer {
            if let Some(t) = n.timer {
                timers.remove(&(t, i));
            }
            if let Some(t) = next {
                timers.insert((t, i));
            }
            n.timer = next;
        }
    }

    fn unfile_timer(&mut self, i: usize) {
        if let Some(t) = self.nodes[i].timer.take() {
            self.timers.remove(&(t, i));
        }
    }

    // ---- scheduled actions ----

    fn act(&mut self, a: Action) {
        match a {
            Action::Start(i) => {
                if self.nodes[i].status == Status::NotStarted {
                    self.boot(i);
                }
            }
            Action::Fault(f) => {
                if self.phase == Phase::Safety {
                    self.fault(f);
                }
            }
            Action::Submit(i, inc) => self.workload(i, inc),
            Action::Retry(i, inc) => {
                let n = &mut self.nodes[i];
                if n.inc == inc {
                    n.app.retry_armed = false;
                    match n.status {
                        Status::Alive => self.flush(i),
                        Status::Paused(until) => {
                            n.app.retry_armed = true;
                            self.schedule(until + Duration::from_millis(1), Action::Retry(i, inc));
                        }
                        _ => {}
                    }
                }
            }
            Action::Resume(i) => {
                if matches!(self.nodes[i].status, Status::Paused(_)) {
                    self.resume(i);
                }
            }
            Action::EndSafety => self.end_safety(),
        }
    }

    /// Starts node `i`'s current incarnation.
    fn boot(&mut self, i: usize) {
        let now = self.now;
        let n = &mut self.nodes[i];
        let cfg = self.sc.ring_config(n.id, n.inc);
        // The scenario only derives valid configurations (scenario.rs tests every seed's).
        let mut ring =
            Ring::new(&cfg, now, n.persisted).expect("scenario derived an invalid ring config");
        if let Some(bug) = self.sc.bug {
            ring.plant_bug(bug);
        }
        n.ring = Some(ring);
        n.status = Status::Alive;
        n.app = App::default();
        n.inbox.clear();
        let proc = n.proc();
        let persisted = n.persisted;
        n.remember(
            now,
            Recent::Note(format!("started (persisted ring seq {persisted:#x})")),
        );
        self.trace(format_args!(
            "{now} {proc} start, persisted ring seq {persisted:#x}"
        ));
        self.checker.started(now, proc);
        self.drain(i);
        if self.phase == Phase::Safety {
            let inc = self.nodes[i].inc;
            let at = now + self.interval();
            self.schedule(at, Action::Submit(i, inc));
        }
    }

    /// Ends node `i`'s process.
    fn end(&mut self, i: usize, how: End) {
        let now = self.now;
        self.unfile_timer(i);
        let n = &mut self.nodes[i];
        n.ring = None;
        n.state = None;
        n.status = if how == End::Left {
            Status::Left
        } else {
            Status::Down
        };
        n.inbox.clear();
        n.app.pending.clear();
        let proc = n.proc();
        self.checker.ended(now, proc, how);
    }

    fn fault(&mut self, f: Fault) {
        let now = self.now;
        self.stats.faults += 1;
        self.trace(format_args!("{now} fault: {f}"));
        let note = |s: &mut Self, v: NodeId, what: String| {
            let i = index(v);
            if i < s.nodes.len() {
                s.nodes[i].remember(now, Recent::Note(what));
            }
        };
        match f {
            Fault::Partition(groups) => {
                for v in groups.iter().flatten() {
                    note(self, *v, format!("{}", Fault::Partition(groups.clone())));
                }
                self.net.partition(&groups);
            }
            Fault::Heal => self.net.heal(),
            Fault::Crash(v) => {
                let i = index(v);
                if matches!(self.nodes[i].status, Status::Alive | Status::Paused(_)) {
                    note(self, v, "crashed".into());
                    self.end(i, End::Crashed);
                }
            }
            Fault::Restart(v) => {
                let i = index(v);
                if matches!(self.nodes[i].status, Status::Down | Status::Left) {
                    self.nodes[i].inc += 1;
                    self.boot(i);
                }
            }
            Fault::Pause(v, d) => {
                let i = index(v);
                if self.nodes[i].status == Status::Alive {
                    note(self, v, format!("paused for {d}"));
                    self.unfile_timer(i);
                    self.nodes[i].status = Status::Paused(now + d);
                    self.schedule(now + d, Action::Resume(i));
                }
            }
            Fault::Leave(v) => {
                let i = index(v);
                if self.nodes[i].status == Status::Alive {
                    note(self, v, "left".into());
                    if let Some(r) = self.nodes[i].ring.as_mut() {
                        r.leave(now);
                    }
                    self.drain(i);
                    self.end(i, End::Left);
                }
            }
            Fault::LinkDown(a, b) => self.net.set_link_up(a, b, false),
            Fault::LinkUp(a, b) => self.net.set_link_up(a, b, true),
            Fault::Loss(l) => self.net.set_loss(l),
        }
    }

    /// Node `i` comes back from a pause: what queued for it arrives at once, and its
    /// overdue timers fire.
    fn resume(&mut self, i: usize) {
        let now = self.now;
        self.nodes[i].status = Status::Alive;
        let inbox = core::mem::take(&mut self.nodes[i].inbox);
        let timers_first = self.rng.chance_ppm(500_000);
        let p = self.nodes[i].proc();
        self.nodes[i].remember(
            now,
            Recent::Note(format!("resumed, {} datagrams queued", inbox.len())),
        );
        self.trace(format_args!(
            "{now} {p} resume: {} datagrams queued, timers first: {timers_first}",
            inbox.len()
        ));
        if timers_first {
            self.timeout(i);
        }
        for (from, frame) in inbox {
            if self.nodes[i].status != Status::Alive {
                break;
            }
            self.datagram(i, from, frame);
        }
        if !timers_first {
            self.timeout(i);
        }
    }

    /// The safety phase ends: every fault is removed.
    fn end_safety(&mut self) {
        let now = self.now;
        self.phase = Phase::Liveness;
        self.trace(format_args!(
            "{now} liveness phase: faults removed, crashed nodes restarted"
        ));
        self.net.calm();
        for i in 0..self.nodes.len() {
            self.nodes[i].app.pending.clear();
            match self.nodes[i].status {
                Status::Paused(_) => self.resume(i),
                Status::Down | Status::Left => {
                    self.nodes[i].inc += 1;
                    self.boot(i);
                }
                Status::NotStarted => self.boot(i),
                Status::Alive => {}
            }
        }
    }

    // ---- the application ----

    /// Time to the next submission: uniform on 0..2 × the mean.
    fn interval(&mut self) -> Duration {
        Duration::from_micros(
            self.rng
                .below(2 * self.sc.workload.interval.total_micros() + 1),
        )
    }

    fn spec(&mut self) -> Spec {
        let w = &self.sc.workload;
        let (large, medium, safe) = (w.large_ppm, w.medium_ppm, w.safe_ppm);
        let r = self.rng.below(1_000_000) as u32;
        let len = if r < large {
            self.rng.below(70 * 1024) as usize + 10 * 1024
        } else if r < large + medium {
            self.rng.below(2600) as usize + 1500
        } else {
            self.rng.below(280) as usize + payload::HEADER_LEN
        };
        let guarantee = if self.rng.chance_ppm(safe) {
            Guarantee::Safe
        } else {
            Guarantee::Agreed
        };
        Spec {
            len,
            guarantee,
            probe: false,
        }
    }

    fn workload(&mut self, i: usize, inc: u32) {
        if self.phase != Phase::Safety || self.nodes[i].inc != inc {
            return;
        }
        match self.nodes[i].status {
            Status::Alive => {}
            Status::Paused(until) => {
                self.schedule(until + Duration::from_millis(1), Action::Submit(i, inc));
                return;
            }
            _ => return,
        }
        let count = if self.rng.chance_ppm(self.sc.workload.burst_ppm) {
            5 + self.rng.below(36)
        } else {
            1
        };
        for _ in 0..count {
            let s = self.spec();
            self.nodes[i].app.pending.push_back(s);
        }
        self.flush(i);
        let at = self.now + self.interval();
        self.schedule(at, Action::Submit(i, inc));
    }

    /// Submits node `i`'s pending messages in order until one is refused.
    fn flush(&mut self, i: usize) {
        let now = self.now;
        loop {
            let n = &mut self.nodes[i];
            if n.status != Status::Alive {
                break;
            }
            let Some(spec) = n.app.pending.front().copied() else {
                break;
            };
            let id = MsgId {
                node: n.id,
                incarnation: n.inc,
                counter: n.app.counter,
            };
            let proc = n.proc();
            let Some(ring) = n.ring.as_mut() else { break };
            let res = ring.submit(ServiceId(1), payload::encode(id, spec.len), spec.guarantee);
            match res {
                Ok(()) => {
                    n.app.counter += 1;
                    n.app.pending.pop_front();
                    n.remember(now, Recent::Submitted(id, spec.guarantee, spec.len));
                    self.stats.submitted += 1;
                    self.checker
                        .submitted(now, proc, id, spec.guarantee, spec.len);
                    if spec.probe {
                        self.checker.expect_everywhere(id);
                    }
                    if self.tracer.on() {
                        let (g, len) = (spec.guarantee, spec.len);
                        self.trace(format_args!("{now} {proc} submit {id} {g:?} {len}B"));
                    }
                }
                Err(SubmitError::Backpressure) => {
                    self.stats.refused += 1;
                    let armed = core::mem::replace(&mut n.app.retry_armed, true);
                    if self.tracer.on() {
                        self.trace(format_args!("{now} {proc} submit {id}: back-pressure"));
                    }
                    if !armed {
                        let at = now + Duration::from_millis(5 + self.rng.below(46));
                        self.schedule(at, Action::Retry(i, proc.incarnation));
                    }
                    break;
                }
                Err(e) => {
                    // Never a submission: not counted, not owed.
                    n.app.pending.pop_front();
                    self.trace(format_args!("{now} {proc} submit {id} refused: {e}"));
                }
            }
        }
        self.drain(i);
    }

    /// Each live node submits the scenario's probes: small and medium, agreed and safe.
    fn submit_probes(&mut self) {
        for i in 0..self.nodes.len() {
            if self.nodes[i].status != Status::Alive {
                continue;
            }
            for k in 0..self.sc.probes_per_node {
                let guarantee = if k % 2 == 0 {
                    Guarantee::Agreed
                } else {
                    Guarantee::Safe
                };
                let len = if k == 1 { 3000 } else { 40 + 8 * k };
                self.nodes[i].app.pending.push_back(Spec {
                    len,
                    guarantee,
                    probe: true,
                });
            }
            self.flush(i);
        }
    }

    // ---- reporting ----

    /// Keeps the recent events of the nodes the first violation involves, as they were
    /// when it was found.
    fn snapshot(&mut self) {
        if !self.context.is_empty() {
            return;
        }
        let Some(v) = self.checker.violations().first() else {
            return;
        };
        let involved = v.nodes();
        let mut lines = Vec::new();
        for id in involved {
            let i = index(id);
            let Some(n) = self.nodes.get(i) else { continue };
            lines.push(format!("last events of n{id}:"));
            for (_, t, inc, r) in n.recent.entries() {
                let what = match r {
                    Recent::Event(e) => EventSummary(e).to_string(),
                    Recent::Submitted(m, g, len) => format!("submit {m} {g:?} {len}B"),
                    Recent::Note(s) => s.clone(),
                };
                lines.push(format!("  {t} n{id}#{inc} {what}"));
            }
        }
        self.context = lines;
    }
}
