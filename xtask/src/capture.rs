//! `vfiokit capture`: record the host at `--root` into a new directory (see `vfiokit_capture`).

use std::path::Path;
use std::process::ExitCode;

use vfiokit_capture::Options;

use crate::Common;

/// `capture -o OUT [--anonymize]`.
pub fn run(common: &Common, out: &Path, anonymize: bool) -> anyhow::Result<ExitCode> {
    let src = common.open_root()?;
    let report = vfiokit_capture::capture(&src, out, &Options { anonymize })?;
    if common.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "output": out, "files": report.files, "links": report.links, "skipped": report.skipped,
            }))?
        );
    } else {
        print!("{report}");
        println!("replay with: vfiokit inspect --root {}", out.display());
    }
    Ok(ExitCode::SUCCESS)
}
