//! Fuzz target: the ESP receive path of the data plane.
//!
//! Two inbound SAs with NULL encryption and no integrity check (so that the fuzzer's bytes
//! reach everything after authentication: replay window, trailer and padding checks, tunnel
//! inner packet parsing, transport header rebuild, NAT checksum fix, selector check). The
//! first input octet picks the SA (tunnel or transport), the rest is the ESP packet after its
//! SPI. Whatever `open` delivers must lie within the buffer and start with an IP header.
#![no_main]

use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use meshsec_crypto::aead::AeadBackend;
use meshsec_crypto::rng::SystemRandom;
use meshsec_crypto::{Encr, Secret};
use meshsec_esp::lifetime::Lifetime;
use meshsec_esp::selector::{AddrRange, Selector};
use meshsec_esp::{DataPlane, Encap, HEADROOM, Mode, Opened, PacketBuf, SaParams, TAILROOM};

fn plane() -> DataPlane {
    let any = |a: &str| AddrRange::prefix(a.parse::<IpAddr>().unwrap(), 0);
    let mut dp = DataPlane::new(Box::new(SystemRandom::new()));
    for (spi, mode, fixup, family) in [
        (1u32, Mode::Tunnel, false, "0.0.0.0"),
        (2, Mode::Transport, true, "0.0.0.0"),
        (3, Mode::Tunnel, false, "::"),
    ] {
        let p = SaParams {
            spi,
            peer: meshsec_esp::PeerId::new(spi),
            mode,
            encap: Encap::None,
            local: "192.0.2.2".parse().unwrap(),
            remote: "192.0.2.1".parse().unwrap(),
            encr: Encr::Null,
            integ: None,
            encr_key: Secret::default(),
            integ_key: Secret::default(),
            esn: spi == 3,
            selectors: vec![Selector::between(any(family), any(family))],
            lifetime: Lifetime::default(),
            replay_window: 64,
            tfc_pad_to: None,
            iv_mask: 0,
            backend: AeadBackend::Ring,
            nat_transport_fixup: fixup,
        };
        dp.install_inbound(meshsec_esp::Timestamp::ZERO, p).unwrap();
    }
    dp
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let spi = u32::from(which % 3) + 1;
    let mut packet = spi.to_be_bytes().to_vec();
    packet.extend_from_slice(rest);
    let mut buf = vec![0u8; HEADROOM + packet.len() + TAILROOM];
    buf[HEADROOM..HEADROOM + packet.len()].copy_from_slice(&packet);
    let mut dp = plane();
    let end = HEADROOM + packet.len();
    let mut pkt = PacketBuf::new(&mut buf, HEADROOM, end);
    let (src, dst): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
    if let Ok(Opened::Packet { .. }) = dp.open(meshsec_esp::Timestamp::ZERO, &mut pkt, src, dst) {
        assert!(pkt.start <= pkt.end && pkt.end <= pkt.buf.len());
        let v = pkt.data().first().map(|b| b >> 4);
        assert!(
            v == Some(4) || v == Some(6),
            "delivered something that is not IP"
        );
    }
});
