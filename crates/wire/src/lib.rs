//! `meshsec-wire`: the bytes of IKEv2 and ESP.
//!
//! * [`Message`] — IKE header (RFC 7296 §3.1) and payload chain; [`PayloadBody`] has one variant
//!   per payload of RFC 7296 §3 plus SKF (RFC 7383). Parsing borrows from the datagram;
//!   emitting back-patches every length, so `parse(emit(x)) == x` and, for valid input,
//!   `emit(parse(b)) == b`.
//! * [`rules`] — which payloads each exchange may or must carry, in the clear or encrypted.
//! * [`esp`] and [`udp_encap`] — ESP framing and the RFC 3948 port-4500 demultiplexer.
//! * [`registry`] — IANA numbers as open newtypes: unknown values survive parsing.
//!
//! No crypto, no state, no I/O. Nothing here panics on input: every read is bounds-checked
//! ([`codec::Reader`]) and failures are a small `Copy` [`Error`] that names the structure and
//! the problem. Allocation is bounded by the input's length (lists grow only as elements are
//! actually read, never from a declared count).
#![forbid(unsafe_code)]

pub mod codec;
mod error;
pub mod esp;
mod message;
pub mod payload;
pub mod registry;
pub mod rules;
pub mod udp_encap;

pub use error::{Error, Result};
pub use message::{Flags, Header, HeaderInfo, IKE_HEADER_LEN, IKE_MAJOR_VERSION, Message};
pub use payload::{
    Bytes, Payload, PayloadBody, emit_payloads, parse_inner_payloads, parse_payloads,
};
