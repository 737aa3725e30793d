//! [`Db`]: the store. A `BTreeMap` from key name to value (so iteration is in key order,
//! bytewise, the same on every run and target), read-only rules, and the trackers.
//!
//! Two kinds of writes, as corosync's icmap: the plain ones ([`Db::set`], [`Db::delete`],
//! [`Db::inc`], [`Db::dec`]) are what a client may do and refuse read-only keys; the
//! `*_internal` ones are the owner's (the daemon publishing `runtime.` statistics into keys
//! that are read-only to clients). Both notify the trackers the same way.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::string::{String, ToString};
use core::fmt;
use core::ops::Bound;

use crate::key::{KeyError, check_key, check_prefix};
use crate::track::{Change, ChangeKind, Notice, TrackFlags, TrackId, TrackLimits, Tracker};
use crate::{Value, ValueType};

/// Why an operation was refused. Nothing changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum Error {
    /// Not a valid key name (or prefix).
    InvalidKey(KeyError),
    /// The key is read-only (corosync `CS_ERR_ACCESS`).
    ReadOnly,
    /// No such key (`CS_ERR_NOT_EXIST`).
    NotExist,
    /// `inc`/`dec` of a value that is not an integer (`CS_ERR_INVALID_PARAM`).
    NotInteger(ValueType),
    /// No such tracker.
    UnknownTracker(TrackId),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidKey(e) => write!(f, "{e}"),
            Self::ReadOnly => f.write_str("the key is read-only"),
            Self::NotExist => f.write_str("no such key"),
            Self::NotInteger(t) => write!(f, "only integers can be incremented, not {t}"),
            Self::UnknownTracker(t) => write!(f, "no tracker {t}"),
        }
    }
}

impl core::error::Error for Error {}

impl From<KeyError> for Error {
    fn from(e: KeyError) -> Self {
        Self::InvalidKey(e)
    }
}

/// The database.
///
/// # Method groups
/// * reads: [`get`](Self::get), [`iter_prefix`](Self::iter_prefix),
///   [`iter_after`](Self::iter_after), [`len`](Self::len);
/// * client writes (refuse read-only keys): [`set`](Self::set), [`delete`](Self::delete),
///   [`inc`](Self::inc), [`dec`](Self::dec);
/// * owner writes: [`set_internal`](Self::set_internal),
///   [`delete_internal`](Self::delete_internal),
///   [`delete_prefix_internal`](Self::delete_prefix_internal);
/// * read-only rules: [`set_read_only`](Self::set_read_only),
///   [`is_read_only`](Self::is_read_only);
/// * tracking: [`track`](Self::track), [`untrack`](Self::untrack), [`poll`](Self::poll),
///   [`pending`](Self::pending).
///
/// Every write that changes something queues one [`Change`] on each tracker that watches
/// it, in the order the writes happen; a write of the value a key already has is no change
/// and notifies nobody (as corosync).
#[derive(Debug, Default)]
pub struct Db {
    entries: BTreeMap<String, Value>,
    /// Read-only rules: (key or prefix, is a prefix).
    read_only: BTreeSet<(String, bool)>,
    trackers: BTreeMap<TrackId, Tracker>,
    next_track: u64,
    limits: TrackLimits,
}

impl Db {
    /// An empty database with the default [`TrackLimits`].
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty database whose trackers queue at most `limits`.
    pub fn with_limits(limits: TrackLimits) -> Self {
        Self {
            limits,
            ..Self::default()
        }
    }

    // ---- reads ----

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entries.get(key)
    }

    /// Keys stored.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every key starting with `prefix` (all keys for `""`), in key order.
    pub fn iter_prefix<'a>(
        &'a self,
        prefix: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a Value)> + 'a {
        self.iter_after(prefix, None)
    }

    /// As [`Db::iter_prefix`], starting after key `after` (exclusive) when given: how a
    /// listing is resumed page by page without holding a borrow across calls.
    pub fn iter_after<'a>(
        &'a self,
        prefix: &'a str,
        after: Option<&'a str>,
    ) -> impl Iterator<Item = (&'a str, &'a Value)> + 'a {
        let start = match after {
            Some(a) if a >= prefix => Bound::Excluded(a),
            _ => Bound::Included(prefix),
        };
        self.entries
            .range::<str, _>((start, Bound::Unbounded))
            .take_while(move |(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.as_str(), v))
    }

    // ---- client writes ----

    /// Sets `key` to `value`, creating it if needed.
    ///
    /// # Errors
    /// [`Error::InvalidKey`], [`Error::ReadOnly`].
    pub fn set(&mut self, key: &str, value: Value) -> Result<(), Error> {
        check_key(key)?;
        self.writable(key)?;
        self.store(key, value);
        Ok(())
    }

    /// Deletes `key`; returns its last value.
    ///
    /// # Errors
    /// [`Error::InvalidKey`], [`Error::ReadOnly`], [`Error::NotExist`].
    pub fn delete(&mut self, key: &str) -> Result<Value, Error> {
        check_key(key)?;
        self.writable(key)?;
        self.remove(key).ok_or(Error::NotExist)
    }

    /// Adds one to the integer `key` (wrapping); returns the new value.
    ///
    /// # Errors
    /// [`Error::InvalidKey`], [`Error::ReadOnly`], [`Error::NotExist`],
    /// [`Error::NotInteger`].
    pub fn inc(&mut self, key: &str) -> Result<Value, Error> {
        self.add(key, 1)
    }

    /// Subtracts one from the integer `key` (wrapping); returns the new value.
    ///
    /// # Errors
    /// As [`Db::inc`].
    pub fn dec(&mut self, key: &str) -> Result<Value, Error> {
        self.add(key, -1)
    }

    fn add(&mut self, key: &str, delta: i8) -> Result<Value, Error> {
        check_key(key)?;
        self.writable(key)?;
        let old = self.entries.get(key).ok_or(Error::NotExist)?;
        let new = old
            .wrapping_add(delta)
            .ok_or_else(|| Error::NotInteger(old.value_type()))?;
        self.store(key, new.clone());
        Ok(new)
    }

    fn writable(&self, key: &str) -> Result<(), Error> {
        if self.is_read_only(key) {
            Err(Error::ReadOnly)
        } else {
            Ok(())
        }
    }

    // ---- owner writes ----

    /// Sets `key` to `value` even if it is read-only to clients.
    ///
    /// # Errors
    /// [`Error::InvalidKey`].
    pub fn set_internal(&mut self, key: &str, value: Value) -> Result<(), Error> {
        check_key(key)?;
        self.store(key, value);
        Ok(())
    }

    /// Deletes `key` even if it is read-only; returns its last value, if it had one.
    pub fn delete_internal(&mut self, key: &str) -> Option<Value> {
        self.remove(key)
    }

    /// Deletes every key starting with `prefix`, read-only ones included; returns how many.
    pub fn delete_prefix_internal(&mut self, prefix: &str) -> usize {
        let keys: alloc::vec::Vec<String> = self
            .iter_prefix(prefix)
            .map(|(k, _)| k.to_string())
            .collect();
        for k in &keys {
            self.remove(k);
        }
        keys.len()
    }

    fn store(&mut self, key: &str, value: Value) {
        let old = match self.entries.get_mut(key) {
            Some(v) if *v == value => return,
            Some(v) => Some(core::mem::replace(v, value.clone())),
            None => {
                self.entries.insert(key.to_string(), value.clone());
                None
            }
        };
        let kind = if old.is_some() {
            ChangeKind::Modify
        } else {
            ChangeKind::Add
        };
        self.notify(key, kind, Some(value), old);
    }

    fn remove(&mut self, key: &str) -> Option<Value> {
        let old = self.entries.remove(key)?;
        self.notify(key, ChangeKind::Delete, None, Some(old.clone()));
        Some(old)
    }

    fn notify(&mut self, key: &str, kind: ChangeKind, new: Option<Value>, old: Option<Value>) {
        for (id, t) in &mut self.trackers {
            if t.watches(key, kind) {
                let change = Change {
                    kind,
                    key: key.to_string(),
                    new: new.clone(),
                    old: old.clone(),
                };
                if !t.push(change, &self.limits) {
                    trace!("objdb: {} full, a change of {} lost", id, key);
                }
            }
        }
    }

    // ---- read-only rules ----

    /// Makes `key` (or, with `prefix`, every key starting with it) read-only to the client
    /// writes (`ro = true`), or removes that rule (`ro = false`). Rules apply to keys that
    /// do not exist yet as well (corosync's `icmap_set_ro_access`).
    ///
    /// # Errors
    /// [`Error::InvalidKey`] for a name that is neither a key nor a prefix.
    pub fn set_read_only(&mut self, key: &str, prefix: bool, ro: bool) -> Result<(), Error> {
        if prefix {
            check_prefix(key)?;
        } else {
            check_key(key)?;
        }
        let rule = (key.to_string(), prefix);
        if ro {
            self.read_only.insert(rule);
        } else {
            self.read_only.remove(&rule);
        }
        Ok(())
    }

    /// Whether client writes to `key` are refused.
    pub fn is_read_only(&self, key: &str) -> bool {
        self.read_only.iter().any(|(k, prefix)| {
            if *prefix {
                key.starts_with(k.as_str())
            } else {
                key == k
            }
        })
    }

    // ---- tracking ----

    /// Starts tracking `key` (with [`TrackFlags::PREFIX`]: every key starting with it) for
    /// the kinds of change `flags` names; returns the tracker's id. Only changes from now
    /// on are reported.
    ///
    /// # Errors
    /// [`Error::InvalidKey`].
    pub fn track(&mut self, key: &str, flags: TrackFlags) -> Result<TrackId, Error> {
        if flags.contains(TrackFlags::PREFIX) {
            check_prefix(key)?;
        } else {
            check_key(key)?;
        }
        self.next_track += 1;
        let id = TrackId(self.next_track);
        self.trackers
            .insert(id, Tracker::new(key.to_string(), flags));
        Ok(id)
    }

    /// Stops tracker `id`, dropping what it had queued.
    ///
    /// # Errors
    /// [`Error::UnknownTracker`].
    pub fn untrack(&mut self, id: TrackId) -> Result<(), Error> {
        self.trackers
            .remove(&id)
            .map(drop)
            .ok_or(Error::UnknownTracker(id))
    }

    /// The oldest notice of tracker `id` (`None`: nothing queued, or no such tracker).
    pub fn poll(&mut self, id: TrackId) -> Option<Notice> {
        self.trackers.get_mut(&id)?.pop()
    }

    /// Notices queued for tracker `id` (a pending [`Notice::Lost`] counts as one).
    pub fn pending(&self, id: TrackId) -> usize {
        self.trackers.get(&id).map_or(0, Tracker::pending)
    }

    /// Bytes of keys and values queued for tracker `id` (at most [`TrackLimits::bytes`]).
    pub fn pending_bytes(&self, id: TrackId) -> usize {
        self.trackers.get(&id).map_or(0, Tracker::bytes)
    }

    /// What tracker `id` watches: the key or prefix, and its flags.
    pub fn tracker(&self, id: TrackId) -> Option<(&str, TrackFlags)> {
        self.trackers.get(&id).map(|t| (t.key.as_str(), t.flags))
    }

    /// Trackers alive.
    pub fn trackers(&self) -> usize {
        self.trackers.len()
    }
}
