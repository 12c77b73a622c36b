//! More than one IKE SA with the same peer, and which one survives:
//!
//! * INITIAL_CONTACT (RFC 7296 §2.4): the peer restarted and has none of our older SAs —
//!   they are dropped at once (no Delete: nobody would understand it), no waiting for DPD.
//!   Only SAs that were up before the new one started count, so the two SAs of a
//!   simultaneous initiation (both carry INITIAL_CONTACT after a start) are not affected.
//! * Simultaneous initiation (routine in a full mesh: both ends start at once): two IKE SAs
//!   between the same peers converge to one, deterministically and without messages. Both
//!   sides know all four nonces once both SAs are up, and delete the SA holding the lowest
//!   nonce — the rule RFC 7296 §2.8.1 uses for rekey collisions.

use crate::endpoint::Endpoint;
use crate::event::{ChildSa, Event, PeerId};
use crate::sa::{State, Timestamp};

impl Endpoint {
    /// Records an established IKE SA (and its first CHILD SA), then resolves duplicates with
    /// the same peer.
    pub(crate) fn established(
        &mut self,
        now: Timestamp,
        peer: PeerId,
        spi: u64,
        nat_detected: bool,
        initial_contact: bool,
        child: Option<ChildSa>,
    ) {
        let rekey_at = self.ike_rekey_time(now, peer);
        let created = match self.sas.get_mut(&spi) {
            Some(sa) => {
                sa.established_at = Some(now);
                sa.rekey_at = rekey_at;
                sa.created
            }
            None => return,
        };
        if initial_contact {
            let stale: Vec<u64> = self
                .sas
                .iter()
                .filter(|(s, sa)| {
                    **s != spi
                        && sa.peer == Some(peer)
                        && sa.established_at.is_some_and(|t| t < created)
                })
                .map(|(s, _)| *s)
                .collect();
            for s in stale {
                self.close_sa(s, "the peer restarted (INITIAL_CONTACT)");
            }
        }
        if let Some(ch) = child.as_ref() {
            let lifetime = self.peers.get(peer).and_then(|c| c.child_lifetime);
            self.record_child(now, spi, ch, lifetime);
        }
        self.contacted.insert(peer);
        self.event(Event::IkeSaEstablished {
            peer,
            local_spi: spi,
            nat_detected,
        });
        if let Some(ch) = child {
            self.event(Event::InstallChildSa(ch));
        }
        self.resolve_duplicates(peer);
    }

    /// If more than one established IKE SA exists with `peer`, keeps the one without the
    /// lowest nonce (repeatedly, until one is left). Only the nonces decide: both sides know
    /// them, while the times at which each side created or completed its SAs differ, so a
    /// rule based on time could make the two sides keep different SAs.
    fn resolve_duplicates(&mut self, peer: PeerId) {
        loop {
            let mut ours: Vec<(u64, Vec<u8>)> = self
                .sas
                .iter()
                .filter(|(_, sa)| {
                    sa.peer == Some(peer) && sa.state == State::Established && !sa.rekeyed
                })
                .map(|(spi, sa)| (*spi, sa.ni.clone().min(sa.nr.clone())))
                .collect();
            if ours.len() < 2 {
                return;
            }
            ours.sort_by(|a, b| a.1.cmp(&b.1));
            let Some((loser, _)) = ours.first().cloned() else {
                return;
            };
            self.close_sa(
                loser,
                "duplicate from simultaneous initiation (lowest nonce loses)",
            );
        }
    }
}
