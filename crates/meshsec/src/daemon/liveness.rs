//! Liveness and self-healing as the daemon drives them:
//!
//! * Dead peer detection (RFC 7296 §2.4): a liveness check (empty INFORMATIONAL) only after
//!   `dpd_delay` without anything authenticated from the peer — IKE messages or ESP
//!   packets, so a busy tunnel costs no checks — and the peer declared dead when the check
//!   stays unanswered for `dpd_timeout`. Its SAs are then dropped without a message (it
//!   would not answer one) and `dpd_action` says what follows.
//! * Half SAs: ESP from a peer with an SPI we do not know → INVALID_SPI to the peer, inside
//!   the IKE SA (the peer replaces that CHILD SA); traffic to a peer whose IKE SA is up but
//!   whose outbound SA is missing here → a new CHILD SA, and the broken one deleted.

use meshsec_types::{InboundSpi, PeerId, Timestamp};
use std::net::IpAddr;
use std::time::Duration;

use meshsec_ike::State;

use super::Daemon;

impl Daemon {
    /// Runs the DPD state of every peer with an established IKE SA.
    pub(super) fn dpd_tick(&mut self, now: Timestamp) {
        let counters: Vec<(PeerId, u64, u64)> = {
            let plane = self.path.plane();
            (0..self.peers.len())
                .filter_map(PeerId::from_index)
                .map(|id| {
                    let slot = id;
                    let (i, o) = plane.peer_counters(slot);
                    (id, i.packets, o.packets)
                })
                .collect()
        };
        for (id, in_packets, out_packets) in counters {
            if self.ike.established_with(id) == 0 {
                continue;
            }
            let Some(p) = self.peer(id) else { continue };
            if in_packets != p.last_in_packets {
                p.last_in_packets = in_packets;
                p.last_heard = now;
                p.last_esp_in = now;
                p.dpd_sent = None;
            }
            if out_packets != p.last_out_packets {
                p.last_out_packets = out_packets;
                p.last_esp_out = now;
            }
            self.tunnel_check(id, now);
            let Some(p) = self.peer(id) else { continue };
            let Some(delay) = p.cfg.dpd_delay else {
                continue;
            };
            match p.dpd_sent {
                None if now.duration_since(p.last_heard) >= delay => {
                    p.dpd_sent = Some(now);
                    p.dpd_checks += 1;
                    let name = p.cfg.name.clone();
                    tracing::debug!("peer {name}: nothing heard for {delay:?}: DPD check");
                    let _ = self.ike.check_liveness(now, id);
                }
                Some(sent) if now.duration_since(sent) >= p.cfg.dpd_timeout => {
                    p.dpd_sent = None;
                    p.deaths += 1;
                    p.dead = true;
                    let (name, timeout, action) =
                        (p.cfg.name.clone(), p.cfg.dpd_timeout, p.cfg.dpd_action);
                    tracing::warn!(
                        "peer {name}: declared dead (DPD unanswered for {}s); dpd_action = {action:?}",
                        timeout.as_secs()
                    );
                    let _ = self
                        .ike
                        .drop_ike_sa(id, "the peer is dead (DPD unanswered)");
                }
                _ => {}
            }
        }
    }
}

impl Daemon {
    /// Behind a NAT (detected in IKE_SA_INIT), a one-octet keepalive to the peer's port 4500
    /// every `node.nat_keepalive`, so that the NAT does not drop the mapping of an idle
    /// tunnel (RFC 3948 §2.3).
    pub(super) fn nat_keepalive_tick(&mut self, now: Timestamp) {
        let interval = self.cfg.node.nat_keepalive;
        let due: Vec<(PeerId, std::net::SocketAddr)> = self
            .ike
            .ike_sas()
            .iter()
            .filter(|s| s.state == State::Established && s.nat_detected && !s.rekeyed)
            .filter_map(|s| s.peer.map(|p| (p, s.remote)))
            .collect();
        for (id, remote) in due {
            let Some(p) = self.peer(id) else { continue };
            if now.duration_since(p.last_keepalive) < interval {
                continue;
            }
            p.last_keepalive = now;
            let sock = if remote.is_ipv4() {
                &self.natt4
            } else {
                &self.natt6
            };
            if let Some(sock) = sock {
                let _ = sock.send_to(&[0xff], remote);
            }
        }
    }

    /// Through-tunnel check: our ESP keeps going out but nothing comes back for
    /// `tunnel_check`. If IKE still answers (a probe), the CHILD SA itself is broken (e.g.
    /// a peer that lost it without telling us): it is recreated.
    fn tunnel_check(&mut self, id: PeerId, now: Timestamp) {
        let Some(p) = self.peer(id) else { return };
        let Some(limit) = p.cfg.tunnel_check else {
            return;
        };
        let sending = now.duration_since(p.last_esp_out) < Duration::from_secs(2);
        // Silence counts from the later of the last ESP in and the last time we acted.
        let silent = now.duration_since(p.last_esp_in) >= limit;
        match p.tunnel_probe {
            None if sending && silent && !p.children.is_empty() => {
                p.tunnel_probe = Some(now);
                let _ = self.ike.check_liveness(now, id);
            }
            Some(sent) if p.last_ike_alive > sent => {
                p.tunnel_probe = None;
                if !silent {
                    return;
                }
                // IKE answers, ESP does not: recreate the CHILD SA.
                p.last_esp_in = now;
                p.heals += 1;
                let broken: Vec<InboundSpi> = p.children.iter().map(|c| c.spi_in).collect();
                let name = p.cfg.name.clone();
                tracing::warn!(
                    "peer {name}: no ESP from it for {}s while we send, although IKE answers: recreating the CHILD SA",
                    limit.as_secs()
                );
                let _ = self.ike.create_child_sa(now, id);
                for inbound in broken {
                    let _ = self.ike.delete_child_sa_spi(now, id, inbound);
                }
            }
            // Unanswered: DPD takes it from here.
            Some(sent) if now.duration_since(sent) >= p.cfg.dpd_timeout => p.tunnel_probe = None,
            _ => {}
        }
    }

    /// ESP with an unknown SPI arrived from `from`: if it is a peer we share an IKE SA with,
    /// tell it (the engine rate-limits); strangers get nothing.
    pub(super) fn on_unknown_spi(&mut self, from: IpAddr, spi: InboundSpi) {
        let peer = self
            .ike
            .ike_sas()
            .iter()
            .find(|s| s.state == State::Established && s.remote.ip() == from)
            .and_then(|s| s.peer);
        let Some(id) = peer else { return };
        let now = self.now();
        if self.ike.notify_invalid_spi(now, id, spi).unwrap_or(false) {
            let name = self.peer_name(id);
            tracing::warn!("peer {name}: ESP with unknown SPI {spi}: told it (INVALID_SPI)");
            if let Some(p) = self.peer(id) {
                p.invalid_spi_sent += 1;
            }
        }
    }

    /// The IKE SA with `id` is up but no outbound SA is in the data plane: create a new
    /// CHILD SA and delete the ones whose outbound half is gone.
    pub(super) fn heal_missing_outbound(&mut self, id: PeerId) {
        let now = self.now();
        let slot = id;
        let broken: Vec<InboundSpi> = {
            let plane = self.path.plane();
            self.peers
                .get(id.index())
                .and_then(Option::as_ref)
                .map(|p| {
                    p.children
                        .iter()
                        .filter(|c| plane.outbound_counters_spi(slot, c.spi_out).is_none())
                        .map(|c| c.spi_in)
                        .collect()
                })
                .unwrap_or_default()
        };
        if broken.is_empty()
            && self
                .peers
                .get(id.index())
                .and_then(Option::as_ref)
                .is_some_and(|p| !p.children.is_empty())
        {
            return;
        }
        tracing::warn!(
            "peer {}: no outbound SA although the IKE SA is up: creating a CHILD SA{}",
            self.peer_name(id),
            if broken.is_empty() {
                String::new()
            } else {
                format!(", deleting {} broken", broken.len())
            }
        );
        let _ = self.ike.create_child_sa(now, id);
        for inbound in broken {
            let _ = self.ike.delete_child_sa_spi(now, id, inbound);
        }
        if let Some(p) = self.peer(id) {
            p.heals += 1;
        }
    }
}
