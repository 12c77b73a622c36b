//! The daemon's answer to `status`: the node's snapshot and the data path's counters, in the
//! control protocol's types.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use meshsec_esp::{Counters, DropReason};
use meshsec_ike::{ChildMode, Role};
use meshsec_node::{PeerReport, Start};

use super::Daemon;
use crate::control::{CertStatus, ChildSaStatus, IkeSaStatus, PeerStatus, Status};

/// A certificate's expiry as `status` shows it.
pub(super) fn cert_status(subject: &str, not_after: i64) -> CertStatus {
    CertStatus {
        subject: subject.to_string(),
        not_after: meshsec_pki::show_time(not_after),
        days_left: (not_after - crate::config::now_unix()).div_euclid(86_400),
    }
}

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

fn peer_status(p: PeerReport, now: meshsec_types::Timestamp) -> PeerStatus {
    let (cin, cout) = p.traffic;
    let mut all_drops = cin;
    all_drops.add(&cout);
    let ike_sas = p
        .ike_sas
        .iter()
        .map(|s| IkeSaStatus {
            spi_i: s.spi_i.to_string(),
            spi_r: s.spi_r.to_string(),
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
            udp_encap: s.udp_encap,
            nat: s.nat.describe().map(str::to_string),
            peer_certificate: s
                .peer_certificate
                .as_ref()
                .map(|(subject, not_after)| cert_status(subject, *not_after)),
        })
        .collect();
    let child_sas = p
        .children
        .iter()
        .map(|c| ChildSaStatus {
            spi_in: c.child.spi_in.to_string(),
            spi_out: c.child.spi_out.to_string(),
            proposal: c.child.proposal.clone(),
            mode: match c.child.mode {
                ChildMode::Tunnel => "tunnel",
                ChildMode::Transport => "transport",
            }
            .into(),
            encap: if c.child.udp_encap {
                "ESP-in-UDP"
            } else {
                "ESP"
            }
            .into(),
            local_ts: c
                .child
                .local_ts
                .iter()
                .map(meshsec_ike::ts::describe)
                .collect(),
            remote_ts: c
                .child
                .remote_ts
                .iter()
                .map(meshsec_ike::ts::describe)
                .collect(),
            age_secs: secs(now.duration_since(c.child.installed)),
            bytes_in: c.inbound.bytes,
            bytes_out: c.outbound.bytes,
            packets_in: c.inbound.packets,
            packets_out: c.outbound.packets,
        })
        .collect();
    PeerStatus {
        name: p.name,
        address: p.address.to_string(),
        identity: p.identity,
        start: match p.start {
            Start::Always => "always",
            Start::OnDemand => "on-demand",
            Start::Passive => "passive",
        }
        .into(),
        state: p.state.as_str().into(),
        last_handshake_secs_ago: p.last_handshake_ago.map(secs),
        handshake_ms: p
            .handshake_time
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        bytes_in: cin.bytes,
        bytes_out: cout.bytes,
        packets_in: cin.packets,
        packets_out: cout.packets,
        drops: drops(&all_drops),
        last_failure: p.last_failure,
        last_refusal: p.last_refusal,
        child_rekeys: p.counters.child_rekeys,
        ike_rekeys: p.counters.ike_rekeys,
        reauths: p.counters.reauths,
        rekey_collisions: p.counters.rekey_collisions,
        last_heard_secs_ago: p.last_heard_ago.map(secs),
        dpd_checks: p.counters.dpd_checks,
        deaths: p.counters.deaths,
        invalid_spi_sent: p.counters.invalid_spi_sent,
        invalid_spi_received: p.counters.invalid_spi_received,
        heals: p.counters.heals,
        failures: p.counters.failures,
        certificate: None,
        ike_sas,
        child_sas,
    }
}

impl Daemon {
    pub(super) fn status(&self) -> Status {
        let now = self.now();
        let report = self.node.status(now);
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
            ("ike_queue_full", c.ike_queue_full.load(Ordering::Relaxed)),
            ("ike_init_shed", c.ike_init_shed.load(Ordering::Relaxed)),
            (
                "unknown_spi_reports_suppressed",
                report.unknown_spi_suppressed
                    + self
                        .path
                        .plane
                        .lock()
                        .map(|p| p.unknown_reports_dropped())
                        .unwrap_or(0),
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
            peers: report
                .peers
                .into_iter()
                .map(|p| {
                    let mut st = peer_status(p, now);
                    st.certificate = self.our_certificate(&st.name);
                    st
                })
                .collect(),
            unattributed_drops: drops(&report.unattributed),
            data_path,
            ike_errors: report
                .ike_errors
                .iter()
                .map(|(k, n)| (k.as_str().to_string(), *n))
                .collect(),
            refusals: [
                ("refused".to_string(), report.refused),
                ("not_logged".to_string(), report.refusals_not_logged),
            ]
            .into_iter()
            .collect(),
        }
    }
}

impl Daemon {
    /// Our certificate towards peer `name`, if we authenticate to it with one.
    fn our_certificate(&self, name: &str) -> Option<CertStatus> {
        match &self.cfg.peers.iter().find(|p| p.name == name)?.local_auth {
            meshsec_ike::LocalAuth::Certificate(c) => Some(cert_status(&c.subject, c.not_after)),
            meshsec_ike::LocalAuth::Psk => None,
        }
    }
}
