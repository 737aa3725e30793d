//! [`NodeList`]: a validated, zero-copy list of node ids inside a frame (join proc/fail
//! sets). Lists on the wire are strictly ascending, so set equality is slice equality and
//! membership a binary search — and a sender cannot smuggle duplicates into a set.

use heapless::Vec;

use crate::error::{DecodeError, Result};
use crate::field;
use crate::{MAX_NODES, NodeId};

/// Bytes of one node id on the wire.
pub const NODE_ID_LEN: usize = 4;

/// A borrowed list of node ids, strictly ascending and non-zero once validated.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct NodeList<'a> {
    bytes: &'a [u8],
}

impl core::fmt::Debug for NodeList<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for NodeList<'_> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "[");
        for (i, n) in self.iter().enumerate() {
            if i > 0 {
                defmt::write!(f, ", ");
            }
            defmt::write!(f, "{}", n.0);
        }
        defmt::write!(f, "]");
    }
}

impl<'a> NodeList<'a> {
    /// Wraps `bytes` (a multiple of 4 long) without validating the ids.
    pub(crate) fn new_unchecked(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    /// Checks every id is non-zero and above the one before it.
    pub(crate) fn check(&self, field_name: &'static str) -> Result<()> {
        let mut prev = 0u32;
        for id in self.iter() {
            if id.0 <= prev {
                // 0 (reserved) and out-of-order or repeated ids are all invalid here.
                return Err(DecodeError::InvalidValue {
                    field: field_name,
                    value: id.0.into(),
                });
            }
            prev = id.0;
        }
        Ok(())
    }

    /// Number of ids.
    pub fn len(&self) -> usize {
        self.bytes.len() / NODE_ID_LEN
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Id number `i`.
    ///
    /// # Panics
    /// If `i >= len()`.
    pub fn get(&self, i: usize) -> NodeId {
        let at = i * NODE_ID_LEN;
        NodeId(field::get_u32(self.bytes, at..at + NODE_ID_LEN))
    }

    /// The ids in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = NodeId> + 'a {
        let bytes = self.bytes;
        (0..bytes.len() / NODE_ID_LEN).map(move |i| {
            NodeId(field::get_u32(
                bytes,
                i * NODE_ID_LEN..(i + 1) * NODE_ID_LEN,
            ))
        })
    }

    /// Whether `id` is in the list (binary search; valid because lists are sorted).
    pub fn contains(&self, id: NodeId) -> bool {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.get(mid).cmp(&id) {
                core::cmp::Ordering::Less => lo = mid + 1,
                core::cmp::Ordering::Greater => hi = mid,
                core::cmp::Ordering::Equal => return true,
            }
        }
        false
    }

    /// Copies the ids into an owned bounded vector.
    pub fn to_vec(&self) -> Vec<NodeId, MAX_NODES> {
        // A NodeList inside a validated frame holds at most MAX_NODES ids; `take` keeps this
        // total even for an unvalidated one.
        self.iter().take(MAX_NODES).collect()
    }
}

/// Writes `ids` at `at`, returning the end offset.
pub(crate) fn emit_ids(buf: &mut [u8], mut at: usize, ids: &[NodeId]) -> usize {
    for id in ids {
        field::set_u32(buf, at..at + NODE_ID_LEN, id.0);
        at += NODE_ID_LEN;
    }
    at
}

/// Whether `ids` is strictly ascending and free of id 0, as lists on the wire must be.
pub fn is_wire_sorted(ids: &[NodeId]) -> bool {
    ids.first().is_none_or(|n| n.0 != 0) && ids.windows(2).all(|w| w[0] < w[1])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(ids: &[u32]) -> alloc::vec::Vec<u8> {
        ids.iter().flat_map(|i| i.to_be_bytes()).collect()
    }

    #[test]
    fn is_wire_sorted_wants_strictly_ascending_nonzero_ids() {
        let n = |l: &[u32]| l.iter().map(|&i| NodeId(i)).collect::<alloc::vec::Vec<_>>();
        assert!(is_wire_sorted(&n(&[])));
        assert!(is_wire_sorted(&n(&[1])));
        assert!(is_wire_sorted(&n(&[1, 2, u32::MAX])));
        assert!(!is_wire_sorted(&n(&[0])));
        assert!(!is_wire_sorted(&n(&[0, 1])));
        assert!(!is_wire_sorted(&n(&[1, 1])));
        assert!(!is_wire_sorted(&n(&[2, 1])));
    }

    #[test]
    fn check_names_the_first_offending_id() {
        let b = bytes(&[1, 5, 3, 0]);
        let e = NodeList::new_unchecked(&b).check("proc_list");
        assert_eq!(
            e,
            Err(DecodeError::InvalidValue {
                field: "proc_list",
                value: 3
            })
        );
        let b = bytes(&[0]);
        let e = NodeList::new_unchecked(&b).check("fail_list");
        assert_eq!(
            e,
            Err(DecodeError::InvalidValue {
                field: "fail_list",
                value: 0
            })
        );
        assert_eq!(NodeList::new_unchecked(&bytes(&[1, 2])).check("x"), Ok(()));
    }

    #[test]
    fn contains_agrees_with_a_linear_search_for_every_length() {
        for len in 0..12u32 {
            let ids: alloc::vec::Vec<u32> = (0..len).map(|i| 3 * i + 1).collect();
            let b = bytes(&ids);
            let list = NodeList::new_unchecked(&b);
            assert_eq!(list.len(), ids.len());
            for probe in 0..3 * len + 3 {
                assert_eq!(
                    list.contains(NodeId(probe)),
                    ids.contains(&probe),
                    "{probe} in {ids:?}"
                );
            }
        }
    }

    #[test]
    fn to_vec_and_iter_give_the_ids_in_order() {
        let b = bytes(&[4, 8, 15]);
        let list = NodeList::new_unchecked(&b);
        assert!(list.iter().eq([NodeId(4), NodeId(8), NodeId(15)]));
        assert_eq!(
            list.to_vec().as_slice(),
            &[NodeId(4), NodeId(8), NodeId(15)]
        );
        assert_eq!(list.get(2), NodeId(15));
        assert!(!list.is_empty() && NodeList::new_unchecked(&[]).is_empty());
        assert_eq!(
            alloc::format!("{list:?}"),
            "[NodeId(4), NodeId(8), NodeId(15)]"
        );
    }
}
