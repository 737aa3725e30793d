//! Change tracking: what a tracker watches ([`TrackFlags`], a key or a prefix), what it
//! reports ([`Change`], [`Notice`]), and its bounded queue.
//!
//! A tracker's queue holds at most [`TrackLimits::events`] changes and
//! [`TrackLimits::bytes`] bytes of keys and values. A change that does not fit is dropped
//! and counted; once the queue is drained the tracker reports [`Notice::Lost`] with the
//! count, so a consumer that falls behind learns that it must re-read what it watches
//! instead of the database growing without bound on its behalf.

use alloc::collections::VecDeque;
use alloc::string::String;
use core::fmt;

use crate::Value;

/// A tracker's id, unique for the life of its [`crate::Db`] (never reused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct TrackId(pub u64);

impl fmt::Display for TrackId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "track#{}", self.0)
    }
}

/// What a tracker reports, as corosync's `CMAP_TRACK_*` bits (DELETE 1, MODIFY 2, ADD 4,
/// PREFIX 8: the key is a prefix, every key starting with it is watched).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct TrackFlags(u8);

impl TrackFlags {
    /// Deletions.
    pub const DELETE: Self = Self(1);
    /// Modifications.
    pub const MODIFY: Self = Self(2);
    /// Additions.
    pub const ADD: Self = Self(4);
    /// The tracked key is a prefix.
    pub const PREFIX: Self = Self(8);
    /// Every kind of change of one key.
    pub const ALL: Self = Self(1 | 2 | 4);
    /// Every kind of change under a prefix.
    pub const ALL_PREFIX: Self = Self(1 | 2 | 4 | 8);

    /// Flags from their bits; `None` if an unknown bit is set or no kind of change is.
    pub fn from_bits(bits: u8) -> Option<Self> {
        (bits & !15 == 0 && bits & 7 != 0).then_some(Self(bits))
    }

    /// The bits.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Whether every flag of `other` is set here.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// Both sets of flags.
    #[must_use]
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// Whether a change of `kind` is reported.
    pub const fn reports(self, kind: ChangeKind) -> bool {
        self.contains(match kind {
            ChangeKind::Add => Self::ADD,
            ChangeKind::Modify => Self::MODIFY,
            ChangeKind::Delete => Self::DELETE,
        })
    }
}

/// What happened to a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum ChangeKind {
    /// It was created (corosync-cmapctl prints `create>`).
    Add,
    /// Its value changed (`modify>`; a write of the same value is no change).
    Modify,
    /// It was deleted (`delete>`).
    Delete,
}

impl ChangeKind {
    /// corosync's bit for this kind (`CMAP_TRACK_ADD` 4, `MODIFY` 2, `DELETE` 1).
    pub const fn code(self) -> u8 {
        match self {
            Self::Add => 4,
            Self::Modify => 2,
            Self::Delete => 1,
        }
    }

    /// The kind of corosync bit `code`.
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            4 => Some(Self::Add),
            2 => Some(Self::Modify),
            1 => Some(Self::Delete),
            _ => None,
        }
    }

    /// `create`, `modify` or `delete`, as corosync-cmapctl prints them.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Add => "create",
            Self::Modify => "modify",
            Self::Delete => "delete",
        }
    }
}

/// One change of one key.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Change {
    /// What happened.
    pub kind: ChangeKind,
    /// The key.
    pub key: String,
    /// The value after (none for a delete).
    pub new: Option<Value>,
    /// The value before (none for an add).
    pub old: Option<Value>,
}

impl Change {
    /// Bytes it holds (key and values), for the tracker's bound.
    pub fn size(&self) -> usize {
        self.key.len()
            + self.new.as_ref().map_or(0, Value::len)
            + self.old.as_ref().map_or(0, Value::len)
    }
}

/// What [`crate::Db::poll`] hands out.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Notice {
    /// A change, in the order the database made them.
    Change(Change),
    /// This many changes after the ones reported were dropped: the queue was full. Re-read
    /// what the tracker watches.
    Lost(u64),
}

/// Bounds on one tracker's queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TrackLimits {
    /// Changes queued at most.
    pub events: usize,
    /// Bytes of keys and values queued at most.
    pub bytes: usize,
}

impl Default for TrackLimits {
    /// 1024 changes or 1 MiB.
    fn default() -> Self {
        Self {
            events: 1024,
            bytes: 1 << 20,
        }
    }
}

/// One tracker: what it watches, and its queue.
#[derive(Debug)]
pub(crate) struct Tracker {
    pub(crate) key: String,
    pub(crate) flags: TrackFlags,
    queue: VecDeque<Change>,
    bytes: usize,
    lost: u64,
}

impl Tracker {
    pub(crate) fn new(key: String, flags: TrackFlags) -> Self {
        Self {
            key,
            flags,
            queue: VecDeque::new(),
            bytes: 0,
            lost: 0,
        }
    }

    /// Whether a change of `kind` to `key` concerns this tracker.
    pub(crate) fn watches(&self, key: &str, kind: ChangeKind) -> bool {
        self.flags.reports(kind)
            && if self.flags.contains(TrackFlags::PREFIX) {
                key.starts_with(self.key.as_str())
            } else {
                key == self.key
            }
    }

    /// Queues `change`, or counts it lost if it does not fit.
    pub(crate) fn push(&mut self, change: Change, limits: &TrackLimits) -> bool {
        let size = change.size();
        // Once something is lost, nothing newer is queued until the loss is reported:
        // a consumer never sees a change that happened after one it missed.
        if self.lost > 0
            || self.queue.len() >= limits.events
            || self.bytes.saturating_add(size) > limits.bytes
        {
            self.lost += 1;
            return false;
        }
        self.bytes += size;
        self.queue.push_back(change);
        true
    }

    pub(crate) fn pop(&mut self) -> Option<Notice> {
        if let Some(c) = self.queue.pop_front() {
            self.bytes -= c.size();
            return Some(Notice::Change(c));
        }
        if self.lost > 0 {
            return Some(Notice::Lost(core::mem::take(&mut self.lost)));
        }
        None
    }

    pub(crate) fn pending(&self) -> usize {
        self.queue.len() + usize::from(self.lost > 0)
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }
}
