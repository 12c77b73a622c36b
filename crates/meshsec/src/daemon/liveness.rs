//! Dead peer detection (RFC 7296 §2.4) as the daemon drives it: a liveness check (empty
//! INFORMATIONAL) only after `dpd_delay` without anything authenticated from the peer — IKE
//! messages or ESP packets, so a busy tunnel costs no checks — and the peer declared dead
//! when the check stays unanswered for `dpd_timeout`. Its SAs are then dropped without a
//! message (it would not answer one) and `dpd_action` says what follows.

use std::time::Duration;

use super::Daemon;

impl Daemon {
    /// Runs the DPD state of every peer with an established IKE SA.
    pub(super) fn dpd_tick(&mut self, now: Duration) {
        let inbound: Vec<(usize, u64)> = {
            let plane = self.path.plane();
            (0..self.peers.len())
                .map(|id| {
                    let slot = u32::try_from(id).unwrap_or(u32::MAX);
                    (id, plane.peer_counters(slot).0.packets)
                })
                .collect()
        };
        for (id, in_packets) in inbound {
            if self.ike.established_with(id) == 0 {
                continue;
            }
            let Some(p) = self.peer(id) else { continue };
            if in_packets != p.last_in_packets {
                p.last_in_packets = in_packets;
                p.last_heard = now;
                p.dpd_sent = None;
            }
            let Some(delay) = p.cfg.dpd_delay else {
                continue;
            };
            match p.dpd_sent {
                None if now.saturating_sub(p.last_heard) >= delay => {
                    p.dpd_sent = Some(now);
                    p.dpd_checks += 1;
                    let name = p.cfg.name.clone();
                    tracing::debug!("peer {name}: nothing heard for {delay:?}: DPD check");
                    let _ = self.ike.check_liveness(now, id);
                }
                Some(sent) if now.saturating_sub(sent) >= p.cfg.dpd_timeout => {
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
