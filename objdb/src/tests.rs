//! objdb's unit and property tests: key names, typed round trips, text parsing, read-only
//! rules, iteration order and paging against a model, every change reported to every
//! tracker that watches it (replaying a tracker's changes rebuilds the database), and the
//! bounded tracker queue.

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use alloc::{format, vec};

use proptest::prelude::*;

use crate::*;

fn one_of_each() -> Vec<Value> {
    vec![
        Value::I8(-5),
        Value::U8(250),
        Value::I16(-30_000),
        Value::U16(65_000),
        Value::I32(-2_000_000_000),
        Value::U32(3650),
        Value::I64(i64::MIN),
        Value::U64(u64::MAX),
        Value::Float(1.5),
        Value::Double(-0.25),
        Value::String("r(0) ip(127.0.0.1)".into()),
        Value::Binary(vec![0, 0xff, 0x10]),
    ]
}

#[test]
fn key_names_follow_corosyncs_rules() {
    assert_eq!(check_key("totem.token"), Ok(()));
    assert_eq!(check_key("a/b:c-d_e.9"), Ok(()));
    assert_eq!(check_key("ab"), Err(KeyError::TooShort(2)));
    assert_eq!(check_key(&"k".repeat(256)), Err(KeyError::TooLong(256)));
    assert_eq!(check_key(&"k".repeat(255)), Ok(()));
    assert_eq!(
        check_key("totem token"),
        Err(KeyError::InvalidChar { at: 5 })
    );
    assert_eq!(check_key("tötem"), Err(KeyError::InvalidChar { at: 1 }));
    assert_eq!(check_prefix(""), Ok(()));
    assert_eq!(check_prefix("t"), Ok(()));
    assert!(format!("{}", KeyError::InvalidChar { at: 3 }).contains("allowed"));
}

#[test]
fn every_type_round_trips_through_the_db_and_through_text() {
    let mut db = Db::new();
    for (i, v) in one_of_each().into_iter().enumerate() {
        let key = format!("test.k{i:02}");
        db.set(&key, v.clone()).unwrap();
        assert_eq!(db.get(&key), Some(&v));
        let text = v.to_string();
        assert_eq!(Value::parse(v.value_type(), &text), Ok(v.clone()), "{text}");
        assert_eq!(
            ValueType::from_code(v.value_type().code()),
            Some(v.value_type())
        );
        assert_eq!(
            ValueType::from_name(v.value_type().name()),
            Some(v.value_type())
        );
    }
    let codes: Vec<u8> = ValueType::ALL.iter().map(|t| t.code()).collect();
    assert_eq!(codes, (1..=12).collect::<Vec<u8>>());
    assert_eq!(ValueType::from_code(0), None);
    assert_eq!(ValueType::from_code(13), None);
    assert_eq!(u32::try_from(Value::U32(7)), Ok(7));
    assert_eq!(u32::try_from(Value::U64(7)), Err(ValueType::U64));
}

#[test]
fn bad_text_is_refused_with_corosyncs_wording() {
    let e = Value::parse(ValueType::U32, "abc").unwrap_err();
    assert_eq!(e.to_string(), "abc is not valid u32 type value");
    assert!(Value::parse(ValueType::U8, "256").is_err());
    assert!(Value::parse(ValueType::I8, "-129").is_err());
    assert!(Value::parse(ValueType::Binary, "abc").is_err());
    assert!(Value::parse(ValueType::Binary, "zz").is_err());
    assert_eq!(
        Value::parse(ValueType::Binary, ""),
        Ok(Value::Binary(vec![]))
    );
    assert_eq!(
        Value::parse(ValueType::String, " spaced "),
        Ok(Value::String(" spaced ".into()))
    );
}

#[test]
fn floats_compare_bitwise_so_rewrites_are_no_change() {
    let mut db = Db::new();
    let t = db.track("test.f", TrackFlags::ALL).unwrap();
    db.set("test.f", Value::Double(f64::NAN)).unwrap();
    db.set("test.f", Value::Double(f64::NAN)).unwrap();
    db.set("test.f", Value::Double(-0.0)).unwrap();
    db.set("test.f", Value::Double(0.0)).unwrap();
    let kinds: Vec<ChangeKind> = core::iter::from_fn(|| db.poll(t))
        .map(|n| match n {
            Notice::Change(c) => c.kind,
            Notice::Lost(_) => panic!("nothing lost"),
        })
        .collect();
    assert_eq!(
        kinds,
        [ChangeKind::Add, ChangeKind::Modify, ChangeKind::Modify]
    );
}

#[test]
fn read_only_keys_refuse_client_writes_but_not_the_owner() {
    let mut db = Db::new();
    db.set_read_only("runtime.", true, true).unwrap();
    db.set_read_only("totem.cluster_name", false, true).unwrap();
    let t = db.track("runtime.", TrackFlags::ALL_PREFIX).unwrap();
    assert_eq!(db.set("runtime.x", Value::U8(1)), Err(Error::ReadOnly));
    assert_eq!(
        db.set("totem.cluster_name", "x".into()),
        Err(Error::ReadOnly)
    );
    assert_eq!(db.set("totem.cluster_name.sub", "x".into()), Ok(()));
    db.set_internal("runtime.x", Value::U8(1)).unwrap();
    assert_eq!(db.inc("runtime.x"), Err(Error::ReadOnly));
    assert_eq!(db.delete("runtime.x"), Err(Error::ReadOnly));
    assert_eq!(db.pending(t), 1);
    db.set_read_only("runtime.", true, false).unwrap();
    assert_eq!(db.delete("runtime.x"), Ok(Value::U8(1)));
    assert_eq!(db.pending(t), 2);
    assert_eq!(
        db.set("ab", Value::U8(1)),
        Err(Error::InvalidKey(KeyError::TooShort(2)))
    );
}

#[test]
fn inc_and_dec_wrap_and_refuse_non_integers() {
    let mut db = Db::new();
    db.set("test.u8", Value::U8(255)).unwrap();
    assert_eq!(db.inc("test.u8"), Ok(Value::U8(0)));
    assert_eq!(db.dec("test.u8"), Ok(Value::U8(255)));
    db.set("test.i64", Value::I64(i64::MIN)).unwrap();
    assert_eq!(db.dec("test.i64"), Ok(Value::I64(i64::MAX)));
    db.set("test.s", "x".into()).unwrap();
    assert_eq!(db.inc("test.s"), Err(Error::NotInteger(ValueType::String)));
    assert_eq!(db.inc("test.none"), Err(Error::NotExist));
    assert_eq!(db.delete("test.none"), Err(Error::NotExist));
}

#[test]
fn trackers_see_exact_keys_or_prefixes_and_only_the_kinds_asked() {
    let mut db = Db::new();
    let exact = db.track("test.key", TrackFlags::ALL).unwrap();
    let adds = db
        .track("test.", TrackFlags::ADD.union(TrackFlags::PREFIX))
        .unwrap();
    db.set("test.key", Value::U32(5)).unwrap();
    db.set("test.key", Value::U32(6)).unwrap();
    db.set("test.other", "hello".into()).unwrap();
    db.delete("test.key").unwrap();
    db.set("test.keyx", Value::U8(1)).unwrap();
    let got: Vec<(ChangeKind, String, Option<Value>, Option<Value>)> =
        core::iter::from_fn(|| db.poll(exact))
            .map(|n| match n {
                Notice::Change(c) => (c.kind, c.key, c.new, c.old),
                Notice::Lost(_) => panic!(),
            })
            .collect();
    assert_eq!(
        got,
        [
            (
                ChangeKind::Add,
                "test.key".into(),
                Some(Value::U32(5)),
                None
            ),
            (
                ChangeKind::Modify,
                "test.key".into(),
                Some(Value::U32(6)),
                Some(Value::U32(5))
            ),
            (
                ChangeKind::Delete,
                "test.key".into(),
                None,
                Some(Value::U32(6))
            ),
        ]
    );
    let added: Vec<String> = core::iter::from_fn(|| db.poll(adds))
        .map(|n| match n {
            Notice::Change(c) => c.key,
            Notice::Lost(_) => panic!(),
        })
        .collect();
    assert_eq!(added, ["test.key", "test.other", "test.keyx"]);
    assert_eq!(db.untrack(exact), Ok(()));
    assert_eq!(db.untrack(exact), Err(Error::UnknownTracker(exact)));
    assert_eq!(db.poll(exact), None);
    assert!(TrackFlags::from_bits(8).is_none());
    assert!(TrackFlags::from_bits(16 | 1).is_none());
    assert_eq!(TrackFlags::from_bits(15), Some(TrackFlags::ALL_PREFIX));
}

#[test]
fn a_full_tracker_drops_newer_changes_and_says_how_many() {
    let mut db = Db::with_limits(TrackLimits {
        events: 3,
        bytes: 1 << 20,
    });
    let t = db.track("", TrackFlags::ALL_PREFIX).unwrap();
    for i in 0..10u32 {
        db.set("test.n", Value::U32(i)).unwrap();
    }
    assert_eq!(db.pending(t), 4);
    let notices: Vec<Notice> = core::iter::from_fn(|| db.poll(t)).collect();
    assert_eq!(notices.len(), 4);
    assert_eq!(notices[3], Notice::Lost(7));
    // The queue works again after the loss was reported.
    db.set("test.n", Value::U32(99)).unwrap();
    assert!(matches!(db.poll(t), Some(Notice::Change(c)) if c.new == Some(Value::U32(99))));
    assert_eq!(db.poll(t), None);
}

// ---- properties ----

/// An operation of the property tests, on a small key space so that keys collide.
#[derive(Debug, Clone)]
enum Op {
    Set(String, Value),
    Delete(String),
    Inc(String),
    Dec(String),
    DeletePrefix(String),
}

fn key() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "abc",
        "abc.d",
        "abc.e",
        "abd",
        "runtime.x",
        "totem.token",
        "totem.tok",
        "zzz",
        "a.b.c",
    ])
    .prop_map(ToString::to_string)
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i8>().prop_map(Value::I8),
        any::<u8>().prop_map(Value::U8),
        any::<i16>().prop_map(Value::I16),
        any::<u16>().prop_map(Value::U16),
        any::<i32>().prop_map(Value::I32),
        (0u32..4).prop_map(Value::U32),
        any::<i64>().prop_map(Value::I64),
        any::<u64>().prop_map(Value::U64),
        any::<f32>().prop_map(Value::Float),
        any::<f64>().prop_map(Value::Double),
        "[a-c]{0,3}".prop_map(Value::String),
        prop::collection::vec(any::<u8>(), 0..4).prop_map(Value::Binary),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (key(), value()).prop_map(|(k, v)| Op::Set(k, v)),
        2 => key().prop_map(Op::Delete),
        1 => key().prop_map(Op::Inc),
        1 => key().prop_map(Op::Dec),
        1 => prop::sample::select(vec!["", "ab", "abc.", "totem."])
            .prop_map(|p| Op::DeletePrefix(p.to_string())),
    ]
}

fn apply(db: &mut Db, op: &Op) {
    match op {
        Op::Set(k, v) => drop(db.set(k, v.clone())),
        Op::Delete(k) => drop(db.delete(k)),
        Op::Inc(k) => drop(db.inc(k)),
        Op::Dec(k) => drop(db.dec(k)),
        Op::DeletePrefix(p) => drop(db.delete_prefix_internal(p)),
    }
}

fn snapshot(db: &Db) -> BTreeMap<String, Value> {
    db.iter_prefix("")
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

proptest! {
    /// Iteration is in key order, complete for the prefix, and paging with `iter_after`
    /// from any key yields the same sequence.
    #[test]
    fn iteration_is_in_key_order_and_pages_resume(
        keys in prop::collection::btree_set("[a-c]{1,2}(\\.[a-c]{1,2}){0,2}", 0..40),
        prefix in "[a-c]{0,2}\\.?",
        page in 1usize..5,
    ) {
        let mut db = Db::new();
        for k in &keys {
            let k = format!("key{k}");
            db.set_internal(&k, Value::String(k.clone())).unwrap();
        }
        let prefix = format!("key{prefix}");
        let want: Vec<String> = keys
            .iter()
            .map(|k| format!("key{k}"))
            .filter(|k| k.starts_with(&prefix))
            .collect::<alloc::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let got: Vec<String> = db.iter_prefix(&prefix).map(|(k, _)| k.to_string()).collect();
        prop_assert_eq!(&got, &want);
        let mut paged = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let chunk: Vec<String> = db
                .iter_after(&prefix, after.as_deref())
                .take(page)
                .map(|(k, _)| k.to_string())
                .collect();
            if chunk.is_empty() {
                break;
            }
            after = chunk.last().cloned();
            paged.extend(chunk);
        }
        prop_assert_eq!(paged, want);
    }

    /// Every change is reported, in order, with the right old and new values: replaying a
    /// catch-all tracker's changes on the initial state rebuilds the final state, and a
    /// prefix tracker sees exactly the catch-all's changes under its prefix.
    #[test]
    fn every_change_is_tracked(
        initial in prop::collection::vec((key(), value()), 0..6),
        ops in prop::collection::vec(op(), 0..60),
    ) {
        let mut db = Db::new();
        db.set_read_only("runtime.", true, true).unwrap();
        for (k, v) in &initial {
            db.set_internal(k, v.clone()).unwrap();
        }
        let mut model = snapshot(&db);
        let all = db.track("", TrackFlags::ALL_PREFIX).unwrap();
        let totem = db.track("totem.", TrackFlags::ALL_PREFIX).unwrap();
        for op in &ops {
            let before = snapshot(&db);
            apply(&mut db, op);
            if matches!(op, Op::Set(k, _) | Op::Delete(k) | Op::Inc(k) | Op::Dec(k) if k.starts_with("runtime.")) {
                prop_assert_eq!(&before, &snapshot(&db), "read-only key written");
            }
        }
        let mut under_totem = Vec::new();
        while let Some(n) = db.poll(all) {
            let Notice::Change(c) = n else { panic!("unbounded enough: nothing lost") };
            prop_assert_eq!(model.get(&c.key), c.old.as_ref(), "old value of {}", c.key);
            match c.kind {
                ChangeKind::Add => prop_assert!(c.old.is_none() && c.new.is_some()),
                ChangeKind::Modify => prop_assert!(c.old.is_some() && c.new != c.old),
                ChangeKind::Delete => prop_assert!(c.new.is_none()),
            }
            match &c.new {
                Some(v) => model.insert(c.key.clone(), v.clone()),
                None => model.remove(&c.key),
            };
            if c.key.starts_with("totem.") {
                under_totem.push(c);
            }
        }
        prop_assert_eq!(model, snapshot(&db));
        let seen: Vec<Change> = core::iter::from_fn(|| db.poll(totem))
            .map(|n| match n { Notice::Change(c) => c, Notice::Lost(_) => panic!() })
            .collect();
        prop_assert_eq!(seen, under_totem);
    }

    /// A tracker never holds more than its limits, whatever is written; what it reports
    /// before a loss is the exact beginning of what an unbounded tracker reports.
    #[test]
    fn tracker_memory_is_bounded(
        ops in prop::collection::vec(op(), 0..80),
        events in 1usize..6,
        bytes in 1usize..40,
    ) {
        let limits = TrackLimits { events, bytes };
        let mut db = Db::with_limits(limits);
        let small = db.track("", TrackFlags::ALL_PREFIX).unwrap();
        let mut reference = Db::with_limits(TrackLimits { events: usize::MAX, bytes: usize::MAX });
        let big = reference.track("", TrackFlags::ALL_PREFIX).unwrap();
        for op in &ops {
            apply(&mut db, op);
            apply(&mut reference, op);
            prop_assert!(db.pending_bytes(small) <= bytes);
            prop_assert!(db.pending(small) <= events + 1);
        }
        let mut got = Vec::new();
        let mut lost = 0;
        while let Some(n) = db.poll(small) {
            match n {
                Notice::Change(c) => got.push(c),
                Notice::Lost(k) => lost = k,
            }
        }
        let all: Vec<Change> = core::iter::from_fn(|| reference.poll(big))
            .map(|n| match n { Notice::Change(c) => c, Notice::Lost(_) => panic!() })
            .collect();
        prop_assert_eq!(got.len() as u64 + lost, all.len() as u64);
        prop_assert_eq!(&got[..], &all[..got.len()]);
    }
}
