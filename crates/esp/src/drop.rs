//! Why a packet was dropped, and the per-SA counters (which double as metric labels).

use core::fmt;

use meshsec_types::Timestamp;

/// Why the data plane dropped a packet. `Copy`, no allocation: it is also a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DropReason {
    /// Inbound ESP with an SPI we have no SA for.
    UnknownSpi,
    /// Sequence number already seen (replay or duplicate).
    Replay,
    /// Sequence number left of the replay window.
    TooOld,
    /// ICV / tag did not verify.
    AuthFailed,
    /// Too short, bad padding, bad next header, inner packet not parseable.
    Malformed,
    /// The decrypted packet does not match the SA's traffic selectors, or an outbound packet
    /// matched a DISCARD policy, no policy at all, or a policy whose SA was negotiated without
    /// it (narrowed selectors).
    NoPolicy,
    /// Outbound packet matched a policy whose SA does not exist (yet): an `Acquire` was raised.
    NoSa,
    /// The SA reached a hard lifetime limit.
    Expired,
    /// The outbound sequence number space is exhausted (no wrap allowed): rekey first.
    SeqExhausted,
    /// The buffer has too little headroom or tailroom for the ESP framing.
    NoRoom,
}

impl DropReason {
    /// Every reason, in counter order.
    pub const ALL: [DropReason; 10] = [
        DropReason::UnknownSpi,
        DropReason::Replay,
        DropReason::TooOld,
        DropReason::AuthFailed,
        DropReason::Malformed,
        DropReason::NoPolicy,
        DropReason::NoSa,
        DropReason::Expired,
        DropReason::SeqExhausted,
        DropReason::NoRoom,
    ];

    /// Index into a counter array.
    pub fn index(self) -> usize {
        self as usize
    }

    /// A stable snake_case name (metric label).
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::UnknownSpi => "unknown_spi",
            DropReason::Replay => "replay",
            DropReason::TooOld => "too_old",
            DropReason::AuthFailed => "auth_failed",
            DropReason::Malformed => "malformed",
            DropReason::NoPolicy => "no_policy",
            DropReason::NoSa => "no_sa",
            DropReason::Expired => "expired",
            DropReason::SeqExhausted => "seq_exhausted",
            DropReason::NoRoom => "no_room",
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Packet, byte and drop counters of one SA (or, summed, of one peer).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Packets sealed (outbound) or opened and delivered (inbound), dummies excluded.
    pub packets: u64,
    /// Inner-packet octets of those packets.
    pub bytes: u64,
    /// Dummy packets (next header 59) received and discarded.
    pub dummies: u64,
    /// Drops, indexed by [`DropReason::index`].
    pub drops: [u64; DropReason::ALL.len()],
    /// When the last of those packets was sealed or opened (dummies included: they prove
    /// the peer alive too). Liveness checks read it instead of watching the packet count.
    pub last_packet: Option<Timestamp>,
}

impl Counters {
    /// Drops for one reason.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.drops.get(reason.index()).copied().unwrap_or(0)
    }

    pub(crate) fn count_drop(&mut self, reason: DropReason) {
        if let Some(c) = self.drops.get_mut(reason.index()) {
            *c += 1;
        }
    }

    /// Adds `other` into `self` (to fold a retired SA into its peer's totals).
    pub fn add(&mut self, other: &Counters) {
        self.packets += other.packets;
        self.bytes += other.bytes;
        self.dummies += other.dummies;
        for (a, b) in self.drops.iter_mut().zip(other.drops.iter()) {
            *a += b;
        }
        self.last_packet = self.last_packet.max(other.last_packet);
    }
}
