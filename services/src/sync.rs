//! The sync protocol's own messages (corosync `exec/sync.c`: `req_exec_service_build_message`
//! and `req_exec_barrier_message`), multicast under [`service_id::SYNC`].
//!
//! ```text
//! ServiceList  01 01 | ring_id (rep u32, seq u64) | count u32 | service u16 × count
//! Barrier      01 02 | ring_id (rep u32, seq u64) | service u16
//! ```
//!
//! Both carry the ring id of the configuration they belong to: a message queued on one ring
//! and delivered on the next (the ring keeps its send queue across configurations) is
//! recognised as stale and dropped, as corosync's `memcmp(&my_ring_id, ...)`.
//!
//! [`service_id::SYNC`]: crate::service_id::SYNC

use alloc::vec::Vec;

use bytes::Bytes;
use totem_proto::{RingId, ServiceId};

use crate::wire::{self, DecodeError, Reader, WIRE_VERSION, enum_with_unknown};

enum_with_unknown! {
    /// The sync message code points.
    pub enum SyncCode(u8) {
        /// The services a node runs (corosync `MESSAGE_REQ_SYNC_SERVICE_BUILD`).
        ServiceList = 1,
        /// "I finished this service's `sync_process`" (`MESSAGE_REQ_SYNC_BARRIER`).
        Barrier = 2,
    }
}

/// A sync protocol message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SyncMessage {
    /// The sender's engines, ascending.
    ServiceList {
        /// The configuration this round belongs to.
        ring_id: RingId,
        /// Service ids.
        services: Vec<ServiceId>,
    },
    /// The sender finished `service`'s `sync_process` in this round.
    Barrier {
        /// The configuration this round belongs to.
        ring_id: RingId,
        /// The service.
        service: ServiceId,
    },
}

impl SyncMessage {
    /// The round the message belongs to.
    pub fn ring_id(&self) -> RingId {
        match self {
            Self::ServiceList { ring_id, .. } | Self::Barrier { ring_id, .. } => *ring_id,
        }
    }

    /// Decodes a sync message.
    ///
    /// # Errors
    /// A [`DecodeError`] for anything but exactly one well-formed message.
    pub fn parse(bytes: &[u8]) -> wire::Result<Self> {
        let mut r = Reader::new(bytes);
        r.version()?;
        let code = SyncCode::from(r.u8()?);
        let ring_id = r.ring_id()?;
        let msg = match code {
            SyncCode::ServiceList => {
                let n = r.count("services", 2)?;
                let mut services = Vec::with_capacity(n);
                for _ in 0..n {
                    services.push(ServiceId(r.u16()?));
                }
                Self::ServiceList { ring_id, services }
            }
            SyncCode::Barrier => Self::Barrier {
                ring_id,
                service: ServiceId(r.u16()?),
            },
            SyncCode::Unknown(c) => return Err(DecodeError::UnknownCode(c)),
        };
        r.finish()?;
        Ok(msg)
    }

    /// Encodes the message.
    pub fn emit(&self) -> Bytes {
        let mut out = Vec::with_capacity(self.buffer_len());
        out.push(WIRE_VERSION);
        match self {
            Self::ServiceList { ring_id, services } => {
                out.push(SyncCode::ServiceList.into());
                wire::put_ring_id(&mut out, *ring_id);
                wire::put_count(&mut out, services.len());
                for s in services {
                    out.extend_from_slice(&s.0.to_be_bytes());
                }
            }
            Self::Barrier { ring_id, service } => {
                out.push(SyncCode::Barrier.into());
                wire::put_ring_id(&mut out, *ring_id);
                out.extend_from_slice(&service.0.to_be_bytes());
            }
        }
        Bytes::from(out)
    }

    /// Bytes [`emit`](Self::emit) produces.
    pub fn buffer_len(&self) -> usize {
        2 + RingId::LEN
            + match self {
                Self::ServiceList { services, .. } => 4 + 2 * services.len(),
                Self::Barrier { .. } => 2,
            }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::TestRng;
    use alloc::vec;
    use totem_proto::NodeId;

    fn golden() -> Vec<SyncMessage> {
        let ring_id = RingId::new(NodeId(1), 0x10);
        vec![
            SyncMessage::ServiceList {
                ring_id,
                services: vec![ServiceId(8), ServiceId(9)],
            },
            SyncMessage::Barrier {
                ring_id,
                service: ServiceId(8),
            },
        ]
    }

    #[test]
    fn test_emit_golden_bytes() {
        let b = golden()[1].emit();
        assert_eq!(
            &b[..],
            &[1, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 8][..]
        );
    }

    #[test]
    fn test_round_trip_and_length() {
        for m in golden() {
            let b = m.emit();
            assert_eq!(b.len(), m.buffer_len());
            assert_eq!(SyncMessage::parse(&b), Ok(m));
        }
    }

    #[test]
    fn test_malformed() {
        let barrier = golden()[1].emit();
        assert_eq!(
            SyncMessage::parse(&barrier[..barrier.len() - 1]),
            Err(DecodeError::Truncated { need: 16, have: 15 })
        );
        let b = golden()[0].emit();
        assert_eq!(
            SyncMessage::parse(&b[..b.len() - 1]),
            Err(DecodeError::TooManyEntries {
                field: "services",
                count: 2
            })
        );
        let mut v = b.to_vec();
        v[0] = 9;
        assert_eq!(
            SyncMessage::parse(&v),
            Err(DecodeError::UnsupportedVersion(9))
        );
        let mut v = b.to_vec();
        v[1] = 7;
        assert_eq!(SyncMessage::parse(&v), Err(DecodeError::UnknownCode(7)));
        let mut v = b.to_vec();
        v.push(0);
        assert_eq!(SyncMessage::parse(&v), Err(DecodeError::TrailingBytes(1)));
    }

    #[test]
    fn fuzz_lite_sync_messages_never_panic_and_round_trip() {
        let mut rng = TestRng(0x5e7c);
        let seeds: Vec<Vec<u8>> = golden().iter().map(|m| m.emit().to_vec()).collect();
        for i in 0..20_000 {
            let mut b = seeds[i % seeds.len()].clone();
            rng.mutate(&mut b);
            if let Ok(m) = SyncMessage::parse(&b) {
                assert_eq!(&m.emit()[..], &b[..]);
            }
        }
    }
}
