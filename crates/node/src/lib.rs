//! `meshsec-node`: the sans-IO glue of one host (DESIGN §1–§3). A [`Node`] owns the IKE
//! [`Endpoint`](meshsec_ike::Endpoint) and an [`SaBackend`] (the ESP data plane, or later a
//! kernel's), and is where the protocol's consequences for the data plane live:
//!
//! * IKE events become data-plane actions: CHILD SAs installed (a rekey responder's outbound
//!   half as a standby, make-before-break), outbound halves retired when our Delete leaves,
//!   deleted inbound halves kept for [`INBOUND_GRACE`](meshsec_types::timing::INBOUND_GRACE),
//!   ESP that arrived before its SA delivered (module `lifecycle`);
//! * liveness and healing: dead peer detection, the through-tunnel check, INVALID_SPI for
//!   ESP with unknown SPIs, lost outbound halves recreated, NAT keepalives (module
//!   `liveness`);
//! * restarts with backoff, on-demand starts (acquires), and the operator's commands
//!   ([`Command`]).
//!
//! Every lifecycle transition passes through one function that logs it and counts it
//! (`Node::on_event`), so logs, counters and the state machines cannot drift apart.
//!
//! The same code runs in the daemon (over the real data plane shared with the data-path
//! threads) and in the simulator (over one [`meshsec_esp::DataPlane`] per host on virtual
//! time), so make-before-break, DPD and healing are tested as they run.
//!
//! Call order, as in quinn-proto: feed inputs with `handle_*` (an IKE datagram, an ESP event
//! or unknown SPI from the data path, a [`Command`], a timeout once [`Node::poll_timeout`] is
//! due), then drain [`Node::poll_transmit`] (datagrams to send), [`Node::poll_os`] (routes to
//! add or remove, packets to write to the TUN device) and, if wanted, [`Node::poll_event`].
//! Data-plane installs happen inside the `handle_*` calls: by the time a datagram is handed
//! out, every SA it lets the peer use is installed. Nothing here touches a socket, a file or
//! a clock.
#![forbid(unsafe_code)]

mod backend;
mod command;
mod lifecycle;
mod liveness;
mod node;
mod peer;
mod policy;
mod refusals;
mod sa_params;
mod status;

pub use backend::{Placement, SaBackend};
pub use command::{Command, CommandError, Done, RekeyKind, SaHalf};
pub use node::{Node, NodeEvent, OsAction};
pub use peer::{InstalledChild, LifecycleCounters};
pub use policy::{DpdAction, PeerPolicy, Start};
pub use sa_params::{policies, selectors};
pub use status::{ChildReport, LinkState, NodeReport, PeerReport};
