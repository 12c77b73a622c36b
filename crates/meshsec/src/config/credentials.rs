//! How a peer authenticates and is authenticated: `auth` / `peer_auth` ("psk" or "cert"),
//! our certificate and key (`cert_file`, `key_file`), the CAs and CRLs its certificate is
//! checked against (`ca_files`, `crl_files`), and a second accepted PSK for rotation
//! (`accept_psk_file`).
//!
//! Files are read once per load however many peers name them (a mesh of hundreds of pairs
//! shares one certificate and one CA file).

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use meshsec_crypto::Secret;
use meshsec_ike::{LocalAuth, PeerAuth};
use meshsec_pki::{Credential, TrustStore};
use meshsec_wire::payload::Identity;
use toml::Spanned;

use super::ConfigError;
use super::keys;
use super::raw::{RawPeer, RawPeerSettings, S};
use super::validate::Ctx;

/// Our certificate expiring within this is warned about (at load and in the log).
pub const EXPIRY_WARNING_DAYS: i64 = 30;

/// Credentials already read in this load, by the files they came from.
#[derive(Default)]
pub(super) struct Cache {
    credentials: RefCell<HashMap<(String, String), Arc<Credential>>>,
    stores: RefCell<HashMap<Vec<String>, Arc<TrustStore>>>,
}

/// The method named by `auth` or `peer_auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Psk,
    Cert,
}

fn method(ctx: &Ctx<'_>, v: Option<&S>, key: &str) -> Result<Option<Method>, ConfigError> {
    match v.map(|s| (s, s.get_ref().as_str())) {
        None => Ok(None),
        Some((_, "psk")) => Ok(Some(Method::Psk)),
        Some((_, "cert")) => Ok(Some(Method::Cert)),
        Some((s, other)) => Err(ctx.at(
            s,
            key,
            format!("{other:?} is not an authentication method: use \"psk\" or \"cert\""),
        )),
    }
}

/// What [`resolve`] found.
pub(super) struct Auth {
    pub(super) local: LocalAuth,
    pub(super) peer: PeerAuth,
    /// The PSK is needed (we sign with it, or the peer does).
    pub(super) needs_psk: bool,
}

/// A peer's authentication settings. `local_id` is our identity towards it (our certificate
/// must hold it); `psk_file_key` names where the PSK comes from in errors.
pub(super) fn resolve(
    ctx: &Ctx<'_>,
    defaults: &RawPeerSettings,
    p: &RawPeer,
    local_id: &Identity<'_>,
    warnings: &mut Vec<String>,
) -> Result<Auth, ConfigError> {
    let key = |k: &str| format!("peer.{}.{k}", p.name.get_ref());
    let ours = method(ctx, setting!(defaults, p, auth), &key("auth"))?.unwrap_or(Method::Psk);
    // Mixed authentication (we sign, the peer uses a PSK, or the reverse) only when asked
    // for: `peer_auth` follows `auth` unless set.
    let theirs = method(ctx, setting!(defaults, p, peer_auth), &key("peer_auth"))?.unwrap_or(ours);
    let local = match ours {
        Method::Psk => LocalAuth::Psk,
        Method::Cert => {
            let cert = setting!(defaults, p, cert_file).ok_or_else(|| {
                ctx.at(
                    setting!(defaults, p, auth).unwrap_or(&p.name),
                    &key("cert_file"),
                    "auth = \"cert\" needs cert_file (our certificate, PEM) and key_file (its \
                     private key)",
                )
            })?;
            let key_file = setting!(defaults, p, key_file).ok_or_else(|| {
                ctx.at(
                    cert,
                    &key("key_file"),
                    "auth = \"cert\" needs key_file (the private key of cert_file, PEM, root-only)",
                )
            })?;
            let credential = credential(ctx, cert, key_file, &key)?;
            if !credential.holds(local_id) {
                return Err(ctx.at(
                    cert,
                    &key("cert_file"),
                    format!(
                        "our identity {local_id} is not in the certificate, which holds {}: \
                         peers would refuse it (issue a certificate with it as \
                         subjectAltName, or set node.identity to one it holds)",
                        credential.identities()
                    ),
                ));
            }
            let left = credential.not_after - now_unix();
            if left < 0 {
                warnings.push(format!(
                    "{}: {}: our certificate \"{}\" EXPIRED on {}; peers will refuse it",
                    ctx.path.display(),
                    key("cert_file"),
                    credential.subject,
                    meshsec_pki::show_time(credential.not_after)
                ));
            } else if left < EXPIRY_WARNING_DAYS * 86_400 {
                warnings.push(format!(
                    "{}: {}: our certificate \"{}\" expires on {} (in {} days)",
                    ctx.path.display(),
                    key("cert_file"),
                    credential.subject,
                    meshsec_pki::show_time(credential.not_after),
                    left / 86_400
                ));
            }
            LocalAuth::Certificate(credential)
        }
    };
    let peer = match theirs {
        Method::Psk => {
            // One peer's: a key accepted from every peer would be a shared key.
            if let Some(f) = &defaults.accept_psk_file {
                return Err(ctx.at(
                    f,
                    "defaults.accept_psk_file",
                    "accept_psk_file belongs to one peer (each peer has its own key): set it in \
                     that [[peer]]",
                ));
            }
            let also = match &p.accept_psk_file {
                None => Vec::new(),
                Some(f) => vec![keys::psk(ctx, f, &key("accept_psk_file"), false, warnings)?],
            };
            PeerAuth::Psk { also }
        }
        Method::Cert => {
            let cas = setting!(defaults, p, ca_files)
                .filter(|l| !l.get_ref().is_empty())
                .ok_or_else(|| {
                    ctx.at(
                        setting!(defaults, p, peer_auth)
                            .or(setting!(defaults, p, auth))
                            .unwrap_or(&p.name),
                        &key("ca_files"),
                        "certificate authentication of the peer needs ca_files (the CAs its \
                         certificate must chain to, PEM)",
                    )
                })?;
            PeerAuth::Certificate(trust_store(
                ctx,
                cas,
                setting!(defaults, p, crl_files),
                &key,
            )?)
        }
    };
    Ok(Auth {
        local,
        peer,
        needs_psk: ours == Method::Psk || theirs == Method::Psk,
    })
}

/// Seconds since the Unix epoch now.
pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn credential(
    ctx: &Ctx<'_>,
    cert: &S,
    key_file: &S,
    key: &dyn Fn(&str) -> String,
) -> Result<Arc<Credential>, ConfigError> {
    let id = (cert.get_ref().clone(), key_file.get_ref().clone());
    if let Some(c) = ctx.cache.credentials.borrow().get(&id) {
        return Ok(c.clone());
    }
    let (cert_pem, cert_shown) = keys::read_public_file(ctx, cert, &key("cert_file"))?;
    let chain = meshsec_pki::certificates_from_pem(&cert_pem)
        .map_err(|e| ctx.at(cert, &key("cert_file"), format!("{cert_shown}: {e}")))?;
    let (key_pem, key_shown) = keys::read_key_file(ctx, key_file, &key("key_file"))?;
    let key_pem = zeroize::Zeroizing::new(key_pem);
    let signing_key = meshsec_pki::key_from_pem(&key_pem)
        .map_err(|e| ctx.at(key_file, &key("key_file"), format!("{key_shown}: {e}")))?;
    let credential = Credential::new(chain, signing_key)
        .map_err(|e| ctx.at(key_file, &key("key_file"), format!("{key_shown}: {e}")))?;
    let credential = Arc::new(credential);
    ctx.cache
        .credentials
        .borrow_mut()
        .insert(id, credential.clone());
    Ok(credential)
}

fn trust_store(
    ctx: &Ctx<'_>,
    cas: &Spanned<Vec<S>>,
    crls: Option<&Spanned<Vec<S>>>,
    key: &dyn Fn(&str) -> String,
) -> Result<Arc<TrustStore>, ConfigError> {
    let crls: &[S] = crls.map(|c| c.get_ref().as_slice()).unwrap_or_default();
    let id: Vec<String> = cas
        .get_ref()
        .iter()
        .map(|s| format!("ca:{}", s.get_ref()))
        .chain(crls.iter().map(|s| format!("crl:{}", s.get_ref())))
        .collect();
    if let Some(t) = ctx.cache.stores.borrow().get(&id) {
        return Ok(t.clone());
    }
    let mut ca_ders = Vec::new();
    for f in cas.get_ref() {
        let (pem, shown) = keys::read_public_file(ctx, f, &key("ca_files"))?;
        let certs = meshsec_pki::certificates_from_pem(&pem)
            .map_err(|e| ctx.at(f, &key("ca_files"), format!("{shown}: {e}")))?;
        // Each file on its own, so that an error names it.
        TrustStore::new(&certs, &[])
            .map_err(|e| ctx.at(f, &key("ca_files"), format!("{shown}: {e}")))?;
        ca_ders.extend(certs);
    }
    let mut crl_ders = Vec::new();
    for f in crls {
        let (pem, shown) = keys::read_public_file(ctx, f, &key("crl_files"))?;
        let list = meshsec_pki::crls_from_pem(&pem)
            .map_err(|e| ctx.at(f, &key("crl_files"), format!("{shown}: {e}")))?;
        TrustStore::new(&[], &list)
            .map_err(|e| ctx.at(f, &key("crl_files"), format!("{shown}: {e}")))?;
        crl_ders.extend(list);
    }
    let store = TrustStore::new(&ca_ders, &crl_ders)
        .map_err(|e| ctx.err(cas.span(), &key("ca_files"), e))?;
    let store = Arc::new(store);
    ctx.cache.stores.borrow_mut().insert(id, store.clone());
    Ok(store)
}

impl super::Peer {
    /// Whether `self` and `other` authenticate alike (same keys, certificates, CAs and CRLs):
    /// when they do not, a reload hands the new credentials to the engine for the next
    /// authentication, and established SAs stay (unless a CRL now revokes the peer).
    pub fn same_credentials(&self, other: &super::Peer) -> bool {
        same(self, other)
    }
}

fn same(a: &super::Peer, b: &super::Peer) -> bool {
    let same_local = match (&a.local_auth, &b.local_auth) {
        (LocalAuth::Psk, LocalAuth::Psk) => true,
        (LocalAuth::Certificate(x), LocalAuth::Certificate(y)) => x == y,
        _ => false,
    };
    let keys_eq = |x: &[Secret], y: &[Secret]| {
        x.len() == y.len() && x.iter().zip(y).all(|(p, q)| p.expose() == q.expose())
    };
    let same_peer = match (&a.peer_auth, &b.peer_auth) {
        (PeerAuth::Psk { also: x }, PeerAuth::Psk { also: y }) => keys_eq(x, y),
        (PeerAuth::Certificate(x), PeerAuth::Certificate(y)) => x == y,
        _ => false,
    };
    same_local && same_peer && a.psk.expose() == b.psk.expose()
}
