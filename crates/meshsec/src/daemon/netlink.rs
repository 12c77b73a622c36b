//! The TUN device and its routes, through netlink (not by running `ip`): a route per remote
//! traffic selector into the TUN device, with a preferred source address from our local
//! selectors when this host has one (so that locally generated traffic matches the policy).

use std::net::IpAddr;

use anyhow::{Context, Result, anyhow};
use futures_util::TryStreamExt;
use meshsec_wire::payload::AddrSelector;
use netlink_packet_route::AddressFamily;
use netlink_packet_route::address::AddressAttribute;
use netlink_packet_route::link::LinkAttribute;
use netlink_packet_route::route::{RouteAttribute, RouteMetric};
use netlink_packet_route::rule::{RuleAction, RuleAttribute, RuleFlags, RuleMessage};
use rtnetlink::{Handle, RouteMessageBuilder};

/// Creates the TUN device `name` with `mtu`, up, without addresses.
pub fn create_tun(name: &str, mtu: u16) -> Result<tun_rs::SyncDevice> {
    tun_rs::DeviceBuilder::new()
        .name(name)
        .mtu(mtu)
        // IFF_VNET_HDR with TSO/GRO: the kernel hands us TCP segment trains in one read and
        // takes coalesced ones in one write (what wireguard-go and Tailscale do).
        .offload(true)
        .build_sync()
        .map_err(|e| anyhow!("cannot create TUN device {name}: {}", tun_problem(name, &e)))
}

/// What a failed TUN creation means, with the fix.
fn tun_problem(name: &str, e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::EBUSY) => format!(
            "{name} is already held by another program — another meshsec daemon (with another \
             control socket) or a VPN such as OpenVPN or wireguard-go; stop it, or set \
             node.tun to an unused name"
        ),
        Some(libc::EPERM | libc::EACCES) => {
            "permission denied: run meshsec as root (it needs CAP_NET_ADMIN)".to_string()
        }
        Some(libc::ENOENT | libc::ENODEV) => {
            "/dev/net/tun is missing: load the tun module (modprobe tun)".to_string()
        }
        Some(libc::EINVAL) => format!(
            "{e}: an interface named {name} exists and is not a TUN device; set node.tun to an \
             unused name"
        ),
        _ => e.to_string(),
    }
}

/// A route: prefix and length.
pub type Route = (IpAddr, u8);

/// The smallest set of prefixes covering the address range of `ts` exactly (`ipnet`).
pub fn prefixes(ts: &AddrSelector) -> Vec<Route> {
    match (ts.start, ts.end) {
        (IpAddr::V4(start), IpAddr::V4(end)) => ipnet::Ipv4Subnets::new(start, end, 0)
            .map(|n| (IpAddr::V4(n.network()), n.prefix_len()))
            .collect(),
        (IpAddr::V6(start), IpAddr::V6(end)) => ipnet::Ipv6Subnets::new(start, end, 0)
            .map(|n| (IpAddr::V6(n.network()), n.prefix_len()))
            .collect(),
        _ => Vec::new(),
    }
}

/// A netlink connection (its driver runs on the current tokio runtime).
pub struct Netlink {
    handle: Handle,
}

impl Netlink {
    /// Opens the connection.
    pub fn new() -> Result<Netlink> {
        let (conn, handle, _) = rtnetlink::new_connection().context("cannot open netlink")?;
        tokio::spawn(conn);
        Ok(Netlink { handle })
    }

    /// The interface index of `name`.
    pub async fn link_index(&self, name: &str) -> Result<u32> {
        let mut links = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute();
        let link = links
            .try_next()
            .await
            .with_context(|| format!("cannot find interface {name}"))?
            .ok_or_else(|| anyhow!("no interface {name}"))?;
        Ok(link.header.index)
    }

    /// Every address configured on this host (this network namespace).
    pub async fn host_addresses(&self) -> Result<Vec<IpAddr>> {
        let mut out = Vec::new();
        let mut addrs = self.handle.address().get().execute();
        while let Some(msg) = addrs.try_next().await.context("cannot list addresses")? {
            for attr in msg.attributes {
                if let AddressAttribute::Address(a) = attr {
                    out.push(a);
                }
            }
        }
        Ok(out)
    }

    /// The MTU of the interface a packet to `dst` carrying firewall mark `mark` leaves by
    /// (our own ESP's way to a peer), if the route and link can be read.
    pub async fn link_mtu_towards(&self, dst: IpAddr, mark: u32) -> Option<u32> {
        let len = if dst.is_ipv4() { 32 } else { 128 };
        let mut msg = RouteMessageBuilder::<IpAddr>::new()
            .destination_prefix(dst, len)
            .ok()?
            .build();
        msg.attributes.push(RouteAttribute::Mark(mark));
        let mut routes = self.handle.route().get(msg).execute();
        let route = routes.try_next().await.ok()??;
        let oif = route.attributes.iter().find_map(|a| match a {
            RouteAttribute::Oif(i) => Some(*i),
            _ => None,
        })?;
        let mut links = self.handle.link().get().match_index(oif).execute();
        let link = links.try_next().await.ok()??;
        link.attributes.iter().find_map(|a| match a {
            LinkAttribute::Mtu(m) => Some(*m),
            _ => None,
        })
    }

    /// Adds (or replaces) a route into interface `index`, in routing table `table`, with an
    /// MTU of its own when `mtu` is given (smaller than the interface's).
    pub async fn add_route(
        &self,
        index: u32,
        route: Route,
        src: Option<IpAddr>,
        table: u32,
        mtu: Option<u32>,
    ) -> Result<()> {
        let mut b = RouteMessageBuilder::<IpAddr>::new()
            .destination_prefix(route.0, route.1)
            .map_err(|e| anyhow!("{e}"))?
            .output_interface(index)
            .table_id(table);
        if let Some(src) = src {
            b = b.pref_source(src).map_err(|e| anyhow!("{e}"))?;
        }
        if let Some(mtu) = mtu {
            b.get_mut()
                .attributes
                .push(RouteAttribute::Metrics(vec![RouteMetric::Mtu(mtu)]));
        }
        self.handle
            .route()
            .add(b.build())
            .replace()
            .execute()
            .await
            .with_context(|| format!("cannot add the route {}/{}", route.0, route.1))
    }

    /// Removes a route from interface `index` in table `table` (missing routes are not an
    /// error).
    pub async fn del_route(&self, index: u32, route: Route, table: u32) {
        let Ok(b) = RouteMessageBuilder::<IpAddr>::new().destination_prefix(route.0, route.1)
        else {
            return;
        };
        let _ = self
            .handle
            .route()
            .del(b.output_interface(index).table_id(table).build())
            .execute()
            .await;
    }

    /// The policy-routing rule `not fwmark MARK/MARK lookup TABLE` at `priority`, for IPv4 or
    /// IPv6: everything except our own marked packets consults `table` first. The same rule
    /// left by an earlier run (a crash) is removed first, so it is never duplicated.
    pub async fn add_rule(&self, v6: bool, mark: u32, table: u32, priority: u32) -> Result<()> {
        self.del_rule(v6, mark, table, priority).await;
        let add = self.handle.rule().add();
        let msg = rule_message(v6, mark, table, priority);
        let done = if v6 {
            let mut req = add.v6();
            *req.message_mut() = msg;
            req.execute().await
        } else {
            let mut req = add.v4();
            *req.message_mut() = msg;
            req.execute().await
        };
        done.with_context(|| {
            format!(
                "cannot add the {} rule \"not fwmark {mark:#x} lookup {table}\"",
                if v6 { "IPv6" } else { "IPv4" }
            )
        })
    }

    /// Removes every copy of that rule (none is not an error).
    pub async fn del_rule(&self, v6: bool, mark: u32, table: u32, priority: u32) {
        // A bounded number of copies: each call removes one.
        for _ in 0..16 {
            let msg = rule_message(v6, mark, table, priority);
            if self.handle.rule().del(msg).execute().await.is_err() {
                break;
            }
        }
    }
}

/// `not fwmark MARK/MARK lookup TABLE priority PRIORITY`.
fn rule_message(v6: bool, mark: u32, table: u32, priority: u32) -> RuleMessage {
    let mut m = RuleMessage::default();
    m.header.family = if v6 {
        AddressFamily::Inet6
    } else {
        AddressFamily::Inet
    };
    m.header.action = RuleAction::ToTable;
    m.header.flags = RuleFlags::Invert;
    m.header.table = 252; // RT_TABLE_COMPAT: the real id is in the attribute
    m.attributes = vec![
        RuleAttribute::Table(table),
        RuleAttribute::Priority(priority),
        RuleAttribute::FwMark(mark),
        RuleAttribute::FwMask(mark),
    ];
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(a: &str, b: &str) -> AddrSelector {
        AddrSelector::range(a.parse().unwrap(), b.parse().unwrap())
    }

    #[test]
    fn ranges_become_exact_prefix_covers() {
        let p = |a: &str, l: u8| (a.parse::<IpAddr>().unwrap(), l);
        assert_eq!(
            prefixes(&ts("10.1.0.0", "10.1.0.255")),
            vec![p("10.1.0.0", 24)]
        );
        assert_eq!(
            prefixes(&ts("10.0.0.7", "10.0.0.7")),
            vec![p("10.0.0.7", 32)]
        );
        assert_eq!(
            prefixes(&ts("10.1.0.5", "10.1.0.9")),
            vec![p("10.1.0.5", 32), p("10.1.0.6", 31), p("10.1.0.8", 31)]
        );
        assert_eq!(
            prefixes(&ts("0.0.0.0", "255.255.255.255")),
            vec![p("0.0.0.0", 0)]
        );
        assert_eq!(
            prefixes(&ts("::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")),
            vec![p("::", 0)]
        );
        assert_eq!(
            prefixes(&ts("2001:db8::", "2001:db8::ffff")),
            vec![p("2001:db8::", 112)]
        );
    }
}
