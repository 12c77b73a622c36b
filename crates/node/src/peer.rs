//! What the node keeps per peer besides the engines' state: when to (re)try, what the
//! operator asked (`down`), the policies installed for it, its CHILD SAs as installed in the
//! data plane, liveness bookkeeping, lifecycle counters and the last failure.

use std::time::Duration;

use meshsec_esp::spd::PolicyId;
use meshsec_ike::ChildMode;
use meshsec_types::timing::{FIRST_BACKOFF, MAX_BACKOFF};
use meshsec_types::{InboundSpi, OutboundSpi, Timestamp};
use meshsec_wire::payload::AddrSelector;

use crate::policy::PeerPolicy;

/// A CHILD SA pair as installed in the data plane.
#[derive(Debug, Clone)]
pub struct InstalledChild {
    /// Our inbound SPI.
    pub spi_in: InboundSpi,
    /// The outbound SPI.
    pub spi_out: OutboundSpi,
    /// Negotiated proposal.
    pub proposal: String,
    /// Tunnel or transport.
    pub mode: ChildMode,
    /// ESP in UDP.
    pub udp_encap: bool,
    /// Negotiated selectors.
    pub local_ts: Vec<AddrSelector>,
    /// Negotiated selectors, peer side.
    pub remote_ts: Vec<AddrSelector>,
    /// When.
    pub installed: Timestamp,
}

/// Lifecycle counters of one peer (shown by `meshsec status`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LifecycleCounters {
    /// CHILD SAs installed that replaced another (rekeys, ours and the peer's).
    pub child_rekeys: u64,
    /// IKE SA rekeys (ours and the peer's).
    pub ike_rekeys: u64,
    /// Reauthentications (by either side).
    pub reauths: u64,
    /// Rekey collisions (both ends rekeyed the same SA at once).
    pub rekey_collisions: u64,
    /// DPD checks sent.
    pub dpd_checks: u64,
    /// Times the peer was declared dead.
    pub deaths: u64,
    /// INVALID_SPI notifications we sent (its ESP reached us for no SA).
    pub invalid_spi_sent: u64,
    /// INVALID_SPI notifications the peer sent us (it lost a half of one of our SAs).
    pub invalid_spi_received: u64,
    /// CHILD SAs replaced because one half was lost (on either side).
    pub heals: u64,
    /// Negotiations with the peer that failed (each sets `last_failure`; a client waiting
    /// for an attempt tells a new failure from an old one of the same text by this count).
    pub failures: u64,
}

/// Dead peer detection, as far as it got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dpd {
    /// Nothing to check: the peer was heard from recently enough.
    Quiet,
    /// Our liveness check is unanswered since then.
    Checking(Timestamp),
}

/// The through-tunnel check, as far as it got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TunnelProbe {
    /// Nothing suspicious.
    Idle,
    /// Our ESP goes out, none comes back: an IKE liveness probe is out since then, to tell a
    /// dead peer from a broken CHILD SA.
    Probing(Timestamp),
}

/// The node's view of one configured peer.
#[derive(Debug)]
pub(crate) struct PeerState {
    /// Its settings.
    pub(crate) policy: PeerPolicy,
    /// `down` was asked: no automatic (re)starts until `up`.
    pub(crate) admin_down: bool,
    /// Current retry delay.
    pub(crate) backoff: Duration,
    /// When our current initiation started (for handshake latency).
    pub(crate) attempt_started: Option<Timestamp>,
    /// When the last IKE SA came up.
    pub(crate) last_handshake: Option<Timestamp>,
    /// How long our last initiated handshake took.
    pub(crate) handshake_time: Option<Duration>,
    /// The last failure, explained.
    pub(crate) last_failure: Option<String>,
    /// The last refusal of a sender that looked like this peer (its address, or the
    /// identity it claimed) but had not authenticated — e.g. an identity mismatch seen as
    /// responder. Kept apart from `last_failure`: anyone can cause it, so it is only shown,
    /// only while the peer is not up, and changes nothing else.
    pub(crate) last_refusal: Option<String>,
    /// SPD entries for its selectors.
    pub(crate) policies: Vec<PolicyId>,
    /// Installed CHILD SAs, newest last.
    pub(crate) children: Vec<InstalledChild>,
    /// Lifecycle counters.
    pub(crate) counters: LifecycleCounters,
    /// Last time anything authenticated came from the peer (IKE or ESP).
    pub(crate) last_heard: Timestamp,
    /// Dead peer detection.
    pub(crate) dpd: Dpd,
    /// The SAs went away because the peer was declared dead (`dpd_action` decides what next).
    pub(crate) dead: bool,
    /// Last time ESP from the peer was seen arriving.
    pub(crate) last_esp_in: Timestamp,
    /// Last time our ESP to the peer was seen leaving.
    pub(crate) last_esp_out: Timestamp,
    /// Last time an authenticated IKE message came from the peer.
    pub(crate) last_ike_alive: Timestamp,
    /// The through-tunnel check.
    pub(crate) probe: TunnelProbe,
}

impl PeerState {
    /// A peer not yet started.
    pub(crate) fn new(policy: PeerPolicy) -> PeerState {
        PeerState {
            policy,
            admin_down: false,
            backoff: FIRST_BACKOFF,
            attempt_started: None,
            last_handshake: None,
            handshake_time: None,
            last_failure: None,
            last_refusal: None,
            policies: Vec::new(),
            children: Vec::new(),
            counters: LifecycleCounters::default(),
            last_heard: Timestamp::ZERO,
            dpd: Dpd::Quiet,
            dead: false,
            last_esp_in: Timestamp::ZERO,
            last_esp_out: Timestamp::ZERO,
            last_ike_alive: Timestamp::ZERO,
            probe: TunnelProbe::Idle,
        }
    }

    /// When to try again after a refusal: after the current backoff, which doubles (a
    /// configuration mismatch will not fix itself every second).
    pub(crate) fn retry_after_refusal(&mut self, now: Timestamp) -> Timestamp {
        let at = now + self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        at
    }

    /// When to try again after an outage (no answer): soon, without growing the backoff, so
    /// that the tunnel is back within seconds of the path.
    pub(crate) fn retry_after_outage(now: Timestamp) -> Timestamp {
        now + FIRST_BACKOFF
    }

    /// Something authenticated came from the peer now.
    pub(crate) fn heard(&mut self, now: Timestamp) {
        self.last_heard = now;
        self.dpd = Dpd::Quiet;
    }

    /// ESP from the peer was opened at `at` (the data plane says when): a sign of life, and
    /// an answer to our DPD check if it came after it.
    pub(crate) fn esp_arrived(&mut self, at: Timestamp) {
        self.last_esp_in = self.last_esp_in.max(at);
        if at > self.last_heard {
            self.last_heard = at;
            if let Dpd::Checking(sent) = self.dpd
                && at >= sent
            {
                self.dpd = Dpd::Quiet;
            }
        }
    }
}
