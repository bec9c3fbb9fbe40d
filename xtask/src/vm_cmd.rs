//! `vm lint|fmt|show`: Proxmox VM config files checked, re-rendered, shown.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::json;
use vfiokit_setup::HostFacts;
use vfiokit_setup::vm::{LintInput, diag_text};
use vfiokit_vmconf::{Diagnostic, LintOptions, Severity, VmConfig};

use crate::{Common, read_utf8};

/// `vm lint FILE…`: exit 3 when any file has an error. With `--root`, also against that host.
pub fn lint(common: &Common, files: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let facts = match common.root {
        Some(_) => Some(HostFacts::gather(&common.open_root()?)?),
        None => None,
    };
    let inputs: Vec<LintInput> = files
        .iter()
        .map(|f| {
            Ok(LintInput {
                file: f.clone(),
                config: VmConfig::parse(&read_utf8(f)?),
            })
        })
        .collect::<anyhow::Result<_>>()?;
    let all = vfiokit_setup::vm::lint(&inputs, facts.as_ref());
    let errors = all
        .iter()
        .flatten()
        .filter(|d| d.severity == Severity::Error)
        .count();
    if common.json {
        let files: Vec<_> = inputs
            .iter()
            .zip(&all)
            .map(|(i, diags)| {
                json!({
                    "file": i.file,
                    "diagnostics": diags.iter().map(|d| json!({
                        "line": d.line,
                        "severity": if d.severity == Severity::Error { "error" } else { "warning" },
                        "message": d.message,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "ok": errors == 0, "files": files }))?
        );
    } else {
        for (i, diags) in inputs.iter().zip(&all) {
            for d in diags {
                println!("{}", diag_text(&i.file, d));
            }
        }
    }
    Ok(if errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

/// `vm fmt FILE [--canonical]`: the config re-rendered (byte-identical for what Proxmox
/// accepts), or in Proxmox's canonical form.
pub fn fmt(file: &Path, canonical: bool) -> anyhow::Result<ExitCode> {
    let config = VmConfig::parse(&read_utf8(file)?);
    if canonical {
        print!("{}", config.render_canonical());
    } else {
        print!("{}", config.render());
    }
    Ok(report_errors(file, &config))
}

/// For `fmt` and `show`: the output is printed either way, but a config Proxmox would reject or
/// drop lines of says so on stderr, with file and line, and exits 3.
fn report_errors(file: &Path, config: &VmConfig) -> ExitCode {
    let errors: Vec<Diagnostic> = vfiokit_vmconf::lint(
        config,
        &LintOptions {
            vmid: None,
            qemu: None,
        },
    )
    .into_iter()
    .filter(|d| d.severity == Severity::Error)
    .collect();
    for d in &errors {
        eprintln!("{}", diag_text(file, d));
    }
    if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    }
}

/// `vm show FILE`: a typed view.
pub fn show(common: &Common, file: &Path) -> anyhow::Result<ExitCode> {
    let config = VmConfig::parse(&read_utf8(file)?);
    let view = vfiokit_setup::vm::view(&config);
    if common.json {
        println!("{}", serde_json::to_string_pretty(&view)?);
        return Ok(report_errors(file, &config));
    }
    println!("name: {}", view.name.as_deref().unwrap_or("-"));
    let machine = match &view.machine {
        vfiokit_setup::vm::MachineView::Ok { raw_type, .. } => raw_type.as_str(),
        vfiokit_setup::vm::MachineView::Error { .. } => "?",
    };
    println!("machine: {machine}");
    println!("firmware: {}", view.bios);
    println!("vga: {}", view.vga.as_deref().unwrap_or("(default)"));
    for d in &view.devices {
        println!("{}: {}", d.key, serde_json::to_value(d)?);
    }
    for u in &view.usb {
        println!("{}: {}", u.key, u.value);
    }
    if let Some(v) = &view.legacy_igd {
        match &v.message {
            None => println!("legacy IGD: ok"),
            Some(m) => println!("legacy IGD: {m}"),
        }
    }
    Ok(report_errors(file, &config))
}
