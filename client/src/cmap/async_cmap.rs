//! [`AsyncCmap`] (feature `tokio`): the cmap API for tokio applications.
//!
//! As `AsyncCpg`: waiting for events is asynchronous (the pollable fd is registered with
//! the reactor and [`AsyncCmap::next_event`] sleeps on it); a request's reply is awaited in
//! place, because the daemon answers cmap requests from memory at once (one local round
//! trip of a few microseconds). [`AsyncCmap::initialize`] connects on tokio's blocking
//! pool.

use alloc::string::String;
use alloc::vec::Vec;
use core::task::{Context, Poll};
use std::path::PathBuf;

use super::{Cmap, Event, Options, TrackFlags, TrackHandle, Value, ValueType};
use crate::Error;
use crate::registered::Registered;

/// A [`Cmap`] registered with the tokio reactor. Create it inside a runtime.
#[derive(Debug)]
pub struct AsyncCmap {
    inner: Registered<Cmap>,
}

impl AsyncCmap {
    /// [`Cmap::initialize`] on tokio's blocking pool, then registered with the reactor.
    ///
    /// # Errors
    /// As [`Cmap::initialize`]; [`Error::Ipc`] if the reactor refuses the fd.
    pub async fn initialize() -> Result<Self, Error> {
        Self::initialize_with(Options::new()).await
    }

    /// [`Cmap::initialize_at`], asynchronously.
    ///
    /// # Errors
    /// As [`AsyncCmap::initialize`].
    pub async fn initialize_at(socket: impl Into<PathBuf>) -> Result<Self, Error> {
        Self::initialize_with(Options::new().socket(socket)).await
    }

    /// [`Cmap::initialize_with`], asynchronously.
    ///
    /// # Errors
    /// As [`AsyncCmap::initialize`].
    pub async fn initialize_with(options: Options) -> Result<Self, Error> {
        let cmap = tokio::task::spawn_blocking(move || Cmap::initialize_with(&options))
            .await
            .map_err(|_| Error::Protocol("the initialize task did not finish"))??;
        Self::new(cmap)
    }

    /// Registers an open [`Cmap`] with the current runtime's reactor.
    ///
    /// # Errors
    /// [`Error::Ipc`] if the reactor refuses the fd (no runtime, out of resources).
    pub fn new(cmap: Cmap) -> Result<Self, Error> {
        Ok(Self {
            inner: Registered::new(cmap)?,
        })
    }

    /// The blocking handle, for reading ([`Cmap::last_error_reason`], its context).
    pub fn get_ref(&self) -> &Cmap {
        self.inner.get_ref()
    }

    fn cmap(&mut self) -> &mut Cmap {
        self.inner.get_mut()
    }

    /// Deregisters and returns the blocking handle.
    pub fn into_inner(self) -> Cmap {
        self.inner.into_inner()
    }

    /// The next event, waiting for it without blocking the thread.
    ///
    /// # Errors
    /// As [`Cmap::try_next_event`].
    pub async fn next_event(&mut self) -> Result<Event, Error> {
        self.inner.next_event().await
    }

    /// The poll form of [`AsyncCmap::next_event`].
    ///
    /// # Errors
    /// As [`Cmap::try_next_event`].
    pub fn poll_next_event(&mut self, cx: &mut Context<'_>) -> Poll<Result<Event, Error>> {
        self.inner.poll_next_event(cx)
    }

    /// The next event if one is queued ([`Cmap::try_next_event`]).
    ///
    /// # Errors
    /// As [`Cmap::try_next_event`].
    pub fn try_next_event(&mut self) -> Result<Option<Event>, Error> {
        self.cmap().try_next_event()
    }

    /// [`Cmap::get`].
    ///
    /// # Errors
    /// As [`Cmap::get`].
    pub async fn get(&mut self, key: &str) -> Result<Value, Error> {
        self.cmap().get(key)
    }

    /// [`Cmap::get_as`].
    ///
    /// # Errors
    /// As [`Cmap::get_as`].
    pub async fn get_as<T: TryFrom<Value, Error = ValueType>>(
        &mut self,
        key: &str,
    ) -> Result<T, Error> {
        self.cmap().get_as(key)
    }

    /// [`Cmap::set`].
    ///
    /// # Errors
    /// As [`Cmap::set`].
    pub async fn set(&mut self, key: &str, value: impl Into<Value>) -> Result<(), Error> {
        self.cmap().set(key, value)
    }

    /// [`Cmap::delete`].
    ///
    /// # Errors
    /// As [`Cmap::delete`].
    pub async fn delete(&mut self, key: &str) -> Result<(), Error> {
        self.cmap().delete(key)
    }

    /// [`Cmap::inc`].
    ///
    /// # Errors
    /// As [`Cmap::inc`].
    pub async fn inc(&mut self, key: &str) -> Result<Value, Error> {
        self.cmap().inc(key)
    }

    /// [`Cmap::dec`].
    ///
    /// # Errors
    /// As [`Cmap::dec`].
    pub async fn dec(&mut self, key: &str) -> Result<Value, Error> {
        self.cmap().dec(key)
    }

    /// [`Cmap::list`].
    ///
    /// # Errors
    /// As [`Cmap::list`].
    pub async fn list(&mut self, prefix: &str) -> Result<Vec<(String, Value)>, Error> {
        self.cmap().list(prefix)
    }

    /// [`Cmap::track_add`].
    ///
    /// # Errors
    /// As [`Cmap::track_add`].
    pub async fn track_add(&mut self, key: &str, flags: TrackFlags) -> Result<TrackHandle, Error> {
        self.cmap().track_add(key, flags)
    }

    /// [`Cmap::track_delete`].
    ///
    /// # Errors
    /// As [`Cmap::track_delete`].
    pub async fn track_delete(&mut self, track: TrackHandle) -> Result<(), Error> {
        self.cmap().track_delete(track)
    }

    /// [`Cmap::finalize`].
    ///
    /// # Errors
    /// As [`Cmap::finalize`].
    pub async fn finalize(&mut self) -> Result<(), Error> {
        self.cmap().finalize()
    }
}
