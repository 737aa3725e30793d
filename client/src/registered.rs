//! The one tokio registration of the client handles (feature `tokio`): [`AsyncCpg`] and
//! [`AsyncCmap`] both own a [`Registered`] handle, so the `unsafe` fd registration, the
//! readiness loop and the error mapping exist once.
//!
//! [`AsyncCpg`]: crate::cpg::AsyncCpg
//! [`AsyncCmap`]: crate::cmap::AsyncCmap

use core::task::{Context, Poll, ready};
use std::io;
use std::os::fd::AsRawFd;

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use crate::Error;

/// A blocking handle whose pollable fd can be registered: it never replaces its
/// `ipc_shm::Client` (so the fd stays the same and open while the handle lives).
pub(crate) trait Handle: AsRawFd {
    /// What its dispatch yields.
    type Event;
    /// The next queued event, re-arming the fd when there is none.
    fn try_next_event(&mut self) -> Result<Option<Self::Event>, Error>;
}

impl Handle for crate::cpg::Cpg {
    type Event = crate::cpg::Event;
    fn try_next_event(&mut self) -> Result<Option<Self::Event>, Error> {
        Self::try_next_event(self)
    }
}

impl Handle for crate::cmap::Cmap {
    type Event = crate::cmap::Event;
    fn try_next_event(&mut self) -> Result<Option<Self::Event>, Error> {
        Self::try_next_event(self)
    }
}

fn os(op: &'static str, e: &io::Error) -> Error {
    Error::Ipc(ipc_shm::Error::Os(ipc_shm::OsError {
        op,
        // EIO when the error carries no errno (the value is the same on every Linux).
        errno: e.raw_os_error().unwrap_or(5),
    }))
}

/// A handle registered with the current runtime's reactor.
#[derive(Debug)]
pub(crate) struct Registered<T: Handle>(AsyncFd<T>);

impl<T: Handle> Registered<T> {
    /// Registers `handle`.
    ///
    /// # Errors
    /// [`Error::Ipc`] if the reactor refuses the fd (no runtime, out of resources).
    #[allow(unsafe_code)]
    pub(crate) fn new(handle: T) -> Result<Self, Error> {
        // SAFETY: the fd is the epoll fd of the handle's ipc_shm::Client, owned by the
        // handle the AsyncFd owns. It stays open and the same until the AsyncFd is dropped
        // or `into_inner` deregisters it: a `Handle` never replaces its Client, and
        // `get_mut` is crate-private and only used to call the handle's own methods, so
        // the handle is never swapped for another.
        let fd = unsafe { AsyncFd::register_with_interest(handle, Interest::READABLE) }
            .map_err(|e| os("epoll_ctl", &e.into_parts().1))?;
        Ok(Self(fd))
    }

    pub(crate) fn get_ref(&self) -> &T {
        self.0.get_ref()
    }

    /// For forwarding calls only (never handed out: see [`Registered::new`]).
    pub(crate) fn get_mut(&mut self) -> &mut T {
        self.0.get_mut()
    }

    pub(crate) fn into_inner(self) -> T {
        self.0.into_inner()
    }

    /// The next event, waiting for it without blocking the thread.
    pub(crate) async fn next_event(&mut self) -> Result<T::Event, Error> {
        loop {
            let mut guard = self
                .0
                .readable_mut()
                .await
                .map_err(|e| os("epoll_wait", &e))?;
            match guard.get_inner_mut().try_next_event()? {
                Some(ev) => return Ok(ev),
                // Nothing: `try_next_event` re-armed the fd, so the next event makes it
                // readable again.
                None => guard.clear_ready(),
            }
        }
    }

    /// The poll form of [`Registered::next_event`].
    pub(crate) fn poll_next_event(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<T::Event, Error>> {
        loop {
            let mut guard =
                ready!(self.0.poll_read_ready_mut(cx)).map_err(|e| os("epoll_wait", &e))?;
            match guard.get_inner_mut().try_next_event() {
                Ok(Some(ev)) => return Poll::Ready(Ok(ev)),
                Ok(None) => guard.clear_ready(),
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}
