//! tshark (Wireshark's dissector, an independent implementation) reads a corpus of messages
//! our encoder emits — every payload type, IPv4 and IPv6 selectors and underlay, fragments,
//! ESP and NAT-keepalives on port 4500 — with no malformed packet and no expert warning or
//! error, and finds every payload we put in.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "common/pcap.rs"]
mod pcap;

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::Command;

use meshsec_wire::esp::{EspHeader, padding_len, write_trailer};
use meshsec_wire::payload::*;
use meshsec_wire::registry::*;
use meshsec_wire::udp_encap::{NAT_KEEPALIVE, frame_ike};
use meshsec_wire::{Flags, Header, Message, Payload, PayloadBody};
use pcap::Datagram;

fn p(body: PayloadBody<'static>) -> Payload<'static> {
    Payload::new(body)
}

fn n(ty: NotifyType, data: &[u8]) -> Payload<'static> {
    p(PayloadBody::Notify(Notify::new(ty, data.to_vec())))
}

fn owned(b: &[u8]) -> Bytes<'static> {
    Cow::Owned(b.to_vec())
}

fn ike_proposals() -> SaPayload<'static> {
    SaPayload {
        proposals: vec![
            Proposal {
                number: 1,
                protocol: ProtocolId::IKE,
                spi: owned(&[]),
                transforms: vec![
                    Transform::encr(EncrId::AES_GCM_16, Some(256)),
                    Transform::encr(EncrId::CHACHA20_POLY1305, None),
                    Transform::prf(PrfId::HMAC_SHA2_256),
                    Transform::prf(PrfId::HMAC_SHA2_512),
                    Transform::ke(KeMethod::CURVE25519),
                    Transform::ke(KeMethod::ECP_256),
                ],
            },
            Proposal {
                number: 2,
                protocol: ProtocolId::IKE,
                spi: owned(&[]),
                transforms: vec![
                    Transform::encr(EncrId::AES_CBC, Some(128)),
                    Transform::prf(PrfId::HMAC_SHA2_256),
                    Transform::integ(IntegId::HMAC_SHA2_256_128),
                    Transform::ke(KeMethod::MODP_3072),
                ],
            },
        ],
    }
}

fn esp_proposal(spi: u32) -> SaPayload<'static> {
    SaPayload {
        proposals: vec![Proposal {
            number: 1,
            protocol: ProtocolId::ESP,
            spi: owned(&spi.to_be_bytes()),
            transforms: vec![
                Transform::encr(EncrId::AES_GCM_16, Some(256)),
                Transform::esn(EsnId::NO),
                Transform::esn(EsnId::YES),
            ],
        }],
    }
}

fn v4(a: [u8; 4]) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(a))
}

fn v6(s: &str) -> IpAddr {
    IpAddr::V6(s.parse::<Ipv6Addr>().unwrap())
}

fn selectors(v6_only: bool) -> TsPayload<'static> {
    let mut selectors = vec![TrafficSelector::Addr(AddrSelector::range(
        v6("2001:db8:1::"),
        v6("2001:db8:1::ffff"),
    ))];
    if !v6_only {
        selectors.push(TrafficSelector::Addr(AddrSelector {
            ip_protocol: 6,
            start_port: 443,
            end_port: 443,
            start: v4([10, 1, 0, 0]),
            end: v4([10, 1, 0, 255]),
        }));
    }
    TsPayload { selectors }
}

/// DER of the Distinguished Name "CN=left".
const DN_CN_LEFT: &[u8] = &[
    0x30, 0x0f, 0x31, 0x0d, 0x30, 0x0b, 0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, 0x04, b'l', b'e', b'f',
    b't',
];

/// RFC 7427 AUTH data: ASN.1 length, AlgorithmIdentifier ecdsa-with-SHA256, signature.
fn digital_signature() -> Vec<u8> {
    let alg = [
        0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
    ];
    let mut d = vec![alg.len() as u8];
    d.extend_from_slice(&alg);
    d.extend_from_slice(&[0x5a; 64]);
    d
}

struct Entry {
    /// What this datagram shows.
    label: &'static str,
    datagram: Datagram,
    /// Payload types tshark must report for it.
    payloads: Vec<PayloadType>,
}

fn message(
    exchange: ExchangeType,
    response: bool,
    id: u32,
    payloads: Vec<Payload<'static>>,
) -> (Vec<u8>, Vec<PayloadType>) {
    let m = Message {
        header: Header {
            spi_i: 0x8cab_e361_69ce_d261,
            spi_r: if exchange == ExchangeType::IKE_SA_INIT && !response {
                0
            } else {
                0x5a50_ef2f_dce6_c658
            },
            minor_version: 0,
            exchange,
            flags: Flags::new(!response, response),
            message_id: id,
        },
        payloads,
    };
    let types = m.payloads.iter().map(Payload::payload_type).collect();
    (m.to_bytes().unwrap(), types)
}

fn corpus() -> Vec<Entry> {
    let (a4, b4) = (v4([198, 51, 100, 1]), v4([198, 51, 100, 2]));
    let (a6, b6) = (v6("2001:db8::1"), v6("2001:db8::2"));
    let nat_hash = [0x11; 20];
    let mut out = Vec::new();
    let mut add = |label, src, dst, port: u16, (bytes, payloads): (Vec<u8>, Vec<PayloadType>)| {
        let payload = if port == 4500 {
            let mut framed = Vec::new();
            frame_ike(&bytes, &mut framed);
            framed
        } else {
            bytes
        };
        out.push(Entry {
            label,
            datagram: Datagram {
                src,
                dst,
                sport: port,
                dport: port,
                payload,
            },
            payloads,
        });
    };
    use ExchangeType as X;
    use PayloadBody as B;

    let sa_init = vec![
        p(B::Sa(ike_proposals())),
        p(B::Ke(KePayload {
            method: KeMethod::CURVE25519,
            data: owned(&[0x42; 32]),
        })),
        p(B::Nonce(owned(&[0x07; 32]))),
        n(NotifyType::NAT_DETECTION_SOURCE_IP, &nat_hash),
        n(NotifyType::NAT_DETECTION_DESTINATION_IP, &nat_hash),
        n(NotifyType::IKEV2_FRAGMENTATION_SUPPORTED, &[]),
        p(B::Notify(Notify::signature_hash_algorithms(&[
            HashAlgorithm::SHA2_256,
            HashAlgorithm::SHA2_384,
            HashAlgorithm::SHA2_512,
            HashAlgorithm::IDENTITY,
        ]))),
        p(B::VendorId(owned(b"meshsec-test-vendor-id"))),
    ];
    add(
        "IKE_SA_INIT request",
        a4,
        b4,
        500,
        message(X::IKE_SA_INIT, false, 0, sa_init.clone()),
    );
    add(
        "IKE_SA_INIT request over IPv6",
        a6,
        b6,
        500,
        message(X::IKE_SA_INIT, false, 0, sa_init),
    );
    add(
        "IKE_SA_INIT response with CERTREQ",
        b4,
        a4,
        500,
        message(
            X::IKE_SA_INIT,
            true,
            0,
            vec![
                p(B::Sa(SaPayload {
                    proposals: vec![ike_proposals().proposals[0].clone()],
                })),
                p(B::Ke(KePayload {
                    method: KeMethod::ECP_256,
                    data: owned(&[0x43; 64]),
                })),
                p(B::Nonce(owned(&[0x08; 32]))),
                p(B::CertReq(CertPayload {
                    encoding: CertEncoding::X509_SIGNATURE,
                    data: owned(&[0x33; 40]),
                })),
                n(NotifyType::MULTIPLE_AUTH_SUPPORTED, &[]),
            ],
        ),
    );
    add(
        "IKE_SA_INIT cookie answer",
        b4,
        a4,
        500,
        message(
            X::IKE_SA_INIT,
            true,
            0,
            vec![n(NotifyType::COOKIE, &[0x99; 32])],
        ),
    );
    add(
        "IKE_SA_INIT INVALID_KE_PAYLOAD answer",
        b4,
        a4,
        500,
        message(
            X::IKE_SA_INIT,
            true,
            0,
            vec![n(NotifyType::INVALID_KE_PAYLOAD, &19u16.to_be_bytes())],
        ),
    );
    // Cleartext stand-ins for the content of encrypted messages, so the dissector sees it.
    add(
        "IKE_AUTH content (IDs, AUTH, CERT, SA, TS v4+v6, CP, notifies)",
        a4,
        b4,
        4500,
        message(
            X::IKE_AUTH,
            false,
            1,
            vec![
                p(B::IdI(Identity::Fqdn(owned(b"left.example.org")))),
                n(NotifyType::INITIAL_CONTACT, &[]),
                p(B::Cert(CertPayload {
                    encoding: CertEncoding::HASH_URL_X509_CERT,
                    data: {
                        let mut d = vec![0x44; 20];
                        d.extend_from_slice(b"http://ca.example.org/left.der");
                        Cow::Owned(d)
                    },
                })),
                p(B::IdR(Identity::Ipv4(Ipv4Addr::new(198, 51, 100, 2)))),
                p(B::Auth(AuthPayload {
                    method: AuthMethod::SHARED_KEY_MIC,
                    data: owned(&[0x55; 32]),
                })),
                p(B::Cp(CpPayload {
                    cfg_type: CfgType::REQUEST,
                    attributes: vec![
                        CfgAttribute {
                            ty: CfgAttrType::INTERNAL_IP4_ADDRESS,
                            value: owned(&[]),
                        },
                        CfgAttribute {
                            ty: CfgAttrType::INTERNAL_IP6_ADDRESS,
                            value: owned(&[]),
                        },
                        CfgAttribute {
                            ty: CfgAttrType::INTERNAL_IP4_DNS,
                            value: owned(&[]),
                        },
                    ],
                })),
                p(B::Sa(esp_proposal(0x37c8_e668))),
                p(B::TsI(selectors(false))),
                p(B::TsR(selectors(true))),
                n(NotifyType::USE_TRANSPORT_MODE, &[]),
                n(NotifyType::ESP_TFC_PADDING_NOT_SUPPORTED, &[]),
            ],
        ),
    );
    add(
        "IKE_AUTH response content (IPv6/DN IDs, RFC 7427 AUTH, CP reply)",
        b4,
        a4,
        4500,
        message(
            X::IKE_AUTH,
            true,
            1,
            vec![
                p(B::IdR(Identity::DerAsn1Dn(owned(DN_CN_LEFT)))),
                p(B::Auth(AuthPayload {
                    method: AuthMethod::DIGITAL_SIGNATURE,
                    data: Cow::Owned(digital_signature()),
                })),
                p(B::Cp(CpPayload {
                    cfg_type: CfgType::REPLY,
                    attributes: vec![CfgAttribute {
                        ty: CfgAttrType::INTERNAL_IP4_ADDRESS,
                        value: owned(&[10, 9, 0, 7]),
                    }],
                })),
                p(B::IdI(Identity::Ipv6("2001:db8::1".parse().unwrap()))),
            ],
        ),
    );
    add(
        "IKE_AUTH EAP round (RFC822 and KEY_ID IDs, EAP Identity)",
        a4,
        b4,
        4500,
        message(
            X::IKE_AUTH,
            false,
            2,
            vec![
                p(B::IdI(Identity::Rfc822(owned(b"ops@example.org")))),
                p(B::IdR(Identity::KeyId(owned(b"\x01\x02key")))),
                // EAP-Response/Identity "user" (RFC 3748 §5.1).
                p(B::Eap(owned(&[2, 1, 0, 9, 1, b'u', b's', b'e', b'r']))),
            ],
        ),
    );
    add(
        "INFORMATIONAL content (Delete ESP and IKE)",
        a4,
        b4,
        4500,
        message(
            X::INFORMATIONAL,
            false,
            3,
            vec![
                p(B::Delete(Delete::esp(&[0x37c8_e668, 0xd701_bc87]))),
                p(B::Delete(Delete::ike())),
            ],
        ),
    );
    add(
        "IKE_AUTH encrypted (SK)",
        a6,
        b6,
        4500,
        message(
            X::IKE_AUTH,
            false,
            1,
            vec![p(B::Sk(Encrypted {
                first_inner: PayloadType::IDI,
                data: owned(&[0x66; 96]),
            }))],
        ),
    );
    for (number, first_inner) in [(1, PayloadType::IDI), (2, PayloadType::NONE)] {
        add(
            "IKE_AUTH fragment (SKF)",
            a4,
            b4,
            4500,
            message(
                X::IKE_AUTH,
                false,
                1,
                vec![p(B::Skf(EncryptedFragment {
                    first_inner,
                    number,
                    total: 2,
                    data: owned(&[0x77; 64]),
                }))],
            ),
        );
    }
    // ESP in UDP and a NAT-keepalive.
    let mut esp = vec![0; 8];
    EspHeader {
        spi: 0x37c8_e668,
        seq: 1,
    }
    .write(&mut esp)
    .unwrap();
    esp.extend_from_slice(&[0x88; 8 + 84]);
    let pad = padding_len(84, 4);
    let at = esp.len();
    esp.resize(at + pad + 2, 0);
    write_trailer(&mut esp[at..], 4).unwrap();
    esp.extend_from_slice(&[0x99; 16]);
    out.push(Entry {
        label: "ESP in UDP",
        datagram: Datagram {
            src: a4,
            dst: b4,
            sport: 4500,
            dport: 4500,
            payload: esp,
        },
        payloads: Vec::new(),
    });
    out.push(Entry {
        label: "NAT-keepalive",
        datagram: Datagram {
            src: a4,
            dst: b4,
            sport: 4500,
            dport: 4500,
            payload: NAT_KEEPALIVE.to_vec(),
        },
        payloads: Vec::new(),
    });
    out
}

/// Runs tshark on `pcap_path` and returns its stdout; fails the test if tshark is missing.
fn tshark(args: &[&str]) -> String {
    let out = Command::new("tshark")
        .args(args)
        .env("WIRESHARK_CONFIG_DIR", std::env::temp_dir())
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run tshark ({e}); install it (the README's test command does)")
        });
    assert!(
        out.status.success(),
        "tshark {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// One dissected frame: protocol column, IKE payload types seen, ESP SPI, expert findings.
#[derive(Debug)]
struct Dissected {
    protocol: String,
    payload_types: Vec<u8>,
    esp_spi: String,
    expert: String,
    malformed: String,
}

/// Writes `datagrams` to a pcap and has tshark dissect every frame.
fn dissect(datagrams: &[&Datagram], name: &str) -> Vec<Dissected> {
    let path = std::env::temp_dir().join(format!("meshsec-{name}-{}.pcap", std::process::id()));
    std::fs::write(&path, pcap::pcap(datagrams)).unwrap();
    let file = path.to_str().unwrap().to_string();
    let out = tshark(&[
        "-r",
        &file,
        "-T",
        "fields",
        "-E",
        "separator=|",
        "-E",
        "occurrence=a",
        "-e",
        "frame.number",
        "-e",
        "_ws.col.Protocol",
        "-e",
        "isakmp.typepayload",
        "-e",
        "esp.spi",
        "-e",
        "_ws.expert.severity",
        "-e",
        "_ws.malformed",
    ]);
    if std::env::var_os("MESHSEC_KEEP_PCAP").is_some() {
        eprintln!("{name} kept at {file}");
    } else {
        std::fs::remove_file(&path).ok();
    }
    out.lines()
        .map(|line| {
            let f: Vec<&str> = line.split('|').collect();
            assert_eq!(f.len(), 6, "unexpected tshark line {line:?}");
            Dissected {
                protocol: f[1].to_string(),
                // isakmp.typepayload also lists proposal (2) and transform (3) substructures.
                payload_types: f[2]
                    .split(',')
                    .filter_map(|t| t.parse().ok())
                    .filter(|t| *t >= 33)
                    .collect(),
                esp_spi: f[3].to_string(),
                expert: f[4].to_string(),
                malformed: f[5].to_string(),
            }
        })
        .collect()
}

#[test]
fn tshark_dissects_our_messages_without_complaint() {
    let corpus = corpus();
    let datagrams: Vec<&Datagram> = corpus.iter().map(|e| &e.datagram).collect();
    let frames = dissect(&datagrams, "wire-corpus");
    assert_eq!(frames.len(), corpus.len(), "tshark lost frames");
    let mut seen = std::collections::BTreeSet::new();
    for (entry, frame) in corpus.iter().zip(&frames) {
        let label = entry.label;
        assert!(
            frame.malformed.is_empty(),
            "{label}: tshark says malformed: {frame:?}"
        );
        assert!(
            frame.expert.is_empty(),
            "{label}: tshark expert info: {frame:?}"
        );
        let want: Vec<u8> = entry.payloads.iter().map(|t| t.0).collect();
        assert_eq!(frame.payload_types, want, "{label}: payloads tshark found");
        seen.extend(want);
    }
    // Every payload type of RFC 7296 §3 plus SKF was in the corpus and dissected.
    let all = [
        33u8, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 53,
    ];
    assert!(
        all.iter().all(|t| seen.contains(t)),
        "not covered: {all:?} vs {seen:?}"
    );
    let esp = frames
        .iter()
        .find(|f| f.protocol == "ESP")
        .expect("ESP frame");
    assert_eq!(esp.esp_spi, "0x37c8e668");
    assert!(
        frames.iter().any(|f| f.protocol == "UDPENCAP"),
        "NAT-keepalive not recognised"
    );
}

/// The check above can fail: tshark does flag a message whose lengths are wrong.
#[test]
fn tshark_flags_a_corrupted_message() {
    let mut entry = corpus().remove(0);
    assert_eq!(entry.label, "IKE_SA_INIT request");
    // Inflate the SA payload's length (bytes 30-31: after the 28-octet header and 2 octets of
    // the generic payload header) past the end of the message.
    entry.datagram.payload[31] = 0xff;
    let frames = dissect(&[&entry.datagram], "wire-corrupt");
    assert_eq!(frames.len(), 1);
    assert!(
        !frames[0].malformed.is_empty() || !frames[0].expert.is_empty(),
        "tshark did not notice: {:?}",
        frames[0]
    );
}
