//! The daemon's answer to `status`: engines' SAs, the data plane's counters and the
//! daemon's own bookkeeping, in the control protocol's types.

use meshsec_types::PeerId;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use meshsec_esp::{Counters, DropReason};
use meshsec_ike::{ChildMode, Role, State};

use super::Daemon;
use crate::config::Start;
use crate::control::{ChildSaStatus, IkeSaStatus, PeerStatus, Status};

fn drops(c: &Counters) -> BTreeMap<String, u64> {
    DropReason::ALL
        .iter()
        .filter(|r| c.dropped(**r) > 0)
        .map(|r| (r.as_str().to_string(), c.dropped(*r)))
        .collect()
}

fn secs(d: Duration) -> u64 {
    d.as_secs()
}

impl Daemon {
    pub(super) fn status(&self) -> Status {
        let now = self.now();
        let sas = self.ike.ike_sas();
        let plane = self.path.plane();
        let mut peers = Vec::new();
        for (id, p) in self.peers.iter().enumerate() {
            let (Some(p), Some(id)) = (p, PeerId::from_index(id)) else {
                continue;
            };
            let mine: Vec<_> = sas.iter().filter(|s| s.peer == Some(id)).collect();
            let established = mine.iter().any(|s| s.state == State::Established);
            let state = if p.admin_down {
                "down (admin)"
            } else if established && !p.children.is_empty() {
                "established"
            } else if !mine.is_empty() {
                "connecting"
            } else if p.cfg.start == Start::Always {
                "down"
            } else {
                "idle"
            };
            let (cin, cout) = plane.peer_counters(id);
            let mut all_drops = cin;
            all_drops.add(&cout);
            let ike_sas = mine
                .iter()
                .map(|s| IkeSaStatus {
                    spi_i: format!("{}", s.spi_i),
                    spi_r: format!("{}", s.spi_r),
                    role: match s.role {
                        Role::Initiator => "initiator",
                        Role::Responder => "responder",
                    }
                    .into(),
                    state: format!("{:?}", s.state),
                    local: s.local.to_string(),
                    remote: s.remote.to_string(),
                    proposal: s.proposal.clone(),
                    age_secs: secs(now.duration_since(s.created)),
                    nat: s.nat_detected,
                })
                .collect();
            let child_sas = p
                .children
                .iter()
                .map(|c| {
                    let i = plane
                        .inbound_counters(c.spi_in)
                        .cloned()
                        .unwrap_or_default();
                    let o = plane
                        .outbound_counters_spi(id, c.spi_out)
                        .cloned()
                        .unwrap_or_default();
                    ChildSaStatus {
                        spi_in: format!("{}", c.spi_in),
                        spi_out: format!("{}", c.spi_out),
                        proposal: c.proposal.clone(),
                        mode: match c.mode {
                            ChildMode::Tunnel => "tunnel",
                            ChildMode::Transport => "transport",
                        }
                        .into(),
                        encap: if c.udp_encap { "ESP-in-UDP" } else { "ESP" }.into(),
                        local_ts: c.local_ts.iter().map(meshsec_ike::ts::describe).collect(),
                        remote_ts: c.remote_ts.iter().map(meshsec_ike::ts::describe).collect(),
                        age_secs: secs(now.duration_since(c.installed)),
                        bytes_in: i.bytes,
                        bytes_out: o.bytes,
                        packets_in: i.packets,
                        packets_out: o.packets,
                    }
                })
                .collect();
            peers.push(PeerStatus {
                name: p.cfg.name.clone(),
                address: p.cfg.address.to_string(),
                identity: p.cfg.identity.to_string(),
                start: match p.cfg.start {
                    Start::Always => "always",
                    Start::OnDemand => "on-demand",
                    Start::Passive => "passive",
                }
                .into(),
                state: state.into(),
                last_handshake_secs_ago: p.last_handshake.map(|t| secs(now.duration_since(t))),
                handshake_ms: p
                    .handshake_time
                    .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
                bytes_in: cin.bytes,
                bytes_out: cout.bytes,
                packets_in: cin.packets,
                packets_out: cout.packets,
                drops: drops(&all_drops),
                last_failure: p.last_failure.clone(),
                child_rekeys: p.child_rekeys,
                ike_rekeys: p.ike_rekeys,
                reauths: p.reauths,
                rekey_collisions: p.rekey_collisions,
                last_heard_secs_ago: (!mine.is_empty())
                    .then(|| secs(now.duration_since(p.last_heard))),
                dpd_checks: p.dpd_checks,
                deaths: p.deaths,
                invalid_spi_sent: p.invalid_spi_sent,
                invalid_spi_received: p.invalid_spi_received,
                heals: p.heals,
                ike_sas,
                child_sas,
            });
        }
        let c = &self.path.counters;
        let data_path = [
            ("send_failed", c.send_failed.load(Ordering::Relaxed)),
            (
                "tun_write_failed",
                c.tun_write_failed.load(Ordering::Relaxed),
            ),
            ("malformed", c.malformed.load(Ordering::Relaxed)),
            (
                "nat_keepalives_received",
                c.keepalives.load(Ordering::Relaxed),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        Status {
            node: self.cfg.node.name.clone(),
            identity: self.cfg.node.identity.to_string(),
            version: env!("CARGO_PKG_VERSION").into(),
            aead_backend: crate::aead_backend_name().into(),
            tun: self.cfg.node.tun.clone(),
            uptime_secs: secs(now.since_epoch()),
            config: self.cfg.path.display().to_string(),
            peers,
            unattributed_drops: drops(plane.unattributed_counters()),
            data_path,
        }
    }
}
