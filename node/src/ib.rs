//! `transport: ib` (feature `ib`): the InfiniBand transport of `transport-ib` over the real
//! verbs provider, as a [`Link`] the daemon can drive.
//!
//! The daemon sleeps in epoll on the provider's completion channel fd: it becomes readable
//! when a completion lands on an armed CQ. [`Link::on_readable`] consumes the channel's
//! events and re-arms both CQs *before* the daemon polls them (through `recv`), so a
//! completion that arrives after the poll raises a new event instead of being missed. While
//! frames wait for send slots, [`Link::poll_at`] asks for a call within a millisecond, since
//! the channel fd never reports "writable" the way a socket does.

use std::os::fd::{AsRawFd, RawFd};

use totem_proto::NodeId;
use totem_proto::time::{Duration, Instant};
use totem_transport::{Dest, RecvMeta, Transmit, Transport, TransportError};
use transport_ib::real::{IbVerbs, open_transport};
use transport_ib::{IbConfig, IbOptions, IbTransport, VerbsError};

use crate::link::Link;

/// The InfiniBand transport, driven by its completion channel.
#[derive(Debug)]
pub struct IbLink {
    inner: IbTransport<IbVerbs>,
    now: Instant,
    /// Re-arming the CQs failed: no event may come, so poll every millisecond until a
    /// re-arm succeeds.
    unarmed: bool,
}

impl IbLink {
    /// Opens the device of `opts` for node `me` and adds the peers whose `ib_addr` is
    /// configured (the others are learned from their first datagram).
    ///
    /// # Errors
    /// A message for the user: [`transport_ib::NO_DEVICE_MESSAGE`] without an RDMA device
    /// (or without the named one), the verbs error otherwise.
    pub fn open(
        opts: &IbOptions,
        me: NodeId,
        peers: &[(NodeId, transport_ib::IbAddr)],
    ) -> Result<Self, String> {
        let mut inner = open_transport(opts, me, IbConfig::default()).map_err(|e| match e {
            VerbsError::NoDevice => match &opts.device {
                Some(d) => format!("{} (ib_device {d:?})", transport_ib::NO_DEVICE_MESSAGE),
                None => transport_ib::NO_DEVICE_MESSAGE.to_owned(),
            },
            e => format!("transport ib: {e}"),
        })?;
        for (node, addr) in peers.iter().filter(|(n, _)| *n != me) {
            inner
                .add_peer(*node, *addr)
                .map_err(|e| format!("transport ib: peer {node} at {addr}: {e}"))?;
        }
        Ok(Self {
            inner,
            now: Instant::ZERO,
            unarmed: false,
        })
    }

    /// This node's address, to print at start-up (peers put it in their `ib_addr`).
    pub fn local_addr(&self) -> transport_ib::IbAddr {
        self.inner.local_addr()
    }
}

impl Transport for IbLink {
    fn max_datagram(&self) -> usize {
        self.inner.max_datagram()
    }
    fn send(&mut self, dest: Dest, frame: &[u8]) -> Result<(), TransportError> {
        self.inner.send(dest, frame)
    }
    fn recv(&mut self, buf: &mut [u8]) -> Result<Option<RecvMeta>, TransportError> {
        self.inner.recv(buf)
    }
    fn send_batch(&mut self, transmits: &[Transmit<'_>]) -> (usize, Option<TransportError>) {
        self.inner.send_batch(transmits)
    }
    fn recv_batch(
        &mut self,
        bufs: &mut [&mut [u8]],
        metas: &mut [RecvMeta],
    ) -> (usize, Option<TransportError>) {
        self.inner.recv_batch(bufs, metas)
    }
}

impl AsRawFd for IbLink {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.verbs().event_fd()
    }
}

impl Link for IbLink {
    fn set_now(&mut self, now: Instant) {
        self.now = now;
    }
    fn poll_at(&self) -> Option<Instant> {
        // Frames waiting for send slots (or a queue pair waiting for recovery) need a call
        // even without a completion event.
        (self.unarmed || !self.inner.is_writable()).then(|| self.now + Duration::from_millis(1))
    }
    fn on_readable(&mut self) {
        match self.inner.verbs_mut().rearm() {
            Ok(()) => self.unarmed = false,
            Err(e) => {
                if !self.unarmed {
                    tracing::warn!(
                        "transport ib: re-arming the completion queues failed ({e}); polling"
                    );
                }
                self.unarmed = true;
            }
        }
    }
}
