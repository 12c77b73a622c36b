//! CHILD SA rekeying on virtual time (RFC 7296 §1.3.3, §2.8): by either side, with PFS, by
//! lifetime with jitter, and the odd orderings of strongSwan's `test_child_rekey.c` list —
//! both sides rekeying the same SA at once (at every offset), rekey against delete, and all
//! of it (with IKE rekeys and reauthentications mixed in) with message loss for 1,000 seeds.
//!
//! Every test checks make-before-break as the data plane sees it: each host is the daemon's
//! own node layer (`meshsec_node::Node`) over a real `meshsec_esp::DataPlane`, and after
//! every simulator step the SA each side's data plane seals with must be one the other
//! side's can open.
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
use meshsec_sim::{Fate, SeededRandom, Sim};

/// A and B with these lifetimes, A initiating at 0, run (checked) until `until`.
fn lifetime_run(child: Duration, ike: Option<Duration>, until: Timestamp) -> Run {
    let mut a = side(true);
    let mut b = side(false);
    for s in [&mut a, &mut b] {
        s.child_lifetime = Some(child);
        s.ike_lifetime = ike;
    }
    let mut r = Run::new(sim(a, b));
    r.s.nodes[0]
        .ike_mut()
        .initiate(Timestamp::ZERO, PEER)
        .unwrap();
    r.until(until, "lifetimes");
    assert!(failures_of(&r.s).is_empty(), "{:?}", failures_of(&r.s));
    assert_one_pair(&r.s, "lifetimes");
    r
}

fn pfs(mut s: Side) -> Side {
    s.esp = vec!["aes256gcm16-x25519"];
    s
}

fn rekey_by(side_index: usize, a: Side, b: Side, ctx: &str) {
    let mut r = Run::established(sim(a, b));
    let before = assert_one_pair(&r.s, ctx);
    let t = r.s.now;
    assert!(
        r.s.nodes[side_index]
            .ike_mut()
            .rekey_child_sa(t, PEER)
            .unwrap()
    );
    r.until(t + Duration::from_secs(30), ctx);
    assert!(
        failures_of(&r.s).is_empty(),
        "{ctx}: {:?}",
        failures_of(&r.s)
    );
    let after = assert_one_pair(&r.s, ctx);
    assert!(
        after.0 != before.0 && after.1 != before.1,
        "{ctx}: SPIs unchanged"
    );
    assert_eq!(installs(&r.s.nodes[0]), 2, "{ctx}");
    // The new CHILD SA says which one it replaced.
    let replaced: Vec<Option<InboundSpi>> =
        children(&r.s.nodes[0]).iter().map(|c| c.rekey_of).collect();
    assert_eq!(replaced, vec![None, Some(before.0)], "{ctx}");
    assert_eq!(r.s.nodes[0].ike().ike_sa_count(), 1);
}

#[test]
fn child_rekey_by_the_initiator() {
    rekey_by(0, side(true), side(false), "A rekeys");
}

#[test]
fn child_rekey_by_the_responder() {
    rekey_by(1, side(true), side(false), "B rekeys");
}

#[test]
fn child_rekey_with_pfs_derives_fresh_keys_from_a_new_key_exchange() {
    rekey_by(0, pfs(side(true)), pfs(side(false)), "A rekeys with PFS");
    // The two CHILD SAs' keys differ, and the peers agree on the new ones.
    let mut r = Run::established(sim(pfs(side(true)), pfs(side(false))));
    let t = r.s.now;
    r.s.nodes[1].ike_mut().rekey_child_sa(t, PEER).unwrap();
    r.until(t + Duration::from_secs(30), "PFS");
    let (ca, cb) = (children(&r.s.nodes[0]), children(&r.s.nodes[1]));
    assert_eq!(
        ca[1].inbound.encr_key.expose(),
        cb[1].outbound.encr_key.expose()
    );
    assert_ne!(
        ca[0].inbound.encr_key.expose(),
        ca[1].inbound.encr_key.expose()
    );
}

#[test]
fn a_responder_that_requires_pfs_refuses_a_rekey_without_it() {
    // B's ESP proposals all have a group; A's have none: A's rekey carries no KE.
    let mut r = Run::established(sim(side(true), pfs(side(false))));
    let before = assert_one_pair(&r.s, "before");
    let t = r.s.now;
    assert!(r.s.nodes[0].ike_mut().rekey_child_sa(t, PEER).unwrap());
    r.until(t + Duration::from_secs(30), "rekey without PFS");
    let refused: Vec<String> = failures(&r.s.nodes[1])
        .iter()
        .map(|f| f.to_string())
        .collect();
    assert!(
        refused.iter().any(|f| f.starts_with("NO_PROPOSAL_CHOSEN")
            && f.contains("we accept [AES_GCM_16_256/CURVE25519/NO_EXT_SEQ]")
            && f.contains("first mismatch: DH group / key exchange method")),
        "{refused:?}"
    );
    // The old CHILD SA carries on.
    assert_eq!(assert_one_pair(&r.s, "after"), before);
}

#[test]
fn child_rekey_collision_at_every_offset_leaves_one_pair() {
    // Latency is 10 ms: offsets up to 25 ms cover "both requests cross", "one request
    // arrives after the other side answered", and no collision at all.
    for offset_ms in 0..25 {
        let ctx = format!("B rekeys {offset_ms} ms after A");
        let mut r = Run::established(sim(side(true), side(false)));
        let t = r.s.now;
        r.s.nodes[0].ike_mut().rekey_child_sa(t, PEER).unwrap();
        let tb = t + Duration::from_millis(offset_ms);
        r.until(tb, &ctx);
        r.s.nodes[1].ike_mut().rekey_child_sa(tb, PEER).unwrap();
        r.until(tb + Duration::from_secs(30), &ctx);
        assert!(
            failures_of(&r.s).is_empty(),
            "{ctx}: {:?}",
            failures_of(&r.s)
        );
        assert_one_pair(&r.s, &ctx);
    }
}

#[test]
fn child_rekey_against_delete_ends_without_the_sa_and_without_errors() {
    let mut r = Run::established(sim(side(true), side(false)));
    let t = r.s.now;
    assert!(r.s.nodes[0].ike_mut().delete_child_sa(t, PEER).unwrap());
    assert!(r.s.nodes[1].ike_mut().rekey_child_sa(t, PEER).unwrap());
    r.until(t + Duration::from_secs(30), "rekey vs delete");
    assert!(failures_of(&r.s).is_empty(), "{:?}", failures_of(&r.s));
    // The delete wins: nobody keeps a CHILD SA; the IKE SA stays.
    for n in &r.s.nodes {
        let (i, o) = (n.plane().inbound_spis(PEER), n.plane().outbound_spis(PEER));
        assert!(i.is_empty() && o.is_empty(), "{i:?} {o:?}");
    }
    assert_eq!(r.s.nodes[0].ike().ike_sa_count(), 1);
    assert_eq!(r.s.nodes[1].ike().ike_sa_count(), 1);
}

#[test]
fn lifetimes_rekey_with_jitter_and_keep_one_pair() {
    let r = lifetime_run(Duration::from_secs(10), None, Timestamp::from_secs(65));
    // Rekeyed at 80-90 % of 10 s for 65 s: 7 to 8 generations (whoever's timer fires first).
    let gens = installs(&r.s.nodes[0]);
    assert!((7..=9).contains(&gens), "{gens} CHILD SAs in 65 s");
}

#[test]
fn collision_matrix_with_loss_for_1000_seeds() {
    // FIRST_SEED=n reruns from a failing seed; SEEDS=n runs more (or fewer) than 1,000.
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(d)
    };
    let first = env("FIRST_SEED", 0);
    for seed in first..env("SEEDS", 1000) {
        let ctx = format!("seed {seed}");
        let mut rnd = SeededRandom::new(seed ^ 0x5eed);
        let offset = Duration::from_millis(rnd.next_u64() % 40);
        let use_pfs = rnd.next_u64().is_multiple_of(2);
        let (a, b) = if use_pfs {
            (pfs(side(true)), pfs(side(false)))
        } else {
            (side(true), side(false))
        };
        let mut r = Run::established(Sim::new(vec![
            node_with(A, B, &a, seed * 2 + 1, |c| c.retransmit_tries = 6),
            node_with(B, A, &b, seed * 2 + 2, |c| c.retransmit_tries = 6),
        ]));
        // From now on 5 % of datagrams are lost and 5 % delayed.
        let mut loss = SeededRandom::new(seed);
        r.faults(Box::new(move |_, _| match loss.next_u64() % 100 {
            0..5 => Fate::Drop,
            5..10 => Fate::Delay(Duration::from_millis(30)),
            _ => Fate::Deliver,
        }));
        // Each side rekeys its CHILD SA (half the time), rekeys the IKE SA or reauthenticates.
        let action = [rnd.next_u64() % 4, rnd.next_u64() % 4];
        let rekey = |r: &mut Run, i: usize, at: Timestamp| {
            let e = &mut r.s.nodes[i].ike_mut();
            match action[i] {
                2 => e.rekey_ike_sa(at, PEER),
                3 => e.reauthenticate(at, PEER),
                _ => e.rekey_child_sa(at, PEER),
            }
            .unwrap();
        };
        let names = action.map(|a| match a {
            2 => "IKE rekey",
            3 => "reauthentication",
            _ => "CHILD rekey",
        });
        let ctx = format!("{ctx} ({names:?}, offset {offset:?}, PFS {use_pfs})");
        let t = r.s.now;
        rekey(&mut r, 0, t);
        r.until(t + offset, &ctx);
        rekey(&mut r, 1, t + offset);
        r.until(t + Duration::from_secs(120), &ctx);
        dump_unless(&r, |r| {
            failures_of(&r.s).is_empty()
                && r.s.nodes[0].plane().inbound_spis(PEER).len() == 1
                && r.s.nodes[1].ike().ike_sa_count() == 1
                && r.s.nodes[0].ike().ike_sa_count() == 1
        });
        assert!(
            failures_of(&r.s).is_empty(),
            "{ctx}: {:?}",
            failures_of(&r.s)
        );
        assert_one_pair(&r.s, &ctx);
        assert_one_ike_sa(&r.s, &ctx);
    }
}

fn ike_rekey_by(side_index: usize, ctx: &str) {
    let mut r = Run::established(sim(side(true), side(false)));
    let spis_before = assert_one_ike_sa(&r.s, ctx);
    let child_before = assert_one_pair(&r.s, ctx);
    let t = r.s.now;
    assert!(
        r.s.nodes[side_index]
            .ike_mut()
            .rekey_ike_sa(t, PEER)
            .unwrap()
    );
    r.until(t + Duration::from_secs(30), ctx);
    assert!(
        failures_of(&r.s).is_empty(),
        "{ctx}: {:?}",
        failures_of(&r.s)
    );
    let spis_after = assert_one_ike_sa(&r.s, ctx);
    assert_ne!(spis_before, spis_after, "{ctx}");
    // The CHILD SAs moved untouched: the data plane saw nothing.
    assert_eq!(assert_one_pair(&r.s, ctx), child_before, "{ctx}");
    assert_eq!(installs(&r.s.nodes[0]), 1, "{ctx}");
    assert_eq!(
        (ike_rekeys(&r.s.nodes[0]), ike_rekeys(&r.s.nodes[1])),
        (1, 1),
        "{ctx}"
    );
    assert_ike_sa_works(&mut r, ctx);
}

#[test]
fn ike_rekey_by_the_original_initiator() {
    ike_rekey_by(0, "A rekeys the IKE SA");
}

#[test]
fn ike_rekey_by_the_original_responder() {
    ike_rekey_by(1, "B rekeys the IKE SA");
}

#[test]
fn ike_rekey_collision_at_every_offset_leaves_one_ike_sa_with_the_child_sas() {
    for offset_ms in 0..25 {
        let ctx = format!("B rekeys the IKE SA {offset_ms} ms after A");
        let mut r = Run::established(sim(side(true), side(false)));
        let child_before = assert_one_pair(&r.s, &ctx);
        let t = r.s.now;
        r.s.nodes[0].ike_mut().rekey_ike_sa(t, PEER).unwrap();
        let tb = t + Duration::from_millis(offset_ms);
        r.until(tb, &ctx);
        r.s.nodes[1].ike_mut().rekey_ike_sa(tb, PEER).unwrap();
        r.until(tb + Duration::from_secs(30), &ctx);
        assert!(
            failures_of(&r.s).is_empty(),
            "{ctx}: {:?}",
            failures_of(&r.s)
        );
        assert_one_ike_sa(&r.s, &ctx);
        assert_eq!(assert_one_pair(&r.s, &ctx), child_before, "{ctx}");
        assert_ike_sa_works(&mut r, &ctx);
    }
}

#[test]
fn ike_rekey_against_child_rekey_at_every_offset() {
    for offset_ms in 0..25 {
        for ike_first in [0usize, 1] {
            let ctx = format!(
                "side {ike_first} rekeys the IKE SA, the other a CHILD SA {offset_ms} ms later"
            );
            let mut r = Run::established(sim(side(true), side(false)));
            let t = r.s.now;
            r.s.nodes[ike_first]
                .ike_mut()
                .rekey_ike_sa(t, PEER)
                .unwrap();
            let tb = t + Duration::from_millis(offset_ms);
            r.until(tb, &ctx);
            r.s.nodes[1 - ike_first]
                .ike_mut()
                .rekey_child_sa(tb, PEER)
                .unwrap();
            r.until(tb + Duration::from_secs(30), &ctx);
            assert!(
                failures_of(&r.s).is_empty(),
                "{ctx}: {:?}",
                failures_of(&r.s)
            );
            assert_one_ike_sa(&r.s, &ctx);
            assert_one_pair(&r.s, &ctx);
            assert_eq!(
                installs(&r.s.nodes[0]),
                2,
                "{ctx}: the CHILD rekey happened"
            );
            assert_ike_sa_works(&mut r, &ctx);
        }
    }
}

#[test]
fn ike_and_child_lifetimes_keep_one_sa_of_each_for_a_minute() {
    let r = lifetime_run(
        Duration::from_secs(6),
        Some(Duration::from_secs(10)),
        Timestamp::from_secs(61),
    );
    let s = &r.s;
    assert_one_ike_sa(s, "lifetimes");
    let (ike, child) = (ike_rekeys(&s.nodes[0]), installs(&s.nodes[0]) - 1);
    assert!((5..=8).contains(&ike), "{ike} IKE rekeys in 61 s");
    assert!((10..=13).contains(&child), "{child} CHILD rekeys in 61 s");
}

#[test]
fn ike_rekey_refused_after_we_answered_the_peers_moves_the_child_sas_there() {
    // A's IKE rekey request is lost; B rekeys meanwhile and A answers it (a collision as A
    // sees it); B's Delete of the old SA is lost too, and A's retransmitted request is
    // refused by B (TEMPORARY_FAILURE: that SA is replaced). B's rekey stands: the CHILD SA
    // must live on it at A, not die with the old SA when B's Delete finally arrives.
    let mut r = Run::established(sim(side(true), side(false)));
    let child = assert_one_pair(&r.s, "before");
    let first = r.s.log.len() as u64;
    r.faults(Box::new(move |n, tr| {
        // A's first request, and B's first INFORMATIONAL (its Delete).
        let b_delete = tr.src == addr(B) && tr.payload[18] == 37;
        if n == first || (b_delete && n < first + 4) {
            Fate::Drop
        } else {
            Fate::Deliver
        }
    }));
    let t = r.s.now;
    r.s.nodes[0].ike_mut().rekey_ike_sa(t, PEER).unwrap();
    r.until(t + Duration::from_millis(10), "A's request lost");
    r.s.nodes[1]
        .ike_mut()
        .rekey_ike_sa(t + Duration::from_millis(10), PEER)
        .unwrap();
    r.until(t + Duration::from_secs(30), "refused after answering");
    assert!(failures_of(&r.s).is_empty(), "{:?}", failures_of(&r.s));
    assert_one_ike_sa(&r.s, "refused after answering");
    assert_eq!(assert_one_pair(&r.s, "refused after answering"), child);
    assert_ike_sa_works(&mut r, "refused after answering");
}
