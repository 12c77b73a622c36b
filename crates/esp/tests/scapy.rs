//! Independent implementation: Scapy's ESP (`scapy.layers.ipsec`, Debian `python3-scapy`)
//! opens what we seal and we open what it seals, for AES-GCM-128/256, AES-CBC + HMAC-SHA2-256
//! and ChaCha20-Poly1305, tunnel and transport, with and without ESN and UDP encapsulation.
//!
//! One Scapy 2.5 defect is worked around in the script: for ESP with an HMAC and ESN it leaves
//! the high half of the sequence number out of the ICV (RFC 4303 §2.2.1 puts it in, as Linux
//! and we do). There the script checks and recomputes the ICV with Python's own `hmac`, while
//! Scapy still does the AES-CBC encryption and decryption.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::process::Command;

use common::*;
use meshsec_crypto::aead::AeadAlg;
use meshsec_crypto::{Encr, Integ};
use meshsec_esp::{Encap, Mode, Opened, PacketBuf, SealOutcome};
use meshsec_vectors::Value;

/// Debian's interpreter, where python3-scapy is installed (not a pyenv one on PATH).
const PYTHON: &str = "/usr/bin/python3";

struct Suite {
    name: &'static str,
    encr: Encr,
    integ: Option<Integ>,
    ek: usize,
    ik: usize,
    scapy_crypt: &'static str,
    scapy_auth: &'static str,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn scapy_and_meshsec_open_each_others_packets() {
    let have_scapy = Command::new(PYTHON)
        .args(["-c", "import scapy.layers.ipsec"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        have_scapy,
        "python3-scapy is not installed (the README's test command installs it)"
    );
    let suites = [
        Suite {
            name: "aes128gcm",
            encr: Encr::Aead(AeadAlg::Aes128Gcm),
            integ: None,
            ek: 20,
            ik: 0,
            scapy_crypt: "AES-GCM",
            scapy_auth: "NULL",
        },
        Suite {
            name: "aes256gcm",
            encr: Encr::Aead(AeadAlg::Aes256Gcm),
            integ: None,
            ek: 36,
            ik: 0,
            scapy_crypt: "AES-GCM",
            scapy_auth: "NULL",
        },
        Suite {
            name: "aes128cbc-sha256",
            encr: Encr::AesCbc { key_len: 16 },
            integ: Some(Integ::HmacSha256_128),
            ek: 16,
            ik: 32,
            scapy_crypt: "AES-CBC",
            scapy_auth: "SHA2-256-128",
        },
        Suite {
            name: "chacha20poly1305",
            encr: Encr::Aead(AeadAlg::ChaCha20Poly1305),
            integ: None,
            ek: 36,
            ik: 0,
            scapy_crypt: "CHACHA20-POLY1305",
            scapy_auth: "NULL",
        },
    ];
    let mut cases = Vec::new();
    let mut receivers = Vec::new();
    let mut theirs_inner = Vec::new();
    for (n, s) in suites.iter().enumerate() {
        for mode in [Mode::Tunnel, Mode::Transport] {
            for esn in [false, true] {
                for udp_encap in [false, true] {
                    let spi = 0x1000 + cases.len() as u32;
                    let ek: Vec<u8> = (0..s.ek).map(|i| (i * 7 + n) as u8).collect();
                    let ik: Vec<u8> = (0..s.ik).map(|i| (i * 3 + 1) as u8).collect();
                    let (outer_src, outer_dst) = if mode == Mode::Tunnel {
                        ("198.51.100.1", "198.51.100.2")
                    } else {
                        ("10.1.0.1", "10.2.0.1")
                    };
                    let sel = selector("10.1.0.0/24", "10.2.0.0/24");
                    let mut p = params(spi, s.encr, s.integ, &ek, &ik, sel);
                    p.mode = mode;
                    p.esn = esn;
                    p.encap = if udp_encap {
                        Encap::Udp {
                            local_port: 4500,
                            remote_port: 4500,
                        }
                    } else {
                        Encap::None
                    };
                    p.local = ip(outer_src);
                    p.remote = ip(outer_dst);
                    let mut a = dataplane();
                    a.install_outbound(Default::default(), P, p.clone())
                        .unwrap();
                    a.add_policy(protect(sel, P));
                    if esn {
                        // Start near 2^32 so the high half matters.
                        a.debug_set_next_seq(P, (1u64 << 32) - 2);
                    }
                    let mut ours = Vec::new();
                    let first_seq: u64 = if esn { (1u64 << 32) - 2 } else { 1 };
                    for (i, len) in [0usize, 37, 500].into_iter().enumerate() {
                        let inner = udp("10.1.0.1", "10.2.0.1", 4000, 5000 + len as u16, len);
                        let (mut buf, st, en) = framed(&inner);
                        let mut pkt = PacketBuf::new(&mut buf, st, en);
                        assert!(matches!(
                            a.seal(Default::default(), &mut pkt),
                            Ok(SealOutcome::Sealed(_))
                        ));
                        ours.push(serde_json::json!({
                            "esp": hex(pkt.data()), "inner": hex(&inner), "seq": first_seq + i as u64,
                        }));
                    }
                    // The reverse direction: Scapy seals as 10.2.0.0/24's gateway would... but
                    // keys/SPI are the same SA, so we receive as the peer of this SA.
                    let mut rp = p.clone();
                    rp.selectors = vec![selector("10.2.0.0/24", "10.1.0.0/24")];
                    let mut b = dataplane();
                    b.install_inbound(Default::default(), rp).unwrap();
                    let mut theirs = Vec::new();
                    let mut inners = Vec::new();
                    for (i, len) in [3usize, 64, 700].into_iter().enumerate() {
                        let inner = udp("10.1.0.1", "10.2.0.1", 7000, 8000 + len as u16, len);
                        theirs.push(
                            serde_json::json!({"inner": hex(&inner), "seq": first_seq + i as u64}),
                        );
                        inners.push(inner);
                    }
                    cases.push(serde_json::json!({
                        "name": format!("{} {:?} esn={} udp={}", s.name, mode, esn, udp_encap),
                        "spi": spi, "crypt_algo": s.scapy_crypt, "crypt_key": hex(&ek),
                        "auth_algo": s.scapy_auth, "auth_key": hex(&ik), "esn": esn,
                        "mode": if mode == Mode::Tunnel { "tunnel" } else { "transport" },
                        "udp": udp_encap, "outer_src": outer_src, "outer_dst": outer_dst,
                        "ours": ours, "theirs": theirs,
                    }));
                    receivers.push((b, mode, outer_src, outer_dst));
                    theirs_inner.push(inners);
                }
            }
        }
    }
    let dir = std::env::temp_dir().join(format!("meshsec-scapy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (input, output) = (dir.join("in.json"), dir.join("out.json"));
    std::fs::write(&input, serde_json::to_string(&cases).unwrap()).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/scapy_esp.py");
    let run = Command::new(PYTHON)
        .arg(script)
        .arg(&input)
        .arg(&output)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "scapy script failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&output).unwrap()).unwrap();
    std::fs::remove_dir_all(&dir).ok();
    let mut checked = 0;
    for (i, case) in cases.iter().enumerate() {
        let name = case["name"].as_str().unwrap();
        for r in report[i]["ours"].as_array().unwrap() {
            assert_eq!(r, "ok", "{name}: Scapy could not open ours");
            checked += 1;
        }
        let (b, mode, src, dst) = &mut receivers[i];
        for (esp_hex, inner) in report[i]["theirs"]
            .as_array()
            .unwrap()
            .iter()
            .zip(&theirs_inner[i])
        {
            let esp = hex_decode(esp_hex.as_str().unwrap());
            let (mut buf, st, en) = framed(&esp);
            let mut pkt = PacketBuf::new(&mut buf, st, en);
            let r = b.open(Default::default(), &mut pkt, ip(src), ip(dst));
            assert!(
                matches!(r, Ok(Opened::Packet { .. })),
                "{name}: we could not open Scapy's: {r:?}"
            );
            if *mode == Mode::Tunnel {
                assert_eq!(pkt.data(), inner.as_slice(), "{name}");
            } else {
                assert_eq!(&pkt.data()[20..], &inner[20..], "{name}");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 32 * 6);
}

fn hex_decode(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}
