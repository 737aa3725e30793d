//! CPG's wire formats: client requests, replies and events over the IPC, and the messages
//! CPG engines multicast to each other on the ring. All follow [`crate::wire`]'s
//! conventions (version byte, code byte, big-endian, counted lists, no trailing bytes).
//!
//! ```text
//! request   01 code | body                     code: RequestCode
//! reply     01 code | error u8 | body if OK    code: the request's; error: CsError
//! event     01 code | body                     code: EventCode
//! exec      01 code | body                     code: ExecCode (node to node, CPG's service id)
//!
//! name      len u8 (0..=128) | bytes
//! member    nodeid u32 | pid u32
//! address   nodeid u32 | pid u32 | reason u8
//!
//! Initialize         flags u32 | pid u32                 reply: —
//! Finalize           —                                   reply: —
//! Join / Leave       name                                reply: —
//! Mcast              guarantee u8 | len u8 | 0u32 | 0u32 | name bytes | payload   reply: —
//! MembershipGet      name                                reply: count u32 | member × count
//! LocalGet           —                                   reply: nodeid u32
//! IterationInit      type u8 | name                      reply: handle u32
//! IterationNext      handle u32                          reply: name | nodeid u32 | pid u32
//! IterationFinalize  handle u32                          reply: —
//! FlowControlGet     —                                   reply: enabled u8 (0 or 1)
//! MaxMessageSize     —                                   reply: max payload u32
//! McastQueued        as Mcast                            reply: only on failure
//!
//! Deliver event  = exec Mcast   guarantee u8 | len u8 | nodeid u32 | pid u32 | name bytes | payload
//! Confchg event                 name | count u32 | member × count
//!                                    | count u32 | address × count (left)
//!                                    | count u32 | address × count (joined)
//! TotemConfchg event            ring rep u32 | ring seq u64 | count u32 | nodeid u32 × count
//! exec ProcJoin                 pid u32 | name
//! exec ProcLeave                reason u8 | pid u32 | name
//! exec JoinList                 ring rep u32 | ring seq u64 | count u32 | (pid u32 | name) × count
//! ```
//!
//! **Zero copy.** A CPG message is never copied by the engine. The Mcast request is laid
//! out like the exec Mcast message: the engine turns one into the other by writing the code
//! byte and the sender's node id and pid over the request's reserved bytes, in place when
//! it holds the only reference to the request buffer ([`mcast_request_into_message`]). And
//! the exec Mcast message *is* the Deliver event (same layout, same code point 0x40): the
//! buffer the ring delivers is handed to every local member as is.
//!
//! The reply to a request that cannot be decoded carries the request's code byte (0xff if
//! there is none) and an error: `VERSION` for a wrong version byte, `NOT_SUPPORTED` for an
//! unknown code, `NAME_TOO_LONG` for a name above 128 bytes, `MESSAGE_ERROR` otherwise.

use alloc::vec::Vec;

use bytes::{Bytes, BytesMut};
use totem_proto::{NodeId, RingId};

use crate::wire::{
    self, DecodeError, GroupName, MAX_NAME_LEN, Reader, WIRE_VERSION, enum_with_unknown, put_count,
    put_name, put_ring_id,
};

enum_with_unknown! {
    /// Client request code points.
    pub enum RequestCode(u8) {
        /// Open the CPG session (corosync `cpg_model_initialize`).
        Initialize = 0,
        /// Close it: leave every group, no callbacks after the reply.
        Finalize = 1,
        /// Join a group.
        Join = 2,
        /// Leave a group.
        Leave = 3,
        /// Multicast to a group the connection joined (`cpg_mcast_joined`).
        Mcast = 4,
        /// A group's current members.
        MembershipGet = 5,
        /// This node's id.
        LocalGet = 6,
        /// Start an iteration over groups and members.
        IterationInitialize = 7,
        /// The iteration's next item.
        IterationNext = 8,
        /// End an iteration.
        IterationFinalize = 9,
        /// Whether flow control is enabled.
        FlowControlGet = 10,
        /// The largest payload one Mcast may carry (`cpg_max_atomic_msgsize_get`).
        MaxMessageSize = 11,
        /// An Mcast answered only if it fails (the client library's queued send): a sender
        /// that keeps many in flight reads no reply per message. A later request's reply
        /// tells that every earlier one was taken.
        McastQueued = 12,
    }
}

enum_with_unknown! {
    /// Client event (callback) code points.
    pub enum EventCode(u8) {
        /// A message to a group (same bytes as [`ExecCode::Mcast`]).
        Deliver = 0x40,
        /// A group's membership changed.
        Confchg = 0x41,
        /// The totem configuration changed (model v1's totem confchg callback).
        TotemConfchg = 0x42,
    }
}

enum_with_unknown! {
    /// Code points of the messages CPG engines multicast to each other (corosync's
    /// `MESSAGE_REQ_EXEC_CPG_*`).
    pub enum ExecCode(u8) {
        /// A process joined a group.
        ProcJoin = 0x20,
        /// A process left a group (or died).
        ProcLeave = 0x21,
        /// Sync: the sender's local members of every group.
        JoinList = 0x22,
        /// A message to a group (same bytes as [`EventCode::Deliver`]).
        Mcast = 0x40,
    }
}

enum_with_unknown! {
    /// corosync's `cs_error_t` (`corotypes.h`), the error of every reply.
    pub enum CsError(u8) {
        /// Success.
        Ok = 1,
        /// Library error.
        Library = 2,
        /// Version mismatch.
        Version = 3,
        /// Initialisation error.
        Init = 4,
        /// Timeout.
        Timeout = 5,
        /// Try again later (flow control, sync, a pending leave).
        TryAgain = 6,
        /// Invalid parameter.
        InvalidParam = 7,
        /// Out of memory.
        NoMemory = 8,
        /// Unknown handle.
        BadHandle = 9,
        /// Busy (a join or leave is in progress).
        Busy = 10,
        /// Access denied.
        Access = 11,
        /// Does not exist (not joined).
        NotExist = 12,
        /// Name too long.
        NameTooLong = 13,
        /// Already exists (already joined).
        Exist = 14,
        /// No space.
        NoSpace = 15,
        /// Interrupted.
        Interrupt = 16,
        /// Name not found.
        NameNotFound = 17,
        /// No resources (too many iterations).
        NoResources = 18,
        /// Not supported (unknown request).
        NotSupported = 19,
        /// Bad operation.
        BadOperation = 20,
        /// Failed operation.
        FailedOperation = 21,
        /// Malformed message.
        MessageError = 22,
        /// Queue full.
        QueueFull = 23,
        /// Queue not available.
        QueueNotAvailable = 24,
        /// Bad flags.
        BadFlags = 25,
        /// Too big.
        TooBig = 26,
        /// No sections (end of an iteration).
        NoSections = 27,
        /// Context not found.
        ContextNotFound = 28,
        /// Too many groups.
        TooManyGroups = 30,
        /// Security.
        Security = 100,
    }
}

enum_with_unknown! {
    /// Why a process is in a confchg's left or joined list (corosync's
    /// `CPG_REASON_*`; members carry `Undefined`).
    pub enum Reason(u8) {
        /// In the member list.
        Undefined = 0,
        /// It joined.
        Join = 1,
        /// It left.
        Leave = 2,
        /// Its node left the configuration.
        NodeDown = 3,
        /// Its node joined the configuration.
        NodeUp = 4,
        /// Its process died (connection closed without a leave).
        ProcDown = 5,
    }
}

enum_with_unknown! {
    /// The delivery guarantee a client asks for (corosync's `cpg_guarantees_t`).
    /// `Unordered`, `Fifo` and `Agreed` are all delivered agreed (total order); `Safe` is
    /// delivered safe: only once every member of the configuration has it.
    pub enum CpgGuarantee(u8) {
        /// Delivered agreed.
        Unordered = 0,
        /// Delivered agreed.
        Fifo = 1,
        /// Total order.
        Agreed = 2,
        /// Total order, and received by every member before delivery.
        Safe = 3,
    }
}

enum_with_unknown! {
    /// What an iteration walks (corosync's `cpg_iteration_type_t`).
    pub enum IterationType(u8) {
        /// Group names only (node id and pid 0).
        NameOnly = 1,
        /// The members of one group.
        OneGroup = 2,
        /// Every member of every group.
        All = 3,
    }
}

/// Initialize flag: deliver the current totem configuration right after initialize
/// (corosync's `CPG_MODEL_V1_DELIVER_INITIAL_TOTEM_CONF`).
pub const DELIVER_INITIAL_TOTEM_CONF: u32 = 0x01;

/// Bytes of an Mcast request or message before the group name.
pub const MCAST_HEADER_LEN: usize = 12;

/// Whether raw client request bytes are an Mcast or McastQueued request (version, then
/// code), without decoding it: what a node checks to hold multicasts under flow control.
pub fn is_mcast_request(request: &[u8]) -> bool {
    matches!(
        request.get(1).copied().map(RequestCode::from),
        Some(RequestCode::Mcast | RequestCode::McastQueued)
    )
}

/// The head of an Mcast request, read without touching its payload: what a node needs to
/// turn the request buffer into the exec message in place
/// ([`mcast_request_into_message`]). [`Request::parse`] slices the payload out as a
/// `Bytes`, which costs the buffer a shared header; the node's hot path uses this instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct McastRequestHead<'a> {
    /// [`RequestCode::Mcast`], or [`RequestCode::McastQueued`] (answer only a failure).
    pub code: RequestCode,
    /// The guarantee asked for.
    pub guarantee: CpgGuarantee,
    /// The group's name, in place (at most [`MAX_NAME_LEN`] bytes).
    pub group: &'a [u8],
    /// Where the payload starts in the request.
    pub payload_at: usize,
}

impl<'a> McastRequestHead<'a> {
    /// Decodes the head of an Mcast or McastQueued request.
    ///
    /// # Errors
    /// A [`DecodeError`] if `request` is not a well-formed request of those codes.
    pub fn parse(request: &'a [u8]) -> wire::Result<Self> {
        let mut r = Reader::new(request);
        r.version()?;
        match RequestCode::from(r.u8()?) {
            code @ (RequestCode::Mcast | RequestCode::McastQueued) => Self::parse_body(code, r),
            RequestCode::Unknown(c) => Err(DecodeError::UnknownCode(c)),
            other => Err(DecodeError::InvalidValue {
                field: "mcast.code",
                value: u64::from(u8::from(other)),
            }),
        }
    }

    fn parse_body(code: RequestCode, mut r: Reader<'a>) -> wire::Result<Self> {
        let guarantee = CpgGuarantee::from(r.u8()?);
        let len = r.u8()?;
        r.reserved(8, "mcast.reserved")?;
        let group = r.name_bytes_of(len)?;
        Ok(Self {
            code,
            guarantee,
            group,
            payload_at: r.pos(),
        })
    }
}

/// A process in a group: corosync names it `(nodeid, pid)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Member {
    /// Its node.
    pub node: NodeId,
    /// Its process id (the connection's `SO_PEERCRED` pid).
    pub pid: u32,
}

impl Member {
    /// A member.
    pub const fn new(node: NodeId, pid: u32) -> Self {
        Self { node, pid }
    }

    /// With a reason, for a confchg list.
    pub const fn with(self, reason: Reason) -> Address {
        Address {
            node: self.node,
            pid: self.pid,
            reason,
        }
    }
}

/// A process and why it is in a list (corosync's `struct cpg_address`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Address {
    /// Its node.
    pub node: NodeId,
    /// Its process id.
    pub pid: u32,
    /// Why it is listed.
    pub reason: Reason,
}

impl Address {
    /// The member, without the reason.
    pub const fn member(&self) -> Member {
        Member::new(self.node, self.pid)
    }
}

/// A decoded client request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Open the session.
    Initialize {
        /// [`DELIVER_INITIAL_TOTEM_CONF`] and future flags.
        flags: u32,
        /// The pid the client claims (informational: the engine uses the kernel's).
        pid: u32,
    },
    /// Close the session.
    Finalize,
    /// Join `group`.
    Join {
        /// The group.
        group: GroupName,
    },
    /// Leave `group`.
    Leave {
        /// The group.
        group: GroupName,
    },
    /// Multicast to `group`.
    Mcast {
        /// The guarantee asked for.
        guarantee: CpgGuarantee,
        /// The group.
        group: GroupName,
        /// The message: a slice of the request buffer.
        payload: Bytes,
    },
    /// [`Request::Mcast`] answered only if it fails.
    McastQueued {
        /// The guarantee asked for.
        guarantee: CpgGuarantee,
        /// The group.
        group: GroupName,
        /// The message: a slice of the request buffer.
        payload: Bytes,
    },
    /// The members of `group`.
    MembershipGet {
        /// The group.
        group: GroupName,
    },
    /// This node's id.
    LocalGet,
    /// Start an iteration.
    IterationInitialize {
        /// What to walk.
        kind: IterationType,
        /// The group, for [`IterationType::OneGroup`] (empty otherwise).
        group: GroupName,
    },
    /// The next item of an iteration.
    IterationNext {
        /// The handle from the initialize reply.
        handle: u32,
    },
    /// End an iteration.
    IterationFinalize {
        /// The handle from the initialize reply.
        handle: u32,
    },
    /// Flow-control state.
    FlowControlGet,
    /// Largest Mcast payload.
    MaxMessageSize,
}

impl Request {
    /// The request's code point.
    pub fn code(&self) -> RequestCode {
        match self {
            Self::Initialize { .. } => RequestCode::Initialize,
            Self::Finalize => RequestCode::Finalize,
            Self::Join { .. } => RequestCode::Join,
            Self::Leave { .. } => RequestCode::Leave,
            Self::Mcast { .. } => RequestCode::Mcast,
            Self::McastQueued { .. } => RequestCode::McastQueued,
            Self::MembershipGet { .. } => RequestCode::MembershipGet,
            Self::LocalGet => RequestCode::LocalGet,
            Self::IterationInitialize { .. } => RequestCode::IterationInitialize,
            Self::IterationNext { .. } => RequestCode::IterationNext,
            Self::IterationFinalize { .. } => RequestCode::IterationFinalize,
            Self::FlowControlGet => RequestCode::FlowControlGet,
            Self::MaxMessageSize => RequestCode::MaxMessageSize,
        }
    }

    /// Decodes a request. The Mcast payload is a slice of `bytes`, not a copy.
    ///
    /// # Errors
    /// A [`DecodeError`] for anything but exactly one well-formed request.
    pub fn parse(bytes: &Bytes) -> wire::Result<Self> {
        let mut r = Reader::new(bytes);
        r.version()?;
        let req = match RequestCode::from(r.u8()?) {
            RequestCode::Initialize => Self::Initialize {
                flags: r.u32()?,
                pid: r.u32()?,
            },
            RequestCode::Finalize => Self::Finalize,
            RequestCode::Join => Self::Join { group: r.name()? },
            RequestCode::Leave => Self::Leave { group: r.name()? },
            code @ (RequestCode::Mcast | RequestCode::McastQueued) => {
                let head = McastRequestHead::parse_body(code, r)?;
                let (guarantee, group) = (head.guarantee, GroupName::new(head.group)?);
                let payload = bytes.slice(head.payload_at..);
                return Ok(if code == RequestCode::Mcast {
                    Self::Mcast {
                        guarantee,
                        group,
                        payload,
                    }
                } else {
                    Self::McastQueued {
                        guarantee,
                        group,
                        payload,
                    }
                });
            }
            RequestCode::MembershipGet => Self::MembershipGet { group: r.name()? },
            RequestCode::LocalGet => Self::LocalGet,
            RequestCode::IterationInitialize => Self::IterationInitialize {
                kind: IterationType::from(r.u8()?),
                group: r.name()?,
            },
            RequestCode::IterationNext => Self::IterationNext { handle: r.u32()? },
            RequestCode::IterationFinalize => Self::IterationFinalize { handle: r.u32()? },
            RequestCode::FlowControlGet => Self::FlowControlGet,
            RequestCode::MaxMessageSize => Self::MaxMessageSize,
            RequestCode::Unknown(c) => return Err(DecodeError::UnknownCode(c)),
        };
        r.finish()?;
        Ok(req)
    }

    /// Bytes [`emit`](Self::emit) produces.
    pub fn buffer_len(&self) -> usize {
        2 + match self {
            Self::Initialize { .. } => 8,
            Self::Finalize | Self::LocalGet | Self::FlowControlGet | Self::MaxMessageSize => 0,
            Self::Join { group } | Self::Leave { group } | Self::MembershipGet { group } => {
                group.wire_len()
            }
            Self::Mcast { group, payload, .. } | Self::McastQueued { group, payload, .. } => {
                MCAST_HEADER_LEN - 2 + group.len() + payload.len()
            }
            Self::IterationInitialize { group, .. } => 1 + group.wire_len(),
            Self::IterationNext { .. } | Self::IterationFinalize { .. } => 4,
        }
    }

    /// Encodes the request (the client library's side; one copy of an Mcast payload).
    pub fn emit(&self) -> Bytes {
        let mut out = Vec::with_capacity(self.buffer_len());
        out.push(WIRE_VERSION);
        out.push(self.code().into());
        match self {
            Self::Initialize { flags, pid } => {
                out.extend_from_slice(&flags.to_be_bytes());
                out.extend_from_slice(&pid.to_be_bytes());
            }
            Self::Finalize | Self::LocalGet | Self::FlowControlGet | Self::MaxMessageSize => {}
            Self::Join { group } | Self::Leave { group } | Self::MembershipGet { group } => {
                put_name(&mut out, group);
            }
            Self::Mcast {
                guarantee,
                group,
                payload,
            }
            | Self::McastQueued {
                guarantee,
                group,
                payload,
            } => {
                out.push((*guarantee).into());
                // At most MAX_NAME_LEN (128) bytes: fits a u8.
                out.push(group.len() as u8);
                out.extend_from_slice(&[0; 8]);
                out.extend_from_slice(group.as_bytes());
                out.extend_from_slice(payload);
            }
            Self::IterationInitialize { kind, group } => {
                out.push((*kind).into());
                put_name(&mut out, group);
            }
            Self::IterationNext { handle } | Self::IterationFinalize { handle } => {
                out.extend_from_slice(&handle.to_be_bytes());
            }
        }
        Bytes::from(out)
    }
}

/// The body of a successful reply, by request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ResponseBody {
    /// Nothing (most requests, and every error).
    None,
    /// MembershipGet: the members, ascending.
    Members(Vec<Member>),
    /// LocalGet: this node's id.
    LocalNode(NodeId),
    /// IterationInitialize: the handle.
    IterationHandle(u32),
    /// IterationNext: one item (node id and pid 0 for [`IterationType::NameOnly`]).
    IterationItem {
        /// The group.
        group: GroupName,
        /// The member's node id, or 0.
        node: u32,
        /// The member's pid, or 0.
        pid: u32,
    },
    /// FlowControlGet: whether flow control is enabled.
    FlowControl(bool),
    /// MaxMessageSize: the largest Mcast payload, in bytes.
    MaxMessageSize(u32),
}

/// A reply to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Response {
    /// The request's code.
    pub code: RequestCode,
    /// The outcome.
    pub error: CsError,
    /// What it returns ([`ResponseBody::None`] unless `error` is `Ok`).
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

    /// An error reply.
    pub fn error(code: RequestCode, error: CsError) -> Self {
        Self {
            code,
            error,
            body: ResponseBody::None,
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
            ResponseBody::None
        } else {
            match code {
                RequestCode::MembershipGet => {
                    let n = r.count("members", 8)?;
                    let mut members = Vec::with_capacity(n);
                    for _ in 0..n {
                        members.push(Member::new(r.node_id("member.nodeid")?, r.u32()?));
                    }
                    ResponseBody::Members(members)
                }
                RequestCode::LocalGet => ResponseBody::LocalNode(r.node_id("local.nodeid")?),
                RequestCode::IterationInitialize => ResponseBody::IterationHandle(r.u32()?),
                RequestCode::IterationNext => ResponseBody::IterationItem {
                    group: r.name()?,
                    node: r.u32()?,
                    pid: r.u32()?,
                },
                RequestCode::FlowControlGet => match r.u8()? {
                    0 => ResponseBody::FlowControl(false),
                    1 => ResponseBody::FlowControl(true),
                    v => {
                        return Err(DecodeError::InvalidValue {
                            field: "flow_control",
                            value: u64::from(v),
                        });
                    }
                },
                RequestCode::MaxMessageSize => ResponseBody::MaxMessageSize(r.u32()?),
                _ => ResponseBody::None,
            }
        };
        r.finish()?;
        Ok(Self { code, error, body })
    }

    /// Encodes the reply.
    pub fn emit(&self) -> Bytes {
        let mut out = Vec::with_capacity(16);
        out.push(WIRE_VERSION);
        out.push(self.code.into());
        out.push(self.error.into());
        match &self.body {
            ResponseBody::None => {}
            ResponseBody::Members(members) => {
                put_count(&mut out, members.len());
                for m in members {
                    put_member(&mut out, *m);
                }
            }
            ResponseBody::LocalNode(n) => out.extend_from_slice(&n.0.to_be_bytes()),
            ResponseBody::IterationHandle(h) => out.extend_from_slice(&h.to_be_bytes()),
            ResponseBody::IterationItem { group, node, pid } => {
                put_name(&mut out, group);
                out.extend_from_slice(&node.to_be_bytes());
                out.extend_from_slice(&pid.to_be_bytes());
            }
            ResponseBody::FlowControl(on) => out.push(u8::from(*on)),
            ResponseBody::MaxMessageSize(m) => out.extend_from_slice(&m.to_be_bytes()),
        }
        Bytes::from(out)
    }
}

/// A message to a group: the exec Mcast message and, byte for byte, the Deliver event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McastMessage {
    /// The guarantee the sender asked for.
    pub guarantee: CpgGuarantee,
    /// The group.
    pub group: GroupName,
    /// The sending process.
    pub sender: Member,
    /// The message.
    pub payload: Bytes,
}

/// The head of an exec Mcast message (or Deliver event), read without touching its
/// payload: what a node needs to route a delivered message to its local receivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct McastHead<'a> {
    /// The guarantee the sender asked for.
    pub guarantee: CpgGuarantee,
    /// The group's name, in place (at most [`MAX_NAME_LEN`] bytes): a name is 130 bytes
    /// to copy and move, which at small messages costs more than the rest of the head.
    pub group: &'a [u8],
    /// The sending process.
    pub sender: Member,
    /// Where the payload starts in the message.
    pub payload_at: usize,
}

impl<'a> McastHead<'a> {
    /// Decodes the head of an exec message if it is an Mcast one: `None` for the other
    /// exec codes (decode those with [`ExecMessage::parse`]).
    ///
    /// # Errors
    /// A [`DecodeError`] if it is an Mcast message whose head is malformed, or not version 1.
    pub fn parse_exec(message: &'a [u8]) -> wire::Result<Option<Self>> {
        let mut r = Reader::new(message);
        r.version()?;
        if ExecCode::from(r.u8()?) != ExecCode::Mcast {
            return Ok(None);
        }
        Self::parse_body(r).map(Some)
    }

    fn parse_body(mut r: Reader<'a>) -> wire::Result<Self> {
        let guarantee = CpgGuarantee::from(r.u8()?);
        let len = r.u8()?;
        let node = r.node_id("mcast.nodeid")?;
        let pid = r.u32()?;
        let group = r.name_bytes_of(len)?;
        Ok(Self {
            guarantee,
            group,
            sender: Member::new(node, pid),
            payload_at: r.pos(),
        })
    }
}

impl McastMessage {
    /// Decodes an exec Mcast message or Deliver event; the payload is a slice of `bytes`.
    ///
    /// # Errors
    /// A [`DecodeError`] if it is not one well-formed message of that code.
    pub fn parse(bytes: &Bytes) -> wire::Result<Self> {
        let mut r = Reader::new(bytes);
        r.version()?;
        match r.u8()? {
            c if c == u8::from(ExecCode::Mcast) => {}
            c => {
                return Err(DecodeError::InvalidValue {
                    field: "mcast.code",
                    value: u64::from(c),
                });
            }
        }
        Self::parse_body(bytes, r)
    }

    fn parse_body(bytes: &Bytes, r: Reader<'_>) -> wire::Result<Self> {
        let head = McastHead::parse_body(r)?;
        Ok(Self {
            guarantee: head.guarantee,
            group: GroupName::new(head.group)?,
            sender: head.sender,
            payload: bytes.slice(head.payload_at..),
        })
    }

    /// Bytes [`emit`](Self::emit) produces.
    pub fn buffer_len(&self) -> usize {
        MCAST_HEADER_LEN + self.group.len() + self.payload.len()
    }

    /// Encodes the message (copying the payload once; the engine's own path is
    /// [`mcast_request_into_message`], which does not).
    pub fn emit(&self) -> Bytes {
        let mut out = Vec::with_capacity(self.buffer_len());
        self.emit_header(&mut out);
        out.extend_from_slice(&self.payload);
        Bytes::from(out)
    }

    fn emit_header(&self, out: &mut Vec<u8>) {
        out.push(WIRE_VERSION);
        out.push(ExecCode::Mcast.into());
        out.push(self.guarantee.into());
        // At most MAX_NAME_LEN (128) bytes: fits a u8.
        out.push(self.group.len() as u8);
        out.extend_from_slice(&self.sender.node.0.to_be_bytes());
        out.extend_from_slice(&self.sender.pid.to_be_bytes());
        out.extend_from_slice(self.group.as_bytes());
    }
}

/// Turns a decoded-valid Mcast request into the exec Mcast message from `sender`: the code
/// byte and the reserved sender bytes are overwritten. In place, without copying, when
/// `request` is the only reference to its buffer (the node hands over the IPC buffer it
/// read); otherwise one copy.
///
/// The caller has parsed `request` with [`Request::parse`] (so it is at least
/// [`MCAST_HEADER_LEN`] bytes long, version 1, code Mcast).
pub fn mcast_request_into_message(request: Bytes, sender: Member) -> Bytes {
    let mut buf = match request.try_into_mut() {
        Ok(unique) => unique,
        Err(shared) => BytesMut::from(&shared[..]),
    };
    if let Some(header) = buf.get_mut(..MCAST_HEADER_LEN) {
        header[1] = ExecCode::Mcast.into();
        header[4..8].copy_from_slice(&sender.node.0.to_be_bytes());
        header[8..12].copy_from_slice(&sender.pid.to_be_bytes());
    }
    buf.freeze()
}

/// A group's membership change, as the client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Confchg {
    /// The group.
    pub group: GroupName,
    /// Its members after the change, ascending.
    pub members: Vec<Member>,
    /// Who left, and why, ascending.
    pub left: Vec<Address>,
    /// Who joined, and why, ascending.
    pub joined: Vec<Address>,
}

/// A decoded client event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CpgEvent {
    /// A message to a group the connection joined.
    Deliver(McastMessage),
    /// A membership change of a group the connection joined.
    Confchg(Confchg),
    /// A new totem configuration.
    TotemConfchg {
        /// Its ring id.
        ring_id: RingId,
        /// Its members, ascending.
        members: Vec<NodeId>,
    },
}

impl CpgEvent {
    /// Decodes an event.
    ///
    /// # Errors
    /// A [`DecodeError`] for anything but exactly one well-formed event.
    pub fn parse(bytes: &Bytes) -> wire::Result<Self> {
        let mut r = Reader::new(bytes);
        r.version()?;
        let ev = match EventCode::from(r.u8()?) {
            EventCode::Deliver => return McastMessage::parse_body(bytes, r).map(Self::Deliver),
            EventCode::Confchg => {
                let group = r.name()?;
                let n = r.count("members", 8)?;
                let mut members = Vec::with_capacity(n);
                for _ in 0..n {
                    members.push(Member::new(r.node_id("member.nodeid")?, r.u32()?));
                }
                let left = addresses(&mut r, "left")?;
                let joined = addresses(&mut r, "joined")?;
                Self::Confchg(Confchg {
                    group,
                    members,
                    left,
                    joined,
                })
            }
            EventCode::TotemConfchg => {
                let ring_id = r.ring_id()?;
                let n = r.count("totem members", 4)?;
                let mut members = Vec::with_capacity(n);
                for _ in 0..n {
                    members.push(r.node_id("totem member")?);
                }
                Self::TotemConfchg { ring_id, members }
            }
            EventCode::Unknown(c) => return Err(DecodeError::UnknownCode(c)),
        };
        r.finish()?;
        Ok(ev)
    }

    /// Encodes the event.
    pub fn emit(&self) -> Bytes {
        match self {
            Self::Deliver(m) => m.emit(),
            Self::Confchg(c) => {
                let mut out = Vec::with_capacity(
                    3 + c.group.len()
                        + 12
                        + 8 * c.members.len()
                        + 9 * (c.left.len() + c.joined.len()),
                );
                out.push(WIRE_VERSION);
                out.push(EventCode::Confchg.into());
                put_name(&mut out, &c.group);
                put_count(&mut out, c.members.len());
                for m in &c.members {
                    put_member(&mut out, *m);
                }
                for list in [&c.left, &c.joined] {
                    put_count(&mut out, list.len());
                    for a in list {
                        put_member(&mut out, a.member());
                        out.push(a.reason.into());
                    }
                }
                Bytes::from(out)
            }
            Self::TotemConfchg { ring_id, members } => {
                let mut out = Vec::with_capacity(2 + RingId::LEN + 4 + 4 * members.len());
                out.push(WIRE_VERSION);
                out.push(EventCode::TotemConfchg.into());
                put_ring_id(&mut out, *ring_id);
                put_count(&mut out, members.len());
                for n in members {
                    out.extend_from_slice(&n.0.to_be_bytes());
                }
                Bytes::from(out)
            }
        }
    }
}

/// A message between CPG engines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecMessage {
    /// `pid` on the sender's node joined `group`.
    ProcJoin {
        /// The group.
        group: GroupName,
        /// The process.
        pid: u32,
    },
    /// `pid` on the sender's node left `group`, or died.
    ProcLeave {
        /// The group.
        group: GroupName,
        /// The process.
        pid: u32,
        /// [`Reason::Leave`] or [`Reason::ProcDown`].
        reason: Reason,
    },
    /// Sync: every (group, pid) the sender's node has joined, for round `ring_id`.
    JoinList {
        /// The configuration being synchronised.
        ring_id: RingId,
        /// (group, pid), ascending.
        entries: Vec<(GroupName, u32)>,
    },
    /// A message to a group.
    Mcast(McastMessage),
}

impl ExecMessage {
    /// Decodes an exec message (the Mcast payload is a slice of `bytes`).
    ///
    /// # Errors
    /// A [`DecodeError`] for anything but exactly one well-formed message.
    pub fn parse(bytes: &Bytes) -> wire::Result<Self> {
        let mut r = Reader::new(bytes);
        r.version()?;
        let msg = match ExecCode::from(r.u8()?) {
            ExecCode::ProcJoin => {
                let pid = r.u32()?;
                Self::ProcJoin {
                    group: r.name()?,
                    pid,
                }
            }
            ExecCode::ProcLeave => {
                let reason = Reason::from(r.u8()?);
                let pid = r.u32()?;
                Self::ProcLeave {
                    group: r.name()?,
                    pid,
                    reason,
                }
            }
            ExecCode::JoinList => {
                let ring_id = r.ring_id()?;
                let n = r.count("joinlist", 5)?;
                let mut entries = Vec::with_capacity(n);
                for _ in 0..n {
                    let pid = r.u32()?;
                    entries.push((r.name()?, pid));
                }
                Self::JoinList { ring_id, entries }
            }
            ExecCode::Mcast => return McastMessage::parse_body(bytes, r).map(Self::Mcast),
            ExecCode::Unknown(c) => return Err(DecodeError::UnknownCode(c)),
        };
        r.finish()?;
        Ok(msg)
    }

    /// Encodes the message.
    pub fn emit(&self) -> Bytes {
        let mut out = Vec::new();
        match self {
            Self::ProcJoin { group, pid } => {
                out.push(WIRE_VERSION);
                out.push(ExecCode::ProcJoin.into());
                out.extend_from_slice(&pid.to_be_bytes());
                put_name(&mut out, group);
            }
            Self::ProcLeave { group, pid, reason } => {
                out.push(WIRE_VERSION);
                out.push(ExecCode::ProcLeave.into());
                out.push((*reason).into());
                out.extend_from_slice(&pid.to_be_bytes());
                put_name(&mut out, group);
            }
            Self::JoinList { ring_id, entries } => {
                out.push(WIRE_VERSION);
                out.push(ExecCode::JoinList.into());
                put_ring_id(&mut out, *ring_id);
                put_count(&mut out, entries.len());
                for (group, pid) in entries {
                    out.extend_from_slice(&pid.to_be_bytes());
                    put_name(&mut out, group);
                }
            }
            Self::Mcast(m) => return m.emit(),
        }
        Bytes::from(out)
    }

    /// Bytes a JoinList with these entries takes (to split long lists under the ring's
    /// message limit).
    pub fn joinlist_entry_len(group: &GroupName) -> usize {
        4 + group.wire_len()
    }

    /// Bytes of a JoinList before its entries.
    pub const JOINLIST_HEADER_LEN: usize = 2 + RingId::LEN + 4;
}

fn put_member(out: &mut Vec<u8>, m: Member) {
    out.extend_from_slice(&m.node.0.to_be_bytes());
    out.extend_from_slice(&m.pid.to_be_bytes());
}

fn addresses(r: &mut Reader<'_>, field: &'static str) -> wire::Result<Vec<Address>> {
    let n = r.count(field, 9)?;
    let mut list = Vec::with_capacity(n);
    for _ in 0..n {
        let node = r.node_id("address.nodeid")?;
        let pid = r.u32()?;
        list.push(Address {
            node,
            pid,
            reason: Reason::from(r.u8()?),
        });
    }
    Ok(list)
}

/// The code byte of a request that may not decode, for the error reply (0xff if absent).
pub(crate) fn raw_request_code(bytes: &[u8]) -> RequestCode {
    RequestCode::from(bytes.get(1).copied().unwrap_or(0xff))
}

/// The reply error for a request that did not decode.
pub(crate) fn decode_error_reply(e: DecodeError) -> CsError {
    match e {
        DecodeError::UnsupportedVersion(_) => CsError::Version,
        DecodeError::UnknownCode(_) => CsError::NotSupported,
        DecodeError::NameTooLong { .. } => CsError::NameTooLong,
        _ => CsError::MessageError,
    }
}

/// The largest Mcast payload a ring with `max_message_len` carries whatever the group name.
pub fn max_payload(max_message_len: usize) -> usize {
    max_message_len.saturating_sub(MCAST_HEADER_LEN + MAX_NAME_LEN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::TestRng;
    use alloc::vec;

    fn g(s: &str) -> GroupName {
        GroupName::new(s.as_bytes()).unwrap()
    }

    fn m(n: u32, pid: u32) -> Member {
        Member::new(NodeId(n), pid)
    }

    fn requests() -> Vec<Request> {
        vec![
            Request::Initialize {
                flags: DELIVER_INITIAL_TOTEM_CONF,
                pid: 42,
            },
            Request::Finalize,
            Request::Join { group: g("grp") },
            Request::Leave { group: g("grp") },
            Request::Mcast {
                guarantee: CpgGuarantee::Safe,
                group: g("grp"),
                payload: Bytes::from_static(b"hello"),
            },
            Request::McastQueued {
                guarantee: CpgGuarantee::Agreed,
                group: g("q"),
                payload: Bytes::from_static(b"queued"),
            },
            Request::MembershipGet { group: g("") },
            Request::LocalGet,
            Request::IterationInitialize {
                kind: IterationType::OneGroup,
                group: g("grp"),
            },
            Request::IterationNext { handle: 7 },
            Request::IterationFinalize { handle: 7 },
            Request::FlowControlGet,
            Request::MaxMessageSize,
        ]
    }

    fn responses() -> Vec<Response> {
        vec![
            Response::ok(RequestCode::Join, ResponseBody::None),
            Response::error(RequestCode::Mcast, CsError::NotExist),
            Response::error(RequestCode::McastQueued, CsError::NotExist),
            Response::ok(
                RequestCode::MembershipGet,
                ResponseBody::Members(vec![m(1, 10), m(2, 20)]),
            ),
            Response::ok(RequestCode::LocalGet, ResponseBody::LocalNode(NodeId(3))),
            Response::ok(
                RequestCode::IterationInitialize,
                ResponseBody::IterationHandle(1),
            ),
            Response::ok(
                RequestCode::IterationNext,
                ResponseBody::IterationItem {
                    group: g("a"),
                    node: 0,
                    pid: 0,
                },
            ),
            Response::ok(RequestCode::FlowControlGet, ResponseBody::FlowControl(true)),
            Response::ok(
                RequestCode::MaxMessageSize,
                ResponseBody::MaxMessageSize(1000),
            ),
        ]
    }

    fn events() -> Vec<CpgEvent> {
        vec![
            CpgEvent::Deliver(McastMessage {
                guarantee: CpgGuarantee::Agreed,
                group: g("grp"),
                sender: m(2, 99),
                payload: Bytes::from_static(b"xyz"),
            }),
            CpgEvent::Confchg(Confchg {
                group: g("grp"),
                members: vec![m(1, 10), m(2, 20)],
                left: vec![m(3, 30).with(Reason::NodeDown)],
                joined: vec![m(2, 20).with(Reason::Join)],
            }),
            CpgEvent::TotemConfchg {
                ring_id: RingId::new(NodeId(1), 8),
                members: vec![NodeId(1), NodeId(2)],
            },
        ]
    }

    fn execs() -> Vec<ExecMessage> {
        vec![
            ExecMessage::ProcJoin {
                group: g("grp"),
                pid: 5,
            },
            ExecMessage::ProcLeave {
                group: g("grp"),
                pid: 5,
                reason: Reason::ProcDown,
            },
            ExecMessage::JoinList {
                ring_id: RingId::new(NodeId(1), 8),
                entries: vec![(g("a"), 1), (g("b"), 2)],
            },
            ExecMessage::Mcast(McastMessage {
                guarantee: CpgGuarantee::Safe,
                group: g("grp"),
                sender: m(1, 7),
                payload: Bytes::from_static(b"p"),
            }),
        ]
    }

    #[test]
    fn test_emit_golden_bytes() {
        let join = Request::Join { group: g("ab") }.emit();
        assert_eq!(&join[..], &[1, 2, 2, b'a', b'b']);
        let mcast = Request::Mcast {
            guarantee: CpgGuarantee::Agreed,
            group: g("ab"),
            payload: Bytes::from_static(b"!"),
        }
        .emit();
        assert_eq!(
            &mcast[..],
            &[1, 4, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0, b'a', b'b', b'!']
        );
        let reply = Response::ok(RequestCode::LocalGet, ResponseBody::LocalNode(NodeId(9))).emit();
        assert_eq!(&reply[..], &[1, 6, 1, 0, 0, 0, 9]);
        let leave = ExecMessage::ProcLeave {
            group: g("x"),
            pid: 0x0102_0304,
            reason: Reason::Leave,
        }
        .emit();
        assert_eq!(&leave[..], &[1, 0x21, 2, 1, 2, 3, 4, 1, b'x']);
    }

    #[test]
    fn test_parse_round_trips_every_message() {
        for req in requests() {
            let b = req.emit();
            assert_eq!(b.len(), req.buffer_len(), "{req:?}");
            assert_eq!(Request::parse(&b), Ok(req));
        }
        for resp in responses() {
            assert_eq!(Response::parse(&resp.emit()), Ok(resp));
        }
        for ev in events() {
            assert_eq!(CpgEvent::parse(&ev.emit()), Ok(ev));
        }
        for ex in execs() {
            assert_eq!(ExecMessage::parse(&ex.emit()), Ok(ex));
        }
    }

    #[test]
    fn test_mcast_request_becomes_the_message_and_the_event_in_place() {
        let payload = vec![0xab; 4096];
        let req = Request::Mcast {
            guarantee: CpgGuarantee::Safe,
            group: g("big"),
            payload: Bytes::from(payload),
        }
        .emit();
        let before = req.as_ptr();
        let msg = mcast_request_into_message(req, m(3, 77));
        assert_eq!(
            msg.as_ptr(),
            before,
            "a unique buffer is rewritten in place"
        );
        let ExecMessage::Mcast(parsed) = ExecMessage::parse(&msg).unwrap() else {
            panic!("not an mcast");
        };
        assert_eq!(parsed.sender, m(3, 77));
        assert_eq!(parsed.payload.len(), 4096);
        assert_eq!(
            parsed.payload.as_ptr(),
            msg[MCAST_HEADER_LEN + 3..].as_ptr(),
            "the payload is a slice, not a copy"
        );
        // The same bytes are the Deliver event.
        let CpgEvent::Deliver(ev) = CpgEvent::parse(&msg).unwrap() else {
            panic!("not a delivery");
        };
        assert_eq!(ev, parsed);
        // A shared request is copied once, the original left alone.
        let shared = Request::Mcast {
            guarantee: CpgGuarantee::Agreed,
            group: g("x"),
            payload: Bytes::from_static(b"s"),
        }
        .emit();
        let keep = shared.clone();
        let msg = mcast_request_into_message(shared, m(1, 1));
        assert_eq!(keep[1], u8::from(RequestCode::Mcast));
        assert_eq!(msg[1], u8::from(ExecCode::Mcast));
    }

    #[test]
    fn test_malformed_requests_are_precise_errors() {
        let parse = |b: &[u8]| Request::parse(&Bytes::copy_from_slice(b));
        assert_eq!(parse(&[]), Err(DecodeError::Truncated { need: 1, have: 0 }));
        assert_eq!(parse(&[2, 0]), Err(DecodeError::UnsupportedVersion(2)));
        assert_eq!(parse(&[1, 99]), Err(DecodeError::UnknownCode(99)));
        assert_eq!(
            parse(&[1, 2, 3, b'a']),
            Err(DecodeError::Truncated { need: 6, have: 4 })
        );
        let mut long = vec![1, 2, 129];
        long.extend_from_slice(&[b'x'; 129]);
        assert_eq!(parse(&long), Err(DecodeError::NameTooLong { len: 129 }));
        assert_eq!(parse(&[1, 1, 0]), Err(DecodeError::TrailingBytes(1)));
        assert_eq!(
            parse(&[1, 4, 2, 0, 0, 0, 0, 1, 0, 0, 0, 0]),
            Err(DecodeError::InvalidValue {
                field: "mcast.reserved",
                value: 1
            })
        );
        assert_eq!(
            decode_error_reply(DecodeError::NameTooLong { len: 129 }),
            CsError::NameTooLong
        );
        assert_eq!(raw_request_code(&[1]), RequestCode::Unknown(0xff));
    }

    #[test]
    fn test_events_refuse_forged_counts_and_zero_node_ids() {
        let mut b = events()[1].emit().to_vec();
        // members count (after version, code, name len 3 + "grp") set huge.
        b[6..10].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            CpgEvent::parse(&Bytes::from(b)),
            Err(DecodeError::TooManyEntries { .. })
        ));
        let mut b = events()[0].emit().to_vec();
        b[4..8].copy_from_slice(&[0; 4]);
        assert_eq!(
            CpgEvent::parse(&Bytes::from(b)),
            Err(DecodeError::InvalidValue {
                field: "mcast.nodeid",
                value: 0
            })
        );
    }

    #[test]
    fn fuzz_lite_cpg_decoders_never_panic_and_round_trip() {
        let mut rng = TestRng(0xc9c9);
        let mut seeds: Vec<Vec<u8>> = Vec::new();
        seeds.extend(requests().iter().map(|r| r.emit().to_vec()));
        seeds.extend(responses().iter().map(|r| r.emit().to_vec()));
        seeds.extend(events().iter().map(|e| e.emit().to_vec()));
        seeds.extend(execs().iter().map(|e| e.emit().to_vec()));
        for i in 0..100_000 {
            let mut b = if i % 10 == 9 {
                (0..rng.below(40)).map(|_| rng.next() as u8).collect()
            } else {
                seeds[i % seeds.len()].clone()
            };
            rng.mutate(&mut b);
            let bytes = Bytes::from(b);
            if let Ok(r) = Request::parse(&bytes) {
                assert_eq!(r.emit(), bytes);
            }
            if let Ok(r) = Response::parse(&bytes) {
                assert_eq!(r.emit(), bytes);
            }
            if let Ok(e) = CpgEvent::parse(&bytes) {
                assert_eq!(e.emit(), bytes);
            }
            // The hot paths' readers agree with the full decoders.
            if let Ok(CpgEvent::Deliver(m)) = CpgEvent::parse(&bytes) {
                let head = McastHead::parse_exec(&bytes).unwrap().unwrap();
                assert_eq!((head.group, head.sender), (m.group.as_bytes(), m.sender));
                assert_eq!(&bytes[head.payload_at..], &m.payload[..]);
            }
            if let Ok(
                Request::Mcast {
                    guarantee, group, ..
                }
                | Request::McastQueued {
                    guarantee, group, ..
                },
            ) = Request::parse(&bytes)
            {
                let head = McastRequestHead::parse(&bytes).unwrap();
                assert_eq!((head.guarantee, head.group), (guarantee, group.as_bytes()));
            } else if is_mcast_request(&bytes) {
                assert!(McastRequestHead::parse(&bytes).is_err());
            }
            if let Ok(e) = ExecMessage::parse(&bytes) {
                assert_eq!(e.emit(), bytes);
                let head = McastHead::parse_exec(&bytes).unwrap();
                if let ExecMessage::Mcast(m) = e {
                    let head = head.unwrap();
                    assert_eq!((head.group, head.sender), (m.group.as_bytes(), m.sender));
                } else {
                    assert_eq!(head, None);
                }
            }
        }
    }
}
