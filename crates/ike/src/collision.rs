//! More than one IKE SA with the same peer, and which one survives:
//!
//! * INITIAL_CONTACT (RFC 7296 §2.4): the peer restarted and has none of our older SAs —
//!   they are dropped at once (no Delete: nobody would understand it), no waiting for DPD.
//!   Only SAs that were up before the new one started count, so the two SAs of a
//!   simultaneous initiation (both carry INITIAL_CONTACT after a start) are not affected.
//! * Reauthentication: an SA that comes up while an older one is established replaces it
//!   (see the reauth module).
//! * Simultaneous initiation (routine in a full mesh: both ends start at once): two IKE SAs
//!   between the same peers converge to one, deterministically. Both sides know all four
//!   nonces once both SAs are up, and delete the SA holding the lowest nonce — the rule
//!   RFC 7296 §2.8.1 uses for rekey collisions: the survivor's initiator at once, its
//!   responder once the peer showed it has the survivor (a liveness check), so that a lost
//!   Delete or a peer without the rule (strongSwan) leaves no duplicate for long.

use crate::endpoint::Endpoint;
use crate::event::{ChildSa, Event, Nat, PeerId};
use crate::keepalive::KEEPALIVE_GRANULARITY;
use crate::sa::{Replacement, Role, State, Task, Timestamp};
use meshsec_types::IkeSpi;
use meshsec_types::timing::SURVIVOR_CHECK_DELAY;

impl Endpoint {
    /// Records an established IKE SA (and its first CHILD SA), then resolves duplicates with
    /// the same peer.
    pub(crate) fn established(
        &mut self,
        now: Timestamp,
        peer: PeerId,
        spi: IkeSpi,
        (udp_encap, nat): (bool, Nat),
        initial_contact: bool,
        child: Option<ChildSa>,
    ) {
        let rekey_at = self.ike_rekey_time(now, peer);
        let reauth_lifetime = self.peers.get(peer).and_then(|c| c.reauth_lifetime);
        let (reauth_at, reauth_expires) = self.reauth_times(now, reauth_lifetime);
        let created = match self.sas.get_mut(&spi) {
            Some(sa) => {
                sa.established_at = Some(now);
                if sa.nat.local() {
                    sa.keepalive_at = self
                        .config
                        .nat_keepalive
                        .map(|i| (now + i).on_grid(KEEPALIVE_GRANULARITY, now));
                }
                sa.rekey_at = rekey_at;
                sa.reauth.since = Some(now);
                sa.reauth.at = reauth_at;
                sa.reauth.expires = reauth_expires;
                sa.created
            }
            None => return,
        };
        if initial_contact {
            let stale: Vec<IkeSpi> = self
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
        let mut child = child;
        if let Some(ch) = child.as_mut() {
            let lifetime = self.peers.get(peer).and_then(|c| c.child_lifetime);
            self.record_child(now, spi, ch, lifetime);
        }
        self.contacted.insert(peer);
        self.event(Event::IkeSaEstablished {
            peer,
            local_spi: spi,
            udp_encap,
            nat,
        });
        let standby = self.first_child_waits(peer, spi);
        // Make before break: the new CHILD SA is installed before the ones it replaces stop
        // sealing (a data plane that applies these events one by one while packets flow must
        // never be left without an outbound SA in between).
        if let Some(mut ch) = child {
            ch.outbound_standby = standby;
            self.event(Event::InstallChildSa(ch));
        }
        self.replace_older(now, peer, spi);
        self.resolve_duplicates(now, peer);
        self.run_tasks(now, spi);
    }

    /// If more than one established IKE SA exists with `peer`, keeps the one without the
    /// lowest nonce (repeatedly, until one is left). Only the nonces decide: both sides know
    /// them, while the times at which each side created or completed its SAs differ, so a
    /// rule based on time could make the two sides keep different SAs.
    ///
    /// The loser is deleted (with a Delete, so that a peer that judged otherwise learns of
    /// it) by the initiator of the survivor: that side knows both ends have the survivor
    /// (it has its IKE_AUTH answer). The survivor's responder stops using the loser for new
    /// work and keeps sealing on it until the peer shows that it has the survivor (see
    /// [`Endpoint::survivor_proven`]: it asks with a liveness check on the survivor), then
    /// deletes it too: a peer that does not apply this rule (strongSwan keeps both SAs of a
    /// simultaneous start) or whose Delete was lost would otherwise leave the duplicate up
    /// for `REPLACED_GRACE`.
    fn resolve_duplicates(&mut self, now: Timestamp, peer: PeerId) {
        loop {
            let mut ours: Vec<(IkeSpi, Vec<u8>)> = self
                .sas
                .iter()
                .filter(|(_, sa)| {
                    sa.peer == Some(peer) && sa.state == State::Established && !sa.is_replaced()
                })
                .map(|(spi, sa)| (*spi, sa.ni.clone().min(sa.nr.clone())))
                .collect();
            if ours.len() < 2 {
                return;
            }
            ours.sort_by(|a, b| a.1.cmp(&b.1));
            let (Some((loser, _)), Some((survivor, _))) = (ours.first(), ours.last()) else {
                return;
            };
            let (loser, survivor) = (*loser, *survivor);
            let we_delete = self
                .sas
                .get(&survivor)
                .is_some_and(|s| s.role == Role::Initiator);
            let Some(sa) = self.sas.get_mut(&loser) else {
                return;
            };
            sa.replace(
                now,
                Replacement::Duplicate {
                    survivor,
                    start: true,
                },
            );
            sa.tasks.clear();
            sa.tasks_after = Timestamp::ZERO;
            if we_delete {
                sa.tasks.push_back(Task::DeleteIke);
                self.run_tasks(now, loser);
            } else if let Some(s) = self.sas.get_mut(&survivor) {
                s.tasks_after = s.tasks_after.max(now + SURVIVOR_CHECK_DELAY);
                self.queue_task(now, survivor, Task::Liveness);
            }
        }
    }

    /// Before each liveness check (or its retransmission) on IKE SA `spi`: if we are the
    /// responder of an SA that survived duplicates and the peer has not shown it has it
    /// yet, our IKE_AUTH answer goes again first. It may have been lost — the peer then
    /// cannot answer the check (it takes no request on an SA it is still setting up) and
    /// would only ask again at its next retransmission, a second or more later, while the
    /// duplicate stays. A peer that has the answer ignores the copy (RFC 7296 §2.1: a
    /// response that matches no request of ours is dropped).
    pub(crate) fn nudge_survivor(&mut self, now: Timestamp, spi: IkeSpi) {
        let answered_auth = self.sas.get(&spi).is_some_and(|sa| {
            sa.role == Role::Responder
                && sa.last_response.as_ref().is_some_and(|a| a.message_id == 1)
        });
        if !answered_auth || self.losers_of(spi).is_empty() {
            return;
        }
        let Some(sa) = self.sas.get_mut(&spi) else {
            return;
        };
        let (local, remote) = (sa.local, sa.remote);
        // Our answer to its IKE_AUTH (message ID 1), as long as nothing followed it.
        let Some(answer) = sa.last_response.as_mut().filter(|a| a.message_id == 1) else {
            return;
        };
        if let Some(datagrams) = answer.resend_unasked(now) {
            self.transmit_all(local, remote, datagrams);
        }
    }

    /// An authenticated message of the peer came on established IKE SA `spi` (a request, or
    /// the answer to ours): the peer has it, so the duplicates it survived are deleted now
    /// (by us too if we are its responder, see [`Endpoint::resolve_duplicates`]).
    pub(crate) fn survivor_proven(&mut self, now: Timestamp, spi: IkeSpi) {
        for loser in self.losers_of(spi) {
            self.queue_task(now, loser, Task::DeleteIke);
        }
    }

    /// The duplicates that IKE SA `spi` survived and that nobody deletes yet.
    fn losers_of(&self, spi: IkeSpi) -> Vec<IkeSpi> {
        self.sas
            .iter()
            .filter(|(_, sa)| {
                sa.is_duplicate()
                    && sa.replaced_by() == Some(spi)
                    && !sa.deleting()
                    && !sa.tasks.contains(&Task::DeleteIke)
            })
            .map(|(s, _)| *s)
            .collect()
    }
}
