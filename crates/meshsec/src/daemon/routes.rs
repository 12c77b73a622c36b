//! The routes into the TUN device, per peer: one per prefix of the peer's selectors, with a
//! preferred source address of ours inside our selectors, so that locally generated packets
//! carry an address the policy protects.

use std::collections::HashMap;
use std::net::IpAddr;

use meshsec_esp::selector::AddrRange;
use meshsec_types::PeerId;
use meshsec_wire::payload::AddrSelector;

use super::netlink::{self, Netlink, Route};

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

    /// Routes `remote_ts` into the tunnel for `peer` (named `name` in errors).
    pub async fn add(
        &mut self,
        peer: PeerId,
        name: &str,
        local_ts: &[AddrSelector],
        remote_ts: &[AddrSelector],
    ) {
        let host = self.netlink.host_addresses().await.unwrap_or_default();
        let mut installed = Vec::new();
        for ts in remote_ts {
            let src = route_source(&host, local_ts, ts.start.is_ipv4());
            for r in netlink::prefixes(ts) {
                match self.netlink.add_route(self.tun_index, r, src).await {
                    Ok(()) => installed.push(r),
                    Err(e) => tracing::error!("peer {name}: {e:#}"),
                }
            }
        }
        self.by_peer.entry(peer).or_default().extend(installed);
    }

    /// Removes the routes of `peer`.
    pub async fn remove(&mut self, peer: PeerId) {
        for r in self.by_peer.remove(&peer).unwrap_or_default() {
            self.netlink.del_route(self.tun_index, r).await;
        }
    }
}
