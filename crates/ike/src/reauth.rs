//! Reauthentication (RFC 7296 §2.8.3, RFC 4478) as make-before-break.
//!
//! A rekey keeps the authentication of the original IKE SA forever; reauthenticating means
//! building a new IKE SA from scratch — IKE_SA_INIT and IKE_AUTH, so the peer's credentials
//! are checked again and the keys owe nothing to the old SK_d — and only then deleting the
//! old one. Its first CHILD SA (made in IKE_AUTH with the configured selectors) takes over
//! from the old ones, which go with the old IKE SA; nothing is dropped in between.
//!
//! Both ends may do it (strongSwan's `reauth_time` does, in either role), so an IKE SA that
//! comes up while an older one with the same peer is established is taken as its
//! replacement — not as the duplicate of a simultaneous initiation (see the collision
//! module), which would delete the SA with the lowest nonce, possibly the new one:
//!
//! * "older" is judged on our clock: established before the new one was created here. Both
//!   ends agree on it except within a round trip of a start, and if they ever disagree the
//!   SA one of them deletes makes the other's choice moot (a replacement whose successor
//!   goes away is a normal SA again).
//! * The new SA's initiator deletes the older SA at once. Its responder waits for that
//!   Delete (`REPLACED_GRACE`, 10 s as strongSwan's uniqueness check), then deletes it
//!   itself; meanwhile its new outbound SA waits as a standby behind the old one, because
//!   the initiator may not have the new inbound SA before our IKE_AUTH answer arrives.
//! * A reauthentication that fails leaves the old SA as it was and is tried again
//!   `REAUTH_RETRY` later, until the authentication expires and the old SA is deleted.

use meshsec_types::IkeSpi;
use std::collections::HashSet;
use std::time::Duration;

use meshsec_wire::payload::{Payload, find_notify};
use meshsec_wire::registry::NotifyType;

use crate::children::child_times;
use crate::endpoint::{ApiMisuse, Endpoint};
use crate::event::{Event, PeerId};
use crate::sa::{ChildState, Life, Replacement, Role, State, Task, Timestamp};

use meshsec_types::timing::{DRAIN, REAUTH_RETRY, REPLACEABLE_AGE};

impl Endpoint {
    /// Reauthenticates the IKE SA with `peer` now: a new IKE SA and CHILD SA are set up, and
    /// the old ones deleted once they are up. Returns false if there is no established IKE
    /// SA, or a reauthentication (ours or the peer's) is already under way.
    pub fn reauthenticate(&mut self, now: Timestamp, peer: PeerId) -> Result<bool, ApiMisuse> {
        self.peers.get(peer).ok_or(ApiMisuse::UnknownPeer(peer))?;
        let Some(spi) = self.established_sa(peer) else {
            return Ok(false);
        };
        if self.replacement_under_way(peer) {
            return Ok(false);
        }
        Ok(self.queue_task(now, spi, Task::Reauthenticate))
    }

    /// An IKE SA with `peer` is being replaced: our reauthentication is being set up, or a
    /// new SA (a reauthentication by either side, or a duplicate) waits for the old one's
    /// Delete. Another reauthentication now would only race with it.
    fn replacement_under_way(&self, peer: PeerId) -> bool {
        self.sas.values().any(|sa| {
            sa.peer == Some(peer)
                && sa.successor().is_none()
                && (sa.replaced_by().is_some()
                    || sa.reauth.of.is_some() && sa.state != State::Established)
        })
    }

    /// The reauthentication times of an IKE SA authenticated `now`: (start, expiry).
    pub(crate) fn reauth_times(
        &mut self,
        now: Timestamp,
        lifetime: Option<Duration>,
    ) -> (Option<Timestamp>, Option<Timestamp>) {
        let jitter = self
            .random_bytes(1)
            .ok()
            .and_then(|b| b.first().copied())
            .unwrap_or(128);
        child_times(now, lifetime, jitter)
    }

    /// Starts the IKE SA that replaces `old` (the task never holds `old`'s request window:
    /// the new SA has its own). Returns false.
    pub(crate) fn start_reauth(&mut self, now: Timestamp, old: IkeSpi) -> bool {
        let Some(sa) = self.sas.get(&old) else {
            return false;
        };
        if sa.life != Life::Active || sa.state != State::Established {
            return false;
        }
        let Some(peer) = sa.peer else { return false };
        if self.replacement_under_way(peer) {
            return false;
        }
        match self.start_initiator(now, peer) {
            Ok(new) => {
                if let Some(n) = self.sas.get_mut(&new) {
                    n.reauth.of = Some(old);
                }
                if let Some(o) = self.sas.get_mut(&old) {
                    o.life = Life::Reauthenticating { by: new };
                }
            }
            Err(_) => {
                if let Some(o) = self.sas.get_mut(&old) {
                    o.reauth.at = Some(now + REAUTH_RETRY);
                }
            }
        }
        false
    }

    /// IKE SA `new` with `peer` just came up. If we set it up to reauthenticate an SA, that
    /// one is replaced and deleted now: we know what we replaced. If the peer set it up,
    /// every older established SA (authenticated `REPLACEABLE_AGE` before `new` was created
    /// here; a rekey keeps the age) is taken as replaced by it and left for the peer to delete — we only
    /// guess, so we delete nothing (see `stale_to_delete` for a peer that never does).
    pub(crate) fn replace_older(&mut self, now: Timestamp, peer: PeerId, new: IkeSpi) {
        let Some(n) = self.sas.get(&new) else {
            return;
        };
        let (created, reauth_of) = (n.created, n.reauth.of);
        let replaced: Vec<IkeSpi> = if n.role == Role::Initiator {
            reauth_of
                .filter(|o| {
                    self.sas
                        .get(o)
                        .is_some_and(|o| o.state == State::Established)
                })
                .into_iter()
                .collect()
        } else {
            self.sas
                .iter()
                .filter(|(s, sa)| {
                    **s != new
                        && sa.peer == Some(peer)
                        && sa.state == State::Established
                        && !sa.is_replaced()
                        && sa
                            .reauth
                            .since
                            .is_some_and(|t| t + REPLACEABLE_AGE <= created)
                })
                .map(|(s, _)| *s)
                .collect()
        };
        for spi in replaced {
            let Some(o) = self.sas.get_mut(&spi) else {
                continue;
            };
            let deleting = o.deleting();
            o.replace(now, Replacement::Reauth { by: new });
            let mut retired = Vec::new();
            if reauth_of == Some(spi) && !deleting {
                o.tasks.clear();
                o.tasks_after = now + DRAIN;
                o.tasks.push_back(Task::DeleteIke);
                retired = o
                    .children
                    .iter()
                    .filter(|c| c.state != ChildState::Deleting)
                    .map(|c| c.outbound)
                    .collect();
            }
            for outbound_spi in retired {
                self.event(Event::OutboundRetired { peer, outbound_spi });
            }
            self.event(Event::IkeSaReauthenticated {
                peer,
                old_spi: spi,
                new_spi: new,
            });
            self.run_tasks(now, spi);
        }
    }

    /// Whether the first CHILD SA of IKE SA `new` must wait as an outbound standby: we
    /// answered its IKE_AUTH (the initiator has it only once our answer arrives) while
    /// another IKE SA with `peer` still carries traffic. It takes over when those are gone.
    pub(crate) fn first_child_waits(&self, peer: PeerId, new: IkeSpi) -> bool {
        let responder = self
            .sas
            .get(&new)
            .is_some_and(|n| n.role == Role::Responder);
        responder
            && self.sas.iter().any(|(s, sa)| {
                *s != new
                    && sa.peer == Some(peer)
                    && sa.children.iter().any(|c| c.state != ChildState::Deleting)
            })
    }

    /// IKE SA `gone` is being removed: an SA it was replacing (or about to) is a normal SA
    /// again. If `gone` was our reauthentication of it and its authentication has an end,
    /// it is tried again `REAUTH_RETRY` later.
    pub(crate) fn successor_gone(&mut self, gone: IkeSpi, ours: bool) {
        let retry = self.now_hint + REAUTH_RETRY;
        for sa in self.sas.values_mut() {
            if sa.replaced_by() != Some(gone) {
                continue;
            }
            if sa.is_replaced() {
                sa.tasks.retain(|t| *t != Task::DeleteIke);
            }
            sa.life = Life::Active;
            if ours && sa.reauth.expires.is_some() {
                sa.reauth.at = Some(retry);
            }
        }
    }

    /// `stale` was replaced (a reauthentication or a duplicate) and its Delete never came
    /// from the peer: which of it and its replacement we delete. The two ends' views of
    /// which replaced which can differ (each judged "older" on its own clock, with messages
    /// lost or delayed); each then waits for the other's Delete. At the end of the wait both
    /// settle it the same way: the SA with the lowest nonce goes.
    pub(crate) fn stale_to_delete(&mut self, now: Timestamp, stale: IkeSpi) -> IkeSpi {
        let lowest = |sa: &crate::sa::IkeSa| sa.ni.clone().min(sa.nr.clone());
        let Some(old) = self.sas.get(&stale) else {
            return stale;
        };
        let Some(new) = old.replaced_by() else {
            return stale;
        };
        let swap = self.sas.get(&new).is_some_and(|n| {
            n.state == State::Established && !n.is_replaced() && lowest(n) < lowest(old)
        });
        if !swap {
            return stale;
        }
        if let Some(o) = self.sas.get_mut(&stale) {
            o.life = Life::Active;
        }
        if let Some(n) = self.sas.get_mut(&new) {
            n.replace(
                now,
                Replacement::Duplicate {
                    survivor: stale,
                    start: false,
                },
            );
            n.tasks.clear();
        }
        new
    }

    /// An AUTH_LIFETIME notify (RFC 4478) in the IKE_AUTH answer: the peer wants us to
    /// reauthenticate before it ends (our own lifetime still applies if shorter).
    pub(crate) fn apply_auth_lifetime(
        &mut self,
        now: Timestamp,
        spi: IkeSpi,
        payloads: &[Payload],
    ) {
        let Some(secs) = find_notify(payloads, NotifyType::AUTH_LIFETIME)
            .and_then(|n| <[u8; 4]>::try_from(n.data.as_ref()).ok())
            .map(u32::from_be_bytes)
        else {
            return;
        };
        let (at, expires) = self.reauth_times(now, Some(Duration::from_secs(secs.into())));
        if let Some(sa) = self.sas.get_mut(&spi) {
            sa.reauth.at = sa.reauth.at.min(at).or(at);
            sa.reauth.expires = sa.reauth.expires.min(expires).or(expires);
        }
    }

    /// IKE SAs due for reauthentication, and those whose authentication expired.
    pub(crate) fn reauth_timers(&mut self, now: Timestamp, timers_due: &HashSet<IkeSpi>) {
        let mut due = Vec::new();
        let mut expired = Vec::new();
        for (spi, sa) in self.sas.iter().filter(|(s, _)| timers_due.contains(s)) {
            if sa.state != State::Established || sa.life != Life::Active {
                continue;
            }
            if sa.reauth.expires.is_some_and(|t| t <= now) {
                expired.push(*spi);
            } else if sa.reauth.at.is_some_and(|t| t <= now) {
                due.push(*spi);
            }
        }
        for spi in expired {
            if let Some(sa) = self.sas.get_mut(&spi) {
                sa.reauth = Default::default();
                sa.tasks.clear();
                sa.tasks.push_back(Task::DeleteIke);
            }
            self.run_tasks(now, spi);
        }
        for spi in due {
            if let Some(sa) = self.sas.get_mut(&spi) {
                sa.reauth.at = None;
            }
            self.queue_task(now, spi, Task::Reauthenticate);
        }
    }
}
