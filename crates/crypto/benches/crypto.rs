//! Criterion benches: AEAD seal/open per size and backend (with the raw backend call beside
//! ours, to show the wrapper's cost), each key exchange, prf+ and SK payload protection.
//!
//! Run: `cargo bench -p meshsec-crypto --bench crypto` (add `-- aead` etc. to filter).
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use meshsec_crypto::aead::{AeadAlg, AeadBackend, AeadKey};
use meshsec_crypto::ke::KeyExchange;
use meshsec_crypto::keys::IkeSuite;
use meshsec_crypto::rng::SystemRandom;
use meshsec_crypto::sk::SkKey;
use meshsec_crypto::{Encr, Prf};
use meshsec_wire::registry::{ExchangeType, KeMethod, PayloadType};
use meshsec_wire::{Flags, Header};

const SIZES: [usize; 4] = [64, 512, 1420, 8192];

fn aead(c: &mut Criterion) {
    let keymat = [7u8; 36];
    let iv = [1u8; 8];
    let aad = [2u8; 8];
    for (alg, name) in [
        (AeadAlg::Aes256Gcm, "aes256gcm"),
        (AeadAlg::Aes128Gcm, "aes128gcm"),
        (AeadAlg::ChaCha20Poly1305, "chacha20poly1305"),
    ] {
        let keymat = &keymat[..alg.key_len() + 4];
        let mut g = c.benchmark_group(format!("aead/{name}"));
        for size in SIZES {
            g.throughput(Throughput::Bytes(size as u64));
            let mut buf = vec![0u8; size + 16];
            for (backend, bname) in [(AeadBackend::Ring, "ring"), (AeadBackend::AwsLc, "aws-lc")] {
                let key = AeadKey::new(alg, backend, keymat).unwrap();
                g.bench_function(BenchmarkId::new(format!("seal/{bname}"), size), |b| {
                    b.iter(|| {
                        key.seal_in_place(&iv, &aad, black_box(&mut buf[..size]))
                            .unwrap()
                    })
                });
                let tag = key.seal_in_place(&iv, &aad, &mut buf[..size]).unwrap();
                buf[size..].copy_from_slice(&tag);
                let sealed = buf.clone();
                g.bench_function(BenchmarkId::new(format!("open/{bname}"), size), |b| {
                    b.iter(|| {
                        buf.copy_from_slice(&sealed);
                        key.open_in_place(&iv, &aad, black_box(&mut buf)).unwrap()
                    })
                });
            }
            // The raw backend calls, without our wrapper, for the overhead comparison.
            let ring_alg = match alg {
                AeadAlg::Aes128Gcm => &ring::aead::AES_128_GCM,
                AeadAlg::Aes256Gcm => &ring::aead::AES_256_GCM,
                AeadAlg::ChaCha20Poly1305 => &ring::aead::CHACHA20_POLY1305,
            };
            let raw = ring::aead::LessSafeKey::new(
                ring::aead::UnboundKey::new(ring_alg, &keymat[..alg.key_len()]).unwrap(),
            );
            let nonce = [[7u8; 4].as_slice(), &iv].concat();
            g.bench_function(BenchmarkId::new("seal/ring-raw", size), |b| {
                b.iter(|| {
                    let n = ring::aead::Nonce::try_assume_unique_for_key(&nonce).unwrap();
                    raw.seal_in_place_separate_tag(
                        n,
                        ring::aead::Aad::from(&aad),
                        black_box(&mut buf[..size]),
                    )
                    .unwrap()
                })
            });
            let aws_alg = match alg {
                AeadAlg::Aes128Gcm => &aws_lc_rs::aead::AES_128_GCM,
                AeadAlg::Aes256Gcm => &aws_lc_rs::aead::AES_256_GCM,
                AeadAlg::ChaCha20Poly1305 => &aws_lc_rs::aead::CHACHA20_POLY1305,
            };
            let raw = aws_lc_rs::aead::LessSafeKey::new(
                aws_lc_rs::aead::UnboundKey::new(aws_alg, &keymat[..alg.key_len()]).unwrap(),
            );
            g.bench_function(BenchmarkId::new("seal/aws-lc-raw", size), |b| {
                b.iter(|| {
                    let n = aws_lc_rs::aead::Nonce::try_assume_unique_for_key(&nonce).unwrap();
                    raw.seal_in_place_separate_tag(
                        n,
                        aws_lc_rs::aead::Aad::from(&aad),
                        black_box(&mut buf[..size]),
                    )
                    .unwrap()
                })
            });
        }
        g.finish();
    }
}

fn key_exchange(c: &mut Criterion) {
    let mut g = c.benchmark_group("ke");
    g.sample_size(20);
    let mut rng = SystemRandom::new();
    for m in [
        KeMethod::CURVE25519,
        KeMethod::ECP_256,
        KeMethod::ECP_384,
        KeMethod::ECP_521,
        KeMethod::MODP_2048,
        KeMethod::MODP_3072,
        KeMethod::MODP_4096,
    ] {
        let peer = KeyExchange::generate(m, &mut rng).unwrap();
        let name = m.to_string();
        // One side's full cost: generate a private value and public value, then agree.
        g.bench_function(BenchmarkId::new("generate+agree", &name), |b| {
            b.iter(|| {
                let kx = KeyExchange::generate(m, &mut rng).unwrap();
                kx.agree(black_box(peer.public_value())).unwrap()
            })
        });
    }
    g.finish();
}

fn prf_plus(c: &mut Criterion) {
    let mut g = c.benchmark_group("prf+");
    let key = [9u8; 32];
    let seed = [3u8; 80];
    for prf in [Prf::HmacSha256, Prf::HmacSha384, Prf::HmacSha512] {
        // The IKE SA keys for AES-256-GCM: 3 × prf length + 2 × 36.
        let len = 3 * prf.output_len() + 72;
        g.bench_function(BenchmarkId::new(format!("{prf:?}"), len), |b| {
            b.iter(|| prf.plus(&key, &[black_box(&seed)], len).unwrap())
        });
    }
    g.finish();
}

fn sk_payload(c: &mut Criterion) {
    let mut g = c.benchmark_group("sk");
    let suite = IkeSuite {
        encr: Encr::Aead(AeadAlg::Aes256Gcm),
        prf: Prf::HmacSha256,
        integ: None,
    };
    let sk = SkKey::new(&suite, &[5; 36], &[]).unwrap();
    let header = Header {
        spi_i: 1,
        spi_r: 2,
        minor_version: 0,
        exchange: ExchangeType::IKE_AUTH,
        flags: Flags::INITIATOR,
        message_id: 1,
    };
    let inner = vec![0u8; 300];
    let mut rng = SystemRandom::new();
    let msg = sk
        .seal(&header, PayloadType::IDI, &inner, &mut rng)
        .unwrap();
    g.bench_function("seal/aes256gcm/300", |b| {
        b.iter(|| {
            sk.seal(&header, PayloadType::IDI, black_box(&inner), &mut rng)
                .unwrap()
        })
    });
    g.bench_function("open/aes256gcm/300", |b| {
        b.iter(|| sk.open(black_box(&msg)).unwrap())
    });
    g.finish();
}

criterion_group!(benches, aead, key_exchange, prf_plus, sk_payload);
criterion_main!(benches);
