//! Signature helpers for AUTH: RSA PKCS#1 v1.5, RSA-PSS, ECDSA P-256/P-384 and Ed25519, and
//! the RFC 7427 "Digital Signature" encoding (AUTH method 14): the AUTH data is
//! `ASN.1 length (1 octet) | AlgorithmIdentifier (DER) | signature`.
//!
//! ECDSA signatures in the RFC 7427 method are DER `ECDSA-Sig-Value`s (as in X.509).

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use meshsec_wire::registry::HashAlgorithm;

use crate::error::{CryptoError, Result};

/// A signature scheme usable with the RFC 7427 Digital Signature method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignatureScheme {
    /// sha256WithRSAEncryption (PKCS#1 v1.5).
    RsaPkcs1Sha256,
    /// sha384WithRSAEncryption.
    RsaPkcs1Sha384,
    /// sha512WithRSAEncryption.
    RsaPkcs1Sha512,
    /// RSASSA-PSS, SHA-256, MGF1-SHA-256, salt 32.
    RsaPssSha256,
    /// RSASSA-PSS, SHA-384, MGF1-SHA-384, salt 48.
    RsaPssSha384,
    /// RSASSA-PSS, SHA-512, MGF1-SHA-512, salt 64.
    RsaPssSha512,
    /// ecdsa-with-SHA256 on P-256.
    EcdsaP256Sha256,
    /// ecdsa-with-SHA384 on P-384.
    EcdsaP384Sha384,
    /// ecdsa-with-SHA512 on P-521.
    EcdsaP521Sha512,
    /// Ed25519 (RFC 8420: hash "Identity").
    Ed25519,
}

const RSA_SHA256: &[u8] = &[
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00,
];
const RSA_SHA384: &[u8] = &[
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c, 0x05, 0x00,
];
const RSA_SHA512: &[u8] = &[
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d, 0x05, 0x00,
];
/// RSASSA-PSS parameters: hash, MGF1 with the same hash, salt length = hash length.
macro_rules! pss {
    ($h:literal, $salt:literal) => {
        &[
            0x30, 0x41, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a, 0x30,
            0x34, 0xa0, 0x0f, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04,
            0x02, $h, 0x05, 0x00, 0xa1, 0x1c, 0x30, 0x1a, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7,
            0x0d, 0x01, 0x01, 0x08, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03,
            0x04, 0x02, $h, 0x05, 0x00, 0xa2, 0x03, 0x02, 0x01, $salt,
        ]
    };
}
const RSA_PSS_SHA256: &[u8] = pss!(0x01, 0x20);
const RSA_PSS_SHA384: &[u8] = pss!(0x02, 0x30);
const RSA_PSS_SHA512: &[u8] = pss!(0x03, 0x40);
const ECDSA_SHA256: &[u8] = &[
    0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
];
const ECDSA_SHA384: &[u8] = &[
    0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03,
];
const ECDSA_SHA512: &[u8] = &[
    0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04,
];
const ED25519: &[u8] = &[0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70];

/// Every scheme, for lookups.
pub const ALL: &[SignatureScheme] = &[
    SignatureScheme::RsaPkcs1Sha256,
    SignatureScheme::RsaPkcs1Sha384,
    SignatureScheme::RsaPkcs1Sha512,
    SignatureScheme::RsaPssSha256,
    SignatureScheme::RsaPssSha384,
    SignatureScheme::RsaPssSha512,
    SignatureScheme::EcdsaP256Sha256,
    SignatureScheme::EcdsaP384Sha384,
    SignatureScheme::EcdsaP521Sha512,
    SignatureScheme::Ed25519,
];

impl SignatureScheme {
    /// The DER AlgorithmIdentifier that RFC 7427 puts before the signature.
    pub fn algorithm_identifier(self) -> &'static [u8] {
        match self {
            SignatureScheme::RsaPkcs1Sha256 => RSA_SHA256,
            SignatureScheme::RsaPkcs1Sha384 => RSA_SHA384,
            SignatureScheme::RsaPkcs1Sha512 => RSA_SHA512,
            SignatureScheme::RsaPssSha256 => RSA_PSS_SHA256,
            SignatureScheme::RsaPssSha384 => RSA_PSS_SHA384,
            SignatureScheme::RsaPssSha512 => RSA_PSS_SHA512,
            SignatureScheme::EcdsaP256Sha256 => ECDSA_SHA256,
            SignatureScheme::EcdsaP384Sha384 => ECDSA_SHA384,
            SignatureScheme::EcdsaP521Sha512 => ECDSA_SHA512,
            SignatureScheme::Ed25519 => ED25519,
        }
    }

    /// The scheme with this AlgorithmIdentifier, if we support it.
    pub fn from_algorithm_identifier(der: &[u8]) -> Option<SignatureScheme> {
        ALL.iter()
            .copied()
            .find(|s| s.algorithm_identifier() == der)
    }

    /// An RSA scheme (PKCS#1 v1.5 or PSS).
    pub fn is_rsa(self) -> bool {
        self.is_rsa_pss()
            || matches!(
                self,
                SignatureScheme::RsaPkcs1Sha256
                    | SignatureScheme::RsaPkcs1Sha384
                    | SignatureScheme::RsaPkcs1Sha512
            )
    }

    /// An RSASSA-PSS scheme.
    pub fn is_rsa_pss(self) -> bool {
        matches!(
            self,
            SignatureScheme::RsaPssSha256
                | SignatureScheme::RsaPssSha384
                | SignatureScheme::RsaPssSha512
        )
    }

    /// The hash to announce in SIGNATURE_HASH_ALGORITHMS (RFC 7427 §4, RFC 8420).
    pub fn hash(self) -> HashAlgorithm {
        match self {
            SignatureScheme::RsaPkcs1Sha256
            | SignatureScheme::RsaPssSha256
            | SignatureScheme::EcdsaP256Sha256 => HashAlgorithm::SHA2_256,
            SignatureScheme::RsaPkcs1Sha384
            | SignatureScheme::RsaPssSha384
            | SignatureScheme::EcdsaP384Sha384 => HashAlgorithm::SHA2_384,
            SignatureScheme::RsaPkcs1Sha512
            | SignatureScheme::RsaPssSha512
            | SignatureScheme::EcdsaP521Sha512 => HashAlgorithm::SHA2_512,
            SignatureScheme::Ed25519 => HashAlgorithm::IDENTITY,
        }
    }

    fn verification(self) -> &'static dyn signature::VerificationAlgorithm {
        match self {
            SignatureScheme::RsaPkcs1Sha256 => &signature::RSA_PKCS1_2048_8192_SHA256,
            SignatureScheme::RsaPkcs1Sha384 => &signature::RSA_PKCS1_2048_8192_SHA384,
            SignatureScheme::RsaPkcs1Sha512 => &signature::RSA_PKCS1_2048_8192_SHA512,
            SignatureScheme::RsaPssSha256 => &signature::RSA_PSS_2048_8192_SHA256,
            SignatureScheme::RsaPssSha384 => &signature::RSA_PSS_2048_8192_SHA384,
            SignatureScheme::RsaPssSha512 => &signature::RSA_PSS_2048_8192_SHA512,
            SignatureScheme::EcdsaP256Sha256 => &signature::ECDSA_P256_SHA256_ASN1,
            SignatureScheme::EcdsaP384Sha384 => &signature::ECDSA_P384_SHA384_ASN1,
            SignatureScheme::EcdsaP521Sha512 => &signature::ECDSA_P521_SHA512_ASN1,
            SignatureScheme::Ed25519 => &signature::ED25519,
        }
    }
}

/// RFC 7427 AUTH data for `scheme` and `sig`.
pub fn encode_digital_signature(scheme: SignatureScheme, sig: &[u8]) -> Vec<u8> {
    let alg = scheme.algorithm_identifier();
    let mut out = Vec::with_capacity(1 + alg.len() + sig.len());
    // Every AlgorithmIdentifier above is shorter than 128 octets.
    out.push(alg.len() as u8);
    out.extend_from_slice(alg);
    out.extend_from_slice(sig);
    out
}

/// Splits RFC 7427 AUTH data into its scheme and signature.
pub fn decode_digital_signature(data: &[u8]) -> Result<(SignatureScheme, &[u8])> {
    let (&len, rest) = data.split_first().ok_or(CryptoError::Truncated {
        what: "Digital Signature AUTH data",
        needed: 1,
        got: 0,
    })?;
    let len = usize::from(len);
    if rest.len() < len {
        return Err(CryptoError::Truncated {
            what: "Digital Signature AlgorithmIdentifier",
            needed: len,
            got: rest.len(),
        });
    }
    let (alg, sig) = rest.split_at(len);
    let scheme = SignatureScheme::from_algorithm_identifier(alg).ok_or(CryptoError::Signature {
        reason: "unsupported signature AlgorithmIdentifier",
    })?;
    Ok((scheme, sig))
}

/// Verifies `sig` over `msg` with a public key in the form aws-lc takes: for RSA the DER
/// RSAPublicKey or SubjectPublicKeyInfo, for ECDSA the uncompressed point, for Ed25519 the 32
/// raw octets.
pub fn verify(scheme: SignatureScheme, public_key: &[u8], msg: &[u8], sig: &[u8]) -> Result<()> {
    signature::UnparsedPublicKey::new(scheme.verification(), public_key)
        .verify(msg, sig)
        .map_err(|_| CryptoError::Signature {
            reason: "does not verify with the peer's public key",
        })
}

/// The ECDSA curves we sign with, and the RFC 7427 scheme of each.
const ECDSA_SIGNING: &[(&signature::EcdsaSigningAlgorithm, SignatureScheme)] = &[
    (
        &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        SignatureScheme::EcdsaP256Sha256,
    ),
    (
        &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
        SignatureScheme::EcdsaP384Sha384,
    ),
    (
        &signature::ECDSA_P521_SHA512_ASN1_SIGNING,
        SignatureScheme::EcdsaP521Sha512,
    ),
];

enum Key {
    Rsa(RsaKeyPair),
    Ecdsa(EcdsaKeyPair, SignatureScheme),
    Ed25519(Ed25519KeyPair),
}

/// A private key for AUTH signatures.
pub struct SigningKey(Key);

impl core::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let kind = match self.0 {
            Key::Rsa(_) => "RSA",
            Key::Ecdsa(..) => "ECDSA",
            Key::Ed25519(_) => "Ed25519",
        };
        write!(f, "SigningKey({kind}, <redacted>)")
    }
}

/// What kind of key a [`SigningKey`] holds: it decides the signature schemes (RFC 7427 and
/// legacy) the key can make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// RSA with this modulus size in bits.
    Rsa(usize),
    /// ECDSA on P-256.
    EcdsaP256,
    /// ECDSA on P-384.
    EcdsaP384,
    /// ECDSA on P-521.
    EcdsaP521,
    /// Ed25519.
    Ed25519,
}

impl core::fmt::Display for KeyKind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            KeyKind::Rsa(bits) => write!(f, "RSA-{bits}"),
            KeyKind::EcdsaP256 => f.write_str("ECDSA P-256"),
            KeyKind::EcdsaP384 => f.write_str("ECDSA P-384"),
            KeyKind::EcdsaP521 => f.write_str("ECDSA P-521"),
            KeyKind::Ed25519 => f.write_str("Ed25519"),
        }
    }
}

/// Signatures of the AUTH methods before RFC 7427, which carry no algorithm identifier: RSA
/// Digital Signature (method 1, RSASSA-PKCS1-v1_5 with SHA-1, RFC 7296 §3.8) and ECDSA with
/// SHA-256/384/512 on P-256/384/521 (methods 9, 10, 11, RFC 4754: `r | s`, fixed length).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegacySignature {
    /// Method 1.
    RsaPkcs1Sha1,
    /// Method 9.
    EcdsaP256Sha256,
    /// Method 10.
    EcdsaP384Sha384,
    /// Method 11.
    EcdsaP521Sha512,
}

impl LegacySignature {
    /// Verifies `sig` over `msg` (public key as for [`verify`]).
    pub fn verify(self, public_key: &[u8], msg: &[u8], sig: &[u8]) -> Result<()> {
        let alg: &'static dyn signature::VerificationAlgorithm = match self {
            LegacySignature::RsaPkcs1Sha1 => {
                &signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY
            }
            LegacySignature::EcdsaP256Sha256 => &signature::ECDSA_P256_SHA256_FIXED,
            LegacySignature::EcdsaP384Sha384 => &signature::ECDSA_P384_SHA384_FIXED,
            LegacySignature::EcdsaP521Sha512 => &signature::ECDSA_P521_SHA512_FIXED,
        };
        signature::UnparsedPublicKey::new(alg, public_key)
            .verify(msg, sig)
            .map_err(|_| CryptoError::Signature {
                reason: "does not verify with the peer's public key",
            })
    }
}

/// An ASN.1 DER `ECDSA-Sig-Value` (SEQUENCE of two INTEGERs) as the fixed `r | s` of RFC 4754,
/// each integer left-padded to `width` octets.
fn ecdsa_der_to_fixed(der: &[u8], width: usize) -> Option<Vec<u8>> {
    fn tlv(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
        let (&t, rest) = input.split_first()?;
        let (&len, rest) = rest.split_first()?;
        if t != tag {
            return None;
        }
        let (len, rest) = match len {
            n if n < 0x80 => (usize::from(n), rest),
            0x81 => {
                let (&n, rest) = rest.split_first()?;
                (usize::from(n), rest)
            }
            _ => return None,
        };
        (rest.len() >= len).then(|| rest.split_at(len))
    }
    let (seq, _) = tlv(der, 0x30)?;
    let (r, rest) = tlv(seq, 0x02)?;
    let (s, _) = tlv(rest, 0x02)?;
    let mut out = Vec::with_capacity(2 * width);
    for int in [r, s] {
        let int = match int.iter().position(|b| *b != 0) {
            Some(i) => int.get(i..)?,
            None => &[],
        };
        out.extend(std::iter::repeat_n(0u8, width.checked_sub(int.len())?));
        out.extend_from_slice(int);
    }
    Some(out)
}

impl SigningKey {
    /// Loads a private key in DER of any supported form: PKCS#8 (any type), PKCS#1 (RSA) or
    /// SEC1 / RFC 5915 (ECDSA) — what `openssl`, strongSwan's `pki` and rcgen write.
    pub fn from_der(der: &[u8]) -> Result<SigningKey> {
        if let Ok(k) = SigningKey::from_pkcs8(der) {
            return Ok(k);
        }
        if let Ok(k) = RsaKeyPair::from_der(der) {
            return Ok(SigningKey(Key::Rsa(k)));
        }
        for &(alg, scheme) in ECDSA_SIGNING {
            if let Ok(k) = EcdsaKeyPair::from_private_key_der(alg, der) {
                return Ok(SigningKey(Key::Ecdsa(k, scheme)));
            }
        }
        Err(CryptoError::KeyRejected {
            what: "private key",
            reason: "not an RSA (PKCS#1 or PKCS#8), ECDSA P-256/P-384/P-521 (SEC1 or PKCS#8) or Ed25519 (PKCS#8) key",
        })
    }

    /// The kind of key.
    pub fn kind(&self) -> KeyKind {
        match &self.0 {
            Key::Rsa(k) => KeyKind::Rsa(k.public_modulus_len() * 8),
            Key::Ecdsa(_, SignatureScheme::EcdsaP384Sha384) => KeyKind::EcdsaP384,
            Key::Ecdsa(_, SignatureScheme::EcdsaP521Sha512) => KeyKind::EcdsaP521,
            Key::Ecdsa(..) => KeyKind::EcdsaP256,
            Key::Ed25519(_) => KeyKind::Ed25519,
        }
    }

    /// Signs `msg` for a peer that does not take RFC 7427 signatures: ECDSA keys with their
    /// RFC 4754 method; `None` for keys that have no such method we can make (RSA method 1
    /// needs SHA-1 signing, which aws-lc-rs does not offer; Ed25519 exists only in RFC 7427).
    pub fn sign_legacy(&self, msg: &[u8]) -> Option<Result<(LegacySignature, Vec<u8>)>> {
        let Key::Ecdsa(_, scheme) = &self.0 else {
            return None;
        };
        let (legacy, width) = match scheme {
            SignatureScheme::EcdsaP384Sha384 => (LegacySignature::EcdsaP384Sha384, 48),
            SignatureScheme::EcdsaP521Sha512 => (LegacySignature::EcdsaP521Sha512, 66),
            _ => (LegacySignature::EcdsaP256Sha256, 32),
        };
        Some(self.sign(*scheme, msg).and_then(|der| {
            ecdsa_der_to_fixed(&der, width)
                .map(|fixed| (legacy, fixed))
                .ok_or(CryptoError::Signature {
                    reason: "ECDSA signature not in DER",
                })
        }))
    }

    /// Loads a PKCS#8 (DER) private key of any supported type.
    pub fn from_pkcs8(der: &[u8]) -> Result<SigningKey> {
        if let Ok(k) = Ed25519KeyPair::from_pkcs8(der) {
            return Ok(SigningKey(Key::Ed25519(k)));
        }
        for &(alg, scheme) in ECDSA_SIGNING {
            if let Ok(k) = EcdsaKeyPair::from_pkcs8(alg, der) {
                return Ok(SigningKey(Key::Ecdsa(k, scheme)));
            }
        }
        RsaKeyPair::from_pkcs8(der)
            .map(|k| SigningKey(Key::Rsa(k)))
            .map_err(|_| CryptoError::KeyRejected {
                what: "private key",
                reason: "not a PKCS#8 RSA, ECDSA P-256/P-384 or Ed25519 key",
            })
    }

    /// The public key in the form [`verify`] takes.
    pub fn public_key(&self) -> Vec<u8> {
        match &self.0 {
            Key::Rsa(k) => k.public_key().as_ref().to_vec(),
            Key::Ecdsa(k, _) => k.public_key().as_ref().to_vec(),
            Key::Ed25519(k) => k.public_key().as_ref().to_vec(),
        }
    }

    /// Whether this key can sign with `scheme`.
    pub fn supports(&self, scheme: SignatureScheme) -> bool {
        use SignatureScheme as S;
        match &self.0 {
            Key::Rsa(_) => scheme.is_rsa(),
            Key::Ecdsa(_, s) => *s == scheme,
            Key::Ed25519(_) => scheme == S::Ed25519,
        }
    }

    /// Signs `msg` with `scheme`.
    pub fn sign(&self, scheme: SignatureScheme, msg: &[u8]) -> Result<Vec<u8>> {
        if !self.supports(scheme) {
            return Err(CryptoError::Signature {
                reason: "the key cannot sign with this scheme",
            });
        }
        let failed = |_| CryptoError::Signature {
            reason: "signing failed",
        };
        let rng = SystemRandom::new();
        match &self.0 {
            Key::Rsa(k) => {
                let enc: &'static dyn signature::RsaEncoding = match scheme {
                    SignatureScheme::RsaPkcs1Sha256 => &signature::RSA_PKCS1_SHA256,
                    SignatureScheme::RsaPkcs1Sha384 => &signature::RSA_PKCS1_SHA384,
                    SignatureScheme::RsaPkcs1Sha512 => &signature::RSA_PKCS1_SHA512,
                    SignatureScheme::RsaPssSha256 => &signature::RSA_PSS_SHA256,
                    SignatureScheme::RsaPssSha384 => &signature::RSA_PSS_SHA384,
                    _ => &signature::RSA_PSS_SHA512,
                };
                let mut sig = vec![0u8; k.public_modulus_len()];
                k.sign(enc, &rng, msg, &mut sig).map_err(failed)?;
                Ok(sig)
            }
            Key::Ecdsa(k, _) => Ok(k.sign(&rng, msg).map_err(failed)?.as_ref().to_vec()),
            Key::Ed25519(k) => Ok(k.sign(msg).as_ref().to_vec()),
        }
    }
}
