//! `meshsec run`: the daemon (DESIGN.md §1, §5). It owns the sockets, the TUN device, the
//! routes, the signals and the clock — the I/O — and drives one [`Node`] (the IKE engine,
//! the ESP data plane and the glue between them, sans-IO) on this tokio single-threaded
//! loop, while the data-path threads ([`datapath`]) seal and open on the same data plane
//! without ever waiting for IKE work.
//!
//! The loop, each turn: hand out what the node has for the outside world (datagrams, route
//! changes, packets for the TUN device), then wait for one input — an IKE datagram on port
//! 500, one the data path read on port 4500, a signal from the data path that the data
//! plane has something to report, a control command, the node's next deadline, or a Unix
//! signal — and feed it to the node. The loop sleeps until the node's next deadline: an
//! idle daemon wakes up only when something is due.

mod control;
pub mod datapath;
mod firewall;
pub mod net;
pub mod netlink;
pub(crate) mod os;
mod routes;
mod status;
mod systemd;

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use meshsec_crypto::Provider;
use meshsec_crypto::rng::SystemRandom;
use meshsec_esp::DataPlane;
use meshsec_ike::{Endpoint, EndpointConfig, State, Transmit, TransmitKind};
use meshsec_node::{Command, Node, OsAction};
use meshsec_types::Timestamp;
use meshsec_types::ports::{IKE_PORT, NAT_T_PORT};
use meshsec_wire::udp_encap::NON_ESP_MARKER;
use tokio::sync::{Notify, mpsc};

use crate::config::Config;
use datapath::{DataPath, IkeDatagram};

/// How long a shutdown waits for peers to acknowledge our Deletes.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(1500);
/// IKE datagrams the data path may queue for this loop (read on port 4500); beyond it they
/// are dropped and counted: a flood must not grow memory.
const IKE_QUEUE: usize = 1024;

/// Runs the daemon with the configuration at `path` until SIGINT/SIGTERM.
pub fn run(path: &Path) -> Result<()> {
    let cfg = load_config(path).map_err(|e| anyhow::anyhow!("{e}"))?;
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

/// Says so when none of this host's addresses is inside a peer's local selectors: the
/// traffic it sends could not carry a source the policy protects (only `no_policy` drops
/// would show it). Overlay addresses must exist on the host, e.g. on `lo`.
fn warn_selectors_without_address(cfg: &Config, host: &[IpAddr]) {
    for p in &cfg.peers {
        let has = [true, false]
            .into_iter()
            .any(|v4| routes::route_source(host, &p.local_ts, v4).is_some());
        if !has {
            let ts: Vec<String> = p.local_ts.iter().map(meshsec_ike::ts::describe).collect();
            tracing::warn!(
                "peer {}: none of this host's addresses is inside local_ts ({}); put one there (e.g. `ip addr add ADDRESS/32 dev lo`) or this host's own traffic finds no policy",
                p.name,
                ts.join(", ")
            );
        }
    }
}

/// What the mesh firewall needs to know of this daemon.
fn firewall_context(tun_index: u32) -> firewall::Context {
    firewall::Context {
        tun_index,
        mark: routes::FWMARK,
        ike_ports: [IKE_PORT, NAT_T_PORT],
    }
}

/// Reads the configuration at `path`; this host's addresses find it in a mesh inventory
/// when `[node] name` does not.
pub fn load_config(path: &Path) -> Result<Config, crate::config::ConfigError> {
    Config::load_on_host(path, &os::host_addresses())
}

/// A control command with the channel its answer goes back on.
type ControlMsg = (
    crate::control::Command,
    tokio::sync::oneshot::Sender<crate::control::Response>,
);

/// The node, over the data plane it shares with the data-path threads.
type SharedNode = Node<Arc<Mutex<DataPlane>>>;

/// The daemon's state (the IKE loop's side).
pub struct Daemon {
    cfg: Config,
    node: SharedNode,
    path: Arc<DataPath>,
    ike4: Option<tokio::net::UdpSocket>,
    ike6: Option<tokio::net::UdpSocket>,
    /// Port-4500 sockets for sending IKE (clones of the data path's).
    natt4: Option<std::net::UdpSocket>,
    natt6: Option<std::net::UdpSocket>,
    routes: routes::Routes,
    /// The mesh's nftables table (with an inventory).
    firewall: Option<firewall::Firewall>,
    tun_index: u32,
    from_path: mpsc::Receiver<IkeDatagram>,
    /// The data path rings it when the data plane has events or unknown SPIs to report.
    reports: Arc<Notify>,
    control: mpsc::Receiver<ControlMsg>,
    /// When to look at our certificates' expiry again (daily; the first look is at load).
    expiry_check_at: Timestamp,
    /// systemd's STATUS line: not before this, and only when something happened since.
    status_at: Timestamp,
    status_dirty: bool,
    /// Started by systemd with a notify socket (read once).
    notify: bool,
}

/// How often a running daemon warns about certificates close to expiry.
const EXPIRY_CHECK_INTERVAL: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// One input of the loop.
enum Input {
    Udp(std::io::Result<os::Received>, bool),
    Path(IkeDatagram),
    Reports,
    Control(ControlMsg),
    Timer,
    /// SIGHUP: reload the configuration (like `meshsec reload`).
    Reload,
    Shutdown(&'static str),
}

/// The next datagram on an IKE socket, with the local address it was sent to.
async fn recv_opt(
    s: &Option<tokio::net::UdpSocket>,
    buf: &mut [u8],
) -> std::io::Result<os::Received> {
    match s {
        Some(s) => {
            let fd = std::os::fd::AsRawFd::as_raw_fd(s);
            s.async_io(tokio::io::Interest::READABLE, || os::recv_one(fd, buf))
                .await
        }
        None => std::future::pending().await,
    }
}

/// Sleeps until `deadline` on the daemon's clock (`epoch`); forever if there is none.
async fn sleep_until(epoch: Instant, deadline: Option<Timestamp>) {
    match deadline {
        Some(t) => {
            let at = epoch
                .checked_add(t.since_epoch())
                .map(tokio::time::Instant::from_std);
            match at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        }
        None => std::future::pending().await,
    }
}

impl Daemon {
    /// Opens everything, starts the data path and configures every peer (`start = "always"`
    /// ones are initiated).
    pub async fn start(cfg: Config) -> Result<Daemon> {
        let epoch = Instant::now();
        let claim = control::claim(&cfg.node.control_socket)?;
        let local4 = cfg.node.addresses.iter().copied().find(IpAddr::is_ipv4);
        let local6 = cfg.node.addresses.iter().copied().find(IpAddr::is_ipv6);
        let (ike_sockets, esp_sockets) =
            net::open(&cfg.node.addresses, IKE_PORT, NAT_T_PORT, routes::FWMARK)?;
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
        warn_selectors_without_address(&cfg, &netlink.host_addresses().await.unwrap_or_default());
        let tun_index = netlink.link_index(&cfg.node.tun).await?;
        let (to_ike, from_path) = mpsc::channel(IKE_QUEUE);
        let reports = Arc::new(Notify::new());
        let plane = Arc::new(Mutex::new(DataPlane::new(Box::new(SystemRandom::new()))));
        let path = Arc::new(DataPath::new(
            Arc::clone(&plane),
            epoch,
            tun,
            esp_sockets,
            (local4, local6),
            usize::from(cfg.node.mtu),
            to_ike,
            Arc::clone(&reports),
        ));
        path.spawn().context("cannot start the data path threads")?;
        let local = cfg
            .node
            .addresses
            .first()
            .copied()
            .context("no node address")?;
        let mut ike_config = EndpointConfig::new(SocketAddr::new(local, IKE_PORT));
        ike_config.force_udp_encap = cfg.node.esp_encap == crate::config::EspEncap::Udp;
        ike_config.nat_keepalive = Some(cfg.node.nat_keepalive);
        let mut ike = Endpoint::new(
            ike_config,
            Vec::new(),
            Box::new(SystemRandom::new()),
            Provider::Real,
        );
        ike.set_wall_clock(
            Timestamp::from_duration(epoch.elapsed()),
            crate::config::now_unix(),
        );
        let node = Node::new(ike, plane, Box::new(SystemRandom::new()));
        let routes = routes::Routes::new(netlink, tun_index);
        routes.add_rules().await?;
        let firewall = match &cfg.mesh {
            Some(mesh) => Some(firewall::Firewall::install(
                mesh,
                firewall_context(tun_index),
            )?),
            None => None,
        };
        let control = control::listen(&cfg.node.control_socket, claim)?;
        let mut d = Daemon {
            cfg,
            node,
            path,
            ike4: ike_sockets.v4,
            ike6: ike_sockets.v6,
            natt4,
            natt6,
            routes,
            firewall,
            tun_index,
            from_path,
            reports,
            control,
            expiry_check_at: Timestamp::from_duration(EXPIRY_CHECK_INTERVAL),
            status_at: Timestamp::ZERO,
            status_dirty: false,
            notify: systemd::enabled(),
        };
        let now = d.now();
        for i in 0..d.cfg.peers.len() {
            if let Some(policy) = d.cfg.peer_policy(i) {
                let name = policy.ike.name.clone();
                if let Err(e) = d.node.handle_command(now, Command::AddPeer(policy)) {
                    bail!("peer {name}: {e}");
                }
            }
        }
        d.flush().await;
        tracing::info!(
            "meshsec {} node {} ({}) up: TUN {} (mtu {}), {} peer(s), control socket {}",
            env!("CARGO_PKG_VERSION"),
            d.cfg.node.name,
            d.cfg.node.identity,
            d.cfg.node.tun,
            d.cfg.node.mtu,
            d.cfg.peers.len(),
            d.cfg.node.control_socket.display()
        );
        d.notify_ready();
        Ok(d)
    }

    fn now(&self) -> Timestamp {
        self.path.now()
    }

    /// The main loop.
    pub async fn run(&mut self) -> Result<()> {
        let mut buf4 = vec![0u8; 65536];
        let mut buf6 = vec![0u8; 65536];
        let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("cannot handle SIGTERM")?;
        let mut sighup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .context("cannot handle SIGHUP")?;
        let epoch = self.path.epoch;
        loop {
            self.flush().await;
            self.refresh_status();
            let mut deadline = self.node.poll_timeout();
            if self.status_dirty {
                deadline = Some(deadline.map_or(self.status_at, |d| d.min(self.status_at)));
            }
            let input = tokio::select! {
                r = recv_opt(&self.ike4, &mut buf4) => Input::Udp(r, true),
                r = recv_opt(&self.ike6, &mut buf6) => Input::Udp(r, false),
                Some(m) = self.from_path.recv() => Input::Path(m),
                () = self.reports.notified() => Input::Reports,
                Some(c) = self.control.recv() => Input::Control(c),
                () = sleep_until(epoch, deadline) => Input::Timer,
                _ = tokio::signal::ctrl_c() => Input::Shutdown("SIGINT"),
                _ = sigterm.recv() => Input::Shutdown("SIGTERM"),
                _ = sighup.recv() => Input::Reload,
            };
            let now = self.now();
            // Certificates are valid between wall-clock dates; the clock may be stepped.
            self.node
                .ike_mut()
                .set_wall_clock(now, crate::config::now_unix());
            // Whatever came in may have changed a peer's state (systemd's STATUS line).
            self.status_dirty = self.notify;
            if now >= self.expiry_check_at {
                self.expiry_check_at = now + EXPIRY_CHECK_INTERVAL;
                self.warn_expiring_certificates();
            }
            match input {
                Input::Udp(Ok(r), v4) => {
                    let buf = if v4 { &buf4 } else { &buf6 };
                    if let Some(bytes) = buf.get(..r.len) {
                        let to = self.local_addr(&r, IKE_PORT);
                        self.node.handle_ike_datagram(now, r.from, to, bytes);
                    }
                }
                Input::Udp(Err(e), _) => tracing::debug!("IKE receive error: {e}"),
                Input::Path(m) => self.node.handle_ike_datagram(now, m.from, m.to, &m.bytes),
                Input::Reports => self.node.handle_backend_reports(now),
                Input::Control((cmd, reply)) => {
                    let resp = self.on_control(cmd).await;
                    let _ = reply.send(resp);
                }
                Input::Timer => self.node.handle_timeout(now),
                Input::Reload => {
                    tracing::info!("SIGHUP: reloading {}", self.cfg.path.display());
                    match self.reload().await {
                        Ok(r) => {
                            for w in &r.warnings {
                                tracing::warn!("reload: {w}");
                            }
                        }
                        Err(e) => tracing::error!("reload failed, nothing changed: {e:#}"),
                    }
                }
                Input::Shutdown(sig) => {
                    tracing::info!("{sig}: deleting SAs and stopping");
                    systemd::stopping();
                    self.shutdown().await;
                    return Ok(());
                }
            }
        }
    }

    /// Tells systemd we are ready, with the summary (built only when systemd listens: it
    /// walks every peer).
    fn notify_ready(&self) {
        if self.notify {
            systemd::ready(&systemd::summary(&self.node.status(self.now())));
        }
    }

    /// Keeps systemd's STATUS line current (under systemd only): after anything that may
    /// change a peer's state, at most once per [`systemd::STATUS_INTERVAL`]; an idle daemon
    /// is not woken for it.
    fn refresh_status(&mut self) {
        let now = self.now();
        if self.status_dirty && now >= self.status_at {
            self.status_at = now + systemd::STATUS_INTERVAL;
            self.status_dirty = false;
            systemd::status(&systemd::summary(&self.node.status(now)));
        }
    }

    /// Our address and `port` a datagram arrived at (packet info), else our first address of
    /// its family.
    fn local_addr(&self, r: &os::Received, port: u16) -> SocketAddr {
        let v4 = r.from.is_ipv4();
        let ip = r.to.or(if v4 {
            self.path.local4
        } else {
            self.path.local6
        });
        SocketAddr::new(
            ip.unwrap_or(if v4 {
                IpAddr::from([0, 0, 0, 0])
            } else {
                IpAddr::from([0u16; 8])
            }),
            port,
        )
    }

    /// Hands out what the node has for the outside world: datagrams, route changes, inner
    /// packets for the TUN device. (Its lifecycle events were logged and counted already.)
    async fn flush(&mut self) {
        while let Some(t) = self.node.poll_transmit() {
            self.send(&t);
        }
        while let Some(a) = self.node.poll_os() {
            match a {
                OsAction::AddRoutes {
                    peer,
                    local_ts,
                    remote_ts,
                } => {
                    let name = self.node.peer_name(peer);
                    let path =
                        self.cfg
                            .peers
                            .iter()
                            .find(|p| p.name == name)
                            .map(|p| routes::Path {
                                address: p.address.ip(),
                                mode: p.mode,
                                mtu: p.path_mtu,
                                tun_mtu: self.cfg.node.mtu,
                            });
                    self.routes
                        .add(peer, &name, &local_ts, &remote_ts, path.as_ref())
                        .await;
                }
                OsAction::RemoveRoutes { peer } => self.routes.remove(peer).await,
                OsAction::Deliver(packets) => self.path.deliver(&packets),
            }
        }
        while self.node.poll_event().is_some() {}
    }

    fn send(&self, t: &Transmit) {
        let r = if t.src.port() == NAT_T_PORT {
            let s = if t.dst.is_ipv4() {
                &self.natt4
            } else {
                &self.natt6
            };
            match t.kind {
                // RFC 3948: IKE on port 4500 starts with the non-ESP marker.
                TransmitKind::Ike => {
                    let mut framed = Vec::with_capacity(t.payload.len() + 4);
                    framed.extend_from_slice(&NON_ESP_MARKER);
                    framed.extend_from_slice(&t.payload);
                    s.as_ref().map(|s| s.send_to(&framed, t.dst))
                }
                TransmitKind::NatKeepalive => s.as_ref().map(|s| s.send_to(&t.payload, t.dst)),
            }
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

    /// Deletes every IKE SA (peers are told), waits briefly for their answers, stops the
    /// data path.
    async fn shutdown(&mut self) {
        let now = self.now();
        let _ = self.node.handle_command(now, Command::DeleteAll);
        self.flush().await;
        let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
        let mut buf4 = vec![0u8; 65536];
        let mut buf6 = vec![0u8; 65536];
        while self
            .node
            .ike()
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
            let now = self.now();
            match input {
                Input::Udp(Ok(r), v4) => {
                    let buf = if v4 { &buf4 } else { &buf6 };
                    if let Some(bytes) = buf.get(..r.len) {
                        let to = self.local_addr(&r, IKE_PORT);
                        self.node.handle_ike_datagram(now, r.from, to, bytes);
                    }
                }
                Input::Path(m) => self.node.handle_ike_datagram(now, m.from, m.to, &m.bytes),
                Input::Timer => break,
                _ => {}
            }
            self.flush().await;
        }
        self.path
            .stop
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.routes.remove_rules().await;
        if let Some(fw) = self.firewall.take() {
            fw.remove();
        }
        let _ = std::fs::remove_file(&self.cfg.node.control_socket);
    }
}

impl Daemon {
    /// Logs each of our certificates that expires within `EXPIRY_WARNING_DAYS` (once per
    /// certificate however many peers use it).
    fn warn_expiring_certificates(&self) {
        let mut seen = std::collections::HashSet::new();
        for p in &self.cfg.peers {
            let meshsec_ike::LocalAuth::Certificate(c) = &p.local_auth else {
                continue;
            };
            if !seen.insert(c.chain.first().cloned()) {
                continue;
            }
            let st = status::cert_status(&c.subject, c.not_after);
            if st.days_left < 0 {
                tracing::error!(
                    "our certificate \"{}\" EXPIRED on {}: peers refuse it; issue a new one and reload",
                    st.subject,
                    st.not_after
                );
            } else if st.days_left < crate::config::EXPIRY_WARNING_DAYS {
                tracing::warn!(
                    "our certificate \"{}\" expires on {} (in {} days): issue a new one and reload",
                    st.subject,
                    st.not_after,
                    st.days_left
                );
            }
        }
    }
}
