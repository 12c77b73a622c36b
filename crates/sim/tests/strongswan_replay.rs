//! Real strongSwan bytes through our engine, in both roles. strongSwan's logs give g^ir but not
//! the private DH values, so our side's key exchange is replayed from the recording and its
//! SPIs and nonces are scripted to the recorded ones; everything else is our engine: it must
//! accept strongSwan's messages, verify strongSwan's AUTH payload, and derive exactly the CHILD
//! SA keys strongSwan derived.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};

use meshsec_crypto::ke::KeyExchange;
use meshsec_crypto::{Provider, Secret};
use meshsec_ike::proposal::ProposalSpec;
use meshsec_ike::{ChildMode, ChildSa, Endpoint, EndpointConfig, Event, PeerConfig};
use meshsec_sim::{PeerId, ScriptedRandom, Timestamp};
use meshsec_vectors::{Value, strongswan_scenarios, unhex};
use meshsec_wire::payload::{AddrSelector, Identity};
use meshsec_wire::registry::{KeMethod, ProtocolId};

const LEFT: &str = "198.51.100.1:500";
const RIGHT: &str = "198.51.100.2:500";

fn sel(s: &str) -> AddrSelector {
    let (a, len) = s.split_once('/').unwrap();
    let v = u32::from(a.parse::<std::net::Ipv4Addr>().unwrap());
    let len: u32 = len.parse().unwrap();
    let mask = u32::MAX << (32 - len);
    AddrSelector::range(
        IpAddr::V4((v & mask).into()),
        IpAddr::V4((v | !mask).into()),
    )
}

fn endpoint(doc: &Value, left: bool, rng: ScriptedRandom) -> Endpoint {
    let conf = &doc["configured"];
    let who = if left {
        "initiator (left)"
    } else {
        "responder (right)"
    };
    let ike = conf[format!("{who} swanctl proposals")].as_str().unwrap();
    let esp = conf[format!("{who} swanctl esp_proposals")]
        .as_str()
        .unwrap();
    let id = |s: &str| Identity::Fqdn(Cow::Owned(s.as_bytes().to_vec()));
    let (l, r) = (sel("10.1.0.0/24"), sel("10.2.0.0/24"));
    let peer = PeerConfig {
        name: if left { "right".into() } else { "left".into() },
        remote_addr: (if left { RIGHT } else { LEFT }).parse().unwrap(),
        accept_from: Vec::new(),
        local_id: id(if left {
            "left.vec.test"
        } else {
            "right.vec.test"
        }),
        remote_id: id(if left {
            "right.vec.test"
        } else {
            "left.vec.test"
        }),
        psk: Secret::new(unhex(&doc["authentication"]["psk_hex"])),
        local_auth: Default::default(),
        peer_auth: Default::default(),
        ike_proposals: vec![ProposalSpec::parse(ike, ProtocolId::IKE).unwrap()],
        esp_proposals: vec![ProposalSpec::parse(esp, ProtocolId::ESP).unwrap()],
        local_ts: vec![if left { l } else { r }],
        remote_ts: vec![if left { r } else { l }],
        mode: ChildMode::Tunnel,
        accept_narrowing: false,
        child_lifetime: None,
        ike_lifetime: None,
        reauth_lifetime: None,
    };
    let local: SocketAddr = (if left { LEFT } else { RIGHT }).parse().unwrap();
    Endpoint::new(
        EndpointConfig::new(local),
        vec![peer],
        Box::new(rng),
        Provider::Real,
    )
}

/// The IKE message of a captured frame (port-4500 frames lose their non-ESP marker).
fn ike_of(frame: &Value) -> Vec<u8> {
    let udp = unhex(&frame["udp_payload"]);
    if frame["udp"].as_str().unwrap().starts_with("4500") {
        udp[4..].to_vec()
    } else {
        udp
    }
}

fn events(e: &mut Endpoint) -> Vec<Event> {
    while e.poll_transmit().is_some() {}
    std::iter::from_fn(|| e.poll_event()).collect()
}

/// The CHILD SA must carry exactly strongSwan's SPIs and keys.
fn check_child(doc: &Value, child: &ChildSa, left: bool, scenario: &str) {
    let c = &doc["child_sas"][0];
    let d = c["directions"].as_array().unwrap();
    // directions[0] is initiator->responder, [1] responder->initiator.
    let (inbound, outbound) = if left { (&d[1], &d[0]) } else { (&d[0], &d[1]) };
    let spi = |v: &Value| u32::from_str_radix(v["spi"].as_str().unwrap(), 16).unwrap();
    assert_eq!(child.inbound.spi.get(), spi(inbound), "{scenario}");
    assert_eq!(child.outbound.spi.get(), spi(outbound), "{scenario}");
    assert_eq!(
        child.inbound.encr_key.expose(),
        unhex(&inbound["enc_key_with_salt"]),
        "{scenario}"
    );
    assert_eq!(
        child.outbound.encr_key.expose(),
        unhex(&outbound["enc_key_with_salt"]),
        "{scenario}"
    );
    if let Some(k) = inbound["integ_key"].as_str() {
        assert_eq!(child.inbound.integ_key.expose(), hex_bytes(k), "{scenario}");
    }
}

fn port(a: &str, p: u16) -> SocketAddr {
    let mut a: SocketAddr = a.parse().unwrap();
    a.set_port(p);
    a
}

fn hex_bytes(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn installed(ev: &[Event]) -> Option<&ChildSa> {
    ev.iter().find_map(|e| match e {
        Event::InstallChildSa(c) => Some(c),
        _ => None,
    })
}

#[test]
fn our_responder_accepts_strongswans_initiator() {
    for (scenario, doc) in strongswan_scenarios() {
        let ike_sa = &doc["ike_sas"][0];
        let frames = doc["frames"].as_array().unwrap();
        let rng = ScriptedRandom::new(
            vec![
                unhex(&ike_sa["spi_r"]),
                unhex(&ike_sa["nr"]),
                unhex(&doc["child_sas"][0]["spi_r"]),
            ],
            7,
        );
        let mut ep = endpoint(&doc, false, rng);
        let method = KeMethod(ike_sa["ke_r"]["dh_group"].as_u64().unwrap() as u16);
        ep.script_key_exchange(KeyExchange::recorded(
            method,
            unhex(&ike_sa["ke_r"]["data"]),
            Secret::new(unhex(&ike_sa["g_ir"])),
        ));
        let (from, to) = (LEFT.parse().unwrap(), RIGHT.parse().unwrap());
        ep.handle_datagram(Timestamp::ZERO, from, to, &ike_of(&frames[0]));
        assert!(events(&mut ep).is_empty(), "{scenario}: IKE_SA_INIT");
        // strongSwan floats to port 4500 (it fakes a NAT to get UDP encapsulation).
        let (from, to) = (port(LEFT, 4500), port(RIGHT, 4500));
        ep.handle_datagram(Timestamp::from_millis(3), from, to, &ike_of(&frames[2]));
        let ev = events(&mut ep);
        assert!(
            ev.iter().all(|e| !matches!(e, Event::Failed { .. })),
            "{scenario}: {ev:?}"
        );
        assert!(
            matches!(
                ev[0],
                Event::IkeSaEstablished {
                    udp_encap: true,
                    ..
                }
            ),
            "{scenario}: {ev:?}"
        );
        let child = installed(&ev).unwrap();
        check_child(&doc, child, false, &scenario);
        assert!(
            child.udp_encap,
            "{scenario}: strongSwan asked for UDP encapsulation"
        );
        assert_eq!(
            (child.local.port(), child.remote.port()),
            (4500, 4500),
            "{scenario}"
        );
    }
}

#[test]
fn our_initiator_accepts_strongswans_responder() {
    for (scenario, doc) in strongswan_scenarios() {
        let ike_sa = &doc["ike_sas"][0];
        let frames = doc["frames"].as_array().unwrap();
        let rng = ScriptedRandom::new(
            vec![
                unhex(&ike_sa["spi_i"]),
                unhex(&doc["child_sas"][0]["spi_i"]),
                unhex(&ike_sa["ni"]),
            ],
            9,
        );
        let mut ep = endpoint(&doc, true, rng);
        let method = KeMethod(ike_sa["ke_i"]["dh_group"].as_u64().unwrap() as u16);
        ep.script_key_exchange(KeyExchange::recorded(
            method,
            unhex(&ike_sa["ke_i"]["data"]),
            Secret::new(unhex(&ike_sa["g_ir"])),
        ));
        ep.initiate(Timestamp::ZERO, PeerId::new(0)).unwrap();
        let (from, to) = (RIGHT.parse().unwrap(), LEFT.parse().unwrap());
        ep.handle_datagram(Timestamp::from_millis(2), from, to, &ike_of(&frames[1]));
        // strongSwan's fake NAT makes us float: our IKE_AUTH goes to port 4500.
        let sent: Vec<_> = std::iter::from_fn(|| ep.poll_transmit()).collect();
        assert_eq!(
            sent.last().map(|t| (t.src.port(), t.dst.port())),
            Some((4500, 4500)),
            "{scenario}"
        );
        assert!(
            events(&mut ep).is_empty(),
            "{scenario}: IKE_SA_INIT response"
        );
        ep.handle_datagram(
            Timestamp::from_millis(5),
            port(RIGHT, 4500),
            port(LEFT, 4500),
            &ike_of(&frames[3]),
        );
        let ev = events(&mut ep);
        assert!(
            ev.iter().all(|e| !matches!(e, Event::Failed { .. })),
            "{scenario}: {ev:?}"
        );
        assert!(
            matches!(ev[0], Event::IkeSaEstablished { .. }),
            "{scenario}: {ev:?}"
        );
        check_child(&doc, installed(&ev).unwrap(), true, &scenario);
    }
}

/// The control: with the wrong PSK, strongSwan's AUTH does not verify.
#[test]
fn strongswans_auth_is_really_checked() {
    let (_, mut doc) = strongswan_scenarios().remove(0);
    doc["authentication"]["psk_hex"] = Value::String("00".repeat(32));
    let ike_sa = doc["ike_sas"][0].clone();
    let frames = doc["frames"].as_array().unwrap().clone();
    let rng = ScriptedRandom::new(vec![unhex(&ike_sa["spi_r"]), unhex(&ike_sa["nr"])], 7);
    let mut ep = endpoint(&doc, false, rng);
    ep.script_key_exchange(KeyExchange::recorded(
        KeMethod::CURVE25519,
        unhex(&ike_sa["ke_r"]["data"]),
        Secret::new(unhex(&ike_sa["g_ir"])),
    ));
    let (from, to) = (LEFT.parse().unwrap(), RIGHT.parse().unwrap());
    ep.handle_datagram(Timestamp::ZERO, from, to, &ike_of(&frames[0]));
    ep.handle_datagram(
        Timestamp::from_millis(3),
        port(LEFT, 4500),
        port(RIGHT, 4500),
        &ike_of(&frames[2]),
    );
    let ev = events(&mut ep);
    assert!(
        matches!(
            &ev[..],
            // Refused (strongSwan had not authenticated), not failed: no peer's state moves.
            [Event::Refused {
                failure: meshsec_ike::Failure::AuthenticationFailed { .. },
                ..
            }]
        ),
        "{ev:?}"
    );
}
