//! The cmap engine: the configuration and statistics map ([`objdb::Db`]) served to local
//! clients (corosync's `exec/cmap.c` over icmap).
//!
//! # What goes on the ring: nothing
//!
//! cmap is node-local, as in corosync: every read and write is answered from this node's
//! database at once, and a write changes this node only (`totem.token` set through cmap
//! takes effect on the node it is set on, as corosync's). Each node fills its database from
//! its own configuration file and its own statistics, so there is no replicated state to
//! synchronise after a configuration change: the sync steps are no-ops and the engine
//! multicasts nothing. (corosync's cmap engine has one exec message, used at sync time to
//! compare `totem.config_version` across nodes and stop a node whose configuration is
//! older; that check is not implemented here — see the crate README.) Replicating writes
//! cluster-wide would make every write wait for the ring and would make per-node keys such
//! as `runtime.*` and `nodelist.local_node_pos` meaningless, so it is deliberately not done.
//!
//! # Who may write what
//!
//! Three gates, in order, each answered with its own error and a reason:
//!
//! 1. the connection: connections are read-only until the node grants write access
//!    ([`Cmap::grant_write`]; totemd grants it to users with full access in `uidgid`) —
//!    `ACCESS`;
//! 2. the key: read-only rules in the database ([`objdb::Db::set_read_only`]; totemd makes
//!    `runtime.` and `internal_configuration.` read-only) — `ACCESS`;
//! 3. the node's [`WritePolicy`]: what the key means (totemd refuses `totem.netmtu`, which
//!    needs a restart, and checks a new `totem.token` against the ring's rules) — the
//!    policy's error.
//!
//! # Notifications
//!
//! A client's trackers are objdb trackers; after every request, and after every change the
//! node makes through [`Cmap::update`], each client tracker's queued changes are sent to its
//! connection as events, in order. A tracker whose client falls behind holds at most
//! [`CmapConfig::track_limits`] and then reports how many changes it dropped.
//! Trackers the node creates itself through [`Cmap::update`] (to apply `totem.*` writes) are
//! not the engine's: it never drains them.

pub mod wire;

#[cfg(test)]
mod tests;

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use bytes::Bytes;
use objdb::{Db, KeyError, Notice, TrackFlags, TrackId, TrackLimits, Value};
use totem_proto::{NodeId, RingId, ServiceId};
use totem_ring::Delivery;

use crate::cpg::wire::CsError;
use crate::engine::{ConnId, Credentials, Outbox, ServiceEngine, SyncProgress, service_id};
use wire::{CmapEvent, Request, RequestCode, Response, ResponseBody};

/// Limits of the cmap engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CmapConfig {
    /// Largest value a client may set, in bytes (`TOO_BIG` above). A change event carries
    /// two values, so keep it below half the IPC's record size.
    pub max_value_len: usize,
    /// Trackers one connection may hold (`NO_RESOURCES` above).
    pub max_trackers_per_conn: usize,
    /// Bytes of entries one List reply carries at most (it always carries at least one).
    pub list_page_bytes: usize,
    /// Bound of each tracker's queue.
    pub track_limits: TrackLimits,
}

impl Default for CmapConfig {
    /// 256 KiB values, 64 trackers per connection, 64 KiB list pages, 1024 changes or
    /// 1 MiB per tracker.
    fn default() -> Self {
        Self {
            max_value_len: 256 << 10,
            max_trackers_per_conn: 64,
            list_page_bytes: 64 << 10,
            track_limits: TrackLimits::default(),
        }
    }
}

/// Why the [`WritePolicy`] refused a write: the reply's error, and why in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The error the client gets (`NOT_SUPPORTED` for "needs a restart", `INVALID_PARAM`
    /// for a value the key cannot take, ...).
    pub error: CsError,
    /// Why, for people (`totemctl` prints it).
    pub reason: String,
}

impl Refusal {
    /// A refusal.
    pub fn new(error: CsError, reason: impl Into<String>) -> Self {
        Self {
            error,
            reason: reason.into(),
        }
    }
}

/// What a key means to the node: called before every client write that passed the
/// connection and read-only checks, with the database as it is and the value the key
/// would get (`None`: deleted).
pub trait WritePolicy: fmt::Debug {
    /// `Ok` to let the write happen.
    ///
    /// # Errors
    /// A [`Refusal`]: nothing is written and the client gets its error and reason.
    fn check(&self, db: &Db, key: &str, new: Option<&Value>) -> Result<(), Refusal>;
}

/// The policy that lets every write through (only read-only rules apply).
#[derive(Debug, Clone, Copy, Default)]
pub struct AllowAll;

impl WritePolicy for AllowAll {
    fn check(&self, _: &Db, _: &str, _: Option<&Value>) -> Result<(), Refusal> {
        Ok(())
    }
}

/// Counters of the cmap engine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct CmapStats {
    /// Requests answered.
    pub requests: u64,
    /// Requests that did not decode.
    pub bad_requests: u64,
    /// Writes refused (access, read-only, policy).
    pub refused_writes: u64,
    /// Change events sent to clients.
    pub events: u64,
    /// Lost notices sent to clients (a tracker overflowed).
    pub lost_notices: u64,
    /// Ring deliveries for cmap (none is expected: cmap multicasts nothing).
    pub unexpected_deliveries: u64,
}

#[derive(Debug, Default)]
struct Conn {
    writable: bool,
    tracks: BTreeSet<TrackId>,
}

/// The cmap service engine.
pub struct Cmap {
    db: Db,
    config: CmapConfig,
    conns: BTreeMap<ConnId, Conn>,
    /// Client trackers and their connections.
    trackers: BTreeMap<TrackId, ConnId>,
    policy: Box<dyn WritePolicy>,
    stats: CmapStats,
}

impl fmt::Debug for Cmap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cmap")
            .field("keys", &self.db.len())
            .field("conns", &self.conns.len())
            .field("trackers", &self.trackers.len())
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl Cmap {
    /// An engine over an empty database, letting every write through ([`AllowAll`]).
    pub fn new(config: CmapConfig) -> Self {
        Self {
            db: Db::with_limits(config.track_limits),
            config,
            conns: BTreeMap::new(),
            trackers: BTreeMap::new(),
            policy: Box::new(AllowAll),
            stats: CmapStats::default(),
        }
    }

    /// Replaces the write policy.
    pub fn set_policy(&mut self, policy: Box<dyn WritePolicy>) {
        self.policy = policy;
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Changes the database as the node (`f` may use the `*_internal` writes, track keys
    /// for itself and poll those trackers), then sends the clients' trackers what changed.
    pub fn update<R>(&mut self, out: &mut Outbox, f: impl FnOnce(&mut Db) -> R) -> R {
        let r = f(&mut self.db);
        self.notify(out);
        r
    }

    /// Lets connection `conn` write (it is read-only until then). False if unknown.
    pub fn grant_write(&mut self, conn: ConnId) -> bool {
        self.conns
            .get_mut(&conn)
            .map(|c| c.writable = true)
            .is_some()
    }

    /// Counters.
    pub fn stats(&self) -> &CmapStats {
        &self.stats
    }

    /// Client connections.
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// Sends every client tracker's queued changes to its connection.
    fn notify(&mut self, out: &mut Outbox) {
        for (&id, &conn) in &self.trackers {
            while let Some(n) = self.db.poll(id) {
                let ev = match n {
                    Notice::Change(c) => {
                        self.stats.events += 1;
                        CmapEvent::Changed {
                            handle: id.0,
                            kind: c.kind,
                            key: c.key,
                            new: c.new,
                            old: c.old,
                        }
                    }
                    Notice::Lost(count) => {
                        self.stats.lost_notices += 1;
                        CmapEvent::Lost {
                            handle: id.0,
                            count,
                        }
                    }
                };
                match ev.emit() {
                    Ok(b) => out.event(conn, b),
                    // Keys in the database are valid names (≤ 255 bytes), values bounded.
                    Err(e) => warn!("cmap: cannot encode an event for {}: {}", conn, e),
                }
            }
        }
    }

    fn request(&mut self, conn: ConnId, bytes: &[u8], out: &mut Outbox) {
        self.stats.requests += 1;
        let Some(c) = self.conns.get(&conn) else {
            let code = wire::raw_request_code(bytes);
            reply(
                out,
                conn,
                Response::error(code, CsError::BadHandle, "finalized"),
            );
            return;
        };
        let writable = c.writable;
        let req = match Request::parse(bytes) {
            Ok(r) => r,
            Err(e) => {
                self.stats.bad_requests += 1;
                debug!("cmap: {}: undecodable request: {}", conn, e);
                let code = wire::raw_request_code(bytes);
                let err = wire::decode_error_reply(e);
                reply(out, conn, Response::error(code, err, format!("{e}")));
                return;
            }
        };
        let code = req.code();
        let result = match req {
            Request::Finalize => {
                self.release(conn);
                reply(out, conn, Response::ok(code, ResponseBody::None));
                out.close(conn);
                return;
            }
            Request::Get { key } => self.get(&key).map(ResponseBody::Value),
            Request::Set { key, value } => self
                .write(writable, &key, Some(value))
                .map(|()| ResponseBody::None),
            Request::Delete { key } => self
                .write(writable, &key, None)
                .map(|()| ResponseBody::None),
            Request::Inc { key } => self.step(writable, &key, 1).map(ResponseBody::Value),
            Request::Dec { key } => self.step(writable, &key, -1).map(ResponseBody::Value),
            Request::List { prefix, after, max } => self.list(&prefix, &after, max),
            Request::TrackAdd { flags, key } => self.track_add(conn, flags, &key),
            Request::TrackDelete { handle } => self.track_delete(conn, handle),
        };
        match result {
            Ok(body) => reply(out, conn, Response::ok(code, body)),
            Err(r) => {
                if matches!(
                    code,
                    RequestCode::Set | RequestCode::Delete | RequestCode::Inc | RequestCode::Dec
                ) {
                    self.stats.refused_writes += 1;
                }
                reply(out, conn, Response::error(code, r.error, r.reason));
            }
        }
        // Every tracker (this client's and the others') hears of what the request changed.
        self.notify(out);
    }

    fn get(&self, key: &str) -> Result<Value, Refusal> {
        objdb::check_key(key).map_err(key_refusal)?;
        self.db
            .get(key)
            .cloned()
            .ok_or_else(|| Refusal::new(CsError::NotExist, format!("no key {key}")))
    }

    /// The gates every write passes: the key's name, the connection's access, the key's
    /// read-only rule, the value's size, the policy.
    fn may_write(&self, writable: bool, key: &str, new: Option<&Value>) -> Result<(), Refusal> {
        objdb::check_key(key).map_err(key_refusal)?;
        if !writable {
            return Err(Refusal::new(
                CsError::Access,
                "this connection may only read (its user has read access in uidgid)",
            ));
        }
        if self.db.is_read_only(key) {
            return Err(Refusal::new(CsError::Access, format!("{key} is read-only")));
        }
        if let Some(v) = new
            && v.len() > self.config.max_value_len
        {
            return Err(Refusal::new(
                CsError::TooBig,
                format!(
                    "a value of {} bytes (at most {})",
                    v.len(),
                    self.config.max_value_len
                ),
            ));
        }
        self.policy.check(&self.db, key, new)
    }

    fn write(&mut self, writable: bool, key: &str, new: Option<Value>) -> Result<(), Refusal> {
        self.may_write(writable, key, new.as_ref())?;
        match new {
            Some(v) => self.db.set(key, v).map_err(db_refusal),
            None => match self.db.get(key) {
                None => Err(Refusal::new(CsError::NotExist, format!("no key {key}"))),
                Some(_) => self.db.delete(key).map(drop).map_err(db_refusal),
            },
        }
    }

    fn step(&mut self, writable: bool, key: &str, delta: i8) -> Result<Value, Refusal> {
        objdb::check_key(key).map_err(key_refusal)?;
        let old = self
            .db
            .get(key)
            .ok_or_else(|| Refusal::new(CsError::NotExist, format!("no key {key}")))?;
        let new = old.wrapping_add(delta).ok_or_else(|| {
            Refusal::new(
                CsError::InvalidParam,
                format!("{key} is a {}, not an integer", old.value_type()),
            )
        })?;
        self.may_write(writable, key, Some(&new))?;
        self.db.set(key, new.clone()).map_err(db_refusal)?;
        Ok(new)
    }

    fn list(&self, prefix: &str, after: &str, max: u32) -> Result<ResponseBody, Refusal> {
        objdb::check_prefix(prefix).map_err(key_refusal)?;
        let max = usize::try_from(max).unwrap_or(usize::MAX).max(1);
        let after = (!after.is_empty()).then_some(after);
        let mut entries = Vec::new();
        let mut bytes = 0;
        let mut more = false;
        for (k, v) in self.db.iter_after(prefix, after) {
            let len = 1 + k.len() + wire::value_wire_len(v);
            if !entries.is_empty()
                && (entries.len() >= max || bytes + len > self.config.list_page_bytes)
            {
                more = true;
                break;
            }
            bytes += len;
            entries.push((String::from(k), v.clone()));
        }
        Ok(ResponseBody::Entries { more, entries })
    }

    fn track_add(&mut self, conn: ConnId, flags: u8, key: &str) -> Result<ResponseBody, Refusal> {
        let flags = TrackFlags::from_bits(flags).ok_or_else(|| {
            Refusal::new(
                CsError::BadFlags,
                format!(
                    "track flags {flags:#x}: DELETE 1, MODIFY 2, ADD 4 (at least one), PREFIX 8"
                ),
            )
        })?;
        let Some(c) = self.conns.get_mut(&conn) else {
            return Err(Refusal::new(CsError::BadHandle, "finalized"));
        };
        if c.tracks.len() >= self.config.max_trackers_per_conn {
            return Err(Refusal::new(
                CsError::NoResources,
                format!(
                    "this connection already has {} trackers",
                    self.config.max_trackers_per_conn
                ),
            ));
        }
        let id = self.db.track(key, flags).map_err(db_refusal)?;
        c.tracks.insert(id);
        self.trackers.insert(id, conn);
        Ok(ResponseBody::Handle(id.0))
    }

    fn track_delete(&mut self, conn: ConnId, handle: u64) -> Result<ResponseBody, Refusal> {
        let id = TrackId(handle);
        let owned = self
            .conns
            .get_mut(&conn)
            .is_some_and(|c| c.tracks.remove(&id));
        if !owned {
            return Err(Refusal::new(
                CsError::BadHandle,
                format!("no tracker {handle} on this connection"),
            ));
        }
        self.trackers.remove(&id);
        // Owned by this connection, so it exists.
        let _ = self.db.untrack(id);
        Ok(ResponseBody::None)
    }

    /// Forgets connection `conn` and its trackers.
    fn release(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.remove(&conn) {
            for id in c.tracks {
                self.trackers.remove(&id);
                let _ = self.db.untrack(id);
            }
        }
    }
}

fn reply(out: &mut Outbox, conn: ConnId, response: Response) {
    out.reply(conn, response.emit());
}

/// corosync answers a name of the wrong length with `NAME_TOO_LONG` and bad characters
/// with `INVALID_PARAM`.
fn key_refusal(e: KeyError) -> Refusal {
    let error = match e {
        KeyError::TooShort(_) | KeyError::TooLong(_) => CsError::NameTooLong,
        KeyError::InvalidChar { .. } => CsError::InvalidParam,
    };
    Refusal::new(error, format!("{e}"))
}

fn db_refusal(e: objdb::Error) -> Refusal {
    let error = match e {
        objdb::Error::InvalidKey(k) => return key_refusal(k),
        objdb::Error::ReadOnly => CsError::Access,
        objdb::Error::NotExist => CsError::NotExist,
        objdb::Error::NotInteger(_) => CsError::InvalidParam,
        objdb::Error::UnknownTracker(_) => CsError::BadHandle,
        _ => CsError::Library,
    };
    Refusal::new(error, format!("{e}"))
}

impl ServiceEngine for Cmap {
    fn service_id(&self) -> ServiceId {
        service_id::CMAP
    }

    fn name(&self) -> &'static str {
        "cmap"
    }

    fn on_connect(&mut self, conn: ConnId, _creds: Credentials, _out: &mut Outbox) {
        self.conns.insert(conn, Conn::default());
    }

    fn on_request(&mut self, conn: ConnId, request: Bytes, out: &mut Outbox) {
        self.request(conn, &request, out);
    }

    fn on_disconnect(&mut self, conn: ConnId, _out: &mut Outbox) {
        self.release(conn);
    }

    fn on_deliver(&mut self, delivery: Delivery, _out: &mut Outbox) {
        // cmap multicasts nothing; a message under its id comes from a newer build.
        self.stats.unexpected_deliveries += 1;
        debug!(
            "cmap: ignored a {}-byte message from node {}",
            delivery.payload.len(),
            delivery.sender.0
        );
    }

    fn sync_init(&mut self, _: &[NodeId], _: &[NodeId], _: RingId, _: &mut Outbox) {}

    fn sync_process(&mut self, _out: &mut Outbox) -> SyncProgress {
        // Nothing replicated, nothing to send (see the module docs).
        SyncProgress::Done
    }

    fn sync_activate(&mut self, _out: &mut Outbox) {}

    fn sync_abort(&mut self, _out: &mut Outbox) {}
}
