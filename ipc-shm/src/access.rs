//! Who may connect: peer [`Credentials`] (from `SO_PEERCRED`), the [`AccessPolicy`] that
//! maps them to a [`Permission`], and nothing else — pure logic, no syscalls, so the rules
//! are unit-tested with made-up credentials (the real path is tested with `setuid` children
//! in `src/tests/robustness.rs`).
//!
//! The rules follow corosync's `cs_ipcs_connection_accept`: root (uid 0 *or* gid 0) and the
//! daemon's own uid get everything; any other peer gets the union of what its uid and its
//! (effective, primary) gid are granted, as corosync's `uidgid { uid: N gid: N }` and
//! `uidgid.*` cmap keys do. A peer granted nothing is refused (`EACCES`). Corosync's grants
//! are all-or-nothing; [`Permission`] has separate `read` and `write` bits so a later config
//! can say "uid 1000 read-only" — this crate only carries the bits to the daemon
//! ([`crate::Connection::permission`]) and the client ([`crate::Client::permission`]); the
//! services layer enforces them per request.

use alloc::collections::BTreeMap;

/// The peer process as the kernel saw it at `connect` time (`SO_PEERCRED`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Credentials {
    /// Process id (in the daemon's pid namespace).
    pub pid: i32,
    /// Effective user id.
    pub uid: u32,
    /// Effective group id.
    pub gid: u32,
}

/// What a connection may do. The crate only transports it; services enforce it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Permission {
    /// May read state (cmap get, quorum status, CPG membership, ...).
    pub read: bool,
    /// May change state (cmap set, CPG join and send, ...).
    pub write: bool,
}

impl Permission {
    /// Nothing: the connection is refused.
    pub const NONE: Self = Self {
        read: false,
        write: false,
    };
    /// Read-only.
    pub const READ: Self = Self {
        read: true,
        write: false,
    };
    /// Everything (what corosync grants any allowed peer).
    pub const FULL: Self = Self {
        read: true,
        write: true,
    };

    /// Both sets of rights together.
    #[must_use]
    pub fn union(self, other: Self) -> Self {
        Self {
            read: self.read || other.read,
            write: self.write || other.write,
        }
    }

    /// Granted nothing at all.
    pub fn is_none(self) -> bool {
        !self.read && !self.write
    }

    /// The bits sent to the client in the welcome.
    pub(crate) fn to_bits(self) -> u8 {
        u8::from(self.read) | (u8::from(self.write) << 1)
    }

    /// Inverse of [`Permission::to_bits`]; unknown bits are ignored.
    pub(crate) fn from_bits(b: u8) -> Self {
        Self {
            read: b & 1 != 0,
            write: b & 2 != 0,
        }
    }
}

/// Which peers may connect, and with what [`Permission`].
///
/// ```
/// use ipc_shm::{AccessPolicy, Credentials, Permission};
/// let mut policy = AccessPolicy::new(0);
/// policy.allow_uid(1000, Permission::READ).allow_gid(100, Permission::FULL);
/// let peer = |uid, gid| Credentials { pid: 1, uid, gid };
/// assert_eq!(policy.check(&peer(1000, 1000)), Permission::READ);
/// assert_eq!(policy.check(&peer(1000, 100)), Permission::FULL);
/// assert_eq!(policy.check(&peer(1001, 1001)), Permission::NONE);
/// assert_eq!(policy.check(&peer(1001, 0)), Permission::FULL); // gid 0 = root group
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessPolicy {
    daemon_uid: u32,
    uids: BTreeMap<u32, Permission>,
    gids: BTreeMap<u32, Permission>,
}

impl AccessPolicy {
    /// Root and `daemon_uid` only.
    pub fn new(daemon_uid: u32) -> Self {
        Self {
            daemon_uid,
            uids: BTreeMap::new(),
            gids: BTreeMap::new(),
        }
    }

    /// Root and this process's effective uid only.
    #[cfg(not(loom))]
    pub fn for_current_process() -> Self {
        Self::new(crate::sys::geteuid())
    }

    /// Grant `uid` a permission (replacing an earlier grant; `NONE` removes it).
    pub fn allow_uid(&mut self, uid: u32, permission: Permission) -> &mut Self {
        if permission.is_none() {
            self.uids.remove(&uid);
        } else {
            self.uids.insert(uid, permission);
        }
        self
    }

    /// Grant gid `gid` a permission (replacing an earlier grant; `NONE` removes it).
    pub fn allow_gid(&mut self, gid: u32, permission: Permission) -> &mut Self {
        if permission.is_none() {
            self.gids.remove(&gid);
        } else {
            self.gids.insert(gid, permission);
        }
        self
    }

    /// The uid that always has full access besides root.
    pub fn daemon_uid(&self) -> u32 {
        self.daemon_uid
    }

    /// What `peer` may do; [`Permission::NONE`] means refuse.
    pub fn check(&self, peer: &Credentials) -> Permission {
        if peer.uid == 0 || peer.gid == 0 || peer.uid == self.daemon_uid {
            return Permission::FULL;
        }
        let by_uid = self.uids.get(&peer.uid).copied().unwrap_or_default();
        let by_gid = self.gids.get(&peer.gid).copied().unwrap_or_default();
        by_uid.union(by_gid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(uid: u32, gid: u32) -> Credentials {
        Credentials { pid: 42, uid, gid }
    }

    #[test]
    fn root_and_daemon_uid_always_allowed() {
        let p = AccessPolicy::new(500);
        assert_eq!(p.check(&peer(0, 1000)), Permission::FULL);
        assert_eq!(p.check(&peer(1000, 0)), Permission::FULL);
        assert_eq!(p.check(&peer(500, 500)), Permission::FULL);
        assert_eq!(p.check(&peer(501, 501)), Permission::NONE);
    }

    #[test]
    fn uid_and_gid_grants_combine() {
        let mut p = AccessPolicy::new(0);
        p.allow_uid(1000, Permission::READ);
        p.allow_gid(
            2000,
            Permission {
                read: false,
                write: true,
            },
        );
        assert_eq!(p.check(&peer(1000, 1)), Permission::READ);
        assert_eq!(p.check(&peer(1000, 2000)), Permission::FULL);
        assert!(p.check(&peer(7, 2000)).write);
        assert!(!p.check(&peer(7, 2000)).read);
        assert_eq!(p.check(&peer(7, 7)), Permission::NONE);
    }

    #[test]
    fn none_revokes() {
        let mut p = AccessPolicy::new(0);
        p.allow_uid(1000, Permission::FULL);
        p.allow_uid(1000, Permission::NONE);
        assert_eq!(p.check(&peer(1000, 1000)), Permission::NONE);
    }

    #[test]
    fn permission_bits_round_trip() {
        for b in 0..4u8 {
            assert_eq!(Permission::from_bits(b).to_bits(), b);
        }
        assert_eq!(Permission::from_bits(0xff), Permission::FULL);
    }
}
