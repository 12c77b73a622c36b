//! UDP encapsulation of IKE and ESP on port 4500 (RFC 3948 §2, RFC 7296 §2.23).
//!
//! One socket carries three kinds of datagram, told apart by their first octets:
//! a single 0xFF octet is a NAT-keepalive; four zero octets (the non-ESP marker) precede an
//! IKE message; anything else is an ESP packet, whose SPI is never zero.

use crate::error::{Error, Result};
use crate::esp::ESP_HEADER_LEN;

/// The non-ESP marker that precedes IKE messages on port 4500.
pub const NON_ESP_MARKER: [u8; 4] = [0; 4];
/// The NAT-keepalive datagram (RFC 3948 §2.3).
pub const NAT_KEEPALIVE: [u8; 1] = [0xff];

/// What a datagram on port 4500 carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Udp4500<'a> {
    /// An IKE message (the marker removed).
    Ike(&'a [u8]),
    /// An ESP packet, starting at its SPI.
    Esp(&'a [u8]),
    /// A NAT-keepalive: refreshes NAT bindings, carries nothing.
    NatKeepalive,
}

/// Classifies a datagram received on port 4500.
pub fn classify(datagram: &[u8]) -> Result<Udp4500<'_>> {
    if datagram == NAT_KEEPALIVE {
        return Ok(Udp4500::NatKeepalive);
    }
    match datagram.split_first_chunk::<4>() {
        Some((marker, ike)) if *marker == NON_ESP_MARKER => Ok(Udp4500::Ike(ike)),
        _ if datagram.len() >= ESP_HEADER_LEN => Ok(Udp4500::Esp(datagram)),
        _ => Err(Error::Truncated {
            what: "UDP-encapsulated ESP",
            needed: ESP_HEADER_LEN,
            available: datagram.len(),
        }),
    }
}

/// Appends an IKE message framed for port 4500 (marker first) to `out`.
pub fn frame_ike(ike: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&NON_ESP_MARKER);
    out.extend_from_slice(ike);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demultiplexes_the_three_kinds() {
        assert_eq!(classify(&[0xff]), Ok(Udp4500::NatKeepalive));
        assert_eq!(classify(&[0, 0, 0, 0, 1, 2]), Ok(Udp4500::Ike(&[1, 2])));
        let esp = [0x37, 0xc8, 0xe6, 0x68, 0, 0, 0, 1, 0xaa];
        assert_eq!(classify(&esp), Ok(Udp4500::Esp(&esp)));
        assert!(classify(&[]).is_err());
        assert!(classify(&[0xff, 0xff]).is_err());
        assert!(classify(&[1, 2, 3, 4, 5, 6, 7]).is_err());
        let mut framed = Vec::new();
        frame_ike(&[9, 9], &mut framed);
        assert_eq!(classify(&framed), Ok(Udp4500::Ike(&[9, 9])));
    }
}
