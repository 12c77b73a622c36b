//! The responder's half-open IKE SAs (IKE_SA_INIT answered, IKE_AUTH not yet) and who may
//! have one — the only state an unauthenticated sender can make us keep (RFC 7296 §2.6).
//!
//! Bounds, so that no sender can lock the others out:
//!
//! * per source, `max_half_open_per_source`: a source at its bound pushes out its own oldest
//!   entry (a peer that restarts behind that address still gets in; a sender replaying one
//!   cookie from thousands of ports only churns its own entries). A source is an IPv4
//!   address or an IPv6 /64 (one host usually has a whole /64 to pick addresses from);
//! * in total, `max_half_open`: when full, a request from a peer's configured address pushes
//!   out the oldest entry from elsewhere, and a request that proved its address with a cookie
//!   the oldest entry that did neither (or else, either, the oldest of its own source);
//!   anything else is refused — so a sender with many addresses that fills the table with
//!   cookies still cannot keep the configured peers out;
//! * from `cookie_threshold` entries on — or `cookie_threshold_per_source` from one source —
//!   only requests with a valid cookie are considered at all (the cookie is checked first, so
//!   a full table never refuses a valid cookie unheard, and a flood from one, spoofed, address
//!   costs a keyed hash per request, not a key exchange).

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv6Addr};

use meshsec_types::IkeSpi;

/// One half-open IKE SA.
#[derive(Debug, Clone, Copy)]
struct Entry {
    spi: IkeSpi,
    /// Its source (see [`source_of`]).
    source: IpAddr,
    /// Admitted with a valid cookie: the source address is not spoofed.
    cookie: bool,
    /// From the configured address of a peer.
    known: bool,
}

/// The unit the per-source bounds count: an IPv4 address, or the /64 of an IPv6 address.
fn source_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a) & !u128::from(u64::MAX))),
    }
}

/// Who asks for a half-open SA.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Requester {
    pub(crate) ip: IpAddr,
    /// It showed a valid cookie.
    pub(crate) cookie: bool,
    /// Its address is a peer's configured address.
    pub(crate) known: bool,
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

    fn of_source(&self, ip: IpAddr) -> impl Iterator<Item = &Entry> {
        let source = source_of(ip);
        self.entries.iter().filter(move |e| e.source == source)
    }

    /// The half-open SAs from `ip`'s source.
    pub(crate) fn count_of(&self, ip: IpAddr) -> usize {
        self.of_source(ip).count()
    }

    /// Whether (and at whose cost) a request gets a half-open SA.
    pub(crate) fn admit(&self, who: Requester, per_source: usize, total: usize) -> Admission {
        if per_source == 0 || total == 0 {
            return Admission::Refuse;
        }
        let mut own = self.of_source(who.ip);
        if self.of_source(who.ip).count() >= per_source {
            return own
                .next()
                .map_or(Admission::Refuse, |e| Admission::Evict(e.spi));
        }
        if self.entries.len() < total {
            return Admission::Admit;
        }
        let oldest = |f: &dyn Fn(&Entry) -> bool| self.entries.iter().find(|e| f(e));
        let victim = if who.known {
            oldest(&|e| !e.known && !e.cookie).or_else(|| oldest(&|e| !e.known))
        } else if who.cookie {
            oldest(&|e| !e.known && !e.cookie)
        } else {
            return Admission::Refuse;
        };
        victim
            .or_else(|| own.next())
            .map_or(Admission::Refuse, |e| Admission::Evict(e.spi))
    }

    pub(crate) fn insert(&mut self, spi: IkeSpi, who: Requester) {
        self.entries.push_back(Entry {
            spi,
            source: source_of(who.ip),
            cookie: who.cookie,
            known: who.known,
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

    fn who(last: u8, cookie: bool, known: bool) -> Requester {
        Requester {
            ip: ip(last),
            cookie,
            known,
        }
    }

    #[test]
    fn a_source_at_its_bound_pushes_out_its_own_oldest() {
        let mut h = HalfOpen::default();
        h.insert(IkeSpi::new(1), who(1, false, false));
        h.insert(IkeSpi::new(2), who(2, false, false));
        h.insert(IkeSpi::new(3), who(1, false, false));
        assert_eq!(
            h.admit(who(1, false, false), 2, 100),
            Admission::Evict(IkeSpi::new(1))
        );
        assert_eq!(h.admit(who(2, false, false), 2, 100), Admission::Admit);
    }

    #[test]
    fn an_ipv6_source_is_its_64() {
        let mut h = HalfOpen::default();
        let a = |host: u16| Requester {
            ip: IpAddr::from([0x2001, 0xdb8, 0, 1, 0, 0, 0, host]),
            cookie: true,
            known: false,
        };
        h.insert(IkeSpi::new(1), a(1));
        h.insert(IkeSpi::new(2), a(2));
        assert_eq!(h.count_of(a(3).ip), 2);
        assert_eq!(h.admit(a(3), 2, 100), Admission::Evict(IkeSpi::new(1)));
    }

    #[test]
    fn a_full_table_takes_only_cookies_and_pushes_out_cookie_less_entries_first() {
        let mut h = HalfOpen::default();
        h.insert(IkeSpi::new(1), who(1, true, false));
        h.insert(IkeSpi::new(2), who(2, false, false));
        h.insert(IkeSpi::new(3), who(3, true, false));
        assert_eq!(h.admit(who(4, false, false), 8, 3), Admission::Refuse);
        assert_eq!(
            h.admit(who(4, true, false), 8, 3),
            Admission::Evict(IkeSpi::new(2))
        );
        assert!(h.remove(IkeSpi::new(2)));
        h.insert(IkeSpi::new(4), who(4, true, false));
        // Every entry proved its address: only the requester's own oldest may go.
        assert_eq!(
            h.admit(who(4, true, false), 8, 3),
            Admission::Evict(IkeSpi::new(4))
        );
        assert_eq!(h.admit(who(5, true, false), 8, 3), Admission::Refuse);
        assert!(!h.remove(IkeSpi::new(2)));
        assert_eq!(h.len(), 3);
    }

    #[test]
    fn a_table_full_of_cookies_still_takes_a_configured_peer() {
        let mut h = HalfOpen::default();
        h.insert(IkeSpi::new(1), who(9, false, true));
        h.insert(IkeSpi::new(2), who(1, true, false));
        h.insert(IkeSpi::new(3), who(2, true, false));
        assert_eq!(h.admit(who(3, true, false), 8, 3), Admission::Refuse);
        assert_eq!(
            h.admit(who(7, false, true), 8, 3),
            Admission::Evict(IkeSpi::new(2))
        );
    }
}
