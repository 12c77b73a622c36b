//! Certificate authentication against a real strongSwan 5.9.8, both roles, with credentials
//! made by `meshsec pki`: ECDSA P-256, P-384 and P-521, Ed25519, and RSA-3072 with RSASSA-PSS
//! signatures through an intermediate CA (a chain big enough that IKE_AUTH is fragmented
//! both ways, seen in the capture). Each run: strongSwan lists the SA and says which
//! signature scheme authenticated us, CERTREQs went both ways and were answered with
//! certificates, ping both ways and a short iperf3. Then what strongSwan presents that we must
//! refuse (expired, not yet valid, another CA, revoked), each with its message; and
//! `strongSwan's pki --verify` accepting what `meshsec pki` issued.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::strongswan::{self, Charon, capture, check_capture, stop_capture};
use common::{Lab, MESHSEC, must, wait_for};

/// One case: the key type of the CA(s) and hosts, whether an intermediate CA signs the hosts,
/// and how strongSwan's log names the scheme of our AUTH and of its own.
struct Case {
    key: &'static str,
    intermediate: bool,
    scheme: &'static str,
    theirs: &'static str,
}

const CASES: [Case; 5] = [
    Case {
        key: "ecdsa-p256",
        intermediate: false,
        scheme: "ECDSA_WITH_SHA256_DER",
        theirs: "ECDSA_WITH_SHA256_DER",
    },
    Case {
        key: "ecdsa-p384",
        intermediate: false,
        scheme: "ECDSA_WITH_SHA384_DER",
        theirs: "ECDSA_WITH_SHA384_DER",
    },
    Case {
        key: "ecdsa-p521",
        intermediate: false,
        scheme: "ECDSA_WITH_SHA512_DER",
        theirs: "ECDSA_WITH_SHA512_DER",
    },
    Case {
        key: "ed25519",
        intermediate: false,
        scheme: "ED25519",
        theirs: "ED25519",
    },
    Case {
        key: "rsa3072",
        intermediate: true,
        scheme: "RSA_EMSA_PSS",
        theirs: "RSA_EMSA_PSS",
    },
];

/// Credentials of one run, made with `meshsec pki`.
struct Creds {
    /// The root CA (what both sides trust).
    ca: PathBuf,
    /// The CA that signs hosts: the root, or the intermediate.
    signer: (PathBuf, PathBuf),
    /// The intermediate CA certificate (strongSwan sends it from its store).
    intermediate: Option<PathBuf>,
    dir: PathBuf,
}

fn pki(args: &str) -> String {
    must(&format!("{MESHSEC} pki {args}"))
}

fn make_ca(dir: &Path, key: &str, intermediate: bool) -> Creds {
    make_named_ca(dir, "interop root CA", key, intermediate)
}

fn make_named_ca(dir: &Path, name: &str, key: &str, intermediate: bool) -> Creds {
    pki(&format!(
        "ca --out {} --name '{name}' --key-type {key}",
        dir.join("root").display()
    ));
    let root = dir.join("root");
    let (signer, int) = if intermediate {
        pki(&format!(
            "ca --out {} --name 'interop intermediate CA' --key-type {key} --issuer-cert {} --issuer-key {}",
            dir.join("int").display(),
            root.join("ca.pem").display(),
            root.join("ca.key").display()
        ));
        let int = dir.join("int");
        (
            (int.join("ca.pem"), int.join("ca.key")),
            Some(int.join("ca.pem")),
        )
    } else {
        ((root.join("ca.pem"), root.join("ca.key")), None)
    };
    Creds {
        ca: root.join("ca.pem"),
        signer,
        intermediate: int,
        dir: dir.to_path_buf(),
    }
}

impl Creds {
    /// Issues NAME's certificate (extra `meshsec pki issue` options in `extra`); returns its
    /// certificate and key files.
    fn issue(&self, name: &str, address: &str, key: &str, extra: &str) -> (PathBuf, PathBuf) {
        let out = self.dir.join("hosts");
        pki(&format!(
            "issue {name} --ca {} --ca-key {} --address {address} --key-type {key} --out {} {extra}",
            self.signer.0.display(),
            self.signer.1.display(),
            out.display()
        ));
        (
            out.join(format!("{name}.pem")),
            out.join(format!("{name}.key")),
        )
    }
}

/// strongSwan's swanctl.conf: certificate authentication both ways as s.test, its
/// certificate, the CAs it trusts (its key goes into swanctl's `private` directory).
fn swanctl_conf(cert: &Path, cas: &[&Path]) -> String {
    let authorities: String = cas
        .iter()
        .enumerate()
        .map(|(i, c)| format!("    ca{i} {{\n        cacert = {}\n    }}\n", c.display()))
        .collect();
    format!(
        r#"connections {{
    ms {{
        version = 2
        local_addrs = 192.0.2.2
        remote_addrs = 192.0.2.1
        proposals = aes256gcm16-prfsha256-x25519
        local {{
            auth = pubkey
            certs = {cert}
            id = s.test
        }}
        remote {{
            auth = pubkey
            id = m.test
        }}
        children {{
            ms {{
                local_ts = 10.2.0.0/24
                remote_ts = 10.1.0.0/24
                esp_proposals = aes256gcm16
                mode = tunnel
                start_action = none
            }}
        }}
    }}
}}
authorities {{
{authorities}}}
"#,
        cert = cert.display(),
    )
}

/// meshsec's side (namespace "m") with certificate settings `auth`.
fn meshsec_conf(lab: &Lab, sock: &Path, initiates: bool, auth: &str) -> String {
    strongswan::meshsec_side(
        lab,
        sock,
        ("10.1.0.0/24", "10.2.0.0/24"),
        initiates,
        &format!(
            "ike_proposals = [\"aes256gcm16-prfsha256-x25519\"]\nesp_proposals = [\"aes256gcm16\"]\n{auth}"
        ),
    )
}

fn meshsec_auth(cert: &Path, key: &Path, ca: &Path, extra: &str) -> String {
    format!(
        "auth = \"cert\"\ncert_file = \"{}\"\nkey_file = \"{}\"\nca_files = [\"{}\"]\n{extra}",
        cert.display(),
        key.display(),
        ca.display()
    )
}

struct Run {
    lab: Lab,
    m: String,
    sw: String,
    charon: Charon,
    sock: PathBuf,
}

/// Namespaces m (meshsec, 192.0.2.1, inner 10.1.0.1) and s (charon, 192.0.2.2, inner
/// 10.2.0.1); `setup` makes the credentials and returns (strongSwan's swanctl.conf, its
/// private key file, meshsec's auth settings).
fn start(
    tag: &str,
    meshsec_initiates: bool,
    setup: impl FnOnce(&Path) -> (String, PathBuf, String),
) -> (Run, PathBuf) {
    start_with(tag, meshsec_initiates, "", setup)
}

/// As [`start`], with `charon_extra` in strongswan.conf's `charon` section.
fn start_with(
    tag: &str,
    meshsec_initiates: bool,
    charon_extra: &str,
    setup: impl FnOnce(&Path) -> (String, PathBuf, String),
) -> (Run, PathBuf) {
    let mut lab = Lab::new(tag);
    let m = lab.ns("m");
    let sw = lab.ns("s");
    lab.link(&m, "192.0.2.1/24", &sw, "192.0.2.2/24");
    lab.exec_ok(&m, "ip addr add 10.1.0.1/32 dev lo");
    lab.exec_ok(&sw, "ip addr add 10.2.0.1/32 dev lo");
    let (swanctl, sw_key, auth) = setup(&lab.dir.join("pki"));
    let pcap = capture(&mut lab, &m, "setup");
    let charon = Charon::start_with_creds(
        &mut lab,
        &sw,
        &swanctl,
        &[("private", &sw_key)],
        charon_extra,
    );
    let sock = lab.socket("m");
    let text = meshsec_conf(&lab, &sock, meshsec_initiates, &auth);
    lab.meshsec(&m, "m", &text);
    if !meshsec_initiates {
        // Ours to wait for below; strongSwan's verdict is in its log.
        let _ = lab.exec(
            &sw,
            &format!(
                "env STRONGSWAN_CONF={}/strongswan.conf swanctl --initiate --child ms --timeout 15",
                charon.dir.display()
            ),
        );
    }
    (
        Run {
            lab,
            m,
            sw,
            charon,
            sock,
        },
        pcap,
    )
}

/// The IKE messages of a capture that are SKF fragments (RFC 7383), by source address.
fn fragments_by_source(pcap: &Path) -> (usize, usize) {
    let out = must(&format!(
        "tshark -r {} -Y 'isakmp.nextpayload == 53' -T fields -e ip.src",
        pcap.display()
    ));
    (
        out.lines().filter(|l| l.trim() == "192.0.2.1").count(),
        out.lines().filter(|l| l.trim() == "192.0.2.2").count(),
    )
}

fn certificate_run(case: &Case, meshsec_initiates: bool) {
    certificate_run_with(case, meshsec_initiates, "");
}

/// One certificate run with `charon_extra` strongswan.conf settings.
fn certificate_run_with(case: &Case, meshsec_initiates: bool, charon_extra: &str) {
    let (
        Run {
            mut lab,
            m,
            sw,
            charon,
            sock,
        },
        pcap,
    ) = start_with("certs", meshsec_initiates, charon_extra, |dir| {
        let c = make_ca(dir, case.key, case.intermediate);
        let (mc, mk) = c.issue("m.test", "192.0.2.1", case.key, "");
        let (sc, sk) = c.issue("s.test", "192.0.2.2", case.key, "");
        let mut cas = vec![c.ca.as_path()];
        cas.extend(c.intermediate.as_deref());
        (
            swanctl_conf(&sc, &cas),
            sk,
            meshsec_auth(&mc, &mk, &c.ca, ""),
        )
    });
    let ctx = format!(
        "{} (meshsec {})",
        case.key,
        if meshsec_initiates {
            "initiates"
        } else {
            "responds"
        }
    );
    let ok = wait_for(Duration::from_secs(20), || {
        (lab.peer_state(&sock, "s") == "established").then_some(())
    });
    assert!(
        ok.is_some(),
        "{ctx}: not established: {}\nmeshsec log:\n{}\ncharon log:\n{}",
        lab.peer(&sock, "s"),
        lab.log("m"),
        charon.log()
    );
    let sas = charon.swanctl(&lab, "--list-sas");
    assert!(
        sas.contains("ESTABLISHED") && sas.contains("INSTALLED, TUNNEL"),
        "{ctx}: {sas}"
    );
    let log = charon.log();
    // strongSwan verified our signature with the expected scheme, and sent and answered
    // certificate requests.
    let verified = format!("authentication of 'm.test' with {}", case.scheme);
    assert!(log.contains(&verified), "{ctx}: no {verified:?} in:\n{log}");
    let signed = format!("authentication of 's.test' (myself) with {}", case.theirs);
    assert!(log.contains(&signed), "{ctx}: no {signed:?} in:\n{log}");
    assert!(
        log.contains("received cert request for"),
        "{ctx}: our CERTREQ did not arrive:\n{log}"
    );
    assert!(
        log.contains("sending end entity cert"),
        "{ctx}: strongSwan sent no certificate:\n{log}"
    );
    assert!(
        log.contains("received end entity cert"),
        "{ctx}: we sent no certificate:\n{log}"
    );
    // We know the certificate strongSwan authenticated with, and its expiry.
    let peer = lab.peer(&sock, "s");
    assert_eq!(
        peer["ike_sas"][0]["peer_certificate"]["subject"], "CN=s.test",
        "{ctx}: {peer}"
    );
    assert_eq!(peer["certificate"]["subject"], "CN=m.test", "{ctx}: {peer}");
    assert!(
        peer["certificate"]["days_left"].as_i64().unwrap() >= 363,
        "{ctx}: {peer}"
    );
    assert!(
        lab.ping(&m, "10.1.0.1", "10.2.0.1", 3),
        "{ctx}: m -> s ping failed"
    );
    assert!(
        lab.ping(&sw, "10.2.0.1", "10.1.0.1", 3),
        "{ctx}: s -> m ping failed"
    );
    stop_capture(&mut lab, "setup");
    let bps = lab.iperf(&sw, &m, "10.1.0.1", "10.2.0.1", 3, false);
    assert!(
        bps > 1e6,
        "{ctx}: iperf3 through the tunnel failed ({bps} bit/s)"
    );
    let (ike, esp) = check_capture(&pcap);
    let (ours, theirs) = fragments_by_source(&pcap);
    eprintln!(
        "{ctx}: {:.0} Mbit/s; capture {ike} IKE ({ours} + {theirs} SKF fragments), {esp} ESP, none malformed",
        bps / 1e6
    );
    if case.intermediate {
        // RSA-3072 certificate + intermediate + AUTH: more than a 1280-octet message.
        assert!(
            ours >= 2 && theirs >= 2,
            "{ctx}: IKE_AUTH should be fragmented both ways: {ours} fragments from us, {theirs} from strongSwan"
        );
    }
}

#[test]
fn certificates_against_strongswan_meshsec_initiator() {
    for case in &CASES {
        certificate_run(case, true);
    }
}

#[test]
fn certificates_against_strongswan_meshsec_responder() {
    for case in &CASES {
        certificate_run(case, false);
    }
}

/// A peer without RFC 7427 (strongSwan with `signature_authentication = no` sends no
/// SIGNATURE_HASH_ALGORITHMS and signs with the older methods): we verify its RSA (method 1,
/// SHA-1) and ECDSA (RFC 4754 method 9) signatures, and answer ECDSA with method 9 ourselves.
#[test]
fn certificates_against_strongswan_without_rfc7427() {
    let legacy = "signature_authentication = no";
    for initiates in [true, false] {
        certificate_run_with(
            &Case {
                key: "ecdsa-p256",
                intermediate: false,
                scheme: "ECDSA-256 signature",
                theirs: "ECDSA-256 signature",
            },
            initiates,
            legacy,
        );
    }
    certificate_run_with(
        &Case {
            key: "rsa3072",
            intermediate: false,
            // We have no SHA-1 RSA signing (aws-lc-rs offers none): RFC 7427 PSS is what we
            // send, and strongSwan verifies it whatever it sends itself.
            scheme: "RSA_EMSA_PSS",
            theirs: "RSA signature",
        },
        true,
        legacy,
    );
}

/// strongSwan presents a certificate we must refuse; meshsec initiates, so the refusal is
/// its own failure and `status` shows it.
fn refused(
    tag: &str,
    sw_cert: impl FnOnce(&Creds, &Path) -> (PathBuf, PathBuf),
    crl: bool,
    expect: &str,
) {
    let (run, _pcap) = start(tag, true, |dir| {
        let c = make_ca(dir, "ecdsa-p256", false);
        let (mc, mk) = c.issue("m.test", "192.0.2.1", "ecdsa-p256", "");
        let (sc, sk) = sw_cert(&c, dir);
        let extra = if crl {
            let out = dir.join("ca.crl");
            pki(&format!(
                "revoke --ca {} --ca-key {} --out {} {}",
                c.ca.display(),
                c.signer.1.display(),
                out.display(),
                sc.display()
            ));
            format!("crl_files = [\"{}\"]\n", out.display())
        } else {
            String::new()
        };
        (
            swanctl_conf(&sc, &[c.ca.as_path()]),
            sk,
            meshsec_auth(&mc, &mk, &c.ca, &extra),
        )
    });
    let failure = wait_for(Duration::from_secs(20), || {
        run.lab.peer(&run.sock, "s")["last_failure"]
            .as_str()
            .filter(|f| f.contains(expect))
            .map(str::to_string)
    });
    assert!(
        failure.is_some(),
        "{tag}: expected {expect:?}; peer: {}\nlog:\n{}",
        run.lab.peer(&run.sock, "s"),
        run.lab.log("m")
    );
    assert_ne!(run.lab.peer_state(&run.sock, "s"), "established", "{tag}");
    eprintln!("{tag}: {}", failure.unwrap_or_default());
}

#[test]
fn certificates_strongswan_presents_are_refused_for_their_reason() {
    refused(
        "expired",
        |c, _| {
            c.issue(
                "s.test",
                "192.0.2.2",
                "ecdsa-p256",
                "--valid-from 2020-01-01 --days 30",
            )
        },
        false,
        "AUTHENTICATION_FAILED: certificate \"CN=s.test\" expired: valid until Jan 31",
    );
    refused(
        "notyet",
        |c, _| {
            c.issue(
                "s.test",
                "192.0.2.2",
                "ecdsa-p256",
                "--valid-from 2099-01-01 --days 30",
            )
        },
        false,
        "certificate \"CN=s.test\" is not yet valid: valid from Jan  1 00:00:00 2099",
    );
    refused(
        "wrongca",
        |_, dir| {
            let rogue = make_named_ca(&dir.join("rogue"), "rogue CA", "ecdsa-p256", false);
            rogue.issue("s.test", "192.0.2.2", "ecdsa-p256", "")
        },
        false,
        "unknown CA: certificate \"CN=s.test\" is issued by \"CN=rogue CA\", which does not lead to any configured CA (\"CN=interop root CA\")",
    );
    refused(
        "revoked",
        |c, _| c.issue("s.test", "192.0.2.2", "ecdsa-p256", ""),
        true,
        "is revoked by a configured CRL",
    );
}

#[test]
fn strongswan_pki_verifies_what_meshsec_pki_issues() {
    common::require_root();
    let dir = std::env::temp_dir().join(format!("meshsec-pki-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for case in &CASES {
        let d = dir.join(case.key);
        let c = make_ca(&d, case.key, case.intermediate);
        let (cert, _) = c.issue("h1.mesh", "192.0.2.11", case.key, "");
        let mut args = format!(
            "--verify --in {} --cacert {}",
            cert.display(),
            c.ca.display()
        );
        if let Some(i) = &c.intermediate {
            args.push_str(&format!(" --cacert {}", i.display()));
        }
        let out = must(&format!("pki {args} 2>&1"));
        assert!(
            out.contains("certificate trusted, lifetimes valid"),
            "{}: {out}",
            case.key
        );
        // And `meshsec pki list` shows it with its identities and days left.
        let list = pki(&format!("list {}", cert.display()));
        assert!(
            list.contains("\"CN=h1.mesh\"") && list.contains("days left"),
            "{list}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
