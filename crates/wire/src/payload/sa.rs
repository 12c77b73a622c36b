//! The Security Association payload (RFC 7296 §3.3): proposals, transforms and their attributes.

use std::borrow::Cow;

use crate::codec::{Reader, Writer, count_u8};
use crate::error::{Error, Result};
use crate::payload::Bytes;
use crate::registry::{
    EncrId, EsnId, IntegId, KeMethod, PrfId, ProtocolId, TransformAttrType, TransformType,
};

/// "Last Substruc" value of a proposal that is followed by another one.
const MORE_PROPOSALS: u8 = 2;
/// "Last Substruc" value of a transform that is followed by another one.
const MORE_TRANSFORMS: u8 = 3;
/// The Attribute Format bit: set for TV (2-octet value), clear for TLV.
const ATTR_FORMAT_TV: u16 = 0x8000;

/// SA payload body: one or more proposals, in the sender's order of preference.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SaPayload<'a> {
    /// The proposals (RFC 7296 §3.3.1).
    pub proposals: Vec<Proposal<'a>>,
}

/// One proposal: a protocol, an SPI and the transforms offered for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal<'a> {
    /// Proposal number (1 for the first, +1 for each next; a responder echoes the chosen one).
    pub number: u8,
    /// IKE, AH or ESP.
    pub protocol: ProtocolId,
    /// The sender's inbound SPI: empty in IKE_SA_INIT, 8 octets for an IKE rekey, 4 for ESP/AH.
    pub spi: Bytes<'a>,
    /// The transforms; several of one type are alternatives.
    pub transforms: Vec<Transform<'a>>,
}

/// One transform (RFC 7296 §3.3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transform<'a> {
    /// The kind of algorithm (ENCR, PRF, INTEG, KE, ESN...).
    pub ty: TransformType,
    /// The algorithm, from the registry of `ty` (see the typed accessors).
    pub id: u16,
    /// Attributes; in practice only KEY_LENGTH exists.
    pub attributes: Vec<TransformAttribute<'a>>,
}

/// A transform attribute (RFC 7296 §3.3.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransformAttribute<'a> {
    /// Type/Value format: a 2-octet value in place of the length (Key Length uses this).
    Tv {
        /// Attribute type (15 bits).
        ty: TransformAttrType,
        /// The value.
        value: u16,
    },
    /// Type/Length/Value format.
    Tlv {
        /// Attribute type (15 bits).
        ty: TransformAttrType,
        /// The value.
        value: Bytes<'a>,
    },
}

impl<'a> Transform<'a> {
    /// A transform without attributes.
    pub fn new(ty: TransformType, id: u16) -> Self {
        Transform {
            ty,
            id,
            attributes: Vec::new(),
        }
    }

    /// An encryption transform, with a Key Length attribute when `key_bits` is given (needed
    /// for AES: RFC 7296 §3.3.5).
    pub fn encr(id: EncrId, key_bits: Option<u16>) -> Self {
        let mut t = Self::new(TransformType::ENCR, id.0);
        if let Some(bits) = key_bits {
            t.attributes.push(TransformAttribute::Tv {
                ty: TransformAttrType::KEY_LENGTH,
                value: bits,
            });
        }
        t
    }

    /// A PRF transform.
    pub fn prf(id: PrfId) -> Self {
        Self::new(TransformType::PRF, id.0)
    }

    /// An integrity transform.
    pub fn integ(id: IntegId) -> Self {
        Self::new(TransformType::INTEG, id.0)
    }

    /// A key exchange method (DH group / KEM) transform.
    pub fn ke(id: KeMethod) -> Self {
        Self::new(TransformType::KE, id.0)
    }

    /// An ESN transform.
    pub fn esn(id: EsnId) -> Self {
        Self::new(TransformType::ESN, id.0)
    }

    /// The Key Length attribute in bits, if present.
    pub fn key_length(&self) -> Option<u16> {
        self.attributes.iter().find_map(|a| match a {
            TransformAttribute::Tv { ty, value } if *ty == TransformAttrType::KEY_LENGTH => {
                Some(*value)
            }
            _ => None,
        })
    }

    /// Parses one whole transform (as cut by its Transform Length); returns it and whether
    /// the sender said more transforms follow.
    fn parse(bytes: &'a [u8]) -> Result<(Self, bool)> {
        let mut r = Reader::new(bytes, "SA transform");
        let more = match r.u8()? {
            0 => false,
            MORE_TRANSFORMS => true,
            _ => {
                return Err(Error::BadValue {
                    what: "SA transform",
                    problem: "Last Substruc must be 0 or 3",
                });
            }
        };
        let _reserved = r.u8()?;
        let _len = r.u16()?;
        let ty = TransformType(r.u8()?);
        let _reserved = r.u8()?;
        let id = r.u16()?;
        let mut attrs = Reader::new(r.take_rest(), "SA transform attribute");
        let mut attributes = Vec::new();
        while !attrs.is_empty() {
            let word = attrs.u16()?;
            let ty = TransformAttrType(word & !ATTR_FORMAT_TV);
            if word & ATTR_FORMAT_TV != 0 {
                attributes.push(TransformAttribute::Tv {
                    ty,
                    value: attrs.u16()?,
                });
            } else {
                let n = usize::from(attrs.u16()?);
                attributes.push(TransformAttribute::Tlv {
                    ty,
                    value: Cow::Borrowed(attrs.take(n)?),
                });
            }
        }
        Ok((Transform { ty, id, attributes }, more))
    }

    fn emit(&self, w: &mut Writer<'_>, last: bool) -> Result<()> {
        let start = w.position();
        w.u8(if last { 0 } else { MORE_TRANSFORMS });
        w.u8(0);
        let len = w.reserve_u16(start, "SA transform");
        w.u8(self.ty.0);
        w.u8(0);
        w.u16(self.id);
        for a in &self.attributes {
            match a {
                TransformAttribute::Tv { ty, value } => {
                    attr_type_fits(*ty)?;
                    w.u16(ty.0 | ATTR_FORMAT_TV);
                    w.u16(*value);
                }
                TransformAttribute::Tlv { ty, value } => {
                    attr_type_fits(*ty)?;
                    w.u16(ty.0);
                    w.u16(crate::codec::count_u16(
                        value.len(),
                        "SA transform attribute",
                    )?);
                    w.bytes(value);
                }
            }
        }
        w.patch_len_u16(len)
    }

    /// The algorithm as an encryption ID (meaningful when `ty` is ENCR).
    pub fn encr_id(&self) -> EncrId {
        EncrId(self.id)
    }

    /// The algorithm as a PRF ID (meaningful when `ty` is PRF).
    pub fn prf_id(&self) -> PrfId {
        PrfId(self.id)
    }

    /// The algorithm as an integrity ID (meaningful when `ty` is INTEG).
    pub fn integ_id(&self) -> IntegId {
        IntegId(self.id)
    }

    /// The algorithm as a key exchange method (meaningful when `ty` is KE or ADDKEn).
    pub fn ke_method(&self) -> KeMethod {
        KeMethod(self.id)
    }

    /// Copies borrowed data so the value outlives the buffer it was parsed from.
    pub fn into_owned(self) -> Transform<'static> {
        Transform {
            ty: self.ty,
            id: self.id,
            attributes: self
                .attributes
                .into_iter()
                .map(|a| match a {
                    TransformAttribute::Tv { ty, value } => TransformAttribute::Tv { ty, value },
                    TransformAttribute::Tlv { ty, value } => TransformAttribute::Tlv {
                        ty,
                        value: Cow::Owned(value.into_owned()),
                    },
                })
                .collect(),
        }
    }
}

fn attr_type_fits(ty: TransformAttrType) -> Result<()> {
    if ty.0 & ATTR_FORMAT_TV != 0 {
        return Err(Error::TooLong {
            what: "SA transform attribute type (15 bits)",
        });
    }
    Ok(())
}

impl<'a> Proposal<'a> {
    /// Transforms of one type, in the order offered.
    pub fn transforms_of(&self, ty: TransformType) -> impl Iterator<Item = &Transform<'a>> {
        self.transforms.iter().filter(move |t| t.ty == ty)
    }

    /// Parses one whole proposal (as cut by its Proposal Length); returns it and whether the
    /// sender said more proposals follow.
    fn parse(bytes: &'a [u8]) -> Result<(Self, bool)> {
        let mut r = Reader::new(bytes, "SA proposal");
        let more = match r.u8()? {
            0 => false,
            MORE_PROPOSALS => true,
            _ => {
                return Err(Error::BadValue {
                    what: "SA proposal",
                    problem: "Last Substruc must be 0 or 2",
                });
            }
        };
        let _reserved = r.u8()?;
        let _len = r.u16()?;
        let number = r.u8()?;
        let protocol = ProtocolId(r.u8()?);
        let spi_size = usize::from(r.u8()?);
        let declared = usize::from(r.u8()?);
        let spi = Cow::Borrowed(r.take(spi_size)?);
        let mut transforms = Vec::new();
        let mut more_transforms = !r.is_empty();
        while more_transforms {
            let bytes = r.take_length_prefixed(2, 8, "SA transform")?;
            let (t, more) = Transform::parse(bytes)?;
            transforms.push(t);
            more_transforms = more;
            if more && r.is_empty() {
                return Err(Error::BadLength {
                    what: "SA proposal",
                    problem: "a transform says more follow but the proposal ends",
                });
            }
        }
        r.expect_end("bytes after the last transform")?;
        if transforms.len() != declared {
            return Err(Error::BadValue {
                what: "SA proposal",
                problem: "Num Transforms does not match the transforms present",
            });
        }
        Ok((
            Proposal {
                number,
                protocol,
                spi,
                transforms,
            },
            more,
        ))
    }

    fn emit(&self, w: &mut Writer<'_>, last: bool) -> Result<()> {
        let start = w.position();
        w.u8(if last { 0 } else { MORE_PROPOSALS });
        w.u8(0);
        let len = w.reserve_u16(start, "SA proposal");
        w.u8(self.number);
        w.u8(self.protocol.0);
        w.u8(count_u8(self.spi.len(), "SA proposal SPI")?);
        w.u8(count_u8(self.transforms.len(), "SA proposal transforms")?);
        w.bytes(&self.spi);
        let n = self.transforms.len();
        for (i, t) in self.transforms.iter().enumerate() {
            t.emit(w, i + 1 == n)?;
        }
        w.patch_len_u16(len)
    }

    /// Copies borrowed data so the value outlives the buffer it was parsed from.
    pub fn into_owned(self) -> Proposal<'static> {
        Proposal {
            number: self.number,
            protocol: self.protocol,
            spi: Cow::Owned(self.spi.into_owned()),
            transforms: self
                .transforms
                .into_iter()
                .map(Transform::into_owned)
                .collect(),
        }
    }
}

impl<'a> SaPayload<'a> {
    pub(crate) fn parse(bytes: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(bytes, "SA payload");
        let mut proposals = Vec::new();
        if r.is_empty() {
            return Err(Error::BadLength {
                what: "SA payload",
                problem: "no proposal",
            });
        }
        loop {
            let (p, more) = Proposal::parse(r.take_length_prefixed(2, 8, "SA proposal")?)?;
            proposals.push(p);
            if !more {
                break;
            }
            if r.is_empty() {
                return Err(Error::BadLength {
                    what: "SA payload",
                    problem: "a proposal says more follow but the payload ends",
                });
            }
        }
        r.expect_end("bytes after the last proposal")?;
        Ok(SaPayload { proposals })
    }

    pub(crate) fn emit(&self, w: &mut Writer<'_>) -> Result<()> {
        let n = self.proposals.len();
        for (i, p) in self.proposals.iter().enumerate() {
            p.emit(w, i + 1 == n)?;
        }
        Ok(())
    }

    /// Copies borrowed data so the value outlives the buffer it was parsed from.
    pub fn into_owned(self) -> SaPayload<'static> {
        SaPayload {
            proposals: self
                .proposals
                .into_iter()
                .map(Proposal::into_owned)
                .collect(),
        }
    }
}
