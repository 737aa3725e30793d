//! The cmap engine on its own: requests in, replies and events out (no ring, no IPC).

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use alloc::{format, vec};

use bytes::Bytes;
use objdb::{ChangeKind, Db, TrackFlags, TrackLimits, Value};

use super::wire::{CmapEvent, Request, RequestCode, Response, ResponseBody};
use super::*;
use crate::engine::Action;

fn creds() -> Credentials {
    Credentials {
        pid: 1,
        uid: 0,
        gid: 0,
    }
}

struct Harness {
    cmap: Cmap,
    out: Outbox,
}

impl Harness {
    fn new(config: CmapConfig) -> Self {
        Self {
            cmap: Cmap::new(config),
            out: Outbox::new(service_id::CMAP),
        }
    }

    fn connect(&mut self, conn: u64, writable: bool) {
        self.cmap.on_connect(ConnId(conn), creds(), &mut self.out);
        if writable {
            assert!(self.cmap.grant_write(ConnId(conn)));
        }
    }

    fn raw(&mut self, conn: u64, bytes: &[u8]) -> Response {
        self.cmap
            .on_request(ConnId(conn), Bytes::copy_from_slice(bytes), &mut self.out);
        let mut reply = None;
        let mut keep = Vec::new();
        while let Some(a) = self.out.pop_action() {
            match a {
                Action::Reply { conn: c, bytes } if c.0 == conn && reply.is_none() => {
                    reply = Some(Response::parse(&bytes).unwrap());
                }
                other => keep.push(other),
            }
        }
        for a in keep {
            match a {
                Action::Event { conn, bytes } => self.out.event(conn, bytes),
                Action::Close { conn } => self.out.close(conn),
                Action::Reply { .. } => panic!("a second reply"),
            }
        }
        reply.expect("every request is answered")
    }

    fn call(&mut self, conn: u64, req: &Request) -> Response {
        let r = self.raw(conn, &req.emit().unwrap());
        assert_eq!(r.code, req.code());
        r
    }

    fn set(&mut self, conn: u64, key: &str, value: Value) -> Response {
        self.call(
            conn,
            &Request::Set {
                key: key.into(),
                value,
            },
        )
    }

    /// Events queued for `conn`, decoded (other actions stay).
    fn events(&mut self, conn: u64) -> Vec<CmapEvent> {
        let mut got = Vec::new();
        let mut keep = Vec::new();
        while let Some(a) = self.out.pop_action() {
            match a {
                Action::Event { conn: c, bytes } if c.0 == conn => {
                    got.push(CmapEvent::parse(&bytes).unwrap());
                }
                other => keep.push(other),
            }
        }
        for a in keep {
            if let Action::Event { conn, bytes } = a {
                self.out.event(conn, bytes);
            }
        }
        got
    }
}

#[test]
fn set_get_delete_every_type_and_errors_name_the_problem() {
    let mut h = Harness::new(CmapConfig::default());
    h.connect(1, true);
    for (i, v) in [
        Value::I8(-1),
        Value::U32(3650),
        Value::Double(0.5),
        Value::String("x y".into()),
        Value::Binary(vec![1, 2]),
    ]
    .into_iter()
    .enumerate()
    {
        let key = format!("test.k{i}");
        assert_eq!(h.set(1, &key, v.clone()).error, CsError::Ok);
        let r = h.call(1, &Request::Get { key: key.clone() });
        assert_eq!(r.body, ResponseBody::Value(v));
    }
    let r = h.call(
        1,
        &Request::Get {
            key: "test.none".into(),
        },
    );
    assert_eq!(r.error, CsError::NotExist);
    assert!(r.reason().contains("test.none"));
    let r = h.call(1, &Request::Get { key: "ab".into() });
    assert_eq!(r.error, CsError::NameTooLong);
    let r = h.set(1, "bad key", Value::U8(1));
    assert_eq!(r.error, CsError::InvalidParam);
    assert_eq!(
        h.call(
            1,
            &Request::Delete {
                key: "test.k0".into()
            }
        )
        .error,
        CsError::Ok
    );
    assert_eq!(
        h.call(
            1,
            &Request::Delete {
                key: "test.k0".into()
            }
        )
        .error,
        CsError::NotExist
    );
    // inc / dec.
    let r = h.call(
        1,
        &Request::Inc {
            key: "test.k1".into(),
        },
    );
    assert_eq!(r.body, ResponseBody::Value(Value::U32(3651)));
    let r = h.call(
        1,
        &Request::Dec {
            key: "test.k3".into(),
        },
    );
    assert_eq!(r.error, CsError::InvalidParam);
    assert_eq!(h.cmap.stats().requests, 17);
}

#[test]
fn read_only_connections_keys_and_the_policy_refuse_writes() {
    #[derive(Debug)]
    struct NoTotem;
    impl WritePolicy for NoTotem {
        fn check(&self, _: &Db, key: &str, _: Option<&Value>) -> Result<(), Refusal> {
            if key.starts_with("totem.") {
                Err(Refusal::new(CsError::NotSupported, "needs a restart"))
            } else {
                Ok(())
            }
        }
    }
    let mut h = Harness::new(CmapConfig::default());
    h.cmap.set_policy(Box::new(NoTotem));
    h.cmap.update(&mut h.out, |db| {
        db.set_read_only("runtime.", true, true).unwrap();
        db.set_internal("runtime.x", Value::U8(1)).unwrap();
    });
    h.connect(1, false);
    h.connect(2, true);
    // Reading is fine for the read-only connection.
    let r = h.call(
        1,
        &Request::Get {
            key: "runtime.x".into(),
        },
    );
    assert_eq!(r.body, ResponseBody::Value(Value::U8(1)));
    let r = h.set(1, "test.k", Value::U8(1));
    assert_eq!(r.error, CsError::Access);
    assert!(r.reason().contains("read"), "{}", r.reason());
    let r = h.call(
        1,
        &Request::Inc {
            key: "runtime.x".into(),
        },
    );
    assert_eq!(r.error, CsError::Access);
    let r = h.set(2, "runtime.x", Value::U8(2));
    assert_eq!(r.error, CsError::Access);
    assert!(r.reason().contains("read-only"));
    let r = h.set(2, "totem.netmtu", Value::U32(9000));
    assert_eq!(
        (r.error, r.reason()),
        (CsError::NotSupported, "needs a restart")
    );
    let r = h.set(2, "test.k", Value::Binary(vec![0; (256 << 10) + 1]));
    assert_eq!(r.error, CsError::TooBig);
    assert_eq!(h.set(2, "test.k", Value::U8(1)).error, CsError::Ok);
    assert_eq!(h.cmap.stats().refused_writes, 5);
    assert!(!h.cmap.grant_write(ConnId(99)));
}

#[test]
fn trackers_get_every_change_as_events_including_the_nodes_own() {
    let mut h = Harness::new(CmapConfig::default());
    h.connect(1, true);
    h.connect(2, false);
    let r = h.call(
        2,
        &Request::TrackAdd {
            flags: TrackFlags::ALL_PREFIX.bits(),
            key: "test.".into(),
        },
    );
    let ResponseBody::Handle(handle) = r.body else {
        panic!("{r:?}")
    };
    h.set(1, "test.key", Value::U32(5));
    h.set(1, "test.key", Value::U32(5));
    h.set(1, "test.key", Value::U32(6));
    h.set(1, "other.key", Value::U32(6));
    h.call(
        1,
        &Request::Delete {
            key: "test.key".into(),
        },
    );
    h.cmap.update(&mut h.out, |db| {
        db.set_internal("test.node", "from the node".into())
            .unwrap();
    });
    let evs = h.events(2);
    let seen: Vec<(ChangeKind, String)> = evs
        .iter()
        .map(|e| match e {
            CmapEvent::Changed {
                handle: hd,
                kind,
                key,
                ..
            } => {
                assert_eq!(*hd, handle);
                (*kind, key.clone())
            }
            CmapEvent::Lost { .. } => panic!(),
        })
        .collect();
    assert_eq!(
        seen,
        [
            (ChangeKind::Add, "test.key".to_string()),
            (ChangeKind::Modify, "test.key".to_string()),
            (ChangeKind::Delete, "test.key".to_string()),
            (ChangeKind::Add, "test.node".to_string()),
        ]
    );
    assert!(matches!(
        &evs[1],
        CmapEvent::Changed {
            new: Some(Value::U32(6)),
            old: Some(Value::U32(5)),
            ..
        }
    ));
    // Someone else's handle cannot be deleted; one's own can, and then nothing more comes.
    let r = h.call(1, &Request::TrackDelete { handle });
    assert_eq!(r.error, CsError::BadHandle);
    assert_eq!(
        h.call(2, &Request::TrackDelete { handle }).error,
        CsError::Ok
    );
    h.set(1, "test.key", Value::U32(7));
    assert!(h.events(2).is_empty());
    // Bad flags.
    let r = h.call(
        2,
        &Request::TrackAdd {
            flags: 8,
            key: "test.".into(),
        },
    );
    assert_eq!(r.error, CsError::BadFlags);
}

#[test]
fn a_slow_tracker_is_bounded_and_told_what_it_lost() {
    let mut h = Harness::new(CmapConfig {
        track_limits: TrackLimits {
            events: 2,
            bytes: 1 << 20,
        },
        max_trackers_per_conn: 1,
        ..CmapConfig::default()
    });
    h.connect(1, true);
    let r = h.call(
        1,
        &Request::TrackAdd {
            flags: 15,
            key: "".into(),
        },
    );
    assert_eq!(r.error, CsError::Ok);
    let r = h.call(
        1,
        &Request::TrackAdd {
            flags: 15,
            key: "x".into(),
        },
    );
    assert_eq!(r.error, CsError::NoResources);
    // The node writes many keys in one update: the tracker keeps two and counts the rest.
    h.cmap.update(&mut h.out, |db| {
        for i in 0..10u32 {
            db.set_internal("test.n", Value::U32(i)).unwrap();
        }
    });
    let evs = h.events(1);
    assert_eq!(evs.len(), 3);
    assert!(matches!(evs[2], CmapEvent::Lost { count: 8, .. }));
    assert_eq!(h.cmap.stats().lost_notices, 1);
}

#[test]
fn listing_pages_in_key_order() {
    let mut h = Harness::new(CmapConfig {
        list_page_bytes: 40,
        ..CmapConfig::default()
    });
    h.connect(1, false);
    h.cmap.update(&mut h.out, |db| {
        for k in ["b.2", "a.1", "b.1", "b.3", "c.1", "b.10"] {
            db.set_internal(k, Value::String(k.to_string())).unwrap();
        }
    });
    let mut keys = Vec::new();
    let mut after = String::new();
    let mut pages = 0;
    loop {
        let r = h.call(
            1,
            &Request::List {
                prefix: "b.".into(),
                after: after.clone(),
                max: 1000,
            },
        );
        let ResponseBody::Entries { more, entries } = r.body else {
            panic!("{r:?}")
        };
        pages += 1;
        keys.extend(entries.iter().map(|(k, _)| k.clone()));
        after = keys.last().cloned().unwrap_or_default();
        if !more {
            break;
        }
    }
    assert_eq!(keys, ["b.1", "b.10", "b.2", "b.3"]);
    assert!(pages > 1, "40-byte pages hold two entries at most");
    let r = h.call(
        1,
        &Request::List {
            prefix: "b.".into(),
            after: String::new(),
            max: 1,
        },
    );
    assert!(
        matches!(r.body, ResponseBody::Entries { more: true, ref entries } if entries.len() == 1)
    );
    let r = h.call(
        1,
        &Request::List {
            prefix: "bad prefix".into(),
            after: String::new(),
            max: 1,
        },
    );
    assert_eq!(r.error, CsError::InvalidParam);
}

#[test]
fn garbage_is_answered_and_finalize_closes() {
    let mut h = Harness::new(CmapConfig::default());
    h.connect(1, true);
    for (garbage, want) in [
        (&b""[..], CsError::MessageError),
        (b"\x02\x01", CsError::Version),
        (b"\x01\x63", CsError::NotSupported),
        (b"\x01\x01\x09abc", CsError::MessageError),
        (&[0xffu8; 300][..], CsError::Version),
    ] {
        let r = h.raw(1, garbage);
        assert_eq!(r.error, want, "{garbage:?}");
        assert!(!r.reason().is_empty());
    }
    assert_eq!(h.cmap.stats().bad_requests, 5);
    assert_eq!(h.call(1, &Request::Finalize).error, CsError::Ok);
    assert!(matches!(
        h.out.pop_action(),
        Some(Action::Close { conn: ConnId(1) })
    ));
    let r = h.call(1, &Request::Get { key: "abc".into() });
    assert_eq!(r.error, CsError::BadHandle);
    assert_eq!(h.raw(1, b"").code, RequestCode::Unknown(0xff));
}

#[test]
fn disconnect_drops_the_connections_trackers() {
    let mut h = Harness::new(CmapConfig::default());
    h.connect(1, true);
    h.call(
        1,
        &Request::TrackAdd {
            flags: 15,
            key: "".into(),
        },
    );
    assert_eq!(h.cmap.db().trackers(), 1);
    h.cmap.on_disconnect(ConnId(1), &mut h.out);
    assert_eq!(h.cmap.db().trackers(), 0);
    assert_eq!(h.cmap.connections(), 0);
    // Sync is a no-op that completes at once; deliveries are ignored and counted.
    h.cmap
        .sync_init(&[], &[NodeId(1)], RingId::new(NodeId(1), 4), &mut h.out);
    assert_eq!(h.cmap.sync_process(&mut h.out), SyncProgress::Done);
    assert_eq!(h.out.multicasts_len(), 0);
}
