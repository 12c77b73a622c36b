//! How one IKE SA's messages travel (RFC 7296 §2.1–§2.2, §3.14; RFC 7383): sealing into the
//! SK payload (or SKF fragments when big and the peer supports them), opening and
//! reassembling what arrives, sending our requests with their retransmission armed, and
//! answering requests with the response cached for retransmitted requests.

use std::net::SocketAddr;

use meshsec_crypto::sk::Opened;
use meshsec_types::IkeSpi;
use meshsec_wire::payload::{Payload, emit_payloads};
use meshsec_wire::registry::{ExchangeType, PayloadType};
use meshsec_wire::{Flags, Header};

use crate::endpoint::Endpoint;
use crate::error::{ErrorKind, IkeError};
use crate::event::Transmit;
use crate::request::RequestKind;
use crate::sa::{Reassembly, Role, State, Timestamp};

/// Most fragments of one message we send or accept.
pub(crate) const MAX_FRAGMENTS: u16 = 32;

/// Most octets of one reassembled message.
pub(crate) const MAX_REASSEMBLED: usize = 64 * 1024;

/// Most octets of a reassembled IKE_AUTH request before its sender is authenticated: anyone
/// can complete IKE_SA_INIT, so each half-open SA's buffer is kept small (a PSK IKE_AUTH is
/// about 1 KiB; this leaves room for a certificate chain).
pub(crate) const MAX_REASSEMBLED_BEFORE_AUTH: usize = 16 * 1024;

/// The Fragment Number of an SKF message, if it is one.
pub(crate) fn fragment_number(bytes: &[u8]) -> Option<u16> {
    let info = Header::parse(bytes).ok()?;
    if info.first_payload != PayloadType::SKF {
        return None;
    }
    let b = bytes.get(32..34)?;
    Some(u16::from_be_bytes([*b.first()?, *b.get(1)?]))
}

impl Endpoint {
    pub(crate) fn transmit(&mut self, dst: SocketAddr, payload: Vec<u8>) {
        let src = self.config.local_addr;
        self.transmit_from(src, dst, payload);
    }

    pub(crate) fn transmit_from(&mut self, src: SocketAddr, dst: SocketAddr, payload: Vec<u8>) {
        self.transmits.push_back(Transmit {
            src,
            dst,
            payload,
            kind: crate::event::TransmitKind::Ike,
        });
    }

    pub(crate) fn transmit_all(
        &mut self,
        src: SocketAddr,
        dst: SocketAddr,
        datagrams: Vec<Vec<u8>>,
    ) {
        for d in datagrams {
            self.transmit_from(src, dst, d);
        }
    }

    /// Authenticates and decrypts an SK message, or one SKF fragment of it (RFC 7383 §2.6):
    /// the whole inner payload chain once everything is in, `None` while fragments are
    /// missing.
    pub(crate) fn open_message(
        &mut self,
        spi: IkeSpi,
        message_id: u32,
        bytes: &[u8],
    ) -> Result<Option<Opened>, IkeError> {
        let sa = self.sas.get_mut(&spi).ok_or(ErrorKind::UnknownSpi)?;
        // Before the sender authenticated, a whole message is held to the reassembly cap too:
        // what it carries (certificate chains) costs work to check.
        if sa.state == State::ExpectAuthRequest && bytes.len() > MAX_REASSEMBLED_BEFORE_AUTH {
            return Err(ErrorKind::TooLarge.into());
        }
        let keys = sa.crypto.as_ref().ok_or(ErrorKind::WrongState)?;
        let opened = keys
            .sk_in
            .open(bytes)
            .map_err(|_| ErrorKind::Undecryptable)?;
        let Some((number, total)) = opened.fragment else {
            return Ok(Some(opened));
        };
        if total > MAX_FRAGMENTS {
            return Err(ErrorKind::BadFragment.into());
        }
        let r = sa.reassembly.get_or_insert_with(Default::default);
        if r.message_id != message_id || r.total != total {
            *r = Reassembly {
                message_id,
                total,
                ..Default::default()
            };
        }
        if number == 1 {
            r.first_inner = Some(opened.first_inner);
        }
        r.parts.insert(number, opened.plaintext);
        let size: usize = r.parts.values().map(Vec::len).sum();
        let cap = if sa.state == State::ExpectAuthRequest {
            MAX_REASSEMBLED_BEFORE_AUTH
        } else {
            MAX_REASSEMBLED
        };
        if size > cap {
            sa.reassembly = None;
            return Err(ErrorKind::BadFragment.into());
        }
        if r.parts.len() < usize::from(total) {
            return Ok(None);
        }
        let r = sa.reassembly.take().ok_or(ErrorKind::Internal)?;
        Ok(Some(Opened {
            first_inner: r.first_inner.ok_or(ErrorKind::BadFragment)?,
            plaintext: r.parts.into_values().flatten().collect(),
            fragment: None,
        }))
    }

    /// Sends `inner` as our next request (for `kind`) on IKE SA `spi` (its message ID,
    /// retransmission armed); false if the SA is gone or the message cannot be sealed.
    pub(crate) fn send_request_message(
        &mut self,
        now: Timestamp,
        spi: IkeSpi,
        exchange: ExchangeType,
        inner: &[Payload<'_>],
        kind: RequestKind,
    ) -> bool {
        let Some(message_id) = self.sas.get(&spi).map(|sa| sa.next_request_id) else {
            return false;
        };
        let Some(bytes) = self.seal_message(spi, exchange, false, message_id, inner) else {
            return false;
        };
        let timeout = self.config.retransmit_timeout;
        let Some(sa) = self.sas.get_mut(&spi) else {
            return false;
        };
        sa.send_request(now, exchange, bytes.clone(), timeout, kind);
        let (local, remote) = (sa.local, sa.remote);
        self.transmit_all(local, remote, bytes);
        true
    }

    /// Encrypts `inner` into a message of this SA: one datagram, or SKF fragments of about
    /// `fragment_size` octets when it is bigger and the peer supports fragmentation.
    pub(crate) fn seal_message(
        &mut self,
        spi: IkeSpi,
        exchange: ExchangeType,
        response: bool,
        message_id: u32,
        inner: &[Payload<'_>],
    ) -> Option<Vec<Vec<u8>>> {
        let sa = self.sas.get(&spi)?;
        let crypto = sa.crypto.as_ref()?;
        let mut chain = Vec::new();
        let first = emit_payloads(inner, &mut chain).ok()?;
        let header = Header {
            spi_i: sa.spi_i.get(),
            spi_r: sa.spi_r.get(),
            minor_version: 0,
            exchange,
            flags: Flags::new(sa.role == Role::Initiator, response),
            message_id,
        };
        let whole = crypto
            .sk_out
            .seal(&header, first, &chain, self.rng.as_mut())
            .ok()?;
        if !sa.fragmentation || whole.len() <= self.config.fragment_size {
            return Some(vec![whole]);
        }
        // IKE header, SKF header, the largest IV, ICV and padding.
        let chunk = self
            .config
            .fragment_size
            .saturating_sub(28 + 8 + 16 + 32 + 17)
            .max(64);
        let pieces: Vec<&[u8]> = chain.chunks(chunk).collect();
        let total = u16::try_from(pieces.len())
            .ok()
            .filter(|t| *t <= MAX_FRAGMENTS)?;
        let mut out = Vec::with_capacity(pieces.len());
        for (piece, number) in pieces.into_iter().zip(1u16..) {
            let first_inner = if number == 1 {
                first
            } else {
                PayloadType::NONE
            };
            out.push(
                crypto
                    .sk_out
                    .seal_fragment(
                        &header,
                        (number, total),
                        first_inner,
                        piece,
                        self.rng.as_mut(),
                    )
                    .ok()?,
            );
        }
        Some(out)
    }

    /// Seals and sends a response, caching it for retransmitted requests.
    pub(crate) fn respond(
        &mut self,
        spi: IkeSpi,
        message_id: u32,
        exchange: ExchangeType,
        inner: &[Payload<'_>],
    ) {
        let Some(bytes) = self.seal_message(spi, exchange, true, message_id, inner) else {
            return;
        };
        let Some(sa) = self.sas.get_mut(&spi) else {
            return;
        };
        sa.answered(message_id, bytes.clone(), self.now_hint);
        let (local, remote) = (sa.local, sa.remote);
        self.transmit_all(local, remote, bytes);
    }
}

impl Endpoint {
    /// Sends an arbitrary inner payload chain (`first_inner` and its octets, sealed as they
    /// are) as our next request: a peer's odd but authentic messages, e.g. OpenIKED's
    /// liveness check (an empty chain and four more octets). Only with `test-hooks`.
    #[cfg(feature = "test-hooks")]
    pub fn debug_send_raw_request(
        &mut self,
        now: Timestamp,
        peer: crate::event::PeerId,
        exchange: ExchangeType,
        first_inner: PayloadType,
        plaintext: &[u8],
    ) -> bool {
        let Some(spi) = self.established_sa(peer) else {
            return false;
        };
        let Some(sa) = self.sas.get(&spi) else {
            return false;
        };
        let Some(crypto) = sa.crypto.as_ref() else {
            return false;
        };
        let header = Header {
            spi_i: sa.spi_i.get(),
            spi_r: sa.spi_r.get(),
            minor_version: 0,
            exchange,
            flags: Flags::new(sa.role == Role::Initiator, false),
            message_id: sa.next_request_id,
        };
        let Ok(bytes) = crypto
            .sk_out
            .seal(&header, first_inner, plaintext, self.rng.as_mut())
        else {
            return false;
        };
        let kind = RequestKind::Informational(crate::request::InfoPurpose::Liveness);
        let timeout = self.config.retransmit_timeout;
        let Some(sa) = self.sas.get_mut(&spi) else {
            return false;
        };
        sa.send_request(now, exchange, vec![bytes.clone()], timeout, kind);
        let (local, remote) = (sa.local, sa.remote);
        self.transmit_from(local, remote, bytes);
        true
    }

    /// Sends `inner` as our next request in `exchange` on the established IKE SA with `peer`,
    /// whatever it holds: fault injection for tests (malformed or misplaced payloads, an
    /// exchange the peer cannot take). Returns false if there is no such SA. Only with the
    /// `test-hooks` feature.
    #[cfg(feature = "test-hooks")]
    pub fn debug_send_request(
        &mut self,
        now: Timestamp,
        peer: crate::event::PeerId,
        exchange: ExchangeType,
        inner: &[Payload<'_>],
    ) -> bool {
        let Some(spi) = self.established_sa(peer) else {
            return false;
        };
        let kind = RequestKind::Informational(crate::request::InfoPurpose::Liveness);
        self.send_request_message(now, spi, exchange, inner, kind)
    }
}
