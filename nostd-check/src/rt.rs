//! The runtime std would otherwise provide, in the smallest form that runs on a hosted
//! Linux target: output through libc `write(2)`, a panic handler that prints and aborts, a
//! global allocator, and the two unwinding symbols the prebuilt `liballoc` refers to.
//!
//! The allocator is a fixed static bump arena rather than libc's `malloc`: it is what a
//! firmware build without a heap manager has, it makes "how much memory does the scenario
//! need" a number ([`arena_peak`]), and running out is an allocation failure (which panics
//! and aborts) rather than quietly growing. It frees only the most recent block (stack
//! order) and grows the most recent block in place, which covers the common `Vec` push
//! pattern; anything else stays allocated until exit.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::fmt::{self, Write as _};
use core::ptr;
use core::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// Bytes in the arena. In `.bss`, so it costs nothing in the binary; 4 MiB leaves room for
/// the ring scenario (three rings, 100 messages) that arrives with totem-ring.
pub(crate) const ARENA_SIZE: usize = 4 << 20;

/// Writes all of `bytes` to stdout (fd 1), retrying short writes; gives up silently on an
/// error, since there is nowhere to report it.
pub(crate) fn write_stdout(mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: `bytes` is a live, initialised slice; `write` reads at most `bytes.len()`
        // bytes from its start and keeps no pointer after returning.
        let n = unsafe { libc::write(1, bytes.as_ptr().cast(), bytes.len()) };
        match usize::try_from(n) {
            Ok(0) | Err(_) => return,
            Ok(written) => bytes = bytes.get(written..).unwrap_or_default(),
        }
    }
}

/// `core::fmt::Write` over stdout, for `outln!`.
#[derive(Debug)]
pub(crate) struct Stdout;

impl fmt::Write for Stdout {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        write_stdout(s.as_bytes());
        Ok(())
    }
}

/// `println!` without std: formats straight to stdout, no allocation.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use ::core::fmt::Write as _;
        let _ = ::core::writeln!($crate::rt::Stdout, $($arg)*);
    }};
}

/// Prints the panic and aborts: there is no unwinder (`panic = "abort"`), and an abort
/// (SIGABRT, status 134) is a loud non-zero exit for `cargo xtask nostd`.
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let _ = writeln!(Stdout, "nostd-check: PANIC: {info}");
    // SAFETY: `abort` has no preconditions; it never returns.
    unsafe { libc::abort() }
}

/// Referenced by the prebuilt `liballoc` of x86_64-unknown-linux-gnu, which is compiled
/// with unwinding; never called, because this binary aborts on panic (without it the link
/// fails: `undefined symbol: rust_eh_personality`).
#[unsafe(no_mangle)]
extern "C" fn rust_eh_personality() {}

/// Referenced by the landing pads in that same prebuilt `liballoc` (e.g. in
/// `alloc::fmt::format`), normally provided by libgcc_s's unwinder, which this binary does
/// not link. Unreachable: with `panic = "abort"` no unwind ever starts, so no landing pad
/// ever resumes one; if it somehow did, aborting is the only correct answer.
#[unsafe(no_mangle)]
#[allow(non_snake_case)] // the C ABI name is fixed
extern "C" fn _Unwind_Resume(_exception: *mut core::ffi::c_void) -> ! {
    // SAFETY: `abort` has no preconditions; it never returns.
    unsafe { libc::abort() }
}

/// A bump allocator over a static array (see the module doc).
#[repr(C, align(4096))]
struct Arena {
    memory: UnsafeCell<[u8; ARENA_SIZE]>,
    /// Offset of the first free byte.
    next: AtomicUsize,
    /// Highest `next` ever reached.
    peak: AtomicUsize,
}

// SAFETY: the arena hands out each byte range to at most one live allocation: ranges are
// claimed by a compare-exchange on `next`, so concurrent callers (there are none in this
// single-threaded binary, but `GlobalAlloc` requires `Sync`) never receive overlapping
// memory, and the arena itself never reads or writes `memory`.
unsafe impl Sync for Arena {}

#[global_allocator]
static ARENA: Arena = Arena {
    memory: UnsafeCell::new([0; ARENA_SIZE]),
    next: AtomicUsize::new(0),
    peak: AtomicUsize::new(0),
};

/// The most arena bytes in use at any time so far.
pub(crate) fn arena_peak() -> usize {
    ARENA.peak.load(Relaxed)
}

impl Arena {
    fn base(&self) -> *mut u8 {
        self.memory.get().cast()
    }

    /// Claims `layout` at the first suitably aligned offset at or above `next`; null if
    /// the arena is full.
    fn claim(&self, layout: Layout) -> *mut u8 {
        let base = self.base();
        let mut next = self.next.load(Relaxed);
        loop {
            let Some(start) = (base.addr() + next)
                .checked_next_multiple_of(layout.align())
                .map(|aligned| aligned - base.addr())
            else {
                return ptr::null_mut();
            };
            let Some(end) = start
                .checked_add(layout.size())
                .filter(|&end| end <= ARENA_SIZE)
            else {
                return ptr::null_mut();
            };
            match self.next.compare_exchange_weak(next, end, Relaxed, Relaxed) {
                Ok(_) => {
                    self.peak.fetch_max(end, Relaxed);
                    return base.wrapping_add(start);
                }
                Err(now) => next = now,
            }
        }
    }

    /// Offset of `ptr` (which this arena returned) from the arena's start.
    fn offset(&self, ptr: *mut u8) -> usize {
        ptr.addr() - self.base().addr()
    }
}

// SAFETY: `alloc` returns either null or a pointer to `layout.size()` bytes inside `memory`,
// aligned to `layout.align()` and claimed by no other live allocation (see `claim`);
// `dealloc` and `realloc` only move `next` back or forward when the block is the last one
// claimed, so no live block is ever handed out again.
unsafe impl GlobalAlloc for Arena {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.claim(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // Stack order: only the most recent block returns to the arena.
        let start = self.offset(ptr);
        let _ = self
            .next
            .compare_exchange(start + layout.size(), start, Relaxed, Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let start = self.offset(ptr);
        // The most recent block grows or shrinks in place.
        if let Some(new_end) = start.checked_add(new_size).filter(|&e| e <= ARENA_SIZE)
            && self
                .next
                .compare_exchange(start + layout.size(), new_end, Relaxed, Relaxed)
                .is_ok()
        {
            self.peak.fetch_max(new_end, Relaxed);
            return ptr;
        }
        let Ok(new_layout) = Layout::from_size_align(new_size, layout.align()) else {
            return ptr::null_mut();
        };
        let new = self.claim(new_layout);
        if !new.is_null() {
            // SAFETY: `ptr` is valid for `layout.size()` bytes (the caller's contract),
            // `new` for `new_size` bytes (just claimed), and they do not overlap because
            // `new` lies above every block claimed before it, including `ptr`'s.
            unsafe { ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size)) };
            // SAFETY: `ptr` was allocated by this allocator with `layout` (the caller's
            // contract) and is not used after this.
            unsafe { self.dealloc(ptr, layout) };
        }
        new
    }
}
