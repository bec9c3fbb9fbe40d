//! Proxmox VM configs and property strings: lossless; lint positions inside the file; set idempotent.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vfiokit_vmconf::{LintOptions, PropertyString, VmConfig, lint};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let mut c = VmConfig::parse(s);
    assert_eq!(c.render(), s);
    let lines = s.split('\n').count();
    for d in lint(&c, &LintOptions::default()) {
        assert!(d.line.is_none_or(|l| l >= 1 && l <= lines), "{d:?}");
    }
    let _ = VmConfig::parse(&c.render_canonical());
    if c.set("vga", "none") {
        let once = c.render();
        let mut again = VmConfig::parse(&once);
        assert_eq!(again.get("vga"), Some("none"));
        assert!(!again.set("vga", "none"));
    }
    for line in s.lines().take(64) {
        let value = line.split_once(':').map_or(line, |(_, v)| v.trim());
        assert_eq!(PropertyString::parse(value, Some("host")).render(), value);
    }
});
