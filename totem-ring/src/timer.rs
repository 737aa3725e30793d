//! The ring's timers as a table indexed by [`Timer`] (quinn's `TimerTable`): arming is
//! storing a deadline, `poll_timeout` is the earliest one, expiry is comparing with `now`.

use totem_proto::time::Instant;

/// The ring's timers, with corosync's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub(crate) enum Timer {
    /// No token for `token`: the token is lost (`orf_token_timeout`).
    Token,
    /// Resend the last token sent (`token_retransmit_timeout`).
    TokenRetransmit,
    /// The representative releases a held token (`token_hold_retransmit_timeout`).
    Hold,
    /// Re-broadcast the join in gather (`memb_timer_function_state_gather`).
    Join,
    /// Consensus not reached in time (`memb_timer_function_gather_consensus_timeout`).
    Consensus,
    /// The idle representative announces its ring (`memb_merge_detect_transmit`).
    Merge,
    /// The `send_join` jitter before a join goes out (corosync sleeps; we wait).
    SendJoin,
    /// A token addressed to this node itself (singleton ring) is processed.
    SelfToken,
    /// Processors silent since the gather began are failed (`fast_fail`, ours).
    FailSilent,
}

const COUNT: usize = 9;

impl Timer {
    const ALL: [Self; COUNT] = [
        Self::Token,
        Self::TokenRetransmit,
        Self::Hold,
        Self::Join,
        Self::Consensus,
        Self::Merge,
        Self::SendJoin,
        Self::SelfToken,
        Self::FailSilent,
    ];
}

/// Deadlines of all timers.
#[derive(Debug, Clone, Default)]
pub(crate) struct TimerTable {
    data: [Option<Instant>; COUNT],
}

impl TimerTable {
    pub(crate) fn set(&mut self, timer: Timer, at: Instant) {
        self.data[timer as usize] = Some(at);
    }

    pub(crate) fn stop(&mut self, timer: Timer) {
        self.data[timer as usize] = None;
    }

    pub(crate) fn is_armed(&self, timer: Timer) -> bool {
        self.data[timer as usize].is_some()
    }

    /// The earliest deadline.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.data.iter().flatten().min().copied()
    }

    /// Whether `timer` is armed with a deadline at or before `now`.
    pub(crate) fn is_expired(&self, timer: Timer, now: Instant) -> bool {
        self.data[timer as usize].is_some_and(|at| at <= now)
    }

    /// The timers expired at `now`, in the table's priority order.
    pub(crate) fn expired(&self, now: Instant) -> impl Iterator<Item = Timer> + use<> {
        let data = self.data;
        Timer::ALL
            .into_iter()
            .filter(move |t| data[*t as usize].is_some_and(|at| at <= now))
    }
}
