//! The Debian package as an operator gets it: `scripts/build-deb` builds it (cargo-deb, release
//! build), it is unpacked into a scratch root (`dpkg-deb -x`, never installed: the host's /etc
//! and /usr are not touched) and each part is used there — the stripped binary runs, the example
//! configuration passes `check-config`, the man pages render, bash completion loads and
//! completes, /etc/meshsec is created root-only, and the systemd unit is where systemd looks
//! and hardened (`systemd-analyze security` exposure at most 3.0).
//!
//! Root only (key files must be root-owned; the package's files are root's); skipped
//! otherwise. The package is built once for all the tests here.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::LazyLock;

const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The highest `systemd-analyze security` exposure the unit may have ("OK" ends at 4.9).
const MAX_EXPOSURE: f64 = 3.0;

/// The built package and the scratch root it is unpacked into.
struct Package {
    deb: PathBuf,
    root: PathBuf,
    /// A scratch directory for the tests' own files.
    scratch: PathBuf,
}

static PACKAGE: LazyLock<Package> = LazyLock::new(build);

fn build() -> Package {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let started = std::time::Instant::now();
    // --fast: lighter compression; what is inside is the same.
    let out = Command::new(repo.join("scripts/build-deb"))
        .arg("--fast")
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "scripts/build-deb failed:\n{stdout}{}",
        text(&out.stderr)
    );
    let deb = PathBuf::from(stdout.trim());
    assert!(deb.is_file(), "build-deb printed {stdout:?}, not a .deb");
    println!(
        "built {} in {:.1} s",
        deb.display(),
        started.elapsed().as_secs_f64()
    );

    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("package");
    let _ = std::fs::remove_dir_all(&dir);
    let (root, scratch) = (dir.join("root"), dir.join("scratch"));
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(&scratch).unwrap();
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root));
    Package { deb, root, scratch }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs `cmd`, which must succeed; returns its stdout.
fn run(cmd: &mut Command) -> String {
    let out = output(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn output(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// The package, or `None` (with the reason printed) when not root.
fn package() -> Option<&'static Package> {
    let uid = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .unwrap_or(u32::MAX);
    if uid != 0 {
        println!("skipped: needs root (the package's files and the key files are root's)");
        return None;
    }
    Some(&PACKAGE)
}

impl Package {
    fn path(&self, in_package: &str) -> PathBuf {
        self.root.join(in_package.trim_start_matches('/'))
    }

    fn binary(&self) -> Command {
        Command::new(self.path("/usr/sbin/meshsec"))
    }

    /// `dpkg-deb -c`: (mode string, owner, path without the leading `.`) per entry.
    fn listing(&self) -> Vec<(String, String, String)> {
        run(Command::new("dpkg-deb").arg("-c").arg(&self.deb))
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                let path = f[5].trim_start_matches('.').trim_end_matches('/');
                (f[0].to_string(), f[1].to_string(), path.to_string())
            })
            .collect()
    }

    /// One control file (`control`, `postinst`, …) of the package.
    fn control(&self, name: &str) -> String {
        run(Command::new("dpkg-deb").arg("-I").arg(&self.deb).arg(name))
    }
}

#[test]
fn the_package_holds_every_file_root_owned_with_the_binary_in_usr_sbin() {
    let Some(p) = package() else { return };
    let control = p.control("control");
    assert!(control.contains("Package: meshsec\n"), "{control}");
    assert!(
        control.contains(&format!("Version: {VERSION}-")),
        "{control}"
    );
    assert!(control.contains("Depends: libc6"), "{control}");

    let listing = p.listing();
    for (mode, owner, path) in &listing {
        assert_eq!(owner, "0/0", "{path} is not root's");
        let (group, other) = (mode.as_bytes()[5], mode.as_bytes()[8]);
        assert!(
            group != b'w' && other != b'w',
            "{path} is writable by others than root: {mode}"
        );
    }
    let find = |path: &str| {
        listing
            .iter()
            .find(|(_, _, p)| p == path)
            .unwrap_or_else(|| panic!("{path} not in the package"))
    };
    assert_eq!(find("/usr/sbin/meshsec").0, "-rwxr-xr-x");
    for path in [
        "/usr/share/doc/meshsec/examples/meshsec.toml",
        "/usr/share/doc/meshsec/config.md",
        "/usr/share/doc/meshsec/mesh.md",
        "/usr/share/doc/meshsec/copyright",
        "/usr/share/bash-completion/completions/meshsec",
        "/usr/share/zsh/vendor-completions/_meshsec",
        "/usr/share/fish/vendor_completions.d/meshsec.fish",
    ] {
        assert_eq!(find(path).0, "-rw-r--r--", "{path}");
    }
    let zsh = std::fs::read_to_string(p.path("/usr/share/zsh/vendor-completions/_meshsec"));
    assert!(
        zsh.unwrap().starts_with("#compdef meshsec"),
        "zsh completion"
    );
}

#[test]
fn the_packaged_binary_runs_and_is_stripped() {
    let Some(p) = package() else { return };
    let out = run(p.binary().arg("--version"));
    assert!(out.starts_with(&format!("meshsec {VERSION} ")), "{out}");

    let sections = elf_sections(&std::fs::read(p.path("/usr/sbin/meshsec")).unwrap());
    assert!(sections.iter().any(|s| s == ".text"), "{sections:?}");
    // What `strip` removes (the line tables of the release profile included); `file` says
    // "stripped" without them. (`.debug_gdb_scripts` is loaded data, not debug information.)
    let unstripped: Vec<_> = sections
        .iter()
        .filter(|s| [".symtab", ".strtab", ".debug_info", ".debug_line"].contains(&s.as_str()))
        .collect();
    assert!(unstripped.is_empty(), "not stripped: {unstripped:?}");
}

/// The section names of a 64-bit little-endian ELF file.
fn elf_sections(elf: &[u8]) -> Vec<String> {
    assert_eq!(
        &elf[..6],
        b"\x7fELF\x02\x01",
        "not a 64-bit little-endian ELF file"
    );
    let u16_at = |o: usize| u16::from_le_bytes(elf[o..o + 2].try_into().unwrap()) as usize;
    let u32_at = |o: usize| u32::from_le_bytes(elf[o..o + 4].try_into().unwrap()) as usize;
    let u64_at = |o: usize| u64::from_le_bytes(elf[o..o + 8].try_into().unwrap()) as usize;
    // e_shoff, e_shentsize, e_shnum, e_shstrndx; in a section header sh_name, sh_offset.
    let (table, size, count, names) = (u64_at(0x28), u16_at(0x3a), u16_at(0x3c), u16_at(0x3e));
    let header = |i: usize| table + i * size;
    let strings = u64_at(header(names) + 0x18);
    (0..count)
        .map(|i| {
            let name = &elf[strings + u32_at(header(i))..];
            let end = name.iter().position(|&b| b == 0).unwrap();
            String::from_utf8_lossy(&name[..end]).into_owned()
        })
        .collect()
}

#[test]
fn the_example_configuration_passes_check_config() {
    let Some(p) = package() else { return };
    // As it would be in /etc/meshsec: the configuration, and the key files beside it that
    // its relative psk_file paths name.
    let etc = p.scratch.join("etc-meshsec");
    std::fs::create_dir_all(etc.join("keys")).unwrap();
    std::fs::set_permissions(&etc, std::fs::Permissions::from_mode(0o700)).unwrap();
    let config = etc.join("meshsec.toml");
    std::fs::copy(
        p.path("/usr/share/doc/meshsec/examples/meshsec.toml"),
        &config,
    )
    .unwrap();
    for (peer, key) in [
        ("beta", "a long enough pre-shared key for beta"),
        ("gamma", "another long enough key, for gamma"),
    ] {
        let file = etc.join("keys").join(format!("{peer}.psk"));
        std::fs::write(&file, format!("{key}\n")).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let out = run(p.binary().arg("check-config").arg("-c").arg(&config));
    assert!(out.contains(": OK\n"), "{out}");
    assert!(out.contains("\npeer beta "), "{out}");
    assert!(out.contains("\npeer gamma "), "{out}");
}

#[test]
fn the_man_pages_render() {
    let Some(p) = package() else { return };
    let man1 = p.path("/usr/share/man/man1");
    let mut pages: Vec<String> = std::fs::read_dir(&man1)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    // One per visible subcommand, nested ones too; none for the hidden demo helpers.
    for page in ["meshsec.1.gz", "meshsec-run.1.gz", "meshsec-pki-issue.1.gz"] {
        assert!(pages.iter().any(|p| p == page), "{page} not in {pages:?}");
    }
    assert!(!pages.iter().any(|p| p.contains("demo-")), "{pages:?}");

    for page in &pages {
        let shown = run(Command::new("man")
            .arg("-l")
            .arg(man1.join(page))
            .env("MANWIDTH", "80")
            // man's seccomp sandbox fails in some containers; the page is ours.
            .env("MAN_DISABLE_SECCOMP", "1"));
        assert!(shown.contains("NAME"), "{page}:\n{shown}");
        assert!(shown.contains("meshsec"), "{page}:\n{shown}");
        if page == "meshsec.1.gz" {
            assert!(shown.contains("meshsec-status(1)"), "{shown}");
        }
    }
}

#[test]
fn bash_completion_loads_and_completes_subcommands() {
    let Some(p) = package() else { return };
    let script = p.path("/usr/share/bash-completion/completions/meshsec");
    let out = run(Command::new("bash")
        .arg("-c")
        .arg(
            "source \"$0\" && complete -p meshsec && \
         COMP_WORDS=(meshsec pki i) COMP_CWORD=2 && _meshsec meshsec i pki && \
         echo \"completed: ${COMPREPLY[*]}\"",
        )
        .arg(&script));
    assert!(out.contains("-F _meshsec meshsec"), "{out}");
    assert!(out.contains("completed: issue"), "{out}");
}

#[test]
fn etc_meshsec_is_created_root_only_by_postinst() {
    let Some(p) = package() else { return };
    // cargo-deb packages no empty directory: postinst makes it (when missing).
    let postinst = p.control("postinst");
    assert!(
        postinst.contains("install -d -m 0700 /etc/meshsec"),
        "{postinst}"
    );
    assert!(
        p.listing()
            .iter()
            .all(|(_, _, path)| !path.starts_with("/etc")),
        "the package ships files in /etc"
    );
}

#[test]
fn the_unit_is_installed_and_hardened() {
    let Some(p) = package() else { return };
    let unit = p.path("/usr/lib/systemd/system/meshsec.service");
    let unit_text = std::fs::read_to_string(&unit).unwrap();
    for line in [
        "Type=notify\n",
        "NotifyAccess=main\n",
        "RuntimeDirectory=meshsec\n",
    ] {
        assert!(unit_text.contains(line), "{line} not in the unit");
    }
    // Every program it runs is in the package.
    for exec in unit_text.lines().filter(|l| l.starts_with("Exec")) {
        let program = exec.split('=').nth(1).unwrap().split(' ').next().unwrap();
        let program = program.trim_start_matches(['-', '+', '!', '@', ':']);
        assert!(
            p.path(program).is_file(),
            "{exec}: {program} not in the package"
        );
    }

    let Ok(out) = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(&unit)
        .output()
    else {
        println!("note: systemd-analyze not found; the unit's exposure is not checked");
        return;
    };
    let report = text_of(&out);
    let level = report
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for meshsec.service: ")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{report}"));
    println!("systemd-analyze security: exposure {level}");
    assert!(
        level <= MAX_EXPOSURE,
        "exposure {level} > {MAX_EXPOSURE}:\n{report}"
    );
}

fn text_of(out: &Output) -> String {
    format!("{}{}", text(&out.stdout), text(&out.stderr))
}
