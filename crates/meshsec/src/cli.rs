//! The command line: every subcommand, its options and its help text (clap derive). The man
//! pages and shell completions are generated from these definitions, so they cannot drift.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::{daemon, pki};

/// meshsec: an IKEv2 daemon with its own userspace ESP data plane.
#[derive(Parser)]
#[command(
    version = VERSION,
    about,
    disable_version_flag = true,
    after_help = "Getting started:\n  \
        meshsec demo                                   # a 4-node mesh in namespaces (root)\n  \
        meshsec genpsk -o /etc/meshsec/keys/gw2.psk    # a key for a peer\n  \
        meshsec check-config -c /etc/meshsec/meshsec.toml\n  \
        systemctl enable --now meshsec\n  \
        meshsec status\n\n\
        Configuration: /usr/share/doc/meshsec/config.md; `man meshsec-SUBCOMMAND`."
)]
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
    #[command(
        after_help = "Examples:\n  meshsec run -c /etc/meshsec/meshsec.toml\n  meshsec run -c meshsec.toml --log-level debug   # more detail in the log\n  systemctl start meshsec                        # the packaged way (Type=notify)"
    )]
    Run {
        /// Configuration file.
        #[arg(short = 'c', long, default_value = "/etc/meshsec/meshsec.toml")]
        config: PathBuf,
        /// Log level: error, warn, info, debug, trace.
        #[arg(long, default_value = "info")]
        log_level: tracing::Level,
    },
    /// Validate a configuration file and print a summary.
    #[command(
        after_help = "Examples:\n  meshsec check-config -c /etc/meshsec/meshsec.toml\n  Errors name FILE:LINE: KEY: PROBLEM; the exit status is 1 on an error."
    )]
    CheckConfig {
        /// Configuration file.
        #[arg(short = 'c', long)]
        config: PathBuf,
    },
    /// Peers, SAs, traffic and drops of the running daemon.
    #[command(
        after_help = "Examples:\n  meshsec status\n  meshsec status --json | jq '.peers[] | {name, state, last_failure}'\n  meshsec status -c /etc/meshsec/meshsec.toml   # the socket named in that file"
    )]
    Status {
        #[command(flatten)]
        target: Target,
        /// Print the daemon's answer as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the IKE and CHILD SAs.
    #[command(after_help = "Examples:\n  meshsec sas\n  meshsec sas --json")]
    Sas {
        #[command(flatten)]
        target: Target,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Bring a peer's tunnel up now and wait until it is (or say why not).
    #[command(after_help = "Examples:\n  meshsec up gw2\n  meshsec up gw2 --wait 60")]
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
    #[command(
        after_help = "Examples:\n  meshsec down gw2   # Deletes sent; `meshsec up gw2` brings it back"
    )]
    Down {
        /// The peer's name.
        peer: String,
        #[command(flatten)]
        target: Target,
    },
    /// Rekey a peer's CHILD SA (or with --ike its IKE SA; with --reauth reauthenticate) now,
    /// without interrupting traffic.
    #[command(
        after_help = "Examples:\n  meshsec rekey gw2           # new CHILD SA keys\n  meshsec rekey gw2 --ike     # new IKE SA keys\n  meshsec rekey gw2 --reauth  # authenticate again (e.g. after a certificate renewal)"
    )]
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
    #[command(
        after_help = "Examples:\n  meshsec reload                 # or: systemctl reload meshsec, kill -HUP PID\n  meshsec check-config -c /etc/meshsec/meshsec.toml && meshsec reload"
    )]
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
    #[command(
        after_help = "Examples:\n  meshsec demo                 # 4 nodes, then torn down\n  meshsec demo --nodes 8 --keep   # leave it running to explore\n  meshsec demo --clean"
    )]
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
    #[command(after_help = "Examples:\n  \
        meshsec pki ca --name \"Example Mesh CA\" --out /etc/meshsec/ca\n  \
        meshsec pki issue gw1.example.org --ca /etc/meshsec/ca/ca.pem --ca-key /etc/meshsec/ca/ca.key \\\n      \
        --address 192.0.2.1 --out /etc/meshsec/certs\n  \
        meshsec pki revoke --ca /etc/meshsec/ca/ca.pem --ca-key /etc/meshsec/ca/ca.key \\\n      \
        --out /etc/meshsec/ca/ca.crl /etc/meshsec/certs/gw3.example.org.pem\n  \
        meshsec pki list /etc/meshsec/certs")]
    Pki {
        #[command(subcommand)]
        command: pki::PkiCmd,
    },
    /// Make a random pre-shared key (256 bits, as 64 hex digits): printed, or written to a
    /// new root-only file.
    #[command(after_help = "Examples:\n  \
        meshsec genpsk -o /etc/meshsec/keys/gw2.psk   # then copy it to gw2 over ssh\n  \
        meshsec genpsk                                # print one")]
    Genpsk {
        /// Write the key to this file (mode 600) instead of printing it.
        #[arg(short = 'o', long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Replace the file if it exists.
        #[arg(long, requires = "output")]
        force: bool,
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
