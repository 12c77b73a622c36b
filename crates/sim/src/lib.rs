//! `meshsec-sim` (dev-only): a deterministic network simulator that runs meshsec IKE endpoints
//! on virtual time, with a hook that decides the fate of every datagram (deliver, drop,
//! duplicate, delay), and a seeded random source, so every run is reproducible (DESIGN §2, §7).
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::time::Duration;

use meshsec_crypto::rng::Random;
use meshsec_ike::{Endpoint, Event, Transmit};
pub use meshsec_types::{PeerId, Timestamp};

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

/// One simulated host.
#[derive(Debug)]
pub struct Node {
    /// Its address.
    pub addr: SocketAddr,
    /// Its IKE endpoint.
    pub endpoint: Endpoint,
    /// Every event it raised, in order.
    pub events: Vec<Event>,
}

/// Decides the fate of the `n`-th datagram sent in the run.
pub type FaultHook = Box<dyn FnMut(u64, &Transmit) -> Fate>;

/// The network and the virtual clock.
pub struct Sim {
    /// Virtual now.
    pub now: Timestamp,
    /// The hosts.
    pub nodes: Vec<Node>,
    /// One-way delay of every datagram.
    pub latency: Duration,
    in_flight: Vec<(Timestamp, u64, Transmit)>,
    sent: u64,
    fault: FaultHook,
    /// Every datagram sent, in order, with its fate.
    pub log: Vec<(Timestamp, Transmit, Fate)>,
    /// A NAPT in front of one host: (inside address, public address). Ports are mapped to
    /// port + 10000 on the public side.
    pub nat: Option<(std::net::IpAddr, std::net::IpAddr)>,
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
            in_flight: Vec::new(),
            sent: 0,
            fault: Box::new(|_, _| Fate::Deliver),
            log: Vec::new(),
            nat: None,
        }
    }

    /// Sets the fault hook.
    pub fn with_faults(mut self, hook: FaultHook) -> Sim {
        self.fault = hook;
        self
    }

    /// Moves transmissions and events out of every endpoint.
    fn collect(&mut self) {
        for node in &mut self.nodes {
            while let Some(e) = node.endpoint.poll_event() {
                node.events.push(e);
            }
            while let Some(mut t) = node.endpoint.poll_transmit() {
                if let Some((inside, public)) = self.nat
                    && t.src.ip() == inside
                {
                    t.src = std::net::SocketAddr::new(public, nat_port(t.src.port()));
                }
                let n = self.sent;
                self.sent += 1;
                let fate = (self.fault)(n, &t);
                self.log.push((self.now, t.clone(), fate));
                let at = self.now + self.latency;
                match fate {
                    Fate::Drop => {}
                    Fate::Deliver => self.in_flight.push((at, n, t)),
                    Fate::Duplicate => {
                        self.in_flight.push((at, n, t.clone()));
                        self.in_flight.push((at, n, t));
                    }
                    Fate::Delay(d) => self.in_flight.push((at + d, n, t)),
                }
            }
        }
    }

    /// Advances to the next delivery or timeout; returns false when nothing is left to do
    /// before `deadline`.
    pub fn step(&mut self, deadline: Timestamp) -> bool {
        self.collect();
        let next_delivery = self.in_flight.iter().map(|(at, n, _)| (*at, *n)).min();
        let next_timeout = self
            .nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| n.endpoint.poll_timeout().map(|t| (t, i)))
            .min();
        match (next_delivery, next_timeout) {
            (Some((at, n)), t) if t.is_none_or(|(tt, _)| at <= tt) && at <= deadline => {
                let i = self
                    .in_flight
                    .iter()
                    .position(|(a, m, _)| *a == at && *m == n)
                    .unwrap_or(0);
                let (_, _, mut t) = self.in_flight.swap_remove(i);
                self.now = self.now.max(at);
                if let Some((inside, public)) = self.nat
                    && t.dst.ip() == public
                {
                    t.dst = std::net::SocketAddr::new(inside, t.dst.port().wrapping_sub(10_000));
                }
                // Hosts are found by IP: the port says which socket (500, or 4500 after NAT-T).
                if let Some(node) = self.nodes.iter_mut().find(|x| x.addr.ip() == t.dst.ip()) {
                    node.endpoint
                        .handle_datagram(self.now, t.src, t.dst, &t.payload);
                }
                true
            }
            (_, Some((at, i))) if at <= deadline => {
                self.now = self.now.max(at);
                if let Some(node) = self.nodes.get_mut(i) {
                    node.endpoint.handle_timeout(self.now);
                }
                true
            }
            _ => {
                self.collect();
                false
            }
        }
    }

    /// Runs until nothing is pending or `deadline` (virtual) is reached.
    pub fn run(&mut self, deadline: Timestamp) {
        let mut steps = 0u32;
        while self.step(deadline) && steps < 100_000 {
            steps += 1;
        }
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
