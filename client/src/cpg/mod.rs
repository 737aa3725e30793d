//! The CPG API: closed process groups (corosync's `cpg.h`), one [`Cpg`] per connection.
//!
//! | corosync | here |
//! | --- | --- |
//! | `cpg_model_initialize(&h, CPG_MODEL_V1, ..)` | [`Cpg::initialize`], [`Cpg::initialize_at`], [`Cpg::initialize_with`] |
//! | `cpg_finalize` | [`Cpg::finalize`] (or drop: the daemon sees the process go, `PROCDOWN`) |
//! | `cpg_fd_get` | [`AsRawFd`] / [`AsFd`] on [`Cpg`] |
//! | `cpg_dispatch(h, CS_DISPATCH_*)` | [`Cpg::dispatch`] with a [`DispatchMode`]; or pull: [`Cpg::next_event`], [`Cpg::try_next_event`] |
//! | `cpg_context_get/set` | [`Cpg::context`], [`Cpg::set_context`] (any `T: Send`) |
//! | `cpg_join` / `cpg_leave` | [`Cpg::join`] / [`Cpg::leave`] (several groups per handle) |
//! | `cpg_mcast_joined(h, guarantee, iov, n)` | [`Cpg::mcast`], [`Cpg::mcast_vectored`] |
//! | `cpg_zcb_alloc` / `cpg_zcb_mcast_joined` / `cpg_zcb_free` | [`Cpg::zcb_alloc`] → [`ZcBuffer`], [`ZcBuffer::mcast`] / [`ZcBuffer::mcast_queued`] / drop |
//! | `cpg_membership_get` | [`Cpg::membership_get`] |
//! | `cpg_local_get` | [`Cpg::local_get`] |
//! | `cpg_flow_control_state_get` | [`Cpg::flow_control_state`] |
//! | `cpg_max_atomic_msgsize_get` | [`Cpg::max_message_size`] |
//! | `cpg_iteration_*` | [`Cpg::iter_groups`], [`Cpg::iter_members`], [`Cpg::iter_all`] |
//! | deliver / confchg / totem confchg callbacks | [`Event::Deliver`], [`Event::Confchg`], [`Event::TotemConfchg`] |
//!
//! # How a call runs
//!
//! A request goes into the connection's shared-memory request ring and the call waits for
//! its reply (as libcpg does): the daemon answers every request at once, without waiting on
//! the network, so a call costs one local round trip (a few microseconds). A multicast is
//! *accepted* when its call returns; it is ordered and delivered later, to every member,
//! the sender included, as an [`Event::Deliver`]. When the ring's send queue is full the
//! daemon answers [`Error::TryAgain`] (corosync's flow control):
//! dispatch events, wait a little (say ≤ 1 ms on the fd), and call again. totemd does not
//! answer that: under flow control it holds the multicast and replies once it took it, so
//! the call simply takes longer (corosync's answer is still handled, for other daemons).
//!
//! **Queued multicasts.** [`Cpg::mcast_queued`] puts the request in the ring and returns
//! without waiting for the daemon, so a sender pays one copy into shared memory per message
//! instead of a round trip: for small messages this is several times faster. The daemon
//! answers a queued multicast only when it fails (read by the next call); the reply to any
//! later call shows that every earlier one was taken. The daemon takes them in order; while
//! the ring is flow-controlled it stops reading them, the request ring fills, and
//! `mcast_queued` answers [`Error::TryAgain`] (the message was not queued; retry it).
//! [`Cpg::flush`]
//! waits until every queued multicast was taken. An error of a queued multicast (the group
//! was left meanwhile, say) is returned by the next `mcast_queued` or `flush`.
//!
//! Events wait in the connection's event ring (8 MiB by default) until dispatched. An
//! application that stops dispatching is flow-controlled by the daemon, never the other
//! way round.
//!
//! # Copies
//!
//! [`Cpg::mcast`] takes `&[u8]` (a [`bytes::Bytes`] derefs to it) and copies it once,
//! straight into the request reserved in the shared ring (no allocation per call).
//! [`Cpg::zcb_alloc`] (zero copy, see [`ZcBuffer`]) hands the application that request's
//! payload bytes instead: it writes the message there and the library copies nothing. A
//! delivered payload is one copy out of the shared ring, handed out as a [`Bytes`] slice of
//! that buffer.

mod event;
mod iter;
mod zcb;

#[cfg(feature = "tokio")]
mod async_cpg;

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::any::Any;
use core::time::Duration;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::path::{Path, PathBuf};

use bytes::{Buf, Bytes};
use ipc_shm::Client;
use services::cpg::wire::{
    CpgEvent, CsError, DELIVER_INITIAL_TOTEM_CONF, IterationType, MCAST_HEADER_LEN, McastHead,
    Request, RequestCode, Response, ResponseBody,
};
use services::service_id;
use services::session::{Hello, HelloReply};
use totem_proto::NodeId;

use crate::Error;

#[cfg(feature = "tokio")]
pub use async_cpg::AsyncCpg;
pub use event::{DispatchMode, Event, FlowControl, GroupArg, Guarantee};
pub use iter::Iteration;
/// A process in a group (`nodeid`, `pid`) and a confchg entry with its reason.
pub use services::cpg::wire::{Address, Member, Reason};
/// A CPG group name (at most 128 bytes).
pub use services::{GroupName, MAX_NAME_LEN};
pub use zcb::ZcBuffer;

/// How [`Cpg::initialize_with`] connects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Options {
    /// The daemon's socket (`None`: [`crate::default_socket`]).
    pub socket: Option<PathBuf>,
    /// Deliver the current totem configuration as an [`Event::TotemConfchg`] right after
    /// initialize (corosync's `CPG_MODEL_V1_DELIVER_INITIAL_TOTEM_CONF`).
    pub initial_totem_confchg: bool,
    /// How long to wait for the daemon to accept the connection (`None`: 10 s).
    pub connect_timeout: Option<Duration>,
}

impl Options {
    /// The defaults: default socket, no initial totem confchg, 10 s connect timeout.
    pub fn new() -> Self {
        Self::default()
    }

    /// Connect to `path`.
    pub fn socket(mut self, path: impl Into<PathBuf>) -> Self {
        self.socket = Some(path.into());
        self
    }

    /// Ask for the initial [`Event::TotemConfchg`].
    pub fn initial_totem_confchg(mut self, on: bool) -> Self {
        self.initial_totem_confchg = on;
        self
    }

    /// Wait at most `timeout` for the daemon's welcome.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }
}

/// A CPG connection to the local totemd (corosync's `cpg_handle_t`). `Send`, not `Sync`:
/// one thread drives it.
#[derive(Debug)]
pub struct Cpg {
    client: Client,
    /// The daemon's largest Mcast payload (`MaxMessageSize`, asked at initialize).
    cpg_max: usize,
    /// This node's id, once asked.
    local: Option<NodeId>,
    context: Option<Box<dyn Any + Send>>,
    finalized: bool,
    /// Queued multicasts and their replies (a field of its own so that a [`ZcBuffer`] can
    /// borrow it next to the client).
    queue: Queued,
}

/// Queued multicasts ([`Cpg::mcast_queued`], [`ZcBuffer::mcast_queued`]) not yet known to
/// be taken. They go as `McastQueued` requests, which the daemon answers only when one
/// fails; the reply to any later request shows that every earlier one was taken.
#[derive(Debug, Default)]
struct Queued {
    /// How many were sent since the last reply to another request.
    count: usize,
    /// The first error one of them got, reported by the next queued send or flush.
    error: Option<Error>,
    /// Where their failures are read (kept: no allocation per reply).
    reply_buf: Vec<u8>,
}

impl Queued {
    /// Reads the failures of queued multicasts that are already there, without waiting.
    fn reap(&mut self, client: &mut Client) -> Result<(), Error> {
        while client.try_recv_response_into(&mut self.reply_buf)? {
            if !is_queued_failure(&self.reply_buf) {
                return Err(Error::Protocol("a reply to no request"));
            }
            let buf = core::mem::take(&mut self.reply_buf);
            self.note_reply(&buf);
            self.reply_buf = buf;
        }
        Ok(())
    }

    /// Waits for the reply to the request just sent, whose code is `code`, noting the
    /// failures of queued multicasts that come before it. Afterwards every queued multicast
    /// was taken.
    fn answer(&mut self, client: &mut Client, code: RequestCode) -> Result<Response, Error> {
        loop {
            let raw = client.recv_response(None)?;
            if code != RequestCode::McastQueued && is_queued_failure(&raw) {
                self.note_reply(&raw);
                continue;
            }
            let reply = Response::parse(&raw)?;
            self.count = 0;
            if reply.code != code {
                return Err(Error::Protocol("the reply answers another request"));
            }
            return Ok(reply);
        }
    }

    /// A queued multicast's failure reply (one that does not decode is a failure too: it
    /// is kept, and the replies after it are still read in order).
    fn note_reply(&mut self, raw: &[u8]) {
        match Response::parse(raw) {
            Ok(reply) => self.note(reply.error),
            Err(e) => {
                if self.error.is_none() {
                    self.error = Some(e.into());
                }
            }
        }
    }

    /// A queued multicast failed with `error`; the first failure is kept.
    fn note(&mut self, error: CsError) {
        let error = if error == CsError::TryAgain {
            // totemd holds a multicast under flow control instead; a daemon that does not
            // has dropped this one while later ones may have gone out.
            Some(Error::Protocol(
                "a queued multicast was refused with TRY_AGAIN: this daemon does not hold \
                 multicasts under flow control (use mcast)",
            ))
        } else if error != CsError::Ok {
            Some(Error::from_cs(error))
        } else {
            None
        };
        if self.error.is_none() {
            self.error = error;
        }
    }

    /// Sends `request` (whose code is `code`) and waits for its reply. While the request
    /// ring is full, reads queued multicasts' failures: the daemon takes a request only
    /// when its reply fits, so unread ones could stop it for ever.
    fn call(
        &mut self,
        client: &mut Client,
        request: &[u8],
        code: RequestCode,
    ) -> Result<Response, Error> {
        self.reap(client)?;
        while !client.wait_request_room(request.len(), None)? {
            self.reap(client)?;
        }
        client.send_request(request, None)?;
        self.answer(client, code)
    }
}

/// Whether a raw reply answers an McastQueued request (version, then code): read by its
/// code byte alone, so a reply that does not decode is still told apart from another
/// request's.
fn is_queued_failure(raw: &[u8]) -> bool {
    raw.get(1).copied() == Some(u8::from(RequestCode::McastQueued))
}

impl Cpg {
    /// Connects to the daemon at [`crate::default_socket`] (`$TOTEM_SOCKET`, else
    /// `/var/lib/totem/totemd.sock`) and opens a CPG session.
    ///
    /// # Errors
    /// [`Error::Connect`] (no daemon, access denied, not ready), or the daemon's refusal of
    /// the session (`NotExist`: it has no CPG service; `TryAgain`: not ready yet).
    pub fn initialize() -> Result<Self, Error> {
        Self::initialize_with(&Options::new())
    }

    /// As [`Cpg::initialize`], with the daemon at `socket`.
    ///
    /// # Errors
    /// As [`Cpg::initialize`].
    pub fn initialize_at(socket: impl AsRef<Path>) -> Result<Self, Error> {
        Self::initialize_with(&Options::new().socket(socket.as_ref()))
    }

    /// Connects as `options` say: opens the shared-memory connection, sends the session
    /// hello for the CPG service, then Initialize with this process's pid (corosync's
    /// `cpg_model_initialize` with model v1), and asks the daemon's message size limit.
    ///
    /// # Errors
    /// As [`Cpg::initialize`].
    pub fn initialize_with(options: &Options) -> Result<Self, Error> {
        let socket = options.socket.clone().unwrap_or_else(crate::default_socket);
        let timeout = options.connect_timeout.unwrap_or(ipc_shm::CONNECT_TIMEOUT);
        let mut client = Client::connect_timeout(&socket, timeout)?;
        let hello = client.request(
            &Hello {
                service: service_id::CPG,
            }
            .encode(),
        )?;
        let reply = HelloReply::decode(&hello)?;
        if reply.error != CsError::Ok {
            return Err(Error::from_cs(reply.error));
        }
        let mut cpg = Self {
            client,
            cpg_max: 0,
            local: None,
            queue: Queued::default(),
            context: None,
            finalized: false,
        };
        let flags = if options.initial_totem_confchg {
            DELIVER_INITIAL_TOTEM_CONF
        } else {
            0
        };
        cpg.call(
            &Request::Initialize {
                flags,
                pid: std::process::id(),
            }
            .emit(),
            RequestCode::Initialize,
        )?;
        match cpg.call(&Request::MaxMessageSize.emit(), RequestCode::MaxMessageSize)? {
            ResponseBody::MaxMessageSize(m) => {
                cpg.cpg_max = usize::try_from(m).unwrap_or(usize::MAX);
            }
            _ => return Err(Error::Protocol("max message size reply without a size")),
        }
        Ok(cpg)
    }

    /// Ends the session (corosync's `cpg_finalize`): the daemon removes this handle from
    /// every group it joined (`PROCDOWN` to the others, as corosync), then closes the
    /// connection. Every later call fails with [`Error::BadHandle`]; a
    /// [`DispatchMode::Blocking`] dispatch in progress returns.
    ///
    /// # Errors
    /// [`Error::BadHandle`] if already finalized; a connection error (the handle is
    /// finalized anyway).
    pub fn finalize(&mut self) -> Result<(), Error> {
        let r = self.call(&Request::Finalize.emit(), RequestCode::Finalize);
        self.finalized = true;
        r.map(drop)
    }

    /// Whether [`Cpg::finalize`] was called.
    pub fn is_finalized(&self) -> bool {
        self.finalized
    }

    /// Joins `group` (corosync's `cpg_join`). The join is complete when the
    /// [`Event::Confchg`] listing this process in `joined` (reason `JOIN`) is dispatched;
    /// messages to the group are delivered from then on. A handle may join several groups.
    ///
    /// # Errors
    /// [`Error::NameTooLong`], [`Error::Exist`] (already in it), [`Error::Busy`] (its leave
    /// is in flight), [`Error::TryAgain`], [`Error::TooManyGroups`].
    pub fn join(&mut self, group: &(impl GroupArg + ?Sized)) -> Result<(), Error> {
        let group = event::group_name(group.group_bytes())?;
        self.call(&Request::Join { group }.emit(), RequestCode::Join)
            .map(drop)
    }

    /// Leaves `group` (corosync's `cpg_leave`): complete when the [`Event::Confchg`] listing
    /// this process in `left` (reason `LEAVE`) is dispatched; messages delivered before
    /// that still arrive.
    ///
    /// # Errors
    /// [`Error::NotExist`] (not in it), [`Error::Busy`] (its join is in flight).
    pub fn leave(&mut self, group: &(impl GroupArg + ?Sized)) -> Result<(), Error> {
        let group = event::group_name(group.group_bytes())?;
        self.call(&Request::Leave { group }.emit(), RequestCode::Leave)
            .map(drop)
    }

    /// Multicasts `payload` to `group` (corosync's `cpg_mcast_joined`), which this handle
    /// joined. Returns once the daemon accepted it; every member, this one included, gets
    /// it as an [`Event::Deliver`] in the group's total order.
    ///
    /// # Errors
    /// [`Error::TryAgain`] under flow control (dispatch, wait, retry), [`Error::TooBig`]
    /// above [`Cpg::max_message_size`], [`Error::NotExist`] (not a member),
    /// [`Error::NameTooLong`].
    pub fn mcast(
        &mut self,
        group: &(impl GroupArg + ?Sized),
        guarantee: Guarantee,
        payload: &[u8],
    ) -> Result<(), Error> {
        self.mcast_vectored(group, guarantee, &[payload])
    }

    /// [`Cpg::mcast`] of the concatenation of `parts` (corosync's iovec), copied once,
    /// straight into the shared request ring.
    ///
    /// # Errors
    /// As [`Cpg::mcast`].
    pub fn mcast_vectored(
        &mut self,
        group: &(impl GroupArg + ?Sized),
        guarantee: Guarantee,
        parts: &[&[u8]],
    ) -> Result<(), Error> {
        let mut buf = self.zcb_alloc(group, total_len(parts)?)?;
        buf.write_parts(parts);
        buf.mcast(guarantee)
    }

    /// Queues a multicast without waiting for the daemon's reply (see "Queued
    /// multicasts" above): returns once the request is in the shared ring. Messages queued
    /// by one handle are sent in the order queued, interleaved correctly with
    /// [`Cpg::mcast`] calls.
    ///
    /// # Errors
    /// [`Error::TryAgain`] when the request ring is full (the daemon is busy: nothing was
    /// queued; dispatch, wait a little, retry); the first error of an earlier queued
    /// multicast (then this one was not queued); otherwise as [`Cpg::mcast`].
    pub fn mcast_queued(
        &mut self,
        group: &(impl GroupArg + ?Sized),
        guarantee: Guarantee,
        payload: &[u8],
    ) -> Result<(), Error> {
        self.mcast_queued_vectored(group, guarantee, &[payload])
    }

    /// [`Cpg::mcast_queued`] of the concatenation of `parts`.
    ///
    /// # Errors
    /// As [`Cpg::mcast_queued`].
    pub fn mcast_queued_vectored(
        &mut self,
        group: &(impl GroupArg + ?Sized),
        guarantee: Guarantee,
        parts: &[&[u8]],
    ) -> Result<(), Error> {
        if self.finalized {
            return Err(Error::BadHandle);
        }
        self.queue.reap(&mut self.client)?;
        if let Some(e) = self.queue.error.take() {
            return Err(e);
        }
        let mut buf = self.try_zcb_alloc(group, total_len(parts)?)?;
        buf.write_parts(parts);
        buf.mcast_queued(guarantee)
    }

    /// Waits until the daemon took every queued multicast (one round trip, if any was
    /// queued since the last reply).
    ///
    /// # Errors
    /// The first error a queued multicast got (the later ones were still sent), or a
    /// connection error.
    pub fn flush(&mut self) -> Result<(), Error> {
        // After finalize everything was taken (its reply came after them).
        if !self.finalized {
            if self.queue.count > 0 {
                // Any request's reply comes after the queued ones were taken; this one is
                // the cheapest.
                let request = Request::FlowControlGet.emit();
                self.queue
                    .call(&mut self.client, &request, RequestCode::FlowControlGet)?;
            }
            self.queue.reap(&mut self.client)?;
        }
        self.queue.error.take().map_or(Ok(()), Err)
    }

    /// Queued multicasts not yet known to be taken by the daemon: those sent since the
    /// last reply to another call.
    pub fn queued(&self) -> usize {
        self.queue.count
    }

    /// The current members of `group`, ascending (corosync's `cpg_membership_get`); empty
    /// if nobody is in it.
    ///
    /// # Errors
    /// [`Error::NameTooLong`], or a connection error.
    pub fn membership_get(
        &mut self,
        group: &(impl GroupArg + ?Sized),
    ) -> Result<Vec<Member>, Error> {
        let group = event::group_name(group.group_bytes())?;
        match self.call(
            &Request::MembershipGet { group }.emit(),
            RequestCode::MembershipGet,
        )? {
            ResponseBody::Members(m) => Ok(m),
            _ => Err(Error::Protocol("membership reply without members")),
        }
    }

    /// This node's id (corosync's `cpg_local_get`), asked once and remembered.
    ///
    /// # Errors
    /// A connection error.
    pub fn local_get(&mut self) -> Result<NodeId, Error> {
        if let Some(n) = self.local {
            return Ok(n);
        }
        match self.call(&Request::LocalGet.emit(), RequestCode::LocalGet)? {
            ResponseBody::LocalNode(n) => {
                self.local = Some(n);
                Ok(n)
            }
            _ => Err(Error::Protocol("local node reply without a node id")),
        }
    }

    /// Whether the daemon is pushing back on multicasts now (corosync's
    /// `cpg_flow_control_state_get`).
    ///
    /// # Errors
    /// A connection error.
    pub fn flow_control_state(&mut self) -> Result<FlowControl, Error> {
        match self.call(&Request::FlowControlGet.emit(), RequestCode::FlowControlGet)? {
            ResponseBody::FlowControl(true) => Ok(FlowControl::Enabled),
            ResponseBody::FlowControl(false) => Ok(FlowControl::Disabled),
            _ => Err(Error::Protocol("flow control reply without a state")),
        }
    }

    /// The largest payload [`Cpg::mcast`] takes for any group name (corosync's
    /// `cpg_max_atomic_msgsize_get`): the daemon's limit, and what one IPC record can carry.
    /// Messages are never fragmented by this library.
    pub fn max_message_size(&self) -> usize {
        self.payload_limit(MAX_NAME_LEN)
    }

    fn payload_limit(&self, name_len: usize) -> usize {
        let ipc = self
            .client
            .max_message()
            .saturating_sub(MCAST_HEADER_LEN + name_len);
        self.cpg_max.min(ipc)
    }

    /// Iterates the names of the groups that have members (corosync's
    /// `CPG_ITERATION_NAME_ONLY`), from a snapshot taken now.
    ///
    /// # Errors
    /// [`Error::NoResources`] (too many iterations open), a connection error.
    pub fn iter_groups(&mut self) -> Result<Iteration<'_, GroupName>, Error> {
        let h = self.iteration(IterationType::NameOnly, GroupName::default())?;
        Ok(Iteration::new(self, h))
    }

    /// Iterates the members of `group` (`CPG_ITERATION_ONE_GROUP`).
    ///
    /// # Errors
    /// As [`Cpg::iter_groups`], and [`Error::NameTooLong`].
    pub fn iter_members(
        &mut self,
        group: &(impl GroupArg + ?Sized),
    ) -> Result<Iteration<'_, Member>, Error> {
        let group = event::group_name(group.group_bytes())?;
        let h = self.iteration(IterationType::OneGroup, group)?;
        Ok(Iteration::new(self, h))
    }

    /// Iterates every (group, member) pair (`CPG_ITERATION_ALL`).
    ///
    /// # Errors
    /// As [`Cpg::iter_groups`].
    pub fn iter_all(&mut self) -> Result<Iteration<'_, (GroupName, Member)>, Error> {
        let h = self.iteration(IterationType::All, GroupName::default())?;
        Ok(Iteration::new(self, h))
    }

    fn iteration(&mut self, kind: IterationType, group: GroupName) -> Result<u32, Error> {
        match self.call(
            &Request::IterationInitialize { kind, group }.emit(),
            RequestCode::IterationInitialize,
        )? {
            ResponseBody::IterationHandle(h) => Ok(h),
            _ => Err(Error::Protocol("iteration reply without a handle")),
        }
    }

    /// The next event if one is queued, without waiting. `Ok(None)` re-arms the pollable
    /// fd: it becomes readable again with the next event.
    ///
    /// # Errors
    /// [`Error::BadHandle`] after finalize, [`Error::Disconnected`] once the daemon is gone
    /// (after the events it queued), [`Error::Decode`] for an event that does not decode
    /// (it is dropped; the next call goes on).
    pub fn try_next_event(&mut self) -> Result<Option<Event>, Error> {
        if self.finalized {
            return Err(Error::BadHandle);
        }
        let mut buf = Vec::new();
        if !self.client.try_recv_event_into(&mut buf)? {
            return Ok(None);
        }
        decode_event(buf).map(Some)
    }

    /// The next event, waiting up to `timeout` (`None`: until one comes). `Ok(None)`: the
    /// timeout passed.
    ///
    /// # Errors
    /// As [`Cpg::try_next_event`].
    pub fn next_event(&mut self, timeout: Option<Duration>) -> Result<Option<Event>, Error> {
        if self.finalized {
            return Err(Error::BadHandle);
        }
        match self.client.recv_event(timeout)? {
            Some(buf) => decode_event(buf).map(Some),
            None => Ok(None),
        }
    }

    /// Hands events to `handler` (corosync's `cpg_dispatch`), as `mode` says; the number
    /// handled. The handler gets the handle too, so it can reply, leave or finalize.
    ///
    /// # Errors
    /// [`Error::TryAgain`] from [`DispatchMode::OneNonblocking`] with nothing queued; as
    /// [`Cpg::try_next_event`] otherwise. [`DispatchMode::Blocking`] returns `Ok` only
    /// when the handler finalized the handle.
    pub fn dispatch(
        &mut self,
        mode: DispatchMode,
        mut handler: impl FnMut(&mut Self, Event),
    ) -> Result<usize, Error> {
        if self.finalized {
            return Err(Error::BadHandle);
        }
        match mode {
            DispatchMode::OneNonblocking => match self.try_next_event()? {
                Some(ev) => {
                    handler(self, ev);
                    Ok(1)
                }
                None => Err(Error::TryAgain),
            },
            DispatchMode::One => loop {
                if let Some(ev) = self.next_event(None)? {
                    handler(self, ev);
                    return Ok(1);
                }
            },
            DispatchMode::All => {
                let mut n = 0;
                while !self.finalized {
                    let Some(ev) = self.try_next_event()? else {
                        break;
                    };
                    handler(self, ev);
                    n += 1;
                }
                Ok(n)
            }
            DispatchMode::Blocking => {
                let mut n = 0;
                while !self.finalized {
                    if let Some(ev) = self.next_event(None)? {
                        handler(self, ev);
                        n += 1;
                    }
                }
                Ok(n)
            }
        }
    }

    /// Stores `value` as this handle's context (corosync's `cpg_context_set`), returning
    /// the previous one.
    pub fn set_context<T: Any + Send>(&mut self, value: T) -> Option<Box<dyn Any + Send>> {
        self.context.replace(Box::new(value))
    }

    /// The context, if one of type `T` is set (corosync's `cpg_context_get`).
    pub fn context<T: Any>(&self) -> Option<&T> {
        self.context.as_deref().and_then(|c| c.downcast_ref())
    }

    /// The context, mutably, if one of type `T` is set.
    pub fn context_mut<T: Any>(&mut self) -> Option<&mut T> {
        self.context.as_deref_mut().and_then(|c| c.downcast_mut())
    }

    /// Removes and returns the context.
    pub fn take_context(&mut self) -> Option<Box<dyn Any + Send>> {
        self.context.take()
    }

    /// The underlying IPC connection (its id, permission and size limit).
    pub fn ipc(&self) -> &Client {
        &self.client
    }

    /// Sends one request and returns the body of its successful reply.
    pub(crate) fn call(
        &mut self,
        request: &[u8],
        code: RequestCode,
    ) -> Result<ResponseBody, Error> {
        if self.finalized {
            return Err(Error::BadHandle);
        }
        // Replies come in request order: queued multicasts' failures come first.
        let reply = self.queue.call(&mut self.client, request, code)?;
        if reply.error != CsError::Ok {
            return Err(Error::from_cs(reply.error));
        }
        Ok(reply.body)
    }
}

/// The length of the concatenation of `parts`; `TooBig` if it overflows.
fn total_len(parts: &[&[u8]]) -> Result<usize, Error> {
    parts
        .iter()
        .try_fold(0usize, |n, p| n.checked_add(p.len()))
        .ok_or(Error::TooBig)
}

/// Decodes an event read into `buf`. A Deliver event (the same layout as the exec Mcast
/// message) is built in place from its head: its payload is the buffer itself advanced
/// past the head, and the name is copied once, straight into the event (a
/// [`CpgEvent`] first would move it several times more, which at small messages costs
/// more than the rest of the decode).
#[inline(always)]
fn decode_event(buf: Vec<u8>) -> Result<Event, Error> {
    let mut bytes = Bytes::from(buf);
    let Some(head) = McastHead::parse_exec(&bytes)? else {
        return Ok(CpgEvent::parse(&bytes)?.into());
    };
    let (guarantee, sender, at) = (head.guarantee, head.sender, head.payload_at);
    let group = GroupName::new(head.group)?;
    bytes.advance(at);
    Ok(Event::Deliver {
        group,
        sender_nodeid: sender.node,
        sender_pid: sender.pid,
        guarantee: Guarantee::from_wire(guarantee),
        payload: bytes,
    })
}

impl AsFd for Cpg {
    /// The pollable fd (corosync's `cpg_fd_get`): readable when an event may be queued or
    /// the daemon is gone. Then call `dispatch(DispatchMode::All, ..)`.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.client.as_fd()
    }
}

impl AsRawFd for Cpg {
    /// As [`AsFd::as_fd`].
    fn as_raw_fd(&self) -> RawFd {
        self.client.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use alloc::vec;

    use services::cpg::wire::{Confchg, CpgGuarantee, McastMessage, Member};

    use super::*;

    /// The in-place Deliver decoder gives what the full decoder gives, for every event
    /// kind, and refuses what it refuses.
    #[test]
    fn deliver_events_decode_in_place_like_the_full_decoder() {
        let events = [
            CpgEvent::Deliver(McastMessage {
                guarantee: CpgGuarantee::Safe,
                group: GroupName::new(b"grp").unwrap(),
                sender: Member::new(NodeId(3), 77),
                payload: Bytes::from_static(b"payload"),
            }),
            CpgEvent::Deliver(McastMessage {
                guarantee: CpgGuarantee::Agreed,
                group: GroupName::new(&[b'n'; MAX_NAME_LEN]).unwrap(),
                sender: Member::new(NodeId(1), 1),
                payload: Bytes::new(),
            }),
            CpgEvent::Confchg(Confchg {
                group: GroupName::new(b"g").unwrap(),
                members: vec![Member::new(NodeId(1), 2)],
                left: Vec::new(),
                joined: Vec::new(),
            }),
        ];
        for ev in events {
            let bytes = ev.emit();
            let want = Event::from(CpgEvent::parse(&bytes).unwrap());
            assert_eq!(decode_event(bytes.to_vec()).unwrap(), want);
            // Cut short anywhere: an error from both, never a panic.
            for cut in 0..bytes.len() {
                let short = &bytes[..cut];
                assert_eq!(
                    decode_event(short.to_vec()).is_err(),
                    CpgEvent::parse(&Bytes::copy_from_slice(short)).is_err(),
                    "cut at {cut}"
                );
            }
        }
    }
}
