//! Dev-only access to the team's test vectors in `shared/vectors/` (beside the repository, or
//! where `MESHSEC_SHARED` points): the real strongSwan captures and the published
//! known-answer vectors. Every function panics with a clear message when a file is missing,
//! since a test without its vectors must fail, not pass silently.
#![forbid(unsafe_code)]
#![allow(clippy::panic, clippy::expect_used, clippy::unwrap_used)]

use std::path::PathBuf;

pub use serde_json::Value;

/// The team shelf `shared/`.
pub fn shared_dir() -> PathBuf {
    let dir = std::env::var_os("MESHSEC_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    assert!(
        dir.join("vectors").is_dir(),
        "{} has no vectors/: the tests read the team's vectors from shared/ beside the repo \
         (or set MESHSEC_SHARED)",
        dir.display()
    );
    dir
}

/// Parses the JSON file at `vectors/<relative>`.
pub fn json(relative: &str) -> Value {
    let path = shared_dir().join("vectors").join(relative);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

/// The strongSwan scenarios s1..s4 as (name, keys.json).
pub fn strongswan_scenarios() -> Vec<(String, Value)> {
    ["s1", "s2", "s3", "s4"]
        .iter()
        .map(|s| (s.to_string(), json(&format!("strongswan/{s}/keys.json"))))
        .collect()
}

/// Decodes a hex string value (the vectors' byte encoding).
pub fn unhex(v: &Value) -> Vec<u8> {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("not a hex string: {v}"));
    hex::decode(s).unwrap_or_else(|e| panic!("bad hex {s:?}: {e}"))
}
