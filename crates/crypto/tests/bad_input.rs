//! Bad input gets a distinct, typed error and never a panic: wrong-length keys, truncated
//! ciphertext, bad ICVs, invalid key exchange values; random input into every decrypt/verify
//! entry point.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use meshsec_crypto::aead::{AeadAlg, AeadBackend, AeadKey};
use meshsec_crypto::cbc::CbcKey;
use meshsec_crypto::ke::KeyExchange;
use meshsec_crypto::keys::IkeSuite;
use meshsec_crypto::rng::SystemRandom;
use meshsec_crypto::sig::{self, SignatureScheme};
use meshsec_crypto::sk::SkKey;
use meshsec_crypto::{CryptoError, Encr, Integ, Prf, auth, kem};
use meshsec_vectors::{json, unhex};
use meshsec_wire::registry::{ExchangeType, KeMethod, PayloadType};
use meshsec_wire::{Flags, Header};
use proptest::prelude::*;

fn aead_suite() -> IkeSuite {
    IkeSuite {
        encr: Encr::Aead(AeadAlg::Aes256Gcm),
        prf: Prf::HmacSha256,
        integ: None,
    }
}

fn cbc_suite() -> IkeSuite {
    IkeSuite {
        encr: Encr::AesCbc { key_len: 16 },
        prf: Prf::HmacSha256,
        integ: Some(Integ::HmacSha256_128),
    }
}

fn header() -> Header {
    Header {
        spi_i: 1,
        spi_r: 2,
        minor_version: 0,
        exchange: ExchangeType::INFORMATIONAL,
        flags: Flags::INITIATOR,
        message_id: 7,
    }
}

fn sealed(suite: &IkeSuite, e: &[u8], a: &[u8]) -> Vec<u8> {
    let sk = SkKey::new(suite, e, a).unwrap();
    sk.seal(&header(), PayloadType::NONE, &[], &mut SystemRandom::new())
        .unwrap()
}

#[test]
fn wrong_length_keys_are_named() {
    assert_eq!(
        AeadKey::new(AeadAlg::Aes256Gcm, AeadBackend::Ring, &[0; 32]).unwrap_err(),
        CryptoError::KeyLength {
            what: "AEAD key | salt",
            expected: 36,
            got: 32
        }
    );
    assert!(matches!(
        CbcKey::new(&[0; 24]),
        Err(CryptoError::KeyLength {
            what: "AES-CBC key",
            ..
        })
    ));
    assert!(matches!(
        SkKey::new(&cbc_suite(), &[0; 16], &[0; 20]),
        Err(CryptoError::KeyLength {
            what: "SK_a",
            expected: 32,
            got: 20
        })
    ));
    let mut icv = [0u8; 16];
    assert!(matches!(
        Integ::HmacSha256_128.sign(&[0; 31], &[b"x"], &mut icv),
        Err(CryptoError::KeyLength {
            what: "integrity key",
            ..
        })
    ));
    assert!(matches!(
        KeyExchange::from_private(KeMethod::CURVE25519, &[1; 31]),
        Err(CryptoError::KeyLength { .. })
    ));
    assert!(matches!(
        KeyExchange::from_private(KeMethod::MODP_1024, &[1; 32]),
        Err(CryptoError::Unsupported { what: "KE", id: 2 })
    ));
}

#[test]
fn truncated_and_tampered_ciphertext() {
    for (suite, e, a) in [
        (aead_suite(), vec![7; 36], vec![]),
        (cbc_suite(), vec![7; 16], vec![9; 32]),
    ] {
        let msg = sealed(&suite, &e, &a);
        let sk = SkKey::new(&suite, &e, &a).unwrap();
        assert!(sk.open(&msg).unwrap().plaintext.is_empty());
        // Every single-bit flip after the header is an integrity failure.
        for i in 28..msg.len() {
            let mut bad = msg.clone();
            bad[i] ^= 0x01;
            let err = sk.open(&bad).unwrap_err();
            assert!(
                matches!(
                    err,
                    CryptoError::IntegrityCheckFailed { .. } | CryptoError::BadLength { .. }
                ),
                "flip at {i}: {err:?}"
            );
        }
        // A body too short to hold IV and ICV (lengths fixed up so the message parses).
        let mut short = msg[..28 + 4 + 10].to_vec();
        let total = short.len() as u32;
        short[24..28].copy_from_slice(&total.to_be_bytes());
        short[30..32].copy_from_slice(&14u16.to_be_bytes());
        assert!(matches!(
            sk.open(&short),
            Err(CryptoError::Truncated {
                what: "SK payload",
                ..
            })
        ));
    }
    let key = AeadKey::new(AeadAlg::ChaCha20Poly1305, AeadBackend::AwsLc, &[1; 36]).unwrap();
    assert!(matches!(
        key.open_in_place(&[0; 8], b"", &mut [0u8; 15]),
        Err(CryptoError::Truncated { .. })
    ));
    assert_eq!(
        key.open_in_place(&[0; 8], b"", &mut [0u8; 40]),
        Err(CryptoError::IntegrityCheckFailed {
            what: "AEAD ciphertext"
        })
    );
    let cbc = CbcKey::new(&[3; 16]).unwrap();
    assert!(matches!(
        cbc.decrypt(&[0; 16], &mut [0u8; 17]),
        Err(CryptoError::BadLength { .. })
    ));
}

#[test]
fn invalid_key_exchange_values_are_rejected() {
    let mut rng = SystemRandom::new();
    let invalid = |m: KeMethod, peer: &[u8]| {
        let kx = KeyExchange::generate(m, &mut SystemRandom::new()).unwrap();
        match kx.agree(peer) {
            Err(CryptoError::InvalidPublicValue { method, reason }) => {
                assert_eq!(method, m);
                reason
            }
            other => panic!("{m}: {other:?}"),
        }
    };
    // X25519: the zero point and the low-order point 1 give an all-zero secret; bad length.
    let low_order = invalid(KeMethod::CURVE25519, &[0; 32]);
    let mut one = [0u8; 32];
    one[0] = 1;
    assert_eq!(invalid(KeMethod::CURVE25519, &one), low_order);
    assert_ne!(invalid(KeMethod::CURVE25519, &[9; 31]), low_order);
    // ECP: all-zero (the "identity" in x|y form), off-curve, coordinates beyond p, bad length.
    for (m, n) in [
        (KeMethod::ECP_256, 32),
        (KeMethod::ECP_384, 48),
        (KeMethod::ECP_521, 66),
    ] {
        invalid(m, &vec![0; 2 * n]);
        let mut off = KeyExchange::generate(m, &mut rng)
            .unwrap()
            .public_value()
            .to_vec();
        let last = off.len() - 1;
        off[last] ^= 1;
        invalid(m, &off);
        invalid(m, &vec![0xff; 2 * n]);
        invalid(m, &vec![1; 2 * n - 1]);
    }
    // MODP: 0 and 1, >= p, bad length ((p-1 is checked in the modp unit tests, which know
    // the prime).
    let len = 384;
    let mut v = vec![0u8; len];
    let zero = invalid(KeMethod::MODP_3072, &v);
    v[len - 1] = 1;
    assert_eq!(invalid(KeMethod::MODP_3072, &v), zero);
    let big = invalid(KeMethod::MODP_3072, &vec![0xff; len]);
    let short = invalid(KeMethod::MODP_3072, &vec![2; len - 1]);
    assert!(zero != big && big != short && zero != short);
    // ML-KEM-768: wrong lengths.
    assert!(matches!(
        kem::encapsulate_768(&[0; 100]),
        Err(CryptoError::InvalidPublicValue { .. })
    ));
}

#[test]
fn secrets_never_show_in_debug_output() {
    let suite = aead_suite();
    let seed = meshsec_crypto::keys::skeyseed(suite.prf, &[1; 32], &[2; 32], &[3; 32]);
    let keys = meshsec_crypto::keys::ike_keys(&suite, &seed, &[1; 32], &[2; 32], 1, 2).unwrap();
    let shown = format!("{keys:?} {seed:?}");
    let hex_d = keys
        .sk_d
        .expose()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>();
    assert!(!shown.contains(&hex_d[..8]), "{shown}");
    assert!(
        !shown.contains(&format!("{:?}", &keys.sk_d.expose()[..4])),
        "{shown}"
    );
    assert!(shown.contains("redacted"));
    let kx = KeyExchange::generate(KeMethod::MODP_2048, &mut SystemRandom::new()).unwrap();
    assert_eq!(
        format!("{kx:?}"),
        "KeyExchange(MODP_2048, <private redacted>)"
    );
    let sk = SkKey::new(&suite, &[7; 36], &[]).unwrap();
    assert!(!format!("{sk:?}").contains('7'), "{sk:?}");
}

#[test]
fn modp_agreement_is_symmetric_and_accepts_strongswans_values() {
    let mut rng = SystemRandom::new();
    for m in [
        KeMethod::MODP_2048,
        KeMethod::MODP_3072,
        KeMethod::MODP_4096,
    ] {
        let a = KeyExchange::generate(m, &mut rng).unwrap();
        let b = KeyExchange::generate(m, &mut rng).unwrap();
        let s = a.agree(b.public_value()).unwrap();
        assert_eq!(
            s.expose(),
            b.agree(a.public_value()).unwrap().expose(),
            "{m}"
        );
        assert_eq!(
            s.len(),
            a.public_value().len(),
            "{m}: g^ir padded to the modulus"
        );
    }
    // s3 negotiated MODP_3072: strongSwan's KE values pass our RFC 6989 checks.
    let s3 = json("strongswan/s3/keys.json");
    let ours = KeyExchange::generate(KeMethod::MODP_3072, &mut rng).unwrap();
    for ke in ["ke_i", "ke_r"] {
        ours.agree(&unhex(&s3["ike_sas"][0][ke]["data"])).unwrap();
    }
}

#[test]
fn ml_kem_768_round_trip() {
    let alice = kem::MlKem768::generate().unwrap();
    let (ct, bob_secret) = kem::encapsulate_768(alice.encapsulation_key()).unwrap();
    assert_eq!(ct.len(), kem::CIPHERTEXT_LEN);
    assert_eq!(
        alice.decapsulate(&ct).unwrap().expose(),
        bob_secret.expose()
    );
    assert!(alice.decapsulate(&ct[1..]).is_err());
}

#[test]
fn signatures_and_rfc7427_encoding() {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_ASN1_SIGNING};
    use aws_lc_rs::signature::{EcdsaKeyPair, Ed25519KeyPair};
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let rsa = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let keys = [
        (
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
                .unwrap()
                .as_ref()
                .to_vec(),
            vec![SignatureScheme::EcdsaP256Sha256],
        ),
        (
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P384_SHA384_ASN1_SIGNING, &rng)
                .unwrap()
                .as_ref()
                .to_vec(),
            vec![SignatureScheme::EcdsaP384Sha384],
        ),
        (
            Ed25519KeyPair::generate_pkcs8(&rng)
                .unwrap()
                .as_ref()
                .to_vec(),
            vec![SignatureScheme::Ed25519],
        ),
        (
            aws_lc_rs::encoding::AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&rsa)
                .unwrap()
                .as_ref()
                .to_vec(),
            vec![
                SignatureScheme::RsaPkcs1Sha256,
                SignatureScheme::RsaPkcs1Sha384,
                SignatureScheme::RsaPkcs1Sha512,
                SignatureScheme::RsaPssSha256,
                SignatureScheme::RsaPssSha384,
                SignatureScheme::RsaPssSha512,
            ],
        ),
    ];
    let msg = b"InitiatorSignedOctets";
    for (pkcs8, schemes) in &keys {
        let key = sig::SigningKey::from_pkcs8(pkcs8).unwrap();
        let public = key.public_key();
        for &scheme in schemes {
            let s = key.sign(scheme, msg).unwrap();
            let auth_data = sig::encode_digital_signature(scheme, &s);
            let (decoded, sig_bytes) = sig::decode_digital_signature(&auth_data).unwrap();
            assert_eq!(decoded, scheme);
            sig::verify(scheme, &public, msg, sig_bytes).unwrap();
            assert!(sig::verify(scheme, &public, b"other octets", sig_bytes).is_err());
            let mut tampered = sig_bytes.to_vec();
            let last = tampered.len() - 1;
            tampered[last] ^= 1;
            assert!(
                sig::verify(scheme, &public, msg, &tampered).is_err(),
                "{scheme:?}"
            );
        }
        let foreign = if schemes.contains(&SignatureScheme::Ed25519) {
            SignatureScheme::RsaPssSha256
        } else {
            SignatureScheme::Ed25519
        };
        assert!(matches!(
            key.sign(foreign, msg),
            Err(CryptoError::Signature { .. })
        ));
    }
    assert!(sig::decode_digital_signature(&[]).is_err());
    assert!(sig::decode_digital_signature(&[200, 1, 2]).is_err());
    assert!(matches!(
        sig::decode_digital_signature(&[3, 0x30, 0x01, 0x05, 0xaa]),
        Err(CryptoError::Signature { .. })
    ));
    assert!(sig::SigningKey::from_pkcs8(b"not a key").is_err());
    // RFC 4754 (methods 9, 10): ECDSA keys sign without an AlgorithmIdentifier, r | s fixed;
    // other keys have no such method.
    for (pkcs8, schemes) in &keys {
        let key = sig::SigningKey::from_der(pkcs8).unwrap();
        let public = key.public_key();
        match key.sign_legacy(msg) {
            Some(signed) => {
                let (legacy, s) = signed.unwrap();
                let width = if schemes.contains(&SignatureScheme::EcdsaP384Sha384) {
                    48
                } else {
                    32
                };
                assert_eq!(s.len(), 2 * width, "{legacy:?}");
                legacy.verify(&public, msg, &s).unwrap();
                assert!(legacy.verify(&public, b"other octets", &s).is_err());
            }
            None => assert!(!schemes.iter().any(|s| matches!(
                s,
                SignatureScheme::EcdsaP256Sha256 | SignatureScheme::EcdsaP384Sha384
            ))),
        }
    }
    assert!(sig::SigningKey::from_der(b"not a key").is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn random_bytes_into_every_open_and_verify_never_panic(
        data in prop::collection::vec(any::<u8>(), 0..300),
        iv in any::<[u8; 8]>(),
        iv16 in any::<[u8; 16]>(),
    ) {
        for suite in [aead_suite(), cbc_suite()] {
            let (e, a) = if suite.encr.is_aead() { (vec![1; 36], vec![]) } else { (vec![1; 16], vec![2; 32]) };
            let sk = SkKey::new(&suite, &e, &a).unwrap();
            prop_assert!(sk.open(&data).is_err());
        }
        for backend in [AeadBackend::Ring, AeadBackend::AwsLc] {
            for alg in [AeadAlg::Aes128Gcm, AeadAlg::Aes256Gcm, AeadAlg::ChaCha20Poly1305] {
                let key = AeadKey::new(alg, backend, &vec![5; alg.key_len() + 4]).unwrap();
                prop_assert!(key.open_in_place(&iv, &data, &mut data.clone()).is_err());
            }
        }
        let cbc = CbcKey::new(&[4; 32]).unwrap();
        let _ = cbc.decrypt(&iv16, &mut data.clone());
        for integ in [Integ::HmacSha1_96, Integ::HmacSha256_128, Integ::HmacSha384_192, Integ::HmacSha512_256] {
            prop_assert!(integ.verify(&vec![0; integ.key_len()], &[&data], &data, "t").is_err());
        }
        prop_assert!(auth::verify_psk_auth(Prf::HmacSha256, b"psk", &data, &data).is_err());
        for m in [KeMethod::CURVE25519, KeMethod::ECP_256, KeMethod::ECP_384, KeMethod::MODP_2048] {
            let kx = KeyExchange::from_private(m, &vec![0x42; meshsec_crypto::ke::private_len(m).unwrap()]).unwrap();
            let _ = kx.agree(&data);
        }
        let _ = sig::decode_digital_signature(&data);
        let _ = kem::encapsulate_768(&data);
    }
}
