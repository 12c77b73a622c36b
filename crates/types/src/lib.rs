//! `meshsec-types`: the vocabulary every meshsec crate shares, defined once.
//!
//! * [`Timestamp`] — a point on the caller's monotonic clock. The engines never read a clock:
//!   the daemon passes the OS clock in, the simulator its virtual one.
//! * Identifiers as newtypes, so that the compiler tells them apart: [`PeerId`] (one index
//!   space for the IKE engine, the data plane and the node), [`IkeSpi`], and the two
//!   directions of an ESP SPI, [`InboundSpi`] (ours, the peer seals with it) and
//!   [`OutboundSpi`] (the peer's, we seal with it).
//! * [`ports`] and [`timing`]: the protocol's port numbers and every timing constant that more
//!   than one place relies on.
//! * [`Deadlines`]: an index of deadlines, so that "when is the next one" is not a sweep.
#![forbid(unsafe_code)]

mod deadlines;
mod id;
pub mod ports;
mod time;
pub mod timing;

pub use deadlines::Deadlines;
pub use id::{IkeSpi, InboundSpi, OutboundSpi, PeerId};
pub use time::Timestamp;
