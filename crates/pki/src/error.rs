//! Why a peer's certificate is not accepted, in words an operator can act on.

use core::fmt;

/// A certificate problem. Each names the certificate (its subject) and what was wrong with
/// it; dates are shown as the certificate states them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertError {
    /// The peer sent no certificate (no CERT payload of type X.509 Certificate – Signature).
    Missing,
    /// A CERT payload that is not a DER X.509 certificate (truncated, garbage).
    Malformed {
        /// Which certificate of the chain (0: the peer's own).
        position: usize,
        /// What the parser said.
        reason: String,
    },
    /// More certificates than any path we build needs (refused before any is parsed).
    ChainTooLong {
        /// The most we take.
        max: usize,
    },
    /// The chain does not lead to any configured CA.
    UnknownCa {
        /// The certificate's subject.
        subject: String,
        /// Its issuer.
        issuer: String,
        /// The configured CAs' subjects.
        anchors: String,
    },
    /// A certificate of the chain has expired.
    Expired {
        /// The certificate's subject.
        subject: String,
        /// Its notAfter.
        not_after: String,
        /// Our clock.
        now: String,
    },
    /// A certificate of the chain is not valid yet.
    NotYetValid {
        /// The certificate's subject.
        subject: String,
        /// Its notBefore.
        not_before: String,
        /// Our clock.
        now: String,
    },
    /// A certificate of the chain is listed in a configured CRL.
    Revoked {
        /// The certificate's subject.
        subject: String,
        /// Its serial number (hex).
        serial: String,
    },
    /// The certificate is valid but for another identity.
    IdentityNotInCertificate {
        /// The IKE identity the peer presented.
        identity: String,
        /// The identities the certificate holds (subject and SANs).
        certificate: String,
    },
    /// The certificate may not be used to sign (KeyUsage without digitalSignature, or an
    /// ExtendedKeyUsage without any IKE or TLS purpose).
    KeyUsage {
        /// The certificate's subject.
        subject: String,
        /// Which usage is missing.
        detail: String,
    },
    /// A key or signature algorithm we do not support.
    UnsupportedAlgorithm {
        /// The certificate's subject.
        subject: String,
        /// What is unsupported.
        detail: String,
    },
    /// Any other reason the path does not validate (bad signature on a certificate, path
    /// length or name constraints...).
    Invalid {
        /// The certificate's subject.
        subject: String,
        /// What the path validation said.
        detail: String,
    },
}

impl fmt::Display for CertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CertError::Missing => f.write_str(
                "the peer sent no certificate (no CERT payload): is it configured for \
                 certificate authentication, and does it have its certificate loaded?",
            ),
            CertError::Malformed { position, reason } => write!(
                f,
                "certificate {position} of the peer's chain is not a DER X.509 certificate: \
                 {reason}"
            ),
            CertError::ChainTooLong { max } => write!(
                f,
                "the peer sent more than {max} intermediate certificates; no path we build is \
                 that long"
            ),
            CertError::UnknownCa {
                subject,
                issuer,
                anchors,
            } => write!(
                f,
                "unknown CA: certificate \"{subject}\" is issued by \"{issuer}\", which does \
                 not lead to any configured CA ({anchors})"
            ),
            CertError::Expired {
                subject,
                not_after,
                now,
            } => write!(
                f,
                "certificate \"{subject}\" expired: valid until {not_after}, now {now}"
            ),
            CertError::NotYetValid {
                subject,
                not_before,
                now,
            } => write!(
                f,
                "certificate \"{subject}\" is not yet valid: valid from {not_before}, now \
                 {now} (check both clocks)"
            ),
            CertError::Revoked { subject, serial } => write!(
                f,
                "certificate \"{subject}\" (serial {serial}) is revoked by a configured CRL"
            ),
            CertError::IdentityNotInCertificate {
                identity,
                certificate,
            } => write!(
                f,
                "the peer's identity {identity} is not in its certificate, which holds \
                 {certificate}"
            ),
            CertError::KeyUsage { subject, detail } => {
                write!(
                    f,
                    "certificate \"{subject}\" may not sign for IKE: {detail}"
                )
            }
            CertError::UnsupportedAlgorithm { subject, detail } => {
                write!(
                    f,
                    "certificate \"{subject}\": unsupported algorithm: {detail}"
                )
            }
            CertError::Invalid { subject, detail } => {
                write!(f, "certificate \"{subject}\" does not validate: {detail}")
            }
        }
    }
}

impl std::error::Error for CertError {}

/// Text from a certificate (subject, issuer, names) as it may appear in messages: the sender
/// may not have authenticated yet, so control characters are escaped (no forged log lines)
/// and the length is bounded.
pub(crate) fn clean(text: &str) -> String {
    const MAX: usize = 128;
    let mut out = String::new();
    for (n, c) in text.chars().enumerate() {
        if n == MAX {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}
