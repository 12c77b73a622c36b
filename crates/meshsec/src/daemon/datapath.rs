//! The data path: threads that move packets between the TUN device and the network through
//! the ESP data plane, never waiting for IKE work (DESIGN.md §5).
//!
//! * one TUN thread: reads a batch of inner packets, seals them under one lock of the
//!   [`DataPlane`], sends the batch with `sendmmsg` per socket;
//! * one thread per ESP-carrying socket (UDP 4500 for IPv4/IPv6, raw ESP for IPv4/IPv6):
//!   receives a batch with `recvmmsg`, hands IKE messages (port 4500, non-ESP marker) to the
//!   IKE loop, opens the ESP packets under one lock and writes the inner packets to TUN.
//!
//! IKE datagrams read on port 4500 go to the IKE loop through a bounded queue (a flood is
//! dropped and counted, not queued without end). What the data plane has to report (events,
//! ESP with unknown SPIs) stays in the data plane: the threads only ring the IKE loop,
//! which takes the reports from there (`Node::handle_backend_reports`).
//!
//! The threads block until a socket is readable: an idle data path never wakes up.

use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use meshsec_esp::{DataPlane, Encap, HEADROOM, Opened, PacketBuf, SealOutcome, TAILROOM};
use meshsec_types::Timestamp;
use meshsec_wire::udp_encap::{Udp4500, classify};
use tokio::sync::Notify;
use tokio::sync::mpsc::Sender;
use tun_rs::{GROTable, IDEAL_BATCH_SIZE, SyncDevice, VIRTIO_NET_HDR_LEN};

use super::os::{self, BATCH, Received};

/// An IKE message that arrived on port 4500 (marker removed), for the IKE loop.
#[derive(Debug)]
pub struct IkeDatagram {
    /// Sender.
    pub from: SocketAddr,
    /// Our address and port it arrived at.
    pub to: SocketAddr,
    /// The message.
    pub bytes: Vec<u8>,
}

/// Counters of the data path itself (the data plane counts per SA and per peer).
#[derive(Debug, Default)]
pub struct PathCounters {
    /// Datagrams the kernel refused to send (full socket buffer, no route...).
    pub send_failed: AtomicU64,
    /// Inner packets the TUN device refused.
    pub tun_write_failed: AtomicU64,
    /// Reads from the TUN device that could not be taken apart (offload).
    pub tun_read_failed: AtomicU64,
    /// Datagrams on port 4500 or raw ESP that were neither IKE nor ESP.
    pub malformed: AtomicU64,
    /// NAT keepalives received.
    pub keepalives: AtomicU64,
    /// IKE datagrams on port 4500 dropped because the IKE loop's queue was full.
    pub ike_queue_full: AtomicU64,
    /// IKE_SA_INIT requests on port 4500 dropped because the IKE loop's queue was filling up
    /// (new IKE SAs are shed first, so messages of existing ones still get through).
    pub ike_init_shed: AtomicU64,
}

/// Room that must be left in the IKE loop's queue for messages of existing IKE SAs: an
/// IKE_SA_INIT request (responder SPI zero) is queued only while more is free.
const KEEP_FOR_EXISTING: usize = 256;

/// An IKE_SA_INIT request: the responder's SPI is still zero (RFC 7296 §3.1).
fn opens_new_ike_sa(msg: &[u8]) -> bool {
    msg.get(8..16)
        .is_some_and(|spi_r| spi_r.iter().all(|b| *b == 0))
}

/// The sockets that carry ESP.
#[derive(Debug)]
pub struct EspSockets {
    /// UDP port 4500, IPv4 (ESP in UDP and IKE after NAT-T floating).
    pub udp4: Option<std::net::UdpSocket>,
    /// UDP port 4500, IPv6.
    pub udp6: Option<std::net::UdpSocket>,
    /// Raw ESP (protocol 50), IPv4: the kernel prepends the IPv4 header on receive.
    pub raw4: Option<socket2::Socket>,
    /// Raw ESP, IPv6.
    pub raw6: Option<socket2::Socket>,
}

/// Everything the data-path threads share with the IKE loop.
pub struct DataPath {
    /// The ESP data plane, shared with the IKE loop's node; locked once per batch.
    pub plane: Arc<Mutex<DataPlane>>,
    /// Origin of the engines' clocks.
    pub epoch: Instant,
    /// The TUN device.
    pub tun: SyncDevice,
    /// ESP sockets.
    pub sockets: EspSockets,
    /// Our outer addresses (first of each family), for the "to" of received packets.
    pub local4: Option<IpAddr>,
    /// Our IPv6 outer address.
    pub local6: Option<IpAddr>,
    /// Largest inner packet (the TUN MTU).
    pub mtu: usize,
    /// Data path counters.
    pub counters: PathCounters,
    /// Set to stop the threads.
    pub stop: AtomicBool,
    to_ike: Sender<IkeDatagram>,
    /// Rung when the data plane has events or unknown SPIs to report.
    reports: Arc<Notify>,
}

impl DataPath {
    /// A data path over these devices; events go to `to_ike`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        plane: Arc<Mutex<DataPlane>>,
        epoch: Instant,
        tun: SyncDevice,
        sockets: EspSockets,
        locals: (Option<IpAddr>, Option<IpAddr>),
        mtu: usize,
        to_ike: Sender<IkeDatagram>,
        reports: Arc<Notify>,
    ) -> DataPath {
        DataPath {
            plane,
            epoch,
            tun,
            sockets,
            local4: locals.0,
            local6: locals.1,
            mtu,
            counters: PathCounters::default(),
            stop: AtomicBool::new(false),
            to_ike,
            reports,
        }
    }

    /// The engines' clock.
    pub fn now(&self) -> Timestamp {
        Timestamp::from_duration(self.epoch.elapsed())
    }

    /// The data plane, even if a thread panicked while holding it (the plane's state is
    /// updated packet by packet, so it stays consistent).
    pub fn plane(&self) -> MutexGuard<'_, DataPlane> {
        self.plane
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Rings the IKE loop if the data plane has something to report.
    fn signal_reports(&self, plane: &DataPlane) {
        if plane.has_reports() {
            self.reports.notify_one();
        }
    }

    /// Writes inner packets to the TUN device from the IKE loop (ESP that waited for its
    /// SA, see `DataPlane::open_parked`).
    pub fn deliver(&self, packets: &[Vec<u8>]) {
        let mut batch: Vec<Vec<u8>> = packets
            .iter()
            .map(|p| {
                let mut out = vec![0u8; VIRTIO_NET_HDR_LEN];
                out.extend_from_slice(p);
                out
            })
            .collect();
        if batch.is_empty() {
            return;
        }
        let mut gro = GROTable::default();
        if self
            .tun
            .send_multiple(&mut gro, &mut batch, VIRTIO_NET_HDR_LEN)
            .is_err()
        {
            self.counters
                .tun_write_failed
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    fn buf_len(&self) -> usize {
        (HEADROOM + self.mtu + TAILROOM + 256).max(2048)
    }

    /// Starts the TUN thread and one receive thread per ESP socket.
    pub fn spawn(self: &Arc<Self>) -> std::io::Result<Vec<std::thread::JoinHandle<()>>> {
        let mut threads = Vec::new();
        let me = Arc::clone(self);
        threads.push(
            std::thread::Builder::new()
                .name("meshsec-tun".into())
                .spawn(move || me.tun_loop())?,
        );
        let rx: [(Option<RawFd>, Kind); 4] = [
            (
                self.sockets.udp4.as_ref().map(AsRawFd::as_raw_fd),
                Kind::Udp,
            ),
            (
                self.sockets.udp6.as_ref().map(AsRawFd::as_raw_fd),
                Kind::Udp,
            ),
            (
                self.sockets.raw4.as_ref().map(AsRawFd::as_raw_fd),
                Kind::Raw4,
            ),
            (
                self.sockets.raw6.as_ref().map(AsRawFd::as_raw_fd),
                Kind::Raw6,
            ),
        ];
        for (fd, kind) in rx {
            let Some(fd) = fd else { continue };
            let me = Arc::clone(self);
            threads.push(
                std::thread::Builder::new()
                    .name(format!("meshsec-rx-{kind:?}").to_lowercase())
                    .spawn(move || me.net_loop(fd, kind))?,
            );
        }
        Ok(threads)
    }

    /// TUN → seal → network.
    fn tun_loop(&self) {
        if let Err(e) = self.tun.set_nonblocking(true) {
            tracing::error!("TUN device: cannot make it non-blocking: {e}; data path stopped");
            return;
        }
        let len = self.buf_len();
        // With TUN offloads, one read brings a whole TCP segment train (up to 64 KiB with
        // its virtio header), which tun-rs splits into MTU-sized packets here.
        let mut original = vec![0u8; VIRTIO_NET_HDR_LEN + 65535];
        let mut bufs: Vec<Vec<u8>> = (0..IDEAL_BATCH_SIZE).map(|_| vec![0u8; len]).collect();
        let mut lens = vec![0usize; IDEAL_BATCH_SIZE];
        let mut sealed: Vec<(usize, usize, usize, SocketAddr, Kind)> =
            Vec::with_capacity(IDEAL_BATCH_SIZE);
        let tun_fd = self.tun.as_raw_fd();
        let mut ready = [false];
        while !self.stop.load(Ordering::Relaxed) {
            let n = match self
                .tun
                .recv_multiple(&mut original, &mut bufs, &mut lens, HEADROOM)
            {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    let _ = os::wait_readable(&[tun_fd], -1, &mut ready);
                    continue;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // A packet the offload code cannot take apart: dropped, counted.
                    self.counters
                        .tun_read_failed
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::debug!("TUN read: {e}");
                    continue;
                }
            };
            sealed.clear();
            {
                let now = self.now();
                let mut plane = self.plane();
                for (i, (buf, l)) in bufs.iter_mut().zip(lens.iter()).take(n).enumerate() {
                    let mut pkt = PacketBuf::new(buf, HEADROOM, HEADROOM + l);
                    if let Ok(SealOutcome::Sealed(s)) = plane.seal(now, &mut pkt) {
                        let (dst, kind) = match s.encap {
                            Encap::Udp { remote_port, .. } => {
                                (SocketAddr::new(s.remote, remote_port), Kind::Udp)
                            }
                            Encap::None if s.remote.is_ipv4() => {
                                (SocketAddr::new(s.remote, 0), Kind::Raw4)
                            }
                            Encap::None => (SocketAddr::new(s.remote, 0), Kind::Raw6),
                        };
                        sealed.push((i, pkt.start, pkt.end, dst, kind));
                    }
                    // Bypass has nowhere to go from TUN, drops are counted by the plane.
                }
                self.signal_reports(&plane);
            }
            self.send_sealed(&bufs, &sealed);
        }
    }

    fn send_sealed(&self, bufs: &[Vec<u8>], sealed: &[(usize, usize, usize, SocketAddr, Kind)]) {
        let groups: [(Kind, bool, Option<RawFd>); 4] = [
            (
                Kind::Udp,
                true,
                self.sockets.udp4.as_ref().map(AsRawFd::as_raw_fd),
            ),
            (
                Kind::Udp,
                false,
                self.sockets.udp6.as_ref().map(AsRawFd::as_raw_fd),
            ),
            (
                Kind::Raw4,
                true,
                self.sockets.raw4.as_ref().map(AsRawFd::as_raw_fd),
            ),
            (
                Kind::Raw6,
                false,
                self.sockets.raw6.as_ref().map(AsRawFd::as_raw_fd),
            ),
        ];
        for (kind, v4, fd) in groups {
            let batch: Vec<(&[u8], SocketAddr)> = sealed
                .iter()
                .filter(|s| s.4 == kind && s.3.is_ipv4() == v4)
                .filter_map(|(i, start, end, dst, _)| {
                    bufs.get(*i)
                        .and_then(|b| b.get(*start..*end))
                        .map(|d| (d, *dst))
                })
                .collect();
            if batch.is_empty() {
                continue;
            }
            let sent = match fd {
                Some(fd) if kind == Kind::Udp => send_udp(fd, &batch),
                Some(fd) => os::send_batch(fd, &batch),
                None => 0,
            };
            let failed = (batch.len() - sent) as u64;
            if failed > 0 {
                self.counters
                    .send_failed
                    .fetch_add(failed, Ordering::Relaxed);
            }
        }
    }

    /// Network → (IKE to the IKE loop | ESP → open → TUN).
    fn net_loop(&self, fd: RawFd, kind: Kind) {
        // UDP GRO hands over up to 64 KiB of same-size datagrams per receive.
        // Datagrams land after HEADROOM octets: transport mode writes the inner IP header
        // in front of the ESP payload.
        let len = if kind == Kind::Udp {
            HEADROOM + 65536
        } else {
            self.buf_len()
        };
        let mut bufs: Vec<Vec<u8>> = (0..BATCH).map(|_| vec![0u8; len]).collect();
        let mut got = [Received::EMPTY; BATCH];
        let mut ready = [false];
        let mut to_tun: Vec<Vec<u8>> = (0..BATCH)
            .map(|_| Vec::with_capacity(VIRTIO_NET_HDR_LEN + self.mtu))
            .collect();
        let mut gro = GROTable::default();
        while !self.stop.load(Ordering::Relaxed) {
            let n = match os::recv_batch(fd, &mut bufs, &mut got, HEADROOM) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    let _ = os::wait_readable(&[fd], -1, &mut ready);
                    continue;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::warn!("receive on {kind:?} socket failed: {e}");
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                }
            };
            let now = self.now();
            let mut parked = false;
            let mut plane: Option<MutexGuard<'_, DataPlane>> = None;
            // Opened packets are copied out at once: in transport mode the next segment of
            // a coalesced (GRO) receive writes its IP header over this one's ESP trailer.
            let mut k = 0;
            for (buf, r) in bufs.iter_mut().zip(got.iter()).take(n) {
                let Some(local) = self.local_of(r) else {
                    continue;
                };
                // One datagram, or (GRO) several of `segment` octets back to back.
                let step = if r.segment > 0 {
                    r.segment
                } else {
                    r.len.max(1)
                };
                let mut off = 0;
                while off < r.len {
                    let end = (off + step).min(r.len);
                    let one = Received {
                        len: end - off,
                        segment: 0,
                        ..*r
                    };
                    let rel = buf
                        .get(HEADROOM + off..HEADROOM + end)
                        .and_then(|seg| self.esp_offset(seg, one, kind));
                    if let Some(rel) = rel {
                        let plane = plane.get_or_insert_with(|| self.plane());
                        let mut pkt = PacketBuf::new(buf, HEADROOM + off + rel, HEADROOM + end);
                        // (Other outcomes are counted by the plane.)
                        match plane.open(now, &mut pkt, r.from.ip(), local) {
                            Ok(Opened::Packet { .. }) => {
                                if to_tun.len() <= k {
                                    to_tun.push(Vec::with_capacity(VIRTIO_NET_HDR_LEN + self.mtu));
                                }
                                if let Some(out) = to_tun.get_mut(k) {
                                    out.clear();
                                    out.resize(VIRTIO_NET_HDR_LEN, 0);
                                    out.extend_from_slice(pkt.data());
                                    k += 1;
                                }
                            }
                            // Parked until its SA comes: the IKE loop must learn the new
                            // deadline (when it stops waiting).
                            Ok(Opened::Parked { .. }) => parked = true,
                            _ => {}
                        }
                    }
                    off = end;
                }
            }
            if let Some(plane) = plane {
                self.signal_reports(&plane);
            }
            if parked {
                self.reports.notify_one();
            }
            // Into TUN in one go: tun-rs coalesces TCP segments (GRO) into few writes.
            if let Some(batch) = to_tun.get_mut(..k).filter(|b| !b.is_empty())
                && self
                    .tun
                    .send_multiple(&mut gro, batch, VIRTIO_NET_HDR_LEN)
                    .is_err()
            {
                self.counters
                    .tun_write_failed
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Our address a datagram arrived at: as the kernel reported it (packet info), else our
    /// first address of its family.
    fn local_of(&self, r: &Received) -> Option<IpAddr> {
        r.to.or(if r.from.is_ipv4() {
            self.local4
        } else {
            self.local6
        })
    }

    /// Where the ESP packet starts in a received datagram, or `None` if it is not ESP (IKE
    /// messages on port 4500 are forwarded to the IKE loop here).
    fn esp_offset(&self, buf: &[u8], r: Received, kind: Kind) -> Option<usize> {
        let data = buf.get(..r.len)?;
        if r.len == 0 {
            self.counters.malformed.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        match kind {
            Kind::Udp => match classify(data) {
                Ok(Udp4500::Esp(_)) => Some(0),
                Ok(Udp4500::Ike(msg)) => {
                    if opens_new_ike_sa(msg) && self.to_ike.capacity() <= KEEP_FOR_EXISTING {
                        self.counters.ike_init_shed.fetch_add(1, Ordering::Relaxed);
                        return None;
                    }
                    let sent = self.local_of(&r).map(|local| {
                        self.to_ike.try_send(IkeDatagram {
                            from: r.from,
                            to: SocketAddr::new(local, super::NAT_T_PORT),
                            bytes: msg.to_vec(),
                        })
                    });
                    if let Some(Err(_)) = sent {
                        self.counters.ike_queue_full.fetch_add(1, Ordering::Relaxed);
                    }
                    None
                }
                Ok(Udp4500::NatKeepalive) => {
                    self.counters.keepalives.fetch_add(1, Ordering::Relaxed);
                    None
                }
                Err(_) => {
                    self.counters.malformed.fetch_add(1, Ordering::Relaxed);
                    None
                }
            },
            // Raw IPv4 sockets deliver the IP header too.
            Kind::Raw4 => {
                let ihl = usize::from(data.first()? & 0x0f) * 4;
                (ihl >= 20 && ihl < r.len).then_some(ihl)
            }
            Kind::Raw6 => Some(0),
        }
    }
}

/// Largest UDP GSO send: 64 segments, under 64 KiB in all.
const GSO_MAX_SEGMENTS: usize = 64;
const GSO_MAX_BYTES: usize = 65000;

/// Sends ESP-in-UDP datagrams: runs of equal-size datagrams to one destination (TCP bulk
/// traffic is mostly that) go out as one UDP GSO send each; the rest with `sendmmsg`.
/// Returns how many datagrams the kernel took.
fn send_udp(fd: RawFd, batch: &[(&[u8], SocketAddr)]) -> usize {
    let mut sent = 0;
    let mut singles: Vec<(&[u8], SocketAddr)> = Vec::new();
    let mut joined: Vec<u8> = Vec::new();
    let mut i = 0;
    while let Some((first, dst)) = batch.get(i) {
        let size = first.len();
        // The run: same destination and size; the last one may be shorter.
        let mut j = i + 1;
        let mut total = size;
        while let Some((d, to)) = batch.get(j) {
            if to != dst
                || d.len() > size
                || j - i >= GSO_MAX_SEGMENTS
                || total + d.len() > GSO_MAX_BYTES
            {
                break;
            }
            total += d.len();
            j += 1;
            if d.len() < size {
                break;
            }
        }
        let run = batch.get(i..j).unwrap_or_default();
        match (run.len(), u16::try_from(size)) {
            (2.., Ok(segment)) => {
                joined.clear();
                for (d, _) in run {
                    joined.extend_from_slice(d);
                }
                match os::send_gso(fd, &joined, segment, dst) {
                    Ok(_) => sent += run.len(),
                    // No GSO here (old kernel, odd route): one by one.
                    Err(_) => singles.extend_from_slice(run),
                }
            }
            _ => singles.extend_from_slice(run),
        }
        i = j;
    }
    if !singles.is_empty() {
        sent += os::send_batch(fd, &singles);
    }
    sent
}

/// Which kind of ESP socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// UDP port 4500.
    Udp,
    /// Raw ESP over IPv4.
    Raw4,
    /// Raw ESP over IPv6.
    Raw6,
}
