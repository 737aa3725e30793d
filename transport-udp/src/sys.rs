//! The fence around every `unsafe` block of the crate (STYLE point 14): raw `libc` calls that
//! socket2 does not cover, each behind a safe function.
//!
//! * [`recv_one`] / [`send_one`]: `recvmsg` / `sendmsg`, so one call yields the source
//!   address *and* `MSG_TRUNC`, and a send can carry the source-pinning control message.
//! * [`recv_many`] / [`send_many`] (Linux): `recvmmsg` / `sendmmsg`, up to [`BATCH`] datagrams
//!   per system call.
//! * [`SourceCtl`] (Linux): a prebuilt `IP_PKTINFO` / `IPV6_PKTINFO` control message that pins
//!   the source address of every datagram sent from a wildcard-bound socket.
//! * [`set_buffer_forced`] (Linux): `SO_SNDBUFFORCE` / `SO_RCVBUFFORCE`.
//! * [`ipv6_ifindex`]: `getifaddrs` + `if_nametoindex`, to find the interface that carries an
//!   IPv6 address (IPv6 multicast options take an interface index, not an address).
//!
//! Everything else (socket creation, options socket2 has, bind, multicast joins) goes through
//! socket2's safe API in the callers. Every block states its invariant in a `// SAFETY:`
//! line; the crate root denies undocumented unsafe blocks and unsafe operations hidden inside
//! `unsafe fn`s.

use core::ffi::CStr;
use core::mem;
use core::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use core::ptr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// Most datagrams moved by one `recvmmsg` / `sendmmsg` call. The per-call arrays live on the
/// stack (about 7 KiB at 32), so nothing is allocated per batch and the transports stay `Send`
/// (no raw pointers are kept between calls).
pub(crate) const BATCH: usize = 32;

/// What the kernel told us about one received datagram.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Received {
    /// Bytes written to the buffer (never more than its length).
    pub(crate) len: usize,
    /// `MSG_TRUNC`: the datagram was longer than the buffer and the rest is gone.
    pub(crate) truncated: bool,
    /// Source address, when it was an IPv4 or IPv6 one.
    pub(crate) from: Option<SocketAddr>,
}

/// One outgoing datagram.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Out<'a> {
    pub(crate) to: SocketAddr,
    pub(crate) data: &'a [u8],
}

impl Out<'_> {
    /// A placeholder to initialise fixed-size arrays with.
    pub(crate) const EMPTY: Out<'static> = Out {
        to: SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)),
        data: &[],
    };
}

/// Room for one `IP_PKTINFO` or `IPV6_PKTINFO` control message (40 bytes on 64-bit Linux),
/// aligned for `cmsghdr`.
#[repr(C, align(8))]
#[derive(Clone, Copy)]
struct CtlBuf([u8; 64]);

/// Control data attached to every send: empty, or a source-address pin.
///
/// Plain bytes (no pointers into itself), so it is `Copy`, `Send` and `Sync`; the pointer
/// given to the kernel is taken at each call.
#[derive(Clone, Copy)]
pub(crate) struct SourceCtl {
    buf: CtlBuf,
    len: usize,
}

impl core::fmt::Debug for SourceCtl {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SourceCtl").field("len", &self.len).finish()
    }
}

impl SourceCtl {
    /// No control message: the kernel picks the source address.
    pub(crate) const NONE: Self = Self {
        buf: CtlBuf([0; 64]),
        len: 0,
    };

    /// A control message that makes every datagram leave from `ip` (which must be an address
    /// of this host): `IP_PKTINFO` with `ipi_spec_dst`, or `IPV6_PKTINFO` with `ipi6_addr`.
    /// The interface index is left 0, so the route (or `IP_MULTICAST_IF` for a multicast
    /// destination) still chooses the interface.
    #[cfg(target_os = "linux")]
    pub(crate) fn pin(ip: core::net::IpAddr) -> Self {
        use core::net::IpAddr;
        let mut ctl = Self::NONE;
        let (level, kind, payload_len) = match ip {
            IpAddr::V4(_) => (
                libc::IPPROTO_IP,
                libc::IP_PKTINFO,
                size_of::<libc::in_pktinfo>(),
            ),
            IpAddr::V6(_) => (
                libc::IPPROTO_IPV6,
                libc::IPV6_PKTINFO,
                size_of::<libc::in6_pktinfo>(),
            ),
        };
        // Both payloads are a few dozen bytes, far below u32::MAX.
        let payload_len = payload_len as libc::c_uint;
        // SAFETY: CMSG_SPACE / CMSG_LEN are pure arithmetic on their argument.
        let (space, cmsg_len) =
            unsafe { (libc::CMSG_SPACE(payload_len), libc::CMSG_LEN(payload_len)) };
        let space = space as usize;
        debug_assert!(
            space <= ctl.buf.0.len(),
            "pktinfo control message fits in CtlBuf"
        );
        // SAFETY: an all-zero msghdr is valid (null pointers, zero lengths).
        let mut msg: libc::msghdr = unsafe { mem::zeroed() };
        msg.msg_control = ctl.buf.0.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
        // SAFETY: `msg` points at `ctl.buf`, which is aligned for cmsghdr and `space` bytes
        // long (checked above), enough for one header plus the payload; CMSG_FIRSTHDR returns
        // a pointer inside it (non-null because msg_controllen >= sizeof(cmsghdr)), and
        // CMSG_DATA points `CMSG_LEN(0)` bytes further, with `payload_len` bytes of room. The
        // payload is written unaligned because CMSG_DATA promises no alignment for it.
        unsafe {
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = level;
            (*cmsg).cmsg_type = kind;
            (*cmsg).cmsg_len = cmsg_len as _;
            let data = libc::CMSG_DATA(cmsg);
            match ip {
                IpAddr::V4(v4) => {
                    let info = libc::in_pktinfo {
                        ipi_ifindex: 0,
                        ipi_spec_dst: in_addr(v4),
                        ipi_addr: in_addr(Ipv4Addr::UNSPECIFIED),
                    };
                    ptr::write_unaligned(data.cast::<libc::in_pktinfo>(), info);
                }
                IpAddr::V6(v6) => {
                    let info = libc::in6_pktinfo {
                        ipi6_addr: libc::in6_addr {
                            s6_addr: v6.octets(),
                        },
                        ipi6_ifindex: 0,
                    };
                    ptr::write_unaligned(data.cast::<libc::in6_pktinfo>(), info);
                }
            }
        }
        ctl.len = space;
        ctl
    }

    /// Whether a control message is attached.
    pub(crate) fn is_pinned(&self) -> bool {
        self.len != 0
    }

    /// `(msg_control, msg_controllen)` for a `msghdr`. The pointer is `*mut` only because
    /// `msghdr` says so: the kernel reads control data on send and never writes it.
    fn raw(&self) -> (*mut libc::c_void, usize) {
        if self.len == 0 {
            (ptr::null_mut(), 0)
        } else {
            (self.buf.0.as_ptr().cast_mut().cast(), self.len)
        }
    }
}

fn in_addr(ip: Ipv4Addr) -> libc::in_addr {
    libc::in_addr {
        // `s_addr` is in network byte order, i.e. the octets as they stand in memory.
        s_addr: u32::from_ne_bytes(ip.octets()),
    }
}

/// `addr` as a `sockaddr_storage` and its length.
fn encode(addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain integers; all-zero is a valid (AF_UNSPEC) value.
    let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            // SAFETY: as above, all-zero is a valid sockaddr_in (this also zeroes `sin_zero`
            // and, on BSDs, `sin_len`).
            let mut sin: libc::sockaddr_in = unsafe { mem::zeroed() };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            sin.sin_addr = in_addr(*a.ip());
            // SAFETY: sockaddr_storage is larger than and aligned for every sockaddr_* type.
            unsafe { ptr::write((&raw mut storage).cast::<libc::sockaddr_in>(), sin) };
            size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            // SAFETY: all-zero is a valid sockaddr_in6.
            let mut sin6: libc::sockaddr_in6 = unsafe { mem::zeroed() };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_flowinfo = a.flowinfo().to_be();
            sin6.sin6_addr = libc::in6_addr {
                s6_addr: a.ip().octets(),
            };
            sin6.sin6_scope_id = a.scope_id();
            // SAFETY: sockaddr_storage is larger than and aligned for every sockaddr_* type.
            unsafe { ptr::write((&raw mut storage).cast::<libc::sockaddr_in6>(), sin6) };
            size_of::<libc::sockaddr_in6>()
        }
    };
    // Both lengths are small constants.
    (storage, len as libc::socklen_t)
}

/// The IPv4 or IPv6 address the kernel wrote into `storage`, if any.
fn decode(storage: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
    let len = len as usize;
    match libc::c_int::from(storage.ss_family) {
        libc::AF_INET if len >= size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says the kernel wrote a sockaddr_in, the length says all of
            // it, and sockaddr_storage is aligned for it.
            let sin = unsafe { &*ptr::from_ref(storage).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
            Some(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 if len >= size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 = unsafe { &*ptr::from_ref(storage).cast::<libc::sockaddr_in6>() };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                u16::from_be(sin6.sin6_port),
                u32::from_be(sin6.sin6_flowinfo),
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// Receives one datagram into `buf` without blocking (`recvmsg`, `MSG_DONTWAIT`).
///
/// # Errors
///
/// The OS error: `WouldBlock` when nothing is queued, `Interrupted`, or a real failure.
pub(crate) fn recv_one(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<Received> {
    // SAFETY: all-zero is valid for sockaddr_storage.
    let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: all-zero is valid for msghdr.
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    msg.msg_name = (&raw mut storage).cast();
    msg.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    // SAFETY: `msg` points at `storage` (namelen bytes), one iovec covering exactly `buf`,
    // and no control buffer; all of them outlive the call, and the kernel writes at most
    // their stated lengths. `fd` is a valid open descriptor for the call (borrowed).
    let n = unsafe { libc::recvmsg(fd.as_raw_fd(), &raw mut msg, libc::MSG_DONTWAIT) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Received {
        // Without MSG_TRUNC in the call flags the return value is the bytes copied, which is
        // at most buf.len(); min() keeps that an invariant rather than an assumption.
        len: (n as usize).min(buf.len()),
        truncated: msg.msg_flags & libc::MSG_TRUNC != 0,
        from: decode(&storage, msg.msg_namelen),
    })
}

/// Sends one datagram without blocking (`sendmsg`, `MSG_DONTWAIT`), with `ctl` attached.
///
/// # Errors
///
/// The OS error (`WouldBlock`, `Interrupted`, `ENOBUFS`, `EMSGSIZE`, …).
pub(crate) fn send_one(fd: BorrowedFd<'_>, out: &Out<'_>, ctl: &SourceCtl) -> io::Result<usize> {
    let (mut storage, namelen) = encode(&out.to);
    let mut iov = libc::iovec {
        iov_base: out.data.as_ptr().cast_mut().cast(),
        iov_len: out.data.len(),
    };
    let (control, controllen) = ctl.raw();
    // SAFETY: all-zero is valid for msghdr.
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    msg.msg_name = (&raw mut storage).cast();
    msg.msg_namelen = namelen;
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = controllen as _;
    // SAFETY: every pointer in `msg` refers to memory that lives across the call (`storage`,
    // `iov`, the caller's frame, `ctl`'s buffer) with the stated lengths; sendmsg only reads
    // them, so handing out `*mut` views of shared data is sound. `fd` is valid (borrowed).
    let n = unsafe { libc::sendmsg(fd.as_raw_fd(), &raw const msg, libc::MSG_DONTWAIT) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

/// Receives up to `min(bufs.len(), out.len(), BATCH)` datagrams with one `recvmmsg` call
/// (`MSG_DONTWAIT`), filling `out[..n]` for `bufs[..n]`.
///
/// # Errors
///
/// The OS error when the first datagram could not be read (`WouldBlock` when none is queued).
#[cfg(target_os = "linux")]
pub(crate) fn recv_many(
    fd: BorrowedFd<'_>,
    bufs: &mut [&mut [u8]],
    out: &mut [Received],
) -> io::Result<usize> {
    let n = bufs.len().min(out.len()).min(BATCH);
    if n == 0 {
        return Ok(0);
    }
    // SAFETY: all-zero is valid for sockaddr_storage, iovec and mmsghdr (null pointers and
    // zero lengths).
    let (mut names, mut iovs, mut hdrs): (
        [libc::sockaddr_storage; BATCH],
        [libc::iovec; BATCH],
        [libc::mmsghdr; BATCH],
    ) = unsafe { (mem::zeroed(), mem::zeroed(), mem::zeroed()) };
    for i in 0..n {
        iovs[i] = libc::iovec {
            iov_base: bufs[i].as_mut_ptr().cast(),
            iov_len: bufs[i].len(),
        };
        let hdr = &mut hdrs[i].msg_hdr;
        hdr.msg_name = (&raw mut names[i]).cast();
        hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        hdr.msg_iov = &raw mut iovs[i];
        hdr.msg_iovlen = 1;
    }
    // SAFETY: `hdrs[..n]` each point at their own `names[i]` and `iovs[i]`, and each iovec
    // covers exactly one distinct caller buffer `bufs[i]` (distinct `&mut` slices, so the
    // kernel's writes cannot alias); all of it outlives the call and the kernel writes at most
    // the stated lengths. `n <= BATCH` fits in c_uint. `fd` is valid (borrowed).
    let got = unsafe {
        libc::recvmmsg(
            fd.as_raw_fd(),
            hdrs.as_mut_ptr(),
            n as libc::c_uint,
            libc::MSG_DONTWAIT as _,
            ptr::null_mut(),
        )
    };
    if got < 0 {
        return Err(io::Error::last_os_error());
    }
    let got = (got as usize).min(n);
    for i in 0..got {
        let hdr = &hdrs[i];
        out[i] = Received {
            len: (hdr.msg_len as usize).min(bufs[i].len()),
            truncated: hdr.msg_hdr.msg_flags & libc::MSG_TRUNC != 0,
            from: decode(&names[i], hdr.msg_hdr.msg_namelen),
        };
    }
    Ok(got)
}

/// Most segments in one UDP GSO send (the kernel's `UDP_MAX_SEGMENTS`).
#[cfg(target_os = "linux")]
const GSO_MAX_SEGMENTS: usize = 64;

/// Most payload bytes in one UDP GSO send: the whole must fit one IP datagram.
#[cfg(target_os = "linux")]
const GSO_MAX_BYTES: usize = 65_000;

/// Room for a source pin plus one `UDP_SEGMENT` control message, aligned for `cmsghdr`.
#[cfg(target_os = "linux")]
#[repr(C, align(8))]
#[derive(Clone, Copy)]
struct GsoCtlBuf([u8; 96]);

/// Where the next run of `msgs` (from its first datagram) ends for one UDP GSO send: the
/// datagrams share a destination, none is longer than the first, and only the last may be
/// shorter (the kernel cuts the buffer into first-length segments).
#[cfg(target_os = "linux")]
fn gso_run(msgs: &[Out<'_>]) -> usize {
    let Some(first) = msgs.first() else {
        return 0;
    };
    let seg = first.data.len();
    if seg == 0 {
        return 1;
    }
    let (mut end, mut total) = (1, seg);
    while let Some(next) = msgs.get(end) {
        let len = next.data.len();
        if end == GSO_MAX_SEGMENTS
            || next.to != first.to
            || len == 0
            || len > seg
            || total + len > GSO_MAX_BYTES
        {
            break;
        }
        total += len;
        end += 1;
        if len < seg {
            break;
        }
    }
    end
}

/// Sends up to `min(msgs.len(), BATCH)` datagrams with one `sendmmsg` call (`MSG_DONTWAIT`),
/// `ctl` attached to each. Returns how many went out, counted from the front; the caller
/// calls again for the rest (the first one not sent then reports its error).
///
/// With `segment`, consecutive datagrams to one destination go as one UDP GSO send
/// (`UDP_SEGMENT`): one trip through the stack for the whole run, which the kernel cuts into
/// the same datagrams the receivers would have got one by one (a run goes out whole or not at
/// all). Without it every datagram is an entry of its own.
///
/// # Errors
///
/// The OS error of the first entry, when not even that one was sent. `EIO`, `EINVAL`,
/// `EOPNOTSUPP` or `ENOPROTOOPT` on a run of two or more mean the path cannot segment
/// ([`gso_refused`]); the caller then sends without `segment`.
#[cfg(target_os = "linux")]
pub(crate) fn send_many(
    fd: BorrowedFd<'_>,
    msgs: &[Out<'_>],
    ctl: &SourceCtl,
    segment: bool,
) -> io::Result<usize> {
    let n = msgs.len().min(BATCH);
    if n == 0 {
        return Ok(0);
    }
    // SAFETY: all-zero is valid for sockaddr_storage, iovec and mmsghdr.
    let (mut names, mut iovs, mut hdrs): (
        [libc::sockaddr_storage; BATCH],
        [libc::iovec; BATCH],
        [libc::mmsghdr; BATCH],
    ) = unsafe { (mem::zeroed(), mem::zeroed(), mem::zeroed()) };
    let mut ctls = [GsoCtlBuf([0; 96]); BATCH];
    let mut runs = [0usize; BATCH];
    let (control, pin_len) = ctl.raw();
    // SAFETY: CMSG_SPACE / CMSG_LEN are pure arithmetic on their argument.
    let (seg_space, seg_len) = unsafe {
        (
            libc::CMSG_SPACE(size_of::<u16>() as libc::c_uint) as usize,
            libc::CMSG_LEN(size_of::<u16>() as libc::c_uint),
        )
    };
    let (mut i, mut h) = (0, 0);
    while i < n {
        let run = if segment { gso_run(&msgs[i..n]) } else { 1 };
        for (k, out) in msgs[i..i + run].iter().enumerate() {
            iovs[i + k] = libc::iovec {
                iov_base: out.data.as_ptr().cast_mut().cast(),
                iov_len: out.data.len(),
            };
        }
        let (name, namelen) = encode(&msgs[i].to);
        names[h] = name;
        let hdr = &mut hdrs[h].msg_hdr;
        hdr.msg_name = (&raw mut names[h]).cast();
        hdr.msg_namelen = namelen;
        hdr.msg_iov = &raw mut iovs[i];
        hdr.msg_iovlen = run as _;
        if run == 1 {
            // One control buffer shared by such messages: the kernel only reads it.
            hdr.msg_control = control;
            hdr.msg_controllen = pin_len as _;
        } else {
            let buf = &mut ctls[h].0;
            debug_assert!(pin_len + seg_space <= buf.len(), "pin + UDP_SEGMENT fit");
            if pin_len > 0 {
                // SAFETY: `control` points at `pin_len` readable bytes of `ctl`'s buffer
                // (SourceCtl::raw), and `buf` has room for them (asserted above); the two
                // do not overlap (`buf` is this function's own stack array).
                unsafe {
                    ptr::copy_nonoverlapping(control.cast::<u8>(), buf.as_mut_ptr(), pin_len)
                };
            }
            // The segment size is the first datagram's length, at most GSO_MAX_BYTES.
            let seg = msgs[i].data.len() as u16;
            let at = pin_len;
            // SAFETY: `buf[at..at + seg_space]` is inside the 96-byte, 8-aligned buffer
            // (asserted above), and `at` is a CMSG_SPACE multiple, so the header is aligned
            // for cmsghdr; CMSG_LEN(0) bytes further there is room for the u16, written
            // unaligned because CMSG_DATA promises no alignment.
            unsafe {
                let cmsg = buf.as_mut_ptr().add(at).cast::<libc::cmsghdr>();
                (*cmsg).cmsg_level = libc::SOL_UDP;
                (*cmsg).cmsg_type = libc::UDP_SEGMENT;
                (*cmsg).cmsg_len = seg_len as _;
                ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<u16>(), seg);
            }
            hdr.msg_control = buf.as_mut_ptr().cast();
            hdr.msg_controllen = (pin_len + seg_space) as _;
        }
        runs[h] = run;
        i += run;
        h += 1;
    }
    // SAFETY: `hdrs[..h]` point at `names`, consecutive `iovs` (each over one of the
    // caller's frames), and `ctls` or `ctl`'s buffer, all alive across the call with the
    // stated lengths; the kernel reads those and writes only `msg_len` inside `hdrs`.
    // `h <= BATCH` fits in c_uint. `fd` is valid.
    let sent = unsafe {
        libc::sendmmsg(
            fd.as_raw_fd(),
            hdrs.as_mut_ptr(),
            h as libc::c_uint,
            libc::MSG_DONTWAIT as _,
        )
    };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    if sent == 0 {
        return Err(io::ErrorKind::WouldBlock.into());
    }
    Ok(runs[..(sent as usize).min(h)].iter().sum())
}

/// Whether `err` from [`send_many`] with `segment` means this socket's path cannot do UDP GSO (old
/// kernel, no checksum offload, a segment above the path MTU, IPsec).
#[cfg(target_os = "linux")]
pub(crate) fn gso_refused(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::EIO | libc::EINVAL | libc::EOPNOTSUPP | libc::ENOPROTOOPT)
    )
}

/// Which socket buffer.
#[cfg(target_os = "linux")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Buffer {
    Send,
    Recv,
}

/// Sets a socket buffer with `SO_SNDBUFFORCE` / `SO_RCVBUFFORCE`, which may exceed
/// `net.core.wmem_max` / `rmem_max` but needs `CAP_NET_ADMIN` (knet does the same and falls
/// back to the plain option).
///
/// # Errors
///
/// `EPERM` without the capability; any other setsockopt error.
#[cfg(target_os = "linux")]
pub(crate) fn set_buffer_forced(fd: BorrowedFd<'_>, which: Buffer, size: usize) -> io::Result<()> {
    let opt = match which {
        Buffer::Send => libc::SO_SNDBUFFORCE,
        Buffer::Recv => libc::SO_RCVBUFFORCE,
    };
    // The kernel takes an int and doubles it; larger requests are clamped as it would.
    let val = libc::c_int::try_from(size.min(i32::MAX as usize / 2)).unwrap_or(i32::MAX / 2);
    // SAFETY: `val` is a live c_int and the length passed is its size; setsockopt only reads
    // it. `fd` is valid (borrowed).
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            opt,
            (&raw const val).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Index of the interface that carries `addr`, if any (`getifaddrs` in the calling thread's
/// network namespace).
///
/// # Errors
///
/// `getifaddrs` failed.
pub(crate) fn ipv6_ifindex(addr: &Ipv6Addr) -> io::Result<Option<u32>> {
    let mut head: *mut libc::ifaddrs = ptr::null_mut();
    // SAFETY: getifaddrs writes a list head into `head` on success, which we free below.
    if unsafe { libc::getifaddrs(&raw mut head) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut found = None;
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned, not freed until below.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        if ifa.ifa_addr.is_null() || ifa.ifa_name.is_null() {
            continue;
        }
        // SAFETY: ifa_addr is non-null and points at a sockaddr whose family field is valid
        // to read whatever the family.
        let family = libc::c_int::from(unsafe { (*ifa.ifa_addr).sa_family });
        if family != libc::AF_INET6 {
            continue;
        }
        // SAFETY: the family is AF_INET6, so getifaddrs stored a full sockaddr_in6 there; it
        // is read unaligned because a plain sockaddr pointer promises less alignment.
        let sin6 = unsafe { ptr::read_unaligned(ifa.ifa_addr.cast::<libc::sockaddr_in6>()) };
        if sin6.sin6_addr.s6_addr != addr.octets() {
            continue;
        }
        // SAFETY: ifa_name is a non-null NUL-terminated string owned by the list.
        let name = unsafe { CStr::from_ptr(ifa.ifa_name) };
        // SAFETY: `name` is a valid C string for the duration of the call.
        let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
        if index != 0 {
            found = Some(index);
            break;
        }
    }
    // SAFETY: `head` came from a successful getifaddrs and is freed exactly once; no
    // reference into the list outlives this point.
    unsafe { libc::freeifaddrs(head) };
    Ok(found)
}

/// Moves the calling thread into the network namespace open as `ns` (test helper: sockets
/// created afterwards by this thread belong to that namespace for their whole life).
///
/// # Errors
///
/// `setns` failed (not root, or not a network namespace file).
#[cfg(all(test, target_os = "linux"))]
pub(crate) fn enter_netns(ns: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: setns only changes the calling thread's namespace membership; `ns` is a valid
    // open descriptor for the call (borrowed).
    if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_addresses_round_trip_through_sockaddr_storage() {
        let cases: [SocketAddr; 3] = [
            "127.0.0.3:5405".parse().unwrap(),
            "[fd13:213::1]:5405".parse().unwrap(),
            SocketAddr::V6(SocketAddrV6::new("fe80::1".parse().unwrap(), 7, 0, 3)),
        ];
        for addr in cases {
            let (storage, len) = encode(&addr);
            assert_eq!(decode(&storage, len), Some(addr));
        }
        // A length too short for the family is refused rather than read past.
        let (storage, _) = encode(&cases[0]);
        assert_eq!(decode(&storage, 4), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn pktinfo_control_messages_have_the_kernel_sizes() {
        // CMSG_SPACE(12) and CMSG_SPACE(20) on 64-bit Linux: 16-byte header + padded payload.
        let v4 = SourceCtl::pin("10.213.1.1".parse().unwrap());
        let v6 = SourceCtl::pin("fd13:213::1".parse().unwrap());
        assert!(v4.is_pinned() && v6.is_pinned());
        assert!(!SourceCtl::NONE.is_pinned());
        if size_of::<usize>() == 8 {
            assert_eq!((v4.len, v6.len), (32, 40));
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod gso_tests {
    use super::*;

    fn outs<'a>(spec: &[(u8, usize)], data: &'a [u8]) -> Vec<Out<'a>> {
        spec.iter()
            .map(|&(host, len)| Out {
                to: SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, host), 5405)),
                data: &data[..len],
            })
            .collect()
    }

    #[test]
    fn a_run_is_one_destination_with_equal_datagrams_and_at_most_one_shorter_last() {
        let data = [0u8; 2000];
        let run = |spec: &[(u8, usize)]| gso_run(&outs(spec, &data));
        assert_eq!(run(&[]), 0);
        assert_eq!(run(&[(1, 100)]), 1);
        assert_eq!(run(&[(1, 100), (1, 100), (1, 100)]), 3);
        assert_eq!(
            run(&[(1, 100), (1, 50), (1, 50)]),
            2,
            "a shorter one ends it"
        );
        assert_eq!(
            run(&[(1, 100), (1, 101)]),
            1,
            "a longer one starts a new run"
        );
        assert_eq!(run(&[(1, 100), (2, 100)]), 1, "another destination");
        assert_eq!(run(&[(1, 0), (1, 0)]), 1, "empty datagrams go alone");
        assert_eq!(run(&[(1, 100), (1, 0)]), 1);
        assert_eq!(run(&[(1, 1500); 50]), 43, "65 000 bytes at most");
        assert_eq!(run(&[(1, 10); 70]), GSO_MAX_SEGMENTS);
    }

    #[test]
    fn only_the_errors_of_a_path_without_segmentation_turn_it_off() {
        let refused = |code| gso_refused(&io::Error::from_raw_os_error(code));
        for code in [libc::EIO, libc::EINVAL, libc::EOPNOTSUPP, libc::ENOPROTOOPT] {
            assert!(refused(code), "{code}");
        }
        // Back-pressure and real send errors are reported as such, GSO stays on.
        for code in [
            libc::EAGAIN,
            libc::ENOBUFS,
            libc::EMSGSIZE,
            libc::ENETUNREACH,
        ] {
            assert!(!refused(code), "{code}");
        }
    }
}
