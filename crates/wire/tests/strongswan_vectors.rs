//! Real strongSwan 5.9.8 captures (`shared/vectors/strongswan/s1..s4`): every frame parses, the
//! parsed fields equal what the vector files record, and re-emitting gives the same bytes.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use meshsec_vectors::{Value, strongswan_scenarios, unhex};
use meshsec_wire::esp::EspHeader;
use meshsec_wire::payload::{Proposal, SaPayload};
use meshsec_wire::registry::{ExchangeType, PayloadType};
use meshsec_wire::udp_encap::{Udp4500, classify};
use meshsec_wire::{Message, PayloadBody, rules};

/// Our payload notation in the vectors' spelling (they write "Delete" where RFC 7296 writes D).
fn payload_names(msg_payloads: &[meshsec_wire::Payload<'_>]) -> Vec<String> {
    msg_payloads
        .iter()
        .map(|p| match p.payload_type() {
            PayloadType::DELETE => "Delete".to_string(),
            _ => p.to_string(),
        })
        .collect()
}

/// The IKE message inside a frame's UDP payload (port 4500 frames carry the non-ESP marker).
fn ike_bytes(frame: &Value, udp: &[u8]) -> Vec<u8> {
    if frame["udp"].as_str().unwrap().starts_with("4500") {
        match classify(udp).unwrap() {
            Udp4500::Ike(ike) => ike.to_vec(),
            other => panic!(
                "frame {}: expected IKE on 4500, got {other:?}",
                frame["frame"]
            ),
        }
    } else {
        udp.to_vec()
    }
}

fn assert_proposal_eq(ours: &Proposal<'_>, theirs: &Value, ctx: &str) {
    assert_eq!(
        u64::from(ours.number),
        theirs["proposal_number"],
        "{ctx}: number"
    );
    assert_eq!(
        u64::from(ours.protocol.0),
        theirs["protocol_id"],
        "{ctx}: protocol"
    );
    assert_eq!(ours.spi.as_ref(), unhex(&theirs["spi"]), "{ctx}: SPI");
    let want = theirs["transforms"].as_array().unwrap();
    assert_eq!(ours.transforms.len(), want.len(), "{ctx}: transform count");
    for (t, w) in ours.transforms.iter().zip(want) {
        assert_eq!(u64::from(t.ty.0), w["type_id"], "{ctx}: transform type");
        assert_eq!(u64::from(t.id), w["id"], "{ctx}: transform id");
        assert_eq!(
            t.key_length().map(u64::from),
            w.get("key_length_bits").and_then(Value::as_u64),
            "{ctx}: key length"
        );
    }
}

fn only_sa<'m>(msg: &'m Message<'_>) -> &'m SaPayload<'m> {
    let mut sas = msg.payloads.iter().filter_map(|p| match &p.body {
        PayloadBody::Sa(sa) => Some(sa),
        _ => None,
    });
    let sa = sas.next().expect("SA payload");
    assert!(sas.next().is_none());
    sa
}

fn ke_and_nonce<'m>(msg: &'m Message<'_>) -> (u16, &'m [u8], &'m [u8]) {
    let ke = msg.payloads.iter().find_map(|p| match &p.body {
        PayloadBody::Ke(ke) => Some((ke.method.0, ke.data.as_ref())),
        _ => None,
    });
    let nonce = msg.payloads.iter().find_map(|p| match &p.body {
        PayloadBody::Nonce(n) => Some(n.as_ref()),
        _ => None,
    });
    let (group, data) = ke.expect("KE payload");
    (group, data, nonce.expect("Nonce payload"))
}

/// IKE_SA_INIT cleartext content against `ike_sa_init_attempts` / `ike_sas`.
fn check_sa_init(scenario: &str, doc: &Value, frame: &Value, msg: &Message<'_>) {
    let n = frame["frame"].as_u64().unwrap();
    let (group, ke, nonce) = ke_and_nonce(msg);
    if frame["role"] == "request" {
        let attempt = doc["ike_sa_init_attempts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["frame"] == n)
            .unwrap_or_else(|| panic!("{scenario}: no attempt for frame {n}"));
        assert_eq!(u64::from(group), attempt["ke_group"]);
        assert_eq!(ke, unhex(&attempt["ke_data"]));
        assert_eq!(nonce, unhex(&attempt["nonce"]));
        let offered = attempt["proposals_offered"].as_array().unwrap();
        let sa = only_sa(msg);
        assert_eq!(sa.proposals.len(), offered.len());
        for (p, w) in sa.proposals.iter().zip(offered) {
            assert_proposal_eq(p, w, &format!("{scenario} frame {n} offered"));
        }
    } else {
        let ike_sa = &doc["ike_sas"][frame["ike_sa"].as_u64().unwrap() as usize];
        assert_eq!(u64::from(group), ike_sa["ke_r"]["dh_group"]);
        assert_eq!(ke, unhex(&ike_sa["ke_r"]["data"]));
        assert_eq!(nonce, unhex(&ike_sa["nr"]));
        let sa = only_sa(msg);
        assert_eq!(sa.proposals.len(), 1, "a responder selects one proposal");
        assert_proposal_eq(
            &sa.proposals[0],
            &ike_sa["proposal_selected"],
            &format!("{scenario} frame {n} selected"),
        );
    }
}

#[test]
fn every_strongswan_frame_parses_to_the_recorded_fields_and_round_trips() {
    let mut ike_frames = 0;
    let mut esp_frames = 0;
    for (scenario, doc) in strongswan_scenarios() {
        for frame in doc["frames"].as_array().unwrap() {
            let n = frame["frame"].as_u64().unwrap();
            let ctx = format!("{scenario} frame {n}");
            let udp = unhex(&frame["udp_payload"]);
            match frame["kind"].as_str().unwrap() {
                "IKE" => {
                    ike_frames += 1;
                    let bytes = ike_bytes(frame, &udp);
                    let msg = Message::parse(&bytes).unwrap_or_else(|e| panic!("{ctx}: {e}"));
                    let h = &msg.header;
                    assert_eq!(format!("{:016x}", h.spi_i), frame["ike_spi_i"], "{ctx}");
                    assert_eq!(format!("{:016x}", h.spi_r), frame["ike_spi_r"], "{ctx}");
                    assert_eq!(u64::from(h.message_id), frame["msgid"], "{ctx}");
                    assert_eq!(h.exchange.to_string(), frame["exchange"], "{ctx}");
                    assert_eq!(format!("{:#04x}", h.flags.0), frame["flags"], "{ctx}");
                    assert_eq!(h.flags.response(), frame["role"] == "response", "{ctx}");
                    assert_eq!(bytes.len() as u64, frame["ike_length"], "{ctx}");
                    let want: Vec<String> = frame["payloads"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|v| v.as_str().unwrap().to_string())
                        .collect();
                    assert_eq!(payload_names(&msg.payloads), want, "{ctx}: payloads");
                    rules::check_outer(h.exchange, h.flags.response(), &msg.payloads)
                        .unwrap_or_else(|e| panic!("{ctx}: placement: {e}"));
                    if h.exchange == ExchangeType::IKE_SA_INIT {
                        check_sa_init(&scenario, &doc, frame, &msg);
                    } else {
                        let PayloadBody::Sk(sk) = &msg.payloads[0].body else {
                            panic!("{ctx}: expected SK");
                        };
                        // The first inner payload type is in SK's header.
                        let first_inner = frame["inner_payloads"][0].as_str().unwrap_or("");
                        let expect = match first_inner {
                            "" => PayloadType::NONE,
                            s if s.starts_with("N(") => PayloadType::NOTIFY,
                            "Delete" => PayloadType::DELETE,
                            "IDi" => PayloadType::IDI,
                            "IDr" => PayloadType::IDR,
                            "SA" => PayloadType::SA,
                            other => panic!("{ctx}: unexpected first inner payload {other}"),
                        };
                        assert_eq!(sk.first_inner, expect, "{ctx}: SK next payload");
                    }
                    assert_eq!(msg.to_bytes().unwrap(), bytes, "{ctx}: emit(parse(b)) == b");
                }
                "ESP" => {
                    esp_frames += 1;
                    let Ok(Udp4500::Esp(esp)) = classify(&udp) else {
                        panic!("{ctx}: ESP frame not classified as ESP");
                    };
                    let (h, rest) = EspHeader::parse(esp).unwrap();
                    assert_eq!(format!("{:08x}", h.spi), frame["esp_spi"], "{ctx}");
                    assert_eq!(u64::from(h.seq), frame["esp_seq"], "{ctx}");
                    assert!(rest.starts_with(&unhex(&frame["esp_iv"])), "{ctx}: IV");
                    assert!(rest.ends_with(&unhex(&frame["esp_icv"])), "{ctx}: ICV");
                }
                other => panic!("{ctx}: unknown kind {other}"),
            }
        }
    }
    // s1-s3: 6 IKE + 6 ESP each; s4: 14 IKE + 18 ESP.
    assert_eq!((ike_frames, esp_frames), (32, 36));
}
