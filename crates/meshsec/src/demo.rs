//! `meshsec demo`: placeholder replaced below.
use std::path::PathBuf;
pub fn run(_n: usize, _keep: bool, _b: Option<PathBuf>) -> anyhow::Result<()> {
    anyhow::bail!("demo: not written yet")
}
