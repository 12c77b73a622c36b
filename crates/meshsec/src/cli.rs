//! The command line: every subcommand, its options and its help text (clap derive). The man
//! pages and shell completions are generated from these definitions, so they cannot drift.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::{daemon, pki};

/// meshsec: an IKEv2 daemon with its own userspace ESP data plane.
#[derive(Parser)]
#[command(version = VERSION, about, disable_version_flag = true)]
pub(crate) struct Cli {
    /// Print the version and the AEAD library chosen for this CPU.
    #[arg(short = 'V', long = "version")]
    pub(crate) version: bool,
    #[command(subcommand)]
    pub(crate) command: Option<Cmd>,
}

pub(crate) const VERSION: &str = env!("CARGO_PKG_VERSION");
const DEFAULT_SOCKET: &str = "/run/meshsec/control.sock";

/// Where the CLI finds the daemon.
#[derive(clap::Args)]
pub(crate) struct Target {
    /// Control socket of the daemon.
    #[arg(short = 's', long, default_value = DEFAULT_SOCKET, conflicts_with = "config")]
    pub(crate) socket: PathBuf,
    /// Take the control socket from this configuration file instead.
    #[arg(short = 'c', long)]
    pub(crate) config: Option<PathBuf>,
}

impl Target {
    pub(crate) fn socket(&self) -> anyhow::Result<PathBuf> {
        match &self.config {
            Some(c) => daemon::load_config(c)
                .map(|c| c.node.control_socket)
                .map_err(|e| anyhow::anyhow!("{e}")),
            None => Ok(self.socket.clone()),
        }
    }
}

#[derive(Subcommand)]
pub(crate) enum Cmd {
    /// Run the daemon in the foreground (logs to stderr).
    Run {
        /// Configuration file.
        #[arg(short = 'c', long, default_value = "/etc/meshsec/meshsec.toml")]
        config: PathBuf,
        /// Log level: error, warn, info, debug, trace.
        #[arg(long, default_value = "info")]
        log_level: tracing::Level,
    },
    /// Validate a configuration file and print a summary.
    CheckConfig {
        /// Configuration file.
        #[arg(short = 'c', long)]
        config: PathBuf,
    },
    /// Peers, SAs, traffic and drops of the running daemon.
    Status {
        #[command(flatten)]
        target: Target,
        /// Print the daemon's answer as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the IKE and CHILD SAs.
    Sas {
        #[command(flatten)]
        target: Target,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Bring a peer's tunnel up now and wait until it is (or say why not).
    Up {
        /// The peer's name.
        peer: String,
        /// Give up waiting after this many seconds (the daemon keeps trying).
        #[arg(long, default_value_t = 20)]
        wait: u64,
        #[command(flatten)]
        target: Target,
    },
    /// Delete a peer's SAs and keep them down until `up`.
    Down {
        /// The peer's name.
        peer: String,
        #[command(flatten)]
        target: Target,
    },
    /// Rekey a peer's CHILD SA (or with --ike its IKE SA; with --reauth reauthenticate) now,
    /// without interrupting traffic.
    Rekey {
        /// The peer's name.
        peer: String,
        /// Rekey the IKE SA instead.
        #[arg(long, conflicts_with = "reauth")]
        ike: bool,
        /// Reauthenticate: a new IKE SA and CHILD SA from scratch (IKE_SA_INIT, IKE_AUTH),
        /// then the old ones are deleted.
        #[arg(long)]
        reauth: bool,
        #[command(flatten)]
        target: Target,
    },
    /// Re-read the configuration: only peers that changed are touched.
    Reload {
        #[command(flatten)]
        target: Target,
    },
    /// Fault injection for tests and operators reproducing problems.
    Debug {
        #[command(subcommand)]
        command: DebugCmd,
    },
    /// Build a full mesh of N daemons in network namespaces, ping every pair, print the
    /// status and a latency matrix, tear it down (root).
    Demo {
        /// Number of nodes (2-32).
        #[arg(long, default_value_t = 4)]
        nodes: usize,
        /// Leave the namespaces and daemons running, and print how to inspect and clean up.
        #[arg(long)]
        keep: bool,
        /// The meshsec binary the daemons run (default: this one).
        #[arg(long)]
        binary: Option<PathBuf>,
        /// Only remove a demo left running with --keep.
        #[arg(long)]
        clean: bool,
    },
    /// Certificates for a mesh: create a CA, issue host certificates, revoke, list expiry.
    Pki {
        #[command(subcommand)]
        command: pki::PkiCmd,
    },
    /// Print a shell completion script: `meshsec completions bash >
    /// /etc/bash_completion.d/meshsec`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Write the man pages (meshsec.1, meshsec-SUBCOMMAND.1) into DIR.
    Man {
        /// Directory to write to (created if missing).
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
    },
    /// (The demo's UDP echo, run inside its namespaces.)
    #[command(hide = true)]
    DemoEcho {
        /// Address and port to answer on.
        #[arg(long)]
        bind: std::net::SocketAddr,
    },
    /// (The demo's prober: RTTs to a `demo-echo`.)
    #[command(hide = true)]
    DemoProbe {
        /// Our address.
        #[arg(long)]
        from: std::net::IpAddr,
        /// The echo's address and port.
        #[arg(long)]
        to: std::net::SocketAddr,
        /// Probes to send.
        #[arg(long, default_value_t = 3)]
        count: u32,
    },
}

#[derive(Subcommand)]
pub(crate) enum DebugCmd {
    /// Remove one half of the newest CHILD SA with PEER from the data plane only (neither
    /// the IKE engine nor the peer is told): the one-sided SA that self-healing repairs.
    DropSa {
        /// The peer's name.
        peer: String,
        /// Drop the inbound half (the peer's ESP will reach us for no SA).
        #[arg(
            long,
            conflicts_with = "outbound",
            required_unless_present = "outbound"
        )]
        inbound: bool,
        /// Drop the outbound half (our traffic to the peer has no SA).
        #[arg(long)]
        outbound: bool,
        #[command(flatten)]
        target: Target,
    },
}
