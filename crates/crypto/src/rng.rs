//! Randomness is injected: engines take a [`Random`] so that simulations can script nonces,
//! SPIs and private keys, while the daemon passes [`SystemRandom`].

use crate::error::{CryptoError, Result};

/// A source of random octets.
pub trait Random {
    /// Fills `out` with random octets.
    fn fill(&mut self, out: &mut [u8]) -> Result<()>;
}

/// The operating system's CSPRNG (through aws-lc).
#[derive(Debug, Default)]
pub struct SystemRandom(aws_lc_rs::rand::SystemRandom);

impl SystemRandom {
    /// The system RNG.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Random for SystemRandom {
    fn fill(&mut self, out: &mut [u8]) -> Result<()> {
        use aws_lc_rs::rand::SecureRandom;
        self.0.fill(out).map_err(|_| CryptoError::Backend {
            what: "system random number generator",
        })
    }
}
