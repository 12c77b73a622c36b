//! Criterion bench: full IKE_SA_INIT + IKE_AUTH handshakes in-process (PSK, X25519,
//! AES-256-GCM, one CHILD SA), and the responder's CPU time per handshake.
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
use meshsec_ike::{ChildMode, Endpoint, EndpointConfig, Event, PeerConfig};
use meshsec_wire::payload::{AddrSelector, Identity};
use meshsec_wire::registry::ProtocolId;

fn endpoint(me: &str, peer: &str, local_id: &str, remote_id: &str) -> Endpoint {
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
        local_auth: Default::default(),
        peer_auth: Default::default(),
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
    g.bench_function("handshake/psk-x25519-aes256gcm", |bench| {
        bench.iter_batched(
            || {
                (
                    endpoint("192.0.2.1:500", "192.0.2.2:500", "a", "b"),
                    endpoint("192.0.2.2:500", "192.0.2.1:500", "b", "a"),
                )
            },
            |(mut a, mut b)| handshake(&mut a, &mut b),
            criterion::BatchSize::SmallInput,
        )
    });
    g.bench_function("responder-cpu/psk-x25519-aes256gcm", |bench| {
        bench.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let mut a = endpoint("192.0.2.1:500", "192.0.2.2:500", "a", "b");
                let mut b = endpoint("192.0.2.2:500", "192.0.2.1:500", "b", "a");
                total += handshake(&mut a, &mut b);
            }
            total
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
