//! The routes into the TUN device, per peer: one per prefix of the peer's selectors, with a
//! preferred source address of ours inside our selectors, so that locally generated packets
//! carry an address the policy protects.
//!
//! They live in meshsec's own routing table, consulted through a policy-routing rule by every
//! packet that does not carry meshsec's firewall mark (DESIGN.md §5). Our IKE and ESP
//! sockets carry the mark, so a peer whose own address is inside its selectors (a mesh host
//! in transport mode, or a gateway whose selectors cover the underlay) is still reached
//! directly, while everything else to it enters the TUN device and is encrypted.

use std::collections::HashMap;
use std::net::IpAddr;

use meshsec_esp::selector::AddrRange;
use meshsec_ike::ChildMode;
use meshsec_types::PeerId;
use meshsec_wire::payload::AddrSelector;

use super::netlink::{self, Netlink, Route};

/// The firewall mark of meshsec's own packets (IKE, ESP) and of bypass traffic: marked
/// packets skip meshsec's routing table. One bit (29), or-ed into the mark, so other
/// software's bits (kube-proxy's 0x4000/0x8000, Cilium's 0xf00) stay untouched.
pub const FWMARK: u32 = 0x2000_0000;
/// meshsec's routing table.
pub const ROUTE_TABLE: u32 = 0x4d53;
/// Priority of the rule that sends unmarked packets to [`ROUTE_TABLE`]: after the `local`
/// table (0), before `main` (32766).
pub const RULE_PRIORITY: u32 = 10_000;

/// The way to a peer, for the MTU of its routes.
pub struct Path {
    /// Its address (where our ESP goes).
    pub address: IpAddr,
    /// Tunnel mode adds an IP header, transport mode does not.
    pub mode: ChildMode,
    /// The underlay path's MTU if known (the inventory), else our interface's is used.
    pub mtu: Option<u16>,
    /// The TUN device's MTU (the routes' default).
    pub tun_mtu: u16,
}

/// The most ESP in UDP adds to an inner packet in transport mode: UDP 8, ESP header 8, IV up
/// to 16, padding up to 15 and the trailer's 2, ICV up to 16. Tunnel mode adds the outer IP
/// header too.
const ESP_OVERHEAD: u32 = 8 + 8 + 16 + 15 + 2 + 16;

/// The largest inner packet that fits in an underlay `path_mtu` as ESP of `mode`.
pub fn inner_mtu(path_mtu: u32, mode: ChildMode, outer_v4: bool) -> u32 {
    let outer = match mode {
        ChildMode::Transport => 0,
        ChildMode::Tunnel if outer_v4 => 20,
        ChildMode::Tunnel => 40,
    };
    path_mtu.saturating_sub(ESP_OVERHEAD + outer)
}

/// The routes installed for each peer.
pub struct Routes {
    netlink: Netlink,
    tun_index: u32,
    by_peer: HashMap<PeerId, Vec<Route>>,
}

/// The first address of this host inside one of `local_ts` of the given family.
pub fn route_source(host: &[IpAddr], local_ts: &[AddrSelector], v4: bool) -> Option<IpAddr> {
    host.iter().copied().find(|a| {
        a.is_ipv4() == v4
            && local_ts.iter().any(|ts| {
                AddrRange {
                    start: ts.start,
                    end: ts.end,
                }
                .contains(*a)
            })
    })
}

impl Routes {
    /// No routes yet, through the TUN device with this index.
    pub fn new(netlink: Netlink, tun_index: u32) -> Routes {
        Routes {
            netlink,
            tun_index,
            by_peer: HashMap::new(),
        }
    }

    /// Routes `remote_ts` into the tunnel for `peer` (named `name` in errors), with the MTU
    /// that `path` leaves for inner packets when it is below the TUN device's.
    pub async fn add(
        &mut self,
        peer: PeerId,
        name: &str,
        local_ts: &[AddrSelector],
        remote_ts: &[AddrSelector],
        path: Option<&Path>,
    ) {
        let mtu = match path {
            Some(p) => self.inner_mtu(p).await,
            None => None,
        };
        if let Some(m) = mtu {
            tracing::info!("peer {name}: routes with MTU {m} (the underlay path leaves no more)");
        }
        let host = self.netlink.host_addresses().await.unwrap_or_default();
        let mut installed = Vec::new();
        for ts in remote_ts {
            let src = route_source(&host, local_ts, ts.start.is_ipv4());
            for r in netlink::prefixes(ts) {
                match self
                    .netlink
                    .add_route(self.tun_index, r, src, ROUTE_TABLE, mtu)
                    .await
                {
                    Ok(()) => installed.push(r),
                    Err(e) => tracing::error!("peer {name}: {e:#}"),
                }
            }
        }
        // Routes are added with replace: adding a peer's routes again (new MTU) must not
        // leave a second list to remove.
        self.by_peer.insert(peer, installed);
    }

    /// The MTU for a peer's routes, when it must be below the TUN device's.
    async fn inner_mtu(&self, p: &Path) -> Option<u32> {
        let underlay = match p.mtu {
            Some(m) => Some(u32::from(m)),
            None => self.netlink.link_mtu_towards(p.address, FWMARK).await,
        }?;
        let fits = inner_mtu(underlay, p.mode, p.address.is_ipv4());
        // IPv6 needs 1280 whatever the path (RFC 8200 §5): below that, fragments.
        let floor = if p.address.is_ipv4() { 576 } else { 1280 };
        (fits < u32::from(p.tun_mtu)).then_some(fits.max(floor))
    }

    /// Removes the routes of `peer`.
    pub async fn remove(&mut self, peer: PeerId) {
        for r in self.by_peer.remove(&peer).unwrap_or_default() {
            self.netlink.del_route(self.tun_index, r, ROUTE_TABLE).await;
        }
    }

    /// Installs the policy-routing rules (IPv4 and IPv6) that send unmarked packets to
    /// meshsec's table.
    pub async fn add_rules(&self) -> anyhow::Result<()> {
        self.netlink
            .add_rule(false, FWMARK, ROUTE_TABLE, RULE_PRIORITY)
            .await?;
        if let Err(e) = self
            .netlink
            .add_rule(true, FWMARK, ROUTE_TABLE, RULE_PRIORITY)
            .await
        {
            tracing::warn!("{e:#}: IPv6 peers will not be routed into the tunnel");
        }
        Ok(())
    }

    /// Removes the rules (a normal stop; after a crash the next start replaces them, and the
    /// table they point to is empty once the TUN device is gone).
    pub async fn remove_rules(&self) {
        for v6 in [false, true] {
            self.netlink
                .del_rule(v6, FWMARK, ROUTE_TABLE, RULE_PRIORITY)
                .await;
        }
    }
}
