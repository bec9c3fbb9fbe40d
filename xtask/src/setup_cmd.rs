//! The `setup-host` and `undo` commands: output and exit codes around the planner and apply.

use std::process::ExitCode;

use serde_json::json;
use vfiokit_iommu::Host;
use vfiokit_pci::PciAddress;

use crate::Common;
use crate::apply::{self, SystemRunner};
use crate::plan::{Plan, diff};
use crate::setup_host::{self, Request};

pub fn plan_json(plan: &Plan) -> serde_json::Value {
    json!({
        "files": plan.files.iter().map(|f| json!({
            "path": f.path,
            "created": f.old.is_none(),
            "diff": diff(f),
            "reasons": f.reasons,
        })).collect::<Vec<_>>(),
        "commands": plan.commands.iter().map(|c| json!({"argv": c.argv, "why": c.why})).collect::<Vec<_>>(),
        "notes": plan.notes,
    })
}

/// `setup-host --device ADDR… [--force-collateral ADDR…] [--apply]`.
pub fn setup_host(
    common: &Common,
    devices: &[PciAddress],
    force: &[PciAddress],
    do_apply: bool,
) -> anyhow::Result<ExitCode> {
    let root = common.open_root()?;
    let _lock = apply::prepare(&root, None, do_apply)?;
    let host = Host::scan(&root)?;
    let request = Request {
        devices: devices.to_vec(),
        force_collateral: force.to_vec(),
    };
    let (plan, assessment) = match setup_host::plan(&root, &host, &request)? {
        Ok(p) => p,
        Err(refusal) => {
            if common.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({"refused": refusal.0}))?
                );
            } else {
                eprint!("{}", refusal.0);
            }
            return Ok(ExitCode::from(3));
        }
    };
    let members: Vec<String> = assessment.members.iter().map(ToString::to_string).collect();
    if !do_apply {
        if common.json {
            let mut v = plan_json(&plan);
            v["members"] = json!(members);
            v["applied"] = json!(false);
            println!("{}", serde_json::to_string_pretty(&v)?);
        } else if plan.is_empty() {
            println!(
                "nothing to do: the host is already set up for {}",
                members.join(", ")
            );
        } else {
            println!(
                "plan for {} (nothing is written without --apply):\n",
                members.join(", ")
            );
            print!("{}", plan.render());
        }
        return Ok(ExitCode::SUCCESS);
    }
    if plan.is_empty() {
        println!(
            "nothing to do: the host is already set up for {}",
            members.join(", ")
        );
        return Ok(ExitCode::SUCCESS);
    }
    let command = format!(
        "setup-host {}",
        devices
            .iter()
            .map(|d| format!("--device {d}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let journal = apply::apply(
        &root,
        &plan,
        &command,
        &apply::host_fs(&root),
        &SystemRunner,
    )?;
    if common.json {
        let mut v = plan_json(&plan);
        v["members"] = json!(members);
        v["applied"] = json!(true);
        v["commands_run"] = json!(
            journal
                .commands
                .iter()
                .filter(|c| c.ran)
                .map(|c| &c.argv)
                .collect::<Vec<_>>()
        );
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print!("{}", plan.render());
        println!(
            "applied: {} file(s) written; `vfiokit undo` restores them",
            journal.files.len()
        );
        for c in &journal.commands {
            if c.ran {
                println!("ran: {}", c.argv.join(" "));
            } else {
                println!("not run (root is not /): {}", c.argv.join(" "));
            }
        }
        if root.is_host() {
            println!("reboot for the new command line and modules to take effect");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `undo`: restores the files of the last apply.
pub fn undo(common: &Common) -> anyhow::Result<ExitCode> {
    let root = common.open_root()?;
    apply::require_root(&root)?;
    let _lock = apply::lock(&root, None)?;
    // An interrupted apply is undone by rolling it back.
    if let Some(done) = apply::recover(&root, &apply::host_fs(&root))? {
        println!("{done}");
        return Ok(ExitCode::SUCCESS);
    }
    let journal = apply::undo(&root, &apply::host_fs(&root), &SystemRunner)?;
    if common.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "undone": journal.command,
                "files": journal.files.iter().map(|f| &f.path).collect::<Vec<_>>(),
                "commands": journal.commands.iter().map(|c| json!({"argv": c.argv, "ran": c.ran})).collect::<Vec<_>>(),
            }))?
        );
    } else {
        println!("undone: {}", journal.command);
        for f in &journal.files {
            let what = if f.old.is_some() {
                "restored"
            } else {
                "removed"
            };
            println!("  {what} {}", f.path.display());
        }
        for c in &journal.commands {
            let how = if c.ran {
                "ran"
            } else {
                "not run (root is not /)"
            };
            println!("  {how}: {}", c.argv.join(" "));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The end of a planning command (`setup-vm`, `mapping plan`): nothing to do, the plan as JSON,
/// or the plan as diffs — applied with `--apply` through the journal, recorded as `command`.
pub fn show_or_apply(
    common: &Common,
    root: &vfiokit_sysfs::SysRoot,
    plan: &Plan,
    do_apply: bool,
    command: &str,
    nothing: &str,
) -> anyhow::Result<ExitCode> {
    if plan.is_empty() {
        println!("nothing to do: {nothing}");
        return Ok(ExitCode::SUCCESS);
    }
    if common.json && !do_apply {
        println!("{}", serde_json::to_string_pretty(&plan_json(plan))?);
        return Ok(ExitCode::SUCCESS);
    }
    print!("{}", plan.render());
    if do_apply {
        apply::apply(root, plan, command, &apply::host_fs(root), &SystemRunner)?;
        println!("applied; `vfiokit undo` restores the previous files");
    } else {
        println!("(nothing is written without --apply)");
    }
    Ok(ExitCode::SUCCESS)
}
