//! The Encrypted and Authenticated payload SK (RFC 7296 §3.14) and its fragment form SKF
//! (RFC 7383 §2.5). Their content is opaque here: `meshsec-crypto` decrypts it and
//! [`crate::parse_payloads`] reads the inner chain.

use std::borrow::Cow;

use crate::codec::{Reader, Writer};
use crate::error::{Error, Result};
use crate::payload::Bytes;
use crate::registry::PayloadType;

/// SK payload body.
///
/// Its generic header's Next Payload field names the first payload *inside* the encryption, so
/// it is kept here; an SK payload is always the last payload of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encrypted<'a> {
    /// Type of the first inner payload.
    pub first_inner: PayloadType,
    /// Initialization Vector | Encrypted IKE Payloads (+ padding) | Integrity Checksum Data.
    pub data: Bytes<'a>,
}

/// SKF payload body: one fragment of an SK payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptedFragment<'a> {
    /// First inner payload type in fragment 1, `NONE` in every other fragment.
    pub first_inner: PayloadType,
    /// Fragment Number, from 1.
    pub number: u16,
    /// Total Fragments.
    pub total: u16,
    /// IV | encrypted content | ICV of this fragment.
    pub data: Bytes<'a>,
}

impl<'a> Encrypted<'a> {
    pub(crate) fn parse(first_inner: PayloadType, bytes: &'a [u8]) -> Self {
        Encrypted {
            first_inner,
            data: Cow::Borrowed(bytes),
        }
    }

    pub(crate) fn emit(&self, w: &mut Writer<'_>) -> Result<()> {
        w.bytes(&self.data);
        Ok(())
    }
}

impl<'a> EncryptedFragment<'a> {
    pub(crate) fn parse(first_inner: PayloadType, bytes: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(bytes, "SKF payload");
        let number = r.u16()?;
        let total = r.u16()?;
        Self::check(number, total)?;
        Ok(EncryptedFragment {
            first_inner,
            number,
            total,
            data: Cow::Borrowed(r.take_rest()),
        })
    }

    /// RFC 7383 §2.5: fragments are numbered from 1 up to Total Fragments.
    fn check(number: u16, total: u16) -> Result<()> {
        if number == 0 || number > total {
            return Err(Error::BadValue {
                what: "SKF payload",
                problem: "Fragment Number must be between 1 and Total Fragments",
            });
        }
        Ok(())
    }

    pub(crate) fn emit(&self, w: &mut Writer<'_>) -> Result<()> {
        Self::check(self.number, self.total)?;
        w.u16(self.number);
        w.u16(self.total);
        w.bytes(&self.data);
        Ok(())
    }
}
