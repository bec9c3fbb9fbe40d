//! `vfiokit inspect` end to end: the binary on the recorded hosts and on this machine.

mod common;
use common::vfiokit;

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

fn testdata(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata")
        .join(rel)
}

fn inspect_json(rel: &str) -> Value {
    let root = testdata(rel);
    let (code, stdout, stderr) = vfiokit(&["inspect", "--root", root.to_str().unwrap(), "--json"]);
    assert_eq!(code, 0, "{stderr}");
    serde_json::from_str(&stdout).expect("inspect prints JSON")
}

fn device<'a>(report: &'a Value, address: &str) -> &'a Value {
    report["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["address"] == address)
        .unwrap_or_else(|| panic!("{address} not listed"))
}

fn roles(report: &Value, address: &str) -> Vec<String> {
    device(report, address)["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn configured_elitedesk_reads_as_the_seed_records_it() {
    let report = inspect_json("elitedesk-800-g4/configured");
    assert_eq!(report["devices"].as_array().unwrap().len(), 14);
    let groups = report["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 8);
    let g7 = groups.iter().find(|g| g["id"] == 7).unwrap();
    let members: Vec<&str> = g7["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    assert_eq!(
        members,
        [
            "0000:00:1f.0",
            "0000:00:1f.3",
            "0000:00:1f.4",
            "0000:00:1f.5",
            "0000:00:1f.6"
        ]
    );
    assert_eq!(g7["viable"], false);
    assert!(
        g7["blockers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["address"] == "0000:00:1f.6"),
        "{g7}"
    );
    assert!(roles(&report, "0000:00:1f.6").contains(&"default-route-nic".to_string()));
    assert!(roles(&report, "0000:00:17.0").contains(&"root-disk-controller".to_string()));
    let igpu = device(&report, "0000:00:02.0");
    assert_eq!(igpu["class"], "030000");
    assert_eq!(igpu["vendor"], "8086");
    assert_eq!(igpu["device"], "3e92");
    assert_eq!(igpu["subsystem_vendor"], "103c");
    assert_eq!(igpu["subsystem_device"], "83e2");
    assert_eq!(igpu["driver"], "vfio-pci");
    assert_eq!(igpu["iommu_group"], 0);
    assert_eq!(igpu["device_name"], "CoffeeLake-S GT2 [UHD Graphics 630]");
    assert_eq!(report["iommu"]["enabled"], true);
    assert_eq!(report["iommu"]["kind"], "intel");
    assert_eq!(report["iommu"]["interrupt_remapping"], true);
    assert_eq!(
        report["iommu"]["acs_override"],
        "downstream,multifunction,id:8086:a348,id:8086:a370"
    );
    assert_eq!(
        report["problems"].as_array().unwrap().len(),
        0,
        "{}",
        report["problems"]
    );
}

#[test]
fn json_formats_follow_the_cli_contract() {
    let report = inspect_json("elitedesk-800-g4/configured");
    for d in report["devices"].as_array().unwrap() {
        let hex = |k: &str, n: usize| {
            let s = d[k].as_str().unwrap_or_else(|| panic!("{k} in {d}"));
            assert!(
                s.len() == n
                    && s.bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
                "{k}={s}"
            );
        };
        hex("vendor", 4);
        hex("device", 4);
        hex("subsystem_vendor", 4);
        hex("subsystem_device", 4);
        hex("class", 6);
        hex("revision", 2);
        assert!(d["iommu_group"].is_u64(), "{d}");
        assert!(d["address"].as_str().unwrap().starts_with("0000:"));
    }
    // The audio function shows lspci's revision format.
    assert_eq!(device(&report, "0000:00:1f.3")["revision"], "10");
}

#[test]
fn fresh_elitedesk_has_the_host_drivers_bound() {
    let report = inspect_json("elitedesk-800-g4/fresh");
    assert_eq!(device(&report, "0000:00:02.0")["driver"], "i915");
    assert_eq!(device(&report, "0000:00:1f.3")["driver"], "snd_hda_intel");
    assert_eq!(device(&report, "0000:00:14.3")["driver"], "iwlwifi");
    assert!(report["iommu"]["acs_override"].is_null());
    // Group 0 holds only the iGPU, bound to i915: not viable until vfio-pci takes it.
    let g0 = report["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["id"] == 0)
        .unwrap();
    assert_eq!(g0["viable"], false);
    let usb = roles(&report, "0000:00:14.0");
    assert!(usb.contains(&"only-usb-controller".to_string()), "{usb:?}");
    assert!(
        usb.contains(&"usb-controller-with-input".to_string()),
        "{usb:?}"
    );
    assert_eq!(roles(&report, "0000:00:02.0"), ["boot-vga"]);
    assert!(roles(&report, "0000:00:1f.0").contains(&"platform-device".to_string()));
    assert!(roles(&report, "0000:00:14.3").is_empty());
}

#[test]
fn human_output_names_devices_and_explains_non_viable_groups() {
    let root = testdata("elitedesk-800-g4/configured");
    let (code, out, _) = vfiokit(&["inspect", "--root", root.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(out.contains("IOMMU group 7: not viable"), "{out}");
    assert!(
        out.contains("0000:00:1f.6 bound to e1000e, a host driver"),
        "{out}"
    );
    assert!(
        out.contains("0000:00:02.0 [030000] VGA compatible controller: Intel Corporation CoffeeLake-S GT2 [UHD Graphics 630] [8086:3e92]  driver: vfio-pci"),
        "{out}"
    );
    assert!(
        out.contains("role default-route-nic: eno1, port of vmbr0"),
        "{out}"
    );
}

#[test]
fn the_machine_running_the_tests_is_inspected_read_only() {
    let (code, stdout, stderr) = vfiokit(&["inspect", "--root", "/", "--json"]);
    assert_eq!(code, 0, "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert!(!report["devices"].as_array().unwrap().is_empty());
    if report["iommu"]["enabled"] == false {
        let (code, text, _) = vfiokit(&["inspect", "--root", "/"]);
        assert_eq!(code, 0);
        assert!(
            text.contains("IOMMU: off") && text.contains("intel_iommu=on"),
            "{text}"
        );
    }
}

#[test]
fn a_root_that_is_not_a_host_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = vfiokit(&["inspect", "--root", dir.path().to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("not a Linux host root") && stderr.contains("sys/bus/pci/devices"),
        "{stderr}"
    );
    let (code, _, stderr) = vfiokit(&["inspect", "--root", "/nonexistent/vfiokit"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("/nonexistent/vfiokit"), "{stderr}");
    let (code, _, _) = vfiokit(&["inspect", "--bogus"]);
    assert_eq!(code, 2);
}

#[test]
fn usb_devices_are_listed_with_names_and_their_controller() {
    let report = inspect_json("elitedesk-800-g4/configured");
    let usb = report["usb"].as_array().unwrap();
    let ids: Vec<String> = usb
        .iter()
        .map(|u| {
            format!(
                "{}:{}",
                u["vendor"].as_str().unwrap(),
                u["product"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(ids, ["062a:4101", "8087:0aaa"]);
    for u in usb {
        assert_eq!(u["controller"], "0000:00:14.0");
        assert_eq!(u["bus"], 1);
        assert_eq!(u["speed"], "12");
        assert!(
            u["product_name"].is_string() && u["vendor_name"].is_string(),
            "{u}"
        );
    }
    assert_eq!(
        usb[1]["product_name"],
        "Bluetooth 9460/9560 Jefferson Peak (JfP)"
    );
    assert_eq!(usb[1]["class"], "e0");
    assert_eq!(usb[0]["port"], "1-1");
}

#[test]
fn a_reader_that_goes_away_ends_the_output_quietly() {
    use std::io::Read;
    // A large host, and a reader that takes a few bytes and closes the pipe (`| head -c 100`).
    // 2 000 functions print far more than a pipe holds; written to tmpfs, which is quick.
    let host = vfiokit_fakesys::generate::large_host(2000, 1).unwrap();
    let (_dir, root) = vfiokit_fakesys::write_scratch(&host).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_vfiokit"))
        .args(["inspect", "--root", root.root().to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 100];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(141),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
}

#[test]
fn a_broken_usb_id_reaches_the_problems() {
    let (dir, root) = vfiokit_fakesys::copy_recorded("elitedesk-800-g4/fresh").unwrap();
    let usb = dir.path().join("sys/bus/usb/devices");
    let device = std::fs::read_dir(&usb)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            name.contains('-') && !name.contains(':')
        })
        .expect("a USB device with an idVendor");
    let vendor = std::fs::canonicalize(&device).unwrap().join("idVendor");
    std::fs::write(&vendor, "zz!z\n").unwrap();
    // `uevent` carries the id too (PRODUCT=vendor/product/bcdDevice) and is read first.
    let uevent = vendor.with_file_name("uevent");
    if let Ok(text) = std::fs::read_to_string(&uevent) {
        let broken: String = text
            .lines()
            .map(|l| match l.strip_prefix("PRODUCT=") {
                Some(rest) => format!(
                    "PRODUCT=zz!z/{}\n",
                    rest.split_once('/').map_or("", |r| r.1)
                ),
                None => format!("{l}\n"),
            })
            .collect();
        std::fs::write(&uevent, broken).unwrap();
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vfiokit"))
        .args(["inspect", "--json", "--root"])
        .arg(root.root())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let name = device.file_name().unwrap().to_str().unwrap();
    assert!(
        v["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p.as_str().unwrap().contains(name)),
        "no problem names {name}: {}",
        v["problems"]
    );
}

/// `pcie_type` and `acs` as lspci -vvv decodes the same config spaces: every recorded host and
/// this machine (read-only).
#[test]
fn pcie_type_and_acs_agree_with_lspci() {
    let mut roots: Vec<PathBuf> = [
        "elitedesk-800-g4/fresh",
        "elitedesk-800-g4/gvt",
        "minisforum-um880pro/configured",
        "am4-rtx2060/fresh",
        "n100/fresh",
        "n100/sriov",
    ]
    .iter()
    .map(|r| testdata(r))
    .collect();
    roots.push(PathBuf::from("/"));
    let mut compared = (0, 0);
    for root in roots {
        let (code, stdout, stderr) =
            vfiokit(&["inspect", "--root", root.to_str().unwrap(), "--json"]);
        assert_eq!(code, 0, "{stderr}");
        let report: Value = serde_json::from_str(&stdout).unwrap();
        let out = Command::new("lspci")
            .args(["-A", "linux-sysfs", "-O"])
            .arg(format!("sysfs.path={}", root.join("sys/bus/pci").display()))
            .args(["-D", "-vvv"])
            .output()
            .expect("lspci runs (pciutils is installed by cargo xtask test and .ci/run)");
        let text = String::from_utf8_lossy(&out.stdout);
        for block in text.split("\n\n").filter(|b| !b.trim().is_empty()) {
            let address = block.split_whitespace().next().unwrap();
            let dev = device(&report, address);
            let express = block
                .lines()
                .find_map(|l| l.split_once("Express (v").map(|(_, r)| r));
            let lspci_type = express.map(|r| {
                let name = r.split_once(") ").map_or(r, |(_, n)| n);
                let name = name.split([',', '(']).next().unwrap().trim();
                match name {
                    "Endpoint" => "endpoint",
                    "Legacy Endpoint" => "legacy-endpoint",
                    "Root Port" => "root-port",
                    "Upstream Port" => "upstream-port",
                    "Downstream Port" => "downstream-port",
                    "PCI-Express to PCI/PCI-X Bridge" => "pcie-to-pci-bridge",
                    "PCI/PCI-X to PCI-Express Bridge" => "pci-to-pcie-bridge",
                    "Root Complex Integrated Endpoint" => "rc-integrated-endpoint",
                    "Root Complex Event Collector" => "rc-event-collector",
                    other => panic!("{address}: lspci type {other:?}"),
                }
            });
            assert_eq!(
                dev["pcie_type"].as_str(),
                lspci_type,
                "{}: {address}",
                root.display()
            );
            let acs = block.lines().find_map(|l| l.trim().strip_prefix("ACSCap:"));
            match acs {
                None => assert!(
                    dev["acs"].is_null(),
                    "{}: {address}: {}",
                    root.display(),
                    dev["acs"]
                ),
                Some(flags) => {
                    for (name, key) in [
                        ("SrcValid", "sv"),
                        ("TransBlk", "tb"),
                        ("ReqRedir", "rr"),
                        ("CmpltRedir", "cr"),
                        ("UpstreamFwd", "uf"),
                        ("EgressCtrl", "ec"),
                        ("DirectTrans", "dt"),
                    ] {
                        let plus = flags.contains(&format!("{name}+"));
                        assert_eq!(
                            dev["acs"][key],
                            plus,
                            "{}: {address} {name}",
                            root.display()
                        );
                    }
                    compared.1 += 1;
                }
            }
            compared.0 += 1;
        }
    }
    assert!(compared.0 > 100 && compared.1 > 0, "compared {compared:?}");
}
