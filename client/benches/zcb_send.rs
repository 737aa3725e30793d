//! Send-side cost of a 1 MiB CPG multicast: the copying `Cpg::mcast_queued` against the
//! zero-copy `Cpg::try_zcb_alloc` + `ZcBuffer::mcast_queued` (issue 6). Each figure is the
//! time spent *in the send calls* of one message, on the sending thread (what the
//! application pays before it can go on); the daemon's work and the deliveries coming back
//! are not timed (events are drained between sends, outside the timed region).
//!
//! ```text
//! cargo bench -p totem-client --bench zcb_send               # against the in-process fake
//! ZCB_BENCH_SOCKET=/path/totemd.sock cargo bench -p totem-client --bench zcb_send
//! ```
//!
//! Modes, one line each (`zcb_send size=<B> mode=<m> n=<msgs> p50_ns=.. mean_ns=.. p99_ns=..`):
//! * `copy`: `mcast_queued(&msg)` — the library copies the message into the request it
//!   reserved in the shared ring: one copy (two before the zero-copy slots: the request was
//!   assembled in a buffer of the handle's, then copied into the ring);
//! * `zc_copy_in`: `try_zcb_alloc`, `copy_from_slice(&msg)`, `mcast_queued` — the
//!   application copies its ready message into shared memory itself (one copy);
//! * `zc_in_place`: `try_zcb_alloc`, write an 8-byte sequence number, `mcast_queued` — an
//!   application that produces its message directly in the buffer (no copy at all; what
//!   it spends producing the bytes it would spend in any mode, so it is not timed).
//!
//! Without `--bench` (as under `cargo test --benches`) it sends three messages per mode and
//! prints nothing, a smoke test.

extern crate alloc;

#[path = "../tests/fake/mod.rs"]
mod fake;

use core::time::Duration;
use std::path::PathBuf;
use std::time::Instant;

use totem_client::Error;
use totem_client::cpg::{Cpg, Event, Guarantee};

const GROUP: &str = "zcb-bench";
const SIZE: usize = 1 << 20;

#[derive(Debug, Clone, Copy)]
enum Mode {
    Copy,
    ZcCopyIn,
    ZcInPlace,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Self::Copy => "copy",
            Self::ZcCopyIn => "zc_copy_in",
            Self::ZcInPlace => "zc_in_place",
        }
    }
}

/// Handles every queued event (deliveries of our own messages), not timed.
fn drain(cpg: &mut Cpg, wait: Option<Duration>) -> usize {
    let mut n = 0;
    if let Some(w) = wait
        && let Some(ev) = cpg.next_event(Some(w)).unwrap()
    {
        n += usize::from(matches!(ev, Event::Deliver { .. }));
    }
    while let Some(ev) = cpg.try_next_event().unwrap() {
        n += usize::from(matches!(ev, Event::Deliver { .. }));
    }
    n
}

/// One message in `mode`; the nanoseconds spent in the successful attempt's calls. Adds the
/// deliveries handled while waiting for room to `delivered`.
fn send(cpg: &mut Cpg, mode: Mode, msg: &[u8], seq: u64, delivered: &mut usize) -> u64 {
    loop {
        let t = Instant::now();
        let r = match mode {
            Mode::Copy => cpg.mcast_queued(GROUP, Guarantee::Agreed, msg),
            Mode::ZcCopyIn | Mode::ZcInPlace => match cpg.try_zcb_alloc(GROUP, msg.len()) {
                Ok(mut buf) => {
                    if let Mode::ZcCopyIn = mode {
                        buf.copy_from_slice(msg);
                    } else {
                        buf[..8].copy_from_slice(&seq.to_le_bytes());
                    }
                    buf.mcast_queued(Guarantee::Agreed)
                }
                Err(e) => Err(e),
            },
        };
        let ns = u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX);
        match r {
            Ok(()) => return ns,
            // The daemon has not taken the earlier ones yet: wait outside the timing.
            Err(Error::TryAgain) => *delivered += drain(cpg, Some(Duration::from_millis(1))),
            Err(e) => panic!("{}: {e}", mode.name()),
        }
    }
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let n: usize = if full {
        std::env::var("ZCB_BENCH_MSGS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1000)
    } else {
        3
    };
    let rounds = if full { 3 } else { 1 };
    let (_fake, socket) = match std::env::var_os("ZCB_BENCH_SOCKET") {
        Some(s) => (None, PathBuf::from(s)),
        None => {
            let d = fake::FakeDaemon::start();
            let s = d.socket().to_path_buf();
            (Some(d), s)
        }
    };
    let mut cpg = Cpg::initialize_at(&socket).unwrap();
    cpg.join(GROUP).unwrap();
    let msg: Vec<u8> = (0..SIZE).map(|i| (i * 31 + 7) as u8).collect();
    let modes = [Mode::Copy, Mode::ZcCopyIn, Mode::ZcInPlace];
    let mut samples: Vec<Vec<u64>> = vec![Vec::new(); modes.len()];
    let (mut sent, mut delivered) = (0usize, 0usize);
    // Rounds alternate the modes so drift (other load, page cache) hits all of them alike;
    // the first round is also the warm-up (ring pages faulted in), so it is not kept.
    for round in 0..=rounds {
        for (k, &mode) in modes.iter().enumerate() {
            for i in 0..n {
                let ns = send(&mut cpg, mode, &msg, i as u64, &mut delivered);
                if round > 0 || !full {
                    samples[k].push(ns);
                }
                sent += 1;
                delivered += drain(&mut cpg, None);
            }
            cpg.flush().unwrap();
        }
    }
    while delivered < sent {
        delivered += drain(&mut cpg, Some(Duration::from_secs(10)));
    }
    if !full {
        return;
    }
    for (k, mode) in modes.iter().enumerate() {
        let s = &mut samples[k];
        s.sort_unstable();
        let mean = s.iter().sum::<u64>() / s.len() as u64;
        let p = |q: usize| s[(s.len() * q / 100).min(s.len() - 1)];
        println!(
            "zcb_send size={SIZE} mode={} n={} p50_ns={} mean_ns={mean} p99_ns={}",
            mode.name(),
            s.len(),
            p(50),
            p(99)
        );
    }
}
