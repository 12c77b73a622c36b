//! MODP Diffie-Hellman groups 14, 15 and 16 (RFC 3526) with constant-time arithmetic
//! (crypto-bigint), and the public-value checks of RFC 6989 §2.1.
//!
//! The private exponent is short — twice the group's security strength (RFC 3526 §8) — and is
//! passed to the exponentiation at that bit length, so the work is proportional to the
//! exponent's declared size, not the modulus, while staying constant-time in its value.

use crypto_bigint::modular::{BoxedMontyForm, BoxedMontyParams};
use crypto_bigint::{BoxedUint, Odd};
use meshsec_wire::registry::KeMethod;

use crate::error::{CryptoError, Result};
use crate::secret::Secret;

/// RFC 3526 §3: the 2048-bit MODP group's prime (generator 2).
const P2048: &[&str] = &[
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74",
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437",
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05",
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB",
    "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B",
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718",
    "3995497CEA956AE515D2261898FA051015728E5A8AACAA68FFFFFFFFFFFFFFFF",
];
/// RFC 3526 §4: the 3072-bit MODP group's prime.
const P3072: &[&str] = &[
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74",
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437",
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05",
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB",
    "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B",
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718",
    "3995497CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33",
    "A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7",
    "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864",
    "D87602733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E2",
    "08E24FA074E5AB3143DB5BFCE0FD108E4B82D120A93AD2CAFFFFFFFFFFFFFFFF",
];
/// RFC 3526 §5: the 4096-bit MODP group's prime.
const P4096: &[&str] = &[
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74",
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437",
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05",
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB",
    "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B",
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718",
    "3995497CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33",
    "A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7",
    "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864",
    "D87602733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E2",
    "08E24FA074E5AB3143DB5BFCE0FD108E4B82D120A92108011A723C12A787E6D7",
    "88719A10BDBA5B2699C327186AF4E23C1A946834B6150BDA2583E9CA2AD44CE8",
    "DBBBC2DB04DE8EF92E8EFC141FBECAA6287C59474E6BC05D99B2964FA090C3A2",
    "233BA186515BE7ED1F612970CEE2D7AFB81BDD762170481CD0069127D5B05AA9",
    "93B4EA988D8FDDC186FFB7DC90A6C08F4DF435C934063199FFFFFFFFFFFFFFFF",
];

/// One MODP group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Group {
    pub(crate) method: KeMethod,
    prime_hex: &'static [&'static str],
    /// Modulus length in bits (also the KE payload length × 8).
    pub(crate) bits: u32,
    /// Private exponent length in bits.
    pub(crate) exponent_bits: u32,
}

/// The MODP group for a key exchange method, if it is one we implement.
pub(crate) fn group(method: KeMethod) -> Option<Group> {
    let (prime_hex, bits, exponent_bits) = match method {
        KeMethod::MODP_2048 => (P2048, 2048, 256),
        KeMethod::MODP_3072 => (P3072, 3072, 384),
        KeMethod::MODP_4096 => (P4096, 4096, 512),
        _ => return None,
    };
    Some(Group {
        method,
        prime_hex,
        bits,
        exponent_bits,
    })
}

impl Group {
    /// Public value and shared secret length in octets.
    pub(crate) fn len(&self) -> usize {
        self.bits as usize / 8
    }

    /// Private exponent length in octets.
    pub(crate) fn exponent_len(&self) -> usize {
        self.exponent_bits as usize / 8
    }

    fn prime(&self) -> Result<BoxedUint> {
        let hex: String = self.prime_hex.concat();
        BoxedUint::from_be_hex(&hex, self.bits)
            .into_option()
            .ok_or(CryptoError::Backend { what: "MODP prime" })
    }

    fn params(&self) -> Result<BoxedMontyParams> {
        let p = Odd::new(self.prime()?)
            .into_option()
            .ok_or(CryptoError::Backend { what: "MODP prime" })?;
        Ok(BoxedMontyParams::new_vartime(p))
    }

    fn decode(&self, bytes: &[u8]) -> Result<BoxedUint> {
        BoxedUint::from_be_slice(bytes, self.bits).map_err(|_| CryptoError::Backend {
            what: "MODP integer decoding",
        })
    }

    /// base^exponent mod p, as a big-endian octet string of the modulus length (RFC 7296
    /// §2.14: g^ir is padded with leading zeros to the modulus length).
    fn pow(&self, base: &BoxedUint, exponent: &[u8]) -> Result<Secret> {
        let params = self.params()?;
        let exp = BoxedUint::from_be_slice(exponent, self.exponent_bits).map_err(|_| {
            CryptoError::KeyLength {
                what: "MODP private exponent",
                expected: self.exponent_len(),
                got: exponent.len(),
            }
        })?;
        let base = BoxedMontyForm::new(base.clone(), &params);
        let r = base.pow_bounded_exp(&exp, self.exponent_bits).retrieve();
        Ok(Secret::new(r.to_be_bytes().into_vec()))
    }

    /// g^x mod p for the private exponent `x`.
    pub(crate) fn public_value(&self, x: &[u8]) -> Result<Vec<u8>> {
        let g = BoxedUint::from_be_slice(&[2], self.bits).map_err(|_| CryptoError::Backend {
            what: "MODP generator",
        })?;
        Ok(self.pow(&g, x)?.expose().to_vec())
    }

    /// RFC 6989 §2.1: for these safe-prime groups a peer value y is acceptable iff it has the
    /// modulus length and 1 < y < p-1 (which excludes the small subgroup {1, p-1}).
    fn check_peer(&self, y: &[u8]) -> Result<BoxedUint> {
        let invalid = |reason| CryptoError::InvalidPublicValue {
            method: self.method,
            reason,
        };
        if y.len() != self.len() {
            return Err(invalid("length differs from the modulus length"));
        }
        let y = self.decode(y)?;
        let one = BoxedUint::one_with_precision(self.bits);
        let p_minus_1 = self.prime()?.wrapping_sub(&one);
        if y <= one {
            return Err(invalid("value is 0 or 1"));
        }
        if y >= p_minus_1 {
            return Err(invalid("value is p-1 or not below the prime"));
        }
        Ok(y)
    }

    /// y^x mod p after checking y.
    pub(crate) fn agree(&self, x: &[u8], peer: &[u8]) -> Result<Secret> {
        let y = self.check_peer(peer)?;
        self.pow(&y, x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primes_have_their_stated_length_and_shape() {
        for m in [
            KeMethod::MODP_2048,
            KeMethod::MODP_3072,
            KeMethod::MODP_4096,
        ] {
            let g = group(m).unwrap();
            let hex: String = g.prime_hex.concat();
            assert_eq!(hex.len() * 4, g.bits as usize, "{m}");
            // RFC 3526: every prime starts and ends with 64 one-bits.
            assert!(hex.starts_with("FFFFFFFFFFFFFFFFC90FDAA22168C234"), "{m}");
            assert!(hex.ends_with("FFFFFFFFFFFFFFFF"), "{m}");
        }
    }

    #[test]
    fn peer_values_outside_2_to_p_minus_2_are_rejected() {
        let g = group(KeMethod::MODP_2048).unwrap();
        let p = g.prime().unwrap().to_be_bytes().into_vec();
        let mut p_minus_1 = p.clone();
        *p_minus_1.last_mut().unwrap() -= 1;
        let mut p_minus_2 = p.clone();
        *p_minus_2.last_mut().unwrap() -= 2;
        let x = [7u8; 32];
        for bad in [&p, &p_minus_1] {
            assert!(matches!(
                g.agree(&x, bad),
                Err(CryptoError::InvalidPublicValue { .. })
            ));
        }
        assert!(g.agree(&x, &p_minus_2).is_ok());
        let mut two = vec![0u8; 256];
        two[255] = 2;
        assert!(g.agree(&x, &two).is_ok());
    }
}
