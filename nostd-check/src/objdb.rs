//! objdb and the cmap engine without std: typed set/get, prefix iteration in key order, a
//! read-only refusal, a tracker's change events, and one cmap request through the engine
//! with its reply and the event it causes.

use alloc::string::String;
use alloc::vec::Vec;

use objdb::{ChangeKind, Db, Notice, TrackFlags, Value};
use services::cmap::wire::{CmapEvent, Request, Response, ResponseBody};
use services::cmap::{Cmap, CmapConfig};
use services::cpg::wire::CsError;
use services::{Action, ConnId, Credentials, Outbox, ServiceEngine, service_id};

use crate::ensure;

pub(crate) fn scenario() -> Result<(), &'static str> {
    // The database alone.
    let mut db = Db::new();
    let t = db
        .track("totem.", TrackFlags::ALL_PREFIX)
        .map_err(|_| "track")?;
    db.set("totem.token", Value::U32(3000)).map_err(|_| "set")?;
    db.set("totem.join", Value::U32(50)).map_err(|_| "set")?;
    db.set("totem.token", Value::U32(3650)).map_err(|_| "set")?;
    ensure(
        db.get("totem.token") == Some(&Value::U32(3650)),
        "typed get",
    )?;
    let keys: Vec<&str> = db.iter_prefix("totem.").map(|(k, _)| k).collect();
    ensure(keys == ["totem.join", "totem.token"], "key order")?;
    let kinds: Vec<ChangeKind> = core::iter::from_fn(|| db.poll(t))
        .filter_map(|n| match n {
            Notice::Change(c) => Some(c.kind),
            Notice::Lost(_) => None,
        })
        .collect();
    ensure(
        kinds == [ChangeKind::Add, ChangeKind::Add, ChangeKind::Modify],
        "tracked changes",
    )?;
    db.set_read_only("runtime.", true, true)
        .map_err(|_| "read-only rule")?;
    ensure(
        db.set("runtime.x", Value::U8(1)) == Err(objdb::Error::ReadOnly),
        "read-only refused",
    )?;

    // The engine: a writable connection tracks a prefix and sets a key.
    let mut cmap = Cmap::new(CmapConfig::default());
    let mut out = Outbox::new(service_id::CMAP);
    let conn = ConnId(1);
    let creds = Credentials {
        pid: 1,
        uid: 0,
        gid: 0,
    };
    cmap.on_connect(conn, creds, &mut out);
    ensure(cmap.grant_write(conn), "grant write")?;
    let requests = [
        Request::TrackAdd {
            flags: TrackFlags::ALL_PREFIX.bits(),
            key: String::from("app."),
        },
        Request::Set {
            key: String::from("app.key"),
            value: Value::String(String::from("no std here")),
        },
    ];
    for r in &requests {
        let bytes = r.emit().map_err(|_| "emit")?;
        cmap.on_request(conn, bytes::Bytes::from(bytes), &mut out);
    }
    let (mut ok_replies, mut events) = (0, 0);
    while let Some(a) = out.pop_action() {
        match a {
            Action::Reply { bytes, .. } => {
                let r = Response::parse(&bytes).map_err(|_| "reply decodes")?;
                ensure(r.error == CsError::Ok, "request accepted")?;
                ok_replies += 1;
            }
            Action::Event { bytes, .. } => {
                let e = CmapEvent::parse(&bytes).map_err(|_| "event decodes")?;
                ensure(
                    matches!(
                        e,
                        CmapEvent::Changed {
                            kind: ChangeKind::Add,
                            ..
                        }
                    ),
                    "an add event",
                )?;
                events += 1;
            }
            Action::Close { .. } => return Err("closed"),
        }
    }
    ensure(ok_replies == 2 && events == 1, "two replies, one event")?;
    let get = Request::Get {
        key: String::from("app.key"),
    };
    cmap.on_request(
        conn,
        bytes::Bytes::from(get.emit().map_err(|_| "emit")?),
        &mut out,
    );
    let Some(Action::Reply { bytes, .. }) = out.pop_action() else {
        return Err("get reply");
    };
    let r = Response::parse(&bytes).map_err(|_| "get decodes")?;
    ensure(
        r.body == ResponseBody::Value(Value::String(String::from("no std here"))),
        "value read back",
    )?;
    Ok(())
}
