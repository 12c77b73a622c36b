//! Human-readable renderings of [`Status`] for `meshsec status` and `meshsec sas`: one
//! screen, in the spirit of `wg show`.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::{PeerStatus, Status};

/// `1h02m`, `3m05s`, `42s`.
pub fn duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}d{h:02}h")
    } else if h > 0 {
        format!("{h}h{m:02}m")
    } else if m > 0 {
        format!("{m}m{s:02}s")
    } else {
        format!("{s}s")
    }
}

/// `1.2 MiB` (binary units, by `bytesize`).
pub fn bytes(n: u64) -> String {
    bytesize::ByteSize::b(n).display().iec().to_string()
}

fn drops(d: &BTreeMap<String, u64>) -> Option<String> {
    let parts: Vec<String> = d
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

fn peer(out: &mut String, p: &PeerStatus) {
    let _ = writeln!(
        out,
        "\npeer {}  {}  {}  [{}]  start {}",
        p.name, p.address, p.identity, p.state, p.start
    );
    for s in &p.ike_sas {
        let _ = writeln!(
            out,
            "  ike    {} {}_i {}_r  {}  {} <-> {}{}  {}  age {}",
            s.role,
            s.spi_i,
            s.spi_r,
            s.state,
            s.local,
            s.remote,
            match (&s.nat, s.udp_encap) {
                (Some(nat), _) => format!(" ({nat}; UDP-encapsulated)"),
                (None, true) => " (UDP-encapsulated)".to_string(),
                (None, false) => String::new(),
            },
            if s.proposal.is_empty() {
                "-"
            } else {
                &s.proposal
            },
            duration(s.age_secs)
        );
    }
    for c in &p.child_sas {
        let _ = writeln!(
            out,
            "  child  in {} out {}  {}  {} {}  {} <-> {}  age {}",
            c.spi_in,
            c.spi_out,
            c.proposal,
            c.mode,
            c.encap,
            c.local_ts.join(","),
            c.remote_ts.join(","),
            duration(c.age_secs)
        );
    }
    if let Some(ago) = p.last_handshake_secs_ago {
        let took = p
            .handshake_ms
            .map(|ms| format!(" (took {ms} ms)"))
            .unwrap_or_default();
        let _ = writeln!(out, "  last handshake {} ago{took}", duration(ago));
    }
    let _ = writeln!(
        out,
        "  transfer {} in ({} pkts), {} out ({} pkts)",
        bytes(p.bytes_in),
        p.packets_in,
        bytes(p.bytes_out),
        p.packets_out
    );
    if p.ike_rekeys
        + p.child_rekeys
        + p.reauths
        + p.dpd_checks
        + p.deaths
        + p.invalid_spi_sent
        + p.heals
        > 0
    {
        let _ = writeln!(
            out,
            "  lifecycle  rekeys IKE {} / CHILD {} ({} collisions), reauthentications {}, DPD checks {}, declared dead {}, INVALID_SPI sent {} / received {}, half SAs healed {}",
            p.ike_rekeys,
            p.child_rekeys,
            p.rekey_collisions,
            p.reauths,
            p.dpd_checks,
            p.deaths,
            p.invalid_spi_sent,
            p.invalid_spi_received,
            p.heals
        );
    }
    if let Some(d) = drops(&p.drops) {
        let _ = writeln!(out, "  drops  {d}");
    }
    for (whose, c) in p.certificate.iter().map(|c| ("our", c)).chain(
        p.ike_sas
            .iter()
            .filter_map(|s| s.peer_certificate.as_ref())
            .map(|c| ("peer", c))
            .take(1),
    ) {
        let _ = writeln!(
            out,
            "  cert   {whose} \"{}\" until {} ({})",
            c.subject,
            c.not_after,
            expiry(c.days_left)
        );
    }
    if let Some(f) = &p.last_failure {
        let _ = writeln!(out, "  last failure: {f}");
    }
    if let Some(r) = &p.last_refusal {
        let _ = writeln!(out, "  last refusal: {r}");
    }
}

/// Days left on a certificate, with a warning from 30 days before.
fn expiry(days: i64) -> String {
    if days < 0 {
        "EXPIRED".into()
    } else if days < crate::config::EXPIRY_WARNING_DAYS {
        format!("expires in {days} days: RENEW")
    } else {
        format!("{days} days left")
    }
}

/// The `meshsec status` screen.
pub fn status(s: &Status) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "node {} ({})  tun {}  up {}  meshsec {} (AEAD: {})",
        s.node,
        s.identity,
        s.tun,
        duration(s.uptime_secs),
        s.version,
        s.aead_backend
    );
    let up = s.peers.iter().filter(|p| p.state == "established").count();
    let _ = writeln!(out, "peers: {} configured, {up} established", s.peers.len());
    for p in &s.peers {
        peer(&mut out, p);
    }
    if let Some(d) = drops(&s.unattributed_drops) {
        let _ = writeln!(out, "\nunattributed drops: {d}");
    }
    let dp: Vec<String> = s
        .data_path
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    if !dp.is_empty() {
        let _ = writeln!(out, "data path: {}", dp.join(", "));
    }
    if let Some(e) = drops(&s.ike_errors) {
        let _ = writeln!(out, "IKE messages dropped or refused: {e}");
    }
    let refused = s.refusals.get("refused").copied().unwrap_or(0);
    if refused > 0 {
        let quiet = s.refusals.get("not_logged").copied().unwrap_or(0);
        let _ = writeln!(
            out,
            "unauthenticated initiators refused: {refused} ({quiet} of them not logged)"
        );
    }
    out
}

/// The `meshsec sas` listing: one line per SA.
pub fn sas(s: &Status) -> String {
    let mut out = String::new();
    for p in &s.peers {
        for i in &p.ike_sas {
            let _ = writeln!(
                out,
                "{}  IKE    {}_i {}_r  {}  {}  {} <-> {}  {}",
                p.name, i.spi_i, i.spi_r, i.role, i.state, i.local, i.remote, i.proposal
            );
        }
        for c in &p.child_sas {
            let _ = writeln!(
                out,
                "{}  CHILD  in {} out {}  {}  {} {}  {} <-> {}",
                p.name,
                c.spi_in,
                c.spi_out,
                c.proposal,
                c.mode,
                c.encap,
                c.local_ts.join(","),
                c.remote_ts.join(",")
            );
        }
    }
    if out.is_empty() {
        out.push_str("no SAs\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_read_naturally() {
        assert_eq!(duration(42), "42s");
        assert_eq!(duration(185), "3m05s");
        assert_eq!(duration(3720), "1h02m");
        assert_eq!(duration(90000), "1d01h");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1_268_000), "1.2 MiB");
    }
}
