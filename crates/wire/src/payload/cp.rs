//! The Configuration payload (RFC 7296 §3.15).

use std::borrow::Cow;

use crate::codec::{Reader, Writer, count_u16};
use crate::error::{Error, Result};
use crate::payload::Bytes;
use crate::registry::{CfgAttrType, CfgType};

/// The reserved top bit of a configuration attribute's type field.
const ATTR_RESERVED_BIT: u16 = 0x8000;

/// CP payload body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpPayload<'a> {
    /// CFG_REQUEST, CFG_REPLY, CFG_SET or CFG_ACK.
    pub cfg_type: CfgType,
    /// The attributes (an empty value in a request asks for any value).
    pub attributes: Vec<CfgAttribute<'a>>,
}

/// One configuration attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CfgAttribute<'a> {
    /// Attribute Type (15 bits).
    pub ty: CfgAttrType,
    /// The value (possibly empty).
    pub value: Bytes<'a>,
}

impl<'a> CpPayload<'a> {
    pub(crate) fn parse(bytes: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(bytes, "CP payload");
        let cfg_type = CfgType(r.u8()?);
        let _reserved = r.take(3)?;
        let mut attributes = Vec::new();
        while !r.is_empty() {
            let ty = CfgAttrType(r.u16()? & !ATTR_RESERVED_BIT);
            let n = usize::from(r.u16()?);
            let value = Cow::Borrowed(r.take(n)?);
            attributes.push(CfgAttribute { ty, value });
        }
        Ok(CpPayload {
            cfg_type,
            attributes,
        })
    }

    pub(crate) fn emit(&self, w: &mut Writer<'_>) -> Result<()> {
        w.u8(self.cfg_type.0);
        w.bytes(&[0, 0, 0]);
        for a in &self.attributes {
            if a.ty.0 & ATTR_RESERVED_BIT != 0 {
                return Err(Error::TooLong {
                    what: "CP attribute type (15 bits)",
                });
            }
            w.u16(a.ty.0);
            w.u16(count_u16(a.value.len(), "CP attribute value")?);
            w.bytes(&a.value);
        }
        Ok(())
    }
}
