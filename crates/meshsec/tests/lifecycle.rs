//! Lifecycle with real daemons in network namespaces (root): CHILD SAs rekeyed every ~5 s
//! and the IKE SA every ~10 s, by both sides, under iperf3 load, lose no message of a
//! sequenced stream; a killed and restarted peer is back at once (INITIAL_CONTACT); DPD
//! detects a netsplit and the tunnel returns with the path; lost SA halves heal; repeated
//! reauthentication (new IKE SAs from scratch, make-before-break) loses nothing either.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::time::Duration;

use common::Lab;

#[test]
fn child_and_ike_sa_rekeys_under_load_lose_nothing() {
    let mut lab = Lab::new("rekey");
    // 6 s CHILD and 12 s IKE lifetimes on both sides: CHILD SAs are rekeyed at a random
    // 4.8-5.4 s and the IKE SA at 9.6-10.8 s, so both roles initiate both kinds of rekey.
    let extra = "child_lifetime = \"6s\"\nike_lifetime = \"12s\"";
    let (a, b, sa, sb) = pair(&mut lab, "", extra);
    let secs: u32 = 60;
    let (ab, ba) = lab.checked_streams((&a, "10.1.0.1"), (&b, "10.2.0.1"), secs, 200);
    let pa = lab.peer(&sa, "b");

    let rekeys = pa["child_rekeys"].as_u64().unwrap();
    let ike_rekeys = pa["ike_rekeys"].as_u64().unwrap();
    eprintln!(
        "in {secs} s: {rekeys} CHILD SA and {ike_rekeys} IKE SA rekeys; a->b {ab}; b->a {ba}"
    );
    assert!(rekeys >= 9, "only {rekeys} CHILD rekeys\n{}", lab.log("a"));
    assert!(
        ike_rekeys >= 4,
        "only {ike_rekeys} IKE rekeys\n{}",
        lab.log("a")
    );
    for (dir, r) in [("a->b", &ab), ("b->a", &ba)] {
        assert!(r["total"].as_u64().unwrap() > 20_000, "{dir}: {r}");
        assert_eq!(
            r["lost"],
            0,
            "{dir}: messages lost across rekeys: {r}\na: {}\nb: {}",
            lab.status(&sa),
            lab.status(&sb)
        );
        assert!(r["longest_gap_ms"].as_f64().unwrap() < 100.0, "{dir}: {r}");
    }
    // One IKE SA and one CHILD SA pair left on each side, the same ones (a replaced IKE
    // SA may still be waiting for its Delete for a moment).
    let live = |p: &serde_json::Value| -> Vec<serde_json::Value> {
        p["ike_sas"].as_array().cloned().unwrap_or_default()
    };
    let settled = common::wait_for(Duration::from_secs(15), || {
        let (ia, ib) = (live(&lab.peer(&sa, "b")), live(&lab.peer(&sb, "a")));
        (ia.len() == 1 && ib.len() == 1 && ia[0]["spi_i"] == ib[0]["spi_i"]).then_some(())
    });
    assert!(
        settled.is_some(),
        "{}\n{}",
        lab.peer(&sa, "b"),
        lab.peer(&sb, "a")
    );
    let (pa, pb) = (lab.peer(&sa, "b"), lab.peer(&sb, "a"));
    let (ca, cb) = (
        pa["child_sas"].as_array().unwrap(),
        pb["child_sas"].as_array().unwrap(),
    );
    assert_eq!((ca.len(), cb.len()), (1, 1), "{pa}\n{pb}");
    assert_eq!(ca[0]["spi_in"], cb[0]["spi_out"]);
    assert!(pa["drops"].get("auth_failed").is_none(), "{pa}");
}

#[test]
fn reauthentication_under_load_loses_nothing() {
    let mut lab = Lab::new("reauth");
    // 12 s authentication lifetimes on both sides: reauthenticated at a random 9.6-10.8 s
    // by whichever side comes first, CHILD SAs rekeyed in between (7 s lifetime).
    let extra = "reauth_lifetime = \"12s\"\nchild_lifetime = \"7s\"";
    let (a, b, sa, sb) = pair(&mut lab, "", extra);
    let first = lab.peer(&sa, "b")["ike_sas"][0]["spi_i"].clone();
    let secs: u32 = 60;
    let (ab, ba) = lab.checked_streams((&a, "10.1.0.1"), (&b, "10.2.0.1"), secs, 200);
    let (pa, pb) = (lab.peer(&sa, "b"), lab.peer(&sb, "a"));
    let (reauths, rekeys) = (pa["reauths"].as_u64().unwrap(), pa["child_rekeys"].as_u64());
    eprintln!(
        "in {secs} s: {reauths} reauthentications, {rekeys:?} CHILD rekeys; a->b {ab}; b->a {ba}"
    );
    assert!(
        reauths >= 4,
        "only {reauths} reauthentications\n{}",
        lab.log("a")
    );
    // (Both sides count each one; a snapshot may catch one half done.)
    let other = pb["reauths"].as_u64().unwrap();
    assert!(other.abs_diff(reauths) <= 1, "{reauths} vs {other}: {pb}");
    for (dir, r) in [("a->b", &ab), ("b->a", &ba)] {
        assert!(r["total"].as_u64().unwrap() > 20_000, "{dir}: {r}");
        assert_eq!(
            r["lost"],
            0,
            "{dir}: messages lost across reauthentications: {r}\na: {}\nb: {}",
            lab.status(&sa),
            lab.status(&sb)
        );
        assert!(r["longest_gap_ms"].as_f64().unwrap() < 100.0, "{dir}: {r}");
    }
    // Settles on one IKE SA (a new one, not the first) and one CHILD SA pair.
    let settled = common::wait_for(Duration::from_secs(15), || {
        let (pa, pb) = (lab.peer(&sa, "b"), lab.peer(&sb, "a"));
        let (ia, ib) = (pa["ike_sas"].as_array()?, pb["ike_sas"].as_array()?);
        let one = ia.len() == 1 && ib.len() == 1 && ia[0]["spi_i"] == ib[0]["spi_i"];
        let pairs =
            pa["child_sas"].as_array()?.len() == 1 && pb["child_sas"].as_array()?.len() == 1;
        (one && pairs).then(|| ia[0]["spi_i"].clone())
    });
    let last = settled.unwrap_or_else(|| panic!("{}\n{}", lab.peer(&sa, "b"), lab.peer(&sb, "a")));
    assert_ne!(last, first);
    assert!(lab.log("a").contains("reauthenticated"), "{}", lab.log("a"));
}

/// Two daemons, both `start = "always"`, with `node_extra` in [node] and `extra` in the
/// peer sections, both established; returns (ns a, ns b, socket a, socket b).
fn pair(
    lab: &mut Lab,
    node_extra: &str,
    extra: &str,
) -> (String, String, std::path::PathBuf, std::path::PathBuf) {
    let p = lab.pair(("always", "always"), node_extra, extra);
    lab.file("veth_b", &p.veth_b);
    lab.wait_established(&p.sa, "a", "b");
    lab.wait_established(&p.sb, "b", "a");
    (p.a, p.b, p.sa, p.sb)
}

#[test]
fn a_peer_killed_and_restarted_is_reachable_again_within_2s() {
    let mut lab = Lab::new("reboot");
    let (a, b, sa, _) = pair(&mut lab, "", "");
    assert!(lab.ping(&a, "10.1.0.1", "10.2.0.1", 2));
    let old = lab.peer(&sa, "b")["ike_sas"][0]["spi_i"].clone();
    // kill -9: b says nothing; a still has the SA.
    lab.stop("b", "KILL");
    assert_eq!(lab.peer(&sa, "b")["ike_sas"][0]["spi_i"], old);
    let cfg = lab.dir.join("b.toml");
    let started = std::time::Instant::now();
    lab.spawn(
        &b,
        "b2",
        &format!(
            "{} run -c {} --log-level debug",
            common::MESHSEC,
            cfg.display()
        ),
    );
    // Traffic flows again soon after the restart, without a waiting for DPD: b's new IKE
    // SA carries INITIAL_CONTACT and a drops the stale one at once.
    let back = common::wait_for(Duration::from_secs(10), || {
        lab.exec(&a, "ping -c 1 -W 0.2 -I 10.1.0.1 10.2.0.1")
            .status
            .success()
            .then(|| started.elapsed())
    });
    let took =
        back.unwrap_or_else(|| panic!("not back after 10 s\n{}\n{}", lab.log("a"), lab.log("b2")));
    eprintln!("traffic back {} ms after the restart", took.as_millis());
    assert!(
        took < Duration::from_secs(2),
        "took {took:?}\n{}",
        lab.log("a")
    );
    let p = lab.peer(&sa, "b");
    assert_eq!(p["ike_sas"].as_array().unwrap().len(), 1, "{p}");
    assert_ne!(p["ike_sas"][0]["spi_i"], old);
    assert!(
        lab.log("a")
            .contains("the peer restarted (INITIAL_CONTACT)"),
        "{}",
        lab.log("a")
    );
}

#[test]
fn a_30s_netsplit_is_detected_by_dpd_and_healed_within_5s_of_the_path_returning() {
    let mut lab = Lab::new("netsplit");
    let (a, b, sa, sb) = pair(&mut lab, "", "dpd_delay = \"2s\"\ndpd_timeout = \"4s\"");
    let veth = std::fs::read_to_string(lab.dir.join("veth_b")).unwrap();
    assert!(lab.ping(&a, "10.1.0.1", "10.2.0.1", 2));
    // The split: b's link drops everything, both ways.
    lab.exec_ok(
        &b,
        &format!(
            "nft add table inet split && \
             nft 'add chain inet split in {{ type filter hook input priority -10; policy accept; }}' && \
             nft 'add chain inet split out {{ type filter hook output priority -10; policy accept; }}' && \
             nft add rule inet split in iifname {veth} drop && \
             nft add rule inet split out oifname {veth} drop"
        ),
    );
    let split = std::time::Instant::now();
    // DPD: a check after 2 s of silence, dead 4 s later (plus a tick of the daemon's timer).
    let dead = common::wait_for(Duration::from_secs(15), || {
        (lab.peer(&sa, "b")["deaths"].as_u64() == Some(1)).then(|| split.elapsed())
    });
    let dead = dead.unwrap_or_else(|| {
        panic!(
            "a never declared b dead: {}\n{}",
            lab.peer(&sa, "b"),
            lab.log("a")
        )
    });
    eprintln!("a declared b dead {} ms into the split", dead.as_millis());
    assert!(dead <= Duration::from_secs(2 + 4 + 2), "took {dead:?}");
    assert!(
        lab.log("a")
            .contains("declared dead (DPD unanswered for 4s)"),
        "{}",
        lab.log("a")
    );
    // b, on its side, reaches the same conclusion.
    let b_dead = common::wait_for(Duration::from_secs(10), || {
        (lab.peer(&sb, "a")["deaths"].as_u64() == Some(1)).then_some(())
    });
    assert!(b_dead.is_some(), "{}", lab.peer(&sb, "a"));
    let rest = Duration::from_secs(30).saturating_sub(split.elapsed());
    std::thread::sleep(rest);
    lab.exec_ok(&b, "nft delete table inet split");
    let healed = std::time::Instant::now();
    let back = common::wait_for(Duration::from_secs(20), || {
        lab.exec(&a, "ping -c 1 -W 0.2 -I 10.1.0.1 10.2.0.1")
            .status
            .success()
            .then(|| healed.elapsed())
    });
    let back = back.unwrap_or_else(|| {
        panic!(
            "not healed after 20 s: {}\n{}",
            lab.peer(&sa, "b"),
            lab.log("a")
        )
    });
    eprintln!(
        "tunnel back {} ms after the path returned",
        back.as_millis()
    );
    assert!(back < Duration::from_secs(5), "took {back:?}");
    // One IKE SA on each side again, without anyone running a command.
    let ok = common::wait_for(Duration::from_secs(5), || {
        let (pa, pb) = (lab.peer(&sa, "b"), lab.peer(&sb, "a"));
        (pa["ike_sas"].as_array().map(Vec::len) == Some(1)
            && pb["ike_sas"].as_array().map(Vec::len) == Some(1)
            && pa["child_sas"].as_array().map(Vec::len) == Some(1))
        .then_some(())
    });
    assert!(
        ok.is_some(),
        "{}\n{}",
        lab.peer(&sa, "b"),
        lab.peer(&sb, "a")
    );
}

/// Pings from a to b (one at a time, 200 ms apart) until one succeeds; returns how long.
fn time_to_ping(lab: &Lab, a: &str, limit: Duration) -> Option<Duration> {
    let start = std::time::Instant::now();
    common::wait_for(limit, || {
        lab.exec(a, "ping -c 1 -W 0.2 -I 10.1.0.1 10.2.0.1")
            .status
            .success()
            .then(|| start.elapsed())
    })
}

#[test]
fn a_dropped_inbound_or_outbound_half_heals_within_5s() {
    let mut lab = Lab::new("halfsa");
    let (a, _b, sa, sb) = pair(&mut lab, "", "");
    assert!(lab.ping(&a, "10.1.0.1", "10.2.0.1", 2));
    let cli = |args: &str| common::must(&format!("{} {args} -s {}", common::MESHSEC, sa.display()));
    // a loses its inbound half: b's ESP now reaches a for no SA; a tells b (INVALID_SPI),
    // b replaces the CHILD SA.
    let out = cli("debug drop-sa b --inbound");
    assert!(
        out.contains("inbound SA") && out.contains("dropped"),
        "{out}"
    );
    let took = time_to_ping(&lab, &a, Duration::from_secs(10))
        .unwrap_or_else(|| panic!("not healed: {}\n{}", lab.peer(&sa, "b"), lab.log("a")));
    eprintln!("inbound half healed in {} ms", took.as_millis());
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert!(lab.peer(&sa, "b")["invalid_spi_sent"].as_u64().unwrap() >= 1);
    assert!(lab.peer(&sb, "a")["heals"].as_u64().unwrap() >= 1);
    // a loses its outbound half: its next packet finds no SA with the IKE SA up, so a
    // creates a new CHILD SA and deletes the broken one.
    let out = cli("debug drop-sa b --outbound");
    assert!(out.contains("outbound SA"), "{out}");
    let took = time_to_ping(&lab, &a, Duration::from_secs(10))
        .unwrap_or_else(|| panic!("not healed: {}\n{}", lab.peer(&sa, "b"), lab.log("a")));
    eprintln!("outbound half healed in {} ms", took.as_millis());
    assert!(took < Duration::from_secs(5), "{took:?}");
    // Settled: one CHILD SA pair on each side, the same one.
    let ok = common::wait_for(Duration::from_secs(5), || {
        let (pa, pb) = (lab.peer(&sa, "b"), lab.peer(&sb, "a"));
        let (ca, cb) = (
            pa["child_sas"].as_array()?.clone(),
            pb["child_sas"].as_array()?.clone(),
        );
        (ca.len() == 1 && cb.len() == 1 && ca[0]["spi_in"] == cb[0]["spi_out"]).then_some(())
    });
    assert!(
        ok.is_some(),
        "{}\n{}\n{}\n{}",
        lab.peer(&sa, "b"),
        lab.peer(&sb, "a"),
        lab.log("a"),
        lab.log("b")
    );
}

/// Sends one control request to each daemon at the same instant.
fn fire_together(socks: [&std::path::Path; 2], requests: [&str; 2]) {
    use std::io::{BufRead, Write};
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
    let threads: Vec<_> = socks
        .iter()
        .zip(requests)
        .map(|(sock, req)| {
            let mut stream = std::os::unix::net::UnixStream::connect(sock).unwrap();
            let (barrier, req) = (barrier.clone(), format!("{req}\n"));
            std::thread::spawn(move || {
                barrier.wait();
                stream.write_all(req.as_bytes()).unwrap();
                let mut line = String::new();
                std::io::BufReader::new(&stream)
                    .read_line(&mut line)
                    .unwrap();
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn both_sides_rekeying_at_once_lose_nothing_and_keep_one_sa_pair() {
    let mut lab = Lab::new("collide");
    // MODP-3072 key exchanges (PFS for CHILD SAs too) take each daemon a few milliseconds:
    // two rekeys fired at the same instant always cross on the wire (forced collisions).
    let extra = "ike_proposals = [\"aes256gcm16-prfsha256-modp3072\"]\n\
                 esp_proposals = [\"aes256gcm16-modp3072\"]";
    let (a, b, sa, sb) = pair(&mut lab, "", extra);
    let secs: u32 = 30;
    let (sa2, sb2) = (sa.clone(), sb.clone());
    let firing = std::thread::spawn(move || {
        for round in 0..10 {
            std::thread::sleep(Duration::from_millis(2500));
            let ike = round % 3 == 2;
            let req = |peer: &str| {
                format!(r#"{{"version":1,"command":"rekey","peer":"{peer}","ike":{ike}}}"#)
            };
            fire_together([&sa2, &sb2], [&req("b"), &req("a")]);
        }
    });
    let (ab, ba) = lab.checked_streams((&a, "10.1.0.1"), (&b, "10.2.0.1"), secs, 200);
    firing.join().unwrap();
    let (pa, pb) = (lab.peer(&sa, "b"), lab.peer(&sb, "a"));
    eprintln!(
        "forced collisions: a counted {} ({} CHILD / {} IKE rekeys), b {}; a->b {ab}; b->a {ba}",
        pa["rekey_collisions"], pa["child_rekeys"], pa["ike_rekeys"], pb["rekey_collisions"]
    );
    assert!(pa["rekey_collisions"].as_u64().unwrap() >= 5, "{pa}");
    for (dir, r) in [("a->b", &ab), ("b->a", &ba)] {
        assert_eq!(r["lost"], 0, "{dir}: {r}\n{}", lab.log("a"));
        assert!(r["longest_gap_ms"].as_f64().unwrap() < 100.0, "{dir}: {r}");
    }
    let settled = common::wait_for(Duration::from_secs(15), || {
        let (pa, pb) = (lab.peer(&sa, "b"), lab.peer(&sb, "a"));
        let one = |p: &serde_json::Value, k: &str| p[k].as_array().map(Vec::len) == Some(1);
        (one(&pa, "ike_sas")
            && one(&pb, "ike_sas")
            && one(&pa, "child_sas")
            && one(&pb, "child_sas")
            && pa["child_sas"][0]["spi_in"] == pb["child_sas"][0]["spi_out"])
            .then_some(())
    });
    assert!(
        settled.is_some(),
        "{}\n{}",
        lab.peer(&sa, "b"),
        lab.peer(&sb, "a")
    );
}

#[test]
fn esp_lost_one_way_while_ike_answers_gets_the_child_sa_recreated() {
    let mut lab = Lab::new("tunnelcheck");
    // Plain ESP, so that a firewall rule can drop ESP but not IKE.
    let (a, b, sa, _sb) = pair(&mut lab, "esp_encap = \"auto\"", "tunnel_check = \"3s\"");
    assert!(lab.ping(&a, "10.1.0.1", "10.2.0.1", 2));
    let before = lab.peer(&sa, "b")["child_sas"][0]["spi_in"].clone();
    // b's firewall eats ESP (IKE still passes): a keeps sending, nothing comes back.
    lab.exec_ok(
        &b,
        "nft add table inet noesp && \
         nft 'add chain inet noesp in { type filter hook input priority -10; policy accept; }' && \
         nft add rule inet noesp in meta l4proto esp drop",
    );
    lab.spawn(&a, "pinger", "ping -i 0.2 -I 10.1.0.1 10.2.0.1");
    let started = std::time::Instant::now();
    let healed = common::wait_for(Duration::from_secs(15), || {
        (lab.peer(&sa, "b")["heals"].as_u64()? >= 1).then(|| started.elapsed())
    });
    let healed =
        healed.unwrap_or_else(|| panic!("no recreation: {}\n{}", lab.peer(&sa, "b"), lab.log("a")));
    eprintln!(
        "CHILD SA recreated {} ms after ESP stopped",
        healed.as_millis()
    );
    assert!(
        lab.log("a")
            .contains("although IKE answers: recreating the CHILD SA")
    );
    lab.exec_ok(&b, "nft delete table inet noesp");
    lab.stop("pinger", "TERM");
    assert!(lab.ping(&a, "10.1.0.1", "10.2.0.1", 3));
    let after = lab.peer(&sa, "b");
    assert_ne!(after["child_sas"][0]["spi_in"], before, "{after}");
}

/// Seconds since midnight (UTC) of a log line's RFC 3339 timestamp.
fn log_time(line: &str) -> Option<f64> {
    let t = line.get(11..26)?; // "HH:MM:SS.ffffff"
    let (h, m, s) = (t.get(0..2)?, t.get(3..5)?, t.get(6..)?);
    Some(h.parse::<f64>().ok()? * 3600.0 + m.parse::<f64>().ok()? * 60.0 + s.parse::<f64>().ok()?)
}

/// From a daemon's log: the IKE SAs it holds at the end (established, not yet deleted),
/// and every stretch of time during which it held more than one, as (start, seconds).
fn ike_sas_in_log(log: &str) -> (usize, Vec<(f64, f64)>) {
    let mut live = std::collections::HashSet::new();
    let mut since = None;
    let mut stretches = Vec::new();
    for line in log.lines() {
        let Some(at) = log_time(line) else { continue };
        let Some(rest) = line.split("IKE SA ").nth(1) else {
            continue;
        };
        let spi = rest.split(' ').next().unwrap_or("").to_string();
        if rest.contains(" established (") {
            live.insert(spi);
        } else if rest.contains(" deleted") {
            live.remove(&spi);
        } else {
            continue;
        }
        match (live.len() > 1, since) {
            (true, None) => since = Some(at),
            (false, Some(t)) => {
                stretches.push((t, at - t));
                since = None;
            }
            _ => {}
        }
    }
    if let Some(t) = since {
        stretches.push((t, f64::INFINITY));
    }
    (live.len(), stretches)
}

/// Both daemons are told to connect at the same instant, 50 times, with 10 % of the IKE
/// datagrams lost each way (nftables; this kernel has no netem): every attempt ends with
/// one IKE SA and one CHILD SA pair, and no side ever holds a duplicate IKE SA for more
/// than 2 s — even when the Delete that removes it is lost (the survivor's responder then
/// deletes it too, once the peer showed it has the survivor).
#[test]
#[ignore = "not yet reliable: in about 1 run of 4 (50 starts each) one start still keeps a duplicate ~3.3 s; run by hand with --ignored (issue 18)"]
fn simultaneous_starts_under_10_percent_loss_leave_no_duplicate_beyond_2s() {
    let mut lab = Lab::new("dupes");
    let p = lab.pair(("passive", "passive"), "", "");
    for ns in [&p.a, &p.b] {
        lab.exec_ok(
            ns,
            "nft add table inet loss && \
             nft add chain inet loss out '{ type filter hook output priority 0; }' && \
             nft add rule inet loss out udp dport '{ 500, 4500 }' numgen random mod 10 == 0 counter drop",
        );
    }
    let up = |peer: &str| format!(r#"{{"version":1,"command":"up","peer":"{peer}"}}"#);
    let down = |peer: &str| format!(r#"{{"version":1,"command":"down","peer":"{peer}"}}"#);
    // (IKE SAs, CHILD SAs) that the daemon at `sock` lists with `peer`.
    let count = |sock: &std::path::Path, peer: &str| {
        let p = lab.peer(sock, peer);
        let n = |k: &str| p[k].as_array().map_or(0, Vec::len);
        (n("ike_sas"), n("child_sas"))
    };
    let mut crossed = 0;
    for attempt in 0..50 {
        let before = lab.log("a").matches("established (").count();
        fire_together([&p.sa, &p.sb], [&up("b"), &up("a")]);
        // Settled: each side lists one IKE SA (no handshake under way either) and one
        // CHILD SA, three times in a row.
        let mut stable = 0;
        let settled = common::wait_for(Duration::from_secs(20), || {
            stable = if count(&p.sa, "b") == (1, 1) && count(&p.sb, "a") == (1, 1) {
                stable + 1
            } else {
                0
            };
            std::thread::sleep(Duration::from_millis(50));
            (stable >= 3).then_some(())
        });
        assert!(
            settled.is_some(),
            "attempt {attempt}: not settled\n{}\n{}\n{}",
            lab.peer(&p.sa, "b"),
            lab.peer(&p.sb, "a"),
            lab.log("a")
        );
        crossed += usize::from(lab.log("a").matches("established (").count() - before >= 2);
        fire_together([&p.sa, &p.sb], [&down("b"), &down("a")]);
        let gone = common::wait_for(Duration::from_secs(20), || {
            let none = count(&p.sa, "b").0 == 0 && count(&p.sb, "a").0 == 0;
            std::thread::sleep(Duration::from_millis(50));
            none.then_some(())
        });
        assert!(gone.is_some(), "attempt {attempt}: SAs left after down");
    }
    let drops = lab.exec_ok(&p.a, "nft list chain inet loss out");
    eprintln!("{crossed} of 50 attempts made two IKE SAs on a; a's losses: {drops}");
    assert!(
        crossed >= 10,
        "only {crossed} attempts crossed: nothing was tested"
    );
    for side in ["a", "b"] {
        let stretches = ike_sas_in_log(&lab.log(side)).1;
        let longest = stretches.iter().map(|s| s.1).fold(0.0, f64::max);
        eprintln!(
            "{side}: {} duplicates, the longest {longest:.3} s",
            stretches.len()
        );
        let long: Vec<_> = stretches
            .into_iter()
            .filter(|(_, secs)| *secs > 2.0)
            .collect();
        // Both daemons' lines around the first long one: what was lost, who waited for what.
        let around = |tag: &str| -> String {
            let Some((from, secs)) = long.first() else {
                return String::new();
            };
            lab.log(tag)
                .lines()
                .filter(|l| log_time(l).is_some_and(|t| t >= from - 1.0 && t <= from + secs + 1.0))
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert!(
            long.is_empty(),
            "{side} held duplicates {long:?}\na:\n{}\nb:\n{}",
            around("a"),
            around("b")
        );
    }
}
