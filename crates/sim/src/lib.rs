//! `meshsec-sim` (dev-only): a deterministic network simulator that runs meshsec engines on
//! virtual time with seeded loss, delay, reordering and duplication (DESIGN.md §2, §7).
//!
//! Not yet implemented: this crate is filled by the "IKEv2 engine" issue.
#![forbid(unsafe_code)]
