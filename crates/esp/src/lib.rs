//! `meshsec-esp`: the sans-IO ESP data plane (RFC 4303) — SAD, SPD, replay window, seal/open,
//! lifetimes (DESIGN.md §2, §5).
//!
//! Not yet implemented: this crate is filled by the "ESP data plane engine" issue. The ESP
//! framing it builds on lives in `meshsec_wire::esp`.
#![forbid(unsafe_code)]
