//! The sort queue: ordered messages of one ring indexed by seq, kept until every member has
//! them (for retransmission) and they are delivered (corosync's `regular_sort_queue` /
//! `recovery_sort_queue`).
//!
//! A window of at most `retransmit_window` slots starting at `base`; a seq outside it is
//! refused, never stored, and never a panic (corosync aborts there, its issue #371). Each
//! missing slot counts the token visits it has been missing, for `miss_count_const`.

use alloc::collections::VecDeque;

use bytes::Bytes;
use totem_proto::{Guarantee, NodeId, Seq};

/// One ordered message.
#[derive(Debug, Clone)]
pub(crate) struct Stored {
    /// The whole frame as received or sent, resent verbatim on a retransmission request.
    pub(crate) frame: Bytes,
    /// Who submitted it.
    pub(crate) originator: NodeId,
    /// The guarantee asked for.
    pub(crate) guarantee: Guarantee,
    /// The MCAST payload (a packed frame, or an old-ring frame when encapsulated): a slice
    /// of `frame`.
    pub(crate) payload: Bytes,
}

#[derive(Debug, Clone)]
enum Slot {
    Missing { misses: u32 },
    Present(Stored),
}

/// What [`SortQueue::insert`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Insert {
    Stored,
    Duplicate,
    OutOfWindow,
}

#[derive(Debug, Clone)]
pub(crate) struct SortQueue {
    /// Seq of `slots[0]`.
    base: Seq,
    slots: VecDeque<Slot>,
    window: u64,
}

impl SortQueue {
    /// An empty queue whose first expected seq is `base`.
    pub(crate) fn new(base: Seq, window: u32) -> Self {
        Self {
            base,
            slots: VecDeque::new(),
            window: u64::from(window),
        }
    }

    /// Empties the queue; the next expected seq is `base`.
    pub(crate) fn reset(&mut self, base: Seq) {
        self.base = base;
        self.slots.clear();
    }

    /// Whether `seq` can be held (inside the window).
    pub(crate) fn in_window(&self, seq: Seq) -> bool {
        seq >= self.base && seq - self.base < self.window
    }

    fn index(&self, seq: Seq) -> Option<usize> {
        if self.in_window(seq) {
            usize::try_from(seq - self.base).ok()
        } else {
            None
        }
    }

    /// Grows the slot array so that `index` exists.
    fn cover(&mut self, index: usize) {
        while self.slots.len() <= index {
            self.slots.push_back(Slot::Missing { misses: 0 });
        }
    }

    pub(crate) fn insert(&mut self, seq: Seq, msg: Stored) -> Insert {
        let Some(i) = self.index(seq) else {
            return Insert::OutOfWindow;
        };
        self.cover(i);
        match &self.slots[i] {
            Slot::Present(_) => Insert::Duplicate,
            Slot::Missing { .. } => {
                self.slots[i] = Slot::Present(msg);
                Insert::Stored
            }
        }
    }

    pub(crate) fn get(&self, seq: Seq) -> Option<&Stored> {
        match self.slots.get(self.index(seq)?)? {
            Slot::Present(m) => Some(m),
            Slot::Missing { .. } => None,
        }
    }

    pub(crate) fn contains(&self, seq: Seq) -> bool {
        self.get(seq).is_some()
    }

    /// Counts one more token visit with `seq` missing and returns the count (0 if present or
    /// outside the window).
    pub(crate) fn bump_miss(&mut self, seq: Seq) -> u32 {
        let Some(i) = self.index(seq) else { return 0 };
        self.cover(i);
        match &mut self.slots[i] {
            Slot::Missing { misses } => {
                *misses = misses.saturating_add(1);
                *misses
            }
            Slot::Present(_) => 0,
        }
    }

    /// Drops every message up to and including `seq` and moves the window past it.
    pub(crate) fn release_to(&mut self, seq: Seq) {
        while self.base <= seq {
            if self.slots.pop_front().is_none() {
                // Nothing stored that far: jump the window.
                self.base = seq + 1;
                return;
            }
            self.base += 1;
        }
    }

    /// Messages stored (for statistics and memory accounting).
    pub(crate) fn stored(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| matches!(s, Slot::Present(_)))
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg() -> Stored {
        Stored {
            frame: Bytes::new(),
            originator: NodeId(1),
            guarantee: Guarantee::Agreed,
            payload: Bytes::new(),
        }
    }

    #[test]
    fn window_is_enforced_without_panicking() {
        let mut q = SortQueue::new(1, 4);
        assert_eq!(q.insert(0, msg()), Insert::OutOfWindow);
        assert_eq!(q.insert(4, msg()), Insert::Stored);
        assert_eq!(q.insert(5, msg()), Insert::OutOfWindow);
        assert_eq!(q.insert(4, msg()), Insert::Duplicate);
        assert!(!q.contains(2) && q.contains(4));
        assert_eq!(q.bump_miss(2), 1);
        assert_eq!(q.bump_miss(2), 2);
        assert_eq!(q.bump_miss(4), 0);
        q.release_to(3);
        assert!(!q.in_window(3) && q.in_window(4));
        assert!(q.in_window(7) && !q.in_window(8));
        q.release_to(100);
        assert!(!q.in_window(100) && q.in_window(101));
        assert_eq!(q.stored(), 0);
    }
}
