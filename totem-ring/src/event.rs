//! What the ring hands its driver: [`Transmit`]s to send and [`Event`]s for the layers
//! above (deliveries, configuration changes, the ring seq to persist).

use alloc::vec::Vec;

use bytes::Bytes;
use totem_proto::{Guarantee, NodeId, RingId, ServiceId};
use totem_transport::Dest;

/// A frame to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Where: every node (a data message, a join, a merge detect) or one node (a token).
    pub dest: Dest,
    /// The whole frame. Shared with the ring's retransmit queue, never copied.
    pub frame: Bytes,
}

/// Which kind of configuration (Extended Virtual Synchrony, Moser et al. 1994).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum ConfigurationKind {
    /// The members that move together from the old ring into the new one. Old-ring
    /// messages whose delivery the old configuration could not complete are delivered in it.
    Transitional,
    /// The new ring, in normal operation.
    Regular,
}

/// A configuration change.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Configuration {
    /// Transitional or regular.
    pub kind: ConfigurationKind,
    /// The new ring's id (for both kinds, as corosync reports it).
    pub ring_id: RingId,
    /// Members, ascending.
    pub members: Vec<NodeId>,
    /// Members of the previous configuration that are not in this one (transitional only).
    pub left: Vec<NodeId>,
    /// Members that were not in the previous regular configuration (regular only).
    pub joined: Vec<NodeId>,
}

/// One application message delivered in total order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The node that submitted it.
    pub sender: NodeId,
    /// The service it is for.
    pub service: ServiceId,
    /// The guarantee it was delivered with.
    pub guarantee: Guarantee,
    /// The ring it was ordered on.
    pub ring_id: RingId,
    /// The message. For packed messages a slice of the received frame (no copy).
    pub payload: Bytes,
}

/// Something the layers above must know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A message, in total order.
    Deliver(Delivery),
    /// A configuration change: a transitional one, then the regular one.
    Configuration(Configuration),
    /// The ring is about to use ring sequence `seq`: persist it before sending the frames
    /// that follow (drain events before transmits), so that after a restart this node
    /// never reuses a ring id ([`crate::Ring::new`] takes the last persisted value).
    RingSeqUsed(u64),
}
