//! What the engine needs to know about us and our peers.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use meshsec_crypto::Secret;
use meshsec_pki::{Credential, TrustStore};
use meshsec_wire::payload::{AddrSelector, Identity};

use crate::proposal::ProposalSpec;

/// Tunnel or transport mode for CHILD SAs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChildMode {
    /// Whole packets between the selectors are encapsulated.
    Tunnel,
    /// Only payloads; the hosts' own addresses are the selectors (USE_TRANSPORT_MODE).
    Transport,
}

/// How we prove our identity to a peer (RFC 7296 §2.15).
#[derive(Debug, Clone, Default)]
pub enum LocalAuth {
    /// AUTH is a MAC with the pre-shared key ([`PeerConfig::psk`]), method 2.
    #[default]
    Psk,
    /// AUTH is a signature by our certificate's key (RFC 7427 method 14 when the peer
    /// announced SIGNATURE_HASH_ALGORITHMS, else RFC 4754 for ECDSA keys); CERT payloads carry
    /// our chain.
    Certificate(Arc<Credential>),
}

/// How a peer must prove its identity.
#[derive(Debug, Clone)]
pub enum PeerAuth {
    /// Its AUTH is a MAC with [`PeerConfig::psk`] — or with one of `also`: during a PSK
    /// rotation both hosts accept the old and the new key while each switches the one it
    /// signs with, so no moment exists where they disagree.
    Psk {
        /// Keys accepted besides [`PeerConfig::psk`].
        also: Vec<Secret>,
    },
    /// Its AUTH is a signature by the key of a certificate that validates against this
    /// store (chain, validity, CRLs, usage) and holds its identity.
    Certificate(Arc<TrustStore>),
}

impl Default for PeerAuth {
    fn default() -> PeerAuth {
        PeerAuth::Psk { also: Vec::new() }
    }
}

/// One peer we may build an IKE SA with.
#[derive(Debug, Clone)]
pub struct PeerConfig {
    /// The operator's name for the peer (logs, explanations).
    pub name: String,
    /// The peer's address (IKE port included).
    pub remote_addr: SocketAddr,
    /// Where else the peer may initiate from, besides `remote_addr`'s address (road warriors,
    /// peers behind changing NATs; `0.0.0.0/0` and `::/0` for anywhere). An IKE_SA_INIT from an
    /// address no peer accepts is dropped unanswered, and an IKE_AUTH must come from an address
    /// the peer of its identity accepts: with pre-shared keys, the address is what keeps one
    /// peer from posing as another. Empty: `remote_addr` only.
    pub accept_from: Vec<AddrSelector>,
    /// Our identity towards this peer (IDi or IDr).
    pub local_id: Identity<'static>,
    /// The identity the peer must present.
    pub remote_id: Identity<'static>,
    /// The pre-shared key (ours to sign with when `local_auth` is [`LocalAuth::Psk`], and
    /// the peer's when `peer_auth` is [`PeerAuth::Psk`]).
    pub psk: Secret,
    /// How we authenticate to this peer.
    pub local_auth: LocalAuth,
    /// How this peer must authenticate to us.
    pub peer_auth: PeerAuth,
    /// IKE proposals, most preferred first.
    pub ike_proposals: Vec<ProposalSpec>,
    /// ESP proposals, most preferred first.
    pub esp_proposals: Vec<ProposalSpec>,
    /// Our side's traffic selectors.
    pub local_ts: Vec<AddrSelector>,
    /// The peer's side's traffic selectors.
    pub remote_ts: Vec<AddrSelector>,
    /// Tunnel or transport.
    pub mode: ChildMode,
    /// As initiator, accept a responder's narrower selectors (RFC 7296 §2.9).
    pub accept_narrowing: bool,
    /// CHILD SA lifetime: each CHILD SA is rekeyed after 80-90 % of it (at random, so that
    /// peers do not rekey in lockstep) and deleted when it ends without a successor. `None`:
    /// never rekeyed.
    pub child_lifetime: Option<std::time::Duration>,
    /// IKE SA lifetime: the IKE SA is rekeyed (RFC 7296 §2.18) after 80-90 % of it, at
    /// random; its CHILD SAs move to the new one untouched. `None`: never rekeyed.
    pub ike_lifetime: Option<std::time::Duration>,
    /// Authentication lifetime: the IKE SA is reauthenticated (a new IKE SA and CHILD SA set
    /// up from scratch, then the old ones deleted: make-before-break) after 80-90 % of it, at
    /// random; rekeys do not restart it. An IKE SA not reauthenticated by its end is
    /// deleted. `None`: only when the peer asks (AUTH_LIFETIME) or on demand.
    pub reauth_lifetime: Option<std::time::Duration>,
}

impl PeerConfig {
    /// Whether the peer may initiate from `ip`.
    pub fn accepts(&self, ip: IpAddr) -> bool {
        self.remote_addr.ip() == ip
            || self
                .accept_from
                .iter()
                .any(|s| s.start <= ip && ip <= s.end)
    }

    /// The addresses the peer may initiate from, for explanations.
    pub fn accepted_sources(&self) -> String {
        let mut out = self.remote_addr.ip().to_string();
        for s in &self.accept_from {
            if s.start == s.end {
                out.push_str(&format!(", {}", s.start));
            } else {
                out.push_str(&format!(", {}-{}", s.start, s.end));
            }
        }
        out
    }
}

/// Engine-wide settings.
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    /// Our address (IKE port included) — used in NAT detection.
    pub local_addr: SocketAddr,
    /// First retransmission timeout; doubles with each retry (RFC 7296 §2.1).
    pub retransmit_timeout: Duration,
    /// Longest wait between two transmissions: the doubling stops here, so that an exchange
    /// started during an outage completes within this long after the path returns.
    pub retransmit_max_timeout: Duration,
    /// Retransmissions before giving up: the give-up time is the sum of the waits
    /// `min(retransmit_timeout * 2^k, retransmit_max_timeout)` for k = 0..=tries (1 + 2 + 2
    /// + 2 + 2 = 9 s with the defaults).
    pub retransmit_tries: u32,
    /// How long a responder keeps a half-open IKE SA (IKE_SA_INIT answered, no IKE_AUTH).
    pub half_open_timeout: Duration,
    /// Most half-open IKE SAs kept at once. When full, a request with a valid cookie pushes
    /// out the oldest one admitted without a cookie (or its own source's oldest); any other
    /// request is dropped.
    pub max_half_open: usize,
    /// Most half-open IKE SAs from one source address; a source at its bound pushes out its
    /// own oldest, so one sender cannot fill the table or lock anyone else out.
    pub max_half_open_per_source: usize,
    /// From this many half-open IKE SAs on, IKE_SA_INIT requests must carry a valid COOKIE
    /// (RFC 7296 §2.6) before any state is kept; 0 demands cookies always.
    pub cookie_threshold: usize,
    /// From this many half-open IKE SAs of one source address on, that source's IKE_SA_INIT
    /// requests must carry a valid COOKIE: a flood from one (possibly spoofed) address costs
    /// a keyed hash per request, not a key exchange.
    pub cookie_threshold_per_source: usize,
    /// How long one cookie secret is used; the previous one is still accepted for as long.
    pub cookie_secret_lifetime: Duration,
    /// Encapsulate ESP in UDP (port 4500) even without a NAT, by announcing one (a fake
    /// NAT_DETECTION_SOURCE_IP hash): the daemon's UDP path batches with GSO/GRO, which raw
    /// ESP cannot.
    pub force_udp_encap: bool,
    /// Largest encrypted IKE message we send whole when the peer supports fragmentation
    /// (RFC 7383); larger ones go out as SKF fragments of about this size.
    pub fragment_size: usize,
    /// Behind a NAT, how often to send a NAT keepalive on each IKE SA (RFC 3948 §2.3), so
    /// that the NAT keeps the mapping of an idle tunnel; `None`: never.
    pub nat_keepalive: Option<Duration>,
}

impl EndpointConfig {
    /// Defaults in the spirit of strongSwan's (4 s first timeout is too slow for a mesh: 1 s).
    pub fn new(local_addr: SocketAddr) -> EndpointConfig {
        EndpointConfig {
            local_addr,
            retransmit_timeout: Duration::from_secs(1),
            retransmit_max_timeout: Duration::from_secs(2),
            retransmit_tries: 4,
            half_open_timeout: Duration::from_secs(30),
            max_half_open: 1024,
            max_half_open_per_source: 16,
            cookie_threshold: 64,
            cookie_threshold_per_source: 4,
            cookie_secret_lifetime: Duration::from_secs(120),
            fragment_size: 1280,
            force_udp_encap: false,
            nat_keepalive: Some(Duration::from_secs(20)),
        }
    }
}
