//! A UDP echo and a prober with round-trip times: what `meshsec demo` measures the tunnels
//! with, so the demo needs no `ping` on the machine (hidden subcommands `demo-echo` and
//! `demo-probe`, run inside the demo's namespaces).

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// An echo server stops after this long without a probe (a demo left with --keep does not
/// leave it running forever).
const IDLE_EXIT: Duration = Duration::from_secs(600);
/// How long a probe waits for its echo.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// The warm-up probe's number, and how often / how long it is tried before measuring.
const WARM_UP: u32 = u32::MAX;
const WARM_UP_TRIES: u32 = 10;
const WARM_UP_STEP: Duration = Duration::from_millis(300);
/// Between two probes.
const PROBE_INTERVAL: Duration = Duration::from_millis(200);

/// Sends every datagram back to where it came from, until idle for [`IDLE_EXIT`].
pub fn echo(bind: SocketAddr) -> Result<()> {
    let s = UdpSocket::bind(bind).with_context(|| format!("cannot bind UDP {bind}"))?;
    s.set_read_timeout(Some(IDLE_EXIT))?;
    let mut buf = [0u8; 64];
    loop {
        match s.recv_from(&mut buf) {
            Ok((n, from)) => {
                let _ = s.send_to(buf.get(..n).unwrap_or_default(), from);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return Ok(()),
            Err(e) => return Err(e).context("echo receive"),
        }
    }
}

/// Sends `count` probes from `from` to the echo at `to`; prints the RTT summary the way
/// ping does (`rtt min/avg/max/mdev = … ms`); fails unless every probe came back.
pub fn probe(from: IpAddr, to: SocketAddr, count: u32) -> Result<()> {
    let s = UdpSocket::bind(SocketAddr::new(from, 0))
        .with_context(|| format!("cannot bind UDP to {from}"))?;
    s.connect(to)?;
    let mut buf = [0u8; 64];
    // Warm-up, not measured: the echo may still be starting.
    s.set_read_timeout(Some(WARM_UP_STEP))?;
    for _ in 0..WARM_UP_TRIES {
        s.send(&WARM_UP.to_be_bytes())?;
        if matches!(s.recv(&mut buf), Ok(4)) && buf.get(..4) == Some(&WARM_UP.to_be_bytes()[..]) {
            break;
        }
    }
    s.set_read_timeout(Some(PROBE_TIMEOUT))?;
    let mut rtts = Vec::new();
    for seq in 0..count {
        let sent = Instant::now();
        s.send(&seq.to_be_bytes())?;
        // Only this probe's echo counts (a late one of an earlier probe is skipped).
        loop {
            match s.recv(&mut buf) {
                Ok(4) if buf.get(..4) == Some(&seq.to_be_bytes()[..]) => {
                    rtts.push(sent.elapsed().as_secs_f64() * 1000.0);
                    break;
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        std::thread::sleep(PROBE_INTERVAL);
    }
    println!(
        "{count} probes sent, {} echoed, {}% loss",
        rtts.len(),
        100 - 100 * rtts.len() as u32 / count.max(1)
    );
    if let (Some(min), Some(max)) = (
        rtts.iter().copied().reduce(f64::min),
        rtts.iter().copied().reduce(f64::max),
    ) {
        let n = rtts.len() as f64;
        let avg = rtts.iter().sum::<f64>() / n;
        let mdev = (rtts.iter().map(|r| (r - avg).powi(2)).sum::<f64>() / n).sqrt();
        println!("rtt min/avg/max/mdev = {min:.3}/{avg:.3}/{max:.3}/{mdev:.3} ms");
    }
    if rtts.len() as u32 != count {
        bail!(
            "{} of {count} probes to {to} unanswered",
            count - rtts.len() as u32
        );
    }
    Ok(())
}
