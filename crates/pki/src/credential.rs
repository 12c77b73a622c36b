//! Our own certificate chain and private key, and PEM input.

use meshsec_crypto::sig::SigningKey;
use meshsec_wire::payload::Identity;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;
use zeroize::Zeroizing;

use crate::identity;

/// Every certificate in PEM (or one DER certificate), in file order.
pub fn certificates_from_pem(input: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    if input.first() == Some(&0x30) {
        return Ok(vec![input.to_vec()]);
    }
    let certs = CertificateDer::pem_slice_iter(input)
        .map(|c| c.map(|c| c.to_vec()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not PEM certificates: {e}"))?;
    if certs.is_empty() {
        return Err("no certificate in it (expected -----BEGIN CERTIFICATE-----)".into());
    }
    Ok(certs)
}

/// Every CRL in PEM (or one DER CRL).
pub fn crls_from_pem(input: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    if input.first() == Some(&0x30) {
        return Ok(vec![input.to_vec()]);
    }
    let crls = CertificateRevocationListDer::pem_slice_iter(input)
        .map(|c| c.map(|c| c.as_ref().to_vec()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not PEM CRLs: {e}"))?;
    if crls.is_empty() {
        return Err("no CRL in it (expected -----BEGIN X509 CRL-----)".into());
    }
    Ok(crls)
}

/// A private key in PEM (PKCS#8, PKCS#1 RSA or SEC1 EC) or DER.
pub fn key_from_pem(input: &[u8]) -> Result<SigningKey, String> {
    let der = Zeroizing::new(if input.first() == Some(&0x30) {
        input.to_vec()
    } else {
        PrivateKeyDer::from_pem_slice(input)
            .map_err(|e| format!("no PEM private key in it: {e}"))?
            .secret_der()
            .to_vec()
    });
    SigningKey::from_der(&der).map_err(|e| e.to_string())
}

/// What we authenticate with: our certificate (first), the intermediates a peer needs to
/// reach its CA, and the private key of our certificate.
pub struct Credential {
    /// DER certificates, ours first.
    pub chain: Vec<Vec<u8>>,
    /// The private key.
    pub key: SigningKey,
    /// Our certificate's subject.
    pub subject: String,
    /// Our certificate's notAfter (seconds since the Unix epoch).
    pub not_after: i64,
}

impl core::fmt::Debug for Credential {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Credential")
            .field("subject", &self.subject)
            .field("chain", &self.chain.len())
            .field("key", &self.key)
            .finish()
    }
}

/// Two credentials are the same when their certificates are: a key belongs to one
/// certificate (checked when loaded).
impl PartialEq for Credential {
    fn eq(&self, other: &Credential) -> bool {
        self.chain == other.chain
    }
}

impl Eq for Credential {}

impl Credential {
    /// Our credential from a certificate file's content (PEM, ours first, then
    /// intermediates) and a key file's content; the key must belong to the certificate.
    pub fn from_pem(cert: &[u8], key: &[u8]) -> Result<Credential, String> {
        Credential::new(certificates_from_pem(cert)?, key_from_pem(key)?)
    }

    /// Our credential from DER certificates (ours first) and its key; the key must belong to
    /// the first certificate.
    pub fn new(chain: Vec<Vec<u8>>, key: SigningKey) -> Result<Credential, String> {
        let first = chain.first().ok_or("no certificate")?;
        let (_, parsed) =
            X509Certificate::from_der(first).map_err(|e| format!("certificate: {e}"))?;
        if parsed.public_key().subject_public_key.data.as_ref() != key.public_key().as_slice() {
            return Err(format!(
                "the private key ({}) does not belong to the certificate \"{}\" (the first in \
                 the certificate file)",
                key.kind(),
                parsed.subject()
            ));
        }
        Ok(Credential {
            subject: parsed.subject().to_string(),
            not_after: parsed.validity().not_after.timestamp(),
            chain,
            key,
        })
    }

    /// Whether our certificate holds `id` (a peer would refuse us otherwise).
    pub fn holds(&self, id: &Identity<'_>) -> bool {
        self.chain
            .first()
            .and_then(|d| X509Certificate::from_der(d).ok())
            .is_some_and(|(_, c)| identity::binds(&c, id))
    }

    /// The identities our certificate holds, for messages.
    pub fn identities(&self) -> String {
        self.chain
            .first()
            .and_then(|d| X509Certificate::from_der(d).ok())
            .map(|(_, c)| identity::describe(&c))
            .unwrap_or_default()
    }
}
