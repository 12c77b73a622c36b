//! Fuzz target: a peer's certificate chain as CERT payloads deliver it — X.509 parsing, path
//! validation against a CA, CRL lookup, KeyUsage and the identity binding — must refuse
//! anything malformed with an error, never panic.
//!
//! Input: certificates each preceded by a 2-octet big-endian length (a remainder without a
//! prefix is one more certificate); the first octet picks the identity to check.
#![no_main]

use std::borrow::Cow;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use meshsec_pki::TrustStore;
use meshsec_pki::testing::{Ca, Host, Key};
use meshsec_wire::payload::Identity;

/// A CA with a CRL, and one genuine host certificate to splice into inputs.
fn store() -> &'static (TrustStore, Vec<u8>) {
    static STORE: OnceLock<(TrustStore, Vec<u8>)> = OnceLock::new();
    STORE.get_or_init(|| {
        let ca = Ca::root("fuzz CA", Key::P256);
        let host = ca.issue(&Host::new("left", Key::P256));
        let revoked = ca.issue(&Host::new("revoked", Key::P256));
        let crl = ca.crl(&[&revoked.der]);
        (ca.store(&[crl]), host.der)
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((which, mut rest)) = data.split_first() else {
        return;
    };
    let (trust, genuine) = store();
    let mut chain: Vec<&[u8]> = Vec::new();
    // Odd: the genuine certificate first, so that what follows is parsed as intermediates.
    if which & 1 == 1 {
        chain.push(genuine);
    }
    while !rest.is_empty() && chain.len() < 8 {
        let (cert, tail) = match rest {
            [a, b, tail @ ..] if usize::from(u16::from_be_bytes([*a, *b])) <= tail.len() => {
                let n = usize::from(u16::from_be_bytes([*a, *b]));
                (&tail[..n], &tail[n..])
            }
            _ => (rest, &[][..]),
        };
        chain.push(cert);
        rest = tail;
    }
    let id = match which >> 1 & 3 {
        0 => Identity::Fqdn(Cow::Borrowed(b"left")),
        1 => Identity::Ipv4("192.0.2.1".parse().unwrap()),
        2 => Identity::Rfc822(Cow::Borrowed(b"left@example.org")),
        _ => Identity::DerAsn1Dn(Cow::Borrowed(rest)),
    };
    let _ = trust.verify(&chain, &id, 1_800_000_000);
});
