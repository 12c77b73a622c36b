//! X25519 and the NIST ECP groups through aws-lc.
//!
//! Wire formats: X25519 KE data is the 32-octet u-coordinate (RFC 8031 §2); ECP KE data is
//! x | y without the SEC1 0x04 prefix, and the shared secret is x alone (RFC 5903 §7).

use aws_lc_rs::agreement::{
    self, ECDH_P256, ECDH_P384, ECDH_P521, PrivateKey, UnparsedPublicKey, X25519,
};
use meshsec_wire::registry::KeMethod;

use crate::error::{CryptoError, Result};
use crate::secret::Secret;

/// SEC1 uncompressed point prefix.
const UNCOMPRESSED: u8 = 0x04;

pub(super) fn algorithm(method: KeMethod) -> Option<&'static agreement::Algorithm> {
    Some(match method {
        KeMethod::CURVE25519 => &X25519,
        KeMethod::ECP_256 => &ECDH_P256,
        KeMethod::ECP_384 => &ECDH_P384,
        KeMethod::ECP_521 => &ECDH_P521,
        _ => return None,
    })
}

pub(super) fn private_len(alg: &'static agreement::Algorithm) -> usize {
    if alg == &X25519 || alg == &ECDH_P256 {
        32
    } else if alg == &ECDH_P384 {
        48
    } else {
        66
    }
}

/// Length of one coordinate for an ECP group.
fn coordinate_len(alg: &'static agreement::Algorithm) -> usize {
    private_len(alg)
}

/// The field prime of an ECP group, big-endian at the coordinate length (SEC 2 / FIPS 186).
fn field_prime(method: KeMethod) -> &'static [u8] {
    const P256: [u8; 32] = [
        0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff,
    ];
    const P384: [u8; 48] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, 0xff, 0xff,
        0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff,
    ];
    // 2^521 - 1.
    const P521: [u8; 66] = {
        let mut p = [0xff; 66];
        p[0] = 0x01;
        p
    };
    match method {
        KeMethod::ECP_256 => &P256,
        KeMethod::ECP_384 => &P384,
        _ => &P521,
    }
}

/// RFC 6989 §2.3 checks that need no curve arithmetic, so that each failure says what it is:
/// the all-zero encoding (how the point at infinity would have to be sent) and coordinates
/// not below the field prime. Being on the curve is checked by aws-lc.
fn precheck_ecp(method: KeMethod, peer: &[u8], n: usize) -> Result<()> {
    let invalid = |reason| CryptoError::InvalidPublicValue { method, reason };
    if peer.iter().all(|b| *b == 0) {
        return Err(invalid("all-zero value (point at infinity)"));
    }
    let p = field_prime(method);
    for coordinate in peer.chunks(n) {
        // Same length, big-endian: lexicographic order is numeric order.
        if coordinate >= p {
            return Err(invalid("coordinate not below the field prime"));
        }
    }
    Ok(())
}

pub(super) fn from_private(
    alg: &'static agreement::Algorithm,
    method: KeMethod,
    private: &[u8],
) -> Result<(PrivateKey, Vec<u8>)> {
    let expected = private_len(alg);
    if private.len() != expected {
        return Err(CryptoError::KeyLength {
            what: "key exchange private value",
            expected,
            got: private.len(),
        });
    }
    let key = PrivateKey::from_private_key(alg, private).map_err(|_| CryptoError::KeyRejected {
        what: "key exchange private value",
        reason: "zero or not below the group order",
    })?;
    let public = key.compute_public_key().map_err(|_| CryptoError::Backend {
        what: "public key computation",
    })?;
    let public = public.as_ref();
    let data = if method == KeMethod::CURVE25519 {
        public.to_vec()
    } else {
        // Strip the SEC1 prefix: IKE carries x | y.
        public.get(1..).unwrap_or_default().to_vec()
    };
    Ok((key, data))
}

pub(super) fn agree(key: &PrivateKey, method: KeMethod, peer: &[u8]) -> Result<Secret> {
    let alg = key.algorithm();
    let invalid = |reason| CryptoError::InvalidPublicValue { method, reason };
    let secret = if method == KeMethod::CURVE25519 {
        if peer.len() != 32 {
            return Err(invalid("X25519 value must be 32 octets"));
        }
        agreement::agree(
            key,
            UnparsedPublicKey::new(alg, peer),
            invalid("low-order point (all-zero shared secret)"),
            |s| Ok(Secret::from_slice(s)),
        )?
    } else {
        let n = coordinate_len(alg);
        if peer.len() != 2 * n {
            return Err(invalid("ECP value must be x | y of the group's size"));
        }
        precheck_ecp(method, peer, n)?;
        let mut point = Vec::with_capacity(1 + peer.len());
        point.push(UNCOMPRESSED);
        point.extend_from_slice(peer);
        agreement::agree(
            key,
            UnparsedPublicKey::new(alg, &point),
            invalid("not a point on the curve"),
            |s| Ok(Secret::from_slice(s)),
        )?
    };
    // RFC 8031 §2: the all-zero X25519 output MUST be rejected (whatever the backend did).
    if secret.expose().iter().all(|b| *b == 0) {
        return Err(invalid("low-order point (all-zero shared secret)"));
    }
    Ok(secret)
}
