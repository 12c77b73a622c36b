//! `meshsec`: the daemon and CLI (DESIGN.md §1, §5).
//!
//! The daemon, its CLI subcommands and the demo arrive with the daemon issue; until then this
//! binary only reports its version and crypto backend, and says so.

use std::process::ExitCode;

use meshsec_crypto::aead::AeadBackend;

// The insecure crypto provider exists for fuzzing only. If any dependency path ever turns on
// `meshsec-crypto/insecure` for this binary, the build fails here.
const _: () = assert!(
    !meshsec_crypto::INSECURE_PROVIDER_ENABLED,
    "meshsec must never be built with meshsec-crypto's `insecure` feature"
);

fn main() -> ExitCode {
    let arg = std::env::args().nth(1);
    match arg.as_deref() {
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
