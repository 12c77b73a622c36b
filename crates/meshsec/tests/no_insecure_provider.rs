//! The release binary cannot contain the insecure crypto provider: the dependency graph cargo
//! resolves for the `meshsec` binary has `meshsec-crypto` without its `insecure`
//! feature. (The binary also asserts this at compile time.) A control run shows the check does
//! see the feature when it is on.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::process::Command;

/// Features cargo enables for meshsec-crypto when resolving `args`.
fn crypto_features(args: &[&str]) -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "tree",
            "-e",
            "normal,build",
            "--prefix",
            "none",
            "-f",
            "{p} [{f}]",
        ])
        .args(args)
        .output()
        .expect("run cargo tree");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("meshsec-crypto "))
        .unwrap_or_else(|| panic!("meshsec-crypto not in the tree:\n{text}"));
    let feats = line.rsplit_once('[').unwrap().1.trim_end_matches(']');
    feats
        .split(',')
        .filter(|f| !f.is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn release_binary_has_no_insecure_provider() {
    let feats = crypto_features(&["-p", "meshsec"]);
    assert!(!feats.iter().any(|f| f == "insecure"), "{feats:?}");
    // Control: the same check sees the feature when it is enabled.
    let on = crypto_features(&["-p", "meshsec-crypto", "--features", "insecure"]);
    assert!(on.iter().any(|f| f == "insecure"), "{on:?}");
}
