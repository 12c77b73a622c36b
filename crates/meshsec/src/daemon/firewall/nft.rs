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
/// `NFPROTO_ARP`.
pub const FAMILY_ARP: u8 = 3;
/// The table is removed when the netlink socket that created it closes.
pub const TABLE_F_OWNER: u32 = 0x2;

/// Netfilter hooks.
#[derive(Debug, Clone, Copy)]
pub enum Hook {
    /// Every packet that arrives, before routing.
    PreRouting,
    /// Packets for this host.
    Input,
    /// Packets this host sends.
    Output,
    /// Packets this host forwards.
    Forward,
    /// ARP packets that arrive (the `arp` family's own hook numbers).
    ArpInput,
}

impl Hook {
    /// `NF_INET_*` / `NF_ARP_*`.
    fn number(self) -> u32 {
        match self {
            Hook::PreRouting | Hook::ArpInput => 0,
            Hook::Input => 1,
            Hook::Forward => 2,
            Hook::Output => 3,
        }
    }
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
    /// `!=`.
    Neq = 1,
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
    /// `register = (register & mask) ^ xor` (mask and xor of one length).
    Bitwise(Vec<u8>, Vec<u8>),
    /// Loads the connection's conntrack state bits (`ct state`).
    CtState,
    /// Loads the TCP MSS the packet's route allows (`rt mtu`), in network order.
    RtTcpMss,
    /// Converts the register's first 2 octets to network order.
    Hton16,
    /// Writes the register into the TCP MSS option (`tcp option maxseg size set`).
    SetTcpMss,
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
    /// The family of the tables the next messages are about.
    family: u8,
    /// Where each message of the batch starts (begin and end markers excluded), with what it
    /// does (for errors).
    messages: Vec<(usize, String)>,
}

/// Offsets in a netlink message header.
const FLAGS_AT: usize = 6;
const SEQ_AT: usize = 8;

impl Batch {
    /// An empty batch.
    pub fn new() -> Batch {
        let mut b = Batch {
            buf: Vec::new(),
            family: FAMILY_INET,
            messages: Vec::new(),
        };
        b.header(NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, 0, |_| {});
        b
    }

    /// Appends one message; returns where it starts. Sequence numbers are filled in when the
    /// batch is sent.
    fn header(
        &mut self,
        kind: u16,
        flags: u16,
        family: u8,
        body: impl FnOnce(&mut Attrs<'_>),
    ) -> usize {
        let at = self.buf.len();
        self.buf.extend_from_slice(&[0; 4]); // length, below
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(&flags.to_ne_bytes());
        self.buf.extend_from_slice(&0u32.to_ne_bytes()); // sequence number: at send
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
        at
    }

    /// The messages that follow are about tables of `family` (`FAMILY_INET` at first).
    pub fn family(&mut self, family: u8) {
        self.family = family;
    }

    fn msg(&mut self, kind: u16, flags: u16, what: String, body: impl FnOnce(&mut Attrs<'_>)) {
        let family = self.family;
        let at = self.header(
            (NFNL_SUBSYS_NFTABLES << 8) | kind,
            NLM_F_REQUEST | flags,
            family,
            body,
        );
        self.messages.push((at, what));
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
                    h.u32(1, hook.number());
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

    /// The batch, closed, its messages numbered from `first_seq`; only the last message asks
    /// for an acknowledgement (the kernel reports a failing message anyway, and one ack per
    /// message would overflow the socket's receive buffer for a large table). Returns the
    /// bytes, the last sequence number, and what each sequence number does.
    fn finish(mut self, first_seq: u32) -> (Vec<u8>, u32, Vec<(u32, String)>) {
        self.header(NFNL_MSG_BATCH_END, NLM_F_REQUEST, 0, |_| {});
        // The begin marker has the first number: a failure to commit is reported with it.
        if let Some(slot) = self.buf.get_mut(SEQ_AT..SEQ_AT + 4) {
            slot.copy_from_slice(&first_seq.to_ne_bytes());
        }
        let mut seq = first_seq.wrapping_add(1);
        let mut numbered = Vec::with_capacity(self.messages.len());
        let last = self.messages.len().saturating_sub(1);
        for (i, (at, what)) in self.messages.into_iter().enumerate() {
            if let Some(slot) = self.buf.get_mut(at + SEQ_AT..at + SEQ_AT + 4) {
                slot.copy_from_slice(&seq.to_ne_bytes());
            }
            if i == last
                && let Some(slot) = self.buf.get_mut(at + FLAGS_AT..at + FLAGS_AT + 2)
                && let Ok(old) = <[u8; 2]>::try_from(&*slot)
            {
                let flags = u16::from_ne_bytes(old) | NLM_F_ACK;
                slot.copy_from_slice(&flags.to_ne_bytes());
            }
            numbered.push((seq, what));
            seq = seq.wrapping_add(1);
        }
        (self.buf, seq.wrapping_sub(1), numbered)
    }
}

/// One expression: `NFTA_EXPR_NAME` and `NFTA_EXPR_DATA`.
fn expr(a: &mut Attrs<'_>, e: &Expr) {
    let name = match e {
        Expr::Meta(_) | Expr::MetaSet(_) => "meta",
        Expr::Payload(..) => "payload",
        Expr::Cmp(..) => "cmp",
        Expr::Bitwise(..) => "bitwise",
        Expr::CtState => "ct",
        Expr::RtTcpMss => "rt",
        Expr::SetTcpMss => "exthdr",
        Expr::Hton16 => "byteorder",
        Expr::Verdict(_) => "immediate",
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
        Expr::Bitwise(mask, xor) => {
            d.u32(1, REG);
            d.u32(2, REG);
            d.u32(3, u32::try_from(mask.len()).unwrap_or(0));
            d.data(4, mask);
            d.data(5, xor);
        }
        Expr::CtState => {
            d.u32(2, 0); // NFT_CT_STATE
            d.u32(1, REG);
        }
        Expr::RtTcpMss => {
            // rt load tcpmss (NFT_RT_TCPMSS); `Hton16` follows, as nft does it.
            d.u32(1, REG);
            d.u32(2, 3); // NFT_RT_TCPMSS
        }
        Expr::Hton16 => {
            d.u32(1, REG);
            d.u32(2, REG);
            d.u32(3, 1); // NFT_BYTEORDER_HTON
            d.u32(4, 2);
            d.u32(5, 2);
        }
        Expr::SetTcpMss => {
            d.put(2, &[2]); // option kind 2: maximum segment size
            d.u32(3, 2); // its value: 2 octets at offset 2
            d.u32(4, 2);
            d.u32(6, 1); // NFT_EXTHDR_OP_TCPOPT
            d.u32(7, REG);
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
    /// The next batch's first sequence number: acknowledgements of an earlier batch still
    /// queued (after a failure) never match a later one.
    next_seq: std::cell::Cell<u32>,
}

/// How long the kernel may take to answer a batch.
const ANSWER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

impl Nft {
    /// Opens the socket.
    pub fn open() -> io::Result<Nft> {
        let mut socket = Socket::new(NETLINK_NETFILTER)?;
        socket.bind_auto()?;
        socket2::SockRef::from(&socket).set_read_timeout(Some(ANSWER_TIMEOUT))?;
        Ok(Nft {
            socket,
            next_seq: std::cell::Cell::new(1),
        })
    }

    /// Sends the batch and waits for its acknowledgement; the first error names the message
    /// that failed (the kernel applied none of the batch then).
    pub fn apply(&self, batch: Batch) -> io::Result<()> {
        let first = self.next_seq.get();
        let (bytes, last, numbered) = batch.finish(first);
        self.next_seq.set(last.wrapping_add(1));
        self.socket.send(&bytes, 0)?;
        let ours = |seq: u32| seq.wrapping_sub(first) <= last.wrapping_sub(first);
        loop {
            let (reply, _) = self.socket.recv_from_full()?;
            let mut rest = reply.as_slice();
            while let Some((kind, seq, payload, next)) = split_message(rest) {
                rest = next;
                if kind != NLMSG_ERROR || !ours(seq) {
                    continue;
                }
                let code = payload
                    .get(..4)
                    .and_then(|b| <[u8; 4]>::try_from(b).ok())
                    .map_or(0, i32::from_ne_bytes);
                if code != 0 {
                    let what = numbered
                        .iter()
                        .find(|(s, _)| *s == seq)
                        .map_or("committing the nftables batch", |(_, w)| w.as_str());
                    let e =
                        io::Error::from_raw_os_error(code.checked_neg().unwrap_or(libc::EINVAL));
                    return Err(io::Error::new(e.kind(), format!("{what}: {e}")));
                }
                if seq == last {
                    return Ok(());
                }
            }
        }
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
