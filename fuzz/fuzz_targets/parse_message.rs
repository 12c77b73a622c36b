//! Fuzz target: everything that reads bytes from the network in `meshsec-wire`.
//!
//! The input is treated as a datagram received on UDP 4500 (demultiplexed into IKE, ESP or
//! keepalive) and, independently, as an IKE message from port 500 and as a decrypted payload
//! chain. Besides "never panic", it checks the round-trip law: whatever parses re-emits to
//! bytes that parse to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshsec_wire::esp::{EspHeader, parse_trailer};
use meshsec_wire::registry::PayloadType;
use meshsec_wire::udp_encap::{Udp4500, classify};
use meshsec_wire::{Message, emit_payloads, parse_payloads, rules};

fn ike(bytes: &[u8]) {
    let Ok(msg) = Message::parse(bytes) else {
        return;
    };
    let h = msg.header;
    let _ = rules::check_outer(h.exchange, h.flags.response(), &msg.payloads);
    let _ = rules::check_inner(h.exchange, h.flags.response(), &msg.payloads);
    let emitted = msg.to_bytes().expect("a parsed message must re-emit");
    let again = Message::parse(&emitted).expect("re-emitted bytes must parse");
    assert_eq!(again, msg, "parse(emit(parse(b))) != parse(b)");
}

fn chain(bytes: &[u8]) {
    // First octet: the first payload type (as an SK payload's Next Payload would give it).
    let Some((&first, rest)) = bytes.split_first() else {
        return;
    };
    let Ok(payloads) = parse_payloads(PayloadType(first), rest) else {
        return;
    };
    let mut out = Vec::new();
    emit_payloads(&payloads, &mut out).expect("a parsed chain must re-emit");
    let again = parse_payloads(PayloadType(first), &out).expect("re-emitted chain must parse");
    assert_eq!(again, payloads);
}

fuzz_target!(|data: &[u8]| {
    match classify(data) {
        Ok(Udp4500::Ike(m)) => ike(m),
        Ok(Udp4500::Esp(p)) => {
            if let Ok((_, rest)) = EspHeader::parse(p) {
                let _ = parse_trailer(rest);
            }
        }
        Ok(Udp4500::NatKeepalive) | Err(_) => {}
    }
    ike(data);
    chain(data);
});
