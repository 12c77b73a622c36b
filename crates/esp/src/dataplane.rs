//! The data plane: SAD, SPD and outbound SA slots, with per-SA and per-peer counters, lifetime
//! events and batch entry points. Sans-IO: packets live in caller buffers, time is passed in,
//! events are polled.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::net::IpAddr;

use meshsec_crypto::CryptoError;
use meshsec_crypto::rng::Random;
use meshsec_types::Deadlines;
use meshsec_wire::esp::EspHeader;

use crate::drop::{Counters, DropReason};
use crate::lifetime::{Expiry, Timestamp};
use crate::sa::{InboundSa, LifeEvents, Opened, OutboundSa, PacketBuf, SaParams, Sealed};
use crate::selector::{PacketKey, packet_key};
use crate::spd::{Action, Policy, PolicyId, Spd};
use meshsec_types::{InboundSpi, OutboundSpi, PeerId};

/// Direction of an SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Direction {
    /// Inbound (we open).
    In,
    /// Outbound (we seal).
    Out,
}

/// One SA of the data plane, by its SPI and direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SaRef {
    /// An inbound SA (we open with it).
    Inbound(InboundSpi),
    /// An outbound SA (we seal with it).
    Outbound(OutboundSpi),
}

impl SaRef {
    fn new(spi: u32, direction: Direction) -> SaRef {
        match direction {
            Direction::In => SaRef::Inbound(InboundSpi::new(spi)),
            Direction::Out => SaRef::Outbound(OutboundSpi::new(spi)),
        }
    }
}

/// What the data plane tells the IKE engine (through the daemon).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EspEvent {
    /// A soft limit was reached: rekey this CHILD SA.
    SoftExpired {
        /// The SA.
        sa: SaRef,
        /// Its peer.
        peer: PeerId,
        /// Which limit.
        reason: Expiry,
    },
    /// A hard limit was reached: the SA no longer passes traffic.
    HardExpired {
        /// The SA.
        sa: SaRef,
        /// Its peer.
        peer: PeerId,
        /// Which limit.
        reason: Expiry,
    },
    /// A peer's outbound SA sealed a packet after at least
    /// [`SENDING_WINDOW`](meshsec_types::timing::SENDING_WINDOW) without one: traffic to the
    /// peer (re)started. The control plane watches the answers from then on (the
    /// through-tunnel check) and need not poll an idle peer. Raised at most once per idle
    /// spell.
    OutboundResumed {
        /// The peer.
        peer: PeerId,
    },
    /// A standby outbound SA seals from now on: the first packet on its pair's inbound SA
    /// showed that the peer has the pair (see [`DataPlane::install_outbound_standby`]).
    StandbyPromoted {
        /// The peer.
        peer: PeerId,
        /// The outbound SA now sealing.
        spi: OutboundSpi,
    },
    /// Outbound traffic matched a PROTECT policy whose slot has no SA: negotiate one
    /// (on-demand tunnels). Raised once until an SA is installed in the slot.
    Acquire {
        /// The peer the policy protects traffic to.
        peer: PeerId,
        /// The packet that triggered it (its selectors go into TSi/TSr first, RFC 7296 §2.9).
        packet: PacketKey,
    },
}

/// Outcome of sealing one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealOutcome {
    /// Protected: send `buf[start..end]` as ESP.
    Sealed(Sealed),
    /// A BYPASS policy matched: send the packet as it is.
    Bypass,
}

/// A multiplicative hash for the u32 keys of the per-packet maps (SPIs, slots). SipHash's
/// flooding resistance buys nothing here: the SPIs are ours (chosen at random) and the slots
/// the daemon's, so nobody outside picks colliding keys, and every packet does one lookup.
#[derive(Default)]
struct SpiHasher(u64);

impl Hasher for SpiHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u32(&mut self, v: u32) {
        self.0 = (u64::from(v) ^ self.0).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<SpiHasher>>;

/// Distinct (source, SPI) pairs of unknown-SPI ESP kept for the next
/// [`DataPlane::unknown_spis`] call: a flood of random SPIs is counted, not stored.
pub const MAX_UNKNOWN_REPORTS: usize = 64;

/// The sans-IO ESP data plane.
pub struct DataPlane {
    sad: FastMap<u32, InboundSa>,
    /// Per slot, the outbound SAs installed and not yet removed, oldest first; the last one
    /// seals. Older ones wait as standbys: when the newest is removed (a collision loser, a
    /// failed rekey) the previous one takes over with its sequence numbers intact.
    outbound: FastMap<PeerId, Vec<OutboundSa>>,
    /// Per slot, the standby that the first packet on its pair's inbound SA promotes (see
    /// [`DataPlane::install_outbound_standby`]); an SA installed active later supersedes it.
    promotable: FastMap<PeerId, u32>,
    spd: Spd,
    events: VecDeque<EspEvent>,
    /// Counters of removed SAs, per peer: (inbound, outbound).
    retired: HashMap<PeerId, (Counters, Counters)>,
    /// Drops that belong to no SA (unknown SPI, no policy...).
    unattributed: Counters,
    acquires_pending: HashSet<PeerId>,
    rng: Box<dyn Random + Send>,
    /// ESP whose SPI is not installed (yet).
    parked: crate::parked::ParkedEsp,
    /// (Source, SPI) of ESP that found no SA, parked in vain or not parkable: for the
    /// caller's INVALID_SPI reports. At most [`MAX_UNKNOWN_REPORTS`] distinct pairs between
    /// two calls of [`DataPlane::unknown_spis`]; the rest are only counted.
    unknown: Vec<(IpAddr, InboundSpi)>,
    /// Reports that found the list full.
    unknown_reports_dropped: u64,
    /// When each SA's next time limit fires, so that neither `poll_timeout` nor
    /// `handle_timeout` visits every SA (a mesh host has thousands). Never later than the
    /// real limit: a limit reached by volume first only makes the entry early.
    deadlines: Deadlines<(Direction, PeerId, u32)>,
}

impl core::fmt::Debug for DataPlane {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DataPlane")
            .field("inbound_sas", &self.sad.len())
            .field("outbound_sas", &self.outbound.len())
            .field("policies", &self.spd.len())
            .finish()
    }
}

impl DataPlane {
    /// An empty data plane; `rng` supplies AES-CBC IVs.
    pub fn new(rng: Box<dyn Random + Send>) -> DataPlane {
        DataPlane {
            sad: FastMap::default(),
            outbound: FastMap::default(),
            promotable: FastMap::default(),
            spd: Spd::new(),
            events: VecDeque::new(),
            retired: HashMap::new(),
            unattributed: Counters::default(),
            acquires_pending: HashSet::new(),
            rng,
            parked: Default::default(),
            unknown: Vec::new(),
            unknown_reports_dropped: 0,
            deadlines: Deadlines::new(),
        }
    }

    /// Installs an inbound SA (replacing one with the same SPI).
    pub fn install_inbound(&mut self, now: Timestamp, params: SaParams) -> Result<(), CryptoError> {
        let sa = InboundSa::new(now, params)?;
        let key = (Direction::In, sa.params.peer, sa.params.spi);
        let at = sa.life.next_deadline();
        if let Some(old) = self.sad.insert(sa.params.spi, sa) {
            self.deadlines
                .set((Direction::In, old.params.peer, old.params.spi), None);
            self.retire(old.params.peer, Direction::In, &old.counters);
        }
        self.deadlines.set(key, at);
        Ok(())
    }

    /// Installs an outbound SA in a slot: packets switch to it at the next seal, none is lost.
    /// The SA it displaces stays as a standby until removed (see
    /// [`DataPlane::remove_outbound_spi`]); one with the same SPI is replaced.
    pub fn install_outbound(
        &mut self,
        now: Timestamp,
        slot: PeerId,
        params: SaParams,
    ) -> Result<(), CryptoError> {
        self.promotable.remove(&slot);
        self.install_outbound_in(now, slot, params, false)
    }

    /// Installs an outbound SA in a slot as a standby, just behind the one sealing now: it
    /// takes over when that one is removed, or as soon as a packet opens on `pair` — its
    /// pair's inbound SA, installed before: the peer seals with that only once it has the
    /// whole pair. For the responder of a rekey or a reauthentication, whose peer may not
    /// have the new inbound SA until it has the answer (RFC 7296 §2.8, make-before-break).
    /// In an empty slot it seals at once.
    pub fn install_outbound_standby(
        &mut self,
        now: Timestamp,
        slot: PeerId,
        params: SaParams,
        pair: InboundSpi,
    ) -> Result<(), CryptoError> {
        let spi = params.spi;
        self.install_outbound_in(now, slot, params, true)?;
        let sealing = self.sealing_spi(slot).map(OutboundSpi::get) == Some(spi);
        if sealing {
            return Ok(()); // an empty slot: nothing to wait for
        }
        self.promotable.insert(slot, spi);
        match self.sad.get_mut(&pair.get()) {
            // ESP that had waited for the inbound SA opened already: the peer has the pair.
            Some(sa) if sa.counters.last_packet.is_some() => self.promote_outbound(slot, spi),
            Some(sa) => sa.promotes = Some((slot, spi)),
            None => {}
        }
        Ok(())
    }

    /// Makes outbound SA `spi` of `slot` the one that seals, if it is still the slot's
    /// promotable standby (not removed, not superseded by an SA installed active since).
    fn promote_outbound(&mut self, slot: PeerId, spi: u32) {
        if self.promotable.get(&slot) != Some(&spi) {
            return;
        }
        self.promotable.remove(&slot);
        let Some(list) = self.outbound.get_mut(&slot) else {
            return;
        };
        let Some(i) = list.iter().position(|o| o.params.spi == spi) else {
            return;
        };
        if i + 1 == list.len() {
            return; // sealing already
        }
        let sa = list.remove(i);
        list.push(sa);
        self.events.push_back(EspEvent::StandbyPromoted {
            peer: slot,
            spi: OutboundSpi::new(spi),
        });
    }

    fn install_outbound_in(
        &mut self,
        now: Timestamp,
        slot: PeerId,
        params: SaParams,
        standby: bool,
    ) -> Result<(), CryptoError> {
        let sa = OutboundSa::new(now, params)?;
        let spi = sa.params.spi;
        self.deadlines
            .set((Direction::Out, slot, spi), sa.life.next_deadline());
        let list = self.outbound.entry(slot).or_default();
        let replaced = list
            .iter()
            .position(|o| o.params.spi == spi)
            .map(|i| list.remove(i));
        let at = if standby {
            list.len().saturating_sub(1)
        } else {
            list.len()
        };
        list.insert(at, sa);
        if let Some(old) = replaced {
            self.retire(old.params.peer, Direction::Out, &old.counters);
        }
        self.acquires_pending.remove(&slot);
        Ok(())
    }

    /// Removes one outbound SA of a slot (by SPI); if it was sealing, the newest remaining
    /// one takes over. Its counters stay in its peer's totals.
    pub fn remove_outbound_spi(&mut self, slot: PeerId, spi: OutboundSpi) -> bool {
        let Some(list) = self.outbound.get_mut(&slot) else {
            return false;
        };
        let Some(i) = list.iter().position(|o| o.params.spi == spi.get()) else {
            return false;
        };
        let sa = list.remove(i);
        if list.is_empty() {
            self.outbound.remove(&slot);
        }
        if self.promotable.get(&slot) == Some(&sa.params.spi) {
            self.promotable.remove(&slot);
        }
        self.deadlines
            .set((Direction::Out, slot, sa.params.spi), None);
        self.retire(sa.params.peer, Direction::Out, &sa.counters);
        true
    }

    /// Fault injection for tests: makes a slot's outbound SA continue at sequence number `seq`
    /// (e.g. to reach the end of the sequence space, or to reproduce a published example).
    /// Returns false if the slot is empty. Only with the `test-hooks` feature.
    #[cfg(feature = "test-hooks")]
    pub fn debug_set_next_seq(&mut self, slot: PeerId, seq: u64) -> bool {
        match self.outbound.get_mut(&slot).and_then(|l| l.last_mut()) {
            Some(sa) => {
                sa.set_next_seq(seq);
                true
            }
            None => false,
        }
    }

    /// Removes an inbound SA; its counters stay in its peer's totals.
    pub fn remove_inbound(&mut self, spi: InboundSpi) -> bool {
        match self.sad.remove(&spi.get()) {
            Some(sa) => {
                self.deadlines
                    .set((Direction::In, sa.params.peer, sa.params.spi), None);
                self.retire(sa.params.peer, Direction::In, &sa.counters);
                true
            }
            None => false,
        }
    }

    /// Removes every outbound SA of a slot; their counters stay in their peer's totals.
    pub fn remove_outbound(&mut self, slot: PeerId) -> bool {
        self.promotable.remove(&slot);
        match self.outbound.remove(&slot) {
            Some(list) => {
                for sa in list {
                    self.deadlines
                        .set((Direction::Out, slot, sa.params.spi), None);
                    self.retire(sa.params.peer, Direction::Out, &sa.counters);
                }
                true
            }
            None => false,
        }
    }

    fn retire(&mut self, peer: PeerId, dir: Direction, c: &Counters) {
        let entry = self.retired.entry(peer).or_default();
        match dir {
            Direction::In => entry.0.add(c),
            Direction::Out => entry.1.add(c),
        }
    }

    /// Adds an outbound policy.
    pub fn add_policy(&mut self, policy: Policy) -> PolicyId {
        self.spd.add(policy)
    }

    /// Removes an outbound policy.
    pub fn remove_policy(&mut self, id: PolicyId) -> Option<Policy> {
        self.spd.remove(id)
    }

    /// Counters of one inbound SA.
    pub fn inbound_counters(&self, spi: InboundSpi) -> Option<&Counters> {
        self.sad.get(&spi.get()).map(InboundSa::counters)
    }

    /// Counters of a slot's current outbound SA.
    pub fn outbound_counters(&self, slot: PeerId) -> Option<&Counters> {
        self.outbound
            .get(&slot)
            .and_then(|l| l.last())
            .map(OutboundSa::counters)
    }

    /// Counters of one outbound SA of a slot.
    pub fn outbound_counters_spi(&self, slot: PeerId, spi: OutboundSpi) -> Option<&Counters> {
        self.outbound
            .get(&slot)
            .and_then(|l| l.iter().find(|o| o.params.spi == spi.get()))
            .map(OutboundSa::counters)
    }

    /// A peer's totals (inbound, outbound) over every SA it ever had: live SAs plus retired
    /// ones, so rekeying never resets them.
    pub fn peer_counters(&self, peer: PeerId) -> (Counters, Counters) {
        let (mut inbound, mut outbound) = self.retired.get(&peer).copied().unwrap_or_default();
        for sa in self.sad.values().filter(|s| s.params.peer == peer) {
            inbound.add(&sa.counters);
        }
        for sa in self
            .outbound
            .values()
            .flatten()
            .filter(|s| s.params.peer == peer)
        {
            outbound.add(&sa.counters);
        }
        (inbound, outbound)
    }

    /// Drops that belong to no SA (unknown SPI, outbound packets without policy).
    pub fn unattributed_counters(&self) -> &Counters {
        &self.unattributed
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<EspEvent> {
        self.events.pop_front()
    }

    /// Earliest time-based deadline: an SA's lifetime, or parked ESP that stops waiting.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.deadlines
            .next()
            .into_iter()
            .chain(self.parked.next_expiry())
            .min()
    }

    /// Fires time-based lifetime events that are due, and gives up on parked ESP that waited
    /// long enough (see [`DataPlane::unknown_spis`]).
    pub fn handle_timeout(&mut self, now: Timestamp) {
        self.expire_parked(now);
        let mut due = Vec::new();
        while let Some((direction, slot, spi)) = self.deadlines.pop_due(now) {
            let life = match direction {
                Direction::In => self.sad.get_mut(&spi).map(|sa| {
                    let ev = sa.life.check(now, sa.counters.bytes, sa.counters.packets);
                    (sa.params.peer, ev, sa.life.next_deadline())
                }),
                Direction::Out => self
                    .outbound
                    .get_mut(&slot)
                    .and_then(|l| l.iter_mut().find(|sa| sa.params.spi == spi))
                    .map(|sa| {
                        let ev = sa.life.check(now, sa.counters.bytes, sa.counters.packets);
                        (sa.params.peer, ev, sa.life.next_deadline())
                    }),
            };
            if let Some((peer, ev, next)) = life {
                due.push((spi, peer, direction, ev));
                // The hard limit after the soft one (or nothing more).
                if next.is_some_and(|t| t > now) {
                    self.deadlines.set((direction, slot, spi), next);
                }
            }
        }
        for (spi, peer, direction, ev) in due {
            self.push_life_events(spi, peer, direction, ev);
        }
    }

    fn push_life_events(&mut self, spi: u32, peer: PeerId, direction: Direction, ev: LifeEvents) {
        let sa = SaRef::new(spi, direction);
        if let Some(reason) = ev.0 {
            self.events
                .push_back(EspEvent::SoftExpired { sa, peer, reason });
        }
        if let Some(reason) = ev.1 {
            self.events
                .push_back(EspEvent::HardExpired { sa, peer, reason });
        }
    }

    /// Applies the SPD to the inner packet in `pkt` and, if it is to be protected, seals it
    /// in place.
    pub fn seal(
        &mut self,
        now: Timestamp,
        pkt: &mut PacketBuf<'_>,
    ) -> Result<SealOutcome, DropReason> {
        let Some(key) = packet_key(pkt.data()) else {
            self.unattributed.count_drop(DropReason::Malformed);
            return Err(DropReason::Malformed);
        };
        let slot = match self.spd.lookup(&key).map(|p| p.action) {
            Some(Action::Protect(slot)) => slot,
            Some(Action::Bypass) => return Ok(SealOutcome::Bypass),
            Some(Action::Discard) | None => {
                self.unattributed.count_drop(DropReason::NoPolicy);
                return Err(DropReason::NoPolicy);
            }
        };
        let Some(sa) = self.outbound.get_mut(&slot).and_then(|l| l.last_mut()) else {
            self.unattributed.count_drop(DropReason::NoSa);
            if self.acquires_pending.insert(slot) {
                self.events.push_back(EspEvent::Acquire {
                    peer: slot,
                    packet: key,
                });
            }
            return Err(DropReason::NoSa);
        };
        // The policy is the peer's configured selectors; the SA carries what was negotiated
        // (narrowed, perhaps): the peer would drop the rest, so it is not sent.
        if !sa.params.selectors.iter().any(|s| s.matches_outbound(&key)) {
            sa.counters.count_drop(DropReason::NoPolicy);
            return Err(DropReason::NoPolicy);
        }
        let mut ev = (None, None);
        let resumed = sa
            .counters
            .last_packet
            .is_none_or(|t| now.duration_since(t) >= meshsec_types::timing::SENDING_WINDOW);
        let result = sa.seal(now, pkt, self.rng.as_mut(), &mut ev);
        if let Err(reason) = result {
            sa.counters.count_drop(reason);
        }
        let (spi, peer) = (sa.params.spi, sa.params.peer);
        if resumed && result.is_ok() {
            self.events.push_back(EspEvent::OutboundResumed { peer });
        }
        self.push_life_events(spi, peer, Direction::Out, ev);
        result.map(SealOutcome::Sealed)
    }

    /// Opens the ESP packet in `pkt`, received from outer address `src` at `dst`; on success
    /// the inner packet is in `pkt.start..pkt.end`.
    pub fn open(
        &mut self,
        now: Timestamp,
        pkt: &mut PacketBuf<'_>,
        src: IpAddr,
        dst: IpAddr,
    ) -> Result<Opened, DropReason> {
        let spi = match EspHeader::parse(pkt.data()) {
            Ok((h, _)) => h.spi,
            Err(_) => {
                self.unattributed.count_drop(DropReason::Malformed);
                return Err(DropReason::Malformed);
            }
        };
        let Some(sa) = self.sad.get_mut(&spi) else {
            let (parked, evicted) = self.parked.park(now, spi, (src, dst), pkt.data());
            if let Some(e) = evicted {
                self.unattributed.count_drop(DropReason::UnknownSpi);
                self.note_unknown(e);
            }
            if parked {
                return Ok(Opened::Parked {
                    spi: InboundSpi::new(spi),
                });
            }
            self.unattributed.count_drop(DropReason::UnknownSpi);
            self.note_unknown((src, spi));
            return Err(DropReason::UnknownSpi);
        };
        let mut ev = (None, None);
        let result = sa.open(now, pkt, (src, dst), &mut ev);
        let peer = sa.params.peer;
        let promote = if result.is_ok() {
            sa.promotes.take()
        } else {
            None
        };
        self.push_life_events(spi, peer, Direction::In, ev);
        if let Some((slot, out)) = promote {
            self.promote_outbound(slot, out);
        }
        result
    }

    /// Opens the ESP parked for `spi` (it arrived before its SA: call right after
    /// installing the inbound SA) and hands each inner packet to `deliver`.
    pub fn open_parked(&mut self, now: Timestamp, spi: InboundSpi, mut deliver: impl FnMut(&[u8])) {
        let spi = spi.get();
        let Some(sa) = self.sad.get_mut(&spi) else {
            return;
        };
        let mut evs = Vec::new();
        self.parked.take(spi, |u| {
            let mut pkt = PacketBuf::new(u.buf, crate::sa::HEADROOM, u.end);
            let mut ev = (None, None);
            if let Ok(Opened::Packet { .. }) = sa.open(now, &mut pkt, (u.src, u.dst), &mut ev) {
                deliver(pkt.data());
            }
            evs.push(ev);
        });
        let peer = sa.params.peer;
        for ev in evs {
            self.push_life_events(spi, peer, Direction::In, ev);
        }
    }

    /// Remembers (once, within the bound) that ESP with `spi` from `src` found no SA.
    fn note_unknown(&mut self, (src, spi): (IpAddr, u32)) {
        let e = (src, InboundSpi::new(spi));
        if self.unknown.contains(&e) {
            return;
        }
        if self.unknown.len() < MAX_UNKNOWN_REPORTS {
            self.unknown.push(e);
            return;
        }
        // Full — ESP with random SPIs from everywhere, most likely: a report from an address
        // we have an SA with (a peer whose SA we lost, to be healed by INVALID_SPI) takes the
        // place of one from elsewhere. The list is only full under such a flood, so the scans
        // are rare.
        let is_peer = |ip: IpAddr| {
            self.outbound
                .values()
                .flatten()
                .any(|o| o.params.remote == ip)
        };
        let stranger = is_peer(src)
            .then(|| self.unknown.iter().position(|(s, _)| !is_peer(*s)))
            .flatten();
        if let Some(slot) = stranger.and_then(|i| self.unknown.get_mut(i)) {
            *slot = e;
        }
        self.unknown_reports_dropped += 1;
    }

    /// Reports of ESP with unknown SPIs dropped because the list of them was full (see
    /// [`DataPlane::unknown_spis`]).
    pub fn unknown_reports_dropped(&self) -> u64 {
        self.unknown_reports_dropped
    }

    /// Forgets parked ESP older than its wait; returns the (source, SPI) of every ESP that
    /// found no SA since the last call (to be told to the peer: INVALID_SPI), at most
    /// [`MAX_UNKNOWN_REPORTS`] of them.
    pub fn unknown_spis(&mut self, now: Timestamp) -> Vec<(IpAddr, InboundSpi)> {
        self.expire_parked(now);
        std::mem::take(&mut self.unknown)
    }

    fn expire_parked(&mut self, now: Timestamp) {
        for e in self.parked.expire(now) {
            self.unattributed.count_drop(DropReason::UnknownSpi);
            self.note_unknown(e);
        }
    }

    /// Whether [`DataPlane::poll_event`] or [`DataPlane::unknown_spis`] has something for the
    /// control plane: the data path wakes it only then.
    pub fn has_reports(&self) -> bool {
        !self.events.is_empty() || !self.unknown.is_empty()
    }

    /// The SPI the data plane seals with for `peer` now (the newest outbound SA; standbys
    /// wait behind it).
    pub fn sealing_spi(&self, peer: PeerId) -> Option<OutboundSpi> {
        self.outbound
            .get(&peer)
            .and_then(|l| l.last())
            .map(|o| OutboundSpi::new(o.params.spi))
    }

    /// The outbound SAs of `peer`, the sealing one last (standbys before it).
    pub fn outbound_spis(&self, peer: PeerId) -> Vec<OutboundSpi> {
        self.outbound
            .get(&peer)
            .map(|l| l.iter().map(|o| OutboundSpi::new(o.params.spi)).collect())
            .unwrap_or_default()
    }

    /// The inbound SAs of `peer`, in SPI order.
    pub fn inbound_spis(&self, peer: PeerId) -> Vec<InboundSpi> {
        let mut v: Vec<InboundSpi> = self
            .sad
            .values()
            .filter(|s| s.params.peer == peer)
            .map(|s| InboundSpi::new(s.params.spi))
            .collect();
        v.sort();
        v
    }

    /// Whether an inbound SA with `spi` is installed.
    pub fn has_inbound(&self, spi: InboundSpi) -> bool {
        self.sad.contains_key(&spi.get())
    }

    /// Seals a batch; `results[i]` receives the outcome of `packets[i]`. No allocation.
    pub fn seal_batch(
        &mut self,
        now: Timestamp,
        packets: &mut [PacketBuf<'_>],
        results: &mut [Result<SealOutcome, DropReason>],
    ) {
        for (pkt, out) in packets.iter_mut().zip(results.iter_mut()) {
            *out = self.seal(now, pkt);
        }
    }

    /// Opens a batch received from `src` at `dst`; `results[i]` receives the outcome of
    /// `packets[i]`. No allocation.
    pub fn open_batch(
        &mut self,
        now: Timestamp,
        packets: &mut [PacketBuf<'_>],
        src: IpAddr,
        dst: IpAddr,
        results: &mut [Result<Opened, DropReason>],
    ) {
        for (pkt, out) in packets.iter_mut().zip(results.iter_mut()) {
            *out = self.open(now, pkt, src, dst);
        }
    }
}
