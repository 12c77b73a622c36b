//! The Security Policy Database for outbound traffic (RFC 4301 §4.4.1): the most specific
//! matching policy decides whether a packet is protected (and by which SA slot), passed in the
//! clear, or discarded.

use std::net::IpAddr;

use crate::selector::{PacketKey, Selector, Specificity};

use meshsec_types::PeerId;

/// What to do with matching packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Encrypt with this peer's outbound SA (its CHILD SAs replace one another there, so
    /// rekeying never touches the policy).
    Protect(PeerId),
    /// Send in the clear.
    Bypass,
    /// Drop.
    Discard,
}

/// One policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Policy {
    /// Which packets.
    pub selector: Selector,
    /// What to do with them.
    pub action: Action,
}

/// A handle for removing a policy.
pub type PolicyId = u64;

/// The outbound SPD. A lookup takes the most specific matching policy; ties go to the one
/// added first. Policies whose remote side is a single address (a mesh has one per peer, or a
/// few with ports) are found by that address in a hash map; only the others (prefixes,
/// ranges) are scanned, in specificity order. A host policy is always more specific than a
/// ranged one (the remote range comes first in [`Specificity`]), so a match among the
/// first ends the lookup.
#[derive(Debug, Default, Clone)]
pub struct Spd {
    /// Remote side one address: by that address, each list sorted by (specificity, id).
    hosts: std::collections::HashMap<IpAddr, Vec<Entry>>,
    /// Remote side a prefix or range: sorted by (specificity, id).
    ranged: Vec<Entry>,
    len: usize,
    next_id: PolicyId,
}

/// (specificity, insertion id, policy).
type Entry = (Specificity, PolicyId, Policy);

/// Inserts into a sorted list after its equals (ties keep insertion order).
fn insert_sorted(list: &mut Vec<Entry>, e: Entry) {
    let at = list.partition_point(|(k, i, _)| (*k, *i) <= (e.0, e.1));
    list.insert(at, e);
}

impl Spd {
    /// An empty SPD (everything is discarded: no policy, no traffic).
    pub fn new() -> Spd {
        Spd::default()
    }

    /// Adds a policy; returns its handle.
    pub fn add(&mut self, policy: Policy) -> PolicyId {
        let id = self.next_id;
        self.next_id += 1;
        let e = (policy.selector.specificity(), id, policy);
        let r = policy.selector.remote;
        if r.start == r.end {
            insert_sorted(self.hosts.entry(r.start).or_default(), e);
        } else {
            insert_sorted(&mut self.ranged, e);
        }
        self.len += 1;
        id
    }

    /// Removes a policy; returns it if it existed.
    pub fn remove(&mut self, id: PolicyId) -> Option<Policy> {
        let from = |list: &mut Vec<Entry>| {
            let at = list.iter().position(|(_, i, _)| *i == id)?;
            Some(list.remove(at).2)
        };
        let mut found = from(&mut self.ranged);
        if found.is_none() {
            let mut emptied = None;
            for (addr, list) in &mut self.hosts {
                if let Some(p) = from(list) {
                    found = Some(p);
                    if list.is_empty() {
                        emptied = Some(*addr);
                    }
                    break;
                }
            }
            if let Some(a) = emptied {
                self.hosts.remove(&a);
            }
        }
        if found.is_some() {
            self.len -= 1;
        }
        found
    }

    /// Number of policies.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if there are no policies.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The most specific policy matching an outbound packet.
    pub fn lookup(&self, key: &PacketKey) -> Option<&Policy> {
        fn first<'a>(list: &'a [Entry], key: &PacketKey) -> Option<&'a Policy> {
            list.iter()
                .map(|(_, _, p)| p)
                .find(|p| p.selector.matches_outbound(key))
        }
        self.hosts
            .get(&key.dst)
            .and_then(|l| first(l, key))
            .or_else(|| first(&self.ranged, key))
    }
}
