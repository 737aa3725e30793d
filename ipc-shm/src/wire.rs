//! The one message on the control socket: the daemon's welcome (or refusal), sent right
//! after `accept`. The client never writes on the socket; after the welcome it is only a
//! liveness signal (each side sees the other's close as end of file / `POLLHUP`).
//!
//! ```text
//!  0       4       6       8       10  11  12      16              24
//!  +-------+-------+-------+-------+---+---+-------+---------------+
//!  | magic |version| kind  |reason |prm| 0 | errno |    conn id    |
//!  +-------+-------+-------+-------+---+---+-------+---------------+
//!  24      28      32      36      40
//!  +-------+-------+-------+-------+
//!  |req cap|rsp cap|evt cap|max msg|
//!  +-------+-------+-------+-------+
//! ```
//!
//! All integers little-endian. `kind` 0 = accepted (with `SCM_RIGHTS`: memfd, daemon
//! doorbell eventfd, client sync eventfd, client event eventfd, in that order), 1 = refused
//! (`reason` 1 access denied, 2 too many connections, 3 not ready, 4 out of resources; `errno`
//! the corosync-compatible code; no fds). `prm` is the [`Permission`] bits (1 read, 2 write).

use crate::access::Permission;
use crate::error::ConnectError;

/// `"TSHM"`.
pub(crate) const MAGIC: u32 = u32::from_le_bytes(*b"TSHM");
/// Bumped on any incompatible change of this message or the shared-memory layout.
/// 2: each ring header field on a cache line of its own.
pub(crate) const VERSION: u16 = 2;
/// Bytes of a welcome.
pub(crate) const WELCOME_LEN: usize = 40;

/// Refusal reason codes (`reason` field).
pub(crate) mod reason {
    pub(crate) const ACCESS_DENIED: u16 = 1;
    pub(crate) const TOO_MANY: u16 = 2;
    pub(crate) const NOT_READY: u16 = 3;
    pub(crate) const RESOURCES: u16 = 4;
}

/// What the daemon tells an accepted client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Accepted {
    pub(crate) conn_id: u64,
    pub(crate) permission: Permission,
    /// Request, response and event ring capacities.
    pub(crate) caps: [u32; 3],
    pub(crate) max_message: u32,
}

/// A welcome, either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Welcome {
    Accepted(Accepted),
    Refused { reason: u16, errno: i32 },
}

impl Welcome {
    pub(crate) fn encode(&self) -> [u8; WELCOME_LEN] {
        let mut b = [0u8; WELCOME_LEN];
        b[0..4].copy_from_slice(&MAGIC.to_le_bytes());
        b[4..6].copy_from_slice(&VERSION.to_le_bytes());
        match *self {
            Self::Accepted(a) => {
                b[10] = a.permission.to_bits();
                b[16..24].copy_from_slice(&a.conn_id.to_le_bytes());
                for (i, c) in a.caps.iter().enumerate() {
                    b[24 + 4 * i..28 + 4 * i].copy_from_slice(&c.to_le_bytes());
                }
                b[36..40].copy_from_slice(&a.max_message.to_le_bytes());
            }
            Self::Refused { reason, errno } => {
                b[6..8].copy_from_slice(&1u16.to_le_bytes());
                b[8..10].copy_from_slice(&reason.to_le_bytes());
                b[12..16].copy_from_slice(&errno.to_le_bytes());
            }
        }
        b
    }

    /// Parse what the client received (`bytes` is exactly what `recvmsg` returned).
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, ConnectError> {
        let b: &[u8; WELCOME_LEN] = bytes
            .try_into()
            .map_err(|_| ConnectError::Protocol("welcome has the wrong length"))?;
        let u16_at = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        if u32_at(0) != MAGIC {
            return Err(ConnectError::Protocol("bad magic"));
        }
        let version = u16_at(4);
        if version != VERSION {
            return Err(ConnectError::VersionMismatch {
                ours: VERSION,
                theirs: version,
            });
        }
        match u16_at(6) {
            0 => {
                let mut id = [0u8; 8];
                id.copy_from_slice(&b[16..24]);
                Ok(Self::Accepted(Accepted {
                    conn_id: u64::from_le_bytes(id),
                    permission: Permission::from_bits(b[10]),
                    caps: [u32_at(24), u32_at(28), u32_at(32)],
                    max_message: u32_at(36),
                }))
            }
            1 => Ok(Self::Refused {
                reason: u16_at(8),
                errno: u32_at(12) as i32,
            }),
            _ => Err(ConnectError::Protocol("unknown welcome kind")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn welcome_round_trips() {
        let a = Welcome::Accepted(Accepted {
            conn_id: 0x0102_0304_0506_0708,
            permission: Permission::READ,
            caps: [1 << 21, 1 << 21, 1 << 23],
            max_message: (1 << 20) + 4096,
        });
        assert_eq!(Welcome::decode(&a.encode()), Ok(a));
        let r = Welcome::Refused {
            reason: reason::ACCESS_DENIED,
            errno: libc::EACCES,
        };
        assert_eq!(Welcome::decode(&r.encode()), Ok(r));
    }

    #[test]
    fn golden_refusal_bytes() {
        let r = Welcome::Refused {
            reason: reason::TOO_MANY,
            errno: 24,
        }
        .encode();
        assert_eq!(
            &r[..16],
            b"TSHM\x02\x00\x01\x00\x02\x00\x00\x00\x18\x00\x00\x00"
        );
        assert!(r[16..].iter().all(|&b| b == 0));
    }

    #[test]
    fn malformed_welcomes_are_errors() {
        let good = Welcome::Refused {
            reason: 1,
            errno: 13,
        }
        .encode();
        assert!(Welcome::decode(&good[..39]).is_err());
        let mut bad = good;
        bad[0] ^= 1;
        assert_eq!(
            Welcome::decode(&bad),
            Err(ConnectError::Protocol("bad magic"))
        );
        let mut v1 = good;
        v1[4] = 1;
        assert!(matches!(
            Welcome::decode(&v1),
            Err(ConnectError::VersionMismatch { theirs: 1, .. })
        ));
        let mut k = good;
        k[6] = 9;
        assert!(Welcome::decode(&k).is_err());
    }
}
