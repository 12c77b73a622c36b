//! What the daemon keeps per peer besides the engines' state: when to (re)try, what the
//! operator asked (`down`), policies and routes installed for it, its CHILD SAs as installed
//! in the data plane, and the last failure to show in `meshsec status`.

use meshsec_types::{InboundSpi, OutboundSpi, PeerId, Timestamp};
use std::net::IpAddr;
use std::time::Duration;

use meshsec_crypto::aead::AeadBackend;
use meshsec_esp::lifetime::{Lifetime, Limits};
use meshsec_esp::selector::{AddrRange, Selector};
use meshsec_esp::spd::{Action, Policy, PolicyId};
use meshsec_esp::{Encap, Mode, SaParams};
use meshsec_ike::{ChildMode, ChildSa};
use meshsec_wire::payload::AddrSelector;

use super::netlink::Route;
use crate::config::Peer;

/// First retry delay after a failure; doubles up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// Longest retry delay.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Replay window of inbound SAs (packets).
const REPLAY_WINDOW: u32 = 1024;

/// A CHILD SA pair as installed.
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
    /// When (engine clock).
    pub installed: Timestamp,
}

/// The daemon's view of one configured peer.
#[derive(Debug)]
pub struct PeerRuntime {
    /// Its validated configuration.
    pub cfg: Peer,
    /// `meshsec down` was asked: no automatic (re)starts until `up`.
    pub admin_down: bool,
    /// When to try to initiate next (engine clock).
    pub next_attempt: Option<Timestamp>,
    /// Current retry delay.
    pub backoff: Duration,
    /// When our current initiation started (for handshake latency).
    pub attempt_started: Option<Timestamp>,
    /// When the last IKE SA came up.
    pub last_handshake: Option<Timestamp>,
    /// How long our last initiated handshake took.
    pub handshake_time: Option<Duration>,
    /// The last failure, explained.
    pub last_failure: Option<String>,
    /// SPD entries for its selectors.
    pub policies: Vec<PolicyId>,
    /// Routes into the TUN device.
    pub routes: Vec<Route>,
    /// Installed CHILD SAs, newest last.
    pub children: Vec<InstalledChild>,
    /// CHILD SAs installed that replaced another (rekeys, ours and the peer's).
    pub child_rekeys: u64,
    /// IKE SA rekeys (ours and the peer's).
    pub ike_rekeys: u64,
    /// Reauthentications (by either side).
    pub reauths: u64,
    /// Rekey collisions (both ends rekeyed the same SA at once).
    pub rekey_collisions: u64,
    /// Last time anything authenticated came from the peer (IKE or ESP).
    pub last_heard: Timestamp,
    /// Inbound packets at the last look (ESP arriving counts as a sign of life).
    pub last_in_packets: u64,
    /// Our unanswered DPD check, since when.
    pub dpd_sent: Option<Timestamp>,
    /// DPD checks sent.
    pub dpd_checks: u64,
    /// Times the peer was declared dead.
    pub deaths: u64,
    /// The SAs went away because the peer was declared dead (dpd_action decides what next).
    pub dead: bool,
    /// INVALID_SPI notifications we sent (its ESP reached us for no SA).
    pub invalid_spi_sent: u64,
    /// INVALID_SPI notifications the peer sent us (it lost a half of one of our SAs).
    pub invalid_spi_received: u64,
    /// CHILD SAs replaced because one half was lost (on either side).
    pub heals: u64,
    /// When we last sent a NAT keepalive.
    pub last_keepalive: Timestamp,
    /// Last time ESP from the peer arrived (inbound packet counters moved).
    pub last_esp_in: Timestamp,
    /// Last time we sent ESP to the peer (outbound packet counters moved).
    pub last_esp_out: Timestamp,
    /// Outbound packets at the last look.
    pub last_out_packets: u64,
    /// Last time an authenticated IKE message came from the peer.
    pub last_ike_alive: Timestamp,
    /// The through-tunnel check's IKE probe, since when.
    pub tunnel_probe: Option<Timestamp>,
}

impl PeerRuntime {
    /// A peer not yet started.
    pub fn new(cfg: Peer) -> PeerRuntime {
        PeerRuntime {
            cfg,
            admin_down: false,
            next_attempt: None,
            backoff: FIRST_BACKOFF,
            attempt_started: None,
            last_handshake: None,
            handshake_time: None,
            last_failure: None,
            policies: Vec::new(),
            routes: Vec::new(),
            children: Vec::new(),
            child_rekeys: 0,
            ike_rekeys: 0,
            reauths: 0,
            rekey_collisions: 0,
            last_heard: Timestamp::ZERO,
            last_in_packets: 0,
            dpd_sent: None,
            dpd_checks: 0,
            deaths: 0,
            dead: false,
            invalid_spi_sent: 0,
            invalid_spi_received: 0,
            heals: 0,
            last_keepalive: Timestamp::ZERO,
            last_esp_in: Timestamp::ZERO,
            last_esp_out: Timestamp::ZERO,
            last_out_packets: 0,
            last_ike_alive: Timestamp::ZERO,
            tunnel_probe: None,
        }
    }

    /// Schedules the next attempt after the current backoff, and doubles it: for a peer
    /// that refused us (a configuration mismatch will not fix itself every second).
    pub fn schedule_retry(&mut self, now: Timestamp) {
        self.next_attempt = Some(now + self.backoff);
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
    }

    /// Schedules the next attempt soon, without growing the backoff: for a peer that did
    /// not answer (an outage), so that the tunnel is back within seconds of the path.
    pub fn schedule_soon(&mut self, now: Timestamp) {
        self.next_attempt = Some(now + FIRST_BACKOFF);
    }
}

fn range(ts: &AddrSelector) -> AddrRange {
    AddrRange {
        start: ts.start,
        end: ts.end,
    }
}

/// The data plane's selectors for every pair of our and the peer's traffic selectors (pairs
/// that ask for different IP protocols cannot match any packet and are left out).
pub fn selectors(local: &[AddrSelector], remote: &[AddrSelector]) -> Vec<Selector> {
    let mut out = Vec::new();
    for l in local {
        for r in remote {
            if l.start.is_ipv4() != r.start.is_ipv4() {
                continue;
            }
            let proto = match (l.ip_protocol, r.ip_protocol) {
                (0, p) | (p, 0) => p,
                (a, b) if a == b => a,
                _ => continue,
            };
            out.push(Selector {
                local: range(l),
                remote: range(r),
                proto,
                local_ports: (l.start_port, l.end_port),
                remote_ports: (r.start_port, r.end_port),
            });
        }
    }
    out
}

/// PROTECT policies for a peer's configured selectors, all using `slot`.
pub fn policies(cfg: &Peer, slot: PeerId) -> Vec<Policy> {
    selectors(&cfg.local_ts, &cfg.remote_ts)
        .into_iter()
        .map(|selector| Policy {
            selector,
            action: Action::Protect(slot),
        })
        .collect()
}

/// The two halves of a negotiated CHILD SA as the data plane installs them.
/// The data plane's volume limits of a CHILD SA: hard at the configured bytes/packets, soft
/// (rekey) at 80-90 % of them, chosen by `jitter` (0..=255) so peers do not rekey in
/// lockstep. Time limits are the IKE engine's.
pub fn volume_lifetime(cfg: &Peer, jitter: u8) -> Lifetime {
    let soft = |v: u64| {
        let pct = 80 + u64::from(jitter) * 10 / 255;
        v / 100 * pct
    };
    Lifetime {
        soft: Limits {
            time: None,
            bytes: cfg.child_lifetime_bytes.map(soft),
            packets: cfg.child_lifetime_packets.map(soft),
        },
        hard: Limits {
            time: None,
            bytes: cfg.child_lifetime_bytes,
            packets: cfg.child_lifetime_packets,
        },
    }
}

/// `iv_mask` is the outbound AEAD IV mask (random per SA); `lifetime` the volume limits.
pub fn sa_params(c: &ChildSa, iv_mask: u64, lifetime: Lifetime) -> (SaParams, SaParams) {
    let mode = match c.mode {
        ChildMode::Tunnel => Mode::Tunnel,
        ChildMode::Transport => Mode::Transport,
    };
    let encap = if c.udp_encap {
        Encap::Udp {
            local_port: c.local.port(),
            remote_port: c.remote.port(),
        }
    } else {
        Encap::None
    };
    let base = |spi: u32, encr_key, integ_key, iv_mask| SaParams {
        spi,
        peer: c.peer,
        mode,
        encap,
        local: c.local.ip(),
        remote: c.remote.ip(),
        encr: c.encr,
        integ: c.integ,
        encr_key,
        integ_key,
        esn: c.esn,
        selectors: selectors(&c.local_ts, &c.remote_ts),
        lifetime,
        replay_window: REPLAY_WINDOW,
        tfc_pad_to: None,
        iv_mask,
        backend: AeadBackend::fastest(),
        nat_transport_fixup: c.udp_encap && mode == Mode::Transport,
    };
    // Only the outbound half seals, so only it needs an IV mask.
    (
        base(
            c.inbound.spi.get(),
            c.inbound.encr_key.clone(),
            c.inbound.integ_key.clone(),
            0,
        ),
        base(
            c.outbound.spi.get(),
            c.outbound.encr_key.clone(),
            c.outbound.integ_key.clone(),
            iv_mask,
        ),
    )
}

/// The first address of this host inside one of `local_ts` of `route`'s family: the
/// preferred source of routes into the tunnel, so that locally generated packets carry an
/// address the policy protects.
pub fn route_source(host: &[IpAddr], local_ts: &[AddrSelector], v4: bool) -> Option<IpAddr> {
    host.iter()
        .copied()
        .find(|a| a.is_ipv4() == v4 && local_ts.iter().any(|ts| range(ts).contains(*a)))
}
