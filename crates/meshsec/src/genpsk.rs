//! `meshsec genpsk`: a random pre-shared key, so that nobody invents one by hand (the keys
//! people invent are what dictionary attacks on IKE's PSK authentication guess first).
//! 32 octets from the system's CSPRNG, written as 64 hex digits: 256 bits, text that any
//! peer's configuration takes as it is (strongSwan's `secret = "…"` included).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{Context, Result, anyhow};
use meshsec_crypto::rng::{Random, SystemRandom};
use zeroize::Zeroizing;

/// Random octets in a key.
const KEY_OCTETS: usize = 32;

/// A new key, as the text of a key file (without the newline).
pub fn psk() -> Result<Zeroizing<String>> {
    let mut key = Zeroizing::new([0u8; KEY_OCTETS]);
    SystemRandom::new()
        .fill(key.as_mut_slice())
        .map_err(|e| anyhow!("cannot get random octets: {e}"))?;
    Ok(Zeroizing::new(hex::encode(key.as_slice())))
}

/// Writes a new key to `path`, readable by its owner only (the daemon wants root's), never
/// over an existing file unless `force`.
pub fn write(path: &Path, force: bool) -> Result<()> {
    let key = psk()?;
    let mut options = std::fs::OpenOptions::new();
    // Never through a symbolic link: with --force, root would truncate whatever it names.
    options
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let mut file = options.open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => anyhow!(
            "{} exists; not overwritten (a peer may use it): pass --force to replace it",
            path.display()
        ),
        _ => anyhow!("cannot create {}: {e}", path.display()),
    })?;
    // An existing file keeps its mode when truncated: make it root-only here too.
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .with_context(|| format!("cannot chmod 600 {}", path.display()))?;
    file.write_all(key.as_bytes())
        .and_then(|()| file.write_all(b"\n"))
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// `meshsec genpsk [-o FILE] [--force]`.
pub fn run(output: Option<&Path>, force: bool) -> Result<()> {
    match output {
        None => println!("{}", psk()?.as_str()),
        Some(path) => {
            write(path, force)?;
            println!(
                "{}: a new 256-bit pre-shared key (mode 600); give the peer the same key over \
                 a channel you trust, and name the file in psk_file",
                path.display()
            );
        }
    }
    Ok(())
}
