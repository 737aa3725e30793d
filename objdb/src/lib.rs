//! # objdb: the configuration and statistics database
//!
//! An in-memory typed key/value store with change tracking: the store behind the cmap
//! service (corosync's icmap). Values are typed as cmap's twelve types ([`Value`]); keys
//! are dotted names (`totem.token`, `nodelist.node.0.ring0_addr`, checked by
//! [`check_key`]); iteration is by prefix in key order; every add, modify and delete is
//! reported to the trackers that watch the key or a prefix of it, each through a bounded
//! queue ([`TrackLimits`]); keys can be read-only to clients.
//!
//! Layer map:
//!
//! ```text
//! db.rs      Db: the BTreeMap, client and owner writes, read-only rules, trackers
//! track.rs   TrackFlags, Change, Notice, TrackLimits and the bounded per-tracker queue
//! value.rs   Value and ValueType (cmap's types, codes and short names), text parsing
//! key.rs     key and prefix names (3..=255 bytes of [a-zA-Z0-9._/:-])
//! fmt.rs     logging shim (defmt | log | nothing)
//! ```
//!
//! Depends on `alloc` only (plus optional `defmt`, `log`, `serde`). It never touches the
//! network, the IPC, a clock or a thread, and knows nothing of the cmap wire format or of
//! which keys mean what: the cmap engine (`services::cmap`) serves it to clients and the
//! node fills it. Deterministic: a `BTreeMap`, no hashing, no iteration order that depends
//! on addresses. `#![no_std]` + `alloc`, `#![forbid(unsafe_code)]`.
//!
//! ```
//! use objdb::{ChangeKind, Db, Notice, TrackFlags, Value};
//!
//! let mut db = Db::new();
//! let t = db.track("totem.", TrackFlags::ALL_PREFIX).unwrap();
//! db.set("totem.token", Value::U32(3000)).unwrap();
//! db.set("totem.token", Value::U32(5000)).unwrap();
//! assert!(matches!(db.poll(t), Some(Notice::Change(c)) if c.kind == ChangeKind::Add));
//! assert!(matches!(db.poll(t), Some(Notice::Change(c)) if c.old == Some(Value::U32(3000))));
//! db.set_read_only("runtime.", true, true).unwrap();
//! assert!(db.set("runtime.x", Value::U8(1)).is_err());
//! assert_eq!(db.iter_prefix("totem.").count(), 1);
//! ```
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

extern crate alloc;
#[cfg(test)]
extern crate std;

#[macro_use]
mod fmt;

mod db;
mod key;
mod track;
mod value;

#[cfg(test)]
mod tests;

pub use db::{Db, Error};
pub use key::{KEY_MAX_LEN, KEY_MIN_LEN, KeyError, check_key, check_prefix};
pub use track::{Change, ChangeKind, Notice, TrackFlags, TrackId, TrackLimits};
pub use value::{ParseValueError, Value, ValueType};
