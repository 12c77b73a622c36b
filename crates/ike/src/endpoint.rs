//! The endpoint: every IKE SA of this node, demultiplexed by SPI, and the sans-IO API the
//! daemon (or the simulator) drives.
//!
//! Call order (as in quinn-proto): feed input with [`Endpoint::handle_datagram`],
//! [`Endpoint::handle_timeout`] (when [`Endpoint::poll_timeout`] is due) and
//! [`Endpoint::initiate`]; then drain [`Endpoint::poll_transmit`] and
//! [`Endpoint::poll_event`]. Nothing here touches a socket or a clock.

use meshsec_types::{IkeSpi, InboundSpi};
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;

use meshsec_crypto::Provider;
use meshsec_crypto::ke::KeyExchange;
use meshsec_crypto::rng::Random;
use meshsec_wire::payload::{Notify, Payload, PayloadBody};
use meshsec_wire::registry::{ExchangeType, KeMethod};
use meshsec_wire::{Flags, Header, Message};

use crate::config::{EndpointConfig, PeerConfig};
use crate::cookie::CookieJar;
use crate::error::{ErrorCounters, ErrorKind, IkeError};
use crate::event::{Event, Failure, PeerId, Transmit};
use crate::half_open::HalfOpen;
use crate::sa::{IkeSa, State, Timestamp};
use crate::table::SaTable;
use meshsec_types::timing::{DUPLICATE_DELETE_RETRY, DUPLICATE_DELETE_TRIES};

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
    pub(crate) sas: SaTable,
    /// Responder: (peer address, peer's SPIi) → our SPIr, to answer retransmitted
    /// IKE_SA_INIT requests from the cache.
    pub(crate) init_index: HashMap<(SocketAddr, IkeSpi), IkeSpi>,
    pub(crate) transmits: VecDeque<Transmit>,
    /// Answers held back until their time, oldest first (see
    /// `meshsec_types::timing::DELETE_ANSWER_DELAY`).
    pub(crate) held: VecDeque<(Timestamp, Transmit)>,
    /// Our answers to the Deletes that closed IKE SAs, oldest first, kept a while (see
    /// `informational::CLOSED_ANSWER_KEPT`): the SA is gone, but the peer may not have the
    /// answer and retransmits its Delete.
    pub(crate) closed_answers: VecDeque<crate::request::ClosedAnswer>,
    events: VecDeque<Event>,
    pub(crate) rng: Box<dyn Random + Send>,
    pub(crate) provider: Provider,
    /// Key exchanges to use instead of generating new ones (see `script_key_exchange`).
    scripted_kx: VecDeque<KeyExchange>,
    /// Cookie secrets, made when first needed.
    pub(crate) cookies: Option<CookieJar>,
    /// The responder's half-open IKE SAs, bounded per source and in total.
    pub(crate) half_open: HalfOpen,
    /// Stateless replies (COOKIE, INVALID_KE_PAYLOAD, NO_PROPOSAL_CHOSEN) sent per source
    /// address in the current second: they go to unverified addresses, so they are capped.
    stateless_replies: HashMap<std::net::IpAddr, (u64, u32)>,
    /// The shared budget of stateless replies to untracked sources: (second, replies).
    stateless_overflow: (u64, u32),
    /// The second the full per-source table was last pruned (at most once a second).
    stateless_pruned: u64,
    /// How often each kind of error happened.
    pub(crate) errors: ErrorCounters,
    /// The time of the datagram being handled.
    pub(crate) now_hint: Timestamp,
    /// Peers we have had an IKE SA with since start (INITIAL_CONTACT goes only in the first).
    pub(crate) contacted: std::collections::HashSet<PeerId>,
    /// When we last told each peer about an unknown SPI (rate limit).
    pub(crate) invalid_spi_sent: HashMap<PeerId, Timestamp>,
    /// Seconds since the Unix epoch at our epoch (`Timestamp::ZERO`): certificates are valid
    /// between wall-clock dates, and the engine has only the caller's monotonic clock. `None`
    /// until the caller tells it (no certificate is accepted before).
    pub(crate) unix_offset: Option<i64>,
}

/// Stateless replies per source address per second.
const STATELESS_REPLIES_PER_SECOND: u32 = 20;
/// Sources whose stateless-reply budget is tracked at once: a flood from many (spoofed)
/// sources gets no answers beyond it, and the table no memory.
const MAX_STATELESS_SOURCES: usize = 4096;
/// Stateless replies per second to all the sources beyond [`MAX_STATELESS_SOURCES`]
/// together.
const STATELESS_OVERFLOW_PER_SECOND: u32 = 1000;

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
            sas: SaTable::default(),
            init_index: HashMap::new(),
            transmits: VecDeque::new(),
            held: VecDeque::new(),
            closed_answers: VecDeque::new(),
            events: VecDeque::new(),
            rng,
            provider,
            scripted_kx: VecDeque::new(),
            cookies: None,
            half_open: HalfOpen::default(),
            stateless_replies: HashMap::new(),
            stateless_overflow: (0, 0),
            stateless_pruned: u64::MAX,
            errors: ErrorCounters::default(),
            now_hint: Timestamp::ZERO,
            contacted: std::collections::HashSet::new(),
            invalid_spi_sent: HashMap::new(),
            unix_offset: None,
        }
    }

    /// Tells the engine the wall-clock time (seconds since the Unix epoch) at `now`, for
    /// certificate validity. Call it at start and whenever the wall clock may have been set
    /// (the engine keeps the offset between the two clocks).
    pub fn set_wall_clock(&mut self, now: Timestamp, unix_secs: i64) {
        let since = i64::try_from(now.since_epoch().as_secs()).unwrap_or(i64::MAX);
        self.unix_offset = Some(unix_secs.saturating_sub(since));
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
        let held = self.held.front().map(|(at, _)| *at);
        [self.sas.next_deadline(&self.config), held]
            .into_iter()
            .flatten()
            .min()
    }

    /// Changes the size above which encrypted messages are fragmented (RFC 7383).
    pub fn set_fragment_size(&mut self, size: usize) {
        self.config.fragment_size = size;
    }

    /// Number of half-open IKE SAs (answered IKE_SA_INIT, no IKE_AUTH yet).
    pub fn half_open_count(&self) -> usize {
        self.half_open.len()
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

    pub(crate) fn event(&mut self, e: Event) {
        self.events.push_back(e);
    }

    /// A negotiation with `peer` failed: counted and reported.
    pub(crate) fn fail(&mut self, peer: Option<PeerId>, failure: Failure) {
        self.on_error(IkeError::failed(peer, failure));
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

    /// An unencrypted one-Notify answer to an IKE_SA_INIT request (no state is kept), within
    /// the per-source budget for stateless replies; false (and counted) if over it.
    pub(crate) fn answer_init_with_notify(
        &mut self,
        request: &Header,
        to: SocketAddr,
        notify: Notify<'static>,
    ) -> bool {
        let second = self.now_hint.since_epoch().as_secs();
        if self.stateless_replies.len() >= MAX_STATELESS_SOURCES && self.stateless_pruned != second
        {
            self.stateless_replies.retain(|_, (s, _)| *s == second);
            self.stateless_pruned = second;
        }
        let full = self.stateless_replies.len() >= MAX_STATELESS_SOURCES;
        let tracked = self.stateless_replies.contains_key(&to.ip());
        let limit = if full && !tracked {
            STATELESS_OVERFLOW_PER_SECOND
        } else {
            STATELESS_REPLIES_PER_SECOND
        };
        let entry = match self.stateless_replies.get_mut(&to.ip()) {
            Some(e) => e,
            // Too many sources to track one by one this second (a flood from spoofed
            // addresses): the ones beyond share one budget, so that a real initiator still
            // gets its COOKIE.
            None if full => &mut self.stateless_overflow,
            None => self.stateless_replies.entry(to.ip()).or_insert((second, 0)),
        };
        if entry.0 != second {
            *entry = (second, 0);
        }
        if entry.1 >= limit {
            self.errors.count(ErrorKind::RateLimited);
            return false;
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
            payloads: vec![Payload::new(PayloadBody::Notify(notify))],
        };
        if let Ok(bytes) = m.to_bytes() {
            self.transmit(to, bytes);
        }
        true
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
        if let Err(e) = self.receive(now, from, to, bytes) {
            self.report(e, Some(from));
        }
    }

    /// An error not caused by a received datagram (a timeout, our own failure).
    pub(crate) fn on_error(&mut self, e: IkeError) {
        self.report(e, None);
    }

    /// The one place errors end up: counted by kind, and reported when they end a
    /// negotiation — as [`Event::Refused`] when the sender (at `from`) had not authenticated,
    /// else as [`Event::Failed`]. (Answers were sent where the error happened, as
    /// [`IkeError::answer`] says.)
    fn report(&mut self, e: IkeError, from: Option<SocketAddr>) {
        self.errors.count(e.kind);
        if let Some(f) = e.failure {
            let (peer, failure) = *f;
            self.events.push_back(match from {
                Some(from) if e.unauthenticated => Event::Refused {
                    from,
                    claimed: peer,
                    failure,
                },
                _ => Event::Failed { peer, failure },
            });
        }
    }

    /// How often each kind of error happened.
    pub fn error_counters(&self) -> &ErrorCounters {
        &self.errors
    }

    /// Acts on what is due on the IKE SAs whose deadlines came (and only those): sends the
    /// answers held back until now, retransmits, gives up on exchanges past their last
    /// retry, expires half-open SAs, rekeys, reauthenticates, deletes what is past its
    /// lifetime, sends NAT keepalives.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        self.now_hint = now;
        while let Some((_, t)) = self.held.pop_front_if(|(at, _)| *at <= now) {
            self.transmits.push_back(t);
        }
        let due: HashSet<IkeSpi> = self.sas.due(now, &self.config).into_iter().collect();
        let mut resend = Vec::new();
        let mut dead = Vec::new();
        let base = self.config.retransmit_timeout;
        let cap = self.config.retransmit_max_timeout;
        let max = self.config.retransmit_tries;
        for spi in &due {
            let Some(sa) = self.sas.get_mut(spi) else {
                continue;
            };
            // The Delete of a simultaneous start's loser (see `collision`) goes a few times
            // in quick succession; then the loser goes without the peer's word.
            let duplicate = sa.is_start_duplicate() && sa.deleting();
            if let Some(p) = sa.outstanding.as_mut()
                && p.next_at <= now
            {
                if p.tries > max || (duplicate && p.tries >= DUPLICATE_DELETE_TRIES) {
                    dead.push((*spi, Some((p.exchange, p.tries))));
                } else {
                    p.tries += 1;
                    p.next_at = if duplicate {
                        now + DUPLICATE_DELETE_RETRY
                    } else {
                        now + (base * 2u32.saturating_pow(p.tries - 1)).min(cap)
                    };
                    resend.push((*spi, sa.local, sa.remote, p.send_again(now)));
                }
            } else if sa.state == State::ExpectAuthRequest
                && now >= sa.created + self.config.half_open_timeout
            {
                dead.push((*spi, None));
            }
        }
        for (spi, from, to, datagrams) in resend {
            self.nudge_survivor(now, spi);
            self.transmit_all(from, to, datagrams);
        }
        for (spi, timeout) in dead {
            let peer = self.sas.get(&spi).and_then(|sa| sa.peer);
            let was_up = self
                .sas
                .get(&spi)
                .is_some_and(|sa| sa.state == State::Established);
            let deleting = self.sas.get(&spi).is_some_and(IkeSa::deleting);
            let duplicate = self.sas.get(&spi).is_some_and(IkeSa::is_start_duplicate);
            if deleting {
                // A Delete whose answer was lost is still a delete: the peer removed the SA
                // when it answered, and cannot answer the retransmissions. A duplicate's
                // peer deletes it on its own too (the same rule, from the same nonces).
                self.close_sa(
                    spi,
                    if duplicate {
                        "duplicate from simultaneous initiation (lowest nonce loses; the peer did not confirm)"
                    } else {
                        "deleted (the peer's confirmation was lost)"
                    },
                );
                continue;
            }
            if was_up {
                self.close_sa(spi, "the peer stopped answering");
            } else {
                self.remove_sa(spi);
            }
            match timeout {
                Some((exchange, tries)) => self.fail(peer, Failure::Timeout { exchange, tries }),
                // A half-open SA whose IKE_AUTH never came.
                None => self.errors.count(ErrorKind::Timeout),
            }
        }
        self.child_timers(now, &due);
        self.ike_timers(now, &due);
        self.reauth_timers(now, &due);
        self.nat_keepalives(now, &due);
    }

    pub(crate) fn remove_sa(&mut self, spi: IkeSpi) -> Option<IkeSa> {
        let sa = self.sas.remove(&spi)?;
        if self.half_open.remove(spi) {
            // By value: the peer's address may have changed since IKE_SA_INIT (floated to
            // port 4500). At most `max_half_open` entries.
            self.init_index.retain(|_, v| *v != spi);
        }
        self.successor_gone(spi, sa.reauth.of.is_some());
        Some(sa)
    }
}
