//! proptest strategies that generate every payload type with owned data.

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use meshsec_wire::payload::*;
use meshsec_wire::registry::*;
use meshsec_wire::{Flags, Header, Message};
use proptest::prelude::*;

pub fn bytes(len: std::ops::RangeInclusive<usize>) -> impl Strategy<Value = Bytes<'static>> {
    prop::collection::vec(any::<u8>(), len).prop_map(Cow::Owned)
}

fn attribute() -> impl Strategy<Value = TransformAttribute<'static>> {
    prop_oneof![
        (0u16..0x8000, any::<u16>()).prop_map(|(t, value)| TransformAttribute::Tv {
            ty: TransformAttrType(t),
            value
        }),
        (0u16..0x8000, bytes(0..=16)).prop_map(|(t, value)| TransformAttribute::Tlv {
            ty: TransformAttrType(t),
            value
        }),
    ]
}

fn transform() -> impl Strategy<Value = Transform<'static>> {
    (
        any::<u8>(),
        any::<u16>(),
        prop::collection::vec(attribute(), 0..3),
    )
        .prop_map(|(ty, id, attributes)| Transform {
            ty: TransformType(ty),
            id,
            attributes,
        })
}

fn proposal() -> impl Strategy<Value = Proposal<'static>> {
    (
        any::<u8>(),
        any::<u8>(),
        bytes(0..=8),
        prop::collection::vec(transform(), 0..6),
    )
        .prop_map(|(number, protocol, spi, transforms)| Proposal {
            number,
            protocol: ProtocolId(protocol),
            spi,
            transforms,
        })
}

pub fn sa() -> impl Strategy<Value = SaPayload<'static>> {
    prop::collection::vec(proposal(), 1..4).prop_map(|proposals| SaPayload { proposals })
}

pub fn ke() -> impl Strategy<Value = KePayload<'static>> {
    (any::<u16>(), bytes(0..=64)).prop_map(|(m, data)| KePayload {
        method: KeMethod(m),
        data,
    })
}

pub fn identity() -> impl Strategy<Value = Identity<'static>> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|a| Identity::Ipv4(Ipv4Addr::from(a))),
        any::<[u8; 16]>().prop_map(|a| Identity::Ipv6(Ipv6Addr::from(a))),
        bytes(0..=40).prop_map(Identity::Fqdn),
        bytes(0..=40).prop_map(Identity::Rfc822),
        bytes(0..=40).prop_map(Identity::DerAsn1Dn),
        bytes(0..=40).prop_map(Identity::KeyId),
        (
            any::<u8>().prop_filter("typed ID", |t| ![1, 2, 3, 5, 9, 11].contains(t)),
            bytes(0..=40)
        )
            .prop_map(|(t, data)| Identity::Other {
                id_type: IdType(t),
                data
            }),
    ]
}

pub fn cert() -> impl Strategy<Value = CertPayload<'static>> {
    (any::<u8>(), bytes(0..=64)).prop_map(|(e, data)| CertPayload {
        encoding: CertEncoding(e),
        data,
    })
}

pub fn auth() -> impl Strategy<Value = AuthPayload<'static>> {
    (any::<u8>(), bytes(0..=64)).prop_map(|(m, data)| AuthPayload {
        method: AuthMethod(m),
        data,
    })
}

pub fn notify() -> impl Strategy<Value = Notify<'static>> {
    (any::<u8>(), bytes(0..=8), any::<u16>(), bytes(0..=32)).prop_map(
        |(protocol, spi, ty, data)| Notify {
            protocol: ProtocolId(protocol),
            spi,
            ty: NotifyType(ty),
            data,
        },
    )
}

pub fn delete() -> impl Strategy<Value = Delete<'static>> {
    prop_oneof![
        any::<u8>().prop_map(|p| Delete {
            protocol: ProtocolId(p),
            spi_size: 0,
            spis: Cow::Owned(Vec::new()),
        }),
        (any::<u8>(), 1u8..=8, 0usize..5)
            .prop_flat_map(|(p, size, n)| (
                Just(p),
                Just(size),
                bytes(usize::from(size) * n..=usize::from(size) * n)
            ))
            .prop_map(|(p, spi_size, spis)| Delete {
                protocol: ProtocolId(p),
                spi_size,
                spis,
            }),
    ]
}

fn addr_selector() -> impl Strategy<Value = AddrSelector> {
    let addrs = prop_oneof![
        (any::<[u8; 4]>(), any::<[u8; 4]>()).prop_map(|(s, e)| (
            IpAddr::from(Ipv4Addr::from(s)),
            IpAddr::from(Ipv4Addr::from(e))
        )),
        (any::<[u8; 16]>(), any::<[u8; 16]>()).prop_map(|(s, e)| (
            IpAddr::from(Ipv6Addr::from(s)),
            IpAddr::from(Ipv6Addr::from(e))
        )),
    ];
    (any::<u8>(), any::<u16>(), any::<u16>(), addrs).prop_map(
        |(ip_protocol, start_port, end_port, (start, end))| AddrSelector {
            ip_protocol,
            start_port,
            end_port,
            start,
            end,
        },
    )
}

pub fn ts() -> impl Strategy<Value = TsPayload<'static>> {
    let selector = prop_oneof![
        3 => addr_selector().prop_map(TrafficSelector::Addr),
        1 => (
            any::<u8>().prop_filter("typed TS", |t| *t != 7 && *t != 8),
            any::<u8>(),
            bytes(0..=16)
        )
            .prop_map(|(t, second_octet, data)| TrafficSelector::Other {
                ts_type: TsType(t),
                second_octet,
                data
            }),
    ];
    prop::collection::vec(selector, 0..5).prop_map(|selectors| TsPayload { selectors })
}

pub fn cp() -> impl Strategy<Value = CpPayload<'static>> {
    let attr = (0u16..0x8000, bytes(0..=20)).prop_map(|(t, value)| CfgAttribute {
        ty: CfgAttrType(t),
        value,
    });
    (any::<u8>(), prop::collection::vec(attr, 0..5)).prop_map(|(t, attributes)| CpPayload {
        cfg_type: CfgType(t),
        attributes,
    })
}

pub fn sk() -> impl Strategy<Value = Encrypted<'static>> {
    (any::<u8>(), bytes(0..=64)).prop_map(|(t, data)| Encrypted {
        first_inner: PayloadType(t),
        data,
    })
}

pub fn skf() -> impl Strategy<Value = EncryptedFragment<'static>> {
    (1u16..=u16::MAX)
        .prop_flat_map(|total| (1..=total, Just(total), any::<u8>(), bytes(0..=64)))
        .prop_map(|(number, total, t, data)| EncryptedFragment {
            first_inner: PayloadType(t),
            number,
            total,
            data,
        })
}

pub fn unknown() -> impl Strategy<Value = PayloadBody<'static>> {
    (
        any::<u8>().prop_filter("typed payload", |t| *t != 0 && !is_typed(PayloadType(*t))),
        bytes(0..=32),
    )
        .prop_map(|(t, data)| PayloadBody::Unknown {
            ty: PayloadType(t),
            data,
        })
}

/// Any payload that may stand anywhere in a chain (everything but SK/SKF).
pub fn chain_body() -> impl Strategy<Value = PayloadBody<'static>> {
    prop_oneof![
        sa().prop_map(PayloadBody::Sa),
        ke().prop_map(PayloadBody::Ke),
        identity().prop_map(PayloadBody::IdI),
        identity().prop_map(PayloadBody::IdR),
        cert().prop_map(PayloadBody::Cert),
        cert().prop_map(PayloadBody::CertReq),
        auth().prop_map(PayloadBody::Auth),
        bytes(16..=256).prop_map(PayloadBody::Nonce),
        notify().prop_map(PayloadBody::Notify),
        delete().prop_map(PayloadBody::Delete),
        bytes(0..=32).prop_map(PayloadBody::VendorId),
        ts().prop_map(PayloadBody::TsI),
        ts().prop_map(PayloadBody::TsR),
        cp().prop_map(PayloadBody::Cp),
        bytes(0..=64).prop_map(PayloadBody::Eap),
        unknown(),
    ]
}

/// A payload with a random critical bit (clear for unknown types, which would be rejected).
pub fn payload(
    body: impl Strategy<Value = PayloadBody<'static>>,
) -> impl Strategy<Value = Payload<'static>> {
    (any::<bool>(), body).prop_map(|(critical, body)| Payload {
        critical: critical && !matches!(body, PayloadBody::Unknown { .. }),
        body,
    })
}

pub fn header() -> impl Strategy<Value = Header> {
    (
        any::<u64>(),
        any::<u64>(),
        0u8..16,
        any::<u8>(),
        any::<u8>(),
        any::<u32>(),
    )
        .prop_map(
            |(spi_i, spi_r, minor_version, x, flags, message_id)| Header {
                spi_i,
                spi_r,
                minor_version,
                exchange: ExchangeType(x),
                flags: Flags(flags),
                message_id,
            },
        )
}

pub fn message() -> impl Strategy<Value = Message<'static>> {
    let encrypted = prop_oneof![
        sk().prop_map(PayloadBody::Sk),
        skf().prop_map(PayloadBody::Skf)
    ];
    (
        header(),
        prop::collection::vec(payload(chain_body()), 0..6),
        prop::option::of(payload(encrypted)),
    )
        .prop_map(|(header, mut payloads, last)| {
            payloads.extend(last);
            Message { header, payloads }
        })
}
