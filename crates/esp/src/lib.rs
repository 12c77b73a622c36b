//! `meshsec-esp`: the sans-IO ESP data plane (RFC 4303).
//!
//! * [`DataPlane`] — the SAD (inbound SPI → [`InboundSa`]), outbound SA slots and the
//!   [`spd::Spd`]; `seal`/`open` work in place on caller buffers ([`PacketBuf`]) with
//!   headroom/tailroom, singly or in batches, and raise [`EspEvent`]s (lifetimes, acquires).
//! * [`cipher::EspCipher`] — AEAD, AES-CBC + HMAC, or NULL, with ESN.
//! * [`replay::ReplayWindow`] — checked before decryption, committed after the ICV verified.
//! * [`selector`] — traffic selectors and packet fields; inbound packets must match their
//!   SA's selectors or are dropped as [`DropReason::NoPolicy`].
//! * [`Counters`] per SA, folded into per-peer totals when an SA is replaced.
//! * ESP for an SPI not installed yet is parked briefly and opened when its SA arrives
//!   ([`DataPlane::open_parked`]): a peer may seal with a new SA before we have it.
//!
//! No sockets, no TUN, no clock: time is a [`lifetime::Timestamp`] passed in. Nothing here
//! allocates per packet (the parking area is allocated once), and nothing derived from a packet can panic.
#![forbid(unsafe_code)]

pub mod cipher;
mod dataplane;
mod drop;
pub mod ip;
pub mod lifetime;
mod parked;
pub mod replay;
mod sa;
pub mod selector;
pub mod spd;

pub use dataplane::{DataPlane, EspEvent, MAX_UNKNOWN_REPORTS, SaRef, SealOutcome};
pub use drop::{Counters, DropReason};
pub use meshsec_types::{InboundSpi, OutboundSpi, PeerId, Timestamp};
pub use sa::{
    Encap, HEADROOM, InboundSa, Mode, Opened, OutboundSa, PacketBuf, SaParams, Sealed, TAILROOM,
};
