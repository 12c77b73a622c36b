//! The endpoint: every IKE SA of this node, demultiplexed by SPI, and the sans-IO API the
//! daemon (or the simulator) drives.
//!
//! Call order (as in quinn-proto): feed input with [`Endpoint::handle_datagram`],
//! [`Endpoint::handle_timeout`] (when [`Endpoint::poll_timeout`] is due) and
//! [`Endpoint::initiate`]; then drain [`Endpoint::poll_transmit`] and
//! [`Endpoint::poll_event`]. Nothing here touches a socket or a clock.

use meshsec_types::{IkeSpi, InboundSpi};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;

use meshsec_crypto::Provider;
use meshsec_crypto::ke::KeyExchange;
use meshsec_crypto::rng::Random;
use meshsec_crypto::sk::Opened;
use meshsec_wire::payload::{Notify, Payload, PayloadBody, emit_payloads};
use meshsec_wire::registry::{ExchangeType, KeMethod, NotifyType, PayloadType};
use meshsec_wire::{Flags, Header, Message};

use crate::config::{EndpointConfig, PeerConfig};
use crate::cookie::CookieJar;
use crate::event::{Event, Failure, PeerId, Transmit};
use crate::sa::{IkeSa, Reassembly, Role, State, Timestamp};

/// Most fragments of one message we send or accept.
const MAX_FRAGMENTS: u16 = 32;
/// Most octets of one reassembled message.
const MAX_REASSEMBLED: usize = 64 * 1024;

/// The Fragment Number of an SKF message, if it is one.
fn fragment_number(bytes: &[u8]) -> Option<u16> {
    let info = Header::parse(bytes).ok()?;
    if info.first_payload != PayloadType::SKF {
        return None;
    }
    let b = bytes.get(32..34)?;
    Some(u16::from_be_bytes([*b.first()?, *b.get(1)?]))
}

/// Length of the nonces we send (RFC 7296 §2.10: at least half the PRF key size; 32 covers
/// every PRF we offer).
pub(crate) const NONCE_LEN: usize = 32;

/// Why a call on the endpoint was refused (a local mistake, never the peer's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiMisuse {
    /// No peer with this index.
    UnknownPeer(PeerId),
    /// The random number generator failed.
    Random,
    /// No id left for another peer.
    TooManyPeers,
}

impl core::fmt::Display for ApiMisuse {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ApiMisuse::UnknownPeer(p) => write!(f, "no peer #{p} in the configuration"),
            ApiMisuse::Random => f.write_str("the random number generator failed"),
            ApiMisuse::TooManyPeers => f.write_str("too many peers"),
        }
    }
}

impl std::error::Error for ApiMisuse {}

/// All IKE SAs of this node.
pub struct Endpoint {
    pub(crate) config: EndpointConfig,
    pub(crate) peers: crate::inventory::PeerTable,
    /// By our SPI.
    pub(crate) sas: HashMap<IkeSpi, IkeSa>,
    /// Responder: (peer address, peer's SPIi) → our SPIr, to answer retransmitted
    /// IKE_SA_INIT requests from the cache.
    pub(crate) init_index: HashMap<(SocketAddr, IkeSpi), IkeSpi>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    pub(crate) rng: Box<dyn Random + Send>,
    pub(crate) provider: Provider,
    /// Key exchanges to use instead of generating new ones (see `script_key_exchange`).
    scripted_kx: VecDeque<KeyExchange>,
    /// Cookie secrets, made when first needed.
    pub(crate) cookies: Option<CookieJar>,
    /// Stateless replies (COOKIE, INVALID_KE_PAYLOAD, NO_PROPOSAL_CHOSEN) sent per source
    /// address in the current second: they go to unverified addresses, so they are capped.
    stateless_replies: HashMap<std::net::IpAddr, (u64, u32)>,
    /// The time of the datagram being handled.
    pub(crate) now_hint: Timestamp,
    /// Peers we have had an IKE SA with since start (INITIAL_CONTACT goes only in the first).
    pub(crate) contacted: std::collections::HashSet<PeerId>,
    /// When we last told each peer about an unknown SPI (rate limit).
    pub(crate) invalid_spi_sent: HashMap<PeerId, Timestamp>,
}

/// Stateless replies per source address per second.
const STATELESS_REPLIES_PER_SECOND: u32 = 20;

impl core::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Endpoint")
            .field("local", &self.config.local_addr)
            .field("peers", &self.peers.len())
            .field("ike_sas", &self.sas.len())
            .finish()
    }
}

impl Endpoint {
    /// An endpoint for `peers`, drawing nonces, SPIs and private keys from `rng`.
    pub fn new(
        config: EndpointConfig,
        peers: Vec<PeerConfig>,
        rng: Box<dyn Random + Send>,
        provider: Provider,
    ) -> Endpoint {
        Endpoint {
            config,
            peers: crate::inventory::PeerTable::new(peers),
            sas: HashMap::new(),
            init_index: HashMap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            rng,
            provider,
            scripted_kx: VecDeque::new(),
            cookies: None,
            stateless_replies: HashMap::new(),
            now_hint: Timestamp::ZERO,
            contacted: std::collections::HashSet::new(),
            invalid_spi_sent: HashMap::new(),
        }
    }

    /// Makes the next key exchange of `kx`'s method use `kx` instead of a fresh one. For
    /// replaying recorded handshakes (with [`KeyExchange::recorded`]) and for fully scripted
    /// tests; only with the `test-hooks` feature.
    #[cfg(feature = "test-hooks")]
    pub fn script_key_exchange(&mut self, kx: KeyExchange) {
        self.scripted_kx.push_back(kx);
    }

    /// A key exchange for `method`: a scripted one if queued, else a fresh one.
    pub(crate) fn key_exchange(&mut self, method: KeMethod) -> Result<KeyExchange, ApiMisuse> {
        if let Some(i) = self.scripted_kx.iter().position(|k| k.method() == method)
            && let Some(kx) = self.scripted_kx.remove(i)
        {
            return Ok(kx);
        }
        let provider = self.provider;
        provider
            .key_exchange(method, self.rng.as_mut())
            .map_err(|_| ApiMisuse::Random)
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Endpoint::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.sas
            .values()
            .filter_map(|sa| match (&sa.pending, sa.state) {
                (Some(p), _) => Some(p.next_at),
                (None, State::ExpectAuthRequest) => {
                    Some(sa.created + self.config.half_open_timeout)
                }
                _ => None,
            })
            .chain(self.child_deadline())
            .min()
    }

    /// Changes the size above which encrypted messages are fragmented (RFC 7383).
    pub fn set_fragment_size(&mut self, size: usize) {
        self.config.fragment_size = size;
    }

    /// Number of half-open IKE SAs (answered IKE_SA_INIT, no IKE_AUTH yet).
    pub fn half_open_count(&self) -> usize {
        self.sas
            .values()
            .filter(|s| s.state == State::ExpectAuthRequest)
            .count()
    }

    /// Number of IKE SAs (in any state).
    pub fn ike_sa_count(&self) -> usize {
        self.sas.len()
    }

    /// Number of established IKE SAs with `peer`.
    pub fn established_with(&self, peer: PeerId) -> usize {
        self.sas
            .values()
            .filter(|sa| sa.peer == Some(peer) && sa.state == State::Established)
            .count()
    }

    pub(crate) fn transmit(&mut self, dst: SocketAddr, payload: Vec<u8>) {
        let src = self.config.local_addr;
        self.transmit_from(src, dst, payload);
    }

    pub(crate) fn transmit_from(&mut self, src: SocketAddr, dst: SocketAddr, payload: Vec<u8>) {
        self.transmits.push_back(Transmit {
            src,
            dst,
            payload,
            kind: crate::event::TransmitKind::Ike,
        });
    }

    pub(crate) fn transmit_all(
        &mut self,
        src: SocketAddr,
        dst: SocketAddr,
        datagrams: Vec<Vec<u8>>,
    ) {
        for d in datagrams {
            self.transmit_from(src, dst, d);
        }
    }

    /// Authenticates and decrypts an SK message, or one SKF fragment of it (RFC 7383 §2.6);
    /// returns the whole inner payload chain once everything is in.
    pub(crate) fn open_message(
        &mut self,
        spi: IkeSpi,
        message_id: u32,
        bytes: &[u8],
    ) -> Option<Opened> {
        let sa = self.sas.get_mut(&spi)?;
        let opened = sa.crypto.as_ref()?.sk_in.open(bytes).ok()?;
        let Some((number, total)) = opened.fragment else {
            return Some(opened);
        };
        if total > MAX_FRAGMENTS {
            return None;
        }
        let r = sa.reassembly.get_or_insert_with(Default::default);
        if r.message_id != message_id || r.total != total {
            *r = Reassembly {
                message_id,
                total,
                ..Default::default()
            };
        }
        if number == 1 {
            r.first_inner = Some(opened.first_inner);
        }
        r.parts.insert(number, opened.plaintext);
        let size: usize = r.parts.values().map(Vec::len).sum();
        if size > MAX_REASSEMBLED {
            sa.reassembly = None;
            return None;
        }
        if r.parts.len() < usize::from(total) {
            return None;
        }
        let r = sa.reassembly.take()?;
        Some(Opened {
            first_inner: r.first_inner?,
            plaintext: r.parts.into_values().flatten().collect(),
            fragment: None,
        })
    }

    pub(crate) fn event(&mut self, e: Event) {
        self.events.push_back(e);
    }

    pub(crate) fn fail(&mut self, peer: Option<PeerId>, failure: Failure) {
        self.events.push_back(Event::Failed { peer, failure });
    }

    pub(crate) fn random_bytes(&mut self, n: usize) -> Result<Vec<u8>, ApiMisuse> {
        let mut v = vec![0u8; n];
        self.rng.fill(&mut v).map_err(|_| ApiMisuse::Random)?;
        Ok(v)
    }

    /// A fresh non-zero IKE SPI not in use here.
    pub(crate) fn new_ike_spi(&mut self) -> Result<IkeSpi, ApiMisuse> {
        loop {
            let mut b = [0u8; 8];
            self.rng.fill(&mut b).map_err(|_| ApiMisuse::Random)?;
            let spi = IkeSpi::new(u64::from_be_bytes(b));
            if spi != IkeSpi::ZERO && !self.sas.contains_key(&spi) {
                return Ok(spi);
            }
        }
    }

    /// A fresh ESP SPI (values below 256 are reserved, RFC 4303 §2.1).
    pub(crate) fn new_esp_spi(&mut self) -> Result<InboundSpi, ApiMisuse> {
        loop {
            let mut b = [0u8; 4];
            self.rng.fill(&mut b).map_err(|_| ApiMisuse::Random)?;
            let spi = u32::from_be_bytes(b);
            if spi >= 256 {
                return Ok(InboundSpi::new(spi));
            }
        }
    }

    /// Sends `inner` as our next request on IKE SA `spi` (its message ID, retransmission
    /// armed); false if the SA is gone or the message cannot be sealed.
    pub(crate) fn send_request_message(
        &mut self,
        now: Timestamp,
        spi: IkeSpi,
        exchange: ExchangeType,
        inner: &[Payload<'_>],
    ) -> bool {
        let Some(message_id) = self.sas.get(&spi).map(|sa| sa.next_request_id) else {
            return false;
        };
        let Some(bytes) = self.seal_message(spi, exchange, false, message_id, inner) else {
            return false;
        };
        let timeout = self.config.retransmit_timeout;
        let Some(sa) = self.sas.get_mut(&spi) else {
            return false;
        };
        sa.send_request(now, exchange, bytes.clone(), timeout);
        let (local, remote) = (sa.local, sa.remote);
        self.transmit_all(local, remote, bytes);
        true
    }

    /// Encrypts `inner` into a message of this SA: one datagram, or SKF fragments of about
    /// `fragment_size` octets when it is bigger and the peer supports fragmentation.
    pub(crate) fn seal_message(
        &mut self,
        spi: IkeSpi,
        exchange: ExchangeType,
        response: bool,
        message_id: u32,
        inner: &[Payload<'_>],
    ) -> Option<Vec<Vec<u8>>> {
        let sa = self.sas.get(&spi)?;
        let crypto = sa.crypto.as_ref()?;
        let mut chain = Vec::new();
        let first = emit_payloads(inner, &mut chain).ok()?;
        let header = Header {
            spi_i: sa.spi_i.get(),
            spi_r: sa.spi_r.get(),
            minor_version: 0,
            exchange,
            flags: Flags::new(sa.role == Role::Initiator, response),
            message_id,
        };
        let whole = crypto
            .sk_out
            .seal(&header, first, &chain, self.rng.as_mut())
            .ok()?;
        if !sa.fragmentation || whole.len() <= self.config.fragment_size {
            return Some(vec![whole]);
        }
        // IKE header, SKF header, the largest IV, ICV and padding.
        let chunk = self
            .config
            .fragment_size
            .saturating_sub(28 + 8 + 16 + 32 + 17)
            .max(64);
        let pieces: Vec<&[u8]> = chain.chunks(chunk).collect();
        let total = u16::try_from(pieces.len())
            .ok()
            .filter(|t| *t <= MAX_FRAGMENTS)?;
        let mut out = Vec::with_capacity(pieces.len());
        for (piece, number) in pieces.into_iter().zip(1u16..) {
            let first_inner = if number == 1 {
                first
            } else {
                PayloadType::NONE
            };
            out.push(
                crypto
                    .sk_out
                    .seal_fragment(
                        &header,
                        (number, total),
                        first_inner,
                        piece,
                        self.rng.as_mut(),
                    )
                    .ok()?,
            );
        }
        Some(out)
    }

    /// An unencrypted one-Notify answer to an IKE_SA_INIT request (no state is kept), within
    /// the per-source budget for stateless replies.
    pub(crate) fn answer_init_with_notify(
        &mut self,
        request: &Header,
        to: SocketAddr,
        ty: NotifyType,
        data: Vec<u8>,
    ) {
        let second = self.now_hint.since_epoch().as_secs();
        if self.stateless_replies.len() > 4096 {
            self.stateless_replies.retain(|_, (s, _)| *s == second);
        }
        let entry = self.stateless_replies.entry(to.ip()).or_insert((second, 0));
        if entry.0 != second {
            *entry = (second, 0);
        }
        if entry.1 >= STATELESS_REPLIES_PER_SECOND {
            return;
        }
        entry.1 += 1;
        let m = Message {
            header: Header {
                spi_i: request.spi_i,
                spi_r: 0,
                minor_version: 0,
                exchange: ExchangeType::IKE_SA_INIT,
                flags: Flags::new(false, true),
                message_id: 0,
            },
            payloads: vec![Payload::new(PayloadBody::Notify(Notify::new(ty, data)))],
        };
        if let Ok(bytes) = m.to_bytes() {
            self.transmit(to, bytes);
        }
    }

    /// Feeds one received datagram (an IKE message without the port-4500 marker) that came
    /// from `from` to our `to` (whose port says which socket: 500 or 4500).
    pub fn handle_datagram(
        &mut self,
        now: Timestamp,
        from: SocketAddr,
        to: SocketAddr,
        bytes: &[u8],
    ) {
        self.now_hint = now;
        // Unparseable headers are unauthenticated garbage: dropped without an answer.
        let Ok(info) = Header::parse(bytes) else {
            return;
        };
        let h = info.header;
        let (spi_i, spi_r) = (IkeSpi::new(h.spi_i), IkeSpi::new(h.spi_r));
        if h.exchange == ExchangeType::IKE_SA_INIT && !h.flags.response() {
            if let Some(spi) = self.init_index.get(&(from, spi_i)).copied() {
                // A retransmitted IKE_SA_INIT request: answer from the cache.
                if let Some((_, cached)) =
                    self.sas.get(&spi).and_then(|sa| sa.last_response.clone())
                {
                    self.transmit_all(to, from, cached);
                }
                return;
            }
            self.respond_sa_init(now, from, to, bytes);
            return;
        }
        // The sender's Initiator flag says which SPI is ours.
        let our_spi = if h.flags.initiator() { spi_r } else { spi_i };
        let Some(sa) = self.sas.get_mut(&our_spi) else {
            return;
        };
        if h.flags.response() {
            let expected = sa
                .pending
                .as_ref()
                .is_some_and(|p| p.message_id == h.message_id && p.exchange == h.exchange);
            if !expected {
                return; // late duplicate or unsolicited
            }
            if let (State::ExpectSaInitResponse, ExchangeType::IKE_SA_INIT) = (sa.state, h.exchange)
            {
                self.handle_sa_init_response(now, our_spi, bytes);
                return;
            }
            let state = sa.state;
            let Some(opened) = self.open_message(our_spi, h.message_id, bytes) else {
                return;
            };
            match (state, h.exchange) {
                (State::ExpectAuthResponse, ExchangeType::IKE_AUTH) => {
                    self.handle_auth_response(now, our_spi, opened)
                }
                (State::Established, ExchangeType::INFORMATIONAL) => {
                    self.handle_informational_response(now, our_spi)
                }
                (State::Established, ExchangeType::CREATE_CHILD_SA) => {
                    let ike_rekey = self
                        .sas
                        .get(&our_spi)
                        .is_some_and(|sa| sa.ike_exchange.is_some());
                    if ike_rekey {
                        self.handle_ike_rekey_response(now, our_spi, opened)
                    } else {
                        self.handle_create_child_response(now, our_spi, opened)
                    }
                }
                _ => {}
            }
        } else {
            if let Some((id, cached)) = &sa.last_response
                && *id == h.message_id
            {
                // A retransmitted request: answer from the cache (once per fragmented
                // request, on its first fragment).
                if fragment_number(bytes).is_none_or(|n| n == 1) {
                    let cached = cached.clone();
                    self.transmit_all(to, from, cached);
                }
                return;
            }
            if h.message_id != sa.expected_request_id {
                return;
            }
            let state = sa.state;
            let Some(opened) = self.open_message(our_spi, h.message_id, bytes) else {
                return;
            };
            match (state, h.exchange) {
                (State::ExpectAuthRequest, ExchangeType::IKE_AUTH) => {
                    self.handle_auth_request(now, our_spi, from, to, opened)
                }
                (State::Established, ExchangeType::INFORMATIONAL) => {
                    self.handle_informational_request(now, our_spi, opened)
                }
                (State::Established, ExchangeType::CREATE_CHILD_SA) => {
                    self.handle_create_child_request(now, our_spi, opened)
                }
                _ => {}
            }
        }
    }

    /// Retransmits what is due, gives up on exchanges past their last retry, and expires
    /// half-open SAs.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        self.now_hint = now;
        let mut resend = Vec::new();
        let mut dead = Vec::new();
        let base = self.config.retransmit_timeout;
        let cap = self.config.retransmit_max_timeout;
        let max = self.config.retransmit_tries;
        for (spi, sa) in self.sas.iter_mut() {
            if let Some(p) = sa.pending.as_mut()
                && p.next_at <= now
            {
                if p.tries > max {
                    dead.push((*spi, Some((p.exchange, p.tries))));
                } else {
                    p.tries += 1;
                    p.next_at = now + (base * 2u32.saturating_pow(p.tries - 1)).min(cap);
                    resend.push((sa.local, sa.remote, p.datagrams.clone()));
                }
            } else if sa.state == State::ExpectAuthRequest
                && now >= sa.created + self.config.half_open_timeout
            {
                dead.push((*spi, None));
            }
        }
        for (from, to, datagrams) in resend {
            self.transmit_all(from, to, datagrams);
        }
        for (spi, timeout) in dead {
            let peer = self.sas.get(&spi).and_then(|sa| sa.peer);
            let was_up = self
                .sas
                .get(&spi)
                .is_some_and(|sa| sa.state == State::Established);
            let deleting = self.sas.get(&spi).is_some_and(|sa| {
                sa.info_purpose == Some(crate::informational::InfoPurpose::DeleteIkeSa)
            });
            if deleting {
                // A Delete whose answer was lost is still a delete: the peer removed the SA
                // when it answered, and cannot answer the retransmissions.
                self.close_sa(spi, "deleted (the peer's confirmation was lost)");
                continue;
            }
            if was_up {
                self.close_sa(spi, "the peer stopped answering");
            } else {
                self.remove_sa(spi);
            }
            if let Some((exchange, tries)) = timeout {
                self.fail(peer, Failure::Timeout { exchange, tries });
            }
        }
        self.child_timers(now);
        self.ike_timers(now);
        self.reauth_timers(now);
    }

    pub(crate) fn remove_sa(&mut self, spi: IkeSpi) -> Option<IkeSa> {
        let sa = self.sas.remove(&spi)?;
        if sa.role == Role::Responder {
            self.init_index.remove(&(sa.remote, sa.spi_i));
        }
        self.successor_gone(spi, sa.reauth.of.is_some());
        Some(sa)
    }
}
