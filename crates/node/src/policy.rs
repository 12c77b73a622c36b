//! What the node is told about each peer: the IKE engine's settings plus what happens around
//! them (when to start, liveness, volume lifetimes). The daemon builds it from its
//! configuration file, the simulator directly.

use std::time::Duration;

use meshsec_ike::PeerConfig;

/// When a peer's tunnel is brought up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// At start, and again whenever it goes down.
    Always,
    /// When traffic for the peer's selectors appears.
    OnDemand,
    /// Never by us: we only answer the peer.
    Passive,
}

/// What follows a peer's death (its DPD check went unanswered).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DpdAction {
    /// Set the tunnel up again (with backoff), as for `start = "always"`.
    Restart,
    /// Leave it down until the peer or the operator brings it up.
    Clear,
    /// Set it up again when traffic for it appears.
    Trap,
}

/// One peer as the node runs it.
#[derive(Debug, Clone)]
pub struct PeerPolicy {
    /// The IKE engine's settings (name, address, identities, PSK, proposals, selectors,
    /// lifetimes).
    pub ike: PeerConfig,
    /// When to bring it up.
    pub start: Start,
    /// How long after it is configured an `always` peer is first initiated (the pair may be
    /// up by then, started by the other side: a mesh lets one side of each pair go first).
    pub start_delay: Duration,
    /// Liveness check after this long without anything from the peer (`None`: off).
    pub dpd_delay: Option<Duration>,
    /// The peer is declared dead when a liveness check goes unanswered this long.
    pub dpd_timeout: Duration,
    /// What follows a death.
    pub dpd_action: DpdAction,
    /// Through-tunnel check: our ESP flows out, none comes back for this long although IKE
    /// answers → the CHILD SA is recreated (`None`: off).
    pub tunnel_check: Option<Duration>,
    /// CHILD SA volume limit in inner octets (rekeyed before, at random 80-90 %).
    pub child_lifetime_bytes: Option<u64>,
    /// CHILD SA limit in packets (rekeyed before, at random 80-90 %).
    pub child_lifetime_packets: Option<u64>,
}

impl PeerPolicy {
    /// A peer that we only answer, without DPD or through-tunnel checks or volume limits.
    pub fn passive(ike: PeerConfig) -> PeerPolicy {
        PeerPolicy {
            ike,
            start: Start::Passive,
            start_delay: Duration::ZERO,
            dpd_delay: None,
            dpd_timeout: Duration::from_secs(10),
            dpd_action: DpdAction::Clear,
            tunnel_check: None,
            child_lifetime_bytes: None,
            child_lifetime_packets: None,
        }
    }

    /// The operator's name for it.
    pub fn name(&self) -> &str {
        &self.ike.name
    }
}
