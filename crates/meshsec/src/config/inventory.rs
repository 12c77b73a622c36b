//! The mesh inventory: one file, the same on every host, that lists the hosts and the policy
//! between them. Each daemon finds itself in it and derives its peers:
//!
//! - hosts of one `cluster` (default `"default"`) form a full mesh: everything between their
//!   addresses is protected;
//! - clusters are isolated from each other unless a `[[rule]]` joins hosts of them, for
//!   everything or for some protocols/ports only (`from` reaches `to` on `ports`);
//! - bypass traffic (by default SSH, tcp/22 either way, and ICMP/ICMPv6) is never encrypted;
//! - each pair's pre-shared key is derived from one mesh secret and the two identities.
//!
//! The derived peers are ordinary [`Peer`]s (transport mode unless the inventory's
//! `[defaults]` say otherwise), so everything else — reloads, status, liveness — treats them
//! like hand-written `[[peer]]` blocks.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use meshsec_crypto::Prf;
use meshsec_crypto::Secret;
use meshsec_wire::payload::{AddrSelector, Identity};
use meshsec_wire::registry::PrfId;
use toml::Spanned;

use super::raw::{RawHost, RawInventory, RawPeer, RawRule, S};
use super::validate::{self, Ctx};
use super::{ConfigError, Peer, keys};

/// The mesh secret must have at least this many octets (it stands behind every pair's key).
const MIN_SECRET_LEN: usize = 32;
/// The host whose name sorts second in a pair initiates only this long after its start,
/// unless the pair is up by then: a cold mesh negotiates each pair once, and a restarted
/// host still brings up every pair itself (telling the peer, INITIAL_CONTACT, to drop the
/// SAs of its previous life).
const SECOND_START_DELAY: std::time::Duration = std::time::Duration::from_secs(2);
/// The cluster of hosts that name none.
const DEFAULT_CLUSTER: &str = "default";
/// Bypassed unless `default_bypass = false`: SSH, so an operator is never locked out, and
/// ICMP, so that PMTU discovery and ping keep working when an SA is broken.
const DEFAULT_BYPASS: &[&str] = &["tcp/22", "icmp", "ipv6-icmp"];

/// Traffic by IP protocol and port range: `tcp/22`, `udp/5000-5100`, `tcp`, `icmp`, `47`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Service {
    /// IP protocol number.
    pub proto: u8,
    /// First port (0 with `last` 65535: every port, or a protocol without ports).
    pub first: u16,
    /// Last port.
    pub last: u16,
}

impl Service {
    /// Whether the service names ports (rather than the whole protocol).
    pub fn has_ports(&self) -> bool {
        (self.first, self.last) != (0, u16::MAX)
    }
}

impl std::fmt::Display for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = PROTOCOLS
            .iter()
            .find(|(_, n)| *n == self.proto)
            .map_or_else(|| self.proto.to_string(), |(s, _)| (*s).to_string());
        match (self.has_ports(), self.first == self.last) {
            (false, _) => write!(f, "{name}"),
            (true, true) => write!(f, "{name}/{}", self.first),
            (true, false) => write!(f, "{name}/{}-{}", self.first, self.last),
        }
    }
}

/// Protocol names accepted in `ports`/`bypass`.
const PROTOCOLS: &[(&str, u8)] = &[
    ("icmp", 1),
    ("tcp", 6),
    ("udp", 17),
    ("gre", 47),
    ("ipv6-icmp", 58),
    ("icmpv6", 58),
    ("sctp", 132),
];

/// An address prefix (for the firewall's sets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Prefix {
    /// Network address.
    pub addr: IpAddr,
    /// Prefix length.
    pub len: u8,
}

/// What the inventory says about the whole mesh, for the daemon's host protection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mesh {
    /// The inventory file.
    pub inventory: PathBuf,
    /// Hosts listed.
    pub hosts: usize,
    /// Our mesh peers' addresses (every address of every host we have a pair with).
    pub peers: Vec<IpAddr>,
    /// Never encrypted (either direction).
    pub bypass: Vec<Service>,
    /// Plaintext from and to these networks is dropped (except IKE, ESP and bypass); by
    /// default our peers' addresses.
    pub require: Vec<Prefix>,
    /// Whether the firewall rules stay when the daemon dies (default: they go with it).
    pub fail_closed: bool,
}

/// This host as the inventory lists it, and its peers.
pub(super) struct Derived {
    pub(super) mesh: Mesh,
    pub(super) name: String,
    pub(super) identity: Identity<'static>,
    pub(super) addresses: Vec<IpAddr>,
    pub(super) peers: Vec<Peer>,
}

/// One host, validated.
struct Host<'a> {
    name: &'a S,
    /// Its links' MTU, when the inventory says (paths to it are no larger).
    mtu: Option<u16>,
    identity: Identity<'static>,
    addresses: Vec<IpAddr>,
    cluster: String,
    groups: BTreeSet<String>,
    raw: &'a RawHost,
}

/// Which hosts a rule side names.
enum Members {
    All,
    Host(String),
    Group(String),
    Cluster(String),
}

impl Members {
    fn contains(&self, h: &Host<'_>) -> bool {
        match self {
            Members::All => true,
            Members::Host(n) => h.name.get_ref() == n,
            Members::Group(g) => h.groups.contains(g),
            Members::Cluster(c) => &h.cluster == c,
        }
    }
}

/// One rule, validated.
struct Rule {
    from: Members,
    to: Members,
    /// Empty: everything.
    services: Vec<Service>,
}

/// What a pair of hosts protects, seen from one of them.
#[derive(Default)]
struct Relation {
    /// Everything between the two.
    full: bool,
    /// We reach the peer's services.
    client: BTreeSet<Service>,
    /// The peer reaches ours.
    server: BTreeSet<Service>,
}

impl Relation {
    fn is_empty(&self) -> bool {
        !self.full && self.client.is_empty() && self.server.is_empty()
    }
}

/// Loads the inventory that `file` (a key of the configuration in `cfg`) names and derives
/// this host — the one called `name`, else the one owning one of `host_addresses` — and its
/// peers.
pub(super) fn load(
    cfg: &Ctx<'_>,
    file: &S,
    name: Option<&S>,
    host_addresses: &[IpAddr],
    warnings: &mut Vec<String>,
) -> Result<Derived, ConfigError> {
    let mut path = PathBuf::from(file.get_ref());
    if path.is_relative()
        && let Some(dir) = cfg.path.parent()
    {
        path = dir.join(path);
    }
    let text = std::fs::read_to_string(&path).map_err(|e| {
        cfg.at(
            file,
            "node.inventory",
            format!("cannot read {}: {e}", path.display()),
        )
    })?;
    // It says what is protected and what bypasses protection: only root may change it.
    for (what, p) in [
        ("", path.as_path()),
        (" directory", path.parent().unwrap_or(Path::new("."))),
    ] {
        let p = if p.as_os_str().is_empty() {
            Path::new(".")
        } else {
            p
        };
        if let Ok(m) = std::fs::metadata(p)
            && (m.uid() != 0 || m.mode() & 0o022 != 0)
        {
            return Err(cfg.at(
                file,
                "node.inventory",
                format!(
                    "the inventory{what} {} may be changed by others than root (owner uid {}, mode {:03o}): it decides what is protected; chown root and chmod go-w it",
                    p.display(),
                    m.uid(),
                    m.mode() & 0o777
                ),
            ));
        }
    }
    let ctx = Ctx {
        path: &path,
        text: &text,
        cache: cfg.cache,
    };
    let raw: RawInventory = validate::parse_toml(&ctx)?;
    let hosts = hosts(&ctx, &raw)?;
    let me = match name {
        Some(n) => hosts
            .iter()
            .position(|h| h.name.get_ref() == n.get_ref())
            .ok_or_else(|| {
                cfg.at(
                    n,
                    "node.name",
                    format!(
                        "host {:?} is not in the inventory {} ({} hosts; names are the keys of [hosts])",
                        n.get_ref(),
                        path.display(),
                        hosts.len()
                    ),
                )
            })?,
        None => find_by_address(cfg, file, &path, &hosts, host_addresses)?,
    };
    let Some(me_host) = hosts.get(me) else {
        return Err(cfg.at(file, "node.inventory", "no host"));
    };
    // The mesh secret derives each pair's PSK; with certificates on both sides it is not
    // needed (each pair then reports what it lacks, if anything).
    let secret = match &raw.mesh.secret_file {
        None => None,
        Some(f) => {
            let (secret, _) = keys::read_key_file(&ctx, f, "mesh.secret_file")?;
            if secret.len() < MIN_SECRET_LEN {
                return Err(ctx.at(
                    f,
                    "mesh.secret_file",
                    format!(
                        "the mesh secret has {} octets; at least {MIN_SECRET_LEN} are required (e.g. head -c 32 /dev/urandom | base64 > FILE)",
                        secret.len()
                    ),
                ));
            }
            Some(Secret::new(secret))
        }
    };
    let rules = raw
        .rule
        .iter()
        .enumerate()
        .map(|(i, r)| rule(&ctx, &hosts, r, i))
        .collect::<Result<Vec<_>, _>>()?;
    let mut peers = Vec::new();
    let mut members = Vec::new();
    for (i, other) in hosts.iter().enumerate() {
        if i == me {
            continue;
        }
        let rel = relation(me_host, other, &rules);
        if rel.is_empty() {
            continue;
        }
        let families = pair_families(me_host, other);
        if families.is_empty() {
            warnings.push(format!(
                "{}: hosts.{}: no address of a family {} has; no SA with it",
                path.display(),
                other.name.get_ref(),
                me_host.name.get_ref()
            ));
            continue;
        }
        members.extend(other.addresses.iter().copied());
        let psk = secret
            .as_ref()
            .map(|s| pair_key(s, &me_host.identity, &other.identity));
        for (n, v4) in families.into_iter().enumerate() {
            let Some(address) = other.addresses.iter().copied().find(|a| a.is_ipv4() == v4) else {
                continue;
            };
            // The first family's pair is named after the host; a second (dual-stack hosts in
            // transport mode need an SA per family) gets the family appended.
            let name = match (n, v4) {
                (0, _) => other.name.get_ref().clone(),
                (_, true) => format!("{}/v4", other.name.get_ref()),
                (_, false) => format!("{}/v6", other.name.get_ref()),
            };
            let raw_peer = synthetic_peer(&raw, me_host, other, &name, address);
            let mut peer = validate::peer(
                &ctx,
                &raw.defaults,
                &raw_peer,
                &me_host.identity,
                psk.clone(),
                warnings,
            )
            .map_err(|e| mesh_secret_hint(e, raw.mesh.secret_file.is_none()))?;
            let (local_ts, remote_ts) = selectors(me_host, other, &rel, v4);
            peer.local_ts = local_ts;
            peer.remote_ts = remote_ts;
            peer.path_mtu = match (me_host.mtu, other.mtu) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            if me_host.name.get_ref() > other.name.get_ref() {
                peer.start_delay = SECOND_START_DELAY;
            }
            peers.push(peer);
        }
    }
    let mesh = Mesh {
        inventory: path.clone(),
        hosts: hosts.len(),
        peers: {
            let mut p = members.clone();
            p.sort();
            p.dedup();
            p
        },
        bypass: bypass(&ctx, &raw)?,
        require: require(&ctx, &raw, &members)?,
        fail_closed: raw.mesh.fail_closed.as_ref().is_some_and(|b| *b.get_ref()),
    };
    Ok(Derived {
        mesh,
        name: me_host.name.get_ref().clone(),
        identity: me_host.identity.clone(),
        addresses: me_host.addresses.clone(),
        peers,
    })
}

/// The hosts, validated: addresses parse and belong to one host each, identities parse and
/// are unique.
fn hosts<'a>(ctx: &Ctx<'_>, raw: &'a RawInventory) -> Result<Vec<Host<'a>>, ConfigError> {
    let mut owner: HashMap<IpAddr, &str> = HashMap::new();
    let mut identities: HashMap<String, &str> = HashMap::new();
    let mut out = Vec::new();
    for (name, h) in raw.hosts.get_ref() {
        let key = |k: &str| format!("hosts.{}.{k}", name.get_ref());
        let n = name.get_ref();
        if n.is_empty()
            || !n
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(ctx.at(
                name,
                &format!("hosts.{n}"),
                "a host name is letters, digits, '-', '_' or '.'",
            ));
        }
        let mut addresses = Vec::new();
        for a in h.addresses.get_ref() {
            let ip = a.get_ref().parse::<IpAddr>().map_err(|_| {
                ctx.at(
                    a,
                    &key("addresses"),
                    format!("{:?} is not an IP address", a.get_ref()),
                )
            })?;
            if let Some(other) = owner.insert(ip, n) {
                return Err(ctx.at(
                    a,
                    &key("addresses"),
                    format!("{ip} is also listed for host {other}"),
                ));
            }
            addresses.push(ip);
        }
        if addresses.is_empty() {
            return Err(ctx.err(
                h.addresses.span(),
                &key("addresses"),
                "needs at least one address",
            ));
        }
        let identity = match &h.identity {
            Some(s) => validate::identity(ctx, s, &key("identity"))?,
            None => Identity::Fqdn(std::borrow::Cow::Owned(n.as_bytes().to_vec())),
        };
        if let Some(other) = identities.insert(identity.to_string(), n) {
            return Err(ctx.at(
                h.identity.as_ref().unwrap_or(name),
                &key("identity"),
                format!("{identity} is also the identity of host {other}"),
            ));
        }
        let mtu = match &h.mtu {
            None => None,
            Some(m) => Some(
                u16::try_from(*m.get_ref())
                    .ok()
                    .filter(|v| (1280..=9216).contains(v))
                    .ok_or_else(|| {
                        ctx.err(
                            m.span(),
                            &key("mtu"),
                            "the MTU of the host's links, 1280-9216 (IPv6 needs 1280)",
                        )
                    })?,
            ),
        };
        out.push(Host {
            name,
            mtu,
            identity,
            addresses,
            cluster: h
                .cluster
                .as_ref()
                .map_or(DEFAULT_CLUSTER.to_string(), |c| c.get_ref().clone()),
            groups: h
                .groups
                .iter()
                .flatten()
                .map(|g| g.get_ref().clone())
                .collect(),
            raw: h,
        });
    }
    if out.is_empty() {
        return Err(ctx.err(raw.hosts.span(), "hosts", "lists no host"));
    }
    Ok(out)
}

/// The one host that owns one of this machine's addresses.
fn find_by_address(
    cfg: &Ctx<'_>,
    file: &S,
    path: &std::path::Path,
    hosts: &[Host<'_>],
    host_addresses: &[IpAddr],
) -> Result<usize, ConfigError> {
    let mine: Vec<usize> = hosts
        .iter()
        .enumerate()
        .filter(|(_, h)| h.addresses.iter().any(|a| host_addresses.contains(a)))
        .map(|(i, _)| i)
        .collect();
    match mine.as_slice() {
        [one] => Ok(*one),
        [] => Err(cfg.at(
            file,
            "node.inventory",
            format!(
                "no host of {} has an address of this machine; set [node] name to the host's name",
                path.display()
            ),
        )),
        several => Err(cfg.at(
            file,
            "node.inventory",
            format!(
                "this machine has addresses of {} hosts of {} ({}); set [node] name",
                several.len(),
                path.display(),
                several
                    .iter()
                    .filter_map(|i| hosts.get(*i).map(|h| h.name.get_ref().as_str()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

/// `all`, `host:NAME`, `group:NAME` or `cluster:NAME`; a host, group or cluster that no host
/// has is an error (a typo would silently protect nothing).
fn members(ctx: &Ctx<'_>, hosts: &[Host<'_>], s: &S, key: &str) -> Result<Members, ConfigError> {
    let m = match s.get_ref().split_once(':') {
        None if s.get_ref() == "all" => return Ok(Members::All),
        Some(("host", n)) => Members::Host(n.to_string()),
        Some(("group", g)) => Members::Group(g.to_string()),
        Some(("cluster", c)) => Members::Cluster(c.to_string()),
        _ => {
            return Err(ctx.at(
                s,
                key,
                format!(
                    "{:?}: use \"all\", \"host:NAME\", \"group:NAME\" or \"cluster:NAME\"",
                    s.get_ref()
                ),
            ));
        }
    };
    if hosts.iter().any(|h| m.contains(h)) {
        Ok(m)
    } else {
        Err(ctx.at(
            s,
            key,
            format!("{:?} names no host of the inventory", s.get_ref()),
        ))
    }
}

fn rule(ctx: &Ctx<'_>, hosts: &[Host<'_>], r: &RawRule, i: usize) -> Result<Rule, ConfigError> {
    let key = |k: &str| format!("rule[{}].{k}", i + 1);
    let services = match &r.ports {
        None => Vec::new(),
        Some(list) if list.get_ref().is_empty() => {
            return Err(ctx.err(
                list.span(),
                &key("ports"),
                "lists nothing; leave it out for everything",
            ));
        }
        Some(list) => list
            .get_ref()
            .iter()
            .map(|s| service(ctx, s, &key("ports")))
            .collect::<Result<_, _>>()?,
    };
    Ok(Rule {
        from: members(ctx, hosts, &r.from, &key("from"))?,
        to: members(ctx, hosts, &r.to, &key("to"))?,
        services,
    })
}

/// `tcp/22`, `udp/5000-5100`, `tcp`, `icmp`, or a protocol number.
pub(super) fn service(ctx: &Ctx<'_>, s: &S, key: &str) -> Result<Service, ConfigError> {
    let bad = || {
        ctx.at(
            s,
            key,
            format!(
                "{:?}: use PROTOCOL[/PORT[-PORT]], e.g. \"tcp/22\", \"udp/5000-5100\", \"icmp\" (protocols: tcp, udp, sctp, icmp, ipv6-icmp, gre or a number)",
                s.get_ref()
            ),
        )
    };
    let (proto, ports) = match s.get_ref().split_once('/') {
        Some((p, ports)) => (p, Some(ports)),
        None => (s.get_ref().as_str(), None),
    };
    let proto = PROTOCOLS
        .iter()
        .find(|(n, _)| *n == proto)
        .map(|(_, v)| *v)
        .or_else(|| proto.parse::<u8>().ok().filter(|p| *p != 0))
        .ok_or_else(bad)?;
    let (first, last) = match ports {
        None => (0, u16::MAX),
        Some(_) if !matches!(proto, 6 | 17 | 132) => {
            return Err(ctx.at(
                s,
                key,
                format!("{:?}: only tcp, udp and sctp have ports", s.get_ref()),
            ));
        }
        Some(p) => {
            let (a, b) = p.split_once('-').unwrap_or((p, p));
            let (a, b) = (
                a.parse::<u16>().map_err(|_| bad())?,
                b.parse::<u16>().map_err(|_| bad())?,
            );
            if a == 0 || a > b {
                return Err(bad());
            }
            (a, b)
        }
    };
    Ok(Service { proto, first, last })
}

/// What `me` and `other` protect between them.
fn relation(me: &Host<'_>, other: &Host<'_>, rules: &[Rule]) -> Relation {
    let mut rel = Relation {
        full: me.cluster == other.cluster,
        ..Relation::default()
    };
    for r in rules {
        let out = r.from.contains(me) && r.to.contains(other);
        let back = r.from.contains(other) && r.to.contains(me);
        if r.services.is_empty() {
            rel.full |= out || back;
            continue;
        }
        if out {
            rel.client.extend(r.services.iter().copied());
        }
        if back {
            rel.server.extend(r.services.iter().copied());
        }
    }
    rel
}

/// The address families (`true`: IPv4) both hosts have, in the order of the peer's
/// addresses: one SA each (transport mode protects packets between the SA's own addresses).
fn pair_families(me: &Host<'_>, other: &Host<'_>) -> Vec<bool> {
    let mut out = Vec::new();
    for a in &other.addresses {
        let v4 = a.is_ipv4();
        if !out.contains(&v4) && me.addresses.iter().any(|m| m.is_ipv4() == v4) {
            out.push(v4);
        }
    }
    out
}

/// The traffic selectors of a pair: all traffic between the two hosts' addresses, or only
/// the services of the rules between them (as a client on our side: any source port to the
/// peer's service port; as a server: our service port to any port of the peer).
///
/// IKEv2 negotiates TSi and TSr as lists whose every combination the SA covers (RFC 7296
/// §2.9), so a pair with rules in both directions protects the union; that is wider than
/// either rule, never narrower. The data plane's policies are exact.
fn selectors(
    me: &Host<'_>,
    other: &Host<'_>,
    rel: &Relation,
    v4: bool,
) -> (Vec<AddrSelector>, Vec<AddrSelector>) {
    let host = |a: &IpAddr, s: Option<(u8, u16, u16)>| {
        let mut ts = AddrSelector::range(*a, *a);
        if let Some((proto, first, last)) = s {
            ts.ip_protocol = proto;
            ts.start_port = first;
            ts.end_port = last;
        }
        ts
    };
    let family = |list: &[IpAddr]| -> Vec<IpAddr> {
        list.iter().copied().filter(|a| a.is_ipv4() == v4).collect()
    };
    let mine = family(&me.addresses);
    let theirs = family(&other.addresses);
    if rel.full {
        return (
            mine.iter().map(|a| host(a, None)).collect(),
            theirs.iter().map(|a| host(a, None)).collect(),
        );
    }
    let mut local = Vec::new();
    let mut remote = Vec::new();
    for s in &rel.client {
        let any = (s.proto, 0, u16::MAX);
        let svc = (s.proto, s.first, s.last);
        local.extend(mine.iter().map(|a| host(a, Some(any))));
        remote.extend(theirs.iter().map(|a| host(a, Some(svc))));
    }
    for s in &rel.server {
        let any = (s.proto, 0, u16::MAX);
        let svc = (s.proto, s.first, s.last);
        local.extend(mine.iter().map(|a| host(a, Some(svc))));
        remote.extend(theirs.iter().map(|a| host(a, Some(any))));
    }
    local.sort_by_key(|t| (t.start, t.end, t.ip_protocol, t.start_port, t.end_port));
    local.dedup();
    remote.sort_by_key(|t| (t.start, t.end, t.ip_protocol, t.start_port, t.end_port));
    remote.dedup();
    (local, remote)
}

/// A pair without a key in a mesh without a secret: say where the key would come from.
fn mesh_secret_hint(mut e: ConfigError, no_secret: bool) -> ConfigError {
    if no_secret && e.key.ends_with(".psk_file") {
        e.key = "mesh.secret_file".into();
        e.message = "the mesh uses pre-shared keys (auth = \"psk\", the default) but [mesh] has \
                     no secret_file: set one, or auth = \"cert\" with cert_file, key_file and \
                     ca_files in the inventory's [defaults]"
            .into();
    }
    e
}

/// The pre-shared key of one pair: HMAC-SHA-256 keyed with the mesh secret over a label and
/// the two identities in a fixed order, so both hosts derive the same key and every pair has
/// its own. (Whoever holds the mesh secret can derive every pair's key: certificates remove
/// that.)
fn pair_key(secret: &Secret, a: &Identity<'_>, b: &Identity<'_>) -> Secret {
    let (a, b) = (a.to_string(), b.to_string());
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    match Prf::from_id(PrfId::HMAC_SHA2_256) {
        Ok(prf) => prf.compute(
            secret.expose(),
            &[
                b"meshsec mesh pair key v1\0",
                lo.as_bytes(),
                b"\0",
                hi.as_bytes(),
            ],
        ),
        // HMAC-SHA-256 is always available; an empty key would fail every handshake loudly.
        Err(_) => Secret::new(Vec::new()),
    }
}

/// A `[[peer]]` block for `other` as if written by hand (its places point at the host's
/// line of the inventory), settings from the inventory's `[defaults]`: transport mode and
/// `start = "always"` unless `[defaults]` say otherwise.
fn synthetic_peer(
    raw: &RawInventory,
    me: &Host<'_>,
    other: &Host<'_>,
    name: &str,
    address: IpAddr,
) -> RawPeer {
    let span = other.name.span();
    let s = |v: String| Spanned::new(span.clone(), v);
    let list =
        |v: &[IpAddr]| Spanned::new(span.clone(), v.iter().map(|a| s(a.to_string())).collect());
    let d = &raw.defaults;
    // Our certificate and key: the same inventory line on every host, `{name}` standing for
    // the host's own name (what `meshsec pki issue NAME --out DIR` writes: DIR/NAME.pem).
    let own = |f: &Option<S>| {
        f.as_ref()
            .map(|f| Spanned::new(f.span(), f.get_ref().replace("{name}", me.name.get_ref())))
    };
    RawPeer {
        name: s(name.to_string()),
        address: s(address.to_string()),
        identity: other
            .raw
            .identity
            .clone()
            .unwrap_or_else(|| s(format!("fqdn:{}", other.name.get_ref()))),
        psk_file: None,
        local_ts: list(&me.addresses),
        remote_ts: list(&other.addresses),
        ike_proposals: None,
        esp_proposals: None,
        mode: d.mode.is_none().then(|| s("transport".into())),
        start: d.start.is_none().then(|| s("always".into())),
        ike_lifetime: None,
        child_lifetime: None,
        reauth_lifetime: None,
        dpd_delay: None,
        dpd_timeout: None,
        dpd_action: None,
        tunnel_check: None,
        child_lifetime_bytes: None,
        child_lifetime_packets: None,
        allow_weak_psk: None,
        allow_weak_crypto: None,
        allow_shared_psk: None,
        accept_from: None,
        auth: None,
        peer_auth: None,
        cert_file: own(&d.cert_file),
        key_file: own(&d.key_file),
        ca_files: None,
        crl_files: None,
        accept_psk_file: None,
    }
}

/// The bypass services: the defaults (unless `default_bypass = false`) and `bypass`.
fn bypass(ctx: &Ctx<'_>, raw: &RawInventory) -> Result<Vec<Service>, ConfigError> {
    let mut out = BTreeSet::new();
    if raw
        .mesh
        .default_bypass
        .as_ref()
        .is_none_or(|b| *b.get_ref())
    {
        for d in DEFAULT_BYPASS {
            let s = Spanned::new(0..0, (*d).to_string());
            out.insert(service(ctx, &s, "mesh.bypass")?);
        }
    }
    for s in raw.mesh.bypass.iter().flat_map(|l| l.get_ref()) {
        out.insert(service(ctx, s, "mesh.bypass")?);
    }
    Ok(out.into_iter().collect())
}

/// The networks whose plaintext is dropped: `require` (prefixes), else our peers' addresses.
fn require(
    ctx: &Ctx<'_>,
    raw: &RawInventory,
    members: &[IpAddr],
) -> Result<Vec<Prefix>, ConfigError> {
    let Some(list) = &raw.mesh.require else {
        let mut v: Vec<Prefix> = members
            .iter()
            .map(|a| Prefix {
                addr: *a,
                len: if a.is_ipv4() { 32 } else { 128 },
            })
            .collect();
        v.sort();
        v.dedup();
        return Ok(v);
    };
    list.get_ref()
        .iter()
        .map(|s| {
            prefix(s.get_ref()).ok_or_else(|| {
                ctx.at(
                    s,
                    "mesh.require",
                    format!(
                        "{:?} is not a network: use a prefix (\"192.0.2.0/24\", \"2001:db8::/64\") or an address",
                        s.get_ref()
                    ),
                )
            })
        })
        .collect()
}

/// `192.0.2.0/24` (host bits must be zero), `2001:db8::/64` or an address.
fn prefix(s: &str) -> Option<Prefix> {
    let net = s
        .parse::<ipnet::IpNet>()
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok().map(ipnet::IpNet::from))?;
    (net.trunc() == net).then(|| Prefix {
        addr: net.addr(),
        len: net.prefix_len(),
    })
}
