//! `meshsec pki`: a mesh CA in one command, a host certificate per command, CRLs, and a
//! listing with expiry — so that a mesh of a hundred hosts gets its credentials in a hundred
//! commands. Certificates are made by rcgen; the CA key stays where the operator puts it.
//!
//! What is issued follows RFC 4945 §5.1.3: host certificates carry their name as a dNSName
//! and their addresses as iPAddress subjectAltNames (the IKE identities `fqdn:NAME` and the
//! address), KeyUsage digitalSignature, and no ExtendedKeyUsage (which every IKE peer
//! accepts); CA certificates are CA:TRUE with keyCertSign and cRLSign.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Subcommand, ValueEnum};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType, IsCa, Issuer,
    KeyIdMethod, KeyPair, KeyUsagePurpose, RevokedCertParams, SanType, SerialNumber,
};
use time::{Duration, OffsetDateTime};
use x509_parser::prelude::FromDer;

/// The key types `meshsec pki` makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KeyType {
    /// ECDSA on P-256 (the default: small and fast).
    EcdsaP256,
    /// ECDSA on P-384.
    EcdsaP384,
    /// ECDSA on P-521.
    EcdsaP521,
    /// Ed25519.
    Ed25519,
    /// RSA, 3072 bits.
    Rsa3072,
}

/// `meshsec pki …`
#[derive(Debug, Subcommand)]
pub enum PkiCmd {
    /// Create a CA: OUT/ca.pem (certificate) and OUT/ca.key (private key, mode 600). With
    /// --issuer-cert/--issuer-key, an intermediate CA signed by that CA.
    Ca {
        /// Directory to write to (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// The CA's common name.
        #[arg(long, default_value = "meshsec mesh CA")]
        name: String,
        /// Key type.
        #[arg(long, value_enum, default_value_t = KeyType::EcdsaP256)]
        key_type: KeyType,
        /// Validity in days.
        #[arg(long, default_value_t = 3650)]
        days: i64,
        /// Sign with this CA instead of self-signing (an intermediate CA).
        #[arg(long, requires = "issuer_key")]
        issuer_cert: Option<PathBuf>,
        /// The private key of --issuer-cert.
        #[arg(long, requires = "issuer_cert")]
        issuer_key: Option<PathBuf>,
    },
    /// Issue a host certificate for NAME: OUT/NAME.pem (certificate, then the CA chain up to
    /// but without the root) and OUT/NAME.key (mode 600). Subject CN=NAME; subjectAltNames:
    /// NAME (dNSName), every --address (iPAddress), every --email (rfc822Name).
    ///
    /// Example: meshsec pki issue --ca /etc/meshsec/ca/ca.pem --ca-key /etc/meshsec/ca/ca.key
    /// --address 192.0.2.11 --out /etc/meshsec/certs h1
    Issue {
        /// The host's name (its IKE identity fqdn:NAME).
        name: String,
        /// The CA certificate (PEM; an intermediate's file may hold its own chain after it).
        #[arg(long)]
        ca: PathBuf,
        /// The CA's private key.
        #[arg(long)]
        ca_key: PathBuf,
        /// An address of the host (repeat for several).
        #[arg(long)]
        address: Vec<std::net::IpAddr>,
        /// An e-mail identity (rfc822Name) to include.
        #[arg(long)]
        email: Vec<String>,
        /// Directory to write to.
        #[arg(long)]
        out: PathBuf,
        /// Key type.
        #[arg(long, value_enum, default_value_t = KeyType::EcdsaP256)]
        key_type: KeyType,
        /// Validity in days.
        #[arg(long, default_value_t = 365)]
        days: i64,
        /// First day of validity (YYYY-MM-DD; default: now).
        #[arg(long)]
        valid_from: Option<String>,
        /// Leave digitalSignature out of KeyUsage (a certificate IKE must refuse; tests).
        #[arg(long, hide = true)]
        no_digital_signature: bool,
    },
    /// Revoke certificates (PEM files, or serial numbers in hex): writes the CA's CRL to OUT
    /// with them added to what a CRL already at OUT revokes (its number increases).
    Revoke {
        /// The CA certificate.
        #[arg(long)]
        ca: PathBuf,
        /// The CA's private key.
        #[arg(long)]
        ca_key: PathBuf,
        /// Where to write the CRL (PEM).
        #[arg(long)]
        out: PathBuf,
        /// Certificates (files) or serial numbers (hex, e.g. 3a:f2:…) to revoke.
        revoke: Vec<String>,
    },
    /// List certificates: subject, identities, issuer, validity and days left (files, or
    /// every *.pem in a directory).
    List {
        /// Files or directories.
        paths: Vec<PathBuf>,
    },
}

/// Runs a `meshsec pki` subcommand.
pub fn run(cmd: PkiCmd) -> Result<()> {
    match cmd {
        PkiCmd::Ca {
            out,
            name,
            key_type,
            days,
            issuer_cert,
            issuer_key,
        } => {
            let key = generate(key_type)?;
            let mut params = CertificateParams::default();
            params.distinguished_name.push(DnType::CommonName, &name);
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.key_usages = vec![
                KeyUsagePurpose::KeyCertSign,
                KeyUsagePurpose::CrlSign,
                KeyUsagePurpose::DigitalSignature,
            ];
            validity(&mut params, None, days)?;
            params.serial_number = Some(random_serial()?);
            let (pem, chain) = match (issuer_cert, issuer_key) {
                (Some(c), Some(k)) => {
                    let (issuer, chain) = load_issuer(&c, &k)?;
                    (params.signed_by(&key, &issuer)?.pem(), chain)
                }
                _ => (params.self_signed(&key)?.pem(), String::new()),
            };
            create_dir(&out)?;
            write_new(
                &out.join("ca.pem"),
                format!("{pem}{chain}").as_bytes(),
                0o644,
            )?;
            write_new(&out.join("ca.key"), key.serialize_pem().as_bytes(), 0o600)?;
            println!(
                "CA \"CN={name}\" ({key_type:?}, {days} days): {} and {} (keep the key offline \
                 or root-only)",
                out.join("ca.pem").display(),
                out.join("ca.key").display()
            );
        }
        PkiCmd::Issue {
            name,
            ca,
            ca_key,
            address,
            email,
            out,
            key_type,
            days,
            valid_from,
            no_digital_signature,
        } => {
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
                || name.starts_with('.')
            {
                bail!("{name:?} is not a host name (letters, digits, '.', '-', '_')");
            }
            let (issuer, chain) = load_issuer(&ca, &ca_key)?;
            let key = generate(key_type)?;
            let mut params = CertificateParams::default();
            params.distinguished_name.push(DnType::CommonName, &name);
            params.subject_alt_names.push(SanType::DnsName(
                name.clone()
                    .try_into()
                    .with_context(|| format!("{name:?} is not a DNS name"))?,
            ));
            for a in &address {
                params.subject_alt_names.push(SanType::IpAddress(*a));
            }
            for e in &email {
                params.subject_alt_names.push(SanType::Rfc822Name(
                    e.clone()
                        .try_into()
                        .with_context(|| format!("{e:?} is not an e-mail address"))?,
                ));
            }
            params.is_ca = IsCa::ExplicitNoCa;
            params.key_usages = if no_digital_signature {
                vec![KeyUsagePurpose::KeyEncipherment]
            } else {
                vec![KeyUsagePurpose::DigitalSignature]
            };
            params.use_authority_key_identifier_extension = true;
            validity(&mut params, valid_from.as_deref(), days)?;
            params.serial_number = Some(random_serial()?);
            let cert = params.signed_by(&key, &issuer)?;
            create_dir(&out)?;
            let cert_path = out.join(format!("{name}.pem"));
            let key_path = out.join(format!("{name}.key"));
            write_new(
                &cert_path,
                format!("{}{chain}", cert.pem()).as_bytes(),
                0o644,
            )?;
            write_new(&key_path, key.serialize_pem().as_bytes(), 0o600)?;
            let sans: Vec<String> = std::iter::once(format!("fqdn:{name}"))
                .chain(address.iter().map(ToString::to_string))
                .chain(email.iter().map(|e| format!("email:{e}")))
                .collect();
            println!(
                "{name} ({key_type:?}, {days} days; identities {}): {} and {}",
                sans.join(", "),
                cert_path.display(),
                key_path.display()
            );
        }
        PkiCmd::Revoke {
            ca,
            ca_key,
            out,
            revoke,
        } => {
            let (issuer, _) = load_issuer(&ca, &ca_key)?;
            let now = OffsetDateTime::now_utc();
            // What the CRL at OUT already revokes stays revoked; its number only grows.
            let (mut revoked, previous) = existing_crl(&out)?;
            for r in &revoke {
                let serial = serial_of(r)?;
                if revoked
                    .iter()
                    .all(|e: &RevokedCertParams| e.serial_number != serial)
                {
                    revoked.push(RevokedCertParams {
                        serial_number: serial,
                        revocation_time: now,
                        reason_code: None,
                        invalidity_date: None,
                    });
                }
            }
            let number = u64::try_from(now.unix_timestamp())
                .unwrap_or(0)
                .max(previous.saturating_add(1));
            let count = revoked.len();
            let params = CertificateRevocationListParams {
                this_update: now,
                next_update: now + Duration::days(30),
                crl_number: SerialNumber::from(number),
                issuing_distribution_point: None,
                revoked_certs: revoked,
                key_identifier_method: KeyIdMethod::Sha256,
            };
            let crl = params.signed_by(&issuer)?;
            write_replace(&out, crl.pem()?.as_bytes())?;
            println!(
                "CRL number {number} revoking {count} certificate(s) ({} named now): {}",
                revoke.len(),
                out.display()
            );
        }
        PkiCmd::List { paths } => list(&paths)?,
    }
    Ok(())
}

fn generate(t: KeyType) -> Result<KeyPair> {
    Ok(match t {
        KeyType::EcdsaP256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?,
        KeyType::EcdsaP384 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384)?,
        KeyType::EcdsaP521 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P521_SHA512)?,
        KeyType::Ed25519 => KeyPair::generate_for(&rcgen::PKCS_ED25519)?,
        KeyType::Rsa3072 => {
            KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_3072)?
        }
    })
}

fn random_serial() -> Result<SerialNumber> {
    let mut b = [0u8; 16];
    meshsec_crypto::rng::Random::fill(&mut meshsec_crypto::rng::SystemRandom::new(), &mut b)
        .map_err(|_| anyhow::anyhow!("no random numbers"))?;
    // Positive INTEGER.
    b[0] &= 0x7f;
    Ok(SerialNumber::from_slice(&b))
}

fn validity(params: &mut CertificateParams, from: Option<&str>, days: i64) -> Result<()> {
    if days < 1 {
        bail!("--days must be at least 1");
    }
    let start = match from {
        None => OffsetDateTime::now_utc() - Duration::minutes(5),
        Some(d) => {
            let format = time::macros::format_description!("[year]-[month]-[day]");
            time::Date::parse(d, format)
                .with_context(|| format!("--valid-from {d:?}: expected YYYY-MM-DD"))?
                .midnight()
                .assume_utc()
        }
    };
    params.not_before = start;
    params.not_after = start + Duration::days(days);
    Ok(())
}

/// The CA to sign with, and the chain to append to what it signs (the CA file's certificates
/// minus a self-signed root).
fn load_issuer(cert: &Path, key: &Path) -> Result<(Issuer<'static, KeyPair>, String)> {
    let cert_pem = std::fs::read_to_string(cert).with_context(|| cert.display().to_string())?;
    let key_pem = zeroize::Zeroizing::new(
        std::fs::read_to_string(key).with_context(|| key.display().to_string())?,
    );
    let key_pair = KeyPair::from_pem(&key_pem)
        .with_context(|| format!("{}: not a PEM private key", key.display()))?;
    let ders = meshsec_pki::certificates_from_pem(cert_pem.as_bytes())
        .map_err(|e| anyhow::anyhow!("{}: {e}", cert.display()))?;
    let first = ders.first().context("no certificate")?;
    let issuer = Issuer::from_ca_cert_der(&first.clone().into(), key_pair).with_context(|| {
        format!(
            "{}: not a CA certificate rcgen can sign with",
            cert.display()
        )
    })?;
    // The chain a peer needs: this CA and its own issuers, except a self-signed root (peers
    // have it as their trust anchor).
    let mut chain = String::new();
    for der in &ders {
        let (_, c) = x509_parser::certificate::X509Certificate::from_der(der)
            .map_err(|e| anyhow::anyhow!("{}: {e}", cert.display()))?;
        if c.subject() != c.issuer() {
            chain.push_str(&pem_of(der));
        }
    }
    Ok((issuer, chain))
}

fn pem_of(der: &[u8]) -> String {
    pem::encode(&pem::Pem::new("CERTIFICATE", der.to_vec()))
}

/// The entries and the number of the CRL at `path`, if there is one.
fn existing_crl(path: &Path) -> Result<(Vec<RevokedCertParams>, u64)> {
    let Ok(pem) = std::fs::read(path) else {
        return Ok((Vec::new(), 0));
    };
    let der =
        meshsec_pki::crls_from_pem(&pem).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let der = der.first().context("no CRL")?;
    let (_, crl) =
        x509_parser::parse_x509_crl(der).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let number = crl
        .crl_number()
        .and_then(|n| u64::try_from(n).ok())
        .unwrap_or(0);
    let entries = crl
        .iter_revoked_certificates()
        .map(|r| RevokedCertParams {
            serial_number: SerialNumber::from_slice(r.raw_serial()),
            revocation_time: OffsetDateTime::from_unix_timestamp(r.revocation_date.timestamp())
                .unwrap_or(OffsetDateTime::UNIX_EPOCH),
            reason_code: None,
            invalidity_date: None,
        })
        .collect();
    Ok((entries, number))
}

fn serial_of(s: &str) -> Result<SerialNumber> {
    let path = Path::new(s);
    if path.exists() {
        let pem = std::fs::read(path).with_context(|| s.to_string())?;
        let ders =
            meshsec_pki::certificates_from_pem(&pem).map_err(|e| anyhow::anyhow!("{s}: {e}"))?;
        let der = ders.first().context("no certificate")?;
        let (_, c) = x509_parser::certificate::X509Certificate::from_der(der)
            .map_err(|e| anyhow::anyhow!("{s}: {e}"))?;
        return Ok(SerialNumber::from_slice(c.raw_serial()));
    }
    let hex: String = s.chars().filter(|c| *c != ':').collect();
    let bytes = hex::decode(&hex)
        .with_context(|| format!("{s:?} is neither a certificate file nor a hex serial"))?;
    Ok(SerialNumber::from_slice(&bytes))
}

fn list(paths: &[PathBuf]) -> Result<()> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut in_dir: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| p.display().to_string())?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|e| e == "pem" || e == "crt"))
                .collect();
            in_dir.sort();
            files.extend(in_dir);
        } else {
            files.push(p.clone());
        }
    }
    let now = crate::config::now_unix();
    for f in files {
        let pem = std::fs::read(&f).with_context(|| f.display().to_string())?;
        let Ok(ders) = meshsec_pki::certificates_from_pem(&pem) else {
            continue;
        };
        for (i, der) in ders.iter().enumerate() {
            let Ok((_, c)) = x509_parser::certificate::X509Certificate::from_der(der) else {
                println!("{} [{i}]: not a certificate", f.display());
                continue;
            };
            let not_after = c.validity().not_after.timestamp();
            let days = (not_after - now).div_euclid(86_400);
            let state = if now > not_after {
                "EXPIRED".to_string()
            } else if now < c.validity().not_before.timestamp() {
                "NOT YET VALID".to_string()
            } else if days < crate::config::EXPIRY_WARNING_DAYS {
                format!("expires in {days} days (renew)")
            } else {
                format!("{days} days left")
            };
            let sans: Vec<String> = c
                .subject_alternative_name()
                .ok()
                .flatten()
                .map(|e| {
                    e.value
                        .general_names
                        .iter()
                        .map(ToString::to_string)
                        .collect()
                })
                .unwrap_or_default();
            println!(
                "{}{}: \"{}\"{}{}, issuer \"{}\", valid {} .. {}: {state}",
                f.display(),
                if ders.len() > 1 {
                    format!(" [{i}]")
                } else {
                    String::new()
                },
                c.subject(),
                if c.is_ca() { " (CA)" } else { "" },
                if sans.is_empty() {
                    String::new()
                } else {
                    format!(" [{}]", sans.join(", "))
                },
                c.issuer(),
                c.validity().not_before,
                c.validity().not_after
            );
        }
    }
    Ok(())
}

fn create_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))
}

/// Writes a new file with `mode`; refuses to overwrite (a CA key is not replaced by accident).
fn write_new(path: &Path, content: &[u8], mode: u32) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| {
            format!(
                "cannot create {} (it is never overwritten: move the old one away first)",
                path.display()
            )
        })?;
    f.write_all(content)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Replaces a file atomically (a CRL is reissued whole).
fn write_replace(path: &Path, content: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    write_new(&tmp, content, 0o644)?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))
}
