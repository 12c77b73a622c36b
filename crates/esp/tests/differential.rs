//! Differential tests against slow reference models on random inputs: the replay window
//! (random sequence streams, including around the ESN 2^32 boundary) and SPD selection.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};

use meshsec_esp::replay::{ReplayError, ReplayWindow};
use meshsec_esp::selector::{AddrRange, PacketKey, Selector};
use meshsec_esp::spd::{Action, Policy, Spd};
use proptest::prelude::*;

/// The obvious replay window: a set of everything seen and the highest number.
struct ModelWindow {
    seen: BTreeSet<u64>,
    top: u64,
    size: u64,
}

impl ModelWindow {
    fn check(&self, seq: u64) -> Result<(), ReplayError> {
        if seq > self.top {
            Ok(())
        } else if seq == 0 || seq + self.size <= self.top {
            Err(ReplayError::TooOld)
        } else if self.seen.contains(&seq) {
            Err(ReplayError::Replay)
        } else {
            Ok(())
        }
    }
    fn commit(&mut self, seq: u64) {
        self.seen.insert(seq);
        self.top = self.top.max(seq);
    }
}

/// A sequence stream: mostly increasing with jitter, duplicates, old packets and jumps.
fn stream() -> impl Strategy<Value = (u64, Vec<i64>, u32)> {
    let start = prop_oneof![Just(1u64), Just((1u64 << 32) - 3000), 1u64..1_000_000];
    let steps = prop::collection::vec(
        prop_oneof![
            6 => 1i64..3,
            2 => -200i64..0,
            1 => Just(0i64),
            1 => 500i64..5000,
            1 => -5000i64..-1000,
        ],
        1..400,
    );
    let size = prop_oneof![Just(64u32), Just(1024), Just(4096), Just(8192)];
    (start, steps, size)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn replay_window_matches_the_model(
        (start, steps, size) in stream(),
        esn in any::<bool>(),
        forged in prop::collection::vec(any::<bool>(), 400),
    ) {
        let mut w = ReplayWindow::new(size, esn);
        let mut m = ModelWindow { seen: BTreeSet::new(), top: 0, size: w.size() };
        let mut seq = start as i64;
        for (i, step) in steps.iter().enumerate() {
            seq = (seq + step).max(1);
            let full = seq as u64;
            if !esn && full > u64::from(u32::MAX) {
                continue;
            }
            // The receiver only sees the low 32 bits; with ESN it must infer the rest
            // correctly whenever the packet is inside or ahead of the window.
            let inferred = w.infer(full as u32);
            let in_reach = full + w.size() > m.top && full < m.top + (1 << 31);
            if in_reach || !esn {
                prop_assert_eq!(inferred, full, "step {}: top {}", i, m.top);
            }
            let got = w.check(inferred);
            prop_assert_eq!(got, m.check(inferred), "seq {} top {}", inferred, m.top);
            // Forged packets (failing the ICV) are checked but never committed.
            if got.is_ok() && !forged[i] {
                w.commit(inferred);
                m.commit(inferred);
            }
            prop_assert_eq!(w.top(), m.top);
        }
    }
}

/// The SPD by definition: among all matching policies, the most specific; ties go to the
/// first added.
fn model_lookup<'a>(policies: &'a [Policy], key: &PacketKey) -> Option<&'a Policy> {
    let mut best: Option<&Policy> = None;
    for p in policies.iter().filter(|p| p.selector.matches_outbound(key)) {
        if best.is_none_or(|b| p.selector.specificity() < b.selector.specificity()) {
            best = Some(p);
        }
    }
    best
}

fn v4(a: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(a))
}

fn policy() -> impl Strategy<Value = Policy> {
    // Small address space so that overlaps are common.
    let range =
        (0u32..64, 0u8..=6).prop_map(|(a, len)| AddrRange::prefix(v4(0x0a00_0000 | a), 26 + len));
    let ports = prop_oneof![
        Just((0u16, u16::MAX)),
        (0u16..4).prop_map(|p| (p, p)),
        Just((0u16, 2))
    ];
    (
        range.clone(),
        range,
        prop_oneof![Just(0u8), Just(6), Just(17)],
        ports.clone(),
        ports,
        0u32..3,
    )
        .prop_map(|(local, remote, proto, lp, rp, a)| Policy {
            selector: Selector {
                local,
                remote,
                proto,
                local_ports: lp,
                remote_ports: rp,
            },
            action: match a {
                0 => Action::Bypass,
                1 => Action::Discard,
                n => Action::Protect(meshsec_esp::PeerId::new(n)),
            },
        })
}

fn key() -> impl Strategy<Value = PacketKey> {
    (
        0u32..64,
        0u32..64,
        prop_oneof![Just(1u8), Just(6), Just(17)],
        0u16..5,
        0u16..5,
    )
        .prop_map(|(s, d, proto, sport, dport)| PacketKey {
            src: v4(0x0a00_0000 | s),
            dst: v4(0x0a00_0000 | d),
            proto,
            sport,
            dport,
            opaque_ports: false,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn spd_lookup_matches_the_model(
        policies in prop::collection::vec(policy(), 0..30),
        keys in prop::collection::vec(key(), 1..50),
        remove in prop::collection::vec(any::<prop::sample::Index>(), 0..5),
    ) {
        let mut spd = Spd::new();
        let mut ids: Vec<_> = policies.iter().map(|p| spd.add(*p)).collect();
        let mut live = policies.clone();
        for r in remove {
            if live.is_empty() {
                break;
            }
            let i = r.index(live.len());
            prop_assert_eq!(spd.remove(ids[i]), Some(live[i]));
            ids.remove(i);
            live.remove(i);
        }
        for k in &keys {
            prop_assert_eq!(spd.lookup(k), model_lookup(&live, k));
        }
    }
}
