//! Counters a driver publishes (corosync's `stats.srp.*` where it has a name). Plain
//! integers, updated in place; reading them costs nothing.

/// The ring's counters since it was created.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[allow(missing_docs)]
pub struct Stats {
    /// Datagrams that did not decode (garbage, truncated, foreign magic, bad version).
    pub rx_malformed: u64,
    /// Frames of another cluster id.
    pub rx_other_cluster: u64,
    /// Frames this node sent, looped back by the transport.
    pub rx_own: u64,
    /// Late frames of an older ring of ours.
    pub rx_stale: u64,
    /// MCAST frames received / stored / duplicates / outside the window.
    pub mcast_rx: u64,
    pub mcast_stored: u64,
    pub mcast_duplicate: u64,
    pub mcast_out_of_window: u64,
    /// MCAST frames sent new / retransmitted.
    pub mcast_tx: u64,
    pub mcast_retx: u64,
    /// ORF tokens processed, dropped as duplicates, and resent on `token_retransmit`.
    pub orf_token_rx: u64,
    pub orf_token_tx: u64,
    pub orf_token_duplicate: u64,
    pub token_retransmits: u64,
    /// Retransmission requests this node added to the token.
    pub rtr_requested: u64,
    /// Messages handed to the application.
    pub delivered: u64,
    /// Safe deliveries among them.
    pub delivered_safe: u64,
    /// Membership protocol.
    pub memb_join_tx: u64,
    pub memb_join_rx: u64,
    pub memb_commit_token_tx: u64,
    pub memb_commit_token_rx: u64,
    pub memb_merge_detect_tx: u64,
    pub memb_merge_detect_rx: u64,
    pub token_hold_cancel_tx: u64,
    pub token_hold_cancel_rx: u64,
    pub gather_entered: u64,
    pub gather_token_lost: u64,
    pub commit_entered: u64,
    pub commit_token_lost: u64,
    pub recovery_entered: u64,
    pub recovery_token_lost: u64,
    pub operational_entered: u64,
    pub operational_token_lost: u64,
    pub consensus_timeouts: u64,
    /// This node declared it failed to receive (corosync "FAILED TO RECEIVE").
    pub failed_to_recv: u64,
    /// Old-ring messages re-broadcast during recovery.
    pub recovery_retransmits: u64,
    /// Packing: frames whose payload did not unpack; fragments discarded.
    pub bad_pack: u64,
    pub fragments_discarded: u64,
    /// `submit` calls refused for back-pressure or size.
    pub submit_backpressure: u64,
    pub submit_too_large: u64,
}
