//! The control socket server (protocol in `docs/control-protocol.md`) and what each command
//! does to the daemon.

use meshsec_types::PeerId;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};

use super::peers::PeerRuntime;
use super::{ControlMsg, Daemon};
use crate::config::{Config, Peer};
use crate::control::{Command, PROTOCOL_VERSION, ReloadReport, Request, Response};

/// Longest request line accepted.
const MAX_REQUEST: usize = 64 * 1024;

/// Opens the control socket (root-only) and starts accepting; commands arrive on the
/// returned channel.
pub fn listen(path: &Path) -> Result<mpsc::Receiver<ControlMsg>> {
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
    }
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        bail!(
            "another meshsec daemon is already running (it answers on {}); stop it first",
            path.display()
        );
    }
    let _ = std::fs::remove_file(path); // a stale socket of a daemon that died
    let listener =
        UnixListener::bind(path).with_context(|| format!("cannot listen on {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        loop {
            match listener.accept().await {
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
fn same(a: &Peer, b: &Peer) -> bool {
    // `Secret`'s Debug is redacted, so the key is compared on its own.
    format!("{a:?}") == format!("{b:?}") && a.psk.expose() == b.psk.expose()
}

impl Daemon {
    fn find_peer(&self, name: &str) -> Result<PeerId, Response> {
        self.peers
            .iter()
            .position(|p| p.as_ref().is_some_and(|p| p.cfg.name == name))
            .and_then(PeerId::from_index)
            .ok_or_else(|| {
                let known: Vec<&str> = self
                    .peers
                    .iter()
                    .flatten()
                    .map(|p| p.cfg.name.as_str())
                    .collect();
                Response::err(format!(
                    "no peer named {name:?}; configured: {}",
                    known.join(", ")
                ))
            })
    }

    pub(super) async fn on_control(&mut self, cmd: Command) -> Response {
        match cmd {
            Command::Status => Response::ok(self.status()),
            Command::Up { peer } => match self.find_peer(&peer) {
                Err(r) => r,
                Ok(id) => {
                    if let Some(p) = self.peer(id) {
                        p.admin_down = false;
                        p.backoff = super::peers::FIRST_BACKOFF;
                    }
                    self.try_initiate(id);
                    Response::ok(serde_json::json!({ "peer": peer }))
                }
            },
            Command::Down { peer } => match self.find_peer(&peer) {
                Err(r) => r,
                Ok(id) => {
                    if let Some(p) = self.peer(id) {
                        p.admin_down = true;
                        p.next_attempt = None;
                    }
                    let now = self.now();
                    let deleting = self.ike.delete_ike_sa(now, id).unwrap_or(false);
                    Response::ok(serde_json::json!({ "peer": peer, "deleting": deleting }))
                }
            },
            Command::DebugDropSa { peer, direction } => match self.find_peer(&peer) {
                Err(r) => r,
                Ok(id) => self.debug_drop_sa(id, &peer, &direction),
            },
            Command::Rekey { peer, ike, reauth } => match self.find_peer(&peer) {
                Err(r) => r,
                Ok(id) => {
                    let now = self.now();
                    let queued = if reauth {
                        self.ike.reauthenticate(now, id)
                    } else if ike {
                        self.ike.rekey_ike_sa(now, id)
                    } else {
                        self.ike.rekey_child_sa(now, id)
                    }
                    .unwrap_or(false);
                    if queued {
                        Response::ok(
                            serde_json::json!({ "peer": peer, "ike": ike, "reauth": reauth }),
                        )
                    } else if reauth {
                        Response::err(format!(
                            "peer {peer} has no established IKE SA, or one is being reauthenticated"
                        ))
                    } else {
                        Response::err(format!("peer {peer} has no established SA to rekey"))
                    }
                }
            },
            Command::Reload => match self.reload().await {
                Ok(r) => Response::ok(r),
                Err(e) => Response::err(format!("{e:#}")),
            },
        }
    }

    fn debug_drop_sa(&mut self, id: PeerId, peer: &str, direction: &str) -> Response {
        let Some(child) = self
            .peers
            .get(id.index())
            .and_then(Option::as_ref)
            .and_then(|p| p.children.last())
            .map(|c| (c.spi_in, c.spi_out))
        else {
            return Response::err(format!("peer {peer} has no CHILD SA"));
        };
        let slot = id;
        let mut plane = self.path.plane();
        let (removed, spi) = match direction {
            "inbound" => (plane.remove_inbound(child.0), child.0.to_string()),
            "outbound" => (
                plane.remove_outbound_spi(slot, child.1),
                child.1.to_string(),
            ),
            other => {
                return Response::err(format!(
                    "direction {other:?}: expected \"inbound\" or \"outbound\""
                ));
            }
        };
        drop(plane);
        tracing::warn!(
            "debug: dropped the {direction} SA {spi} of peer {peer} from the data plane"
        );
        Response::ok(serde_json::json!({
            "peer": peer, "direction": direction, "spi": format!("{spi}"), "removed": removed,
        }))
    }

    /// Re-reads the configuration: removed peers are deleted, changed ones restarted, new
    /// ones started; the others are not touched. Node settings need a restart.
    async fn reload(&mut self) -> Result<ReloadReport> {
        let new = Config::load(&self.cfg.path).map_err(|e| anyhow::anyhow!("{e}"))?;
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
        for id in (0..self.peers.len()).filter_map(PeerId::from_index) {
            let Some(old) = self.peers.get(id.index()).and_then(Option::as_ref) else {
                continue;
            };
            let name = old.cfg.name.clone();
            match new.peers.iter().find(|p| p.name == name) {
                None => {
                    self.unconfigure_peer(id).await;
                    let _ = self.ike.remove_peer(now, id);
                    self.drain();
                    // Its SAs' Deletes may still be in flight; nothing routes to the slot
                    // any more, so its outbound SA goes now.
                    self.path.plane().remove_outbound(id);
                    if let Some(slot) = self.peers.get_mut(id.index()) {
                        *slot = None;
                    }
                    report.removed.push(name);
                }
                Some(p) if same(&old.cfg, p) => report.unchanged.push(name),
                Some(p) => {
                    let p = p.clone();
                    let old_children = old.children.clone();
                    self.unconfigure_peer(id).await;
                    let _ = self.ike.delete_ike_sa(now, id);
                    self.drain();
                    let index = new.peers.iter().position(|q| q.name == name);
                    if let Some(pc) = index.and_then(|i| new.peer_config(i)) {
                        let _ = self.ike.replace_peer(id, pc);
                    }
                    if let Some(slot) = self.peers.get_mut(id.index()) {
                        let mut rt = PeerRuntime::new(p);
                        // The old CHILD SAs stay known until the peer acknowledges their
                        // deletion, so that their removal finds them.
                        rt.children = old_children;
                        *slot = Some(rt);
                    }
                    self.configure_peer(id).await;
                    report.changed.push(name);
                }
            }
        }
        // New peers.
        for (i, p) in new.peers.iter().enumerate() {
            if self.peers.iter().flatten().any(|q| q.cfg.name == p.name) {
                continue;
            }
            let Some(pc) = new.peer_config(i) else {
                continue;
            };
            let Ok(id) = self.ike.add_peer(pc) else {
                continue;
            };
            // The engine's ids grow with ours: a new peer's id is the next index.
            self.peers
                .resize_with(self.peers.len().max(id.index() + 1), || None);
            if let Some(slot) = self.peers.get_mut(id.index()) {
                *slot = Some(PeerRuntime::new(p.clone()));
            }
            self.configure_peer(id).await;
            report.added.push(p.name.clone());
        }
        self.cfg.peers = new.peers;
        tracing::info!(
            "reloaded {}: added {:?}, removed {:?}, changed {:?}, unchanged {}",
            self.cfg.path.display(),
            report.added,
            report.removed,
            report.changed,
            report.unchanged.len()
        );
        Ok(report)
    }
}
