//! A simulator run that checks make-before-break on the hosts' real data planes after every
//! step: the SA either side seals with is one the other side can open (its inbound SA is
//! installed, or still in its grace after a Delete). Shared by the rekey and
//! reauthentication tests.
#![allow(dead_code)]

use meshsec_ike::{Event, Failure};
use meshsec_sim::{Node, Sim, Timestamp};
use meshsec_types::{IkeSpi, InboundSpi};

use super::{PEER, failures};

/// CHILD SAs a host installed so far.
pub fn installs(n: &Node) -> usize {
    n.events
        .iter()
        .filter(|e| matches!(e, Event::InstallChildSa(_)))
        .count()
}

/// What either side seals with, the other can open (once the first CHILD SA is complete on
/// both sides: the IKE_AUTH responder has it half a round trip earlier).
fn check_sealed_openable(s: &Sim, ctx: &str) {
    for (from, to) in [(0, 1), (1, 0)] {
        if installs(&s.nodes[to]) == 0 {
            continue;
        }
        if let Some(spi) = s.nodes[from].plane().sealing_spi(PEER)
            && !s.nodes[to].plane().has_inbound(spi.at_peer())
        {
            dump(s);
            panic!(
                "{ctx}: at {} side {from} seals with {spi}, which side {to} cannot open (it has {:?})",
                s.now,
                s.nodes[to].plane().inbound_spis(PEER)
            );
        }
    }
}

/// Runs `s` to `until`, checking after every step that what either side seals with, the
/// other can open, and that no host's timers spin.
pub fn run_checked(s: &mut Sim, until: Timestamp, ctx: &str) {
    let mut steps = 0;
    let (mut last_now, mut same_instant) = (s.now, 0);
    loop {
        let more = s.step(until);
        // A host whose poll_timeout stays in the past makes its caller spin.
        if s.now == last_now {
            same_instant += 1;
            assert!(same_instant < 1000, "{ctx}: timers spin at {}", s.now);
        } else {
            (last_now, same_instant) = (s.now, 0);
        }
        check_sealed_openable(s, ctx);
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

/// The one CHILD SA pair of a host, as its node and its data plane both see it: the node
/// has one installed, the data plane seals only on it and opens on it (besides inbound SAs
/// of deleted ones still in their grace). Returns (inbound, outbound SPI).
fn one_pair(n: &Node, ctx: &str) -> (InboundSpi, meshsec_types::OutboundSpi) {
    let children = n.host.children(PEER);
    let (inbound, outbound) = (n.plane().inbound_spis(PEER), n.plane().outbound_spis(PEER));
    assert_eq!(children.len(), 1, "{ctx}: {} has {children:?}", n.addr);
    let (spi_in, spi_out) = (children[0].spi_in, children[0].spi_out);
    assert_eq!(outbound, vec![spi_out], "{ctx}: {} seals on", n.addr);
    assert!(inbound.contains(&spi_in), "{ctx}: {} {inbound:?}", n.addr);
    assert_eq!(
        inbound.len(),
        1 + n.host.inbound_in_grace(),
        "{ctx}: {} opens on {inbound:?}",
        n.addr
    );
    (spi_in, spi_out)
}

/// The end state every scenario must reach: exactly one CHILD SA pair on each side, the same
/// on both, sealing on it. Returns each side's inbound SPI.
pub fn assert_one_pair(s: &Sim, ctx: &str) -> (InboundSpi, InboundSpi) {
    let (ai, ao) = one_pair(&s.nodes[0], ctx);
    let (bi, bo) = one_pair(&s.nodes[1], ctx);
    assert_eq!(ao.at_peer(), bi, "{ctx}");
    assert_eq!(bo.at_peer(), ai, "{ctx}");
    (ai, bi)
}

pub struct Run {
    pub s: Sim,
}

impl Run {
    /// A run of `s`, nothing started.
    pub fn new(s: Sim) -> Run {
        Run { s }
    }

    pub fn established(s: Sim) -> Run {
        let mut r = Run { s };
        r.s.nodes[0]
            .ike_mut()
            .initiate(Timestamp::ZERO, PEER)
            .unwrap();
        r.until(Timestamp::from_secs(5), "handshake");
        // Quiet until then: what the tests do next happens on an SA some seconds old.
        r.s.now = r.s.now.max(Timestamp::from_secs(5));
        assert_one_pair(&r.s, "after the handshake");
        r
    }

    /// From now on, `hook` decides the fate of every IKE datagram.
    pub fn faults(&mut self, hook: meshsec_sim::FaultHook) {
        self.s = std::mem::replace(&mut self.s, Sim::new(Vec::new())).with_faults(hook);
    }

    pub fn until(&mut self, t: Timestamp, ctx: &str) {
        run_checked(&mut self.s, t, ctx);
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

/// With REKEY_DEBUG set, prints both sides' events and every IKE datagram (for a failing
/// seed).
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
            "{t} {} -> {} {} bytes exch {} flags {:02x} mid {} {f:?}",
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
    let (a, b) = (s.nodes[0].ike().ike_sas(), s.nodes[1].ike().ike_sas());
    assert_eq!((a.len(), b.len()), (1, 1), "{ctx}: {a:?}\n{b:?}");
    assert_eq!((a[0].spi_i, a[0].spi_r), (b[0].spi_i, b[0].spi_r), "{ctx}");
    assert!(!a[0].rekeyed && !b[0].rekeyed, "{ctx}");
    (a[0].spi_i, a[0].spi_r)
}

pub fn ike_rekeys(n: &Node) -> usize {
    n.events
        .iter()
        .filter(|e| matches!(e, Event::IkeSaRekeyed { .. }))
        .count()
}

/// The IKE SA still works after whatever happened: a CHILD rekey over it completes.
pub fn assert_ike_sa_works(r: &mut Run, ctx: &str) {
    let t = r.s.now + std::time::Duration::from_secs(1);
    r.until(t, ctx);
    assert!(
        r.s.nodes[1].ike_mut().rekey_child_sa(t, PEER).unwrap(),
        "{ctx}"
    );
    let before = installs(&r.s.nodes[0]);
    r.until(t + std::time::Duration::from_secs(30), ctx);
    assert_eq!(
        installs(&r.s.nodes[0]),
        before + 1,
        "{ctx}: CHILD rekey after IKE rekey"
    );
    assert!(
        failures_of(&r.s).is_empty(),
        "{ctx}: {:?}",
        failures_of(&r.s)
    );
    assert_one_pair(&r.s, ctx);
}
