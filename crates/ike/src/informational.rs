//! The INFORMATIONAL exchange (RFC 7296 §1.4): empty requests as liveness checks, Delete of
//! the IKE SA or of CHILD SAs, and error notifications — on an established IKE SA.

use meshsec_wire::payload::{Delete, Payload, PayloadBody};
use meshsec_wire::registry::{ExchangeType, ProtocolId};
use meshsec_wire::{parse_payloads, rules};

use meshsec_crypto::sk::Opened;

use crate::endpoint::{ApiMisuse, Endpoint};
use crate::event::{Event, Failure, PeerId};
use crate::sa::{State, Timestamp};

/// What an INFORMATIONAL request of ours was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InfoPurpose {
    /// An empty request: is the peer alive?
    Liveness,
    /// Delete of the whole IKE SA.
    DeleteIkeSa,
    /// Delete of the CHILD SA.
    DeleteChildSa,
}

impl Endpoint {
    /// The established IKE SA with `peer` (our SPI).
    fn established_sa(&self, peer: PeerId) -> Option<u64> {
        self.sas
            .iter()
            .find(|(_, sa)| sa.peer == Some(peer) && sa.state == State::Established)
            .map(|(spi, _)| *spi)
    }

    /// Sends an INFORMATIONAL request with `inner` on SA `spi`, unless one of ours is still
    /// outstanding (window size 1).
    fn send_informational(
        &mut self,
        now: Timestamp,
        spi: u64,
        inner: &[Payload<'_>],
        purpose: InfoPurpose,
    ) -> bool {
        let Some(sa) = self.sas.get(&spi) else {
            return false;
        };
        if sa.pending.is_some() {
            return false;
        }
        let message_id = sa.next_request_id;
        let Some(bytes) =
            self.seal_message(spi, ExchangeType::INFORMATIONAL, false, message_id, inner)
        else {
            return false;
        };
        let timeout = self.config.retransmit_timeout;
        let Some(sa) = self.sas.get_mut(&spi) else {
            return false;
        };
        sa.send_request(now, ExchangeType::INFORMATIONAL, bytes.clone(), timeout);
        sa.info_purpose = Some(purpose);
        let (local, remote) = (sa.local, sa.remote);
        self.transmit_all(local, remote, bytes);
        true
    }

    /// Sends an empty INFORMATIONAL request to `peer`; the answer raises
    /// [`Event::PeerAlive`], silence ends in a timeout that deletes the IKE SA. Returns false
    /// if there is no established IKE SA or a request is already outstanding.
    pub fn check_liveness(&mut self, now: Timestamp, peer: PeerId) -> Result<bool, ApiMisuse> {
        self.peers.get(peer).ok_or(ApiMisuse::UnknownPeer(peer))?;
        let Some(spi) = self.established_sa(peer) else {
            return Ok(false);
        };
        Ok(self.send_informational(now, spi, &[], InfoPurpose::Liveness))
    }

    /// Deletes the IKE SA with `peer` (and its CHILD SAs): tells the peer, then removes it
    /// when the peer answers or the request times out.
    pub fn delete_ike_sa(&mut self, now: Timestamp, peer: PeerId) -> Result<bool, ApiMisuse> {
        self.peers.get(peer).ok_or(ApiMisuse::UnknownPeer(peer))?;
        let Some(spi) = self.established_sa(peer) else {
            return Ok(false);
        };
        let delete = Payload::new(PayloadBody::Delete(Delete::ike()));
        Ok(self.send_informational(now, spi, &[delete], InfoPurpose::DeleteIkeSa))
    }

    /// Deletes the CHILD SA with `peer` (keeping the IKE SA): tells the peer, then removes it
    /// when the peer answers.
    pub fn delete_child_sa(&mut self, now: Timestamp, peer: PeerId) -> Result<bool, ApiMisuse> {
        self.peers.get(peer).ok_or(ApiMisuse::UnknownPeer(peer))?;
        let Some(spi) = self.established_sa(peer) else {
            return Ok(false);
        };
        let Some((inbound, _)) = self.sas.get(&spi).and_then(|sa| sa.child) else {
            return Ok(false);
        };
        let delete = Payload::new(PayloadBody::Delete(Delete::esp(&[inbound])));
        Ok(self.send_informational(now, spi, &[delete], InfoPurpose::DeleteChildSa))
    }

    /// Forgets the CHILD SA of IKE SA `spi` and tells the data plane.
    fn drop_child(&mut self, spi: u64) {
        let Some(sa) = self.sas.get_mut(&spi) else {
            return;
        };
        let (Some(peer), Some((inbound_spi, outbound_spi))) = (sa.peer, sa.child.take()) else {
            return;
        };
        self.event(Event::DeleteChildSa {
            peer,
            inbound_spi,
            outbound_spi,
        });
    }

    /// Removes an IKE SA and tells the data plane to drop its CHILD SA.
    pub(crate) fn close_sa(&mut self, spi: u64, reason: &'static str) {
        let Some(sa) = self.remove_sa(spi) else {
            return;
        };
        let Some(peer) = sa.peer else { return };
        if let Some((inbound_spi, outbound_spi)) = sa.child {
            self.event(Event::DeleteChildSa {
                peer,
                inbound_spi,
                outbound_spi,
            });
        }
        self.event(Event::IkeSaDeleted {
            peer,
            local_spi: spi,
            reason,
        });
    }

    /// An INFORMATIONAL request from the peer.
    pub(crate) fn handle_informational_request(&mut self, spi: u64, opened: Opened) {
        let Some(sa) = self.sas.get(&spi) else { return };
        let (message_id, peer, child) = (sa.expected_request_id, sa.peer, sa.child);
        let Ok(payloads) = parse_payloads(opened.first_inner, &opened.plaintext) else {
            return;
        };
        if rules::check_inner(ExchangeType::INFORMATIONAL, false, &payloads).is_err() {
            return;
        }
        let mut answer = Vec::new();
        let mut delete_ike = false;
        let mut delete_child = false;
        for p in &payloads {
            match &p.body {
                PayloadBody::Delete(d) if d.protocol == ProtocolId::IKE => delete_ike = true,
                PayloadBody::Delete(d) if d.protocol == ProtocolId::ESP => {
                    // The peer names its inbound SPIs: our outbound one.
                    if let Some((inbound, outbound)) = child
                        && d.spis_u32().any(|s| s == outbound)
                    {
                        delete_child = true;
                        answer.push(Payload::new(PayloadBody::Delete(Delete::esp(&[inbound]))));
                    }
                }
                PayloadBody::Notify(n) if n.ty.is_error() => {
                    self.fail(
                        peer,
                        Failure::PeerRefused {
                            notify: n.ty,
                            exchange: ExchangeType::INFORMATIONAL,
                            we_offered: "nothing (the peer reported an error on its own)".into(),
                        },
                    );
                }
                _ => {}
            }
        }
        let inner = if delete_ike { Vec::new() } else { answer };
        let Some(response) =
            self.seal_message(spi, ExchangeType::INFORMATIONAL, true, message_id, &inner)
        else {
            return;
        };
        let Some(sa) = self.sas.get_mut(&spi) else {
            return;
        };
        sa.expected_request_id = message_id.wrapping_add(1);
        sa.last_response = Some((message_id, response.clone()));
        let (local, remote) = (sa.local, sa.remote);
        self.transmit_all(local, remote, response);
        if let Some(peer) = peer {
            self.event(Event::PeerAlive { peer });
        }
        if delete_ike {
            self.close_sa(spi, "deleted by the peer");
        } else if delete_child {
            self.drop_child(spi);
        }
    }

    /// The (already authenticated) answer to our INFORMATIONAL request.
    pub(crate) fn handle_informational_response(&mut self, spi: u64) {
        let Some(sa) = self.sas.get_mut(&spi) else {
            return;
        };
        sa.pending = None;
        sa.next_request_id = sa.next_request_id.wrapping_add(1);
        let (peer, purpose) = (sa.peer, sa.info_purpose.take());
        match purpose {
            Some(InfoPurpose::DeleteIkeSa) => self.close_sa(spi, "deleted by us"),
            Some(InfoPurpose::DeleteChildSa) => self.drop_child(spi),
            _ => {
                if let Some(peer) = peer {
                    self.event(Event::PeerAlive { peer });
                }
            }
        }
    }
}
