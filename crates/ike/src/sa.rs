//! The state one IKE SA keeps, and the reliability layer of its exchanges (RFC 7296 §2.1–§2.2):
//! message IDs, retransmission with exponential backoff, and the response cache that answers
//! retransmitted requests without processing them again.

use meshsec_types::{IkeSpi, InboundSpi, OutboundSpi};
use std::net::SocketAddr;
use std::time::Duration;

use meshsec_crypto::ke::KeyExchange;
use meshsec_crypto::keys::{IkeKeys, IkeSuite};
use meshsec_crypto::sk::SkKey;
use meshsec_wire::payload::Proposal;
use meshsec_wire::registry::ExchangeType;

use crate::event::{Nat, PeerId};
use crate::request::{
    Answered, ChildExchange, IkeRekeyExchange, InfoPurpose, Outstanding, RequestKind, RequestPrint,
};

pub use meshsec_types::Timestamp;

/// Which end of the IKE SA we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// We sent the first IKE_SA_INIT.
    Initiator,
    /// We answered it.
    Responder,
}

/// What the SA waits for (states are named after it, DESIGN §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Initiator: the IKE_SA_INIT response.
    ExpectSaInitResponse,
    /// Responder: the IKE_AUTH request (the SA is half-open).
    ExpectAuthRequest,
    /// Initiator: the IKE_AUTH response.
    ExpectAuthResponse,
    /// Both sides authenticated.
    Established,
}

/// Keys and transforms once IKE_SA_INIT is done.
pub(crate) struct Crypto {
    pub(crate) suite: IkeSuite,
    pub(crate) keys: IkeKeys,
    /// Protects what we receive.
    pub(crate) sk_in: SkKey,
    /// Protects what we send.
    pub(crate) sk_out: SkKey,
}

/// One IKE SA (or an attempt at one).
pub(crate) struct IkeSa {
    pub(crate) role: Role,
    pub(crate) state: State,
    /// The peer, once known (a responder learns it from IDi).
    pub(crate) peer: Option<PeerId>,
    pub(crate) spi_i: IkeSpi,
    pub(crate) spi_r: IkeSpi,
    /// Our address and port for this SA (port 4500 once NAT-T floated).
    pub(crate) local: SocketAddr,
    /// The peer's address and port as last seen in an authenticated message.
    pub(crate) remote: SocketAddr,
    pub(crate) created: Timestamp,
    pub(crate) ni: Vec<u8>,
    pub(crate) nr: Vec<u8>,
    /// Our key exchange (until the shared secret is computed).
    pub(crate) kx: Option<KeyExchange>,
    pub(crate) crypto: Option<Crypto>,
    /// Our IKE_SA_INIT message as sent (the RealMessage our AUTH signs).
    pub(crate) our_init: Vec<u8>,
    /// The peer's IKE_SA_INIT message as received.
    pub(crate) peer_init: Vec<u8>,
    /// Message ID of our next request.
    pub(crate) next_request_id: u32,
    /// Message ID we expect in the peer's next request.
    pub(crate) expected_request_id: u32,
    /// Our request in flight, and what it is for.
    pub(crate) outstanding: Option<Outstanding>,
    /// The peer's last request we answered, and our answer (for its retransmissions).
    pub(crate) last_response: Option<Answered>,
    /// How the peer's request being handled looked (its Message ID and print), taken into
    /// `last_response` when we answer it.
    pub(crate) request_print: Option<(u32, RequestPrint)>,
    /// The ESP SPI we offered for our inbound CHILD SA in IKE_AUTH.
    pub(crate) child_spi: InboundSpi,
    /// The CHILD SAs of this IKE SA, oldest first.
    pub(crate) children: Vec<Child>,
    /// Exchanges waiting for our request window (one request at a time, RFC 7296 §2.3).
    pub(crate) tasks: std::collections::VecDeque<Task>,
    /// Our queued tasks wait until then (after a TEMPORARY_FAILURE).
    pub(crate) tasks_after: Timestamp,
    /// When it became established.
    pub(crate) established_at: Option<Timestamp>,
    /// When to rekey it (soft lifetime with jitter), if it has a lifetime.
    pub(crate) rekey_at: Option<Timestamp>,
    /// Whether it carries the peer's work, is being replaced, or was replaced.
    pub(crate) life: Life,
    /// ESP goes in UDP: a NAT was detected (or the peer pretends one, or we are configured to
    /// encapsulate always).
    pub(crate) udp_encap: bool,
    /// What NAT detection found (ours translated: we keep its mapping with keepalives).
    pub(crate) nat: Nat,
    /// When to send the next NAT keepalive (behind a NAT).
    pub(crate) keepalive_at: Option<Timestamp>,
    /// Both sides announced IKEV2_FRAGMENTATION_SUPPORTED (RFC 7383).
    pub(crate) fragmentation: bool,
    /// Fragments of an incoming message being reassembled.
    pub(crate) reassembly: Option<Reassembly>,
    /// The negotiated IKE proposal in strongSwan's notation (empty until chosen).
    pub(crate) proposal: String,
    /// As responder, the IKE proposal we chose in IKE_SA_INIT from the proposals of every
    /// peer the source might be: the peer IKE_AUTH then names must accept it too.
    pub(crate) chosen_ike: Option<Proposal<'static>>,
    /// Its reauthentication (see the `reauth` module).
    pub(crate) reauth: Reauth,
    /// The hashes the peer can verify signatures with (its SIGNATURE_HASH_ALGORITHMS, RFC
    /// 7427 §4); empty if it sent none.
    pub(crate) peer_hashes: Vec<meshsec_wire::registry::HashAlgorithm>,
    /// The certificate the peer authenticated with (checked again when a reload changes the
    /// peer's CAs or CRLs, and shown with its expiry in status; rekeys carry it over).
    pub(crate) peer_certificate: Option<std::sync::Arc<PeerCertRecord>>,
}

/// The certificate a peer authenticated with: the chain as it sent it (to validate again when
/// our CAs or CRLs change) and what validation found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PeerCertRecord {
    /// Its CERT payloads' DER, its own certificate first.
    pub(crate) chain: Vec<Vec<u8>>,
    /// The validated certificate.
    pub(crate) cert: meshsec_pki::PeerCertificate,
}

/// An IKE SA's reauthentication (RFC 7296 §2.8.3, RFC 4478): when, and the IKE SAs on
/// either side of one in progress.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Reauth {
    /// When the peer was authenticated (IKE_AUTH): rekeys keep it, so that it says how old
    /// the authentication of an SA is, whatever its keys.
    pub(crate) since: Option<Timestamp>,
    /// When to start it (soft lifetime with jitter).
    pub(crate) at: Option<Timestamp>,
    /// When the authentication ends: an IKE SA not replaced by then is deleted.
    pub(crate) expires: Option<Timestamp>,
    /// (New SA) we set it up to replace this IKE SA.
    pub(crate) of: Option<IkeSpi>,
}

/// Where an IKE SA is in its life once up: carrying the peer's work, or replaced and waiting
/// for its Delete (RFC 7296 §2.8 — from the peer, or from us if none comes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Life {
    /// It carries the peer's work.
    Active,
    /// It carries the peer's work, and our reauthentication of it is being set up: the new
    /// IKE SA `by` will replace it.
    Reauthenticating {
        /// The IKE SA being set up.
        by: IkeSpi,
    },
    /// Replaced since `since`: it takes no new work and waits for its Delete.
    Replaced {
        /// Since when.
        since: Timestamp,
        /// By what.
        by: Replacement,
    },
}

/// What replaced an IKE SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Replacement {
    /// An IKE SA rekey (§2.18): its CHILD SAs moved to `successor` (where late ones go too).
    Rekey {
        /// The new IKE SA.
        successor: IkeSpi,
    },
    /// A reauthentication (§2.8.3): `by` came up with CHILD SAs of its own; this one's go
    /// with it.
    Reauth {
        /// The new IKE SA.
        by: IkeSpi,
    },
    /// It lost the resolution of duplicate IKE SAs to `survivor`.
    Duplicate {
        /// The IKE SA that stays.
        survivor: IkeSpi,
        /// Both ends started at once (else: reauthentications crossed, see
        /// `Endpoint::stale_to_delete`).
        start: bool,
    },
}

/// Where a CHILD SA is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChildState {
    /// Carrying traffic.
    Installed,
    /// Our rekey of it is in flight.
    Rekeying,
    /// Superseded by a newer CHILD SA; its Delete is coming (from us or the peer).
    Rekeyed,
    /// Our Delete of it is in flight.
    Deleting,
}

/// One CHILD SA as the IKE SA knows it.
#[derive(Debug, Clone)]
pub(crate) struct Child {
    /// Our inbound SPI.
    pub(crate) inbound: InboundSpi,
    /// The peer's inbound SPI (our outbound).
    pub(crate) outbound: OutboundSpi,
    pub(crate) mode: crate::config::ChildMode,
    pub(crate) local_ts: Vec<meshsec_wire::payload::AddrSelector>,
    pub(crate) remote_ts: Vec<meshsec_wire::payload::AddrSelector>,
    /// When to rekey it (soft lifetime with jitter), if it has a lifetime.
    pub(crate) rekey_at: Option<Timestamp>,
    /// When it must be gone (hard lifetime).
    pub(crate) expire_at: Option<Timestamp>,
    pub(crate) state: ChildState,
}

/// An exchange we will start when the request window is free.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Task {
    /// Rekey the CHILD SA with this inbound SPI.
    RekeyChild(InboundSpi),
    /// Create an additional CHILD SA with the configured selectors.
    CreateChild,
    /// Delete the CHILD SA with this inbound SPI.
    DeleteChild(InboundSpi),
    /// Empty INFORMATIONAL.
    Liveness,
    /// Delete the IKE SA.
    DeleteIke,
    /// Tell the peer its ESP with this SPI reached us for no SA (INVALID_SPI).
    InvalidSpi(InboundSpi),
    /// Rekey the IKE SA itself.
    RekeyIke,
    /// Replace the IKE SA by a new one, authenticated again (make-before-break).
    Reauthenticate,
}

/// An incoming fragmented message (RFC 7383 §2.6): each fragment was authenticated on
/// arrival; the plaintext pieces wait here until all are in.
#[derive(Debug, Default)]
pub(crate) struct Reassembly {
    pub(crate) message_id: u32,
    pub(crate) total: u16,
    pub(crate) first_inner: Option<meshsec_wire::registry::PayloadType>,
    pub(crate) parts: std::collections::BTreeMap<u16, Vec<u8>>,
}

impl IkeSa {
    /// A fresh IKE SA in `state` between `local` and `remote` (ports included), created
    /// `now`; everything else starts empty and is filled in by the exchange that made it.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        role: Role,
        state: State,
        peer: Option<PeerId>,
        (spi_i, spi_r): (IkeSpi, IkeSpi),
        (local, remote): (SocketAddr, SocketAddr),
        now: Timestamp,
        child_spi: InboundSpi,
    ) -> IkeSa {
        IkeSa {
            role,
            state,
            peer,
            spi_i,
            spi_r,
            local,
            remote,
            created: now,
            ni: Vec::new(),
            nr: Vec::new(),
            kx: None,
            crypto: None,
            our_init: Vec::new(),
            peer_init: Vec::new(),
            next_request_id: 0,
            expected_request_id: 0,
            outstanding: None,
            last_response: None,
            request_print: None,
            child_spi,
            children: Vec::new(),
            tasks: std::collections::VecDeque::new(),
            tasks_after: Timestamp::ZERO,
            established_at: None,
            rekey_at: None,
            life: Life::Active,
            udp_encap: false,
            nat: Nat::None,
            keepalive_at: None,
            fragmentation: false,
            reassembly: None,
            proposal: String::new(),
            chosen_ike: None,
            reauth: Reauth::default(),
            peer_hashes: Vec::new(),
            peer_certificate: None,
        }
    }

    /// We answer the peer's request `message_id` with `response`: the window moves on, and
    /// the response is kept for the request's retransmissions.
    pub(crate) fn answered(&mut self, message_id: u32, response: Vec<Vec<u8>>, now: Timestamp) {
        let print = self
            .request_print
            .take()
            .filter(|(id, _)| *id == message_id)
            .map(|(_, p)| p);
        self.expected_request_id = message_id.wrapping_add(1);
        self.last_response = Some(Answered::new(message_id, response, print, now));
    }

    /// Records a request (for `kind`) we are sending now and arms its retransmission.
    pub(crate) fn send_request(
        &mut self,
        now: Timestamp,
        exchange: ExchangeType,
        datagrams: Vec<Vec<u8>>,
        first_timeout: Duration,
        kind: RequestKind,
    ) {
        self.outstanding = Some(Outstanding {
            exchange,
            message_id: self.next_request_id,
            datagrams,
            tries: 1,
            next_at: now + first_timeout,
            sent_at: now,
            kind,
        });
    }

    /// Our request was answered: the window moves on. Returns what it was for.
    pub(crate) fn take_request(&mut self) -> Option<RequestKind> {
        let o = self.outstanding.take()?;
        self.next_request_id = self.next_request_id.wrapping_add(1);
        Some(o.kind)
    }

    /// Our CREATE_CHILD_SA request for a CHILD SA in flight, if any.
    pub(crate) fn child_exchange(&self) -> Option<&ChildExchange> {
        match self.outstanding.as_ref().map(|o| &o.kind) {
            Some(RequestKind::CreateChild(ex)) => Some(ex),
            _ => None,
        }
    }

    /// The same, to note a collision in it.
    pub(crate) fn child_exchange_mut(&mut self) -> Option<&mut ChildExchange> {
        match self.outstanding.as_mut().map(|o| &mut o.kind) {
            Some(RequestKind::CreateChild(ex)) => Some(ex),
            _ => None,
        }
    }

    /// Our rekey of this IKE SA in flight, if any.
    pub(crate) fn ike_exchange(&self) -> Option<&IkeRekeyExchange> {
        match self.outstanding.as_ref().map(|o| &o.kind) {
            Some(RequestKind::RekeyIke(ex)) => Some(ex),
            _ => None,
        }
    }

    /// The same, to note a collision in it.
    pub(crate) fn ike_exchange_mut(&mut self) -> Option<&mut IkeRekeyExchange> {
        match self.outstanding.as_mut().map(|o| &mut o.kind) {
            Some(RequestKind::RekeyIke(ex)) => Some(ex),
            _ => None,
        }
    }

    /// Replaced (by a rekey, a reauthentication or as a duplicate): no new work.
    pub(crate) fn is_replaced(&self) -> bool {
        matches!(self.life, Life::Replaced { .. })
    }

    /// Since when it is replaced.
    pub(crate) fn replaced_since(&self) -> Option<Timestamp> {
        match self.life {
            Life::Replaced { since, .. } => Some(since),
            _ => None,
        }
    }

    /// The IKE SA its CHILD SAs moved to (an IKE SA rekey).
    pub(crate) fn successor(&self) -> Option<IkeSpi> {
        match self.life {
            Life::Replaced {
                by: Replacement::Rekey { successor },
                ..
            } => Some(successor),
            _ => None,
        }
    }

    /// The IKE SA that replaces it without taking its CHILD SAs: our reauthentication being
    /// set up, the peer's (or ours) up, or the survivor of duplicates.
    pub(crate) fn replaced_by(&self) -> Option<IkeSpi> {
        match self.life {
            Life::Reauthenticating { by }
            | Life::Replaced {
                by: Replacement::Reauth { by } | Replacement::Duplicate { survivor: by, .. },
                ..
            } => Some(by),
            _ => None,
        }
    }

    /// It lost the resolution of duplicates.
    pub(crate) fn is_duplicate(&self) -> bool {
        matches!(
            self.life,
            Life::Replaced {
                by: Replacement::Duplicate { .. },
                ..
            }
        )
    }

    /// It lost the duplicates of a simultaneous start.
    pub(crate) fn is_start_duplicate(&self) -> bool {
        matches!(
            self.life,
            Life::Replaced {
                by: Replacement::Duplicate { start: true, .. },
                ..
            }
        )
    }

    /// Replaced now by `by`.
    pub(crate) fn replace(&mut self, now: Timestamp, by: Replacement) {
        self.life = Life::Replaced { since: now, by };
    }

    /// Whatever points at IKE SA `from` (a replacement, the successor) points at `to`: `from`
    /// was rekeyed into `to`.
    pub(crate) fn retarget(&mut self, from: IkeSpi, to: IkeSpi) {
        match &mut self.life {
            Life::Reauthenticating { by }
            | Life::Replaced {
                by: Replacement::Reauth { by } | Replacement::Duplicate { survivor: by, .. },
                ..
            } if *by == from => *by = to,
            _ => {}
        }
    }

    /// Our Delete of this IKE SA is in flight.
    pub(crate) fn deleting(&self) -> bool {
        matches!(
            self.outstanding.as_ref().map(|o| &o.kind),
            Some(RequestKind::Informational(InfoPurpose::DeleteIkeSa))
        )
    }
}
