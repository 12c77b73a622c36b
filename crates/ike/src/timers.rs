//! The deadlines of one IKE SA and its CHILD SAs, as a table indexed by what each is for
//! (DESIGN §3, as quinn-proto's timer table). One function says when each fires — only when
//! `Endpoint::handle_timeout` will act on it, so that a deadline in the past never makes a
//! caller spin — and the SA table indexes the earliest of them.

use meshsec_types::timing::REPLACED_GRACE;

use crate::config::EndpointConfig;
use crate::sa::{ChildState, IkeSa, Life, State, Task, Timestamp};

/// What a deadline of an IKE SA is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SaTimer {
    /// Send our outstanding request again, or give up on it.
    Retransmit,
    /// A half-open IKE SA (IKE_SA_INIT answered, no IKE_AUTH) is dropped.
    HalfOpen,
    /// Queued exchanges may start (after a TEMPORARY_FAILURE, or a reauthentication's drain).
    Tasks,
    /// Rekey the IKE SA (soft lifetime).
    Rekey,
    /// A replaced IKE SA whose Delete never came is deleted by us.
    ReplacedGrace,
    /// Reauthenticate, or delete the IKE SA whose authentication expired.
    Reauth,
    /// Rekey a CHILD SA (soft lifetime).
    ChildRekey,
    /// Delete a CHILD SA (hard lifetime).
    ChildExpiry,
    /// Send a NAT keepalive (RFC 3948 §2.3).
    NatKeepalive,
}

impl SaTimer {
    const COUNT: usize = 9;
}

/// An IKE SA's deadlines.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SaTimers([Option<Timestamp>; SaTimer::COUNT]);

impl SaTimers {
    fn set(&mut self, t: SaTimer, at: Option<Timestamp>) {
        if let Some(slot) = self.0.get_mut(t as usize) {
            *slot = at;
        }
    }

    /// The deadline of `t`, if set.
    pub(crate) fn get(&self, t: SaTimer) -> Option<Timestamp> {
        self.0.get(t as usize).copied().flatten()
    }

    /// The earliest deadline.
    pub(crate) fn next(&self) -> Option<Timestamp> {
        self.0.iter().flatten().min().copied()
    }
}

impl IkeSa {
    /// Its deadlines as they stand.
    pub(crate) fn timers(&self, config: &EndpointConfig) -> SaTimers {
        let mut t = SaTimers::default();
        t.set(
            SaTimer::Retransmit,
            self.outstanding.as_ref().map(|o| o.next_at),
        );
        if self.state == State::ExpectAuthRequest && self.outstanding.is_none() {
            t.set(
                SaTimer::HalfOpen,
                Some(self.created + config.half_open_timeout),
            );
        }
        if self.state != State::Established {
            return t;
        }
        let idle = self.outstanding.is_none();
        t.set(
            SaTimer::Tasks,
            (!self.tasks.is_empty() && idle).then_some(self.tasks_after),
        );
        match self.replaced_since() {
            Some(since) => t.set(
                SaTimer::ReplacedGrace,
                (idle && !self.tasks.contains(&Task::DeleteIke)).then(|| since + REPLACED_GRACE),
            ),
            None => t.set(SaTimer::Rekey, self.rekey_at),
        }
        if self.life == Life::Active {
            let reauth = [self.reauth.at, self.reauth.expires];
            t.set(SaTimer::Reauth, reauth.into_iter().flatten().min());
        }
        let replaced = self.is_replaced();
        t.set(
            SaTimer::ChildRekey,
            self.children
                .iter()
                .filter(|c| c.state == ChildState::Installed && !replaced)
                .filter_map(|c| c.rekey_at)
                .min(),
        );
        t.set(
            SaTimer::ChildExpiry,
            self.children.iter().filter_map(|c| c.expire_at).min(),
        );
        if self.nat.local() && !replaced {
            t.set(SaTimer::NatKeepalive, self.keepalive_at);
        }
        t
    }

    /// Its earliest deadline.
    pub(crate) fn next_deadline(&self, config: &EndpointConfig) -> Option<Timestamp> {
        self.timers(config).next()
    }
}
