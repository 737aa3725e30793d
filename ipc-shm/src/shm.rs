//! Shared memory: one sealed memfd per connection, mapped `MAP_SHARED`, cut into three
//! rings ([`Layout`]); [`ShmRing`] is a [`RingMemory`] view of one of them.
//!
//! **Mirror.** The client maps its request ring's data area a second time ([`Mirror`]):
//! `2 × capacity` bytes of address space whose two halves are the same pages (the "magic
//! ring buffer"), so any record, even one that wraps past the end of the data area, is one
//! contiguous run of virtual memory. That is what lets [`crate::RequestSlot`] hand the
//! application a plain `&mut [u8]` to write a request into, in place. It needs the data
//! area's file offset and capacity to be multiples of the page size; both are multiples of
//! 4 KiB by construction ([`RING_HEADER_PAGE`], power-of-two capacities ≥ [`MIN_RING`]),
//! so on 4 KiB-page kernels it always holds. Elsewhere (64 KiB pages) there is no mirror
//! and a slot that would wrap falls back to a private buffer copied in at commit. The
//! daemon maps no mirror: it copies records out in two parts, as before.
//!
//! The memfd is created by the daemon with `MFD_ALLOW_SEALING` and sealed with
//! `F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL` before the client ever sees it: a client
//! that calls `ftruncate` on its copy gets `EPERM` instead of turning the daemon's next
//! access into `SIGBUS`. Nothing else about the client's use of the mapping can hurt the
//! daemon (see [`crate::ring`] for what it may write).

use alloc::sync::Arc;
use core::mem::MaybeUninit;
use core::ptr::NonNull;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::error::{ConfigError, OsError, RingKind};
use crate::ring::{RING_HEADER_PAGE, RingHeader, RingMemory, record_len};

/// Smallest ring capacity.
pub(crate) const MIN_RING: usize = 4096;
/// Largest ring capacity (record lengths are `u32`; keeps every offset far from overflow).
pub(crate) const MAX_RING: usize = 1 << 30;

/// Where the three rings sit in the connection's memfd:
/// `[hdr req][data req][hdr resp][data resp][hdr event][data event]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    /// Data capacity of the request, response and event rings, in that order.
    pub(crate) caps: [usize; 3],
}

impl Layout {
    /// Check capacities against the limits and `max_message`.
    pub(crate) fn validate(&self, max_message: usize) -> Result<(), ConfigError> {
        let need = record_len(max_message).unwrap_or(usize::MAX);
        for (i, &capacity) in self.caps.iter().enumerate() {
            let ring = RING_KINDS[i];
            if !capacity.is_power_of_two() || !(MIN_RING..=MAX_RING).contains(&capacity) {
                return Err(ConfigError::BadRingSize { ring, capacity });
            }
            if need > capacity {
                return Err(ConfigError::RingTooSmall {
                    ring,
                    capacity,
                    need,
                });
            }
        }
        Ok(())
    }

    /// Offset of ring `i`'s header page.
    fn header_offset(&self, i: usize) -> usize {
        self.caps[..i].iter().map(|c| RING_HEADER_PAGE + c).sum()
    }

    /// Total bytes of the memfd.
    pub(crate) fn total(&self) -> usize {
        self.header_offset(3)
    }
}

/// Index order of the rings in [`Layout::caps`].
pub(crate) const RING_KINDS: [RingKind; 3] =
    [RingKind::Request, RingKind::Response, RingKind::Event];

/// Create the connection's memfd, sized and sealed.
pub(crate) fn create_memfd(len: usize) -> Result<OwnedFd, OsError> {
    // SAFETY: the name is a NUL-terminated literal; flags are valid memfd_create flags.
    let fd = unsafe {
        libc::memfd_create(
            c"ipc-shm".as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        )
    };
    if fd < 0 {
        return Err(OsError::last("memfd_create"));
    }
    // SAFETY: memfd_create just returned this fd; nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let len_off = libc::off_t::try_from(len).map_err(|_| OsError {
        op: "ftruncate",
        errno: libc::EFBIG,
    })?;
    // SAFETY: plain syscall on an fd we own.
    if unsafe { libc::ftruncate(fd.as_raw_fd(), len_off) } != 0 {
        return Err(OsError::last("ftruncate"));
    }
    let seals = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL;
    // SAFETY: plain syscall on an fd we own; F_ADD_SEALS takes an int argument.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals) } != 0 {
        return Err(OsError::last("fcntl(F_ADD_SEALS)"));
    }
    Ok(fd)
}

/// Size of the file behind `fd` (the client checks the daemon's memfd against the layout).
pub(crate) fn file_size(fd: &OwnedFd) -> Result<u64, OsError> {
    // SAFETY: an all-zero `stat` is a valid value of this plain C struct.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: `st` is a valid, writable `stat`; the fd is open.
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } != 0 {
        return Err(OsError::last("fstat"));
    }
    u64::try_from(st.st_size).map_err(|_| OsError {
        op: "fstat",
        errno: libc::EINVAL,
    })
}

/// A mapping owned by this value, unmapped on drop: a `MAP_SHARED` read-write mapping of a
/// whole memfd ([`Mapping::new`]), or a [`Mirror`]'s reservation.
#[derive(Debug)]
pub(crate) struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain memory owned by this value; every access goes through raw
// pointer copies or atomics (see ShmRing), which are fine from any thread.
unsafe impl Send for Mapping {}
// SAFETY: as above: shared access is only through atomics and raw copies.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Map `len` bytes of `fd` from offset 0. The fd may be closed afterwards.
    pub(crate) fn new(fd: &OwnedFd, len: usize) -> Result<Self, OsError> {
        // SAFETY: a fresh mapping chosen by the kernel (addr NULL) overlaps nothing of ours;
        // the result is checked against MAP_FAILED before use.
        let p = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(OsError::last("mmap"));
        }
        let ptr = NonNull::new(p.cast::<u8>()).ok_or(OsError {
            op: "mmap",
            errno: libc::ENOMEM,
        })?;
        Ok(Self { ptr, len })
    }

    /// Base address.
    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: ptr/len are exactly what mmap returned (for a Mirror, its whole
        // reservation, both views inside it); every ShmRing holds an Arc to this mapping or
        // its Mirror, so no view outlives it.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

/// A ring's data area mapped twice, back to back: `[base, base + cap)` and `[base + cap,
/// base + 2 cap)` are the same `MAP_SHARED` pages of the memfd. The [`Mapping`] is the
/// whole reservation (twice the capacity, both views inside it): unmapped on drop.
#[derive(Debug)]
pub(crate) struct Mirror(Mapping);

/// The kernel's page size.
fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(n).unwrap_or(usize::MAX)
}

impl Mirror {
    /// Map `cap` bytes of `fd` at file offset `off` twice, back to back. `Ok(None)` when the
    /// page size does not divide both (no mirror possible; not an error).
    pub(crate) fn new(fd: &OwnedFd, off: usize, cap: usize) -> Result<Option<Self>, OsError> {
        let page = page_size();
        if page == 0 || !off.is_multiple_of(page) || !cap.is_multiple_of(page) {
            return Ok(None);
        }
        let len = cap.checked_mul(2).ok_or(OsError {
            op: "mmap",
            errno: libc::ENOMEM,
        })?;
        let file_off = libc::off_t::try_from(off).map_err(|_| OsError {
            op: "mmap",
            errno: libc::EINVAL,
        })?;
        // First reserve 2 × cap of address space nobody else will get (PROT_NONE, no memory
        // committed), then put the two views over it with MAP_FIXED: mapping at a fixed
        // address is only safe over a range we own, and this reservation is ours.
        // SAFETY: a fresh anonymous mapping chosen by the kernel overlaps nothing of ours;
        // the result is checked against MAP_FAILED.
        let base = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                len,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(OsError::last("mmap"));
        }
        let Some(ptr) = NonNull::new(base.cast::<u8>()) else {
            return Err(OsError {
                op: "mmap",
                errno: libc::ENOMEM,
            });
        };
        // From here on, dropping `mirror` unmaps the whole reservation (views included).
        let mirror = Self(Mapping { ptr, len });
        for half in 0..2 {
            // SAFETY: `half * cap < len`, so the address is inside our reservation.
            let at = unsafe { ptr.as_ptr().add(half * cap) };
            // SAFETY: MAP_FIXED replaces exactly [at, at + cap), which lies inside the
            // reservation made above and owned by `mirror` (nothing else of this process
            // lives there); the fd is open; the result is checked.
            let p = unsafe {
                libc::mmap(
                    at.cast(),
                    cap,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED | libc::MAP_FIXED,
                    fd.as_raw_fd(),
                    file_off,
                )
            };
            if p == libc::MAP_FAILED {
                return Err(OsError::last("mmap"));
            }
            if p != at.cast() {
                return Err(OsError {
                    op: "mmap",
                    errno: libc::EINVAL,
                });
            }
        }
        Ok(Some(mirror))
    }
}

/// One ring inside a [`Mapping`]; keeps the mapping alive.
#[derive(Debug, Clone)]
pub(crate) struct ShmRing {
    /// Held only to keep the pointers below valid.
    _map: Arc<Mapping>,
    /// Held only to keep `data` valid when it points into a mirror.
    _mirror: Option<Arc<Mirror>>,
    header: NonNull<RingHeader>,
    /// The data area: in `_map`, or the first half of `_mirror` (then `data + cap` up to
    /// `data + 2 cap` shows the same bytes again).
    data: NonNull<u8>,
    cap: usize,
}

// SAFETY: the pointers point into `map`, which is Send + Sync and kept alive by the Arc.
unsafe impl Send for ShmRing {}

impl ShmRing {
    /// The view of ring `i` (0 request, 1 response, 2 event) of `layout` in `map`.
    ///
    /// # Panics
    /// If the mapping is smaller than the layout (a bug: callers map `layout.total()`).
    pub(crate) fn new(map: &Arc<Mapping>, layout: &Layout, i: usize) -> Self {
        let off = layout.header_offset(i);
        let cap = layout.caps[i];
        assert!(
            off + RING_HEADER_PAGE + cap <= map.len(),
            "mapping smaller than layout"
        );
        // SAFETY: off + RING_HEADER_PAGE + cap <= map.len() (asserted), so both pointers are
        // inside the mapping; `add` of an in-bounds offset cannot wrap.
        let (header, data) = unsafe {
            let base = map.as_ptr();
            (base.add(off), base.add(off + RING_HEADER_PAGE))
        };
        Self {
            _map: Arc::clone(map),
            _mirror: None,
            // The mapping is page aligned and `off` is a sum of page-multiple sizes, so the
            // header is 4096-aligned, which satisfies RingHeader's 128-byte alignment.
            header: NonNull::new(header.cast::<RingHeader>()).unwrap_or(NonNull::dangling()),
            data: NonNull::new(data).unwrap_or(NonNull::dangling()),
            cap,
        }
    }

    /// The same ring with its data read and written through `mirror`, which must map this
    /// ring's data area (see [`Rings::map_mirrored`]).
    fn with_mirror(mut self, mirror: Mirror) -> Self {
        self.data = mirror.0.ptr;
        self._mirror = Some(Arc::new(mirror));
        self
    }

    /// Whether the data area is mirrored (every run of up to `capacity` bytes from any
    /// offset is contiguous).
    pub(crate) fn is_mirrored(&self) -> bool {
        self._mirror.is_some()
    }

    /// `data[off..off + len]` as one contiguous run of the mapping, if it is one: always
    /// with a mirror, otherwise only when it does not wrap. `off < capacity` and
    /// `len <= capacity` (else `None`).
    ///
    /// The pointer is valid while `self` lives. Writing through it is the caller's
    /// business: the ring's protocol decides who owns which bytes (the producer owns the
    /// free space it reserved).
    pub(crate) fn contiguous(&self, off: usize, len: usize) -> Option<NonNull<u8>> {
        if off >= self.cap || len > self.cap {
            return None;
        }
        if off + len > self.cap && !self.is_mirrored() {
            return None;
        }
        // SAFETY: off < cap, and the run ends inside the data area (off + len <= cap) or
        // inside the mirror's second half (off + len < 2 cap); `add` stays in bounds.
        Some(unsafe { self.data.add(off) })
    }
}

impl RingMemory for ShmRing {
    fn header(&self) -> &RingHeader {
        // SAFETY: `header` is in bounds and aligned (ShmRing::new); the mapping lives as long
        // as `self` (`_map`); RingHeader is only atomics and padding bytes, for which any bit
        // pattern is valid, and the other process touches the atomics only atomically.
        unsafe { self.header.as_ref() }
    }

    fn capacity(&self) -> usize {
        self.cap
    }

    fn write(&self, off: usize, src: &[u8]) {
        assert!(
            off <= self.cap && src.len() <= self.cap - off,
            "ring write out of bounds (bug)"
        );
        // SAFETY: the range [off, off + len) is inside the data area (asserted), which is
        // inside the live mapping; `src` is private memory, so the ranges cannot overlap.
        // The peer may touch these bytes concurrently; we never form a reference to them,
        // so that can change the bytes it reads, never our program's behaviour.
        unsafe {
            core::ptr::copy_nonoverlapping(src.as_ptr(), self.data.as_ptr().add(off), src.len());
        }
    }

    fn read_uninit(&self, off: usize, dst: &mut [MaybeUninit<u8>]) {
        assert!(
            off <= self.cap && dst.len() <= self.cap - off,
            "ring read out of bounds (bug)"
        );
        // SAFETY: as in `read` (MaybeUninit<u8> has u8's layout); this writes, and so
        // initialises, all `dst.len()` bytes, as RingMemory::read_uninit promises.
        unsafe {
            core::ptr::copy_nonoverlapping(
                self.data.as_ptr().add(off),
                dst.as_mut_ptr().cast::<u8>(),
                dst.len(),
            );
        }
    }

    fn read(&self, off: usize, dst: &mut [u8]) {
        assert!(
            off <= self.cap && dst.len() <= self.cap - off,
            "ring read out of bounds (bug)"
        );
        // SAFETY: as in `write`: in bounds, live mapping, non-overlapping private `dst`;
        // concurrent writes by the peer can only change the copied values, which the ring
        // validates after copying.
        unsafe {
            core::ptr::copy_nonoverlapping(
                self.data.as_ptr().add(off),
                dst.as_mut_ptr(),
                dst.len(),
            );
        }
    }
}

#[cfg(test)]
std::thread_local! {
    /// Tests: clients connected from this thread map no mirror (the fallback path).
    pub(crate) static NO_MIRROR: core::cell::Cell<bool> = const { core::cell::Cell::new(false) };
}

/// A memfd-backed mapping with its three rings, as both sides build it.
#[derive(Debug)]
pub(crate) struct Rings {
    pub(crate) request: ShmRing,
    pub(crate) response: ShmRing,
    pub(crate) event: ShmRing,
}

impl Rings {
    /// Map `fd` (which must be `layout.total()` bytes) and cut it into rings.
    pub(crate) fn map(fd: &OwnedFd, layout: &Layout) -> Result<Self, OsError> {
        let map = Arc::new(Mapping::new(fd, layout.total())?);
        Ok(Self {
            request: ShmRing::new(&map, layout, 0),
            response: ShmRing::new(&map, layout, 1),
            event: ShmRing::new(&map, layout, 2),
        })
    }

    /// As [`Rings::map`], with the request ring's data area mirrored when the page size
    /// allows ([`Mirror`]): the client's side, for zero-copy request slots.
    ///
    /// # Errors
    /// As [`Rings::map`]; a mirror that fails is left out, not an error.
    pub(crate) fn map_mirrored(fd: &OwnedFd, layout: &Layout) -> Result<Self, OsError> {
        let mut rings = Self::map(fd, layout)?;
        #[cfg(test)]
        if NO_MIRROR.with(core::cell::Cell::get) {
            return Ok(rings);
        }
        let data_off = layout.header_offset(0) + RING_HEADER_PAGE;
        // A mirror that cannot be made (no address space, the map count limit) only costs
        // the zero-copy path its contiguity: wrapping slots then use a bounce buffer.
        if let Ok(Some(mirror)) = Mirror::new(fd, data_off, layout.caps[0]) {
            rings.request = rings.request.with_mirror(mirror);
        }
        Ok(rings)
    }
}
