//! A full mesh from a cold start, as an inventory derives it: every host has every other as
//! a peer (host selectors, transport mode, `start = "always"`), the host whose name sorts
//! first initiates at once and the other 2 s later unless the pair is up. Every pair must end
//! with exactly one IKE SA and one CHILD SA pair, the same SPIs on both sides.
//!
//! 300 hosts (44,850 pairs) in release mode:
//! `MESH_HOSTS=300 cargo test --release -p meshsec-sim --test mesh -- --nocapture`; the test
//! command runs it with 60 hosts (1,770 pairs) in debug mode.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{Node, PeerId, SeededRandom, Sim, Timestamp, endpoint, fqdn};
use meshsec_crypto::Secret;
use meshsec_esp::DataPlane;
use meshsec_ike::proposal::ProposalSpec;
use meshsec_ike::{ChildMode, PeerConfig, State};
use meshsec_node::{Command, PeerPolicy, Start};
use meshsec_wire::payload::AddrSelector;
use meshsec_wire::registry::ProtocolId;

fn ip(i: usize) -> std::net::IpAddr {
    std::net::IpAddr::from([10, 0, (i / 200) as u8, (i % 200 + 1) as u8])
}

fn name(i: usize) -> String {
    format!("n{i:03}")
}

/// Host `me`'s view of host `peer`.
fn policy(me: usize, peer: usize) -> PeerPolicy {
    let (lo, hi) = (me.min(peer), me.max(peer));
    let host = |i: usize| AddrSelector::range(ip(i), ip(i));
    let cfg = PeerConfig {
        name: name(peer),
        remote_addr: std::net::SocketAddr::new(ip(peer), 500),
        accept_from: Vec::new(),
        local_id: fqdn(&format!("{}.mesh", name(me))),
        remote_id: fqdn(&format!("{}.mesh", name(peer))),
        psk: Secret::from_slice(format!("pair key {lo}-{hi} of the simulated mesh").as_bytes()),
        local_auth: Default::default(),
        peer_auth: Default::default(),
        ike_proposals: vec![
            ProposalSpec::parse("aes256gcm16-prfsha256-x25519", ProtocolId::IKE).unwrap(),
        ],
        esp_proposals: vec![ProposalSpec::parse("aes256gcm16", ProtocolId::ESP).unwrap()],
        local_ts: vec![host(me)],
        remote_ts: vec![host(peer)],
        mode: ChildMode::Transport,
        accept_narrowing: true,
        child_lifetime: None,
        ike_lifetime: None,
        reauth_lifetime: None,
    };
    let mut p = PeerPolicy::passive(cfg);
    p.start = Start::Always;
    if me > peer {
        p.start_delay = Duration::from_secs(2);
    }
    p
}

#[test]
fn a_mesh_converges_from_a_cold_start_with_one_sa_pair_per_pair() {
    let n: usize = std::env::var("MESH_HOSTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let wall = Instant::now();
    let nodes: Vec<Node> = (0..n)
        .map(|me| {
            let addr = std::net::SocketAddr::new(ip(me), 500);
            let seed = me as u64 + 1;
            let ike = endpoint(&addr.to_string(), seed, |_| {});
            let mut host = meshsec_node::Node::new(
                ike,
                DataPlane::new(Box::new(SeededRandom::new(seed ^ 0xe5))),
                Box::new(SeededRandom::new(seed ^ 0x0de)),
            );
            for peer in (0..n).filter(|p| *p != me) {
                host.handle_command(Timestamp::ZERO, Command::AddPeer(policy(me, peer)))
                    .unwrap();
            }
            Node::new(addr, host)
        })
        .collect();
    let setup = wall.elapsed();
    let mut s = Sim::new(nodes);
    // Until every host has every pair up (checked each virtual second), at most 60 s.
    let mut converged = None;
    for second in 1..=60u64 {
        s.run_steps(Timestamp::from_secs(second), u64::MAX);
        let all = (0..n).all(|i| {
            (0..n - 1).all(|p| s.nodes[i].ike().established_with(PeerId::new(p as u32)) == 1)
        });
        if all {
            converged = Some(second);
            break;
        }
    }
    let virtual_secs = converged.unwrap_or_else(|| {
        let missing: Vec<(usize, usize)> = (0..n)
            .flat_map(|i| (0..n - 1).map(move |p| (i, p)))
            .filter(|(i, p)| s.nodes[*i].ike().established_with(PeerId::new(*p as u32)) != 1)
            .take(10)
            .collect();
        panic!("no convergence in 60 virtual seconds; (host, peer id) not at one SA: {missing:?}")
    });
    // Let anything pending (duplicates' deletes) settle, then count.
    s.run_steps(Timestamp::from_secs(virtual_secs + 5), u64::MAX);
    let mut children: HashMap<(usize, usize), (u32, u32)> = HashMap::new();
    for i in 0..n {
        let sas = s.nodes[i].ike().ike_sas();
        assert_eq!(
            sas.len(),
            n - 1,
            "host {i}: one IKE SA per peer, no leftovers"
        );
        for sa in sas {
            assert_eq!(sa.state, State::Established);
            assert_eq!(sa.children.len(), 1, "host {i}: one CHILD SA per IKE SA");
            let peer_id = sa.peer.unwrap().index();
            // Peer ids are given in order of the other hosts.
            let peer = if peer_id < i { peer_id } else { peer_id + 1 };
            let (spi_in, spi_out) = sa.children[0];
            let prev = children.insert((i, peer), (spi_in.get(), spi_out.get()));
            assert!(prev.is_none(), "host {i}: two IKE SAs with {peer}");
        }
    }
    for ((a, b), (spi_in, spi_out)) in &children {
        assert_eq!(children[&(*b, *a)], (*spi_out, *spi_in), "{a}-{b}");
    }
    let datagrams = s.log.len();
    eprintln!(
        "{n}-host mesh ({} pairs): converged after {virtual_secs} virtual s; {datagrams} IKE \
         datagrams; wall clock {:.1} s ({:.1} s setup)",
        n * (n - 1) / 2,
        wall.elapsed().as_secs_f64(),
        setup.as_secs_f64()
    );
}
