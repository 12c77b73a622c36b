//! Helpers shared by the integration tests: where `../shared/` is and how to read its vectors.
#![allow(dead_code)]

use std::path::PathBuf;

/// The team shelf `shared/` beside the repository root.
pub fn shared_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared");
    assert!(
        dir.join("vectors").is_dir(),
        "{} not found: the tests read the team's vectors from ../shared beside the repo",
        dir.display()
    );
    dir
}

/// The strongSwan scenarios (s1..s4) as parsed `keys.json` documents.
pub fn strongswan_scenarios() -> Vec<(String, serde_json::Value)> {
    let mut out = Vec::new();
    for s in ["s1", "s2", "s3", "s4"] {
        let path = shared_dir()
            .join("vectors/strongswan")
            .join(s)
            .join("keys.json");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        out.push((s.to_string(), serde_json::from_str(&text).unwrap()));
    }
    out
}

/// Decodes a lowercase hex string from the vectors.
pub fn unhex(v: &serde_json::Value) -> Vec<u8> {
    hex::decode(
        v.as_str()
            .unwrap_or_else(|| panic!("not a hex string: {v}")),
    )
    .unwrap()
}
