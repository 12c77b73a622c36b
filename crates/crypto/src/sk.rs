//! Protection of the Encrypted payload SK and its fragments SKF (RFC 7296 §3.14, RFC 5282 for
//! AEAD, RFC 7383 §2.5 for fragments).
//!
//! ```text
//! AEAD:      AAD = IKE header .. SK (or SKF) payload header;  body = IV | ciphertext | tag
//! CBC+HMAC:  body = IV | ciphertext | ICV, ICV over the whole message up to the ICV
//! plaintext = inner payloads | padding | Pad Length (1 octet)
//! ```

use meshsec_wire::codec::Writer;
use meshsec_wire::registry::PayloadType;
use meshsec_wire::{Header, Message, PayloadBody};

use crate::aead::{AeadBackend, AeadKey, IV_LEN};
use crate::cbc::{BLOCK_LEN, CbcKey};
use crate::encr::Encr;
use crate::error::{CryptoError, Result};
use crate::integ::Integ;
use crate::keys::IkeSuite;
use crate::rng::Random;
use crate::secret::Secret;

enum Cipher {
    Aead(Box<AeadKey>),
    Cbc(Box<CbcKey>),
    #[cfg(feature = "insecure")]
    Insecure,
}

/// The SK protection of one direction of an IKE SA (SK_ei/SK_ai or SK_er/SK_ar).
pub struct SkKey {
    encr: Encr,
    cipher: Cipher,
    integ: Option<(Integ, Secret)>,
}

impl core::fmt::Debug for SkKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "SkKey({:?}, <keys redacted>)", self.encr)
    }
}

/// A decrypted SK or SKF payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// Type of the first inner payload (`NONE` in non-first fragments).
    pub first_inner: PayloadType,
    /// The inner payload chain (or, for a fragment, its part of it).
    pub plaintext: Vec<u8>,
    /// `Some((number, total))` if this was an SKF fragment.
    pub fragment: Option<(u16, u16)>,
}

impl SkKey {
    /// Keys for one direction: `sk_e` (key | salt for AEAD) and `sk_a` (empty for AEAD).
    pub fn new(suite: &IkeSuite, sk_e: &[u8], sk_a: &[u8]) -> Result<SkKey> {
        let cipher = match suite.encr {
            Encr::Aead(alg) => Cipher::Aead(Box::new(AeadKey::new(alg, AeadBackend::AwsLc, sk_e)?)),
            Encr::AesCbc { key_len } => {
                if sk_e.len() != key_len {
                    return Err(CryptoError::KeyLength {
                        what: "SK_e",
                        expected: key_len,
                        got: sk_e.len(),
                    });
                }
                Cipher::Cbc(Box::new(CbcKey::new(sk_e)?))
            }
            Encr::Null => {
                return Err(CryptoError::Unsupported {
                    what: "ENCR for IKE (NULL)",
                    id: 11,
                });
            }
            #[cfg(feature = "insecure")]
            Encr::Insecure => Cipher::Insecure,
        };
        let integ = match (suite.encr.is_aead(), suite.integ) {
            (true, _) => None,
            (false, Some(i)) => Some(i.keyed(sk_a, "SK_a")?),
            (false, None) => {
                #[cfg(feature = "insecure")]
                if suite.encr == Encr::Insecure {
                    return Ok(SkKey {
                        encr: suite.encr,
                        cipher,
                        integ: None,
                    });
                }
                return Err(CryptoError::Unsupported {
                    what: "ENCR without INTEG",
                    id: suite.encr.id().0.0,
                });
            }
        };
        Ok(SkKey {
            encr: suite.encr,
            cipher,
            integ,
        })
    }

    fn icv_len(&self) -> usize {
        self.encr.tag_len() + self.integ.as_ref().map_or(0, |(i, _)| i.icv_len())
    }

    /// Padding so that inner payloads, padding and the Pad Length octet fill whole blocks.
    fn pad_len(&self, inner_len: usize) -> usize {
        let block = self.encr.block_len();
        (block - (inner_len + 1) % block) % block
    }

    /// The whole encrypted message: `header` (Length computed here) and one SK payload
    /// holding the emitted inner payload chain `inner`, whose first payload is `first_inner`.
    pub fn seal(
        &self,
        header: &Header,
        first_inner: PayloadType,
        inner: &[u8],
        rng: &mut dyn Random,
    ) -> Result<Vec<u8>> {
        self.seal_with(header, PayloadType::SK, None, first_inner, inner, rng)
    }

    /// One SKF fragment (RFC 7383): `first_inner` is the real type in fragment 1 and `NONE`
    /// in the others.
    pub fn seal_fragment(
        &self,
        header: &Header,
        (number, total): (u16, u16),
        first_inner: PayloadType,
        part: &[u8],
        rng: &mut dyn Random,
    ) -> Result<Vec<u8>> {
        self.seal_with(
            header,
            PayloadType::SKF,
            Some((number, total)),
            first_inner,
            part,
            rng,
        )
    }

    fn seal_with(
        &self,
        header: &Header,
        ty: PayloadType,
        fragment: Option<(u16, u16)>,
        first_inner: PayloadType,
        inner: &[u8],
        rng: &mut dyn Random,
    ) -> Result<Vec<u8>> {
        let iv_len = self.encr.iv_len();
        let pad = self.pad_len(inner.len());
        let plain_len = inner.len() + pad + 1;
        let mut out = Vec::new();
        let mut w = Writer::new(&mut out);
        let msg_len = header.emit(&mut w, ty);
        let start = w.position();
        w.u8(first_inner.0);
        w.u8(0);
        let payload_len = w.reserve_u16(start, "SK payload");
        if let Some((number, total)) = fragment {
            w.u16(number);
            w.u16(total);
        }
        let body_start = w.position();
        let mut iv = vec![0u8; iv_len];
        rng.fill(&mut iv)?;
        w.bytes(&iv);
        w.bytes(inner);
        w.bytes(&vec![0u8; pad]);
        w.u8(u8::try_from(pad).map_err(|_| CryptoError::Backend { what: "SK padding" })?);
        w.bytes(&vec![0u8; self.icv_len()]);
        w.patch_len_u16(payload_len)
            .map_err(|_| CryptoError::BadLength {
                what: "SK payload",
                problem: "too long for one payload (fragment it)",
            })?;
        w.patch_len_u32(msg_len)
            .map_err(|_| CryptoError::BadLength {
                what: "IKE message",
                problem: "too long",
            })?;
        let icv_at = out.len() - self.icv_len();
        let (aad, rest) = out.split_at_mut(body_start);
        let (iv_and_plain, icv) = rest.split_at_mut(icv_at - body_start);
        let plain = iv_and_plain.get_mut(iv_len..).unwrap_or_default();
        debug_assert_eq!(plain.len(), plain_len);
        match &self.cipher {
            Cipher::Aead(k) => {
                let tag = k.seal_in_place(&iv8(&iv)?, aad, plain)?;
                icv.copy_from_slice(&tag);
            }
            Cipher::Cbc(k) => {
                k.encrypt(&iv16(&iv)?, plain)?;
                if let Some((integ, key)) = &self.integ {
                    integ.sign(key.expose(), &[aad, iv_and_plain], icv)?;
                }
            }
            #[cfg(feature = "insecure")]
            Cipher::Insecure => {}
        }
        Ok(out)
    }

    /// Verifies and decrypts the SK or SKF payload that ends `message` (a whole IKE message,
    /// without the port-4500 marker).
    pub fn open(&self, message: &[u8]) -> Result<Opened> {
        let parsed = Message::parse(message).map_err(|_| CryptoError::BadLength {
            what: "IKE message",
            problem: "does not parse",
        })?;
        let (first_inner, body_len, fragment) = match parsed.payloads.last().map(|p| &p.body) {
            Some(PayloadBody::Sk(sk)) => (sk.first_inner, sk.data.len(), None),
            Some(PayloadBody::Skf(f)) => (f.first_inner, f.data.len(), Some((f.number, f.total))),
            _ => {
                return Err(CryptoError::BadLength {
                    what: "IKE message",
                    problem: "has no SK or SKF payload",
                });
            }
        };
        let (aad, body) = message.split_at(message.len() - body_len);
        let iv_len = self.encr.iv_len();
        let icv_len = self.icv_len();
        let min = iv_len + icv_len + 1;
        if body.len() < min {
            return Err(CryptoError::Truncated {
                what: "SK payload",
                needed: min,
                got: body.len(),
            });
        }
        let (iv, rest) = body.split_at(iv_len);
        let mut plain = match &self.cipher {
            Cipher::Aead(k) => {
                let mut buf = rest.to_vec();
                let n = k.open_in_place(&iv8(iv)?, aad, &mut buf)?;
                buf.truncate(n);
                buf
            }
            Cipher::Cbc(k) => {
                let (ct, icv) = rest.split_at(rest.len() - icv_len);
                if let Some((integ, key)) = &self.integ {
                    let signed = message.get(..message.len() - icv_len).unwrap_or_default();
                    integ.verify(key.expose(), &[signed], icv, "SK payload")?;
                }
                let mut buf = ct.to_vec();
                k.decrypt(&iv16(iv)?, &mut buf)?;
                buf
            }
            #[cfg(feature = "insecure")]
            Cipher::Insecure => rest
                .get(..rest.len() - icv_len)
                .unwrap_or_default()
                .to_vec(),
        };
        let pad = usize::from(
            *plain
                .last()
                .ok_or(CryptoError::BadPadding { what: "SK payload" })?,
        );
        let len = plain
            .len()
            .checked_sub(pad + 1)
            .ok_or(CryptoError::BadPadding { what: "SK payload" })?;
        plain.truncate(len);
        Ok(Opened {
            first_inner,
            plaintext: plain,
            fragment,
        })
    }
}

fn iv8(iv: &[u8]) -> Result<[u8; IV_LEN]> {
    iv.try_into().map_err(|_| CryptoError::Truncated {
        what: "SK IV",
        needed: IV_LEN,
        got: iv.len(),
    })
}

fn iv16(iv: &[u8]) -> Result<[u8; BLOCK_LEN]> {
    iv.try_into().map_err(|_| CryptoError::Truncated {
        what: "SK IV",
        needed: BLOCK_LEN,
        got: iv.len(),
    })
}
