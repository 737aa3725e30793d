//! [`FaultInjector`]: middleware that wraps any [`Transport`] and makes it lose, duplicate,
//! delay, reorder and corrupt datagrams on purpose, reproducibly from a seed.
//!
//! For experiments and tests; **off by default**: [`FaultConfig::default()`] injects
//! nothing and the wrapper is byte-for-byte transparent, so a node can always be built with
//! it and switch it on from configuration. It is smoltcp's `phy::FaultInjector` idea lifted
//! to the datagram level (STYLE point 10), with netem's vocabulary.
//!
//! ## Where faults happen
//!
//! Each direction has its own [`Faults`]:
//!
//! * **send side** (`FaultConfig::send`): applied once per `send`, before the inner
//!   transport. A dropped multicast is lost for *every* receiver, like a frame lost at the
//!   sender's NIC; a delayed one reaches everyone late.
//! * **receive side** (`FaultConfig::recv`): applied once per datagram read from the inner
//!   transport. Wrapping every node's transport gives *independent* loss per receiver, which
//!   is how multicast loss looks on a real LAN and what exercises the ring's retransmission.
//!   Datagrams are read from the inner transport into the caller's buffer, so one that was
//!   truncated there stays truncated while held (drivers pass buffers of
//!   [`max_datagram`](Transport::max_datagram) bytes, so this only matters in tests).
//!
//! Per datagram the injector decides, in this order: drop (then nothing else happens);
//! duplicate (a second, independently delayed and corrupted copy follows); corrupt (one
//! random bit of the copy flipped); delay (`delay` plus a uniform `0..=jitter`, plus
//! `reorder_hold` for datagrams picked for reordering). Datagrams whose delays differ
//! overtake each other, which is where reordering comes from; `reorder_ppm` forces it
//! without a general delay.
//!
//! ## Time
//!
//! The [`Transport`] trait carries no time, so the wrapper keeps its own notion of "now",
//! which the driver sets with [`FaultInjector::set_now`] before each poll (the same `now`
//! it gives the ring). [`FaultInjector::poll_at`] tells the driver when the next held
//! datagram is due, to fold into its sleep deadline next to the ring's `poll_timeout()`:
//!
//! ```text
//! now = clock();  faulty.set_now(now);         // releases due send-side datagrams
//! while let Some(meta) = faulty.recv(&mut buf)? { ring.handle_datagram(now, ..) }
//! ...drain the ring into faulty.send(..)...
//! sleep until min(ring.poll_timeout(), faulty.poll_at()) or the next datagram
//! ```
//!
//! Held receive-side datagrams come out of `recv` once due, even if the inner transport has
//! nothing new, so a driver must call `recv` when `poll_at` passes and not only on socket
//! readiness.
//!
//! ## Bounded
//!
//! Each direction holds at most [`FaultConfig::max_held`] datagrams. One that should be
//! delayed while the hold is full goes through at once instead (counted in
//! [`FaultCounters::hold_full`]); one that should be duplicated into a full hold is not
//! duplicated. Memory stays bounded, and the bound itself never costs a datagram.
//!
//! ## Back-pressure is never faked
//!
//! `WouldBlock` from the inner transport on an immediate send is returned to the caller as
//! is. A send-side datagram the injector holds has already been reported as sent, so when
//! the inner transport pushes back at release time it stays held and is retried on the next
//! call, in due order; a non-retryable error at release time is counted in
//! [`FaultCounters::errors`] and logged, since there is no caller left to tell.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use totem_proto::time::{Duration, Instant};

use crate::rng::SplitMix64;
use crate::{Dest, RecvMeta, Transport, TransportError};

/// Faults applied in one direction. All zero (the default) means none.
///
/// Probabilities are parts per million ([`PPM`](crate::rng::PPM) = always): integers keep
/// configurations exact, comparable and identical on every platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Faults {
    /// Chance that a datagram is lost.
    pub drop_ppm: u32,
    /// Chance that a datagram is delivered twice.
    pub duplicate_ppm: u32,
    /// Chance that one random bit of a datagram is flipped (empty datagrams are spared: they
    /// have no bit to flip).
    pub corrupt_ppm: u32,
    /// Chance that a datagram is held back an extra [`reorder_hold`](Self::reorder_hold) so
    /// that later ones overtake it.
    pub reorder_ppm: u32,
    /// Fixed delay added to every datagram.
    pub delay: Duration,
    /// Upper bound of a uniform random extra delay, `0..=jitter`, drawn per datagram.
    pub jitter: Duration,
    /// How long a datagram picked by [`reorder_ppm`](Self::reorder_ppm) is held back. Zero
    /// makes reordering picks have no effect.
    pub reorder_hold: Duration,
}

impl Faults {
    /// Whether this direction injects nothing (all fields zero).
    pub fn is_transparent(&self) -> bool {
        *self == Self::default()
    }
}

/// Configuration of a [`FaultInjector`]: faults per direction and the hold-queue bound.
///
/// For experiments and tests; off by default: `FaultConfig::default()` injects nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FaultConfig {
    /// Faults applied to datagrams the caller sends, before the inner transport.
    pub send: Faults,
    /// Faults applied to datagrams the inner transport receives, before the caller sees them.
    pub recv: Faults,
    /// Most datagrams held (delayed or duplicated) per direction. Default 1024.
    pub max_held: usize,
}

impl Default for FaultConfig {
    fn default() -> Self {
        Self {
            send: Faults::default(),
            recv: Faults::default(),
            max_held: 1024,
        }
    }
}

/// Counters of one direction of a [`FaultInjector`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FaultCounters {
    /// Datagrams that met the injector (a send retried after `WouldBlock` counts again).
    pub datagrams: u64,
    /// Datagrams dropped on purpose.
    pub dropped: u64,
    /// Extra copies made.
    pub duplicated: u64,
    /// Copies with a bit flipped.
    pub corrupted: u64,
    /// Copies held for a non-zero delay.
    pub delayed: u64,
    /// Copies picked for reordering (held back by `reorder_hold`).
    pub reordered: u64,
    /// Held copies handed on once due.
    pub released: u64,
    /// Copies that should have been held but went through at once (or, for duplicates, were
    /// not made) because the hold was full.
    pub hold_full: u64,
    /// Send side only: held datagrams the inner transport refused with an error other than
    /// `WouldBlock` when they came due; they are gone.
    pub errors: u64,
}

/// Everything a [`FaultInjector`] did, per direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FaultStats {
    /// Faults injected into sends.
    pub send: FaultCounters,
    /// Faults injected into receives.
    pub recv: FaultCounters,
}

/// Key of a held datagram: due time first, then arrival order, so release is by due time
/// and FIFO among equals, independent of allocation or hashing (STYLE point 9).
type HoldKey = (Instant, u64);

#[derive(Debug)]
struct HeldSend {
    dest: Dest,
    frame: Vec<u8>,
}

#[derive(Debug)]
struct HeldRecv {
    meta: RecvMeta,
    data: Vec<u8>,
}

/// What to do with one copy of a datagram, decided up front so the random draws happen in
/// one fixed order per copy (corrupt, jitter, reorder) whatever the outcome.
#[derive(Debug, Clone, Copy)]
struct CopyPlan {
    corrupt_bit: Option<u64>,
    delay: Duration,
}

/// Middleware injecting seeded faults into any [`Transport`]. See the [module docs](self).
///
/// Same seed, same configuration, same sequence of calls and inner results: same faults,
/// on every platform.
#[derive(Debug)]
pub struct FaultInjector<T> {
    inner: T,
    config: FaultConfig,
    rng: SplitMix64,
    now: Instant,
    /// Tie-breaker for equal due times; never wraps in practice (2^64 datagrams).
    next_key: u64,
    held_send: BTreeMap<HoldKey, HeldSend>,
    held_recv: BTreeMap<HoldKey, HeldRecv>,
    stats: FaultStats,
}

impl<T: Transport> FaultInjector<T> {
    /// Wraps `inner`, drawing every random decision from `seed`. The clock starts at
    /// [`Instant::ZERO`] until the first [`set_now`](Self::set_now).
    pub fn new(inner: T, config: FaultConfig, seed: u64) -> Self {
        Self {
            inner,
            config,
            rng: SplitMix64::new(seed),
            now: Instant::ZERO,
            next_key: 0,
            held_send: BTreeMap::new(),
            held_recv: BTreeMap::new(),
            stats: FaultStats::default(),
        }
    }

    /// The current configuration.
    pub fn config(&self) -> &FaultConfig {
        &self.config
    }

    /// Replaces the configuration, e.g. to stop injecting faults in a test's liveness phase.
    /// Datagrams already held keep their due times; the random stream continues.
    pub fn set_config(&mut self, config: FaultConfig) {
        debug!("fault injector: configuration replaced");
        self.config = config;
    }

    /// Tells the injector the time, and hands every send-side datagram now due to the inner
    /// transport. Time never goes backwards here: an earlier `now` than the last is ignored,
    /// so a clock glitch cannot release a datagram early or hold one twice.
    pub fn set_now(&mut self, now: Instant) {
        if now > self.now {
            self.now = now;
        }
        self.release_sends();
    }

    /// The time last given to [`set_now`](Self::set_now).
    pub fn now(&self) -> Instant {
        self.now
    }

    /// When the earliest held datagram is due, if any is held.
    ///
    /// May be at or before [`now`](Self::now): a receive-side datagram is due and waits for
    /// the next `recv`, or a send-side one was pushed back by the inner transport and waits
    /// for it to take datagrams again.
    #[must_use]
    pub fn poll_at(&self) -> Option<Instant> {
        let send = self.held_send.keys().next().map(|k| k.0);
        let recv = self.held_recv.keys().next().map(|k| k.0);
        match (send, recv) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Datagrams currently held, send side and receive side.
    pub fn held(&self) -> (usize, usize) {
        (self.held_send.len(), self.held_recv.len())
    }

    /// Counters of every fault injected so far.
    pub fn stats(&self) -> FaultStats {
        self.stats
    }

    /// The wrapped transport.
    pub fn inner(&self) -> &T {
        &self.inner
    }

    /// The wrapped transport, mutably (e.g. to reach its own statistics or settings).
    pub fn inner_mut(&mut self) -> &mut T {
        &mut self.inner
    }

    /// Unwraps the inner transport. Held datagrams are discarded.
    pub fn into_inner(self) -> T {
        self.inner
    }

    /// Draws the fate of one copy of a `len`-byte datagram under `faults`, counting the
    /// reorder pick in `reordered` (the caller adds it to its direction's counters).
    fn plan_copy(&mut self, faults: &Faults, len: usize, reordered: &mut u64) -> CopyPlan {
        let corrupt_bit = if len > 0 && self.rng.chance_ppm(faults.corrupt_ppm) {
            // `len * 8` cannot overflow u64 for any slice that fits in memory.
            Some(self.rng.below((len as u64).saturating_mul(8)))
        } else {
            None
        };
        let mut delay = faults.delay;
        if faults.jitter > Duration::ZERO {
            let extra = self
                .rng
                .below(faults.jitter.total_micros().saturating_add(1));
            delay = delay + Duration::from_micros(extra);
        }
        if self.rng.chance_ppm(faults.reorder_ppm) {
            *reordered += 1;
            delay = delay + faults.reorder_hold;
        }
        CopyPlan { corrupt_bit, delay }
    }

    fn next_key(&mut self, delay: Duration) -> HoldKey {
        let key = (self.now + delay, self.next_key);
        self.next_key = self.next_key.wrapping_add(1);
        key
    }

    /// Hands due send-side datagrams to the inner transport, in due order, until one is not
    /// due or the inner transport pushes back.
    fn release_sends(&mut self) {
        while let Some(entry) = self.held_send.first_entry() {
            if entry.key().0 > self.now {
                break;
            }
            let held = entry.get();
            match self.inner.send(held.dest, &held.frame) {
                // Keep it and stop: the inner transport is full, and sending later ones
                // first would add reordering nobody configured.
                Err(TransportError::WouldBlock) => break,
                Ok(()) => {
                    self.stats.send.released += 1;
                    entry.remove();
                }
                Err(err) => {
                    warn!(
                        "fault injector: held datagram to {} refused: {}",
                        held.dest, err
                    );
                    self.stats.send.errors += 1;
                    entry.remove();
                }
            }
        }
    }

    /// Sends one copy according to `plan`: straight through when neither corrupted nor
    /// delayed (no allocation on the transparent path), otherwise via an owned copy.
    fn send_copy(
        &mut self,
        dest: Dest,
        frame: &[u8],
        plan: CopyPlan,
    ) -> Result<(), TransportError> {
        if plan.corrupt_bit.is_none() && plan.delay == Duration::ZERO {
            return self.inner.send(dest, frame);
        }
        let mut copy = frame.to_vec();
        if let Some(bit) = plan.corrupt_bit {
            flip_bit(&mut copy, bit);
            self.stats.send.corrupted += 1;
        }
        if plan.delay == Duration::ZERO {
            return self.inner.send(dest, &copy);
        }
        if self.held_send.len() >= self.config.max_held {
            self.stats.send.hold_full += 1;
            return self.inner.send(dest, &copy);
        }
        let key = self.next_key(plan.delay);
        self.held_send.insert(key, HeldSend { dest, frame: copy });
        self.stats.send.delayed += 1;
        Ok(())
    }

    /// Moves the earliest due receive-side datagram into `buf`, if one is due.
    fn release_recv(&mut self, buf: &mut [u8]) -> Option<RecvMeta> {
        let entry = self.held_recv.first_entry()?;
        if entry.key().0 > self.now {
            return None;
        }
        let HeldRecv { meta, data } = entry.remove();
        self.stats.recv.released += 1;
        // Truncate again if this buffer is smaller than the one the datagram arrived in.
        let len = data.len().min(buf.len());
        buf[..len].copy_from_slice(&data[..len]);
        Some(RecvMeta {
            len,
            truncated: meta.truncated || len < data.len(),
            ..meta
        })
    }

    /// Holds a receive-side copy for `delay`; `false` if the hold is full.
    fn hold_recv(&mut self, meta: RecvMeta, data: Vec<u8>, delay: Duration) -> bool {
        if self.held_recv.len() >= self.config.max_held {
            self.stats.recv.hold_full += 1;
            return false;
        }
        let key = self.next_key(delay);
        self.held_recv.insert(
            key,
            HeldRecv {
                meta: RecvMeta {
                    len: data.len(),
                    ..meta
                },
                data,
            },
        );
        true
    }
}

/// Flips bit `bit` of `data` (bit 0 is the least significant bit of byte 0). Out of range
/// is a no-op, which cannot happen for bits drawn below `8 * data.len()`.
fn flip_bit(data: &mut [u8], bit: u64) {
    let byte = usize::try_from(bit / 8).ok().and_then(|i| data.get_mut(i));
    if let Some(byte) = byte {
        *byte ^= 1 << (bit % 8);
    }
}

impl<T: Transport> Transport for FaultInjector<T> {
    fn max_datagram(&self) -> usize {
        self.inner.max_datagram()
    }

    fn send(&mut self, dest: Dest, frame: &[u8]) -> Result<(), TransportError> {
        // Checked here, not left to the inner transport, because a held datagram's error
        // could no longer reach the caller.
        let max = self.inner.max_datagram();
        if frame.len() > max {
            return Err(TransportError::TooLarge {
                len: frame.len(),
                max,
            });
        }
        self.release_sends();
        let faults = self.config.send;
        self.stats.send.datagrams += 1;
        if self.rng.chance_ppm(faults.drop_ppm) {
            self.stats.send.dropped += 1;
            trace!("fault injector: send to {} dropped", dest);
            return Ok(());
        }
        let duplicate = self.rng.chance_ppm(faults.duplicate_ppm);
        let mut reordered = 0;
        let plan = self.plan_copy(&faults, frame.len(), &mut reordered);
        // Planned before sending so the draws do not depend on the inner transport's answer.
        let dup_plan = duplicate.then(|| self.plan_copy(&faults, frame.len(), &mut reordered));
        self.stats.send.reordered += reordered;
        // WouldBlock on the original is the caller's to retry, whole: no duplicate then.
        self.send_copy(dest, frame, plan)?;
        if let Some(dup_plan) = dup_plan {
            self.stats.send.duplicated += 1;
            if let Err(err) = self.send_copy(dest, frame, dup_plan) {
                // The caller was told the original went; the extra copy has nobody to
                // report to. Losing it is within what a duplicate promises.
                trace!("fault injector: duplicate to {} not sent: {}", dest, err);
                self.stats.send.errors += 1;
            }
        }
        Ok(())
    }

    fn recv(&mut self, buf: &mut [u8]) -> Result<Option<RecvMeta>, TransportError> {
        self.release_sends();
        loop {
            if let Some(meta) = self.release_recv(buf) {
                return Ok(Some(meta));
            }
            let Some(meta) = self.inner.recv(buf)? else {
                return Ok(None);
            };
            let faults = self.config.recv;
            self.stats.recv.datagrams += 1;
            if self.rng.chance_ppm(faults.drop_ppm) {
                self.stats.recv.dropped += 1;
                trace!("fault injector: datagram from {} dropped", meta.from);
                continue;
            }
            // Defensive: an inner transport reporting more than it wrote must not make the
            // injector index out of bounds.
            let len = meta.len.min(buf.len());
            let meta = RecvMeta { len, ..meta };
            let duplicate = self.rng.chance_ppm(faults.duplicate_ppm);
            let mut reordered = 0;
            let plan = self.plan_copy(&faults, len, &mut reordered);
            if duplicate {
                let dup_plan = self.plan_copy(&faults, len, &mut reordered);
                // Copied before the original is corrupted: each copy gets its own fate.
                let mut copy = buf[..len].to_vec();
                if let Some(bit) = dup_plan.corrupt_bit {
                    flip_bit(&mut copy, bit);
                    self.stats.recv.corrupted += 1;
                }
                // Held even with zero delay: `recv` returns one datagram per call, and the
                // hold is where the second copy waits for the next call.
                if self.hold_recv(meta, copy, dup_plan.delay) {
                    self.stats.recv.duplicated += 1;
                    if dup_plan.delay > Duration::ZERO {
                        self.stats.recv.delayed += 1;
                    }
                }
            }
            self.stats.recv.reordered += reordered;
            if let Some(bit) = plan.corrupt_bit {
                flip_bit(&mut buf[..len], bit);
                self.stats.recv.corrupted += 1;
            }
            if plan.delay == Duration::ZERO
                || !self.hold_recv(meta, buf[..len].to_vec(), plan.delay)
            {
                return Ok(Some(meta));
            }
            self.stats.recv.delayed += 1;
            // Held: look again for something due, or the next datagram underneath.
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loopback::{LoopbackConfig, LoopbackHub, LoopbackTransport};
    use crate::rng::PPM;
    use crate::{PeerAddr, Transmit};
    use alloc::vec;
    use totem_proto::NodeId;

    const A: NodeId = NodeId(1);
    const B: NodeId = NodeId(2);

    /// A hub with big queues (the statistical tests push 100k datagrams) and two endpoints.
    fn pair() -> (LoopbackHub, LoopbackTransport, LoopbackTransport) {
        let hub = LoopbackHub::new(LoopbackConfig {
            queue_capacity: 200_000,
            ..LoopbackConfig::default()
        });
        let a = hub.attach(A).unwrap();
        let b = hub.attach(B).unwrap();
        (hub, a, b)
    }

    fn drain<T: Transport>(t: &mut T) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut buf = [0u8; 256];
        while let Some(meta) = t.recv(&mut buf).unwrap() {
            out.push(buf[..meta.len].to_vec());
        }
        out
    }

    fn frame(i: u32) -> [u8; 8] {
        let mut f = [0u8; 8];
        f[..4].copy_from_slice(&i.to_be_bytes());
        f[4..].copy_from_slice(&(!i).to_be_bytes());
        f
    }

    fn faults(f: impl FnOnce(&mut Faults)) -> Faults {
        let mut faults = Faults::default();
        f(&mut faults);
        faults
    }

    #[test]
    fn zero_config_is_byte_identical_and_touches_nothing() {
        assert!(FaultConfig::default().send.is_transparent());
        let (_hub, a, mut b) = pair();
        let mut a = FaultInjector::new(a, FaultConfig::default(), 1);
        let sent: Vec<Vec<u8>> = (0..200u32)
            .map(|i| frame(i).repeat(i as usize % 5))
            .collect();
        for f in &sent {
            a.send(Dest::Node(B), f).unwrap();
        }
        assert_eq!(drain(&mut b), sent);
        // Receive side too, with sender metadata passed through untouched.
        let mut b = FaultInjector::new(b, FaultConfig::default(), 2);
        a.send(Dest::Multicast, b"meta").unwrap();
        let mut buf = [0u8; 16];
        let meta = b.recv(&mut buf).unwrap().unwrap();
        assert_eq!(
            (meta.len, meta.from, meta.truncated),
            (4, PeerAddr::Node(A), false)
        );
        assert_eq!(a.held(), (0, 0));
        assert_eq!(a.poll_at(), None);
        let stats = a.stats();
        assert_eq!(stats.send.datagrams, 201);
        assert_eq!(
            FaultCounters {
                datagrams: 0,
                ..stats.send
            },
            FaultCounters::default()
        );
    }

    /// Runs 2000 datagrams through a heavily faulted pair and records what came out.
    fn faulty_run(seed: u64) -> (Vec<Vec<u8>>, FaultStats, FaultStats) {
        let (_hub, a, b) = pair();
        let f = faults(|f| {
            f.drop_ppm = 100_000;
            f.duplicate_ppm = 100_000;
            f.corrupt_ppm = 100_000;
            f.reorder_ppm = 50_000;
            f.jitter = Duration::from_micros(300);
            f.reorder_hold = Duration::from_micros(500);
        });
        let config = FaultConfig {
            send: f,
            recv: f,
            ..FaultConfig::default()
        };
        let mut a = FaultInjector::new(a, config, seed);
        let mut b = FaultInjector::new(b, config, seed ^ 0xdead_beef);
        let mut out = Vec::new();
        for i in 0..2000u32 {
            let now = Instant::from_micros(u64::from(i) * 100);
            a.set_now(now);
            b.set_now(now);
            a.send(Dest::Node(B), &frame(i)).unwrap();
            out.extend(drain(&mut b));
        }
        let end = Instant::from_millis(10_000);
        a.set_now(end);
        b.set_now(end);
        out.extend(drain(&mut b));
        (out, a.stats(), b.stats())
    }

    #[test]
    fn same_seed_same_outcome_different_seed_different_outcome() {
        let first = faulty_run(3053);
        assert_eq!(first, faulty_run(3053));
        assert_ne!(first.0, faulty_run(3054).0);
        // Every fault kind actually fired in that run, so the comparison means something.
        let (_, send, recv) = first;
        for c in [send.send, recv.recv] {
            assert!(c.dropped > 0 && c.duplicated > 0 && c.corrupted > 0);
            assert!(c.delayed > 0 && c.reordered > 0 && c.released > 0);
        }
    }

    #[test]
    fn drop_rate_is_within_statistical_bounds() {
        // 100k datagrams at 10 %: mean 10 000, standard deviation sqrt(n p (1-p)) ≈ 95.
        // ±600 is over six standard deviations, so this fails only if the rate is wrong.
        for side in ["send", "recv"] {
            let (_hub, a, b) = pair();
            let f = faults(|f| f.drop_ppm = 100_000);
            let config = if side == "send" {
                FaultConfig {
                    send: f,
                    ..FaultConfig::default()
                }
            } else {
                FaultConfig {
                    recv: f,
                    ..FaultConfig::default()
                }
            };
            let mut a = FaultInjector::new(a, config, 11);
            let mut b = FaultInjector::new(b, config, 12);
            for i in 0..100_000u32 {
                a.send(Dest::Node(B), &frame(i)).unwrap();
            }
            let got = drain(&mut b).len() as u64;
            let dropped = a.stats().send.dropped + b.stats().recv.dropped;
            assert_eq!(
                got + dropped,
                100_000,
                "{side}: every datagram is either delivered or counted"
            );
            assert!(
                (9_400..=10_600).contains(&dropped),
                "{side}: dropped {dropped}"
            );
        }
    }

    #[test]
    fn duplicates_arrive_and_are_counted() {
        let (_hub, a, mut b) = pair();
        let config = FaultConfig {
            send: faults(|f| f.duplicate_ppm = PPM),
            ..FaultConfig::default()
        };
        let mut a = FaultInjector::new(a, config, 5);
        for i in 0..10u32 {
            a.send(Dest::Node(B), &frame(i)).unwrap();
        }
        let got = drain(&mut b);
        assert_eq!(got.len(), 20);
        assert_eq!(a.stats().send.duplicated, 10);
        // Without delay, each copy follows its original.
        for (i, pair) in got.chunks(2).enumerate() {
            assert_eq!(pair, [frame(i as u32).to_vec(), frame(i as u32).to_vec()]);
        }

        // Receive side: the second copy waits in the hold for the next recv call.
        let (_hub, mut a, b) = pair();
        let config = FaultConfig {
            recv: faults(|f| f.duplicate_ppm = PPM),
            ..FaultConfig::default()
        };
        let mut b = FaultInjector::new(b, config, 6);
        a.send(Dest::Node(B), b"twice").unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(b.recv(&mut buf).unwrap().map(|m| m.len), Some(5));
        assert_eq!(b.held(), (0, 1));
        assert_eq!(b.poll_at(), Some(Instant::ZERO));
        assert_eq!(
            b.recv(&mut buf).unwrap().map(|m| (m.len, m.from)),
            Some((5, PeerAddr::Node(A)))
        );
        assert_eq!(&buf[..5], b"twice");
        assert_eq!(b.recv(&mut buf), Ok(None));
        assert_eq!(b.stats().recv.duplicated, 1);
    }

    #[test]
    fn delayed_datagrams_are_held_until_due_then_released() {
        let delay = Duration::from_millis(5);
        // Send side.
        let (_hub, a, mut b) = pair();
        let config = FaultConfig {
            send: faults(|f| f.delay = delay),
            ..FaultConfig::default()
        };
        let mut a = FaultInjector::new(a, config, 1);
        a.set_now(Instant::from_millis(10));
        a.send(Dest::Node(B), b"late").unwrap();
        assert_eq!(a.poll_at(), Some(Instant::from_millis(15)));
        a.set_now(Instant::from_micros(14_999));
        assert!(drain(&mut b).is_empty(), "released one microsecond early");
        a.set_now(Instant::from_millis(15));
        assert_eq!(drain(&mut b), vec![b"late".to_vec()]);
        assert_eq!(a.poll_at(), None);
        assert_eq!((a.stats().send.delayed, a.stats().send.released), (1, 1));

        // Receive side: the inner transport has it, the caller does not see it until due.
        let (_hub, mut a, b) = pair();
        let config = FaultConfig {
            recv: faults(|f| f.delay = delay),
            ..FaultConfig::default()
        };
        let mut b = FaultInjector::new(b, config, 1);
        a.send(Dest::Node(B), b"late").unwrap();
        b.set_now(Instant::from_millis(1));
        let mut buf = [0u8; 8];
        assert_eq!(b.recv(&mut buf), Ok(None));
        assert_eq!(b.held(), (0, 1));
        assert_eq!(b.poll_at(), Some(Instant::from_millis(6)));
        // Time going backwards is ignored, not honoured.
        b.set_now(Instant::ZERO);
        assert_eq!(b.now(), Instant::from_millis(1));
        b.set_now(Instant::from_micros(5_999));
        assert_eq!(b.recv(&mut buf), Ok(None));
        b.set_now(Instant::from_millis(6));
        let meta = b.recv(&mut buf).unwrap().unwrap();
        assert_eq!(
            (&buf[..meta.len], meta.from),
            (&b"late"[..], PeerAddr::Node(A))
        );
    }

    #[test]
    fn jitter_reorders_and_release_follows_due_order() {
        let (_hub, a, mut b) = pair();
        let config = FaultConfig {
            send: faults(|f| f.jitter = Duration::from_millis(10)),
            ..FaultConfig::default()
        };
        let mut a = FaultInjector::new(a, config, 99);
        for i in 0..100u32 {
            a.send(Dest::Node(B), &frame(i)).unwrap();
        }
        assert!(
            drain(&mut b).len() < 100,
            "jitter 0..=10ms should hold most datagrams"
        );
        a.set_now(Instant::from_millis(10));
        let got: Vec<Vec<u8>> = drain(&mut b);
        assert_eq!(a.held(), (0, 0));
        let mut sorted = got.clone();
        sorted.sort();
        let expected: Vec<Vec<u8>> = (0..100u32).map(|i| frame(i).to_vec()).collect();
        let mut expected_sorted = expected.clone();
        expected_sorted.sort();
        assert_eq!(sorted, expected_sorted, "nothing lost or invented");
        assert_ne!(got, expected, "some datagrams overtook others");
    }

    #[test]
    fn reorder_pick_lets_the_next_datagram_overtake() {
        let (_hub, a, mut b) = pair();
        let config = FaultConfig {
            send: faults(|f| {
                f.reorder_ppm = PPM;
                f.reorder_hold = Duration::from_millis(1);
            }),
            ..FaultConfig::default()
        };
        let mut a = FaultInjector::new(a, config, 1);
        a.send(Dest::Node(B), b"first").unwrap();
        // Switch reordering off: the second goes straight through and arrives first.
        a.set_config(FaultConfig::default());
        a.send(Dest::Node(B), b"second").unwrap();
        a.set_now(Instant::from_millis(1));
        assert_eq!(drain(&mut b), vec![b"second".to_vec(), b"first".to_vec()]);
        assert_eq!(a.stats().send.reordered, 1);
    }

    #[test]
    fn corruption_flips_exactly_one_bit() {
        let original = frame(0x1234_5678).repeat(4);
        for side in ["send", "recv"] {
            let (_hub, a, mut b_raw) = pair();
            let f = faults(|f| f.corrupt_ppm = PPM);
            let (send, recv) = if side == "send" {
                (f, Faults::default())
            } else {
                (Faults::default(), f)
            };
            let mut a = FaultInjector::new(
                a,
                FaultConfig {
                    send,
                    ..FaultConfig::default()
                },
                17,
            );
            for _ in 0..500 {
                a.send(Dest::Node(B), &original).unwrap();
            }
            let got = if side == "send" {
                drain(&mut b_raw)
            } else {
                drain(&mut FaultInjector::new(
                    b_raw,
                    FaultConfig {
                        recv,
                        ..FaultConfig::default()
                    },
                    18,
                ))
            };
            assert_eq!(got.len(), 500);
            let mut bits_hit = alloc::collections::BTreeSet::new();
            for g in &got {
                let diff: Vec<u32> = g
                    .iter()
                    .zip(&original)
                    .map(|(x, y)| (x ^ y).count_ones())
                    .collect();
                assert_eq!(
                    diff.iter().sum::<u32>(),
                    1,
                    "{side}: exactly one bit differs"
                );
                let byte = diff.iter().position(|&d| d == 1).unwrap();
                bits_hit.insert(byte * 8 + (g[byte] ^ original[byte]).trailing_zeros() as usize);
            }
            // The flipped bit is spread over the frame, not stuck on one position.
            assert!(
                bits_hit.len() > 150,
                "{side}: only {} distinct bits",
                bits_hit.len()
            );
        }
    }

    #[test]
    fn empty_datagrams_are_never_corrupted() {
        let (_hub, a, mut b) = pair();
        let config = FaultConfig {
            send: faults(|f| f.corrupt_ppm = PPM),
            ..FaultConfig::default()
        };
        let mut a = FaultInjector::new(a, config, 1);
        a.send(Dest::Node(B), b"").unwrap();
        assert_eq!(drain(&mut b), vec![Vec::<u8>::new()]);
        assert_eq!(a.stats().send.corrupted, 0);
    }

    #[test]
    fn zero_and_tiny_buffers_report_truncation_without_panicking() {
        let (_hub, mut a, b) = pair();
        let f = faults(|f| {
            f.duplicate_ppm = PPM;
            f.corrupt_ppm = 500_000;
            f.delay = Duration::from_micros(10);
            f.jitter = Duration::from_micros(10);
        });
        let mut b = FaultInjector::new(
            b,
            FaultConfig {
                recv: f,
                ..FaultConfig::default()
            },
            4,
        );
        for i in 0..50u32 {
            a.send(Dest::Node(B), &frame(i)).unwrap();
        }
        // The first call reads all 50 into the hold (each delayed 10..=20 µs) and, with
        // their duplicates, nothing is due yet.
        let mut big = [0u8; 64];
        assert_eq!(b.recv(&mut big), Ok(None));
        assert_eq!(b.held(), (0, 100));
        b.set_now(Instant::from_millis(1));
        let mut seen = 0;
        let mut tiny = [0u8; 3];
        loop {
            // Alternate empty and tiny buffers; held copies truncate on release too.
            let got = if seen % 2 == 0 {
                b.recv(&mut [])
            } else {
                b.recv(&mut tiny)
            };
            let Some(meta) = got.unwrap() else { break };
            assert!(meta.truncated);
            assert_eq!(meta.len, if seen % 2 == 0 { 0 } else { 3 });
            seen += 1;
        }
        assert_eq!(seen, 100);
    }

    #[test]
    fn hold_is_bounded_and_overflow_goes_straight_through() {
        let (_hub, a, mut b) = pair();
        let config = FaultConfig {
            send: faults(|f| f.delay = Duration::from_millis(1)),
            max_held: 3,
            ..FaultConfig::default()
        };
        let mut a = FaultInjector::new(a, config, 1);
        for i in 0..5u32 {
            a.send(Dest::Node(B), &frame(i)).unwrap();
        }
        assert_eq!(a.held(), (3, 0));
        assert_eq!(a.stats().send.hold_full, 2);
        assert_eq!(drain(&mut b), vec![frame(3).to_vec(), frame(4).to_vec()]);
        a.set_now(Instant::from_millis(1));
        assert_eq!(drain(&mut b).len(), 3);
    }

    #[test]
    fn back_pressure_at_release_keeps_the_datagram_for_later() {
        // A receive queue of one datagram makes the loopback... not push back (UDP drops).
        // So use a wrapped transport that pushes back on demand.
        #[derive(Debug, Default)]
        struct Valve {
            open: bool,
            sent: Vec<Vec<u8>>,
        }
        impl Transport for Valve {
            fn max_datagram(&self) -> usize {
                16
            }
            fn send(&mut self, _: Dest, frame: &[u8]) -> Result<(), TransportError> {
                if !self.open {
                    return Err(TransportError::WouldBlock);
                }
                self.sent.push(frame.to_vec());
                Ok(())
            }
            fn recv(&mut self, _: &mut [u8]) -> Result<Option<RecvMeta>, TransportError> {
                Ok(None)
            }
        }
        let config = FaultConfig {
            send: faults(|f| f.delay = Duration::from_millis(1)),
            ..FaultConfig::default()
        };
        let mut t = FaultInjector::new(Valve::default(), config, 1);
        t.send(Dest::Multicast, b"held").unwrap();
        assert_eq!(
            t.send(Dest::Multicast, &[0; 17]),
            Err(TransportError::TooLarge { len: 17, max: 16 })
        );
        t.set_now(Instant::from_millis(2));
        assert_eq!(t.held(), (1, 0), "WouldBlock at release keeps it");
        assert_eq!(t.poll_at(), Some(Instant::from_millis(1)));
        t.inner_mut().open = true;
        t.set_now(Instant::from_millis(2));
        assert_eq!(t.inner().sent, vec![b"held".to_vec()]);
        assert_eq!(t.stats().send.errors, 0);
        // An immediate send's WouldBlock reaches the caller unchanged.
        t.set_config(FaultConfig::default());
        t.inner_mut().open = false;
        assert_eq!(
            t.send(Dest::Multicast, b"now"),
            Err(TransportError::WouldBlock)
        );
        assert_eq!(t.into_inner().sent.len(), 1);
    }

    #[test]
    fn batch_calls_go_through_the_injector() {
        let (_hub, a, b) = pair();
        let config = FaultConfig {
            send: faults(|f| f.drop_ppm = PPM),
            ..FaultConfig::default()
        };
        let mut a = FaultInjector::new(a, config, 1);
        let frames = [
            Transmit::new(Dest::Node(B), b"x"),
            Transmit::new(Dest::Node(B), b"y"),
        ];
        assert_eq!(a.send_batch(&frames), (2, None));
        let mut b = FaultInjector::new(b, FaultConfig::default(), 1);
        assert_eq!(drain(&mut b).len(), 0);
        assert_eq!(a.stats().send.dropped, 2);
    }
}
