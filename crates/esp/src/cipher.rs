//! The cryptographic transform of one ESP SA: AEAD (RFC 4106, RFC 7634), AES-CBC with
//! HMAC-SHA2/SHA1 (RFC 3602, RFC 4868), or NULL encryption (RFC 4303 with RFC 2410; with an
//! integrity algorithm for authentication-only SAs, without one for framing benchmarks only).
//!
//! ```text
//! packet = SPI | seq | IV | [payload | padding | pad len | next header] | ICV
//!                           \____________ encrypted ____________________/
//! AEAD AAD = SPI | seq (| seq_hi first with ESN: SPI | seq_hi | seq_lo)
//! HMAC ICV over SPI | seq | IV | ciphertext (| seq_hi with ESN, RFC 4303 §2.2.1)
//! ```

use meshsec_crypto::aead::{AeadBackend, AeadKey, IV_LEN};
use meshsec_crypto::cbc::{BLOCK_LEN, CbcKey};
use meshsec_crypto::rng::Random;
use meshsec_crypto::{CryptoError, Encr, Integ, Secret};

use crate::drop::DropReason;

/// One SA's cipher and integrity keys.
pub enum EspCipher {
    /// AES-GCM or ChaCha20-Poly1305.
    Aead(Box<AeadKey>),
    /// AES-CBC with an HMAC.
    CbcHmac {
        /// The AES key.
        cbc: Box<CbcKey>,
        /// The integrity algorithm.
        integ: Integ,
        /// Its key.
        key: Secret,
    },
    /// NULL encryption, with or without integrity.
    Null {
        /// The integrity algorithm and key, if any.
        integ: Option<(Integ, Secret)>,
    },
}

impl core::fmt::Debug for EspCipher {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            EspCipher::Aead(k) => write!(f, "EspCipher::Aead({k:?})"),
            EspCipher::CbcHmac { integ, .. } => write!(f, "EspCipher::CbcHmac({integ:?})"),
            EspCipher::Null { integ } => {
                write!(f, "EspCipher::Null({:?})", integ.as_ref().map(|i| i.0))
            }
        }
    }
}

impl EspCipher {
    /// The cipher for a negotiated ENCR/INTEG pair and this direction's keys (`encr_key` is
    /// key | salt for AEAD).
    pub fn new(
        encr: Encr,
        integ: Option<Integ>,
        encr_key: &[u8],
        integ_key: &[u8],
        backend: AeadBackend,
    ) -> Result<EspCipher, CryptoError> {
        let integ_with_key = |i: Integ| i.keyed(integ_key, "ESP integrity key");
        match encr {
            Encr::Aead(alg) => Ok(EspCipher::Aead(Box::new(AeadKey::new(
                alg, backend, encr_key,
            )?))),
            Encr::AesCbc { .. } => {
                let Some(i) = integ else {
                    return Err(CryptoError::Unsupported {
                        what: "ESP AES-CBC without integrity",
                        id: 12,
                    });
                };
                let (integ, key) = integ_with_key(i)?;
                Ok(EspCipher::CbcHmac {
                    cbc: Box::new(CbcKey::new(encr_key)?),
                    integ,
                    key,
                })
            }
            Encr::Null => Ok(EspCipher::Null {
                integ: integ.map(integ_with_key).transpose()?,
            }),
            #[allow(unreachable_patterns)]
            _ => Err(CryptoError::Unsupported {
                what: "ESP ENCR",
                id: encr.id().0.0,
            }),
        }
    }

    /// The cipher of an SA being installed.
    pub fn for_params(p: &crate::SaParams) -> Result<EspCipher, CryptoError> {
        Self::new(
            p.encr,
            p.integ,
            p.encr_key.expose(),
            p.integ_key.expose(),
            p.backend,
        )
    }

    /// Length of the explicit IV.
    pub fn iv_len(&self) -> usize {
        match self {
            EspCipher::Aead(_) => IV_LEN,
            EspCipher::CbcHmac { .. } => BLOCK_LEN,
            EspCipher::Null { .. } => 0,
        }
    }

    /// Alignment of payload | padding | trailer (RFC 4303 §2.4: at least 4).
    pub fn align(&self) -> usize {
        match self {
            EspCipher::CbcHmac { .. } => BLOCK_LEN,
            _ => 4,
        }
    }

    /// Length of the ICV.
    pub fn icv_len(&self) -> usize {
        match self {
            EspCipher::Aead(_) => meshsec_crypto::aead::TAG_LEN,
            EspCipher::CbcHmac { integ, .. } => integ.icv_len(),
            EspCipher::Null { integ } => integ.as_ref().map_or(0, |(i, _)| i.icv_len()),
        }
    }

    /// True for AES-GCM (whose usage limits apply).
    pub fn is_aes_gcm(&self) -> bool {
        matches!(self, EspCipher::Aead(k) if k.alg() != meshsec_crypto::aead::AeadAlg::ChaCha20Poly1305)
    }

    /// Encrypts and authenticates `packet` = header (8) | IV | plaintext | ICV space, in
    /// place. `seq_hi` is the high half of an extended sequence number.
    pub(crate) fn seal(
        &self,
        packet: &mut [u8],
        seq_hi: Option<u32>,
        iv_counter: u64,
        rng: &mut dyn Random,
    ) -> Result<(), DropReason> {
        let iv_len = self.iv_len();
        let icv_len = self.icv_len();
        let len = packet.len();
        let (head, rest) = packet.split_at_mut(8);
        let (iv, rest) = rest.split_at_mut(iv_len);
        let (body, icv) = rest.split_at_mut(len - 8 - iv_len - icv_len);
        match self {
            EspCipher::Aead(k) => {
                iv.copy_from_slice(&iv_counter.to_be_bytes());
                let iv8: [u8; IV_LEN] = iv_counter.to_be_bytes();
                let tag = match seq_hi {
                    None => k.seal_in_place(&iv8, head, body),
                    Some(hi) => k.seal_in_place(&iv8, &esn_aad(head, hi), body),
                }
                .map_err(|_| DropReason::Malformed)?;
                icv.copy_from_slice(&tag);
            }
            EspCipher::CbcHmac { cbc, integ, key } => {
                // RFC 3602: the IV must be unpredictable.
                rng.fill(iv).map_err(|_| DropReason::Malformed)?;
                let iv16: [u8; BLOCK_LEN] = (&*iv).try_into().map_err(|_| DropReason::Malformed)?;
                cbc.encrypt(&iv16, body)
                    .map_err(|_| DropReason::Malformed)?;
                let hi = seq_hi.map(u32::to_be_bytes);
                integ
                    .sign(
                        key.expose(),
                        &[head, iv, body, hi.as_ref().map_or(&[][..], |h| h)],
                        icv,
                    )
                    .map_err(|_| DropReason::Malformed)?;
            }
            EspCipher::Null { integ } => {
                if let Some((integ, key)) = integ {
                    let hi = seq_hi.map(u32::to_be_bytes);
                    integ
                        .sign(
                            key.expose(),
                            &[head, body, hi.as_ref().map_or(&[][..], |h| h)],
                            icv,
                        )
                        .map_err(|_| DropReason::Malformed)?;
                }
            }
        }
        Ok(())
    }

    /// Verifies and decrypts `packet` (header | IV | ciphertext | ICV) in place; returns the
    /// plaintext range within `packet`.
    pub(crate) fn open(
        &self,
        packet: &mut [u8],
        seq_hi: Option<u32>,
    ) -> Result<core::ops::Range<usize>, DropReason> {
        let iv_len = self.iv_len();
        let icv_len = self.icv_len();
        let len = packet.len();
        let body_len = len
            .checked_sub(8 + iv_len + icv_len)
            .filter(|n| *n >= 2)
            .ok_or(DropReason::Malformed)?;
        let start = 8 + iv_len;
        let (head, rest) = packet.split_at_mut(8);
        let (iv, rest) = rest.split_at_mut(iv_len);
        match self {
            EspCipher::Aead(k) => {
                let iv8: [u8; IV_LEN] = (&*iv).try_into().map_err(|_| DropReason::Malformed)?;
                let opened = match seq_hi {
                    None => k.open_in_place(&iv8, head, rest),
                    Some(hi) => k.open_in_place(&iv8, &esn_aad(head, hi), rest),
                };
                opened.map_err(|_| DropReason::AuthFailed)?;
            }
            EspCipher::CbcHmac { cbc, integ, key } => {
                let (body, icv) = rest.split_at_mut(body_len);
                let hi = seq_hi.map(u32::to_be_bytes);
                integ
                    .verify(
                        key.expose(),
                        &[head, iv, body, hi.as_ref().map_or(&[][..], |h| h)],
                        icv,
                        "ESP",
                    )
                    .map_err(|_| DropReason::AuthFailed)?;
                let iv16: [u8; BLOCK_LEN] = (&*iv).try_into().map_err(|_| DropReason::Malformed)?;
                cbc.decrypt(&iv16, body)
                    .map_err(|_| DropReason::Malformed)?;
            }
            EspCipher::Null { integ } => {
                if let Some((integ, key)) = integ {
                    let (body, icv) = rest.split_at_mut(body_len);
                    let hi = seq_hi.map(u32::to_be_bytes);
                    integ
                        .verify(
                            key.expose(),
                            &[head, body, hi.as_ref().map_or(&[][..], |h| h)],
                            icv,
                            "ESP",
                        )
                        .map_err(|_| DropReason::AuthFailed)?;
                }
            }
        }
        Ok(start..start + body_len)
    }
}

/// AAD with ESN (RFC 4106 §5, RFC 7634 §2.1): SPI | seq_hi | seq_lo.
fn esn_aad(head: &[u8], seq_hi: u32) -> [u8; 12] {
    let mut aad = [0u8; 12];
    let (spi, rest) = aad.split_at_mut(4);
    let (hi, lo) = rest.split_at_mut(4);
    spi.copy_from_slice(head.get(..4).unwrap_or(&[0; 4]));
    hi.copy_from_slice(&seq_hi.to_be_bytes());
    lo.copy_from_slice(head.get(4..8).unwrap_or(&[0; 4]));
    aad
}
