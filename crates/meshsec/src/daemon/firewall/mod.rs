//! The mesh's firewall: one nftables table of meshsec's own (`inet meshsec`; the host's other
//! tables are never touched) that makes the inventory's policy real (DESIGN.md §5):
//!
//! - `bypass` (route hook, output): bypass traffic (by default SSH and ICMP) gets meshsec's
//!   firewall mark, so it skips meshsec's routing table and leaves in the clear;
//! - `input` / `output` (filter hooks), the *require* rule: plaintext from and to the
//!   protected addresses is dropped and counted, except IKE, ESP, bypass traffic, loopback,
//!   and what comes out of or goes into meshsec's TUN device (decrypted, to be encrypted).
//!
//! Lifetime: by default the table is created with the owner flag on a netlink socket the
//! daemon holds, so the kernel removes it when the daemon ends — however it ends, `kill -9`
//! included: fail-open, an operator is never locked out by a dead daemon (the routes into
//! the TUN device vanish with it too). With `fail_closed = true` the table is an ordinary
//! one: it stays after a crash and keeps dropping plaintext until the daemon is back (a
//! normal stop removes it). Either way a start replaces any table left behind in one atomic
//! batch, so rules are never duplicated.

mod nft;

use std::net::IpAddr;

use anyhow::{Context, Result};
use nft::{Base, Batch, CmpOp, Expr, Hook, MetaKey, Nft, Verdict};

use crate::config::{Mesh, Prefix, Service};

/// The table's name.
pub const TABLE: &str = "meshsec";
/// `NFPROTO_IPV4` / `NFPROTO_IPV6` (meta nfproto).
const NFPROTO_IPV4: u8 = 2;
const NFPROTO_IPV6: u8 = 10;
/// Loopback's interface index in every network namespace.
const LOOPBACK_INDEX: u32 = 1;
const PROTO_ESP: u8 = 50;
const PROTO_UDP: u8 = 17;
const PROTO_ICMPV6: u8 = 58;
/// Route chains run before filter chains (`priority mangle`).
const PRIORITY_MANGLE: i32 = -150;
const PRIORITY_FILTER: i32 = 0;

/// The installed table (and the socket that owns it).
pub struct Firewall {
    nft: Nft,
}

impl Firewall {
    /// Installs the table for `mesh`: `tun_index` is meshsec's TUN device, `mark` the firewall
    /// mark of meshsec's own packets, `ike_ports` the UDP ports IKE and ESP-in-UDP use.
    pub fn install(mesh: &Mesh, tun_index: u32, mark: u32, ike_ports: [u16; 2]) -> Result<Self> {
        let nft = Nft::open().context("cannot open a netlink socket to nftables")?;
        let fw = Firewall { nft };
        fw.nft
            .apply(ruleset(mesh, tun_index, mark, ike_ports))
            .context("cannot install the nftables table inet meshsec")?;
        Ok(fw)
    }

    /// Replaces the table (after a reload changed the mesh).
    pub fn update(
        &mut self,
        mesh: &Mesh,
        tun_index: u32,
        mark: u32,
        ike_ports: [u16; 2],
    ) -> Result<()> {
        self.nft
            .apply(ruleset(mesh, tun_index, mark, ike_ports))
            .context("cannot replace the nftables table inet meshsec")
    }

    /// A normal stop: the table goes (with the owner flag it would go with the socket
    /// anyway).
    pub fn remove(self) {
        let mut b = Batch::new();
        b.del_table(TABLE);
        if let Err(e) = self.nft.apply(b) {
            tracing::warn!("cannot remove the nftables table inet meshsec: {e}");
        }
    }
}

/// The whole table as one batch: whatever table `meshsec` exists is replaced atomically (the
/// first `add table` without flags matches an ordinary leftover table and makes the delete
/// that follows valid when there is none).
fn ruleset(mesh: &Mesh, tun_index: u32, mark: u32, ike_ports: [u16; 2]) -> Batch {
    let mut b = Batch::new();
    b.add_table(TABLE, 0);
    b.del_table(TABLE);
    let flags = if mesh.fail_closed {
        0
    } else {
        nft::TABLE_F_OWNER
    };
    b.add_table(TABLE, flags);
    b.add_chain(TABLE, "bypass", "route", Hook::Output, PRIORITY_MANGLE);
    b.add_chain(TABLE, "input", "filter", Hook::Input, PRIORITY_FILTER);
    b.add_chain(TABLE, "output", "filter", Hook::Output, PRIORITY_FILTER);

    // bypass: mark it, so that it skips meshsec's routing table.
    let set_mark = [
        Expr::Immediate(mark.to_ne_bytes().to_vec()),
        Expr::MetaSet(MetaKey::Mark),
    ];
    for m in bypass_matches(&mesh.bypass, IcmpErrors::Protected) {
        b.add_rule(TABLE, "bypass", &[m, set_mark.to_vec()].concat());
    }

    // input: what may come in from protected addresses in the clear.
    let accept = Expr::Verdict(Verdict::Accept);
    let iface = |key: MetaKey, index: u32| {
        vec![
            Expr::Meta(key),
            Expr::Cmp(CmpOp::Eq, index.to_ne_bytes().to_vec()),
            Expr::Verdict(Verdict::Accept),
        ]
    };
    b.add_rule(TABLE, "input", &iface(MetaKey::Iif, LOOPBACK_INDEX));
    b.add_rule(TABLE, "input", &iface(MetaKey::Iif, tun_index));
    b.add_rule(
        TABLE,
        "input",
        &[proto(PROTO_ESP), vec![accept.clone()]].concat(),
    );
    for port in ike_ports {
        let m = [
            proto(PROTO_UDP),
            ports(Direction::Destination, port, port),
            vec![accept.clone()],
        ];
        b.add_rule(TABLE, "input", &m.concat());
    }
    for m in bypass_matches(&mesh.bypass, IcmpErrors::Bypassed) {
        b.add_rule(TABLE, "input", &[m, vec![accept.clone()]].concat());
    }
    // output: our own packets (IKE, ESP) and bypass carry the mark.
    b.add_rule(TABLE, "output", &iface(MetaKey::Oif, LOOPBACK_INDEX));
    b.add_rule(TABLE, "output", &iface(MetaKey::Oif, tun_index));
    b.add_rule(
        TABLE,
        "output",
        &[
            Expr::Meta(MetaKey::Mark),
            Expr::And(mark.to_ne_bytes().to_vec()),
            Expr::Cmp(CmpOp::Eq, mark.to_ne_bytes().to_vec()),
            accept,
        ],
    );

    // require: everything else from/to a protected address is dropped (and counted).
    let drop = [Expr::Counter, Expr::Verdict(Verdict::Drop)];
    let (hosts4, hosts6): (Vec<Vec<u8>>, Vec<Vec<u8>>) = {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for p in mesh.require.iter().filter(|p| is_host(p)) {
            match p.addr {
                IpAddr::V4(a) => v4.push(a.octets().to_vec()),
                IpAddr::V6(a) => v6.push(a.octets().to_vec()),
            }
        }
        (v4, v6)
    };
    let sets = [
        ("hosts4", 1u32, 4u32, hosts4, NFPROTO_IPV4, 12u32, 16u32),
        ("hosts6", 2, 16, hosts6, NFPROTO_IPV6, 8, 24),
    ];
    for (name, id, len, elements, family, src, dst) in sets {
        if elements.is_empty() {
            continue;
        }
        b.add_set(TABLE, name, id, len, &elements);
        for (chain, offset) in [("input", src), ("output", dst)] {
            let m = [
                nfproto(family),
                vec![
                    Expr::Payload(Base::Network, offset, len),
                    Expr::Lookup(name.into(), id),
                ],
                drop.to_vec(),
            ];
            b.add_rule(TABLE, chain, &m.concat());
        }
    }
    for p in mesh.require.iter().filter(|p| !is_host(p)) {
        let (family, len, src, dst, net, mask) = match p.addr {
            IpAddr::V4(a) => (
                NFPROTO_IPV4,
                4u32,
                12u32,
                16u32,
                a.octets().to_vec(),
                mask_bytes(4, p.len),
            ),
            IpAddr::V6(a) => (
                NFPROTO_IPV6,
                16,
                8,
                24,
                a.octets().to_vec(),
                mask_bytes(16, p.len),
            ),
        };
        for (chain, offset) in [("input", src), ("output", dst)] {
            let m = [
                nfproto(family),
                vec![
                    Expr::Payload(Base::Network, offset, len),
                    Expr::And(mask.clone()),
                    Expr::Cmp(CmpOp::Eq, net.clone()),
                ],
                drop.to_vec(),
            ];
            b.add_rule(TABLE, chain, &m.concat());
        }
    }
    b
}

/// A single address rather than a network.
fn is_host(p: &Prefix) -> bool {
    u32::from(p.len) == if p.addr.is_ipv4() { 32 } else { 128 }
}

/// A network mask of `len` bits in `octets` octets.
fn mask_bytes(octets: usize, len: u8) -> Vec<u8> {
    (0..octets)
        .map(|i| {
            let bits = usize::from(len).saturating_sub(i * 8).min(8);
            if bits == 0 { 0 } else { 0xffu8 << (8 - bits) }
        })
        .collect()
}

/// `meta nfproto FAMILY`.
fn nfproto(family: u8) -> Vec<Expr> {
    vec![
        Expr::Meta(MetaKey::NfProto),
        Expr::Cmp(CmpOp::Eq, vec![family]),
    ]
}

/// `meta l4proto PROTO`.
fn proto(p: u8) -> Vec<Expr> {
    vec![Expr::Meta(MetaKey::L4Proto), Expr::Cmp(CmpOp::Eq, vec![p])]
}

/// Which port of the transport header.
#[derive(Clone, Copy)]
enum Direction {
    Source,
    Destination,
}

/// `th sport|dport FIRST-LAST`.
fn ports(dir: Direction, first: u16, last: u16) -> Vec<Expr> {
    let offset = match dir {
        Direction::Source => 0,
        Direction::Destination => 2,
    };
    let load = Expr::Payload(Base::Transport, offset, 2);
    if first == last {
        return vec![load, Expr::Cmp(CmpOp::Eq, first.to_be_bytes().to_vec())];
    }
    vec![
        load,
        Expr::Cmp(CmpOp::Gte, first.to_be_bytes().to_vec()),
        Expr::Cmp(CmpOp::Lte, last.to_be_bytes().to_vec()),
    ]
}

/// Whether ICMP error messages count as bypassed ICMP.
#[derive(Clone, Copy, PartialEq, Eq)]
enum IcmpErrors {
    /// Yes (what may come in: refusing them protects nothing).
    Bypassed,
    /// No: an error about a packet quotes the packet, so errors about protected traffic
    /// must leave inside the SA like the traffic itself (RFC 4301 §6.2).
    Protected,
}

/// ICMP informational types (RFC 792/950/1256...): everything but the errors 3, 4, 5, 11, 12.
const ICMP_INFORMATIONAL: &[(u8, u8)] = &[(0, 2), (6, 10), (13, 255)];
/// ICMPv6 informational types (RFC 4443 §2.1: errors are 0-127).
const ICMPV6_INFORMATIONAL: &[(u8, u8)] = &[(128, 255)];
const PROTO_ICMP: u8 = 1;

/// `icmp type FIRST-LAST` (the type is the first octet of either ICMP header).
fn icmp_types(p: u8, (first, last): (u8, u8)) -> Vec<Expr> {
    [
        proto(p),
        vec![
            Expr::Payload(Base::Transport, 0, 1),
            Expr::Cmp(CmpOp::Gte, vec![first]),
            Expr::Cmp(CmpOp::Lte, vec![last]),
        ],
    ]
    .concat()
}

/// The matches for bypass traffic: each service either way (to its port, and from it for
/// the answers), and always IPv6 neighbour discovery (ICMPv6 133-137), without which no
/// IPv6 neighbour is reachable at all.
fn bypass_matches(services: &[Service], errors: IcmpErrors) -> Vec<Vec<Expr>> {
    let mut out = Vec::new();
    for s in services {
        let informational = match s.proto {
            PROTO_ICMP => ICMP_INFORMATIONAL,
            PROTO_ICMPV6 => ICMPV6_INFORMATIONAL,
            _ => &[],
        };
        if s.has_ports() {
            for dir in [Direction::Destination, Direction::Source] {
                out.push([proto(s.proto), ports(dir, s.first, s.last)].concat());
            }
        } else if errors == IcmpErrors::Protected && !informational.is_empty() {
            out.extend(informational.iter().map(|r| icmp_types(s.proto, *r)));
        } else {
            out.push(proto(s.proto));
        }
    }
    out.push(icmp_types(PROTO_ICMPV6, (133, 137)));
    out
}
