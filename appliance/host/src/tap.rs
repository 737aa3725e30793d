//! [`TapDevice`]: a Linux TAP interface as a smoltcp `phy::Device`, over libc — the one
//! part of the host binary that an appliance would replace by its MAC driver.
//!
//! Opening `/dev/net/tun` and attaching it to the named interface with `TUNSETIFF`
//! (`IFF_TAP | IFF_NO_PI`: whole Ethernet frames, no packet-information prefix) is the
//! kernel's documented TUN/TAP API (Documentation/networking/tuntap.rst). Frames are then
//! `read(2)` and `write(2)` one per call on the non-blocking descriptor. smoltcp's own
//! `phy-tuntap_interface` does the same but turns on smoltcp's `std` feature, which would
//! make the whole stack std; this device keeps std out of everything below the binary.
//!
//! No allocation per frame: one receive and one transmit buffer, allocated at open.
//! `unsafe` is confined to the two system calls std has no wrapper for (`ioctl`, `poll`),
//! each with its `// SAFETY:` argument.

use core::time::Duration;
use std::fs::{File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::os::fd::{AsRawFd as _, BorrowedFd};
use std::os::unix::fs::OpenOptionsExt as _;

use totem_appliance::smoltcp::phy::{self, DeviceCapabilities, Medium};
use totem_appliance::smoltcp::time::Instant;

/// Ethernet header (no VLAN tag): destination, source, EtherType.
const ETHERNET_HEADER: usize = 14;

/// The interface's IP MTU (the kernel's default for a TAP device and the bridge's).
const IP_MTU: usize = 1500;

/// Largest frame read or written: MTU plus the Ethernet header (plus room for a VLAN tag
/// the bridge might pass on).
const FRAME_BUF: usize = IP_MTU + ETHERNET_HEADER + 4;

/// `struct ifreq` as TUNSETIFF reads it: the interface name, then the flags (a `short`) at
/// the start of the union; 40 bytes in all on 64-bit Linux.
#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    _rest: [u8; 22],
}

/// Counters of the device.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TapStats {
    pub(crate) rx_frames: u64,
    pub(crate) tx_frames: u64,
    /// Reads or writes that failed (the frame is lost; the ring retransmits).
    pub(crate) errors: u64,
}

/// An open TAP interface.
#[derive(Debug)]
pub(crate) struct TapDevice {
    file: File,
    rx: Vec<u8>,
    tx: Vec<u8>,
    stats: TapStats,
}

impl TapDevice {
    /// Attaches to the TAP interface `name` (created beforehand, e.g. `ip tuntap add dev
    /// NAME mode tap`, or created now if this process may).
    ///
    /// # Errors
    /// The name does not fit `IFNAMSIZ`, `/dev/net/tun` cannot be opened (no permission,
    /// no tun module), or the kernel refuses the interface (another kind of interface of
    /// that name, busy).
    pub(crate) fn open(name: &str) -> io::Result<Self> {
        if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.contains('\0') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "TAP interface name {name:?} must be 1 to {} bytes",
                    libc::IFNAMSIZ - 1
                ),
            ));
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open("/dev/net/tun")
            .map_err(|e| io::Error::new(e.kind(), format!("/dev/net/tun: {e}")))?;
        let mut req = IfReq {
            name: [0; libc::IFNAMSIZ],
            // Both flags fit a short (0x0002 | 0x1000).
            flags: (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short,
            _rest: [0; 22],
        };
        req.name[..name.len()].copy_from_slice(name.as_bytes());
        // SAFETY: `file` is an open /dev/net/tun descriptor; TUNSETIFF reads and writes one
        // `struct ifreq`, and `req` is a live, writable, properly laid out one (name
        // NUL-terminated: it is shorter than IFNAMSIZ and the array was zeroed).
        let rc = unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF, &raw mut req) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(
                e.kind(),
                format!("TUNSETIFF {name} (IFF_TAP|IFF_NO_PI): {e}"),
            ));
        }
        Ok(Self {
            file,
            rx: vec![0; FRAME_BUF],
            tx: vec![0; FRAME_BUF],
            stats: TapStats::default(),
        })
    }

    pub(crate) fn stats(&self) -> TapStats {
        self.stats
    }

    /// Sleeps until a frame can be read, `extra` (stdin) is readable or has hung up, or
    /// `timeout` passed; returns whether `extra` is ready. An interrupted wait returns
    /// early, as a timeout.
    pub(crate) fn wait(&self, extra: Option<BorrowedFd<'_>>, timeout: Duration) -> bool {
        let mut fds = [
            libc::pollfd {
                fd: self.file.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: extra.map_or(-1, |fd| fd.as_raw_fd()),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
        // SAFETY: `fds` is an array of two initialised pollfd entries that lives across the
        // call, and its length is passed; a negative fd is ignored by poll(2).
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, ms) };
        n > 0 && fds[1].revents != 0
    }
}

/// A received frame, borrowed from the device's receive buffer.
pub(crate) struct RxToken<'a>(&'a [u8]);

/// Room to send one frame.
pub(crate) struct TxToken<'a> {
    file: &'a File,
    buf: &'a mut Vec<u8>,
    stats: &'a mut TapStats,
}

impl phy::RxToken for RxToken<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.0)
    }
}

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        // smoltcp never asks for more than the MTU it was given; a larger request still
        // gets a buffer of its size (resize keeps the allocation once grown).
        self.buf.resize(len, 0);
        let r = f(&mut self.buf[..len]);
        match (&*self.file).write(&self.buf[..len]) {
            Ok(_) => self.stats.tx_frames += 1,
            Err(e) => {
                self.stats.errors += 1;
                log::debug!("tap: write of a {len}-byte frame failed: {e}");
            }
        }
        r
    }
}

impl phy::Device for TapDevice {
    type RxToken<'a> = RxToken<'a>;
    type TxToken<'a> = TxToken<'a>;

    fn receive(&mut self, _now: Instant) -> Option<(RxToken<'_>, TxToken<'_>)> {
        match (&self.file).read(&mut self.rx) {
            Ok(0) => None,
            Ok(n) => {
                self.stats.rx_frames += 1;
                Some((
                    RxToken(&self.rx[..n]),
                    TxToken {
                        file: &self.file,
                        buf: &mut self.tx,
                        stats: &mut self.stats,
                    },
                ))
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
            Err(e) => {
                self.stats.errors += 1;
                log::debug!("tap: read failed: {e}");
                None
            }
        }
    }

    fn transmit(&mut self, _now: Instant) -> Option<TxToken<'_>> {
        Some(TxToken {
            file: &self.file,
            buf: &mut self.tx,
            stats: &mut self.stats,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = IP_MTU + ETHERNET_HEADER;
        caps
    }
}
