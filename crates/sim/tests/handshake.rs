//! Two IKE endpoints establish IKE and CHILD SAs on virtual time: every ENCR × PRF × DH
//! combination, tunnel and transport, IPv4 and IPv6 selectors; with loss, duplication and
//! delay; and every mismatch explained on both sides.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use meshsec_ike::{ChildMode, Event, Failure};
use meshsec_sim::{Fate, Node, SeededRandom, Sim};
use meshsec_wire::registry::{ExchangeType, NotifyType};

mod common;
use common::*;

/// Both sides installed exactly one CHILD SA pair and their keys/SPIs mirror each other.
fn assert_one_matching_pair(s: &Sim, ctx: &str) {
    let (a, b) = (&s.nodes[0], &s.nodes[1]);
    assert!(
        failures(a).is_empty() && failures(b).is_empty(),
        "{ctx}: {:?} / {:?}",
        failures(a),
        failures(b)
    );
    assert_eq!((established(a), established(b)), (1, 1), "{ctx}");
    let (ca, cb) = (children(a), children(b));
    assert_eq!((ca.len(), cb.len()), (1, 1), "{ctx}");
    let (ca, cb) = (ca[0], cb[0]);
    assert_eq!(ca.outbound.spi.at_peer(), cb.inbound.spi, "{ctx}");
    assert_eq!(ca.inbound.spi, cb.outbound.spi.at_peer(), "{ctx}");
    assert_eq!(
        ca.outbound.encr_key.expose(),
        cb.inbound.encr_key.expose(),
        "{ctx}"
    );
    assert_eq!(
        ca.inbound.encr_key.expose(),
        cb.outbound.encr_key.expose(),
        "{ctx}"
    );
    assert_eq!(
        ca.outbound.integ_key.expose(),
        cb.inbound.integ_key.expose(),
        "{ctx}"
    );
    assert_ne!(
        ca.outbound.encr_key.expose(),
        ca.inbound.encr_key.expose(),
        "{ctx}"
    );
    assert_eq!(
        (ca.encr, ca.integ, ca.esn, ca.mode),
        (cb.encr, cb.integ, cb.esn, cb.mode),
        "{ctx}"
    );
    assert_eq!(
        (&ca.local_ts, &ca.remote_ts),
        (&cb.remote_ts, &cb.local_ts),
        "{ctx}"
    );
    assert_eq!(s.nodes[0].ike().ike_sa_count(), 1, "{ctx}");
    assert_eq!(s.nodes[1].ike().ike_sa_count(), 1, "{ctx}");
}

fn run(mut s: Sim) -> Sim {
    s.nodes[0]
        .ike_mut()
        .initiate(Timestamp::ZERO, PEER)
        .unwrap();
    s.run(LONG);
    s
}

#[test]
fn every_encr_prf_dh_combination_establishes() {
    let encrs = [
        "aes128gcm16",
        "aes256gcm16",
        "chacha20poly1305",
        "aes128-sha256",
        "aes256-sha512",
    ];
    let prfs = ["prfsha256", "prfsha384", "prfsha512"];
    let groups = [
        "x25519", "ecp256", "ecp384", "ecp521", "modp2048", "modp3072", "modp4096",
    ];
    let mut n = 0;
    for e in encrs {
        for p in prfs {
            for g in groups {
                let prop: &'static str = Box::leak(format!("{e}-{p}-{g}").into_boxed_str());
                let esp: &'static str = if e.contains("gcm") || e.contains("chacha") {
                    e
                } else {
                    "aes128-sha256"
                };
                let mk = |a| Side {
                    ike: vec![prop],
                    esp: vec![esp],
                    ..side(a)
                };
                let s = run(sim(mk(true), mk(false)));
                assert_one_matching_pair(&s, prop);
                n += 1;
            }
        }
    }
    assert_eq!(n, 105);
}

#[test]
fn transport_mode_ipv6_selectors_and_esn() {
    let mk = |a: bool| Side {
        mode: ChildMode::Transport,
        esp: vec!["aes256gcm16-esn"],
        local_ts: vec![if a {
            "2001:db8:1::/64"
        } else {
            "2001:db8:2::/64"
        }],
        remote_ts: vec![if a {
            "2001:db8:2::/64"
        } else {
            "2001:db8:1::/64"
        }],
        ..side(a)
    };
    let s = run(sim(mk(true), mk(false)));
    assert_one_matching_pair(&s, "transport v6 esn");
    let c = children(&s.nodes[0])[0];
    assert_eq!((c.mode, c.esn), (ChildMode::Transport, true));
    assert!(c.local_ts[0].start.is_ipv6());
}

#[test]
fn responder_narrows_selectors_and_picks_its_preference() {
    let a = Side {
        local_ts: vec!["10.0.0.0/8"],
        remote_ts: vec!["0.0.0.0/0"],
        ike: vec!["aes128-sha256-modp3072", "aes256gcm16-prfsha256-x25519"],
        ..side(true)
    };
    let b = Side {
        ike: vec!["aes256gcm16-prfsha256-x25519", "aes128-sha256-modp3072"],
        ..side(false)
    };
    let s = run(sim(a, b));
    assert!(
        failures(&s.nodes[0]).is_empty(),
        "{:?}",
        failures(&s.nodes[0])
    );
    let c = children(&s.nodes[0])[0];
    assert_eq!(meshsec_ike::ts::describe(&c.local_ts[0]), "10.1.0.0/24");
    assert_eq!(meshsec_ike::ts::describe(&c.remote_ts[0]), "10.2.0.0/24");
}

#[test]
fn invalid_ke_payload_makes_the_initiator_retry_with_the_wanted_group() {
    let a = Side {
        ike: vec!["aes256gcm16-prfsha256-x25519-ecp256"],
        ..side(true)
    };
    let b = Side {
        ike: vec!["aes256gcm16-prfsha256-ecp256"],
        ..side(false)
    };
    let s = run(sim(a, b));
    assert_one_matching_pair(&s, "INVALID_KE retry");
    // Request (x25519), INVALID_KE answer, request (ecp256), response, IKE_AUTH pair.
    assert_eq!(s.log.len(), 6);
}

#[test]
fn every_message_dropped_once_duplicated_or_delayed_still_gives_one_pair() {
    for victim in 0..4u64 {
        for fate in [
            Fate::Drop,
            Fate::Duplicate,
            Fate::Delay(Duration::from_millis(700)),
        ] {
            let s = sim(side(true), side(false)).with_faults(Box::new(move |n, _| {
                if n == victim { fate } else { Fate::Deliver }
            }));
            let s = run(s);
            assert_one_matching_pair(&s, &format!("message {victim} {fate:?}"));
        }
    }
}

#[test]
fn silence_ends_in_a_timeout_after_the_documented_give_up_time() {
    let s = sim(side(true), side(false)).with_faults(Box::new(|_, _| Fate::Drop));
    let s = run(s);
    let f = failures(&s.nodes[0]);
    assert_eq!(
        f,
        vec![&Failure::Timeout {
            exchange: ExchangeType::IKE_SA_INIT,
            tries: 4
        }]
    );
    // The first transmission and 3 retransmissions, waiting 0.5, 1, 2 and 2 s (the doubling
    // stops at the 2 s maximum): given up at 5.5 s, as EndpointConfig documents.
    assert_eq!(s.log.len(), 4);
    assert_eq!(s.now, Timestamp::from_millis(5_500));
    assert_eq!(s.nodes[0].ike().ike_sa_count(), 0);
}

#[test]
fn no_proposal_chosen_is_explained_on_both_sides() {
    let a = Side {
        ike: vec!["aes128-sha256-modp2048"],
        ..side(true)
    };
    let b = Side {
        ike: vec!["aes256gcm16-prfsha256-x25519"],
        ..side(false)
    };
    let s = run(sim(a, b));
    let fb = failures(&s.nodes[1]);
    assert_eq!(
        fb[0].to_string(),
        "NO_PROPOSAL_CHOSEN: peer offered [AES_CBC_128/PRF_HMAC_SHA2_256/HMAC_SHA2_256_128/MODP_2048]; \
         we accept [AES_GCM_16_256/PRF_HMAC_SHA2_256/CURVE25519]; first mismatch: encryption algorithm"
    );
    let fa = failures(&s.nodes[0]);
    assert!(matches!(
        fa[0],
        Failure::PeerRefused {
            notify: NotifyType::NO_PROPOSAL_CHOSEN,
            ..
        }
    ));
    assert!(
        fa[0]
            .to_string()
            .contains("we offered [AES_CBC_128/PRF_HMAC_SHA2_256/HMAC_SHA2_256_128/MODP_2048]"),
        "{}",
        fa[0]
    );
    assert_eq!(
        s.nodes[0].ike().ike_sa_count() + s.nodes[1].ike().ike_sa_count(),
        0
    );
}

#[test]
fn wrong_psk_is_authentication_failed_on_both_sides() {
    let b = Side {
        psk: "another pre-shared key, also long enough",
        ..side(false)
    };
    let s = run(sim(side(true), b));
    assert_eq!(failures(&s.nodes[1]).len(), 1);
    assert!(
        failures(&s.nodes[1])[0]
            .to_string()
            .contains("does not verify with our PSK")
    );
    assert!(
        failures(&s.nodes[0])[0]
            .to_string()
            .contains("could not verify our AUTH")
    );
    assert!(
        !format!("{:?}", s.nodes[1].events).contains("another pre-shared"),
        "the PSK leaked into an event"
    );
    assert_eq!(established(&s.nodes[0]) + established(&s.nodes[1]), 0);
}

#[test]
fn fqdn_identities_compare_without_regard_to_case() {
    // Each side configured the other's name in another case (as strongSwan compares them).
    let a = Side {
        remote_id: "B.Test",
        ..side(true)
    };
    let b = Side {
        remote_id: "A.TEST",
        ..side(false)
    };
    let s = run(sim(a, b));
    for n in &s.nodes {
        assert!(failures(n).is_empty(), "{:?}", failures(n));
    }
    assert_one_matching_pair(&s, "case-insensitive identities");
}

#[test]
fn identity_mismatch_names_expected_and_presented() {
    let a = Side {
        local_id: "intruder.test",
        ..side(true)
    };
    let s = run(sim(a, side(false)));
    assert_eq!(
        failures(&s.nodes[1])[0].to_string(),
        "identity mismatch: expected fqdn:a.test, the peer presented fqdn:intruder.test"
    );
    assert!(matches!(
        failures(&s.nodes[0])[0],
        Failure::AuthenticationFailed { .. }
    ));
    // The initiator expecting another responder identity:
    let a = Side {
        remote_id: "c.test",
        ..side(true)
    };
    let s = run(sim(a, side(false)));
    assert!(
        failures(&s.nodes[1])[0]
            .to_string()
            .contains("expected fqdn:b.test (our identity)"),
        "{}",
        failures(&s.nodes[1])[0]
    );
}

#[test]
fn ts_unacceptable_keeps_the_ike_sa_and_explains() {
    let a = Side {
        local_ts: vec!["10.9.0.0/24"],
        ..side(true)
    };
    let s = run(sim(a, side(false)));
    assert_eq!((established(&s.nodes[0]), established(&s.nodes[1])), (1, 1));
    assert!(children(&s.nodes[0]).is_empty() && children(&s.nodes[1]).is_empty());
    assert_eq!(
        failures(&s.nodes[1])[0].to_string(),
        "TS_UNACCEPTABLE: proposed TSi [10.9.0.0/24] TSr [10.2.0.0/24]; allowed TSi [10.1.0.0/24] TSr [10.2.0.0/24]"
    );
    assert!(failures(&s.nodes[0])[0].to_string().starts_with("TS_UNACCEPTABLE: the peer refused our IKE_AUTH; we offered TSi [10.9.0.0/24] TSr [10.2.0.0/24]"), "{}", failures(&s.nodes[0])[0]);
}

#[test]
fn esp_proposal_and_mode_mismatches_are_explained() {
    let a = Side {
        esp: vec!["chacha20poly1305"],
        ..side(true)
    };
    let s = run(sim(a, side(false)));
    assert!(failures(&s.nodes[1])[0].to_string().starts_with("NO_PROPOSAL_CHOSEN: peer offered [CHACHA20_POLY1305/NO_EXT_SEQ]; we accept [AES_GCM_16_256/NO_EXT_SEQ]"), "{}", failures(&s.nodes[1])[0]);
    assert!(
        failures(&s.nodes[0])[0]
            .to_string()
            .contains("we offered ESP [CHACHA20_POLY1305/NO_EXT_SEQ]")
    );
    let a = Side {
        mode: ChildMode::Transport,
        ..side(true)
    };
    let s = run(sim(a, side(false)));
    assert_eq!(
        failures(&s.nodes[1])[0],
        &Failure::ModeMismatch {
            ours: ChildMode::Tunnel
        }
    );
    assert!(
        failures(&s.nodes[0])[0]
            .to_string()
            .contains("in Transport mode"),
        "{}",
        failures(&s.nodes[0])[0]
    );
}

fn with_cookie_threshold(mut s: Sim, threshold: usize) -> Sim {
    s.nodes[1] = node_with(B, A, &side(false), 2, |ec| ec.cookie_threshold = threshold);
    s
}

#[test]
fn cookies_always_on_cost_one_round_trip_and_still_establish() {
    let s = run(with_cookie_threshold(sim(side(true), side(false)), 0));
    assert_one_matching_pair(&s, "cookie mode");
    // Request, COOKIE answer, request with cookie, response, IKE_AUTH pair.
    assert_eq!(s.log.len(), 6);
    let answers = s.log.iter().filter(|(_, t, _)| t.src == addr(B)).count();
    assert_eq!(answers, 3);
}

#[test]
fn a_flood_leaves_no_state_in_cookie_mode_and_the_real_initiator_gets_through() {
    // B takes A from anywhere (a road-warrior responder: where floods from many sources
    // reach the key exchange unless cookies stop them).
    let mut s = sim(side(true), side(false));
    let mut cfg = peer_config(A, &side(false));
    cfg.accept_from = anywhere();
    let ike = endpoint(B, 2, |ec| ec.cookie_threshold = 10);
    s.nodes[1] = host(B, ike, meshsec_node::PeerPolicy::passive(cfg), 2);
    let mut rng = SeededRandom::new(99);
    // 5,000 IKE_SA_INIT requests from spoofed addresses and random SPIs (a copy of a real
    // request with the SPI changed).
    let mut template = node(A, B, &side(true), 5);
    template.ike_mut().initiate(Timestamp::ZERO, PEER).unwrap();
    let request = template.ike_mut().poll_transmit().unwrap().payload;
    for i in 0..5_000u32 {
        let mut r = request.clone();
        r[..8].copy_from_slice(&rng.next_u64().to_be_bytes());
        let from: SocketAddr = SocketAddr::new(IpAddr::from([203, 0, 113, (i % 250) as u8]), 500);
        s.nodes[1].ike_mut().handle_datagram(
            Timestamp::from_millis(u64::from(i)),
            from,
            addr(B),
            &r,
        );
    }
    // At most the threshold's worth of half-open SAs exist; the rest got stateless cookies.
    assert!(
        s.nodes[1].ike().half_open_count() <= 10,
        "{}",
        s.nodes[1].ike().half_open_count()
    );
    assert!(s.nodes[1].ike().ike_sa_count() <= 10);
    let mut cookies = 0;
    while let Some(t) = s.nodes[1].ike_mut().poll_transmit() {
        if t.payload.len() < 100 {
            cookies += 1;
        }
    }
    assert!(cookies >= 4_990, "{cookies}");
    s.now = Timestamp::from_secs(6);
    s.nodes[0].ike_mut().initiate(s.now, PEER).unwrap();
    s.run(LONG);
    let a = &s.nodes[0];
    assert_eq!(established(a), 1, "{:?}", failures(a));
    assert_eq!(children(a).len(), 1);
}

/// After everything settled: one established IKE SA per side and one CHILD SA pair whose
/// SPIs and keys mirror each other.
fn assert_converged(s: &Sim, ctx: &str) {
    for n in &s.nodes {
        assert_eq!(
            n.ike().established_with(PEER),
            1,
            "{ctx}: {:?}",
            failures(n)
        );
        assert_eq!(n.ike().ike_sa_count(), 1, "{ctx}");
    }
    let live = |n: &Node| -> Vec<(InboundSpi, OutboundSpi, Vec<u8>)> {
        let mut installed: Vec<(InboundSpi, OutboundSpi, Vec<u8>)> = children(n)
            .iter()
            .map(|c| {
                (
                    c.inbound.spi,
                    c.outbound.spi,
                    c.outbound.encr_key.expose().to_vec(),
                )
            })
            .collect();
        for e in &n.events {
            if let Event::DeleteChildSa { inbound_spi, .. } = e {
                installed.retain(|c| c.0 != *inbound_spi);
            }
        }
        installed
    };
    let (a, b) = (live(&s.nodes[0]), live(&s.nodes[1]));
    assert_eq!((a.len(), b.len()), (1, 1), "{ctx}: {a:?} {b:?}");
    assert_eq!(
        (a[0].0, a[0].1),
        (b[0].1.at_peer(), b[0].0.at_peer()),
        "{ctx}: SPIs do not mirror"
    );
}

#[test]
fn simultaneous_initiation_converges_to_one_sa_pair_at_every_offset() {
    let offsets: Vec<u64> = (0..=12).chain((15..=60).step_by(5)).collect();
    for offset in offsets {
        for seed in [1u64, 2, 3] {
            let mut s = Sim::new(vec![
                node(A, B, &side(true), seed),
                node(B, A, &side(false), seed + 100),
            ]);
            s.nodes[0]
                .ike_mut()
                .initiate(Timestamp::ZERO, PEER)
                .unwrap();
            s.run(Timestamp::from_millis(offset));
            let t = s.now.max(Timestamp::from_millis(offset));
            s.nodes[1].ike_mut().initiate(t, PEER).unwrap();
            s.run(LONG);
            let ctx = format!("offset {offset} ms seed {seed}");
            assert_converged(&s, &ctx);
            let deleted = |n: &Node| {
                n.events
                    .iter()
                    .filter(|e| matches!(e, Event::IkeSaDeleted { .. }))
                    .count()
            };
            let (da, db) = (deleted(&s.nodes[0]), deleted(&s.nodes[1]));
            if offset <= 20 {
                // Both handshakes were under way at once: both completed and each side
                // removed the same duplicate.
                assert_eq!((da, db), (1, 1), "{ctx}");
            } else if offset >= 40 {
                // A's IKE SA was up at B before B's initiate: nothing to resolve.
                assert_eq!((da, db), (0, 0), "{ctx}");
            }
        }
    }
}

#[test]
fn behind_a_nat_both_sides_float_to_4500_and_encapsulate() {
    let inside = "10.0.0.1:500";
    let mut s = Sim::new(vec![
        node(inside, B, &side(true), 1),
        node(B, A, &side(false), 2),
    ]);
    // B knows A by its public address.
    s.nodes[1] = node(B, "203.0.113.1:10500", &side(false), 2);
    s.nat = Some(("10.0.0.1".parse().unwrap(), "203.0.113.1".parse().unwrap()));
    let s = run(s);
    assert_one_matching_pair(&s, "NAT");
    let (ca, cb) = (children(&s.nodes[0])[0], children(&s.nodes[1])[0]);
    assert!(ca.udp_encap && cb.udp_encap);
    assert_eq!(ca.local, addr("10.0.0.1:4500"));
    assert_eq!(ca.remote, addr("192.0.2.2:4500"));
    assert_eq!(
        cb.remote,
        addr("203.0.113.1:14500"),
        "B answers the NAT's mapping of 4500"
    );
    // IKE_AUTH travelled on 4500.
    assert!(
        s.log
            .iter()
            .skip(2)
            .all(|(_, t, _)| t.dst.port() == 4500 || t.dst.port() == 14500)
    );
    for n in &s.nodes {
        assert!(n.events.iter().any(|e| matches!(
            e,
            Event::IkeSaEstablished {
                udp_encap: true,
                ..
            }
        )));
    }
}

#[test]
fn without_nat_nobody_floats() {
    let s = run(sim(side(true), side(false)));
    let c = children(&s.nodes[0])[0];
    assert!(!c.udp_encap);
    assert_eq!(c.remote, addr(B));
}

fn deleted(n: &Node) -> (usize, usize) {
    let ike = n
        .events
        .iter()
        .filter(|e| matches!(e, Event::IkeSaDeleted { .. }))
        .count();
    let child = n
        .events
        .iter()
        .filter(|e| matches!(e, Event::DeleteChildSa { .. }))
        .count();
    (ike, child)
}

/// The (inbound, outbound) SPIs of the first DeleteChildSa a node raised.
fn deleted_pair(n: &Node) -> (InboundSpi, OutboundSpi) {
    n.events
        .iter()
        .find_map(|e| match e {
            Event::DeleteChildSa {
                inbound_spi,
                outbound_spi,
                ..
            } => Some((*inbound_spi, *outbound_spi)),
            _ => None,
        })
        .expect("a DeleteChildSa event")
}

fn alive(n: &Node) -> usize {
    n.events
        .iter()
        .filter(|e| matches!(e, Event::PeerAlive { .. }))
        .count()
}

#[test]
fn liveness_check_is_answered() {
    let mut s = run(sim(side(true), side(false)));
    let t = s.now;
    assert!(s.nodes[1].ike_mut().check_liveness(t, PEER).unwrap());
    // A second check while one is outstanding waits for its turn (window size 1): it is
    // sent after the first answer, not alongside.
    assert!(s.nodes[1].ike_mut().check_liveness(t, PEER).unwrap());
    s.step(t + Duration::from_millis(15));
    let requests = s
        .log
        .iter()
        .filter(|(at, tr, _)| *at >= t && tr.src == addr(B))
        .count();
    assert_eq!(requests, 1, "two requests in flight at once");
    s.run(LONG);
    assert_eq!((alive(&s.nodes[0]), alive(&s.nodes[1])), (2, 2));
    assert!(failures(&s.nodes[1]).is_empty());
}

#[test]
fn a_dead_peer_times_out_and_its_sas_are_deleted() {
    let mut s = run(sim(side(true), side(false)));
    // From now on B hears nothing.
    let mut s2 = Sim::new(std::mem::take(&mut s.nodes)).with_faults(Box::new(|_, _| Fate::Drop));
    s2.now = s.now;
    assert!(s2.nodes[0].ike_mut().check_liveness(s2.now, PEER).unwrap());
    s2.run(LONG);
    let a = &s2.nodes[0];
    assert_eq!(
        failures(a),
        vec![&Failure::Timeout {
            exchange: ExchangeType::INFORMATIONAL,
            tries: 4
        }]
    );
    assert_eq!(deleted(a), (1, 1));
    assert_eq!(a.ike().ike_sa_count(), 0);
}

#[test]
fn delete_removes_the_sas_on_both_sides_even_if_the_first_request_is_lost() {
    let mut s = run(sim(side(true), side(false)));
    // The new network numbers datagrams from 0: the first one (the Delete request) is lost.
    let mut s2 = Sim::new(std::mem::take(&mut s.nodes)).with_faults(Box::new(|n, _| {
        if n == 0 { Fate::Drop } else { Fate::Deliver }
    }));
    s2.now = s.now;
    assert!(s2.nodes[1].ike_mut().delete_ike_sa(s2.now, PEER).unwrap());
    s2.run(LONG);
    for n in &s2.nodes {
        assert_eq!(deleted(n), (1, 1), "{:?}", n.events);
        assert_eq!(n.ike().ike_sa_count(), 0);
        assert!(failures(n).is_empty(), "{:?}", failures(n));
    }
    // The DeleteChildSa events name the same pair from both ends.
    let (a, b) = (deleted_pair(&s2.nodes[0]), deleted_pair(&s2.nodes[1]));
    assert_eq!((a.0, a.1), (b.1.at_peer(), b.0.at_peer()));
}

/// The answer to a Delete that removes CHILD SAs leaves 50 ms after the removal: what was
/// sealed on them just before may still be in the network or in the peer's ESP queue, and a
/// peer like strongSwan drops it once it has the answer.
#[test]
fn the_answer_to_a_delete_follows_the_last_packets_sealed_on_what_it_removes() {
    let mut s = run(sim(side(true), side(false)));
    let t = s.now;
    assert!(s.nodes[1].ike_mut().delete_ike_sa(t, PEER).unwrap());
    s.run(LONG);
    let sent_by = |from: &str| {
        s.log
            .iter()
            .find(|(at, tr, _)| *at >= t && tr.src == addr(from))
            .map(|(at, _, _)| *at)
            .expect("a datagram")
    };
    let (request, answer) = (sent_by(B), sent_by(A));
    // 10 ms on the way, then 50 ms held.
    assert_eq!(answer.duration_since(request), Duration::from_millis(60));
    for n in &s.nodes {
        assert_eq!(deleted(n), (1, 1), "{:?}", n.events);
        assert_eq!(n.ike().ike_sa_count(), 0);
    }
    // A liveness check removes nothing: answered at once.
    let mut s = run(sim(side(true), side(false)));
    let t = s.now;
    assert!(s.nodes[1].ike_mut().check_liveness(t, PEER).unwrap());
    s.run(LONG);
    let answer = s
        .log
        .iter()
        .find(|(at, tr, _)| *at >= t && tr.src == addr(A))
        .map(|(at, _, _)| *at)
        .expect("an answer");
    assert_eq!(answer.duration_since(t), Duration::from_millis(10));
}

#[test]
fn half_open_sas_expire_and_stateless_replies_are_capped() {
    let mut a = node(A, B, &side(true), 1);
    let mut b = node(B, A, &side(false), 2);
    a.ike_mut().initiate(Timestamp::ZERO, PEER).unwrap();
    let request = a.ike_mut().poll_transmit().unwrap().payload;
    b.ike_mut()
        .handle_datagram(Timestamp::ZERO, addr(A), addr(B), &request);
    assert!(
        b.ike_mut().poll_transmit().is_some(),
        "the IKE_SA_INIT response"
    );
    assert_eq!(b.ike().half_open_count(), 1);
    let expiry = b.ike_mut().poll_timeout().unwrap();
    assert_eq!(expiry, Timestamp::from_secs(30));
    b.ike_mut().handle_timeout(expiry);
    assert_eq!(b.ike().ike_sa_count(), 0);
    // A source that keeps sending unacceptable proposals gets at most 20 answers a second.
    let mut bad = node(
        A,
        B,
        &Side {
            ike: vec!["aes128-sha256-modp2048"],
            ..side(true)
        },
        3,
    );
    bad.ike_mut().initiate(Timestamp::ZERO, PEER).unwrap();
    let request = bad.ike_mut().poll_transmit().unwrap().payload;
    let mut answers = 0;
    for i in 0..100u64 {
        let mut r = request.clone();
        r[..8].copy_from_slice(&(i + 1).to_be_bytes());
        // 100 requests, 20 ms apart: seconds 0 and 1.
        b.ike_mut()
            .handle_datagram(Timestamp::from_millis(i * 20), addr(A), addr(B), &r);
        while b.ike_mut().poll_transmit().is_some() {
            answers += 1;
        }
    }
    assert_eq!(answers, 40);
}

#[test]
fn big_messages_travel_as_fragments_and_are_reassembled() {
    // Long selector lists make IKE_AUTH big; a 300-octet fragment size splits it.
    let many = |base: u8| -> Vec<&'static str> {
        (0..40)
            .map(|i| &*Box::leak(format!("10.{base}.{i}.0/24").into_boxed_str()))
            .collect()
    };
    let a = Side {
        local_ts: many(1),
        remote_ts: many(2),
        ..side(true)
    };
    let b = Side {
        local_ts: many(2),
        remote_ts: many(1),
        ..side(false)
    };
    let mut s = sim(a, b);
    for n in &mut s.nodes {
        n.ike_mut().set_fragment_size(300);
    }
    let s = run(s);
    assert_one_matching_pair(&s, "fragmented");
    assert_eq!(children(&s.nodes[0])[0].local_ts.len(), 40);
    // IKE_AUTH went out in several datagrams each way, none bigger than about 300 octets.
    let auth: Vec<usize> = s
        .log
        .iter()
        .skip(2)
        .map(|(_, t, _)| t.payload.len())
        .collect();
    assert!(auth.len() > 4, "{auth:?}");
    assert!(auth.iter().all(|l| *l <= 300), "{auth:?}");
    // And a lost fragment is recovered by retransmitting the whole message.
    let a = Side {
        local_ts: many(1),
        remote_ts: many(2),
        ..side(true)
    };
    let b = Side {
        local_ts: many(2),
        remote_ts: many(1),
        ..side(false)
    };
    let mut s = sim(a, b).with_faults(Box::new(
        |n, _| if n == 3 { Fate::Drop } else { Fate::Deliver },
    ));
    for n in &mut s.nodes {
        n.ike_mut().set_fragment_size(300);
    }
    let s = run(s);
    assert_one_matching_pair(&s, "fragment lost");
}

#[test]
fn deleting_the_child_sa_keeps_the_ike_sa() {
    let mut s = run(sim(side(true), side(false)));
    let t = s.now;
    assert!(s.nodes[0].ike_mut().delete_child_sa(t, PEER).unwrap());
    s.run(LONG);
    let (a, b) = (deleted_pair(&s.nodes[0]), deleted_pair(&s.nodes[1]));
    assert_eq!((a.0, a.1), (b.1.at_peer(), b.0.at_peer()));
    for n in &s.nodes {
        assert_eq!(deleted(n), (0, 1));
        assert_eq!(n.ike().established_with(PEER), 1);
    }
    // Nothing left to delete.
    assert!(!s.nodes[0].ike_mut().delete_child_sa(s.now, PEER).unwrap());
}
