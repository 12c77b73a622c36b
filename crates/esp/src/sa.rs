//! One-directional ESP SAs: sealing with an outbound SA, opening with an inbound one.

use std::net::IpAddr;

use meshsec_crypto::aead::AeadBackend;
use meshsec_crypto::rng::Random;
use meshsec_crypto::{CryptoError, Encr, Integ, Secret};
use meshsec_wire::esp::{
    ESP_HEADER_LEN, EspHeader, NEXT_HEADER_IPV4, NEXT_HEADER_IPV6, NEXT_HEADER_NO_NEXT,
    padding_len, parse_trailer, write_trailer,
};

use crate::cipher::EspCipher;
use crate::drop::{Counters, DropReason};
use crate::ip;
use crate::lifetime::{
    AES_GCM_MAX_PACKETS, Expiry, LifeState, Lifetime, MAX_AUTH_FAILURES, Timestamp,
};
use crate::replay::{ReplayError, ReplayWindow};
use crate::selector::{Selector, ip_total_len, packet_key};
use meshsec_types::{InboundSpi, OutboundSpi, PeerId};

/// Tunnel or transport mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// The whole inner IP packet is protected (RFC 4303 §3.1.2).
    Tunnel,
    /// Only the IP payload is protected; the IP header is the outer one (§3.1.1).
    Transport,
}

/// How ESP travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encap {
    /// Plain ESP (IP protocol 50).
    None,
    /// ESP in UDP (RFC 3948), usually port 4500 on both sides.
    Udp {
        /// Our UDP port.
        local_port: u16,
        /// The peer's UDP port (after NAT: the translated one).
        remote_port: u16,
    },
}

/// Everything needed to install one direction of a CHILD SA.
#[derive(Debug, Clone)]
pub struct SaParams {
    /// The SPI as on the wire: ours for an inbound SA, the peer's for an outbound one (which
    /// one it is follows from the install call).
    pub spi: u32,
    /// The peer this SA belongs to.
    pub peer: PeerId,
    /// Tunnel or transport.
    pub mode: Mode,
    /// Plain or UDP-encapsulated ESP.
    pub encap: Encap,
    /// Our outer address.
    pub local: IpAddr,
    /// The peer's outer address.
    pub remote: IpAddr,
    /// Negotiated encryption.
    pub encr: Encr,
    /// Negotiated integrity (`None` with AEAD).
    pub integ: Option<Integ>,
    /// Encryption key (| salt for AEAD).
    pub encr_key: Secret,
    /// Integrity key (empty with AEAD).
    pub integ_key: Secret,
    /// Extended Sequence Numbers negotiated.
    pub esn: bool,
    /// The traffic selectors the SA carries (local = our side).
    pub selectors: Vec<Selector>,
    /// Soft and hard limits.
    pub lifetime: Lifetime,
    /// Inbound: replay window size in packets.
    pub replay_window: u32,
    /// Outbound, tunnel mode: pad inner packets up to this many octets (TFC padding,
    /// RFC 4303 §2.7); `None` when disabled or the peer sent ESP_TFC_PADDING_NOT_SUPPORTED.
    pub tfc_pad_to: Option<u16>,
    /// Outbound AEAD: the IV is the sequence number XOR this value (unique per key; chosen at
    /// random by the daemon so IVs do not reveal the counter).
    pub iv_mask: u64,
    /// Which AEAD library.
    pub backend: AeadBackend,
    /// Inbound transport mode over UDP through NAT: fix TCP/UDP checksums (RFC 3948 §3.1.2).
    pub nat_transport_fixup: bool,
}

/// The outcome of sealing: where to send the ESP packet now in the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sealed {
    /// SPI of the SA used.
    pub spi: OutboundSpi,
    /// Its peer.
    pub peer: PeerId,
    /// Our outer address.
    pub local: IpAddr,
    /// The peer's outer address.
    pub remote: IpAddr,
    /// Plain ESP or UDP.
    pub encap: Encap,
}

/// The outcome of opening.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opened {
    /// An inner IP packet, now at `buf[start..end]`, for the TUN device.
    Packet {
        /// SPI of the SA.
        spi: InboundSpi,
        /// Its peer.
        peer: PeerId,
    },
    /// A dummy packet (next header 59): authenticated and silently discarded.
    Dummy {
        /// SPI of the SA.
        spi: InboundSpi,
    },
    /// No SA has this SPI yet: the packet was copied aside, to be opened when one is
    /// installed ([`crate::DataPlane::open_parked`]) or reported unknown after a moment.
    Parked {
        /// The SPI.
        spi: InboundSpi,
    },
}

/// A packet in a caller's buffer: the bytes of interest are `buf[start..end]`; the space
/// before `start` (headroom) and after `end` (tailroom) is free for ESP framing.
#[derive(Debug)]
pub struct PacketBuf<'a> {
    /// The whole buffer.
    pub buf: &'a mut [u8],
    /// Start of the packet.
    pub start: usize,
    /// End of the packet.
    pub end: usize,
}

impl<'a> PacketBuf<'a> {
    /// The packet `buf[start..end]`.
    pub fn new(buf: &'a mut [u8], start: usize, end: usize) -> PacketBuf<'a> {
        PacketBuf { buf, start, end }
    }

    /// The packet bytes.
    pub fn data(&self) -> &[u8] {
        self.buf.get(self.start..self.end).unwrap_or_default()
    }
}

/// Headroom a caller should leave: ESP header + the largest IV, plus room to rebuild an IPv6
/// header on transport-mode receive.
pub const HEADROOM: usize = 64;
/// Tailroom a caller should leave: maximal padding, trailer and ICV.
pub const TAILROOM: usize = 255 + 2 + 32;

/// Lifetime events an SA raises while handling a packet.
pub(crate) type LifeEvents = (Option<Expiry>, Option<Expiry>);

/// One outbound SA.
#[derive(Debug)]
pub struct OutboundSa {
    pub(crate) params: SaParams,
    cipher: EspCipher,
    next_seq: u64,
    pub(crate) counters: Counters,
    pub(crate) life: LifeState,
}

impl OutboundSa {
    /// Builds the SA (keys are checked here).
    pub fn new(now: Timestamp, params: SaParams) -> Result<OutboundSa, CryptoError> {
        let cipher = EspCipher::for_params(&params)?;
        Ok(OutboundSa {
            life: LifeState::new(now, params.lifetime),
            params,
            cipher,
            next_seq: 1,
            counters: Counters::default(),
        })
    }

    /// The highest sequence number this SA may use.
    fn max_seq(&self) -> u64 {
        if self.params.esn {
            u64::MAX
        } else {
            u64::from(u32::MAX)
        }
    }

    /// Counters so far.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    #[cfg(feature = "test-hooks")]
    pub(crate) fn set_next_seq(&mut self, seq: u64) {
        self.next_seq = seq;
    }

    /// The sequence number the next packet will carry.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Encrypts the inner IP packet in `pkt` in place into an ESP packet.
    pub(crate) fn seal(
        &mut self,
        now: Timestamp,
        pkt: &mut PacketBuf<'_>,
        rng: &mut dyn Random,
        events: &mut LifeEvents,
    ) -> Result<Sealed, DropReason> {
        match self.life.hard_fired {
            Some(Expiry::SequenceSpace) => return Err(DropReason::SeqExhausted),
            Some(_) => return Err(DropReason::Expired),
            None => {}
        }
        let seq = self.next_seq;
        let inner_len = pkt.end - pkt.start;
        // Where the protected payload starts and what it is.
        let (payload_start, next_header) = match self.params.mode {
            Mode::Tunnel => match pkt.data().first().map(|b| b >> 4) {
                Some(4) => (pkt.start, NEXT_HEADER_IPV4),
                Some(6) => (pkt.start, NEXT_HEADER_IPV6),
                _ => return Err(DropReason::Malformed),
            },
            Mode::Transport => {
                let data = pkt.data();
                let hl = ip::header_len(data).ok_or(DropReason::Malformed)?;
                let v4 = data.first().map(|b| b >> 4) == Some(4);
                // Transport mode protects packets between the SA's own addresses: the
                // receiver rebuilds the header from the outer one, so a packet of the other
                // family cannot travel in it (it needs an SA of its own family).
                if v4 != self.params.remote.is_ipv4() {
                    return Err(DropReason::NoPolicy);
                }
                let proto = if v4 { data.get(9) } else { data.get(6) }
                    .copied()
                    .ok_or(DropReason::Malformed)?;
                (pkt.start + hl, proto)
            }
        };
        let mut payload_end = pkt.end;
        if let (Mode::Tunnel, Some(pad_to)) = (self.params.mode, self.params.tfc_pad_to) {
            let want = pkt.start + usize::from(pad_to).max(inner_len);
            if want > payload_end {
                pkt.buf
                    .get_mut(payload_end..want)
                    .ok_or(DropReason::NoRoom)?
                    .fill(0);
                payload_end = want;
            }
        }
        let payload_len = payload_end - payload_start;
        let pad = padding_len(payload_len, self.cipher.align());
        let iv_len = self.cipher.iv_len();
        let esp_start = payload_start
            .checked_sub(ESP_HEADER_LEN + iv_len)
            .ok_or(DropReason::NoRoom)?;
        let trailer_end = payload_end + pad + 2;
        let esp_end = trailer_end + self.cipher.icv_len();
        let packet = pkt
            .buf
            .get_mut(esp_start..esp_end)
            .ok_or(DropReason::NoRoom)?;
        EspHeader {
            spi: self.params.spi,
            seq: seq as u32,
        }
        .write(packet)
        .map_err(|_| DropReason::NoRoom)?;
        let trailer = packet
            .get_mut(payload_end - esp_start..trailer_end - esp_start)
            .ok_or(DropReason::NoRoom)?;
        write_trailer(trailer, next_header).map_err(|_| DropReason::Malformed)?;
        let seq_hi = self.params.esn.then_some((seq >> 32) as u32);
        self.cipher
            .seal(packet, seq_hi, seq ^ self.params.iv_mask, rng)?;
        self.next_seq = seq + 1;
        self.counters.packets += 1;
        self.counters.last_packet = Some(now);
        self.counters.bytes += inner_len as u64;
        pkt.start = esp_start;
        pkt.end = esp_end;
        *events = self
            .life
            .check(now, self.counters.bytes, self.counters.packets);
        // Limits no configuration can lift: the sequence space, or AES-GCM's usage limit if
        // lower. Soft at 7/8 so the rekey completes before the hard stop.
        let (limit, why) = if self.cipher.is_aes_gcm() && AES_GCM_MAX_PACKETS < self.max_seq() {
            (AES_GCM_MAX_PACKETS, Expiry::AeadUsage)
        } else {
            (self.max_seq(), Expiry::SequenceSpace)
        };
        if seq >= limit - limit / 8 {
            events.0 = events.0.or(self.life.force(false, why));
        }
        if seq >= limit {
            events.1 = events.1.or(self.life.force(true, why));
        }
        Ok(Sealed {
            spi: OutboundSpi::new(self.params.spi),
            peer: self.params.peer,
            local: self.params.local,
            remote: self.params.remote,
            encap: self.params.encap,
        })
    }
}

/// One inbound SA.
#[derive(Debug)]
pub struct InboundSa {
    pub(crate) params: SaParams,
    cipher: EspCipher,
    replay: ReplayWindow,
    pub(crate) counters: Counters,
    pub(crate) life: LifeState,
    auth_failures: u64,
    /// The standby outbound SA (its slot and SPI) of the same pair: the first packet that
    /// opens here shows the peer has the pair, so that one seals from then on.
    pub(crate) promotes: Option<(PeerId, u32)>,
}

impl InboundSa {
    /// Builds the SA (keys are checked here).
    pub fn new(now: Timestamp, params: SaParams) -> Result<InboundSa, CryptoError> {
        let cipher = EspCipher::for_params(&params)?;
        Ok(InboundSa {
            replay: ReplayWindow::new(params.replay_window, params.esn),
            life: LifeState::new(now, params.lifetime),
            params,
            cipher,
            counters: Counters::default(),
            auth_failures: 0,
            promotes: None,
        })
    }

    /// Counters so far.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Verifies and decrypts the ESP packet in `pkt` (from outer `src` to `dst`) in place,
    /// leaving the inner IP packet in `pkt.start..pkt.end`.
    pub(crate) fn open(
        &mut self,
        now: Timestamp,
        pkt: &mut PacketBuf<'_>,
        outer: (IpAddr, IpAddr),
        events: &mut LifeEvents,
    ) -> Result<Opened, DropReason> {
        let result = self.open_inner(now, pkt, outer, events);
        if let Err(reason) = result {
            self.counters.count_drop(reason);
        }
        result
    }

    fn open_inner(
        &mut self,
        now: Timestamp,
        pkt: &mut PacketBuf<'_>,
        outer: (IpAddr, IpAddr),
        events: &mut LifeEvents,
    ) -> Result<Opened, DropReason> {
        if self.life.hard_fired.is_some() {
            return Err(DropReason::Expired);
        }
        let (header, _) = EspHeader::parse(pkt.data()).map_err(|_| DropReason::Malformed)?;
        // Too short to hold IV, trailer and ICV: malformed, whatever its sequence number.
        let min = ESP_HEADER_LEN + self.cipher.iv_len() + 2 + self.cipher.icv_len();
        if pkt.end - pkt.start < min {
            return Err(DropReason::Malformed);
        }
        let seq = self.replay.infer(header.seq);
        self.replay.check(seq).map_err(|e| match e {
            ReplayError::Replay => DropReason::Replay,
            ReplayError::TooOld => DropReason::TooOld,
        })?;
        let seq_hi = self.params.esn.then_some((seq >> 32) as u32);
        let packet = pkt
            .buf
            .get_mut(pkt.start..pkt.end)
            .ok_or(DropReason::Malformed)?;
        let body = match self.cipher.open(packet, seq_hi) {
            Ok(r) => r,
            Err(DropReason::AuthFailed) => {
                self.auth_failures += 1;
                if self.auth_failures >= MAX_AUTH_FAILURES {
                    events.1 = self.life.force(true, Expiry::IntegrityFailures);
                }
                return Err(DropReason::AuthFailed);
            }
            Err(e) => return Err(e),
        };
        // Authenticated: only now may the window move.
        self.replay.commit(seq);
        let plain = packet.get(body.clone()).ok_or(DropReason::Malformed)?;
        let (payload_len, trailer) = parse_trailer(plain).map_err(|_| DropReason::Malformed)?;
        self.counters.last_packet = Some(now);
        if trailer.next_header == NEXT_HEADER_NO_NEXT {
            self.counters.dummies += 1;
            return Ok(Opened::Dummy {
                spi: InboundSpi::new(self.params.spi),
            });
        }
        let payload_start = pkt.start + body.start;
        let (start, end) = match self.params.mode {
            Mode::Tunnel => {
                let payload = pkt
                    .buf
                    .get(payload_start..payload_start + payload_len)
                    .ok_or(DropReason::Malformed)?;
                let expect_version = match trailer.next_header {
                    NEXT_HEADER_IPV4 => 4,
                    NEXT_HEADER_IPV6 => 6,
                    _ => return Err(DropReason::Malformed),
                };
                if payload.first().map(|b| b >> 4) != Some(expect_version) {
                    return Err(DropReason::Malformed);
                }
                // Strip TFC padding: the inner header says how long the packet really is.
                let len = ip_total_len(payload).ok_or(DropReason::Malformed)?;
                if len > payload_len || len < ip::header_len(payload).unwrap_or(usize::MAX) {
                    return Err(DropReason::Malformed);
                }
                (payload_start, payload_start + len)
            }
            Mode::Transport => {
                let (src, dst) = outer;
                let hl = if src.is_ipv4() {
                    ip::IPV4_HEADER_LEN
                } else {
                    ip::IPV6_HEADER_LEN
                };
                let start = payload_start.checked_sub(hl).ok_or(DropReason::NoRoom)?;
                let end = payload_start + payload_len;
                if self.params.nat_transport_fixup {
                    let l4 = pkt
                        .buf
                        .get_mut(payload_start..end)
                        .ok_or(DropReason::Malformed)?;
                    ip::fix_l4_checksum(l4, src, dst, trailer.next_header)
                        .ok_or(DropReason::Malformed)?;
                }
                let header = pkt
                    .buf
                    .get_mut(start..payload_start)
                    .ok_or(DropReason::NoRoom)?;
                ip::write_header(header, src, dst, trailer.next_header, payload_len)
                    .ok_or(DropReason::Malformed)?;
                (start, end)
            }
        };
        let inner = pkt.buf.get(start..end).ok_or(DropReason::Malformed)?;
        let key = packet_key(inner).ok_or(DropReason::Malformed)?;
        if !self
            .params
            .selectors
            .iter()
            .any(|s| s.matches_inbound(&key))
        {
            return Err(DropReason::NoPolicy);
        }
        pkt.start = start;
        pkt.end = end;
        self.counters.packets += 1;
        self.counters.bytes += (end - start) as u64;
        *events = self
            .life
            .check(now, self.counters.bytes, self.counters.packets);
        Ok(Opened::Packet {
            spi: InboundSpi::new(self.params.spi),
            peer: self.params.peer,
        })
    }
}
