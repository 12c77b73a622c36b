//! The control socket server (protocol in `docs/control-protocol.md`) and what each command
//! does to the daemon.

use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};

use super::{ControlMsg, Daemon};
use meshsec_node::{Command as NodeCommand, Done, RekeyKind, SaHalf};
use meshsec_types::PeerId;

use crate::config::Peer;
use crate::control::{Command, PROTOCOL_VERSION, ReloadReport, Request, Response};

/// Longest request line accepted.
const MAX_REQUEST: usize = 64 * 1024;

/// The right to be the one daemon on a control socket: claimed first at start, before any
/// port or TUN device is opened, so that a second daemon says "already running" rather than
/// failing on a resource the first one holds.
pub struct Claim(std::fs::File);

/// Takes the control socket's lock, or says that another daemon runs.
pub fn claim(path: &Path) -> Result<Claim> {
    check_directory(path)?;
    // One daemon per socket, even when two start at once: the second finds the lock taken.
    let mut lock_path = path.as_os_str().to_owned();
    lock_path.push(".lock");
    let lock = std::fs::File::create(&lock_path)
        .with_context(|| format!("cannot create {}", Path::new(&lock_path).display()))?;
    let running = || {
        anyhow::anyhow!(
            "another meshsec daemon is already running (it answers on {}); stop it first",
            path.display()
        )
    };
    lock.try_lock().map_err(|_| running())?;
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(running());
    }
    Ok(Claim(lock))
}

/// Places the control socket (root-only, under `claim`) and starts accepting; commands
/// arrive on the returned channel.
///
/// Three locks on the door: the directory is root's and nobody else may write to it (else
/// someone could put their own socket in its place); the socket appears under its name only
/// once it is mode 600 (bound under a temporary name, then renamed: no moment where anyone
/// may connect); and every connection's peer credentials are checked (`SO_PEERCRED`), so a
/// loosened mode still lets nobody but root in.
pub fn listen(path: &Path, claim: Claim) -> Result<mpsc::Receiver<ControlMsg>> {
    let Claim(lock) = claim;
    let _ = std::fs::remove_file(path); // a stale socket of a daemon that died
    let mut staging = path.as_os_str().to_owned();
    staging.push(format!(".{}", std::process::id()));
    let staging = std::path::PathBuf::from(staging);
    let _ = std::fs::remove_file(&staging);
    let listener = UnixListener::bind(&staging)
        .with_context(|| format!("cannot listen on {}", staging.display()))?;
    let placed = std::fs::set_permissions(&staging, std::fs::Permissions::from_mode(0o600))
        .and_then(|()| std::fs::rename(&staging, path));
    if let Err(e) = placed {
        let _ = std::fs::remove_file(&staging);
        return Err(e)
            .with_context(|| format!("cannot place the control socket at {}", path.display()));
    }
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        let _lock = lock; // held for as long as the daemon listens
        let started = std::time::Instant::now();
        loop {
            match listener.accept().await {
                Ok((stream, _)) if !root_peer(&stream) => {
                    tokio::spawn(refuse(stream, started.elapsed().as_secs()));
                }
                Ok((stream, _)) => {
                    tokio::spawn(serve(stream, tx.clone()));
                }
                Err(e) => {
                    tracing::warn!("control socket: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        }
    });
    Ok(rx)
}

/// Creates the control socket's directory (mode 700) if missing, and refuses a path others
/// than root could change under us: the directory must be root's and writable by nobody
/// else, every directory above it root's and not writable by others (unless sticky, as
/// `/tmp`), and no symbolic link on the way may belong to anyone but root. The daemon checks
/// this before it opens anything else.
pub fn check_directory(path: &Path) -> Result<()> {
    let Some(dir) = path.parent() else {
        return Ok(());
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    for a in dir.ancestors().filter(|a| !a.as_os_str().is_empty()) {
        let m = std::fs::symlink_metadata(a)?;
        if m.file_type().is_symlink() && m.uid() != 0 {
            bail!(
                "the control socket's path goes through {}, a symbolic link of uid {}: use a \
                 root-only directory (default /run/meshsec)",
                a.display(),
                m.uid()
            );
        }
    }
    let real = std::fs::canonicalize(dir)?;
    for (i, a) in real.ancestors().enumerate() {
        let m = std::fs::metadata(a)?;
        let others_write = m.mode() & 0o022 != 0;
        let sticky = m.mode() & 0o1000 != 0;
        if m.uid() != 0 || (others_write && (i == 0 || !sticky)) {
            bail!(
                "the control socket's directory {} is writable by others than root ({} has \
                 owner uid {}, mode {:03o}): use a root-only directory (default /run/meshsec) \
                 or chmod go-w {}",
                dir.display(),
                a.display(),
                m.uid(),
                m.mode() & 0o7777,
                a.display()
            );
        }
    }
    Ok(())
}

/// Whether the process on the other end runs as root (or as the daemon's own user).
fn root_peer(stream: &UnixStream) -> bool {
    let me = super::os::effective_uid();
    stream
        .peer_cred()
        .is_ok_and(|c| c.uid() == 0 || c.uid() == me)
}

/// Connections of other users being answered at once; more are closed unanswered.
static REFUSING: AtomicUsize = AtomicUsize::new(0);
/// When a refused connection was last logged (seconds since the daemon started).
static REFUSAL_LOGGED: AtomicU64 = AtomicU64::new(u64::MAX);
/// At most this many refusals are answered at once.
const MAX_REFUSING: usize = 8;

/// Tells a connection from another user why it gets nothing, and closes it: its request
/// (one line, bounded, within a second) is read first so that the client sees the answer,
/// not a broken pipe. At most [`MAX_REFUSING`] at once and one log line per 10 s: a local
/// user looping on connect costs neither descriptors nor the log.
async fn refuse(stream: UnixStream, since_start: u64) {
    let last = REFUSAL_LOGGED.load(Ordering::Relaxed);
    if last == u64::MAX || since_start >= last.saturating_add(10) {
        REFUSAL_LOGGED.store(since_start, Ordering::Relaxed);
        tracing::warn!("control socket: refused a connection from a process not running as root");
    }
    if REFUSING.fetch_add(1, Ordering::Relaxed) >= MAX_REFUSING {
        REFUSING.fetch_sub(1, Ordering::Relaxed);
        return;
    }
    answer_refusal(stream).await;
    REFUSING.fetch_sub(1, Ordering::Relaxed);
}

async fn answer_refusal(stream: UnixStream) {
    let (r, mut w) = stream.into_split();
    let mut line = String::new();
    let mut reader = BufReader::new(r.take(MAX_REQUEST as u64));
    let read = reader.read_line(&mut line);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), read).await;
    let resp = Response::err("permission denied: the control socket is for root only");
    if let Ok(mut out) = serde_json::to_string(&resp) {
        out.push('\n');
        let _ = w.write_all(out.as_bytes()).await;
    }
}

async fn serve(stream: UnixStream, tx: mpsc::Sender<ControlMsg>) {
    let (r, mut w) = stream.into_split();
    let mut lines = BufReader::new(r.take(MAX_REQUEST as u64)).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let resp = match serde_json::from_str::<Request>(&line) {
            Ok(req) if req.version != PROTOCOL_VERSION => Response::err(format!(
                "this daemon speaks control protocol v{PROTOCOL_VERSION}, the request is v{}: \
                 use the meshsec binary the daemon runs",
                req.version
            )),
            Ok(req) => {
                let (otx, orx) = oneshot::channel();
                if tx.send((req.command, otx)).await.is_err() {
                    return;
                }
                match orx.await {
                    Ok(r) => r,
                    Err(_) => return,
                }
            }
            Err(e) => Response::err(format!("not a control request: {e}")),
        };
        let Ok(mut out) = serde_json::to_string(&resp) else {
            return;
        };
        out.push('\n');
        if w.write_all(out.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// Two peer configurations that would negotiate the same SAs.
/// How a peer's settings changed across a reload.
#[derive(Debug, PartialEq, Eq)]
enum Change {
    None,
    /// Only what nothing negotiated depends on (liveness, start, limits, lifetimes).
    Local,
    /// What the SAs were negotiated with (address, identities, proposals, selectors, mode):
    /// they must be negotiated again. Credentials (keys, certificates, CAs, CRLs) are not:
    /// the next authentication uses them, so that a PSK or certificate can be rotated on one
    /// host, then the other, without an outage.
    Negotiated,
}

fn change(a: &Peer, b: &Peer) -> Change {
    let negotiated = |p: &Peer| {
        format!(
            "{:?}",
            (
                &p.address,
                &p.accept_from,
                &p.identity,
                &p.local_ts,
                &p.remote_ts,
                &p.mode,
                &p.ike_proposals,
                &p.esp_proposals,
                // Fixed in the IKE SA when it is authenticated (and carried over by rekeys).
                &p.reauth_lifetime,
            )
        )
    };
    // Credentials are compared on their own (`Secret`'s Debug is redacted, a certificate's
    // shows only its subject).
    if negotiated(a) != negotiated(b) {
        Change::Negotiated
    } else if !a.same_credentials(b) || format!("{a:?}") != format!("{b:?}") {
        Change::Local
    } else {
        Change::None
    }
}

impl Daemon {
    fn find_peer(&self, name: &str) -> Result<PeerId, Response> {
        self.node.peer_by_name(name).ok_or_else(|| {
            Response::err(format!(
                "no peer named {name:?}; configured: {}",
                self.node.peer_names().join(", ")
            ))
        })
    }

    pub(super) async fn on_control(&mut self, cmd: Command) -> Response {
        let now = self.now();
        let (name, request) = match cmd {
            Command::Status => return Response::ok(self.status()),
            Command::Reload => {
                return match self.reload().await {
                    Ok(r) => Response::ok(r),
                    Err(e) => Response::err(format!("{e:#}")),
                };
            }
            Command::Up { peer } => (peer, PeerRequest::Up),
            Command::Down { peer } => (peer, PeerRequest::Down),
            Command::Rekey { peer, ike, reauth } => {
                let kind = if reauth {
                    RekeyKind::Reauth
                } else if ike {
                    RekeyKind::Ike
                } else {
                    RekeyKind::Child
                };
                (peer, PeerRequest::Rekey(kind, ike, reauth))
            }
            Command::DebugDropSa { peer, direction } => {
                let half = match direction.as_str() {
                    "inbound" => SaHalf::Inbound,
                    "outbound" => SaHalf::Outbound,
                    other => {
                        return Response::err(format!(
                            "direction {other:?}: expected \"inbound\" or \"outbound\""
                        ));
                    }
                };
                (peer, PeerRequest::DropSa(half, direction))
            }
        };
        let id = match self.find_peer(&name) {
            Ok(id) => id,
            Err(r) => return r,
        };
        let (cmd, answer) = match request {
            PeerRequest::Up => (
                NodeCommand::Up { peer: id },
                serde_json::json!({ "peer": name }),
            ),
            PeerRequest::Down => (
                NodeCommand::Down { peer: id },
                serde_json::json!({ "peer": name }),
            ),
            PeerRequest::Rekey(kind, ike, reauth) => (
                NodeCommand::Rekey { peer: id, kind },
                serde_json::json!({ "peer": name, "ike": ike, "reauth": reauth }),
            ),
            PeerRequest::DropSa(half, direction) => (
                NodeCommand::DropSa { peer: id, half },
                serde_json::json!({ "peer": name, "direction": direction }),
            ),
        };
        let result = self.node.handle_command(now, cmd);
        self.flush().await;
        match result {
            Ok(done) => Response::ok(merge(answer, done)),
            Err(e) => Response::err(format!("peer {name}: {e}")),
        }
    }

    /// Re-reads the configuration: removed peers are deleted, changed ones restarted, new
    /// ones started; the others are not touched. Node settings need a restart.
    pub(super) async fn reload(&mut self) -> Result<ReloadReport> {
        super::systemd::reloading();
        let result = self.apply_reload().await;
        self.notify_ready();
        result
    }

    /// [`Daemon::reload`] itself.
    async fn apply_reload(&mut self) -> Result<ReloadReport> {
        let new = super::load_config(&self.cfg.path).map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut report = ReloadReport {
            warnings: new.warnings.clone(),
            ..ReloadReport::default()
        };
        if format!("{:?}", new.node) != format!("{:?}", self.cfg.node) {
            report
                .warnings
                .push("[node] settings changed; they take effect when the daemon restarts".into());
        }
        let now = self.now();
        // Removed and changed peers.
        for old in &self.cfg.peers {
            let Some(id) = self.node.peer_by_name(&old.name) else {
                continue;
            };
            let position = new.peers.iter().position(|p| p.name == old.name);
            let cmd = match position {
                None => {
                    report.removed.push(old.name.clone());
                    NodeCommand::RemovePeer { peer: id }
                }
                Some(i) => {
                    let (Some(p), Some(policy)) = (new.peers.get(i), new.peer_policy(i)) else {
                        continue;
                    };
                    match change(old, p) {
                        Change::None => {
                            report.unchanged.push(old.name.clone());
                            continue;
                        }
                        Change::Local => {
                            report.updated.push(old.name.clone());
                            NodeCommand::UpdatePeer { peer: id, policy }
                        }
                        Change::Negotiated => {
                            report.changed.push(old.name.clone());
                            NodeCommand::ReplacePeer { peer: id, policy }
                        }
                    }
                }
            };
            if let Err(e) = self.node.handle_command(now, cmd) {
                report.warnings.push(format!("peer {}: {e}", old.name));
            }
        }
        // New peers.
        for (i, p) in new.peers.iter().enumerate() {
            if self.cfg.peers.iter().any(|q| q.name == p.name) {
                continue;
            }
            let Some(policy) = new.peer_policy(i) else {
                continue;
            };
            match self.node.handle_command(now, NodeCommand::AddPeer(policy)) {
                Ok(_) => report.added.push(p.name.clone()),
                Err(e) => report.warnings.push(format!("peer {}: {e}", p.name)),
            }
        }
        self.cfg.peers = new.peers;
        self.flush().await;
        if new.mesh != self.cfg.mesh {
            self.apply_mesh(new.mesh, &mut report);
        }
        tracing::info!(
            "reloaded {}: added {:?}, removed {:?}, renegotiated {:?}, updated in place {:?}, unchanged {}",
            self.cfg.path.display(),
            report.added,
            report.removed,
            report.changed,
            report.updated,
            report.unchanged.len()
        );
        Ok(report)
    }
}

impl Daemon {
    /// Installs, replaces or removes the mesh firewall after a reload changed the mesh.
    fn apply_mesh(&mut self, mesh: Option<crate::config::Mesh>, report: &mut ReloadReport) {
        let cx = super::firewall_context(self.tun_index);
        let result = match (&mesh, self.firewall.as_mut()) {
            (Some(m), Some(fw)) => fw.update(m, cx),
            (Some(m), None) => {
                super::firewall::Firewall::install(m, cx).map(|fw| self.firewall = Some(fw))
            }
            (None, Some(_)) => {
                if let Some(fw) = self.firewall.take() {
                    fw.remove();
                }
                Ok(())
            }
            (None, None) => Ok(()),
        };
        match result {
            Ok(()) => self.cfg.mesh = mesh,
            Err(e) => report
                .warnings
                .push(format!("mesh firewall not changed: {e:#}")),
        }
    }
}

/// A peer command as the control protocol asked it (with what the answer echoes).
enum PeerRequest {
    Up,
    Down,
    Rekey(RekeyKind, bool, bool),
    DropSa(SaHalf, String),
}

/// The answer to a peer command: what was asked, plus what the node did.
fn merge(mut answer: serde_json::Value, done: Done) -> serde_json::Value {
    if let serde_json::Value::Object(map) = &mut answer {
        match done {
            Done::Deleting(deleting) => {
                map.insert("deleting".into(), deleting.into());
            }
            Done::Dropped { spi, removed } => {
                map.insert("spi".into(), spi.into());
                map.insert("removed".into(), removed.into());
            }
            Done::Ok | Done::PeerAdded(_) => {}
        }
    }
    answer
}
