//! The system calls of the crate that std does not wrap (std's `UnixListener` has neither
//! `SOCK_SEQPACKET` nor stable `SCM_RIGHTS`): unix sockets, credentials, fd passing,
//! eventfds and `poll`. Each `unsafe` block states its invariant in a `// SAFETY:` line;
//! callers only see safe functions and [`OwnedFd`]s.

use alloc::vec::Vec;
use core::mem;
use core::time::Duration;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Instant;

use crate::access::Credentials;
use crate::error::OsError;

/// Most fds one message carries.
pub(crate) const MAX_FDS: usize = 4;

/// Wrap a non-negative fd returned by a syscall, or read errno.
fn owned(fd: RawFd, op: &'static str) -> Result<OwnedFd, OsError> {
    if fd < 0 {
        return Err(OsError::last(op));
    }
    // SAFETY: the syscall just returned this fd to us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A non-blocking, close-on-exec eventfd with counter 0.
pub(crate) fn eventfd() -> Result<OwnedFd, OsError> {
    // SAFETY: plain syscall; the result is checked by `owned`.
    owned(
        unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) },
        "eventfd",
    )
}

/// Add 1 to an eventfd counter (wake whoever polls it).
///
/// Errors are ignored on purpose: `EAGAIN` means the counter is saturated, so the reader
/// will wake anyway (a hostile client can saturate the eventfds it holds, which must not
/// make the daemon fail), and nothing else can fail on a valid eventfd.
pub(crate) fn notify(fd: BorrowedFd<'_>) {
    let one: u64 = 1;
    // SAFETY: writes 8 bytes from a live u64 to an fd we hold open.
    let _ = unsafe { libc::write(fd.as_raw_fd(), (&raw const one).cast(), 8) };
}

/// Reset an eventfd counter to 0 (non-blocking; a zero counter is fine).
pub(crate) fn drain(fd: BorrowedFd<'_>) {
    let mut v: u64 = 0;
    // SAFETY: reads at most 8 bytes into a live u64 from an fd we hold open.
    let _ = unsafe { libc::read(fd.as_raw_fd(), (&raw mut v).cast(), 8) };
}

/// `sockaddr_un` for `path`, or `None` when it does not fit `sun_path` with its NUL.
fn sockaddr(path: &Path) -> Option<(libc::sockaddr_un, libc::socklen_t)> {
    let bytes = path.as_os_str().as_bytes();
    // SAFETY: an all-zero sockaddr_un is valid (and NUL-terminates any shorter path).
    let mut addr: libc::sockaddr_un = unsafe { mem::zeroed() };
    if bytes.is_empty() || bytes.len() >= addr.sun_path.len() || bytes.contains(&0) {
        return None;
    }
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (d, s) in addr.sun_path.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    let len = mem::offset_of!(libc::sockaddr_un, sun_path) + bytes.len() + 1;
    Some((addr, len as libc::socklen_t))
}

/// A new `AF_UNIX` `SOCK_SEQPACKET` socket, close-on-exec, optionally non-blocking.
fn seqpacket(nonblocking: bool) -> Result<OwnedFd, OsError> {
    let mut ty = libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC;
    if nonblocking {
        ty |= libc::SOCK_NONBLOCK;
    }
    // SAFETY: plain syscall; result checked by `owned`.
    owned(unsafe { libc::socket(libc::AF_UNIX, ty, 0) }, "socket")
}

/// Outcome of [`bind_listen`].
#[derive(Debug)]
pub(crate) enum BindError {
    PathTooLong,
    AddrInUse,
    Os(OsError),
}

/// Bind a non-blocking seqpacket listener at `path` with file `mode`. A stale socket file
/// (nobody accepts on it) is replaced; a live one is [`BindError::AddrInUse`]. Returns the
/// listener and the socket file's `(st_dev, st_ino)`.
pub(crate) fn bind_listen(
    path: &Path,
    mode: u32,
    backlog: i32,
) -> Result<(OwnedFd, (u64, u64)), BindError> {
    let (addr, len) = sockaddr(path).ok_or(BindError::PathTooLong)?;
    let fd = seqpacket(true).map_err(BindError::Os)?;
    let do_bind = |fd: &OwnedFd| {
        // SAFETY: addr/len describe a valid sockaddr_un on our stack.
        unsafe { libc::bind(fd.as_raw_fd(), (&raw const addr).cast(), len) }
    };
    if do_bind(&fd) != 0 {
        let e = OsError::last("bind");
        if e.errno != libc::EADDRINUSE {
            return Err(BindError::Os(e));
        }
        // Is anybody home? A refused connect means a stale file from a dead server.
        match connect(path) {
            Ok(_) => return Err(BindError::AddrInUse),
            Err(e) if e.errno == libc::ECONNREFUSED => {}
            Err(_) => return Err(BindError::AddrInUse),
        }
        let _ = std::fs::remove_file(path);
        if do_bind(&fd) != 0 {
            return Err(BindError::Os(OsError::last("bind")));
        }
    }
    let cpath = alloc::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| BindError::PathTooLong)?;
    // SAFETY: cpath is a valid NUL-terminated string.
    if unsafe { libc::chmod(cpath.as_ptr(), mode as libc::mode_t) } != 0 {
        return Err(BindError::Os(OsError::last("chmod")));
    }
    let id = file_id(path).map_err(BindError::Os)?;
    // SAFETY: plain syscall on our socket.
    if unsafe { libc::listen(fd.as_raw_fd(), backlog) } != 0 {
        return Err(BindError::Os(OsError::last("listen")));
    }
    Ok((fd, id))
}

/// `(st_dev, st_ino)` of a path (not following a final symlink).
pub(crate) fn file_id(path: &Path) -> Result<(u64, u64), OsError> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::symlink_metadata(path).map_err(|e| OsError {
        op: "lstat",
        errno: e.raw_os_error().unwrap_or(libc::EIO),
    })?;
    Ok((m.dev(), m.ino()))
}

/// Accept one pending connection (non-blocking, close-on-exec). `Ok(None)`: none pending.
pub(crate) fn accept(listener: BorrowedFd<'_>) -> Result<Option<OwnedFd>, OsError> {
    loop {
        // SAFETY: null address pointers are allowed (we read the peer with SO_PEERCRED).
        let fd = unsafe {
            libc::accept4(
                listener.as_raw_fd(),
                core::ptr::null_mut(),
                core::ptr::null_mut(),
                libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            )
        };
        if fd >= 0 {
            return owned(fd, "accept4").map(Some);
        }
        let e = OsError::last("accept4");
        match e.errno {
            libc::EINTR | libc::ECONNABORTED => continue,
            libc::EAGAIN => return Ok(None),
            _ => return Err(e),
        }
    }
}

/// `SO_PEERCRED`: who was on the other end when it called `connect`.
pub(crate) fn peer_cred(fd: BorrowedFd<'_>) -> Result<Credentials, OsError> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: cred/len are a valid, writable ucred and its size.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&raw mut cred).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(OsError::last("getsockopt(SO_PEERCRED)"));
    }
    Ok(Credentials {
        pid: cred.pid,
        uid: cred.uid,
        gid: cred.gid,
    })
}

/// Room for `MAX_FDS` fds in a control message, aligned for `cmsghdr`.
#[repr(C, align(8))]
struct CmsgBuf([u8; 64]);

// CMSG_SPACE(4 * MAX_FDS) on 64-bit Linux: a 16-byte header plus the fds, rounded to 8.
const _: () = assert!(64 >= 16 + 4 * MAX_FDS);

/// Send one message carrying `fds` (`SCM_RIGHTS`). Never raises `SIGPIPE`.
pub(crate) fn send_with_fds(
    sock: BorrowedFd<'_>,
    data: &[u8],
    fds: &[BorrowedFd<'_>],
) -> Result<(), OsError> {
    assert!(fds.len() <= MAX_FDS, "too many fds for one message (bug)");
    let mut cbuf = CmsgBuf([0; 64]);
    let mut iov = libc::iovec {
        iov_base: data.as_ptr().cast_mut().cast(),
        iov_len: data.len(),
    };
    // SAFETY: an all-zero msghdr is valid (no name, no iov, no control).
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if !fds.is_empty() {
        let payload = (fds.len() * size_of::<RawFd>()) as u32;
        // SAFETY: CMSG_SPACE is a pure size computation.
        let space = unsafe { libc::CMSG_SPACE(payload) } as usize;
        msg.msg_control = cbuf.0.as_mut_ptr().cast();
        msg.msg_controllen = space;
        // SAFETY: msg_control points at `space` <= 64 writable, 8-aligned bytes, so the
        // first header and its data fit; CMSG_FIRSTHDR/CMSG_DATA stay inside that buffer.
        unsafe {
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(payload) as usize;
            let data = libc::CMSG_DATA(c).cast::<RawFd>();
            for (i, fd) in fds.iter().enumerate() {
                data.add(i).write_unaligned(fd.as_raw_fd());
            }
        }
    }
    loop {
        // SAFETY: msg points at live iov/control buffers for the duration of the call.
        let n = unsafe { libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) };
        if n >= 0 {
            return if n as usize == data.len() {
                Ok(())
            } else {
                Err(OsError {
                    op: "sendmsg",
                    errno: libc::EMSGSIZE,
                })
            };
        }
        let e = OsError::last("sendmsg");
        if e.errno != libc::EINTR {
            return Err(e);
        }
    }
}

/// Receive one message and up to [`MAX_FDS`] fds (close-on-exec). Returns the byte count
/// (0 = peer closed) and the fds; a truncated message or control part is an error (and
/// any fds that did arrive are closed).
pub(crate) fn recv_with_fds(
    sock: BorrowedFd<'_>,
    buf: &mut [u8],
) -> Result<(usize, Vec<OwnedFd>), OsError> {
    let mut cbuf = CmsgBuf([0; 64]);
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: an all-zero msghdr is valid.
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.0.as_mut_ptr().cast();
    msg.msg_controllen = cbuf.0.len();
    let n = loop {
        // SAFETY: msg points at live, writable iov/control buffers of the stated sizes.
        let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n >= 0 {
            break n as usize;
        }
        let e = OsError::last("recvmsg");
        if e.errno != libc::EINTR {
            return Err(e);
        }
    };
    let mut fds = Vec::new();
    // SAFETY: the kernel filled msg_control/msg_controllen; the CMSG_* macros walk only
    // within msg_controllen bytes of `cbuf`, and each SCM_RIGHTS payload holds
    // (cmsg_len - CMSG_LEN(0)) / 4 fds that are now ours (read unaligned).
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let bytes = (*c).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                let data = libc::CMSG_DATA(c).cast::<RawFd>();
                for i in 0..bytes / size_of::<RawFd>() {
                    let fd = data.add(i).read_unaligned();
                    if fd >= 0 {
                        fds.push(OwnedFd::from_raw_fd(fd));
                    }
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    if msg.msg_flags & (libc::MSG_TRUNC | libc::MSG_CTRUNC) != 0 {
        return Err(OsError {
            op: "recvmsg",
            errno: libc::EMSGSIZE,
        });
    }
    Ok((n, fds))
}

/// A blocking seqpacket socket connected to `path` (`connect` errno on failure;
/// `ENAMETOOLONG` for a path that does not fit).
pub(crate) fn connect(path: &Path) -> Result<OwnedFd, OsError> {
    let (addr, len) = sockaddr(path).ok_or(OsError {
        op: "connect",
        errno: libc::ENAMETOOLONG,
    })?;
    let fd = seqpacket(false)?;
    loop {
        // SAFETY: addr/len describe a valid sockaddr_un on our stack.
        let rc = unsafe { libc::connect(fd.as_raw_fd(), (&raw const addr).cast(), len) };
        if rc == 0 {
            return Ok(fd);
        }
        let e = OsError::last("connect");
        if e.errno != libc::EINTR {
            return Err(e);
        }
    }
}

/// Make a socket non-blocking.
pub(crate) fn set_nonblocking(fd: BorrowedFd<'_>) -> Result<(), OsError> {
    // SAFETY: F_GETFL/F_SETFL on an open fd.
    unsafe {
        let flags = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(OsError::last("fcntl(O_NONBLOCK)"));
        }
    }
    Ok(())
}

/// What a non-blocking peek at the control socket found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Peek {
    /// Nothing to read: the peer is alive and silent.
    Quiet,
    /// End of file: the peer closed its socket (or died).
    Closed,
    /// The peer sent something (a protocol violation after connect).
    Data,
}

/// Peek at a socket without blocking or consuming.
pub(crate) fn peek(sock: BorrowedFd<'_>) -> Result<Peek, OsError> {
    let mut b = [0u8; 1];
    loop {
        // SAFETY: reads at most 1 byte into a live buffer.
        let n = unsafe {
            libc::recv(
                sock.as_raw_fd(),
                b.as_mut_ptr().cast(),
                1,
                libc::MSG_DONTWAIT | libc::MSG_PEEK,
            )
        };
        if n > 0 {
            return Ok(Peek::Data);
        }
        if n == 0 {
            return Ok(Peek::Closed);
        }
        let e = OsError::last("recv");
        match e.errno {
            libc::EINTR => continue,
            libc::EAGAIN => return Ok(Peek::Quiet),
            libc::ECONNRESET | libc::EPIPE => return Ok(Peek::Closed),
            _ => return Err(e),
        }
    }
}

/// `shutdown(SHUT_RDWR)`: the peer sees end of file now, before we close the fd.
pub(crate) fn shutdown(sock: BorrowedFd<'_>) {
    // SAFETY: plain syscall on an open socket; failure (already shut) is irrelevant.
    let _ = unsafe { libc::shutdown(sock.as_raw_fd(), libc::SHUT_RDWR) };
}

/// `poll` on `fds` until one is ready or `timeout` passes (`None` = forever). `EINTR`
/// restarts with the remaining time. Returns the number of ready entries (0 = timeout).
pub(crate) fn poll(fds: &mut [libc::pollfd], timeout: Option<Duration>) -> Result<usize, OsError> {
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        let ms = match deadline {
            None => -1,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                // Round up so a 0.5 ms wait does not become a busy loop.
                let ms = left.as_micros().div_ceil(1000);
                i32::try_from(ms).unwrap_or(i32::MAX)
            }
        };
        // SAFETY: `fds` is a valid, writable slice of pollfd of the stated length.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = OsError::last("poll");
        if e.errno != libc::EINTR {
            return Err(e);
        }
    }
}

/// A `pollfd` asking for readability (and, always, hang-up).
pub(crate) fn pollfd(fd: BorrowedFd<'_>) -> libc::pollfd {
    libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN | libc::POLLRDHUP,
        revents: 0,
    }
}

/// One level-triggered epoll fd watching `eventfd` for readability and `socket` for
/// readability or hang-up: a single pollable fd for "an event may be waiting, or the peer is
/// gone".
pub(crate) fn epoll_of(
    eventfd: BorrowedFd<'_>,
    socket: BorrowedFd<'_>,
) -> Result<OwnedFd, OsError> {
    // SAFETY: plain syscall; result checked by `owned`.
    let ep = owned(
        unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) },
        "epoll_create1",
    )?;
    for (fd, events) in [
        (eventfd, libc::EPOLLIN),
        (socket, libc::EPOLLIN | libc::EPOLLRDHUP),
    ] {
        let mut ev = libc::epoll_event {
            events: events as u32,
            u64: fd.as_raw_fd() as u64,
        };
        // SAFETY: `ev` is a valid epoll_event; both fds are open.
        if unsafe { libc::epoll_ctl(ep.as_raw_fd(), libc::EPOLL_CTL_ADD, fd.as_raw_fd(), &mut ev) }
            != 0
        {
            return Err(OsError::last("epoll_ctl"));
        }
    }
    Ok(ep)
}

/// Effective uid of this process.
pub(crate) fn geteuid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}
