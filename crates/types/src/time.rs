//! Time as the engines see it: a [`Timestamp`] is a point on the caller's monotonic clock,
//! measured from an arbitrary epoch (the daemon's start, or zero in the simulator). Spans
//! are plain [`Duration`]s.
//!
//! Arithmetic saturates instead of panicking: a deadline computed from a huge configured
//! lifetime is "never", not a crash.

use core::fmt;
use core::ops::{Add, AddAssign, Sub};
use std::time::Duration;

/// A point on the caller's monotonic clock.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(Duration);

impl Timestamp {
    /// The epoch.
    pub const ZERO: Timestamp = Timestamp(Duration::ZERO);
    /// The end of time: a deadline that never comes.
    pub const MAX: Timestamp = Timestamp(Duration::MAX);

    /// The point `since_epoch` after the epoch.
    pub const fn from_duration(since_epoch: Duration) -> Timestamp {
        Timestamp(since_epoch)
    }

    /// `secs` seconds after the epoch (virtual time in tests).
    pub const fn from_secs(secs: u64) -> Timestamp {
        Timestamp(Duration::from_secs(secs))
    }

    /// `ms` milliseconds after the epoch.
    pub const fn from_millis(ms: u64) -> Timestamp {
        Timestamp(Duration::from_millis(ms))
    }

    /// Time since the epoch.
    pub const fn since_epoch(self) -> Duration {
        self.0
    }

    /// How long after `earlier` this is; zero if it is not later (like
    /// `std::time::Instant::duration_since`).
    pub fn duration_since(self, earlier: Timestamp) -> Duration {
        self.0.saturating_sub(earlier.0)
    }
}

/// How late a timer may fire and still count as on time when deadlines are rounded to a
/// grid ([`Timestamp::on_grid`]): a wakeup a few milliseconds late must not slip a granule.
pub const GRID_TOLERANCE: Duration = Duration::from_millis(50);

impl Timestamp {
    /// This point rounded up to a whole `granule` since the epoch (within
    /// [`GRID_TOLERANCE`]), and later than `now`: deadlines of many peers or SAs that fall in
    /// the same granule then wake their owner once.
    pub fn on_grid(self, granule: Duration, now: Timestamp) -> Timestamp {
        let g = granule.as_millis().max(1);
        let round_up = |t: Timestamp| {
            let ms = t.since_epoch().as_millis().div_ceil(g).saturating_mul(g);
            Timestamp::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
        };
        let at = round_up(self - GRID_TOLERANCE);
        if at > now {
            at
        } else {
            // Overdue: the first granule at least a tolerance from now (never now itself: a
            // deadline that stays due would make the caller spin).
            round_up(now + GRID_TOLERANCE)
        }
    }
}

impl Add<Duration> for Timestamp {
    type Output = Timestamp;
    fn add(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(d))
    }
}

impl AddAssign<Duration> for Timestamp {
    fn add_assign(&mut self, d: Duration) {
        *self = *self + d;
    }
}

impl Sub<Duration> for Timestamp {
    type Output = Timestamp;
    /// Saturates at the epoch.
    fn sub(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_sub(d))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_deadlines_land_on_whole_granules_after_now() {
        let g = Duration::from_secs(1);
        let now = Timestamp::from_millis(10_250);
        assert_eq!(
            Timestamp::from_millis(12_100).on_grid(g, now),
            Timestamp::from_secs(13)
        );
        // A wakeup a few milliseconds late does not slip a whole granule.
        assert_eq!(
            Timestamp::from_millis(12_003).on_grid(g, now),
            Timestamp::from_secs(12)
        );
        // Overdue: the next granule, never now (that would spin).
        assert_eq!(
            Timestamp::from_secs(3).on_grid(g, now),
            Timestamp::from_secs(11)
        );
    }

    #[test]
    fn arithmetic_saturates_instead_of_panicking() {
        let t = Timestamp::from_secs(5);
        assert_eq!(t + Duration::from_secs(2), Timestamp::from_secs(7));
        assert_eq!(t - Duration::from_secs(9), Timestamp::ZERO);
        assert_eq!(Timestamp::MAX + Duration::from_secs(1), Timestamp::MAX);
        assert_eq!(t.duration_since(Timestamp::from_secs(7)), Duration::ZERO);
        assert_eq!(
            Timestamp::from_secs(7).duration_since(t),
            Duration::from_secs(2)
        );
    }
}
