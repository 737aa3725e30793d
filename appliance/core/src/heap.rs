//! [`Heap`]: a fixed-size heap for `#[global_allocator]`, sized by a const generic, that
//! keeps its high-water mark.
//!
//! totem-ring, services and the CPG engine allocate (`alloc`: `Vec`, `BTreeMap`, `Bytes`),
//! so a firmware needs a global allocator. This one is a first-fit free list over a static
//! array, the classic shape for a microcontroller heap: small, no dependencies, and it
//! answers the question a firmware team asks first, "how much heap does it need?", with
//! [`HeapStats::peak`] (most bytes ever allocated at once) and
//! [`HeapStats::high_water`] (furthest byte of the array ever handed out, which includes
//! fragmentation: the heap must be at least this big).
//!
//! # How it works
//!
//! The array is cut in blocks of whole *granules* (16 bytes, enough for any alignment the
//! stack asks for and for a free-block header). Free blocks form a singly linked list in
//! address order, each starting with a header `{ size, next }` (offsets into the array);
//! allocated blocks have no header at all: `dealloc` gets the `Layout` back and recomputes
//! the block's size from it, exactly as `alloc` rounded it. `alloc` takes the first free
//! block with room for the request at the requested alignment and gives back the parts
//! before and after it; `dealloc` puts the block back in address order and merges it with
//! free neighbours, so a heap whose allocations are all freed is again one block.
//!
//! A spin lock (one `AtomicBool`) makes it `Sync`. Allocate from one context only (the main
//! loop, as the appliance does): an interrupt handler that allocates while the main loop
//! holds the lock would spin for ever. Running out returns null, which Rust turns into
//! `handle_alloc_error` (an abort): size the heap from the measured high-water mark plus
//! the largest message the ring may have to reassemble (`max_message_len`).

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, Ordering};

/// Every block starts at, and is a whole number of, granules.
const GRANULE: usize = 16;

/// "No block" in a free-list link.
const END: usize = usize::MAX;

/// The array, aligned to a granule so that offsets and addresses agree on alignment.
#[repr(C, align(16))]
struct Arena<const N: usize>([u8; N]);

/// The header at the start of every free block.
#[derive(Debug, Clone, Copy)]
struct FreeBlock {
    /// Bytes in the block, header included (a multiple of [`GRANULE`]).
    size: usize,
    /// Offset of the next free block (higher address), or [`END`].
    next: usize,
}

/// What a [`Heap`] has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct HeapStats {
    /// Usable bytes (the array, rounded down to whole granules).
    pub capacity: usize,
    /// Bytes allocated now (requests rounded up to granules).
    pub used: usize,
    /// Most bytes allocated at once.
    pub peak: usize,
    /// Offset just past the highest block ever handed out: the smallest heap that would have
    /// served the same run, fragmentation included.
    pub high_water: usize,
    /// Live allocations.
    pub live: usize,
    /// Allocation requests that found no room (each one aborts the program unless the
    /// caller used a fallible API).
    pub failures: u64,
}

/// Allocator state behind the lock.
#[derive(Debug)]
struct State {
    /// Offset of the first free block, or [`END`].
    head: usize,
    /// Whether the whole array has been made one free block yet (done on first use, since
    /// a `const fn` cannot write into the array).
    ready: bool,
    stats: HeapStats,
}

/// A fixed-size heap of `N` bytes, usable as `#[global_allocator]`:
///
/// ```ignore
/// #[global_allocator]
/// static HEAP: totem_appliance::Heap<{ 256 * 1024 }> = totem_appliance::Heap::new();
/// ```
///
/// A `static` of it lives in `.bss` (the array is all zeroes until first use).
pub struct Heap<const N: usize> {
    lock: AtomicBool,
    state: UnsafeCell<State>,
    arena: UnsafeCell<Arena<N>>,
}

// SAFETY: every access to `state` and `arena` happens inside `Heap::locked`, which holds the
// spin lock, so no two threads touch them at once; allocated blocks are only touched by
// whoever owns them, and the free list never covers an allocated block.
unsafe impl<const N: usize> Sync for Heap<N> {}

impl<const N: usize> core::fmt::Debug for Heap<N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Heap")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl<const N: usize> Default for Heap<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Heap<N> {
    /// Usable bytes: `N` rounded down to whole granules.
    pub const CAPACITY: usize = N / GRANULE * GRANULE;

    /// An empty heap (nothing is written until the first allocation).
    pub const fn new() -> Self {
        Self {
            lock: AtomicBool::new(false),
            // All zeroes, so that a `static` Heap lands in `.bss`, not in `.data` (which
            // would cost its whole size in flash): `head` means nothing until `ready`, and
            // `capacity` is filled in by `stats()`.
            state: UnsafeCell::new(State {
                head: 0,
                ready: false,
                stats: HeapStats {
                    capacity: 0,
                    used: 0,
                    peak: 0,
                    high_water: 0,
                    live: 0,
                    failures: 0,
                },
            }),
            arena: UnsafeCell::new(Arena([0; N])),
        }
    }

    /// The counters (a copy, taken under the lock).
    pub fn stats(&self) -> HeapStats {
        HeapStats {
            capacity: Self::CAPACITY,
            ..self.locked(|state, _| state.stats)
        }
    }

    /// Runs `f` on the state and the arena's base address with the lock held.
    fn locked<R>(&self, f: impl FnOnce(&mut State, *mut u8) -> R) -> R {
        while self
            .lock
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            core::hint::spin_loop();
        }
        // SAFETY: the lock is held until the store below, so this is the only reference
        // to the state; nothing in `f` can re-enter the allocator's lock (it does not
        // allocate).
        let state = unsafe { &mut *self.state.get() };
        let base = self.arena.get().cast::<u8>();
        if !state.ready {
            state.ready = true;
            if Self::CAPACITY >= GRANULE {
                let whole = FreeBlock {
                    size: Self::CAPACITY,
                    next: END,
                };
                // SAFETY: offset 0 starts the array, which is granule-aligned and holds at
                // least one granule (checked above).
                unsafe { write_block(base, 0, whole) };
                state.head = 0;
            } else {
                state.head = END;
            }
        }
        let r = f(state, base);
        self.lock.store(false, Ordering::Release);
        r
    }
}

/// Reads the free-block header at `off`.
///
/// # Safety
/// `off` is the offset of a free block inside the arena at `base`, written by
/// [`write_block`].
unsafe fn read_block(base: *mut u8, off: usize) -> FreeBlock {
    // SAFETY: by the caller's contract the header lies inside the arena; offsets are whole
    // granules from a granule-aligned base, so the header is aligned.
    unsafe { base.add(off).cast::<FreeBlock>().read() }
}

/// Writes a free-block header at `off`.
///
/// # Safety
/// `off` is a granule-aligned offset inside the arena at `base` with at least one granule
/// after it, not covered by any live allocation.
unsafe fn write_block(base: *mut u8, off: usize, block: FreeBlock) {
    // SAFETY: as for `read_block`; the caller guarantees that no allocation owns these
    // bytes.
    unsafe { base.add(off).cast::<FreeBlock>().write(block) }
}

/// The block size a request of `layout` occupies, or `None` if it overflows.
fn block_size(layout: Layout) -> Option<usize> {
    let size = layout.size().max(1);
    size.checked_add(GRANULE - 1).map(|s| s / GRANULE * GRANULE)
}

/// Points the link before a block (`prev`, or the head when `END`) at `to`.
///
/// # Safety
/// `prev` is [`END`] or the offset of a free block of the arena at `base`.
unsafe fn relink(state: &mut State, base: *mut u8, prev: usize, to: usize) {
    if prev == END {
        state.head = to;
    } else {
        // SAFETY: `prev` is a free block (caller's contract).
        unsafe {
            let mut p = read_block(base, prev);
            p.next = to;
            write_block(base, prev, p);
        }
    }
}

// SAFETY: `alloc` hands out `[start, start + block_size)` ranges of the arena that were on
// the free list, aligned as asked, and takes them off it; `dealloc` puts back exactly the
// range `alloc` handed out for that pointer and layout (the size is recomputed the same
// way). So no two live allocations overlap and none overlaps a free-list header.
unsafe impl<const N: usize> GlobalAlloc for Heap<N> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let align = layout.align().max(GRANULE);
        let Some(size) = block_size(layout) else {
            return core::ptr::null_mut();
        };
        self.locked(|state, base| {
            let base_addr = base as usize;
            let (mut prev, mut cur) = (END, state.head);
            while cur != END {
                // SAFETY: `cur` comes from the free list.
                let block = unsafe { read_block(base, cur) };
                let end = cur + block.size;
                // Where an allocation aligned to `align` can start in this block. Both
                // the block start and the aligned start are whole granules, so the gap
                // before it is either empty or at least one granule: a free block.
                let start = (base_addr + cur)
                    .checked_next_multiple_of(align)
                    .map(|a| a - base_addr);
                if let Some(start) = start
                    && let Some(stop) = start.checked_add(size)
                    && stop <= end
                {
                    let mut next = block.next;
                    if stop < end {
                        // SAFETY: `[stop, end)` is whole granules of this free block.
                        unsafe {
                            write_block(
                                base,
                                stop,
                                FreeBlock {
                                    size: end - stop,
                                    next,
                                },
                            );
                        }
                        next = stop;
                    }
                    let replacement = if start > cur {
                        // SAFETY: `[cur, start)` is whole granules of this free block.
                        unsafe {
                            write_block(
                                base,
                                cur,
                                FreeBlock {
                                    size: start - cur,
                                    next,
                                },
                            );
                        }
                        cur
                    } else {
                        next
                    };
                    // SAFETY: `prev` is END or the free block before `cur`.
                    unsafe { relink(state, base, prev, replacement) };
                    let s = &mut state.stats;
                    s.used += size;
                    s.peak = s.peak.max(s.used);
                    s.high_water = s.high_water.max(stop);
                    s.live += 1;
                    // SAFETY: `start < CAPACITY`, inside the arena.
                    return unsafe { base.add(start) };
                }
                prev = cur;
                cur = block.next;
            }
            state.stats.failures += 1;
            core::ptr::null_mut()
        })
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // `alloc` succeeded for this layout, so the size computation cannot overflow.
        let Some(size) = block_size(layout) else {
            return;
        };
        self.locked(|state, base| {
            let off = ptr as usize - base as usize;
            // Find the free blocks around `off` (address order).
            let (mut prev, mut cur) = (END, state.head);
            while cur != END && cur < off {
                prev = cur;
                // SAFETY: `cur` comes from the free list.
                cur = unsafe { read_block(base, cur) }.next;
            }
            let mut freed = FreeBlock { size, next: cur };
            if cur != END && off + size == cur {
                // SAFETY: `cur` is a free block; it is absorbed into the freed one.
                let after = unsafe { read_block(base, cur) };
                freed.size += after.size;
                freed.next = after.next;
            }
            // SAFETY: `prev` is END or a free block; `off` is the block being returned,
            // whole granules owned by nobody once the caller gives it back.
            unsafe {
                match prev {
                    END => {
                        write_block(base, off, freed);
                        state.head = off;
                    }
                    p => {
                        let mut before = read_block(base, p);
                        if p + before.size == off {
                            before.size += freed.size;
                            before.next = freed.next;
                        } else {
                            write_block(base, off, freed);
                            before.next = off;
                        }
                        write_block(base, p, before);
                    }
                }
            }
            state.stats.used -= size;
            state.stats.live -= 1;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    /// The free list as (offset, size), for checking its shape.
    fn free_list<const N: usize>(heap: &Heap<N>) -> Vec<(usize, usize)> {
        heap.locked(|state, base| {
            let mut out = Vec::new();
            let mut cur = state.head;
            while cur != END {
                // SAFETY: walking the free list under the lock.
                let b = unsafe { read_block(base, cur) };
                out.push((cur, b.size));
                cur = b.next;
            }
            out
        })
    }

    #[test]
    fn everything_freed_is_one_block_again_and_peaks_are_kept() {
        static HEAP: Heap<4096> = Heap::new();
        let small = Layout::from_size_align(24, 8).unwrap();
        let big = Layout::from_size_align(1000, 64).unwrap();
        // SAFETY: each pointer is freed once with the layout it was allocated with.
        unsafe {
            let a = HEAP.alloc(small);
            let b = HEAP.alloc(big);
            let c = HEAP.alloc(small);
            assert!(!a.is_null() && !b.is_null() && !c.is_null());
            assert_eq!(b as usize % 64, 0);
            assert_eq!(HEAP.stats().used, 32 + 1008 + 32);
            HEAP.dealloc(b, big);
            HEAP.dealloc(a, small);
            HEAP.dealloc(c, small);
        }
        let s = HEAP.stats();
        assert_eq!((s.used, s.live, s.peak), (0, 0, 1072));
        assert!(s.high_water >= 1072);
        assert_eq!(free_list(&HEAP), [(0, 4096)]);
    }

    #[test]
    fn running_out_returns_null_and_counts() {
        static HEAP: Heap<256> = Heap::new();
        let l = Layout::from_size_align(200, 8).unwrap();
        // SAFETY: the successful allocation is freed with its layout.
        unsafe {
            let a = HEAP.alloc(l);
            assert!(!a.is_null());
            assert!(HEAP.alloc(l).is_null());
            HEAP.dealloc(a, l);
        }
        assert_eq!(HEAP.stats().failures, 1);
        assert_eq!(free_list(&HEAP), [(0, 256)]);
    }

    /// Many random allocations and frees: blocks never overlap (each is filled with its
    /// own tag and checked when freed), the free list stays sorted and merged, and all
    /// memory comes back.
    #[test]
    fn random_alloc_free_never_overlaps_and_coalesces() {
        static HEAP: Heap<{ 64 * 1024 }> = Heap::new();
        let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut live: Vec<(*mut u8, Layout, u8)> = Vec::new();
        for round in 0..20_000_u32 {
            if live.len() < 64 && next() % 3 != 0 {
                let size = 1 + (next() % 700) as usize;
                let align = 1 << (next() % 8);
                let layout = Layout::from_size_align(size, align).unwrap();
                // SAFETY: a valid non-zero layout.
                let p = unsafe { HEAP.alloc(layout) };
                if p.is_null() {
                    continue;
                }
                assert_eq!(p as usize % align, 0);
                let tag = round as u8;
                // SAFETY: `p` holds `size` bytes owned by this test.
                unsafe { core::ptr::write_bytes(p, tag, size) };
                live.push((p, layout, tag));
            } else if !live.is_empty() {
                let (p, layout, tag) = live.swap_remove((next() % live.len() as u64) as usize);
                // SAFETY: `p` holds `layout.size()` bytes, freed once, with its layout.
                unsafe {
                    let bytes = core::slice::from_raw_parts(p, layout.size());
                    assert!(bytes.iter().all(|b| *b == tag), "block overwritten");
                    HEAP.dealloc(p, layout);
                }
            }
            if round % 1000 == 0 {
                let list = free_list(&HEAP);
                for w in list.windows(2) {
                    assert!(w[0].0 + w[0].1 < w[1].0, "unsorted or unmerged: {list:?}");
                }
            }
        }
        for (p, layout, _) in live.drain(..) {
            // SAFETY: freed once, with its layout.
            unsafe { HEAP.dealloc(p, layout) };
        }
        assert_eq!(free_list(&HEAP), [(0, 64 * 1024)]);
        assert_eq!(HEAP.stats().used, 0);
    }
}
