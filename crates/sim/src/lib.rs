//! `meshsec-sim` (dev-only): a deterministic network simulator (DESIGN §2, §7). Each host is
//! what the daemon runs — a [`meshsec_node::Node`] over a real [`DataPlane`] — on virtual
//! time; the network carries its IKE datagrams and the ESP its data plane seals, with a hook
//! that decides the fate of every datagram (deliver, drop, duplicate, delay), an optional
//! NAT, and a seeded random source, so every run is reproducible.
//!
//! The simulator plays the daemon's I/O: it hands datagrams between hosts, calls
//! `handle_timeout` when a host's deadline is due, seals the packets a test sends through a
//! host's data plane and opens what arrives (the daemon's data-path threads), and records
//! what each host's node reports.
#![forbid(unsafe_code)]

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use meshsec_crypto::rng::Random;
use meshsec_esp::{DataPlane, Encap, HEADROOM, Opened, PacketBuf, SealOutcome, TAILROOM};
use meshsec_ike::{Endpoint, Event, Transmit, TransmitKind};
use meshsec_node::{Node as HostNode, NodeEvent, OsAction};
pub use meshsec_types::{InboundSpi, OutboundSpi, PeerId, Timestamp};
use meshsec_wire::udp_encap::{NON_ESP_MARKER, Udp4500, classify};

/// A reproducible random source (SplitMix64). Not for production: simulation only.
#[derive(Debug, Clone)]
pub struct SeededRandom(u64);

impl SeededRandom {
    /// A source seeded with `seed`.
    pub fn new(seed: u64) -> SeededRandom {
        SeededRandom(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

impl Random for SeededRandom {
    fn fill(&mut self, out: &mut [u8]) -> meshsec_crypto::Result<()> {
        for chunk in out.chunks_mut(8) {
            let v = self.next_u64().to_be_bytes();
            chunk.copy_from_slice(v.get(..chunk.len()).unwrap_or_default());
        }
        Ok(())
    }
}

/// What happens to one datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Delivered after the base latency.
    Deliver,
    /// Lost.
    Drop,
    /// Delivered twice.
    Duplicate,
    /// Delivered after the base latency plus this.
    Delay(Duration),
}

/// One simulated host: its node (IKE engine, node layer, data plane) and what it reported.
pub struct Node {
    /// Its address (IKE port included).
    pub addr: SocketAddr,
    /// The host as the daemon runs it.
    pub host: HostNode<DataPlane>,
    /// Every IKE event its engine raised, in order (after the node acted on it).
    pub events: Vec<Event>,
    /// Every other lifecycle transition of its node (DPD deaths, restarts, healing).
    pub node_events: Vec<NodeEvent>,
    /// Inner packets its data plane opened (what its applications received), in order.
    pub received: Vec<Vec<u8>>,
    /// NAT keepalives it received.
    pub keepalives: u64,
    /// Times its deadline came and `handle_timeout` ran (its wakeups).
    pub wakeups: u64,
}

impl core::fmt::Debug for Node {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Node")
            .field("addr", &self.addr)
            .field("host", &self.host)
            .finish()
    }
}

impl Node {
    /// A host at `addr` running `host`.
    pub fn new(addr: SocketAddr, host: HostNode<DataPlane>) -> Node {
        Node {
            addr,
            host,
            events: Vec::new(),
            node_events: Vec::new(),
            received: Vec::new(),
            keepalives: 0,
            wakeups: 0,
        }
    }

    /// Its IKE engine.
    pub fn ike(&self) -> &Endpoint {
        self.host.ike()
    }

    /// Its IKE engine, to drive directly (the node applies what follows at its next call).
    pub fn ike_mut(&mut self) -> &mut Endpoint {
        self.host.ike_mut()
    }

    /// Its data plane.
    pub fn plane(&self) -> &DataPlane {
        self.host.backend()
    }
}

/// Decides the fate of the `n`-th IKE datagram sent in the run.
pub type FaultHook = Box<dyn FnMut(u64, &Transmit) -> Fate>;

/// An ESP datagram on the wire (plain ESP, or ESP in UDP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EspDatagram {
    /// From (port 0 for plain ESP).
    pub src: SocketAddr,
    /// To (port 0 for plain ESP).
    pub dst: SocketAddr,
    /// The ESP packet.
    pub esp: Vec<u8>,
}

/// Decides the fate of the `n`-th ESP datagram sent in the run.
pub type EspFaultHook = Box<dyn FnMut(u64, &EspDatagram) -> Fate>;

/// Something on the wire.
#[derive(Debug, Clone)]
enum Wire {
    Ike(Transmit),
    Esp(EspDatagram),
}

impl Wire {
    fn src_dst(&mut self) -> (&mut SocketAddr, &mut SocketAddr) {
        match self {
            Wire::Ike(t) => (&mut t.src, &mut t.dst),
            Wire::Esp(e) => (&mut e.src, &mut e.dst),
        }
    }
}

/// A datagram on its way, ordered by arrival time, then by send order (`n`; both copies of
/// a duplicate share it), then by insertion (`seq`).
#[derive(Debug)]
struct Flight {
    at: Timestamp,
    n: u64,
    seq: u64,
    w: Wire,
}

impl PartialEq for Flight {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.n, self.seq) == (other.at, other.n, other.seq)
    }
}

impl Eq for Flight {}

impl PartialOrd for Flight {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Flight {
    /// Reversed, so that the standard (max-)heap yields the earliest first.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (other.at, other.n, other.seq).cmp(&(self.at, self.n, self.seq))
    }
}

/// The network and the virtual clock.
pub struct Sim {
    /// Virtual now.
    pub now: Timestamp,
    /// The hosts.
    pub nodes: Vec<Node>,
    /// One-way delay of every datagram.
    pub latency: Duration,
    in_flight: std::collections::BinaryHeap<Flight>,
    /// Datagrams ever queued (orders equal arrivals).
    queued: u64,
    sent: u64,
    esp_sent: u64,
    fault: FaultHook,
    esp_fault: EspFaultHook,
    /// Every IKE datagram sent, in order, with its fate.
    pub log: Vec<(Timestamp, Transmit, Fate)>,
    /// A NAPT in front of one host: (inside address, public address). Ports are mapped to
    /// port + 10000 on the public side.
    pub nat: Option<(IpAddr, IpAddr)>,
    /// While set, every datagram between any two hosts is lost (a netsplit).
    pub partitioned: bool,
}

/// The port a NAT maps an inside port to.
pub const fn nat_port(inside: u16) -> u16 {
    inside.wrapping_add(10_000)
}

impl core::fmt::Debug for Sim {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Sim")
            .field("now", &self.now)
            .field("nodes", &self.nodes)
            .finish()
    }
}

impl Sim {
    /// A network of `nodes` with 10 ms latency and no faults.
    pub fn new(nodes: Vec<Node>) -> Sim {
        Sim {
            now: Timestamp::ZERO,
            nodes,
            latency: Duration::from_millis(10),
            in_flight: std::collections::BinaryHeap::new(),
            queued: 0,
            sent: 0,
            esp_sent: 0,
            fault: Box::new(|_, _| Fate::Deliver),
            esp_fault: Box::new(|_, _| Fate::Deliver),
            log: Vec::new(),
            nat: None,
            partitioned: false,
        }
    }

    /// Sets the fault hook of IKE datagrams.
    pub fn with_faults(mut self, hook: FaultHook) -> Sim {
        self.fault = hook;
        self
    }

    /// Sets the fault hook of ESP datagrams.
    pub fn set_esp_faults(&mut self, hook: EspFaultHook) {
        self.esp_fault = hook;
    }

    fn send(&mut self, mut w: Wire, fate: Fate) {
        if let Some((inside, public)) = self.nat {
            let (src, _) = w.src_dst();
            if src.ip() == inside {
                *src = SocketAddr::new(public, nat_port(src.port()));
            }
        }
        let fate = if self.partitioned { Fate::Drop } else { fate };
        let n = self.sent + self.esp_sent;
        let at = self.now + self.latency;
        match fate {
            Fate::Drop => {}
            Fate::Deliver => self.queue(at, n, w),
            Fate::Duplicate => {
                self.queue(at, n, w.clone());
                self.queue(at, n, w);
            }
            Fate::Delay(d) => self.queue(at + d, n, w),
        }
    }

    fn queue(&mut self, at: Timestamp, n: u64, w: Wire) {
        self.queued += 1;
        self.in_flight.push(Flight {
            at,
            n,
            seq: self.queued,
            w,
        });
    }

    /// Moves transmissions and reports out of every host.
    fn collect(&mut self) {
        for i in 0..self.nodes.len() {
            let mut out = Vec::new();
            if let Some(node) = self.nodes.get_mut(i) {
                while let Some(t) = node.host.poll_transmit() {
                    out.push(t);
                }
                while let Some(a) = node.host.poll_os() {
                    if let OsAction::Deliver(packets) = a {
                        node.received.extend(packets);
                    }
                }
                while let Some(e) = node.host.poll_event() {
                    match e {
                        NodeEvent::Ike(e) => node.events.push(*e),
                        other => node.node_events.push(other),
                    }
                }
            }
            for t in out {
                if t.kind == TransmitKind::NatKeepalive {
                    self.send(Wire::Ike(t), Fate::Deliver);
                    continue;
                }
                let n = self.sent;
                self.sent += 1;
                let fate = (self.fault)(n, &t);
                self.log.push((self.now, t.clone(), fate));
                self.send(Wire::Ike(t), fate);
            }
        }
    }

    /// Host `i` sends the inner IP packet `inner` through its data plane (as the daemon's
    /// TUN thread does); returns what sealing it gave.
    pub fn send_inner(
        &mut self,
        i: usize,
        inner: &[u8],
    ) -> Result<SealOutcome, meshsec_esp::DropReason> {
        let now = self.now;
        let Some(node) = self.nodes.get_mut(i) else {
            return Err(meshsec_esp::DropReason::NoPolicy);
        };
        let mut buf = vec![0u8; HEADROOM + inner.len() + TAILROOM];
        if let Some(b) = buf.get_mut(HEADROOM..HEADROOM + inner.len()) {
            b.copy_from_slice(inner);
        }
        let mut pkt = PacketBuf::new(&mut buf, HEADROOM, HEADROOM + inner.len());
        let outcome = node.host.backend_mut().seal(now, &mut pkt);
        node.host.handle_backend_reports(now);
        if let Ok(SealOutcome::Sealed(s)) = outcome {
            let (lport, rport) = match s.encap {
                Encap::Udp {
                    local_port,
                    remote_port,
                } => (local_port, remote_port),
                Encap::None => (0, 0),
            };
            let d = EspDatagram {
                src: SocketAddr::new(s.local, lport),
                dst: SocketAddr::new(s.remote, rport),
                esp: pkt.data().to_vec(),
            };
            let n = self.esp_sent;
            self.esp_sent += 1;
            let fate = (self.esp_fault)(n, &d);
            self.send(Wire::Esp(d), fate);
        }
        self.collect();
        outcome
    }

    fn deliver(&mut self, mut w: Wire) {
        let now = self.now;
        if let Some((inside, public)) = self.nat {
            let (_, dst) = w.src_dst();
            if dst.ip() == public {
                *dst = SocketAddr::new(inside, dst.port().wrapping_sub(10_000));
            }
        }
        let dst_ip = w.src_dst().1.ip();
        // Hosts are found by IP: the port says which socket (500, or 4500 after NAT-T).
        let Some(node) = self.nodes.iter_mut().find(|x| x.addr.ip() == dst_ip) else {
            return;
        };
        match w {
            Wire::Ike(t) if t.kind == TransmitKind::NatKeepalive => node.keepalives += 1,
            Wire::Ike(t) => {
                // On port 4500 IKE travels behind the non-ESP marker (RFC 3948): frame it
                // and take it apart again as the daemon's port-4500 socket does.
                if t.dst.port() == meshsec_types::ports::NAT_T_PORT {
                    let mut framed = NON_ESP_MARKER.to_vec();
                    framed.extend_from_slice(&t.payload);
                    if let Ok(Udp4500::Ike(msg)) = classify(&framed) {
                        node.host.handle_ike_datagram(now, t.src, t.dst, msg);
                    }
                } else {
                    node.host.handle_ike_datagram(now, t.src, t.dst, &t.payload);
                }
            }
            Wire::Esp(mut d) => {
                let len = d.esp.len();
                let mut buf = vec![0u8; HEADROOM];
                buf.append(&mut d.esp);
                buf.resize(HEADROOM + len + TAILROOM, 0);
                let mut pkt = PacketBuf::new(&mut buf, HEADROOM, HEADROOM + len);
                let opened = node
                    .host
                    .backend_mut()
                    .open(now, &mut pkt, d.src.ip(), d.dst.ip());
                if let Ok(Opened::Packet { .. }) = opened {
                    node.received.push(pkt.data().to_vec());
                }
                node.host.handle_backend_reports(now);
            }
        }
    }

    /// Advances to the next delivery or timeout; returns false when nothing is left to do
    /// before `deadline`.
    pub fn step(&mut self, deadline: Timestamp) -> bool {
        self.collect();
        let next_delivery = self.in_flight.peek().map(|f| (f.at, f.n));
        let next_timeout = self
            .nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| n.host.poll_timeout().map(|t| (t, i)))
            .min();
        let stepped = match (next_delivery, next_timeout) {
            (Some((at, _)), t) if t.is_none_or(|(tt, _)| at <= tt) && at <= deadline => {
                if let Some(f) = self.in_flight.pop() {
                    self.now = self.now.max(at);
                    self.deliver(f.w);
                }
                true
            }
            (_, Some((at, i))) if at <= deadline => {
                self.now = self.now.max(at);
                let now = self.now;
                if let Some(node) = self.nodes.get_mut(i) {
                    node.wakeups += 1;
                    node.host.handle_timeout(now);
                }
                true
            }
            _ => false,
        };
        self.collect();
        stepped
    }

    /// Runs until nothing is pending or `deadline` (virtual) is reached (at most 100,000
    /// steps: a test that loops forever fails instead of hanging).
    pub fn run(&mut self, deadline: Timestamp) {
        self.run_steps(deadline, 100_000);
    }

    /// [`Sim::run`] with another step limit (large meshes); returns the steps taken.
    pub fn run_steps(&mut self, deadline: Timestamp, limit: u64) -> u64 {
        let mut steps = 0u64;
        while steps < limit && self.step(deadline) {
            steps += 1;
        }
        steps
    }
}

/// Hands out scripted byte strings (an SPI, a nonce...) for the `fill` calls whose length
/// matches the next one queued, and seeded random bytes otherwise — so a test can make an
/// endpoint pick exactly the values a recorded handshake used.
#[derive(Debug, Clone)]
pub struct ScriptedRandom {
    queue: std::collections::VecDeque<Vec<u8>>,
    fallback: SeededRandom,
}

impl ScriptedRandom {
    /// Scripts `values`, in the order the endpoint will ask for them.
    pub fn new(values: Vec<Vec<u8>>, seed: u64) -> ScriptedRandom {
        ScriptedRandom {
            queue: values.into(),
            fallback: SeededRandom::new(seed),
        }
    }
}

impl Random for ScriptedRandom {
    fn fill(&mut self, out: &mut [u8]) -> meshsec_crypto::Result<()> {
        if self.queue.front().is_some_and(|v| v.len() == out.len())
            && let Some(v) = self.queue.pop_front()
        {
            out.copy_from_slice(&v);
            return Ok(());
        }
        self.fallback.fill(out)
    }
}
