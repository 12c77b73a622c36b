//! The Certificate and Certificate Request payloads (RFC 7296 §3.6, §3.7).

use std::borrow::Cow;

use crate::codec::{Reader, Writer};
use crate::error::Result;
use crate::payload::Bytes;
use crate::registry::CertEncoding;

/// CERT or CERTREQ payload body: an encoding and its data.
///
/// For CERT the data is the certificate (e.g. DER X.509); for CERTREQ it is the Certification
/// Authority field (for X.509: concatenated SHA-1 hashes of the trusted CAs' public keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertPayload<'a> {
    /// Certificate Encoding.
    pub encoding: CertEncoding,
    /// Certificate data or Certification Authority field.
    pub data: Bytes<'a>,
}

impl<'a> CertPayload<'a> {
    pub(crate) fn parse(bytes: &'a [u8], what: &'static str) -> Result<Self> {
        let mut r = Reader::new(bytes, what);
        Ok(CertPayload {
            encoding: CertEncoding(r.u8()?),
            data: Cow::Borrowed(r.take_rest()),
        })
    }

    pub(crate) fn emit(&self, w: &mut Writer<'_>) -> Result<()> {
        w.u8(self.encoding.0);
        w.bytes(&self.data);
        Ok(())
    }
}
