//! The configuration file as written: TOML tables with source spans, before any meaning is
//! given to the strings (that is `validate`'s job, which can then point at the exact line).

use serde::Deserialize;
use toml::Spanned;

/// A string value with its place in the file.
pub(crate) type S = Spanned<String>;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    pub(crate) node: RawNode,
    #[serde(default)]
    pub(crate) defaults: RawPeerSettings,
    #[serde(default)]
    pub(crate) peer: Vec<RawPeer>,
}

/// `[node]`: this host.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNode {
    pub(crate) name: Option<S>,
    pub(crate) identity: Option<S>,
    pub(crate) addresses: Option<Spanned<Vec<S>>>,
    pub(crate) inventory: Option<S>,
    pub(crate) tun: Option<S>,
    pub(crate) mtu: Option<Spanned<i64>>,
    pub(crate) control_socket: Option<S>,
    pub(crate) nat_keepalive: Option<S>,
    pub(crate) esp_encap: Option<S>,
}

/// Settings a peer may set and `[defaults]` may give for all peers.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPeerSettings {
    pub(crate) ike_proposals: Option<Spanned<Vec<S>>>,
    pub(crate) esp_proposals: Option<Spanned<Vec<S>>>,
    pub(crate) mode: Option<S>,
    pub(crate) start: Option<S>,
    pub(crate) ike_lifetime: Option<S>,
    pub(crate) child_lifetime: Option<S>,
    pub(crate) reauth_lifetime: Option<S>,
    pub(crate) dpd_delay: Option<S>,
    pub(crate) dpd_timeout: Option<S>,
    pub(crate) dpd_action: Option<S>,
    pub(crate) tunnel_check: Option<S>,
    pub(crate) child_lifetime_bytes: Option<S>,
    pub(crate) child_lifetime_packets: Option<Spanned<i64>>,
    pub(crate) allow_weak_psk: Option<Spanned<bool>>,
    pub(crate) allow_weak_crypto: Option<Spanned<bool>>,
    pub(crate) allow_shared_psk: Option<Spanned<bool>>,
    pub(crate) accept_from: Option<Spanned<Vec<S>>>,
    pub(crate) auth: Option<S>,
    pub(crate) peer_auth: Option<S>,
    pub(crate) cert_file: Option<S>,
    pub(crate) key_file: Option<S>,
    pub(crate) ca_files: Option<Spanned<Vec<S>>>,
    pub(crate) crl_files: Option<Spanned<Vec<S>>>,
    pub(crate) accept_psk_file: Option<S>,
}

/// `[[peer]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPeer {
    pub(crate) name: S,
    pub(crate) address: S,
    pub(crate) identity: S,
    pub(crate) psk_file: Option<S>,
    pub(crate) local_ts: Spanned<Vec<S>>,
    pub(crate) remote_ts: Spanned<Vec<S>>,
    // The per-peer settings (serde cannot flatten with deny_unknown_fields, so they are
    // repeated here; `setting!` in validate.rs picks the peer's or the default).
    pub(crate) ike_proposals: Option<Spanned<Vec<S>>>,
    pub(crate) esp_proposals: Option<Spanned<Vec<S>>>,
    pub(crate) mode: Option<S>,
    pub(crate) start: Option<S>,
    pub(crate) ike_lifetime: Option<S>,
    pub(crate) child_lifetime: Option<S>,
    pub(crate) reauth_lifetime: Option<S>,
    pub(crate) dpd_delay: Option<S>,
    pub(crate) dpd_timeout: Option<S>,
    pub(crate) dpd_action: Option<S>,
    pub(crate) tunnel_check: Option<S>,
    pub(crate) child_lifetime_bytes: Option<S>,
    pub(crate) child_lifetime_packets: Option<Spanned<i64>>,
    pub(crate) allow_weak_psk: Option<Spanned<bool>>,
    pub(crate) allow_weak_crypto: Option<Spanned<bool>>,
    pub(crate) allow_shared_psk: Option<Spanned<bool>>,
    pub(crate) accept_from: Option<Spanned<Vec<S>>>,
    pub(crate) auth: Option<S>,
    pub(crate) peer_auth: Option<S>,
    pub(crate) cert_file: Option<S>,
    pub(crate) key_file: Option<S>,
    pub(crate) ca_files: Option<Spanned<Vec<S>>>,
    pub(crate) crl_files: Option<Spanned<Vec<S>>>,
    pub(crate) accept_psk_file: Option<S>,
}

/// A mesh inventory file (`[node] inventory`): the same file on every host.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawInventory {
    pub(crate) mesh: RawMesh,
    /// Settings for every pair of the mesh (the keys of a configuration's `[defaults]`).
    #[serde(default)]
    pub(crate) defaults: RawPeerSettings,
    /// The hosts, by name.
    pub(crate) hosts: Spanned<std::collections::BTreeMap<S, RawHost>>,
    #[serde(default)]
    pub(crate) rule: Vec<RawRule>,
}

/// `[mesh]`: what holds for the whole mesh.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMesh {
    pub(crate) secret_file: Option<S>,
    pub(crate) require: Option<Spanned<Vec<S>>>,
    pub(crate) bypass: Option<Spanned<Vec<S>>>,
    pub(crate) default_bypass: Option<Spanned<bool>>,
    pub(crate) fail_closed: Option<Spanned<bool>>,
}

/// One host of the inventory (one line: `name = { addresses = [...], ... }`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHost {
    pub(crate) addresses: Spanned<Vec<S>>,
    pub(crate) mtu: Option<Spanned<i64>>,
    pub(crate) identity: Option<S>,
    pub(crate) cluster: Option<S>,
    pub(crate) groups: Option<Vec<S>>,
}

/// `[[rule]]`: hosts of `from` may reach hosts of `to` (on `ports` only, when given).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRule {
    pub(crate) from: S,
    pub(crate) to: S,
    pub(crate) ports: Option<Spanned<Vec<S>>>,
}
