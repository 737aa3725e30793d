//! What the daemon needs of a transport beyond the [`Transport`] trait: a socket tokio can
//! watch, and — for middleware that holds datagrams back, like the fault injector — the
//! current time and when it next needs attention.

use std::os::fd::{AsRawFd, RawFd};

use totem_proto::time::Instant;
use totem_transport::{Dest, FaultInjector, RecvMeta, Transmit, Transport, TransportError};
use transport_udp::{UdpMulticast, UdpUnicast};

/// A transport the daemon can drive.
pub trait Link: Transport + AsRawFd {
    /// The time now (middleware that delays datagrams releases what is due).
    fn set_now(&mut self, _now: Instant) {}
    /// When the link next needs a call even without socket readiness.
    fn poll_at(&self) -> Option<Instant> {
        None
    }
    /// Called when the fd is readable, before the daemon reads: a link whose fd is an
    /// event channel (InfiniBand's completion channel) consumes and re-arms it here.
    fn on_readable(&mut self) {}
}

impl Link for UdpUnicast {}
impl Link for UdpMulticast {}

/// A link with experimental fault injection (`totem { fault_injection { } }`): loss,
/// duplication and delay on receive, seeded. For experiments only, off by default.
#[derive(Debug)]
pub struct Faulty<T: Transport>(pub FaultInjector<T>);

impl<T: Transport> Transport for Faulty<T> {
    fn max_datagram(&self) -> usize {
        self.0.max_datagram()
    }
    fn send(&mut self, dest: Dest, frame: &[u8]) -> Result<(), TransportError> {
        self.0.send(dest, frame)
    }
    fn recv(&mut self, buf: &mut [u8]) -> Result<Option<RecvMeta>, TransportError> {
        self.0.recv(buf)
    }
    fn send_batch(&mut self, transmits: &[Transmit<'_>]) -> (usize, Option<TransportError>) {
        self.0.send_batch(transmits)
    }
    fn recv_batch(
        &mut self,
        bufs: &mut [&mut [u8]],
        metas: &mut [RecvMeta],
    ) -> (usize, Option<TransportError>) {
        self.0.recv_batch(bufs, metas)
    }
}

impl<T: Transport + AsRawFd> AsRawFd for Faulty<T> {
    fn as_raw_fd(&self) -> RawFd {
        self.0.inner().as_raw_fd()
    }
}

impl<T: Link> Link for Faulty<T> {
    fn set_now(&mut self, now: Instant) {
        self.0.set_now(now);
        self.0.inner_mut().set_now(now);
    }
    fn poll_at(&self) -> Option<Instant> {
        match (self.0.poll_at(), self.0.inner().poll_at()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
    fn on_readable(&mut self) {
        self.0.inner_mut().on_readable();
    }
}
