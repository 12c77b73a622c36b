//! `meshsec-ike`: the sans-IO IKEv2 engine (RFC 7296) — endpoint, IKE SA and CHILD SA state
//! machines, one module per exchange (DESIGN.md §2–§4).
//!
//! So far: the pure building blocks the exchanges use — [`proposal`] (strongSwan-syntax
//! proposals, responder-preference selection, NO_PROPOSAL_CHOSEN explanations) and [`ts`]
//! (traffic selector narrowing, RFC 7296 §2.9). The state machines come next (see the issue).
#![forbid(unsafe_code)]

pub mod proposal;
pub mod ts;
