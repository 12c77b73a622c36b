//! Tells systemd how the daemon is doing (`Type=notify`, sd_notify(3)): READY once the
//! sockets, the TUN device and the peers are set up — so that units ordered after meshsec
//! start when the tunnels can come up, not when the process exists —, RELOADING and READY
//! around a reload, STOPPING at shutdown, and a one-line STATUS for `systemctl status`.
//! Started any other way (no `NOTIFY_SOCKET`), every call does nothing.

use sd_notify::NotifyState;

/// The STATUS line is refreshed at most this often (and after reloads).
pub const STATUS_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Whether systemd listens (the daemon was started with `NOTIFY_SOCKET`).
pub fn enabled() -> bool {
    std::env::var_os("NOTIFY_SOCKET").is_some()
}

fn send(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::debug!("sd_notify: {e}");
    }
}

/// Start-up is done.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// A reload begins (systemd waits for [`ready`] again).
pub fn reloading() {
    let mut states = vec![NotifyState::Reloading];
    // Type=notify-reload (systemd 253+) wants the time the reload began.
    if let Ok(t) = NotifyState::monotonic_usec_now() {
        states.push(t);
    }
    send(&states);
}

/// Shutdown begins (the SAs are being deleted).
pub fn stopping() {
    send(&[
        NotifyState::Stopping,
        NotifyState::Status("deleting SAs and stopping"),
    ]);
}

/// The one-line summary shown by `systemctl status`.
pub fn status(line: &str) {
    send(&[NotifyState::Status(line)]);
}

/// The summary: peers established out of those configured, and the last failure seen.
pub fn summary(report: &meshsec_node::NodeReport) -> String {
    use meshsec_node::LinkState;
    let up = report
        .peers
        .iter()
        .filter(|p| p.state == LinkState::Established)
        .count();
    let failing = report
        .peers
        .iter()
        .filter(|p| p.state != LinkState::Established)
        .find_map(|p| {
            p.last_failure
                .as_ref()
                .map(|f| format!("; {}: {f}", p.name))
        })
        .unwrap_or_default();
    let line = format!("{up} of {} peers established{failing}", report.peers.len());
    // STATUS is one line; a failure text may be long.
    line.chars().take(200).collect()
}
