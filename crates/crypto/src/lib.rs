//! `meshsec-crypto`: the cryptography of IKEv2 and ESP, selected by IANA transform IDs.
//!
//! * [`Encr`], [`Prf`], [`Integ`] — the negotiated transforms and their sizes;
//!   [`aead::AeadKey`] (ring or aws-lc-rs backend) and [`cbc::CbcKey`] do the ciphering.
//! * [`ke::KeyExchange`] — X25519, ECP-256/384/521, MODP-2048/3072/4096 with RFC 6989 checks;
//!   [`kem::MlKem768`] for RFC 9370 additional key exchanges.
//! * [`keys`] — SKEYSEED, SK_*, CHILD SA KEYMAT, rekey SKEYSEED.
//! * [`sk::SkKey`] — protection of the SK/SKF payload; [`auth`] and [`sig`] — AUTH values.
//! * [`Secret`] — key material, zeroized on drop and redacted in `Debug`.
//!
//! aws-lc-rs does IKE and every non-AEAD primitive; the ESP AEAD hot path can use ring or
//! aws-lc-rs (whichever is faster on the CPU); MODP arithmetic is constant-time crypto-bigint.
//! Randomness is injected through [`rng::Random`]. With the `insecure` feature, worthless
//! stand-ins for every primitive exist for fuzzing (see [`Provider`]).
#![forbid(unsafe_code)]

pub mod aead;
pub mod auth;
pub mod cbc;
pub mod digest;
mod encr;
mod error;
#[cfg(feature = "insecure")]
pub mod insecure;
mod integ;
pub mod ke;
pub mod kem;
pub mod keys;
pub mod natd;
mod prf;
pub mod rng;
mod secret;
pub mod sig;
pub mod sk;

pub use encr::Encr;
pub use error::{CryptoError, Result};
pub use integ::Integ;
pub use prf::Prf;
pub use secret::Secret;

use meshsec_wire::registry::{EncrId, IntegId, KeMethod, PrfId};

/// True if this build contains the insecure provider. The meshsec binary asserts it is false.
pub const INSECURE_PROVIDER_ENABLED: bool = cfg!(feature = "insecure");

/// Which implementations the engines get for a negotiated transform: the real ones, or (with
/// the `insecure` feature, for fuzzing) worthless deterministic stand-ins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Provider {
    /// aws-lc-rs / ring / crypto-bigint.
    #[default]
    Real,
    /// Identity encryption, always-valid ICVs and AUTH, trivial key exchange.
    #[cfg(feature = "insecure")]
    Insecure,
}

impl Provider {
    /// The PRF for a transform ID.
    pub fn prf(self, id: PrfId) -> Result<Prf> {
        let real = Prf::from_id(id)?;
        match self {
            Provider::Real => Ok(real),
            #[cfg(feature = "insecure")]
            Provider::Insecure => Ok(Prf::Insecure),
        }
    }

    /// The integrity algorithm for a transform ID.
    pub fn integ(self, id: IntegId) -> Result<Integ> {
        let real = Integ::from_id(id)?;
        match self {
            Provider::Real => Ok(real),
            #[cfg(feature = "insecure")]
            Provider::Insecure => Ok(Integ::Insecure),
        }
    }

    /// The encryption algorithm for a transform ID and key length.
    pub fn encr(self, id: EncrId, key_bits: Option<u16>) -> Result<Encr> {
        let real = Encr::from_id(id, key_bits)?;
        match self {
            Provider::Real => Ok(real),
            #[cfg(feature = "insecure")]
            Provider::Insecure => Ok(Encr::Insecure),
        }
    }

    /// A fresh key exchange for `method`.
    pub fn key_exchange(
        self,
        method: KeMethod,
        rng: &mut dyn rng::Random,
    ) -> Result<ke::KeyExchange> {
        match self {
            Provider::Real => ke::KeyExchange::generate(method, rng),
            #[cfg(feature = "insecure")]
            Provider::Insecure => Ok(ke::KeyExchange::insecure(method)),
        }
    }
}

#[cfg(all(test, feature = "insecure"))]
mod insecure_tests {
    use super::*;
    use meshsec_wire::registry::{ExchangeType, PayloadType};
    use meshsec_wire::{Flags, Header};

    /// The insecure provider accepts what a fuzzer makes up: any ICV, any peer KE value.
    #[test]
    fn insecure_provider_accepts_forged_messages() {
        let p = Provider::Insecure;
        let suite = keys::IkeSuite {
            encr: p.encr(EncrId::AES_GCM_16, Some(256)).unwrap(),
            prf: p.prf(PrfId::HMAC_SHA2_256).unwrap(),
            integ: None,
        };
        let sk = sk::SkKey::new(&suite, &[], &[]).unwrap();
        let header = Header {
            spi_i: 1,
            spi_r: 2,
            minor_version: 0,
            exchange: ExchangeType::INFORMATIONAL,
            flags: Flags::INITIATOR,
            message_id: 0,
        };
        let mut rng = rng::SystemRandom::new();
        let mut msg = sk
            .seal(&header, PayloadType::NONE, b"abc", &mut rng)
            .unwrap();
        let last = msg.len() - 1;
        msg[last] ^= 0xff; // a forged ICV
        assert_eq!(sk.open(&msg).unwrap().plaintext, b"abc");
        let kx = p.key_exchange(KeMethod::CURVE25519, &mut rng).unwrap();
        assert!(kx.agree(b"anything").is_ok());
        const { assert!(INSECURE_PROVIDER_ENABLED) };
        assert!(insecure::MARKER.contains("INSECURE"));
    }
}
