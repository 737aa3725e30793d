//! The send side of packing: application messages waiting for a token visit, and the
//! packing of them into MCAST frames (many small ones per frame, large ones fragmented).
//!
//! Memory is bounded by `send_queue_bytes`: `submit` is refused with back-pressure when the
//! queue would exceed it, whatever the sender's speed. A message whose fragments are only
//! partly sent when the ring changes is sent again from its start on the new ring; the
//! receivers discard the orphaned pieces (see `reasm.rs`), so a message is never delivered
//! across two configurations.

use alloc::collections::VecDeque;
use alloc::vec;

use bytes::Bytes;
use totem_proto::pack::{PACK_HEADER_LEN, PackWriter, Progress, RECORD_HEADER_LEN};
use totem_proto::{
    FrameHead, Guarantee, HEADER_LEN, MCAST_HEADER_LEN, Mcast, McastRepr, NodeId, RingId, Seq,
    ServiceId, emit_frame,
};

/// Smallest first fragment worth starting at the end of a partly filled frame.
const MIN_FIRST_FRAGMENT: usize = 64;

#[derive(Debug, Clone)]
struct Pending {
    service: ServiceId,
    guarantee: Guarantee,
    data: Bytes,
    /// Bytes already packed into frames (fragmented messages).
    offset: usize,
}

#[derive(Debug, Clone)]
pub(crate) struct OutQueue {
    queue: VecDeque<Pending>,
    /// Bytes of unsent data (what `send_queue_bytes` bounds).
    bytes: usize,
    /// Usable packed bytes per frame.
    capacity: usize,
}

impl OutQueue {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            queue: VecDeque::new(),
            bytes: 0,
            capacity,
        }
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    pub(crate) fn push(&mut self, service: ServiceId, guarantee: Guarantee, data: Bytes) {
        self.bytes += data.len();
        self.queue.push_back(Pending {
            service,
            guarantee,
            data,
            offset: 0,
        });
    }

    /// Frames the queue would take at least (the backlog reported on the token).
    pub(crate) fn backlog_frames(&self) -> u32 {
        let per = self
            .capacity
            .saturating_sub(PACK_HEADER_LEN + RECORD_HEADER_LEN)
            .max(1);
        u32::try_from(self.bytes.div_ceil(per)).unwrap_or(u32::MAX)
    }

    /// A partly sent message restarts from its first byte (a new ring began).
    pub(crate) fn restart_partial(&mut self) {
        if let Some(head) = self.queue.front_mut() {
            self.bytes += head.offset;
            head.offset = 0;
        }
    }

    /// Packs the head of the queue into one MCAST frame for `ring_id` at `seq`; `None` if
    /// the queue is empty.
    pub(crate) fn next_frame(
        &mut self,
        head: &FrameHead,
        ring_id: RingId,
        seq: Seq,
        originator: NodeId,
    ) -> Option<(Bytes, Guarantee)> {
        if self.queue.is_empty() {
            return None;
        }
        let body_at = HEADER_LEN + MCAST_HEADER_LEN;
        let mut buf = vec![0u8; body_at + self.capacity];
        let mut guarantee = Guarantee::Agreed;
        let packed = {
            let Ok(mut w) = PackWriter::new(&mut buf[body_at..]) else {
                return None;
            };
            while let Some(p) = self.queue.front_mut() {
                // A message that fits an empty frame is never fragmented: close this one.
                let min_first =
                    if p.data.len() + PACK_HEADER_LEN + RECORD_HEADER_LEN <= self.capacity {
                        usize::MAX
                    } else {
                        MIN_FIRST_FRAGMENT
                    };
                let before = p.offset;
                let progress = w.push_part(p.service, &p.data, &mut p.offset, min_first);
                self.bytes -= p.offset - before;
                if p.offset > before && p.guarantee == Guarantee::Safe {
                    guarantee = Guarantee::Safe;
                }
                match progress {
                    Progress::Complete => {
                        self.queue.pop_front();
                    }
                    Progress::Partial | Progress::NoRoom => break,
                }
            }
            w.finish()
        };
        if packed == 0 {
            // Cannot happen with a valid capacity (an empty frame takes any message or
            // fragment); dropping the head keeps the ring live if it ever does.
            if let Some(p) = self.queue.pop_front() {
                self.bytes -= p.data.len() - p.offset;
            }
            return None;
        }
        // Write the headers in front of the packed payload already in place: the
        // application bytes are copied once, into the frame.
        let repr = McastRepr {
            ring_id,
            seq,
            originator,
            guarantee,
            payload: &[],
        };
        emit_frame(head, &repr, &mut buf[..body_at]).ok()?;
        // `packed` is at most the frame capacity (< 64 KiB).
        Mcast::new_unchecked(&mut buf[HEADER_LEN..]).set_payload_len(packed as u32);
        buf.truncate(body_at + packed);
        Some((Bytes::from(buf), guarantee))
    }
}
