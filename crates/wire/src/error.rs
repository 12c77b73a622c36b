//! The wire error: small, `Copy`, and specific enough to tell an operator (and the peer, through
//! a Notify) what was wrong with a message.

use core::fmt;

use crate::registry::{NotifyType, PayloadType};

/// Result alias for this crate.
pub type Result<T> = core::result::Result<T, Error>;

/// Why bytes could not be parsed, or a value could not be emitted.
///
/// Every variant names the structure it concerns (`what`), so that a log line such as
/// `SA proposal: truncated (need 8 octets, have 3)` says where a peer's message went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The input ended before `what` was complete.
    Truncated {
        /// The structure being read.
        what: &'static str,
        /// Octets needed to continue.
        needed: usize,
        /// Octets that were left.
        available: usize,
    },
    /// A length field disagrees with the data around it.
    BadLength {
        /// The structure whose length is wrong.
        what: &'static str,
        /// What exactly is wrong.
        problem: &'static str,
    },
    /// A field holds a value that is not allowed here.
    BadValue {
        /// The structure that holds the field.
        what: &'static str,
        /// What exactly is wrong.
        problem: &'static str,
    },
    /// A payload we do not understand had its critical bit set (RFC 7296 §2.5): the message
    /// must be rejected with `UNSUPPORTED_CRITICAL_PAYLOAD`.
    UnsupportedCriticalPayload(PayloadType),
    /// The IKE header's major version is not 2 (RFC 7296 §2.5: answer `INVALID_MAJOR_VERSION`).
    UnsupportedVersion {
        /// The major version the peer sent.
        major: u8,
    },
    /// A value is too large for its length field when emitting (e.g. a payload over 65535
    /// octets). This is a local API misuse, never caused by the peer.
    TooLong {
        /// The structure that would overflow.
        what: &'static str,
    },
}

impl Error {
    /// The Notify error type that answers this error (RFC 7296 §3.10.1).
    ///
    /// Whether to send it at all (never to unauthenticated garbage) is the IKE engine's call.
    pub fn notify_type(&self) -> NotifyType {
        match self {
            Error::UnsupportedCriticalPayload(_) => NotifyType::UNSUPPORTED_CRITICAL_PAYLOAD,
            Error::UnsupportedVersion { .. } => NotifyType::INVALID_MAJOR_VERSION,
            _ => NotifyType::INVALID_SYNTAX,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Truncated {
                what,
                needed,
                available,
            } => write!(
                f,
                "{what}: truncated (need {needed} octets, have {available})"
            ),
            Error::BadLength { what, problem } => write!(f, "{what}: bad length: {problem}"),
            Error::BadValue { what, problem } => write!(f, "{what}: {problem}"),
            Error::UnsupportedCriticalPayload(ty) => write!(
                f,
                "unsupported critical payload {ty} (critical bit set on a payload type we do not know)"
            ),
            Error::UnsupportedVersion { major } => {
                write!(
                    f,
                    "IKE header: unsupported major version {major} (we speak 2)"
                )
            }
            Error::TooLong { what } => write!(f, "{what}: too long for its length field"),
        }
    }
}

impl std::error::Error for Error {}
