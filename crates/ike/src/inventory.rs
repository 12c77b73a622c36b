//! What the daemon may change and read while the endpoint runs: adding, replacing and
//! removing peers (configuration reloads touch only the peers that changed) and a read-only
//! view of every IKE SA for status displays.

use meshsec_types::{IkeSpi, InboundSpi, OutboundSpi};
use std::net::SocketAddr;

use crate::config::PeerConfig;
use crate::endpoint::{ApiMisuse, Endpoint};
use crate::event::PeerId;
use crate::sa::{Role, State, Timestamp};

/// The configured peers, indexed by [`PeerId`]. Removing a peer leaves a hole so that the
/// ids of the others (held by the daemon and the data plane) stay valid.
#[derive(Debug, Clone, Default)]
pub(crate) struct PeerTable {
    slots: Vec<Option<PeerConfig>>,
}

impl PeerTable {
    pub(crate) fn new(peers: Vec<PeerConfig>) -> PeerTable {
        PeerTable {
            slots: peers.into_iter().map(Some).collect(),
        }
    }

    /// The peer with this id, unless removed.
    pub(crate) fn get(&self, id: PeerId) -> Option<&PeerConfig> {
        self.slots.get(id.index()).and_then(Option::as_ref)
    }

    /// The peers that are configured now, with their ids.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (PeerId, &PeerConfig)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, p)| Some((PeerId::from_index(i)?, p.as_ref()?)))
    }

    /// Number of ids ever given (removed peers included).
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }
}

/// A read-only view of one IKE SA.
#[derive(Debug, Clone, PartialEq)]
pub struct IkeSaInfo {
    /// The peer, once known.
    pub peer: Option<PeerId>,
    /// Our SPI.
    pub local_spi: IkeSpi,
    /// The initiator's SPI.
    pub spi_i: IkeSpi,
    /// The responder's SPI (0 until known).
    pub spi_r: IkeSpi,
    /// Which end we are.
    pub role: Role,
    /// What it waits for.
    pub state: State,
    /// Our address and port.
    pub local: SocketAddr,
    /// The peer's address and port.
    pub remote: SocketAddr,
    /// When it was created (caller's clock).
    pub created: Timestamp,
    /// The negotiated proposal (empty until chosen).
    pub proposal: String,
    /// Its CHILD SAs (inbound, outbound SPI), oldest first.
    pub children: Vec<(InboundSpi, OutboundSpi)>,
    /// ESP travels in UDP (a NAT, a peer that asks for it, or our configuration).
    pub udp_encap: bool,
    /// What NAT detection found on the path (RFC 7296 §2.23).
    pub nat: crate::event::Nat,
    /// Replaced by a rekey or a reauthentication and about to be deleted.
    pub rekeyed: bool,
    /// A reauthentication of it is under way (our new IKE SA is being set up).
    pub reauthenticating: bool,
    /// The certificate the peer authenticated with: its subject and notAfter (seconds since
    /// the Unix epoch); `None` with pre-shared keys.
    pub peer_certificate: Option<(String, i64)>,
}

impl Endpoint {
    /// Every IKE SA (any state), in no particular order.
    pub fn ike_sas(&self) -> Vec<IkeSaInfo> {
        self.sas
            .iter()
            .map(|(spi, sa)| IkeSaInfo {
                peer: sa.peer,
                local_spi: *spi,
                spi_i: sa.spi_i,
                spi_r: sa.spi_r,
                role: sa.role,
                state: sa.state,
                local: sa.local,
                remote: sa.remote,
                created: sa.created,
                proposal: sa.proposal.clone(),
                children: sa
                    .children
                    .iter()
                    .map(|c| (c.inbound, c.outbound))
                    .collect(),
                udp_encap: sa.udp_encap,
                nat: sa.nat,
                rekeyed: sa.is_replaced(),
                reauthenticating: matches!(sa.life, crate::sa::Life::Reauthenticating { .. }),
                peer_certificate: sa
                    .peer_certificate
                    .as_ref()
                    .map(|r| (r.cert.subject.clone(), r.cert.not_after)),
            })
            .collect()
    }

    /// The IKE SAs with `peer` (any state), in no particular order.
    pub fn peer_sas(&self, peer: PeerId) -> Vec<IkeSaInfo> {
        self.ike_sas()
            .into_iter()
            .filter(|s| s.peer == Some(peer))
            .collect()
    }

    /// The states of the IKE SAs with `peer`.
    pub fn peer_sa_states(&self, peer: PeerId) -> impl Iterator<Item = State> + '_ {
        self.sas
            .values()
            .filter(move |sa| sa.peer == Some(peer))
            .map(|sa| sa.state)
    }

    /// The peer we have an established IKE SA with at address `ip`.
    pub fn established_peer_at(&self, ip: std::net::IpAddr) -> Option<PeerId> {
        self.sas
            .values()
            .find(|sa| sa.state == State::Established && sa.remote.ip() == ip)
            .and_then(|sa| sa.peer)
    }

    /// Adds a peer; returns its id.
    pub fn add_peer(&mut self, cfg: PeerConfig) -> Result<PeerId, ApiMisuse> {
        let id = PeerId::from_index(self.peers.slots.len()).ok_or(ApiMisuse::TooManyPeers)?;
        self.peers.slots.push(Some(cfg));
        Ok(id)
    }

    /// Replaces a peer's configuration. SAs already established keep what they negotiated;
    /// callers that want the new settings applied delete them (see
    /// [`Endpoint::delete_ike_sa`]).
    pub fn replace_peer(&mut self, id: PeerId, cfg: PeerConfig) -> Result<(), ApiMisuse> {
        match self.peers.slots.get_mut(id.index()) {
            Some(slot @ Some(_)) => {
                *slot = Some(cfg);
                Ok(())
            }
            _ => Err(ApiMisuse::UnknownPeer(id)),
        }
    }

    /// After a peer's credentials changed ([`Endpoint::replace_peer`]): every IKE SA whose
    /// peer certificate no longer validates — revoked by a new CRL, its CA removed, expired —
    /// is deleted (the peer is told) and its failure reported. Returns how many.
    pub fn recheck_authentications(&mut self, now: Timestamp, peer: PeerId) -> usize {
        let revoked = self.invalidated_sas(peer);
        for (spi, failure) in &revoked {
            if let Some(sa) = self.sas.get_mut(spi) {
                sa.tasks.clear();
            }
            self.queue_task(now, *spi, crate::sa::Task::DeleteIke);
            self.fail(Some(peer), failure.clone());
        }
        revoked.len()
    }

    /// Removes a peer: its established IKE SA is deleted with a Delete the peer is told
    /// about; attempts in progress are dropped at once. Its id is never reused.
    pub fn remove_peer(&mut self, now: Timestamp, id: PeerId) -> Result<(), ApiMisuse> {
        self.peers.get(id).ok_or(ApiMisuse::UnknownPeer(id))?;
        let _ = self.delete_ike_sa(now, id)?;
        let unfinished: Vec<IkeSpi> = self
            .sas
            .iter()
            .filter(|(_, sa)| sa.peer == Some(id) && sa.state != State::Established)
            .map(|(spi, _)| *spi)
            .collect();
        for spi in unfinished {
            self.close_sa(spi, "peer removed from the configuration");
        }
        if let Some(slot) = self.peers.slots.get_mut(id.index()) {
            *slot = None;
        }
        Ok(())
    }
}
