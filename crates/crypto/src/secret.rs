//! Secret octets: wiped on drop, never printed.

use core::fmt;

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Key material or another secret. Zeroized when dropped; `Debug` shows only its length.
#[derive(Clone, Default)]
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    /// Takes ownership of `bytes` (which will be wiped on drop).
    pub fn new(bytes: Vec<u8>) -> Self {
        Secret(Zeroizing::new(bytes))
    }

    /// Copies `bytes` into a new secret.
    pub fn from_slice(bytes: &[u8]) -> Self {
        Self::new(bytes.to_vec())
    }

    /// The secret octets. Do not log them.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Number of octets.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True if empty (e.g. SK_a with an AEAD cipher).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Constant-time comparison with `other`.
    pub fn ct_eq(&self, other: &[u8]) -> bool {
        self.0.len() == other.len() && bool::from(self.0.as_slice().ct_eq(other))
    }

    /// Splits off the first `n` octets into their own secret.
    pub(crate) fn split_prefix(bytes: &mut &[u8], n: usize) -> Secret {
        let n = n.min(bytes.len());
        let (head, tail) = bytes.split_at(n);
        *bytes = tail;
        Secret::from_slice(head)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(<{} octets redacted>)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_the_bytes() {
        let s = Secret::from_slice(b"hunter2-hunter2");
        let shown = format!("{s:?}");
        assert_eq!(shown, "Secret(<15 octets redacted>)");
        assert!(!shown.contains("hunter"));
        assert!(s.ct_eq(b"hunter2-hunter2"));
        assert!(!s.ct_eq(b"hunter2-hunter3"));
        assert!(!s.ct_eq(b"hunter2"));
    }
}
