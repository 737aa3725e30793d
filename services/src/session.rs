//! The IPC session envelope: the first record a client sends on a fresh connection names
//! the service it wants, and the daemon answers with a `cs_error_t`. Every record after that
//! belongs to that service's own format (`cpg::wire`, ...). One socket per daemon serves
//! every service, the daemon's control requests included.
//!
//! ```text
//! Hello       : 'T' 'O' 'T' 'M' | version (1) | service id (u16, big-endian)
//! HelloReply  : 'T' 'O' 'T' 'M' | version (1) | error (cs_error_t, u8; 1 = ok)
//! ```
//!
//! [`CONTROL`] is the daemon's own control service (not a replicated engine): its requests
//! and replies are UTF-8 text lines (`status`, `reload`, `leave`, `cpg`, ...), as
//! `totemctl` sends them.

use totem_proto::ServiceId;

use crate::cpg::wire::CsError;
use crate::wire::{DecodeError, Reader, WIRE_VERSION};

/// The magic that opens a session.
pub const MAGIC: [u8; 4] = *b"TOTM";

/// Bytes of a hello or its reply.
pub const HELLO_LEN: usize = 7;

/// The daemon's control service: text requests answered by the node, not an engine.
pub const CONTROL: ServiceId = ServiceId(0xff00);

/// The client's opening record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hello {
    /// The service this connection is for.
    pub service: ServiceId,
}

impl Hello {
    /// The record's bytes.
    pub fn encode(&self) -> [u8; HELLO_LEN] {
        let [a, b] = self.service.0.to_be_bytes();
        let [m0, m1, m2, m3] = MAGIC;
        [m0, m1, m2, m3, WIRE_VERSION, a, b]
    }

    /// Parses an opening record.
    ///
    /// # Errors
    /// Wrong magic, version or length.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        magic(&mut r)?;
        r.version()?;
        let service = ServiceId(r.u16()?);
        r.finish()?;
        Ok(Self { service })
    }
}

/// The daemon's answer to a [`Hello`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HelloReply {
    /// `Ok`, or why the session was refused (`NotExist`: no such service; `Access`;
    /// `TryAgain`: the daemon is not ready yet).
    pub error: CsError,
}

impl HelloReply {
    /// The record's bytes.
    pub fn encode(&self) -> [u8; HELLO_LEN] {
        let [m0, m1, m2, m3] = MAGIC;
        [m0, m1, m2, m3, WIRE_VERSION, 0, u8::from(self.error)]
    }

    /// Parses a reply.
    ///
    /// # Errors
    /// Wrong magic, version or length.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        magic(&mut r)?;
        r.version()?;
        let _reserved = r.u8()?;
        let error = CsError::from(r.u8()?);
        r.finish()?;
        Ok(Self { error })
    }
}

fn magic(r: &mut Reader<'_>) -> Result<(), DecodeError> {
    if r.take(4)? != MAGIC {
        return Err(DecodeError::InvalidValue {
            field: "session.magic",
            value: 0,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_and_reply_round_trip_and_reject_garbage() {
        let h = Hello {
            service: crate::service_id::CPG,
        };
        assert_eq!(Hello::decode(&h.encode()), Ok(h));
        let r = HelloReply { error: CsError::Ok };
        assert_eq!(HelloReply::decode(&r.encode()), Ok(r));
        assert!(Hello::decode(b"TOTM").is_err());
        assert!(Hello::decode(b"XXXX\x01\x00\x08").is_err());
        let mut long = h.encode().to_vec();
        long.push(0);
        assert!(Hello::decode(&long).is_err());
    }
}
