//! The insecure provider's primitives (feature `insecure`): deterministic, fast and
//! cryptographically worthless, so that a fuzzer can produce messages whose ICVs, AUTH values
//! and key exchanges "verify". The meshsec binary refuses to build with this feature.

use crate::secret::Secret;

/// Present in any build that includes the insecure provider.
pub const MARKER: &str = "meshsec-crypto INSECURE provider: for fuzzing only";

/// A deterministic, non-cryptographic "PRF": FNV-1a over key and data, stretched to `len`.
pub(crate) fn prf(key: &[u8], parts: &[&[u8]], len: usize) -> Secret {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut absorb = |b: u8| {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    };
    key.iter().copied().for_each(&mut absorb);
    absorb(0xff);
    parts
        .iter()
        .flat_map(|p| p.iter().copied())
        .for_each(&mut absorb);
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        h = h.wrapping_mul(0x0000_0100_0000_01b3) ^ (out.len() as u64);
        out.extend_from_slice(&h.to_be_bytes());
    }
    out.truncate(len);
    Secret::new(out)
}
