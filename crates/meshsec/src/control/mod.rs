//! The control protocol (documented in `docs/control-protocol.md`): newline-delimited JSON
//! over a root-only Unix socket, one request and one response per line, versioned so that
//! a CLI and a daemon of different versions refuse each other clearly instead of
//! misunderstanding.

pub mod client;
pub mod render;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// What the CLI asks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "kebab-case")]
pub enum Command {
    /// The whole state: node, peers, SAs, counters.
    Status,
    /// Bring a peer's tunnel up now (and keep it up if it is `start = "always"`).
    Up {
        /// The peer's name.
        peer: String,
    },
    /// Delete a peer's SAs and keep them down until `up`.
    Down {
        /// The peer's name.
        peer: String,
    },
    /// Re-read the configuration file; peers that changed are restarted, others untouched.
    Reload,
    /// Rekey a peer's newest CHILD SA now (or its IKE SA, or reauthenticate it),
    /// make-before-break.
    Rekey {
        /// The peer's name.
        peer: String,
        /// Rekey the IKE SA instead of the CHILD SA.
        #[serde(default)]
        ike: bool,
        /// Reauthenticate: a new IKE SA and CHILD SA from scratch, then the old ones deleted.
        #[serde(default)]
        reauth: bool,
    },
    /// Fault injection: remove one half of the newest CHILD SA with a peer from the data
    /// plane only (the IKE engine and the peer are not told) — the "half SA" that
    /// self-healing must repair.
    DebugDropSa {
        /// The peer's name.
        peer: String,
        /// `inbound` or `outbound`.
        direction: String,
    },
}

/// A request line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// [`PROTOCOL_VERSION`] of the sender.
    pub version: u32,
    /// The command.
    #[serde(flatten)]
    pub command: Command,
}

/// A response line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Response {
    /// [`PROTOCOL_VERSION`] of the daemon.
    pub version: u32,
    /// Whether the command succeeded.
    pub ok: bool,
    /// What went wrong (when `ok` is false), phrased for the operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The command's result (when `ok` is true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
}

impl Response {
    /// A success carrying `result`.
    pub fn ok(result: impl Serialize) -> Response {
        Response {
            version: PROTOCOL_VERSION,
            ok: true,
            error: None,
            result: serde_json::to_value(result).ok(),
        }
    }

    /// A failure.
    pub fn err(error: impl Into<String>) -> Response {
        Response {
            version: PROTOCOL_VERSION,
            ok: false,
            error: Some(error.into()),
            result: None,
        }
    }
}

/// `status`: the node and every peer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    /// The node's name.
    pub node: String,
    /// Our IKE identity.
    pub identity: String,
    /// meshsec version.
    pub version: String,
    /// AEAD library used by the data plane.
    pub aead_backend: String,
    /// TUN device.
    pub tun: String,
    /// Seconds since the daemon started.
    pub uptime_secs: u64,
    /// The configuration file.
    pub config: String,
    /// Peers in configuration order.
    pub peers: Vec<PeerStatus>,
    /// Drops not attributable to a peer (unknown SPI, no policy...), by reason.
    pub unattributed_drops: BTreeMap<String, u64>,
    /// Counters of the data path (socket and TUN errors, keepalives).
    pub data_path: BTreeMap<String, u64>,
    /// IKE messages the engine dropped or refused, and exchanges that failed, by kind
    /// (`unparseable`, `unknown_spi`, `undecryptable`, `invalid_syntax`,
    /// `no_proposal_chosen`, `timeout`...).
    #[serde(default)]
    pub ike_errors: BTreeMap<String, u64>,
    /// Unauthenticated initiators refused (`refused`; why is in `ike_errors`), and how many
    /// of those refusals the rate-limited log left out (`not_logged`).
    #[serde(default)]
    pub refusals: BTreeMap<String, u64>,
}

/// One peer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PeerStatus {
    /// Its name.
    pub name: String,
    /// Its configured address.
    pub address: String,
    /// The identity it must present.
    pub identity: String,
    /// `always`, `on-demand` or `passive`.
    pub start: String,
    /// `established`, `connecting`, `down`, `down (admin)`, `idle`.
    pub state: String,
    /// Seconds since the last IKE SA with it was established.
    pub last_handshake_secs_ago: Option<u64>,
    /// How long the last IKE SA establishment we initiated took, in milliseconds.
    pub handshake_ms: Option<u64>,
    /// Inner octets received from it.
    pub bytes_in: u64,
    /// Inner octets sent to it.
    pub bytes_out: u64,
    /// Packets received.
    pub packets_in: u64,
    /// Packets sent.
    pub packets_out: u64,
    /// Drops on its SAs, by reason.
    pub drops: BTreeMap<String, u64>,
    /// The last negotiation failure, explained.
    pub last_failure: Option<String>,
    /// The last refusal of a sender that looked like this peer but had not authenticated
    /// (e.g. an identity mismatch seen as responder), while the peer was not up.
    #[serde(default)]
    pub last_refusal: Option<String>,
    /// CHILD SA rekeys (by either side) since the daemon started.
    #[serde(default)]
    pub child_rekeys: u64,
    /// IKE SA rekeys (by either side) since the daemon started.
    #[serde(default)]
    pub ike_rekeys: u64,
    /// Reauthentications (by either side: a new IKE SA replaced the old one).
    #[serde(default)]
    pub reauths: u64,
    /// Rekey collisions (both ends rekeyed the same SA at once), resolved.
    #[serde(default)]
    pub rekey_collisions: u64,
    /// Seconds since anything authenticated (IKE or ESP) came from the peer.
    #[serde(default)]
    pub last_heard_secs_ago: Option<u64>,
    /// DPD checks sent (only when the peer was quiet for `dpd_delay`).
    #[serde(default)]
    pub dpd_checks: u64,
    /// Times the peer was declared dead.
    #[serde(default)]
    pub deaths: u64,
    /// INVALID_SPI notifications sent to it (its ESP reached us for no SA).
    #[serde(default)]
    pub invalid_spi_sent: u64,
    /// INVALID_SPI notifications received from it (it lost a half of one of our SAs).
    #[serde(default)]
    pub invalid_spi_received: u64,
    /// CHILD SAs replaced because a half was lost (on either side).
    #[serde(default)]
    pub heals: u64,
    /// Failed negotiations with it (each one sets `last_failure`).
    #[serde(default)]
    pub failures: u64,
    /// Our certificate towards it (`auth = "cert"`).
    #[serde(default)]
    pub certificate: Option<CertStatus>,
    /// Its IKE SAs.
    pub ike_sas: Vec<IkeSaStatus>,
    /// Its CHILD SAs.
    pub child_sas: Vec<ChildSaStatus>,
}

/// A certificate and when it expires.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CertStatus {
    /// Its subject.
    pub subject: String,
    /// Its notAfter.
    pub not_after: String,
    /// Whole days until then (negative: expired).
    pub days_left: i64,
}

/// One IKE SA.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IkeSaStatus {
    /// Initiator's SPI (hex).
    pub spi_i: String,
    /// Responder's SPI (hex).
    pub spi_r: String,
    /// `initiator` or `responder`.
    pub role: String,
    /// What it waits for, e.g. `Established`.
    pub state: String,
    /// Our address:port.
    pub local: String,
    /// The peer's address:port.
    pub remote: String,
    /// Negotiated proposal.
    pub proposal: String,
    /// Seconds since it was created.
    pub age_secs: u64,
    /// ESP travels in UDP (RFC 3948): behind a NAT, or by configuration (our default).
    #[serde(default)]
    pub udp_encap: bool,
    /// What NAT detection found (RFC 7296 §2.23), e.g. "NAT: we are behind one"; `None`
    /// when no address was translated.
    #[serde(default)]
    pub nat: Option<String>,
    /// The certificate the peer authenticated with.
    #[serde(default)]
    pub peer_certificate: Option<CertStatus>,
}

/// One CHILD SA pair.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChildSaStatus {
    /// Our inbound SPI (hex).
    pub spi_in: String,
    /// The outbound SPI (hex).
    pub spi_out: String,
    /// Negotiated proposal.
    pub proposal: String,
    /// `tunnel` or `transport`.
    pub mode: String,
    /// `ESP` or `ESP-in-UDP`.
    pub encap: String,
    /// Our selectors.
    pub local_ts: Vec<String>,
    /// The peer's selectors.
    pub remote_ts: Vec<String>,
    /// Seconds since it was installed.
    pub age_secs: u64,
    /// Inner octets received on it.
    pub bytes_in: u64,
    /// Inner octets sent on it.
    pub bytes_out: u64,
    /// Packets received.
    pub packets_in: u64,
    /// Packets sent.
    pub packets_out: u64,
}

/// `reload`: what changed.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ReloadReport {
    /// Peers added.
    pub added: Vec<String>,
    /// Peers removed (their SAs deleted).
    pub removed: Vec<String>,
    /// Peers whose negotiated settings changed (their SAs restarted).
    pub changed: Vec<String>,
    /// Peers whose other settings changed (liveness, start, limits): applied in place, their
    /// SAs untouched.
    #[serde(default)]
    pub updated: Vec<String>,
    /// Peers left untouched.
    pub unchanged: Vec<String>,
    /// Things the reload could not apply or that deserve attention.
    pub warnings: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_have_the_documented_shape() {
        let r = Request {
            version: 1,
            command: Command::Up { peer: "b".into() },
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"version":1,"command":"up","peer":"b"}"#
        );
        let s: Request = serde_json::from_str(r#"{"version":1,"command":"status"}"#).unwrap();
        assert_eq!(s.command, Command::Status);
        assert!(serde_json::from_str::<Request>(r#"{"version":1,"command":"explode"}"#).is_err());
    }
}
