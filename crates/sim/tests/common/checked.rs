//! A model of each side's data plane that follows the engine events, and a simulator run
//! that checks make-before-break after every step: what either side seals with, the other
//! can open. Shared by the rekey and reauthentication tests.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::time::Duration;

use meshsec_ike::{Event, Failure};
use meshsec_sim::{PeerId, Sim, Timestamp};
use meshsec_types::{IkeSpi, InboundSpi, OutboundSpi};

use super::failures;

/// How long a deleted inbound SA keeps opening what arrives (the daemon's
/// `INBOUND_GRACE`): packets the peer sealed before it processed the Delete.
pub const INBOUND_GRACE: Duration = Duration::from_secs(2);

/// One side's data plane, as far as SPIs go.
#[derive(Debug, Default, Clone)]
pub struct Plane {
    pub inbound: BTreeSet<InboundSpi>,
    /// Deleted inbound SAs still opening until then.
    pub grace: Vec<(Timestamp, InboundSpi)>,
    /// Outbound SAs, the sealing one last (standbys before it).
    pub outbound: Vec<OutboundSpi>,
    pub installs: usize,
}

impl Plane {
    pub fn apply(&mut self, e: &Event, now: Timestamp) {
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
                if self.inbound.remove(inbound_spi) {
                    self.grace.push((now + INBOUND_GRACE, *inbound_spi));
                }
                self.outbound.retain(|s| s != outbound_spi);
            }
            Event::OutboundRetired { outbound_spi, .. } => {
                self.outbound.retain(|s| s != outbound_spi);
            }
            _ => {}
        }
    }

    pub fn sealing(&self) -> Option<OutboundSpi> {
        self.outbound.last().copied()
    }

    /// Whether it opens ESP the peer sealed with `spi` at `now`.
    pub fn opens(&self, spi: OutboundSpi, now: Timestamp) -> bool {
        let spi = spi.at_peer();
        self.inbound.contains(&spi) || self.grace.iter().any(|(t, s)| *s == spi && now < *t)
    }
}

/// Runs `s` to `until`, applying events to the planes and checking after every step that
/// what either side seals with, the other can open.
pub fn run_checked(
    s: &mut Sim,
    planes: &mut [Plane; 2],
    seen: &mut [usize; 2],
    until: Timestamp,
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
                planes[i].apply(e, s.now);
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
                if !planes[to].opens(spi, s.now) {
                    dump(s);
                }
                assert!(
                    planes[to].opens(spi, s.now),
                    "{ctx}: at {:?} side {from} seals with {spi}, which side {to} cannot open ({:?})",
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

pub fn failures_of(s: &Sim) -> Vec<Failure> {
    s.nodes
        .iter()
        .flat_map(|n| failures(n).into_iter().cloned())
        .collect()
}

/// The end state every scenario must reach: exactly one CHILD SA pair, the same on both
/// sides, sealing on it.
pub fn assert_one_pair(planes: &[Plane; 2], ctx: &str) -> (InboundSpi, InboundSpi) {
    let [a, b] = planes;
    assert_eq!(a.inbound.len(), 1, "{ctx}: {a:?}");
    assert_eq!(b.inbound.len(), 1, "{ctx}: {b:?}");
    assert_eq!(a.outbound.len(), 1, "{ctx}: {a:?}");
    assert_eq!(b.outbound.len(), 1, "{ctx}: {b:?}");
    assert_eq!(
        a.sealing().map(OutboundSpi::at_peer),
        b.inbound.first().copied(),
        "{ctx}"
    );
    assert_eq!(
        b.sealing().map(OutboundSpi::at_peer),
        a.inbound.first().copied(),
        "{ctx}"
    );
    (
        a.inbound.first().copied().unwrap(),
        b.inbound.first().copied().unwrap(),
    )
}

pub struct Run {
    pub s: Sim,
    pub planes: [Plane; 2],
    pub seen: [usize; 2],
}

impl Run {
    pub fn established(s: Sim) -> Run {
        let mut r = Run {
            s,
            planes: Default::default(),
            seen: [0, 0],
        };
        r.s.nodes[0]
            .endpoint
            .initiate(Timestamp::ZERO, PeerId::new(0))
            .unwrap();
        r.until(Timestamp::from_secs(5), "handshake");
        // Quiet until then: what the tests do next happens on an SA some seconds old.
        r.s.now = r.s.now.max(Timestamp::from_secs(5));
        assert_one_pair(&r.planes, "after the handshake");
        r
    }

    /// From now on, `hook` decides the fate of every datagram.
    pub fn faults(&mut self, hook: meshsec_sim::FaultHook) {
        self.s = std::mem::replace(&mut self.s, Sim::new(Vec::new())).with_faults(hook);
    }

    pub fn until(&mut self, t: Timestamp, ctx: &str) {
        run_checked(&mut self.s, &mut self.planes, &mut self.seen, t, ctx);
    }
}

pub fn dump_unless(r: &Run, ok: impl Fn(&Run) -> bool) {
    if !ok(r) {
        dump(&r.s);
    }
}

pub fn short(e: &Event) -> String {
    match e {
        Event::InstallChildSa(c) => format!(
            "install in {} out {} rekey_of {:?} standby {}",
            c.inbound.spi, c.outbound.spi, c.rekey_of, c.outbound_standby
        ),
        Event::DeleteChildSa {
            inbound_spi,
            outbound_spi,
            ..
        } => {
            format!("delete in {inbound_spi} out {outbound_spi}")
        }
        Event::OutboundRetired { outbound_spi, .. } => format!("retire out {outbound_spi}"),
        other => format!("{other:?}").chars().take(100).collect(),
    }
}

/// With REKEY_DEBUG set, prints both sides' events and every datagram (for a failing seed).
pub fn dump(s: &Sim) {
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
pub fn assert_one_ike_sa(s: &Sim, ctx: &str) -> (IkeSpi, IkeSpi) {
    let (a, b) = (s.nodes[0].endpoint.ike_sas(), s.nodes[1].endpoint.ike_sas());
    assert_eq!((a.len(), b.len()), (1, 1), "{ctx}: {a:?}\n{b:?}");
    assert_eq!((a[0].spi_i, a[0].spi_r), (b[0].spi_i, b[0].spi_r), "{ctx}");
    assert!(!a[0].rekeyed && !b[0].rekeyed, "{ctx}");
    (a[0].spi_i, a[0].spi_r)
}

pub fn ike_rekeys(n: &meshsec_sim::Node) -> usize {
    n.events
        .iter()
        .filter(|e| matches!(e, Event::IkeSaRekeyed { .. }))
        .count()
}

/// The IKE SA still works after whatever happened: a CHILD rekey over it completes.
pub fn assert_ike_sa_works(r: &mut Run, ctx: &str) {
    let t = r.s.now + Duration::from_secs(1);
    r.until(t, ctx);
    assert!(
        r.s.nodes[1]
            .endpoint
            .rekey_child_sa(t, PeerId::new(0))
            .unwrap(),
        "{ctx}"
    );
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
