//! ESP that arrives a moment before its SA.
//!
//! The responder of an IKE_AUTH (or CREATE_CHILD_SA) exchange installs the new CHILD SA
//! when it sends its answer, and some (strongSwan, when it answers a reauthentication) seal
//! with it at once: their first packets can overtake the answer, or reach our receive
//! threads before the IKE loop has installed the inbound SA. Dropping them would lose
//! packets at every such switch, so ESP with an unknown SPI is parked here for a short
//! while and opened when an SA with that SPI is installed. What nobody claims is reported
//! as unknown when it expires (the INVALID_SPI path of half-SA healing), a little later.
//!
//! Bounded: [`SLOTS`] packets of at most [`SLOT_LEN`] octets, each for at most [`MAX_AGE`];
//! the slots are allocated once, on first use. A flood of random SPIs only evicts parked
//! packets early (oldest first), it costs no memory.

use crate::lifetime::Timestamp;
use crate::sa::HEADROOM;
use std::collections::VecDeque;
use std::net::IpAddr;

/// Packets parked at most.
pub const SLOTS: usize = 128;
/// Largest ESP packet parked (larger ones are reported at once).
pub const SLOT_LEN: usize = 2048;
/// How long a packet waits for its SA.
pub use meshsec_types::timing::PARKED_ESP_WAIT as MAX_AGE;

/// One parked packet.
struct Parked {
    at: Timestamp,
    spi: u32,
    src: IpAddr,
    dst: IpAddr,
    len: usize,
    slot: usize,
}

/// The parking area.
#[derive(Default)]
pub(crate) struct ParkedEsp {
    /// Each holds a packet at `HEADROOM..`, with room in front as `open` may need it.
    buffers: Vec<Vec<u8>>,
    free: Vec<usize>,
    queue: VecDeque<Parked>,
}

/// A packet taken back out: its buffer (the packet at `HEADROOM..end`) and the addresses
/// it came with.
pub(crate) struct Unparked<'a> {
    pub(crate) buf: &'a mut [u8],
    pub(crate) end: usize,
    pub(crate) src: IpAddr,
    pub(crate) dst: IpAddr,
}

impl ParkedEsp {
    /// Parks `esp` (SPI `spi`, from `src` to `dst`); false if it is too large. When full,
    /// the oldest packet makes room (returned as unknown: its SPI and source).
    pub(crate) fn park(
        &mut self,
        now: Timestamp,
        spi: u32,
        (src, dst): (IpAddr, IpAddr),
        esp: &[u8],
    ) -> (bool, Option<(IpAddr, u32)>) {
        if esp.len() > SLOT_LEN {
            return (false, None);
        }
        if self.buffers.is_empty() {
            self.buffers = (0..SLOTS).map(|_| vec![0u8; HEADROOM + SLOT_LEN]).collect();
            self.free = (0..SLOTS).rev().collect();
        }
        let mut evicted = None;
        if self.free.is_empty()
            && let Some(old) = self.queue.pop_front()
        {
            self.free.push(old.slot);
            evicted = Some((old.src, old.spi));
        }
        let Some(slot) = self.free.pop() else {
            return (false, evicted);
        };
        let Some(dst_buf) = self
            .buffers
            .get_mut(slot)
            .and_then(|b| b.get_mut(HEADROOM..HEADROOM + esp.len()))
        else {
            self.free.push(slot);
            return (false, evicted);
        };
        dst_buf.copy_from_slice(esp);
        self.queue.push_back(Parked {
            at: now,
            spi,
            src,
            dst,
            len: esp.len(),
            slot,
        });
        (true, evicted)
    }

    /// Calls `f` with every packet parked for `spi`, oldest first, and frees them.
    pub(crate) fn take(&mut self, spi: u32, mut f: impl FnMut(Unparked<'_>)) {
        let mut i = 0;
        while i < self.queue.len() {
            if self.queue.get(i).is_some_and(|p| p.spi == spi)
                && let Some(p) = self.queue.remove(i)
            {
                if let Some(buf) = self.buffers.get_mut(p.slot) {
                    f(Unparked {
                        buf: buf.as_mut_slice(),
                        end: HEADROOM + p.len,
                        src: p.src,
                        dst: p.dst,
                    });
                }
                self.free.push(p.slot);
            } else {
                i += 1;
            }
        }
    }

    /// Drops packets older than [`MAX_AGE`]; returns their (source, SPI), once per pair.
    pub(crate) fn expire(&mut self, now: Timestamp) -> Vec<(IpAddr, u32)> {
        let mut out: Vec<(IpAddr, u32)> = Vec::new();
        while let Some(p) = self.queue.front() {
            if now.duration_since(p.at) < MAX_AGE {
                break;
            }
            if let Some(p) = self.queue.pop_front() {
                self.free.push(p.slot);
                if !out.contains(&(p.src, p.spi)) {
                    out.push((p.src, p.spi));
                }
            }
        }
        out
    }

    /// When the oldest parked packet expires.
    pub(crate) fn next_expiry(&self) -> Option<Timestamp> {
        self.queue.front().map(|p| p.at + MAX_AGE)
    }

    /// Packets parked now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn addrs() -> (IpAddr, IpAddr) {
        ("192.0.2.2".parse().unwrap(), "192.0.2.1".parse().unwrap())
    }

    #[test]
    fn parked_packets_come_back_by_spi_in_order_and_expire_otherwise() {
        let mut p = ParkedEsp::default();
        let t0 = Timestamp::ZERO;
        assert!(p.park(t0, 7, addrs(), &[1, 2, 3]).0);
        assert!(p.park(t0, 8, addrs(), &[9]).0);
        assert!(p.park(t0, 7, addrs(), &[4, 5]).0);
        let mut got = Vec::new();
        p.take(7, |u| got.push(u.buf[HEADROOM..u.end].to_vec()));
        assert_eq!(got, vec![vec![1, 2, 3], vec![4, 5]]);
        assert_eq!(p.len(), 1);
        assert!(p.expire(t0 + Duration::from_millis(100)).is_empty());
        assert_eq!(p.expire(t0 + MAX_AGE), vec![(addrs().0, 8)]);
        assert_eq!(p.len(), 0);
    }

    #[test]
    fn a_flood_evicts_the_oldest_and_oversized_packets_are_not_parked() {
        let mut p = ParkedEsp::default();
        let t0 = Timestamp::ZERO;
        for spi in 0..SLOTS as u32 {
            assert_eq!(p.park(t0, spi, addrs(), &[0; 64]), (true, None));
        }
        assert_eq!(
            p.park(t0, 999, addrs(), &[0; 64]),
            (true, Some((addrs().0, 0)))
        );
        assert_eq!(p.len(), SLOTS);
        assert_eq!(p.park(t0, 1000, addrs(), &[0; SLOT_LEN + 1]), (false, None));
    }
}
