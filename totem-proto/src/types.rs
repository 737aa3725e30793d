//! The protocol's small value types: node ids, ring ids, sequence numbers, code points and
//! the protocol-wide bounds every list on the wire is checked against.

use core::fmt;

/// Most members a ring may have. corosync's limit is 384 (`PROCESSOR_COUNT_MAX`); every
/// proc/fail/member list on the wire is checked against it before anything is read.
pub const MAX_NODES: usize = 384;

/// Most retransmission requests one token carries (corosync `RETRANSMIT_ENTRIES_MAX`).
pub const RTR_MAX: usize = 30;

/// Oldest wire version this build can decode and emit.
pub const WIRE_VERSION_MIN: u8 = 1;

/// Newest wire version this build can decode and emit. A ring runs at the highest version
/// every member supports (joins carry each node's range, the commit token the choice).
pub const WIRE_VERSION_MAX: u8 = 1;

/// A processor's id: a non-zero `u32` unique in the cluster (corosync `nodeid`).
///
/// Id 0 is reserved and never valid on the wire: decoders reject it wherever a node is named.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct NodeId(pub u32);

impl NodeId {
    /// The raw id.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// Whether this is a usable node id (non-zero).
    pub const fn is_valid(self) -> bool {
        self.0 != 0
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl From<u32> for NodeId {
    fn from(id: u32) -> Self {
        Self(id)
    }
}

/// Position of a message in a ring's total order. Starts at 1 on every new ring.
///
/// A `u64`, so it never wraps in practice (2^64 messages at 10 M/s is 58 000 years) and is
/// compared with plain `<`; corosync's `u32` with its `sq_lt_compare` special case is gone.
pub type Seq = u64;

/// The identity of one ring (one regular configuration): its representative, the member
/// with the lowest id, and a sequence that grows every time a ring forms.
///
/// Ordered by `seq` first so that "newer ring" is `>`; ties (two partitions forming rings
/// with the same seq) are broken by the representative.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct RingId {
    /// Ring sequence: above every ring seq the creator has seen or used before.
    pub seq: u64,
    /// The representative (lowest member id) that created the ring.
    pub rep: NodeId,
}

impl RingId {
    /// Bytes of a ring id on the wire: rep `u32` then seq `u64`.
    pub const LEN: usize = 12;

    /// A ring id.
    pub const fn new(rep: NodeId, seq: u64) -> Self {
        Self { seq, rep }
    }
}

impl fmt::Display for RingId {
    /// corosync's notation, `rep.seq` in hex of the seq (as `corosync-cfgtool -s` prints).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:x}", self.rep, self.seq)
    }
}

/// Defines a `u8`/`u16` code point enum whose unknown values are kept, never a panic, and
/// which round-trips through its integer (smoltcp's `enum_with_unknown!`). Exported for the
/// crates above that define code points of their own (services' request and error codes);
/// the `defmt`/`serde` derives follow the *calling* crate's features.
#[macro_export]
macro_rules! enum_with_unknown {
    (
        $( #[$enum_attr:meta] )*
        pub enum $name:ident($ty:ty) {
            $( $( #[$variant_attr:meta] )* $variant:ident = $value:expr ),+ $(,)?
        }
    ) => {
        $( #[$enum_attr] )*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[cfg_attr(feature = "defmt", derive(defmt::Format))]
        #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
        pub enum $name {
            $( $( #[$variant_attr] )* $variant, )+
            /// A value this build does not know; kept so it round-trips.
            Unknown($ty),
        }

        impl ::core::convert::From<$ty> for $name {
            fn from(value: $ty) -> Self {
                match value {
                    $( $value => $name::$variant, )+
                    other => $name::Unknown(other),
                }
            }
        }

        impl ::core::convert::From<$name> for $ty {
            fn from(value: $name) -> Self {
                match value {
                    $( $name::$variant => $value, )+
                    $name::Unknown(other) => other,
                }
            }
        }
    };
}
pub(crate) use crate::enum_with_unknown;

enum_with_unknown! {
    /// The message type byte of the frame header (corosync's numbering).
    pub enum MessageType(u8) {
        /// The ordering, reliability and flow-control token.
        OrfToken = 0,
        /// A regular (multicast) message carrying application data.
        Mcast = 1,
        /// "A ring is here": broadcast by an idle ring's representative.
        MergeDetect = 2,
        /// A membership join (or leave, with the `LEAVE` flag).
        MembJoin = 3,
        /// The commit token that installs a new ring.
        MembCommitToken = 4,
        /// "Release the held token": broadcast by a node with new data.
        TokenHoldCancel = 5,
    }
}

enum_with_unknown! {
    /// Delivery guarantee requested for a regular message.
    pub enum Guarantee(u8) {
        /// Delivered in total order once every earlier message was delivered.
        Agreed = 0,
        /// Delivered once, in addition, every member is known to have received it.
        Safe = 1,
    }
}

/// Which service engine a packed application message is for (CPG, cmap, quorum, ...).
/// Numbers are assigned by the service layer; the wire format only carries them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ServiceId(pub u16);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_points_round_trip_every_value() {
        for v in 0..=u8::MAX {
            assert_eq!(u8::from(MessageType::from(v)), v);
            assert_eq!(u8::from(Guarantee::from(v)), v);
        }
        assert_eq!(MessageType::from(4), MessageType::MembCommitToken);
        assert_eq!(MessageType::from(9), MessageType::Unknown(9));
    }

    #[test]
    fn ring_ids_order_by_seq_then_rep() {
        let a = RingId::new(NodeId(5), 7);
        let b = RingId::new(NodeId(1), 8);
        let c = RingId::new(NodeId(2), 8);
        assert!(a < b && b < c);
    }
}
