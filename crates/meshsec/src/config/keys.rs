//! Key files: read only if root alone can have written them (the file and its directory),
//! without following symbolic links; and the per-pair keys of a mesh, derived from one secret.

use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use meshsec_crypto::Secret;

use super::ConfigError;
use super::raw::S;
use super::validate::Ctx;

/// PSKs with fewer non-blank characters are refused unless `allow_weak_psk = true`.
const MIN_PSK_LEN: usize = 20;
/// PSKs made of fewer different characters (`aaaa…`, `abab…`) are refused the same way.
const MIN_PSK_DISTINCT: usize = 6;

/// Why a key is too weak to use without `allow_weak_psk`: too few non-blank characters, or
/// too few different ones (a key of 24 spaces, or of one letter repeated, is long and
/// guessable at once).
fn psk_weakness(content: &[u8]) -> Option<String> {
    let solid = content.iter().filter(|b| !b.is_ascii_whitespace()).count();
    if solid < MIN_PSK_LEN {
        return Some(format!(
            "{solid} non-blank characters; at least {MIN_PSK_LEN} are required"
        ));
    }
    let distinct = content
        .iter()
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    (distinct < MIN_PSK_DISTINCT).then(|| {
        format!("only {distinct} different characters; at least {MIN_PSK_DISTINCT} are required")
    })
}

/// The pre-shared key: a file readable by root only, its content minus a final newline.
pub(super) fn psk(
    ctx: &Ctx<'_>,
    file: &S,
    key: &str,
    allow_weak: bool,
    warnings: &mut Vec<String>,
) -> Result<Secret, ConfigError> {
    let (content, shown) = read_key_file(ctx, file, key)?;
    if let Some(why) = psk_weakness(&content) {
        if !allow_weak {
            return Err(ctx.at(file, key, format!(
                "the key in {shown} has {why} (make one with `meshsec genpsk -o {shown}`, or set allow_weak_psk = true)"
            )));
        }
        warnings.push(format!(
            "{}: {key}: weak pre-shared key ({why}) allowed by allow_weak_psk",
            ctx.path.display()
        ));
    }
    Ok(Secret::new(content))
}

/// A file that could not be read, with the likely fix: key files and their directories are
/// root-only, so "permission denied" for anyone else means "run this as root".
pub(super) fn io_problem(shown: &str, e: &std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::PermissionDenied && crate::daemon::os::effective_uid() != 0 {
        format!(
            "{shown}: {e} (key and configuration files are root-only: run meshsec as root, e.g. with sudo)"
        )
    } else {
        format!("{shown}: {e}")
    }
}

/// The content of a file others may read but only root may change (certificates, CAs, CRLs:
/// whoever can write a CA file can make us trust anyone) and its path as shown in errors.
pub(super) fn read_public_file(
    ctx: &Ctx<'_>,
    file: &S,
    key: &str,
) -> Result<(Vec<u8>, String), ConfigError> {
    let (mut opened, meta, shown) = open_checked(ctx, file, key)?;
    if meta.mode() & 0o022 != 0 || meta.uid() != 0 {
        return Err(ctx.at(file, key, format!(
            "{shown} may be changed by others than root (owner uid {}, mode {:03o}): chown root {shown}; chmod go-w {shown}",
            meta.uid(), meta.mode() & 0o777
        )));
    }
    let mut content = Vec::new();
    std::io::Read::read_to_end(&mut opened, &mut content)
        .map_err(|e| ctx.at(file, key, io_problem(&shown, &e)))?;
    Ok((content, shown))
}

/// Opens a configured file (relative to the configuration's directory) without following a
/// symbolic link, after checking that only root may write to its directory; returns it with
/// its metadata (fstat: the file checked is the file read) and its path as shown in errors.
fn open_checked(
    ctx: &Ctx<'_>,
    file: &S,
    key: &str,
) -> Result<(std::fs::File, std::fs::Metadata, String), ConfigError> {
    let path = resolve(ctx, file);
    let shown = path.display().to_string();
    check_directory(ctx, file, key, &path, &shown)?;
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => ctx.at(
                file,
                key,
                format!("{shown} is a symbolic link; name the file itself"),
            ),
            _ => ctx.at(file, key, io_problem(&shown, &e)),
        })?;
    let meta = opened
        .metadata()
        .map_err(|e| ctx.at(file, key, io_problem(&shown, &e)))?;
    if !meta.is_file() {
        return Err(ctx.at(file, key, format!("{shown} is not a regular file")));
    }
    Ok((opened, meta, shown))
}

/// `file` relative to the configuration's directory.
fn resolve(ctx: &Ctx<'_>, file: &S) -> PathBuf {
    let mut path = PathBuf::from(file.get_ref());
    if path.is_relative()
        && let Some(dir) = ctx.path.parent()
    {
        path = dir.join(path);
    }
    path
}

/// The directory of a key or certificate must be root's alone: whoever may write there may
/// swap the file for their own.
fn check_directory(
    ctx: &Ctx<'_>,
    file: &S,
    key: &str,
    path: &Path,
    shown: &str,
) -> Result<(), ConfigError> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let dir = dir.unwrap_or(Path::new("."));
    let dir_meta = std::fs::metadata(dir)
        .map_err(|e| ctx.at(file, key, io_problem(&dir.display().to_string(), &e)))?;
    if dir_meta.mode() & 0o022 != 0 || dir_meta.uid() != 0 {
        return Err(ctx.at(file, key, format!(
            "{shown} is in {}, which is writable by others than root (owner uid {}, mode {:03o}): keep key files in a root-owned directory (chmod go-w {})",
            dir.display(), dir_meta.uid(), dir_meta.mode() & 0o777, dir.display()
        )));
    }
    Ok(())
}

/// The content of a key file (minus a final newline) and its path as shown in errors. The
/// file must be a regular file owned by root and readable by root only, in a directory only
/// root may write to.
pub(super) fn read_key_file(
    ctx: &Ctx<'_>,
    file: &S,
    key: &str,
) -> Result<(Vec<u8>, String), ConfigError> {
    let (mut opened, meta, shown) = open_checked(ctx, file, key)?;
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
        .map_err(|e| ctx.at(file, key, io_problem(&shown, &e)))?;
    while content.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        content.pop();
    }
    if content.is_empty() {
        return Err(ctx.at(file, key, format!("{shown} is empty")));
    }
    Ok((content, shown))
}
