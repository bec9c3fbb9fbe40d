//! The Debian package, end to end: `cargo xtask dist` builds it; it is unpacked into a scratch
//! directory (never installed on this machine) and checked as the bar does — contents,
//! control fields, the unpacked binary, lintian, and the man pages through `man --warnings`.
//!
//! Needs dpkg-dev, lintian, man-db and binutils (`.ci/run` installs them). The package is built
//! by a dev-feature `vfiokit` in its own target directory, so that the binary the other tests run
//! (`target/debug/vfiokit`, without the dev feature) is never replaced under them.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn ws() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs a program that must succeed; returns stdout and stderr.
fn run(cmd: &mut Command) -> (String, String) {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("{cmd:?}: {e} (.ci/run installs dpkg-dev, lintian, man-db, binutils)")
    });
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{stdout}\n{stderr}",
        out.status
    );
    (stdout, stderr)
}

/// `cargo xtask dist`, returning the package's path.
fn build_package() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| env!("CARGO").to_string());
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| ws().join("target"), |t| ws().join(t));
    let (stdout, _) = run(Command::new(cargo)
        .current_dir(ws())
        .args(["run", "--quiet", "--target-dir"])
        .arg(target.join("xtask-dist"))
        .args([
            "-p",
            "xtask",
            "--bin",
            "vfiokit",
            "--features",
            "dev",
            "--",
            "dist",
        ])
        .env("CARGO_TARGET_DIR", &target));
    let deb = PathBuf::from(stdout.lines().last().expect("dist prints the package path"));
    assert_eq!(
        deb.file_name().unwrap().to_str().unwrap(),
        format!("vfiokit_{VERSION}_amd64.deb")
    );
    deb
}

fn field<'a>(control: &'a str, name: &str) -> &'a str {
    control
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
        .unwrap_or_else(|| panic!("no {name} in\n{control}"))
}

#[test]
fn the_debian_package_installs_a_working_documented_vfiokit() {
    let deb = build_package();

    // Contents: modes, owner, the binary, a section-8 page per command, three completions, docs.
    let (listing, _) = run(Command::new("dpkg-deb").arg("-c").arg(&deb));
    let mut files = Vec::new();
    for line in listing.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let (mode, owner, path) = (cols[0], cols[1], cols[5].trim_start_matches('.'));
        assert_eq!(owner, "root/root", "{line}");
        let want = if mode.starts_with('d') || path == "/usr/sbin/vfiokit" {
            "rwxr-xr-x"
        } else {
            "rw-r--r--"
        };
        assert_eq!(&mode[1..], want, "{line}");
        if !mode.starts_with('d') {
            files.push(path.to_string());
        }
    }
    for want in [
        "/usr/sbin/vfiokit",
        "/usr/share/man/man8/vfiokit.8.gz",
        "/usr/share/man/man8/vfiokit-setup-host.8.gz",
        "/usr/share/man/man8/vfiokit-setup-vm.8.gz",
        "/usr/share/man/man8/vfiokit-vm-lint.8.gz",
        "/usr/share/man/man8/vfiokit-undo.8.gz",
        "/usr/share/bash-completion/completions/vfiokit",
        "/usr/share/zsh/vendor-completions/_vfiokit",
        "/usr/share/fish/vendor_completions.d/vfiokit.fish",
        "/usr/share/doc/vfiokit/copyright",
        "/usr/share/doc/vfiokit/changelog.Debian.gz",
    ] {
        assert!(
            files.iter().any(|f| f == want),
            "{want} missing:\n{listing}"
        );
    }
    let pages: Vec<&String> = files
        .iter()
        .filter(|f| f.starts_with("/usr/share/man/"))
        .collect();
    assert!(
        pages
            .iter()
            .all(|p| p.starts_with("/usr/share/man/man8/vfiokit") && p.ends_with(".8.gz")),
        "{pages:?}"
    );

    // Control: one version, Depends from the binary (as dpkg-shlibdeps computes it).
    let (control, _) = run(Command::new("dpkg-deb").arg("-f").arg(&deb));
    assert_eq!(field(&control, "Package"), "vfiokit");
    assert_eq!(field(&control, "Version"), VERSION);
    assert_eq!(field(&control, "Architecture"), "amd64");
    assert_eq!(field(&control, "Section"), "admin");
    assert_eq!(field(&control, "Recommends"), "pciutils, usbutils");
    assert!(control.contains("glibc 2.36 (Debian 12)"), "{control}");

    let scratch = tempfile::tempdir().unwrap();
    let root = scratch.path().join("root");
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root));
    let bin = root.join("usr/sbin/vfiokit");
    assert_eq!(
        fs::metadata(&bin).unwrap().permissions().mode() & 0o777,
        0o755
    );
    let shlibs = scratch.path().join("shlibs");
    fs::create_dir_all(shlibs.join("debian/vfiokit/usr/sbin")).unwrap();
    fs::write(
        shlibs.join("debian/control"),
        "Source: vfiokit\n\nPackage: vfiokit\nArchitecture: amd64\n",
    )
    .unwrap();
    fs::copy(&bin, shlibs.join("debian/vfiokit/usr/sbin/vfiokit")).unwrap();
    let (deps, _) = run(Command::new("dpkg-shlibdeps")
        .current_dir(&shlibs)
        .args(["-O", "debian/vfiokit/usr/sbin/vfiokit"]));
    assert_eq!(
        deps.trim().strip_prefix("shlibs:Depends="),
        Some(field(&control, "Depends")),
        "{control}"
    );
    let (sections, _) = run(Command::new("readelf").arg("-S").arg(&bin));
    // (`.debug_gdb_scripts` is a loaded section naming gdb's pretty-printers, not debug data.)
    for unwanted in [".symtab", ".debug_info", ".debug_line"] {
        assert!(
            !sections.contains(unwanted),
            "the packaged binary has {unwanted}"
        );
    }

    // The unpacked binary: its version, a recorded host, no developer commands.
    let (version, _) = run(Command::new(&bin).arg("--version"));
    assert_eq!(version, format!("vfiokit {VERSION}\n"));
    let fresh = ws().join("testdata/elitedesk-800-g4/fresh");
    let (inspect, _) = run(Command::new(&bin).arg("inspect").arg("--root").arg(&fresh));
    assert!(inspect.contains("0000:00:02.0"), "{inspect}");
    for dev in ["test", "dist", "bench", "fakesys"] {
        let out = Command::new(&bin).arg(dev).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(2),
            "the installed binary knows `{dev}`"
        );
    }
    for (shell, file) in [
        ("bash", "usr/share/bash-completion/completions/vfiokit"),
        ("zsh", "usr/share/zsh/vendor-completions/_vfiokit"),
        ("fish", "usr/share/fish/vendor_completions.d/vfiokit.fish"),
    ] {
        let text = fs::read_to_string(root.join(file)).unwrap();
        assert!(
            text.contains("setup-host") && text.contains("force-collateral"),
            "{shell}"
        );
        assert!(
            !text.contains("fakesys") && !text.contains("bench"),
            "{shell} completes dev commands"
        );
    }

    // Man pages: render without warnings, carry the version and the extra sections.
    let man8 = root.join("usr/share/man/man8");
    for page in fs::read_dir(&man8).unwrap() {
        let gz = page.unwrap().path();
        let (_, warnings) = run(Command::new("man")
            .arg("--warnings")
            .arg("-l")
            .arg(&gz)
            .env("MANWIDTH", "80"));
        assert_eq!(warnings, "", "{}", gz.display());
    }
    run(Command::new("gunzip")
        .arg("-k")
        .arg(man8.join("vfiokit-setup-host.8.gz")));
    let roff = fs::read_to_string(man8.join("vfiokit-setup-host.8")).unwrap();
    let title = roff.lines().find(|l| l.starts_with(".TH ")).unwrap();
    let title: Vec<&str> = title.split('"').collect();
    assert_eq!(
        title.get(1),
        Some(&format!("vfiokit {VERSION}").as_str()),
        "{roff}"
    );
    for section in ["EXIT STATUS", "FILES", "EXAMPLES", "SEE ALSO"] {
        assert!(
            roff.contains(&format!(".SH \"{section}\""))
                || roff.contains(&format!(".SH {section}")),
            "{section}"
        );
    }
    let (text, warnings) = run(Command::new("man")
        .arg("--warnings")
        .arg("-l")
        .arg("./vfiokit-setup-host.8")
        .current_dir(&man8)
        .env("MANWIDTH", "80"));
    assert_eq!(warnings, "");
    for want in [
        "/etc/modprobe.d/*.conf",
        "/var/lib/vfiokit/journal.json",
        "vfiokit setup-host --device 00:02.0 --device 00:14.3",
    ] {
        assert!(text.contains(want), "{want} not in the page:\n{text}");
    }

    // lintian: no errors (warnings are listed in docs/PACKAGING.md).
    let out = Command::new("lintian")
        .arg(&deb)
        .output()
        .expect("lintian is needed (.ci/run installs it)");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(!report.lines().any(|l| l.starts_with("E:")), "{report}");
    for tag in report.lines().filter(|l| l.starts_with("W:")) {
        let documented = fs::read_to_string(ws().join("docs/PACKAGING.md")).unwrap();
        let name = tag.split_whitespace().nth(2).unwrap_or(tag);
        assert!(
            documented.contains(name),
            "lintian warning not in docs/PACKAGING.md: {tag}"
        );
    }
}
