//! [`TransportError`]: the one error every transport reports, whatever carries the bytes.
//!
//! Non-allocating and `Copy`, so a driver can log it, count it and retry without cloning
//! anything; `#[non_exhaustive]` so a transport-specific condition can be added without
//! breaking the match arms of drivers written today.

use core::fmt;

use totem_proto::NodeId;

/// Why a [`Transport`](crate::Transport) call did not complete.
///
/// The variants fall in three groups, which tell the caller what to do next:
///
/// * **Retry later**: [`WouldBlock`](Self::WouldBlock). Nothing was sent; the same frame must
///   be offered again once the transport can take it.
/// * **This datagram only**: [`TooLarge`](Self::TooLarge),
///   [`UnknownNode`](Self::UnknownNode). The frame can never be sent as asked; the next one
///   may well succeed.
/// * **The transport itself**: [`Io`](Self::Io), [`Closed`](Self::Closed). `Io` may be
///   transient (an ICMP error surfacing on a UDP socket); `Closed` is final.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum TransportError {
    /// Back-pressure: the transport cannot take the datagram right now (a full socket send
    /// buffer, no free transmit descriptor). Nothing was sent and nothing is lost: the caller
    /// keeps the frame and offers it again later. `recv` never returns this; an empty receive
    /// queue is `Ok(None)`.
    WouldBlock,
    /// The frame is longer than [`Transport::max_datagram`](crate::Transport::max_datagram).
    TooLarge {
        /// Length of the frame offered, in bytes.
        len: usize,
        /// Largest frame this transport carries, in bytes.
        max: usize,
    },
    /// The transport has no address for this node (not in its node list, or id 0).
    UnknownNode(NodeId),
    /// The operating system or the device reported an error. The code is errno-like
    /// (`errno` on Unix, a driver status on firmware) and is for diagnostics only: its meaning
    /// depends on the transport that produced it.
    Io(i32),
    /// The transport was shut down (or its endpoint removed); every later call fails the same
    /// way.
    Closed,
}

impl TransportError {
    /// Whether this is back-pressure, i.e. the same frame should be offered again later.
    pub const fn is_would_block(&self) -> bool {
        matches!(self, Self::WouldBlock)
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::WouldBlock => f.write_str("transport busy, try again later"),
            Self::TooLarge { len, max } => {
                write!(
                    f,
                    "frame of {len} bytes exceeds the transport maximum of {max} bytes"
                )
            }
            Self::UnknownNode(node) => write!(f, "no address known for node {node}"),
            Self::Io(code) => write!(f, "I/O error (code {code})"),
            Self::Closed => f.write_str("transport closed"),
        }
    }
}

impl core::error::Error for TransportError {}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn display_names_the_numbers_a_log_reader_needs() {
        let e = TransportError::TooLarge {
            len: 70_000,
            max: 65_507,
        };
        assert_eq!(
            e.to_string(),
            "frame of 70000 bytes exceeds the transport maximum of 65507 bytes"
        );
        assert_eq!(
            TransportError::UnknownNode(NodeId(7)).to_string(),
            "no address known for node 7"
        );
        assert_eq!(TransportError::Io(11).to_string(), "I/O error (code 11)");
        assert!(TransportError::WouldBlock.is_would_block());
        assert!(!TransportError::Closed.is_would_block());
    }

    #[test]
    fn is_a_core_error() {
        fn takes(_: &dyn core::error::Error) {}
        takes(&TransportError::Closed);
    }
}
