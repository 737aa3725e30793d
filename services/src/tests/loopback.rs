//! A stand-in for the ring, for the dispatcher's unit tests: one global FIFO of multicasts,
//! each delivered to every member of its sender's configuration at the time of delivery
//! (which is a total order, and models a message queued on one ring and sent on the next).
//! Configurations are installed by hand: a transitional one (old members ∩ new), then the
//! regular one, exactly as the ring announces them.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;

use totem_proto::{NodeId, RingId};
use totem_ring::{Configuration, ConfigurationKind, Delivery};

use crate::{Action, Outgoing, Services};

pub(crate) struct Loopback {
    pub(crate) nodes: BTreeMap<NodeId, Services>,
    /// Each node's current configuration.
    configs: BTreeMap<NodeId, (RingId, Vec<NodeId>)>,
    queue: VecDeque<(NodeId, Outgoing)>,
    ring_seq: u64,
    pub(crate) actions: BTreeMap<NodeId, Vec<Action>>,
    /// Every delivery, in order, per receiving node.
    pub(crate) delivered: BTreeMap<NodeId, Vec<Delivery>>,
}

impl Loopback {
    pub(crate) fn new(nodes: Vec<Services>) -> Self {
        Self {
            nodes: nodes.into_iter().map(|s| (s.node_id(), s)).collect(),
            configs: BTreeMap::new(),
            queue: VecDeque::new(),
            ring_seq: 0,
            actions: BTreeMap::new(),
            delivered: BTreeMap::new(),
        }
    }

    /// Installs one new configuration per group.
    pub(crate) fn configure(&mut self, groups: &[&[u32]]) {
        self.flush();
        for group in groups {
            self.ring_seq += 4;
            let members: Vec<NodeId> = group.iter().map(|n| NodeId(*n)).collect();
            let ring_id = RingId::new(members[0], self.ring_seq);
            for node in &members {
                let old = self
                    .configs
                    .get(node)
                    .map(|(_, m)| m.clone())
                    .unwrap_or_else(|| alloc::vec![*node]);
                let trans: Vec<NodeId> = old.into_iter().filter(|n| members.contains(n)).collect();
                let services = self.nodes.get_mut(node).unwrap();
                services.handle_configuration(&Configuration {
                    kind: ConfigurationKind::Transitional,
                    ring_id,
                    members: trans,
                    left: Vec::new(),
                    joined: Vec::new(),
                });
                services.handle_configuration(&Configuration {
                    kind: ConfigurationKind::Regular,
                    ring_id,
                    members: members.clone(),
                    left: Vec::new(),
                    joined: Vec::new(),
                });
                self.configs.insert(*node, (ring_id, members.clone()));
            }
        }
        self.flush();
    }

    /// Moves every node's multicasts to the queue and its actions to `actions`.
    pub(crate) fn flush(&mut self) {
        for (id, s) in &mut self.nodes {
            let queue = &mut self.queue;
            let _ = s.flush_multicasts(|service, payload, guarantee| {
                queue.push_back((
                    *id,
                    Outgoing {
                        service,
                        payload,
                        guarantee,
                    },
                ));
                Ok(())
            });
            while let Some(a) = s.poll_action() {
                self.actions.entry(*id).or_default().push(a);
            }
        }
    }

    /// Delivers up to `n` queued messages; returns how many.
    pub(crate) fn deliver(&mut self, n: usize) -> usize {
        let mut done = 0;
        while done < n {
            self.flush();
            let Some((sender, m)) = self.queue.pop_front() else {
                break;
            };
            done += 1;
            let Some((ring_id, members)) = self.configs.get(&sender).cloned() else {
                continue;
            };
            for node in members {
                let d = Delivery {
                    sender,
                    service: m.service,
                    guarantee: m.guarantee,
                    ring_id,
                    payload: m.payload.clone(),
                };
                self.delivered.entry(node).or_default().push(d.clone());
                self.nodes.get_mut(&node).unwrap().handle_delivery(d);
            }
        }
        self.flush();
        done
    }

    /// Delivers until nothing is queued.
    pub(crate) fn run(&mut self) {
        while self.deliver(1000) > 0 {}
    }

    pub(crate) fn services(&mut self, id: u32) -> &mut Services {
        self.nodes.get_mut(&NodeId(id)).unwrap()
    }
}
