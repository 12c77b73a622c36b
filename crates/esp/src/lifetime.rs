//! SA lifetimes (RFC 4301 §4.4.2.1): soft limits ask for a rekey, hard limits end the SA.
//! Besides the configured time/byte/packet limits there are limits no configuration can
//! lift: the sequence number space (no wrap, RFC 4303 §3.3.3) and AEAD usage limits.

use std::time::Duration;

pub use meshsec_types::Timestamp;

/// One set of limits; `None` means unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// Time since the SA was installed.
    pub time: Option<Duration>,
    /// Inner-packet octets.
    pub bytes: Option<u64>,
    /// Packets.
    pub packets: Option<u64>,
}

/// Soft and hard limits of an SA.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lifetime {
    /// Reaching one raises `SoftExpired` (rekey now).
    pub soft: Limits,
    /// Reaching one raises `HardExpired` and the SA stops working.
    pub hard: Limits,
}

/// Which limit was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Expiry {
    /// The time limit.
    Time,
    /// The byte limit.
    Bytes,
    /// The packet limit.
    Packets,
    /// The outbound sequence number space is (nearly) used up.
    SequenceSpace,
    /// The AEAD key was used for as many packets as is safe (AES-GCM).
    AeadUsage,
    /// Too many packets failed authentication for this key (forgery attempts).
    IntegrityFailures,
}

/// Packets one AES-GCM key may seal: well inside the bounds of the CFRG "Usage Limits on AEAD
/// Algorithms" analysis for ~1500-octet packets; reached only by very long-lived SAs.
pub const AES_GCM_MAX_PACKETS: u64 = 1 << 32;
/// Failed authentications tolerated per key before it is retired (ibid., integrity limit).
pub const MAX_AUTH_FAILURES: u64 = 1 << 36;

/// Where an SA stands against its limits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LifeState {
    installed: Timestamp,
    lifetime: Lifetime,
    pub(crate) soft_fired: bool,
    pub(crate) hard_fired: Option<Expiry>,
}

fn reached(l: &Limits, age: Duration, bytes: u64, packets: u64) -> Option<Expiry> {
    if l.time.is_some_and(|t| age >= t) {
        Some(Expiry::Time)
    } else if l.bytes.is_some_and(|b| bytes >= b) {
        Some(Expiry::Bytes)
    } else if l.packets.is_some_and(|p| packets >= p) {
        Some(Expiry::Packets)
    } else {
        None
    }
}

impl LifeState {
    pub(crate) fn new(now: Timestamp, lifetime: Lifetime) -> LifeState {
        LifeState {
            installed: now,
            lifetime,
            soft_fired: false,
            hard_fired: None,
        }
    }

    /// Checks the configured limits; returns (newly soft, newly hard) expiries.
    pub(crate) fn check(
        &mut self,
        now: Timestamp,
        bytes: u64,
        packets: u64,
    ) -> (Option<Expiry>, Option<Expiry>) {
        let age = now.duration_since(self.installed);
        let mut soft = None;
        let mut hard = None;
        if self.hard_fired.is_none()
            && let Some(e) = reached(&self.lifetime.hard, age, bytes, packets)
        {
            self.hard_fired = Some(e);
            hard = Some(e);
        }
        if !self.soft_fired
            && let Some(e) = reached(&self.lifetime.soft, age, bytes, packets)
        {
            self.soft_fired = true;
            soft = Some(e);
        }
        (soft, hard)
    }

    /// Marks a limit outside the configuration (sequence space, AEAD usage) as reached.
    pub(crate) fn force(&mut self, hard: bool, why: Expiry) -> Option<Expiry> {
        if hard {
            if self.hard_fired.is_some() {
                return None;
            }
            self.hard_fired = Some(why);
        } else {
            if self.soft_fired {
                return None;
            }
            self.soft_fired = true;
        }
        Some(why)
    }

    /// The next instant at which a time limit fires, if any is still pending.
    pub(crate) fn next_deadline(&self) -> Option<Timestamp> {
        let soft = (!self.soft_fired)
            .then_some(self.lifetime.soft.time)
            .flatten();
        let hard = self
            .hard_fired
            .is_none()
            .then_some(self.lifetime.hard.time)
            .flatten();
        [soft, hard]
            .into_iter()
            .flatten()
            .map(|t| self.installed + t)
            .min()
    }
}
