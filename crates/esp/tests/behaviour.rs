//! Data plane behaviour a user would notice: both modes and families, every suite, ESN, TFC,
//! dummies, each drop reason with its counter, lifetimes and their events, acquires, per-peer
//! totals that survive SA replacement, and batches.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::time::Duration;

use common::*;
use meshsec_crypto::aead::{AeadAlg, AeadBackend};
use meshsec_crypto::{Encr, Integ};
use meshsec_esp::lifetime::{Expiry, Lifetime, Limits};
use meshsec_esp::spd::{Action, Policy};
use meshsec_esp::{
    DataPlane, DropReason, EspEvent, Mode, Opened, PacketBuf, SaParams, SealOutcome,
};

const T0: Timestamp = Timestamp::ZERO;

/// The events of a data plane but OutboundResumed (which has its own test).
fn events_of(dp: &mut DataPlane) -> Vec<EspEvent> {
    std::iter::from_fn(|| dp.poll_event())
        .filter(|e| !matches!(e, EspEvent::OutboundResumed { .. }))
        .collect()
}

/// Two data planes, "a" (10.1.0.0/24) and "b" (10.2.0.0/24), with one SA pair.
struct Pair {
    a: DataPlane,
    b: DataPlane,
}

fn pair_with(tweak: impl Fn(&mut SaParams)) -> Pair {
    let sel_a = selector("10.1.0.0/24", "10.2.0.0/24");
    let sel_b = selector("10.2.0.0/24", "10.1.0.0/24");
    let mut out = params(0x1111, gcm256(), None, &[7; 36], &[], sel_a);
    tweak(&mut out);
    let mut inb = out.clone();
    inb.selectors = vec![sel_b];
    std::mem::swap(&mut inb.local, &mut inb.remote);
    let mut a = dataplane();
    let mut b = dataplane();
    a.install_outbound(T0, P, out).unwrap();
    a.add_policy(protect(sel_a, P));
    b.install_inbound(T0, inb).unwrap();
    Pair { a, b }
}

/// Seals `inner` at a, opens at b; returns b's result and the delivered bytes.
fn send(p: &mut Pair, now: Timestamp, inner: &[u8]) -> (Result<Opened, DropReason>, Vec<u8>) {
    let (mut buf, s, e) = framed(inner);
    let mut pkt = PacketBuf::new(&mut buf, s, e);
    match p.a.seal(now, &mut pkt) {
        Ok(SealOutcome::Sealed(_)) => {}
        other => return (Err(other.err().unwrap_or(DropReason::NoPolicy)), Vec::new()),
    }
    let (s, e) = (pkt.start, pkt.end);
    let mut pkt = PacketBuf::new(&mut buf, s, e);
    let r =
        p.b.open(now, &mut pkt, ip("198.51.100.1"), ip("198.51.100.2"));
    (r, pkt.data().to_vec())
}

#[test]
fn every_suite_round_trips_in_both_modes_with_and_without_esn() {
    let suites: Vec<(Encr, Option<Integ>, usize, usize)> = vec![
        (Encr::Aead(AeadAlg::Aes128Gcm), None, 20, 0),
        (Encr::Aead(AeadAlg::Aes256Gcm), None, 36, 0),
        (Encr::Aead(AeadAlg::ChaCha20Poly1305), None, 36, 0),
        (
            Encr::AesCbc { key_len: 16 },
            Some(Integ::HmacSha256_128),
            16,
            32,
        ),
        (
            Encr::AesCbc { key_len: 32 },
            Some(Integ::HmacSha512_256),
            32,
            64,
        ),
        (Encr::Null, Some(Integ::HmacSha256_128), 0, 32),
    ];
    for (encr, integ, ek, ik) in suites {
        for mode in [Mode::Tunnel, Mode::Transport] {
            for esn in [false, true] {
                for backend in [AeadBackend::Ring, AeadBackend::AwsLc] {
                    let mut p = pair_with(|p| {
                        p.encr = encr;
                        p.integ = integ;
                        p.encr_key = meshsec_crypto::Secret::new(vec![3; ek]);
                        p.integ_key = meshsec_crypto::Secret::new(vec![4; ik]);
                        p.mode = mode;
                        p.esn = esn;
                        p.backend = backend;
                        if mode == Mode::Transport {
                            // Transport mode protects the hosts' own addresses.
                            p.local = ip("10.1.0.1");
                            p.remote = ip("10.2.0.1");
                        }
                    });
                    for len in [0, 1, 13, 100, 1400] {
                        let inner = udp("10.1.0.1", "10.2.0.1", 1000, 2000, len);
                        let (src, dst) = if mode == Mode::Transport {
                            (ip("10.1.0.1"), ip("10.2.0.1"))
                        } else {
                            (ip("198.51.100.1"), ip("198.51.100.2"))
                        };
                        let (mut buf, s, e) = framed(&inner);
                        let mut pkt = PacketBuf::new(&mut buf, s, e);
                        assert!(matches!(p.a.seal(T0, &mut pkt), Ok(SealOutcome::Sealed(_))));
                        let (s, e) = (pkt.start, pkt.end);
                        let mut pkt = PacketBuf::new(&mut buf, s, e);
                        let ctx = format!("{encr:?} {mode:?} esn={esn} {backend:?} len={len}");
                        assert!(
                            matches!(p.b.open(T0, &mut pkt, src, dst), Ok(Opened::Packet { .. })),
                            "{ctx}"
                        );
                        if mode == Mode::Tunnel {
                            assert_eq!(pkt.data(), inner.as_slice(), "{ctx}");
                        } else {
                            // Rebuilt header (TTL, id may differ): compare addresses and payload.
                            assert_eq!(&pkt.data()[12..20], &inner[12..20], "{ctx}");
                            assert_eq!(&pkt.data()[20..], &inner[20..], "{ctx}");
                            assert_eq!(pkt.data()[9], 17);
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn ipv6_inner_packets_and_selectors() {
    let sel_a = selector("2001:db8:1::/48", "2001:db8:2::/48");
    let sel_b = selector("2001:db8:2::/48", "2001:db8:1::/48");
    let mut a = dataplane();
    let mut b = dataplane();
    let out = params(9, gcm256(), None, &[1; 36], &[], sel_a);
    let mut inb = out.clone();
    inb.selectors = vec![sel_b];
    a.install_outbound(T0, P, out).unwrap();
    a.add_policy(protect(sel_a, P));
    b.install_inbound(T0, inb).unwrap();
    let inner = udp("2001:db8:1::1", "2001:db8:2::1", 5, 6, 50);
    let (mut buf, s, e) = framed(&inner);
    let mut pkt = PacketBuf::new(&mut buf, s, e);
    a.seal(T0, &mut pkt).unwrap();
    let (s, e) = (pkt.start, pkt.end);
    let mut pkt = PacketBuf::new(&mut buf, s, e);
    assert!(
        b.open(T0, &mut pkt, ip("2001:db8::1"), ip("2001:db8::2"))
            .is_ok()
    );
    assert_eq!(pkt.data(), inner.as_slice());
}

#[test]
fn tfc_padding_is_added_and_stripped() {
    let mut p = pair_with(|p| p.tfc_pad_to = Some(600));
    let inner = icmp4("10.1.0.1", "10.2.0.1", 20);
    let (mut buf, s, e) = framed(&inner);
    let mut pkt = PacketBuf::new(&mut buf, s, e);
    p.a.seal(T0, &mut pkt).unwrap();
    assert!(
        pkt.end - pkt.start >= 600,
        "not padded: {}",
        pkt.end - pkt.start
    );
    let (s, e) = (pkt.start, pkt.end);
    let mut pkt = PacketBuf::new(&mut buf, s, e);
    p.b.open(T0, &mut pkt, ip("198.51.100.1"), ip("198.51.100.2"))
        .unwrap();
    assert_eq!(pkt.data(), inner.as_slice());
}

#[test]
fn each_drop_reason_is_counted() {
    let mut p = pair_with(|_| {});
    let inner = icmp4("10.1.0.1", "10.2.0.1", 56);
    let (mut buf, s, e) = framed(&inner);
    let mut pkt = PacketBuf::new(&mut buf, s, e);
    p.a.seal(T0, &mut pkt).unwrap();
    let esp = pkt.data().to_vec();
    let open = |b: &mut DataPlane, bytes: &[u8]| {
        let (mut buf, s, e) = framed(bytes);
        let mut pkt = PacketBuf::new(&mut buf, s, e);
        b.open(T0, &mut pkt, ip("198.51.100.1"), ip("198.51.100.2"))
    };
    assert!(open(&mut p.b, &esp).is_ok());
    assert_eq!(open(&mut p.b, &esp), Err(DropReason::Replay));
    let mut bad = esp.clone();
    bad[20] ^= 1;
    // A different sequence number so the replay check passes first.
    bad[7] = 2;
    assert_eq!(open(&mut p.b, &bad), Err(DropReason::AuthFailed));
    let mut unknown = esp.clone();
    unknown[3] ^= 0xff;
    // An unknown SPI waits (parked) for its SA, and counts as a drop when the wait ends.
    let unknown_spi = u32::from_be_bytes(unknown[..4].try_into().unwrap());
    assert_eq!(
        open(&mut p.b, &unknown),
        Ok(Opened::Parked {
            spi: InboundSpi::new(unknown_spi)
        })
    );
    assert!(p.b.unknown_spis(T0).is_empty());
    assert_eq!(
        p.b.unknown_spis(T0 + Duration::from_millis(500)),
        vec![(ip("198.51.100.1"), InboundSpi::new(unknown_spi))]
    );
    assert_eq!(open(&mut p.b, &esp[..20]), Err(DropReason::Malformed));
    assert_eq!(open(&mut p.b, &esp[..5]), Err(DropReason::Malformed));
    let c = *p.b.inbound_counters(InboundSpi::new(0x1111)).unwrap();
    assert_eq!(c.packets, 1);
    assert_eq!(c.dropped(DropReason::Replay), 1);
    assert_eq!(c.dropped(DropReason::AuthFailed), 1);
    assert_eq!(c.dropped(DropReason::Malformed), 1);
    assert_eq!(
        p.b.unattributed_counters().dropped(DropReason::UnknownSpi),
        1
    );
    assert_eq!(
        p.b.unattributed_counters().dropped(DropReason::Malformed),
        1
    );
    // An authentic packet whose inner addresses are outside the SA's selectors.
    let (r, _) = send(&mut p, T0, &icmp4("10.1.0.1", "10.9.0.1", 8));
    assert_eq!(
        r,
        Err(DropReason::NoPolicy),
        "the SPD at a has no policy for it"
    );
    // A policy sends it to the peer's SA, but the SA was negotiated without 10.9.0.0/24
    // (narrowed): a does not send what b would drop.
    p.a.add_policy(Policy {
        selector: selector("10.1.0.0/24", "10.9.0.0/24"),
        action: Action::Protect(P),
    });
    let (mut buf, s, e) = framed(&icmp4("10.1.0.1", "10.9.0.1", 8));
    let mut pkt = PacketBuf::new(&mut buf, s, e);
    assert_eq!(p.a.seal(T0, &mut pkt), Err(DropReason::NoPolicy));
    assert_eq!(
        p.a.outbound_counters(P)
            .unwrap()
            .dropped(DropReason::NoPolicy),
        1
    );
    // And should a peer send it anyway, b's SA does not carry 10.9.0.0/24.
    let mut wide = pair_with(|o| o.selectors.push(selector("10.1.0.0/24", "10.9.0.0/24")));
    wide.a.add_policy(Policy {
        selector: selector("10.1.0.0/24", "10.9.0.0/24"),
        action: Action::Protect(P),
    });
    let (r, _) = send(&mut wide, T0, &icmp4("10.1.0.1", "10.9.0.1", 8));
    assert_eq!(r, Err(DropReason::NoPolicy));
    assert_eq!(
        wide.b
            .inbound_counters(InboundSpi::new(0x1111))
            .unwrap()
            .dropped(DropReason::NoPolicy),
        1
    );
    // Too old: far ahead, then an early one.
    p.a.debug_set_next_seq(P, 5000);
    assert!(send(&mut p, T0, &inner).0.is_ok());
    p.a.debug_set_next_seq(P, 10);
    assert_eq!(send(&mut p, T0, &inner).0, Err(DropReason::TooOld));
    // No room: a buffer without headroom.
    let mut tight = inner.clone();
    let n = tight.len();
    let mut pkt = PacketBuf::new(&mut tight, 0, n);
    assert_eq!(p.a.seal(T0, &mut pkt), Err(DropReason::NoRoom));
}

#[test]
fn dummy_packets_are_discarded_silently() {
    // Crafted with NULL encryption + HMAC, whose body we can write by hand.
    let sel = selector("0.0.0.0/0", "0.0.0.0/0");
    let mut b = dataplane();
    let mut inb = params(
        77,
        Encr::Null,
        Some(Integ::HmacSha256_128),
        &[],
        &[5; 32],
        sel,
    );
    inb.replay_window = 64;
    b.install_inbound(T0, inb).unwrap();
    // ESP: SPI 77, seq 1, payload "xx", padding 1 2, pad len 2, next header 59, ICV.
    let mut esp = vec![0, 0, 0, 77, 0, 0, 0, 1, b'x', b'x', 1, 2, 2, 59];
    let mut icv = [0u8; 16];
    Integ::HmacSha256_128
        .sign(&[5; 32], &[&esp], &mut icv)
        .unwrap();
    esp.extend_from_slice(&icv);
    let (mut buf, s, e) = framed(&esp);
    let mut pkt = PacketBuf::new(&mut buf, s, e);
    assert_eq!(
        b.open(T0, &mut pkt, ip("1.1.1.1"), ip("2.2.2.2")),
        Ok(Opened::Dummy {
            spi: InboundSpi::new(77)
        })
    );
    assert_eq!(b.inbound_counters(InboundSpi::new(77)).unwrap().dummies, 1);
    assert_eq!(b.inbound_counters(InboundSpi::new(77)).unwrap().packets, 0);
    // Bad padding (not 1, 2, ...) is malformed.
    let mut esp = vec![0, 0, 0, 77, 0, 0, 0, 2, b'x', b'x', 9, 9, 2, 59];
    Integ::HmacSha256_128
        .sign(&[5; 32], &[&esp], &mut icv)
        .unwrap();
    esp.extend_from_slice(&icv);
    let (mut buf, s, e) = framed(&esp);
    let mut pkt = PacketBuf::new(&mut buf, s, e);
    assert_eq!(
        b.open(T0, &mut pkt, ip("1.1.1.1"), ip("2.2.2.2")),
        Err(DropReason::Malformed)
    );
}

#[test]
fn lifetimes_raise_soft_then_hard_and_stop_the_sa() {
    let mut p = pair_with(|p| {
        p.lifetime = Lifetime {
            soft: Limits {
                packets: Some(3),
                ..Default::default()
            },
            hard: Limits {
                packets: Some(5),
                time: Some(Duration::from_secs(60)),
                ..Default::default()
            },
        }
    });
    let inner = icmp4("10.1.0.1", "10.2.0.1", 8);
    for _ in 0..5 {
        assert!(send(&mut p, T0, &inner).0.is_ok());
    }
    let events: Vec<_> = events_of(&mut p.a);
    assert_eq!(
        events,
        vec![
            EspEvent::SoftExpired {
                sa: SaRef::Outbound(OutboundSpi::new(0x1111)),
                peer: P,
                reason: Expiry::Packets
            },
            EspEvent::HardExpired {
                sa: SaRef::Outbound(OutboundSpi::new(0x1111)),
                peer: P,
                reason: Expiry::Packets
            },
        ]
    );
    assert_eq!(send(&mut p, T0, &inner).0, Err(DropReason::Expired));
    let ev: Vec<_> = events_of(&mut p.b);
    assert!(
        ev.contains(&EspEvent::HardExpired {
            sa: SaRef::Inbound(InboundSpi::new(0x1111)),
            peer: P,
            reason: Expiry::Packets
        }),
        "{ev:?}"
    );
    // Time: an idle SA expires by the clock, through handle_timeout.
    let mut p = pair_with(|p| {
        p.lifetime.soft.time = Some(Duration::from_secs(50));
        p.lifetime.hard.time = Some(Duration::from_secs(60));
    });
    assert_eq!(p.b.poll_timeout(), Some(Timestamp::from_secs(50)));
    p.b.handle_timeout(Timestamp::from_secs(55));
    assert_eq!(p.b.poll_timeout(), Some(Timestamp::from_secs(60)));
    p.b.handle_timeout(Timestamp::from_secs(61));
    let ev: Vec<_> = events_of(&mut p.b);
    assert_eq!(
        ev,
        vec![
            EspEvent::SoftExpired {
                sa: SaRef::Inbound(InboundSpi::new(0x1111)),
                peer: P,
                reason: Expiry::Time
            },
            EspEvent::HardExpired {
                sa: SaRef::Inbound(InboundSpi::new(0x1111)),
                peer: P,
                reason: Expiry::Time
            },
        ]
    );
    assert_eq!(p.b.poll_timeout(), None);
    assert_eq!(
        send(&mut p, Timestamp::from_secs(62), &inner).0,
        Err(DropReason::Expired)
    );
}

#[test]
fn sequence_space_is_never_wrapped() {
    let mut p = pair_with(|_| {});
    let inner = icmp4("10.1.0.1", "10.2.0.1", 8);
    p.a.debug_set_next_seq(P, u64::from(u32::MAX) - 1);
    assert!(send(&mut p, T0, &inner).0.is_ok());
    assert!(send(&mut p, T0, &inner).0.is_ok()); // seq 2^32-1, the last one
    assert_eq!(send(&mut p, T0, &inner).0, Err(DropReason::SeqExhausted));
    let events: Vec<_> = events_of(&mut p.a);
    assert!(
        events.iter().any(|e| matches!(
            e,
            EspEvent::SoftExpired {
                reason: Expiry::SequenceSpace,
                ..
            }
        )),
        "{events:?}"
    );
    assert!(
        events.iter().any(|e| matches!(
            e,
            EspEvent::HardExpired {
                reason: Expiry::SequenceSpace,
                ..
            }
        )),
        "{events:?}"
    );
    // With ESN, ChaCha20-Poly1305 carries on past 2^32...
    let mut p = pair_with(|p| {
        p.esn = true;
        p.encr = Encr::Aead(AeadAlg::ChaCha20Poly1305);
    });
    p.a.debug_set_next_seq(P, u64::from(u32::MAX) - 1);
    for _ in 0..4 {
        assert!(send(&mut p, T0, &inner).0.is_ok());
    }
    // ...while one AES-GCM key stops at its usage limit (2^32 packets) even with ESN.
    let mut p = pair_with(|p| p.esn = true);
    p.a.debug_set_next_seq(P, u64::from(u32::MAX) - 1);
    for _ in 0..3 {
        assert!(send(&mut p, T0, &inner).0.is_ok());
    }
    assert_eq!(send(&mut p, T0, &inner).0, Err(DropReason::Expired));
    let events: Vec<_> = events_of(&mut p.a);
    assert!(
        events.iter().any(|e| matches!(
            e,
            EspEvent::HardExpired {
                reason: Expiry::AeadUsage,
                ..
            }
        )),
        "{events:?}"
    );
}

#[test]
fn acquire_is_raised_once_for_a_policy_without_sa() {
    let mut dp = dataplane();
    let sel = selector("10.1.0.0/24", "10.3.0.0/24");
    dp.add_policy(protect(sel, PeerId::new(42)));
    dp.add_policy(Policy {
        selector: selector("10.1.0.0/24", "10.4.0.0/24"),
        action: Action::Bypass,
    });
    let inner = icmp4("10.1.0.1", "10.3.0.9", 8);
    for _ in 0..3 {
        let (mut buf, s, e) = framed(&inner);
        let mut pkt = PacketBuf::new(&mut buf, s, e);
        assert_eq!(dp.seal(T0, &mut pkt), Err(DropReason::NoSa));
    }
    let events: Vec<_> = events_of(&mut dp);
    assert_eq!(events.len(), 1);
    let EspEvent::Acquire { peer: slot, packet } = events[0] else {
        panic!("{events:?}")
    };
    assert_eq!((slot, packet.dst), (PeerId::new(42), ip("10.3.0.9")));
    let bypass = icmp4("10.1.0.1", "10.4.0.9", 8);
    let (mut buf, s, e) = framed(&bypass);
    assert_eq!(
        dp.seal(T0, &mut PacketBuf::new(&mut buf, s, e)),
        Ok(SealOutcome::Bypass)
    );
    let other = icmp4("10.1.0.1", "10.5.0.9", 8);
    let (mut buf, s, e) = framed(&other);
    assert_eq!(
        dp.seal(T0, &mut PacketBuf::new(&mut buf, s, e)),
        Err(DropReason::NoPolicy)
    );
}

#[test]
fn peer_totals_survive_sa_replacement() {
    let mut p = pair_with(|_| {});
    let inner = icmp4("10.1.0.1", "10.2.0.1", 100);
    for _ in 0..3 {
        assert!(send(&mut p, T0, &inner).0.is_ok());
    }
    // Rekey: a new outbound SA in the same slot and a new inbound SA at b.
    let sel_a = selector("10.1.0.0/24", "10.2.0.0/24");
    let sel_b = selector("10.2.0.0/24", "10.1.0.0/24");
    let out = params(0x2222, gcm256(), None, &[8; 36], &[], sel_a);
    let mut inb = out.clone();
    inb.selectors = vec![sel_b];
    p.b.install_inbound(T0, inb).unwrap();
    p.a.install_outbound(T0, P, out).unwrap();
    for _ in 0..2 {
        assert!(send(&mut p, T0, &inner).0.is_ok());
    }
    assert!(p.b.remove_inbound(InboundSpi::new(0x1111)));
    let (_, out_a) = p.a.peer_counters(P);
    let (in_b, _) = p.b.peer_counters(P);
    assert_eq!((out_a.packets, in_b.packets), (5, 5));
    assert_eq!(out_a.bytes, 5 * inner.len() as u64);
    assert_eq!(p.a.outbound_counters(P).unwrap().packets, 2);
}

/// The SPI of the ESP packet a seals for `inner`.
fn sealing_spi(p: &mut Pair, inner: &[u8]) -> u32 {
    let (mut buf, s, e) = framed(inner);
    let mut pkt = PacketBuf::new(&mut buf, s, e);
    match p.a.seal(T0, &mut pkt) {
        Ok(SealOutcome::Sealed(sealed)) => sealed.spi.get(),
        other => panic!("not sealed: {other:?}"),
    }
}

#[test]
fn standby_and_removed_outbound_sas_hand_over_without_a_gap() {
    let mut p = pair_with(|_| {});
    let inner = icmp4("10.1.0.1", "10.2.0.1", 100);
    let sel_a = selector("10.1.0.0/24", "10.2.0.0/24");
    let new = |spi| params(spi, gcm256(), None, &[9; 36], &[], sel_a);
    // A rekey answered: the new SA waits behind the current one.
    p.a.install_outbound_standby(T0, P, new(0x2222), InboundSpi::new(0x9999))
        .unwrap();
    assert_eq!(sealing_spi(&mut p, &inner), 0x1111);
    // The old one deleted: the standby seals, with its own sequence numbers from 1.
    assert!(p.a.remove_outbound_spi(P, OutboundSpi::new(0x1111)));
    assert_eq!(sealing_spi(&mut p, &inner), 0x2222);
    // A collision: a third SA becomes active; removing it hands back to the previous one,
    // whose sequence numbers continue (nothing replayed, nothing skipped).
    p.a.install_outbound(T0, P, new(0x3333)).unwrap();
    assert_eq!(sealing_spi(&mut p, &inner), 0x3333);
    assert!(p.a.remove_outbound_spi(P, OutboundSpi::new(0x3333)));
    assert_eq!(sealing_spi(&mut p, &inner), 0x2222);
    assert_eq!(
        p.a.outbound_counters_spi(P, OutboundSpi::new(0x2222))
            .unwrap()
            .packets,
        2
    );
    assert!(
        !p.a.remove_outbound_spi(P, OutboundSpi::new(0x3333)),
        "removed twice"
    );
    // Every outbound SA gone: the slot asks for a new one.
    assert!(p.a.remove_outbound_spi(P, OutboundSpi::new(0x2222)));
    let (mut buf, s, e) = framed(&inner);
    let mut pkt = PacketBuf::new(&mut buf, s, e);
    assert_eq!(p.a.seal(T0, &mut pkt), Err(DropReason::NoSa));
    assert!(matches!(
        events_of(&mut p.a).first(),
        Some(EspEvent::Acquire { peer: P, .. })
    ));
}

/// An outbound SA of a with `spi` (a's selectors).
fn sa_a(spi: u32) -> SaParams {
    params(
        spi,
        gcm256(),
        None,
        &[9; 36],
        &[],
        selector("10.1.0.0/24", "10.2.0.0/24"),
    )
}

/// Installs a new inbound SA `spi` at a; returns the outbound SA b seals it with.
fn new_inbound_at_a(p: &mut Pair, spi: u32) -> SaParams {
    let b_out = params(
        spi,
        gcm256(),
        None,
        &[5; 36],
        &[],
        selector("10.2.0.0/24", "10.1.0.0/24"),
    );
    let mut a_in = b_out.clone();
    a_in.selectors = vec![selector("10.1.0.0/24", "10.2.0.0/24")];
    std::mem::swap(&mut a_in.local, &mut a_in.remote);
    p.a.install_inbound(T0, a_in).unwrap();
    b_out
}

/// b installs `b_out` and sends one packet on it, which a opens.
fn b_sends_on(p: &mut Pair, b_out: SaParams) {
    p.b.install_outbound(T0, P, b_out).unwrap();
    p.b.add_policy(protect(selector("10.2.0.0/24", "10.1.0.0/24"), P));
    let (mut buf, s, e) = framed(&icmp4("10.2.0.1", "10.1.0.1", 100));
    let mut pkt = PacketBuf::new(&mut buf, s, e);
    assert!(matches!(p.b.seal(T0, &mut pkt), Ok(SealOutcome::Sealed(_))));
    let (s, e) = (pkt.start, pkt.end);
    let mut pkt = PacketBuf::new(&mut buf, s, e);
    assert!(
        p.a.open(T0, &mut pkt, ip("198.51.100.2"), ip("198.51.100.1"))
            .is_ok()
    );
}

/// The responder of a rekey or reauthentication keeps sealing on the old SA until the peer
/// shows it has the new pair: its first packet on the new inbound SA promotes the standby
/// outbound SA at once (no wait for the old SA's Delete, which may be late or lost).
#[test]
fn a_standby_seals_from_the_first_packet_on_its_pairs_inbound_sa() {
    let mut p = pair_with(|_| {});
    let inner = icmp4("10.1.0.1", "10.2.0.1", 100);
    // The new pair: a's inbound 0x4444 (b seals with it), a's outbound 0x2222 as a standby.
    let b_out = new_inbound_at_a(&mut p, 0x4444);
    p.a.install_outbound_standby(T0, P, sa_a(0x2222), InboundSpi::new(0x4444))
        .unwrap();
    assert_eq!(sealing_spi(&mut p, &inner), 0x1111, "promoted too early");
    // b has the pair and sends on it.
    b_sends_on(&mut p, b_out);
    assert_eq!(sealing_spi(&mut p, &inner), 0x2222);
    assert!(events_of(&mut p.a).iter().any(|e| matches!(
        e,
        EspEvent::StandbyPromoted { peer: P, spi } if spi.get() == 0x2222
    )));
    // The old one stays (as the standby now) until its Delete removes it.
    assert!(p.a.remove_outbound_spi(P, OutboundSpi::new(0x1111)));
    assert_eq!(sealing_spi(&mut p, &inner), 0x2222);
}

/// A standby superseded by an SA installed active after it (a rekey collision we won) is not
/// promoted by a late packet on its pair: the newer SA keeps sealing.
#[test]
fn a_standby_superseded_by_a_newer_active_sa_is_not_promoted() {
    let mut p = pair_with(|_| {});
    let inner = icmp4("10.1.0.1", "10.2.0.1", 100);
    let b_out = new_inbound_at_a(&mut p, 0x4444);
    p.a.install_outbound_standby(T0, P, sa_a(0x2222), InboundSpi::new(0x4444))
        .unwrap();
    p.a.install_outbound(T0, P, sa_a(0x3333)).unwrap();
    b_sends_on(&mut p, b_out);
    assert_eq!(sealing_spi(&mut p, &inner), 0x3333);
}

#[test]
fn batches_process_every_packet_in_order() {
    let mut p = pair_with(|_| {});
    let packets: Vec<Vec<u8>> = (0..64)
        .map(|i| icmp4("10.1.0.1", "10.2.0.1", i * 10))
        .collect();
    let mut bufs: Vec<(Vec<u8>, usize, usize)> = packets.iter().map(|x| framed(x)).collect();
    let mut pkts: Vec<PacketBuf<'_>> = bufs
        .iter_mut()
        .map(|(b, s, e)| PacketBuf::new(b, *s, *e))
        .collect();
    let mut sealed = vec![Err(DropReason::NoRoom); 64];
    p.a.seal_batch(T0, &mut pkts, &mut sealed);
    assert!(
        sealed
            .iter()
            .all(|r| matches!(r, Ok(SealOutcome::Sealed(_))))
    );
    let mut opened = vec![Err(DropReason::NoRoom); 64];
    p.b.open_batch(
        T0,
        &mut pkts,
        ip("198.51.100.1"),
        ip("198.51.100.2"),
        &mut opened,
    );
    assert!(opened.iter().all(Result::is_ok), "{opened:?}");
    for (pkt, want) in pkts.iter().zip(&packets) {
        assert_eq!(pkt.data(), want.as_slice());
    }
}

#[test]
fn transport_mode_through_nat_fixes_the_udp_checksum() {
    // The sender (behind NAT) seals 10.1.0.1 -> 198.51.100.2; the receiver sees the packet
    // arrive from the NAT's public address 203.0.113.9 (RFC 3948 §3.1.2).
    let sel_a = selector("10.1.0.1/32", "198.51.100.2/32");
    let sel_b = selector("198.51.100.2/32", "203.0.113.9/32");
    let mut out = params(5, gcm256(), None, &[9; 36], &[], sel_a);
    out.mode = Mode::Transport;
    let mut inb = out.clone();
    inb.selectors = vec![sel_b];
    inb.nat_transport_fixup = true;
    let mut a = dataplane();
    let mut b = dataplane();
    a.install_outbound(T0, P, out).unwrap();
    a.add_policy(protect(sel_a, P));
    b.install_inbound(T0, inb).unwrap();
    let mut inner = udp("10.1.0.1", "198.51.100.2", 1111, 53, 21);
    inner[26] = 1; // non-zero: a real checksum (zero would mean "none")
    meshsec_esp::ip::fix_l4_checksum(&mut inner[20..], ip("10.1.0.1"), ip("198.51.100.2"), 17)
        .unwrap();
    let (mut buf, s, e) = framed(&inner);
    let mut pkt = PacketBuf::new(&mut buf, s, e);
    a.seal(T0, &mut pkt).unwrap();
    let (s, e) = (pkt.start, pkt.end);
    let mut pkt = PacketBuf::new(&mut buf, s, e);
    assert!(
        b.open(T0, &mut pkt, ip("203.0.113.9"), ip("198.51.100.2"))
            .is_ok()
    );
    let got = pkt.data().to_vec();
    assert_eq!(&got[12..16], &[203, 0, 113, 9]);
    // The checksum now verifies for the translated addresses: recomputing changes nothing.
    let mut again = got[20..].to_vec();
    meshsec_esp::ip::fix_l4_checksum(&mut again, ip("203.0.113.9"), ip("198.51.100.2"), 17)
        .unwrap();
    assert_eq!(again, &got[20..]);
    assert_ne!(&got[26..28], &inner[26..28], "the checksum had to change");
}

#[test]
fn esp_arriving_before_its_inbound_sa_is_opened_when_the_sa_is_installed() {
    // The peer seals with a new SA before our IKE loop installed it (its answer overtaken):
    // the packets wait and are delivered, in order, once the SA is there.
    let mut p = pair_with(|_| {});
    let sel_b = selector("10.2.0.0/24", "10.1.0.0/24");
    let late = params(0x2222, gcm256(), None, &[9; 36], &[], sel_b);
    let mut out = late.clone();
    out.selectors = vec![selector("10.1.0.0/24", "10.2.0.0/24")];
    std::mem::swap(&mut out.local, &mut out.remote);
    p.a.install_outbound(T0, P, out).unwrap();
    let mut sent = Vec::new();
    for n in 0..3u8 {
        let inner = icmp4("10.1.0.1", "10.2.0.1", 40 + usize::from(n));
        let (r, _) = send(&mut p, T0, &inner);
        assert_eq!(
            r,
            Ok(Opened::Parked {
                spi: InboundSpi::new(0x2222)
            })
        );
        sent.push(inner);
    }
    p.b.install_inbound(T0, late).unwrap();
    let mut delivered = Vec::new();
    p.b.open_parked(T0, InboundSpi::new(0x2222), |inner| {
        delivered.push(inner.to_vec())
    });
    assert_eq!(delivered, sent);
    assert_eq!(
        p.b.inbound_counters(InboundSpi::new(0x2222))
            .unwrap()
            .packets,
        3
    );
    // Nothing is left to report as unknown.
    assert!(p.b.unknown_spis(T0 + Duration::from_secs(1)).is_empty());
}

#[test]
fn sending_after_an_idle_spell_is_reported_once_per_spell() {
    let mut p = pair_with(|_| {});
    let inner = icmp4("10.1.0.1", "10.2.0.1", 8);
    let resumed = |dp: &mut DataPlane| {
        std::iter::from_fn(|| dp.poll_event())
            .filter(|e| matches!(e, EspEvent::OutboundResumed { peer: P }))
            .count()
    };
    for ms in [0, 100, 1900] {
        assert!(
            send(&mut p, T0 + Duration::from_millis(ms), &inner)
                .0
                .is_ok()
        );
    }
    assert_eq!(resumed(&mut p.a), 1, "the first packet, then a steady flow");
    assert!(
        send(&mut p, T0 + Duration::from_millis(3800), &inner)
            .0
            .is_ok()
    );
    assert_eq!(resumed(&mut p.a), 0, "1.9 s later: still the same flow");
    assert!(
        send(&mut p, T0 + Duration::from_millis(5900), &inner)
            .0
            .is_ok()
    );
    assert_eq!(resumed(&mut p.a), 1, "2 s of silence: a new spell");
    // Receiving raises nothing of the kind.
    assert_eq!(resumed(&mut p.b), 0);
}
