//! The Notify payload (RFC 7296 §3.10).

use std::borrow::Cow;

use crate::codec::{Reader, Writer, count_u8};
use crate::error::Result;
use crate::payload::Bytes;
use crate::registry::{HashAlgorithm, NotifyType, ProtocolId};

/// Notify payload body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notify<'a> {
    /// The SA the notification concerns: 0 (none) or IKE for IKE SA notifications, ESP/AH
    /// with an SPI for CHILD SA ones.
    pub protocol: ProtocolId,
    /// The SPI the notification concerns (empty for IKE SA notifications).
    pub spi: Bytes<'a>,
    /// Notify Message Type; unknown values are kept.
    pub ty: NotifyType,
    /// Notification Data (type-specific).
    pub data: Bytes<'a>,
}

impl<'a> Notify<'a> {
    /// A notification about the IKE SA (no protocol, no SPI).
    pub fn new(ty: NotifyType, data: impl Into<Bytes<'a>>) -> Self {
        Notify {
            protocol: ProtocolId(0),
            spi: Cow::Borrowed(&[]),
            ty,
            data: data.into(),
        }
    }

    /// Builds a SIGNATURE_HASH_ALGORITHMS notify (RFC 7427 §4) listing `algs`.
    pub fn signature_hash_algorithms(algs: &[HashAlgorithm]) -> Notify<'static> {
        let data = algs
            .iter()
            .flat_map(|a| a.0.to_be_bytes())
            .collect::<Vec<_>>();
        Notify::new(NotifyType::SIGNATURE_HASH_ALGORITHMS, data)
    }

    /// The data read as big-endian 16-bit values (the layout of SIGNATURE_HASH_ALGORITHMS);
    /// `None` if the length is odd.
    pub fn data_u16s(&self) -> Option<impl Iterator<Item = u16> + '_> {
        if !self.data.len().is_multiple_of(2) {
            return None;
        }
        Some(
            self.data
                .chunks_exact(2)
                .filter_map(|c| <[u8; 2]>::try_from(c).ok())
                .map(u16::from_be_bytes),
        )
    }

    pub(crate) fn parse(bytes: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(bytes, "Notify payload");
        let protocol = ProtocolId(r.u8()?);
        let spi_size = usize::from(r.u8()?);
        let ty = NotifyType(r.u16()?);
        let spi = Cow::Borrowed(r.take(spi_size)?);
        Ok(Notify {
            protocol,
            spi,
            ty,
            data: Cow::Borrowed(r.take_rest()),
        })
    }

    pub(crate) fn emit(&self, w: &mut Writer<'_>) -> Result<()> {
        w.u8(self.protocol.0);
        w.u8(count_u8(self.spi.len(), "Notify SPI")?);
        w.u16(self.ty.0);
        w.bytes(&self.spi);
        w.bytes(&self.data);
        Ok(())
    }
}
