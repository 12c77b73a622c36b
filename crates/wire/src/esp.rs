//! ESP packet framing (RFC 4303 §2): header, and the padding/trailer layout inside the
//! encrypted part. No crypto here: `meshsec-esp` seals and opens.
//!
//! ```text
//! SPI (4) | Sequence Number (4) | IV | Payload | Padding (0-255) | Pad Length | Next Header | ICV
//!                                     \_________ encrypted ____________________________/
//! ```

use crate::codec::Reader;
use crate::error::{Error, Result};

/// Length of the ESP header (SPI and sequence number).
pub const ESP_HEADER_LEN: usize = 8;
/// Length of the fixed part of the ESP trailer (Pad Length and Next Header).
pub const ESP_TRAILER_LEN: usize = 2;
/// Next Header value of a dummy packet (RFC 4303 §2.6), which receivers discard silently.
pub const NEXT_HEADER_NO_NEXT: u8 = 59;
/// Next Header value for an IPv4 packet (tunnel mode).
pub const NEXT_HEADER_IPV4: u8 = 4;
/// Next Header value for an IPv6 packet (tunnel mode).
pub const NEXT_HEADER_IPV6: u8 = 41;

/// The cleartext ESP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EspHeader {
    /// Security Parameters Index (never 0: that value is reserved, and RFC 3948 relies on it
    /// to tell IKE from ESP on port 4500).
    pub spi: u32,
    /// Low 32 bits of the sequence number.
    pub seq: u32,
}

impl EspHeader {
    /// Reads the header; returns it and the rest (IV | ciphertext | ICV).
    pub fn parse(packet: &[u8]) -> Result<(EspHeader, &[u8])> {
        let mut r = Reader::new(packet, "ESP header");
        let spi = r.u32()?;
        let seq = r.u32()?;
        if spi == 0 {
            return Err(Error::BadValue {
                what: "ESP header",
                problem: "SPI 0 is reserved",
            });
        }
        Ok((EspHeader { spi, seq }, r.rest()))
    }

    /// Writes the header into the first 8 octets of `out`.
    pub fn write(&self, out: &mut [u8]) -> Result<()> {
        let available = out.len();
        let dst = out.get_mut(..ESP_HEADER_LEN).ok_or(Error::Truncated {
            what: "ESP header",
            needed: ESP_HEADER_LEN,
            available,
        })?;
        let (spi, seq) = dst.split_at_mut(4);
        spi.copy_from_slice(&self.spi.to_be_bytes());
        seq.copy_from_slice(&self.seq.to_be_bytes());
        Ok(())
    }
}

/// The decoded fixed trailer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EspTrailer {
    /// Number of padding octets before the trailer.
    pub pad_length: u8,
    /// Protocol of the payload (4 = IPv4, 41 = IPv6, 59 = dummy, or the transport protocol).
    pub next_header: u8,
}

/// Padding needed after `payload_len` octets so that payload, padding and the 2-octet trailer
/// end on a multiple of `align` (the cipher block size, at least 4: RFC 4303 §2.4).
pub fn padding_len(payload_len: usize, align: usize) -> usize {
    let align = align.max(4);
    let used = (payload_len + ESP_TRAILER_LEN) % align;
    (align - used) % align
}

/// Writes padding (the default content 1, 2, 3, ... of RFC 4303 §2.4) followed by Pad Length
/// and Next Header into `out`, which must be exactly `pad_len + 2` octets long.
pub fn write_trailer(out: &mut [u8], next_header: u8) -> Result<()> {
    let pad_len = out
        .len()
        .checked_sub(ESP_TRAILER_LEN)
        .ok_or(Error::Truncated {
            what: "ESP trailer",
            needed: ESP_TRAILER_LEN,
            available: out.len(),
        })?;
    let pad_len_u8 = u8::try_from(pad_len).map_err(|_| Error::TooLong {
        what: "ESP padding (at most 255 octets)",
    })?;
    let (padding, trailer) = out.split_at_mut(pad_len);
    for (b, v) in padding.iter_mut().zip(1u8..) {
        *b = v;
    }
    trailer.copy_from_slice(&[pad_len_u8, next_header]);
    Ok(())
}

/// Reads the trailer at the end of decrypted `plaintext` (payload | padding | trailer) and
/// checks that the padding holds the default 1, 2, 3, ... sequence (RFC 4303 §2.4: receivers
/// SHOULD check). Returns the payload length and the trailer.
pub fn parse_trailer(plaintext: &[u8]) -> Result<(usize, EspTrailer)> {
    let body_len = plaintext
        .len()
        .checked_sub(ESP_TRAILER_LEN)
        .ok_or(Error::Truncated {
            what: "ESP trailer",
            needed: ESP_TRAILER_LEN,
            available: plaintext.len(),
        })?;
    let (body, trailer) = plaintext.split_at(body_len);
    let mut r = Reader::new(trailer, "ESP trailer");
    let t = EspTrailer {
        pad_length: r.u8()?,
        next_header: r.u8()?,
    };
    let payload_len = body_len
        .checked_sub(usize::from(t.pad_length))
        .ok_or(Error::BadLength {
            what: "ESP trailer",
            problem: "Pad Length exceeds the decrypted data",
        })?;
    let padding = body.get(payload_len..).unwrap_or_default();
    if !padding.iter().zip(1u8..).all(|(b, v)| *b == v) {
        return Err(Error::BadValue {
            what: "ESP padding",
            problem: "padding is not the 1, 2, 3, ... sequence",
        });
    }
    Ok((payload_len, t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_aligns_to_block_and_to_four() {
        assert_eq!(padding_len(84, 1), 2); // AES-GCM: 4-octet alignment
        assert_eq!(padding_len(84, 16), 10); // AES-CBC
        assert_eq!(padding_len(14, 16), 0);
        for len in 0..100 {
            for align in [1, 4, 8, 16] {
                assert_eq!((len + padding_len(len, align) + 2) % align.max(4), 0);
            }
        }
    }

    #[test]
    fn trailer_round_trips_and_rejects_bad_padding() {
        let mut pkt = vec![0xee; 84];
        let pad = padding_len(pkt.len(), 16);
        pkt.resize(84 + pad + 2, 0);
        write_trailer(&mut pkt[84..], 4).unwrap();
        assert_eq!(
            parse_trailer(&pkt).unwrap(),
            (
                84,
                EspTrailer {
                    pad_length: 10,
                    next_header: 4
                }
            )
        );
        pkt[85] ^= 1;
        assert!(matches!(parse_trailer(&pkt), Err(Error::BadValue { .. })));
        assert!(matches!(
            parse_trailer(&[250, 4]),
            Err(Error::BadLength { .. })
        ));
        assert!(matches!(parse_trailer(&[4]), Err(Error::Truncated { .. })));
    }

    #[test]
    fn header_rejects_spi_zero_and_short_packets() {
        assert!(EspHeader::parse(&[0, 0, 0, 0, 0, 0, 0, 1]).is_err());
        assert!(EspHeader::parse(&[0, 0, 0, 1, 0, 0, 0]).is_err());
        let (h, rest) = EspHeader::parse(&[0x37, 0xc8, 0xe6, 0x68, 0, 0, 0, 1, 9]).unwrap();
        assert_eq!((h.spi, h.seq, rest), (0x37c8e668, 1, &[9u8][..]));
        let mut out = [0u8; 8];
        h.write(&mut out).unwrap();
        assert_eq!(out, [0x37, 0xc8, 0xe6, 0x68, 0, 0, 0, 1]);
    }
}
