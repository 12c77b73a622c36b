//! `meshsec`: the daemon and CLI (DESIGN.md §1, §5).
//!
//! The daemon, its control subcommands and the demo arrive with the daemon issue; today the
//! binary reports its version and checks configuration files (`meshsec check-config -c FILE`).

mod config;

use std::path::PathBuf;
use std::process::ExitCode;

use meshsec_crypto::aead::AeadBackend;

// The insecure crypto provider exists for fuzzing only. If any dependency path ever turns on
// `meshsec-crypto/insecure` for this binary, the build fails here.
const _: () = assert!(
    !meshsec_crypto::INSECURE_PROVIDER_ENABLED,
    "meshsec must never be built with meshsec-crypto's `insecure` feature"
);

const USAGE: &str = "usage: meshsec --version | meshsec check-config -c FILE";

fn check_config(args: &[String]) -> ExitCode {
    let path = match args {
        [flag, file] if flag == "-c" || flag == "--config" => PathBuf::from(file),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match config::Config::load(&path) {
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
            for (i, p) in c.peers.iter().enumerate() {
                let ts = |s: &[meshsec_wire::payload::AddrSelector]| {
                    s.iter()
                        .map(meshsec_ike::ts::describe)
                        .collect::<Vec<_>>()
                        .join(",")
                };
                let ike = c.peer_config(i).map_or(0, |pc| pc.ike_proposals.len());
                println!(
                    "peer {} {} ({}): {} <-> {}, {:?} mode, start {:?}, {} IKE / {} ESP proposal(s), IKE SA {}s, CHILD SA {}s",
                    p.name,
                    p.address,
                    p.identity,
                    ts(&p.local_ts),
                    ts(&p.remote_ts),
                    p.mode,
                    p.start,
                    ike,
                    p.esp_proposals.len(),
                    p.ike_lifetime.as_secs(),
                    p.child_lifetime.as_secs()
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

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("--version" | "-V") => {
            let backend = match AeadBackend::fastest() {
                AeadBackend::Ring => "ring",
                AeadBackend::AwsLc => "aws-lc",
            };
            println!(
                "meshsec {} (ESP AEAD backend on this CPU: {backend})",
                env!("CARGO_PKG_VERSION")
            );
            ExitCode::SUCCESS
        }
        Some("check-config") => check_config(args.get(1..).unwrap_or_default()),
        _ => {
            eprintln!(
                "meshsec {}: the daemon (run, status, up, down, reload, demo) is not built yet; \
                 see README.md for what is implemented\n{USAGE}",
                env!("CARGO_PKG_VERSION")
            );
            ExitCode::from(2)
        }
    }
}
