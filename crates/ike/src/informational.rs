//! The INFORMATIONAL exchange (RFC 7296 §1.4): empty requests as liveness checks, Delete of
//! the IKE SA or of CHILD SAs, and error notifications — on an established IKE SA.

use meshsec_types::{IkeSpi, InboundSpi, OutboundSpi};
use meshsec_wire::payload::{Delete, Payload, PayloadBody};
use meshsec_wire::registry::{ExchangeType, NotifyType, ProtocolId};

use crate::endpoint::{ApiMisuse, Endpoint};
use crate::error::{ErrorKind, IkeError};
use crate::event::{Event, Failure, PeerId};
use crate::request::{ClosedAnswer, InfoPurpose, RequestKind, RequestPrint};
use crate::sa::{ChildState, Life, Task, Timestamp};
use meshsec_types::timing::{DELETE_ANSWER_DELAY, DUPLICATE_DELETE_RETRY};

/// Answers held back at once at most; beyond it they go out at once (a peer cannot make us
/// hold more than one per IKE SA anyway: its requests wait for our answers).
const MAX_HELD_ANSWERS: usize = 1024;

/// How long the answer to a Delete that closed an IKE SA is kept for the peer's
/// retransmissions of that Delete (RFC 7296 §2.1: the responder answers a retransmitted
/// request from its cache): if the answer is lost, the peer would otherwise retransmit into
/// the void until it gives up — holding its copy of the SA, a duplicate, all that time.
/// Longer than our own retransmission schedule and most of strongSwan's default one.
const CLOSED_ANSWER_KEPT: core::time::Duration = core::time::Duration::from_secs(60);

/// Answers to closing Deletes kept at once at most (the oldest goes first).
const MAX_CLOSED_ANSWERS: usize = 256;

impl Endpoint {
    /// Sends an INFORMATIONAL request with `inner` on SA `spi`, unless one of ours is still
    /// outstanding (window size 1).
    pub(crate) fn send_informational(
        &mut self,
        now: Timestamp,
        spi: IkeSpi,
        inner: &[Payload<'_>],
        purpose: InfoPurpose,
    ) -> bool {
        if self.sas.get(&spi).is_none_or(|sa| sa.outstanding.is_some()) {
            return false;
        }
        let kind = RequestKind::Informational(purpose);
        self.send_request_message(now, spi, ExchangeType::INFORMATIONAL, inner, kind)
    }

    pub(crate) fn start_liveness(&mut self, now: Timestamp, spi: IkeSpi) -> bool {
        self.nudge_survivor(now, spi);
        self.send_informational(now, spi, &[], InfoPurpose::Liveness)
    }

    pub(crate) fn start_delete_ike(&mut self, now: Timestamp, spi: IkeSpi) -> bool {
        let delete = Payload::new(PayloadBody::Delete(Delete::ike()));
        let sent = self.send_informational(now, spi, &[delete], InfoPurpose::DeleteIkeSa);
        if let Some(sa) = self
            .sas
            .get_mut(&spi)
            .filter(|sa| sent && sa.is_start_duplicate())
            && let Some(p) = sa.outstanding.as_mut()
        {
            // A duplicate holds nothing: its Delete goes again soon if unanswered (and
            // gives up soon, see `Endpoint::handle_timeout`).
            p.next_at = now + DUPLICATE_DELETE_RETRY;
        }
        // The CHILD SAs of a replaced SA (reauthenticated, or a duplicate) stop sealing now:
        // their replacements take over, and the peer drops whatever arrives on the old ones
        // after our Delete.
        let retired: Vec<(PeerId, OutboundSpi)> = match self.sas.get(&spi) {
            Some(sa) if sent && sa.is_replaced() => sa
                .peer
                .map(|p| {
                    sa.children
                        .iter()
                        .filter(|c| c.state != ChildState::Deleting)
                        .map(|c| (p, c.outbound))
                        .collect()
                })
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        for (peer, outbound_spi) in retired {
            self.event(Event::OutboundRetired { peer, outbound_spi });
        }
        sent
    }

    /// Sends the Delete of CHILD SA `inbound` (false if it is gone already).
    pub(crate) fn start_delete_child(
        &mut self,
        now: Timestamp,
        spi: IkeSpi,
        inbound: InboundSpi,
    ) -> bool {
        let Some(sa) = self.sas.get_mut(&spi) else {
            return false;
        };
        let Some(c) = sa.children.iter_mut().find(|c| c.inbound == inbound) else {
            return false;
        };
        c.state = ChildState::Deleting;
        let outbound_spi = c.outbound;
        let peer = sa.peer;
        let delete = Payload::new(PayloadBody::Delete(Delete::esp(&[inbound.get()])));
        let sent =
            self.send_informational(now, spi, &[delete], InfoPurpose::DeleteChildSa(inbound));
        if sent && let Some(peer) = peer {
            self.event(Event::OutboundRetired { peer, outbound_spi });
        }
        sent
    }

    /// Sends an empty INFORMATIONAL request to `peer` (now, or after the exchange in
    /// flight); the answer raises [`Event::PeerAlive`], silence ends in a timeout that
    /// deletes the IKE SA. Returns false if there is no established IKE SA.
    pub fn check_liveness(&mut self, now: Timestamp, peer: PeerId) -> Result<bool, ApiMisuse> {
        self.peers.get(peer).ok_or(ApiMisuse::UnknownPeer(peer))?;
        let Some(spi) = self.established_sa(peer) else {
            return Ok(false);
        };
        Ok(self.queue_task(now, spi, Task::Liveness))
    }

    /// Deletes the IKE SA with `peer` (and its CHILD SAs): tells the peer, then removes it
    /// when the peer answers or the request times out.
    pub fn delete_ike_sa(&mut self, now: Timestamp, peer: PeerId) -> Result<bool, ApiMisuse> {
        self.peers.get(peer).ok_or(ApiMisuse::UnknownPeer(peer))?;
        let Some(spi) = self.established_sa(peer) else {
            return Ok(false);
        };
        // Nothing queued matters any more.
        let reauth = self.sas.get_mut(&spi).and_then(|sa| {
            sa.tasks.clear();
            sa.tasks_after = Timestamp::ZERO;
            match sa.life {
                Life::Reauthenticating { by } => {
                    sa.life = Life::Active;
                    Some(by)
                }
                _ => None,
            }
        });
        // A reauthentication under way is deleted too, as soon as it is up (the peer may
        // already have it).
        if let Some(new) = reauth.and_then(|n| self.sas.get_mut(&n)) {
            new.reauth.of = None;
            new.tasks.clear();
            new.tasks.push_back(Task::DeleteIke);
        }
        Ok(self.queue_task(now, spi, Task::DeleteIke))
    }

    /// Drops every established IKE SA with `peer` (and their CHILD SAs) without a word to
    /// the peer: for a peer declared dead (its DPD went unanswered), which would not answer a
    /// Delete either. Returns whether there was one.
    pub fn drop_ike_sa(&mut self, peer: PeerId, reason: &'static str) -> Result<bool, ApiMisuse> {
        self.peers.get(peer).ok_or(ApiMisuse::UnknownPeer(peer))?;
        let spis: Vec<IkeSpi> = self
            .sas
            .iter()
            .filter(|(_, sa)| sa.peer == Some(peer) && sa.state == crate::sa::State::Established)
            .map(|(s, _)| *s)
            .collect();
        for spi in &spis {
            self.close_sa(*spi, reason);
        }
        Ok(!spis.is_empty())
    }

    /// Deletes the newest CHILD SA with `peer` (keeping the IKE SA): tells the peer, then
    /// removes it when the peer answers.
    pub fn delete_child_sa(&mut self, now: Timestamp, peer: PeerId) -> Result<bool, ApiMisuse> {
        self.peers.get(peer).ok_or(ApiMisuse::UnknownPeer(peer))?;
        let Some(spi) = self.established_sa(peer) else {
            return Ok(false);
        };
        let Some(inbound) = self.sas.get(&spi).and_then(|sa| {
            sa.children
                .iter()
                .rev()
                .find(|c| c.state != ChildState::Deleting)
                .map(|c| c.inbound)
        }) else {
            return Ok(false);
        };
        Ok(self.queue_task(now, spi, Task::DeleteChild(inbound)))
    }

    /// Removes an IKE SA and tells the data plane to drop its CHILD SA.
    pub(crate) fn close_sa(&mut self, spi: IkeSpi, reason: &'static str) {
        let Some(sa) = self.remove_sa(spi) else {
            return;
        };
        let Some(peer) = sa.peer else { return };
        for c in &sa.children {
            self.event(Event::DeleteChildSa {
                peer,
                inbound_spi: c.inbound,
                outbound_spi: c.outbound,
            });
        }
        self.event(Event::IkeSaDeleted {
            peer,
            local_spi: spi,
            reason,
        });
    }

    /// Keeps IKE SA `spi`'s last answer (to the Delete that closes it), see
    /// [`CLOSED_ANSWER_KEPT`].
    pub(crate) fn keep_closing_answer(&mut self, now: Timestamp, spi: IkeSpi) {
        let Some(sa) = self.sas.get_mut(&spi) else {
            return;
        };
        let Some(answer) = sa.last_response.take() else {
            return;
        };
        self.closed_answers
            .retain(|c| c.until > now && c.spi != spi);
        if self.closed_answers.len() >= MAX_CLOSED_ANSWERS {
            self.closed_answers.pop_front();
        }
        self.closed_answers.push_back(ClosedAnswer {
            spi,
            until: now + CLOSED_ANSWER_KEPT,
            answer,
        });
    }

    /// The kept answer (see [`CLOSED_ANSWER_KEPT`]) to request `message_id` on IKE SA `spi`,
    /// which we no longer have.
    pub(crate) fn closed_answer(
        &mut self,
        now: Timestamp,
        spi: IkeSpi,
        message_id: u32,
    ) -> Option<&mut ClosedAnswer> {
        self.closed_answers
            .iter_mut()
            .find(|c| c.spi == spi && c.until > now && c.answer.message_id == message_id)
    }

    /// A request on IKE SA `spi`, which we do not have: if it is a retransmission of the
    /// Delete that closed it, our answer again (at most every `RESEND_INTERVAL`).
    pub(crate) fn answer_closed(
        &mut self,
        now: Timestamp,
        spi: IkeSpi,
        message_id: u32,
        request: RequestPrint,
    ) -> Result<(), IkeError> {
        let closed = self
            .closed_answer(now, spi, message_id)
            .ok_or(ErrorKind::UnknownSpi)?;
        let response = closed.answer.resend(now, request)?;
        self.send_again(request, response)
    }

    /// Holds the datagrams queued since the first `queued` ones back until `until` (see
    /// [`DELETE_ANSWER_DELAY`]).
    fn hold_back(&mut self, queued: usize, until: Timestamp) {
        if self.held.len() >= MAX_HELD_ANSWERS {
            return;
        }
        for t in self.transmits.split_off(queued.min(self.transmits.len())) {
            self.held.push_back((until, t));
        }
    }

    /// Why IKE SA `spi` is deleted: it was replaced (by a rekey or a reauthentication), or
    /// `otherwise`.
    fn deleted_reason(&self, spi: IkeSpi, otherwise: &'static str) -> &'static str {
        match self.sas.get(&spi) {
            Some(sa) if sa.is_start_duplicate() => {
                "duplicate from simultaneous initiation (lowest nonce loses)"
            }
            Some(sa) if sa.is_duplicate() => {
                "duplicate from crossed reauthentications (lowest nonce loses)"
            }
            Some(sa) if sa.is_replaced() && sa.replaced_by().is_some() => {
                "replaced by a reauthenticated IKE SA"
            }
            Some(sa) if sa.is_replaced() => "replaced by a rekeyed IKE SA",
            _ => otherwise,
        }
    }

    /// An INFORMATIONAL request from the peer.
    pub(crate) fn handle_informational_request(
        &mut self,
        now: Timestamp,
        spi: IkeSpi,
        payloads: &[Payload<'_>],
    ) -> Result<(), IkeError> {
        let sa = self.sas.get(&spi).ok_or(ErrorKind::Internal)?;
        let (message_id, peer) = (sa.expected_request_id, sa.peer);
        let children: Vec<(OutboundSpi, InboundSpi)> = sa
            .children
            .iter()
            .map(|c| (c.outbound, c.inbound))
            .collect();
        let mut delete_ike = false;
        let mut deleted = Vec::new();
        let mut invalid_spi = Vec::new();
        for p in payloads {
            match &p.body {
                PayloadBody::Delete(d) if d.protocol == ProtocolId::IKE => delete_ike = true,
                PayloadBody::Delete(d) if d.protocol == ProtocolId::ESP => {
                    // The peer names its inbound SPIs: our outbound ones.
                    for s in d.spis_u32().map(OutboundSpi::new) {
                        if let Some((_, inbound)) = children.iter().find(|(o, _)| *o == s) {
                            deleted.push(*inbound);
                        }
                    }
                }
                PayloadBody::Notify(n) if n.ty == NotifyType::INVALID_SPI => {
                    invalid_spi.push(n.data.to_vec());
                }
                PayloadBody::Notify(n) if n.ty.is_known_error() => {
                    self.fail(
                        peer,
                        Failure::PeerRefused {
                            notify: n.ty,
                            exchange: ExchangeType::INFORMATIONAL,
                            we_offered: "nothing (the peer reported an error on its own)".into(),
                        },
                    );
                }
                _ => {}
            }
        }
        let inner = if delete_ike || deleted.is_empty() {
            Vec::new()
        } else {
            {
                let spis: Vec<u32> = deleted.iter().map(|s| s.get()).collect();
                vec![Payload::new(PayloadBody::Delete(Delete::esp(&spis)))]
            }
        };
        let queued = self.transmits.len();
        self.respond(spi, message_id, ExchangeType::INFORMATIONAL, &inner);
        let removes_children = if delete_ike {
            !children.is_empty()
        } else {
            !deleted.is_empty()
        };
        if removes_children {
            self.hold_back(queued, now + DELETE_ANSWER_DELAY);
        }
        if let Some(peer) = peer {
            self.event(Event::PeerAlive { peer });
        }
        if delete_ike {
            // Our IKE rekey crossed the peer's and the peer deletes the old SA first: the
            // peer's new SA won, the CHILD SAs live there (our own attempt dies with this SA).
            let theirs = self
                .sas
                .get(&spi)
                .and_then(|sa| sa.ike_exchange())
                .and_then(|ex| ex.peer_rekey.as_ref())
                .map(|p| p.0);
            if let Some(theirs) = theirs {
                self.move_children(now, spi, theirs);
            }
            self.keep_closing_answer(now, spi);
            let reason = self.deleted_reason(spi, "deleted by the peer");
            self.close_sa(spi, reason);
        } else {
            for inbound in deleted {
                self.forget_child(spi, inbound);
            }
            for data in invalid_spi {
                self.peer_reported_invalid_spi(now, spi, &data);
            }
            self.run_tasks(now, spi);
        }
        Ok(())
    }

    /// The (already authenticated) answer to our INFORMATIONAL request.
    pub(crate) fn handle_informational_response(
        &mut self,
        now: Timestamp,
        spi: IkeSpi,
        refusal: Option<NotifyType>,
    ) {
        let Some(sa) = self.sas.get_mut(&spi) else {
            return;
        };
        let purpose = match sa.take_request() {
            Some(RequestKind::Informational(p)) => Some(p),
            _ => None,
        };
        let peer = sa.peer;
        if let Some(peer) = peer {
            self.event(Event::PeerAlive { peer });
        }
        // The peer answered, with an error about our request (e.g. it could not parse it):
        // said, as any refusal. The exchange is over all the same.
        if let Some(notify) = refusal {
            self.fail(
                peer,
                Failure::PeerRefused {
                    notify,
                    exchange: ExchangeType::INFORMATIONAL,
                    we_offered: match purpose {
                        Some(InfoPurpose::Liveness) | None => "a liveness check or notification",
                        Some(InfoPurpose::DeleteIkeSa) => "the Delete of the IKE SA",
                        Some(InfoPurpose::DeleteChildSa(_)) => "the Delete of a CHILD SA",
                    }
                    .into(),
                },
            );
        }
        match purpose {
            Some(InfoPurpose::DeleteIkeSa) => {
                let reason = self.deleted_reason(spi, "deleted by us");
                self.close_sa(spi, reason);
            }
            Some(InfoPurpose::DeleteChildSa(inbound)) => {
                self.forget_child(spi, inbound);
                self.run_tasks(now, spi);
            }
            _ => self.run_tasks(now, spi),
        }
    }
}
