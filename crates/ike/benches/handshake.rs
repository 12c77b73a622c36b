//! Criterion bench: full IKE_SA_INIT + IKE_AUTH handshakes in-process (X25519, AES-256-GCM,
//! one CHILD SA), and the responder's CPU time per handshake — with a PSK, and with ECDSA
//! P-256 and Ed25519 certificates (chain validation, signature, verification included).
//!
//! Run: `cargo bench -p meshsec-ike --bench handshake`.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use meshsec_crypto::rng::SystemRandom;
use meshsec_crypto::{Provider, Secret};
use meshsec_ike::proposal::ProposalSpec;
use std::sync::Arc;

use meshsec_ike::{ChildMode, Endpoint, EndpointConfig, Event, LocalAuth, PeerAuth, PeerConfig};
use meshsec_pki::testing::{Ca, Host, Key, credential, unix_now};
use meshsec_wire::payload::{AddrSelector, Identity};
use meshsec_wire::registry::ProtocolId;

/// How both ends authenticate: (A's, B's) own credentials and what each requires.
#[derive(Clone)]
struct Auth {
    a: (LocalAuth, PeerAuth),
    b: (LocalAuth, PeerAuth),
}

fn psk() -> Auth {
    Auth {
        a: Default::default(),
        b: Default::default(),
    }
}

fn certificates(key: Key) -> Auth {
    let ca = Ca::root("bench CA", Key::P256);
    let trust = Arc::new(ca.store(&[]));
    let side = |name: &str| {
        (
            LocalAuth::Certificate(Arc::new(credential(&ca.issue(&Host::new(name, key)), ""))),
            PeerAuth::Certificate(trust.clone()),
        )
    };
    Auth {
        a: side("a"),
        b: side("b"),
    }
}

fn pair(auth: &Auth) -> (Endpoint, Endpoint) {
    let mut a = endpoint("192.0.2.1:500", "192.0.2.2:500", "a", "b", auth.a.clone());
    let mut b = endpoint("192.0.2.2:500", "192.0.2.1:500", "b", "a", auth.b.clone());
    for e in [&mut a, &mut b] {
        e.set_wall_clock(meshsec_types::Timestamp::ZERO, unix_now());
    }
    (a, b)
}

fn endpoint(
    me: &str,
    peer: &str,
    local_id: &str,
    remote_id: &str,
    auth: (LocalAuth, PeerAuth),
) -> Endpoint {
    let sel = |a: &str| {
        let ip: IpAddr = a.parse().unwrap();
        AddrSelector::range(ip, ip)
    };
    let cfg = PeerConfig {
        name: "peer".into(),
        remote_addr: peer.parse().unwrap(),
        accept_from: Vec::new(),
        local_id: Identity::Fqdn(Cow::Owned(local_id.as_bytes().to_vec())),
        remote_id: Identity::Fqdn(Cow::Owned(remote_id.as_bytes().to_vec())),
        psk: Secret::from_slice(b"a benchmark pre-shared key, 40 octets ok"),
        local_auth: auth.0,
        peer_auth: auth.1,
        ike_proposals: vec![
            ProposalSpec::parse("aes256gcm16-prfsha256-x25519", ProtocolId::IKE).unwrap(),
        ],
        esp_proposals: vec![ProposalSpec::parse("aes256gcm16", ProtocolId::ESP).unwrap()],
        local_ts: vec![sel(if local_id == "a" {
            "10.0.0.1"
        } else {
            "10.0.0.2"
        })],
        remote_ts: vec![sel(if local_id == "a" {
            "10.0.0.2"
        } else {
            "10.0.0.1"
        })],
        mode: ChildMode::Tunnel,
        accept_narrowing: true,
        child_lifetime: None,
        ike_lifetime: None,
        reauth_lifetime: None,
    };
    let me: SocketAddr = me.parse().unwrap();
    Endpoint::new(
        EndpointConfig::new(me),
        vec![cfg],
        Box::new(SystemRandom::new()),
        Provider::Real,
    )
}

/// Runs one handshake; returns the time spent inside the responder.
fn handshake(a: &mut Endpoint, b: &mut Endpoint) -> Duration {
    let now = meshsec_types::Timestamp::ZERO;
    a.initiate(now, meshsec_types::PeerId::new(0)).unwrap();
    let mut responder = Duration::ZERO;
    let mut established = 0;
    for _ in 0..4 {
        while let Some(t) = a.poll_transmit() {
            let start = Instant::now();
            b.handle_datagram(now, t.src, t.dst, &t.payload);
            responder += start.elapsed();
        }
        while let Some(t) = b.poll_transmit() {
            a.handle_datagram(now, t.src, t.dst, &t.payload);
        }
    }
    for e in std::iter::from_fn(|| a.poll_event()).chain(std::iter::from_fn(|| b.poll_event())) {
        if matches!(e, Event::InstallChildSa(_)) {
            established += 1;
        }
    }
    assert_eq!(established, 2, "handshake did not complete");
    responder
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("ike");
    let psk = psk();
    g.bench_function("handshake/psk-x25519-aes256gcm", |bench| {
        bench.iter_batched(
            || pair(&psk),
            |(mut a, mut b)| handshake(&mut a, &mut b),
            criterion::BatchSize::SmallInput,
        )
    });
    for (name, auth) in [
        ("psk", psk.clone()),
        ("cert-ecdsa-p256", certificates(Key::P256)),
        ("cert-ed25519", certificates(Key::Ed25519)),
    ] {
        g.bench_function(format!("responder-cpu/{name}-x25519-aes256gcm"), |bench| {
            bench.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let (mut a, mut b) = pair(&auth);
                    total += handshake(&mut a, &mut b);
                }
                total
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
