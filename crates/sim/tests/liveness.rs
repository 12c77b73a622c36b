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
        s.nodes[0].endpoint.initiate(Duration::ZERO, 0).unwrap();
        s.run(LONG);
        let old_child = children(&s.nodes[0])[0].inbound.spi;
        // B restarts: a fresh endpoint with no memory of the SA; it initiates, with
        // INITIAL_CONTACT (its first IKE SA with A since it started).
        s.nodes[1] = node(B, A, &side(false), 77);
        let t = s.now + Duration::from_secs(1);
        s.run(t);
        s.nodes[1].endpoint.initiate(t, 0).unwrap();
        s.run(t + Duration::from_millis(200));
        let a = &s.nodes[0];
        let ike = a.endpoint.ike_sas();
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
            vec![(b_child.outbound.spi, b_child.inbound.spi)]
        );
    }
}
