//! ML-KEM-768 as a key encapsulation mechanism, for the additional key exchanges of RFC 9370.
//!
//! The initiator sends an encapsulation key; the responder encapsulates a shared secret to it
//! and returns the ciphertext; the initiator decapsulates. aws-lc generates the key pair and
//! the encapsulation randomness itself (no injected RNG).

use aws_lc_rs::kem::{Ciphertext, DecapsulationKey, EncapsulationKey, ML_KEM_768};

use crate::error::{CryptoError, Result};
use crate::secret::Secret;

/// Encapsulation key length of ML-KEM-768 (FIPS 203).
pub const ENCAPSULATION_KEY_LEN: usize = 1184;
/// Ciphertext length of ML-KEM-768.
pub const CIPHERTEXT_LEN: usize = 1088;

/// The initiator's side: a fresh ML-KEM-768 key pair.
pub struct MlKem768 {
    dk: DecapsulationKey,
    ek: Vec<u8>,
}

impl core::fmt::Debug for MlKem768 {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("MlKem768(<decapsulation key redacted>)")
    }
}

impl MlKem768 {
    /// Generates a key pair.
    pub fn generate() -> Result<MlKem768> {
        let backend = |_| CryptoError::Backend {
            what: "ML-KEM-768 key generation",
        };
        let dk = DecapsulationKey::generate(&ML_KEM_768).map_err(backend)?;
        let ek = dk.encapsulation_key().map_err(backend)?;
        let ek = ek.key_bytes().map_err(backend)?.as_ref().to_vec();
        Ok(MlKem768 { dk, ek })
    }

    /// The encapsulation key to send (KE payload data).
    pub fn encapsulation_key(&self) -> &[u8] {
        &self.ek
    }

    /// The shared secret from the peer's ciphertext.
    pub fn decapsulate(&self, ciphertext: &[u8]) -> Result<Secret> {
        if ciphertext.len() != CIPHERTEXT_LEN {
            return Err(CryptoError::InvalidPublicValue {
                method: meshsec_wire::registry::KeMethod::ML_KEM_768,
                reason: "ciphertext must be 1088 octets",
            });
        }
        let ss = self
            .dk
            .decapsulate(Ciphertext::from(ciphertext))
            .map_err(|_| CryptoError::Backend {
                what: "ML-KEM-768 decapsulation",
            })?;
        Ok(Secret::from_slice(ss.as_ref()))
    }
}

/// The responder's side: encapsulates to the peer's key; returns (ciphertext, shared secret).
pub fn encapsulate_768(encapsulation_key: &[u8]) -> Result<(Vec<u8>, Secret)> {
    let invalid = |reason| CryptoError::InvalidPublicValue {
        method: meshsec_wire::registry::KeMethod::ML_KEM_768,
        reason,
    };
    if encapsulation_key.len() != ENCAPSULATION_KEY_LEN {
        return Err(invalid("encapsulation key must be 1184 octets"));
    }
    let ek = EncapsulationKey::new(&ML_KEM_768, encapsulation_key)
        .map_err(|_| invalid("not a valid encapsulation key"))?;
    let (ct, ss) = ek.encapsulate().map_err(|_| CryptoError::Backend {
        what: "ML-KEM-768 encapsulation",
    })?;
    Ok((ct.as_ref().to_vec(), Secret::from_slice(ss.as_ref())))
}
