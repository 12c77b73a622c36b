//! Real-peer vectors: from the values strongSwan 5.9.8 logged (g^ir, nonces, SPIs) we derive
//! exactly the SKEYSEED, SK_* and CHILD SA keys strongSwan derived, open every SK payload of
//! the captures (ICV verified) to the recorded inner payloads, and recompute both PSK AUTH
//! payloads from octets rebuilt out of the capture.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use meshsec_crypto::keys::{self, IkeKeys, IkeSuite};
use meshsec_crypto::sk::SkKey;
use meshsec_crypto::{Encr, Integ, Provider, auth};
use meshsec_vectors::{Value, strongswan_scenarios, unhex};
use meshsec_wire::registry::{EncrId, IntegId, PayloadType, PrfId, TransformType};
use meshsec_wire::udp_encap::{Udp4500, classify};
use meshsec_wire::{Message, parse_payloads};

/// The IKE suite of a `proposal_selected` entry.
fn suite(proposal: &Value) -> IkeSuite {
    let mut encr = None;
    let mut prf = None;
    let mut integ = None;
    for t in proposal["transforms"].as_array().unwrap() {
        let id = t["id"].as_u64().unwrap() as u16;
        match TransformType(t["type_id"].as_u64().unwrap() as u8) {
            TransformType::ENCR => {
                let bits = t
                    .get("key_length_bits")
                    .and_then(Value::as_u64)
                    .map(|b| b as u16);
                encr = Some(Provider::Real.encr(EncrId(id), bits).unwrap());
            }
            TransformType::PRF => prf = Some(Provider::Real.prf(PrfId(id)).unwrap()),
            TransformType::INTEG => integ = Some(Provider::Real.integ(IntegId(id)).unwrap()),
            _ => {}
        }
    }
    IkeSuite {
        encr: encr.unwrap(),
        prf: prf.unwrap(),
        integ,
    }
}

/// ESP ENCR / INTEG of a CHILD SA proposal.
fn esp_algs(proposal: &Value) -> (Encr, Option<Integ>) {
    let s = proposal["transforms"].as_array().unwrap();
    let encr = s.iter().find(|t| t["type_id"] == 1).unwrap();
    let bits = encr
        .get("key_length_bits")
        .and_then(Value::as_u64)
        .map(|b| b as u16);
    let encr = Encr::from_id(EncrId(encr["id"].as_u64().unwrap() as u16), bits).unwrap();
    let integ = s
        .iter()
        .find(|t| t["type_id"] == 3)
        .map(|t| Integ::from_id(IntegId(t["id"].as_u64().unwrap() as u16)).unwrap());
    (encr, integ)
}

fn derive(ike_sa: &Value, suite: &IkeSuite) -> IkeKeys {
    let (ni, nr, g_ir) = (
        unhex(&ike_sa["ni"]),
        unhex(&ike_sa["nr"]),
        unhex(&ike_sa["g_ir"]),
    );
    let skeyseed = match ike_sa.get("old_sk_d") {
        Some(old) => keys::rekey_skeyseed(suite.prf, &unhex(old), &g_ir, &ni, &nr),
        None => keys::skeyseed(suite.prf, &ni, &nr, &g_ir),
    };
    assert_eq!(
        skeyseed.expose(),
        unhex(&ike_sa["skeyseed"]),
        "{}",
        ike_sa["label"]
    );
    let spi = |k: &str| u64::from_str_radix(ike_sa[k].as_str().unwrap(), 16).unwrap();
    keys::ike_keys(suite, &skeyseed, &ni, &nr, spi("spi_i"), spi("spi_r")).unwrap()
}

fn inner_names(first: PayloadType, plaintext: &[u8]) -> Vec<String> {
    parse_payloads(first, plaintext)
        .unwrap()
        .iter()
        .map(|p| match p.payload_type() {
            PayloadType::DELETE => "Delete".to_string(),
            _ => p.to_string(),
        })
        .collect()
}

#[test]
fn strongswan_key_schedule_sk_payloads_and_psk_auth() {
    let mut sk_frames = 0;
    for (scenario, doc) in strongswan_scenarios() {
        let mut ike_keys = Vec::new();
        for ike_sa in doc["ike_sas"].as_array().unwrap() {
            let suite = suite(&ike_sa["proposal_selected"]);
            let k = derive(ike_sa, &suite);
            let label = format!("{scenario} {}", ike_sa["label"]);
            for (name, ours) in [
                ("sk_d", &k.sk_d),
                ("sk_ai", &k.sk_ai),
                ("sk_ar", &k.sk_ar),
                ("sk_ei", &k.sk_ei),
                ("sk_er", &k.sk_er),
                ("sk_pi", &k.sk_pi),
                ("sk_pr", &k.sk_pr),
            ] {
                assert_eq!(ours.expose(), unhex(&ike_sa[name]), "{label}: {name}");
            }
            ike_keys.push((suite, k));
        }

        // CHILD SAs: KEYMAT from SK_d, the exchange's nonces and the PFS secret.
        for child in doc["child_sas"].as_array().unwrap() {
            let (suite, _) = &ike_keys[child["ike_sa_index"].as_u64().unwrap() as usize];
            let (encr, integ) = esp_algs(&child["proposal_selected"]);
            let g_ir = child["pfs"].get("g_ir").map(unhex);
            let ck = keys::child_keys(
                suite.prf,
                &unhex(&child["sk_d_used"]),
                g_ir.as_deref(),
                &unhex(&child["ni"]),
                &unhex(&child["nr"]),
                encr,
                integ,
            )
            .unwrap();
            let keymat = [
                ck.encr_i.expose(),
                ck.integ_i.expose(),
                ck.encr_r.expose(),
                ck.integ_r.expose(),
            ]
            .concat();
            assert_eq!(
                keymat,
                unhex(&child["keymat"]),
                "{scenario} {}",
                child["label"]
            );
            let dirs = child["directions"].as_array().unwrap();
            assert_eq!(ck.encr_i.expose(), unhex(&dirs[0]["enc_key_with_salt"]));
            assert_eq!(ck.encr_r.expose(), unhex(&dirs[1]["enc_key_with_salt"]));
            if integ.is_some() {
                assert_eq!(ck.integ_i.expose(), unhex(&dirs[0]["integ_key"]));
                assert_eq!(ck.integ_r.expose(), unhex(&dirs[1]["integ_key"]));
            }
        }

        // Every SK payload opens with the right direction's keys, to the recorded payloads.
        for frame in doc["frames"].as_array().unwrap() {
            let Some(index) = frame.get("ike_sa").and_then(Value::as_u64) else {
                continue;
            };
            if frame["exchange"] == "IKE_SA_INIT" {
                continue;
            }
            let udp = unhex(&frame["udp_payload"]);
            let Ok(Udp4500::Ike(ike)) = classify(&udp) else {
                panic!("{scenario} frame {}: not IKE", frame["frame"]);
            };
            let (suite, k) = &ike_keys[index as usize];
            let header = Message::parse(ike).unwrap().header;
            let (e, a) = if header.flags.initiator() {
                (&k.sk_ei, &k.sk_ai)
            } else {
                (&k.sk_er, &k.sk_ar)
            };
            let sk = SkKey::new(suite, e.expose(), a.expose()).unwrap();
            let opened = sk
                .open(ike)
                .unwrap_or_else(|err| panic!("{scenario} frame {}: {err}", frame["frame"]));
            let want: Vec<String> = frame["inner_payloads"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect();
            assert_eq!(
                inner_names(opened.first_inner, &opened.plaintext),
                want,
                "{scenario} frame {}",
                frame["frame"]
            );
            // The wrong direction's keys fail the integrity check.
            let (e2, a2) = if header.flags.initiator() {
                (&k.sk_er, &k.sk_ar)
            } else {
                (&k.sk_ei, &k.sk_ai)
            };
            assert!(
                SkKey::new(suite, e2.expose(), a2.expose())
                    .unwrap()
                    .open(ike)
                    .is_err()
            );
            sk_frames += 1;
        }

        // PSK AUTH, both sides, over octets rebuilt from the capture.
        let psk = unhex(&doc["authentication"]["psk_hex"]);
        let frames = doc["frames"].as_array().unwrap();
        let (suite, k) = &ike_keys[0];
        let ike_sa = &doc["ike_sas"][0];
        for (side, real_frame, peer_nonce, sk_p) in [
            ("initiator", 0, "nr", &k.sk_pi),
            ("responder", 1, "ni", &k.sk_pr),
        ] {
            let a = &doc["auth"][side];
            let real_message = unhex(&frames[real_frame]["udp_payload"]);
            let octets = auth::signed_octets(
                &real_message,
                &unhex(&ike_sa[peer_nonce]),
                suite.prf,
                sk_p.expose(),
                &unhex(&a["id_payload_body"]),
            );
            assert_eq!(octets, unhex(&a["signed_octets"]), "{scenario} {side}");
            let value = auth::psk_auth(suite.prf, &psk, &octets);
            assert_eq!(value.expose(), unhex(&a["auth_data"]), "{scenario} {side}");
            auth::verify_psk_auth(suite.prf, &psk, &octets, &unhex(&a["auth_data"])).unwrap();
            let wrong = auth::verify_psk_auth(suite.prf, b"not the key", &octets, value.expose());
            assert!(wrong.is_err(), "{scenario} {side}: wrong PSK accepted");
        }
    }
    // s1-s3: 4 SK messages each; s4: 12.
    assert_eq!(sk_frames, 24);
}
