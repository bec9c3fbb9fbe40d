//! Every log line the seed and the field notes publish (`testdata/logs/<source>.log`, copied
//! verbatim) against its golden `<source>.expected`: the kind and device of each recognized line,
//! then the folded report. A line the golden does not list must stay unrecognized.
//! `UPDATE_GOLDEN=1` rewrites the goldens (and still fails, so CI never passes on a rewrite).

use std::fmt::Write as _;
use std::path::PathBuf;

use vfiokit_explain::{classify, explain};

fn logs_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/logs")
}

fn render(text: &str) -> String {
    let mut out = String::from("# line: kind device (each recognized line on its own)\n");
    for (i, line) in text.lines().enumerate() {
        if let Some(m) = classify(line) {
            let kind = match m.alternative {
                Some(alt) => format!("{}|{}", m.kind, alt),
                None => m.kind.to_string(),
            };
            let hint = if m.hint { " (hint)" } else { "" };
            let dev = m.device.as_deref().unwrap_or("-");
            writeln!(out, "{}: {kind} {dev}{hint}", i + 1).unwrap();
        }
    }
    let report = explain(text, None);
    out.push_str("# report: first line, kind, device, count\n");
    for e in &report.explained {
        let dev = e.device.as_deref().unwrap_or("-");
        writeln!(out, "{}: {} {dev} x{}", e.line, e.kind, e.count).unwrap();
    }
    writeln!(out, "unrecognized: {}", report.unrecognized).unwrap();
    out
}

#[test]
fn published_logs_match_their_goldens() {
    let mut sources: Vec<PathBuf> = std::fs::read_dir(logs_dir())
        .expect("testdata/logs")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    sources.sort();
    assert!(
        sources.len() >= 5,
        "expected the seed and the field notes: {sources:?}"
    );
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut failures = Vec::new();
    for log in &sources {
        let text = std::fs::read_to_string(log).expect("read log");
        let got = render(&text);
        let golden = log.with_extension("expected");
        let want = std::fs::read_to_string(&golden).unwrap_or_default();
        if got != want {
            if update {
                std::fs::write(&golden, &got).expect("write golden");
            }
            failures.push(format!("{}:\n{got}", golden.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "goldens differ{}:\n{}",
        if update {
            " (rewritten)"
        } else {
            " (UPDATE_GOLDEN=1 rewrites)"
        },
        failures.join("\n")
    );
}
