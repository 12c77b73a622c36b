//! `meshsec run`: the daemon (DESIGN.md §1, §5). It owns the sockets, the TUN device, the
//! routes, the timers and the clock, and drives the two sans-IO engines: the IKE
//! [`Endpoint`] on this (tokio, single-threaded) loop and the ESP [`DataPlane`] on the
//! data-path threads ([`datapath`]), which never wait for IKE work.
//!
//! The loop, each turn: take one input (an IKE datagram on port 500, something from the data
//! path — IKE on port 4500 or an ESP event —, a control command, a timer or a signal), feed it
//! to the engine, then drain the engine: datagrams out, events applied (SAs installed in or
//! removed from the data plane, retries scheduled, failures recorded and logged).

mod control;
pub mod datapath;
mod liveness;
pub mod net;
pub mod netlink;
mod os;
mod peers;
mod status;

use meshsec_types::{InboundSpi, OutboundSpi, PeerId, Timestamp};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use meshsec_crypto::Provider;
use meshsec_crypto::rng::{Random, SystemRandom};
use meshsec_esp::{DataPlane, EspEvent};
use meshsec_ike::{ChildMode, Endpoint, EndpointConfig, Event, State, Transmit};
use meshsec_wire::udp_encap::NON_ESP_MARKER;
use tokio::sync::mpsc;

use crate::config::{Config, Start};
use datapath::{DataPath, ToIke};
use peers::PeerRuntime;

/// IKE's port.
pub const IKE_PORT: u16 = 500;
/// NAT-T port (RFC 3948).
pub const NAT_T_PORT: u16 = 4500;
/// Longest time the loop sleeps without looking at timers.
const TICK: Duration = Duration::from_secs(1);
/// How long a shutdown waits for peers to acknowledge our Deletes.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(1500);
/// How long a deleted CHILD SA's inbound half still accepts packets: ESP sent just before
/// the peer switched to the new SA may still be in a socket queue (or reordered) when the
/// Delete is processed on the IKE thread.
const INBOUND_GRACE: Duration = Duration::from_secs(2);

/// Runs the daemon with the configuration at `path` until SIGINT/SIGTERM.
pub fn run(path: &Path) -> Result<()> {
    let cfg = Config::load(path).map_err(|e| anyhow::anyhow!("{e}"))?;
    for w in &cfg.warnings {
        tracing::warn!("{w}");
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async move {
        let mut d = Daemon::start(cfg).await?;
        d.run().await
    })
}

/// A control command with the channel its answer goes back on.
type ControlMsg = (
    crate::control::Command,
    tokio::sync::oneshot::Sender<crate::control::Response>,
);

/// The daemon's state (the IKE loop's side).
pub struct Daemon {
    cfg: Config,
    ike: Endpoint,
    path: Arc<DataPath>,
    ike4: Option<tokio::net::UdpSocket>,
    ike6: Option<tokio::net::UdpSocket>,
    /// Port-4500 sockets for sending IKE (clones of the data path's).
    natt4: Option<std::net::UdpSocket>,
    natt6: Option<std::net::UdpSocket>,
    netlink: netlink::Netlink,
    tun_index: u32,
    /// Indexed by the engine's peer id; `None` once removed by a reload.
    peers: Vec<Option<PeerRuntime>>,
    from_path: mpsc::UnboundedReceiver<ToIke>,
    control: mpsc::Receiver<ControlMsg>,
    rng: SystemRandom,
    /// Inbound SAs of deleted CHILD SAs, removed from the data plane at the given time.
    retiring: Vec<(Timestamp, InboundSpi)>,
}

/// One input of the loop.
enum Input {
    Udp(std::io::Result<(usize, SocketAddr)>, bool),
    Path(ToIke),
    Control(ControlMsg),
    Timer,
    Shutdown(&'static str),
}

async fn recv_opt(
    s: &Option<tokio::net::UdpSocket>,
    buf: &mut [u8],
) -> std::io::Result<(usize, SocketAddr)> {
    match s {
        Some(s) => s.recv_from(buf).await,
        None => std::future::pending().await,
    }
}

impl Daemon {
    /// Opens everything and starts the data path; initiates `start = "always"` peers.
    pub async fn start(cfg: Config) -> Result<Daemon> {
        let epoch = Instant::now();
        let transport: Vec<&str> = cfg
            .peers
            .iter()
            .filter(|p| p.mode == ChildMode::Transport)
            .map(|p| p.name.as_str())
            .collect();
        if !transport.is_empty() {
            bail!(
                "{}: peer(s) {} use mode = \"transport\", which the daemon cannot route yet \
                 (host-to-host protection needs policy routing with a firewall mark, see \
                 DESIGN.md §5); use mode = \"tunnel\" with the hosts' addresses as selectors",
                cfg.path.display(),
                transport.join(", ")
            );
        }
        let local4 = cfg.node.addresses.iter().copied().find(IpAddr::is_ipv4);
        let local6 = cfg.node.addresses.iter().copied().find(IpAddr::is_ipv6);
        let (ike_sockets, esp_sockets) = net::open(&cfg.node.addresses, IKE_PORT, NAT_T_PORT)?;
        let natt4 = esp_sockets
            .udp4
            .as_ref()
            .map(|s| s.try_clone())
            .transpose()?;
        let natt6 = esp_sockets
            .udp6
            .as_ref()
            .map(|s| s.try_clone())
            .transpose()?;
        let tun = netlink::create_tun(&cfg.node.tun, cfg.node.mtu)?;
        let netlink = netlink::Netlink::new()?;
        let tun_index = netlink.link_index(&cfg.node.tun).await?;
        let (to_ike, from_path) = mpsc::unbounded_channel();
        let plane = DataPlane::new(Box::new(SystemRandom::new()));
        let path = Arc::new(DataPath::new(
            plane,
            epoch,
            tun,
            esp_sockets,
            (local4, local6),
            usize::from(cfg.node.mtu),
            to_ike,
        ));
        path.spawn().context("cannot start the data path threads")?;
        let local = cfg
            .node
            .addresses
            .first()
            .copied()
            .context("no node address")?;
        let peer_cfgs = (0..cfg.peers.len())
            .filter_map(|i| cfg.peer_config(i))
            .collect();
        let mut ike_config = EndpointConfig::new(SocketAddr::new(local, IKE_PORT));
        ike_config.force_udp_encap = cfg.node.esp_encap == crate::config::EspEncap::Udp;
        let ike = Endpoint::new(
            ike_config,
            peer_cfgs,
            Box::new(SystemRandom::new()),
            Provider::Real,
        );
        let control = control::listen(&cfg.node.control_socket)?;
        let mut d = Daemon {
            peers: cfg
                .peers
                .iter()
                .cloned()
                .map(|p| Some(PeerRuntime::new(p)))
                .collect(),
            cfg,
            ike,
            path,
            ike4: ike_sockets.v4,
            ike6: ike_sockets.v6,
            natt4,
            natt6,
            netlink,
            tun_index,
            from_path,
            control,
            rng: SystemRandom::new(),
            retiring: Vec::new(),
        };
        for id in (0..d.peers.len()).filter_map(PeerId::from_index) {
            d.configure_peer(id).await;
        }
        tracing::info!(
            "meshsec {} node {} ({}) up: TUN {} (mtu {}), {} peer(s), control socket {}",
            env!("CARGO_PKG_VERSION"),
            d.cfg.node.name,
            d.cfg.node.identity,
            d.cfg.node.tun,
            d.cfg.node.mtu,
            d.peers.len(),
            d.cfg.node.control_socket.display()
        );
        Ok(d)
    }

    fn now(&self) -> Timestamp {
        self.path.now()
    }

    fn peer(&mut self, id: PeerId) -> Option<&mut PeerRuntime> {
        self.peers.get_mut(id.index()).and_then(Option::as_mut)
    }

    fn peer_name(&self, id: PeerId) -> String {
        self.peers
            .get(id.index())
            .and_then(Option::as_ref)
            .map_or_else(|| format!("#{id}"), |p| p.cfg.name.clone())
    }

    /// Installs policies and routes for peer `id` and starts it as configured.
    async fn configure_peer(&mut self, id: PeerId) {
        let host = self.netlink.host_addresses().await.unwrap_or_default();
        let slot = id;
        let Some(p) = self.peers.get(id.index()).and_then(Option::as_ref) else {
            return;
        };
        let policies = peers::policies(&p.cfg, slot);
        let mut routes = Vec::new();
        for ts in &p.cfg.remote_ts {
            let src = peers::route_source(&host, &p.cfg.local_ts, ts.start.is_ipv4());
            for r in netlink::prefixes(ts) {
                routes.push((r, src));
            }
        }
        let ids: Vec<_> = {
            let mut plane = self.path.plane();
            policies
                .into_iter()
                .map(|pol| plane.add_policy(pol))
                .collect()
        };
        let mut installed = Vec::new();
        for (r, src) in routes {
            match self.netlink.add_route(self.tun_index, r, src).await {
                Ok(()) => installed.push(r),
                Err(e) => tracing::error!("peer {}: {e:#}", self.peer_name(id)),
            }
        }
        let now = self.now();
        if let Some(p) = self.peer(id) {
            p.policies = ids;
            p.routes = installed;
            if p.cfg.start == Start::Always {
                p.next_attempt = Some(now);
            }
        }
    }

    /// Removes peer `id`'s policies and routes (its SAs go with the engine's events).
    async fn unconfigure_peer(&mut self, id: PeerId) {
        let Some(p) = self.peers.get(id.index()).and_then(Option::as_ref) else {
            return;
        };
        let (policies, routes) = (p.policies.clone(), p.routes.clone());
        {
            let mut plane = self.path.plane();
            for pol in policies {
                plane.remove_policy(pol);
            }
        }
        for r in routes {
            self.netlink.del_route(self.tun_index, r).await;
        }
    }

    /// Starts an IKE SA with `id` unless one exists or is being set up.
    fn try_initiate(&mut self, id: PeerId) {
        let busy = self.ike.ike_sas().iter().any(|s| s.peer == Some(id));
        let now = self.now();
        let Some(p) = self.peer(id) else { return };
        p.next_attempt = None;
        if busy || p.admin_down {
            return;
        }
        p.attempt_started = Some(now);
        let name = p.cfg.name.clone();
        if let Err(e) = self.ike.initiate(now, id) {
            tracing::error!("peer {name}: cannot initiate: {e}");
            if let Some(p) = self.peer(id) {
                p.schedule_retry(now);
            }
        } else {
            tracing::info!("peer {name}: initiating IKE SA");
        }
    }

    /// The main loop.
    pub async fn run(&mut self) -> Result<()> {
        let mut buf4 = vec![0u8; 65536];
        let mut buf6 = vec![0u8; 65536];
        let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("cannot handle SIGTERM")?;
        loop {
            self.on_timers();
            self.drain();
            let sleep = self.next_deadline().duration_since(self.now());
            let input = tokio::select! {
                r = recv_opt(&self.ike4, &mut buf4) => Input::Udp(r, true),
                r = recv_opt(&self.ike6, &mut buf6) => Input::Udp(r, false),
                Some(m) = self.from_path.recv() => Input::Path(m),
                Some(c) = self.control.recv() => Input::Control(c),
                () = tokio::time::sleep(sleep) => Input::Timer,
                _ = tokio::signal::ctrl_c() => Input::Shutdown("SIGINT"),
                _ = sigterm.recv() => Input::Shutdown("SIGTERM"),
            };
            match input {
                Input::Udp(Ok((n, from)), v4) => {
                    let buf = if v4 { &buf4 } else { &buf6 };
                    if let Some(bytes) = buf.get(..n) {
                        let to = self.local_addr(from.is_ipv4(), IKE_PORT);
                        let now = self.now();
                        self.ike.handle_datagram(now, from, to, bytes);
                    }
                }
                Input::Udp(Err(e), _) => tracing::debug!("IKE receive error: {e}"),
                Input::Path(ToIke::Ike { from, to, bytes }) => {
                    let now = self.now();
                    self.ike.handle_datagram(now, from, to, &bytes);
                }
                Input::Path(ToIke::Esp(e)) => self.on_esp_event(e),
                Input::Path(ToIke::UnknownSpi { from, spi }) => self.on_unknown_spi(from, spi),
                Input::Control((cmd, reply)) => {
                    let resp = self.on_control(cmd).await;
                    let _ = reply.send(resp);
                }
                Input::Timer => {}
                Input::Shutdown(sig) => {
                    tracing::info!("{sig}: deleting SAs and stopping");
                    self.shutdown().await;
                    return Ok(());
                }
            }
        }
    }

    fn local_addr(&self, v4: bool, port: u16) -> SocketAddr {
        let ip = if v4 {
            self.path.local4
        } else {
            self.path.local6
        };
        SocketAddr::new(
            ip.unwrap_or(if v4 {
                IpAddr::from([0, 0, 0, 0])
            } else {
                IpAddr::from([0u16; 8])
            }),
            port,
        )
    }

    fn next_deadline(&self) -> Timestamp {
        let now = self.now();
        let mut t = now + TICK;
        if let Some(x) = self.ike.poll_timeout() {
            t = t.min(x);
        }
        for p in self.peers.iter().flatten() {
            if let Some(x) = p.next_attempt {
                t = t.min(x);
            }
        }
        if let Some(x) = self.retiring.iter().map(|r| r.0).min() {
            t = t.min(x);
        }
        t.max(now)
    }

    fn on_timers(&mut self) {
        let now = self.now();
        self.ike.handle_timeout(now);
        self.dpd_tick(now);
        self.nat_keepalive_tick(now);
        {
            let mut plane = self.path.plane();
            self.retiring.retain(|(at, spi)| {
                if *at <= now {
                    plane.remove_inbound(*spi);
                    false
                } else {
                    true
                }
            });
            plane.handle_timeout(now);
            while let Some(e) = plane.poll_event() {
                drop(plane);
                self.on_esp_event(e);
                plane = self.path.plane();
            }
        }
        let due: Vec<PeerId> = self
            .peers
            .iter()
            .enumerate()
            .filter_map(|(i, p)| {
                p.as_ref()
                    .and_then(|p| p.next_attempt)
                    .is_some_and(|t| t <= now)
                    .then_some(i)
                    .and_then(PeerId::from_index)
            })
            .collect();
        for id in due {
            self.try_initiate(id);
        }
    }

    fn on_esp_event(&mut self, e: EspEvent) {
        match e {
            EspEvent::Acquire { peer: id, packet } => {
                let Some(p) = self.peers.get(id.index()).and_then(Option::as_ref) else {
                    return;
                };
                tracing::info!(
                    "peer {}: traffic to {} needs an SA (acquire)",
                    p.cfg.name,
                    packet.dst
                );
                if self.ike.established_with(id) > 0 {
                    // The IKE SA is up but the data plane has no outbound SA: a half was
                    // lost here.
                    self.heal_missing_outbound(id);
                } else if p.cfg.start != Start::Passive {
                    self.try_initiate(id);
                }
            }
            EspEvent::SoftExpired { sa, peer, .. } => {
                // A byte, packet or AEAD usage limit: time to rekey (time limits are the
                // engine's own).
                tracing::info!(
                    "peer {}: SA {sa:?} reached its soft limit ({e:?}): rekeying",
                    self.peer_name(peer)
                );
                let now = self.now();
                let _ = self.ike.rekey_child_sa(now, peer);
            }
            EspEvent::HardExpired { sa, peer, .. } => {
                tracing::warn!(
                    "peer {}: SA {sa:?} reached a hard limit ({e:?}) before it was rekeyed",
                    self.peer_name(peer)
                );
            }
        }
    }

    /// Applies the engine's events, then sends what it has to send, until both are empty.
    /// Events first: a new inbound SA must be in the data plane before the answer that lets
    /// the peer use it leaves (make-before-break).
    fn drain(&mut self) {
        loop {
            let mut idle = true;
            while let Some(e) = self.ike.poll_event() {
                idle = false;
                self.on_event(e);
            }
            while let Some(t) = self.ike.poll_transmit() {
                idle = false;
                self.send_ike(&t);
            }
            if idle {
                return;
            }
        }
    }

    fn send_ike(&self, t: &Transmit) {
        let r = if t.src.port() == NAT_T_PORT {
            // RFC 3948: IKE on port 4500 starts with the non-ESP marker.
            let mut framed = Vec::with_capacity(t.payload.len() + 4);
            framed.extend_from_slice(&NON_ESP_MARKER);
            framed.extend_from_slice(&t.payload);
            let s = if t.dst.is_ipv4() {
                &self.natt4
            } else {
                &self.natt6
            };
            s.as_ref().map(|s| s.send_to(&framed, t.dst))
        } else {
            let s = if t.dst.is_ipv4() {
                &self.ike4
            } else {
                &self.ike6
            };
            s.as_ref().map(|s| s.try_send_to(&t.payload, t.dst))
        };
        match r {
            Some(Ok(_)) => {}
            Some(Err(e)) => tracing::debug!("IKE send to {} failed: {e}", t.dst),
            None => tracing::warn!(
                "no socket for IKE to {} (no local address of its family)",
                t.dst
            ),
        }
    }

    fn on_event(&mut self, e: Event) {
        let now = self.now();
        match e {
            Event::IkeSaEstablished {
                peer,
                local_spi,
                nat_detected,
            } => {
                let name = self.peer_name(peer);
                if let Some(p) = self.peer(peer) {
                    p.last_handshake = Some(now);
                    p.last_heard = now;
                    p.dpd_sent = None;
                    p.dead = false;
                    // A collision brings up two SAs; the first one ends our attempt.
                    if let Some(s) = p.attempt_started.take() {
                        p.handshake_time = Some(now.duration_since(s));
                    }
                    p.backoff = peers::FIRST_BACKOFF;
                    p.next_attempt = None;
                    p.last_failure = None;
                }
                tracing::info!(
                    "peer {name}: IKE SA {local_spi} established{}",
                    if nat_detected {
                        " (NAT detected: ESP in UDP)"
                    } else {
                        ""
                    }
                );
            }
            Event::InstallChildSa(c) => self.install_child(&c),
            Event::DeleteChildSa {
                peer,
                inbound_spi,
                outbound_spi,
            } => self.remove_child(peer, inbound_spi, outbound_spi),
            Event::IkeSaDeleted {
                peer,
                local_spi,
                reason,
            } => {
                tracing::info!(
                    "peer {}: IKE SA {local_spi} deleted: {reason}",
                    self.peer_name(peer)
                );
                self.maybe_restart(peer);
            }
            Event::Failed { peer, failure } => match peer {
                Some(id) => {
                    tracing::warn!("peer {}: {failure}", self.peer_name(id));
                    if let Some(p) = self.peer(id) {
                        p.last_failure = Some(failure.to_string());
                        p.attempt_started = None;
                    }
                    // No answer is an outage: retry soon. A refusal is a mismatch: back off.
                    let unanswered = matches!(failure, meshsec_ike::Failure::Timeout { .. });
                    self.maybe_restart_after(id, unanswered);
                }
                None => tracing::warn!("unknown peer: {failure}"),
            },
            Event::IkeSaRekeyed {
                peer,
                old_spi,
                new_spi,
            } => {
                tracing::info!(
                    "peer {}: IKE SA {old_spi} rekeyed, now {new_spi}",
                    self.peer_name(peer)
                );
                if let Some(p) = self.peer(peer) {
                    p.ike_rekeys += 1;
                }
            }
            Event::IkeSaReauthenticated {
                peer,
                old_spi,
                new_spi,
            } => {
                tracing::info!(
                    "peer {}: IKE SA {old_spi} reauthenticated, replaced by {new_spi}",
                    self.peer_name(peer)
                );
                if let Some(p) = self.peer(peer) {
                    p.reauths += 1;
                }
            }
            Event::RekeyCollision { peer, ike, won } => {
                tracing::info!(
                    "peer {}: {} rekey collision (both ends rekeyed at once): {}",
                    self.peer_name(peer),
                    if ike { "IKE SA" } else { "CHILD SA" },
                    if won {
                        "ours survives"
                    } else {
                        "the peer's survives"
                    }
                );
                if let Some(p) = self.peer(peer) {
                    p.rekey_collisions += 1;
                }
            }
            Event::HealingChildSa {
                peer,
                inbound_spi,
                outbound_spi,
            } => {
                tracing::warn!(
                    "peer {}: it lost the inbound half of CHILD SA out {outbound_spi} \
                     (INVALID_SPI): replacing in {inbound_spi}",
                    self.peer_name(peer)
                );
                if let Some(p) = self.peer(peer) {
                    p.heals += 1;
                    p.invalid_spi_received += 1;
                }
            }
            Event::OutboundRetired { peer, outbound_spi } => {
                self.path.plane().remove_outbound_spi(peer, outbound_spi);
            }
            Event::PeerAlive { peer } => {
                if let Some(p) = self.peer(peer) {
                    p.last_heard = now;
                    p.last_ike_alive = now;
                    p.dpd_sent = None;
                }
            }
        }
    }

    /// After an SA went away: `always` peers are re-initiated (with backoff) unless another
    /// IKE SA with them is up or being set up; after a death, `dpd_action` decides.
    fn maybe_restart(&mut self, id: PeerId) {
        self.maybe_restart_after(id, false);
    }

    fn maybe_restart_after(&mut self, id: PeerId, unanswered: bool) {
        let now = self.now();
        let other = self
            .ike
            .ike_sas()
            .iter()
            .any(|s| s.peer == Some(id) && s.state != State::ExpectAuthRequest);
        let Some(p) = self.peer(id) else { return };
        let wanted = if p.dead {
            p.cfg.dpd_action == crate::config::DpdAction::Restart
        } else {
            p.cfg.start == Start::Always
        };
        if !wanted || p.admin_down || other || p.next_attempt.is_some() {
            return;
        }
        if unanswered || p.dead {
            p.schedule_soon(now);
        } else {
            p.schedule_retry(now);
        }
    }

    fn install_child(&mut self, c: &meshsec_ike::ChildSa) {
        let mut mask = [0u8; 8];
        if self.rng.fill(&mut mask).is_err() {
            tracing::error!("the system RNG failed; CHILD SA not installed");
            return;
        }
        let mut jitter = [0u8; 1];
        let _ = self.rng.fill(&mut jitter);
        let lifetime = self
            .peers
            .get(c.peer.index())
            .and_then(Option::as_ref)
            .map(|p| peers::volume_lifetime(&p.cfg, jitter[0]))
            .unwrap_or_default();
        let (inbound, outbound) = peers::sa_params(c, u64::from_ne_bytes(mask), lifetime);
        let now = self.now();
        let slot = c.peer;
        let mut early = Vec::new();
        let result = {
            let mut plane = self.path.plane();
            plane.install_inbound(now, inbound).and_then(|()| {
                // ESP the peer sealed with it before we had it (it answered our request and
                // switched at once) waited for it.
                plane.open_parked(now, c.inbound.spi, |p| early.push(p.to_vec()));
                if c.outbound_standby {
                    plane.install_outbound_standby(now, slot, outbound)
                } else {
                    plane.install_outbound(now, slot, outbound)
                }
            })
        };
        if !early.is_empty() {
            tracing::debug!(
                "peer {}: {} packets that arrived before CHILD SA in {} delivered",
                self.peer_name(c.peer),
                early.len(),
                c.inbound.spi
            );
            self.path.deliver(&early);
        }
        let name = self.peer_name(c.peer);
        if let Err(e) = result {
            tracing::error!("peer {name}: cannot install CHILD SA: {e}");
            return;
        }
        let rekey = c
            .rekey_of
            .map(|old| format!(", replaces in {old}"))
            .unwrap_or_default();
        tracing::info!(
            "peer {name}: CHILD SA in {} out {} installed ({}, {}{rekey})",
            c.inbound.spi,
            c.outbound.spi,
            c.proposal,
            if c.udp_encap { "ESP in UDP" } else { "ESP" }
        );
        if let Some(p) = self.peer(c.peer) {
            if c.rekey_of.is_some() {
                p.child_rekeys += 1;
            }
            // A new CHILD SA gets a fresh window before the through-tunnel check judges it.
            p.last_esp_in = now;
            p.children.push(peers::InstalledChild {
                spi_in: c.inbound.spi,
                spi_out: c.outbound.spi,
                proposal: c.proposal.clone(),
                mode: c.mode,
                udp_encap: c.udp_encap,
                local_ts: c.local_ts.clone(),
                remote_ts: c.remote_ts.clone(),
                installed: now,
            });
        }
    }

    fn remove_child(&mut self, peer: PeerId, spi_in: InboundSpi, spi_out: OutboundSpi) {
        // If it was sealing, the pair installed before it (still alive) takes over; its
        // inbound half keeps accepting for a moment.
        self.path.plane().remove_outbound_spi(peer, spi_out);
        self.retiring.push((self.now() + INBOUND_GRACE, spi_in));
        tracing::info!(
            "peer {}: CHILD SA in {spi_in} out {spi_out} removed",
            self.peer_name(peer)
        );
        if let Some(p) = self.peer(peer) {
            p.children.retain(|c| c.spi_in != spi_in);
        }
    }

    /// Deletes every IKE SA (peers are told), waits briefly for their answers, stops the
    /// data path.
    async fn shutdown(&mut self) {
        let now = self.now();
        for id in (0..self.peers.len()).filter_map(PeerId::from_index) {
            let _ = self.ike.delete_ike_sa(now, id);
        }
        self.drain();
        let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
        let mut buf4 = vec![0u8; 65536];
        let mut buf6 = vec![0u8; 65536];
        while self
            .ike
            .ike_sas()
            .iter()
            .any(|s| s.state == State::Established)
        {
            let input = tokio::select! {
                r = recv_opt(&self.ike4, &mut buf4) => Input::Udp(r, true),
                r = recv_opt(&self.ike6, &mut buf6) => Input::Udp(r, false),
                Some(m) = self.from_path.recv() => Input::Path(m),
                () = tokio::time::sleep_until(deadline) => Input::Timer,
            };
            match input {
                Input::Udp(Ok((n, from)), v4) => {
                    let buf = if v4 { &buf4 } else { &buf6 };
                    if let Some(bytes) = buf.get(..n) {
                        let to = self.local_addr(from.is_ipv4(), IKE_PORT);
                        let now = self.now();
                        self.ike.handle_datagram(now, from, to, bytes);
                    }
                }
                Input::Path(ToIke::Ike { from, to, bytes }) => {
                    let now = self.now();
                    self.ike.handle_datagram(now, from, to, &bytes);
                }
                Input::Timer => break,
                _ => {}
            }
            self.drain();
        }
        self.path
            .stop
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = std::fs::remove_file(&self.cfg.node.control_socket);
    }
}
