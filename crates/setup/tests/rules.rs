//! The rule table on recorded hosts: what `verify` flags is what `setup-host` and
//! `verify --fix` fix, applied and undone through the engine.

use std::path::{Path, PathBuf};

use vfiokit_fakesys::copy_recorded;
use vfiokit_plan::{SystemRunner, apply, undo};
use vfiokit_setup::{Finding, HostFacts, audit, fix_plan, host};
use vfiokit_sysfs::SysRoot;

/// Every regular file under `etc/`, with its bytes.
fn etc(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                out.push((
                    p.strip_prefix(base).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                ));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, &dir.join("etc"), &mut out);
    out
}

fn fixable_outside_pve(found: &[Finding]) -> Vec<String> {
    found
        .iter()
        .filter(|f| f.fixable && !f.path.as_ref().is_some_and(|p| p.starts_with("etc/pve")))
        .map(|f| format!("{}: {}", f.check, f.message))
        .collect()
}

fn seed_request() -> host::Request {
    host::Request {
        devices: vec!["00:02.0".parse().unwrap(), "00:14.3".parse().unwrap()],
        force_collateral: vec![],
    }
}

#[test]
fn the_configured_seed_host_has_fixable_findings_that_setup_host_fixes() {
    let (dir, root) = copy_recorded("elitedesk-800-g4/configured").unwrap();
    let before = etc(dir.path());
    let facts = HostFacts::gather(&root).unwrap();
    let found = audit(&facts, &[]);
    let checks: Vec<&str> = found
        .iter()
        .filter(|f| f.fixable)
        .map(|f| f.check)
        .collect();
    assert_eq!(
        checks,
        [
            "allow-unsafe-interrupts",
            "vfio-virqfd",
            "vfio-ids-unpassable"
        ],
        "{found:#?}"
    );
    assert!(found.iter().all(|f| f.fixable == f.edit.is_some()));

    let planned = host::plan(&facts, &seed_request()).unwrap().unwrap();
    apply(&root, &planned.plan, "setup-host", &root, &SystemRunner).unwrap();
    let modprobe = std::fs::read_to_string(dir.path().join("etc/modprobe.d/vfio.conf")).unwrap();
    let modules = std::fs::read_to_string(dir.path().join("etc/modules")).unwrap();
    assert!(!modprobe.contains("8086:a348"), "{modprobe}");
    assert!(!modprobe.contains("allow_unsafe_interrupts"), "{modprobe}");
    assert!(!modprobe.contains("blacklist snd_hda_intel"), "{modprobe}");
    assert!(modprobe.contains("ids=8086:3e92,8086:a370"), "{modprobe}");
    assert!(!modules.contains("vfio_virqfd"), "{modules}");
    let after = audit(&HostFacts::gather(&root).unwrap(), &[]);
    assert_eq!(fixable_outside_pve(&after), Vec::<String>::new());

    undo(&root, &root, &SystemRunner).unwrap();
    assert_eq!(
        etc(dir.path()),
        before,
        "undo restores every file byte for byte"
    );
}

#[test]
fn verify_fix_leaves_no_fixable_finding_and_undoes() {
    let (dir, root) = copy_recorded("elitedesk-800-g4/configured").unwrap();
    let before = etc(dir.path());
    let facts = HostFacts::gather(&root).unwrap();
    let plan = fix_plan(&facts, &audit(&facts, &[])).unwrap();
    assert_eq!(plan.files.len(), 2, "{}", plan.render());
    assert_eq!(
        plan.commands.len(),
        1,
        "only the initramfs: the boot line is unchanged"
    );
    apply(&root, &plan, "verify --fix", &root, &SystemRunner).unwrap();
    let after = audit(&HostFacts::gather(&root).unwrap(), &[]);
    assert!(after.iter().all(|f| !f.fixable), "{after:#?}");
    // What is left no file edit can fix: a pending reboot, a ROM that is not there yet.
    assert!(after.iter().any(|f| f.check == "romfile-missing"));
    undo(&root, &root, &SystemRunner).unwrap();
    assert_eq!(etc(dir.path()), before);
    // A second fix plan of a fixed host is empty.
    apply(&root, &plan, "verify --fix", &root, &SystemRunner).unwrap();
    let facts = HostFacts::gather(&root).unwrap();
    assert!(fix_plan(&facts, &audit(&facts, &[])).unwrap().is_empty());
}

#[test]
fn a_forced_device_keeps_its_vfio_lines() {
    let (_dir, root) = copy_recorded("elitedesk-800-g4/configured").unwrap();
    let facts = HostFacts::gather(&root).unwrap();
    let audio = "00:1f.3".parse().unwrap();
    let refusal = host::plan(
        &facts,
        &host::Request {
            devices: vec![audio],
            force_collateral: vec![],
        },
    )
    .unwrap()
    .unwrap_err();
    let force = refusal
        .force_collateral
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
    let planned = host::plan(
        &facts,
        &host::Request {
            devices: vec![audio],
            force_collateral: force,
        },
    )
    .unwrap()
    .unwrap();
    let vfio = planned
        .plan
        .files
        .iter()
        .find(|f| f.path.ends_with("vfio.conf"))
        .unwrap();
    assert!(vfio.new.contains("8086:a348"), "{}", vfio.new);
    assert!(vfio.new.contains("blacklist snd_hda_intel"), "{}", vfio.new);
}

#[test]
fn refusals_are_typed() {
    let root = SysRoot::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/elitedesk-800-g4/fresh"
    ))
    .unwrap();
    let facts = HostFacts::gather(&root).unwrap();
    let refusal = host::plan(
        &facts,
        &host::Request {
            devices: vec!["00:1f.3".parse().unwrap()],
            force_collateral: vec![],
        },
    )
    .unwrap()
    .unwrap_err();
    assert!(
        refusal
            .harms
            .iter()
            .any(|h| h.address == "0000:00:1f.6" && h.role == "default-route-nic"),
        "{:#?}",
        refusal.harms
    );
    assert!(
        refusal.alternatives.iter().any(|a| a.contains("8087:0aaa")),
        "{:#?}",
        refusal.alternatives
    );
    assert!(
        refusal
            .force_collateral
            .contains(&"0000:00:1f.6".to_string())
    );
    assert!(refusal.to_string().starts_with("refused: "));
}

/// A modules file with `vfio_virqfd` on a kernel and the finding the rule gives.
fn virqfd_on(release: &str) -> Option<Finding> {
    let (dir, root) = copy_recorded("elitedesk-800-g4/fresh").unwrap();
    std::fs::write(dir.path().join("etc/modules"), "vfio\nvfio_virqfd\n").unwrap();
    std::fs::write(
        dir.path().join("proc/sys/kernel/osrelease"),
        format!("{release}\n"),
    )
    .unwrap();
    audit(&HostFacts::gather(&root).unwrap(), &[])
        .into_iter()
        .find(|f| f.check == "vfio-virqfd")
}

#[test]
fn vfio_virqfd_is_a_finding_only_from_6_2_with_its_line() {
    assert!(virqfd_on("5.15.64-1-pve").is_none());
    assert!(virqfd_on("6.1.10-1-pve").is_none());
    let f = virqfd_on("6.8.12-11-pve").unwrap();
    assert!(f.fixable);
    assert_eq!(
        (f.path.as_deref(), f.line),
        (Some(Path::new("etc/modules")), Some(2))
    );
}

#[test]
fn every_rule_id_is_unique_and_kebab_case() {
    let ids: Vec<&str> = vfiokit_setup::rules::RULES.iter().map(|r| r.id).collect();
    let unique: std::collections::BTreeSet<&&str> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len());
    assert!(
        ids.iter()
            .all(|id| id.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'))
    );
}
