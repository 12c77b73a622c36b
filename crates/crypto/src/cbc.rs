//! AES-CBC without padding (RFC 3602): IKE and ESP pad the plaintext themselves.

use aws_lc_rs::cipher::{
    AES_128, AES_256, DecryptingKey, DecryptionContext, EncryptingKey, EncryptionContext,
    UnboundCipherKey,
};
use aws_lc_rs::iv::FixedLength;

use crate::error::{CryptoError, Result};

/// AES block (and IV) length.
pub const BLOCK_LEN: usize = 16;

/// An AES-CBC key, for one direction.
pub struct CbcKey {
    enc: EncryptingKey,
    dec: DecryptingKey,
}

impl core::fmt::Debug for CbcKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("CbcKey(<redacted>)")
    }
}

impl CbcKey {
    /// A 16- or 32-octet AES key.
    pub fn new(key: &[u8]) -> Result<CbcKey> {
        let alg = match key.len() {
            16 => &AES_128,
            32 => &AES_256,
            n => {
                return Err(CryptoError::KeyLength {
                    what: "AES-CBC key",
                    expected: 32,
                    got: n,
                });
            }
        };
        let rejected = |_| CryptoError::KeyRejected {
            what: "AES-CBC key",
            reason: "refused by the backend",
        };
        let enc = EncryptingKey::cbc(UnboundCipherKey::new(alg, key).map_err(rejected)?)
            .map_err(rejected)?;
        let dec = DecryptingKey::cbc(UnboundCipherKey::new(alg, key).map_err(rejected)?)
            .map_err(rejected)?;
        Ok(CbcKey { enc, dec })
    }

    fn check_blocks(data: &[u8]) -> Result<()> {
        if !data.len().is_multiple_of(BLOCK_LEN) {
            return Err(CryptoError::BadLength {
                what: "AES-CBC data",
                problem: "not a multiple of the 16-octet block",
            });
        }
        Ok(())
    }

    /// Encrypts whole blocks in place.
    pub fn encrypt(&self, iv: &[u8; BLOCK_LEN], in_out: &mut [u8]) -> Result<()> {
        Self::check_blocks(in_out)?;
        self.enc
            .less_safe_encrypt(in_out, EncryptionContext::Iv128(FixedLength::from(*iv)))
            .map(|_| ())
            .map_err(|_| CryptoError::Backend {
                what: "AES-CBC encrypt",
            })
    }

    /// Decrypts whole blocks in place.
    pub fn decrypt(&self, iv: &[u8; BLOCK_LEN], in_out: &mut [u8]) -> Result<()> {
        Self::check_blocks(in_out)?;
        self.dec
            .decrypt(in_out, DecryptionContext::Iv128(FixedLength::from(*iv)))
            .map(|_| ())
            .map_err(|_| CryptoError::Backend {
                what: "AES-CBC decrypt",
            })
    }
}
