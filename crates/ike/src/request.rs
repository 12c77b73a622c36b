//! The request window of an IKE SA (RFC 7296 §2.1–§2.3: one request at a time each way):
//! our request in flight — its message ID, its datagrams for retransmission, and what it is
//! for, the state its answer needs — and the peer's last request we answered, with our answer.

use std::net::SocketAddr;

use meshsec_crypto::ke::KeyExchange;
use meshsec_types::timing::RESEND_INTERVAL;
use meshsec_types::{IkeSpi, InboundSpi};
use meshsec_wire::payload::AddrSelector;
use meshsec_wire::registry::ExchangeType;

use crate::config::ChildMode;
use crate::error::ErrorKind;
use crate::proposal::ProposalSpec;
use meshsec_types::Timestamp;

/// Our outstanding request.
pub(crate) struct Outstanding {
    pub(crate) exchange: ExchangeType,
    pub(crate) message_id: u32,
    /// The datagrams of the request (several when fragmented, RFC 7383).
    pub(crate) datagrams: Vec<Vec<u8>>,
    /// Transmissions so far.
    pub(crate) tries: u32,
    /// When to send it again (or give up).
    pub(crate) next_at: Timestamp,
    /// When it was last sent.
    pub(crate) sent_at: Timestamp,
    /// What it is for.
    pub(crate) kind: RequestKind,
}

/// What our request is for.
pub(crate) enum RequestKind {
    /// IKE_SA_INIT (the first, again with another group, or with a cookie).
    SaInit,
    /// IKE_AUTH.
    Auth,
    /// A CHILD SA: a new one or a rekey.
    CreateChild(ChildExchange),
    /// A rekey of the IKE SA itself.
    RekeyIke(IkeRekeyExchange),
    /// An INFORMATIONAL exchange.
    Informational(InfoPurpose),
}

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

/// Our IKE SA rekey in flight.
pub(crate) struct IkeRekeyExchange {
    /// Our SPI of the new IKE SA (its SPIi).
    pub(crate) spi: IkeSpi,
    pub(crate) ni: Vec<u8>,
    pub(crate) kx: KeyExchange,
    pub(crate) proposals: Vec<ProposalSpec>,
    /// The peer rekeyed the same IKE SA meanwhile (a collision): the new IKE SA that made
    /// (our SPI) and that exchange's smallest nonce.
    pub(crate) peer_rekey: Option<(IkeSpi, Vec<u8>)>,
}

/// What an INFORMATIONAL request of ours was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InfoPurpose {
    /// An empty request: is the peer alive?
    Liveness,
    /// Delete of the whole IKE SA.
    DeleteIkeSa,
    /// Delete of the CHILD SA with this inbound SPI.
    DeleteChildSa(InboundSpi),
}

/// How the peer's request we answered looked: the fingerprint of its datagram (its first
/// fragment, if fragmented), where it came from and which of our addresses it reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RequestPrint {
    fingerprint: [u8; 32],
    from: SocketAddr,
    to: SocketAddr,
}

impl RequestPrint {
    pub(crate) fn of(bytes: &[u8], from: SocketAddr, to: SocketAddr) -> RequestPrint {
        RequestPrint {
            fingerprint: meshsec_crypto::digest::fingerprint(bytes),
            from,
            to,
        }
    }

    /// (our address it reached, the address it came from): where an answer goes from and to.
    pub(crate) fn addresses(&self) -> (SocketAddr, SocketAddr) {
        (self.to, self.from)
    }
}

/// The peer's last request we answered, and our answer (RFC 7296 §2.1: a retransmission of
/// the request gets the same response again). Only an exact copy of that request, from the
/// address it came from, is answered again, and at most once per [`RESEND_INTERVAL`]: a bare
/// header with a known Message ID, a forgery or a copy sent from elsewhere gets nothing, so
/// the cache reflects nothing to anyone.
pub(crate) struct Answered {
    pub(crate) message_id: u32,
    /// Our response (several datagrams when fragmented).
    response: Vec<Vec<u8>>,
    /// The request, if we saw it whole or its first fragment (else nothing is resent).
    request: Option<RequestPrint>,
    /// When the response was last sent.
    sent_at: Timestamp,
}

/// The answer to the Delete that closed IKE SA `spi` (our SPI), until `until`.
pub(crate) struct ClosedAnswer {
    pub(crate) spi: IkeSpi,
    pub(crate) until: Timestamp,
    pub(crate) answer: Answered,
}

impl Outstanding {
    /// The request's datagrams, to send again now.
    pub(crate) fn send_again(&mut self, now: Timestamp) -> Vec<Vec<u8>> {
        self.sent_at = now;
        self.datagrams.clone()
    }
}

impl Answered {
    pub(crate) fn new(
        message_id: u32,
        response: Vec<Vec<u8>>,
        request: Option<RequestPrint>,
        now: Timestamp,
    ) -> Answered {
        Answered {
            message_id,
            response,
            request,
            sent_at: now,
        }
    }

    /// The response to send again unasked (see `Endpoint::nudge_survivor`), at most once
    /// per `RESEND_INTERVAL` like any resend.
    pub(crate) fn resend_unasked(&mut self, now: Timestamp) -> Option<Vec<Vec<u8>>> {
        if now < self.sent_at + RESEND_INTERVAL {
            return None;
        }
        self.sent_at = now;
        Some(self.response.clone())
    }

    /// The response to send again for a datagram that looks like `request`.
    pub(crate) fn resend(
        &mut self,
        now: Timestamp,
        request: RequestPrint,
    ) -> Result<Vec<Vec<u8>>, ErrorKind> {
        if self.request != Some(request) {
            return Err(ErrorKind::NotARetransmission);
        }
        if now < self.sent_at + RESEND_INTERVAL {
            return Err(ErrorKind::RateLimited);
        }
        self.sent_at = now;
        Ok(self.response.clone())
    }
}
