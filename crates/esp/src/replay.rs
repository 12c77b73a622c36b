//! The anti-replay window (RFC 4303 §3.4.3) with Extended Sequence Number inference
//! (RFC 4303 Appendix A).
//!
//! `check` runs before decryption and changes nothing; `commit` runs only after the ICV
//! verified, so forged packets cannot move the window. The bitmap is a ring of 64-bit words
//! indexed by absolute block number (`seq / 64`), one word larger than the window: entering a
//! new block clears its word, which then only held numbers older than the window.

/// Smallest and default window size, in packets.
pub const DEFAULT_WINDOW: u32 = 1024;
/// Largest window size we accept.
pub const MAX_WINDOW: u32 = 65536;

const WORD: u64 = 64;

/// What `check` found wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayError {
    /// Already received.
    Replay,
    /// Left of the window.
    TooOld,
}

/// One inbound SA's replay state.
#[derive(Debug, Clone)]
pub struct ReplayWindow {
    /// Highest authenticated sequence number so far (0: none yet).
    top: u64,
    /// Window size in packets (a multiple of 64).
    size: u64,
    bits: Vec<u64>,
    esn: bool,
}

impl ReplayWindow {
    /// A window of `size` packets (rounded up to a multiple of 64, clamped to
    /// `64..=MAX_WINDOW`), with or without Extended Sequence Numbers.
    pub fn new(size: u32, esn: bool) -> ReplayWindow {
        let size = u64::from(size.clamp(64, MAX_WINDOW)).div_ceil(WORD) * WORD;
        ReplayWindow {
            top: 0,
            size,
            // One spare word, so that clearing a newly entered block never erases a number
            // that is still inside the window.
            bits: vec![0; (size / WORD) as usize + 1],
            esn,
        }
    }

    /// Window size in packets.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Highest sequence number committed.
    pub fn top(&self) -> u64 {
        self.top
    }

    /// The full 64-bit sequence number for the 32 low bits on the wire (RFC 4303 A2.2);
    /// without ESN the high half is always 0.
    pub fn infer(&self, low: u32) -> u64 {
        if !self.esn {
            return u64::from(low);
        }
        let w = self.size;
        let th = self.top >> 32;
        let tl = self.top & 0xffff_ffff;
        let seql = u64::from(low);
        let seqh = if tl >= w - 1 {
            // The window lies within one 2^32 subspace.
            if seql >= tl - (w - 1) { th } else { th + 1 }
        } else {
            // The window spans two subspaces.
            // In the first subspace there is no previous one: everything is "this" subspace.
            let bottom = tl.wrapping_sub(w - 1) & 0xffff_ffff;
            if seql >= bottom && th > 0 { th - 1 } else { th }
        };
        (seqh << 32) | seql
    }

    fn bit(&self, seq: u64) -> (usize, u64) {
        let words = self.bits.len() as u64;
        (((seq / WORD) % words) as usize, 1u64 << (seq % WORD))
    }

    /// Would `seq` be accepted? Changes nothing.
    pub fn check(&self, seq: u64) -> Result<(), ReplayError> {
        if seq > self.top {
            return Ok(());
        }
        if seq == 0 || seq + self.size <= self.top {
            return Err(ReplayError::TooOld);
        }
        let (word, mask) = self.bit(seq);
        match self.bits.get(word) {
            Some(w) if w & mask != 0 => Err(ReplayError::Replay),
            _ => Ok(()),
        }
    }

    /// Records an authenticated `seq` (which passed `check`).
    pub fn commit(&mut self, seq: u64) {
        if seq > self.top {
            let words = self.bits.len() as u64;
            let (old_block, new_block) = (self.top / WORD, seq / WORD);
            if new_block - old_block >= words {
                self.bits.fill(0);
            } else {
                for block in old_block + 1..=new_block {
                    if let Some(x) = self.bits.get_mut((block % words) as usize) {
                        *x = 0;
                    }
                }
            }
            self.top = seq;
        }
        let (word, mask) = self.bit(seq);
        if let Some(w) = self.bits.get_mut(word) {
            *w |= mask;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_window_behaviour() {
        let mut w = ReplayWindow::new(64, false);
        assert_eq!(w.check(0), Err(ReplayError::TooOld));
        for s in [1, 2, 5, 3] {
            w.check(s).unwrap();
            w.commit(s);
        }
        assert_eq!(w.check(3), Err(ReplayError::Replay));
        w.check(4).unwrap();
        w.commit(200);
        assert_eq!(w.check(136), Err(ReplayError::TooOld));
        w.check(137).unwrap();
        assert_eq!(w.check(200), Err(ReplayError::Replay));
    }

    /// Regression (found by the differential test): a small advance within one word must not
    /// leave bits of numbers that fell out of the window, and clearing a newly entered word
    /// must not forget numbers still inside it.
    #[test]
    fn advancing_clears_exactly_what_left_the_window() {
        let mut w = ReplayWindow::new(64, false);
        for s in 1..=64 {
            w.commit(s);
        }
        w.commit(70);
        for s in 65..70 {
            assert_eq!(w.check(s), Ok(()), "{s} was never received");
        }
        for s in 7..=64 {
            assert_eq!(w.check(s), Err(ReplayError::Replay), "{s} was received");
        }
        assert_eq!(w.check(6), Err(ReplayError::TooOld));
        // Entering a new block keeps the in-window numbers of the previous lap.
        let mut w = ReplayWindow::new(128, false);
        for s in 100..=128 {
            w.commit(s);
        }
        w.commit(200);
        for s in [100, 128] {
            assert_eq!(w.check(s), Err(ReplayError::Replay), "{s}");
        }
        assert_eq!(w.check(150), Ok(()));
    }

    #[test]
    fn esn_inference_across_the_2_32_boundary() {
        let mut w = ReplayWindow::new(1024, true);
        let top = (1u64 << 32) + 10; // just past the boundary
        w.commit(top);
        assert_eq!(w.infer(5), (1 << 32) + 5);
        assert_eq!(w.infer(0xffff_fff0), 0xffff_fff0); // still in the window, previous subspace
        assert_eq!(w.infer(2000), (1 << 32) + 2000);
        let mut w = ReplayWindow::new(1024, true);
        w.commit(0xffff_ff00);
        assert_eq!(w.infer(0xffff_ff80), 0xffff_ff80);
        assert_eq!(w.infer(3), (1 << 32) + 3); // wrapped forward
    }
}
