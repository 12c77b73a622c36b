//! The configured CAs and CRLs, and the validation of a peer's certificate chain against them
//! (RFC 5280 path validation by rustls-webpki; the IKE-specific checks — KeyUsage, the
//! identity binding, the public key for AUTH — here).

use std::time::Duration;

use meshsec_crypto::digest::sha1;
use meshsec_wire::payload::Identity;
use rustls_pki_types::{CertificateDer, TrustAnchor, UnixTime};
use webpki::{
    CertRevocationList, EndEntityCert, ExpirationPolicy, ExtendedKeyUsageValidator, KeyPurposeId,
    KeyPurposeIdIter, OwnedCertRevocationList, RevocationCheckDepth, RevocationOptionsBuilder,
    UnknownStatusPolicy,
};
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;
use x509_parser::time::ASN1Time;

use crate::error::{CertError, clean};
use crate::identity;

/// The algorithms certificate signatures may use.
static ALGORITHMS: &[&dyn rustls_pki_types::SignatureVerificationAlgorithm] = &[
    webpki::aws_lc_rs::ECDSA_P256_SHA256,
    webpki::aws_lc_rs::ECDSA_P256_SHA384,
    webpki::aws_lc_rs::ECDSA_P384_SHA256,
    webpki::aws_lc_rs::ECDSA_P384_SHA384,
    webpki::aws_lc_rs::ECDSA_P521_SHA256,
    webpki::aws_lc_rs::ECDSA_P521_SHA384,
    webpki::aws_lc_rs::ECDSA_P521_SHA512,
    webpki::aws_lc_rs::ED25519,
    webpki::aws_lc_rs::RSA_PKCS1_2048_8192_SHA256,
    webpki::aws_lc_rs::RSA_PKCS1_2048_8192_SHA384,
    webpki::aws_lc_rs::RSA_PKCS1_2048_8192_SHA512,
    webpki::aws_lc_rs::RSA_PKCS1_2048_8192_SHA256_ABSENT_PARAMS,
    webpki::aws_lc_rs::RSA_PKCS1_2048_8192_SHA384_ABSENT_PARAMS,
    webpki::aws_lc_rs::RSA_PKCS1_2048_8192_SHA512_ABSENT_PARAMS,
    webpki::aws_lc_rs::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
    webpki::aws_lc_rs::RSA_PSS_2048_8192_SHA384_LEGACY_KEY,
    webpki::aws_lc_rs::RSA_PSS_2048_8192_SHA512_LEGACY_KEY,
];

/// ExtendedKeyUsage as RFC 4945 §5.1.3.12 would have it, leniently (as strongSwan and
/// OpenIKED are): no EKU is fine; with one, any IPsec/IKE purpose, anyExtendedKeyUsage, or the
/// TLS server/client purposes most CAs issue for hosts.
struct IkeUsage;

/// id-kp-ipsecIKE (1.3.6.1.5.5.7.3.17), RFC 4945 §5.1.3.12.
const IPSEC_IKE: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x11];

/// The DER contents of the accepted key purpose OIDs.
const PURPOSES: &[&[u8]] = &[
    IPSEC_IKE,
    &[0x55, 0x1d, 0x25, 0x00], // anyExtendedKeyUsage 2.5.29.37.0
    &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01], // serverAuth
    &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02], // clientAuth
    &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x05], // ipsecEndSystem
    &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x06], // ipsecTunnel
    &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x07], // ipsecUser
];

impl ExtendedKeyUsageValidator for IkeUsage {
    fn validate(&self, iter: KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        let mut seen = Vec::new();
        for purpose in iter {
            let purpose = purpose?;
            if PURPOSES.iter().any(|p| purpose == KeyPurposeId::new(p)) {
                return Ok(());
            }
            seen.push(purpose.to_decoded_oid());
        }
        // webpki asks with no purposes when the certificate has no ExtendedKeyUsage.
        if seen.is_empty() {
            return Ok(());
        }
        Err(webpki::Error::RequiredEkuNotFoundContext(
            webpki::RequiredEkuNotFoundContext {
                required: webpki::KeyUsage::required(IPSEC_IKE),
                present: seen,
            },
        ))
    }
}

/// A public key's algorithm, as AUTH verification needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlgorithm {
    /// rsaEncryption.
    Rsa,
    /// id-RSASSA-PSS: an RSA key restricted to PSS signatures.
    RsaPss,
    /// ECDSA on P-256.
    EcdsaP256,
    /// ECDSA on P-384.
    EcdsaP384,
    /// ECDSA on P-521.
    EcdsaP521,
    /// Ed25519.
    Ed25519,
}

/// A peer certificate that validated, with what authentication needs from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCertificate {
    /// Its subject, for logs.
    pub subject: String,
    /// Its notAfter (seconds since the Unix epoch).
    pub not_after: i64,
    /// The public key's algorithm.
    pub algorithm: KeyAlgorithm,
    /// The public key as signature verification takes it (the subjectPublicKey bits: the
    /// RSAPublicKey DER, the uncompressed EC point, the Ed25519 octets).
    pub public_key: Vec<u8>,
}

/// A time for messages.
pub fn show_time(unix: i64) -> String {
    ASN1Time::from_timestamp(unix)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| format!("{unix} s after the epoch"))
}

/// What we say about a trust anchor.
struct AnchorInfo {
    subject: String,
    spki_sha1: [u8; 20],
}

/// The CAs we trust and the CRLs we honour, parsed once (every validation uses them, the
/// unauthenticated ones too).
#[derive(Default)]
pub struct TrustStore {
    anchors: Vec<TrustAnchor<'static>>,
    info: Vec<AnchorInfo>,
    crls: Vec<CertRevocationList<'static>>,
    /// Every input, to tell two stores apart (reload).
    inputs: Vec<Vec<u8>>,
}

impl core::fmt::Debug for TrustStore {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TrustStore")
            .field("anchors", &self.anchor_names())
            .field("crls", &self.crls.len())
            .finish()
    }
}

impl PartialEq for TrustStore {
    fn eq(&self, other: &TrustStore) -> bool {
        self.inputs == other.inputs
    }
}

impl Eq for TrustStore {}

fn parse(der: &[u8], position: usize) -> Result<X509Certificate<'_>, CertError> {
    match X509Certificate::from_der(der) {
        Ok(([], cert)) => Ok(cert),
        Ok(_) => Err(CertError::Malformed {
            position,
            reason: "trailing octets after the certificate".into(),
        }),
        Err(e) => Err(CertError::Malformed {
            position,
            reason: e.to_string(),
        }),
    }
}

impl TrustStore {
    /// A store of the CA certificates `cas` and CRLs `crls` (DER). Errors say which input is
    /// wrong and why.
    pub fn new(cas: &[Vec<u8>], crls: &[Vec<u8>]) -> Result<TrustStore, String> {
        let mut store = TrustStore::default();
        for (i, der) in cas.iter().enumerate() {
            let cert = parse(der, i).map_err(|e| format!("CA certificate {}: {e}", i + 1))?;
            if !cert.is_ca() {
                return Err(format!(
                    "CA certificate {} (\"{}\") is not a CA certificate (no basicConstraints CA:TRUE)",
                    i + 1,
                    cert.subject()
                ));
            }
            let owned = CertificateDer::from(der.as_slice());
            let anchor = webpki::anchor_from_trusted_cert(&owned)
                .map_err(|e| format!("CA certificate {} (\"{}\"): {e}", i + 1, cert.subject()))?;
            store.anchors.push(anchor.to_owned());
            store.info.push(AnchorInfo {
                subject: clean(&cert.subject().to_string()),
                spki_sha1: sha1(cert.tbs_certificate.subject_pki.raw),
            });
            store.inputs.push(der.clone());
        }
        for (i, der) in crls.iter().enumerate() {
            let crl = OwnedCertRevocationList::from_der(der)
                .map_err(|e| format!("CRL {}: not a usable DER X.509 CRL: {e}", i + 1))?;
            store.crls.push(CertRevocationList::Owned(crl));
            store.inputs.push(der.clone());
        }
        Ok(store)
    }

    /// The CAs' subjects, for messages.
    pub fn anchor_names(&self) -> String {
        let names: Vec<String> = self
            .info
            .iter()
            .map(|a| format!("\"{}\"", a.subject))
            .collect();
        if names.is_empty() {
            "none configured".into()
        } else {
            names.join(", ")
        }
    }

    /// The Certification Authority field of our CERTREQ (RFC 7296 §3.7): the SHA-1 hashes of
    /// our trust anchors' SubjectPublicKeyInfo, concatenated.
    pub fn certreq(&self) -> Vec<u8> {
        self.info.iter().flat_map(|a| a.spki_sha1).collect()
    }

    /// Validates a peer's chain (its own certificate first, then intermediates, in any
    /// order) at `unix_now` (seconds), and that it holds `id`.
    pub fn verify(
        &self,
        chain: &[&[u8]],
        id: &Identity<'_>,
        unix_now: i64,
    ) -> Result<PeerCertificate, CertError> {
        let (&ee_der, intermediates) = chain.split_first().ok_or(CertError::Missing)?;
        let parsed = chain
            .iter()
            .enumerate()
            .map(|(i, der)| parse(der, i))
            .collect::<Result<Vec<_>, _>>()?;
        let ee = parsed.first().ok_or(CertError::Missing)?;
        let subject = clean(&ee.subject().to_string());
        let ee_owned = CertificateDer::from(ee_der);
        let end_entity = EndEntityCert::try_from(&ee_owned).map_err(|e| CertError::Malformed {
            position: 0,
            reason: e.to_string(),
        })?;
        let intermediates: Vec<CertificateDer<'_>> = intermediates
            .iter()
            .map(|d| CertificateDer::from(*d))
            .collect();
        let crl_refs: Vec<&CertRevocationList<'_>> = self.crls.iter().collect();
        let revocation = RevocationOptionsBuilder::new(&crl_refs).ok().map(|b| {
            b.with_depth(RevocationCheckDepth::Chain)
                // A CRL covers only its own CA's certificates; the others have none.
                .with_status_policy(UnknownStatusPolicy::Allow)
                // A stale CRL still lists what it revoked.
                .with_expiration_policy(ExpirationPolicy::Ignore)
                .build()
        });
        let time =
            UnixTime::since_unix_epoch(Duration::from_secs(u64::try_from(unix_now).unwrap_or(0)));
        end_entity
            .verify_for_usage(
                ALGORITHMS,
                &self.anchors,
                &intermediates,
                time,
                IkeUsage,
                revocation,
                None,
            )
            .map_err(|e| self.explain(e, &parsed, unix_now))?;
        // RFC 4945 §5.1.3.2: a KeyUsage, when present, must allow signatures.
        match ee.key_usage() {
            Ok(Some(ku)) if !ku.value.digital_signature() && !ku.value.non_repudiation() => {
                return Err(CertError::KeyUsage {
                    subject,
                    detail: format!(
                        "its KeyUsage ({}) has neither digitalSignature nor nonRepudiation",
                        ku.value
                    ),
                });
            }
            Ok(_) => {}
            Err(e) => {
                return Err(CertError::Malformed {
                    position: 0,
                    reason: format!("its KeyUsage extension: {e}"),
                });
            }
        }
        if !identity::binds(ee, id) {
            return Err(CertError::IdentityNotInCertificate {
                identity: id.to_string(),
                certificate: identity::describe(ee),
            });
        }
        let spki = ee.public_key();
        let algorithm = key_algorithm(spki).ok_or_else(|| CertError::UnsupportedAlgorithm {
            subject: subject.clone(),
            detail: format!(
                "public key {} (supported: RSA, ECDSA P-256/384/521, Ed25519)",
                spki.algorithm.algorithm.to_id_string()
            ),
        })?;
        Ok(PeerCertificate {
            subject,
            not_after: ee.validity().not_after.timestamp(),
            algorithm,
            public_key: spki.subject_public_key.data.to_vec(),
        })
    }

    /// The webpki verdict in an operator's words, naming the certificate it is about.
    fn explain(&self, e: webpki::Error, chain: &[X509Certificate<'_>], now: i64) -> CertError {
        use webpki::Error as E;
        let subject_of = |c: &X509Certificate<'_>| clean(&c.subject().to_string());
        let ee_subject = chain.first().map(subject_of).unwrap_or_default();
        match e {
            E::CertExpired { .. } => {
                let c = chain
                    .iter()
                    .find(|c| c.validity().not_after.timestamp() < now)
                    .or(chain.first());
                CertError::Expired {
                    subject: c.map(subject_of).unwrap_or_default(),
                    not_after: c
                        .map(|c| c.validity().not_after.to_string())
                        .unwrap_or_default(),
                    now: show_time(now),
                }
            }
            E::CertNotValidYet { .. } => {
                let c = chain
                    .iter()
                    .find(|c| c.validity().not_before.timestamp() > now)
                    .or(chain.first());
                CertError::NotYetValid {
                    subject: c.map(subject_of).unwrap_or_default(),
                    not_before: c
                        .map(|c| c.validity().not_before.to_string())
                        .unwrap_or_default(),
                    now: show_time(now),
                }
            }
            E::UnknownIssuer => {
                // The top of what the peer sent names the issuer we lack.
                let top = chain.last();
                CertError::UnknownCa {
                    subject: top.map(subject_of).unwrap_or_default(),
                    issuer: top
                        .map(|c| clean(&c.issuer().to_string()))
                        .unwrap_or_default(),
                    anchors: self.anchor_names(),
                }
            }
            E::CertRevoked => {
                let revoked = chain.iter().find(|c| {
                    self.crls
                        .iter()
                        .any(|crl| crl.find_serial(c.raw_serial()).is_ok_and(|r| r.is_some()))
                });
                let c = revoked.or(chain.first());
                CertError::Revoked {
                    subject: c.map(subject_of).unwrap_or_default(),
                    serial: c.map(|c| c.raw_serial_as_string()).unwrap_or_default(),
                }
            }
            E::RequiredEkuNotFoundContext(ctx) => CertError::KeyUsage {
                subject: ee_subject,
                detail: format!(
                    "its ExtendedKeyUsage {:?} has no IKE, IPsec, TLS or any purpose",
                    ctx.present
                ),
            },
            E::UnsupportedSignatureAlgorithmContext(ctx) => CertError::UnsupportedAlgorithm {
                subject: ee_subject,
                detail: format!("certificate signature {:02x?}", ctx.signature_algorithm_id),
            },
            E::UnsupportedSignatureAlgorithmForPublicKeyContext(ctx) => {
                CertError::UnsupportedAlgorithm {
                    subject: ee_subject,
                    detail: format!("certificate signature {:02x?}", ctx.signature_algorithm_id),
                }
            }
            E::CaUsedAsEndEntity => CertError::KeyUsage {
                subject: ee_subject,
                detail: "it is a CA certificate (basicConstraints CA:TRUE), not a host's".into(),
            },
            other => CertError::Invalid {
                subject: ee_subject,
                detail: format!("{other}"),
            },
        }
    }
}

/// The key algorithm of a SubjectPublicKeyInfo.
fn key_algorithm(spki: &x509_parser::x509::SubjectPublicKeyInfo<'_>) -> Option<KeyAlgorithm> {
    let alg = spki.algorithm.algorithm.to_id_string();
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok())
        .map(|o| o.to_id_string());
    Some(match (alg.as_str(), curve.as_deref()) {
        ("1.2.840.113549.1.1.1", _) => KeyAlgorithm::Rsa,
        ("1.2.840.113549.1.1.10", _) => KeyAlgorithm::RsaPss,
        ("1.2.840.10045.2.1", Some("1.2.840.10045.3.1.7")) => KeyAlgorithm::EcdsaP256,
        ("1.2.840.10045.2.1", Some("1.3.132.0.34")) => KeyAlgorithm::EcdsaP384,
        ("1.2.840.10045.2.1", Some("1.3.132.0.35")) => KeyAlgorithm::EcdsaP521,
        ("1.3.101.112", _) => KeyAlgorithm::Ed25519,
        _ => return None,
    })
}
