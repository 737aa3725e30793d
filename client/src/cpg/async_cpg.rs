//! [`AsyncCpg`] (feature `tokio`): the CPG API for tokio applications.
//!
//! Waiting for events is truly asynchronous: the handle's pollable fd is registered with
//! the reactor (`AsyncFd`), and [`AsyncCpg::next_event`] sleeps on it. Requests (join,
//! mcast, queries) are sent and their reply awaited *in place*: the daemon answers every
//! request at once, without waiting on the network, so that wait is one local round trip
//! of a few microseconds, comparable to an uncontended lock, and cheaper than handing the
//! call to a blocking thread. (ipc-shm's client does not expose its response eventfd yet;
//! once it does, the reply wait can be awaited too — see the crate README.)
//! [`AsyncCpg::initialize`] connects on tokio's blocking pool, as connecting may wait up
//! to the connect timeout for a daemon that is busy starting.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::any::Any;
use core::task::{Context, Poll};
use std::path::PathBuf;

use totem_proto::NodeId;

use super::{
    Cpg, Event, FlowControl, GroupArg, GroupName, Guarantee, Iteration, Member, Options, ZcBuffer,
};
use crate::Error;
use crate::registered::Registered;

/// A [`Cpg`] registered with the tokio reactor. Create it inside a runtime.
#[derive(Debug)]
pub struct AsyncCpg {
    inner: Registered<Cpg>,
}

impl AsyncCpg {
    /// [`Cpg::initialize`] on tokio's blocking pool, then registered with the reactor.
    ///
    /// # Errors
    /// As [`Cpg::initialize`]; [`Error::Ipc`] if the reactor refuses the fd.
    pub async fn initialize() -> Result<Self, Error> {
        Self::initialize_with(Options::new()).await
    }

    /// [`Cpg::initialize_at`], asynchronously.
    ///
    /// # Errors
    /// As [`AsyncCpg::initialize`].
    pub async fn initialize_at(socket: impl Into<PathBuf>) -> Result<Self, Error> {
        Self::initialize_with(Options::new().socket(socket)).await
    }

    /// [`Cpg::initialize_with`], asynchronously.
    ///
    /// # Errors
    /// As [`AsyncCpg::initialize`].
    pub async fn initialize_with(options: Options) -> Result<Self, Error> {
        let cpg = tokio::task::spawn_blocking(move || Cpg::initialize_with(&options))
            .await
            .map_err(|_| Error::Protocol("the initialize task did not finish"))??;
        Self::new(cpg)
    }

    /// Registers an open [`Cpg`] with the current runtime's reactor.
    ///
    /// # Errors
    /// [`Error::Ipc`] if the reactor refuses the fd (no runtime, out of resources).
    pub fn new(cpg: Cpg) -> Result<Self, Error> {
        Ok(Self {
            inner: Registered::new(cpg)?,
        })
    }

    /// The blocking handle, for reading (its context, [`Cpg::max_message_size`], ...).
    /// There is no `get_mut`: the registered fd must stay with this value; the calls that
    /// need `&mut` are forwarded below.
    pub fn get_ref(&self) -> &Cpg {
        self.inner.get_ref()
    }

    /// The registered handle, for forwarding (never handed out: see [`AsyncCpg::get_ref`]).
    fn cpg(&mut self) -> &mut Cpg {
        self.inner.get_mut()
    }

    /// The next event if one is queued, without waiting ([`Cpg::try_next_event`]).
    ///
    /// # Errors
    /// As [`Cpg::try_next_event`].
    pub fn try_next_event(&mut self) -> Result<Option<Event>, Error> {
        self.cpg().try_next_event()
    }

    /// [`Cpg::iter_groups`].
    ///
    /// # Errors
    /// As [`Cpg::iter_groups`].
    pub fn iter_groups(&mut self) -> Result<Iteration<'_, GroupName>, Error> {
        self.cpg().iter_groups()
    }

    /// [`Cpg::iter_members`].
    ///
    /// # Errors
    /// As [`Cpg::iter_members`].
    pub fn iter_members(
        &mut self,
        group: &(impl GroupArg + ?Sized),
    ) -> Result<Iteration<'_, Member>, Error> {
        self.cpg().iter_members(group)
    }

    /// [`Cpg::iter_all`].
    ///
    /// # Errors
    /// As [`Cpg::iter_all`].
    pub fn iter_all(&mut self) -> Result<Iteration<'_, (GroupName, Member)>, Error> {
        self.cpg().iter_all()
    }

    /// [`Cpg::set_context`].
    pub fn set_context<T: Any + Send>(&mut self, value: T) -> Option<Box<dyn Any + Send>> {
        self.cpg().set_context(value)
    }

    /// [`Cpg::context`].
    pub fn context<T: Any>(&self) -> Option<&T> {
        self.get_ref().context()
    }

    /// [`Cpg::context_mut`].
    pub fn context_mut<T: Any>(&mut self) -> Option<&mut T> {
        self.cpg().context_mut()
    }

    /// Deregisters and returns the blocking handle.
    pub fn into_inner(self) -> Cpg {
        self.inner.into_inner()
    }

    /// The next event, waiting for it without blocking the thread.
    ///
    /// # Errors
    /// As [`Cpg::try_next_event`].
    pub async fn next_event(&mut self) -> Result<Event, Error> {
        self.inner.next_event().await
    }

    /// The poll form of [`AsyncCpg::next_event`], for a hand-written `Future` or `Stream`
    /// (e.g. `futures::stream::poll_fn(|cx| cpg.poll_next_event(cx).map(Some))`).
    ///
    /// # Errors
    /// As [`Cpg::try_next_event`].
    pub fn poll_next_event(&mut self, cx: &mut Context<'_>) -> Poll<Result<Event, Error>> {
        self.inner.poll_next_event(cx)
    }

    /// [`Cpg::join`].
    ///
    /// # Errors
    /// As [`Cpg::join`].
    pub async fn join(&mut self, group: &(impl GroupArg + ?Sized)) -> Result<(), Error> {
        self.cpg().join(group)
    }

    /// [`Cpg::leave`].
    ///
    /// # Errors
    /// As [`Cpg::leave`].
    pub async fn leave(&mut self, group: &(impl GroupArg + ?Sized)) -> Result<(), Error> {
        self.cpg().leave(group)
    }

    /// [`Cpg::mcast`]: one attempt; [`Error::TryAgain`] under flow control.
    ///
    /// # Errors
    /// As [`Cpg::mcast`].
    pub async fn mcast(
        &mut self,
        group: &(impl GroupArg + ?Sized),
        guarantee: Guarantee,
        payload: &[u8],
    ) -> Result<(), Error> {
        self.cpg().mcast(group, guarantee, payload)
    }

    /// [`Cpg::mcast_vectored`].
    ///
    /// # Errors
    /// As [`Cpg::mcast`].
    pub async fn mcast_vectored(
        &mut self,
        group: &(impl GroupArg + ?Sized),
        guarantee: Guarantee,
        parts: &[&[u8]],
    ) -> Result<(), Error> {
        self.cpg().mcast_vectored(group, guarantee, parts)
    }

    /// [`Cpg::mcast_queued`]: never waits for the daemon.
    ///
    /// # Errors
    /// As [`Cpg::mcast_queued`].
    pub fn mcast_queued(
        &mut self,
        group: &(impl GroupArg + ?Sized),
        guarantee: Guarantee,
        payload: &[u8],
    ) -> Result<(), Error> {
        self.cpg().mcast_queued(group, guarantee, payload)
    }

    /// [`Cpg::zcb_alloc`]: a zero-copy multicast buffer in shared memory. Like the other
    /// calls it waits in place, here for room in the request ring (the daemon takes
    /// requests without waiting on the network; under flow control, once the ring took the
    /// earlier ones). The buffer's [`ZcBuffer::mcast`] waits for the daemon's reply in
    /// place, as [`AsyncCpg::mcast`] does; [`ZcBuffer::mcast_queued`] never waits.
    ///
    /// ```no_run
    /// # async fn f(cpg: &mut totem_client::cpg::AsyncCpg) -> Result<(), totem_client::Error> {
    /// use totem_client::cpg::Guarantee;
    /// let mut buf = cpg.zcb_alloc("bulk", 1 << 20).await?;
    /// buf.fill(7);
    /// buf.mcast_queued(Guarantee::Agreed)?;
    /// cpg.flush().await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`Cpg::zcb_alloc`].
    pub async fn zcb_alloc(
        &mut self,
        group: &(impl GroupArg + ?Sized),
        len: usize,
    ) -> Result<ZcBuffer<'_>, Error> {
        self.cpg().zcb_alloc(group, len)
    }

    /// [`Cpg::try_zcb_alloc`]: never waits.
    ///
    /// # Errors
    /// As [`Cpg::try_zcb_alloc`].
    pub fn try_zcb_alloc(
        &mut self,
        group: &(impl GroupArg + ?Sized),
        len: usize,
    ) -> Result<ZcBuffer<'_>, Error> {
        self.cpg().try_zcb_alloc(group, len)
    }

    /// [`Cpg::flush`]. Like the other calls it waits for the daemon's replies, which come
    /// without waiting on the network (under flow control, once the ring took them).
    ///
    /// # Errors
    /// As [`Cpg::flush`].
    pub async fn flush(&mut self) -> Result<(), Error> {
        self.cpg().flush()
    }

    /// [`Cpg::membership_get`].
    ///
    /// # Errors
    /// As [`Cpg::membership_get`].
    pub async fn membership_get(
        &mut self,
        group: &(impl GroupArg + ?Sized),
    ) -> Result<Vec<Member>, Error> {
        self.cpg().membership_get(group)
    }

    /// [`Cpg::local_get`].
    ///
    /// # Errors
    /// As [`Cpg::local_get`].
    pub async fn local_get(&mut self) -> Result<NodeId, Error> {
        self.cpg().local_get()
    }

    /// [`Cpg::flow_control_state`].
    ///
    /// # Errors
    /// As [`Cpg::flow_control_state`].
    pub async fn flow_control_state(&mut self) -> Result<FlowControl, Error> {
        self.cpg().flow_control_state()
    }

    /// [`Cpg::max_message_size`].
    pub fn max_message_size(&self) -> usize {
        self.get_ref().max_message_size()
    }

    /// [`Cpg::finalize`].
    ///
    /// # Errors
    /// As [`Cpg::finalize`].
    pub async fn finalize(&mut self) -> Result<(), Error> {
        self.cpg().finalize()
    }
}
