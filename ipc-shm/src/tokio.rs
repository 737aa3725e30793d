//! The `tokio` feature: the server side registered with a tokio reactor.
//!
//! [`AsyncServer`] wraps the listener in an `AsyncFd`; [`AsyncConnection`] wraps a
//! [`Connection`]'s doorbell and socket. Both only add waiting: every decision (access,
//! back-pressure, errors, logging) stays in the blocking-free core, so this file is the
//! connection-layer loop of `server.rs` ("clear the doorbell, then look") written with
//! `poll_read_ready`.

use core::future::poll_fn;
use core::task::{Context, Poll};
use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use crate::access::AccessPolicy;
use crate::error::{AcceptError, ConnError, OsError, SendError};
use crate::server::{Connection, Server};

fn os(op: &'static str, e: &io::Error) -> OsError {
    OsError {
        op,
        errno: e.raw_os_error().unwrap_or(libc::EIO),
    }
}

/// A [`Server`] whose `accept` is awaited.
#[derive(Debug)]
pub struct AsyncServer {
    inner: AsyncFd<Server>,
}

impl AsyncServer {
    /// Register the listener with the current tokio runtime.
    ///
    /// # Errors
    /// The reactor refused the fd (no runtime, or out of resources).
    pub fn new(server: Server) -> io::Result<Self> {
        // SAFETY: the listener fd is owned by `server`, which the AsyncFd owns; no `&mut
        // Server` is ever handed out (so it cannot be swapped for another), hence the fd
        // stays open and `as_raw_fd` stays the same until the AsyncFd is dropped.
        let inner = unsafe { AsyncFd::register_with_interest(server, Interest::READABLE) }?;
        Ok(Self { inner })
    }

    /// The server (path, config, policy, connection count).
    pub fn get_ref(&self) -> &Server {
        self.inner.get_ref()
    }

    /// [`Server::set_policy`].
    pub fn set_policy(&mut self, policy: AccessPolicy) {
        self.inner.get_mut().set_policy(policy);
    }

    /// [`Server::set_ready`].
    pub fn set_ready(&mut self, ready: bool) {
        self.inner.get_mut().set_ready(ready);
    }

    /// Wait for the next connection and accept it (see [`Server::accept`]).
    ///
    /// # Errors
    /// As [`Server::accept`]: one failed attempt; call again.
    pub async fn accept(&mut self) -> Result<AsyncConnection, AcceptError> {
        loop {
            let mut guard = self
                .inner
                .readable_mut()
                .await
                .map_err(|e| AcceptError::Os(os("epoll", &e)))?;
            match guard.get_inner_mut().accept()? {
                Some(conn) => {
                    return AsyncConnection::new(conn)
                        .map_err(|e| AcceptError::Os(os("epoll_ctl", &e)));
                }
                None => guard.clear_ready(),
            }
        }
    }
}

/// A borrowed fd number registered with the reactor. [`AsyncConnection`] declares its
/// `AsyncFd`s before the [`Connection`] that owns the fds, so they deregister first.
#[derive(Debug)]
struct Registered(RawFd);

impl AsRawFd for Registered {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

/// A [`Connection`] whose waits are awaited.
#[derive(Debug)]
pub struct AsyncConnection {
    // Field order matters: dropped top to bottom, the registrations before the fds.
    doorbell: AsyncFd<Registered>,
    socket: AsyncFd<Registered>,
    conn: Connection,
}

impl AsyncConnection {
    /// Register a connection's doorbell and socket with the current tokio runtime.
    ///
    /// # Errors
    /// The reactor refused the fds.
    pub fn new(conn: Connection) -> io::Result<Self> {
        let (d, s) = (conn.doorbell_fd().as_raw_fd(), conn.socket_fd().as_raw_fd());
        // SAFETY: both fds are owned by `conn`, which lives in the same struct, is dropped
        // after the two AsyncFds (field order, and `into_inner` drops them first), and is
        // never handed out mutably (so it cannot be swapped away while registered).
        let doorbell =
            unsafe { AsyncFd::register_with_interest(Registered(d), Interest::READABLE) }?;
        // SAFETY: as above.
        let socket = unsafe { AsyncFd::register_with_interest(Registered(s), Interest::READABLE) }?;
        Ok(Self {
            doorbell,
            socket,
            conn,
        })
    }

    /// The connection (id, peer, permission, stats, backlog). No `get_mut`: the registered
    /// fds must stay with this value.
    pub fn get_ref(&self) -> &Connection {
        &self.conn
    }

    /// [`Connection::try_recv_request`].
    ///
    /// # Errors
    /// As [`Connection::try_recv_request`].
    pub fn try_recv_request(&mut self) -> Result<Option<&[u8]>, ConnError> {
        self.conn.try_recv_request()
    }

    /// [`Connection::try_recv_request_into`].
    ///
    /// # Errors
    /// As [`Connection::try_recv_request`].
    pub fn try_recv_request_into(&mut self, out: &mut Vec<u8>) -> Result<bool, ConnError> {
        self.conn.try_recv_request_into(out)
    }

    /// Deregister and give the plain connection back.
    pub fn into_inner(self) -> Connection {
        let Self {
            doorbell,
            socket,
            conn,
        } = self;
        drop((doorbell, socket));
        conn
    }

    /// Wait until the client rings the doorbell (a request, or freed response/event space)
    /// and clear it; or fail when the client is gone. After it returns, look at the rings:
    /// [`AsyncConnection::recv_request`] / `try_recv_request`, retry queued events.
    ///
    /// # Errors
    /// [`ConnError::Disconnected`] (or another [`ConnError`]): drop the connection.
    pub async fn ready(&mut self) -> Result<(), ConnError> {
        poll_fn(|cx| self.poll_ready(cx)).await
    }

    /// [`AsyncConnection::ready`] as a poll function, for a daemon that waits on many
    /// connections from one task (one `poll_fn` over all of them): `Ready(Ok(()))` when
    /// the doorbell rang (it is cleared: look at the rings now), `Ready(Err(_))` when the
    /// client is gone, `Pending` with the task's waker registered on both fds.
    ///
    /// # Errors
    /// As [`AsyncConnection::ready`].
    pub fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ConnError>> {
        // Poll the socket until Pending, so its waker is registered even when the
        // readiness was spurious (check_peer found nothing).
        while let Poll::Ready(r) = self.socket.poll_read_ready(cx) {
            let mut guard = r.map_err(|e| ConnError::Os(os("epoll", &e)))?;
            self.conn.check_peer()?;
            guard.clear_ready();
        }
        if let Poll::Ready(r) = self.doorbell.poll_read_ready(cx) {
            let mut guard = r.map_err(|e| ConnError::Os(os("epoll", &e)))?;
            guard.clear_ready();
            self.conn.clear_doorbell();
            return Poll::Ready(Ok(()));
        }
        Poll::Pending
    }

    /// The next request (copied into the connection's private buffer), waiting for it.
    ///
    /// # Errors
    /// As [`Connection::try_recv_request`] and [`AsyncConnection::ready`].
    pub async fn recv_request(&mut self) -> Result<&[u8], ConnError> {
        while !self.conn.recv_buffered()? {
            self.ready().await?;
        }
        Ok(self.conn.buffered())
    }

    /// [`Connection::send_response`].
    ///
    /// # Errors
    /// As [`Connection::send_response`].
    pub fn send_response(&mut self, data: &[u8]) -> Result<(), SendError> {
        self.conn.send_response(data)
    }

    /// [`Connection::set_deferred_wakes`].
    pub fn set_deferred_wakes(&mut self, on: bool) {
        self.conn.set_deferred_wakes(on);
    }

    /// [`Connection::wake_pending`].
    pub fn wake_pending(&self) -> bool {
        self.conn.wake_pending()
    }

    /// [`Connection::flush_wakes`].
    pub fn flush_wakes(&mut self) {
        self.conn.flush_wakes();
    }

    /// [`Connection::send_event`] (never waits: `Full` is the daemon's decision).
    ///
    /// # Errors
    /// As [`Connection::send_event`].
    pub fn send_event(&mut self, data: &[u8]) -> Result<(), SendError> {
        self.conn.send_event(data)
    }
}

impl AsFd for AsyncConnection {
    /// The doorbell.
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.conn.doorbell_fd()
    }
}
