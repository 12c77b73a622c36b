//! Key exchange methods (Transform Type 4): X25519 (RFC 8031), NIST ECP groups (RFC 5903) and
//! MODP groups (RFC 3526), with the peer-value checks of RFC 6989 and RFC 8031 §2.
//!
//! Private values come from the injected [`Random`] (or are given, for known-answer tests and
//! scripted simulations), so the whole key exchange is reproducible where a test needs it.

mod ecdh;
mod modp;

use meshsec_wire::registry::KeMethod;
use zeroize::Zeroizing;

use crate::error::{CryptoError, Result};
use crate::rng::Random;
use crate::secret::Secret;

enum Private {
    Ecdh(aws_lc_rs::agreement::PrivateKey),
    Recorded(Secret),
    Modp(modp::Group, Zeroizing<Vec<u8>>),
    #[cfg(feature = "insecure")]
    Insecure,
}

/// Our half of one Diffie-Hellman exchange: the private value and the public value to send.
pub struct KeyExchange {
    method: KeMethod,
    public: Vec<u8>,
    private: Private,
}

impl core::fmt::Debug for KeyExchange {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "KeyExchange({}, <private redacted>)", self.method)
    }
}

/// The key exchange methods implemented here, in our order of preference.
pub const SUPPORTED: &[KeMethod] = &[
    KeMethod::CURVE25519,
    KeMethod::ECP_256,
    KeMethod::ECP_384,
    KeMethod::ECP_521,
    KeMethod::MODP_3072,
    KeMethod::MODP_4096,
    KeMethod::MODP_2048,
];

/// Length of the private value `from_private` takes for `method`.
pub fn private_len(method: KeMethod) -> Result<usize> {
    if let Some(alg) = ecdh::algorithm(method) {
        return Ok(ecdh::private_len(alg));
    }
    if let Some(g) = modp::group(method) {
        return Ok(g.exponent_len());
    }
    Err(CryptoError::Unsupported {
        what: "KE",
        id: method.0,
    })
}

impl KeyExchange {
    /// Generates a private value with `rng` and computes the public value.
    pub fn generate(method: KeMethod, rng: &mut dyn Random) -> Result<KeyExchange> {
        let mut private = Zeroizing::new(vec![0u8; private_len(method)?]);
        // A random ECP scalar is out of range with negligible probability; retry a few times.
        let mut last = CryptoError::Backend {
            what: "key exchange generation",
        };
        for _ in 0..8 {
            rng.fill(&mut private)?;
            if method == KeMethod::ECP_521 {
                // 66 octets hold 528 bits; the group order has 521: keep the top 7 clear so
                // rejection sampling succeeds almost always.
                if let Some(top) = private.first_mut() {
                    *top &= 0x01;
                }
            }
            match Self::from_private(method, &private) {
                Ok(kx) => return Ok(kx),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Our half from a given private value (big-endian scalar for ECP, the raw 32 octets for
    /// X25519, the exponent for MODP).
    pub fn from_private(method: KeMethod, private: &[u8]) -> Result<KeyExchange> {
        if let Some(alg) = ecdh::algorithm(method) {
            let (key, public) = ecdh::from_private(alg, method, private)?;
            return Ok(KeyExchange {
                method,
                public,
                private: Private::Ecdh(key),
            });
        }
        if let Some(g) = modp::group(method) {
            if private.len() != g.exponent_len() {
                return Err(CryptoError::KeyLength {
                    what: "MODP private exponent",
                    expected: g.exponent_len(),
                    got: private.len(),
                });
            }
            let public = g.public_value(private)?;
            return Ok(KeyExchange {
                method,
                public,
                private: Private::Modp(g, Zeroizing::new(private.to_vec())),
            });
        }
        Err(CryptoError::Unsupported {
            what: "KE",
            id: method.0,
        })
    }

    /// A worthless key exchange for fuzzing: public value = 32 zero octets, and `agree`
    /// accepts any peer value (feature `insecure`).
    #[cfg(feature = "insecure")]
    pub fn insecure(method: KeMethod) -> KeyExchange {
        KeyExchange {
            method,
            public: vec![0; 32],
            private: Private::Insecure,
        }
    }

    /// A key exchange replayed from a recording (e.g. a strongSwan log, which reveals the
    /// public values and g^ir but never the private values): `public_value` is the recorded
    /// KE data and `agree` returns the recorded shared secret whatever the peer sends. For
    /// tests that replay captured handshakes through the engine — never for a live peer.
    pub fn recorded(method: KeMethod, public: Vec<u8>, shared: Secret) -> KeyExchange {
        KeyExchange {
            method,
            public,
            private: Private::Recorded(shared),
        }
    }

    /// The key exchange method.
    pub fn method(&self) -> KeMethod {
        self.method
    }

    /// The KE payload data to send.
    pub fn public_value(&self) -> &[u8] {
        &self.public
    }

    /// The shared secret g^ir with the peer's KE payload data, after checking that data.
    pub fn agree(&self, peer: &[u8]) -> Result<Secret> {
        match &self.private {
            Private::Ecdh(key) => ecdh::agree(key, self.method, peer),
            Private::Modp(g, x) => g.agree(x, peer),
            Private::Recorded(shared) => Ok(shared.clone()),
            #[cfg(feature = "insecure")]
            Private::Insecure => Ok(crate::insecure::prf(b"kx", &[peer], 32)),
        }
    }
}
