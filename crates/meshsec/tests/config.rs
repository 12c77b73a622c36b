//! `meshsec check-config`: the complete example of docs/config.md is valid, and malformed
//! configurations are rejected with exactly the messages docs/config.md shows (file, line,
//! key, what is expected). Runs as root (PSK files must be root-owned), as the test command
//! does.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

fn docs() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/config.md")).unwrap()
}

/// The first fenced block of `lang` after `heading`.
fn block(doc: &str, heading: &str, lang: &str) -> String {
    let from = doc
        .find(heading)
        .unwrap_or_else(|| panic!("{heading} not in docs"));
    let rest = &doc[from..];
    let start = rest.find(&format!("```{lang}\n")).unwrap() + lang.len() + 4;
    let end = rest[start..].find("```").unwrap();
    rest[start..start + end].to_string()
}

/// A fresh directory with the key files of the example.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("meshsec-config-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("keys")).unwrap();
        let dir = Dir(d);
        dir.key("beta", "a long enough pre-shared key for beta", 0o600);
        dir.key("gamma", "another long enough pre-shared key", 0o600);
        dir
    }

    fn key(&self, name: &str, content: &str, mode: u32) {
        let p = self.0.join("keys").join(format!("{name}.psk"));
        std::fs::write(&p, format!("{content}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    /// Runs `meshsec check-config -c meshsec.toml` on `config`; returns (success, stdout, stderr).
    /// In a network namespace of its own: check-config refuses a peer at one of this host's
    /// addresses, and the examples' 192.0.2.x may well be this machine's.
    fn check(&self, config: &str) -> (bool, String, String) {
        std::fs::write(self.0.join("meshsec.toml"), config).unwrap();
        let out = Command::new("unshare")
            .args(["--net", env!("CARGO_BIN_EXE_meshsec")])
            .args(["check-config", "-c", "meshsec.toml"])
            .current_dir(&self.0)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    }
}

impl Dir {
    /// Each case (after `reset` and its own preparation) is refused with exactly the
    /// documented message at the same place in `expected`.
    fn refuse_each(&self, cases: &[(String, Prepare)], expected: &[String], reset: impl Fn()) {
        assert_eq!(
            cases.len(),
            expected.len(),
            "one case per documented message"
        );
        for ((text, prepare), want) in cases.iter().zip(expected) {
            reset();
            prepare(self);
            let (ok, _, err) = self.check(text);
            assert!(!ok, "accepted:\n{text}");
            assert_eq!(err.trim_end(), format!("error: {want}"), "for:\n{text}");
        }
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn root() -> bool {
    Path::new("/proc/self")
        .metadata()
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

#[test]
fn the_documented_example_is_valid() {
    assert!(root(), "run as root (key files must be root-owned)");
    let dir = Dir::new("example");
    let (ok, out, err) = dir.check(&block(&docs(), "## Complete example", "toml"));
    assert!(ok, "{err}");
    assert!(
        out.contains("node alpha (fqdn:alpha.example.org) on 192.0.2.1, TUN meshsec0"),
        "{out}"
    );
    assert!(out.contains("peer beta 192.0.2.2:500 (fqdn:beta.example.org): 10.1.0.0/24 <-> 10.2.0.0/24, Tunnel mode, start Always, 1 IKE / 2 ESP proposal(s), IKE SA 4h, CHILD SA 1h"), "{out}");
    assert!(out.contains("peer gamma [2001:db8::3]:500 (email:gamma@example.org): 2001:db8:1::/64 <-> 2001:db8:3::/64,2001:db8:4::10-2001:db8:4::20, Transport mode, start Passive"), "{out}");
}

/// A small configuration whose lines 12-14 the error cases vary.
fn config(line11: &str, line12: &str, line13: &str, line14: &str) -> String {
    format!(
        "[node]\nname = \"alpha\"\nidentity = \"fqdn:alpha.example.org\"\naddresses = [\"192.0.2.1\"]\n\n\
         [[peer]]\nname = \"beta\"\naddress = \"192.0.2.2\"\nremote_ts = [\"10.2.0.0/24\"]\n# lines 10-14 vary\n\
         {line11}\n{line12}\n{line13}\n{line14}\n"
    )
}

/// What a case does to the key files before the check.
type Prepare = Box<dyn Fn(&Dir)>;

const ID: &str = "identity = \"fqdn:beta.example.org\"";
const PSK: &str = "psk_file = \"keys/beta.psk\"";
const TS: &str = "local_ts = [\"10.1.0.0/24\"]";

#[test]
fn malformed_configs_get_the_documented_messages() {
    assert!(root(), "run as root (key files must be root-owned)");
    let expected: Vec<String> = block(&docs(), "## Errors", "text")
        .lines()
        .map(str::to_string)
        .collect();
    let dir = Dir::new("errors");
    let cases: Vec<(String, Prepare)> = vec![
        (
            config(
                TS,
                ID,
                PSK,
                "ike_proposals = [\"aes256gcm17-prfsha256-x25519\"]",
            ),
            Box::new(|_| {}),
        ),
        (
            config(TS, ID, PSK, "ike_proposals = [\"aes128-sha1-modp2048\"]"),
            Box::new(|_| {}),
        ),
        (
            config("# -", ID, PSK, TS),
            Box::new(|d: &Dir| d.key("beta", "short123", 0o600)),
        ),
        (
            config("# -", ID, PSK, TS),
            Box::new(|d: &Dir| d.key("beta", "a long enough pre-shared key for beta", 0o644)),
        ),
        (
            config("# -", ID, PSK, "local_ts = [\"10.1.0.0/33\"]"),
            Box::new(|_| {}),
        ),
        (
            config(TS, "identity = \"beta\"", PSK, "# -"),
            Box::new(|_| {}),
        ),
        (config(TS, ID, PSK, "mode = \"tunel\""), Box::new(|_| {})),
        (
            config(TS, ID, PSK, "child_lifetime = \"3s\""),
            Box::new(|_| {}),
        ),
        (config(TS, ID, PSK, "colour = \"blue\""), Box::new(|_| {})),
    ];
    dir.refuse_each(&cases, &expected, || {
        dir.key("beta", "a long enough pre-shared key for beta", 0o600);
    });
}

#[test]
fn weak_keys_and_algorithms_pass_only_when_allowed_and_then_warn() {
    assert!(root(), "run as root (key files must be root-owned)");
    let dir = Dir::new("weak");
    dir.key("beta", "short123", 0o600);
    let (ok, _, err) = dir.check(&config(TS, ID, PSK, "allow_weak_psk = true"));
    assert!(ok, "{err}");
    assert!(
        err.contains(
            "warning: meshsec.toml: peer.beta.psk_file: weak pre-shared key (8 non-blank characters; at least 20 are required)"
        ),
        "{err}"
    );
    dir.key("beta", "a long enough pre-shared key for beta", 0o600);
    let weak = "ike_proposals = [\"aes128-sha1-modp2048\"]\nallow_weak_crypto = true";
    let (ok, _, err) = dir.check(&config(TS, ID, PSK, weak));
    assert!(ok, "{err}");
    assert!(
        err.contains("uses SHA-1 (allowed by allow_weak_crypto)"),
        "{err}"
    );
    // A missing file and a missing key are named too.
    let (ok, _, err) = dir.check(&config(TS, ID, "psk_file = \"keys/none.psk\"", "# -"));
    assert!(
        !ok && err.contains("meshsec.toml:13: peer.beta.psk_file: keys/none.psk: No such file"),
        "{err}"
    );
    let (ok, _, err) = dir.check(&config(TS, ID, "# -", "# -"));
    assert!(
        !ok && err.contains("peer.beta.psk_file: a pre-shared key is needed"),
        "{err}"
    );
}

#[test]
fn lifecycle_settings_parse_and_bad_values_are_explained() {
    assert!(root(), "run as root (key files must be root-owned)");
    let dir = Dir::new("lifecycle");
    dir.key("beta", "a long enough pre-shared key for beta", 0o600);
    let good = "child_lifetime_bytes = \"10G\"\nchild_lifetime_packets = 1000000\n\
                dpd_delay = \"off\"\ndpd_action = \"trap\"\ntunnel_check = \"off\"";
    let (ok, _, err) = dir.check(&config(TS, ID, PSK, good));
    assert!(ok, "{err}");
    for (line, want) in [
        (
            "child_lifetime_bytes = \"10X\"",
            "meshsec.toml:14: peer.beta.child_lifetime_bytes: \"10X\": expected a volume of at least 1M like \"500M\", \"10G\" or \"1T\"",
        ),
        (
            "child_lifetime_packets = 5",
            "meshsec.toml:14: peer.beta.child_lifetime_packets: a number of packets, at least 1000",
        ),
        (
            "dpd_action = \"reboot\"",
            "meshsec.toml:14: peer.beta.dpd_action: \"reboot\": expected \"restart\", \"clear\" or \"trap\"",
        ),
        (
            "dpd_timeout = \"0s\"",
            "meshsec.toml:14: peer.beta.dpd_timeout: \"0s\": expected a duration of at least 1 s like \"90s\", \"15m\", \"4h\" or \"1d\"",
        ),
    ] {
        let (ok, _, err) = dir.check(&config(TS, ID, PSK, line));
        assert!(!ok, "{line} was accepted");
        assert!(err.contains(want), "for {line}:\n{err}");
    }
}

#[test]
fn key_files_are_one_per_peer_root_only_and_not_links() {
    assert!(root(), "run as root (key files must be root-owned)");
    let dir = Dir::new("keys");
    let two_peers = |extra_beta: &str, extra_gamma: &str| {
        format!(
            "[node]\nname = \"alpha\"\nidentity = \"fqdn:alpha.example.org\"\naddresses = [\"192.0.2.1\"]\n\n\
             [[peer]]\nname = \"beta\"\naddress = \"192.0.2.2\"\nidentity = \"fqdn:beta.example.org\"\n\
             psk_file = \"keys/beta.psk\"\nlocal_ts = [\"10.1.0.0/24\"]\nremote_ts = [\"10.2.0.0/24\"]\n{extra_beta}\n\n\
             [[peer]]\nname = \"gamma\"\naddress = \"192.0.2.3\"\nidentity = \"fqdn:gamma.example.org\"\n\
             psk_file = \"keys/gamma.psk\"\nlocal_ts = [\"10.1.0.0/24\"]\nremote_ts = [\"10.3.0.0/24\"]\n{extra_gamma}\n"
        )
    };
    let (ok, _, err) = dir.check(&two_peers("", ""));
    assert!(ok, "{err}");
    // The same key for two peers: refused, naming the other peer, unless both allow it.
    dir.key("gamma", "a long enough pre-shared key for beta", 0o600);
    let (ok, _, err) = dir.check(&two_peers("", ""));
    assert!(!ok);
    assert!(
        err.contains("meshsec.toml:19: peer.gamma.psk_file: the same pre-shared key as peer beta"),
        "{err}"
    );
    let (ok, _, _) = dir.check(&two_peers("", "allow_shared_psk = true"));
    assert!(!ok, "one side's permission is not enough");
    let both = "allow_shared_psk = true";
    let (ok, _, err) = dir.check(&two_peers(both, both));
    assert!(ok, "{err}");
    // A symbolic link is not followed.
    dir.key("gamma", "another long enough pre-shared key", 0o600);
    let link = dir.0.join("keys").join("link.psk");
    std::os::unix::fs::symlink(dir.0.join("keys").join("gamma.psk"), &link).unwrap();
    let (ok, _, err) = dir.check(&config(TS, ID, "psk_file = \"keys/link.psk\"", "# -"));
    assert!(!ok);
    assert!(
        err.contains("peer.beta.psk_file: keys/link.psk is a symbolic link"),
        "{err}"
    );
    // Nor is a key in a directory others may write to.
    let keys = dir.0.join("keys");
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o777)).unwrap();
    let (ok, _, err) = dir.check(&config(TS, ID, PSK, "# -"));
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert!(!ok);
    assert!(
        err.contains("keys/beta.psk is in keys, which is writable by others than root"),
        "{err}"
    );
}

#[test]
fn accept_from_takes_selectors_or_any() {
    assert!(root(), "run as root (key files must be root-owned)");
    let dir = Dir::new("accept");
    for good in [
        "accept_from = [\"198.51.100.0/24\", \"2001:db8::/32\"]",
        "accept_from = [\"any\"]",
    ] {
        let (ok, _, err) = dir.check(&config(TS, ID, PSK, good));
        assert!(ok, "{good}: {err}");
    }
    let (ok, _, err) = dir.check(&config(TS, ID, PSK, "accept_from = [\"anywhere\"]"));
    assert!(!ok);
    assert!(
        err.contains("meshsec.toml:14: peer.beta.accept_from: \"anywhere\" is not a selector"),
        "{err}"
    );
}

/// The fenced `toml` blocks of the "Mesh inventory" section: (host config, inventory).
fn mesh_blocks() -> (String, String) {
    let doc = docs();
    let host = block(&doc, "## Mesh inventory", "toml");
    let from = doc.find("## Mesh inventory").unwrap();
    let after_first = from + doc[from..].find(&host).unwrap() + host.len();
    let inventory = block(&doc[after_first..], "```toml", "toml");
    (host, inventory)
}

impl Dir {
    fn mesh_secret(&self, content: &str) {
        let p = self.0.join("mesh.key");
        std::fs::write(&p, format!("{content}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

#[test]
fn the_documented_inventory_gives_each_host_its_pairs() {
    assert!(root(), "run as root (key files must be root-owned)");
    let dir = Dir::new("inventory");
    dir.mesh_secret("a mesh secret of at least thirty-two octets");
    let (host, inventory) = mesh_blocks();
    std::fs::write(dir.0.join("inventory.toml"), &inventory).unwrap();
    let web1 = host.replace("[node]\n", "[node]\nname = \"web1\"\n");
    let (ok, out, err) = dir.check(&web1);
    assert!(ok, "{err}");
    assert!(
        out.contains("node web1 (fqdn:web1) on 192.0.2.11, 2001:db8::11"),
        "{out}"
    );
    assert!(out.contains("mesh inventory.toml (4 hosts): bypass icmp, tcp/22, tcp/8140, ipv6-icmp; require 192.0.2.0/24, 2001:db8::/64; fail-open"), "{out}");
    // Its cluster: both families with web2, IPv4 with db1; mon1 only for its port.
    assert!(out.contains("peer web2 192.0.2.12:500 (fqdn:web2): 192.0.2.11/32 <-> 192.0.2.12/32, Transport mode, start Always"), "{out}");
    assert!(out.contains("peer web2/v6 [2001:db8::12]:500 (fqdn:web2): 2001:db8::11/128 <-> 2001:db8::12/128, Transport mode"), "{out}");
    assert!(
        out.contains("peer db1 192.0.2.21:500 (fqdn:db1): 192.0.2.11/32 <-> 192.0.2.21/32"),
        "{out}"
    );
    assert!(
        out.contains(
            "peer mon1 192.0.2.31:500 (fqdn:mon1): 192.0.2.11/32[tcp/9100] <-> 192.0.2.31/32[tcp]"
        ),
        "{out}"
    );
    // The monitoring host, in a cluster of its own, has the scraping rule with everyone.
    let (ok, out, err) = dir.check(&host.replace("[node]\n", "[node]\nname = \"mon1\"\n"));
    assert!(ok, "{err}");
    assert_eq!(out.matches("\npeer ").count(), 3, "{out}");
    assert!(
        out.contains(
            "peer db1 192.0.2.21:500 (fqdn:db1): 192.0.2.31/32[tcp] <-> 192.0.2.21/32[tcp/9100]"
        ),
        "{out}"
    );
    // No name and no inventory address on this machine: a clear error.
    let (ok, _, err) = dir.check(&host);
    assert!(!ok);
    assert!(err.contains("meshsec.toml:3: node.inventory: no host of inventory.toml has an address of this machine; set [node] name"), "{err}");
}

#[test]
fn inventory_errors_name_the_inventory_file_line_and_key() {
    assert!(root(), "run as root (key files must be root-owned)");
    let dir = Dir::new("inventory-errors");
    dir.mesh_secret("a mesh secret of at least thirty-two octets");
    let host = "[node]\nname = \"a\"\ninventory = \"inventory.toml\"\n";
    let cases = [
        (
            "[mesh]\nsecret_file = \"mesh.key\"\n[hosts]\na = { addresses = [\"192.0.2.1\"] }\nb = { addresses = [\"192.0.2.300\"] }\n",
            "inventory.toml:5: hosts.b.addresses: \"192.0.2.300\" is not an IP address",
        ),
        (
            "[mesh]\nsecret_file = \"mesh.key\"\n[hosts]\na = { addresses = [\"192.0.2.1\"] }\nb = { addresses = [\"192.0.2.1\"] }\n",
            "inventory.toml:5: hosts.b.addresses: 192.0.2.1 is also listed for host a",
        ),
        (
            "[mesh]\nsecret_file = \"mesh.key\"\n[hosts]\na = { addresses = [\"192.0.2.1\"] }\n\n[[rule]]\nfrom = \"group:monitoring\"\nto = \"all\"\n",
            "inventory.toml:7: rule[1].from: \"group:monitoring\" names no host of the inventory",
        ),
        (
            "[mesh]\nsecret_file = \"mesh.key\"\n[hosts]\na = { addresses = [\"192.0.2.1\"] }\n\n[[rule]]\nfrom = \"all\"\nto = \"all\"\nports = [\"tcp/http\"]\n",
            "inventory.toml:9: rule[1].ports: \"tcp/http\": use PROTOCOL[/PORT[-PORT]]",
        ),
        (
            "[mesh]\nsecret_file = \"mesh.key\"\n[hosts]\nb = { addresses = [\"192.0.2.2\"] }\n",
            "meshsec.toml:2: node.name: host \"a\" is not in the inventory inventory.toml (1 hosts",
        ),
        (
            "[mesh]\nsecret_file = \"short.key\"\n[hosts]\na = { addresses = [\"192.0.2.1\"] }\n",
            "inventory.toml:2: mesh.secret_file: the mesh secret has 5 octets; at least 32 are required",
        ),
        (
            "[mesh]\nsecret_file = \"mesh.key\"\nrequire = [\"192.0.2.1/24\"]\n[hosts]\na = { addresses = [\"192.0.2.1\"] }\n",
            "inventory.toml:3: mesh.require: \"192.0.2.1/24\" is not a network",
        ),
    ];
    let short = dir.0.join("short.key");
    std::fs::write(&short, "short\n").unwrap();
    std::fs::set_permissions(&short, std::fs::Permissions::from_mode(0o600)).unwrap();
    for (inventory, expected) in cases {
        std::fs::write(dir.0.join("inventory.toml"), inventory).unwrap();
        let (ok, _, err) = dir.check(host);
        assert!(!ok, "accepted:\n{inventory}");
        assert!(err.contains(expected), "expected {expected:?}, got {err}");
    }
}

/// `meshsec pki` in `dir`.
fn pki(dir: &Path, args: &str) {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("{} pki {args}", env!("CARGO_BIN_EXE_meshsec")))
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pki {args}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn certificate_settings_are_checked_with_file_line_and_key() {
    assert!(root(), "run as root (key files must be root-owned)");
    let dir = Dir::new("certs");
    let d = &dir.0;
    pki(d, "ca --out ca --name 'example CA'");
    pki(
        d,
        "issue alpha.example.org --ca ca/ca.pem --ca-key ca/ca.key --out certs",
    );
    pki(
        d,
        "issue other.example.org --ca ca/ca.pem --ca-key ca/ca.key --out certs",
    );
    pki(
        d,
        "issue soon.example.org --ca ca/ca.pem --ca-key ca/ca.key --out certs --days 10",
    );
    let cert = |name: &str| {
        format!(
            "auth = \"cert\"\ncert_file = \"certs/{name}.pem\"\nkey_file = \"certs/{name}.key\""
        )
    };
    let cas = "ca_files = [\"ca/ca.pem\"]";
    // Valid: certificates both ways, no PSK needed; check-config says who signs as what.
    let (ok, out, err) = dir.check(&config(TS, ID, &cert("alpha.example.org"), cas));
    assert!(ok, "{err}");
    assert!(
        out.contains("we sign as \"CN=alpha.example.org\" (until ")
            && out.contains("it with a certificate from \"CN=example CA\""),
        "{out}"
    );
    // Each mistake names the file, line and key.
    let cases: Vec<(String, &str)> = vec![
        (
            config(TS, ID, "auth = \"certificate\"", cas),
            "meshsec.toml:13: peer.beta.auth: \"certificate\" is not an authentication method: use \"psk\" or \"cert\"",
        ),
        (
            config(TS, ID, "auth = \"cert\"", cas),
            "meshsec.toml:13: peer.beta.cert_file: auth = \"cert\" needs cert_file (our certificate, PEM) and key_file (its private key)",
        ),
        (
            config(TS, ID, &cert("other.example.org"), cas),
            "meshsec.toml:14: peer.beta.cert_file: our identity fqdn:alpha.example.org is not in the certificate, which holds subject \"CN=other.example.org\", fqdn:other.example.org: peers would refuse it (issue a certificate with it as subjectAltName, or set node.identity to one it holds)",
        ),
        (
            config(
                TS,
                ID,
                "auth = \"cert\"\ncert_file = \"certs/alpha.example.org.pem\"\nkey_file = \"certs/other.example.org.key\"",
                cas,
            ),
            "meshsec.toml:15: peer.beta.key_file: certs/other.example.org.key: the private key (ECDSA P-256) does not belong to the certificate \"CN=alpha.example.org\" (the first in the certificate file)",
        ),
        (
            config(TS, ID, &cert("alpha.example.org"), "# no CAs"),
            "meshsec.toml:13: peer.beta.ca_files: certificate authentication of the peer needs ca_files (the CAs its certificate must chain to, PEM)",
        ),
        (
            config(
                TS,
                ID,
                &cert("alpha.example.org"),
                "ca_files = [\"certs/other.example.org.pem\"]",
            ),
            "is not a CA certificate (no basicConstraints CA:TRUE)",
        ),
        (
            config(TS, ID, "# no psk_file", "# -"),
            "meshsec.toml:7: peer.beta.psk_file: a pre-shared key is needed (auth or peer_auth is \"psk\", the default): set psk_file, or auth = \"cert\" with cert_file, key_file and ca_files",
        ),
    ];
    for (text, want) in &cases {
        let (ok, _, err) = dir.check(text);
        assert!(!ok, "accepted:\n{text}");
        assert!(
            err.contains(want),
            "for:\n{text}\nwanted {want:?}\ngot {err}"
        );
    }
    // The private key is a key file: root-only.
    std::fs::set_permissions(
        d.join("certs/alpha.example.org.key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let (ok, _, err) = dir.check(&config(TS, ID, &cert("alpha.example.org"), cas));
    assert!(
        !ok && err.contains("peer.beta.key_file") && err.contains("chmod 600"),
        "{err}"
    );
    std::fs::set_permissions(
        d.join("certs/alpha.example.org.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    // A certificate that expires within 30 days is accepted with a warning.
    let soon = config(
        TS,
        "identity = \"fqdn:beta.example.org\"",
        &cert("soon.example.org"),
        cas,
    )
    .replace("fqdn:alpha.example.org", "fqdn:soon.example.org");
    let (ok, _, err) = dir.check(&soon);
    assert!(ok, "{err}");
    assert!(
        err.contains("our certificate \"CN=soon.example.org\" expires on")
            && err.contains("(in 9 days)"),
        "{err}"
    );
    // Mixed: we sign with a certificate, the peer uses the PSK — only when asked for.
    let (ok, out, err) = dir.check(&config(
        TS,
        ID,
        &cert("soon.example.org")
            .replace("certs/soon", "certs/alpha")
            .replace(".soon.", "."),
        &format!("peer_auth = \"psk\"\n{PSK}"),
    ));
    assert!(ok, "{err}");
    assert!(out.contains("it with the PSK"), "{out}");
    // A second accepted PSK (rotation) is a key file like the first.
    dir.key("next", "the next long enough pre-shared key", 0o600);
    let (ok, out, err) = dir.check(&config(TS, ID, PSK, "accept_psk_file = \"keys/next.psk\""));
    assert!(ok, "{err}");
    assert!(
        out.contains("it with the PSK or the accepted next one"),
        "{out}"
    );
    // ... and belongs to one peer: not in [defaults], and not another peer's key either.
    let text = config(TS, ID, PSK, "# -").replace(
        "\n[[peer]]",
        "\n[defaults]\naccept_psk_file = \"keys/next.psk\"\n\n[[peer]]",
    );
    let (ok, _, err) = dir.check(&text);
    assert!(
        !ok && err.contains("defaults.accept_psk_file: accept_psk_file belongs to one peer"),
        "{err}"
    );
    let two = format!(
        "{}\n[[peer]]\nname = \"gamma\"\naddress = \"192.0.2.3\"\nidentity = \"fqdn:gamma.example.org\"\npsk_file = \"keys/gamma.psk\"\naccept_psk_file = \"keys/beta.psk\"\nlocal_ts = [\"10.1.0.0/24\"]\nremote_ts = [\"10.3.0.0/24\"]\n",
        config(TS, ID, PSK, "# -")
    );
    let (ok, _, err) = dir.check(&two);
    assert!(
        !ok && err.contains("peer.gamma.accept_psk_file: the same pre-shared key as peer beta"),
        "{err}"
    );
}

/// Two peers; gamma's lines 15-20 (and node line 5) vary.
fn two_peers(node5: &str, addr: &str, id: &str, ts: &str, line20: &str) -> String {
    format!(
        "[node]\nname = \"alpha\"\nidentity = \"fqdn:alpha.example.org\"\naddresses = [\"192.0.2.1\"]\n{node5}\n\
         [[peer]]\nname = \"beta\"\naddress = \"192.0.2.2\"\nidentity = \"fqdn:beta.example.org\"\n\
         psk_file = \"keys/beta.psk\"\nlocal_ts = [\"10.1.0.0/24\"]\nremote_ts = [\"10.2.0.0/24\"]\n\
         [[peer]]\nname = \"gamma\"\naddress = \"{addr}\"\nidentity = \"{id}\"\n\
         psk_file = \"keys/gamma.psk\"\nlocal_ts = [\"10.1.0.0/24\"]\nremote_ts = [{ts}]\n{line20}\n"
    )
}

#[test]
fn conflicting_settings_are_refused_with_both_places_named() {
    assert!(root(), "run as root (key files must be root-owned)");
    let expected: Vec<String> = block(
        &docs(),
        "### Settings that conflict with each other or with this host",
        "text",
    )
    .lines()
    .map(str::to_string)
    .collect();
    let dir = Dir::new("conflicts");
    let (gid, gaddr, gts) = ("fqdn:gamma.example.org", "192.0.2.3", "\"10.3.0.0/24\"");
    let good = two_peers("", gaddr, gid, gts, "");
    let (ok, _, err) = dir.check(&good);
    assert!(ok, "{err}");
    // Nested selectors and one identity at two addresses are fine.
    for text in [
        two_peers("", gaddr, gid, "\"10.2.0.128/25\"", ""),
        two_peers("", gaddr, "fqdn:beta.example.org", gts, ""),
    ] {
        let (ok, _, err) = dir.check(&text);
        assert!(ok, "{err}\n{text}");
    }
    // IPv6 with a port in brackets, or bracketed alone, is read as meant.
    for (addr, shown) in [
        ("[fd00::2]:500", "[fd00::2]:500"),
        ("[fd00::2:500]", "[fd00::2:500]:500"),
        ("fd00::2", "[fd00::2]:500"),
        // Not ambiguous: "fd00:" is no address.
        ("fd00::500", "[fd00::500]:500"),
    ] {
        let (ok, out, err) = dir.check(&two_peers("", addr, gid, gts, ""));
        assert!(
            ok && out.contains(&format!("peer gamma {shown} ")),
            "{addr}: {out}{err}"
        );
    }
    let weak = |content: &'static str| -> Prepare {
        Box::new(move |d: &Dir| d.key("gamma", content, 0o600))
    };
    let none = || -> Prepare { Box::new(|_| {}) };
    let cases: Vec<(String, Prepare)> = vec![
        (
            two_peers("", "192.0.2.2", "fqdn:beta.example.org", gts, ""),
            none(),
        ),
        (
            two_peers("", gaddr, "fqdn:alpha.example.org", gts, ""),
            none(),
        ),
        (
            two_peers("", gaddr, gid, "\"10.2.0.128-10.2.1.127\"", ""),
            none(),
        ),
        (
            two_peers("", gaddr, gid, "\"10.3.0.0/24\", \"10.3.0.0/24\"", ""),
            none(),
        ),
        (two_peers("", "192.0.2.1", gid, gts, ""), none()),
        (two_peers("", "fd00::2:500", gid, gts, ""), none()),
        (two_peers("tun = \"lo\"", gaddr, gid, gts, ""), none()),
        (
            two_peers("", gaddr, gid, gts, ""),
            weak("                        "),
        ),
        (
            two_peers("", gaddr, gid, gts, ""),
            weak("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
        ),
        (
            two_peers("", gaddr, gid, gts, "ike_lifetime = \"213503982334602d\""),
            none(),
        ),
        (
            two_peers("", gaddr, gid, gts, "ike_lifetime = \"400d\""),
            none(),
        ),
    ];
    dir.refuse_each(&cases, &expected, || {
        dir.key("gamma", "another long enough pre-shared key", 0o600);
    });
}

#[test]
fn a_user_who_is_not_root_is_told_to_run_as_root() {
    assert!(root(), "run as root (key files must be root-owned)");
    let dir = Dir::new("nonroot");
    std::fs::write(dir.0.join("meshsec.toml"), config(TS, ID, PSK, "# -")).unwrap();
    for d in [&dir.0, &dir.0.join("keys")] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .args([
            env!("CARGO_BIN_EXE_meshsec"),
            "check-config",
            "-c",
            "meshsec.toml",
        ])
        .current_dir(&dir.0)
        .output()
        .unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(!out.status.success());
    assert_eq!(
        err.trim_end(),
        "error: meshsec.toml:13: peer.beta.psk_file: keys/beta.psk: Permission denied (os error 13) (key and configuration files are root-only: run meshsec as root, e.g. with sudo)"
    );
}

#[test]
fn a_closed_pipe_ends_the_cli_quietly() {
    assert!(root(), "run as root (key files must be root-owned)");
    let dir = Dir::new("pipe");
    std::fs::write(
        dir.0.join("meshsec.toml"),
        block(&docs(), "## Complete example", "toml"),
    )
    .unwrap();
    // `check-config | head -0`: the reader is gone before the first line is written.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new("unshare")
        .args(["--net", env!("CARGO_BIN_EXE_meshsec")])
        .args(["check-config", "-c", "meshsec.toml"])
        .current_dir(&dir.0)
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
        .wait_with_output()
        .unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(!err.contains("panicked"), "{err}");
    assert_ne!(out.status.code(), Some(101), "{err}");
}

#[test]
fn genpsk_writes_a_random_root_only_key_that_check_config_accepts() {
    assert!(root(), "run as root (key files must be root-owned)");
    let dir = Dir::new("genpsk");
    let genpsk = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_meshsec"))
            .arg("genpsk")
            .args(args)
            .current_dir(&dir.0)
            .output()
            .unwrap()
    };
    let _ = std::fs::remove_file(dir.0.join("keys/beta.psk"));
    let out = genpsk(&["-o", "keys/beta.psk"]);
    assert!(out.status.success(), "{out:?}");
    let key = std::fs::read_to_string(dir.0.join("keys/beta.psk")).unwrap();
    let key = key.trim_end();
    assert_eq!(key.len(), 64, "{key}");
    assert!(key.chars().all(|c| c.is_ascii_hexdigit()), "{key}");
    let mode = std::fs::metadata(dir.0.join("keys/beta.psk"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let (ok, _, err) = dir.check(&config(TS, ID, PSK, "# -"));
    assert!(ok, "{err}");
    // An existing key is not overwritten by accident.
    let again = genpsk(&["-o", "keys/beta.psk"]);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr)
            .contains("keys/beta.psk exists; not overwritten (a peer may use it): pass --force"),
        "{again:?}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.0.join("keys/beta.psk"))
            .unwrap()
            .trim_end(),
        key
    );
    assert!(genpsk(&["-o", "keys/beta.psk", "--force"]).status.success());
    assert_ne!(
        std::fs::read_to_string(dir.0.join("keys/beta.psk"))
            .unwrap()
            .trim_end(),
        key
    );
    // Printed keys differ each time.
    let (a, b) = (genpsk(&[]).stdout, genpsk(&[]).stdout);
    assert_eq!(a.len(), 65);
    assert_ne!(a, b);
}
