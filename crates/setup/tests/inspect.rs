//! `inspect --json`'s device fields on recorded hosts: PCIe type, reset methods, ACS, mediated
//! device types and SR-IOV, with the contract's field names.

use vfiokit_setup::inspect::report;
use vfiokit_sysfs::SysRoot;

fn devices(host: &str) -> Vec<serde_json::Value> {
    let root = SysRoot::new(vfiokit_fakesys::testdata_dir().join(host)).unwrap();
    let host = vfiokit_iommu::Host::scan(&root).unwrap();
    let json = serde_json::to_value(report(&host, None)).unwrap();
    json["devices"].as_array().unwrap().clone()
}

fn device(all: &[serde_json::Value], address: &str) -> serde_json::Value {
    all.iter()
        .find(|d| d["address"] == address)
        .unwrap_or_else(|| panic!("no {address}"))
        .clone()
}

#[test]
fn reset_methods_are_what_the_kernel_lists_and_none_without_a_file() {
    let all = devices("minisforum-um880pro/fresh");
    // The author's listing marks no [RESET] on the 780M's GPU function.
    assert_eq!(device(&all, "0000:c5:00.0")["reset"], serde_json::json!([]));
    assert_eq!(
        device(&all, "0000:c5:00.1")["reset"],
        serde_json::json!(["pm"])
    );
    assert_eq!(device(&all, "0000:c5:00.0")["pcie_type"], "legacy-endpoint");
}

#[test]
fn acs_and_port_types_come_from_config_space() {
    let all = devices("am4-rtx2060/fresh");
    let port = device(&all, "0000:00:07.1");
    assert_eq!(port["pcie_type"], "root-port");
    assert_eq!(port["acs"]["sv"], true);
    assert_eq!(port["acs"].as_object().unwrap().len(), 7);
    let gpu = device(&all, "0000:07:00.0");
    assert_eq!(gpu["acs"], serde_json::Value::Null);
    assert!(gpu.get("sriov").is_none() && gpu.get("mdev_types").is_none());
}

#[test]
fn gvt_types_and_sriov_state_are_listed() {
    let all = devices("elitedesk-800-g4/gvt");
    let igpu = device(&all, "0000:00:02.0");
    let ids: Vec<&str> = igpu["mdev_types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "i915-GVTg_V5_1",
            "i915-GVTg_V5_2",
            "i915-GVTg_V5_4",
            "i915-GVTg_V5_8"
        ]
    );
    let v5_8 = &igpu["mdev_types"][3];
    assert_eq!(
        (v5_8["name"].as_str(), v5_8["available_instances"].as_u64()),
        (Some("GVTg_V5_8"), Some(1))
    );
    assert!(!v5_8["description"].as_str().unwrap().contains('\n'));

    let all = devices("n100/sriov");
    let pf = device(&all, "0000:00:02.0");
    assert_eq!(pf["sriov"]["total_vfs"], 7);
    assert_eq!(pf["sriov"]["num_vfs"], 7);
    assert_eq!(pf["sriov"]["vfs"][0], "0000:00:02.1");
}
