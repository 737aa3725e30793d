//! What the integrator provides besides the network device and the allocator: a clock and
//! a place to persist the ring seq.
//!
//! | need | trait / type | on the host binary | on a microcontroller |
//! | --- | --- | --- | --- |
//! | monotonic time | [`Clock`] | `std::time::Instant` since start | a free-running timer (SysTick, RTC, embassy-time) |
//! | ring seq across reboots | [`RingSeqStore`] | a file, written atomically | a flash sector or EEPROM word, battery-backed RAM |
//! | network device | `smoltcp::phy::Device` (see [`crate::Net`]) | a TAP device | the MAC driver |
//! | heap | `#[global_allocator]` | [`crate::Heap`] | [`crate::Heap`] or any allocator |

use totem_proto::time::Instant;

/// The integrator's monotonic clock.
pub trait Clock {
    /// Now, in microseconds since any fixed point (boot). Must never go backwards; it
    /// need not be related to wall-clock time.
    fn now(&mut self) -> Instant;
}

/// Where the last ring seq lives across restarts.
///
/// Every ring a node forms or joins has a sequence number larger than the last one it used
/// (corosync keeps `ringid_<nodeid>` for this). A node that forgot it after a reboot could
/// reuse a ring id, and two different rings with one id break virtual synchrony. The
/// appliance stores each new seq *before* sending any frame of that ring; a store that
/// cannot keep it must fail, which stops the node.
pub trait RingSeqStore {
    /// Why loading or storing failed.
    type Error: core::fmt::Debug;

    /// The last seq stored, or 0 if none was ever stored.
    ///
    /// # Errors
    /// The stored value cannot be read. Never answer 0 for unreadable storage: that is
    /// exactly the reuse this trait exists to prevent.
    fn load(&mut self) -> Result<u64, Self::Error>;

    /// Stores `seq` durably (it survives a power cut once this returns `Ok`).
    ///
    /// # Errors
    /// It could not be stored; the node stops.
    fn store(&mut self, seq: u64) -> Result<(), Self::Error>;
}
