//! Man pages and shell completions, generated from the clap definitions in `cli.rs` (`meshsec
//! man --dir DIR`, `meshsec completions SHELL`): the help text is written once, so the pages,
//! the completions and `--help` cannot disagree. `scripts/build-deb` runs these on the built
//! binary and packages what they write.
//!
//! One page per command: `meshsec.1`, and `meshsec-SUBCOMMAND.1` for every visible subcommand,
//! nested ones too (`meshsec-pki-issue.1`); hidden subcommands (the demo's helpers) get none.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use clap::CommandFactory;

use crate::cli::{Cli, VERSION};

/// Writes `meshsec.1` and one page per visible subcommand into `dir` (created if missing);
/// prints each file written.
pub(crate) fn man_pages(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut cmd = Cli::command().disable_help_subcommand(true);
    // Gives each subcommand its display name (`meshsec-status`): the page's title and file name.
    cmd.build();
    write_pages(&cmd, dir)
}

fn write_pages(cmd: &clap::Command, dir: &Path) -> Result<()> {
    let man = clap_mangen::Man::new(cmd.clone())
        .source(format!("meshsec {VERSION}"))
        .manual("meshsec manual");
    let path = dir.join(man.get_filename());
    let mut page = Vec::new();
    man.render(&mut page)
        .with_context(|| format!("rendering {}", path.display()))?;
    std::fs::write(&path, page).with_context(|| format!("writing {}", path.display()))?;
    println!("{}", path.display());
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(sub, dir)?;
    }
    Ok(())
}

/// Prints the completion script for `shell` on stdout.
pub(crate) fn completions(shell: clap_complete::Shell) -> Result<()> {
    // Rendered in memory first: clap_complete panics when its writer fails, and stdout may be
    // a closed pipe.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "meshsec", &mut script);
    let mut out = std::io::stdout().lock();
    out.write_all(&script)
        .and_then(|()| out.flush())
        .with_context(|| format!("writing the {shell} completion script to stdout"))
}
