//! Interop with a second implementation: OpenIKED 7.2 (Debian `openiked`), run with the team
//! shelf's recipe (`../shared/openiked/`: `iked.sh`, and the `pfkey_emu.c` shim that lets iked
//! negotiate in decoupled mode on a kernel without PF_KEY — test scaffolding, not project
//! code). iked installs no SAs, so these runs check IKE only: both roles, INVALID_KE, IKE
//! rekeys by each side and a CHILD rekey by us ending with one SA pair, Delete both ways, and
//! iked's liveness check answered (iked probes only after 300 s of IKE silence, hard-coded:
//! its clock runs 20 times faster here through libfaketime).
//!
//! CHILD SAs use AES-CBC + HMAC-SHA2-512: iked's Linux build takes no AEAD, no HMAC-SHA2-256
//! and no ESN for CHILD SAs (shelf README, pitfalls 5-7).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Lab, MESHSEC, must, sh, wait_for};

fn shelf() -> PathBuf {
    let shared = std::env::var("MESHSEC_SHARED")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared").into());
    PathBuf::from(shared).join("openiked")
}

/// libfaketime (multi-threaded variant: the PF_KEY shim runs a thread in iked).
fn libfaketime() -> PathBuf {
    let found = std::fs::read_dir("/usr/lib")
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("faketime/libfaketimeMT.so.1"))
        .find(|p| p.exists());
    found.expect("libfaketime missing: apt-get install faketime")
}

/// One iked in namespace `ns`, stopped when dropped.
struct Iked {
    ns: String,
    base: PathBuf,
    bin: Option<PathBuf>,
}

impl Iked {
    /// Writes iked.conf with `iked.sh gen` (`params` as KEY=VALUE words) and starts iked;
    /// with `fast_clock`, iked's clock runs 20 times faster.
    fn start(lab: &Lab, ns: &str, params: &[String], fast_clock: bool) -> Iked {
        let base = lab.dir.join("iked");
        let conf = lab.dir.join("iked-conf");
        let bin = fast_clock.then(|| {
            let wrapper = lab.dir.join("iked-fast");
            std::fs::write(
                &wrapper,
                format!(
                    "#!/bin/sh\nLD_PRELOAD=\"${{LD_PRELOAD:+$LD_PRELOAD:}}{}\" FAKETIME=\"+0 x20\" exec /usr/sbin/iked \"$@\"\n",
                    libfaketime().display()
                ),
            )
            .unwrap();
            std::fs::set_permissions(
                &wrapper,
                std::os::unix::fs::PermissionsExt::from_mode(0o755),
            )
            .unwrap();
            wrapper
        });
        let iked = Iked {
            ns: ns.to_string(),
            base,
            bin,
        };
        let quoted: Vec<String> = params.iter().map(|p| format!("'{p}'")).collect();
        iked.script(&format!("gen {} {}", conf.display(), quoted.join(" ")));
        iked.script(&format!("start {ns} {}", conf.display()));
        iked
    }

    fn script(&self, args: &str) -> String {
        let bin = self
            .bin
            .as_ref()
            .map(|b| format!("IKED_BIN={} ", b.display()))
            .unwrap_or_default();
        must(&format!(
            "IKED_RUNBASE={} {bin}{} {args}",
            self.base.display(),
            shelf().join("iked.sh").display()
        ))
    }

    /// `ikectl show sa`.
    fn show_sa(&self) -> String {
        self.script(&format!("ctl {} show sa", self.ns))
    }

    /// (established IKE SAs, CHILD SA halves) as `ikectl show sa` lists them.
    fn summary(&self) -> (usize, usize) {
        let sa = self.show_sa();
        let ike = sa
            .lines()
            .filter(|l| l.starts_with("iked_sas:") && l.contains(" ESTABLISHED"))
            .count();
        let child = sa
            .lines()
            .filter(|l| l.starts_with("  sa_childsas:"))
            .count();
        (ike, child)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.base.join(format!("iked-{}/iked.log", self.ns)))
            .unwrap_or_default()
    }
}

impl Drop for Iked {
    fn drop(&mut self) {
        let _ = sh(&format!(
            "IKED_RUNBASE={} {} stop {}",
            self.base.display(),
            shelf().join("iked.sh").display(),
            self.ns
        ));
    }
}

const PSK_ID: (&str, &str) = ("m", "s");

/// The two namespaces: m (meshsec, 192.0.2.1, inner 10.1.0.1) and i (iked, 192.0.2.2, inner
/// 10.2.0.1).
fn namespaces(lab: &mut Lab) -> (String, String) {
    let m = lab.ns("m");
    let i = lab.ns("i");
    lab.link(&m, "192.0.2.1/24", &i, "192.0.2.2/24");
    lab.exec_ok(&m, "ip addr add 10.1.0.1/32 dev lo");
    lab.exec_ok(&i, "ip addr add 10.2.0.1/32 dev lo");
    (m, i)
}

/// iked's parameters for the pair (iked in the role `mode`: active initiates) with `ikesa`
/// proposals and `extra` words.
fn iked_params(mode: &str, ikesa: &str, extra: &[&str]) -> Vec<String> {
    let mut p = vec![
        format!("MODE={mode}"),
        "LOCAL_ADDR=192.0.2.2".into(),
        "PEER_ADDR=192.0.2.1".into(),
        "LOCAL_TS=10.2.0.0/24".into(),
        "REMOTE_TS=10.1.0.0/24".into(),
        "SRCID=s.test".into(),
        "DSTID=m.test".into(),
        format!("PSK={}", common::pair_psk(PSK_ID.0, PSK_ID.1)),
        format!("IKESA={ikesa}"),
        "CHILDSA=enc aes-256 auth hmac-sha2-512".into(),
    ];
    p.extend(extra.iter().map(|s| s.to_string()));
    p
}

const IKESA: &str = "enc aes-256-gcm prf hmac-sha2-256 group curve25519";

/// meshsec in m with peer s (iked), starting as `start`, `ike` proposals, `extra` settings.
fn meshsec(lab: &mut Lab, m: &str, start: &str, ike: &str, extra: &str) -> PathBuf {
    let sock = lab.socket("m");
    let text = common::config(
        &common::NodeCfg {
            name: "m",
            addr: "192.0.2.1",
            socket: &sock,
            keys: &lab.dir,
        },
        &[common::PeerCfg {
            name: "s",
            addr: "192.0.2.2",
            local_ts: "10.1.0.0/24",
            remote_ts: "10.2.0.0/24",
            start,
            extra: &format!(
                "ike_proposals = [\"{ike}\"]\nesp_proposals = [\"aes256-sha512\"]\n{extra}"
            ),
        }],
    );
    lab.meshsec(m, "m", &text)
}

/// Both sides list exactly one IKE SA and one CHILD SA pair (iked: two halves).
fn settled(lab: &Lab, sock: &Path, iked: &Iked) -> bool {
    let p = lab.peer(sock, "s");
    let ours = p["state"] == "established"
        && p["ike_sas"].as_array().is_some_and(|a| a.len() == 1)
        && p["child_sas"].as_array().is_some_and(|a| a.len() == 1);
    ours && iked.summary() == (1, 2)
}

fn wait_settled(lab: &Lab, sock: &Path, iked: &Iked, ctx: &str) {
    let ok = wait_for(Duration::from_secs(20), || {
        settled(lab, sock, iked).then_some(())
    });
    assert!(
        ok.is_some(),
        "{ctx}: not one SA pair on both sides\nmeshsec: {}\niked: {}\nmeshsec log:\n{}\niked log (tail):\n{}",
        lab.peer(sock, "s"),
        iked.show_sa(),
        lab.log("m"),
        tail(&iked.log(), 60)
    );
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[test]
fn openiked_both_roles_and_deletes_both_ways() {
    for meshsec_initiates in [true, false] {
        let ctx = if meshsec_initiates {
            "meshsec initiates"
        } else {
            "iked initiates"
        };
        let mut lab = Lab::new("openiked");
        let (m, i) = namespaces(&mut lab);
        // The side that waits starts first (iked retries only every 60 s).
        let (sock, iked) = if meshsec_initiates {
            let iked = Iked::start(&lab, &i, &iked_params("passive", IKESA, &[]), false);
            let sock = meshsec(&mut lab, &m, "always", "aes256gcm16-prfsha256-x25519", "");
            (sock, iked)
        } else {
            let sock = meshsec(&mut lab, &m, "passive", "aes256gcm16-prfsha256-x25519", "");
            let iked = Iked::start(&lab, &i, &iked_params("active", IKESA, &[]), false);
            (sock, iked)
        };
        wait_settled(&lab, &sock, &iked, ctx);
        let p = lab.peer(&sock, "s");
        assert_eq!(
            p["ike_sas"][0]["proposal"], "AES_GCM_16_256/PRF_HMAC_SHA2_256/CURVE25519",
            "{ctx}: {p}"
        );
        assert!(
            p["child_sas"][0]["proposal"]
                .as_str()
                .is_some_and(|s| s.starts_with("AES_CBC_256/HMAC_SHA2_512_256")),
            "{ctx}: {p}"
        );
        // A Delete from each side removes the SA on the other.
        if meshsec_initiates {
            must(&format!("{MESHSEC} down s -s {}", sock.display()));
            let gone = wait_for(Duration::from_secs(10), || {
                (iked.summary() == (0, 0)).then_some(())
            });
            assert!(
                gone.is_some(),
                "{ctx}: iked kept its SA: {}",
                iked.show_sa()
            );
        } else {
            iked.script(&format!("ctl {i} reset sa"));
            assert!(
                lab.wait_no_ike_sa(&sock, "s"),
                "{ctx}: meshsec kept its SA: {}",
                lab.peer(&sock, "s")
            );
        }
        eprintln!("OpenIKED, {ctx}: established, one SA pair each, deleted from the other side");
    }
}

#[test]
fn openiked_invalid_ke_round_trip() {
    let mut lab = Lab::new("openiked-ke");
    let (m, i) = namespaces(&mut lab);
    // iked takes only ECP-256; meshsec prefers X25519 and learns from INVALID_KE_PAYLOAD.
    let iked = Iked::start(
        &lab,
        &i,
        &iked_params(
            "passive",
            "enc aes-256-gcm prf hmac-sha2-256 group ecp256",
            &[],
        ),
        false,
    );
    let sock = meshsec(
        &mut lab,
        &m,
        "always",
        "aes256gcm16-prfsha256-x25519-ecp256",
        "",
    );
    wait_settled(&lab, &sock, &iked, "INVALID_KE");
    let p = lab.peer(&sock, "s");
    assert_eq!(
        p["ike_sas"][0]["proposal"], "AES_GCM_16_256/PRF_HMAC_SHA2_256/ECP_256",
        "{p}"
    );
    let log = iked.log();
    assert!(
        log.contains("INVALID_KE"),
        "iked sent no INVALID_KE_PAYLOAD:\n{}",
        tail(&log, 40)
    );
}

#[test]
fn openiked_rekeys_by_both_sides_end_with_one_sa_pair() {
    let mut lab = Lab::new("openiked-rekey");
    let (m, i) = namespaces(&mut lab);
    // iked rekeys the IKE SA at 85 % of 16 s; we rekey the IKE SA and the CHILD SA on command.
    let iked = Iked::start(
        &lab,
        &i,
        &iked_params("passive", IKESA, &["IKELIFETIME=16"]),
        false,
    );
    let sock = meshsec(&mut lab, &m, "always", "aes256gcm16-prfsha256-x25519", "");
    wait_settled(&lab, &sock, &iked, "start");
    let first = lab.peer(&sock, "s")["ike_sas"][0]["spi_i"].clone();
    must(&format!("{MESHSEC} rekey s -s {}", sock.display()));
    wait_settled(&lab, &sock, &iked, "after our CHILD rekey");
    must(&format!("{MESHSEC} rekey s --ike -s {}", sock.display()));
    wait_settled(&lab, &sock, &iked, "after our IKE rekey");
    let ours = lab.peer(&sock, "s")["ike_rekeys"].as_u64().unwrap();
    // iked's own IKE rekey, ~13.6 s after the SA it rekeys was made.
    let started = Instant::now();
    let theirs = wait_for(Duration::from_secs(25), || {
        let p = lab.peer(&sock, "s");
        (p["ike_rekeys"].as_u64()? > ours).then_some(())
    });
    assert!(
        theirs.is_some(),
        "iked did not rekey the IKE SA: {}\n{}",
        lab.peer(&sock, "s"),
        tail(&iked.log(), 40)
    );
    wait_settled(&lab, &sock, &iked, "after iked's IKE rekey");
    let p = lab.peer(&sock, "s");
    assert_ne!(p["ike_sas"][0]["spi_i"], first, "{p}");
    assert!(p["child_rekeys"].as_u64().unwrap() >= 1, "{p}");
    assert!(p["last_failure"].is_null(), "{p}");
    eprintln!(
        "OpenIKED rekeys: ours (CHILD, IKE) and iked's IKE rekey {:?} later; one SA pair each",
        started.elapsed()
    );
}

#[test]
fn openiked_liveness_check_is_answered() {
    let mut lab = Lab::new("openiked-dpd");
    let (m, i) = namespaces(&mut lab);
    // iked checks every 10 s (its clock) whether 300 s passed without an IKE message; its
    // clock runs 20 times faster, so that is 15 s here. meshsec stays silent (DPD off).
    let iked = Iked::start(&lab, &i, &iked_params("passive", IKESA, &["DPD=10"]), true);
    let sock = meshsec(
        &mut lab,
        &m,
        "always",
        "aes256gcm16-prfsha256-x25519",
        "dpd_delay = \"off\"\ntunnel_check = \"off\"\n",
    );
    wait_settled(&lab, &sock, &iked, "start");
    let probe = wait_for(Duration::from_secs(40), || {
        let log = iked.log();
        log.lines()
            .position(|l| l.contains("sending alive check"))
            .map(|n| (n, log))
    });
    let (n, _) =
        probe.unwrap_or_else(|| panic!("iked sent no liveness check:\n{}", tail(&iked.log(), 40)));
    // Answered before iked's first retransmission (2 s of its clock: 0.1 s here).
    let answered = wait_for(Duration::from_secs(5), || {
        let log = iked.log();
        let after: Vec<&str> = log.lines().skip(n).collect();
        after
            .iter()
            .any(|l| l.contains("recv INFORMATIONAL res"))
            .then(|| after.iter().any(|l| l.contains("retransmit")))
    });
    let retransmitted = answered.unwrap_or_else(|| {
        panic!(
            "the liveness check was not answered:\n{}\nmeshsec: {}",
            tail(&iked.log(), 30),
            lab.status(&sock)
        )
    });
    assert!(
        !retransmitted,
        "answered only after a retransmission:\n{}",
        tail(&iked.log(), 30)
    );
    let status = lab.status(&sock);
    assert!(
        status["ike_errors"]["trailing_octets"]
            .as_u64()
            .unwrap_or(0)
            >= 1,
        "{status}"
    );
    assert!(settled(&lab, &sock, &iked), "{}", iked.show_sa());
    eprintln!("OpenIKED liveness check answered at once");
}
