//! The Identification payloads IDi and IDr (RFC 7296 §3.5).

use std::borrow::Cow;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::codec::{Reader, Writer};
use crate::error::{Error, Result};
use crate::payload::Bytes;
use crate::registry::IdType;

/// An IKE identity as carried in IDi/IDr.
///
/// The address types are decoded (and their length checked); string-like types stay octets,
/// because RFC 7296 does not promise UTF-8 and the AUTH computation needs the exact bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity<'a> {
    /// ID_IPV4_ADDR.
    Ipv4(Ipv4Addr),
    /// ID_IPV6_ADDR.
    Ipv6(Ipv6Addr),
    /// ID_FQDN, e.g. `left.example.org` (no terminator).
    Fqdn(Bytes<'a>),
    /// ID_RFC822_ADDR, e.g. `ops@example.org`.
    Rfc822(Bytes<'a>),
    /// ID_DER_ASN1_DN: the DER encoding of an X.500 Distinguished Name.
    DerAsn1Dn(Bytes<'a>),
    /// ID_KEY_ID: opaque octets.
    KeyId(Bytes<'a>),
    /// Any other ID type, kept as it came.
    Other {
        /// The ID type.
        id_type: IdType,
        /// The identification data.
        data: Bytes<'a>,
    },
}

impl<'a> Identity<'a> {
    /// Whether `other` names the same entity: FQDN and RFC 822 identities compare without
    /// regard to ASCII case (DNS names are case-insensitive, RFC 4343; strongSwan compares
    /// both so), every other type octet for octet. The AUTH payload is still computed over
    /// the octets that were sent.
    pub fn same_as(&self, other: &Identity<'_>) -> bool {
        match (self, other) {
            (Identity::Fqdn(a), Identity::Fqdn(b)) | (Identity::Rfc822(a), Identity::Rfc822(b)) => {
                a.eq_ignore_ascii_case(b)
            }
            _ => self == other,
        }
    }

    /// The ID Type octet for this identity.
    pub fn id_type(&self) -> IdType {
        match self {
            Identity::Ipv4(_) => IdType::IPV4_ADDR,
            Identity::Ipv6(_) => IdType::IPV6_ADDR,
            Identity::Fqdn(_) => IdType::FQDN,
            Identity::Rfc822(_) => IdType::RFC822_ADDR,
            Identity::DerAsn1Dn(_) => IdType::DER_ASN1_DN,
            Identity::KeyId(_) => IdType::KEY_ID,
            Identity::Other { id_type, .. } => *id_type,
        }
    }

    pub(crate) fn parse(bytes: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(bytes, "ID payload");
        let id_type = IdType(r.u8()?);
        let _reserved = r.take(3)?;
        let data = r.take_rest();
        let wrong_len = |problem| Error::BadLength {
            what: "ID payload",
            problem,
        };
        Ok(match id_type {
            IdType::IPV4_ADDR => Identity::Ipv4(Ipv4Addr::from(
                <[u8; 4]>::try_from(data)
                    .map_err(|_| wrong_len("ID_IPV4_ADDR must be 4 octets"))?,
            )),
            IdType::IPV6_ADDR => Identity::Ipv6(Ipv6Addr::from(
                <[u8; 16]>::try_from(data)
                    .map_err(|_| wrong_len("ID_IPV6_ADDR must be 16 octets"))?,
            )),
            IdType::FQDN => Identity::Fqdn(Cow::Borrowed(data)),
            IdType::RFC822_ADDR => Identity::Rfc822(Cow::Borrowed(data)),
            IdType::DER_ASN1_DN => Identity::DerAsn1Dn(Cow::Borrowed(data)),
            IdType::KEY_ID => Identity::KeyId(Cow::Borrowed(data)),
            id_type => Identity::Other {
                id_type,
                data: Cow::Borrowed(data),
            },
        })
    }

    /// Writes the payload body: ID Type, 3 reserved octets, data. This is also exactly the
    /// octet string that RFC 7296 §2.15 MACs into the AUTH payload (`IDi'`/`IDr'`).
    pub fn emit(&self, w: &mut Writer<'_>) -> Result<()> {
        w.u8(self.id_type().0);
        w.bytes(&[0, 0, 0]);
        match self {
            Identity::Ipv4(a) => w.bytes(&a.octets()),
            Identity::Ipv6(a) => w.bytes(&a.octets()),
            Identity::Fqdn(d)
            | Identity::Rfc822(d)
            | Identity::DerAsn1Dn(d)
            | Identity::KeyId(d)
            | Identity::Other { data: d, .. } => w.bytes(d),
        }
        Ok(())
    }
}

impl core::fmt::Display for Identity<'_> {
    /// Human-readable form for logs and failure explanations, e.g. `fqdn:left.example.org`.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let text = |d: &[u8]| String::from_utf8_lossy(d).into_owned();
        match self {
            Identity::Ipv4(a) => write!(f, "ipv4:{a}"),
            Identity::Ipv6(a) => write!(f, "ipv6:{a}"),
            Identity::Fqdn(d) => write!(f, "fqdn:{}", text(d)),
            Identity::Rfc822(d) => write!(f, "email:{}", text(d)),
            Identity::DerAsn1Dn(d) => write!(f, "dn:<{} octets of DER>", d.len()),
            Identity::KeyId(d) => write!(f, "keyid:{}", hex_string(d)),
            Identity::Other { id_type, data } => write!(f, "{id_type}:{}", hex_string(data)),
        }
    }
}

fn hex_string(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}
