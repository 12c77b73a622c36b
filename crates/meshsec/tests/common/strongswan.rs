//! strongSwan 5.9.8 as a real peer (see `../shared/INTEROP.md`): a charon with
//! kernel-libipsec in its own namespace and directory, and tshark captures checked for
//! malformed packets.

use std::path::PathBuf;
use std::time::Duration;

use super::{Lab, NodeCfg, PeerCfg, config, must, wait_for};

pub const STRONGSWAN_CONF: &str = r#"
charon {
    load_modular = no
    load = random nonce openssl aes sha2 hmac gcm kdf curve25519 pem pkcs1 pkcs8 pubkey x509 constraints revocation kernel-libipsec kernel-netlink socket-default vici updown
    port = 500
    port_nat_t = 4500
    install_routes = yes
    retransmit_tries = 3
    retransmit_timeout = 1.0
    make_before_break = yes
    # RSA signatures in RFC 7427 AUTH are RSASSA-PSS (the certificate tests use RSA-3072).
    rsa_pss = yes
    plugins {
        vici {
            socket = unix://@DIR@/charon.vici
        }
    }
    filelog {
        charon {
            path = @DIR@/charon.log
            default = 1
            ike = 2
            flush_line = yes
            append = no
        }
    }
}
swanctl {
    socket = unix://@DIR@/charon.vici
}
"#;

/// A charon in its own namespace and directory.
pub struct Charon {
    pub ns: String,
    pub dir: PathBuf,
}

impl Charon {
    pub fn start(lab: &mut Lab, ns: &str, swanctl: &str) -> Charon {
        Charon::start_with_creds(lab, ns, swanctl, &[], "")
    }

    /// As [`Charon::start`], with credential files copied into swanctl's directories first
    /// (`("private", key)`: swanctl loads private keys only from there) and `charon_extra`
    /// settings in strongswan.conf's `charon` section.
    pub fn start_with_creds(
        lab: &mut Lab,
        ns: &str,
        swanctl: &str,
        creds: &[(&str, &std::path::Path)],
        charon_extra: &str,
    ) -> Charon {
        let dir = lab.dir.join("charon");
        std::fs::create_dir_all(dir.join("run")).unwrap();
        for d in [
            "x509", "x509ca", "x509crl", "private", "pubkey", "rsa", "ecdsa", "pkcs8",
        ] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        for (sub, file) in creds {
            std::fs::copy(file, dir.join(sub).join(file.file_name().unwrap())).unwrap();
        }
        let d = dir.display().to_string();
        std::fs::write(
            dir.join("strongswan.conf"),
            STRONGSWAN_CONF.replace("@DIR@", &d).replacen(
                "charon {\n",
                &format!("charon {{\n    {charon_extra}\n"),
                1,
            ),
        )
        .unwrap();
        std::fs::write(dir.join("swanctl.conf"), swanctl).unwrap();
        // charon's UDP sockets take the kernel's default receive buffer (208 KiB), which its
        // single-threaded userspace ESP path overflows under a few Mbit/s of bursty TCP
        // (measured: ~10 % RcvbufErrors in its namespace at 20 Mbit/s, with or without
        // rekeying). The default is global, not per namespace: raise it while charon opens
        // its sockets, then put it back.
        let _rmem = RmemDefault::raise(4 << 20);
        // Its pid file lives under /run: give it its own /run inside the namespace's
        // private mount namespace (INTEROP.md pitfall 2).
        lab.spawn(
            ns,
            "charon",
            &format!(
                "sh -c 'mount --bind {d}/run /run && exec env STRONGSWAN_CONF={d}/strongswan.conf /usr/lib/ipsec/charon'"
            ),
        );
        let vici = dir.join("charon.vici");
        let up = wait_for(Duration::from_secs(10), || vici.exists().then_some(()));
        assert!(up.is_some(), "charon did not start: {}", lab.log("charon"));
        let c = Charon {
            ns: ns.to_string(),
            dir,
        };
        c.swanctl(lab, &format!("--load-all --file {d}/swanctl.conf"));
        c
    }

    pub fn swanctl(&self, lab: &Lab, args: &str) -> String {
        lab.exec_ok(
            &self.ns,
            &format!(
                "env STRONGSWAN_CONF={}/strongswan.conf swanctl {args}",
                self.dir.display()
            ),
        )
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("charon.log")).unwrap_or_default()
    }
}

/// Starts tshark in `ns`; returns the capture file.
pub fn capture(lab: &mut Lab, ns: &str, tag: &str) -> PathBuf {
    let pcap = lab.dir.join(format!("{tag}.pcap"));
    lab.spawn(
        ns,
        &format!("tshark-{tag}"),
        &format!("tshark -q -i any -f 'udp or esp' -w {}", pcap.display()),
    );
    // "Capturing on" comes before the capture really runs; "Capture started." after.
    let up = wait_for(Duration::from_secs(15), || {
        lab.log(&format!("tshark-{tag}"))
            .contains("Capture started")
            .then_some(())
    });
    assert!(
        up.is_some(),
        "tshark did not start: {}",
        lab.log(&format!("tshark-{tag}"))
    );
    std::thread::sleep(Duration::from_millis(200));
    pcap
}

pub fn stop_capture(lab: &mut Lab, tag: &str) {
    std::thread::sleep(Duration::from_millis(300));
    lab.stop(&format!("tshark-{tag}"), "INT");
}

/// Counts IKE and ESP packets in a capture, asserting tshark finds none malformed.
pub fn check_capture(pcap: &std::path::Path) -> (u64, u64) {
    let out = must(&format!(
        "tshark -r {} -T fields -e isakmp.ispi -e esp.spi -e _ws.malformed -e _ws.expert.severity",
        pcap.display()
    ));
    let (mut ike, mut esp) = (0, 0);
    for line in out.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        assert!(
            f.get(2).is_none_or(|m| m.is_empty()),
            "tshark: malformed packet in {}: {line}",
            pcap.display()
        );
        // Expert severity "error" is 8388608 (0x00800000).
        let severe = f.get(3).is_some_and(|s| {
            s.split(',')
                .any(|v| v.parse::<u64>().is_ok_and(|v| v >= 0x0080_0000))
        });
        assert!(
            !severe,
            "tshark: error-level finding in {}: {line}",
            pcap.display()
        );
        if f.first().is_some_and(|v| !v.is_empty()) {
            ike += 1;
        }
        if f.get(1).is_some_and(|v| !v.is_empty()) {
            esp += 1;
        }
    }
    (ike, esp)
}

/// Raises `net.core.rmem_default` until dropped.
pub struct RmemDefault(String);

impl RmemDefault {
    pub fn raise(bytes: u32) -> RmemDefault {
        let old = must("sysctl -n net.core.rmem_default").trim().to_string();
        must(&format!("sysctl -qw net.core.rmem_default={bytes}"));
        RmemDefault(old)
    }
}

impl Drop for RmemDefault {
    fn drop(&mut self) {
        let _ = super::sh(&format!("sysctl -qw net.core.rmem_default={}", self.0));
    }
}

/// meshsec's side of an interop run (namespace "m", 192.0.2.1) with peer "s" (strongSwan,
/// 192.0.2.2): our and its selectors `ts`, `always` when meshsec initiates (else `passive`),
/// and `extra` peer settings (proposals, authentication, lifetimes...).
pub fn meshsec_side(
    lab: &Lab,
    sock: &std::path::Path,
    ts: (&str, &str),
    meshsec_initiates: bool,
    extra: &str,
) -> String {
    config(
        &NodeCfg {
            name: "m",
            addr: "192.0.2.1",
            socket: sock,
            keys: &lab.dir,
        },
        &[PeerCfg {
            name: "s",
            addr: "192.0.2.2",
            local_ts: ts.0,
            remote_ts: ts.1,
            start: if meshsec_initiates {
                "always"
            } else {
                "passive"
            },
            extra,
        }],
    )
}
