//! The IKE header (RFC 7296 §3.1) and whole IKE messages.

use core::fmt;

use crate::codec::{Reader, Writer};
use crate::error::{Error, Result};
use crate::payload::{Payload, emit_payloads, parse_payloads};
use crate::registry::{ExchangeType, PayloadType};

/// Length of the IKE header.
pub const IKE_HEADER_LEN: usize = 28;

/// The IKE major version we speak.
pub const IKE_MAJOR_VERSION: u8 = 2;

/// The Flags octet of the IKE header.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(pub u8);

impl Flags {
    /// Set by the original initiator of the IKE SA.
    pub const INITIATOR: Flags = Flags(0x08);
    /// Set when the sender could speak a higher major version (never, for us).
    pub const VERSION: Flags = Flags(0x10);
    /// Set in responses.
    pub const RESPONSE: Flags = Flags(0x20);

    /// True if the sender is the original initiator of the IKE SA.
    pub fn initiator(self) -> bool {
        self.0 & Self::INITIATOR.0 != 0
    }

    /// True if this message is a response.
    pub fn response(self) -> bool {
        self.0 & Self::RESPONSE.0 != 0
    }

    /// Both flags, as the engines set them.
    pub fn new(initiator: bool, response: bool) -> Flags {
        let mut f = 0;
        if initiator {
            f |= Self::INITIATOR.0;
        }
        if response {
            f |= Self::RESPONSE.0;
        }
        Flags(f)
    }
}

impl fmt::Debug for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Flags({:#04x}", self.0)?;
        if self.initiator() {
            f.write_str(" I")?;
        }
        if self.response() {
            f.write_str(" R")?;
        }
        f.write_str(")")
    }
}

/// The IKE header, minus the fields that emit computes (Next Payload and Length).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    /// IKE SA Initiator's SPI.
    pub spi_i: u64,
    /// IKE SA Responder's SPI (0 in the first IKE_SA_INIT request).
    pub spi_r: u64,
    /// Minor version (0 for RFC 7296; ignored on receipt, kept for round trips).
    pub minor_version: u8,
    /// The exchange this message belongs to.
    pub exchange: ExchangeType,
    /// Initiator / Response flags.
    pub flags: Flags,
    /// Message ID.
    pub message_id: u32,
}

/// What [`Header::parse`] reads besides the header: the fields a demultiplexer needs before
/// parsing payloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderInfo {
    /// The header.
    pub header: Header,
    /// Type of the first payload.
    pub first_payload: PayloadType,
    /// The Length field: the whole message in octets.
    pub length: u32,
}

impl Header {
    /// Reads the header at the start of `bytes` (a cheap peek for demultiplexing by SPI).
    pub fn parse(bytes: &[u8]) -> Result<HeaderInfo> {
        let mut r = Reader::new(bytes, "IKE header");
        let spi_i = r.u64()?;
        let spi_r = r.u64()?;
        let first_payload = PayloadType(r.u8()?);
        let version = r.u8()?;
        let exchange = ExchangeType(r.u8()?);
        let flags = Flags(r.u8()?);
        let message_id = r.u32()?;
        let length = r.u32()?;
        let major = version >> 4;
        if major != IKE_MAJOR_VERSION {
            return Err(Error::UnsupportedVersion { major });
        }
        Ok(HeaderInfo {
            header: Header {
                spi_i,
                spi_r,
                minor_version: version & 0x0f,
                exchange,
                flags,
                message_id,
            },
            first_payload,
            length,
        })
    }

    /// Writes the header with the given Next Payload; returns the reserved Length field, which
    /// the caller patches once the message is complete.
    pub fn emit(&self, w: &mut Writer<'_>, first_payload: PayloadType) -> crate::codec::LenMark {
        let start = w.position();
        w.u64(self.spi_i);
        w.u64(self.spi_r);
        w.u8(first_payload.0);
        w.u8((IKE_MAJOR_VERSION << 4) | (self.minor_version & 0x0f));
        w.u8(self.exchange.0);
        w.u8(self.flags.0);
        w.u32(self.message_id);
        w.reserve_u32(start, "IKE message")
    }
}

/// A whole IKE message: header and payload chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message<'a> {
    /// The header.
    pub header: Header,
    /// The payloads in order; an SK or SKF payload, if any, is last.
    pub payloads: Vec<Payload<'a>>,
}

impl<'a> Message<'a> {
    /// Parses one IKE message (without the RFC 3948 non-ESP marker). The Length field must
    /// equal the datagram's length.
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        let info = Header::parse(bytes)?;
        if usize::try_from(info.length).ok() != Some(bytes.len()) {
            return Err(Error::BadLength {
                what: "IKE header",
                problem: "Length field differs from the datagram length",
            });
        }
        let body = bytes.get(IKE_HEADER_LEN..).unwrap_or_default();
        Ok(Message {
            header: info.header,
            payloads: parse_payloads(info.first_payload, body)?,
        })
    }

    /// Appends the encoded message to `out`.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<()> {
        let first = self
            .payloads
            .first()
            .map_or(PayloadType::NONE, Payload::payload_type);
        let len = self.header.emit(&mut Writer::new(out), first);
        emit_payloads(&self.payloads, out)?;
        Writer::new(out).patch_len_u32(len)
    }

    /// The encoded message in a new buffer.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.emit(&mut out)?;
        Ok(out)
    }
}
