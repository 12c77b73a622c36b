//! The CREATE_CHILD_SA exchange for CHILD SAs (RFC 7296 §1.3.1–§1.3.3): additional CHILD SAs
//! and CHILD SA rekeying with optional PFS, make-before-break, and the rekey collisions of
//! §2.8.1 (both ends rekey the same CHILD SA: the new SA holding the lowest of the four
//! nonces is deleted by the end that created it).
//!
//! Who deletes what after a rekey: the initiator of the winning exchange deletes the old SA;
//! the responder keeps the old SA (and sends on it) until that Delete arrives, then switches
//! to the new one, which it installed as a standby when it answered.

use meshsec_types::{IkeSpi, InboundSpi, OutboundSpi};
use std::borrow::Cow;
use std::time::Duration;

use meshsec_crypto::ke::KeyExchange;
use meshsec_crypto::sk::Opened;
use meshsec_wire::payload::{
    AddrSelector, KePayload, Notify, Payload, PayloadBody, SaPayload, find_notify,
};
use meshsec_wire::registry::{ExchangeType, KeMethod, NotifyType, ProtocolId};
use meshsec_wire::{parse_payloads, rules};

use crate::config::ChildMode;
use crate::endpoint::{ApiMisuse, Endpoint, NONCE_LEN};
use crate::event::{ChildSa, Event, Failure, PeerId};
use crate::ike_auth::{ChildKdf, notify, ts_payload};
use crate::proposal::{self, ProposalSpec};
use crate::sa::{Child, ChildState, State, Task, Timestamp};
use crate::ts;

use meshsec_types::timing::TEMPORARY_FAILURE_RETRY;

/// Our CREATE_CHILD_SA request in flight.
pub(crate) struct ChildExchange {
    /// The CHILD SA it rekeys (our inbound SPI), if a rekey.
    pub(crate) rekey_of: Option<InboundSpi>,
    /// Our inbound SPI for the new SA.
    pub(crate) spi: InboundSpi,
    pub(crate) ni: Vec<u8>,
    pub(crate) kx: Option<KeyExchange>,
    pub(crate) proposals: Vec<ProposalSpec>,
    pub(crate) local_ts: Vec<AddrSelector>,
    pub(crate) remote_ts: Vec<AddrSelector>,
    pub(crate) mode: ChildMode,
    /// The peer rekeyed the same SA while this exchange was in flight (a collision): the
    /// CHILD SA its exchange created (our inbound SPI) and that exchange's smallest nonce.
    /// Kept here, not on the old SA, because the peer may delete the old SA before our
    /// answer arrives.
    pub(crate) peer_rekey: Option<(InboundSpi, Vec<u8>)>,
}

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

/// The soft (rekey) and hard times of a CHILD SA created `now` with `lifetime`: the rekey
/// falls between 80 % and 90 % of it, at random (`jitter` in 0..=255).
pub(crate) fn child_times(
    now: Timestamp,
    lifetime: Option<Duration>,
    jitter: u8,
) -> (Option<Timestamp>, Option<Timestamp>) {
    match lifetime {
        None => (None, None),
        Some(l) => {
            let soft = l.mul_f64(0.8 + 0.1 * f64::from(jitter) / 255.0);
            (Some(now + soft), Some(now + l))
        }
    }
}

impl Endpoint {
    /// The established IKE SA with `peer` (our SPI) — the newest if several.
    pub(crate) fn established_sa(&self, peer: PeerId) -> Option<IkeSpi> {
        self.sas
            .iter()
            .filter(|(_, sa)| {
                sa.peer == Some(peer) && sa.state == State::Established && !sa.rekeyed
            })
            .max_by_key(|(_, sa)| sa.established_at)
            .map(|(spi, _)| *spi)
    }

    /// Queues `task` on IKE SA `spi` and starts it if the request window is free.
    pub(crate) fn queue_task(&mut self, now: Timestamp, spi: IkeSpi, task: Task) -> bool {
        let Some(sa) = self.sas.get_mut(&spi) else {
            return false;
        };
        if !sa.tasks.contains(&task) {
            sa.tasks.push_back(task);
        }
        self.run_tasks(now, spi);
        true
    }

    /// Starts the next queued exchange of IKE SA `spi` while the window is free.
    pub(crate) fn run_tasks(&mut self, now: Timestamp, spi: IkeSpi) {
        loop {
            let Some(sa) = self.sas.get_mut(&spi) else {
                return;
            };
            if sa.pending.is_some() || sa.state != State::Established || now < sa.tasks_after {
                return;
            }
            let Some(task) = sa.tasks.pop_front() else {
                return;
            };
            let started = match task {
                Task::RekeyChild(inbound) => self.start_child_exchange(now, spi, Some(inbound)),
                Task::CreateChild => self.start_child_exchange(now, spi, None),
                Task::DeleteChild(inbound) => self.start_delete_child(now, spi, inbound),
                Task::Liveness => self.start_liveness(now, spi),
                Task::DeleteIke => self.start_delete_ike(now, spi),
                Task::InvalidSpi(esp) => self.start_invalid_spi(now, spi, esp),
                Task::RekeyIke => self.start_ike_rekey(now, spi),
                Task::Reauthenticate => self.start_reauth(now, spi),
            };
            if started {
                return;
            }
        }
    }

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
    fn start_child_exchange(
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
        if !self.send_request_message(now, spi, ExchangeType::CREATE_CHILD_SA, &inner) {
            return false;
        }
        let Some(sa) = self.sas.get_mut(&spi) else {
            return false;
        };
        if let Some(old) = rekey_of
            && let Some(c) = sa.children.iter_mut().find(|c| c.inbound == old)
        {
            c.state = ChildState::Rekeying;
        }
        sa.child_exchange = Some(ChildExchange {
            rekey_of,
            spi: new_spi,
            ni,
            kx,
            proposals,
            local_ts,
            remote_ts,
            mode,
            peer_rekey: None,
        });
        true
    }

    /// Answers a CREATE_CHILD_SA request with only a Notify.
    fn answer_child_notify(&mut self, spi: IkeSpi, message_id: u32, n: Notify<'static>) {
        let inner = [Payload::new(PayloadBody::Notify(n))];
        self.respond(spi, message_id, ExchangeType::CREATE_CHILD_SA, &inner);
    }

    /// Seals and sends a response, caching it for retransmitted requests.
    pub(crate) fn respond(
        &mut self,
        spi: IkeSpi,
        message_id: u32,
        exchange: ExchangeType,
        inner: &[Payload<'_>],
    ) {
        let Some(bytes) = self.seal_message(spi, exchange, true, message_id, inner) else {
            return;
        };
        let Some(sa) = self.sas.get_mut(&spi) else {
            return;
        };
        sa.expected_request_id = message_id.wrapping_add(1);
        sa.last_response = Some((message_id, bytes.clone()));
        let (local, remote) = (sa.local, sa.remote);
        self.transmit_all(local, remote, bytes);
    }

    /// The peer's CREATE_CHILD_SA request.
    pub(crate) fn handle_create_child_request(
        &mut self,
        now: Timestamp,
        spi: IkeSpi,
        opened: Opened,
    ) {
        let Some(sa) = self.sas.get(&spi) else { return };
        let message_id = sa.expected_request_id;
        let Some(peer) = sa.peer else { return };
        let Some(cfg) = self.peers.get(peer).cloned() else {
            return;
        };
        let Ok(payloads) = parse_payloads(opened.first_inner, &opened.plaintext) else {
            self.answer_child_notify(
                spi,
                message_id,
                Notify::new(NotifyType::INVALID_SYNTAX, Vec::new()),
            );
            return;
        };
        if rules::check_inner(ExchangeType::CREATE_CHILD_SA, false, &payloads).is_err() {
            self.answer_child_notify(
                spi,
                message_id,
                Notify::new(NotifyType::INVALID_SYNTAX, Vec::new()),
            );
            return;
        }
        let c = content(&payloads);
        let (Some(offer), Some(ni)) = (c.sa, c.nonce) else {
            return;
        };
        if offer
            .proposals
            .iter()
            .any(|p| p.protocol == ProtocolId::IKE)
        {
            self.handle_ike_rekey_request(now, spi, message_id, &payloads);
            return;
        }
        if sa.rekeyed {
            // Its CHILD SAs moved to the new IKE SA; the peer asks again there.
            self.answer_child_notify(
                spi,
                message_id,
                Notify::new(NotifyType::TEMPORARY_FAILURE, Vec::new()),
            );
            return;
        }
        // A rekey names the SA by the SPI the peer receives on: our outbound.
        let mut rekey_of = None;
        if let Some(peer_inbound) = c.rekey_spi {
            let found = sa.children.iter().find(|ch| ch.outbound == peer_inbound);
            match found.map(|ch| (ch.inbound, ch.state)) {
                // Unknown, but our own CREATE_CHILD_SA is in flight: the SA may be the one
                // it creates (our answer was lost or is late). Not "not found" yet.
                None if sa.child_exchange.is_some() => {
                    self.answer_child_notify(
                        spi,
                        message_id,
                        Notify::new(NotifyType::TEMPORARY_FAILURE, Vec::new()),
                    );
                    return;
                }
                None => {
                    let mut n = Notify::new(NotifyType::CHILD_SA_NOT_FOUND, Vec::new());
                    n.protocol = ProtocolId::ESP;
                    n.spi = Cow::Owned(peer_inbound.to_be_bytes().to_vec());
                    self.answer_child_notify(spi, message_id, n);
                    return;
                }
                // We already replaced it or are deleting it: the peer retries later and by
                // then finds it gone (RFC 7296 §2.25).
                Some((_, ChildState::Rekeyed | ChildState::Deleting)) => {
                    self.answer_child_notify(
                        spi,
                        message_id,
                        Notify::new(NotifyType::TEMPORARY_FAILURE, Vec::new()),
                    );
                    return;
                }
                Some((inbound, _)) => rekey_of = Some(inbound),
            }
        }
        let mode = if find_notify(&payloads, NotifyType::USE_TRANSPORT_MODE).is_some() {
            ChildMode::Transport
        } else {
            ChildMode::Tunnel
        };
        if mode != cfg.mode {
            self.answer_child_notify(
                spi,
                message_id,
                Notify::new(NotifyType::NO_PROPOSAL_CHOSEN, Vec::new()),
            );
            self.fail(Some(peer), Failure::ModeMismatch { ours: cfg.mode });
            return;
        }
        // Our proposals with PFS as configured; without a KE the peer gets the group-less ones.
        let ours: Vec<ProposalSpec> = if c.ke.is_some() {
            cfg.esp_proposals.clone()
        } else {
            cfg.esp_proposals
                .iter()
                .map(ProposalSpec::without_ke)
                .collect()
        };
        let chosen = match proposal::select(&ours, &offer.proposals) {
            Ok(ch) => ch,
            Err(e) => {
                self.answer_child_notify(
                    spi,
                    message_id,
                    Notify::new(NotifyType::NO_PROPOSAL_CHOSEN, Vec::new()),
                );
                self.fail(Some(peer), Failure::NoProposalChosen(e));
                return;
            }
        };
        let g_ir = match (chosen.ke, c.ke) {
            (Some(m), Some(ke)) if ke.method == m => {
                let Ok(kx) = self.key_exchange(m) else { return };
                match kx.agree(&ke.data) {
                    Ok(secret) => Some((kx, secret)),
                    Err(_) => {
                        self.answer_child_notify(
                            spi,
                            message_id,
                            Notify::new(NotifyType::INVALID_SYNTAX, Vec::new()),
                        );
                        return;
                    }
                }
            }
            (Some(m), _) => {
                let n = Notify::new(NotifyType::INVALID_KE_PAYLOAD, m.0.to_be_bytes().to_vec());
                self.answer_child_notify(spi, message_id, n);
                return;
            }
            (None, _) => None,
        };
        let (ts_i, ts_r) = match ts::respond(&c.ts_i, &c.ts_r, &cfg.remote_ts, &cfg.local_ts) {
            Ok(t) => t,
            Err(e) => {
                self.answer_child_notify(
                    spi,
                    message_id,
                    Notify::new(NotifyType::TS_UNACCEPTABLE, Vec::new()),
                );
                self.fail(Some(peer), Failure::TsUnacceptable(e));
                return;
            }
        };
        let Ok(peer_spi) = <[u8; 4]>::try_from(chosen.spi.as_slice())
            .map(|b| OutboundSpi::new(u32::from_be_bytes(b)))
        else {
            return;
        };
        let (Ok(our_spi), Ok(nr)) = (self.new_esp_spi(), self.random_bytes(NONCE_LEN)) else {
            return;
        };
        let tfc = find_notify(&payloads, NotifyType::ESP_TFC_PADDING_NOT_SUPPORTED).is_none();
        let Some(sa) = self.sas.get(&spi) else { return };
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
            return;
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
            && let Some(o) = sa.children.iter_mut().find(|c| c.inbound == old)
        {
            match (o.state, sa.child_exchange.as_mut()) {
                // A collision: resolved when our own exchange completes.
                (ChildState::Rekeying, Some(ex)) if ex.rekey_of == Some(old) => {
                    ex.peer_rekey = Some((our_spi, min_nonce));
                }
                _ => o.state = ChildState::Rekeyed,
            }
        }
        self.respond(spi, message_id, ExchangeType::CREATE_CHILD_SA, &inner);
        self.event(Event::PeerAlive { peer });
    }

    /// Adds a CHILD SA to IKE SA `spi`'s list, with its lifetimes.
    pub(crate) fn record_child(
        &mut self,
        now: Timestamp,
        spi: IkeSpi,
        child: &ChildSa,
        lifetime: Option<Duration>,
    ) {
        let jitter = self
            .random_bytes(1)
            .ok()
            .and_then(|b| b.first().copied())
            .unwrap_or(128);
        let (rekey_at, expire_at) = child_times(now, lifetime, jitter);
        // A CHILD SA completed on an IKE SA that was rekeyed meanwhile lives on its successor.
        let spi = self
            .sas
            .get(&spi)
            .and_then(|sa| sa.successor)
            .unwrap_or(spi);
        if let Some(sa) = self.sas.get_mut(&spi) {
            sa.children.push(Child {
                inbound: child.inbound.spi,
                outbound: child.outbound.spi,
                mode: child.mode,
                local_ts: child.local_ts.clone(),
                remote_ts: child.remote_ts.clone(),
                rekey_at,
                expire_at,
                state: ChildState::Installed,
            });
        }
    }

    /// The answer to our CREATE_CHILD_SA request.
    pub(crate) fn handle_create_child_response(
        &mut self,
        now: Timestamp,
        spi: IkeSpi,
        opened: Opened,
    ) {
        let Some(sa) = self.sas.get_mut(&spi) else {
            return;
        };
        sa.pending = None;
        sa.next_request_id = sa.next_request_id.wrapping_add(1);
        let Some(ex) = sa.child_exchange.take() else {
            return;
        };
        let Some(peer) = sa.peer else { return };
        // Whatever happens below, the old SA is no longer being rekeyed by this exchange
        // (if the peer's rekey of it succeeded, it is superseded).
        let peer_rekeyed = ex.peer_rekey.is_some();
        let restore_old = |this: &mut Endpoint| {
            if let Some(old) = ex.rekey_of
                && let Some(sa) = this.sas.get_mut(&spi)
                && let Some(o) = sa.children.iter_mut().find(|c| c.inbound == old)
                && o.state == ChildState::Rekeying
            {
                o.state = if peer_rekeyed {
                    ChildState::Rekeyed
                } else {
                    ChildState::Installed
                };
            }
        };
        let Ok(payloads) = parse_payloads(opened.first_inner, &opened.plaintext) else {
            restore_old(self);
            self.run_tasks(now, spi);
            return;
        };
        self.event(Event::PeerAlive { peer });
        let c = content(&payloads);
        let error = payloads
            .iter()
            .filter_map(Payload::as_notify)
            .find(|n| n.ty.is_error())
            .map(|n| (n.ty, n.data.to_vec()));
        if let Some((ty, data)) = error {
            restore_old(self);
            self.child_exchange_refused(now, spi, peer, &ex, ty, &data);
            self.run_tasks(now, spi);
            return;
        }
        let (Some(answer), Some(nr)) = (c.sa, c.nonce) else {
            restore_old(self);
            self.run_tasks(now, spi);
            return;
        };
        let chosen = match proposal::select(&ex.proposals, &answer.proposals) {
            Ok(ch) if answer.proposals.len() == 1 => ch,
            _ => {
                restore_old(self);
                self.fail(
                    Some(peer),
                    Failure::Protocol {
                        detail:
                            "CREATE_CHILD_SA: the responder chose an ESP proposal we did not offer"
                                .into(),
                    },
                );
                self.run_tasks(now, spi);
                return;
            }
        };
        let g_ir = match (&ex.kx, c.ke) {
            (Some(kx), Some(ke)) if ke.method == kx.method() => kx.agree(&ke.data).ok(),
            _ => None,
        };
        if ex.kx.is_some() && g_ir.is_none() {
            restore_old(self);
            self.fail(
                Some(peer),
                Failure::Protocol {
                    detail: "CREATE_CHILD_SA: the responder's KE is missing or invalid".into(),
                },
            );
            self.run_tasks(now, spi);
            return;
        }
        if !ts::within(&c.ts_i, &ex.local_ts) || !ts::within(&c.ts_r, &ex.remote_ts) {
            restore_old(self);
            self.fail(
                Some(peer),
                Failure::Protocol {
                    detail: "CREATE_CHILD_SA: the responder returned selectors outside ours".into(),
                },
            );
            self.run_tasks(now, spi);
            return;
        }
        let Ok(peer_spi) = <[u8; 4]>::try_from(chosen.spi.as_slice())
            .map(|b| OutboundSpi::new(u32::from_be_bytes(b)))
        else {
            restore_old(self);
            self.run_tasks(now, spi);
            return;
        };
        let tfc = find_notify(&payloads, NotifyType::ESP_TFC_PADDING_NOT_SUPPORTED).is_none();
        let lifetime = self.peers.get(peer).and_then(|c| c.child_lifetime);
        let Some(sa) = self.sas.get(&spi) else { return };
        let Some(mut child) = self.child_sa(
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
        ) else {
            restore_old(self);
            self.run_tasks(now, spi);
            return;
        };
        child.rekey_of = ex.rekey_of;
        let min_nonce = ex.ni.clone().min(nr.to_vec());
        self.record_child(now, spi, &child, lifetime);
        self.event(Event::InstallChildSa(child));
        if let Some(old) = ex.rekey_of {
            self.finish_rekey(spi, old, ex.spi, &min_nonce, ex.peer_rekey.as_ref());
        }
        self.run_tasks(now, spi);
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

    /// Removes a CHILD SA from IKE SA `spi` without telling the peer, and tells the data
    /// plane.
    pub(crate) fn forget_child(&mut self, spi: IkeSpi, inbound: InboundSpi) {
        // After an IKE SA rekey the CHILD SA lives on the successor.
        let spi = match self.sas.get(&spi) {
            Some(sa) if !sa.children.iter().any(|c| c.inbound == inbound) => {
                sa.successor.unwrap_or(spi)
            }
            _ => spi,
        };
        let Some(sa) = self.sas.get_mut(&spi) else {
            return;
        };
        let Some(i) = sa.children.iter().position(|c| c.inbound == inbound) else {
            return;
        };
        let c = sa.children.remove(i);
        let Some(peer) = sa.peer else { return };
        self.event(Event::DeleteChildSa {
            peer,
            inbound_spi: c.inbound,
            outbound_spi: c.outbound,
        });
    }

    /// Lifetimes of the CHILD SAs of every established IKE SA: rekeys due, and SAs past
    /// their hard lifetime (rekeying failed) deleted — replaced if it was the last one.
    pub(crate) fn child_timers(&mut self, now: Timestamp) {
        let mut work = Vec::new();
        for (spi, sa) in &self.sas {
            if sa.state != State::Established {
                continue;
            }
            for c in &sa.children {
                if c.expire_at.is_some_and(|t| t <= now) && c.state != ChildState::Deleting {
                    work.push((*spi, Task::DeleteChild(c.inbound)));
                } else if c.rekey_at.is_some_and(|t| t <= now)
                    && c.state == ChildState::Installed
                    && !sa.rekeyed
                {
                    // (The CHILD SAs of a reauthenticated IKE SA go with it: not rekeyed.)
                    work.push((*spi, Task::RekeyChild(c.inbound)));
                }
            }
        }
        for (spi, task) in work {
            if let Some(sa) = self.sas.get_mut(&spi) {
                if let Task::RekeyChild(i) = task
                    && let Some(c) = sa.children.iter_mut().find(|c| c.inbound == i)
                {
                    c.rekey_at = None; // queued once
                }
                if let Task::DeleteChild(i) = task {
                    if let Some(c) = sa.children.iter_mut().find(|c| c.inbound == i) {
                        c.expire_at = None;
                    }
                    let last = sa
                        .children
                        .iter()
                        .filter(|c| c.state == ChildState::Installed)
                        .count()
                        <= 1;
                    if last {
                        sa.tasks.push_back(Task::CreateChild);
                    }
                }
                if !sa.tasks.contains(&task) {
                    sa.tasks.push_back(task);
                }
            }
        }
        let spis: Vec<IkeSpi> = self.sas.keys().copied().collect();
        for spi in spis {
            self.run_tasks(now, spi);
        }
    }

    /// The earliest CHILD SA lifetime event, IKE SA rekey or reauthentication, or delayed
    /// task.
    pub(crate) fn child_deadline(&self) -> Option<Timestamp> {
        self.sas
            .values()
            .filter(|sa| sa.state == State::Established)
            .flat_map(|sa| {
                let delayed =
                    (!sa.tasks.is_empty() && sa.pending.is_none()).then_some(sa.tasks_after);
                // (Only deadlines that handle_timeout acts on: a past one it ignores would
                // make the caller spin.)
                let ike_rekey = if sa.rekeyed {
                    (sa.pending.is_none() && !sa.tasks.contains(&Task::DeleteIke))
                        .then(|| sa.rekeyed_at + crate::rekey_ike::REPLACED_GRACE)
                } else {
                    sa.rekey_at
                };
                sa.children
                    .iter()
                    .flat_map(|c| {
                        [
                            c.rekey_at
                                .filter(|_| c.state == ChildState::Installed && !sa.rekeyed),
                            c.expire_at,
                        ]
                    })
                    .chain([delayed, ike_rekey, Endpoint::reauth_deadline(sa)])
                    .flatten()
                    .collect::<Vec<_>>()
            })
            .min()
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
