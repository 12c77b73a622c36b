//! Gives the raw strings their meaning and reports each problem at its line.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use meshsec_crypto::Secret;
use meshsec_ike::ChildMode;
use meshsec_ike::proposal::ProposalSpec;
use meshsec_wire::payload::{AddrSelector, Identity};
use meshsec_wire::registry::{EncrId, IntegId, KeMethod, PrfId, ProtocolId};
use toml::Spanned;

use super::raw::{RawConfig, RawPeer, S};
use super::{Config, ConfigError, DpdAction, EspEncap, Node, Peer, Start};

/// IKE proposals when none are configured: AEAD with X25519 or P-256.
const DEFAULT_IKE: &[&str] = &[
    "aes256gcm16-prfsha256-x25519-ecp256",
    "chacha20poly1305-prfsha256-x25519-ecp256",
];
/// ESP proposals when none are configured.
const DEFAULT_ESP: &[&str] = &["aes256gcm16", "chacha20poly1305"];
/// PSKs shorter than this are refused unless `allow_weak_psk = true`.
const MIN_PSK_LEN: usize = 20;
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
struct Ctx<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Ctx<'_> {
    fn line(&self, offset: usize) -> usize {
        self.text
            .get(..offset)
            .map_or(0, |t| t.matches('\n').count())
            + 1
    }

    fn err(
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

    fn at(&self, s: &S, key: &str, message: impl Into<String>) -> ConfigError {
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

/// A setting from the peer, else from `[defaults]`.
macro_rules! setting {
    ($raw:expr, $peer:expr, $field:ident) => {
        $peer.$field.as_ref().or($raw.defaults.$field.as_ref())
    };
}

pub(super) fn validate(path: &Path, text: &str) -> Result<Config, ConfigError> {
    let ctx = Ctx { path, text };
    let raw: RawConfig = toml::from_str(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        ConfigError {
            path: path.to_path_buf(),
            line: e.span().map(|s| ctx.line(s.start)),
            key: key_on_line(text, span.start),
            message: e.message().to_string(),
        }
    })?;
    let mut warnings = Vec::new();
    let node = node(&ctx, &raw)?;
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
        let parsed = peer(&ctx, &raw, p, &mut warnings)?;
        // One key per peer: a key shared by peers lets each of them pose as the others (the
        // address binding is all that is left), and one leak exposes them all.
        let allow_shared = setting!(raw, p, allow_shared_psk).is_some_and(|b| *b.get_ref());
        let print = meshsec_crypto::digest::fingerprint(parsed.psk.expose());
        match keys.get(&print) {
            Some((other, other_allows)) if !(allow_shared && *other_allows) => {
                return Err(ctx.at(
                    &p.psk_file,
                    &key("psk_file"),
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
        peers.push(parsed);
    }
    Ok(Config {
        path: path.to_path_buf(),
        node,
        peers,
        warnings,
    })
}

fn node(ctx: &Ctx<'_>, raw: &RawConfig) -> Result<Node, ConfigError> {
    let n = &raw.node;
    if n.name.get_ref().trim().is_empty() {
        return Err(ctx.at(&n.name, "node.name", "must not be empty"));
    }
    let identity = identity(ctx, &n.identity, "node.identity")?;
    let addresses = n
        .addresses
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
        return Err(ctx.err(
            n.addresses.span(),
            "node.addresses",
            "needs at least one address",
        ));
    }
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
        name: n.name.get_ref().clone(),
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
fn identity(ctx: &Ctx<'_>, s: &S, key: &str) -> Result<Identity<'static>, ConfigError> {
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

fn peer(
    ctx: &Ctx<'_>,
    raw: &RawConfig,
    p: &RawPeer,
    warnings: &mut Vec<String>,
) -> Result<Peer, ConfigError> {
    let key = |k: &str| format!("peer.{}.{k}", p.name.get_ref());
    let address = socket_addr(p.address.get_ref())
        .ok_or_else(|| ctx.at(&p.address, &key("address"), format!("{:?} is not an address (e.g. \"192.0.2.2\", \"192.0.2.2:4500\", \"[2001:db8::2]:500\")", p.address.get_ref())))?;
    let identity = identity(ctx, &p.identity, &key("identity"))?;
    let allow_weak_psk = setting!(raw, p, allow_weak_psk).is_some_and(|b| *b.get_ref());
    let psk = psk(ctx, &p.psk_file, &key("psk_file"), allow_weak_psk, warnings)?;
    let accept_from = match setting!(raw, p, accept_from) {
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
        setting!(raw, p, mode),
        &key("mode"),
        &[
            ("tunnel", ChildMode::Tunnel),
            ("transport", ChildMode::Transport),
        ],
    )?;
    let start = choice(
        ctx,
        setting!(raw, p, start),
        &key("start"),
        &[
            ("always", Start::Always),
            ("on-demand", Start::OnDemand),
            ("passive", Start::Passive),
        ],
    )?;
    let dpd_action = choice(
        ctx,
        setting!(raw, p, dpd_action),
        &key("dpd_action"),
        &[
            ("restart", DpdAction::Restart),
            ("clear", DpdAction::Clear),
            ("trap", DpdAction::Trap),
        ],
    )?;
    let dpd_delay = match setting!(raw, p, dpd_delay) {
        Some(d) if d.get_ref() == "off" => None,
        d => Some(duration(ctx, d, DEFAULT_DPD_DELAY, &key("dpd_delay"), 1)?),
    };
    let tunnel_check = match setting!(raw, p, tunnel_check) {
        Some(d) if d.get_ref() == "off" => None,
        d => Some(duration(
            ctx,
            d,
            DEFAULT_TUNNEL_CHECK,
            &key("tunnel_check"),
            1,
        )?),
    };
    let reauth_lifetime = match setting!(raw, p, reauth_lifetime) {
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
        setting!(raw, p, dpd_timeout),
        DEFAULT_DPD_TIMEOUT,
        &key("dpd_timeout"),
        1,
    )?;
    let allow_weak = setting!(raw, p, allow_weak_crypto).is_some_and(|b| *b.get_ref());
    let ike_proposals = proposals(
        ctx,
        setting!(raw, p, ike_proposals),
        DEFAULT_IKE,
        ProtocolId::IKE,
        &key("ike_proposals"),
        allow_weak,
        warnings,
    )?;
    let esp_proposals = proposals(
        ctx,
        setting!(raw, p, esp_proposals),
        DEFAULT_ESP,
        ProtocolId::ESP,
        &key("esp_proposals"),
        allow_weak,
        warnings,
    )?;
    let ike_lifetime = duration(
        ctx,
        setting!(raw, p, ike_lifetime),
        DEFAULT_IKE_LIFETIME,
        &key("ike_lifetime"),
        MIN_LIFETIME_SECS,
    )?;
    let child_lifetime = duration(
        ctx,
        setting!(raw, p, child_lifetime),
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
        local_ts,
        remote_ts,
        mode,
        start,
        ike_proposals,
        esp_proposals,
        ike_lifetime,
        child_lifetime,
        reauth_lifetime,
        dpd_delay,
        dpd_timeout,
        dpd_action,
        tunnel_check,
        child_lifetime_bytes: match setting!(raw, p, child_lifetime_bytes) {
            None => None,
            Some(b) => Some(bytes(ctx, b, &key("child_lifetime_bytes"))?),
        },
        child_lifetime_packets: match setting!(raw, p, child_lifetime_packets) {
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

/// `500M`, `10G`, `1T` (octets; K/M/G/T are powers of 1024), at least 1 MiB.
fn bytes(ctx: &Ctx<'_>, s: &S, key: &str) -> Result<u64, ConfigError> {
    let v = s.get_ref().trim();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (n, unit) = v.split_at(split);
    let shift = match unit {
        "" => Some(0),
        "K" => Some(10),
        "M" => Some(20),
        "G" => Some(30),
        "T" => Some(40),
        _ => None,
    };
    n.parse::<u64>()
        .ok()
        .zip(shift)
        .and_then(|(n, s)| n.checked_mul(1u64 << s))
        .filter(|b| *b >= 1 << 20)
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

fn socket_addr(s: &str) -> Option<SocketAddr> {
    s.parse::<SocketAddr>().ok().or_else(|| {
        s.parse::<IpAddr>()
            .ok()
            .map(|ip| SocketAddr::new(ip, IKE_PORT))
    })
}

/// The pre-shared key: a file readable by root only, its content minus a final newline.
fn psk(
    ctx: &Ctx<'_>,
    file: &S,
    key: &str,
    allow_weak: bool,
    warnings: &mut Vec<String>,
) -> Result<Secret, ConfigError> {
    let mut path = PathBuf::from(file.get_ref());
    if path.is_relative()
        && let Some(dir) = ctx.path.parent()
    {
        path = dir.join(path);
    }
    let shown = path.display().to_string();
    // The directory too: whoever may write there may swap the key for their own.
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let dir = dir.unwrap_or(Path::new("."));
    let dir_meta =
        std::fs::metadata(dir).map_err(|e| ctx.at(file, key, format!("{}: {e}", dir.display())))?;
    if dir_meta.mode() & 0o022 != 0 || dir_meta.uid() != 0 {
        return Err(ctx.at(file, key, format!(
            "{shown} is in {}, which is writable by others than root (owner uid {}, mode {:03o}): keep key files in a root-owned directory (chmod go-w {})",
            dir.display(), dir_meta.uid(), dir_meta.mode() & 0o777, dir.display()
        )));
    }
    // Opened without following a symlink, and checked through the open file (fstat), so the
    // file checked is the file read.
    let mut opened = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => ctx.at(
                file,
                key,
                format!("{shown} is a symbolic link; name the key file itself"),
            ),
            _ => ctx.at(file, key, format!("{shown}: {e}")),
        })?;
    let meta = opened
        .metadata()
        .map_err(|e| ctx.at(file, key, format!("{shown}: {e}")))?;
    if !meta.is_file() {
        return Err(ctx.at(file, key, format!("{shown} is not a regular file")));
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(ctx.at(file, key, format!(
            "{shown} is readable or writable by others (mode {mode:03o}); a key file must be root-only: chmod 600 {shown}"
        )));
    }
    if meta.uid() != 0 {
        return Err(ctx.at(
            file,
            key,
            format!(
                "{shown} is owned by uid {}; a key file must be owned by root: chown root {shown}",
                meta.uid()
            ),
        ));
    }
    let mut content = Vec::new();
    std::io::Read::read_to_end(&mut opened, &mut content)
        .map_err(|e| ctx.at(file, key, format!("{shown}: {e}")))?;
    while content.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        content.pop();
    }
    if content.is_empty() {
        return Err(ctx.at(file, key, format!("{shown} is empty")));
    }
    if content.len() < MIN_PSK_LEN {
        if !allow_weak {
            return Err(ctx.at(file, key, format!(
                "the key in {shown} has {} characters; at least {MIN_PSK_LEN} are required (or set allow_weak_psk = true)",
                content.len()
            )));
        }
        warnings.push(format!(
            "{}: {key}: weak pre-shared key ({} characters) allowed by allow_weak_psk",
            ctx.path.display(),
            content.len()
        ));
    }
    Ok(Secret::new(content))
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
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (a.parse::<IpAddr>().ok()?, Some(l.parse::<u32>().ok()?)),
        None => (s.parse::<IpAddr>().ok()?, None),
    };
    // Both families as a 128-bit number of `width` significant bits.
    let (width, value): (u32, u128) = match addr {
        IpAddr::V4(a) => (32, u128::from(u32::from(a))),
        IpAddr::V6(a) => (128, u128::from(a)),
    };
    let host_bits = width.checked_sub(len.unwrap_or(width))?;
    let host = if host_bits == 0 {
        0
    } else {
        u128::MAX >> (128 - host_bits)
    };
    let (start, end) = (value & !host, (value & !host) | host);
    let back = |v: u128| match addr {
        IpAddr::V4(_) => u32::try_from(v).ok().map(|x| IpAddr::V4(x.into())),
        IpAddr::V6(_) => Some(IpAddr::V6(v.into())),
    };
    Some(AddrSelector::range(back(start)?, back(end)?))
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

/// `90s`, `15m`, `4h`, `1d`.
fn duration(
    ctx: &Ctx<'_>,
    s: Option<&S>,
    default: Duration,
    key: &str,
    min_secs: u64,
) -> Result<Duration, ConfigError> {
    let Some(s) = s else { return Ok(default) };
    let v = s.get_ref().trim();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (n, unit) = v.split_at(split);
    let n: Option<u64> = n.parse().ok();
    let unit = match unit {
        "s" => Some(1),
        "m" => Some(60),
        "h" => Some(3600),
        "d" => Some(86400),
        _ => None,
    };
    match (n, unit) {
        (Some(n), Some(u)) if n.saturating_mul(u) >= min_secs => Ok(Duration::from_secs(n * u)),
        _ => Err(ctx.at(
            s,
            key,
            format!(
                "{v:?}: expected a duration of at least {min_secs} s like \"90s\", \"15m\", \"4h\" or \"1d\""
            ),
        )),
    }
}
