//! What unauthenticated senders can make a responder keep, send or believe: half-open SAs
//! bounded per source and in total, cookies bound to address and port, nothing at all for
//! an address no peer is configured at, and no way for one peer's key holder to pose as
//! another peer from its own address. (The response cache's refusal to reflect is in
//! `errors.rs`, with the other counted drops.)
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use common::*;
use meshsec_ike::{ErrorKind, Event, Failure};
use meshsec_node::{Command, PeerPolicy};
use meshsec_sim::Sim;
use meshsec_wire::Message;
use meshsec_wire::payload::{Notify, Payload, PayloadBody};
use meshsec_wire::registry::NotifyType;

/// Feeds `bytes` from `from` to B at `now` and returns what B sends straight back.
fn ask(s: &mut Sim, now: Timestamp, from: SocketAddr, bytes: &[u8]) -> Vec<Vec<u8>> {
    s.nodes[1]
        .host
        .handle_ike_datagram(now, from, addr(B), bytes);
    std::iter::from_fn(|| s.nodes[1].host.poll_transmit())
        .map(|t| t.payload)
        .collect()
}

/// The COOKIE of a stateless answer.
fn cookie_of(answer: &[Vec<u8>]) -> Option<Vec<u8>> {
    let m = Message::parse(answer.first()?).ok()?;
    let n = m.payloads.first()?.as_notify()?;
    (n.ty == NotifyType::COOKIE).then(|| n.data.to_vec())
}

/// `request` with `cookie` in front (RFC 7296 §2.6).
fn with_cookie(request: &[u8], cookie: &[u8]) -> Vec<u8> {
    let mut m = Message::parse(request).unwrap();
    let n = Notify::new(NotifyType::COOKIE, cookie.to_vec());
    m.payloads.insert(0, Payload::new(PayloadBody::Notify(n)));
    m.to_bytes().unwrap()
}

/// The whole cookie dance from `from` with a request of initiator SPI `spi`: true if B
/// answered with its IKE_SA_INIT response (and so keeps a half-open SA).
fn admitted(s: &mut Sim, now: Timestamp, from: SocketAddr, first: &[u8], spi: u64) -> bool {
    let request = with_spi(first, spi);
    let Some(cookie) = cookie_of(&ask(s, now, from, &request)) else {
        return false;
    };
    let answer = ask(s, now, from, &with_cookie(&request, &cookie));
    answer.len() == 1 && cookie_of(&answer).is_none()
}

#[test]
fn a_cookie_replayed_from_other_ports_opens_nothing_and_a_restarted_peer_gets_in() {
    // Cookies always; B knows A only.
    let (mut s, first) = responder_accepting(anywhere(), |c| c.cookie_threshold = 0);
    let attacker = IpAddr::from([192, 0, 2, 66]);
    let mut now = Timestamp::ZERO;
    // One cookie, fetched from one port, opens one half-open SA there...
    let port0 = SocketAddr::new(attacker, 40000);
    let cookie = cookie_of(&ask(&mut s, now, port0, &first)).expect("a COOKIE");
    let replay = with_cookie(&first, &cookie);
    assert_eq!(ask(&mut s, now, port0, &replay).len(), 1);
    assert_eq!(s.nodes[1].ike().half_open_count(), 1);
    // ... and none from 2,000 other ports: the cookie names the port.
    for port in 40001..42001u16 {
        now += Duration::from_millis(1);
        let answer = ask(&mut s, now, SocketAddr::new(attacker, port), &replay);
        assert!(cookie_of(&answer).is_some() || answer.is_empty());
    }
    assert_eq!(s.nodes[1].ike().half_open_count(), 1);
    // Fetching a fresh cookie for each of 500 ports (60 ms apart, inside the stateless
    // answer budget) gets the attacker no more than its source's bound.
    for (i, port) in (43000..43500u16).enumerate() {
        now += Duration::from_millis(60);
        admitted(
            &mut s,
            now,
            SocketAddr::new(attacker, port),
            &first,
            0x5000 + i as u64,
        );
        assert!(s.nodes[1].ike().half_open_count() <= 16);
    }
    let evicted = s.nodes[1]
        .ike()
        .error_counters()
        .get(ErrorKind::HalfOpenEvicted);
    assert!(evicted >= 400, "{evicted}");
    // A restarts during the attack: it gets in with one cookie round trip.
    s.partitioned = false;
    s.now = now;
    s.nodes[0].ike_mut().initiate(now, PEER).unwrap();
    s.run(now + Duration::from_secs(5));
    assert_eq!(established(&s.nodes[0]), 1, "{:?}", failures(&s.nodes[0]));
    assert_eq!(s.nodes[1].ike().established_with(PEER), 1);
}

#[test]
fn a_full_table_makes_room_for_a_request_that_proved_its_address() {
    // At most 8 half-open SAs; cookies from 4 on.
    let (mut s, first) = responder_accepting(anywhere(), |c| {
        c.max_half_open = 8;
        c.cookie_threshold = 4;
    });
    let now = Timestamp::ZERO;
    let source = |i: u8| SocketAddr::new(IpAddr::from([203, 0, 113, i]), 500);
    // Four from spoofed sources, no cookie needed yet.
    for i in 1..=4u8 {
        let answer = ask(&mut s, now, source(i), &with_spi(&first, u64::from(i)));
        assert!(answer.len() == 1 && cookie_of(&answer).is_none());
    }
    // Four more that prove their addresses: the table is full.
    for i in 5..=8u8 {
        assert!(admitted(&mut s, now, source(i), &first, u64::from(i)));
    }
    assert_eq!(s.nodes[1].ike().half_open_count(), 8);
    // Each new request with a valid cookie pushes out one without, oldest first.
    for i in 9..=12u8 {
        assert!(admitted(&mut s, now, source(i), &first, u64::from(i)));
        assert_eq!(s.nodes[1].ike().half_open_count(), 8);
    }
    let counters = s.nodes[1].ike().error_counters().clone();
    assert_eq!(counters.get(ErrorKind::HalfOpenEvicted), 4);
    // The first spoofed entry is gone: its retransmission is a new request (a cookie).
    assert!(cookie_of(&ask(&mut s, now, source(1), &with_spi(&first, 1))).is_some());
    // Now every entry proved its address: a newcomer is refused, nobody is pushed out.
    assert!(!admitted(&mut s, now, source(13), &first, 13));
    let after = s.nodes[1].ike().error_counters();
    assert_eq!(after.get(ErrorKind::HalfOpenEvicted), 4);
    assert_eq!(
        after.get(ErrorKind::HalfOpenLimit),
        counters.get(ErrorKind::HalfOpenLimit) + 1
    );
}

#[test]
fn a_stranger_gets_no_answer_and_costs_no_key_exchange() {
    // B knows A only, at A's address.
    let (mut s, first) = responder(|_| {});
    let stranger = SocketAddr::new(IpAddr::from([203, 0, 113, 7]), 500);
    for i in 0..2_000u64 {
        let now = Timestamp::from_millis(i);
        assert!(ask(&mut s, now, stranger, &with_spi(&first, 0x7000 + i)).is_empty());
    }
    s.run(Timestamp::from_secs(2)); // collects the events
    let counters = s.nodes[1].ike().error_counters();
    assert_eq!(counters.get(ErrorKind::UnknownSource), 2_000);
    assert_eq!(s.nodes[1].ike().half_open_count(), 0);
    // Refused, not failed: A's status is untouched; the log (and the event queue) got a
    // few at most.
    let refusals: Vec<_> = s.nodes[1]
        .events
        .iter()
        .filter(|e| matches!(e, Event::Refused { .. }))
        .collect();
    assert!((1..=5).contains(&refusals.len()), "{}", refusals.len());
    assert!(
        !s.nodes[1]
            .events
            .iter()
            .any(|e| matches!(e, Event::Failed { .. }))
    );
    let report = s.nodes[1].host.status(Timestamp::from_secs(2));
    assert_eq!(report.refused, 2_000);
    assert!(report.refusals_not_logged >= 1_990, "{report:?}");
    assert_eq!(report.peers[0].last_failure, None);
    // The same request from A's own address is answered.
    let now = Timestamp::from_secs(3);
    assert_eq!(ask(&mut s, now, addr(A), &first).len(), 1);
}

#[test]
fn a_member_with_another_members_identity_and_key_is_refused_and_changes_nothing() {
    // B has two peers: A (192.0.2.1) and C (192.0.2.3). C knows A's identity and key and
    // claims to be A — from its own address.
    const C: &str = "192.0.2.3:500";
    let a = node(A, B, &side(true), 1);
    let mut b = node(B, A, &side(false), 2);
    let mut c_side = side(false);
    c_side.remote_id = "c.test";
    c_side.psk = "C's own pre-shared key, 32 bytes!!!";
    c_side.remote_ts = vec!["10.3.0.0/16"];
    b.host
        .handle_command(
            Timestamp::ZERO,
            Command::AddPeer(PeerPolicy::passive(peer_config(C, &c_side))),
        )
        .unwrap();
    let impostor = node(C, B, &side(true), 3);
    let mut s = Sim::new(vec![a, b, impostor]);
    s.nodes[0]
        .ike_mut()
        .initiate(Timestamp::ZERO, PEER)
        .unwrap();
    s.run(Timestamp::from_secs(5));
    assert_eq!(s.nodes[1].ike().established_with(PEER), 1);
    let before = s.nodes[1].ike().ike_sas();
    let status_before = s.nodes[1].host.status(s.now).peers[0].last_failure.clone();
    // C initiates as A, with A's key.
    let t = s.now;
    s.nodes[2].ike_mut().initiate(t, PEER).unwrap();
    s.run(t + Duration::from_secs(20));
    assert_eq!(established(&s.nodes[2]), 0, "the impostor got in");
    let refused: Vec<&Failure> = s.nodes[1]
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Refused { from, failure, .. } if from.ip() == addr(C).ip() => Some(failure),
            _ => None,
        })
        .collect();
    assert!(
        refused
            .iter()
            .any(|f| matches!(f, Failure::AddressMismatch { .. })),
        "{refused:?}"
    );
    let text = refused[0].to_string();
    assert!(
        text.contains("fqdn:a.test initiated from 192.0.2.3")
            && text.contains("configured at 192.0.2.1"),
        "{text}"
    );
    // A's IKE SA, CHILD SAs and status are exactly as before.
    assert_eq!(s.nodes[1].ike().ike_sas(), before);
    assert_eq!(
        s.nodes[1].host.status(s.now).peers[0].last_failure,
        status_before
    );
    assert!(!s.nodes[1].events.iter().any(|e| matches!(
        e,
        Event::Failed { peer: Some(p), .. } if *p == PEER
    )));
}

/// `n` IPv6 prefixes of selectors (40 octets each in a TS payload).
fn many_v6(n: u32, side: u32) -> Vec<&'static str> {
    (0..n)
        .map(|i| &*Box::leak(format!("2001:db8:{side:x}{i:02x}::/48").into_boxed_str()))
        .collect()
}

#[test]
fn an_unauthenticated_ike_auth_cannot_make_a_half_open_sa_buffer_much() {
    // 2 × 255 IPv6 selectors make A's IKE_AUTH about 20 KiB: more than a half-open SA
    // buffers (16 KiB), though far below what an authenticated peer may send (64 KiB).
    let a = Side {
        local_ts: many_v6(255, 1),
        remote_ts: many_v6(255, 2),
        ..side(true)
    };
    let b = Side {
        local_ts: many_v6(255, 2),
        remote_ts: many_v6(255, 1),
        ..side(false)
    };
    let mut s = sim(a, b);
    for n in &mut s.nodes {
        n.ike_mut().set_fragment_size(1000);
    }
    s.nodes[0]
        .ike_mut()
        .initiate(Timestamp::ZERO, PEER)
        .unwrap();
    s.run(Timestamp::from_secs(20));
    let counters = s.nodes[1].ike().error_counters();
    assert!(
        counters.get(ErrorKind::BadFragment) >= 1,
        "{:?} / {:?} / {} datagrams",
        counters.nonzero().collect::<Vec<_>>(),
        failures(&s.nodes[0]),
        s.log.len()
    );
    assert_eq!(established(&s.nodes[1]), 0);
    assert!(s.nodes[1].ike().half_open_count() <= 1);
}

#[test]
fn an_ike_auth_we_cannot_build_is_a_local_failure_not_a_stuck_sa() {
    // More than 255 selectors do not fit one TS payload.
    let a = Side {
        local_ts: many_v6(256, 1),
        ..side(true)
    };
    let mut s = sim(a, side(false));
    s.nodes[0]
        .ike_mut()
        .initiate(Timestamp::ZERO, PEER)
        .unwrap();
    s.run(Timestamp::from_secs(5));
    let f = failures(&s.nodes[0]);
    assert!(
        f.iter().any(|f| matches!(f, Failure::Local { .. })
            && f.to_string().contains("more than 255 traffic selectors")),
        "{f:?}"
    );
    assert_eq!(s.nodes[0].ike().ike_sa_count(), 0);
}

#[test]
fn a_flood_from_one_address_costs_a_cookie_not_a_key_exchange() {
    // Requests that appear to come from A (spoofed, or a peer gone mad): after four
    // half-open SAs from that address, the fifth must show a cookie first.
    let (mut s, first) = responder(|_| {});
    let now = Timestamp::ZERO;
    for i in 0..4u64 {
        let answer = ask(&mut s, now, addr(A), &with_spi(&first, 0x100 + i));
        assert!(answer.len() == 1 && cookie_of(&answer).is_none());
    }
    for i in 0..100u64 {
        let answer = ask(&mut s, now, addr(A), &with_spi(&first, 0x200 + i));
        assert!(answer.is_empty() || cookie_of(&answer).is_some());
    }
    assert_eq!(s.nodes[1].ike().half_open_count(), 4);
    let counters = s.nodes[1].ike().error_counters();
    assert_eq!(counters.get(ErrorKind::CookieRequired), 100);
}
