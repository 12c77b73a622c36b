//! The few IP header operations transport mode needs: rebuilding the header the receiver
//! drops, and fixing TCP/UDP checksums after NAT (RFC 3948 §3.1.2).

use std::net::IpAddr;

/// Length of the IPv4 header we write (no options).
pub const IPV4_HEADER_LEN: usize = 20;
/// Length of the IPv6 fixed header.
pub const IPV6_HEADER_LEN: usize = 40;

/// One's-complement sum of 16-bit words.
fn sum16(data: &[u8], mut acc: u32) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        if let Ok(w) = <[u8; 2]>::try_from(c) {
            acc += u32::from(u16::from_be_bytes(w));
        }
    }
    if let [last] = chunks.remainder() {
        acc += u32::from(*last) << 8;
    }
    acc
}

fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// Header length of the IP packet at `ip` (IPv4 IHL, or 40 for IPv6).
pub fn header_len(ip: &[u8]) -> Option<usize> {
    match ip.first()? >> 4 {
        4 => {
            let ihl = usize::from(ip.first()? & 0x0f) * 4;
            (ihl >= IPV4_HEADER_LEN && ihl <= ip.len()).then_some(ihl)
        }
        6 => (ip.len() >= IPV6_HEADER_LEN).then_some(IPV6_HEADER_LEN),
        _ => None,
    }
}

/// Writes an IP header for a `payload_len`-octet payload of protocol `proto` from `src` to
/// `dst` into `out` (20 octets for IPv4, 40 for IPv6).
pub fn write_header(
    out: &mut [u8],
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    payload_len: usize,
) -> Option<()> {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let total = u16::try_from(IPV4_HEADER_LEN + payload_len).ok()?;
            let h = out.get_mut(..IPV4_HEADER_LEN)?;
            h.fill(0);
            h.get_mut(..4)?
                .copy_from_slice(&[0x45, 0, (total >> 8) as u8, total as u8]);
            h.get_mut(6..10)?.copy_from_slice(&[0x40, 0, 64, proto]); // DF, TTL 64
            h.get_mut(12..16)?.copy_from_slice(&s.octets());
            h.get_mut(16..20)?.copy_from_slice(&d.octets());
            let ck = fold(sum16(h, 0));
            h.get_mut(10..12)?.copy_from_slice(&ck.to_be_bytes());
            Some(())
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let len = u16::try_from(payload_len).ok()?;
            let h = out.get_mut(..IPV6_HEADER_LEN)?;
            h.fill(0);
            h.get_mut(..8)?.copy_from_slice(&[
                0x60,
                0,
                0,
                0,
                (len >> 8) as u8,
                len as u8,
                proto,
                64,
            ]);
            h.get_mut(8..24)?.copy_from_slice(&s.octets());
            h.get_mut(24..40)?.copy_from_slice(&d.octets());
            Some(())
        }
        _ => None,
    }
}

/// Recomputes the TCP or UDP checksum of `l4` for the pseudo-header `src`, `dst`
/// (RFC 3948 §3.1.2: after NAT the checksum covered the original addresses). A zero UDP
/// checksum over IPv4 means "none" and is left alone. Other protocols are untouched.
pub fn fix_l4_checksum(l4: &mut [u8], src: IpAddr, dst: IpAddr, proto: u8) -> Option<()> {
    let at = match proto {
        6 => 16,
        17 => 6,
        _ => return Some(()),
    };
    if proto == 17 && src.is_ipv4() && l4.get(at..at + 2)? == [0, 0] {
        return Some(());
    }
    l4.get_mut(at..at + 2)?.copy_from_slice(&[0, 0]);
    let mut acc = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => sum16(&d.octets(), sum16(&s.octets(), 0)),
        (IpAddr::V6(s), IpAddr::V6(d)) => sum16(&d.octets(), sum16(&s.octets(), 0)),
        _ => return None,
    };
    acc += u32::from(proto) + u32::try_from(l4.len()).ok()?;
    let mut ck = fold(sum16(l4, acc));
    if proto == 17 && ck == 0 {
        ck = 0xffff;
    }
    l4.get_mut(at..at + 2)?.copy_from_slice(&ck.to_be_bytes());
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_header_checksum_verifies() {
        let mut h = [0u8; 20];
        write_header(
            &mut h,
            "10.1.0.1".parse().unwrap(),
            "10.2.0.1".parse().unwrap(),
            1,
            64,
        )
        .unwrap();
        assert_eq!(fold(sum16(&h, 0)), 0, "a correct header sums to 0xffff");
        assert_eq!(header_len(&h), Some(20));
    }

    #[test]
    fn udp_checksum_fix_matches_a_full_recomputation() {
        // UDP 1234 -> 53, 4 payload octets, checksum computed for other addresses.
        let mut udp = [0x04, 0xd2, 0x00, 0x35, 0x00, 0x0c, 0x12, 0x34, 1, 2, 3, 4];
        let (s, d) = (
            "192.0.2.1".parse().unwrap(),
            "198.51.100.7".parse().unwrap(),
        );
        fix_l4_checksum(&mut udp, s, d, 17).unwrap();
        // Verifying: the sum over pseudo-header and segment with the checksum is 0xffff.
        let mut acc = sum16(&[192, 0, 2, 1, 198, 51, 100, 7], 0);
        acc += 17 + 12;
        assert_eq!(fold(sum16(&udp, acc)), 0);
    }
}
