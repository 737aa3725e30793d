//! Ring configuration: corosync's `totem {}` knobs with its names and defaults, the values
//! derived from them, and validation.
//!
//! [`Config`] is what the user sets (most timers optional, derived when absent, as in
//! corosync 3's `totemconfig.c`); [`Effective`] is what the ring runs with, every value
//! resolved, so a driver can publish it (`runtime.config.totem.*`) and users see the derived
//! token timeout and consensus — an open complaint about corosync.

use core::fmt;

use totem_proto::time::Duration;
use totem_proto::{NodeId, pack_capacity};

/// Smallest timeout corosync accepts for token, token_retransmit, join, consensus, merge
/// and downcheck: 3 ticks of a 100 Hz clock (`MINIMUM_TIMEOUT`).
pub const MINIMUM_TIMEOUT: Duration = Duration::from_millis(30);

/// Smallest hold corosync accepts: `(int)(MINIMUM_TIMEOUT × 0.8 − 10 ms)`.
pub const MINIMUM_HOLD: Duration = Duration::from_millis(14);

/// The retransmit window's upper bound: corosync's sort queue size
/// (`QUEUE_RTR_ITEMS_SIZE_MAX`). Ours is configurable below it (firmware heaps).
pub const MAX_RETRANSMIT_WINDOW: u32 = 16_384;

/// Ring options, named after corosync's `totem {}` keys. `Config::new` gives corosync 3's
/// defaults; `None` timers are derived from `token` as corosync does.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Config {
    /// This node's id (non-zero, unique in the cluster).
    pub node_id: NodeId,
    /// Cluster id written in every frame; frames of other clusters are dropped and counted.
    pub cluster_id: u32,
    /// Seed of the ring's PRNG (`send_join` jitter). Same seed, same inputs → same outputs.
    pub seed: u64,
    /// Token loss timeout before scaling (`token`, default 3000 ms).
    pub token: Duration,
    /// Added to `token` per configured node beyond two (`token_coefficient`, 650 ms; 0
    /// disables scaling).
    pub token_coefficient: Duration,
    /// Configured node count (the nodelist's length) for the scaling above; 0 if unknown.
    pub nodelist_len: usize,
    /// Token retransmissions before the token is considered lost
    /// (`token_retransmits_before_loss_const`, 4). Derives `token_retransmit` and `hold`.
    pub token_retransmits_before_loss_const: u32,
    /// Resend the last token after this long without progress (`token_retransmit`; derived:
    /// `token / (retransmits + 0.2)`).
    pub token_retransmit: Option<Duration>,
    /// How long the representative of an idle ring holds the token (`hold`; derived:
    /// `token_retransmit × 0.8 − 10 ms`).
    pub hold: Option<Duration>,
    /// Join re-broadcast period in gather (`join`, 50 ms).
    pub join: Duration,
    /// Random delay 0..send_join before each join (`send_join`, 0 = none).
    pub send_join: Duration,
    /// Wait for consensus before adding silent processors to the fail set (`consensus`;
    /// derived: `1.2 × token`).
    pub consensus: Option<Duration>,
    /// Period of the idle representative's merge-detect broadcast (`merge`, 200 ms).
    pub merge: Duration,
    /// Interface recheck delay (`downcheck`, 1000 ms). Accepted and validated for config
    /// compatibility; corosync 3's ring does not use it, nor does ours.
    pub downcheck: Duration,
    /// Token visits with the aru stuck below seq before the node holding it back declares
    /// that it failed to receive (`fail_recv_const`, 2500).
    pub fail_recv_const: u32,
    /// Idle rotations before the token is held (`seqno_unchanged_const`, 30).
    pub seqno_unchanged_const: u32,
    /// Most messages (frames) the whole ring sends per rotation (`window_size`, 50).
    pub window_size: u32,
    /// Most messages (frames) one node sends per token visit (`max_messages`, 17).
    pub max_messages: u32,
    /// Token visits a gap must persist before it is requested (`miss_count_const`, 5).
    pub miss_count_const: u32,
    /// Release a held token as soon as retransmissions are pending
    /// (`cancel_token_hold_on_retransmit`, off).
    pub cancel_token_hold_on_retransmit: bool,
    /// Largest frame the transport sends as one packet (netmtu minus IP/UDP headers and
    /// any transport overhead such as encryption). Default 1472 (1500 − 28).
    pub frame_len: usize,
    /// Largest application message `submit` accepts (default 1 MiB, corosync's
    /// `MESSAGE_SIZE_MAX`); larger than a frame means fragmented.
    pub max_message_len: usize,
    /// Bytes of application messages queued but not yet sent before `submit` pushes back
    /// (default 4 MiB + one maximal message).
    pub send_queue_bytes: usize,
    /// Ordered messages kept for retransmission and delivery (the sort-queue window,
    /// default 16384 as corosync). Memory is bounded by this × `frame_len`.
    pub retransmit_window: u32,
    /// The Accelerated Ring (Babay and Amir, ICDCS 2016): pass the token before this
    /// visit's new messages are multicast, overlapping the token's trip with the data.
    /// Off by default (corosync's classic ring); every member should use the same setting.
    pub accelerated: bool,
    /// After a token loss in OPERATIONAL, fail the processors heard nothing from for
    /// `token_retransmit` since, instead of waiting out `consensus` (on by default; off =
    /// corosync). Live members answer a gather within a round trip (a join makes every
    /// operational member gather and send its own), so a crashed node is out of the next
    /// ring after about `token + token_retransmit` rather than `token + consensus`.
    pub fast_fail: bool,
    /// Resend a token whose successor shows no sign of having it after about two measured
    /// rotations (at least 2 ms, doubling on each resend) instead of always waiting
    /// `token_retransmit`, which stays the upper bound. A token lost on a lossy link then
    /// costs milliseconds instead of `token_retransmit` (714 ms by default): with 1 % loss
    /// corosync spends most of its time waiting for lost tokens. A resend too early is
    /// harmless to order: the successor drops duplicates. On by default (ours); off =
    /// corosync's fixed `token_retransmit`.
    pub adaptive_token_retransmit: bool,
}

impl Config {
    /// corosync 3's defaults for node `node_id` of cluster `cluster_id`.
    pub fn new(node_id: NodeId, cluster_id: u32) -> Self {
        Self {
            node_id,
            cluster_id,
            seed: u64::from(node_id.0),
            token: Duration::from_millis(3000),
            token_coefficient: Duration::from_millis(650),
            nodelist_len: 0,
            token_retransmits_before_loss_const: 4,
            token_retransmit: None,
            hold: None,
            join: Duration::from_millis(50),
            send_join: Duration::ZERO,
            consensus: None,
            merge: Duration::from_millis(200),
            downcheck: Duration::from_millis(1000),
            fail_recv_const: 2500,
            seqno_unchanged_const: 30,
            window_size: 50,
            max_messages: 17,
            miss_count_const: 5,
            cancel_token_hold_on_retransmit: false,
            frame_len: 1472,
            max_message_len: 1 << 20,
            send_queue_bytes: (4 << 20) + (1 << 20),
            retransmit_window: MAX_RETRANSMIT_WINDOW,
            accelerated: false,
            fast_fail: true,
            adaptive_token_retransmit: true,
        }
    }

    /// Resolves every derived value and validates the result.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the option and the rule it breaks.
    pub fn effective(&self) -> Result<Effective, ConfigError> {
        if !self.node_id.is_valid() {
            return Err(ConfigError::new("nodeid", "must not be 0"));
        }
        // corosync: token += (nodes − 2) × token_coefficient when the nodelist has > 2 nodes.
        let extra = self.nodelist_len.saturating_sub(2) as u64;
        let token = self.token + self.token_coefficient.saturating_mul(extra);
        let k = u64::from(self.token_retransmits_before_loss_const);
        if k == 0 {
            return Err(ConfigError::new(
                "token_retransmits_before_loss_const",
                "must be at least 1",
            ));
        }
        // corosync: token_retransmit = (int)(token / (k + 0.2)), hold = (int)(tr × 0.8 − 10).
        // Integer milliseconds when the token is whole milliseconds, so the figures match
        // corosync's (3000 → 714 / 561, 3650 → 869 / 685); microseconds otherwise.
        let whole_ms = token.total_micros().is_multiple_of(1000);
        let floor = |d: Duration| {
            if whole_ms {
                Duration::from_millis(d.total_millis())
            } else {
                d
            }
        };
        let token_retransmit = self.token_retransmit.unwrap_or_else(|| {
            floor(Duration::from_micros(
                token.total_micros() * 10 / (k * 10 + 2),
            ))
        });
        let hold = self.hold.unwrap_or_else(|| {
            let tr = floor(token_retransmit).total_micros();
            floor(Duration::from_micros((tr * 8 / 10).saturating_sub(10_000)))
        });
        let consensus = self
            .consensus
            .unwrap_or_else(|| floor(Duration::from_micros(token.total_micros() * 12 / 10)));

        for (name, value) in [
            ("token", token),
            ("token_retransmit", token_retransmit),
            ("join", self.join),
            ("consensus", consensus),
            ("merge", self.merge),
            ("downcheck", self.downcheck),
        ] {
            if value < MINIMUM_TIMEOUT {
                return Err(ConfigError::new(name, "must be at least 30 ms"));
            }
        }
        if hold < MINIMUM_HOLD {
            return Err(ConfigError::new("hold", "must be at least 14 ms"));
        }
        if consensus < self.join {
            return Err(ConfigError::new("consensus", "must be at least join"));
        }
        for (name, value) in [
            ("fail_recv_const", self.fail_recv_const),
            ("seqno_unchanged_const", self.seqno_unchanged_const),
            ("window_size", self.window_size),
            ("max_messages", self.max_messages),
            ("miss_count_const", self.miss_count_const),
        ] {
            if value == 0 {
                return Err(ConfigError::new(name, "must be at least 1"));
            }
        }
        if pack_capacity(self.frame_len).is_none_or(|c| c < 64) || self.frame_len > 65_507 {
            return Err(ConfigError::new(
                "frame_len",
                "must leave room for data (about 200..=65507 bytes)",
            ));
        }
        if self.max_message_len == 0 || u32::try_from(self.max_message_len).is_err() {
            return Err(ConfigError::new(
                "max_message_len",
                "must be 1 byte to 4 GiB",
            ));
        }
        if self.send_queue_bytes < self.max_message_len {
            return Err(ConfigError::new(
                "send_queue_bytes",
                "must hold at least one maximal message",
            ));
        }
        // The window must hold at least a few rotations' worth of traffic, or nothing moves.
        let min_window = self
            .window_size
            .saturating_mul(2)
            .max(self.max_messages.saturating_mul(2));
        if self.retransmit_window < min_window || self.retransmit_window > MAX_RETRANSMIT_WINDOW {
            return Err(ConfigError::new(
                "retransmit_window",
                "must be between 2 × max(window_size, max_messages) and 16384",
            ));
        }
        Ok(Effective {
            node_id: self.node_id,
            cluster_id: self.cluster_id,
            seed: self.seed,
            token,
            token_coefficient: self.token_coefficient,
            token_retransmits_before_loss_const: self.token_retransmits_before_loss_const,
            token_retransmit,
            hold,
            join: self.join,
            send_join: self.send_join,
            consensus,
            merge: self.merge,
            downcheck: self.downcheck,
            fail_recv_const: self.fail_recv_const,
            seqno_unchanged_const: self.seqno_unchanged_const,
            window_size: self.window_size,
            max_messages: self.max_messages,
            miss_count_const: self.miss_count_const,
            cancel_token_hold_on_retransmit: self.cancel_token_hold_on_retransmit,
            frame_len: self.frame_len,
            max_message_len: self.max_message_len,
            send_queue_bytes: self.send_queue_bytes,
            retransmit_window: self.retransmit_window,
            accelerated: self.accelerated,
            fast_fail: self.fast_fail,
            adaptive_token_retransmit: self.adaptive_token_retransmit,
        })
    }
}

/// Every value the ring runs with, derived ones resolved (see [`Config`] for meanings).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[allow(missing_docs)]
pub struct Effective {
    pub node_id: NodeId,
    pub cluster_id: u32,
    pub seed: u64,
    /// The token timeout after `token_coefficient` scaling.
    pub token: Duration,
    pub token_coefficient: Duration,
    pub token_retransmits_before_loss_const: u32,
    pub token_retransmit: Duration,
    pub hold: Duration,
    pub join: Duration,
    pub send_join: Duration,
    pub consensus: Duration,
    pub merge: Duration,
    pub downcheck: Duration,
    pub fail_recv_const: u32,
    pub seqno_unchanged_const: u32,
    pub window_size: u32,
    pub max_messages: u32,
    pub miss_count_const: u32,
    pub cancel_token_hold_on_retransmit: bool,
    pub frame_len: usize,
    pub max_message_len: usize,
    pub send_queue_bytes: usize,
    pub retransmit_window: u32,
    pub accelerated: bool,
    pub fast_fail: bool,
    pub adaptive_token_retransmit: bool,
}

/// A configuration value the ring refuses, with the option's corosync name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ConfigError {
    /// The option.
    pub option: &'static str,
    /// The rule it breaks.
    pub reason: &'static str,
}

impl ConfigError {
    pub(crate) const fn new(option: &'static str, reason: &'static str) -> Self {
        Self { option, reason }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "totem.{}: {}", self.option, self.reason)
    }
}

impl core::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn eff(n: usize) -> Effective {
        let mut c = Config::new(NodeId(1), 1);
        c.nodelist_len = n;
        c.effective().unwrap()
    }

    #[test]
    fn defaults_match_corosync_for_two_nodes() {
        let e = eff(2);
        assert_eq!(e.token, Duration::from_millis(3000));
        assert_eq!(e.token_retransmit, Duration::from_millis(714));
        assert_eq!(e.hold, Duration::from_millis(561));
        assert_eq!(e.consensus, Duration::from_millis(3600));
        assert_eq!(
            (e.window_size, e.max_messages, e.fail_recv_const),
            (50, 17, 2500)
        );
    }

    #[test]
    fn token_scales_with_the_nodelist_as_corosync_does() {
        // COROSYNC.md: 3 nodes → token 3650, token_retransmit 869, consensus 4380.
        let e = eff(3);
        assert_eq!(e.token, Duration::from_millis(3650));
        assert_eq!(e.token_retransmit, Duration::from_millis(869));
        assert_eq!(e.consensus, Duration::from_millis(4380));
        // TOTEM-SRP.md worked example, 5 nodes: 4950 / 1178 / 932 / 5940.
        let e = eff(5);
        assert_eq!(e.token, Duration::from_millis(4950));
        assert_eq!(e.token_retransmit, Duration::from_millis(1178));
        assert_eq!(e.hold, Duration::from_millis(932));
        assert_eq!(e.consensus, Duration::from_millis(5940));
    }

    #[test]
    fn bad_values_are_rejected_by_name() {
        let mut c = Config::new(NodeId(1), 1);
        c.join = Duration::from_millis(10);
        assert_eq!(c.effective().unwrap_err().option, "join");
        let mut c = Config::new(NodeId(1), 1);
        c.consensus = Some(Duration::from_millis(40));
        assert_eq!(c.effective().unwrap_err().option, "consensus");
        assert_eq!(
            Config::new(NodeId(0), 1).effective().unwrap_err().option,
            "nodeid"
        );
        let mut c = Config::new(NodeId(1), 1);
        c.retransmit_window = 20_000;
        assert_eq!(c.effective().unwrap_err().option, "retransmit_window");
        let mut c = Config::new(NodeId(1), 1);
        c.frame_len = 100;
        assert_eq!(c.effective().unwrap_err().option, "frame_len");
    }
}
