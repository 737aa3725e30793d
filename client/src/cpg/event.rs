//! What [`super::Cpg::dispatch`] hands the application, and the small value types of the
//! API: [`Event`], [`Guarantee`], [`DispatchMode`], [`FlowControl`], and the
//! [`GroupArg`] trait that lets every call take `"name"`, `b"name"` or a [`GroupName`].

use alloc::string::String;
use alloc::vec::Vec;

use bytes::Bytes;
use services::GroupName;
use services::cpg::wire::{Address, CpgEvent, CpgGuarantee, Member};
use totem_proto::{NodeId, RingId};

/// How a message is ordered (corosync's `cpg_guarantees_t`, the two that differ here).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Guarantee {
    /// Total order: every member delivers every message in the same order
    /// (`CPG_TYPE_AGREED`; corosync's UNORDERED and FIFO are delivered this way too).
    Agreed,
    /// Total order, and a message is delivered only once every member of the
    /// configuration has it (`CPG_TYPE_SAFE`; corosync accepts it but delivers agreed).
    Safe,
}

impl Guarantee {
    pub(crate) fn wire(self) -> CpgGuarantee {
        match self {
            Self::Agreed => CpgGuarantee::Agreed,
            Self::Safe => CpgGuarantee::Safe,
        }
    }

    pub(crate) fn from_wire(g: CpgGuarantee) -> Self {
        match g {
            CpgGuarantee::Safe => Self::Safe,
            _ => Self::Agreed,
        }
    }
}

/// How much [`super::Cpg::dispatch`] does (corosync's `cs_dispatch_flags_t`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DispatchMode {
    /// Wait for one event and handle it (`CS_DISPATCH_ONE`).
    One,
    /// Handle every event already queued, without waiting (`CS_DISPATCH_ALL`).
    All,
    /// Handle events until the handle is finalized (from the handler) or the daemon goes
    /// away (`CS_DISPATCH_BLOCKING`).
    Blocking,
    /// Handle one event if one is queued, else fail with [`crate::Error::TryAgain`]
    /// (`CS_DISPATCH_ONE_NONBLOCKING`).
    OneNonblocking,
}

/// Whether the daemon is pushing back on multicasts (corosync's `cpg_flow_control_state_t`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlowControl {
    /// Multicasts are accepted.
    Disabled,
    /// The ring's send queue is full: multicasts answer [`crate::Error::TryAgain`].
    Enabled,
}

/// An event (a corosync callback), owned: it can be kept, sent to another thread, or
/// handled after more calls on the handle.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A message to a group this handle joined (`cpg_deliver_fn_t`), in total order. Own
    /// messages are delivered too.
    Deliver {
        /// The group.
        group: GroupName,
        /// The sending process's node.
        sender_nodeid: NodeId,
        /// The sending process's pid.
        sender_pid: u32,
        /// The guarantee the sender asked for.
        guarantee: Guarantee,
        /// The message: a slice of the buffer the event was read into (no further copy).
        payload: Bytes,
    },
    /// A group's membership changed (`cpg_confchg_fn_t`).
    Confchg {
        /// The group.
        group: GroupName,
        /// Its members after the change, ascending.
        members: Vec<Member>,
        /// Who left, with why (`LEAVE`, `NODEDOWN`, `PROCDOWN`), ascending.
        left: Vec<Address>,
        /// Who joined, with why (`JOIN`, `NODEUP`), ascending.
        joined: Vec<Address>,
    },
    /// The totem configuration changed (model v1's `cpg_totem_confchg_fn_t`): every
    /// connection gets it after each configuration change, and right after initialize with
    /// [`super::Options::initial_totem_confchg`].
    TotemConfchg {
        /// The new ring.
        ring_id: RingId,
        /// Its nodes, ascending.
        members: Vec<NodeId>,
    },
}

impl From<CpgEvent> for Event {
    fn from(ev: CpgEvent) -> Self {
        match ev {
            CpgEvent::Deliver(m) => Self::Deliver {
                group: m.group,
                sender_nodeid: m.sender.node,
                sender_pid: m.sender.pid,
                guarantee: Guarantee::from_wire(m.guarantee),
                payload: m.payload,
            },
            CpgEvent::Confchg(c) => Self::Confchg {
                group: c.group,
                members: c.members,
                left: c.left,
                joined: c.joined,
            },
            CpgEvent::TotemConfchg { ring_id, members } => Self::TotemConfchg { ring_id, members },
        }
    }
}

/// Anything that names a CPG group: `&str`, `String`, `&[u8]`, `[u8; N]`, `Vec<u8>` or a
/// [`GroupName`]. Names are bytes, at most 128 of them (corosync's `struct cpg_name`).
pub trait GroupArg {
    /// The name's bytes.
    fn group_bytes(&self) -> &[u8];
}

impl GroupArg for str {
    fn group_bytes(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl GroupArg for String {
    fn group_bytes(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl GroupArg for [u8] {
    fn group_bytes(&self) -> &[u8] {
        self
    }
}

impl<const N: usize> GroupArg for [u8; N] {
    fn group_bytes(&self) -> &[u8] {
        self
    }
}

impl GroupArg for Vec<u8> {
    fn group_bytes(&self) -> &[u8] {
        self
    }
}

impl GroupArg for GroupName {
    fn group_bytes(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl<T: GroupArg + ?Sized> GroupArg for &T {
    fn group_bytes(&self) -> &[u8] {
        (**self).group_bytes()
    }
}

/// Wraps a group name's bytes, checking the length (client side, before any round trip).
pub(crate) fn group_name(bytes: &[u8]) -> Result<GroupName, crate::Error> {
    GroupName::new(bytes).map_err(|_| crate::Error::NameTooLong)
}
