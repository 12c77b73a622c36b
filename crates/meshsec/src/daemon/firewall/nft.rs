//! Just enough of the nf_tables netlink protocol (`include/uapi/linux/netfilter/nf_tables.h`)
//! to install one table of meshsec's own in one atomic batch, over a netlink socket the
//! daemon keeps open: a table created with the *owner* flag lives exactly as long as that
//! socket, so it disappears with the daemon however the daemon ends (Linux 5.12+).
//!
//! Integers inside nf_tables attributes are big-endian; register contents (addresses, ports)
//! are in network order as the packet has them, marks in host order.

use std::io;

use netlink_sys::{Socket, protocols::NETLINK_NETFILTER};

const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_APPEND: u16 = 0x800;
const NLA_F_NESTED: u16 = 0x8000;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
const NFNL_SUBSYS_NFTABLES: u16 = 10;

const NFT_MSG_NEWTABLE: u16 = 0;
const NFT_MSG_DELTABLE: u16 = 2;
const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_NEWRULE: u16 = 6;
const NFT_MSG_NEWSET: u16 = 9;
const NFT_MSG_NEWSETELEM: u16 = 12;

/// `NFPROTO_INET`: one table for IPv4 and IPv6.
pub const FAMILY_INET: u8 = 1;
/// The table is removed when the netlink socket that created it closes.
pub const TABLE_F_OWNER: u32 = 0x2;

/// Netfilter hooks.
#[derive(Debug, Clone, Copy)]
pub enum Hook {
    /// Packets for this host.
    Input = 1,
    /// Packets this host sends.
    Output = 3,
}

/// Verdicts.
#[derive(Debug, Clone, Copy)]
pub enum Verdict {
    /// `drop`.
    Drop = 0,
    /// `accept`.
    Accept = 1,
}

/// Meta keys (`NFT_META_*`).
#[derive(Debug, Clone, Copy)]
pub enum MetaKey {
    /// The packet's firewall mark.
    Mark = 3,
    /// Input interface index.
    Iif = 4,
    /// Output interface index.
    Oif = 5,
    /// Layer 3 family (`NFPROTO_IPV4` 2, `NFPROTO_IPV6` 10).
    NfProto = 15,
    /// Layer 4 protocol number.
    L4Proto = 16,
}

/// Where a payload expression reads.
#[derive(Debug, Clone, Copy)]
pub enum Base {
    /// The IP header.
    Network = 1,
    /// The transport header.
    Transport = 2,
}

/// Comparison operators (`NFT_CMP_*`).
#[derive(Debug, Clone, Copy)]
pub enum CmpOp {
    /// `==`.
    Eq = 0,
    /// `>=`.
    Gte = 5,
    /// `<=`.
    Lte = 3,
}

/// The register every expression here works in (`NFT_REG_1`, 16 octets).
const REG: u32 = 1;

/// One expression of a rule.
#[derive(Debug, Clone)]
pub enum Expr {
    /// Loads a meta key into the register.
    Meta(MetaKey),
    /// Sets a meta key (the mark) from the register.
    MetaSet(MetaKey),
    /// Loads `len` octets at `offset` of `base`.
    Payload(Base, u32, u32),
    /// Compares the register with `data`.
    Cmp(CmpOp, Vec<u8>),
    /// `register = register & mask` (`len` = mask length).
    And(Vec<u8>),
    /// Loads `data` into the register.
    Immediate(Vec<u8>),
    /// Looks the register up in a set of this batch (by name and id).
    Lookup(String, u32),
    /// Counts packets and octets.
    Counter,
    /// Ends with a verdict.
    Verdict(Verdict),
}

/// An attribute writer over a message buffer.
struct Attrs<'a> {
    buf: &'a mut Vec<u8>,
}

impl Attrs<'_> {
    fn put(&mut self, kind: u16, data: &[u8]) {
        let len = u16::try_from(4 + data.len()).unwrap_or(u16::MAX);
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
    }

    fn str(&mut self, kind: u16, s: &str) {
        let mut v = s.as_bytes().to_vec();
        v.push(0);
        self.put(kind, &v);
    }

    fn u32(&mut self, kind: u16, v: u32) {
        self.put(kind, &v.to_be_bytes());
    }

    /// A nested attribute whose content `f` writes.
    fn nest(&mut self, kind: u16, f: impl FnOnce(&mut Attrs<'_>)) {
        let at = self.buf.len();
        self.buf.extend_from_slice(&[0, 0]);
        self.buf
            .extend_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
        f(&mut Attrs { buf: self.buf });
        let len = u16::try_from(self.buf.len() - at).unwrap_or(u16::MAX);
        if let Some(slot) = self.buf.get_mut(at..at + 2) {
            slot.copy_from_slice(&len.to_ne_bytes());
        }
    }

    /// `NFTA_DATA_VALUE` inside attribute `kind`.
    fn data(&mut self, kind: u16, value: &[u8]) {
        self.nest(kind, |a| a.put(1, value));
    }
}

/// One atomic batch of nf_tables messages.
pub struct Batch {
    buf: Vec<u8>,
    seq: u32,
    /// Sequence numbers of the messages that are acknowledged, with what they did.
    pending: Vec<(u32, String)>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Batch {
        let mut b = Batch {
            buf: Vec::new(),
            seq: 0,
            pending: Vec::new(),
        };
        b.header(NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, 0, |_| {});
        b
    }

    /// Appends one message; returns its sequence number.
    fn header(
        &mut self,
        kind: u16,
        flags: u16,
        family: u8,
        body: impl FnOnce(&mut Attrs<'_>),
    ) -> u32 {
        self.seq += 1;
        let at = self.buf.len();
        self.buf.extend_from_slice(&[0; 4]); // length, below
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(&flags.to_ne_bytes());
        self.buf.extend_from_slice(&self.seq.to_ne_bytes());
        self.buf.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel's
        // nfgenmsg: family, version 0, resource id (the subsystem for batch markers).
        let res_id = if kind == NFNL_MSG_BATCH_BEGIN || kind == NFNL_MSG_BATCH_END {
            NFNL_SUBSYS_NFTABLES
        } else {
            0
        };
        self.buf.push(family);
        self.buf.push(0);
        self.buf.extend_from_slice(&res_id.to_be_bytes());
        body(&mut Attrs { buf: &mut self.buf });
        let len = u32::try_from(self.buf.len() - at).unwrap_or(u32::MAX);
        if let Some(slot) = self.buf.get_mut(at..at + 4) {
            slot.copy_from_slice(&len.to_ne_bytes());
        }
        self.seq
    }

    fn msg(&mut self, kind: u16, flags: u16, what: String, body: impl FnOnce(&mut Attrs<'_>)) {
        let seq = self.header(
            (NFNL_SUBSYS_NFTABLES << 8) | kind,
            NLM_F_REQUEST | NLM_F_ACK | flags,
            FAMILY_INET,
            body,
        );
        self.pending.push((seq, what));
    }

    /// `add table inet NAME { flags FLAGS }` (no error if it exists with the same flags).
    pub fn add_table(&mut self, name: &str, flags: u32) {
        self.msg(
            NFT_MSG_NEWTABLE,
            NLM_F_CREATE,
            format!("add table {name}"),
            |a| {
                a.str(1, name);
                a.u32(2, flags);
            },
        );
    }

    /// `delete table inet NAME`.
    pub fn del_table(&mut self, name: &str) {
        self.msg(NFT_MSG_DELTABLE, 0, format!("delete table {name}"), |a| {
            a.str(1, name);
        });
    }

    /// A base chain: `type KIND hook HOOK priority PRIORITY; policy accept`.
    pub fn add_chain(&mut self, table: &str, name: &str, kind: &str, hook: Hook, priority: i32) {
        self.msg(
            NFT_MSG_NEWCHAIN,
            NLM_F_CREATE,
            format!("add chain {table} {name}"),
            |a| {
                a.str(1, table);
                a.str(3, name);
                a.nest(4, |h| {
                    h.u32(1, hook as u32);
                    h.put(2, &priority.to_be_bytes());
                });
                a.u32(5, Verdict::Accept as u32);
                a.str(7, kind);
            },
        );
    }

    /// A set of addresses (`key_len` 4 or 16 octets) with its elements; `id` names it to
    /// lookups in the same batch.
    pub fn add_set(
        &mut self,
        table: &str,
        name: &str,
        id: u32,
        key_len: u32,
        elements: &[Vec<u8>],
    ) {
        // nft's datatype ids, so that `nft list` shows addresses: ipv4_addr 7, ipv6_addr 8.
        let key_type = if key_len == 4 { 7 } else { 8 };
        self.msg(
            NFT_MSG_NEWSET,
            NLM_F_CREATE,
            format!("add set {name}"),
            |a| {
                a.str(1, table);
                a.str(2, name);
                a.u32(3, 0);
                a.u32(4, key_type);
                a.u32(5, key_len);
                a.u32(10, id);
            },
        );
        // In slices: one netlink message must stay well under 64 KiB.
        for chunk in elements.chunks(512) {
            self.msg(
                NFT_MSG_NEWSETELEM,
                NLM_F_CREATE,
                format!("add elements to set {name}"),
                |a| {
                    a.str(1, table);
                    a.str(2, name);
                    a.nest(3, |list| {
                        for e in chunk {
                            list.nest(1, |elem| elem.data(1, e));
                        }
                    });
                    a.u32(4, id);
                },
            );
        }
    }

    /// Appends a rule to a chain.
    pub fn add_rule(&mut self, table: &str, chain: &str, exprs: &[Expr]) {
        self.msg(
            NFT_MSG_NEWRULE,
            NLM_F_CREATE | NLM_F_APPEND,
            format!("add rule {table} {chain} {exprs:?}"),
            |a| {
                a.str(1, table);
                a.str(2, chain);
                a.nest(4, |list| {
                    for e in exprs {
                        list.nest(1, |elem| expr(elem, e));
                    }
                });
            },
        );
    }

    /// The batch, closed.
    fn finish(mut self) -> (Vec<u8>, Vec<(u32, String)>) {
        self.header(NFNL_MSG_BATCH_END, NLM_F_REQUEST, 0, |_| {});
        (self.buf, self.pending)
    }
}

/// One expression: `NFTA_EXPR_NAME` and `NFTA_EXPR_DATA`.
fn expr(a: &mut Attrs<'_>, e: &Expr) {
    let name = match e {
        Expr::Meta(_) | Expr::MetaSet(_) => "meta",
        Expr::Payload(..) => "payload",
        Expr::Cmp(..) => "cmp",
        Expr::And(_) => "bitwise",
        Expr::Immediate(_) | Expr::Verdict(_) => "immediate",
        Expr::Lookup(..) => "lookup",
        Expr::Counter => "counter",
    };
    a.str(1, name);
    a.nest(2, |d| match e {
        Expr::Meta(key) => {
            d.u32(2, *key as u32);
            d.u32(1, REG);
        }
        Expr::MetaSet(key) => {
            d.u32(2, *key as u32);
            d.u32(3, REG);
        }
        Expr::Payload(base, offset, len) => {
            d.u32(1, REG);
            d.u32(2, *base as u32);
            d.u32(3, *offset);
            d.u32(4, *len);
        }
        Expr::Cmp(op, data) => {
            d.u32(1, REG);
            d.u32(2, *op as u32);
            d.data(3, data);
        }
        Expr::And(mask) => {
            d.u32(1, REG);
            d.u32(2, REG);
            d.u32(3, u32::try_from(mask.len()).unwrap_or(0));
            d.data(4, mask);
            d.data(5, &vec![0; mask.len()]);
        }
        Expr::Immediate(data) => {
            d.u32(1, REG);
            d.data(2, data);
        }
        Expr::Verdict(v) => {
            d.u32(1, 0); // the verdict register
            d.nest(2, |data| data.nest(2, |verdict| verdict.u32(1, *v as u32)));
        }
        Expr::Lookup(set, id) => {
            d.str(1, set);
            d.u32(2, REG);
            d.u32(4, *id);
        }
        Expr::Counter => {}
    });
}

/// A netlink socket to nf_tables, kept open: tables it creates with the owner flag live as
/// long as it does.
pub struct Nft {
    socket: Socket,
}

impl Nft {
    /// Opens the socket.
    pub fn open() -> io::Result<Nft> {
        let mut socket = Socket::new(NETLINK_NETFILTER)?;
        socket.bind_auto()?;
        Ok(Nft { socket })
    }

    /// Sends the batch and waits for every acknowledgement; the first error names the
    /// message that failed (the kernel applied none of the batch then).
    pub fn apply(&self, batch: Batch) -> io::Result<()> {
        let (bytes, mut pending) = batch.finish();
        self.socket.send(&bytes, 0)?;
        // Each acknowledged message is answered by one NLMSG_ERROR (0 = done). A failed
        // batch is answered for the failing message (and possibly no others).
        while !pending.is_empty() {
            let (reply, _) = self.socket.recv_from_full()?;
            let mut rest = reply.as_slice();
            while let Some((kind, seq, payload, next)) = split_message(rest) {
                rest = next;
                if kind != NLMSG_ERROR {
                    continue;
                }
                let code = payload
                    .get(..4)
                    .and_then(|b| <[u8; 4]>::try_from(b).ok())
                    .map_or(0, i32::from_ne_bytes);
                let what = pending
                    .iter()
                    .position(|(s, _)| *s == seq)
                    .map(|i| pending.remove(i).1);
                if code != 0 {
                    let e = io::Error::from_raw_os_error(-code);
                    return Err(io::Error::new(
                        e.kind(),
                        format!("{}: {e}", what.unwrap_or_else(|| "nftables".into())),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The first netlink message of `buf`: (type, sequence number, payload, the rest).
fn split_message(buf: &[u8]) -> Option<(u16, u32, &[u8], &[u8])> {
    let len = u32::from_ne_bytes(buf.get(..4)?.try_into().ok()?) as usize;
    let kind = u16::from_ne_bytes(buf.get(4..6)?.try_into().ok()?);
    let seq = u32::from_ne_bytes(buf.get(8..12)?.try_into().ok()?);
    if len < 16 {
        return None;
    }
    let payload = buf.get(16..len)?;
    let next = buf.get(len.next_multiple_of(4).min(buf.len())..)?;
    Some((kind, seq, payload, next))
}
