//! Token-hold cancel: "I have new data, release the held token". An idle ring's
//! representative holds the token instead of spinning it; a member with a new message
//! broadcasts this so the token moves at once rather than after the `hold` timer
//! (corosync `token_hold_cancel_send`, `message_handler_token_hold_cancel`).
//!
//! ```text
//!  0          12
//!  +----------+
//!  | ring id  |
//!  +----------+
//! ```
//!
//! Body of a frame of type [`crate::MessageType::TokenHoldCancel`]; big-endian.

/// Bytes of the body.
pub const BODY_LEN: usize = crate::RingId::LEN;

crate::ring_only::ring_id_message!(
    /// A view of a token-hold-cancel body.
    TokenHoldCancel,
    /// The meaning of a token-hold-cancel message.
    TokenHoldCancelRepr
);
