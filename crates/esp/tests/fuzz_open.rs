//! Random bytes and mutated real packets into `open` never panic and never deliver a packet
//! that was not sealed by the peer.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use meshsec_crypto::{Encr, Integ};
use meshsec_esp::{DataPlane, Mode, Opened, PacketBuf, SealOutcome};
use proptest::prelude::*;

fn planes(
    encr: Encr,
    integ: Option<Integ>,
    ek: usize,
    ik: usize,
    mode: Mode,
) -> (DataPlane, DataPlane) {
    let sel = selector("0.0.0.0/0", "0.0.0.0/0");
    let mut p = params(0x0101_0101, encr, integ, &vec![1; ek], &vec![2; ik], sel);
    p.mode = mode;
    p.esn = true;
    let mut a = dataplane();
    let mut b = dataplane();
    a.install_outbound(Default::default(), P, p.clone())
        .unwrap();
    a.add_policy(protect(sel, P));
    b.install_inbound(Default::default(), p).unwrap();
    (a, b)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn open_survives_garbage_and_tampering(
        garbage in prop::collection::vec(any::<u8>(), 0..200),
        flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4),
        cut in any::<prop::sample::Index>(),
        transport in any::<bool>(),
    ) {
        let mode = if transport { Mode::Transport } else { Mode::Tunnel };
        for (encr, integ, ek, ik) in [
            (gcm256(), None, 36, 0),
            (Encr::AesCbc { key_len: 16 }, Some(Integ::HmacSha256_128), 16, 32),
            (Encr::Null, Some(Integ::HmacSha256_128), 0, 32),
        ] {
            let (mut a, mut b) = planes(encr, integ, ek, ik, mode);
            let (src, dst) = (ip("10.0.0.1"), ip("10.0.0.2"));
            // Garbage, with our SPI so that it reaches the SA.
            let mut g = vec![1, 1, 1, 1];
            g.extend_from_slice(&garbage);
            let (mut buf, s, e) = framed(&g);
            prop_assert!(b.open(Default::default(), &mut PacketBuf::new(&mut buf, s, e), src, dst).is_err());
            // A real packet, tampered: never delivered.
            let inner = icmp4("10.0.0.1", "10.0.0.2", 40);
            let (mut buf, s, e) = framed(&inner);
            let mut pkt = PacketBuf::new(&mut buf, s, e);
            prop_assert!(matches!(a.seal(Default::default(), &mut pkt), Ok(SealOutcome::Sealed(_))));
            let mut esp = pkt.data().to_vec();
            for (at, x) in &flips {
                let i = at.index(esp.len());
                esp[i] ^= x;
            }
            let esp = &esp[..cut.index(esp.len()) + 1];
            let (mut buf, s, e) = framed(esp);
            let r = b.open(Default::default(), &mut PacketBuf::new(&mut buf, s, e), src, dst);
            // (A tampered SPI is parked for an SA that never comes: not delivered either.)
            prop_assert!(
                !matches!(r, Ok(Opened::Packet { .. } | Opened::Dummy { .. })),
                "tampered packet delivered"
            );
        }
    }
}
