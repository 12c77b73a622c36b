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
