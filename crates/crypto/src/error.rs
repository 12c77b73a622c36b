//! The crypto error: `Copy`, specific, and never carrying secret material.

use core::fmt;

use meshsec_wire::registry::KeMethod;

/// Result alias for this crate.
pub type Result<T> = core::result::Result<T, CryptoError>;

/// Why a cryptographic operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CryptoError {
    /// The transform (by IANA ID) is not implemented, or not with these parameters.
    Unsupported {
        /// Which kind of transform ("ENCR", "PRF", "INTEG", "KE"...).
        what: &'static str,
        /// Its IANA transform ID (or key length, as the message says).
        id: u16,
    },
    /// A key of the wrong length.
    KeyLength {
        /// Which key.
        what: &'static str,
        /// Octets expected.
        expected: usize,
        /// Octets given.
        got: usize,
    },
    /// Input too short for what it must contain.
    Truncated {
        /// Which structure.
        what: &'static str,
        /// Octets needed at least.
        needed: usize,
        /// Octets given.
        got: usize,
    },
    /// Input whose length cannot be right (e.g. CBC ciphertext not a multiple of the block).
    BadLength {
        /// Which structure.
        what: &'static str,
        /// What exactly is wrong.
        problem: &'static str,
    },
    /// The ICV / authentication tag did not verify: the data was modified or the key is wrong.
    IntegrityCheckFailed {
        /// Which structure.
        what: &'static str,
    },
    /// Decrypted padding is inconsistent.
    BadPadding {
        /// Which structure.
        what: &'static str,
    },
    /// A peer's key exchange value failed the checks of RFC 6989 / RFC 8031 (zero, identity,
    /// off the curve, out of range, wrong length) or produced an all-zero secret.
    InvalidPublicValue {
        /// The key exchange method.
        method: KeMethod,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// prf+ was asked for more than 255 blocks (RFC 7296 §2.13).
    OutputTooLong {
        /// What was being derived.
        what: &'static str,
    },
    /// A signature did not verify, or could not be made.
    Signature {
        /// What went wrong.
        reason: &'static str,
    },
    /// A private or public key could not be loaded.
    KeyRejected {
        /// Which key.
        what: &'static str,
        /// Why (from the backend).
        reason: &'static str,
    },
    /// The cryptographic backend failed unexpectedly (e.g. the system RNG).
    Backend {
        /// Which operation.
        what: &'static str,
    },
}

impl fmt::Display for CryptoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CryptoError::Unsupported { what, id } => {
                write!(f, "{what} transform {id} is not supported")
            }
            CryptoError::KeyLength {
                what,
                expected,
                got,
            } => write!(f, "{what}: key must be {expected} octets, got {got}"),
            CryptoError::Truncated { what, needed, got } => {
                write!(
                    f,
                    "{what}: truncated (need at least {needed} octets, got {got})"
                )
            }
            CryptoError::BadLength { what, problem } => write!(f, "{what}: {problem}"),
            CryptoError::IntegrityCheckFailed { what } => write!(
                f,
                "{what}: integrity check failed (modified in transit or wrong key)"
            ),
            CryptoError::BadPadding { what } => write!(f, "{what}: inconsistent padding"),
            CryptoError::InvalidPublicValue { method, reason } => {
                write!(f, "invalid {method} public value from peer: {reason}")
            }
            CryptoError::OutputTooLong { what } => {
                write!(f, "{what}: prf+ cannot produce that much keying material")
            }
            CryptoError::Signature { reason } => write!(f, "signature: {reason}"),
            CryptoError::KeyRejected { what, reason } => write!(f, "{what} rejected: {reason}"),
            CryptoError::Backend { what } => write!(f, "crypto backend failed: {what}"),
        }
    }
}

impl std::error::Error for CryptoError {}
