//! The configuration file (TOML; reference and complete example in `docs/config.md`).
//!
//! Loading is two steps: [`raw`] deserializes with source spans, `validate` gives every
//! string its meaning (identities, addresses, selectors, proposals, durations, PSK files)
//! and turns every problem into a [`ConfigError`] that names the file, the line, the key and
//! what is expected.

/// A setting from the peer, else from `[defaults]`.
macro_rules! setting {
    ($defaults:expr, $peer:expr, $field:ident) => {
        $peer.$field.as_ref().or($defaults.$field.as_ref())
    };
}

mod conflicts;
mod credentials;
mod inventory;
mod keys;
mod raw;
mod validate;

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use meshsec_crypto::Secret;
use meshsec_ike::proposal::ProposalSpec;
use meshsec_ike::{ChildMode, PeerConfig};
use meshsec_node::PeerPolicy;
use meshsec_wire::payload::{AddrSelector, Identity};

pub use credentials::{EXPIRY_WARNING_DAYS, now_unix};
pub use inventory::{Mesh, Prefix, Service};
pub use meshsec_node::{DpdAction, Start};

/// How ESP travels between us and our peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EspEncap {
    /// Always in UDP on port 4500 (RFC 3948): batched sends and receives (GSO/GRO), and
    /// through firewalls that drop IP protocol 50. We announce a NAT to get it.
    Udp,
    /// Plain ESP (protocol 50) unless a NAT is detected.
    Auto,
}

/// This host.
#[derive(Debug, Clone)]
pub struct Node {
    /// Its name (logs, the demo).
    pub name: String,
    /// Our IKE identity.
    pub identity: Identity<'static>,
    /// Our addresses (IKE listens on each).
    pub addresses: Vec<IpAddr>,
    /// Name of the TUN device.
    pub tun: String,
    /// MTU of the TUN device (inner packets).
    pub mtu: u16,
    /// Where the control socket listens (`meshsec status` etc. connect to it).
    pub control_socket: PathBuf,
    /// Behind a NAT: how often to send a NAT keepalive to each peer (RFC 3948 §2.3).
    pub nat_keepalive: Duration,
    /// ESP in UDP always, or only through NATs.
    pub esp_encap: EspEncap,
}

/// One peer, validated.
#[derive(Debug, Clone)]
pub struct Peer {
    /// Its name.
    pub name: String,
    /// Its address and IKE port.
    pub address: SocketAddr,
    /// Where else it may initiate from (`accept_from`; empty: `address` only).
    pub accept_from: Vec<AddrSelector>,
    /// The identity it must present.
    pub identity: Identity<'static>,
    /// The pre-shared key (from `psk_file`; empty when no side uses one).
    pub psk: Secret,
    /// How we authenticate to it (`auth`).
    pub local_auth: meshsec_ike::LocalAuth,
    /// How it must authenticate to us (`peer_auth`, `ca_files`, `accept_psk_file`).
    pub peer_auth: meshsec_ike::PeerAuth,
    /// Our side's selectors.
    pub local_ts: Vec<AddrSelector>,
    /// The peer's side's selectors.
    pub remote_ts: Vec<AddrSelector>,
    /// Tunnel or transport.
    pub mode: ChildMode,
    /// When to bring it up.
    pub start: Start,
    /// The MTU of the underlay path to the peer (the inventory's `mtu` of the two hosts, the
    /// smaller); `None`: our interface's towards it.
    pub path_mtu: Option<u16>,
    /// How long after the start an `always` peer is first initiated (mesh pairs: the side
    /// whose name sorts second waits, so a cold mesh negotiates each pair once).
    pub start_delay: Duration,
    /// IKE proposals, preferred first.
    pub ike_proposals: Vec<ProposalSpec>,
    /// ESP proposals, preferred first.
    pub esp_proposals: Vec<ProposalSpec>,
    /// IKE SA lifetime.
    pub ike_lifetime: Duration,
    /// CHILD SA lifetime.
    pub child_lifetime: Duration,
    /// Authentication lifetime: reauthenticated (make-before-break) before it ends (`None`:
    /// never, unless the peer asks).
    pub reauth_lifetime: Option<Duration>,
    /// Liveness check after this long without anything from the peer (`None`: off).
    pub dpd_delay: Option<Duration>,
    /// The peer is declared dead when a liveness check goes unanswered this long.
    pub dpd_timeout: Duration,
    /// What follows a peer's death.
    pub dpd_action: DpdAction,
    /// Through-tunnel check: our ESP flows out, none comes back for this long although IKE
    /// answers → the CHILD SA is recreated (`None`: off).
    pub tunnel_check: Option<Duration>,
    /// CHILD SA volume limit in inner octets (rekeyed before, at random 80-90 %).
    pub child_lifetime_bytes: Option<u64>,
    /// CHILD SA limit in packets (rekeyed before, at random 80-90 %).
    pub child_lifetime_packets: Option<u64>,
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from.
    pub path: PathBuf,
    /// This host.
    pub node: Node,
    /// The peers (hand-written ones first, then those derived from the inventory).
    pub peers: Vec<Peer>,
    /// The mesh, when `[node] inventory` names one.
    pub mesh: Option<Mesh>,
    /// Things that are allowed but deserve attention (weak PSKs or algorithms allowed
    /// explicitly).
    pub warnings: Vec<String>,
}

/// A problem in the configuration file, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file.
    pub path: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// The key (dotted for nested tables, e.g. `peer[1].psk_file`).
    pub key: String,
    /// What is wrong and what is expected.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(
                f,
                "{}:{l}: {}: {}",
                self.path.display(),
                self.key,
                self.message
            ),
            None => write!(f, "{}: {}: {}", self.path.display(), self.key, self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads and validates the configuration at `path` on a host with `host_addresses` (by
    /// which it finds itself in a mesh inventory when `[node] name` is not set).
    pub fn load_on_host(path: &Path, host_addresses: &[IpAddr]) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            path: path.to_path_buf(),
            line: None,
            key: "(file)".into(),
            message: format!(
                "cannot read the configuration: {}",
                keys::io_problem(&path.display().to_string(), &e)
            ),
        })?;
        validate::validate(path, &text, host_addresses)
    }

    /// How the node runs peer `i`.
    pub fn peer_policy(&self, i: usize) -> Option<PeerPolicy> {
        let p = self.peers.get(i)?;
        Some(PeerPolicy {
            ike: self.peer_config(i)?,
            start: p.start,
            start_delay: p.start_delay,
            dpd_delay: p.dpd_delay,
            dpd_timeout: p.dpd_timeout,
            dpd_action: p.dpd_action,
            tunnel_check: p.tunnel_check,
            child_lifetime_bytes: p.child_lifetime_bytes,
            child_lifetime_packets: p.child_lifetime_packets,
        })
    }

    /// The IKE engine's view of peer `i`.
    pub fn peer_config(&self, i: usize) -> Option<PeerConfig> {
        let p = self.peers.get(i)?;
        Some(PeerConfig {
            name: p.name.clone(),
            remote_addr: p.address,
            accept_from: p.accept_from.clone(),
            local_id: self.node.identity.clone(),
            remote_id: p.identity.clone(),
            psk: p.psk.clone(),
            local_auth: p.local_auth.clone(),
            peer_auth: p.peer_auth.clone(),
            ike_proposals: p.ike_proposals.clone(),
            esp_proposals: p.esp_proposals.clone(),
            local_ts: p.local_ts.clone(),
            remote_ts: p.remote_ts.clone(),
            mode: p.mode,
            accept_narrowing: true,
            child_lifetime: Some(p.child_lifetime),
            ike_lifetime: Some(p.ike_lifetime),
            reauth_lifetime: p.reauth_lifetime,
        })
    }
}
