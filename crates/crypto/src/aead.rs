//! AEAD ciphers for ESP (RFC 4106, RFC 7634) and the SK payload (RFC 5282, RFC 7634), behind
//! one type with two interchangeable backends.
//!
//! The nonce is `salt (4 octets, from the keying material) | IV (8 octets, in the packet)`.
//! ring and aws-lc-rs are both supported because their speed differs by CPU: on AMD EPYC with
//! VAES but without AVX-512, ring's AES-GCM is ~1.7× faster; aws-lc only has an AVX-512 fast
//! path. [`AeadBackend::fastest`] picks by CPU features; `benches/aead.rs` measures both.
//!
//! Key hygiene: the salt we hold is wiped on drop. aws-lc-rs zeroizes its key schedule on drop;
//! **ring does not zeroize its internal key schedule** (its `LessSafeKey` has no `Drop` that
//! wipes), so with the ring backend expanded AES/ChaCha keys may remain in freed memory.

use zeroize::Zeroize;

use crate::error::{CryptoError, Result};

/// Length of the authentication tag (ICV) of every AEAD here.
pub const TAG_LEN: usize = 16;
/// Length of the explicit IV.
pub const IV_LEN: usize = 8;
/// Length of the salt.
pub const SALT_LEN: usize = 4;

/// An AEAD algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AeadAlg {
    /// AES-GCM with a 128-bit key and 16-octet ICV (ENCR_AES_GCM_16, 128).
    Aes128Gcm,
    /// AES-GCM with a 256-bit key and 16-octet ICV (ENCR_AES_GCM_16, 256).
    Aes256Gcm,
    /// ChaCha20-Poly1305 (ENCR_CHACHA20_POLY1305).
    ChaCha20Poly1305,
}

impl AeadAlg {
    /// Key length in octets (without salt).
    pub fn key_len(self) -> usize {
        match self {
            AeadAlg::Aes128Gcm => 16,
            AeadAlg::Aes256Gcm | AeadAlg::ChaCha20Poly1305 => 32,
        }
    }
}

/// Which library does the AEAD work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AeadBackend {
    /// ring.
    Ring,
    /// aws-lc-rs.
    AwsLc,
}

impl AeadBackend {
    /// The faster backend on this CPU: aws-lc when it has its AVX-512 AES-GCM path (AVX-512F
    /// with VAES and VPCLMULQDQ), ring otherwise. ChaCha20-Poly1305 runs at the same speed on
    /// both here.
    pub fn fastest() -> AeadBackend {
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx512f")
                && std::is_x86_feature_detected!("vaes")
                && std::is_x86_feature_detected!("vpclmulqdq")
            {
                return AeadBackend::AwsLc;
            }
        }
        AeadBackend::Ring
    }
}

// The ring key is kept inline on purpose: this is the per-packet path and an extra pointer
// chase per packet costs more than the unused bytes of the smaller variants.
#[allow(clippy::large_enum_variant)]
enum Inner {
    Ring(ring::aead::LessSafeKey),
    AwsLc(aws_lc_rs::aead::LessSafeKey),
    #[cfg(feature = "insecure")]
    Insecure,
}

/// One direction's AEAD key with its salt.
pub struct AeadKey {
    alg: AeadAlg,
    inner: Inner,
    salt: [u8; SALT_LEN],
}

impl core::fmt::Debug for AeadKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let backend = match self.inner {
            Inner::Ring(_) => "ring",
            Inner::AwsLc(_) => "aws-lc",
            #[cfg(feature = "insecure")]
            Inner::Insecure => "insecure",
        };
        write!(f, "AeadKey({:?}, {backend}, <key redacted>)", self.alg)
    }
}

impl Drop for AeadKey {
    fn drop(&mut self) {
        self.salt.zeroize();
    }
}

impl AeadKey {
    /// A key from keying material `key | salt` (as KEYMAT and SK_e carry it).
    pub fn new(alg: AeadAlg, backend: AeadBackend, keymat: &[u8]) -> Result<AeadKey> {
        let expected = alg.key_len() + SALT_LEN;
        if keymat.len() != expected {
            return Err(CryptoError::KeyLength {
                what: "AEAD key | salt",
                expected,
                got: keymat.len(),
            });
        }
        let (key, salt) = keymat.split_at(alg.key_len());
        let rejected = || CryptoError::KeyRejected {
            what: "AEAD key",
            reason: "refused by the backend",
        };
        let inner = match backend {
            AeadBackend::Ring => {
                let a = match alg {
                    AeadAlg::Aes128Gcm => &ring::aead::AES_128_GCM,
                    AeadAlg::Aes256Gcm => &ring::aead::AES_256_GCM,
                    AeadAlg::ChaCha20Poly1305 => &ring::aead::CHACHA20_POLY1305,
                };
                let k = ring::aead::UnboundKey::new(a, key).map_err(|_| rejected())?;
                Inner::Ring(ring::aead::LessSafeKey::new(k))
            }
            AeadBackend::AwsLc => {
                let a = match alg {
                    AeadAlg::Aes128Gcm => &aws_lc_rs::aead::AES_128_GCM,
                    AeadAlg::Aes256Gcm => &aws_lc_rs::aead::AES_256_GCM,
                    AeadAlg::ChaCha20Poly1305 => &aws_lc_rs::aead::CHACHA20_POLY1305,
                };
                let k = aws_lc_rs::aead::UnboundKey::new(a, key).map_err(|_| rejected())?;
                Inner::AwsLc(aws_lc_rs::aead::LessSafeKey::new(k))
            }
        };
        let mut s = [0u8; SALT_LEN];
        s.copy_from_slice(salt);
        Ok(AeadKey {
            alg,
            inner,
            salt: s,
        })
    }

    /// The insecure identity "AEAD" for fuzzing: seals to the plaintext with a zero tag and
    /// opens anything.
    #[cfg(feature = "insecure")]
    pub fn insecure(alg: AeadAlg) -> AeadKey {
        AeadKey {
            alg,
            inner: Inner::Insecure,
            salt: [0; SALT_LEN],
        }
    }

    /// The algorithm.
    pub fn alg(&self) -> AeadAlg {
        self.alg
    }

    fn nonce(&self, iv: &[u8; IV_LEN]) -> [u8; 12] {
        let mut n = [0u8; 12];
        let (s, i) = n.split_at_mut(SALT_LEN);
        s.copy_from_slice(&self.salt);
        i.copy_from_slice(iv);
        n
    }

    /// Encrypts `in_out` in place and returns the tag.
    pub fn seal_in_place(
        &self,
        iv: &[u8; IV_LEN],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<[u8; TAG_LEN]> {
        let nonce = self.nonce(iv);
        let failed = CryptoError::Backend { what: "AEAD seal" };
        let mut out = [0u8; TAG_LEN];
        match &self.inner {
            Inner::Ring(k) => {
                let tag = k
                    .seal_in_place_separate_tag(
                        ring::aead::Nonce::assume_unique_for_key(nonce),
                        ring::aead::Aad::from(aad),
                        in_out,
                    )
                    .map_err(|_| failed)?;
                out.copy_from_slice(tag.as_ref());
            }
            Inner::AwsLc(k) => {
                let tag = k
                    .seal_in_place_separate_tag(
                        aws_lc_rs::aead::Nonce::assume_unique_for_key(nonce),
                        aws_lc_rs::aead::Aad::from(aad),
                        in_out,
                    )
                    .map_err(|_| failed)?;
                out.copy_from_slice(tag.as_ref());
            }
            #[cfg(feature = "insecure")]
            Inner::Insecure => {}
        }
        Ok(out)
    }

    /// Verifies and decrypts `in_out` = ciphertext | tag in place; returns the plaintext
    /// length (the ciphertext part, now plaintext, is `in_out[..len]`).
    pub fn open_in_place(&self, iv: &[u8; IV_LEN], aad: &[u8], in_out: &mut [u8]) -> Result<usize> {
        let len = in_out
            .len()
            .checked_sub(TAG_LEN)
            .ok_or(CryptoError::Truncated {
                what: "AEAD ciphertext",
                needed: TAG_LEN,
                got: in_out.len(),
            })?;
        let nonce = self.nonce(iv);
        let failed = CryptoError::IntegrityCheckFailed {
            what: "AEAD ciphertext",
        };
        match &self.inner {
            Inner::Ring(k) => {
                k.open_in_place(
                    ring::aead::Nonce::assume_unique_for_key(nonce),
                    ring::aead::Aad::from(aad),
                    in_out,
                )
                .map_err(|_| failed)?;
            }
            Inner::AwsLc(k) => {
                k.open_in_place(
                    aws_lc_rs::aead::Nonce::assume_unique_for_key(nonce),
                    aws_lc_rs::aead::Aad::from(aad),
                    in_out,
                )
                .map_err(|_| failed)?;
            }
            #[cfg(feature = "insecure")]
            Inner::Insecure => {}
        }
        Ok(len)
    }
}
