//! Gives the raw strings their meaning and reports each problem at its line.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use meshsec_crypto::Secret;
use meshsec_ike::ChildMode;
use meshsec_ike::proposal::ProposalSpec;
use meshsec_wire::payload::{AddrSelector, Identity};
use meshsec_wire::registry::{EncrId, IntegId, KeMethod, PrfId, ProtocolId};
use toml::Spanned;

use super::inventory::{self, Derived};
use super::keys;
use super::raw::{RawConfig, RawPeer, RawPeerSettings, S};
use super::{Config, ConfigError, DpdAction, EspEncap, Node, Peer, Start};

/// IKE proposals when none are configured: AEAD with X25519 or P-256.
const DEFAULT_IKE: &[&str] = &[
    "aes256gcm16-prfsha256-x25519-ecp256",
    "chacha20poly1305-prfsha256-x25519-ecp256",
];
/// ESP proposals when none are configured.
const DEFAULT_ESP: &[&str] = &["aes256gcm16", "chacha20poly1305"];
const DEFAULT_IKE_LIFETIME: Duration = Duration::from_secs(4 * 3600);
const DEFAULT_CHILD_LIFETIME: Duration = Duration::from_secs(3600);
const MIN_LIFETIME_SECS: u64 = 5;
/// DPD: a liveness check after this long without anything from the peer.
const DEFAULT_DPD_DELAY: Duration = Duration::from_secs(30);
/// Through-tunnel check: ESP out, none back for this long (and IKE answering) → recreate.
const DEFAULT_TUNNEL_CHECK: Duration = Duration::from_secs(30);
/// DPD: the peer is dead when the check is not answered within this.
const DEFAULT_DPD_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_TUN: &str = "meshsec0";
/// TUN MTU: 1500 minus the largest ESP-in-UDP overhead we add (IPv6 40 + UDP 8 + ESP 8 +
/// IV 16 + padding up to 17 + ICV 16), rounded down.
const DEFAULT_MTU: u16 = 1400;
const DEFAULT_CONTROL_SOCKET: &str = "/run/meshsec/control.sock";
/// NAT mappings for UDP often expire after 30 s of silence; 20 s keeps them (RFC 3948 §4).
const DEFAULT_NAT_KEEPALIVE: Duration = Duration::from_secs(20);
const IKE_PORT: u16 = 500;

/// Locates errors in one file.
pub(super) struct Ctx<'a> {
    pub(super) path: &'a Path,
    pub(super) text: &'a str,
    /// Credentials read so far in this load (shared with the inventory's context).
    pub(super) cache: &'a super::credentials::Cache,
}

impl Ctx<'_> {
    pub(super) fn line(&self, offset: usize) -> usize {
        self.text
            .get(..offset)
            .map_or(0, |t| t.matches('\n').count())
            + 1
    }

    pub(super) fn err(
        &self,
        span: core::ops::Range<usize>,
        key: &str,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError {
            path: self.path.to_path_buf(),
            line: Some(self.line(span.start)),
            key: key.to_string(),
            message: message.into(),
        }
    }

    pub(super) fn at(&self, s: &S, key: &str, message: impl Into<String>) -> ConfigError {
        self.err(s.span(), key, message)
    }
}

/// The key named on the line where a TOML syntax or type error was found.
fn key_on_line(text: &str, offset: usize) -> String {
    let start = text
        .get(..offset)
        .and_then(|t| t.rfind('\n'))
        .map_or(0, |i| i + 1);
    let line = text
        .get(start..)
        .and_then(|t| t.lines().next())
        .unwrap_or_default();
    let key = line.split('=').next().unwrap_or_default().trim();
    if key.is_empty() {
        "(syntax)".into()
    } else {
        key.trim_matches(['[', ']']).to_string()
    }
}

/// Deserializes the file of `ctx`; a syntax or type error names its line and key.
pub(super) fn parse_toml<T: serde::de::DeserializeOwned>(ctx: &Ctx<'_>) -> Result<T, ConfigError> {
    toml::from_str(ctx.text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        ConfigError {
            path: ctx.path.to_path_buf(),
            line: e.span().map(|s| ctx.line(s.start)),
            key: key_on_line(ctx.text, span.start),
            message: e.message().to_string(),
        }
    })
}

pub(super) fn validate(
    path: &Path,
    text: &str,
    host_addresses: &[IpAddr],
) -> Result<Config, ConfigError> {
    let cache = super::credentials::Cache::default();
    let ctx = Ctx {
        path,
        text,
        cache: &cache,
    };
    let raw: RawConfig = parse_toml(&ctx)?;
    let mut warnings = Vec::new();
    let derived = match &raw.node.inventory {
        Some(file) => Some(inventory::load(
            &ctx,
            file,
            raw.node.name.as_ref(),
            host_addresses,
            &mut warnings,
        )?),
        None => None,
    };
    let node = node(&ctx, &raw, derived.as_ref())?;
    let mut names = HashSet::new();
    let mut keys: HashMap<[u8; 32], (String, bool)> = HashMap::new();
    let mut peers = Vec::new();
    for p in &raw.peer {
        let key = |k: &str| format!("peer.{}.{k}", p.name.get_ref());
        if !names.insert(p.name.get_ref().clone()) {
            return Err(ctx.at(
                &p.name,
                &key("name"),
                "a second peer with this name (names must be unique)",
            ));
        }
        let allow_weak_psk =
            setting!(raw.defaults, p, allow_weak_psk).is_some_and(|b| *b.get_ref());
        let psk = match &p.psk_file {
            Some(f) => Some(keys::psk(
                &ctx,
                f,
                &key("psk_file"),
                allow_weak_psk,
                &mut warnings,
            )?),
            None => None,
        };
        let parsed = peer(&ctx, &raw.defaults, p, &node.identity, psk, &mut warnings)?;
        // One key per peer: a key shared by peers lets each of them pose as the others (the
        // address binding is all that is left), and one leak exposes them all. A key accepted
        // for rotation counts too.
        let allow_shared =
            setting!(raw.defaults, p, allow_shared_psk).is_some_and(|b| *b.get_ref());
        let also = match &parsed.peer_auth {
            meshsec_ike::PeerAuth::Psk { also } => also.as_slice(),
            meshsec_ike::PeerAuth::Certificate(_) => &[],
        };
        let ours = [
            (p.psk_file.as_ref(), "psk_file", Some(&parsed.psk)),
            (p.accept_psk_file.as_ref(), "accept_psk_file", also.first()),
        ];
        let mut seen_here = HashSet::new();
        for (file, which, secret) in ours {
            let (Some(file), Some(secret)) = (file, secret.filter(|k| !k.is_empty())) else {
                continue;
            };
            let print = meshsec_crypto::digest::fingerprint(secret.expose());
            if !seen_here.insert(print) {
                continue;
            }
            match keys.get(&print) {
                Some((other, other_allows)) if !(allow_shared && *other_allows) => {
                    return Err(ctx.at(
                        file,
                        &key(which),
                        format!(
                            "the same pre-shared key as peer {other}: each peer needs its own key \
                             (with a shared key, either peer could pose as the other), or set \
                             allow_shared_psk = true on both"
                        ),
                    ));
                }
                Some(_) => {}
                None => {
                    keys.insert(print, (p.name.get_ref().clone(), allow_shared));
                }
            }
        }
        peers.push(parsed);
    }
    let derived_peers = derived.as_ref().map_or(&[][..], |d| d.peers.as_slice());
    super::conflicts::check(
        &ctx,
        &node,
        &raw.peer,
        &peers,
        derived_peers,
        host_addresses,
    )?;
    let mesh = match derived {
        None => None,
        Some(d) => {
            for p in d.peers {
                if let Some(clash) = raw.peer.iter().find(|q| q.name.get_ref() == &p.name) {
                    return Err(ctx.at(
                        &clash.name,
                        &format!("peer.{}.name", p.name),
                        format!(
                            "{} is also a host of the inventory {}; rename the peer",
                            p.name,
                            d.mesh.inventory.display()
                        ),
                    ));
                }
                peers.push(p);
            }
            Some(d.mesh)
        }
    };
    Ok(Config {
        path: path.to_path_buf(),
        node,
        peers,
        mesh,
        warnings,
    })
}

fn node(ctx: &Ctx<'_>, raw: &RawConfig, mesh: Option<&Derived>) -> Result<Node, ConfigError> {
    let n = &raw.node;
    // Where a missing key belongs: the [node] line.
    let table = ctx.text.find("[node]").unwrap_or(0);
    let missing = |key: &str, what: &str| ctx.err(table..table, key, what.to_string());
    let name = match (&n.name, mesh) {
        (Some(s), _) if s.get_ref().trim().is_empty() => {
            return Err(ctx.at(s, "node.name", "must not be empty"));
        }
        (Some(s), _) => s.get_ref().clone(),
        (None, Some(m)) => m.name.clone(),
        (None, None) => return Err(missing("node.name", "missing: this host's name")),
    };
    let identity = match (&n.identity, mesh) {
        (Some(s), None) => identity(ctx, s, "node.identity")?,
        (Some(s), Some(m)) => {
            let id = identity(ctx, s, "node.identity")?;
            if id != m.identity {
                return Err(ctx.at(
                    s,
                    "node.identity",
                    format!(
                        "the inventory gives this host the identity {}; leave node.identity out (or make them the same)",
                        m.identity
                    ),
                ));
            }
            id
        }
        (None, Some(m)) => m.identity.clone(),
        (None, None) => {
            return Err(missing(
                "node.identity",
                "missing: our IKE identity (e.g. \"fqdn:gw1.example\")",
            ));
        }
    };
    let addresses = match (&n.addresses, mesh) {
        (Some(list), _) => {
            let addresses = list
                .get_ref()
                .iter()
                .map(|a| {
                    a.get_ref().parse::<IpAddr>().map_err(|_| {
                        ctx.at(
                            a,
                            "node.addresses",
                            format!(
                                "{:?} is not an IP address (e.g. \"192.0.2.1\" or \"2001:db8::1\")",
                                a.get_ref()
                            ),
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            if addresses.is_empty() {
                return Err(ctx.err(list.span(), "node.addresses", "needs at least one address"));
            }
            addresses
        }
        (None, Some(m)) => m.addresses.clone(),
        (None, None) => {
            return Err(missing(
                "node.addresses",
                "missing: the addresses IKE listens on",
            ));
        }
    };
    let tun = match &n.tun {
        None => DEFAULT_TUN.to_string(),
        Some(t) => {
            let ok = !t.get_ref().is_empty()
                && t.get_ref().len() < 16
                && t.get_ref()
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !ok {
                return Err(ctx.at(
                    t,
                    "node.tun",
                    "an interface name of 1-15 letters, digits, '-' or '_'",
                ));
            }
            // The daemon creates the TUN device itself: a name taken by another kind of
            // interface (eth0, a bridge) fails at start. A TUN device of that name is fine
            // here (ours, when checking before a reload); another program's is found then.
            let sys = Path::new("/sys/class/net").join(t.get_ref());
            if sys.exists() && !sys.join("tun_flags").exists() {
                return Err(ctx.at(
                    t,
                    "node.tun",
                    format!(
                        "{:?} is an existing interface of this host, not a TUN device; meshsec creates its own TUN device: pick an unused name (default \"{DEFAULT_TUN}\")",
                        t.get_ref()
                    ),
                ));
            }
            t.get_ref().clone()
        }
    };
    let mtu = match &n.mtu {
        None => DEFAULT_MTU,
        Some(m) => u16::try_from(*m.get_ref())
            .ok()
            .filter(|v| (1280..=9000).contains(v))
            .ok_or_else(|| {
                ctx.err(
                    m.span(),
                    "node.mtu",
                    "the TUN MTU in octets, 1280-9000 (default 1400)",
                )
            })?,
    };
    let control_socket = match &n.control_socket {
        None => PathBuf::from(DEFAULT_CONTROL_SOCKET),
        Some(c) if c.get_ref().starts_with('/') => PathBuf::from(c.get_ref()),
        Some(c) => {
            return Err(ctx.at(
                c,
                "node.control_socket",
                "an absolute path for the control socket (default /run/meshsec/control.sock)",
            ));
        }
    };
    let nat_keepalive = duration(
        ctx,
        n.nat_keepalive.as_ref(),
        DEFAULT_NAT_KEEPALIVE,
        "node.nat_keepalive",
        1,
    )?;
    let esp_encap = choice(
        ctx,
        n.esp_encap.as_ref(),
        "node.esp_encap",
        &[("udp", EspEncap::Udp), ("auto", EspEncap::Auto)],
    )?;
    Ok(Node {
        name,
        identity,
        addresses,
        tun,
        mtu,
        control_socket,
        nat_keepalive,
        esp_encap,
    })
}

/// `fqdn:host.example`, `email:ops@example`, `keyid:0a1b..`, or a bare IPv4/IPv6 address.
pub(super) fn identity(ctx: &Ctx<'_>, s: &S, key: &str) -> Result<Identity<'static>, ConfigError> {
    let v = s.get_ref();
    let bytes = |x: &str| Cow::Owned(x.as_bytes().to_vec());
    if let Ok(ip) = v.parse::<IpAddr>() {
        return Ok(match ip {
            IpAddr::V4(a) => Identity::Ipv4(a),
            IpAddr::V6(a) => Identity::Ipv6(a),
        });
    }
    match v.split_once(':') {
        Some(("fqdn", name)) if !name.is_empty() => Ok(Identity::Fqdn(bytes(name))),
        Some(("email", addr)) if addr.contains('@') => Ok(Identity::Rfc822(bytes(addr))),
        Some(("keyid", hex)) if !hex.is_empty() && hex.len() % 2 == 0 => {
            let decoded: Option<Vec<u8>> = (0..hex.len())
                .step_by(2)
                .map(|i| hex.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
                .collect();
            decoded
                .map(|d| Identity::KeyId(Cow::Owned(d)))
                .ok_or_else(|| ctx.at(s, key, "keyid: must be hex octets"))
        }
        _ => Err(ctx.at(
            s,
            key,
            format!("{v:?} is not an identity: use fqdn:NAME, email:USER@DOMAIN, keyid:HEX or an IP address"),
        )),
    }
}

/// One peer: its own settings, else `defaults`; `psk` already read (or derived) if there is
/// one; `local_id` is our identity.
pub(super) fn peer(
    ctx: &Ctx<'_>,
    defaults: &RawPeerSettings,
    p: &RawPeer,
    local_id: &Identity<'_>,
    psk: Option<Secret>,
    warnings: &mut Vec<String>,
) -> Result<Peer, ConfigError> {
    let key = |k: &str| format!("peer.{}.{k}", p.name.get_ref());
    let auth = super::credentials::resolve(ctx, defaults, p, local_id, warnings)?;
    let psk = match (psk, auth.needs_psk) {
        (Some(k), _) => k,
        (None, false) => Secret::default(),
        (None, true) => {
            return Err(ctx.at(
                &p.name,
                &key("psk_file"),
                "a pre-shared key is needed (auth or peer_auth is \"psk\", the default): set \
                 psk_file, or auth = \"cert\" with cert_file, key_file and ca_files",
            ));
        }
    };
    let address = socket_addr(p.address.get_ref()).map_err(|problem| {
        ctx.at(
            &p.address,
            &key("address"),
            format!("{:?} {problem}", p.address.get_ref()),
        )
    })?;
    let identity = identity(ctx, &p.identity, &key("identity"))?;
    let accept_from = match setting!(defaults, p, accept_from) {
        None => Vec::new(),
        Some(list) if list.get_ref().iter().any(|s| s.get_ref() == "any") => vec![
            AddrSelector::range(Ipv4Addr::UNSPECIFIED.into(), Ipv4Addr::BROADCAST.into()),
            AddrSelector::range(
                Ipv6Addr::UNSPECIFIED.into(),
                Ipv6Addr::from(u128::MAX).into(),
            ),
        ],
        Some(list) => selectors(ctx, list, &key("accept_from"))?,
    };
    let local_ts = selectors(ctx, &p.local_ts, &key("local_ts"))?;
    let remote_ts = selectors(ctx, &p.remote_ts, &key("remote_ts"))?;
    let mode = choice(
        ctx,
        setting!(defaults, p, mode),
        &key("mode"),
        &[
            ("tunnel", ChildMode::Tunnel),
            ("transport", ChildMode::Transport),
        ],
    )?;
    let start = choice(
        ctx,
        setting!(defaults, p, start),
        &key("start"),
        &[
            ("always", Start::Always),
            ("on-demand", Start::OnDemand),
            ("passive", Start::Passive),
        ],
    )?;
    let dpd_action = choice(
        ctx,
        setting!(defaults, p, dpd_action),
        &key("dpd_action"),
        &[
            ("restart", DpdAction::Restart),
            ("clear", DpdAction::Clear),
            ("trap", DpdAction::Trap),
        ],
    )?;
    let dpd_delay = match setting!(defaults, p, dpd_delay) {
        Some(d) if d.get_ref() == "off" => None,
        d => Some(duration(ctx, d, DEFAULT_DPD_DELAY, &key("dpd_delay"), 1)?),
    };
    let tunnel_check = match setting!(defaults, p, tunnel_check) {
        Some(d) if d.get_ref() == "off" => None,
        d => Some(duration(
            ctx,
            d,
            DEFAULT_TUNNEL_CHECK,
            &key("tunnel_check"),
            1,
        )?),
    };
    let reauth_lifetime = match setting!(defaults, p, reauth_lifetime) {
        None => None,
        Some(d) if d.get_ref() == "off" => None,
        d => Some(duration(
            ctx,
            d,
            Duration::ZERO,
            &key("reauth_lifetime"),
            MIN_LIFETIME_SECS,
        )?),
    };
    let dpd_timeout = duration(
        ctx,
        setting!(defaults, p, dpd_timeout),
        DEFAULT_DPD_TIMEOUT,
        &key("dpd_timeout"),
        1,
    )?;
    let allow_weak = setting!(defaults, p, allow_weak_crypto).is_some_and(|b| *b.get_ref());
    let ike_proposals = proposals(
        ctx,
        setting!(defaults, p, ike_proposals),
        DEFAULT_IKE,
        ProtocolId::IKE,
        &key("ike_proposals"),
        allow_weak,
        warnings,
    )?;
    let esp_proposals = proposals(
        ctx,
        setting!(defaults, p, esp_proposals),
        DEFAULT_ESP,
        ProtocolId::ESP,
        &key("esp_proposals"),
        allow_weak,
        warnings,
    )?;
    let ike_lifetime = duration(
        ctx,
        setting!(defaults, p, ike_lifetime),
        DEFAULT_IKE_LIFETIME,
        &key("ike_lifetime"),
        MIN_LIFETIME_SECS,
    )?;
    let child_lifetime = duration(
        ctx,
        setting!(defaults, p, child_lifetime),
        DEFAULT_CHILD_LIFETIME,
        &key("child_lifetime"),
        MIN_LIFETIME_SECS,
    )?;
    Ok(Peer {
        name: p.name.get_ref().clone(),
        address,
        accept_from,
        identity,
        psk,
        local_auth: auth.local,
        peer_auth: auth.peer,
        local_ts,
        remote_ts,
        mode,
        start,
        start_delay: Duration::ZERO,
        path_mtu: None,
        ike_proposals,
        esp_proposals,
        ike_lifetime,
        child_lifetime,
        reauth_lifetime,
        dpd_delay,
        dpd_timeout,
        dpd_action,
        tunnel_check,
        child_lifetime_bytes: match setting!(defaults, p, child_lifetime_bytes) {
            None => None,
            Some(b) => Some(bytes(ctx, b, &key("child_lifetime_bytes"))?),
        },
        child_lifetime_packets: match setting!(defaults, p, child_lifetime_packets) {
            None => None,
            Some(n) => Some(
                u64::try_from(*n.get_ref())
                    .ok()
                    .filter(|v| *v >= 1000)
                    .ok_or_else(|| {
                        ctx.err(
                            n.span(),
                            &key("child_lifetime_packets"),
                            "a number of packets, at least 1000",
                        )
                    })?,
            ),
        },
    })
}

/// `500M`, `10G`, `1T`, `512MiB` (octets, read by `bytesize`: K/M/G/T are powers of 1000,
/// KiB/MiB/GiB/TiB of 1024), at least 1 MB.
fn bytes(ctx: &Ctx<'_>, s: &S, key: &str) -> Result<u64, ConfigError> {
    let v = s.get_ref().trim();
    v.parse::<bytesize::ByteSize>()
        .ok()
        .map(|b| b.as_u64())
        .filter(|b| *b >= 1_000_000)
        .ok_or_else(|| {
            ctx.at(
                s,
                key,
                format!("{v:?}: expected a volume of at least 1M like \"500M\", \"10G\" or \"1T\""),
            )
        })
}

/// One of the `options` (by name), or the first one when unset.
fn choice<T: Copy>(
    ctx: &Ctx<'_>,
    s: Option<&S>,
    key: &str,
    options: &[(&str, T)],
) -> Result<T, ConfigError> {
    let Some(s) = s else {
        return options
            .first()
            .map(|o| o.1)
            .ok_or_else(|| ctx.err(0..0, key, "no value"));
    };
    if let Some((_, v)) = options.iter().find(|(name, _)| name == s.get_ref()) {
        return Ok(*v);
    }
    let names: Vec<String> = options.iter().map(|(n, _)| format!("\"{n}\"")).collect();
    let expected = match names.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    };
    Err(ctx.at(s, key, format!("{:?}: expected {expected}", s.get_ref())))
}

/// `192.0.2.2`, `192.0.2.2:4500`, `2001:db8::2`, `[2001:db8::2]`, `[2001:db8::2]:4500`: an
/// IPv6 address takes a port only in brackets. An unbracketed IPv6 address whose last group
/// reads like an IKE port (`fd00::2:500`) is refused as ambiguous: it is a valid address, but
/// who writes it most likely meant a port.
fn socket_addr(s: &str) -> Result<SocketAddr, String> {
    const EXAMPLES: &str =
        "(e.g. \"192.0.2.2\", \"192.0.2.2:4500\", \"2001:db8::2\", \"[2001:db8::2]:4500\")";
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    let bare = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(s);
    match bare.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) if bare == s => match s.rsplit_once(':') {
            Some((addr, port @ ("500" | "4500"))) if addr.parse::<Ipv6Addr>().is_ok() => {
                Err(format!(
                    "is ambiguous: the IPv6 address {v6}, or {addr} port {port}? Write \"[{addr}]:{port}\" for a port or \"[{v6}]\" for the address"
                ))
            }
            _ => Ok(SocketAddr::new(IpAddr::V6(v6), IKE_PORT)),
        },
        Ok(ip) => Ok(SocketAddr::new(ip, IKE_PORT)),
        Err(_) => Err(format!("is not an address {EXAMPLES}")),
    }
}

/// `10.1.0.0/24`, `10.1.0.1`, `10.1.0.5-10.1.0.9`, or the IPv6 forms.
fn selector(s: &str) -> Option<AddrSelector> {
    if let Some((a, b)) = s.split_once('-') {
        let (a, b) = (
            a.trim().parse::<IpAddr>().ok()?,
            b.trim().parse::<IpAddr>().ok()?,
        );
        let ordered = match (a, b) {
            (IpAddr::V4(x), IpAddr::V4(y)) => x <= y,
            (IpAddr::V6(x), IpAddr::V6(y)) => x <= y,
            _ => false,
        };
        return ordered.then(|| AddrSelector::range(a, b));
    }
    let net = s
        .parse::<ipnet::IpNet>()
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok().map(ipnet::IpNet::from))?;
    Some(AddrSelector::range(net.network(), net.broadcast()))
}

fn selectors(
    ctx: &Ctx<'_>,
    list: &Spanned<Vec<S>>,
    key: &str,
) -> Result<Vec<AddrSelector>, ConfigError> {
    if list.get_ref().is_empty() {
        return Err(ctx.err(
            list.span(),
            key,
            "needs at least one selector (e.g. \"10.1.0.0/24\")",
        ));
    }
    list.get_ref()
        .iter()
        .map(|s| {
            selector(s.get_ref()).ok_or_else(|| {
                ctx.at(s, key, format!("{:?} is not a selector: use a prefix (\"10.1.0.0/24\"), an address or a range (\"10.1.0.5-10.1.0.9\")", s.get_ref()))
            })
        })
        .collect()
}

/// Why an algorithm is too weak to be used without `allow_weak_crypto`.
fn weakness(p: &ProposalSpec) -> Option<&'static str> {
    if p.encr.iter().any(|(e, _)| *e == EncrId::NULL) {
        return Some("NULL encryption");
    }
    if p.integ.contains(&IntegId::HMAC_SHA1_96) || p.prf.contains(&PrfId::HMAC_SHA1) {
        return Some("SHA-1");
    }
    if p.ke.iter().any(|k| {
        matches!(
            *k,
            KeMethod::MODP_768 | KeMethod::MODP_1024 | KeMethod::MODP_1536
        )
    }) {
        return Some("a MODP group below 2048 bits");
    }
    None
}

#[allow(clippy::too_many_arguments)]
fn proposals(
    ctx: &Ctx<'_>,
    list: Option<&Spanned<Vec<S>>>,
    defaults: &[&str],
    protocol: ProtocolId,
    key: &str,
    allow_weak: bool,
    warnings: &mut Vec<String>,
) -> Result<Vec<ProposalSpec>, ConfigError> {
    let Some(list) = list else {
        return Ok(defaults
            .iter()
            .filter_map(|d| ProposalSpec::parse(d, protocol).ok())
            .collect());
    };
    if list.get_ref().is_empty() {
        return Err(ctx.err(list.span(), key, "needs at least one proposal"));
    }
    let mut out = Vec::new();
    for s in list.get_ref() {
        let p =
            ProposalSpec::parse(s.get_ref(), protocol).map_err(|e| ctx.at(s, key, e.problem))?;
        if let Some(why) = weakness(&p) {
            if !allow_weak {
                return Err(ctx.at(
                    s,
                    key,
                    format!(
                        "{:?} uses {why}; refused unless allow_weak_crypto = true",
                        s.get_ref()
                    ),
                ));
            }
            warnings.push(format!(
                "{}: {key}: {:?} uses {why} (allowed by allow_weak_crypto)",
                ctx.path.display(),
                s.get_ref()
            ));
        }
        out.push(p);
    }
    Ok(out)
}

/// The longest duration any setting takes: lifetimes, intervals and timeouts beyond a year
/// are mistakes, and deadlines far in the future would overflow the clock's arithmetic.
const MAX_DURATION: Duration = Duration::from_secs(365 * 86400);

/// `90s`, `15m`, `4h`, `1d`, `1h 30m` (read by `humantime`), between `min_secs` and 365 days.
fn duration(
    ctx: &Ctx<'_>,
    s: Option<&S>,
    default: Duration,
    key: &str,
    min_secs: u64,
) -> Result<Duration, ConfigError> {
    let Some(s) = s else { return Ok(default) };
    let v = s.get_ref().trim();
    match humantime::parse_duration(v) {
        Ok(d) if d > MAX_DURATION => Err(ctx.at(
            s,
            key,
            format!("{v:?} is longer than a year; at most \"365d\""),
        )),
        Err(humantime::DurationError::NumberOverflow) => Err(ctx.at(
            s,
            key,
            format!("{v:?} is too large a number; at most \"365d\""),
        )),
        Ok(d) if d >= Duration::from_secs(min_secs) => Ok(d),
        _ => Err(ctx.at(
            s,
            key,
            format!(
                "{v:?}: expected a duration of at least {min_secs} s like \"90s\", \"15m\", \"4h\" or \"1d\""
            ),
        )),
    }
}
