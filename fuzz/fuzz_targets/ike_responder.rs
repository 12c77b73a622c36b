//! Fuzz target: the stateful IKE responder, with the insecure crypto provider so that the
//! fuzzer's messages pass the ICV and AUTH checks and reach everything behind them
//! (IKE_AUTH processing, proposal selection, narrowing, the response cache, timeouts).
//!
//! Input: a mode octet (odd: the peer must authenticate with a certificate, so that CERT
//! payloads go through X.509 parsing and path validation; even: PSK), then messages each
//! preceded by a 2-octet big-endian length (a remainder without a prefix is one more
//! message). After our first IKE_SA_INIT response, the harness writes our SPI into the SPIr
//! field of later messages so that they reach the SA.
#![no_main]

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use meshsec_crypto::{Provider, Secret};
use meshsec_esp::Timestamp;
use meshsec_ike::proposal::ProposalSpec;
use std::sync::{Arc, OnceLock};

use meshsec_ike::{ChildMode, Endpoint, EndpointConfig, LocalAuth, PeerAuth, PeerConfig};
use meshsec_pki::testing::{Ca, Host, Key, credential};
use meshsec_sim::SeededRandom;
use meshsec_wire::payload::{AddrSelector, Identity};
use meshsec_wire::registry::ProtocolId;

/// A CA and our certificate, made once per fuzzing process.
fn certificates() -> &'static (LocalAuth, PeerAuth) {
    static PKI: OnceLock<(LocalAuth, PeerAuth)> = OnceLock::new();
    PKI.get_or_init(|| {
        let ca = Ca::root("fuzz CA", Key::P256);
        let ours = credential(&ca.issue(&Host::new("right", Key::P256)), "");
        (
            LocalAuth::Certificate(Arc::new(ours)),
            PeerAuth::Certificate(Arc::new(ca.store(&[]))),
        )
    })
}

fn responder(certificate: bool) -> Endpoint {
    let any = |a: &str| {
        let ip: IpAddr = a.parse().unwrap();
        AddrSelector::range(ip, ip)
    };
    let peer = PeerConfig {
        name: "fuzz".into(),
        remote_addr: "192.0.2.1:500".parse().unwrap(),
        accept_from: Vec::new(),
        local_id: Identity::Fqdn(Cow::Borrowed(b"right")),
        remote_id: Identity::Fqdn(Cow::Borrowed(b"left")),
        psk: Secret::from_slice(b"insecure provider: any AUTH passes"),
        local_auth: if certificate {
            certificates().0.clone()
        } else {
            LocalAuth::Psk
        },
        peer_auth: if certificate {
            certificates().1.clone()
        } else {
            PeerAuth::default()
        },
        ike_proposals: vec![
            ProposalSpec::parse("aes256gcm16-prfsha256-x25519-ecp256", ProtocolId::IKE).unwrap(),
            ProposalSpec::parse("aes128-sha256-modp3072", ProtocolId::IKE).unwrap(),
        ],
        esp_proposals: vec![ProposalSpec::parse("aes256gcm16-esn-noesn", ProtocolId::ESP).unwrap()],
        local_ts: vec![AddrSelector::range(
            any("10.2.0.0").start,
            any("10.2.255.255").end,
        )],
        remote_ts: vec![AddrSelector::range(
            any("10.1.0.0").start,
            any("10.1.255.255").end,
        )],
        mode: ChildMode::Tunnel,
        accept_narrowing: true,
        child_lifetime: None,
        ike_lifetime: None,
        reauth_lifetime: None,
    };
    let me: SocketAddr = "192.0.2.2:500".parse().unwrap();
    Endpoint::new(
        EndpointConfig::new(me),
        vec![peer],
        Box::new(SeededRandom::new(1)),
        Provider::Insecure,
    )
}

fuzz_target!(|data: &[u8]| {
    let Some((mode, mut rest)) = data.split_first() else {
        return;
    };
    let mut ep = responder(mode & 1 == 1);
    ep.set_wall_clock(Timestamp::ZERO, 1_800_000_000);
    let from: SocketAddr = "192.0.2.1:500".parse().unwrap();
    let mut our_spi: Option<[u8; 8]> = None;
    let mut now = Timestamp::ZERO;
    while !rest.is_empty() {
        let (msg, tail) = match rest {
            [a, b, tail @ ..] if usize::from(u16::from_be_bytes([*a, *b])) <= tail.len() => {
                let n = usize::from(u16::from_be_bytes([*a, *b]));
                (&tail[..n], &tail[n..])
            }
            _ => (rest, &[][..]),
        };
        rest = tail;
        let mut msg = msg.to_vec();
        if let Some(spi) = our_spi
            && msg.len() >= 16
        {
            msg[8..16].copy_from_slice(&spi);
        }
        ep.handle_datagram(now, from, "192.0.2.2:500".parse().unwrap(), &msg);
        while let Some(t) = ep.poll_transmit() {
            assert_eq!(t.dst, from, "answered someone else");
            // No amplification: an answer is never much larger than what provoked it.
            assert!(
                t.payload.len() <= 3 * msg.len().max(200),
                "{} > 3 × {}",
                t.payload.len(),
                msg.len()
            );
            if our_spi.is_none() && t.payload.len() >= 16 {
                our_spi = t.payload[8..16].try_into().ok();
            }
        }
        while ep.poll_event().is_some() {}
        now += Duration::from_secs(5);
        ep.handle_timeout(now);
        while ep.poll_transmit().is_some() {}
    }
    assert!(ep.ike_sa_count() <= 64);
});
