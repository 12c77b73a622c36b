//! What the operator (through the daemon's control socket or a reload) and the daemon's own
//! start and shutdown ask of the node.

use core::fmt;

use meshsec_ike::ApiMisuse;
use meshsec_types::timing::FIRST_BACKOFF;
use meshsec_types::{PeerId, Timestamp};

use crate::backend::SaBackend;
use crate::node::{Node, OsAction, PeerTimer};
use crate::policy::PeerPolicy;

/// Which SA a rekey command renews.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RekeyKind {
    /// The newest CHILD SA.
    Child,
    /// The IKE SA (its CHILD SAs move untouched).
    Ike,
    /// Both, from scratch, authenticated again (make-before-break).
    Reauth,
}

/// One half of a CHILD SA in the data plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaHalf {
    /// The one we open with.
    Inbound,
    /// The one we seal with.
    Outbound,
}

/// A request to the node.
#[derive(Debug, Clone)]
pub enum Command {
    /// Configure a new peer (started at once if `start = always`).
    AddPeer(PeerPolicy),
    /// Give a peer new settings: its SAs are deleted (the peer is told) and set up again
    /// with them.
    ReplacePeer {
        /// The peer.
        peer: PeerId,
        /// Its new settings.
        policy: PeerPolicy,
    },
    /// Change a peer's settings that nothing negotiated depends on (liveness, start, volume
    /// limits, lifetimes — the next rekey uses them): its SAs, policies and routes stay.
    /// Callers check that the negotiated settings (address, identities, key, proposals,
    /// selectors, mode) are unchanged; for those, [`Command::ReplacePeer`].
    UpdatePeer {
        /// The peer.
        peer: PeerId,
        /// Its new settings.
        policy: PeerPolicy,
    },
    /// Remove a peer: its SAs are deleted (the peer is told), its policies and routes go.
    RemovePeer {
        /// The peer.
        peer: PeerId,
    },
    /// Bring a peer's tunnel up now (and keep it up if it is `always`).
    Up {
        /// The peer.
        peer: PeerId,
    },
    /// Delete a peer's SAs and keep them down until `Up`.
    Down {
        /// The peer.
        peer: PeerId,
    },
    /// Rekey now, make-before-break.
    Rekey {
        /// The peer.
        peer: PeerId,
        /// Which SA.
        kind: RekeyKind,
    },
    /// Fault injection: remove one half of the newest CHILD SA from the data plane only
    /// (neither the IKE engine nor the peer is told) — the "half SA" healing must repair.
    DropSa {
        /// The peer.
        peer: PeerId,
        /// Which half.
        half: SaHalf,
    },
    /// Delete every IKE SA, telling the peers (shutdown).
    DeleteAll,
}

/// What a command did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Done {
    /// The command was carried out (or queued: the engine does one exchange at a time).
    Ok,
    /// The peer was added with this id.
    PeerAdded(PeerId),
    /// `Down`: whether an IKE SA was there to delete.
    Deleting(bool),
    /// `DropSa`: the SPI of the half, and whether it was in the data plane.
    Dropped {
        /// The SPI, as `meshsec status` shows it.
        spi: String,
        /// It was installed.
        removed: bool,
    },
}

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandError {
    /// No such peer (any more).
    UnknownPeer(PeerId),
    /// Nothing to rekey: no established IKE SA (or CHILD SA).
    NothingToRekey,
    /// No established IKE SA, or a reauthentication is under way already.
    CannotReauthenticate,
    /// The peer has no CHILD SA.
    NoChildSa,
    /// The engine refused.
    Engine(ApiMisuse),
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::UnknownPeer(p) => write!(f, "no peer {p}"),
            CommandError::NothingToRekey => f.write_str("it has no established SA to rekey"),
            CommandError::CannotReauthenticate => {
                f.write_str("it has no established IKE SA, or one is being reauthenticated")
            }
            CommandError::NoChildSa => f.write_str("it has no CHILD SA"),
            CommandError::Engine(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for CommandError {}

impl From<ApiMisuse> for CommandError {
    fn from(e: ApiMisuse) -> Self {
        match e {
            ApiMisuse::UnknownPeer(p) => CommandError::UnknownPeer(p),
            e => CommandError::Engine(e),
        }
    }
}

impl<B: SaBackend> Node<B> {
    /// Carries out `cmd`.
    pub fn handle_command(&mut self, now: Timestamp, cmd: Command) -> Result<Done, CommandError> {
        self.now = now;
        let result = self.command(now, cmd);
        self.drain(now);
        result
    }

    fn known(&self, peer: PeerId) -> Result<(), CommandError> {
        self.peer_ref(peer)
            .map(|_| ())
            .ok_or(CommandError::UnknownPeer(peer))
    }

    fn command(&mut self, now: Timestamp, cmd: Command) -> Result<Done, CommandError> {
        match cmd {
            Command::AddPeer(policy) => {
                let id = self.ike.add_peer(policy.ike.clone())?;
                self.configure_peer(now, id, policy);
                Ok(Done::PeerAdded(id))
            }
            Command::ReplacePeer { peer, policy } => {
                self.known(peer)?;
                self.unconfigure_peer(peer);
                let _ = self.ike.delete_ike_sa(now, peer);
                self.drain(now);
                self.ike.replace_peer(peer, policy.ike.clone())?;
                // The old CHILD SAs stay known until the peer acknowledges their deletion,
                // so that their removal finds them.
                let children = self
                    .peer(peer)
                    .map(|p| std::mem::take(&mut p.children))
                    .unwrap_or_default();
                self.configure_peer(now, peer, policy);
                if let Some(p) = self.peer(peer) {
                    p.children = children;
                }
                Ok(Done::Ok)
            }
            Command::UpdatePeer { peer, policy } => {
                self.known(peer)?;
                self.ike.replace_peer(peer, policy.ike.clone())?;
                // New CRLs, CAs or auth methods may invalidate how an SA was authenticated.
                self.ike.recheck_authentications(now, peer);
                let always = policy.start == crate::Start::Always;
                if let Some(p) = self.peer(peer) {
                    p.policy = policy;
                }
                let established = self
                    .ike
                    .peer_sa_states(peer)
                    .any(|s| s == meshsec_ike::State::Established);
                let none = self.ike.peer_sa_states(peer).next().is_none();
                // The routes again (replaced in place: their MTU may have changed).
                if let Some(p) = self.peer_ref(peer) {
                    self.os.push_back(OsAction::AddRoutes {
                        peer,
                        local_ts: p.policy.ike.local_ts.clone(),
                        remote_ts: p.policy.ike.remote_ts.clone(),
                    });
                }
                if !always {
                    // No longer ours to start: an attempt already scheduled is dropped.
                    self.timers.set((peer, PeerTimer::Attempt), None);
                }
                if established {
                    self.schedule_look(now, peer);
                } else if always && none && self.timers.get((peer, PeerTimer::Attempt)).is_none() {
                    self.timers.set((peer, PeerTimer::Attempt), Some(now));
                }
                Ok(Done::Ok)
            }
            Command::RemovePeer { peer } => {
                self.known(peer)?;
                self.unconfigure_peer(peer);
                self.ike.remove_peer(now, peer)?;
                self.drain(now);
                // Its SAs' Deletes may still be in flight; nothing routes to it any more, so
                // its outbound SAs go now.
                self.backend.remove_peer_outbound(peer);
                if let Some(slot) = self.peers.get_mut(peer.index()) {
                    *slot = None;
                }
                // (What the drain above scheduled for it has nobody to act on any more.)
                self.timers.retain(|(p, _)| p != peer);
                Ok(Done::Ok)
            }
            Command::Up { peer } => {
                let p = self.peer(peer).ok_or(CommandError::UnknownPeer(peer))?;
                p.admin_down = false;
                p.backoff = FIRST_BACKOFF;
                self.try_initiate(now, peer);
                Ok(Done::Ok)
            }
            Command::Down { peer } => {
                let p = self.peer(peer).ok_or(CommandError::UnknownPeer(peer))?;
                p.admin_down = true;
                self.timers.set((peer, PeerTimer::Attempt), None);
                Ok(Done::Deleting(self.ike.delete_ike_sa(now, peer)?))
            }
            Command::Rekey { peer, kind } => {
                self.known(peer)?;
                let queued = match kind {
                    RekeyKind::Child => self.ike.rekey_child_sa(now, peer)?,
                    RekeyKind::Ike => self.ike.rekey_ike_sa(now, peer)?,
                    RekeyKind::Reauth => self.ike.reauthenticate(now, peer)?,
                };
                match (queued, kind) {
                    (true, _) => Ok(Done::Ok),
                    (false, RekeyKind::Reauth) => Err(CommandError::CannotReauthenticate),
                    (false, _) => Err(CommandError::NothingToRekey),
                }
            }
            Command::DropSa { peer, half } => {
                let p = self.peer_ref(peer).ok_or(CommandError::UnknownPeer(peer))?;
                let child = p.children.last().ok_or(CommandError::NoChildSa)?;
                let (spi_in, spi_out) = (child.spi_in, child.spi_out);
                let (removed, spi) = match half {
                    SaHalf::Inbound => (self.backend.remove_inbound(spi_in), spi_in.to_string()),
                    SaHalf::Outbound => (
                        self.backend.remove_outbound(peer, spi_out),
                        spi_out.to_string(),
                    ),
                };
                tracing::warn!(
                    "debug: dropped the {half:?} SA {spi} of peer {} from the data plane",
                    self.peer_name(peer)
                );
                Ok(Done::Dropped { spi, removed })
            }
            Command::DeleteAll => {
                let ids: Vec<PeerId> = (0..self.peers.len())
                    .filter_map(PeerId::from_index)
                    .collect();
                for id in ids {
                    let _ = self.ike.delete_ike_sa(now, id);
                }
                Ok(Done::Ok)
            }
        }
    }
}
