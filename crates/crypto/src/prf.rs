//! Pseudorandom functions (Transform Type 2) and prf+ (RFC 7296 §2.13).

use aws_lc_rs::hmac;
use meshsec_wire::registry::PrfId;

use crate::error::{CryptoError, Result};
use crate::secret::Secret;

/// A negotiated PRF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prf {
    /// PRF_HMAC_SHA1 (weak: legacy interop only, off by default).
    HmacSha1,
    /// PRF_HMAC_SHA2_256 (RFC 4868).
    HmacSha256,
    /// PRF_HMAC_SHA2_384 (RFC 4868).
    HmacSha384,
    /// PRF_HMAC_SHA2_512 (RFC 4868).
    HmacSha512,
    /// A worthless PRF for fuzzing (feature `insecure`).
    #[cfg(feature = "insecure")]
    Insecure,
}

/// HMAC over the concatenation of `parts`.
pub(crate) fn hmac(alg: hmac::Algorithm, key: &[u8], parts: &[&[u8]]) -> hmac::Tag {
    let key = hmac::Key::new(alg, key);
    let mut ctx = hmac::Context::with_key(&key);
    for p in parts {
        ctx.update(p);
    }
    ctx.sign()
}

impl Prf {
    /// The PRF for a transform ID.
    pub fn from_id(id: PrfId) -> Result<Prf> {
        Ok(match id {
            PrfId::HMAC_SHA1 => Prf::HmacSha1,
            PrfId::HMAC_SHA2_256 => Prf::HmacSha256,
            PrfId::HMAC_SHA2_384 => Prf::HmacSha384,
            PrfId::HMAC_SHA2_512 => Prf::HmacSha512,
            _ => {
                return Err(CryptoError::Unsupported {
                    what: "PRF",
                    id: id.0,
                });
            }
        })
    }

    /// The transform ID.
    pub fn id(self) -> PrfId {
        match self {
            Prf::HmacSha1 => PrfId::HMAC_SHA1,
            Prf::HmacSha256 => PrfId::HMAC_SHA2_256,
            Prf::HmacSha384 => PrfId::HMAC_SHA2_384,
            Prf::HmacSha512 => PrfId::HMAC_SHA2_512,
            #[cfg(feature = "insecure")]
            Prf::Insecure => PrfId(0xfff0),
        }
    }

    /// True for algorithms that are only for legacy interop and off by default.
    pub fn is_weak(self) -> bool {
        self == Prf::HmacSha1
    }

    /// Output length in octets (also the length of SK_d, SK_pi and SK_pr).
    pub fn output_len(self) -> usize {
        match self {
            Prf::HmacSha1 => 20,
            Prf::HmacSha256 => 32,
            Prf::HmacSha384 => 48,
            Prf::HmacSha512 => 64,
            #[cfg(feature = "insecure")]
            Prf::Insecure => 32,
        }
    }

    /// prf(key, parts[0] | parts[1] | ...).
    pub fn compute(self, key: &[u8], parts: &[&[u8]]) -> Secret {
        let alg = match self {
            Prf::HmacSha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            Prf::HmacSha256 => hmac::HMAC_SHA256,
            Prf::HmacSha384 => hmac::HMAC_SHA384,
            Prf::HmacSha512 => hmac::HMAC_SHA512,
            #[cfg(feature = "insecure")]
            Prf::Insecure => return crate::insecure::prf(key, parts, self.output_len()),
        };
        Secret::from_slice(hmac(alg, key, parts).as_ref())
    }

    /// prf+(key, seed) truncated to `len` octets (RFC 7296 §2.13):
    /// `T1 = prf(K, S | 0x01)`, `Tn = prf(K, Tn-1 | S | n)`, at most 255 blocks.
    pub fn plus(self, key: &[u8], seed: &[&[u8]], len: usize) -> Result<Secret> {
        let out_len = self.output_len();
        if len > 255 * out_len {
            return Err(CryptoError::OutputTooLong { what: "prf+" });
        }
        let mut out = Secret::new(Vec::with_capacity(len + out_len));
        let mut block = Secret::default();
        let mut counter: u8 = 1;
        while out.len() < len {
            let mut parts: Vec<&[u8]> = Vec::with_capacity(seed.len() + 2);
            parts.push(block.expose());
            parts.extend_from_slice(seed);
            let n = [counter];
            parts.push(&n);
            block = self.compute(key, &parts);
            out = Secret::new([out.expose(), block.expose()].concat());
            counter = counter.wrapping_add(1);
        }
        Ok(Secret::from_slice(
            out.expose().get(..len).unwrap_or_default(),
        ))
    }
}
