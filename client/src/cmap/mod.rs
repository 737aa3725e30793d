//! The cmap API: the configuration and statistics map of the local totemd (corosync's
//! `cmap.h`), one [`Cmap`] per connection.
//!
//! | corosync | here |
//! | --- | --- |
//! | `cmap_initialize` | [`Cmap::initialize`], [`Cmap::initialize_at`], [`Cmap::initialize_with`] |
//! | `cmap_finalize` | [`Cmap::finalize`] (or drop) |
//! | `cmap_fd_get` | [`AsRawFd`] / [`AsFd`] on [`Cmap`] |
//! | `cmap_dispatch` | [`Cmap::dispatch`] with a [`DispatchMode`]; or pull: [`Cmap::next_event`], [`Cmap::try_next_event`] |
//! | `cmap_get` + typed getters | [`Cmap::get`], [`Cmap::get_as`] (`u32`, `String`, ...) |
//! | `cmap_set` + typed setters | [`Cmap::set`] (any `impl Into<Value>`: `5u32`, `"text"`, ...) |
//! | `cmap_delete` | [`Cmap::delete`] |
//! | `cmap_inc` / `cmap_dec` | [`Cmap::inc`] / [`Cmap::dec`] |
//! | `cmap_iter_init/next/finalize` | [`Cmap::iter`] (an `Iterator`), [`Cmap::list`] |
//! | `cmap_track_add` / `cmap_track_delete` | [`Cmap::track_add`] / [`Cmap::track_delete`] |
//! | notify callback | [`Event::Changed`] (and [`Event::Lost`] when a tracker overflowed) |
//!
//! Every call is one local round trip: the daemon answers from its own database at once
//! (cmap is node-local; nothing waits for the ring). A refused write fails with the
//! `cs_error_t` variant ([`Error::Access`] for a read-only key or connection,
//! [`Error::NotSupported`] for a key that needs a restart, [`Error::InvalidParam`] for a
//! value the ring would refuse); [`Cmap::last_error_reason`] has the daemon's explanation.
//!
//! Tracking: [`Cmap::track_add`] returns a [`TrackHandle`]; every later change of the key
//! (or of any key under the prefix, with [`TrackFlags::PREFIX`]) arrives as an
//! [`Event::Changed`] on the connection's event channel, in order. A client that does not
//! dispatch is bounded by the daemon: after 1024 queued changes it gets [`Event::Lost`]
//! with the count, and should re-read what it watches.

#[cfg(feature = "tokio")]
mod async_cmap;

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;
use core::any::Any;
use core::time::Duration;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::path::{Path, PathBuf};

use ipc_shm::Client;
use services::cmap::wire::{CmapEvent, Request, Response, ResponseBody};
use services::cpg::wire::CsError;
use services::service_id;
use services::session::{Hello, HelloReply};

use crate::Error;

pub use crate::cpg::DispatchMode;
#[cfg(feature = "tokio")]
pub use async_cmap::AsyncCmap;
/// Values, their types, change kinds and track flags (objdb's, which the daemon stores).
pub use objdb::{ChangeKind, TrackFlags, Value, ValueType};

/// Entries asked per List round trip of an iteration.
const PAGE: u32 = 256;

/// How [`Cmap::initialize_with`] connects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Options {
    /// The daemon's socket (`None`: [`crate::default_socket`]).
    pub socket: Option<PathBuf>,
    /// How long to wait for the daemon to accept the connection (`None`: 10 s).
    pub connect_timeout: Option<Duration>,
}

impl Options {
    /// The defaults: default socket, 10 s connect timeout.
    pub fn new() -> Self {
        Self::default()
    }

    /// Connect to `path`.
    pub fn socket(mut self, path: impl Into<PathBuf>) -> Self {
        self.socket = Some(path.into());
        self
    }

    /// Wait at most `timeout` for the daemon's welcome.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }
}

/// A tracker, as [`Cmap::track_add`] returned it (corosync's `cmap_track_handle_t`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TrackHandle(pub u64);

/// An event (the notify callback of corosync's `cmap_track_add`), owned.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A tracked key changed.
    Changed {
        /// The tracker.
        track: TrackHandle,
        /// Created, modified or deleted.
        kind: ChangeKind,
        /// The key.
        key: String,
        /// Its value now (none after a delete).
        new: Option<Value>,
        /// Its value before (none after a create).
        old: Option<Value>,
    },
    /// The tracker's queue in the daemon overflowed: `count` changes after the last one
    /// delivered were dropped. Re-read what it watches.
    Lost {
        /// The tracker.
        track: TrackHandle,
        /// Changes dropped.
        count: u64,
    },
}

impl From<CmapEvent> for Event {
    fn from(e: CmapEvent) -> Self {
        match e {
            CmapEvent::Changed {
                handle,
                kind,
                key,
                new,
                old,
            } => Self::Changed {
                track: TrackHandle(handle),
                kind,
                key,
                new,
                old,
            },
            CmapEvent::Lost { handle, count } => Self::Lost {
                track: TrackHandle(handle),
                count,
            },
        }
    }
}

/// A cmap connection to the local totemd (corosync's `cmap_handle_t`). `Send`, not
/// `Sync`: one thread drives it.
#[derive(Debug)]
pub struct Cmap {
    client: Client,
    reason: String,
    context: Option<Box<dyn Any + Send>>,
    finalized: bool,
}

impl Cmap {
    /// Connects to the daemon at [`crate::default_socket`] and opens a cmap session.
    ///
    /// # Errors
    /// [`Error::Connect`] (no daemon, access denied, not ready), or the daemon's refusal of
    /// the session (`NotExist`: it has no cmap service).
    pub fn initialize() -> Result<Self, Error> {
        Self::initialize_with(&Options::new())
    }

    /// As [`Cmap::initialize`], with the daemon at `socket`.
    ///
    /// # Errors
    /// As [`Cmap::initialize`].
    pub fn initialize_at(socket: impl AsRef<Path>) -> Result<Self, Error> {
        Self::initialize_with(&Options::new().socket(socket.as_ref()))
    }

    /// Connects as `options` say and sends the session hello for cmap. A user with read
    /// access only (`uidgid { access: read }`) gets a session that can read and track, and
    /// whose writes fail with [`Error::Access`].
    ///
    /// # Errors
    /// As [`Cmap::initialize`].
    pub fn initialize_with(options: &Options) -> Result<Self, Error> {
        let socket = options.socket.clone().unwrap_or_else(crate::default_socket);
        let timeout = options.connect_timeout.unwrap_or(ipc_shm::CONNECT_TIMEOUT);
        let mut client = Client::connect_timeout(&socket, timeout)?;
        let hello = client.request(
            &Hello {
                service: service_id::CMAP,
            }
            .encode(),
        )?;
        let reply = HelloReply::decode(&hello)?;
        if reply.error != CsError::Ok {
            return Err(Error::from_cs(reply.error));
        }
        Ok(Self {
            client,
            reason: String::new(),
            context: None,
            finalized: false,
        })
    }

    /// Ends the session (corosync's `cmap_finalize`): the daemon drops this connection's
    /// trackers and closes it. Every later call fails with [`Error::BadHandle`].
    ///
    /// # Errors
    /// [`Error::BadHandle`] if already finalized; a connection error (the handle is
    /// finalized anyway).
    pub fn finalize(&mut self) -> Result<(), Error> {
        let r = self.call(&Request::Finalize);
        self.finalized = true;
        r.map(drop)
    }

    /// Whether [`Cmap::finalize`] was called.
    pub fn is_finalized(&self) -> bool {
        self.finalized
    }

    /// The value of `key` (corosync's `cmap_get`).
    ///
    /// # Errors
    /// [`Error::NotExist`], [`Error::NameTooLong`] (a name outside 3..=255 bytes),
    /// [`Error::InvalidParam`] (a character outside `[a-zA-Z0-9._/:-]`).
    pub fn get(&mut self, key: &str) -> Result<Value, Error> {
        match self.call(&Request::Get { key: key.into() })? {
            ResponseBody::Value(v) => Ok(v),
            _ => Err(Error::Protocol("get reply without a value")),
        }
    }

    /// The value of `key` as a `T` (corosync's typed getters: `get_as::<u32>`,
    /// `get_as::<String>`, ...).
    ///
    /// # Errors
    /// As [`Cmap::get`]; [`Error::InvalidParam`] if the value has another type
    /// ([`Cmap::last_error_reason`] names it).
    pub fn get_as<T: TryFrom<Value, Error = ValueType>>(&mut self, key: &str) -> Result<T, Error> {
        let v = self.get(key)?;
        T::try_from(v).map_err(|found| {
            self.reason = alloc::format!("{key} is a {found}");
            Error::InvalidParam
        })
    }

    /// Sets `key` to `value`, creating it if needed (corosync's `cmap_set`).
    ///
    /// # Errors
    /// [`Error::Access`] (read-only key or connection), [`Error::NotSupported`] (a
    /// configuration key that does not change live), [`Error::InvalidParam`] (a value the
    /// key cannot take), [`Error::TooBig`], and the name errors of [`Cmap::get`].
    pub fn set(&mut self, key: &str, value: impl Into<Value>) -> Result<(), Error> {
        self.call(&Request::Set {
            key: key.into(),
            value: value.into(),
        })
        .map(drop)
    }

    /// Deletes `key` (corosync's `cmap_delete`).
    ///
    /// # Errors
    /// [`Error::NotExist`], and the write errors of [`Cmap::set`].
    pub fn delete(&mut self, key: &str) -> Result<(), Error> {
        self.call(&Request::Delete { key: key.into() }).map(drop)
    }

    /// Adds one to the integer `key`, wrapping (corosync's `cmap_inc`); returns the new
    /// value.
    ///
    /// # Errors
    /// [`Error::InvalidParam`] for a key that is not an integer, and the errors of
    /// [`Cmap::delete`].
    pub fn inc(&mut self, key: &str) -> Result<Value, Error> {
        self.step(Request::Inc { key: key.into() })
    }

    /// Subtracts one from the integer `key`, wrapping (corosync's `cmap_dec`).
    ///
    /// # Errors
    /// As [`Cmap::inc`].
    pub fn dec(&mut self, key: &str) -> Result<Value, Error> {
        self.step(Request::Dec { key: key.into() })
    }

    fn step(&mut self, req: Request) -> Result<Value, Error> {
        match self.call(&req)? {
            ResponseBody::Value(v) => Ok(v),
            _ => Err(Error::Protocol("inc/dec reply without a value")),
        }
    }

    /// Iterates the keys starting with `prefix` (all keys for `""`) in key order, fetching
    /// them from the daemon a page at a time (corosync's `cmap_iter_*`). Keys added or
    /// deleted during the iteration may or may not be seen; none is seen twice.
    ///
    /// # Errors
    /// Fetching happens as the iterator advances: each item is a `Result`.
    pub fn iter<'a>(&'a mut self, prefix: &str) -> Iter<'a> {
        Iter {
            cmap: self,
            prefix: prefix.into(),
            after: String::new(),
            page: VecDeque::new(),
            done: false,
        }
    }

    /// Every key starting with `prefix` and its value, in key order.
    ///
    /// # Errors
    /// [`Error::InvalidParam`] for a prefix with characters outside `[a-zA-Z0-9._/:-]`, a
    /// connection error.
    pub fn list(&mut self, prefix: &str) -> Result<Vec<(String, Value)>, Error> {
        self.iter(prefix).collect()
    }

    /// Starts tracking `key` (with [`TrackFlags::PREFIX`]: every key starting with it) for
    /// the changes `flags` names (corosync's `cmap_track_add`). Changes from now on arrive
    /// as [`Event::Changed`].
    ///
    /// # Errors
    /// [`Error::BadFlags`] (no kind of change, or unknown bits), [`Error::NoResources`]
    /// (64 trackers on this connection), the name errors of [`Cmap::get`].
    pub fn track_add(&mut self, key: &str, flags: TrackFlags) -> Result<TrackHandle, Error> {
        match self.call(&Request::TrackAdd {
            flags: flags.bits(),
            key: key.into(),
        })? {
            ResponseBody::Handle(h) => Ok(TrackHandle(h)),
            _ => Err(Error::Protocol("track reply without a handle")),
        }
    }

    /// Stops a tracker (corosync's `cmap_track_delete`). Events it queued before may still
    /// be dispatched.
    ///
    /// # Errors
    /// [`Error::BadHandle`] (not a tracker of this connection).
    pub fn track_delete(&mut self, track: TrackHandle) -> Result<(), Error> {
        self.call(&Request::TrackDelete { handle: track.0 })
            .map(drop)
    }

    /// The daemon's explanation of the last refused call ("" if it gave none).
    pub fn last_error_reason(&self) -> &str {
        &self.reason
    }

    /// The next event if one is queued, without waiting. `Ok(None)` re-arms the pollable
    /// fd.
    ///
    /// # Errors
    /// [`Error::BadHandle`] after finalize, [`Error::Disconnected`] once the daemon is
    /// gone, [`Error::Decode`] for an event that does not decode (dropped).
    pub fn try_next_event(&mut self) -> Result<Option<Event>, Error> {
        if self.finalized {
            return Err(Error::BadHandle);
        }
        let mut buf = Vec::new();
        if !self.client.try_recv_event_into(&mut buf)? {
            return Ok(None);
        }
        Ok(Some(CmapEvent::parse(&buf)?.into()))
    }

    /// The next event, waiting up to `timeout` (`None`: until one comes). `Ok(None)`: the
    /// timeout passed.
    ///
    /// # Errors
    /// As [`Cmap::try_next_event`].
    pub fn next_event(&mut self, timeout: Option<Duration>) -> Result<Option<Event>, Error> {
        if self.finalized {
            return Err(Error::BadHandle);
        }
        match self.client.recv_event(timeout)? {
            Some(buf) => Ok(Some(CmapEvent::parse(&buf)?.into())),
            None => Ok(None),
        }
    }

    /// Hands events to `handler` as `mode` says (corosync's `cmap_dispatch`); the number
    /// handled. The handler gets the handle too (to read keys, stop a tracker, finalize).
    ///
    /// # Errors
    /// [`Error::TryAgain`] from [`DispatchMode::OneNonblocking`] with nothing queued; as
    /// [`Cmap::try_next_event`] otherwise.
    pub fn dispatch(
        &mut self,
        mode: DispatchMode,
        mut handler: impl FnMut(&mut Self, Event),
    ) -> Result<usize, Error> {
        if self.finalized {
            return Err(Error::BadHandle);
        }
        let mut n = 0;
        match mode {
            DispatchMode::OneNonblocking => {
                let ev = self.try_next_event()?.ok_or(Error::TryAgain)?;
                handler(self, ev);
                n = 1;
            }
            DispatchMode::One => loop {
                if let Some(ev) = self.next_event(None)? {
                    handler(self, ev);
                    n = 1;
                    break;
                }
            },
            DispatchMode::All => {
                while !self.finalized {
                    let Some(ev) = self.try_next_event()? else {
                        break;
                    };
                    handler(self, ev);
                    n += 1;
                }
            }
            DispatchMode::Blocking => {
                while !self.finalized {
                    if let Some(ev) = self.next_event(None)? {
                        handler(self, ev);
                        n += 1;
                    }
                }
            }
        }
        Ok(n)
    }

    /// Stores `value` as this handle's context (corosync's `cmap_context_set`), returning
    /// the previous one.
    pub fn set_context<T: Any + Send>(&mut self, value: T) -> Option<Box<dyn Any + Send>> {
        self.context.replace(Box::new(value))
    }

    /// The context, if one of type `T` is set (corosync's `cmap_context_get`).
    pub fn context<T: Any>(&self) -> Option<&T> {
        self.context.as_deref().and_then(|c| c.downcast_ref())
    }

    /// The underlying IPC connection.
    pub fn ipc(&self) -> &Client {
        &self.client
    }

    /// Sends one request and returns the body of its successful reply; an error reply's
    /// reason is kept for [`Cmap::last_error_reason`].
    fn call(&mut self, request: &Request) -> Result<ResponseBody, Error> {
        if self.finalized {
            return Err(Error::BadHandle);
        }
        self.reason.clear();
        let bytes = request.emit().map_err(|_| {
            self.reason = "a key name longer than 255 bytes".into();
            Error::NameTooLong
        })?;
        let raw = self.client.request(&bytes)?;
        let reply = Response::parse(&raw)?;
        if reply.code != request.code() {
            return Err(Error::Protocol("the reply answers another request"));
        }
        if reply.error != CsError::Ok {
            reply.reason().clone_into(&mut self.reason);
            return Err(Error::from_cs(reply.error));
        }
        Ok(reply.body)
    }
}

/// The keys under a prefix, in key order, a page at a time ([`Cmap::iter`]).
#[derive(Debug)]
pub struct Iter<'a> {
    cmap: &'a mut Cmap,
    prefix: String,
    after: String,
    page: VecDeque<(String, Value)>,
    done: bool,
}

impl Iterator for Iter<'_> {
    type Item = Result<(String, Value), Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.page.is_empty() && !self.done {
            let req = Request::List {
                prefix: self.prefix.clone(),
                after: core::mem::take(&mut self.after),
                max: PAGE,
            };
            match self.cmap.call(&req) {
                Ok(ResponseBody::Entries { more, entries }) => {
                    self.done = !more || entries.is_empty();
                    self.page.extend(entries);
                }
                Ok(_) => {
                    self.done = true;
                    return Some(Err(Error::Protocol("list reply without entries")));
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
        let (k, v) = self.page.pop_front()?;
        if self.page.is_empty() {
            self.after.clone_from(&k);
        }
        Some(Ok((k, v)))
    }
}

impl AsFd for Cmap {
    /// The pollable fd (corosync's `cmap_fd_get`): readable when an event may be queued
    /// or the daemon is gone. Then call `dispatch(DispatchMode::All, ..)`.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.client.as_fd()
    }
}

impl AsRawFd for Cmap {
    /// As [`AsFd::as_fd`].
    fn as_raw_fd(&self) -> RawFd {
        self.client.as_raw_fd()
    }
}

/// Formats a value as `corosync-cmapctl` prints an entry: `key (type) = value`.
pub fn format_entry(key: &str, value: &Value) -> String {
    alloc::format!("{key} ({}) = {value}", value.value_type())
}
