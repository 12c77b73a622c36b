//! The IKE_AUTH exchange (RFC 7296 §1.2, §2.15), and the first CHILD SA: identities, AUTH
//! (the `authenticate` module: PSK or certificates), ESP proposal, traffic selector narrowing,
//! mode.

use crate::children::{bad_esp_spi, esp_spi};
use meshsec_types::{IkeSpi, InboundSpi, OutboundSpi};

use meshsec_crypto::Integ;
use meshsec_crypto::keys::child_keys;
use meshsec_wire::payload::{
    AddrSelector, AuthPayload, Identity, Notify, Payload, PayloadBody, SaPayload, TrafficSelector,
    TsPayload, find_notify,
};
use meshsec_wire::registry::{EsnId, ExchangeType, NotifyType, ProtocolId};

use crate::config::{ChildMode, PeerConfig};
use crate::endpoint::Endpoint;
use crate::error::{ErrorKind, IkeError};
use crate::event::{ChildSa, ChildSaHalf, Failure, PeerId, Side};
use crate::proposal::{self, Chosen, ProposalSpec};
use crate::request::RequestKind;
use crate::sa::{IkeSa, State, Timestamp};
use crate::ts;

pub(crate) fn notify(ty: NotifyType) -> Payload<'static> {
    Payload::new(PayloadBody::Notify(Notify::new(ty, Vec::new())))
}

pub(crate) fn ts_payload(sel: &[AddrSelector]) -> TsPayload<'static> {
    TsPayload {
        selectors: sel.iter().copied().map(TrafficSelector::Addr).collect(),
    }
}

/// The inputs of a CHILD SA's KEYMAT (RFC 7296 §2.17).
pub(crate) struct ChildKdf<'a> {
    /// The new shared secret, with PFS.
    pub(crate) g_ir: Option<&'a [u8]>,
    /// The nonce of the exchange's initiator.
    pub(crate) ni: &'a [u8],
    /// The nonce of the exchange's responder.
    pub(crate) nr: &'a [u8],
    /// We initiated the exchange that creates the CHILD SA.
    pub(crate) we_initiated: bool,
}

/// What an IKE_AUTH message carries, found by type.
#[derive(Default)]
struct AuthContent<'a> {
    id_i: Option<&'a Identity<'a>>,
    id_r: Option<&'a Identity<'a>>,
    auth: Option<&'a AuthPayload<'a>>,
    sa: Option<&'a SaPayload<'a>>,
    ts_i: Vec<AddrSelector>,
    ts_r: Vec<AddrSelector>,
}

fn auth_content<'a>(payloads: &'a [Payload<'a>]) -> AuthContent<'a> {
    let mut c = AuthContent::default();
    for p in payloads {
        match &p.body {
            PayloadBody::IdI(i) => c.id_i = Some(i),
            PayloadBody::IdR(i) => c.id_r = Some(i),
            PayloadBody::Auth(a) => c.auth = Some(a),
            PayloadBody::Sa(s) => c.sa = Some(s),
            PayloadBody::TsI(t) => c.ts_i = ts::addr_selectors(&t.selectors).copied().collect(),
            PayloadBody::TsR(t) => c.ts_r = ts::addr_selectors(&t.selectors).copied().collect(),
            _ => {}
        }
    }
    c
}

/// ESP proposals for the CHILD SA created inside IKE_AUTH (no key exchange there).
fn first_child_proposals(esp: &[ProposalSpec]) -> Vec<ProposalSpec> {
    esp.iter().map(ProposalSpec::without_ke).collect()
}

fn describe_ts(i: &[AddrSelector], r: &[AddrSelector]) -> String {
    let l = |s: &[AddrSelector]| s.iter().map(ts::describe).collect::<Vec<_>>().join(", ");
    format!("TSi [{}] TSr [{}]", l(i), l(r))
}

impl Endpoint {
    fn seal_auth(
        &mut self,
        spi: IkeSpi,
        response: bool,
        message_id: u32,
        inner: &[Payload<'_>],
    ) -> Option<Vec<Vec<u8>>> {
        self.seal_message(spi, ExchangeType::IKE_AUTH, response, message_id, inner)
    }

    /// The CHILD SA pair for a chosen ESP proposal, from this SA's SK_d: `ts` is (ours,
    /// the peer's), `spis` (our inbound, the peer's inbound), `kdf` the inputs of the
    /// exchange that created it (RFC 7296 §2.17).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn child_sa(
        &self,
        sa: &IkeSa,
        peer: PeerId,
        chosen: &Chosen,
        mode: ChildMode,
        ts: (Vec<AddrSelector>, Vec<AddrSelector>),
        spis: (InboundSpi, OutboundSpi),
        tfc_padding_allowed: bool,
        kdf: ChildKdf<'_>,
    ) -> Option<ChildSa> {
        let c = sa.crypto.as_ref()?;
        let encr = self.provider.encr(chosen.encr.0, chosen.encr.1).ok()?;
        let integ: Option<Integ> = match chosen.integ {
            Some(i) => Some(self.provider.integ(i).ok()?),
            None => None,
        };
        let k = child_keys(
            c.suite.prf,
            c.keys.sk_d.expose(),
            kdf.g_ir,
            kdf.ni,
            kdf.nr,
            encr,
            integ,
        )
        .ok()?;
        // "Initiator" in KEYMAT is the initiator of the exchange that creates the CHILD SA
        // (IKE_AUTH or CREATE_CHILD_SA), not of the IKE SA: after a rekey started by the
        // IKE SA's responder, they differ.
        let (in_keys, out_keys) = if kdf.we_initiated {
            ((k.encr_r, k.integ_r), (k.encr_i, k.integ_i))
        } else {
            ((k.encr_i, k.integ_i), (k.encr_r, k.integ_r))
        };
        Some(ChildSa {
            peer,
            proposal: chosen.describe(meshsec_wire::registry::ProtocolId::ESP),
            encr,
            integ,
            esn: chosen.esn == Some(EsnId::YES),
            mode,
            local_ts: ts.0,
            remote_ts: ts.1,
            inbound: ChildSaHalf {
                spi: spis.0,
                encr_key: in_keys.0,
                integ_key: in_keys.1,
            },
            outbound: ChildSaHalf {
                spi: spis.1,
                encr_key: out_keys.0,
                integ_key: out_keys.1,
            },
            tfc_padding_allowed,
            local: sa.local,
            remote: sa.remote,
            udp_encap: sa.udp_encap,
            rekey_of: None,
            outbound_standby: false,
        })
    }

    /// Whether `peer` (at `remote`) is setting up an IKE SA with us besides our `spi` (we
    /// answered its IKE_SA_INIT): both ends started at once. Our INITIAL_CONTACT would then
    /// make a peer that applies it to every SA it has with us at that moment (strongSwan
    /// destroys them without a word) drop the SA it initiated, possibly after it was
    /// established on both ends — leaving us with an SA the peer no longer has. The peer
    /// is talking to us anyway, so it is not holding SAs from before our start that it
    /// believes in. (The half-open SA may be spoofed, or another host's behind the same
    /// address: then the peer misses the hint for good — `contacted` is set once our SA is
    /// up — and its stale SAs go by DPD or INVALID_SPI instead.)
    fn peer_initiating(&self, spi: IkeSpi, peer: PeerId, remote: std::net::SocketAddr) -> bool {
        self.sas.iter().any(|(s, sa)| {
            *s != spi
                && sa.state == State::ExpectAuthRequest
                && sa.peer.is_none_or(|p| p == peer)
                && sa.remote.ip() == remote.ip()
        })
    }

    /// Initiator: IDi, AUTH, SA, TSi, TSr (+ INITIAL_CONTACT, USE_TRANSPORT_MODE). An error
    /// is ours (the request cannot be built): the caller drops the IKE SA.
    pub(crate) fn send_auth_request(
        &mut self,
        now: Timestamp,
        spi: IkeSpi,
    ) -> Result<(), IkeError> {
        let sa = self.sas.get(&spi).ok_or(ErrorKind::Internal)?;
        let peer = sa.peer;
        let cfg = peer
            .and_then(|p| self.peers.get(p))
            .ok_or(ErrorKind::Internal)?;
        let auth = self
            .our_auth_payloads(sa, cfg)
            .map_err(|f| IkeError::failed(peer, f))?;
        let proposals = first_child_proposals(&cfg.esp_proposals)
            .iter()
            .zip(1u8..)
            .map(|(p, n)| p.to_proposal(n, sa.child_spi.to_be_bytes().to_vec()))
            .collect();
        let first_contact = sa.peer.is_some_and(|p| {
            !self.contacted.contains(&p) && !self.peer_initiating(spi, p, sa.remote)
        });
        let mut inner = vec![Payload::new(PayloadBody::IdI(cfg.local_id.clone()))];
        if first_contact {
            // RFC 7296 §2.4: the peer may drop every older SA with us (we restarted).
            inner.push(notify(NotifyType::INITIAL_CONTACT));
        }
        // RFC 7296 §1.2: IDi, [CERT,] [CERTREQ,] [IDr,] AUTH, SAi2, TSi, TSr.
        let (certs, auth) = auth.split_at(auth.len().saturating_sub(1));
        inner.extend(certs.iter().cloned());
        inner.extend(crate::authenticate::certreq(cfg));
        inner.push(Payload::new(PayloadBody::IdR(cfg.remote_id.clone())));
        inner.extend(auth.iter().cloned());
        inner.extend([
            Payload::new(PayloadBody::Sa(SaPayload { proposals })),
            Payload::new(PayloadBody::TsI(ts_payload(&cfg.local_ts))),
            Payload::new(PayloadBody::TsR(ts_payload(&cfg.remote_ts))),
        ]);
        if cfg.mode == ChildMode::Transport {
            inner.push(notify(NotifyType::USE_TRANSPORT_MODE));
        }
        let (local, remote, message_id) = (sa.local, sa.remote, sa.next_request_id);
        let Some(bytes) = self.seal_auth(spi, false, message_id, &inner) else {
            return Err(IkeError::failed(
                peer,
                Failure::Local {
                    detail: "our IKE_AUTH request cannot be built (more than 255 traffic \
                             selectors on one side, or more than 32 fragments)"
                        .into(),
                },
            ));
        };
        let timeout = self.config.retransmit_timeout;
        if let Some(sa) = self.sas.get_mut(&spi) {
            sa.state = State::ExpectAuthResponse;
            sa.send_request(
                now,
                ExchangeType::IKE_AUTH,
                bytes.clone(),
                timeout,
                RequestKind::Auth,
            );
        }
        self.transmit_all(local, remote, bytes);
        Ok(())
    }

    /// Responder: the IKE_AUTH request.
    pub(crate) fn handle_auth_request(
        &mut self,
        now: Timestamp,
        spi: IkeSpi,
        payloads: &[Payload<'_>],
    ) -> Result<(), IkeError> {
        let sa = self.sas.get(&spi).ok_or(ErrorKind::Internal)?;
        let (remote, message_id) = (sa.remote, sa.expected_request_id);
        let c = auth_content(payloads);
        let id_i = c.id_i.ok_or(ErrorKind::InvalidSyntax)?;
        // Which peer is this? The one whose configured identity matches — and who may
        // initiate from this address: with pre-shared keys the address is part of who the peer
        // is, so a holder of one peer's key cannot pose as another from elsewhere.
        let matching: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(_, cfg)| cfg.remote_id.same_as(id_i))
            .map(|(p, _)| p)
            .collect();
        let at_address = |p: &PeerId| {
            self.peers
                .get(*p)
                .is_some_and(|cfg| cfg.remote_addr.ip() == remote.ip())
        };
        let accepting = |p: &PeerId| self.peers.get(*p).is_some_and(|c| c.accepts(remote.ip()));
        let peer = (matching.iter().find(|p| at_address(p)))
            .or_else(|| matching.iter().find(|p| accepting(p)))
            .copied();
        if let (None, Some(first)) = (peer, matching.first()) {
            let accepted = self
                .peers
                .get(*first)
                .map(PeerConfig::accepted_sources)
                .unwrap_or_default();
            return Err(IkeError::failed(
                Some(*first),
                Failure::AddressMismatch {
                    identity: id_i.to_string(),
                    accepted,
                    from: remote.ip(),
                },
            ));
        }
        let Some(peer) = peer else {
            // No peer has this identity: name the identities of the peers configured at (else
            // accepting) this address, the one the sender most likely is.
            let peers_where = |f: &dyn Fn(&PeerId) -> bool| -> Vec<PeerId> {
                self.peers.iter().map(|(p, _)| p).filter(|p| f(p)).collect()
            };
            let mut here = peers_where(&at_address);
            if here.is_empty() {
                here = peers_where(&accepting);
            }
            let expected = here
                .iter()
                .filter_map(|p| self.peers.get(*p))
                .map(|p| p.remote_id.to_string())
                .take(4)
                .collect::<Vec<_>>()
                .join(" or ");
            return Err(IkeError::failed(
                match here.as_slice() {
                    [one] => Some(*one),
                    _ => None,
                },
                Failure::IdentityMismatch {
                    expected,
                    presented: id_i.to_string(),
                },
            ));
        };
        let cfg = self.peers.get(peer).cloned().ok_or(ErrorKind::Internal)?;
        // IKE_SA_INIT chose from the proposals of every peer the address might be; this peer
        // must accept the choice itself (another peer's weaker suite is not its own).
        if let Some(p) = &sa.chosen_ike
            && let Err(e) = proposal::select(&cfg.ike_proposals, std::slice::from_ref(p))
        {
            return Err(IkeError::failed(Some(peer), Failure::NoProposalChosen(e)));
        }
        if let Some(id_r) = c.id_r
            && !id_r.same_as(&cfg.local_id)
        {
            return Err(IkeError::failed(
                Some(peer),
                Failure::IdentityMismatch {
                    expected: format!("{} (our identity)", cfg.local_id),
                    presented: format!("{id_r} (the identity the peer expects of us)"),
                },
            ));
        }
        let sa = self.sas.get(&spi).ok_or(ErrorKind::Internal)?;
        let peer_certificate = self
            .verify_peer(sa, &cfg, id_i, payloads)
            .map_err(|f| IkeError::failed(Some(peer), f))?;
        let auth = self
            .our_auth_payloads(sa, &cfg)
            .map_err(|f| IkeError::failed(Some(peer), f))?;
        // IDr, [CERT,] AUTH.
        let mut inner = vec![Payload::new(PayloadBody::IdR(cfg.local_id.clone()))];
        inner.extend(auth);
        // The first CHILD SA; its failure does not undo the IKE SA (RFC 7296 §1.2).
        let mut child = None;
        let mut child_failure = None;
        if let Some(offer) = c.sa {
            let wants_transport = find_notify(payloads, NotifyType::USE_TRANSPORT_MODE).is_some();
            let mode = if wants_transport {
                ChildMode::Transport
            } else {
                ChildMode::Tunnel
            };
            match proposal::select(&first_child_proposals(&cfg.esp_proposals), &offer.proposals) {
                Err(e) => {
                    child_failure =
                        Some((NotifyType::NO_PROPOSAL_CHOSEN, Failure::NoProposalChosen(e)))
                }
                Ok(_) if mode != cfg.mode => {
                    child_failure = Some((
                        NotifyType::NO_PROPOSAL_CHOSEN,
                        Failure::ModeMismatch { ours: cfg.mode },
                    ))
                }
                Ok(chosen) => match ts::respond(&c.ts_i, &c.ts_r, &cfg.remote_ts, &cfg.local_ts) {
                    Err(e) => {
                        child_failure =
                            Some((NotifyType::TS_UNACCEPTABLE, Failure::TsUnacceptable(e)))
                    }
                    Ok((ts_i, ts_r)) => {
                        let peer_spi = esp_spi(&chosen.spi);
                        let tfc = find_notify(payloads, NotifyType::ESP_TFC_PADDING_NOT_SUPPORTED)
                            .is_none();
                        if peer_spi.is_none() {
                            child_failure =
                                Some((NotifyType::NO_PROPOSAL_CHOSEN, bad_esp_spi(&chosen.spi)));
                        }
                        if let Some(peer_spi) = peer_spi
                            && let Some(ch) = self.child_sa(
                                sa,
                                peer,
                                &chosen,
                                mode,
                                (ts_r.clone(), ts_i.clone()),
                                (sa.child_spi, peer_spi),
                                tfc,
                                ChildKdf {
                                    g_ir: None,
                                    ni: &sa.ni,
                                    nr: &sa.nr,
                                    we_initiated: false,
                                },
                            )
                        {
                            inner.push(Payload::new(PayloadBody::Sa(SaPayload {
                                proposals: vec![chosen.to_proposal(
                                    ProtocolId::ESP,
                                    sa.child_spi.to_be_bytes().to_vec(),
                                )],
                            })));
                            inner.push(Payload::new(PayloadBody::TsI(ts_payload(&ts_i))));
                            inner.push(Payload::new(PayloadBody::TsR(ts_payload(&ts_r))));
                            if mode == ChildMode::Transport {
                                inner.push(notify(NotifyType::USE_TRANSPORT_MODE));
                            }
                            child = Some(ch);
                        }
                    }
                },
            }
        }
        if let Some((ty, _)) = &child_failure {
            inner.push(notify(*ty));
        }
        let bytes = self
            .seal_auth(spi, true, message_id, &inner)
            .ok_or(ErrorKind::Internal)?;
        let sa = self.sas.get_mut(&spi).ok_or(ErrorKind::Internal)?;
        sa.peer = Some(peer);
        sa.peer_certificate = peer_certificate.map(std::sync::Arc::new);
        sa.state = State::Established;
        sa.answered(message_id, bytes.clone(), now);
        let (path, local, remote) = ((sa.udp_encap, sa.nat), sa.local, sa.remote);
        self.init_index.retain(|_, v| *v != spi);
        self.half_open.remove(spi);
        self.transmit_all(local, remote, bytes);
        let initial_contact = find_notify(payloads, NotifyType::INITIAL_CONTACT).is_some();
        self.established(now, peer, spi, path, initial_contact, child);
        if let Some((_, failure)) = child_failure {
            self.fail(Some(peer), failure);
        }
        Ok(())
    }

    /// Initiator: the IKE_AUTH response.
    pub(crate) fn handle_auth_response(
        &mut self,
        now: Timestamp,
        spi: IkeSpi,
        payloads: Result<Vec<Payload<'_>>, IkeError>,
    ) -> Result<(), IkeError> {
        let sa = self.sas.get(&spi).ok_or(ErrorKind::Internal)?;
        let peer = sa.peer.ok_or(ErrorKind::Internal)?;
        let cfg = self.peers.get(peer).cloned().ok_or(ErrorKind::Internal)?;
        let payloads = match payloads {
            Ok(p) => p,
            Err(e) => {
                self.remove_sa(spi);
                return Err(IkeError::protocol(
                    e.kind,
                    Some(peer),
                    "the IKE_AUTH response does not parse or breaks the placement rules",
                ));
            }
        };
        let c = auth_content(&payloads);
        let errors: Vec<NotifyType> = payloads
            .iter()
            .filter_map(Payload::as_notify)
            .map(|n| n.ty)
            .filter(|t| t.is_error())
            .collect();
        let (Some(id_r), Some(_)) = (c.id_r, c.auth) else {
            // No IKE SA: the whole exchange was refused.
            self.remove_sa(spi);
            let failure = match errors.first() {
                Some(&NotifyType::AUTHENTICATION_FAILED) => {
                    Failure::AuthenticationFailed { side: Side::Peer }
                }
                Some(&n) => Failure::PeerRefused {
                    notify: n,
                    exchange: ExchangeType::IKE_AUTH,
                    we_offered: format!("identity {}", cfg.local_id),
                },
                None => Failure::Protocol {
                    detail: "IKE_AUTH response without IDr/AUTH".into(),
                },
            };
            return Err(IkeError::failed(Some(peer), failure));
        };
        if !id_r.same_as(&cfg.remote_id) {
            self.remove_sa(spi);
            return Err(IkeError::failed(
                Some(peer),
                Failure::IdentityMismatch {
                    expected: cfg.remote_id.to_string(),
                    presented: id_r.to_string(),
                },
            ));
        }
        let peer_certificate = match self.verify_peer(sa, &cfg, id_r, &payloads) {
            Ok(record) => record,
            Err(f) => {
                self.remove_sa(spi);
                return Err(IkeError::failed(Some(peer), f));
            }
        };
        let path = (sa.udp_encap, sa.nat);
        // The CHILD SA.
        let mut child = None;
        let mut child_failure = None;
        if let Some(&n) = errors.first() {
            let we_offered = match n {
                NotifyType::TS_UNACCEPTABLE => describe_ts(&cfg.local_ts, &cfg.remote_ts),
                _ => format!(
                    "ESP [{}] in {:?} mode",
                    first_child_proposals(&cfg.esp_proposals)
                        .iter()
                        .map(|p| proposal::describe(&p.to_proposal(0, Vec::new())))
                        .collect::<Vec<_>>()
                        .join(", "),
                    cfg.mode
                ),
            };
            child_failure = Some(Failure::PeerRefused {
                notify: n,
                exchange: ExchangeType::IKE_AUTH,
                we_offered,
            });
        } else if let Some(answer) = c.sa {
            let transport = find_notify(&payloads, NotifyType::USE_TRANSPORT_MODE).is_some();
            let mode = if transport {
                ChildMode::Transport
            } else {
                ChildMode::Tunnel
            };
            let narrowed = c.ts_i != cfg.local_ts || c.ts_r != cfg.remote_ts;
            match proposal::select(
                &first_child_proposals(&cfg.esp_proposals),
                &answer.proposals,
            ) {
                _ if mode != cfg.mode => {
                    child_failure = Some(Failure::ModeMismatch { ours: cfg.mode })
                }
                _ if !ts::within(&c.ts_i, &cfg.local_ts)
                    || !ts::within(&c.ts_r, &cfg.remote_ts) =>
                {
                    child_failure = Some(Failure::Protocol {
                        detail: format!(
                            "the responder returned selectors outside ours: {}",
                            describe_ts(&c.ts_i, &c.ts_r)
                        ),
                    })
                }
                _ if narrowed && !cfg.accept_narrowing => {
                    child_failure = Some(Failure::NarrowingRefused {
                        proposed: describe_ts(&cfg.local_ts, &cfg.remote_ts),
                        returned: describe_ts(&c.ts_i, &c.ts_r),
                    })
                }
                Ok(chosen) if answer.proposals.len() == 1 => {
                    let peer_spi = esp_spi(&chosen.spi);
                    let tfc =
                        find_notify(&payloads, NotifyType::ESP_TFC_PADDING_NOT_SUPPORTED).is_none();
                    if peer_spi.is_none() {
                        child_failure = Some(bad_esp_spi(&chosen.spi));
                    }
                    if let Some(peer_spi) = peer_spi {
                        child = self.child_sa(
                            sa,
                            peer,
                            &chosen,
                            mode,
                            (c.ts_i.clone(), c.ts_r.clone()),
                            (sa.child_spi, peer_spi),
                            tfc,
                            ChildKdf {
                                g_ir: None,
                                ni: &sa.ni,
                                nr: &sa.nr,
                                we_initiated: true,
                            },
                        );
                    }
                }
                _ => {
                    child_failure = Some(Failure::Protocol {
                        detail: "the responder chose an ESP proposal we did not offer".into(),
                    })
                }
            }
        }
        if let Some(sa) = self.sas.get_mut(&spi) {
            sa.state = State::Established;
            sa.peer_certificate = peer_certificate.map(std::sync::Arc::new);
            sa.take_request();
        }
        let initial_contact = find_notify(&payloads, NotifyType::INITIAL_CONTACT).is_some();
        self.established(now, peer, spi, path, initial_contact, child);
        self.apply_auth_lifetime(now, spi, &payloads);
        if let Some(f) = child_failure {
            self.fail(Some(peer), f);
        }
        Ok(())
    }
}
