//! `meshsec`: the daemon and its CLI (DESIGN.md §1, §5) — one binary: `run` starts the
//! daemon, `status`/`sas`/`up`/`down`/`reload` talk to it over the control socket,
//! `check-config` validates a file, `demo` builds a local mesh in network namespaces.

mod cli;
mod config;
mod control;
mod daemon;
mod demo;
mod generate;
mod genpsk;
mod pki;
mod probe;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use cli::{Cli, Cmd, DebugCmd, Target, VERSION};
use meshsec_crypto::aead::AeadBackend;

// The insecure crypto provider exists for fuzzing only. If any dependency path ever turns on
// `meshsec-crypto/insecure` for this binary, the build fails here.
const _: () = assert!(
    !meshsec_crypto::INSECURE_PROVIDER_ENABLED,
    "meshsec must never be built with meshsec-crypto's `insecure` feature"
);

/// The AEAD library the data plane uses on this CPU.
pub fn aead_backend_name() -> &'static str {
    match AeadBackend::fastest() {
        AeadBackend::Ring => "ring",
        AeadBackend::AwsLc => "aws-lc",
    }
}

fn check_config(path: &Path) -> ExitCode {
    match daemon::load_config(path) {
        Ok(c) => {
            for w in &c.warnings {
                eprintln!("warning: {w}");
            }
            println!("{}: OK", c.path.display());
            let addrs: Vec<String> = c.node.addresses.iter().map(ToString::to_string).collect();
            println!(
                "node {} ({}) on {}, TUN {}",
                c.node.name,
                c.node.identity,
                addrs.join(", "),
                c.node.tun
            );
            if let Some(m) = &c.mesh {
                let list = |v: Vec<String>| {
                    if v.is_empty() {
                        "-".to_string()
                    } else {
                        v.join(", ")
                    }
                };
                println!(
                    "mesh {} ({} hosts): bypass {}; require {}; {}",
                    m.inventory.display(),
                    m.hosts,
                    list(m.bypass.iter().map(ToString::to_string).collect()),
                    list(
                        m.require
                            .iter()
                            .map(|p| format!("{}/{}", p.addr, p.len))
                            .collect()
                    ),
                    if m.fail_closed {
                        "fail-closed"
                    } else {
                        "fail-open"
                    }
                );
            }
            for (i, p) in c.peers.iter().enumerate() {
                let ts = |s: &[meshsec_wire::payload::AddrSelector]| {
                    s.iter()
                        .map(meshsec_ike::ts::describe)
                        .collect::<Vec<_>>()
                        .join(",")
                };
                let ike = c.peer_config(i).map_or(0, |pc| pc.ike_proposals.len());
                println!(
                    "peer {} {} ({}): {} <-> {}, {:?} mode, start {:?}, {} IKE / {} ESP proposal(s), IKE SA {}, CHILD SA {}, {}",
                    p.name,
                    p.address,
                    p.identity,
                    ts(&p.local_ts),
                    ts(&p.remote_ts),
                    p.mode,
                    p.start,
                    ike,
                    p.esp_proposals.len(),
                    humantime::format_duration(p.ike_lifetime),
                    humantime::format_duration(p.child_lifetime),
                    describe_auth(p)
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

/// How a peer authenticates, for `check-config`.
fn describe_auth(p: &config::Peer) -> String {
    use meshsec_ike::{LocalAuth, PeerAuth};
    let ours = match &p.local_auth {
        LocalAuth::Psk => "we sign with the PSK".to_string(),
        LocalAuth::Certificate(c) => format!(
            "we sign as \"{}\" (until {})",
            c.subject,
            meshsec_pki::show_time(c.not_after)
        ),
    };
    let theirs = match &p.peer_auth {
        PeerAuth::Psk { also } if also.is_empty() => "it with the PSK".to_string(),
        PeerAuth::Psk { .. } => "it with the PSK or the accepted next one".to_string(),
        PeerAuth::Certificate(t) => format!("it with a certificate from {}", t.anchor_names()),
    };
    format!("{ours}, {theirs}")
}

fn client(cmd: Cmd) -> anyhow::Result<()> {
    use control::{Command, client, render};
    match cmd {
        Cmd::Status { target, json } => {
            let s = client::status(&target.socket()?)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&s)?);
            } else {
                print!("{}", render::status(&s));
            }
        }
        Cmd::Sas { target, json } => {
            let s = client::status(&target.socket()?)?;
            if json {
                let sas: Vec<_> = s
                    .peers
                    .iter()
                    .map(|p| {
                        serde_json::json!({
                            "peer": p.name, "state": p.state,
                            "ike_sas": p.ike_sas, "child_sas": p.child_sas,
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&sas)?);
            } else {
                print!("{}", render::sas(&s));
            }
        }
        Cmd::Up { peer, wait, target } => {
            let socket = target.socket()?;
            let before = peer_status(&socket, &peer)?;
            if before.state == "established" {
                let since = before
                    .last_handshake_secs_ago
                    .map(|s| format!(" (IKE SA up for {})", control::render::duration(s)))
                    .unwrap_or_default();
                println!("{peer}: already established{since}");
                return Ok(());
            }
            client::call(&socket, Command::Up { peer: peer.clone() })?;
            wait_up(&socket, &peer, before.failures, wait)?;
        }
        Cmd::Down { peer, target } => {
            client::call(&socket_of(&target)?, Command::Down { peer: peer.clone() })?;
            println!("{peer}: deleting its SAs; it stays down until `meshsec up {peer}`");
        }
        Cmd::Debug {
            command:
                DebugCmd::DropSa {
                    peer,
                    inbound,
                    outbound: _,
                    target,
                },
        } => {
            let direction = if inbound { "inbound" } else { "outbound" };
            let r = client::call(
                &socket_of(&target)?,
                Command::DebugDropSa {
                    peer: peer.clone(),
                    direction: direction.into(),
                },
            )?;
            println!(
                "{peer}: {direction} SA {} dropped from the data plane (nobody was told)",
                r.get("spi").and_then(|v| v.as_str()).unwrap_or("?")
            );
        }
        Cmd::Rekey {
            peer,
            ike,
            reauth,
            target,
        } => {
            client::call(
                &socket_of(&target)?,
                Command::Rekey {
                    peer: peer.clone(),
                    ike,
                    reauth,
                },
            )?;
            let what = match (reauth, ike) {
                (true, _) => "reauthentication",
                (false, true) => "IKE SA rekey",
                (false, false) => "CHILD SA rekey",
            };
            println!("{peer}: {what} started");
        }
        Cmd::Reload { target } => {
            let r = client::call(&socket_of(&target)?, Command::Reload)?;
            let r: control::ReloadReport = serde_json::from_value(r)?;
            println!(
                "reloaded: {} added, {} removed, {} renegotiated, {} updated in place, {} unchanged",
                r.added.len(),
                r.removed.len(),
                r.changed.len(),
                r.updated.len(),
                r.unchanged.len()
            );
            for (what, names) in [
                ("added", &r.added),
                ("removed", &r.removed),
                ("renegotiated", &r.changed),
                ("updated in place", &r.updated),
            ] {
                if !names.is_empty() {
                    println!("  {what}: {}", names.join(", "));
                }
            }
            for w in &r.warnings {
                println!("  warning: {w}");
            }
        }
        _ => {}
    }
    Ok(())
}

fn socket_of(t: &Target) -> anyhow::Result<PathBuf> {
    t.socket()
}

/// One peer's status, or an error naming the peers there are.
fn peer_status(socket: &Path, peer: &str) -> anyhow::Result<control::PeerStatus> {
    let s = control::client::status(socket)?;
    let names: Vec<String> = s.peers.iter().map(|p| p.name.clone()).collect();
    s.peers
        .into_iter()
        .find(|p| p.name == peer)
        .ok_or_else(|| anyhow::anyhow!("no peer named {peer:?}; configured: {}", names.join(", ")))
}

/// Where an attempt that has not finished stands, from its IKE SA's state, with the likely
/// cause when it stays there.
fn stuck_at(p: &control::PeerStatus) -> String {
    let state = p.ike_sas.last().map(|s| s.state.as_str());
    match state {
        Some("ExpectSaInitResponse") => format!(
            "no answer from {} to IKE_SA_INIT: is its IKE daemon running, and are UDP 500 \
             and 4500 open both ways?",
            p.address
        ),
        Some("ExpectAuthResponse") => format!(
            "{} answered IKE_SA_INIT but not IKE_AUTH: large UDP datagrams or port 4500 \
             dropped on the way?",
            p.address
        ),
        Some("Established") => "the IKE SA is up, its CHILD SA is not installed yet".to_string(),
        _ => format!("state {}", p.state),
    }
}

/// After `up`: waits (at most `wait` seconds) until the peer is established or an attempt
/// fails — a failure newer than the `failures_before` the peer had — and says which; says
/// early where an attempt hangs.
fn wait_up(socket: &Path, peer: &str, failures_before: u64, wait: u64) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let mut hinted = false;
    loop {
        let p = peer_status(socket, peer)?;
        if p.state == "established" {
            let took = p
                .handshake_ms
                .map(|ms| format!(" in {ms} ms"))
                .unwrap_or_default();
            println!("{peer}: established{took}");
            return Ok(());
        }
        if p.failures > failures_before {
            anyhow::bail!("{peer}: {}", p.last_failure.unwrap_or_default());
        }
        let waited = started.elapsed();
        if !hinted && waited > std::time::Duration::from_secs(3) {
            eprintln!("{peer}: still connecting after 3 s: {}", stuck_at(&p));
            hinted = true;
        }
        if waited > std::time::Duration::from_secs(wait) {
            anyhow::bail!(
                "{peer}: not established after {wait} s: {} (the daemon keeps trying; see `meshsec status`)",
                stuck_at(&p)
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Commands that only print end quietly when their reader goes away (`| head`). Not the
    // daemon, nor commands with something to undo (the demo's teardown) or waits.
    if matches!(
        cli.command,
        None | Some(
            Cmd::CheckConfig { .. }
                | Cmd::Status { .. }
                | Cmd::Sas { .. }
                | Cmd::Completions { .. }
                | Cmd::Man { .. }
                | Cmd::Genpsk { .. }
        )
    ) {
        daemon::os::default_sigpipe();
    }
    if cli.version {
        println!(
            "meshsec {VERSION} (ESP AEAD backend on this CPU: {})",
            aead_backend_name()
        );
        return ExitCode::SUCCESS;
    }
    let Some(cmd) = cli.command else {
        eprintln!("meshsec {VERSION}: a subcommand is needed; see `meshsec --help`");
        return ExitCode::from(2);
    };
    let result = match cmd {
        Cmd::Run { config, log_level } => {
            tracing_subscriber::fmt()
                .with_writer(std::io::stderr)
                .with_max_level(log_level)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .init();
            daemon::run(&config)
        }
        Cmd::CheckConfig { config } => return check_config(&config),
        Cmd::Demo {
            nodes,
            keep,
            binary,
            clean,
        } => demo::run(nodes, keep, binary, clean),
        Cmd::Pki { command } => pki::run(command),
        Cmd::Completions { shell } => generate::completions(shell),
        Cmd::Genpsk { output, force } => genpsk::run(output.as_deref(), force),
        Cmd::Man { dir } => generate::man_pages(&dir),
        Cmd::DemoEcho { bind } => probe::echo(bind),
        Cmd::DemoProbe { from, to, count } => probe::probe(from, to, count),
        other => client(other),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
