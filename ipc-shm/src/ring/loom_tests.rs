//! loom models of the ring's protocol: the real [`Producer`]/[`Consumer`] code over loom
//! atomics (via `crate::sync`), with the data area as one loom cell per byte (so loom flags
//! any copy not ordered by the head/tail Release/Acquire pairs) and each eventfd as a
//! counter under a loom mutex and condvar (so a lost wake-up is a deadlock loom reports).
//!
//! Run (bounded, its own target dir so the workspace is not rebuilt):
//!
//! ```text
//! RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 \
//!     cargo test -p ipc-shm --release --lib loom --target-dir target/loom
//! ```

use alloc::vec::Vec;
use core::mem::MaybeUninit;

use loom::cell::UnsafeCell;
use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;

use super::{Consumer, Producer, PushError, RingHeader, RingMemory, copy_in};

/// A ring in private memory, shareable between loom threads.
struct LoomMem {
    header: RingHeader,
    data: Vec<UnsafeCell<u8>>,
}

#[derive(Clone)]
struct Shared(Arc<LoomMem>);

impl Shared {
    fn new(capacity: usize) -> Self {
        Self(Arc::new(LoomMem {
            header: RingHeader::new(),
            data: (0..capacity).map(|_| UnsafeCell::new(0)).collect(),
        }))
    }
}

impl RingMemory for Shared {
    fn header(&self) -> &RingHeader {
        &self.0.header
    }
    fn capacity(&self) -> usize {
        self.0.data.len()
    }
    fn write(&self, off: usize, src: &[u8]) {
        for (cell, b) in self.0.data[off..off + src.len()].iter().zip(src) {
            // SAFETY: loom checks this access: it fails the model if another thread can
            // touch the same byte concurrently, which is the property under test.
            cell.with_mut(|p| unsafe { *p = *b });
        }
    }
    fn read(&self, off: usize, dst: &mut [u8]) {
        for (cell, d) in self.0.data[off..off + dst.len()].iter().zip(dst) {
            // SAFETY: as in `write`, loom tracks and checks the access.
            *d = cell.with(|p| unsafe { *p });
        }
    }
    fn read_uninit(&self, off: usize, dst: &mut [MaybeUninit<u8>]) {
        for (cell, d) in self.0.data[off..off + dst.len()].iter().zip(dst) {
            // SAFETY: as in `write`, loom tracks and checks the access.
            d.write(cell.with(|p| unsafe { *p }));
        }
    }
}

/// An eventfd: a counter and a condvar.
struct Bell {
    count: Mutex<u64>,
    cv: Condvar,
}

impl Bell {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            count: Mutex::new(0),
            cv: Condvar::new(),
        })
    }
    fn notify(&self) {
        *self.count.lock().unwrap() += 1;
        self.cv.notify_one();
    }
    fn drain(&self) {
        *self.count.lock().unwrap() = 0;
    }
    fn sleep(&self) {
        let mut g = self.count.lock().unwrap();
        while *g == 0 {
            g = self.cv.wait(g).unwrap();
        }
    }
}

/// The producer's loop exactly as the connection layer runs it: try, clear, arm, sleep.
fn send_all(mut p: Producer<Shared>, records: &[&[u8]], data: &Bell, space: &Bell) {
    for r in records {
        loop {
            match p.try_push(r) {
                Ok(wake) => {
                    if wake {
                        data.notify();
                    }
                    break;
                }
                Err(PushError::Full) => {
                    space.drain();
                    if !p.arm(r.len()).unwrap() {
                        space.sleep();
                    }
                }
                Err(e) => panic!("{e:?}"),
            }
        }
    }
}

/// The producer's loop over the zero-copy path: reserve, write junk and cancel (drop the
/// reservation), reserve again, write the record in place with a trailing extra byte,
/// truncate it away, commit. Writes into reserved space are data-area accesses loom checks
/// against the consumer's reads, so a reservation overlapping unconsumed bytes, or a
/// commit that publishes before the bytes are written, fails the model.
fn send_all_reserved(mut p: Producer<Shared>, records: &[&[u8]], data: &Bell, space: &Bell) {
    for r in records {
        loop {
            match p.try_reserve(r.len() + 1) {
                Ok(junk) => {
                    copy_in(p.memory(), junk.payload_pos(), &vec![0xee; r.len() + 1]);
                    drop(junk);
                    // Nothing was published: the same space is reserved again.
                    let mut res = p.try_reserve(r.len() + 1).unwrap();
                    copy_in(p.memory(), res.payload_pos(), r);
                    copy_in(p.memory(), res.payload_pos() + r.len() as u64, b"!");
                    res.truncate(r.len());
                    if p.commit(res) {
                        data.notify();
                    }
                    break;
                }
                Err(PushError::Full) => {
                    space.drain();
                    if !p.arm(r.len() + 1).unwrap() {
                        space.sleep();
                    }
                }
                Err(e) => panic!("{e:?}"),
            }
        }
    }
}

/// The consumer's loop: try, clear, arm, sleep; checks every record.
fn receive_all(mut c: Consumer<Shared>, records: &[&[u8]], data: &Bell, space: &Bell) {
    let mut out = Vec::new();
    for want in records {
        loop {
            match c.try_pop(&mut out).unwrap() {
                Some(wake) => {
                    if wake {
                        space.notify();
                    }
                    assert_eq!(&out[..], *want);
                    break;
                }
                None => {
                    data.drain();
                    if !c.arm().unwrap() {
                        data.sleep();
                    }
                }
            }
        }
    }
}

type Sender = fn(Producer<Shared>, &[&[u8]], &Bell, &Bell);

fn model(capacity: usize, max_payload: usize, records: &'static [&'static [u8]]) {
    model_with(send_all, capacity, max_payload, records);
}

fn model_with(
    send: Sender,
    capacity: usize,
    max_payload: usize,
    records: &'static [&'static [u8]],
) {
    loom::model(move || {
        let mem = Shared::new(capacity);
        let (data, space) = (Bell::new(), Bell::new());
        let p = Producer::new(mem.clone(), max_payload);
        let c = Consumer::new(mem, max_payload);
        let (d2, s2) = (data.clone(), space.clone());
        let t = thread::spawn(move || send(p, records, &d2, &s2));
        receive_all(c, records, &data, &space);
        t.join().unwrap();
    });
}

/// Two 16-byte records fill a 32-byte ring, so the third makes the producer sleep for
/// space while the consumer may sleep for data: both Dekker pairs and both wake-ups.
#[test]
fn loom_no_lost_wakeups_full_and_empty() {
    model(32, 8, &[b"abcdefgh", b"12345678", b"XYZ"]);
}

/// 24-byte records in a 32-byte ring: every record after the first wraps (payload split
/// across the end), and every byte is written and read by different threads, so loom
/// checks the Release/Acquire pairs on head and tail cover the copies.
#[test]
fn loom_records_intact_across_wrap() {
    model(32, 16, &[b"0123456789abcdef", b"fedcba9876543210"]);
}

/// Four records of mixed sizes (one empty) through a 32-byte ring: several rounds of
/// fill, sleep, drain, sleep.
#[test]
fn loom_four_records_mixed_sizes() {
    model(32, 16, &[b"a", b"0123456789abcdef", b"", b"xyz"]);
}

/// The zero-copy path (reserve, cancel, reserve, write in place, truncate, commit) through
/// a 32-byte ring that holds one 24-byte record at a time: the producer waits for space
/// before each record after the first, the second's payload wraps to offset 0 and the
/// third's straddles the end of the data area.
#[test]
fn loom_reserve_commit_across_wrap() {
    model_with(
        send_all_reserved,
        32,
        16,
        &[b"0123456789abcde", b"edcba9876543210", b"xyz456789ABC"],
    );
}
