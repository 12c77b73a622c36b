//! The state one IKE SA keeps, and the reliability layer of its exchanges (RFC 7296 §2.1–§2.2):
//! message IDs, retransmission with exponential backoff, and the response cache that answers
//! retransmitted requests without processing them again.

use meshsec_types::{IkeSpi, InboundSpi, OutboundSpi};
use std::net::SocketAddr;
use std::time::Duration;

use meshsec_crypto::ke::KeyExchange;
use meshsec_crypto::keys::{IkeKeys, IkeSuite};
use meshsec_crypto::sk::SkKey;
use meshsec_wire::registry::ExchangeType;

use crate::event::PeerId;

pub use meshsec_types::Timestamp;

/// Which end of the IKE SA we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// We sent the first IKE_SA_INIT.
    Initiator,
    /// We answered it.
    Responder,
}

/// What the SA waits for (states are named after it, DESIGN §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Initiator: the IKE_SA_INIT response.
    ExpectSaInitResponse,
    /// Responder: the IKE_AUTH request (the SA is half-open).
    ExpectAuthRequest,
    /// Initiator: the IKE_AUTH response.
    ExpectAuthResponse,
    /// Both sides authenticated.
    Established,
}

/// Our outstanding request.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    pub(crate) exchange: ExchangeType,
    pub(crate) message_id: u32,
    /// The datagrams of the request (several when fragmented, RFC 7383).
    pub(crate) datagrams: Vec<Vec<u8>>,
    /// Transmissions so far.
    pub(crate) tries: u32,
    pub(crate) next_at: Timestamp,
}

/// Keys and transforms once IKE_SA_INIT is done.
pub(crate) struct Crypto {
    pub(crate) suite: IkeSuite,
    pub(crate) keys: IkeKeys,
    /// Protects what we receive.
    pub(crate) sk_in: SkKey,
    /// Protects what we send.
    pub(crate) sk_out: SkKey,
}

/// One IKE SA (or an attempt at one).
pub(crate) struct IkeSa {
    pub(crate) role: Role,
    pub(crate) state: State,
    /// The peer, once known (a responder learns it from IDi).
    pub(crate) peer: Option<PeerId>,
    pub(crate) spi_i: IkeSpi,
    pub(crate) spi_r: IkeSpi,
    /// Our address and port for this SA (port 4500 once NAT-T floated).
    pub(crate) local: SocketAddr,
    /// The peer's address and port as last seen in an authenticated message.
    pub(crate) remote: SocketAddr,
    pub(crate) created: Timestamp,
    pub(crate) ni: Vec<u8>,
    pub(crate) nr: Vec<u8>,
    /// Our key exchange (until the shared secret is computed).
    pub(crate) kx: Option<KeyExchange>,
    pub(crate) crypto: Option<Crypto>,
    /// Our IKE_SA_INIT message as sent (the RealMessage our AUTH signs).
    pub(crate) our_init: Vec<u8>,
    /// The peer's IKE_SA_INIT message as received.
    pub(crate) peer_init: Vec<u8>,
    /// Message ID of our next request.
    pub(crate) next_request_id: u32,
    /// Message ID we expect in the peer's next request.
    pub(crate) expected_request_id: u32,
    pub(crate) pending: Option<Pending>,
    /// The last response we sent, for retransmitted requests.
    pub(crate) last_response: Option<(u32, Vec<Vec<u8>>)>,
    /// The ESP SPI we offered for our inbound CHILD SA in IKE_AUTH.
    pub(crate) child_spi: InboundSpi,
    /// The CHILD SAs of this IKE SA, oldest first.
    pub(crate) children: Vec<Child>,
    /// Exchanges waiting for our request window (one request at a time, RFC 7296 §2.3).
    pub(crate) tasks: std::collections::VecDeque<Task>,
    /// Our CREATE_CHILD_SA request in flight, if any.
    pub(crate) child_exchange: Option<crate::create_child::ChildExchange>,
    /// Our queued tasks wait until then (after a TEMPORARY_FAILURE).
    pub(crate) tasks_after: Timestamp,
    /// When it became established.
    pub(crate) established_at: Option<Timestamp>,
    /// When to rekey it (soft lifetime with jitter), if it has a lifetime.
    pub(crate) rekey_at: Option<Timestamp>,
    /// Our IKE SA rekey in flight, if any.
    pub(crate) ike_exchange: Option<crate::rekey_ike::IkeRekeyExchange>,
    /// Replaced (since `rekeyed_at`) by a rekey — its CHILD SAs moved to the new IKE SA — or
    /// by a reauthentication (`reauth.by`) — its CHILD SAs stay and go with it: it waits for
    /// its Delete, and is deleted by us if none comes.
    pub(crate) rekeyed: bool,
    pub(crate) rekeyed_at: Timestamp,
    /// It lost the resolution of duplicate IKE SAs (simultaneous initiation): replaced too.
    pub(crate) duplicate: bool,
    /// The IKE SA that replaced it (where late CHILD SAs go).
    pub(crate) successor: Option<IkeSpi>,
    /// What our outstanding INFORMATIONAL request is for.
    pub(crate) info_purpose: Option<crate::informational::InfoPurpose>,
    pub(crate) nat_detected: bool,
    /// Both sides announced IKEV2_FRAGMENTATION_SUPPORTED (RFC 7383).
    pub(crate) fragmentation: bool,
    /// Fragments of an incoming message being reassembled.
    pub(crate) reassembly: Option<Reassembly>,
    /// The negotiated IKE proposal in strongSwan's notation (empty until chosen).
    pub(crate) proposal: String,
    /// Its reauthentication (see the `reauth` module).
    pub(crate) reauth: Reauth,
}

/// An IKE SA's reauthentication (RFC 7296 §2.8.3, RFC 4478): when, and the IKE SAs on
/// either side of one in progress.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Reauth {
    /// When the peer was authenticated (IKE_AUTH): rekeys keep it, so that it says how old
    /// the authentication of an SA is, whatever its keys.
    pub(crate) since: Option<Timestamp>,
    /// When to start it (soft lifetime with jitter).
    pub(crate) at: Option<Timestamp>,
    /// When the authentication ends: an IKE SA not replaced by then is deleted.
    pub(crate) expires: Option<Timestamp>,
    /// (Old SA) the IKE SA that replaces it: ours being set up, or the peer's, up.
    pub(crate) by: Option<IkeSpi>,
    /// (New SA) we set it up to replace this IKE SA.
    pub(crate) of: Option<IkeSpi>,
}

/// Where a CHILD SA is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChildState {
    /// Carrying traffic.
    Installed,
    /// Our rekey of it is in flight.
    Rekeying,
    /// Superseded by a newer CHILD SA; its Delete is coming (from us or the peer).
    Rekeyed,
    /// Our Delete of it is in flight.
    Deleting,
}

/// One CHILD SA as the IKE SA knows it.
#[derive(Debug, Clone)]
pub(crate) struct Child {
    /// Our inbound SPI.
    pub(crate) inbound: InboundSpi,
    /// The peer's inbound SPI (our outbound).
    pub(crate) outbound: OutboundSpi,
    pub(crate) mode: crate::config::ChildMode,
    pub(crate) local_ts: Vec<meshsec_wire::payload::AddrSelector>,
    pub(crate) remote_ts: Vec<meshsec_wire::payload::AddrSelector>,
    /// When to rekey it (soft lifetime with jitter), if it has a lifetime.
    pub(crate) rekey_at: Option<Timestamp>,
    /// When it must be gone (hard lifetime).
    pub(crate) expire_at: Option<Timestamp>,
    pub(crate) state: ChildState,
}

/// An exchange we will start when the request window is free.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Task {
    /// Rekey the CHILD SA with this inbound SPI.
    RekeyChild(InboundSpi),
    /// Create an additional CHILD SA with the configured selectors.
    CreateChild,
    /// Delete the CHILD SA with this inbound SPI.
    DeleteChild(InboundSpi),
    /// Empty INFORMATIONAL.
    Liveness,
    /// Delete the IKE SA.
    DeleteIke,
    /// Tell the peer its ESP with this SPI reached us for no SA (INVALID_SPI).
    InvalidSpi(InboundSpi),
    /// Rekey the IKE SA itself.
    RekeyIke,
    /// Replace the IKE SA by a new one, authenticated again (make-before-break).
    Reauthenticate,
}

/// An incoming fragmented message (RFC 7383 §2.6): each fragment was authenticated on
/// arrival; the plaintext pieces wait here until all are in.
#[derive(Debug, Default)]
pub(crate) struct Reassembly {
    pub(crate) message_id: u32,
    pub(crate) total: u16,
    pub(crate) first_inner: Option<meshsec_wire::registry::PayloadType>,
    pub(crate) parts: std::collections::BTreeMap<u16, Vec<u8>>,
}

impl IkeSa {
    /// A fresh IKE SA in `state` between `local` and `remote` (ports included), created
    /// `now`; everything else starts empty and is filled in by the exchange that made it.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        role: Role,
        state: State,
        peer: Option<PeerId>,
        (spi_i, spi_r): (IkeSpi, IkeSpi),
        (local, remote): (SocketAddr, SocketAddr),
        now: Timestamp,
        child_spi: InboundSpi,
    ) -> IkeSa {
        IkeSa {
            role,
            state,
            peer,
            spi_i,
            spi_r,
            local,
            remote,
            created: now,
            ni: Vec::new(),
            nr: Vec::new(),
            kx: None,
            crypto: None,
            our_init: Vec::new(),
            peer_init: Vec::new(),
            next_request_id: 0,
            expected_request_id: 0,
            pending: None,
            last_response: None,
            child_spi,
            children: Vec::new(),
            tasks: std::collections::VecDeque::new(),
            child_exchange: None,
            tasks_after: Timestamp::ZERO,
            established_at: None,
            rekey_at: None,
            ike_exchange: None,
            rekeyed: false,
            rekeyed_at: Timestamp::ZERO,
            duplicate: false,
            successor: None,
            info_purpose: None,
            nat_detected: false,
            fragmentation: false,
            reassembly: None,
            proposal: String::new(),
            reauth: Reauth::default(),
        }
    }

    /// Records a request we are sending now and arms its retransmission.
    pub(crate) fn send_request(
        &mut self,
        now: Timestamp,
        exchange: ExchangeType,
        datagrams: Vec<Vec<u8>>,
        first_timeout: Duration,
    ) {
        self.pending = Some(Pending {
            exchange,
            message_id: self.next_request_id,
            datagrams,
            tries: 1,
            next_at: now + first_timeout,
        });
    }
}
