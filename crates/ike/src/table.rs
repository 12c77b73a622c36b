//! The IKE SAs of the endpoint, by our SPI, with their deadlines indexed: every change to an
//! SA goes through `get_mut` (or the other mutating calls here), which marks it for a fresh
//! look at its timers; `next_deadline` recomputes only those, so asking "when is the next
//! deadline" costs O(changed SAs · log n), not a sweep of every SA and CHILD SA (DESIGN §3,
//! quinn-proto's timer table across many connections).

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};

use meshsec_types::{Deadlines, IkeSpi};

use crate::config::EndpointConfig;
use crate::sa::{IkeSa, Timestamp};

/// The IKE SAs, with an index of their earliest deadlines.
#[derive(Default)]
pub(crate) struct SaTable {
    sas: HashMap<IkeSpi, IkeSa>,
    /// SAs changed since their deadline was last computed.
    dirty: RefCell<HashSet<IkeSpi>>,
    /// Each SA's earliest deadline.
    index: RefCell<Deadlines<IkeSpi>>,
}

impl SaTable {
    pub(crate) fn get(&self, spi: &IkeSpi) -> Option<&IkeSa> {
        self.sas.get(spi)
    }

    /// The SA, to change it (its deadlines are looked at again).
    pub(crate) fn get_mut(&mut self, spi: &IkeSpi) -> Option<&mut IkeSa> {
        let sa = self.sas.get_mut(spi)?;
        self.dirty.get_mut().insert(*spi);
        Some(sa)
    }

    pub(crate) fn contains_key(&self, spi: &IkeSpi) -> bool {
        self.sas.contains_key(spi)
    }

    pub(crate) fn insert(&mut self, spi: IkeSpi, sa: IkeSa) {
        self.dirty.get_mut().insert(spi);
        self.sas.insert(spi, sa);
    }

    pub(crate) fn remove(&mut self, spi: &IkeSpi) -> Option<IkeSa> {
        self.dirty.get_mut().remove(spi);
        self.index.get_mut().set(*spi, None);
        self.sas.remove(spi)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&IkeSpi, &IkeSa)> {
        self.sas.iter()
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &IkeSa> {
        self.sas.values()
    }

    /// Every SA, to change them all (all their deadlines are looked at again).
    pub(crate) fn values_mut(&mut self) -> impl Iterator<Item = &mut IkeSa> {
        self.dirty.get_mut().extend(self.sas.keys().copied());
        self.sas.values_mut()
    }

    pub(crate) fn len(&self) -> usize {
        self.sas.len()
    }

    /// Recomputes the deadlines of the SAs changed since the last call.
    fn refresh(&self, config: &EndpointConfig) {
        let mut dirty = self.dirty.borrow_mut();
        // Draining walks the set's whole capacity, grown by the busiest moment: skip it when
        // there is nothing to do (the common case, polled after every input).
        if dirty.is_empty() {
            return;
        }
        let mut index = self.index.borrow_mut();
        for spi in dirty.drain() {
            let at = self.sas.get(&spi).and_then(|sa| sa.next_deadline(config));
            index.set(spi, at);
        }
    }

    /// The earliest deadline of any SA.
    pub(crate) fn next_deadline(&self, config: &EndpointConfig) -> Option<Timestamp> {
        self.refresh(config);
        self.index.borrow().next()
    }

    /// The SAs with a deadline at or before `now` (they are looked at again afterwards).
    pub(crate) fn due(&mut self, now: Timestamp, config: &EndpointConfig) -> Vec<IkeSpi> {
        self.refresh(config);
        let mut due = Vec::new();
        let index = self.index.get_mut();
        while let Some(spi) = index.pop_due(now) {
            due.push(spi);
        }
        self.dirty.get_mut().extend(due.iter().copied());
        due
    }
}
