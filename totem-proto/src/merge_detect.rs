//! Merge detect: "ring `ring_id` is here". The representative of an idle ring broadcasts it
//! (every `merge` timeout while the token is held) so that another ring in the same
//! broadcast domain notices and both merge through a gather (Totem TOCS'95 membership;
//! corosync `memb_merge_detect_transmit`). The sender is in the frame header.
//!
//! ```text
//!  0          12
//!  +----------+
//!  | ring id  |
//!  +----------+
//! ```
//!
//! Body of a frame of type [`crate::MessageType::MergeDetect`]; big-endian.

/// Bytes of the body.
pub const BODY_LEN: usize = crate::RingId::LEN;

crate::ring_only::ring_id_message!(
    /// A view of a merge-detect body.
    MergeDetect,
    /// The meaning of a merge-detect message.
    MergeDetectRepr
);
