//! Liveness and self-healing in the engine on virtual time: a peer that restarted is
//! recognised by INITIAL_CONTACT and its stale SAs are dropped at once.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::time::Duration;

use common::*;
use meshsec_ike::Event;

fn deleted_reasons(n: &meshsec_sim::Node) -> Vec<&'static str> {
    n.events
        .iter()
        .filter_map(|e| match e {
            Event::IkeSaDeleted { reason, .. } => Some(*reason),
            _ => None,
        })
        .collect()
}

#[test]
fn initial_contact_from_a_restarted_peer_replaces_the_stale_sas_at_once() {
    {
        let mut s = sim(side(true), side(false));
        s.nodes[0]
            .ike_mut()
            .initiate(Timestamp::ZERO, PEER)
            .unwrap();
        s.run(LONG);
        let old_child = children(&s.nodes[0])[0].inbound.spi;
        // B restarts: a fresh endpoint with no memory of the SA; it initiates, with
        // INITIAL_CONTACT (its first IKE SA with A since it started).
        s.nodes[1] = node(B, A, &side(false), 77);
        let t = s.now + Duration::from_secs(1);
        s.run(t);
        s.nodes[1].ike_mut().initiate(t, PEER).unwrap();
        s.run(t + Duration::from_millis(200));
        let a = &s.nodes[0];
        let ike = a.ike().ike_sas();
        // Within one round trip of the new SA, the stale one is gone: no DPD wait.
        assert_eq!(ike.len(), 1, "{ike:?}");
        let reason = "the peer restarted (INITIAL_CONTACT)";
        assert!(
            deleted_reasons(a).contains(&reason),
            "{:?}",
            deleted_reasons(a)
        );
        let gone = a.events.iter().any(
            |e| matches!(e, Event::DeleteChildSa { inbound_spi, .. } if *inbound_spi == old_child),
        );
        assert!(gone, "the stale CHILD SA was not removed");
        // The surviving CHILD SA is the one the restarted peer has.
        let b_child = children(&s.nodes[1])[0].clone();
        assert_eq!(
            ike[0].children,
            vec![(
                b_child.outbound.spi.at_peer(),
                b_child.inbound.spi.at_peer()
            )]
        );
    }
}

#[test]
fn invalid_spi_from_the_side_that_lost_a_half_makes_the_other_replace_the_child_sa() {
    let mut s = sim(side(true), side(false));
    s.nodes[0]
        .ike_mut()
        .initiate(Timestamp::ZERO, PEER)
        .unwrap();
    s.run(LONG);
    let old = children(&s.nodes[0])[0].clone();
    // A's data plane lost its inbound SA (the engine does not know): ESP from B with that SPI
    // now reaches A for no SA, so A tells B, inside the IKE SA.
    let t = s.now + Duration::from_secs(1);
    assert!(
        s.nodes[0]
            .ike_mut()
            .notify_invalid_spi(t, PEER, old.inbound.spi)
            .unwrap()
    );
    // Rate-limited: a flood of such packets sends one notification per second.
    assert!(
        !s.nodes[0]
            .ike_mut()
            .notify_invalid_spi(t, PEER, old.inbound.spi)
            .unwrap()
    );
    s.run(t + Duration::from_secs(5));
    let b = &s.nodes[1];
    let healing = b.events.iter().any(|e| {
        matches!(e, Event::HealingChildSa { outbound_spi, .. } if *outbound_spi == old.inbound.spi.at_peer())
    });
    assert!(healing, "B did not start healing");
    // Both sides: the broken pair deleted, one new pair installed, matching.
    for (i, n) in s.nodes.iter().enumerate() {
        let ike = n.ike().ike_sas();
        assert_eq!(ike.len(), 1);
        assert_eq!(ike[0].children.len(), 1, "node {i}: {:?}", ike[0].children);
    }
    let (a_new, b_new) = (
        s.nodes[0].ike().ike_sas()[0].children[0],
        s.nodes[1].ike().ike_sas()[0].children[0],
    );
    assert_ne!(a_new.0, old.inbound.spi);
    assert_eq!((a_new.0, a_new.1), (b_new.1.at_peer(), b_new.0.at_peer()));
    assert!(failures(&s.nodes[0]).is_empty() && failures(&s.nodes[1]).is_empty());
    // An unknown SPI that is not the peer's is ignored (nothing to heal).
    let t2 = s.now + Duration::from_secs(2);
    s.nodes[0]
        .ike_mut()
        .notify_invalid_spi(t2, PEER, InboundSpi::new(0xdead_beef))
        .unwrap();
    s.run(t2 + Duration::from_secs(5));
    assert_eq!(s.nodes[1].ike().ike_sas()[0].children, vec![b_new]);
}
