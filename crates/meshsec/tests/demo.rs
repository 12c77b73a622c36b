//! `meshsec demo --nodes 4`, the README's main job, works as documented (root).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

#[test]
fn demo_with_four_nodes_pings_every_pair_and_cleans_up() {
    let _lab = common::Lab::new("demo");
    let out = common::sh(&format!("{} demo --nodes 4", common::MESHSEC));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("full mesh up: 12 directed pairs, 6 IKE SAs"),
        "{stdout}"
    );
    assert!(
        stdout.contains("peers: 3 configured, 3 established"),
        "{stdout}"
    );
    // The latency matrix: 4 rows, 3 measured cells each, no failure.
    let matrix: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.contains("average RTT"))
        .skip(2)
        .take(4)
        .collect();
    assert_eq!(matrix.len(), 4, "{stdout}");
    for row in &matrix {
        let cells: Vec<&str> = row.split_whitespace().skip(1).collect();
        assert_eq!(
            cells.iter().filter(|c| c.parse::<f64>().is_ok()).count(),
            3,
            "{row}"
        );
    }
    assert!(!stdout.contains("FAIL"), "{stdout}");
    // Torn down: no namespace left.
    let ns = common::must("ip netns list");
    assert!(!ns.contains("msdemo-"), "{ns}");
}
