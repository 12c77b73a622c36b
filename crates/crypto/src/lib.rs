//! `meshsec-crypto`: IKEv2/ESP transforms selected by IANA transform IDs, the IKEv2 key
//! schedule (SKEYSEED, prf+, KEYMAT) and zeroizing key types (DESIGN.md §2, §6).
//!
//! Not yet implemented: this crate is filled by the "Crypto" issue. It exists now so the
//! workspace has the shape DESIGN.md describes.
#![forbid(unsafe_code)]
