//! Zero-copy multicasts (corosync's `cpg_zcb_alloc` / `cpg_zcb_mcast_joined` /
//! `cpg_zcb_free`): [`Cpg::zcb_alloc`] reserves the Mcast request in the connection's
//! shared request ring and hands out its payload bytes as a [`ZcBuffer`]; the application
//! writes its message there, in place, and sends it with [`ZcBuffer::mcast`] (reply
//! awaited, like [`Cpg::mcast`]) or [`ZcBuffer::mcast_queued`] (like [`Cpg::mcast_queued`]).
//! Dropping the buffer unsent is `cpg_zcb_free`: nothing reaches the daemon.
//!
//! The buffer borrows the handle, so the borrow checker enforces what libcpg documents:
//! one buffer at a time, no other call while it is out, no use after it was sent or freed.
//! Contiguity comes from ipc-shm (the request ring's data area is mapped twice back to back,
//! so a request that wraps past the end of the ring is still one slice); the daemon copies
//! the request out and validates it as it does every request.

use core::fmt;
use core::ops::{Deref, DerefMut};

use ipc_shm::RequestSlot;
use services::cpg::wire::{CsError, MCAST_HEADER_LEN, RequestCode};
use services::wire::WIRE_VERSION;

use super::{Cpg, GroupArg, Guarantee, MAX_NAME_LEN, Queued};
use crate::Error;

/// Byte of the Mcast request that holds the guarantee (after version and code).
const GUARANTEE_AT: usize = 2;

/// Where the request code sits in the Mcast request header.
const CODE_AT: usize = 1;

/// A multicast being written in place, in the connection's shared request ring
/// ([`Cpg::zcb_alloc`]). Derefs to its payload, `&mut [u8]` of the length asked for.
///
/// Send it with [`ZcBuffer::mcast`] or [`ZcBuffer::mcast_queued`]; drop it to send nothing.
/// The bytes start out as whatever the ring held before (earlier requests of this handle,
/// never another process's data): write all of them, or [`ZcBuffer::truncate`] the buffer
/// to what was written.
///
/// # Example
///
/// ```no_run
/// use totem_client::cpg::{Cpg, Guarantee};
/// # fn main() -> Result<(), totem_client::Error> {
/// let mut cpg = Cpg::initialize()?;
/// cpg.join("bulk")?;
/// // 1 MiB, written straight into shared memory: the library copies none of it.
/// let mut buf = cpg.zcb_alloc("bulk", 1 << 20)?;
/// for (i, chunk) in buf.chunks_mut(4096).enumerate() {
///     chunk.fill(i as u8); // or read(2) a file into it, serialise into it, ...
/// }
/// buf.mcast(Guarantee::Agreed)?;
///
/// // Pipelined: returns once the request is in the ring (see Cpg::mcast_queued).
/// let mut buf = cpg.zcb_alloc("bulk", 5)?;
/// buf.copy_from_slice(b"hello");
/// buf.mcast_queued(Guarantee::Agreed)?;
/// cpg.flush()?;
/// # Ok(()) }
/// ```
pub struct ZcBuffer<'a> {
    /// The whole Mcast request: header, group name, payload.
    slot: RequestSlot<'a>,
    queue: &'a mut Queued,
    /// Bytes of the request before the payload (header and group name).
    header: usize,
}

impl Cpg {
    /// Allocates a zero-copy multicast of `len` payload bytes to `group` (corosync's
    /// `cpg_zcb_alloc`): a [`ZcBuffer`] in the connection's shared memory, for the
    /// application to write its message into and send. Waits for room in the request ring
    /// if earlier multicasts still fill it (reading their replies meanwhile, so the daemon
    /// can go on), like [`Cpg::mcast`]; [`Cpg::try_zcb_alloc`] does not wait.
    ///
    /// `len` may be up to [`Cpg::max_message_size`] (1 MiB with totemd's defaults) for any
    /// group name; a little more for a short name. The group is named here because the
    /// name precedes the payload in the request.
    ///
    /// # Errors
    /// [`Error::TooBig`] when `len` is above what one multicast to `group` can carry
    /// (nothing allocated), [`Error::NameTooLong`], [`Error::BadHandle`] after finalize, a
    /// connection error.
    pub fn zcb_alloc(
        &mut self,
        group: &(impl GroupArg + ?Sized),
        len: usize,
    ) -> Result<ZcBuffer<'_>, Error> {
        self.zcb(group.group_bytes(), len, true)
    }

    /// As [`Cpg::zcb_alloc`], without waiting.
    ///
    /// # Errors
    /// [`Error::TryAgain`] when the request ring has no room now (the daemon has not taken
    /// earlier multicasts yet: dispatch, wait a little, retry); otherwise as
    /// [`Cpg::zcb_alloc`].
    pub fn try_zcb_alloc(
        &mut self,
        group: &(impl GroupArg + ?Sized),
        len: usize,
    ) -> Result<ZcBuffer<'_>, Error> {
        self.zcb(group.group_bytes(), len, false)
    }

    fn zcb(&mut self, name: &[u8], len: usize, wait: bool) -> Result<ZcBuffer<'_>, Error> {
        if self.finalized {
            return Err(Error::BadHandle);
        }
        if name.len() > MAX_NAME_LEN {
            return Err(Error::NameTooLong);
        }
        if len > self.payload_limit(name.len()) {
            return Err(Error::TooBig);
        }
        let header = MCAST_HEADER_LEN + name.len();
        // At most the IPC limit (payload_limit), so neither overflows nor is TooLarge.
        let total = header + len;
        // Replies already there first: the response ring keeps room, and a queued
        // multicast's error is current for mcast_queued.
        self.queue.reap(&mut self.client)?;
        if wait {
            // The daemon takes a request only when its reply fits: read replies while
            // waiting for room, or a full response ring would stop it for ever.
            while !self.client.wait_request_room(total, None)? {
                self.queue.reap(&mut self.client)?;
            }
        }
        let mut slot = self.client.try_reserve_request(total)?;
        // The Mcast request (services::cpg::wire): version, code, guarantee (set when it is
        // sent), name length, 8 reserved bytes the daemon overwrites with the sender, the
        // name; the payload follows.
        // One look at the slot for the whole head (each deref checks the mapping).
        let head: &mut [u8] = &mut slot;
        head[..MCAST_HEADER_LEN].copy_from_slice(&[
            WIRE_VERSION,
            RequestCode::Mcast.into(),
            Guarantee::Agreed.wire().into(),
            // At most MAX_NAME_LEN (128), checked above.
            name.len() as u8,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
        ]);
        head[MCAST_HEADER_LEN..header].copy_from_slice(name);
        Ok(ZcBuffer {
            slot,
            queue: &mut self.queue,
            header,
        })
    }
}

impl ZcBuffer<'_> {
    /// Payload bytes that will be sent.
    pub fn len(&self) -> usize {
        self.slot.len() - self.header
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Send only the first `len` payload bytes (no-op if `len` is not smaller): allocate
    /// for the largest message, write, then trim to what was written.
    pub fn truncate(&mut self, len: usize) {
        self.slot.truncate(self.header.saturating_add(len));
    }

    /// Copies the concatenation of `parts` (whose total is the buffer's length) in: what
    /// [`Cpg::mcast_vectored`] does.
    pub(crate) fn write_parts(&mut self, parts: &[&[u8]]) {
        let mut at = 0;
        let buf: &mut [u8] = self;
        for p in parts {
            // The buffer was allocated for exactly the parts' total length.
            buf[at..at + p.len()].copy_from_slice(p);
            at += p.len();
        }
    }

    /// Whether the payload is written straight into shared memory (always, on Linux with
    /// 4 KiB pages); otherwise into a private buffer copied into the ring when sent (a
    /// request that wraps around the ring on a kernel with larger pages).
    pub fn is_in_place(&self) -> bool {
        self.slot.is_in_place()
    }

    /// Sends the message to the group (corosync's `cpg_zcb_mcast_joined`) and waits for
    /// the daemon to accept it, as [`Cpg::mcast`] does; every member, this one included,
    /// gets it as an [`super::Event::Deliver`] in the group's total order.
    ///
    /// # Errors
    /// As [`Cpg::mcast`]: [`Error::NotExist`] (not a member of the group), or a connection
    /// error. Under flow control totemd holds the multicast and this waits; a daemon that
    /// answers [`Error::TryAgain`] instead (corosync) has dropped it: allocate and write a
    /// new buffer to retry.
    pub fn mcast(self, guarantee: Guarantee) -> Result<(), Error> {
        let Self {
            mut slot, queue, ..
        } = self;
        slot[GUARANTEE_AT] = guarantee.wire().into();
        let client = slot.commit();
        // Replies come in request order: queued multicasts' failures come first.
        let reply = queue.answer(client, RequestCode::Mcast)?;
        if reply.error != CsError::Ok {
            return Err(Error::from_cs(reply.error));
        }
        Ok(())
    }

    /// Sends the message without waiting for the daemon's reply, as
    /// [`Cpg::mcast_queued`] does: it is in the ring when this returns, and is sent in
    /// order with the handle's other multicasts. [`Cpg::flush`] waits until every queued
    /// multicast was taken.
    ///
    /// # Errors
    /// The first error of an earlier queued multicast: then this one is not sent (the
    /// buffer is freed).
    pub fn mcast_queued(self, guarantee: Guarantee) -> Result<(), Error> {
        let Self {
            mut slot, queue, ..
        } = self;
        if let Some(e) = queue.error.take() {
            return Err(e);
        }
        let head: &mut [u8] = &mut slot;
        head[CODE_AT] = RequestCode::McastQueued.into();
        head[GUARANTEE_AT] = guarantee.wire().into();
        slot.commit();
        queue.count += 1;
        Ok(())
    }
}

impl fmt::Debug for ZcBuffer<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ZcBuffer")
            .field("len", &self.len())
            .field("in_place", &self.is_in_place())
            .finish_non_exhaustive()
    }
}

impl Deref for ZcBuffer<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.slot[self.header..]
    }
}

impl DerefMut for ZcBuffer<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        let header = self.header;
        &mut self.slot[header..]
    }
}
