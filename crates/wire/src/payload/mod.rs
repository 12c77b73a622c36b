//! IKEv2 payloads (RFC 7296 §3.2–§3.16, RFC 7383 §2.5) and the generic payload chain.
//!
//! Parsed payloads borrow from the datagram ([`Bytes`] is a `Cow`), so parsing copies no
//! payload data; values built by the engines own their bytes. Both compare equal by content,
//! which is what makes `parse(emit(x)) == x` checkable.

mod auth;
mod cert;
mod cp;
mod delete;
mod encrypted;
mod id;
mod ke;
mod notify;
mod sa;
mod ts;

use std::borrow::Cow;
use std::fmt;

pub use auth::AuthPayload;
pub use cert::CertPayload;
pub use cp::{CfgAttribute, CpPayload};
pub use delete::Delete;
pub use encrypted::{Encrypted, EncryptedFragment};
pub use id::Identity;
pub use ke::KePayload;
pub use notify::Notify;
pub use sa::{Proposal, SaPayload, Transform, TransformAttribute};
pub use ts::{AddrSelector, TrafficSelector, TsPayload};

use crate::codec::{Reader, Writer};
use crate::error::{Error, Result};
use crate::registry::{NotifyType, PayloadType};

/// Octets that are either borrowed from a parsed datagram or owned by a value being built.
pub type Bytes<'a> = Cow<'a, [u8]>;

/// Length of the generic payload header (RFC 7296 §3.2).
pub const GENERIC_HEADER_LEN: usize = 4;

/// The Critical bit in the generic payload header.
const CRITICAL: u8 = 0x80;

/// One payload: the critical flag of its generic header and its typed body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload<'a> {
    /// The sender's critical flag. Only meaningful for payload types the receiver does not
    /// know; kept so that every message round-trips.
    pub critical: bool,
    /// The payload's content.
    pub body: PayloadBody<'a>,
}

/// The content of a payload, by type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayloadBody<'a> {
    /// Security Association (SA).
    Sa(SaPayload<'a>),
    /// Key Exchange (KE).
    Ke(KePayload<'a>),
    /// Identification - Initiator (IDi).
    IdI(Identity<'a>),
    /// Identification - Responder (IDr).
    IdR(Identity<'a>),
    /// Certificate (CERT).
    Cert(CertPayload<'a>),
    /// Certificate Request (CERTREQ).
    CertReq(CertPayload<'a>),
    /// Authentication (AUTH).
    Auth(AuthPayload<'a>),
    /// Nonce (Ni, Nr): 16 to 256 octets.
    Nonce(Bytes<'a>),
    /// Notify (N).
    Notify(Notify<'a>),
    /// Delete (D).
    Delete(Delete<'a>),
    /// Vendor ID (V).
    VendorId(Bytes<'a>),
    /// Traffic Selector - Initiator (TSi).
    TsI(TsPayload<'a>),
    /// Traffic Selector - Responder (TSr).
    TsR(TsPayload<'a>),
    /// Encrypted and Authenticated (SK).
    Sk(Encrypted<'a>),
    /// Encrypted and Authenticated Fragment (SKF).
    Skf(EncryptedFragment<'a>),
    /// Configuration (CP).
    Cp(CpPayload<'a>),
    /// Extensible Authentication (EAP): the EAP message, opaque here.
    Eap(Bytes<'a>),
    /// A payload type we do not know, with its critical bit clear: skipped by the engine, kept
    /// here so the message round-trips.
    Unknown {
        /// The payload type.
        ty: PayloadType,
        /// The payload body.
        data: Bytes<'a>,
    },
}

/// RFC 7296 §3.9: "Nonce Data ... MUST be at least 128 bits in size ... and MUST NOT be more
/// than 2048 bits".
pub const NONCE_LEN: core::ops::RangeInclusive<usize> = 16..=256;

impl<'a> Payload<'a> {
    /// A payload with the critical bit clear.
    pub fn new(body: PayloadBody<'a>) -> Self {
        Payload {
            critical: false,
            body,
        }
    }

    /// The payload type.
    pub fn payload_type(&self) -> PayloadType {
        self.body.payload_type()
    }

    /// The Notify body, if this is a Notify payload.
    pub fn as_notify(&self) -> Option<&Notify<'a>> {
        match &self.body {
            PayloadBody::Notify(n) => Some(n),
            _ => None,
        }
    }
}

impl<'a> From<PayloadBody<'a>> for Payload<'a> {
    fn from(body: PayloadBody<'a>) -> Self {
        Payload::new(body)
    }
}

impl<'a> PayloadBody<'a> {
    /// The payload type of this body.
    pub fn payload_type(&self) -> PayloadType {
        match self {
            PayloadBody::Sa(_) => PayloadType::SA,
            PayloadBody::Ke(_) => PayloadType::KE,
            PayloadBody::IdI(_) => PayloadType::IDI,
            PayloadBody::IdR(_) => PayloadType::IDR,
            PayloadBody::Cert(_) => PayloadType::CERT,
            PayloadBody::CertReq(_) => PayloadType::CERTREQ,
            PayloadBody::Auth(_) => PayloadType::AUTH,
            PayloadBody::Nonce(_) => PayloadType::NONCE,
            PayloadBody::Notify(_) => PayloadType::NOTIFY,
            PayloadBody::Delete(_) => PayloadType::DELETE,
            PayloadBody::VendorId(_) => PayloadType::VENDOR_ID,
            PayloadBody::TsI(_) => PayloadType::TSI,
            PayloadBody::TsR(_) => PayloadType::TSR,
            PayloadBody::Sk(_) => PayloadType::SK,
            PayloadBody::Skf(_) => PayloadType::SKF,
            PayloadBody::Cp(_) => PayloadType::CP,
            PayloadBody::Eap(_) => PayloadType::EAP,
            PayloadBody::Unknown { ty, .. } => *ty,
        }
    }

    /// Parses the body of a payload of type `ty`. `next` is the generic header's Next Payload
    /// field, which SK and SKF keep (it names their first inner payload).
    fn parse(ty: PayloadType, next: PayloadType, critical: bool, body: &'a [u8]) -> Result<Self> {
        let borrowed = Cow::Borrowed(body);
        Ok(match ty {
            PayloadType::SA => PayloadBody::Sa(SaPayload::parse(body)?),
            PayloadType::KE => PayloadBody::Ke(KePayload::parse(body)?),
            PayloadType::IDI => PayloadBody::IdI(Identity::parse(body)?),
            PayloadType::IDR => PayloadBody::IdR(Identity::parse(body)?),
            PayloadType::CERT => PayloadBody::Cert(CertPayload::parse(body, "CERT payload")?),
            PayloadType::CERTREQ => {
                PayloadBody::CertReq(CertPayload::parse(body, "CERTREQ payload")?)
            }
            PayloadType::AUTH => PayloadBody::Auth(AuthPayload::parse(body)?),
            PayloadType::NONCE => {
                if !NONCE_LEN.contains(&body.len()) {
                    return Err(Error::BadLength {
                        what: "Nonce payload",
                        problem: "Nonce Data must be 16 to 256 octets",
                    });
                }
                PayloadBody::Nonce(borrowed)
            }
            PayloadType::NOTIFY => PayloadBody::Notify(Notify::parse(body)?),
            PayloadType::DELETE => PayloadBody::Delete(Delete::parse(body)?),
            PayloadType::VENDOR_ID => PayloadBody::VendorId(borrowed),
            PayloadType::TSI => PayloadBody::TsI(TsPayload::parse(body)?),
            PayloadType::TSR => PayloadBody::TsR(TsPayload::parse(body)?),
            PayloadType::SK => PayloadBody::Sk(Encrypted::parse(next, body)),
            PayloadType::SKF => PayloadBody::Skf(EncryptedFragment::parse(next, body)?),
            PayloadType::CP => PayloadBody::Cp(CpPayload::parse(body)?),
            PayloadType::EAP => PayloadBody::Eap(borrowed),
            ty if critical => return Err(Error::UnsupportedCriticalPayload(ty)),
            ty => PayloadBody::Unknown { ty, data: borrowed },
        })
    }

    fn emit(&self, w: &mut Writer<'_>) -> Result<()> {
        match self {
            PayloadBody::Sa(p) => p.emit(w),
            PayloadBody::Ke(p) => p.emit(w),
            PayloadBody::IdI(p) | PayloadBody::IdR(p) => p.emit(w),
            PayloadBody::Cert(p) | PayloadBody::CertReq(p) => p.emit(w),
            PayloadBody::Auth(p) => p.emit(w),
            PayloadBody::Nonce(n) => {
                if !NONCE_LEN.contains(&n.len()) {
                    return Err(Error::BadLength {
                        what: "Nonce payload",
                        problem: "Nonce Data must be 16 to 256 octets",
                    });
                }
                w.bytes(n);
                Ok(())
            }
            PayloadBody::Notify(p) => p.emit(w),
            PayloadBody::Delete(p) => p.emit(w),
            PayloadBody::TsI(p) | PayloadBody::TsR(p) => p.emit(w),
            PayloadBody::Sk(p) => p.emit(w),
            PayloadBody::Skf(p) => p.emit(w),
            PayloadBody::Cp(p) => p.emit(w),
            PayloadBody::Unknown { ty, .. } if *ty == PayloadType::NONE || is_typed(*ty) => {
                Err(Error::BadValue {
                    what: "payload chain",
                    problem: "an Unknown payload must not use a type this crate parses",
                })
            }
            PayloadBody::VendorId(d)
            | PayloadBody::Eap(d)
            | PayloadBody::Unknown { data: d, .. } => {
                w.bytes(d);
                Ok(())
            }
        }
    }

    /// The Next Payload value SK/SKF put in their own header (their first inner payload).
    fn inner_next(&self) -> Option<PayloadType> {
        match self {
            PayloadBody::Sk(sk) => Some(sk.first_inner),
            PayloadBody::Skf(skf) => Some(skf.first_inner),
            _ => None,
        }
    }
}

/// True for the payload types that parse into a typed [`PayloadBody`] variant.
pub fn is_typed(ty: PayloadType) -> bool {
    matches!(
        ty,
        PayloadType::SA
            | PayloadType::KE
            | PayloadType::IDI
            | PayloadType::IDR
            | PayloadType::CERT
            | PayloadType::CERTREQ
            | PayloadType::AUTH
            | PayloadType::NONCE
            | PayloadType::NOTIFY
            | PayloadType::DELETE
            | PayloadType::VENDOR_ID
            | PayloadType::TSI
            | PayloadType::TSR
            | PayloadType::SK
            | PayloadType::SKF
            | PayloadType::CP
            | PayloadType::EAP
    )
}

impl fmt::Display for Payload<'_> {
    /// The notation of RFC 7296's diagrams, with the notify type: `SA`, `N(COOKIE)`, `SK`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.body, self.payload_type().short_name()) {
            (PayloadBody::Notify(n), _) => write!(f, "N({})", n.ty),
            (_, Some(name)) => f.write_str(name),
            (_, None) => write!(f, "{}", self.payload_type()),
        }
    }
}

/// Parses a payload chain starting with a payload of type `first` (from the IKE header, or from
/// an SK payload's header for the decrypted content).
///
/// An SK or SKF payload ends the chain and must be the last bytes. Unknown payloads with the
/// critical bit set fail the whole message with [`Error::UnsupportedCriticalPayload`]; unknown
/// non-critical ones are kept as [`PayloadBody::Unknown`].
pub fn parse_payloads(first: PayloadType, bytes: &[u8]) -> Result<Vec<Payload<'_>>> {
    let (payloads, rest) = parse_chain(first, bytes)?;
    if rest != 0 {
        return Err(Error::BadLength {
            what: "payload chain",
            problem: "bytes after the last payload (Next Payload was 0)",
        });
    }
    Ok(payloads)
}

/// The payload chain inside a decrypted SK payload, and how many octets followed its last
/// payload (Next Payload 0). Those are taken as padding, not as an error: RFC 7296 §3.14
/// leaves the padding's content to the sender, and OpenIKED 7.2 sends its liveness check as
/// an empty chain followed by four octets. The content is authenticated (its ICV passed), so
/// accepting it opens nothing to a forger.
pub fn parse_inner_payloads(first: PayloadType, bytes: &[u8]) -> Result<(Vec<Payload<'_>>, usize)> {
    parse_chain(first, bytes)
}

/// A chain from `first`; the octets left after a chain that ended with Next Payload 0.
fn parse_chain(first: PayloadType, bytes: &[u8]) -> Result<(Vec<Payload<'_>>, usize)> {
    let mut r = Reader::new(bytes, "payload chain");
    let mut payloads = Vec::new();
    let mut ty = first;
    while ty != PayloadType::NONE {
        let raw = r.take_length_prefixed(2, GENERIC_HEADER_LEN, "generic payload header")?;
        let mut h = Reader::new(raw, "generic payload header");
        let next = PayloadType(h.u8()?);
        let critical = h.u8()? & CRITICAL != 0;
        let _len = h.u16()?;
        let body = PayloadBody::parse(ty, next, critical, h.rest())?;
        let ends_chain = body.inner_next().is_some();
        payloads.push(Payload { critical, body });
        if ends_chain {
            r.expect_end("the SK/SKF payload must be the last payload")?;
            return Ok((payloads, 0));
        }
        ty = next;
    }
    Ok((payloads, r.take_rest().len()))
}

/// Emits a payload chain and returns the type of its first payload (for the IKE header's or
/// the SK payload's Next Payload field).
pub fn emit_payloads(payloads: &[Payload<'_>], out: &mut Vec<u8>) -> Result<PayloadType> {
    let mut w = Writer::new(out);
    for (i, p) in payloads.iter().enumerate() {
        let next = match (p.body.inner_next(), payloads.get(i + 1)) {
            (Some(inner), None) => inner,
            (Some(_), Some(_)) => {
                return Err(Error::BadValue {
                    what: "payload chain",
                    problem: "an SK/SKF payload must be the last payload",
                });
            }
            (None, Some(n)) => n.payload_type(),
            (None, None) => PayloadType::NONE,
        };
        let start = w.position();
        w.u8(next.0);
        w.u8(if p.critical { CRITICAL } else { 0 });
        let len = w.reserve_u16(start, "payload");
        p.body.emit(&mut w)?;
        w.patch_len_u16(len)?;
    }
    Ok(payloads
        .first()
        .map_or(PayloadType::NONE, Payload::payload_type))
}

/// Finds the first Notify of type `ty` among `payloads`.
pub fn find_notify<'p, 'a>(payloads: &'p [Payload<'a>], ty: NotifyType) -> Option<&'p Notify<'a>> {
    payloads
        .iter()
        .filter_map(Payload::as_notify)
        .find(|n| n.ty == ty)
}
