//! Opening the sockets: UDP 500 and 4500 for each address family we have an address in, and
//! raw ESP (IP protocol 50) sockets for ESP without UDP encapsulation.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use anyhow::{Context, Result};
use socket2::{Domain, Protocol, Socket, Type};

use super::datapath::EspSockets;

/// IP protocol number of ESP.
const IPPROTO_ESP: i32 = 50;
/// Socket buffers large enough for a burst of batches at line rate.
const SOCKET_BUFFER: usize = 4 << 20;

fn udp(addr: SocketAddr, mark: u32) -> Result<std::net::UdpSocket> {
    let domain = if addr.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    };
    let s = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))
        .with_context(|| format!("cannot open a UDP socket for {addr}"))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_reuse_address(true)?;
    s.set_mark(mark)
        .context("cannot set the firewall mark (SO_MARK) on a UDP socket")?;
    let _ = s.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = s.set_send_buffer_size(SOCKET_BUFFER);
    s.bind(&addr.into()).with_context(|| {
        format!("cannot bind UDP {addr} (is another IKE daemon, e.g. charon, running?)")
    })?;
    Ok(s.into())
}

fn raw_esp(v4: bool, mark: u32) -> Result<Socket> {
    let domain = if v4 { Domain::IPV4 } else { Domain::IPV6 };
    let s = Socket::new(domain, Type::RAW, Some(Protocol::from(IPPROTO_ESP)))
        .context("cannot open a raw ESP socket (meshsec must run as root or with CAP_NET_RAW)")?;
    s.set_mark(mark)
        .context("cannot set the firewall mark (SO_MARK) on the raw ESP socket")?;
    let _ = s.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = s.set_send_buffer_size(SOCKET_BUFFER);
    Ok(s)
}

/// The IKE sockets on port 500 (the IKE loop owns them; port 4500 belongs to the data path).
pub struct IkeSockets {
    /// IPv4, port 500.
    pub v4: Option<tokio::net::UdpSocket>,
    /// IPv6, port 500.
    pub v6: Option<tokio::net::UdpSocket>,
}

/// Opens every socket for the families present in `addresses`, each carrying the firewall
/// mark `mark` (so that our IKE and ESP packets skip the routes into the tunnel).
pub fn open(
    addresses: &[IpAddr],
    ike_port: u16,
    nat_t_port: u16,
    mark: u32,
) -> Result<(IkeSockets, EspSockets)> {
    let v4 = addresses.iter().any(IpAddr::is_ipv4);
    let v6 = addresses.iter().any(IpAddr::is_ipv6);
    let any4 = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    let any6 = IpAddr::V6(Ipv6Addr::UNSPECIFIED);
    let ike = |any: IpAddr| -> Result<tokio::net::UdpSocket> {
        let s = udp(SocketAddr::new(any, ike_port), mark)?;
        s.set_nonblocking(true)?;
        Ok(tokio::net::UdpSocket::from_std(s)?)
    };
    let ike_sockets = IkeSockets {
        v4: if v4 { Some(ike(any4)?) } else { None },
        v6: if v6 { Some(ike(any6)?) } else { None },
    };
    let esp = EspSockets {
        udp4: if v4 {
            Some(udp(SocketAddr::new(any4, nat_t_port), mark)?)
        } else {
            None
        },
        udp6: if v6 {
            Some(udp(SocketAddr::new(any6, nat_t_port), mark)?)
        } else {
            None
        },
        raw4: if v4 { Some(raw_esp(true, mark)?) } else { None },
        raw6: if v6 {
            Some(raw_esp(false, mark)?)
        } else {
            None
        },
    };
    // Which of our addresses each datagram was sent to (we listen on the wildcard address):
    // the IKE engine needs it for NAT detection and the answer's source.
    for (s, v6) in [
        (
            ike_sockets.v4.as_ref().map(std::os::fd::AsRawFd::as_raw_fd),
            false,
        ),
        (
            ike_sockets.v6.as_ref().map(std::os::fd::AsRawFd::as_raw_fd),
            true,
        ),
        (
            esp.udp4.as_ref().map(std::os::fd::AsRawFd::as_raw_fd),
            false,
        ),
        (esp.udp6.as_ref().map(std::os::fd::AsRawFd::as_raw_fd), true),
    ] {
        if let Some(fd) = s
            && let Err(e) = super::os::enable_pktinfo(fd, v6)
        {
            tracing::warn!("no packet info on an IKE socket ({e}): assuming our first address");
        }
    }
    // Coalesced receives on the ESP-in-UDP sockets (the data path splits them again).
    for s in [&esp.udp4, &esp.udp6].into_iter().flatten() {
        if let Err(e) = super::os::enable_udp_gro(std::os::fd::AsRawFd::as_raw_fd(s)) {
            tracing::warn!("UDP GRO unavailable ({e}): receiving datagram by datagram");
        }
    }
    Ok((ike_sockets, esp))
}
