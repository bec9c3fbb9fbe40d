//! The planning commands (`setup-host`, `setup-vm`, `mapping plan`, `verify`) and `undo`:
//! library calls, then output and exit codes.

use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::json;
use vfiokit_pci::PciAddress;
use vfiokit_plan::{Plan, SystemRunner};
use vfiokit_setup::{HostFacts, Refusal, Scope, host, mapping, vm};
use vfiokit_sysfs::SysRoot;

use crate::Common;

fn print_json(v: &serde_json::Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// Opens the root and, when applying, takes its lock (and `extra` lock files) and rolls back an
/// interrupted apply; a dry run only warns. The lock is held while the returned value lives.
fn begin(
    common: &Common,
    extra: &[PathBuf],
    apply: bool,
) -> anyhow::Result<(SysRoot, Option<vfiokit_plan::Lock>)> {
    let root = common.open_root()?;
    let prepared = vfiokit_plan::begin(&root, extra, apply, &root).map_err(|e| match e {
        vfiokit_plan::Error::NotRoot => anyhow::anyhow!("--apply on / changes root-owned files and runs update-initramfs: run it as root (euid 0)"),
        e => e.into(),
    })?;
    for w in &prepared.warnings {
        eprintln!("warning: {w}");
    }
    if let Some(done) = &prepared.recovered {
        eprintln!("{done}");
    }
    Ok((root, prepared.lock))
}

/// A refusal: the message on stderr (or the typed refusal as JSON), exit 3.
fn refused(common: &Common, refusal: &Refusal) -> anyhow::Result<ExitCode> {
    if common.json {
        print_json(&serde_json::to_value(refusal)?)?;
    } else {
        eprint!("{refusal}");
    }
    Ok(ExitCode::from(3))
}

/// The end of every planning command: nothing to do (with the plan's notes), the plan (diffs or
/// JSON), or, with `--apply`, the plan applied through the journal and recorded as `command`.
#[allow(clippy::too_many_arguments)]
fn finish(
    common: &Common,
    root: &SysRoot,
    plan: &Plan,
    apply: bool,
    command: &str,
    nothing: &str,
    header: Option<String>,
    extra: serde_json::Value,
) -> anyhow::Result<ExitCode> {
    let mut v = plan.to_json();
    if let serde_json::Value::Object(map) = extra {
        v.as_object_mut()
            .into_iter()
            .for_each(|o| o.extend(map.clone()));
    }
    v["applied"] = json!(false);
    if plan.is_empty() || !apply {
        if common.json {
            print_json(&v)?;
        } else if plan.is_empty() {
            println!("nothing to do: {nothing}");
            print!("{}", plan.render());
        } else if let Some(header) = header {
            println!("{header}\n");
            print!("{}", plan.render());
        } else {
            print!("{}", plan.render());
            println!("(nothing is written without --apply)");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let journal = vfiokit_plan::apply(root, plan, command, root, &SystemRunner)?;
    if common.json {
        v["applied"] = json!(true);
        v["commands_run"] = json!(
            journal
                .commands
                .iter()
                .filter(|c| c.ran)
                .map(|c| &c.argv)
                .collect::<Vec<_>>()
        );
        return print_json(&v).map(|()| ExitCode::SUCCESS);
    }
    print!("{}", plan.render());
    println!(
        "applied: {} file(s) written; `vfiokit undo` restores them",
        journal.files.len()
    );
    for c in &journal.commands {
        let how = if c.ran {
            "ran"
        } else {
            "not run (root is not /)"
        };
        println!("{how}: {}", vfiokit_plan::shell_words(&c.argv));
    }
    if root.is_host() && !journal.commands.is_empty() {
        println!("reboot for the new command line and modules to take effect");
    }
    Ok(ExitCode::SUCCESS)
}

/// `setup-host --device ADDR… [--force-collateral ADDR…] [--apply]`.
pub fn setup_host(
    common: &Common,
    devices: &[PciAddress],
    force: &[PciAddress],
    apply: bool,
) -> anyhow::Result<ExitCode> {
    let (root, _lock) = begin(common, &[], apply)?;
    let request = host::Request {
        devices: devices.to_vec(),
        force_collateral: force.to_vec(),
    };
    let facts = HostFacts::gather_for(&root, &request.scope())?;
    let planned = match host::plan(&facts, &request)? {
        Ok(p) => p,
        Err(refusal) => return refused(common, &refusal),
    };
    let members: Vec<String> = planned
        .assessment
        .members
        .iter()
        .map(ToString::to_string)
        .collect();
    let command = format!(
        "setup-host {}",
        devices
            .iter()
            .map(|d| format!("--device {d}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let nothing = format!("the host is already set up for {}", members.join(", "));
    let header = format!(
        "plan for {} (nothing is written without --apply):",
        members.join(", ")
    );
    finish(
        common,
        &root,
        &planned.plan,
        apply,
        &command,
        &nothing,
        Some(header),
        json!({ "members": members }),
    )
}

/// `setup-host --share ADDR [--vfs N] [--apply]`.
pub fn share_host(
    common: &Common,
    req: vfiokit_setup::share::Request,
    apply: bool,
) -> anyhow::Result<ExitCode> {
    let (root, _lock) = begin(common, &[], apply)?;
    let facts = HostFacts::gather_for(&root, &req.scope())?;
    let plan = match vfiokit_setup::share::plan(&facts, &req)? {
        Ok(p) => p,
        Err(refusal) => return refused(common, &refusal),
    };
    let vfs = req.vfs.map(|n| format!(" --vfs {n}")).unwrap_or_default();
    let command = format!("setup-host --share {}{vfs}", req.device);
    finish(
        common,
        &root,
        &plan,
        apply,
        &command,
        &format!("the host is already set up to share {}", req.device),
        Some(format!(
            "plan for sharing {} (nothing is written without --apply):",
            req.device
        )),
        json!({ "share": req.device.to_string(), "vfs": req.vfs }),
    )
}

/// `undo`: restores the files of the last apply (or rolls back an interrupted one).
pub fn undo(common: &Common) -> anyhow::Result<ExitCode> {
    let root = common.open_root()?;
    vfiokit_plan::require_root(&root)?;
    // Nothing to undo writes nothing, not even the lock file.
    let journal = vfiokit_plan::journal_path(&root);
    if !root.exists(&journal)? {
        return Err(vfiokit_plan::Error::NothingToUndo { path: journal }.into());
    }
    let _lock = vfiokit_plan::lock(&root, &[])?;
    if let Some(done) = vfiokit_plan::recover(&root, &root)? {
        if common.json {
            print_json(&json!({ "rolled_back": done.command, "files": done.restored }))?;
        } else {
            println!("{done}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let journal = vfiokit_plan::undo(&root, &root, &SystemRunner)?;
    if common.json {
        print_json(&json!({
            "undone": journal.command,
            "files": journal.files.iter().map(|f| &f.path).collect::<Vec<_>>(),
            "commands": journal.commands.iter().map(|c| json!({"argv": c.argv, "ran": c.ran})).collect::<Vec<_>>(),
        }))?;
        return Ok(ExitCode::SUCCESS);
    }
    println!("undone: {}", journal.command);
    for f in &journal.files {
        println!(
            "  {} {}",
            if f.old.is_some() {
                "restored"
            } else {
                "removed"
            },
            f.path.display()
        );
    }
    for c in &journal.commands {
        println!(
            "  {}: {}",
            if c.ran {
                "ran"
            } else {
                "not run (root is not /)"
            },
            vfiokit_plan::shell_words(&c.argv)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `verify [--node NAME=ROOT…] [--fix [--apply]]`: exit 0 when nothing is wrong, 3 otherwise.
pub fn verify(
    common: &Common,
    nodes: &[mapping::NodeSpec],
    fix: bool,
    apply: bool,
) -> anyhow::Result<ExitCode> {
    let (root, _lock) = begin(common, &[], fix && apply)?;
    let facts = HostFacts::gather_for(&root, &Scope::vms())?;
    let found = vfiokit_setup::audit(&facts, &mapping::read_nodes(nodes)?);
    if fix {
        let plan = vfiokit_setup::fix_plan(&facts, &found)?;
        let fixable = found.iter().filter(|f| f.fixable).count();
        return finish(
            common,
            &root,
            &plan,
            apply,
            "verify --fix",
            "no finding a file edit can fix",
            None,
            json!({ "fixable": fixable }),
        );
    }
    if common.json {
        print_json(&json!({ "ok": found.is_empty(), "findings": found }))?;
    } else if found.is_empty() {
        println!("ok: nothing wrong found");
    } else {
        for f in &found {
            println!("{}: {}\n  fix: {}", f.check, f.message, f.fix);
        }
        let fixable = found.iter().filter(|f| f.fixable).count();
        println!(
            "\n{} problem(s) found, {fixable} fixable by `vfiokit verify --fix`",
            found.len()
        );
    }
    Ok(if found.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

/// `setup-vm`.
pub fn setup_vm(
    common: &Common,
    mut req: vm::Request,
    clone_from: Option<PathBuf>,
    apply: bool,
    print_qm: bool,
) -> anyhow::Result<ExitCode> {
    let lock = vec![
        common
            .open_root()?
            .var_lock(format!("qemu-server/lock-{}.conf", req.vmid)),
    ];
    let (root, _lock) = begin(common, &lock, apply && !print_qm)?;
    if let Some(from) = clone_from {
        let text = crate::read_utf8(&from)?;
        req.clone_from = Some((from, text));
    }
    let facts = HostFacts::gather_for(&root, &req.scope())?;
    let planned = match vm::plan(&facts, &req)? {
        Ok(p) => p,
        Err(refusal) => return refused(common, &refusal),
    };
    if print_qm {
        let qm = planned.qm_command(req.vmid).map_err(anyhow::Error::msg)?;
        println!("{qm}");
        return Ok(ExitCode::SUCCESS);
    }
    let plan = planned.plan;
    let command = format!("setup-vm --vmid {}", req.vmid);
    finish(
        common,
        &root,
        &plan,
        apply,
        &command,
        &format!("VM {} is already set up", req.vmid),
        None,
        json!({}),
    )
}

/// `mapping plan`.
pub fn mapping_plan(
    common: &Common,
    req: mapping::Request<'static>,
    nodes: &[mapping::NodeSpec],
    apply: bool,
) -> anyhow::Result<ExitCode> {
    let (root, _lock) = begin(common, &[], apply)?;
    let facts = HostFacts::gather_for(&root, &Scope::vms())?;
    let hosts = mapping::read_nodes(nodes)?;
    let req = mapping::Request {
        nodes: &hosts,
        ..req
    };
    let plan = match mapping::plan(&facts, &req)? {
        Ok(p) => p,
        Err(refusal) => return refused(common, &refusal),
    };
    let command = format!("mapping plan --name {}", req.name);
    finish(
        common,
        &root,
        &plan,
        apply,
        &command,
        &format!("mapping '{}' is already written", req.name),
        None,
        json!({}),
    )
}
