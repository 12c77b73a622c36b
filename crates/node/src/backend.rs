//! What the node needs from a data plane: install and remove SA halves and policies, read
//! counters, and hear about what happened to packets. [`meshsec_esp::DataPlane`] implements
//! it (and, through a mutex, the data plane the daemon shares with its data-path threads); a
//! kernel XFRM backend could implement it later.

use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use meshsec_crypto::CryptoError;
use meshsec_esp::spd::{Policy, PolicyId};
use meshsec_esp::{Counters, DataPlane, EspEvent, SaParams};
use meshsec_types::{InboundSpi, OutboundSpi, PeerId, Timestamp};

/// Where a new outbound SA goes among the peer's outbound SAs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// It seals from the next packet on (the previous one waits behind it until removed).
    Active,
    /// It waits just behind the one sealing now and takes over when that one is removed, or
    /// when ESP first opens on `pair` (its pair's inbound SA): the peer may not have the
    /// matching inbound SA yet (we answered its exchange), and it seals on `pair` once it has.
    Standby {
        /// The inbound SA of the same pair.
        pair: InboundSpi,
    },
}

/// A data plane the node drives.
pub trait SaBackend {
    /// Why an SA could not be installed.
    type Error: core::fmt::Display;

    /// Installs an inbound SA (`params.spi` is ours).
    fn install_inbound(&mut self, now: Timestamp, params: SaParams) -> Result<(), Self::Error>;
    /// Installs an outbound SA of `peer` (`params.spi` is the peer's).
    fn install_outbound(
        &mut self,
        now: Timestamp,
        peer: PeerId,
        params: SaParams,
        placement: Placement,
    ) -> Result<(), Self::Error>;
    /// Removes an inbound SA; false if there was none.
    fn remove_inbound(&mut self, spi: InboundSpi) -> bool;
    /// Removes one outbound SA of `peer`; if it was sealing, the newest remaining one takes
    /// over. False if there was none.
    fn remove_outbound(&mut self, peer: PeerId, spi: OutboundSpi) -> bool;
    /// Removes every outbound SA of `peer`.
    fn remove_peer_outbound(&mut self, peer: PeerId) -> bool;
    /// Adds an outbound policy.
    fn add_policy(&mut self, policy: Policy) -> PolicyId;
    /// Removes an outbound policy.
    fn remove_policy(&mut self, id: PolicyId);
    /// Opens the ESP that arrived for `spi` before its SA (call right after installing it)
    /// and hands each inner packet to `deliver`.
    fn open_parked(&mut self, now: Timestamp, spi: InboundSpi, deliver: &mut dyn FnMut(&[u8]));
    /// A peer's totals over every SA it ever had: (inbound, outbound).
    fn peer_counters(&self, peer: PeerId) -> (Counters, Counters);
    /// Counters of one inbound SA, if installed.
    fn inbound_counters(&self, spi: InboundSpi) -> Option<Counters>;
    /// Counters of one outbound SA of `peer`, if installed.
    fn outbound_counters(&self, peer: PeerId, spi: OutboundSpi) -> Option<Counters>;
    /// Drops that belong to no SA.
    fn unattributed_counters(&self) -> Counters;
    /// The next event (acquire, lifetime).
    fn poll_event(&mut self) -> Option<EspEvent>;
    /// (Source, SPI) of ESP that found no SA since the last call (bounded).
    fn unknown_spis(&mut self, now: Timestamp) -> Vec<(IpAddr, InboundSpi)>;
    /// The backend's next deadline.
    fn poll_timeout(&self) -> Option<Timestamp>;
    /// Acts on what is due.
    fn handle_timeout(&mut self, now: Timestamp);
}

impl SaBackend for DataPlane {
    type Error = CryptoError;

    fn install_inbound(&mut self, now: Timestamp, params: SaParams) -> Result<(), CryptoError> {
        DataPlane::install_inbound(self, now, params)
    }

    fn install_outbound(
        &mut self,
        now: Timestamp,
        peer: PeerId,
        params: SaParams,
        placement: Placement,
    ) -> Result<(), CryptoError> {
        match placement {
            Placement::Active => DataPlane::install_outbound(self, now, peer, params),
            Placement::Standby { pair } => {
                DataPlane::install_outbound_standby(self, now, peer, params, pair)
            }
        }
    }

    fn remove_inbound(&mut self, spi: InboundSpi) -> bool {
        DataPlane::remove_inbound(self, spi)
    }

    fn remove_outbound(&mut self, peer: PeerId, spi: OutboundSpi) -> bool {
        DataPlane::remove_outbound_spi(self, peer, spi)
    }

    fn remove_peer_outbound(&mut self, peer: PeerId) -> bool {
        DataPlane::remove_outbound(self, peer)
    }

    fn add_policy(&mut self, policy: Policy) -> PolicyId {
        DataPlane::add_policy(self, policy)
    }

    fn remove_policy(&mut self, id: PolicyId) {
        DataPlane::remove_policy(self, id);
    }

    fn open_parked(&mut self, now: Timestamp, spi: InboundSpi, deliver: &mut dyn FnMut(&[u8])) {
        DataPlane::open_parked(self, now, spi, deliver);
    }

    fn peer_counters(&self, peer: PeerId) -> (Counters, Counters) {
        DataPlane::peer_counters(self, peer)
    }

    fn inbound_counters(&self, spi: InboundSpi) -> Option<Counters> {
        DataPlane::inbound_counters(self, spi).copied()
    }

    fn outbound_counters(&self, peer: PeerId, spi: OutboundSpi) -> Option<Counters> {
        DataPlane::outbound_counters_spi(self, peer, spi).copied()
    }

    fn unattributed_counters(&self) -> Counters {
        *DataPlane::unattributed_counters(self)
    }

    fn poll_event(&mut self) -> Option<EspEvent> {
        DataPlane::poll_event(self)
    }

    fn unknown_spis(&mut self, now: Timestamp) -> Vec<(IpAddr, InboundSpi)> {
        DataPlane::unknown_spis(self, now)
    }

    fn poll_timeout(&self) -> Option<Timestamp> {
        DataPlane::poll_timeout(self)
    }

    fn handle_timeout(&mut self, now: Timestamp) {
        DataPlane::handle_timeout(self, now);
    }
}

/// A backend shared with other threads (the daemon's data path seals and opens on the same
/// data plane): every call takes the lock once. A thread that panicked while holding it
/// leaves the plane consistent (it is updated packet by packet), so a poisoned lock is used
/// as it is.
impl<T: SaBackend> SaBackend for Arc<Mutex<T>> {
    type Error = T::Error;

    fn install_inbound(&mut self, now: Timestamp, params: SaParams) -> Result<(), T::Error> {
        lock(self).install_inbound(now, params)
    }

    fn install_outbound(
        &mut self,
        now: Timestamp,
        peer: PeerId,
        params: SaParams,
        placement: Placement,
    ) -> Result<(), T::Error> {
        lock(self).install_outbound(now, peer, params, placement)
    }

    fn remove_inbound(&mut self, spi: InboundSpi) -> bool {
        lock(self).remove_inbound(spi)
    }

    fn remove_outbound(&mut self, peer: PeerId, spi: OutboundSpi) -> bool {
        lock(self).remove_outbound(peer, spi)
    }

    fn remove_peer_outbound(&mut self, peer: PeerId) -> bool {
        lock(self).remove_peer_outbound(peer)
    }

    fn add_policy(&mut self, policy: Policy) -> PolicyId {
        lock(self).add_policy(policy)
    }

    fn remove_policy(&mut self, id: PolicyId) {
        lock(self).remove_policy(id);
    }

    fn open_parked(&mut self, now: Timestamp, spi: InboundSpi, deliver: &mut dyn FnMut(&[u8])) {
        lock(self).open_parked(now, spi, deliver);
    }

    fn peer_counters(&self, peer: PeerId) -> (Counters, Counters) {
        lock(self).peer_counters(peer)
    }

    fn inbound_counters(&self, spi: InboundSpi) -> Option<Counters> {
        lock(self).inbound_counters(spi)
    }

    fn outbound_counters(&self, peer: PeerId, spi: OutboundSpi) -> Option<Counters> {
        lock(self).outbound_counters(peer, spi)
    }

    fn unattributed_counters(&self) -> Counters {
        lock(self).unattributed_counters()
    }

    fn poll_event(&mut self) -> Option<EspEvent> {
        lock(self).poll_event()
    }

    fn unknown_spis(&mut self, now: Timestamp) -> Vec<(IpAddr, InboundSpi)> {
        lock(self).unknown_spis(now)
    }

    fn poll_timeout(&self) -> Option<Timestamp> {
        lock(self).poll_timeout()
    }

    fn handle_timeout(&mut self, now: Timestamp) {
        lock(self).handle_timeout(now);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
