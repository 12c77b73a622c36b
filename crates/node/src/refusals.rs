//! The log of refused unauthenticated initiators. Anyone can send an unacceptable
//! IKE_SA_INIT, or an IKE_AUTH that does not authenticate, as fast as the link allows: each
//! source gets at most one line per [`REFUSAL_LOG_INTERVAL`], and all sources together at
//! most [`LINES_PER_INTERVAL`]; what is held back is counted, and the next line says how
//! much. A refusal never touches a peer's status (it is not the peer's word).

use std::collections::HashMap;
use std::net::IpAddr;

use meshsec_types::Timestamp;
use meshsec_types::timing::REFUSAL_LOG_INTERVAL;

/// Log lines for refusals per interval, all sources together.
const LINES_PER_INTERVAL: u32 = 5;
/// Sources remembered at once (a flood from spoofed addresses finds the table full and is
/// held back whole).
const MAX_SOURCES: usize = 1024;

/// When each source was last logged, and what was held back.
#[derive(Debug, Default)]
pub(crate) struct RefusalLog {
    /// Source → when its last line was written.
    sources: HashMap<IpAddr, Timestamp>,
    /// The current interval: when it began, and the lines written in it.
    window: (Timestamp, u32),
    /// Refusals not logged since the last line.
    held_back: u64,
    /// Refusals so far.
    pub(crate) total: u64,
    /// Refusals never logged.
    pub(crate) suppressed: u64,
}

impl RefusalLog {
    /// Counts a refusal of `from`; `Some(n)` if it gets a log line, `n` being the refusals
    /// held back since the last line.
    pub(crate) fn admit(&mut self, now: Timestamp, from: IpAddr) -> Option<u64> {
        self.total += 1;
        if now.duration_since(self.window.0) >= REFUSAL_LOG_INTERVAL {
            self.window = (now, 0);
            self.sources
                .retain(|_, at| now.duration_since(*at) < REFUSAL_LOG_INTERVAL);
        }
        let recent = self
            .sources
            .get(&from)
            .is_some_and(|at| now.duration_since(*at) < REFUSAL_LOG_INTERVAL);
        let room = self.window.1 < LINES_PER_INTERVAL
            && (self.sources.len() < MAX_SOURCES || self.sources.contains_key(&from));
        if recent || !room {
            self.held_back += 1;
            self.suppressed += 1;
            return None;
        }
        self.sources.insert(from, now);
        self.window.1 += 1;
        Some(std::mem::take(&mut self.held_back))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_source_and_interval_and_a_few_in_all() {
        let mut log = RefusalLog::default();
        let a = IpAddr::from([192, 0, 2, 1]);
        let t = Timestamp::from_secs(100);
        assert_eq!(log.admit(t, a), Some(0));
        for _ in 0..1000 {
            assert_eq!(log.admit(t, a), None);
        }
        // Many sources: a few lines, then nothing until the interval is over.
        let lines = (1..=200u8)
            .filter(|i| log.admit(t, IpAddr::from([198, 51, 100, *i])).is_some())
            .count();
        assert_eq!(lines, 4);
        let later = t + REFUSAL_LOG_INTERVAL;
        // The line says what was held back since the previous line.
        assert_eq!(log.admit(later, a), Some(196));
        assert_eq!(log.total, 1202);
        assert_eq!(log.suppressed, 1196);
    }
}
