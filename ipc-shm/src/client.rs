//! The client library's side: [`Client::connect`] receives the daemon's memfd and eventfds,
//! maps the rings, and then talks through shared memory only.
//!
//! Blocking calls ([`Client::request`], [`Client::recv_event`]) sleep in `poll` on an
//! eventfd *and* the control socket, so a daemon that exits or drops the client wakes them
//! with [`Error::Disconnected`] instead of leaving them asleep.
//!
//! For an application with its own event loop, the client is pollable: its fd
//! ([`AsRawFd`], like corosync's `cpg_fd_get`) is an epoll fd over the event eventfd and
//! the control socket, readable when an event may be waiting or the daemon is gone. When it
//! polls readable, call [`Client::try_recv_event`] until `Ok(None)` (the fd is re-armed and
//! becomes readable again with the next event) or `Err(Disconnected)` (the daemon went
//! away; events it queued before that are still delivered first).
//!
//! ## Zero-copy requests
//!
//! [`Client::try_reserve_request`] / [`Client::reserve_request`] reserve a request record
//! in the shared request ring and hand it out as a [`RequestSlot`]: a `&mut [u8]` *into the
//! shared mapping*, contiguous even when the record wraps past the end of the ring (the
//! request ring's data area is mapped twice back to back, see `shm.rs`). The caller writes
//! the request in place and [`RequestSlot::commit`]s it; nothing reaches the daemon before
//! that, and dropping the slot sends nothing. A large request then costs no copy in this
//! crate at all, where [`Client::try_send_request`] copies it into the ring once.
//!
//! Why a reference into shared memory is sound here, when the rest of the crate never
//! forms one: the reserved bytes are free space of a ring this process produces. The
//! daemon reads request bytes only between its `tail` and our published `head` and never
//! writes the request data area at all; this process touches the ring only through the
//! `&mut Client` the slot holds. So for the slot's lifetime nobody else accesses those
//! bytes — unless the daemon breaks the protocol, and a client trusts its daemon (the
//! daemon, which trusts no client, still copies every request out and validates it).

use alloc::vec::Vec;
use core::fmt;
use core::ops::{Deref, DerefMut};
use core::time::Duration;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::Path;
use std::time::Instant;

use crate::access::Permission;
use crate::error::{ConnectError, Error, RingError, RingKind};
use crate::ring::{Consumer, Producer, PushError, Reservation, RingMemory, record_len};
use crate::shm::{Layout, Rings, ShmRing, file_size};
use crate::sys;
use crate::wire::{self, Welcome};

/// How long [`Client::connect`] waits for the daemon's welcome.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection to the daemon, from the client's side. `Send`, not `Sync`: one thread
/// drives it (as a corosync handle).
#[derive(Debug)]
pub struct Client {
    id: u64,
    permission: Permission,
    max_message: usize,
    socket: OwnedFd,
    /// The daemon's doorbell: we ring it.
    doorbell: OwnedFd,
    /// Rung by the daemon: a response arrived, or request space was freed.
    sync: OwnedFd,
    /// Rung by the daemon: an event arrived.
    event: OwnedFd,
    /// epoll over `event` and `socket`: the fd applications poll.
    pollable: OwnedFd,
    requests: Producer<ShmRing>,
    responses: Consumer<ShmRing>,
    events: Consumer<ShmRing>,
    closed: Option<Error>,
}

/// Which of the client's eventfds a wait sleeps on.
#[derive(Debug, Clone, Copy)]
enum Bell {
    Sync,
    Event,
}

impl Client {
    /// Connect to the daemon listening on `path`, waiting up to [`CONNECT_TIMEOUT`].
    ///
    /// # Errors
    /// The daemon's refusal ([`ConnectError::AccessDenied`], `TooManyConnections`,
    /// `NotReady`, `OutOfResources`), a malformed welcome, or the failing syscall
    /// (`ENOENT` / `ECONNREFUSED`: no daemon).
    pub fn connect(path: impl AsRef<Path>) -> Result<Self, ConnectError> {
        Self::connect_timeout(path, CONNECT_TIMEOUT)
    }

    /// [`Client::connect`] with another timeout for the welcome.
    ///
    /// # Errors
    /// As [`Client::connect`], and [`ConnectError::TimedOut`].
    pub fn connect_timeout(
        path: impl AsRef<Path>,
        timeout: Duration,
    ) -> Result<Self, ConnectError> {
        let socket = sys::connect(path.as_ref()).map_err(|e| {
            if e.errno == libc::ENAMETOOLONG {
                ConnectError::PathTooLong
            } else {
                ConnectError::Os(e)
            }
        })?;
        let mut pfd = [sys::pollfd(socket.as_fd())];
        if sys::poll(&mut pfd, Some(timeout)).map_err(ConnectError::Os)? == 0 {
            return Err(ConnectError::TimedOut);
        }
        let mut buf = [0u8; 64];
        let (n, mut fds) =
            sys::recv_with_fds(socket.as_fd(), &mut buf).map_err(ConnectError::Os)?;
        if n == 0 {
            return Err(ConnectError::Protocol(
                "daemon closed the socket before its welcome",
            ));
        }
        let accepted = match Welcome::decode(&buf[..n])? {
            Welcome::Accepted(a) => a,
            Welcome::Refused { reason, errno } => {
                return Err(match reason {
                    wire::reason::ACCESS_DENIED => ConnectError::AccessDenied,
                    wire::reason::TOO_MANY => ConnectError::TooManyConnections,
                    wire::reason::NOT_READY => ConnectError::NotReady,
                    _ => ConnectError::OutOfResources(errno),
                });
            }
        };
        if fds.len() != 4 {
            return Err(ConnectError::Protocol("welcome does not carry 4 fds"));
        }
        let max_message = accepted.max_message as usize;
        let layout = Layout {
            caps: accepted.caps.map(|c| c as usize),
        };
        if layout.validate(max_message).is_err() {
            return Err(ConnectError::Protocol("impossible ring sizes"));
        }
        // Order fixed by the wire format: memfd, doorbell, sync, event.
        let event = fds.pop();
        let sync = fds.pop();
        let doorbell = fds.pop();
        let memfd = fds.pop();
        let (Some(memfd), Some(doorbell), Some(sync), Some(event)) = (memfd, doorbell, sync, event)
        else {
            return Err(ConnectError::Protocol("welcome does not carry 4 fds"));
        };
        if file_size(&memfd).map_err(ConnectError::Os)? != layout.total() as u64 {
            return Err(ConnectError::Protocol(
                "shared memory size does not match its layout",
            ));
        }
        // The request ring mirrored: contiguous zero-copy slots (RequestSlot).
        let rings = Rings::map_mirrored(&memfd, &layout).map_err(ConnectError::Os)?;
        drop(memfd);
        sys::set_nonblocking(socket.as_fd()).map_err(ConnectError::Os)?;
        let pollable = sys::epoll_of(event.as_fd(), socket.as_fd()).map_err(ConnectError::Os)?;
        Ok(Self {
            id: accepted.conn_id,
            permission: accepted.permission,
            max_message,
            socket,
            doorbell,
            sync,
            event,
            pollable,
            requests: Producer::new(rings.request, max_message),
            responses: Consumer::new(rings.response, max_message),
            events: Consumer::new(rings.event, max_message),
            closed: None,
        })
    }

    /// The daemon's id for this connection.
    pub fn conn_id(&self) -> u64 {
        self.id
    }

    /// What the daemon's access policy granted us.
    pub fn permission(&self) -> Permission {
        self.permission
    }

    /// Largest payload in either direction.
    pub fn max_message(&self) -> usize {
        self.max_message
    }

    fn check_open(&self) -> Result<(), Error> {
        match self.closed {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn corrupt(&mut self, ring: RingKind, error: RingError) -> Error {
        let e = Error::Corrupt { ring, error };
        self.closed = Some(e);
        e
    }

    /// Is the daemon still there? (A non-blocking look at the control socket.)
    ///
    /// # Errors
    /// [`Error::Disconnected`] when it closed the connection.
    pub fn check_connection(&mut self) -> Result<(), Error> {
        self.check_open()?;
        match sys::peek(self.socket.as_fd()) {
            Ok(sys::Peek::Quiet) => Ok(()),
            Ok(_) => {
                self.closed = Some(Error::Disconnected);
                Err(Error::Disconnected)
            }
            Err(e) => Err(Error::Os(e)),
        }
    }

    /// Sleep until `bell` rings, the daemon goes away, or `deadline`. `Ok(false)`: deadline.
    fn sleep(&mut self, bell: Bell, deadline: Option<Instant>) -> Result<bool, Error> {
        let fd = match bell {
            Bell::Sync => self.sync.as_fd(),
            Bell::Event => self.event.as_fd(),
        };
        let mut fds = [sys::pollfd(fd), sys::pollfd(self.socket.as_fd())];
        let timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if sys::poll(&mut fds, timeout).map_err(Error::Os)? == 0 {
            return Ok(false);
        }
        if fds[1].revents != 0 {
            self.check_connection()?;
        }
        Ok(true)
    }

    /// Queue a request without blocking.
    ///
    /// # Errors
    /// [`Error::TryAgain`] when the request ring is full (the daemon is busy: nothing was
    /// sent, retry later), [`Error::TooLarge`], or a finished connection.
    pub fn try_send_request(&mut self, data: &[u8]) -> Result<(), Error> {
        self.check_open()?;
        match self.requests.try_push(data) {
            Ok(wake) => {
                if wake {
                    sys::notify(self.doorbell.as_fd());
                }
                Ok(())
            }
            Err(PushError::Full) => Err(Error::TryAgain),
            Err(PushError::TooLarge) => Err(Error::TooLarge {
                len: data.len(),
                max: self.max_message,
            }),
            Err(PushError::Corrupt(e)) => Err(self.corrupt(RingKind::Request, e)),
        }
    }

    /// Queue a request, waiting up to `timeout` (`None`: forever) for ring space.
    ///
    /// # Errors
    /// [`Error::TimedOut`] (nothing sent), [`Error::TooLarge`], [`Error::Disconnected`].
    pub fn send_request(&mut self, data: &[u8], timeout: Option<Duration>) -> Result<(), Error> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            match self.try_send_request(data) {
                Err(Error::TryAgain) => {}
                other => return other,
            }
            // Clear before arming: a ring after this point keeps the fd readable.
            sys::drain(self.sync.as_fd());
            match self.requests.arm(data.len()) {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => return Err(self.corrupt(RingKind::Request, e)),
            }
            if !self.sleep(Bell::Sync, deadline)? {
                return Err(Error::TimedOut);
            }
        }
    }

    /// Reserve a request of exactly `len` bytes in the shared request ring, without
    /// blocking, for the caller to write in place (zero copy; see the module doc). Nothing
    /// is sent until [`RequestSlot::commit`]; the slot borrows the client, so no other
    /// request can be sent meanwhile.
    ///
    /// # Errors
    /// [`Error::TryAgain`] when the ring has no room for it now (nothing reserved; see
    /// [`Client::wait_request_room`]), [`Error::TooLarge`] above [`Client::max_message`],
    /// or a finished connection.
    pub fn try_reserve_request(&mut self, len: usize) -> Result<RequestSlot<'_>, Error> {
        let res = self.reserve(len)?;
        Ok(RequestSlot::new(self, res))
    }

    /// As [`Client::try_reserve_request`], waiting up to `timeout` (`None`: forever) for
    /// room, as [`Client::send_request`] does.
    ///
    /// # Errors
    /// [`Error::TimedOut`] (nothing reserved), [`Error::TooLarge`], [`Error::Disconnected`].
    pub fn reserve_request(
        &mut self,
        len: usize,
        timeout: Option<Duration>,
    ) -> Result<RequestSlot<'_>, Error> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let res = loop {
            match self.reserve(len) {
                Err(Error::TryAgain) => {}
                other => break other?,
            }
            if !self.wait_room(len, false, deadline)? {
                return Err(Error::TimedOut);
            }
        };
        Ok(RequestSlot::new(self, res))
    }

    /// Wait up to `timeout` (`None`: forever) until a request of `len` bytes fits in the
    /// request ring (`Ok(true)`), or a response is there to read (`Ok(false)`).
    ///
    /// A client that keeps requests in flight without reading their responses must read
    /// them to make room: the daemon takes a request only when its response fits, so a
    /// full response ring stops it from freeing request space. Call this in a loop, reading
    /// the responses on `Ok(false)`, then reserve or send.
    ///
    /// # Errors
    /// [`Error::TimedOut`], [`Error::TooLarge`], [`Error::Disconnected`], a corrupt ring.
    pub fn wait_request_room(
        &mut self,
        len: usize,
        timeout: Option<Duration>,
    ) -> Result<bool, Error> {
        self.check_open()?;
        if len > self.max_message {
            return Err(Error::TooLarge {
                len,
                max: self.max_message,
            });
        }
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            if self.request_fits(len)? {
                return Ok(true);
            }
            if self.response_waiting()? {
                return Ok(false);
            }
            if !self.wait_room(len, true, deadline)? {
                return Err(Error::TimedOut);
            }
        }
    }

    /// Whether a `len`-byte request fits in the request ring now.
    fn request_fits(&mut self, len: usize) -> Result<bool, Error> {
        let need = record_len(len).unwrap_or(usize::MAX);
        match self.requests.available() {
            Ok(free) => Ok(free >= need),
            Err(e) => Err(self.corrupt(RingKind::Request, e)),
        }
    }

    /// Whether a response is published and not yet read.
    fn response_waiting(&mut self) -> Result<bool, Error> {
        match self.responses.has_data() {
            Ok(b) => Ok(b),
            Err(e) => Err(self.corrupt(RingKind::Response, e)),
        }
    }

    /// One sleep on the sync eventfd until request room for `len` (and, with `responses`,
    /// a response) may be there; `Ok(false)`: the deadline passed. Returns at once when
    /// arming finds the condition already true.
    fn wait_room(
        &mut self,
        len: usize,
        responses: bool,
        deadline: Option<Instant>,
    ) -> Result<bool, Error> {
        // Clear before arming: a ring after this point keeps the fd readable.
        sys::drain(self.sync.as_fd());
        match self.requests.arm(len) {
            Ok(true) => return Ok(true),
            Ok(false) => {}
            Err(e) => return Err(self.corrupt(RingKind::Request, e)),
        }
        if responses {
            match self.responses.arm() {
                Ok(true) => return Ok(true),
                Ok(false) => {}
                Err(e) => return Err(self.corrupt(RingKind::Response, e)),
            }
        }
        self.sleep(Bell::Sync, deadline)
    }

    /// Reserve a `len`-byte record in the request ring.
    fn reserve(&mut self, len: usize) -> Result<Reservation, Error> {
        self.check_open()?;
        match self.requests.try_reserve(len) {
            Ok(r) => Ok(r),
            Err(PushError::Full) => Err(Error::TryAgain),
            Err(PushError::TooLarge) => Err(Error::TooLarge {
                len,
                max: self.max_message,
            }),
            Err(PushError::Corrupt(e)) => Err(self.corrupt(RingKind::Request, e)),
        }
    }

    /// The next response, if one is there.
    ///
    /// # Errors
    /// A corrupt response ring or a finished connection.
    pub fn try_recv_response(&mut self) -> Result<Option<Vec<u8>>, Error> {
        let mut out = Vec::new();
        Ok(self.try_recv_response_into(&mut out)?.then_some(out))
    }

    /// As [`Client::try_recv_response`], into the caller's buffer (cleared first), so a
    /// client reading many small responses reuses one allocation. `Ok(false)`: none now.
    ///
    /// # Errors
    /// As [`Client::try_recv_response`].
    pub fn try_recv_response_into(&mut self, out: &mut Vec<u8>) -> Result<bool, Error> {
        self.check_open()?;
        match self.responses.try_pop(out) {
            Ok(Some(wake)) => {
                if wake {
                    sys::notify(self.doorbell.as_fd());
                }
                Ok(true)
            }
            Ok(None) => Ok(false),
            Err(e) => Err(self.corrupt(RingKind::Response, e)),
        }
    }

    /// Wait up to `timeout` (`None`: forever) for the next response. Responses come in
    /// request order; one the daemon published before it closed the connection is still
    /// returned (a refused session, a `leave`).
    ///
    /// # Errors
    /// [`Error::TimedOut`] (the response may still come: the next `recv_response` gets
    /// it), [`Error::Disconnected`], a corrupt ring.
    pub fn recv_response(&mut self, timeout: Option<Duration>) -> Result<Vec<u8>, Error> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            if let Some(r) = self.try_recv_response()? {
                return Ok(r);
            }
            sys::drain(self.sync.as_fd());
            match self.responses.arm() {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => return Err(self.corrupt(RingKind::Response, e)),
            }
            match self.sleep(Bell::Sync, deadline) {
                Ok(true) => {}
                Ok(false) => return Err(Error::TimedOut),
                Err(Error::Disconnected) => {
                    // The daemon may have answered and then closed the connection (a
                    // refused session, a `leave`): the hang-up and the response's wake-up
                    // arrive together, and a response already published is still the
                    // answer, as queued events are still delivered.
                    let mut out = Vec::new();
                    return match self.responses.try_pop(&mut out) {
                        Ok(Some(_)) => Ok(out),
                        Ok(None) => Err(Error::Disconnected),
                        Err(e) => Err(self.corrupt(RingKind::Response, e)),
                    };
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Send a request and wait for its response (blocking, no timeout; a daemon that goes
    /// away ends the wait with [`Error::Disconnected`]).
    ///
    /// With requests already outstanding (sent by [`Client::try_send_request`] and not yet
    /// answered), this returns the *next* response, which belongs to the oldest of them.
    ///
    /// # Errors
    /// [`Error::TooLarge`], [`Error::Disconnected`], a corrupt ring.
    pub fn request(&mut self, data: &[u8]) -> Result<Vec<u8>, Error> {
        self.send_request(data, None)?;
        self.recv_response(None)
    }

    /// Take the next event into `out` (cleared first). `Ok(false)`: none, and the pollable
    /// fd is re-armed.
    ///
    /// # Errors
    /// [`Error::Disconnected`] once the daemon is gone and its queued events are all read;
    /// a corrupt event ring.
    pub fn try_recv_event_into(&mut self, out: &mut Vec<u8>) -> Result<bool, Error> {
        self.check_open()?;
        for attempt in 0..2 {
            match self.events.try_pop(out) {
                Ok(Some(wake)) => {
                    if wake {
                        sys::notify(self.doorbell.as_fd());
                    }
                    return Ok(true);
                }
                Ok(None) if attempt == 0 => {
                    // The event fd serves only events, so clearing it here is safe; clear
                    // before arming, as everywhere.
                    sys::drain(self.event.as_fd());
                    match self.events.arm() {
                        Ok(true) => continue,
                        // Nothing queued: is the daemon still there? (The pollable fd is
                        // also readable on hang-up, so this is where a dispatch loop
                        // learns it.)
                        Ok(false) => return self.check_connection().map(|()| false),
                        Err(e) => return Err(self.corrupt(RingKind::Event, e)),
                    }
                }
                Ok(None) => return Ok(false),
                Err(e) => return Err(self.corrupt(RingKind::Event, e)),
            }
        }
        Ok(false)
    }

    /// The next event, if one is there (re-arms the event fd when not).
    ///
    /// # Errors
    /// As [`Client::try_recv_event_into`].
    pub fn try_recv_event(&mut self) -> Result<Option<Vec<u8>>, Error> {
        let mut out = Vec::new();
        Ok(self.try_recv_event_into(&mut out)?.then_some(out))
    }

    /// Wait up to `timeout` (`None`: forever) for the next event. `Ok(None)`: timed out.
    ///
    /// # Errors
    /// [`Error::Disconnected`], a corrupt ring.
    pub fn recv_event(&mut self, timeout: Option<Duration>) -> Result<Option<Vec<u8>>, Error> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            if let Some(e) = self.try_recv_event()? {
                return Ok(Some(e));
            }
            if !self.sleep(Bell::Event, deadline)? {
                return Ok(None);
            }
        }
    }

    /// Test access: the rings as the client sees them.
    #[cfg(test)]
    pub(crate) fn rings_for_test(
        &mut self,
    ) -> (
        &mut Producer<ShmRing>,
        &mut Consumer<ShmRing>,
        &mut Consumer<ShmRing>,
    ) {
        (&mut self.requests, &mut self.responses, &mut self.events)
    }

    /// Test access: the control socket.
    #[cfg(test)]
    pub(crate) fn socket_for_test(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }

    /// Test access: ring the daemon's doorbell.
    #[cfg(test)]
    pub(crate) fn ring_doorbell_for_test(&self) {
        sys::notify(self.doorbell.as_fd());
    }
}

/// A request reserved in the shared request ring ([`Client::try_reserve_request`]), to be
/// written in place and sent with [`RequestSlot::commit`]. Derefs to the request's bytes:
/// a `&mut [u8]` into the shared mapping, contiguous even when the record wraps.
///
/// The bytes start out as whatever the ring held before (old requests of this client):
/// write all of them, or [`RequestSlot::truncate`] to what was written. Dropping the slot
/// sends nothing (the space is reused by the next request).
///
/// ```no_run
/// # fn main() -> Result<(), ipc_shm::Error> {
/// # let mut client: ipc_shm::Client = unimplemented!();
/// let mut slot = client.reserve_request(3, None)?;
/// slot.copy_from_slice(b"abc");     // written straight into shared memory
/// let client = slot.commit();        // published; the client is usable again
/// let reply = client.recv_response(None)?;
/// # let _ = reply; Ok(()) }
/// ```
///
/// (On a kernel whose pages are larger than 4 KiB the ring cannot be mirrored; a slot that
/// would wrap is then a private buffer copied into the ring at commit:
/// [`RequestSlot::is_in_place`] says which.)
pub struct RequestSlot<'a> {
    client: &'a mut Client,
    res: Reservation,
    /// The payload's offset in the request ring's data area.
    off: usize,
    /// Whether the bytes are the ring itself; if not, they are `bounce`.
    in_place: bool,
    /// The private buffer of a slot that cannot be in place (empty otherwise).
    bounce: Vec<u8>,
}

impl<'a> RequestSlot<'a> {
    fn new(client: &'a mut Client, res: Reservation) -> Self {
        let mem = client.requests.memory();
        // The capacity is a power of two, so masking keeps the offset below it.
        let off = (res.payload_pos() & (mem.capacity() as u64 - 1)) as usize;
        let in_place = mem.contiguous(off, res.len()).is_some();
        let bounce = if in_place {
            Vec::new()
        } else {
            alloc::vec![0; res.len()]
        };
        Self {
            client,
            res,
            off,
            in_place,
            bounce,
        }
    }

    /// Whether the bytes are the shared ring itself (zero copy) rather than a bounce buffer
    /// (only without a mirror, for a slot that wraps).
    pub fn is_in_place(&self) -> bool {
        self.in_place
    }

    /// Send only the first `len` bytes (no-op if `len` is not smaller than the slot).
    pub fn truncate(&mut self, len: usize) {
        self.res.truncate(len);
        self.bounce.truncate(len);
    }

    /// Publish the request: the daemon sees it once this returns (its doorbell is rung if
    /// it sleeps). Gives the client back, for reading the response.
    pub fn commit(self) -> &'a mut Client {
        let Self {
            client,
            res,
            in_place,
            bounce,
            ..
        } = self;
        let requests = &mut client.requests;
        if !in_place {
            crate::ring::write_payload(requests.memory(), &res, &bounce);
        }
        if requests.commit(res) {
            sys::notify(client.doorbell.as_fd());
        }
        client
    }
}

impl Deref for RequestSlot<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        let len = self.res.len();
        match self.client.requests.memory().contiguous(self.off, len) {
            Some(p) if self.in_place => {
                // SAFETY: `contiguous` returned a run of `len` bytes of the live mapping
                // (kept alive by the client this slot borrows). They are free space this
                // client reserved: the daemon neither reads them (they lie past our published
                // head) nor writes them (it never writes request data), and this process
                // reaches the ring only through the `&mut Client` we hold, so for the
                // lifetime of the returned borrow nothing else accesses them (module doc).
                unsafe { core::slice::from_raw_parts(p.as_ptr(), len) }
            }
            _ => &self.bounce[..len],
        }
    }
}

impl DerefMut for RequestSlot<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        let len = self.res.len();
        match self.client.requests.memory().contiguous(self.off, len) {
            Some(p) if self.in_place => {
                // SAFETY: as in `deref`; the borrow is unique because it is derived from
                // `&mut self`, and the run holds each byte once (len <= capacity, so the
                // mirror's two views of a byte are never both inside it).
                unsafe { core::slice::from_raw_parts_mut(p.as_ptr(), len) }
            }
            _ => &mut self.bounce[..len],
        }
    }
}

impl fmt::Debug for RequestSlot<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestSlot")
            .field("len", &self.res.len())
            .field("in_place", &self.is_in_place())
            .finish_non_exhaustive()
    }
}

impl AsFd for Client {
    /// The pollable fd: readable when events may be waiting or the daemon is gone.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.pollable.as_fd()
    }
}

impl AsRawFd for Client {
    /// The pollable fd: readable when events may be waiting or the daemon is gone.
    fn as_raw_fd(&self) -> RawFd {
        self.pollable.as_raw_fd()
    }
}
