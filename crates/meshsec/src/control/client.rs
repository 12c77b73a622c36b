//! The CLI side of the control socket.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};

use super::{Command, PROTOCOL_VERSION, Request, Response, Status};

/// Sends one command and returns the daemon's result, or an error phrased for the operator
/// (daemon not running, permission denied, version mismatch, the daemon's own error).
pub fn call(socket: &Path, command: Command) -> Result<serde_json::Value> {
    let mut stream = UnixStream::connect(socket).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => anyhow!(
            "the meshsec daemon is not running (no control socket at {}); start it with \
             `meshsec run -c FILE` or `systemctl start meshsec`",
            socket.display()
        ),
        std::io::ErrorKind::PermissionDenied => anyhow!(
            "permission denied on {}: the control socket is root-only; run this as root",
            socket.display()
        ),
        _ => anyhow!("cannot connect to {}: {e}", socket.display()),
    })?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut line = serde_json::to_string(&Request {
        version: PROTOCOL_VERSION,
        command,
    })?;
    line.push('\n');
    stream.write_all(line.as_bytes())?;
    let mut reply = String::new();
    BufReader::new(&stream)
        .read_line(&mut reply)
        .context("the daemon did not answer")?;
    let resp: Response = serde_json::from_str(&reply)
        .with_context(|| format!("the daemon's answer is not protocol v{PROTOCOL_VERSION}"))?;
    if resp.version != PROTOCOL_VERSION {
        bail!(
            "the daemon speaks control protocol v{}, this CLI v{PROTOCOL_VERSION}: use the \
             meshsec binary the daemon runs",
            resp.version
        );
    }
    if !resp.ok {
        bail!("{}", resp.error.unwrap_or_else(|| "unknown error".into()));
    }
    Ok(resp.result.unwrap_or(serde_json::Value::Null))
}

/// `status`, typed.
pub fn status(socket: &Path) -> Result<Status> {
    let v = call(socket, Command::Status)?;
    serde_json::from_value(v).context("the daemon's status is not in the expected form")
}
