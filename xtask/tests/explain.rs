//! `vfiokit explain` end to end.

use std::io::Write as _;
use std::process::{Command, Stdio};

const ROM_LINE: &str =
    "vfio-pci 0000:00:02.0: Invalid PCI ROM header signature: expecting 0xaa55, got 0xffff";
const BAR_LINE: &str = "Jun 03 20:35:58 pve kernel: vfio-pci 0000:07:00.0: BAR 1: can't reserve [mem 0xd0000000-0xdfffffff 64bit pref]";
const ORDINARY: &str = "[    0.123456] DMAR: IOMMU enabled\n[ 12.5] tap100i0: entered promiscuous mode\n[ 13.1] vfio-pci 0000:01:00.0: enabling device (0000 -> 0003)\n";
const FRESH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../testdata/elitedesk-800-g4/fresh"
);

/// Runs `vfiokit ARGS…` with `stdin` on its standard input: exit code, stdout, stderr.
fn run(args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vfiokit"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run vfiokit");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn json_has_the_contract_fields_and_an_error_exits_3() {
    let log = format!("{BAR_LINE}\n{BAR_LINE}\n{ORDINARY}");
    let (code, out, err) = run(&["--root", FRESH, "explain", "--json", "-"], &log);
    assert_eq!(code, 3, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["explained", "unrecognized"]);
    assert_eq!(v["unrecognized"], 3);
    let e = v["explained"].as_array().unwrap();
    assert_eq!(e.len(), 1, "{out}");
    let mut fields: Vec<&str> = e[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "count",
            "device",
            "explanation",
            "fix",
            "kind",
            "line",
            "severity",
            "text"
        ]
    );
    assert_eq!(e[0]["line"], 1);
    assert_eq!(e[0]["count"], 2);
    assert_eq!(e[0]["kind"], "bar-cant-reserve");
    assert_eq!(e[0]["device"], "0000:07:00.0");
    assert_eq!(e[0]["severity"], "error");
}

#[test]
fn ordinary_lines_exit_0_and_report_nothing() {
    let (code, out, err) = run(&["--root", FRESH, "explain", "-"], ORDINARY);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("0 explained, 3 other line(s) not recognized"),
        "{out}"
    );
}

#[test]
fn the_seed_rom_line_on_the_seed_host_names_no_rom_bar() {
    let (code, out, err) = run(&["--root", FRESH, "explain", "-"], ROM_LINE);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("stdin:1: warning rom-header-invalid 0000:00:02.0"),
        "{out}"
    );
    assert!(out.contains("0000:00:02.0 has no ROM BAR"), "{out}");
}

#[test]
fn files_are_read_and_an_unreadable_one_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dmesg.txt");
    std::fs::write(&file, format!("{ORDINARY}{ROM_LINE}\n")).unwrap();
    let (code, out, err) = run(&["--root", FRESH, "explain", file.to_str().unwrap()], "");
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("dmesg.txt:4: warning rom-header-invalid"),
        "{out}"
    );
    let missing = dir.path().join("missing.log");
    let (code, _, err) = run(&["explain", missing.to_str().unwrap()], "");
    assert_eq!(code, 1);
    assert!(err.contains("missing.log"), "{err}");
}

#[test]
fn without_a_file_the_recorded_kernel_log_is_read() {
    let (_dir, root) = vfiokit_fakesys::copy_recorded("elitedesk-800-g4/fresh").unwrap();
    let log = root.var_lib("vfiokit/capture/kernel-log");
    let _ = std::fs::remove_file(&log);
    let dir = root.root().to_str().unwrap();
    let (code, _, err) = run(&["--root", dir, "explain"], "");
    assert_eq!(code, 1);
    assert!(err.contains("no kernel log"), "{err}");
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    std::fs::write(&log, format!("{ORDINARY}{ROM_LINE}\n")).unwrap();
    let (code, out, err) = run(&["--root", dir, "explain"], "");
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(
            "var/lib/vfiokit/capture/kernel-log:4: warning rom-header-invalid 0000:00:02.0"
        ),
        "{out}"
    );
    assert!(out.contains("has no ROM BAR"), "{out}");
}
