//! Liveness and self-healing, and the data plane's reports:
//!
//! * Dead peer detection (RFC 7296 §2.4): a liveness check (empty INFORMATIONAL) only after
//!   `dpd_delay` without anything authenticated from the peer — IKE messages or ESP
//!   packets, so a busy tunnel costs no checks — and the peer declared dead when the check
//!   stays unanswered for `dpd_timeout`. Its SAs are then dropped without a message (it
//!   would not answer one) and `dpd_action` says what follows.
//! * Through-tunnel check: our ESP keeps going out but nothing comes back for
//!   `tunnel_check`; if IKE still answers a probe, the CHILD SA itself is broken (a peer
//!   that lost it without telling us) and is recreated.
//! * Half SAs: ESP from a peer with an SPI we do not know → INVALID_SPI to the peer, inside
//!   the IKE SA (the peer replaces that CHILD SA); traffic to a peer whose IKE SA is up but
//!   whose outbound SA is missing here → a new CHILD SA, and the broken one deleted.
//!
//! All of it runs on deadlines ("looks" at a peer), never on a sweep: a look reads the
//! peer's packet counters, acts, and sets the next look. Looks are rounded up to
//! [`LIVENESS_GRANULARITY`] so that a node with many idle peers wakes up at most once per
//! granule for all of them. (NAT keepalives are the IKE engine's own timers.)

use std::net::IpAddr;

use meshsec_esp::EspEvent;
use meshsec_types::timing::{LIVENESS_GRANULARITY, SENDING_WINDOW};
use meshsec_types::{InboundSpi, PeerId, Timestamp};

use crate::backend::SaBackend;
use crate::node::{Node, NodeEvent, PeerTimer};
use crate::peer::{Dpd, TunnelProbe};
use crate::policy::Start;

/// ESP with unknown SPIs looked into per second (the rest are counted).
const UNKNOWN_SPI_REPORTS_PER_SECOND: u32 = 20;

/// `t` on the liveness grid (see [`Timestamp::on_grid`]).
fn on_grid(t: Timestamp, now: Timestamp) -> Timestamp {
    t.on_grid(LIVENESS_GRANULARITY, now)
}

impl<B: SaBackend> Node<B> {
    /// A look at peer `id`: what its counters say, then DPD and the through-tunnel check.
    pub(crate) fn look(&mut self, now: Timestamp, id: PeerId) {
        if self.ike.established_with(id) == 0 {
            return; // the next IKE SA sets the next look
        }
        let (cin, cout) = self.backend.peer_counters(id);
        let Some(p) = self.peer(id) else { return };
        if let Some(t) = cin.last_packet {
            p.esp_arrived(t);
        }
        if let Some(t) = cout.last_packet {
            p.last_esp_out = p.last_esp_out.max(t);
        }
        self.tunnel_check(now, id);
        self.dpd(now, id);
        self.schedule_look(now, id);
    }

    fn dpd(&mut self, now: Timestamp, id: PeerId) {
        let Some(p) = self.peer(id) else { return };
        let Some(delay) = p.policy.dpd_delay else {
            return;
        };
        match p.dpd {
            Dpd::Quiet if now.duration_since(p.last_heard) >= delay => {
                p.dpd = Dpd::Checking(now);
                p.counters.dpd_checks += 1;
                let name = p.policy.name().to_string();
                tracing::debug!("peer {name}: nothing heard for {delay:?}: DPD check");
                let _ = self.ike.check_liveness(now, id);
            }
            Dpd::Checking(sent) if now.duration_since(sent) >= p.policy.dpd_timeout => {
                p.dpd = Dpd::Quiet;
                p.counters.deaths += 1;
                p.dead = true;
                let (name, timeout, action) = (
                    p.policy.name().to_string(),
                    p.policy.dpd_timeout,
                    p.policy.dpd_action,
                );
                tracing::warn!(
                    "peer {name}: declared dead (DPD unanswered for {}s); dpd_action = {action:?}",
                    timeout.as_secs()
                );
                self.record(NodeEvent::PeerDead { peer: id });
                let _ = self
                    .ike
                    .drop_ike_sa(id, "the peer is dead (DPD unanswered)");
            }
            _ => {}
        }
    }

    /// Our ESP keeps going out but nothing comes back for `tunnel_check`: probe IKE.
    fn tunnel_check(&mut self, now: Timestamp, id: PeerId) {
        let Some(p) = self.peer(id) else { return };
        let Some(limit) = p.policy.tunnel_check else {
            return;
        };
        let sending = now.duration_since(p.last_esp_out) < SENDING_WINDOW;
        // Silence counts from the later of the last ESP in and the last time we acted.
        let silent = now.duration_since(p.last_esp_in) >= limit;
        match p.probe {
            TunnelProbe::Idle if sending && silent && !p.children.is_empty() => {
                p.probe = TunnelProbe::Probing(now);
                let _ = self.ike.check_liveness(now, id);
            }
            // Unanswered: DPD takes it from here.
            TunnelProbe::Probing(sent) if now.duration_since(sent) >= p.policy.dpd_timeout => {
                p.probe = TunnelProbe::Idle;
            }
            _ => {}
        }
    }

    /// IKE answered (or spoke): if the through-tunnel probe was waiting for that and ESP is
    /// still silent, the CHILD SA is broken: it is recreated.
    pub(crate) fn on_ike_alive(&mut self, now: Timestamp, id: PeerId) {
        let (cin, _) = self.backend.peer_counters(id);
        let Some(p) = self.peer(id) else { return };
        let (TunnelProbe::Probing(sent), Some(limit)) = (p.probe, p.policy.tunnel_check) else {
            return;
        };
        if p.last_ike_alive <= sent {
            return;
        }
        if let Some(t) = cin.last_packet {
            p.esp_arrived(t);
        }
        p.probe = TunnelProbe::Idle;
        if now.duration_since(p.last_esp_in) < limit {
            return;
        }
        // IKE answers, ESP does not: recreate the CHILD SA.
        p.last_esp_in = now;
        p.counters.heals += 1;
        let broken: Vec<InboundSpi> = p.children.iter().map(|c| c.spi_in).collect();
        let name = p.policy.name().to_string();
        tracing::warn!(
            "peer {name}: no ESP from it for {}s while we send, although IKE answers: recreating the CHILD SA",
            limit.as_secs()
        );
        self.record(NodeEvent::TunnelBroken { peer: id });
        let _ = self.ike.create_child_sa(now, id);
        for inbound in broken {
            let _ = self.ike.delete_child_sa_spi(now, id, inbound);
        }
    }

    /// Sets the next look at peer `id` from its state: when DPD is due or overdue, when an
    /// unanswered probe times out, every granule while we send (the through-tunnel check
    /// watches what comes back). An idle peer costs nothing: the data plane reports when
    /// sending starts again.
    pub(crate) fn schedule_look(&mut self, now: Timestamp, id: PeerId) {
        let spread = self.jitter();
        let Some(p) = self.peer_ref(id) else { return };
        let dpd = match p.dpd {
            Dpd::Checking(sent) => Some(sent + p.policy.dpd_timeout),
            // Up to 10 % later, at random: two ends with the same delay then do not both
            // check at once (the first check answers the other end's question too).
            Dpd::Quiet => p
                .policy
                .dpd_delay
                .map(|d| p.last_heard + d + d.mul_f64(0.1 * f64::from(spread) / 255.0)),
        };
        let tunnel = match (p.probe, p.policy.tunnel_check) {
            (TunnelProbe::Probing(sent), _) => Some(sent + p.policy.dpd_timeout),
            (TunnelProbe::Idle, Some(_)) if now.duration_since(p.last_esp_out) < SENDING_WINDOW => {
                Some(now + LIVENESS_GRANULARITY)
            }
            // Idle: the data plane tells us when sending starts (OutboundResumed).
            (TunnelProbe::Idle, _) => None,
        };
        let next = [dpd, tunnel].into_iter().flatten().min();
        self.timers
            .set((id, PeerTimer::Look), next.map(|t| on_grid(t, now)));
    }

    /// Events and unknown SPIs the data plane holds for us.
    pub(crate) fn backend_reports(&mut self, now: Timestamp) {
        while let Some(e) = self.backend.poll_event() {
            self.on_esp_event(now, e);
        }
        for (from, spi) in self.backend.unknown_spis(now) {
            self.on_unknown_spi(now, from, spi);
        }
    }

    /// ESP with an unknown SPI arrived from `from`: if it is a peer we share an IKE SA with,
    /// tell it (the engine rate-limits); strangers get nothing.
    pub(crate) fn on_unknown_spi(&mut self, now: Timestamp, from: IpAddr, spi: InboundSpi) {
        // Strangers first: ESP with random SPIs from random (spoofed) sources must not use up
        // the budget a real peer's half SA needs to be healed. (The data plane bounds how many
        // reports come at all: its parking lot and report queue are bounded.)
        let Some(id) = self.ike.established_peer_at(from) else {
            return;
        };
        // Reports about peers cost a bounded amount of work here; the engine rate-limits the
        // notifications per peer on top.
        let second = now.since_epoch().as_secs();
        if self.unknown_spi_budget.0 != second {
            self.unknown_spi_budget = (second, 0);
        }
        if self.unknown_spi_budget.1 >= UNKNOWN_SPI_REPORTS_PER_SECOND {
            self.unknown_spi_suppressed += 1;
            return;
        }
        self.unknown_spi_budget.1 += 1;
        if self.ike.notify_invalid_spi(now, id, spi).unwrap_or(false) {
            let name = self.peer_name(id);
            tracing::warn!("peer {name}: ESP with unknown SPI {spi}: told it (INVALID_SPI)");
            if let Some(p) = self.peer(id) {
                p.counters.invalid_spi_sent += 1;
            }
            self.record(NodeEvent::InvalidSpiSent { peer: id, spi });
        }
    }

    /// An event of the data plane.
    pub(crate) fn on_esp_event(&mut self, now: Timestamp, e: EspEvent) {
        match e {
            EspEvent::Acquire { peer: id, packet } => {
                let Some(p) = self.peer_ref(id) else { return };
                let start = p.policy.start;
                tracing::info!(
                    "peer {}: traffic to {} needs an SA (acquire)",
                    p.policy.name(),
                    packet.dst
                );
                if self.ike.established_with(id) > 0 {
                    // The IKE SA is up but the data plane has no outbound SA: a half was
                    // lost here.
                    self.heal_missing_outbound(now, id);
                } else if start != Start::Passive {
                    self.try_initiate(now, id);
                }
            }
            EspEvent::SoftExpired { sa, peer, .. } => {
                // A byte, packet or AEAD usage limit: time to rekey (time limits are the
                // engine's own).
                tracing::info!(
                    "peer {}: SA {sa:?} reached its soft limit ({e:?}): rekeying",
                    self.peer_name(peer)
                );
                let _ = self.ike.rekey_child_sa(now, peer);
            }
            EspEvent::OutboundResumed { peer } => {
                // Traffic to the peer (re)started: the through-tunnel check watches it.
                if let Some(p) = self.peer(peer)
                    && p.policy.tunnel_check.is_some()
                {
                    p.last_esp_out = now;
                    if self.ike.established_with(peer) > 0 {
                        self.schedule_look(now, peer);
                    }
                }
            }
            EspEvent::StandbyPromoted { peer, spi } => {
                tracing::info!(
                    "peer {}: outbound SA {spi} seals now (the peer sent on its pair)",
                    self.peer_name(peer)
                );
            }
            EspEvent::HardExpired { sa, peer, .. } => {
                tracing::warn!(
                    "peer {}: SA {sa:?} reached a hard limit ({e:?}) before it was rekeyed",
                    self.peer_name(peer)
                );
            }
        }
    }

    /// The IKE SA with `id` is up but no outbound SA is in the data plane: create a new
    /// CHILD SA and delete the ones whose outbound half is gone.
    fn heal_missing_outbound(&mut self, now: Timestamp, id: PeerId) {
        let Some(p) = self.peer_ref(id) else { return };
        let broken: Vec<InboundSpi> = p
            .children
            .iter()
            .filter(|c| self.backend.outbound_counters(id, c.spi_out).is_none())
            .map(|c| c.spi_in)
            .collect();
        if broken.is_empty() && !p.children.is_empty() {
            return;
        }
        tracing::warn!(
            "peer {}: no outbound SA although the IKE SA is up: creating a CHILD SA{}",
            p.policy.name(),
            if broken.is_empty() {
                String::new()
            } else {
                format!(", deleting {} broken", broken.len())
            }
        );
        self.record(NodeEvent::OutboundLost { peer: id });
        let _ = self.ike.create_child_sa(now, id);
        for inbound in broken {
            let _ = self.ike.delete_child_sa_spi(now, id, inbound);
        }
        if let Some(p) = self.peer(id) {
            p.counters.heals += 1;
        }
    }
}
