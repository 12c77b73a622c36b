//! The Security Policy Database for outbound traffic (RFC 4301 §4.4.1): the most specific
//! matching policy decides whether a packet is protected (and by which SA slot), passed in the
//! clear, or discarded.

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

/// The outbound SPD, kept sorted by specificity so that a lookup takes the first match.
#[derive(Debug, Default, Clone)]
pub struct Spd {
    /// (specificity, insertion id, policy): sorted; ties keep insertion order.
    entries: Vec<(Specificity, PolicyId, Policy)>,
    next_id: PolicyId,
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
        let key = policy.selector.specificity();
        let at = self
            .entries
            .partition_point(|(k, i, _)| (*k, *i) <= (key, id));
        self.entries.insert(at, (key, id, policy));
        id
    }

    /// Removes a policy; returns it if it existed.
    pub fn remove(&mut self, id: PolicyId) -> Option<Policy> {
        let at = self.entries.iter().position(|(_, i, _)| *i == id)?;
        Some(self.entries.remove(at).2)
    }

    /// Number of policies.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if there are no policies.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The most specific policy matching an outbound packet.
    pub fn lookup(&self, key: &PacketKey) -> Option<&Policy> {
        self.entries
            .iter()
            .map(|(_, _, p)| p)
            .find(|p| p.selector.matches_outbound(key))
    }
}
