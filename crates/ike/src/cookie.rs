//! Stateless cookies against IKE_SA_INIT floods (RFC 7296 §2.6):
//! `Cookie = <VersionIDofSecret> | prf(secret, Ni | IPi | port | SPIi)`. The port is ours to
//! add (the RFC leaves the input to the responder): a cookie proves one address *and* port,
//! so it cannot be replayed from other ports to open more half-open SAs. The responder keeps only
//! two secrets — the current one and the one before — so verifying costs no per-request state,
//! and a rotation never invalidates a cookie handed out just before it.

use meshsec_types::IkeSpi;
use std::net::SocketAddr;
use std::time::Duration;

use crate::sa::Timestamp;

use meshsec_crypto::rng::Random;
use meshsec_crypto::{Prf, Secret};

/// The responder's cookie secrets.
pub(crate) struct CookieJar {
    version: u8,
    current: Secret,
    previous: Option<Secret>,
    since: Timestamp,
}

/// The initiator's address and port, as they go into the cookie.
fn source(a: SocketAddr) -> Vec<u8> {
    let mut out = match a {
        SocketAddr::V4(v) => v.ip().octets().to_vec(),
        SocketAddr::V6(v) => v.ip().octets().to_vec(),
    };
    out.extend_from_slice(&a.port().to_be_bytes());
    out
}

fn compute(secret: &Secret, version: u8, ni: &[u8], from: SocketAddr, spi_i: IkeSpi) -> Vec<u8> {
    let mac = Prf::HmacSha256.compute(secret.expose(), &[ni, &source(from), &spi_i.to_be_bytes()]);
    let mut out = Vec::with_capacity(1 + mac.len());
    out.push(version);
    out.extend_from_slice(mac.expose());
    out
}

impl CookieJar {
    pub(crate) fn new(rng: &mut dyn Random, now: Timestamp) -> Option<CookieJar> {
        let mut s = vec![0u8; 32];
        rng.fill(&mut s).ok()?;
        Some(CookieJar {
            version: 0,
            current: Secret::new(s),
            previous: None,
            since: now,
        })
    }

    /// Rotates the secret when its lifetime is over.
    pub(crate) fn rotate(&mut self, rng: &mut dyn Random, now: Timestamp, lifetime: Duration) {
        if now < self.since + lifetime {
            return;
        }
        let mut s = vec![0u8; 32];
        if rng.fill(&mut s).is_err() {
            return;
        }
        self.previous = Some(std::mem::replace(&mut self.current, Secret::new(s)));
        self.version = self.version.wrapping_add(1);
        self.since = now;
    }

    /// The cookie for this request.
    pub(crate) fn make(&self, ni: &[u8], from: SocketAddr, spi_i: IkeSpi) -> Vec<u8> {
        compute(&self.current, self.version, ni, from, spi_i)
    }

    /// True if `cookie` was made by us (with the current or the previous secret).
    pub(crate) fn check(&self, cookie: &[u8], ni: &[u8], from: SocketAddr, spi_i: IkeSpi) -> bool {
        let Some(&version) = cookie.first() else {
            return false;
        };
        let secret = if version == self.version {
            Some(&self.current)
        } else if version == self.version.wrapping_sub(1) {
            self.previous.as_ref()
        } else {
            None
        };
        secret.is_some_and(|s| Secret::new(compute(s, version, ni, from, spi_i)).ct_eq(cookie))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meshsec_crypto::rng::SystemRandom;

    #[test]
    fn a_cookie_is_good_for_one_address_port_nonce_and_spi() {
        let mut rng = SystemRandom::new();
        let jar = CookieJar::new(&mut rng, Timestamp::ZERO).unwrap();
        let from: SocketAddr = "192.0.2.1:500".parse().unwrap();
        let spi = IkeSpi::new(7);
        let c = jar.make(b"nonce", from, spi);
        assert!(jar.check(&c, b"nonce", from, spi));
        assert!(!jar.check(&c, b"nonce", "192.0.2.1:501".parse().unwrap(), spi));
        assert!(!jar.check(&c, b"nonce", "192.0.2.2:500".parse().unwrap(), spi));
        assert!(!jar.check(&c, b"other", from, spi));
        assert!(!jar.check(&c, b"nonce", from, IkeSpi::new(8)));
    }
}
