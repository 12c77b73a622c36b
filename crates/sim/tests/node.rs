//! What the node layer does on top of the engines — dead peer detection and restarts,
//! healing of half SAs, the through-tunnel check, sleeping until deadlines — on virtual time
//! over the hosts' real data planes, with real ESP between them. Deterministic, milliseconds
//! per scenario.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::net::IpAddr;
use std::time::Duration;

use common::checked::*;
use common::*;
use meshsec_esp::{HEADROOM, PacketBuf, TAILROOM};
use meshsec_ike::State;
use meshsec_node::{Command, DpdAction, NodeEvent, PeerPolicy, SaHalf, Start};
use meshsec_sim::{Fate, Sim};

const A_IN: &str = "10.1.0.1";
const B_IN: &str = "10.2.0.1";

/// Traffic both ways (one packet each way every 100 ms, numbered from `seq` on) from now
/// until `until`.
fn traffic(s: &mut Sim, until: Timestamp, seq: &mut u32) {
    while s.now < until {
        *seq += 1;
        let _ = s.send_inner(0, &udp4(A_IN, B_IN, *seq));
        let _ = s.send_inner(1, &udp4(B_IN, A_IN, *seq));
        let next = s.now + Duration::from_millis(100);
        s.run(next);
        s.now = s.now.max(next);
    }
}

/// The first time (100 ms resolution, running `s` with traffic) `cond` holds, before
/// `limit`.
fn traffic_until(
    s: &mut Sim,
    limit: Timestamp,
    seq: &mut u32,
    cond: impl Fn(&Sim) -> bool,
) -> Option<Timestamp> {
    while s.now < limit {
        if cond(s) {
            return Some(s.now);
        }
        let next = s.now + Duration::from_millis(100);
        traffic(s, next, seq);
    }
    None
}

fn has(n: &meshsec_sim::Node, f: impl Fn(&NodeEvent) -> bool) -> bool {
    n.node_events.iter().any(f)
}

fn established(n: &meshsec_sim::Node) -> bool {
    n.ike()
        .peer_sa_states(PEER)
        .any(|s| s == State::Established)
}

#[test]
fn dpd_declares_a_silent_peer_dead_and_restart_brings_it_back_after_a_netsplit() {
    let dpd = |p: &mut PeerPolicy| {
        p.dpd_delay = Some(Duration::from_secs(2));
        p.dpd_timeout = Duration::from_secs(4);
        p.dpd_action = DpdAction::Restart;
    };
    let a = node_policy(A, B, &side(true), 1, |p| {
        dpd(p);
        p.start = Start::Always;
    });
    let b = node_policy(B, A, &side(false), 2, dpd);
    let mut s = Sim::new(vec![a, b]);
    let mut seq = 0;
    // `start = always`: A comes up by itself.
    traffic(&mut s, Timestamp::from_secs(5), &mut seq);
    assert!(established(&s.nodes[0]) && established(&s.nodes[1]));
    assert!(received_seqs(&s.nodes[1]).len() >= 40);
    // The split: nothing passes, either way.
    let split = s.now;
    s.partitioned = true;
    let dead =
        |i: usize| move |s: &Sim| has(&s.nodes[i], |e| matches!(e, NodeEvent::PeerDead { .. }));
    let a_dead = traffic_until(&mut s, split + Duration::from_secs(15), &mut seq, dead(0))
        .expect("A never declared B dead");
    // A check after 2 s of silence, dead 4 s later; looks land on whole seconds.
    let took = a_dead.duration_since(split);
    eprintln!("A declared B dead {took:?} into the split");
    assert!(took <= Duration::from_secs(2 + 4 + 2), "took {took:?}");
    assert!(traffic_until(&mut s, split + Duration::from_secs(15), &mut seq, dead(1)).is_some());
    assert!(!established(&s.nodes[0]));
    // 30 s of split; both keep trying (dpd_action = restart) and time out.
    traffic(&mut s, split + Duration::from_secs(30), &mut seq);
    let healed = s.now;
    s.partitioned = false;
    let first_after = seq + 1;
    let back = traffic_until(&mut s, healed + Duration::from_secs(10), &mut seq, |s| {
        received_seqs(&s.nodes[1]).iter().any(|q| *q >= first_after)
            && received_seqs(&s.nodes[0]).iter().any(|q| *q >= first_after)
    })
    .expect("the tunnel did not come back");
    let took = back.duration_since(healed);
    eprintln!("the tunnel was back {took:?} after the path");
    assert!(took < Duration::from_secs(5), "back after {took:?}");
    // Both ends restarted: the duplicate IKE SAs converge to one pair.
    traffic(&mut s, back + Duration::from_secs(30), &mut seq);
    assert_one_ike_sa(&s, "after the netsplit");
    assert_one_pair(&s, "after the netsplit");
}

#[test]
fn invalid_spi_heals_a_half_sa_within_seconds() {
    heal_half_sa(false);
}

#[test]
fn invalid_spi_heals_a_half_sa_while_strangers_flood_esp_with_unknown_spis() {
    heal_half_sa(true);
}

/// ESP with random SPIs from random addresses, `n` packets, into B's data plane.
fn flood_unknown_spis(s: &mut Sim, rng: &mut SeededRandom, n: u32) {
    let now = s.now;
    let b = s.nodes[1].addr.ip();
    for _ in 0..n {
        let r = rng.next_u64();
        let mut esp = (r as u32 | 0x100).to_be_bytes().to_vec();
        esp.extend_from_slice(&[0u8; 60]);
        let src = IpAddr::from([203, 0, 113, (r >> 40) as u8 | 1]);
        let mut buf = vec![0u8; HEADROOM + esp.len() + TAILROOM];
        buf[HEADROOM..HEADROOM + esp.len()].copy_from_slice(&esp);
        let mut pkt = PacketBuf::new(&mut buf, HEADROOM, HEADROOM + esp.len());
        let _ = s.nodes[1].host.backend_mut().open(now, &mut pkt, src, b);
    }
    s.nodes[1].host.handle_backend_reports(now);
}

fn heal_half_sa(flood: bool) {
    let mut rng = SeededRandom::new(77);
    let mut r = Run::established(sim(side(true), side(false)));
    let mut seq = 0;
    let t = r.s.now + Duration::from_secs(1);
    traffic(&mut r.s, t, &mut seq);
    let old = assert_one_pair(&r.s, "before");
    // B's data plane loses the inbound half of the CHILD SA; neither engine knows.
    let dropped = r.s.nodes[1]
        .host
        .handle_command(
            t,
            Command::DropSa {
                peer: PEER,
                half: SaHalf::Inbound,
            },
        )
        .unwrap();
    assert_eq!(
        dropped,
        meshsec_node::Done::Dropped {
            spi: old.1.to_string(),
            removed: true
        }
    );
    let first_after = seq + 1;
    // A's ESP now reaches B for an unknown SPI: B tells A (INVALID_SPI, inside the IKE SA),
    // A replaces the CHILD SA.
    let limit = t + Duration::from_secs(10);
    let healed = loop {
        if received_seqs(&r.s.nodes[1])
            .iter()
            .any(|q| *q > first_after)
        {
            break r.s.now;
        }
        assert!(r.s.now < limit, "never healed");
        if flood {
            // 3,000 a second: far beyond every per-second budget on the way.
            flood_unknown_spis(&mut r.s, &mut rng, 300);
        }
        let next = r.s.now + Duration::from_millis(100);
        traffic(&mut r.s, next, &mut seq);
    };
    let took = healed.duration_since(t);
    eprintln!("half SA healed {took:?} after B lost it");
    assert!(took < Duration::from_secs(2), "healed after {took:?}");
    assert!(has(&r.s.nodes[1], |e| matches!(
        e,
        NodeEvent::InvalidSpiSent { spi, .. } if *spi == old.1
    )));
    assert!(r.s.nodes[0].events.iter().any(|e| matches!(
        e,
        meshsec_ike::Event::HealingChildSa { outbound_spi, .. } if outbound_spi.at_peer() == old.1
    )));
    traffic(&mut r.s, healed + Duration::from_secs(10), &mut seq);
    let new = assert_one_pair(&r.s, "after");
    assert!(new.0 != old.0 && new.1 != old.1);
    assert!(failures_of(&r.s).is_empty(), "{:?}", failures_of(&r.s));
}

#[test]
fn the_through_tunnel_check_recreates_a_child_sa_whose_esp_stopped_one_way() {
    let check = |p: &mut PeerPolicy| p.tunnel_check = Some(Duration::from_secs(3));
    let a = node_policy(A, B, &side(true), 1, check);
    let b = node_policy(B, A, &side(false), 2, |_| {});
    let mut r = Run::established(Sim::new(vec![a, b]));
    let mut seq = 0;
    let t = r.s.now + Duration::from_secs(1);
    traffic(&mut r.s, t, &mut seq);
    // ESP of the current CHILD SA from B to A is lost on the way (IKE still passes): B's
    // outbound SPI is A's inbound SPI.
    let (a_in, _) = assert_one_pair(&r.s, "before");
    let lost = a_in.get().to_be_bytes();
    r.s.set_esp_faults(Box::new(move |_, d| {
        if d.esp.get(..4) == Some(&lost[..]) {
            Fate::Drop
        } else {
            Fate::Deliver
        }
    }));
    let broken = |s: &Sim| has(&s.nodes[0], |e| matches!(e, NodeEvent::TunnelBroken { .. }));
    let found = traffic_until(&mut r.s, t + Duration::from_secs(15), &mut seq, broken)
        .expect("the broken CHILD SA was not noticed");
    let took = found.duration_since(t);
    eprintln!("one-way ESP loss found {took:?} after it started");
    // 3 s of silence (looks each second while we send), then one IKE round trip.
    assert!(took <= Duration::from_secs(3 + 2), "took {took:?}");
    let first_after = seq + 1;
    let back = traffic_until(&mut r.s, found + Duration::from_secs(5), &mut seq, |s| {
        received_seqs(&s.nodes[0]).iter().any(|q| *q > first_after)
    })
    .expect("ESP from B did not come back");
    traffic(&mut r.s, back + Duration::from_secs(10), &mut seq);
    let (a_new, _) = assert_one_pair(&r.s, "after");
    assert_ne!(a_new, a_in);
    assert!(failures_of(&r.s).is_empty(), "{:?}", failures_of(&r.s));
}

#[test]
fn an_idle_node_with_100_peers_wakes_up_only_for_its_deadlines() {
    use meshsec_ike::PeerConfig;
    let n = 100u8;
    let addr_of = |i: u8| format!("198.51.100.{}:500", i + 1);
    let liveness = |p: &mut PeerPolicy| {
        p.dpd_delay = Some(Duration::from_secs(30));
        p.dpd_timeout = Duration::from_secs(10);
        p.tunnel_check = Some(Duration::from_secs(30));
        p.ike.child_lifetime = Some(Duration::from_secs(3600));
        p.ike.ike_lifetime = Some(Duration::from_secs(4 * 3600));
    };
    let config = |me: u8, peer: u8| -> PeerConfig {
        let mut c = peer_config(&addr_of(peer), &side(true));
        c.name = format!("h{peer}");
        c.local_id = fqdn(Box::leak(format!("h{me}.test").into_boxed_str()));
        c.remote_id = fqdn(Box::leak(format!("h{peer}.test").into_boxed_str()));
        c.local_ts = vec![prefix(&format!("10.{me}.0.0/16"))];
        c.remote_ts = vec![prefix(&format!("10.{peer}.0.0/16"))];
        c
    };
    // Host 0 with 100 peers, each of them with host 0 only.
    let hub_addr = addr_of(0);
    let mut hub = host(
        &hub_addr,
        endpoint(&hub_addr, 1, |_| {}),
        {
            let mut p = PeerPolicy::passive(config(0, 1));
            liveness(&mut p);
            p.start = Start::Always;
            p
        },
        1,
    );
    for i in 2..=n {
        let mut p = PeerPolicy::passive(config(0, i));
        liveness(&mut p);
        p.start = Start::Always;
        hub.host
            .handle_command(Timestamp::ZERO, Command::AddPeer(p))
            .unwrap();
    }
    let mut nodes = vec![hub];
    for i in 1..=n {
        let me = addr_of(i);
        let mut p = PeerPolicy::passive(config(i, 0));
        liveness(&mut p);
        nodes.push(host(
            &me,
            endpoint(&me, 100 + u64::from(i), |_| {}),
            p,
            100 + u64::from(i),
        ));
    }
    let mut s = Sim::new(nodes);
    s.run(Timestamp::from_secs(60));
    let up = (0..n)
        .filter(|i| {
            s.nodes[0]
                .ike()
                .established_with(meshsec_sim::PeerId::new(u32::from(*i)))
                > 0
        })
        .count();
    assert_eq!(up, usize::from(n), "all peers established");
    // Ten idle minutes.
    let (from, to) = (Timestamp::from_secs(60), Timestamp::from_secs(660));
    let before = (s.nodes[0].wakeups, s.log.len());
    s.run(to);
    let wakeups = s.nodes[0].wakeups - before.0;
    let hub_ip = s.nodes[0].addr.ip();
    let exchanges = s.log[before.1..]
        .iter()
        .filter(|(_, t, _)| t.src.ip() == hub_ip)
        .count();
    let secs = to.duration_since(from).as_secs_f64();
    let per_second = wakeups as f64 / secs;
    eprintln!(
        "idle hub with {n} peers: {wakeups} wakeups in {secs} s ({per_second:.3}/s), \
         {exchanges} IKE messages sent (DPD)"
    );
    assert!(per_second <= 2.0, "{per_second:.3} wakeups/s");
    // DPD keeps every tunnel checked: about one exchange per peer per 30 s of silence.
    assert!(exchanges > 0);
    assert!(failures_of(&s).is_empty(), "{:?}", failures_of(&s));
}
