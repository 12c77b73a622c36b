//! Message fingerprints: SHA-256 of a datagram, to recognise an exact copy of a message seen
//! before (a retransmitted request is answered again only if it is one, RFC 7296 §2.1) without
//! keeping the message itself.

use aws_lc_rs::digest;

/// SHA-256 of `bytes`.
pub fn fingerprint(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, bytes).as_ref());
    out
}

/// SHA-1 of `bytes`: only where a protocol names it for identification, never for security —
/// the CERTREQ Certification Authority field is a list of SHA-1 hashes of trust anchors'
/// SubjectPublicKeyInfo (RFC 7296 §3.7).
pub fn sha1(bytes: &[u8]) -> [u8; 20] {
    let mut out = [0u8; 20];
    out.copy_from_slice(digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, bytes).as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// FIPS 180-2 Appendix B.1: SHA-256("abc").
    #[test]
    fn sha256_known_answer() {
        let hex: String = fingerprint(b"abc")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            hex,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    /// FIPS 180-2 Appendix A.1: SHA-1("abc").
    #[test]
    fn sha1_known_answer() {
        let hex: String = sha1(b"abc").iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "a9993e364706816aba3e25717850c26c9cd0d89d");
    }
}
