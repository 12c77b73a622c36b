//! Published known-answer vectors (`shared/vectors/kat/`): RFC 7634 A/B, RFC 4868 §2.7,
//! RFC 7748 / RFC 8031, RFC 5903 §8, NIST SP 800-135 IKEv2 KDF, strongSwan's prf+ table and
//! Project Wycheproof's AEAD tests.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use meshsec_crypto::aead::{AeadAlg, AeadBackend, AeadKey};
use meshsec_crypto::ke::KeyExchange;
use meshsec_crypto::keys::{self, IkeSuite};
use meshsec_crypto::sk::SkKey;
use meshsec_crypto::{Encr, Integ, Prf};
use meshsec_vectors::{Value, json, unhex};
use meshsec_wire::registry::{IntegId, KeMethod, PayloadType, PrfId};

const BACKENDS: [AeadBackend; 2] = [AeadBackend::Ring, AeadBackend::AwsLc];

fn prf_named(name: &str) -> Prf {
    match name {
        "PRF_HMAC_SHA1" => Prf::HmacSha1,
        "PRF_HMAC_SHA2_256" => Prf::HmacSha256,
        "PRF_HMAC_SHA2_384" => Prf::HmacSha384,
        "PRF_HMAC_SHA2_512" => Prf::HmacSha512,
        other => panic!("unknown PRF {other}"),
    }
}

#[test]
fn rfc7634_appendix_a_esp_example() {
    let v = &json("kat/rfc7634-chacha20poly1305-ipsec.json")["appendix_a_esp"];
    let iv: [u8; 8] = unhex(&v["iv"]).try_into().unwrap();
    for backend in BACKENDS {
        let key = AeadKey::new(
            AeadAlg::ChaCha20Poly1305,
            backend,
            &unhex(&v["keymat_key_then_salt"]),
        )
        .unwrap();
        let mut buf = unhex(&v["plaintext"]);
        let tag = key
            .seal_in_place(&iv, &unhex(&v["aad_spi_seq"]), &mut buf)
            .unwrap();
        assert_eq!(buf, unhex(&v["ciphertext"]), "{backend:?}");
        assert_eq!(tag.to_vec(), unhex(&v["tag"]), "{backend:?}");
        buf.extend_from_slice(&tag);
        let n = key
            .open_in_place(&iv, &unhex(&v["aad_spi_seq"]), &mut buf)
            .unwrap();
        assert_eq!(&buf[..n], unhex(&v["plaintext"]).as_slice());
    }
}

#[test]
fn rfc7634_appendix_b_ike_message_decrypts_and_reencrypts() {
    let v = &json("kat/rfc7634-chacha20poly1305-ipsec.json")["appendix_b_ikev2"];
    let suite = IkeSuite {
        encr: Encr::Aead(AeadAlg::ChaCha20Poly1305),
        prf: Prf::HmacSha256,
        integ: None,
    };
    let keymat = [unhex(&v["key"]), unhex(&v["salt"])].concat();
    let sk = SkKey::new(&suite, &keymat, &[]).unwrap();
    let message = unhex(&v["ike_message"]);
    let opened = sk.open(&message).unwrap();
    assert_eq!(opened.first_inner, PayloadType::NOTIFY);
    let mut expected = unhex(&v["plaintext_payloads_and_padlen"]);
    expected.pop(); // the Pad Length octet (0)
    assert_eq!(opened.plaintext, expected);
    // Sealing the same payloads with the same IV reproduces the message byte for byte.
    let parsed = meshsec_wire::Message::parse(&message).unwrap();
    let mut rng = FixedRandom(unhex(&v["iv"]));
    let sealed = sk
        .seal(&parsed.header, PayloadType::NOTIFY, &expected, &mut rng)
        .unwrap();
    assert_eq!(sealed, message);
    // One flipped bit anywhere is caught.
    for i in [0, 20, 30, message.len() - 1] {
        let mut bad = message.clone();
        bad[i] ^= 1;
        assert!(sk.open(&bad).is_err(), "flip at {i} not detected");
    }
}

/// Hands out fixed bytes (a known IV).
struct FixedRandom(Vec<u8>);

impl meshsec_crypto::rng::Random for FixedRandom {
    fn fill(&mut self, out: &mut [u8]) -> meshsec_crypto::Result<()> {
        out.copy_from_slice(&self.0[..out.len()]);
        Ok(())
    }
}

#[test]
fn rfc4868_prf_and_truncated_authenticators() {
    let v = json("kat/rfc4868-hmac-sha2.json");
    for case in v["prf"].as_array().unwrap() {
        let prf = prf_named(case["prf"].as_str().unwrap());
        let out = prf.compute(&unhex(&case["key"]), &[&unhex(&case["data"])]);
        assert_eq!(out.expose(), unhex(&case["output"]), "{}", case["case"]);
    }
    for case in v["auth"].as_array().unwrap() {
        let integ = match case["integ"].as_str().unwrap() {
            "AUTH_HMAC_SHA2_256_128" => Integ::from_id(IntegId::HMAC_SHA2_256_128),
            "AUTH_HMAC_SHA2_384_192" => Integ::from_id(IntegId::HMAC_SHA2_384_192),
            "AUTH_HMAC_SHA2_512_256" => Integ::from_id(IntegId::HMAC_SHA2_512_256),
            other => panic!("unknown {other}"),
        }
        .unwrap();
        let (key, data) = (unhex(&case["key"]), unhex(&case["data"]));
        let mut icv = vec![0; integ.icv_len()];
        integ.sign(&key, &[&data], &mut icv).unwrap();
        assert_eq!(icv, unhex(&case["icv_truncated"]), "{}", case["case"]);
        integ.verify(&key, &[&data], &icv, "test").unwrap();
        icv[0] ^= 0x80;
        assert!(integ.verify(&key, &[&data], &icv, "test").is_err());
    }
}

#[test]
fn rfc7748_and_rfc8031_x25519() {
    let v = json("kat/rfc7748-x25519.json");
    for section in ["section_6_1", "rfc8031_appendix_a"] {
        let s = &v[section];
        let a = KeyExchange::from_private(KeMethod::CURVE25519, &unhex(&s["private_a"])).unwrap();
        let b = KeyExchange::from_private(KeMethod::CURVE25519, &unhex(&s["private_b"])).unwrap();
        assert_eq!(a.public_value(), unhex(&s["public_a"]), "{section}");
        assert_eq!(b.public_value(), unhex(&s["public_b"]), "{section}");
        assert_eq!(
            a.agree(b.public_value()).unwrap().expose(),
            unhex(&s["shared"])
        );
        assert_eq!(
            b.agree(a.public_value()).unwrap().expose(),
            unhex(&s["shared"])
        );
    }
    // RFC 7748 §5.2: X25519(scalar, u) as a key exchange with the peer value u.
    for case in v["section_5_2_single"]["cases"].as_array().unwrap() {
        let kx = KeyExchange::from_private(KeMethod::CURVE25519, &unhex(&case["scalar"])).unwrap();
        assert_eq!(
            kx.agree(&unhex(&case["u"])).unwrap().expose(),
            unhex(&case["output_u"])
        );
    }
}

#[test]
fn rfc5903_ecp_groups() {
    let v = json("kat/rfc5903-ecp.json");
    let methods = [KeMethod::ECP_256, KeMethod::ECP_384, KeMethod::ECP_521];
    for (case, method) in v["vectors"].as_array().unwrap().iter().zip(methods) {
        let i = KeyExchange::from_private(method, &unhex(&case["i"])).unwrap();
        let r = KeyExchange::from_private(method, &unhex(&case["r"])).unwrap();
        assert_eq!(
            i.public_value(),
            unhex(&case["ike_ke_payload_i"]),
            "{method}"
        );
        assert_eq!(
            r.public_value(),
            unhex(&case["ike_ke_payload_r"]),
            "{method}"
        );
        let shared = unhex(&case["ike_shared_secret"]);
        assert_eq!(
            i.agree(r.public_value()).unwrap().expose(),
            shared,
            "{method}"
        );
        assert_eq!(
            r.agree(i.public_value()).unwrap().expose(),
            shared,
            "{method}"
        );
    }
}

#[test]
fn nist_sp800_135_ikev2_kdf() {
    let inputs = json("kat/nist-sp800-135-ikev2-kdf/libreswan-test.acvp.ikev2.inputs.json");
    let want = json("kat/nist-sp800-135-ikev2-kdf/libreswan-test.acvp.ikev2.json");
    let want = if want.is_array() {
        want[0].clone()
    } else {
        want
    };
    let prf = Prf::from_id(PrfId::HMAC_SHA1).unwrap();
    let (ni, nr) = (unhex(&inputs["nInit"]), unhex(&inputs["nResp"]));
    let spi = |v: &Value| u64::from_be_bytes(unhex(v).try_into().unwrap());
    let (spi_i, spi_r) = (spi(&inputs["spiInit"]), spi(&inputs["spiResp"]));
    let g_ir_new = unhex(&inputs["girNew"]);

    let skeyseed = keys::skeyseed(prf, &ni, &nr, &unhex(&inputs["gir"]));
    assert_eq!(skeyseed.expose(), unhex(&want["sKeySeed"]));
    let dkm_len = inputs["derivedKeyingMaterialLength_bits"].as_u64().unwrap() as usize / 8;
    let seed = [
        ni.as_slice(),
        &nr,
        &spi_i.to_be_bytes(),
        &spi_r.to_be_bytes(),
    ];
    let dkm = prf.plus(skeyseed.expose(), &seed, dkm_len).unwrap();
    assert_eq!(dkm.expose(), unhex(&want["derivedKeyingMaterial"]));
    let sk_d = &dkm.expose()[..prf.output_len()];
    let child = prf.plus(sk_d, &[&ni, &nr], dkm_len).unwrap();
    assert_eq!(child.expose(), unhex(&want["derivedKeyingMaterialChild"]));
    let child_dh = prf.plus(sk_d, &[&g_ir_new, &ni, &nr], dkm_len).unwrap();
    assert_eq!(child_dh.expose(), unhex(&want["derivedKeyingMaterialDh"]));
    let rekey = keys::rekey_skeyseed(prf, sk_d, &g_ir_new, &ni, &nr);
    assert_eq!(rekey.expose(), unhex(&want["sKeySeedReKey"]));
}

#[test]
fn strongswan_prf_plus_table() {
    let v = json("kat/nist-sp800-135-ikev2-kdf/strongswan-kdf-prf-plus.json");
    for case in v["vectors"].as_array().unwrap() {
        let prf = prf_named(case["prf"].as_str().unwrap());
        let want = unhex(&case["output"]);
        let out = prf
            .plus(&unhex(&case["key"]), &[&unhex(&case["seed"])], want.len())
            .unwrap();
        assert_eq!(out.expose(), want, "{}", case["name"]);
    }
}

/// Wycheproof AEAD tests with IPsec's nonce (12 octets = 4 salt + 8 IV) and 16-octet tags.
fn wycheproof(file: &str, alg_for_key: impl Fn(usize) -> Option<AeadAlg>) -> usize {
    let v = json(file);
    let mut checked = 0;
    for group in v["testGroups"].as_array().unwrap() {
        if group["ivSize"] != 96 || group["tagSize"] != 128 {
            continue;
        }
        for t in group["tests"].as_array().unwrap() {
            let key = unhex(&t["key"]);
            let Some(alg) = alg_for_key(key.len()) else {
                continue;
            };
            let nonce = unhex(&t["iv"]);
            let keymat = [key.as_slice(), &nonce[..4]].concat();
            let iv: [u8; 8] = nonce[4..].try_into().unwrap();
            let (aad, msg) = (unhex(&t["aad"]), unhex(&t["msg"]));
            let ct_tag = [unhex(&t["ct"]), unhex(&t["tag"])].concat();
            for backend in BACKENDS {
                let k = AeadKey::new(alg, backend, &keymat).unwrap();
                let mut buf = ct_tag.clone();
                let opened = k.open_in_place(&iv, &aad, &mut buf);
                match t["result"].as_str().unwrap() {
                    "valid" => {
                        let n = opened.unwrap_or_else(|e| panic!("tc {}: {e}", t["tcId"]));
                        assert_eq!(&buf[..n], msg.as_slice(), "tc {}", t["tcId"]);
                        let mut sealed = msg.clone();
                        let tag = k.seal_in_place(&iv, &aad, &mut sealed).unwrap();
                        assert_eq!([sealed, tag.to_vec()].concat(), ct_tag, "tc {}", t["tcId"]);
                    }
                    "invalid" => assert!(opened.is_err(), "tc {} opened", t["tcId"]),
                    _ => {}
                }
                checked += 1;
            }
        }
    }
    checked
}

#[test]
fn wycheproof_aes_gcm() {
    let n = wycheproof("kat/wycheproof/aes_gcm_test.json", |len| match len {
        16 => Some(AeadAlg::Aes128Gcm),
        32 => Some(AeadAlg::Aes256Gcm),
        _ => None,
    });
    assert!(n > 200, "only {n} checks");
}

#[test]
fn wycheproof_chacha20_poly1305() {
    let n = wycheproof("kat/wycheproof/chacha20_poly1305_test.json", |len| {
        (len == 32).then_some(AeadAlg::ChaCha20Poly1305)
    });
    assert!(n > 200, "only {n} checks");
}
