//! Every message the engine does not process is counted by why (`meshsec status` shows the
//! counters as `ike_errors`): each class of malformed, stale or unexpected input, crafted
//! here and fed to an established responder, bumps exactly its own counter — and the
//! tunnel is untouched.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::borrow::Cow;
use std::time::Duration;

use common::checked::*;
use common::*;
use meshsec_ike::ErrorKind;
use meshsec_sim::Sim;
use meshsec_wire::payload::{AuthPayload, Identity, Payload, PayloadBody, TsPayload};
use meshsec_wire::registry::{AuthMethod, ExchangeType};
use meshsec_wire::{Flags, Header, Message};

/// A bare IKE header (no payloads).
fn bare(spi_i: u64, spi_r: u64, exchange: ExchangeType, flags: Flags, message_id: u32) -> Vec<u8> {
    Message {
        header: Header {
            spi_i,
            spi_r,
            minor_version: 0,
            exchange,
            flags,
            message_id,
        },
        payloads: Vec::new(),
    }
    .to_bytes()
    .unwrap()
}

/// Feeds `bytes` (from A) to B and returns which of B's error counters moved, and by how
/// much.
fn feed(s: &mut Sim, bytes: &[u8]) -> Vec<(ErrorKind, u64)> {
    let before = s.nodes[1].ike().error_counters().clone();
    let now = s.now;
    s.nodes[1]
        .host
        .handle_ike_datagram(now, addr(A), addr(B), bytes);
    s.run(now + Duration::from_millis(100));
    let after = s.nodes[1].ike().error_counters();
    ErrorKind::ALL
        .iter()
        .map(|k| (*k, after.get(*k) - before.get(*k)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

#[test]
fn each_class_of_bad_input_bumps_its_own_counter() {
    let mut r = Run::established(sim(side(true), side(false)));
    let pair = assert_one_pair(&r.s, "before");
    let sa = r.s.nodes[1].ike().ike_sas()[0].clone();
    let (spi_i, spi_r) = (sa.spi_i.get(), sa.spi_r.get());
    // A liveness check from A, to have one real request and response on the wire.
    let t = r.s.now;
    assert!(r.s.nodes[0].ike_mut().check_liveness(t, PEER).unwrap());
    r.until(t + Duration::from_secs(1), "liveness");
    let request =
        r.s.log
            .iter()
            .rev()
            .find(|(_, tr, _)| tr.src == addr(A))
            .map(|(_, tr, _)| tr.payload.clone())
            .unwrap();
    let request_id = u32::from_be_bytes(request[20..24].try_into().unwrap());
    let s = &mut r.s;
    let init_request = |spi: u64| {
        bare(
            spi,
            0,
            ExchangeType::IKE_SA_INIT,
            Flags::new(true, false),
            0,
        )
    };

    // Not even a header.
    assert_eq!(feed(s, &[0x13; 10]), vec![(ErrorKind::Unparseable, 1)]);
    // An IKE_SA_INIT request bigger than any honest one.
    let mut big = init_request(7);
    big.resize(5000, 0);
    big[24..28].copy_from_slice(&5000u32.to_be_bytes());
    assert_eq!(feed(s, &big), vec![(ErrorKind::TooLarge, 1)]);
    // An IKE_SA_INIT request without SA, KE and Nonce: malformed, and no answer.
    let sent = s.log.len();
    assert_eq!(
        feed(s, &init_request(7)),
        vec![(ErrorKind::InvalidCleartext, 1)]
    );
    assert_eq!(s.log.len(), sent, "unauthenticated garbage got an answer");
    // An IKE_AUTH request for an IKE SA nobody has.
    let stranger = bare(1, 2, ExchangeType::IKE_AUTH, Flags::new(true, false), 1);
    assert_eq!(feed(s, &stranger), vec![(ErrorKind::UnknownSpi, 1)]);
    // A response to a request B never sent.
    let unsolicited = bare(
        spi_i,
        spi_r,
        ExchangeType::INFORMATIONAL,
        Flags::new(true, true),
        9,
    );
    assert_eq!(
        feed(s, &unsolicited),
        vec![(ErrorKind::UnexpectedResponse, 1)]
    );
    // A request out of the window (its Message ID is not the next one).
    let mut early = request.clone();
    early[20..24].copy_from_slice(&(request_id + 5).to_be_bytes());
    assert_eq!(feed(s, &early), vec![(ErrorKind::UnexpectedMessageId, 1)]);
    // The last request's bare header (28 octets, nothing to authenticate): no answer —
    // the response cache reflects nothing.
    let sent = s.log.len();
    let header = &request[..28];
    assert_eq!(feed(s, header), vec![(ErrorKind::NotARetransmission, 1)]);
    assert_eq!(s.log.len(), sent, "a bare header got the cached answer");
    // The last request again, a second later (as a retransmission comes): answered from
    // the cache, counted as a retransmission.
    s.now += Duration::from_secs(1);
    assert_eq!(feed(s, &request), vec![(ErrorKind::Retransmission, 1)]);
    assert_eq!(s.log.len(), sent + 1, "the cached answer was not sent");
    // The same again at once: not answered twice within RESEND_INTERVAL.
    assert_eq!(feed(s, &request), vec![(ErrorKind::RateLimited, 1)]);
    assert_eq!(s.log.len(), sent + 1, "answered twice in a row");
    // An exact copy, a second later, sent from another address: not answered (there).
    s.now += Duration::from_secs(1);
    let before = s.nodes[1].ike().error_counters().clone();
    let now = s.now;
    let elsewhere = "203.0.113.9:500".parse().unwrap();
    s.nodes[1]
        .host
        .handle_ike_datagram(now, elsewhere, addr(B), &request);
    let after = s.nodes[1].ike().error_counters();
    assert_eq!(
        after.get(ErrorKind::NotARetransmission),
        before.get(ErrorKind::NotARetransmission) + 1
    );
    assert!(s.nodes[1].host.poll_transmit().is_none(), "reflected");
    // The next request with a broken ICV.
    let mut forged = request.clone();
    forged[20..24].copy_from_slice(&(request_id + 1).to_be_bytes());
    let last = forged.len() - 1;
    forged[last] ^= 0x55;
    assert_eq!(feed(s, &forged), vec![(ErrorKind::Undecryptable, 1)]);

    // Authenticated but malformed: A sends payloads INFORMATIONAL may not carry (a TSi).
    // B answers INVALID_SYNTAX inside the IKE SA.
    let t = s.now;
    let ts = Payload::new(PayloadBody::TsI(TsPayload {
        selectors: Vec::new(),
    }));
    assert!(
        s.nodes[0]
            .ike_mut()
            .debug_send_request(t, PEER, ExchangeType::INFORMATIONAL, &[ts])
    );
    let before = s.nodes[1]
        .ike()
        .error_counters()
        .get(ErrorKind::InvalidSyntax);
    s.run(t + Duration::from_secs(1));
    assert_eq!(
        s.nodes[1]
            .ike()
            .error_counters()
            .get(ErrorKind::InvalidSyntax),
        before + 1
    );
    // ... and reported with the peer, for the debug log.
    assert!(s.nodes[1].events.iter().any(|e| matches!(
        e,
        meshsec_ike::Event::MessageIgnored {
            kind: ErrorKind::InvalidSyntax,
            exchange: ExchangeType::INFORMATIONAL,
            response: false,
            ..
        }
    )));
    // An IKE_AUTH on an IKE SA that is established already.
    let t = s.now;
    let auth = [
        Payload::new(PayloadBody::IdI(Identity::Fqdn(Cow::Borrowed(b"a.test")))),
        Payload::new(PayloadBody::Auth(AuthPayload {
            method: AuthMethod::SHARED_KEY_MIC,
            data: Cow::Owned(vec![0; 32]),
        })),
    ];
    assert!(
        s.nodes[0]
            .ike_mut()
            .debug_send_request(t, PEER, ExchangeType::IKE_AUTH, &auth)
    );
    let before = s.nodes[1].ike().error_counters().get(ErrorKind::WrongState);
    s.run(t + Duration::from_secs(5));
    // Refused with INVALID_SYNTAX (once: A has its answer and does not retransmit).
    assert_eq!(
        s.nodes[1].ike().error_counters().get(ErrorKind::WrongState),
        before + 1
    );
    assert_eq!(
        s.nodes[0].ike().error_counters().get(ErrorKind::WrongState),
        1
    );

    // None of it touched the tunnel.
    let t = s.now;
    s.run(t + Duration::from_secs(10));
    assert_eq!(assert_one_pair(s, "after"), pair);
    assert_eq!(s.nodes[1].ike().ike_sa_count(), 1);
}

#[test]
fn resource_limits_and_cookies_are_counted() {
    // At most one half-open IKE SA: a peer at its configured address pushes out its own
    // older one; anyone else (B takes A from anywhere here) is refused.
    let (mut s, first) = responder_accepting(anywhere(), |c| c.max_half_open = 1);
    assert_eq!(feed(&mut s, &first), vec![]);
    assert_eq!(s.nodes[1].ike().half_open_count(), 1);
    assert_eq!(
        feed(&mut s, &with_spi(&first, 0x1122)),
        vec![(ErrorKind::HalfOpenEvicted, 1)]
    );
    assert_eq!(s.nodes[1].ike().half_open_count(), 1);
    let before = s.nodes[1]
        .ike()
        .error_counters()
        .get(ErrorKind::HalfOpenLimit);
    let elsewhere = "203.0.113.5:500".parse().unwrap();
    let now = s.now;
    s.nodes[1]
        .host
        .handle_ike_datagram(now, elsewhere, addr(B), &with_spi(&first, 0x3344));
    assert_eq!(
        s.nodes[1]
            .ike()
            .error_counters()
            .get(ErrorKind::HalfOpenLimit),
        before + 1
    );
    // Cookies from the first half-open SA on.
    let (mut s, first) = responder(|c| c.cookie_threshold = 1);
    assert_eq!(feed(&mut s, &first), vec![]);
    assert_eq!(
        feed(&mut s, &with_spi(&first, 0x1122)),
        vec![(ErrorKind::CookieRequired, 1)]
    );
    // More than 20 stateless answers a second to one source: the rest are not sent.
    let sent = s.log.len();
    let mut limited = 0;
    for i in 0..25u64 {
        let counted = feed(&mut s, &with_spi(&first, 0x9000 + i));
        assert!(
            counted.contains(&(ErrorKind::CookieRequired, 1)),
            "{counted:?}"
        );
        limited += counted.contains(&(ErrorKind::RateLimited, 1)) as u64;
    }
    assert!(limited > 0);
    assert!(s.log.len() - sent < 25, "every request got an answer");
    assert_eq!(s.nodes[1].ike().half_open_count(), 1);
}

#[test]
fn failed_negotiations_are_counted_on_both_sides() {
    let mut b = side(false);
    b.psk = "another pre-shared key, 32 bytes!!";
    let mut s = sim(side(true), b);
    s.nodes[0]
        .ike_mut()
        .initiate(Timestamp::ZERO, PEER)
        .unwrap();
    s.run(LONG);
    for n in &s.nodes {
        assert_eq!(
            n.ike()
                .error_counters()
                .get(ErrorKind::AuthenticationFailed),
            1,
            "{}",
            n.addr
        );
    }
    let mut b = side(false);
    b.ike = vec!["aes128-sha256-modp3072"];
    let mut s = sim(side(true), b);
    s.nodes[0]
        .ike_mut()
        .initiate(Timestamp::ZERO, PEER)
        .unwrap();
    s.run(LONG);
    assert_eq!(
        s.nodes[1]
            .ike()
            .error_counters()
            .get(ErrorKind::NoProposalChosen),
        1
    );
    assert_eq!(
        s.nodes[0]
            .ike()
            .error_counters()
            .get(ErrorKind::PeerRefused),
        1
    );
}

/// OpenIKED 7.2's liveness check is an INFORMATIONAL whose SK payload holds an empty chain
/// (Next Payload 0) followed by four octets. It is authentic, so it is answered; the octets
/// are taken as padding (RFC 7296 §3.14) and counted as `trailing_octets`.
#[test]
fn an_openiked_liveness_check_with_trailing_octets_is_answered() {
    let mut r = Run::established(sim(side(true), side(false)));
    let pair = assert_one_pair(&r.s, "before");
    let alive = |s: &Sim| {
        s.nodes[0]
            .events
            .iter()
            .filter(|e| matches!(e, meshsec_ike::Event::PeerAlive { .. }))
            .count()
    };
    let (before, answered_before) = (
        r.s.nodes[1]
            .ike()
            .error_counters()
            .get(ErrorKind::TrailingOctets),
        alive(&r.s),
    );
    let t = r.s.now;
    assert!(r.s.nodes[0].ike_mut().debug_send_raw_request(
        t,
        PEER,
        ExchangeType::INFORMATIONAL,
        meshsec_wire::registry::PayloadType::NONE,
        &[0, 0, 0, 0],
    ));
    r.until(t + Duration::from_secs(1), "liveness with trailing octets");
    let counters = r.s.nodes[1].ike().error_counters();
    assert_eq!(counters.get(ErrorKind::TrailingOctets), before + 1);
    assert_eq!(counters.get(ErrorKind::InvalidSyntax), 0);
    // A got its answer (within one round trip: no retransmission) and nothing changed.
    assert_eq!(alive(&r.s), answered_before + 1);
    assert_eq!(
        r.s.nodes[0].ike().error_counters().get(ErrorKind::Timeout),
        0
    );
    assert_eq!(assert_one_pair(&r.s, "after"), pair);
}

/// RFC 7296 §3.10.1: an error Notify of a type we do not know, in a request, is ignored —
/// answered as any INFORMATIONAL, and no failure is reported.
#[test]
fn an_unknown_error_notify_in_an_informational_request_is_ignored() {
    let mut r = Run::established(sim(side(true), side(false)));
    let pair = assert_one_pair(&r.s, "before");
    let failed = |s: &Sim| {
        s.nodes[1]
            .events
            .iter()
            .filter(|e| matches!(e, meshsec_ike::Event::Failed { .. }))
            .count()
    };
    let before = failed(&r.s);
    let t = r.s.now;
    // One Notify payload: generic header (no next payload, length 8), protocol 0, no SPI,
    // type 9999 (an unassigned error type).
    let notify = [0, 0, 0, 8, 0, 0, 0x27, 0x0f];
    assert!(r.s.nodes[0].ike_mut().debug_send_raw_request(
        t,
        PEER,
        ExchangeType::INFORMATIONAL,
        meshsec_wire::registry::PayloadType::NOTIFY,
        &notify,
    ));
    r.until(t + Duration::from_secs(1), "unknown error notify");
    assert_eq!(failed(&r.s), before, "{:?}", r.s.nodes[1].events);
    assert_eq!(
        r.s.nodes[0].ike().error_counters().get(ErrorKind::Timeout),
        0,
        "not answered"
    );
    assert_eq!(assert_one_pair(&r.s, "after"), pair);
}

/// RFC 7296 §3.10.1: a COOKIE is 1 to 64 octets. A forged IKE_SA_INIT answer with a longer
/// one is not echoed (our request would grow by whatever anyone sends) and does not end the
/// attempt: the real answer still sets it up.
#[test]
fn an_oversized_cookie_is_not_echoed_and_the_attempt_goes_on() {
    let mut s = sim(side(true), side(false));
    s.nodes[0]
        .ike_mut()
        .initiate(Timestamp::ZERO, PEER)
        .unwrap();
    let spi_i = s.nodes[0].ike().ike_sas()[0].spi_i.get();
    let cookie = meshsec_wire::payload::Notify::new(
        meshsec_wire::registry::NotifyType::COOKIE,
        vec![7; 100],
    );
    let forged = Message {
        header: Header {
            spi_i,
            spi_r: 0,
            minor_version: 0,
            exchange: ExchangeType::IKE_SA_INIT,
            flags: Flags::RESPONSE,
            message_id: 0,
        },
        payloads: vec![Payload::new(PayloadBody::Notify(cookie))],
    }
    .to_bytes()
    .unwrap();
    let invalid = |s: &Sim| {
        s.nodes[0]
            .ike()
            .error_counters()
            .get(ErrorKind::InvalidSyntax)
    };
    let before = invalid(&s);
    // (The first request is dropped here: the retransmission gets through.)
    let first: Vec<_> = std::iter::from_fn(|| s.nodes[0].host.poll_transmit()).collect();
    assert_eq!(first.len(), 1);
    s.nodes[0]
        .host
        .handle_ike_datagram(Timestamp::ZERO, addr(B), addr(A), &forged);
    assert_eq!(invalid(&s), before + 1);
    let sent = std::iter::from_fn(|| s.nodes[0].host.poll_transmit()).count();
    assert_eq!(sent, 0, "the forged cookie was answered");
    s.run(LONG);
    assert_one_pair(&s, "after a forged cookie");
}

/// RFC 7296 §2.5: a critical payload we do not know is answered with
/// UNSUPPORTED_CRITICAL_PAYLOAD naming its type (not a bare INVALID_SYNTAX).
#[test]
fn an_unknown_critical_payload_is_answered_with_its_type() {
    let mut r = Run::established(sim(side(true), side(false)));
    let pair = assert_one_pair(&r.s, "before");
    let t = r.s.now;
    // Payload type 200, critical, no body: the generic header alone.
    assert!(r.s.nodes[0].ike_mut().debug_send_raw_request(
        t,
        PEER,
        ExchangeType::INFORMATIONAL,
        meshsec_wire::registry::PayloadType(200),
        &[0, 0x80, 0, 4],
    ));
    r.until(t + Duration::from_secs(1), "unknown critical payload");
    let refused = r.s.nodes[0].events.iter().find_map(|e| match e {
        meshsec_ike::Event::Failed {
            failure: meshsec_ike::Failure::PeerRefused { notify, .. },
            ..
        } => Some(*notify),
        _ => None,
    });
    assert_eq!(
        refused,
        Some(meshsec_wire::registry::NotifyType::UNSUPPORTED_CRITICAL_PAYLOAD),
        "{:?}",
        r.s.nodes[0].events
    );
    assert_eq!(assert_one_pair(&r.s, "after"), pair);
}
