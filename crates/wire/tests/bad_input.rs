//! Malformed input gets a specific, named error (and the right Notify to answer with).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::borrow::Cow;

use meshsec_wire::payload::{Notify, TsPayload};
use meshsec_wire::registry::{ExchangeType, NotifyType, PayloadType};
use meshsec_wire::{Error, Flags, Header, Message, Payload, PayloadBody, parse_payloads};

fn header() -> Header {
    Header {
        spi_i: 0x0102030405060708,
        spi_r: 0,
        minor_version: 0,
        exchange: ExchangeType::IKE_SA_INIT,
        flags: Flags::INITIATOR,
        message_id: 0,
    }
}

fn message(payloads: Vec<Payload<'static>>) -> Vec<u8> {
    Message {
        header: header(),
        payloads,
    }
    .to_bytes()
    .unwrap()
}

fn notify(ty: NotifyType) -> Payload<'static> {
    Payload::new(PayloadBody::Notify(Notify::new(ty, Vec::new())))
}

#[test]
fn unknown_critical_payload_is_rejected_with_its_type() {
    // N(COOKIE) followed by an unknown payload type 200 with the critical bit set.
    let mut bytes = message(vec![
        notify(NotifyType::COOKIE),
        Payload {
            critical: false,
            body: PayloadBody::Unknown {
                ty: PayloadType(200),
                data: Cow::Borrowed(b"xyz"),
            },
        },
    ]);
    // Flip the critical bit of the second payload's header (after the 28-octet IKE header and
    // the 8-octet Notify).
    bytes[28 + 8 + 1] |= 0x80;
    let err = Message::parse(&bytes).unwrap_err();
    assert_eq!(err, Error::UnsupportedCriticalPayload(PayloadType(200)));
    assert_eq!(err.notify_type(), NotifyType::UNSUPPORTED_CRITICAL_PAYLOAD);
    assert!(err.to_string().contains("PayloadType(200)"), "{err}");
}

#[test]
fn unknown_non_critical_payload_is_kept_and_skippable() {
    let unknown = Payload::new(PayloadBody::Unknown {
        ty: PayloadType(200),
        data: Cow::Borrowed(b"xyz"),
    });
    let bytes = message(vec![unknown.clone(), notify(NotifyType::COOKIE)]);
    let m = Message::parse(&bytes).unwrap();
    assert_eq!(m.payloads[0], unknown);
    assert_eq!(m.payloads[1].as_notify().unwrap().ty, NotifyType::COOKIE);
}

#[test]
fn wrong_major_version_is_answered_with_invalid_major_version() {
    let mut bytes = message(vec![notify(NotifyType::COOKIE)]);
    bytes[17] = 0x30;
    let err = Message::parse(&bytes).unwrap_err();
    assert_eq!(err, Error::UnsupportedVersion { major: 3 });
    assert_eq!(err.notify_type(), NotifyType::INVALID_MAJOR_VERSION);
}

#[test]
fn length_mismatches_are_named() {
    let bytes = message(vec![notify(NotifyType::COOKIE)]);
    // Datagram longer than the IKE Length field.
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(matches!(
        Message::parse(&longer),
        Err(Error::BadLength {
            what: "IKE header",
            ..
        })
    ));
    // A payload length that points past the end.
    let mut bad = bytes.clone();
    bad[28 + 3] = 200;
    let err = Message::parse(&bad).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Truncated {
                what: "generic payload header",
                needed: 200,
                ..
            }
        ),
        "{err:?}"
    );
    // A payload length below the generic header.
    bad[28 + 3] = 3;
    assert!(matches!(
        Message::parse(&bad),
        Err(Error::BadLength {
            what: "generic payload header",
            ..
        })
    ));
    // A truncated IKE header.
    assert!(matches!(
        Message::parse(&bytes[..20]),
        Err(Error::Truncated {
            what: "IKE header",
            needed: 4,
            available: 0
        })
    ));
    // Bytes after the last payload.
    let mut trailing = bytes.clone();
    trailing.extend_from_slice(&[0, 0, 0, 4]);
    let total = trailing.len() as u32;
    trailing[24..28].copy_from_slice(&total.to_be_bytes());
    assert!(matches!(
        Message::parse(&trailing),
        Err(Error::BadLength {
            what: "payload chain",
            ..
        })
    ));
}

#[test]
fn nonce_outside_16_to_256_octets_is_rejected() {
    for len in [0usize, 15, 257] {
        let mut chain = vec![0, 0];
        chain.extend_from_slice(&((4 + len) as u16).to_be_bytes());
        chain.resize(4 + len, 0xab);
        let err = parse_payloads(PayloadType::NONCE, &chain).unwrap_err();
        assert!(
            matches!(
                err,
                Error::BadLength {
                    what: "Nonce payload",
                    ..
                }
            ),
            "{len}: {err:?}"
        );
    }
}

#[test]
fn sa_payload_inconsistencies_are_named() {
    // One proposal (ESP, SPI size 4) announcing 2 transforms but carrying 1.
    let proposal = [
        0, 0, 0, 20, // last, reserved, length 20
        1, 3, 4, 2, // number 1, ESP, SPI size 4, 2 transforms
        0xde, 0xad, 0xbe, 0xef, // SPI
        0, 0, 0, 8, 1, 0, 0, 20, // last transform: ENCR AES_GCM_16
    ];
    let mut chain = vec![0, 0, 0, 24];
    chain.extend_from_slice(&proposal);
    let err = parse_payloads(PayloadType::SA, &chain).unwrap_err();
    assert_eq!(
        err,
        Error::BadValue {
            what: "SA proposal",
            problem: "Num Transforms does not match the transforms present"
        }
    );
    // Last Substruc 5 is neither "last" nor "more".
    chain[4] = 5;
    assert!(matches!(
        parse_payloads(PayloadType::SA, &chain),
        Err(Error::BadValue {
            what: "SA proposal",
            ..
        })
    ));
    // A proposal saying "more" with nothing after it.
    chain[4] = 2;
    chain[11] = 1;
    let err = parse_payloads(PayloadType::SA, &chain).unwrap_err();
    assert!(
        matches!(
            err,
            Error::BadLength {
                what: "SA payload",
                ..
            }
        ),
        "{err:?}"
    );
    // An empty SA payload.
    assert!(matches!(
        parse_payloads(PayloadType::SA, &[0, 0, 0, 4]),
        Err(Error::BadLength {
            what: "SA payload",
            ..
        })
    ));
}

#[test]
fn identity_and_selector_lengths_are_checked() {
    // ID_IPV4_ADDR with 5 octets.
    let chain = [0, 0, 0, 13, 1, 0, 0, 0, 10, 0, 0, 1, 9];
    assert!(matches!(
        parse_payloads(PayloadType::IDI, &chain),
        Err(Error::BadLength {
            what: "ID payload",
            problem: "ID_IPV4_ADDR must be 4 octets"
        })
    ));
    // TS payload announcing 2 selectors, carrying one IPv4 range.
    let mut ts = vec![0, 0, 0, 24, 2, 0, 0, 0];
    ts.extend_from_slice(&[7, 0, 0, 16, 0, 0, 255, 255, 10, 0, 0, 0, 10, 0, 0, 255]);
    assert!(matches!(
        parse_payloads(PayloadType::TSI, &ts),
        Err(Error::BadValue {
            what: "TS payload",
            ..
        })
    ));
    // IPv4 selector claiming 40 octets.
    ts[4] = 1;
    ts[11] = 40;
    assert!(matches!(
        parse_payloads(PayloadType::TSI, &ts),
        Err(Error::Truncated {
            what: "traffic selector",
            ..
        })
    ));
    ts[11] = 16;
    let ok = parse_payloads(PayloadType::TSI, &ts).unwrap();
    let PayloadBody::TsI(TsPayload { selectors }) = &ok[0].body else {
        panic!()
    };
    assert_eq!(selectors.len(), 1);
}

#[test]
fn delete_counts_and_fragment_numbers_are_checked() {
    // ESP delete announcing 2 SPIs, carrying one.
    let chain = [0, 0, 0, 12, 3, 4, 0, 2, 1, 2, 3, 4];
    assert!(matches!(
        parse_payloads(PayloadType::DELETE, &chain),
        Err(Error::BadLength {
            what: "Delete payload",
            ..
        })
    ));
    // SKF fragment 3 of 2.
    let chain = [0, 0, 0, 8, 0, 3, 0, 2];
    assert!(matches!(
        parse_payloads(PayloadType::SKF, &chain),
        Err(Error::BadValue {
            what: "SKF payload",
            ..
        })
    ));
}

#[test]
fn sk_must_be_last() {
    // SK (next payload = first inner, N) followed by more bytes.
    let chain = [41, 0, 0, 6, 0xaa, 0xbb, 0, 0, 0, 4];
    let err = parse_payloads(PayloadType::SK, &chain).unwrap_err();
    assert!(
        matches!(
            err,
            Error::BadLength {
                what: "payload chain",
                ..
            }
        ),
        "{err:?}"
    );
    let sk = parse_payloads(PayloadType::SK, &chain[..6]).unwrap();
    let PayloadBody::Sk(sk) = &sk[0].body else {
        panic!()
    };
    assert_eq!(sk.first_inner, PayloadType::NOTIFY);
    assert_eq!(sk.data.as_ref(), &[0xaa, 0xbb]);
}

#[test]
fn errors_read_well() {
    let err = parse_payloads(PayloadType::KE, &[0, 0, 0, 6, 0, 31]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "KE payload: truncated (need 2 octets, have 0)"
    );
    assert_eq!(err.notify_type(), NotifyType::INVALID_SYNTAX);
}
