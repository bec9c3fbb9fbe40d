//! Drop-in directories on recorded hosts: `/etc/default/grub.d/*.cfg`, which `update-grub`
//! sources after `/etc/default/grub`, and `/etc/modules-load.d/*.conf`, which
//! systemd-modules-load reads besides `/etc/modules`. Plans edit the file that decides, apply,
//! and undo byte for byte.

use std::fs;
use std::path::{Path, PathBuf};

use vfiokit_fakesys::{copy_recorded, snapshot};
use vfiokit_plan::{SystemRunner, apply, undo};
use vfiokit_setup::{Finding, HostFacts, audit, fix_plan, host};
use vfiokit_sysfs::SysRoot;

fn wifi() -> host::Request {
    host::Request {
        devices: vec!["00:14.3".parse().unwrap()],
        force_collateral: vec![],
    }
}

/// The fresh EliteDesk with `files` (path under the root, text) written.
fn fresh_with(files: &[(&str, &str)]) -> (tempfile::TempDir, SysRoot) {
    let (dir, root) = copy_recorded("elitedesk-800-g4/fresh").unwrap();
    for (path, text) in files {
        let p = dir.path().join(path);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }
    (dir, root)
}

fn edited(plan: &vfiokit_plan::Plan) -> Vec<PathBuf> {
    plan.files.iter().map(|f| f.path.clone()).collect()
}

fn checks<'a>(found: &'a [Finding], check: &str) -> Vec<&'a Finding> {
    found.iter().filter(|f| f.check == check).collect()
}

const ZZ: &str = "etc/default/grub.d/zz.cfg";

#[test]
fn a_grub_drop_in_that_assigns_the_command_line_gets_the_edit_and_undo_restores_it() {
    let (dir, root) = fresh_with(&[(ZZ, "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\n")]);
    let before = snapshot(&dir.path().join("etc")).unwrap();
    let grub = fs::read(dir.path().join("etc/default/grub")).unwrap();
    let facts = HostFacts::gather(&root).unwrap();
    let planned = host::plan(&facts, &wifi()).unwrap().unwrap();
    assert_eq!(
        edited(&planned.plan),
        [
            PathBuf::from(ZZ),
            "etc/modules".into(),
            "etc/modprobe.d/vfio.conf".into()
        ]
    );
    assert_eq!(
        planned.plan.files[0].new,
        "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet intel_iommu=on iommu=pt\"\n"
    );
    assert!(
        planned.plan.notes.iter().any(|n| n
            .starts_with("GRUB_CMDLINE_LINUX_DEFAULT is assigned last in ")
            && n.contains("etc/default/grub.d/zz.cfg:1")),
        "{:#?}",
        planned.plan.notes
    );
    assert!(
        planned
            .plan
            .commands
            .iter()
            .any(|c| c.argv.first().is_some_and(|a| a == "update-grub")),
        "{}",
        planned.plan.render()
    );

    apply(&root, &planned.plan, "setup-host", &root, &SystemRunner).unwrap();
    assert_eq!(fs::read(dir.path().join("etc/default/grub")).unwrap(), grub);
    // verify reads the value update-grub will use: the drop-in's, waiting for a reboot.
    let facts = HostFacts::gather(&root).unwrap();
    let found = audit(&facts, &[]);
    let pending = checks(&found, "pending-reboot");
    assert_eq!(pending.len(), 1, "{found:#?}");
    assert!(
        pending[0]
            .message
            .starts_with("intel_iommu=on iommu=pt are in ")
            && pending[0]
                .message
                .ends_with("etc/default/grub.d/zz.cfg but not on the running command line"),
        "{}",
        pending[0].message
    );
    assert_eq!(pending[0].path.as_deref(), Some(Path::new(ZZ)));
    // A second plan has nothing left to do on the command line.
    let again = host::plan(&facts, &wifi()).unwrap().unwrap();
    assert!(again.plan.is_empty(), "{}", again.plan.render());

    undo(&root, &root, &SystemRunner).unwrap();
    assert_eq!(
        snapshot(&dir.path().join("etc")).unwrap(),
        before,
        "undo restores every file byte for byte"
    );
}

#[test]
fn a_grub_drop_in_that_extends_the_command_line_keeps_its_words_and_the_base_gets_the_edit() {
    let ext =
        "GRUB_CMDLINE_LINUX_DEFAULT=\"$GRUB_CMDLINE_LINUX_DEFAULT init=/lib/sysvinit/init\"\n";
    let (dir, root) = fresh_with(&[("etc/default/grub.d/init-select.cfg", ext)]);
    let before = snapshot(&dir.path().join("etc")).unwrap();
    let facts = HostFacts::gather(&root).unwrap();
    let planned = host::plan(&facts, &wifi()).unwrap().unwrap();
    assert_eq!(
        edited(&planned.plan)[0],
        Path::new("etc/default/grub"),
        "{}",
        planned.plan.render()
    );
    assert!(
        !edited(&planned.plan)
            .iter()
            .any(|p| p.starts_with("etc/default/grub.d")),
        "{}",
        planned.plan.render()
    );
    assert!(
        planned.plan.files[0]
            .new
            .contains("\nGRUB_CMDLINE_LINUX_DEFAULT=\"quiet intel_iommu=on iommu=pt\"\n")
    );
    assert!(
        planned.plan.notes.iter().any(|n| n.contains(
            "etc/default/grub.d/init-select.cfg:1 (update-grub sources /etc/default/grub.d/*.cfg after /etc/default/grub): new parameters go to "
        )),
        "{:#?}",
        planned.plan.notes
    );

    apply(&root, &planned.plan, "setup-host", &root, &SystemRunner).unwrap();
    assert_eq!(
        fs::read_to_string(dir.path().join("etc/default/grub.d/init-select.cfg")).unwrap(),
        ext
    );
    let found = audit(&HostFacts::gather(&root).unwrap(), &[]);
    let pending: Vec<&str> = checks(&found, "pending-reboot")
        .iter()
        .map(|f| f.message.as_str())
        .collect();
    assert_eq!(pending.len(), 1, "{pending:#?}");
    assert!(
        pending[0].starts_with("init=/lib/sysvinit/init intel_iommu=on iommu=pt are in ")
            && pending[0].contains(
                "etc/default/grub (with /" // the absolute path of the drop-in follows
            )
            && pending[0].contains("etc/default/grub.d/init-select.cfg)"),
        "{pending:#?}"
    );
    undo(&root, &root, &SystemRunner).unwrap();
    assert_eq!(snapshot(&dir.path().join("etc")).unwrap(), before);
}

#[test]
fn a_grub_drop_in_that_cannot_be_evaluated_stops_the_plan_naming_its_line() {
    let (dir, root) = fresh_with(&[(
        "etc/default/grub.d/extra.cfg",
        "# more parameters\nGRUB_CMDLINE_LINUX_DEFAULT=\"$GRUB_CMDLINE_LINUX_DEFAULT $EXTRA\"\n",
    )]);
    let facts = HostFacts::gather(&root).unwrap();
    let err = host::plan(&facts, &wifi()).unwrap_err().to_string();
    let want = format!(
        "{}:2: GRUB_CMDLINE_LINUX_DEFAULT: `$EXTRA` expands a shell variable, which vfiokit does not evaluate",
        dir.path().join("etc/default/grub.d/extra.cfg").display()
    );
    assert!(err.ends_with(&want), "{err}");
    // Nothing is guessed: no check reads a configured command line it cannot evaluate, and
    // verify says why instead of keeping quiet.
    let found = audit(&facts, &[]);
    assert!(checks(&found, "pending-reboot").is_empty());
    let unreadable = checks(&found, "unreadable");
    assert_eq!(unreadable.len(), 1, "{found:#?}");
    assert!(
        unreadable[0].message.ends_with(&want),
        "{}",
        unreadable[0].message
    );
}

#[test]
fn grub_drop_ins_that_leave_the_command_line_alone_change_nothing() {
    let plain = || {
        let (_dir, root) = copy_recorded("elitedesk-800-g4/fresh").unwrap();
        let facts = HostFacts::gather(&root).unwrap();
        let plan = host::plan(&facts, &wifi()).unwrap().unwrap().plan.render();
        (plan, audit(&facts, &[]).len())
    };
    let (_dir, root) = fresh_with(&[
        (
            "etc/default/grub.d/proxmox-ve.cfg",
            "GRUB_DISTRIBUTOR=\"Proxmox VE\"\n",
        ),
        // Not sourced: no `.cfg` suffix, or a dot file.
        (
            "etc/default/grub.d/zz.cfg.dpkg-old",
            "GRUB_CMDLINE_LINUX_DEFAULT=\"x\"\n",
        ),
        (
            "etc/default/grub.d/.zz.cfg",
            "GRUB_CMDLINE_LINUX_DEFAULT=\"x\"\n",
        ),
    ]);
    let facts = HostFacts::gather(&root).unwrap();
    let plan = host::plan(&facts, &wifi()).unwrap().unwrap().plan.render();
    assert_eq!((plan, audit(&facts, &[]).len()), plain());
}

/// The fresh EliteDesk on `release` with `text` in `etc/modules-load.d/vfio.conf`, and Debian's
/// `modules.conf` link to `/etc/modules`.
fn modules_load(release: &str, text: &str) -> (tempfile::TempDir, SysRoot) {
    let (dir, root) = fresh_with(&[
        ("etc/modules-load.d/vfio.conf", text),
        ("proc/sys/kernel/osrelease", &format!("{release}\n")),
    ]);
    std::os::unix::fs::symlink(
        "../modules",
        dir.path().join("etc/modules-load.d/modules.conf"),
    )
    .unwrap();
    (dir, root)
}

#[test]
fn vfio_virqfd_in_modules_load_d_is_found_there_and_removed_from_that_file() {
    let (_dir, root) = modules_load("6.1.10-1-pve", "vfio\nvfio_virqfd\n");
    assert!(
        checks(
            &audit(&HostFacts::gather(&root).unwrap(), &[]),
            "vfio-virqfd"
        )
        .is_empty()
    );

    let conf = "# VFIO\nvfio\nvfio-virqfd\nvfio_pci\n";
    let (dir, root) = modules_load("6.8.12-11-pve", conf);
    let before = snapshot(&dir.path().join("etc")).unwrap();
    let facts = HostFacts::gather(&root).unwrap();
    let found = audit(&facts, &[]);
    let virqfd = checks(&found, "vfio-virqfd");
    assert_eq!(
        virqfd.len(),
        1,
        "the modules.conf link is /etc/modules: {virqfd:#?}"
    );
    let f = virqfd[0];
    assert!(f.fixable);
    assert_eq!(
        (f.path.as_deref(), f.line),
        (Some(Path::new("etc/modules-load.d/vfio.conf")), Some(3))
    );
    assert_eq!(
        f.message,
        format!(
            "{} lists vfio_virqfd, which does not exist on 6.8.12-11-pve (merged into vfio since Linux 6.2): systemd-modules-load fails on it",
            dir.path().join("etc/modules-load.d/vfio.conf").display()
        )
    );

    let plan = fix_plan(&facts, &found).unwrap();
    assert_eq!(
        edited(&plan),
        [PathBuf::from("etc/modules-load.d/vfio.conf")],
        "{}",
        plan.render()
    );
    assert_eq!(plan.files[0].new, "# VFIO\nvfio\nvfio_pci\n");
    apply(&root, &plan, "verify --fix", &root, &SystemRunner).unwrap();
    assert!(
        fs::symlink_metadata(dir.path().join("etc/modules-load.d/modules.conf"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(
        checks(
            &audit(&HostFacts::gather(&root).unwrap(), &[]),
            "vfio-virqfd"
        )
        .is_empty()
    );
    undo(&root, &root, &SystemRunner).unwrap();
    assert_eq!(snapshot(&dir.path().join("etc")).unwrap(), before);
}

#[test]
fn vfio_virqfd_in_etc_modules_and_modules_load_d_is_one_finding_each() {
    let (dir, root) = modules_load("6.8.12-11-pve", "vfio_virqfd\n");
    fs::write(dir.path().join("etc/modules"), "vfio\nvfio_virqfd\n").unwrap();
    // The link would make /etc/modules count twice: use a file of its own.
    fs::remove_file(dir.path().join("etc/modules-load.d/modules.conf")).unwrap();
    let facts = HostFacts::gather(&root).unwrap();
    let found = audit(&facts, &[]);
    let at: Vec<(Option<&Path>, Option<usize>)> = checks(&found, "vfio-virqfd")
        .iter()
        .map(|f| (f.path.as_deref(), f.line))
        .collect();
    assert_eq!(
        at,
        [
            (Some(Path::new("etc/modules")), Some(2)),
            (Some(Path::new("etc/modules-load.d/vfio.conf")), Some(1))
        ]
    );
    let plan = fix_plan(&facts, &found).unwrap();
    assert_eq!(
        edited(&plan),
        [
            PathBuf::from("etc/modules"),
            "etc/modules-load.d/vfio.conf".into()
        ]
    );
    assert_eq!(plan.files[1].new, "");
}

#[test]
fn modules_a_modules_load_d_file_loads_are_not_added_to_etc_modules() {
    let (_dir, root) = fresh_with(&[(
        "etc/modules-load.d/vfio.conf",
        "vfio\nvfio_iommu_type1\nvfio-pci\n",
    )]);
    let facts = HostFacts::gather(&root).unwrap();
    let plan = host::plan(&facts, &wifi()).unwrap().unwrap().plan;
    assert!(
        !edited(&plan).contains(&PathBuf::from("etc/modules")),
        "{:?}",
        edited(&plan)
    );
    // Without that file, /etc/modules gets them, as before.
    let (_dir, root) = fresh_with(&[]);
    let facts = HostFacts::gather(&root).unwrap();
    let plan = host::plan(&facts, &wifi()).unwrap().unwrap().plan;
    assert!(edited(&plan).contains(&PathBuf::from("etc/modules")));
}

#[test]
fn a_grub_assignment_inside_shell_control_flow_stops_the_plan_naming_its_line() {
    // update-grub runs the branch only on some boots: vfiokit does not guess which.
    let (dir, root) = fresh_with(&[(
        "etc/default/grub.d/50-efi.cfg",
        "if [ -d /sys/firmware/efi ]; then\n  GRUB_CMDLINE_LINUX_DEFAULT=\"quiet efi=debug\"\nfi\n",
    )]);
    let facts = HostFacts::gather(&root).unwrap();
    let err = host::plan(&facts, &wifi()).unwrap_err().to_string();
    let want = format!(
        "{}:2: GRUB_CMDLINE_LINUX_DEFAULT: assigned inside shell control flow",
        dir.path().join("etc/default/grub.d/50-efi.cfg").display()
    );
    assert!(err.contains(&want), "{err}");
    // A branch that does not touch the command line changes nothing: the plan edits the
    // drop-in's plain assignment after it.
    let (_dir, root) = fresh_with(&[(
        "etc/default/grub.d/50-efi.cfg",
        "if [ -d /sys/firmware/efi ]; then\n  GRUB_TIMEOUT=3\nfi\nGRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\n",
    )]);
    let facts = HostFacts::gather(&root).unwrap();
    let plan = host::plan(&facts, &wifi()).unwrap().unwrap().plan;
    assert!(edited(&plan).contains(&PathBuf::from("etc/default/grub.d/50-efi.cfg")));
}

#[test]
fn a_removal_fix_reaches_grub_cmdline_linux_in_a_drop_in() {
    let (dir, root) = fresh_with(&[(
        "etc/default/grub.d/60-acs.cfg",
        "GRUB_CMDLINE_LINUX=\"pcie_acs_override=id:8086:a36d\"\n",
    )]);
    let cmdline = dir.path().join("proc/cmdline");
    let running = fs::read_to_string(&cmdline).unwrap();
    fs::write(
        &cmdline,
        format!("{} pcie_acs_override=id:8086:a36d\n", running.trim_end()),
    )
    .unwrap();
    let facts = HostFacts::gather(&root).unwrap();
    let found = audit(&facts, &[]);
    let acs = checks(&found, "acs-override-ineffective");
    assert_eq!(acs.len(), 1, "{found:#?}");
    assert!(acs[0].fixable);
    // What verify calls fixable, verify --fix fixes: the word is in GRUB_CMDLINE_LINUX.
    let plan = fix_plan(&facts, &found).unwrap();
    assert_eq!(
        edited(&plan),
        [PathBuf::from("etc/default/grub.d/60-acs.cfg")]
    );
    assert_eq!(plan.files[0].new, "GRUB_CMDLINE_LINUX=\"\"\n");
}
