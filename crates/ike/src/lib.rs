//! `meshsec-ike`: the sans-IO IKEv2 engine (RFC 7296) — endpoint, IKE SA and CHILD SA state
//! machines, one module per exchange (DESIGN.md §2–§4).
//!
//! * [`Endpoint`] — every IKE SA of the node, demultiplexed by SPI; driven by
//!   `handle_datagram` / `handle_timeout` / `initiate`, drained with `poll_transmit` /
//!   `poll_event` / `poll_timeout`.
//! * [`ike_sa_init`](crate::Endpoint::initiate) and IKE_AUTH (PSK or X.509 certificates,
//!   [`LocalAuth`], [`PeerAuth`]) with the first CHILD SA;
//!   retransmission with capped exponential backoff and a response cache.
//! * CREATE_CHILD_SA: more CHILD SAs, CHILD SA rekeying and IKE SA rekeying with their
//!   collisions ([`Endpoint::rekey_child_sa`], [`Endpoint::rekey_ike_sa`], lifetimes in
//!   [`PeerConfig`]); one request at a time per IKE SA, the rest queued as tasks.
//! * Reauthentication as make-before-break ([`Endpoint::reauthenticate`], `reauth_lifetime`
//!   in [`PeerConfig`], AUTH_LIFETIME), and the peer's, told apart from duplicate IKE SAs.
//! * Liveness and healing: [`Endpoint::check_liveness`], INITIAL_CONTACT,
//!   [`Endpoint::notify_invalid_spi`] and its receipt, [`Endpoint::drop_ike_sa`].
//! * [`proposal`] — strongSwan-syntax proposals, responder-preference selection,
//!   NO_PROPOSAL_CHOSEN explanations; [`ts`] — selector narrowing (RFC 7296 §2.9).
//! * Every failure is an [`Event::Failed`] whose [`Failure`] names the cause.
#![forbid(unsafe_code)]

mod authenticate;
mod children;
mod collision;
mod config;
mod cookie;
mod create_child;
mod dispatch;
mod endpoint;
mod error;
mod event;
mod half_open;
mod heal;
mod ike_auth;
mod ike_sa_init;
mod informational;
mod inventory;
mod keepalive;
mod messages;
pub mod proposal;
mod reauth;
mod rekey_ike;
mod request;
mod sa;
mod table;
mod tasks;
mod timers;
pub mod ts;

pub use config::{ChildMode, EndpointConfig, LocalAuth, PeerAuth, PeerConfig};
pub use endpoint::{ApiMisuse, Endpoint};
pub use error::{ErrorCounters, ErrorKind};
pub use event::{ChildSa, ChildSaHalf, Event, Failure, Nat, PeerId, Side, Transmit, TransmitKind};
pub use inventory::IkeSaInfo;
pub use sa::{Role, State, Timestamp};
