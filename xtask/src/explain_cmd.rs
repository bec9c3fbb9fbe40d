//! `explain [FILE…]`: log lines explained for the host at `--root`.

use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;

use vfiokit_setup::HostFacts;
use vfiokit_setup::explain::{self, Explained};

use crate::Common;

/// Explains each FILE (`-`: standard input) or, without one, the root's kernel log. With FILEs
/// the root only supplies host facts: when the default root `/` cannot be read they are left out.
pub fn run(common: &Common, files: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let facts = if files.is_empty() || common.root.is_some() {
        Some(HostFacts::gather(&common.open_root()?)?)
    } else {
        common
            .open_root()
            .ok()
            .and_then(|r| HostFacts::gather(&r).ok())
    };
    let mut logs = files.iter().map(read).collect::<anyhow::Result<Vec<_>>>()?;
    if files.is_empty() {
        let Some((source, text)) = facts.as_ref().and_then(|f| f.kernel_log.as_ref()) else {
            anyhow::bail!(
                "{}: no kernel log to read (on / from `journalctl -k -b` or `dmesg`, on a recorded \
                 host from var/lib/vfiokit/capture/kernel-log); pass a FILE, or - for standard input",
                common.root_dir().display()
            );
        };
        logs.push((source.clone(), text.clone()));
    }
    let ctx = facts.as_ref().map(explain::context);
    let (mut found, mut unrecognized): (Vec<(&str, Explained)>, usize) = (Vec::new(), 0);
    for (name, text) in &logs {
        let report = explain::explain(text, ctx.as_ref());
        unrecognized += report.unrecognized;
        found.extend(report.explained.into_iter().map(|e| (name.as_str(), e)));
    }
    if common.json {
        let explained: Vec<&Explained> = found.iter().map(|(_, e)| e).collect();
        let v = serde_json::json!({ "explained": explained, "unrecognized": unrecognized });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        for (name, e) in &found {
            let device = e
                .device
                .as_deref()
                .map_or(String::new(), |d| format!(" {d}"));
            let times = match e.count {
                1 => String::new(),
                n => format!(" ({n} times)"),
            };
            println!(
                "{name}:{}: {} {}{device}{times}",
                e.line, e.severity, e.kind
            );
            println!("  {}\n  {}\n  fix: {}\n", e.text, e.explanation, e.fix);
        }
        println!(
            "{} explained, {unrecognized} other line(s) not recognized",
            found.len()
        );
    }
    let error = found
        .iter()
        .any(|(_, e)| e.severity == explain::LogSeverity::Error);
    Ok(ExitCode::from(if error { 3 } else { 0 }))
}

/// A log's name and text (`-`: standard input); bytes that are not UTF-8 are replaced.
fn read(path: &PathBuf) -> anyhow::Result<(String, String)> {
    let mut bytes = Vec::new();
    let read = if path.as_os_str() == "-" {
        std::io::stdin().read_to_end(&mut bytes).map(|_| ())
    } else {
        std::fs::read(path).map(|b| bytes = b)
    };
    read.map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    let name = match path.to_str() {
        Some("-") => "stdin".to_string(),
        _ => path.display().to_string(),
    };
    Ok((name, String::from_utf8_lossy(&bytes).into_owned()))
}
