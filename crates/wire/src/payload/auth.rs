//! The Authentication payload (RFC 7296 §3.8).

use std::borrow::Cow;

use crate::codec::{Reader, Writer};
use crate::error::Result;
use crate::payload::Bytes;
use crate::registry::AuthMethod;

/// AUTH payload body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthPayload<'a> {
    /// How `data` was computed (PSK MIC, a signature scheme...).
    pub method: AuthMethod,
    /// The MIC or signature (RFC 7427: preceded by the AlgorithmIdentifier).
    pub data: Bytes<'a>,
}

impl<'a> AuthPayload<'a> {
    pub(crate) fn parse(bytes: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(bytes, "AUTH payload");
        let method = AuthMethod(r.u8()?);
        let _reserved = r.take(3)?;
        Ok(AuthPayload {
            method,
            data: Cow::Borrowed(r.take_rest()),
        })
    }

    pub(crate) fn emit(&self, w: &mut Writer<'_>) -> Result<()> {
        w.u8(self.method.0);
        w.bytes(&[0, 0, 0]);
        w.bytes(&self.data);
        Ok(())
    }
}
