//! Traffic selector narrowing (RFC 7296 §2.9): the responder answers with the part of the
//! initiator's selectors its policy allows; the initiator accepts a result that lies within
//! what it proposed. When nothing is left, [`TsUnacceptable`] says what was proposed and what
//! is allowed.

use core::fmt;
use std::net::IpAddr;

use meshsec_wire::payload::{AddrSelector, TrafficSelector};

fn as_u128(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v) => u128::from(u32::from(v)),
        IpAddr::V6(v) => u128::from(v),
    }
}

fn from_u128(v: u128, like: IpAddr) -> IpAddr {
    match like {
        IpAddr::V4(_) => IpAddr::V4(u32::try_from(v).unwrap_or(u32::MAX).into()),
        IpAddr::V6(_) => IpAddr::V6(v.into()),
    }
}

/// The selectors common to `a` and `b`, if any (same family, overlapping addresses, ports
/// and protocol; protocol 0 means any).
pub fn intersect(a: &AddrSelector, b: &AddrSelector) -> Option<AddrSelector> {
    if a.start.is_ipv4() != b.start.is_ipv4() {
        return None;
    }
    let ip_protocol = match (a.ip_protocol, b.ip_protocol) {
        (0, p) | (p, 0) => p,
        (p, q) if p == q => p,
        _ => return None,
    };
    let start = as_u128(a.start).max(as_u128(b.start));
    let end = as_u128(a.end).min(as_u128(b.end));
    let start_port = a.start_port.max(b.start_port);
    let end_port = a.end_port.min(b.end_port);
    if start > end || start_port > end_port {
        return None;
    }
    Some(AddrSelector {
        ip_protocol,
        start_port,
        end_port,
        start: from_u128(start, a.start),
        end: from_u128(end, a.start),
    })
}

/// True if `inner` lies entirely within `outer`.
pub fn contains(outer: &AddrSelector, inner: &AddrSelector) -> bool {
    intersect(outer, inner).as_ref() == Some(inner)
}

/// The address selectors of a TS payload (other selector types are ignored: we negotiate
/// only address ranges).
pub fn addr_selectors<'a>(ts: &'a [TrafficSelector<'_>]) -> impl Iterator<Item = &'a AddrSelector> {
    ts.iter().filter_map(|t| match t {
        TrafficSelector::Addr(a) => Some(a),
        TrafficSelector::Other { .. } => None,
    })
}

/// The responder's narrowing of one side: every non-empty intersection of a proposed
/// selector with an allowed one, in the proposer's order, without duplicates.
pub fn narrow(proposed: &[AddrSelector], allowed: &[AddrSelector]) -> Vec<AddrSelector> {
    let mut out: Vec<AddrSelector> = Vec::new();
    for p in proposed {
        for a in allowed {
            if let Some(x) = intersect(p, a)
                && !out.contains(&x)
            {
                out.push(x);
            }
        }
    }
    out
}

/// The initiator's check of the responder's answer: each returned selector lies within one
/// it proposed.
pub fn within(result: &[AddrSelector], proposed: &[AddrSelector]) -> bool {
    !result.is_empty()
        && result
            .iter()
            .all(|r| proposed.iter().any(|p| contains(p, r)))
}

/// A selector the way operators write it: `10.1.0.0/24`, `10.1.0.5-10.1.0.9`, with
/// `[proto/port]` when not "any".
pub fn describe(s: &AddrSelector) -> String {
    let (start, end) = (as_u128(s.start), as_u128(s.end));
    let width = if s.start.is_ipv4() { 32 } else { 128 };
    let span = end.wrapping_sub(start).wrapping_add(1);
    let addr = if span.is_power_of_two() && start % span == 0 {
        format!("{}/{}", s.start, width - span.trailing_zeros())
    } else if start == 0 && end == u128::MAX >> (128 - width) {
        format!("{}/0", s.start)
    } else if start == end {
        s.start.to_string()
    } else {
        format!("{}-{}", s.start, s.end)
    };
    let proto = match s.ip_protocol {
        0 => None,
        1 => Some("icmp".to_string()),
        6 => Some("tcp".to_string()),
        17 => Some("udp".to_string()),
        58 => Some("ipv6-icmp".to_string()),
        p => Some(p.to_string()),
    };
    let ports = match (s.start_port, s.end_port) {
        (0, u16::MAX) => None,
        (a, b) if a == b => Some(a.to_string()),
        (a, b) => Some(format!("{a}-{b}")),
    };
    match (proto, ports) {
        (None, None) => addr,
        (Some(p), None) => format!("{addr}[{p}]"),
        (p, Some(ports)) => format!("{addr}[{}/{ports}]", p.unwrap_or_else(|| "any".into())),
    }
}

fn list(s: &[AddrSelector]) -> String {
    s.iter().map(describe).collect::<Vec<_>>().join(", ")
}

/// No overlap between what the initiator proposed and what the responder allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TsUnacceptable {
    /// Proposed TSi (the initiator's side).
    pub proposed_i: Vec<AddrSelector>,
    /// Proposed TSr (the responder's side).
    pub proposed_r: Vec<AddrSelector>,
    /// What the responder allows for the initiator's side.
    pub allowed_i: Vec<AddrSelector>,
    /// What the responder allows for its own side.
    pub allowed_r: Vec<AddrSelector>,
}

impl fmt::Display for TsUnacceptable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "TS_UNACCEPTABLE: proposed TSi [{}] TSr [{}]; allowed TSi [{}] TSr [{}]",
            list(&self.proposed_i),
            list(&self.proposed_r),
            list(&self.allowed_i),
            list(&self.allowed_r)
        )
    }
}

/// The responder's decision for one CHILD SA: narrowed (TSi, TSr), or why not.
pub fn respond(
    proposed_i: &[AddrSelector],
    proposed_r: &[AddrSelector],
    allowed_i: &[AddrSelector],
    allowed_r: &[AddrSelector],
) -> Result<(Vec<AddrSelector>, Vec<AddrSelector>), TsUnacceptable> {
    let i = narrow(proposed_i, allowed_i);
    let r = narrow(proposed_r, allowed_r);
    if i.is_empty() || r.is_empty() {
        return Err(TsUnacceptable {
            proposed_i: proposed_i.to_vec(),
            proposed_r: proposed_r.to_vec(),
            allowed_i: allowed_i.to_vec(),
            allowed_r: allowed_r.to_vec(),
        });
    }
    Ok((i, r))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sel(s: &str) -> AddrSelector {
        let (a, len) = s.split_once('/').unwrap();
        let a: IpAddr = a.parse().unwrap();
        let len: u32 = len.parse().unwrap();
        let width = if a.is_ipv4() { 32 } else { 128 };
        let size = if len == 0 {
            u128::MAX >> (128 - width)
        } else {
            (1u128 << (width - len)) - 1
        };
        let start = as_u128(a) & !size;
        AddrSelector::range(from_u128(start, a), from_u128(start + size, a))
    }

    #[test]
    fn responder_narrows_to_its_policy() {
        // The initiator asks for 10.0.0.0/8 <-> 0.0.0.0/0; policy allows 10.1.0.0/24 <-> 10.2.0.0/24.
        let (i, r) = respond(
            &[sel("10.0.0.0/8")],
            &[sel("0.0.0.0/0")],
            &[sel("10.1.0.0/24")],
            &[sel("10.2.0.0/24")],
        )
        .unwrap();
        assert_eq!(
            (describe(&i[0]), describe(&r[0])),
            ("10.1.0.0/24".into(), "10.2.0.0/24".into())
        );
        assert!(within(&i, &[sel("10.0.0.0/8")]));
        assert!(!within(&[sel("11.0.0.0/8")], &[sel("10.0.0.0/8")]));
        // Ports and protocol narrow too.
        let mut web = sel("10.2.0.0/24");
        web.ip_protocol = 6;
        web.start_port = 443;
        web.end_port = 443;
        let x = intersect(&sel("10.2.0.0/16"), &web).unwrap();
        assert_eq!(describe(&x), "10.2.0.0/24[tcp/443]");
        let mut udp = web;
        udp.ip_protocol = 17;
        assert_eq!(intersect(&web, &udp), None);
    }

    #[test]
    fn ts_unacceptable_explains_both_sides() {
        let e = respond(
            &[sel("10.9.0.0/24")],
            &[sel("10.2.0.0/24")],
            &[sel("10.1.0.0/24")],
            &[sel("10.2.0.0/24")],
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "TS_UNACCEPTABLE: proposed TSi [10.9.0.0/24] TSr [10.2.0.0/24]; allowed TSi [10.1.0.0/24] TSr [10.2.0.0/24]"
        );
        // IPv4 never meets IPv6.
        assert!(
            respond(
                &[sel("2001:db8::/32")],
                &[sel("10.2.0.0/24")],
                &[sel("0.0.0.0/0")],
                &[sel("0.0.0.0/0")]
            )
            .is_err()
        );
        assert_eq!(describe(&sel("2001:db8::/32")), "2001:db8::/32");
        assert_eq!(describe(&sel("10.1.0.5/32")), "10.1.0.5/32");
    }

    fn v4sel() -> impl Strategy<Value = AddrSelector> {
        (
            any::<u32>(),
            any::<u32>(),
            prop_oneof![Just(0u8), Just(6), Just(17)],
            any::<u16>(),
            any::<u16>(),
        )
            .prop_map(|(a, b, p, x, y)| AddrSelector {
                ip_protocol: p,
                start_port: x.min(y),
                end_port: x.max(y),
                start: IpAddr::V4(a.min(b).into()),
                end: IpAddr::V4(a.max(b).into()),
            })
    }

    proptest! {
        /// The intersection is contained in both and is the largest such selector for the
        /// sampled points.
        #[test]
        fn intersection_is_within_both(a in v4sel(), b in v4sel(), probe in any::<u32>(), port in any::<u16>()) {
            let x = intersect(&a, &b);
            let hit = |s: &AddrSelector| {
                let v = u128::from(probe);
                as_u128(s.start) <= v && v <= as_u128(s.end) && s.start_port <= port && port <= s.end_port
            };
            match x {
                Some(x) => {
                    prop_assert!(contains(&a, &x) && contains(&b, &x));
                    prop_assert_eq!(hit(&a) && hit(&b), hit(&x));
                }
                None => prop_assert!(!(hit(&a) && hit(&b)) || (a.ip_protocol != 0 && b.ip_protocol != 0 && a.ip_protocol != b.ip_protocol)),
            }
        }
    }
}
