//! CHILD SA rekeying on virtual time (RFC 7296 §1.3.3, §2.8): by either side, with PFS, by
//! lifetime with jitter, and the odd orderings of strongSwan's `test_child_rekey.c` list —
//! both sides rekeying the same SA at once (at every offset), rekey against delete, and all
//! of it with message loss for 1,000 seeds.
//!
//! Every test checks make-before-break as the data plane sees it: a model of each side's
//! data plane follows the events (inbound SAs; outbound SAs with standbys, as
//! `meshsec_esp::DataPlane` keeps them), and after every simulator step the SA each side
//! seals with must be one the other side can open.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use meshsec_ike::{Event, Failure};
use meshsec_sim::{Fate, SeededRandom, Sim};

/// One side's data plane, as far as SPIs go.
#[derive(Debug, Default, Clone)]
struct Plane {
    inbound: BTreeSet<u32>,
    /// Outbound SAs, the sealing one last (standbys before it).
    outbound: Vec<u32>,
    installs: usize,
}

impl Plane {
    fn apply(&mut self, e: &Event) {
        match e {
            Event::InstallChildSa(c) => {
                self.installs += 1;
                self.inbound.insert(c.inbound.spi);
                if c.outbound_standby {
                    let at = self.outbound.len().saturating_sub(1);
                    self.outbound.insert(at, c.outbound.spi);
                } else {
                    self.outbound.push(c.outbound.spi);
                }
            }
            Event::DeleteChildSa {
                inbound_spi,
                outbound_spi,
                ..
            } => {
                self.inbound.remove(inbound_spi);
                self.outbound.retain(|s| s != outbound_spi);
            }
            Event::OutboundRetired { outbound_spi, .. } => {
                self.outbound.retain(|s| s != outbound_spi);
            }
            _ => {}
        }
    }

    fn sealing(&self) -> Option<u32> {
        self.outbound.last().copied()
    }
}

/// Runs `s` to `until`, applying events to the planes and checking after every step that
/// what either side seals with, the other can open.
fn run_checked(
    s: &mut Sim,
    planes: &mut [Plane; 2],
    seen: &mut [usize; 2],
    until: Duration,
    ctx: &str,
) {
    let mut steps = 0;
    let (mut last_now, mut same_instant) = (s.now, 0);
    loop {
        let more = s.step(until);
        // An endpoint whose poll_timeout stays in the past makes its caller spin.
        if s.now == last_now {
            same_instant += 1;
            assert!(same_instant < 1000, "{ctx}: timers spin at {:?}", s.now);
        } else {
            (last_now, same_instant) = (s.now, 0);
        }
        for i in 0..2 {
            let evs = &s.nodes[i].events;
            for e in &evs[seen[i]..] {
                planes[i].apply(e);
            }
            seen[i] = evs.len();
        }
        for (from, to) in [(0, 1), (1, 0)] {
            // Before the first CHILD SA is complete on both sides (IKE_AUTH: the responder
            // has it half a round trip earlier) there was no tunnel to keep.
            if planes[to].installs == 0 {
                continue;
            }
            if let Some(spi) = planes[from].sealing() {
                if !planes[to].inbound.contains(&spi) {
                    dump(s);
                }
                assert!(
                    planes[to].inbound.contains(&spi),
                    "{ctx}: at {:?} side {from} seals with {spi:08x}, which side {to} cannot open ({:?})",
                    s.now,
                    planes[to]
                );
            }
        }
        steps += 1;
        if !more || steps > 200_000 {
            break;
        }
    }
}

fn failures_of(s: &Sim) -> Vec<Failure> {
    s.nodes
        .iter()
        .flat_map(|n| failures(n).into_iter().cloned())
        .collect()
}

/// The end state every scenario must reach: exactly one CHILD SA pair, the same on both
/// sides, sealing on it.
fn assert_one_pair(planes: &[Plane; 2], ctx: &str) -> (u32, u32) {
    let [a, b] = planes;
    assert_eq!(a.inbound.len(), 1, "{ctx}: {a:?}");
    assert_eq!(b.inbound.len(), 1, "{ctx}: {b:?}");
    assert_eq!(a.outbound.len(), 1, "{ctx}: {a:?}");
    assert_eq!(b.outbound.len(), 1, "{ctx}: {b:?}");
    assert_eq!(a.sealing(), b.inbound.first().copied(), "{ctx}");
    assert_eq!(b.sealing(), a.inbound.first().copied(), "{ctx}");
    (
        a.inbound.first().copied().unwrap(),
        b.inbound.first().copied().unwrap(),
    )
}

struct Run {
    s: Sim,
    planes: [Plane; 2],
    seen: [usize; 2],
}

impl Run {
    fn established(s: Sim) -> Run {
        let mut r = Run {
            s,
            planes: Default::default(),
            seen: [0, 0],
        };
        r.s.nodes[0].endpoint.initiate(Duration::ZERO, 0).unwrap();
        r.until(Duration::from_secs(5), "handshake");
        assert_one_pair(&r.planes, "after the handshake");
        r
    }

    fn until(&mut self, t: Duration, ctx: &str) {
        run_checked(&mut self.s, &mut self.planes, &mut self.seen, t, ctx);
    }
}

fn dump_unless(r: &Run, ok: impl Fn(&Run) -> bool) {
    if !ok(r) {
        dump(&r.s);
    }
}

/// A and B with these lifetimes, A initiating at 0, run (checked) until `until`.
fn lifetime_run(child: Duration, ike: Option<Duration>, until: Duration) -> Run {
    let mut a = side(true);
    let mut b = side(false);
    for s in [&mut a, &mut b] {
        s.child_lifetime = Some(child);
        s.ike_lifetime = ike;
    }
    let mut r = Run {
        s: sim(a, b),
        planes: Default::default(),
        seen: [0, 0],
    };
    r.s.nodes[0].endpoint.initiate(Duration::ZERO, 0).unwrap();
    r.until(until, "lifetimes");
    assert!(failures_of(&r.s).is_empty(), "{:?}", failures_of(&r.s));
    assert_one_pair(&r.planes, "lifetimes");
    r
}

fn pfs(mut s: Side) -> Side {
    s.esp = vec!["aes256gcm16-x25519"];
    s
}

fn rekey_by(side_index: usize, a: Side, b: Side, ctx: &str) {
    let mut r = Run::established(sim(a, b));
    let before = assert_one_pair(&r.planes, ctx);
    let t = r.s.now;
    assert!(r.s.nodes[side_index].endpoint.rekey_child_sa(t, 0).unwrap());
    r.until(t + Duration::from_secs(30), ctx);
    assert!(
        failures_of(&r.s).is_empty(),
        "{ctx}: {:?}",
        failures_of(&r.s)
    );
    let after = assert_one_pair(&r.planes, ctx);
    assert!(
        after.0 != before.0 && after.1 != before.1,
        "{ctx}: SPIs unchanged"
    );
    assert_eq!(r.planes[0].installs, 2, "{ctx}");
    // The new CHILD SA says which one it replaced.
    let replaced: Vec<Option<u32>> = children(&r.s.nodes[0]).iter().map(|c| c.rekey_of).collect();
    assert_eq!(replaced, vec![None, Some(before.0)], "{ctx}");
    assert_eq!(r.s.nodes[0].endpoint.ike_sa_count(), 1);
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
    r.s.nodes[1].endpoint.rekey_child_sa(t, 0).unwrap();
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
fn child_rekey_collision_at_every_offset_leaves_one_pair() {
    // Latency is 10 ms: offsets up to 25 ms cover "both requests cross", "one request
    // arrives after the other side answered", and no collision at all.
    for offset_ms in 0..25 {
        let ctx = format!("B rekeys {offset_ms} ms after A");
        let mut r = Run::established(sim(side(true), side(false)));
        let t = r.s.now;
        r.s.nodes[0].endpoint.rekey_child_sa(t, 0).unwrap();
        let tb = t + Duration::from_millis(offset_ms);
        r.until(tb, &ctx);
        r.s.nodes[1].endpoint.rekey_child_sa(tb, 0).unwrap();
        r.until(tb + Duration::from_secs(30), &ctx);
        assert!(
            failures_of(&r.s).is_empty(),
            "{ctx}: {:?}",
            failures_of(&r.s)
        );
        assert_one_pair(&r.planes, &ctx);
    }
}

#[test]
fn child_rekey_against_delete_ends_without_the_sa_and_without_errors() {
    let mut r = Run::established(sim(side(true), side(false)));
    let t = r.s.now;
    assert!(r.s.nodes[0].endpoint.delete_child_sa(t, 0).unwrap());
    assert!(r.s.nodes[1].endpoint.rekey_child_sa(t, 0).unwrap());
    r.until(t + Duration::from_secs(30), "rekey vs delete");
    assert!(failures_of(&r.s).is_empty(), "{:?}", failures_of(&r.s));
    // The delete wins: nobody keeps a CHILD SA; the IKE SA stays.
    for p in &r.planes {
        assert!(p.inbound.is_empty() && p.outbound.is_empty(), "{p:?}");
    }
    assert_eq!(r.s.nodes[0].endpoint.ike_sa_count(), 1);
    assert_eq!(r.s.nodes[1].endpoint.ike_sa_count(), 1);
}

#[test]
fn lifetimes_rekey_with_jitter_and_keep_one_pair() {
    let r = lifetime_run(Duration::from_secs(10), None, Duration::from_secs(65));
    let planes = r.planes;
    // Rekeyed at 80-90 % of 10 s for 65 s: 7 to 8 generations (whoever's timer fires first).
    let gens = planes[0].installs;
    assert!((7..=9).contains(&gens), "{gens} CHILD SAs in 65 s");
}

#[test]
fn collision_matrix_with_loss_for_1000_seeds() {
    for seed in 0..1000u64 {
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
        r.s =
            std::mem::replace(&mut r.s, Sim::new(Vec::new())).with_faults(Box::new(move |_, _| {
                match loss.next_u64() % 100 {
                    0..5 => Fate::Drop,
                    5..10 => Fate::Delay(Duration::from_millis(30)),
                    _ => Fate::Deliver,
                }
            }));
        // Each side rekeys its CHILD SA or the IKE SA (a third of the time).
        let ike = [
            rnd.next_u64().is_multiple_of(3),
            rnd.next_u64().is_multiple_of(3),
        ];
        let rekey = |r: &mut Run, i: usize, at: Duration| {
            let e = &mut r.s.nodes[i].endpoint;
            if ike[i] {
                e.rekey_ike_sa(at, 0)
            } else {
                e.rekey_child_sa(at, 0)
            }
            .unwrap();
        };
        let ctx = format!("{ctx} (IKE rekeys: {ike:?}, offset {offset:?}, PFS {use_pfs})");
        let t = r.s.now;
        rekey(&mut r, 0, t);
        r.until(t + offset, &ctx);
        rekey(&mut r, 1, t + offset);
        r.until(t + Duration::from_secs(120), &ctx);
        dump_unless(&r, |r| {
            failures_of(&r.s).is_empty()
                && r.planes[0].inbound.len() == 1
                && r.s.nodes[1].endpoint.ike_sa_count() == 1
                && r.s.nodes[0].endpoint.ike_sa_count() == 1
        });
        assert!(
            failures_of(&r.s).is_empty(),
            "{ctx}: {:?}",
            failures_of(&r.s)
        );
        assert_one_pair(&r.planes, &ctx);
        assert_one_ike_sa(&r.s, &ctx);
    }
}

fn short(e: &Event) -> String {
    match e {
        Event::InstallChildSa(c) => format!(
            "install in {:08x} out {:08x} rekey_of {:?} standby {}",
            c.inbound.spi, c.outbound.spi, c.rekey_of, c.outbound_standby
        ),
        Event::DeleteChildSa {
            inbound_spi,
            outbound_spi,
            ..
        } => {
            format!("delete in {inbound_spi:08x} out {outbound_spi:08x}")
        }
        Event::OutboundRetired { outbound_spi, .. } => format!("retire out {outbound_spi:08x}"),
        other => format!("{other:?}").chars().take(100).collect(),
    }
}

/// With REKEY_DEBUG set, prints both sides' events and every datagram (for a failing seed).
fn dump(s: &Sim) {
    if std::env::var("REKEY_DEBUG").is_err() {
        return;
    }
    for (i, n) in s.nodes.iter().enumerate() {
        for e in &n.events {
            eprintln!("node {i}: {}", short(e));
        }
    }
    for (t, tr, f) in &s.log {
        let p = &tr.payload;
        eprintln!(
            "{t:?} {} -> {} {} bytes exch {} flags {:02x} mid {} {f:?}",
            tr.src,
            tr.dst,
            p.len(),
            p[18],
            p[19],
            u32::from_be_bytes([p[20], p[21], p[22], p[23]])
        );
    }
}

/// After everything settled: one IKE SA per side, the same one (SPIs), not marked rekeyed.
fn assert_one_ike_sa(s: &Sim, ctx: &str) -> (u64, u64) {
    let (a, b) = (s.nodes[0].endpoint.ike_sas(), s.nodes[1].endpoint.ike_sas());
    assert_eq!((a.len(), b.len()), (1, 1), "{ctx}: {a:?}\n{b:?}");
    assert_eq!((a[0].spi_i, a[0].spi_r), (b[0].spi_i, b[0].spi_r), "{ctx}");
    assert!(!a[0].rekeyed && !b[0].rekeyed, "{ctx}");
    (a[0].spi_i, a[0].spi_r)
}

fn ike_rekeys(n: &meshsec_sim::Node) -> usize {
    n.events
        .iter()
        .filter(|e| matches!(e, Event::IkeSaRekeyed { .. }))
        .count()
}

/// The IKE SA still works after whatever happened: a CHILD rekey over it completes.
fn assert_ike_sa_works(r: &mut Run, ctx: &str) {
    let t = r.s.now + Duration::from_secs(1);
    r.until(t, ctx);
    assert!(r.s.nodes[1].endpoint.rekey_child_sa(t, 0).unwrap(), "{ctx}");
    let before = r.planes[0].installs;
    r.until(t + Duration::from_secs(30), ctx);
    assert_eq!(
        r.planes[0].installs,
        before + 1,
        "{ctx}: CHILD rekey after IKE rekey"
    );
    assert!(
        failures_of(&r.s).is_empty(),
        "{ctx}: {:?}",
        failures_of(&r.s)
    );
    assert_one_pair(&r.planes, ctx);
}

fn ike_rekey_by(side_index: usize, ctx: &str) {
    let mut r = Run::established(sim(side(true), side(false)));
    let spis_before = assert_one_ike_sa(&r.s, ctx);
    let child_before = assert_one_pair(&r.planes, ctx);
    let t = r.s.now;
    assert!(r.s.nodes[side_index].endpoint.rekey_ike_sa(t, 0).unwrap());
    r.until(t + Duration::from_secs(30), ctx);
    assert!(
        failures_of(&r.s).is_empty(),
        "{ctx}: {:?}",
        failures_of(&r.s)
    );
    let spis_after = assert_one_ike_sa(&r.s, ctx);
    assert_ne!(spis_before, spis_after, "{ctx}");
    // The CHILD SAs moved untouched: the data plane saw nothing.
    assert_eq!(assert_one_pair(&r.planes, ctx), child_before, "{ctx}");
    assert_eq!(r.planes[0].installs, 1, "{ctx}");
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
        let child_before = assert_one_pair(&r.planes, &ctx);
        let t = r.s.now;
        r.s.nodes[0].endpoint.rekey_ike_sa(t, 0).unwrap();
        let tb = t + Duration::from_millis(offset_ms);
        r.until(tb, &ctx);
        r.s.nodes[1].endpoint.rekey_ike_sa(tb, 0).unwrap();
        r.until(tb + Duration::from_secs(30), &ctx);
        assert!(
            failures_of(&r.s).is_empty(),
            "{ctx}: {:?}",
            failures_of(&r.s)
        );
        assert_one_ike_sa(&r.s, &ctx);
        assert_eq!(assert_one_pair(&r.planes, &ctx), child_before, "{ctx}");
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
            r.s.nodes[ike_first].endpoint.rekey_ike_sa(t, 0).unwrap();
            let tb = t + Duration::from_millis(offset_ms);
            r.until(tb, &ctx);
            r.s.nodes[1 - ike_first]
                .endpoint
                .rekey_child_sa(tb, 0)
                .unwrap();
            r.until(tb + Duration::from_secs(30), &ctx);
            assert!(
                failures_of(&r.s).is_empty(),
                "{ctx}: {:?}",
                failures_of(&r.s)
            );
            assert_one_ike_sa(&r.s, &ctx);
            assert_one_pair(&r.planes, &ctx);
            assert_eq!(r.planes[0].installs, 2, "{ctx}: the CHILD rekey happened");
            assert_ike_sa_works(&mut r, &ctx);
        }
    }
}

#[test]
fn ike_and_child_lifetimes_keep_one_sa_of_each_for_a_minute() {
    let r = lifetime_run(
        Duration::from_secs(6),
        Some(Duration::from_secs(10)),
        Duration::from_secs(61),
    );
    let (s, planes) = (&r.s, &r.planes);
    assert_one_ike_sa(s, "lifetimes");
    let (ike, child) = (ike_rekeys(&s.nodes[0]), planes[0].installs - 1);
    assert!((5..=8).contains(&ike), "{ike} IKE rekeys in 61 s");
    assert!((10..=13).contains(&child), "{child} CHILD rekeys in 61 s");
}
