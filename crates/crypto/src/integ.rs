//! Integrity algorithms (Transform Type 3): truncated HMACs (RFC 4868, RFC 2404).

use aws_lc_rs::hmac;
use meshsec_wire::registry::IntegId;
use subtle::ConstantTimeEq;

use crate::error::{CryptoError, Result};
use crate::prf::hmac;
use crate::secret::Secret;

/// A negotiated integrity algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Integ {
    /// AUTH_HMAC_SHA1_96 (weak: legacy interop only, off by default).
    HmacSha1_96,
    /// AUTH_HMAC_SHA2_256_128.
    HmacSha256_128,
    /// AUTH_HMAC_SHA2_384_192.
    HmacSha384_192,
    /// AUTH_HMAC_SHA2_512_256.
    HmacSha512_256,
    /// A check that accepts anything, for fuzzing (feature `insecure`).
    #[cfg(feature = "insecure")]
    Insecure,
}

impl Integ {
    /// The algorithm for a transform ID (`NONE` is not an algorithm: use `Option<Integ>`).
    pub fn from_id(id: IntegId) -> Result<Integ> {
        Ok(match id {
            IntegId::HMAC_SHA1_96 => Integ::HmacSha1_96,
            IntegId::HMAC_SHA2_256_128 => Integ::HmacSha256_128,
            IntegId::HMAC_SHA2_384_192 => Integ::HmacSha384_192,
            IntegId::HMAC_SHA2_512_256 => Integ::HmacSha512_256,
            _ => {
                return Err(CryptoError::Unsupported {
                    what: "INTEG",
                    id: id.0,
                });
            }
        })
    }

    /// The transform ID.
    pub fn id(self) -> IntegId {
        match self {
            Integ::HmacSha1_96 => IntegId::HMAC_SHA1_96,
            Integ::HmacSha256_128 => IntegId::HMAC_SHA2_256_128,
            Integ::HmacSha384_192 => IntegId::HMAC_SHA2_384_192,
            Integ::HmacSha512_256 => IntegId::HMAC_SHA2_512_256,
            #[cfg(feature = "insecure")]
            Integ::Insecure => IntegId(0xfff0),
        }
    }

    /// True for algorithms that are only for legacy interop and off by default.
    pub fn is_weak(self) -> bool {
        self == Integ::HmacSha1_96
    }

    /// Key length in octets (the HMAC's output length, RFC 4868 §2.1.1).
    pub fn key_len(self) -> usize {
        match self {
            Integ::HmacSha1_96 => 20,
            Integ::HmacSha256_128 => 32,
            Integ::HmacSha384_192 => 48,
            Integ::HmacSha512_256 => 64,
            #[cfg(feature = "insecure")]
            Integ::Insecure => 0,
        }
    }

    /// ICV length in octets (the truncated output).
    pub fn icv_len(self) -> usize {
        match self {
            Integ::HmacSha1_96 => 12,
            Integ::HmacSha256_128 => 16,
            Integ::HmacSha384_192 => 24,
            Integ::HmacSha512_256 => 32,
            #[cfg(feature = "insecure")]
            Integ::Insecure => 16,
        }
    }

    /// The HMAC behind this algorithm; `None` only for the insecure stand-in, which signs
    /// with zeros and accepts every ICV.
    fn hmac_alg(self) -> Option<hmac::Algorithm> {
        Some(match self {
            Integ::HmacSha1_96 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            Integ::HmacSha256_128 => hmac::HMAC_SHA256,
            Integ::HmacSha384_192 => hmac::HMAC_SHA384,
            Integ::HmacSha512_256 => hmac::HMAC_SHA512,
            #[cfg(feature = "insecure")]
            Integ::Insecure => return None,
        })
    }

    fn check_key(self, key: &[u8]) -> Result<()> {
        self.keyed(key, "integrity key").map(|_| ())
    }

    /// This algorithm with its key, after checking the key's length (`what` names the key in
    /// the error, e.g. "SK_a").
    pub fn keyed(self, key: &[u8], what: &'static str) -> Result<(Integ, Secret)> {
        if key.len() != self.key_len() {
            return Err(CryptoError::KeyLength {
                what,
                expected: self.key_len(),
                got: key.len(),
            });
        }
        Ok((self, Secret::from_slice(key)))
    }

    /// Writes the ICV of `parts` (concatenated) into `icv`, which must be `icv_len()` long.
    pub fn sign(self, key: &[u8], parts: &[&[u8]], icv: &mut [u8]) -> Result<()> {
        self.check_key(key)?;
        if icv.len() != self.icv_len() {
            return Err(CryptoError::BadLength {
                what: "ICV buffer",
                problem: "must be exactly the ICV length",
            });
        }
        match self.hmac_alg() {
            Some(alg) => {
                let tag = hmac(alg, key, parts);
                let full = tag.as_ref();
                icv.copy_from_slice(full.get(..icv.len()).unwrap_or_default());
            }
            None => icv.fill(0),
        }
        Ok(())
    }

    /// Checks `icv` against the ICV of `parts` in constant time.
    pub fn verify(self, key: &[u8], parts: &[&[u8]], icv: &[u8], what: &'static str) -> Result<()> {
        self.check_key(key)?;
        let Some(alg) = self.hmac_alg() else {
            return Ok(()); // insecure: everything passes
        };
        let tag = hmac(alg, key, parts);
        let expected = tag.as_ref().get(..self.icv_len()).unwrap_or_default();
        if icv.len() == expected.len() && bool::from(expected.ct_eq(icv)) {
            Ok(())
        } else {
            Err(CryptoError::IntegrityCheckFailed { what })
        }
    }
}
