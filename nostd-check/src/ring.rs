//! totem-ring without std: three rings over an in-memory network of `heapless` queues form
//! one ring, exchange 100 messages (a large fragmented one among them), and deliver them in
//! the same order; then one node leaves and the other two form a new ring.

use alloc::vec::Vec;

use bytes::Bytes;
use heapless::Deque;
use totem_proto::time::{Duration, Instant};
use totem_proto::{Guarantee, NodeId, ServiceId};
use totem_ring::{Config, ConfigurationKind, Dest, Event, PeerAddr, Ring, State};

use crate::ensure;

const N: usize = 3;

/// One datagram in flight: to, from, bytes.
type Packet = (usize, usize, Bytes);

struct Net {
    now: Instant,
    rings: [Option<Ring>; N],
    wire: Deque<Packet, 512>,
    delivered: [Vec<Bytes>; N],
    regular_configs: [u32; N],
}

impl Net {
    /// Drains one ring's outputs onto the wire and into the logs (the driver's five lines).
    fn drain(&mut self, i: usize) -> Result<(), &'static str> {
        let Some(ring) = self.rings[i].as_mut() else {
            return Ok(());
        };
        while let Some(ev) = ring.poll_event() {
            match ev {
                Event::Deliver(d) => self.delivered[i].push(d.payload),
                Event::Configuration(c) if c.kind == ConfigurationKind::Regular => {
                    self.regular_configs[i] += 1
                }
                _ => {}
            }
        }
        while let Some(t) = ring.poll_transmit() {
            for j in 0..N {
                let to_j = match t.dest {
                    Dest::Multicast => j != i,
                    Dest::Node(id) => id == NodeId(j as u32 + 1),
                };
                if to_j {
                    self.wire
                        .push_back((j, i, t.frame.clone()))
                        .map_err(|_| "wire queue full")?;
                }
            }
        }
        Ok(())
    }

    /// Delivers every datagram in flight, else advances to the earliest timer.
    fn step(&mut self) -> Result<(), &'static str> {
        if let Some((to, from, bytes)) = self.wire.pop_front() {
            self.now += Duration::from_micros(50);
            if let Some(r) = self.rings[to].as_mut() {
                r.handle_datagram(self.now, PeerAddr::Node(NodeId(from as u32 + 1)), &bytes);
            }
            return self.drain(to);
        }
        let next = self
            .rings
            .iter()
            .flatten()
            .filter_map(Ring::poll_timeout)
            .min();
        if let Some(t) = next {
            self.now = self.now.max(t);
        }
        for i in 0..N {
            if let Some(r) = self.rings[i].as_mut() {
                r.handle_timeout(self.now);
            }
            self.drain(i)?;
        }
        Ok(())
    }

    fn run_until(&mut self, done: impl Fn(&Self) -> bool) -> Result<(), &'static str> {
        for _ in 0..200_000 {
            if done(self) {
                return Ok(());
            }
            self.step()?;
        }
        Err("no progress within 200000 steps")
    }

    fn operational(&self, members: usize) -> bool {
        self.rings
            .iter()
            .flatten()
            .all(|r| r.state() == State::Operational && r.members().len() == members)
    }
}

pub(crate) fn scenario() -> Result<(), &'static str> {
    let mut net = Net {
        now: Instant::ZERO,
        rings: [None, None, None],
        wire: Deque::new(),
        delivered: [Vec::new(), Vec::new(), Vec::new()],
        regular_configs: [0; N],
    };
    for i in 0..N {
        let mut c = Config::new(NodeId(i as u32 + 1), 7);
        c.token = Duration::from_millis(300);
        c.join = Duration::from_millis(30);
        c.merge = Duration::from_millis(50);
        c.token_coefficient = Duration::ZERO;
        c.max_message_len = 64 * 1024;
        c.send_queue_bytes = 256 * 1024;
        net.rings[i] = Some(Ring::new(&c, net.now, 0).map_err(|_| "ring config")?);
        net.drain(i)?;
    }
    net.run_until(|n| n.operational(N))?;

    let big: Vec<u8> = (0..40_000u32).map(|i| i as u8).collect();
    for k in 0..100u32 {
        let i = (k % N as u32) as usize;
        let payload = if k == 50 {
            Bytes::from(big.clone())
        } else {
            Bytes::from(Vec::from(k.to_be_bytes()))
        };
        let g = if k % 10 == 0 {
            Guarantee::Safe
        } else {
            Guarantee::Agreed
        };
        let r = net.rings[i].as_mut().ok_or("ring")?;
        r.submit(ServiceId(1), payload, g)
            .map_err(|_| "submit refused")?;
        net.drain(i)?;
    }
    net.run_until(|n| n.delivered.iter().all(|d| d.len() == 100))?;
    ensure(
        net.delivered[0] == net.delivered[1] && net.delivered[1] == net.delivered[2],
        "same order everywhere",
    )?;
    ensure(
        net.delivered[0]
            .iter()
            .any(|p| p.as_ref() == big.as_slice()),
        "large message whole",
    )?;

    // Node 3 leaves cleanly: the others form a new ring of two.
    let now = net.now;
    net.rings[2].as_mut().ok_or("ring 3")?.leave(now);
    net.drain(2)?;
    net.rings[2] = None;
    net.run_until(|n| n.operational(2))?;
    ensure(
        net.regular_configs[0] >= 2,
        "a new regular configuration after the leave",
    )?;
    Ok(())
}
