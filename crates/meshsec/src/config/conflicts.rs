//! What each peer's settings allow alone but the peers together do not: two peers nobody
//! could tell apart (the same identity at the same address), traffic two peers would both
//! claim (selectors that are equal or overlap without one containing the other: nested ones
//! are fine, the SPD takes the most specific), a peer that is this host itself. The daemon
//! would start with these and then misroute or refuse at run time; `check-config` refuses
//! them first, naming both places.

use std::net::IpAddr;

use meshsec_wire::payload::AddrSelector;

use super::raw::RawPeer;
use super::validate::Ctx;
use super::{ConfigError, Node, Peer};

/// Checks the `[[peer]]` tables (`raw`, parsed as `peers`, in the same order) against each
/// other, against the inventory's pairs (`derived`) and against this host (`node` and the
/// addresses its interfaces have).
pub(super) fn check(
    ctx: &Ctx<'_>,
    node: &Node,
    raw: &[RawPeer],
    peers: &[Peer],
    derived: &[Peer],
    host_addresses: &[IpAddr],
) -> Result<(), ConfigError> {
    for (i, (r, p)) in raw.iter().zip(peers).enumerate() {
        let key = |k: &str| format!("peer.{}.{k}", p.name);
        let ip = p.address.ip();
        // This host's interfaces count when the configuration is this host's (its node
        // addresses are here): checking gw1's file on gw2 must not find gw2 "itself".
        let ours = node.addresses.iter().any(|a| host_addresses.contains(a));
        if !ip.is_unspecified()
            && (node.addresses.contains(&ip) || (ours && host_addresses.contains(&ip)))
        {
            return Err(ctx.at(
                &r.address,
                &key("address"),
                format!(
                    "{ip} is this host's own address; a peer's address is the other host's (where its IKE listens)"
                ),
            ));
        }
        if p.identity.same_as(&node.identity) {
            return Err(ctx.at(
                &r.identity,
                &key("identity"),
                format!(
                    "{} is our own identity (node.identity); the peer needs its own",
                    p.identity
                ),
            ));
        }
        // One identity at two addresses is two peers (the answering side picks by address
        // too); at one address nobody can tell them apart.
        let twin = |q: &Peer| q.identity.same_as(&p.identity) && q.address.ip() == ip;
        let same_identity = raw.iter().zip(peers).take(i).find(|(_, q)| twin(q));
        if let Some((q_raw, q)) = same_identity {
            let (other, other_line) = (&q.name, ctx.line(q_raw.identity.span().start));
            return Err(ctx.at(
                &r.identity,
                &key("identity"),
                format!(
                    "{} is also the identity of peer {other} (line {other_line}) at the same \
                     address {ip}: an answering side could not tell the two apart; give each \
                     peer its own identity",
                    p.identity
                ),
            ));
        }
        duplicate_selector(ctx, r, p)?;
        let earlier = raw.iter().zip(peers).take(i);
        for (q_raw, q) in earlier {
            if let Some((mine, theirs)) = shared_traffic(p, q) {
                let line = ctx.line(q_raw.remote_ts.span().start);
                return Err(ctx.err(
                    r.remote_ts.span(),
                    &key("remote_ts"),
                    format!(
                        "{mine} and {theirs} of peer {} (line {line}) overlap, neither inside the \
                         other, between the same local selectors: that traffic could go to either \
                         peer; make them disjoint or nested",
                        q.name
                    ),
                ));
            }
        }
        for q in derived {
            if twin(q) {
                return Err(ctx.at(
                    &r.identity,
                    &key("identity"),
                    format!(
                        "{} is also the identity of the inventory's host {} at the same \
                         address; give each peer its own identity",
                        p.identity, q.name
                    ),
                ));
            }
            if let Some((mine, theirs)) = shared_traffic(p, q) {
                return Err(ctx.err(
                    r.remote_ts.span(),
                    &key("remote_ts"),
                    format!(
                        "{mine} and {theirs} of the inventory's host {} overlap, neither inside \
                         the other: that traffic could go to either; make them disjoint or nested",
                        q.name
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// A selector listed twice in one peer's `local_ts` or `remote_ts`.
fn duplicate_selector(ctx: &Ctx<'_>, r: &RawPeer, p: &Peer) -> Result<(), ConfigError> {
    for (which, list, parsed) in [
        ("local_ts", &r.local_ts, &p.local_ts),
        ("remote_ts", &r.remote_ts, &p.remote_ts),
    ] {
        for (i, (s, ts)) in list.get_ref().iter().zip(parsed).enumerate() {
            if let Some(first) = parsed.iter().take(i).find(|t| clash(t, ts)) {
                return Err(ctx.at(
                    s,
                    &format!("peer.{}.{which}", p.name),
                    format!(
                        "{} overlaps {} listed before it (equal, or neither inside the other); \
                         list each range once",
                        meshsec_ike::ts::describe(ts),
                        meshsec_ike::ts::describe(first)
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Two selectors the SPD could not rank: equal, or overlapping with neither inside the other
/// (of nested ones, the more specific wins).
fn clash(a: &AddrSelector, b: &AddrSelector) -> bool {
    use meshsec_ike::ts::{contains, intersect};
    a == b || (intersect(a, b).is_some() && !contains(a, b) && !contains(b, a))
}

/// Traffic both peers' policies would claim alike: remote selectors of each that clash,
/// between local selectors that overlap. Returns the two remote selectors.
fn shared_traffic(p: &Peer, q: &Peer) -> Option<(String, String)> {
    let overlap = |a: &[AddrSelector], b: &[AddrSelector]| {
        a.iter().find_map(|x| {
            b.iter()
                .find(|y| meshsec_ike::ts::intersect(x, y).is_some())
                .map(|y| (*x, *y))
        })
    };
    overlap(&p.local_ts, &q.local_ts)?;
    let (mine, theirs) = p
        .remote_ts
        .iter()
        .find_map(|x| q.remote_ts.iter().find(|y| clash(x, y)).map(|y| (*x, *y)))?;
    Some((
        meshsec_ike::ts::describe(&mine),
        meshsec_ike::ts::describe(&theirs),
    ))
}
