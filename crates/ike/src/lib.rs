//! `meshsec-ike`: the sans-IO IKEv2 engine (RFC 7296) — endpoint, IKE SA and CHILD SA state
//! machines, one module per exchange (DESIGN.md §2–§4).
//!
//! Not yet implemented: this crate is filled by the "IKEv2 engine" issue.
#![forbid(unsafe_code)]
