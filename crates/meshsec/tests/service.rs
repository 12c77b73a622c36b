//! The daemon as a systemd service (`Type=notify`): it says READY once it is set up, STATUS
//! with a summary, RELOADING/READY around a SIGHUP reload — which applies the change and
//! leaves the other peers' SAs alone, and does not stop the daemon — and STOPPING on
//! SIGTERM. The notify socket is one the test binds (what systemd does). Root, namespaces.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use common::{Lab, MESHSEC, wait_for};

/// The notifications received within `secs` seconds until one contains `want`.
fn until(sock: &UnixDatagram, want: &str, secs: u64) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        if let Ok(n) = sock.recv(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            let done = msg.contains(want);
            seen.push(msg);
            if done {
                break;
            }
        }
    }
    seen
}

#[test]
fn sd_notify_ready_reloading_stopping_and_sighup_reloads_without_touching_peers() {
    let mut lab = Lab::new("service");
    let p = lab.pair(("always", "passive"), "", "");
    lab.wait_established(&p.sa, "a", "b");
    // a again, this time as systemd would start it.
    lab.stop("a", "TERM");
    let notify_path = lab.dir.join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let config = lab.dir.join("a.toml");
    lab.spawn(
        &p.a,
        "a2",
        &format!(
            "env NOTIFY_SOCKET={} {MESHSEC} run -c {}",
            notify_path.display(),
            config.display()
        ),
    );
    let seen = until(&notify, "READY=1", 10);
    let ready = seen.last().cloned().unwrap_or_default();
    assert!(
        ready.contains("READY=1") && ready.contains("STATUS=0 of 1 peers established"),
        "{seen:?}\n{}",
        lab.log("a2")
    );
    lab.wait_established(&p.sa, "a2", "b");
    let spi = lab.peer(&p.sa, "b")["child_sas"][0]["spi_in"].clone();
    let seen = until(&notify, "STATUS=1 of 1 peers established", 8);
    assert!(
        seen.iter()
            .any(|m| m.contains("STATUS=1 of 1 peers established")),
        "{seen:?}"
    );

    // SIGHUP with a peer added: RELOADING, then READY; c appears, b keeps its SAs, the
    // daemon keeps running.
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "\n[[peer]]\nname = \"c\"\naddress = \"192.0.2.3\"\nidentity = \"fqdn:c.test\"\npsk_file = \"{}\"\nlocal_ts = [\"10.1.0.0/24\"]\nremote_ts = [\"10.3.0.0/24\"]\nstart = \"passive\"\n",
        common::pair_key(&lab.dir, "a", "c").display()
    ));
    std::fs::write(&config, text).unwrap();
    lab.signal("a2", "HUP");
    let seen = until(&notify, "READY=1", 10);
    let reloading = seen.iter().position(|m| m.contains("RELOADING=1"));
    let ready = seen.iter().rposition(|m| m.contains("READY=1"));
    assert!(
        matches!((reloading, ready), (Some(r), Some(d)) if r < d),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .any(|m| m.contains("MONOTONIC_USEC=") && m.contains("RELOADING=1")),
        "{seen:?}"
    );
    let added = wait_for(Duration::from_secs(5), || {
        (lab.peer_state(&p.sa, "c") == "idle").then_some(())
    });
    assert!(added.is_some(), "{}", lab.status(&p.sa));
    assert_eq!(lab.peer(&p.sa, "b")["child_sas"][0]["spi_in"], spi);
    assert!(
        lab.log("a2").contains("SIGHUP: reloading"),
        "{}",
        lab.log("a2")
    );

    // SIGTERM: STOPPING, and the peer is told (b loses its SAs).
    lab.signal("a2", "TERM");
    let seen = until(&notify, "STOPPING=1", 10);
    assert!(seen.iter().any(|m| m.contains("STOPPING=1")), "{seen:?}");
    assert!(lab.wait_no_ike_sa(&p.sb, "a"), "{}", lab.peer(&p.sb, "a"));
}
