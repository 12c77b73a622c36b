//! Helpers shared by the engine tests: two endpoints (A and B) configured for each other,
//! and what their events say.
#![allow(dead_code, unused_imports)]

pub mod checked;

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use meshsec_crypto::{Provider, Secret};
use meshsec_esp::DataPlane;
use meshsec_ike::proposal::ProposalSpec;
use meshsec_ike::{ChildMode, ChildSa, Endpoint, EndpointConfig, Event, Failure, PeerConfig};
use meshsec_node::{Command, PeerPolicy};
pub use meshsec_sim::{Node, PeerId, SeededRandom, Sim, Timestamp};
pub use meshsec_types::{IkeSpi, InboundSpi, OutboundSpi};
use meshsec_wire::payload::{AddrSelector, Identity};
use meshsec_wire::registry::ProtocolId;

pub const A: &str = "192.0.2.1:500";
pub const B: &str = "192.0.2.2:500";
pub const LONG: Timestamp = Timestamp::from_secs(120);

pub fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

pub fn fqdn(s: &str) -> Identity<'static> {
    Identity::Fqdn(Cow::Owned(s.as_bytes().to_vec()))
}

pub fn prefix(s: &str) -> AddrSelector {
    let (a, len) = s.split_once('/').unwrap();
    let a: IpAddr = a.parse().unwrap();
    let len: u32 = len.parse().unwrap();
    match a {
        IpAddr::V4(v) => {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            let s = u32::from(v) & mask;
            AddrSelector::range(IpAddr::V4(s.into()), IpAddr::V4((s | !mask).into()))
        }
        IpAddr::V6(v) => {
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len)
            };
            let s = u128::from(v) & mask;
            AddrSelector::range(IpAddr::V6(s.into()), IpAddr::V6((s | !mask).into()))
        }
    }
}

/// A's view of B (or B's of A when `flip`).
pub struct Side {
    pub ike: Vec<&'static str>,
    pub esp: Vec<&'static str>,
    pub psk: &'static str,
    pub local_ts: Vec<&'static str>,
    pub remote_ts: Vec<&'static str>,
    pub mode: ChildMode,
    pub local_id: &'static str,
    pub remote_id: &'static str,
    pub child_lifetime: Option<Duration>,
    pub ike_lifetime: Option<Duration>,
    pub reauth_lifetime: Option<Duration>,
}

pub fn side(a: bool) -> Side {
    Side {
        ike: vec!["aes256gcm16-prfsha256-x25519"],
        esp: vec!["aes256gcm16"],
        psk: "a pre-shared key of thirty-two bytes!",
        local_ts: vec![if a { "10.1.0.0/24" } else { "10.2.0.0/24" }],
        remote_ts: vec![if a { "10.2.0.0/24" } else { "10.1.0.0/24" }],
        mode: ChildMode::Tunnel,
        local_id: if a { "a.test" } else { "b.test" },
        remote_id: if a { "b.test" } else { "a.test" },
        child_lifetime: None,
        ike_lifetime: None,
        reauth_lifetime: None,
    }
}

/// The one peer every test node has.
pub const PEER: PeerId = PeerId::new(0);

pub fn node(me: &str, peer: &str, s: &Side, seed: u64) -> Node {
    node_with(me, peer, s, seed, |_| {})
}

/// A host at `me` running `ike` with `policy` as its one peer (passive: tests start it).
pub fn host(me: &str, ike: Endpoint, policy: PeerPolicy, seed: u64) -> Node {
    let mut host = meshsec_node::Node::new(
        ike,
        DataPlane::new(Box::new(SeededRandom::new(seed ^ 0xe5))),
        Box::new(SeededRandom::new(seed ^ 0x0de)),
    );
    host.handle_command(Timestamp::ZERO, Command::AddPeer(policy))
        .unwrap();
    Node::new(addr(me), host)
}

/// The test endpoint at `me` (first retransmission after 500 ms, 3 retries), settings
/// adjusted by `tweak`.
pub fn endpoint(me: &str, seed: u64, tweak: impl Fn(&mut EndpointConfig)) -> Endpoint {
    let mut ec = EndpointConfig::new(addr(me));
    ec.retransmit_timeout = Duration::from_millis(500);
    ec.retransmit_tries = 3;
    tweak(&mut ec);
    Endpoint::new(
        ec,
        Vec::new(),
        Box::new(SeededRandom::new(seed)),
        Provider::Real,
    )
}

/// A node whose endpoint settings `tweak` adjusts.
pub fn node_with(
    me: &str,
    peer: &str,
    s: &Side,
    seed: u64,
    tweak: impl Fn(&mut EndpointConfig),
) -> Node {
    let cfg = peer_config(peer, s);
    host(
        me,
        endpoint(me, seed, tweak),
        PeerPolicy::passive(cfg),
        seed,
    )
}

/// A node whose peer policy (start, DPD, through-tunnel check) `policy` adjusts.
pub fn node_policy(
    me: &str,
    peer: &str,
    s: &Side,
    seed: u64,
    policy: impl Fn(&mut PeerPolicy),
) -> Node {
    let mut p = PeerPolicy::passive(peer_config(peer, s));
    policy(&mut p);
    host(me, endpoint(me, seed, |_| {}), p, seed)
}

/// A minimal IPv4/UDP packet from `src` to `dst` carrying `seq` (the data plane needs no
/// checksums).
pub fn udp4(src: &str, dst: &str, seq: u32) -> Vec<u8> {
    let (IpAddr::V4(s), IpAddr::V4(d)) = (src.parse().unwrap(), dst.parse().unwrap()) else {
        panic!("IPv4 only")
    };
    let mut p = vec![0u8; 20 + 8 + 4];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&32u16.to_be_bytes());
    p[8] = 64;
    p[9] = 17;
    p[12..16].copy_from_slice(&s.octets());
    p[16..20].copy_from_slice(&d.octets());
    p[20..22].copy_from_slice(&4000u16.to_be_bytes());
    p[22..24].copy_from_slice(&4000u16.to_be_bytes());
    p[24..26].copy_from_slice(&12u16.to_be_bytes());
    p[28..32].copy_from_slice(&seq.to_be_bytes());
    p
}

/// The sequence numbers in the packets a node received.
pub fn received_seqs(n: &Node) -> Vec<u32> {
    n.received
        .iter()
        .filter_map(|p| p.get(28..32))
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// The configuration of the peer at `peer` as `s` describes it.
pub fn peer_config(peer: &str, s: &Side) -> PeerConfig {
    PeerConfig {
        name: "peer".into(),
        remote_addr: addr(peer),
        accept_from: Vec::new(),
        local_id: fqdn(s.local_id),
        remote_id: fqdn(s.remote_id),
        psk: Secret::from_slice(s.psk.as_bytes()),
        local_auth: Default::default(),
        peer_auth: Default::default(),
        ike_proposals: s
            .ike
            .iter()
            .map(|p| ProposalSpec::parse(p, ProtocolId::IKE).unwrap())
            .collect(),
        esp_proposals: s
            .esp
            .iter()
            .map(|p| ProposalSpec::parse(p, ProtocolId::ESP).unwrap())
            .collect(),
        local_ts: s.local_ts.iter().map(|t| prefix(t)).collect(),
        remote_ts: s.remote_ts.iter().map(|t| prefix(t)).collect(),
        mode: s.mode,
        accept_narrowing: true,
        child_lifetime: s.child_lifetime,
        ike_lifetime: s.ike_lifetime,
        reauth_lifetime: s.reauth_lifetime,
    }
}

pub fn sim(a: Side, b: Side) -> Sim {
    Sim::new(vec![node(A, B, &a, 1), node(B, A, &b, 2)])
}

pub fn children(n: &Node) -> Vec<&ChildSa> {
    n.events
        .iter()
        .filter_map(|e| match e {
            Event::InstallChildSa(c) => Some(c),
            _ => None,
        })
        .collect()
}

/// Every failure the node explained: of its own exchanges, and its refusals of initiators
/// that had not authenticated.
pub fn failures(n: &Node) -> Vec<&Failure> {
    n.events
        .iter()
        .filter_map(|e| match e {
            Event::Failed { failure, .. } | Event::Refused { failure, .. } => Some(failure),
            _ => None,
        })
        .collect()
}

pub fn established(n: &Node) -> usize {
    n.events
        .iter()
        .filter(|e| matches!(e, Event::IkeSaEstablished { .. }))
        .count()
}

/// A and B, B's endpoint adjusted by `tweak`, and A's first IKE_SA_INIT request (which
/// the network never carries: the link is down, B only gets what the test feeds it).
pub fn responder(tweak: impl Fn(&mut EndpointConfig)) -> (Sim, Vec<u8>) {
    responder_accepting(Vec::new(), tweak)
}

/// As [`responder`], with B accepting A from `accept_from` too.
pub fn responder_accepting(
    accept_from: Vec<AddrSelector>,
    tweak: impl Fn(&mut EndpointConfig),
) -> (Sim, Vec<u8>) {
    let a = node(A, B, &side(true), 1);
    let mut cfg = peer_config(A, &side(false));
    cfg.accept_from = accept_from;
    let b = host(B, endpoint(B, 2, tweak), PeerPolicy::passive(cfg), 2);
    let mut s = Sim::new(vec![a, b]);
    s.nodes[0]
        .ike_mut()
        .initiate(Timestamp::ZERO, PEER)
        .unwrap();
    let first = s.nodes[0].host.poll_transmit().unwrap().payload;
    s.partitioned = true;
    (s, first)
}

/// `request` with another initiator SPI (another IKE SA attempt).
pub fn with_spi(request: &[u8], spi: u64) -> Vec<u8> {
    let mut m = request.to_vec();
    m[0..8].copy_from_slice(&spi.to_be_bytes());
    m
}

/// Every IPv4 address, as `accept_from` would say "any".
pub fn anywhere() -> Vec<AddrSelector> {
    vec![prefix("0.0.0.0/0")]
}
