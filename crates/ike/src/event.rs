//! What the engine reports: datagrams to send, SAs for the data plane, and lifecycle events
//! with explanations of every failure.

use core::fmt;
use meshsec_types::{IkeSpi, InboundSpi, OutboundSpi};
use std::net::{IpAddr, SocketAddr};

use meshsec_crypto::{Encr, Integ, Secret};
use meshsec_wire::payload::AddrSelector;
use meshsec_wire::registry::{AuthMethod, ExchangeType, NotifyType};

use crate::config::ChildMode;
use crate::proposal::NoProposalChosen;
use crate::ts::TsUnacceptable;

pub use meshsec_types::PeerId;

/// A datagram for the daemon to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// From.
    pub src: SocketAddr,
    /// To.
    pub dst: SocketAddr,
    /// The IKE message (or the keepalive octet).
    pub payload: Vec<u8>,
    /// What it is: it decides the framing on port 4500.
    pub kind: TransmitKind,
}

/// What a [`Transmit`] carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransmitKind {
    /// An IKE message: on port 4500 it goes behind the non-ESP marker (RFC 3948 §2.2).
    Ike,
    /// A NAT keepalive (RFC 3948 §2.3): the one octet 0xFF, sent as it is.
    NatKeepalive,
}

/// One direction of a CHILD SA, for the data plane; `S` says which ([`InboundSpi`] or
/// [`OutboundSpi`]).
#[derive(Debug, Clone)]
pub struct ChildSaHalf<S> {
    /// Its SPI.
    pub spi: S,
    /// Encryption key (| salt for AEAD).
    pub encr_key: Secret,
    /// Integrity key (empty for AEAD).
    pub integ_key: Secret,
}

/// A CHILD SA pair to install (inbound and outbound).
#[derive(Debug, Clone)]
pub struct ChildSa {
    /// The peer.
    pub peer: PeerId,
    /// Encryption.
    pub encr: Encr,
    /// Integrity.
    pub integ: Option<Integ>,
    /// Extended sequence numbers.
    pub esn: bool,
    /// Tunnel or transport.
    pub mode: ChildMode,
    /// Our side's negotiated selectors.
    pub local_ts: Vec<AddrSelector>,
    /// The peer's side's negotiated selectors.
    pub remote_ts: Vec<AddrSelector>,
    /// Packets we receive.
    pub inbound: ChildSaHalf<InboundSpi>,
    /// Packets we send.
    pub outbound: ChildSaHalf<OutboundSpi>,
    /// False if the peer sent ESP_TFC_PADDING_NOT_SUPPORTED.
    pub tfc_padding_allowed: bool,
    /// Our outer address (and port, for UDP encapsulation).
    pub local: std::net::SocketAddr,
    /// The peer's outer address (and port).
    pub remote: std::net::SocketAddr,
    /// ESP in UDP (RFC 3948): a NAT was detected, or the peer asked for encapsulation.
    pub udp_encap: bool,
    /// The negotiated ESP proposal in strongSwan's notation (status displays, logs).
    pub proposal: String,
    /// This pair replaces the CHILD SA with this inbound SPI (a rekey); the old one stays
    /// until its own [`Event::DeleteChildSa`].
    pub rekey_of: Option<InboundSpi>,
    /// Install the outbound half as a standby behind the current one: we answered the peer's
    /// rekey, and the peer may not have the new inbound SA until it has our answer. It takes
    /// over when the old SA is deleted (make-before-break, RFC 7296 §2.8).
    pub outbound_standby: bool,
}

/// Which side of us a failure is attributed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// We detected it.
    Local,
    /// The peer told us (with a Notify).
    Peer,
}

/// Why an exchange failed, with what each side wanted where we know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// We (as responder) found no acceptable proposal; both lists are known.
    NoProposalChosen(NoProposalChosen),
    /// The peer answered an error Notify to what we sent.
    PeerRefused {
        /// The Notify type.
        notify: NotifyType,
        /// The exchange.
        exchange: ExchangeType,
        /// What we had offered, as far as it explains the refusal.
        we_offered: String,
    },
    /// The peer's identity is not the configured one.
    IdentityMismatch {
        /// What the configuration expects.
        expected: String,
        /// What the peer presented.
        presented: String,
    },
    /// An IKE_SA_INIT from an address no peer is configured at or accepts
    /// (`PeerConfig::accept_from`): dropped unanswered, before any key exchange.
    UnknownSource {
        /// Where it came from.
        from: IpAddr,
    },
    /// An IKE_AUTH with a peer's identity from an address that peer is not configured at:
    /// refused whatever its AUTH, so that one PSK holder cannot pose as another peer.
    AddressMismatch {
        /// The identity presented.
        identity: String,
        /// The addresses the peer of that identity may initiate from.
        accepted: String,
        /// Where the IKE_AUTH came from.
        from: IpAddr,
    },
    /// The AUTH payload did not verify: wrong PSK on one side (the key itself is never
    /// shown).
    AuthenticationFailed {
        /// Whose AUTH failed to verify.
        side: Side,
    },
    /// The peer's certificate was not accepted (unknown CA, expired, revoked, identity not
    /// in it, ... — each named with the certificate and dates).
    Certificate(meshsec_pki::CertError),
    /// The peer authenticated with another method than we require of it (`peer_auth`).
    AuthMethodMismatch {
        /// What we require.
        required: &'static str,
        /// The AUTH method the peer used.
        used: AuthMethod,
    },
    /// The peer's AUTH signature does not verify with its certificate's key.
    SignatureInvalid {
        /// The certificate's subject.
        subject: String,
        /// Why.
        detail: String,
    },
    /// No overlap of traffic selectors.
    TsUnacceptable(TsUnacceptable),
    /// The responder narrowed the selectors and we do not accept narrowing.
    NarrowingRefused {
        /// What we proposed (TSi, TSr).
        proposed: String,
        /// What came back.
        returned: String,
    },
    /// Tunnel vs transport disagreement.
    ModeMismatch {
        /// Ours.
        ours: ChildMode,
    },
    /// No answer after the last retransmission.
    Timeout {
        /// The exchange that got no answer.
        exchange: ExchangeType,
        /// Transmissions made.
        tries: u32,
    },
    /// Our own side could not go on (a message we cannot build, random numbers...).
    Local {
        /// What failed.
        detail: String,
    },
    /// The peer's message broke the protocol (bad syntax, unexpected payloads...).
    Protocol {
        /// What was wrong.
        detail: String,
    },
}

/// An AUTH method in words.
pub(crate) fn auth_method_name(m: AuthMethod) -> &'static str {
    match m {
        AuthMethod::SHARED_KEY_MIC => "a pre-shared key",
        AuthMethod::RSA_SIG => "an RSA signature",
        AuthMethod::DIGITAL_SIGNATURE => "a digital signature (RFC 7427)",
        AuthMethod::ECDSA_SHA256_P256
        | AuthMethod::ECDSA_SHA384_P384
        | AuthMethod::ECDSA_SHA512_P521 => "an ECDSA signature (RFC 4754)",
        _ => "an unsupported method",
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::NoProposalChosen(e) => write!(f, "{e}"),
            Failure::PeerRefused {
                notify,
                exchange,
                we_offered,
            } => write!(f, "{notify}: the peer refused our {exchange}; we offered {we_offered}"),
            Failure::IdentityMismatch { expected, presented } => write!(
                f,
                "identity mismatch: expected {expected}, the peer presented {presented}"
            ),
            Failure::UnknownSource { from } => write!(
                f,
                "IKE_SA_INIT from {from}: no peer is configured at this address (set the peer's \
                 address, or accept_from for peers that move)"
            ),
            Failure::AddressMismatch {
                identity,
                accepted,
                from,
            } => write!(
                f,
                "address mismatch: {identity} initiated from {from}, but that peer is configured \
                 at {accepted} (refused before its AUTH counts)"
            ),
            Failure::AuthenticationFailed { side: Side::Local } => f.write_str(
                "AUTHENTICATION_FAILED: the peer's AUTH does not verify with our PSK (PSKs differ?)",
            ),
            Failure::AuthenticationFailed { side: Side::Peer } => f.write_str(
                "AUTHENTICATION_FAILED: the peer could not verify our AUTH (PSKs differ, it expects another identity or auth method, or it does not accept our certificate: see its log)",
            ),
            Failure::Certificate(e) => write!(f, "AUTHENTICATION_FAILED: {e}"),
            Failure::AuthMethodMismatch { required, used } => write!(
                f,
                "AUTHENTICATION_FAILED: the peer authenticated with {} (AUTH method {}), but we require {required} of it (peer_auth)",
                auth_method_name(*used),
                used.0
            ),
            Failure::SignatureInvalid { subject, detail } => write!(
                f,
                "AUTHENTICATION_FAILED: the peer's AUTH signature does not verify with the key of its certificate \"{subject}\": {detail}"
            ),
            Failure::TsUnacceptable(e) => write!(f, "{e}"),
            Failure::NarrowingRefused { proposed, returned } => write!(
                f,
                "TS_UNACCEPTABLE: the responder narrowed our selectors {proposed} to {returned} and narrowing is not allowed"
            ),
            Failure::ModeMismatch { ours } => {
                write!(f, "mode mismatch: we require {ours:?} mode, the peer does not")
            }
            Failure::Timeout { exchange, tries } => {
                write!(f, "timeout: no answer to {exchange} after {tries} transmissions")
            }
            Failure::Local { detail } => write!(f, "local error: {detail}"),
            Failure::Protocol { detail } => write!(f, "protocol error: {detail}"),
        }
    }
}

/// What happened.
#[derive(Debug, Clone)]
pub enum Event {
    /// An IKE SA is up (both sides authenticated).
    IkeSaEstablished {
        /// The peer.
        peer: PeerId,
        /// Our SPI of it.
        local_spi: IkeSpi,
        /// Whether ESP goes in UDP (RFC 3948).
        udp_encap: bool,
        /// What NAT detection found.
        nat: Nat,
    },
    /// Install this CHILD SA pair in the data plane.
    InstallChildSa(ChildSa),
    /// Remove this CHILD SA pair from the data plane.
    DeleteChildSa {
        /// The peer.
        peer: PeerId,
        /// Our inbound SPI.
        inbound_spi: InboundSpi,
        /// The outbound SPI.
        outbound_spi: OutboundSpi,
    },
    /// Stop sending on this CHILD SA now: we are deleting it (its Delete is on the way, and
    /// the peer will drop what still arrives on it). Its inbound half stays until the
    /// [`Event::DeleteChildSa`] that follows.
    OutboundRetired {
        /// The peer.
        peer: PeerId,
        /// The outbound SPI.
        outbound_spi: OutboundSpi,
    },
    /// The peer reported ESP on this CHILD SA's outbound SPI that it cannot open (it lost
    /// that half): a replacement is being created and this one deleted.
    HealingChildSa {
        /// The peer.
        peer: PeerId,
        /// Our inbound SPI of the broken CHILD SA.
        inbound_spi: InboundSpi,
        /// Its outbound SPI (the one the peer no longer knows).
        outbound_spi: OutboundSpi,
    },
    /// The IKE SA was rekeyed: its CHILD SAs now belong to the new one (nothing changes in
    /// the data plane). The old one is deleted shortly ([`Event::IkeSaDeleted`]).
    IkeSaRekeyed {
        /// The peer.
        peer: PeerId,
        /// Our SPI of the old IKE SA.
        old_spi: IkeSpi,
        /// Our SPI of the new IKE SA.
        new_spi: IkeSpi,
    },
    /// The IKE SA was reauthenticated (by us or the peer): `new_spi` and its CHILD SA
    /// replace `old_spi`, which is deleted with its CHILD SAs shortly
    /// ([`Event::IkeSaDeleted`]).
    IkeSaReauthenticated {
        /// The peer.
        peer: PeerId,
        /// Our SPI of the old IKE SA.
        old_spi: IkeSpi,
        /// Our SPI of the new IKE SA.
        new_spi: IkeSpi,
    },
    /// Both ends rekeyed the same SA at once (RFC 7296 §2.8.1/§2.8.2); the SA created with
    /// the lowest nonce is deleted by its creator. `won`: ours survives.
    RekeyCollision {
        /// The peer.
        peer: PeerId,
        /// It was the IKE SA (else a CHILD SA).
        ike: bool,
        /// Our new SA survives.
        won: bool,
    },
    /// An IKE SA is gone (its CHILD SAs were deleted with it).
    IkeSaDeleted {
        /// The peer.
        peer: PeerId,
        /// Our SPI of it.
        local_spi: IkeSpi,
        /// Why.
        reason: &'static str,
    },
    /// The peer answered or sent an authenticated message (liveness).
    PeerAlive {
        /// The peer.
        peer: PeerId,
    },
    /// An authenticated message of the peer (it decrypted) was not acted on — its payloads
    /// do not parse or break the placement rules, or its exchange does not fit the IKE SA's
    /// state: counted by `kind`, and worth a debug line (a peer whose messages we drop looks
    /// like a dead one to it).
    MessageIgnored {
        /// The peer.
        peer: PeerId,
        /// Why.
        kind: crate::error::ErrorKind,
        /// The exchange of the message.
        exchange: ExchangeType,
        /// It was a response (to our request).
        response: bool,
    },
    /// We refused an initiator that had not authenticated (its IKE_SA_INIT, or its IKE_AUTH
    /// before the AUTH verified). Anyone can send that, so nothing of any peer's state may
    /// change for it: it is for the log (rate-limited) and counters only.
    Refused {
        /// Where it came from.
        from: SocketAddr,
        /// The peer it looked like (by its address or the identity it claimed), if any.
        claimed: Option<PeerId>,
        /// Why.
        failure: Failure,
    },
    /// Negotiation with a peer failed; the SA attempt is gone.
    Failed {
        /// The peer, when known (an unauthenticated stranger has none).
        peer: Option<PeerId>,
        /// Why.
        failure: Failure,
    },
}

/// What NAT detection (RFC 7296 §2.23, the NAT_DETECTION_*_IP hashes) found on the path.
/// Shown as such: ESP in UDP alone (`udp_encap`) is not a NAT — it is also our default and
/// what strongSwan's userspace data plane asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Nat {
    /// Both hashes match: nothing translated the addresses.
    #[default]
    None,
    /// Our address is translated: we are behind a NAT (we send the keepalives, RFC 3948).
    Local,
    /// The peer's address is translated — or the peer pretends so to get UDP encapsulation;
    /// the two cannot be told apart.
    Remote,
    /// Both addresses are translated.
    Both,
}

impl Nat {
    /// From the two findings: our address translated, the peer's translated.
    pub(crate) fn from_findings(local: bool, remote: bool) -> Nat {
        match (local, remote) {
            (false, false) => Nat::None,
            (true, false) => Nat::Local,
            (false, true) => Nat::Remote,
            (true, true) => Nat::Both,
        }
    }

    /// Whether our own address is translated.
    pub fn local(self) -> bool {
        matches!(self, Nat::Local | Nat::Both)
    }

    /// For status and logs: a NAT that is certain, or `None`. Only a translation of our
    /// own address is: a peer that wants ESP in UDP fakes its SOURCE_IP hash (meshsec's
    /// default `esp_encap = "udp"` does, as strongSwan's userspace data plane), so `Remote`
    /// alone is shown as UDP encapsulation, not as a NAT.
    pub fn describe(self) -> Option<&'static str> {
        match self {
            Nat::None | Nat::Remote => None,
            Nat::Local | Nat::Both => Some("NAT: we are behind one"),
        }
    }
}
