//! The Extended Virtual Synchrony invariants, checked incrementally from each process's
//! event log — what the ring told its application (deliveries, configuration changes, the
//! ring seq to persist), what the application submitted, and when the process started and
//! ended. Never from ring internals: a checker that reads the ring's state would share its
//! bugs.
//!
//! One file per property (DESIGN.md "Invariants the simulator checks", TOTEM-SRP.md §8,
//! COROSYNC.md §6), each citing Moser, Amir, Melliar-Smith and Agarwal, "Extended Virtual
//! Synchrony", ICDCS 1994 (EVS94) and Amir et al., "The Totem single-ring ordering and
//! membership protocol", ACM TOCS 1995 (TOCS95), and defining exactly what it checks:
//!
//! ```text
//! agreed_order.rs       6.1 one total order (per-ring DAG), 6.2 no gaps in regular, causal/FIFO
//! integrity.rs          1.2 no creation, 1.3 no duplication, one ring per message
//! virtual_synchrony.rs  4   same two consecutive configurations → same messages between
//! safe_delivery.rs      7.1 a safe message delivered in regular C reaches every member of C
//! self_delivery.rs      3   a process delivers what it submitted, unless it crashes
//! configurations.rs     2.1–2.4 self-inclusion, agreement, increasing ids, transitional first
//! liveness.rs           L   after the faults: one ring of every live node, probes everywhere
//! ```
//!
//! The model: a *process* is one incarnation of a node ([`Proc`]); a crash or a clean leave
//! ends it and a restart begins a new one, which shares nothing with the old but the node id
//! and the persisted ring seq. Each process has a log of configurations and deliveries; a
//! delivery belongs to the last configuration installed before it.
//!
//! [`InvariantChecker`] keeps the state all properties share (processes, messages,
//! configurations, who delivered what) and feeds each event to every property module in
//! turn; each returns [`Violation`]s. The checker is fast enough to run on every event of
//! every seed: per delivery it does a handful of vector and map operations.

mod agreed_order;
mod configurations;
mod integrity;
mod liveness;
mod safe_delivery;
mod self_delivery;
mod virtual_synchrony;

use alloc::collections::BTreeMap;
use core::fmt;

use totem_proto::time::{Duration, Instant};
use totem_proto::{Guarantee, NodeId, RingId};
use totem_ring::{Configuration, ConfigurationKind, Delivery, Event};

use crate::payload::MsgId;

pub use liveness::LivenessOutcome;

/// One process: an incarnation of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Proc {
    /// The node.
    pub node: NodeId,
    /// 0 on first start, +1 per restart.
    pub incarnation: u32,
}

impl Proc {
    /// Incarnation `incarnation` of node `node`.
    pub const fn new(node: u32, incarnation: u32) -> Self {
        Self {
            node: NodeId(node),
            incarnation,
        }
    }
}

impl fmt::Display for Proc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}#{}", self.node, self.incarnation)
    }
}

/// The properties, one per module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Property {
    /// `agreed_order.rs`.
    AgreedOrder,
    /// `integrity.rs`.
    Integrity,
    /// `virtual_synchrony.rs`.
    VirtualSynchrony,
    /// `safe_delivery.rs`.
    SafeDelivery,
    /// `self_delivery.rs`.
    SelfDelivery,
    /// `configurations.rs`.
    Configurations,
    /// `liveness.rs`.
    Liveness,
}

impl Property {
    /// Every property, in report order.
    pub const ALL: [Self; 7] = [
        Self::AgreedOrder,
        Self::Integrity,
        Self::VirtualSynchrony,
        Self::SafeDelivery,
        Self::SelfDelivery,
        Self::Configurations,
        Self::Liveness,
    ];
}

impl fmt::Display for Property {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::AgreedOrder => "agreed order",
            Self::Integrity => "integrity",
            Self::VirtualSynchrony => "virtual synchrony",
            Self::SafeDelivery => "safe delivery",
            Self::SelfDelivery => "self delivery",
            Self::Configurations => "configurations",
            Self::Liveness => "liveness",
        })
    }
}

/// A configuration as the checker names it: kind, ring id and members. Two transitional
/// configurations of the same new ring differ by their members (one per old ring).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConfName {
    /// Transitional or regular.
    pub kind: ConfigurationKind,
    /// The ring id it was installed with.
    pub ring_id: RingId,
    /// Its members, as installed.
    pub members: Vec<NodeId>,
}

impl PartialOrd for ConfName {
    fn partial_cmp(&self, other: &Self) -> Option<core::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ConfName {
    fn cmp(&self, other: &Self) -> core::cmp::Ordering {
        let key = |c: &Self| (c.kind == ConfigurationKind::Regular, c.ring_id);
        key(self)
            .cmp(&key(other))
            .then_with(|| self.members.cmp(&other.members))
    }
}

impl ConfName {
    fn of(c: &Configuration) -> Self {
        Self {
            kind: c.kind,
            ring_id: c.ring_id,
            members: c.members.clone(),
        }
    }
}

impl fmt::Display for ConfName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let k = match self.kind {
            ConfigurationKind::Transitional => "trans",
            ConfigurationKind::Regular => "regular",
        };
        write!(f, "{k} {} {}", self.ring_id, Nodes(&self.members))
    }
}

/// Displays a node list as `[1,2,3]`.
#[derive(Debug)]
pub struct Nodes<'a>(pub &'a [NodeId]);

impl fmt::Display for Nodes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, n) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{n}")?;
        }
        f.write_str("]")
    }
}

/// Displays a list of message ids, the first few and a count.
#[derive(Debug)]
pub struct Msgs<'a>(pub &'a [MsgId]);

impl fmt::Display for Msgs<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 6;
        f.write_str("{")?;
        for (i, m) in self.0.iter().take(SHOWN).enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{m}")?;
        }
        if self.0.len() > SHOWN {
            write!(f, ", … {} in all", self.0.len())?;
        }
        f.write_str("}")
    }
}

/// Why a configuration event breaks the Configurations property (`configurations.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfRule {
    /// EVS94 2.1: a process is in every configuration it installs.
    SelfInclusion,
    /// EVS94 2.4: another process installed the same regular ring (or the same transitional
    /// configuration: same new ring, same old ring) with other members.
    Agreement {
        /// The other process.
        other: Proc,
        /// Its member list.
        other_members: Vec<NodeId>,
    },
    /// TOTEM-SRP.md §8.1: a regular configuration's ring id is not above the previous one
    /// this node installed (in any incarnation).
    RingNotIncreasing {
        /// The previous regular ring id of this node.
        previous: RingId,
    },
    /// The ring seq was not persisted (`Event::RingSeqUsed`) before the ring was installed.
    RingSeqNotPersisted {
        /// The highest seq persisted.
        persisted: u64,
    },
    /// The persisted ring seq went down.
    RingSeqWentBack {
        /// The highest seq persisted before.
        persisted: u64,
        /// The lower one.
        now: u64,
    },
    /// EVS94 2.3: a regular configuration not immediately preceded by a transitional one of
    /// the same ring id.
    MissingTransitional {
        /// The configuration installed just before, if any.
        previous: Option<ConfName>,
    },
    /// Two transitional configurations in a row.
    DoubleTransitional,
    /// EVS94 2.3: the transitional members are not a subset of the old (or new) regular
    /// configuration.
    TransitionalNotSubset {
        /// The regular configuration it should be inside.
        of: Vec<NodeId>,
    },
    /// EVS94 2.3: a transitional member did not come from the same old ring, or a process
    /// that did is missing.
    TransitionalMovers {
        /// The process that moved from another old ring (or is missing).
        other: Proc,
        /// Its old ring (`None`: its first configuration).
        other_old: Option<RingId>,
    },
    /// `left` / `joined` are not old − transitional / new − transitional.
    LeftJoined {
        /// What the list should have been.
        expected: Vec<NodeId>,
        /// What it was.
        got: Vec<NodeId>,
    },
}

/// A broken invariant: the property, the processes, and the messages or configurations
/// involved. `at` is the simulated time the checker saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// Agreed order (EVS94 6.1): `proc` delivered `earlier` before `later`, but other
    /// processes' deliveries on the same ring order `later` before `earlier`
    /// (`witness`: the chain of (message, next message, process that delivered them so)).
    OrderCycle {
        /// When.
        at: Instant,
        /// The ring both messages were ordered on.
        ring: RingId,
        /// The process whose delivery closed the cycle.
        proc: Proc,
        /// Delivered first by `proc`.
        earlier: MsgId,
        /// Delivered next by `proc`.
        later: MsgId,
        /// The other order: edges `later → … → earlier` and who made each.
        witness: Vec<(MsgId, MsgId, Proc)>,
    },
    /// Agreed order (EVS94 6.2): in a regular configuration a process delivers the ring's
    /// messages in order without gaps, so every process's regular deliveries on a ring are
    /// prefixes of one sequence; `proc` delivered `got` where `witness` delivered `expected`.
    RegularGap {
        /// When.
        at: Instant,
        /// The ring.
        ring: RingId,
        /// The process.
        proc: Proc,
        /// Position in the ring's regular sequence (0-based).
        position: usize,
        /// What the sequence holds there.
        expected: MsgId,
        /// What `proc` delivered there.
        got: MsgId,
        /// Who delivered `expected` there first.
        witness: Proc,
    },
    /// Agreed order, causal part (EVS94 5): messages of one sender are delivered in the
    /// order it submitted them.
    SenderOrder {
        /// When.
        at: Instant,
        /// The receiving process.
        proc: Proc,
        /// Delivered now.
        msg: MsgId,
        /// A later message of the same sender, delivered before.
        after: MsgId,
    },
    /// Integrity (EVS94 1.3): delivered twice by one process.
    Duplicate {
        /// When.
        at: Instant,
        /// The process.
        proc: Proc,
        /// The message.
        msg: MsgId,
    },
    /// Integrity (EVS94 1.2): a delivery that is no submitted message.
    NotSubmitted {
        /// When.
        at: Instant,
        /// The process.
        proc: Proc,
        /// The sender the delivery names.
        sender: NodeId,
        /// Payload length.
        len: usize,
        /// Why it matches no submission.
        reason: String,
    },
    /// Integrity: delivered as from a node other than its submitter.
    WrongSender {
        /// When.
        at: Instant,
        /// The process.
        proc: Proc,
        /// The message.
        msg: MsgId,
        /// The sender the delivery names.
        claimed: NodeId,
    },
    /// Integrity (EVS94 2.2, TOTEM-SRP.md §8.5): one message delivered as ordered on two
    /// different rings.
    TwoRings {
        /// When.
        at: Instant,
        /// The message.
        msg: MsgId,
        /// First delivery: process and ring.
        first: (Proc, RingId),
        /// This delivery.
        second: (Proc, RingId),
    },
    /// Virtual synchrony (EVS94 4): `a` and `b` installed `from` then `to` but delivered
    /// different messages in between.
    DifferentSets {
        /// When.
        at: Instant,
        /// The configuration both installed.
        from: ConfName,
        /// The next configuration both installed.
        to: ConfName,
        /// One process.
        a: Proc,
        /// The other.
        b: Proc,
        /// Delivered by `a` only.
        only_a: Vec<MsgId>,
        /// Delivered by `b` only.
        only_b: Vec<MsgId>,
    },
    /// Safe delivery (EVS94 7.1): `deliverer` delivered safe `msg` in regular `ring`, and
    /// `member`, which installed that ring and did not crash, installed its next regular
    /// configuration (or reached the end of the run) without delivering it.
    SafeNotDelivered {
        /// When.
        at: Instant,
        /// The regular configuration.
        ring: RingId,
        /// The message.
        msg: MsgId,
        /// Who delivered it as safe there.
        deliverer: Proc,
        /// Who did not deliver it.
        member: Proc,
        /// The regular ring `member` went to (`None`: still in `ring` at the end).
        next: Option<RingId>,
    },
    /// Safe delivery: submitted with `Guarantee::Safe`, delivered as agreed.
    Downgraded {
        /// When.
        at: Instant,
        /// The process.
        proc: Proc,
        /// The message.
        msg: MsgId,
    },
    /// Self delivery (EVS94 3): a live process never delivered messages it submitted.
    SelfNotDelivered {
        /// When (the end of the run).
        at: Instant,
        /// The process.
        proc: Proc,
        /// The messages (all of them).
        msgs: Vec<MsgId>,
    },
    /// Self delivery (EVS94 3): `proc`'s message `msg` was ordered on `ring` (`witness`
    /// delivered it there), and `proc` installed its next regular configuration `next`
    /// without delivering it.
    SelfNotDeliveredInRing {
        /// When.
        at: Instant,
        /// The sender.
        proc: Proc,
        /// Its message.
        msg: MsgId,
        /// The ring it was ordered on.
        ring: RingId,
        /// The regular ring the sender moved on to.
        next: RingId,
        /// A process that delivered it on `ring`.
        witness: Proc,
    },
    /// Configurations (EVS94 2): `rule` broken when `proc` installed `conf`.
    Configuration {
        /// When.
        at: Instant,
        /// The process.
        proc: Proc,
        /// What it installed.
        conf: ConfName,
        /// What is wrong.
        rule: ConfRule,
    },
    /// Configurations (EVS94 2.2): a delivery outside any configuration, or tagged with
    /// another ring than the configuration it falls in (`expected`).
    WrongRing {
        /// When.
        at: Instant,
        /// The process.
        proc: Proc,
        /// The message.
        msg: MsgId,
        /// The ring the delivery names.
        ring: RingId,
        /// The ring it should name (`None`: no configuration installed yet).
        expected: Option<RingId>,
    },
    /// Liveness: after the faults stopped, the live processes did not all install one
    /// regular configuration of exactly the live nodes within the bound.
    NotConverged {
        /// When.
        at: Instant,
        /// The bound.
        bound: Duration,
        /// Each live process's last configuration.
        states: Vec<(Proc, Option<ConfName>)>,
    },
    /// Liveness: a message submitted after convergence was not delivered by every live
    /// process within the bound.
    NotDeliveredEverywhere {
        /// When.
        at: Instant,
        /// The message.
        msg: MsgId,
        /// Who did not deliver it.
        missing: Vec<Proc>,
    },
    /// Liveness: at the end of the liveness phase, live processes still had messages to
    /// deliver (their own, or probes).
    NotQuiet {
        /// When.
        at: Instant,
        /// Own messages live processes had not delivered.
        own: usize,
        /// Probe deliveries missing at live processes.
        probes: usize,
    },
    /// Liveness: simulated time stopped advancing, or the run exceeded its step budget (a
    /// ring that spins without time passing would burn a real CPU).
    Stalled {
        /// When.
        at: Instant,
        /// What was seen.
        detail: String,
    },
}

impl Violation {
    /// The property this breaks.
    pub fn property(&self) -> Property {
        match self {
            Self::OrderCycle { .. } | Self::RegularGap { .. } | Self::SenderOrder { .. } => {
                Property::AgreedOrder
            }
            Self::Duplicate { .. }
            | Self::NotSubmitted { .. }
            | Self::WrongSender { .. }
            | Self::TwoRings { .. } => Property::Integrity,
            Self::DifferentSets { .. } => Property::VirtualSynchrony,
            Self::SafeNotDelivered { .. } | Self::Downgraded { .. } => Property::SafeDelivery,
            Self::SelfNotDelivered { .. } | Self::SelfNotDeliveredInRing { .. } => {
                Property::SelfDelivery
            }
            Self::Configuration { .. } | Self::WrongRing { .. } => Property::Configurations,
            Self::NotConverged { .. }
            | Self::NotDeliveredEverywhere { .. }
            | Self::NotQuiet { .. }
            | Self::Stalled { .. } => Property::Liveness,
        }
    }

    /// When the checker saw it.
    pub fn at(&self) -> Instant {
        match self {
            Self::OrderCycle { at, .. }
            | Self::RegularGap { at, .. }
            | Self::SenderOrder { at, .. }
            | Self::Duplicate { at, .. }
            | Self::NotSubmitted { at, .. }
            | Self::WrongSender { at, .. }
            | Self::TwoRings { at, .. }
            | Self::DifferentSets { at, .. }
            | Self::SafeNotDelivered { at, .. }
            | Self::Downgraded { at, .. }
            | Self::SelfNotDelivered { at, .. }
            | Self::SelfNotDeliveredInRing { at, .. }
            | Self::Configuration { at, .. }
            | Self::WrongRing { at, .. }
            | Self::NotConverged { at, .. }
            | Self::NotDeliveredEverywhere { at, .. }
            | Self::NotQuiet { at, .. }
            | Self::Stalled { at, .. } => *at,
        }
    }

    /// The nodes involved, for printing their recent events.
    pub fn nodes(&self) -> Vec<NodeId> {
        let mut v: Vec<NodeId> = match self {
            Self::OrderCycle { proc, witness, .. } => core::iter::once(proc.node)
                .chain(witness.iter().map(|w| w.2.node))
                .collect(),
            Self::RegularGap { proc, witness, .. }
            | Self::SelfNotDeliveredInRing { proc, witness, .. } => vec![proc.node, witness.node],
            Self::SenderOrder { proc, msg, .. } => vec![proc.node, msg.node],
            Self::Duplicate { proc, .. }
            | Self::NotSubmitted { proc, .. }
            | Self::WrongSender { proc, .. }
            | Self::Downgraded { proc, .. }
            | Self::SelfNotDelivered { proc, .. }
            | Self::WrongRing { proc, .. } => vec![proc.node],
            Self::Configuration { proc, rule, .. } => match rule {
                ConfRule::Agreement { other, .. } | ConfRule::TransitionalMovers { other, .. } => {
                    vec![proc.node, other.node]
                }
                _ => vec![proc.node],
            },
            Self::TwoRings { first, second, .. } => vec![first.0.node, second.0.node],
            Self::DifferentSets { a, b, .. } => vec![a.node, b.node],
            Self::SafeNotDelivered {
                deliverer, member, ..
            } => vec![deliverer.node, member.node],
            Self::NotConverged { states, .. } => states.iter().map(|s| s.0.node).collect(),
            Self::NotDeliveredEverywhere { msg, missing, .. } => core::iter::once(msg.node)
                .chain(missing.iter().map(|p| p.node))
                .collect(),
            Self::NotQuiet { .. } | Self::Stalled { .. } => Vec::new(),
        };
        v.sort();
        v.dedup();
        v
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] at {}: ", self.property(), self.at())?;
        match self {
            Self::OrderCycle {
                ring,
                proc,
                earlier,
                later,
                witness,
                ..
            } => {
                write!(
                    f,
                    "{proc} delivered {earlier} before {later} on ring {ring}, but"
                )?;
                for (a, b, p) in witness {
                    write!(f, " {p} delivered {a} before {b};")?;
                }
                Ok(())
            }
            Self::RegularGap {
                ring,
                proc,
                position,
                expected,
                got,
                witness,
                ..
            } => write!(
                f,
                "in regular configuration {ring}, {proc} delivered {got} as message #{position} \
                 of the ring, where {witness} delivered {expected} (a gap or a reordering)"
            ),
            Self::SenderOrder {
                proc, msg, after, ..
            } => {
                write!(
                    f,
                    "{proc} delivered {msg} after {after}, a later message of the same sender"
                )
            }
            Self::Duplicate { proc, msg, .. } => write!(f, "{proc} delivered {msg} twice"),
            Self::NotSubmitted {
                proc,
                sender,
                len,
                reason,
                ..
            } => write!(
                f,
                "{proc} delivered a {len}-byte message from node {sender} that nobody submitted: {reason}"
            ),
            Self::WrongSender {
                proc, msg, claimed, ..
            } => {
                write!(f, "{proc} delivered {msg} as sent by node {claimed}")
            }
            Self::TwoRings {
                msg, first, second, ..
            } => write!(
                f,
                "{msg} was delivered on ring {} by {} and on ring {} by {}",
                first.1, first.0, second.1, second.0
            ),
            Self::DifferentSets {
                from,
                to,
                a,
                b,
                only_a,
                only_b,
                ..
            } => write!(
                f,
                "{a} and {b} both installed ({from}) then ({to}) but delivered different messages \
                 in between: only {a}: {}; only {b}: {}",
                Msgs(only_a),
                Msgs(only_b)
            ),
            Self::SafeNotDelivered {
                ring,
                msg,
                deliverer,
                member,
                next,
                ..
            } => {
                write!(
                    f,
                    "{deliverer} delivered safe {msg} in regular configuration {ring}, but member {member} "
                )?;
                match next {
                    Some(n) => write!(
                        f,
                        "installed its next regular configuration {n} without delivering it"
                    ),
                    None => write!(
                        f,
                        "stayed in it to the end of the run without delivering it"
                    ),
                }
            }
            Self::Downgraded { proc, msg, .. } => {
                write!(
                    f,
                    "{proc} delivered {msg}, submitted as safe, with the agreed guarantee"
                )
            }
            Self::SelfNotDelivered { proc, msgs, .. } => {
                write!(
                    f,
                    "{proc} never delivered {} of its own messages: {}",
                    msgs.len(),
                    Msgs(msgs)
                )
            }
            Self::SelfNotDeliveredInRing {
                proc,
                msg,
                ring,
                next,
                witness,
                ..
            } => write!(
                f,
                "{proc} installed regular configuration {next} without delivering its own {msg}, \
                 which {witness} delivered as ordered on ring {ring}"
            ),
            Self::Configuration {
                proc, conf, rule, ..
            } => {
                write!(f, "{proc} installed ({conf}): ")?;
                match rule {
                    ConfRule::SelfInclusion => f.write_str("it is not a member"),
                    ConfRule::Agreement {
                        other,
                        other_members,
                    } => write!(
                        f,
                        "{other} installed the same configuration with members {}",
                        Nodes(other_members)
                    ),
                    ConfRule::RingNotIncreasing { previous } => {
                        write!(
                            f,
                            "ring id not above the node's previous regular ring {previous}"
                        )
                    }
                    ConfRule::RingSeqNotPersisted { persisted } => {
                        write!(
                            f,
                            "ring seq never persisted (highest persisted: {persisted:#x})"
                        )
                    }
                    ConfRule::RingSeqWentBack { persisted, now } => {
                        write!(
                            f,
                            "persisted ring seq went back from {persisted:#x} to {now:#x}"
                        )
                    }
                    ConfRule::MissingTransitional { previous } => match previous {
                        Some(p) => write!(
                            f,
                            "not preceded by its transitional configuration (previous: {p})"
                        ),
                        None => f.write_str("not preceded by a transitional configuration"),
                    },
                    ConfRule::DoubleTransitional => {
                        f.write_str("two transitional configurations in a row")
                    }
                    ConfRule::TransitionalNotSubset { of } => {
                        write!(f, "transitional members not a subset of {}", Nodes(of))
                    }
                    ConfRule::TransitionalMovers { other, other_old } => {
                        write!(f, "{other} (old ring ")?;
                        match other_old {
                            Some(r) => write!(f, "{r}")?,
                            None => f.write_str("none")?,
                        }
                        f.write_str(") disagrees on who moves together from the old ring")
                    }
                    ConfRule::LeftJoined { expected, got } => {
                        write!(
                            f,
                            "left/joined is {}, expected {}",
                            Nodes(got),
                            Nodes(expected)
                        )
                    }
                }
            }
            Self::WrongRing {
                proc,
                msg,
                ring,
                expected,
                ..
            } => {
                write!(f, "{proc} delivered {msg} tagged ring {ring} ")?;
                match expected {
                    Some(e) => write!(f, "in a configuration whose messages belong to ring {e}"),
                    None => f.write_str("before installing any configuration"),
                }
            }
            Self::NotConverged { bound, states, .. } => {
                write!(
                    f,
                    "no common configuration of all live nodes within {bound}:"
                )?;
                for (p, c) in states {
                    match c {
                        Some(c) => write!(f, " {p}: ({c});")?,
                        None => write!(f, " {p}: none;")?,
                    }
                }
                Ok(())
            }
            Self::NotDeliveredEverywhere { msg, missing, .. } => {
                write!(
                    f,
                    "{msg}, submitted after convergence, was not delivered by"
                )?;
                for p in missing {
                    write!(f, " {p}")?;
                }
                Ok(())
            }
            Self::NotQuiet { own, probes, .. } => write!(
                f,
                "the live processes still owed {own} deliveries of their own messages and {probes} \
                 probe deliveries at the end of the liveness phase"
            ),
            Self::Stalled { detail, .. } => f.write_str(detail),
        }
    }
}

// ---- shared state ----------------------------------------------------------------------

/// Index of a process in [`Core::procs`].
pub(crate) type ProcIdx = usize;
/// Index of a message in [`Core::msgs`].
pub(crate) type MsgIdx = usize;
/// Index of a configuration in [`Core::confs`].
pub(crate) type ConfIdx = usize;

/// A growable bit set over message indices.
#[derive(Debug, Clone, Default)]
pub(crate) struct BitSet(Vec<u64>);

impl BitSet {
    pub(crate) fn contains(&self, i: usize) -> bool {
        self.0.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    pub(crate) fn insert(&mut self, i: usize) {
        if self.0.len() <= i / 64 {
            self.0.resize(i / 64 + 1, 0);
        }
        self.0[i / 64] |= 1 << (i % 64);
    }
}

#[derive(Debug)]
pub(crate) struct MsgInfo {
    pub(crate) id: MsgId,
    pub(crate) sender: ProcIdx,
    pub(crate) guarantee: Guarantee,
    pub(crate) len: usize,
}

#[derive(Debug)]
pub(crate) struct ProcState {
    pub(crate) proc: Proc,
    /// Started and not yet crashed or left.
    pub(crate) alive: bool,
    /// Accepted submissions, by counter.
    pub(crate) submitted: Vec<MsgIdx>,
    pub(crate) delivered: BitSet,
    /// The last configuration installed.
    pub(crate) last_conf: Option<ConfIdx>,
    /// The last regular configuration installed (during a transitional configuration: the
    /// old one).
    pub(crate) last_regular: Option<ConfIdx>,
}

/// What every property reads.
#[derive(Debug, Default)]
pub(crate) struct Core {
    pub(crate) now: Instant,
    pub(crate) procs: Vec<ProcState>,
    proc_index: BTreeMap<Proc, ProcIdx>,
    pub(crate) msgs: Vec<MsgInfo>,
    pub(crate) confs: Vec<ConfName>,
    conf_index: BTreeMap<ConfName, ConfIdx>,
}

impl Core {
    pub(crate) fn proc_idx(&self, p: Proc) -> Option<ProcIdx> {
        self.proc_index.get(&p).copied()
    }

    fn proc_or_insert(&mut self, p: Proc) -> ProcIdx {
        if let Some(i) = self.proc_idx(p) {
            return i;
        }
        let i = self.procs.len();
        self.procs.push(ProcState {
            proc: p,
            alive: true,
            submitted: Vec::new(),
            delivered: BitSet::default(),
            last_conf: None,
            last_regular: None,
        });
        self.proc_index.insert(p, i);
        i
    }

    /// The message a payload names, if it was submitted.
    pub(crate) fn msg_idx(&self, id: MsgId) -> Option<MsgIdx> {
        let p = self.proc_idx(Proc {
            node: id.node,
            incarnation: id.incarnation,
        })?;
        let c = usize::try_from(id.counter).ok()?;
        self.procs[p].submitted.get(c).copied()
    }

    /// The process that submitted message `m`.
    pub(crate) fn sender(&self, m: MsgIdx) -> ProcIdx {
        self.msgs[m].sender
    }

    fn conf_or_insert(&mut self, c: &Configuration) -> ConfIdx {
        let name = ConfName::of(c);
        if let Some(i) = self.conf_index.get(&name) {
            return *i;
        }
        let i = self.confs.len();
        self.confs.push(name.clone());
        self.conf_index.insert(name, i);
        i
    }

    /// Whether `p` is in the regular part of its current configuration (after installing a
    /// regular configuration and before the next configuration event).
    pub(crate) fn in_regular(&self, p: ProcIdx) -> Option<ConfIdx> {
        let s = &self.procs[p];
        match (s.last_conf, s.last_regular) {
            (Some(c), Some(r)) if c == r => Some(r),
            _ => None,
        }
    }

    pub(crate) fn proc(&self, p: ProcIdx) -> Proc {
        self.procs[p].proc
    }

    pub(crate) fn id(&self, m: MsgIdx) -> MsgId {
        self.msgs[m].id
    }

    /// Live processes, in a stable order.
    pub(crate) fn live(&self) -> Vec<ProcIdx> {
        let mut v: Vec<ProcIdx> = (0..self.procs.len())
            .filter(|p| self.procs[*p].alive)
            .collect();
        v.sort_by_key(|p| self.procs[*p].proc);
        v
    }
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Crashed: dropped without a word.
    Crashed,
    /// Left cleanly (`Ring::leave`), then stopped.
    Left,
}

/// The stateful checker: feed it every process's log as it happens, read
/// [`violations`](Self::violations).
#[derive(Debug, Default)]
pub struct InvariantChecker {
    core: Core,
    order: agreed_order::AgreedOrder,
    integrity: integrity::Integrity,
    vs: virtual_synchrony::VirtualSynchrony,
    safe: safe_delivery::SafeDelivery,
    selfd: self_delivery::SelfDelivery,
    confs: configurations::Configurations,
    live: liveness::Liveness,
    violations: Vec<Violation>,
    /// Violations found, including those not kept.
    found: usize,
    /// Violations found per property (index in [`Property::ALL`]).
    found_by: [usize; 7],
}

/// Violations kept per run: a broken ring can break an invariant on every delivery.
const KEEP: usize = 200;

impl InvariantChecker {
    /// An empty checker.
    pub fn new() -> Self {
        Self::default()
    }

    fn push(&mut self, v: Vec<Violation>) {
        self.found += v.len();
        for x in v {
            let k = Property::ALL
                .iter()
                .position(|p| *p == x.property())
                .unwrap_or(0);
            self.found_by[k] += 1;
            if self.violations.len() < KEEP {
                self.violations.push(x);
            }
        }
    }

    /// The violations found so far (the first 200 of them).
    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }

    /// How many violations were found in all.
    pub fn found(&self) -> usize {
        self.found
    }

    /// How many were found per property, in [`Property::ALL`] order.
    pub fn found_by_property(&self) -> [(Property, usize); 7] {
        let mut out = [(Property::AgreedOrder, 0); 7];
        for (i, p) in Property::ALL.iter().enumerate() {
            out[i] = (*p, self.found_by[i]);
        }
        out
    }

    /// Process `p` started at `now` (a node's first start or a restart).
    pub fn started(&mut self, now: Instant, p: Proc) {
        self.core.now = now;
        let i = self.core.proc_or_insert(p);
        self.core.procs[i].alive = true;
    }

    /// Process `p`'s application submitted message `id` and the ring accepted it.
    pub fn submitted(
        &mut self,
        now: Instant,
        p: Proc,
        id: MsgId,
        guarantee: Guarantee,
        len: usize,
    ) {
        self.core.now = now;
        let pi = self.core.proc_or_insert(p);
        let m = self.core.msgs.len();
        self.core.msgs.push(MsgInfo {
            id,
            sender: pi,
            guarantee,
            len,
        });
        // Counters are dense per process: the workload numbers accepted messages only.
        debug_assert_eq!(self.core.procs[pi].submitted.len() as u64, id.counter);
        self.core.procs[pi].submitted.push(m);
        self.selfd.on_submit(pi);
    }

    /// Process `p` output `event` at `now`.
    pub fn event(&mut self, now: Instant, p: Proc, event: &Event) {
        self.core.now = now;
        let pi = self.core.proc_or_insert(p);
        let mut out = Vec::new();
        match event {
            Event::Deliver(d) => self.deliver(pi, d, &mut out),
            Event::Configuration(c) => self.configuration(pi, c, &mut out),
            Event::RingSeqUsed(seq) => self.confs.on_ring_seq(&self.core, pi, *seq, &mut out),
        }
        self.push(out);
    }

    fn deliver(&mut self, p: ProcIdx, d: &Delivery, out: &mut Vec<Violation>) {
        let Some(m) = self.integrity.on_deliver(&self.core, p, d, out) else {
            return;
        };
        self.confs.on_deliver(&self.core, p, m, d.ring_id, out);
        self.order.on_deliver(&self.core, p, m, d.ring_id, out);
        self.vs.on_deliver(p, m);
        self.safe.on_deliver(&self.core, p, m, d.guarantee, out);
        self.selfd.on_deliver(&self.core, p, m, d.ring_id, out);
        self.core.procs[p].delivered.insert(m);
    }

    fn configuration(&mut self, p: ProcIdx, c: &Configuration, out: &mut Vec<Violation>) {
        let ci = self.core.conf_or_insert(c);
        self.confs.on_config(&self.core, p, ci, c, out);
        self.vs.on_config(&self.core, p, ci, out);
        self.safe.on_config(&self.core, p, ci, out);
        self.selfd.on_config(&self.core, p, ci, out);
        let s = &mut self.core.procs[p];
        s.last_conf = Some(ci);
        if c.kind == ConfigurationKind::Regular {
            s.last_regular = Some(ci);
        }
    }

    /// Process `p` ended at `now`.
    pub fn ended(&mut self, now: Instant, p: Proc, how: End) {
        self.core.now = now;
        let _ = how; // A clean leave and a crash end a process alike (EVS94: it fails).
        let Some(pi) = self.core.proc_idx(p) else {
            return;
        };
        self.core.procs[pi].alive = false;
        self.vs.on_end(pi);
        self.safe.on_end(pi);
        self.selfd.on_end(pi);
    }

    /// Starts a new round of liveness probes: those of earlier rounds are no longer
    /// required everywhere (the cluster re-formed after they were submitted).
    pub fn new_probe_round(&mut self) {
        self.live.new_round();
    }

    /// Message `id` must be delivered by every live process (a liveness probe of the
    /// current round, submitted once the live processes converged).
    pub fn expect_everywhere(&mut self, id: MsgId) {
        if let Some(m) = self.core.msg_idx(id) {
            self.live.expect_everywhere(&self.core, m);
        }
    }

    /// The ring every live process is in, if they all last installed the same regular
    /// configuration and its members are exactly the live nodes.
    pub fn converged(&self) -> Option<RingId> {
        liveness::converged(&self.core)
    }

    /// Probe deliveries still missing at live processes.
    pub fn probes_missing(&self) -> usize {
        self.live.missing(&self.core)
    }

    /// Own messages live processes have not delivered yet.
    pub fn self_missing(&self) -> usize {
        self.selfd.missing(&self.core)
    }

    /// A run-level failure the driver saw (time stopped advancing, step budget).
    pub fn stalled(&mut self, now: Instant, detail: String) {
        self.push(vec![Violation::Stalled { at: now, detail }]);
    }

    /// End of the run at `now`: the checks that need the whole log (liveness, self
    /// delivery, safe delivery for processes still in their configuration).
    ///
    /// The last two assume the run ended quiet — nothing left to deliver. A judged run
    /// (one with a liveness phase) that did not get there is a liveness violation, and
    /// those two are skipped: a message still on its way is not a safety violation.
    pub fn finish(&mut self, now: Instant, outcome: &LivenessOutcome) {
        self.core.now = now;
        let mut out = Vec::new();
        let quiet = self.live.finish(
            &self.core,
            outcome,
            self.selfd.missing(&self.core),
            &mut out,
        );
        if quiet {
            self.selfd.finish(&self.core, &mut out);
            self.safe.finish(&self.core, &mut out);
        }
        self.push(out);
    }
}

#[cfg(test)]
pub(crate) mod test_log;
