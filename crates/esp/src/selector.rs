//! Traffic selectors (RFC 4301 §4.4.1) and the fields of an IP packet they match on.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// IP protocol numbers whose first four payload octets are source and destination ports.
const fn has_ports(proto: u8) -> bool {
    matches!(proto, 6 | 17 | 132 | 136) // TCP, UDP, SCTP, UDP-Lite
}

/// The selector fields of one IP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketKey {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// IP protocol (IPv6: the first Next Header).
    pub proto: u8,
    /// Source port (0 if the protocol has none, or for non-first fragments).
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// True when ports are unknowable (non-first IPv4 fragment): only selectors that allow
    /// every port match (RFC 4301 "OPAQUE").
    pub opaque_ports: bool,
}

/// Total length announced by the IP header at the start of `ip` (for stripping TFC padding).
pub fn ip_total_len(ip: &[u8]) -> Option<usize> {
    match ip.first()? >> 4 {
        4 => Some(usize::from(u16::from_be_bytes([*ip.get(2)?, *ip.get(3)?]))),
        6 => Some(40 + usize::from(u16::from_be_bytes([*ip.get(4)?, *ip.get(5)?]))),
        _ => None,
    }
}

/// Reads the selector fields of an IPv4 or IPv6 packet.
pub fn packet_key(ip: &[u8]) -> Option<PacketKey> {
    let version = ip.first()? >> 4;
    let (src, dst, proto, l4, fragment_offset): (IpAddr, IpAddr, u8, usize, u16) = match version {
        4 => {
            let ihl = usize::from(ip.first()? & 0x0f) * 4;
            if ihl < 20 || ip.len() < ihl {
                return None;
            }
            let src: [u8; 4] = ip.get(12..16)?.try_into().ok()?;
            let dst: [u8; 4] = ip.get(16..20)?.try_into().ok()?;
            let frag = u16::from_be_bytes([*ip.get(6)?, *ip.get(7)?]) & 0x1fff;
            (
                Ipv4Addr::from(src).into(),
                Ipv4Addr::from(dst).into(),
                *ip.get(9)?,
                ihl,
                frag,
            )
        }
        6 => {
            let src: [u8; 16] = ip.get(8..24)?.try_into().ok()?;
            let dst: [u8; 16] = ip.get(24..40)?.try_into().ok()?;
            (
                Ipv6Addr::from(src).into(),
                Ipv6Addr::from(dst).into(),
                *ip.get(6)?,
                40,
                0,
            )
        }
        _ => return None,
    };
    let (sport, dport, opaque_ports) = if !has_ports(proto) {
        (0, 0, false)
    } else if fragment_offset != 0 {
        (0, 0, true)
    } else {
        match ip.get(l4..l4 + 4).and_then(|p| <[u8; 4]>::try_from(p).ok()) {
            Some([s0, s1, d0, d1]) => (
                u16::from_be_bytes([s0, s1]),
                u16::from_be_bytes([d0, d1]),
                false,
            ),
            None => (0, 0, true),
        }
    };
    Some(PacketKey {
        src,
        dst,
        proto,
        sport,
        dport,
        opaque_ports,
    })
}

/// An inclusive address range of one family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddrRange {
    /// First address.
    pub start: IpAddr,
    /// Last address.
    pub end: IpAddr,
}

fn as_u128(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v) => u128::from(u32::from(v)),
        IpAddr::V6(v) => u128::from(v),
    }
}

impl AddrRange {
    /// The range of a prefix, e.g. 10.1.0.0/24.
    pub fn prefix(addr: IpAddr, len: u8) -> AddrRange {
        match addr {
            IpAddr::V4(a) => {
                let len = u32::from(len.min(32));
                let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
                let start = u32::from(a) & mask;
                AddrRange {
                    start: Ipv4Addr::from(start).into(),
                    end: Ipv4Addr::from(start | !mask).into(),
                }
            }
            IpAddr::V6(a) => {
                let len = u32::from(len.min(128));
                let mask = if len == 0 {
                    0
                } else {
                    u128::MAX << (128 - len)
                };
                let start = u128::from(a) & mask;
                AddrRange {
                    start: Ipv6Addr::from(start).into(),
                    end: Ipv6Addr::from(start | !mask).into(),
                }
            }
        }
    }

    /// A single address.
    pub fn host(addr: IpAddr) -> AddrRange {
        AddrRange {
            start: addr,
            end: addr,
        }
    }

    /// True if `a` is in the range (same family only).
    pub fn contains(&self, a: IpAddr) -> bool {
        a.is_ipv4() == self.start.is_ipv4()
            && as_u128(self.start) <= as_u128(a)
            && as_u128(a) <= as_u128(self.end)
    }

    /// Number of addresses minus one (smaller is more specific).
    pub fn span(&self) -> u128 {
        as_u128(self.end).saturating_sub(as_u128(self.start))
    }
}

/// A traffic selector pair as negotiated (TSi/TSr seen from our side): which packets a
/// policy or SA covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Selector {
    /// Our side's addresses.
    pub local: AddrRange,
    /// The peer's side's addresses.
    pub remote: AddrRange,
    /// IP protocol, 0 for any.
    pub proto: u8,
    /// Our side's ports (inclusive).
    pub local_ports: (u16, u16),
    /// The peer's side's ports (inclusive).
    pub remote_ports: (u16, u16),
}

const ALL_PORTS: (u16, u16) = (0, u16::MAX);

/// Sort key of a selector; smaller is more specific (see [`Selector::specificity`]).
pub type Specificity = (u128, u128, bool, u32, u32);

impl Selector {
    /// Every protocol and port between two address ranges.
    pub fn between(local: AddrRange, remote: AddrRange) -> Selector {
        Selector {
            local,
            remote,
            proto: 0,
            local_ports: ALL_PORTS,
            remote_ports: ALL_PORTS,
        }
    }

    fn ports_match(&self, key: &PacketKey, local: u16, remote: u16) -> bool {
        if key.opaque_ports {
            return self.local_ports == ALL_PORTS && self.remote_ports == ALL_PORTS;
        }
        (self.local_ports.0..=self.local_ports.1).contains(&local)
            && (self.remote_ports.0..=self.remote_ports.1).contains(&remote)
    }

    /// Does an outbound packet (from local to remote) match?
    pub fn matches_outbound(&self, key: &PacketKey) -> bool {
        self.local.contains(key.src)
            && self.remote.contains(key.dst)
            && (self.proto == 0 || self.proto == key.proto)
            && self.ports_match(key, key.sport, key.dport)
    }

    /// Does an inbound packet (from remote to local) match?
    pub fn matches_inbound(&self, key: &PacketKey) -> bool {
        self.local.contains(key.dst)
            && self.remote.contains(key.src)
            && (self.proto == 0 || self.proto == key.proto)
            && self.ports_match(key, key.dport, key.sport)
    }

    /// Sort key: smaller is more specific (remote range, then local range, then a specific
    /// protocol, then port ranges) — "longest prefix wins" generalised to ranges.
    pub fn specificity(&self) -> Specificity {
        (
            self.remote.span(),
            self.local.span(),
            self.proto == 0,
            u32::from(self.remote_ports.1.saturating_sub(self.remote_ports.0)),
            u32::from(self.local_ports.1.saturating_sub(self.local_ports.0)),
        )
    }
}
