//! The responder's half-open IKE SAs (IKE_SA_INIT answered, IKE_AUTH not yet) and who may
//! have one — the only state an unauthenticated sender can make us keep (RFC 7296 §2.6).
//!
//! Three bounds, so that no sender can lock the others out:
//!
//! * per source address, `max_half_open_per_source`: a source at its bound pushes out its own
//!   oldest entry (a peer that restarts behind that address still gets in; a sender replaying
//!   one cookie from thousands of ports only churns its own entries);
//! * in total, `max_half_open`: when full, a request that proved its address with a cookie
//!   pushes out the oldest entry that did not (or else the oldest of its own source); anything
//!   else is refused;
//! * from `cookie_threshold` entries on — or `cookie_threshold_per_source` from one source —
//!   only requests with a valid cookie are considered at all (the cookie is checked first, so
//!   a full table never refuses a valid cookie unheard, and a flood from one, spoofed, address
//!   costs a keyed hash per request, not a key exchange).

use std::collections::VecDeque;
use std::net::IpAddr;

use meshsec_types::IkeSpi;

/// One half-open IKE SA.
#[derive(Debug, Clone, Copy)]
struct Entry {
    spi: IkeSpi,
    source: IpAddr,
    /// Admitted with a valid cookie: the source address is not spoofed.
    cookie: bool,
}

/// What to do with a new IKE_SA_INIT request that passed the cookie check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Room for it.
    Admit,
    /// Room for it once this half-open SA is dropped.
    Evict(IkeSpi),
    /// No room.
    Refuse,
}

/// The half-open IKE SAs in arrival order (at most `max_half_open` of them, so scans are
/// cheap next to the key exchange each admitted request costs).
#[derive(Debug, Default)]
pub(crate) struct HalfOpen {
    entries: VecDeque<Entry>,
}

impl HalfOpen {
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    fn of_source(&self, source: IpAddr) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(move |e| e.source == source)
    }

    /// The half-open SAs from `source`.
    pub(crate) fn count_of(&self, source: IpAddr) -> usize {
        self.of_source(source).count()
    }

    /// Whether (and at whose cost) a request from `source` gets a half-open SA.
    pub(crate) fn admit(
        &self,
        source: IpAddr,
        with_cookie: bool,
        per_source: usize,
        total: usize,
    ) -> Admission {
        if per_source == 0 || total == 0 {
            return Admission::Refuse;
        }
        if self.of_source(source).count() >= per_source {
            return match self.of_source(source).next() {
                Some(oldest) => Admission::Evict(oldest.spi),
                None => Admission::Refuse,
            };
        }
        if self.entries.len() < total {
            return Admission::Admit;
        }
        if !with_cookie {
            return Admission::Refuse;
        }
        self.entries
            .iter()
            .find(|e| !e.cookie)
            .or_else(|| self.of_source(source).next())
            .map_or(Admission::Refuse, |e| Admission::Evict(e.spi))
    }

    pub(crate) fn insert(&mut self, spi: IkeSpi, source: IpAddr, cookie: bool) {
        self.entries.push_back(Entry {
            spi,
            source,
            cookie,
        });
    }

    /// Forgets `spi` (authenticated, failed, expired or evicted); true if it was half-open.
    pub(crate) fn remove(&mut self, spi: IkeSpi) -> bool {
        let before = self.entries.len();
        self.entries.retain(|e| e.spi != spi);
        self.entries.len() != before
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    #[test]
    fn a_source_at_its_bound_pushes_out_its_own_oldest() {
        let mut h = HalfOpen::default();
        h.insert(IkeSpi::new(1), ip(1), false);
        h.insert(IkeSpi::new(2), ip(2), false);
        h.insert(IkeSpi::new(3), ip(1), false);
        assert_eq!(
            h.admit(ip(1), false, 2, 100),
            Admission::Evict(IkeSpi::new(1))
        );
        assert_eq!(h.admit(ip(2), false, 2, 100), Admission::Admit);
    }

    #[test]
    fn a_full_table_takes_only_cookies_and_pushes_out_cookie_less_entries_first() {
        let mut h = HalfOpen::default();
        h.insert(IkeSpi::new(1), ip(1), true);
        h.insert(IkeSpi::new(2), ip(2), false);
        h.insert(IkeSpi::new(3), ip(3), true);
        assert_eq!(h.admit(ip(4), false, 8, 3), Admission::Refuse);
        assert_eq!(h.admit(ip(4), true, 8, 3), Admission::Evict(IkeSpi::new(2)));
        assert!(h.remove(IkeSpi::new(2)));
        h.insert(IkeSpi::new(4), ip(4), true);
        // Every entry proved its address: only the requester's own oldest may go.
        assert_eq!(h.admit(ip(4), true, 8, 3), Admission::Evict(IkeSpi::new(4)));
        assert_eq!(h.admit(ip(5), true, 8, 3), Admission::Refuse);
        assert!(!h.remove(IkeSpi::new(2)));
        assert_eq!(h.len(), 3);
    }
}
