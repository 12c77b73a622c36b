//! The mesh's firewall: one nftables table of meshsec's own (`inet meshsec`; the host's other
//! tables are never touched) that makes the inventory's policy real (DESIGN.md §5):
//!
//! - `bypass` (route hook, output): bypass traffic (by default SSH and ICMP) to a mesh peer
//!   gets meshsec's firewall mark, so it skips meshsec's routing table and leaves in the clear
//!   (to anyone else it is not touched: a hand-written tunnel still carries it);
//! - `prerouting`: IKE, ESP and bypass traffic from mesh peers gets the mark too, so that a
//!   strict reverse-path filter (`rp_filter = 1`, with `src_valid_mark`) checks it against the
//!   routes of the mark — the underlay — and not meshsec's routes into the TUN device;
//! - `input` / `output` (filter hooks), the *require* rule: plaintext from and to the
//!   protected addresses is dropped and counted, except IKE, ESP, bypass traffic, loopback,
//!   and what comes out of or goes into meshsec's TUN device (decrypted, to be encrypted).
//!   Inbound, bypass means *to* a bypass port (the answers to our own connections from one
//!   only when conntrack knows the connection), ICMP errors only about a known connection:
//!   a sender that spoofs a peer's address gets nothing else in.
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

use anyhow::{Context as _, Result};
use nft::{Base, Batch, CmpOp, Expr, Hook, MetaKey, Nft, Verdict};

use crate::config::{Mesh, Prefix, Service};

/// The table's name.
pub const TABLE: &str = "meshsec";
/// `NFPROTO_IPV4` / `NFPROTO_IPV6` (meta nfproto).
const NFPROTO_IPV4: u8 = 2;
const NFPROTO_IPV6: u8 = 10;
/// Loopback's interface index in every network namespace.
const LOOPBACK_INDEX: u32 = 1;
const PROTO_ICMP: u8 = 1;
const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;
/// TCP flags (octet 13 of the header).
const TCP_SYN: u8 = 0x02;
const TCP_RST: u8 = 0x04;
const PROTO_ESP: u8 = 50;
const PROTO_ICMPV6: u8 = 58;
/// Conntrack states (`ct state`): established, related.
const CT_ESTABLISHED: u32 = 1 << 1;
const CT_RELATED: u32 = 1 << 2;
/// Route chains run before filter chains (`priority mangle`).
const PRIORITY_MANGLE: i32 = -150;
const PRIORITY_FILTER: i32 = 0;

/// The installed table (and the socket that owns it).
pub struct Firewall {
    nft: Nft,
    /// The table's flags now (owner or not).
    flags: u32,
}

/// What the firewall needs to know besides the mesh.
#[derive(Debug, Clone, Copy)]
pub struct Context {
    /// meshsec's TUN device.
    pub tun_index: u32,
    /// The firewall mark of meshsec's own packets and of bypass traffic.
    pub mark: u32,
    /// The UDP ports of IKE and ESP in UDP.
    pub ike_ports: [u16; 2],
}

impl Firewall {
    /// Installs the table for `mesh`, replacing whatever table of that name an earlier run
    /// left.
    pub fn install(mesh: &Mesh, cx: Context) -> Result<Self> {
        let nft = Nft::open().context("cannot open a netlink socket to nftables")?;
        let flags = flags(mesh);
        let mut b = Batch::new();
        // An ordinary leftover (fail_closed) matches `add table` without flags, which then
        // makes the delete valid when there is none.
        for family in [nft::FAMILY_INET, nft::FAMILY_ARP] {
            b.family(family);
            b.add_table(TABLE, 0);
            b.del_table(TABLE);
        }
        ruleset(&mut b, mesh, cx);
        nft.apply(b)
            .context("cannot install the nftables table inet meshsec")?;
        valid_marks_for_rp_filter();
        Ok(Firewall { nft, flags })
    }

    /// Replaces the table (after a reload changed the mesh), in one atomic batch.
    pub fn update(&mut self, mesh: &Mesh, cx: Context) -> Result<()> {
        let mut b = Batch::new();
        // Our own table: re-adding it must repeat its flags (the owner flag cannot be
        // dropped by an update), then it goes and comes back as the mesh wants it.
        for family in [nft::FAMILY_INET, nft::FAMILY_ARP] {
            b.family(family);
            b.add_table(TABLE, self.flags);
            b.del_table(TABLE);
        }
        ruleset(&mut b, mesh, cx);
        self.nft
            .apply(b)
            .context("cannot replace the nftables table inet meshsec")?;
        self.flags = flags(mesh);
        Ok(())
    }

    /// A normal stop: the table goes (with the owner flag it would go with the socket
    /// anyway).
    pub fn remove(self) {
        let mut b = Batch::new();
        for family in [nft::FAMILY_INET, nft::FAMILY_ARP] {
            b.family(family);
            b.del_table(TABLE);
        }
        if let Err(e) = self.nft.apply(b) {
            tracing::warn!("cannot remove the nftables table inet meshsec: {e}");
        }
    }
}

/// The table's flags: owned by our socket unless it must outlive us.
fn flags(mesh: &Mesh) -> u32 {
    if mesh.fail_closed {
        0
    } else {
        nft::TABLE_F_OWNER
    }
}

/// Lets the reverse-path filter use the packet's mark (`src_valid_mark`), so that the marks
/// of `prerouting` keep a strict `rp_filter` from dropping peers' IKE and ESP (which it
/// would check against meshsec's routes into the TUN device otherwise).
fn valid_marks_for_rp_filter() {
    let path = "/proc/sys/net/ipv4/conf/all/src_valid_mark";
    if let Err(e) = std::fs::write(path, "1") {
        tracing::warn!(
            "cannot set {path} ({e}): with rp_filter = 1, IKE and ESP from mesh peers may be dropped"
        );
    }
}

/// Address sets: the mesh peers' addresses (for bypass and the marks) and the protected
/// single addresses of `require`, one set per family.
struct Sets {
    peers4: Vec<Vec<u8>>,
    peers6: Vec<Vec<u8>>,
    hosts4: Vec<Vec<u8>>,
    hosts6: Vec<Vec<u8>>,
}

impl Sets {
    fn of(mesh: &Mesh) -> Sets {
        let split = |addrs: &mut dyn Iterator<Item = IpAddr>| {
            let (mut v4, mut v6) = (Vec::new(), Vec::new());
            for a in addrs {
                match a {
                    IpAddr::V4(a) => v4.push(a.octets().to_vec()),
                    IpAddr::V6(a) => v6.push(a.octets().to_vec()),
                }
            }
            v4.sort();
            v4.dedup();
            v6.sort();
            v6.dedup();
            (v4, v6)
        };
        let (peers4, peers6) = split(&mut mesh.peers.iter().copied());
        let (hosts4, hosts6) =
            split(&mut mesh.require.iter().filter(|p| is_host(p)).map(|p| p.addr));
        Sets {
            peers4,
            peers6,
            hosts4,
            hosts6,
        }
    }
}

/// One address set as a match: family check, the address at `offset` (source 12/8,
/// destination 16/24), looked up in set `name`.
struct SetMatch {
    name: &'static str,
    id: u32,
    family: u8,
    len: u32,
    src: u32,
    dst: u32,
}

const PEERS4: SetMatch = SetMatch {
    name: "peers4",
    id: 1,
    family: NFPROTO_IPV4,
    len: 4,
    src: 12,
    dst: 16,
};
const PEERS6: SetMatch = SetMatch {
    name: "peers6",
    id: 2,
    family: NFPROTO_IPV6,
    len: 16,
    src: 8,
    dst: 24,
};
const HOSTS4: SetMatch = SetMatch {
    name: "hosts4",
    id: 3,
    ..PEERS4
};
const HOSTS6: SetMatch = SetMatch {
    name: "hosts6",
    id: 4,
    ..PEERS6
};

impl SetMatch {
    /// `ip saddr @set` (`source`) or `ip daddr @set`.
    fn matches(&self, source: bool) -> Vec<Expr> {
        [
            nfproto(self.family),
            vec![
                Expr::Payload(
                    Base::Network,
                    if source { self.src } else { self.dst },
                    self.len,
                ),
                Expr::Lookup(self.name.into(), self.id),
            ],
        ]
        .concat()
    }
}

/// Appends the whole table to `b` (after its prelude): sets, chains, rules; and the ARP
/// table.
fn ruleset(b: &mut Batch, mesh: &Mesh, cx: Context) {
    arp(b, mesh, cx);
    b.family(nft::FAMILY_INET);
    b.add_table(TABLE, flags(mesh));
    let sets = Sets::of(mesh);
    let peer_sets: Vec<&SetMatch> = [(&PEERS4, &sets.peers4), (&PEERS6, &sets.peers6)]
        .into_iter()
        .filter(|(_, e)| !e.is_empty())
        .map(|(s, _)| s)
        .collect();
    for (s, elements) in [
        (&PEERS4, &sets.peers4),
        (&PEERS6, &sets.peers6),
        (&HOSTS4, &sets.hosts4),
        (&HOSTS6, &sets.hosts6),
    ] {
        if !elements.is_empty() {
            b.add_set(TABLE, s.name, s.id, s.len, elements);
        }
    }
    b.add_chain(TABLE, "bypass", "route", Hook::Output, PRIORITY_MANGLE);
    b.add_chain(
        TABLE,
        "prerouting",
        "filter",
        Hook::PreRouting,
        PRIORITY_MANGLE,
    );
    b.add_chain(TABLE, "input", "filter", Hook::Input, PRIORITY_FILTER);
    b.add_chain(TABLE, "output", "filter", Hook::Output, PRIORITY_FILTER);
    b.add_chain(TABLE, "forward", "filter", Hook::Forward, PRIORITY_FILTER);

    // The mark is or-ed in: other bits of the packet's mark (other software's) stay.
    let set_mark = [
        Expr::Meta(MetaKey::Mark),
        Expr::Bitwise(
            (!cx.mark).to_ne_bytes().to_vec(),
            cx.mark.to_ne_bytes().to_vec(),
        ),
        Expr::MetaSet(MetaKey::Mark),
    ];
    // bypass: mark it when it goes to a mesh peer, so that it skips meshsec's routing table.
    for s in &peer_sets {
        for m in bypass_matches(&mesh.bypass, Inbound::No) {
            b.add_rule(
                TABLE,
                "bypass",
                &[s.matches(false), m, set_mark.to_vec()].concat(),
            );
        }
    }
    // prerouting: what may come from a mesh peer in the clear carries the mark too (for the
    // reverse-path filter).
    let ike_esp: Vec<Vec<Expr>> = std::iter::once(proto(PROTO_ESP))
        .chain(
            cx.ike_ports
                .iter()
                .map(|p| [proto(PROTO_UDP), ports(Direction::Destination, *p, *p)].concat()),
        )
        .collect();
    for s in &peer_sets {
        for m in ike_esp
            .iter()
            .cloned()
            .chain(bypass_matches(&mesh.bypass, Inbound::Yes))
        {
            b.add_rule(
                TABLE,
                "prerouting",
                &[s.matches(true), m, set_mark.to_vec()].concat(),
            );
        }
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
    b.add_rule(TABLE, "input", &iface(MetaKey::Iif, cx.tun_index));
    for m in ike_esp {
        b.add_rule(TABLE, "input", &[m, vec![accept.clone()]].concat());
    }
    for m in bypass_matches(&mesh.bypass, Inbound::Yes) {
        b.add_rule(TABLE, "input", &[m, vec![accept.clone()]].concat());
    }
    // TCP connections into the tunnel (ours and, on a gateway, forwarded ones) announce an
    // MSS that fits the route's MTU (routes to peers behind a small path have their own).
    let clamp = [
        vec![
            Expr::Meta(MetaKey::Oif),
            Expr::Cmp(CmpOp::Eq, cx.tun_index.to_ne_bytes().to_vec()),
        ],
        proto(PROTO_TCP),
        vec![
            Expr::Payload(Base::Transport, 13, 1),
            Expr::Bitwise(vec![TCP_SYN | TCP_RST], vec![0]),
            Expr::Cmp(CmpOp::Eq, vec![TCP_SYN]),
            Expr::RtTcpMss,
            Expr::Hton16,
            Expr::SetTcpMss,
        ],
    ]
    .concat();
    b.add_rule(TABLE, "output", &clamp);
    b.add_rule(TABLE, "forward", &clamp);
    // output: our own packets (IKE, ESP) and bypass carry the mark.
    b.add_rule(TABLE, "output", &iface(MetaKey::Oif, LOOPBACK_INDEX));
    b.add_rule(TABLE, "output", &iface(MetaKey::Oif, cx.tun_index));
    b.add_rule(
        TABLE,
        "output",
        &[
            Expr::Meta(MetaKey::Mark),
            Expr::Bitwise(cx.mark.to_ne_bytes().to_vec(), vec![0; 4]),
            Expr::Cmp(CmpOp::Eq, cx.mark.to_ne_bytes().to_vec()),
            accept,
        ],
    );

    // require: everything else from/to a protected address is dropped (and counted).
    let drop = [Expr::Counter, Expr::Verdict(Verdict::Drop)];
    for (s, elements) in [(&HOSTS4, &sets.hosts4), (&HOSTS6, &sets.hosts6)] {
        if elements.is_empty() {
            continue;
        }
        for (chain, source) in [("input", true), ("output", false)] {
            b.add_rule(TABLE, chain, &[s.matches(source), drop.to_vec()].concat());
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
                    Expr::Bitwise(mask.clone(), vec![0; mask.len()]),
                    Expr::Cmp(CmpOp::Eq, net.clone()),
                ],
                drop.to_vec(),
            ];
            b.add_rule(TABLE, chain, &m.concat());
        }
    }
}

/// `table arp meshsec`: every ARP packet that comes in gets the mark. A strict reverse-path
/// filter checks an ARP request's sender like an IP source, against the routes of the
/// packet's mark (with `src_valid_mark`): unmarked, a mesh peer's address routes into the
/// TUN device, its ARP requests are dropped and the neighbours stop resolving each other.
/// (Marked, the lookup skips meshsec's table; ARP is never routed into the tunnel anyway.)
fn arp(b: &mut Batch, mesh: &Mesh, cx: Context) {
    b.family(nft::FAMILY_ARP);
    b.add_table(TABLE, flags(mesh));
    b.add_chain(TABLE, "input", "filter", Hook::ArpInput, PRIORITY_FILTER);
    b.add_rule(
        TABLE,
        "input",
        &[
            Expr::Meta(MetaKey::Mark),
            Expr::Bitwise(
                (!cx.mark).to_ne_bytes().to_vec(),
                cx.mark.to_ne_bytes().to_vec(),
            ),
            Expr::MetaSet(MetaKey::Mark),
        ],
    );
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

/// `ct state & STATES != 0`.
fn ct_state(states: u32) -> Vec<Expr> {
    vec![
        Expr::CtState,
        Expr::Bitwise(states.to_ne_bytes().to_vec(), vec![0; 4]),
        Expr::Cmp(CmpOp::Neq, vec![0; 4]),
    ]
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

/// Whether the matches are for what comes in (from a sender that may spoof a peer's
/// address) or for what we send.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Inbound {
    Yes,
    No,
}

/// ICMP informational types (RFC 792/950/1256...): everything but the errors 3, 4, 5, 11, 12.
const ICMP_INFORMATIONAL: &[(u8, u8)] = &[(0, 2), (6, 10), (13, 255)];
/// ICMP error types.
const ICMP_ERRORS: &[(u8, u8)] = &[(3, 5), (11, 12)];
/// ICMPv6 informational types (RFC 4443 §2.1: errors are 0-127).
const ICMPV6_INFORMATIONAL: &[(u8, u8)] = &[(128, 255)];
const ICMPV6_ERRORS: &[(u8, u8)] = &[(0, 127)];

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

/// The matches for bypass traffic, and always IPv6 neighbour discovery (ICMPv6 133-137),
/// without which no IPv6 neighbour is reachable at all.
///
/// Outbound: each service either way (to its port, and from it: our answers), and ICMP's
/// informational messages — not its errors, which quote the packet they are about and so
/// must leave inside the SA like the traffic itself (RFC 4301 §6.2). Inbound: to a service's
/// port; from it only within a connection conntrack knows (the answers to our own); ICMP
/// errors only about a known connection (related).
fn bypass_matches(services: &[Service], dir: Inbound) -> Vec<Vec<Expr>> {
    let mut out = Vec::new();
    for s in services {
        let (informational, errors) = match s.proto {
            PROTO_ICMP => (ICMP_INFORMATIONAL, ICMP_ERRORS),
            PROTO_ICMPV6 => (ICMPV6_INFORMATIONAL, ICMPV6_ERRORS),
            _ => (&[][..], &[][..]),
        };
        if s.has_ports() {
            out.push(
                [
                    proto(s.proto),
                    ports(Direction::Destination, s.first, s.last),
                ]
                .concat(),
            );
            let from = [proto(s.proto), ports(Direction::Source, s.first, s.last)].concat();
            out.push(match dir {
                Inbound::No => from,
                Inbound::Yes => [from, ct_state(CT_ESTABLISHED)].concat(),
            });
        } else if !informational.is_empty() {
            out.extend(informational.iter().map(|r| icmp_types(s.proto, *r)));
            if dir == Inbound::Yes {
                out.extend(
                    errors
                        .iter()
                        .map(|r| [icmp_types(s.proto, *r), ct_state(CT_RELATED)].concat()),
                );
            }
        } else {
            out.push(proto(s.proto));
        }
    }
    out.push(icmp_types(PROTO_ICMPV6, (133, 137)));
    out
}
