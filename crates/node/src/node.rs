//! The node: its state, its inputs and outputs. What happens on each input lives in the
//! modules named after it (`lifecycle` for IKE events, `liveness` for the data plane's
//! reports and the liveness timers, `command` for the operator).

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};

use meshsec_crypto::rng::Random;
use meshsec_esp::EspEvent;
use meshsec_ike::{Endpoint, Event, Transmit};
use meshsec_types::{Deadlines, InboundSpi, PeerId, Timestamp};
use meshsec_wire::payload::AddrSelector;

use crate::backend::SaBackend;
use crate::peer::PeerState;
use crate::refusals::RefusalLog;

/// Lifecycle events kept for [`Node::poll_event`].
const MAX_EVENTS: usize = 4096;

/// Something for the operating system to do (the daemon does it; the simulator plays it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OsAction {
    /// Route the peer's side of its selectors into the tunnel, with a preferred source
    /// inside ours (so that locally generated packets carry an address the policy protects).
    AddRoutes {
        /// The peer.
        peer: PeerId,
        /// Our side's selectors.
        local_ts: Vec<AddrSelector>,
        /// The peer's side's selectors: the routes.
        remote_ts: Vec<AddrSelector>,
    },
    /// Remove the routes added for the peer.
    RemoveRoutes {
        /// The peer.
        peer: PeerId,
    },
    /// Inner packets for the TUN device: ESP that arrived before its SA, opened now.
    Deliver(Vec<Vec<u8>>),
}

/// A lifecycle transition, after the node acted on it (for tests and tools; the node has
/// already logged and counted it).
#[derive(Debug, Clone)]
pub enum NodeEvent {
    /// An event of the IKE engine.
    Ike(Box<Event>),
    /// We started an IKE SA with the peer (first time, retry or restart).
    Initiating {
        /// The peer.
        peer: PeerId,
    },
    /// The peer left our liveness check unanswered for `dpd_timeout`: its SAs were dropped.
    PeerDead {
        /// The peer.
        peer: PeerId,
    },
    /// Our ESP went out, none came back, IKE answered: the CHILD SA is being recreated.
    TunnelBroken {
        /// The peer.
        peer: PeerId,
    },
    /// Traffic for the peer found no outbound SA although the IKE SA is up: a CHILD SA is
    /// being created (and the broken one deleted).
    OutboundLost {
        /// The peer.
        peer: PeerId,
    },
    /// ESP from the peer carried an SPI we have no SA for: the peer was told.
    InvalidSpiSent {
        /// The peer.
        peer: PeerId,
        /// The SPI.
        spi: InboundSpi,
    },
}

/// The timers the node keeps per peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum PeerTimer {
    /// Initiate an IKE SA (start, retry, restart).
    Attempt,
    /// Look at the peer's liveness: DPD, the through-tunnel check.
    Look,
}

/// One host: its IKE engine, its data plane and the glue between them.
pub struct Node<B: SaBackend> {
    pub(crate) ike: Endpoint,
    pub(crate) backend: B,
    /// Indexed by [`PeerId`]; `None` once removed (ids are never reused).
    pub(crate) peers: Vec<Option<PeerState>>,
    pub(crate) rng: Box<dyn Random + Send>,
    /// Per-peer deadlines: the only place they are kept.
    pub(crate) timers: Deadlines<(PeerId, PeerTimer)>,
    /// Inbound SAs of deleted CHILD SAs, removed from the data plane at their deadline.
    pub(crate) retiring: Deadlines<InboundSpi>,
    pub(crate) transmits: VecDeque<Transmit>,
    pub(crate) os: VecDeque<OsAction>,
    pub(crate) events: VecDeque<NodeEvent>,
    /// The latest time seen in an input.
    pub(crate) now: Timestamp,
    /// Unknown-SPI reports looked into this second: (second, count).
    pub(crate) unknown_spi_budget: (u64, u32),
    /// Unknown-SPI reports not looked into (over the budget).
    pub(crate) unknown_spi_suppressed: u64,
    /// Lifecycle events not polled and dropped (the queue is bounded).
    pub(crate) events_dropped: u64,
    /// Refused unauthenticated initiators: counted, and logged within bounds.
    pub(crate) refusals: RefusalLog,
}

impl<B: SaBackend> core::fmt::Debug for Node<B> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Node")
            .field("ike", &self.ike)
            .field("peers", &self.peers.iter().flatten().count())
            .finish()
    }
}

impl<B: SaBackend> Node<B> {
    /// A node over `ike` (its peers are added with [`crate::Command::AddPeer`]) and
    /// `backend`; `rng` draws the data plane's IV masks and lifetime jitter.
    pub fn new(ike: Endpoint, backend: B, rng: Box<dyn Random + Send>) -> Self {
        Node {
            ike,
            backend,
            peers: Vec::new(),
            rng,
            timers: Deadlines::new(),
            retiring: Deadlines::new(),
            transmits: VecDeque::new(),
            os: VecDeque::new(),
            events: VecDeque::new(),
            now: Timestamp::ZERO,
            unknown_spi_budget: (0, 0),
            unknown_spi_suppressed: 0,
            events_dropped: 0,
            refusals: RefusalLog::default(),
        }
    }

    /// An IKE datagram from `from` arrived at our `to` (whose port says which socket: 500,
    /// or 4500 with the non-ESP marker already removed).
    pub fn handle_ike_datagram(
        &mut self,
        now: Timestamp,
        from: SocketAddr,
        to: SocketAddr,
        bytes: &[u8],
    ) {
        self.now = now;
        self.ike.handle_datagram(now, from, to, bytes);
        self.drain(now);
    }

    /// An event of the data plane (acquire, lifetime), forwarded by the data path.
    pub fn handle_esp_event(&mut self, now: Timestamp, e: EspEvent) {
        self.now = now;
        self.on_esp_event(now, e);
        self.drain(now);
    }

    /// ESP with an SPI we have no SA for came from `from`.
    pub fn handle_unknown_spi(&mut self, now: Timestamp, from: IpAddr, spi: InboundSpi) {
        self.now = now;
        self.on_unknown_spi(now, from, spi);
        self.drain(now);
    }

    /// Takes what the data plane has to report (events, unknown SPIs) from the backend
    /// itself: for a data path that only signals "something happened".
    pub fn handle_backend_reports(&mut self, now: Timestamp) {
        self.now = now;
        self.backend_reports(now);
        self.drain(now);
    }

    /// Acts on every deadline due at `now` (the engine's, the data plane's, the node's).
    pub fn handle_timeout(&mut self, now: Timestamp) {
        self.now = now;
        self.ike.handle_timeout(now);
        self.backend.handle_timeout(now);
        self.backend_reports(now);
        while let Some(spi) = self.retiring.pop_due(now) {
            self.backend.remove_inbound(spi);
        }
        while let Some((id, timer)) = self.timers.pop_due(now) {
            match timer {
                PeerTimer::Attempt => self.try_initiate(now, id),
                PeerTimer::Look => self.look(now, id),
            }
        }
        self.drain(now);
    }

    /// When [`Node::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        [
            self.ike.poll_timeout(),
            self.backend.poll_timeout(),
            self.timers.next(),
            self.retiring.next(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        // The engine may have been driven directly (tests): apply what follows first.
        self.drain(self.now);
        self.transmits.pop_front()
    }

    /// The next thing for the operating system to do.
    pub fn poll_os(&mut self) -> Option<OsAction> {
        self.drain(self.now);
        self.os.pop_front()
    }

    /// The next lifecycle transition (already logged and counted).
    pub fn poll_event(&mut self) -> Option<NodeEvent> {
        self.drain(self.now);
        self.events.pop_front()
    }

    /// The IKE engine (read-only views: SAs, counters).
    pub fn ike(&self) -> &Endpoint {
        &self.ike
    }

    /// The IKE engine, to drive it directly (tests); the node applies what follows at its
    /// next call.
    pub fn ike_mut(&mut self) -> &mut Endpoint {
        &mut self.ike
    }

    /// The data plane.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The data plane, to seal and open packets (the simulator's data path) or inject
    /// faults (tests).
    pub fn backend_mut(&mut self) -> &mut B {
        &mut self.backend
    }

    /// The CHILD SAs of `peer` as installed (newest last); deleted ones whose inbound half is
    /// still in its grace are not among them.
    pub fn children(&self, peer: PeerId) -> Vec<crate::InstalledChild> {
        self.peer_ref(peer)
            .map(|p| p.children.clone())
            .unwrap_or_default()
    }

    /// Inbound SAs of deleted CHILD SAs still opening (in their grace).
    pub fn inbound_in_grace(&self) -> usize {
        self.retiring.len()
    }

    /// The peer configured under `name`.
    pub fn peer_by_name(&self, name: &str) -> Option<PeerId> {
        self.peers
            .iter()
            .position(|p| p.as_ref().is_some_and(|p| p.policy.name() == name))
            .and_then(PeerId::from_index)
    }

    /// The names of the configured peers.
    pub fn peer_names(&self) -> Vec<String> {
        self.peers
            .iter()
            .flatten()
            .map(|p| p.policy.name().to_string())
            .collect()
    }

    pub(crate) fn peer(&mut self, id: PeerId) -> Option<&mut PeerState> {
        self.peers.get_mut(id.index()).and_then(Option::as_mut)
    }

    pub(crate) fn peer_ref(&self, id: PeerId) -> Option<&PeerState> {
        self.peers.get(id.index()).and_then(Option::as_ref)
    }

    /// The name of peer `id` (its id if it is gone).
    pub fn peer_name(&self, id: PeerId) -> String {
        self.peer_ref(id)
            .map_or_else(|| id.to_string(), |p| p.policy.name().to_string())
    }

    /// Keeps a lifecycle event for [`Node::poll_event`]; the oldest is dropped (and counted)
    /// when nobody polls.
    pub(crate) fn record(&mut self, e: NodeEvent) {
        if self.events.len() >= MAX_EVENTS {
            self.events.pop_front();
            self.events_dropped += 1;
        }
        self.events.push_back(e);
    }

    /// Applies the engine's events (installs, removals, restarts...) and queues its
    /// datagrams, until it has nothing more to say. Events first: a new inbound SA must be
    /// in the data plane before the answer that lets the peer use it leaves.
    pub(crate) fn drain(&mut self, now: Timestamp) {
        loop {
            let mut idle = true;
            while let Some(e) = self.ike.poll_event() {
                idle = false;
                self.on_event(now, e);
            }
            while let Some(t) = self.ike.poll_transmit() {
                idle = false;
                self.transmits.push_back(t);
            }
            if idle {
                return;
            }
        }
    }

    /// Draws one random octet (lifetime jitter); 128 if the generator fails.
    pub(crate) fn jitter(&mut self) -> u8 {
        let mut b = [128u8];
        let _ = self.rng.fill(&mut b);
        let [j] = b;
        j
    }
}
