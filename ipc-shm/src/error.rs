//! One precise, non-allocating error type per layer (STYLE point 5).
//!
//! | layer | type | who sees it |
//! | --- | --- | --- |
//! | ring | [`RingError`] | inside [`ConnError::Corrupt`] / [`Error::Corrupt`]: the other side broke the ring |
//! | server set-up | [`ServerError`], [`ConfigError`] | the daemon at start-up |
//! | accept | [`AcceptError`], [`RefuseReason`] | the daemon, per refused or failed connection attempt |
//! | server connection | [`ConnError`], [`SendError`] | the daemon, per client |
//! | client | [`ConnectError`], [`Error`] | the client library |
//!
//! All are `Copy`: an errno is kept as the number and formatted only when displayed.

use core::fmt;

use crate::access::Credentials;

/// Which of a connection's three rings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RingKind {
    /// Client → daemon requests.
    Request,
    /// Daemon → client responses, one per request, in request order.
    Response,
    /// Daemon → client asynchronous events (dispatch).
    Event,
}

impl fmt::Display for RingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Request => "request",
            Self::Response => "response",
            Self::Event => "event",
        })
    }
}

/// The other side of a ring wrote something impossible into shared memory.
///
/// The daemon treats every value a client can write as hostile: any of these disconnects
/// that client (one log line) and nothing is read beyond the checked bounds.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RingError {
    /// The producer's `head` is behind our `tail`, more than a ring ahead of it, or not
    /// 8-byte aligned.
    HeadOutOfRange {
        /// The value found in shared memory.
        head: u64,
        /// Our private read position.
        tail: u64,
        /// Ring capacity in bytes.
        capacity: u64,
    },
    /// The consumer's `tail` went backwards, passed our `head`, or is not 8-byte aligned.
    TailOutOfRange {
        /// The value found in shared memory.
        tail: u64,
        /// The last valid value seen.
        previous: u64,
        /// Our private write position.
        head: u64,
    },
    /// A record header announces more than the connection's `max_message`.
    RecordTooLarge {
        /// Announced payload length.
        len: u32,
        /// The limit agreed at connect time.
        max: u32,
    },
    /// A record header announces more bytes than the producer has published.
    RecordBeyondHead {
        /// Bytes the record would occupy (header, payload, padding).
        need: u64,
        /// Bytes published between `tail` and `head`.
        available: u64,
    },
    /// A record header carries the wrong sequence number (records are numbered from 0).
    BadSequence {
        /// The next number this side expects.
        expected: u32,
        /// The number found.
        found: u32,
    },
}

impl fmt::Display for RingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::HeadOutOfRange {
                head,
                tail,
                capacity,
            } => write!(
                f,
                "head {head} out of range (tail {tail}, capacity {capacity})"
            ),
            Self::TailOutOfRange {
                tail,
                previous,
                head,
            } => write!(
                f,
                "tail {tail} out of range (previous {previous}, head {head})"
            ),
            Self::RecordTooLarge { len, max } => {
                write!(f, "record length {len} exceeds max_message {max}")
            }
            Self::RecordBeyondHead { need, available } => write!(
                f,
                "record needs {need} bytes but only {available} are published"
            ),
            Self::BadSequence { expected, found } => {
                write!(f, "record sequence {found}, expected {expected}")
            }
        }
    }
}

impl core::error::Error for RingError {}

/// A system call failed: which one, and its errno.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OsError {
    /// The call (`"memfd_create"`, `"sendmsg"`, ...).
    pub op: &'static str,
    /// `errno` after the call.
    pub errno: i32,
}

impl OsError {
    /// `errno` of the failed call `op`, read now.
    pub(crate) fn last(op: &'static str) -> Self {
        Self {
            op,
            errno: std::io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EIO),
        }
    }
}

impl fmt::Display for OsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}",
            self.op,
            std::io::Error::from_raw_os_error(self.errno)
        )
    }
}

impl core::error::Error for OsError {}

/// A [`crate::ServerConfig`] that cannot work.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigError {
    /// Ring capacities are powers of two between 4 KiB and 1 GiB.
    BadRingSize {
        /// Which ring.
        ring: RingKind,
        /// The configured capacity.
        capacity: usize,
    },
    /// A ring cannot hold one record of `max_message` bytes (records are never chunked).
    RingTooSmall {
        /// Which ring.
        ring: RingKind,
        /// The configured capacity.
        capacity: usize,
        /// Bytes one maximal record occupies.
        need: usize,
    },
    /// `max_connections` is 0.
    NoConnections,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::BadRingSize { ring, capacity } => write!(
                f,
                "{ring} ring size {capacity} is not a power of two between 4 KiB and 1 GiB"
            ),
            Self::RingTooSmall {
                ring,
                capacity,
                need,
            } => write!(
                f,
                "{ring} ring size {capacity} cannot hold one max_message record ({need} bytes)"
            ),
            Self::NoConnections => f.write_str("max_connections must be at least 1"),
        }
    }
}

impl core::error::Error for ConfigError {}

/// [`crate::Server::bind`] failed.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerError {
    /// The configuration is inconsistent.
    Config(ConfigError),
    /// The socket path does not fit `sun_path` (107 bytes and a NUL).
    PathTooLong {
        /// Bytes in the path.
        len: usize,
    },
    /// Another live server is listening on that path.
    AddrInUse,
    /// A system call failed.
    Os(OsError),
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config(e) => write!(f, "invalid IPC configuration: {e}"),
            Self::PathTooLong { len } => {
                write!(f, "socket path is {len} bytes, at most 107 fit")
            }
            Self::AddrInUse => f.write_str("another server is listening on this socket path"),
            Self::Os(e) => write!(f, "{e}"),
        }
    }
}

impl core::error::Error for ServerError {}

/// Why the server refused a connection; the client receives it as a [`ConnectError`].
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefuseReason {
    /// The [`crate::AccessPolicy`] grants this uid/gid nothing (client errno `EACCES`).
    AccessDenied,
    /// `max_connections` are open (client errno `EMFILE`).
    TooManyConnections {
        /// The configured limit.
        max: usize,
    },
    /// The daemon is not ready to serve (set with [`crate::Server::set_ready`]); retry later
    /// (client errno `EAGAIN`, corosync's `CS_ERR_TRY_AGAIN`).
    NotReady,
    /// Creating the shared memory or eventfds failed (`EMFILE`, `ENOMEM`, ...).
    OutOfResources(OsError),
}

impl RefuseReason {
    /// The errno a C client would see (corosync's `cs_ipcs_connection_accept` codes).
    pub fn errno(&self) -> i32 {
        match self {
            Self::AccessDenied => libc::EACCES,
            Self::TooManyConnections { .. } => libc::EMFILE,
            Self::NotReady => libc::EAGAIN,
            Self::OutOfResources(e) => e.errno,
        }
    }
}

impl fmt::Display for RefuseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AccessDenied => f.write_str("access denied"),
            Self::TooManyConnections { max } => {
                write!(f, "too many connections (max_connections {max})")
            }
            Self::NotReady => f.write_str("server not ready"),
            Self::OutOfResources(e) => write!(f, "out of resources: {e}"),
        }
    }
}

/// One connection attempt failed; the listener is fine: keep calling
/// [`crate::Server::accept`].
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcceptError {
    /// Refused with a reason the client was told (and one log line was written).
    Refused {
        /// `SO_PEERCRED` of the refused peer.
        peer: Credentials,
        /// Why.
        reason: RefuseReason,
    },
    /// A system call failed (e.g. `accept4` with `EMFILE`, or the peer vanished before it
    /// got its welcome).
    Os(OsError),
}

impl fmt::Display for AcceptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Refused { peer, reason } => write!(
                f,
                "refused connection from {}:{} (pid {}): {reason}",
                peer.uid, peer.gid, peer.pid
            ),
            Self::Os(e) => write!(f, "{e}"),
        }
    }
}

impl core::error::Error for AcceptError {}

/// A server-side [`crate::Connection`] is finished. After the first one every call returns
/// the same error; drop the connection to free its memory and fds.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnError {
    /// The client closed its socket (exit, crash, or `Client` dropped).
    Disconnected,
    /// The client broke a ring in shared memory.
    Corrupt {
        /// Which ring.
        ring: RingKind,
        /// What was wrong.
        error: RingError,
    },
    /// The client wrote on the socket, which the protocol never does after connect.
    Protocol,
    /// A system call failed.
    Os(OsError),
}

impl fmt::Display for ConnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Disconnected => f.write_str("client disconnected"),
            Self::Corrupt { ring, error } => write!(f, "corrupt {ring} ring: {error}"),
            Self::Protocol => f.write_str("client wrote on the control socket"),
            Self::Os(e) => write!(f, "{e}"),
        }
    }
}

impl core::error::Error for ConnError {}

/// [`crate::Connection::send_response`] / [`crate::Connection::send_event`] did not queue
/// the record.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// The ring is full: the client is not reading. Nothing was queued; the doorbell rings
    /// when the client frees space. The daemon decides what a client that stays full
    /// deserves (drop events, or drop the connection after a bound).
    Full,
    /// Longer than the connection's `max_message`.
    TooLarge {
        /// Payload length offered.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The connection is finished.
    Closed(ConnError),
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full => f.write_str("ring full: the client is not reading"),
            Self::TooLarge { len, max } => {
                write!(f, "message of {len} bytes exceeds max_message {max}")
            }
            Self::Closed(e) => write!(f, "connection closed: {e}"),
        }
    }
}

impl core::error::Error for SendError {}

/// [`crate::Client::connect`] failed.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectError {
    /// The daemon's access policy does not allow this uid/gid (`EACCES`).
    AccessDenied,
    /// The daemon has `max_connections` clients (`EMFILE`).
    TooManyConnections,
    /// The daemon is not ready yet: try again later (`EAGAIN`, `CS_ERR_TRY_AGAIN`).
    NotReady,
    /// The daemon could not allocate the connection's resources (errno attached).
    OutOfResources(i32),
    /// The daemon speaks another protocol version.
    VersionMismatch {
        /// Ours.
        ours: u16,
        /// The daemon's.
        theirs: u16,
    },
    /// The daemon's welcome was malformed (what was wrong).
    Protocol(&'static str),
    /// The socket path does not fit `sun_path`.
    PathTooLong,
    /// No welcome within the connect timeout.
    TimedOut,
    /// A system call failed (`ENOENT`/`ECONNREFUSED` from `connect`: no daemon).
    Os(OsError),
}

impl ConnectError {
    /// The errno a C client would get for this failure.
    pub fn errno(&self) -> i32 {
        match self {
            Self::AccessDenied => libc::EACCES,
            Self::TooManyConnections => libc::EMFILE,
            Self::NotReady => libc::EAGAIN,
            Self::OutOfResources(e) => *e,
            Self::VersionMismatch { .. } | Self::Protocol(_) => libc::EPROTO,
            Self::PathTooLong => libc::ENAMETOOLONG,
            Self::TimedOut => libc::ETIMEDOUT,
            Self::Os(e) => e.errno,
        }
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AccessDenied => f.write_str("access denied by the daemon"),
            Self::TooManyConnections => f.write_str("the daemon has too many connections"),
            Self::NotReady => f.write_str("the daemon is not ready, try again"),
            Self::OutOfResources(e) => write!(
                f,
                "the daemon is out of resources: {}",
                std::io::Error::from_raw_os_error(*e)
            ),
            Self::VersionMismatch { ours, theirs } => {
                write!(f, "IPC protocol version {theirs}, expected {ours}")
            }
            Self::Protocol(what) => write!(f, "malformed welcome: {what}"),
            Self::PathTooLong => f.write_str("socket path too long"),
            Self::TimedOut => f.write_str("no answer from the daemon"),
            Self::Os(e) => write!(f, "{e}"),
        }
    }
}

impl core::error::Error for ConnectError {}

/// A client operation failed.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The request ring is full: the daemon is busy. Nothing was sent; retry
    /// (corosync's `CS_ERR_TRY_AGAIN`).
    TryAgain,
    /// Longer than the connection's `max_message`.
    TooLarge {
        /// Payload length offered.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The daemon closed the connection (it exited, or it dropped this client).
    Disconnected,
    /// The timeout passed first.
    TimedOut,
    /// The daemon's side of a ring is inconsistent.
    Corrupt {
        /// Which ring.
        ring: RingKind,
        /// What was wrong.
        error: RingError,
    },
    /// A system call failed.
    Os(OsError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TryAgain => f.write_str("request ring full, try again"),
            Self::TooLarge { len, max } => {
                write!(f, "message of {len} bytes exceeds max_message {max}")
            }
            Self::Disconnected => f.write_str("the daemon closed the connection"),
            Self::TimedOut => f.write_str("timed out"),
            Self::Corrupt { ring, error } => write!(f, "corrupt {ring} ring: {error}"),
            Self::Os(e) => write!(f, "{e}"),
        }
    }
}

impl core::error::Error for Error {}
