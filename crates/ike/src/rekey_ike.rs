//! Rekeying the IKE SA (RFC 7296 §1.3.2, §2.18): a CREATE_CHILD_SA exchange on the old IKE
//! SA with an IKE proposal carrying the new SPI, fresh nonces and a new key exchange. The
//! new IKE SA's keys come from the old SK_d; the CHILD SAs move to it untouched (the data
//! plane sees nothing); the rekey's initiator is the new SA's original initiator and
//! deletes the old one.
//!
//! Collisions (§2.8.2): both ends rekey at once — each side ends up with two new IKE SAs;
//! the one created with the lowest of the four nonces is deleted by the end that created
//! it, and the CHILD SAs live on the other.

use meshsec_types::{IkeSpi, InboundSpi};
use std::borrow::Cow;
use std::collections::HashSet;

use meshsec_crypto::Secret;
use meshsec_crypto::keys;
use meshsec_wire::payload::{KePayload, Payload, PayloadBody, SaPayload};
use meshsec_wire::registry::{ExchangeType, KeMethod, NotifyType, ProtocolId};

use crate::children::child_times;
use crate::endpoint::{ApiMisuse, Endpoint, NONCE_LEN};
use crate::error::{ErrorKind, IkeError};
use crate::event::{Event, Failure, PeerId};
use crate::ike_sa_init::{crypto_from, suite_of};
use crate::proposal::{self, Chosen, ProposalSpec};
use crate::request::{IkeRekeyExchange, RequestKind};
use crate::sa::{ChildState, IkeSa, Life, Replacement, Role, State, Task, Timestamp};

pub(crate) use meshsec_types::timing::REPLACED_GRACE;
use meshsec_types::timing::TEMPORARY_FAILURE_RETRY;

fn ike_spi(p: &Chosen) -> Option<IkeSpi> {
    <[u8; 8]>::try_from(p.spi.as_slice())
        .ok()
        .map(|b| IkeSpi::new(u64::from_be_bytes(b)))
}

impl Endpoint {
    /// Rekeys the IKE SA with `peer` (its CHILD SAs are kept). Returns false if there is no
    /// established IKE SA.
    pub fn rekey_ike_sa(&mut self, now: Timestamp, peer: PeerId) -> Result<bool, ApiMisuse> {
        self.peers.get(peer).ok_or(ApiMisuse::UnknownPeer(peer))?;
        let Some(spi) = self.established_sa(peer) else {
            return Ok(false);
        };
        Ok(self.queue_task(now, spi, Task::RekeyIke))
    }

    /// The new IKE SA's soft lifetime (rekey time), with jitter.
    pub(crate) fn ike_rekey_time(&mut self, now: Timestamp, peer: PeerId) -> Option<Timestamp> {
        let lifetime = self.peers.get(peer).and_then(|c| c.ike_lifetime);
        let jitter = self
            .random_bytes(1)
            .ok()
            .and_then(|b| b.first().copied())
            .unwrap_or(128);
        child_times(now, lifetime, jitter).0
    }

    /// Sends our rekey request; false if there is nothing to do.
    pub(crate) fn start_ike_rekey(&mut self, now: Timestamp, spi: IkeSpi) -> bool {
        let Some(sa) = self.sas.get(&spi) else {
            return false;
        };
        if sa.life != Life::Active {
            // Replaced, or about to be by a reauthentication (which makes new keys anyway).
            return false;
        }
        let Some(cfg) = sa.peer.and_then(|p| self.peers.get(p)).cloned() else {
            return false;
        };
        let Some(method) = cfg
            .ike_proposals
            .first()
            .and_then(|p| p.ke.first().copied())
        else {
            return false;
        };
        self.send_ike_rekey(now, spi, method, cfg.ike_proposals)
    }

    fn send_ike_rekey(
        &mut self,
        now: Timestamp,
        spi: IkeSpi,
        method: KeMethod,
        all: Vec<ProposalSpec>,
    ) -> bool {
        let (Ok(new_spi), Ok(ni), Ok(kx)) = (
            self.new_ike_spi(),
            self.random_bytes(NONCE_LEN),
            self.key_exchange(method),
        ) else {
            return false;
        };
        // Only the proposals of the group we send a KE for.
        let proposals: Vec<ProposalSpec> =
            all.into_iter().filter(|p| p.ke.contains(&method)).collect();
        let inner = [
            Payload::new(PayloadBody::Sa(SaPayload {
                proposals: proposals
                    .iter()
                    .zip(1u8..)
                    .map(|(p, n)| p.to_proposal(n, new_spi.to_be_bytes().to_vec()))
                    .collect(),
            })),
            Payload::new(PayloadBody::Nonce(Cow::Owned(ni.clone()))),
            Payload::new(PayloadBody::Ke(KePayload {
                method,
                data: Cow::Owned(kx.public_value().to_vec()),
            })),
        ];
        let kind = RequestKind::RekeyIke(IkeRekeyExchange {
            spi: new_spi,
            ni,
            kx,
            proposals,
            peer_rekey: None,
        });
        self.send_request_message(now, spi, ExchangeType::CREATE_CHILD_SA, &inner, kind)
    }

    /// Builds the new IKE SA that replaces `old` (not inserted yet).
    #[allow(clippy::too_many_arguments)]
    fn successor(
        &mut self,
        now: Timestamp,
        old: IkeSpi,
        role: Role,
        spis: (IkeSpi, IkeSpi),
        nonces: (Vec<u8>, Vec<u8>),
        chosen: &Chosen,
        shared: &Secret,
    ) -> Option<IkeSa> {
        let provider = self.provider;
        let suite = suite_of(provider, chosen).ok()?;
        let sa = self.sas.get(&old)?;
        let old_crypto = sa.crypto.as_ref()?;
        let peer = sa.peer?;
        let skeyseed = keys::rekey_skeyseed(
            old_crypto.suite.prf,
            old_crypto.keys.sk_d.expose(),
            shared.expose(),
            &nonces.0,
            &nonces.1,
        );
        let mut new = IkeSa::new(
            role,
            State::Established,
            Some(peer),
            spis,
            (sa.local, sa.remote),
            now,
            InboundSpi::new(0),
        );
        (new.ni, new.nr) = nonces;
        new.established_at = Some(now);
        new.udp_encap = sa.udp_encap;
        new.nat = sa.nat;
        new.keepalive_at = sa.keepalive_at;
        new.fragmentation = sa.fragmentation;
        new.peer_hashes = sa.peer_hashes.clone();
        new.peer_certificate = sa.peer_certificate.clone();
        new.proposal = chosen.describe(ProtocolId::IKE);
        new.crypto = Some(crypto_from(suite, &skeyseed, &new).ok()?);
        // A rekey does not authenticate anew: the reauthentication times carry over.
        new.reauth.since = sa.reauth.since;
        new.reauth.at = sa.reauth.at;
        new.reauth.expires = sa.reauth.expires;
        new.rekey_at = self.ike_rekey_time(now, peer);
        Some(new)
    }

    /// IKE SA `from` was rekeyed into `to` now: its CHILD SAs and queued work move there, and
    /// it waits for its Delete.
    pub(crate) fn move_children(&mut self, now: Timestamp, from: IkeSpi, to: IkeSpi) {
        // An SA waiting to be replaced by `from` (a reauthentication) is replaced by `to`,
        // and a reauthentication of `from` under way is one of `to`.
        for sa in self.sas.values_mut() {
            sa.retarget(from, to);
            if sa.reauth.of == Some(from) {
                sa.reauth.of = Some(to);
            }
        }
        let Some(old) = self.sas.get_mut(&from) else {
            return;
        };
        old.replace(now, Replacement::Rekey { successor: to });
        let children = std::mem::take(&mut old.children);
        let tasks: Vec<Task> = old
            .tasks
            .drain(..)
            .filter(|t| !matches!(t, Task::DeleteIke | Task::RekeyIke))
            .collect();
        if let Some(new) = self.sas.get_mut(&to) {
            // A Delete still in flight on the old SA may never be answered there (the old SA
            // goes away first): it is sent again on the new one. A peer that already removed
            // the CHILD SA answers it with nothing, which completes it just the same.
            for c in children.iter().filter(|c| c.state == ChildState::Deleting) {
                new.tasks.push_back(Task::DeleteChild(c.inbound));
            }
            new.children.extend(children);
            new.tasks.extend(tasks);
        }
    }

    /// The peer's request to rekey IKE SA `spi` (an IKE proposal in CREATE_CHILD_SA).
    pub(crate) fn handle_ike_rekey_request(
        &mut self,
        now: Timestamp,
        spi: IkeSpi,
        message_id: u32,
        payloads: &[Payload<'_>],
    ) -> Result<(), IkeError> {
        let sa = self.sas.get(&spi).ok_or(ErrorKind::Internal)?;
        let peer = sa.peer.ok_or(ErrorKind::Internal)?;
        let cfg = self.peers.get(peer).cloned().ok_or(ErrorKind::Internal)?;
        let busy = sa.life != Life::Active || sa.child_exchange().is_some();
        if busy {
            // Already replaced (or being replaced by our reauthentication), or a CHILD SA of
            // ours is being made on it: later (§2.25).
            return Err(ErrorKind::TemporaryFailure.into());
        }
        let (mut offer, mut ni, mut ke) = (None, None, None);
        for p in payloads {
            match &p.body {
                PayloadBody::Sa(s) => offer = Some(s),
                PayloadBody::Nonce(n) => ni = Some(n.to_vec()),
                PayloadBody::Ke(k) => ke = Some(k),
                _ => {}
            }
        }
        let (Some(offer), Some(ni), Some(ke)) = (offer, ni, ke) else {
            return Err(ErrorKind::InvalidSyntax.into());
        };
        let chosen = proposal::select(&cfg.ike_proposals, &offer.proposals)
            .map_err(|e| IkeError::failed(Some(peer), Failure::NoProposalChosen(e)))?;
        let (Some(method), Some(peer_spi)) = (chosen.ke, ike_spi(&chosen)) else {
            return Err(ErrorKind::InvalidSyntax.into());
        };
        if ke.method != method {
            return Err(IkeError::invalid_ke(method));
        }
        let (Ok(our_spi), Ok(nr), Ok(kx)) = (
            self.new_ike_spi(),
            self.random_bytes(NONCE_LEN),
            self.key_exchange(method),
        ) else {
            return Err(ErrorKind::Internal.into());
        };
        let shared = kx.agree(&ke.data).map_err(|_| ErrorKind::InvalidSyntax)?;
        let nonces = (ni.clone(), nr.clone());
        let new = self
            .successor(
                now,
                spi,
                Role::Responder,
                (peer_spi, our_spi),
                nonces,
                &chosen,
                &shared,
            )
            .ok_or(ErrorKind::Internal)?;
        let inner = [
            Payload::new(PayloadBody::Sa(SaPayload {
                proposals: vec![
                    chosen.to_proposal(ProtocolId::IKE, our_spi.to_be_bytes().to_vec()),
                ],
            })),
            Payload::new(PayloadBody::Nonce(Cow::Owned(nr.clone()))),
            Payload::new(PayloadBody::Ke(KePayload {
                method,
                data: Cow::Owned(kx.public_value().to_vec()),
            })),
        ];
        self.sas.insert(our_spi, new);
        let min_nonce = ni.min(nr);
        let collision = self
            .sas
            .get_mut(&spi)
            .and_then(|sa| sa.ike_exchange_mut())
            .map(|ex| ex.peer_rekey = Some((our_spi, min_nonce)))
            .is_some();
        if !collision {
            // The peer deletes the old SA; everything lives on the new one from now on.
            self.move_children(now, spi, our_spi);
        }
        self.respond(spi, message_id, ExchangeType::CREATE_CHILD_SA, &inner);
        self.event(Event::IkeSaRekeyed {
            peer,
            old_spi: spi,
            new_spi: our_spi,
        });
        self.event(Event::PeerAlive { peer });
        Ok(())
    }

    /// The answer to our IKE SA rekey.
    pub(crate) fn handle_ike_rekey_response(
        &mut self,
        now: Timestamp,
        spi: IkeSpi,
        payloads: Result<Vec<Payload<'_>>, IkeError>,
    ) -> Result<(), IkeError> {
        let sa = self.sas.get_mut(&spi).ok_or(ErrorKind::Internal)?;
        let Some(RequestKind::RekeyIke(ex)) = sa.take_request() else {
            return Err(ErrorKind::Internal.into());
        };
        let peer = sa.peer.ok_or(ErrorKind::Internal)?;
        let payloads = match payloads {
            Ok(p) => p,
            Err(e) => {
                self.run_tasks(now, spi);
                return Err(IkeError::protocol(
                    e.kind,
                    Some(peer),
                    "IKE SA rekey: the answer does not parse or breaks the placement rules",
                ));
            }
        };
        self.event(Event::PeerAlive { peer });
        let error = payloads
            .iter()
            .filter_map(Payload::as_notify)
            .find(|n| n.ty.is_error())
            .map(|n| (n.ty, n.data.to_vec()));
        if let Some((ty, data)) = error {
            if let Some((theirs, _)) = ex.peer_rekey {
                // Ours was refused (the peer had finished its own rekey when ours arrived),
                // but we answered the peer's: that one is the new IKE SA, without a contest.
                // The CHILD SAs move there; the peer deletes the old SA.
                self.move_children(now, spi, theirs);
                self.run_tasks(now, theirs);
                return Ok(());
            }
            self.ike_rekey_refused(now, spi, peer, &ex, ty, &data);
            self.run_tasks(now, spi);
            return Ok(());
        }
        let (mut answer, mut nr, mut ke) = (None, None, None);
        for p in &payloads {
            match &p.body {
                PayloadBody::Sa(s) => answer = Some(s),
                PayloadBody::Nonce(n) => nr = Some(n.to_vec()),
                PayloadBody::Ke(k) => ke = Some(k),
                _ => {}
            }
        }
        let chosen = answer
            .filter(|a| a.proposals.len() == 1)
            .and_then(|a| proposal::select(&ex.proposals, &a.proposals).ok());
        let shared = ke
            .filter(|k| k.method == ex.kx.method())
            .and_then(|k| ex.kx.agree(&k.data).ok());
        let (Some(chosen), Some(nr), Some(shared)) = (chosen, nr, shared) else {
            self.run_tasks(now, spi);
            return Err(IkeError::protocol(
                ErrorKind::PeerMisbehaved,
                Some(peer),
                "IKE SA rekey: the answer lacks a valid SA, nonce or KE",
            ));
        };
        let Some(peer_spi) = ike_spi(&chosen) else {
            self.run_tasks(now, spi);
            return Err(ErrorKind::InvalidSyntax.into());
        };
        let min_nonce = ex.ni.clone().min(nr.clone());
        let Some(new) = self.successor(
            now,
            spi,
            Role::Initiator,
            (ex.spi, peer_spi),
            (ex.ni.clone(), nr),
            &chosen,
            &shared,
        ) else {
            self.run_tasks(now, spi);
            return Err(ErrorKind::Internal.into());
        };
        self.sas.insert(ex.spi, new);
        self.event(Event::IkeSaRekeyed {
            peer,
            old_spi: spi,
            new_spi: ex.spi,
        });
        if let Some((_, peer_min)) = &ex.peer_rekey {
            let won = min_nonce >= *peer_min;
            self.event(Event::RekeyCollision {
                peer,
                ike: true,
                won,
            });
        }
        match &ex.peer_rekey {
            // A collision we lost: our new SA is the redundant one; the CHILD SAs go to the
            // peer's, and the peer deletes the old one.
            Some((theirs, peer_min)) if min_nonce < *peer_min => {
                let theirs = *theirs;
                self.move_children(now, spi, theirs);
                self.queue_task(now, ex.spi, Task::DeleteIke);
                self.run_tasks(now, theirs);
            }
            // We won (or there was no collision): the CHILD SAs live on ours; the old SA and,
            // after a collision, the peer's new one are deleted by their creators.
            Some((theirs, _)) => {
                let theirs = *theirs;
                self.move_children(now, spi, ex.spi);
                self.move_children(now, theirs, ex.spi);
                self.finish_old(now, spi, ex.spi);
            }
            None => {
                self.move_children(now, spi, ex.spi);
                self.finish_old(now, spi, ex.spi);
            }
        }
        Ok(())
    }

    /// Deletes the old IKE SA (rekeyed into `new`) after our rekey won.
    fn finish_old(&mut self, now: Timestamp, old: IkeSpi, new: IkeSpi) {
        if let Some(sa) = self.sas.get_mut(&old) {
            sa.tasks.clear();
            sa.tasks.push_back(Task::DeleteIke);
        }
        self.run_tasks(now, old);
        self.run_tasks(now, new);
    }

    fn ike_rekey_refused(
        &mut self,
        now: Timestamp,
        spi: IkeSpi,
        peer: PeerId,
        ex: &IkeRekeyExchange,
        ty: NotifyType,
        data: &[u8],
    ) {
        match ty {
            NotifyType::TEMPORARY_FAILURE => {
                if let Some(sa) = self.sas.get_mut(&spi) {
                    sa.tasks.push_back(Task::RekeyIke);
                    sa.tasks_after = now + TEMPORARY_FAILURE_RETRY;
                }
            }
            NotifyType::INVALID_KE_PAYLOAD => {
                let wanted = <[u8; 2]>::try_from(data)
                    .ok()
                    .map(|b| KeMethod(u16::from_be_bytes(b)));
                let all = self
                    .peers
                    .get(peer)
                    .map(|c| c.ike_proposals.clone())
                    .unwrap_or_default();
                match wanted.filter(|m| all.iter().any(|p| p.ke.contains(m))) {
                    Some(m) => {
                        let _ = self.send_ike_rekey(now, spi, m, all);
                    }
                    None => self.fail(
                        Some(peer),
                        Failure::PeerRefused {
                            notify: ty,
                            exchange: ExchangeType::CREATE_CHILD_SA,
                            we_offered: "an IKE SA rekey".into(),
                        },
                    ),
                }
            }
            _ => {
                let _ = ex;
                self.fail(
                    Some(peer),
                    Failure::PeerRefused {
                        notify: ty,
                        exchange: ExchangeType::CREATE_CHILD_SA,
                        we_offered: "an IKE SA rekey".into(),
                    },
                );
            }
        }
    }

    /// IKE SAs due for a rekey, and replaced ones whose Delete never came.
    pub(crate) fn ike_timers(&mut self, now: Timestamp, timers_due: &HashSet<IkeSpi>) {
        // A replaced IKE SA is deleted by the peer that created its successor; if that Delete
        // was lost with the peer's state (e.g. a collision the peer never saw complete), we
        // delete it ourselves. A peer that has it no longer makes the Delete time out, which
        // removes it just the same.
        let stale: Vec<IkeSpi> = self
            .sas
            .iter()
            .filter(|(s, _)| timers_due.contains(s))
            .filter(|(_, sa)| {
                sa.replaced_since()
                    .is_some_and(|since| now >= since + REPLACED_GRACE)
                    && sa.outstanding.is_none()
                    && !sa.tasks.contains(&Task::DeleteIke)
            })
            .map(|(s, _)| *s)
            .collect();
        for spi in stale {
            let spi = self.stale_to_delete(now, spi);
            if let Some(sa) = self.sas.get_mut(&spi) {
                sa.tasks.push_back(Task::DeleteIke);
            }
            self.run_tasks(now, spi);
        }
        let due: Vec<IkeSpi> = self
            .sas
            .iter()
            .filter(|(s, _)| timers_due.contains(s))
            .filter(|(_, sa)| {
                sa.state == State::Established
                    && !sa.is_replaced()
                    && sa.rekey_at.is_some_and(|t| t <= now)
            })
            .map(|(s, _)| *s)
            .collect();
        for spi in due {
            if let Some(sa) = self.sas.get_mut(&spi) {
                sa.rekey_at = None;
                if !sa.tasks.contains(&Task::RekeyIke) {
                    sa.tasks.push_front(Task::RekeyIke);
                }
            }
            self.run_tasks(now, spi);
        }
    }
}
