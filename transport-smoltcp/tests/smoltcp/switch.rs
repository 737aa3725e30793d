//! An in-memory Ethernet switch: every port is a smoltcp `phy::Device` over shared queues.
//!
//! Deterministic by construction: frames are forwarded the moment a port transmits them, in
//! transmit order, into per-port FIFO queues; nothing depends on time, hashing or threads.
//! Multicast and broadcast frames flood every other port (a switch without IGMP snooping);
//! unicast frames go to the port owning the destination MAC. A port that is down (its
//! cable pulled: the node's interface dropped) still accepts frames from its node but the
//! switch discards them, and it receives nothing. Optionally every forwarded frame is kept
//! for inspection (`capture`).

use alloc::collections::VecDeque;
use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::RefCell;

use transport_smoltcp::smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use transport_smoltcp::smoltcp::time::Instant;
use transport_smoltcp::smoltcp::wire::EthernetAddress;

/// The Ethernet MTU (payload 1500 + 14-byte header), as smoltcp counts it.
pub(crate) const MTU: usize = 1514;

struct PortState {
    mac: EthernetAddress,
    up: bool,
    rx: VecDeque<Vec<u8>>,
}

#[derive(Default)]
struct Inner {
    ports: Vec<PortState>,
    /// Frames dropped because the receiving queue was full.
    overflow: u64,
    capture: Option<Vec<(usize, Vec<u8>)>>,
}

/// Per-port receive queue bound, like a NIC ring.
const RX_QUEUE: usize = 512;

impl Inner {
    fn forward(&mut self, from: usize, frame: Vec<u8>) {
        if !self.ports[from].up || frame.len() < 14 {
            return;
        }
        if let Some(cap) = self.capture.as_mut() {
            cap.push((from, frame.clone()));
        }
        let dst = EthernetAddress::from_bytes(&frame[..6]);
        let flood = dst.is_multicast() || dst.is_broadcast();
        for (i, p) in self.ports.iter_mut().enumerate() {
            if i == from || !p.up || !(flood || p.mac == dst) {
                continue;
            }
            if p.rx.len() >= RX_QUEUE {
                self.overflow += 1;
                continue;
            }
            p.rx.push_back(frame.clone());
        }
    }
}

/// The switch; clone-cheap handle.
#[derive(Clone, Default)]
pub(crate) struct Switch(Rc<RefCell<Inner>>);

impl Switch {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Plugs in a new port for a NIC with `mac`.
    pub(crate) fn port(&self, mac: EthernetAddress) -> Port {
        let mut inner = self.0.borrow_mut();
        inner.ports.push(PortState {
            mac,
            up: true,
            rx: VecDeque::new(),
        });
        Port {
            switch: self.0.clone(),
            index: inner.ports.len() - 1,
        }
    }

    /// Pulls (`false`) or plugs back (`true`) port `index`'s cable. Pulling it also loses
    /// whatever was queued for it.
    pub(crate) fn set_up(&self, index: usize, up: bool) {
        let mut inner = self.0.borrow_mut();
        inner.ports[index].up = up;
        if !up {
            inner.ports[index].rx.clear();
        }
    }

    /// Whether any frame waits in any port's queue.
    pub(crate) fn busy(&self) -> bool {
        self.0.borrow().ports.iter().any(|p| !p.rx.is_empty())
    }

    pub(crate) fn overflow(&self) -> u64 {
        self.0.borrow().overflow
    }

    /// Starts keeping a copy of every forwarded frame.
    pub(crate) fn start_capture(&self) {
        self.0.borrow_mut().capture = Some(Vec::new());
    }

    /// The frames forwarded since `start_capture` (sending port, Ethernet frame).
    pub(crate) fn take_capture(&self) -> Vec<(usize, Vec<u8>)> {
        self.0.borrow_mut().capture.take().unwrap_or_default()
    }
}

/// One switch port as the node's network device.
pub(crate) struct Port {
    switch: Rc<RefCell<Inner>>,
    index: usize,
}

pub(crate) struct RxToken(Vec<u8>);

pub(crate) struct TxToken {
    switch: Rc<RefCell<Inner>>,
    index: usize,
}

impl phy::RxToken for RxToken {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl phy::TxToken for TxToken {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut frame = alloc::vec![0u8; len];
        let r = f(&mut frame);
        self.switch.borrow_mut().forward(self.index, frame);
        r
    }
}

impl Device for Port {
    type RxToken<'a> = RxToken;
    type TxToken<'a> = TxToken;

    fn receive(&mut self, _now: Instant) -> Option<(RxToken, TxToken)> {
        let frame = self.switch.borrow_mut().ports[self.index].rx.pop_front()?;
        Some((
            RxToken(frame),
            TxToken {
                switch: self.switch.clone(),
                index: self.index,
            },
        ))
    }

    fn transmit(&mut self, _now: Instant) -> Option<TxToken> {
        Some(TxToken {
            switch: self.switch.clone(),
            index: self.index,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = MTU;
        caps
    }
}
