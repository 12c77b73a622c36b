//! The Key Exchange payload (RFC 7296 §3.4).

use std::borrow::Cow;

use crate::codec::{Reader, Writer};
use crate::error::Result;
use crate::payload::Bytes;
use crate::registry::KeMethod;

/// KE payload body: the key exchange method and the sender's public value (or KEM data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KePayload<'a> {
    /// The Diffie-Hellman group / key exchange method the data belongs to.
    pub method: KeMethod,
    /// The public value (DH) or encapsulation key / ciphertext (KEM).
    pub data: Bytes<'a>,
}

impl<'a> KePayload<'a> {
    pub(crate) fn parse(bytes: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(bytes, "KE payload");
        let method = KeMethod(r.u16()?);
        let _reserved = r.u16()?;
        Ok(KePayload {
            method,
            data: Cow::Borrowed(r.take_rest()),
        })
    }

    pub(crate) fn emit(&self, w: &mut Writer<'_>) -> Result<()> {
        w.u16(self.method.0);
        w.u16(0);
        w.bytes(&self.data);
        Ok(())
    }
}
