//! Why the engine refused or dropped a message, or gave up on an exchange — one enum for
//! every case, one place that maps it to what the peer is told (a Notify, or nothing), and a
//! counter per kind (DESIGN §4; rustls maps its error families to alerts the same way).
//!
//! Answering is decided here, not at the sites that found the problem:
//!
//! * nothing derived from an unauthenticated message earns an answer, except the stateless,
//!   rate-limited answers to IKE_SA_INIT (NO_PROPOSAL_CHOSEN, INVALID_KE_PAYLOAD, COOKIE);
//! * a request inside an IKE SA that fails gets the error Notify of its kind in the response
//!   (RFC 7296 §2.21), so that the peer learns why;
//! * a response that fails ends our exchange; the peer is told nothing (there is no answer to
//!   an answer);
//! * stale and duplicate messages (retransmissions, late responses, other SPIs) are dropped
//!   silently — and counted.
//!
//! What the operator reads is [`Failure`], derived from the errors that end a negotiation.

use core::fmt;

use meshsec_types::OutboundSpi;
use meshsec_wire::payload::Notify;
use meshsec_wire::registry::{KeMethod, NotifyType, ProtocolId};

use crate::event::{Failure, PeerId};

/// What went wrong, as a label (a counter, a log line, a metric).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorKind {
    // -- Invalid messages --
    /// The IKE header does not parse.
    Unparseable,
    /// An IKE_SA_INIT request larger than any honest one.
    TooLarge,
    /// Cleartext payloads that do not parse, or break the placement rules.
    InvalidCleartext,
    /// The Encrypted payload does not authenticate or decrypt.
    Undecryptable,
    /// A fragment beyond the limits (count, size) of reassembly.
    BadFragment,
    /// Decrypted payloads that do not parse, or break the placement rules.
    InvalidSyntax,
    // -- Stale, duplicate, unexpected --
    /// No IKE SA with this SPI.
    UnknownSpi,
    /// A response to no request of ours (late, duplicate, or unsolicited).
    UnexpectedResponse,
    /// A request whose Message ID is not the next one (RFC 7296 §2.3).
    UnexpectedMessageId,
    /// An exchange the IKE SA cannot take in its state.
    WrongState,
    /// A request answered again from the response cache.
    Retransmission,
    /// A datagram with the Message ID of a request we answered that is not a copy of that
    /// request from where it came (a bare header, a forgery, another address): not answered.
    NotARetransmission,
    /// An authenticated message with octets after its last inner payload, taken as padding
    /// (RFC 7296 §3.14; OpenIKED's liveness check): handled, only counted.
    TrailingOctets,
    // -- Resource limits (unauthenticated input) --
    /// An IKE_SA_INIT from an address no peer is configured at or accepts.
    UnknownSource,
    /// Too many half-open IKE SAs.
    HalfOpenLimit,
    /// A half-open IKE SA dropped to make room for a newer one (its source's bound, or a
    /// full table and a request with a valid cookie).
    HalfOpenEvicted,
    /// Answered with a COOKIE instead of state (RFC 7296 §2.6).
    CookieRequired,
    /// A stateless answer suppressed by the per-source rate limit.
    RateLimited,
    // -- Peer incompatible --
    /// No proposal of the peer's is acceptable.
    NoProposalChosen,
    /// The peer's key exchange is not of the group we chose.
    InvalidKePayload,
    /// No overlap of traffic selectors.
    TsUnacceptable,
    /// Tunnel vs transport disagreement.
    ModeMismatch,
    /// The peer refused our request with an error Notify.
    PeerRefused,
    // -- Authentication --
    /// Wrong identity or AUTH.
    AuthenticationFailed,
    // -- Misbehaviour --
    /// A response that breaks the protocol (a proposal we did not offer, a bad KE,
    /// selectors outside ours...).
    PeerMisbehaved,
    // -- Not now --
    /// We answered TEMPORARY_FAILURE: the request collides with our own exchange (§2.25).
    TemporaryFailure,
    /// We answered CHILD_SA_NOT_FOUND: the peer asked to rekey a CHILD SA we do not have.
    ChildSaNotFound,
    // -- Ours --
    /// Our own failure (random numbers, sealing).
    Internal,
    /// No answer after the last retransmission.
    Timeout,
}

impl ErrorKind {
    /// Every kind, in a stable order.
    pub const ALL: [ErrorKind; 29] = [
        ErrorKind::Unparseable,
        ErrorKind::TooLarge,
        ErrorKind::InvalidCleartext,
        ErrorKind::Undecryptable,
        ErrorKind::BadFragment,
        ErrorKind::InvalidSyntax,
        ErrorKind::UnknownSpi,
        ErrorKind::UnexpectedResponse,
        ErrorKind::UnexpectedMessageId,
        ErrorKind::WrongState,
        ErrorKind::Retransmission,
        ErrorKind::NotARetransmission,
        ErrorKind::TrailingOctets,
        ErrorKind::UnknownSource,
        ErrorKind::HalfOpenLimit,
        ErrorKind::HalfOpenEvicted,
        ErrorKind::CookieRequired,
        ErrorKind::RateLimited,
        ErrorKind::NoProposalChosen,
        ErrorKind::InvalidKePayload,
        ErrorKind::TsUnacceptable,
        ErrorKind::ModeMismatch,
        ErrorKind::PeerRefused,
        ErrorKind::AuthenticationFailed,
        ErrorKind::PeerMisbehaved,
        ErrorKind::TemporaryFailure,
        ErrorKind::ChildSaNotFound,
        ErrorKind::Internal,
        ErrorKind::Timeout,
    ];

    /// Its name in counters and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Unparseable => "unparseable",
            ErrorKind::TooLarge => "too_large",
            ErrorKind::InvalidCleartext => "invalid_cleartext",
            ErrorKind::Undecryptable => "undecryptable",
            ErrorKind::BadFragment => "bad_fragment",
            ErrorKind::InvalidSyntax => "invalid_syntax",
            ErrorKind::UnknownSpi => "unknown_spi",
            ErrorKind::UnexpectedResponse => "unexpected_response",
            ErrorKind::UnexpectedMessageId => "unexpected_message_id",
            ErrorKind::WrongState => "wrong_state",
            ErrorKind::Retransmission => "retransmission",
            ErrorKind::NotARetransmission => "not_a_retransmission",
            ErrorKind::TrailingOctets => "trailing_octets",
            ErrorKind::UnknownSource => "unknown_source",
            ErrorKind::HalfOpenLimit => "half_open_limit",
            ErrorKind::HalfOpenEvicted => "half_open_evicted",
            ErrorKind::CookieRequired => "cookie_required",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::NoProposalChosen => "no_proposal_chosen",
            ErrorKind::InvalidKePayload => "invalid_ke_payload",
            ErrorKind::TsUnacceptable => "ts_unacceptable",
            ErrorKind::ModeMismatch => "mode_mismatch",
            ErrorKind::PeerRefused => "peer_refused",
            ErrorKind::AuthenticationFailed => "authentication_failed",
            ErrorKind::PeerMisbehaved => "peer_misbehaved",
            ErrorKind::TemporaryFailure => "temporary_failure",
            ErrorKind::ChildSaNotFound => "child_sa_not_found",
            ErrorKind::Internal => "internal",
            ErrorKind::Timeout => "timeout",
        }
    }

    /// The kind of error a failure comes from.
    pub(crate) fn of(f: &Failure) -> ErrorKind {
        match f {
            Failure::NoProposalChosen(_) => ErrorKind::NoProposalChosen,
            Failure::PeerRefused { .. } => ErrorKind::PeerRefused,
            Failure::IdentityMismatch { .. }
            | Failure::AddressMismatch { .. }
            | Failure::AuthenticationFailed { .. }
            | Failure::Certificate(_)
            | Failure::AuthMethodMismatch { .. }
            | Failure::SignatureInvalid { .. } => ErrorKind::AuthenticationFailed,
            Failure::UnknownSource { .. } => ErrorKind::UnknownSource,
            Failure::TsUnacceptable(_) | Failure::NarrowingRefused { .. } => {
                ErrorKind::TsUnacceptable
            }
            Failure::ModeMismatch { .. } => ErrorKind::ModeMismatch,
            Failure::Timeout { .. } => ErrorKind::Timeout,
            Failure::Protocol { .. } => ErrorKind::PeerMisbehaved,
            Failure::Local { .. } => ErrorKind::Internal,
        }
    }

    fn index(self) -> usize {
        ErrorKind::ALL.iter().position(|k| *k == self).unwrap_or(0)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One error: its kind, the Notify the peer gets if we answer, and the explanation for the
/// operator if it ends a negotiation.
#[derive(Debug, Clone)]
pub(crate) struct IkeError {
    pub(crate) kind: ErrorKind,
    /// Data of the Notify (INVALID_KE_PAYLOAD: the group we want; CHILD_SA_NOT_FOUND: the
    /// SPI).
    notify: Option<Box<Notify<'static>>>,
    /// The failure to report, and the peer it concerns (when known).
    pub(crate) failure: Option<Box<(Option<PeerId>, Failure)>>,
    /// The sender had not authenticated: the failure is reported as a refusal that changes
    /// nothing of the peer's state ([`Event::Refused`](crate::Event::Refused)).
    pub(crate) unauthenticated: bool,
}

impl IkeError {
    /// An error of `kind` without explanation (stale, invalid, internal...).
    pub(crate) fn new(kind: ErrorKind) -> IkeError {
        IkeError {
            kind,
            notify: None,
            failure: None,
            unauthenticated: false,
        }
    }

    /// An error that ends a negotiation with `peer`, explained by `failure` (its kind follows
    /// from the failure).
    pub(crate) fn failed(peer: Option<PeerId>, failure: Failure) -> IkeError {
        IkeError {
            kind: ErrorKind::of(&failure),
            notify: None,
            failure: Some(Box::new((peer, failure))),
            unauthenticated: false,
        }
    }

    /// A broken message of `kind` that ends a negotiation: `detail` says what was wrong.
    pub(crate) fn protocol(
        kind: ErrorKind,
        peer: Option<PeerId>,
        detail: impl Into<String>,
    ) -> IkeError {
        IkeError {
            kind,
            notify: None,
            failure: Some(Box::new((
                peer,
                Failure::Protocol {
                    detail: detail.into(),
                },
            ))),
            unauthenticated: false,
        }
    }

    /// We want key exchange `method` (INVALID_KE_PAYLOAD carries it).
    pub(crate) fn invalid_ke(method: KeMethod) -> IkeError {
        IkeError {
            kind: ErrorKind::InvalidKePayload,
            notify: Some(Box::new(Notify::new(
                NotifyType::INVALID_KE_PAYLOAD,
                method.0.to_be_bytes().to_vec(),
            ))),
            failure: None,
            unauthenticated: false,
        }
    }

    /// A message we cannot parse: INVALID_SYNTAX, or for a critical payload we do not know,
    /// UNSUPPORTED_CRITICAL_PAYLOAD naming its type (RFC 7296 §2.5, §3.10.1).
    pub(crate) fn malformed(e: &meshsec_wire::Error) -> IkeError {
        let notify = match e {
            meshsec_wire::Error::UnsupportedCriticalPayload(ty) => {
                Some(Box::new(Notify::new(e.notify_type(), vec![ty.0])))
            }
            _ => None,
        };
        IkeError {
            kind: ErrorKind::InvalidSyntax,
            notify,
            failure: None,
            unauthenticated: false,
        }
    }

    /// The peer asked to rekey a CHILD SA we do not have (it names it by `spi`, its inbound).
    pub(crate) fn child_sa_not_found(spi: OutboundSpi) -> IkeError {
        let mut n = Notify::new(NotifyType::CHILD_SA_NOT_FOUND, Vec::new());
        n.protocol = ProtocolId::ESP;
        n.spi = std::borrow::Cow::Owned(spi.to_be_bytes().to_vec());
        IkeError {
            kind: ErrorKind::ChildSaNotFound,
            notify: Some(Box::new(n)),
            failure: None,
            unauthenticated: false,
        }
    }

    /// The same error, from a sender that had not authenticated.
    pub(crate) fn unauthenticated(mut self) -> IkeError {
        self.unauthenticated = true;
        self
    }

    /// The Notify a peer's *authenticated request* that failed this way is answered with;
    /// `None`: no answer. Responses and unauthenticated messages are never answered from here.
    pub(crate) fn answer(&self) -> Option<Notify<'static>> {
        if let Some(n) = &self.notify {
            return Some((**n).clone());
        }
        let ty = match self.kind {
            // A request the IKE SA cannot take now is as good as malformed (and an answer
            // keeps the sender's exchange from timing out its whole IKE SA).
            ErrorKind::InvalidSyntax | ErrorKind::PeerMisbehaved | ErrorKind::WrongState => {
                NotifyType::INVALID_SYNTAX
            }
            ErrorKind::NoProposalChosen | ErrorKind::ModeMismatch => NotifyType::NO_PROPOSAL_CHOSEN,
            ErrorKind::TsUnacceptable => NotifyType::TS_UNACCEPTABLE,
            ErrorKind::AuthenticationFailed => NotifyType::AUTHENTICATION_FAILED,
            ErrorKind::TemporaryFailure => NotifyType::TEMPORARY_FAILURE,
            _ => return None,
        };
        Some(Notify::new(ty, Vec::new()))
    }
}

impl From<ErrorKind> for IkeError {
    fn from(kind: ErrorKind) -> IkeError {
        IkeError::new(kind)
    }
}

/// How often each [`ErrorKind`] happened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorCounters {
    counts: [u64; ErrorKind::ALL.len()],
}

impl ErrorCounters {
    /// Counts one error of `kind`.
    pub(crate) fn count(&mut self, kind: ErrorKind) {
        if let Some(c) = self.counts.get_mut(kind.index()) {
            *c += 1;
        }
    }

    /// Errors of `kind` so far.
    pub fn get(&self, kind: ErrorKind) -> u64 {
        self.counts.get(kind.index()).copied().unwrap_or(0)
    }

    /// The kinds that happened, with their counts.
    pub fn nonzero(&self) -> impl Iterator<Item = (ErrorKind, u64)> + '_ {
        ErrorKind::ALL
            .iter()
            .map(|k| (*k, self.get(*k)))
            .filter(|(_, n)| *n > 0)
    }
}
