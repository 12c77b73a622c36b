//! Credentials change on running daemons without an outage: a PSK rotated one host after the
//! other, and a new host certificate picked up at the next reauthentication — both under a
//! sequenced stream each way that must lose nothing, with reauthentications forced at every
//! step so that each intermediate configuration really authenticates.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Lab, MESHSEC, must, sh};

/// Replaces every `from` by `to` in the configuration file `file` (which must contain it) and has
/// the daemon at `sock` reload it; returns `meshsec reload`'s report.
fn edit_and_reload(file: &Path, sock: &Path, from: &str, to: &str) -> String {
    let text = std::fs::read_to_string(file).unwrap();
    assert!(
        text.contains(from),
        "{from:?} not in {}:\n{text}",
        file.display()
    );
    std::fs::write(file, text.replace(from, to)).unwrap();
    must(&format!("{MESHSEC} reload -s {}", sock.display()))
}

/// Reauthenticates `peer` from the daemon at `sock` and gives it time to complete — and
/// to age past `REPLACEABLE_AGE` (2 s): a new SA from the peer within 2 s of the last
/// authentication counts as a simultaneous initiation, not a reauthentication.
fn reauth(sock: &Path, peer: &str) {
    must(&format!(
        "{MESHSEC} rekey {peer} --reauth -s {}",
        sock.display()
    ));
    std::thread::sleep(Duration::from_millis(3000));
}

/// The certificate the peer authenticated the established, current IKE SA with.
fn peer_certificate(peer: &serde_json::Value) -> serde_json::Value {
    peer["ike_sas"]
        .as_array()
        .and_then(|sas| {
            sas.iter()
                .filter(|s| s["state"] == "Established")
                .find_map(|s| s["peer_certificate"].as_object().cloned())
        })
        .map(serde_json::Value::Object)
        .unwrap_or_default()
}

fn write_key(path: &Path, key: &str) {
    std::fs::write(path, format!("{key}\n")).unwrap();
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
}

/// Zero loss each way, and a stream long enough to have crossed every step.
fn assert_lossless(
    lab: &Lab,
    sa: &Path,
    sb: &Path,
    ab: &serde_json::Value,
    ba: &serde_json::Value,
) {
    for (dir, r) in [("a->b", ab), ("b->a", ba)] {
        assert!(r["total"].as_u64().unwrap() > 6_000, "{dir}: {r}");
        assert_eq!(
            r["lost"],
            0,
            "{dir}: messages lost across the rotation: {r}\na: {}\nb: {}\na log:\n{}",
            lab.status(sa),
            lab.status(sb),
            lab.log("a")
        );
    }
}

#[test]
fn a_psk_rotated_one_host_after_the_other_under_load_loses_nothing() {
    let mut lab = Lab::new("psk-rotation");
    let p = lab.pair(("always", "passive"), "", "");
    let (a_toml, b_toml) = (lab.dir.join("a.toml"), lab.dir.join("b.toml"));
    let old_key = common::pair_key(&lab.dir, "a", "b");
    let new_key = lab.dir.join("psk-a-b-next");
    write_key(&new_key, "the next pre-shared key of the pair a-b, rotated");
    lab.wait_established(&p.sa, "a", "b");
    let (sa, sb) = (p.sa.clone(), p.sb.clone());
    let psk_line = |k: &Path| format!("psk_file = \"{}\"", k.display());
    let accept_line = |k: &Path| format!("accept_psk_file = \"{}\"", k.display());
    let (old, new) = (old_key.clone(), new_key.clone());
    let steps = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(3));
        let mut reports = Vec::new();
        // 1. Both accept the new key (either order), each step proven by reauthentications
        //    started by both sides.
        for (file, sock, peer) in [(&a_toml, &sa, "b"), (&b_toml, &sb, "a")] {
            reports.push(edit_and_reload(
                file,
                sock,
                &psk_line(&old),
                &format!("{}\n{}", psk_line(&old), accept_line(&new)),
            ));
            reauth(sock, peer);
        }
        // 2. Each signs with the new key and accepts the old one, one after the other.
        for (file, sock) in [(&a_toml, &sa), (&b_toml, &sb)] {
            reports.push(edit_and_reload(
                file,
                sock,
                &format!("{}\n{}", psk_line(&old), accept_line(&new)),
                &format!("{}\n{}", psk_line(&new), accept_line(&old)),
            ));
            reauth(&sa, "b");
            reauth(&sb, "a");
        }
        // 3. The old key is forgotten.
        for (file, sock, peer) in [(&a_toml, &sa, "b"), (&b_toml, &sb, "a")] {
            reports.push(edit_and_reload(
                file,
                sock,
                &format!("\n{}", accept_line(&old)),
                "",
            ));
            reauth(sock, peer);
        }
        reports
    });
    let (ab, ba) = lab.checked_streams((&p.a, "10.1.0.1"), (&p.b, "10.2.0.1"), 32, 50);
    let reports = steps.join().unwrap();
    for r in &reports {
        // Credentials are updated in place: established SAs stay.
        assert!(
            r.contains("0 renegotiated, 1 updated in place"),
            "a key change must not renegotiate: {r}"
        );
    }
    assert_lossless(&lab, &p.sa, &p.sb, &ab, &ba);
    let (pa, pb) = (lab.peer(&p.sa, "b"), lab.peer(&p.sb, "a"));
    let reauths = pa["reauths"].as_u64().unwrap();
    eprintln!("PSK rotation: {reauths} reauthentications; a->b {ab}; b->a {ba}");
    assert!(reauths >= 7, "{pa}");
    for p in [&pa, &pb] {
        assert_eq!(p["state"], "established", "{p}");
        assert!(p["last_failure"].is_null(), "an authentication failed: {p}");
    }
    // Only the new key is left: a fresh start authenticates with it.
    let cfg = std::fs::read_to_string(lab.dir.join("a.toml")).unwrap();
    assert!(
        cfg.contains(&psk_line(&new_key)) && !cfg.contains("accept_psk_file"),
        "{cfg}"
    );
}

/// Two daemons authenticated by certificates from `meshsec pki` (b passive).
fn cert_pair(lab: &mut Lab) -> common::Pair {
    let pki = |args: &str| must(&format!("cd {} && {MESHSEC} pki {args}", lab.dir.display()));
    pki("ca --out pki/ca");
    pki(
        "issue a.test --ca pki/ca/ca.pem --ca-key pki/ca/ca.key --address 192.0.2.1 --out pki/certs",
    );
    pki(
        "issue b.test --ca pki/ca/ca.pem --ca-key pki/ca/ca.key --address 192.0.2.2 --out pki/certs",
    );
    let auth = |me: &str| {
        format!(
            "auth = \"cert\"\ncert_file = \"{d}/certs/{me}.test.pem\"\nkey_file = \"{d}/certs/{me}.test.key\"\nca_files = [\"{d}/ca/ca.pem\"]\n",
            d = lab.dir.join("pki").display()
        )
    };
    let (a, b) = (auth("a"), auth("b"));
    lab.pair_with(("always", "passive"), "", (&a, &b))
}

#[test]
fn a_new_host_certificate_is_used_at_the_next_reauthentication_without_loss() {
    let mut lab = Lab::new("cert-rotation");
    let common::Pair { a, b, sa, sb, .. } = cert_pair(&mut lab);
    lab.wait_established(&sa, "a", "b");
    let before = peer_certificate(&lab.peer(&sb, "a"));
    assert_eq!(before["subject"], "CN=a.test", "{before}");
    assert!(before["days_left"].as_i64().unwrap() >= 363, "{before}");
    let dir = lab.dir.clone();
    let (sa2, sb2) = (sa.clone(), sb.clone());
    let steps = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(3));
        // A new certificate (and key) for a, valid 200 days, in a new place.
        must(&format!(
            "cd {} && {MESHSEC} pki issue a.test --ca pki/ca/ca.pem --ca-key pki/ca/ca.key --address 192.0.2.1 --days 200 --out pki/renewed",
            dir.display()
        ));
        let report = edit_and_reload(
            &dir.join("a.toml"),
            &sa2,
            "/certs/a.test.",
            "/renewed/a.test.",
        );
        // Established SAs keep the old certificate until the next authentication.
        let still = sh(&format!("{MESHSEC} status --json -s {}", sb2.display()));
        reauth(&sa2, "b");
        reauth(&sb2, "a");
        (report, still)
    });
    let (ab, ba) = lab.checked_streams((&a, "10.1.0.1"), (&b, "10.2.0.1"), 14, 50);
    let (report, still) = steps.join().unwrap();
    assert!(
        report.contains("0 renegotiated, 1 updated in place"),
        "{report}"
    );
    let still: serde_json::Value = serde_json::from_slice(&still.stdout).unwrap();
    assert!(
        peer_certificate(&still["peers"][0])["days_left"]
            .as_i64()
            .unwrap()
            >= 363,
        "the reload alone must not change the established SA: {still}"
    );
    assert_lossless(&lab, &sa, &sb, &ab, &ba);
    // After the reauthentications, b sees the renewed certificate and a shows it as its own.
    let after = lab.peer(&sb, "a");
    let days = peer_certificate(&after)["days_left"].as_i64().unwrap();
    assert!((198..=200).contains(&days), "{after}");
    let own = lab.peer(&sa, "b")["certificate"]["days_left"]
        .as_i64()
        .unwrap();
    assert!((198..=200).contains(&own));
    assert!(after["last_failure"].is_null(), "{after}");
    eprintln!("certificate renewal: a->b {ab}; b->a {ba}");
}
