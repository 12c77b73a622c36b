//! Builders shared by the ESP integration tests.
#![allow(dead_code, unused_imports)]

use std::net::IpAddr;

use meshsec_crypto::aead::{AeadAlg, AeadBackend};
use meshsec_crypto::rng::SystemRandom;
use meshsec_crypto::{Encr, Integ, Secret};
use meshsec_esp::lifetime::Lifetime;
use meshsec_esp::selector::{AddrRange, Selector};
use meshsec_esp::spd::{Action, Policy};
use meshsec_esp::{DataPlane, Encap, Mode, SaParams};
pub use meshsec_esp::{InboundSpi, OutboundSpi, PeerId, SaRef, Timestamp};

/// The peer every test SA belongs to.
pub const P: PeerId = PeerId::new(1);

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Selector local ↔ remote, given as prefixes like "10.1.0.0/24".
pub fn selector(local: &str, remote: &str) -> Selector {
    let p = |s: &str| {
        let (a, l) = s.split_once('/').unwrap();
        AddrRange::prefix(ip(a), l.parse().unwrap())
    };
    Selector::between(p(local), p(remote))
}

/// SA parameters with sensible test defaults.
pub fn params(
    spi: u32,
    encr: Encr,
    integ: Option<Integ>,
    ek: &[u8],
    ik: &[u8],
    sel: Selector,
) -> SaParams {
    SaParams {
        spi,
        peer: P,
        mode: Mode::Tunnel,
        encap: Encap::Udp {
            local_port: 4500,
            remote_port: 4500,
        },
        local: ip("198.51.100.1"),
        remote: ip("198.51.100.2"),
        encr,
        integ,
        encr_key: Secret::from_slice(ek),
        integ_key: Secret::from_slice(ik),
        esn: false,
        selectors: vec![sel],
        lifetime: Lifetime::default(),
        replay_window: 1024,
        tfc_pad_to: None,
        iv_mask: 0,
        backend: AeadBackend::Ring,
        nat_transport_fixup: false,
    }
}

pub fn gcm256() -> Encr {
    Encr::Aead(AeadAlg::Aes256Gcm)
}

pub fn dataplane() -> DataPlane {
    DataPlane::new(Box::new(SystemRandom::new()))
}

pub fn protect(sel: Selector, slot: PeerId) -> Policy {
    Policy {
        selector: sel,
        action: Action::Protect(slot),
    }
}

/// A minimal IPv4 ICMP echo request (checksums not needed by the data plane).
pub fn icmp4(src: &str, dst: &str, payload_len: usize) -> Vec<u8> {
    let total = 20 + 8 + payload_len;
    let mut p = vec![0u8; total];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    p[8] = 64;
    p[9] = 1;
    let (IpAddr::V4(s), IpAddr::V4(d)) = (ip(src), ip(dst)) else {
        panic!()
    };
    p[12..16].copy_from_slice(&s.octets());
    p[16..20].copy_from_slice(&d.octets());
    p[20] = 8;
    for (i, b) in p[28..].iter_mut().enumerate() {
        *b = i as u8;
    }
    p
}

/// A minimal IPv4 or IPv6 UDP packet.
pub fn udp(src: &str, dst: &str, sport: u16, dport: u16, payload_len: usize) -> Vec<u8> {
    let (s, d) = (ip(src), ip(dst));
    let l4_len = 8 + payload_len;
    let mut l4 = vec![0u8; l4_len];
    l4[0..2].copy_from_slice(&sport.to_be_bytes());
    l4[2..4].copy_from_slice(&dport.to_be_bytes());
    l4[4..6].copy_from_slice(&(l4_len as u16).to_be_bytes());
    let mut p = match (s, d) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let mut h = vec![0u8; 20];
            h[0] = 0x45;
            h[2..4].copy_from_slice(&((20 + l4_len) as u16).to_be_bytes());
            h[8] = 64;
            h[9] = 17;
            h[12..16].copy_from_slice(&s.octets());
            h[16..20].copy_from_slice(&d.octets());
            h
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let mut h = vec![0u8; 40];
            h[0] = 0x60;
            h[4..6].copy_from_slice(&(l4_len as u16).to_be_bytes());
            h[6] = 17;
            h[7] = 64;
            h[8..24].copy_from_slice(&s.octets());
            h[24..40].copy_from_slice(&d.octets());
            h
        }
        _ => panic!("mixed families"),
    };
    p.extend_from_slice(&l4);
    p
}

/// A buffer with HEADROOM before and TAILROOM after `packet`.
pub fn framed(packet: &[u8]) -> (Vec<u8>, usize, usize) {
    let mut buf = vec![0u8; meshsec_esp::HEADROOM + packet.len() + meshsec_esp::TAILROOM + 512];
    let start = meshsec_esp::HEADROOM;
    buf[start..start + packet.len()].copy_from_slice(packet);
    (buf, start, start + packet.len())
}
