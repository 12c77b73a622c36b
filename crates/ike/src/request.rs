//! Our request in flight on an IKE SA (RFC 7296 §2.1–§2.3: one at a time): its message ID,
//! its datagrams for retransmission, and what it is for — the state its answer needs.

use meshsec_crypto::ke::KeyExchange;
use meshsec_types::{IkeSpi, InboundSpi};
use meshsec_wire::payload::AddrSelector;
use meshsec_wire::registry::ExchangeType;

use crate::config::ChildMode;
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
