//! A small lab for end-to-end tests: network namespaces joined by veth pairs, meshsec daemons
//! and strongSwan charons running inside them, all torn down when the [`Lab`] is dropped
//! (also when a test fails). Needs root; addresses are test-net ranges inside the namespaces.
#![allow(dead_code)]

pub mod strongswan;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub const MESHSEC: &str = env!("CARGO_BIN_EXE_meshsec");

/// The daemon the tests start: this build, or `MESHSEC_DAEMON` (an older build, to measure it
/// in the same run; tests that read new status fields then only report).
pub fn daemon_binary() -> String {
    std::env::var("MESHSEC_DAEMON").unwrap_or_else(|_| MESHSEC.to_string())
}
pub const PSK: &str = "netns-test-psk-not-secret-0123456789";
/// The sequenced-stream checker (lost / reordered messages, longest gap).
pub const CHECKER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/checker.py");

/// Tests of one binary run one at a time: they share two CPU cores and measure traffic.
static SERIAL: Mutex<()> = Mutex::new(());
static NEXT: AtomicU32 = AtomicU32::new(0);

pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub fn require_root() {
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        })
        .unwrap_or_default();
    assert_eq!(
        uid, "0",
        "network-namespace tests need root (run scripts/test-all as root)"
    );
}

fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

pub fn sh(cmd: &str) -> Output {
    run(Command::new("sh").arg("-c").arg(cmd))
}

pub fn must(cmd: &str) -> String {
    let out = sh(cmd);
    assert!(
        out.status.success(),
        "`{cmd}` failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Polls `f` every 100 ms until it returns `Some` or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Namespaces, processes and files of one test.
pub struct Lab {
    pub prefix: String,
    pub dir: PathBuf,
    namespaces: Vec<String>,
    children: Vec<(String, Child)>,
    _serial: MutexGuard<'static, ()>,
}

impl Lab {
    pub fn new(test: &str) -> Lab {
        require_root();
        let serial = serial();
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let prefix = format!("ms{}{}", std::process::id() % 10000, n);
        let dir = std::env::temp_dir().join(format!("meshsec-{test}-{prefix}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Lab {
            prefix,
            dir,
            namespaces: Vec::new(),
            children: Vec::new(),
            _serial: serial,
        }
    }

    /// Creates namespace `<prefix>-<name>` with `lo` up; returns its full name.
    pub fn ns(&mut self, name: &str) -> String {
        let ns = format!("{}-{name}", self.prefix);
        let _ = sh(&format!("ip netns del {ns} 2>/dev/null"));
        must(&format!("ip netns add {ns} && ip -n {ns} link set lo up"));
        self.namespaces.push(ns.clone());
        ns
    }

    /// A veth pair between two namespaces with an address (CIDR) on each end; returns the
    /// interface names (in a, in b).
    pub fn link(&self, a: &str, a_addr: &str, b: &str, b_addr: &str) -> (String, String) {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let (ia, ib) = (format!("va{n}"), format!("vb{n}"));
        must(&format!(
            "ip link add {ia} netns {a} type veth peer name {ib} netns {b} && \
             ip -n {a} addr add {a_addr} dev {ia} && ip -n {b} addr add {b_addr} dev {ib} && \
             ip -n {a} link set {ia} up && ip -n {b} link set {ib} up"
        ));
        (ia, ib)
    }

    /// Runs `cmd` in namespace `ns` and returns its output.
    pub fn exec(&self, ns: &str, cmd: &str) -> Output {
        run(Command::new("ip").args(["netns", "exec", ns, "sh", "-c", cmd]))
    }

    /// Like [`Lab::exec`] but panics with the output on failure.
    pub fn exec_ok(&self, ns: &str, cmd: &str) -> String {
        let out = self.exec(ns, cmd);
        assert!(
            out.status.success(),
            "[{ns}] `{cmd}` failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts a long-running process in `ns`, output to `<dir>/<tag>.log`; killed on drop.
    pub fn spawn(&mut self, ns: &str, tag: &str, cmd: &str) -> u32 {
        let log = std::fs::File::create(self.dir.join(format!("{tag}.log"))).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", ns, "sh", "-c", &format!("exec {cmd}")])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let pid = child.id();
        self.children.push((tag.to_string(), child));
        pid
    }

    /// Sends `signal` to the process started as `tag` and waits for it (up to 15 s: tshark
    /// finishing its file on a loaded machine takes a while).
    pub fn stop(&mut self, tag: &str, signal: &str) {
        if let Some(i) = self.children.iter().position(|(t, _)| t == tag) {
            let (_, mut child) = self.children.remove(i);
            let _ = sh(&format!("kill -{signal} {}", child.id()));
            let _ = wait_for(Duration::from_secs(15), || child.try_wait().ok().flatten());
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends `signal` to the process started as `tag` (it keeps running, e.g. HUP).
    pub fn signal(&self, tag: &str, signal: &str) {
        if let Some((_, child)) = self.children.iter().find(|(t, _)| t == tag) {
            let _ = sh(&format!("kill -{signal} {}", child.id()));
        }
    }

    pub fn log(&self, tag: &str) -> String {
        std::fs::read_to_string(self.dir.join(format!("{tag}.log"))).unwrap_or_default()
    }

    /// Writes a file into the lab directory.
    pub fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    /// Starts a meshsec daemon in `ns` with configuration `config` (TOML text); its control
    /// socket is `<dir>/<tag>.sock` (the config must say so: use [`Lab::socket`]).
    pub fn meshsec(&mut self, ns: &str, tag: &str, config: &str) -> PathBuf {
        let cfg = self.file(&format!("{tag}.toml"), config);
        self.spawn(
            ns,
            tag,
            &format!(
                "{} run -c {} --log-level debug",
                daemon_binary(),
                cfg.display()
            ),
        );
        let sock = self.socket(tag);
        let ok = wait_for(Duration::from_secs(10), || sock.exists().then_some(()));
        assert!(
            ok.is_some(),
            "meshsec {tag} did not start:\n{}",
            self.log(tag)
        );
        sock
    }

    pub fn socket(&self, tag: &str) -> PathBuf {
        self.dir.join(format!("{tag}.sock"))
    }

    /// The daemon's `status --json`.
    pub fn status(&self, sock: &Path) -> serde_json::Value {
        let out = run(Command::new(MESHSEC)
            .args(["status", "--json", "-s"])
            .arg(sock));
        serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
    }

    /// The state of `peer` in the daemon at `sock`.
    pub fn peer_state(&self, sock: &Path, peer: &str) -> String {
        self.peer(sock, peer)["state"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    pub fn peer(&self, sock: &Path, peer: &str) -> serde_json::Value {
        let s = self.status(sock);
        s["peers"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["name"] == peer).cloned())
            .unwrap_or(serde_json::Value::Null)
    }

    /// Waits (up to 10 s) until the daemon at `sock` lists no IKE SA with `peer`; whether it
    /// did.
    pub fn wait_no_ike_sa(&self, sock: &Path, peer: &str) -> bool {
        wait_for(Duration::from_secs(10), || {
            self.peer(sock, peer)["ike_sas"]
                .as_array()
                .is_some_and(Vec::is_empty)
                .then_some(())
        })
        .is_some()
    }

    /// Waits until `peer` is established in the daemon at `sock`.
    pub fn wait_established(&self, sock: &Path, tag: &str, peer: &str) {
        let ok = wait_for(Duration::from_secs(15), || {
            (self.peer_state(sock, peer) == "established").then_some(())
        });
        assert!(
            ok.is_some(),
            "{tag}: peer {peer} not established: {}\nlog:\n{}",
            self.peer(sock, peer),
            self.log(tag)
        );
    }

    /// `count` pings from `src` in `ns` to `dst`; true if all came back.
    pub fn ping(&self, ns: &str, src: &str, dst: &str, count: u32) -> bool {
        self.exec(ns, &format!("ping -c {count} -i 0.2 -W 2 -I {src} {dst}"))
            .status
            .success()
    }

    /// Runs `iperf3 -t secs` from `client_ns` (bound to `src`) to a server on `dst` in
    /// `server_ns`; returns the receiver's bits per second.
    pub fn iperf(
        &mut self,
        server_ns: &str,
        client_ns: &str,
        src: &str,
        dst: &str,
        secs: u32,
        reverse: bool,
    ) -> f64 {
        let tag = format!("iperf3-server-{}", NEXT.fetch_add(1, Ordering::Relaxed));
        self.spawn(server_ns, &tag, &format!("iperf3 -s -1 -B {dst}"));
        std::thread::sleep(Duration::from_millis(500));
        let r = if reverse { "-R" } else { "" };
        let out = self.exec(
            client_ns,
            &format!(
                "timeout {} iperf3 -c {dst} -B {src} -t {secs} -J {r}",
                secs + 20
            ),
        );
        self.stop(&tag, "TERM");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        v["end"]["sum_received"]["bits_per_second"]
            .as_f64()
            .unwrap_or(0.0)
    }
}

/// Two daemons on one veth (see [`Lab::pair`]).
pub struct Pair {
    /// Namespace of a (192.0.2.1, inner 10.1.0.1).
    pub a: String,
    /// Namespace of b (192.0.2.2, inner 10.2.0.1).
    pub b: String,
    /// a's control socket.
    pub sa: PathBuf,
    /// b's control socket.
    pub sb: PathBuf,
    /// b's end of the veth.
    pub veth_b: String,
}

impl Lab {
    /// Two namespaces a and b on one veth, each with a daemon (b started first): a's peer b
    /// and b's peer a with `start` values `starts`, `node_extra` in both [node] sections and
    /// `extra` in both peer sections. b's configuration is kept as `b.toml` (to restart it).
    pub fn pair(&mut self, starts: (&str, &str), node_extra: &str, extra: &str) -> Pair {
        self.pair_with(starts, node_extra, (extra, extra))
    }

    /// As [`Lab::pair`], with different peer settings for a and b (`extras`).
    pub fn pair_with(
        &mut self,
        starts: (&str, &str),
        node_extra: &str,
        extras: (&str, &str),
    ) -> Pair {
        let a = self.ns("a");
        let b = self.ns("b");
        let (_, veth_b) = self.link(&a, "192.0.2.1/24", &b, "192.0.2.2/24");
        self.exec_ok(&a, "ip addr add 10.1.0.1/32 dev lo");
        self.exec_ok(&b, "ip addr add 10.2.0.1/32 dev lo");
        let keys = self.dir.clone();
        let (sa, sb) = (self.socket("a"), self.socket("b"));
        let node = format!("[node]\n{node_extra}\n");
        let side = |me: &str,
                    addr: &str,
                    sock: &Path,
                    peer: &str,
                    paddr: &str,
                    l: &str,
                    r: &str,
                    start: &str,
                    extra: &str| {
            config(
                &NodeCfg {
                    name: me,
                    addr,
                    socket: sock,
                    keys: &keys,
                },
                &[PeerCfg {
                    name: peer,
                    addr: paddr,
                    local_ts: l,
                    remote_ts: r,
                    start,
                    extra,
                }],
            )
            .replacen("[node]\n", &node, 1)
        };
        let ca = side(
            "a",
            "192.0.2.1",
            &sa,
            "b",
            "192.0.2.2",
            "10.1.0.0/24",
            "10.2.0.0/24",
            starts.0,
            extras.0,
        );
        let cb = side(
            "b",
            "192.0.2.2",
            &sb,
            "a",
            "192.0.2.1",
            "10.2.0.0/24",
            "10.1.0.0/24",
            starts.1,
            extras.1,
        );
        self.file("b.toml", &cb);
        self.meshsec(&b, "b", &cb);
        self.meshsec(&a, "a", &ca);
        Pair {
            a,
            b,
            sa,
            sb,
            veth_b,
        }
    }

    /// For `secs` seconds: `load_mbps` of iperf3 load (two TCP streams) from a to b, below
    /// what the tunnel carries (a saturated path drops at its bottleneck queue whatever the
    /// SAs do: congestion, not what these tests are about), and a 500-message/s sequenced
    /// stream each way. Returns the checker's reports (a->b, b->a).
    pub fn checked_streams(
        &mut self,
        a: (&str, &str),
        b: (&str, &str),
        secs: u32,
        load_mbps: u32,
    ) -> (serde_json::Value, serde_json::Value) {
        let ((na, ia), (nb, ib)) = (a, b);
        self.spawn(nb, "iperf3-s", &format!("iperf3 -s -B {ib}"));
        std::thread::sleep(Duration::from_millis(500));
        self.spawn(
            na,
            "iperf3-c",
            &format!(
                "iperf3 -c {ib} -B {ia} -t {secs} -P 2 -b {}M",
                load_mbps / 2
            ),
        );
        self.spawn(
            nb,
            "recv-ab",
            &format!("python3 {CHECKER} recv {ib} 7001 5"),
        );
        self.spawn(
            na,
            "recv-ba",
            &format!("python3 {CHECKER} recv {ia} 7002 5"),
        );
        std::thread::sleep(Duration::from_millis(300));
        self.spawn(
            na,
            "send-ab",
            &format!("python3 {CHECKER} send {ia} {ib} 7001 500 {secs}"),
        );
        self.spawn(
            nb,
            "send-ba",
            &format!("python3 {CHECKER} send {ib} {ia} 7002 500 {secs}"),
        );
        let report = |tag: &str| -> serde_json::Value {
            let done = wait_for(Duration::from_secs(u64::from(secs) + 30), || {
                let log = self.log(tag);
                log.lines().find(|l| l.starts_with('{')).map(str::to_string)
            });
            let line = done.unwrap_or_else(|| panic!("{tag}: no report: {}", self.log(tag)));
            serde_json::from_str(&line).unwrap()
        };
        (report("recv-ab"), report("recv-ba"))
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for (_, c) in &mut self.children {
            let _ = sh(&format!("kill -TERM {} 2>/dev/null", c.id()));
        }
        for (_, c) in &mut self.children {
            let _ = wait_for(Duration::from_secs(3), || c.try_wait().ok().flatten());
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in &self.namespaces {
            // Anything still running in the namespace (iperf3, charon) goes with it.
            let _ = sh(&format!(
                "ip netns pids {ns} 2>/dev/null | xargs -r kill -9"
            ));
            let _ = sh(&format!("ip netns del {ns} 2>/dev/null"));
        }
        if std::thread::panicking() {
            eprintln!("lab files kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A meshsec configuration for one node.
pub struct NodeCfg<'a> {
    pub name: &'a str,
    pub addr: &'a str,
    pub socket: &'a Path,
    /// Where the pair keys are (see [`pair_key`]).
    pub keys: &'a Path,
}

/// The pre-shared key of the pair `a`, `b` (one key per pair, as the daemon requires).
pub fn pair_psk(a: &str, b: &str) -> String {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    format!("{PSK}-{lo}-{hi}")
}

/// The key file of the pair `a`, `b` in `dir` (written, root-only, if missing).
pub fn pair_key(dir: &Path, a: &str, b: &str) -> PathBuf {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    let path = dir.join(format!("psk-{lo}-{hi}"));
    if !path.exists() {
        std::fs::write(&path, format!("{}\n", pair_psk(a, b))).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
    }
    path
}

/// One `[[peer]]`.
pub struct PeerCfg<'a> {
    pub name: &'a str,
    pub addr: &'a str,
    pub local_ts: &'a str,
    pub remote_ts: &'a str,
    pub start: &'a str,
    pub extra: &'a str,
}

pub fn config(node: &NodeCfg<'_>, peers: &[PeerCfg<'_>]) -> String {
    let mut s = format!(
        "[node]\nname = \"{}\"\nidentity = \"fqdn:{}.test\"\naddresses = [\"{}\"]\ncontrol_socket = \"{}\"\n",
        node.name,
        node.name,
        node.addr,
        node.socket.display()
    );
    for p in peers {
        s.push_str(&format!(
            "\n[[peer]]\nname = \"{}\"\naddress = \"{}\"\nidentity = \"fqdn:{}.test\"\npsk_file = \"{}\"\nlocal_ts = [\"{}\"]\nremote_ts = [\"{}\"]\nstart = \"{}\"\n{}\n",
            p.name,
            p.addr,
            p.name,
            pair_key(node.keys, node.name, p.name).display(),
            p.local_ts,
            p.remote_ts,
            p.start,
            p.extra
        ));
    }
    s
}
