//! The identity binding (RFC 7296 §3.5, RFC 4945 §3.1): the IKE ID a peer presents must be in
//! its certificate — an FQDN as a dNSName, an RFC 822 address as an rfc822Name, an address as
//! an iPAddress subjectAltName, a DN as the subject. Without this check, any certificate from
//! the CA would authenticate any identity.

use meshsec_wire::payload::Identity;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;
use x509_parser::x509::X509Name;

use crate::error::clean;

/// A DN as a list of (attribute type, value) with values compared case-insensitively: two
/// encodings of one name (PrintableString vs UTF8String, as strongSwan and OpenSSL differ)
/// compare equal.
fn normalized(name: &X509Name<'_>) -> Vec<(String, String)> {
    name.iter_attributes()
        .map(|a| {
            let value = match a.as_str() {
                Ok(s) => s.trim().to_lowercase(),
                Err(_) => format!("{:02x?}", a.attr_value().data),
            };
            (a.attr_type().to_id_string(), value)
        })
        .collect()
}

/// Whether `cert` holds `id`.
pub(crate) fn binds(cert: &X509Certificate<'_>, id: &Identity<'_>) -> bool {
    let sans: Vec<GeneralName<'_>> = match cert.subject_alternative_name() {
        Ok(Some(ext)) => ext.value.general_names.clone(),
        _ => Vec::new(),
    };
    let eq_text = |a: &[u8], b: &str| a.eq_ignore_ascii_case(b.as_bytes());
    match id {
        Identity::Fqdn(name) => sans
            .iter()
            .any(|g| matches!(g, GeneralName::DNSName(d) if eq_text(name, d))),
        Identity::Rfc822(addr) => sans
            .iter()
            .any(|g| matches!(g, GeneralName::RFC822Name(d) if eq_text(addr, d))),
        Identity::Ipv4(ip) => sans
            .iter()
            .any(|g| matches!(g, GeneralName::IPAddress(b) if *b == ip.octets().as_slice())),
        Identity::Ipv6(ip) => sans
            .iter()
            .any(|g| matches!(g, GeneralName::IPAddress(b) if *b == ip.octets().as_slice())),
        Identity::DerAsn1Dn(der) => match X509Name::from_der(der) {
            Ok((_, name)) => normalized(&name) == normalized(cert.subject()),
            Err(_) => false,
        },
        _ => false,
    }
}

/// The identities `cert` holds, for messages: its subject and subjectAltNames (the first
/// eight; each cleaned of control characters and bounded).
pub(crate) fn describe(cert: &X509Certificate<'_>) -> String {
    let mut out = format!("subject \"{}\"", clean(&cert.subject().to_string()));
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        let names = &ext.value.general_names;
        for g in names.iter().take(8) {
            let s = match g {
                GeneralName::DNSName(d) => format!("fqdn:{d}"),
                GeneralName::RFC822Name(d) => format!("email:{d}"),
                GeneralName::IPAddress(b) => match b.len() {
                    4 => <[u8; 4]>::try_from(*b)
                        .map(|o| std::net::Ipv4Addr::from(o).to_string())
                        .unwrap_or_default(),
                    16 => <[u8; 16]>::try_from(*b)
                        .map(|o| std::net::Ipv6Addr::from(o).to_string())
                        .unwrap_or_default(),
                    _ => format!("{b:02x?}"),
                },
                other => format!("{other:?}"),
            };
            out.push_str(&format!(", {}", clean(&s)));
        }
        if names.len() > 8 {
            out.push_str(&format!(" and {} more", names.len() - 8));
        }
    } else {
        out.push_str(" and no subjectAltName");
    }
    out
}
