//! Negotiated CHILD SAs and configured selectors in the data plane's terms: selectors and
//! PROTECT policies, SA parameters for both halves, and volume lifetimes.

use meshsec_crypto::aead::AeadBackend;
use meshsec_esp::lifetime::{Lifetime, Limits};
use meshsec_esp::selector::{AddrRange, Selector};
use meshsec_esp::spd::{Action, Policy};
use meshsec_esp::{Encap, Mode, SaParams};
use meshsec_ike::{ChildMode, ChildSa};
use meshsec_types::PeerId;
use meshsec_wire::payload::AddrSelector;

use crate::policy::PeerPolicy;

/// Replay window of inbound SAs (packets).
const REPLAY_WINDOW: u32 = 1024;

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

/// PROTECT policies for a peer's configured selectors, sealing with `peer`'s outbound SA.
pub fn policies(local: &[AddrSelector], remote: &[AddrSelector], peer: PeerId) -> Vec<Policy> {
    selectors(local, remote)
        .into_iter()
        .map(|selector| Policy {
            selector,
            action: Action::Protect(peer),
        })
        .collect()
}

/// The data plane's volume limits of a CHILD SA: hard at the configured bytes/packets, soft
/// (rekey) at 80-90 % of them, chosen by `jitter` (0..=255) so peers do not rekey in
/// lockstep. Time limits are the IKE engine's.
pub(crate) fn volume_lifetime(policy: &PeerPolicy, jitter: u8) -> Lifetime {
    let soft = |v: u64| {
        let pct = 80 + u64::from(jitter) * 10 / 255;
        v / 100 * pct
    };
    Lifetime {
        soft: Limits {
            time: None,
            bytes: policy.child_lifetime_bytes.map(soft),
            packets: policy.child_lifetime_packets.map(soft),
        },
        hard: Limits {
            time: None,
            bytes: policy.child_lifetime_bytes,
            packets: policy.child_lifetime_packets,
        },
    }
}

/// The two halves of a negotiated CHILD SA as the data plane installs them: (inbound,
/// outbound). `iv_mask` is the outbound AEAD IV mask (random per SA); `lifetime` the volume
/// limits.
pub(crate) fn sa_params(c: &ChildSa, iv_mask: u64, lifetime: Lifetime) -> (SaParams, SaParams) {
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
