//! Criterion benches of the ESP data plane: seal and open per packet size and suite, a batch of
//! 64, a NULL-cipher run (framing cost alone) and the raw ring AES-256-GCM seal as the
//! baseline the data plane is compared to.
//!
//! Run: `cargo bench -p meshsec-esp --bench esp`.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use meshsec_crypto::aead::{AeadAlg, AeadBackend};
use meshsec_crypto::{Encr, Integ};
use meshsec_esp::{DataPlane, HEADROOM, PacketBuf, PeerId, TAILROOM, Timestamp};

const P: PeerId = PeerId::new(1);

const SIZES: [usize; 4] = [64, 512, 1420, 8192];

fn inner(len: usize) -> Vec<u8> {
    let mut p = vec![0u8; len];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
    p[9] = 17;
    p[12..16].copy_from_slice(&[10, 1, 0, 1]);
    p[16..20].copy_from_slice(&[10, 2, 0, 1]);
    p
}

struct Suite {
    name: &'static str,
    encr: Encr,
    integ: Option<Integ>,
    ek: usize,
    ik: usize,
}

fn planes(s: &Suite, backend: AeadBackend) -> (DataPlane, DataPlane) {
    let sel = common::selector("10.1.0.0/16", "10.2.0.0/16");
    let mut p = common::params(0x1234, s.encr, s.integ, &vec![7; s.ek], &vec![8; s.ik], sel);
    p.esn = true;
    p.replay_window = 4096;
    p.iv_mask = 0x5555;
    p.backend = backend;
    let mut a = common::dataplane();
    a.install_outbound(Timestamp::ZERO, P, p.clone()).unwrap();
    a.add_policy(common::protect(sel, P));
    p.selectors = vec![common::selector("10.2.0.0/16", "10.1.0.0/16")];
    let mut b = common::dataplane();
    b.install_inbound(Timestamp::ZERO, p).unwrap();
    (a, b)
}

fn suites() -> Vec<Suite> {
    vec![
        Suite {
            name: "aes256gcm",
            encr: Encr::Aead(AeadAlg::Aes256Gcm),
            integ: None,
            ek: 36,
            ik: 0,
        },
        Suite {
            name: "aes128gcm",
            encr: Encr::Aead(AeadAlg::Aes128Gcm),
            integ: None,
            ek: 20,
            ik: 0,
        },
        Suite {
            name: "chacha20poly1305",
            encr: Encr::Aead(AeadAlg::ChaCha20Poly1305),
            integ: None,
            ek: 36,
            ik: 0,
        },
        Suite {
            name: "aes128cbc-sha256",
            encr: Encr::AesCbc { key_len: 16 },
            integ: Some(Integ::HmacSha256_128),
            ek: 16,
            ik: 32,
        },
        Suite {
            name: "null",
            encr: Encr::Null,
            integ: None,
            ek: 0,
            ik: 0,
        },
    ]
}

fn seal_open(c: &mut Criterion) {
    for s in suites() {
        let mut g = c.benchmark_group(format!("esp/{}", s.name));
        for size in SIZES {
            g.throughput(Throughput::Bytes(size as u64));
            let (mut a, mut b) = planes(&s, AeadBackend::Ring);
            let pkt = inner(size);
            let mut buf = vec![0u8; HEADROOM + size + TAILROOM];
            g.bench_function(BenchmarkId::new("seal", size), |bench| {
                bench.iter(|| {
                    buf[HEADROOM..HEADROOM + size].copy_from_slice(&pkt);
                    let mut p = PacketBuf::new(&mut buf, HEADROOM, HEADROOM + size);
                    black_box(a.seal(Timestamp::ZERO, &mut p).unwrap());
                })
            });
            g.bench_function(BenchmarkId::new("open", size), |bench| {
                bench.iter_batched(
                    || {
                        let mut buf = vec![0u8; HEADROOM + size + TAILROOM];
                        buf[HEADROOM..HEADROOM + size].copy_from_slice(&pkt);
                        let mut p = PacketBuf::new(&mut buf, HEADROOM, HEADROOM + size);
                        a.seal(Timestamp::ZERO, &mut p).unwrap();
                        let (st, en) = (p.start, p.end);
                        (buf, st, en)
                    },
                    |(mut buf, st, en)| {
                        let mut p = PacketBuf::new(&mut buf, st, en);
                        black_box(
                            b.open(
                                Timestamp::ZERO,
                                &mut p,
                                common::ip("198.51.100.1"),
                                common::ip("198.51.100.2"),
                            )
                            .unwrap(),
                        );
                        buf
                    },
                    BatchSize::SmallInput,
                )
            });
        }
        g.finish();
    }
}

/// The same AES-256-GCM work without the data plane: copy the packet in, seal with ring.
fn raw_baseline(c: &mut Criterion) {
    let mut g = c.benchmark_group("esp/aes256gcm");
    for size in SIZES {
        g.throughput(Throughput::Bytes(size as u64));
        let key = ring::aead::LessSafeKey::new(
            ring::aead::UnboundKey::new(&ring::aead::AES_256_GCM, &[7; 32]).unwrap(),
        );
        let pkt = inner(size);
        let mut buf = vec![0u8; size + 16];
        let mut n: u64 = 0;
        g.bench_function(BenchmarkId::new("raw-ring-seal", size), |bench| {
            bench.iter(|| {
                buf[..size].copy_from_slice(&pkt);
                n += 1;
                let mut nonce = [0u8; 12];
                nonce[4..].copy_from_slice(&n.to_be_bytes());
                let tag = key
                    .seal_in_place_separate_tag(
                        ring::aead::Nonce::assume_unique_for_key(nonce),
                        ring::aead::Aad::from(&[1u8; 8]),
                        &mut buf[..size],
                    )
                    .unwrap();
                buf[size..].copy_from_slice(tag.as_ref());
            })
        });
    }
    g.finish();
}

fn batch(c: &mut Criterion) {
    let s = &suites()[0];
    let (mut a, _) = planes(s, AeadBackend::Ring);
    let size = 1420;
    let pkt = inner(size);
    let mut g = c.benchmark_group("esp/aes256gcm-batch64");
    g.throughput(Throughput::Bytes((64 * size) as u64));
    let mut bufs: Vec<Vec<u8>> = (0..64)
        .map(|_| vec![0u8; HEADROOM + size + TAILROOM])
        .collect();
    let mut results = vec![Err(meshsec_esp::DropReason::NoRoom); 64];
    g.bench_function("seal/1420", |bench| {
        bench.iter(|| {
            let mut pkts: Vec<PacketBuf<'_>> = bufs
                .iter_mut()
                .map(|b| {
                    b[HEADROOM..HEADROOM + size].copy_from_slice(&pkt);
                    PacketBuf::new(b, HEADROOM, HEADROOM + size)
                })
                .collect();
            a.seal_batch(Timestamp::ZERO, &mut pkts, &mut results);
            black_box(&results);
        })
    });
    g.finish();
}

criterion_group!(benches, seal_open, raw_baseline, batch);
criterion_main!(benches);
