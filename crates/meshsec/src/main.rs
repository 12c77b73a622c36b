//! `meshsec`: the daemon and CLI (DESIGN.md §1, §5).
//!
//! The daemon, its CLI subcommands and the demo arrive with the daemon issue; until then this
//! binary only reports its version and says so.

use std::process::ExitCode;

fn main() -> ExitCode {
    let arg = std::env::args().nth(1);
    match arg.as_deref() {
        Some("--version" | "-V") => {
            println!("meshsec {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!(
                "meshsec {}: the daemon (run, status, up, down, reload, demo) is not built yet; \
                 see README.md for what is implemented",
                env!("CARGO_PKG_VERSION")
            );
            ExitCode::from(2)
        }
    }
}
