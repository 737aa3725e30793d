//! Whole frames: the header plus one typed body, parsed in one step and emitted in one step.
//!
//! [`Frame::parse`] is the entry point for untrusted datagrams: it validates the header, that
//! the flags suit the type, and the whole body (every check the body's `Repr::parse` does),
//! then hands out a zero-copy view of the body. Nothing is copied, and building the large
//! reprs (joins, commit tokens) is left to the caller that needs them.
//!
//! [`emit_frame`] writes a header and any body that implements [`EmitBody`].

use crate::error::{DecodeError, EmitError, Result};
use crate::header::{Flags, HEADER_LEN, Header, HeaderRepr};
use crate::mcast::{Mcast, McastRepr};
use crate::memb_commit_token::{MembCommitToken, MembCommitTokenRepr};
use crate::memb_join::{MembJoin, MembJoinRepr};
use crate::merge_detect::{MergeDetect, MergeDetectRepr};
use crate::node_list::is_wire_sorted;
use crate::orf_token::{OrfToken, OrfTokenRepr};
use crate::token_hold_cancel::{TokenHoldCancel, TokenHoldCancelRepr};
use crate::{MessageType, NodeId};

/// A validated body, as a zero-copy view.
#[derive(Debug, Clone)]
pub enum Body<'a> {
    /// An ORF token.
    OrfToken(OrfToken<&'a [u8]>),
    /// A regular message.
    Mcast(Mcast<&'a [u8]>),
    /// A merge detect.
    MergeDetect(MergeDetect<&'a [u8]>),
    /// A join or leave.
    MembJoin(MembJoin<&'a [u8]>),
    /// A commit token.
    MembCommitToken(MembCommitToken<&'a [u8]>),
    /// A token-hold cancel.
    TokenHoldCancel(TokenHoldCancel<&'a [u8]>),
}

/// A validated frame: its header and its body.
#[derive(Debug, Clone)]
pub struct Frame<'a> {
    /// The header.
    pub header: HeaderRepr,
    /// The body.
    pub body: Body<'a>,
}

impl<'a> Frame<'a> {
    /// Validates a whole datagram and returns its header and a view of its body.
    ///
    /// The cluster id is *not* compared here: the ring drops frames of other clusters and
    /// counts them, which needs the parsed header.
    ///
    /// # Errors
    /// The first problem found; never panics, whatever the bytes.
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        let header = HeaderRepr::parse(&Header::new_checked(bytes)?)?;
        let payload = Header::new_unchecked(bytes).payload();
        let allowed = match header.msg_type {
            MessageType::Mcast => Flags::ENCAPSULATED,
            MessageType::MembJoin => Flags::LEAVE,
            _ => Flags::NONE,
        };
        if header.flags.0 & !allowed.0 != 0 {
            return Err(DecodeError::InvalidValue {
                field: "flags",
                value: header.flags.0.into(),
            });
        }
        let body = match header.msg_type {
            MessageType::OrfToken => {
                let v = OrfToken::new_unchecked(payload);
                v.check()?;
                Body::OrfToken(v)
            }
            MessageType::Mcast => {
                let v = Mcast::new_unchecked(payload);
                v.check()?;
                Body::Mcast(v)
            }
            MessageType::MergeDetect => {
                let v = MergeDetect::new_unchecked(payload);
                v.check()?;
                Body::MergeDetect(v)
            }
            MessageType::MembJoin => {
                let v = MembJoin::new_unchecked(payload);
                v.check()?;
                Body::MembJoin(v)
            }
            MessageType::MembCommitToken => {
                let v = MembCommitToken::new_unchecked(payload);
                v.check()?;
                Body::MembCommitToken(v)
            }
            MessageType::TokenHoldCancel => {
                let v = TokenHoldCancel::new_unchecked(payload);
                v.check()?;
                Body::TokenHoldCancel(v)
            }
            // HeaderRepr::parse rejects unknown types.
            MessageType::Unknown(t) => return Err(DecodeError::UnknownType(t)),
        };
        Ok(Self { header, body })
    }
}

/// The header fields a sender chooses for each frame (the type comes from the body).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FrameHead {
    /// Wire version to encode in.
    pub version: u8,
    /// The sender's cluster id.
    pub cluster_id: u32,
    /// The sender's node id.
    pub sender: NodeId,
    /// Header flags.
    pub flags: Flags,
}

/// A body that [`emit_frame`] can write.
pub trait EmitBody {
    /// The message type written into the header.
    const MSG_TYPE: MessageType;
    /// Bytes the body takes.
    fn body_len(&self) -> usize;
    /// Checks the body is well-formed for the wire (sorted lists and the like).
    ///
    /// # Errors
    /// [`EmitError::InvalidList`] naming the offending list.
    fn validate(&self) -> core::result::Result<(), EmitError> {
        Ok(())
    }
    /// Writes the body into exactly `body_len()` bytes.
    fn emit_body(&self, buf: &mut [u8]);
}

/// Writes a whole frame into `buf` and returns its length.
///
/// # Errors
/// [`EmitError::BufferTooSmall`] if `buf` cannot hold it; [`EmitError::InvalidList`] for a
/// body whose lists receivers would reject. Never panics.
pub fn emit_frame<B: EmitBody + ?Sized>(
    head: &FrameHead,
    body: &B,
    buf: &mut [u8],
) -> core::result::Result<usize, EmitError> {
    body.validate()?;
    let need = HEADER_LEN + body.body_len();
    let Some(out) = buf.get_mut(..need) else {
        return Err(EmitError::BufferTooSmall {
            need,
            have: buf.len(),
        });
    };
    let header = HeaderRepr {
        version: head.version,
        msg_type: B::MSG_TYPE,
        cluster_id: head.cluster_id,
        sender: head.sender,
        flags: head.flags,
    };
    let mut h = Header::new_unchecked(&mut *out);
    header.emit(&mut h);
    body.emit_body(h.payload_mut());
    Ok(need)
}

impl EmitBody for OrfTokenRepr {
    const MSG_TYPE: MessageType = MessageType::OrfToken;
    fn body_len(&self) -> usize {
        self.buffer_len()
    }
    fn emit_body(&self, buf: &mut [u8]) {
        self.emit(&mut OrfToken::new_unchecked(buf));
    }
}

impl EmitBody for McastRepr<'_> {
    const MSG_TYPE: MessageType = MessageType::Mcast;
    fn body_len(&self) -> usize {
        self.buffer_len()
    }
    fn emit_body(&self, buf: &mut [u8]) {
        self.emit(&mut Mcast::new_unchecked(buf));
    }
}

impl EmitBody for MembJoinRepr {
    const MSG_TYPE: MessageType = MessageType::MembJoin;
    fn body_len(&self) -> usize {
        self.buffer_len()
    }
    fn validate(&self) -> core::result::Result<(), EmitError> {
        if !is_wire_sorted(&self.proc_list) {
            return Err(EmitError::InvalidList("proc_list"));
        }
        if !is_wire_sorted(&self.fail_list) {
            return Err(EmitError::InvalidList("fail_list"));
        }
        Ok(())
    }
    fn emit_body(&self, buf: &mut [u8]) {
        self.emit(&mut MembJoin::new_unchecked(buf));
    }
}

impl EmitBody for MembCommitTokenRepr {
    const MSG_TYPE: MessageType = MessageType::MembCommitToken;
    fn body_len(&self) -> usize {
        self.buffer_len()
    }
    fn validate(&self) -> core::result::Result<(), EmitError> {
        // Node 0 is reserved: a rep 0 heading a member 0 would pass the other two checks.
        let sorted = self
            .members
            .first()
            .is_some_and(|m| m.node == self.ring_id.rep)
            && self.ring_id.rep.is_valid()
            && self.members.windows(2).all(|w| w[0].node < w[1].node);
        if sorted {
            Ok(())
        } else {
            Err(EmitError::InvalidList("members"))
        }
    }
    fn emit_body(&self, buf: &mut [u8]) {
        self.emit(&mut MembCommitToken::new_unchecked(buf));
    }
}

impl EmitBody for MergeDetectRepr {
    const MSG_TYPE: MessageType = MessageType::MergeDetect;
    fn body_len(&self) -> usize {
        self.buffer_len()
    }
    fn emit_body(&self, buf: &mut [u8]) {
        self.emit(&mut MergeDetect::new_unchecked(buf));
    }
}

impl EmitBody for TokenHoldCancelRepr {
    const MSG_TYPE: MessageType = MessageType::TokenHoldCancel;
    fn body_len(&self) -> usize {
        self.buffer_len()
    }
    fn emit_body(&self, buf: &mut [u8]) {
        self.emit(&mut TokenHoldCancel::new_unchecked(buf));
    }
}
