//! One error type for every call: corosync's `cs_error_t` codes, one variant each (so a
//! `match` reads like the C `switch`), and the ways the connection itself can fail.
//!
//! [`Error::code`] gives the `cs_error_t` value a C caller would have seen, connection
//! failures included (libcpg reports them as `CS_ERR_LIBRARY`, `CS_ERR_TRY_AGAIN`, ...).

use core::fmt;

use services::DecodeError;
use services::cpg::wire::CsError;

/// Why a call failed.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    // ---- cs_error_t, as the daemon answers (corotypes.h numbering) ----
    /// `CS_ERR_LIBRARY` (2).
    Library,
    /// `CS_ERR_VERSION` (3): the daemon speaks another wire version.
    Version,
    /// `CS_ERR_INIT` (4).
    Init,
    /// `CS_ERR_TIMEOUT` (5).
    Timeout,
    /// `CS_ERR_TRY_AGAIN` (6): flow control is on (the ring's send queue is full), the
    /// daemon is not ready yet, or a leave is still in flight. Nothing was done: dispatch
    /// events, wait a little, call again.
    TryAgain,
    /// `CS_ERR_INVALID_PARAM` (7).
    InvalidParam,
    /// `CS_ERR_NO_MEMORY` (8).
    NoMemory,
    /// `CS_ERR_BAD_HANDLE` (9): the handle was finalized, or an unknown iteration.
    BadHandle,
    /// `CS_ERR_BUSY` (10): a join or leave of that group is in progress.
    Busy,
    /// `CS_ERR_ACCESS` (11): the daemon's access policy refuses this user.
    Access,
    /// `CS_ERR_NOT_EXIST` (12): not a member of that group (leave, mcast), or no such
    /// service.
    NotExist,
    /// `CS_ERR_NAME_TOO_LONG` (13): a group name above 128 bytes.
    NameTooLong,
    /// `CS_ERR_EXIST` (14): already in that group.
    Exist,
    /// `CS_ERR_NO_SPACE` (15).
    NoSpace,
    /// `CS_ERR_INTERRUPT` (16).
    Interrupt,
    /// `CS_ERR_NAME_NOT_FOUND` (17).
    NameNotFound,
    /// `CS_ERR_NO_RESOURCES` (18): too many open iterations.
    NoResources,
    /// `CS_ERR_NOT_SUPPORTED` (19): the daemon does not know the request.
    NotSupported,
    /// `CS_ERR_BAD_OPERATION` (20).
    BadOperation,
    /// `CS_ERR_FAILED_OPERATION` (21).
    FailedOperation,
    /// `CS_ERR_MESSAGE_ERROR` (22): the daemon could not decode the request.
    MessageError,
    /// `CS_ERR_QUEUE_FULL` (23).
    QueueFull,
    /// `CS_ERR_QUEUE_NOT_AVAILABLE` (24).
    QueueNotAvailable,
    /// `CS_ERR_BAD_FLAGS` (25).
    BadFlags,
    /// `CS_ERR_TOO_BIG` (26): the message is above [`crate::cpg::Cpg::max_message_size`].
    TooBig,
    /// `CS_ERR_NO_SECTIONS` (27).
    NoSections,
    /// `CS_ERR_CONTEXT_NOT_FOUND` (28).
    ContextNotFound,
    /// `CS_ERR_TOO_MANY_GROUPS` (30): this connection joined as many groups as allowed.
    TooManyGroups,
    /// `CS_ERR_SECURITY` (100).
    Security,
    /// A `cs_error_t` value this build does not know.
    Unknown(u8),

    // ---- the connection ----
    /// The daemon could not be reached or refused the connection (no daemon: `Os` with
    /// `ENOENT`/`ECONNREFUSED`; `AccessDenied`; `NotReady`; ...).
    Connect(ipc_shm::ConnectError),
    /// The daemon closed the connection (it exited, or dropped this client). The handle is
    /// of no further use.
    Disconnected,
    /// The shared-memory transport failed (a system call, or a corrupt ring).
    Ipc(ipc_shm::Error),
    /// The daemon's answer does not decode: a daemon of another version, or a bug.
    Decode(DecodeError),
    /// The daemon's answer decodes but is not what was asked for (`what` says how).
    Protocol(&'static str),
}

impl Error {
    /// The `cs_error_t` value corosync's libcpg would return for this failure
    /// (connection failures as libcpg maps them: `LIBRARY`, `TRY_AGAIN`, `ACCESS`, ...).
    pub fn code(&self) -> u8 {
        match *self {
            Self::Connect(ipc_shm::ConnectError::AccessDenied) => 11,
            Self::Connect(ipc_shm::ConnectError::NotReady) => 6,
            Self::Connect(ipc_shm::ConnectError::TimedOut) => 5,
            Self::Connect(ipc_shm::ConnectError::VersionMismatch { .. }) => 3,
            Self::Connect(_)
            | Self::Disconnected
            | Self::Ipc(_)
            | Self::Decode(_)
            | Self::Protocol(_) => 2,
            cs => u8::from(cs.cs_error().unwrap_or(CsError::Library)),
        }
    }

    /// corosync's name of the `cs_error_t` value ([`Error::code`]): `CS_ERR_NOT_EXIST`, ...
    /// (`CS_ERR_UNKNOWN` for a value this build does not know).
    pub fn cs_name(&self) -> &'static str {
        match self.code() {
            2 => "CS_ERR_LIBRARY",
            3 => "CS_ERR_VERSION",
            4 => "CS_ERR_INIT",
            5 => "CS_ERR_TIMEOUT",
            6 => "CS_ERR_TRY_AGAIN",
            7 => "CS_ERR_INVALID_PARAM",
            8 => "CS_ERR_NO_MEMORY",
            9 => "CS_ERR_BAD_HANDLE",
            10 => "CS_ERR_BUSY",
            11 => "CS_ERR_ACCESS",
            12 => "CS_ERR_NOT_EXIST",
            13 => "CS_ERR_NAME_TOO_LONG",
            14 => "CS_ERR_EXIST",
            15 => "CS_ERR_NO_SPACE",
            16 => "CS_ERR_INTERRUPT",
            17 => "CS_ERR_NAME_NOT_FOUND",
            18 => "CS_ERR_NO_RESOURCES",
            19 => "CS_ERR_NOT_SUPPORTED",
            20 => "CS_ERR_BAD_OPERATION",
            21 => "CS_ERR_FAILED_OPERATION",
            22 => "CS_ERR_MESSAGE_ERROR",
            23 => "CS_ERR_QUEUE_FULL",
            24 => "CS_ERR_QUEUE_NOT_AVAILABLE",
            25 => "CS_ERR_BAD_FLAGS",
            26 => "CS_ERR_TOO_BIG",
            27 => "CS_ERR_NO_SECTIONS",
            28 => "CS_ERR_CONTEXT_NOT_FOUND",
            30 => "CS_ERR_TOO_MANY_GROUPS",
            100 => "CS_ERR_SECURITY",
            _ => "CS_ERR_UNKNOWN",
        }
    }

    /// Whether this is [`Error::TryAgain`]: retry after dispatching.
    pub fn is_try_again(&self) -> bool {
        *self == Self::TryAgain
    }

    /// The daemon-side code of a `cs_error_t` variant; `None` for connection errors.
    fn cs_error(self) -> Option<CsError> {
        Some(match self {
            Self::Library => CsError::Library,
            Self::Version => CsError::Version,
            Self::Init => CsError::Init,
            Self::Timeout => CsError::Timeout,
            Self::TryAgain => CsError::TryAgain,
            Self::InvalidParam => CsError::InvalidParam,
            Self::NoMemory => CsError::NoMemory,
            Self::BadHandle => CsError::BadHandle,
            Self::Busy => CsError::Busy,
            Self::Access => CsError::Access,
            Self::NotExist => CsError::NotExist,
            Self::NameTooLong => CsError::NameTooLong,
            Self::Exist => CsError::Exist,
            Self::NoSpace => CsError::NoSpace,
            Self::Interrupt => CsError::Interrupt,
            Self::NameNotFound => CsError::NameNotFound,
            Self::NoResources => CsError::NoResources,
            Self::NotSupported => CsError::NotSupported,
            Self::BadOperation => CsError::BadOperation,
            Self::FailedOperation => CsError::FailedOperation,
            Self::MessageError => CsError::MessageError,
            Self::QueueFull => CsError::QueueFull,
            Self::QueueNotAvailable => CsError::QueueNotAvailable,
            Self::BadFlags => CsError::BadFlags,
            Self::TooBig => CsError::TooBig,
            Self::NoSections => CsError::NoSections,
            Self::ContextNotFound => CsError::ContextNotFound,
            Self::TooManyGroups => CsError::TooManyGroups,
            Self::Security => CsError::Security,
            Self::Unknown(c) => CsError::Unknown(c),
            Self::Connect(_)
            | Self::Disconnected
            | Self::Ipc(_)
            | Self::Decode(_)
            | Self::Protocol(_) => return None,
        })
    }

    /// The variant of a daemon's `cs_error_t` (`Ok` is not an error: a caller bug, reported
    /// as [`Error::Protocol`]).
    pub(crate) fn from_cs(e: CsError) -> Self {
        match e {
            CsError::Ok => Self::Protocol("an error reply carrying CS_OK"),
            CsError::Library => Self::Library,
            CsError::Version => Self::Version,
            CsError::Init => Self::Init,
            CsError::Timeout => Self::Timeout,
            CsError::TryAgain => Self::TryAgain,
            CsError::InvalidParam => Self::InvalidParam,
            CsError::NoMemory => Self::NoMemory,
            CsError::BadHandle => Self::BadHandle,
            CsError::Busy => Self::Busy,
            CsError::Access => Self::Access,
            CsError::NotExist => Self::NotExist,
            CsError::NameTooLong => Self::NameTooLong,
            CsError::Exist => Self::Exist,
            CsError::NoSpace => Self::NoSpace,
            CsError::Interrupt => Self::Interrupt,
            CsError::NameNotFound => Self::NameNotFound,
            CsError::NoResources => Self::NoResources,
            CsError::NotSupported => Self::NotSupported,
            CsError::BadOperation => Self::BadOperation,
            CsError::FailedOperation => Self::FailedOperation,
            CsError::MessageError => Self::MessageError,
            CsError::QueueFull => Self::QueueFull,
            CsError::QueueNotAvailable => Self::QueueNotAvailable,
            CsError::BadFlags => Self::BadFlags,
            CsError::TooBig => Self::TooBig,
            CsError::NoSections => Self::NoSections,
            CsError::ContextNotFound => Self::ContextNotFound,
            CsError::TooManyGroups => Self::TooManyGroups,
            CsError::Security => Self::Security,
            CsError::Unknown(c) => Self::Unknown(c),
        }
    }
}

impl From<ipc_shm::Error> for Error {
    /// A full request ring is corosync's `CS_ERR_TRY_AGAIN`; an oversized record its
    /// `CS_ERR_TOO_BIG`; the daemon's timeout `CS_ERR_TIMEOUT`.
    fn from(e: ipc_shm::Error) -> Self {
        match e {
            ipc_shm::Error::TryAgain => Self::TryAgain,
            ipc_shm::Error::TooLarge { .. } => Self::TooBig,
            ipc_shm::Error::Disconnected => Self::Disconnected,
            ipc_shm::Error::TimedOut => Self::Timeout,
            other => Self::Ipc(other),
        }
    }
}

impl From<ipc_shm::ConnectError> for Error {
    fn from(e: ipc_shm::ConnectError) -> Self {
        Self::Connect(e)
    }
}

impl From<DecodeError> for Error {
    fn from(e: DecodeError) -> Self {
        Self::Decode(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connect(e) => write!(f, "cannot connect to totemd: {e}"),
            Self::Disconnected => f.write_str("totemd closed the connection"),
            Self::Ipc(e) => write!(f, "IPC failure: {e}"),
            Self::Decode(e) => write!(f, "undecodable answer from totemd: {e}"),
            Self::Protocol(what) => write!(f, "unexpected answer from totemd: {what}"),
            Self::TryAgain => f.write_str("try again (CS_ERR_TRY_AGAIN: flow control or sync)"),
            Self::TooBig => f.write_str("message too big (CS_ERR_TOO_BIG)"),
            Self::NameTooLong => f.write_str("group name above 128 bytes (CS_ERR_NAME_TOO_LONG)"),
            Self::BadHandle => f.write_str("handle finalized (CS_ERR_BAD_HANDLE)"),
            Self::NotExist => f.write_str("not a member of that group (CS_ERR_NOT_EXIST)"),
            Self::Exist => f.write_str("already a member of that group (CS_ERR_EXIST)"),
            Self::Busy => f.write_str("a join or leave is in progress (CS_ERR_BUSY)"),
            other => write!(f, "CS_ERR {} ({other:?})", other.code()),
        }
    }
}

impl core::error::Error for Error {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Connect(e) => Some(e),
            Self::Ipc(e) => Some(e),
            Self::Decode(e) => Some(e),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cs_error_round_trips_through_the_enum() {
        for v in 0..=u8::MAX {
            let cs = CsError::from(v);
            if cs == CsError::Ok {
                continue;
            }
            let e = Error::from_cs(cs);
            assert_eq!(e.code(), v, "{e:?}");
        }
        assert_eq!(Error::Disconnected.code(), 2);
        assert_eq!(Error::from(ipc_shm::Error::TryAgain), Error::TryAgain);
        assert_eq!(Error::Connect(ipc_shm::ConnectError::NotReady).code(), 6);
        assert!(Error::TryAgain.is_try_again());
    }
}
