//! Encryption algorithms (Transform Type 1) and their sizes.

use meshsec_wire::registry::EncrId;

use crate::aead::AeadAlg;
use crate::error::{CryptoError, Result};

/// A negotiated encryption transform with its key length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encr {
    /// An AEAD cipher (AES-GCM-16 or ChaCha20-Poly1305): no separate INTEG transform.
    Aead(AeadAlg),
    /// AES-CBC (RFC 3602) with a 16- or 32-octet key; needs an INTEG transform.
    AesCbc {
        /// Key length in octets.
        key_len: usize,
    },
    /// ENCR_NULL (RFC 2410): for benchmarks only, never negotiable by default.
    Null,
    /// Identity "encryption" for fuzzing (feature `insecure`).
    #[cfg(feature = "insecure")]
    Insecure,
}

impl Encr {
    /// The algorithm for a transform ID and its Key Length attribute (in bits).
    pub fn from_id(id: EncrId, key_bits: Option<u16>) -> Result<Encr> {
        let unsupported_len = |bits: Option<u16>| CryptoError::Unsupported {
            what: "ENCR key length",
            id: bits.unwrap_or(0),
        };
        Ok(match (id, key_bits) {
            (EncrId::AES_GCM_16, Some(128)) => Encr::Aead(AeadAlg::Aes128Gcm),
            (EncrId::AES_GCM_16, Some(256)) => Encr::Aead(AeadAlg::Aes256Gcm),
            (EncrId::AES_GCM_16, bits) => return Err(unsupported_len(bits)),
            (EncrId::CHACHA20_POLY1305, None) => Encr::Aead(AeadAlg::ChaCha20Poly1305),
            (EncrId::CHACHA20_POLY1305, bits) => return Err(unsupported_len(bits)),
            (EncrId::AES_CBC, Some(128)) => Encr::AesCbc { key_len: 16 },
            (EncrId::AES_CBC, Some(256)) => Encr::AesCbc { key_len: 32 },
            (EncrId::AES_CBC, bits) => return Err(unsupported_len(bits)),
            (EncrId::NULL, None) => Encr::Null,
            _ => {
                return Err(CryptoError::Unsupported {
                    what: "ENCR",
                    id: id.0,
                });
            }
        })
    }

    /// The transform ID and Key Length attribute (bits) to put in a proposal.
    pub fn id(self) -> (EncrId, Option<u16>) {
        match self {
            Encr::Aead(AeadAlg::Aes128Gcm) => (EncrId::AES_GCM_16, Some(128)),
            Encr::Aead(AeadAlg::Aes256Gcm) => (EncrId::AES_GCM_16, Some(256)),
            Encr::Aead(AeadAlg::ChaCha20Poly1305) => (EncrId::CHACHA20_POLY1305, None),
            Encr::AesCbc { key_len } => (EncrId::AES_CBC, Some((key_len * 8) as u16)),
            Encr::Null => (EncrId::NULL, None),
            #[cfg(feature = "insecure")]
            Encr::Insecure => (EncrId(0xfff0), None),
        }
    }

    /// True if the transform provides integrity itself.
    pub fn is_aead(self) -> bool {
        matches!(self, Encr::Aead(_))
    }

    /// Cipher key length in octets (without the salt).
    pub fn key_len(self) -> usize {
        match self {
            Encr::Aead(a) => a.key_len(),
            Encr::AesCbc { key_len } => key_len,
            Encr::Null => 0,
            #[cfg(feature = "insecure")]
            Encr::Insecure => 0,
        }
    }

    /// Salt length: the 4 octets of keying material that AES-GCM (RFC 4106 §8.1, RFC 5282
    /// §7.1) and ChaCha20-Poly1305 (RFC 7634 §4) take after the key.
    pub fn salt_len(self) -> usize {
        match self {
            Encr::Aead(_) => 4,
            _ => 0,
        }
    }

    /// Octets of keying material this transform takes from KEYMAT / SK_e: key then salt.
    pub fn keymat_len(self) -> usize {
        self.key_len() + self.salt_len()
    }

    /// Length of the explicit IV in each packet / SK payload.
    pub fn iv_len(self) -> usize {
        match self {
            Encr::Aead(_) => 8,
            Encr::AesCbc { .. } => 16,
            Encr::Null => 0,
            #[cfg(feature = "insecure")]
            Encr::Insecure => 8,
        }
    }

    /// Block size the plaintext (with padding and trailer) must be a multiple of.
    pub fn block_len(self) -> usize {
        match self {
            Encr::AesCbc { .. } => 16,
            _ => 1,
        }
    }

    /// Length of the AEAD tag (0 for non-AEAD ciphers, whose ICV comes from INTEG).
    pub fn tag_len(self) -> usize {
        match self {
            Encr::Aead(_) => crate::aead::TAG_LEN,
            // A tag-sized field the insecure provider never checks.
            #[cfg(feature = "insecure")]
            Encr::Insecure => crate::aead::TAG_LEN,
            _ => 0,
        }
    }
}
