//! The CHILD SAs an IKE SA carries: recorded when created, forgotten when deleted, and their
//! lifetimes (RFC 7296 §2.8) — rekeyed at 80-90 % of their lifetime (at random, so that
//! peers do not rekey in lockstep), deleted when it ends without a successor.

use std::collections::HashSet;
use std::time::Duration;

use meshsec_types::{IkeSpi, InboundSpi, OutboundSpi};

use crate::endpoint::Endpoint;
use crate::event::{ChildSa, Event};
use crate::sa::{Child, ChildState, State, Task, Timestamp};

/// The peer's ESP SPI from its proposal: 4 octets, and not one of the values RFC 4303 §2.1
/// reserves (0 for local use, 1-255 for IANA). What else could we put in our packets' SPI
/// field for it?
pub(crate) fn esp_spi(spi: &[u8]) -> Option<OutboundSpi> {
    let v = u32::from_be_bytes(<[u8; 4]>::try_from(spi).ok()?);
    (v >= 256).then(|| OutboundSpi::new(v))
}

/// Why [`esp_spi`] refused the peer's SPI.
pub(crate) fn bad_esp_spi(spi: &[u8]) -> crate::event::Failure {
    crate::event::Failure::Protocol {
        detail: format!(
            "the peer's ESP SPI {} is unusable: 4 octets, at least 256 (RFC 4303 §2.1)",
            hex_octets(spi)
        ),
    }
}

fn hex_octets(b: &[u8]) -> String {
    b.iter().take(16).map(|x| format!("{x:02x}")).collect()
}

/// The soft (rekey) and hard times of a CHILD SA created `now` with `lifetime`: the rekey
/// falls between 80 % and 90 % of it, at random (`jitter` in 0..=255).
pub(crate) fn child_times(
    now: Timestamp,
    lifetime: Option<Duration>,
    jitter: u8,
) -> (Option<Timestamp>, Option<Timestamp>) {
    match lifetime {
        None => (None, None),
        Some(l) => {
            let soft = l.mul_f64(0.8 + 0.1 * f64::from(jitter) / 255.0);
            (Some(now + soft), Some(now + l))
        }
    }
}

impl Endpoint {
    /// Adds a CHILD SA to IKE SA `spi`'s list, with its lifetimes.
    pub(crate) fn record_child(
        &mut self,
        now: Timestamp,
        spi: IkeSpi,
        child: &ChildSa,
        lifetime: Option<Duration>,
    ) {
        let jitter = self
            .random_bytes(1)
            .ok()
            .and_then(|b| b.first().copied())
            .unwrap_or(128);
        let (rekey_at, expire_at) = child_times(now, lifetime, jitter);
        // A CHILD SA completed on an IKE SA that was rekeyed meanwhile lives on its successor.
        let spi = self
            .sas
            .get(&spi)
            .and_then(|sa| sa.successor())
            .unwrap_or(spi);
        if let Some(sa) = self.sas.get_mut(&spi) {
            sa.children.push(Child {
                inbound: child.inbound.spi,
                outbound: child.outbound.spi,
                mode: child.mode,
                local_ts: child.local_ts.clone(),
                remote_ts: child.remote_ts.clone(),
                rekey_at,
                expire_at,
                state: ChildState::Installed,
            });
        }
    }

    /// Removes a CHILD SA from IKE SA `spi` without telling the peer, and tells the data
    /// plane.
    pub(crate) fn forget_child(&mut self, spi: IkeSpi, inbound: InboundSpi) {
        // After an IKE SA rekey the CHILD SA lives on the successor.
        let spi = match self.sas.get(&spi) {
            Some(sa) if !sa.children.iter().any(|c| c.inbound == inbound) => {
                sa.successor().unwrap_or(spi)
            }
            _ => spi,
        };
        let Some(sa) = self.sas.get_mut(&spi) else {
            return;
        };
        let Some(i) = sa.children.iter().position(|c| c.inbound == inbound) else {
            return;
        };
        let c = sa.children.remove(i);
        let Some(peer) = sa.peer else { return };
        self.event(Event::DeleteChildSa {
            peer,
            inbound_spi: c.inbound,
            outbound_spi: c.outbound,
        });
    }

    /// Lifetimes of the CHILD SAs of every established IKE SA: rekeys due, and SAs past
    /// their hard lifetime (rekeying failed) deleted — replaced if it was the last one.
    pub(crate) fn child_timers(&mut self, now: Timestamp, due: &HashSet<IkeSpi>) {
        let mut work = Vec::new();
        for (spi, sa) in self.sas.iter().filter(|(s, _)| due.contains(s)) {
            if sa.state != State::Established {
                continue;
            }
            for c in &sa.children {
                if c.expire_at.is_some_and(|t| t <= now) && c.state != ChildState::Deleting {
                    work.push((*spi, Task::DeleteChild(c.inbound)));
                } else if c.rekey_at.is_some_and(|t| t <= now)
                    && c.state == ChildState::Installed
                    && !sa.is_replaced()
                {
                    // (The CHILD SAs of a reauthenticated IKE SA go with it: not rekeyed.)
                    work.push((*spi, Task::RekeyChild(c.inbound)));
                }
            }
        }
        for (spi, task) in work {
            if let Some(sa) = self.sas.get_mut(&spi) {
                if let Task::RekeyChild(i) = task
                    && let Some(c) = sa.children.iter_mut().find(|c| c.inbound == i)
                {
                    c.rekey_at = None; // queued once
                }
                if let Task::DeleteChild(i) = task {
                    if let Some(c) = sa.children.iter_mut().find(|c| c.inbound == i) {
                        c.expire_at = None;
                    }
                    let last = sa
                        .children
                        .iter()
                        .filter(|c| c.state == ChildState::Installed)
                        .count()
                        <= 1;
                    if last {
                        sa.tasks.push_back(Task::CreateChild);
                    }
                }
                if !sa.tasks.contains(&task) {
                    sa.tasks.push_back(task);
                }
            }
        }
        for spi in due {
            self.run_tasks(now, *spi);
        }
    }
}

#[cfg(test)]
mod spi_tests {
    use super::*;

    #[test]
    fn reserved_and_malformed_esp_spis_are_refused() {
        for bad in [
            &[0u8, 0, 0, 0][..],
            &[0, 0, 0, 255],
            &[0, 0, 1],
            &[0, 0, 1, 0, 0],
        ] {
            assert_eq!(esp_spi(bad), None, "{bad:?}");
            assert!(bad_esp_spi(bad).to_string().contains("RFC 4303 §2.1"));
        }
        assert_eq!(esp_spi(&[0, 0, 1, 0]), Some(OutboundSpi::new(256)));
        assert_eq!(
            esp_spi(&[0xc0, 0x01, 0xd0, 0x0d]),
            Some(OutboundSpi::new(0xc001_d00d))
        );
    }
}
