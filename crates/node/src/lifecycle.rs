//! IKE events and what follows from them: the one place (`on_event`) where every lifecycle
//! transition of the engine is logged, counted and turned into data-plane actions; and the
//! peer's life around it — configured, initiated, restarted with backoff.
//!
//! Make-before-break (RFC 7296 §2.8) as the data plane sees it: a new CHILD SA's inbound half
//! is installed before the message that lets the peer use it leaves (the node applies events
//! before handing out datagrams); its outbound half seals at once, or waits as a standby
//! when we answered the peer's rekey (the peer has the new inbound SA only once it has our
//! answer); an outbound half stops sealing when our Delete of it leaves
//! (`OutboundRetired`); a deleted CHILD SA's inbound half keeps opening for
//! [`INBOUND_GRACE`], for ESP the peer sealed just before it switched.

use meshsec_ike::{ChildSa, Event, Failure};
use meshsec_types::timing::{FIRST_BACKOFF, INBOUND_GRACE};
use meshsec_types::{InboundSpi, OutboundSpi, PeerId, Timestamp};

use crate::backend::{Placement, SaBackend};
use crate::node::{Node, NodeEvent, OsAction, PeerTimer};
use crate::peer::{InstalledChild, PeerState};
use crate::policy::{DpdAction, PeerPolicy, Start};
use crate::sa_params::{policies, sa_params, volume_lifetime};

impl<B: SaBackend> Node<B> {
    /// The chokepoint: every event of the IKE engine passes here once, is logged and
    /// counted, and acted on.
    pub(crate) fn on_event(&mut self, now: Timestamp, e: Event) {
        match &e {
            Event::IkeSaEstablished {
                peer,
                local_spi,
                udp_encap,
                nat,
            } => {
                let name = self.peer_name(*peer);
                if let Some(p) = self.peer(*peer) {
                    p.last_handshake = Some(now);
                    p.heard(now);
                    p.last_ike_alive = now;
                    p.dead = false;
                    // A collision brings up two SAs; the first one ends our attempt.
                    if let Some(s) = p.attempt_started.take() {
                        p.handshake_time = Some(now.duration_since(s));
                    }
                    p.backoff = FIRST_BACKOFF;
                    p.last_failure = None;
                    p.last_refusal = None;
                }
                self.timers.set((*peer, PeerTimer::Attempt), None);
                self.schedule_look(now, *peer);
                let path = match (nat.describe(), udp_encap) {
                    (Some(nat), _) => format!(" ({nat}; ESP in UDP)"),
                    (None, true) => " (ESP in UDP, no NAT)".to_string(),
                    (None, false) => String::new(),
                };
                tracing::info!("peer {name}: IKE SA {local_spi} established{path}");
            }
            Event::InstallChildSa(c) => self.install_child(now, c),
            Event::DeleteChildSa {
                peer,
                inbound_spi,
                outbound_spi,
            } => self.remove_child(now, *peer, *inbound_spi, *outbound_spi),
            Event::IkeSaDeleted {
                peer,
                local_spi,
                reason,
            } => {
                tracing::info!(
                    "peer {}: IKE SA {local_spi} deleted: {reason}",
                    self.peer_name(*peer)
                );
                self.maybe_restart(now, *peer, false);
            }
            Event::Failed { peer, failure } => match peer {
                Some(id) => {
                    tracing::warn!("peer {}: {failure}", self.peer_name(*id));
                    if let Some(p) = self.peer(*id) {
                        p.last_failure = Some(failure.to_string());
                        p.attempt_started = None;
                        p.counters.failures += 1;
                    }
                    self.drop_childless_sa(now, *id);
                    // No answer is an outage: retry soon. A refusal is a mismatch: back off.
                    let unanswered = matches!(failure, Failure::Timeout { .. });
                    self.maybe_restart(now, *id, unanswered);
                }
                None => tracing::warn!("unknown peer: {failure}"),
            },
            Event::Refused {
                from,
                claimed,
                failure,
            } => {
                // Not the peer's word: no peer's status or timers change. Only what is logged
                // is kept as an event too (a flood must not push real events out).
                let Some(held_back) = self.refusals.admit(now, from.ip()) else {
                    return;
                };
                // Shown with the peer it looked like, apart from its own failures, and only
                // while that peer is not up (the log line is the same, rate-limited).
                if let Some(id) = claimed {
                    let up = self
                        .ike
                        .peer_sa_states(*id)
                        .any(|s| s == meshsec_ike::State::Established);
                    if let Some(p) = self.peer(*id).filter(|_| !up) {
                        p.last_refusal =
                            Some(format!("{failure} (from {from}, not authenticated)"));
                    }
                }
                let claimed = claimed
                    .map(|p| format!(" (as peer {})", self.peer_name(p)))
                    .unwrap_or_default();
                let held_back = match held_back {
                    0 => String::new(),
                    n => format!(" [{n} more refusals since the last line not logged]"),
                };
                tracing::warn!("refused {from}{claimed}: {failure}{held_back}");
            }
            Event::IkeSaRekeyed {
                peer,
                old_spi,
                new_spi,
            } => {
                tracing::info!(
                    "peer {}: IKE SA {old_spi} rekeyed, now {new_spi}",
                    self.peer_name(*peer)
                );
                if let Some(p) = self.peer(*peer) {
                    p.counters.ike_rekeys += 1;
                }
            }
            Event::IkeSaReauthenticated {
                peer,
                old_spi,
                new_spi,
            } => {
                tracing::info!(
                    "peer {}: IKE SA {old_spi} reauthenticated, replaced by {new_spi}",
                    self.peer_name(*peer)
                );
                if let Some(p) = self.peer(*peer) {
                    p.counters.reauths += 1;
                }
            }
            Event::RekeyCollision { peer, ike, won } => {
                tracing::info!(
                    "peer {}: {} rekey collision (both ends rekeyed at once): {}",
                    self.peer_name(*peer),
                    if *ike { "IKE SA" } else { "CHILD SA" },
                    if *won {
                        "ours survives"
                    } else {
                        "the peer's survives"
                    }
                );
                if let Some(p) = self.peer(*peer) {
                    p.counters.rekey_collisions += 1;
                }
            }
            Event::HealingChildSa {
                peer,
                inbound_spi,
                outbound_spi,
            } => {
                tracing::warn!(
                    "peer {}: it lost the inbound half of CHILD SA out {outbound_spi} \
                     (INVALID_SPI): replacing in {inbound_spi}",
                    self.peer_name(*peer)
                );
                if let Some(p) = self.peer(*peer) {
                    p.counters.heals += 1;
                    p.counters.invalid_spi_received += 1;
                }
            }
            Event::OutboundRetired { peer, outbound_spi } => {
                self.backend.remove_outbound(*peer, *outbound_spi);
            }
            Event::PeerAlive { peer } => {
                if let Some(p) = self.peer(*peer) {
                    p.heard(now);
                    p.last_ike_alive = now;
                }
                self.on_ike_alive(now, *peer);
            }
            Event::MessageIgnored {
                peer,
                kind,
                exchange,
                response,
            } => {
                tracing::debug!(
                    "peer {}: its authenticated {exchange} {} was not acted on: {kind} (counted in ike_errors)",
                    self.peer_name(*peer),
                    if *response { "response" } else { "request" }
                );
            }
        }
        self.record(NodeEvent::Ike(Box::new(e)));
    }

    /// Installs a negotiated CHILD SA pair: the inbound half (and the ESP that waited for
    /// it), then the outbound half, active or standby.
    fn install_child(&mut self, now: Timestamp, c: &ChildSa) {
        let mut mask = [0u8; 8];
        if self.rng.fill(&mut mask).is_err() {
            tracing::error!("the random number generator failed; CHILD SA not installed");
            return;
        }
        let jitter = self.jitter();
        let lifetime = self
            .peer_ref(c.peer)
            .map(|p| volume_lifetime(&p.policy, jitter))
            .unwrap_or_default();
        let (inbound, outbound) = sa_params(c, u64::from_ne_bytes(mask), lifetime);
        let name = self.peer_name(c.peer);
        if let Err(e) = self.backend.install_inbound(now, inbound) {
            tracing::error!("peer {name}: cannot install CHILD SA: {e}");
            return;
        }
        // ESP the peer sealed with it before we had it (it answered our request and switched
        // at once) waited for it.
        let mut early = Vec::new();
        self.backend
            .open_parked(now, c.inbound.spi, &mut |p| early.push(p.to_vec()));
        if !early.is_empty() {
            tracing::debug!(
                "peer {name}: {} packets that arrived before CHILD SA in {} delivered",
                early.len(),
                c.inbound.spi
            );
            self.os.push_back(OsAction::Deliver(early));
        }
        let placement = if c.outbound_standby {
            Placement::Standby {
                pair: c.inbound.spi,
            }
        } else {
            Placement::Active
        };
        if let Err(e) = self
            .backend
            .install_outbound(now, c.peer, outbound, placement)
        {
            tracing::error!("peer {name}: cannot install CHILD SA: {e}");
            return;
        }
        let rekey = c
            .rekey_of
            .map(|old| format!(", replaces in {old}"))
            .unwrap_or_default();
        tracing::info!(
            "peer {name}: CHILD SA in {} out {} installed ({}, {}{rekey})",
            c.inbound.spi,
            c.outbound.spi,
            c.proposal,
            if c.udp_encap { "ESP in UDP" } else { "ESP" }
        );
        if let Some(p) = self.peer(c.peer) {
            if c.rekey_of.is_some() {
                p.counters.child_rekeys += 1;
            }
            // A new CHILD SA gets a fresh window before the through-tunnel check judges it.
            p.last_esp_in = now;
            p.children.push(InstalledChild {
                spi_in: c.inbound.spi,
                spi_out: c.outbound.spi,
                proposal: c.proposal.clone(),
                mode: c.mode,
                udp_encap: c.udp_encap,
                local_ts: c.local_ts.clone(),
                remote_ts: c.remote_ts.clone(),
                installed: now,
            });
        }
    }

    /// Removes a CHILD SA pair: the outbound half now (if it was sealing, the pair installed
    /// before it takes over), the inbound half after its grace.
    fn remove_child(
        &mut self,
        now: Timestamp,
        peer: PeerId,
        spi_in: InboundSpi,
        spi_out: OutboundSpi,
    ) {
        self.backend.remove_outbound(peer, spi_out);
        self.retiring.set(spi_in, Some(now + INBOUND_GRACE));
        tracing::info!(
            "peer {}: CHILD SA in {spi_in} out {spi_out} removed",
            self.peer_name(peer)
        );
        if let Some(p) = self.peer(peer) {
            p.children.retain(|c| c.spi_in != spi_in);
        }
    }

    /// Starts an IKE SA with `id` unless one exists or is being set up, or the operator
    /// took the peer down.
    pub(crate) fn try_initiate(&mut self, now: Timestamp, id: PeerId) {
        self.timers.set((id, PeerTimer::Attempt), None);
        let busy = self.ike.peer_sa_states(id).next().is_some();
        let Some(p) = self.peer(id) else { return };
        if busy || p.admin_down {
            return;
        }
        p.attempt_started = Some(now);
        let name = p.policy.name().to_string();
        if let Err(e) = self.ike.initiate(now, id) {
            tracing::error!("peer {name}: cannot initiate: {e}");
            let at = p_retry(self.peer(id), now);
            self.timers.set((id, PeerTimer::Attempt), at);
        } else {
            tracing::info!("peer {name}: initiating IKE SA");
            self.record(NodeEvent::Initiating { peer: id });
        }
    }

    /// After a failure: an IKE SA we initiated that is up but whose CHILD SA was refused
    /// (proposals, selectors) carries nothing and would keep the peer "connecting" for good.
    /// It is deleted; its deletion schedules the next attempt with the refusal backoff, so
    /// the mismatch is retried (and reported again) instead of forgotten.
    fn drop_childless_sa(&mut self, now: Timestamp, id: PeerId) {
        use meshsec_ike::{Role, State};
        let childless = self.peer(id).is_some_and(|p| p.children.is_empty())
            && self.ike.peer_sas(id).iter().any(|s| {
                s.state == State::Established && s.role == Role::Initiator && s.children.is_empty()
            });
        if childless {
            let retry = match self.peer_ref(id).map(|p| p.policy.start) {
                Some(Start::Always) => "; retrying with backoff",
                _ => "",
            };
            tracing::info!(
                "peer {}: deleting the IKE SA whose CHILD SA was refused{retry}",
                self.peer_name(id)
            );
            if let Err(e) = self.ike.delete_ike_sa(now, id) {
                tracing::warn!("peer {}: cannot delete the IKE SA: {e}", self.peer_name(id));
            }
        }
    }

    /// After an SA went away or an attempt failed: `always` peers are re-initiated (soon
    /// after an outage, with growing backoff after a refusal) unless another IKE SA with
    /// them is up or being set up; after a death, `dpd_action` decides.
    pub(crate) fn maybe_restart(&mut self, now: Timestamp, id: PeerId, unanswered: bool) {
        use meshsec_ike::State;
        let other = self
            .ike
            .peer_sa_states(id)
            .any(|s| s != State::ExpectAuthRequest);
        let scheduled = self.timers.get((id, PeerTimer::Attempt)).is_some();
        let Some(p) = self.peer(id) else { return };
        let wanted = if p.dead {
            p.policy.dpd_action == DpdAction::Restart
        } else {
            p.policy.start == Start::Always
        };
        if !wanted || p.admin_down || other || scheduled {
            return;
        }
        let at = if unanswered || p.dead {
            PeerState::retry_after_outage(now)
        } else {
            p.retry_after_refusal(now)
        };
        self.timers.set((id, PeerTimer::Attempt), Some(at));
    }

    /// Adds a peer: its policies into the data plane, its routes to the OS, and a start if
    /// it is `always`.
    pub(crate) fn configure_peer(&mut self, now: Timestamp, id: PeerId, policy: PeerPolicy) {
        let ids = policies(&policy.ike.local_ts, &policy.ike.remote_ts, id)
            .into_iter()
            .map(|pol| self.backend.add_policy(pol))
            .collect();
        self.os.push_back(OsAction::AddRoutes {
            peer: id,
            local_ts: policy.ike.local_ts.clone(),
            remote_ts: policy.ike.remote_ts.clone(),
        });
        let always = policy.start == Start::Always;
        let first = now + policy.start_delay;
        let mut state = PeerState::new(policy);
        state.policies = ids;
        let slot = id.index();
        if self.peers.len() <= slot {
            self.peers.resize_with(slot + 1, || None);
        }
        if let Some(s) = self.peers.get_mut(slot) {
            *s = Some(state);
        }
        if always {
            self.timers.set((id, PeerTimer::Attempt), Some(first));
        }
    }

    /// Removes a peer's policies and routes (its SAs go with the engine's events) and
    /// forgets its timers.
    pub(crate) fn unconfigure_peer(&mut self, id: PeerId) {
        let Some(p) = self.peer(id) else { return };
        let ids = std::mem::take(&mut p.policies);
        for pol in ids {
            self.backend.remove_policy(pol);
        }
        self.os.push_back(OsAction::RemoveRoutes { peer: id });
        self.timers.retain(|(p, _)| p != id);
    }
}

/// The next attempt after a refusal, if the peer is still configured.
fn p_retry(p: Option<&mut PeerState>, now: Timestamp) -> Option<Timestamp> {
    p.map(|p| p.retry_after_refusal(now))
}
