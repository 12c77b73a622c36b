//! Criterion bench of the outbound SPD lookup at 10 / 100 / 1,000 / 10,000 policies: a mesh
//! host's policies (one remote address each, found by hash), prefix policies (scanned), and
//! as the baseline a linear first-match scan over the same host policies sorted by
//! specificity (the SPD before the index).
//!
//! Run: `cargo bench -p meshsec-esp --bench spd`.
#![allow(missing_docs, clippy::unwrap_used, clippy::indexing_slicing)]

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use meshsec_esp::PeerId;
use meshsec_esp::selector::{AddrRange, PacketKey, Selector};
use meshsec_esp::spd::{Action, Policy, Spd};

const ME: Ipv4Addr = Ipv4Addr::new(10, 255, 255, 254);

fn host(i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i))
}

/// Policy `i`: us to host `i` (a mesh pair), or to the /30 that starts at `4 i` (overlay).
fn policy(i: u32, prefix: bool) -> Policy {
    let local = AddrRange::prefix(IpAddr::V4(ME), 32);
    let remote = if prefix {
        AddrRange::prefix(host(4 * i), 30)
    } else {
        AddrRange::prefix(host(i), 32)
    };
    Policy {
        selector: Selector::between(local, remote),
        action: Action::Protect(PeerId::new(i)),
    }
}

fn key(dst: IpAddr) -> PacketKey {
    PacketKey {
        src: IpAddr::V4(ME),
        dst,
        proto: 6,
        sport: 40000,
        dport: 443,
        opaque_ports: false,
    }
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("spd_lookup");
    for n in [10u32, 100, 1_000, 10_000] {
        // Destinations spread over all policies (a lookup per packet, as the TUN thread does).
        let keys: Vec<PacketKey> = (0..256u32).map(|j| key(host((j * 7919) % n))).collect();
        let prefix_keys: Vec<PacketKey> = (0..256u32)
            .map(|j| key(host(4 * ((j * 7919) % n) + 1)))
            .collect();
        for (name, prefix, keys) in [("hosts", false, &keys), ("prefixes", true, &prefix_keys)] {
            let mut spd = Spd::new();
            for i in 0..n {
                spd.add(policy(i, prefix));
            }
            g.bench_with_input(BenchmarkId::new(name, n), &n, |b, _| {
                b.iter(|| {
                    for k in keys {
                        black_box(spd.lookup(black_box(k)));
                    }
                });
            });
        }
        // Baseline: the linear scan the SPD did before (first match in specificity order).
        let mut linear: Vec<Policy> = (0..n).map(|i| policy(i, false)).collect();
        linear.sort_by_key(|p| p.selector.specificity());
        g.bench_with_input(BenchmarkId::new("linear_hosts", n), &n, |b, _| {
            b.iter(|| {
                for k in &keys {
                    black_box(
                        linear
                            .iter()
                            .find(|p| p.selector.matches_outbound(black_box(k))),
                    );
                }
            });
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
