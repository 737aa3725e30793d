//! The receive side of packing: an ordered frame's payload becomes application messages.
//! Whole records are delivered as zero-copy slices of the frame; fragments are joined in
//! one buffer per originator and delivered when the last piece arrives.
//!
//! A chain is only ever joined from pieces of one configuration: at every configuration
//! change the ring calls [`Reassembly::clear`] after the old ring's last deliveries, and the
//! senders restart partly sent messages on the new ring (`outq.rs`). A piece with no start
//! (`Middle`/`Last` without `First`) is discarded and counted, never delivered.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use bytes::Bytes;
use totem_proto::pack::{Pack, RecordKind};
use totem_proto::{NodeId, ServiceId};

/// A message being joined.
#[derive(Debug)]
struct Partial {
    service: ServiceId,
    total: usize,
    buf: Vec<u8>,
}

/// What unpacking one frame produced, besides the messages themselves.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UnpackStats {
    /// The payload was not a valid packed frame.
    pub(crate) bad_pack: bool,
    /// Fragments dropped (orphans, oversize, inconsistent lengths).
    pub(crate) discarded: u32,
}

#[derive(Debug, Default)]
pub(crate) struct Reassembly {
    partial: BTreeMap<NodeId, Partial>,
    max_message_len: usize,
}

impl Reassembly {
    pub(crate) fn new(max_message_len: usize) -> Self {
        Self {
            partial: BTreeMap::new(),
            max_message_len,
        }
    }

    /// Forgets every partly joined message (configuration change); returns how many.
    pub(crate) fn clear(&mut self) -> usize {
        let n = self.partial.len();
        self.partial.clear();
        n
    }

    /// Unpacks `payload` (a packed frame from `originator`) and hands each complete message
    /// to `deliver`.
    pub(crate) fn unpack(
        &mut self,
        originator: NodeId,
        payload: &Bytes,
        mut deliver: impl FnMut(ServiceId, Bytes),
    ) -> UnpackStats {
        let mut stats = UnpackStats::default();
        let Ok(pack) = Pack::new_checked(payload) else {
            // A frame we cannot read ends any chain of its sender: the rest is unusable.
            stats.bad_pack = true;
            stats.discarded += u32::from(self.partial.remove(&originator).is_some());
            return stats;
        };
        for rec in pack.records() {
            match rec.kind {
                RecordKind::Whole => deliver(rec.service, payload.slice_ref(rec.data)),
                RecordKind::First => {
                    let total = rec.total_len.map_or(0, |t| t as usize);
                    if self.partial.remove(&originator).is_some() {
                        stats.discarded += 1;
                    }
                    if total > self.max_message_len {
                        stats.discarded += 1;
                        continue;
                    }
                    let mut buf = Vec::with_capacity(total);
                    buf.extend_from_slice(rec.data);
                    self.partial.insert(
                        originator,
                        Partial {
                            service: rec.service,
                            total,
                            buf,
                        },
                    );
                }
                RecordKind::Middle | RecordKind::Last => {
                    let Some(p) = self.partial.get_mut(&originator) else {
                        stats.discarded += 1;
                        continue;
                    };
                    let fits = p.buf.len() + rec.data.len() <= p.total;
                    let last = rec.kind == RecordKind::Last;
                    if !fits
                        || p.service != rec.service
                        || (last && p.buf.len() + rec.data.len() != p.total)
                    {
                        self.partial.remove(&originator);
                        stats.discarded += 1;
                        continue;
                    }
                    p.buf.extend_from_slice(rec.data);
                    if last && let Some(done) = self.partial.remove(&originator) {
                        deliver(done.service, Bytes::from(done.buf));
                    }
                }
                RecordKind::Unknown(_) => stats.discarded += 1,
            }
        }
        stats
    }
}
