//! The Delete payload (RFC 7296 §3.11).

use std::borrow::Cow;

use crate::codec::{Reader, Writer, count_u16};
use crate::error::{Error, Result};
use crate::payload::Bytes;
use crate::registry::ProtocolId;

/// Delete payload body: SAs of one protocol to delete.
///
/// An IKE SA delete has SPI size 0 and no SPIs (the SA is the one the message travels on);
/// ESP/AH deletes list the sender's inbound 4-octet SPIs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delete<'a> {
    /// IKE, AH or ESP.
    pub protocol: ProtocolId,
    /// Length of each SPI in octets.
    pub spi_size: u8,
    /// The SPIs, concatenated (a multiple of `spi_size` octets).
    pub spis: Bytes<'a>,
}

impl<'a> Delete<'a> {
    /// Deletes the IKE SA this message travels on.
    pub fn ike() -> Delete<'static> {
        Delete {
            protocol: ProtocolId::IKE,
            spi_size: 0,
            spis: Cow::Borrowed(&[]),
        }
    }

    /// Deletes the CHILD SAs with these (sender-inbound) ESP SPIs.
    pub fn esp(spis: &[u32]) -> Delete<'static> {
        Delete {
            protocol: ProtocolId::ESP,
            spi_size: 4,
            spis: Cow::Owned(spis.iter().flat_map(|s| s.to_be_bytes()).collect()),
        }
    }

    /// Iterates over the SPIs.
    pub fn spis(&self) -> impl Iterator<Item = &[u8]> {
        self.spis.chunks(usize::from(self.spi_size).max(1))
    }

    /// The SPIs as 32-bit values when the SPI size is 4 (ESP/AH).
    pub fn spis_u32(&self) -> impl Iterator<Item = u32> + '_ {
        let four = self.spi_size == 4;
        self.spis
            .chunks_exact(4)
            .filter(move |_| four)
            .filter_map(|c| <[u8; 4]>::try_from(c).ok().map(u32::from_be_bytes))
    }

    fn check(spi_size: usize, spis_len: usize) -> Result<usize> {
        let bad = |problem| Error::BadLength {
            what: "Delete payload",
            problem,
        };
        if spi_size == 0 {
            return if spis_len == 0 {
                Ok(0)
            } else {
                Err(bad("SPIs present although SPI Size is 0"))
            };
        }
        if !spis_len.is_multiple_of(spi_size) {
            return Err(bad("SPI data is not a multiple of SPI Size"));
        }
        Ok(spis_len / spi_size)
    }

    pub(crate) fn parse(bytes: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(bytes, "Delete payload");
        let protocol = ProtocolId(r.u8()?);
        let spi_size = r.u8()?;
        let declared = usize::from(r.u16()?);
        let spis = r.take_rest();
        if Self::check(usize::from(spi_size), spis.len())? != declared {
            return Err(Error::BadLength {
                what: "Delete payload",
                problem: "Num of SPIs does not match the SPI data",
            });
        }
        Ok(Delete {
            protocol,
            spi_size,
            spis: Cow::Borrowed(spis),
        })
    }

    pub(crate) fn emit(&self, w: &mut Writer<'_>) -> Result<()> {
        let n = Self::check(usize::from(self.spi_size), self.spis.len())?;
        w.u8(self.protocol.0);
        w.u8(self.spi_size);
        w.u16(count_u16(n, "Delete Num of SPIs")?);
        w.bytes(&self.spis);
        Ok(())
    }
}
