//! The AUTH payload computation with a pre-shared key (RFC 7296 §2.15) and the octets every
//! AUTH method signs.

use subtle::ConstantTimeEq;

use crate::error::{CryptoError, Result};
use crate::prf::Prf;
use crate::secret::Secret;

/// The key pad of RFC 7296 §2.15.
pub const KEY_PAD: &[u8] = b"Key Pad for IKEv2";

/// InitiatorSignedOctets / ResponderSignedOctets (RFC 7296 §2.15):
/// `RealMessage | Nonce of the peer | prf(SK_p, ID payload body)`.
///
/// `real_message` is our own first message (IKE_SA_INIT request for the initiator, response
/// for the responder) exactly as sent; `id_body` is our ID payload without its generic header.
pub fn signed_octets(
    real_message: &[u8],
    peer_nonce: &[u8],
    prf: Prf,
    sk_p: &[u8],
    id_body: &[u8],
) -> Vec<u8> {
    let maced_id = prf.compute(sk_p, &[id_body]);
    [real_message, peer_nonce, maced_id.expose()].concat()
}

/// AUTH = prf( prf(Shared Secret, "Key Pad for IKEv2"), <SignedOctets>).
pub fn psk_auth(prf: Prf, psk: &[u8], signed_octets: &[u8]) -> Secret {
    let key = prf.compute(psk, &[KEY_PAD]);
    prf.compute(key.expose(), &[signed_octets])
}

/// Checks a peer's PSK AUTH value in constant time.
pub fn verify_psk_auth(prf: Prf, psk: &[u8], signed_octets: &[u8], received: &[u8]) -> Result<()> {
    // The insecure provider (fuzzing only) accepts any AUTH, as it accepts any ICV.
    #[cfg(feature = "insecure")]
    if prf == Prf::Insecure {
        return Ok(());
    }
    let expected = psk_auth(prf, psk, signed_octets);
    if expected.len() == received.len() && bool::from(expected.expose().ct_eq(received)) {
        Ok(())
    } else {
        Err(CryptoError::IntegrityCheckFailed {
            what: "AUTH payload (pre-shared key)",
        })
    }
}
