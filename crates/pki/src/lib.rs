//! `meshsec-pki`: X.509 certificates for IKEv2 authentication (RFC 7296 §3.5–3.7, RFC 4945).
//!
//! * [`TrustStore`] — the configured CAs and CRLs; [`TrustStore::verify`] validates a peer's
//!   chain (rustls-webpki: signatures, validity, CRLs, path constraints), then what IKE adds:
//!   KeyUsage, ExtendedKeyUsage (leniently, RFC 4945 §5.1.3.12), and the identity binding
//!   (the IKE ID must be in the certificate). Errors ([`CertError`]) name the certificate and
//!   the reason.
//! * [`Credential`] — our certificate chain and private key.
//!
//! No I/O: callers read files and pass the clock in (seconds since the Unix epoch).
//!
//! Why these crates: path validation is what must not be hand-written, and rustls-webpki
//! (maintained by the rustls project, used by every rustls client) does it well — chain
//! building with bounded effort, validity, basic/name/path-length constraints, CRLs — on
//! aws-lc-rs, our crypto provider. It deliberately knows nothing beyond the web PKI: no
//! rfc822Name or DN identities, no KeyUsage bits for end entities, no dates in its errors.
//! x509-parser (rusticata) fills exactly that gap as a read-only parser; nothing here
//! re-implements DER or signature checks. Certificates for tests and `meshsec pki` come from
//! rcgen (the rustls project's generator). Everything taken from a certificate into a message
//! is cleaned of control characters and bounded: the sender may not have authenticated yet.
#![forbid(unsafe_code)]

mod credential;
mod error;
mod identity;
mod trust;

#[cfg(feature = "testing")]
pub mod testing;

pub use credential::{Credential, certificates_from_pem, crls_from_pem, key_from_pem};
pub use error::CertError;
pub use trust::{KeyAlgorithm, PeerCertificate, TrustStore, show_time};
