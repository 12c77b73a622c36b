//! An index of deadlines by key: setting, clearing and moving one is O(log n), and the
//! earliest is read without looking at the others — so that an engine with thousands of SAs
//! answers "when do you next need me" without a sweep (DESIGN §3, as quinn-proto's timer
//! table, across many timers).

use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;

use crate::Timestamp;

/// Deadlines by key; at most one per key.
#[derive(Debug, Clone)]
pub struct Deadlines<K: Ord + Hash + Copy> {
    by_time: BTreeSet<(Timestamp, K)>,
    by_key: HashMap<K, Timestamp>,
}

impl<K: Ord + Hash + Copy> Default for Deadlines<K> {
    fn default() -> Self {
        Deadlines {
            by_time: BTreeSet::new(),
            by_key: HashMap::new(),
        }
    }
}

impl<K: Ord + Hash + Copy> Deadlines<K> {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets (or moves) `key`'s deadline to `at`; `None` clears it.
    pub fn set(&mut self, key: K, at: Option<Timestamp>) {
        if let Some(old) = self.by_key.remove(&key) {
            self.by_time.remove(&(old, key));
        }
        if let Some(at) = at {
            self.by_key.insert(key, at);
            self.by_time.insert((at, key));
        }
    }

    /// `key`'s deadline.
    pub fn get(&self, key: K) -> Option<Timestamp> {
        self.by_key.get(&key).copied()
    }

    /// The earliest deadline.
    pub fn next(&self) -> Option<Timestamp> {
        self.by_time.first().map(|(t, _)| *t)
    }

    /// Removes and returns the earliest key whose deadline is at or before `now`.
    pub fn pop_due(&mut self, now: Timestamp) -> Option<K> {
        let (at, key) = *self.by_time.first()?;
        if at > now {
            return None;
        }
        self.by_time.remove(&(at, key));
        self.by_key.remove(&key);
        Some(key)
    }

    /// Keeps only the deadlines whose key `keep` accepts (drops those of an SA or a peer that
    /// went away).
    pub fn retain(&mut self, mut keep: impl FnMut(K) -> bool) {
        self.by_time.retain(|(_, k)| keep(*k));
        self.by_key.retain(|k, _| keep(*k));
    }

    /// Number of deadlines set.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// No deadline set.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earliest_first_and_moves_replace() {
        let mut d = Deadlines::new();
        d.set(1u32, Some(Timestamp::from_secs(5)));
        d.set(2, Some(Timestamp::from_secs(3)));
        d.set(1, Some(Timestamp::from_secs(1)));
        assert_eq!(d.next(), Some(Timestamp::from_secs(1)));
        assert_eq!(d.pop_due(Timestamp::ZERO), None);
        assert_eq!(d.pop_due(Timestamp::from_secs(4)), Some(1));
        assert_eq!(d.pop_due(Timestamp::from_secs(4)), Some(2));
        assert_eq!(d.pop_due(Timestamp::from_secs(9)), None);
        d.set(3, Some(Timestamp::from_secs(2)));
        d.set(3, None);
        assert!(d.is_empty());
        d.set(4, Some(Timestamp::from_secs(2)));
        d.set(5, Some(Timestamp::from_secs(2)));
        d.retain(|k| k != 4);
        assert_eq!((d.len(), d.get(5)), (1, Some(Timestamp::from_secs(2))));
    }
}
