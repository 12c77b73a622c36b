//! The CREATE_CHILD_SA exchange for CHILD SAs (RFC 7296 §1.3.1–§1.3.3): additional CHILD SAs
//! and CHILD SA rekeying with optional PFS, make-before-break, and the rekey collisions of
//! §2.8.1 (both ends rekey the same CHILD SA: the new SA holding the lowest of the four
//! nonces is deleted by the end that created it).
//!
//! Who deletes what after a rekey: the initiator of the winning exchange deletes the old SA;
//! the responder keeps the old SA (and sends on it) until that Delete arrives, then switches
//! to the new one, which it installed as a standby when it answered.

use crate::children::esp_spi;
use meshsec_types::{IkeSpi, InboundSpi, OutboundSpi};
use std::borrow::Cow;

use meshsec_wire::payload::{
    AddrSelector, KePayload, Notify, Payload, PayloadBody, SaPayload, find_notify,
};
use meshsec_wire::registry::{ExchangeType, KeMethod, NotifyType, ProtocolId};

use crate::config::ChildMode;
use crate::endpoint::{ApiMisuse, Endpoint, NONCE_LEN};
use crate::error::{ErrorKind, IkeError};
use crate::event::{Event, Failure, PeerId};
use crate::ike_auth::{ChildKdf, notify, ts_payload};
use crate::proposal::{self, ProposalSpec};
use crate::request::{ChildExchange, RequestKind};
use crate::sa::{ChildState, Task, Timestamp};
use crate::ts;

use meshsec_types::timing::TEMPORARY_FAILURE_RETRY;

/// What a CREATE_CHILD_SA message carries, found by type.
#[derive(Default)]
struct Content<'a> {
    sa: Option<&'a SaPayload<'a>>,
    nonce: Option<&'a [u8]>,
    ke: Option<&'a KePayload<'a>>,
    ts_i: Vec<AddrSelector>,
    ts_r: Vec<AddrSelector>,
    rekey_spi: Option<OutboundSpi>,
}

fn content<'a>(payloads: &'a [Payload<'a>]) -> Content<'a> {
    let mut c = Content::default();
    for p in payloads {
        match &p.body {
            PayloadBody::Sa(s) => c.sa = Some(s),
            PayloadBody::Nonce(n) => c.nonce = Some(n),
            PayloadBody::Ke(k) => c.ke = Some(k),
            PayloadBody::TsI(t) => c.ts_i = ts::addr_selectors(&t.selectors).copied().collect(),
            PayloadBody::TsR(t) => c.ts_r = ts::addr_selectors(&t.selectors).copied().collect(),
            PayloadBody::Notify(n) if n.ty == NotifyType::REKEY_SA => {
                c.rekey_spi = <[u8; 4]>::try_from(n.spi.as_ref())
                    .ok()
                    .map(|b| OutboundSpi::new(u32::from_be_bytes(b)));
            }
            _ => {}
        }
    }
    c
}

impl Endpoint {
    /// Rekeys the newest CHILD SA with `peer` (make-before-break). Returns false if there is
    /// no established IKE SA or no CHILD SA to rekey.
    pub fn rekey_child_sa(&mut self, now: Timestamp, peer: PeerId) -> Result<bool, ApiMisuse> {
        self.peers.get(peer).ok_or(ApiMisuse::UnknownPeer(peer))?;
        let Some(spi) = self.established_sa(peer) else {
            return Ok(false);
        };
        let Some(inbound) = self.sas.get(&spi).and_then(|sa| {
            sa.children
                .iter()
                .rev()
                .find(|c| c.state == ChildState::Installed)
                .map(|c| c.inbound)
        }) else {
            return Ok(false);
        };
        Ok(self.queue_task(now, spi, Task::RekeyChild(inbound)))
    }

    /// Creates an additional CHILD SA with `peer` (e.g. to replace one the peer lost).
    pub fn create_child_sa(&mut self, now: Timestamp, peer: PeerId) -> Result<bool, ApiMisuse> {
        self.peers.get(peer).ok_or(ApiMisuse::UnknownPeer(peer))?;
        let Some(spi) = self.established_sa(peer) else {
            return Ok(false);
        };
        Ok(self.queue_task(now, spi, Task::CreateChild))
    }

    /// Sends our CREATE_CHILD_SA request; false if there is nothing to do.
    pub(crate) fn start_child_exchange(
        &mut self,
        now: Timestamp,
        spi: IkeSpi,
        rekey_of: Option<InboundSpi>,
    ) -> bool {
        let Some(sa) = self.sas.get(&spi) else {
            return false;
        };
        let Some(cfg) = sa.peer.and_then(|p| self.peers.get(p)).cloned() else {
            return false;
        };
        let (mode, local_ts, remote_ts) = match rekey_of {
            Some(inbound) => {
                // Only an SA still carrying traffic is rekeyed (the peer may have rekeyed or
                // deleted it meanwhile).
                let Some(old) = sa
                    .children
                    .iter()
                    .find(|c| c.inbound == inbound && c.state == ChildState::Installed)
                else {
                    return false;
                };
                (old.mode, old.local_ts.clone(), old.remote_ts.clone())
            }
            None => (cfg.mode, cfg.local_ts.clone(), cfg.remote_ts.clone()),
        };
        let method = cfg
            .esp_proposals
            .first()
            .and_then(|p| p.ke.first().copied());
        self.send_child_request(now, spi, rekey_of, method, mode, local_ts, remote_ts)
    }

    #[allow(clippy::too_many_arguments)]
    fn send_child_request(
        &mut self,
        now: Timestamp,
        spi: IkeSpi,
        rekey_of: Option<InboundSpi>,
        method: Option<KeMethod>,
        mode: ChildMode,
        local_ts: Vec<AddrSelector>,
        remote_ts: Vec<AddrSelector>,
    ) -> bool {
        let Some(cfg) = self
            .sas
            .get(&spi)
            .and_then(|sa| sa.peer)
            .and_then(|p| self.peers.get(p))
            .cloned()
        else {
            return false;
        };
        let (Ok(new_spi), Ok(ni)) = (self.new_esp_spi(), self.random_bytes(NONCE_LEN)) else {
            return false;
        };
        let kx = match method {
            Some(m) => match self.key_exchange(m) {
                Ok(k) => Some(k),
                Err(_) => return false,
            },
            None => None,
        };
        // With PFS, only the proposals of the group we send a KE for (others would need
        // another round trip); without, the proposals without a group.
        let proposals: Vec<ProposalSpec> = match method {
            Some(m) => cfg
                .esp_proposals
                .iter()
                .filter(|p| p.ke.contains(&m))
                .cloned()
                .collect(),
            None => cfg
                .esp_proposals
                .iter()
                .map(ProposalSpec::without_ke)
                .collect(),
        };
        let mut inner = Vec::new();
        if let Some(old) = rekey_of {
            let mut n = Notify::new(NotifyType::REKEY_SA, Vec::new());
            n.protocol = ProtocolId::ESP;
            n.spi = Cow::Owned(old.to_be_bytes().to_vec());
            inner.push(Payload::new(PayloadBody::Notify(n)));
        }
        if mode == ChildMode::Transport {
            inner.push(notify(NotifyType::USE_TRANSPORT_MODE));
        }
        inner.push(Payload::new(PayloadBody::Sa(SaPayload {
            proposals: proposals
                .iter()
                .zip(1u8..)
                .map(|(p, n)| p.to_proposal(n, new_spi.to_be_bytes().to_vec()))
                .collect(),
        })));
        inner.push(Payload::new(PayloadBody::Nonce(Cow::Owned(ni.clone()))));
        if let Some(k) = &kx {
            inner.push(Payload::new(PayloadBody::Ke(KePayload {
                method: k.method(),
                data: Cow::Owned(k.public_value().to_vec()),
            })));
        }
        inner.push(Payload::new(PayloadBody::TsI(ts_payload(&local_ts))));
        inner.push(Payload::new(PayloadBody::TsR(ts_payload(&remote_ts))));
        let ex = ChildExchange {
            rekey_of,
            spi: new_spi,
            ni,
            kx,
            proposals,
            local_ts,
            remote_ts,
            mode,
            peer_rekey: None,
        };
        let kind = RequestKind::CreateChild(ex);
        if !self.send_request_message(now, spi, ExchangeType::CREATE_CHILD_SA, &inner, kind) {
            return false;
        }
        if let Some(old) = rekey_of
            && let Some(sa) = self.sas.get_mut(&spi)
            && let Some(c) = sa.children.iter_mut().find(|c| c.inbound == old)
        {
            c.state = ChildState::Rekeying;
        }
        true
    }

    /// The peer's CREATE_CHILD_SA request.
    pub(crate) fn handle_create_child_request(
        &mut self,
        now: Timestamp,
        spi: IkeSpi,
        payloads: &[Payload<'_>],
    ) -> Result<(), IkeError> {
        let sa = self.sas.get(&spi).ok_or(ErrorKind::Internal)?;
        let message_id = sa.expected_request_id;
        let peer = sa.peer.ok_or(ErrorKind::Internal)?;
        let cfg = self.peers.get(peer).cloned().ok_or(ErrorKind::Internal)?;
        let c = content(payloads);
        let (Some(offer), Some(ni)) = (c.sa, c.nonce) else {
            return Err(ErrorKind::InvalidSyntax.into());
        };
        if offer
            .proposals
            .iter()
            .any(|p| p.protocol == ProtocolId::IKE)
        {
            return self.handle_ike_rekey_request(now, spi, message_id, payloads);
        }
        if sa.is_replaced() {
            // Its CHILD SAs moved to the new IKE SA; the peer asks again there.
            return Err(ErrorKind::TemporaryFailure.into());
        }
        // A rekey names the SA by the SPI the peer receives on: our outbound.
        let mut rekey_of = None;
        if let Some(peer_inbound) = c.rekey_spi {
            let found = sa.children.iter().find(|ch| ch.outbound == peer_inbound);
            match found.map(|ch| (ch.inbound, ch.state)) {
                // Unknown, but our own CREATE_CHILD_SA is in flight: the SA may be the one
                // it creates (our answer was lost or is late). Not "not found" yet.
                None if sa.child_exchange().is_some() => {
                    return Err(ErrorKind::TemporaryFailure.into());
                }
                None => return Err(IkeError::child_sa_not_found(peer_inbound)),
                // We already replaced it or are deleting it: the peer retries later and by
                // then finds it gone (RFC 7296 §2.25).
                Some((_, ChildState::Rekeyed | ChildState::Deleting)) => {
                    return Err(ErrorKind::TemporaryFailure.into());
                }
                Some((inbound, _)) => rekey_of = Some(inbound),
            }
        }
        let mode = if find_notify(payloads, NotifyType::USE_TRANSPORT_MODE).is_some() {
            ChildMode::Transport
        } else {
            ChildMode::Tunnel
        };
        if mode != cfg.mode {
            return Err(IkeError::failed(
                Some(peer),
                Failure::ModeMismatch { ours: cfg.mode },
            ));
        }
        // Our proposals with PFS as configured: a proposal of ours with a key exchange method
        // takes only an offer with one (and its KE payload), so a peer cannot talk us out of
        // PFS by leaving the KE out (the mismatch is explained as the key exchange method).
        let chosen = proposal::select(&cfg.esp_proposals, &offer.proposals)
            .map_err(|e| IkeError::failed(Some(peer), Failure::NoProposalChosen(e)))?;
        let g_ir = match (chosen.ke, c.ke) {
            (Some(m), Some(ke)) if ke.method == m => {
                let kx = self.key_exchange(m).map_err(|_| ErrorKind::Internal)?;
                let secret = kx.agree(&ke.data).map_err(|_| ErrorKind::InvalidSyntax)?;
                Some((kx, secret))
            }
            (Some(m), _) => return Err(IkeError::invalid_ke(m)),
            (None, _) => None,
        };
        let (ts_i, ts_r) = ts::respond(&c.ts_i, &c.ts_r, &cfg.remote_ts, &cfg.local_ts)
            .map_err(|e| IkeError::failed(Some(peer), Failure::TsUnacceptable(e)))?;
        let peer_spi = esp_spi(&chosen.spi).ok_or(ErrorKind::InvalidSyntax)?;
        let (Ok(our_spi), Ok(nr)) = (self.new_esp_spi(), self.random_bytes(NONCE_LEN)) else {
            return Err(ErrorKind::Internal.into());
        };
        let tfc = find_notify(payloads, NotifyType::ESP_TFC_PADDING_NOT_SUPPORTED).is_none();
        let sa = self.sas.get(&spi).ok_or(ErrorKind::Internal)?;
        let Some(mut child) = self.child_sa(
            sa,
            peer,
            &chosen,
            mode,
            (ts_r.clone(), ts_i.clone()),
            (our_spi, peer_spi),
            tfc,
            ChildKdf {
                g_ir: g_ir.as_ref().map(|(_, s)| s.expose()),
                ni,
                nr: &nr,
                we_initiated: false,
            },
        ) else {
            return Err(ErrorKind::Internal.into());
        };
        child.rekey_of = rekey_of;
        // Until the peer has our answer it cannot open the new SA: if traffic has an SA to
        // use meanwhile (the one rekeyed, or another), the new one waits behind it.
        child.outbound_standby =
            rekey_of.is_some() || sa.children.iter().any(|c| c.state == ChildState::Installed);
        let mut inner = vec![Payload::new(PayloadBody::Sa(SaPayload {
            proposals: vec![chosen.to_proposal(ProtocolId::ESP, our_spi.to_be_bytes().to_vec())],
        }))];
        inner.push(Payload::new(PayloadBody::Nonce(Cow::Owned(nr.clone()))));
        if let Some((kx, _)) = &g_ir {
            inner.push(Payload::new(PayloadBody::Ke(KePayload {
                method: kx.method(),
                data: Cow::Owned(kx.public_value().to_vec()),
            })));
        }
        inner.push(Payload::new(PayloadBody::TsI(ts_payload(&ts_i))));
        inner.push(Payload::new(PayloadBody::TsR(ts_payload(&ts_r))));
        if mode == ChildMode::Transport {
            inner.push(notify(NotifyType::USE_TRANSPORT_MODE));
        }
        // Make-before-break: the new inbound SA is installed before the answer leaves.
        let min_nonce = ni.to_vec().min(nr);
        self.record_child(now, spi, &child, cfg.child_lifetime);
        self.event(Event::InstallChildSa(child));
        if let Some(old) = rekey_of
            && let Some(sa) = self.sas.get_mut(&spi)
        {
            let ours_too = sa
                .children
                .iter()
                .any(|c| c.inbound == old && c.state == ChildState::Rekeying)
                && sa
                    .child_exchange()
                    .is_some_and(|ex| ex.rekey_of == Some(old));
            if ours_too {
                // A collision: resolved when our own exchange completes.
                if let Some(ex) = sa.child_exchange_mut() {
                    ex.peer_rekey = Some((our_spi, min_nonce));
                }
            } else if let Some(o) = sa.children.iter_mut().find(|c| c.inbound == old) {
                o.state = ChildState::Rekeyed;
            }
        }
        self.respond(spi, message_id, ExchangeType::CREATE_CHILD_SA, &inner);
        self.event(Event::PeerAlive { peer });
        Ok(())
    }

    /// The answer to our CREATE_CHILD_SA request (`payloads`: its inner payloads, or why they
    /// are unusable). It ends our exchange whatever it says.
    pub(crate) fn handle_create_child_response(
        &mut self,
        now: Timestamp,
        spi: IkeSpi,
        payloads: Result<Vec<Payload<'_>>, IkeError>,
    ) -> Result<(), IkeError> {
        let sa = self.sas.get_mut(&spi).ok_or(ErrorKind::Internal)?;
        let Some(RequestKind::CreateChild(ex)) = sa.take_request() else {
            return Err(ErrorKind::Internal.into());
        };
        let peer = sa.peer.ok_or(ErrorKind::Internal)?;
        // Whatever the answer, the old SA is no longer being rekeyed by this exchange (if the
        // peer's rekey of it succeeded, it is superseded).
        if let Some(old) = ex.rekey_of
            && let Some(o) = sa.children.iter_mut().find(|c| c.inbound == old)
            && o.state == ChildState::Rekeying
        {
            o.state = if ex.peer_rekey.is_some() {
                ChildState::Rekeyed
            } else {
                ChildState::Installed
            };
        }
        let result = payloads
            .map_err(|e| {
                IkeError::protocol(
                    e.kind,
                    Some(peer),
                    "CREATE_CHILD_SA: the answer does not parse or breaks the placement rules",
                )
            })
            .and_then(|p| self.child_answer(now, spi, peer, &ex, &p));
        self.run_tasks(now, spi);
        result
    }

    /// What the answer to our CREATE_CHILD_SA request says: a refusal, or the new CHILD SA.
    fn child_answer(
        &mut self,
        now: Timestamp,
        spi: IkeSpi,
        peer: PeerId,
        ex: &ChildExchange,
        payloads: &[Payload<'_>],
    ) -> Result<(), IkeError> {
        self.event(Event::PeerAlive { peer });
        let c = content(payloads);
        let error = payloads
            .iter()
            .filter_map(Payload::as_notify)
            .find(|n| n.ty.is_error())
            .map(|n| (n.ty, n.data.to_vec()));
        if let Some((ty, data)) = error {
            self.child_exchange_refused(now, spi, peer, ex, ty, &data);
            return Ok(());
        }
        let (Some(answer), Some(nr)) = (c.sa, c.nonce) else {
            return Err(ErrorKind::InvalidSyntax.into());
        };
        let misbehaved =
            |detail: &str| IkeError::protocol(ErrorKind::PeerMisbehaved, Some(peer), detail);
        let chosen = match proposal::select(&ex.proposals, &answer.proposals) {
            Ok(ch) if answer.proposals.len() == 1 => ch,
            _ => {
                return Err(misbehaved(
                    "CREATE_CHILD_SA: the responder chose an ESP proposal we did not offer",
                ));
            }
        };
        let g_ir = match (&ex.kx, c.ke) {
            (Some(kx), Some(ke)) if ke.method == kx.method() => kx.agree(&ke.data).ok(),
            _ => None,
        };
        if ex.kx.is_some() && g_ir.is_none() {
            return Err(misbehaved(
                "CREATE_CHILD_SA: the responder's KE is missing or invalid",
            ));
        }
        if !ts::within(&c.ts_i, &ex.local_ts) || !ts::within(&c.ts_r, &ex.remote_ts) {
            return Err(misbehaved(
                "CREATE_CHILD_SA: the responder returned selectors outside ours",
            ));
        }
        let peer_spi = esp_spi(&chosen.spi).ok_or(ErrorKind::InvalidSyntax)?;
        let tfc = find_notify(payloads, NotifyType::ESP_TFC_PADDING_NOT_SUPPORTED).is_none();
        let lifetime = self.peers.get(peer).and_then(|c| c.child_lifetime);
        let sa = self.sas.get(&spi).ok_or(ErrorKind::Internal)?;
        let mut child = self
            .child_sa(
                sa,
                peer,
                &chosen,
                ex.mode,
                (c.ts_i.clone(), c.ts_r.clone()),
                (ex.spi, peer_spi),
                tfc,
                ChildKdf {
                    g_ir: g_ir.as_ref().map(|s| s.expose()),
                    ni: &ex.ni,
                    nr,
                    we_initiated: true,
                },
            )
            .ok_or(ErrorKind::Internal)?;
        child.rekey_of = ex.rekey_of;
        let min_nonce = ex.ni.clone().min(nr.to_vec());
        self.record_child(now, spi, &child, lifetime);
        self.event(Event::InstallChildSa(child));
        if let Some(old) = ex.rekey_of {
            self.finish_rekey(spi, old, ex.spi, &min_nonce, ex.peer_rekey.as_ref());
        }
        Ok(())
    }

    /// Our rekey of `old` completed with the new SA `new`: decide, with a collision in
    /// mind, which SA we delete.
    fn finish_rekey(
        &mut self,
        spi: IkeSpi,
        old: InboundSpi,
        new: InboundSpi,
        our_min: &[u8],
        peer_rekey: Option<&(InboundSpi, Vec<u8>)>,
    ) {
        let Some(sa) = self.sas.get_mut(&spi) else {
            return;
        };
        if let Some(o) = sa.children.iter_mut().find(|c| c.inbound == old) {
            o.state = ChildState::Rekeyed;
        }
        let peer = sa.peer;
        if let (Some((_, peer_min)), Some(peer)) = (peer_rekey, peer) {
            let won = our_min >= peer_min.as_slice();
            self.event(Event::RekeyCollision {
                peer,
                ike: false,
                won,
            });
        }
        let Some(sa) = self.sas.get_mut(&spi) else {
            return;
        };
        let victim = match peer_rekey {
            // RFC 7296 §2.8.1: the SA created with the lowest nonce is deleted by the end
            // that created it. Ours lost: we delete our new one; the peer deletes the old.
            Some((_, peer_min)) if our_min < peer_min.as_slice() => new,
            // Ours won (or there was no collision): the old SA goes (unless the peer
            // already deleted it); the peer, if it also rekeyed, deletes its new one.
            _ if sa.children.iter().any(|c| c.inbound == old) => old,
            _ => return,
        };
        sa.tasks.push_front(Task::DeleteChild(victim));
    }

    /// The peer refused our CREATE_CHILD_SA with notify `ty`.
    fn child_exchange_refused(
        &mut self,
        now: Timestamp,
        spi: IkeSpi,
        peer: PeerId,
        ex: &ChildExchange,
        ty: NotifyType,
        data: &[u8],
    ) {
        match ty {
            NotifyType::TEMPORARY_FAILURE => {
                // Try again a little later (RFC 7296 §2.25).
                if let Some(sa) = self.sas.get_mut(&spi) {
                    let task = ex.rekey_of.map_or(Task::CreateChild, Task::RekeyChild);
                    sa.tasks.push_back(task);
                    sa.tasks_after = now + TEMPORARY_FAILURE_RETRY;
                }
            }
            NotifyType::CHILD_SA_NOT_FOUND => {
                // The peer no longer has the SA we wanted to rekey: drop it, and make a new
                // one unless another CHILD SA carries the traffic (e.g. the peer's rekey of
                // it, which crossed ours).
                if let Some(old) = ex.rekey_of {
                    self.forget_child(spi, old);
                    if let Some(sa) = self.sas.get_mut(&spi)
                        && !sa.children.iter().any(|c| c.state == ChildState::Installed)
                    {
                        sa.tasks.push_back(Task::CreateChild);
                    }
                }
            }
            NotifyType::INVALID_KE_PAYLOAD => {
                let wanted = <[u8; 2]>::try_from(data)
                    .ok()
                    .map(|b| KeMethod(u16::from_be_bytes(b)));
                let acceptable = wanted.filter(|m| {
                    self.peers
                        .get(peer)
                        .is_some_and(|c| c.esp_proposals.iter().any(|p| p.ke.contains(m)))
                });
                if let Some(m) = acceptable {
                    let _ = self.send_child_request(
                        now,
                        spi,
                        ex.rekey_of,
                        Some(m),
                        ex.mode,
                        ex.local_ts.clone(),
                        ex.remote_ts.clone(),
                    );
                } else {
                    self.fail(
                        Some(peer),
                        Failure::PeerRefused {
                            notify: ty,
                            exchange: ExchangeType::CREATE_CHILD_SA,
                            we_offered: describe_offer(&ex.proposals),
                        },
                    );
                }
            }
            _ => self.fail(
                Some(peer),
                Failure::PeerRefused {
                    notify: ty,
                    exchange: ExchangeType::CREATE_CHILD_SA,
                    we_offered: describe_offer(&ex.proposals),
                },
            ),
        }
    }
}

fn describe_offer(p: &[ProposalSpec]) -> String {
    format!(
        "ESP [{}]",
        p.iter()
            .map(|p| proposal::describe(&p.to_proposal(0, Vec::new())))
            .collect::<Vec<_>>()
            .join(", ")
    )
}
