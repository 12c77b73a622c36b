//! A snapshot of the node for `meshsec status`: every peer with its state, SAs and counters.

use std::net::SocketAddr;
use std::time::Duration;

use meshsec_esp::Counters;
use meshsec_ike::{IkeSaInfo, State};
use meshsec_types::{PeerId, Timestamp};

use crate::backend::SaBackend;
use crate::node::Node;
use crate::peer::{InstalledChild, LifecycleCounters};
use crate::policy::Start;

/// Where a peer's tunnel stands, in one word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// The operator took it down.
    AdminDown,
    /// An IKE SA is up and a CHILD SA is installed.
    Established,
    /// An IKE SA is being set up (or up without a CHILD SA).
    Connecting,
    /// Nothing is up and it should be (`start = always`).
    Down,
    /// Nothing is up, nothing is asked (on-demand or passive).
    Idle,
}

impl LinkState {
    /// How `meshsec status` shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            LinkState::AdminDown => "down (admin)",
            LinkState::Established => "established",
            LinkState::Connecting => "connecting",
            LinkState::Down => "down",
            LinkState::Idle => "idle",
        }
    }
}

/// One installed CHILD SA with its traffic.
#[derive(Debug, Clone)]
pub struct ChildReport {
    /// As installed.
    pub child: InstalledChild,
    /// Its inbound half's counters.
    pub inbound: Counters,
    /// Its outbound half's counters.
    pub outbound: Counters,
}

/// One peer.
#[derive(Debug, Clone)]
pub struct PeerReport {
    /// Its id.
    pub id: PeerId,
    /// Its name.
    pub name: String,
    /// Its address and IKE port.
    pub address: SocketAddr,
    /// The identity it must present.
    pub identity: String,
    /// When it is started.
    pub start: Start,
    /// In one word.
    pub state: LinkState,
    /// How long ago the last IKE SA came up.
    pub last_handshake_ago: Option<Duration>,
    /// How long our last initiated handshake took.
    pub handshake_time: Option<Duration>,
    /// Totals over every SA: (inbound, outbound).
    pub traffic: (Counters, Counters),
    /// The last failure, explained.
    pub last_failure: Option<String>,
    /// The last refusal of an unauthenticated sender that looked like this peer, while it
    /// was not up (see `PeerState::last_refusal`).
    pub last_refusal: Option<String>,
    /// Lifecycle counters.
    pub counters: LifecycleCounters,
    /// How long ago anything authenticated came from it (when an SA exists).
    pub last_heard_ago: Option<Duration>,
    /// Its IKE SAs.
    pub ike_sas: Vec<IkeSaInfo>,
    /// Its CHILD SAs, oldest first.
    pub children: Vec<ChildReport>,
}

/// The whole node.
#[derive(Debug, Clone)]
pub struct NodeReport {
    /// Every configured peer.
    pub peers: Vec<PeerReport>,
    /// Drops that belong to no SA.
    pub unattributed: Counters,
    /// The IKE engine's errors by kind (dropped or refused messages, failed exchanges).
    pub ike_errors: Vec<(meshsec_ike::ErrorKind, u64)>,
    /// Reports of ESP with unknown SPIs beyond the per-second budget, not looked into.
    pub unknown_spi_suppressed: u64,
    /// Unauthenticated initiators refused (the reasons are in `ike_errors`).
    pub refused: u64,
    /// Of those, refusals not logged (the log is rate-limited).
    pub refusals_not_logged: u64,
}

impl<B: SaBackend> Node<B> {
    /// A snapshot for status displays.
    pub fn status(&self, now: Timestamp) -> NodeReport {
        let sas = self.ike.ike_sas();
        let mut peers = Vec::new();
        for (index, p) in self.peers.iter().enumerate() {
            let (Some(p), Some(id)) = (p, PeerId::from_index(index)) else {
                continue;
            };
            let mine: Vec<IkeSaInfo> = sas.iter().filter(|s| s.peer == Some(id)).cloned().collect();
            let established = mine.iter().any(|s| s.state == State::Established);
            let state = if p.admin_down {
                LinkState::AdminDown
            } else if established && !p.children.is_empty() {
                LinkState::Established
            } else if !mine.is_empty() {
                LinkState::Connecting
            } else if p.policy.start == Start::Always {
                LinkState::Down
            } else {
                LinkState::Idle
            };
            let traffic = self.backend.peer_counters(id);
            let children = p
                .children
                .iter()
                .map(|c| ChildReport {
                    child: c.clone(),
                    inbound: self.backend.inbound_counters(c.spi_in).unwrap_or_default(),
                    outbound: self
                        .backend
                        .outbound_counters(id, c.spi_out)
                        .unwrap_or_default(),
                })
                .collect();
            peers.push(PeerReport {
                id,
                name: p.policy.name().to_string(),
                address: p.policy.ike.remote_addr,
                identity: p.policy.ike.remote_id.to_string(),
                start: p.policy.start,
                state,
                last_handshake_ago: p.last_handshake.map(|t| now.duration_since(t)),
                handshake_time: p.handshake_time,
                traffic,
                last_failure: p.last_failure.clone(),
                last_refusal: p.last_refusal.clone(),
                counters: p.counters,
                last_heard_ago: (!mine.is_empty()).then(|| {
                    let esp = traffic.0.last_packet.unwrap_or(Timestamp::ZERO);
                    now.duration_since(p.last_heard.max(esp))
                }),
                ike_sas: mine,
                children,
            });
        }
        NodeReport {
            peers,
            unattributed: self.backend.unattributed_counters(),
            ike_errors: self.ike.error_counters().nonzero().collect(),
            unknown_spi_suppressed: self.unknown_spi_suppressed,
            refused: self.refusals.total,
            refusals_not_logged: self.refusals.suppressed,
        }
    }
}
