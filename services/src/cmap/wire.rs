//! cmap's wire formats: client requests, replies and events over the IPC. All follow
//! [`crate::wire`]'s conventions (version byte, code byte, big-endian, counted lists, no
//! trailing bytes). Nothing of cmap travels on the ring (see [`crate::cmap`]).
//!
//! ```text
//! request   01 code | body                          code: RequestCode
//! reply     01 code | error u8 | body if OK         error: CsError
//!                              | reason if not OK   (why, for people: len u16 | UTF-8)
//! event     01 code | body                          code: EventCode
//!
//! key       len u8 | UTF-8 bytes (objdb checks the name: 3..=255 of [a-zA-Z0-9._/:-])
//! value     type u8 (1..=12, cmap's) | len u32 | bytes
//!             integers and flt/dbl bits big-endian in their own width; str UTF-8; bin raw
//! opt value present u8 (0 or 1) | value if 1
//!
//! Finalize      —                                reply: —
//! Get           key                              reply: value
//! Set           key | value                      reply: —
//! Delete        key                              reply: —
//! Inc / Dec     key                              reply: value (the new one)
//! List          prefix key | after key | max u32 reply: more u8 | count u32 | (key | value) × count
//!                 (after: resume after this key; empty = from the start)
//! TrackAdd      flags u8 | key                   reply: handle u64
//!                 (flags: corosync's DELETE 1 | MODIFY 2 | ADD 4 | PREFIX 8)
//! TrackDelete   handle u64                       reply: —
//!
//! Changed event handle u64 | kind u8 (ADD 4, MODIFY 2, DELETE 1) | key | opt new | opt old
//! Lost event    handle u64 | count u64  (that many changes were dropped: re-read)
//! ```
//!
//! The reply to a request that cannot be decoded carries the request's code byte (0xff if
//! there is none) and an error: `VERSION` for a wrong version byte, `NOT_SUPPORTED` for an
//! unknown code, `MESSAGE_ERROR` otherwise.

use alloc::string::String;
use alloc::vec::Vec;

use bytes::Bytes;
use objdb::{ChangeKind, Value, ValueType};

use crate::cpg::wire::CsError;
use crate::wire::{self, DecodeError, Reader, WIRE_VERSION, enum_with_unknown, put_count};

enum_with_unknown! {
    /// cmap request code points.
    pub enum RequestCode(u8) {
        /// Close the session (no events after the reply).
        Finalize = 0,
        /// Read a key.
        Get = 1,
        /// Write a key.
        Set = 2,
        /// Delete a key.
        Delete = 3,
        /// Add one to an integer key.
        Inc = 4,
        /// Subtract one from an integer key.
        Dec = 5,
        /// A page of the keys under a prefix, in key order.
        List = 6,
        /// Start tracking a key or prefix.
        TrackAdd = 7,
        /// Stop a tracker.
        TrackDelete = 8,
    }
}

enum_with_unknown! {
    /// cmap event code points.
    pub enum EventCode(u8) {
        /// A tracked key changed.
        Changed = 0x40,
        /// A tracker's queue overflowed: changes were dropped.
        Lost = 0x41,
    }
}

/// A decoded client request.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// Close the session.
    Finalize,
    /// Read `key`.
    Get {
        /// The key.
        key: String,
    },
    /// Write `value` to `key`.
    Set {
        /// The key.
        key: String,
        /// The value.
        value: Value,
    },
    /// Delete `key`.
    Delete {
        /// The key.
        key: String,
    },
    /// Increment `key`.
    Inc {
        /// The key.
        key: String,
    },
    /// Decrement `key`.
    Dec {
        /// The key.
        key: String,
    },
    /// Up to `max` keys under `prefix`, after key `after` (empty: from the start).
    List {
        /// The prefix (empty: every key).
        prefix: String,
        /// Resume after this key (empty: from the start).
        after: String,
        /// Most entries wanted in this page.
        max: u32,
    },
    /// Track `key` (a prefix with the PREFIX flag).
    TrackAdd {
        /// corosync's `CMAP_TRACK_*` bits, as sent (checked by the engine).
        flags: u8,
        /// The key or prefix.
        key: String,
    },
    /// Stop tracker `handle`.
    TrackDelete {
        /// The handle from the TrackAdd reply.
        handle: u64,
    },
}

impl Request {
    /// The request's code point.
    pub fn code(&self) -> RequestCode {
        match self {
            Self::Finalize => RequestCode::Finalize,
            Self::Get { .. } => RequestCode::Get,
            Self::Set { .. } => RequestCode::Set,
            Self::Delete { .. } => RequestCode::Delete,
            Self::Inc { .. } => RequestCode::Inc,
            Self::Dec { .. } => RequestCode::Dec,
            Self::List { .. } => RequestCode::List,
            Self::TrackAdd { .. } => RequestCode::TrackAdd,
            Self::TrackDelete { .. } => RequestCode::TrackDelete,
        }
    }

    /// Decodes a request.
    ///
    /// # Errors
    /// A [`DecodeError`] for anything but exactly one well-formed request.
    pub fn parse(bytes: &[u8]) -> wire::Result<Self> {
        let mut r = Reader::new(bytes);
        r.version()?;
        let req = match RequestCode::from(r.u8()?) {
            RequestCode::Finalize => Self::Finalize,
            RequestCode::Get => Self::Get { key: key(&mut r)? },
            RequestCode::Set => Self::Set {
                key: key(&mut r)?,
                value: value(&mut r)?,
            },
            RequestCode::Delete => Self::Delete { key: key(&mut r)? },
            RequestCode::Inc => Self::Inc { key: key(&mut r)? },
            RequestCode::Dec => Self::Dec { key: key(&mut r)? },
            RequestCode::List => Self::List {
                prefix: key(&mut r)?,
                after: key(&mut r)?,
                max: r.u32()?,
            },
            RequestCode::TrackAdd => Self::TrackAdd {
                flags: r.u8()?,
                key: key(&mut r)?,
            },
            RequestCode::TrackDelete => Self::TrackDelete { handle: r.u64()? },
            RequestCode::Unknown(c) => return Err(DecodeError::UnknownCode(c)),
        };
        r.finish()?;
        Ok(req)
    }

    /// Encodes the request.
    ///
    /// # Errors
    /// [`DecodeError::InvalidValue`] for a key longer than 255 bytes (it could not be
    /// decoded), [`DecodeError::TooManyEntries`] for a value above 4 GiB.
    pub fn emit(&self) -> wire::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(32);
        out.push(WIRE_VERSION);
        out.push(self.code().into());
        match self {
            Self::Finalize => {}
            Self::Get { key } | Self::Delete { key } | Self::Inc { key } | Self::Dec { key } => {
                put_key(&mut out, key)?;
            }
            Self::Set { key, value } => {
                put_key(&mut out, key)?;
                put_value(&mut out, value)?;
            }
            Self::List { prefix, after, max } => {
                put_key(&mut out, prefix)?;
                put_key(&mut out, after)?;
                out.extend_from_slice(&max.to_be_bytes());
            }
            Self::TrackAdd { flags, key } => {
                out.push(*flags);
                put_key(&mut out, key)?;
            }
            Self::TrackDelete { handle } => out.extend_from_slice(&handle.to_be_bytes()),
        }
        Ok(out)
    }
}

/// The body of a reply.
#[derive(Debug, Clone, PartialEq)]
pub enum ResponseBody {
    /// Nothing (Finalize, Set, Delete, TrackDelete).
    None,
    /// Get, Inc, Dec: a value.
    Value(Value),
    /// List: a page of entries in key order, and whether more follow.
    Entries {
        /// Entries after the last one of this page exist.
        more: bool,
        /// The page.
        entries: Vec<(String, Value)>,
    },
    /// TrackAdd: the tracker's handle.
    Handle(u64),
    /// Any error: why, in words (may be empty).
    Refused(String),
}

/// A reply to a request.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// The request's code.
    pub code: RequestCode,
    /// The outcome.
    pub error: CsError,
    /// What it returns; [`ResponseBody::Refused`] when `error` is not `Ok`.
    pub body: ResponseBody,
}

impl Response {
    /// A successful reply.
    pub fn ok(code: RequestCode, body: ResponseBody) -> Self {
        Self {
            code,
            error: CsError::Ok,
            body,
        }
    }

    /// An error reply saying why.
    pub fn error(code: RequestCode, error: CsError, reason: impl Into<String>) -> Self {
        Self {
            code,
            error,
            body: ResponseBody::Refused(reason.into()),
        }
    }

    /// The reason of an error reply ("" for a success).
    pub fn reason(&self) -> &str {
        match &self.body {
            ResponseBody::Refused(r) => r,
            _ => "",
        }
    }

    /// Decodes a reply.
    ///
    /// # Errors
    /// A [`DecodeError`] for anything but exactly one well-formed reply.
    pub fn parse(bytes: &[u8]) -> wire::Result<Self> {
        let mut r = Reader::new(bytes);
        r.version()?;
        let code = RequestCode::from(r.u8()?);
        let error = CsError::from(r.u8()?);
        let body = if error != CsError::Ok {
            let len = usize::from(r.u16()?);
            ResponseBody::Refused(utf8(r.take(len)?, "reply.reason")?)
        } else {
            match code {
                RequestCode::Get | RequestCode::Inc | RequestCode::Dec => {
                    ResponseBody::Value(value(&mut r)?)
                }
                RequestCode::List => {
                    let more = flag(&mut r, "list.more")?;
                    // An entry takes at least 1 (key length) + 5 (type, length) bytes.
                    let n = r.count("list.entries", 6)?;
                    let mut entries = Vec::with_capacity(n);
                    for _ in 0..n {
                        entries.push((key(&mut r)?, value(&mut r)?));
                    }
                    ResponseBody::Entries { more, entries }
                }
                RequestCode::TrackAdd => ResponseBody::Handle(r.u64()?),
                _ => ResponseBody::None,
            }
        };
        r.finish()?;
        Ok(Self { code, error, body })
    }

    /// Encodes the reply. A reason longer than 65535 bytes is cut at a character boundary.
    pub fn emit(&self) -> Bytes {
        let mut out = Vec::with_capacity(16);
        out.push(WIRE_VERSION);
        out.push(self.code.into());
        out.push(self.error.into());
        if self.error != CsError::Ok {
            let mut reason = self.reason();
            while reason.len() > usize::from(u16::MAX) {
                let mut end = usize::from(u16::MAX);
                while !reason.is_char_boundary(end) {
                    end -= 1;
                }
                reason = &reason[..end];
            }
            // Cut to at most u16::MAX bytes just above.
            out.extend_from_slice(&(reason.len() as u16).to_be_bytes());
            out.extend_from_slice(reason.as_bytes());
            return Bytes::from(out);
        }
        // Keys and values in a reply come from the database, whose keys are at most 255
        // bytes, and whose values came through requests that fit one IPC record: neither
        // encoding can fail. Should one ever, the reply says so instead of lying.
        let ok = match &self.body {
            ResponseBody::None | ResponseBody::Refused(_) => Ok(()),
            ResponseBody::Value(v) => put_value(&mut out, v),
            ResponseBody::Entries { more, entries } => {
                out.push(u8::from(*more));
                put_count(&mut out, entries.len());
                entries.iter().try_for_each(|(k, v)| {
                    put_key(&mut out, k).and_then(|()| put_value(&mut out, v))
                })
            }
            ResponseBody::Handle(h) => {
                out.extend_from_slice(&h.to_be_bytes());
                Ok(())
            }
        };
        match ok {
            Ok(()) => Bytes::from(out),
            Err(e) => Self::error(
                self.code,
                CsError::Library,
                alloc::format!("the daemon could not encode its reply: {e}"),
            )
            .emit(),
        }
    }
}

/// An event for a client.
#[derive(Debug, Clone, PartialEq)]
pub enum CmapEvent {
    /// A tracked key changed.
    Changed {
        /// The tracker's handle.
        handle: u64,
        /// What happened.
        kind: ChangeKind,
        /// The key.
        key: String,
        /// The value after (none for a delete).
        new: Option<Value>,
        /// The value before (none for an add).
        old: Option<Value>,
    },
    /// The tracker's queue was full: `count` changes were dropped after the last one
    /// reported.
    Lost {
        /// The tracker's handle.
        handle: u64,
        /// Changes dropped.
        count: u64,
    },
}

impl CmapEvent {
    /// Decodes an event.
    ///
    /// # Errors
    /// A [`DecodeError`] for anything but exactly one well-formed event.
    pub fn parse(bytes: &[u8]) -> wire::Result<Self> {
        let mut r = Reader::new(bytes);
        r.version()?;
        let ev = match EventCode::from(r.u8()?) {
            EventCode::Changed => {
                let handle = r.u64()?;
                let code = r.u8()?;
                let kind =
                    ChangeKind::from_code(code).ok_or_else(|| DecodeError::InvalidValue {
                        field: "changed.kind",
                        value: u64::from(code),
                    })?;
                let key = key(&mut r)?;
                let new = opt_value(&mut r)?;
                let old = opt_value(&mut r)?;
                Self::Changed {
                    handle,
                    kind,
                    key,
                    new,
                    old,
                }
            }
            EventCode::Lost => Self::Lost {
                handle: r.u64()?,
                count: r.u64()?,
            },
            EventCode::Unknown(c) => return Err(DecodeError::UnknownCode(c)),
        };
        r.finish()?;
        Ok(ev)
    }

    /// Encodes the event.
    ///
    /// # Errors
    /// As [`Request::emit`].
    pub fn emit(&self) -> wire::Result<Bytes> {
        let mut out = Vec::with_capacity(32);
        out.push(WIRE_VERSION);
        match self {
            Self::Changed {
                handle,
                kind,
                key,
                new,
                old,
            } => {
                out.push(EventCode::Changed.into());
                out.extend_from_slice(&handle.to_be_bytes());
                out.push(kind.code());
                put_key(&mut out, key)?;
                for v in [new, old] {
                    match v {
                        None => out.push(0),
                        Some(v) => {
                            out.push(1);
                            put_value(&mut out, v)?;
                        }
                    }
                }
            }
            Self::Lost { handle, count } => {
                out.push(EventCode::Lost.into());
                out.extend_from_slice(&handle.to_be_bytes());
                out.extend_from_slice(&count.to_be_bytes());
            }
        }
        Ok(Bytes::from(out))
    }
}

/// Bytes a value takes on the wire.
pub fn value_wire_len(v: &Value) -> usize {
    5 + v.len()
}

fn utf8(bytes: &[u8], field: &'static str) -> wire::Result<String> {
    core::str::from_utf8(bytes)
        .map(String::from)
        .map_err(|e| DecodeError::InvalidValue {
            field,
            value: e.valid_up_to() as u64,
        })
}

fn key(r: &mut Reader<'_>) -> wire::Result<String> {
    let len = usize::from(r.u8()?);
    utf8(r.take(len)?, "key")
}

fn flag(r: &mut Reader<'_>, field: &'static str) -> wire::Result<bool> {
    match r.u8()? {
        0 => Ok(false),
        1 => Ok(true),
        v => Err(DecodeError::InvalidValue {
            field,
            value: u64::from(v),
        }),
    }
}

fn opt_value(r: &mut Reader<'_>) -> wire::Result<Option<Value>> {
    if flag(r, "value.present")? {
        value(r).map(Some)
    } else {
        Ok(None)
    }
}

fn array<const N: usize>(bytes: &[u8]) -> wire::Result<[u8; N]> {
    bytes.try_into().map_err(|_| DecodeError::InvalidValue {
        field: "value.len",
        value: bytes.len() as u64,
    })
}

fn value(r: &mut Reader<'_>) -> wire::Result<Value> {
    let code = r.u8()?;
    let ty = ValueType::from_code(code).ok_or_else(|| DecodeError::InvalidValue {
        field: "value.type",
        value: u64::from(code),
    })?;
    let len = r.u32()?;
    let len = usize::try_from(len).map_err(|_| DecodeError::TooManyEntries {
        field: "value.len",
        count: len,
    })?;
    let b = r.take(len)?;
    Ok(match ty {
        ValueType::I8 => Value::I8(i8::from_be_bytes(array(b)?)),
        ValueType::U8 => Value::U8(u8::from_be_bytes(array(b)?)),
        ValueType::I16 => Value::I16(i16::from_be_bytes(array(b)?)),
        ValueType::U16 => Value::U16(u16::from_be_bytes(array(b)?)),
        ValueType::I32 => Value::I32(i32::from_be_bytes(array(b)?)),
        ValueType::U32 => Value::U32(u32::from_be_bytes(array(b)?)),
        ValueType::I64 => Value::I64(i64::from_be_bytes(array(b)?)),
        ValueType::U64 => Value::U64(u64::from_be_bytes(array(b)?)),
        ValueType::Float => Value::Float(f32::from_bits(u32::from_be_bytes(array(b)?))),
        ValueType::Double => Value::Double(f64::from_bits(u64::from_be_bytes(array(b)?))),
        ValueType::String => Value::String(utf8(b, "value.string")?),
        ValueType::Binary => Value::Binary(b.to_vec()),
    })
}

fn put_key(out: &mut Vec<u8>, key: &str) -> wire::Result<()> {
    let len = u8::try_from(key.len()).map_err(|_| DecodeError::InvalidValue {
        field: "key.len",
        value: key.len() as u64,
    })?;
    out.push(len);
    out.extend_from_slice(key.as_bytes());
    Ok(())
}

fn put_value(out: &mut Vec<u8>, v: &Value) -> wire::Result<()> {
    let len = u32::try_from(v.len()).map_err(|_| DecodeError::TooManyEntries {
        field: "value.len",
        count: u32::MAX,
    })?;
    out.push(v.value_type().code());
    out.extend_from_slice(&len.to_be_bytes());
    match v {
        Value::I8(x) => out.extend_from_slice(&x.to_be_bytes()),
        Value::U8(x) => out.push(*x),
        Value::I16(x) => out.extend_from_slice(&x.to_be_bytes()),
        Value::U16(x) => out.extend_from_slice(&x.to_be_bytes()),
        Value::I32(x) => out.extend_from_slice(&x.to_be_bytes()),
        Value::U32(x) => out.extend_from_slice(&x.to_be_bytes()),
        Value::I64(x) => out.extend_from_slice(&x.to_be_bytes()),
        Value::U64(x) => out.extend_from_slice(&x.to_be_bytes()),
        Value::Float(x) => out.extend_from_slice(&x.to_bits().to_be_bytes()),
        Value::Double(x) => out.extend_from_slice(&x.to_bits().to_be_bytes()),
        Value::String(s) => out.extend_from_slice(s.as_bytes()),
        Value::Binary(b) => out.extend_from_slice(b),
    }
    Ok(())
}

/// The code byte of a request that may not decode (0xff if there is none).
pub(crate) fn raw_request_code(bytes: &[u8]) -> RequestCode {
    RequestCode::from(bytes.get(1).copied().unwrap_or(0xff))
}

/// The reply error for a request that did not decode (as CPG's: `VERSION`,
/// `NOT_SUPPORTED`, else `MESSAGE_ERROR`; cmap has no name-length decode error).
pub(crate) use crate::cpg::wire::decode_error_reply;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::TestRng;
    use alloc::vec;

    fn values() -> Vec<Value> {
        vec![
            Value::I8(-1),
            Value::U8(7),
            Value::I16(-300),
            Value::U16(300),
            Value::I32(-70_000),
            Value::U32(3650),
            Value::I64(-1 << 40),
            Value::U64(1 << 50),
            Value::Float(f32::NAN),
            Value::Double(2.5),
            Value::String("r(0) ip(127.0.0.1)".into()),
            Value::Binary(vec![0, 1, 0xff]),
        ]
    }

    fn requests() -> Vec<Request> {
        let mut v = vec![
            Request::Finalize,
            Request::Get {
                key: "runtime.config.totem.token".into(),
            },
            Request::Delete {
                key: "test.k".into(),
            },
            Request::Inc {
                key: "test.k".into(),
            },
            Request::Dec {
                key: "test.k".into(),
            },
            Request::List {
                prefix: "runtime.".into(),
                after: "runtime.a".into(),
                max: 10,
            },
            Request::TrackAdd {
                flags: 15,
                key: "runtime.members.".into(),
            },
            Request::TrackDelete { handle: 9 },
        ];
        v.extend(values().into_iter().map(|value| Request::Set {
            key: "test.value".into(),
            value,
        }));
        v
    }

    fn responses() -> Vec<Response> {
        let mut v = vec![
            Response::ok(RequestCode::Set, ResponseBody::None),
            Response::ok(RequestCode::TrackAdd, ResponseBody::Handle(42)),
            Response::ok(
                RequestCode::List,
                ResponseBody::Entries {
                    more: true,
                    entries: values()
                        .into_iter()
                        .enumerate()
                        .map(|(i, v)| (alloc::format!("k.{i}"), v))
                        .collect(),
                },
            ),
            Response::error(RequestCode::Set, CsError::Access, "read-only"),
            Response::error(RequestCode::Get, CsError::NotExist, ""),
        ];
        v.extend(
            values()
                .into_iter()
                .map(|x| Response::ok(RequestCode::Get, ResponseBody::Value(x))),
        );
        v
    }

    fn events() -> Vec<CmapEvent> {
        vec![
            CmapEvent::Changed {
                handle: 1,
                kind: ChangeKind::Add,
                key: "test.key".into(),
                new: Some(Value::U32(5)),
                old: None,
            },
            CmapEvent::Changed {
                handle: 1,
                kind: ChangeKind::Modify,
                key: "test.key".into(),
                new: Some(Value::String("x".into())),
                old: Some(Value::U32(5)),
            },
            CmapEvent::Changed {
                handle: u64::MAX,
                kind: ChangeKind::Delete,
                key: "test.key".into(),
                new: None,
                old: Some(Value::Binary(vec![])),
            },
            CmapEvent::Lost {
                handle: 3,
                count: 17,
            },
        ]
    }

    #[test]
    fn every_message_round_trips() {
        for req in requests() {
            let b = req.emit().unwrap();
            assert_eq!(Request::parse(&b), Ok(req.clone()), "{req:?}");
        }
        for resp in responses() {
            let b = resp.emit();
            assert_eq!(Response::parse(&b), Ok(resp.clone()), "{resp:?}");
        }
        for ev in events() {
            let b = ev.emit().unwrap();
            assert_eq!(CmapEvent::parse(&b), Ok(ev.clone()), "{ev:?}");
        }
    }

    #[test]
    fn golden_bytes_of_a_set_and_its_error_reply() {
        let set = Request::Set {
            key: "a.b".into(),
            value: Value::U32(3650),
        };
        assert_eq!(
            set.emit().unwrap(),
            [1, 2, 3, b'a', b'.', b'b', 6, 0, 0, 0, 4, 0, 0, 0x0e, 0x42]
        );
        let r = Response::error(RequestCode::Set, CsError::Access, "ro");
        assert_eq!(&r.emit()[..], [1, 2, 11, 0, 2, b'r', b'o']);
    }

    #[test]
    fn malformed_bytes_are_errors() {
        // Wrong width for a u32, unknown type, bad UTF-8, trailing bytes, unknown code.
        assert!(Request::parse(&[1, 2, 3, b'a', b'.', b'b', 6, 0, 0, 0, 2, 0, 0]).is_err());
        assert!(Request::parse(&[1, 2, 3, b'a', b'.', b'b', 13, 0, 0, 0, 0]).is_err());
        assert!(Request::parse(&[1, 1, 3, 0xff, 0xfe, b'a']).is_err());
        assert!(Request::parse(&[1, 0, 0]).is_err());
        assert_eq!(Request::parse(&[1, 99]), Err(DecodeError::UnknownCode(99)));
        assert_eq!(
            Request::parse(&[7, 0]),
            Err(DecodeError::UnsupportedVersion(7))
        );
        assert!(
            Request::Get {
                key: "k".repeat(256)
            }
            .emit()
            .is_err()
        );
        // A forged value length cannot make the decoder allocate.
        assert!(Request::parse(&[1, 2, 3, b'a', b'.', b'b', 12, 0xff, 0xff, 0xff, 0xff]).is_err());
    }

    /// Fuzz-lite: mutated golden messages and random bytes never panic, and whatever parses
    /// re-emits to the same bytes.
    #[test]
    fn fuzz_lite_never_panics_and_round_trips() {
        let mut rng = TestRng(0xc3a9);
        let mut golden: Vec<Vec<u8>> = requests().iter().map(|r| r.emit().unwrap()).collect();
        golden.extend(responses().iter().map(|r| r.emit().to_vec()));
        golden.extend(events().iter().map(|e| e.emit().unwrap().to_vec()));
        for i in 0..100_000 {
            let mut buf = if i % 10 == 0 {
                (0..rng.below(40)).map(|_| rng.next() as u8).collect()
            } else {
                golden[rng.below(golden.len())].clone()
            };
            rng.mutate(&mut buf);
            if let Ok(r) = Request::parse(&buf) {
                assert_eq!(r.emit().unwrap(), buf);
            }
            if let Ok(r) = Response::parse(&buf) {
                assert_eq!(&r.emit()[..], &buf[..]);
            }
            if let Ok(e) = CmapEvent::parse(&buf) {
                assert_eq!(&e.emit().unwrap()[..], &buf[..]);
            }
        }
    }
}
