//! What the daemon and the CLI say when something is wrong, as an operator meets it: `up`
//! names the cause as soon as the engine knows it (and says "already established"), a
//! refused CHILD SA is retried rather than left "connecting", a second daemon or a TUN name
//! clash is named as such. Real daemons in network namespaces (root).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::time::{Duration, Instant};

use common::{Lab, MESHSEC, sh, wait_for};

/// `meshsec ARGS -s SOCK`: (success, stdout, stderr, seconds taken).
fn cli(args: &str, sock: &std::path::Path) -> (bool, String, String, f64) {
    let t = Instant::now();
    let out = sh(&format!("{MESHSEC} {args} -s {}", sock.display()));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        t.elapsed().as_secs_f64(),
    )
}

#[test]
fn up_says_already_established_names_no_answer_and_a_refused_child_sa_is_retried() {
    common::require_root();
    let mut lab = Lab::new("msg-up");
    let p = lab.pair(("always", "passive"), "", "");
    lab.wait_established(&p.sa, "a", "b");

    // Up on a peer that is up: said at once, no "established in 0 ms".
    let (ok, out, err, took) = cli("up b", &p.sa);
    assert!(ok, "{err}");
    assert!(out.starts_with("b: already established"), "{out}");
    assert!(took < 2.0, "took {took} s");

    // b's daemon is gone: `up` says within a few seconds where it hangs and why, and ends
    // with the same cause.
    let (ok, _, _, _) = cli("down b", &p.sa);
    assert!(ok);
    assert!(lab.wait_no_ike_sa(&p.sa, "b"), "{}", lab.peer(&p.sa, "b"));
    lab.stop("b", "KILL");
    let (ok, _, err, took) = cli("up b --wait 5", &p.sa);
    assert!(!ok);
    assert!(
        err.contains(
            "b: still connecting after 3 s: no answer from 192.0.2.2:500 to IKE_SA_INIT: is its IKE daemon running, and are UDP 500 and 4500 open both ways?"
        ),
        "{err}"
    );
    assert!(
        err.contains("b: not established after 5 s: no answer from 192.0.2.2:500"),
        "{err}"
    );
    assert!(took < 9.0, "took {took} s");

    // b is back with ESP proposals a cannot use: the IKE SA comes up, its CHILD SA is
    // refused. `up` names the refusal as soon as it happens; the childless IKE SA is deleted
    // rather than left "connecting", and a keeps retrying (with backoff).
    let cb = std::fs::read_to_string(lab.dir.join("b.toml"))
        .unwrap()
        .replace(
            "start = \"passive\"",
            "start = \"passive\"\nesp_proposals = [\"aes128-sha256\"]",
        );
    assert!(cb.contains("aes128-sha256"), "{cb}");
    lab.meshsec(&p.b, "b2", &cb.replace("b.sock", "b2.sock"));
    let (_, out, err, took) = cli("up b --wait 15", &p.sa);
    assert!(
        err.contains("b: ") && err.contains("NO_PROPOSAL_CHOSEN"),
        "{out}{err}"
    );
    assert!(
        took < 12.0,
        "the refusal took {took} s to be reported:\n{err}"
    );
    let before = lab.peer(&p.sa, "b")["failures"].as_u64().unwrap();
    let retried = wait_for(Duration::from_secs(10), || {
        let peer = lab.peer(&p.sa, "b");
        (peer["failures"].as_u64()? > before).then_some(())
    });
    assert!(
        retried.is_some(),
        "no retry after the refusal: {}\n{}",
        lab.peer(&p.sa, "b"),
        lab.log("a")
    );
    let cleaned = wait_for(Duration::from_secs(5), || {
        let peer = lab.peer(&p.sa, "b");
        (peer["state"] != "connecting").then_some(())
    });
    assert!(
        cleaned.is_some(),
        "still connecting: {}",
        lab.peer(&p.sa, "b")
    );
    assert!(
        lab.log("a")
            .contains("deleting the IKE SA whose CHILD SA was refused"),
        "{}",
        lab.log("a")
    );
}

#[test]
fn a_second_daemon_and_a_taken_tun_device_are_named() {
    common::require_root();
    let mut lab = Lab::new("msg-second");
    let p = lab.pair(("always", "passive"), "", "");
    lab.wait_established(&p.sa, "a", "b");
    let config = std::fs::read_to_string(lab.dir.join("a.toml")).unwrap();

    // A daemon started in a's namespace with `config` (file `name`): its error output.
    let refused = |name: &str, config: &str| {
        let file = lab.file(name, config);
        let out = lab.exec(
            &p.a,
            &format!("timeout 10 {MESHSEC} run -c {}", file.display()),
        );
        assert!(!out.status.success(), "{name} started");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    // The same configuration again: the running daemon is named, nothing else is touched.
    let err = refused("again.toml", &config);
    assert!(
        err.contains("another meshsec daemon is already running (it answers on"),
        "{err}"
    );

    // Another control socket and address, the same TUN name: the TUN device is taken.
    lab.exec_ok(&p.a, "ip addr add 192.0.2.9/24 dev lo");
    let other = config
        .replace("a.sock", "other.sock")
        .replace("addresses = [\"192.0.2.1\"]", "addresses = [\"192.0.2.9\"]");
    let err = refused("other.toml", &other);
    assert!(
        err.contains(
            "cannot create TUN device meshsec0: meshsec0 is already held by another program — another meshsec daemon (with another control socket)"
        ),
        "{err}"
    );
    // The first daemon did not notice.
    assert_eq!(lab.peer_state(&p.sa, "b"), "established");
}

#[test]
fn an_identity_mismatch_is_shown_with_the_peer_on_the_answering_side() {
    common::require_root();
    let mut lab = Lab::new("msg-identity");
    let p = lab.pair(("always", "passive"), "", "");
    lab.wait_established(&p.sa, "a", "b");
    // b now expects another identity of a: the reload drops the pair, a comes back as
    // fqdn:a.test and is refused.
    let cb = std::fs::read_to_string(lab.dir.join("b.toml"))
        .unwrap()
        .replace(
            "identity = \"fqdn:a.test\"",
            "identity = \"fqdn:gw-a.test\"",
        );
    assert!(cb.contains("fqdn:gw-a.test"), "{cb}");
    lab.file("b.toml", &cb);
    let (ok, out, err, _) = cli("reload", &p.sb);
    assert!(ok, "{out}{err}");
    let want = "identity mismatch: expected fqdn:gw-a.test, the peer presented fqdn:a.test (from 192.0.2.1:";
    let shown = wait_for(Duration::from_secs(10), || {
        let peer = lab.peer(&p.sb, "a");
        peer["last_refusal"]
            .as_str()
            .is_some_and(|r| r.contains(want))
            .then_some(())
    });
    assert!(
        shown.is_some(),
        "{}\n{}",
        lab.peer(&p.sb, "a"),
        lab.log("b")
    );
    let (_, status, _, _) = cli("status", &p.sb);
    assert!(
        status.contains(&format!("  last refusal: {want}")),
        "{status}"
    );
    // The initiator hears the refusal as such.
    let failed = wait_for(Duration::from_secs(10), || {
        lab.peer(&p.sa, "b")["last_failure"]
            .as_str()
            .is_some_and(|f| f.contains("AUTHENTICATION_FAILED"))
            .then_some(())
    });
    assert!(failed.is_some(), "{}", lab.peer(&p.sa, "b"));
}
