//! `cargo xtask dist`: the Debian package `target/dist/vfiokit_<version>_amd64.deb`, offline, with
//! `dpkg-deb` (see docs/PACKAGING.md).
//!
//! The binary is `cargo build --release -p xtask` (no dev feature), stripped here the way `dh_strip`
//! does; the release profile keeps its line tables for developers. Manual pages (section 8, one
//! per command) and shell completions come from the same clap definition, minus the hidden dev
//! commands, and are checked against the built binary's `--help`. `Depends` comes from the
//! binary's `NEEDED` libraries and symbol versions; anything but glibc and libgcc fails, as does a
//! glibc symbol newer than Debian 12's 2.36 (what Proxmox VE 8 and 9 run on).

use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context, bail, ensure};
use clap::CommandFactory;
use clap_mangen::Man;
use clap_mangen::roff::{Roff, bold, italic, roman};

use super::man;

/// The one version: `vfiokit --version`, the package, the manual pages.
const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The newest glibc symbol version the binary may need: Debian 12's (Proxmox VE 8 and 9).
const GLIBC_FLOOR: (u32, u32) = (2, 36);
/// Shared libraries of glibc (package libc6).
const GLIBC_LIBS: &[&str] = &[
    "libc.so.6",
    "libm.so.6",
    "libpthread.so.0",
    "libdl.so.2",
    "librt.so.1",
    "libutil.so.1",
    "ld-linux-x86-64.so.2",
];
/// Licenses `xtask/dist/copyright` has a paragraph for.
const LICENSES: &[&str] = &[
    "MIT",
    "Apache-2.0",
    "Unlicense",
    "Unicode-3.0",
    "BSD-3-Clause",
    // An exception, not a license: `Apache-2.0 WITH LLVM-exception` (rustix, linux-raw-sys).
    "LLVM-exception",
];
const COMPLETIONS: &[(clap_complete::Shell, &str)] = &[
    (
        clap_complete::Shell::Bash,
        "usr/share/bash-completion/completions/vfiokit",
    ),
    (
        clap_complete::Shell::Zsh,
        "usr/share/zsh/vendor-completions/_vfiokit",
    ),
    (
        clap_complete::Shell::Fish,
        "usr/share/fish/vendor_completions.d/vfiokit.fish",
    ),
];

/// `dist` options.
#[derive(Debug, clap::Args)]
pub struct DistArgs {
    /// Package this release binary instead of building one (e.g. one built on an older system).
    #[arg(long, value_name = "FILE")]
    binary: Option<PathBuf>,
}

/// Builds the package and prints its path.
pub fn run(args: &DistArgs) -> anyhow::Result<ExitCode> {
    let ws = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("xtask has no parent directory")?;
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| ws.join("target"), |t| ws.join(t));
    let binary = match &args.binary {
        Some(b) => b.clone(),
        None => {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            run_ok(Command::new(cargo).current_dir(ws).args([
                "build",
                "--release",
                "-p",
                "xtask",
                "--bin",
                "vfiokit",
            ]))?;
            target.join("release/vfiokit")
        }
    };
    let cmd = installed_command();
    check_binary(&binary, &cmd)?;
    let packaging = ws.join("xtask/dist");
    let changelog = fs::read_to_string(packaging.join("changelog"))?;
    let (maintainer, date) = changelog_check(&changelog)?;
    let dist = target.join("dist");
    let stage = dist.join(format!("vfiokit_{VERSION}_amd64"));
    if stage.exists() {
        fs::remove_dir_all(&stage).with_context(|| format!("cannot remove {}", stage.display()))?;
    }
    let sbin = stage.join("usr/sbin/vfiokit");
    put(
        &stage,
        "usr/sbin/vfiokit",
        &fs::read(&binary).with_context(|| binary.display().to_string())?,
    )?;
    run_ok(
        Command::new("strip")
            .args([
                "--remove-section=.comment",
                "--remove-section=.note",
                "--strip-unneeded",
            ])
            .arg(&sbin),
    )?;
    fs::set_permissions(&sbin, fs::Permissions::from_mode(0o755))?;
    let depends = depends(&sbin)?;
    for (name, roff) in man_pages(&cmd, &date)? {
        put(
            &stage,
            &format!("usr/share/man/man8/{name}.gz"),
            &gzip(&roff)?,
        )?;
    }
    for (shell, path) in COMPLETIONS {
        let mut buf = Vec::new();
        clap_complete::generate(*shell, &mut cmd.clone(), "vfiokit", &mut buf);
        put(&stage, path, &buf)?;
    }
    put(
        &stage,
        "usr/share/doc/vfiokit/changelog.Debian.gz",
        &gzip(changelog.as_bytes())?,
    )?;
    let copyright =
        fs::read_to_string(packaging.join("copyright"))?.replace("@CRATES@", &crates(ws)?);
    put(
        &stage,
        "usr/share/doc/vfiokit/copyright",
        copyright.as_bytes(),
    )?;
    let (md5sums, size) = md5sums(&stage)?;
    put(&stage, "DEBIAN/md5sums", md5sums.as_bytes())?;
    put(
        &stage,
        "DEBIAN/control",
        control(&maintainer, size, &depends).as_bytes(),
    )?;
    let deb = dist.join(format!("vfiokit_{VERSION}_amd64.deb"));
    run_ok(
        Command::new("dpkg-deb")
            .args(["--root-owner-group", "-Zxz", "--build"])
            .arg(&stage)
            .arg(&deb),
    )?;
    println!("{}", deb.display());
    Ok(ExitCode::SUCCESS)
}

/// The clap definition of the installed `vfiokit`: this build's without the hidden dev commands.
/// (clap cannot remove a subcommand, so the root is rebuilt with the shipped ones.)
fn installed_command() -> clap::Command {
    let full = crate::Cli::command();
    let mut cmd = clap::Command::new("vfiokit")
        .version(VERSION)
        .subcommand_required(full.is_subcommand_required_set())
        .arg_required_else_help(full.is_arg_required_else_help_set())
        .args(full.get_arguments().cloned())
        .groups(full.get_groups().cloned())
        .subcommands(full.get_subcommands().filter(|s| !s.is_hide_set()).cloned());
    if let Some(about) = full.get_about() {
        cmd = cmd.about(about.clone());
    }
    if let Some(about) = full.get_long_about() {
        cmd = cmd.long_about(about.clone());
    }
    cmd
}

/// The binary says the workspace version, and its `-h` on every command is what the pages
/// and completions are generated from.
fn check_binary(binary: &Path, cmd: &clap::Command) -> anyhow::Result<()> {
    let version = output(Command::new(binary).arg("--version"))?;
    ensure!(
        version == format!("vfiokit {VERSION}\n"),
        "{} says {version:?}, the workspace version is {VERSION}",
        binary.display()
    );
    let mut cmd = cmd.clone();
    cmd.build();
    let mut todo = vec![(Vec::<String>::new(), cmd)];
    while let Some((path, cmd)) = todo.pop() {
        let want = cmd.clone().render_help().to_string();
        let got = output(Command::new(binary).args(&path).arg("-h"))?;
        ensure!(
            got == want,
            "`vfiokit {} -h` differs from the definition the pages are made from:\n{got}\n---\n{want}",
            path.join(" ")
        );
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            let mut p = path.clone();
            p.push(sub.get_name().to_string());
            todo.push((p, sub.clone()));
        }
    }
    Ok(())
}

/// Every page (`vfiokit.8`, `vfiokit-setup-host.8`, `vfiokit-vm-lint.8`, …) and its roff, dated
/// `YYYY-MM-DD`.
fn man_pages(cmd: &clap::Command, date: &str) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let mut cmd = cmd.clone().disable_help_subcommand(true);
    cmd.build();
    let mut pages = Vec::new();
    let mut todo = vec![cmd];
    while let Some(cmd) = todo.pop() {
        todo.extend(cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned());
        pages.push(man_page(&cmd, date)?);
    }
    for extra in man::EXTRAS {
        ensure!(
            pages
                .iter()
                .any(|(name, _)| *name == format!("{}.8", extra.page)),
            "dev/man.rs has sections for {}, which is no longer a command",
            extra.page
        );
    }
    pages.sort();
    Ok(pages)
}

fn man_page(cmd: &clap::Command, date: &str) -> anyhow::Result<(String, Vec<u8>)> {
    let page = Man::new(cmd.clone())
        .section("8")
        .date(date)
        .source(format!("vfiokit {VERSION}"))
        .manual("System Administration");
    let mut out = Vec::new();
    page.render_title(&mut out)?;
    page.render_name_section(&mut out)?;
    page.render_synopsis_section(&mut out)?;
    page.render_description_section(&mut out)?;
    page.render_options_section(&mut out)?;
    if cmd.get_subcommands().any(|s| !s.is_hide_set()) {
        page.render_subcommands_section(&mut out)?;
    }
    let name = cmd.get_display_name().unwrap_or(cmd.get_name()).to_string();
    extra_sections(&name, &mut out)?;
    Ok((page.get_filename(), out))
}

/// EXIT STATUS, FILES, the page's own sections, EXAMPLES, SEE ALSO.
fn extra_sections(page: &str, out: &mut Vec<u8>) -> anyhow::Result<()> {
    let extra = man::extra(page);
    let mut r = Roff::new();
    r.control("SH", ["EXIT STATUS"]);
    let exit_3 = extra.and_then(|e| e.exit_3).map(|w| ("3", w));
    for (code, what) in man::EXIT.iter().copied().chain(exit_3) {
        r.control("TP", []);
        r.text([bold(code)]);
        r.text([roman(what)]);
    }
    if let Some(e) = extra {
        if !e.files.is_empty() {
            r.control("SH", ["FILES"]);
            for (file, what) in e.files {
                r.control("TP", []);
                r.text([italic(*file)]);
                r.text([roman(*what)]);
            }
        }
        for (title, paragraphs) in e.sections {
            r.control("SH", [*title]);
            for p in *paragraphs {
                r.control("PP", []);
                r.text([roman(*p)]);
            }
        }
        if !e.examples.is_empty() {
            r.control("SH", ["EXAMPLES"]);
            for (what, line) in e.examples {
                if !what.is_empty() {
                    r.control("PP", []);
                    r.text([roman(*what)]);
                }
                r.control("PP", []);
                r.control("RS", ["4"]);
                r.control("nf", []);
                for (n, part) in wrap_command(line).iter().enumerate() {
                    let indent = if n == 0 { "" } else { "    " };
                    r.text([bold(format!("{indent}{part}"))]);
                }
                r.control("fi", []);
                r.control("RE", []);
            }
        }
    }
    r.control("SH", ["SEE ALSO"]);
    let mut see: Vec<String> = Vec::new();
    if page != "vfiokit" {
        see.push("vfiokit(8)".into());
    }
    see.extend(["lspci(8)", "qm(1)", "proxmox-boot-tool(1)"].map(String::from));
    r.text([roman(see.join(", "))]);
    r.to_writer(out)?;
    Ok(())
}

/// A long example command split at spaces into lines of at most 66 columns, each but the last
/// ending in ` \`, as one would type it.
fn wrap_command(line: &str) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut current = String::new();
    for word in line.split(' ') {
        if !current.is_empty() && current.len() + 1 + word.len() > 62 {
            current.push_str(" \\");
            lines.push(std::mem::replace(&mut current, word.to_string()));
        } else {
            if !current.is_empty() {
                current.push(' ');
            }
            current.push_str(word);
        }
    }
    lines.push(current);
    lines
}

/// `Depends` from the binary's `NEEDED` entries and symbol versions: glibc and libgcc only, and no
/// glibc symbol newer than [`GLIBC_FLOOR`].
fn depends(binary: &Path) -> anyhow::Result<(String, (u32, u32))> {
    let dynamic = output(Command::new("readelf").arg("-d").arg(binary))?;
    let needed: Vec<&str> = dynamic
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| l.split_once('[')?.1.split_once(']').map(|(n, _)| n))
        .collect();
    let symbols = output(Command::new("objdump").arg("-T").arg(binary))?;
    let newest = |prefix: &str| {
        symbols
            .split(|c: char| c.is_whitespace() || c == '(' || c == ')')
            .filter_map(|w| w.strip_prefix(prefix))
            .filter_map(|v| {
                let mut n = v.split('.').map(str::parse::<u32>);
                Some((n.next()?.ok()?, n.next()?.ok()?))
            })
            .max()
    };
    let mut deps = Vec::new();
    let mut glibc = (0, 0);
    let mut other = Vec::new();
    for lib in &needed {
        if GLIBC_LIBS.contains(lib) || *lib == "libgcc_s.so.1" {
            continue;
        }
        other.push(*lib);
    }
    ensure!(
        other.is_empty(),
        "the binary needs {}: only glibc and libgcc may be linked dynamically",
        other.join(", ")
    );
    if needed.iter().any(|l| GLIBC_LIBS.contains(l)) {
        let (major, minor) = newest("GLIBC_").context("no GLIBC_ symbol versions in the binary")?;
        ensure!(
            (major, minor) <= GLIBC_FLOOR,
            "the binary needs glibc {major}.{minor}, newer than {}.{} (Debian 12, Proxmox VE 8 and 9): \
             build it on Debian 12 and pass it with --binary",
            GLIBC_FLOOR.0,
            GLIBC_FLOOR.1
        );
        deps.push(format!("libc6 (>= {major}.{minor})"));
        glibc = (major, minor);
    }
    if needed.contains(&"libgcc_s.so.1") {
        let (major, minor) = newest("GCC_").unwrap_or((3, 0));
        deps.push(format!("libgcc-s1 (>= {major}.{minor})"));
    }
    Ok((deps.join(", "), glibc))
}

fn control(
    maintainer: &str,
    installed_kib: u64,
    (depends, glibc): &(String, (u32, u32)),
) -> String {
    let (major, minor) = glibc;
    let (floor_major, floor_minor) = GLIBC_FLOOR;
    format!(
        "Package: vfiokit
Version: {VERSION}
Architecture: amd64
Maintainer: {maintainer}
Installed-Size: {installed_kib}
Depends: {depends}
Recommends: pciutils, usbutils
Section: admin
Priority: optional
Description: plan and check PCI, GPU and USB passthrough on Proxmox VE
 vfiokit takes a Proxmox VE host from a fresh install to a virtual machine
 that owns the integrated GPU, a PCIe device and USB devices. It reads the
 IOMMU groups and tells what giving a device away costs the host, plans
 every change to the kernel command line, modules, modprobe.d and the VM
 config as a diff, refuses changes that would take the host's network,
 root disk or only USB controller away, applies atomically with a journal,
 and can undo. It also audits a host configured by hand, checks option
 ROMs and records a host for a bug report.
 .
 It needs glibc {major}.{minor} or newer and was checked to need nothing newer
 than glibc {floor_major}.{floor_minor} (Debian 12): it runs on Proxmox VE 8 and 9.
"
    )
}

/// The changelog's top entry is this version; its signer is the maintainer, its date (as
/// `YYYY-MM-DD`) the manual pages' date.
fn changelog_check(changelog: &str) -> anyhow::Result<(String, String)> {
    let first = changelog.lines().next().unwrap_or("");
    ensure!(
        first.starts_with(&format!("vfiokit ({VERSION}) ")),
        "xtask/dist/changelog starts with {first:?}: add an entry for {VERSION}"
    );
    let (signer, date) = changelog
        .lines()
        .find_map(|l| l.strip_prefix(" -- "))
        .and_then(|l| l.split_once("  "))
        .context("xtask/dist/changelog: no ` -- Name <email>  date` line")?;
    // `Sun, 29 Nov 2026 12:00:00 +0000`
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let words: Vec<&str> = date.split_whitespace().collect();
    let parsed = match words.as_slice() {
        [_, day, month, year, ..] => MONTHS
            .iter()
            .position(|m| m == month)
            .zip(day.parse::<u32>().ok())
            .map(|(m, d)| format!("{year}-{:02}-{d:02}", m + 1)),
        _ => None,
    };
    let date =
        parsed.with_context(|| format!("xtask/dist/changelog: cannot read the date {date:?}"))?;
    Ok((signer.to_string(), date))
}

/// The crates linked into the binary, one `name version: license` line each, indented for the
/// copyright file's Comment; a license without a paragraph there is an error.
fn crates(ws: &Path) -> anyhow::Result<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let tree = output(Command::new(cargo).current_dir(ws).args([
        "tree", "-p", "xtask", "-e", "normal", "--prefix", "none", "--format", "{p}|{l}",
    ]))?;
    let mut lines: Vec<String> = Vec::new();
    for line in tree.lines() {
        let Some((pkg, license)) = line.split_once('|') else {
            continue;
        };
        let mut words = pkg.split_whitespace();
        let (Some(name), Some(version)) = (words.next(), words.next()) else {
            continue;
        };
        if pkg.contains("(proc-macro)") || name.starts_with("vfiokit-") || name == "xtask" {
            continue; // build-time only, or vfiokit itself
        }
        let license = license.trim_end_matches(" (*)");
        for id in license.split(|c: char| c == '(' || c == ')' || c.is_whitespace()) {
            ensure!(
                id.is_empty() || matches!(id, "OR" | "AND" | "WITH") || LICENSES.contains(&id),
                "{name} {version} is under {id}: add its text to xtask/dist/copyright"
            );
        }
        let version = version.trim_start_matches('v');
        lines.push(format!(
            " {name} {version}: {}",
            license
                .replace(" OR ", " or ")
                .replace(" AND ", " and ")
                .replace(" WITH ", " with ")
        ));
    }
    lines.sort();
    lines.dedup();
    Ok(lines.join("\n"))
}

/// `DEBIAN/md5sums` of every file, and the installed size in KiB (dpkg's rounding per file).
fn md5sums(stage: &Path) -> anyhow::Result<(String, u64)> {
    let mut files = Vec::new();
    let mut stack = vec![stage.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                if path != stage.join("DEBIAN") {
                    stack.push(path);
                }
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut sums = String::new();
    let mut kib = 0;
    for f in &files {
        let rel = f.strip_prefix(stage)?.to_string_lossy().into_owned();
        let sum = output(Command::new("md5sum").arg(f))?;
        let sum = sum.split_whitespace().next().unwrap_or_default();
        let _ = writeln!(sums, "{sum}  {rel}");
        kib += fs::metadata(f)?.len().div_ceil(1024);
    }
    Ok((sums, kib))
}

/// Writes `rel` under the staging root, mode 0644 (directories 0755).
fn put(stage: &Path, rel: &str, bytes: &[u8]) -> anyhow::Result<()> {
    let path = stage.join(rel);
    let mut dir = path.parent();
    fs::create_dir_all(dir.unwrap_or(stage))?;
    while let Some(d) = dir.filter(|d| d.starts_with(stage)) {
        fs::set_permissions(d, fs::Permissions::from_mode(0o755))?;
        dir = d.parent();
    }
    fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644))?;
    Ok(())
}

/// `gzip -9n`: best compression, no name or time stamp (reproducible, as Debian policy asks).
fn gzip(bytes: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut child = Command::new("gzip")
        .arg("-9n")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot run gzip")?;
    child.stdin.take().context("gzip stdin")?.write_all(bytes)?;
    let out = child.wait_with_output()?;
    ensure!(out.status.success(), "gzip failed: {}", out.status);
    Ok(out.stdout)
}

/// Runs a command to completion; its output goes to the terminal.
fn run_ok(cmd: &mut Command) -> anyhow::Result<()> {
    eprintln!("$ {cmd:?}");
    let status = cmd
        .status()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed: {status}");
    }
    Ok(())
}

/// Runs a command and returns its standard output.
fn output(cmd: &mut Command) -> anyhow::Result<String> {
    let out = cmd
        .output()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    ensure!(
        out.status.success(),
        "{cmd:?} failed: {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::wrap_command;

    #[test]
    fn long_examples_wrap_at_spaces_with_a_continuation() {
        assert_eq!(wrap_command("vfiokit undo"), ["vfiokit undo"]);
        let long = "vfiokit setup-vm --vmid 100 --igd 00:02.0 --romfile igpu-uhd630.rom --device 00:14.3 --usb 062a:4101 --usb 8087:0aaa";
        let lines = wrap_command(long);
        assert!(lines.len() > 1, "{lines:?}");
        assert!(lines.iter().all(|l| l.len() <= 64), "{lines:?}");
        assert!(lines[..lines.len() - 1].iter().all(|l| l.ends_with(" \\")));
        let joined: Vec<&str> = lines.iter().map(|l| l.trim_end_matches(" \\")).collect();
        assert_eq!(joined.join(" "), long);
    }
}
