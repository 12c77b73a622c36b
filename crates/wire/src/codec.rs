//! A bounds-checked reader over borrowed bytes and a writer that back-patches length fields.
//!
//! Every parser in this crate reads through [`Reader`], which never indexes out of range: a short
//! input becomes [`Error::Truncated`] naming the structure being read. Emitters write through
//! [`Writer`]; a length field is reserved with [`Writer::reserve_u16`] and filled once the
//! content is known with [`Writer::patch_len_u16`], so no emitter computes lengths by hand.

use crate::error::{Error, Result};

/// A cursor over the bytes of one structure (`what` names it in errors).
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    rest: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// Reads `bytes` as the structure `what`.
    pub fn new(bytes: &'a [u8], what: &'static str) -> Self {
        Reader { rest: bytes, what }
    }

    /// The unread bytes.
    pub fn rest(&self) -> &'a [u8] {
        self.rest
    }

    /// Number of unread bytes.
    pub fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// True once every byte was read.
    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// Takes the next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.rest.len() {
            return Err(Error::Truncated {
                what: self.what,
                needed: n,
                available: self.rest.len(),
            });
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    /// Takes every remaining byte.
    pub fn take_rest(&mut self) -> &'a [u8] {
        core::mem::take(&mut self.rest)
    }

    /// Reads `N` bytes into an array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// Reads one octet.
    pub fn u8(&mut self) -> Result<u8> {
        Ok(u8::from_be_bytes(self.array()?))
    }

    /// Reads a big-endian 16-bit value.
    pub fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    /// Reads a big-endian 32-bit value.
    pub fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    /// Reads a big-endian 64-bit value.
    pub fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// Takes one whole structure whose 16-bit length field, counting the whole structure, sits
    /// `len_at` octets into it (a payload, proposal, transform or selector). A length below
    /// `min` is a `BadLength`; one beyond the input is `Truncated`, both naming `what`.
    pub fn take_length_prefixed(
        &mut self,
        len_at: usize,
        min: usize,
        what: &'static str,
    ) -> Result<&'a [u8]> {
        let truncated = |available| Error::Truncated {
            what,
            needed: len_at + 2,
            available,
        };
        let field: [u8; 2] = self
            .rest
            .get(len_at..len_at + 2)
            .and_then(|f| f.try_into().ok())
            .ok_or(truncated(self.rest.len()))?;
        let len = usize::from(u16::from_be_bytes(field));
        if len < min {
            return Err(Error::BadLength {
                what,
                problem: "length field smaller than the fixed header",
            });
        }
        if len > self.rest.len() {
            return Err(Error::Truncated {
                what,
                needed: len,
                available: self.rest.len(),
            });
        }
        self.take(len)
    }

    /// Fails with a `BadLength` naming this structure unless every byte was consumed.
    pub fn expect_end(&self, problem: &'static str) -> Result<()> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(Error::BadLength {
                what: self.what,
                problem,
            })
        }
    }
}

/// Appends big-endian fields to a growable buffer and back-patches length fields.
#[derive(Debug)]
pub struct Writer<'b> {
    buf: &'b mut Vec<u8>,
}

/// A reserved length field: where it is and where the counted region starts.
#[derive(Debug, Clone, Copy)]
#[must_use = "a reserved length must be patched"]
pub struct LenMark {
    field_at: usize,
    counted_from: usize,
    what: &'static str,
}

impl<'b> Writer<'b> {
    /// Writes at the end of `buf` (existing content is kept).
    pub fn new(buf: &'b mut Vec<u8>) -> Self {
        Writer { buf }
    }

    /// Current length of the underlying buffer.
    pub fn position(&self) -> usize {
        self.buf.len()
    }

    /// Appends raw bytes.
    pub fn bytes(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }

    /// Appends one octet.
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    /// Appends a big-endian 16-bit value.
    pub fn u16(&mut self, v: u16) {
        self.bytes(&v.to_be_bytes());
    }

    /// Appends a big-endian 32-bit value.
    pub fn u32(&mut self, v: u32) {
        self.bytes(&v.to_be_bytes());
    }

    /// Appends a big-endian 64-bit value.
    pub fn u64(&mut self, v: u64) {
        self.bytes(&v.to_be_bytes());
    }

    /// Reserves a 16-bit length field here; the counted region starts at `counted_from`
    /// (usually the start of the enclosing structure's header).
    pub fn reserve_u16(&mut self, counted_from: usize, what: &'static str) -> LenMark {
        let field_at = self.position();
        self.u16(0);
        LenMark {
            field_at,
            counted_from,
            what,
        }
    }

    /// Reserves a 32-bit length field (the IKE header's).
    pub fn reserve_u32(&mut self, counted_from: usize, what: &'static str) -> LenMark {
        let field_at = self.position();
        self.u32(0);
        LenMark {
            field_at,
            counted_from,
            what,
        }
    }

    /// Writes the length of everything from the mark's start to the current end into a 16-bit
    /// field reserved with [`Writer::reserve_u16`].
    pub fn patch_len_u16(&mut self, mark: LenMark) -> Result<()> {
        let len = self.buf.len().saturating_sub(mark.counted_from);
        let len = u16::try_from(len).map_err(|_| Error::TooLong { what: mark.what })?;
        self.patch(mark, &len.to_be_bytes())
    }

    /// Like [`Writer::patch_len_u16`] for a 32-bit field.
    pub fn patch_len_u32(&mut self, mark: LenMark) -> Result<()> {
        let len = self.buf.len().saturating_sub(mark.counted_from);
        let len = u32::try_from(len).map_err(|_| Error::TooLong { what: mark.what })?;
        self.patch(mark, &len.to_be_bytes())
    }

    fn patch(&mut self, mark: LenMark, value: &[u8]) -> Result<()> {
        let end = mark.field_at + value.len();
        match self.buf.get_mut(mark.field_at..end) {
            Some(field) => {
                field.copy_from_slice(value);
                Ok(())
            }
            None => Err(Error::TooLong { what: mark.what }),
        }
    }
}

/// Converts a count to the width of its wire field, or says which field would overflow.
pub(crate) fn count_u8(n: usize, what: &'static str) -> Result<u8> {
    u8::try_from(n).map_err(|_| Error::TooLong { what })
}

/// Like [`count_u8`] for 16-bit fields.
pub(crate) fn count_u16(n: usize, what: &'static str) -> Result<u16> {
    u16::try_from(n).map_err(|_| Error::TooLong { what })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_reports_what_was_truncated() {
        let mut r = Reader::new(&[1, 2, 3], "KE payload");
        assert_eq!(r.u16().unwrap(), 0x0102);
        assert_eq!(
            r.u16(),
            Err(Error::Truncated {
                what: "KE payload",
                needed: 2,
                available: 1
            })
        );
        // A failed read consumes nothing.
        assert_eq!(r.u8().unwrap(), 3);
        assert!(r.is_empty());
    }

    #[test]
    fn writer_back_patches_lengths() {
        let mut buf = vec![0xaa];
        let mut w = Writer::new(&mut buf);
        let start = w.position();
        let mark = w.reserve_u16(start, "test");
        w.bytes(&[1, 2, 3]);
        w.patch_len_u16(mark).unwrap();
        assert_eq!(buf, [0xaa, 0x00, 0x05, 1, 2, 3]);
    }

    #[test]
    fn writer_refuses_lengths_that_do_not_fit() {
        let mut buf = Vec::new();
        let mut w = Writer::new(&mut buf);
        let mark = w.reserve_u16(0, "huge");
        w.bytes(&vec![0; 70_000]);
        assert_eq!(w.patch_len_u16(mark), Err(Error::TooLong { what: "huge" }));
    }
}
