//! Agreed order: every process delivers messages consistently with one total order.
//!
//! EVS94 "Agreed Delivery" and TOCS95's total order (COROSYNC.md §6, rows 6.1, 6.2 and 5):
//!
//! * **6.1 one total order** — for any processes p and q and messages m1, m2 both delivered,
//!   they are delivered in the same relative order; stronger, the union of all processes'
//!   delivery orders has no cycle, so one total order explains them all (pairwise agreement
//!   alone would accept p: a<b, q: b<c, r: c<a). Messages are ordered per ring (each
//!   delivery names its ring) and each process's rings only go up (checked in
//!   `configurations.rs`), so the order is checked per ring: a graph whose edges are
//!   consecutive deliveries of one process on one ring, kept acyclic with an incremental
//!   topological order (Pearce and Kelly, "A dynamic topological sort algorithm for directed
//!   acyclic graphs", JEA 2006). Almost every edge is one many processes share and agrees
//!   with the order of first delivery, so the common case is a lookup.
//! * **6.2 no gaps in a regular configuration** — in a regular configuration a process
//!   delivers the ring's messages in ring order from its first without skipping any
//!   (agreed delivery waits for holes to fill). So the messages each process delivers on a
//!   ring *while in that ring's regular configuration* (including the old ring's last ones
//!   delivered just before the transitional configuration) are prefixes of one sequence.
//!   Only in the transitional configuration may a process skip messages (EVS94 6.3).
//! * **causal order, FIFO part (EVS94 5)** — a sender's messages are delivered in the
//!   order it submitted them: within one configuration by the total order, and across
//!   configurations because the ring sends its queue in order. A gap is allowed (a message
//!   lost with a partition), an inversion is not.

use alloc::collections::BTreeMap;

use totem_proto::RingId;

use super::{Core, MsgIdx, ProcIdx, Violation};

/// Where one process is in its deliveries on its current ring.
#[derive(Debug, Clone, Copy, Default)]
struct Cursor {
    ring: Option<RingId>,
    /// Regular deliveries so far on this ring (its position in the ring's prefix).
    pos: usize,
    /// Once the process delivered outside the regular part, or broke the prefix, the
    /// prefix check stops for this ring (6.2 only constrains the regular part).
    prefix_done: bool,
    /// The last message delivered on this ring.
    last: Option<MsgIdx>,
}

/// The longest regular delivery sequence seen per ring, and who delivered each first.
#[derive(Debug, Default)]
struct Prefix {
    msgs: Vec<MsgIdx>,
    by: Vec<ProcIdx>,
}

#[derive(Debug, Default)]
pub(crate) struct AgreedOrder {
    prefix: BTreeMap<RingId, Prefix>,
    cursor: Vec<Cursor>,
    dag: Dag,
    /// Per (receiver, sender): the highest counter delivered.
    /// Per receiver, per sender: the last message delivered (`usize::MAX`: none).
    fifo: Vec<Vec<MsgIdx>>,
}

impl AgreedOrder {
    pub(crate) fn on_deliver(
        &mut self,
        core: &Core,
        p: ProcIdx,
        m: MsgIdx,
        ring: RingId,
        out: &mut Vec<Violation>,
    ) {
        if self.cursor.len() <= p {
            self.cursor.resize(p + 1, Cursor::default());
        }
        let at = core.now;
        let proc = core.proc(p);
        let cur = &mut self.cursor[p];
        if cur.ring != Some(ring) {
            *cur = Cursor {
                ring: Some(ring),
                ..Cursor::default()
            };
        }

        // 6.1: the edge last → m must not close a cycle.
        let mut cycle = false;
        match cur.last {
            Some(u) => {
                if let Err(path) = self.dag.add_edge(u, m, p) {
                    cycle = true;
                    out.push(Violation::OrderCycle {
                        at,
                        ring,
                        proc,
                        earlier: core.id(u),
                        later: core.id(m),
                        witness: path
                            .iter()
                            .map(|(a, b, q)| (core.id(*a), core.id(*b), core.proc(*q)))
                            .collect(),
                    });
                }
            }
            None => self.dag.touch(m),
        }
        cur.last = Some(m);

        // 6.2: regular deliveries on a ring are prefixes of one sequence.
        let regular = core
            .in_regular(p)
            .is_some_and(|c| core.confs[c].ring_id == ring);
        if !regular || cycle {
            cur.prefix_done = true;
        }
        if !cur.prefix_done {
            let pre = self.prefix.entry(ring).or_default();
            if cur.pos < pre.msgs.len() {
                if pre.msgs[cur.pos] != m {
                    out.push(Violation::RegularGap {
                        at,
                        ring,
                        proc,
                        position: cur.pos,
                        expected: core.id(pre.msgs[cur.pos]),
                        got: core.id(m),
                        witness: core.proc(pre.by[cur.pos]),
                    });
                    cur.prefix_done = true;
                }
            } else {
                pre.msgs.push(m);
                pre.by.push(p);
            }
            cur.pos += 1;
        }

        // Causal (FIFO) order per sender.
        let sender = core.sender(m);
        if self.fifo.len() <= p {
            self.fifo.resize_with(p + 1, Vec::new);
        }
        let row = &mut self.fifo[p];
        if row.len() <= sender {
            row.resize(sender + 1, usize::MAX);
        }
        match row[sender] {
            prev if prev != usize::MAX && core.id(prev).counter > core.id(m).counter => {
                out.push(Violation::SenderOrder {
                    at,
                    proc,
                    msg: core.id(m),
                    after: core.id(prev),
                });
            }
            _ => row[sender] = m,
        }
    }
}

/// The union of every process's delivery order on each ring, kept acyclic, with a
/// topological order maintained incrementally (Pearce–Kelly).
#[derive(Debug, Default)]
struct Dag {
    /// Topological position of each message; `u64::MAX` when not yet in the graph.
    ord: Vec<u64>,
    next_ord: u64,
    /// Out-edges, with the process that first delivered the pair in that order.
    succ: Vec<Vec<(MsgIdx, ProcIdx)>>,
    pred: Vec<Vec<MsgIdx>>,
    /// Visit marks for the searches, by epoch (no clearing between searches).
    mark: Vec<u32>,
    epoch: u32,
}

/// The edges of a path, each with the process that established it.
type Path = Vec<(MsgIdx, MsgIdx, ProcIdx)>;

impl Dag {
    fn grow(&mut self, m: MsgIdx) {
        if self.ord.len() <= m {
            self.ord.resize(m + 1, u64::MAX);
            self.succ.resize_with(m + 1, Vec::new);
            self.pred.resize_with(m + 1, Vec::new);
            self.mark.resize(m + 1, 0);
        }
    }

    /// Puts `m` in the graph (last in the order) if it is not there yet.
    fn touch(&mut self, m: MsgIdx) {
        self.grow(m);
        if self.ord[m] == u64::MAX {
            self.ord[m] = self.next_ord;
            self.next_ord += 1;
        }
    }

    /// Adds `u → v` (process `p` delivered `u` then `v`). `Err` holds the existing path
    /// `v → … → u` the edge would close into a cycle; the edge is not added then.
    fn add_edge(&mut self, u: MsgIdx, v: MsgIdx, p: ProcIdx) -> Result<(), Path> {
        self.touch(u);
        self.touch(v);
        if u == v {
            return Err(Vec::new());
        }
        if self.succ[u].iter().any(|(w, _)| *w == v) {
            return Ok(());
        }
        let (lb, ub) = (self.ord[v], self.ord[u]);
        if lb > ub {
            // Already in topological order: the common case.
            self.link(u, v, p);
            return Ok(());
        }
        // Pearce–Kelly: the nodes reachable from v with order ≤ ord[u] …
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            self.mark.iter_mut().for_each(|x| *x = 0);
            self.epoch = 1;
        }
        let epoch = self.epoch;
        let mut forward = Vec::new();
        let mut parent: BTreeMap<MsgIdx, (MsgIdx, ProcIdx)> = BTreeMap::new();
        let mut stack = vec![v];
        self.mark[v] = epoch;
        while let Some(w) = stack.pop() {
            forward.push(w);
            for &(x, q) in &self.succ[w] {
                if x == u {
                    // A cycle: rebuild the path v → … → w → u.
                    let mut path = vec![(w, u, q)];
                    let mut at = w;
                    while at != v {
                        let (prev, pq) = parent[&at];
                        path.push((prev, at, pq));
                        at = prev;
                    }
                    path.reverse();
                    return Err(path);
                }
                if self.mark[x] != epoch && self.ord[x] <= ub {
                    self.mark[x] = epoch;
                    parent.insert(x, (w, q));
                    stack.push(x);
                }
            }
        }
        // … and the nodes reaching u with order ≥ ord[v].
        let mut backward = Vec::new();
        let mut stack = vec![u];
        self.mark[u] = epoch;
        while let Some(w) = stack.pop() {
            backward.push(w);
            for &x in &self.pred[w] {
                if self.mark[x] != epoch && self.ord[x] >= lb {
                    self.mark[x] = epoch;
                    stack.push(x);
                }
            }
        }
        // Reassign their positions: everything reaching u first, then everything v reaches.
        let ord = &self.ord;
        forward.sort_by_key(|w| ord[*w]);
        backward.sort_by_key(|w| ord[*w]);
        let mut slots: Vec<u64> = forward
            .iter()
            .chain(backward.iter())
            .map(|w| ord[*w])
            .collect();
        slots.sort_unstable();
        for (w, o) in backward.iter().chain(forward.iter()).zip(slots) {
            self.ord[*w] = o;
        }
        self.link(u, v, p);
        Ok(())
    }

    fn link(&mut self, u: MsgIdx, v: MsgIdx, p: ProcIdx) {
        self.succ[u].push((v, p));
        self.pred[v].push(u);
    }
}

#[cfg(test)]
mod tests {
    use totem_proto::{Guarantee, NodeId, RingId};

    use super::super::test_log::Log;
    use super::super::{Property, Violation};
    use super::Dag;

    #[test]
    fn a_clean_log_passes_even_with_transitional_gaps() {
        let mut l = Log::new(&[1, 2, 3]);
        let r = l.form(&[1, 2, 3], 4);
        let m: Vec<_> = (0..4)
            .map(|i| l.submit(1 + i % 3, Guarantee::Agreed))
            .collect();
        // 1 and 2 deliver everything in regular; 3 falls behind and, in a transitional
        // configuration without the senders of m1 and m2, skips them.
        for x in &m {
            l.deliver_all(&[1, 2], *x, r);
        }
        l.deliver(3, m[0], r);
        let r3 = RingId::new(NodeId(3), 8);
        l.begin_install(3, r3, &[3]);
        l.deliver(3, m[2], r);
        l.deliver(3, m[3], r);
        l.end_install(3, r3, &[3]);
        assert_eq!(l.kinds(), []);
    }

    #[test]
    fn an_inversion_between_two_processes_is_caught() {
        let mut l = Log::new(&[1, 2]);
        let r = l.form(&[1, 2], 4);
        let a = l.submit(1, Guarantee::Agreed);
        let b = l.submit(2, Guarantee::Agreed);
        l.deliver(1, a, r);
        l.deliver(1, b, r);
        l.deliver(2, b, r);
        l.deliver(2, a, r);
        assert_eq!(l.kinds(), [Property::AgreedOrder, Property::AgreedOrder]);
        assert!(matches!(&l.c.violations()[0], Violation::RegularGap { .. }));
        assert!(
            matches!(&l.c.violations()[1], Violation::OrderCycle { witness, .. } if witness.len() == 1)
        );
    }

    #[test]
    fn a_three_way_cycle_no_pair_sees_is_caught() {
        // p: a<b, q: b<c, r: c<a — pairwise consistent, globally impossible. Delivered in
        // transitional configurations, where gaps are allowed, so only the cycle speaks.
        let mut l = Log::new(&[1, 2, 3]);
        let r = l.form(&[1, 2, 3], 4);
        let (a, b, c) = (
            l.submit(1, Guarantee::Agreed),
            l.submit(2, Guarantee::Agreed),
            l.submit(3, Guarantee::Agreed),
        );
        for n in 1..=3 {
            l.begin_install(n, RingId::new(NodeId(n), 8 + u64::from(n)), &[n]);
        }
        l.deliver(1, a, r);
        l.deliver(1, b, r);
        l.deliver(2, b, r);
        l.deliver(2, c, r);
        l.deliver(3, c, r);
        l.deliver(3, a, r);
        assert!(
            matches!(l.c.violations(), [Violation::OrderCycle { witness, .. }] if witness.len() == 2)
        );
    }

    #[test]
    fn a_gap_in_a_regular_configuration_is_caught() {
        let mut l = Log::new(&[1, 2]);
        let r = l.form(&[1, 2], 4);
        let a = l.submit(1, Guarantee::Agreed);
        let b = l.submit(1, Guarantee::Agreed);
        l.deliver_all(&[1], a, r);
        l.deliver_all(&[1, 2], b, r);
        assert!(matches!(
            l.c.violations(),
            [Violation::RegularGap { position: 0, .. }]
        ));
    }

    #[test]
    fn a_sender_fifo_inversion_is_caught_across_rings() {
        let mut l = Log::new(&[1, 2]);
        let r1 = l.form(&[1, 2], 4);
        let a = l.submit(1, Guarantee::Agreed);
        let b = l.submit(1, Guarantee::Agreed);
        l.deliver(2, b, r1);
        let r2 = l.form(&[1, 2], 8);
        l.deliver(2, a, r2);
        assert!(
            l.c.violations()
                .iter()
                .any(|v| matches!(v, Violation::SenderOrder { .. }))
        );
    }

    #[test]
    fn the_incremental_order_survives_reordering_without_false_cycles() {
        // Edges arrive against the first-seen order many times; no cycle exists.
        let mut d = Dag::default();
        for i in 0..50 {
            d.touch(i);
        }
        for i in (1..50).rev() {
            assert!(d.add_edge(i, i - 1, 0).is_ok());
        }
        for i in (2..50).rev() {
            assert!(d.add_edge(i, i - 2, 0).is_ok());
        }
        assert!(d.add_edge(0, 49, 1).is_err());
        for i in 1..50 {
            assert!(d.ord[i] < d.ord[i - 1]);
        }
    }
}
