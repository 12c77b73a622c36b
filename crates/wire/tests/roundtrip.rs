//! Property tests: `parse(emit(x)) == x` for every payload type and for whole messages, and
//! `emit(parse(b)) == b` for the bytes we emit; parsing arbitrary or mutated bytes never panics
//! and whatever parses re-emits to something that parses to the same value.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "common/strategies.rs"]
mod strategies;

use meshsec_wire::payload::{Payload, PayloadBody, emit_payloads, parse_payloads};
use meshsec_wire::{Message, Result};
use proptest::prelude::*;
use strategies::*;

/// Emits one payload as a chain, parses it back, and checks both directions.
fn round_trip_payload(p: &Payload<'_>) {
    let mut bytes = Vec::new();
    let first = emit_payloads(std::slice::from_ref(p), &mut bytes).unwrap();
    assert_eq!(first, p.payload_type());
    let parsed = parse_payloads(first, &bytes).unwrap();
    assert_eq!(parsed.as_slice(), std::slice::from_ref(p));
    let mut again = Vec::new();
    emit_payloads(&parsed, &mut again).unwrap();
    assert_eq!(again, bytes);
}

macro_rules! payload_round_trip {
    ($($name:ident: $strategy:expr;)*) => {
        proptest! {
            #![proptest_config(ProptestConfig::with_cases(200))]
            $(
                #[test]
                fn $name(p in payload($strategy)) {
                    round_trip_payload(&p);
                }
            )*
        }
    };
}

payload_round_trip! {
    sa_round_trips: sa().prop_map(PayloadBody::Sa);
    ke_round_trips: ke().prop_map(PayloadBody::Ke);
    idi_round_trips: identity().prop_map(PayloadBody::IdI);
    idr_round_trips: identity().prop_map(PayloadBody::IdR);
    cert_round_trips: cert().prop_map(PayloadBody::Cert);
    certreq_round_trips: cert().prop_map(PayloadBody::CertReq);
    auth_round_trips: auth().prop_map(PayloadBody::Auth);
    nonce_round_trips: bytes(16..=256).prop_map(PayloadBody::Nonce);
    notify_round_trips: notify().prop_map(PayloadBody::Notify);
    delete_round_trips: delete().prop_map(PayloadBody::Delete);
    vendor_id_round_trips: bytes(0..=32).prop_map(PayloadBody::VendorId);
    tsi_round_trips: ts().prop_map(PayloadBody::TsI);
    tsr_round_trips: ts().prop_map(PayloadBody::TsR);
    sk_round_trips: sk().prop_map(PayloadBody::Sk);
    skf_round_trips: skf().prop_map(PayloadBody::Skf);
    cp_round_trips: cp().prop_map(PayloadBody::Cp);
    eap_round_trips: bytes(0..=64).prop_map(PayloadBody::Eap);
    unknown_round_trips: unknown();
}

/// Parses, re-emits and re-parses; the two parses must agree (no panic on the way).
fn reparse_agrees(bytes: &[u8]) -> Result<()> {
    let first = Message::parse(bytes)?;
    let emitted = first.to_bytes().unwrap();
    assert_eq!(Message::parse(&emitted).unwrap(), first);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn messages_round_trip(m in message()) {
        let bytes = m.to_bytes().unwrap();
        let parsed = Message::parse(&bytes).unwrap();
        prop_assert_eq!(&parsed, &m);
        prop_assert_eq!(parsed.to_bytes().unwrap(), bytes);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = reparse_agrees(&bytes);
    }

    #[test]
    fn mutated_messages_never_panic(
        m in message(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = m.to_bytes().unwrap();
        for (at, v) in flips {
            let i = at.index(bytes.len());
            bytes[i] ^= v;
        }
        let _ = reparse_agrees(&bytes);
        let _ = reparse_agrees(&bytes[..cut.index(bytes.len() + 1)]);
    }
}
