//! The one place time crosses from the operating system into totem: tokio's monotonic clock
//! becomes a [`totem_proto::time::Instant`] in microseconds since the daemon started, and
//! back for sleeping (STYLE point 8).

use totem_proto::time::Instant;

/// Converts between tokio's clock and the ring's.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    epoch: tokio::time::Instant,
}

impl Clock {
    /// A clock whose zero is now.
    pub fn new() -> Self {
        Self {
            epoch: tokio::time::Instant::now(),
        }
    }

    /// The ring's time now.
    pub fn now(&self) -> Instant {
        self.to_ring(tokio::time::Instant::now())
    }

    /// A tokio instant as the ring's time.
    pub fn to_ring(&self, t: tokio::time::Instant) -> Instant {
        let micros = t.saturating_duration_since(self.epoch).as_micros();
        Instant::from_micros(u64::try_from(micros).unwrap_or(u64::MAX))
    }

    /// A ring deadline as a tokio instant.
    pub fn to_tokio(&self, t: Instant) -> tokio::time::Instant {
        self.epoch + core::time::Duration::from_micros(t.total_micros())
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}
