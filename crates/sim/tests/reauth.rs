//! Reauthentication as make-before-break (RFC 7296 §2.8.3) on virtual time: by either side,
//! on demand and by lifetime, against each other and against rekeys at every offset, a
//! failed one (kept old SA, retried, deleted when the authentication expires), and the
//! difference between a peer's reauthentication and a simultaneous initiation.
//!
//! As in the rekey tests, each host is a node layer over a real ESP data plane, and after
//! every simulator step the SA each side seals with must be one the other side can open.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::time::Duration;

use common::checked::*;
use common::*;
use meshsec_ike::{Event, Failure};
use meshsec_sim::Fate;

fn reauths(n: &meshsec_sim::Node) -> usize {
    n.events
        .iter()
        .filter(|e| matches!(e, Event::IkeSaReauthenticated { .. }))
        .count()
}

fn deleted_reasons(n: &meshsec_sim::Node) -> Vec<&'static str> {
    n.events
        .iter()
        .filter_map(|e| match e {
            Event::IkeSaDeleted { reason, .. } => Some(*reason),
            _ => None,
        })
        .collect()
}

fn reauth_by(side_index: usize, ctx: &str) {
    let mut r = Run::established(sim(side(true), side(false)));
    let ike_before = assert_one_ike_sa(&r.s, ctx);
    let child_before = assert_one_pair(&r.s, ctx);
    let t = r.s.now;
    assert!(
        r.s.nodes[side_index]
            .ike_mut()
            .reauthenticate(t, PEER)
            .unwrap()
    );
    // A second request while one is under way is refused.
    assert!(
        !r.s.nodes[side_index]
            .ike_mut()
            .reauthenticate(t, PEER)
            .unwrap()
    );
    r.until(t + Duration::from_secs(30), ctx);
    assert!(
        failures_of(&r.s).is_empty(),
        "{ctx}: {:?}",
        failures_of(&r.s)
    );
    // A new IKE SA (new SPIs, set up from scratch) and a new CHILD SA; the old ones gone.
    let ike_after = assert_one_ike_sa(&r.s, ctx);
    assert_ne!(ike_before, ike_after, "{ctx}");
    let child_after = assert_one_pair(&r.s, ctx);
    assert!(
        child_after.0 != child_before.0 && child_after.1 != child_before.1,
        "{ctx}"
    );
    assert_eq!(installs(&r.s.nodes[0]), 2, "{ctx}");
    assert_eq!(
        (reauths(&r.s.nodes[0]), reauths(&r.s.nodes[1])),
        (1, 1),
        "{ctx}"
    );
    for n in &r.s.nodes {
        assert_eq!(ike_rekeys(n), 0, "{ctx}");
        assert_eq!(
            deleted_reasons(n),
            vec!["replaced by a reauthenticated IKE SA"],
            "{ctx}"
        );
    }
    // The new SA came from IKE_SA_INIT (not CREATE_CHILD_SA), without INITIAL_CONTACT
    // (which would have made the peer drop the old SA before the new one carried traffic).
    let inits =
        r.s.log
            .iter()
            .filter(|(_, t, _)| t.payload[18] == 34)
            .count();
    assert_eq!(inits, 4, "{ctx}: two IKE_SA_INIT exchanges in all");
    // Make before break, event by event (the daemon's data path runs between them): the
    // reauthenticating side installs the new CHILD SA before the old one stops sealing.
    let n = &r.s.nodes[side_index];
    // assert_one_pair gives (A's inbound, B's inbound): one side's outbound is the other's
    // inbound.
    let (new_in, old_out) = if side_index == 0 {
        (child_after.0, child_before.1.at_peer())
    } else {
        (child_after.1, child_before.0.at_peer())
    };
    let new_install = n
        .events
        .iter()
        .position(|e| matches!(e, Event::InstallChildSa(c) if c.inbound.spi == new_in));
    let old_retired = n.events.iter().position(
        |e| matches!(e, Event::OutboundRetired { outbound_spi, .. } if *outbound_spi == old_out),
    );
    if let (Some(install), Some(retire)) = (new_install, old_retired) {
        assert!(
            install < retire,
            "{ctx}: retired at {retire}, installed at {install}"
        );
    }
    assert!(new_install.is_some(), "{ctx}");
    assert_ike_sa_works(&mut r, ctx);
}

#[test]
fn reauth_by_the_original_initiator() {
    reauth_by(0, "A reauthenticates");
}

#[test]
fn reauth_by_the_original_responder() {
    reauth_by(1, "B reauthenticates");
}

#[test]
fn reauth_lifetime_reauthenticates_again_and_again_keeping_one_sa_pair() {
    let (mut a, mut b) = (side(true), side(false));
    for s in [&mut a, &mut b] {
        s.reauth_lifetime = Some(Duration::from_secs(10));
        s.child_lifetime = Some(Duration::from_secs(7));
        s.ike_lifetime = Some(Duration::from_secs(8));
    }
    let mut r = Run::established(sim(a, b));
    r.until(Timestamp::from_secs(61), "reauth lifetime");
    assert!(failures_of(&r.s).is_empty(), "{:?}", failures_of(&r.s));
    assert_one_pair(&r.s, "reauth lifetime");
    assert_one_ike_sa(&r.s, "reauth lifetime");
    // 80-90 % of 10 s, by whichever side's timer fires first; rekeys do not restart it.
    let n = reauths(&r.s.nodes[0]);
    assert!((6..=8).contains(&n), "{n} reauthentications in 61 s");
    assert_eq!(reauths(&r.s.nodes[1]), n);
}

#[test]
fn reauth_collision_at_every_offset_leaves_one_ike_sa_and_one_pair() {
    for offset_ms in 0..30 {
        let ctx = format!("B reauthenticates {offset_ms} ms after A");
        let mut r = Run::established(sim(side(true), side(false)));
        let t = r.s.now;
        r.s.nodes[0].ike_mut().reauthenticate(t, PEER).unwrap();
        let tb = t + Duration::from_millis(offset_ms);
        r.until(tb, &ctx);
        r.s.nodes[1].ike_mut().reauthenticate(tb, PEER).unwrap();
        r.until(tb + Duration::from_secs(30), &ctx);
        dump_unless(&r, |r| failures_of(&r.s).is_empty());
        assert!(
            failures_of(&r.s).is_empty(),
            "{ctx}: {:?}",
            failures_of(&r.s)
        );
        assert_one_ike_sa(&r.s, &ctx);
        assert_one_pair(&r.s, &ctx);
        assert_ike_sa_works(&mut r, &ctx);
    }
}

#[test]
fn reauth_against_ike_and_child_rekeys_at_every_offset() {
    for offset_ms in 0..25 {
        for reauth_side in [0usize, 1] {
            for ike in [false, true] {
                let ctx = format!(
                    "side {reauth_side} reauthenticates, the other rekeys {} {offset_ms} ms later",
                    if ike { "the IKE SA" } else { "a CHILD SA" }
                );
                let mut r = Run::established(sim(side(true), side(false)));
                let t = r.s.now;
                r.s.nodes[reauth_side]
                    .ike_mut()
                    .reauthenticate(t, PEER)
                    .unwrap();
                let tb = t + Duration::from_millis(offset_ms);
                r.until(tb, &ctx);
                let other = &mut r.s.nodes[1 - reauth_side].ike_mut();
                if ike {
                    other.rekey_ike_sa(tb, PEER).unwrap();
                } else {
                    other.rekey_child_sa(tb, PEER).unwrap();
                }
                r.until(tb + Duration::from_secs(30), &ctx);
                dump_unless(&r, |r| failures_of(&r.s).is_empty());
                assert!(
                    failures_of(&r.s).is_empty(),
                    "{ctx}: {:?}",
                    failures_of(&r.s)
                );
                assert_one_ike_sa(&r.s, &ctx);
                assert_one_pair(&r.s, &ctx);
                assert_ike_sa_works(&mut r, &ctx);
            }
        }
    }
}

/// B's view of A with another PSK (B's credentials changed; only new authentications see
/// it).
fn b_with_psk(psk: &'static str) -> meshsec_ike::PeerConfig {
    let mut s = side(false);
    s.psk = psk;
    peer_config(A, &s)
}

#[test]
fn failed_reauth_keeps_the_old_sa_and_deletes_it_when_the_authentication_expires() {
    let mut a = side(true);
    a.reauth_lifetime = Some(Duration::from_secs(40));
    let mut r = Run::established(sim(a, side(false)));
    let child = assert_one_pair(&r.s, "before");
    // A's reauthentication at 32-36 s is refused by B; the old SAs keep carrying traffic...
    r.s.nodes[1]
        .ike_mut()
        .replace_peer(PEER, b_with_psk("another pre-shared key, also 32 bytes"))
        .unwrap();
    r.until(Timestamp::from_secs(39), "reauth refused");
    assert_eq!(assert_one_pair(&r.s, "reauth refused"), child);
    let refused = failures(&r.s.nodes[0])
        .iter()
        .filter(|f| matches!(f, Failure::AuthenticationFailed { .. }))
        .count();
    assert_eq!(refused, 1, "{:?}", failures_of(&r.s));
    assert_eq!(r.s.nodes[0].ike().ike_sa_count(), 1);
    // ... until the authentication ends at 40 s: then the old IKE SA is deleted, B is told
    // (a teardown, not a switch: no data plane check from here).
    r.s.run(Timestamp::from_secs(45));
    for (i, n) in r.s.nodes.iter().enumerate() {
        assert_eq!(n.ike().ike_sa_count(), 0, "side {i}");
        assert_eq!(deleted_reasons(n).len(), 1, "side {i}");
    }
}

#[test]
fn failed_reauth_is_retried_ten_seconds_later() {
    let mut a = side(true);
    a.reauth_lifetime = Some(Duration::from_secs(100));
    let mut r = Run::established(sim(a, side(false)));
    r.s.nodes[1]
        .ike_mut()
        .replace_peer(PEER, b_with_psk("another pre-shared key, also 32 bytes"))
        .unwrap();
    // The first attempt (80-90 s) fails; B's PSK is back before the retry (10 s later).
    r.until(Timestamp::from_secs(91), "first attempt");
    assert_eq!(reauths(&r.s.nodes[0]), 0);
    assert_eq!(failures(&r.s.nodes[0]).len(), 1);
    r.s.nodes[1]
        .ike_mut()
        .replace_peer(PEER, peer_config(A, &side(false)))
        .unwrap();
    r.until(Timestamp::from_secs(100), "retry");
    assert_eq!(reauths(&r.s.nodes[0]), 1);
    assert_one_ike_sa(&r.s, "retried");
    assert_one_pair(&r.s, "retried");
}

#[test]
fn reauth_survives_loss_of_its_messages() {
    for drop_nth in 0..12u64 {
        let ctx = format!("datagram {drop_nth} of the reauthentication lost");
        let mut r = Run::established(sim(side(true), side(false)));
        let first = r.s.log.len() as u64;
        r.faults(Box::new(move |n, _| {
            if n == first + drop_nth {
                Fate::Drop
            } else {
                Fate::Deliver
            }
        }));
        let t = r.s.now;
        r.s.nodes[drop_nth as usize % 2]
            .ike_mut()
            .reauthenticate(t, PEER)
            .unwrap();
        r.until(t + Duration::from_secs(30), &ctx);
        assert!(
            failures_of(&r.s).is_empty(),
            "{ctx}: {:?}",
            failures_of(&r.s)
        );
        assert_one_ike_sa(&r.s, &ctx);
        assert_one_pair(&r.s, &ctx);
        assert_eq!(reauths(&r.s.nodes[0]), 1, "{ctx}");
    }
}

#[test]
fn simultaneous_initiation_is_not_mistaken_for_a_reauthentication() {
    // Both start at once: two IKE SAs, neither older; the lowest-nonce one goes (no
    // reauthentication reported). Two tunnels exist for a moment: no data plane check.
    let mut s = sim(side(true), side(false));
    s.nodes[0]
        .ike_mut()
        .initiate(Timestamp::ZERO, PEER)
        .unwrap();
    s.nodes[1]
        .ike_mut()
        .initiate(Timestamp::ZERO, PEER)
        .unwrap();
    s.run(Timestamp::from_secs(20));
    assert_one_ike_sa(&s, "simultaneous start");
    assert_eq!(reauths(&s.nodes[0]) + reauths(&s.nodes[1]), 0);
    for n in &s.nodes {
        assert_eq!(
            deleted_reasons(n),
            vec!["duplicate from simultaneous initiation (lowest nonce loses)"]
        );
        assert_eq!(n.ike().ike_sas()[0].children.len(), 1);
    }
}

#[test]
fn reauth_collision_seen_differently_by_the_two_ends_still_converges() {
    // A's IKE_SA_INIT is lost, so B's reauthentication completes first; A's arrives at B
    // half a second later and B takes it for a reauthentication of B's new SA, while A sees
    // two new SAs of the same generation. Each waits for the other's Delete; after the
    // grace both delete the SA with the lowest nonce. Traffic flows throughout.
    let mut r = Run::established(sim(side(true), side(false)));
    let first = r.s.log.len() as u64;
    r.faults(Box::new(move |n, _| {
        if n == first {
            Fate::Drop
        } else {
            Fate::Deliver
        }
    }));
    let t = r.s.now;
    r.s.nodes[0].ike_mut().reauthenticate(t, PEER).unwrap();
    r.until(t + Duration::from_millis(10), "A's INIT lost");
    r.s.nodes[1]
        .ike_mut()
        .reauthenticate(t + Duration::from_millis(10), PEER)
        .unwrap();
    r.until(t + Duration::from_secs(40), "views differ");
    assert!(failures_of(&r.s).is_empty(), "{:?}", failures_of(&r.s));
    assert_one_ike_sa(&r.s, "views differ");
    assert_one_pair(&r.s, "views differ");
    assert_ike_sa_works(&mut r, "views differ");
}
