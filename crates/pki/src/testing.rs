//! Certificates for tests (feature `testing`): a CA, intermediates, host certificates with the
//! properties a test needs (key type, validity, KeyUsage, identities), CRLs. Made by rcgen, as
//! `meshsec pki` makes them.

use std::net::IpAddr;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    RevokedCertParams, SanType, SerialNumber,
};
use time::{Duration, OffsetDateTime};

use crate::{Credential, TrustStore};

/// Key types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// ECDSA P-256.
    P256,
    /// ECDSA P-384.
    P384,
    /// ECDSA P-521.
    P521,
    /// Ed25519.
    Ed25519,
    /// RSA-3072.
    Rsa3072,
}

fn generate(k: Key) -> KeyPair {
    let kp = match k {
        Key::P256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
        Key::P384 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384),
        Key::P521 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P521_SHA512),
        Key::Ed25519 => KeyPair::generate_for(&rcgen::PKCS_ED25519),
        Key::Rsa3072 => {
            KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_3072)
        }
    };
    kp.unwrap_or_else(|e| unreachable!("key generation: {e}"))
}

/// What a host certificate looks like.
#[derive(Debug, Clone)]
pub struct Host {
    /// CN and dNSName.
    pub name: String,
    /// iPAddress subjectAltNames.
    pub addresses: Vec<IpAddr>,
    /// Key type.
    pub key: Key,
    /// Start of validity, relative to now (seconds; negative: in the past).
    pub valid_from: i64,
    /// Length of validity (seconds).
    pub valid_for: i64,
    /// KeyUsage has digitalSignature.
    pub digital_signature: bool,
    /// ExtendedKeyUsage: only emailProtection (no IKE purpose).
    pub email_only_eku: bool,
}

impl Host {
    /// A valid certificate for `name` (dNSName), one year, with `key`.
    pub fn new(name: &str, key: Key) -> Host {
        Host {
            name: name.into(),
            addresses: Vec::new(),
            key,
            valid_from: -300,
            valid_for: 365 * 86_400,
            digital_signature: true,
            email_only_eku: false,
        }
    }
}

/// A host's certificate and key.
pub struct Issued {
    /// The certificate (DER).
    pub der: Vec<u8>,
    /// The certificate (PEM).
    pub pem: String,
    /// Its private key (PEM).
    pub key_pem: String,
}

/// A CA that issues test certificates.
pub struct Ca {
    /// Its certificate (DER).
    pub der: Vec<u8>,
    /// Its certificate (PEM).
    pub pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

impl Ca {
    /// A self-signed root CA.
    pub fn root(name: &str, key: Key) -> Ca {
        Ca::make(name, key, None)
    }

    /// An intermediate CA signed by this one.
    pub fn intermediate(&self, name: &str, key: Key) -> Ca {
        Ca::make(name, key, Some(self))
    }

    fn make(name: &str, key: Key, parent: Option<&Ca>) -> Ca {
        let kp = generate(key);
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_before = now() - Duration::hours(1);
        params.not_after = now() + Duration::days(3650);
        let cert = match parent {
            Some(p) => params.signed_by(&kp, &p.issuer),
            None => params.self_signed(&kp),
        }
        .unwrap_or_else(|e| unreachable!("CA certificate: {e}"));
        Ca {
            der: cert.der().to_vec(),
            pem: cert.pem(),
            issuer: Issuer::new(params, kp),
        }
    }

    /// Issues a host certificate.
    pub fn issue(&self, h: &Host) -> Issued {
        let kp = generate(h.key);
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, &h.name);
        if let Ok(n) = h.name.clone().try_into() {
            params.subject_alt_names.push(SanType::DnsName(n));
        }
        for a in &h.addresses {
            params.subject_alt_names.push(SanType::IpAddress(*a));
        }
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = if h.digital_signature {
            vec![KeyUsagePurpose::DigitalSignature]
        } else {
            vec![KeyUsagePurpose::KeyEncipherment]
        };
        if h.email_only_eku {
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::EmailProtection];
        }
        params.not_before = now() + Duration::seconds(h.valid_from);
        params.not_after = params.not_before + Duration::seconds(h.valid_for);
        // Distinct within a test run, so that a CRL revokes only the one it names.
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        params.serial_number = Some(SerialNumber::from(
            (u64::from(std::process::id()) << 24) | n,
        ));
        let cert = params
            .signed_by(&kp, &self.issuer)
            .unwrap_or_else(|e| unreachable!("host certificate: {e}"));
        Issued {
            der: cert.der().to_vec(),
            pem: cert.pem(),
            key_pem: kp.serialize_pem(),
        }
    }

    /// A CRL of this CA revoking `certs` (DER).
    pub fn crl(&self, certs: &[&[u8]]) -> Vec<u8> {
        use x509_parser::prelude::FromDer;
        let revoked_certs = certs
            .iter()
            .filter_map(|d| x509_parser::certificate::X509Certificate::from_der(d).ok())
            .map(|(_, c)| RevokedCertParams {
                serial_number: SerialNumber::from_slice(c.raw_serial()),
                revocation_time: now() - Duration::minutes(1),
                reason_code: None,
                invalidity_date: None,
            })
            .collect();
        CertificateRevocationListParams {
            this_update: now() - Duration::minutes(1),
            next_update: now() + Duration::days(7),
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method: KeyIdMethod::Sha256,
        }
        .signed_by(&self.issuer)
        .unwrap_or_else(|e| unreachable!("CRL: {e}"))
        .der()
        .to_vec()
    }

    /// A trust store of this CA (and `crls`).
    pub fn store(&self, crls: &[Vec<u8>]) -> TrustStore {
        TrustStore::new(std::slice::from_ref(&self.der), crls)
            .unwrap_or_else(|e| unreachable!("trust store: {e}"))
    }
}

/// Our credential from an issued certificate (and the intermediates after it, PEM).
pub fn credential(issued: &Issued, intermediates: &str) -> Credential {
    Credential::from_pem(
        format!("{}{intermediates}", issued.pem).as_bytes(),
        issued.key_pem.as_bytes(),
    )
    .unwrap_or_else(|e| unreachable!("credential: {e}"))
}

/// Seconds since the Unix epoch now.
pub fn unix_now() -> i64 {
    now().unix_timestamp()
}
