//! Fuzz target: the port-4500 receive path as the daemon runs it — each datagram classified
//! (RFC 3948: NAT keepalive, IKE behind the non-ESP marker, or ESP); IKE goes to a node's
//! engine (the insecure crypto provider lets the fuzzer's messages pass ICV and AUTH checks,
//! so a fuzzed handshake can establish SAs and install them in the data plane), ESP to the
//! node's data plane (one NULL-encryption SA, so bytes reach the checks after authentication),
//! unknown-SPI reports back to the node. Whatever comes out is checked: answers go only to
//! the sender and are never much larger than what provoked them; delivered packets are IP.
//!
//! Input: datagrams each preceded by a 2-octet big-endian length (a remainder without a
//! prefix is one more datagram). After our first IKE answer, the harness writes our SPI into
//! the SPIr field of later IKE messages so that they reach the SA.
#![no_main]

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use meshsec_crypto::aead::AeadBackend;
use meshsec_crypto::{Encr, Provider, Secret};
use meshsec_esp::lifetime::Lifetime;
use meshsec_esp::selector::{AddrRange, Selector};
use meshsec_esp::{DataPlane, Encap, HEADROOM, Mode, Opened, PacketBuf, SaParams, TAILROOM};
use meshsec_ike::proposal::ProposalSpec;
use meshsec_ike::{ChildMode, Endpoint, EndpointConfig, PeerConfig};
use meshsec_node::{Command, Node, PeerPolicy};
use meshsec_sim::SeededRandom;
use meshsec_types::Timestamp;
use meshsec_wire::payload::{AddrSelector, Identity};
use meshsec_wire::registry::ProtocolId;
use meshsec_wire::udp_encap::{Udp4500, classify};

const PEER: &str = "192.0.2.1:4500";
const ME: &str = "192.0.2.2:4500";

fn node() -> (Node<Arc<Mutex<DataPlane>>>, Arc<Mutex<DataPlane>>) {
    let range = |a: &str, b: &str| AddrSelector::range(a.parse().unwrap(), b.parse().unwrap());
    let peer = PeerConfig {
        name: "fuzz".into(),
        remote_addr: "192.0.2.1:500".parse().unwrap(),
        accept_from: Vec::new(),
        local_id: Identity::Fqdn(Cow::Borrowed(b"right")),
        remote_id: Identity::Fqdn(Cow::Borrowed(b"left")),
        psk: Secret::from_slice(b"insecure provider: any AUTH passes"),
        local_auth: Default::default(),
        peer_auth: Default::default(),
        ike_proposals: vec![
            ProposalSpec::parse("aes256gcm16-prfsha256-x25519", ProtocolId::IKE).unwrap(),
        ],
        esp_proposals: vec![ProposalSpec::parse("aes256gcm16-esn-noesn", ProtocolId::ESP).unwrap()],
        local_ts: vec![range("10.2.0.0", "10.2.255.255")],
        remote_ts: vec![range("10.1.0.0", "10.1.255.255")],
        mode: ChildMode::Tunnel,
        accept_narrowing: true,
        child_lifetime: None,
        ike_lifetime: None,
        reauth_lifetime: None,
    };
    let ike = Endpoint::new(
        EndpointConfig::new("192.0.2.2:500".parse().unwrap()),
        Vec::new(),
        Box::new(SeededRandom::new(1)),
        Provider::Insecure,
    );
    let plane = Arc::new(Mutex::new(DataPlane::new(Box::new(SeededRandom::new(2)))));
    let any = |a: &str| AddrRange::prefix(a.parse::<IpAddr>().unwrap(), 0);
    let null_sa = SaParams {
        spi: 1,
        peer: meshsec_types::PeerId::new(7),
        mode: Mode::Tunnel,
        encap: Encap::Udp {
            local_port: 4500,
            remote_port: 4500,
        },
        local: "192.0.2.2".parse().unwrap(),
        remote: "192.0.2.1".parse().unwrap(),
        encr: Encr::Null,
        integ: None,
        encr_key: Secret::default(),
        integ_key: Secret::default(),
        esn: false,
        selectors: vec![Selector::between(any("0.0.0.0"), any("0.0.0.0"))],
        lifetime: Lifetime::default(),
        replay_window: 64,
        tfc_pad_to: None,
        iv_mask: 0,
        backend: AeadBackend::Ring,
        nat_transport_fixup: false,
    };
    plane
        .lock()
        .unwrap()
        .install_inbound(Timestamp::ZERO, null_sa)
        .unwrap();
    let mut node = Node::new(ike, Arc::clone(&plane), Box::new(SeededRandom::new(3)));
    node.handle_command(Timestamp::ZERO, Command::AddPeer(PeerPolicy::passive(peer)))
        .unwrap();
    (node, plane)
}

fuzz_target!(|data: &[u8]| {
    let (mut node, plane) = node();
    let (from, to): (SocketAddr, SocketAddr) = (PEER.parse().unwrap(), ME.parse().unwrap());
    let mut our_spi: Option<[u8; 8]> = None;
    let mut rest = data;
    let mut now = Timestamp::ZERO;
    while !rest.is_empty() {
        let (datagram, tail) = match rest {
            [a, b, tail @ ..] if usize::from(u16::from_be_bytes([*a, *b])) <= tail.len() => {
                let n = usize::from(u16::from_be_bytes([*a, *b]));
                (&tail[..n], &tail[n..])
            }
            _ => (rest, &[][..]),
        };
        rest = tail;
        let provoked = datagram.len();
        match classify(datagram) {
            Ok(Udp4500::Ike(msg)) => {
                let mut msg = msg.to_vec();
                if let Some(spi) = our_spi
                    && msg.len() >= 16
                {
                    msg[8..16].copy_from_slice(&spi);
                }
                node.handle_ike_datagram(now, from, to, &msg);
            }
            Ok(Udp4500::Esp(esp)) => {
                let mut buf = vec![0u8; HEADROOM + esp.len() + TAILROOM];
                buf[HEADROOM..HEADROOM + esp.len()].copy_from_slice(esp);
                let mut pkt = PacketBuf::new(&mut buf, HEADROOM, HEADROOM + esp.len());
                let opened = plane
                    .lock()
                    .unwrap()
                    .open(now, &mut pkt, from.ip(), to.ip());
                if let Ok(Opened::Packet { .. }) = opened {
                    assert!(pkt.start <= pkt.end && pkt.end <= pkt.buf.len());
                    let v = pkt.data().first().map(|b| b >> 4);
                    assert!(
                        v == Some(4) || v == Some(6),
                        "delivered something that is not IP"
                    );
                }
                node.handle_backend_reports(now);
            }
            Ok(Udp4500::NatKeepalive) | Err(_) => {}
        }
        while let Some(t) = node.poll_transmit() {
            assert_eq!(t.dst.ip(), from.ip(), "answered someone else");
            assert!(
                t.payload.len() <= 3 * provoked.max(200),
                "{} > 3 × {provoked}",
                t.payload.len()
            );
            if our_spi.is_none() && t.payload.len() >= 16 {
                our_spi = t.payload[8..16].try_into().ok();
            }
        }
        while node.poll_os().is_some() {}
        while node.poll_event().is_some() {}
        now += Duration::from_millis(700);
        node.handle_timeout(now);
        while node.poll_transmit().is_some() {}
    }
});
