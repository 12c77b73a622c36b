//! Published and real-peer ESP packets: RFC 7634 Appendix A byte for byte, and every ESP
//! packet of the strongSwan captures opened to the captured inner ICMP packets.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use meshsec_crypto::aead::AeadAlg;
use meshsec_crypto::{Encr, Integ};
use meshsec_esp::selector::{AddrRange, Selector};
use meshsec_esp::{Opened, PacketBuf, SealOutcome};
use meshsec_vectors::{Value, json, strongswan_scenarios, unhex};
use meshsec_wire::registry::{EncrId, IntegId};
use meshsec_wire::udp_encap::{Udp4500, classify};

#[test]
fn rfc7634_appendix_a_seal_reproduces_the_example_and_opens_it() {
    let v = &json("kat/rfc7634-chacha20poly1305-ipsec.json")["appendix_a_esp"];
    let inner = unhex(&v["inner_packet_ipv4_icmp"]);
    let spi = u32::from_be_bytes(unhex(&v["spi"]).try_into().unwrap());
    let seq = u32::from_be_bytes(unhex(&v["seq"]).try_into().unwrap());
    let iv = u64::from_be_bytes(unhex(&v["iv"]).try_into().unwrap());
    let keymat = unhex(&v["keymat_key_then_salt"]);
    let everything = Selector::between(
        AddrRange::prefix(ip("0.0.0.0"), 0),
        AddrRange::prefix(ip("0.0.0.0"), 0),
    );
    let mut p = params(
        spi,
        Encr::Aead(AeadAlg::ChaCha20Poly1305),
        None,
        &keymat,
        &[],
        everything,
    );
    // The example's IV is the sequence number XOR this mask.
    p.iv_mask = iv ^ u64::from(seq);
    let mut dp = dataplane();
    dp.install_outbound(Default::default(), P, p.clone())
        .unwrap();
    dp.add_policy(protect(everything, P));
    assert!(dp.debug_set_next_seq(P, u64::from(seq)));
    let (mut buf, start, end) = framed(&inner);
    let mut pkt = PacketBuf::new(&mut buf, start, end);
    let SealOutcome::Sealed(_) = dp.seal(Default::default(), &mut pkt).unwrap() else {
        panic!("not sealed")
    };
    assert_eq!(
        pkt.data(),
        unhex(&v["esp_packet_spi_seq_iv_ciphertext_tag"]).as_slice()
    );
    // And it opens, for a receiver with the same keys.
    dp.install_inbound(Default::default(), p).unwrap();
    let (s, e) = (pkt.start, pkt.end);
    let mut pkt = PacketBuf::new(&mut buf, s, e);
    let opened = dp.open(
        Default::default(),
        &mut pkt,
        ip("203.0.113.153"),
        ip("203.0.113.5"),
    );
    assert_eq!(
        opened,
        Ok(Opened::Packet {
            spi: InboundSpi::new(spi),
            peer: P
        })
    );
    assert_eq!(pkt.data(), inner.as_slice());
}

fn selector_of(ts: &Value) -> AddrRange {
    AddrRange {
        start: ip(ts[0]["start_addr"].as_str().unwrap()),
        end: ip(ts[0]["end_addr"].as_str().unwrap()),
    }
}

#[test]
fn every_strongswan_esp_packet_opens_to_the_captured_inner_packet() {
    let mut opened_count = 0;
    for (scenario, doc) in strongswan_scenarios() {
        let children = doc["child_sas"].as_array().unwrap();
        let mut dp = dataplane();
        for child in children {
            let (ts_i, ts_r) = (selector_of(&child["ts_i"]), selector_of(&child["ts_r"]));
            let proposal = child["proposal_selected"]["transforms"].as_array().unwrap();
            let encr = proposal.iter().find(|t| t["type_id"] == 1).unwrap();
            let bits = encr
                .get("key_length_bits")
                .and_then(Value::as_u64)
                .map(|b| b as u16);
            let encr = Encr::from_id(EncrId(encr["id"].as_u64().unwrap() as u16), bits).unwrap();
            let integ = proposal
                .iter()
                .find(|t| t["type_id"] == 3)
                .map(|t| Integ::from_id(IntegId(t["id"].as_u64().unwrap() as u16)).unwrap());
            for d in child["directions"].as_array().unwrap() {
                // The receiver of initiator->responder traffic is the responder: its local
                // selector is TSr.
                let sel = if d["direction"] == "initiator->responder" {
                    Selector::between(ts_r, ts_i)
                } else {
                    Selector::between(ts_i, ts_r)
                };
                let spi = u32::from_str_radix(d["spi"].as_str().unwrap(), 16).unwrap();
                let ik = d["integ_key"]
                    .as_str()
                    .map(|_| unhex(&d["integ_key"]))
                    .unwrap_or_default();
                let p = params(spi, encr, integ, &unhex(&d["enc_key_with_salt"]), &ik, sel);
                dp.install_inbound(Default::default(), p).unwrap();
            }
        }
        for frame in doc["frames"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["kind"] == "ESP")
        {
            let udp = unhex(&frame["udp_payload"]);
            let Ok(Udp4500::Esp(esp)) = classify(&udp) else {
                panic!()
            };
            let (mut buf, start, end) = framed(esp);
            let mut pkt = PacketBuf::new(&mut buf, start, end);
            let (src, dst) = (
                ip(frame["src"].as_str().unwrap()),
                ip(frame["dst"].as_str().unwrap()),
            );
            let result = dp.open(Default::default(), &mut pkt, src, dst);
            let spi = u32::from_str_radix(frame["esp_spi"].as_str().unwrap(), 16).unwrap();
            assert_eq!(
                result,
                Ok(Opened::Packet {
                    spi: InboundSpi::new(spi),
                    peer: P
                }),
                "{scenario} frame {}",
                frame["frame"]
            );
            assert_eq!(
                pkt.data(),
                unhex(&frame["inner_packet"]).as_slice(),
                "{scenario} frame {}",
                frame["frame"]
            );
            // A replay of the same packet is refused.
            let (mut buf, start, end) = framed(esp);
            let mut again = PacketBuf::new(&mut buf, start, end);
            assert_eq!(
                dp.open(Default::default(), &mut again, src, dst),
                Err(meshsec_esp::DropReason::Replay)
            );
            opened_count += 1;
        }
    }
    assert_eq!(opened_count, 36);
}
