//! NAT detection hashes (RFC 7296 §2.23): SHA-1(SPIi | SPIr | IP address | port).

use std::net::SocketAddr;

use aws_lc_rs::digest;

/// The NAT_DETECTION_*_IP notification data for `addr`.
pub fn natd_hash(spi_i: u64, spi_r: u64, addr: SocketAddr) -> [u8; 20] {
    let mut ctx = digest::Context::new(&digest::SHA1_FOR_LEGACY_USE_ONLY);
    ctx.update(&spi_i.to_be_bytes());
    ctx.update(&spi_r.to_be_bytes());
    match addr {
        SocketAddr::V4(a) => ctx.update(&a.ip().octets()),
        SocketAddr::V6(a) => ctx.update(&a.ip().octets()),
    }
    ctx.update(&addr.port().to_be_bytes());
    let mut out = [0u8; 20];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// strongSwan s1, frame 1: the initiator's NAT_DETECTION_DESTINATION_IP hashes the
    /// responder's address 198.51.100.2:500 (the source one is faked by charon to force
    /// UDP encapsulation, so it is not checked here).
    #[test]
    fn matches_strongswan_destination_hash() {
        let h = natd_hash(
            0x8cab_e361_69ce_d261,
            0,
            "198.51.100.2:500".parse().unwrap(),
        );
        let hex: String = h.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "5fda016bf70636720441d90d19b2b82ed62e3113");
    }
}
