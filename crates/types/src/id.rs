//! Identifiers as newtypes. Each is `Copy`, ordered and hashable, prints the way logs and
//! `meshsec status` show it, and converts to and from the integer the wire carries only
//! explicitly (`new`/`get`), so that an outbound SPI can never be looked up as an inbound
//! one by accident.

use core::fmt;

/// A configured peer: the same index in the IKE engine, the data plane (its counters and
/// outbound SA slot) and the node. Ids are never reused while the process runs: a peer
/// removed by a reload leaves a hole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PeerId(u32);

impl PeerId {
    /// The peer with index `id`.
    pub const fn new(id: u32) -> PeerId {
        PeerId(id)
    }

    /// The peer at position `index` of a table; `None` beyond `u32::MAX` peers.
    pub fn from_index(index: usize) -> Option<PeerId> {
        u32::try_from(index).ok().map(PeerId)
    }

    /// Its number.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// Its position in a table.
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// An IKE SPI (RFC 7296 §3.1): eight octets chosen by one end of an IKE SA. The endpoint
/// keys its IKE SAs by the one it chose.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IkeSpi(u64);

impl IkeSpi {
    /// "Not known yet": the responder's SPI in the first IKE_SA_INIT request.
    pub const ZERO: IkeSpi = IkeSpi(0);

    /// The SPI `v` as carried in an IKE header.
    pub const fn new(v: u64) -> IkeSpi {
        IkeSpi(v)
    }

    /// The value for the IKE header.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// The eight octets of a Proposal's SPI field or a Delete payload.
    pub const fn to_be_bytes(self) -> [u8; 8] {
        self.0.to_be_bytes()
    }
}

impl fmt::Display for IkeSpi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

macro_rules! esp_spi {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(u32);

        impl $name {
            /// The SPI `v` as carried in an ESP header or an IKE payload.
            pub const fn new(v: u32) -> $name {
                $name(v)
            }

            /// The value for an ESP header or an IKE payload.
            pub const fn get(self) -> u32 {
                self.0
            }

            /// The four octets of a Proposal's SPI field, a Delete or a Notify payload.
            pub const fn to_be_bytes(self) -> [u8; 4] {
                self.0.to_be_bytes()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:08x}", self.0)
            }
        }
    };
}

esp_spi!(
    /// The SPI of an inbound ESP SA: we chose it, the peer puts it in the ESP packets it
    /// seals for us, and our SAD finds the SA by it.
    InboundSpi
);
esp_spi!(
    /// The SPI of an outbound ESP SA: the peer chose it (it is the peer's inbound SPI), we put
    /// it in the ESP packets we seal.
    OutboundSpi
);

impl InboundSpi {
    /// The same SA as the peer names it: its outbound SPI.
    pub const fn at_peer(self) -> OutboundSpi {
        OutboundSpi(self.0)
    }
}

impl OutboundSpi {
    /// The same SA as the peer names it: its inbound SPI.
    pub const fn at_peer(self) -> InboundSpi {
        InboundSpi(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_print_as_logs_show_them() {
        assert_eq!(PeerId::new(3).to_string(), "#3");
        assert_eq!(IkeSpi::new(0xab).to_string(), "00000000000000ab");
        assert_eq!(InboundSpi::new(0xc0ffee).to_string(), "00c0ffee");
        assert_eq!(OutboundSpi::new(1).to_be_bytes(), [0, 0, 0, 1]);
        assert_eq!(PeerId::from_index(7).map(PeerId::index), Some(7));
    }
}
