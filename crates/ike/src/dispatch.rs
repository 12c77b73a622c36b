//! One path for every message that arrives (RFC 7296 §2.1–§2.3, §3.14): the header; for a new
//! IKE_SA_INIT request the responder (answered statelessly when it fails); otherwise our IKE
//! SA by SPI (a retransmitted Delete of one we closed is answered from the answers kept for
//! that), the Message ID (a retransmitted request is answered from the cache, a late or
//! unsolicited response dropped), decryption and reassembly, the inner payloads parsed and
//! checked against the placement rules — for requests and responses alike — and then the
//! exchange's handler. Every way out that is not success is an [`IkeError`]: counted by
//! [`Endpoint::on_error`], and, for a request inside an IKE SA, answered with the Notify
//! [`IkeError::answer`] gives (or nothing).

use std::net::SocketAddr;

use meshsec_crypto::sk::Opened;
use meshsec_types::IkeSpi;
use meshsec_wire::payload::{Payload, PayloadBody};
use meshsec_wire::registry::{ExchangeType, ProtocolId};
use meshsec_wire::{Header, parse_inner_payloads, rules};

use crate::endpoint::Endpoint;
use crate::error::{ErrorKind, IkeError};
use crate::request::RequestPrint;
use crate::sa::{State, Timestamp};
use meshsec_types::timing::RESEND_INTERVAL;

impl Endpoint {
    /// A received datagram, through the whole path.
    pub(crate) fn receive(
        &mut self,
        now: Timestamp,
        from: SocketAddr,
        to: SocketAddr,
        bytes: &[u8],
    ) -> Result<(), IkeError> {
        let info = Header::parse(bytes).map_err(|_| ErrorKind::Unparseable)?;
        let h = info.header;
        let (spi_i, spi_r) = (IkeSpi::new(h.spi_i), IkeSpi::new(h.spi_r));
        if h.exchange == ExchangeType::IKE_SA_INIT && !h.flags.response() {
            if let Some(spi) = self.init_index.get(&(from, spi_i)).copied() {
                // A retransmitted IKE_SA_INIT request: answer from the cache.
                return self.resend_response(now, spi, RequestPrint::of(bytes, from, to));
            }
            let result = self
                .respond_sa_init(now, from, to, bytes)
                .map_err(IkeError::unauthenticated);
            if let Err(e) = &result
                && let Some(n) = e.answer()
            {
                self.answer_init_with_notify(&h, from, n);
            }
            return result;
        }
        // The sender's Initiator flag says which SPI is ours.
        let our_spi = if h.flags.initiator() { spi_r } else { spi_i };
        if !self.sas.contains_key(&our_spi) {
            if !h.flags.response() && self.closed_answer(now, our_spi, h.message_id).is_some() {
                let print = RequestPrint::of(bytes, from, to);
                return self.answer_closed(now, our_spi, h.message_id, print);
            }
            return Err(ErrorKind::UnknownSpi.into());
        }
        if h.flags.response() {
            self.receive_response(now, our_spi, &h, bytes)
        } else {
            self.receive_request(now, our_spi, &h, (from, to), bytes)
        }
    }

    /// Our cached response again, if `request` is a copy of the request it answered, from
    /// where that came (see [`Answered`](crate::request::Answered)).
    fn resend_response(
        &mut self,
        now: Timestamp,
        spi: IkeSpi,
        request: RequestPrint,
    ) -> Result<(), IkeError> {
        let sa = self.sas.get_mut(&spi).ok_or(ErrorKind::UnknownSpi)?;
        let cache = sa.last_response.as_mut().ok_or(ErrorKind::Internal)?;
        let response = cache.resend(now, request)?;
        self.send_again(request, response)
    }

    /// Sends a cached `response` again to where its `request` came from: the request was a
    /// retransmission (which is all the caller reports).
    pub(crate) fn send_again(
        &mut self,
        request: RequestPrint,
        response: Vec<Vec<u8>>,
    ) -> Result<(), IkeError> {
        let (ours, theirs) = request.addresses();
        self.transmit_all(ours, theirs, response);
        Err(ErrorKind::Retransmission.into())
    }

    /// The inner payloads of a message, parsed and checked against the placement rules;
    /// octets after the last payload are padding (counted, see `parse_inner_payloads`).
    fn inner_payloads<'a>(
        &mut self,
        exchange: ExchangeType,
        response: bool,
        opened: &'a Opened,
    ) -> Result<Vec<Payload<'a>>, IkeError> {
        let (payloads, trailing) = parse_inner_payloads(opened.first_inner, &opened.plaintext)
            .map_err(|e| IkeError::malformed(&e))?;
        if trailing > 0 {
            self.errors.count(ErrorKind::TrailingOctets);
        }
        rules::check_inner(exchange, response, &payloads).map_err(|_| ErrorKind::InvalidSyntax)?;
        Ok(payloads)
    }

    /// A response: only to our outstanding request; it ends our exchange whatever it says.
    fn receive_response(
        &mut self,
        now: Timestamp,
        spi: IkeSpi,
        h: &Header,
        bytes: &[u8],
    ) -> Result<(), IkeError> {
        let sa = self.sas.get(&spi).ok_or(ErrorKind::UnknownSpi)?;
        let expected = sa
            .outstanding
            .as_ref()
            .is_some_and(|p| p.message_id == h.message_id && p.exchange == h.exchange);
        if !expected {
            return Err(ErrorKind::UnexpectedResponse.into()); // late duplicate or unsolicited
        }
        let (state, ike_rekey) = (sa.state, sa.ike_exchange().is_some());
        if let (State::ExpectSaInitResponse, ExchangeType::IKE_SA_INIT) = (state, h.exchange) {
            return self.handle_sa_init_response(now, spi, bytes);
        }
        let Some(opened) = self.open_message(spi, h.message_id, bytes)? else {
            return Ok(()); // a fragment; the rest is coming
        };
        let payloads = self.inner_payloads(h.exchange, true, &opened);
        let result = match (state, h.exchange) {
            (State::ExpectAuthResponse, ExchangeType::IKE_AUTH) => {
                self.handle_auth_response(now, spi, payloads)
            }
            (State::Established, ExchangeType::INFORMATIONAL) => {
                // Authenticated: it answers our request whatever is inside (a liveness check
                // answered with something odd is still answered).
                let refusal = payloads.as_ref().ok().and_then(|p| {
                    p.iter()
                        .filter_map(Payload::as_notify)
                        .find(|n| n.ty.is_known_error())
                        .map(|n| n.ty)
                });
                self.handle_informational_response(now, spi, refusal);
                payloads.map(|_| ())
            }
            (State::Established, ExchangeType::CREATE_CHILD_SA) if ike_rekey => {
                self.handle_ike_rekey_response(now, spi, payloads)
            }
            (State::Established, ExchangeType::CREATE_CHILD_SA) => {
                self.handle_create_child_response(now, spi, payloads)
            }
            _ => {
                // It answers our request all the same: the exchange is over.
                if let Some(sa) = self.sas.get_mut(&spi) {
                    sa.take_request();
                }
                self.run_tasks(now, spi);
                Err(ErrorKind::WrongState.into())
            }
        };
        if let Err(e) = &result {
            self.ignored(spi, e, h.exchange, true);
        }
        self.proven_if_established(now, spi, state);
        result
    }

    /// Whether IKE SA `spi`'s peer has another, established IKE SA with us.
    fn has_established_sibling(&self, spi: IkeSpi) -> bool {
        let Some(peer) = self.sas.get(&spi).and_then(|sa| sa.peer) else {
            return false;
        };
        self.sas
            .iter()
            .any(|(s, sa)| *s != spi && sa.peer == Some(peer) && sa.state == State::Established)
    }

    /// Sends our outstanding IKE_AUTH request on `spi` again now, unless it went out within
    /// `RESEND_INTERVAL` (the responder's cache would not answer it; and the trigger may be
    /// replayed).
    fn resend_auth_request(&mut self, now: Timestamp, spi: IkeSpi) {
        let Some(sa) = self.sas.get_mut(&spi) else {
            return;
        };
        let (local, remote) = (sa.local, sa.remote);
        let Some(p) = sa.outstanding.as_mut() else {
            return;
        };
        if p.exchange != ExchangeType::IKE_AUTH || now < p.sent_at + RESEND_INTERVAL {
            return;
        }
        let datagrams = p.send_again(now);
        self.transmit_all(local, remote, datagrams);
    }

    /// After an authenticated message of the peer on IKE SA `spi` (in `state` when it came):
    /// if the SA was and still is established (the message did not delete it), the peer
    /// has it.
    fn proven_if_established(&mut self, now: Timestamp, spi: IkeSpi, state: State) {
        let still = self
            .sas
            .get(&spi)
            .is_some_and(|sa| sa.state == State::Established);
        if state == State::Established && still {
            self.survivor_proven(now, spi);
        }
    }

    /// A request of the peer: the next in its window, or a retransmission of the last.
    fn receive_request(
        &mut self,
        now: Timestamp,
        spi: IkeSpi,
        h: &Header,
        (from, to): (SocketAddr, SocketAddr),
        bytes: &[u8],
    ) -> Result<(), IkeError> {
        let sa = self.sas.get(&spi).ok_or(ErrorKind::UnknownSpi)?;
        // A fragmented request is recognised (and answered again) by its first fragment.
        let first_datagram = crate::messages::fragment_number(bytes).is_none_or(|n| n == 1);
        if sa
            .last_response
            .as_ref()
            .is_some_and(|a| a.message_id == h.message_id)
        {
            if !first_datagram {
                return Err(ErrorKind::Retransmission.into());
            }
            return self.resend_response(now, spi, RequestPrint::of(bytes, from, to));
        }
        if h.message_id != sa.expected_request_id {
            return Err(ErrorKind::UnexpectedMessageId.into());
        }
        let (state, exchange, message_id) = (sa.state, h.exchange, h.message_id);
        let opened = self.open_message(spi, message_id, bytes)?;
        if first_datagram && let Some(sa) = self.sas.get_mut(&spi) {
            // Authentic (it decrypted): this is the request a retransmission must copy.
            sa.request_print = Some((message_id, RequestPrint::of(bytes, from, to)));
        }
        let Some(opened) = opened else {
            return Ok(()); // a fragment; the rest is coming
        };
        let first_auth = (state, exchange) == (State::ExpectAuthRequest, ExchangeType::IKE_AUTH);
        if first_auth && let Some(sa) = self.sas.get_mut(&spi) {
            // Authentic: the peer may have floated to port 4500 or been re-mapped by a NAT.
            sa.remote = from;
            sa.local = to;
        }
        let payloads = self.inner_payloads(exchange, false, &opened).map_err(|e| {
            if first_auth {
                IkeError::protocol(
                    e.kind,
                    None,
                    "the IKE_AUTH request does not parse or breaks the placement rules",
                )
            } else {
                e
            }
        });
        let result = payloads.and_then(|payloads| match (state, exchange) {
            (State::ExpectAuthRequest, ExchangeType::IKE_AUTH) => {
                self.handle_auth_request(now, spi, &payloads)
            }
            (State::Established, ExchangeType::INFORMATIONAL) => {
                self.handle_informational_request(now, spi, &payloads)
            }
            (State::Established, ExchangeType::CREATE_CHILD_SA) => {
                self.handle_create_child_request(now, spi, &payloads)
            }
            (State::ExpectAuthResponse, ExchangeType::INFORMATIONAL)
                if deletes_ike_sa(&payloads) && self.has_established_sibling(spi) =>
            {
                // The peer deletes the SA whose IKE_AUTH answer we still wait for: it lost
                // a simultaneous start (we hold the survivor) and its answer to us was
                // lost. We agree: answer, and drop our half of it at once instead of
                // retransmitting IKE_AUTH into an SA the peer no longer has.
                self.respond(spi, message_id, exchange, &[]);
                self.keep_closing_answer(now, spi);
                self.remove_sa(spi);
                Ok(())
            }
            (State::ExpectAuthResponse, _) => {
                // The responder sends requests only on an established SA: it has our
                // IKE_AUTH and its answer was lost. Asking again now beats waiting for the
                // retransmission timer; the request itself is taken when it comes again.
                self.resend_auth_request(now, spi);
                Err(ErrorKind::WrongState.into())
            }
            _ => Err(ErrorKind::WrongState.into()),
        });
        if let Err(e) = &result {
            // Only an authenticated peer is answered: on an established IKE SA, or in the
            // IKE_AUTH that authenticates it. Before that, a request is not refused either
            // (the peer has our IKE_AUTH answer, we do not have its own yet): it retransmits,
            // and by then we take it.
            let answerable = state == State::Established || first_auth;
            if let Some(n) = e.answer().filter(|_| answerable) {
                let notify = [Payload::new(PayloadBody::Notify(n))];
                self.respond(spi, message_id, exchange, &notify);
            }
            if first_auth {
                // No IKE SA came of it: the half-open SA goes.
                self.remove_sa(spi);
            }
        }
        if first_auth {
            // Whatever failed, the sender had not (yet) authenticated.
            return result.map_err(IkeError::unauthenticated);
        }
        if let Err(e) = &result {
            self.ignored(spi, e, exchange, false);
        }
        self.proven_if_established(now, spi, state);
        result
    }

    /// An authenticated message of the peer's that an error stopped: reported (with the
    /// peer) unless its failure is reported anyway.
    fn ignored(&mut self, spi: IkeSpi, e: &IkeError, exchange: ExchangeType, response: bool) {
        if e.failure.is_some() {
            return;
        }
        if let Some(peer) = self.sas.get(&spi).and_then(|sa| sa.peer) {
            self.event(crate::event::Event::MessageIgnored {
                peer,
                kind: e.kind,
                exchange,
                response,
            });
        }
    }
}

/// Whether an INFORMATIONAL request's payloads delete the IKE SA.
fn deletes_ike_sa(payloads: &[Payload<'_>]) -> bool {
    payloads
        .iter()
        .any(|p| matches!(&p.body, PayloadBody::Delete(d) if d.protocol == ProtocolId::IKE))
}
