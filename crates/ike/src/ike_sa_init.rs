//! The IKE_SA_INIT exchange (RFC 7296 §1.2): proposals, key exchange, nonces and NAT
//! detection; INVALID_KE_PAYLOAD retries; NO_PROPOSAL_CHOSEN explained.

use meshsec_types::IkeSpi;
use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};

use meshsec_crypto::keys::{self, IkeSuite};
use meshsec_crypto::natd::natd_hash;
use meshsec_crypto::sk::SkKey;
use meshsec_crypto::{CryptoError, Provider, Secret};
use meshsec_wire::payload::{KePayload, Notify, Payload, PayloadBody, SaPayload, find_notify};
use meshsec_wire::registry::{ExchangeType, HashAlgorithm, KeMethod, NotifyType, ProtocolId};
use meshsec_wire::{Flags, Header, Message, rules};

use crate::cookie::CookieJar;
use crate::endpoint::{ApiMisuse, Endpoint, NONCE_LEN};
use crate::error::{ErrorKind, IkeError};
use crate::event::{Failure, Nat, PeerId};
use crate::half_open::{Admission, Requester};
use crate::proposal::{self, Chosen, ProposalSpec};
use crate::request::{Answered, RequestKind, RequestPrint};
use crate::sa::{Crypto, IkeSa, Role, State, Timestamp};
use meshsec_types::ports::{IKE_PORT, NAT_T_PORT};

/// Largest IKE_SA_INIT request we look at: a MODP-8192 KE plus many proposals stay well
/// below; anything bigger is a resource attack.
const MAX_INIT_REQUEST: usize = 4096;

/// The IKE suite of a chosen proposal.
pub(crate) fn suite_of(provider: Provider, c: &Chosen) -> Result<IkeSuite, CryptoError> {
    let prf = c
        .prf
        .ok_or(CryptoError::Unsupported { what: "PRF", id: 0 })?;
    Ok(IkeSuite {
        encr: provider.encr(c.encr.0, c.encr.1)?,
        prf: provider.prf(prf)?,
        integ: c.integ.map(|i| provider.integ(i)).transpose()?,
    })
}

/// SKEYSEED, SK_* and the SK payload keys for our role.
fn derive(suite: IkeSuite, shared: &Secret, sa: &IkeSa) -> Result<Crypto, CryptoError> {
    let skeyseed = keys::skeyseed(suite.prf, &sa.ni, &sa.nr, shared.expose());
    crypto_from(suite, &skeyseed, sa)
}

/// SK_* and the SK payload keys of `sa` (nonces, SPIs and role set) from its SKEYSEED.
pub(crate) fn crypto_from(
    suite: IkeSuite,
    skeyseed: &Secret,
    sa: &IkeSa,
) -> Result<Crypto, CryptoError> {
    let k = keys::ike_keys(
        &suite,
        skeyseed,
        &sa.ni,
        &sa.nr,
        sa.spi_i.get(),
        sa.spi_r.get(),
    )?;
    let from_i = SkKey::new(&suite, k.sk_ei.expose(), k.sk_ai.expose())?;
    let from_r = SkKey::new(&suite, k.sk_er.expose(), k.sk_ar.expose())?;
    let (sk_in, sk_out) = match sa.role {
        Role::Initiator => (from_r, from_i),
        Role::Responder => (from_i, from_r),
    };
    Ok(Crypto {
        suite,
        keys: k,
        sk_in,
        sk_out,
    })
}

impl Endpoint {
    /// The source address our NAT_DETECTION_SOURCE_IP hash covers: ours, or — to make the
    /// peer encapsulate ESP in UDP although there is no NAT (`force_udp_encap`, as
    /// strongSwan's `encap = yes`) — an address nobody has (RFC 7296 §2.23 allows faking it).
    fn claimed_source(&self, ours: SocketAddr) -> SocketAddr {
        if self.config.force_udp_encap {
            SocketAddr::from(([0, 0, 0, 0], 0))
        } else {
            ours
        }
    }
}

fn natd_notifies(
    spi_i: IkeSpi,
    spi_r: IkeSpi,
    src: SocketAddr,
    dst: SocketAddr,
) -> [Payload<'static>; 2] {
    [
        Payload::new(PayloadBody::Notify(Notify::new(
            NotifyType::NAT_DETECTION_SOURCE_IP,
            natd_hash(spi_i.get(), spi_r.get(), src).to_vec(),
        ))),
        Payload::new(PayloadBody::Notify(Notify::new(
            NotifyType::NAT_DETECTION_DESTINATION_IP,
            natd_hash(spi_i.get(), spi_r.get(), dst).to_vec(),
        ))),
    ]
}

/// What the peer's NAT-D hashes say (RFC 7296 §2.23): *our* address is translated when its
/// DESTINATION_IP hash is not of our address (no peer can fake that); *its* address is when
/// its SOURCE_IP hash is not of the address we see — or the peer pretends a NAT to force UDP
/// encapsulation, as strongSwan's userspace data plane does.
fn nat_detected(
    payloads: &[Payload<'_>],
    spi_i: IkeSpi,
    spi_r: IkeSpi,
    local: SocketAddr,
    remote: SocketAddr,
) -> Nat {
    let differs = |ty, addr| {
        let expected = natd_hash(spi_i.get(), spi_r.get(), addr);
        payloads
            .iter()
            .filter_map(Payload::as_notify)
            .filter(|n| n.ty == ty)
            .all(|n| n.data.as_ref() != expected.as_slice())
            && find_notify(payloads, ty).is_some()
    };
    Nat::from_findings(
        differs(NotifyType::NAT_DETECTION_DESTINATION_IP, local),
        differs(NotifyType::NAT_DETECTION_SOURCE_IP, remote),
    )
}

/// The longest COOKIE we echo (RFC 7296 §3.10.1).
const MAX_COOKIE_LEN: usize = 64;

/// Most CA hashes (20 octets each) in the CERTREQs of an IKE_SA_INIT response.
const MAX_CERTREQ_CAS: usize = 4;

/// RFC 7383: we reassemble SKF fragments and send them when a message is too big.
fn fragmentation_supported() -> Payload<'static> {
    Payload::new(PayloadBody::Notify(Notify::new(
        NotifyType::IKEV2_FRAGMENTATION_SUPPORTED,
        Vec::new(),
    )))
}

/// RFC 7427 §4: the hashes we can verify signatures with (certificates arrive later; the
/// notify lets peers choose RFC 7427 signatures from the start).
fn signature_hash_algorithms() -> Payload<'static> {
    Payload::new(PayloadBody::Notify(Notify::signature_hash_algorithms(&[
        HashAlgorithm::SHA2_256,
        HashAlgorithm::SHA2_384,
        HashAlgorithm::SHA2_512,
        HashAlgorithm::IDENTITY,
    ])))
}

/// The hashes a peer announced in SIGNATURE_HASH_ALGORITHMS (RFC 7427 §4).
fn peer_hashes(payloads: &[Payload<'_>]) -> Vec<HashAlgorithm> {
    find_notify(payloads, NotifyType::SIGNATURE_HASH_ALGORITHMS)
        .and_then(|n| n.data_u16s().map(|v| v.map(HashAlgorithm).collect()))
        .unwrap_or_default()
}

struct InitContent<'a> {
    sa: &'a SaPayload<'a>,
    ke: &'a KePayload<'a>,
    nonce: &'a [u8],
}

fn init_content<'a>(payloads: &'a [Payload<'a>]) -> Option<InitContent<'a>> {
    let mut sa = None;
    let mut ke = None;
    let mut nonce = None;
    for p in payloads {
        match &p.body {
            PayloadBody::Sa(s) => sa = Some(s),
            PayloadBody::Ke(k) => ke = Some(k),
            PayloadBody::Nonce(n) => nonce = Some(n.as_ref()),
            _ => {}
        }
    }
    Some(InitContent {
        sa: sa?,
        ke: ke?,
        nonce: nonce?,
    })
}

impl Endpoint {
    /// Starts an IKE SA (with its first CHILD SA) to `peer`.
    ///
    /// Does nothing if an IKE SA with the peer is already up or being initiated by us; if the
    /// peer is initiating at the same time, both SAs complete and the duplicate is then
    /// removed on both sides (see the collision module).
    pub fn initiate(&mut self, now: Timestamp, peer: PeerId) -> Result<(), ApiMisuse> {
        self.peers.get(peer).ok_or(ApiMisuse::UnknownPeer(peer))?;
        let busy = self.sas.values().any(|sa| {
            sa.peer == Some(peer) && (sa.state == State::Established || sa.role == Role::Initiator)
        });
        if busy {
            return Ok(());
        }
        self.start_initiator(now, peer).map(|_| ())
    }

    /// Creates an IKE SA as initiator with `peer` and sends its IKE_SA_INIT request,
    /// whatever other IKE SAs exist with the peer; returns our SPI of it.
    pub(crate) fn start_initiator(
        &mut self,
        now: Timestamp,
        peer: PeerId,
    ) -> Result<IkeSpi, ApiMisuse> {
        let cfg = self.peers.get(peer).ok_or(ApiMisuse::UnknownPeer(peer))?;
        let remote = cfg.remote_addr;
        let method = cfg
            .ike_proposals
            .first()
            .and_then(|p| p.ke.first().copied())
            .ok_or(ApiMisuse::UnknownPeer(peer))?;
        let spi_i = self.new_ike_spi()?;
        let child_spi = self.new_esp_spi()?;
        let sa = IkeSa::new(
            Role::Initiator,
            State::ExpectSaInitResponse,
            Some(peer),
            (spi_i, IkeSpi::ZERO),
            (self.config.local_addr, remote),
            now,
            child_spi,
        );
        self.sas.insert(spi_i, sa);
        self.send_sa_init_request(now, spi_i, method)?;
        Ok(spi_i)
    }

    /// (Re)sends the IKE_SA_INIT request with a fresh KE of `method` and nonce.
    fn send_sa_init_request(
        &mut self,
        now: Timestamp,
        spi_i: IkeSpi,
        method: KeMethod,
    ) -> Result<(), ApiMisuse> {
        let ni = self.random_bytes(NONCE_LEN)?;
        let kx = self.key_exchange(method)?;
        let Some(sa) = self.sas.get(&spi_i) else {
            return Ok(());
        };
        let Some(cfg) = sa.peer.and_then(|p| self.peers.get(p)) else {
            return Ok(());
        };
        let mut payloads = Vec::new();
        let proposals = cfg
            .ike_proposals
            .iter()
            .zip(1u8..)
            .map(|(p, n)| p.to_proposal(n, Vec::new()))
            .collect();
        payloads.push(Payload::new(PayloadBody::Sa(SaPayload { proposals })));
        payloads.push(Payload::new(PayloadBody::Ke(KePayload {
            method,
            data: Cow::Owned(kx.public_value().to_vec()),
        })));
        payloads.push(Payload::new(PayloadBody::Nonce(Cow::Owned(ni.clone()))));
        payloads.extend(natd_notifies(
            spi_i,
            IkeSpi::ZERO,
            self.claimed_source(self.config.local_addr),
            sa.remote,
        ));
        payloads.push(fragmentation_supported());
        payloads.push(signature_hash_algorithms());
        let msg = Message {
            header: Header {
                spi_i: spi_i.get(),
                spi_r: 0,
                minor_version: 0,
                exchange: ExchangeType::IKE_SA_INIT,
                flags: Flags::new(true, false),
                message_id: 0,
            },
            payloads,
        };
        let Ok(bytes) = msg.to_bytes() else {
            return Ok(());
        };
        let remote = sa.remote;
        let timeout = self.config.retransmit_timeout;
        if let Some(sa) = self.sas.get_mut(&spi_i) {
            sa.ni = ni;
            sa.kx = Some(kx);
            sa.our_init = bytes.clone();
            sa.send_request(
                now,
                ExchangeType::IKE_SA_INIT,
                vec![bytes.clone()],
                timeout,
                RequestKind::SaInit,
            );
        }
        self.transmit(remote, bytes);
        Ok(())
    }

    /// The peer configurations that may be behind `from`, before identities are known: those
    /// at its address, else those that accept it (`accept_from`).
    fn candidates(&self, from: IpAddr) -> Vec<PeerId> {
        let at: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(_, p)| p.remote_addr.ip() == from)
            .map(|(i, _)| i)
            .collect();
        if !at.is_empty() {
            return at;
        }
        self.peers
            .iter()
            .filter(|(_, p)| p.accepts(from))
            .map(|(i, _)| i)
            .collect()
    }

    /// Responder: a new IKE_SA_INIT request. Its errors are answered (statelessly, rate
    /// limited) by the caller, as [`IkeError::answer`] says.
    pub(crate) fn respond_sa_init(
        &mut self,
        now: Timestamp,
        from: SocketAddr,
        to: SocketAddr,
        bytes: &[u8],
    ) -> Result<(), IkeError> {
        if bytes.len() > MAX_INIT_REQUEST {
            return Err(ErrorKind::TooLarge.into());
        }
        let msg = Message::parse(bytes).map_err(|_| ErrorKind::InvalidCleartext)?;
        let h = msg.header;
        let spi_i = IkeSpi::new(h.spi_i);
        if h.spi_r != 0
            || h.message_id != 0
            || rules::check_outer(h.exchange, false, &msg.payloads).is_err()
        {
            return Err(ErrorKind::InvalidCleartext.into()); // unauthenticated: no answer
        }
        // A stranger gets nothing: no answer, no key exchange.
        let candidates = self.candidates(from.ip());
        if candidates.is_empty() {
            let failure = Failure::UnknownSource { from: from.ip() };
            return Err(IkeError::failed(None, failure));
        }
        let content = init_content(&msg.payloads).ok_or(ErrorKind::InvalidCleartext)?;
        // The cookie first: a full table never refuses a request that proved its address.
        let with_cookie = self.half_open.len() >= self.config.cookie_threshold
            || self.half_open.count_of(from.ip()) >= self.config.cookie_threshold_per_source;
        if with_cookie {
            self.cookie_ok(now, &msg.payloads, content.nonce, from, spi_i)?;
        }
        let who = Requester {
            ip: from.ip(),
            cookie: with_cookie,
            known: candidates.iter().any(|p| {
                self.peers
                    .get(*p)
                    .is_some_and(|c| c.remote_addr.ip() == from.ip())
            }),
        };
        let admission = self.half_open.admit(
            who,
            self.config.max_half_open_per_source,
            self.config.max_half_open,
        );
        if admission == Admission::Refuse {
            return Err(ErrorKind::HalfOpenLimit.into());
        }
        let ours: Vec<ProposalSpec> = candidates
            .iter()
            .filter_map(|p| self.peers.get(*p))
            .flat_map(|p| p.ike_proposals.iter().cloned())
            .collect();
        let chosen = proposal::select(&ours, &content.sa.proposals).map_err(|e| {
            let peer = (candidates.len() == 1)
                .then(|| candidates.first().copied())
                .flatten();
            IkeError::failed(peer, Failure::NoProposalChosen(e))
        })?;
        let method = chosen.ke.ok_or(ErrorKind::Internal)?;
        if content.ke.method != method {
            // RFC 7296 §1.2: tell the initiator which group we want; keep no state.
            return Err(IkeError::invalid_ke(method));
        }
        let provider = self.provider;
        let suite = suite_of(provider, &chosen).map_err(|_| ErrorKind::Internal)?;
        let kx = self.key_exchange(method).map_err(|_| ErrorKind::Internal)?;
        let shared = kx
            .agree(&content.ke.data)
            .map_err(|e| IkeError::protocol(ErrorKind::InvalidSyntax, None, e.to_string()))?;
        let (Ok(spi_r), Ok(nr), Ok(child_spi)) = (
            self.new_ike_spi(),
            self.random_bytes(NONCE_LEN),
            self.new_esp_spi(),
        ) else {
            return Err(ErrorKind::Internal.into());
        };
        let mut sa = IkeSa::new(
            Role::Responder,
            State::ExpectAuthRequest,
            None,
            (spi_i, spi_r),
            (to, from),
            now,
            child_spi,
        );
        sa.ni = content.nonce.to_vec();
        sa.nr = nr.clone();
        sa.peer_init = bytes.to_vec();
        sa.expected_request_id = 1;
        sa.nat = nat_detected(&msg.payloads, spi_i, IkeSpi::ZERO, to, from);
        sa.udp_encap = self.config.force_udp_encap || sa.nat != Nat::None;
        sa.fragmentation =
            find_notify(&msg.payloads, NotifyType::IKEV2_FRAGMENTATION_SUPPORTED).is_some();
        sa.peer_hashes = peer_hashes(&msg.payloads);
        sa.proposal = chosen.describe(ProtocolId::IKE);
        sa.chosen_ike = Some(chosen.to_proposal(ProtocolId::IKE, Vec::new()));
        sa.crypto = Some(derive(suite, &shared, &sa).map_err(|_| ErrorKind::Internal)?);
        let mut payloads = vec![
            Payload::new(PayloadBody::Sa(SaPayload {
                proposals: vec![chosen.to_proposal(ProtocolId::IKE, Vec::new())],
            })),
            Payload::new(PayloadBody::Ke(KePayload {
                method,
                data: Cow::Owned(kx.public_value().to_vec()),
            })),
            Payload::new(PayloadBody::Nonce(Cow::Owned(nr))),
        ];
        payloads.extend(natd_notifies(spi_i, spi_r, self.claimed_source(to), from));
        if sa.fragmentation {
            payloads.push(fragmentation_supported());
        }
        payloads.push(signature_hash_algorithms());
        // RFC 7296 §1.2: the responder asks for certificates here, for the CAs of the peers
        // the source may be (alike requests once). strongSwan sends its certificate only when
        // asked (send_cert = ifasked), so this is needed; it is capped (`MAX_CERTREQ_CAS`
        // hashes in all) so that the answer to an unauthenticated sender outgrows its request
        // by at most ~100 octets, whatever the number of CAs configured.
        let mut certreqs: Vec<Payload<'static>> = Vec::new();
        let mut hashes = 0;
        for p in candidates.iter().filter_map(|p| self.peers.get(*p)) {
            let Some(mut req) = crate::authenticate::certreq(p) else {
                continue;
            };
            if let PayloadBody::CertReq(c) = &mut req.body {
                let keep = MAX_CERTREQ_CAS
                    .saturating_sub(hashes)
                    .min(c.data.len() / 20);
                c.data.to_mut().truncate(keep * 20);
                if keep == 0 || certreqs.contains(&req) {
                    continue;
                }
                hashes += keep;
            }
            certreqs.push(req);
        }
        let header = Header {
            spi_i: spi_i.get(),
            spi_r: spi_r.get(),
            minor_version: 0,
            exchange: ExchangeType::IKE_SA_INIT,
            flags: Flags::new(false, true),
            message_id: 0,
        };
        payloads.extend(certreqs);
        let out = Message { header, payloads }
            .to_bytes()
            .map_err(|_| ErrorKind::Internal)?;
        sa.our_init = out.clone();
        sa.last_response = Some(Answered::new(
            0,
            vec![out.clone()],
            Some(RequestPrint::of(bytes, from, to)),
            now,
        ));
        if let Admission::Evict(old) = admission {
            self.remove_sa(old);
            self.errors.count(ErrorKind::HalfOpenEvicted);
        }
        self.init_index.insert((from, spi_i), spi_r);
        self.half_open.insert(spi_r, who);
        self.sas.insert(spi_r, sa);
        self.transmit_from(to, from, out);
        Ok(())
    }

    /// Cookie mode: Ok if the request carries a valid cookie; otherwise answers with a fresh
    /// one, statelessly (RFC 7296 §2.6).
    fn cookie_ok(
        &mut self,
        now: Timestamp,
        payloads: &[Payload<'_>],
        ni: &[u8],
        from: SocketAddr,
        spi_i: IkeSpi,
    ) -> Result<(), IkeError> {
        if self.cookies.is_none() {
            self.cookies = CookieJar::new(self.rng.as_mut(), now);
        }
        let lifetime = self.config.cookie_secret_lifetime;
        let jar = self.cookies.as_mut().ok_or(ErrorKind::Internal)?;
        jar.rotate(self.rng.as_mut(), now, lifetime);
        let presented = payloads
            .first()
            .and_then(Payload::as_notify)
            .filter(|n| n.ty == NotifyType::COOKIE);
        if presented.is_some_and(|n| jar.check(&n.data, ni, from, spi_i)) {
            return Ok(());
        }
        let cookie = jar.make(ni, from, spi_i);
        let header = Header {
            spi_i: spi_i.get(),
            spi_r: 0,
            minor_version: 0,
            exchange: ExchangeType::IKE_SA_INIT,
            flags: Flags::new(true, false),
            message_id: 0,
        };
        self.answer_init_with_notify(&header, from, Notify::new(NotifyType::COOKIE, cookie));
        Err(ErrorKind::CookieRequired.into())
    }

    /// Initiator: resends the IKE_SA_INIT request unchanged but for the COOKIE in front
    /// (RFC 7296 §2.6); that message is then the one our AUTH signs.
    fn resend_with_cookie(&mut self, now: Timestamp, spi_i: IkeSpi, cookie: Vec<u8>) {
        let Some(sa) = self.sas.get(&spi_i) else {
            return;
        };
        let Ok(mut msg) = Message::parse(&sa.our_init) else {
            return;
        };
        if msg
            .payloads
            .first()
            .and_then(Payload::as_notify)
            .is_some_and(|n| n.ty == NotifyType::COOKIE)
        {
            msg.payloads.remove(0);
        }
        msg.payloads.insert(
            0,
            Payload::new(PayloadBody::Notify(Notify::new(NotifyType::COOKIE, cookie))),
        );
        let Ok(bytes) = msg.to_bytes() else { return };
        let (remote, timeout) = (sa.remote, self.config.retransmit_timeout);
        if let Some(sa) = self.sas.get_mut(&spi_i) {
            sa.our_init = bytes.clone();
            sa.send_request(
                now,
                ExchangeType::IKE_SA_INIT,
                vec![bytes.clone()],
                timeout,
                RequestKind::SaInit,
            );
        }
        self.transmit(remote, bytes);
    }

    /// Initiator: the IKE_SA_INIT response (or an error / retry notify).
    pub(crate) fn handle_sa_init_response(
        &mut self,
        now: Timestamp,
        spi_i: IkeSpi,
        bytes: &[u8],
    ) -> Result<(), IkeError> {
        // Not authenticated: a broken answer is dropped and the request retransmitted.
        let msg = Message::parse(bytes).map_err(|_| ErrorKind::InvalidCleartext)?;
        let sa = self.sas.get(&spi_i).ok_or(ErrorKind::Internal)?;
        let peer = sa.peer;
        let cfg = peer
            .and_then(|p| self.peers.get(p))
            .ok_or(ErrorKind::Internal)?;
        if rules::check_outer(ExchangeType::IKE_SA_INIT, true, &msg.payloads).is_err() {
            return Err(ErrorKind::InvalidCleartext.into());
        }
        let offered = cfg
            .ike_proposals
            .iter()
            .map(|p| proposal::describe(&p.to_proposal(0, Vec::new())))
            .collect::<Vec<_>>()
            .join(", ");
        if let Some(n) = find_notify(&msg.payloads, NotifyType::INVALID_KE_PAYLOAD) {
            let wanted =
                <[u8; 2]>::try_from(n.data.as_ref()).map(|b| KeMethod(u16::from_be_bytes(b)));
            let ours = cfg
                .ike_proposals
                .iter()
                .any(|p| wanted.is_ok_and(|w| p.ke.contains(&w)));
            let current = sa.kx.as_ref().map(|k| k.method());
            match wanted {
                Ok(w) if ours && Some(w) != current => {
                    let _ = self.send_sa_init_request(now, spi_i, w);
                }
                _ => {
                    self.remove_sa(spi_i);
                    return Err(IkeError::failed(
                        peer,
                        Failure::PeerRefused {
                            notify: NotifyType::INVALID_KE_PAYLOAD,
                            exchange: ExchangeType::IKE_SA_INIT,
                            we_offered: format!(
                                "[{offered}]; the peer wants group {wanted:?}, which we do not allow"
                            ),
                        },
                    ));
                }
            }
            return Ok(());
        }
        if let Some(n) = find_notify(&msg.payloads, NotifyType::COOKIE) {
            // RFC 7296 §3.10.1: a COOKIE is 1 to 64 octets. Anyone may send this answer (it
            // is not authenticated): another is not echoed (our request would grow by it),
            // and the attempt waits for the real answer.
            if !(1..=MAX_COOKIE_LEN).contains(&n.data.len()) {
                self.errors.count(ErrorKind::InvalidSyntax);
                return Ok(());
            }
            let cookie = n.data.to_vec();
            self.resend_with_cookie(now, spi_i, cookie);
            return Ok(());
        }
        if let Some(n) = msg
            .payloads
            .iter()
            .filter_map(Payload::as_notify)
            .find(|n| n.ty.is_error())
        {
            let notify = n.ty;
            self.remove_sa(spi_i);
            return Err(IkeError::failed(
                peer,
                Failure::PeerRefused {
                    notify,
                    exchange: ExchangeType::IKE_SA_INIT,
                    we_offered: format!("[{offered}]"),
                },
            ));
        }
        let content = init_content(&msg.payloads).ok_or(ErrorKind::InvalidCleartext)?;
        let protocol_error = |detail: String| Failure::Protocol { detail };
        // The answer must be one of our proposals, cut down to single transforms.
        let chosen = match proposal::select(&cfg.ike_proposals, &content.sa.proposals) {
            Ok(c) if content.sa.proposals.len() == 1 => c,
            _ => {
                self.remove_sa(spi_i);
                return Err(IkeError::failed(
                    peer,
                    protocol_error(format!(
                        "the responder chose a proposal we did not offer: {}",
                        content
                            .sa
                            .proposals
                            .iter()
                            .map(proposal::describe)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                ));
            }
        };
        let provider = self.provider;
        let sa = self.sas.get_mut(&spi_i).ok_or(ErrorKind::Internal)?;
        let our_method = sa.kx.as_ref().map(|k| k.method());
        if chosen.ke != our_method || Some(content.ke.method) != our_method {
            self.remove_sa(spi_i);
            return Err(IkeError::failed(
                peer,
                protocol_error("the responder's KE does not match its chosen group".into()),
            ));
        }
        let shared = match sa.kx.take().map(|kx| kx.agree(&content.ke.data)) {
            Some(Ok(s)) => s,
            Some(Err(e)) => {
                self.remove_sa(spi_i);
                return Err(IkeError::failed(peer, protocol_error(e.to_string())));
            }
            None => return Err(ErrorKind::Internal.into()),
        };
        sa.spi_r = IkeSpi::new(msg.header.spi_r);
        sa.fragmentation =
            find_notify(&msg.payloads, NotifyType::IKEV2_FRAGMENTATION_SUPPORTED).is_some();
        sa.peer_hashes = peer_hashes(&msg.payloads);
        sa.nr = content.nonce.to_vec();
        sa.peer_init = bytes.to_vec();
        sa.nat = nat_detected(
            &msg.payloads,
            sa.spi_i,
            sa.spi_r,
            self.config.local_addr,
            sa.remote,
        );
        sa.udp_encap = self.config.force_udp_encap || sa.nat != Nat::None;
        sa.proposal = chosen.describe(ProtocolId::IKE);
        let crypto = suite_of(provider, &chosen).and_then(|suite| derive(suite, &shared, sa));
        match crypto {
            Ok(c) => sa.crypto = Some(c),
            Err(e) => {
                self.remove_sa(spi_i);
                return Err(IkeError::failed(peer, protocol_error(e.to_string())));
            }
        }
        sa.take_request(); // IKE_SA_INIT was message 0: IKE_AUTH is 1
        // RFC 7296 §2.23 (and RFC 3948): behind a NAT — or when the peer asks for UDP
        // encapsulation by faking one — everything after IKE_SA_INIT goes to and from port
        // 4500, with the non-ESP marker (added by the daemon's port-4500 socket).
        if sa.udp_encap && sa.remote.port() == IKE_PORT {
            sa.remote.set_port(NAT_T_PORT);
            sa.local.set_port(NAT_T_PORT);
        }
        self.send_auth_request(now, spi_i).inspect_err(|_| {
            self.remove_sa(spi_i);
        })
    }
}
